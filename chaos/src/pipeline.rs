//! The pipeline under the storm: the service processes, started with injected
//! crashes, killed, frozen, cut off and started again as the storm says, and
//! every process that ever ran kept, for its log lines.
//!
//! Each consumer service runs two instances: `#1` a static member
//! (`--instance-id`) in the root namespace, the one the storm SIGKILLs and starts
//! again; `#2` a dynamic member on a host of its own (a network namespace), the
//! one it freezes or cuts off (a zombie: its group hands its partitions to the
//! others after the session timeout). A churn adds instances of its own (dynamic
//! members, root namespace). Every instance decides for itself
//! (`--decline-rate 0.5`, a `--seed` of its own), so a second decision on an
//! order would show as a payment event unlike the recorded charge. Every client
//! reaches the broker through a proxy (which the `slow` fault slows).

use harness::netns::{Host, Network};
use harness::proxy::Proxy;
use harness::{Broker, ServiceProcess};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// The share of events whose handling crashes an actor on purpose, in every service.
const CRASH_RATE: &str = "0.01";
/// The share of payments each payment-service instance declines.
const DECLINE_RATE: &str = "0.5";
/// How long a service may take to stop after Ctrl-C.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// What marks an email in notification-service's log, paid or declined.
pub const EMAILED: [&str; 2] = [harness::NOTIFIED, harness::DECLINED_NOTIFIED];

/// A consumer service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Payment,
    Notification,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Payment => "payment-service",
            Kind::Notification => "notification-service",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

pub struct Pipeline {
    seed: u64,
    /// Orders order-service was asked to make.
    count: u64,
    orders: ServiceProcess,
    /// Each consumer service's instances `#1` and `#2`, by `Kind::index`.
    instances: [Vec<ServiceProcess>; 2],
    /// The host of each service's `#2`.
    hosts: [Host; 2],
    /// The churn's own running instances, by kind.
    churned: [Vec<ServiceProcess>; 2],
    /// Instances stopped with Ctrl-C, their exit not yet awaited.
    interrupted: Vec<ServiceProcess>,
    /// Processes SIGKILLed (or exited), kept for the lines they printed.
    retired: Vec<ServiceProcess>,
    /// Instances started so far: each one's `--seed` is the run's plus its number.
    started: u64,
}

impl Pipeline {
    /// Starts every consumer instance, waits until each has its partitions
    /// (the groups' first assignment waits 3 s, more as members join), then
    /// starts order-service and waits for the first email: the orders flow
    /// from about then. The broker must be reachable from `network`'s hosts.
    pub fn start(broker: &Broker, network: &Network, seed: u64, count: u64, rate: f64) -> Pipeline {
        let hosts = [network.add_host(), network.add_host()];
        let mut started = 0;
        let mut instances = [Vec::new(), Vec::new()];
        for kind in [Kind::Payment, Kind::Notification] {
            for number in 1..=2 {
                started += 1;
                let instance = start_instance(broker, &hosts, seed, started, kind, Some(number));
                instances[kind.index()].push(instance);
            }
        }
        for instance in instances.iter().flatten() {
            instance.wait_until("it is given partitions", Duration::from_secs(120), |lines| {
                lines.iter().any(|l| l.contains("partitions assigned: ") && l.contains("_topic["))
            });
        }
        let pipeline = Pipeline {
            seed,
            count,
            orders: start_orders(broker, seed, count, rate),
            instances,
            hosts,
            churned: [Vec::new(), Vec::new()],
            interrupted: Vec::new(),
            retired: Vec::new(),
            started,
        };
        let notifications = &pipeline.instances[Kind::Notification.index()];
        let deadline = Instant::now() + Duration::from_secs(120);
        while distinct_emails(&notifications.iter().flat_map(ServiceProcess::lines).collect::<Vec<_>>()) == 0
        {
            assert!(Instant::now() < deadline, "no email within 120 s of the start");
            std::thread::sleep(Duration::from_millis(100)); // polling the lines of several processes
        }
        pipeline
    }

    /// Starts an instance of `kind`: `#number` (1: static member, root
    /// namespace; 2: dynamic member on its host), or one of the churn's.
    fn start_instance(&mut self, broker: &Broker, kind: Kind, number: Option<usize>) -> ServiceProcess {
        self.started += 1;
        start_instance(broker, &self.hosts, self.seed, self.started, kind, number)
    }

    fn instance(&self, kind: Kind, number: usize) -> &ServiceProcess {
        &self.instances[kind.index()][number - 1]
    }

    /// SIGKILLs instance `#number` of `kind`.
    pub fn kill(&mut self, kind: Kind, number: usize) {
        self.instances[kind.index()][number - 1].kill();
    }

