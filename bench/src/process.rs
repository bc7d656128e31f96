//! What `/proc` tells about a process: its peak resident memory (VmHWM from
//! `/proc/PID/status`) and the CPU time it has used (utime + stime from
//! `/proc/PID/stat`).
//!
//! The figures are read while the process is alive, right before it is stopped.
//! For a process that stops on its own (order-service with `--count`), a
//! [`Watch`] also samples it in the background, so a final read that loses the
//! race with its exit still leaves the last sample.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often a [`Watch`] samples.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// Clock ticks per second of `/proc/PID/stat` (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: u64 = 100;

/// A process's resource use so far.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// Peak resident memory (VmHWM), KiB.
    pub peak_rss_kib: u64,
    /// CPU time used, user + system, ms.
    pub cpu_ms: u64,
}

/// The usage of `pid`, or `None` if it is gone (or a zombie, which has no memory).
pub fn usage(pid: u32) -> Option<Usage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let peak_rss_kib = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(Usage { peak_rss_kib, cpu_ms: cpu_ms(&pid.to_string())? })
}

/// The CPU time this process (every thread) has used so far, ms.
pub fn own_cpu_ms() -> Result<u64, String> {
    cpu_ms("self").ok_or_else(|| "cannot read /proc/self/stat".to_string())
}

fn cpu_ms(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count the fields after its ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let (utime, stime): (u64, u64) = (fields.get(11)?.parse().ok()?, fields.get(12)?.parse().ok()?);
    Some((utime + stime) * 1000 / TICKS_PER_SEC)
}

/// Samples a process's usage until it ends or the watch is finished.
pub struct Watch {
    pid: u32,
    last: Arc<Mutex<Option<Usage>>>,
    stop: mpsc::Sender<()>,
    sampler: JoinHandle<()>,
}

impl Watch {
    pub fn start(pid: u32) -> Watch {
        let last = Arc::new(Mutex::new(None));
        let (stop, stopped) = mpsc::channel();
        let sampler = std::thread::spawn({
            let last = last.clone();
            move || {
                while let Some(now) = usage(pid) {
                    *last.lock().unwrap_or_else(|p| p.into_inner()) = Some(now);
                    // Wakes at once when finished; else samples again after the period.
                    if stopped.recv_timeout(SAMPLE_EVERY) != Err(mpsc::RecvTimeoutError::Timeout) {
                        break;
                    }
                }
            }
        });
        Watch { pid, last, stop, sampler }
    }

    /// Reads the usage now, if the process is still alive (both figures only grow).
    pub fn read_now(&self) {
        if let Some(now) = usage(self.pid) {
            *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(now);
        }
    }

    /// Reads once more and stops sampling (call before stopping the process).
    pub fn finish(self) -> Result<Usage, String> {
        self.read_now();
        let _ = self.stop.send(());
        let _ = self.sampler.join();
        let last = *self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.ok_or_else(|| format!("could not read /proc/{}/status and stat", self.pid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_process() {
        let me = usage(std::process::id()).expect("this process is alive");
        assert!(me.peak_rss_kib > 0);
        assert!(own_cpu_ms().is_ok());
    }
}
