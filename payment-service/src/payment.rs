//! The payment actor: the shell that runs payment-service's rules (`rules.rs`)
//! on its inputs (orders, the store's verdicts, the broker's acknowledgements)
//! and carries out what they call for: the store's calls, the publishing, the
//! tickets, the metrics and the log lines.

use crate::rules::{ChargeOutcome, Conflict, PaymentRules};
use actix::{AsyncContext, Context, Message, Recipient};
use common::actor::coalescer::Arrival;
use common::actor::error::ActorError;
use common::actor::fault::Role;
use common::actor::messages::{Completed, Origin, Process, Publish, Ticket, TicketIssuer};
use common::actor::supervisor::{Worker, WorkerActor};
use common::base::metrics::Metrics;
use common::kafka::producer::dead_letter::{dead_letter, Source};
use common::store::{Charge, ChargeVerdict, Store};
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

pub struct PaymentActor {
    /// What each input calls for; it keeps every order on its way until done.
    rules: PaymentRules<Process>,
    /// The tickets of payment events, completed when the broker has them.
    acknowledgements: TicketIssuer,
    setup: PaymentSetup,
}

impl PaymentActor {
    pub fn new(setup: PaymentSetup) -> Self {
        PaymentActor {
            rules: PaymentRules::new(setup.decline_rate, setup.seed, setup.dedup_capacity),
            acknowledgements: TicketIssuer::default(),
            setup,
        }
    }

    /// Hands `order` to the rules: the first of its id is charged, a copy waits
    /// for it or is done.
    fn received(&mut self, order: &Process, ctx: &Context<WorkerActor<Self>>) {
        info!(target: Self::NAME, "🧾 Received Order {}", order.json());
        let order_id = order.event.order_id;
        match self.rules.arrived(&order.event, order.clone()) {
            Arrival::First(charge) => self.charge(charge, order.clone(), ctx),
            Arrival::Copy => {
                self.setup.metrics.duplicate_suppressed();
                info!(target: Self::NAME, "🔁 Order {order_id} is being paid: duplicate ignored");
            }
            Arrival::Done(copy) => {
                self.setup.metrics.duplicate_suppressed();
                info!(target: Self::NAME, "🔁 Order {order_id} is already paid: duplicate ignored");
                copy.ticket.complete();
            }
            // Another order under the id being paid: the store judges it once that one is.
            Arrival::Held => {}
        }
    }

    /// Asks the store to record `charge`, decided for `order`.
    fn charge(&self, charge: Charge, order: Process, ctx: &Context<WorkerActor<Self>>) {
        let (me, decided) = (ctx.address(), charge.event.clone());
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
        let event = match self.rules.charged(&order.event, decided.clone(), verdict.clone()) {
            ChargeOutcome::Publish(decided) => {
                self.setup.metrics.processed();
                decided
            }
            ChargeOutcome::Republish(recorded) => {
                self.setup.metrics.duplicate_suppressed();
                info!(
                    target: Self::NAME,
                    "🔁 Order {order_id} was already charged by {} at {}: publishing its recorded payment event",
                    recorded.charged_by,
                    recorded.charged_at_ms
                );
                recorded.event
            }
            ChargeOutcome::DeadLetter(conflict) => return self.conflict(order, &conflict, acknowledgement),
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
    fn conflict(&self, order: &Process, conflict: &Conflict, acknowledgement: Ticket) {
        let (partition, offset) = match order.ticket.origin {
            Origin::Record { partition, offset, .. } => (partition, offset),
            Origin::Order { .. } => (-1, -1), // made in this process: never, orders are consumed
        };
        warn!(target: Self::NAME, "☠️  dead-lettering {}[{partition}]@{offset}: {conflict}", self.setup.order_topic);
        self.setup.metrics.conflict();
        self.setup.metrics.dead_lettered();
        let source = Source { topic: &self.setup.order_topic, partition, offset, service: "payment-service" };
        let payload = order.payload.as_deref().unwrap_or_default();
        self.setup.producer.do_send(dead_letter(
            &source,
            Some(order.event.key().into_bytes()),
            payload,
            conflict.to_string(),
            acknowledgement,
        ));
    }

    /// The broker has an order's payment event or dead letter: it and its
    /// copies are done, and the orders held behind it are handled now.
    fn acknowledged(&mut self, origin: Origin, ctx: &Context<WorkerActor<Self>>) {
        let Origin::Order { order_id } = origin else { return };
        if let Some(waiting) = self.rules.acknowledged(order_id) {
            waiting.tickets().for_each(|order| order.ticket.clone().complete());
            for other in &waiting.held {
                self.received(other, ctx);
            }
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
