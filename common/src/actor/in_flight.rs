//! The bound on events in flight: back-pressure, and the drain at shutdown.
//!
//! A source takes a [`Slot`] before it takes an event; the slot rides in the
//! event's ticket (`messages.rs`), comes home with its completion, and is given
//! back when dropped: once the source has taken the completion in, or as the
//! last ticket of an event lost on its way goes. So a slow stage stops the
//! source instead of letting mailboxes (and memory) grow, and no path can
//! forget to give a slot back. Shutdown, and a consumer giving up its
//! partitions in a rebalance, wait until every slot is back.

use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

#[derive(Clone, Debug)]
pub struct InFlight(Arc<Slots>);

#[derive(Debug)]
struct Slots {
    free: Semaphore,
    capacity: u32,
    /// For threads that wait without a runtime.
    blocked: BlockedDrains,
}

/// The threads in [`InFlight::drained_blocking`], signalled on each release
/// while there are any: a release takes no lock when no one waits (nearly always).
#[derive(Debug, Default)]
struct BlockedDrains {
    waiting: AtomicUsize,
    lock: Mutex<()>,
    released: Condvar,
}

/// One event's place in flight, given back when dropped. The messages that
/// carry one event share its slot ([`SharedSlot`]).
#[derive(Debug)]
pub struct Slot(InFlight);

/// A slot shared by the messages of one event: given back when the last is dropped.
pub type SharedSlot = Arc<Slot>;

impl Drop for Slot {
    fn drop(&mut self) {
        let slots = &*(self.0).0;
        slots.free.add_permits(1);
        // Pairs with the fence in `drained_blocking`: either this sees the waiter,
        // or the waiter sees this slot free.
        fence(Ordering::SeqCst);
        let blocked = &slots.blocked;
        if blocked.waiting.load(Ordering::Relaxed) > 0 {
            let _guard = blocked.lock.lock().unwrap_or_else(|p| p.into_inner());
            blocked.released.notify_all();
        }
    }
}

impl InFlight {
    pub fn new(capacity: u32) -> Self {
        InFlight(Arc::new(Slots {
            free: Semaphore::new(capacity as usize),
            capacity,
            blocked: BlockedDrains::default(),
        }))
    }

    /// Waits for a free slot and takes it.
    pub async fn reserve(&self) -> Slot {
        self.0.free.acquire().await.expect("the in-flight semaphore is never closed").forget();
        Slot(self.clone())
    }

    /// Takes a free slot if there is one, without waiting.
    pub fn try_reserve(&self) -> Option<Slot> {
        let permit = self.0.free.try_acquire().ok()?;
        permit.forget();
        Some(Slot(self.clone()))
    }

    /// Waits until a slot is free, without taking it.
    pub async fn slot_freed(&self) {
        drop(self.0.free.acquire().await.expect("the in-flight semaphore is never closed"));
    }

    /// How many events may be in flight at most.
    pub fn capacity(&self) -> u32 {
        self.0.capacity
    }

    /// How many events are in flight now.
    pub fn count(&self) -> u32 {
        self.0.capacity - self.0.free.available_permits() as u32
    }

    /// Waits until nothing is in flight, at most `timeout`; true if drained.
    pub async fn drained(&self, timeout: Duration) -> bool {
        match tokio::time::timeout(timeout, self.0.free.acquire_many(self.0.capacity)).await {
            Ok(all) => {
                drop(all.expect("the in-flight semaphore is never closed"));
                true
            }
            Err(_) => false,
        }
    }

    /// Like [`InFlight::drained`], blocking the thread: for librdkafka's rebalance
    /// callback, which runs on the consumer's reader thread, outside any await.
    pub fn drained_blocking(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let blocked = &self.0.blocked;
        let mut guard = blocked.lock.lock().unwrap_or_else(|p| p.into_inner());
        blocked.waiting.fetch_add(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let drained = loop {
            if self.count() == 0 {
                break true;
            }
            let now = Instant::now();
            if now >= deadline {
                break false;
            }
            guard = blocked.released.wait_timeout(guard, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        };
        blocked.waiting.fetch_sub(1, Ordering::Relaxed);
        drained
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn drains_when_every_slot_is_dropped() {
        let in_flight = InFlight::new(3);
        let first = in_flight.reserve().await;
        let second = in_flight.reserve().await;
        assert_eq!(in_flight.count(), 2);
        assert!(!in_flight.drained(Duration::from_millis(20)).await);
        let drain = actix_rt::spawn({
            let in_flight = in_flight.clone();
            async move { in_flight.drained(Duration::from_secs(10)).await }
        });
        drop(first);
        drop(second);
        assert!(drain.await.unwrap());
        assert_eq!(in_flight.count(), 0);
    }

    #[test]
    fn try_reserve_takes_a_slot_only_when_one_is_free() {
        let in_flight = InFlight::new(1);
        let slot = in_flight.try_reserve();
        assert!(slot.is_some());
        assert!(in_flight.try_reserve().is_none());
        drop(slot);
        let again = in_flight.try_reserve();
        assert!(again.is_some());
        assert_eq!(in_flight.count(), 1);
    }

    #[test]
    fn a_shared_slot_is_given_back_when_its_last_holder_drops_it() {
        let in_flight = InFlight::new(1);
        let slot: SharedSlot = Arc::new(in_flight.try_reserve().unwrap());
        let holder = slot.clone();
        drop(slot);
        assert_eq!(in_flight.count(), 1);
        drop(holder);
        assert_eq!(in_flight.count(), 0);
    }

    #[actix_rt::test]
    async fn a_thread_can_wait_for_the_drain() {
        let in_flight = InFlight::new(2);
        let slot = in_flight.reserve().await;
        assert!(!in_flight.drained_blocking(Duration::from_millis(20)));
        let waiter = std::thread::spawn({
            let in_flight = in_flight.clone();
            move || in_flight.drained_blocking(Duration::from_secs(10))
        });
        drop(slot);
        assert!(waiter.join().unwrap());
    }
}
