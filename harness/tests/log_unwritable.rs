//! A log that cannot be written loses no email. notification-service's email is
//! its log line; here its log (stderr) goes to a file on a small tmpfs, which a
//! filler fills to the last byte. The orders that meet the full disk are made
//! after it is full, once a warm-up run's emails show the pipeline flowing, so
//! they meet it on a machine of any speed (and each test checks that they did):
//! - freed again before the deadline, the service goes on and every order's
//!   email is in the file exactly once;
//! - left full, the service exits with status 1 after the deadline, having
//!   committed nothing it could not log: a second instance emails every order
//!   whose line is not (complete) in the first one's file.
//!
//! stdout goes to a file of its own, off the tmpfs: it is where the service
//! tells its operator that its log cannot be written.

use common::base::logging::GIVE_UP_AFTER;
use harness::small_disk::SmallDisk;
use harness::{count_orders, emailed, payments_on_topic, Broker, ServiceProcess, PAID};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

const MINUTE: Duration = Duration::from_secs(60);

/// notification-service with its stderr (its log) and stdout in files, started
/// with the arguments the harness gives it; killed on drop, its log kept in
/// `target/e2e-logs` (the tmpfs goes with the test).
struct Notifier {
    child: Child,
    log: PathBuf,
    stdout: PathBuf,
}

impl Notifier {
    fn start(broker: &Broker, log: PathBuf, stdout: PathBuf) -> Notifier {
        let create = |path: &Path| {
            File::create(path).unwrap_or_else(|e| panic!("cannot make {}: {e}", path.display()))
        };
        let store = harness::store_url(&broker.address, "notification-service");
        let child = Command::new(harness::binary("notification-service"))
            .args(["--brokers", &broker.address, "--stats-interval", "0", "--store", &store])
            .args(broker.client_args())
            .env("RUST_LOG", "info")
            .env("RUST_BACKTRACE", "0")
            .stderr(create(&log))
            .stdout(create(&stdout))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start notification-service: {e}"));
        Notifier { child, log, stdout }
    }

    /// The complete lines of its log so far (a line cut by the full disk is no email).
    fn lines(&self) -> Vec<String> {
        let bytes = std::fs::read(&self.log).unwrap_or_default();
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |end| end + 1);
        String::from_utf8_lossy(&bytes[..complete]).lines().map(str::to_string).collect()
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Waits until `done` holds for its complete log lines; panics after `timeout`
    /// or if it exits first.
    fn wait_until(&mut self, what: &str, timeout: Duration, done: impl Fn(&[String]) -> bool) {
        let lines = self.lines_when(timeout, &done);
        assert!(
            done(&lines),
            "notification-service timed out before {what}; its last lines:\n{}",
            tail(&lines)
        );
    }

    /// Its complete log lines once `done` holds for them, or as they are after
    /// `timeout`; panics if it exits first.
    fn lines_when(&mut self, timeout: Duration, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let lines = self.lines();
            if done(&lines) || Instant::now() >= deadline {
                return lines;
            }
            if let Some(status) = self.child.try_wait().expect("cannot see whether notification-service runs")
            {
                panic!("notification-service exited ({status}); its last lines:\n{}", tail(&lines));
            }
            std::thread::sleep(Duration::from_millis(100)); // polling a file
        }
    }

    /// Waits for it to exit, at most `timeout`.
    fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("cannot see whether notification-service runs")
            {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "notification-service did not exit within {timeout:?}; its stdout: {:?}; its last lines:\n{}",
                self.stdout(),
                tail(&self.lines())
            );
            std::thread::sleep(Duration::from_millis(100)); // polling: `Child` has no wait with a deadline
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e-logs");
        let test = std::thread::current().name().unwrap_or("test").replace("::", ".");
        let kept = dir.join(format!("{test}.notification-service.log"));
        let _ = std::fs::create_dir_all(&dir).and_then(|()| std::fs::copy(&self.log, kept));
        let _ = std::fs::remove_file(&self.stdout);
    }
}

