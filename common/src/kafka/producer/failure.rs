//! Which failures to publish are which: librdkafka's error codes sorted into
//! those that may pass (a full queue, a broker away) and those that publishing
//! the same record again would meet again, each with what to do about it.

use crate::actor::error::ActorError;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// A failure to publish to `topic`, of the kind its error code says.
pub fn publishing(topic: &str, cause: KafkaError) -> ActorError {
    match cause.rdkafka_error_code() {
        Some(code) if is_permanent(code) => ActorError::Refused(format!(
            "cannot publish to {topic}, and retrying cannot help: {cause}; {}",
            fix_for(&cause)
        )),
        _ => ActorError::Unavailable(format!("cannot publish to {topic} for now: {cause}")),
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
    use crate::actor::error::Kind;

    fn kind_of(code: RDKafkaErrorCode) -> Kind {
        publishing("payment_topic", KafkaError::MessageProduction(code)).kind()
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
        let refused =
            publishing("payment_topic", KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge));
        let line = refused.to_string();
        assert!(line.contains("payment_topic") && line.contains("max.message.bytes"), "{line}");
    }
}
