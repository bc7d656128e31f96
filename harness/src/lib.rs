//! Runs the real thing for the end-to-end tests (in `tests/`) and the benchmark:
//! a Nisshi broker on a free port, the real service binaries, and the log lines
//! they print.
//!
//! Nothing here sleeps in place of an event: callers wait for log lines (with a
//! condition variable) and for process exits, each with a deadline that fails
//! loudly. The binaries come from `target/debug` when this crate is built for
//! tests, from `target/release` when built in release mode (the benchmark).

pub mod history;
pub mod logline;
pub mod netns;
pub mod postgres;
pub mod proxy;
pub mod scrape;
mod security;
pub mod store;

pub use security::Security;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The workspace root (this crate sits one level below it).
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("harness is in the workspace").to_path_buf()
}

/// The binary `name` of this workspace, built with the same profile as this crate.
pub fn binary(name: &str) -> PathBuf {
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let binary = workspace().join("target").join(profile).join(name);
    let flag = if cfg!(debug_assertions) { "" } else { " --release" };
    assert!(
        binary.exists(),
        "{} is not built: run `cargo build{flag} --workspace --bins` first (./scripts/test does it)",
        binary.display()
    );
    binary
}

/// Runs `name` (a binary of this workspace, e.g. `order-trace`) to its end.
pub fn run(name: &str, args: &[&str]) -> std::process::Output {
    let binary = binary(name);
    Command::new(&binary)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()))
}

/// A Nisshi broker on a free port of 127.0.0.1, with durable sqlite storage in a
/// fresh temporary folder (or in memory). Killed on drop.
pub struct Broker {
    /// Where clients reach it, as it advertises itself: its own address, or its
    /// proxy's ([`Broker::start_behind_proxy`]).
    pub address: String,
    /// Where it listens.
    listen: SocketAddr,
    dir: PathBuf,
    /// Nisshi's `--storage-engine`.
    storage: &'static str,
    child: Option<Child>,
    security: Security,
}

impl Broker {
    pub fn start() -> Broker {
        let mut broker = Broker::stopped();
        broker.restart();
        broker
    }

    /// A broker that keeps its records in memory only, which makes it faster
    /// (the benchmark's: the broker must not be what limits the clients).
    pub fn start_in_memory() -> Broker {
        let mut broker = Broker::stopped();
        broker.storage = "memory://nisshi/";
        broker.restart();
        broker
    }

    /// A broker with a free port and storage, not running yet: `restart` starts it.
    pub fn stopped() -> Broker {
        Broker::stopped_at(Ipv4Addr::LOCALHOST, None)
    }

    /// A broker listening on a free port of `ip` (a [`netns::Network`]'s bridge,
    /// which hosts in namespaces reach), advertised there.
    pub fn start_on(ip: Ipv4Addr) -> Broker {
        let mut broker = Broker::stopped_at(ip, None);
        broker.restart();
        broker
    }

    /// A broker on 127.0.0.1 advertised behind a [`proxy::Proxy`]: it listens on
    /// a port of its own, but tells clients to use the proxy's, so that every
    /// client (given `broker.address`, the proxy's) talks to it through the proxy
    /// only. Keep the proxy as long as the broker.
    pub fn start_behind_proxy() -> (Broker, proxy::Proxy) {
        Broker::start_behind_proxy_on(Ipv4Addr::LOCALHOST)
    }

    /// [`Broker::start_behind_proxy`] with the broker and the proxy on `ip`.
    pub fn start_behind_proxy_on(ip: Ipv4Addr) -> (Broker, proxy::Proxy) {
        let listen = SocketAddr::from((ip, free_port_on(ip)));
        let proxy = proxy::Proxy::start(IpAddr::V4(ip), listen);
        let mut broker = Broker::stopped_at(ip, Some((listen.port(), proxy.address)));
        broker.restart();
        (broker, proxy)
    }

