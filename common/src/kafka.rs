//! The Kafka side of a service: client settings, the clients made with them,
//! and a client context that turns librdkafka's chatter into readable log lines.
//!
//! Settings follow rust-rdkafka's `at_least_once.rs`: offsets are stored by hand
//! once an event's effect is done (`enable.auto.offset.store=false`) and committed
//! in the background; the producer is idempotent and waits for every replica.

use crate::config::KafkaArgs;
use crate::producer::{Deliveries, KafkaProducer};
use crate::read_gate::ReadGate;
use crate::stats::Stats;
use log::{debug, info, warn};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::BorrowedMessage;
use rdkafka::producer::ProducerContext;
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Broker trouble is logged at most this often.
const COMPLAINT_INTERVAL: Duration = Duration::from_secs(5);

/// How long waking a resumed partition's fetcher may block (see `wake_fetchers`).
const WAKE_TIMEOUT: Duration = Duration::from_millis(100);

/// The dead-letter topic of `topic`.
pub fn dead_letter_topic(topic: &str) -> String {
    format!("{topic}.dlq")
}

/// Receives librdkafka's logs and errors: broker trouble becomes one WARN line
/// every few seconds at most (it retries on its own), the rest goes to debug.
/// A consumer's context also runs its [`RebalanceHooks`] and pauses its
/// partitions as its [`ReadGate`] says: all of them while the reader is
/// back-pressured, and those held (their oldest event is stuck).
pub struct KafkaContext {
    brokers: String,
    last_complaint: Mutex<Option<Instant>>,
    rebalance_hooks: OnceLock<RebalanceHooks>,
    /// Which partitions are read; a partition assigned while stopped is paused
    /// as it comes, before any of its records is fetched, and one assigned
    /// later is resumed (librdkafka would keep it paused).
    read_gate: ReadGate,
    /// Revocations so far: a record read before one is read again after it.
    revocations: AtomicU64,
    /// Where librdkafka's statistics go (a consumer's lag), once set.
    statistics: OnceLock<Arc<Stats>>,
}

/// What a consumer does around a rebalance; installed once its actors exist.
/// It runs on the consumer's reader thread, which reads no record meanwhile
/// (the revoke at shutdown runs where the consumer is dropped).
pub struct RebalanceHooks {
    /// Before partitions are taken away: finish the events in flight, so their
    /// offsets are committed and the next owner starts where this one stopped.
    pub before_revoke: Box<dyn Fn() + Send + Sync>,
}

impl KafkaContext {
    /// The context of a client of `brokers` (the producer's wraps one: see `producer.rs`).
    pub fn new(brokers: &str) -> Self {
        KafkaContext {
            brokers: brokers.to_string(),
            last_complaint: Mutex::new(None),
            rebalance_hooks: OnceLock::new(),
            read_gate: ReadGate::default(),
            revocations: AtomicU64::new(0),
            statistics: OnceLock::new(),
        }
    }

    /// Sends this client's librdkafka statistics (every `statistics.interval.ms`) to `stats`.
    pub fn report_statistics_to(&self, stats: Arc<Stats>) {
        let _ = self.statistics.set(stats);
    }

    /// Pauses fetching for every partition `consumer` holds while it is
    /// back-pressured, and for those assigned to it meanwhile; resumes those
    /// not held after. Polling goes on meanwhile. The fetchers of the
    /// partitions resumed are woken once the gate is let go (a round trip).
    pub fn set_paused(&self, consumer: &impl Consumer<KafkaContext>, paused: bool) {
        match self.read_gate.set_back_pressured(consumer, paused) {
            Ok(resumed) => wake_fetchers(consumer, &resumed),
            Err(e) => {
                self.complain(&format!("cannot {} reading: {e}", if paused { "pause" } else { "resume" }))
            }
        }
    }

    /// Stops fetching `partition` (`held`) whatever the back-pressure, or
    /// fetches it again unless back-pressured. Its fetcher is not woken (see
    /// `wake_fetchers`): after a stall, a second is nothing, and the caller's
    /// thread does not wait on the network.
    pub fn set_held(&self, consumer: &impl Consumer<KafkaContext>, partition: i32, held: bool) {
        let result = if held {
            self.read_gate.hold(consumer, partition)
        } else {
            self.read_gate.release(consumer, partition)
        };
        if let Err(e) = result {
            let what = if held { "hold" } else { "release" };
            self.complain(&format!("cannot {what} partition {partition}: {e}"));
        }
    }

