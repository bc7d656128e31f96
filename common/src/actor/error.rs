//! What can go wrong inside an actor, and which kind of failure it is.
//!
//! The kind decides what the supervisor does (see `supervisor.rs`):
//!
//! - **transient**: the world is not ready yet (librdkafka's queue is full, the
//!   broker is away, the mail server refuses for now). The same input is tried
//!   again after a backoff; however many there are, they are no crash loop.
//! - **permanent**: trying again cannot help (the broker refuses a record for
//!   good). The service stops with one line naming the cause and the fix.
//! - **crash**: a panic or an injected fault, whose state nobody knows: the actor
//!   restarts, and a crash loop is escalated.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use thiserror::Error;

/// An actor's failure to handle one input.
#[derive(Debug, Error)]
pub enum ActorError {
    /// librdkafka cannot take or deliver a record now; it may later.
    #[error("cannot publish to {topic} for now: {cause}")]
    PublishDelayed { topic: String, cause: KafkaError },
    /// The broker (or librdkafka) refuses a record, and would refuse it again.
    #[error("cannot publish to {topic}, and retrying cannot help: {cause}; {}", fix_for(cause))]
    PublishRefused { topic: String, cause: KafkaError },
    /// Something the actor depends on is unavailable for now, e.g. the mail server.
    #[error("{0}")]
    Unavailable(String),
    /// A panic or an injected fault: the actor's state is unknown.
    #[error("{0}")]
    Crashed(String),
}

/// What the supervisor does about a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Transient,
    Permanent,
    Crash,
}

impl ActorError {
    /// A failure to publish to `topic`, of the kind its error code says.
    pub fn publishing(topic: &str, cause: KafkaError) -> ActorError {
        let topic = topic.to_string();
        match cause.rdkafka_error_code() {
            Some(code) if is_permanent(code) => ActorError::PublishRefused { topic, cause },
            _ => ActorError::PublishDelayed { topic, cause },
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            ActorError::PublishDelayed { .. } | ActorError::Unavailable(_) => Kind::Transient,
            ActorError::PublishRefused { .. } => Kind::Permanent,
            ActorError::Crashed(_) => Kind::Crash,
        }
    }
}

/// Errors that publishing the same record again would meet again. Everything
/// else (a full queue, a timeout, a broker away or electing a leader) passes.
fn is_permanent(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        code,
        MessageSizeTooLarge
            | InvalidMessageSize
            | InvalidMessage
            | InvalidRecord
            | UnsupportedForMessageFormat
            | PolicyViolation
            | InvalidRequiredAcks
            | TopicAuthorizationFailed
            | ClusterAuthorizationFailed
            | InvalidTopic
            | UnknownTopic
            | UnknownPartition
            | InvalidArgument
            | Fatal
    )
}

/// What to do about a permanent publishing error.
fn fix_for(cause: &KafkaError) -> &'static str {
    use RDKafkaErrorCode::*;
    match cause.rdkafka_error_code() {
        Some(MessageSizeTooLarge | InvalidMessageSize) => {
            "raise the topic's max.message.bytes (and the broker's message.max.bytes) above the record's size"
        }
        Some(TopicAuthorizationFailed | ClusterAuthorizationFailed) => {
            "grant this service's Kafka principal Write on the topic and IdempotentWrite on the cluster"
        }
        Some(InvalidTopic | UnknownTopic | UnknownPartition) => {
            "create the topic (each service creates its own at start) or fix --order-topic/--payment-topic"
        }
        Some(Fatal) => "the idempotent producer cannot go on: restart the service",
        _ => "check the topic's and the broker's settings",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(code: RDKafkaErrorCode) -> Kind {
        ActorError::publishing("payment_topic", KafkaError::MessageProduction(code)).kind()
    }

    #[test]
    fn a_full_queue_or_a_broker_away_is_transient() {
        for code in [
            RDKafkaErrorCode::QueueFull,
            RDKafkaErrorCode::MessageTimedOut,
            RDKafkaErrorCode::AllBrokersDown,
            RDKafkaErrorCode::NotLeaderForPartition,
            RDKafkaErrorCode::RequestTimedOut,
        ] {
            assert_eq!(kind_of(code), Kind::Transient, "{code:?}");
        }
    }

    #[test]
    fn a_record_refused_for_good_is_permanent_and_says_what_to_do() {
        for code in [
            RDKafkaErrorCode::MessageSizeTooLarge,
            RDKafkaErrorCode::TopicAuthorizationFailed,
            RDKafkaErrorCode::InvalidRecord,
        ] {
            assert_eq!(kind_of(code), Kind::Permanent, "{code:?}");
        }
        let refused = ActorError::publishing(
            "payment_topic",
            KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
        );
        let line = refused.to_string();
        assert!(line.contains("payment_topic") && line.contains("max.message.bytes"), "{line}");
    }
}
