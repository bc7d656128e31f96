//! The producer actor: publishes records, and completes each event's ticket once
//! the broker has acknowledged its record.
//!
//! Acknowledgements are handled by librdkafka's polling thread ([`Deliveries`]),
//! not by the actor, so a crash and restart of the actor never loses one, and no
//! task or channel is made per record. A record whose delivery failed after
//! librdkafka's own retries comes back to the actor as [`Undelivered`] and is
//! published again a second later (its event is never completed without it),
//! unless the broker refuses it for good: then the service stops (see
//! `error.rs`) instead of retrying forever. A dead letter refused for its size
//! goes out as headers only instead: no consumed record can stop the service.

use crate::actor::error::{ActorError, Kind};
use crate::actor::fault::Role;
use crate::actor::messages::{Publish, Ticket};
use crate::actor::supervisor::{Supervision, Worker, WorkerActor};
use crate::kafka::context::KafkaContext;
use crate::kafka::dead_letter;
use crate::ops::metrics::Metrics;
use crate::wire::event::as_text;
use actix::{Addr, Context, Message as ActixMessage};
use log::{info, warn};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The pause before publishing again a record whose delivery failed.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// The service's Kafka producer. librdkafka's deliveries are handled by its
/// polling thread ([`Deliveries`]): no task or channel per record.
pub type KafkaProducer = ThreadedProducer<Deliveries>;

/// A record librdkafka could not deliver after its own retries, and why.
#[derive(ActixMessage)]
#[rtype(result = "()")]
pub struct Undelivered(pub Publish, pub KafkaError);

crate::worker_input! {
    /// Everything the producer actor handles.
    pub enum ProducerInput { Publish, Undelivered }
}

/// What travels with a record through librdkafka: enough to finish its event,
/// or to publish it again (the rest comes back with the record).
pub struct Sent {
    ticket: Ticket,
    announce: Option<&'static str>,
    partition: Option<i32>,
    headers: Arc<[(&'static str, String)]>,
}

/// The producer's client context: librdkafka's lines go where every client's
/// go (see [`KafkaContext`]); each acknowledged record completes its ticket on
/// librdkafka's polling thread, and each failed one goes back to the actor.
pub struct Deliveries {
    kafka: KafkaContext,
    metrics: Arc<Metrics>,
    actor: OnceLock<Addr<WorkerActor<ProducerActor>>>,
}

impl Deliveries {
    pub fn new(brokers: &str, metrics: Arc<Metrics>) -> Self {
        Deliveries { kafka: KafkaContext::new(brokers), metrics, actor: OnceLock::new() }
    }
}

impl ClientContext for Deliveries {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.kafka.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.kafka.error(error, reason);
    }
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Box<Sent>;

    fn delivery(&self, result: &DeliveryResult<'_>, sent: Box<Sent>) {
        let Sent { ticket, announce, partition, headers } = *sent;
        match result {
            Ok(record) => {
                // librdkafka times each record from when it took it: no clock read of ours.
                // SAFETY: the message is valid while borrowed, and the call only reads it.
                let micros = unsafe { rdkafka::bindings::rd_kafka_message_latency(record.ptr()) };
                if let Ok(micros) = u64::try_from(micros) {
                    self.metrics.produced(record.topic(), Duration::from_micros(micros));
                }
                if let Some(announce) = announce {
                    let payload = as_text(record.payload().unwrap_or_default());
                    info!(target: "Deliveries", "{announce}: {payload}");
                }
                ticket.complete();
            }
            // Purged: the process is exiting, the event stays uncommitted.
            Err((
                KafkaError::MessageProduction(RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight),
                _,
            )) => {}
            Err((cause, record)) => {
                let publish = Publish {
                    topic: record.topic().into(),
                    partition,
                    key: record.key().map(<[u8]>::to_vec),
                    payload: record.payload().unwrap_or_default().to_vec(),
                    headers,
                    ticket,
                    announce,
                };
                if let Some(actor) = self.actor.get() {
                    actor.do_send(Undelivered(publish, cause.clone()));
                }
            }
        }
    }
}

pub struct ProducerActor {
    producer: KafkaProducer,
}

impl ProducerActor {
    /// Starts the actor under supervision; `producer`'s failed deliveries come back to it.
    pub fn start(producer: KafkaProducer, supervision: &Supervision) -> Addr<WorkerActor<Self>> {
        let actor = WorkerActor::start(ProducerActor { producer: producer.clone() }, supervision);
        let _ = producer.context().actor.set(actor.clone());
        actor
    }

