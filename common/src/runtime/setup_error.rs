//! Why a service could not start. Each message names the cause and what to
//! change; the service logs it and exits with status 1 (2 for a store it cannot
//! use or that its group does not share, as for a bad flag; 0 for [`SetupError::Interrupted`]).

use crate::store::StoreError;
use rdkafka::error::KafkaError;
use std::process::ExitCode;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SetupError {
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
    #[error("cannot serve metrics on {address} ({source}): give --metrics-addr (or METRICS_ADDR) a free HOST:PORT")]
    MetricsAddress { address: String, source: std::io::Error },
    /// The store is there but cannot be used by this service (`--store`).
    #[error("the store {url}: {source}")]
    Store { url: String, source: StoreError },
    /// A member of the group fences with another store (`--store`).
    #[error("{0}")]
    OtherStore(crate::kafka::store_mark::OtherStore),
    /// Ctrl-C before the service was up: not a failure.
    #[error("interrupted while starting: exiting")]
    Interrupted,
    /// A service's own start-up step failed (its error says why).
    #[error(transparent)]
    Service(Box<dyn std::error::Error + Send + Sync>),
}

impl SetupError {
    /// The exit status of a service that could not start for this reason.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            SetupError::Store { .. } | SetupError::OtherStore(_) => ExitCode::from(2),
            _ => ExitCode::FAILURE,
        }
    }

    /// A service's own start-up error.
    pub fn service(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        SetupError::Service(Box::new(error))
    }
}
