//! Command-line flags every service shares, flattened into each service's own.

use crate::actor::fault::{CrashMode, FaultPlan, Role};
use crate::actor::restart_policy::RestartLimits;
use crate::kafka::client::properties::ClientProperties;
use crate::kafka::client::settings::{KafkaSettings, DEFAULT_FETCH_WAIT_MS};
use crate::store::{StoreSetup, StoreUrl};
use clap::Args;
use std::time::Duration;

/// `--max-in-flight` unless given. A stage moves at most its bound per round trip
/// of an event (read, handled, its output acknowledged), so a low bound caps the
/// throughput; this one leaves the CPU as the limit (measured: `docs/benchmark.md`).
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 5000;

/// Where the broker is and which topics to use.
#[derive(Args, Clone, Debug)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers (host:port, comma-separated).
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    #[arg(long, default_value = "order_topic")]
    pub order_topic: String,
    #[arg(long, default_value = "payment_topic")]
    pub payment_topic: String,
    /// How long to wait for the broker at start before giving up (0 = forever).
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(..=86_400))]
    pub broker_wait_secs: u64,
    /// How long, in ms, a consumer may go without polling before its group hands
    /// its partitions to others (Kafka's max.poll.interval.ms). It polls on while
    /// back-pressured, so only a wedged process gets there. At least the session
    /// timeout, 10000.
    #[arg(long, default_value_t = 300_000, value_parser = clap::value_parser!(u32).range(10_000..=86_400_000))]
    pub max_poll_interval_ms: u32,
    /// A stable name for this instance in its consumer group (Kafka's static
    /// membership): restarted with the same id, a killed instance takes its
    /// partitions back at once instead of after the session timeout.
    #[arg(long)]
    pub instance_id: Option<String>,
    /// The consumer's fetch long-poll, in ms (`fetch.wait.max.ms`). A longer wait
    /// adds latency on a broker that answers a waiting fetch late (as Nisshi does);
    /// a shorter one costs an idle broker more CPU.
    #[arg(long, default_value_t = DEFAULT_FETCH_WAIT_MS, value_parser = clap::value_parser!(u32).range(1..=60_000))]
    pub fetch_wait_ms: u32,
    /// Partitions of each topic this service creates.
    #[arg(long, default_value_t = DEFAULT_PARTITIONS, value_parser = clap::value_parser!(i32).range(1..=100_000))]
    pub partitions: i32,
    /// Replication factor of each topic this service creates: -1 takes the
    /// broker's own default (`default.replication.factor`).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true, value_parser = replication_factor)]
    pub replication_factor: i32,
    /// Whether this service creates the topics it uses that are missing; `false`
    /// for deployments whose operators make the topics (a missing one is then an error).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub create_topics: bool,
    #[command(flatten)]
    pub client: ClientProperties,
}

/// `--partitions` unless given.
pub const DEFAULT_PARTITIONS: i32 = 3;

fn replication_factor(text: &str) -> Result<i32, String> {
    match text.parse::<i32>() {
        Ok(factor) if factor == -1 || (1..=i32::from(i16::MAX)).contains(&factor) => Ok(factor),
        _ => Err(format!(
            "{text:?} is not a replication factor: give the number of brokers that keep each \
             partition (1 or more), or -1 for the broker's default"
        )),
    }
}

impl KafkaArgs {
    /// What the Kafka clients are told, from these flags.
    pub fn settings(&self) -> KafkaSettings {
        KafkaSettings {
            brokers: self.brokers.clone(),
            broker_wait_secs: self.broker_wait_secs,
            max_poll_interval_ms: self.max_poll_interval_ms,
            instance_id: self.instance_id.clone(),
            fetch_wait_ms: self.fetch_wait_ms,
            partitions: self.partitions,
            replication_factor: self.replication_factor,
            create_topics: self.create_topics,
            client: self.client.clone(),
        }
    }

    /// A client configuration for the broker, with every `-X` and `--kafka-config` property.
    pub fn client_config(&self) -> rdkafka::ClientConfig {
        self.client.client_config(&self.brokers)
    }
}

/// The idempotency memory of a consumer service (see `recent_ids.rs`).
#[derive(Args, Clone, Debug)]
pub struct DedupArgs {
    /// How many of the most recent order ids are remembered, to recognise a second
    /// record of an order: a copy that comes after this many other orders is
    /// handled again (by the store, which recognises it too).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub dedup_capacity: u64,
}

