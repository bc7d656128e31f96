//! The storm: which faults strike, when, and for how long, all drawn from one
//! seed, so the same seed plays the same schedule.
//!
//! Short faults strike one after another (a kill, a broker restart, poison),
//! each healed before the next; the long ones (`pause`, `cut`, `slow`,
//! `churn`) last 15-30 s each and overlap them and each other. Besides these,
//! every service runs with injected actor crashes (`--crash-rate`), panics on
//! some and errors on others.

use crate::pipeline::Kind;
use crate::poison::{self, Poison};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::time::Duration;

/// Longer than the consumers' session timeout (10 s), so the group gives up
/// on the instance and hands its partitions to the others, and than its
/// claims' lease (`CLAIM_LEASE_MS`, 15 s, from before the pause), so its
/// successor takes them over, and when it thaws it renews the claims it was
/// about to send on, and finds them taken.
const PAUSE: Duration = Duration::from_secs(25);
const CUT: Duration = Duration::from_secs(20);
const SLOW: Duration = Duration::from_secs(20);
const SLOW_DELAY: Duration = Duration::from_millis(200);
const CHURN: Duration = Duration::from_secs(30);
/// The long faults start within this long of the storm's start.
const LONG_FAULTS_END: Duration = Duration::from_secs(42);

/// A consumer instance: its service, and its number (`#1`: static member, in
/// the root namespace; `#2`: dynamic member, on a host of its own).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Instance {
    pub kind: Kind,
    pub number: usize,
}

impl std::fmt::Display for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} #{}", self.kind.name(), self.number)
    }
}

/// A fault the storm plays against the running pipeline.
#[derive(Clone, Debug)]
pub enum Fault {
    /// SIGKILL the instance, start it again (same flags) after `down`.
    Kill { instance: Instance, down: Duration },
    /// Stop the broker gracefully (SIGTERM), start it again after `down`.
    StopBroker { down: Duration },
    /// SIGKILL the broker, start it again after `down`.
    KillBroker { down: Duration },
    /// A separate producer writes these records to `order_topic`.
    Poison(Vec<Poison>),
    /// SIGSTOP the instance, SIGCONT it after `length`: a zombie.
    Pause { instance: Instance, length: Duration },
    /// Cut the instance's host off the network, restore it after `length`: a zombie.
    Cut { instance: Instance, length: Duration },
    /// Delay every chunk to and from the broker by `delay` (the proxy), for `length`.
    Slow { delay: Duration, length: Duration },
    /// Start and stop instances of their own for `length`, as `moves` say.
    Churn { length: Duration, moves: Vec<Move> },
}

/// One move of a churn, `after` its start.
#[derive(Clone, Debug)]
pub struct Move {
    pub after: Duration,
    pub kind: Kind,
    pub action: ChurnAction,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ChurnAction {
    /// Start one more instance of the churn's own.
    Start,
    /// Stop the churn's `n`-th running instance of the kind with Ctrl-C.
    Interrupt(usize),
    /// SIGKILL the churn's `n`-th running instance of the kind.
    Kill(usize),
}

impl Fault {
    pub fn describe(&self) -> String {
        let s = |d: &Duration| d.as_secs_f64();
        match self {
            Fault::Kill { instance, down } => format!("SIGKILL {instance}, restarted {:.1} s later", s(down)),
            Fault::StopBroker { down } => format!("broker stopped (SIGTERM), down {:.1} s", s(down)),
            Fault::KillBroker { down } => format!("broker SIGKILLed, down {:.1} s", s(down)),
            Fault::Poison(records) => {
                let kinds: Vec<&str> = records.iter().map(|p| p.kind).collect();
                format!("{} poison records: {}", records.len(), kinds.join(", "))
            }
            Fault::Pause { instance, length } => {
                format!("pause: {instance} SIGSTOPped {:.0} s, then SIGCONT", s(length))
            }
            Fault::Cut { instance, length } => {
                format!("cut: {instance}'s network cut {:.0} s, then restored", s(length))
            }
            Fault::Slow { delay, length } => {
                format!(
                    "slow: every connection to the broker +{} ms each way for {:.0} s",
                    delay.as_millis(),
                    s(length)
                )
            }
            Fault::Churn { length, moves } => {
                let count = |what: fn(&ChurnAction) -> bool| moves.iter().filter(|m| what(&m.action)).count();
                format!(
                    "churn: {} started, {} Ctrl-C, {} SIGKILL over {:.0} s",
                    count(|a| *a == ChurnAction::Start),
                    count(|a| matches!(a, ChurnAction::Interrupt(_))),
                    count(|a| matches!(a, ChurnAction::Kill(_))),
                    s(length)
                )
            }
        }
    }

