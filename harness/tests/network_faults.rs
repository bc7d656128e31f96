//! The network failing between the services and the broker: a consumer
//! instance's link cut for longer than the session timeout (it becomes a
//! zombie: its partitions go to the other instance while it still holds their
//! events), every connection slowed by 200 ms, and instances started and
//! stopped every few seconds. Two payment-service and two notification-service
//! instances (dynamic members: no `--instance-id`), each deciding for itself
//! (`--decline-rate 0.5`, its own `--seed`), so a second decision on an order
//! would show. After each fault: every order charged once (one record in the
//! store), every payment event on `payment_topic` the recorded one, every order
//! emailed once (twice only when in doubt): `harness::outcome`.
//!
//! Needs root (network namespaces, a bridge, veth pairs): without it, the cut
//! test fails saying so.

use harness::logline::assert_in_flight;
use harness::netns::Network;
use harness::{count_orders, outcome, Broker, ServiceProcess, DECLINED_NOTIFIED, NOTIFIED, PAID};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const MINUTE: Duration = Duration::from_secs(60);

/// The consumers' `session.timeout.ms` (common::kafka).
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a fault lasts: well past the session timeout.
const OUTAGE: Duration = Duration::from_secs(20);

/// Orders, at 100/s: 30 s of them, so that every fault strikes mid-stream.
const ORDERS: u64 = 3000;
const RATE: &str = "100";

/// The orders `lines` email (paid or declined).
fn emailed(lines: &[String]) -> BTreeSet<u64> {
    let paid = count_orders(lines, NOTIFIED).into_keys();
    paid.chain(count_orders(lines, DECLINED_NOTIFIED).into_keys()).collect()
}

/// The flags of the `n`-th instance: a decision of its own.
fn decides(n: u64) -> Vec<String> {
    vec!["--decline-rate".into(), "0.5".into(), "--seed".into(), n.to_string()]
}

fn start(name: &str, broker: &Broker, n: u64) -> ServiceProcess {
    let mut args = if name == "payment-service" { decides(n) } else { vec!["--seed".into(), n.to_string()] };
    args.extend(["--broker-wait-secs".into(), "0".into()]);
    ServiceProcess::start(name, broker, &args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn start_orders(broker: &Broker) -> ServiceProcess {
    ServiceProcess::start("order-service", broker, &["--count", &ORDERS.to_string(), "--rate", RATE])
}

/// Every line of every notification-service process in `services`.
fn notification_lines<'a>(services: impl IntoIterator<Item = &'a ServiceProcess>) -> Vec<String> {
    services
        .into_iter()
        .filter(|s| s.name == "notification-service")
        .flat_map(ServiceProcess::lines)
        .collect()
}

/// Polls, at most `timeout`, until `done` holds; whether it did.
fn poll_for(timeout: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100)); // polling a condition over several processes
    }
    true
}

/// Polls, at most `timeout`, until `done` holds; panics saying `what` if not.
fn poll_until(what: &str, timeout: Duration, done: impl Fn() -> bool) {
    assert!(poll_for(timeout, done), "{what} did not happen within {timeout:?}");
}

/// Waits until `service` was given every partition of its topic after its
/// `since`-th line: the group handed it the partitions of an instance it gave up on.
fn wait_takeover(service: &ServiceProcess, since: usize, timeout: Duration) {
    service.wait_until("it is given every partition", timeout, |lines| {
        lines[since.min(lines.len())..]
            .iter()
            .any(|l| l.contains("partitions assigned") && (0..3).all(|p| l.contains(&format!("_topic[{p}]"))))
    });
}

