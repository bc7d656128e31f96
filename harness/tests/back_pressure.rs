//! A back-pressured consumer polls on. notification-service's domain actor
//! stalls (an injected crash whose restart waits 13 to 26 s) while every
//! in-flight slot is taken: the consumer pauses its partitions and keeps
//! polling, so its group does not evict it after a `max.poll.interval.ms` of
//! 10 s, and no payment event is read or handled twice. After a rebalance
//! while it is paused, it reads the partitions it is given (librdkafka keeps a
//! partition paused through a revocation and a new assignment).

use harness::{
    assert_at_least_once, assert_exactly_once, count_orders, counter, summary, Broker, ServiceProcess,
    NOTIFIED,
};
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn a_stall_longer_than_the_poll_interval_evicts_nothing_and_redelivers_nothing() {
    let broker = Broker::start();
    let mut notification = start_stalling(&broker, &[]);
    let mut payment = ServiceProcess::start("payment-service", &broker, &[]);
    let mut orders = ServiceProcess::start("order-service", &broker, &["--count", "60", "--rate", "0"]);
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

#[test]
fn after_a_rebalance_while_paused_the_new_partitions_are_read() {
    let broker = Broker::start();
    // A short drain: the hand-over gives up on the stalled events after 2 s.
    let mut first = start_stalling(&broker, &["--drain-timeout-secs", "2"]);
    let mut payment = ServiceProcess::start("payment-service", &broker, &[]);
    let mut orders = ServiceProcess::start("order-service", &broker, &["--count", "60", "--rate", "0"]);
    first.wait_until("the first instance pauses", MINUTE, |lines| {
        lines.iter().any(|l| l.contains("reading paused"))
    });
    let mut second = ServiceProcess::start("notification-service", &broker, &[]);
    first.wait_until("the first instance is given its share of the partitions", MINUTE, |lines| {
        lines.iter().filter(|l| l.contains("partitions assigned")).count() == 2
    });
    assert!(orders.wait_exit(MINUTE).success(), "order-service failed");
    // The second is done with its share long before the first's stall ends: the
    // first prints the last notifications.
    first.wait_until("every order is notified", 2 * MINUTE, |lines| {
        let mut all = second.lines();
        all.extend_from_slice(lines);
        count_orders(&all, NOTIFIED).len() >= 60
    });
    // Counted before the second stops: its leaving gives the first a third assignment.
    let assignments = first.lines().iter().filter(|l| l.contains("partitions assigned")).count();
    payment.stop_gracefully(MINUTE);
    second.stop_gracefully(MINUTE);
    first.stop_gracefully(MINUTE);

    let lines = first.lines();
    assert_eq!(assignments, 2, "the first instance was evicted, or the second never joined");
    assert!(!lines.iter().any(|l| l.contains("poll interval")), "librdkafka saw no poll for too long");
    // The stalled events handed over are redone by the second: emails at least once.
    let mut all = lines;
    all.extend(second.lines());
    assert_at_least_once(&count_orders(&all, NOTIFIED), 1001..=1060, "notifications");
}

/// notification-service with 5 slots, a 10 s `max.poll.interval.ms` and a
/// crash of its domain actor whose restart waits 13 to 26 s.
fn start_stalling(broker: &Broker, more: &[&str]) -> ServiceProcess {
    // At a rate of 0.02, seed 14 crashes the ninth event, and only it.
    #[rustfmt::skip]
    let stalling = [
        "--max-in-flight", "5", "--max-poll-interval-ms", "10000",
        "--crash-rate", "0.02", "--crash-actor", "domain", "--seed", "14",
        "--restart-backoff-ms", "26000", "--restart-backoff-max-ms", "26000",
    ];
    let args: Vec<&str> = stalling.iter().chain(more).copied().collect();
    ServiceProcess::start_logging(
        "notification-service",
        &broker.address,
        &args,
        "info,ConsumerActor=debug,kafka=debug",
    )
}
