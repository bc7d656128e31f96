//! What must hold after the storm, checked from the topics themselves (orders,
//! payment events, dead letters), the services' stores (payment-service's
//! charge records, notification-service's email records: `harness::store`) and,
//! for the emails sent, every notification-service process's log lines (only
//! they know what went out), killed ones included.
//!
//! The checks are named as Jepsen names them: `lost` (created, and after the
//! drain never charged, published or emailed), `duplicate` (charged twice, or
//! emailed twice without being in doubt), `unseen` (not emailed yet when the
//! drain's deadline passed: maybe late, maybe lost).

use crate::pipeline::{Drain, Pipeline, EMAILED};
use crate::poison::Poison;
use common::wire::event::{OrderEvent, Status};
use harness::logline::{order_after, timestamp_ms};
use harness::store::{Charge, Email};
use harness::{records_on_topic, store_path, Broker};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// What the run left behind.
pub struct Observed {
    /// Valid orders on `order_topic`, by id.
    pub created: BTreeSet<u64>,
    /// Payment events on `payment_topic`, by order id, in topic order: the bytes
    /// and the event read from them.
    pub payments: BTreeMap<u64, Vec<(Vec<u8>, OrderEvent)>>,
    /// payment-service's charge records, by order id.
    pub charges: BTreeMap<u64, Charge>,
    /// notification-service's email records, by order id.
    pub email_records: BTreeMap<u64, Email>,
    /// A store that could not be read, and why.
    pub store_errors: Vec<String>,
    /// Emails sent, by order id: when each was logged (ms since the Unix epoch).
    pub emails: BTreeMap<u64, Vec<u64>>,
    /// Claims taken over from an instance that never recorded the email as sent.
    pub takeovers: usize,
    /// Claims renewed before their email was sent (the claim was old by then).
    pub renewals: usize,
    /// Poison records not found in `order_topic.dlq`.
    pub poison_missing: Vec<Poison>,
    pub poison_injected: usize,
    pub dead_lettered: usize,
}

/// Reads a store with `read`; an unreadable one is an error, not a panic.
pub fn read_store<T: Default>(path: &Path, read: fn(&Path) -> T, errors: &mut Vec<String>) -> T {
    if !path.exists() {
        errors.push(format!("no store at {}", path.display()));
        return T::default();
    }
    let silent = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(|| read(path));
    std::panic::set_hook(silent);
    result.unwrap_or_else(|why| {
        let why = why.downcast_ref::<String>().cloned().unwrap_or_else(|| "unreadable".into());
        errors.push(why);
        T::default()
    })
}

