//! A service process whose output goes straight to a file, as when an operator
//! redirects it: the benchmark reads no line while the services run, so their
//! logging costs them what it costs in production and nothing more.
//!
//! Before a run the benchmark waits for a start-up line (reading the file
//! every 100 ms); during it, it only counts one marker in the bytes appended
//! since its last look (four times a second); after it, it reads the whole file.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How often a start-up line is looked for.
const STARTUP_POLL: Duration = Duration::from_millis(100);
/// How often the bytes appended during a run are counted.
const RUN_POLL: Duration = Duration::from_millis(250);

pub struct LoggedService {
    pub name: String,
    child: Child,
    log: PathBuf,
}

impl LoggedService {
    /// Starts the workspace binary `name` with `args`, its stdout and stderr
    /// appended to `log`; `rust_log` sets RUST_LOG (else the service's default).
    pub fn start(name: &str, args: &[String], rust_log: Option<&str>, log: &Path) -> Result<Self, String> {
        let file = File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let stderr = file.try_clone().map_err(|e| format!("cannot share {}: {e}", log.display()))?;
        let mut command = Command::new(harness::binary(name));
        command.args(args).env_remove("RUST_LOG").stdout(Stdio::from(file)).stderr(Stdio::from(stderr));
        if let Some(filter) = rust_log {
            command.env("RUST_LOG", filter);
        }
        let child = command.spawn().map_err(|e| format!("cannot start {name}: {e}"))?;
        Ok(LoggedService { name: name.to_string(), child, log: log.to_path_buf() })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the service has written so far.
    pub fn text(&self) -> Result<String, String> {
        std::fs::read_to_string(&self.log).map_err(|e| format!("cannot read {}: {e}", self.log.display()))
    }

    /// Waits until a line holds `marker` (for start-up lines, before measuring).
    pub fn wait_for_line(&mut self, marker: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.text()?.contains(marker) {
                return Ok(());
            }
            self.fail_if_exited(&format!("before logging {marker:?}"))?;
            if Instant::now() >= deadline {
                return Err(self.failure(&format!("logged no {marker:?} within {} s", timeout.as_secs())));
            }
            std::thread::sleep(STARTUP_POLL);
        }
    }

    /// Waits until `marker` has been written `count` times, reading only the bytes
    /// appended since the last look.
    pub fn wait_for_count(&mut self, marker: &str, count: u64, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut file =
            File::open(&self.log).map_err(|e| format!("cannot open {}: {e}", self.log.display()))?;
        let (mut seen, mut unread) = (0u64, Vec::new());
        loop {
            // Appends what was written since the last read: the file keeps its position.
            file.read_to_end(&mut unread).map_err(|e| format!("cannot read {}: {e}", self.log.display()))?;
            // A marker may straddle two reads: keep the unfinished last line.
            let complete = unread.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            seen += count_in(&unread[..complete], marker.as_bytes());
            unread.drain(..complete);
            if seen >= count {
                return Ok(());
            }
            self.fail_if_exited(&format!("after {seen} of {count} {marker:?}"))?;
            if Instant::now() >= deadline {
                return Err(self.failure(&format!(
                    "logged {seen} of {count} {marker:?} within {} s",
                    timeout.as_secs()
                )));
            }
            std::thread::sleep(RUN_POLL);
        }
    }

    /// Waits for the process to end on its own, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) =
                self.child.try_wait().map_err(|e| format!("cannot wait for {}: {e}", self.name))?
            {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(self.failure(&format!("did not exit within {} s", timeout.as_secs())));
            }
            std::thread::sleep(STARTUP_POLL);
        }
    }

    /// Ctrl-C, then waits for a clean exit.
    pub fn stop(&mut self, timeout: Duration) -> Result<(), String> {
        harness::interrupt(&self.child);
        match self.wait_exit(timeout)? {
            status if status.success() => Ok(()),
            status => Err(self.failure(&format!("exited with {status} after Ctrl-C"))),
        }
    }

    fn fail_if_exited(&mut self, when: &str) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(self.failure(&format!("exited ({status}) {when}"))),
            _ => Ok(()),
        }
    }

    /// `what` happened to the service, with the end of its log.
    fn failure(&self, what: &str) -> String {
        let text = self.text().unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        format!("{} {what} (log: {}); its last lines:\n{tail}", self.name, self.log.display())
    }
}

impl Drop for LoggedService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Non-overlapping occurrences of `needle` in `haystack`.
fn count_in(haystack: &[u8], needle: &[u8]) -> u64 {
    if needle.is_empty() {
        return 0;
    }
    let (mut count, mut at) = (0, 0);
    while let Some(found) = haystack[at..].iter().position(|&b| b == needle[0]) {
        let start = at + found;
        if haystack[start..].starts_with(needle) {
            count += 1;
            at = start + needle.len();
        } else {
            at = start + 1;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::count_in;

    #[test]
    fn counts_non_overlapping_occurrences() {
        assert_eq!(count_in(b"a ok b ok ok", b"ok"), 3);
        assert_eq!(count_in(b"aaaa", b"aa"), 2);
        assert_eq!(count_in(b"", b"ok"), 0);
    }
}
