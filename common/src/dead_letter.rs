//! A dead letter: a consumed record that cannot be handled, copied to its
//! topic's dead-letter topic (`<topic>.dlq`) with why, and where it came from.

use crate::kafka::dead_letter_topic;
use crate::messages::{Publish, Ticket};

/// The most of a bad record's bytes a dead letter carries: under librdkafka's
/// default `message.max.bytes` (1,000,000), with room for the headers.
const DEAD_LETTER_MAX_BYTES: usize = 900_000;

/// Where a dead letter's record was read.
pub struct Source<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// The service that gave up on it.
    pub service: &'a str,
}

/// The dead letter of the record `key`/`payload` read at `source`, refused
/// because of `why`; `ticket` completes once the broker has it.
pub fn dead_letter(
    source: &Source<'_>,
    key: Option<Vec<u8>>,
    payload: &[u8],
    why: String,
    ticket: Ticket,
) -> Publish {
    let mut headers = vec![
        ("dlq.error", why),
        ("dlq.source.topic", source.topic.to_string()),
        ("dlq.source.partition", source.partition.to_string()),
        ("dlq.source.offset", source.offset.to_string()),
        ("dlq.service", source.service.to_string()),
    ];
    // A record may be larger than our producer may send (1 MB with headers):
    // keep its head, say so, and the dead letter goes out.
    if payload.len() > DEAD_LETTER_MAX_BYTES {
        headers.push(("dlq.truncated.from.bytes", payload.len().to_string()));
    }
    Publish {
        topic: dead_letter_topic(source.topic).into(),
        partition: None,
        key,
        payload: payload[..payload.len().min(DEAD_LETTER_MAX_BYTES)].to_vec(),
        headers: headers.into(),
        ticket,
        announce: None,
    }
}
