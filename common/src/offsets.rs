//! Which offset may be stored: the highest one below which every event is done.
//!
//! Events of one partition finish out of order (a crash delays one, its
//! neighbours go on), but Kafka keeps one offset per partition. Storing offset N
//! claims everything up to N is done, so we store only up to the lowest
//! still-pending offset: nothing unfinished is ever committed.

use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: HashMap<i32, PartitionOffsets>,
}

#[derive(Debug, Default)]
struct PartitionOffsets {
    pending: BTreeSet<i64>,
    highest_begun: Option<i64>,
    stored: Option<i64>,
}

impl OffsetTracker {
    /// An event was read. Reading the same offset again (a redelivery) is harmless.
    pub fn begin(&mut self, partition: i32, offset: i64) {
        let p = self.partitions.entry(partition).or_default();
        p.pending.insert(offset);
        p.highest_begun = p.highest_begun.max(Some(offset));
        // Everything before the first event we read is not ours to store.
        p.stored = p.stored.or(Some(offset - 1));
    }

    /// An event is done. Returns `None` if it was not pending (already done, or its
    /// partition was forgotten), else `Some(to_store)`: the offset now safe to store,
    /// if it moved.
    pub fn complete(&mut self, partition: i32, offset: i64) -> Option<Option<i64>> {
        let p = self.partitions.get_mut(&partition)?;
        if !p.pending.remove(&offset) {
            return None;
        }
        let done_through = match p.pending.first() {
            Some(&lowest_pending) => Some(lowest_pending - 1),
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
        self.partitions.drain().map(|(_, p)| p.pending.len()).sum()
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
