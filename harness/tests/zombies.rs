//! Zombies: an instance frozen (SIGSTOP) for longer than the session timeout
//! while orders flow. Its group hands its partitions to the other instance,
//! which handles their orders; the frozen one wakes (SIGCONT) still holding
//! events, and handles them too. The store is what keeps that harmless: every
//! order is charged once (one record), every copy of its payment event is the
//! recorded one, and it is emailed once (twice only if its email is in doubt).
//!
//! Each payment instance decides for itself (`--decline-rate 0.5`, its own
//! `--seed`), so a second decision would show as a different payment event.

use harness::{emailed, outcome, wait_until_all, Broker, ServiceProcess, PAID};
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);

/// Longer than the consumers' session timeout (10 s): the group gives up on
/// the frozen instance and hands its partitions over.
const FREEZE: Duration = Duration::from_secs(25);

const ORDERS: u64 = 6000;

/// An instance with its own decisions: payment-service declines half the orders
/// by its own seed; notification-service's mail server refuses one send in twenty.
fn instance(name: &str, broker: &Broker, seed: &str) -> ServiceProcess {
    let own = if name == "payment-service" { "--decline-rate=0.5" } else { "--email-failure-rate=0.05" };
    ServiceProcess::start(name, broker, &[own, "--seed", seed])
}

#[test]
fn a_frozen_payment_and_notification_instance_charge_and_email_nothing_twice() {
    let broker = Broker::start();
    let mut payments = [instance("payment-service", &broker, "1"), instance("payment-service", &broker, "2")];
    let mut notifications =
        [instance("notification-service", &broker, "3"), instance("notification-service", &broker, "4")];
    let count = ORDERS.to_string();
    let mut orders = ServiceProcess::start("order-service", &broker, &["--count", &count, "--rate", "200"]);
    // Freeze the second of each once both are busy with orders.
    let (zombie_payment, zombie_notification) = (&payments[1], &notifications[1]);
    zombie_payment.wait_until("it pays orders", MINUTE, |lines| {
        lines.iter().filter(|l| l.contains(PAID)).count() >= 100
    });
    zombie_notification.wait_until("it emails customers", MINUTE, |lines| emailed(lines).len() >= 100);
    let all_emails = |notifications: &[ServiceProcess]| {
        notifications.iter().flat_map(ServiceProcess::lines).collect::<Vec<_>>()
    };
    harness::logline::assert_in_flight(&orders, &all_emails(&notifications), ORDERS, "the freeze");
    zombie_payment.pause();
    zombie_notification.pause();
    std::thread::sleep(FREEZE); // the fault itself: they stay frozen this long
    zombie_payment.resume();
    zombie_notification.resume();

    assert!(orders.wait_exit(3 * MINUTE).success(), "order-service failed");
    wait_until_all(&[&notifications[0], &notifications[1]], "every order is emailed", 3 * MINUTE, |lines| {
        emailed(lines).len() as u64 >= ORDERS
    });
    for service in payments.iter_mut().chain(notifications.iter_mut()) {
        service.stop_gracefully(MINUTE);
    }
    // The freeze made zombies: each lost its partitions while frozen.
    for zombie in [&payments[1], &notifications[1]] {
        let lines = zombie.lines();
        assert!(
            lines.iter().any(|l| l.contains("partitions revoked") || l.contains("session timed out")),
            "{} kept its partitions through a {FREEZE:?} freeze: no zombie was made",
            zombie.name
        );
    }
    let outcome = outcome(&broker, 1001..=1000 + ORDERS, &all_emails(&notifications));
    println!("{outcome:?}");
    outcome.assert_holds();
}
