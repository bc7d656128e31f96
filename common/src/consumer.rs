//! The consumer actor: reads a topic, hands valid events to the domain actor,
//! dead-letters the rest, and stores each offset once its event is done.
//!
//! Offsets are stored in batches ([`StoreOffsets`], every [`STORE_EVERY`]) right
//! after the service's buffered log lines are written out (see `logging.rs`): an
//! event is committed only once its lines, notification-service's emails among
//! them, are out of the process.
//!
//! Reading happens in a small task on a thread of its own (`poll_records`), which
//! takes an in-flight slot for each record: back-pressure. With every slot taken,
//! it pauses its partitions and polls on, so the group never takes it for dead
//! (`max.poll.interval.ms`) and serves rebalances meanwhile. The actor itself only
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
//! Rebalances: librdkafka runs its callback on the reader thread. Before the
//! partitions go, the callback waits until every event in flight is done (the
//! actors keep working on the main thread) and commits, so the next owner
//! starts exactly where this one stopped (unless the wait times out: then it
//! redoes the unfinished events).

use crate::dead_letter::{dead_letter, Source};
use crate::error::ActorError;
use crate::event::{OrderEvent, Status};
use crate::fault::Role;
use crate::in_flight::InFlight;
use crate::kafka::{KafkaContext, RebalanceHooks};
use crate::messages::{Completed, Origin, Process, Publish, TicketIssuer};
use crate::offsets::{OffsetTracker, Stall};
use crate::shutdown::Shutdown;
use crate::stats::Stats;
use crate::supervisor::{Supervised, Supervision, Worker};
use actix::{Addr, Arbiter, Context, Message, Recipient};
use foldhash::{HashMap, HashMapExt};
use log::{debug, info, warn};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message as _};
use std::collections::VecDeque;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// How long the reader waits for a free in-flight slot before it pauses its
/// partitions (and polls on): far below any `max.poll.interval.ms`.
const PAUSE_AFTER: Duration = Duration::from_millis(500);

/// How often the offsets of the events done meanwhile are stored.
pub const STORE_EVERY: Duration = Duration::from_millis(100);

/// How long a rebalance waits for the actor to store the offsets of the events done.
const STORE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a partition's stored offset may stay put, with events of it waiting,
/// before a warning says so.
const STALL_WARNING_AFTER: Duration = Duration::from_secs(60);

/// A record read from the topic: what the actor uses of it, owned.
///
/// Not rdkafka's `OwnedMessage`: detaching one also copies its headers, which
/// librdkafka parses and allocates one by one, then frees again, for headers no
/// consumer actor reads (a third of notification-service's CPU over 300,000
/// orders went there).
#[derive(Debug)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    /// Shared with the event made of it, whose log lines show it as it arrived.
    pub payload: Option<Arc<[u8]>>,
}

impl Record {
    fn copied_from(message: &BorrowedMessage<'_>) -> Self {
        Record {
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(Arc::from),
        }
    }
}

/// A record read from the topic.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Received(pub Record);

/// The partitions are being taken away, after the events in flight were
/// finished: store what is done (the sender, if any, is told once it is),
/// then forget them.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Revoked(pub Option<mpsc::SyncSender<()>>);

/// Write out the log lines, then store the offsets of the events done since
/// the last time.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StoreOffsets;

/// Everything the consumer actor handles.
pub enum ConsumerInput {
    Received(Record),
    Completed(Origin),
    Revoked(Option<mpsc::SyncSender<()>>),
    StoreOffsets,
}

impl From<Revoked> for ConsumerInput {
    fn from(Revoked(stored): Revoked) -> Self {
        ConsumerInput::Revoked(stored)
    }
}

impl From<StoreOffsets> for ConsumerInput {
    fn from(_: StoreOffsets) -> Self {
        ConsumerInput::StoreOffsets
    }
}

impl From<Received> for ConsumerInput {
    fn from(Received(record): Received) -> Self {
        ConsumerInput::Received(record)
    }
}

impl From<Completed> for ConsumerInput {
    fn from(Completed(origin): Completed) -> Self {
        ConsumerInput::Completed(origin)
    }
}

pub struct ConsumerActor {
    client: Arc<StreamConsumer<KafkaContext>>,
    topic: String,
    /// The statuses a valid event on this topic may have.
    accepted: &'static [Status],
    domain: Recipient<Process>,
    dead_letters: Recipient<Publish>,
    offsets: OffsetTracker,
    /// Per partition, the offset to store at the next [`StoreOffsets`].
    unstored: HashMap<i32, i64>,
    in_flight: InFlight,
    tickets: TicketIssuer,
    stats: Arc<Stats>,
    service: &'static str,
}

