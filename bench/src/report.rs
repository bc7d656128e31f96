//! The results: one table on stdout, the same figures as JSON, and the targets
//! they are judged against (reported, never turned into an exit code). With
//! `--store postgres`, a block of rows and keys more: the pipeline on
//! PostgreSQL against the pipeline on SQLite.

use crate::cli::{Plan, StoreKind};
use crate::clients::Settings;
use crate::history::Restart;
use crate::measure::Latency;
use crate::pipeline::SERVICES;
use serde_json::{json, Value};
use std::fmt::Write as _;

/// Pipeline throughput must be at least this share of the ceiling's (and of the fair ceiling's).
pub const THROUGHPUT_SHARE: f64 = 0.8;
/// Pipeline p99 at the fixed rate must be at most this multiple of the ceiling's.
pub const P99_MULTIPLE: f64 = 1.5;
/// Each service's peak RSS must stay below this.
pub const RSS_LIMIT_MIB: f64 = 64.0;
/// The pipeline on PostgreSQL must make at least this share of its throughput on SQLite.
pub const POSTGRES_SHARE: f64 = 0.8;

/// The 1-minute load average (0 if unknown).
pub fn load_average() -> f64 {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split(' ').next().and_then(|l| l.parse().ok()).unwrap_or(0.0)
}

/// The latency figures, by name.
type Pick = fn(&Latency) -> f64;
const LATENCIES: [(&str, Pick); 3] = [("p50", |l| l.p50), ("p99", |l| l.p99), ("max", |l| l.max)];

/// One throughput run of each side.
#[derive(Clone, Copy, Debug)]
pub struct ThroughputRun {
    pub ceiling: f64,
    /// The ceiling writing the services' rows to stores of its own (see `ceiling.rs`).
    pub fair_ceiling: f64,
    pub ceiling_cpu_per_1000: f64,
    pub fair_ceiling_cpu_per_1000: f64,
    /// The pipeline, its consumer services on SQLite stores.
    pub pipeline: PipelineRun,
    /// The pipeline on a PostgreSQL store (`--store postgres`).
    pub postgres: Option<PipelineRun>,
}

/// One throughput run of the pipeline, on one kind of store.
#[derive(Clone, Copy, Debug)]
pub struct PipelineRun {
    /// Orders per second, the first measured order created to the last notified.
    pub throughput: f64,
    /// The same from the services' log lines alone (see `main.rs`).
    pub from_logs: f64,
    /// CPU the benchmark's own process used while the services ran, ms.
    pub bench_cpu_ms: u64,
    /// CPU the three services used in all, ms.
    pub services_cpu_ms: u64,
    /// CPU ms per 1000 orders of each service, in [`SERVICES`] order.
    pub services_cpu_per_1000: [f64; 3],
    /// Peak RSS of each service, MiB, in [`SERVICES`] order.
    pub peak_rss_mib: [f64; 3],
}

/// The pipeline's throughput runs on one kind of store, and the figures made of them.
struct Pipeline(Vec<PipelineRun>);

impl Pipeline {
    fn spread(&self, pick: impl Fn(&PipelineRun) -> f64) -> [f64; 3] {
        spread(self.0.iter().map(pick))
    }

    fn throughput(&self) -> [f64; 3] {
        self.spread(|r| r.throughput)
    }

    /// The median CPU ms per 1000 orders of each service.
    fn services_cpu(&self) -> [f64; 3] {
        [0, 1, 2].map(|i| self.spread(|r| r.services_cpu_per_1000[i])[1])
    }

    /// The highest peak RSS of each service over the runs.
    fn peak_rss_mib(&self) -> [f64; 3] {
        [0, 1, 2].map(|i| self.spread(|r| r.peak_rss_mib[i])[2])
    }
}

pub struct Report {
    pub plan: Plan,
    /// The 1-minute load average at the start and at the end: how busy the machine was.
    pub load: [f64; 2],
    pub ceiling_settings: Settings,
    pub runs: Vec<ThroughputRun>,
    /// Latency at the fixed rate: ceiling, pipeline.
    pub latency: [Latency; 2],
    /// The pipeline's latency with the ceiling's fetch.wait.max.ms.
    pub same_fetch_latency: Latency,
    /// payment-service started over each history size.
    pub restarts: Vec<Restart>,
    /// Why runs failed and were run again on a fresh broker (see `main.rs`).
    pub failed_runs: Vec<String>,
}

