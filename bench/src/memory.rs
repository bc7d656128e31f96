//! Peak resident memory of a process: VmHWM from `/proc/PID/status`.
//!
//! The figure is read while the process is alive, right before it is stopped.
//! For a process that stops on its own (order-service with `--count`), a
//! [`PeakWatch`] also samples it in the background, so a final read that loses
//! the race with its exit still leaves the last sample.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often a [`PeakWatch`] samples.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// VmHWM of `pid` in KiB, or `None` if it is gone (or a zombie, which has no memory).
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Samples a process's VmHWM until it ends or the watch is finished.
pub struct PeakWatch {
    pid: u32,
    best: Arc<AtomicU64>,
    stop: mpsc::Sender<()>,
    sampler: JoinHandle<()>,
}

impl PeakWatch {
    pub fn start(pid: u32) -> PeakWatch {
        let best = Arc::new(AtomicU64::new(0));
        let (stop, stopped) = mpsc::channel();
        let sampler = std::thread::spawn({
            let best = best.clone();
            move || {
                while let Some(kib) = peak_rss_kib(pid) {
                    best.fetch_max(kib, Ordering::Relaxed);
                    // Wakes at once when finished; else samples again after the period.
                    if stopped.recv_timeout(SAMPLE_EVERY) != Err(mpsc::RecvTimeoutError::Timeout) {
                        break;
                    }
                }
            }
        });
        PeakWatch { pid, best, stop, sampler }
    }

    /// Reads VmHWM now, if the process is still alive; returns the peak so far.
    pub fn read_now(&self) -> u64 {
        if let Some(kib) = peak_rss_kib(self.pid) {
            self.best.fetch_max(kib, Ordering::Relaxed);
        }
        self.best.load(Ordering::Relaxed)
    }

    /// Stops sampling (call before stopping the process); the peak in KiB.
    pub fn finish(self) -> Result<u64, String> {
        let peak = self.read_now();
        let _ = self.stop.send(());
        let _ = self.sampler.join();
        if peak == 0 {
            return Err(format!("could not read VmHWM of process {}", self.pid));
        }
        Ok(peak)
    }
}
