//! The ceiling's Kafka clients: bare rdkafka with the services' delivery
//! guarantees (idempotent producer, acks=all; offsets stored by hand once the
//! effect is done, committed in the background) but settings of its own, the
//! fastest measured for it (see the README's benchmark section). They are
//! printed in the report beside the services' own.

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::producer::FutureProducer;
use rdkafka::ClientContext;
use std::sync::Arc;
use tokio::sync::watch;

/// The guarantees, the same as the services'. Not overridable.
const PRODUCER_GUARANTEES: [(&str, &str); 2] = [("enable.idempotence", "true"), ("acks", "all")];
const CONSUMER_GUARANTEES: [(&str, &str); 3] = [
    ("enable.auto.offset.store", "false"),
    ("enable.auto.commit", "true"),
    ("auto.offset.reset", "earliest"),
];

/// The ceiling's tuning (each `--ceiling-set key=value` replaces or adds one):
/// the fastest measured here, 5 runs of 100,000 orders each (README). One produce
/// request in flight beat librdkafka's default of 5 (median 111,000 against
/// 86,000 orders/s, and 12 against 17 CPU ms per 1000 orders: with idempotence
/// librdkafka sends one request per partition at a time anyway, and busy-polls
/// while more wait); linger.ms 1 and 5 measured the same.
pub const TUNING: [(&str, &str); 3] =
    [("max.in.flight.requests.per.connection", "1"), ("linger.ms", "1"), ("fetch.wait.max.ms", "5")];

/// How the ceiling's clients are tuned.
#[derive(Clone, Debug)]
pub struct Settings {
    /// [`TUNING`] with the overrides applied, in order.
    pub tuning: Vec<(String, String)>,
}

impl Settings {
    pub fn new(overrides: &[(String, String)]) -> Settings {
        let mut tuning: Vec<(String, String)> =
            TUNING.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        for (key, value) in overrides {
            match tuning.iter_mut().find(|(k, _)| k == key) {
                Some(entry) => entry.1 = value.clone(),
                None => tuning.push((key.clone(), value.clone())),
            }
        }
        Settings { tuning }
    }

    /// The consumers' fetch.wait.max.ms (librdkafka's default, 500, if not tuned).
    pub fn fetch_wait_ms(&self) -> u32 {
        let tuned = self.tuning.iter().find(|(k, _)| k == "fetch.wait.max.ms");
        tuned.and_then(|(_, v)| v.parse().ok()).unwrap_or(500)
    }

    /// `key=value, ...` of the tuning, for the report.
    pub fn describe(&self) -> String {
        self.tuning.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
    }

    /// The tuning properties that apply to a producer (or to a consumer).
    fn tuned(&self, config: &mut ClientConfig, producer: bool) {
        for (key, value) in &self.tuning {
            if is_consumer_property(key) != producer {
                config.set(key, value);
            }
        }
    }
}

/// Consumer-only properties (librdkafka warns when a producer gets one).
fn is_consumer_property(key: &str) -> bool {
    key.starts_with("fetch.")
        || key.starts_with("queued.")
        || key.starts_with("auto.commit")
        || key.starts_with("max.partition.fetch")
}

/// An idempotent producer with the ceiling's tuning.
pub fn producer(brokers: &str, settings: &Settings, name: &str) -> Result<FutureProducer, String> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers).set("client.id", name);
    for (key, value) in PRODUCER_GUARANTEES {
        config.set(key, value);
    }
    settings.tuned(&mut config, true);
    config.create().map_err(|e| format!("the ceiling's {name} producer: {e}"))
}

/// Turns a watch true once the consumer has partitions.
pub struct Assigned(watch::Sender<bool>);

impl ClientContext for Assigned {}

impl ConsumerContext for Assigned {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            self.0.send_replace(partitions.count() > 0);
        }
    }
}

pub type CeilingConsumer = StreamConsumer<Assigned>;

/// A consumer in `group` subscribed to `topic`, storing offsets by hand, with
/// the ceiling's tuning; the receiver turns true once it has partitions.
pub fn consumer(
    brokers: &str,
    settings: &Settings,
    name: &str,
    group: &str,
    topic: &str,
) -> Result<(Arc<CeilingConsumer>, watch::Receiver<bool>), String> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers).set("client.id", name).set("group.id", group);
    for (key, value) in CONSUMER_GUARANTEES {
        config.set(key, value);
    }
    settings.tuned(&mut config, false);
    let (assigned, ready) = watch::channel(false);
    let consumer: CeilingConsumer = config
        .create_with_context(Assigned(assigned))
        .map_err(|e| format!("the ceiling's {name} consumer: {e}"))?;
    consumer.subscribe(&[topic]).map_err(|e| format!("the ceiling's {name} cannot subscribe: {e}"))?;
    Ok((Arc::new(consumer), ready))
}

/// Creates the `topics` the way the services do (as many partitions), if missing.
pub async fn create_topics(brokers: &str, topics: &[String]) -> Result<(), String> {
    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        kafka: common::runtime::config::KafkaArgs,
    }
    let flags = <Flags as clap::Parser>::try_parse_from(["ceiling", "--brokers", brokers])
        .map_err(|e| format!("the ceiling's Kafka settings: {e}"))?;
    common::kafka::client::topics::ensure(&flags.kafka.settings(), "ceiling", topics)
        .await
        .map_err(|e| e.to_string())
}