fn verdict(pass: bool) -> &'static str {
    if pass {
        "PASS"
    } else {
        "FAIL"
    }
}

fn min_med_max([min, med, max]: [f64; 3]) -> String {
    format!("{min:.0}-{med:.0}-{max:.0}")
}

fn spread_json([min, median, max]: [f64; 3]) -> Value {
    json!({ "min": min, "median": median, "max": max })
}

/// One figure per service, by name.
fn per_service(values: [f64; 3]) -> Value {
    SERVICES.iter().zip(values).map(|(service, v)| (service.to_string(), json!(v))).collect()
}

fn rss_passes(mib: f64) -> bool {
    mib < RSS_LIMIT_MIB
}

/// Whether each service's peak RSS is below [`RSS_LIMIT_MIB`], by name.
fn rss_targets(peak_rss_mib: [f64; 3]) -> Value {
    SERVICES
        .iter()
        .zip(peak_rss_mib)
        .map(|(service, mib)| (service.to_string(), json!(rss_passes(mib))))
        .collect()
}

/// Min, median and max (the lower middle for an even count).
fn spread(values: impl IntoIterator<Item = f64>) -> [f64; 3] {
    let mut values: Vec<f64> = values.into_iter().collect();
    values.sort_by(f64::total_cmp);
    match values.as_slice() {
        [] => [f64::NAN; 3],
        v => [v[0], v[(v.len() - 1) / 2], v[v.len() - 1]],
    }
}

impl Report {
    fn ceiling(&self) -> [f64; 3] {
        spread(self.runs.iter().map(|r| r.ceiling))
    }

    fn fair_ceiling(&self) -> [f64; 3] {
        spread(self.runs.iter().map(|r| r.fair_ceiling))
    }

    /// The pipeline on SQLite.
    fn pipeline(&self) -> Pipeline {
        Pipeline(self.runs.iter().map(|r| r.pipeline).collect())
    }

    /// The pipeline on PostgreSQL, if `--store postgres` measured it.
    fn postgres(&self) -> Option<Pipeline> {
        (self.plan.store == StoreKind::Postgres)
            .then(|| Pipeline(self.runs.iter().filter_map(|r| r.postgres).collect()))
    }

    /// Pipeline median over ceiling median.
    fn throughput_ratio(&self) -> f64 {
        self.pipeline().throughput()[1] / self.ceiling()[1]
    }

    /// Pipeline median over fair ceiling median.
    fn fair_ratio(&self) -> f64 {
        self.pipeline().throughput()[1] / self.fair_ceiling()[1]
    }

    /// The pipeline's median on PostgreSQL over its median on SQLite.
    fn postgres_ratio(&self, postgres: &Pipeline) -> f64 {
        postgres.throughput()[1] / self.pipeline().throughput()[1]
    }

    fn postgres_passes(&self, postgres: &Pipeline) -> bool {
        self.postgres_ratio(postgres) >= POSTGRES_SHARE
    }

    fn fair_passes(&self) -> bool {
        self.fair_ratio() >= THROUGHPUT_SHARE
    }

    /// Median CPU ms per 1000 orders: ceiling, fair ceiling.
    fn ceiling_cpu(&self) -> [f64; 2] {
        [
            spread(self.runs.iter().map(|r| r.ceiling_cpu_per_1000))[1],
            spread(self.runs.iter().map(|r| r.fair_ceiling_cpu_per_1000))[1],
        ]
    }

    /// What the store costs per 1000 orders, the fair ceiling against the bare
    /// one (medians): CPU ms, and wall-clock ms at full speed.
    fn store_cost_per_1000(&self) -> [f64; 2] {
        let [bare, fair] = self.ceiling_cpu();
        [fair - bare, 1e6 / self.fair_ceiling()[1] - 1e6 / self.ceiling()[1]]
    }

    fn latency_ratio(&self, pick: Pick) -> f64 {
        pick(&self.latency[1]) / pick(&self.latency[0])
    }

    fn throughput_passes(&self) -> bool {
        self.throughput_ratio() >= THROUGHPUT_SHARE
    }

