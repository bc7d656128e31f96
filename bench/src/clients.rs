//! The ceiling's Kafka clients, made by the services' own `common::kafka`
//! functions, so both sides run with the same client settings (idempotent
//! producer with acks=all and linger.ms=5; consumer storing offsets by hand,
//! committing every second; the same fetch.wait.max.ms), plus a signal for when
//! a consumer has its partitions.

use clap::Parser;
use common::config::KafkaArgs;
use common::kafka::{KafkaContext, RebalanceHooks};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::FutureProducer;
use std::sync::Arc;
use tokio::sync::watch;

/// The services' Kafka flags, parsed the way a service parses them.
#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    kafka: KafkaArgs,
}

/// The Kafka settings a service would have with `--brokers` and `--fetch-wait-ms`.
pub fn settings(brokers: &str, fetch_wait_ms: u32) -> Result<KafkaArgs, String> {
    let wait = fetch_wait_ms.to_string();
    Flags::try_parse_from(["ceiling", "--brokers", brokers, "--fetch-wait-ms", &wait])
        .map(|flags| flags.kafka)
        .map_err(|e| format!("the ceiling's Kafka settings: {e}"))
}

/// The services' producer.
pub fn producer(kafka: &KafkaArgs, name: &str) -> Result<FutureProducer<KafkaContext>, String> {
    common::kafka::producer(kafka, name)
}

/// The services' consumer, subscribed to `topic` in `group`; the receiver turns
/// true once it has partitions.
pub fn consumer(
    kafka: &KafkaArgs,
    name: &str,
    group: &str,
    topic: &str,
) -> Result<(Arc<StreamConsumer<KafkaContext>>, watch::Receiver<bool>), String> {
    let consumer = common::kafka::consumer(kafka, name, group, topic, false)?;
    let (assigned, ready) = watch::channel(false);
    consumer.context().set_rebalance_hooks(RebalanceHooks {
        before_revoke: Box::new(|| {}),
        after_assign: Box::new(move |_, _| {
            assigned.send_replace(true);
        }),
    });
    Ok((consumer, ready))
}

/// Creates the `topics` (as many partitions as the services' topics) if missing.
pub async fn create_topics(kafka: &KafkaArgs, topics: &[String]) -> Result<(), String> {
    common::kafka::prepare(kafka, "ceiling", topics).await
}
