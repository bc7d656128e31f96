//! Where order ids start: after the highest order already on `order_topic`, so
//! that a new run never reuses an id that payment-service would (rightly) ignore
//! as already paid.
//!
//! Instances running at once take ids from disjoint classes: with
//! `--instances M`, instance `--instance K` makes only ids equal to K modulo M,
//! so two instances never make the same id, whichever started after which.
//! `--start-id` forces the first id (the first of the instance's class from it).

use common::event::{OrderEvent, Status};
use common::kafka::read_tail;
use log::info;
use rdkafka::message::Message as _;
use rdkafka::ClientConfig;
use std::time::Instant;

/// The first order id on a topic that holds no order yet.
const FIRST_ORDER_ID: u64 = 1001;

/// How many of each partition's last records are searched for the highest order
/// id: bad records (dead-lettered by payment-service) stay on the topic, so the
/// last one may not be an order.
const TAIL: i64 = 1000;

/// Which ids this instance makes: those equal to `instance` modulo `instances`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IdClass {
    pub instance: u64,
    pub instances: u64,
}

impl IdClass {
    /// The smallest id of this class that is at least `from`.
    pub fn first_from(self, from: u64) -> u64 {
        let below = from % self.instances;
        let up = (self.instance + self.instances - below) % self.instances;
        from.saturating_add(up)
    }
}

/// The first id of this run: `start_id` if given, else the first after the
/// highest order on `topic`, read with `client` (blocking).
pub fn first_id(
    client: &ClientConfig,
    topic: &str,
    class: IdClass,
    start_id: Option<u64>,
) -> Result<u64, String> {
    if let Some(start) = start_id {
        let first = class.first_from(start);
        info!(target: "OrderGenerator", "order ids start at {first} (--start-id {start})");
        return Ok(first);
    }
    let started = Instant::now();
    let (mut highest, mut records) = (None::<u64>, 0u64);
    read_tail(client, topic, TAIL, |record| {
        records += 1;
        if let Ok(order) = OrderEvent::decode(record.payload(), &[Status::Created]) {
            highest = highest.max(Some(order.order_id));
        }
    })?;
    let first = match highest {
        Some(highest) => class.first_from(highest.saturating_add(1).max(FIRST_ORDER_ID)),
        None if records == 0 => class.first_from(FIRST_ORDER_ID),
        None => {
            return Err(format!(
                "cannot tell where order ids continue: the last {TAIL} records of each partition of \
                 {topic} hold no valid order; give the first id with --start-id"
            ))
        }
    };
    match highest {
        Some(highest) => info!(
            target: "OrderGenerator",
            "order ids continue at {first}: the highest order on {topic} is {highest} (read in {} ms)",
            started.elapsed().as_millis()
        ),
        None => info!(target: "OrderGenerator", "{topic} holds no order yet: order ids start at {first}"),
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_instance_takes_every_id() {
        let class = IdClass { instance: 0, instances: 1 };
        assert_eq!(class.first_from(1001), 1001);
        assert_eq!(class.first_from(5000), 5000);
    }

    #[test]
    fn instances_take_disjoint_ids_from_any_start() {
        for from in [1001, 1002, 1003, 2000] {
            let firsts: Vec<u64> =
                (0..3).map(|instance| IdClass { instance, instances: 3 }.first_from(from)).collect();
            for (instance, &first) in firsts.iter().enumerate() {
                assert!(first >= from && first < from + 3, "{first} from {from}");
                assert_eq!(first % 3, instance as u64, "{first} is not of instance {instance}");
            }
        }
    }
}
