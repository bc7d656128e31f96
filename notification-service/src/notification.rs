//! The notification actor: "emails" the customer once per order.
//!
//! Idempotent by order id within the process, for the last `--dedup-capacity`
//! orders: a payment event seen again (after a crash, or a second record of it)
//! sends no second email. Across a SIGKILL the guarantee is at-least-once: see
//! the README.

use crate::email::Mailer;
use actix::Context;
use common::error::ActorError;
use common::fault::Role;
use common::messages::Process;
use common::recent_ids::RecentIds;
use common::stats::Stats;
use common::supervisor::{Supervised, Worker};
use log::info;
use std::sync::Arc;

pub struct NotificationActor {
    /// Orders whose email went out; an order joins only after its send succeeded,
    /// so a failed send is retried, not taken for a duplicate.
    notified: RecentIds,
    mailer: Mailer,
    stats: Arc<Stats>,
}

impl NotificationActor {
    pub fn new(mailer: Mailer, dedup_capacity: usize, stats: Arc<Stats>) -> Self {
        NotificationActor { notified: RecentIds::new(dedup_capacity), mailer, stats }
    }
}

impl Worker for NotificationActor {
    type Input = Process;
    const NAME: &'static str = "NotificationActor";
    const ROLE: Role = Role::Domain;

    fn handle(
        &mut self,
        Process { event, ticket, .. }: &Process,
        _: &mut Context<Supervised<Self>>,
    ) -> Result<(), ActorError> {
        if self.notified.contains(event.order_id) {
            info!(target: Self::NAME, "🔁 Order {} was already notified: duplicate ignored", event.order_id);
            self.stats.duplicate_suppressed();
        } else {
            self.mailer.send(event)?; // not sent: the supervisor tries it again later
            self.notified.insert(event.order_id);
            self.stats.processed();
        }
        ticket.complete();
        Ok(())
    }

    fn describe(process: &Process) -> String {
        format!("order {}", process.event.order_id)
    }
}
