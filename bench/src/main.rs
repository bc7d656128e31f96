//! `cargo run --release -p bench -- [flags]`: the pipeline against its ceiling.
//!
//! On one broker (the embedded Nisshi on a free port, or `--brokers`), in one run:
//!
//! 1. ceiling throughput and pipeline throughput: `--orders` orders at unlimited
//!    rate, first order created to last order notified;
//! 2. ceiling latency and pipeline latency: `--rate` orders/s for `--latency-secs`,
//!    p50/p99/max of notified time − `created_at_ms`;
//! 3. each service's peak RSS (VmHWM) in the pipeline's throughput run;
//! 4. payment-service started over histories of paid orders (`--history-orders`):
//!    seconds to its first new payment, and its peak RSS.
//!
//! Each run starts with warm-up orders that are not measured (`--warmup-orders`,
//! `--warmup-secs`): they take the start-up costs, which are the same for both
//! sides (a fresh idempotent producer waits ~1 s for its producer id).
//! Every run uses topics and consumer groups of its own. Prints one table and
//! writes the same figures as JSON (`--json`, default `target/bench.json`).
//! Missed targets are reported, never an exit code.

mod ceiling;
mod cli;
mod clients;
mod history;
mod measure;
mod pipeline;
mod process;
mod report;

use clap::Parser;
use cli::{Args, Plan};
use harness::logline::now_ms;
use measure::{after_warmup, latency, throughput, write_csv, Sample};
use report::{Figures, Report};
use std::process::ExitCode;

fn main() -> ExitCode {
    // The ceiling's Kafka clients complain through `log` (RUST_LOG of this process).
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let plan = Plan::from_args(Args::parse());
    match run(plan) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(plan: Plan) -> Result<(), String> {
    let broker = match plan.brokers {
        Some(_) => None,
        None => Some(harness::Broker::start()),
    };
    let brokers = match (&plan.brokers, &broker) {
        (Some(address), _) => address.clone(),
        (None, Some(broker)) => broker.address.clone(),
        (None, None) => unreachable!("a broker was started"),
    };
    eprintln!("bench: broker at {brokers}");
    let load_at_start = report::load_average();
    let run_id = now_ms();
    let ceiling_setup = |phase: &str| ceiling::Setup {
        brokers: brokers.clone(),
        orders_topic: format!("ceiling_orders_{phase}_{run_id}"),
        payments_topic: format!("ceiling_payments_{phase}_{run_id}"),
        group: format!("ceiling_{phase}_{run_id}"),
        fetch_wait_ms: plan.fetch_wait_ms,
        max_in_flight: plan.max_in_flight,
        timeout: plan.timeout,
    };
    let pipeline_setup = |phase: &str| pipeline::Setup {
        brokers: brokers.clone(),
        order_topic: format!("bench_orders_{phase}_{run_id}"),
        payment_topic: format!("bench_payments_{phase}_{run_id}"),
        group: format!("bench_{phase}_{run_id}"),
        fetch_wait_ms: plan.fetch_wait_ms,
        max_in_flight: plan.max_in_flight,
        rust_log: plan.service_log.clone(),
        extra_args: plan.service_args.clone(),
        timeout: plan.timeout,
    };
    // The measured samples of a run, kept as CSV too with --samples-dir.
    let measured = |name: &str, samples, warmup| -> Result<Vec<Sample>, String> {
        let samples = after_warmup(samples, warmup);
        if let Some(dir) = &plan.samples_dir {
            write_csv(&dir.join(format!("{name}.csv")), &samples)?;
        }
        Ok(samples)
    };
    let (n, rate, m) = (plan.orders, plan.rate, plan.latency_orders());
    let (warm_n, warm_m) = (plan.warmup_orders, plan.latency_warmup());
    if warm_n <= u64::from(plan.max_in_flight) && !plan.smoke {
        eprintln!(
            "bench: warning: --warmup-orders {warm_n} is not above --max-in-flight {}: the first measured \
             orders are made before the first acknowledgement, so start-up costs count",
            plan.max_in_flight
        );
    }

    eprintln!("bench: ceiling throughput, {warm_n} + {n} orders at unlimited rate");
    let cpu_before = process::own_cpu_ms()?;
    let samples = ceiling::run(&ceiling_setup("throughput"), warm_n + n, None)?;
    let ceiling_cpu_ms = process::own_cpu_ms()?.saturating_sub(cpu_before);
    let ceiling_throughput = throughput(&measured("ceiling_throughput", samples, warm_n)?)?;
    eprintln!("bench:   {ceiling_throughput:.0} orders/s");

    eprintln!("bench: pipeline throughput, {warm_n} + {n} orders at unlimited rate");
    let run = pipeline::run(&pipeline_setup("throughput"), warm_n + n, 0.0)?;
    let pipeline_throughput = throughput(&measured("pipeline_throughput", run.samples, warm_n)?)?;
    eprintln!("bench:   {pipeline_throughput:.0} orders/s");
    let peak_rss_mib = run.usage.map(|u| u.peak_rss_kib as f64 / 1024.0);
    let per_1000 = |cpu_ms: u64| cpu_ms as f64 * 1000.0 / (warm_n + n) as f64;
    let cpu_per_1000 = (per_1000(ceiling_cpu_ms), run.usage.map(|u| per_1000(u.cpu_ms)));

    eprintln!("bench: ceiling latency, {warm_m} + {m} orders at {rate}/s");
    let samples = ceiling::run(&ceiling_setup("latency"), warm_m + m, Some(rate))?;
    let ceiling_latency = latency(&measured("ceiling_latency", samples, warm_m)?)?;
    eprintln!("bench:   {ceiling_latency:?}");

    eprintln!("bench: pipeline latency, {warm_m} + {m} orders at {rate}/s");
    let samples = pipeline::run(&pipeline_setup("latency"), warm_m + m, rate)?.samples;
    let pipeline_latency = latency(&measured("pipeline_latency", samples, warm_m)?)?;
    eprintln!("bench:   {pipeline_latency:?}");
    let embedded = broker.is_some();
    drop(broker);

    let mut restarts = Vec::new();
    if embedded {
        for &orders in &plan.history_orders {
            eprintln!("bench: payment-service started over {orders} paid orders");
            let restart = history::run(orders, plan.timeout);
            eprintln!("bench:   first new payment after {:.1} s", restart.first_payment_s);
            restarts.push(restart);
        }
    } else {
        eprintln!("bench: no restart over history: it needs brokers of its own (not --brokers)");
    }

    let report = Report {
        plan,
        brokers,
        embedded,
        load: [load_at_start, report::load_average()],
        ceiling: Figures { throughput: ceiling_throughput, latency: ceiling_latency },
        pipeline: Figures { throughput: pipeline_throughput, latency: pipeline_latency },
        peak_rss_mib,
        cpu_per_1000,
        restarts,
    };
    print!("{}", report.table());
    let json = serde_json::to_string_pretty(&report.json()).expect("JSON values always serialize");
    let path = &report.plan.json;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, json + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("\nJSON: {}", path.display());
    Ok(())
}
