//! What must hold after the storm, checked from the topics themselves (orders,
//! payment events, dead letters) and, for emails, from notification-service's
//! log lines (only it knows what it sent).

use crate::pipeline::{Pipeline, EMAILED};
use crate::poison::Poison;
use common::event::{OrderEvent, Status};
use harness::logline::{order_after, timestamp_ms};
use harness::{records_on_topic, Broker};
use std::collections::{BTreeMap, BTreeSet};

/// What the run left behind.
pub struct Observed {
    /// Valid orders on `order_topic`, by id.
    pub created: BTreeSet<u64>,
    /// Payment events on `payment_topic`, by order id, in topic order.
    pub payments: BTreeMap<u64, Vec<OrderEvent>>,
    /// Emails by order id: (log timestamp in ms, sent by a SIGKILLed instance).
    pub emails: BTreeMap<u64, Vec<(u64, bool)>>,
    /// Poison records not found in `order_topic.dlq`.
    pub poison_missing: Vec<Poison>,
    pub poison_injected: usize,
    pub dead_lettered: usize,
}

/// Reads what the run left behind.
pub fn observe(broker: &Broker, pipeline: &Pipeline, poison: &[Poison]) -> Observed {
    let created = records_on_topic(broker, "order_topic")
        .iter()
        .filter_map(|r| OrderEvent::decode(Some(&r.payload), &[Status::Created]).ok())
        .map(|order| order.order_id)
        .collect();
    let mut payments: BTreeMap<u64, Vec<OrderEvent>> = BTreeMap::new();
    for record in records_on_topic(broker, "payment_topic") {
        if let Ok(payment) =
            OrderEvent::decode(Some(&record.payload), &[Status::PaymentSuccessful, Status::PaymentFailed])
        {
            payments.entry(payment.order_id).or_default().push(payment);
        }
    }
    let mut emails: BTreeMap<u64, Vec<(u64, bool)>> = BTreeMap::new();
    let (killed, running) = pipeline.notification_lines();
    for (lines, by_killed) in [(killed, true), (running, false)] {
        for line in &lines {
            let Some(id) = EMAILED.iter().find_map(|marker| order_after(line, marker)) else { continue };
            emails.entry(id).or_default().push((timestamp_ms(line).unwrap_or_default(), by_killed));
        }
    }
    let dead_letters = records_on_topic(broker, "order_topic.dlq");
    let in_dlq = |p: &Poison| {
        dead_letters.iter().any(|d| match &p.key {
            Some(key) => d.key.as_deref() == Some(key.as_bytes()),
            None => d.key.is_none() && d.payload == p.payload,
        })
    };
    Observed {
        created,
        payments,
        emails,
        poison_missing: poison.iter().filter(|p| !in_dlq(p)).cloned().collect(),
        poison_injected: poison.len(),
        dead_lettered: dead_letters.len(),
    }
}

/// One invariant, and whether it held.
pub struct Check {
    pub name: &'static str,
    pub holds: bool,
    pub detail: String,
}

/// The figures of the run and the invariants checked.
pub struct Outcome {
    pub created: usize,
    pub paid: usize,
    pub declined: usize,
    pub paid_twice: usize,
    pub emailed: usize,
    pub emailed_twice: usize,
    pub dead_lettered: usize,
    pub poison_injected: usize,
    pub lost: usize,
    pub p99_latency_ms: u64,
    /// When each email was logged, in ms since the Unix epoch, sorted.
    pub email_times: Vec<u64>,
    pub checks: Vec<Check>,
}

