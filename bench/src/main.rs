//! `cargo run --release -p bench -- [flags]`: the pipeline against its ceiling.
//!
//! Each run on a broker of its own (a fresh embedded Nisshi on a free port, in
//! memory unless `--storage sqlite`) or on `--brokers`:
//!
//! 1. ceiling throughput, fair ceiling throughput (the ceiling writing the
//!    services' rows to stores of its own: see `ceiling.rs`) and pipeline
//!    throughput, `--runs` times each, alternated: `--orders` orders at unlimited
//!    rate, first order created to last order notified; with the bench's own CPU
//!    meanwhile and the figure from the services' log lines alone, to show that
//!    measuring costs them nothing; with `--store postgres`, the pipeline
//!    once more in each run, both consumer services on a PostgreSQL server of
//!    its own (see `pipeline.rs`), against the pipeline on SQLite;
//! 2. ceiling latency and pipeline latency (at the services' fetch long-poll, and
//!    again at the ceiling's): `--rate` orders/s for `--latency-secs`,
//!    p50/p99/max of notified time − `created_at_ms`;
//! 3. each service's peak RSS (VmHWM) in the pipeline's throughput runs;
//! 4. payment-service started over histories of paid orders (`--history-orders`):
//!    seconds to its first new payment, and its peak RSS.
//!
//! Each run starts with warm-up orders that are not measured (`--warmup-orders`,
//! `--warmup-secs`): they take the start-up costs, which are the same for both
//! sides (a fresh idempotent producer waits ~1 s for its producer id).
//! Every run uses topics and consumer groups of its own. A run that fails is
//! run again on a fresh broker (three tries); the report lists each failure.
//! Prints one table and writes the same figures as JSON (`--json`, default
//! `target/bench.json`).
//! Missed targets are reported, never an exit code.

mod ceiling;
mod cli;
mod clients;
mod history;
mod measure;
mod pipeline;
mod process;
mod report;
mod service;

