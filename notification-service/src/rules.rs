//! The notification rules: what notification-service does when a payment
//! event arrives, when the store answers a claim on its email and when the
//! email is recorded as sent, as plain values for the notification actor
//! (`notification.rs`) to carry out. No actor, store or mail server here.
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

use common::actor::coalescer::{Arrival, Coalescer, Waiting};
use common::store::EmailVerdict;
use std::time::Duration;

/// A claim older than this when its email is about to go out is asked for
/// again: well under the claim's lease (`CLAIM_LEASE_MS`), so a claim found
/// still ours cannot have been taken over before the send.
const RENEW_AFTER: Duration = Duration::from_secs(5);

/// How long an email claimed by another instance waits before it is asked for again.
const BUSY_WAIT: Duration = Duration::from_millis(500);

/// What the store's answer on a claim calls for.
#[derive(Debug, PartialEq)]
pub enum ClaimOutcome<T> {
    /// The claim is this instance's: send the email, then record it as sent.
    /// `taken_over_from`: the instance whose lapsed claim this was, which may
    /// have sent it (the email is in doubt).
    Send { taken_over_from: Option<String> },
    /// The claim is this instance's, but was granted `waited` after it was
    /// asked for: long enough to lapse, so it is renewed before the send.
    Renew { taken_over_from: Option<String>, waited: Duration },
    /// Another instance holds the claim: ask again `after`, until the email is
    /// sent or that claim lapses and is taken over here.
    AskLater { after: Duration, claimant: Claimant },
    /// `sent_by` sent it: not again. What waited for it is done.
    AlreadySent { sent_by: String, waiting: Option<Waiting<T>> },
}

/// The instance that holds the claim on an email this one does not send now.
#[derive(Debug, PartialEq)]
pub enum Claimant {
    /// It claimed the email moments ago and may be sending it.
    Sending(String),
    /// It took this instance's claim over while this one was away: it sends
    /// the email, not this one.
    TookOver(String),
}

/// The rules of one notification-service instance; `T` is what completes a
/// payment event (its ticket), kept until its email is recorded as sent.
pub struct NotificationRules<T> {
    /// The orders being notified, and the last ones whose email went out and
    /// is recorded. An order is done only then, so a failed send is tried
    /// again, not taken for a duplicate. Every payment event of an order is a
    /// copy of the first (one key), so none is held.
    orders: Coalescer<(), T>,
}

impl<T> NotificationRules<T> {
    /// Remembers the last `dedup_capacity` orders emailed.
    pub fn new(dedup_capacity: usize) -> Self {
        NotificationRules { orders: Coalescer::new(dedup_capacity) }
    }

    /// A payment event for `order_id` arrived with `ticket`. The first of its
    /// id is to be claimed in the store; the answer goes to [`Self::claimed`].
    pub fn arrived(&mut self, order_id: u64, ticket: T) -> Arrival<T, ()> {
        self.orders.arrive(order_id, (), ticket, || ())
    }

    /// The store's answer on the claim of `order_id`'s email, `waited` after
    /// it was asked for.
    pub fn claimed(&mut self, order_id: u64, verdict: EmailVerdict, waited: Duration) -> ClaimOutcome<T> {
        let claim_is_ours = |taken_over_from| {
            if waited > RENEW_AFTER {
                ClaimOutcome::Renew { taken_over_from, waited }
            } else {
                ClaimOutcome::Send { taken_over_from }
            }
        };
        match verdict {
            EmailVerdict::Claimed => claim_is_ours(None),
            EmailVerdict::TakenOver { claimed_by } => claim_is_ours(Some(claimed_by)),
            EmailVerdict::Busy { claimed_by } => {
                ClaimOutcome::AskLater { after: BUSY_WAIT, claimant: Claimant::Sending(claimed_by) }
            }
            EmailVerdict::ClaimedElsewhere { claimed_by } => {
                ClaimOutcome::AskLater { after: BUSY_WAIT, claimant: Claimant::TookOver(claimed_by) }
            }
            EmailVerdict::AlreadySent { sent_by } => {
                ClaimOutcome::AlreadySent { sent_by, waiting: self.recorded(order_id) }
            }
        }
    }

    /// The email of `order_id` is recorded as sent: the tickets of its payment
    /// events are done. `None` if it was not on its way.
    pub fn recorded(&mut self, order_id: u64) -> Option<Waiting<T>> {
        self.orders.finish(order_id)
    }
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
