//! The consumer actor: reads a topic, hands valid events to the domain actor,
//! dead-letters the rest, and stores each offset once its event is done.
//!
//! Offsets are stored in batches ([`StoreOffsets`], every `STORE_EVERY`) right
//! after the service's buffered log lines are written out (see `base/logging/`):
//! an event is committed only once its lines, notification-service's emails
//! among them, are out of the process.
//!
//! Reading happens in a small task on a thread of its own (see `reader_task.rs`),
//! which hands each record on with an in-flight slot. The actor puts that slot
//! in the event's ticket, with the assignment's generation; the completion
//! brings both back, and the slot is given back once the completion is taken
//! in. The actor itself only decides what a record is and keeps the one ledger
//! of its events ([`OffsetTracker`]), so restarting it is instant and the Kafka
//! client (and its group membership) lives on.
//!
//! One stuck event (say, a dead letter the broker cannot take yet) holds back
//! its partition's offset, and the events done behind it must be remembered
//! until it finishes. Once `--max-in-flight` of them are, the tracker holds that
//! partition and the read gate applies it (see `read_gate.rs`): the reader hands
//! on none of its records, the other partitions read on, and it is read again
//! once the stuck event is done. A partition's stored offset that has not moved
//! for a minute with events waiting is logged, once, and again when it moves
//! (`stall_watch.rs`).
//!
//! Before its partitions go in a rebalance, the consumer finishes the events in
//! flight and stores their offsets (`hand_over.rs`, run by `group.rs`).

use crate::actor::error::ActorError;
use crate::actor::fault::Role;
use crate::actor::in_flight::InFlight;
use crate::actor::messages::{Completed, Origin, Process, Publish, TicketIssuer};
use crate::actor::supervisor::{Supervision, Worker, WorkerActor};
use crate::base::metrics::Metrics;
use crate::kafka::consumer::group::GroupConsumer;
use crate::kafka::consumer::hand_over::{hand_over, Revoked};
use crate::kafka::consumer::messages::{Received, StoreOffsets};
use crate::kafka::consumer::offsets::OffsetTracker;
use crate::kafka::consumer::reader_task::poll_records;
use crate::kafka::consumer::stall_watch::STALL_WARNING_AFTER;
use crate::kafka::producer::dead_letter::{dead_letter, Source};
use crate::wire::event::{OrderEvent, Status};
use actix::{Addr, Arbiter, Context, Recipient};
use log::{debug, info, warn};
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaResult;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

crate::worker_input! {
    /// Everything the consumer actor handles.
    pub enum ConsumerInput { Received, Completed, Revoked, StoreOffsets }
}

pub struct ConsumerActor {
    client: Arc<GroupConsumer>,
    topic: String,
    /// The statuses a valid event on this topic may have.
    accepted: &'static [Status],
    domain: Recipient<Process>,
    dead_letters: Recipient<Publish>,
    /// What is done, held and not yet stored, per partition, in this assignment.
    offsets: OffsetTracker,
    tickets: TicketIssuer,
    metrics: Arc<Metrics>,
    service: &'static str,
}

/// How to build a [`ConsumerActor`].
pub struct ConsumerSetup {
    pub client: Arc<GroupConsumer>,
    pub topic: String,
    pub accepted: &'static [Status],
    pub domain: Recipient<Process>,
    pub dead_letters: Recipient<Publish>,
    pub in_flight: InFlight,
    pub service: &'static str,
    /// How long a rebalance waits for the events in flight.
    pub drain_timeout: Duration,
}

impl ConsumerActor {
    /// Starts the actor under supervision, and the task that feeds it records.
    pub fn start(setup: ConsumerSetup, supervision: &Supervision) -> Addr<WorkerActor<ConsumerActor>> {
        let actor = ConsumerActor {
            client: setup.client.clone(),
            topic: setup.topic,
            accepted: setup.accepted,
            domain: setup.domain,
            dead_letters: setup.dead_letters,
            // As many done behind a stuck event per partition as may be in flight.
            offsets: OffsetTracker::new(setup.in_flight.capacity() as usize),
            tickets: TicketIssuer::default(),
            metrics: supervision.metrics.clone(),
            service: setup.service,
        };
        let addr = WorkerActor::start(actor, supervision);
        let hooks = hand_over(
            addr.clone().recipient(),
            setup.in_flight.clone(),
            setup.drain_timeout,
            supervision.shutdown.clone(),
        );
        setup.client.context().set_rebalance_hooks(hooks);
        // The reader gets a thread of its own: the rebalance callback blocks it
        // while the actors, on this thread, finish the events in flight.
        let reader = Arbiter::new();
        let (client, shutdown) = (setup.client, supervision.shutdown.clone());
        reader.spawn(poll_records(client, addr.clone(), setup.in_flight, shutdown));
        addr
    }

    fn received(&mut self, Received { record, slot }: &Received, ctx: &Context<WorkerActor<Self>>) {
        let (partition, offset, generation) = (record.partition, record.offset, self.offsets.generation());
        self.offsets.begin(partition, offset);
        let ticket = self.tickets.issue(Origin::Record { generation, partition, offset }, slot.clone(), ctx);
        match OrderEvent::decode(record.payload.as_deref(), self.accepted) {
            Ok(event) => {
                self.metrics.took_event_created_at(event.created_at_ms);
                let payload = record.payload.clone();
                self.domain.do_send(Process { event, ticket, payload })
            }
            Err(invalid) => {
                warn!(
                    target: Self::NAME,
                    "☠️  dead-lettering {}[{partition}]@{offset}: {invalid}",
                    self.topic
                );
                self.metrics.dead_lettered();
                let source = Source { topic: &self.topic, partition, offset, service: self.service };
                let payload = record.payload.as_deref().unwrap_or_default();
                let letter = dead_letter(&source, record.key.clone(), payload, invalid.to_string(), ticket);
                self.dead_letters.do_send(letter);
            }
        }
    }

