//! Every service's Kafka clients: their settings, and the builders that make them.
//!
//! Settings follow rust-rdkafka's `at_least_once.rs`: offsets are stored by hand
//! once an event's effect is done (`enable.auto.offset.store=false`) and committed
//! in the background; the producer is idempotent and waits for every replica.
//! The operator's `-X` and `--kafka-config` properties come last and win. Why
//! each value was chosen, measured: `docs/benchmark.md`.

use crate::base::metrics::Metrics;
use crate::kafka::client::context::KafkaContext;
use crate::kafka::client::error::KafkaSetupError;
use crate::kafka::client::settings::{KafkaSettings, DEFAULT_FETCH_WAIT_MS};
use crate::kafka::consumer::group::{GroupConsumer, GroupContext};
use crate::kafka::consumer::store_mark;
use crate::kafka::producer::deliveries::{Deliveries, KafkaProducer};
use rdkafka::config::{ClientConfig, FromClientConfigAndContext};
use rdkafka::consumer::Consumer;
use rdkafka::ClientContext;
use std::sync::Arc;

/// Every service's producer: idempotent, acknowledged by every replica.
pub const PRODUCER_SETTINGS: [(&str, &str); 5] = [
    ("enable.idempotence", "true"),
    ("acks", "all"),
    ("linger.ms", "5"),
    // One request in flight per broker: with idempotence and more, librdkafka
    // busy-polls while it waits for a slow broker's answer.
    ("max.in.flight.requests.per.connection", "1"),
    // librdkafka retries a delivery on its own this long; then we retry it.
    ("message.timeout.ms", "300000"),
];

/// Every service's consumer, beyond its group and `--fetch-wait-ms`,
/// `--max-poll-interval-ms` (and `--instance-id`).
pub const CONSUMER_SETTINGS: [(&str, &str); 9] = [
    ("enable.auto.commit", "true"),
    ("auto.commit.interval.ms", "1000"),
    ("enable.auto.offset.store", "false"),
    ("auto.offset.reset", "earliest"),
    // a killed member's partitions move on after 10 s instead of 45
    ("session.timeout.ms", "10000"),
    ("heartbeat.interval.ms", "1000"),
    // Fetch ahead 10,000 records, not librdkafka's 100,000: with a backlog the
    // prefetch was most of a consumer's memory. Refetch 10 ms after the queue
    // was full, not 1 s: that pause made a smaller prefetch slow.
    ("queued.min.messages", "10000"),
    ("fetch.queue.backoff.ms", "10"),
    // ...and at most 2 MiB of them per partition, not librdkafka's 64 MiB:
    // a fetch response can overshoot the count.
    ("queued.max.messages.kbytes", "2048"),
];

/// The client settings above, and the default fetch wait, on one line (for the benchmark's report).
pub fn describe_settings() -> String {
    let list = |settings: &[(&str, &str)]| {
        settings.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
    };
    format!(
        "producer {}; consumer {}, fetch.wait.max.ms={}",
        list(&PRODUCER_SETTINGS),
        list(&CONSUMER_SETTINGS),
        DEFAULT_FETCH_WAIT_MS
    )
}

fn base_config(kafka: &KafkaSettings, service: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &kafka.brokers).set("client.id", service);
    config
}

/// A client of `kafka`'s broker for `service` with `context`, with every `-X`
/// and `--kafka-config` property, which come last: the operator's word wins.
fn create<C: ClientContext, T: FromClientConfigAndContext<C>>(
    config: &ClientConfig,
    kafka: &KafkaSettings,
    context: C,
) -> Result<T, KafkaSetupError> {
    let mut config = config.clone();
    kafka.client.apply(&mut config);
    config.create_with_context(context).map_err(KafkaSetupError::ClientSettings)
}

/// A plain client of `kafka`'s broker for `service` (an admin client, a probe).
pub(crate) fn client<T: FromClientConfigAndContext<KafkaContext>>(
    kafka: &KafkaSettings,
    service: &str,
) -> Result<T, KafkaSetupError> {
    create(&base_config(kafka, service), kafka, KafkaContext::new(&kafka.brokers))
}

/// The idempotent producer every service publishes with; its deliveries are
/// counted in `metrics` (see `producer/deliveries.rs`).
pub fn producer(
    kafka: &KafkaSettings,
    service: &str,
    metrics: Arc<Metrics>,
) -> Result<KafkaProducer, KafkaSetupError> {
    let mut config = base_config(kafka, service);
    for (key, value) in PRODUCER_SETTINGS {
        config.set(key, value);
    }
    create(&config, kafka, Deliveries::new(&kafka.brokers, metrics))
}

/// A consumer in `group` subscribed to `topic`, storing offsets only when told;
/// with `statistics`, librdkafka reports its lag every second. Its client id
/// names the store it fences with (`store_mark.rs`), if it has one.
pub fn consumer(
    kafka: &KafkaSettings,
    service: &str,
    group: &str,
    topic: &str,
    statistics: bool,
    store_id: Option<&str>,
) -> Result<Arc<GroupConsumer>, KafkaSetupError> {
    let mut config = base_config(kafka, service);
    config.set("client.id", store_mark::client_id(service, store_id));
    for (key, value) in CONSUMER_SETTINGS {
        config.set(key, value);
    }
    config
        .set("group.id", group)
        .set("fetch.wait.max.ms", kafka.fetch_wait_ms.to_string())
        .set("max.poll.interval.ms", kafka.max_poll_interval_ms.to_string());
    if let Some(instance) = &kafka.instance_id {
        config.set("group.instance.id", instance);
    }
    if statistics {
        config.set("statistics.interval.ms", "1000");
    }
    let consumer: GroupConsumer = create(&config, kafka, GroupContext::new(&kafka.brokers, group, store_id))?;
    // Before it joins (at its first poll): a member there on another store stops this one.
    match consumer.context().other_store(&consumer) {
        Ok(Some(other)) => return Err(KafkaSetupError::OtherStore(other)),
        Ok(None) => {}
        Err(e) => log::warn!(target: "kafka", "cannot check the stores of group {group}: {e}"),
    }
    consumer
        .subscribe(&[topic])
        .map_err(|source| KafkaSetupError::Subscribe { topic: topic.to_string(), source })?;
    Ok(Arc::new(consumer))
}
