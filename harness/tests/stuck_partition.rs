//! One event that cannot finish stops its partition, not the pipeline, and not
//! memory: payment-service holds the partition once `--max-in-flight` events are
//! done behind the stuck one, reads the other partitions on, says so, warns when
//! the partition's stored offset has not moved for a minute, and reads it again
//! once the event is done.
//!
//! The stuck event is a dead letter the broker refuses: `order_topic.dlq` is
//! deleted once payment-service has started. Nisshi answers each write to it
//! with an unknown server error (not "no such topic"), which librdkafka does
//! not take for a missing topic, so payment-service publishes the dead letter
//! again every second, until the topic is created again. (librdkafka would
//! learn that the topic is gone at its next metadata refresh, 5 minutes after
//! start, and payment-service would then stop: the test is done long before.)

use harness::{assert_exactly_once, count_orders, Broker, ServiceProcess, PAID};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::collections::BTreeMap;
use std::future::Future;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);

const DEAD_LETTERS: &str = "order_topic.dlq";

/// payment-service's `--max-in-flight`, and so the events done behind a stuck
/// one at which its partition is held.
const MAX_IN_FLIGHT: usize = 20;

/// Orders behind the stuck record on partition 0, and on each of partitions 1 and 2.
const BEHIND: u64 = 200;
const ELSEWHERE: u64 = 100;

#[test]
fn a_stuck_event_holds_its_partition_within_the_bound_and_the_others_read_on() {
    let broker = Broker::start();
    let in_flight = MAX_IN_FLIGHT.to_string();
    let mut payment = ServiceProcess::start("payment-service", &broker, &["--max-in-flight", &in_flight]);
    payment.wait_until("payment-service joins", MINUTE, |lines| {
        lines.iter().any(|l| l.contains("partitions assigned"))
    });
    let admin: AdminClient<DefaultClientContext> = broker.client_config().create().expect("an admin client");
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for deleted in block_on(admin.delete_topics(&[DEAD_LETTERS], &options)).expect("DeleteTopics answered") {
        deleted.unwrap_or_else(|(topic, e)| panic!("{topic} is not deleted: {e}"));
    }

    let producer: BaseProducer = broker.client_config().create().expect("a test producer");
    send(&producer, 0, "poison", b"not an order: its dead letter is refused");
    // Partition 0: 1001..=1200 behind the poison; partitions 1 and 2: 2001..=2200.
    for i in 0..BEHIND {
        send(&producer, 0, &(1001 + i).to_string(), order(1001 + i).as_bytes());
    }
    for i in 0..2 * ELSEWHERE {
        let id = 2001 + i;
        send(&producer, 1 + (i % 2) as i32, &id.to_string(), order(id).as_bytes());
    }
    producer.flush(MINUTE).expect("the test producer flushes");

    let elsewhere = 2001..=2000 + 2 * ELSEWHERE;
    payment.wait_until("partition 0 is held and partitions 1 and 2 are paid", 2 * MINUTE, |lines| {
        let paid = count_orders(lines, PAID);
        lines.iter().any(|l| l.contains("reading order_topic[0] held"))
            && elsewhere.clone().all(|id| paid.contains_key(&id))
    });
    payment.wait_until("the warning that partition 0's offset has not moved", 2 * MINUTE, |lines| {
        lines.iter().any(|l| l.contains("order_topic[0]: the stored offset has not moved for 60 s"))
    });
    let lines = payment.lines();
    let refused = lines.iter().filter(|l| l.contains("cannot publish to order_topic.dlq for now")).count();
    assert!(refused >= 2, "the dead letter was refused {refused} times: not stuck");
    // Held once MAX_IN_FLIGHT were done behind the poison; the events then in
    // flight still finished: at most MAX_IN_FLIGHT - 1 more (the poison holds a slot).
    let paid_behind = count_orders(&lines, PAID).range(1001..=1000 + BEHIND).count();
    assert!(
        (MAX_IN_FLIGHT..=2 * MAX_IN_FLIGHT - 1).contains(&paid_behind),
        "{paid_behind} orders of partition 0 paid behind the stuck event"
    );
    let warnings = |text: &str| lines.iter().filter(|l| l.contains(" WARN ") && l.contains(text)).count();
    assert_eq!(warnings("reading order_topic[0] held"), 1, "one line per hold");
    assert_eq!(warnings("order_topic[0]: the stored offset has not moved"), 1, "one line per stall");
    for other in ["order_topic[1]", "order_topic[2]"] {
        let about =
            |l: &&String| l.contains(&format!("reading {other}")) || l.contains(&format!("{other}: the"));
        assert_eq!(lines.iter().find(about), None, "{other} was read on");
    }

    // The broker takes the dead letter again: partition 0 is read on, to its end.
    let topic = NewTopic::new(DEAD_LETTERS, 3, TopicReplication::Fixed(1));
    for created in block_on(admin.create_topics(&[topic], &options)).expect("CreateTopics answered") {
        created.unwrap_or_else(|(topic, e)| panic!("{topic} is not created again: {e}"));
    }
    payment.wait_until("every order of partition 0 is paid", 2 * MINUTE, |lines| {
        count_orders(lines, PAID).len() as u64 >= BEHIND + 2 * ELSEWHERE
    });
    payment.wait_until("partition 0's offset moves again", MINUTE, |lines| {
        lines.iter().any(|l| l.contains("reading order_topic[0] resumed"))
            && lines.iter().any(|l| l.contains("order_topic[0]: the stored offset moves again"))
    });
    payment.stop_gracefully(MINUTE);
    let paid = count_orders(&payment.lines(), PAID);
    assert_exactly_once(&among(&paid, 1001..=1000 + BEHIND), 1001..=1000 + BEHIND, "payments of partition 0");
    assert_exactly_once(&among(&paid, elsewhere.clone()), elsewhere, "payments of partitions 1 and 2");
    assert_eq!(paid.len() as u64, BEHIND + 2 * ELSEWHERE, "payments of orders never sent");
}

/// The counts of the orders in `ids`.
fn among(counts: &BTreeMap<u64, usize>, ids: RangeInclusive<u64>) -> BTreeMap<u64, usize> {
    counts.range(ids).map(|(&id, &n)| (id, n)).collect()
}

fn order(id: u64) -> String {
    format!(r#"{{"order_id": {id}, "user_id": {}, "amount": 10.25, "status": "created"}}"#, id % 100 + 1)
}

fn send(producer: &BaseProducer, partition: i32, key: &str, payload: &[u8]) {
    let record = BaseRecord::<str, [u8]>::to("order_topic").partition(partition).key(key).payload(payload);
    producer.send(record).map_err(|(e, _)| e).expect("the test producer's queue has room");
    producer.poll(Duration::ZERO);
}

/// Runs an admin request's future to its end on this thread (rdkafka's admin
/// client answers from a thread of its own: no runtime is needed).
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut Context::from_waker(&waker)) {
            return output;
        }
        std::thread::park();
    }
}
