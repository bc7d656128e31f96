//! Copies of one order coalesced while it is on its way, then every copy
//! completed at once: what both consumer services do with an order they meet
//! again before its effect is done, or soon after.
//!
//! An order is on its way from its first arrival until its effect is done (its
//! payment event acknowledged, its email recorded as sent). A copy arriving
//! meanwhile waits with it: it is done when the original is, never ahead of
//! it. A copy of an order done lately is done at once, while its id is among
//! the last `capacity` remembered ([`RecentIds`]). Another order under the id
//! of one on its way (told apart by its key) is held until that one is done.

use crate::actor::recent_ids::RecentIds;
use foldhash::{HashMap, HashMapExt};

/// What became of an arrival: `W` is the work a first arrival starts.
#[derive(Debug, PartialEq)]
pub enum Arrival<T, W> {
    /// The first of its id: on its way now, with the work to do for it; once
    /// that is done, [`Coalescer::finish`] it.
    First(W),
    /// A copy of the order on its way: its ticket is completed with the original's.
    Copy,
    /// A copy of an order done lately: its ticket, to complete now.
    Done(T),
    /// Another order under the id of the one on its way: `finish` hands it back.
    Held,
}

/// What waits for an order on its way: handed back once it is done.
#[derive(Debug, PartialEq)]
pub struct Waiting<T> {
    /// The ticket of the order (of its first arrival).
    pub original: T,
    /// The tickets of its copies (nearly always none: no allocation then).
    pub copies: Vec<T>,
    /// Other orders under its id that arrived meanwhile, to be handled now.
    pub held: Vec<T>,
}

impl<T> Waiting<T> {
    /// The tickets of the order and of its copies, the original's first.
    pub fn tickets(&self) -> impl Iterator<Item = &T> {
        std::iter::once(&self.original).chain(&self.copies)
    }
}

/// An order on its way.
struct OnItsWay<K, T> {
    key: K,
    waiting: Waiting<T>,
    /// Its effect was refused: done, it is not remembered as done.
    refused: bool,
}

/// The orders on their way, by id, and the last ones done, each with its key
/// (`K`: what tells its copies from another order under the same id).
pub struct Coalescer<K, T> {
    on_their_way: HashMap<u64, OnItsWay<K, T>>,
    done: RecentIds<K>,
}

impl<K: PartialEq, T> Coalescer<K, T> {
    /// Remembers the last `capacity` orders done.
    pub fn new(capacity: usize) -> Self {
        Coalescer { on_their_way: HashMap::new(), done: RecentIds::new(capacity) }
    }

    /// Order `id` (`key`) arrived with `ticket`; `start` gives the work it
    /// starts if it is the first.
    pub fn arrive<W>(&mut self, id: u64, key: K, ticket: T, start: impl FnOnce() -> W) -> Arrival<T, W> {
        if let Some(on_its_way) = self.on_their_way.get_mut(&id) {
            if on_its_way.key != key {
                on_its_way.waiting.held.push(ticket);
                return Arrival::Held;
            }
            on_its_way.waiting.copies.push(ticket);
            return Arrival::Copy;
        }
        if self.done.get(id) == Some(&key) {
            return Arrival::Done(ticket);
        }
        let waiting = Waiting { original: ticket, copies: Vec::new(), held: Vec::new() };
        self.on_their_way.insert(id, OnItsWay { key, waiting, refused: false });
        Arrival::First(start())
    }

    /// The effect of order `id` was refused: once finished, its copies are
    /// not taken for done.
    pub fn refuse(&mut self, id: u64) {
        if let Some(on_its_way) = self.on_their_way.get_mut(&id) {
            on_its_way.refused = true;
        }
    }

    /// Order `id` is done: what waited for it, or `None` if it was not on its way.
    pub fn finish(&mut self, id: u64) -> Option<Waiting<T>> {
        let OnItsWay { key, waiting, refused } = self.on_their_way.remove(&id)?;
        if !refused {
            self.done.insert(id, key);
        }
        Some(waiting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl<K: PartialEq, T> Coalescer<K, T> {
        fn arrive_with(&mut self, id: u64, key: K, ticket: T) -> Arrival<T, u64> {
            self.arrive(id, key, ticket, || id)
        }
    }

    #[test]
    fn copies_wait_for_the_original_and_finish_with_it() {
        let mut orders = Coalescer::new(10);
        assert_eq!(orders.arrive_with(7, 'a', "first"), Arrival::First(7));
        let copy = orders.arrive(7, 'a', "copy", || -> u64 { unreachable!("a copy starts no work") });
        assert_eq!(copy, Arrival::Copy);
        let finished = orders.finish(7).expect("on its way");
        assert_eq!(finished.tickets().collect::<Vec<_>>(), [&"first", &"copy"]);
        assert!(finished.held.is_empty());
        assert_eq!(orders.finish(7), None, "finished once");
    }

    #[test]
    fn a_copy_of_an_order_done_is_done_at_once() {
        let mut orders = Coalescer::new(10);
        orders.arrive_with(7, 'a', "first");
        orders.finish(7);
        assert_eq!(orders.arrive_with(7, 'a', "late copy"), Arrival::Done("late copy"));
        assert_eq!(orders.arrive_with(7, 'b', "another order"), Arrival::First(7), "not a copy: another key");
    }

    #[test]
    fn another_order_under_the_id_is_held_until_the_first_is_done() {
        let mut orders = Coalescer::new(10);
        orders.arrive_with(7, 'a', "first");
        assert_eq!(orders.arrive_with(7, 'b', "other"), Arrival::Held);
        let finished = orders.finish(7);
        assert_eq!(finished, Some(Waiting { original: "first", copies: vec![], held: vec!["other"] }));
    }

    #[test]
    fn a_refused_order_is_not_remembered_as_done() {
        let mut orders = Coalescer::new(10);
        orders.arrive_with(7, 'a', "first");
        orders.refuse(7);
        orders.finish(7);
        assert_eq!(orders.arrive_with(7, 'a', "copy"), Arrival::First(7), "a copy meets the store again");
    }

    #[test]
    fn only_the_last_done_are_remembered() {
        let mut orders = Coalescer::new(1);
        for id in [1, 2] {
            orders.arrive_with(id, (), id);
            orders.finish(id);
        }
        assert_eq!(orders.arrive_with(1, (), 1), Arrival::First(1), "forgotten");
        assert_eq!(orders.arrive_with(2, (), 2), Arrival::Done(2));
    }
}
