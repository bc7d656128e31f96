//! Bad messages never stop a pipeline: whatever is not a valid order goes to
//! the dead-letter topic, with its bytes, its key and why (their heads, for a
//! record too large to copy whole), and the valid orders around it are paid and
//! notified exactly once.

use harness::{
    assert_exactly_once, count_orders, counter, records_on_topic, summary, Broker, ServiceProcess,
    TopicRecord, NOTIFIED, PAID,
};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use std::time::Duration;

const VALID: u64 = 1000;

/// librdkafka's default `message.max.bytes`, which every dead letter must fit under.
const LIBRDKAFKA_MESSAGE_MAX_BYTES: usize = 1_000_000;

/// The longest record the broker takes from the test producer, with room for its headers.
const BROKER_RECORD_BYTES: usize = 1_040_000;

/// Records too large to copy whole into a dead letter, as a producer in another
/// language may write them (the broker takes up to Kafka's 1,048,588 bytes): a
/// long key, a long value, and an error that quotes 60,000 bytes of its record,
/// each as (key, value, the words the dead letter's error must contain).
fn oversized_records() -> Vec<(Vec<u8>, Vec<u8>, &'static str)> {
    let long_status =
        format!(r#"{{"order_id": 99, "user_id": 5, "amount": 1.5, "status": "{}"}}"#, "z".repeat(60_000));
    vec![
        (vec![b'k'; 1_030_000], b"x".to_vec(), "not a valid event"),
        (vec![b'l'; 500_000], vec![b'v'; 500_000], "oversized payload: 500000 bytes"),
        (vec![b'm'; 80_000], vec![b'w'; BROKER_RECORD_BYTES - 80_000], "oversized payload: 960000 bytes"),
        (vec![b'n'; 880_000], long_status.into_bytes(), "unknown variant `zzz"),
    ]
}

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
    let mut payment = ServiceProcess::start("payment-service", &broker, &[]);
    let mut notification = ServiceProcess::start("notification-service", &broker, &[]);
    // The services create the topics; write once the consumer has joined.
    payment.wait_until("payment-service joins", Duration::from_secs(60), |lines| {
        lines.iter().any(|l| l.contains("partitions assigned"))
    });

    let producer = large_record_producer(&broker);
    // The records too large to copy come first: every order after them is paid and notified.
    let mut bad_sent = Vec::new();
    for (key, payload, why) in oversized_records() {
        send(&producer, Some(&key), &payload);
        bad_sent.push((Some(key), payload, why));
    }
    let kinds = bad_messages();
    for i in 0..VALID {
        let id = 1001 + i;
        let order = format!(
            r#"{{"order_id": {id}, "user_id": {}, "amount": 10.25, "status": "created"}}"#,
            i % 100 + 1
        );
        send(&producer, Some(id.to_string().as_bytes()), order.as_bytes());
        if i % 3 == 0 {
            let (payload, why) = &kinds[bad_sent.len() % kinds.len()];
            let key = format!("bad-{}", bad_sent.len()).into_bytes();
            // Every fifth bad message has no key at all.
            let keyed = (bad_sent.len() % 5 != 0).then_some(key);
            send(&producer, keyed.as_deref(), payload);
            bad_sent.push((keyed, payload.clone(), *why));
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
        let shown = key.as_deref().map(|key| String::from_utf8_lossy(&key[..key.len().min(20)]).into_owned());
        let found = dead
            .iter()
            .position(|d| is_dead_letter_of(d, key.as_deref(), payload))
            .unwrap_or_else(|| panic!("no dead letter for key {shown:?}... ({why})"));
        let letter = dead.swap_remove(found);
        assert_fits(&letter);
        let header =
            |name: &str| letter.headers.get(name).unwrap_or_else(|| panic!("no {name} header")).as_str();
        assert!(header("dlq.error").contains(why), "{shown:?}: {:?} lacks {why:?}", header("dlq.error"));
        assert_eq!(header("dlq.source.topic"), "order_topic");
        assert_eq!(header("dlq.service"), "payment-service");
        header("dlq.source.partition").parse::<i32>().expect("a partition number");
        header("dlq.source.offset").parse::<i64>().expect("an offset");
    }
    let warnings =
        payment.lines().iter().filter(|l| l.contains(" WARN ") && l.contains("dead-lettering")).count();
    assert_eq!(warnings, bad_sent.len(), "one WARN line per dead letter");
}

/// Whether `letter` is the dead letter of the record `key`/`payload`: it holds
/// their bytes, or their heads where its headers say from how many bytes they
/// were cut.
fn is_dead_letter_of(letter: &TopicRecord, key: Option<&[u8]>, payload: &[u8]) -> bool {
    let holds = |kept: &[u8], original: &[u8], cut_from: &str| match letter.headers.get(cut_from) {
        Some(length) => {
            *length == original.len().to_string() && kept.len() < original.len() && original.starts_with(kept)
        }
        None => kept == original,
    };
    let key_held = match (letter.key.as_deref(), key) {
        (Some(kept), Some(original)) => holds(kept, original, "dlq.truncated.key.from.bytes"),
        (kept, original) => kept == original,
    };
    key_held && holds(&letter.payload, payload, "dlq.truncated.from.bytes")
}

/// Asserts that `letter` (its key, value and headers) fits under librdkafka's default limit.
fn assert_fits(letter: &TopicRecord) {
    let headers: usize = letter.headers.iter().map(|(name, value)| name.len() + value.len()).sum();
    let size = letter.key.as_ref().map_or(0, Vec::len) + letter.payload.len() + headers;
    assert!(size < LIBRDKAFKA_MESSAGE_MAX_BYTES, "a dead letter of {size} bytes");
}

/// A producer that writes records up to what the broker takes (librdkafka's own limit is lower).
fn large_record_producer(broker: &Broker) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .set("message.max.bytes", "2000000")
        .create()
        .expect("a test producer")
}

