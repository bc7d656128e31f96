//! The payment actor: charges each order once and publishes the outcome.
//!
//! Idempotent by order id: an order seen again (redelivered after a crash, or
//! read twice from Kafka) gets no second payment event. An order counts as paid
//! only once the broker has its payment event: a copy that arrives before then
//! is completed together with the original, never ahead of it, so its offset is
//! not committed before the payment is safe. After every assignment the ledger
//! says which of the orders Kafka can still redeliver are already paid (see
//! `ledger.rs`), so this also holds across restarts and between instances.
//!
//! What it remembers is bounded: the ledger until the orders it covers are
//! past, and the last `--dedup-capacity` orders it paid (for a second record of
//! an order, which only another producer writes).

use crate::ledger::{Ledger, ORDER_OFFSET, ORDER_PARTITION};
use actix::{Context, Recipient};
use common::error::ActorError;
use common::event::{OrderEvent, Status};
use common::fault::Role;
use common::messages::{Completed, Origin, Process, Publish, Ticket, TicketIssuer};
use common::recent_ids::RecentIds;
use common::stats::Stats;
use common::supervisor::{Supervised, Worker};
use foldhash::{HashMap, HashMapExt};
use log::info;
use std::sync::Arc;

/// Why a declined payment was declined (chosen per order, repeatably).
const DECLINE_REASONS: [&str; 3] = ["card declined", "insufficient funds", "card expired"];

/// What the payment actor handles: orders, the ledger of each assignment, and
/// the broker's acknowledgements of its payment events.
pub enum PaymentInput {
    Order(Process),
    Ledger(Ledger),
    Acknowledged(Origin),
}

impl From<Completed> for PaymentInput {
    fn from(Completed(origin): Completed) -> Self {
        PaymentInput::Acknowledged(origin)
    }
}

impl From<Process> for PaymentInput {
    fn from(process: Process) -> Self {
        PaymentInput::Order(process)
    }
}

impl From<Ledger> for PaymentInput {
    fn from(ledger: Ledger) -> Self {
        PaymentInput::Ledger(ledger)
    }
}

/// How the payment actor is set up.
pub struct PaymentSetup {
    pub decline_rate: f64,
    pub seed: u64,
    pub payment_topic: Arc<str>,
    /// Payment events go to their order's partition number (see `ledger.rs`).
    pub pinned: bool,
    pub dedup_capacity: usize,
    pub producer: Recipient<Publish>,
    pub stats: Arc<Stats>,
}

pub struct PaymentActor {
    /// Orders already paid that the last assignment can still redeliver.
    ledger: Ledger,
    /// The orders this process paid last, whose payment events the broker has.
    paid: RecentIds,
    /// Orders whose payment event is on its way: the ticket of the order, and
    /// those of the copies of it that arrived meanwhile (nearly always none).
    paying: HashMap<u64, (Ticket, Vec<Ticket>)>,
    /// The tickets of payment events, completed when the broker has them.
    acknowledgements: TicketIssuer,
    setup: PaymentSetup,
}

impl PaymentActor {
    pub fn new(setup: PaymentSetup) -> Self {
        PaymentActor {
            ledger: Ledger::default(),
            paid: RecentIds::new(setup.dedup_capacity),
            paying: HashMap::new(),
            acknowledgements: TicketIssuer::default(),
            setup,
        }
    }
}

impl Worker for PaymentActor {
    type Input = PaymentInput;
    const NAME: &'static str = "PaymentActor";
    const ROLE: Role = Role::Domain;

    fn handle(
        &mut self,
        input: &PaymentInput,
        ctx: &mut Context<Supervised<Self>>,
    ) -> Result<(), ActorError> {
        let process = match input {
            PaymentInput::Order(process) => process,
            PaymentInput::Ledger(ledger) => {
                self.ledger = ledger.clone();
                return Ok(());
            }
            PaymentInput::Acknowledged(origin) => {
                if let Origin::Order { order_id } = *origin {
                    self.paid.insert(order_id);
                    if let Some((original, copies)) = self.paying.remove(&order_id) {
                        original.complete();
                        copies.iter().for_each(Ticket::complete);
                    }
                }
                return Ok(());
            }
        };
        info!(target: Self::NAME, "🧾 Received Order {}", process.json());
        let Process { event, ticket, .. } = process;
        let order_id = event.order_id;
        // Where on order_topic the order is (always known: orders come from the consumer).
        let position = match ticket.origin {
            Origin::Record { partition, offset } => Some((partition, offset)),
            Origin::Order { .. } => None,
        };
        if let Some((partition, offset)) = position {
            self.ledger.passed(partition, offset);
        }
        if self.paid.contains(order_id)
            || self.ledger.contains(order_id)
            || self.paying.contains_key(&order_id)
        {
            info!(target: Self::NAME, "🔁 Order {order_id} is already paid: duplicate ignored");
            self.setup.stats.duplicate_suppressed();
            match self.paying.get_mut(&order_id) {
                Some((_, copies)) => copies.push(ticket.clone()), // done when the payment is acknowledged
                None => ticket.complete(),
            }
            return Ok(());
        }
        let payment = charge(event, self.setup.decline_rate, self.setup.seed);
        self.paying.insert(order_id, (ticket.clone(), Vec::new()));
        self.setup.stats.processed();
        let acknowledgement = self.acknowledgements.issue(Origin::Order { order_id }, ctx);
        let mut publish = Publish::event(
            &self.setup.payment_topic,
            &payment,
            acknowledgement,
            Some("✅ Payment Event Sent"),
        );
        if let Some((partition, offset)) = position {
            publish.partition = self.setup.pinned.then_some(partition);
            // Pinned, the event's own partition names its order's: one header, not two
            // (each costs librdkafka an allocation at both ends).
            let offset = (ORDER_OFFSET, offset.to_string());
            publish.headers = match publish.partition {
                Some(_) => Arc::new([offset]),
                None => Arc::new([(ORDER_PARTITION, partition.to_string()), offset]),
            };
        }
        self.setup.producer.do_send(publish);
        Ok(())
    }

    fn describe(input: &PaymentInput) -> String {
        match input {
            PaymentInput::Order(process) => format!("order {}", process.event.order_id),
            PaymentInput::Ledger(ledger) => format!("the ledger of {} paid orders", ledger.paid.len()),
            PaymentInput::Acknowledged(origin) => format!("the acknowledgement of {origin:?}"),
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
