//! Log lines that say who spoke: `<time> <LEVEL> <service> <actor>: <message>`.
//!
//! Actors log with their name as the log target (`target: "PaymentActor"`), so
//! `RUST_LOG=PaymentActor=debug` narrows the output to one actor. Default level: info.
//!
//! To a terminal, env_logger writes each line at once, in colour. Anywhere else
//! (a file, a pipe) each line is formatted on its thread and copied into a shared
//! buffer, written out every [`FLUSH_EVERY`], when full, and by [`flush`]: at info
//! a service writes a line or two per event, and one write(2) per line cost it a
//! fifth of its CPU. A consumer calls [`flush`] before it stores offsets, so an
//! event is never committed before its lines (notification-service's emails) are
//! out; the service flushes again as it exits.
//!
//! A message of several lines is written as several log lines, each with the
//! prefix: one call (one clock read, one lock) for lines that belong together.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::{BufWriter, IsTerminal, Stderr, Write};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a buffered line waits at most, when nothing else flushes it.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// The buffer's size.
const BUFFER_BYTES: usize = 64 * 1024;

/// The buffer, when output is not a terminal.
static BUFFER: OnceLock<Mutex<BufWriter<Stderr>>> = OnceLock::new();

/// Sets up logging for `service`; call once, first thing in `main`. env_logger
/// reads `RUST_LOG` and, to a terminal, writes the lines too.
pub fn init(service: &'static str) {
    let mut builder = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if std::io::stderr().is_terminal() {
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
    let _ = BUFFER.set(Mutex::new(BufWriter::with_capacity(BUFFER_BYTES, std::io::stderr())));
    let filter = builder.build();
    log::set_max_level(filter.filter());
    if log::set_boxed_logger(Box::new(ToBuffer { filter, service })).is_ok() {
        std::thread::spawn(|| loop {
            std::thread::sleep(FLUSH_EVERY); // a period, not a wait for an event
            flush();
        });
    }
}

/// Writes out the buffered lines (nothing to do when logging to a terminal).
pub fn flush() {
    if let Some(buffer) = BUFFER.get() {
        let _ = buffer.lock().unwrap_or_else(|p| p.into_inner()).flush();
    }
}

/// The logger when output is not a terminal: env_logger's filter, and each line
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
        let Some(buffer) = BUFFER.get().filter(|_| self.filter.matches(record)) else { return };
        // Formatted on this thread, then copied in one piece: the buffer's lock is
        // held for a copy only, and its writer sees one write instead of a dozen.
        let write = |line: &mut Line| {
            line.stamp(SystemTime::now());
            let level = match record.level() {
                log::Level::Error => "ERROR",
                log::Level::Warn => "WARN ",
                log::Level::Info => "INFO ",
                log::Level::Debug => "DEBUG",
                log::Level::Trace => "TRACE",
            };
            // The prefix pushed piece by piece: through `write!` it cost as much as the message.
            for piece in [" ", level, " ", self.service, " ", record.target(), ": "] {
                line.text.push_str(piece);
            }
            let prefix_len = line.text.len();
            match record.args().as_str() {
                Some(message) => line.text.push_str(message),
                // A Display that fails midway leaves part of the message: the line still ends.
                None => drop(write!(line.text, "{}", record.args())),
            }
            if line.text[prefix_len..].contains('\n') {
                line.prefix_each_line(prefix_len);
            }
            line.text.push('\n');
            let _ = buffer.lock().unwrap_or_else(|p| p.into_inner()).write_all(line.text.as_bytes());
        };
        LINE.with(|line| match line.try_borrow_mut() {
            Ok(mut line) => write(&mut line),
            // A line logged while this thread formats another (from a Display).
            Err(_) => write(&mut Line::default()),
        });
    }

    fn flush(&self) {
        flush();
    }
}

thread_local! {
    static LINE: RefCell<Line> = RefCell::new(Line::default());
}

/// A log line being formatted, kept per thread so its memory is reused, with
/// the date and time of the last second it was stamped with: from one line to
/// the next the timestamp mostly changes only in its milliseconds.
struct Line {
    text: String,
    second: i64,
    date_time: String,
}

impl Default for Line {
    fn default() -> Self {
        Line { text: String::new(), second: i64::MIN, date_time: String::new() }
    }
}

impl Line {
    /// Starts the line with `time` as env_logger writes it: `2026-11-25T19:34:12.112Z` (UTC, ms).
    fn stamp(&mut self, time: SystemTime) {
        let ms = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let second = ms.div_euclid(1000);
        if second != self.second {
            self.second = second;
            self.date_time.clear();
            let _ = write_utc_second(&mut self.date_time, second);
        }
        let milli = ms.rem_euclid(1000) as u32;
        self.text.clear();
        self.text.push_str(&self.date_time);
        let digit = |n: u32| char::from(b'0' + (n % 10) as u8);
        self.text.extend(['.', digit(milli / 100), digit(milli / 10), digit(milli), 'Z']);
    }
}

impl Line {
    /// Repeats the line's first `prefix_len` bytes (time, level, service, actor)
    /// before each line of its message, so every line of the log reads alone.
    fn prefix_each_line(&mut self, prefix_len: usize) {
        let message = self.text.split_off(prefix_len);
        let prefix = std::mem::take(&mut self.text);
        for (index, part) in message.split('\n').enumerate() {
            if index > 0 {
                self.text.push('\n');
            }
            self.text.push_str(&prefix);
            self.text.push_str(part);
        }
    }
}

/// Writes the UTC date and time of `second` (since the epoch): `2026-11-25T19:34:12`.
fn write_utc_second(out: &mut String, second: i64) -> std::fmt::Result {
    let (days, second_of_day) = (second.div_euclid(86_400), second.rem_euclid(86_400));
    // The civil date of a day count (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let (hour, minute, sec) = (second_of_day / 3600, second_of_day / 60 % 60, second_of_day % 60);
    write!(out, "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{sec:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formatted(line: &mut Line, ms: u64) -> String {
        line.stamp(UNIX_EPOCH + Duration::from_millis(ms));
        line.text.clone()
    }

    #[test]
    fn writes_utc_timestamps_like_env_logger() {
        let line = &mut Line::default();
        assert_eq!(formatted(line, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(formatted(line, 951_868_800_007), "2000-03-01T00:00:00.007Z");
        assert_eq!(formatted(line, 951_782_399_999), "2000-02-28T23:59:59.999Z");
        assert_eq!(formatted(line, 1_795_635_252_112), "2026-11-25T19:34:12.112Z");
        // The same second again, and the next: the date and time are reused, then redone.
        assert_eq!(formatted(line, 1_795_635_252_999), "2026-11-25T19:34:12.999Z");
        assert_eq!(formatted(line, 1_795_635_253_040), "2026-11-25T19:34:13.040Z");
    }

    #[test]
    fn each_line_of_a_message_gets_the_prefix() {
        let mut line = Line::default();
        line.stamp(UNIX_EPOCH);
        line.text.push_str(" INFO  svc Actor: ");
        let prefix_len = line.text.len();
        line.text.push_str("first\nsecond");
        line.prefix_each_line(prefix_len);
        assert_eq!(
            line.text,
            "1970-01-01T00:00:00.000Z INFO  svc Actor: first\n1970-01-01T00:00:00.000Z INFO  svc Actor: second"
        );
    }
}
