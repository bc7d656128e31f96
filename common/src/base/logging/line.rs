//! One buffered log line, formatted as env_logger formats it to a terminal
//! (without colour): `<time> <LEVEL> <service> <target>: <message>`, the prefix
//! repeated before each line of a message of several lines.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

thread_local! {
    static LINE: RefCell<Line> = RefCell::new(Line::default());
}

/// A log line being formatted, kept per thread so its memory is reused, with
/// the date and time of the last second it was stamped with: from one line to
/// the next the timestamp mostly changes only in its milliseconds.
pub(super) struct Line {
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
    /// Runs `format` with this thread's line.
    pub(super) fn with_this_threads<R>(format: impl FnOnce(&mut Line) -> R) -> R {
        LINE.with(|line| match line.try_borrow_mut() {
            Ok(mut line) => format(&mut line),
            // A line logged while this thread formats another (from a Display).
            Err(_) => format(&mut Line::default()),
        })
    }

    /// `record` as `service` logs it, now: the bytes of its line(s).
    pub(super) fn record(&mut self, service: &str, record: &log::Record<'_>) -> &[u8] {
        let level = match record.level() {
            log::Level::Error => "ERROR",
            log::Level::Warn => "WARN ",
            log::Level::Info => "INFO ",
            log::Level::Debug => "DEBUG",
            log::Level::Trace => "TRACE",
        };
        let prefix_len = self.start(SystemTime::now(), level, service, record.target());
        match record.args().as_str() {
            Some(message) => self.text.push_str(message),
            // A Display that fails midway leaves part of the message: the line still ends.
            None => drop(write!(self.text, "{}", record.args())),
        }
        self.end(prefix_len)
    }

    /// A warning about the log itself (target `logging`), stamped `time`: the bytes of its line.
    pub(super) fn notice(&mut self, time: SystemTime, service: &str, message: &str) -> &[u8] {
        let prefix_len = self.start(time, "WARN ", service, "logging");
        self.text.push_str(message);
        self.end(prefix_len)
    }

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

    /// Starts the line: its time, level (five wide), service and target; the
    /// length of this prefix.
    fn start(&mut self, time: SystemTime, level: &str, service: &str, target: &str) -> usize {
        self.stamp(time);
        // The prefix pushed piece by piece: cheaper than `write!`'s formatting.
        for piece in [" ", level, " ", service, " ", target, ": "] {
            self.text.push_str(piece);
        }
        self.text.len()
    }

    /// Ends the message after the prefix of `prefix_len` bytes: each of its
    /// lines prefixed, and a newline; the bytes of it all.
    fn end(&mut self, prefix_len: usize) -> &[u8] {
        if self.text[prefix_len..].contains('\n') {
            self.prefix_each_line(prefix_len);
        }
        self.text.push('\n');
        self.text.as_bytes()
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
    use std::time::Duration;

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
