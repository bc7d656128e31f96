//! State that does not grow with history: a payment-service started over a long
//! history reads only the payments of the orders Kafka can still redeliver, pays
//! none of those again, and pays the new ones.

use common::config::DEFAULT_MAX_IN_FLIGHT;
use common::kafka::PARTITIONS;
use harness::history::write_paid_history;
use harness::{
    assert_exactly_once, count_orders, counter, payments_on_topic, summary, Broker, Service, PAID,
};
use std::time::{Duration, Instant};

const MINUTE: Duration = Duration::from_secs(60);
/// Orders already paid, of which all but the last `UNCOMMITTED` of each partition
/// are committed.
const HISTORY: u64 = 300_000;
const UNCOMMITTED: u64 = 500;
const NEW_ORDERS: u64 = 100;

#[test]
fn a_restart_over_a_long_history_reads_only_what_can_be_redelivered() {
    let broker = Broker::start();
    let history = write_paid_history(&broker, HISTORY, UNCOMMITTED);

    let started = Instant::now();
    let mut payment = Service::start("payment-service", &broker, &[]);
    let first_new = (*history.ids.end() + 1).to_string();
    let count = NEW_ORDERS.to_string();
    let mut orders = Service::start(
        "order-service",
        &broker,
        &["--start-id", &first_new, "--count", &count, "--rate", "0"],
    );
    payment.wait_until("a new order is paid", 2 * MINUTE, |lines| !count_orders(lines, PAID).is_empty());
    let first_payment = started.elapsed();
    assert!(orders.wait_exit(MINUTE).success(), "order-service failed");
    payment.wait_until("every new order is paid", MINUTE, |lines| {
        count_orders(lines, PAID).len() as u64 >= NEW_ORDERS
    });
    let peak_rss_mib = payment.peak_rss_kib() as f64 / 1024.0;
    payment.stop_gracefully(MINUTE);
    eprintln!("over {HISTORY} orders: first new payment {first_payment:?} after start, peak RSS {peak_rss_mib:.1} MiB");

    let lines = payment.lines();
    let ledger = lines.iter().find(|l| l.contains("orders already paid")).expect("a ledger line");
    let redeliverable = UNCOMMITTED * 3;
    assert!(ledger.contains(&format!(" {redeliverable} orders already paid")), "{ledger}");
    let read: u64 = ledger
        .split('(')
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of payment events read in {ledger}"));
    // The README's bound: the uncommitted orders' payments, plus two blocks of
    // twice --max-in-flight per partition (most of the blocks' events are those).
    let block = 2 * u64::from(DEFAULT_MAX_IN_FLIGHT);
    let bound = redeliverable + 2 * block * PARTITIONS as u64;
    assert!(read <= bound, "the ledger read {read} of {HISTORY} payment events, more than {bound}: {ledger}");
    // Kafka redelivered the uncommitted orders: each was recognised, none paid again.
    assert_eq!(counter(&summary(&payment), "duplicates_suppressed"), redeliverable);
    let recognised: Vec<u64> = count_orders(&lines, "🔁 Order ").into_keys().collect();
    let mut redelivered = history.uncommitted.clone();
    redelivered.sort_unstable();
    assert_eq!(recognised, redelivered, "the orders recognised as paid are not the uncommitted ones");
    let every = *history.ids.start()..=*history.ids.end() + NEW_ORDERS;
    assert_exactly_once(&payments_on_topic(&broker), every, "payment events on payment_topic");
}