    /// Whether this fault hits processes or the network (crashes are counted
    /// apart, poison is not a fault of the system).
    pub fn is_process_fault(&self) -> bool {
        !matches!(self, Fault::Poison(_))
    }

    /// How long after it strikes it is healed (`None`: nothing to heal).
    pub fn length(&self) -> Option<Duration> {
        match self {
            Fault::Kill { down, .. } | Fault::StopBroker { down } | Fault::KillBroker { down } => Some(*down),
            Fault::Poison(_) => None,
            Fault::Pause { length, .. } | Fault::Cut { length, .. } | Fault::Slow { length, .. } => {
                Some(*length)
            }
            Fault::Churn { length, .. } => Some(*length),
        }
    }
}

/// A fault, and when it strikes, counted from the storm's start.
#[derive(Clone, Debug)]
pub struct Planned {
    pub at: Duration,
    pub fault: Fault,
}

/// What the storm does at one moment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Action {
    /// Fault `i` of the plan strikes.
    Strike(usize),
    /// Fault `i` is healed (the process started again, the link restored...).
    Heal(usize),
    /// Move `m` of churn `i`.
    Churn(usize, usize),
}

/// The storm for `seed`: each kind of kill and broker restart once, three
/// batches of poison, one pause, one cut, one slow spell and one churn. The
/// pause freezes notification-service #2, whose claims on emails then lapse
/// and are taken over; the cut isolates payment-service #2, which goes on
/// publishing what its store holds.
pub fn plan(seed: u64) -> Vec<Planned> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let down = |rng: &mut SmallRng| Duration::from_millis(rng.gen_range(500..3000));
    let mut short = vec![
        Fault::Kill { instance: Instance { kind: Kind::Payment, number: 1 }, down: down(&mut rng) },
        Fault::Kill { instance: Instance { kind: Kind::Notification, number: 1 }, down: down(&mut rng) },
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
        short.push(Fault::Poison(batch.collect()));
    }
    short.shuffle(&mut rng);
    let mut plan = Vec::new();
    let mut at = Duration::from_secs(2);
    for fault in short {
        at += Duration::from_millis(rng.gen_range(1500..4000));
        let next = at + fault.length().unwrap_or_default();
        plan.push(Planned { at, fault });
        at = next;
    }
    let churn_moves = churn(&mut rng);
    let long = [
        Fault::Pause { instance: Instance { kind: Kind::Notification, number: 2 }, length: PAUSE },
        Fault::Cut { instance: Instance { kind: Kind::Payment, number: 2 }, length: CUT },
        Fault::Slow { delay: SLOW_DELAY, length: SLOW },
        Fault::Churn { length: CHURN, moves: churn_moves },
    ];
    for fault in long {
        let latest = LONG_FAULTS_END.saturating_sub(fault.length().unwrap_or_default()).as_millis() as u64;
        let at = Duration::from_millis(rng.gen_range(2000..latest.max(2001)));
        plan.push(Planned { at, fault });
    }
    plan.sort_by_key(|p| p.at);
    plan
}

/// The moves of a churn: every 1-4 s, start an instance of the churn's own or
/// stop one (Ctrl-C or SIGKILL), at most two of each service at once.
fn churn(rng: &mut SmallRng) -> Vec<Move> {
    let mut running = [0usize; 2];
    let mut moves = Vec::new();
    let mut after = Duration::ZERO;
    loop {
        after += Duration::from_millis(rng.gen_range(1000..4000));
        if after >= CHURN {
            return moves;
        }
        let k = rng.gen_range(0..2);
        let kind = [Kind::Payment, Kind::Notification][k];
        let action = if running[k] == 0 || (running[k] < 2 && rng.gen_bool(0.5)) {
            running[k] += 1;
            ChurnAction::Start
        } else {
            running[k] -= 1;
            let n = rng.gen_range(0..=running[k]);
            if rng.gen_bool(0.5) {
                ChurnAction::Interrupt(n)
            } else {
                ChurnAction::Kill(n)
            }
        };
        moves.push(Move { after, kind, action });
    }
}

