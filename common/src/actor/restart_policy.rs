//! When to restart a failed actor, after how long, and when to give up.
//!
//! Modelled on Erlang/OTP's restart intensity and kameo's backoff: every failure
//! doubles the delay before the next restart (with jitter, so actors that fail
//! together do not restart in lockstep), a successfully handled event forgets the
//! failures, and more than `max_restarts` failures inside `window` with no success
//! in between is a crash loop, which the supervisor escalates. Transient
//! failures (see `error.rs`) back off the same way but never make a crash loop.
//!
//! This file is pure policy: no actors, no clocks of its own, so it is unit-tested.

use rand::Rng;
use std::time::{Duration, Instant};

/// The tunable limits; `--restart-*` flags fill them in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RestartLimits {
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Restarts tolerated inside `window` without a successful event in between.
    pub max_restarts: u32,
    pub window: Duration,
}

impl Default for RestartLimits {
    fn default() -> Self {
        RestartLimits {
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(1),
            max_restarts: 10,
            window: Duration::from_secs(30),
        }
    }
}

/// What the supervisor should do about a failure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    /// Restart after this delay; `restart` counts every restart of the actor so far.
    Restart { restart: u64, backoff: Duration },
    /// Too many failures in a row: stop restarting and shut the service down.
    Escalate { failures: u32, within: Duration },
}

/// One actor's failure history.
#[derive(Debug)]
pub struct RestartPolicy {
    limits: RestartLimits,
    /// Failures since the last successful event, oldest first.
    recent_failures: Vec<Instant>,
    total_restarts: u64,
    /// Transient failures since the last successful event.
    transient_in_a_row: u32,
}

impl RestartPolicy {
    pub fn new(limits: RestartLimits) -> Self {
        RestartPolicy { limits, recent_failures: Vec::new(), total_restarts: 0, transient_in_a_row: 0 }
    }

    /// An event was handled: the actor is healthy again.
    pub fn record_success(&mut self) {
        self.recent_failures.clear();
        self.transient_in_a_row = 0;
    }

    /// A transient failure: how long to wait before trying the input again.
    /// However many come in a row, they are no crash loop.
    pub fn record_transient(&mut self, rng: &mut impl Rng) -> Duration {
        self.transient_in_a_row = self.transient_in_a_row.saturating_add(1);
        self.backoff(self.transient_in_a_row, rng)
    }

    /// The actor failed at `now`; decides its fate. `rng` supplies the jitter.
    pub fn record_failure(&mut self, now: Instant, rng: &mut impl Rng) -> Verdict {
        let window = self.limits.window;
        self.recent_failures.retain(|&t| now.saturating_duration_since(t) <= window);
        self.recent_failures.push(now);
        let failures = self.recent_failures.len() as u32;
        if failures > self.limits.max_restarts {
            let within = now.saturating_duration_since(self.recent_failures[0]);
            return Verdict::Escalate { failures, within };
        }
        self.total_restarts += 1;
        Verdict::Restart { restart: self.total_restarts, backoff: self.backoff(failures, rng) }
    }

    /// `initial * 2^(n-1)`, capped, then scaled by a random factor in [0.5, 1.0]
    /// ("equal jitter"): never zero, never above the cap.
    fn backoff(&self, consecutive_failures: u32, rng: &mut impl Rng) -> Duration {
        let doublings = consecutive_failures.saturating_sub(1).min(30);
        let full = self.limits.initial_backoff.saturating_mul(1 << doublings).min(self.limits.max_backoff);
        full.mul_f64(rng.gen_range(0.5..=1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn backoff_of(verdict: Verdict) -> Duration {
        match verdict {
            Verdict::Restart { backoff, .. } => backoff,
            other => panic!("expected a restart, got {other:?}"),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_bounded_jitter() {
        let mut policy = RestartPolicy::new(RestartLimits { max_restarts: 100, ..Default::default() });
        let mut rng = StdRng::seed_from_u64(7);
        let now = Instant::now();
        let expected_caps = [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000];
        for cap in expected_caps {
            let backoff = backoff_of(policy.record_failure(now, &mut rng));
            assert!(backoff <= ms(cap) && backoff >= ms(cap) / 2, "{backoff:?} not in [{cap}/2, {cap}] ms");
        }
    }

    #[test]
    fn a_success_resets_the_backoff() {
        let mut policy = RestartPolicy::new(RestartLimits::default());
        let mut rng = StdRng::seed_from_u64(1);
        let now = Instant::now();
        for _ in 0..6 {
            policy.record_failure(now, &mut rng);
        }
        policy.record_success();
        assert!(backoff_of(policy.record_failure(now, &mut rng)) <= ms(10));
    }

    #[test]
    fn restart_numbers_keep_counting_across_successes() {
        let mut policy = RestartPolicy::new(RestartLimits::default());
        let mut rng = StdRng::seed_from_u64(1);
        let now = Instant::now();
        policy.record_failure(now, &mut rng);
        policy.record_success();
        assert!(matches!(policy.record_failure(now, &mut rng), Verdict::Restart { restart: 2, .. }));
    }

    #[test]
    fn escalates_past_the_intensity_limit() {
        let limits = RestartLimits { max_restarts: 3, ..Default::default() };
        let mut policy = RestartPolicy::new(limits);
        let mut rng = StdRng::seed_from_u64(1);
        let start = Instant::now();
        for i in 0..3 {
            assert!(matches!(policy.record_failure(start + ms(i), &mut rng), Verdict::Restart { .. }));
        }
        assert_eq!(
            policy.record_failure(start + ms(3), &mut rng),
            Verdict::Escalate { failures: 4, within: ms(3) }
        );
    }

    #[test]
    fn failures_older_than_the_window_are_forgotten() {
        let limits = RestartLimits { max_restarts: 2, window: Duration::from_secs(1), ..Default::default() };
        let mut policy = RestartPolicy::new(limits);
        let mut rng = StdRng::seed_from_u64(1);
        let start = Instant::now();
        // A failure every 600 ms never has more than two inside one second.
        for i in 0..20 {
            let verdict = policy.record_failure(start + ms(600 * i), &mut rng);
            assert!(matches!(verdict, Verdict::Restart { .. }), "failure {i}: {verdict:?}");
        }
    }

    #[test]
    fn transient_failures_back_off_and_never_escalate() {
        let mut policy = RestartPolicy::new(RestartLimits::default());
        let mut rng = StdRng::seed_from_u64(5);
        let now = Instant::now();
        let backoffs: Vec<Duration> = (0..100).map(|_| policy.record_transient(&mut rng)).collect();
        assert!(backoffs[0] <= ms(10) && backoffs[99] >= ms(500), "{backoffs:?}");
        assert!(matches!(policy.record_failure(now, &mut rng), Verdict::Restart { restart: 1, .. }));
        policy.record_success();
        assert!(policy.record_transient(&mut rng) <= ms(10), "a success resets the backoff");
    }

    #[test]
    fn sporadic_failures_between_successes_never_escalate() {
        let mut policy = RestartPolicy::new(RestartLimits::default());
        let mut rng = StdRng::seed_from_u64(3);
        let now = Instant::now();
        for _ in 0..10_000 {
            assert!(matches!(policy.record_failure(now, &mut rng), Verdict::Restart { .. }));
            policy.record_success();
        }
    }
}
