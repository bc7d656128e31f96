//! What payment-service has already decided: rebuilt from `payment_topic` itself.
//!
//! Every payment event ever published is on that topic, so reading it from the
//! start up to its current end gives the orders that must never be paid again,
//! also after the process was killed between publishing a payment and
//! committing the order's offset.

use common::event::{OrderEvent, Status};
use common::kafka::read_to_end;
use log::info;
use rdkafka::message::Message;
use std::collections::HashSet;
use std::time::Instant;

const PAYMENTS: &[Status] = &[Status::PaymentSuccessful, Status::PaymentFailed];

/// The ids of every order with a payment event on `topic`. Blocking.
pub fn paid_orders(brokers: &str, topic: &str) -> Result<HashSet<u64>, String> {
    let started = Instant::now();
    let mut paid = HashSet::new();
    read_to_end(brokers, topic, |record| {
        if let Ok(payment) = OrderEvent::decode(record.payload(), PAYMENTS) {
            paid.insert(payment.order_id);
        }
    })?;
    info!(
        target: "PaymentActor",
        "{} orders already paid according to {topic} (read in {} ms)",
        paid.len(),
        started.elapsed().as_millis()
    );
    Ok(paid)
}
