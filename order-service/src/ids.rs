//! Where order ids start, and the ids a run makes: unique by construction, so
//! that no run reuses an id that payment-service would (rightly) take as an
//! order it already paid, whatever else is on `order_topic` and even after the
//! broker's storage was emptied.
//!
//! A run's first id is the number of microseconds since 2026-01-01T00:00:00Z
//! as it starts, and each next id of an instance is `--instances` above the
//! last. So a later run starts above every earlier run's ids as long as the
//! clock does not step back and, on average, fewer than a million orders a
//! second were made (with `--instances M`, fewer than a million / M a second by
//! each instance: its ids grow by M per order).
//!
//! Instances running at once take ids from disjoint classes: with
//! `--instances M`, instance `--instance K` makes only ids equal to K modulo M,
//! so two instances never make the same id, whichever started after which.
//! `--start-id` forces the first id (the first of the instance's class from it).
//!
//! No id is above [`MAX_ORDER_ID`] (2^53 - 1, which the clock reaches in about
//! the year 2311): a run that would pass it stops instead of wrapping.

use common::wire::event::MAX_ORDER_ID;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use thiserror::Error;

/// 2026-01-01T00:00:00Z, where the clock's ids count from, after the Unix epoch.
const CLOCK_EPOCH: Duration = Duration::from_secs(1_767_225_600);

/// Which ids this instance makes: those equal to `instance` modulo `instances`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IdClass {
    pub instance: u64,
    pub instances: u64,
}

impl IdClass {
    /// The smallest id of this class that is at least `from`, if it is at most
    /// [`MAX_ORDER_ID`].
    pub fn first_from(self, from: u64) -> Option<u64> {
        let below = from % self.instances;
        let up = (self.instance + self.instances - below) % self.instances;
        from.checked_add(up).filter(|&id| id <= MAX_ORDER_ID)
    }
}

/// The first id of a run started with `--start-id start`.
pub fn forced(class: IdClass, start: u64) -> Result<u64, String> {
    class.first_from(start).ok_or_else(|| {
        format!(
            "--start-id {start}: the first id of --instance {} of --instances {} from it is above \
             {MAX_ORDER_ID} (2^53 - 1), the highest order id; give a lower --start-id",
            class.instance, class.instances
        )
    })
}

/// Why the clock gives no first id.
#[derive(Debug, PartialEq, Error)]
pub enum ClockError {
    #[error(
        "the clock reads {seconds} s since 1970, before 2026-01-01T00:00:00Z, where order ids \
         count from: set the clock, or give the first id with --start-id"
    )]
    BeforeEpoch { seconds: u64 },
    #[error(
        "the clock is so far past 2026-01-01 that its microseconds are above {MAX_ORDER_ID} \
         (2^53 - 1), the highest order id: check the clock, or give the first id with --start-id"
    )]
    PastHighestId,
}

/// The first id of a run started at `now` without `--start-id`: the
/// microseconds since 2026-01-01T00:00:00Z, moved up to the instance's class.
pub fn from_clock(class: IdClass, now: SystemTime) -> Result<u64, ClockError> {
    let since_epoch = now.duration_since(UNIX_EPOCH + CLOCK_EPOCH).map_err(|_| ClockError::BeforeEpoch {
        seconds: now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
    })?;
    let micros = u64::try_from(since_epoch.as_micros()).ok();
    micros.and_then(|micros| class.first_from(micros)).ok_or(ClockError::PastHighestId)
}

/// The ids of one instance's run: from its first, each `step` above the last,
/// none above [`MAX_ORDER_ID`] (checked: never wrapping).
pub struct OrderIds {
    next: Option<u64>,
    step: u64,
}

impl OrderIds {
    pub fn new(first: u64, step: u64) -> Self {
        OrderIds { next: Some(first).filter(|&id| id <= MAX_ORDER_ID), step }
    }
}

impl Iterator for OrderIds {
    type Item = u64;