/// Reads what the run left behind.
pub fn observe(broker: &Broker, pipeline: &Pipeline, poison: &[Poison]) -> Observed {
    let created = records_on_topic(broker, "order_topic")
        .iter()
        .filter_map(|r| OrderEvent::decode(Some(&r.payload), &[Status::Created]).ok())
        .map(|order| order.order_id)
        .collect();
    let mut payments: BTreeMap<u64, Vec<(Vec<u8>, OrderEvent)>> = BTreeMap::new();
    for record in records_on_topic(broker, "payment_topic") {
        if let Ok(payment) =
            OrderEvent::decode(Some(&record.payload), &[Status::PaymentSuccessful, Status::PaymentFailed])
        {
            payments.entry(payment.order_id).or_default().push((record.payload, payment));
        }
    }
    let mut store_errors = Vec::new();
    let charges = read_store(
        &store_path(&broker.address, "payment-service"),
        harness::store::charges,
        &mut store_errors,
    );
    let email_records = read_store(
        &store_path(&broker.address, "notification-service"),
        harness::store::emails,
        &mut store_errors,
    );
    let mut emails: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let notification_lines = pipeline.notification_lines();
    let logged = |marker: &str| notification_lines.iter().filter(|line| line.contains(marker)).count();
    let (takeovers, renewals) = (logged(harness::TAKEN_OVER), logged(harness::RENEWED));
    for line in &notification_lines {
        let Some(id) = EMAILED.iter().find_map(|marker| order_after(line, marker)) else { continue };
        emails.entry(id).or_default().push(timestamp_ms(line).unwrap_or_default());
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
        charges,
        email_records,
        store_errors,
        emails,
        takeovers,
        renewals,
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
    /// Orders with more than one payment event (identical copies allowed).
    pub paid_twice: usize,
    /// Orders decided twice: a payment event unlike the order's charge record.
    pub charged_twice: usize,
    /// Payment events beyond each order's first.
    pub payment_event_copies: usize,
    pub emailed: usize,
    pub emailed_twice: usize,
    /// Emails whose claim was taken over from an instance that may have sent it.
    pub emails_in_doubt: usize,
    /// Takeovers and renewals of claims, as the instances logged them.
    pub claims_taken_over: usize,
    pub claims_renewed: usize,
    pub dead_lettered: usize,
    pub poison_injected: usize,
    pub lost: usize,
    pub unseen: usize,
    pub p99_latency_ms: u64,
    /// When each email was logged, in ms since the Unix epoch, sorted.
    pub email_times: Vec<u64>,
    pub checks: Vec<Check>,
}

/// Checks the invariants of a run asked to make `orders` orders, whose drain
/// ended as `drain` (a timeout makes what is missing unseen rather than lost),
/// and whose services that did not stop gracefully are `not_stopped`.
pub fn check(seen: &Observed, orders: u64, drain: Drain, not_stopped: &[String]) -> Outcome {
    let settled = drain != Drain::TimedOut;
    let some = |ids: &[u64]| format!("{:?}", &ids[..ids.len().min(10)]);
    let status = |id: &u64| match seen.charges.get(id) {
        Some(charge) => {
            Some(if charge.outcome == "declined" { Status::PaymentFailed } else { Status::PaymentSuccessful })
        }
        None => seen.payments.get(id).and_then(|p| p.first()).map(|(_, p)| p.status),
    };
    let paid = seen.created.iter().filter(|id| status(id) == Some(Status::PaymentSuccessful)).count();
    let declined = seen.created.iter().filter(|id| status(id) == Some(Status::PaymentFailed)).count();

    // Charges: one record per created order, every copy of its event the record's.
    let not_charged: Vec<u64> =
        seen.created.iter().filter(|id| !seen.charges.contains_key(id)).copied().collect();
    let no_event: Vec<u64> =
        seen.created.iter().filter(|id| !seen.payments.contains_key(id)).copied().collect();
    let charged_twice: Vec<u64> = seen
        .payments
        .iter()
        .filter(|(id, events)| match seen.charges.get(id) {
            Some(charge) => events.iter().any(|(bytes, _)| bytes.as_slice() != charge.event.as_bytes()),
            None => events.iter().any(|(bytes, _)| *bytes != events[0].0),
        })
        .map(|(id, _)| *id)
        .collect();
    let paid_twice = seen.payments.values().filter(|events| events.len() > 1).count();
    let payment_event_copies: usize = seen.payments.values().map(|events| events.len() - 1).sum();
    let strangers: BTreeSet<u64> = (seen.payments.keys().chain(seen.charges.keys()))
        .filter(|id| !seen.created.contains(id))
        .copied()
        .collect();
    let strangers: Vec<u64> = strangers.into_iter().collect();

    // Emails: every charged order once, and at most once more per time its
    // claim was taken over (in doubt).
    let in_doubt = |id: &u64| seen.email_records.get(id).map_or(0, |email| email.in_doubt as usize);
    let emailed_count = |id: &u64| seen.emails.get(id).map_or(0, Vec::len);
    let not_emailed: Vec<u64> = seen.created.iter().filter(|id| emailed_count(id) == 0).copied().collect();
    // Recorded as sent, yet no process logged the email: its line went with a
    // SIGKILLed process (written out every 100 ms), and nobody sends it again.
    let sent_unlogged =
        not_emailed.iter().filter(|id| seen.email_records.get(id).is_some_and(|e| e.sent)).count();
    let emailed_twice: Vec<u64> =
        seen.emails.iter().filter(|(_, e)| e.len() > 1).map(|(id, _)| *id).collect();
    let twice_not_in_doubt: Vec<u64> =
        emailed_twice.iter().filter(|id| emailed_count(id) > 1 + in_doubt(id)).copied().collect();
    let emails_in_doubt = seen.email_records.values().filter(|email| email.in_doubt > 0).count();

    // Missing anything: lost once the drain is over, unseen if it timed out.
    let missing: BTreeSet<u64> = not_charged.iter().chain(&no_event).chain(&not_emailed).copied().collect();
    let missing: Vec<u64> = missing.into_iter().collect();
    let (lost, unseen) = if settled { (missing, Vec::new()) } else { (Vec::new(), missing) };
    let store_note = if seen.store_errors.is_empty() {
        String::new()
    } else {
        format!("; stores unreadable: {}", seen.store_errors.join("; "))
    };
    let checks = vec![
        Check {
            name: "order-service made every order asked for, each id once",
            holds: seen.created.len() as u64 == orders,
            detail: format!("{} of {orders} on order_topic", seen.created.len()),
        },
        Check {
            name: "lost: every order charged, published and emailed",
            holds: lost.is_empty() && seen.store_errors.is_empty(),
            detail: format!(
                "{} lost {}: {} without a charge record, {} without a payment event, {} not emailed \
                 ({sent_unlogged} of them recorded as sent){store_note}",
                lost.len(),
                some(&lost),
                not_charged.len(),
                no_event.len(),
                not_emailed.len()
            ),
        },
        Check {
            name: "duplicate: none charged twice, none emailed twice",
            holds: charged_twice.is_empty() && twice_not_in_doubt.is_empty(),
            detail: format!(
                "{} charged twice {} ({} identical copies); {} emailed more often than 1 + their in-doubt count {} \
                 ({} in doubt, {} emailed twice)",
                charged_twice.len(),
                some(&charged_twice),
                payment_event_copies,
                twice_not_in_doubt.len(),
                some(&twice_not_in_doubt),
                emails_in_doubt,
                emailed_twice.len() - twice_not_in_doubt.len()
            ),
        },
        Check {
            name: "unseen: every order emailed before the deadline",
            holds: settled,
            detail: format!("{} unseen {}", unseen.len(), some(&unseen)),
        },
        Check {
            name: "no charge nor payment for an order not created",
            holds: strangers.is_empty(),
            detail: format!("{} {}", strangers.len(), some(&strangers)),
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
    ];
    Outcome {
        created: seen.created.len(),
        paid,
        declined,
        paid_twice,
        charged_twice: charged_twice.len(),
        payment_event_copies,
        emailed: seen.emails.len(),
        emailed_twice: emailed_twice.len(),
        emails_in_doubt,
        claims_taken_over: seen.takeovers,
        claims_renewed: seen.renewals,
        dead_lettered: seen.dead_lettered,
        poison_injected: seen.poison_injected,
        lost: lost.len(),
        unseen: unseen.len(),
        p99_latency_ms: p99_latency_ms(seen),
        email_times: {
            let mut times: Vec<u64> = seen.emails.values().flatten().copied().collect();
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
            let created = seen.payments.get(id)?.first()?.1.created_at_ms?;
            let first = emails.iter().min()?;
            Some(first.saturating_sub(created))
        })
        .collect();
    latencies.sort_unstable();
    latencies.get((latencies.len() * 99 / 100).min(latencies.len().saturating_sub(1))).copied().unwrap_or(0)
}
