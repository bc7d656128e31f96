//! What the reader task tells the consumer actor: a record read, with its
//! in-flight slot (which rides on in its event's ticket), and when to store offsets.

use crate::actor::in_flight::SharedSlot;
use actix::Message;
use rdkafka::message::{BorrowedMessage, Message as _};
use std::sync::Arc;

/// A record read from the topic: what the actor uses of it, owned.
///
/// Not rdkafka's `OwnedMessage`: detaching one also copies its headers, which
/// librdkafka parses and allocates one by one, then frees again, for headers no
/// consumer actor reads (a third of notification-service's CPU over 300,000
/// orders went there).
#[derive(Debug)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    /// Shared with the event made of it, whose log lines show it as it arrived.
    pub payload: Option<Arc<[u8]>>,
}

impl Record {
    pub(crate) fn copied_from(message: &BorrowedMessage<'_>) -> Self {
        Record {
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(Arc::from),
        }
    }
}

/// A record read from the topic, with its in-flight slot.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Received {
    pub record: Record,
    pub slot: SharedSlot,
}

/// Write out the log lines, then store the offsets of the events done since
/// the last time.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StoreOffsets;
