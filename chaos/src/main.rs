//! `./scripts/chaos [--seed N] [--orders N] [--json]`: "crash anything, lose
//! nothing, charge once", shown in one run.
//!
//! It starts its own broker (durable storage, a free port) on a network of its
//! own (a bridge; each consumer service's instance `#2` on a host of its own, a
//! network namespace), advertised behind a proxy that every client goes
//! through; then two payment-service and two notification-service instances
//! and, once they have their partitions, order-service, every one with
//! injected actor crashes and deciding for itself; and plays a storm drawn from
//! the seed (`storm.rs`): kills, broker restarts, poison records, a pause and a
//! cut that make zombies, a slow network, a churn of instances, while the
//! orders flow (they outlast its last strike; a fault that meets an idle
//! pipeline ends the run with status 2: it tests nothing). Then it heals
//! whatever is left, waits for the pipeline to drain, stops everything
//! gracefully, and checks the invariants from the topics, the stores and the
//! services' logs (`invariants.rs`). It prints a report (`report.rs`), with
//! `--json` one JSON line last, and exits 0 only when every invariant holds.
//!
//! Needs root (the network namespaces). Ctrl-C removes the network and kills
//! every process it started.

mod invariants;
mod pipeline;
mod poison;
mod report;
mod storm;

use clap::Parser;
use harness::logline::now_ms;
use harness::netns::Network;
use harness::Broker;
use pipeline::Pipeline;
use report::Struck;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use storm::{Action, ChurnAction, Fault};

/// Runs the pipeline through a seeded storm of faults and checks that no order
/// was lost, none charged or emailed twice, and every poison record dead-lettered.
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

/// How long the orders flow past the storm's last strike (counted from the
/// first email, which comes moments after the orders start): every fault, the
/// last one too, meets orders in flight on a machine of any speed.
const FLOW_AFTER_LAST_STRIKE: Duration = Duration::from_secs(5);
/// How long the pipeline may take to email every order once the storm is over.
const SETTLE: Duration = Duration::from_secs(120);

fn main() -> ExitCode {
    let args = Args::parse();
    clean_up_on_signals();
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
    });
    println!("chaos: seed {seed} (--seed {seed} plays this storm again), {} orders", args.orders);
    let (started, started_ms) = (Instant::now(), now_ms());
    let plan = storm::plan(seed);
    // Declared first, dropped last: the network outlives every process on it.
    let network = Network::new();
    let (mut broker, proxy) = Broker::start_behind_proxy_on(network.bridge_ip());
    let flow = storm::last_strike(&plan) + FLOW_AFTER_LAST_STRIKE;
    let rate = args.orders as f64 / flow.as_secs_f64();
    let mut pipeline = Pipeline::start(&broker, &network, seed, args.orders, rate);

    let mut at_ms = vec![0; plan.len()];
    let mut over_ms = vec![0; plan.len()];
    let mut poison = Vec::new();
    let storm_started = Instant::now();
    for (at, action) in storm::timeline(&plan) {
        // The moment itself: nothing to wait for.
        std::thread::sleep(at.saturating_sub(storm_started.elapsed()));
        let clock = started.elapsed().as_secs_f64();
        match action {
            Action::Strike(i) => {
                let fault = &plan[i].fault;
                println!("chaos: {clock:5.1} s  {}", fault.describe());
                at_ms[i] = now_ms();
                match fault {
                    Fault::Kill { instance, .. } => pipeline.kill(instance.kind, instance.number),
                    Fault::StopBroker { .. } => broker.terminate(Duration::from_secs(60)),
                    Fault::KillBroker { .. } => broker.kill(),
                    Fault::Poison(records) => {
                        if let Err(e) = poison::write(&broker.address, "order_topic", records) {
                            eprintln!("chaos: {e}");
                            return ExitCode::from(2);
                        }
                        poison.extend(records.iter().cloned());
                        over_ms[i] = now_ms();
                    }
                    Fault::Pause { instance, .. } => pipeline.pause(instance.kind, instance.number),
                    Fault::Cut { instance, .. } => network.cut(pipeline.host(instance.kind, instance.number)),
                    Fault::Slow { delay, .. } => proxy.set_delay(*delay),
                    Fault::Churn { .. } => {}
                }
                if fault.is_process_fault() && met_an_idle_pipeline(&pipeline, clock, &fault.describe()) {
                    return ExitCode::from(2);
                }
            }
            Action::Heal(i) => {
                let fault = &plan[i].fault;
                match fault {
                    Fault::Kill { instance, .. } => pipeline.restart(&broker, instance.kind, instance.number),
                    Fault::StopBroker { .. } | Fault::KillBroker { .. } => broker.restart(),
                    Fault::Poison(_) => {}
                    Fault::Pause { instance, .. } => pipeline.resume(instance.kind, instance.number),
                    Fault::Cut { instance, .. } => {
                        network.restore(pipeline.host(instance.kind, instance.number))
                    }
                    Fault::Slow { .. } => proxy.set_delay(Duration::ZERO),
                    Fault::Churn { .. } => {}
                }
                over_ms[i] = now_ms();
                println!("chaos: {clock:5.1} s    over: {}", fault.describe());
            }
            Action::Churn(i, m) => {
                let Fault::Churn { moves, .. } = &plan[i].fault else { unreachable!("a churn's move") };
                let (kind, action) = (moves[m].kind, moves[m].action);
                let (what, pid) = match action {
                    ChurnAction::Start => ("started", pipeline.churn_start(&broker, kind)),
                    ChurnAction::Interrupt(n) => ("Ctrl-C", pipeline.churn_stop(kind, n, false)),
                    ChurnAction::Kill(n) => ("SIGKILL", pipeline.churn_stop(kind, n, true)),
                };
                println!("chaos: {clock:5.1} s    churn: {what} {} ({pid})", kind.name());
                if met_an_idle_pipeline(&pipeline, clock, &format!("churn: {what} {}", kind.name())) {
                    return ExitCode::from(2);
                }
            }
        }
    }
    let mut struck: Vec<Struck> = plan
        .into_iter()
        .enumerate()
        .map(|(i, planned)| Struck {
            at_ms: at_ms[i],
            over_ms: over_ms[i],
            fault: planned.fault,
            zombie: None,
        })
        .collect();

    println!(
        "chaos: {:5.1} s  storm over: every fault healed; waiting for every order to be emailed",
        started.elapsed().as_secs_f64()
    );
    pipeline.heal(&network, &proxy);
    let drain = pipeline.settle(SETTLE, &harness::store_path(&broker.address, "notification-service"));
    let stopped = pipeline.stop();
    for struck in &mut struck {
        if let Fault::Pause { instance, .. } | Fault::Cut { instance, .. } = struck.fault {
            struck.zombie =
                Some(pipeline.made_zombie(instance.kind, instance.number, struck.at_ms, struck.over_ms));
        }
    }
    let observed = invariants::observe(&broker, &pipeline, &poison);
    let outcome = invariants::check(&observed, args.orders, drain, &stopped);
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

