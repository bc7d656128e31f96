//! State that does not grow with history: a payment-service started over a long
//! history reads nothing back (its store answers for what it charged), charges
//! none of the orders Kafka redelivers again, and pays the new ones.

use harness::history::write_paid_history;
use harness::{
    count_orders, counter, payment_events, store, store_path, summary, Broker, ServiceProcess, PAID,
};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const MINUTE: Duration = Duration::from_secs(60);
/// Orders already paid, of which all but the last `UNCOMMITTED` of each partition
/// are committed.
const HISTORY: u64 = 300_000;
const UNCOMMITTED: u64 = 500;
const NEW_ORDERS: u64 = 100;

#[test]
fn a_restart_over_a_long_history_charges_nothing_again() {
    let broker = Broker::start();
    let history = write_paid_history(&broker, HISTORY, UNCOMMITTED);

    let started = Instant::now();
    let mut payment = ServiceProcess::start("payment-service", &broker, &[]);
    let first_new = (*history.ids.end() + 1).to_string();
    let count = NEW_ORDERS.to_string();
    let mut orders = ServiceProcess::start(
        "order-service",
        &broker,
        &["--start-id", &first_new, "--count", &count, "--rate", "0"],
    );
    // Paid lines name the redelivered history's orders too (their recorded events, published again).
    let new_ids = *history.ids.end() + 1..=*history.ids.end() + NEW_ORDERS;
    let new_paid =
        |lines: &[String]| count_orders(lines, PAID).into_keys().filter(|id| new_ids.contains(id)).count();
    payment.wait_until("a new order is paid", 2 * MINUTE, |lines| new_paid(lines) > 0);
    let first_payment = started.elapsed();
    assert!(orders.wait_exit(MINUTE).success(), "order-service failed");
    payment.wait_until("every new order is paid, every redelivered one found", MINUTE, |lines| {
        new_paid(lines) as u64 >= NEW_ORDERS
            && count_orders(lines, "🔁 Order ").len() >= history.uncommitted.len()
    });
    let peak_rss_mib = payment.peak_rss_kib() as f64 / 1024.0;
    payment.stop_gracefully(MINUTE);
    eprintln!("over {HISTORY} orders: first new payment {first_payment:?} after start, peak RSS {peak_rss_mib:.1} MiB");

    let lines = payment.lines();
    // Kafka redelivered the uncommitted orders: each was found charged, none decided again.
    let redeliverable = history.uncommitted.len() as u64;
    assert_eq!(counter(&summary(&payment), "duplicates_suppressed"), redeliverable);
    let recognised: Vec<u64> = count_orders(&lines, "🔁 Order ").into_keys().collect();
    let mut redelivered = history.uncommitted.clone();
    redelivered.sort_unstable();
    assert_eq!(recognised, redelivered, "the orders found charged are not the uncommitted ones");
    let every = *history.ids.start()..=*history.ids.end() + NEW_ORDERS;
    let charges = store::charges(&store_path(&broker.address, "payment-service"));
    let outcome =
        store::Outcome::of(every, &payment_events(&broker), &charges, &BTreeMap::new(), &BTreeMap::new());
    assert!(
        outcome.not_charged.is_empty()
            && outcome.inconsistent_events.is_empty()
            && outcome.no_event.is_empty(),
        "{outcome:?}"
    );
    assert_eq!(
        outcome.payment_event_copies as u64, redeliverable,
        "each redelivered order's event is published again"
    );
}
