//! A dead letter: a consumed record that cannot be handled, copied to its
//! topic's dead-letter topic (`<topic>.dlq`) with why, and where it came from.
//!
//! A dead letter fits under librdkafka's default `message.max.bytes` (1,000,000)
//! whatever the record: its key, its value and each header value keep at most
//! their heads (the bounds below), and a header says what was cut and from how
//! many bytes. The record itself stays on its topic, where the `dlq.source.*`
//! headers point.

use crate::actor::messages::{Publish, Ticket};

/// The most of a record's key and value together that a dead letter keeps.
const RECORD_MAX_BYTES: usize = 900_000;

/// The most of a record's key that a dead letter keeps: a long key leaves room
/// for the value, which says more.
const KEY_MAX_BYTES: usize = 100_000;

/// The most of each header value that a dead letter keeps: the error may quote
/// the record. With its few headers, a dead letter stays under 910,000 bytes.
const HEADER_MAX_BYTES: usize = 1_000;

/// The header naming the topic the record was read from.
const SOURCE_TOPIC: &str = "dlq.source.topic";

/// The header giving the length of a key the dead letter keeps only the head of.
pub const KEY_CUT_FROM: &str = "dlq.truncated.key.from.bytes";

/// The header giving the length of a value the dead letter keeps only the head of.
pub const VALUE_CUT_FROM: &str = "dlq.truncated.from.bytes";

/// The dead-letter topic of `topic`.
pub fn dead_letter_topic(topic: &str) -> String {
    format!("{topic}.dlq")
}

/// Where a dead letter's record was read.
pub struct Source<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// The service that gave up on it.
    pub service: &'a str,
}

/// The dead letter of the record `key`/`payload` read at `source`, refused
/// because of `why`; `ticket` completes once the broker has it.
pub fn dead_letter(
    source: &Source<'_>,
    key: Option<Vec<u8>>,
    payload: &[u8],
    why: String,
    ticket: Ticket,
) -> Publish {
    let mut headers = vec![
        ("dlq.error", why),
        (SOURCE_TOPIC, source.topic.to_string()),
        ("dlq.source.partition", source.partition.to_string()),
        ("dlq.source.offset", source.offset.to_string()),
        ("dlq.service", source.service.to_string()),
    ];
    let key = key.map(|mut key| {
        if key.len() > KEY_MAX_BYTES {
            headers.push((KEY_CUT_FROM, key.len().to_string()));
            key.truncate(KEY_MAX_BYTES);
        }
        key
    });
    let room = RECORD_MAX_BYTES - key.as_ref().map_or(0, Vec::len);
    if payload.len() > room {
        headers.push((VALUE_CUT_FROM, payload.len().to_string()));
    }
    Publish {
        topic: dead_letter_topic(source.topic).into(),
        partition: None,
        key,
        payload: payload[..payload.len().min(room)].to_vec(),
        headers: headers.into_iter().map(|(name, value)| (name, head_of(value))).collect(),
        ticket,
        announce: None,
    }
}

/// The dead letter `letter` without its record's key and value, for a broker or
/// producer whose size limit is below librdkafka's default: its headers say how
/// long they were, and where the record is. `None` if `letter` is no dead letter,
/// or holds nothing of its record already.
pub fn headers_only(letter: &Publish) -> Option<Publish> {
    let is_dead_letter = letter.headers.iter().any(|(name, _)| *name == SOURCE_TOPIC);
    if !is_dead_letter || (letter.key.is_none() && letter.payload.is_empty()) {
        return None;
    }
    let mut headers = letter.headers.to_vec();
    let key_length = letter.key.as_ref().map_or(0, Vec::len);
    for (header, length) in [(KEY_CUT_FROM, key_length), (VALUE_CUT_FROM, letter.payload.len())] {
        // A header already there gives the record's own length, before the first cut.
        if length > 0 && !headers.iter().any(|(name, _)| *name == header) {
            headers.push((header, length.to_string()));
        }
    }
    Some(Publish {
        topic: letter.topic.clone(),
        partition: letter.partition,
        key: None,
        payload: Vec::new(),
        headers: headers.into(),
        ticket: letter.ticket.clone(),
        announce: letter.announce,
    })
}