/// Whether the pipeline is idle as `fault` has just struck (`clock` s into the
/// run), and says so: every order made and emailed, the fault tests nothing.
fn met_an_idle_pipeline(pipeline: &Pipeline, clock: f64, fault: &str) -> bool {
    let Some(idle) = pipeline.idle() else { return false };
    eprintln!("chaos: {clock:5.1} s  {fault}: it met an idle pipeline ({idle}): nothing was tested");
    true
}

/// The pipe's end that a signal handler writes to, to wake [`clean_up_on_signals`]'s thread.
static WAKE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

extern "C" fn on_signal(_: std::ffi::c_int) {
    let fd = WAKE.load(std::sync::atomic::Ordering::SeqCst);
    // SAFETY: the pipe's write end lives as long as the process (leaked on purpose).
    let _ = nix::unistd::write(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }, &[1]);
    // async-signal-safe
}

/// On Ctrl-C (or SIGTERM, SIGHUP), which stops the process without unwinding:
/// removes the network, kills every process this one started (frozen ones
/// too) and the broker's storage, and exits 130. A handler wakes a thread of
/// its own through a pipe. (Not a blocked signal taken by `sigwait`: children
/// inherit a signal mask, and the services and the broker would then be deaf
/// to Ctrl-C and SIGTERM; a handler is reset to the default by `exec`.)
fn clean_up_on_signals() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    use std::io::Read;
    let (read, write) = nix::unistd::pipe().expect("cannot make a pipe");
    WAKE.store(std::os::fd::IntoRawFd::into_raw_fd(write), std::sync::atomic::Ordering::SeqCst);
    let action = SigAction::new(SigHandler::Handler(on_signal), SaFlags::SA_RESTART, SigSet::empty());
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only writes a byte to a pipe.
        unsafe { sigaction(signal, &action) }.expect("cannot handle the signals");
    }
    std::thread::spawn(move || {
        let mut woken = std::fs::File::from(read);
        let mut byte = [0u8; 1];
        if !matches!(woken.read(&mut byte), Ok(1)) {
            return;
        }
        eprintln!("chaos: interrupted: removing the test network, killing every process started");
        harness::netns::remove_all();
        kill_children();
        let ours = format!("pipeline-harness-{}-", std::process::id());
        for entry in std::fs::read_dir(std::env::temp_dir()).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().starts_with(&ours) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        std::process::exit(130);
    });
}

/// SIGKILLs every child of this process (the services, the broker).
fn kill_children() {
    use nix::sys::signal::Signal;
    let me = std::process::id().to_string();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // pid (comm) state ppid ...: comm may hold spaces and parentheses.
        let parent = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1));
        if parent == Some(me.as_str()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}
