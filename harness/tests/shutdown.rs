//! Ctrl-C in the middle of a stream loses nothing: each consumer service is
//! interrupted mid-stream and started again, and every order is still paid and
//! notified exactly once.

use harness::{
    assert_exactly_once, count_orders, counter, payments_on_topic, summary, Broker, Service, NOTIFIED,
};
use std::time::Duration;

const ORDERS: u64 = 1000;

#[test]
fn interrupting_and_restarting_the_consumers_loses_and_repeats_nothing() {
    let broker = Broker::start();
    let mut notification = Service::start("notification-service", &broker, &[]);
    let mut payment = Service::start("payment-service", &broker, &[]);
    let mut orders = Service::start("order-service", &broker, &["--count", "1000", "--rate", "200"]);

    notification.wait_until("200 notifications", Duration::from_secs(120), |lines| {
        count_orders(lines, NOTIFIED).len() >= 200
    });
    payment.stop_gracefully(Duration::from_secs(30));
    let mut payment_again = Service::start("payment-service", &broker, &[]);

    notification.wait_until("500 notifications", Duration::from_secs(120), |lines| {
        count_orders(lines, NOTIFIED).len() >= 500
    });
    notification.stop_gracefully(Duration::from_secs(30));
    let mut notification_again = Service::start("notification-service", &broker, &[]);

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
