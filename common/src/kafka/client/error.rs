//! Why a service's Kafka clients could not start; each message names the cause
//! and what to change. `runtime::setup_error::SetupError` wraps it.

use crate::kafka::consumer::store_mark::OtherStore;
use rdkafka::error::KafkaError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum KafkaSetupError {
    /// librdkafka refused a client property (ours, `-X` or `--kafka-config`).
    #[error("invalid Kafka client settings: {0}")]
    ClientSettings(#[source] KafkaError),
    #[error("cannot subscribe to {topic}: {source}")]
    Subscribe { topic: String, source: KafkaError },
    /// The broker did not answer within `--broker-wait-secs`; the message says why and what to do.
    #[error("{0}")]
    BrokerUnreachable(String),
    #[error(
        "topic {topics} does not exist on {brokers} and --create-topics is false: create it (with the \
         partitions and replication factor your cluster needs), or start with --create-topics true"
    )]
    TopicsMissing { topics: String, brokers: String },
    /// The broker refused to create a topic, and will again; the message says what to change.
    #[error("{0}")]
    TopicsRefused(String),
    /// A member of the group fences with another store (`--store`).
    #[error("{0}")]
    OtherStore(OtherStore),
}
