//! Which orders the services handled, counted by order id from their log lines
//! (each marker is the text before the id), and the assertions over such
//! counts: every order exactly once, or at least once.

use std::collections::BTreeMap;

/// How many times each order id appears in lines containing `marker` followed by
/// the id (e.g. "Payment Successful for Order ").
pub fn count_orders(lines: &[String], marker: &str) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    for line in lines {
        if let Some(rest) = line.split(marker).nth(1) {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(id) = digits.parse() {
                *counts.entry(id).or_default() += 1;
            }
        }
    }
    counts
}

/// The marker of a successful notification.
pub const NOTIFIED: &str = "✅ Payment Successful for Order ";

/// The marker of a notification of a declined payment.
pub const DECLINED_NOTIFIED: &str = "❌ Payment Failed for Order ";

/// The marker of a claim on an email taken over from an instance that never
/// recorded it as sent (notification-service): an email in doubt.
pub const TAKEN_OVER: &str = "which never recorded it as sent";

/// The marker of a claim renewed before its email is sent (notification-service).
pub const RENEWED: &str = "renewing it before sending";

/// The marker of a payment event the broker acknowledged (payment-service).
pub const PAID: &str = "✅ Payment Event Sent: {\"order_id\":";

/// How many emails each order got in these notification-service lines, about
/// a successful payment or a declined one.
pub fn emailed(lines: &[String]) -> BTreeMap<u64, usize> {
    let mut emailed = count_orders(lines, NOTIFIED);
    for (order_id, n) in count_orders(lines, DECLINED_NOTIFIED) {
        *emailed.entry(order_id).or_default() += n;
    }
    emailed
}

/// Asserts every order in `ids` appears exactly once in `counts`, and nothing else.
pub fn assert_exactly_once(counts: &BTreeMap<u64, usize>, ids: std::ops::RangeInclusive<u64>, what: &str) {
    assert_every_order(counts, ids, what, false);
}

/// Asserts every order in `ids` appears in `counts`, maybe more than once, and
/// nothing else (emails across a SIGKILL are at-least-once).
pub fn assert_at_least_once(counts: &BTreeMap<u64, usize>, ids: std::ops::RangeInclusive<u64>, what: &str) {
    assert_every_order(counts, ids, what, true);
}

fn assert_every_order(
    counts: &BTreeMap<u64, usize>,
    ids: std::ops::RangeInclusive<u64>,
    what: &str,
    repeats_allowed: bool,
) {
    let missing: Vec<u64> = ids.clone().filter(|id| !counts.contains_key(id)).collect();
    let repeated: Vec<(&u64, &usize)> = counts.iter().filter(|(_, &n)| n > 1 && !repeats_allowed).collect();
    let strangers: Vec<&u64> = counts.keys().filter(|id| !ids.contains(id)).collect();
    assert!(
        missing.is_empty() && repeated.is_empty() && strangers.is_empty(),
        "{what}: {} missing {:?}, {} repeated {:?}, {} unexpected {:?}",
        missing.len(),
        &missing[..missing.len().min(20)],
        repeated.len(),
        &repeated[..repeated.len().min(20)],
        strangers.len(),
        &strangers[..strangers.len().min(20)],
    );
}
