//! What operators watch: the metrics and the HTTP probes.

pub mod http;
pub mod metrics;
