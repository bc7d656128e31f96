//! The producer actor: publishes records; each event's ticket is completed once
//! the broker has acknowledged its record (`deliveries.rs`).
//!
//! A record whose delivery failed after librdkafka's own retries comes back to
//! the actor as [`Undelivered`] and is published again a second later (its
//! event is never completed without it), unless the broker refuses it for good
//! (`failure.rs`): then the service stops instead of retrying forever. A dead letter refused for its size
//! goes out as headers only instead: no consumed record can stop the service.

use crate::actor::error::{ActorError, Kind};
use crate::actor::fault::Role;
use crate::actor::messages::Publish;
use crate::actor::supervisor::{Supervision, Worker, WorkerActor};
use crate::kafka::producer::deliveries::{KafkaProducer, Sent};
use crate::kafka::producer::{dead_letter, failure};
use actix::{Addr, Context, Message as ActixMessage};
use log::warn;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer};
use std::time::Duration;

/// The pause before publishing again a record whose delivery failed.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// A record librdkafka could not deliver after its own retries, and why.
#[derive(ActixMessage)]
#[rtype(result = "()")]
pub struct Undelivered(pub Publish, pub KafkaError);

crate::worker_input! {
    /// Everything the producer actor handles.
    pub enum ProducerInput { Publish, Undelivered }
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
        let failure = failure::publishing(&publish.topic, cause);
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
        let failure = failure::publishing(&publish.topic, cause.clone());
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
