//! The shared kit of the order pipeline, in layers.
//!
//! Every service is the same shape: a source actor (a Kafka consumer, or
//! order-service's generator) hands each event to the service's domain actor,
//! which hands its result to a producer actor; whoever finishes an event tells
//! the source, which then stores the offset. Every actor runs under
//! supervision, which restarts it after a panic or an error.
//!
//! The layers, bottom up: a module imports only modules of its own layer or of
//! the layers before it (`tests/layout.rs` reads this list and checks it).
//!
//! 1. [`base`]: what every layer uses: the log and its barrier
//!    ([`base::logging`]), the metrics ([`base::metrics`]), the shutdown
//!    ([`base::shutdown`]).
//! 2. [`wire`]: the events on Kafka ([`wire::event`], [`wire::codec`]).
//! 3. [`actor`]: the messages ([`actor::messages`]), supervision
//!    ([`actor::supervisor`], [`actor::restart_policy`], [`actor::error`],
//!    [`actor::fault`]), back-pressure ([`actor::in_flight`]) and the copies
//!    of an order on its way ([`actor::coalescer`]).
//! 4. [`kafka`]: the clients ([`kafka::client`]), the consumer
//!    ([`kafka::consumer`]) and the producer ([`kafka::producer`]).
//! 5. [`store`]: where consumer services record what they did: the zombie fence.
//! 6. [`runtime`]: one service process ([`runtime::service`],
//!    [`runtime::config`], [`runtime::http`], [`runtime::setup_error`]).

pub mod actor;
pub mod base;
pub mod kafka;
pub mod runtime;
pub mod store;
pub mod wire;
