//! `RUST_LOG_STYLE=always`, which `./scripts/demo` sets, makes a service whose
//! log is a pipe write it as to a terminal: each line at once, in colour.
//! Without it, a piped service's lines are buffered and plain, as in production.

use harness::{binary, interrupt, Broker};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

const HALF_MINUTE: Duration = Duration::from_secs(30);

/// How env_logger writes the level of an info line in colour: green, then reset.
const COLOURED_INFO: &str = "\u{1b}[32mINFO \u{1b}[0m";

#[test]
fn with_rust_log_style_always_a_piped_service_logs_in_colour() {
    let broker = Broker::start();
    let coloured = first_order_line(&broker, Some("always"));
    assert!(coloured.contains(COLOURED_INFO), "not in colour: {coloured:?}");
    let plain = first_order_line(&broker, None);
    assert!(plain.contains(" INFO  order-service OrderGenerator: "), "not a log line: {plain:?}");
    assert!(!plain.contains('\u{1b}'), "a piped service without RUST_LOG_STYLE wrote colour: {plain:?}");
}

/// Runs order-service against `broker`, its log a pipe, with `RUST_LOG_STYLE`
/// set to `style` (or unset); its first `📦 Order Created` line, read while it
/// runs. Then stops it with Ctrl-C and asserts that it exits 0.
fn first_order_line(broker: &Broker, style: Option<&str>) -> String {
    let mut command = Command::new(binary("order-service"));
    command
        .args(["--brokers", &broker.address, "--stats-interval", "0", "--start-id", "1001"])
        .args(broker.client_args())
        .env("RUST_LOG", "info")
        .env_remove("RUST_LOG_STYLE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(style) = style {
        command.env("RUST_LOG_STYLE", style);
    }
    let mut child = command.spawn().expect("cannot start order-service");
    let stderr = child.stderr.take().expect("piped");
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + HALF_MINUTE;
    let mut seen = Vec::new();
    let created = loop {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line.contains("📦 Order Created") => break line,
            Ok(line) => seen.push(line),
            Err(why) => {
                let _ = child.kill();
                panic!("no 📦 Order Created line ({why:?}); order-service's lines:\n{}", seen.join("\n"));
            }
        }
    };
    interrupt(&child);
    // Its output closes as it exits.
    loop {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => seen.push(line),
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("order-service did not exit after Ctrl-C; its lines:\n{}", seen.join("\n"));
            }
        }
    }
    let status = child.wait().expect("cannot reap order-service");
    assert!(status.success(), "order-service exited with {status} after Ctrl-C:\n{}", seen.join("\n"));
    created
}
