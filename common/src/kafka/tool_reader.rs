//! Readers outside any consumer group: clients that assign themselves
//! partitions and read a range of them, for tools that look at a topic without
//! taking part in its group (order-trace, the tests, the benchmark, the chaos
//! run's checks). Every call blocks.

use log::debug;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use std::collections::HashMap;
use std::time::Duration;
use thiserror::Error;

/// How long a reader waits for metadata, watermarks or the next record.
const READ_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a read failed; each names the topic and the step.
#[derive(Debug, Error)]
pub enum ReadError {
    #[error("cannot create a Kafka reader for {brokers}: {source}")]
    Create { brokers: String, source: KafkaError },
    #[error("cannot read the metadata of {topic}: {cause}")]
    Metadata { topic: String, cause: String },
    #[error("cannot read the offsets of {topic}[{partition}]: {source}")]
    Watermarks { topic: String, partition: i32, source: KafkaError },
    #[error("cannot read {topic} ({step}): {source}")]
    Read { topic: String, step: &'static str, source: KafkaError },
    #[error("cannot read {topic}: nothing arrived for {} s", READ_TIMEOUT.as_secs())]
    Silent { topic: String },
}

/// A client that reads partitions it assigns itself (see [`reader`]).
pub type Reader = BaseConsumer<ReaderContext>;

/// A reader's context. Its failures come back as the errors of the calls that
/// read, so librdkafka's own lines go to debug: among them the error it logs when
/// a reader closes while logging in to its group coordinator (on a SASL broker).
pub struct ReaderContext;

impl ClientContext for ReaderContext {
    fn log(&self, _: RDKafkaLogLevel, facility: &str, message: &str) {
        debug!(target: "librdkafka", "reader: {facility}: {message}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        debug!(target: "librdkafka", "reader: {error}: {reason}");
    }
}

impl ConsumerContext for ReaderContext {}

/// A client that reads partitions it assigns itself, outside any consumer group's
/// membership. `group` only names whose committed offsets it may look up;
/// `client` says where the broker is and how to reach it (see [`ClientProperties::client_config`](crate::kafka::client::properties::ClientProperties::client_config)).
pub fn reader(client: &ClientConfig, group: &str) -> Result<Reader, ReadError> {
    client
        .clone()
        .set("group.id", group) // never joined: partitions are assigned
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create_with_context(ReaderContext)
        .map_err(|source| ReadError::Create {
            brokers: client.get("bootstrap.servers").unwrap_or_default().to_string(),
            source,
        })
}

/// How many partitions `topic` has. Blocking.
fn partition_count(reader: &Reader, topic: &str) -> Result<i32, ReadError> {
    let failed = |cause: String| ReadError::Metadata { topic: topic.to_string(), cause };
    let metadata = reader.fetch_metadata(Some(topic), READ_TIMEOUT).map_err(|e| failed(e.to_string()))?;
    match metadata.topics().first() {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => Ok(t.partitions().len() as i32),
        Some(t) => Err(failed(format!("{:?}", t.error()))),
        None => Err(failed("no such topic".to_string())),
    }
}

/// The first and one-past-the-last offsets of `topic[partition]`. Blocking.
pub fn watermarks(reader: &Reader, topic: &str, partition: i32) -> Result<(i64, i64), ReadError> {
    reader.fetch_watermarks(topic, partition, READ_TIMEOUT).map_err(|source| ReadError::Watermarks {
        topic: topic.to_string(),
        partition,
        source,
    })
}

/// Reads every record of `topic` from its start to its current end, outside any
/// consumer group, handing each to `each`. Blocking.
pub fn read_to_end(
    client: &ClientConfig,
    topic: &str,
    each: impl FnMut(&BorrowedMessage),
) -> Result<(), ReadError> {
    read_partitions(&reader(client, "read-to-end")?, topic, |low, _| low, each)
}

/// Reads each partition of `topic` with `reader`, from the offset `from(low, high)`
/// (given its watermarks) to its current end. Blocking.
pub fn read_partitions(
    reader: &Reader,
    topic: &str,
    from: impl Fn(i64, i64) -> i64,
    each: impl FnMut(&BorrowedMessage),
) -> Result<(), ReadError> {
    let mut ranges = Vec::new();
    for partition in 0..partition_count(reader, topic)? {
        let (low, high) = watermarks(reader, topic, partition)?;
        ranges.push((partition, from(low, high), high));
    }
    read_ranges(reader, topic, &ranges, each)
}

/// Reads the records of `topic` in each `(partition, from, to)`, `from` included
/// and `to` excluded, handing each to `each`. Blocking.
pub fn read_ranges(
    reader: &Reader,
    topic: &str,
    ranges: &[(i32, i64, i64)],
    mut each: impl FnMut(&BorrowedMessage),
) -> Result<(), ReadError> {
    let fail =
        |step: &'static str, source: KafkaError| ReadError::Read { topic: topic.to_string(), step, source };
    let mut assignment = TopicPartitionList::new();
    let mut end_of: HashMap<i32, i64> = HashMap::new();
    for &(partition, from, to) in ranges.iter().filter(|(_, from, to)| to > from) {
        assignment
            .add_partition_offset(topic, partition, Offset::Offset(from))
            .map_err(|e| fail("assignment", e))?;
        end_of.insert(partition, to);
    }
    reader.assign(&assignment).map_err(|e| fail("assign", e))?;
    while !end_of.is_empty() {
        let message = match reader.poll(READ_TIMEOUT) {
            Some(Ok(message)) => message,
            Some(Err(e)) => return Err(fail("read", e)),
            None => return Err(ReadError::Silent { topic: topic.to_string() }),
        };
        let Some(&end) = end_of.get(&message.partition()) else { continue };
        if message.offset() < end {
            each(&message);
        }
        if message.offset() + 1 >= end {
            end_of.remove(&message.partition());
        }
    }
    Ok(())
}
