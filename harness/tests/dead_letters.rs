//! Bad messages never stop a pipeline: whatever is not a valid order goes to
//! the dead-letter topic, with its bytes, its key and why, and the valid orders
//! around it are paid and notified exactly once.

use harness::{
    assert_exactly_once, count_orders, counter, records_on_topic, summary, Broker, Service, NOTIFIED,
};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use std::time::Duration;

const VALID: u64 = 1000;

/// Every kind of bad message, with the words its dead-letter error must contain.
fn bad_messages() -> Vec<(Vec<u8>, &'static str)> {
    let order = |amount: &str, status: &str| {
        format!(r#"{{"order_id": 99, "user_id": 5, "amount": {amount}, "status": "{status}"}}"#).into_bytes()
    };
    vec![
        (b"hello, not json".to_vec(), "not a valid event"),
        (b"\xff\xfe\xfd not utf-8".to_vec(), "not UTF-8"),
        (br#"{"order_id": 99, "user_id": 5, "status": "created"}"#.to_vec(), "missing field `amount`"),
        (br#"{"order_id": "x", "user_id": 5, "amount": 1.5, "status": "created"}"#.to_vec(), "invalid type"),
        (order("-3.5", "created"), "bad amount -3.5"),
        (order("0", "created"), "bad amount 0"),
        (order("NaN", "created"), "not a valid event"),
        (order("1e12", "created"), "bad amount 1000000000000"),
        (order("12.5", "shipped"), "unknown variant `shipped`"),
        (order("12.5", "payment_successful"), "unexpected status PaymentSuccessful"),
        (vec![b'x'; 70 * 1024], "oversized payload: 71680 bytes"),
        (Vec::new(), "empty payload"),
    ]
}

#[test]
fn bad_messages_are_dead_lettered_and_valid_orders_flow_on() {
    let broker = Broker::start();
    let mut payment = Service::start("payment-service", &broker, &[]);
    let mut notification = Service::start("notification-service", &broker, &[]);
    // The services create the topics; write once the consumer has joined.
    payment.wait_until("payment-service joins", Duration::from_secs(60), |lines| {
        lines.iter().any(|l| l.contains("partitions assigned"))
    });

    let producer: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", &broker.address).create().expect("a test producer");
    let kinds = bad_messages();
    let mut bad_sent = Vec::new();
    for i in 0..VALID {
        let id = 1001 + i;
        let order = format!(
            r#"{{"order_id": {id}, "user_id": {}, "amount": 10.25, "status": "created"}}"#,
            i % 100 + 1
        );
        send(&producer, Some(&id.to_string()), order.as_bytes());
        if i % 3 == 0 {
            let (payload, why) = &kinds[bad_sent.len() % kinds.len()];
            let key = format!("bad-{}", bad_sent.len());
            // Every fifth bad message has no key at all.
            let keyed = (bad_sent.len() % 5 != 0).then_some(key.as_str());
            send(&producer, keyed, payload);
            bad_sent.push((keyed.map(str::to_string), payload.clone(), *why));
        }
    }
    producer.flush(Duration::from_secs(30)).expect("the test producer flushes");
    assert!(bad_sent.len() >= 300, "{} bad messages", bad_sent.len());

    notification.wait_until("every valid order is notified", Duration::from_secs(120), |lines| {
        count_orders(lines, NOTIFIED).len() as u64 >= VALID
    });
    payment.stop_gracefully(Duration::from_secs(30));
    notification.stop_gracefully(Duration::from_secs(30));

    assert_exactly_once(&count_orders(&notification.lines(), NOTIFIED), 1001..=1000 + VALID, "notifications");
    let mut dead = records_on_topic(&broker, "order_topic.dlq");
    assert_eq!(dead.len(), bad_sent.len(), "one dead letter per bad message");
    assert_eq!(counter(&summary(&payment), "dead_lettered"), bad_sent.len() as u64);
    for (key, payload, why) in &bad_sent {
        // Matched one to one: each dead letter answers for one bad message.
        let found = dead
            .iter()
            .position(|d| d.key.as_deref() == key.as_deref().map(str::as_bytes) && &d.payload == payload)
            .unwrap_or_else(|| panic!("no dead letter for key {key:?} ({why})"));
        let letter = dead.swap_remove(found);
        let header =
            |name: &str| letter.headers.get(name).unwrap_or_else(|| panic!("no {name} header")).as_str();
        assert!(header("dlq.error").contains(why), "{key:?}: {:?} lacks {why:?}", header("dlq.error"));
        assert_eq!(header("dlq.source.topic"), "order_topic");
        assert_eq!(header("dlq.service"), "payment-service");
        header("dlq.source.partition").parse::<i32>().expect("a partition number");
        header("dlq.source.offset").parse::<i64>().expect("an offset");
    }
    let warnings =
        payment.lines().iter().filter(|l| l.contains(" WARN ") && l.contains("dead-lettering")).count();
    assert_eq!(warnings, bad_sent.len(), "one WARN line per dead letter");
}

fn send(producer: &BaseProducer, key: Option<&str>, payload: &[u8]) {
    send_to(producer, "order_topic", key, payload);
}

fn send_to(producer: &BaseProducer, topic: &str, key: Option<&str>, payload: &[u8]) {
    let mut record = BaseRecord::<str, [u8]>::to(topic).payload(payload);
    if let Some(key) = key {
        record = record.key(key);
    }
    producer.send(record).map_err(|(e, _)| e).expect("the test producer's queue has room");
    producer.poll(Duration::ZERO);
}

#[test]
fn notification_service_dead_letters_bad_payment_events_too() {
    let broker = Broker::start();
    let mut notification = Service::start("notification-service", &broker, &[]);
    notification.wait_until("notification-service joins", Duration::from_secs(60), |lines| {
        lines.iter().any(|l| l.contains("partitions assigned"))
    });
    let producer: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", &broker.address).create().expect("a test producer");
    let bad: [(&[u8], &str); 3] = [
        (b"{}", "missing field"),
        (
            br#"{"order_id": 7, "user_id": 1, "amount": 3.5, "status": "created"}"#,
            "unexpected status Created",
        ),
        (b"", "empty payload"),
    ];
    for id in 1001..=1020u64 {
        let paid =
            format!(r#"{{"order_id": {id}, "user_id": 3, "amount": 9.5, "status": "payment_successful"}}"#);
        send_to(&producer, "payment_topic", Some(&id.to_string()), paid.as_bytes());
        let (payload, _) = bad[id as usize % bad.len()];
        send_to(&producer, "payment_topic", Some(&format!("bad-{id}")), payload);
    }
    producer.flush(Duration::from_secs(30)).expect("the test producer flushes");

    notification.wait_until("every payment is notified", Duration::from_secs(60), |lines| {
        count_orders(lines, NOTIFIED).len() >= 20
    });
    notification.stop_gracefully(Duration::from_secs(30));
    assert_exactly_once(&count_orders(&notification.lines(), NOTIFIED), 1001..=1020, "notifications");
    let dead = records_on_topic(&broker, "payment_topic.dlq");
    assert_eq!(dead.len(), 20, "one dead letter per bad payment event");
    for letter in &dead {
        let id: usize = String::from_utf8_lossy(letter.key.as_deref().expect("keyed"))["bad-".len()..]
            .parse()
            .expect("a bad-N key");
        let (payload, why) = bad[id % bad.len()];
        assert_eq!(letter.payload, payload);
        assert!(letter.headers["dlq.error"].contains(why), "{:?} lacks {why:?}", letter.headers["dlq.error"]);
        assert_eq!(letter.headers["dlq.source.topic"], "payment_topic");
        assert_eq!(letter.headers["dlq.service"], "notification-service");
    }
}
