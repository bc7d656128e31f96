//! What payment-service has already decided: rebuilt from `payment_topic` itself.
//!
//! Every payment event ever published is on that topic, so reading it from the
//! start up to its current end gives the orders that must never be paid again,
//! also after the process was killed between publishing a payment and
//! committing the order's offset.

use common::config::KafkaArgs;
use common::event::{OrderEvent, Status};
use log::info;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

const PAYMENTS: &[Status] = &[Status::PaymentSuccessful, Status::PaymentFailed];
const READ_TIMEOUT: Duration = Duration::from_secs(15);

/// The ids of every order with a payment event on `topic`. Blocking.
pub fn paid_orders(kafka: &KafkaArgs, topic: &str) -> Result<HashSet<u64>, String> {
    let started = Instant::now();
    let fail = |what: &str, e: rdkafka::error::KafkaError| {
        format!("cannot read {topic} to rebuild the paid orders ({what}): {e}")
    };
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .set("group.id", "payment-service-ledger") // never joined: partitions are assigned
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", kafka.fetch_wait_ms.to_string())
        .create()
        .map_err(|e| fail("client", e))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), READ_TIMEOUT)
        .map_err(|e| fail("metadata", e))?;
    let partitions = metadata
        .topics()
        .first()
        .map_or(0, |t| t.partitions().len() as i32);

    let mut assignment = TopicPartitionList::new();
    let mut end_of: HashMap<i32, i64> = HashMap::new();
    for partition in 0..partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, READ_TIMEOUT)
            .map_err(|e| fail("watermarks", e))?;
        if high > low {
            assignment
                .add_partition_offset(topic, partition, Offset::Beginning)
                .map_err(|e| fail("assignment", e))?;
            end_of.insert(partition, high);
        }
    }
    consumer
        .assign(&assignment)
        .map_err(|e| fail("assign", e))?;

    let mut paid = HashSet::new();
    while !end_of.is_empty() {
        let message = match consumer.poll(READ_TIMEOUT) {
            Some(Ok(message)) => message,
            Some(Err(e)) => return Err(fail("read", e)),
            None => {
                return Err(format!(
                    "cannot read {topic}: nothing arrived for {} s",
                    READ_TIMEOUT.as_secs()
                ))
            }
        };
        if let Ok(payment) = OrderEvent::decode(message.payload(), PAYMENTS) {
            paid.insert(payment.order_id);
        }
        if end_of
            .get(&message.partition())
            .is_some_and(|&end| message.offset() + 1 >= end)
        {
            end_of.remove(&message.partition());
        }
    }
    info!(
        target: "PaymentActor",
        "{} orders already paid according to {topic} (read in {} ms)",
        paid.len(),
        started.elapsed().as_millis()
    );
    Ok(paid)
}