fn tail(lines: &[String]) -> String {
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// The orders with a payment event: every one of them is owed an email.
fn paid_orders(broker: &Broker) -> BTreeSet<u64> {
    payments_on_topic(broker).into_keys().collect()
}

/// Waits until payment-service has published `count` payments.
fn wait_for_payments(payment: &ServiceProcess, count: usize) {
    payment.wait_until(&format!("{count} payments are published"), MINUTE, |lines| {
        count_orders(lines, PAID).len() >= count
    });
}

fn missing(orders: &BTreeSet<u64>, emailed: &BTreeMap<u64, usize>) -> Vec<u64> {
    orders.iter().copied().filter(|order| !emailed.contains_key(order)).collect()
}

/// The orders of the warm-up run: their emails show that the consumers are
/// assigned and the pipeline flows before the disk is filled.
const WARM_UP: u32 = 50;

/// Where the ids of the orders made after the fill start (the warm-up's are
/// 1001 and on).
const AFTER_FILL_FIRST_ID: &str = "2001";

/// The pipeline, notification-service logging to a small disk, with
/// [`WARM_UP`] orders made and emailed. Its fields drop in this order: the
/// processes before the broker, and before the disk their log is on.
struct Run {
    notification: Notifier,
    payment: ServiceProcess,
    broker: Broker,
    disk: SmallDisk,
}

impl Run {
    fn start(name: &str) -> Run {
        let disk = SmallDisk::mount(name);
        let broker = Broker::start();
        let stdout =
            std::env::temp_dir().join(format!("log-unwritable-{}-{name}.stdout", std::process::id()));
        let mut notification = Notifier::start(&broker, disk.dir.join("notification.log"), stdout);
        let payment = ServiceProcess::start("payment-service", &broker, &[]);
        let mut warm_up = ServiceProcess::start(
            "order-service",
            &broker,
            &["--count", &WARM_UP.to_string(), "--rate", "0"],
        );
        assert!(warm_up.wait_exit(MINUTE).success(), "order-service (warm-up) failed");
        notification
            .wait_until("the warm-up's emails", MINUTE, |lines| emailed(lines).len() >= WARM_UP as usize);
        Run { notification, payment, broker, disk }
    }

    /// Starts order-service making `count` orders at 200/s, from
    /// [`AFTER_FILL_FIRST_ID`] on: called once the disk is full, so that every
    /// one of them is emailed (or owed) while it is.
    fn make_orders(&self, count: u32) -> ServiceProcess {
        let args = ["--count", &count.to_string(), "--rate", "200", "--start-id", AFTER_FILL_FIRST_ID];
        ServiceProcess::start("order-service", &self.broker, &args)
    }
}

/// Fails unless some paid order is not emailed in `lines` yet: the full disk
/// met work in flight.
fn assert_emails_owed(paid: &BTreeSet<u64>, lines: &[String]) {
    assert!(
        !missing(paid, &emailed(lines)).is_empty(),
        "every paid order was emailed while the disk was full: the fault met an idle pipeline, nothing was tested"
    );
}

#[test]
fn a_log_freed_before_the_deadline_loses_no_email_and_repeats_none() {
    const ORDERS: u32 = 2000;
    let mut run = Run::start("freed");
    let filler = run.disk.fill();
    let mut orders = run.make_orders(ORDERS);
    // The orders paid while the disk is full: their emails are more lines than
    // the log's 64 KiB buffer holds.
    wait_for_payments(&run.payment, WARM_UP as usize + 800);
    assert_emails_owed(&paid_orders(&run.broker), &run.notification.lines());
    std::fs::remove_file(&filler).expect("cannot delete the filler");

    let total = (WARM_UP + ORDERS) as usize;
    assert!(orders.wait_exit(MINUTE).success(), "order-service failed");
    wait_for_payments(&run.payment, total);
    let paid = paid_orders(&run.broker);
    assert_eq!(paid.len(), total, "payment-service paid every order");
    let lines = run.notification.lines_when(MINUTE, |lines| missing(&paid, &emailed(lines)).is_empty());
    let emails = emailed(&lines);
    let lost = missing(&paid, &emails);
    assert!(
        lost.is_empty(),
        "{} of {} emails lost: {:?}",
        lost.len(),
        paid.len(),
        &lost[..lost.len().min(20)]
    );
    let repeated: Vec<_> = emails.iter().filter(|(_, &n)| n > 1).collect();
    assert!(repeated.is_empty(), "emails repeated: {repeated:?}");
    let strangers: Vec<_> = emails.keys().filter(|order| !paid.contains(order)).collect();
    assert!(strangers.is_empty(), "emails of orders never paid: {strangers:?}");
    // It met the full disk, and said so on both streams.
    assert!(
        lines.iter().any(|l| l.contains("logging: the log could not be written for")),
        "no line says the log could not be written"
    );
    assert!(
        run.notification.stdout().contains("cannot write the log to stderr (No space left on device"),
        "stdout does not say the log could not be written: {:?}",
        run.notification.stdout()
    );
}

#[test]
fn a_log_that_stays_full_ends_the_service_and_its_successor_sends_every_unlogged_email() {
    const ORDERS: u32 = 600;
    let mut run = Run::start("full");
    run.disk.fill();
    let mut orders = run.make_orders(ORDERS);
    assert!(orders.wait_exit(MINUTE).success(), "order-service failed");
    let total = (WARM_UP + ORDERS) as usize;
    wait_for_payments(&run.payment, total);
    let paid = paid_orders(&run.broker);
    assert_eq!(paid.len(), total, "payment-service paid every order");
    assert_emails_owed(&paid, &run.notification.lines());

    let status = run.notification.wait_exit(GIVE_UP_AFTER + MINUTE);
    assert_eq!(status.code(), Some(1), "notification-service with an unwritable log: {status}");
    let why = format!(
        "exiting with status 1: the log (stderr) could not be written for {} s",
        GIVE_UP_AFTER.as_secs()
    );
    let stdout = run.notification.stdout();
    assert!(stdout.contains(&why), "stdout does not say why it exits: {stdout:?}");

    // The same group and store: it takes over what the first did not commit.
    let owed = missing(&paid, &emailed(&run.notification.lines()));
    let second = ServiceProcess::start("notification-service", &run.broker, &[]);
    second.wait_until(
        &format!("the {} emails not in the first's log are sent", owed.len()),
        2 * MINUTE,
        |lines| {
            let emailed_second = emailed(lines);
            owed.iter().all(|order| emailed_second.contains_key(order))
        },
    );
}
