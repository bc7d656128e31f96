//! Topics a real cluster can keep: each service creates the topics it uses with
//! `--partitions` and `--replication-factor` (the broker's default unless given),
//! or, with `--create-topics false`, uses the ones its operators made and refuses
//! to start without them; either way it logs each topic as found. A service
//! interrupted while it waits for its broker exits at once, and cleanly.

use harness::{assert_exactly_once, count_orders, run, Broker, ServiceProcess, NOTIFIED, PAID};
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);

/// How many partitions `topic` has on `broker`, as a client reads them.
fn partitions_of(broker: &Broker, topic: &str) -> usize {
    let client: BaseConsumer = broker.client_config().create().expect("a metadata client");
    let metadata = client.fetch_metadata(Some(topic), MINUTE).expect("the broker's metadata");
    metadata.topics().first().map_or(0, |t| t.partitions().len())
}

/// Waits until `service` logs how it found `topic`, and returns that line.
fn found(service: &ServiceProcess, topic: &str) -> String {
    let marker = format!("topic {topic}: ");
    service
        .wait_until(&format!("{topic} described"), MINUTE, |lines| lines.iter().any(|l| l.contains(&marker)));
    service.lines().into_iter().find(|l| l.contains(&marker)).expect("the line waited for")
}

#[test]
fn topics_are_created_as_asked_and_logged_as_found() {
    let broker = Broker::start();
    // The broker's default replication factor (-1), and the default 3 partitions.
    let notification = ServiceProcess::start("notification-service", &broker, &[]);
    assert!(found(&notification, "payment_topic")
        .ends_with("topic payment_topic: 3 partitions, replication factor 1"));
    let payment = ServiceProcess::start(
        "payment-service",
        &broker,
        &["--partitions", "5", "--replication-factor", "1"],
    );
    for topic in ["order_topic", "order_topic.dlq"] {
        assert!(
            found(&payment, topic).ends_with(&format!("topic {topic}: 5 partitions, replication factor 1"))
        );
        assert_eq!(partitions_of(&broker, topic), 5, "{topic} as the broker has it");
    }
    // A topic that exists is described as it is, not made again.
    assert!(
        found(&payment, "payment_topic").ends_with("topic payment_topic: 3 partitions, replication factor 1")
    );
    assert_eq!(partitions_of(&broker, "payment_topic"), 3);
}

#[test]
fn without_topic_creation_a_missing_topic_stops_the_start_and_made_topics_are_used() {
    let broker = Broker::start();
    let manual = ["--create-topics", "false"];
    let mut refused = ServiceProcess::start("payment-service", &broker, &manual);
    assert_eq!(refused.wait_exit(MINUTE).code(), Some(1), "payment-service without its topics");
    let lines = refused.lines();
    assert!(
        lines.iter().any(|l| l.contains("does not exist") && l.contains("--create-topics")),
        "no line says which topic is missing and what to do:\n{}",
        lines.join("\n")
    );
    assert_eq!(partitions_of(&broker, "order_topic"), 0, "a topic was created with --create-topics false");

    // The operators' topics, made here by one run of each consumer service with 2 partitions.
    for service in ["payment-service", "notification-service"] {
        let mut maker = ServiceProcess::start(service, &broker, &["--partitions", "2"]);
        found(&maker, "payment_topic");
        maker.stop_gracefully(MINUTE);
    }
    let mut notification = ServiceProcess::start("notification-service", &broker, &manual);
    let mut payment = ServiceProcess::start("payment-service", &broker, &manual);
    assert!(found(&payment, "order_topic").ends_with("topic order_topic: 2 partitions, replication factor 1"));
    let mut orders = ServiceProcess::start(
        "order-service",
        &broker,
        &["--create-topics", "false", "--count", "50", "--rate", "0"],
    );
    assert!(orders.wait_exit(MINUTE).success(), "order-service failed");
    notification.wait_until("every order emailed", MINUTE, |lines| count_orders(lines, NOTIFIED).len() >= 50);
    payment.stop_gracefully(MINUTE);
    notification.stop_gracefully(MINUTE);
    assert_exactly_once(&count_orders(&payment.lines(), PAID), 1001..=1050, "payments");
    assert_exactly_once(&count_orders(&notification.lines(), NOTIFIED), 1001..=1050, "emails");
}

#[test]
fn interrupted_while_waiting_for_its_broker_a_service_exits_cleanly() {
    let broker = Broker::stopped();
    for name in ["payment-service", "order-service"] {
        let mut service = ServiceProcess::start(name, &broker, &["--broker-wait-secs", "0"]);
        service.wait_until("the broker is missing", MINUTE, |lines| {
            lines.iter().any(|l| l.contains("still waiting for the Kafka broker"))
        });
        service.stop_gracefully(MINUTE);
        assert!(service.lines().iter().any(|l| l.contains("interrupted while starting")), "{name}");
    }
}

#[test]
fn a_replication_factor_or_partition_count_that_cannot_be_is_a_usage_error() {
    for bad in [["--replication-factor", "0"], ["--replication-factor", "-2"], ["--partitions", "0"]] {
        let output = run("payment-service", &bad);
        assert_eq!(output.status.code(), Some(2), "{bad:?}");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(said.contains(bad[0]), "{bad:?}: {said}");
    }
}
