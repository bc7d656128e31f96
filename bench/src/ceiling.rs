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

use crate::clients::{self, CeilingConsumer, Settings};
use crate::measure::Sample;
use common::event::{OrderEvent, Status};
use harness::logline::now_ms;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};

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
    clients::create_topics(brokers, &[orders.clone(), payments.clone()]).await?;
    let pass_group = format!("{}_passthrough", setup.group);
    let sink_group = format!("{}_sink", setup.group);
    let (pass_in, pass_ready) = clients::consumer(brokers, kafka, "passthrough", &pass_group, orders)?;
    let (sink_in, sink_ready) = clients::consumer(brokers, kafka, "sink", &sink_group, payments)?;
    let pass_out = clients::producer(brokers, kafka, "passthrough")?;
    let source_out = clients::producer(brokers, kafka, "source")?;

    let (failed, mut failures) = mpsc::unbounded_channel();
    let in_flight = setup.max_in_flight as usize;
    let passthrough = tokio::spawn(passthrough(
        pass_in,
        pass_out,
        payments.clone(),
        Arc::new(Semaphore::new(in_flight)),
        failed.clone(),
    ));
    let received = Arc::new(AtomicU64::new(0));
    let sink = tokio::spawn(sink(sink_in, count, received.clone()));
    joined(pass_ready, "passthrough").await?;
    joined(sink_ready, "sink").await?;

    // The producer purges what it still holds when dropped: this one lives to the end.
    let source = tokio::spawn(source(
        source_out.clone(),
        orders.clone(),
        count,
        rate,
        Arc::new(Semaphore::new(in_flight)),
        failed,
    ));
    let outcome = tokio::select! {
        samples = sink => samples.map_err(|e| format!("the ceiling's sink failed: {e}")),
        Some(failure) = failures.recv() => Err(failure),
        () = tokio::time::sleep(setup.timeout) => Err(format!(
            "the ceiling timed out after {} s: {} of {count} orders reached the sink",
            setup.timeout.as_secs(),
            received.load(Ordering::Relaxed)
        )),
    };
    source.abort();
    passthrough.abort();
    outcome
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
        let (key, payload) = (order.key(), order.encode());
        match producer.send_result(FutureRecord::to(&topic).key(&key).payload(&payload)) {
            Ok(delivery) => {
                tokio::spawn(acknowledged(delivery, slot, failed.clone()));
            }
            Err((e, _)) => {
                let _ = failed.send(format!("the ceiling's source cannot produce: {e}"));
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
    if let Ok(Err((e, _))) = delivery.await {
        let _ = failed.send(format!("the ceiling's source: delivery failed: {e}"));
    }
}

/// A delivery to wait for, and the input offset to store once it is done.
struct Pending {
    offset: i64,
    delivery: DeliveryFuture,
    _slot: OwnedSemaphorePermit,
}

/// Reads orders, produces payments; one task per input partition stores offsets
/// in order as deliveries complete.
async fn passthrough(
    consumer: Arc<CeilingConsumer>,
    producer: FutureProducer,
    out_topic: String,
    in_flight: Arc<Semaphore>,
    failed: mpsc::UnboundedSender<String>,
) {
    let mut storers: HashMap<(String, i32), mpsc::UnboundedSender<Pending>> = HashMap::new();
    loop {
        let Ok(slot) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let message = match consumer.recv().await {
            Ok(message) => message,
            Err(e) => {
                eprintln!("ceiling passthrough: cannot read: {e} (retrying)");
                continue;
            }
        };
        let (topic, partition, offset) = (message.topic().to_string(), message.partition(), message.offset());
        let order = match OrderEvent::decode(message.payload(), &[Status::Created]) {
            Ok(order) => order,
            Err(invalid) => {
                let _ = failed.send(format!("the ceiling's passthrough read a bad order: {invalid}"));
                return;
            }
        };
        let payment = OrderEvent { status: Status::PaymentSuccessful, ..order };
        let (key, payload) = (payment.key(), payment.encode());
        let delivery = match producer.send_result(FutureRecord::to(&out_topic).key(&key).payload(&payload)) {
            Ok(delivery) => delivery,
            Err((e, _)) => {
                let _ = failed.send(format!("the ceiling's passthrough cannot produce: {e}"));
                return;
            }
        };
        let storer = storers.entry((topic.clone(), partition)).or_insert_with(|| {
            let (queue, pending) = mpsc::unbounded_channel();
            tokio::spawn(store_offsets(consumer.clone(), topic, partition, pending, failed.clone()));
            queue
        });
        let _ = storer.send(Pending { offset, delivery, _slot: slot });
    }
}

/// Stores each offset of one partition once its payment is delivered, in order.
async fn store_offsets(
    consumer: Arc<CeilingConsumer>,
    topic: String,
    partition: i32,
    mut pending: mpsc::UnboundedReceiver<Pending>,
    failed: mpsc::UnboundedSender<String>,
) {
    while let Some(Pending { offset, delivery, .. }) = pending.recv().await {
        match delivery.await {
            Ok(Ok(_)) => {
                if let Err(e) = consumer.store_offset(&topic, partition, offset) {
                    eprintln!("ceiling passthrough: cannot store {topic}[{partition}]@{offset}: {e}");
                }
            }
            Ok(Err((e, _))) => {
                let _ = failed.send(format!("the ceiling's passthrough: delivery failed: {e}"));
                return;
            }
            Err(_canceled) => return,
        }
    }
}

/// Reads payments until every order has arrived once; notes when each did.
async fn sink(consumer: Arc<CeilingConsumer>, count: u64, received: Arc<AtomicU64>) -> Vec<Sample> {
    let mut samples: HashMap<u64, Sample> = HashMap::with_capacity(count as usize);
    while (samples.len() as u64) < count {
        let message = match consumer.recv().await {
            Ok(message) => message,
            Err(e) => {
                eprintln!("ceiling sink: cannot read: {e} (retrying)");
                continue;
            }
        };
        let done_ms = now_ms();
        let accepted = [Status::PaymentSuccessful];
        if let Ok(payment) = OrderEvent::decode(message.payload(), &accepted) {
            samples.entry(payment.order_id).or_insert(Sample {
                order_id: payment.order_id,
                created_ms: payment.created_at_ms.unwrap_or(done_ms),
                done_ms,
            });
            received.store(samples.len() as u64, Ordering::Relaxed);
        }
        let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
        if let Err(e) = consumer.store_offset(topic, partition, offset) {
            eprintln!("ceiling sink: cannot store {topic}[{partition}]@{offset}: {e}");
        }
    }
    samples.into_values().collect()
}
