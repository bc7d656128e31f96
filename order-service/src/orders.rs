//! The order actor: announces each new order and publishes it to `order_topic`.
//!
//! It keeps no set of published ids: an order reaches it again only if the
//! actor crashed before publishing it (faults strike before the handler runs),
//! and a long-running order-service must not grow with every order. Were an
//! order ever published twice, payment-service would pay it once.

use actix::{Context, Recipient};
use common::error::ActorError;
use common::event::as_text;
use common::fault::Role;
use common::messages::{Process, Publish};
use common::supervisor::{Supervised, Worker};
use log::info;
use std::sync::Arc;

pub struct OrderActor {
    order_topic: Arc<str>,
    producer: Recipient<Publish>,
}

impl OrderActor {
    pub fn new(order_topic: &str, producer: Recipient<Publish>) -> Self {
        OrderActor { order_topic: order_topic.into(), producer }
    }
}

impl Worker for OrderActor {
    type Input = Process;
    const NAME: &'static str = "OrderActor";
    const ROLE: Role = Role::Domain;

    fn handle(
        &mut self,
        Process { event, ticket, .. }: &Process,
        _: &mut Context<Supervised<Self>>,
    ) -> Result<(), ActorError> {
        // Encoded once, for the record and for the line.
        let publish = Publish::event(&self.order_topic, event, ticket.clone(), None);
        info!(target: Self::NAME, "📦 Order Created: {}", as_text(&publish.payload));
        self.producer.do_send(publish);
        Ok(())
    }

    fn describe(process: &Process) -> String {
        format!("order {}", process.event.order_id)
    }
}
