//! The typed actix messages that carry one event through a service.
//!
//! source (consumer or generator) --[`Process`]--> domain actor --[`Publish`]--> producer
//! and, once the effect is done, whoever finished it calls [`Ticket::complete`], which
//! sends [`Completed`] back to the source, so it can store the offset.
//!
//! An event's in-flight slot rides in its ticket, and the completion brings it
//! home: the source gives it back once it has taken the completion in. A ticket
//! dropped unfinished (a crashed actor, a message lost) gives its slot back as
//! the last copy of it goes.

use crate::actor::in_flight::SharedSlot;
use crate::wire::event::{as_text, OrderEvent};
use actix::{Actor, AsyncContext, Context, Handler, Message, Recipient};
use std::borrow::Cow;
use std::sync::Arc;

/// Where an event came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A Kafka record, by partition and offset (the topic is the consumer's),
    /// and the generation of the consumer's assignment it was read in: after a
    /// rebalance the same record may be read again, and only a completion of
    /// the current generation counts.
    Record { generation: u64, partition: i32, offset: i64 },
    /// An order, by id: for actors that track completions per order (the
    /// generator counts acknowledged orders; the payment actor waits for its
    /// payment events to be acknowledged).
    Order { order_id: u64 },
}

/// The source is told: this event's downstream effect is done. The event's
/// slot comes with it, given back as the source drops the message, after it
/// has taken the completion in.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Completed {
    pub origin: Origin,
    pub slot: SharedSlot,
}

/// Travels with an event: where it came from, its in-flight slot, and whom to
/// tell when it is done.
#[derive(Clone, Debug)]
pub struct Ticket {
    pub origin: Origin,
    /// Shared by every copy of the ticket, and the tickets that follow from it
    /// (see [`Ticket::slot`]): given back when the last of them goes.
    slot: SharedSlot,
    /// Shared by every ticket of the source: a clone costs a reference count,
    /// where a `Recipient` of its own would cost an allocation.
    source: Arc<Recipient<Completed>>,
}

impl Ticket {
    pub fn new(origin: Origin, slot: SharedSlot, source: Arc<Recipient<Completed>>) -> Self {
        Ticket { origin, slot, source }
    }

    /// Tells the source the event is done, handing it the slot.
    pub fn complete(self) {
        self.source.do_send(Completed { origin: self.origin, slot: self.slot });
    }

    /// The event's slot, for a ticket of a step that follows from this one
    /// (a payment event's, for the order it pays).
    pub fn slot(&self) -> &SharedSlot {
        &self.slot
    }
}

/// Issues an actor's tickets, all sharing one `Recipient` of it, made at the first.
#[derive(Default)]
pub struct TicketIssuer(Option<Arc<Recipient<Completed>>>);

impl TicketIssuer {
    /// A ticket for the event from `origin` that holds `slot`, completed to the actor of `ctx`.
    pub fn issue<A>(&mut self, origin: Origin, slot: SharedSlot, ctx: &Context<A>) -> Ticket
    where
        A: Actor<Context = Context<A>> + Handler<Completed>,
    {
        let source = self.0.get_or_insert_with(|| Arc::new(ctx.address().recipient()));
        Ticket::new(origin, slot, source.clone())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::in_flight::InFlight;
    use tokio::sync::mpsc;

    /// A source that keeps each completion it is told of until the test takes it.
    struct Source(mpsc::UnboundedSender<Completed>);

    impl Actor for Source {
        type Context = Context<Self>;
    }

    impl Handler<Completed> for Source {
        type Result = ();
        fn handle(&mut self, completed: Completed, _: &mut Context<Self>) {
            let _ = self.0.send(completed);
        }
    }

    const ORIGIN: Origin = Origin::Record { generation: 0, partition: 2, offset: 7 };

    /// A ticket holding the one slot of its in-flight bound, and what its source is told.
    fn ticket() -> (InFlight, Ticket, mpsc::UnboundedReceiver<Completed>) {
        let (in_flight, (told, completions)) = (InFlight::new(1), mpsc::unbounded_channel());
        let slot = Arc::new(in_flight.try_reserve().expect("a free slot"));
        let ticket = Ticket::new(ORIGIN, slot, Arc::new(Source(told).start().recipient()));
        (in_flight, ticket, completions)
    }

    #[actix_rt::test]
    async fn the_completion_brings_the_slot_home_and_the_source_gives_it_back() {
        let (in_flight, ticket, mut completions) = ticket();
        let copy = ticket.clone(); // a copy of the event, waiting on the original
        ticket.complete();
        drop(copy);
        let completed = completions.recv().await.expect("the completion");
        assert_eq!(completed.origin, ORIGIN);
        assert_eq!(in_flight.count(), 1, "the source has not taken the completion in yet");
        drop(completed);
        assert_eq!(in_flight.count(), 0);
    }

    #[actix_rt::test]
    async fn a_ticket_dropped_unfinished_gives_its_slot_back() {
        let (in_flight, ticket, mut completions) = ticket();
        let follower =
            Ticket::new(Origin::Order { order_id: 7 }, ticket.slot().clone(), ticket.source.clone());
        drop(ticket); // a crashed actor's, or a lost message's
        assert_eq!(in_flight.count(), 1, "the ticket that follows from it holds it still");
        drop(follower);
        assert_eq!(in_flight.count(), 0);
        assert!(completions.try_recv().is_err(), "nothing was completed");
    }
}
