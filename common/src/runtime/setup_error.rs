//! Why a service could not start. Each message names the cause and what to
//! change; the service logs it and exits with status 1 (2, as for a bad flag,
//! for a store it cannot reach or use, or that its group does not share; 0 for
//! [`SetupError::Interrupted`]).

use crate::kafka::client::error::KafkaSetupError;
use crate::store::StoreError;
use std::process::ExitCode;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SetupError {
    /// The Kafka clients could not start.
    #[error(transparent)]
    Kafka(#[from] KafkaSetupError),
    #[error("cannot serve metrics on {address} ({source}): give --metrics-addr (or METRICS_ADDR) a free HOST:PORT")]
    MetricsAddress { address: String, source: std::io::Error },
    /// The store cannot be reached, or used by this service (`--store`).
    #[error("the store {url}: {source}")]
    Store { url: String, source: StoreError },
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
            SetupError::Store { .. } | SetupError::Kafka(KafkaSetupError::OtherStore(_)) => ExitCode::from(2),
            _ => ExitCode::FAILURE,
        }
    }

    /// A service's own start-up error.
    pub fn service(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        SetupError::Service(Box::new(error))
    }
}