    fn p99_passes(&self) -> bool {
        self.latency[1].p99 <= P99_MULTIPLE * self.latency[0].p99
    }

    /// The largest gap between the benchmark's figure and the log lines' one, as a share.
    fn log_disagreement(&self) -> f64 {
        self.pipeline().spread(|r| (r.from_logs / r.throughput - 1.0).abs())[2]
    }

    /// The benchmark's CPU while the services ran, as a share of theirs (the highest).
    fn bench_cpu_share(&self) -> f64 {
        self.pipeline().spread(|r| r.bench_cpu_ms as f64 / r.services_cpu_ms.max(1) as f64)[2]
    }

    /// The table printed at the end of a run.
    pub fn table(&self) -> String {
        let plan = &self.plan;
        let postgres = self.postgres();
        let mut out = String::new();
        let broker = match &plan.brokers {
            Some(address) => format!("{address} (given)"),
            None => {
                format!("embedded Nisshi, {:?} storage, a fresh one per run", plan.storage).to_lowercase()
            }
        };
        let _ = writeln!(out, "\nOrder pipeline benchmark{}", if plan.smoke { " (smoke)" } else { "" });
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        let _ = writeln!(out, "broker: {broker}");
        let _ = writeln!(
            out,
            "machine: {cpus} CPUs, 1-minute load average {:.2} at start, {:.2} at end",
            self.load[0], self.load[1]
        );
        let _ = writeln!(
            out,
            "ceiling: bare rdkafka, the services' guarantees (idempotent producer, acks=all, offsets \
             stored after delivery, at most {} in flight per stage), tuned: {}",
            plan.max_in_flight,
            self.ceiling_settings.describe()
        );
        let _ = writeln!(
            out,
            "fair ceiling: the ceiling writing the services' rows, each stage to a fresh SQLite store of its own \
             (common::store, one transaction per batch): each charge recorded before its payment is produced, \
             each email claimed, then recorded as sent, before its offset is stored"
        );
        let _ = writeln!(
            out,
            "pipeline: the three services, settings of common::kafka: {}; RUST_LOG={}; logs in {}",
            common::kafka::client::build::describe_settings(),
            plan.service_log.as_deref().unwrap_or("unset (info)"),
            plan.logs.display()
        );
        if postgres.is_some() {
            let _ = writeln!(
                out,
                "pipeline on PostgreSQL: the same, both consumer services on one PostgreSQL 15 server of the \
                 bench's own on 127.0.0.1 (a fresh cluster per run); in its rows the ceiling column holds the \
                 pipeline on SQLite"
            );
        }
        if !plan.service_args.is_empty() {
            let _ = writeln!(out, "service flags: {}", plan.service_args.join(" "));
        }
        let _ = writeln!(
            out,
            "throughput: {} runs of each of the {}, {} orders at unlimited rate after {} warm-up orders, first \
             measured order created to last notified",
            plan.runs,
            if postgres.is_some() { "four" } else { "three" },
            plan.orders,
            plan.warmup_orders
        );
        let _ = writeln!(
            out,
            "latency: {} orders/s for {} s ({} orders) after {} s of warm-up, created_at_ms to notified",
            plan.rate,
            plan.latency_secs,
            plan.latency_orders(),
            plan.warmup_secs
        );
        let _ = writeln!(out);
        let mut row = |cells: [&str; 6]| {
            let [metric, ceiling, pipeline, ratio, target, result] = cells;
            let line = format!("{metric:<40} {ceiling:>19} {pipeline:>19} {ratio:>6}  {target:<22} {result}");
            let _ = writeln!(out, "{}", line.trim_end());
        };
        row(["metric", "ceiling", "pipeline", "ratio", "target", "result"]);
        let rule =
            ["-".repeat(40), "-".repeat(19), "-".repeat(19), "-".repeat(6), "-".repeat(22), "-".repeat(6)];
        row(rule.each_ref().map(String::as_str));
        let (ceiling, pipeline) = (self.ceiling(), self.pipeline().throughput());
        row([
            "throughput (orders/s), min-median-max",
            &min_med_max(ceiling),
            &min_med_max(pipeline),
            &format!("{:.3}", self.throughput_ratio()),
            &format!(">= {THROUGHPUT_SHARE} x ceiling"),
            verdict(self.throughput_passes()),
        ]);
        row([
            "  against the fair ceiling (with stores)",
            &min_med_max(self.fair_ceiling()),
            &min_med_max(pipeline),
            &format!("{:.3}", self.fair_ratio()),
            &format!(">= {THROUGHPUT_SHARE} x fair ceiling"),
            verdict(self.fair_passes()),
        ]);
        for (name, pick) in LATENCIES {
            let p99 = name == "p99";
            row([
                &format!("latency {name} (ms) at {}/s", plan.rate),
                &format!("{:.0}", pick(&self.latency[0])),
                &format!("{:.0}", pick(&self.latency[1])),
                &format!("{:.2}", self.latency_ratio(pick)),
                &if p99 { format!("<= {P99_MULTIPLE} x ceiling") } else { String::new() },
                if p99 { verdict(self.p99_passes()) } else { "" },
            ]);
        }
        let fetch_wait = self.ceiling_settings.fetch_wait_ms();
        row([
            &format!("  p99 with --fetch-wait-ms {fetch_wait}"),
            &format!("{:.0}", self.latency[0].p99),
            &format!("{:.0}", self.same_fetch_latency.p99),
            &format!("{:.2}", self.same_fetch_latency.p99 / self.latency[0].p99),
            "(the ceiling's wait)",
            "",
        ]);
        let [ceiling_cpu, fair_cpu] = self.ceiling_cpu();
        let services_cpu = self.pipeline().services_cpu();
        let pipeline_cpu: f64 = services_cpu.iter().sum();
        row([
            "CPU ms per 1000 orders (median)",
            &format!("{ceiling_cpu:.0}"),
            &format!("{pipeline_cpu:.0}"),
            &format!("{:.2}", pipeline_cpu / ceiling_cpu),
            "(throughput runs)",
            "",
        ]);
        for (service, cpu) in SERVICES.iter().zip(services_cpu) {
            row([&format!("  of which {service}"), "-", &format!("{cpu:.0}"), "", "", ""]);
        }
        row([
            "CPU ms per 1000 orders, fair ceiling",
            &format!("{fair_cpu:.0}"),
            &format!("{pipeline_cpu:.0}"),
            &format!("{:.2}", pipeline_cpu / fair_cpu),
            "",
            "",
        ]);
        let [store_cpu, store_wall] = self.store_cost_per_1000();
        row([
            "store cost per 1000 orders: CPU ms",
            &format!("{store_cpu:.1}"),
            "-",
            "",
            "fair - bare ceiling",
            "",
        ]);
        row([
            "store cost per 1000 orders: wall ms",
            &format!("{store_wall:.1}"),
            "-",
            "",
            "at full speed",
            "",
        ]);
        for (service, mib) in SERVICES.iter().zip(self.pipeline().peak_rss_mib()) {
            row([
                &format!("peak RSS {service} (MiB)"),
                "-",
                &format!("{mib:.1}"),
                "",
                &format!("< {RSS_LIMIT_MIB} MiB"),
                verdict(rss_passes(mib)),
            ]);
        }
        for cells in postgres.iter().flat_map(|postgres| self.postgres_rows(postgres)) {
            row(cells.each_ref().map(String::as_str));
        }
        row([
            "throughput from log lines alone",
            "-",
            &min_med_max(self.pipeline().spread(|r| r.from_logs)),
            "",
            &format!("{:.1} % off at most", self.log_disagreement() * 100.0),
            "",
        ]);
        row([
            "benchmark's CPU while services ran (ms)",
            "-",
            &min_med_max(self.pipeline().spread(|r| r.bench_cpu_ms as f64)),
            "",
            &format!("{:.1} % of theirs at most", self.bench_cpu_share() * 100.0),
            "",
        ]);
        for restart in &self.restarts {
            let over = format!("restart over {}", restart.history);
            row([
                &format!("{over}: first payment (s)"),
                "-",
                &format!("{:.1}", restart.first_payment_s),
                "",
                "",
                "",
            ]);
            row([
                &format!("{over}: peak RSS (MiB)"),
                "-",
                &format!("{:.1}", restart.peak_rss_mib),
                "",
                "",
                "",
            ]);
        }
        if !self.failed_runs.is_empty() {
            let _ = writeln!(out, "runs failed and run again on a fresh broker: {}", self.failed_runs.len());
            for failure in &self.failed_runs {
                let _ = writeln!(out, "  {failure}");
            }
        }
        out
    }

