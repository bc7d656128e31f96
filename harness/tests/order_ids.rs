//! Order ids are unique by construction: each run of order-service starts at
//! the microseconds since 2026-01-01 (its clock), whatever else `order_topic`
//! holds and even on a broker whose storage was emptied, and instances running
//! at once make disjoint ids. No id is above 2^53 - 1: a foreign order above it
//! is dead-lettered, a `--start-id` above it is a usage error, and a run that
//! reaches it stops rather than wrap. Every order is paid and emailed once.

use harness::{
    assert_exactly_once, count_orders, counter, emailed, payments_on_topic, records_on_topic, run, store_url,
    summary, Broker, ServiceProcess, PAID,
};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const MINUTE: Duration = Duration::from_secs(60);
const CREATED: &str = "📦 Order Created: {\"order_id\":";
/// 2^53 - 1, the highest order id.
const MAX_ORDER_ID: u64 = 9_007_199_254_740_991;
/// 2026-01-01T00:00:00Z, in seconds since the Unix epoch.
const CLOCK_EPOCH_S: u64 = 1_767_225_600;

#[test]
fn poison_and_foreign_orders_on_order_topic_play_no_part_in_order_ids() {
    let broker = Broker::start();
    let mut payment = ServiceProcess::start("payment-service", &broker, &[]);
    let mut notification = ServiceProcess::start("notification-service", &broker, &[]);
    // The services create the topics; write once the consumer has joined.
    payment.wait_until("payment-service joins", MINUTE, |lines| {
        lines.iter().any(|l| l.contains("partitions assigned"))
    });
    let producer: BaseProducer = broker.client_config().create().expect("a test producer");
    for partition in 0..3 {
        let record = BaseRecord::<str, [u8]>::to("order_topic").partition(partition).payload(b"not an order");
        producer.send(record).map_err(|(e, _)| e).expect("the test producer's queue has room");
    }
    producer.flush(Duration::from_secs(30)).expect("the test producer flushes");

    // Only poison on order_topic: the first run starts all the same.
    let before = clock_micros();
    let mut first_run = ServiceProcess::start_with_clock_ids(&broker, &["--count", "100", "--rate", "0"]);
    let status = first_run.wait_exit(MINUTE);
    assert!(status.success(), "the first run exited with {status}:\n{}", first_run.lines().join("\n"));
    let after = clock_micros();

    // Valid orders but for their ids, from another producer: above 2^53 - 1.
    let foreign = [u64::MAX, MAX_ORDER_ID + 1].map(|id| {
        let order = format!(r#"{{"order_id":{id},"user_id":7,"amount":12.5,"status":"created"}}"#);
        let key = id.to_string();
        let record = BaseRecord::<str, [u8]>::to("order_topic").key(&key).payload(order.as_bytes());
        producer.send(record).map_err(|(e, _)| e).expect("the test producer's queue has room");
        order.into_bytes()
    });
    producer.flush(Duration::from_secs(30)).expect("the test producer flushes");

    let instance = |n: &'static str| {
        let args = ["--count", "100", "--rate", "0", "--instances", "2", "--instance", n];
        ServiceProcess::start_with_clock_ids(&broker, &args)
    };
    let mut second_run = [instance("0"), instance("1")];
    for run in &mut second_run {
        let status = run.wait_exit(MINUTE);
        assert!(status.success(), "a second-run instance exited with {status}");
    }
    notification.wait_until("every order is emailed", 2 * MINUTE, |lines| emailed(lines).len() >= 300);
    payment.stop_gracefully(MINUTE);
    notification.stop_gracefully(MINUTE);

    let first = created(&first_run);
    let first_id = first.first().copied().expect("orders of the first run");
    assert!(
        (before..=after).contains(&first_id),
        "the first id {first_id} is not the clock's microseconds since 2026-01-01 ({before} to {after})"
    );
    let said = format!("order ids start at {first_id}: microseconds since 2026-01-01 (clock)");
    assert!(first_run.lines().iter().any(|l| l.contains(&said)), "no line says {said:?}");
    let mut second = BTreeSet::new();
    for (instance, run) in second_run.iter().enumerate() {
        let ids = created(run);
        assert!(
            ids.iter().all(|id| id % 2 == instance as u64),
            "instance {instance} left its class: {ids:?}"
        );
        second.extend(ids);
    }
    let (first_highest, second_lowest) = (first.last(), second.first());
    assert!(
        second_lowest > first_highest,
        "the second run started at {second_lowest:?}, not above {first_highest:?}"
    );
    let all: BTreeSet<u64> = first.union(&second).copied().collect();
    assert_eq!(all.len(), 300, "ids were reused");
    assert!(all.iter().all(|&id| id <= MAX_ORDER_ID), "ids above 2^53 - 1: {all:?}");
    assert_each_once(&payments_on_topic(&broker), &all, "payment events on payment_topic");
    assert_each_once(&emailed(&notification.lines()), &all, "emails");

    let dead = records_on_topic(&broker, "order_topic.dlq");
    assert_eq!(dead.len(), 5, "a dead letter for each poison record and foreign order");
    for order in &foreign {
        let letter = dead.iter().find(|d| &d.payload == order).expect("a dead letter for a foreign order");
        let error = &letter.headers["dlq.error"];
        assert!(
            error.contains("is above 9007199254740991"),
            "the dead letter's error {error:?} names no bound"
        );
    }
}

