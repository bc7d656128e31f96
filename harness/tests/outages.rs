//! A hostile world outside the process: the broker stopped gracefully or killed
//! mid-stream and started again on the same storage; consumer instances
//! SIGKILLed and never restarted, or killed and started at random; services
//! started before the broker; instances joining and leaving. Every order is
//! still charged exactly once (one record in the store), every payment event on
//! `payment_topic` is its recorded one, and every order is emailed once (twice
//! only if its email is in doubt, after a SIGKILL).

use harness::logline::assert_in_flight;
use harness::{count_orders, outcome, Broker, ServiceProcess, NOTIFIED, PAID};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

const MINUTE: Duration = Duration::from_secs(60);

/// The consumers' `session.timeout.ms` (common::kafka): how long the broker waits
/// before it gives a silent member's partitions to the others.
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

fn notified_at_least(n: usize) -> impl Fn(&[String]) -> bool {
    move |lines| count_orders(lines, NOTIFIED).len() >= n
}

/// Waits for every order, stops the live consumer services gracefully, and
/// checks that each order was charged once, its payment events are its
/// recorded one, and it was emailed once, counting the lines of
/// `killed_notifications` too: twice only if its email is in doubt (sent by a
/// killed instance that did not live to record it), and none in doubt without
/// a killed instance.
fn finish(
    broker: &Broker,
    orders: &mut ServiceProcess,
    payments: &mut [ServiceProcess],
    notification: &mut ServiceProcess,
    killed_notifications: &[ServiceProcess],
    n: u64,
) {
    assert!(orders.wait_exit(3 * MINUTE).success(), "order-service failed");
    let earlier: Vec<String> = killed_notifications.iter().flat_map(ServiceProcess::lines).collect();
    notification.wait_until("every order is notified", 3 * MINUTE, |lines| {
        let mut all = earlier.clone();
        all.extend_from_slice(lines);
        count_orders(&all, NOTIFIED).len() as u64 >= n
    });
    for payment in payments {
        payment.stop_gracefully(MINUTE);
    }
    notification.stop_gracefully(MINUTE);
    let mut all = earlier;
    all.extend(notification.lines());
    let outcome = outcome(broker, 1001..=1000 + n, &all);
    outcome.assert_holds();
    if killed_notifications.is_empty() {
        assert_eq!(outcome.emails_in_doubt, 0, "emails in doubt with no instance killed: {outcome:?}");
    }
}

/// 3,000 orders at 150/s; after 300 are notified the broker goes away through
/// `stop`, stays down 10 s, and starts again on the same (durable) storage. The
/// orders outlast the outage even when the graceful stop itself takes seconds.
fn survives_a_broker_outage(stop: impl FnOnce(&mut Broker)) {
    let mut broker = Broker::start();
    let mut notification = ServiceProcess::start("notification-service", &broker, &[]);
    let mut payment = ServiceProcess::start("payment-service", &broker, &[]);
    let mut orders = ServiceProcess::start("order-service", &broker, &["--count", "3000", "--rate", "150"]);
    notification.wait_until("300 notifications", MINUTE, notified_at_least(300));

    assert_in_flight(&orders, &notification.lines(), 3000, "the broker outage");
    stop(&mut broker);
    std::thread::sleep(Duration::from_secs(10)); // the outage itself
    broker.restart();

    finish(&broker, &mut orders, std::slice::from_mut(&mut payment), &mut notification, &[], 3000);
    for service in [&orders, &payment, &notification] {
        let complaints = service.lines().iter().filter(|l| l.contains("is unreachable")).count();
        assert!(complaints >= 1, "{} never said the broker was unreachable", service.name);
        // Each Kafka client says it at most every 5 s: a handful, not a flood.
        assert!(complaints <= 15, "{} complained {complaints} times in a 10 s outage", service.name);
    }
}

/// Ctrl-C, systemd or Docker stopping the broker: it shuts down cleanly and
/// must carry on from its storage (Tansu 0.6 could not: every produce failed).
#[test]
fn a_broker_stopped_gracefully_and_started_again_loses_nothing() {
    survives_a_broker_outage(|broker| broker.terminate(MINUTE));
}

