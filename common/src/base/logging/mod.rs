//! Log lines that say who spoke: `<time> <LEVEL> <service> <actor>: <message>`.
//!
//! Actors log with their name as the log target (`target: "PaymentActor"`), so
//! `RUST_LOG=PaymentActor=debug` narrows the output to one actor. Default level: info.
//!
//! To a terminal, env_logger writes each line at once, in colour (a terminal does
//! not fill up: what it cannot take, it waits for). So it does anywhere with
//! `RUST_LOG_STYLE=always` (env_logger's own setting for colour), which
//! `./scripts/demo` sets: its services write to pipes, and lines held back
//! would show each order's story out of order. A line written that way is not
//! held when the log cannot be written, as on a terminal: for watching, not for
//! production.
//!
//! Anywhere else (a file, a pipe) each line is formatted on its thread and
//! copied into a shared buffer (`buffer.rs`), written out every [`FLUSH_EVERY`],
//! when it holds enough, and by [`flush`]: at info a service writes a line or
//! two per event, and one write(2) per line would cost it much of its CPU. A
//! consumer calls [`flush`] before it stores offsets, and a store before it
//! records a batch, and goes on only once it says every line is out: an event
//! is never committed or recorded before its lines (notification-service's
//! emails) are out of the process.
//!
//! A log that cannot be written (a full disk, a closed pipe) loses nothing: what
//! was not written stays in the buffer and is tried again every [`FLUSH_EVERY`],
//! while [`flush`] says it is not out. The buffer holds a bounded amount; a
//! thread that logs past it waits for room, so a service whose actors log
//! stands still (its events wait, uncommitted). If no byte gets out for
//! [`GIVE_UP_AFTER`], the service exits with status 1 at once, committing nothing
//! more (what it stored before was stored after its lines were out); it says why
//! on stdout, when stdout is not the log itself.
//!
//! A message of several lines is written as several log lines, each with the
//! prefix (`line.rs`): one call (one clock read, one lock) for lines that belong together.

mod buffer;
mod line;

pub use buffer::{FLUSH_EVERY, GIVE_UP_AFTER};

use buffer::Log;
use line::Line;
use std::io::{self, IsTerminal, Write};
use std::sync::OnceLock;

/// The buffered log, when lines are not written as they are logged.
static LOG: OnceLock<Log> = OnceLock::new();

/// Sets up logging for `service`; call once, first thing in `main`. env_logger
/// reads `RUST_LOG` and `RUST_LOG_STYLE`, and writes the lines too to a terminal
/// or with `RUST_LOG_STYLE=always`.
pub fn init(service: &'static str) {
    let mut builder = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if io::stderr().is_terminal() || colour_always() {
        builder.format(move |buf, record| {
            let level = record.level();
            let style = buf.default_level_style(level);
            let time = buf.timestamp_millis();
            for part in record.args().to_string().split('\n') {
                writeln!(buf, "{time} {style}{level:<5}{style:#} {service} {}: {part}", record.target())?;
            }
            Ok(())
        });
        builder.init();
        return;
    }
    let log = LOG.get_or_init(|| Log::new(service));
    let filter = builder.build();
    log::set_max_level(filter.filter());
    if log::set_boxed_logger(Box::new(ToBuffer { filter, service })).is_ok() {
        std::thread::Builder::new()
            .name("log writer".into())
            .spawn(|| log.keep_writing())
            .expect("cannot start the log's writer thread");
    }
}

/// Writes out the buffered lines; whether every line logged so far is out of
/// the process (always, when each was written as it was logged).
/// While the log cannot be written this says `false`, and the lines are kept
/// and tried again: what they tell of must wait.
pub fn flush() -> bool {
    match LOG.get() {
        Some(log) => log.write_out(&mut log.pending()),
        None => true,
    }
}

/// Whether `RUST_LOG_STYLE` asks for colour anywhere, as env_logger reads it.
fn colour_always() -> bool {
    std::env::var(env_logger::DEFAULT_WRITE_STYLE_ENV).is_ok_and(|style| style == "always")
}

/// The logger of buffered lines: env_logger's filter, and each line
/// formatted on its thread (no colour to strip), then copied into the buffer.
struct ToBuffer {
    filter: env_logger::Logger,
    service: &'static str,
}

impl log::Log for ToBuffer {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.filter.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        let Some(log) = LOG.get().filter(|_| self.filter.matches(record)) else { return };
        // Formatted on this thread, then copied in one piece: the buffer's lock is
        // held for a copy only, and its writer sees one write instead of a dozen.
        Line::with_this_threads(|line| log.hold(line.record(self.service, record)));
    }

    fn flush(&self) {
        flush(); // `log::logger().flush()` has no answer to give
    }
}
