//! `/metrics`, `/health` and `/ready` during a real run: the numbers Prometheus
//! would scrape are what happened, and the summary line says the same.

use harness::scrape::{http_get, metrics_address, scrape, total, Sample};
use harness::{count_orders, counter, summary, Broker, ServiceProcess, NOTIFIED};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::time::{Duration, Instant};

const ORDERS: f64 = 300.0;
const BAD_RECORDS: f64 = 5.0;
const METRICS: &[&str] = &["--metrics-addr", "127.0.0.1:0"];

/// Scrapes `address` until `done` holds for its samples; panics after 30 s.
fn scrape_until(address: &str, what: &str, done: impl Fn(&[Sample]) -> bool) -> Vec<Sample> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let samples = scrape(address);
        if done(&samples) {
            return samples;
        }
        assert!(Instant::now() < deadline, "{what}: not within 30 s: {samples:#?}");
        std::thread::sleep(Duration::from_millis(200)); // a scrape interval: Prometheus polls too
    }
}

#[test]
fn metrics_and_probes_tell_what_happened() {
    let broker = Broker::start();
    let crashing = ["--crash-rate", "0.02", "--crash-actor", "domain", "--seed", "5"];
    let mut payment = ServiceProcess::start("payment-service", &broker, &[METRICS, &crashing[..]].concat());
    let mut notification = ServiceProcess::start("notification-service", &broker, METRICS);
    let (payment_http, notification_http) = (metrics_address(&payment), metrics_address(&notification));
    assert_eq!(http_get(&payment_http, "/health"), (200, "alive\n".into()));

    for service in [&payment, &notification] {
        service.wait_until("it has partitions", Duration::from_secs(60), |lines| {
            lines.iter().any(|l| l.contains("partitions assigned"))
        });
    }
    for address in [&payment_http, &notification_http] {
        assert_eq!(http_get(address, "/ready"), (200, "ready\n".into()), "{address}");
    }
    let mut orders = ServiceProcess::start("order-service", &broker, &["--count", "300", "--rate", "0"]);
    assert!(orders.wait_exit(Duration::from_secs(60)).success(), "order-service failed");
    let producer: BaseProducer = broker.client_config().create().expect("a test producer");
    for i in 0..BAD_RECORDS as u32 {
        let record = BaseRecord::to("order_topic").key("bad").payload("not an order");
        producer.send(record).map_err(|(e, _)| e).unwrap_or_else(|e| panic!("bad record {i}: {e}"));
    }
    producer.flush(Duration::from_secs(10)).expect("the test producer flushes");
    notification.wait_until("every order is notified", Duration::from_secs(60), |lines| {
        count_orders(lines, NOTIFIED).len() as f64 >= ORDERS
    });

    // Everything is done and committed: no lag on any of the 3 partitions, nothing in flight.
    let lag_gone = |samples: &[Sample]| {
        let lags: Vec<&Sample> = samples.iter().filter(|s| s.name == "pipeline_consumer_lag").collect();
        lags.len() == 3 && lags.iter().all(|s| s.value == 0.0)
    };
    let paid = scrape_until(&payment_http, "payment-service's lag reaches 0", |s| {
        lag_gone(s) && total(s, "pipeline_dead_lettered_total") == BAD_RECORDS
    });
    let notified = scrape_until(&notification_http, "notification-service's lag reaches 0", lag_gone);

    assert_eq!(total(&paid, "pipeline_events_processed_total"), ORDERS);
    assert_eq!(total(&paid, "pipeline_events_in_flight"), 0.0);
    assert_eq!(total(&paid, "pipeline_end_to_end_latency_seconds_count"), ORDERS);
    let payment_events = paid.iter().find(|s| {
        s.name == "pipeline_produce_latency_seconds_count"
            && s.labels.get("topic").is_some_and(|t| t == "payment_topic")
    });
    assert_eq!(payment_events.map(|s| s.value), Some(ORDERS), "one acknowledged payment event per order");
    assert_eq!(total(&notified, "pipeline_events_processed_total"), ORDERS);
    assert_eq!(total(&notified, "pipeline_end_to_end_latency_seconds_count"), ORDERS);

    payment.stop_gracefully(Duration::from_secs(30));
    notification.stop_gracefully(Duration::from_secs(30));
    // The summary line reads the same registry.
    let line = summary(&payment);
    for (metric, name) in [
        ("pipeline_events_processed_total", "processed"),
        ("pipeline_crashes_total", "crashes"),
        ("pipeline_restarts_total", "restarts"),
        ("pipeline_redeliveries_total", "redeliveries"),
        ("pipeline_dead_lettered_total", "dead_lettered"),
        ("pipeline_retries_total", "retries"),
    ] {
        assert_eq!(total(&paid, metric), counter(&line, name) as f64, "{metric} vs {line}");
    }
    assert!(counter(&line, "crashes") > 0, "crashes were injected: {line}");
    let crashes = paid.iter().filter(|s| s.name == "pipeline_crashes_total");
    assert!(crashes.clone().all(|s| s.labels["actor"] == "PaymentActor"), "{paid:#?}");
}

