//! One partition's offsets: the events read and whether each is done, the
//! offset that may be stored and is not yet, and whether reading must stop.
//!
//! Events of one partition finish out of order (a crash delays one, its
//! neighbours go on), but Kafka keeps one offset per partition. Storing offset N
//! claims everything up to N is done, so we store only up to the lowest
//! still-pending offset: nothing unfinished is ever committed.
//!
//! The events done behind the oldest pending one stay tracked until it
//! finishes. `--max-in-flight` bounds the pending events, not those: one event
//! that cannot finish would let them grow by one per event read. So once
//! `hold_at` of them are done behind it, [`Progress::hold`] says to stop reading
//! the partition (the others read on), and to read it again once its oldest
//! event is done. The events already in flight when it stops still finish, so at
//! most `hold_at` + the in-flight bound - 1 are ever done behind it.

use crate::kafka::consumer::stall_watch::{Backlog, Stall, Watch};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub(crate) struct PartitionOffsets {
    /// The offsets read and not yet stored through, ascending, each with
    /// whether its event is done. Offsets mostly arrive in order, so this is a
    /// queue: pushed at the back, and popped at the front as events finish.
    begun: VecDeque<(i64, bool)>,
    /// How many of `begun` are done: all of them behind its front, which is pending.
    done: usize,
    highest_begun: Option<i64>,
    /// The offset to store: every event through it is done, or was not ours.
    done_through: Option<i64>,
    /// Whether `done_through` moved since it was last taken to be stored.
    unstored: bool,
    /// Whether reading this partition was told to stop.
    held: bool,
    watch: Watch,
}

/// What a completion changed for its partition.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// `Some(true)`: stop reading the partition (its oldest pending event has
    /// `hold_at` done behind it); `Some(false)`: read it again (that event is done).
    pub hold: Option<bool>,
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

    /// An event was read. Reading the same offset again (a redelivery) is harmless.
    pub(crate) fn begin(&mut self, offset: i64) {
        if self.begun.back().is_none_or(|&(last, _)| last < offset) {
            self.begun.push_back((offset, false));
        } else {
            match self.find(offset) {
                Ok(again) => {
                    if std::mem::replace(&mut self.begun[again].1, false) {
                        self.done -= 1;
                    }
                }
                Err(place) => self.begun.insert(place, (offset, false)),
            }
        }
        self.highest_begun = self.highest_begun.max(Some(offset));
        // Everything before the first event we read is not ours to store.
        self.done_through = self.done_through.or(Some(offset - 1));
    }

    /// An event is done; reading stops once `hold_at` are done behind the
    /// oldest pending one. `None` if it was not pending, else what changed.
    pub(crate) fn complete(&mut self, offset: i64, hold_at: usize) -> Option<Progress> {
        let at = self.find(offset).ok()?;
        if std::mem::replace(&mut self.begun[at].1, true) {
            return None;
        }
        self.done += 1;
        while self.begun.front().is_some_and(|&(_, done)| done) {
            self.begun.pop_front();
            self.done -= 1;
        }
        let done_through = match self.begun.front() {
            Some(&(lowest_pending, _)) => Some(lowest_pending - 1),
            None => self.highest_begun,
        };
        if done_through > self.done_through {
            self.done_through = done_through;
            self.unstored = true;
        }
        let mut progress = Progress::default();
        let stuck = self.done >= hold_at;
        if stuck != self.held {
            self.held = stuck;
            progress.hold = Some(stuck);
        }
        Some(progress)
    }

    /// The oldest pending event and the events done behind it, if one is pending.
    pub(crate) fn backlog(&self) -> Option<Backlog> {
        let &(oldest_pending, _) = self.begun.front()?;
        Some(Backlog { oldest_pending, done_behind: self.done })
    }

    /// How many events read are not done.
    pub(crate) fn pending(&self) -> usize {
        self.begun.len() - self.done
    }

    /// Whether reading was told to stop.
    pub(crate) fn held(&self) -> bool {
        self.held
    }

    /// Whether the offset to store moved since it was last taken.
    pub(crate) fn has_unstored(&self) -> bool {
        self.unstored
    }

    /// The offset to store, if it moved since it was last taken.
    pub(crate) fn take_unstored(&mut self) -> Option<i64> {
        std::mem::take(&mut self.unstored).then_some(self.done_through).flatten()
    }

    /// The stall watch's look at this partition, `partition` (see `stall_watch.rs`).
    pub(crate) fn look(&mut self, partition: i32, now: Instant, after: Duration) -> Option<Stall> {
        let backlog = self.backlog();
        self.watch.look(partition, self.done_through, backlog, now, after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hold the tests of storing never reach.
    const NEVER: usize = 1000;

    /// A partition that read `offsets`.
    fn read(offsets: impl IntoIterator<Item = i64>) -> PartitionOffsets {
        let mut p = PartitionOffsets::default();
        offsets.into_iter().for_each(|offset| p.begin(offset));
        p
    }

    /// Completes `offset`: `None` if it was not pending, else the offset it let store.
    fn stores(p: &mut PartitionOffsets, offset: i64) -> Option<Option<i64>> {
        p.complete(offset, NEVER)?;
        Some(p.take_unstored())
    }

    #[test]
    fn stores_only_below_the_lowest_pending_offset() {
        let mut p = read(10..15);
        assert_eq!(stores(&mut p, 12), Some(None), "10 and 11 are still pending");
        assert_eq!(stores(&mut p, 11), Some(None));
        assert_eq!(stores(&mut p, 10), Some(Some(12)), "10..=12 are done");
        assert_eq!(stores(&mut p, 14), Some(None));
        assert_eq!(stores(&mut p, 13), Some(Some(14)));
        assert!(!p.has_unstored(), "each offset is taken to be stored once");
    }

    #[test]
    fn offsets_with_gaps_between_them_are_tracked() {
        // 11, 14..=16: offsets no record has (compaction, markers)
        let mut p = read([10, 12, 13, 17]);
        assert_eq!(stores(&mut p, 13), Some(None));
        assert_eq!(stores(&mut p, 12), Some(None), "10 is still pending");
        assert_eq!(stores(&mut p, 10), Some(Some(16)), "everything below 17 is done");
        assert_eq!(stores(&mut p, 12), None, "done already");
        assert_eq!(stores(&mut p, 17), Some(Some(17)));
    }

    #[test]
    fn a_second_completion_or_an_unknown_one_is_ignored() {
        let mut p = read([1, 1]); // redelivered after a crash
        assert_eq!(stores(&mut p, 1), Some(Some(1)));
        assert_eq!(stores(&mut p, 1), None);
        assert_eq!(stores(&mut p, 9), None);
    }

    #[test]
    fn a_redelivered_event_is_pending_again_and_not_counted_done() {
        let mut p = read(0..4);
        p.complete(1, 2);
        p.begin(1); // read again: pending once more
        assert_eq!(p.backlog(), Some(Backlog { oldest_pending: 0, done_behind: 0 }));
        assert_eq!(p.complete(2, 2), Some(Progress::default()), "one done behind 0, under 2");
        assert_eq!(p.complete(1, 2), Some(Progress { hold: Some(true) }));
    }
}