    /// A broker not running yet, on a free port of `ip` or on `behind`'s port,
    /// advertised at `behind`'s address (a proxy) or at its own. Its folder is
    /// named after the port clients use, as [`store_path`] expects.
    fn stopped_at(ip: Ipv4Addr, behind: Option<(u16, SocketAddr)>) -> Broker {
        let listen = SocketAddr::from((ip, behind.map_or_else(|| free_port_on(ip), |(port, _)| port)));
        let address = behind.map_or(listen, |(_, proxy)| proxy);
        let dir = test_dir(address.port());
        std::fs::create_dir_all(&dir).expect("cannot create a temporary folder for the broker");
        Broker {
            address: address.to_string(),
            listen,
            dir,
            storage: "sqlite://nisshi.db",
            child: None,
            security: Security::default(),
        }
    }

    /// A broker that lets in only the clients that `security` says: those with
    /// [`Broker::client_args`] (which [`Service::start`] passes).
    pub fn start_secured(security: Security) -> Broker {
        let mut broker = Broker::stopped();
        if let Some((name, password)) = &security.user {
            // Nisshi keeps its users in its storage: create this one while the
            // broker is open to all, then start it again secured.
            broker.restart();
            let nisshi = nisshi();
            let url = format!("tcp://{}", broker.address);
            let created = Command::new(&nisshi)
                .args(["user", "create", "--broker", &url, "--mechanism", "scram512", name, password])
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", nisshi.display()));
            assert!(created.status.success(), "nisshi user create failed: {created:?}");
            broker.terminate(Duration::from_secs(30));
        }
        if security.tls {
            security::write_self_signed_certificate(&broker.dir);
        }
        broker.security = security;
        // Written once: a service reads it as it starts, perhaps while the next one starts.
        let properties = broker.client_properties().join("\n") + "\n";
        std::fs::write(broker.client_properties_file(), properties)
            .expect("cannot write the client properties");
        broker.restart();
        broker
    }

    /// The flags a service needs to get into this broker: `--kafka-config FILE`
    /// with the properties of [`Broker::client_properties`] (none for a broker open to all).
    pub fn client_args(&self) -> Vec<String> {
        if self.client_properties().is_empty() {
            return Vec::new();
        }
        vec!["--kafka-config".into(), self.client_properties_file().display().to_string()]
    }

    fn client_properties_file(&self) -> PathBuf {
        self.dir.join("client.properties")
    }

    /// The librdkafka properties (KEY=VALUE) a client needs to get into this broker.
    pub fn client_properties(&self) -> Vec<String> {
        self.security.client_properties(&self.dir)
    }

