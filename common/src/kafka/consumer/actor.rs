//! The consumer actor: reads a topic, hands valid events to the domain actor,
//! dead-letters the rest, and stores each offset once its event is done.
//!
//! Offsets are stored in batches ([`StoreOffsets`], every `STORE_EVERY`) right
//! after the service's buffered log lines are written out (see `base/logging/`):
//! an event is committed only once its lines, notification-service's emails
//! among them, are out of the process.
//!
//! Reading happens in a small task on a thread of its own (see `reader_task.rs`),
//! which hands each record on with an in-flight slot. The actor keeps that slot
//! until the record's event is done, then drops it. The actor itself only
//! decides what a record is and tracks offsets, so restarting it is instant and
//! the Kafka client (and its group membership) lives on.
//!
//! One stuck event (say, a dead letter the broker cannot take yet) holds back
//! its partition's offset, and the events done behind it must be remembered
//! until it finishes. Once `--max-in-flight` of them are, the actor holds that
//! partition (see `read_gate.rs`): the reader hands on none of its records,
//! the other partitions read on, and it is read again once the stuck event is
//! done. A partition's stored offset that has not moved for a minute with
//! events waiting is logged, once, and again when it moves.
//!
//! Before its partitions go in a rebalance, the consumer finishes the events in
//! flight and stores their offsets (`hand_over`, run by `group.rs`).

use crate::actor::error::ActorError;
use crate::actor::fault::Role;
use crate::actor::in_flight::{InFlight, SharedSlot};
use crate::actor::messages::{Completed, Origin, Process, Publish, TicketIssuer};
use crate::actor::supervisor::{Supervision, Worker, WorkerActor};
use crate::base::metrics::Metrics;
use crate::base::shutdown::{Reason, Shutdown};
use crate::kafka::consumer::group::{GroupConsumer, RebalanceHooks};
use crate::kafka::consumer::messages::{Received, StoreOffsets};
use crate::kafka::consumer::offsets::{OffsetTracker, Stall};
use crate::kafka::consumer::reader_task::poll_records;
use crate::kafka::producer::dead_letter::{dead_letter, Source};
use crate::wire::event::{OrderEvent, Status};
use actix::{Addr, Arbiter, Context, Message, Recipient};
use foldhash::{HashMap, HashMapExt};
use log::{debug, info, warn};
use rdkafka::consumer::Consumer;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// How long a rebalance waits for the actor to store the offsets of the events done.
const STORE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a partition's stored offset may stay put, with events of it waiting,
/// before a warning says so.
const STALL_WARNING_AFTER: Duration = Duration::from_secs(60);

