//! The service's metrics, in one Prometheus registry: `/metrics` serves it (see
//! `http.rs`) and the `📊` summary line is read from it.
//!
//! The summary is logged every `--stats-interval` seconds
//! ([`Metrics::log_summary_every`]) and once at shutdown; the end-to-end tests
//! read that last line to check that crashes really happened and were survived.

use log::info;
use prometheus::core::Collector;
use prometheus::{
    exponential_buckets, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use rdkafka::statistics::Statistics;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Metrics shared by every actor of one service.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    processed: IntCounter,
    crashes: IntCounterVec,
    restarts: IntCounterVec,
    redeliveries: IntCounter,
    retries: IntCounter,
    duplicates_suppressed: IntCounter,
    dead_lettered: IntCounter,
    conflicts: IntCounter,
    emails_in_doubt: IntCounter,
    in_flight: IntGauge,
    consumer_lag: IntGaugeVec,
    produce_latency: HistogramVec,
    /// `produce_latency`'s histogram of each topic, looked up once: by label it
    /// costs a hash and a lock for every record (4 % of order-service's CPU).
    produce_latency_by_topic: Mutex<Vec<(String, Histogram)>>,
    end_to_end_latency: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        // 1 ms doubling to ~16 s: a hop takes milliseconds, an outage seconds.
        let buckets = exponential_buckets(0.001, 2.0, 15).expect("valid buckets");
        let metrics = Metrics {
            registry: Registry::new(),
            processed: counter("events_processed_total", "Events whose work was done: orders created, paid or notified."),
            crashes: counters("crashes_total", "Actor crashes (panics and errors), by actor.", "actor"),
            restarts: counters("restarts_total", "Actor restarts after a crash, by actor.", "actor"),
            redeliveries: counter("redeliveries_total", "Events handed again to an actor that crashed on them."),
            retries: counter("retries_total", "Inputs that failed transiently and were tried again in place."),
            duplicates_suppressed: counter(
                "duplicates_suppressed_total",
                "Events for an order already handled, recognised and skipped.",
            ),
            dead_lettered: counter("dead_lettered_total", "Records that were not valid events, sent to the dead-letter topic."),
            conflicts: counter(
                "conflicts_total",
                "Orders whose id the store holds for another order (other user or amount): dead-lettered, never paid.",
            ),
            emails_in_doubt: counter(
                "emails_in_doubt_total",
                "Emails claimed by an instance that never recorded them as sent (it died or froze): sent, maybe again.",
            ),
            in_flight: IntGauge::with_opts(opts("events_in_flight", "Events read but not yet done (sampled when scraped)."))
                .expect("valid metric"),
            consumer_lag: IntGaugeVec::new(
                opts(
                    "consumer_lag",
                    "Records of each assigned partition beyond the consumer group's committed offset (librdkafka statistics).",
                ),
                &["topic", "partition"],
            )
            .expect("valid metric"),
            produce_latency: HistogramVec::new(
                HistogramOpts::from(opts("produce_latency_seconds", "From handing a record to the producer to the broker's acknowledgement, by topic."))
                    .buckets(buckets.clone()),
                &["topic"],
            )
            .expect("valid metric"),
            produce_latency_by_topic: Mutex::default(),
            end_to_end_latency: Histogram::with_opts(
                HistogramOpts::from(opts(
                    "end_to_end_latency_seconds",
                    "From an order's created_at_ms to when this service took its event.",
                ))
                .buckets(buckets),
            )
            .expect("valid metric"),
        };
        let collectors: [Box<dyn Collector>; 13] = [
            Box::new(metrics.processed.clone()),
            Box::new(metrics.crashes.clone()),
            Box::new(metrics.restarts.clone()),
            Box::new(metrics.redeliveries.clone()),
            Box::new(metrics.retries.clone()),
            Box::new(metrics.duplicates_suppressed.clone()),
            Box::new(metrics.dead_lettered.clone()),
            Box::new(metrics.conflicts.clone()),
            Box::new(metrics.emails_in_doubt.clone()),
            Box::new(metrics.in_flight.clone()),
            Box::new(metrics.consumer_lag.clone()),
            Box::new(metrics.produce_latency.clone()),
            Box::new(metrics.end_to_end_latency.clone()),
        ];
        for collector in collectors {
            metrics.registry.register(collector).expect("each metric is registered once");
        }
        metrics
    }
}

