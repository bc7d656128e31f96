//! The one ledger of a consumer's events: per partition (`partition_offsets.rs`),
//! which are done, the offset that may be stored and is not yet, and whether
//! the partition is held because its oldest event is stuck; the read gate only
//! applies the holds decided here.
//!
//! A rebalance forgets every partition and starts a new generation, which the
//! tickets of the events read after it carry: a completion of an earlier one
//! marks nothing, though its record may have been read again since.

use crate::kafka::consumer::partition_offsets::{PartitionOffsets, Progress};
use crate::kafka::consumer::stall_watch::{Backlog, Stall};
use foldhash::HashMap;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct OffsetTracker {
    /// Looked up twice per event: hashed with foldhash, not SipHash.
    partitions: HashMap<i32, PartitionOffsets>,
    /// Events done behind a partition's oldest pending one at which reading it stops.
    hold_at: usize,
    /// The assignment's generation: how many times the partitions were forgotten.
    generation: u64,
}

impl OffsetTracker {
    /// A tracker that says to stop reading a partition once `hold_at` events
    /// are done behind its oldest pending one.
    pub fn new(hold_at: usize) -> Self {
        OffsetTracker { partitions: HashMap::default(), hold_at, generation: 0 }
    }

    /// The current assignment's generation, for the tickets of the events read in it.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// An event was read. Reading the same offset again (a redelivery) is harmless.
    pub fn begin(&mut self, partition: i32, offset: i64) {
        self.partitions.entry(partition).or_default().begin(offset);
    }

    /// An event read in the assignment `generation` is done. Returns `None` if
    /// it was not pending in this one (already done, or read in an earlier
    /// one), else what changed: see [`Progress`].
    pub fn complete(&mut self, generation: u64, partition: i32, offset: i64) -> Option<Progress> {
        if generation != self.generation {
            return None;
        }
        self.partitions.get_mut(&partition)?.complete(offset, self.hold_at)
    }

    /// `partition`'s oldest pending event and the events done behind it, if one is pending.
    pub fn backlog(&self, partition: i32) -> Option<Backlog> {
        self.partitions.get(&partition)?.backlog()
    }

    /// The partitions told to stop being read, for the read gate to hold.
    pub fn held(&self) -> BTreeSet<i32> {
        self.partitions.iter().filter(|(_, p)| p.held()).map(|(&partition, _)| partition).collect()
    }

    /// Whether an offset waits to be stored.
    pub fn has_unstored(&self) -> bool {
        self.partitions.values().any(PartitionOffsets::has_unstored)
    }

    /// Each partition's offset to store, if it moved since the last call.
    pub fn take_unstored(&mut self) -> Vec<(i32, i64)> {
        let partitions = self.partitions.iter_mut();
        partitions.filter_map(|(&partition, p)| Some((partition, p.take_unstored()?))).collect()
    }

    /// Looks at each partition's stored offset (`now`, as often as a warning
    /// may be late): reports a partition whose offset has not moved for `after`
    /// while events of it wait, once, and again when it moves.
    pub fn stalls(&mut self, now: Instant, after: Duration) -> Vec<Stall> {
        let partitions = self.partitions.iter_mut();
        partitions.filter_map(|(&partition, p)| p.look(partition, now, after)).collect()
    }

