//! Drives a store directly, as a service would; reads the services' stores
//! back (their SQLite files), and checks the promise they keep: every order
//! charged once and emailed once, every copy of its payment event identical to
//! the charge recorded.

use common::store::{Store, StoreSetup, StoreUrl};
use rusqlite::{Connection, OpenFlags};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

/// Opens the store at `url` as the writer `instance`; panics if it cannot be used.
pub fn open(url: &StoreUrl, instance: &str) -> Store {
    Store::open(StoreSetup {
        url: url.clone(),
        instance: instance.to_string(),
        retention_days: 7,
        log_written: common::base::logging::flush,
    })
    .unwrap_or_else(|e| panic!("the store {}: {e}", url.shown()))
}

/// Makes a request of a store and waits for its answer, a minute at most.
pub fn ask<T: Send + 'static>(request: impl FnOnce(Box<dyn FnOnce(T) + Send>)) -> T {
    asked(request).recv_timeout(Duration::from_secs(60)).expect("the store answers within a minute")
}

/// Makes a request of a store; its answer comes on the channel returned.
pub fn asked<T: Send + 'static>(request: impl FnOnce(Box<dyn FnOnce(T) + Send>)) -> mpsc::Receiver<T> {
    let (answer, answered) = mpsc::channel();
    request(Box::new(move |verdict| {
        let _ = answer.send(verdict);
    }));
    answered
}

/// One row of payment-service's `payments` table.
#[derive(Clone, Debug, PartialEq)]
pub struct Charge {
    pub outcome: String,
    /// The payment event's JSON, as every copy of it must be published.
    pub event: String,
    pub charged_by: String,
}

/// One row of notification-service's `emails` table.
#[derive(Clone, Debug, PartialEq)]
pub struct Email {
    pub sent: bool,
    /// How many times an unrecorded claim on this email was taken over: it may
    /// have gone out that many times more.
    pub in_doubt: u32,
}

/// Every row `sql` selects from the store at `path`, each made by `row`.
fn rows<K: Ord, V>(
    path: &Path,
    sql: &str,
    row: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<(K, V)>,
) -> BTreeMap<K, V> {
    let store = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("cannot open the store {}: {e}", path.display()));
    let mut select =
        store.prepare(sql).unwrap_or_else(|e| panic!("{}: cannot run {sql:?}: {e}", path.display()));
    let rows =
        select.query_map([], row).unwrap_or_else(|e| panic!("{}: cannot run {sql:?}: {e}", path.display()));
    rows.map(|row| row.unwrap_or_else(|e| panic!("{}: a row of {sql:?}: {e}", path.display()))).collect()
}

/// Every charge recorded in the payment store at `path`, by order id.
pub fn charges(path: &Path) -> BTreeMap<u64, Charge> {
    rows(path, "SELECT order_id, outcome, event, charged_by FROM payments", |row| {
        let charge = Charge { outcome: row.get(1)?, event: row.get(2)?, charged_by: row.get(3)? };
        Ok((row.get::<_, i64>(0)? as u64, charge))
    })
}

/// Every email recorded in the notification store at `path`, by order id.
pub fn emails(path: &Path) -> BTreeMap<u64, Email> {
    rows(path, "SELECT order_id, sent_at_ms IS NOT NULL, in_doubt FROM emails", |row| {
        Ok((row.get::<_, i64>(0)? as u64, Email { sent: row.get(1)?, in_doubt: row.get(2)? }))
    })
}

/// What a run did to each order, read from the topics, the stores and the emails.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Orders created without a charge record.
    pub not_charged: Vec<u64>,
    /// Payment events on `payment_topic` that differ from their order's charge
    /// record, or have none.
    pub inconsistent_events: Vec<u64>,
    /// Orders charged whose payment event is not on `payment_topic`.
    pub no_event: Vec<u64>,
    /// Copies of payment events beyond the first (identical ones, by then).
    pub payment_event_copies: usize,
    /// Charged orders without an email.
    pub not_emailed: Vec<u64>,
    /// Orders emailed more often than once plus once per time their claim was
    /// taken over (their in-doubt count).
    pub emailed_twice: Vec<u64>,
    /// Orders emailed more than once, within their in-doubt count: allowed, counted.
    pub emailed_twice_in_doubt: Vec<u64>,
    /// Emails in doubt, emailed twice or not.
    pub emails_in_doubt: usize,
}

impl Outcome {
    /// Compares the created orders, the payment events on the topic, both stores
    /// and the emails logged (how many times each order was emailed).
    pub fn of(
        created: impl IntoIterator<Item = u64>,
        payment_events: &[(u64, Vec<u8>)],
        charges: &BTreeMap<u64, Charge>,
        emails: &BTreeMap<u64, Email>,
        emailed: &BTreeMap<u64, usize>,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        let mut copies: BTreeMap<u64, usize> = BTreeMap::new();
        for (order_id, payload) in payment_events {
            *copies.entry(*order_id).or_default() += 1;
            let same =
                charges.get(order_id).is_some_and(|charge| charge.event.as_bytes() == payload.as_slice());
            if !same && !outcome.inconsistent_events.contains(order_id) {
                outcome.inconsistent_events.push(*order_id);
            }
        }
        outcome.payment_event_copies = copies.values().map(|n| n - 1).sum();
        for order_id in created {
            if !charges.contains_key(&order_id) {
                outcome.not_charged.push(order_id);
                continue;
            }
            if !copies.contains_key(&order_id) {
                outcome.no_event.push(order_id);
            }
            let in_doubt = emails.get(&order_id).map_or(0, |email| email.in_doubt as usize);
            match emailed.get(&order_id).copied().unwrap_or(0) {
                0 => outcome.not_emailed.push(order_id),
                1 => {}
                n if n <= 1 + in_doubt => outcome.emailed_twice_in_doubt.push(order_id),
                _ => outcome.emailed_twice.push(order_id),
            }
        }
        outcome.emails_in_doubt = emails.values().filter(|email| email.in_doubt > 0).count();
        outcome
    }

    /// Panics, saying what, unless every order was charged once, has its payment
    /// event (all copies identical) and was emailed once, plus at most once per
    /// time its claim was taken over.
    pub fn assert_holds(&self) {
        let first = |ids: &[u64]| ids[..ids.len().min(20)].to_vec();
        assert!(
            self.not_charged.is_empty()
                && self.inconsistent_events.is_empty()
                && self.no_event.is_empty()
                && self.not_emailed.is_empty()
                && self.emailed_twice.is_empty(),
            "not charged {} {:?}; payment events unlike their charge {} {:?}; charged without an event {} {:?}; \
             not emailed {} {:?}; emailed beyond their in-doubt count {} {:?} (in doubt: {}, emailed twice {})",
            self.not_charged.len(),
            first(&self.not_charged),
            self.inconsistent_events.len(),
            first(&self.inconsistent_events),
            self.no_event.len(),
            first(&self.no_event),
            self.not_emailed.len(),
            first(&self.not_emailed),
            self.emailed_twice.len(),
            first(&self.emailed_twice),
            self.emails_in_doubt,
            self.emailed_twice_in_doubt.len(),
        );
    }
}
