//! The producer actor: publishes records, and completes each event's ticket once
//! the broker has acknowledged its record.
//!
//! The delivery wait runs as its own task, not on the actor, so a crash and
//! restart of the actor never loses an acknowledgement. A record the broker
//! finally refuses is published again: its event is never completed without it.

use crate::fault::Role;
use crate::kafka::KafkaContext;
use crate::messages::Publish;
use crate::supervisor::{Supervised, Worker};
use actix::{AsyncContext, Context};
use log::{info, warn};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// The pause before publishing a record again whose delivery finally failed.
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

pub struct ProducerActor {
    producer: FutureProducer<KafkaContext>,
}

impl ProducerActor {
    pub fn new(producer: FutureProducer<KafkaContext>) -> Self {
        ProducerActor { producer }
    }
}

impl Worker for ProducerActor {
    type Input = Publish;
    const NAME: &'static str = "ProducerActor";
    const ROLE: Role = Role::Producer;

    fn handle(&mut self, publish: &Publish, ctx: &mut Context<Supervised<Self>>) -> Result<(), String> {
        let headers = publish.headers.iter().fold(OwnedHeaders::new(), |headers, (key, value)| {
            headers.insert(Header { key, value: Some(value.as_str()) })
        });
        let mut record = FutureRecord::to(&publish.topic).payload(&publish.payload).headers(headers);
        if let Some(key) = &publish.key {
            record = record.key(key);
        }
        let delivery = self
            .producer
            .send_result(record)
            .map_err(|(e, _)| format!("cannot queue a record for {}: {e}", publish.topic))?;
        let (publish, retry) = (publish.clone(), ctx.address());
        actix_rt::spawn(async move {
            match delivery.await {
                Ok(Ok(_)) => {
                    if let Some(announce) = publish.announce {
                        info!(target: Self::NAME, "{announce}: {}", String::from_utf8_lossy(&publish.payload));
                    }
                    publish.ticket.complete();
                }
                Ok(Err((e, _))) => {
                    warn!(target: Self::NAME, "delivery to {} failed ({e}); publishing again in 1 s", publish.topic);
                    tokio::time::sleep(RETRY_PAUSE).await;
                    retry.do_send(publish);
                }
                // The producer is gone: the process is exiting, the event stays uncommitted.
                Err(_canceled) => {}
            }
        });
        Ok(())
    }

    fn describe(publish: &Publish) -> String {
        match &publish.key {
            Some(key) => format!("a record for {} (key {})", publish.topic, String::from_utf8_lossy(key)),
            None => format!("a record for {}", publish.topic),
        }
    }
}
