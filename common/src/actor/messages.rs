//! The typed actix messages that carry one event through a service.
//!
//! source (consumer or generator) --[`Process`]--> domain actor --[`Publish`]--> producer
//! and, once the effect is done, whoever finished it calls [`Ticket::complete`], which
//! sends [`Completed`] back to the source, so it can store the offset.

use crate::wire::event::{as_text, OrderEvent};
use actix::{Actor, AsyncContext, Context, Handler, Message, Recipient};
use std::borrow::Cow;
use std::sync::Arc;

/// Where an event came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A Kafka record, by partition and offset (the topic is the consumer's).
    Record { partition: i32, offset: i64 },
    /// An order, by id: for actors that track completions per order (the
    /// generator counts acknowledged orders; the payment actor waits for its
    /// payment events to be acknowledged).
    Order { order_id: u64 },
}

/// The source is told: this event's downstream effect is done.
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub struct Completed(pub Origin);

/// Travels with an event: where it came from and whom to tell when it is done.
#[derive(Clone, Debug)]
pub struct Ticket {
    pub origin: Origin,
    /// Shared by every ticket of the source: a clone costs a reference count,
    /// where a `Recipient` of its own would cost an allocation.
    source: Arc<Recipient<Completed>>,
}

impl Ticket {
    pub fn new(origin: Origin, source: Arc<Recipient<Completed>>) -> Self {
        Ticket { origin, source }
    }

    /// Tells the source the event is done.
    pub fn complete(&self) {
        self.source.do_send(Completed(self.origin));
    }
}

/// Issues an actor's tickets, all sharing one `Recipient` of it, made at the first.
#[derive(Default)]
pub struct TicketIssuer(Option<Arc<Recipient<Completed>>>);

impl TicketIssuer {
    /// A ticket for the event from `origin`, completed to the actor of `ctx`.
    pub fn issue<A>(&mut self, origin: Origin, ctx: &Context<A>) -> Ticket
    where
        A: Actor<Context = Context<A>> + Handler<Completed>,
    {
        let source = self.0.get_or_insert_with(|| Arc::new(ctx.address().recipient()));
        Ticket::new(origin, source.clone())
    }
}

/// An event for a domain actor to handle.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct Process {
    pub event: OrderEvent,
    pub ticket: Ticket,
    /// The event's bytes: the record it was read from, as it arrived, or as
    /// its maker encoded it; `None` if it has not been encoded.
    pub payload: Option<Arc<[u8]>>,
}

impl Process {
    /// The event as JSON, for log lines: the record's own bytes when there is
    /// one (no second serialization), else the event serialized.
    pub fn json(&self) -> Cow<'_, str> {
        match &self.payload {
            Some(payload) => as_text(payload),
            None => Cow::Owned(self.event.to_string()),
        }
    }
}

/// A record for the producer actor to publish; the ticket completes once the
/// broker has acknowledged it.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct Publish {
    /// Shared: a topic's name is not copied for each record.
    pub topic: Arc<str>,
    /// The partition to write to; `None`: the key's (librdkafka's partitioner).
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    /// Shared, not copied, with what travels through librdkafka for a retry.
    pub headers: Arc<[(&'static str, String)]>,
    pub ticket: Ticket,
    /// Logged with the payload once the broker has it, e.g. "✅ Payment Event Sent".
    pub announce: Option<&'static str>,
}

impl Publish {
    /// The event of `process`, keyed by its order id: the bytes it was made or
    /// read as, when it has them, else encoded now.
    pub fn event(topic: &Arc<str>, process: &Process, announce: Option<&'static str>) -> Self {
        let Process { event, ticket, payload } = process;
        Publish {
            topic: topic.clone(),
            partition: None,
            key: Some(event.key().into_bytes()),
            payload: payload.as_deref().map_or_else(|| event.encode(), <[u8]>::to_vec),
            headers: Arc::default(),
            ticket: ticket.clone(),
            announce,
        }
    }
}

/// Declares what an actor handles: an enum with one variant per message,
/// named after it and holding it, and the `From` that lets each message reach
/// the actor (a [`WorkerActor`](crate::actor::supervisor::WorkerActor) handles
/// any message that converts into its worker's input).
///
/// ```
/// use actix::Message;
///
/// #[derive(Message)]
/// #[rtype(result = "()")]
/// pub struct Tick;
///
/// #[derive(Message)]
/// #[rtype(result = "()")]
/// pub struct Stop(pub &'static str);
///
/// common::worker_input! {
///     /// What a clock actor handles.
///     pub enum ClockInput { Tick, Stop }
/// }
///
/// assert!(matches!(ClockInput::from(Tick), ClockInput::Tick(Tick)));
/// assert!(matches!(Stop("done").into(), ClockInput::Stop(Stop("done"))));
/// ```
#[macro_export]
macro_rules! worker_input {
    ($(#[$meta:meta])* $visibility:vis enum $input:ident { $($message:ident),+ $(,)? }) => {
        $(#[$meta])*
        $visibility enum $input {
            $($message($message)),+
        }
        $(
            impl From<$message> for $input {
                fn from(message: $message) -> Self {
                    $input::$message(message)
                }
            }
        )+
    };
}
