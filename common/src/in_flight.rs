//! The bound on events in flight: back-pressure, and the drain at shutdown.
//!
//! A source reserves a slot before it takes an event and the slot is released
//! when the event completes, so a slow stage stops the source instead of
//! letting mailboxes (and memory) grow. Shutdown waits until every slot is free.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

#[derive(Clone, Debug)]
pub struct InFlight {
    slots: Arc<Semaphore>,
    capacity: u32,
}

impl InFlight {
    pub fn new(capacity: u32) -> Self {
        InFlight {
            slots: Arc::new(Semaphore::new(capacity as usize)),
            capacity,
        }
    }

    /// Waits for a free slot and takes it.
    pub async fn reserve(&self) {
        self.slots
            .acquire()
            .await
            .expect("the in-flight semaphore is never closed")
            .forget();
    }

    /// Frees the slot of an event that is done.
    pub fn release(&self) {
        self.slots.add_permits(1);
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
}
