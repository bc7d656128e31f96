//! What payment-service must not pay again after an assignment: the payment
//! events on `payment_topic` of the orders Kafka can still redeliver.
//!
//! Kafka redelivers an order only if its offset was not committed, so after an
//! assignment only the orders from each partition's committed position to its
//! current end can come again, and of those only the ones whose payment event
//! is already on `payment_topic` (written by this service before a SIGKILL, or
//! by another instance) must not be paid twice. The ledger is those, not the
//! whole history:
//!
//! - Each payment event goes to the `payment_topic` partition with the number of
//!   its order's `order_topic` partition (both topics have the same count: checked
//!   at start), and carries its order's offset in the header `order.offset` (and
//!   its partition in `order.partition` when the counts differ).
//! - Orders are paid roughly in offset order, so a partition's payments are read
//!   backwards from its end, a block at a time (all partitions at once), until a
//!   block whose payments are all of committed orders: the rest is older still. A
//!   block holds twice the events one instance can have in flight, which is about
//!   how far out of order payments can be written.
//!
//! If the counts differ, every payment of `payment_topic` is read, as the only
//! safe choice. Payment events without the headers (from other producers) are
//! kept, and do not end a partition's reading.

use actix::{Message, Recipient};
use common::event::{OrderEvent, Status};
use common::kafka::{self, read_ranges, watermarks, Reader};
use common::shutdown::Shutdown;
use log::{info, warn};
use rdkafka::consumer::Consumer;
use rdkafka::message::{BorrowedMessage, Headers, Message as _};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

const PAYMENTS: &[Status] = &[Status::PaymentSuccessful, Status::PaymentFailed];

/// The header of a payment event that names its order's `order_topic` partition,
/// when it is not the event's own.
pub const ORDER_PARTITION: &str = "order.partition";
/// The header of a payment event that names its order's offset.
pub const ORDER_OFFSET: &str = "order.offset";

/// Payment events read per partition and step backwards, at least.
pub const MIN_BLOCK: i64 = 1_000;

/// Where the service's topics are, and how they map onto each other.
#[derive(Clone, Debug)]
pub struct Topics {
    /// Where the broker is and how to reach it (`-X`, `--kafka-config`).
    pub client: ClientConfig,
    pub group: String,
    pub orders: String,
    pub payments: String,
    /// Payment events go to their order's partition number (same partition counts).
    pub pinned: bool,
    /// Payment events read per partition and step backwards: twice what one
    /// instance can have in flight (`--max-in-flight`), which is about how far out
    /// of order a payment can be written (a delivery that failed is published
    /// again behind those in flight).
    pub block: i64,
}

/// The orders already paid among those that can still be redelivered.
#[derive(Message, Clone, Debug, Default)]
#[rtype(result = "()")]
pub struct Ledger {
    pub paid: HashSet<u64>,
    /// For each assigned partition with uncommitted orders: its end when the
    /// ledger was read. Once the payment actor has an order at or past it, that
    /// partition's redeliveries are over.
    pub until: HashMap<i32, i64>,
}

impl Ledger {
    pub fn contains(&self, order_id: u64) -> bool {
        self.paid.contains(&order_id)
    }

    /// The payment actor has the order at `offset` of `partition`: once every
    /// partition is past its end, the ledger has served and is dropped.
    pub fn passed(&mut self, partition: i32, offset: i64) {
        if self.until.get(&partition).is_some_and(|&end| offset >= end) {
            self.until.remove(&partition);
            if self.until.is_empty() {
                *self = Ledger::default();
            }
        }
    }
}

/// The preparation of each assignment: read the ledger of the `assigned`
/// partitions and hand it to `payment` (retrying while the broker is away, until
/// shutdown). Blocking: it runs while those partitions are paused.
pub fn load_after_assign(
    topics: Topics,
    payment: Recipient<Ledger>,
    shutdown: Shutdown,
) -> impl Fn(&[i32]) + Send + Sync {
    move |assigned| {
        while !shutdown.is_triggered() {
            match load(&topics, assigned) {
                Ok(ledger) => return payment.do_send(ledger),
                Err(e) => {
                    warn!(target: "PaymentActor", "cannot read the ledger ({e}); retrying in 1 s before taking orders");
                    std::thread::sleep(Duration::from_secs(1)); // a retry pause, not a wait for an event
                }
            }
        }
    }
}

