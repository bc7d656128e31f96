//! The email a customer gets about a payment, sent through a mail server that
//! may refuse it for a while (`--email-failure-rate` makes it refuse on purpose).
//!
//! The email is the pair of log lines; they are written only once the send went
//! through, so a line in the log is an email the customer has. Each email
//! carries an idempotency key, `order-<id>`, as a mail provider's API takes one:
//! an email sent again for the same order (in doubt, after its sender died
//! between the send and its record) bears the same key, so that a provider
//! that honours keys drops the repeat.

use common::actor::error::ActorError;
use common::wire::event::{OrderEvent, Status};
use log::info;
use rand::{rngs::SmallRng, Rng, SeedableRng};

pub struct Mailer {
    failure_rate: f64,
    rng: SmallRng,
}

impl Mailer {
    /// A mailer whose sends fail with probability `failure_rate`, repeatably per `seed`.
    pub fn new(failure_rate: f64, seed: u64) -> Self {
        Mailer { failure_rate, rng: SmallRng::seed_from_u64(seed) }
    }

    /// Emails the customer about `payment`; an error means no email went out, and
    /// is transient: the same email may go out later.
    pub fn send(&mut self, payment: &OrderEvent) -> Result<(), ActorError> {
        if self.failure_rate > 0.0 && self.rng.gen_bool(self.failure_rate) {
            return Err(ActorError::Unavailable(format!(
                "the mail server refused the email for order {} (--email-failure-rate)",
                payment.order_id
            )));
        }
        let (order, user) = (payment.order_id, payment.user_id);
        // Both lines in one call: they get one timestamp, and cost one (see `base/logging/`).
        if payment.status == Status::PaymentSuccessful {
            info!(
                target: "NotificationActor",
                "✅ Payment Successful for Order {order} (User {user})\n\
                 📨 Email sent to customer confirming successful order (idempotency key order-{order})."
            );
        } else {
            let reason = payment.reason.as_deref().unwrap_or("no reason given");
            info!(
                target: "NotificationActor",
                "❌ Payment Failed for Order {order} (User {user}): {reason}\n\
                 📨 Email sent to customer explaining the failed payment ({reason}; idempotency key order-{order})."
            );
        }
        Ok(())
    }
}
