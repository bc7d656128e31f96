//! Settings the services refuse at start: those that make rebalances incremental,
//! `partition.assignment.strategy` with `cooperative-sticky` and Kafka 4's
//! `group.protocol=consumer` (a consumer here assumes eager rebalancing, and would
//! commit offsets past orders never handled). Whether from `-X` or from
//! `--kafka-config`, the refusal is a usage error (exit 2) that names the setting,
//! before anything is read.

use harness::{count_orders, Broker, ServiceProcess, NOTIFIED, PAID};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);

/// Each consumer service (its consumer group has its name) and the topic it reads.
const CONSUMERS: [(&str, &str); 2] =
    [("payment-service", "order_topic"), ("notification-service", "payment_topic")];

#[test]
fn settings_for_incremental_rebalancing_are_refused_at_start() {
    let broker = Broker::start();
    // The services make their topics; then an order and its payment event wait there.
    for (name, _) in CONSUMERS {
        let mut service = ServiceProcess::start(name, &broker, &[]);
        service.wait_until("it joins its group", MINUTE, |lines| {
            lines.iter().any(|l| l.contains("partitions assigned"))
        });
        service.stop_gracefully(MINUTE);
    }
    let producer: BaseProducer = broker.client_config().create().expect("a test producer");
    let event = |status: &str| {
        format!(r#"{{"order_id": 1001, "user_id": 5, "amount": 10.25, "status": "{status}"}}"#)
    };
    for (topic, status) in [("order_topic", "created"), ("payment_topic", "payment_successful")] {
        let payload = event(status);
        let record = BaseRecord::to(topic).key("1001").payload(&payload);
        producer.send(record).map_err(|(e, _)| e).expect("the test producer's queue has room");
    }
    producer.flush(MINUTE).expect("the test producer flushes");

    let file = std::env::temp_dir().join(format!("cooperative-{}.properties", std::process::id()));
    std::fs::write(&file, "# Kafka 4's protocol\ngroup.protocol=consumer\n")
        .expect("cannot write the properties file");
    let file = file.display().to_string();
    let cases: [(&[&str], &str); 3] = [
        (
            &["-X", "partition.assignment.strategy=cooperative-sticky"],
            "-X partition.assignment.strategy=cooperative-sticky",
        ),
        (&["-X", "group.protocol=consumer"], "-X group.protocol=consumer"),
        (&["--kafka-config", &file], " line 2: group.protocol=consumer"),
    ];
    for (name, topic) in CONSUMERS {
        for (args, setting) in cases {
            let mut refused = ServiceProcess::start(name, &broker, args);
            let status = refused.wait_exit(MINUTE);
            let output = refused.lines().join("\n");
            assert_eq!(status.code(), Some(2), "{name} {args:?}: {output}");
            assert!(
                output.contains(setting) && output.contains("is not supported") && output.contains("eager"),
                "{name} {args:?} does not say what it refuses and why: {output}"
            );
            assert!(output.contains("; use "), "{name} {args:?} does not say what to use instead: {output}");
            assert!(committed(&broker, name, topic).is_empty(), "{name} {args:?} committed offsets");
        }
    }
    std::fs::remove_file(&file).expect("cannot remove the properties file");

    // The order and its payment event were left for services with supported settings.
    for (name, topic) in CONSUMERS {
        let marker = if name == "payment-service" { PAID } else { NOTIFIED };
        let mut service = ServiceProcess::start(name, &broker, &[]);
        service.wait_until("order 1001 is handled", MINUTE, |lines| {
            count_orders(lines, marker).contains_key(&1001)
        });
        service.stop_gracefully(MINUTE);
        assert!(!committed(&broker, name, topic).is_empty(), "{name} committed nothing");
    }
}

/// The offsets the consumer group `group` has committed on `topic`'s partitions.
fn committed(broker: &Broker, group: &str, topic: &str) -> Vec<(i32, Offset)> {
    let consumer: BaseConsumer =
        broker.client_config().set("group.id", group).create().expect("a client of the group");
    let metadata = consumer.fetch_metadata(Some(topic), MINUTE).expect("the topic's metadata");
    let mut partitions = TopicPartitionList::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        partitions.add_partition(topic, partition.id());
    }
    let offsets = consumer.committed_offsets(partitions, MINUTE).expect("the group's committed offsets");
    offsets
        .elements()
        .iter()
        .filter(|element| element.offset() != Offset::Invalid)
        .map(|element| (element.partition(), element.offset()))
        .collect()
}