    /// Releases every partition held: for a revocation, which forgets what held them.
    pub fn release_held(&self, consumer: &impl Consumer<KafkaContext>) {
        if let Err(e) = self.read_gate.release_all(consumer) {
            self.complain(&format!("cannot release the partitions held: {e}"));
        }
    }

    /// Whether `partition` is held: its records wait instead of being handed on.
    pub fn holds(&self, partition: i32) -> bool {
        self.read_gate.holds(partition)
    }

    /// How many times partitions were revoked from this consumer.
    pub fn revocations(&self) -> u64 {
        self.revocations.load(SeqCst)
    }

    /// Installs the consumer's rebalance hooks (once).
    pub fn set_rebalance_hooks(&self, hooks: RebalanceHooks) {
        if self.rebalance_hooks.set(hooks).is_err() {
            warn!(target: "kafka", "rebalance hooks are already installed; keeping the first ones");
        }
    }

    /// Logs broker trouble as one WARN line every few seconds at most (librdkafka
    /// retries on its own); the rest goes to debug.
    pub fn complain(&self, what: &str) {
        let mut last = self.last_complaint.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|at| at.elapsed() < COMPLAINT_INTERVAL) {
            debug!(target: "kafka", "{what}");
            return;
        }
        *last = Some(Instant::now());
        warn!(target: "kafka", "Kafka broker at {} is unreachable or failing: {what} (retrying)", self.brokers);
    }
}

impl ClientContext for KafkaContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning => self.complain(&format!("{facility}: {message}")),
            _ => debug!(target: "librdkafka", "{facility}: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.complain(&format!("{error}: {reason}"));
    }

    fn stats(&self, statistics: Statistics) {
        if let Some(stats) = self.statistics.get() {
            stats.consumer_statistics(&statistics);
        }
    }
}

/// For the start-up probe, which sends nothing.
impl ProducerContext for KafkaContext {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: ()) {}
}

impl ConsumerContext for KafkaContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(partitions) = rebalance else { return };
        info!(target: "kafka", "{} partitions revoked", partitions.count());
        self.revocations.fetch_add(1, SeqCst);
        if let Some(hooks) = self.rebalance_hooks.get() {
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
                // librdkafka keeps a partition's pause through a revocation and a
                // new assignment: say anew which partitions are read.
                if let Err(e) = self.read_gate.assigned(consumer, partitions) {
                    self.complain(&format!("cannot pause or resume the partitions assigned: {e}"));
                }
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => warn!(target: "kafka", "rebalance failed: {e}"),
        }
    }
}

