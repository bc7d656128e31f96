//! The payment actor: charges each order once and publishes the outcome.
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
//! arrives before then is completed with the original, never ahead of it. What
//! it remembers is bounded: the orders on their way, and the last
//! `--dedup-capacity` orders it paid (their copies need no store round trip).

use crate::decision::charge;
use actix::{AsyncContext, Context, Message, Recipient};
use common::actor::error::ActorError;
use common::actor::fault::Role;
use common::actor::messages::{Completed, Origin, Process, Publish, Ticket, TicketIssuer};
use common::actor::recent_ids::RecentIds;
use common::actor::supervisor::{Worker, WorkerActor};
use common::base::metrics::Metrics;
use common::kafka::producer::dead_letter::{dead_letter, Source};
use common::store::{Charge, ChargeVerdict, RecordedCharge, Store};
use common::wire::event::OrderEvent;
use foldhash::{HashMap, HashMapExt};
use log::{info, warn};
use std::sync::Arc;

/// The store's answer on an order's charge, with the order and the payment
/// event this instance decided for it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Charged {
    order: Process,
    decided: Vec<u8>,
    verdict: ChargeVerdict,
}

common::worker_input! {
    /// What the payment actor handles: orders, the store's answers, and the
    /// broker's acknowledgements of what it published.
    pub enum PaymentInput { Process, Charged, Completed }
}

/// How the payment actor is set up.
pub struct PaymentSetup {
    pub decline_rate: f64,
    pub seed: u64,
    pub order_topic: String,
    pub payment_topic: Arc<str>,
    pub store: Store,
    pub dedup_capacity: usize,
    pub producer: Recipient<Publish>,
    pub metrics: Arc<Metrics>,
}

/// What tells an order from another under the same id: its user and amount.
type Fingerprint = (u64, u64);

fn fingerprint(order: &OrderEvent) -> Fingerprint {
    (order.user_id, order.amount.to_bits())
}

/// An order on its way: charged (or being), its payment event not yet acknowledged.
struct Paying {
    order: Fingerprint,
    ticket: Ticket,
    /// Copies of the order that arrived meanwhile (nearly always none).
    copies: Vec<Ticket>,
    /// Other orders under the same id that arrived meanwhile, handled once this one is done.
    others: Vec<Process>,
    /// Dead-lettered as a conflict: acknowledged, it is not paid.
    conflict: bool,
}

pub struct PaymentActor {
    /// The orders this process paid last, whose payment events the broker has,
    /// with their user and amount: a copy is the same order, under the same id.
    paid: RecentIds<Fingerprint>,
    paying: HashMap<u64, Paying>,
    /// The tickets of payment events, completed when the broker has them.
    acknowledgements: TicketIssuer,
    setup: PaymentSetup,
}

impl PaymentActor {
    pub fn new(setup: PaymentSetup) -> Self {
        PaymentActor {
            paid: RecentIds::new(setup.dedup_capacity),
            paying: HashMap::new(),
            acknowledgements: TicketIssuer::default(),
            setup,
        }
    }

    /// Decides `order`'s payment and asks the store to record it.
    fn received(&mut self, order: &Process, ctx: &Context<WorkerActor<Self>>) {
        info!(target: Self::NAME, "🧾 Received Order {}", order.json());
        let order_id = order.event.order_id;
        if let Some(paying) = self.paying.get_mut(&order_id) {
            if paying.order != fingerprint(&order.event) {
                // Another order under the id being paid: the store judges it once that one is.
                return paying.others.push(order.clone());
            }
            self.setup.metrics.duplicate_suppressed();
            info!(target: Self::NAME, "🔁 Order {order_id} is being paid: duplicate ignored");
            return paying.copies.push(order.ticket.clone()); // done when the payment is acknowledged
        }
        if self.paid.get(order_id) == Some(&fingerprint(&order.event)) {
            self.setup.metrics.duplicate_suppressed();
            info!(target: Self::NAME, "🔁 Order {order_id} is already paid: duplicate ignored");
            return order.ticket.clone().complete();
        }
        let payment = charge(&order.event, self.setup.decline_rate, self.setup.seed);
        let decided = payment.encode();
        let charge = Charge {
            order_id,
            user_id: order.event.user_id,
            amount: order.event.amount,
            declined: payment.reason,
            event: decided.clone(),
        };
        let paying = Paying {
            order: fingerprint(&order.event),
            ticket: order.ticket.clone(),
            copies: Vec::new(),
            others: Vec::new(),
            conflict: false,
        };
        self.paying.insert(order_id, paying);
        let (me, order) = (ctx.address(), order.clone());
        self.setup
            .store
            .charge(charge, Box::new(move |verdict| me.do_send(Charged { order, decided, verdict })));
    }

