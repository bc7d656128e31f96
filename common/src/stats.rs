//! The service's counters, and the summary line they make.
//!
//! Logged every `--stats-interval` seconds and once at shutdown; the end-to-end
//! tests read that last line to check that crashes really happened and were survived.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// Counters shared by every actor of one service.
#[derive(Debug, Default)]
pub struct Stats {
    processed: AtomicU64,
    restarts: AtomicU64,
    redeliveries: AtomicU64,
    retries: AtomicU64,
    duplicates_suppressed: AtomicU64,
    dead_lettered: AtomicU64,
    crashes: Mutex<BTreeMap<&'static str, u64>>,
}

impl Stats {
    /// An event's work was done (an order created, paid or notified).
    pub fn processed(&self) {
        self.processed.fetch_add(1, Relaxed);
    }
    pub fn restarted(&self) {
        self.restarts.fetch_add(1, Relaxed);
    }
    /// An event that was inside a crashed actor was handed to it again.
    pub fn redelivered(&self) {
        self.redeliveries.fetch_add(1, Relaxed);
    }
    /// An input that failed transiently was tried again (see `error.rs`).
    pub fn retried(&self) {
        self.retries.fetch_add(1, Relaxed);
    }
    /// An event for an order already handled was recognised and skipped.
    pub fn duplicate_suppressed(&self) {
        self.duplicates_suppressed.fetch_add(1, Relaxed);
    }
    pub fn dead_lettered(&self) {
        self.dead_lettered.fetch_add(1, Relaxed);
    }
    pub fn crashed(&self, actor: &'static str) {
        *self.crashes.lock().unwrap_or_else(|p| p.into_inner()).entry(actor).or_default() += 1;
    }

    /// `processed=2000 crashes=3 (ConsumerActor=1 PaymentActor=2) restarts=3 ... retries=0`
    pub fn summary(&self) -> String {
        let crashes = self.crashes.lock().unwrap_or_else(|p| p.into_inner());
        let total: u64 = crashes.values().sum();
        let per_actor: Vec<String> = crashes.iter().map(|(actor, n)| format!("{actor}={n}")).collect();
        format!(
            "processed={} crashes={} ({}) restarts={} redeliveries={} duplicates_suppressed={} dead_lettered={} retries={}",
            self.processed.load(Relaxed),
            total,
            per_actor.join(" "),
            self.restarts.load(Relaxed),
            self.redeliveries.load(Relaxed),
            self.duplicates_suppressed.load(Relaxed),
            self.dead_lettered.load(Relaxed),
            self.retries.load(Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_names_every_counter() {
        let stats = Stats::default();
        stats.processed();
        stats.processed();
        stats.crashed("PaymentActor");
        stats.crashed("ConsumerActor");
        stats.crashed("PaymentActor");
        stats.restarted();
        stats.redelivered();
        stats.duplicate_suppressed();
        stats.dead_lettered();
        stats.retried();
        assert_eq!(
            stats.summary(),
            "processed=2 crashes=3 (ConsumerActor=1 PaymentActor=2) restarts=1 redeliveries=1 \
             duplicates_suppressed=1 dead_lettered=1 retries=1"
        );
    }
}