    /// Starts the broker (again) on its port and storage.
    pub fn restart(&mut self) {
        let nisshi = nisshi();
        // Appended to, so a restarted broker's log follows the previous run's.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("cannot create the broker log");
        let (url, advertised) = (format!("tcp://{}", self.listen), format!("tcp://{}", self.address));
        let mut child = Command::new(&nisshi)
            .current_dir(&self.dir) // the sqlite path is relative to it
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &advertised])
            .args(["--storage-engine", self.storage])
            .args(self.security.broker_flags(&self.dir))
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", nisshi.display()));
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(self.listen).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the broker exited at start ({status}):\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "the broker did not listen within 30 s:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20)); // polling a port: no event to wait on
        }
        self.child = Some(child);
    }

    /// Kills the broker with SIGKILL (a crash, or a pulled plug); its storage stays.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the broker with SIGTERM (what Ctrl-C, systemd or Docker send) and
    /// waits for it to exit; its storage stays. Panics if it outlives `timeout`.
    pub fn terminate(&mut self, timeout: Duration) {
        let Some(mut child) = self.child.take() else { return };
        signal(&child, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + timeout;
        while child.try_wait().expect("cannot wait for the broker").is_none() {
            if Instant::now() >= deadline {
                let _ = child.kill();
                panic!("the broker did not exit within {timeout:?} of SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20)); // no exit event to wait on with a deadline
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// A client configuration that gets into this broker.
    pub fn client_config(&self) -> rdkafka::ClientConfig {
        let mut config = rdkafka::ClientConfig::new();
        config.set("bootstrap.servers", &self.address);
        for property in self.client_properties() {
            let (key, value) = property.split_once('=').expect("KEY=VALUE");
            config.set(key, value);
        }
        config
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("nisshi.log")
    }
}

impl Drop for Broker {
    /// Kills the broker, keeps its log in `target/e2e-logs/<test>.broker.log`
    /// and removes its storage.
    fn drop(&mut self) {
        self.kill();
        keep_log("broker", &self.log());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The temporary folder of the test whose broker listens on `port`: the broker's
/// storage and the services' stores, removed with the broker.
fn test_dir(port: u16) -> PathBuf {
    std::env::temp_dir().join(format!("pipeline-harness-{}-{port}", std::process::id()))
}

/// The store (`--store`) that the harness gives `service` (payment-service or
/// notification-service) run against the broker at `address`: a SQLite file in
/// that test's folder, shared by the instances of the service, as on one host.
pub fn store_url(address: &str, service: &str) -> String {
    format!("sqlite://{}", store_path(address, service).display())
}

/// The SQLite file of [`store_url`].
pub fn store_path(address: &str, service: &str) -> PathBuf {
    let port = address.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let dir = test_dir(port);
    let _ = std::fs::create_dir_all(&dir); // the broker may not exist (yet)
    dir.join(format!("{service}.db"))
}

/// The Nisshi binary: `NISSHI_BIN`, or the one `scripts/install-nisshi` installs.
fn nisshi() -> PathBuf {
    let nisshi = std::env::var_os("NISSHI_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".tools/bin/nisshi"));
    assert!(
        nisshi.exists(),
        "the Nisshi broker is not installed at {}: run ./scripts/install-nisshi (./scripts/test does it)",
        nisshi.display()
    );
    nisshi
}

pub(crate) fn free_port_on(ip: Ipv4Addr) -> u16 {
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| panic!("no free port on {ip}: {e}"))
        .port()
}

/// The log lines of a running service, shared with the thread that reads them.
#[derive(Default)]
struct Output {
    lines: Mutex<(Vec<String>, bool)>, // (lines so far, process closed its output)
    changed: Condvar,
}

/// Where the ids of an order-service the harness starts begin.
#[derive(Clone, Copy, PartialEq)]
enum FirstOrderId {
    /// At 1001 unless its args give `--start-id`.
    Known,
    /// Where order-service chooses (the clock).
    Clock,
}

/// One of the service binaries, running, with its output captured. Killed on drop.
pub struct Service {
    pub name: String,
    child: Child,
    output: Arc<Output>,
}

impl Service {
    /// Starts `name` (a binary of this workspace) against `broker` with `args`,
    /// and what it needs to get into a secured broker.
    pub fn start(name: &str, broker: &Broker, args: &[&str]) -> Service {
        let client_args = broker.client_args();
        let all: Vec<&str> = client_args.iter().map(String::as_str).chain(args.iter().copied()).collect();
        Service::start_at(name, &broker.address, &all)
    }

    /// Starts `name` against the broker `address`, which may not exist.
    pub fn start_at(name: &str, address: &str, args: &[&str]) -> Service {
        Service::start_logging(name, address, args, "info")
    }

    /// Starts `name` against `address` with `RUST_LOG=rust_log`. A consumer service
    /// gets the store of the broker's test ([`store_url`]) unless `args` name one;
    /// order-service makes ids from 1001 unless `args` give `--start-id`.
    pub fn start_logging(name: &str, address: &str, args: &[&str], rust_log: &str) -> Service {
        Service::spawn(name, address, args, rust_log, None, FirstOrderId::Known)
    }

    /// Starts order-service against `broker` with `args` and the first id it
    /// chooses itself (from the clock), as it runs for real: the test of that scheme.
    pub fn start_with_clock_ids(broker: &Broker, args: &[&str]) -> Service {
        let client_args = broker.client_args();
        let all: Vec<&str> = client_args.iter().map(String::as_str).chain(args.iter().copied()).collect();
        Service::spawn("order-service", &broker.address, &all, "info", None, FirstOrderId::Clock)
    }

    /// Starts `name` against `broker` inside the network namespace `netns`
    /// (`ip netns exec`, which execs: the process is the service itself). See
    /// [`netns::Host::start`].
    pub fn start_in_netns(name: &str, broker: &Broker, args: &[&str], netns: &str) -> Service {
        let client_args = broker.client_args();
        let all: Vec<&str> = client_args.iter().map(String::as_str).chain(args.iter().copied()).collect();
        Service::spawn(name, &broker.address, &all, "info", Some(netns), FirstOrderId::Known)
    }

    fn spawn(
        name: &str,
        address: &str,
        args: &[&str],
        rust_log: &str,
        netns: Option<&str>,
        first_order_id: FirstOrderId,
    ) -> Service {
        let binary = binary(name);
        let defaults = match name {
            "payment-service" | "notification-service" if !args.contains(&"--store") => {
                vec!["--store".to_string(), store_url(address, name)]
            }
            // The tests know their order ids in advance: 1001, 1002, ... (order-service
            // itself starts from the clock).
            "order-service" if first_order_id == FirstOrderId::Known && !args.contains(&"--start-id") => {
                vec!["--start-id".to_string(), "1001".to_string()]
            }
            _ => Vec::new(),
        };
        let mut command = match netns {
            Some(netns) => {
                let mut ip = Command::new("ip");
                ip.args(["netns", "exec", netns]).arg(&binary);
                ip
            }
            None => Command::new(&binary),
        };
        let mut child = command
            .args(["--brokers", address, "--stats-interval", "0"])
            .args(&defaults)
            .args(args)
            .env("RUST_LOG", rust_log)
            .env("RUST_BACKTRACE", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let output = Arc::new(Output::default());
        let readers = [
            read_lines(Box::new(child.stdout.take().expect("piped")), output.clone()),
            read_lines(Box::new(child.stderr.take().expect("piped")), output.clone()),
        ];
        let closer = output.clone();
        std::thread::spawn(move || {
            for reader in readers {
                let _ = reader.join();
            }
            closer.lines.lock().unwrap_or_else(PoisonError::into_inner).1 = true;
            closer.changed.notify_all();
        });
        Service { name: name.to_string(), child, output }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its peak resident memory so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .unwrap_or_else(|e| panic!("{} has no /proc status: {e}", self.name));
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM in /proc/<pid>/status");
        line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).expect("VmHWM in KiB")
    }

    /// Every line printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.output.lines.lock().unwrap_or_else(PoisonError::into_inner).0.clone()
    }

    /// Waits until `done` holds for the lines printed so far; panics after `timeout`
    /// or if the process ends first, showing the last lines.
    pub fn wait_until(&self, what: &str, timeout: Duration, done: impl Fn(&[String]) -> bool) {
        if let Err(why) = self.wait_for(timeout, done) {
            panic!("{} {why} before {what}; its last lines:\n{}", self.name, tail(&self.lines()));
        }
    }

    /// Waits until `done` holds for the lines printed so far; after `timeout`, or if
    /// the process ends first, says which.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&[String]) -> bool) -> Result<(), &'static str> {
        let deadline = Instant::now() + timeout;
        let mut state = self.output.lines.lock().unwrap_or_else(PoisonError::into_inner);
        while !done(&state.0) {
            let now = Instant::now();
            if state.1 {
                return Err("exited");
            }
            if now >= deadline {
                return Err("timed out");
            }
            state = self
                .output
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        Ok(())
    }

    /// Sends SIGINT (Ctrl-C).
    pub fn interrupt(&self) {
        interrupt(&self.child);
    }

    /// Freezes the process with SIGSTOP: its sockets stay open, but it sends
    /// nothing (no heartbeat), as a long GC pause or a suspended VM would.
    pub fn pause(&self) {
        signal(&self.child, nix::sys::signal::Signal::SIGSTOP);
    }

    /// Lets a paused process go on (SIGCONT).
    pub fn resume(&self) {
        signal(&self.child, nix::sys::signal::Signal::SIGCONT);
    }

    /// Sends SIGKILL and reaps the process.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit (its output closes), at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        self.wait_until_closed(timeout);
        self.child.wait().expect("cannot reap the service")
    }

    fn wait_until_closed(&self, timeout: Duration) {
        let state = self.output.lines.lock().unwrap_or_else(PoisonError::into_inner);
        let (state, result) = self
            .output
            .changed
            .wait_timeout_while(state, timeout, |(_, closed)| !*closed)
            .unwrap_or_else(PoisonError::into_inner);
        assert!(
            !result.timed_out(),
            "{} did not exit within {timeout:?}; its last lines:\n{}",
            self.name,
            tail(&state.0)
        );
    }

    /// Interrupts the service and asserts it exits 0 within `timeout`.
    pub fn stop_gracefully(&mut self, timeout: Duration) {
        self.interrupt();
        let status = self.wait_exit(timeout);
        assert!(
            status.success(),
            "{} exited with {status} after Ctrl-C:\n{}",
            self.name,
            tail(&self.lines())
        );
    }
}

impl Drop for Service {
    /// Kills the process and keeps its output in `target/e2e-logs/<test>.<service>.<pid>.log`.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        keep_log(&format!("{}.{}", self.name, self.child.id()), &self.lines().join("\n"));
    }
}

/// Writes `text` to `target/e2e-logs/<test>.<what>.log`, for reading after a run.
fn keep_log(what: &str, text: &str) {
    let dir = workspace().join("target/e2e-logs");
    let test = std::thread::current().name().unwrap_or("test").replace("::", ".");
    let file = dir.join(format!("{test}.{what}.log"));
    let _ = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(file, text));
}

fn read_lines(reader: Box<dyn Read + Send>, output: Arc<Output>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            output.lines.lock().unwrap_or_else(PoisonError::into_inner).0.push(line);
            output.changed.notify_all();
        }
    })
}

