//! Kafka: the clients and their contexts, the consumer and producer actors,
//! the offsets they may commit, and the tools' out-of-group readers.

pub mod client_properties;
pub mod clients;
pub mod consumer;
pub mod context;
pub mod dead_letter;
pub mod offsets;
pub mod poller;
pub mod producer;
pub mod read_gate;
pub mod reader;
pub mod rebalance;
pub mod store_mark;
pub mod topics;
