//! The client context every Kafka client of a service shares: librdkafka's
//! logs and errors become readable log lines, its statistics become metrics.
//!
//! librdkafka retries broker trouble on its own and reports each attempt, so
//! trouble is logged as one WARN line every few seconds at most, and the rest
//! goes to debug. A consumer's context wraps this one (see `consumer/group.rs`), and
//! so does a producer's (see `producer/deliveries.rs`).

use crate::base::metrics::Metrics;
use log::{debug, warn};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::producer::ProducerContext;
use rdkafka::statistics::Statistics;
use rdkafka::ClientContext;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Broker trouble is logged at most this often.
const COMPLAINT_INTERVAL: Duration = Duration::from_secs(5);

pub struct KafkaContext {
    brokers: String,
    last_complaint: Mutex<Option<Instant>>,
    /// Where librdkafka's statistics go (a consumer's lag), once set.
    metrics: OnceLock<Arc<Metrics>>,
}

impl KafkaContext {
    /// The context of a client of `brokers`.
    pub fn new(brokers: &str) -> Self {
        KafkaContext {
            brokers: brokers.to_string(),
            last_complaint: Mutex::new(None),
            metrics: OnceLock::new(),
        }
    }

    /// Sends this client's librdkafka statistics (every `statistics.interval.ms`) to `metrics`.
    pub fn report_statistics_to(&self, metrics: Arc<Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    /// Logs broker trouble as one WARN line every few seconds at most (librdkafka
    /// retries on its own); the rest goes to debug.
    pub fn complain(&self, what: &str) {
        let mut last = self.last_complaint.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|at| at.elapsed() < COMPLAINT_INTERVAL) {
            debug!(target: "kafka", "{what}");
            return;
        }
        *last = Some(Instant::now());
        warn!(target: "kafka", "Kafka broker at {} is unreachable or failing: {what} (retrying)", self.brokers);
    }
}

impl ClientContext for KafkaContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning => self.complain(&format!("{facility}: {message}")),
            _ => debug!(target: "librdkafka", "{facility}: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.complain(&format!("{error}: {reason}"));
    }

    fn stats(&self, statistics: Statistics) {
        if let Some(metrics) = self.metrics.get() {
            metrics.consumer_statistics(&statistics);
        }
    }
}

/// For the start-up probe, which sends nothing.
impl ProducerContext for KafkaContext {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: ()) {}
}