/// How to build a [`ConsumerActor`].
pub struct ConsumerSetup {
    pub client: Arc<StreamConsumer<KafkaContext>>,
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
    pub fn start(setup: ConsumerSetup, supervision: &Supervision) -> Addr<Supervised<ConsumerActor>> {
        let actor = ConsumerActor {
            client: setup.client.clone(),
            topic: setup.topic,
            accepted: setup.accepted,
            domain: setup.domain,
            dead_letters: setup.dead_letters,
            // As many done behind a stuck event per partition as may be in flight.
            offsets: OffsetTracker::new(setup.in_flight.capacity() as usize),
            unstored: HashMap::new(),
            in_flight: setup.in_flight.clone(),
            tickets: TicketIssuer::default(),
            stats: supervision.stats.clone(),
            service: setup.service,
        };
        let addr = Supervised::start(actor, supervision);
        let (in_flight, drain, actor) = (setup.in_flight.clone(), setup.drain_timeout, addr.clone());
        let shutdown = supervision.shutdown.clone();
        setup.client.context().set_rebalance_hooks(RebalanceHooks {
            before_revoke: Box::new(move || {
                // At shutdown, the service has drained already (the revocation comes
                // when the consumer closes): no second wait for what did not finish.
                let at_shutdown = shutdown.is_triggered();
                let finishing = if at_shutdown { 0 } else { in_flight.count() };
                if finishing > 0 {
                    info!(target: Self::NAME, "finishing {finishing} events in flight before the hand-over");
                }
                if finishing > 0 && !in_flight.drained_blocking(drain) {
                    warn!(
                        target: Self::NAME,
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
                    warn!(
                        target: Self::NAME,
                        "the offsets of the last events were not stored in time: the next owner redoes them"
                    );
                }
            }),
        });
        // The reader gets a thread of its own: the rebalance callback blocks it
        // while the actors, on this thread, finish the events in flight.
        let reader = Arbiter::new();
        let (client, shutdown) = (setup.client, supervision.shutdown.clone());
        reader.spawn(poll_records(client, addr.clone(), setup.in_flight, shutdown));
        addr
    }

    fn received(&mut self, record: &Record, ctx: &Context<Supervised<Self>>) {
        let (partition, offset) = (record.partition, record.offset);
        self.offsets.begin(partition, offset);
        let ticket = self.tickets.issue(Origin::Record { partition, offset }, ctx);
        match OrderEvent::decode(record.payload.as_deref(), self.accepted) {
            Ok(event) => {
                self.stats.took_event_created_at(event.created_at_ms);
                let payload = record.payload.clone();
                self.domain.do_send(Process { event, ticket, payload })
            }
            Err(invalid) => {
                warn!(
                    target: Self::NAME,
                    "☠️  dead-lettering {}[{partition}]@{offset}: {invalid}",
                    self.topic
                );
                self.stats.dead_lettered();
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
        let Some(progress) = self.offsets.complete(partition, offset) else {
            return; // already done, or its partition was revoked: nothing to free
        };
        if let Some(through) = progress.to_store {
            self.unstored.insert(partition, through);
        }
        // Before the slot is freed: no record of a partition held from now on
        // takes it (see `poll_records`).
        if let Some(held) = progress.hold {
            self.set_held(partition, held);
        }
        self.in_flight.release();
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
        self.client.context().set_held(self.client.as_ref(), partition, held);
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
        if self.unstored.is_empty() || !crate::logging::flush() {
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
        ctx: &mut Context<Supervised<Self>>,
    ) -> Result<(), ActorError> {
        match input {
            ConsumerInput::Received(record) => self.received(record, ctx),
            ConsumerInput::Completed(origin) => self.completed(*origin),
            ConsumerInput::StoreOffsets => {
                self.store_offsets();
                self.watch_stalls();
            }
            ConsumerInput::Revoked(stored) => {
                self.store_offsets();
                // Offsets not stored now (the log could not be written) are no longer
                // ours: stored later, they could take back a later owner's commit.
                self.unstored.clear();
                // What held a partition is forgotten below: the next assignment reads them all.
                self.client.context().release_held(self.client.as_ref());
                if let Some(stored) = stored {
                    let _ = stored.send(());
                }
                let unfinished = self.offsets.forget_all();
                for _ in 0..unfinished {
                    self.in_flight.release();
                }
            }
        }
        Ok(())
    }

    fn describe(input: &ConsumerInput) -> String {
        match input {
            ConsumerInput::Received(record) => match record.key.as_deref().map(String::from_utf8_lossy) {
                Some(key) => format!("order {key} ({}@{})", record.partition, record.offset),
                None => format!("a record ({}@{})", record.partition, record.offset),
            },
            ConsumerInput::Completed(origin) => format!("the completion of {origin:?}"),
            ConsumerInput::Revoked(_) => "the revocation of its partitions".to_string(),
            ConsumerInput::StoreOffsets => "storing offsets".to_string(),
        }
    }

    fn is_event(input: &ConsumerInput) -> bool {
        matches!(input, ConsumerInput::Received(_))
    }
}

/// Feeds the actor: one in-flight slot per record, until shutdown. The slot is
/// taken after the record is read, so a rebalance callback (which runs inside
/// `recv`) sees only the slots of events really in flight.
///
/// When every slot is taken, the reader pauses its partitions and keeps polling
/// until one frees: a consumer that stops polling for `max.poll.interval.ms`
/// is evicted from its group, and its events are redone by another.
///
/// A record of a held partition (one read before the hold paused it) waits
/// until the partition is released; the others pass it.
async fn poll_records(
    client: Arc<StreamConsumer<KafkaContext>>,
    actor: Addr<Supervised<ConsumerActor>>,
    in_flight: InFlight,
    shutdown: Shutdown,
) {
    // One shutdown future for the whole loop, polled by reference: no new
    // subscription per record.
    let stop = shutdown.triggered();
    tokio::pin!(stop);
    let context = client.context();
    // Records read but not yet handed on, oldest first: for want of a slot (one,
    // normally), or because their partition is held (the few read before it was paused).
    let mut waiting: VecDeque<Record> = VecDeque::new();
    let next_ready = |waiting: &VecDeque<Record>| waiting.iter().position(|r| !context.holds(r.partition));
    let mut paused = false;
    let mut store = tokio::time::interval(STORE_EVERY);
    store.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if next_ready(&waiting).is_some() {
            // A slot mostly frees within moments: pause only for a real stall, as
            // pausing drops the records librdkafka has fetched ahead.
            let slot = in_flight.try_reserve()
                || !paused
                    && tokio::select! {
                        biased;
                        _ = &mut stop => break,
                        slot = tokio::time::timeout(PAUSE_AFTER, in_flight.reserve()) => slot.is_ok(),
                    };
            if slot {
                // Asked again with the slot taken: a partition held from now on gets
                // no record beyond those whose slots were taken before.
                match next_ready(&waiting).and_then(|at| waiting.remove(at)) {
                    Some(record) => actor.do_send(Received(record)),
                    None => in_flight.release(),
                }
                continue;
            }
        }
        // A release of a held partition is seen here at the next record or tick.
        let back_pressured = next_ready(&waiting).is_some();
        if back_pressured != paused {
            paused = back_pressured;
            if paused {
                debug!(target: ConsumerActor::NAME, "{} events in flight: reading paused", in_flight.count());
            }
            client.context().set_paused(client.as_ref(), paused);
        }
        let revocations = client.context().revocations();
        let slot_freed = async {
            if back_pressured {
                in_flight.reserve().await;
                in_flight.release(); // checked, not taken: the loop takes it
            } else {
                std::future::pending().await
            }
        };
        let record = tokio::select! {
            biased;
            _ = &mut stop => break, // what waits is not ours yet: it stays uncommitted
            () = slot_freed => None,
            _ = store.tick() => {
                actor.do_send(StoreOffsets);
                None
            }
            record = client.recv() => Some(record.map(|message| Record::copied_from(&message))),
        };
        if client.context().revocations() != revocations {
            // The partitions were handed over meanwhile: every position went back
            // to the last commit, so what waited will be read again.
            waiting.clear();
        }
        match record {
            // Handed on at the top of the loop. While paused, this is only a
            // record that slipped past the pause; it waits its turn.
            Some(Ok(record)) => waiting.push_back(record),
            Some(Err(e)) => client.context().complain(&format!("cannot read: {e}")),
            None => {}
        }
    }
    info!(target: ConsumerActor::NAME, "stopped taking new events");
}
