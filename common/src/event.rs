//! The events on the wire: one JSON object per Kafka message, keyed by order id.
//!
//! The field names and status strings are the original demo's, so any Kafka client
//! can read and write them. Fields added since (`reason`, `created_at_ms`) are
//! optional on read: a message with only the original four fields is accepted.
//! Events are written in one canonical form, which is also read fast; serde_json
//! reads any other (see `canonical.rs`).

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

/// The most of a parser's message kept: it may quote the input (a string of
/// any length where a number belongs), and it goes into a log line and a header.
const MAX_REASON_CHARS: usize = 300;

/// `reason`, cut to [`MAX_REASON_CHARS`] characters.
fn bounded(mut reason: String) -> String {
    if let Some((cut, _)) = reason.char_indices().nth(MAX_REASON_CHARS) {
        reason.truncate(cut);
        reason.push('…');
    }
    reason
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

impl OrderEvent {
    /// Parses and validates a payload read from a topic whose events may carry only
    /// the `accepted` statuses.
    pub fn decode(payload: Option<&[u8]>, accepted: &[Status]) -> Result<OrderEvent, InvalidEvent> {
        let bytes = match payload {
            None | Some([]) => return Err(InvalidEvent::Empty),
            Some(b) if b.len() > MAX_PAYLOAD_BYTES => return Err(InvalidEvent::Oversized(b.len())),
            Some(b) => b,
        };
        let text = std::str::from_utf8(bytes).map_err(|_| InvalidEvent::NotUtf8)?;
        let event = match crate::canonical::parse(text) {
            Some(event) => event,
            None => serde_json::from_str(text).map_err(|e| InvalidEvent::NotJson(bounded(e.to_string())))?,
        };
        if !(event.amount.is_finite() && event.amount > 0.0 && event.amount <= MAX_AMOUNT) {
            return Err(InvalidEvent::BadAmount(event.amount));
        }
        if event.order_id > MAX_ORDER_ID {
            return Err(InvalidEvent::OrderIdTooLarge(event.order_id));
        }
        if !accepted.contains(&event.status) {
            return Err(InvalidEvent::UnexpectedStatus(event.status));
        }
        Ok(event)
    }

    /// The JSON bytes of this event (see `canonical.rs`).
    pub fn encode(&self) -> Vec<u8> {
        crate::canonical::write(self)
    }

    /// The message key: the order id, so one order's events share a partition.
    pub fn key(&self) -> String {
        self.order_id.to_string()
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

impl fmt::Display for OrderEvent {
    /// Shows the event as the JSON it travels as, the way the original demo logged it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&as_text(&self.encode()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: &[Status] = &[Status::Created];

    #[test]
    fn a_reason_that_quotes_a_long_input_is_cut() {
        let payload = format!(
            r#"{{"order_id":"{}","user_id":1,"amount":1.0,"status":"order_created"}}"#,
            "9".repeat(60_000)
        );
        let Err(InvalidEvent::NotJson(reason)) = OrderEvent::decode(Some(payload.as_bytes()), ORDER) else {
            panic!("a string order id is not an order");
        };
        assert_eq!(reason.chars().count(), MAX_REASON_CHARS + 1, "{reason}");
        assert!(reason.ends_with('…'));
    }

    fn order() -> OrderEvent {
        OrderEvent {
            order_id: 1001,
            user_id: 18,
            amount: 120.5,
            status: Status::Created,
            reason: None,
            created_at_ms: Some(1_764_000_000_000),
        }
    }

    #[test]
    fn round_trips_through_json() {
        let event = order();
        assert_eq!(OrderEvent::decode(Some(&event.encode()), ORDER), Ok(event));
    }

    #[test]
    fn failed_payment_round_trips_with_its_reason() {
        let event =
            OrderEvent { status: Status::PaymentFailed, reason: Some("card declined".into()), ..order() };
        let json = String::from_utf8(event.encode()).unwrap();
        assert!(json.contains(r#""status":"payment_failed""#), "{json}");
        assert!(json.contains(r#""reason":"card declined""#), "{json}");
        assert_eq!(OrderEvent::decode(Some(json.as_bytes()), &[Status::PaymentFailed]), Ok(event));
    }

    #[test]
    fn displays_as_the_json_it_travels_as() {
        let reason = "carte refusée: \"¡no!\"\n💳".to_string();
        let event = OrderEvent { status: Status::PaymentFailed, reason: Some(reason), ..order() };
        assert_eq!(event.to_string().into_bytes(), event.encode());
    }

    #[test]
    fn accepts_the_original_four_fields() {
        let original = br#"{"order_id": 1001, "user_id": 18, "amount": 120.5, "status": "created"}"#;
        let event = OrderEvent::decode(Some(original), ORDER).unwrap();
        assert_eq!(event, OrderEvent { created_at_ms: None, ..order() });
    }

    #[test]
    fn accepts_order_ids_up_to_the_bound() {
        let highest = OrderEvent { order_id: MAX_ORDER_ID, ..order() };
        assert_eq!(OrderEvent::decode(Some(&highest.encode()), ORDER), Ok(highest));
        assert_eq!(MAX_ORDER_ID, 9_007_199_254_740_991);
    }

    #[test]
    fn writes_the_original_field_names_and_status_strings() {
        let value: serde_json::Value = serde_json::from_slice(&order().encode()).unwrap();
        assert_eq!(value["order_id"], 1001);
        assert_eq!(value["user_id"], 18);
        assert_eq!(value["amount"], 120.5);
        assert_eq!(value["status"], "created");
        assert!(value.get("reason").is_none());
        let paid = OrderEvent { status: Status::PaymentSuccessful, ..order() }.encode();
        assert!(String::from_utf8(paid).unwrap().contains(r#""status":"payment_successful""#));
    }

    #[test]
    fn rejects_what_is_not_an_order() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty"),
            (b"\xff\xfe", "UTF-8"),
            (b"not json", "not a valid event"),
            (br#"{"order_id": 1, "user_id": 2, "status": "created"}"#, "missing field"),
            (br#"{"order_id": "x", "user_id": 2, "amount": 1.0, "status": "created"}"#, "invalid type"),
            (br#"{"order_id": 1, "user_id": 2, "amount": -5, "status": "created"}"#, "bad amount"),
            (br#"{"order_id": 1, "user_id": 2, "amount": 0, "status": "created"}"#, "bad amount"),
            (br#"{"order_id": 1, "user_id": 2, "amount": 1e300, "status": "created"}"#, "bad amount"),
            (br#"{"order_id": 1, "user_id": 2, "amount": 1.0, "status": "shipped"}"#, "unknown variant"),
            (
                br#"{"order_id": 9007199254740992, "user_id": 2, "amount": 1.0, "status": "created"}"#,
                "order id 9007199254740992 is above 9007199254740991",
            ),
            (
                br#"{"order_id":18446744073709551615,"user_id":2,"amount":1.0,"status":"created"}"#,
                "order id 18446744073709551615 is above 9007199254740991",
            ),
            (
                br#"{"order_id": 1, "user_id": 2, "amount": 1.0, "status": "payment_failed"}"#,
                "unexpected status",
            ),
        ];
        for (payload, why) in cases {
            let err = OrderEvent::decode(Some(payload), ORDER).unwrap_err().to_string();
            assert!(err.contains(why), "{payload:?}: expected {why:?} in {err:?}");
        }
        assert_eq!(OrderEvent::decode(None, ORDER), Err(InvalidEvent::Empty));
        let huge = vec![b' '; MAX_PAYLOAD_BYTES + 1];
        assert!(matches!(OrderEvent::decode(Some(&huge), ORDER), Err(InvalidEvent::Oversized(_))));
    }
}
