//! Runs the real thing for the end-to-end tests (in `tests/`) and the benchmark:
//! a Nisshi broker on a free port, the real service binaries, and the log lines
//! they print.
//!
//! Nothing here sleeps in place of an event: callers wait for log lines (with a
//! condition variable) and for process exits, each with a deadline that fails
//! loudly. The binaries come from `target/debug` when this crate is built for
//! tests, from `target/release` when built in release mode (the benchmark).
//!
//! The modules, each re-exported here as `harness::X`: [`Broker`] (broker.rs),
//! [`ServiceProcess`] (service_process.rs), the test's folder and its stores
//! (test_folder.rs), the log lines (logline.rs), the orders counted in them
//! (orders.rs), the records read back from the topics (topics.rs), the
//! workspace's binaries (workspace.rs).

mod broker;
pub mod history;
pub mod logline;
pub mod netns;
mod orders;
pub mod postgres;
pub mod proxy;
pub mod scrape;
mod security;
mod service_process;
pub mod small_disk;
pub mod store;
mod test_folder;
mod topics;
mod workspace;

pub use broker::Broker;
pub use logline::{counter, errors, summary, tail};
pub use orders::{
    assert_at_least_once, assert_exactly_once, count_orders, emailed, DECLINED_NOTIFIED, NOTIFIED, PAID,
    RENEWED, TAKEN_OVER,
};
pub use security::Security;
pub use service_process::{interrupt, wait_until_all, ServiceProcess};
pub use test_folder::{store_path, store_url};
pub use topics::{outcome, payment_events, payments_on_topic, records_on_topic, TopicRecord};
pub use workspace::{binary, run};
