//! Reading and writing events: the canonical form every service writes (read
//! by a fast path, see `canonical.rs`), serde_json for any other form, and the
//! checks that make a payload an event.

use crate::wire::canonical;
use crate::wire::event::{
    as_text, InvalidEvent, OrderEvent, Status, MAX_AMOUNT, MAX_ORDER_ID, MAX_PAYLOAD_BYTES,
};
use std::fmt;

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
        let event = match canonical::parse(text) {
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

    /// The JSON bytes of this event in the canonical form (see `canonical.rs`).
    pub fn encode(&self) -> Vec<u8> {
        canonical::write(self)
    }

    /// The message key: the order id, so one order's events share a partition.
    pub fn key(&self) -> String {
        self.order_id.to_string()
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
