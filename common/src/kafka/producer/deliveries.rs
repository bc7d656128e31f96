//! The producer's client context: acknowledgements are handled by librdkafka's
//! polling thread, not by the actor, so a crash and restart of the actor never
//! loses one, and no task or channel is made per record.

use super::actor::{ProducerActor, Undelivered};
use crate::actor::messages::{Publish, Ticket};
use crate::actor::supervisor::WorkerActor;
use crate::base::metrics::Metrics;
use crate::kafka::client::context::KafkaContext;
use crate::wire::event::as_text;
use actix::Addr;
use log::info;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The service's Kafka producer. librdkafka's deliveries are handled by its
/// polling thread ([`Deliveries`]): no task or channel per record.
pub type KafkaProducer = ThreadedProducer<Deliveries>;

/// What travels with a record through librdkafka: enough to finish its event,
/// or to publish it again (the rest comes back with the record).
pub struct Sent {
    pub(super) ticket: Ticket,
    pub(super) announce: Option<&'static str>,
    pub(super) partition: Option<i32>,
    pub(super) headers: Arc<[(&'static str, String)]>,
}

/// The producer's client context: librdkafka's lines go where every client's
/// go (see [`KafkaContext`]); each acknowledged record completes its ticket on
/// librdkafka's polling thread, and each failed one goes back to the actor.
pub struct Deliveries {
    kafka: KafkaContext,
    metrics: Arc<Metrics>,
    pub(super) actor: OnceLock<Addr<WorkerActor<ProducerActor>>>,
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