/// Reads the ledger of the `assigned` partitions of `order_topic`. Blocking.
fn load(topics: &Topics, assigned: &[i32]) -> Result<Ledger, String> {
    let started = Instant::now();
    let reader = kafka::reader(&topics.client, &topics.group)?;
    let committed = committed_positions(&reader, &topics.orders, assigned)?;
    let mut ledger = Ledger::default();
    // Orders that can come again: from the committed position (or the start) to the end.
    let mut uncommitted: HashMap<i32, Option<i64>> = HashMap::new();
    for &partition in assigned {
        let (first, end) = watermarks(&reader, &topics.orders, partition)?;
        let from = committed.get(&partition).copied().flatten();
        if from.unwrap_or(first) < end {
            uncommitted.insert(partition, from);
            ledger.until.insert(partition, end);
        }
    }
    let mut read = 0;
    if topics.pinned {
        read = paid_since(&reader, &topics.payments, topics.block, &uncommitted, &mut ledger.paid)?;
    } else if !uncommitted.is_empty() {
        read = paid_anywhere(&reader, &topics.payments, &mut ledger.paid)?;
    }
    info!(
        target: "PaymentActor",
        "{} orders already paid according to {} ({read} payment events read in {} ms; {} of {} partitions with uncommitted orders)",
        ledger.paid.len(),
        topics.payments,
        started.elapsed().as_millis(),
        uncommitted.len(),
        assigned.len(),
    );
    Ok(ledger)
}

/// The committed offset of each of `partitions` (`None`: nothing committed yet).
fn committed_positions(
    reader: &Reader,
    topic: &str,
    partitions: &[i32],
) -> Result<HashMap<i32, Option<i64>>, String> {
    let mut list = TopicPartitionList::new();
    for &partition in partitions {
        list.add_partition(topic, partition);
    }
    let committed = reader
        .committed_offsets(list, Duration::from_secs(15))
        .map_err(|e| format!("cannot read the committed offsets of {topic}: {e}"))?;
    Ok(committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(offset) => (e.partition(), Some(offset)),
            _ => (e.partition(), None),
        })
        .collect())
}

/// Adds to `paid` the orders at or after `from` (all, if `None`) of each
/// `order_topic` partition in `uncommitted` that have a payment event, reading the
/// same partitions of `payments` backwards, a block of each per step. Returns how
/// many payment events were read.
fn paid_since(
    reader: &Reader,
    payments: &str,
    block: i64,
    uncommitted: &HashMap<i32, Option<i64>>,
    paid: &mut HashSet<u64>,
) -> Result<usize, String> {
    // Per partition: its first offset, and where the part still unread ends.
    let mut unread: HashMap<i32, (i64, i64)> = HashMap::new();
    for &partition in uncommitted.keys() {
        unread.insert(partition, watermarks(reader, payments, partition)?);
    }
    let mut read = 0;
    while !unread.is_empty() {
        let blocks: Vec<(i32, i64, i64)> =
            unread.iter().map(|(&p, &(first, end))| (p, (end - block).max(first), end)).collect();
        // Per partition: (a payment located by its headers, one of them in the window).
        let mut seen: HashMap<i32, (bool, bool)> = HashMap::new();
        read_ranges(reader, payments, &blocks, |record| {
            read += 1;
            let Ok(payment) = OrderEvent::decode(record.payload(), PAYMENTS) else { return };
            let partition = record.partition();
            match order_position(record) {
                Some((p, offset)) if p == partition => {
                    let from = uncommitted.get(&p).copied().flatten();
                    let (located, in_window) = seen.entry(p).or_default();
                    *located = true;
                    if from.is_none_or(|from| offset >= from) {
                        *in_window = true;
                        paid.insert(payment.order_id);
                    }
                }
                Some(_) => {} // another partition's order: not one of ours
                None => {
                    paid.insert(payment.order_id); // cannot tell how old: kept, to be safe
                }
            }
        })?;
        for (partition, start, _) in blocks {
            let (located, in_window) = seen.get(&partition).copied().unwrap_or_default();
            // A block of payments all of committed orders: those before it are older.
            if start == unread[&partition].0 || (located && !in_window) {
                unread.remove(&partition);
            } else if let Some(part) = unread.get_mut(&partition) {
                part.1 = start;
            }
        }
    }
    Ok(read)
}

/// Adds to `paid` every order with a payment event anywhere on `payments`.
fn paid_anywhere(reader: &Reader, payments: &str, paid: &mut HashSet<u64>) -> Result<usize, String> {
    let mut read = 0;
    kafka::read_partitions(
        reader,
        payments,
        |first, _| first,
        |record| {
            read += 1;
            if let Ok(payment) = OrderEvent::decode(record.payload(), PAYMENTS) {
                paid.insert(payment.order_id);
            }
        },
    )?;
    Ok(read)
}

/// The `order_topic` partition and offset a payment event names in its headers;
/// without `order.partition`, its own partition number is its order's (it was
/// written to the partition with that number).
fn order_position(record: &BorrowedMessage) -> Option<(i32, i64)> {
    let headers = record.headers()?;
    let value = |name: &str| {
        let header = headers.iter().find(|h| h.key == name)?;
        std::str::from_utf8(header.value?).ok()?.parse::<i64>().ok()
    };
    let partition = match value(ORDER_PARTITION) {
        Some(partition) => i32::try_from(partition).ok()?,
        None => record.partition(),
    };
    Some((partition, value(ORDER_OFFSET)?))
}
