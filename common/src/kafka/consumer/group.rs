//! A group member's client context: what happens around a rebalance.
//!
//! librdkafka runs these callbacks on the consumer's reader thread, which reads
//! no record meanwhile. Before partitions are taken away, the consumer's
//! [`RebalanceHooks`] finish the events in flight and the offsets stored are
//! committed, so the next owner starts where this one stopped. Each assignment
//! is paused or resumed as the [`ReadGate`] says: librdkafka keeps a
//! partition's pause through a revocation and a new assignment.

use crate::kafka::client::context::KafkaContext;
use crate::kafka::consumer::read_gate::ReadGate;
use crate::kafka::consumer::store_mark::{self, OtherStore};
use log::{info, warn};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::statistics::Statistics;
use rdkafka::ClientContext;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::OnceLock;

/// A service's consumer: a member of its group.
pub type GroupConsumer = StreamConsumer<GroupContext>;

pub struct GroupContext {
    /// librdkafka's lines and statistics, as every client's.
    client: KafkaContext,
    hooks: OnceLock<RebalanceHooks>,
    /// Which partitions are read; a partition assigned while stopped is paused
    /// as it comes, before any of its records is fetched.
    read_gate: ReadGate,
    /// Revocations so far: a record read before one is read again after it.
    revocations: AtomicU64,
    group: String,
    /// The id of the store this member fences with, checked against the
    /// other members' after each assignment (`store_mark.rs`).
    store_id: Option<String>,
}

/// What a consumer does around a rebalance; installed once its actors exist.
/// It runs on the consumer's reader thread (the revoke at shutdown runs where
/// the consumer is dropped).
pub struct RebalanceHooks {
    /// Before partitions are taken away: finish the events in flight, so their
    /// offsets are committed and the next owner starts where this one stopped.
    pub before_revoke: Box<dyn Fn() + Send + Sync>,
    /// After an assignment, when another member fences with another store.
    pub on_other_store: Box<dyn Fn(OtherStore) + Send + Sync>,
}

impl GroupContext {
    pub fn new(brokers: &str, group: &str, store_id: Option<&str>) -> Self {
        GroupContext {
            client: KafkaContext::new(brokers),
            hooks: OnceLock::new(),
            read_gate: ReadGate::default(),
            revocations: AtomicU64::new(0),
            group: group.to_string(),
            store_id: store_id.map(str::to_string),
        }
    }

    /// The first live member of the group whose store is not this member's.
    pub fn other_store(&self, consumer: &impl Consumer<Self>) -> KafkaResult<Option<OtherStore>> {
        match &self.store_id {
            Some(ours) => store_mark::other_store(consumer, &self.group, ours),
            None => Ok(None),
        }
    }

    /// The client's own context: its complaints and statistics.
    pub fn client(&self) -> &KafkaContext {
        &self.client
    }

    /// Which partitions this consumer fetches.
    pub fn read_gate(&self) -> &ReadGate {
        &self.read_gate
    }

    /// How many times partitions were revoked from this consumer.
    pub fn revocations(&self) -> u64 {
        self.revocations.load(SeqCst)
    }

    /// Installs the consumer's rebalance hooks (once).
    pub fn set_rebalance_hooks(&self, hooks: RebalanceHooks) {
        if self.hooks.set(hooks).is_err() {
            warn!(target: "kafka", "rebalance hooks are already installed; keeping the first ones");
        }
    }
}

impl ClientContext for GroupContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.client.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.client.error(error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        self.client.stats(statistics);
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(partitions) = rebalance else { return };
        info!(target: "kafka", "{} partitions revoked", partitions.count());
        self.revocations.fetch_add(1, SeqCst);
        if let Some(hooks) = self.hooks.get() {
            (hooks.before_revoke)();
        }
        if let Err(e) = commit_stored_offsets(consumer) {
            warn!(target: "kafka", "cannot commit before the rebalance ({e}): the next owner redoes the last events");
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                let list: Vec<String> = partitions
                    .elements()
                    .iter()
                    .map(|e| format!("{}[{}]", e.topic(), e.partition()))
                    .collect();
                info!(target: "kafka", "partitions assigned: {}", list.join(" "));
                if let Err(e) = self.read_gate.assigned(consumer, partitions) {
                    self.client.complain(&format!("cannot pause or resume the partitions assigned: {e}"));
                }
                match (self.other_store(consumer), self.hooks.get()) {
                    (Ok(Some(other)), Some(hooks)) => (hooks.on_other_store)(other),
                    (Err(e), _) => warn!(target: "kafka", "cannot check the group's stores: {e}"),
                    _ => {}
                }
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => warn!(target: "kafka", "rebalance failed: {e}"),
        }
    }
}

/// Commits the offsets stored so far, synchronously. Nothing stored since the
/// last commit is not an error.
pub fn commit_stored_offsets<C: ConsumerContext>(consumer: &impl Consumer<C>) -> Result<(), KafkaError> {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => Ok(()),
        result => result,
    }
}
