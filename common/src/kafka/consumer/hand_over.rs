//! The rebalance hand-over: before its partitions go, the consumer finishes
//! the events in flight, then has its actor store their offsets, so the
//! commit that follows hands the next owner exactly where this one stopped.
//!
//! Every slot comes back, also a lost ticket's (`actor/in_flight.rs`), so the
//! drain ends when the events do. What did not finish in time is forgotten
//! with the partitions ([`Revoked`]): its completion, if it comes, is of an
//! earlier generation and marks nothing (see `offsets.rs`).

use crate::actor::in_flight::InFlight;
use crate::base::shutdown::{Reason, Shutdown};
use crate::kafka::consumer::group::RebalanceHooks;
use actix::{Message, Recipient};
use log::{info, warn};
use std::sync::mpsc;
use std::time::Duration;

/// How long a rebalance waits for the actor to store the offsets of the events done.
const STORE_TIMEOUT: Duration = Duration::from_secs(5);

/// The hand-over's lines are the consumer's: `RUST_LOG=ConsumerActor=debug` shows them.
const TARGET: &str = "ConsumerActor";

/// The partitions are being taken away, after the events in flight were
/// finished: store what is done (the sender, if any, is told once it is),
/// then forget them.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Revoked(pub Option<mpsc::SyncSender<()>>);

/// What the consumer does around a rebalance: before a revocation, wait (at
/// most `drain`) for the events in flight, then tell `actor` the partitions
/// are revoked and wait for it to store their offsets; an assignment beside
/// a member on another store shuts the service down.
pub fn hand_over(
    actor: Recipient<Revoked>,
    in_flight: InFlight,
    drain: Duration,
    shutdown: Shutdown,
) -> RebalanceHooks {
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
                info!(target: TARGET, "finishing {finishing} events in flight before the hand-over");
            }
            if finishing > 0 && !in_flight.drained_blocking(drain) {
                warn!(
                    target: TARGET,
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
                warn!(target: TARGET, "the offsets of the last events were not stored in time: the next owner redoes them");
            }
        }),
    }
}
