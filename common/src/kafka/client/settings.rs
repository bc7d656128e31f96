//! What a service's Kafka clients are told: where the broker is, how long to
//! wait for it, how the consumer behaves in its group, how topics are made.
//! Plain values: the runtime layer builds them from the flags
//! (`runtime::config::KafkaArgs`), the tests and tools as they need.

use super::properties::ClientProperties;
use std::time::Duration;

/// The consumer's `fetch.wait.max.ms` unless told otherwise.
pub const DEFAULT_FETCH_WAIT_MS: u32 = 10;

#[derive(Clone, Debug)]
pub struct KafkaSettings {
    /// Bootstrap servers, `host:port` comma-separated.
    pub brokers: String,
    /// How long to wait for the broker at start; 0: forever.
    pub broker_wait_secs: u64,
    /// Kafka's `max.poll.interval.ms`.
    pub max_poll_interval_ms: u32,
    /// Kafka's `group.instance.id` (static membership).
    pub instance_id: Option<String>,
    /// Kafka's `fetch.wait.max.ms`.
    pub fetch_wait_ms: u32,
    /// Partitions of each topic created.
    pub partitions: i32,
    /// Replication factor of each topic created; -1: the broker's default.
    pub replication_factor: i32,
    /// Whether missing topics are created (else they are an error).
    pub create_topics: bool,
    /// The operator's librdkafka properties, applied last.
    pub client: ClientProperties,
}

impl KafkaSettings {
    pub fn broker_wait(&self) -> Option<Duration> {
        (self.broker_wait_secs > 0).then(|| Duration::from_secs(self.broker_wait_secs))
    }
}
