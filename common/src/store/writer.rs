//! The store's writer thread: takes what is queued, runs it in one transaction,
//! answers each request; retries while the store is unreachable.

use super::backend::{connect, Backend, Op};
use super::health::Health;
use super::sqlite::{self, FileId};
use super::{StoreError, StoreSetup, StoreUrl};
use log::{info, warn};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, Instant};

/// The most requests one transaction takes.
pub const MAX_BATCH: usize = 1000;

/// How often an unreachable store is reported.
const COMPLAIN_EVERY: Duration = Duration::from_secs(5);

/// The longest wait between two tries of a failed batch.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// How soon a log that could not be written is tried again before a batch.
const LOG_RETRY: Duration = Duration::from_millis(100);

/// How often rows past the retention are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Starts the writer thread, and waits for its first connection: a store this
/// service cannot reach or use now is an error.
pub(super) fn start(
    setup: StoreSetup,
    health: Arc<Health>,
) -> Result<(mpsc::Sender<Op>, String), StoreError> {
    let (requests, queue) = mpsc::channel();
    let (opened, first_try) = mpsc::channel();
    std::thread::Builder::new()
        .name("store".into())
        .spawn(move || {
            let mut writer = Writer {
                setup,
                health,
                id: OnceLock::new(),
                backend: None,
                file: None,
                last_complaint: None,
                next_prune: Instant::now(),
            };
            let reached = writer.connect_at_start();
            let fatal = reached.is_err();
            let _ = opened.send(reached);
            if !fatal {
                writer.serve(queue);
            }
        })
        .expect("cannot start the store's thread");
    let id = first_try.recv().expect("the store's thread answers its first try before anything else")?;
    Ok((requests, id))
}

struct Writer {
    setup: StoreSetup,
    health: Arc<Health>,
    /// The id of the store first reached: every connection must reach that store.
    id: OnceLock<String>,
    backend: Option<Box<dyn Backend>>,
    /// The SQLite file first opened: the fence every instance of the host shares.
    file: Option<FileId>,
    last_complaint: Option<Instant>,
    next_prune: Instant,
}

impl Writer {
    fn serve(mut self, queue: mpsc::Receiver<Op>) {
        while let Ok(first) = queue.recv() {
            let mut ops = vec![first];
            ops.extend(queue.try_iter().take(MAX_BATCH - 1));
            // While the log cannot be written, the batch waits for it (the logger
            // keeps trying, and ends the service if it cannot).
            while !(self.setup.log_written)() {
                std::thread::sleep(LOG_RETRY); // its next try: nothing to wait on but time
            }
            self.run(&mut ops);
            ops.into_iter().for_each(Op::answer);
            if Instant::now() >= self.next_prune {
                self.prune();
            }
        }
    }