/// librdkafka does not wake a partition's fetcher when the partition resumes:
/// its broker thread notices when it next wakes, up to a second later. A request to each partition's leader wakes its thread now; the
/// answer is not needed, so a slow one is not waited for long.
fn wake_fetchers(consumer: &impl Consumer<KafkaContext>, partitions: &TopicPartitionList) {
    for partition in partitions.elements() {
        let _ = consumer.fetch_watermarks(partition.topic(), partition.partition(), WAKE_TIMEOUT);
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

/// Every service's producer: idempotent, acknowledged by every replica.
pub const PRODUCER_SETTINGS: [(&str, &str); 5] = [
    ("enable.idempotence", "true"),
    ("acks", "all"),
    ("linger.ms", "5"),
    // One request in flight per broker: with idempotence and more, librdkafka
    // 2.12 busy-polls while it waits for a slow broker's answer (measured with
    // the benchmark: 98 -> 7 CPU ms per 1000 orders in order-service).
    ("max.in.flight.requests.per.connection", "1"),
    // librdkafka retries a delivery on its own this long; then we retry it.
    ("message.timeout.ms", "300000"),
];

/// Every service's consumer, beyond its group and `--fetch-wait-ms`,
/// `--max-poll-interval-ms` (and `--instance-id`).
pub const CONSUMER_SETTINGS: [(&str, &str); 9] = [
    ("enable.auto.commit", "true"),
    ("auto.commit.interval.ms", "1000"),
    ("enable.auto.offset.store", "false"),
    ("auto.offset.reset", "earliest"),
    // a killed member's partitions move on after 10 s instead of 45
    ("session.timeout.ms", "10000"),
    ("heartbeat.interval.ms", "1000"),
    // Fetch ahead 10,000 records, not librdkafka's 100,000: with a backlog the
    // prefetch was most of payment-service's memory (84 -> 62 MiB over a burst
    // of 300,000 orders); and refetch 10 ms after the queue was full, not 1 s:
    // that pause is what made a smaller prefetch cost half the throughput.
    ("queued.min.messages", "10000"),
    ("fetch.queue.backoff.ms", "10"),
    // ...and at most 2 MiB of them per partition, not librdkafka's 64 MiB:
    // a fetch response can overshoot the count (payment-service's peak RSS over
    // 300,000 orders: 64-75 -> 53-59 MiB, throughput unchanged).
    ("queued.max.messages.kbytes", "2048"),
];

/// The client settings above, and the default fetch wait, on one line (for the benchmark's report).
pub fn describe_settings() -> String {
    let list = |settings: &[(&str, &str)]| {
        settings.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
    };
    format!(
        "producer {}; consumer {}, fetch.wait.max.ms={}",
        list(&PRODUCER_SETTINGS),
        list(&CONSUMER_SETTINGS),
        crate::config::DEFAULT_FETCH_WAIT_MS
    )
}

fn base_config(kafka: &KafkaArgs, service: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &kafka.brokers).set("client.id", service);
    config
}

/// A client of `kafka`'s broker for `service`, with every `-X` and `--kafka-config` property.
pub(crate) fn client<T: rdkafka::config::FromClientConfigAndContext<KafkaContext>>(
    kafka: &KafkaArgs,
    service: &str,
) -> Result<T, String> {
    create(&base_config(kafka, service), kafka)
}

fn create<T: rdkafka::config::FromClientConfigAndContext<KafkaContext>>(
    config: &ClientConfig,
    kafka: &KafkaArgs,
) -> Result<T, String> {
    create_with(config, kafka, KafkaContext::new(&kafka.brokers))
}

fn create_with<C: ClientContext, T: rdkafka::config::FromClientConfigAndContext<C>>(
    config: &ClientConfig,
    kafka: &KafkaArgs,
    context: C,
) -> Result<T, String> {
    // -X and --kafka-config come last: the operator's word wins over our defaults.
    let mut config = config.clone();
    kafka.client.apply(&mut config);
    config.create_with_context(context).map_err(|e| format!("invalid Kafka client settings: {e}"))
}

/// The idempotent producer every service publishes with; its deliveries are
/// counted in `stats` (see `producer.rs`).
pub fn producer(kafka: &KafkaArgs, service: &str, stats: Arc<Stats>) -> Result<KafkaProducer, String> {
    let mut config = base_config(kafka, service);
    for (key, value) in PRODUCER_SETTINGS {
        config.set(key, value);
    }
    create_with(&config, kafka, Deliveries::new(&kafka.brokers, stats))
}

/// A consumer in `group` subscribed to `topic`, storing offsets only when told;
/// with `statistics`, librdkafka reports its lag every second (see
/// [`KafkaContext::report_statistics_to`]).
pub fn consumer(
    kafka: &KafkaArgs,
    service: &str,
    group: &str,
    topic: &str,
    statistics: bool,
) -> Result<Arc<StreamConsumer<KafkaContext>>, String> {
    let mut config = base_config(kafka, service);
    for (key, value) in CONSUMER_SETTINGS {
        config.set(key, value);
    }
    config
        .set("group.id", group)
        .set("fetch.wait.max.ms", kafka.fetch_wait_ms.to_string())
        .set("max.poll.interval.ms", kafka.max_poll_interval_ms.to_string());
    if let Some(instance) = &kafka.instance_id {
        config.set("group.instance.id", instance);
    }
    if statistics {
        config.set("statistics.interval.ms", "1000");
    }
    let consumer: StreamConsumer<KafkaContext> = create(&config, kafka)?;
    rdkafka::consumer::Consumer::subscribe(&consumer, &[topic])
        .map_err(|e| format!("cannot subscribe to {topic}: {e}"))?;
    Ok(Arc::new(consumer))
}

/// How long a reader waits for metadata, watermarks or the next record.
const READ_TIMEOUT: Duration = Duration::from_secs(15);

/// A client that reads partitions it assigns itself (see [`reader`]).
pub type Reader = BaseConsumer<ReaderContext>;

/// A reader's context. Its failures come back as the errors of the calls that
/// read, so librdkafka's own lines go to debug: among them the error it logs when
/// a reader closes while logging in to its group coordinator (on a SASL broker).
pub struct ReaderContext;

impl ClientContext for ReaderContext {
    fn log(&self, _: RDKafkaLogLevel, facility: &str, message: &str) {
        debug!(target: "librdkafka", "reader: {facility}: {message}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        debug!(target: "librdkafka", "reader: {error}: {reason}");
    }
}

impl ConsumerContext for ReaderContext {}

/// A client that reads partitions it assigns itself, outside any consumer group's
/// membership. `group` only names whose committed offsets it may look up;
/// `client` says where the broker is and how to reach it (see [`KafkaArgs::client_config`]).
pub fn reader(client: &ClientConfig, group: &str) -> Result<Reader, String> {
    client
        .clone()
        .set("group.id", group) // never joined: partitions are assigned
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create_with_context(ReaderContext)
        .map_err(|e| {
            let brokers = client.get("bootstrap.servers").unwrap_or_default();
            format!("cannot create a Kafka reader for {brokers}: {e}")
        })
}

/// How many partitions `topic` has. Blocking.
fn partition_count(reader: &Reader, topic: &str) -> Result<i32, String> {
    let metadata = reader
        .fetch_metadata(Some(topic), READ_TIMEOUT)
        .map_err(|e| format!("cannot read the metadata of {topic}: {e}"))?;
    match metadata.topics().first() {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => Ok(t.partitions().len() as i32),
        Some(t) => Err(format!("cannot read the metadata of {topic}: {:?}", t.error())),
        None => Err(format!("cannot read the metadata of {topic}: no such topic")),
    }
}

/// The first and one-past-the-last offsets of `topic[partition]`. Blocking.
pub fn watermarks(reader: &Reader, topic: &str, partition: i32) -> Result<(i64, i64), String> {
    reader
        .fetch_watermarks(topic, partition, READ_TIMEOUT)
        .map_err(|e| format!("cannot read the offsets of {topic}[{partition}]: {e}"))
}

/// Reads every record of `topic` from its start to its current end, outside any
/// consumer group, handing each to `each`. Blocking.
pub fn read_to_end(
    client: &ClientConfig,
    topic: &str,
    each: impl FnMut(&BorrowedMessage),
) -> Result<(), String> {
    read_partitions(&reader(client, "read-to-end")?, topic, |low, _| low, each)
}

/// Reads each partition of `topic` with `reader`, from the offset `from(low, high)`
/// (given its watermarks) to its current end. Blocking.
pub fn read_partitions(
    reader: &Reader,
    topic: &str,
    from: impl Fn(i64, i64) -> i64,
    each: impl FnMut(&BorrowedMessage),
) -> Result<(), String> {
    let mut ranges = Vec::new();
    for partition in 0..partition_count(reader, topic)? {
        let (low, high) = watermarks(reader, topic, partition)?;
        ranges.push((partition, from(low, high), high));
    }
    read_ranges(reader, topic, &ranges, each)
}

/// Reads the records of `topic` in each `(partition, from, to)`, `from` included
/// and `to` excluded, handing each to `each`. Blocking.
pub fn read_ranges(
    reader: &Reader,
    topic: &str,
    ranges: &[(i32, i64, i64)],
    mut each: impl FnMut(&BorrowedMessage),
) -> Result<(), String> {
    let fail = |what: &str, e: KafkaError| format!("cannot read {topic} ({what}): {e}");
    let mut assignment = TopicPartitionList::new();
    let mut end_of: HashMap<i32, i64> = HashMap::new();
    for &(partition, from, to) in ranges.iter().filter(|(_, from, to)| to > from) {
        assignment
            .add_partition_offset(topic, partition, Offset::Offset(from))
            .map_err(|e| fail("assignment", e))?;
        end_of.insert(partition, to);
    }
    reader.assign(&assignment).map_err(|e| fail("assign", e))?;
    while !end_of.is_empty() {
        let message = match reader.poll(READ_TIMEOUT) {
            Some(Ok(message)) => message,
            Some(Err(e)) => return Err(fail("read", e)),
            None => {
                return Err(format!("cannot read {topic}: nothing arrived for {} s", READ_TIMEOUT.as_secs()))
            }
        };
        let Some(&end) = end_of.get(&message.partition()) else { continue };
        if message.offset() < end {
            each(&message);
        }
        if message.offset() + 1 >= end {
            end_of.remove(&message.partition());
        }
    }
    Ok(())
}
