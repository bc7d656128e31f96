//! `order-trace` against a real run: a paid order, and a declined order with an
//! invalid copy that payment-service dead-lettered.

use harness::{count_orders, run, Broker, ServiceProcess};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::Value;
use std::time::Duration;

const DECLINED: &str = "❌ Payment Failed for Order ";
const PAID: &str = "✅ Payment Successful for Order ";

#[test]
fn traces_a_paid_order_and_a_declined_one_with_its_dead_letter() {
    let broker = Broker::start();
    let mut payment =
        ServiceProcess::start("payment-service", &broker, &["--decline-rate", "0.3", "--seed", "7"]);
    let mut notification = ServiceProcess::start("notification-service", &broker, &[]);
    let mut orders = ServiceProcess::start("order-service", &broker, &["--count", "20", "--rate", "0"]);
    assert!(orders.wait_exit(Duration::from_secs(60)).success(), "order-service failed");
    notification.wait_until("every order is notified", Duration::from_secs(60), |lines| {
        count_orders(lines, PAID).len() + count_orders(lines, DECLINED).len() >= 20
    });
    let lines = notification.lines();
    let declined = *count_orders(&lines, DECLINED).keys().next().expect("a declined order at 30%");
    let paid = *count_orders(&lines, PAID).keys().next().expect("a paid order at 30% declined");

    // A copy of the declined order that is not an event: payment-service dead-letters it.
    let producer: BaseProducer = broker.client_config().create().expect("a test producer");
    let key = declined.to_string();
    producer.send(BaseRecord::to("order_topic").key(&key).payload("not json")).map_err(|(e, _)| e).unwrap();
    producer.flush(Duration::from_secs(10)).expect("the test producer flushes");
    payment.wait_until("the copy is dead-lettered", Duration::from_secs(30), |lines| {
        lines.iter().any(|l| l.contains("dead-lettering order_topic"))
    });
    payment.stop_gracefully(Duration::from_secs(30));
    notification.stop_gracefully(Duration::from_secs(30));

    let traced = run("order-trace", &[&key, "--brokers", &broker.address, "--json"]);
    assert!(traced.status.success(), "{}", String::from_utf8_lossy(&traced.stderr));
    let journey: Value = serde_json::from_slice(&traced.stdout).expect("--json prints JSON");
    assert_eq!(journey["order_id"], declined);
    let steps = journey["steps"].as_array().expect("steps");
    let kinds: Vec<&str> = steps.iter().map(|s| s["what"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["created", "declined", "invalid", "dead_lettered"], "{journey:#}");
    let [created, declined_step, invalid, dead_letter] = &steps[..] else { unreachable!() };
    let topics: Vec<&str> = steps.iter().map(|s| s["topic"].as_str().unwrap()).collect();
    assert_eq!(topics, ["order_topic", "payment_topic", "order_topic", "order_topic.dlq"]);
    assert_eq!(created["event"]["order_id"], declined);
    let reason = declined_step["reason"].as_str().expect("a decline reason");
    assert!(
        lines.iter().any(|l| l.contains(&format!("{DECLINED}{declined} ")) && l.ends_with(reason)),
        "{reason}"
    );
    assert!(invalid["reason"].as_str().unwrap().contains("not a valid event"), "{invalid}");
    assert_eq!(dead_letter["reason"], invalid["reason"]);
    let source = format!("order_topic[{}]@{} by payment-service", invalid["partition"], invalid["offset"]);
    assert_eq!(dead_letter["dead_letter_of"], source.as_str());
    for step in &steps[1..] {
        assert!(step["since_previous_ms"].as_i64().is_some_and(|ms| ms >= 0), "{step}");
        assert!(step["timestamp_ms"].is_i64() && step["offset"].is_i64(), "{step}");
    }

    let traced = run("order-trace", &[&paid.to_string(), "--brokers", &broker.address]);
    let text = String::from_utf8_lossy(&traced.stdout);
    assert!(traced.status.success(), "{}", String::from_utf8_lossy(&traced.stderr));
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(rows[0].contains("created") && rows[0].contains("order_topic["), "{text}");
    assert!(
        rows[1].contains("paid") && rows[1].contains("payment_topic[") && rows[1].contains(" ms "),
        "{text}"
    );

    let unknown = run("order-trace", &["999999", "--brokers", &broker.address]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no record of order 999999 in order_topic["));
}