/// Sends SIGINT (Ctrl-C) to `child`.
pub fn interrupt(child: &Child) {
    signal(child, nix::sys::signal::Signal::SIGINT);
}

fn signal(child: &Child, signal: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, signal).expect("cannot signal the service");
}

/// The last 40 of `lines`, one per line: what a failure shows of a service.
pub fn tail(lines: &[String]) -> String {
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// How many times each order id appears in lines containing `marker` followed by
/// the id (e.g. "Payment Successful for Order ").
pub fn count_orders(lines: &[String], marker: &str) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    for line in lines {
        if let Some(rest) = line.split(marker).nth(1) {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(id) = digits.parse() {
                *counts.entry(id).or_default() += 1;
            }
        }
    }
    counts
}

/// The marker of a successful notification.
pub const NOTIFIED: &str = "✅ Payment Successful for Order ";

/// The marker of a notification of a declined payment.
pub const DECLINED_NOTIFIED: &str = "❌ Payment Failed for Order ";

/// The marker of a payment event the broker acknowledged (payment-service).
pub const PAID: &str = "✅ Payment Event Sent: {\"order_id\":";

/// Lines logged at ERROR level.
pub fn errors(lines: &[String]) -> Vec<&String> {
    lines.iter().filter(|l| l.contains(" ERROR ")).collect()
}