    /// Publishes the recorded payment event of `order`, or dead-letters a conflict.
    fn charged(&mut self, Charged { order, decided, verdict }: &Charged, ctx: &Context<WorkerActor<Self>>) {
        let order_id = order.event.order_id;
        // The payment event's ticket holds the order's slot too.
        let slot = order.ticket.slot().clone();
        let acknowledgement = self.acknowledgements.issue(Origin::Order { order_id }, slot, ctx);
        let event = match verdict {
            ChargeVerdict::Recorded => {
                self.setup.metrics.processed();
                decided.clone()
            }
            ChargeVerdict::Found(recorded) if same_order(&order.event, recorded) => {
                self.setup.metrics.duplicate_suppressed();
                info!(
                    target: Self::NAME,
                    "🔁 Order {order_id} was already charged by {} at {}: publishing its recorded payment event",
                    recorded.charged_by,
                    recorded.charged_at_ms
                );
                recorded.event.clone()
            }
            ChargeVerdict::Found(recorded) => return self.conflict(order, recorded, acknowledgement),
        };
        self.setup.producer.do_send(Publish {
            topic: self.setup.payment_topic.clone(),
            partition: None,
            key: Some(order.event.key().into_bytes()),
            payload: event,
            headers: Arc::default(),
            ticket: acknowledgement,
            announce: Some("✅ Payment Event Sent"),
        });
    }

    /// `order` has the id of another order in the store: it is dead-lettered, not paid.
    fn conflict(&mut self, order: &Process, recorded: &RecordedCharge, acknowledgement: Ticket) {
        let event = &order.event;
        let why =
            format!(
            "order {} conflicts with the charge recorded for that id by {} at {} (user {}, amount {}): this \
             one has user {}, amount {}; order ids were reused (was the broker's storage emptied?), or \
             another producer writes them",
            event.order_id, recorded.charged_by, recorded.charged_at_ms, recorded.user_id, recorded.amount,
            event.user_id, event.amount
        );
        let (partition, offset) = match order.ticket.origin {
            Origin::Record { partition, offset, .. } => (partition, offset),
            Origin::Order { .. } => (-1, -1), // made in this process: never, orders are consumed
        };
        warn!(target: Self::NAME, "☠️  dead-lettering {}[{partition}]@{offset}: {why}", self.setup.order_topic);
        self.setup.metrics.conflict();
        self.setup.metrics.dead_lettered();
        if let Some(paying) = self.paying.get_mut(&event.order_id) {
            paying.conflict = true;
        }
        let source = Source { topic: &self.setup.order_topic, partition, offset, service: "payment-service" };
        let payload = order.payload.as_deref().unwrap_or_default();
        self.setup.producer.do_send(dead_letter(
            &source,
            Some(event.key().into_bytes()),
            payload,
            why,
            acknowledgement,
        ));
    }

    fn acknowledged(&mut self, origin: Origin, ctx: &Context<WorkerActor<Self>>) {
        let Origin::Order { order_id } = origin else { return };
        if let Some(paying) = self.paying.remove(&order_id) {
            if !paying.conflict {
                self.paid.insert(order_id, paying.order);
            }
            paying.ticket.complete();
            paying.copies.into_iter().for_each(Ticket::complete);
            for other in &paying.others {
                self.received(other, ctx);
            }
        }
    }
}

/// Whether the order recorded is the one arriving (same user, same amount).
fn same_order(order: &OrderEvent, recorded: &RecordedCharge) -> bool {
    order.user_id == recorded.user_id && order.amount.to_bits() == recorded.amount.to_bits()
}

impl Worker for PaymentActor {
    type Input = PaymentInput;
    const NAME: &'static str = "PaymentActor";
    const ROLE: Role = Role::Domain;

    fn handle(
        &mut self,
        input: &PaymentInput,
        ctx: &mut Context<WorkerActor<Self>>,
    ) -> Result<(), ActorError> {
        match input {
            PaymentInput::Process(order) => self.received(order, ctx),
            PaymentInput::Charged(charged) => self.charged(charged, ctx),
            PaymentInput::Completed(Completed { origin, .. }) => self.acknowledged(*origin, ctx),
        }
        Ok(())
    }

    fn describe(input: &PaymentInput) -> String {
        match input {
            PaymentInput::Process(process) => format!("order {}", process.event.order_id),
            PaymentInput::Charged(charged) => {
                format!("the recorded charge of order {}", charged.order.event.order_id)
            }
            PaymentInput::Completed(Completed { origin, .. }) => format!("the acknowledgement of {origin:?}"),
        }
    }

    fn is_event(input: &PaymentInput) -> bool {
        matches!(input, PaymentInput::Process(_))
    }
}
