//! The order publisher: turns each new order into its record on `order_topic`
//! and hands it to the producer actor.
//!
//! It keeps no set of published ids: an order reaches it again only if the
//! actor crashed before publishing it (faults strike before the handler runs),
//! and a long-running order-service must not grow with every order. Were an
//! order ever published twice, payment-service would pay it once.

use actix::{Context, Recipient};
use common::actor::error::ActorError;
use common::actor::fault::Role;
use common::actor::messages::{Process, Publish};
use common::actor::supervisor::{Worker, WorkerActor};
use std::sync::Arc;

pub struct OrderPublisher {
    order_topic: Arc<str>,
    producer: Recipient<Publish>,
}

impl OrderPublisher {
    pub fn new(order_topic: &str, producer: Recipient<Publish>) -> Self {
        OrderPublisher { order_topic: order_topic.into(), producer }
    }
}

impl Worker for OrderPublisher {
    type Input = Process;
    const NAME: &'static str = "OrderPublisher";
    const ROLE: Role = Role::Domain;

    fn handle(&mut self, order: &Process, _: &mut Context<WorkerActor<Self>>) -> Result<(), ActorError> {
        self.producer.do_send(Publish::event(&self.order_topic, order, None));
        Ok(())
    }

    fn describe(order: &Process) -> String {
        format!("order {}", order.event.order_id)
    }
}
