//! Whether the store keeps up, for `/ready`: since when the batch under way has
//! waited for its commit, and the last error it met. A store that has not
//! committed a batch for longer than [`STALL_BOUND`] makes the service not
//! ready: events wait on it, and an orchestrator should send work elsewhere.
//! A watchdog says so in a WARN line every few seconds, also while the writer
//! itself is blocked (a server that hangs without closing its connection).

use log::warn;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

/// How often the watchdog looks, and says what it sees.
const WATCH_EVERY: Duration = Duration::from_secs(5);

/// How long a batch may wait for its commit before the service is not ready:
/// past the waits the store's own bounds allow one try (SQLite's
/// `busy_timeout`, PostgreSQL's `lock_timeout`, both 5 s).
pub const STALL_BOUND: Duration = Duration::from_secs(10);

pub struct Health {
    /// The store, as logged.
    url: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    batch_since: Option<Instant>,
    last_error: Option<String>,
}

impl Health {
    pub(super) fn new(url: String) -> Health {
        Health { url, state: Mutex::default() }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn batch_started(&self) {
        self.state().batch_since = Some(Instant::now());
    }

    pub(super) fn failed(&self, error: String) {
        self.state().last_error = Some(error);
    }

    pub(super) fn committed(&self) {
        *self.state() = State::default();
    }

    /// Starts a thread that logs a WARN line every [`WATCH_EVERY`] while the
    /// store is stalled; it ends with the last handle on `health`.
    pub(super) fn watch(health: &Arc<Health>) {
        let watched: Weak<Health> = Arc::downgrade(health);
        let spawned = std::thread::Builder::new().name("store-watchdog".into()).spawn(move || loop {
            std::thread::sleep(WATCH_EVERY); // a watchdog's period: it looks at a clock
            let Some(health) = watched.upgrade() else { return };
            if let Some(why) = health.stalled(STALL_BOUND) {
                warn!(target: "store", "{why} (events wait; /ready answers 503 until it commits)");
            }
        });
        if let Err(e) = spawned {
            warn!(target: "store", "cannot start the store's watchdog ({e}): a stall shows only in /ready");
        }
    }

    /// Why the store is not keeping up, if a batch has waited longer than `bound`.
    pub fn stalled(&self, bound: Duration) -> Option<String> {
        let state = self.state();
        let waited = state.batch_since?.elapsed();
        (waited > bound).then(|| {
            let why = state.last_error.as_deref().unwrap_or("no answer yet");
            format!("the store {} has not committed for {} s: {why}", self.url, waited.as_secs())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_waiting_past_the_bound_is_a_stall_until_it_commits() {
        let health = Health::new("sqlite://s.db".into());
        assert_eq!(health.stalled(Duration::ZERO), None, "no batch under way");
        health.batch_started();
        assert_eq!(health.stalled(Duration::from_secs(3600)), None, "within the bound");
        health.failed("database is locked".into());
        std::thread::sleep(Duration::from_millis(2)); // the bound below is 1 ms
        let why = health.stalled(Duration::from_millis(1)).expect("a stall");
        assert_eq!(why, "the store sqlite://s.db has not committed for 0 s: database is locked");
        health.committed();
        assert_eq!(health.stalled(Duration::ZERO), None, "committed");
    }
}