impl Metrics {
    /// An event's work was done (an order created, paid or notified).
    pub fn processed(&self) {
        self.processed.inc();
    }
    pub fn restarted(&self, actor: &str) {
        self.restarts.with_label_values(&[actor]).inc();
    }
    /// An event that was inside a crashed actor was handed to it again.
    pub fn redelivered(&self) {
        self.redeliveries.inc();
    }
    /// An input that failed transiently was tried again (see `actor/error.rs`).
    pub fn retried(&self) {
        self.retries.inc();
    }
    /// An event for an order already handled was recognised and skipped.
    pub fn duplicate_suppressed(&self) {
        self.duplicates_suppressed.inc();
    }
    pub fn dead_lettered(&self) {
        self.dead_lettered.inc();
    }
    /// An order's id was recorded for another order: dead-lettered.
    pub fn conflict(&self) {
        self.conflicts.inc();
    }
    /// An email was claimed by an instance that never recorded it as sent.
    pub fn email_in_doubt(&self) {
        self.emails_in_doubt.inc();
    }
    pub fn crashed(&self, actor: &str) {
        self.crashes.with_label_values(&[actor]).inc();
    }
    pub fn set_in_flight(&self, events: u32) {
        self.in_flight.set(events.into());
    }
    /// The broker acknowledged a record for `topic` this long after it was handed over.
    pub fn produced(&self, topic: &str, latency: Duration) {
        let mut by_topic = self.produce_latency_by_topic.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, histogram)) = by_topic.iter().find(|(known, _)| known == topic) {
            return histogram.observe(latency.as_secs_f64());
        }
        let histogram = self.produce_latency.with_label_values(&[topic]);
        histogram.observe(latency.as_secs_f64());
        by_topic.push((topic.to_string(), histogram));
    }
    /// This service took the event of an order created at `created_at_ms` (if it says).
    pub fn took_event_created_at(&self, created_at_ms: Option<u64>) {
        let Some(created_at_ms) = created_at_ms else { return };
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        self.end_to_end_latency.observe(now_ms.saturating_sub(created_at_ms) as f64 / 1000.0);
    }

    /// Takes each assigned partition's lag from a consumer's librdkafka statistics.
    pub fn consumer_statistics(&self, statistics: &Statistics) {
        self.consumer_lag.reset(); // partitions no longer assigned disappear
        for (topic, partitions) in &statistics.topics {
            for (&partition, numbers) in &partitions.partitions {
                // librdkafka reports -1 for partitions it does not consume (and its internal partition -1).
                if partition >= 0 && numbers.consumer_lag >= 0 {
                    self.consumer_lag
                        .with_label_values(&[topic, &partition.to_string()])
                        .set(numbers.consumer_lag);
                }
            }
        }
    }

    /// The registry in Prometheus's text exposition format.
    pub fn exposition(&self) -> String {
        TextEncoder::new().encode_to_string(&self.registry.gather()).expect("the registry encodes as text")
    }

    /// Logs the summary every `period`, the first a period from now, for as
    /// long as the service's actix system runs.
    pub fn log_summary_every(self: &Arc<Self>, period: Duration) {
        let metrics = self.clone();
        actix_rt::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            loop {
                ticks.tick().await;
                info!(target: "stats", "📊 {}", metrics.summary());
            }
        });
    }

    /// `processed=2000 crashes=3 (ConsumerActor=1 PaymentActor=2) restarts=3 ... retries=0`, read from the registry.
    pub fn summary(&self) -> String {
        let mut totals: BTreeMap<String, u64> = BTreeMap::new();
        let mut crashes: BTreeMap<String, u64> = BTreeMap::new();
        for family in self.registry.gather() {
            for metric in family.get_metric() {
                let value = metric.get_counter().get_value() as u64;
                *totals.entry(family.name().to_string()).or_default() += value;
                if family.name() == "pipeline_crashes_total" {
                    let actor = metric.get_label().iter().find(|l| l.name() == "actor").map(|l| l.value());
                    crashes.insert(actor.unwrap_or_default().to_string(), value);
                }
            }
        }
        let total = |name: &str| totals.get(name).copied().unwrap_or_default();
        let per_actor: Vec<String> = crashes.iter().map(|(actor, n)| format!("{actor}={n}")).collect();
        format!(
            "processed={} crashes={} ({}) restarts={} redeliveries={} duplicates_suppressed={} dead_lettered={} retries={} \
             conflicts={} emails_in_doubt={}",
            total("pipeline_events_processed_total"),
            total("pipeline_crashes_total"),
            per_actor.join(" "),
            total("pipeline_restarts_total"),
            total("pipeline_redeliveries_total"),
            total("pipeline_duplicates_suppressed_total"),
            total("pipeline_dead_lettered_total"),
            total("pipeline_retries_total"),
            total("pipeline_conflicts_total"),
            total("pipeline_emails_in_doubt_total"),
        )
    }
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help).namespace("pipeline")
}

fn counter(name: &str, help: &str) -> IntCounter {
    IntCounter::with_opts(opts(name, help)).expect("valid metric")
}

fn counters(name: &str, help: &str, label: &str) -> IntCounterVec {
    IntCounterVec::new(opts(name, help), &[label]).expect("valid metric")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_names_every_counter() {
        let metrics = Metrics::default();
        metrics.processed();
        metrics.processed();
        metrics.crashed("PaymentActor");
        metrics.crashed("ConsumerActor");
        metrics.crashed("PaymentActor");
        metrics.restarted("PaymentActor");
        metrics.redelivered();
        metrics.duplicate_suppressed();
        metrics.dead_lettered();
        metrics.retried();
        metrics.conflict();
        metrics.email_in_doubt();
        metrics.email_in_doubt();
        assert_eq!(
            metrics.summary(),
            "processed=2 crashes=3 (ConsumerActor=1 PaymentActor=2) restarts=1 redeliveries=1 \
             duplicates_suppressed=1 dead_lettered=1 retries=1 conflicts=1 emails_in_doubt=2"
        );
    }

    #[test]
    fn exposes_the_same_numbers_to_prometheus() {
        let metrics = Metrics::default();
        metrics.processed();
        metrics.crashed("PaymentActor");
        metrics.produced("payment_topic", Duration::from_millis(3));
        metrics.took_event_created_at(Some(0));
        let text = metrics.exposition();
        for line in [
            "# TYPE pipeline_events_processed_total counter",
            "pipeline_events_processed_total 1",
            "pipeline_crashes_total{actor=\"PaymentActor\"} 1",
            "pipeline_produce_latency_seconds_bucket{topic=\"payment_topic\",le=\"0.004\"} 1",
            "pipeline_produce_latency_seconds_count{topic=\"payment_topic\"} 1",
            "pipeline_end_to_end_latency_seconds_count 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }
}
