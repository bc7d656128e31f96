//! The producer actor: publishes records, and completes each event's ticket once
//! the broker has acknowledged its record.
//!
//! The delivery wait runs as its own task, not on the actor, so a crash and
//! restart of the actor never loses an acknowledgement. A record whose delivery
//! failed after librdkafka's own retries is published again a second later (its
//! event is never completed without it), unless the broker refuses it for good:
//! then it comes back to the actor as [`Refused`], which stops the service (see
//! `error.rs`) instead of retrying forever.

use crate::error::{ActorError, Kind};
use crate::fault::Role;
use crate::kafka::KafkaContext;
use crate::messages::Publish;
use crate::stats::Stats;
use crate::supervisor::{Supervised, Worker};
use actix::{AsyncContext, Context, Message};
use log::{info, warn};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::sync::Arc;
use std::time::Instant;

/// The pause before publishing again a record whose delivery failed.
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// A record the broker refuses for good, and its answer.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Refused(pub Publish, pub KafkaError);

/// Everything the producer actor handles.
pub enum ProducerInput {
    Publish(Publish),
    Refused(Publish, KafkaError),
}

impl From<Publish> for ProducerInput {
    fn from(publish: Publish) -> Self {
        ProducerInput::Publish(publish)
    }
}

impl From<Refused> for ProducerInput {
    fn from(Refused(publish, cause): Refused) -> Self {
        ProducerInput::Refused(publish, cause)
    }
}

pub struct ProducerActor {
    producer: FutureProducer<KafkaContext>,
    stats: Arc<Stats>,
}

impl ProducerActor {
    pub fn new(producer: FutureProducer<KafkaContext>, stats: Arc<Stats>) -> Self {
        ProducerActor { producer, stats }
    }

    /// Hands `publish` to librdkafka and waits for its delivery in a task of its own.
    fn publish(&self, publish: &Publish, ctx: &mut Context<Supervised<Self>>) -> Result<(), ActorError> {
        let headers = publish.headers.iter().fold(OwnedHeaders::new(), |headers, (key, value)| {
            headers.insert(Header { key, value: Some(value.as_str()) })
        });
        let mut record = FutureRecord::to(&publish.topic).payload(&publish.payload).headers(headers);
        if let Some(key) = &publish.key {
            record = record.key(key);
        }
        if let Some(partition) = publish.partition {
            record = record.partition(partition);
        }
        let sent = Instant::now();
        let delivery = self
            .producer
            .send_result(record)
            .map_err(|(cause, _)| ActorError::publishing(&publish.topic, cause))?;
        let (publish, actor, stats) = (publish.clone(), ctx.address(), self.stats.clone());
        actix_rt::spawn(async move {
            match delivery.await {
                Ok(Ok(_)) => {
                    stats.produced(&publish.topic, sent.elapsed());
                    if let Some(announce) = publish.announce {
                        info!(target: Self::NAME, "{announce}: {}", String::from_utf8_lossy(&publish.payload));
                    }
                    publish.ticket.complete();
                }
                Ok(Err((cause, _))) => {
                    let failure = ActorError::publishing(&publish.topic, cause.clone());
                    if failure.kind() == Kind::Permanent {
                        return actor.do_send(Refused(publish, cause));
                    }
                    warn!(target: Self::NAME, "{failure}; publishing again in 1 s");
                    tokio::time::sleep(RETRY_PAUSE).await;
                    actor.do_send(publish);
                }
                // The producer is gone: the process is exiting, the event stays uncommitted.
                Err(_canceled) => {}
            }
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
        ctx: &mut Context<Supervised<Self>>,
    ) -> Result<(), ActorError> {
        match input {
            ProducerInput::Publish(publish) => self.publish(publish, ctx),
            ProducerInput::Refused(publish, cause) => {
                Err(ActorError::PublishRefused { topic: publish.topic.clone(), cause: cause.clone() })
            }
        }
    }

    fn describe(input: &ProducerInput) -> String {
        let (ProducerInput::Publish(publish) | ProducerInput::Refused(publish, _)) = input;
        match &publish.key {
            Some(key) => format!("a record for {} (key {})", publish.topic, String::from_utf8_lossy(key)),
            None => format!("a record for {}", publish.topic),
        }
    }
}
