//! The results: one table on stdout, the same figures as JSON, and the targets
//! they are judged against (reported, never turned into an exit code).

use crate::cli::Plan;
use crate::history::Restart;
use crate::measure::Latency;
use crate::pipeline::SERVICES;
use serde_json::{json, Value};
use std::fmt::Write as _;

/// Pipeline throughput must be at least this share of the ceiling's.
pub const THROUGHPUT_SHARE: f64 = 0.8;
/// Pipeline p99 at the fixed rate must be at most this multiple of the ceiling's.
pub const P99_MULTIPLE: f64 = 1.5;
/// Each service's peak RSS must stay below this.
pub const RSS_LIMIT_MIB: f64 = 64.0;

/// The 1-minute load average (0 if unknown).
pub fn load_average() -> f64 {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split(' ').next().and_then(|l| l.parse().ok()).unwrap_or(0.0)
}

/// The latency figures, by name.
type Pick = fn(&Latency) -> f64;
const LATENCIES: [(&str, Pick); 3] = [("p50", |l| l.p50), ("p99", |l| l.p99), ("max", |l| l.max)];

/// What one side (ceiling or pipeline) measured.
#[derive(Clone, Copy, Debug)]
pub struct Figures {
    pub throughput: f64,
    pub latency: Latency,
}

pub struct Report {
    pub plan: Plan,
    pub brokers: String,
    pub embedded: bool,
    /// The 1-minute load average at the start and at the end: how busy the machine was.
    pub load: [f64; 2],
    pub ceiling: Figures,
    pub pipeline: Figures,
    /// Peak RSS of each service in the throughput run, MiB, in [`SERVICES`] order.
    pub peak_rss_mib: [f64; 3],
    /// CPU ms per 1000 orders in the throughput runs, whole process lives: the
    /// ceiling's process, and each service in [`SERVICES`] order.
    pub cpu_per_1000: (f64, [f64; 3]),
    /// payment-service started over each history size.
    pub restarts: Vec<Restart>,
}

impl Report {
    fn throughput_ratio(&self) -> f64 {
        self.pipeline.throughput / self.ceiling.throughput
    }

    fn latency_ratio(&self, pick: Pick) -> f64 {
        pick(&self.pipeline.latency) / pick(&self.ceiling.latency)
    }

    fn throughput_passes(&self) -> bool {
        self.throughput_ratio() >= THROUGHPUT_SHARE
    }

    fn p99_passes(&self) -> bool {
        self.pipeline.latency.p99 <= P99_MULTIPLE * self.ceiling.latency.p99
    }

    fn rss_passes(mib: f64) -> bool {
        mib < RSS_LIMIT_MIB
    }

    /// The table printed at the end of a run.
    pub fn table(&self) -> String {
        let plan = &self.plan;
        let verdict = |pass: bool| if pass { "PASS" } else { "FAIL" };
        let mut out = String::new();
        let broker = if self.embedded { "embedded Nisshi" } else { "given" };
        let _ = writeln!(out, "\nOrder pipeline benchmark{}", if plan.smoke { " (smoke)" } else { "" });
        let _ = writeln!(
            out,
            "broker {} ({broker}); fetch.wait.max.ms = {}; max in flight = {}; both sides use the \
             client settings of common::kafka",
            self.brokers, plan.fetch_wait_ms, plan.max_in_flight
        );
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        let _ = writeln!(
            out,
            "machine: {cpus} CPUs, 1-minute load average {:.2} at start, {:.2} at end",
            self.load[0], self.load[1]
        );
        let _ = writeln!(
            out,
            "throughput: {} orders at unlimited rate after {} warm-up orders, first measured order \
             created to last notified",
            plan.orders, plan.warmup_orders
        );
        let _ = writeln!(
            out,
            "latency: {} orders/s for {} s ({} orders) after {} s of warm-up, created_at_ms to notified",
            plan.rate,
            plan.latency_secs,
            plan.latency_orders(),
            plan.warmup_secs
        );
        let _ = writeln!(out, "pipeline logging: RUST_LOG={}", plan.service_log);
        let _ = writeln!(out, "  (notification-service logs 2 lines per order, which is how it is timed; the ceiling logs nothing)");
        if !plan.service_args.is_empty() {
            let _ = writeln!(out, "service flags: {}", plan.service_args.join(" "));
        }
        let _ = writeln!(out);
        let mut row = |cells: [&str; 6]| {
            let [metric, ceiling, pipeline, ratio, target, result] = cells;
            let line = format!("{metric:<40} {ceiling:>9} {pipeline:>9} {ratio:>6}  {target:<20} {result}");
            let _ = writeln!(out, "{}", line.trim_end());
        };
        row(["metric", "ceiling", "pipeline", "ratio", "target", "result"]);
        row(["-".repeat(40).as_str(), "---------", "---------", "------", "--------------------", "------"]);
        row([
            "throughput (orders/s)",
            &format!("{:.0}", self.ceiling.throughput),
            &format!("{:.0}", self.pipeline.throughput),
            &format!("{:.3}", self.throughput_ratio()),
            &format!(">= {THROUGHPUT_SHARE} x ceiling"),
            verdict(self.throughput_passes()),
        ]);
        for (name, pick) in LATENCIES {
            let p99 = name == "p99";
            row([
                &format!("latency {name} (ms) at {}/s", plan.rate),
                &format!("{:.0}", pick(&self.ceiling.latency)),
                &format!("{:.0}", pick(&self.pipeline.latency)),
                &format!("{:.2}", self.latency_ratio(pick)),
                &if p99 { format!("<= {P99_MULTIPLE} x ceiling") } else { String::new() },
                if p99 { verdict(self.p99_passes()) } else { "" },
            ]);
        }
        let (ceiling_cpu, services_cpu) = self.cpu_per_1000;
        let pipeline_cpu: f64 = services_cpu.iter().sum();
        row([
            "CPU ms per 1000 orders",
            &format!("{ceiling_cpu:.0}"),
            &format!("{pipeline_cpu:.0}"),
            &format!("{:.2}", pipeline_cpu / ceiling_cpu),
            "(throughput run)",
            "",
        ]);
        for (service, cpu) in SERVICES.iter().zip(services_cpu) {
            row([&format!("  of which {service}"), "-", &format!("{cpu:.0}"), "", "", ""]);
        }
        for (service, mib) in SERVICES.iter().zip(self.peak_rss_mib) {
            row([
                &format!("peak RSS {service} (MiB)"),
                "-",
                &format!("{mib:.1}"),
                "",
                &format!("< {RSS_LIMIT_MIB} MiB"),
                verdict(Self::rss_passes(mib)),
            ]);
        }
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
        out
    }