    /// The next id, or `None` once it would be above [`MAX_ORDER_ID`].
    fn next(&mut self) -> Option<u64> {
        let id = self.next?;
        self.next = id.checked_add(self.step).filter(|&next| next <= MAX_ORDER_ID);
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: IdClass = IdClass { instance: 0, instances: 1 };

    #[test]
    fn a_single_instance_takes_every_id() {
        assert_eq!(ONE.first_from(1001), Some(1001));
        assert_eq!(ONE.first_from(5000), Some(5000));
        assert_eq!(OrderIds::new(1001, 1).take(3).collect::<Vec<_>>(), [1001, 1002, 1003]);
    }

    #[test]
    fn instances_take_disjoint_ids_from_any_start() {
        for from in [0, 1001, 1002, 1003, 2000, MAX_ORDER_ID - 2] {
            let firsts: Vec<u64> =
                (0..3).map(|instance| IdClass { instance, instances: 3 }.first_from(from).unwrap()).collect();
            for (instance, &first) in firsts.iter().enumerate() {
                assert!(first >= from && first < from + 3, "{first} from {from}");
                assert_eq!(first % 3, instance as u64, "{first} is not of instance {instance}");
                assert!(OrderIds::new(first, 3).take(100).all(|id| id % 3 == instance as u64));
            }
        }
    }

    #[test]
    fn the_clock_counts_microseconds_since_2026() {
        let at = |micros: u64| UNIX_EPOCH + CLOCK_EPOCH + Duration::from_micros(micros);
        assert_eq!(from_clock(ONE, at(0)), Ok(0));
        assert_eq!(from_clock(ONE, at(29_000_000_000_123)), Ok(29_000_000_000_123));
        let second_of_two = IdClass { instance: 1, instances: 2 };
        assert_eq!(from_clock(second_of_two, at(1_000_000)), Ok(1_000_001));
        assert_eq!(from_clock(second_of_two, at(1_000_001)), Ok(1_000_001));
        // 2026-01-01T00:00:00Z is 1767225600 s after the Unix epoch.
        let new_year = UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        assert_eq!(from_clock(ONE, new_year + Duration::from_secs(1)), Ok(1_000_000));
    }

    #[test]
    fn the_clock_stays_below_the_bound_until_2311() {
        let years = |n: u64| UNIX_EPOCH + CLOCK_EPOCH + Duration::from_secs(n * 36_525 * 864);
        assert!(from_clock(ONE, years(285)).is_ok_and(|id| id <= MAX_ORDER_ID));
        let past = from_clock(ONE, years(286)).unwrap_err().to_string();
        assert!(past.contains("above 9007199254740991"), "{past}");
    }

    #[test]
    fn a_clock_before_2026_is_an_error_naming_the_fix() {
        let before =
            from_clock(ONE, UNIX_EPOCH + CLOCK_EPOCH - Duration::from_micros(1)).unwrap_err().to_string();
        assert!(before.contains("before 2026-01-01") && before.contains("--start-id"), "{before}");
    }

    #[test]
    fn a_start_id_whose_class_is_above_the_bound_is_refused() {
        assert_eq!(forced(ONE, MAX_ORDER_ID), Ok(MAX_ORDER_ID));
        let odd = IdClass { instance: 1, instances: 2 };
        assert_eq!(forced(odd, MAX_ORDER_ID), Ok(MAX_ORDER_ID)); // 2^53 - 1 is odd
        let even = IdClass { instance: 0, instances: 2 };
        let refused = forced(even, MAX_ORDER_ID).unwrap_err();
        assert!(refused.contains("above 9007199254740991"), "{refused}");
        assert_eq!(IdClass { instance: 5, instances: 7 }.first_from(u64::MAX), None);
    }

    #[test]
    fn ids_stop_at_the_bound_instead_of_wrapping() {
        let last = OrderIds::new(MAX_ORDER_ID - 2, 1).collect::<Vec<_>>();
        assert_eq!(last, [MAX_ORDER_ID - 2, MAX_ORDER_ID - 1, MAX_ORDER_ID]);
        let stepped = OrderIds::new(MAX_ORDER_ID - 5, 3).collect::<Vec<_>>();
        assert_eq!(stepped, [MAX_ORDER_ID - 5, MAX_ORDER_ID - 2]);
        assert_eq!(OrderIds::new(u64::MAX - 1, 1000).next(), None);
        assert_eq!(OrderIds::new(MAX_ORDER_ID, u64::MAX).collect::<Vec<_>>(), [MAX_ORDER_ID]);
    }
}
