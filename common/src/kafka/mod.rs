//! Kafka, by concept: the clients (`client/`: settings, building, their
//! context, properties, topics), the consumer (`consumer/`: the actor, its
//! reader task, offsets, the read gate, the group), the producer (`producer/`:
//! the actor, deliveries, dead letters, which failures are which), and a reader
//! that only tools use.

pub mod client;
pub mod consumer;
pub mod producer;
pub mod tool_reader;