use clap::Parser;
use cli::{Args, Plan, Storage, StoreKind};
use harness::logline::now_ms;
use measure::{after_warmup, latency, throughput, write_csv, Latency, Sample};
use report::Report;
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
    let load_at_start = report::load_average();
    let run_id = now_ms();
    let ceiling_settings = clients::Settings::new(&plan.ceiling_set);
    let ceiling_setup = |phase: &str, brokers: &str| ceiling::Setup {
        brokers: brokers.to_string(),
        orders_topic: format!("ceiling_orders_{phase}_{run_id}"),
        payments_topic: format!("ceiling_payments_{phase}_{run_id}"),
        group: format!("ceiling_{phase}_{run_id}"),
        settings: ceiling_settings.clone(),
        max_in_flight: plan.max_in_flight,
        timeout: plan.timeout,
        stores: None,
    };
    let pipeline_setup = |phase: &str, brokers: &str| pipeline::Setup {
        brokers: brokers.to_string(),
        order_topic: format!("bench_orders_{phase}_{run_id}"),
        payment_topic: format!("bench_payments_{phase}_{run_id}"),
        group: format!("bench_{phase}_{run_id}"),
        rust_log: plan.service_log.clone(),
        max_in_flight: plan.max_in_flight,
        extra_args: plan.service_args.clone(),
        timeout: plan.timeout,
        logs: plan.logs.join(phase),
        store: StoreKind::Sqlite,
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
    let per_1000 = |cpu_ms: u64| cpu_ms as f64 * 1000.0 / (warm_n + n) as f64;
    // One throughput run of the ceiling (`fair`: with the services' stores), and
    // its CPU per 1000 orders.
    let ceiling_throughput = |failures: &mut Vec<String>, phase: &str, fair: bool| {
        let (side, topics) = if fair { ("fair_ceiling", "fair_") } else { ("ceiling", "") };
        let (samples, cpu_ms) = on_fresh_broker(&plan, failures, |brokers, attempt| {
            let mut setup = ceiling_setup(&format!("{topics}{phase}{attempt}"), brokers);
            setup.stores = fair.then(|| plan.logs.join(format!("{side}_{phase}{attempt}")));
            let cpu_before = process::own_cpu_ms()?;
            let samples = ceiling::run(&setup, warm_n + n, None)?;
            Ok((samples, process::own_cpu_ms()?.saturating_sub(cpu_before)))
        })?;
        let orders_per_s = throughput(&measured(&format!("{side}_{phase}"), samples, warm_n)?)?;
        eprintln!("bench:   {orders_per_s:.0} orders/s");
        Ok::<_, String>((orders_per_s, per_1000(cpu_ms)))
    };
    // One throughput run of the pipeline with its consumer services on `store`.
    let pipeline_throughput = |failures: &mut Vec<String>, phase: &str, store: StoreKind| {
        let (side, topics) = match store {
            StoreKind::Sqlite => ("pipeline", ""),
            StoreKind::Postgres => ("pipeline_postgres", "postgres_"),
        };
        let run = on_fresh_broker(&plan, failures, |brokers, attempt| {
            let mut setup = pipeline_setup(&format!("{topics}{phase}{attempt}"), brokers);
            setup.store = store;
            pipeline::run(&setup, warm_n + n, 0.0)
        })?;
        let samples = measured(&format!("{side}_{phase}"), run.samples, warm_n)?;
        let throughput = throughput(&samples)?;
        let from_logs = log_throughput(&run.created_lines_ms, warm_n, &samples)?;
        eprintln!("bench:   {throughput:.0} orders/s ({from_logs:.0} from the services' log lines alone)");
        Ok::<_, String>(report::PipelineRun {
            throughput,
            from_logs,
            bench_cpu_ms: run.bench_cpu_ms,
            services_cpu_ms: run.usage.iter().map(|u| u.cpu_ms).sum(),
            services_cpu_per_1000: run.usage.map(|u| per_1000(u.cpu_ms)),
            peak_rss_mib: run.usage.map(|u| u.peak_rss_kib as f64 / 1024.0),
        })
    };

    let mut failed_runs = Vec::new();
    let mut runs = Vec::new();
    for r in 1..=plan.runs {
        let phase = format!("throughput{r}");
        eprintln!("bench: run {r}/{}: ceiling, {warm_n} + {n} orders at unlimited rate", plan.runs);
        let (ceiling, ceiling_cpu_per_1000) = ceiling_throughput(&mut failed_runs, &phase, false)?;
        eprintln!("bench: run {r}/{}: fair ceiling (with the stores), {warm_n} + {n} orders", plan.runs);
        let (fair_ceiling, fair_ceiling_cpu_per_1000) = ceiling_throughput(&mut failed_runs, &phase, true)?;

        eprintln!("bench: run {r}/{}: pipeline, {warm_n} + {n} orders at unlimited rate", plan.runs);
        let pipeline = pipeline_throughput(&mut failed_runs, &phase, StoreKind::Sqlite)?;
        let postgres = if plan.store == StoreKind::Postgres {
            eprintln!(
                "bench: run {r}/{}: pipeline on PostgreSQL (a fresh server), {warm_n} + {n} orders",
                plan.runs
            );
            Some(pipeline_throughput(&mut failed_runs, &phase, StoreKind::Postgres)?)
        } else {
            None
        };
        runs.push(report::ThroughputRun {
            ceiling,
            fair_ceiling,
            ceiling_cpu_per_1000,
            fair_ceiling_cpu_per_1000,
            pipeline,
            postgres,
        });
    }

    eprintln!("bench: ceiling latency, {warm_m} + {m} orders at {rate}/s");
    let samples = on_fresh_broker(&plan, &mut failed_runs, |brokers, attempt| {
        ceiling::run(&ceiling_setup(&format!("latency{attempt}"), brokers), warm_m + m, Some(rate))
    })?;
    let ceiling_latency = latency(&measured("ceiling_latency", samples, warm_m)?)?;
    eprintln!("bench:   {ceiling_latency:?}");

    // The pipeline at the fixed rate, on a broker of its own, with `extra` flags.
    let mut pipeline_latency = |phase: &str, extra: &[String]| -> Result<Latency, String> {
        let run = on_fresh_broker(&plan, &mut failed_runs, |brokers, attempt| {
            let mut setup = pipeline_setup(&format!("{phase}{attempt}"), brokers);
            setup.extra_args.extend_from_slice(extra);
            pipeline::run(&setup, warm_m + m, rate)
        })?;
        latency(&measured(&format!("pipeline_{phase}"), run.samples, warm_m)?)
    };
    eprintln!("bench: pipeline latency, {warm_m} + {m} orders at {rate}/s");
    let pipeline_latency_default = pipeline_latency("latency", &[])?;
    eprintln!("bench:   {pipeline_latency_default:?}");
    // The same at the ceiling's fetch long-poll: what the services add besides it.
    let fetch_wait = ceiling_settings.fetch_wait_ms();
    eprintln!("bench: pipeline latency with --fetch-wait-ms {fetch_wait}, {warm_m} + {m} orders at {rate}/s");
    let fetch_wait_flag = ["--fetch-wait-ms".to_string(), fetch_wait.to_string()];
    let same_fetch_latency = pipeline_latency("latency_ceiling_fetch_wait", &fetch_wait_flag)?;
    eprintln!("bench:   {same_fetch_latency:?}");

    let mut restarts = Vec::new();
    if plan.brokers.is_none() {
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
        load: [load_at_start, report::load_average()],
        ceiling_settings,
        runs,
        latency: [ceiling_latency, pipeline_latency_default],
        same_fetch_latency,
        restarts,
        failed_runs,
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

/// Throughput from the services' log lines alone: the measured orders, from the
/// "📦 Order Created" line of the first of them to the last notification line.
fn log_throughput(created_lines_ms: &[u64], warmup: u64, measured: &[Sample]) -> Result<f64, String> {
    let first = created_lines_ms.get(warmup as usize).ok_or(
        "order-service logged too few \"📦 Order Created\" lines (does --service-log keep OrderActor=info?)",
    )?;
    let last = measured.iter().map(|s| s.done_ms).max().ok_or("no orders were measured")?;
    Ok(measured.len() as f64 / ((last.saturating_sub(*first)).max(1) as f64 / 1000.0))
}

/// How many times a run is tried, each on a broker of its own, before the bench stops.
const TRIES: usize = 3;

/// Runs `run` (given the brokers' address and the attempt's suffix for its topics
/// and groups) on a fresh broker, and again on another if it fails: Nisshi
/// 0.8.1 now and then answers an idempotent producer with
/// OutOfOrderSequenceNumber, which is fatal to it. Each failure is printed and
/// kept in `failures` for the report.
fn on_fresh_broker<T>(
    plan: &Plan,
    failures: &mut Vec<String>,
    mut run: impl FnMut(&str, &str) -> Result<T, String>,
) -> Result<T, String> {
    let mut attempt = 1;
    loop {
        let broker = RunBroker::start(plan);
        let suffix = if attempt == 1 { String::new() } else { format!("_try{attempt}") };
        match run(&broker.address, &suffix) {
            Ok(measured) => return Ok(measured),
            Err(e) if attempt < TRIES => {
                eprintln!("bench:   failed ({e}); running it again on a fresh broker");
                failures.push(e);
                attempt += 1;
            }
            Err(e) => return Err(format!("{e} (and {} failures before it)", TRIES - 1)),
        }
    }
}

/// The broker of one run: `--brokers`, or a fresh embedded one, so that no run
/// pays for the records of the runs before it.
struct RunBroker {
    address: String,
    _embedded: Option<harness::Broker>,
}

impl RunBroker {
    fn start(plan: &Plan) -> RunBroker {
        match &plan.brokers {
            Some(address) => RunBroker { address: address.clone(), _embedded: None },
            None => {
                let broker = match plan.storage {
                    Storage::Memory => harness::Broker::start_in_memory(),
                    Storage::Sqlite => harness::Broker::start(),
                };
                RunBroker { address: broker.address.clone(), _embedded: Some(broker) }
            }
        }
    }
}