/// Asserts every order in `ids` appears exactly once in `counts`, and nothing else.
pub fn assert_exactly_once(counts: &BTreeMap<u64, usize>, ids: std::ops::RangeInclusive<u64>, what: &str) {
    assert_every_order(counts, ids, what, false);
}

/// Asserts every order in `ids` appears in `counts`, maybe more than once, and
/// nothing else (emails across a SIGKILL are at-least-once).
pub fn assert_at_least_once(counts: &BTreeMap<u64, usize>, ids: std::ops::RangeInclusive<u64>, what: &str) {
    assert_every_order(counts, ids, what, true);
}

fn assert_every_order(
    counts: &BTreeMap<u64, usize>,
    ids: std::ops::RangeInclusive<u64>,
    what: &str,
    repeats_allowed: bool,
) {
    let missing: Vec<u64> = ids.clone().filter(|id| !counts.contains_key(id)).collect();
    let repeated: Vec<(&u64, &usize)> = counts.iter().filter(|(_, &n)| n > 1 && !repeats_allowed).collect();
    let strangers: Vec<&u64> = counts.keys().filter(|id| !ids.contains(id)).collect();
    assert!(
        missing.is_empty() && repeated.is_empty() && strangers.is_empty(),
        "{what}: {} missing {:?}, {} repeated {:?}, {} unexpected {:?}",
        missing.len(),
        &missing[..missing.len().min(20)],
        repeated.len(),
        &repeated[..repeated.len().min(20)],
        strangers.len(),
        &strangers[..strangers.len().min(20)],
    );
}

