//! One order's journey: every record keyed by its id on the pipeline's topics,
//! read from the one partition its key maps to in each, as a timeline.
//!
//! Kafka has no index by key, so each of those partitions is read from its start
//! to its current end: a trace costs one partition's worth of reading per topic.

use crate::partitioner::partition_of;
use common::kafka::tool_reader::{self, ReadError};
use common::wire::event::{OrderEvent, Status};
use rdkafka::consumer::Consumer;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::ClientConfig;
use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// How long the broker may take to answer a metadata request.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What a record says happened to the order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum What {
    Created,
    Paid,
    Declined,
    /// A record with the order's key that is not a valid event on its topic.
    Invalid,
    DeadLettered,
}

impl fmt::Display for What {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            What::Created => "created",
            What::Paid => "paid",
            What::Declined => "declined",
            What::Invalid => "invalid",
            What::DeadLettered => "dead-lettered",
        })
    }
}

/// One record of the order's journey.
#[derive(Debug, Serialize)]
pub struct Step {
    pub what: What,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// The record's Kafka timestamp (its creation time, as set by the producer).
    pub timestamp_ms: Option<i64>,
    /// Since the step before, when both have a timestamp.
    pub since_previous_ms: Option<i64>,
    /// The event, when the record is one.
    pub event: Option<OrderEvent>,
    /// Why: the decline reason, or the error that made the record invalid or dead-lettered.
    pub reason: Option<String>,
    /// Where a dead letter came from and who sent it, e.g. `order_topic[2]@41 by payment-service`.
    pub dead_letter_of: Option<String>,
}

/// The topics of one trace, in the order an order passes through them, each with
/// the statuses a valid event there may have (none: a dead-letter topic).
pub struct Topics<'a>(pub [(&'a str, &'static [Status]); 4]);

/// Reads the partition of `order_id`'s key in each of `topics` and returns its
/// steps in time order, and where it looked (`topic[partition]`; an absent topic
/// is said so).
pub fn trace(
    client: &ClientConfig,
    topics: &Topics,
    order_id: u64,
) -> Result<(Vec<Step>, Vec<String>), ReadError> {
    let reader = tool_reader::reader(client, "order-trace")?;
    let key = order_id.to_string();
    let (mut steps, mut looked) = (Vec::new(), Vec::new());
    for &(topic, accepted) in &topics.0 {
        let metadata = reader
            .fetch_metadata(Some(topic), TIMEOUT)
            .map_err(|e| ReadError::Metadata { topic: topic.to_string(), cause: e.to_string() })?;
        let partitions =
            metadata.topics().first().filter(|t| t.error().is_none()).map_or(0, |t| t.partitions().len());
        if partitions == 0 {
            looked.push(format!("{topic} (absent)"));
            continue;
        }
        let partition = partition_of(key.as_bytes(), partitions as i32);
        looked.push(format!("{topic}[{partition}]"));
        let (first, end) = tool_reader::watermarks(&reader, topic, partition)?;
        tool_reader::read_ranges(&reader, topic, &[(partition, first, end)], |record| {
            if record.key() == Some(key.as_bytes()) {
                steps.push(step(record, accepted));
            }
        })?;
    }
    steps.sort_by_key(|step| step.timestamp_ms);
    for i in 1..steps.len() {
        steps[i].since_previous_ms =
            steps[i].timestamp_ms.zip(steps[i - 1].timestamp_ms).map(|(t, before)| t - before);
    }
    Ok((steps, looked))
}

/// What `record` says, on a topic whose valid events have the `accepted` statuses.
fn step(record: &BorrowedMessage, accepted: &[Status]) -> Step {
    let mut step = Step {
        what: What::DeadLettered,
        topic: record.topic().to_string(),
        partition: record.partition(),
        offset: record.offset(),
        timestamp_ms: record.timestamp().to_millis(),
        since_previous_ms: None,
        event: None,
        reason: None,
        dead_letter_of: None,
    };
    if accepted.is_empty() {
        let header = |name: &str| {
            let headers = record.headers()?;
            let value = headers.iter().find(|h| h.key == name)?.value?;
            Some(String::from_utf8_lossy(value).into_owned())
        };
        step.reason = header("dlq.error");
        step.dead_letter_of = Some(format!(
            "{}[{}]@{} by {}",
            header("dlq.source.topic").unwrap_or_else(|| "?".into()),
            header("dlq.source.partition").unwrap_or_else(|| "?".into()),
            header("dlq.source.offset").unwrap_or_else(|| "?".into()),
            header("dlq.service").unwrap_or_else(|| "?".into()),
        ));
        return step;
    }
    match OrderEvent::decode(record.payload(), accepted) {
        Ok(event) => {
            step.what = match event.status {
                Status::Created => What::Created,
                Status::PaymentSuccessful => What::Paid,
                Status::PaymentFailed => What::Declined,
            };
            step.reason = event.reason.clone();
            step.event = Some(event);
        }
        Err(invalid) => {
            step.what = What::Invalid;
            step.reason = Some(invalid.to_string());
        }
    }
    step
}
