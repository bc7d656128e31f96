//! One service process: its flags, its start-up, its HTTP probes and why it could not start.

pub mod config;
pub mod http;
pub mod service;
pub mod setup_error;
mod teardown;