/// Checks the invariants of a run asked to make `orders` orders, which settled
/// (every order emailed in time) or not, and whose services that did not stop
/// gracefully are `not_stopped`.
pub fn check(seen: &Observed, orders: u64, settled: bool, not_stopped: &[String]) -> Outcome {
    let first_status = |id: &u64| seen.payments.get(id).and_then(|p| p.first()).map(|p| p.status);
    let paid = seen.created.iter().filter(|id| first_status(id) == Some(Status::PaymentSuccessful)).count();
    let declined = seen.created.iter().filter(|id| first_status(id) == Some(Status::PaymentFailed)).count();
    let unpaid: Vec<u64> =
        seen.created.iter().filter(|id| !seen.payments.contains_key(id)).copied().collect();
    let paid_twice: Vec<u64> = seen.payments.iter().filter(|(_, p)| p.len() > 1).map(|(id, _)| *id).collect();
    let strangers: Vec<u64> = seen.payments.keys().filter(|id| !seen.created.contains(id)).copied().collect();
    let unemailed: Vec<u64> =
        seen.payments.keys().filter(|id| !seen.emails.contains_key(id)).copied().collect();
    let emailed_twice: Vec<u64> =
        seen.emails.iter().filter(|(_, e)| e.len() > 1).map(|(id, _)| *id).collect();
    // A second email is allowed only if one copy came from a SIGKILLed instance:
    // it had sent it but not yet committed the payment event's offset.
    let twice_unexplained: Vec<u64> = emailed_twice
        .iter()
        .filter(|id| !seen.emails[id].iter().any(|&(_, by_killed)| by_killed))
        .copied()
        .collect();
    let lost = unpaid.len() + unemailed.len() + seen.poison_missing.len();
    let some = |ids: &[u64]| format!("{:?}", &ids[..ids.len().min(10)]);
    let checks = vec![
        Check {
            name: "order-service made every order asked for, each id once",
            holds: seen.created.len() as u64 == orders,
            detail: format!("{} of {orders} on order_topic", seen.created.len()),
        },
        Check {
            name: "every created order has exactly one payment event",
            holds: unpaid.is_empty() && paid_twice.is_empty() && strangers.is_empty(),
            detail: format!(
                "{} without {}, {} paid twice {}, {} not created {}",
                unpaid.len(),
                some(&unpaid),
                paid_twice.len(),
                some(&paid_twice),
                strangers.len(),
                some(&strangers)
            ),
        },
        Check {
            name: "every payment event led to an email",
            holds: unemailed.is_empty() && settled,
            detail: format!("{} not emailed {}", unemailed.len(), some(&unemailed)),
        },
        Check {
            name: "an order emailed twice only across a SIGKILL",
            holds: twice_unexplained.is_empty(),
            detail: format!(
                "{} emailed twice, {} of them unexplained {}",
                emailed_twice.len(),
                twice_unexplained.len(),
                some(&twice_unexplained)
            ),
        },
        Check {
            name: "every poison record is in order_topic.dlq",
            holds: seen.poison_missing.is_empty(),
            detail: format!(
                "{} of {} missing {:?}",
                seen.poison_missing.len(),
                seen.poison_injected,
                seen.poison_missing.iter().map(|p| p.kind).collect::<Vec<_>>()
            ),
        },
        Check {
            name: "every service stopped gracefully",
            holds: not_stopped.is_empty(),
            detail: if not_stopped.is_empty() { "all exited 0".into() } else { not_stopped.join(", ") },
        },
        Check { name: "nothing lost", holds: lost == 0, detail: format!("{lost} lost") },
    ];
    Outcome {
        created: seen.created.len(),
        paid,
        declined,
        paid_twice: paid_twice.len(),
        emailed: seen.emails.len(),
        emailed_twice: emailed_twice.len(),
        dead_lettered: seen.dead_lettered,
        poison_injected: seen.poison_injected,
        lost,
        p99_latency_ms: p99_latency_ms(seen),
        email_times: {
            let mut times: Vec<u64> = seen.emails.values().flatten().map(|&(at, _)| at).collect();
            times.sort_unstable();
            times
        },
        checks,
    }
}

/// The 99th percentile of first email time minus the order's `created_at_ms`.
fn p99_latency_ms(seen: &Observed) -> u64 {
    let mut latencies: Vec<u64> = seen
        .emails
        .iter()
        .filter_map(|(id, emails)| {
            let created = seen.payments.get(id)?.first()?.created_at_ms?;
            let first = emails.iter().map(|&(at, _)| at).min()?;
            Some(first.saturating_sub(created))
        })
        .collect();
    latencies.sort_unstable();
    latencies.get((latencies.len() * 99 / 100).min(latencies.len().saturating_sub(1))).copied().unwrap_or(0)
}
