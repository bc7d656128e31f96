//! The ceiling's Kafka clients: the same settings the services use (see
//! `common/src/kafka.rs`), a context that says when a consumer has its
//! partitions, and topic creation (the broker does not create topics itself).

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureProducer;
use rdkafka::ClientContext;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Partitions of each topic, as the services create theirs.
pub const PARTITIONS: i32 = common::kafka::PARTITIONS;

/// Prints the client's errors, and tells whoever waits when partitions are assigned.
pub struct BenchContext {
    name: &'static str,
    assigned: watch::Sender<bool>,
}

impl BenchContext {
    /// A context named `name` (for error lines), and the receiver that turns true
    /// once the consumer has partitions.
    pub fn new(name: &'static str) -> (BenchContext, watch::Receiver<bool>) {
        let (assigned, ready) = watch::channel(false);
        (BenchContext { name, assigned }, ready)
    }
}

impl ClientContext for BenchContext {
    fn error(&self, error: KafkaError, reason: &str) {
        eprintln!("ceiling {}: Kafka error: {error}: {reason}", self.name);
    }
}

impl ConsumerContext for BenchContext {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            if partitions.count() > 0 {
                self.assigned.send_replace(true);
            }
        }
    }
}

/// The services' producer: idempotent, acks=all, linger.ms=5.
pub fn producer(brokers: &str, name: &'static str) -> Result<FutureProducer<BenchContext>, String> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("client.id", name)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "300000");
    config
        .create_with_context(BenchContext::new(name).0)
        .map_err(|e| format!("invalid producer settings for {name}: {e}"))
}

/// The services' consumer (offsets stored by hand, committed every second),
/// subscribed to `topic` in `group`; the receiver turns true once it has partitions.
pub fn consumer(
    brokers: &str,
    name: &'static str,
    group: &str,
    topic: &str,
    fetch_wait_ms: u32,
) -> Result<(Arc<StreamConsumer<BenchContext>>, watch::Receiver<bool>), String> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("client.id", name)
        .set("group.id", group)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", fetch_wait_ms.to_string())
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000");
    let (context, ready) = BenchContext::new(name);
    let consumer: StreamConsumer<BenchContext> = config
        .create_with_context(context)
        .map_err(|e| format!("invalid consumer settings for {name}: {e}"))?;
    consumer.subscribe(&[topic]).map_err(|e| format!("{name} cannot subscribe to {topic}: {e}"))?;
    Ok((Arc::new(consumer), ready))
}

/// Creates `topics` with [`PARTITIONS`] partitions each (existing ones are fine).
pub async fn create_topics(brokers: &str, topics: &[&str]) -> Result<(), String> {
    let admin: AdminClient<BenchContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create_with_context(BenchContext::new("admin").0)
        .map_err(|e| format!("invalid admin client settings: {e}"))?;
    let new_topics: Vec<NewTopic> =
        topics.iter().map(|t| NewTopic::new(t, PARTITIONS, TopicReplication::Fixed(1))).collect();
    let options = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(10)))
        .request_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(&new_topics, &options)
        .await
        .map_err(|e| format!("cannot create topics {topics:?} on {brokers}: {e}"))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(format!("cannot create topic {topic} on {brokers}: {code}")),
        }
    }
    Ok(())
}