    /// Hands `publish` to librdkafka; [`Deliveries`] takes it from there.
    fn publish(&self, publish: &Publish) -> Result<(), ActorError> {
        let sent = Sent {
            ticket: publish.ticket.clone(),
            announce: publish.announce,
            partition: publish.partition,
            headers: publish.headers.clone(),
        };
        let mut record = BaseRecord::with_opaque_to(&publish.topic, Box::new(sent)).payload(&publish.payload);
        if !publish.headers.is_empty() {
            // librdkafka allocates a header list even when empty: none for a record without.
            let headers = OwnedHeaders::new_with_capacity(publish.headers.len());
            record = record.headers(publish.headers.iter().fold(headers, |headers, (key, value)| {
                headers.insert(Header { key, value: Some(value.as_str()) })
            }));
        }
        if let Some(key) = &publish.key {
            record = record.key(key);
        }
        if let Some(partition) = publish.partition {
            record = record.partition(partition);
        }
        self.producer.send(record).or_else(|(cause, _)| self.refused(publish, cause))
    }

    /// What a failure to publish `publish` comes to: the failure, unless `publish`
    /// is a dead letter too large for this producer or its topic (their limit is
    /// below the one a dead letter is bounded by): it is published again as
    /// headers only.
    fn refused(&self, publish: &Publish, cause: KafkaError) -> Result<(), ActorError> {
        let too_large = cause.rdkafka_error_code() == Some(RDKafkaErrorCode::MessageSizeTooLarge);
        let failure = ActorError::publishing(&publish.topic, cause);
        match too_large.then(|| dead_letter::headers_only(publish)).flatten() {
            Some(smaller) => {
                warn!(target: Self::NAME, "{failure}; publishing it again without the record's key and value");
                self.publish(&smaller)
            }
            None => Err(failure),
        }
    }

    /// A record librdkafka gave up on: published again a second later, unless
    /// the broker refuses it for good (see [`Self::refused`]).
    fn undelivered(
        &self,
        publish: &Publish,
        cause: &KafkaError,
        ctx: &mut Context<WorkerActor<Self>>,
    ) -> Result<(), ActorError> {
        let failure = ActorError::publishing(&publish.topic, cause.clone());
        if failure.kind() == Kind::Permanent {
            return self.refused(publish, cause.clone());
        }
        warn!(target: Self::NAME, "{failure}; publishing again in 1 s");
        // A task of its own, not the actor's: a restart of the actor must not lose it.
        let (publish, actor) = (publish.clone(), actix::AsyncContext::address(ctx));
        actix_rt::spawn(async move {
            tokio::time::sleep(RETRY_PAUSE).await;
            actor.do_send(publish);
        });
        Ok(())
    }
}

impl Worker for ProducerActor {
    type Input = ProducerInput;
    const NAME: &'static str = "ProducerActor";
    const ROLE: Role = Role::Producer;

    fn handle(
        &mut self,
        input: &ProducerInput,
        ctx: &mut Context<WorkerActor<Self>>,
    ) -> Result<(), ActorError> {
        match input {
            ProducerInput::Publish(publish) => self.publish(publish),
            ProducerInput::Undelivered(Undelivered(publish, cause)) => self.undelivered(publish, cause, ctx),
        }
    }

    fn describe(input: &ProducerInput) -> String {
        let (ProducerInput::Publish(publish) | ProducerInput::Undelivered(Undelivered(publish, _))) = input;
        match &publish.key {
            Some(key) => format!("a record for {} (key {})", publish.topic, String::from_utf8_lossy(key)),
            None => format!("a record for {}", publish.topic),
        }
    }
}
