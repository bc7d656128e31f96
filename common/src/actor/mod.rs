//! The actor kit: the messages that carry an event through a service, the
//! supervision that restarts a failed actor (with its policy, errors and
//! injected faults), the bound on events in flight, and the memory of orders
//! on their way and done lately (`coalescer.rs`, `recent_ids.rs`).

pub mod coalescer;
pub mod error;
pub mod fault;
pub mod in_flight;
pub mod messages;
pub mod recent_ids;
pub mod restart_policy;
pub mod supervisor;