    /// Starts instance `#number` of `kind` again (after `kill`).
    pub fn restart(&mut self, broker: &Broker, kind: Kind, number: usize) {
        let fresh = self.start_instance(broker, kind, Some(number));
        let killed = std::mem::replace(&mut self.instances[kind.index()][number - 1], fresh);
        self.retired.push(killed);
    }

    pub fn pause(&self, kind: Kind, number: usize) {
        self.instance(kind, number).pause();
    }

    pub fn resume(&self, kind: Kind, number: usize) {
        self.instance(kind, number).resume();
    }

    /// Whether instance `#number` of `kind`, silent from `from_ms` to `to_ms`
    /// (ms since the Unix epoch), was put out of its group meanwhile: another
    /// of its instances was given partitions while it was silent (a rebalance
    /// cannot end with a member that does not answer), or it logged, then or
    /// on waking, that its session timed out and its assignment was lost.
    pub fn made_zombie(&self, kind: Kind, number: usize, from_ms: u64, to_ms: u64) -> bool {
        let target = self.instance(kind, number);
        let at = |line: &str| harness::logline::timestamp_ms(line).unwrap_or(0);
        let lost = target.lines().iter().any(|line| {
            (line.contains("session timed out") || line.contains("AssignmentLost")) && at(line) >= from_ms
        });
        let all = self.instances.iter().flatten().chain(self.churned.iter().flatten());
        let mut others = all
            .chain(&self.interrupted)
            .chain(&self.retired)
            .filter(|s| s.name == kind.name() && s.pid() != target.pid());
        lost || others.any(|other| {
            other.lines().iter().any(|line| {
                line.contains("partitions assigned") && at(line) > from_ms + 1000 && at(line) <= to_ms
            })
        })
    }

    /// The host of `#number` of `kind`, which must be on one (`#2`).
    pub fn host(&self, kind: Kind, number: usize) -> &Host {
        assert_eq!(number, 2, "only #2 instances run on a host of their own");
        &self.hosts[kind.index()]
    }

    /// A churn's move: start one of its own instances of `kind`.
    pub fn churn_start(&mut self, broker: &Broker, kind: Kind) -> u32 {
        let instance = self.start_instance(broker, kind, None);
        let pid = instance.pid();
        self.churned[kind.index()].push(instance);
        pid
    }

    /// A churn's move: stop its `n`-th running instance of `kind`, with Ctrl-C
    /// (its exit is awaited at the end) or SIGKILL.
    pub fn churn_stop(&mut self, kind: Kind, n: usize, kill: bool) -> u32 {
        let mut instance = self.churned[kind.index()].remove(n);
        let pid = instance.pid();
        if kill {
            instance.kill();
            self.retired.push(instance);
        } else {
            instance.interrupt();
            self.interrupted.push(instance);
        }
        pid
    }

    /// Undoes every pause (SIGCONT to every consumer instance: harmless to a
    /// running one) and every cut.
    pub fn heal(&self, network: &Network, proxy: &Proxy) {
        for instance in self.instances.iter().flatten() {
            instance.resume();
        }
        network.restore_all();
        proxy.set_delay(Duration::ZERO);
    }

    /// Every notification-service process, running or not.
    fn notifications(&self) -> impl Iterator<Item = &ServiceProcess> {
        let kind = Kind::Notification.index();
        let retired =
            self.retired.iter().chain(&self.interrupted).filter(|s| s.name == Kind::Notification.name());
        self.instances[kind].iter().chain(&self.churned[kind]).chain(retired)
    }

    /// Waits, at most `timeout`, until every order was emailed (by any
    /// notification-service process), or until every order not emailed is
    /// recorded as sent in notification-service's store at `store`: nothing
    /// more will come for those (their email lines were lost, see `Drain`).
    pub fn settle(&self, timeout: Duration, store: &Path) -> Drain {
        let deadline = Instant::now() + timeout;
        let mut store_checked = Instant::now();
        loop {
            let emailed = emails(&self.notification_lines());
            let missing: Vec<u64> = (1001..=1000 + self.count).filter(|id| !emailed.contains(id)).collect();
            if missing.is_empty() {
                return Drain::Emailed;
            }
            if store_checked.elapsed() >= Duration::from_secs(2) {
                store_checked = Instant::now();
                let records = crate::invariants::read_store(store, harness::store::emails, &mut Vec::new());
                if missing.iter().all(|id| records.get(id).is_some_and(|email| email.sent)) {
                    return Drain::RecordedOnly;
                }
            }
            if Instant::now() >= deadline {
                return Drain::TimedOut;
            }
            std::thread::sleep(Duration::from_millis(200)); // polling the lines of several processes
        }
    }