/// One record read back from a topic.
#[derive(Debug)]
pub struct Record {
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: BTreeMap<String, String>,
}

/// Every record `topic` holds now.
pub fn records_on_topic(broker: &Broker, topic: &str) -> Vec<Record> {
    use rdkafka::message::{Headers, Message};
    let mut records = Vec::new();
    common::kafka::reader::read_to_end(&broker.client_config(), topic, |record| {
        let headers = record.headers().map_or_else(BTreeMap::new, |headers| {
            headers
                .iter()
                .map(|h| {
                    (h.key.to_string(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned())
                })
                .collect()
        });
        records.push(Record {
            key: record.key().map(<[u8]>::to_vec),
            payload: record.payload().unwrap_or_default().to_vec(),
            headers,
        });
    })
    .unwrap_or_else(|e| panic!("{topic} is not readable: {e}"));
    records
}

/// How many payment events `payment_topic` holds for each order id.
pub fn payments_on_topic(broker: &Broker) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    for record in records_on_topic(broker, "payment_topic") {
        let payment: serde_json::Value =
            serde_json::from_slice(&record.payload).expect("payment_topic holds JSON events");
        *counts.entry(payment["order_id"].as_u64().expect("an order id")).or_default() += 1;
    }
    counts
}

/// Every payment event on `payment_topic`: its order id and its bytes.
pub fn payment_events(broker: &Broker) -> Vec<(u64, Vec<u8>)> {
    records_on_topic(broker, "payment_topic")
        .into_iter()
        .map(|record| {
            let payment: serde_json::Value =
                serde_json::from_slice(&record.payload).expect("payment_topic holds JSON events");
            (payment["order_id"].as_u64().expect("an order id"), record.payload)
        })
        .collect()
}

/// What the run against `broker` did to the orders `created`, given every line of
/// every notification-service process: from the topics and both stores.
pub fn outcome(
    broker: &Broker,
    created: std::ops::RangeInclusive<u64>,
    notification_lines: &[String],
) -> store::Outcome {
    store::Outcome::of(
        created,
        &payment_events(broker),
        &store::charges(&store_path(&broker.address, "payment-service")),
        &store::emails(&store_path(&broker.address, "notification-service")),
        &emailed(notification_lines),
    )
}

/// How many emails each order got in these notification-service lines, about
/// a successful payment or a declined one.
pub fn emailed(lines: &[String]) -> BTreeMap<u64, usize> {
    let mut emailed = count_orders(lines, NOTIFIED);
    for (order_id, n) in count_orders(lines, DECLINED_NOTIFIED) {
        *emailed.entry(order_id).or_default() += n;
    }
    emailed
}

/// The `📊 summary:` line of a service that has exited.
pub fn summary(service: &Service) -> String {
    let lines = service.lines();
    let line = lines.iter().rev().find(|l| l.contains("📊 summary:"));
    line.unwrap_or_else(|| panic!("{} logged no summary:\n{}", service.name, tail(&lines))).clone()
}

/// A counter's value in a summary line, e.g. `counter(&line, "restarts")`.
pub fn counter(summary: &str, name: &str) -> u64 {
    let value = summary.split(&format!(" {name}=")).nth(1).and_then(|rest| rest.split(' ').next());
    value.and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no {name} in {summary}"))
}

/// Waits until `done` holds for the lines of all `services` together; panics
/// after `timeout`, saying `what`. Polls: no one process's output says when.
pub fn wait_until_all(
    services: &[&Service],
    what: &str,
    timeout: Duration,
    done: impl Fn(&[String]) -> bool,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let lines: Vec<String> = services.iter().flat_map(|s| s.lines()).collect();
        if done(&lines) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not within {timeout:?}: {what}; the last lines:\n{}",
            tail(&lines)
        );
        std::thread::sleep(Duration::from_millis(100)); // polling a condition over several processes
    }
}