    fn completed(&mut self, Completed { origin, .. }: &Completed) {
        let Origin::Record { generation, partition, offset } = *origin else {
            return debug!(target: Self::NAME, "ignoring a completion that is not from Kafka: {origin:?}");
        };
        // Its slot is given back as the message drops, after this returns: after
        // the partition's hold is set, so no record of a partition held from now
        // on takes it (see `reader_task.rs`).
        let Some(progress) = self.offsets.complete(generation, partition, offset) else {
            return; // already done, or read before a revocation: nothing to mark or store
        };
        if let Some(held) = progress.hold {
            self.set_held(partition, held);
        }
    }

    /// Stops reading `partition` (its oldest event is stuck, with the most
    /// events allowed done behind it), or reads it again (that event is done).
    fn set_held(&self, partition: i32, held: bool) {
        let topic = &self.topic;
        if !held {
            info!(target: Self::NAME, "reading {topic}[{partition}] resumed: its oldest event is done");
        } else if let Some(backlog) = self.offsets.backlog(partition) {
            warn!(
                target: Self::NAME,
                "reading {topic}[{partition}] held: its event at offset {} is not done, and the {} events done \
                 behind it are as many as may be in flight (--max-in-flight); the other partitions read on",
                backlog.oldest_pending,
                backlog.done_behind
            );
        }
        if let Err(e) = self.apply_holds() {
            let what = if held { "hold" } else { "release" };
            self.client.context().client().complain(&format!("cannot {what} partition {partition}: {e}"));
        }
    }

    /// Has the read gate hold the partitions the tracker holds, and only those.
    fn apply_holds(&self) -> KafkaResult<()> {
        self.client.context().read_gate().apply_holds(self.client.as_ref(), self.offsets.held())
    }

    /// Logs each partition whose stored offset stopped moving, with events
    /// waiting, for [`STALL_WARNING_AFTER`], and each that moves again.
    fn watch_stalls(&mut self) {
        for stall in self.offsets.stalls(Instant::now(), STALL_WARNING_AFTER) {
            stall.log(&self.topic);
        }
    }

    /// Writes out the log lines of the events done, then stores their offsets.
    /// While the lines cannot be written, nothing is stored: the offsets wait for
    /// a later call (the logger keeps trying, and ends the service if it cannot).
    fn store_offsets(&mut self) {
        if !self.offsets.has_unstored() || !crate::base::logging::flush() {
            return;
        }
        for (partition, through) in self.offsets.take_unstored() {
            // Fails only for a partition no longer ours; the new owner redoes the event.
            if let Err(e) = self.client.store_offset(&self.topic, partition, through) {
                debug!(target: Self::NAME, "cannot store {}[{partition}]@{through}: {e}", self.topic);
            }
        }
    }

    /// Stores what is done, then forgets every partition: what was pending is
    /// the next owner's, and its completions, if they come, mark nothing.
    fn revoked(&mut self, stored: Option<&mpsc::SyncSender<()>>) {
        self.store_offsets();
        // Offsets not stored now (the log could not be written) go too: stored
        // later, they could take back a later owner's commit.
        self.offsets.forget_all();
        // The next assignment reads every partition.
        if let Err(e) = self.apply_holds() {
            self.client.context().client().complain(&format!("cannot release the partitions held: {e}"));
        }
        if let Some(stored) = stored {
            let _ = stored.send(());
        }
    }
}

impl Worker for ConsumerActor {
    type Input = ConsumerInput;
    const NAME: &'static str = "ConsumerActor";
    const ROLE: Role = Role::Consumer;

    fn handle(
        &mut self,
        input: &ConsumerInput,
        ctx: &mut Context<WorkerActor<Self>>,
    ) -> Result<(), ActorError> {
        match input {
            ConsumerInput::Received(received) => self.received(received, ctx),
            ConsumerInput::Completed(completed) => self.completed(completed),
            ConsumerInput::StoreOffsets(_) => {
                self.store_offsets();
                self.watch_stalls();
            }
            ConsumerInput::Revoked(Revoked(stored)) => self.revoked(stored.as_ref()),
        }
        Ok(())
    }

    fn describe(input: &ConsumerInput) -> String {
        match input {
            ConsumerInput::Received(Received { record, .. }) => {
                match record.key.as_deref().map(String::from_utf8_lossy) {
                    Some(key) => format!("order {key} ({}@{})", record.partition, record.offset),
                    None => format!("a record ({}@{})", record.partition, record.offset),
                }
            }
            ConsumerInput::Completed(Completed { origin, .. }) => format!("the completion of {origin:?}"),
            ConsumerInput::Revoked(_) => "the revocation of its partitions".to_string(),
            ConsumerInput::StoreOffsets(_) => "storing offsets".to_string(),
        }
    }

    fn is_event(input: &ConsumerInput) -> bool {
        matches!(input, ConsumerInput::Received(_))
    }
}
