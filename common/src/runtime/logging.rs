//! Log lines that say who spoke: `<time> <LEVEL> <service> <actor>: <message>`.
//!
//! Actors log with their name as the log target (`target: "PaymentActor"`), so
//! `RUST_LOG=PaymentActor=debug` narrows the output to one actor. Default level: info.
//!
//! To a terminal, env_logger writes each line at once, in colour (a terminal does
//! not fill up: what it cannot take, it waits for). Anywhere else (a file, a pipe)
//! each line is formatted on its thread and copied into a shared buffer, written
//! out every [`FLUSH_EVERY`], when it holds `WRITE_AT` (64 KiB), and by [`flush`]: at
//! info a service writes a line or two per event, and one write(2) per line cost
//! it a fifth of its CPU. A consumer calls [`flush`] before it stores offsets,
//! and a store before it records a batch, and goes on only once it says every
//! line is out: an event is never committed or recorded before its lines
//! (notification-service's emails) are out of the process.
//!
//! A log that cannot be written (a full disk, a closed pipe) loses nothing: what
//! was not written stays in the buffer and is tried again every [`FLUSH_EVERY`],
//! while [`flush`] says it is not out. The buffer holds at most `HOLD_AT_MOST` (1 MiB);
//! a thread that logs past it waits for room, so a service whose actors log
//! stands still (its events wait, uncommitted). If no byte gets out for
//! [`GIVE_UP_AFTER`], the service exits with status 1 at once, committing nothing
//! more (what it stored before was stored after its lines were out); it says why
//! on stdout, when stdout is not the log itself.
//!
//! A message of several lines is written as several log lines, each with the
//! prefix: one call (one clock read, one lock) for lines that belong together.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::{self, IsTerminal, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::sync::{mpsc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a buffered line waits at most, when nothing else flushes it; how
/// often a log that cannot be written is tried again.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// What the buffer holds before a line written into it writes it out.
const WRITE_AT: usize = 64 * 1024;
/// The most the buffer holds while the log cannot be written (and a line).
const HOLD_AT_MOST: usize = 1024 * 1024;
/// How long the log may stay unwritable (no byte written) before the service exits.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(30);
/// The exit status of a service whose log stayed unwritable.
const UNWRITABLE_STATUS: i32 = 1;
/// How long the last words on stdout may take before the service exits anyway.
const LAST_WORDS_WAIT: Duration = Duration::from_secs(1);

/// The buffered log, when output is not a terminal.
static LOG: OnceLock<Log> = OnceLock::new();

/// Sets up logging for `service`; call once, first thing in `main`. env_logger
/// reads `RUST_LOG` and, to a terminal, writes the lines too.
pub fn init(service: &'static str) {
    let mut builder = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if io::stderr().is_terminal() {
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
    let log = LOG.get_or_init(|| Log {
        service,
        pending: Mutex::new(Pending::default()),
        room: Condvar::new(),
        stdout_is_another_stream: stdout_is_another_stream(),
    });
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
/// the process (always, to a terminal: each was written as it was logged).
/// While the log cannot be written this says `false`, and the lines are kept
/// and tried again: what they tell of must wait.
pub fn flush() -> bool {
    match LOG.get() {
        Some(log) => log.write_out(&mut log.pending()),
        None => true,
    }
}

/// Whether stdout is another file or pipe than stderr (the log): where the
/// service can tell its operator that the log cannot be written.
fn stdout_is_another_stream() -> bool {
    let identity = |fd: std::os::fd::BorrowedFd<'_>| {
        let metadata = fd.try_clone_to_owned().map(std::fs::File::from)?.metadata()?;
        io::Result::Ok((metadata.dev(), metadata.ino()))
    };
    match (identity(io::stdout().as_fd()), identity(io::stderr().as_fd())) {
        (Ok(stdout), Ok(stderr)) => stdout != stderr,
        _ => false,
    }
}

/// The buffer and who waits for room in it.
struct Log {
    service: &'static str,
    pending: Mutex<Pending>,
    /// Told when bytes were written out: a thread waiting for room may go on.
    room: Condvar,
    stdout_is_another_stream: bool,
}

/// The lines logged and not yet written, and since when they cannot be.
#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    unwritable: Option<Unwritable>,
}