#[test]
fn ids_made_after_the_broker_was_emptied_are_new_to_the_store() {
    let mut first_broker = Broker::start();
    // The first broker's folder keeps the stores that both brokers' consumers use.
    let stores =
        ["payment-service", "notification-service"].map(|name| store_url(&first_broker.address, name));
    let run_on = |broker: &Broker| -> BTreeSet<u64> {
        let mut payment = ServiceProcess::start("payment-service", broker, &["--store", &stores[0]]);
        let mut notification =
            ServiceProcess::start("notification-service", broker, &["--store", &stores[1]]);
        let mut orders = ServiceProcess::start_with_clock_ids(broker, &["--count", "100", "--rate", "0"]);
        assert!(orders.wait_exit(MINUTE).success(), "order-service failed");
        notification.wait_until("every order is emailed", MINUTE, |lines| emailed(lines).len() >= 100);
        payment.stop_gracefully(MINUTE);
        notification.stop_gracefully(MINUTE);
        let ids = created(&orders);
        assert_eq!(ids.len(), 100, "ids were reused within a run");
        assert!(ids.iter().all(|&id| id <= MAX_ORDER_ID), "ids above 2^53 - 1: {ids:?}");
        let counters = summary(&payment);
        for taken_as_known in ["conflicts", "duplicates_suppressed"] {
            assert_eq!(counter(&counters, taken_as_known), 0, "{taken_as_known}: {counters}");
        }
        assert_each_once(&payments_on_topic(broker), &ids, "payment events on payment_topic");
        assert_each_once(&emailed(&notification.lines()), &ids, "emails");
        ids
    };
    let first = run_on(&first_broker);
    first_broker.kill();
    let fresh_broker = Broker::start();
    let second = run_on(&fresh_broker);
    assert!(second.first() > first.last(), "the run on the fresh broker started below the first's ids");
}

#[test]
fn start_ids_above_the_bound_are_usage_errors() {
    let above: &[&str] = &["--start-id", "9007199254740992"];
    let moved_above: &[&str] = &["--start-id", "9007199254740991", "--instances", "2", "--instance", "0"];
    for args in [above, moved_above] {
        // No broker there: the flags are refused before any is looked for.
        let nowhere = ["--brokers", "127.0.0.1:9", "--broker-wait-secs", "1"];
        let output = run("order-service", &[args, &nowhere[..]].concat());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("above 9007199254740991 (2^53 - 1)"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_run_stops_at_the_bound_instead_of_wrapping() {
    let broker = Broker::start();
    let mut payment = ServiceProcess::start("payment-service", &broker, &[]);
    let start = (MAX_ORDER_ID - 1).to_string();
    let mut orders = ServiceProcess::start(
        "order-service",
        &broker,
        &["--start-id", &start, "--count", "5", "--rate", "0"],
    );
    let status = orders.wait_exit(MINUTE);
    let lines = orders.lines();
    assert_eq!(status.code(), Some(1), "order-service went past the bound:\n{}", lines.join("\n"));
    let why = "the next order id would be above 9007199254740991 (2^53 - 1)";
    assert!(lines.iter().any(|l| l.contains(" ERROR ") && l.contains(why)), "no error says {why:?}");
    let ids = MAX_ORDER_ID - 1..=MAX_ORDER_ID;
    assert_exactly_once(&count_orders(&lines, CREATED), ids.clone(), "orders created");
    payment.wait_until("both orders are paid", MINUTE, |lines| count_orders(lines, PAID).len() >= 2);
    payment.stop_gracefully(MINUTE);
    assert_exactly_once(&payments_on_topic(&broker), ids, "payment events on payment_topic");
}

/// The microseconds since 2026-01-01T00:00:00Z now.
fn clock_micros() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH + Duration::from_secs(CLOCK_EPOCH_S));
    since.expect("the clock is past 2026-01-01").as_micros() as u64
}

/// The ids of the orders `run` created, each once.
fn created(run: &ServiceProcess) -> BTreeSet<u64> {
    let counts = count_orders(&run.lines(), CREATED);
    assert!(!counts.is_empty() && counts.values().all(|&n| n == 1), "{} created {counts:?}", run.name);
    counts.into_keys().collect()
}

/// Asserts every id in `ids` appears exactly once in `counts`, and nothing else.
fn assert_each_once(counts: &BTreeMap<u64, usize>, ids: &BTreeSet<u64>, what: &str) {
    let missing: Vec<&u64> = ids.iter().filter(|id| !counts.contains_key(id)).collect();
    let other: Vec<(&u64, &usize)> = counts.iter().filter(|(id, &n)| n != 1 || !ids.contains(id)).collect();
    assert!(
        missing.is_empty() && other.is_empty(),
        "{what}: missing {missing:?}; repeated or unexpected {other:?}"
    );
}
