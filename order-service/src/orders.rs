//! The order actor: publishes each new order to `order_topic`, once.
//!
//! Idempotent by order id, like every domain actor: an order handed to it
//! again after a crash is acknowledged without a second `order_created` event.

use actix::{Context, Recipient};
use common::fault::Role;
use common::messages::{Process, Publish};
use common::supervisor::{Supervised, Worker};
use log::info;
use std::collections::HashSet;

pub struct OrderActor {
    published: HashSet<u64>,
    order_topic: String,
    producer: Recipient<Publish>,
}

impl OrderActor {
    pub fn new(order_topic: &str, producer: Recipient<Publish>) -> Self {
        OrderActor { published: HashSet::new(), order_topic: order_topic.to_string(), producer }
    }
}

impl Worker for OrderActor {
    type Input = Process;
    const NAME: &'static str = "OrderActor";
    const ROLE: Role = Role::Domain;

    fn handle(
        &mut self,
        Process { event, ticket }: &Process,
        _: &mut Context<Supervised<Self>>,
    ) -> Result<(), String> {
        if !self.published.insert(event.order_id) {
            ticket.complete();
            return Ok(());
        }
        info!(target: Self::NAME, "📦 Order Created: {event}");
        self.producer.do_send(Publish::event(&self.order_topic, event, ticket.clone(), None));
        Ok(())
    }

    fn describe(process: &Process) -> String {
        format!("order {}", process.event.order_id)
    }
}
