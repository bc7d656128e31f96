//! Log lines that say who spoke: `<time> <LEVEL> <service> <actor>: <message>`.
//!
//! Actors log with their name as the log target (`target: "PaymentActor"`), so
//! `RUST_LOG=PaymentActor=debug` narrows the output to one actor. Default level: info.
//!
//! To a terminal, each line is written at once, in colour. Anywhere else (a file,
//! a pipe) lines go through a buffer, written out every [`FLUSH_EVERY`], when
//! full, and by [`flush`]: at info a service writes a line or two per event, and
//! one write(2) per line cost it a fifth of its CPU. A consumer calls [`flush`]
//! before it stores offsets, so an event is never committed before its lines
//! (notification-service's emails) are out; the service flushes again as it exits.

use std::io::{BufWriter, IsTerminal, Stderr, Write};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// How long a buffered line waits at most, when nothing else flushes it.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// The buffer's size.
const BUFFER_BYTES: usize = 64 * 1024;

/// The buffer, when output is not a terminal.
static BUFFER: OnceLock<Mutex<BufWriter<Stderr>>> = OnceLock::new();

/// Sets up env_logger for `service`; call once, first thing in `main`.
pub fn init(service: &'static str) {
    let terminal = std::io::stderr().is_terminal();
    let mut builder = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    builder.format(move |buf, record| {
        let level = record.level();
        let style = if terminal { buf.default_level_style(level) } else { Default::default() };
        writeln!(
            buf,
            "{} {style}{level:<5}{style:#} {service} {}: {}",
            buf.timestamp_millis(),
            record.target(),
            record.args()
        )
    });
    if !terminal {
        let _ = BUFFER.set(Mutex::new(BufWriter::with_capacity(BUFFER_BYTES, std::io::stderr())));
        // Always: the lines hold no colour to strip, and env_logger passes them as they are.
        builder
            .write_style(env_logger::WriteStyle::Always)
            .target(env_logger::Target::Pipe(Box::new(Buffered)));
        std::thread::spawn(|| loop {
            std::thread::sleep(FLUSH_EVERY); // a period, not a wait for an event
            flush();
        });
    }
    builder.init();
}

/// Writes out the buffered lines (nothing to do when logging to a terminal).
pub fn flush() {
    if let Some(buffer) = BUFFER.get() {
        let _ = buffer.lock().unwrap_or_else(|p| p.into_inner()).flush();
    }
}

/// env_logger's target when buffering: it flushes after every line, which
/// this ignores (see [`flush`]).
struct Buffered;

impl Write for Buffered {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match BUFFER.get() {
            Some(buffer) => buffer.lock().unwrap_or_else(|p| p.into_inner()).write(bytes),
            None => std::io::stderr().write(bytes),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
