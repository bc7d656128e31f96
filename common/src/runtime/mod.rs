//! One service process: its flags, its log, its start-up and its graceful shutdown.

pub mod config;
pub mod logging;
pub mod service;
pub mod setup_error;
pub mod shutdown;
