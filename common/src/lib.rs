//! The shared kit of the order pipeline, in layers.
//!
//! Every service is the same shape: a source actor (a Kafka consumer, or
//! order-service's generator) hands each event to the service's domain actor,
//! which hands its result to a producer actor; whoever finishes an event tells
//! the source, which then stores the offset. Every actor runs under
//! supervision, which restarts it after a panic or an error.
//!
//! Read in this order (no module imports one that imports it back):
//!
//! 1. [`wire`]: the events on Kafka ([`wire::event`], [`wire::codec`]).
//! 2. [`actor`]: the messages ([`actor::messages`]), supervision
//!    ([`actor::supervisor`], [`actor::restart_policy`], [`actor::error`],
//!    [`actor::fault`]) and back-pressure ([`actor::in_flight`]).
//! 3. [`kafka`]: the consumer ([`kafka::poller`], [`kafka::consumer`],
//!    [`kafka::offsets`], [`kafka::read_gate`], [`kafka::rebalance`]), the
//!    producer ([`kafka::producer`], [`kafka::dead_letter`]) and their clients
//!    ([`kafka::clients`], [`kafka::context`], [`kafka::topics`]).
//! 4. [`store`]: where consumer services record what they did: the zombie fence.
//! 5. [`runtime`]: one service process ([`runtime::service`],
//!    [`runtime::shutdown`], [`runtime::config`], [`runtime::logging`]).
//! 6. [`ops`]: metrics and HTTP probes.

pub mod actor;
pub mod kafka;
pub mod ops;
pub mod runtime;
pub mod store;
pub mod wire;