    /// The same figures as JSON.
    pub fn json(&self) -> Value {
        let plan = &self.plan;
        let latency = |l: &Latency| json!({ "p50": l.p50, "p99": l.p99, "max": l.max });
        let rss: serde_json::Map<String, Value> = SERVICES
            .iter()
            .zip(self.peak_rss_mib)
            .map(|(service, mib)| (service.to_string(), json!(mib)))
            .collect();
        let rss_targets: serde_json::Map<String, Value> = SERVICES
            .iter()
            .zip(self.peak_rss_mib)
            .map(|(service, mib)| (service.to_string(), json!(Self::rss_passes(mib))))
            .collect();
        let (ceiling_cpu, services_cpu) = self.cpu_per_1000;
        let cpu: serde_json::Map<String, Value> =
            SERVICES.iter().zip(services_cpu).map(|(service, ms)| (service.to_string(), json!(ms))).collect();
        json!({
            "settings": {
                "brokers": self.brokers,
                "embedded_broker": self.embedded,
                "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
                "load_average_1m": { "start": self.load[0], "end": self.load[1] },
                "smoke": plan.smoke,
                "throughput_orders": plan.orders,
                "latency_rate_per_s": plan.rate,
                "latency_secs": plan.latency_secs,
                "latency_orders": plan.latency_orders(),
                "warmup_orders": plan.warmup_orders,
                "warmup_secs": plan.warmup_secs,
                "fetch_wait_ms": plan.fetch_wait_ms,
                "max_in_flight": plan.max_in_flight,
                "service_log": plan.service_log,
                "service_args": plan.service_args,
                "history_orders": plan.history_orders,
            },
            "ceiling": {
                "throughput_per_s": self.ceiling.throughput,
                "latency_ms": latency(&self.ceiling.latency),
                "cpu_ms_per_1000_orders": ceiling_cpu,
            },
            "pipeline": {
                "throughput_per_s": self.pipeline.throughput,
                "latency_ms": latency(&self.pipeline.latency),
                "peak_rss_mib": rss,
                "cpu_ms_per_1000_orders": cpu,
            },
            "restart_over_history": self.restarts.iter().map(|r| json!({
                "history_orders": r.history,
                "first_payment_s": r.first_payment_s,
                "peak_rss_mib": r.peak_rss_mib,
            })).collect::<Vec<_>>(),
            "ratio": {
                "throughput": self.throughput_ratio(),
                "p50": self.latency_ratio(|l| l.p50),
                "p99": self.latency_ratio(|l| l.p99),
                "max": self.latency_ratio(|l| l.max),
            },
            "targets": {
                "throughput_at_least_0_8_of_ceiling": self.throughput_passes(),
                "p99_at_most_1_5_of_ceiling": self.p99_passes(),
                "peak_rss_below_64_mib": rss_targets,
            },
        })
    }
}