    /// Runs `ops` in one transaction, trying again until the store takes it.
    fn run(&mut self, ops: &mut [Op]) {
        // One order of locking for every instance: two batches of the same
        // orders never wait for each other in a circle.
        ops.sort_by_key(Op::order_id);
        let mut backoff = Duration::from_millis(50);
        let instance = self.setup.instance.clone();
        self.health.batch_started();
        loop {
            let Some(backend) = self.connected() else {
                std::thread::sleep(backoff); // nothing to wait on but time: the store is away
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            };
            match backend.run(ops, &instance) {
                Ok(()) => {
                    self.health.committed();
                    if self.last_complaint.take().is_some() {
                        info!(target: "store", "the store {} answers again", self.setup.url.shown());
                    }
                    return;
                }
                Err(e) => {
                    self.complain(&format!("cannot record {} operations: {e}", ops.len()));
                    self.backend = None; // reconnect: the connection may be what broke
                    std::thread::sleep(backoff); // nothing to wait on but time
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// The first connection: a store that cannot be reached or written now is
    /// more likely a wrong `--store` or a server not started than an outage, and
    /// waiting would hide it. One that is busy (another instance's batch holds
    /// its lock) is waited for, as one that goes away later is.
    fn connect_at_start(&mut self) -> Result<String, StoreError> {
        let fix = match self.setup.url {
            StoreUrl::Sqlite(_) => "check that its folder exists and that this user may write there",
            StoreUrl::Postgres(_) => "check that the server is up, reachable from here, and takes this user",
        };
        loop {
            match connect(&self.setup.url, &self.setup.instance) {
                Ok(backend) => {
                    let id = backend.id().to_string();
                    self.adopt(backend);
                    return Ok(id);
                }
                Err(e) if e.is_fatal() => return Err(e),
                // Busy, not away: each try waited its bound (busy_timeout, lock_timeout).
                Err(e) if e.is_contention() => self.complain(&format!("cannot open it: {e}")),
                Err(source) => return Err(StoreError::AtStart { source: Box::new(source), fix }),
            }
        }
    }

    /// The connection, made if there is none, to the file first opened.
    fn connected(&mut self) -> Option<&mut Box<dyn Backend>> {
        if let Err(e) = self.connect_if_needed() {
            self.complain(&format!("cannot open it: {e}"));
        }
        self.check_file();
        self.backend.as_mut()
    }

    /// Connects if there is no connection; a store that is away is complained
    /// of, one this service cannot use is an error.
    fn connect_if_needed(&mut self) -> Result<(), StoreError> {
        if self.backend.is_some() {
            return Ok(());
        }
        match connect(&self.setup.url, &self.setup.instance) {
            Ok(backend) => self.adopt(backend),
            Err(e) if e.is_fatal() => return Err(e),
            Err(e) => self.complain(&format!("cannot open it: {e}")),
        }
        Ok(())
    }

    /// Takes `backend` as the connection, if it reached the store first
    /// reached, noting the SQLite file first opened.
    fn adopt(&mut self, backend: Box<dyn Backend>) {
        let first = self.id.get_or_init(|| backend.id().to_string());
        if first != backend.id() {
            let now = format!("another store now (its id is {}, it was {first})", backend.id());
            self.replaced(&now);
        }
        self.backend = Some(backend);
        if let (None, StoreUrl::Sqlite(path)) = (self.file, &self.setup.url) {
            self.file = sqlite::file_id(path);
        }
    }

    /// Ends the service if the SQLite file it opened is no longer at its path
    /// (deleted, or replaced).
    fn check_file(&self) {
        let (Some(opened), StoreUrl::Sqlite(path)) = (self.file, &self.setup.url) else { return };
        if sqlite::file_id(path) != Some(opened) {
            self.replaced("deleted or replaced while in use");
        }
    }

    /// Ends the service: the store it fenced with is gone from its URL, and an
    /// instance opening the URL now would keep a fence of its own, and decide
    /// again what this one decided.
    fn replaced(&self, what: &str) -> ! {
        log::error!(
            target: "store",
            "the store {} is {what}: exiting with status 1, recording nothing more (instances opening it \
             now would keep a fence of their own); restore it, or start every instance on one new store",
            self.setup.url.shown()
        );
        (self.setup.log_written)();
        std::process::exit(1);
    }

    /// Says what is wrong, at most once every few seconds; `/ready` has it at once.
    fn complain(&mut self, what: &str) {
        self.health.failed(what.to_string());
        if self.last_complaint.is_some_and(|at| at.elapsed() < COMPLAIN_EVERY) {
            return;
        }
        self.last_complaint = Some(Instant::now());
        warn!(
            target: "store",
            "the store {} is unavailable: {what} (retrying; events wait, nothing is done that is not recorded)",
            self.setup.url.shown()
        );
    }

    fn prune(&mut self) {
        self.next_prune = Instant::now() + PRUNE_EVERY;
        let retention = i64::from(self.setup.retention_days) * 24 * 3600 * 1000;
        let Some(backend) = self.connected() else { return };
        match backend.prune(retention) {
            Ok(0) => {}
            Ok(rows) => {
                info!(target: "store", "pruned {rows} rows older than {} days", self.setup.retention_days)
            }
            Err(e) => warn!(target: "store", "cannot prune old rows: {e} (trying again in an hour)"),
        }
    }
}
