//! The last steps of a service's shutdown: the events in flight drained, the
//! consumer's last offsets stored and committed, the producer flushed, and an
//! exit by a deadline, whatever a broker that is away makes them wait for.

use crate::actor::in_flight::InFlight;
use crate::actor::supervisor::WorkerActor;
use crate::base::logging;
use crate::kafka::consumer::actor::ConsumerActor;
use crate::kafka::consumer::group::{commit_stored_offsets, GroupConsumer};
use crate::kafka::consumer::messages::StoreOffsets;
use crate::kafka::producer::deliveries::KafkaProducer;
use actix::Addr;
use log::{info, warn};
use rdkafka::consumer::Consumer;
use rdkafka::producer::Producer;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A consumer service's Kafka consumer and the actor that stores its offsets
/// (told to once more before the last commit).
pub(super) struct RunningConsumer {
    pub(super) client: Arc<GroupConsumer>,
    pub(super) actor: Addr<WorkerActor<ConsumerActor>>,
}

/// Waits up to `timeout` for the events in flight to finish, and says what
/// becomes of those that did not.
pub(super) async fn drain(in_flight: &InFlight, timeout: Duration, consumes: bool) {
    if in_flight.drained(timeout).await {
        return;
    }
    // A consumer's unfinished events are read again; order-service's
    // unacknowledged orders are not made again.
    let fate = if consumes {
        "not committed, they will be redelivered"
    } else {
        "not acknowledged by the broker, which may or may not have them"
    };
    warn!(target: "service", "{} events still in flight after {} s: {fate}", in_flight.count(), timeout.as_secs());
}

/// Stores and commits the consumer's last offsets and flushes the producer,
/// each within `deadline`.
pub(super) async fn close_clients(
    consumer: Option<&RunningConsumer>,
    producer: Option<&KafkaProducer>,
    deadline: Instant,
) {
    if let Some(RunningConsumer { client, actor }) = consumer {
        // The offsets of the events done since the last store, after their log lines.
        let stored = tokio::time::timeout_at(deadline.into(), actor.send(StoreOffsets)).await;
        if !matches!(stored, Ok(Ok(()))) {
            warn!(target: "service", "cannot store the last offsets: their events will be redelivered");
        }
        let committing = client.clone();
        match within(deadline, move || commit_stored_offsets(committing.as_ref())).await {
            Some(Ok(())) => info!(target: "service", "offsets committed"),
            Some(Err(e)) => {
                warn!(target: "service", "cannot commit offsets ({e}): the last events will be redelivered")
            }
            None => warn!(
                target: "service",
                "cannot commit offsets: no answer from the broker; the last events will be redelivered"
            ),
        }
        client.unsubscribe();
    }
    if let Some(producer) = producer {
        if let Err(e) = producer.flush(deadline.saturating_duration_since(Instant::now())) {
            warn!(target: "service", "cannot flush the producer: {e}");
        }
    }
}

/// Runs blocking `work` on a thread of its own and waits for it until `deadline`.
async fn within<T: Send + 'static>(
    deadline: Instant,
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || done.send(work()));
    tokio::time::timeout_at(deadline.into(), result).await.ok()?.ok()
}

/// Exits with `status` at `deadline` if the process has not ended by then:
/// dropping the Kafka clients closes them (the consumer leaves its group),
/// which waits for a broker that may be away.
pub(super) fn exit_at(deadline: Instant, status: u8) {
    std::thread::spawn(move || {
        std::thread::sleep(deadline.saturating_duration_since(Instant::now())); // a deadline, not a wait for an event
        let status = if logging::flush() { status } else { 1 };
        std::process::exit(status.into());
    });
}
