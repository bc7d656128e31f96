//! The actor kit: the messages that carry an event through a service, the
//! supervision that restarts a failed actor (with its policy, errors and
//! injected faults), and the bound on events in flight.

pub mod error;
pub mod fault;
pub mod in_flight;
pub mod messages;
pub mod recent_ids;
pub mod restart_policy;
pub mod supervisor;