/// `text` cut to at most [`HEADER_MAX_BYTES`], at a character boundary, ending in `…` if cut.
fn head_of(mut text: String) -> String {
    if text.len() > HEADER_MAX_BYTES {
        let mut end = HEADER_MAX_BYTES - '…'.len_utf8();
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::in_flight::InFlight;
    use crate::actor::messages::{Completed, Origin};
    use actix::{Actor, Context, Handler};
    use std::sync::Arc;

    /// librdkafka's default `message.max.bytes`, which a dead letter must fit under.
    const LIBRDKAFKA_MESSAGE_MAX_BYTES: usize = 1_000_000;

    struct Nobody;

    impl Actor for Nobody {
        type Context = Context<Self>;
    }

    impl Handler<Completed> for Nobody {
        type Result = ();
        fn handle(&mut self, _: Completed, _: &mut Context<Self>) {}
    }

    fn letter_of(key: Option<Vec<u8>>, payload: &[u8], why: String) -> Publish {
        let system = actix::System::new();
        let slot = Arc::new(InFlight::new(1).try_reserve().expect("a free slot"));
        let ticket = system.block_on(async {
            let origin = Origin::Record { generation: 0, partition: 0, offset: 7 };
            Ticket::new(origin, slot, Arc::new(Nobody.start().recipient()))
        });
        let topic = "t".repeat(249); // Kafka's longest topic name
        let source = Source { topic: &topic, partition: 2, offset: 7, service: "payment-service" };
        dead_letter(&source, key, payload, why, ticket)
    }

    /// What librdkafka counts of a record against `message.max.bytes`, over-estimated:
    /// its key, value and headers, and 100 bytes for every length and field.
    fn size(letter: &Publish) -> usize {
        let headers: usize = letter.headers.iter().map(|(name, value)| name.len() + value.len() + 20).sum();
        letter.key.as_ref().map_or(0, Vec::len) + letter.payload.len() + headers + 100
    }

    fn header<'a>(letter: &'a Publish, name: &str) -> Option<&'a str> {
        letter.headers.iter().find(|(n, _)| *n == name).map(|(_, value)| value.as_str())
    }

    #[test]
    fn a_small_record_is_copied_whole() {
        let letter = letter_of(Some(b"bad-1".to_vec()), b"hello", "not a valid event".to_string());
        assert_eq!(letter.key.as_deref(), Some(&b"bad-1"[..]));
        assert_eq!(letter.payload, b"hello");
        assert_eq!(header(&letter, "dlq.error"), Some("not a valid event"));
        assert_eq!(header(&letter, "dlq.source.offset"), Some("7"));
        assert_eq!((header(&letter, KEY_CUT_FROM), header(&letter, VALUE_CUT_FROM)), (None, None));
    }

    #[test]
    fn a_dead_letter_fits_whatever_the_key_the_value_and_the_error() {
        let huge = 2_000_000;
        for (key, value, why) in [
            (huge, 1, 10),             // a long key, a one-byte value
            (1, huge, 10),             // a long value
            (500_000, 500_000, 10),    // each under its bound, together over
            (880_000, 60_000, 60_000), // an error quoting the value
            (huge, huge, huge),
        ] {
            let letter = letter_of(Some(vec![b'k'; key]), &vec![b'v'; value], "é".repeat(why / 2));
            assert!(size(&letter) < LIBRDKAFKA_MESSAGE_MAX_BYTES, "{key}/{value}/{why}: {}", size(&letter));
            let kept_key = letter.key.as_ref().map_or(0, Vec::len);
            assert_eq!(kept_key, key.min(KEY_MAX_BYTES), "{key}/{value}/{why}");
            assert_eq!(letter.payload.len(), value.min(RECORD_MAX_BYTES - kept_key), "{key}/{value}/{why}");
            let cut_from = |cut: bool, length: usize| cut.then(|| length.to_string());
            assert_eq!(header(&letter, KEY_CUT_FROM).map(str::to_string), cut_from(kept_key < key, key));
            let value_cut = letter.payload.len() < value;
            assert_eq!(header(&letter, VALUE_CUT_FROM).map(str::to_string), cut_from(value_cut, value));
            let error = header(&letter, "dlq.error").expect("the error");
            assert!(error.len() <= HEADER_MAX_BYTES && error.starts_with('é'), "{key}/{value}/{why}");
            assert_eq!(error.ends_with('…'), why > HEADER_MAX_BYTES, "{key}/{value}/{why}");
        }
    }

    #[test]
    fn a_dead_letter_refused_for_its_size_goes_out_as_headers_only() {
        let letter = letter_of(Some(vec![b'k'; 150_000]), &[b'v'; 30], "too long".to_string());
        let smaller = headers_only(&letter).expect("a dead letter with a key and a value");
        assert_eq!((smaller.key.as_deref(), smaller.payload.len()), (None, 0));
        assert_eq!(header(&smaller, KEY_CUT_FROM), Some("150000"), "the record's own length, not the cut's");
        assert_eq!(header(&smaller, VALUE_CUT_FROM), Some("30"));
        assert_eq!(header(&smaller, "dlq.source.offset"), Some("7"));
        assert!(headers_only(&headers_only(&letter).unwrap()).is_none(), "nothing more to take away");
        let payment = Publish { headers: Arc::default(), ..letter };
        assert!(headers_only(&payment).is_none(), "not a dead letter");
    }
}
