//! Fault injection: crash chosen actors on purpose, to prove supervision works.
//!
//! `--crash-rate P --crash-actor domain --crash-mode panic --seed N` gives each
//! chosen actor a [`Fault`] that, before every event it handles, fails with
//! probability P: by panicking, or by returning an error. Injected faults are
//! labelled as such in the crash lines. Without the flags nothing is injected.

use crate::actor::error::ActorError;
use clap::ValueEnum;
use rand::{rngs::SmallRng, Rng, SeedableRng};

/// The place an actor holds in a service's pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// The Kafka consumer actor (payment-service, notification-service).
    Consumer,
    /// The order generator actor (order-service).
    Generator,
    /// The service's domain actor (payment, notification, order creation).
    Domain,
    /// The Kafka producer actor.
    Producer,
    /// Every actor of the service.
    Any,
}

/// How an injected fault happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CrashMode {
    /// The handler panics.
    Panic,
    /// The handler returns an error.
    Error,
}

/// The payload of an injected panic, so the supervisor can label it.
#[derive(Debug)]
pub struct InjectedPanic;

/// What was asked for on the command line.
#[derive(Clone, Copy, Debug)]
pub struct FaultPlan {
    pub rate: f64,
    pub target: Role,
    pub mode: CrashMode,
    pub seed: u64,
}

impl FaultPlan {
    /// The fault for an actor in `role`, if the plan aims at it. Each role draws
    /// from its own seeded generator, so a run with the same seed repeats.
    pub fn fault_for(&self, role: Role) -> Option<Fault> {
        let aimed = self.rate > 0.0 && (self.target == Role::Any || self.target == role);
        aimed.then(|| Fault {
            rate: self.rate,
            mode: self.mode,
            rng: SmallRng::seed_from_u64(self.seed ^ role as u64),
        })
    }
}

/// One actor's fault injector.
#[derive(Debug)]
pub struct Fault {
    rate: f64,
    mode: CrashMode,
    rng: SmallRng,
}

/// How an injected error reads in a crash line.
pub const INJECTED_ERROR: &str = "injected fault: error";
/// How an injected panic reads in a crash line.
pub const INJECTED_PANIC: &str = "injected fault: panic";

impl Fault {
    /// Maybe fails, as configured: panics with [`InjectedPanic`] or returns an error.
    pub fn strike(&mut self) -> Result<(), ActorError> {
        if !self.rng.gen_bool(self.rate) {
            return Ok(());
        }
        match self.mode {
            CrashMode::Panic => std::panic::panic_any(InjectedPanic),
            CrashMode::Error => Err(ActorError::Crashed(INJECTED_ERROR.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(rate: f64, target: Role, mode: CrashMode) -> FaultPlan {
        FaultPlan { rate, target, mode, seed: 42 }
    }

    #[test]
    fn aims_only_at_the_chosen_role() {
        let domain_only = plan(0.5, Role::Domain, CrashMode::Error);
        assert!(domain_only.fault_for(Role::Domain).is_some());
        assert!(domain_only.fault_for(Role::Producer).is_none());
        let any = plan(0.5, Role::Any, CrashMode::Error);
        assert!([Role::Consumer, Role::Domain, Role::Producer].iter().all(|&r| any.fault_for(r).is_some()));
        assert!(plan(0.0, Role::Any, CrashMode::Error).fault_for(Role::Domain).is_none());
    }

    #[test]
    fn strikes_at_about_the_rate_and_repeats_with_the_seed() {
        let draw = || {
            let mut fault = plan(0.05, Role::Domain, CrashMode::Error).fault_for(Role::Domain).unwrap();
            (0..20_000).map(|_| fault.strike().is_err()).collect::<Vec<_>>()
        };
        let first = draw();
        let failures = first.iter().filter(|&&failed| failed).count();
        assert!((800..1200).contains(&failures), "{failures} failures in 20000 at 5%");
        assert_eq!(first, draw());
    }

    #[test]
    fn panic_mode_panics_with_the_injected_payload() {
        let mut fault = plan(1.0, Role::Domain, CrashMode::Panic).fault_for(Role::Domain).unwrap();
        let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fault.strike())).unwrap_err();
        assert!(payload.is::<InjectedPanic>());
    }
}