    /// The rows of the pipeline on PostgreSQL, the pipeline on SQLite in the ceiling's column.
    fn postgres_rows(&self, postgres: &Pipeline) -> Vec<[String; 6]> {
        let sqlite = self.pipeline();
        let (sqlite_cpu, postgres_cpu) = (sqlite.services_cpu(), postgres.services_cpu());
        let [sqlite_sum, postgres_sum] = [sqlite_cpu, postgres_cpu].map(|cpu| cpu.iter().sum::<f64>());
        let mut rows = vec![
            [
                "pipeline on PostgreSQL (orders/s)".to_string(),
                min_med_max(sqlite.throughput()),
                min_med_max(postgres.throughput()),
                format!("{:.3}", self.postgres_ratio(postgres)),
                format!(">= {POSTGRES_SHARE} x on SQLite"),
                verdict(self.postgres_passes(postgres)).to_string(),
            ],
            [
                "  CPU ms per 1000 orders (median)".to_string(),
                format!("{sqlite_sum:.0}"),
                format!("{postgres_sum:.0}"),
                format!("{:.2}", postgres_sum / sqlite_sum),
                "(the services alone)".to_string(),
                String::new(),
            ],
        ];
        let cpus = sqlite_cpu.into_iter().zip(postgres_cpu);
        for (service, (on_sqlite, on_postgres)) in SERVICES.iter().zip(cpus) {
            rows.push([
                format!("    of which {service}"),
                format!("{on_sqlite:.0}"),
                format!("{on_postgres:.0}"),
                String::new(),
                String::new(),
                String::new(),
            ]);
        }
        let peaks = sqlite.peak_rss_mib().into_iter().zip(postgres.peak_rss_mib());
        for (service, (on_sqlite, on_postgres)) in SERVICES.iter().zip(peaks) {
            rows.push([
                format!("  peak RSS {service} (MiB)"),
                format!("{on_sqlite:.1}"),
                format!("{on_postgres:.1}"),
                String::new(),
                format!("< {RSS_LIMIT_MIB} MiB"),
                verdict(rss_passes(on_postgres)).to_string(),
            ]);
        }
        rows
    }

