//! The canonical form of an event: the JSON every service writes, and a
//! reader for exactly that form, four times cheaper than serde_json's derived one.
//!
//! Every service writes this form, so nearly every record read is in it. Anything
//! else (other field order, whitespace, escapes, exponents, unknown fields) is
//! not parsed here: `codec.rs` hands it to serde_json, which stays the
//! judge of what is valid. What is parsed here, serde_json parses the same way
//! (the tests check it): the numbers taken are those both read exactly.

use crate::wire::event::{OrderEvent, Status};
use serde::Serialize;

/// The bytes `serde_json::to_vec` makes of `event` (its derived `Serialize` is
/// the reference, see the tests), written field by field with serde_json
/// formatting each value: the derived code also escapes every field name.
pub fn write(event: &OrderEvent) -> Vec<u8> {
    let mut json = Vec::with_capacity(128);
    json.extend_from_slice(b"{\"order_id\":");
    write_value(&mut json, &event.order_id);
    json.extend_from_slice(b",\"user_id\":");
    write_value(&mut json, &event.user_id);
    json.extend_from_slice(b",\"amount\":");
    write_value(&mut json, &event.amount);
    json.extend_from_slice(b",\"status\":");
    write_value(&mut json, &event.status);
    if let Some(reason) = &event.reason {
        json.extend_from_slice(b",\"reason\":");
        write_value(&mut json, reason);
    }
    if let Some(created_at_ms) = event.created_at_ms {
        json.extend_from_slice(b",\"created_at_ms\":");
        write_value(&mut json, &created_at_ms);
    }
    json.push(b'}');
    json
}

fn write_value<T: Serialize + ?Sized>(json: &mut Vec<u8>, value: &T) {
    serde_json::to_writer(json, value).expect("numbers, strings and statuses always serialize");
}

/// The event, if `text` is in the canonical form; `None` says only "not in that
/// form" (it may still be valid JSON, or not).
pub fn parse(text: &str) -> Option<OrderEvent> {
    let mut rest = text;
    let order_id = field(&mut rest, "{\"order_id\":", integer)?;
    let user_id = field(&mut rest, ",\"user_id\":", integer)?;
    let amount = field(&mut rest, ",\"amount\":", decimal)?;
    let status = field(&mut rest, ",\"status\":", status)?;
    let reason = optional_field(&mut rest, ",\"reason\":", plain_string)?;
    let created_at_ms = optional_field(&mut rest, ",\"created_at_ms\":", integer)?;
    (rest == "}").then_some(OrderEvent { order_id, user_id, amount, status, reason, created_at_ms })
}

/// Takes `name` and a value read by `value` from the front of `rest`.
fn field<T>(rest: &mut &str, name: &str, value: fn(&mut &str) -> Option<T>) -> Option<T> {
    *rest = rest.strip_prefix(name)?;
    value(rest)
}

/// `Some(None)` when `rest` does not start with `name`; `None` when the value after it is not canonical.
fn optional_field<T>(rest: &mut &str, name: &str, value: fn(&mut &str) -> Option<T>) -> Option<Option<T>> {
    match rest.strip_prefix(name) {
        Some(after) => {
            *rest = after;
            value(rest).map(Some)
        }
        None => Some(None),
    }
}

/// Takes the leading ASCII digits of `rest`.
fn digits<'a>(rest: &mut &'a str) -> &'a str {
    let end = rest.bytes().position(|b| !b.is_ascii_digit()).unwrap_or(rest.len());
    let (digits, after) = rest.split_at(end);
    *rest = after;
    digits
}

/// Takes the digits of a whole number as JSON writes it: at least one, no leading zero.
fn whole_number<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let digits = digits(rest);
    let leading_zero = digits.len() > 1 && digits.starts_with('0');
    (!digits.is_empty() && !leading_zero).then_some(digits)
}

/// A u64 as JSON writes it: no sign, no leading zero, no overflow.
fn integer(rest: &mut &str) -> Option<u64> {
    whole_number(rest)?.parse().ok()
}

/// A decimal without sign or exponent, of at most 15 significant digits: every
/// such number has one nearest f64, which both this parser and serde_json's find.
fn decimal(rest: &mut &str) -> Option<f64> {
    let start = *rest;
    let mut significant = whole_number(rest)?.len();
    if let Some(after_point) = rest.strip_prefix('.') {
        *rest = after_point;
        let fraction = digits(rest);
        if fraction.is_empty() {
            return None;
        }
        significant += fraction.len();
    }
    if significant > 15 || rest.starts_with(['e', 'E']) {
        return None;
    }
    start[..start.len() - rest.len()].parse().ok()
}

fn status(rest: &mut &str) -> Option<Status> {
    [
        ("\"created\"", Status::Created),
        ("\"payment_successful\"", Status::PaymentSuccessful),
        ("\"payment_failed\"", Status::PaymentFailed),
    ]
    .into_iter()
    .find_map(|(text, status)| {
        let after = rest.strip_prefix(text)?;
        *rest = after;
        Some(status)
    })
}

