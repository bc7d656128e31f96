//! Which offset may be stored: the highest one below which every event is done.
//!
//! Events of one partition finish out of order (a crash delays one, its
//! neighbours go on), but Kafka keeps one offset per partition. Storing offset N
//! claims everything up to N is done, so we store only up to the lowest
//! still-pending offset: nothing unfinished is ever committed.

use foldhash::HashMap;
use std::collections::VecDeque;

#[derive(Debug, Default)]
pub struct OffsetTracker {
    /// Looked up twice per event: hashed with foldhash, not SipHash.
    partitions: HashMap<i32, PartitionOffsets>,
}

#[derive(Debug, Default)]
struct PartitionOffsets {
    /// The offsets read and not yet stored through, ascending, each with
    /// whether its event is done. Offsets mostly arrive in order, so this is a
    /// queue: pushed at the back, and popped at the front as events finish.
    begun: VecDeque<(i64, bool)>,
    highest_begun: Option<i64>,
    stored: Option<i64>,
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
}

impl OffsetTracker {
    /// An event was read. Reading the same offset again (a redelivery) is harmless.
    pub fn begin(&mut self, partition: i32, offset: i64) {
        let p = self.partitions.entry(partition).or_default();
        if p.begun.back().is_none_or(|&(last, _)| last < offset) {
            p.begun.push_back((offset, false));
        } else {
            match p.find(offset) {
                Ok(again) => p.begun[again].1 = false,
                Err(place) => p.begun.insert(place, (offset, false)),
            }
        }
        p.highest_begun = p.highest_begun.max(Some(offset));
        // Everything before the first event we read is not ours to store.
        p.stored = p.stored.or(Some(offset - 1));
    }

    /// An event is done. Returns `None` if it was not pending (already done, or its
    /// partition was forgotten), else `Some(to_store)`: the offset now safe to store,
    /// if it moved.
    pub fn complete(&mut self, partition: i32, offset: i64) -> Option<Option<i64>> {
        let p = self.partitions.get_mut(&partition)?;
        let at = p.find(offset).ok()?;
        if std::mem::replace(&mut p.begun[at].1, true) {
            return None;
        }
        while p.begun.front().is_some_and(|&(_, done)| done) {
            p.begun.pop_front();
        }
        let done_through = match p.begun.front() {
            Some(&(lowest_pending, _)) => Some(lowest_pending - 1),
            None => p.highest_begun,
        };
        if done_through > p.stored {
            p.stored = done_through;
            return Some(done_through);
        }
        Some(None)
    }

    /// Every partition was taken away (an eager rebalance): forget them all.
    /// Returns how many events were still pending; their completions will be
    /// ignored, and their records read again by whoever gets the partition.
    pub fn forget_all(&mut self) -> usize {
        self.partitions.drain().map(|(_, p)| p.begun.iter().filter(|&&(_, done)| !done).count()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_only_below_the_lowest_pending_offset() {
        let mut t = OffsetTracker::default();
        for offset in 10..15 {
            t.begin(0, offset);
        }
        assert_eq!(t.complete(0, 12), Some(None), "10 and 11 are still pending");
        assert_eq!(t.complete(0, 11), Some(None));
        assert_eq!(t.complete(0, 10), Some(Some(12)), "10..=12 are done");
        assert_eq!(t.complete(0, 14), Some(None));
        assert_eq!(t.complete(0, 13), Some(Some(14)));
    }

    #[test]
    fn offsets_with_gaps_between_them_are_tracked() {
        let mut t = OffsetTracker::default();
        for offset in [10, 12, 13, 17] {
            t.begin(0, offset); // 11, 14..=16: offsets no record has (compaction, markers)
        }
        assert_eq!(t.complete(0, 13), Some(None));
        assert_eq!(t.complete(0, 12), Some(None), "10 is still pending");
        assert_eq!(t.complete(0, 10), Some(Some(16)), "everything below 17 is done");
        assert_eq!(t.complete(0, 12), None, "done already");
        assert_eq!(t.complete(0, 17), Some(Some(17)));
    }

    #[test]
    fn partitions_are_independent() {
        let mut t = OffsetTracker::default();
        t.begin(0, 5);
        t.begin(1, 7);
        assert_eq!(t.complete(1, 7), Some(Some(7)));
        assert_eq!(t.complete(0, 5), Some(Some(5)));
    }

    #[test]
    fn a_second_completion_or_an_unknown_one_is_ignored() {
        let mut t = OffsetTracker::default();
        t.begin(0, 1);
        t.begin(0, 1); // redelivered after a crash
        assert_eq!(t.complete(0, 1), Some(Some(1)));
        assert_eq!(t.complete(0, 1), None);
        assert_eq!(t.complete(2, 9), None);
    }

    #[test]
    fn forgetting_reports_the_pending_events() {
        let mut t = OffsetTracker::default();
        t.begin(3, 1);
        t.begin(3, 2);
        t.begin(4, 7);
        t.complete(3, 1);
        assert_eq!(t.forget_all(), 2);
        assert_eq!(t.complete(3, 2), None);
        assert_eq!(t.forget_all(), 0);
    }
}
