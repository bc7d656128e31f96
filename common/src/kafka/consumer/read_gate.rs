//! Which partitions a consumer fetches: two reasons to stop, one gate.
//!
//! - **Back-pressure**: every in-flight slot is taken, so the reader pauses
//!   every partition and polls on (see `reader_task.rs`).
//! - **A held partition**: its oldest event cannot finish and the most events
//!   allowed are done behind it, so only it is paused; the others read on. The
//!   consumer's offset tracker decides the holds (see `offsets.rs`); the gate
//!   keeps the last set it was given only to apply it, and to answer the reader.
//!
//! A partition is fetched when neither stops it, so lifting one never undoes
//! the other. The reader thread sets the back-pressure and the consumer actor's
//! thread the holds; librdkafka's pauses are changed under the gate's lock, so
//! the two never cross. librdkafka keeps a partition's pause through a
//! revocation and a new assignment, so each assignment is told anew
//! ([`ReadGate::assigned`]). Partitions are known by number: a service's
//! consumer reads one topic.

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::TopicPartitionList;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Mutex, MutexGuard};

/// What a gate pauses and resumes: a consumer's partitions (or a test's stand-in).
pub trait Fetching {
    fn assignment(&self) -> KafkaResult<TopicPartitionList>;
    fn pause(&self, partitions: &TopicPartitionList) -> KafkaResult<()>;
    fn resume(&self, partitions: &TopicPartitionList) -> KafkaResult<()>;
}

/// A consumer's partitions, as `$consumer` (any context) pauses and resumes them.
macro_rules! fetching {
    ($consumer:ident) => {
        impl<C: ConsumerContext + 'static> Fetching for $consumer<C> {
            fn assignment(&self) -> KafkaResult<TopicPartitionList> {
                Consumer::assignment(self)
            }

            fn pause(&self, partitions: &TopicPartitionList) -> KafkaResult<()> {
                Consumer::pause(self, partitions)
            }

            fn resume(&self, partitions: &TopicPartitionList) -> KafkaResult<()> {
                Consumer::resume(self, partitions)
            }
        }
    };
}

fetching!(BaseConsumer);
fetching!(StreamConsumer);

#[derive(Debug, Default)]
pub struct ReadGate {
    state: Mutex<State>,
    /// Whether any partition is held: the reader asks about each record it
    /// hands on, and nearly always none is.
    holding: AtomicBool,
}

#[derive(Debug, Default)]
struct State {
    back_pressured: bool,
    held: BTreeSet<i32>,
}

impl ReadGate {
    /// Pauses every assigned partition (`back_pressured`), or resumes those not
    /// held. Returns the partitions resumed.
    pub fn set_back_pressured(
        &self,
        consumer: &impl Fetching,
        back_pressured: bool,
    ) -> KafkaResult<TopicPartitionList> {
        let mut state = self.lock();
        state.back_pressured = back_pressured;
        let assigned = consumer.assignment()?;
        if back_pressured {
            consumer.pause(&assigned)?;
            return Ok(TopicPartitionList::new());
        }
        let open = only(&assigned, |partition| !state.held.contains(&partition));
        consumer.resume(&open)?;
        Ok(open)
    }

    /// Holds exactly the partitions of `held`, as the offset tracker decided:
    /// pauses those newly held, and resumes those no longer held unless
    /// back-pressure pauses every partition.
    pub fn apply_holds(&self, consumer: &impl Fetching, held: BTreeSet<i32>) -> KafkaResult<()> {
        let mut state = self.lock();
        if state.held == held {
            return Ok(());
        }
        let before = std::mem::replace(&mut state.held, held);
        self.holding.store(!state.held.is_empty(), SeqCst);
        let assigned = consumer.assignment()?;
        consumer.pause(&only(&assigned, |p| state.held.contains(&p) && !before.contains(&p)))?;
        if state.back_pressured {
            return Ok(());
        }
        consumer.resume(&only(&assigned, |p| before.contains(&p) && !state.held.contains(&p)))
    }

    /// Pauses or resumes each of `partitions`, just assigned, as the gate says.
    pub fn assigned(&self, consumer: &impl Fetching, partitions: &TopicPartitionList) -> KafkaResult<()> {
        let state = self.lock();
        let stopped = |p: i32| state.back_pressured || state.held.contains(&p);
        consumer.pause(&only(partitions, stopped))?;
        consumer.resume(&only(partitions, |p| !stopped(p)))
    }

    /// Whether every partition is paused for back-pressure.
    pub fn is_back_pressured(&self) -> bool {
        self.lock().back_pressured
    }

