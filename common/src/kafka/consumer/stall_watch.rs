//! Whether a partition's stored offset moves: one that has not moved for a
//! while with events waiting is reported, once, and again when it moves.
//!
//! Each partition's [`Watch`] lives with its offsets (`offsets.rs`), so it is
//! forgotten with them in a rebalance.

use log::{info, warn};
use std::time::{Duration, Instant};

/// How long a partition's stored offset may stay put, with events of it waiting,
/// before a warning says so.
pub const STALL_WARNING_AFTER: Duration = Duration::from_secs(60);

/// The stall lines are the consumer's: `RUST_LOG=ConsumerActor=debug` shows them.
const TARGET: &str = "ConsumerActor";

/// A partition's oldest pending event and the events done behind it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backlog {
    pub oldest_pending: i64,
    pub done_behind: usize,
}

/// A change in whether a partition's stored offset moves.
#[derive(Debug, PartialEq, Eq)]
pub enum Stall {
    /// It has not moved for `unmoved` while `backlog` waits.
    Began { partition: i32, unmoved: Duration, backlog: Backlog },
    /// It moved again after `unmoved`.
    Ended { partition: i32, unmoved: Duration },
}

impl Stall {
    /// Says so: a warning as the stall begins, a line as it ends.
    pub fn log(&self, topic: &str) {
        match self {
            Stall::Began { partition, unmoved, backlog } => warn!(
                target: TARGET,
                "{topic}[{partition}]: the stored offset has not moved for {} s: the event at offset {} \
                 is not done, and {} events done behind it wait for it to be committed",
                unmoved.as_secs(),
                backlog.oldest_pending,
                backlog.done_behind
            ),
            Stall::Ended { partition, unmoved } => info!(
                target: TARGET,
                "{topic}[{partition}]: the stored offset moves again, after {} s",
                unmoved.as_secs()
            ),
        }
    }
}

/// What the watch saw of one partition's stored offset.
#[derive(Debug, Default)]
pub(crate) struct Watch {
    /// The stored offset at the last look.
    seen: Option<i64>,
    /// The last look that saw it move, or nothing wait: it has not moved since.
    since: Option<Instant>,
    reported: bool,
}

impl Watch {
    /// Looks at `partition`'s `stored` offset and `backlog` (`now`, as often as
    /// a warning may be late): a stall once it has not moved for `after` while
    /// events wait, and its end when it moves or nothing waits.
    pub(crate) fn look(
        &mut self,
        partition: i32,
        stored: Option<i64>,
        backlog: Option<Backlog>,
        now: Instant,
        after: Duration,
    ) -> Option<Stall> {
        match backlog {
            Some(backlog) if stored == self.seen => {
                let unmoved = now - *self.since.get_or_insert(now);
                let began = !self.reported && unmoved >= after;
                self.reported |= began;
                began.then_some(Stall::Began { partition, unmoved, backlog })
            }
            _ => {
                let unmoved = self.since.map_or(Duration::ZERO, |since| now - since);
                let ended = self.reported.then_some(Stall::Ended { partition, unmoved });
                *self = Watch { seen: stored, since: Some(now), reported: false };
                ended
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::consumer::offsets::OffsetTracker;

    const MINUTE: Duration = Duration::from_secs(60);

    /// The instant `secs` seconds into the test.
    fn clock() -> impl Fn(u64) -> Instant {
        let start = Instant::now();
        move |secs| start + Duration::from_secs(secs)
    }

    /// A tracker whose hold the tests never reach.
    fn tracker() -> OffsetTracker {
        OffsetTracker::new(1000)
    }

    /// Completes an event of the tracker's current assignment.
    fn complete(t: &mut OffsetTracker, partition: i32, offset: i64) {
        assert!(t.complete(t.generation(), partition, offset).is_some(), "{partition}@{offset} was pending");
    }

    #[test]
    fn a_stored_offset_that_does_not_move_is_reported_once_and_again_when_it_moves() {
        let (at, mut t) = (clock(), tracker());
        t.begin(0, 7);
        t.begin(0, 8);
        t.begin(1, 3);
        assert_eq!(t.stalls(at(0), MINUTE), vec![]);
        complete(&mut t, 1, 3); // partition 1 has nothing waiting
        complete(&mut t, 0, 8);
        assert_eq!(t.stalls(at(59), MINUTE), vec![], "not a minute yet");
        let backlog = Backlog { oldest_pending: 7, done_behind: 1 };
        let began = Stall::Began { partition: 0, unmoved: Duration::from_secs(60), backlog };
        assert_eq!(t.stalls(at(60), MINUTE), vec![began]);
        assert_eq!(t.stalls(at(120), MINUTE), vec![], "once per stall");
        complete(&mut t, 0, 7);
        let ended = Stall::Ended { partition: 0, unmoved: Duration::from_secs(130) };
        assert_eq!(t.stalls(at(130), MINUTE), vec![ended]);
        assert_eq!(t.stalls(at(300), MINUTE), vec![], "nothing waits");
    }

    #[test]
    fn an_idle_partition_is_no_stall_and_its_clock_starts_at_the_last_look_that_saw_nothing_wait() {
        let (at, mut t) = (clock(), tracker());
        t.begin(0, 1);
        complete(&mut t, 0, 1);
        assert_eq!(t.stalls(at(0), MINUTE), vec![]);
        assert_eq!(t.stalls(at(500), MINUTE), vec![], "idle for long, nothing waits");
        t.begin(0, 2);
        assert_eq!(t.stalls(at(501), MINUTE), vec![]);
        assert_eq!(t.stalls(at(559), MINUTE), vec![], "59 s since the look that saw nothing wait");
        assert_eq!(t.stalls(at(560), MINUTE).len(), 1);
    }
}
