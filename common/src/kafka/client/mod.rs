//! A service's Kafka clients: what they are told ([`settings`], [`properties`]),
//! how they are built ([`build`]) and what fails then ([`error`]), the context
//! they share ([`context`]), and the topics checked at start ([`topics`]).

pub mod build;
pub mod context;
pub mod error;
pub mod properties;
pub mod settings;
pub mod topics;