/// Waits until order-service made every order and every order is emailed (by
/// any notification-service process, `retired` ones included), stops every
/// running consumer with Ctrl-C (each must exit 0), and checks the outcome. If
/// some orders are not emailed, but the store holds every one of them as sent
/// (their email lines lost with a SIGKILLed process: nobody sends them again),
/// or still not emailed a minute and a half after the last order, it checks
/// anyway: the outcome says which, and this what the store holds of them.
fn finish(
    broker: &Broker,
    orders: &mut ServiceProcess,
    running: &mut [ServiceProcess],
    retired: &[ServiceProcess],
) {
    assert!(orders.wait_exit(3 * MINUTE).success(), "order-service failed");
    let all = |running: &[ServiceProcess]| notification_lines(running.iter().chain(retired));
    let store = harness::store_path(&broker.address, "notification-service");
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut store_checked = Instant::now();
    let drained = loop {
        let seen = emailed(&all(running));
        let missing: Vec<u64> = (1001..=1000 + ORDERS).filter(|id| !seen.contains(id)).collect();
        if missing.is_empty() {
            break true;
        }
        if store_checked.elapsed() >= Duration::from_secs(2) {
            store_checked = Instant::now();
            // A reader may meet a writer's lock: then it asks again later.
            let records = std::panic::catch_unwind(|| harness::store::emails(&store)).unwrap_or_default();
            if missing.iter().all(|id| records.get(id).is_some_and(|email| email.sent)) {
                break false;
            }
        }
        if Instant::now() >= deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100)); // polling a condition over several processes
    };
    for service in running.iter_mut() {
        service.stop_gracefully(MINUTE);
    }
    if !drained {
        let seen = emailed(&all(running));
        let records = harness::store::emails(&harness::store_path(&broker.address, "notification-service"));
        let missing: Vec<(u64, Option<&harness::store::Email>)> =
            (1001..=1000 + ORDERS).filter(|id| !seen.contains(id)).map(|id| (id, records.get(&id))).collect();
        eprintln!("not emailed after the drain, with their email records: {missing:?}");
    }
    let outcome = outcome(broker, 1001..=1000 + ORDERS, &all(running));
    eprintln!("{outcome:?}");
    outcome.assert_holds();
}

/// One payment-service and one notification-service instance on a host of their
/// own; once each is busy, both links are cut for 20 s, then restored.
#[test]
fn instances_cut_off_from_the_broker_charge_and_email_nothing_twice() {
    let network = Network::new();
    let broker = Broker::start_on(network.bridge_ip());
    let (payment_host, notification_host) = (network.add_host(), network.add_host());
    let cut_payment =
        payment_host.start("payment-service", &broker, &["--decline-rate", "0.5", "--seed", "2"]);
    let cut_notification = notification_host.start("notification-service", &broker, &["--seed", "4"]);
    let mut services = vec![
        start("payment-service", &broker, 1),
        cut_payment,
        start("notification-service", &broker, 3),
        cut_notification,
    ];
    let mut orders = start_orders(&broker);
    services[1].wait_until("it pays orders", MINUTE, |lines| {
        lines.iter().filter(|l| l.contains(PAID)).count() >= 50
    });
    services[3].wait_until("it emails customers", MINUTE, |lines| emailed(lines).len() >= 50);

    assert_in_flight(&orders, &notification_lines(&services), ORDERS, "the cut");
    let since = [services[0].lines().len(), services[2].lines().len()];
    let cut_at = Instant::now();
    network.cut(&payment_host);
    network.cut(&notification_host);
    // The others are given the cut instances' partitions once the session times out.
    wait_takeover(&services[0], since[0], OUTAGE);
    wait_takeover(&services[2], since[1], OUTAGE.saturating_sub(cut_at.elapsed()));
    eprintln!("the others took over {:?} after the cut", cut_at.elapsed());
    assert!(cut_at.elapsed() >= SESSION_TIMEOUT.mul_f64(0.8), "taken over before the session timed out");
    std::thread::sleep(OUTAGE.saturating_sub(cut_at.elapsed())); // the rest of the outage itself
    network.restore(&payment_host);
    network.restore(&notification_host);

    finish(&broker, &mut orders, &mut services, &[]);
}

