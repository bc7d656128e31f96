//! The order ids a service handled most recently, at most a fixed number of them:
//! the memory that recognises a second copy of a record, bounded whatever the
//! history.
//!
//! Kafka redelivers only records whose offsets were not yet committed, and a
//! process reads each offset once per assignment, so within one process a copy
//! arrives either at once (a crashed actor's event, handed to it again) or as a
//! second record of the same order. The first needs only the last few ids; the
//! second is recognised while its original is among the last `capacity` ids.

use foldhash::{HashMap, HashMapExt};
use std::collections::VecDeque;

/// The last `capacity` ids, each with what is remembered of it (`V`: nothing,
/// or what tells its copies from another order under the same id).
#[derive(Debug)]
pub struct RecentIds<V = ()> {
    capacity: usize,
    /// Hashed with foldhash, not SipHash: looked up for every event, and an id
    /// hashes in a few instructions (SipHash was ~2 % of payment-service's CPU).
    ids: HashMap<u64, V>,
    /// Oldest first: who goes when the set is full.
    order: VecDeque<u64>,
}

impl<V> RecentIds<V> {
    pub fn new(capacity: usize) -> Self {
        RecentIds { capacity: capacity.max(1), ids: HashMap::new(), order: VecDeque::new() }
    }

    /// Remembers `id` with `value`, forgetting the oldest beyond capacity. False
    /// (and `value` not kept) if it was known.
    pub fn insert(&mut self, id: u64, value: V) -> bool {
        if self.ids.contains_key(&id) {
            return false;
        }
        self.ids.insert(id, value);
        self.order.push_back(id);
        if self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.ids.remove(&oldest);
            }
        }
        true
    }

    pub fn get(&self, id: u64) -> Option<&V> {
        self.ids.get(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl RecentIds {
        fn insert_id(&mut self, id: u64) -> bool {
            self.insert(id, ())
        }

        fn contains(&self, id: u64) -> bool {
            self.get(id).is_some()
        }

        fn len(&self) -> usize {
            self.ids.len()
        }
    }

    #[test]
    fn remembers_the_last_ids_up_to_capacity() {
        let mut recent = RecentIds::new(3);
        assert!(recent.insert_id(1));
        assert!(!recent.insert_id(1), "a copy is recognised");
        for id in 2..=4 {
            assert!(recent.insert_id(id));
        }
        assert_eq!(recent.len(), 3);
        assert!(!recent.contains(1), "the oldest went when the fourth came");
        assert!(recent.contains(2) && recent.contains(4));
    }

    #[test]
    fn a_recognised_copy_does_not_refresh_or_grow() {
        let mut recent = RecentIds::new(2);
        recent.insert_id(7);
        recent.insert_id(8);
        recent.insert_id(7);
        recent.insert_id(9);
        assert!(!recent.contains(7), "7 was the oldest insertion");
        assert_eq!(recent.len(), 2);
    }
}