/// The partitions are being taken away, after the events in flight were
/// finished: store what is done (the sender, if any, is told once it is),
/// then forget them.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Revoked(pub Option<mpsc::SyncSender<()>>);

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
    offsets: OffsetTracker,
    /// Per partition, the offset to store at the next [`StoreOffsets`].
    unstored: HashMap<i32, i64>,
    /// The slot of each event in flight, dropped once it is done.
    slots: HashMap<(i32, i64), SharedSlot>,
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
            unstored: HashMap::new(),
            slots: HashMap::new(),
            tickets: TicketIssuer::default(),
            metrics: supervision.metrics.clone(),
            service: setup.service,
        };
        let addr = WorkerActor::start(actor, supervision);
        let hooks = hand_over(
            addr.clone(),
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
        let (partition, offset) = (record.partition, record.offset);
        self.offsets.begin(partition, offset);
        self.slots.insert((partition, offset), slot.clone());
        let ticket = self.tickets.issue(Origin::Record { partition, offset }, ctx);
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

    fn completed(&mut self, origin: Origin) {
        let Origin::Record { partition, offset } = origin else {
            return debug!(target: Self::NAME, "ignoring a completion that is not from Kafka: {origin:?}");
        };
        // Given back as this returns, after the partition's hold is set: no record
        // of a partition held from now on takes it (see `reader_task.rs`).
        let _slot = self.slots.remove(&(partition, offset));
        let Some(progress) = self.offsets.complete(partition, offset) else {
            return; // already done, or its partition was revoked: nothing to store
        };
        if let Some(through) = progress.to_store {
            self.unstored.insert(partition, through);
        }
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
        let (consumer, context) = (self.client.as_ref(), self.client.context());
        let gate = context.read_gate();
        let result = if held { gate.hold(consumer, partition) } else { gate.release(consumer, partition) };
        if let Err(e) = result {
            let what = if held { "hold" } else { "release" };
            context.client().complain(&format!("cannot {what} partition {partition}: {e}"));
        }
    }

    /// Logs each partition whose stored offset stopped moving, with events
    /// waiting, for [`STALL_WARNING_AFTER`], and each that moves again.
    fn watch_stalls(&mut self) {
        let topic = &self.topic;
        for stall in self.offsets.stalls(Instant::now(), STALL_WARNING_AFTER) {
            match stall {
                Stall::Began { partition, unmoved, backlog } => warn!(
                    target: Self::NAME,
                    "{topic}[{partition}]: the stored offset has not moved for {} s: the event at offset {} \
                     is not done, and {} events done behind it wait for it to be committed",
                    unmoved.as_secs(),
                    backlog.oldest_pending,
                    backlog.done_behind
                ),
                Stall::Ended { partition, unmoved } => info!(
                    target: Self::NAME,
                    "{topic}[{partition}]: the stored offset moves again, after {} s",
                    unmoved.as_secs()
                ),
            }
        }
    }

    /// Writes out the log lines of the events done, then stores their offsets.
    /// While the lines cannot be written, nothing is stored: the offsets wait for
    /// a later call (the logger keeps trying, and ends the service if it cannot).
    fn store_offsets(&mut self) {
        if self.unstored.is_empty() || !crate::base::logging::flush() {
            return;
        }
        for (partition, through) in self.unstored.drain() {
            // Fails only for a partition no longer ours; the new owner redoes the event.
            if let Err(e) = self.client.store_offset(&self.topic, partition, through) {
                debug!(target: Self::NAME, "cannot store {}[{partition}]@{through}: {e}", self.topic);
            }
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
            ConsumerInput::Completed(Completed(origin)) => self.completed(*origin),
            ConsumerInput::StoreOffsets(_) => {
                self.store_offsets();
                self.watch_stalls();
            }
            ConsumerInput::Revoked(Revoked(stored)) => {
                self.store_offsets();
                // Offsets not stored now (the log could not be written) are no longer
                // ours: stored later, they could take back a later owner's commit.
                self.unstored.clear();
                // What held a partition is forgotten below: the next assignment reads them all.
                let (consumer, context) = (self.client.as_ref(), self.client.context());
                if let Err(e) = context.read_gate().release_all(consumer) {
                    context.client().complain(&format!("cannot release the partitions held: {e}"));
                }
                if let Some(stored) = stored {
                    let _ = stored.send(());
                }
                // Their completions, if they come, find nothing to store or give back.
                self.offsets.forget_all();
                self.slots.clear();
            }
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
            ConsumerInput::Completed(Completed(origin)) => format!("the completion of {origin:?}"),
            ConsumerInput::Revoked(_) => "the revocation of its partitions".to_string(),
            ConsumerInput::StoreOffsets(_) => "storing offsets".to_string(),
        }
    }

    fn is_event(input: &ConsumerInput) -> bool {
        matches!(input, ConsumerInput::Received(_))
    }
}

/// What the consumer does before its partitions are taken away: finish the
/// events in flight (the actors keep working on the main thread), then have
/// the actor store their offsets, so the commit that follows hands the next
/// owner exactly where this one stopped.
fn hand_over(
    actor: Addr<WorkerActor<ConsumerActor>>,
    in_flight: InFlight,
    drain: Duration,
    shutdown: Shutdown,
) -> RebalanceHooks {
    let name = ConsumerActor::NAME;
    let misconfigured = shutdown.clone();
    RebalanceHooks {
        on_other_store: Box::new(move |other| {
            misconfigured.trigger(Reason::Misconfigured(other.to_string()))
        }),
        before_revoke: Box::new(move || {
            // At shutdown, the service has drained already (the revocation comes
            // when the consumer closes): no second wait for what did not finish.
            let at_shutdown = shutdown.is_triggered();
            let finishing = if at_shutdown { 0 } else { in_flight.count() };
            if finishing > 0 {
                info!(target: name, "finishing {finishing} events in flight before the hand-over");
            }
            if finishing > 0 && !in_flight.drained_blocking(drain) {
                warn!(
                    target: name,
                    "{} events still in flight after {} s: the next owner of their partitions redoes them",
                    in_flight.count(),
                    drain.as_secs()
                );
            }
            if at_shutdown {
                // The service stored what was done before it closed the consumer
                // (on the actor's thread: waiting here would wait for ourselves).
                return actor.do_send(Revoked(None));
            }
            let (stored, done) = mpsc::sync_channel(1);
            actor.do_send(Revoked(Some(stored)));
            if done.recv_timeout(STORE_TIMEOUT).is_err() {
                warn!(target: name, "the offsets of the last events were not stored in time: the next owner redoes them");
            }
        }),
    }
}