    /// Every partition was taken away (an eager rebalance): forget them all,
    /// their holds and the offsets not yet stored with them, and start the next
    /// generation. Returns how many events were still pending; their
    /// completions will be ignored, and their records read again by whoever
    /// gets the partition.
    pub fn forget_all(&mut self) -> usize {
        self.generation += 1;
        self.partitions.drain().map(|(_, p)| p.pending()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::in_flight::InFlight;
    use crate::actor::messages::{Completed, Origin};
    use std::sync::Arc;

    /// Completes an event of the current assignment: `None` if it was not
    /// pending, else how its partition's hold changed and the offset it let store.
    fn done(t: &mut OffsetTracker, partition: i32, offset: i64) -> Option<(Option<bool>, Option<i64>)> {
        let progress = t.complete(t.generation(), partition, offset)?;
        let stored = t.take_unstored().into_iter().find(|&(p, _)| p == partition);
        Some((progress.hold, stored.map(|(_, through)| through)))
    }

    #[test]
    fn partitions_are_independent() {
        let mut t = OffsetTracker::new(1);
        t.begin(0, 5);
        t.begin(0, 6);
        t.begin(1, 7);
        assert_eq!(done(&mut t, 0, 6), Some((Some(true), None)));
        assert_eq!(done(&mut t, 1, 7), Some((None, Some(7))), "partition 0's stuck event holds only it");
        assert_eq!(t.held(), BTreeSet::from([0]));
        assert_eq!(done(&mut t, 0, 5), Some((Some(false), Some(6))));
    }

    #[test]
    fn forgetting_reports_the_pending_events_and_the_offsets_not_stored_go_with_them() {
        let mut t = OffsetTracker::new(1000);
        t.begin(3, 1);
        t.begin(3, 2);
        t.begin(3, 3);
        t.begin(4, 7);
        t.complete(0, 3, 1);
        t.complete(0, 3, 3);
        assert_eq!(t.forget_all(), 2, "3[2] and 4[7]");
        assert!(!t.has_unstored(), "3[1] is no longer ours to store");
        assert_eq!(t.complete(0, 3, 2), None);
        assert_eq!(t.complete(1, 3, 2), None);
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
        assert_eq!(done(&mut t, 0, 101), Some((None, None)));
        assert_eq!(done(&mut t, 0, 102), Some((None, None)));
        assert_eq!(done(&mut t, 0, 103), Some((Some(true), None)), "the third");
        assert_eq!(t.backlog(0), Some(Backlog { oldest_pending: 100, done_behind: 3 }));
        assert_eq!(t.held(), BTreeSet::from([0]));
        // What was in flight still finishes: held already, nothing more to say.
        assert_eq!(done(&mut t, 0, 105), Some((None, None)));
        assert_eq!(t.backlog(0), Some(Backlog { oldest_pending: 100, done_behind: 4 }));
        // The other partition is not held by it.
        for offset in 100..106 {
            assert_eq!(done(&mut t, 1, offset), Some((None, Some(offset))));
        }
        // 100 done: stored through 103 (104 is pending), and read again.
        assert_eq!(done(&mut t, 0, 100), Some((Some(false), Some(103))));
        assert_eq!(t.backlog(0), Some(Backlog { oldest_pending: 104, done_behind: 1 }));
        assert!(t.held().is_empty());
    }

    #[test]
    fn a_completion_of_an_earlier_assignment_frees_only_its_own_slot_and_marks_nothing() {
        let (in_flight, mut t) = (InFlight::new(4), OffsetTracker::new(1));
        let read = |t: &mut OffsetTracker, offset| {
            t.begin(0, offset);
            let origin = Origin::Record { generation: t.generation(), partition: 0, offset };
            Completed { origin, slot: Arc::new(in_flight.try_reserve().expect("a free slot")) }
        };
        // What the consumer actor does with a completion: the tracker marks it,
        // then the message goes, and its slot with it.
        let take_in = |t: &mut OffsetTracker, Completed { origin, slot: _ }: Completed| match origin {
            Origin::Record { generation, partition, offset } => t.complete(generation, partition, offset),
            Origin::Order { .. } => None,
        };
        let (before_5, before_6) = (read(&mut t, 5), read(&mut t, 6));
        t.forget_all(); // revoked while both were still in flight
        let (again_5, again_6) = (read(&mut t, 5), read(&mut t, 6));
        assert_eq!(in_flight.count(), 4);
        assert_eq!(take_in(&mut t, before_6), None);
        assert_eq!(in_flight.count(), 3, "its own slot, not the one of 6 read again");
        assert!(t.held().is_empty(), "6 done behind 5 would hold partition 0");
        assert_eq!(take_in(&mut t, before_5), None);
        assert_eq!(in_flight.count(), 2);
        assert_eq!(t.backlog(0), Some(Backlog { oldest_pending: 5, done_behind: 0 }), "5 and 6 are pending");
        assert!(!t.has_unstored(), "nothing to store");
        assert_eq!(take_in(&mut t, again_6), Some(Progress { hold: Some(true) }));
        assert_eq!(take_in(&mut t, again_5), Some(Progress { hold: Some(false) }));
        assert_eq!((in_flight.count(), t.take_unstored()), (0, vec![(0, 6)]));
    }
}