    /// The same figures as JSON.
    pub fn json(&self) -> Value {
        let mut figures = self.sqlite_json();
        if let Some(postgres) = self.postgres() {
            self.add_postgres_json(&mut figures, &postgres);
        }
        figures
    }

    /// The keys of the pipeline on PostgreSQL, added to [`Report::sqlite_json`]'s.
    fn add_postgres_json(&self, figures: &mut Value, postgres: &Pipeline) {
        figures["settings"]["store"] = json!("postgres");
        if let Some(runs) = figures["runs"].as_array_mut() {
            for (run, r) in runs.iter_mut().zip(&self.runs) {
                let Some(on_postgres) = r.postgres else { continue };
                run["pipeline_postgres_per_s"] = json!(on_postgres.throughput);
                run["pipeline_postgres_from_logs_per_s"] = json!(on_postgres.from_logs);
                run["pipeline_postgres_services_cpu_ms_per_1000_orders"] =
                    per_service(on_postgres.services_cpu_per_1000);
                run["pipeline_postgres_peak_rss_mib"] = per_service(on_postgres.peak_rss_mib);
            }
        }
        figures["pipeline"]["cpu_ms_per_1000_orders_median"] = per_service(self.pipeline().services_cpu());
        figures["pipeline_postgres"] = json!({
            "throughput_per_s": spread_json(postgres.throughput()),
            "cpu_ms_per_1000_orders_median": per_service(postgres.services_cpu()),
            "peak_rss_mib": per_service(postgres.peak_rss_mib()),
        });
        figures["ratio"]["throughput_median_postgres_to_sqlite"] = json!(self.postgres_ratio(postgres));
        figures["targets"]["postgres_at_least_0_8_of_sqlite"] = json!(self.postgres_passes(postgres));
        figures["targets"]["postgres_peak_rss_below_64_mib"] = rss_targets(postgres.peak_rss_mib());
    }

