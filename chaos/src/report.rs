//! The report: what was injected and when, how long the pipeline took to
//! recover from each fault, the figures, and each invariant with its verdict;
//! and the same as one JSON line.
//!
//! How to read the lines of the faults that make zombies and slow the network:
//! `pause: notification-service #2 SIGSTOPped 25 s, then SIGCONT` froze that instance
//! past the session timeout (10 s): its group handed its partitions to the others,
//! and it woke still holding their events; `cut: ... network cut 20 s, then
//! restored` did the same by pulling its host's link, every packet dropped silently
//! (each ends `: a zombie` when the instance was put out of its group meanwhile:
//! its session timed out, or the others were given partitions while it was silent;
//! `: no zombie` if not, e.g. when it held no partitions as it struck, in the midst
//! of a rebalance); `slow: ... +200 ms each way` delayed every chunk to and from
//! the broker in the proxy all clients go through; `churn: N started, N Ctrl-C, N
//! SIGKILL over 30 s` started and stopped instances of its own every 1-4 s. For
//! these, "recovered after" runs from the fault's start to the first email after it
//! was healed. The figures then say what the store fenced off: `charged twice` (a
//! payment event unlike its order's charge record: must be 0), `identical copies`
//! (a zombie or a redelivery publishing the recorded event again: allowed), `in
//! doubt` (an email whose claim was taken over from an instance that may have sent
//! it: the only emails that may go out twice).

use crate::invariants::Outcome;
use crate::storm::Fault;
use serde_json::json;
use std::fmt::Write as _;

/// A fault the storm struck: when it began and when it was over (the process or
/// broker started again), in ms since the Unix epoch.
pub struct Struck {
    pub at_ms: u64,
    pub over_ms: u64,
    pub fault: Fault,
    /// For a pause or a cut: whether it made a zombie (put the instance out of
    /// its group while it still held events).
    pub zombie: Option<bool>,
}

impl Struck {
    /// The fault, and for a pause or a cut whether it made a zombie.
    pub fn describe(&self) -> String {
        match self.zombie {
            Some(true) => format!("{}: a zombie", self.fault.describe()),
            Some(false) => format!("{}: no zombie", self.fault.describe()),
            None => self.fault.describe(),
        }
    }
}

pub struct Report {
    pub seed: u64,
    pub orders: u64,
    pub started_ms: u64,
    pub duration_s: f64,
    pub struck: Vec<Struck>,
    /// Injected actor crashes per service.
    pub crashes: Vec<(&'static str, usize)>,
    pub outcome: Outcome,
}

impl Report {
    /// Crashes, kills, broker restarts, pauses, cuts, slow spells and churns.
    fn faults_injected(&self) -> usize {
        let crashes: usize = self.crashes.iter().map(|(_, n)| n).sum();
        crashes + self.struck.iter().filter(|s| s.fault.is_process_fault()).count()
    }

    /// Seconds from a fault's start to the first email after it was over: how
    /// long the pipeline took to deliver again (`None`: no email came after it).
    fn recovery_s(&self, struck: &Struck) -> Option<f64> {
        let times = &self.outcome.email_times;
        let next = times.get(times.partition_point(|&at| at < struck.over_ms))?;
        Some(next.saturating_sub(struck.at_ms) as f64 / 1000.0)
    }

    pub fn table(&self) -> String {
        let mut out = String::new();
        let o = &self.outcome;
        let _ = writeln!(
            out,
            "\nChaos run: seed {}, {} orders, {:.0} s",
            self.seed, self.orders, self.duration_s
        );
        let _ = writeln!(out, "\n  at (s)  {:<78} recovered after (s)", "fault");
        for struck in &self.struck {
            let at = struck.at_ms.saturating_sub(self.started_ms) as f64 / 1000.0;
            let recovery = self.recovery_s(struck).map_or("-".to_string(), |s| format!("{s:.1}"));
            let _ = writeln!(out, "  {at:6.1}  {:<78} {recovery:>6}", struck.describe());
        }
        let crashes: Vec<String> = self.crashes.iter().map(|(service, n)| format!("{service} {n}")).collect();
        let _ =
            writeln!(out, "  all run  injected actor crashes (panics and errors): {}", crashes.join(", "));
        let _ = writeln!(out, "\n  faults injected {}", self.faults_injected());
        let _ = writeln!(out, "  orders created {}: paid {}, declined {}", o.created, o.paid, o.declined);
        let _ = writeln!(
            out,
            "  charged twice {}; orders with more than one payment event {}, identical copies {}",
            o.charged_twice, o.paid_twice, o.payment_event_copies
        );
        let _ = writeln!(
            out,
            "  emailed {}, emailed twice {}, emails in doubt {}; claims taken over {}, renewed {}",
            o.emailed, o.emailed_twice, o.emails_in_doubt, o.claims_taken_over, o.claims_renewed
        );
        let _ = writeln!(out, "  poison injected {}, dead-lettered {}", o.poison_injected, o.dead_lettered);
        let _ = writeln!(
            out,
            "  lost {}, unseen {}; p99 latency, created to emailed: {} ms\n",
            o.lost, o.unseen, o.p99_latency_ms
        );
        for check in &o.checks {
            let verdict = if check.holds { "HOLDS" } else { "BROKEN" };
            let _ = writeln!(out, "  {verdict:<6}  {:<55} {}", check.name, check.detail);
        }
        let broken: Vec<&str> = o.checks.iter().filter(|c| !c.holds).map(|c| c.name).collect();
        if broken.is_empty() {
            let _ = writeln!(out, "\nevery invariant holds");
        } else {
            let _ = writeln!(out, "\nBROKEN: {}", broken.join("; "));
        }
        out
    }

    pub fn json(&self) -> String {
        let o = &self.outcome;
        json!({
            "seed": self.seed,
            "orders": self.orders,
            "created": o.created,
            "paid": o.paid,
            "declined": o.declined,
            "paid_twice": o.paid_twice,
            "charged_twice": o.charged_twice,
            "payment_event_copies": o.payment_event_copies,
            "emailed": o.emailed,
            "emailed_twice": o.emailed_twice,
            "emails_in_doubt": o.emails_in_doubt,
            "claims_taken_over": o.claims_taken_over,
            "claims_renewed": o.claims_renewed,
            "dead_lettered": o.dead_lettered,
            "poison_injected": o.poison_injected,
            "lost": o.lost,
            "unseen": o.unseen,
            "faults_injected": self.faults_injected(),
            "duration_s": self.duration_s,
            "p99_latency_ms": o.p99_latency_ms,
            "invariants_hold": o.checks.iter().all(|c| c.holds),
            "broken": o.checks.iter().filter(|c| !c.holds).map(|c| c.name).collect::<Vec<_>>(),
            "faults": self.struck.iter().map(|s| json!({
                "at_s": s.at_ms.saturating_sub(self.started_ms) as f64 / 1000.0,
                "fault": s.describe(),
                "recovered_after_s": self.recovery_s(s),
            })).collect::<Vec<_>>(),
            "crashes": self.crashes.iter().map(|(service, n)| (service.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        })
        .to_string()
    }
}