/// Where a consumer service records what it did (see `store/`).
#[derive(Args, Clone, Debug)]
pub struct StoreArgs {
    /// The store: `sqlite://PATH` (instances on one host share the file) or
    /// `postgres://USER@HOST:PORT/DB` (instances on several hosts). Default:
    /// `sqlite://$XDG_STATE_HOME/order-pipeline/<service>.db`
    /// (`~/.local/state/order-pipeline/<service>.db` without XDG_STATE_HOME):
    /// one file for every instance of this user on this host, wherever it starts.
    #[arg(long, env = "PIPELINE_STORE", value_name = "URL", value_parser = StoreUrl::parse)]
    pub store: Option<StoreUrl>,
    /// Rows older than this many days are pruned from the store.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub store_retention_days: u32,
}

impl StoreArgs {
    /// The store of `service`, written by this process as `instance`.
    pub fn setup(&self, service: &str, instance: String) -> StoreSetup {
        let url = self.store.clone().unwrap_or_else(|| StoreUrl::Sqlite(default_store(service)));
        StoreSetup {
            url,
            instance,
            retention_days: self.store_retention_days,
            log_written: crate::base::logging::flush,
        }
    }
}

/// The default store file of `service`, its folder made if missing (a folder
/// that cannot be made shows as the store being unavailable).
fn default_store(service: &str) -> String {
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| std::path::Path::new(&home).join(".local/state")))
        .unwrap_or_default();
    let folder = state.join("order-pipeline");
    let _ = std::fs::create_dir_all(&folder);
    folder.join(format!("{service}.db")).display().to_string()
}

/// Supervision limits, fault injection, flow control and counters.
#[derive(Args, Clone, Debug)]
pub struct RuntimeArgs {
    /// Probability (0..=1) that each event handled by the chosen actor crashes it.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    pub crash_rate: f64,
    /// Which actor the injected faults hit.
    #[arg(long, value_enum, default_value_t = Role::Domain)]
    pub crash_actor: Role,
    /// How an injected fault happens.
    #[arg(long, value_enum, default_value_t = CrashMode::Panic)]
    pub crash_mode: CrashMode,
    /// Seed for the fault injector and the service's random choices, for repeatable runs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// First restart delay after a crash, in ms; doubles per crash in a row.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(..=3_600_000))]
    pub restart_backoff_ms: u64,
    /// Longest restart delay, in ms.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(..=3_600_000))]
    pub restart_backoff_max_ms: u64,
    /// Restarts tolerated within --restart-window-secs with no successful event in
    /// between; one more is a crash loop, and the service shuts down (exit 1).
    #[arg(long, default_value_t = 10)]
    pub max_restarts: u32,
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(..=86_400))]
    pub restart_window_secs: u64,
    /// Serve /metrics (Prometheus), /health and /ready over HTTP on this HOST:PORT
    /// (port 0 picks a free one); off when absent.
    #[arg(long, env = "METRICS_ADDR", value_name = "HOST:PORT")]
    pub metrics_addr: Option<String>,
    /// Log the counters every N seconds (0 = only at shutdown).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(..=86_400))]
    pub stats_interval: u64,
    /// Events in flight at most (read but not yet done): the back-pressure bound.
    #[arg(long, default_value_t = DEFAULT_MAX_IN_FLIGHT, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: u32,
    /// How long a graceful shutdown (or a rebalance) waits for in-flight events, in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(..=3600))]
    pub drain_timeout_secs: u64,
}

impl RuntimeArgs {
    pub fn restart_limits(&self) -> RestartLimits {
        RestartLimits {
            initial_backoff: Duration::from_millis(self.restart_backoff_ms),
            max_backoff: Duration::from_millis(self.restart_backoff_max_ms.max(self.restart_backoff_ms)),
            max_restarts: self.max_restarts,
            window: Duration::from_secs(self.restart_window_secs),
        }
    }

    /// Exits with a usage error if `--crash-actor` names an actor this service
    /// lacks: consumer services have no generator, order-service has no consumer.
    pub fn check_crash_actor(&self, source: Role) {
        let absent = if source == Role::Generator { Role::Consumer } else { Role::Generator };
        if self.crash_actor == absent {
            let choices = format!("{source:?}, domain, producer or any").to_lowercase();
            let message = format!("this service has no {absent:?} actor: --crash-actor takes {choices}\n");
            clap::Error::raw(clap::error::ErrorKind::InvalidValue, message.to_lowercase()).exit();
        }
    }

    pub fn fault_plan(&self) -> FaultPlan {
        FaultPlan { rate: self.crash_rate, target: self.crash_actor, mode: self.crash_mode, seed: self.seed }
    }
}

/// Parses a probability in 0..=1 (used by `--crash-rate` and `--decline-rate`).
pub fn probability(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("{text:?} is not a probability: give a number from 0 to 1, like 0.05")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_are_checked() {
        assert_eq!(probability("0.05"), Ok(0.05));
        assert_eq!(probability("1"), Ok(1.0));
        for bad in ["1.5", "-0.1", "NaN", "often"] {
            assert!(probability(bad).unwrap_err().contains("not a probability"), "{bad}");
        }
    }
}