/// A string without escapes or control characters: its text is its value.
fn plain_string(rest: &mut &str) -> Option<String> {
    let inner = rest.strip_prefix('"')?;
    let end = inner.bytes().position(|b| b == b'"' || b == b'\\' || b < 0x20)?;
    if inner.as_bytes()[end] != b'"' {
        return None;
    }
    *rest = &inner[end + 1..];
    Some(inner[..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events() -> impl Iterator<Item = OrderEvent> {
        let reasons = [None, Some("card declined"), Some("carte refusée: \"¡no!\"\n💳\u{1}\\")];
        let amounts = [120.5, 0.01, 1.0, 1e-7, 999_999.99, 0.1 + 0.2, 1e21, f64::NAN, f64::INFINITY];
        let statuses = [Status::Created, Status::PaymentSuccessful, Status::PaymentFailed];
        statuses
            .into_iter()
            .flat_map(move |s| reasons.map(|r| (s, r)))
            .flat_map(move |(s, r)| amounts.map(|a| (s, r, a)))
            .flat_map(|(s, r, a)| [None, Some(0), Some(u64::MAX)].map(|c| (s, r, a, c)))
            .map(|(status, reason, amount, created_at_ms)| OrderEvent {
                order_id: u64::MAX,
                user_id: 0,
                amount,
                status,
                reason: reason.map(str::to_string),
                created_at_ms,
            })
    }

    #[test]
    fn writes_the_bytes_serde_derives() {
        for event in events() {
            assert_eq!(write(&event), serde_json::to_vec(&event).unwrap(), "{event:?}");
        }
    }

    /// What `parse` takes, serde_json reads as the same event.
    fn agrees_with_serde(text: &str) -> bool {
        let fast = parse(text);
        if let Some(event) = &fast {
            let by_serde: OrderEvent = serde_json::from_str(text).expect("canonical text is valid JSON");
            assert_eq!(event.amount.to_bits(), by_serde.amount.to_bits(), "{text}");
            assert_eq!(event, &by_serde, "{text}");
        }
        fast.is_some()
    }

    #[test]
    fn reads_what_it_writes_as_serde_does() {
        for event in events() {
            agrees_with_serde(&String::from_utf8(write(&event)).unwrap());
        }
        // Orders as order-service makes them, and their payments: all canonical.
        for cents in (100..=50_000).step_by(7) {
            let order = OrderEvent {
                order_id: 1000 + cents,
                user_id: 1 + cents % 100,
                amount: cents as f64 / 100.0,
                status: Status::Created,
                reason: None,
                created_at_ms: Some(1_764_000_000_000 + cents),
            };
            let declined = OrderEvent {
                status: Status::PaymentFailed,
                reason: Some("card declined".into()),
                ..order.clone()
            };
            for event in [order, declined] {
                assert!(agrees_with_serde(&String::from_utf8(write(&event)).unwrap()), "{event:?}");
            }
        }
    }

    #[test]
    fn leaves_any_other_form_to_serde() {
        let other = [
            r#"{"order_id": 1, "user_id": 2, "amount": 1.5, "status": "created"}"#, // whitespace
            r#"{"user_id":2,"order_id":1,"amount":1.5,"status":"created"}"#,        // order
            r#"{"order_id":01,"user_id":2,"amount":1.5,"status":"created"}"#,       // leading zero
            r#"{"order_id":1,"user_id":2,"amount":01.5,"status":"created"}"#,
            r#"{"order_id":1,"user_id":2,"amount":1.,"status":"created"}"#,
            r#"{"order_id":1,"user_id":2,"amount":1.5e2,"status":"created"}"#,
            r#"{"order_id":1,"user_id":2,"amount":-1.5,"status":"created"}"#,
            r#"{"order_id":1,"user_id":2,"amount":1.2345678901234567,"status":"created"}"#,
            r#"{"order_id":18446744073709551616,"user_id":2,"amount":1.5,"status":"created"}"#,
            r#"{"order_id":1,"user_id":2,"amount":1.5,"status":"shipped"}"#,
            r#"{"order_id":1,"user_id":2,"amount":1.5,"status":"payment_failed","reason":"a\"b"}"#,
            r#"{"order_id":1,"user_id":2,"amount":1.5,"status":"payment_failed","reason":"a\u0041"}"#,
            r#"{"order_id":1,"user_id":2,"amount":1.5,"status":"created","extra":1}"#,
            r#"{"order_id":1,"user_id":2,"amount":1.5,"status":"created"} "#,
            r#"{"order_id":1,"user_id":2,"amount":1.5,"status":"created""#,
            r#"{"order_id":1,"user_id":2,"amount":1.5}"#,
        ];
        for text in other {
            assert_eq!(parse(text), None, "{text}");
        }
        assert!(agrees_with_serde(r#"{"order_id":1,"user_id":2,"amount":1.5,"status":"created"}"#));
    }
}
