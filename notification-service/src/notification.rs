//! The notification actor: the shell that runs notification-service's rules
//! (`rules.rs`) on its inputs (payment events, the store's answers on claims,
//! the records of emails sent) and carries out what they call for: the store's
//! calls, the emails, the waits, the tickets, the metrics and the log lines.

use crate::email::Mailer;
use crate::rules::{ClaimOutcome, Claimant, NotificationRules};
use actix::{AsyncContext, Context, Message};
use common::actor::coalescer::{Arrival, Waiting};
use common::actor::error::ActorError;
use common::actor::fault::Role;
use common::actor::messages::{Process, Ticket};
use common::actor::supervisor::{Worker, WorkerActor};
use common::base::metrics::Metrics;
use common::store::{EmailVerdict, Store};
use common::wire::event::OrderEvent;
use log::{info, warn};
use std::sync::Arc;
use std::time::Instant;

/// The store's answer on a claim, with the payment event it is for.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Claimed {
    payment: OrderEvent,
    verdict: EmailVerdict,
    /// When the claim was asked for.
    asked: Instant,
}

/// Ask the store again for the email of this payment.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AskAgain(OrderEvent);

/// The email of this order is recorded as sent.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Recorded(u64);

common::worker_input! {
    /// What the notification actor handles: payments, and the store's answers.
    pub enum NotificationInput { Process, AskAgain, Claimed, Recorded }
}

pub struct NotificationActor {
    /// What each input calls for; it keeps the tickets of every order on its
    /// way until its email is recorded.
    rules: NotificationRules<Ticket>,
    mailer: Mailer,
    store: Store,
    metrics: Arc<Metrics>,
}

impl NotificationActor {
    pub fn new(mailer: Mailer, store: Store, dedup_capacity: usize, metrics: Arc<Metrics>) -> Self {
        NotificationActor { rules: NotificationRules::new(dedup_capacity), mailer, store, metrics }
    }

    fn received(&mut self, Process { event, ticket, .. }: &Process, ctx: &Context<WorkerActor<Self>>) {
        let order_id = event.order_id;
        match self.rules.arrived(order_id, ticket.clone()) {
            Arrival::First(()) => self.claim(event.clone(), false, ctx),
            // Held: never, every payment event of an order is a copy of the first.
            Arrival::Copy | Arrival::Held => {
                self.metrics.duplicate_suppressed();
                info!(target: Self::NAME, "🔁 Order {order_id} is being notified: duplicate ignored");
            }
            Arrival::Done(ticket) => {
                self.metrics.duplicate_suppressed();
                info!(target: Self::NAME, "🔁 Order {order_id} was already notified: duplicate ignored");
                ticket.complete();
            }
        }
    }

    fn claim(&self, payment: OrderEvent, renew: bool, ctx: &Context<WorkerActor<Self>>) {
        let (me, asked) = (ctx.address(), Instant::now());
        self.store.claim_email(
            payment.order_id,
            renew,
            Box::new(move |verdict| me.do_send(Claimed { payment, verdict, asked })),
        );
    }

    fn claimed(&mut self, claimed: &Claimed, ctx: &mut Context<WorkerActor<Self>>) -> Result<(), ActorError> {
        let Claimed { payment, verdict, asked } = claimed;
        let order_id = payment.order_id;
        match self.rules.claimed(order_id, verdict.clone(), asked.elapsed()) {
            ClaimOutcome::Send { taken_over_from } => {
                self.in_doubt(order_id, taken_over_from);
                self.send(payment, ctx)?;
            }
            ClaimOutcome::Renew { taken_over_from, waited } => {
                self.in_doubt(order_id, taken_over_from);
                info!(
                    target: Self::NAME,
                    "order {order_id}'s claim was granted {} ms after it was asked for: renewing it before sending",
                    waited.as_millis()
                );
                self.claim(payment.clone(), true, ctx);
            }
            ClaimOutcome::AskLater { after, claimant: Claimant::Sending(claimed_by) } => {
                info!(target: Self::NAME, "order {order_id}'s email is being sent by {claimed_by}: asking again shortly");
                ctx.notify_later(AskAgain(payment.clone()), after);
            }
            ClaimOutcome::AskLater { after, claimant: Claimant::TookOver(claimed_by) } => {
                info!(
                    target: Self::NAME,
                    "order {order_id}'s email was taken over by {claimed_by} while this instance was away: \
                     not sent here, asking again until it is sent"
                );
                ctx.notify_later(AskAgain(payment.clone()), after);
            }
            ClaimOutcome::AlreadySent { sent_by, waiting } => {
                info!(target: Self::NAME, "🔁 Order {order_id} was already notified by {sent_by}: duplicate ignored");
                self.metrics.duplicate_suppressed();
                complete(waiting);
            }
        }
        Ok(())
    }

    /// Counts and tells of an email sent on a claim taken over from `claimed_by`.
    fn in_doubt(&self, order_id: u64, taken_over_from: Option<String>) {
        let Some(claimed_by) = taken_over_from else { return };
        warn!(
            target: Self::NAME,
            "order {order_id}'s email was claimed by {claimed_by}, which never recorded it as sent: \
             sending it (in doubt: it may have gone out already)"
        );
        self.metrics.email_in_doubt();
    }

    /// Sends the email, then records it as sent.
    fn send(&mut self, payment: &OrderEvent, ctx: &Context<WorkerActor<Self>>) -> Result<(), ActorError> {
        self.mailer.send(payment)?; // not sent: the supervisor tries it again later
        self.metrics.processed();
        let me = ctx.address();
        let order_id = payment.order_id;
        self.store.email_sent(order_id, Box::new(move |()| me.do_send(Recorded(order_id))));
        Ok(())
    }
}

/// The payment events waiting for an email are done.
fn complete(waiting: Option<Waiting<Ticket>>) {
    waiting.iter().flat_map(Waiting::tickets).cloned().for_each(Ticket::complete);
}

impl Worker for NotificationActor {
    type Input = NotificationInput;
    const NAME: &'static str = "NotificationActor";
    const ROLE: Role = Role::Domain;

    fn handle(
        &mut self,
        input: &NotificationInput,
        ctx: &mut Context<WorkerActor<Self>>,
    ) -> Result<(), ActorError> {
        match input {
            NotificationInput::Process(process) => self.received(process, ctx),
            NotificationInput::AskAgain(AskAgain(payment)) => self.claim(payment.clone(), false, ctx),
            NotificationInput::Claimed(claimed) => self.claimed(claimed, ctx)?,
            NotificationInput::Recorded(Recorded(order_id)) => complete(self.rules.recorded(*order_id)),
        }
        Ok(())
    }

    fn describe(input: &NotificationInput) -> String {
        match input {
            NotificationInput::Process(process) => format!("order {}", process.event.order_id),
            NotificationInput::AskAgain(AskAgain(payment)) => {
                format!("the claim on order {}'s email", payment.order_id)
            }
            NotificationInput::Claimed(claimed) => format!("the email of order {}", claimed.payment.order_id),
            NotificationInput::Recorded(Recorded(order_id)) => {
                format!("the record of order {order_id}'s email")
            }
        }
    }

    /// The event is the store's answer on an email: handling it sends the email
    /// (or finds it sent), so faults strike there, and a success there resets
    /// the backoff of a mail server's refusals.
    fn is_event(input: &NotificationInput) -> bool {
        matches!(input, NotificationInput::Claimed(_))
    }
}
