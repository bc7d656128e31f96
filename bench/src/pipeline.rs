//! The pipeline: the three real services as separate processes (release
//! binaries, via the harness), on topics and groups of their own.
//!
//! Each order is timed from the `created_at_ms` it carries (read back from the
//! payment topic afterwards, so no service needs to log its events) to the
//! timestamp of notification-service's "✅ Payment Successful" line.

use crate::measure::Sample;
use crate::process::{Usage, Watch};
use harness::logline::{order_after, timestamp_ms};
use harness::{Service, NOTIFIED};
use rdkafka::Message;
use std::cell::Cell;
use std::collections::HashMap;
use std::time::Duration;

/// How long the consumer services may take to join their groups.
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a service may take to stop after Ctrl-C.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// What the services log once their consumer has partitions.
const ASSIGNED: &str = "partitions assigned";

pub const SERVICES: [&str; 3] = ["order-service", "payment-service", "notification-service"];

/// Where and how the pipeline runs.
pub struct Setup {
    pub brokers: String,
    pub order_topic: String,
    pub payment_topic: String,
    /// Prefix of the two consumer groups.
    pub group: String,
    pub fetch_wait_ms: u32,
    pub max_in_flight: u32,
    pub rust_log: String,
    pub extra_args: Vec<String>,
    pub timeout: Duration,
}

/// What one run of the pipeline measured.
pub struct Measured {
    pub samples: Vec<Sample>,
    /// Each service's peak RSS and CPU time, in [`SERVICES`] order.
    pub usage: [Usage; 3],
}

/// Sends `count` orders through the services at `rate` per second (0 = unlimited).
pub fn run(setup: &Setup, count: u64, rate: f64) -> Result<Measured, String> {
    let mut common: Vec<String> = [
        "--order-topic",
        &setup.order_topic,
        "--payment-topic",
        &setup.payment_topic,
        "--fetch-wait-ms",
        &setup.fetch_wait_ms.to_string(),
        "--max-in-flight",
        &setup.max_in_flight.to_string(),
    ]
    .map(String::from)
    .to_vec();
    common.extend(setup.extra_args.iter().cloned());
    let start = |name: &str, more: &[String]| {
        let args: Vec<&str> = common.iter().chain(more).map(String::as_str).collect();
        Service::start_logging(name, &setup.brokers, &args, &setup.rust_log)
    };

    let group = |suffix: &str| ["--group-id".to_string(), format!("{}_{suffix}", setup.group)];
    let mut notification = start("notification-service", &group("notification"));
    let mut payment = start("payment-service", &group("payment"));
    for service in [&notification, &payment] {
        service.wait_until("its consumer has partitions", JOIN_TIMEOUT, |lines| {
            lines.iter().any(|l| l.contains(ASSIGNED))
        });
    }
    let watches = [Watch::start(payment.pid()), Watch::start(notification.pid())];

    let amount = ["--count".to_string(), count.to_string(), "--rate".to_string(), rate.to_string()];
    let mut orders = start("order-service", &amount);
    let orders_watch = Watch::start(orders.pid());
    let acknowledged = format!("all {count} orders are acknowledged");
    orders.wait_until("every order is acknowledged", setup.timeout, |lines| {
        lines.iter().rev().any(|l| l.contains(&acknowledged))
    });
    orders_watch.read_now(); // right before it stops on its own
    let status = orders.wait_exit(STOP_TIMEOUT);
    if !status.success() {
        return Err(format!("order-service exited with {status}"));
    }
    let orders_usage = orders_watch.finish()?;

    // Counts notifications incrementally: the condition is checked at every new line.
    let seen = Cell::new((0usize, 0u64));
    notification.wait_until("every order is notified", setup.timeout, |lines| {
        let (from, mut notified) = seen.get();
        notified += lines[from..].iter().filter(|l| l.contains(NOTIFIED)).count() as u64;
        seen.set((lines.len(), notified));
        notified >= count
    });
    let [payment_watch, notification_watch] = watches;
    let payment_usage = payment_watch.finish()?;
    payment.stop_gracefully(STOP_TIMEOUT);
    let notification_usage = notification_watch.finish()?;
    notification.stop_gracefully(STOP_TIMEOUT);

    let samples = samples(&notification.lines(), &created_times(setup)?)?;
    Ok(Measured { samples, usage: [orders_usage, payment_usage, notification_usage] })
}

/// Each order's `created_at_ms`, from the payment events on the payment topic.
fn created_times(setup: &Setup) -> Result<HashMap<u64, u64>, String> {
    let mut created = HashMap::new();
    let mut bad = None;
    let mut client = rdkafka::ClientConfig::new();
    client.set("bootstrap.servers", &setup.brokers);
    common::kafka::read_to_end(&client, &setup.payment_topic, |record| {
        let payment: Option<serde_json::Value> =
            serde_json::from_slice(record.payload().unwrap_or_default()).ok();
        let fields =
            payment.as_ref().and_then(|p| Some((p["order_id"].as_u64()?, p["created_at_ms"].as_u64()?)));
        match fields {
            Some((order, at)) => {
                created.insert(order, at);
            }
            None => bad = Some(record.offset()),
        }
    })?;
    if let Some(offset) = bad {
        return Err(format!(
            "{} holds an event without order_id or created_at_ms (offset {offset})",
            setup.payment_topic
        ));
    }
    Ok(created)
}

/// One sample per notified order: its creation time and its notification line's time.
fn samples(lines: &[String], created: &HashMap<u64, u64>) -> Result<Vec<Sample>, String> {
    let mut samples = HashMap::new();
    for line in lines.iter().filter(|l| l.contains(NOTIFIED)) {
        let (Some(order_id), Some(done_ms)) = (order_after(line, NOTIFIED), timestamp_ms(line)) else {
            return Err(format!("cannot read this notification line: {line}"));
        };
        let Some(&created_ms) = created.get(&order_id) else {
            return Err(format!("order {order_id} was notified but has no payment event"));
        };
        samples.entry(order_id).or_insert(Sample { order_id, created_ms, done_ms });
    }
    Ok(samples.into_values().collect())
}
