//! The ceiling: the pipeline's two hops with bare rdkafka, no actors, in this
//! process, on tokio tasks.
//!
//! source --ceiling_orders--> passthrough --ceiling_payments--> sink
//!
//! The source makes orders (stamped `created_at_ms`) like order-service; the
//! passthrough reads each, rewrites its status to `payment_successful`, produces
//! it and stores its offset once the broker has it (at-least-once, as in
//! rust-rdkafka's `examples/at_least_once.rs`, but with up to `max_in_flight`
//! records in flight like the services, instead of one at a time); the sink
//! reads the payments and notes when each order arrived.
//!
//! The fair ceiling (`Setup::stores`) writes the services' rows besides, each
//! stage to a store of its own (`common::store`, a fresh SQLite file), as the
//! services do: the passthrough records each order's charge and produces the
//! recorded payment event once the store has answered (on a task of its own,
//! not the store's thread); the sink claims each email, "sends" it (notes the
//! order's arrival) and records it as sent, and stores the offset only once
//! that record is answered. Both keep up to `max_in_flight` records
//! outstanding, so the store's writer batches them.

use crate::clients::{self, CeilingConsumer, Settings};
use crate::measure::Sample;
use crate::pipeline::fresh_store;
use common::store::{Charge, ChargeVerdict, EmailVerdict, Store};
use common::wire::event::{OrderEvent, Status};
use harness::logline::now_ms;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch, Notify, OwnedSemaphorePermit, Semaphore};

/// How long the consumers may take to join their groups.
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Where and how the ceiling runs.
pub struct Setup {
    pub brokers: String,
    pub orders_topic: String,
    pub payments_topic: String,
    /// Prefix of the two consumer groups.
    pub group: String,
    pub settings: Settings,
    pub max_in_flight: u32,
    pub timeout: Duration,
    /// The fair ceiling: the folder of its stages' stores (`passthrough.db`,
    /// `sink.db`, made afresh). `None`: the bare ceiling, no store.
    pub stores: Option<PathBuf>,
}

/// Sends `count` orders through the two hops, at `rate` per second (`None` =
/// as fast as the in-flight bound allows); one sample per order.
pub fn run(setup: &Setup, count: u64, rate: Option<f64>) -> Result<Vec<Sample>, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the ceiling's runtime: {e}"))?;
    runtime.block_on(flow(setup, count, rate))
}

async fn flow(setup: &Setup, count: u64, rate: Option<f64>) -> Result<Vec<Sample>, String> {
    let (orders, payments) = (&setup.orders_topic, &setup.payments_topic);
    let (brokers, kafka) = (&setup.brokers, &setup.settings);
    let store = |stage: &str| setup.stores.as_deref().map(|dir| open_store(dir, stage)).transpose();
    let (pass_store, sink_store) = (store("passthrough")?, store("sink")?);
    clients::create_topics(brokers, &[orders.clone(), payments.clone()]).await?;
    let pass_group = format!("{}_passthrough", setup.group);
    let sink_group = format!("{}_sink", setup.group);
    let (pass_in, pass_ready) = clients::consumer(brokers, kafka, "passthrough", &pass_group, orders)?;
    let (sink_in, sink_ready) = clients::consumer(brokers, kafka, "sink", &sink_group, payments)?;
    let pass_out = clients::producer(brokers, kafka, "passthrough")?;
    let source_out = clients::producer(brokers, kafka, "source")?;

    let (failed, mut failures) = mpsc::unbounded_channel();
    let in_flight = || Arc::new(Semaphore::new(setup.max_in_flight as usize));
    let stage_of = |name, consumer, topic: &str| Stage {
        name,
        consumer,
        topic: topic.to_string(),
        in_flight: in_flight(),
        failed: failed.clone(),
    };
    let passthrough =
        tokio::spawn(stage_of("passthrough", pass_in, orders).run(pay(pass_out, payments, pass_store)));
    let arrivals = Arc::new(Arrivals::new(count));
    let sink = tokio::spawn(stage_of("sink", sink_in, payments).run(notify(arrivals.clone(), sink_store)));
    joined(pass_ready, "passthrough").await?;
    joined(sink_ready, "sink").await?;

    // The producer purges what it still holds when dropped: this one lives to the end.
    let source = tokio::spawn(source(source_out.clone(), orders.clone(), count, rate, in_flight(), failed));
    let outcome = tokio::select! {
        () = arrivals.complete.notified() => Ok(arrivals.take()),
        Some(failure) = failures.recv() => Err(failure),
        () = tokio::time::sleep(setup.timeout) => Err(format!(
            "the ceiling timed out after {} s: {} of {count} orders reached the sink",
            setup.timeout.as_secs(),
            arrivals.len()
        )),
    };
    source.abort();
    passthrough.abort();
    sink.abort();
    outcome
}

