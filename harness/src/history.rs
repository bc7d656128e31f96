//! A long history on the topics and in payment-service's store, written
//! straight to them: as if payment-service had paid every order of it and
//! committed all but the last few of each partition. For the tests and the
//! benchmark of a restart over history.

use crate::{store_path, Broker, ServiceProcess};
use common::kafka::tool_reader;
use common::runtime::config::DEFAULT_PARTITIONS as PARTITIONS;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::time::Duration;

/// What [`write_paid_history`] wrote.
pub struct History {
    /// The order ids, from 1001.
    pub ids: std::ops::RangeInclusive<u64>,
    /// The orders left uncommitted (the last ones of each partition): Kafka
    /// redelivers them to the next payment-service, which must not pay them again.
    pub uncommitted: Vec<u64>,
}

/// Runs payment-service once, so that it creates its topics and its store and
/// leaves its group "payment-service"; then writes `orders` orders to
/// `order_topic` (order `id` in partition `id % 3`), one payment event each to
/// `payment_topic` and its charge to the store (the harness's, [`store_path`]);
/// then commits, for the group, every order but the last `uncommitted` of each
/// partition. The topics must not exist yet.
pub fn write_paid_history(broker: &Broker, orders: u64, uncommitted: u64) -> History {
    let mut first = ServiceProcess::start("payment-service", broker, &[]);
    let minute = Duration::from_secs(60);
    first.wait_until("its partitions", minute, |lines| {
        lines.iter().any(|l| l.contains("partitions assigned"))
    });
    first.stop_gracefully(minute);
    let ids = 1001..=1000 + orders;
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .set("enable.idempotence", "true") // in order, once: offsets follow the sending order
        .set("linger.ms", "20")
        .create()
        .expect("cannot create the history's producer");
    let mut store = rusqlite::Connection::open(store_path(&broker.address, "payment-service"))
        .expect("cannot open payment-service's store");
    let charges = store.transaction().expect("a transaction on the store");
    let mut insert = charges
        .prepare(
            "INSERT INTO payments (order_id, user_id, amount, outcome, event, charged_by, charged_at_ms)
             VALUES (?1, ?2, 12.5, 'charged', ?3, 'history', ?4)",
        )
        .expect("payment-service made its store's tables");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut next_offset = [0i64; PARTITIONS as usize];
    for id in ids.clone() {
        let partition = (id % PARTITIONS as u64) as i32;
        next_offset[partition as usize] += 1;
        let key = id.to_string();
        let event = |status: &str| {
            format!(r#"{{"order_id":{id},"user_id":{},"amount":12.5,"status":"{status}"}}"#, id % 100)
        };
        let order = event("created");
        send(&producer, BaseRecord::to("order_topic").partition(partition).key(&key).payload(&order));
        let payment = event("payment_successful");
        send(&producer, BaseRecord::to("payment_topic").key(&key).payload(&payment));
        insert
            .execute(rusqlite::params![id as i64, (id % 100) as i64, payment, now_ms])
            .expect("a charge is recorded");
    }
    producer.flush(Duration::from_secs(120)).expect("the history was not written within 2 min");
    drop(insert);
    charges.commit().expect("the history's charges are recorded");

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .set("group.id", "payment-service")
        .create()
        .expect("cannot create the committing client");
    let reader = tool_reader::reader(&broker.client_config(), "history").expect("a reader");
    let mut commit = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        let (_, end) =
            tool_reader::watermarks(&reader, "order_topic", partition).expect("order_topic's offsets");
        assert_eq!(end, next_offset[partition as usize], "order_topic[{partition}] was not empty");
        let position = Offset::Offset(end - uncommitted.min(end as u64) as i64);
        commit.add_partition_offset("order_topic", partition, position).expect("a partition");
    }
    consumer.commit(&commit, CommitMode::Sync).expect("cannot commit the history's offsets");
    // The last `uncommitted` orders of each partition: the highest ids of each residue.
    let uncommitted = ids.clone().rev().take((uncommitted * PARTITIONS as u64) as usize).collect();
    History { ids, uncommitted }
}

/// Queues `record`, waiting for room while librdkafka's queue is full.
fn send(producer: &BaseProducer, mut record: BaseRecord<'_, String, String>) {
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                producer.poll(Duration::from_millis(100)); // serves deliveries: room for more
            }
            Err((e, _)) => panic!("cannot write the history: {e}"),
        }
    }
}