/// Every action of `plan`, in the order of their moments (counted from the storm's start).
pub fn timeline(plan: &[Planned]) -> Vec<(Duration, Action)> {
    let mut actions = Vec::new();
    for (i, planned) in plan.iter().enumerate() {
        actions.push((planned.at, Action::Strike(i)));
        if let Fault::Churn { moves, .. } = &planned.fault {
            actions
                .extend(moves.iter().enumerate().map(|(m, mv)| (planned.at + mv.after, Action::Churn(i, m))));
        }
        if let Some(length) = planned.fault.length() {
            actions.push((planned.at + length, Action::Heal(i)));
        }
    }
    actions.sort_by_key(|(at, _)| *at); // stable: a strike before its heal at the same moment
    actions
}

/// When the last fault of `plan` strikes or its churn's last move is made,
/// counted from the storm's start (a heal strikes nothing).
pub fn last_strike(plan: &[Planned]) -> Duration {
    let strikes = timeline(plan).into_iter().filter(|(_, action)| !matches!(action, Action::Heal(_)));
    strikes.map(|(at, _)| at).max().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_plays_the_same_storm() {
        let describe = |seed| plan(seed).iter().map(|p| (p.at, p.fault.describe())).collect::<Vec<_>>();
        assert_eq!(describe(7), describe(7));
        assert_ne!(describe(7), describe(8));
        for seed in 0..50 {
            let storm = plan(seed);
            assert_eq!(storm.len(), 11);
            assert_eq!(storm.iter().filter(|p| p.fault.is_process_fault()).count(), 8);
            for word in ["pause:", "cut:", "slow:", "churn:"] {
                assert!(storm.iter().any(|p| p.fault.describe().starts_with(word)), "{word}");
            }
            // Every fault is healed within the storm's first minute.
            let last = timeline(&storm).last().map(|(at, _)| *at).unwrap();
            assert!(last < Duration::from_secs(60), "seed {seed}: {last:?}");
        }
    }

    #[test]
    fn short_faults_do_not_overlap() {
        for seed in 0..50 {
            let storm = plan(seed);
            let short: Vec<&Planned> = storm
                .iter()
                .filter(|p| {
                    matches!(
                        p.fault,
                        Fault::Kill { .. } | Fault::StopBroker { .. } | Fault::KillBroker { .. }
                    )
                })
                .collect();
            for pair in short.windows(2) {
                assert!(pair[0].at + pair[0].fault.length().unwrap() < pair[1].at, "seed {seed}");
            }
        }
    }

    #[test]
    fn a_churn_stops_only_what_it_started_and_pauses_and_cuts_hit_both_services() {
        for seed in 0..50 {
            let storm = plan(seed);
            let Some(Fault::Churn { moves, .. }) =
                storm.iter().map(|p| &p.fault).find(|f| matches!(f, Fault::Churn { .. }))
            else {
                panic!("no churn")
            };
            let mut running = [0usize, 0];
            for mv in moves {
                let k = (mv.kind == Kind::Notification) as usize;
                match mv.action {
                    ChurnAction::Start => running[k] += 1,
                    ChurnAction::Interrupt(n) | ChurnAction::Kill(n) => {
                        assert!(n < running[k]);
                        running[k] -= 1;
                    }
                }
                assert!(running[k] <= 2);
            }
            let zombie_kinds: Vec<Kind> = storm
                .iter()
                .filter_map(|p| match p.fault {
                    Fault::Pause { instance, .. } | Fault::Cut { instance, .. } => Some(instance.kind),
                    _ => None,
                })
                .collect();
            assert_eq!(zombie_kinds.len(), 2);
            assert_ne!(zombie_kinds[0], zombie_kinds[1]);
        }
    }
}
