//! The buffer of log lines not yet written, its writer thread, and what it does
//! while the log cannot be written: hold the lines, say so, and give up in the end.

use super::line::Line;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::sync::{mpsc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

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

/// The buffer and who waits for room in it.
pub(super) struct Log {
    service: &'static str,
    pending: Mutex<Pending>,
    /// Told when bytes were written out: a thread waiting for room may go on.
    room: Condvar,
    stdout_is_another_stream: bool,
}

/// The lines logged and not yet written, and since when they cannot be.
#[derive(Default)]
pub(super) struct Pending {
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
    /// An empty buffer for `service`'s lines.
    pub(super) fn new(service: &'static str) -> Log {
        Log {
            service,
            pending: Mutex::new(Pending::default()),
            room: Condvar::new(),
            stdout_is_another_stream: stdout_is_another_stream(),
        }
    }

    pub(super) fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Copies `line` into the buffer, after waiting for room if the log cannot
    /// be written and the buffer is full.
    pub(super) fn hold(&self, line: &[u8]) {
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
    pub(super) fn write_out(&self, pending: &mut Pending) -> bool {
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
            pending.bytes.extend_from_slice(line.notice(SystemTime::now(), self.service, &notice));
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
    pub(super) fn keep_writing(&self) {
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
}