/// The log cannot be written: since when, since when no byte got out, and why.
struct Unwritable {
    since: Instant,
    stuck_since: Instant,
    error: io::Error,
}

impl Log {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Copies `line` into the buffer, after waiting for room if the log cannot
    /// be written and the buffer is full.
    fn hold(&self, line: &[u8]) {
        let mut pending = self.pending();
        // A line longer than the bound goes into an empty buffer: it is still bounded.
        while !pending.bytes.is_empty() && pending.bytes.len() + line.len() > HOLD_AT_MOST {
            pending = self.room.wait(pending).unwrap_or_else(PoisonError::into_inner);
        }
        pending.bytes.extend_from_slice(line);
        // While the log fails, only the writer thread and `flush` try it again.
        if pending.bytes.len() >= WRITE_AT && pending.unwritable.is_none() {
            self.write_out(&mut pending);
        }
    }

    /// Writes what the buffer holds to stderr; whether all of it is out.
    fn write_out(&self, pending: &mut Pending) -> bool {
        let was_unwritable = pending.unwritable.is_some();
        let (out, written) = pending.write_to(&mut io::stderr().lock());
        if written > 0 {
            self.room.notify_all();
        }
        if let Some(recovered) = out.then(|| pending.unwritable.take()).flatten() {
            // Said in the log itself, after the lines it held.
            let notice = format!(
                "the log could not be written for {:.1} s ({}): its lines were held, and are written now",
                recovered.since.elapsed().as_secs_f64(),
                recovered.error
            );
            let mut line = Line::default();
            line.start(SystemTime::now(), "WARN ", self.service, "logging");
            line.text.push_str(&notice);
            line.text.push('\n');
            pending.bytes.extend_from_slice(line.text.as_bytes());
            return self.write_out(pending);
        }
        if let (false, Some(unwritable)) = (was_unwritable, &pending.unwritable) {
            self.tell_operator(format!(
                "cannot write the log to stderr ({}): its lines are held and tried again, and \
                 nothing they tell of is committed; the service exits with status {UNWRITABLE_STATUS} \
                 if the log stays unwritable for {} s",
                unwritable.error,
                GIVE_UP_AFTER.as_secs()
            ));
        }
        out
    }

    /// The writer thread: writes the buffer out every [`FLUSH_EVERY`], and ends
    /// the process if the log stays unwritable for [`GIVE_UP_AFTER`]. It logs
    /// nothing itself, so it never waits for room.
    fn keep_writing(&self) {
        loop {
            std::thread::sleep(FLUSH_EVERY); // a period, not a wait for an event
            let mut pending = self.pending();
            self.write_out(&mut pending);
            let Some(unwritable) = pending.unwritable.as_ref() else { continue };
            if unwritable.stuck_since.elapsed() >= GIVE_UP_AFTER {
                let last_words = self.tell_operator(format!(
                    "exiting with status {UNWRITABLE_STATUS}: the log (stderr) could not be written for {} s \
                     ({}); {} bytes of it are lost, and no event they tell of was committed: \
                     the next instance does those again",
                    GIVE_UP_AFTER.as_secs(),
                    unwritable.error,
                    pending.bytes.len()
                ));
                // Holding the buffer: no flush says the lost lines are out on the way.
                let _ = last_words.recv_timeout(LAST_WORDS_WAIT);
                std::process::exit(UNWRITABLE_STATUS);
            }
        }
    }

    /// Says `what` on stdout if it is not the log, on a thread of its own: stdout
    /// may be a pipe nobody reads. The receiver hears once it is said (or cannot be).
    fn tell_operator(&self, what: String) -> mpsc::Receiver<()> {
        let (said, told) = mpsc::channel();
        if self.stdout_is_another_stream {
            let service = self.service;
            // A thread that cannot start says nothing: the exit status still does.
            let _ = std::thread::Builder::new().name("log notice".into()).spawn(move || {
                let mut stdout = io::stdout().lock();
                let _ = writeln!(stdout, "{service}: {what}").and_then(|()| stdout.flush());
                let _ = said.send(());
            });
        }
        told
    }
}

