//! `./scripts/chaos [--seed N] [--orders N] [--json]`: "crash anything, lose
//! nothing, charge once", shown in one run.
//!
//! It starts its own broker (durable storage, a free port), order-service, two
//! payment-service instances and notification-service, every one of them with
//! injected actor crashes, and plays a storm drawn from the seed (`storm.rs`):
//! kills, broker restarts, poison records. Then it waits for the pipeline to
//! settle, stops everything gracefully, and checks the invariants from the
//! topics themselves and the services' logs (`invariants.rs`). It prints a
//! report (`report.rs`), with `--json` one JSON line last, and exits 0 only when
//! every invariant holds.

mod invariants;
mod pipeline;
mod poison;
mod report;
mod storm;

use clap::Parser;
use harness::logline::now_ms;
use harness::Broker;
use pipeline::Pipeline;
use report::Struck;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use storm::Fault;

/// Runs the pipeline through a seeded storm of faults and checks that no order
/// was lost, none paid twice, and every poison record dead-lettered.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Seed of the storm; the same seed plays the same schedule [default: random].
    #[arg(long)]
    seed: Option<u64>,
    /// Orders to send through the pipeline while the storm plays.
    #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u64).range(50..=1_000_000))]
    orders: u64,
    /// Print the figures as one JSON line, last.
    #[arg(long)]
    json: bool,
}

/// How long the orders flow: about as long as the storm plays.
const ORDER_FLOW: Duration = Duration::from_secs(35);
/// How long the pipeline may take to email every order once the storm is over.
const SETTLE: Duration = Duration::from_secs(120);

fn main() -> ExitCode {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
    });
    println!("chaos: seed {seed} (--seed {seed} plays this storm again), {} orders", args.orders);
    let (started, started_ms) = (Instant::now(), now_ms());
    let schedule = storm::schedule(seed, pipeline::PAYMENT_INSTANCES);
    let mut broker = Broker::start();
    let rate = (args.orders as f64 / ORDER_FLOW.as_secs_f64()).max(5.0);
    let mut pipeline = Pipeline::start(&broker, seed, args.orders, rate);

    let mut struck = Vec::new();
    let mut poison = Vec::new();
    for step in schedule {
        std::thread::sleep(step.pause); // the random moment itself: nothing to wait for
        let at_ms = now_ms();
        println!("chaos: {:5.1} s  {}", started.elapsed().as_secs_f64(), step.fault.describe());
        match &step.fault {
            Fault::KillPayment { instance, down } => pipeline.kill_payment(*instance, *down, &broker),
            Fault::KillNotification { down } => pipeline.kill_notification(*down, &broker),
            Fault::StopBroker { down } => {
                broker.terminate(Duration::from_secs(60));
                std::thread::sleep(*down); // the outage itself
                broker.restart();
            }
            Fault::KillBroker { down } => {
                broker.kill();
                std::thread::sleep(*down); // the outage itself
                broker.restart();
            }
            Fault::Poison(records) => {
                if let Err(e) = poison::write(&broker.address, "order_topic", records) {
                    eprintln!("chaos: {e}");
                    return ExitCode::from(2);
                }
                poison.extend(records.iter().cloned());
            }
        }
        struck.push(Struck { at_ms, over_ms: now_ms(), fault: step.fault });
    }

    println!(
        "chaos: {:5.1} s  storm over; waiting for every order to be emailed",
        started.elapsed().as_secs_f64()
    );
    let settled = pipeline.settle(SETTLE);
    let stopped = pipeline.stop();
    let observed = invariants::observe(&broker, &pipeline, &poison);
    let outcome = invariants::check(&observed, args.orders, settled, &stopped);
    let report = report::Report {
        seed,
        orders: args.orders,
        started_ms,
        duration_s: started.elapsed().as_secs_f64(),
        struck,
        crashes: pipeline.injected_crashes(),
        outcome,
    };
    print!("{}", report.table());
    if args.json {
        println!("{}", report.json());
    }
    if report.outcome.checks.iter().all(|c| c.holds) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
