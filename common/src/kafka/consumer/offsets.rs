//! Which offset may be stored: the highest one below which every event is done;
//! and when a partition must stop being read because its oldest event is stuck.
//!
//! Events of one partition finish out of order (a crash delays one, its
//! neighbours go on), but Kafka keeps one offset per partition. Storing offset N
//! claims everything up to N is done, so we store only up to the lowest
//! still-pending offset: nothing unfinished is ever committed.
//!
//! The events done behind a partition's oldest pending one stay tracked until it
//! finishes. `--max-in-flight` bounds the pending events, not those: one event
//! that cannot finish would let them grow by one per event read. So once
//! `hold_at` of them are done behind it, [`Progress::hold`] says to stop reading
//! that partition (the others read on), and to read it again once its oldest
//! event is done. The events already in flight when it stops still finish, so at
//! most `hold_at` + the in-flight bound - 1 are ever done behind it.
//!
//! [`OffsetTracker::stalls`] also watches the offset each partition may store:
//! one that has not moved for a while with events waiting is reported, once,
//! and again when it moves.

use foldhash::HashMap;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct OffsetTracker {
    /// Looked up twice per event: hashed with foldhash, not SipHash.
    partitions: HashMap<i32, PartitionOffsets>,
    /// Events done behind a partition's oldest pending one at which reading it stops.
    hold_at: usize,
}

#[derive(Debug, Default)]
struct PartitionOffsets {
    /// The offsets read and not yet stored through, ascending, each with
    /// whether its event is done. Offsets mostly arrive in order, so this is a
    /// queue: pushed at the back, and popped at the front as events finish.
    begun: VecDeque<(i64, bool)>,
    /// How many of `begun` are done: all of them behind its front, which is pending.
    done: usize,
    highest_begun: Option<i64>,
    stored: Option<i64>,
    /// Whether reading this partition was told to stop.
    held: bool,
    watch: Watch,
}

/// What [`OffsetTracker::stalls`] saw of a partition's stored offset.
#[derive(Debug, Default)]
struct Watch {
    /// The stored offset at the last look.
    seen: Option<i64>,
    /// The last look that saw it move, or nothing wait: it has not moved since.
    since: Option<Instant>,
    reported: bool,
}

/// What a completion changed for its partition.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// The offset now safe to store, if it moved.
    pub to_store: Option<i64>,
    /// `Some(true)`: stop reading the partition (its oldest pending event has
    /// `hold_at` done behind it); `Some(false)`: read it again (that event is done).
    pub hold: Option<bool>,
}

/// A partition's oldest pending event and the events done behind it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backlog {
    pub oldest_pending: i64,
    pub done_behind: usize,
}

/// A change in whether a partition's stored offset moves (see [`OffsetTracker::stalls`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Stall {
    /// It has not moved for `unmoved` while `backlog` waits.
    Began { partition: i32, unmoved: Duration, backlog: Backlog },
    /// It moved again after `unmoved`.
    Ended { partition: i32, unmoved: Duration },
}

impl PartitionOffsets {
    /// Where `offset` is in `begun` (`Err`: where it would go). Offsets are
    /// mostly consecutive, so its distance from the front is tried first.
    fn find(&self, offset: i64) -> Result<usize, usize> {
        let guess = self.begun.front().and_then(|&(front, _)| usize::try_from(offset - front).ok());
        match guess.and_then(|at| Some((at, self.begun.get(at)?.0))) {
            Some((at, begun)) if begun == offset => Ok(at),
            _ => self.begun.binary_search_by_key(&offset, |&(begun, _)| begun),
        }
    }

    fn backlog(&self) -> Option<Backlog> {
        let &(oldest_pending, _) = self.begun.front()?;
        Some(Backlog { oldest_pending, done_behind: self.done })
    }
}

impl OffsetTracker {
    /// A tracker that says to stop reading a partition once `hold_at` events
    /// are done behind its oldest pending one.
    pub fn new(hold_at: usize) -> Self {
        OffsetTracker { partitions: HashMap::default(), hold_at }
    }

    /// An event was read. Reading the same offset again (a redelivery) is harmless.
    pub fn begin(&mut self, partition: i32, offset: i64) {
        let p = self.partitions.entry(partition).or_default();
        if p.begun.back().is_none_or(|&(last, _)| last < offset) {
            p.begun.push_back((offset, false));
        } else {
            match p.find(offset) {
                Ok(again) => {
                    if std::mem::replace(&mut p.begun[again].1, false) {
                        p.done -= 1;
                    }
                }
                Err(place) => p.begun.insert(place, (offset, false)),
            }
        }
        p.highest_begun = p.highest_begun.max(Some(offset));
        // Everything before the first event we read is not ours to store.
        p.stored = p.stored.or(Some(offset - 1));
    }