fn send(producer: &BaseProducer, key: Option<&[u8]>, payload: &[u8]) {
    send_to(producer, "order_topic", key, payload);
}

fn send_to(producer: &BaseProducer, topic: &str, key: Option<&[u8]>, payload: &[u8]) {
    let mut record = BaseRecord::<[u8], [u8]>::to(topic).payload(payload);
    if let Some(key) = key {
        record = record.key(key);
    }
    producer.send(record).map_err(|(e, _)| e).expect("the test producer's queue has room");
    producer.poll(Duration::ZERO);
}

#[test]
fn notification_service_dead_letters_bad_payment_events_too() {
    let broker = Broker::start();
    let mut notification = ServiceProcess::start("notification-service", &broker, &[]);
    notification.wait_until("notification-service joins", Duration::from_secs(60), |lines| {
        lines.iter().any(|l| l.contains("partitions assigned"))
    });
    let producer = large_record_producer(&broker);
    let long_key = [b"long-".as_slice(), &[b'k'; 1_030_000]].concat();
    send_to(&producer, "payment_topic", Some(&long_key), b"x");
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
        send_to(&producer, "payment_topic", Some(id.to_string().as_bytes()), paid.as_bytes());
        let (payload, _) = bad[id as usize % bad.len()];
        send_to(&producer, "payment_topic", Some(format!("bad-{id}").as_bytes()), payload);
    }
    producer.flush(Duration::from_secs(30)).expect("the test producer flushes");

    notification.wait_until("every payment is notified", Duration::from_secs(60), |lines| {
        count_orders(lines, NOTIFIED).len() >= 20
    });
    notification.stop_gracefully(Duration::from_secs(30));
    assert_exactly_once(&count_orders(&notification.lines(), NOTIFIED), 1001..=1020, "notifications");
    let mut dead = records_on_topic(&broker, "payment_topic.dlq");
    assert_eq!(dead.len(), 21, "one dead letter per bad payment event");
    let long = dead.iter().position(|letter| is_dead_letter_of(letter, Some(&long_key), b"x"));
    let long = dead.swap_remove(long.expect("a dead letter for the record with the long key"));
    assert_fits(&long);
    assert!(long.headers["dlq.error"].contains("not a valid event"), "{:?}", long.headers["dlq.error"]);
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

#[test]
fn a_dead_letter_over_the_producers_lower_limit_goes_out_as_headers_only() {
    // The operator's producer takes less than a dead letter may hold: the dead
    // letter of a record with a long key is refused for its size.
    let broker = Broker::start();
    let mut payment = ServiceProcess::start("payment-service", &broker, &["-X", "message.max.bytes=50000"]);
    payment.wait_until("payment-service joins", Duration::from_secs(60), |lines| {
        lines.iter().any(|l| l.contains("partitions assigned"))
    });
    let producer = large_record_producer(&broker);
    let long_key = vec![b'k'; 1_030_000];
    send(&producer, Some(&long_key), b"x");
    producer.flush(Duration::from_secs(30)).expect("the test producer flushes");
    payment.wait_until("the refused dead letter goes out again", Duration::from_secs(60), |lines| {
        lines.iter().any(|l| l.contains("publishing it again without the record's key and value"))
    });
    let order = r#"{"order_id": 1001, "user_id": 5, "amount": 10.25, "status": "created"}"#;
    send(&producer, Some(b"1001"), order.as_bytes());
    producer.flush(Duration::from_secs(30)).expect("the test producer flushes");
    payment.wait_until("the next order is paid", Duration::from_secs(60), |lines| {
        count_orders(lines, PAID).contains_key(&1001)
    });
    payment.stop_gracefully(Duration::from_secs(30));

    let dead = records_on_topic(&broker, "order_topic.dlq");
    assert_eq!(dead.len(), 1, "one dead letter");
    let letter = &dead[0];
    assert_eq!((letter.key.as_deref(), letter.payload.len()), (None, 0), "headers only");
    assert_eq!(letter.headers["dlq.truncated.key.from.bytes"], "1030000");
    assert_eq!(letter.headers["dlq.truncated.from.bytes"], "1");
    assert!(letter.headers["dlq.error"].contains("not a valid event"), "{:?}", letter.headers["dlq.error"]);
    assert_eq!(letter.headers["dlq.source.topic"], "order_topic");
    assert_eq!(counter(&summary(&payment), "dead_lettered"), 1);
}
