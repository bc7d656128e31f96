//! The notification actor: "emails" the customer once per order.
//!
//! Idempotent by order id within the process: a payment event seen again (after
//! a crash, or read twice from Kafka) sends no second email. Across a SIGKILL the
//! guarantee is at-least-once: see the README.

use actix::Context;
use common::event::Status;
use common::fault::Role;
use common::messages::Process;
use common::stats::Stats;
use common::supervisor::{Supervised, Worker};
use log::info;
use std::collections::HashSet;
use std::sync::Arc;

pub struct NotificationActor {
    notified: HashSet<u64>,
    stats: Arc<Stats>,
}

impl NotificationActor {
    pub fn new(stats: Arc<Stats>) -> Self {
        NotificationActor { notified: HashSet::new(), stats }
    }
}

impl Worker for NotificationActor {
    type Input = Process;
    const NAME: &'static str = "NotificationActor";
    const ROLE: Role = Role::Domain;

    fn handle(
        &mut self,
        Process { event, ticket }: &Process,
        _: &mut Context<Supervised<Self>>,
    ) -> Result<(), String> {
        if !self.notified.insert(event.order_id) {
            info!(target: Self::NAME, "🔁 Order {} was already notified: duplicate ignored", event.order_id);
            self.stats.duplicate_suppressed();
        } else if event.status == Status::PaymentSuccessful {
            info!(target: Self::NAME, "✅ Payment Successful for Order {} (User {})", event.order_id, event.user_id);
            info!(target: Self::NAME, "📨 Email sent to customer confirming successful order.");
            self.stats.processed();
        } else {
            let reason = event.reason.as_deref().unwrap_or("no reason given");
            info!(target: Self::NAME, "❌ Payment Failed for Order {} (User {}): {reason}", event.order_id, event.user_id);
            info!(target: Self::NAME, "📨 Email sent to customer explaining the failed payment ({reason}).");
            self.stats.processed();
        }
        ticket.complete();
        Ok(())
    }

    fn describe(process: &Process) -> String {
        format!("order {}", process.event.order_id)
    }
}