/// The store of one stage, in a fresh SQLite file of `dir`, set up as the
/// services set up theirs (their flags' defaults but `--store`).
fn open_store(dir: &Path, stage: &str) -> Result<Store, String> {
    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        store: common::runtime::config::StoreArgs,
    }
    let url = fresh_store(dir, stage)?;
    let flags = <Flags as clap::Parser>::try_parse_from(["ceiling", "--store", &url])
        .map_err(|e| format!("the ceiling's store {url}: {e}"))?;
    Store::open(flags.store.setup(stage, format!("ceiling-{stage}")))
        .map_err(|e| format!("the ceiling's store {url}: {e}"))
}

/// Waits until the consumer has its partitions.
async fn joined(mut ready: watch::Receiver<bool>, who: &str) -> Result<(), String> {
    match tokio::time::timeout(JOIN_TIMEOUT, ready.wait_for(|&assigned| assigned)).await {
        Ok(Ok(_)) => Ok(()),
        _ => Err(format!("the ceiling's {who} got no partitions within {} s", JOIN_TIMEOUT.as_secs())),
    }
}

/// Makes `count` orders, like order-service's generator: an in-flight slot per
/// order, freed once the broker has it.
async fn source(
    producer: FutureProducer,
    topic: String,
    count: u64,
    rate: Option<f64>,
    in_flight: Arc<Semaphore>,
    failed: mpsc::UnboundedSender<String>,
) {
    let mut pace = rate.map(|r| tokio::time::interval(Duration::from_secs_f64(1.0 / r)));
    for order_id in 1..=count {
        let Ok(slot) = in_flight.clone().acquire_owned().await else {
            return;
        };
        if let Some(pace) = &mut pace {
            pace.tick().await;
        }
        let order = OrderEvent {
            order_id,
            user_id: 1 + order_id % 100,
            amount: (100 + order_id % 50_000) as f64 / 100.0,
            status: Status::Created,
            reason: None,
            created_at_ms: Some(now_ms()),
        };
        match produce(&producer, &topic, &order.key(), &order.encode()) {
            Ok(delivery) => {
                tokio::spawn(acknowledged(delivery, slot, failed.clone()));
            }
            Err(e) => {
                let _ = failed.send(format!("the ceiling's source {e}"));
                return;
            }
        }
    }
}

async fn acknowledged(
    delivery: DeliveryFuture,
    _slot: OwnedSemaphorePermit,
    failed: mpsc::UnboundedSender<String>,
) {
    if let Err(e) = delivered(delivery).await {
        let _ = failed.send(format!("the ceiling's source: {e}"));
    }
}

/// Hands one record to the producer.
fn produce(
    producer: &FutureProducer,
    topic: &str,
    key: &str,
    payload: &[u8],
) -> Result<DeliveryFuture, String> {
    producer
        .send_result(FutureRecord::to(topic).key(key).payload(payload))
        .map_err(|(e, _)| format!("cannot produce: {e}"))
}

/// Waits until the broker has the record.
async fn delivered(delivery: DeliveryFuture) -> Result<(), String> {
    match delivery.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => Err(format!("delivery failed: {e}")),
        Err(_canceled) => Err("delivery canceled: the producer is gone".into()),
    }
}

