//! A back-pressured consumer polls on. notification-service's domain actor
//! stalls (an injected crash whose restart waits 13 to 26 s) while every
//! in-flight slot is taken: the consumer pauses its partitions and keeps
//! polling, so its group does not evict it after a `max.poll.interval.ms` of
//! 10 s, and no payment event is read or handled twice.

use harness::{assert_exactly_once, count_orders, counter, summary, Broker, Service, NOTIFIED};
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn a_stall_longer_than_the_poll_interval_evicts_nothing_and_redelivers_nothing() {
    let broker = Broker::start();
    // At a rate of 0.02, seed 14 crashes the ninth event, and only it.
    #[rustfmt::skip]
    let stalling = [
        "--max-in-flight", "5", "--max-poll-interval-ms", "10000",
        "--crash-rate", "0.02", "--crash-actor", "domain", "--seed", "14",
        "--restart-backoff-ms", "26000", "--restart-backoff-max-ms", "26000",
    ];
    let mut notification = Service::start_logging(
        "notification-service",
        &broker.address,
        &stalling,
        "info,ConsumerActor=debug",
    );
    let mut payment = Service::start("payment-service", &broker, &[]);
    let mut orders = Service::start("order-service", &broker, &["--count", "60", "--rate", "0"]);
    assert!(orders.wait_exit(MINUTE).success(), "order-service failed");
    notification
        .wait_until("every order is notified", 2 * MINUTE, |lines| count_orders(lines, NOTIFIED).len() >= 60);
    payment.stop_gracefully(MINUTE);
    notification.stop_gracefully(MINUTE);

    let lines = notification.lines();
    let stall = lines.iter().find(|l| l.contains("NotificationActor crashed")).expect("the stalling crash");
    let stall_ms: u64 =
        stall.rsplit(" in ").next().and_then(|t| t.trim_end_matches(" ms").parse().ok()).expect("ms");
    assert!(stall_ms > 10_000, "the stall ({stall_ms} ms) must outlast max.poll.interval.ms: {stall}");
    assert!(lines.iter().any(|l| l.contains("reading paused")), "the consumer never paused");
    let assignments = lines.iter().filter(|l| l.contains("partitions assigned")).count();
    assert_eq!(assignments, 1, "the consumer was evicted and joined again");
    assert!(!lines.iter().any(|l| l.contains("poll interval")), "librdkafka saw no poll for too long");
    assert_exactly_once(&count_orders(&lines, NOTIFIED), 1001..=1060, "notifications");
    assert_eq!(
        counter(&summary(&notification), "duplicates_suppressed"),
        0,
        "a payment event was redelivered"
    );
}
