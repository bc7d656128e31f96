//! The wire format: the events as they travel on Kafka, and their encoding.

mod canonical;
pub mod codec;
pub mod event;