/// What handling a record started, to wait for before its offset is stored.
/// It goes on without being polled (librdkafka and the store's writer drive it).
enum Effect {
    /// Nothing: done.
    Done,
    /// The broker's acknowledgement of the record produced.
    Delivery(DeliveryFuture),
    /// The store's last answer, and what was produced on it, if anything.
    Answer(oneshot::Receiver<Result<Option<DeliveryFuture>, String>>),
}

impl Effect {
    /// Waits until it is done.
    async fn done(self) -> Result<(), String> {
        let delivery = match self {
            Effect::Done => return Ok(()),
            Effect::Delivery(delivery) => delivery,
            Effect::Answer(answer) => match answer.await.map_err(|_| "the store never answered")?? {
                Some(delivery) => delivery,
                None => return Ok(()),
            },
        };
        delivered(delivery).await
    }
}

/// A record whose effect is under way, and the input offset to store once it is done.
struct Pending {
    offset: i64,
    effect: Effect,
    _slot: OwnedSemaphorePermit,
}

/// A consuming stage: what it reads and how much it may have under way.
#[derive(Clone)]
struct Stage {
    name: &'static str,
    consumer: Arc<CeilingConsumer>,
    /// The topic it reads (its only one).
    topic: String,
    in_flight: Arc<Semaphore>,
    failed: mpsc::UnboundedSender<String>,
}

impl Stage {
    /// Reads records and starts each one's effect (`handle`, given its payload),
    /// with up to `in_flight` under way. A record done at once has its offset
    /// stored at once; otherwise one task per partition stores offsets in order
    /// as effects complete.
    async fn run(self, mut handle: impl FnMut(Option<&[u8]>) -> Result<Effect, String>) {
        let mut storers: HashMap<i32, mpsc::UnboundedSender<Pending>> = HashMap::new();
        loop {
            let Ok(slot) = self.in_flight.clone().acquire_owned().await else {
                return;
            };
            let message = match self.consumer.recv().await {
                Ok(message) => message,
                Err(e) => {
                    eprintln!("ceiling {}: cannot read: {e} (retrying)", self.name);
                    continue;
                }
            };
            let (partition, offset) = (message.partition(), message.offset());
            let effect = match handle(message.payload()) {
                Ok(effect) => effect,
                Err(e) => {
                    let _ = self.failed.send(format!("the ceiling's {} {e}", self.name));
                    return;
                }
            };
            match (effect, storers.get(&partition)) {
                (Effect::Done, None) => self.store_offset(partition, offset),
                (effect, Some(storer)) => {
                    let _ = storer.send(Pending { offset, effect, _slot: slot });
                }
                (effect, None) => {
                    let (queue, pending) = mpsc::unbounded_channel();
                    let _ = queue.send(Pending { offset, effect, _slot: slot });
                    tokio::spawn(self.clone().store_offsets(partition, pending));
                    storers.insert(partition, queue);
                }
            }
        }
    }

    /// Stores each offset of one partition once its effect is done, in order.
    async fn store_offsets(self, partition: i32, mut pending: mpsc::UnboundedReceiver<Pending>) {
        while let Some(Pending { offset, effect, _slot }) = pending.recv().await {
            if let Err(e) = effect.done().await {
                let _ = self.failed.send(format!("the ceiling's {}: {e}", self.name));
                return;
            }
            self.store_offset(partition, offset);
        }
    }

    fn store_offset(&self, partition: i32, offset: i64) {
        if let Err(e) = self.consumer.store_offset(&self.topic, partition, offset) {
            eprintln!("ceiling {}: cannot store {}[{partition}]@{offset}: {e}", self.name, self.topic);
        }
    }
}

/// A recorded payment event to produce, and whom to hand its delivery.
struct Recorded {
    key: String,
    event: Vec<u8>,
    answered: oneshot::Sender<Result<Option<DeliveryFuture>, String>>,
}