    /// An event is done. Returns `None` if it was not pending (already done, or
    /// its partition was forgotten), else what changed: see [`Progress`].
    pub fn complete(&mut self, partition: i32, offset: i64) -> Option<Progress> {
        let p = self.partitions.get_mut(&partition)?;
        let at = p.find(offset).ok()?;
        if std::mem::replace(&mut p.begun[at].1, true) {
            return None;
        }
        p.done += 1;
        while p.begun.front().is_some_and(|&(_, done)| done) {
            p.begun.pop_front();
            p.done -= 1;
        }
        let done_through = match p.begun.front() {
            Some(&(lowest_pending, _)) => Some(lowest_pending - 1),
            None => p.highest_begun,
        };
        let mut progress = Progress::default();
        if done_through > p.stored {
            p.stored = done_through;
            progress.to_store = done_through;
        }
        let stuck = p.done >= self.hold_at;
        if stuck != p.held {
            p.held = stuck;
            progress.hold = Some(stuck);
        }
        Some(progress)
    }

    /// `partition`'s oldest pending event and the events done behind it, if one is pending.
    pub fn backlog(&self, partition: i32) -> Option<Backlog> {
        self.partitions.get(&partition)?.backlog()
    }

    /// Looks at each partition's stored offset (`now`, as often as a warning
    /// may be late): reports a partition whose offset has not moved for `after`
    /// while events of it wait, once, and again when it moves.
    pub fn stalls(&mut self, now: Instant, after: Duration) -> Vec<Stall> {
        let mut changes = Vec::new();
        for (&partition, p) in &mut self.partitions {
            let (stored, backlog) = (p.stored, p.backlog());
            let watch = &mut p.watch;
            match backlog {
                Some(backlog) if stored == watch.seen => {
                    let unmoved = now - *watch.since.get_or_insert(now);
                    if !watch.reported && unmoved >= after {
                        watch.reported = true;
                        changes.push(Stall::Began { partition, unmoved, backlog });
                    }
                }
                _ => {
                    if watch.reported {
                        let unmoved = watch.since.map_or(Duration::ZERO, |since| now - since);
                        changes.push(Stall::Ended { partition, unmoved });
                    }
                    *watch = Watch { seen: stored, since: Some(now), reported: false };
                }
            }
        }
        changes
    }

