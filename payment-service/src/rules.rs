//! The payment rules: what payment-service does when an order arrives, when
//! the store judges its charge and when the broker has its payment event, as
//! plain values for the payment actor (`payment.rs`) to carry out. No actor,
//! store or broker here.
//!
//! The store is the fence (see `common::store`): an order's charge is recorded
//! under its id before its payment event is published, and the event published
//! is always the recorded one. An order found recorded (by this instance before
//! a crash, or by another instance, a zombie's successor or the zombie itself)
//! is not decided again: its recorded event is published again, byte for byte,
//! so no order is left without its event and every copy of it agrees. An order
//! whose id is recorded for another order (other user or amount) is a conflict:
//! dead-lettered, never taken as paid.
//!
//! An order counts as paid once the broker has its payment event; a copy that
//! arrives before then is completed with the original, never ahead of it
//! (`common::actor::coalescer`). What it remembers is bounded: the orders on
//! their way, and the last `--dedup-capacity` orders it paid (their copies need
//! no store round trip).

use common::actor::coalescer::{Arrival, Coalescer, Waiting};
use common::store::{Charge, ChargeVerdict, RecordedCharge};
use common::wire::event::{OrderEvent, Status};
use std::fmt;

/// Why a declined payment was declined (chosen per order, repeatably).
const DECLINE_REASONS: [&str; 3] = ["card declined", "insufficient funds", "card expired"];

/// What tells an order from another under the same id: its user and amount.
type Fingerprint = (u64, u64);

fn fingerprint(order: &OrderEvent) -> Fingerprint {
    (order.user_id, order.amount.to_bits())
}

/// What the store's verdict on an order's charge calls for.
#[derive(Debug, PartialEq)]
pub enum ChargeOutcome {
    /// The charge decided here is the record: publish its payment event.
    Publish(Vec<u8>),
    /// The order was charged before: publish the payment event recorded then.
    Republish(RecordedCharge),
    /// The id is recorded for another order: dead-letter this one, unpaid.
    DeadLetter(Conflict),
}

/// An order under an id that the store holds for another order.
#[derive(Debug, PartialEq)]
pub struct Conflict {
    order_id: u64,
    user_id: u64,
    amount: f64,
    recorded: RecordedCharge,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Conflict { order_id, user_id, amount, recorded } = self;
        write!(
            f,
            "order {order_id} conflicts with the charge recorded for that id by {} at {} (user {}, amount {}): \
             this one has user {user_id}, amount {amount}; order ids were reused (was the broker's storage \
             emptied?), or another producer writes them",
            recorded.charged_by, recorded.charged_at_ms, recorded.user_id, recorded.amount
        )
    }
}

/// The rules of one payment-service instance; `T` is what completes an order
/// (its ticket), kept until its payment event is acknowledged.
pub struct PaymentRules<T> {
    /// The orders on their way, and the last ones paid, whose payment events
    /// the broker has: a copy is the same order (user and amount) under the same id.
    orders: Coalescer<Fingerprint, T>,
    decline_rate: f64,
    seed: u64,
}

impl<T> PaymentRules<T> {
    /// Declines `decline_rate` of the payments, as drawn from `seed`; remembers
    /// the last `dedup_capacity` orders paid.
    pub fn new(decline_rate: f64, seed: u64, dedup_capacity: usize) -> Self {
        PaymentRules { orders: Coalescer::new(dedup_capacity), decline_rate, seed }
    }

    /// `order` arrived with `ticket`. The first of its id is decided here, and
    /// its charge is for the store to record; its verdict goes to [`Self::charged`].
    pub fn arrived(&mut self, order: &OrderEvent, ticket: T) -> Arrival<T, Charge> {
        let (decline_rate, seed) = (self.decline_rate, self.seed);
        self.orders.arrive(order.order_id, fingerprint(order), ticket, || {
            let payment = decide(order, decline_rate, seed);
            Charge {
                order_id: order.order_id,
                user_id: order.user_id,
                amount: order.amount,
                event: payment.encode(),
                declined: payment.reason,
            }
        })
    }

    /// The store's verdict on the charge of `order`, whose payment event this
    /// instance decided as `decided`.
    pub fn charged(&mut self, order: &OrderEvent, decided: Vec<u8>, verdict: ChargeVerdict) -> ChargeOutcome {
        match verdict {
            ChargeVerdict::Recorded => ChargeOutcome::Publish(decided),
            ChargeVerdict::Found(recorded) if fingerprint_of(&recorded) == fingerprint(order) => {
                ChargeOutcome::Republish(recorded)
            }
            ChargeVerdict::Found(recorded) => {
                self.orders.refuse(order.order_id);
                let OrderEvent { order_id, user_id, amount, .. } = *order;
                ChargeOutcome::DeadLetter(Conflict { order_id, user_id, amount, recorded })
            }
        }
    }

    /// The broker has what was published for `order_id` (its payment event, or
    /// its dead letter): the order is done, and so are its copies. `None` if
    /// it was not on its way.
    pub fn acknowledged(&mut self, order_id: u64) -> Option<Waiting<T>> {
        self.orders.finish(order_id)
    }
}

fn fingerprint_of(recorded: &RecordedCharge) -> Fingerprint {
    (recorded.user_id, recorded.amount.to_bits())
}

/// Decides the payment of `order`. The decision depends only on the order id and
/// the seed, so a redelivered order gets the same answer.
fn decide(order: &OrderEvent, decline_rate: f64, seed: u64) -> OrderEvent {
    let draw = splitmix64(order.order_id ^ seed);
    let declined = (draw as f64 / u64::MAX as f64) < decline_rate;
    OrderEvent {
        status: if declined { Status::PaymentFailed } else { Status::PaymentSuccessful },
        reason: declined.then(|| DECLINE_REASONS[(draw % DECLINE_REASONS.len() as u64) as usize].to_string()),
        ..order.clone()
    }
}

/// A fast, well-mixed 64-bit hash (SplitMix64's finaliser).
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