/// A crashed broker: whatever it had acknowledged must still be there.
#[test]
fn a_broker_killed_and_started_again_loses_nothing() {
    survives_a_broker_outage(Broker::kill);
}

#[test]
fn services_started_before_the_broker_wait_for_it_when_told_to() {
    let mut broker = Broker::stopped();
    let wait = ["--broker-wait-secs", "0"];
    let mut notification = ServiceProcess::start("notification-service", &broker, &wait);
    let mut payment = ServiceProcess::start("payment-service", &broker, &wait);
    payment.wait_until("payment-service notices the broker is missing", MINUTE, |lines| {
        lines.iter().any(|l| l.contains("still waiting for the Kafka broker"))
    });
    broker.restart();
    let mut orders = ServiceProcess::start("order-service", &broker, &["--count", "100", "--rate", "0"]);
    finish(&broker, &mut orders, std::slice::from_mut(&mut payment), &mut notification, &[], 100);
}

#[test]
fn a_killed_payment_service_resumes_without_paying_twice() {
    let broker = Broker::start();
    let mut notification = ServiceProcess::start("notification-service", &broker, &[]);
    let mut payment = ServiceProcess::start("payment-service", &broker, &["--instance-id", "payment-1"]);
    let mut orders = ServiceProcess::start("order-service", &broker, &["--count", "1500", "--rate", "150"]);
    notification.wait_until("300 notifications", MINUTE, notified_at_least(300));

    assert_in_flight(&orders, &notification.lines(), 1500, "the kill");
    payment.kill();
    let payment = ServiceProcess::start("payment-service", &broker, &["--instance-id", "payment-1"]);
    // The restarted instance finds in the store what the killed one charged.
    payment.wait_until("an order redelivered is found charged", MINUTE, |lines| {
        lines.iter().any(|l| l.contains("was already charged by payment-1#"))
    });
    finish(&broker, &mut orders, &mut [payment], &mut notification, &[], 1500);
}

#[test]
fn instances_joining_and_leaving_mid_stream_pay_each_order_once() {
    let broker = Broker::start();
    let mut notification = ServiceProcess::start("notification-service", &broker, &[]);
    let first = ServiceProcess::start("payment-service", &broker, &[]);
    let mut orders = ServiceProcess::start("order-service", &broker, &["--count", "2000", "--rate", "150"]);
    notification.wait_until("300 notifications", MINUTE, notified_at_least(300));

    // A second instance joins: the first finishes its events in flight and hands over.
    assert_in_flight(&orders, &notification.lines(), 2000, "the second instance's joining");
    let mut second = ServiceProcess::start("payment-service", &broker, &[]);
    second.wait_until("the second instance pays", MINUTE, |lines| {
        lines.iter().any(|l| l.contains("✅ Payment Event Sent"))
    });
    assert!(first.lines().iter().any(|l| l.contains("partitions revoked")), "no hand-over to the second");
    // It leaves mid-stream: its partitions come back to the first.
    second.stop_gracefully(MINUTE);
    let paid_by_second = count_orders(&second.lines(), PAID);
    assert!(!paid_by_second.is_empty());
    finish(&broker, &mut orders, &mut [first], &mut notification, &[], 2000);
}

/// Starts two dynamic instances (no `--instance-id`) of `service`, waits until
/// the second one works (`working` holds for its lines), SIGKILLs it for good
/// and returns both: the survivor must get every partition once the broker
/// gives up on the dead member, i.e. within the session timeout plus a few
/// seconds (its rebalance, and a slow 2-core machine).
fn kill_the_second_of_two(
    broker: &Broker,
    service: &str,
    working: impl Fn(&[String]) -> bool,
) -> [ServiceProcess; 2] {
    let survivor = ServiceProcess::start(service, broker, &[]);
    let mut victim = ServiceProcess::start(service, broker, &[]);
    victim.wait_until("the second instance works", MINUTE, working);
    let seen_before_kill = survivor.lines().len();
    victim.kill();
    let killed_at = Instant::now();
    let takeover = SESSION_TIMEOUT + Duration::from_secs(10);
    survivor.wait_until("the survivor is assigned every partition", takeover, |lines| {
        lines[seen_before_kill.min(lines.len())..]
            .iter()
            .any(|l| l.contains("partitions assigned") && (0..3).all(|p| l.contains(&format!("_topic[{p}]"))))
    });
    eprintln!("{service}: the survivor took over {:?} after the kill", killed_at.elapsed());
    [survivor, victim]
}