    /// Stops every running service with Ctrl-C and waits for the ones stopped
    /// before; the ones that did not exit 0.
    pub fn stop(&mut self) -> Vec<String> {
        let mut failed = Vec::new();
        let running = std::iter::once(&mut self.orders)
            .chain(self.instances.iter_mut().flatten())
            .chain(self.churned.iter_mut().flatten());
        let mut stopping: Vec<&mut ServiceProcess> = running.collect();
        for service in &stopping {
            service.interrupt();
        }
        stopping.extend(self.interrupted.iter_mut());
        for service in stopping {
            let status = service.wait_exit(STOP_TIMEOUT);
            if !status.success() {
                let last = harness::tail(&service.lines());
                eprintln!("chaos: {} ({}) {status}; its last lines:\n{last}", service.name, service.pid());
                failed.push(format!("{} ({}): {status}", service.name, service.pid()));
            }
        }
        failed
    }

    /// Every line every notification-service process printed.
    pub fn notification_lines(&self) -> Vec<String> {
        self.notifications().flat_map(ServiceProcess::lines).collect()
    }

    /// Whether the pipeline is idle now (every order made and emailed), and
    /// so a fault striking now tests nothing: see [`harness::logline::idle`].
    pub fn idle(&self) -> Option<String> {
        harness::logline::idle(&self.orders.lines(), &self.notification_lines(), self.count)
    }

    /// Injected crashes per service, counted from the log lines of every process.
    pub fn injected_crashes(&self) -> Vec<(&'static str, usize)> {
        let all: Vec<&ServiceProcess> = std::iter::once(&self.orders)
            .chain(self.instances.iter().flatten())
            .chain(self.churned.iter().flatten())
            .chain(&self.interrupted)
            .chain(&self.retired)
            .collect();
        let crashes = |name: &str| -> usize {
            all.iter()
                .filter(|s| s.name == name)
                .flat_map(|s| s.lines())
                .filter(|l| l.contains("(injected fault: "))
                .count()
        };
        ["order-service", "payment-service", "notification-service"]
            .map(|name| (name, crashes(name)))
            .to_vec()
    }
}

/// Starts the `started`-th consumer instance of the run, of `kind`, `#number`
/// (see [`Pipeline::start_instance`]).
fn start_instance(
    broker: &Broker,
    hosts: &[Host; 2],
    seed: u64,
    started: u64,
    kind: Kind,
    number: Option<usize>,
) -> ServiceProcess {
    let seed = (seed.wrapping_add(started)).to_string();
    // Odd instances crash by panicking, even ones by returning errors.
    let mode = if started % 2 == 1 { "panic" } else { "error" };
    let mut args =
        vec!["--seed", &seed, "--crash-rate", CRASH_RATE, "--crash-actor", "any", "--crash-mode", mode];
    args.extend(["--broker-wait-secs", "0"]);
    if kind == Kind::Payment {
        args.extend(["--decline-rate", DECLINE_RATE]);
    }
    let id = format!("{}-{}", kind.name().trim_end_matches("-service"), number.unwrap_or(0));
    match number {
        Some(1) => {
            args.extend(["--instance-id", &id]);
            ServiceProcess::start(kind.name(), broker, &args)
        }
        Some(_) => hosts[kind.index()].start(kind.name(), broker, &args),
        None => ServiceProcess::start(kind.name(), broker, &args),
    }
}

fn start_orders(broker: &Broker, seed: u64, count: u64, rate: f64) -> ServiceProcess {
    let (count, rate, seed) = (count.to_string(), format!("{rate:.3}"), seed.to_string());
    let args = ["--count", &count, "--rate", &rate, "--seed", &seed, "--crash-rate", CRASH_RATE];
    let faults = ["--crash-actor", "any", "--crash-mode", "panic", "--broker-wait-secs", "0"];
    ServiceProcess::start("order-service", broker, &[&args[..], &faults[..]].concat())
}

/// How the drain after the storm ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Drain {
    /// Every order's email was logged.
    Emailed,
    /// Some orders' emails were not logged, but the store records every one of
    /// them as sent: their lines went with a SIGKILLed process, and no instance
    /// will send them again.
    RecordedOnly,
    /// Some orders were neither emailed nor recorded as sent by the deadline.
    TimedOut,
}

/// The orders the `lines` email.
pub fn emails(lines: &[String]) -> BTreeSet<u64> {
    EMAILED.iter().flat_map(|m| harness::count_orders(lines, m).into_keys()).collect()
}

/// How many different orders the `lines` email.
pub fn distinct_emails(lines: &[String]) -> usize {
    emails(lines).len()
}