impl Pending {
    /// Writes the held bytes to `out`, keeping what it did not take; whether
    /// all of it is out, and how many bytes were written.
    fn write_to(&mut self, out: &mut impl Write) -> (bool, usize) {
        let mut written = 0;
        let result = loop {
            if written == self.bytes.len() {
                break Ok(());
            }
            match out.write(&self.bytes[written..]) {
                Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.bytes.drain(..written);
        let Err(error) = result.and_then(|()| out.flush()) else { return (true, written) };
        let now = Instant::now();
        match &mut self.unwritable {
            Some(unwritable) => {
                if written > 0 {
                    unwritable.stuck_since = now;
                }
                unwritable.error = error;
            }
            None => self.unwritable = Some(Unwritable { since: now, stuck_since: now, error }),
        }
        (false, written)
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
        let Some(log) = LOG.get().filter(|_| self.filter.matches(record)) else { return };
        // Formatted on this thread, then copied in one piece: the buffer's lock is
        // held for a copy only, and its writer sees one write instead of a dozen.
        let write = |line: &mut Line| {
            let level = match record.level() {
                log::Level::Error => "ERROR",
                log::Level::Warn => "WARN ",
                log::Level::Info => "INFO ",
                log::Level::Debug => "DEBUG",
                log::Level::Trace => "TRACE",
            };
            let prefix_len = line.start(SystemTime::now(), level, self.service, record.target());
            match record.args().as_str() {
                Some(message) => line.text.push_str(message),
                // A Display that fails midway leaves part of the message: the line still ends.
                None => drop(write!(line.text, "{}", record.args())),
            }
            if line.text[prefix_len..].contains('\n') {
                line.prefix_each_line(prefix_len);
            }
            line.text.push('\n');
            log.hold(line.text.as_bytes());
        };
        LINE.with(|line| match line.try_borrow_mut() {
            Ok(mut line) => write(&mut line),
            // A line logged while this thread formats another (from a Display).
            Err(_) => write(&mut Line::default()),
        });
    }

    fn flush(&self) {
        flush(); // `log::logger().flush()` has no answer to give
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
    /// Starts the line: its time, level (five wide), service and target; the
    /// length of this prefix.
    fn start(&mut self, time: SystemTime, level: &str, service: &str, target: &str) -> usize {
        self.stamp(time);
        // The prefix pushed piece by piece: through `write!` it cost as much as the message.
        for piece in [" ", level, " ", service, " ", target, ": "] {
            self.text.push_str(piece);
        }
        self.text.len()
    }

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

    /// A file that takes `room` more bytes, then fails as a full disk does.
    struct Disk {
        written: Vec<u8>,
        room: usize,
    }

    impl Write for Disk {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            let n = bytes.len().min(self.room);
            if n == 0 {
                return Err(io::Error::from_raw_os_error(28)); // ENOSPC
            }
            self.room -= n;
            self.written.extend_from_slice(&bytes[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn what_a_full_disk_does_not_take_is_kept_and_written_once_there_is_room() {
        let mut disk = Disk { written: Vec::new(), room: 5 };
        let mut pending = Pending { bytes: b"first\nsecond\n".to_vec(), unwritable: None };
        assert_eq!(pending.write_to(&mut disk), (false, 5));
        assert_eq!(pending.bytes, b"\nsecond\n");
        let stuck_since = pending.unwritable.as_ref().expect("unwritable").stuck_since;
        // Nothing gets out: it stays unwritable since then.
        assert_eq!(pending.write_to(&mut disk), (false, 0));
        assert_eq!(pending.unwritable.as_ref().map(|u| u.stuck_since), Some(stuck_since));
        pending.bytes.extend_from_slice(b"third\n");
        disk.room = 100;
        assert_eq!(pending.write_to(&mut disk), (true, 14));
        assert_eq!(disk.written, b"first\nsecond\nthird\n");
        assert!(pending.bytes.is_empty());
    }

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
