//! A service binary started by a test, running, its output captured line by
//! line: waiting for its lines, signalling it (Ctrl-C, pause, kill), waiting
//! for its exit. Killed on drop, its output kept.

use crate::test_folder::store_url;
use crate::workspace::{binary, keep_log};
use crate::{tail, Broker};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

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

/// What a service binary is started through, if anything.
#[derive(Clone, Copy)]
enum Wrapper<'a> {
    /// Nothing: a child of the test.
    Nothing,
    /// A network namespace (`ip netns exec`, which execs: the process is the service).
    NetworkNamespace(&'a str),
    /// A PID namespace of its own, as PID 1, as in a container (`unshare --pid
    /// --fork --kill-child`: the process is `unshare`, and the service dies with it).
    PidNamespace,
}

/// One of the service binaries, running, with its output captured. Killed on drop.
pub struct ServiceProcess {
    pub name: String,
    child: Child,
    output: Arc<Output>,
}

impl ServiceProcess {
    /// Starts `name` (a binary of this workspace) against `broker` with `args`,
    /// and what it needs to get into a secured broker.
    pub fn start(name: &str, broker: &Broker, args: &[&str]) -> ServiceProcess {
        ServiceProcess::start_on(broker, name, args, Wrapper::Nothing, FirstOrderId::Known)
    }

    /// Starts `name` against the broker `address`, which may not exist.
    pub fn start_at(name: &str, address: &str, args: &[&str]) -> ServiceProcess {
        ServiceProcess::start_logging(name, address, args, "info")
    }

    /// Starts `name` against `address` with `RUST_LOG=rust_log`. A consumer service
    /// gets the store of the broker's test ([`store_url`]) unless `args` name one;
    /// order-service makes ids from 1001 unless `args` give `--start-id`.
    pub fn start_logging(name: &str, address: &str, args: &[&str], rust_log: &str) -> ServiceProcess {
        ServiceProcess::spawn(name, address, args, rust_log, Wrapper::Nothing, FirstOrderId::Known)
    }

    /// Starts order-service against `broker` with `args` and the first id it
    /// chooses itself (from the clock), as it runs for real: the test of that scheme.
    pub fn start_with_clock_ids(broker: &Broker, args: &[&str]) -> ServiceProcess {
        ServiceProcess::start_on(broker, "order-service", args, Wrapper::Nothing, FirstOrderId::Clock)
    }

    /// Starts `name` against `broker` inside the network namespace `netns`
    /// (`ip netns exec`, which execs: the process is the service itself). See
    /// [`crate::netns::Host::start`].
    pub fn start_in_netns(name: &str, broker: &Broker, args: &[&str], netns: &str) -> ServiceProcess {
        ServiceProcess::start_on(broker, name, args, Wrapper::NetworkNamespace(netns), FirstOrderId::Known)
    }

    /// Starts `name` against `broker` as PID 1 of a PID namespace of its own, as
    /// a container runs it. [`ServiceProcess::kill`] kills it; signals other
    /// than SIGKILL reach `unshare`, not the service.
    pub fn start_as_pid_one(name: &str, broker: &Broker, args: &[&str]) -> ServiceProcess {
        ServiceProcess::start_on(broker, name, args, Wrapper::PidNamespace, FirstOrderId::Known)
    }

    /// Starts `name` against `broker` with `args` after what it needs to get
    /// into a secured broker.
    fn start_on(
        broker: &Broker,
        name: &str,
        args: &[&str],
        wrapper: Wrapper,
        first_order_id: FirstOrderId,
    ) -> ServiceProcess {
        let client_args = broker.client_args();
        let all: Vec<&str> = client_args.iter().map(String::as_str).chain(args.iter().copied()).collect();
        ServiceProcess::spawn(name, &broker.address, &all, "info", wrapper, first_order_id)
    }

    fn spawn(
        name: &str,
        address: &str,
        args: &[&str],
        rust_log: &str,
        wrapper: Wrapper,
        first_order_id: FirstOrderId,
    ) -> ServiceProcess {
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
        let mut command = match wrapper {
            Wrapper::NetworkNamespace(netns) => {
                let mut ip = Command::new("ip");
                ip.args(["netns", "exec", netns]).arg(&binary);
                ip
            }
            Wrapper::PidNamespace => {
                let mut unshare = Command::new("unshare");
                unshare.args(["--pid", "--fork", "--kill-child"]).arg(&binary);
                unshare
            }
            Wrapper::Nothing => Command::new(&binary),
        };
        let mut child = command
            .args(["--brokers", address, "--stats-interval", "0"])
            .args(&defaults)
            .args(args)
            .env("RUST_LOG", rust_log)
            .env("RUST_BACKTRACE", "0")
            // The tests read the buffered log of production runs, whatever the caller's shell sets.
            .env_remove("RUST_LOG_STYLE")
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
        ServiceProcess { name: name.to_string(), child, output }
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
    /// Returns once it is stopped: a thread of it may run on for a moment after
    /// the signal, until the kernel stops the last (the parent is told then).
    pub fn pause(&self) {
        use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
        signal(&self.child, nix::sys::signal::Signal::SIGSTOP);
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        match waitpid(pid, Some(WaitPidFlag::WUNTRACED)) {
            Ok(WaitStatus::Stopped(..)) => {}
            other => panic!("{} did not stop on SIGSTOP: {other:?}", self.name),
        }
    }

    /// Lets a paused process go on (SIGCONT).
    pub fn resume(&self) {
        signal(&self.child, nix::sys::signal::Signal::SIGCONT);
    }

    /// Sends SIGKILL and reaps the process; returns once the service itself is
    /// gone (its output closed), also when it runs under a wrapper that passes
    /// the kill on (`unshare --kill-child`) a moment later.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.wait_until_closed(Duration::from_secs(10));
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

impl Drop for ServiceProcess {
    /// Kills the process and keeps its output in `target/e2e-logs/<test>.<service>.<pid>.log`.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        keep_log(&format!("{}.{}", self.name, self.child.id()), &self.lines().join("\n"));
    }
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

/// Sends SIGINT (Ctrl-C) to `child`, once it catches it (see `await_interrupt_handler`).
pub fn interrupt(child: &Child) {
    await_interrupt_handler(child.id());
    signal(child, nix::sys::signal::Signal::SIGINT);
}

/// Waits, at most 10 s, until process `pid` catches SIGINT, as a service does
/// once its graceful shutdown is set up, or has ended: a SIGINT in its first
/// milliseconds would kill it outright, and a test would take that for an
/// ungraceful stop. Polls /proc: the process announces nothing.
fn await_interrupt_handler(pid: u32) {
    const SIGINT_BIT: u64 = 1 << 1; // signal 2
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return };
        let field = |name: &str| status.lines().find_map(|line| line.strip_prefix(name)).map(str::trim);
        if field("State:").is_some_and(|state| state.starts_with(['Z', 'X'])) {
            return;
        }
        let caught = field("SigCgt:").and_then(|mask| u64::from_str_radix(mask, 16).ok());
        if caught.is_some_and(|mask| mask & SIGINT_BIT != 0) {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

pub(crate) fn signal(child: &Child, signal: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, signal).expect("cannot signal the service");
}

/// Waits until `done` holds for the lines of all `services` together; panics
/// after `timeout`, saying `what`. Polls: no one process's output says when.
pub fn wait_until_all(
    services: &[&ServiceProcess],
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