#[test]
fn a_killed_payment_instance_s_partitions_go_to_the_survivor() {
    let broker = Broker::start();
    let mut notification = ServiceProcess::start("notification-service", &broker, &[]);
    let mut orders = ServiceProcess::start("order-service", &broker, &["--count", "3000", "--rate", "150"]);
    let [survivor, _killed] = kill_the_second_of_two(&broker, "payment-service", |lines| {
        lines.iter().any(|l| l.contains("✅ Payment Event Sent"))
    });
    finish(&broker, &mut orders, &mut [survivor], &mut notification, &[], 3000);
}

#[test]
fn a_killed_notification_instance_s_partitions_go_to_the_survivor() {
    let broker = Broker::start();
    let mut payment = ServiceProcess::start("payment-service", &broker, &[]);
    let mut orders = ServiceProcess::start("order-service", &broker, &["--count", "3000", "--rate", "150"]);
    let [mut survivor, killed] =
        kill_the_second_of_two(&broker, "notification-service", notified_at_least(1));
    let killed = [killed];
    finish(&broker, &mut orders, std::slice::from_mut(&mut payment), &mut survivor, &killed, 3000);
}

/// Three dynamic payment-service instances; for 30 s while orders flow, at
/// random moments one is SIGKILLed or a new one started (never fewer than one
/// alive). The schedule comes from a seed, printed; `CHAOS_SEED=N` repeats it.
/// Each remembers one recent order id at most: across kills and rebalances, the
/// store alone must keep charges exactly once. The orders start once every
/// instance has its partitions (the group's first assignment waits 3 s, more
/// as members join), so their 33 s outlast the storm: each move must meet
/// orders in flight.
#[test]
fn payment_instances_killed_and_started_at_random_pay_each_order_once() {
    let seed = std::env::var("CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
    });
    eprintln!("chaos seed {seed} (CHAOS_SEED={seed} repeats this schedule)");
    let mut rng = SmallRng::seed_from_u64(seed);
    let broker = Broker::start();
    let mut notification = ServiceProcess::start("notification-service", &broker, &[]);
    let payment = ["--dedup-capacity", "1"];
    let mut alive: Vec<ServiceProcess> =
        (0..3).map(|_| ServiceProcess::start("payment-service", &broker, &payment)).collect();
    let mut killed = Vec::new();
    for instance in alive.iter().chain([&notification]) {
        instance.wait_until("it is given partitions", MINUTE, |lines| {
            lines.iter().any(|l| l.contains("partitions assigned: ") && l.contains("_topic["))
        });
    }
    let mut orders = ServiceProcess::start("order-service", &broker, &["--count", "5000", "--rate", "150"]);
    notification.wait_until("the first notification", MINUTE, notified_at_least(1));

    let storm_ends = Instant::now() + Duration::from_secs(30);
    loop {
        let moment = Duration::from_millis(rng.gen_range(500..4000));
        if Instant::now() + moment > storm_ends {
            break;
        }
        std::thread::sleep(moment); // the random moment itself: nothing to wait for
        let what = if alive.len() == 3 || (alive.len() > 1 && rng.gen_bool(0.5)) {
            let mut victim = alive.swap_remove(rng.gen_range(0..alive.len()));
            victim.kill();
            killed.push(victim);
            format!("killed payment-service {}; {} alive", killed[killed.len() - 1].pid(), alive.len())
        } else {
            alive.push(ServiceProcess::start("payment-service", &broker, &payment));
            format!("started payment-service {}; {} alive", alive[alive.len() - 1].pid(), alive.len())
        };
        eprintln!("{what}");
        assert_in_flight(&orders, &notification.lines(), 5000, &format!("the storm's move ({what})"));
    }
    assert!(killed.len() >= 3, "the storm killed only {} instances", killed.len());
    finish(&broker, &mut orders, &mut alive, &mut notification, &[], 5000);
}