#[test]
fn a_service_waiting_for_its_broker_is_alive_but_not_ready() {
    let nowhere = format!(
        "127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    );
    let payment = ServiceProcess::start_at(
        "payment-service",
        &nowhere,
        &[METRICS, &["--broker-wait-secs", "0"]].concat(),
    );
    let address = metrics_address(&payment);
    assert_eq!(http_get(&address, "/health"), (200, "alive\n".into()));
    assert_eq!(http_get(&address, "/ready"), (503, "starting: waiting for the broker\n".into()));
    assert_eq!(http_get(&address, "/metrics").0, 200);
}

/// A store that does not commit (another connection holds the SQLite file's
/// write lock) makes notification-service not ready, saying why, until it does
/// again; the orders made meanwhile wait, then are emailed.
#[test]
fn a_store_that_does_not_commit_makes_the_service_not_ready_until_it_does() {
    let broker = Broker::start();
    let notification = ServiceProcess::start("notification-service", &broker, METRICS);
    let _payment = ServiceProcess::start("payment-service", &broker, &[]);
    notification.wait_until("it has partitions", Duration::from_secs(60), |lines| {
        lines.iter().any(|l| l.contains("partitions assigned"))
    });
    let address = metrics_address(&notification);
    let until = |what: &str, done: &dyn Fn(&(u16, String)) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let answer = http_get(&address, "/ready");
            if done(&answer) {
                return answer;
            }
            assert!(Instant::now() < deadline, "/ready is not {what} within 30 s: {answer:?}");
            std::thread::sleep(Duration::from_millis(200)); // a probe interval: orchestrators poll too
        }
    };
    until("200", &|(status, _)| *status == 200);

    let lock = rusqlite::Connection::open(harness::store_path(&broker.address, "notification-service"))
        .expect("the store opens");
    lock.execute_batch("BEGIN IMMEDIATE").expect("the write lock is taken");
    let mut orders = ServiceProcess::start("order-service", &broker, &["--count", "50", "--rate", "0"]);
    let (_, why) = until("503", &|(status, _)| *status == 503);
    assert!(
        why.starts_with("the store sqlite://")
            && why.contains("has not committed for")
            && why.contains("locked"),
        "{why:?}"
    );
    assert!(harness::emailed(&notification.lines()).is_empty(), "an email went out unclaimed");

    lock.execute_batch("ROLLBACK").expect("the write lock is let go");
    until("200 again", &|(status, _)| *status == 200);
    assert!(orders.wait_exit(Duration::from_secs(60)).success(), "order-service failed");
    notification.wait_until("every order is emailed", Duration::from_secs(60), |lines| {
        harness::emailed(lines).len() >= 50
    });
}
