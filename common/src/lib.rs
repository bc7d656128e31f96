//! The shared actor kit of the order pipeline.
//!
//! Every service is the same shape: a source actor (a Kafka consumer, or
//! order-service's generator) hands each event to the service's domain actor,
//! which hands its result to a producer actor; whoever finishes an event tells
//! the source, which then stores the offset. Every actor runs under
//! [`supervisor::Supervised`], which restarts it after a panic or an error.
//!
//! Read in this order: [`event`], [`messages`], [`consumer`], [`producer`],
//! [`supervisor`] (with [`error`], [`restart_policy`] and [`fault`]), [`service`].

mod canonical;
pub mod client_properties;
pub mod config;
pub mod consumer;
pub mod dead_letter;
pub mod error;
pub mod event;
pub mod fault;
pub mod http;
pub mod in_flight;
pub mod kafka;
pub mod logging;
pub mod messages;
pub mod offsets;
pub mod producer;
pub mod read_gate;
pub mod recent_ids;
pub mod restart_policy;
pub mod service;
pub mod shutdown;
pub mod stats;
pub mod store;
pub mod supervisor;
pub mod topics;

/// mimalloc instead of the system allocator, for every binary built on this kit:
/// each event makes a few short-lived allocations (messages, records, log lines),
/// and glibc's malloc and free took a quarter of a service's CPU (measured with
/// `perf` at full throughput).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
