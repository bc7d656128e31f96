//! A payment-service started over a history of paid orders: seconds from its
//! start to its first new payment, and its peak RSS. Each history size gets a
//! fresh embedded broker of its own, since the history is written to
//! `order_topic` and `payment_topic` themselves (see `harness::history`).

use harness::history::write_paid_history;
use harness::{count_orders, Broker, ServiceProcess, PAID};
use std::time::{Duration, Instant};

/// Orders of each partition left uncommitted: redelivered to the new instance.
const UNCOMMITTED: u64 = 500;
/// New orders after the history; the first one's payment is what is timed.
const NEW_ORDERS: &str = "10";

/// What one restart over history measured.
#[derive(Clone, Copy, Debug)]
pub struct Restart {
    pub history: u64,
    /// From payment-service's start to its first new payment event acknowledged.
    pub first_payment_s: f64,
    pub peak_rss_mib: f64,
}

/// Writes `history` paid orders, then starts payment-service and times it.
pub fn run(history: u64, timeout: Duration) -> Restart {
    let broker = Broker::start();
    write_paid_history(&broker, history, UNCOMMITTED);

    let started = Instant::now();
    let mut payment = ServiceProcess::start("payment-service", &broker, &[]);
    let first_new = (history + 1001).to_string();
    let args = ["--start-id", first_new.as_str(), "--count", NEW_ORDERS, "--rate", "0"];
    let _orders = ServiceProcess::start("order-service", &broker, &args);
    payment.wait_until("a new order is paid", timeout, |lines| !count_orders(lines, PAID).is_empty());
    let first_payment_s = started.elapsed().as_secs_f64();
    let peak_rss_mib = payment.peak_rss_kib() as f64 / 1024.0;
    payment.stop_gracefully(timeout);
    Restart { history, first_payment_s, peak_rss_mib }
}
