//! Supervision with fault injection, end to end: actors crash on purpose, and no
//! order is lost, paid twice or emailed twice.

use harness::{
    assert_exactly_once, count_orders, counter, payments_on_topic, summary, Broker, ServiceProcess, NOTIFIED,
};
use std::time::Duration;

const ORDERS: u64 = 2000;

fn survives_crashes(mode: &str) {
    let broker = Broker::start();
    let mut faults =
        vec!["--crash-rate", "0.05", "--crash-actor", "any", "--crash-mode", mode, "--seed", "7"];
    // A memory of one order id: idempotency across crashes must not rest on
    // remembering past orders (that memory is for second records of an order).
    faults.extend(["--dedup-capacity", "1"]);
    let mut notification = ServiceProcess::start("notification-service", &broker, &faults);
    let mut payment = ServiceProcess::start("payment-service", &broker, &faults);
    let mut orders = ServiceProcess::start("order-service", &broker, &["--count", "2000", "--rate", "0"]);

    assert!(orders.wait_exit(Duration::from_secs(180)).success(), "order-service failed");
    notification.wait_until("every order is notified", Duration::from_secs(180), |lines| {
        count_orders(lines, NOTIFIED).len() as u64 >= ORDERS
    });
    payment.stop_gracefully(Duration::from_secs(30));
    notification.stop_gracefully(Duration::from_secs(30));

    let ids = 1001..=1000 + ORDERS;
    assert_exactly_once(&payments_on_topic(&broker), ids.clone(), "payment events on payment_topic");
    assert_exactly_once(&count_orders(&notification.lines(), NOTIFIED), ids, "notifications");
    let injected = format!("(injected fault: {mode})");
    for service in [&payment, &notification] {
        let summary = summary(service);
        assert!(counter(&summary, "crashes") > 0 && counter(&summary, "restarts") > 0, "{summary}");
        assert_eq!(counter(&summary, "restarts"), counter(&summary, "redeliveries"), "{summary}");
        let crash_lines = service.lines().iter().filter(|l| l.contains(&injected)).count() as u64;
        assert_eq!(crash_lines, counter(&summary, "crashes"), "one labelled line per crash: {summary}");
    }
}

#[test]
fn panicking_actors_lose_nothing_and_do_nothing_twice() {
    survives_crashes("panic");
}

#[test]
fn failing_actors_lose_nothing_and_do_nothing_twice() {
    survives_crashes("error");
}

#[test]
fn a_crash_loop_shuts_the_service_down_and_says_why() {
    let broker = Broker::start();
    let mut payment =
        ServiceProcess::start("payment-service", &broker, &["--crash-rate", "1", "--crash-actor", "domain"]);
    let mut orders = ServiceProcess::start("order-service", &broker, &["--count", "3", "--rate", "0"]);
    assert!(orders.wait_exit(Duration::from_secs(60)).success());

    // Ten restarts back off for about 3 s in all; 60 s means the loop was not caught.
    let status = payment.wait_exit(Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "a crash loop exits with 1");
    let lines = payment.lines();
    let verdict = lines.iter().find(|l| l.contains("exiting with failure")).expect("a final error line");
    assert!(verdict.contains("PaymentActor is crash-looping: 11 crashes"), "{verdict}");
    assert!(verdict.contains("last error: injected fault: panic while handling order"), "{verdict}");
    assert_eq!(lines.iter().filter(|l| l.contains("PaymentActor crashed")).count(), 10, "ten restarts first");
}
