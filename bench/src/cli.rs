//! The benchmark's flags, and the plan they make (with `--smoke` applied).

use clap::Parser;
use common::runtime::config::DEFAULT_MAX_IN_FLIGHT;
use std::path::PathBuf;
use std::time::Duration;

/// Measures the order pipeline against bare rdkafka on the same broker:
/// throughput, end-to-end latency at a fixed rate, and each service's peak memory.
#[derive(Parser, Debug)]
#[command(version)]
pub struct Args {
    /// Use this broker (host:port) instead of starting the embedded Nisshi one.
    #[arg(long)]
    pub brokers: Option<String>,
    /// Storage of the embedded broker, a fresh one for each run. In memory, the
    /// broker is fast enough not to be what limits the clients; on sqlite (what
    /// the demo and the tests use) it writes ~5,000 records/s here, for any client.
    #[arg(long, value_enum, default_value_t = Storage::Memory)]
    pub storage: Storage,
    /// The consumer services' store. sqlite: a fresh file per service and run.
    /// postgres: besides, each throughput run measures the pipeline once more,
    /// both consumer services on a PostgreSQL 15 server of the bench's own (a
    /// fresh one per run, started as the tests start theirs: Debian's
    /// postgresql package, run as its `postgres` user, so the bench needs root),
    /// and the report compares the two.
    #[arg(long, value_enum, default_value_t = StoreKind::Sqlite)]
    pub store: StoreKind,
    /// Orders in each throughput run (offered at unlimited rate).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub orders: u64,
    /// Offered rate of the latency runs, in orders per second.
    #[arg(long, default_value_t = 1000.0, value_parser = positive)]
    pub rate: f64,
    /// Length of each latency run, in seconds.
    #[arg(long, default_value_t = 10.0, value_parser = positive)]
    pub latency_secs: f64,
    /// Orders made before each throughput run's measured ones, and not measured:
    /// they take the start-up costs (e.g. the idempotent producer's ~1 s PID wait).
    /// Keep it above --max-in-flight, so the measured orders are made after the
    /// first acknowledgements [default: twice --max-in-flight].
    #[arg(long)]
    pub warmup_orders: Option<u64>,
    /// Seconds at `--rate` before each latency run's measured orders, not measured.
    #[arg(long, default_value_t = 2.0, value_parser = non_negative)]
    pub warmup_secs: f64,
    /// Throughput runs of each side, alternated; the report gives min, median and max.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub runs: u32,
    /// Events in flight at most per stage, on both sides: the services get it as
    /// their --max-in-flight (default: theirs), so both have the same bound on memory.
    #[arg(long, default_value_t = DEFAULT_MAX_IN_FLIGHT, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: u32,
    /// Sets a librdkafka property of the ceiling's clients, replacing its tuning
    /// of that key, e.g. --ceiling-set linger.ms=5 (repeatable). The delivery
    /// guarantees (idempotence, acks=all, offsets stored by hand) stay.
    #[arg(long = "ceiling-set", value_name = "KEY=VALUE", value_parser = key_value)]
    pub ceiling_set: Vec<(String, String)>,
    /// RUST_LOG of the services [default: unset, so their default level, info].
    /// The benchmark needs the info lines of NotificationActor, OrderActor and kafka.
    #[arg(long)]
    pub service_log: Option<String>,
    /// One more flag for every service, e.g. --service-arg=--drain-timeout-secs=5 (repeatable).
    #[arg(long = "service-arg", allow_hyphen_values = true)]
    pub service_args: Vec<String>,
    /// Sizes of the paid-order histories payment-service is started over, to time
    /// its first new payment (comma-separated; each on an embedded broker of its
    /// own, skipped with --brokers).
    #[arg(long, value_delimiter = ',', default_value = "2000,300000")]
    pub history_orders: Vec<u64>,
    /// Longest wait for one run to finish, in seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout_secs: u64,
    /// Tiny run (200 orders; 200 orders/s for 1 s; warm-ups of 50 orders and
    /// 0.25 s; histories of 100 and 1,000 orders) to check that everything works.
    /// Overrides those flags.
    #[arg(long)]
    pub smoke: bool,
    /// Also write each run's measured samples (order_id,created_ms,done_ms) as CSV here.
    #[arg(long)]
    pub samples_dir: Option<PathBuf>,
    /// Where to write the figures as JSON [default: target/bench.json in the workspace].
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq)]
pub enum Storage {
    Memory,
    Sqlite,
}

/// Where the consumer services record what they do (see `--store`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq)]
pub enum StoreKind {
    Sqlite,
    Postgres,
}

fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.trim().to_string()))
        }
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

fn non_negative(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(format!("{text:?} is not a number of seconds")),
    }
}

fn positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!("{text:?} is not a positive number")),
    }
}

/// What one benchmark run does.
#[derive(Clone, Debug)]
pub struct Plan {
    pub brokers: Option<String>,
    pub storage: Storage,
    pub store: StoreKind,
    pub orders: u64,
    pub rate: f64,
    pub latency_secs: f64,
    pub warmup_orders: u64,
    pub warmup_secs: f64,
    pub runs: u32,
    pub max_in_flight: u32,
    pub ceiling_set: Vec<(String, String)>,
    pub service_log: Option<String>,
    pub service_args: Vec<String>,
    pub history_orders: Vec<u64>,
    pub timeout: Duration,
    pub smoke: bool,
    pub json: PathBuf,
    /// Where the services' logs go, one folder per run (target/bench-logs).
    pub logs: PathBuf,
    pub samples_dir: Option<PathBuf>,
}

impl Plan {
    pub fn from_args(args: Args) -> Plan {
        let (orders, rate, latency_secs, warmup_orders, warmup_secs) = if args.smoke {
            (200, 200.0, 1.0, 50, 0.25)
        } else {
            let warmup_orders = args.warmup_orders.unwrap_or(2 * u64::from(args.max_in_flight));
            (args.orders, args.rate, args.latency_secs, warmup_orders, args.warmup_secs)
        };
        let bench = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let target = bench.parent().unwrap_or(bench).join("target");
        let json = args.json.unwrap_or_else(|| target.join("bench.json"));
        Plan {
            brokers: args.brokers,
            storage: args.storage,
            store: args.store,
            orders,
            rate,
            latency_secs,
            warmup_orders,
            warmup_secs,
            runs: if args.smoke { 1 } else { args.runs },
            max_in_flight: args.max_in_flight,
            ceiling_set: args.ceiling_set,
            service_log: args.service_log,
            service_args: args.service_args,
            history_orders: if args.smoke { vec![100, 1000] } else { args.history_orders },
            timeout: Duration::from_secs(args.timeout_secs),
            smoke: args.smoke,
            json,
            logs: target.join("bench-logs"),
            samples_dir: args.samples_dir,
        }
    }

    /// Orders in each latency run.
    pub fn latency_orders(&self) -> u64 {
        ((self.rate * self.latency_secs).round() as u64).max(1)
    }

    /// Warm-up orders before each latency run's measured ones.
    pub fn latency_warmup(&self) -> u64 {
        (self.rate * self.warmup_secs).round() as u64
    }
}
