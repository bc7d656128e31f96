//! The payment actor: charges each order once and publishes the outcome.
//!
//! Idempotent by order id: an order seen again (redelivered after a crash, or
//! read twice from Kafka) is acknowledged without a second payment event. The
//! ledger adds what `payment_topic` already holds after every assignment (see
//! `ledger.rs`), so this also holds across restarts and between instances.

use crate::ledger::PaidOrders;
use actix::{Context, Recipient};
use common::event::{OrderEvent, Status};
use common::fault::Role;
use common::messages::{Process, Publish};
use common::stats::Stats;
use common::supervisor::{Supervised, Worker};
use log::info;
use std::collections::HashSet;
use std::sync::Arc;

/// Why a declined payment was declined (chosen per order, repeatably).
const DECLINE_REASONS: [&str; 3] = ["card declined", "insufficient funds", "card expired"];

/// What the payment actor handles: orders, and the ledger's paid orders.
pub enum PaymentInput {
    Order(Process),
    Paid(HashSet<u64>),
}

impl From<Process> for PaymentInput {
    fn from(process: Process) -> Self {
        PaymentInput::Order(process)
    }
}

impl From<PaidOrders> for PaymentInput {
    fn from(PaidOrders(paid): PaidOrders) -> Self {
        PaymentInput::Paid(paid)
    }
}

pub struct PaymentActor {
    paid: HashSet<u64>,
    decline_rate: f64,
    seed: u64,
    payment_topic: String,
    producer: Recipient<Publish>,
    stats: Arc<Stats>,
}

impl PaymentActor {
    pub fn new(
        decline_rate: f64,
        seed: u64,
        payment_topic: &str,
        producer: Recipient<Publish>,
        stats: Arc<Stats>,
    ) -> Self {
        PaymentActor {
            paid: HashSet::new(),
            decline_rate,
            seed,
            payment_topic: payment_topic.to_string(),
            producer,
            stats,
        }
    }
}

impl Worker for PaymentActor {
    type Input = PaymentInput;
    const NAME: &'static str = "PaymentActor";
    const ROLE: Role = Role::Domain;

    fn handle(&mut self, input: &PaymentInput, _: &mut Context<Supervised<Self>>) -> Result<(), String> {
        let Process { event, ticket } = match input {
            PaymentInput::Order(process) => process,
            PaymentInput::Paid(paid) => {
                self.paid.extend(paid);
                return Ok(());
            }
        };
        info!(target: Self::NAME, "🧾 Received Order {event}");
        if self.paid.contains(&event.order_id) {
            info!(target: Self::NAME, "🔁 Order {} is already paid: duplicate ignored", event.order_id);
            self.stats.duplicate_suppressed();
            ticket.complete();
            return Ok(());
        }
        let payment = charge(event, self.decline_rate, self.seed);
        self.paid.insert(event.order_id);
        self.stats.processed();
        let publish =
            Publish::event(&self.payment_topic, &payment, ticket.clone(), Some("✅ Payment Event Sent"));
        self.producer.do_send(publish);
        Ok(())
    }

    fn describe(input: &PaymentInput) -> String {
        match input {
            PaymentInput::Order(process) => format!("order {}", process.event.order_id),
            PaymentInput::Paid(paid) => format!("the {} paid orders from the ledger", paid.len()),
        }
    }

    fn is_event(input: &PaymentInput) -> bool {
        matches!(input, PaymentInput::Order(_))
    }
}

/// Decides the payment of `order`. The decision depends only on the order id and
/// the seed, so a redelivered order gets the same answer.
fn charge(order: &OrderEvent, decline_rate: f64, seed: u64) -> OrderEvent {
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
mod tests {
    use super::*;

    fn decisions(decline_rate: f64) -> Vec<Status> {
        (1000..3000)
            .map(|order_id| {
                let order = OrderEvent {
                    order_id,
                    user_id: 1,
                    amount: 10.0,
                    status: Status::Created,
                    reason: None,
                    created_at_ms: None,
                };
                charge(&order, decline_rate, 7).status
            })
            .collect()
    }

    #[test]
    fn declines_about_the_asked_share_and_repeatably() {
        let first = decisions(0.25);
        let declined = first.iter().filter(|&&s| s == Status::PaymentFailed).count();
        assert!((400..600).contains(&declined), "{declined} of 2000 declined at 25%");
        assert_eq!(first, decisions(0.25));
        assert!(decisions(0.0).iter().all(|&s| s == Status::PaymentSuccessful));
        assert!(decisions(1.0).iter().all(|&s| s == Status::PaymentFailed));
    }
}
