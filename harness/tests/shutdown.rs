//! Ctrl-C in the middle of a stream loses nothing: each consumer service is
//! interrupted mid-stream and started again, and every order is still paid and
//! notified exactly once. Ctrl-C during a broker outage ends in bounded time.

use harness::{
    assert_exactly_once, count_orders, counter, payments_on_topic, summary, Broker, ServiceProcess, NOTIFIED,
};
use std::time::{Duration, Instant};

/// At 200/s: 15 s of them, so that each Ctrl-C below meets orders still to
/// come on any machine (a restarted instance waits out the group's 3 s join
/// delay again).
const ORDERS: u64 = 3000;

#[test]
fn interrupting_and_restarting_the_consumers_loses_and_repeats_nothing() {
    let broker = Broker::start();
    let mut notification = ServiceProcess::start("notification-service", &broker, &[]);
    let mut payment = ServiceProcess::start("payment-service", &broker, &[]);
    let count = ORDERS.to_string();
    let mut orders = ServiceProcess::start("order-service", &broker, &["--count", &count, "--rate", "200"]);
    let still_to_notify = |what: &str| {
        let notified = count_orders(&notification.lines(), NOTIFIED).len() as u64;
        assert!(notified < ORDERS, "every order was notified before {what}: nothing was tested");
    };

    notification.wait_until("200 notifications", Duration::from_secs(120), |lines| {
        count_orders(lines, NOTIFIED).len() >= 200
    });
    still_to_notify("payment-service's Ctrl-C");
    payment.stop_gracefully(Duration::from_secs(30));
    let mut payment_again = ServiceProcess::start("payment-service", &broker, &[]);

    notification.wait_until("500 notifications", Duration::from_secs(120), |lines| {
        count_orders(lines, NOTIFIED).len() >= 500
    });
    still_to_notify("notification-service's Ctrl-C");
    notification.stop_gracefully(Duration::from_secs(30));
    let mut notification_again = ServiceProcess::start("notification-service", &broker, &[]);

    assert!(orders.wait_exit(Duration::from_secs(120)).success(), "order-service failed");
    let before = notification.lines();
    notification_again.wait_until("every order is notified", Duration::from_secs(120), |lines| {
        let mut all = before.clone();
        all.extend_from_slice(lines);
        count_orders(&all, NOTIFIED).len() as u64 >= ORDERS
    });
    payment_again.stop_gracefully(Duration::from_secs(30));
    notification_again.stop_gracefully(Duration::from_secs(30));

    let ids = 1001..=1000 + ORDERS;
    assert_exactly_once(&payments_on_topic(&broker), ids.clone(), "payment events on payment_topic");
    let mut notified = notification.lines();
    notified.extend(notification_again.lines());
    assert_exactly_once(&count_orders(&notified, NOTIFIED), ids, "notifications across the restart");
    for service in [&payment, &notification] {
        assert!(service.lines().iter().any(|l| l.contains("stopped taking new events")), "{}", service.name);
    }
    // A graceful stop commits everything done: the restarted instances see no order twice.
    for service in [&payment_again, &notification_again] {
        assert_eq!(counter(&summary(service), "duplicates_suppressed"), 0, "{} redid orders", service.name);
    }
}

/// With the broker gone, each service gives up on the events it cannot finish
/// after `--drain-timeout-secs` and exits 0 a few seconds later: committing,
/// flushing and closing its Kafka clients wait for the broker only so long, and
/// the consumer's closing does not drain a second time.
#[test]
fn ctrl_c_during_a_broker_outage_ends_within_the_drain_timeout() {
    const DRAIN_SECS: u64 = 3;
    let mut broker = Broker::start();
    let drain = ["--drain-timeout-secs", "3"];
    let mut notification = ServiceProcess::start("notification-service", &broker, &drain);
    let mut payment = ServiceProcess::start("payment-service", &broker, &drain);
    let mut orders =
        ServiceProcess::start("order-service", &broker, &["--rate", "100", "--drain-timeout-secs", "3"]);
    notification.wait_until("100 notifications", Duration::from_secs(60), |lines| {
        count_orders(lines, NOTIFIED).len() >= 100
    });

    broker.kill();
    for service in [&orders, &payment] {
        service.wait_until("the outage is noticed", Duration::from_secs(30), |lines| {
            lines.iter().any(|l| l.contains("is unreachable"))
        });
    }
    let interrupted = Instant::now();
    for service in [&orders, &payment, &notification] {
        service.interrupt();
    }
    for service in [&mut orders, &mut payment, &mut notification] {
        let status = service.wait_exit(Duration::from_secs(60));
        let took = interrupted.elapsed();
        assert!(status.success(), "{} exited with {status}", service.name);
        // The drain, then at most 5 s for the rest (service::TEARDOWN), and a margin.
        let bound = Duration::from_secs(DRAIN_SECS + 5 + 2);
        assert!(took < bound, "{} took {took:?} to stop, more than {bound:?}", service.name);
        let second_drain = service.lines().iter().any(|l| l.contains("before the hand-over"));
        assert!(!second_drain, "{} drained again while closing its consumer", service.name);
    }
    let gave_up = |l: &String| l.contains("events still in flight after 3 s");
    assert!(orders.lines().iter().any(gave_up), "order-service had no order in flight: nothing was bounded");
}
