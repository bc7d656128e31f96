//! The notification actor: "emails" the customer once per order.
//!
//! The store is the fence (see `common::store`): before an email goes out, its
//! order is claimed in the store for this instance; once the mail server has
//! taken it, it is recorded as sent, and only then is its event done. An email
//! found recorded as sent (a copy of the payment event, or a zombie's queued
//! events meeting what its successor wrote) is not sent again. What stays
//! possible: an email sent but not yet recorded when its instance died or froze
//! for longer than a claim holds is taken over by the next owner and sent once
//! more; such emails are counted in doubt (`emails_in_doubt`).
//!
//! An instance that finds its own claim older than [`RENEW_AFTER`] when it is
//! about to send (it was frozen or cut off meanwhile) asks the store again, and
//! sends only if nobody took the claim over. An email claimed by another
//! instance is asked for again until it is sent, or the claim lapses and is
//! taken over here: its event is done only then, so no email is lost behind
//! the claim of an instance that died.
//!
//! What it remembers is bounded: the orders on their way, and the last
//! `--dedup-capacity` orders it emailed (their copies need no store round trip).

use crate::email::Mailer;
use actix::{AsyncContext, Context, Message};
use common::actor::error::ActorError;
use common::actor::fault::Role;
use common::actor::messages::{Process, Ticket};
use common::actor::recent_ids::RecentIds;
use common::actor::supervisor::{Worker, WorkerActor};
use common::base::metrics::Metrics;
use common::store::{EmailVerdict, Store};
use common::wire::event::OrderEvent;
use foldhash::{HashMap, HashMapExt};
use log::{info, warn};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A claim older than this when its email is about to go out is asked for
/// again: well under the claim's lease (`CLAIM_LEASE_MS`), so a claim found
/// still ours cannot have been taken over before the send.
pub const RENEW_AFTER: Duration = Duration::from_secs(5);

/// How long an email claimed by another instance waits before it is asked for again.
const BUSY_WAIT: Duration = Duration::from_millis(500);

/// The store's answer on a claim, with the payment event it is for.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Claimed {
    payment: OrderEvent,
    verdict: EmailVerdict,
    /// When the claim was asked for.
    asked: Instant,
}

/// Ask the store for the email of this payment again.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Claim {
    payment: OrderEvent,
    renew: bool,
}

/// The email of this order is recorded as sent.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Recorded(u64);

common::worker_input! {
    /// What the notification actor handles: payments, and the store's answers.
    pub enum NotificationInput { Process, Claim, Claimed, Recorded }
}

pub struct NotificationActor {
    /// Orders whose email went out and is recorded; an order joins only then,
    /// so a failed send is retried, not taken for a duplicate.
    notified: RecentIds,
    /// Orders being notified: the tickets of the payment event and of the
    /// copies of it that arrived meanwhile, done once the email is recorded.
    notifying: HashMap<u64, Vec<Ticket>>,
    mailer: Mailer,
    store: Store,
    metrics: Arc<Metrics>,
}

impl NotificationActor {
    pub fn new(mailer: Mailer, store: Store, dedup_capacity: usize, metrics: Arc<Metrics>) -> Self {
        NotificationActor {
            notified: RecentIds::new(dedup_capacity),
            notifying: HashMap::new(),
            mailer,
            store,
            metrics,
        }
    }

    fn received(&mut self, Process { event, ticket, .. }: &Process, ctx: &Context<WorkerActor<Self>>) {
        let order_id = event.order_id;
        if let Some(tickets) = self.notifying.get_mut(&order_id) {
            self.metrics.duplicate_suppressed();
            info!(target: Self::NAME, "🔁 Order {order_id} is being notified: duplicate ignored");
            return tickets.push(ticket.clone());
        }
        if self.notified.contains(order_id) {
            self.metrics.duplicate_suppressed();
            info!(target: Self::NAME, "🔁 Order {order_id} was already notified: duplicate ignored");
            return ticket.clone().complete();
        }
        self.notifying.insert(order_id, vec![ticket.clone()]);
        self.claim(event.clone(), false, ctx);
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
        if let EmailVerdict::TakenOver { claimed_by } = verdict {
            warn!(
                target: Self::NAME,
                "order {order_id}'s email was claimed by {claimed_by}, which never recorded it as sent: \
                 sending it (in doubt: it may have gone out already)"
            );
            self.metrics.email_in_doubt();
        }
        match verdict {
            EmailVerdict::Claimed | EmailVerdict::TakenOver { .. } if asked.elapsed() > RENEW_AFTER => {
                info!(
                    target: Self::NAME,
                    "order {order_id}'s claim was granted {} ms after it was asked for: renewing it before sending",
                    asked.elapsed().as_millis()
                );
                self.claim(payment.clone(), true, ctx);
            }
            EmailVerdict::Claimed | EmailVerdict::TakenOver { .. } => self.send(payment, ctx)?,
            EmailVerdict::Busy { claimed_by } => {
                info!(target: Self::NAME, "order {order_id}'s email is being sent by {claimed_by}: asking again shortly");
                ctx.notify_later(Claim { payment: payment.clone(), renew: false }, BUSY_WAIT);
            }
            EmailVerdict::ClaimedElsewhere { claimed_by } => {
                // Not sent here, nor done: should that instance die before it
                // sends, its claim lapses and is taken over.
                info!(
                    target: Self::NAME,
                    "order {order_id}'s email was taken over by {claimed_by} while this instance was away: \
                     not sent here, asking again until it is sent"
                );
                ctx.notify_later(Claim { payment: payment.clone(), renew: false }, BUSY_WAIT);
            }
            EmailVerdict::AlreadySent { sent_by } => {
                info!(target: Self::NAME, "🔁 Order {order_id} was already notified by {sent_by}: duplicate ignored");
                self.metrics.duplicate_suppressed();
                self.done(order_id, true);
            }
        }
        Ok(())
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

    /// The order's events are done; `notified`: its email is recorded as sent.
    fn done(&mut self, order_id: u64, notified: bool) {
        if notified {
            self.notified.insert(order_id, ());
        }
        for ticket in self.notifying.remove(&order_id).unwrap_or_default() {
            ticket.complete();
        }
    }
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
            NotificationInput::Claim(Claim { payment, renew }) => self.claim(payment.clone(), *renew, ctx),
            NotificationInput::Claimed(claimed) => self.claimed(claimed, ctx)?,
            NotificationInput::Recorded(Recorded(order_id)) => self.done(*order_id, true),
        }
        Ok(())
    }

    fn describe(input: &NotificationInput) -> String {
        match input {
            NotificationInput::Process(process) => format!("order {}", process.event.order_id),
            NotificationInput::Claim(claim) => {
                format!("the claim on order {}'s email", claim.payment.order_id)
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