    /// Every partition was taken away (an eager rebalance): forget them all.
    /// Returns how many events were still pending; their completions will be
    /// ignored, and their records read again by whoever gets the partition.
    pub fn forget_all(&mut self) -> usize {
        self.partitions.drain().map(|(_, p)| p.begun.len() - p.done).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tracker whose bound the tests of storing never reach.
    fn tracker() -> OffsetTracker {
        OffsetTracker::new(1000)
    }

    const MINUTE: Duration = Duration::from_secs(60);

    /// The instant `secs` seconds into the test.
    fn clock() -> impl Fn(u64) -> Instant {
        let start = Instant::now();
        move |secs| start + Duration::from_secs(secs)
    }

    /// What `complete` said about the offset to store.
    fn stores(progress: Option<Progress>) -> Option<Option<i64>> {
        progress.map(|p| p.to_store)
    }

    #[test]
    fn stores_only_below_the_lowest_pending_offset() {
        let mut t = tracker();
        for offset in 10..15 {
            t.begin(0, offset);
        }
        assert_eq!(stores(t.complete(0, 12)), Some(None), "10 and 11 are still pending");
        assert_eq!(stores(t.complete(0, 11)), Some(None));
        assert_eq!(stores(t.complete(0, 10)), Some(Some(12)), "10..=12 are done");
        assert_eq!(stores(t.complete(0, 14)), Some(None));
        assert_eq!(stores(t.complete(0, 13)), Some(Some(14)));
    }

    #[test]
    fn offsets_with_gaps_between_them_are_tracked() {
        let mut t = tracker();
        for offset in [10, 12, 13, 17] {
            t.begin(0, offset); // 11, 14..=16: offsets no record has (compaction, markers)
        }
        assert_eq!(stores(t.complete(0, 13)), Some(None));
        assert_eq!(stores(t.complete(0, 12)), Some(None), "10 is still pending");
        assert_eq!(stores(t.complete(0, 10)), Some(Some(16)), "everything below 17 is done");
        assert_eq!(stores(t.complete(0, 12)), None, "done already");
        assert_eq!(stores(t.complete(0, 17)), Some(Some(17)));
    }

    #[test]
    fn partitions_are_independent() {
        let mut t = tracker();
        t.begin(0, 5);
        t.begin(1, 7);
        assert_eq!(stores(t.complete(1, 7)), Some(Some(7)));
        assert_eq!(stores(t.complete(0, 5)), Some(Some(5)));
    }

    #[test]
    fn a_second_completion_or_an_unknown_one_is_ignored() {
        let mut t = tracker();
        t.begin(0, 1);
        t.begin(0, 1); // redelivered after a crash
        assert_eq!(stores(t.complete(0, 1)), Some(Some(1)));
        assert_eq!(stores(t.complete(0, 1)), None);
        assert_eq!(stores(t.complete(2, 9)), None);
    }

    #[test]
    fn forgetting_reports_the_pending_events() {
        let mut t = tracker();
        t.begin(3, 1);
        t.begin(3, 2);
        t.begin(3, 3);
        t.begin(4, 7);
        t.complete(3, 1);
        t.complete(3, 3);
        assert_eq!(t.forget_all(), 2, "3[2] and 4[7]");
        assert_eq!(t.complete(3, 2), None);
        assert_eq!(t.forget_all(), 0);
    }

    #[test]
    fn a_partition_is_held_once_the_bound_is_done_behind_its_stuck_event_and_freed_when_it_is_done() {
        let mut t = OffsetTracker::new(3);
        for offset in 100..110 {
            t.begin(0, offset);
            t.begin(1, offset);
        }
        // 100 is stuck; 101 and 102 done behind it are within the bound.
        assert_eq!(t.complete(0, 101), Some(Progress::default()));
        assert_eq!(t.complete(0, 102), Some(Progress::default()));
        assert_eq!(t.complete(0, 103), Some(Progress { to_store: None, hold: Some(true) }), "the third");
        assert_eq!(t.backlog(0), Some(Backlog { oldest_pending: 100, done_behind: 3 }));
        // What was in flight still finishes: held already, nothing more to say.
        assert_eq!(t.complete(0, 105), Some(Progress::default()));
        assert_eq!(t.backlog(0), Some(Backlog { oldest_pending: 100, done_behind: 4 }));
        // The other partition is not held by it.
        for offset in 100..106 {
            assert_eq!(t.complete(1, offset), Some(Progress { to_store: Some(offset), hold: None }));
        }
        // 100 done: stored through 103 (104 is pending), and read again.
        assert_eq!(t.complete(0, 100), Some(Progress { to_store: Some(103), hold: Some(false) }));
        assert_eq!(t.backlog(0), Some(Backlog { oldest_pending: 104, done_behind: 1 }));
    }

    #[test]
    fn a_redelivered_event_is_pending_again_and_not_counted_done() {
        let mut t = OffsetTracker::new(2);
        for offset in 0..4 {
            t.begin(0, offset);
        }
        t.complete(0, 1);
        t.begin(0, 1); // read again: pending once more
        assert_eq!(t.backlog(0), Some(Backlog { oldest_pending: 0, done_behind: 0 }));
        assert_eq!(t.complete(0, 2), Some(Progress::default()), "one done behind 0, under 2");
        assert_eq!(t.complete(0, 1), Some(Progress { to_store: None, hold: Some(true) }));
    }

    #[test]
    fn a_stored_offset_that_does_not_move_is_reported_once_and_again_when_it_moves() {
        let (at, mut t) = (clock(), tracker());
        t.begin(0, 7);
        t.begin(0, 8);
        t.begin(1, 3);
        assert_eq!(t.stalls(at(0), MINUTE), vec![]);
        assert_eq!(t.complete(1, 3).and_then(|p| p.to_store), Some(3), "partition 1 has nothing waiting");
        t.complete(0, 8);
        assert_eq!(t.stalls(at(59), MINUTE), vec![], "not a minute yet");
        let backlog = Backlog { oldest_pending: 7, done_behind: 1 };
        let began = Stall::Began { partition: 0, unmoved: Duration::from_secs(60), backlog };
        assert_eq!(t.stalls(at(60), MINUTE), vec![began]);
        assert_eq!(t.stalls(at(120), MINUTE), vec![], "once per stall");
        t.complete(0, 7);
        let ended = Stall::Ended { partition: 0, unmoved: Duration::from_secs(130) };
        assert_eq!(t.stalls(at(130), MINUTE), vec![ended]);
        assert_eq!(t.stalls(at(300), MINUTE), vec![], "nothing waits");
    }

    #[test]
    fn an_idle_partition_is_no_stall_and_its_clock_starts_at_the_last_look_that_saw_nothing_wait() {
        let (at, mut t) = (clock(), tracker());
        t.begin(0, 1);
        t.complete(0, 1);
        assert_eq!(t.stalls(at(0), MINUTE), vec![]);
        assert_eq!(t.stalls(at(500), MINUTE), vec![], "idle for long, nothing waits");
        t.begin(0, 2);
        assert_eq!(t.stalls(at(501), MINUTE), vec![]);
        assert_eq!(t.stalls(at(559), MINUTE), vec![], "59 s since the look that saw nothing wait");
        assert_eq!(t.stalls(at(560), MINUTE).len(), 1);
    }
}
