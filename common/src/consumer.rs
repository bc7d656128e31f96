//! The consumer actor: reads a topic, hands valid events to the domain actor,
//! dead-letters the rest, and stores each offset once its event is done.
//!
//! Reading happens in a small task beside the actor (`poll_records`), which takes
//! an in-flight slot before each record: back-pressure. The actor itself only
//! decides what a record is and tracks offsets, so restarting it is instant and
//! the Kafka client (and its group membership) lives on.

use crate::event::{OrderEvent, Status};
use crate::fault::Role;
use crate::in_flight::InFlight;
use crate::kafka::{dead_letter_topic, KafkaContext};
use crate::messages::{Completed, Origin, Process, Publish, Ticket};
use crate::offsets::OffsetTracker;
use crate::shutdown::Shutdown;
use crate::stats::Stats;
use crate::supervisor::{Supervised, Supervision, Worker};
use actix::{Addr, AsyncContext, Context, Message, Recipient};
use log::{debug, info, warn};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Message as _, OwnedMessage};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A record read from the topic.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Received(pub OwnedMessage);

/// Everything the consumer actor handles.
pub enum ConsumerInput {
    Received(OwnedMessage),
    Completed(Origin),
}

impl From<Received> for ConsumerInput {
    fn from(Received(message): Received) -> Self {
        ConsumerInput::Received(message)
    }
}

impl From<Completed> for ConsumerInput {
    fn from(Completed(origin): Completed) -> Self {
        ConsumerInput::Completed(origin)
    }
}

pub struct ConsumerActor {
    client: Arc<StreamConsumer<KafkaContext>>,
    topic: String,
    /// The statuses a valid event on this topic may have.
    accepted: &'static [Status],
    domain: Recipient<Process>,
    dead_letters: Recipient<Publish>,
    offsets: OffsetTracker,
    in_flight: InFlight,
    stats: Arc<Stats>,
    service: &'static str,
}

/// How to build a [`ConsumerActor`].
pub struct ConsumerSetup {
    pub client: Arc<StreamConsumer<KafkaContext>>,
    pub topic: String,
    pub accepted: &'static [Status],
    pub domain: Recipient<Process>,
    pub dead_letters: Recipient<Publish>,
    pub in_flight: InFlight,
    pub service: &'static str,
}

impl ConsumerActor {
    /// Starts the actor under supervision, and the task that feeds it records.
    pub fn start(setup: ConsumerSetup, supervision: &Supervision) -> Addr<Supervised<ConsumerActor>> {
        let actor = ConsumerActor {
            client: setup.client.clone(),
            topic: setup.topic,
            accepted: setup.accepted,
            domain: setup.domain,
            dead_letters: setup.dead_letters,
            offsets: OffsetTracker::default(),
            in_flight: setup.in_flight.clone(),
            stats: supervision.stats.clone(),
            service: setup.service,
        };
        let addr = Supervised::start(actor, supervision);
        actix_rt::spawn(poll_records(
            setup.client,
            addr.clone(),
            setup.in_flight,
            supervision.shutdown.clone(),
        ));
        addr
    }

    fn received(&mut self, message: &OwnedMessage, me: Recipient<Completed>) {
        let (partition, offset) = (message.partition(), message.offset());
        self.offsets.begin(partition, offset);
        let ticket = Ticket::new(Origin::Record { partition, offset }, me);
        match OrderEvent::decode(message.payload(), self.accepted) {
            Ok(event) => self.domain.do_send(Process { event, ticket }),
            Err(invalid) => {
                warn!(
                    target: Self::NAME,
                    "☠️  dead-lettering {}[{partition}]@{offset}: {invalid}",
                    self.topic
                );
                self.stats.dead_lettered();
                let dlq = dead_letter_topic(&self.topic);
                self.dead_letters.do_send(Publish {
                    topic: dlq,
                    key: message.key().map(<[u8]>::to_vec),
                    payload: message.payload().unwrap_or_default().to_vec(),
                    headers: vec![
                        ("dlq.error", invalid.to_string()),
                        ("dlq.source.topic", self.topic.clone()),
                        ("dlq.source.partition", partition.to_string()),
                        ("dlq.source.offset", offset.to_string()),
                        ("dlq.service", self.service.to_string()),
                    ],
                    ticket,
                    announce: None,
                });
            }
        }
    }

    fn completed(&mut self, origin: Origin) {
        let Origin::Record { partition, offset } = origin else {
            return debug!(target: Self::NAME, "ignoring a completion that is not from Kafka: {origin:?}");
        };
        let Some(to_store) = self.offsets.complete(partition, offset) else {
            return; // already done, or its partition was revoked: nothing to free
        };
        if let Some(through) = to_store {
            // Fails only for a partition no longer ours; the new owner redoes the event.
            if let Err(e) = self.client.store_offset(&self.topic, partition, through) {
                debug!(target: Self::NAME, "cannot store {}[{partition}]@{through}: {e}", self.topic);
            }
        }
        self.in_flight.release();
    }
}

impl Worker for ConsumerActor {
    type Input = ConsumerInput;
    const NAME: &'static str = "ConsumerActor";
    const ROLE: Role = Role::Consumer;

    fn handle(&mut self, input: &ConsumerInput, ctx: &mut Context<Supervised<Self>>) -> Result<(), String> {
        match input {
            ConsumerInput::Received(message) => self.received(message, ctx.address().recipient()),
            ConsumerInput::Completed(origin) => self.completed(*origin),
        }
        Ok(())
    }

    fn describe(input: &ConsumerInput) -> String {
        match input {
            ConsumerInput::Received(message) => match message.key().map(String::from_utf8_lossy) {
                Some(key) => format!("order {key} ({}@{})", message.partition(), message.offset()),
                None => format!("a record ({}@{})", message.partition(), message.offset()),
            },
            ConsumerInput::Completed(origin) => format!("the completion of {origin:?}"),
        }
    }
}

/// Feeds the actor: one in-flight slot per record, until shutdown.
async fn poll_records(
    client: Arc<StreamConsumer<KafkaContext>>,
    actor: Addr<Supervised<ConsumerActor>>,
    in_flight: InFlight,
    shutdown: Shutdown,
) {
    let mut last_complaint: Option<Instant> = None;
    loop {
        tokio::select! {
            biased;
            _ = shutdown.triggered() => break,
            () = in_flight.reserve() => {}
        }
        let record = tokio::select! {
            biased;
            _ = shutdown.triggered() => {
                in_flight.release();
                break;
            }
            record = client.recv() => record,
        };
        match record {
            Ok(message) => actor.do_send(Received(message.detach())),
            Err(e) => {
                in_flight.release();
                if last_complaint.is_none_or(|at| at.elapsed() > Duration::from_secs(5)) {
                    warn!(target: ConsumerActor::NAME, "cannot read: {e} (retrying)");
                    last_complaint = Some(Instant::now());
                }
            }
        }
    }
    info!(target: ConsumerActor::NAME, "stopped taking new events");
}
