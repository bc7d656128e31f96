//! The events on the wire: one JSON object per Kafka message, keyed by order id.
//!
//! The field names and status strings are the original demo's, so any Kafka client
//! can read and write them. Fields added since (`reason`, `created_at_ms`) are
//! optional on read: a message with only the original four fields is accepted.
//! How they are read and written: `codec.rs`.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// Payloads larger than this are not orders; they go to the dead-letter topic.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;

/// Amounts above this are rejected as absurd (no order in this shop costs a million).
pub const MAX_AMOUNT: f64 = 1_000_000.0;

/// The highest order id, 2^53 - 1: the largest integer a double holds exactly, so
/// readers that take JSON numbers as doubles (JavaScript, and many Python tools)
/// read every order id as it was written.
pub const MAX_ORDER_ID: u64 = (1 << 53) - 1;

/// Where an order is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Created,
    PaymentSuccessful,
    PaymentFailed,
}

/// One order event, as published on `order_topic` and `payment_topic`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderEvent {
    pub order_id: u64,
    pub user_id: u64,
    pub amount: f64,
    pub status: Status,
    /// Why a payment failed; only on `payment_failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the order was created, in milliseconds since the Unix epoch; carried
    /// through every hop so end-to-end latency can be measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at_ms: Option<u64>,
}

/// Why a Kafka message is not a valid event. The text goes into the dead-letter header.
#[derive(Clone, Debug, PartialEq)]
pub enum InvalidEvent {
    Empty,
    Oversized(usize),
    NotUtf8,
    NotJson(String),
    BadAmount(f64),
    OrderIdTooLarge(u64),
    UnexpectedStatus(Status),
}

impl fmt::Display for InvalidEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidEvent::Empty => write!(f, "empty payload"),
            InvalidEvent::Oversized(len) => {
                write!(f, "oversized payload: {len} bytes (limit {MAX_PAYLOAD_BYTES})")
            }
            InvalidEvent::NotUtf8 => write!(f, "payload is not UTF-8"),
            InvalidEvent::NotJson(e) => write!(f, "not a valid event: {e}"),
            InvalidEvent::BadAmount(a) => {
                write!(f, "bad amount {a}: must be finite, above 0 and at most {MAX_AMOUNT}")
            }
            InvalidEvent::OrderIdTooLarge(id) => {
                write!(f, "order id {id} is above {MAX_ORDER_ID} (2^53 - 1), the highest order id")
            }
            InvalidEvent::UnexpectedStatus(s) => write!(f, "unexpected status {s:?} on this topic"),
        }
    }
}

/// A payload as text for a log line: as it is when it is UTF-8 (checked several
/// times faster than `String::from_utf8_lossy` checks it), else with its bad
/// bytes replaced.
pub fn as_text(payload: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(payload) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(payload),
    }
}
