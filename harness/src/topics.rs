//! Reads back what the topics hold: every record of a topic, the payment
//! events; and, with the stores, what a run did to its orders.

use crate::test_folder::store_path;
use crate::{emailed, store, Broker};
use std::collections::BTreeMap;

/// One record read back from a topic.
#[derive(Debug)]
pub struct TopicRecord {
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: BTreeMap<String, String>,
}

/// Every record `topic` holds now.
pub fn records_on_topic(broker: &Broker, topic: &str) -> Vec<TopicRecord> {
    use rdkafka::message::{Headers, Message};
    let mut records = Vec::new();
    common::kafka::tool_reader::read_to_end(&broker.client_config(), topic, |record| {
        let headers = record.headers().map_or_else(BTreeMap::new, |headers| {
            headers
                .iter()
                .map(|h| {
                    (h.key.to_string(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned())
                })
                .collect()
        });
        records.push(TopicRecord {
            key: record.key().map(<[u8]>::to_vec),
            payload: record.payload().unwrap_or_default().to_vec(),
            headers,
        });
    })
    .unwrap_or_else(|e| panic!("{topic} is not readable: {e}"));
    records
}

/// How many payment events `payment_topic` holds for each order id.
pub fn payments_on_topic(broker: &Broker) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    for record in records_on_topic(broker, "payment_topic") {
        let payment: serde_json::Value =
            serde_json::from_slice(&record.payload).expect("payment_topic holds JSON events");
        *counts.entry(payment["order_id"].as_u64().expect("an order id")).or_default() += 1;
    }
    counts
}

/// Every payment event on `payment_topic`: its order id and its bytes.
pub fn payment_events(broker: &Broker) -> Vec<(u64, Vec<u8>)> {
    records_on_topic(broker, "payment_topic")
        .into_iter()
        .map(|record| {
            let payment: serde_json::Value =
                serde_json::from_slice(&record.payload).expect("payment_topic holds JSON events");
            (payment["order_id"].as_u64().expect("an order id"), record.payload)
        })
        .collect()
}

/// What the run against `broker` did to the orders `created`, given every line of
/// every notification-service process: from the topics and both stores.
pub fn outcome(
    broker: &Broker,
    created: std::ops::RangeInclusive<u64>,
    notification_lines: &[String],
) -> store::Outcome {
    store::Outcome::of(
        created,
        &payment_events(broker),
        &store::charges(&store_path(&broker.address, "payment-service")),
        &store::emails(&store_path(&broker.address, "notification-service")),
        &emailed(notification_lines),
    )
}
