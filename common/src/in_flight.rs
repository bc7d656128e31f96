//! The bound on events in flight: back-pressure, and the drain at shutdown.
//!
//! A source reserves a slot before it takes an event and the slot is released
//! when the event completes, so a slow stage stops the source instead of
//! letting mailboxes (and memory) grow. Shutdown, and a consumer giving up its
//! partitions in a rebalance, wait until every slot is free.

use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

#[derive(Clone, Debug)]
pub struct InFlight {
    slots: Arc<Semaphore>,
    capacity: u32,
    /// For threads that wait without a runtime.
    blocked: Arc<BlockedDrains>,
}

/// The threads in [`InFlight::drained_blocking`], signalled on each release
/// while there are any: a release takes no lock when no one waits (nearly always).
#[derive(Debug, Default)]
struct BlockedDrains {
    waiting: AtomicUsize,
    lock: Mutex<()>,
    released: Condvar,
}

impl InFlight {
    pub fn new(capacity: u32) -> Self {
        InFlight { slots: Arc::new(Semaphore::new(capacity as usize)), capacity, blocked: Arc::default() }
    }

    /// Waits for a free slot and takes it.
    pub async fn reserve(&self) {
        self.slots.acquire().await.expect("the in-flight semaphore is never closed").forget();
    }

    /// Takes a free slot if there is one, without waiting.
    pub fn try_reserve(&self) -> bool {
        self.slots.try_acquire().map(|slot| slot.forget()).is_ok()
    }

    /// Frees the slot of an event that is done.
    pub fn release(&self) {
        self.slots.add_permits(1);
        // Pairs with the fence in `drained_blocking`: either this sees the waiter,
        // or the waiter sees this slot free.
        fence(Ordering::SeqCst);
        let blocked = &*self.blocked;
        if blocked.waiting.load(Ordering::Relaxed) > 0 {
            let _guard = blocked.lock.lock().unwrap_or_else(|p| p.into_inner());
            blocked.released.notify_all();
        }
    }

    /// How many events may be in flight at most.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// How many events are in flight now.
    pub fn count(&self) -> u32 {
        self.capacity - self.slots.available_permits() as u32
    }

    /// Waits until nothing is in flight, at most `timeout`; true if drained.
    pub async fn drained(&self, timeout: Duration) -> bool {
        match tokio::time::timeout(timeout, self.slots.acquire_many(self.capacity)).await {
            Ok(all) => {
                drop(all.expect("the in-flight semaphore is never closed"));
                true
            }
            Err(_) => false,
        }
    }
}

impl InFlight {
    /// Like [`InFlight::drained`], blocking the thread: for librdkafka's rebalance
    /// callback, which runs on the consumer's reader thread, outside any await.
    pub fn drained_blocking(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let blocked = &*self.blocked;
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
    async fn drains_when_every_reserved_slot_is_released() {
        let in_flight = InFlight::new(3);
        in_flight.reserve().await;
        in_flight.reserve().await;
        assert_eq!(in_flight.count(), 2);
        assert!(!in_flight.drained(Duration::from_millis(20)).await);
        let drain = actix_rt::spawn({
            let in_flight = in_flight.clone();
            async move { in_flight.drained(Duration::from_secs(10)).await }
        });
        in_flight.release();
        in_flight.release();
        assert!(drain.await.unwrap());
        assert_eq!(in_flight.count(), 0);
    }

    #[test]
    fn try_reserve_takes_a_slot_only_when_one_is_free() {
        let in_flight = InFlight::new(1);
        assert!(in_flight.try_reserve());
        assert!(!in_flight.try_reserve());
        in_flight.release();
        assert!(in_flight.try_reserve());
        assert_eq!(in_flight.count(), 1);
    }

    #[actix_rt::test]
    async fn a_thread_can_wait_for_the_drain() {
        let in_flight = InFlight::new(2);
        in_flight.reserve().await;
        assert!(!in_flight.drained_blocking(Duration::from_millis(20)));
        let waiter = std::thread::spawn({
            let in_flight = in_flight.clone();
            move || in_flight.drained_blocking(Duration::from_secs(10))
        });
        in_flight.release();
        assert!(waiter.join().unwrap());
    }
}