/// Every client talks to the broker through a proxy; mid-stream it delays every
/// chunk, each way, by 200 ms for 20 s. Orders keep flowing meanwhile.
#[test]
fn a_slow_network_charges_and_emails_nothing_twice() {
    let (broker, proxy) = Broker::start_behind_proxy();
    let mut services: Vec<ServiceProcess> = [("payment-service", 1), ("payment-service", 2)]
        .into_iter()
        .chain([("notification-service", 3), ("notification-service", 4)])
        .map(|(name, n)| start(name, &broker, n))
        .collect();
    let mut orders = start_orders(&broker);
    let count = |services: &[ServiceProcess]| emailed(&notification_lines(services)).len();
    poll_until("300 orders emailed", MINUTE, || count(&services) >= 300);
    assert!(proxy.connections() >= 5, "only {} connections through the proxy", proxy.connections());

    proxy.set_delay(Duration::from_millis(200));
    let before = count(&services);
    std::thread::sleep(OUTAGE); // the slow spell itself
    let during = count(&services) - before;
    proxy.set_delay(Duration::ZERO);
    eprintln!("{during} orders emailed during the slow spell");
    assert!(during >= 100, "only {during} orders emailed in {OUTAGE:?} at 200 ms: the pipeline stalled");

    finish(&broker, &mut orders, &mut services, &[]);
}

/// For 25 s, every 0.5-3 s, a payment-service or notification-service instance
/// is started, or one is stopped (Ctrl-C or SIGKILL, at random), never fewer
/// than one of each. The schedule comes from a seed, printed; `CHAOS_SEED=N`
/// repeats it. The orders start once every instance has its partitions (the
/// group's first assignment waits 3 s, more as members join), so their 30 s
/// outlast the churn: each move must meet orders in flight.
#[test]
fn instances_started_and_stopped_every_few_seconds_charge_and_email_nothing_twice() {
    let seed = std::env::var("CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
    });
    eprintln!("churn seed {seed} (CHAOS_SEED={seed} repeats this schedule)");
    let mut rng = SmallRng::seed_from_u64(seed);
    let broker = Broker::start();
    let names = ["payment-service", "notification-service"];
    let mut started = 0;
    let mut next = |name: &str| {
        started += 1;
        start(name, &broker, started)
    };
    let mut alive: [Vec<ServiceProcess>; 2] =
        [vec![next(names[0]), next(names[0])], vec![next(names[1]), next(names[1])]];
    let (mut interrupted, mut killed) = (Vec::new(), Vec::new());
    for instance in alive.iter().flatten() {
        instance.wait_until("it is given partitions", MINUTE, |lines| {
            lines.iter().any(|l| l.contains("partitions assigned: ") && l.contains("_topic["))
        });
    }
    let mut orders = start_orders(&broker);
    alive[1][0].wait_until("the first email", MINUTE, |lines| !emailed(lines).is_empty());

    let churn_ends = Instant::now() + Duration::from_secs(25);
    loop {
        let moment = Duration::from_millis(rng.gen_range(500..3000));
        if Instant::now() + moment > churn_ends {
            break;
        }
        std::thread::sleep(moment); // the random moment itself
        let kind = rng.gen_range(0..2);
        let instances = &mut alive[kind];
        let what = if instances.len() >= 3 || (instances.len() > 1 && rng.gen_bool(0.5)) {
            let mut victim = instances.swap_remove(rng.gen_range(0..instances.len()));
            let what = format!("{} {}", victim.name, victim.pid());
            if rng.gen_bool(0.5) {
                victim.interrupt();
                interrupted.push(victim);
                format!("Ctrl-C {what}")
            } else {
                victim.kill();
                killed.push(victim);
                format!("SIGKILL {what}")
            }
        } else {
            instances.push(next(names[kind]));
            format!("started {} {}", names[kind], instances[instances.len() - 1].pid())
        };
        eprintln!("{what}");
        let notified = notification_lines(alive.iter().flatten().chain(&interrupted).chain(&killed));
        assert_in_flight(&orders, &notified, ORDERS, &format!("the churn's move ({what})"));
    }
    for service in &mut interrupted {
        let status = service.wait_exit(MINUTE);
        assert!(status.success(), "{} {} exited with {status} after Ctrl-C", service.name, service.pid());
    }
    assert!(
        interrupted.len() + killed.len() >= 3,
        "the churn stopped only {} instances",
        interrupted.len() + killed.len()
    );
    let retired: Vec<ServiceProcess> = interrupted.into_iter().chain(killed).collect();
    let mut running: Vec<ServiceProcess> = alive.into_iter().flatten().collect();
    finish(&broker, &mut orders, &mut running, &retired);
}