    /// The figures of every side but the pipeline on PostgreSQL.
    fn sqlite_json(&self) -> Value {
        let plan = &self.plan;
        let latency = |l: &Latency| json!({ "p50": l.p50, "p99": l.p99, "max": l.max });
        let pipeline = self.pipeline();
        json!({
            "settings": {
                "brokers": plan.brokers,
                "embedded_broker_storage": plan.brokers.is_none().then(|| format!("{:?}", plan.storage).to_lowercase()),
                "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
                "load_average_1m": { "start": self.load[0], "end": self.load[1] },
                "smoke": plan.smoke,
                "runs": plan.runs,
                "throughput_orders": plan.orders,
                "latency_rate_per_s": plan.rate,
                "latency_secs": plan.latency_secs,
                "latency_orders": plan.latency_orders(),
                "warmup_orders": plan.warmup_orders,
                "warmup_secs": plan.warmup_secs,
                "max_in_flight": plan.max_in_flight,
                "ceiling_tuning": self.ceiling_settings.tuning.iter()
                    .map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
                "service_settings": common::kafka::client::build::describe_settings(),
                "service_log": plan.service_log,
                "service_args": plan.service_args,
                "history_orders": plan.history_orders,
            },
            "runs": self.runs.iter().map(|r| json!({
                "ceiling_per_s": r.ceiling,
                "fair_ceiling_per_s": r.fair_ceiling,
                "pipeline_per_s": r.pipeline.throughput,
                "pipeline_from_logs_per_s": r.pipeline.from_logs,
                "bench_cpu_ms_while_services_ran": r.pipeline.bench_cpu_ms,
                "ceiling_cpu_ms_per_1000_orders": r.ceiling_cpu_per_1000,
                "fair_ceiling_cpu_ms_per_1000_orders": r.fair_ceiling_cpu_per_1000,
                "services_cpu_ms_per_1000_orders": per_service(r.pipeline.services_cpu_per_1000),
                "peak_rss_mib": per_service(r.pipeline.peak_rss_mib),
            })).collect::<Vec<_>>(),
            "ceiling": {
                "throughput_per_s": spread_json(self.ceiling()),
                "latency_ms": latency(&self.latency[0]),
                "cpu_ms_per_1000_orders_median": self.ceiling_cpu()[0],
            },
            "fair_ceiling": {
                "throughput_per_s": spread_json(self.fair_ceiling()),
                "cpu_ms_per_1000_orders_median": self.ceiling_cpu()[1],
            },
            "store_cost_per_1000_orders": {
                "cpu_ms": self.store_cost_per_1000()[0],
                "wall_ms": self.store_cost_per_1000()[1],
            },
            "pipeline": {
                "throughput_per_s": spread_json(pipeline.throughput()),
                "latency_ms": latency(&self.latency[1]),
                "latency_ms_at_ceiling_fetch_wait": latency(&self.same_fetch_latency),
                "peak_rss_mib": per_service(pipeline.peak_rss_mib()),
            },
            "restart_over_history": self.restarts.iter().map(|r| json!({
                "history_orders": r.history,
                "first_payment_s": r.first_payment_s,
                "peak_rss_mib": r.peak_rss_mib,
            })).collect::<Vec<_>>(),
            "ratio": {
                "throughput_median": self.throughput_ratio(),
                "throughput_median_to_fair_ceiling": self.fair_ratio(),
                "p50": self.latency_ratio(|l| l.p50),
                "p99": self.latency_ratio(|l| l.p99),
                "p99_at_ceiling_fetch_wait": self.same_fetch_latency.p99 / self.latency[0].p99,
                "max": self.latency_ratio(|l| l.max),
            },
            "failed_runs_run_again": self.failed_runs,
            "measuring_cost": {
                "log_lines_disagreement_max": self.log_disagreement(),
                "bench_cpu_share_of_services_max": self.bench_cpu_share(),
            },
            "targets": {
                "throughput_at_least_0_8_of_ceiling": self.throughput_passes(),
                "throughput_at_least_0_8_of_fair_ceiling": self.fair_passes(),
                "p99_at_most_1_5_of_ceiling": self.p99_passes(),
                "peak_rss_below_64_mib": rss_targets(pipeline.peak_rss_mib()),
            },
        })
    }
}
