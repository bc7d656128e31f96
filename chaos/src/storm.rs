//! The storm: which faults strike, in which order and after which pauses, all
//! drawn from one seed, so the same seed plays the same schedule.
//!
//! Besides the scheduled faults below, every service runs with injected actor
//! crashes (`--crash-rate`), panics on some and errors on others.

use crate::poison::{self, Poison};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::time::Duration;

/// A fault the storm plays against the running pipeline.
#[derive(Clone, Debug)]
pub enum Fault {
    /// SIGKILL payment-service instance `instance`, start it again after `down`.
    KillPayment { instance: usize, down: Duration },
    /// SIGKILL notification-service, start it again after `down`.
    KillNotification { down: Duration },
    /// Stop the broker gracefully (SIGTERM), start it again after `down`.
    StopBroker { down: Duration },
    /// SIGKILL the broker, start it again after `down`.
    KillBroker { down: Duration },
    /// A separate producer writes these records to `order_topic`.
    Poison(Vec<Poison>),
}

impl Fault {
    pub fn describe(&self) -> String {
        match self {
            Fault::KillPayment { instance, down } => {
                format!("SIGKILL payment-service #{instance}, restarted {:.1} s later", down.as_secs_f64())
            }
            Fault::KillNotification { down } => {
                format!("SIGKILL notification-service, restarted {:.1} s later", down.as_secs_f64())
            }
            Fault::StopBroker { down } => {
                format!("broker stopped (SIGTERM), down {:.1} s", down.as_secs_f64())
            }
            Fault::KillBroker { down } => format!("broker SIGKILLed, down {:.1} s", down.as_secs_f64()),
            Fault::Poison(records) => {
                let kinds: Vec<&str> = records.iter().map(|p| p.kind).collect();
                format!("{} poison records: {}", records.len(), kinds.join(", "))
            }
        }
    }

    /// Whether this is a kill or a broker restart (crashes are counted apart).
    pub fn is_process_fault(&self) -> bool {
        !matches!(self, Fault::Poison(_))
    }
}

/// One step of the storm: wait `pause`, then strike.
#[derive(Clone, Debug)]
pub struct Step {
    pub pause: Duration,
    pub fault: Fault,
}

/// The schedule for `seed`, with `payment_instances` payment-service instances:
/// each kind of kill and broker restart once, and three batches of poison, in
/// an order and with pauses drawn from the seed.
pub fn schedule(seed: u64, payment_instances: usize) -> Vec<Step> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let down = |rng: &mut SmallRng| Duration::from_millis(rng.gen_range(500..3000));
    let mut faults = vec![
        Fault::KillPayment { instance: rng.gen_range(1..=payment_instances), down: down(&mut rng) },
        Fault::KillNotification { down: down(&mut rng) },
        Fault::StopBroker { down: down(&mut rng) },
        Fault::KillBroker { down: down(&mut rng) },
    ];
    let mut numbered = 0;
    for _ in 0..3 {
        let size = rng.gen_range(3..=6);
        let kinds: Vec<&'static str> = poison::KINDS.choose_multiple(&mut rng, size).copied().collect();
        let batch = kinds.into_iter().map(|kind| {
            numbered += 1;
            poison::make(numbered, kind)
        });
        faults.push(Fault::Poison(batch.collect()));
    }
    faults.shuffle(&mut rng);
    faults
        .into_iter()
        .map(|fault| Step { pause: Duration::from_millis(rng.gen_range(1500..4000)), fault })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_plays_the_same_storm() {
        let describe =
            |seed| schedule(seed, 2).iter().map(|s| (s.pause, s.fault.describe())).collect::<Vec<_>>();
        assert_eq!(describe(7), describe(7));
        assert_ne!(describe(7), describe(8));
        let faults = schedule(7, 2);
        assert_eq!(faults.iter().filter(|s| s.fault.is_process_fault()).count(), 4);
        assert_eq!(faults.len(), 7);
    }
}