    /// Whether `partition` is held: its records are not handed on.
    pub fn holds(&self, partition: i32) -> bool {
        self.holding.load(SeqCst) && self.lock().held.contains(&partition)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The partitions of `list` for which `keep` holds.
fn only(list: &TopicPartitionList, keep: impl Fn(i32) -> bool) -> TopicPartitionList {
    let mut kept = TopicPartitionList::new();
    for element in list.elements().iter().filter(|e| keep(e.partition())) {
        kept.add_partition(element.topic(), element.partition());
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// A consumer that is assigned partitions 0..3 of one topic and remembers which are paused.
    #[derive(Default)]
    struct Partitions {
        paused: RefCell<BTreeSet<i32>>,
    }

    impl Partitions {
        fn paused(&self) -> Vec<i32> {
            self.paused.borrow().iter().copied().collect()
        }
    }

    fn list(partitions: &[i32]) -> TopicPartitionList {
        let mut list = TopicPartitionList::new();
        for &p in partitions {
            list.add_partition("order_topic", p);
        }
        list
    }

    fn numbers(list: &TopicPartitionList) -> Vec<i32> {
        list.elements().iter().map(|e| e.partition()).collect()
    }

    impl Fetching for Partitions {
        fn assignment(&self) -> KafkaResult<TopicPartitionList> {
            Ok(list(&[0, 1, 2]))
        }

        fn pause(&self, partitions: &TopicPartitionList) -> KafkaResult<()> {
            self.paused.borrow_mut().extend(numbers(partitions));
            Ok(())
        }

        fn resume(&self, partitions: &TopicPartitionList) -> KafkaResult<()> {
            for p in numbers(partitions) {
                self.paused.borrow_mut().remove(&p);
            }
            Ok(())
        }
    }

    #[test]
    fn back_pressure_pauses_every_partition_and_lifting_it_resumes_them() {
        let (gate, consumer) = (ReadGate::default(), Partitions::default());
        assert!(numbers(&gate.set_back_pressured(&consumer, true).unwrap()).is_empty());
        assert_eq!(consumer.paused(), [0, 1, 2]);
        assert_eq!(numbers(&gate.set_back_pressured(&consumer, false).unwrap()), [0, 1, 2]);
        assert!(consumer.paused().is_empty());
    }

    #[test]
    fn a_held_partition_stays_paused_when_back_pressure_lifts_and_the_others_read_on() {
        let (gate, consumer) = (ReadGate::default(), Partitions::default());
        gate.apply_holds(&consumer, BTreeSet::from([0])).unwrap();
        assert_eq!(consumer.paused(), [0], "only the held one");
        assert!(gate.holds(0) && !gate.holds(1));
        gate.set_back_pressured(&consumer, true).unwrap();
        assert_eq!(numbers(&gate.set_back_pressured(&consumer, false).unwrap()), [1, 2]);
        assert_eq!(consumer.paused(), [0]);
        gate.apply_holds(&consumer, BTreeSet::new()).unwrap();
        assert!(consumer.paused().is_empty());
        assert!(!gate.holds(0));
    }

    #[test]
    fn a_partition_released_under_back_pressure_waits_for_it_to_lift() {
        let (gate, consumer) = (ReadGate::default(), Partitions::default());
        gate.apply_holds(&consumer, BTreeSet::from([2])).unwrap();
        gate.set_back_pressured(&consumer, true).unwrap();
        gate.apply_holds(&consumer, BTreeSet::new()).unwrap();
        assert_eq!(consumer.paused(), [0, 1, 2], "back-pressure still pauses it");
        assert_eq!(numbers(&gate.set_back_pressured(&consumer, false).unwrap()), [0, 1, 2]);
    }

    #[test]
    fn each_set_of_holds_applied_pauses_the_new_and_resumes_the_released() {
        let (gate, consumer) = (ReadGate::default(), Partitions::default());
        gate.apply_holds(&consumer, BTreeSet::from([0, 2])).unwrap();
        assert_eq!(consumer.paused(), [0, 2]);
        gate.apply_holds(&consumer, BTreeSet::from([1, 2])).unwrap();
        assert_eq!(consumer.paused(), [1, 2]);
        gate.apply_holds(&consumer, BTreeSet::new()).unwrap(); // the partitions were revoked
        assert!(consumer.paused().is_empty());
        assert!(!gate.holds(1) && !gate.holds(2));
    }

    #[test]
    fn an_assignment_is_paused_where_the_gate_says_and_resumed_elsewhere() {
        let (gate, consumer) = (ReadGate::default(), Partitions::default());
        gate.apply_holds(&consumer, BTreeSet::from([1])).unwrap();
        consumer.paused.borrow_mut().extend([0, 2]); // librdkafka kept a pause of before the rebalance
        gate.assigned(&consumer, &list(&[0, 1, 2])).unwrap();
        assert_eq!(consumer.paused(), [1]);
        gate.set_back_pressured(&consumer, true).unwrap();
        consumer.paused.borrow_mut().clear(); // a fresh assignment while back-pressured
        gate.assigned(&consumer, &list(&[0, 1, 2])).unwrap();
        assert_eq!(consumer.paused(), [0, 1, 2]);
    }
}
