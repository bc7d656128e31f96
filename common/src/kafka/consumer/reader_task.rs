//! The reader task of a consumer: reads records on a thread of its own and
//! hands each to the consumer actor ([`Received`]) with an in-flight slot:
//! back-pressure. It also tells the actor when to store offsets ([`StoreOffsets`]).
//!
//! With every slot taken, it pauses its partitions and polls on, so the group
//! never takes it for dead (`max.poll.interval.ms`) and rebalances are served
//! meanwhile. A record of a held partition (one read before the hold paused it,
//! see `read_gate.rs`) waits until the partition is released; the others pass it.

use crate::actor::in_flight::InFlight;
use crate::base::shutdown::Shutdown;
use crate::kafka::consumer::group::GroupConsumer;
use crate::kafka::consumer::messages::{Received, Record, StoreOffsets};
use actix::{Actor, Addr, Context, Handler};
use log::{debug, info};
use rdkafka::consumer::Consumer;

use rdkafka::TopicPartitionList;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// How long the reader waits for a free in-flight slot before it pauses its
/// partitions (and polls on): far below any `max.poll.interval.ms`.
const PAUSE_AFTER: Duration = Duration::from_millis(500);

/// The reader's lines are its consumer's: `RUST_LOG=ConsumerActor=debug` shows both.
const TARGET: &str = "ConsumerActor";

/// How often the offsets of the events done meanwhile are stored.
pub const STORE_EVERY: Duration = Duration::from_millis(100);

/// How long waking a resumed partition's fetcher may block (see `wake_fetchers`).
const WAKE_TIMEOUT: Duration = Duration::from_millis(100);

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
pub(crate) async fn poll_records<A>(
    client: Arc<GroupConsumer>,
    actor: Addr<A>,
    in_flight: InFlight,
    shutdown: Shutdown,
) where
    A: Actor<Context = Context<A>> + Handler<Received> + Handler<StoreOffsets>,
{
    // One shutdown future for the whole loop, polled by reference: no new
    // subscription per record.
    let stop = shutdown.triggered();
    tokio::pin!(stop);
    let context = client.context();
    let gate = context.read_gate();
    // Records read but not yet handed on, oldest first: for want of a slot (one,
    // normally), or because their partition is held (the few read before it was paused).
    let mut waiting: VecDeque<Record> = VecDeque::new();
    let next_ready = |waiting: &VecDeque<Record>| waiting.iter().position(|r| !gate.holds(r.partition));
    let mut store = tokio::time::interval(STORE_EVERY);
    store.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if next_ready(&waiting).is_some() {
            // A slot mostly frees within moments: pause only for a real stall, as
            // pausing drops the records librdkafka has fetched ahead.
            let slot = match in_flight.try_reserve() {
                Some(slot) => Some(slot),
                None if !gate.is_back_pressured() => tokio::select! {
                    biased;
                    _ = &mut stop => break,
                    slot = tokio::time::timeout(PAUSE_AFTER, in_flight.reserve()) => slot.ok(),
                },
                None => None,
            };
            if let Some(slot) = slot {
                // Asked again with the slot taken: a partition held from now on gets
                // no record beyond those whose slots were taken before. No record
                // ready: the slot is given back as it drops.
                if let Some(record) = next_ready(&waiting).and_then(|at| waiting.remove(at)) {
                    actor.do_send(Received { record, slot: Arc::new(slot) });
                }
                continue;
            }
        }
        // A release of a held partition is seen here at the next record or tick.
        let back_pressured = next_ready(&waiting).is_some();
        if back_pressured != gate.is_back_pressured() {
            if back_pressured {
                debug!(target: TARGET, "{} events in flight: reading paused", in_flight.count());
            }
            set_back_pressured(&client, back_pressured);
        }
        let revocations = context.revocations();
        let slot_freed = async {
            if back_pressured {
                in_flight.slot_freed().await // the loop takes it
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
        if context.revocations() != revocations {
            // The partitions were handed over meanwhile: every position went back
            // to the last commit, so what waited will be read again.
            waiting.clear();
        }
        match record {
            // Handed on at the top of the loop. While paused, this is only a
            // record that slipped past the pause; it waits its turn.
            Some(Ok(record)) => waiting.push_back(record),
            Some(Err(e)) => context.client().complain(&format!("cannot read: {e}")),
            None => {}
        }
    }
    info!(target: TARGET, "stopped taking new events");
}

/// Pauses every partition `consumer` holds while it is back-pressured, and
/// those assigned to it meanwhile; resumes those not held after, and wakes
/// their fetchers (a round trip each).
fn set_back_pressured(consumer: &GroupConsumer, back_pressured: bool) {
    let context = consumer.context();
    match context.read_gate().set_back_pressured(consumer, back_pressured) {
        Ok(resumed) => wake_fetchers(consumer, &resumed),
        Err(e) => {
            let what = if back_pressured { "pause" } else { "resume" };
            context.client().complain(&format!("cannot {what} reading: {e}"))
        }
    }
}

/// librdkafka does not wake a partition's fetcher when the partition resumes:
/// its broker thread notices when it next wakes, up to a second later. A
/// request to each partition's leader wakes its thread now; the answer is not
/// needed, so a slow one is not waited for long.
fn wake_fetchers(consumer: &GroupConsumer, partitions: &TopicPartitionList) {
    for partition in partitions.elements() {
        let _ = consumer.fetch_watermarks(partition.topic(), partition.partition(), WAKE_TIMEOUT);
    }
}