/// The passthrough's handling of an order: its payment produced to `topic`, at
/// once, or (with a store) once its charge is recorded, the recorded event.
///
/// The store's writer only hands its answers over, to a task that produces
/// them, as payment-service's writer hands them to its actor: producing on the
/// writer's thread would slow every batch after it.
fn pay(
    producer: FutureProducer,
    topic: &str,
    store: Option<Store>,
) -> impl FnMut(Option<&[u8]>) -> Result<Effect, String> {
    let topic: Arc<str> = topic.into();
    let store = store.map(|store| {
        let (publish, mut recorded) = mpsc::unbounded_channel::<Recorded>();
        let (producer, topic) = (producer.clone(), topic.clone());
        tokio::spawn(async move {
            while let Some(Recorded { key, event, answered }) = recorded.recv().await {
                let _ = answered.send(produce(&producer, &topic, &key, &event).map(Some));
            }
        });
        (store, publish)
    });
    move |payload| {
        let order = OrderEvent::decode(payload, &[Status::Created])
            .map_err(|invalid| format!("read a bad order: {invalid}"))?;
        let (order_id, user_id, amount) = (order.order_id, order.user_id, order.amount);
        let payment = OrderEvent { status: Status::PaymentSuccessful, ..order };
        let (key, decided) = (payment.key(), payment.encode());
        let Some((store, publish)) = &store else {
            return produce(&producer, &topic, &key, &decided).map(Effect::Delivery);
        };
        let (answered, answer) = oneshot::channel();
        let publish = publish.clone();
        let charge = Charge { order_id, user_id, amount, declined: None, event: decided.clone() };
        store.charge(
            charge,
            Box::new(move |verdict| {
                let event = match verdict {
                    ChargeVerdict::Recorded => decided,
                    ChargeVerdict::Found(recorded) => recorded.event,
                };
                let _ = publish.send(Recorded { key, event, answered });
            }),
        );
        Ok(Effect::Answer(answer))
    }
}

/// The sink's handling of a payment: its arrival noted, at once, or (with a
/// store) once its email is claimed, and done once recorded as sent.
fn notify(
    arrivals: Arc<Arrivals>,
    store: Option<Store>,
) -> impl FnMut(Option<&[u8]>) -> Result<Effect, String> {
    move |payload| {
        let payment = OrderEvent::decode(payload, &[Status::PaymentSuccessful])
            .map_err(|invalid| format!("read a bad payment: {invalid}"))?;
        let Some(store) = &store else {
            arrivals.note(&payment, now_ms());
            return Ok(Effect::Done);
        };
        let (answered, answer) = oneshot::channel();
        let (arrivals, recorder) = (arrivals.clone(), store.clone());
        store.claim_email(
            payment.order_id,
            false,
            Box::new(move |verdict| match verdict {
                EmailVerdict::Claimed => {
                    arrivals.note(&payment, now_ms()); // the email goes out
                    let reply = Box::new(move |()| drop(answered.send(Ok(None))));
                    recorder.email_sent(payment.order_id, reply);
                }
                other => {
                    let why =
                        format!("claimed order {}'s email in a fresh store: {other:?}", payment.order_id);
                    let _ = answered.send(Err(why));
                }
            }),
        );
        Ok(Effect::Answer(answer))
    }
}

/// The orders that reached the sink and when; complete once `count` have.
struct Arrivals {
    count: u64,
    samples: Mutex<HashMap<u64, Sample>>,
    complete: Notify,
}

impl Arrivals {
    fn new(count: u64) -> Arrivals {
        let samples = Mutex::new(HashMap::with_capacity(count as usize));
        Arrivals { count, samples, complete: Notify::new() }
    }

    /// Notes `payment`'s order as arrived at `done_ms`, unless it arrived before.
    fn note(&self, payment: &OrderEvent, done_ms: u64) {
        let mut samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        samples.entry(payment.order_id).or_insert(Sample {
            order_id: payment.order_id,
            created_ms: payment.created_at_ms.unwrap_or(done_ms),
            done_ms,
        });
        if samples.len() as u64 == self.count {
            self.complete.notify_one();
        }
    }

    fn len(&self) -> usize {
        self.samples.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    fn take(&self) -> Vec<Sample> {
        std::mem::take(&mut *self.samples.lock().unwrap_or_else(PoisonError::into_inner))
            .into_values()
            .collect()
    }
}
