//! What payment-service has already decided: rebuilt from `payment_topic` itself.
//!
//! Every payment event ever published is on that topic, so reading it from the
//! start up to its current end gives the orders that must never be paid again:
//! after this process was killed between publishing a payment and committing
//! the order's offset, or when another instance paid an order and then died
//! before committing it. It is read after every partition assignment, before
//! any order of the new assignment reaches the payment actor.

use actix::{Message, Recipient};
use common::event::{OrderEvent, Status};
use common::kafka::read_to_end;
use common::shutdown::Shutdown;
use log::{info, warn};
use rdkafka::message::Message as _;
use std::collections::HashSet;
use std::time::{Duration, Instant};

const PAYMENTS: &[Status] = &[Status::PaymentSuccessful, Status::PaymentFailed];

/// Orders already paid, for the payment actor to add to what it knows.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct PaidOrders(pub HashSet<u64>);

/// The rebalance hook: after each assignment, read the ledger and hand it to
/// `payment` (retrying while the broker is away, until shutdown). Blocking.
pub fn refresh_after_assign(
    brokers: String,
    topic: String,
    payment: Recipient<PaidOrders>,
    shutdown: Shutdown,
) -> Box<dyn Fn() + Send + Sync> {
    Box::new(move || {
        while !shutdown.is_triggered() {
            match paid_orders(&brokers, &topic) {
                Ok(paid) => return payment.do_send(PaidOrders(paid)),
                Err(e) => {
                    warn!(target: "PaymentActor", "{e}; retrying in 1 s before taking orders");
                    std::thread::sleep(Duration::from_secs(1)); // a retry pause, not a wait for an event
                }
            }
        }
    })
}

/// The ids of every order with a payment event on `topic`. Blocking.
fn paid_orders(brokers: &str, topic: &str) -> Result<HashSet<u64>, String> {
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
