//! The pipeline: the three real services as separate processes (release
//! binaries, via the harness), on topics and groups of their own.
//!
//! Each order is timed from the `created_at_ms` it carries (read back from the
//! payment topic afterwards) to the timestamp of notification-service's
//! "✅ Payment Successful" line. The services log to files at their default
//! level, which the benchmark reads only after the run (see `service.rs`).
//!
//! The consumer services' stores start empty in each run: a fresh SQLite file
//! each, beside their logs, or (`--store postgres`) one fresh PostgreSQL server
//! that both share, stopped and removed when the run ends.

use crate::cli::StoreKind;
use crate::measure::Sample;
use crate::process::{self, Usage, Watch};
use crate::service::LoggedService;
use harness::logline::{order_after, timestamp_ms};
use harness::postgres::Postgres;
use harness::NOTIFIED;
use rdkafka::Message;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long the consumer services may take to join their groups.
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a service may take to stop after Ctrl-C.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// What the services log once their consumer has partitions.
const ASSIGNED: &str = "partitions assigned";
/// What order-service logs as it makes each order.
const CREATED: &str = "📦 Order Created";

pub const SERVICES: [&str; 3] = ["order-service", "payment-service", "notification-service"];

/// Where and how the pipeline runs.
pub struct Setup {
    pub brokers: String,
    pub order_topic: String,
    pub payment_topic: String,
    /// Prefix of the two consumer groups.
    pub group: String,
    /// RUST_LOG of the services; `None`: their default.
    pub rust_log: Option<String>,
    /// Each service's --max-in-flight.
    pub max_in_flight: u32,
    pub extra_args: Vec<String>,
    pub timeout: Duration,
    /// Where each service's log goes (`<service>.log`), kept after the run.
    pub logs: PathBuf,
    /// The consumer services' store.
    pub store: StoreKind,
}

/// What one run of the pipeline measured.
pub struct Measured {
    pub samples: Vec<Sample>,
    /// Each service's peak RSS and CPU time, in [`SERVICES`] order.
    pub usage: [Usage; 3],
    /// CPU time the benchmark's own process used while the services ran, ms.
    pub bench_cpu_ms: u64,
    /// Each "📦 Order Created" line's time, in the order order-service wrote them.
    pub created_lines_ms: Vec<u64>,
}

/// Sends `count` orders through the services at `rate` per second (0 = unlimited).
pub fn run(setup: &Setup, count: u64, rate: f64) -> Result<Measured, String> {
    std::fs::create_dir_all(&setup.logs)
        .map_err(|e| format!("cannot create {}: {e}", setup.logs.display()))?;
    let mut common: Vec<String> = [
        "--brokers",
        &setup.brokers,
        "--order-topic",
        &setup.order_topic,
        "--payment-topic",
        &setup.payment_topic,
        "--stats-interval",
        "0",
        "--max-in-flight",
        &setup.max_in_flight.to_string(),
    ]
    .map(String::from)
    .to_vec();
    common.extend(setup.extra_args.iter().cloned());
    let stores = RunStores::start(setup);
    let start = |name: &str, more: &[String]| {
        let mut args: Vec<String> = common.iter().chain(more).cloned().collect();
        if name != "order-service" {
            args.extend(["--store".to_string(), stores.url(name)?]);
        }
        let log = setup.logs.join(format!("{name}.log"));
        LoggedService::start(name, &args, setup.rust_log.as_deref(), &log)
    };

    let group = |suffix: &str| ["--group-id".to_string(), format!("{}_{suffix}", setup.group)];
    let mut notification = start("notification-service", &group("notification"))?;
    let mut payment = start("payment-service", &group("payment"))?;
    notification.wait_for_line(ASSIGNED, JOIN_TIMEOUT)?;
    payment.wait_for_line(ASSIGNED, JOIN_TIMEOUT)?;

    let bench_cpu_before = process::own_cpu_ms()?;
    let amount = ["--count".to_string(), count.to_string(), "--rate".to_string(), rate.to_string()];
    let mut orders = start("order-service", &amount)?;
    // It stops on its own once every order is acknowledged: sample it meanwhile.
    let orders_watch = Watch::start(orders.pid());
    let status = orders.wait_exit(setup.timeout)?;
    if !status.success() {
        return Err(format!("order-service exited with {status}; its log: {}", setup.logs.display()));
    }
    let orders_usage = orders_watch.finish()?;
    notification.wait_for_count(NOTIFIED, count, setup.timeout)?;
    let bench_cpu_ms = process::own_cpu_ms()?.saturating_sub(bench_cpu_before);
    let usage_of = |service: &LoggedService| {
        process::usage(service.pid()).ok_or_else(|| format!("cannot read /proc of {}", service.name))
    };
    let (payment_usage, notification_usage) = (usage_of(&payment)?, usage_of(&notification)?);
    payment.stop(STOP_TIMEOUT)?;
    notification.stop(STOP_TIMEOUT)?;

    let created_lines_ms =
        orders.text()?.lines().filter(|l| l.contains(CREATED)).filter_map(timestamp_ms).collect();
    let samples = samples(&notification.text()?, &created_times(setup)?)?;
    Ok(Measured {
        samples,
        usage: [orders_usage, payment_usage, notification_usage],
        bench_cpu_ms,
        created_lines_ms,
    })
}

/// The consumer services' stores of one run, empty at its start.
enum RunStores {
    /// A SQLite file per service in this folder, made afresh.
    Sqlite(PathBuf),
    /// A PostgreSQL server of the run's own (a fresh cluster), shared by both
    /// services as instances on several hosts share theirs.
    Postgres(Postgres),
}

impl RunStores {
    fn start(setup: &Setup) -> RunStores {
        match setup.store {
            StoreKind::Sqlite => RunStores::Sqlite(setup.logs.clone()),
            StoreKind::Postgres => RunStores::Postgres(Postgres::start()),
        }
    }

    /// The `--store` URL of `service`.
    fn url(&self, service: &str) -> Result<String, String> {
        match self {
            RunStores::Sqlite(dir) => fresh_store(dir, service),
            RunStores::Postgres(server) => Ok(server.url()),
        }
    }
}

/// The URL of a fresh SQLite store `<dir>/<name>.db`, what an earlier run left
/// there removed: each run is measured from empty tables.
pub fn fresh_store(dir: &Path, name: &str) -> Result<String, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let store = dir.join(format!("{name}.db"));
    for file in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{file}", store.display()));
    }
    Ok(format!("sqlite://{}", store.display()))
}

/// Each order's `created_at_ms`, from the payment events on the payment topic.
fn created_times(setup: &Setup) -> Result<HashMap<u64, u64>, String> {
    let mut created = HashMap::new();
    let mut bad = None;
    let mut client = rdkafka::ClientConfig::new();
    client.set("bootstrap.servers", &setup.brokers);
    common::kafka::tool_reader::read_to_end(&client, &setup.payment_topic, |record| {
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
    })
    .map_err(|e| e.to_string())?;
    if let Some(offset) = bad {
        return Err(format!(
            "{} holds an event without order_id or created_at_ms (offset {offset})",
            setup.payment_topic
        ));
    }
    Ok(created)
}

/// One sample per notified order: its creation time and its notification line's time.
fn samples(log: &str, created: &HashMap<u64, u64>) -> Result<Vec<Sample>, String> {
    let mut samples = HashMap::new();
    for line in log.lines().filter(|l| l.contains(NOTIFIED)) {
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
