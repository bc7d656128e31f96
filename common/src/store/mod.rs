//! The store of a consumer service: where it records what it did, under the
//! order's id, so that only the writer that wins the key acts.
//!
//! This is the fence against zombies. An instance that stopped talking to the
//! broker (frozen, cut off) for longer than the session timeout has lost its
//! partitions to another instance, yet still holds their events; Kafka cannot
//! stop it from publishing them (no transactions on our broker). The store can:
//! payment-service records each order's charge before it publishes the payment
//! event, and publishes what the store holds, so every copy of the event is the
//! first decision's; notification-service claims each email before sending it
//! and records it once sent, so a late copy meets its successor's record.
//!
//! Requests go to one writer thread (`writer.rs`), which runs what is queued in
//! one transaction (a batch, like the offsets) and answers each request by its
//! callback. While the store is unreachable it retries the batch and says so
//! every few seconds: nothing is charged or emailed that was not recorded.

mod health;
mod postgres;
mod prune;
mod rules;
mod schema;
mod sqlite;
mod writer;

use std::sync::{mpsc, Arc, OnceLock};
use thiserror::Error;

pub use health::STALL_BOUND;
use rules::{apply, ChargeRow, ClaimRow, Statements};
pub use writer::MAX_BATCH;

/// A store that cannot be opened or written.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("--store {0:?} is not a store URL: give sqlite://PATH or postgres://USER@HOST:PORT/DB")]
    BadUrl(String),
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] ::postgres::Error),
    #[error(
        "its schema is version {found}, newer than this service's ({known}): run a version of the \
         service that knows it, or give another --store"
    )]
    SchemaNewer { found: i64, known: i64 },
    #[error("order {0}'s row was there, then gone within one transaction (pruned meanwhile?): trying the batch again")]
    Vanished(u64),
}

impl StoreError {
    /// Whether trying again cannot help: the store is there, but not one this
    /// service can use.
    pub fn is_fatal(&self) -> bool {
        matches!(self, StoreError::SchemaNewer { .. })
    }
}

/// Where the store is: `--store`.
#[derive(Clone, Debug, PartialEq)]
pub enum StoreUrl {
    Sqlite(String),
    Postgres(String),
}

impl StoreUrl {
    pub fn parse(url: &str) -> Result<StoreUrl, StoreError> {
        if let Some(path) = url.strip_prefix("sqlite://").filter(|path| !path.is_empty()) {
            return Ok(StoreUrl::Sqlite(path.to_string()));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(StoreUrl::Postgres(url.to_string()));
        }
        Err(StoreError::BadUrl(url.to_string()))
    }

    /// The URL as logged: a password in it is masked.
    pub fn shown(&self) -> String {
        match self {
            StoreUrl::Sqlite(path) => format!("sqlite://{path}"),
            StoreUrl::Postgres(url) => {
                // postgres://USER:PASSWORD@HOST...: the password is between the first ':' after
                // the scheme and the last '@'.
                let credentials = url.find("://").map(|scheme| scheme + 3).zip(url.rfind('@'));
                match credentials.and_then(|(start, at)| Some((start + url.get(start..at)?.find(':')?, at))) {
                    Some((colon, at)) => format!("{}:******{}", &url[..colon], &url[at..]),
                    None => url.clone(),
                }
            }
        }
    }
}

/// A payment-service charge to record: the order as it arrived and the payment
/// event decided for it, as it would be published.
#[derive(Clone, Debug)]
pub struct Charge {
    pub order_id: u64,
    pub user_id: u64,
    pub amount: f64,
    /// `None`: charged; `Some(reason)`: declined.
    pub declined: Option<String>,
    pub event: Vec<u8>,
}

/// A charge as the store holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedCharge {
    pub user_id: u64,
    pub amount: f64,
    pub event: Vec<u8>,
    pub charged_by: String,
    pub charged_at_ms: i64,
}

/// What became of a [`Charge`] sent to the store.
#[derive(Clone, Debug, PartialEq)]
pub enum ChargeVerdict {
    /// This one is the record: its event is the one to publish.
    Recorded,
    /// The order was recorded before (by this instance before a crash, or by
    /// another): that record stands.
    Found(RecordedCharge),
}

/// What became of a claim on an order's email.
#[derive(Clone, Debug, PartialEq)]
pub enum EmailVerdict {
    /// Nobody else had claimed it, or the claim is this instance's: send it.
    Claimed,
    /// Someone claimed it over [`CLAIM_LEASE_MS`] ago and never recorded it as
    /// sent (they died, froze or are cut off): it may have gone out. Now ours:
    /// send it, counted in doubt.
    TakenOver { claimed_by: String },
    /// Another instance claimed it moments ago and may be sending it: ask again
    /// later, when it is sent or its claim has lapsed.
    Busy { claimed_by: String },
    /// This instance's claim was taken over while it was away (asked again with
    /// `renew`): the other instance sends it, not this one. Ask again later, as
    /// for `Busy`: should that instance die before it sends, its claim lapses
    /// and is taken over, so the email is not lost behind it.
    ClaimedElsewhere { claimed_by: String },
    /// It went out, recorded by `sent_by`: do not send it again.
    AlreadySent { sent_by: String },
}

/// How long a claim on an email holds off other instances: longer than the
/// consumers' session timeout (10 s), so that an instance which lost its
/// partitions while frozen finds, when it wakes, that its claims were taken
/// over only if it was away that long (see `EmailVerdict::ClaimedElsewhere`).
pub const CLAIM_LEASE_MS: i64 = 15_000;

/// Whom the writer answers: called on the writer's thread.
pub type Reply<T> = Box<dyn FnOnce(T) + Send>;

/// A service's handle on its store: requests are queued to the writer thread.
#[derive(Clone)]
pub struct Store {
    requests: mpsc::Sender<Op>,
    health: Arc<health::Health>,
    id: Arc<OnceLock<String>>,
}

/// How a service opens its store.
pub struct StoreSetup {
    pub url: StoreUrl,
    /// Who this instance is, in the records it writes (`charged_by`, `sent_by`).
    pub instance: String,
    pub retention_days: u32,
}

impl Store {
    /// Starts the writer thread; it connects (and creates or migrates its
    /// tables) at once, and keeps trying while the store is unreachable. A
    /// store this service cannot use ([`StoreError::is_fatal`]) is an error.
    pub fn open(setup: StoreSetup) -> Result<Store, StoreError> {
        let health = Arc::new(health::Health::new(setup.url.shown()));
        let id = Arc::new(OnceLock::new());
        let requests = writer::start(setup, health.clone(), id.clone())?;
        health::Health::watch(&health);
        Ok(Store { requests, health, id })
    }

    /// The store's own id (see `schema.rs`), once it was reached.
    pub fn id(&self) -> Option<&str> {
        self.id.get().map(String::as_str)
    }

    /// Why the store is not keeping up, if a batch has waited for its commit
    /// longer than [`STALL_BOUND`].
    pub fn stalled(&self) -> Option<String> {
        self.health.stalled(STALL_BOUND)
    }

    /// Records `charge` unless its order is recorded already; `reply` is told which.
    pub fn charge(&self, charge: Charge, reply: Reply<ChargeVerdict>) {
        self.send(Op::Charge { charge, reply, verdict: None });
    }

    /// Claims the email of `order_id` for this instance; `reply` says whether to
    /// send it. `renew`: this instance claimed it before, long enough ago that
    /// the claim may have been taken over; it is kept only if it was not.
    pub fn claim_email(&self, order_id: u64, renew: bool, reply: Reply<EmailVerdict>) {
        self.send(Op::ClaimEmail { order_id, renew, reply, verdict: None });
    }

    /// Records that the email of `order_id` went out; `reply` is called once it is recorded.
    pub fn email_sent(&self, order_id: u64, reply: Reply<()>) {
        self.send(Op::EmailSent { order_id, reply });
    }

    fn send(&self, op: Op) {
        // The writer lives as long as the process: it ends only when every handle is gone.
        let _ = self.requests.send(op);
    }
}

/// Order ids are u64; both stores keep a signed 64-bit integer, the same bits.
fn key(order_id: u64) -> i64 {
    order_id as i64
}

/// One request to the writer, and its answer once its batch's transaction ran.
pub(crate) enum Op {
    Charge { charge: Charge, reply: Reply<ChargeVerdict>, verdict: Option<ChargeVerdict> },
    ClaimEmail { order_id: u64, renew: bool, reply: Reply<EmailVerdict>, verdict: Option<EmailVerdict> },
    EmailSent { order_id: u64, reply: Reply<()> },
}

impl Op {
    fn order_id(&self) -> u64 {
        match self {
            Op::Charge { charge, .. } => charge.order_id,
            Op::ClaimEmail { order_id, .. } | Op::EmailSent { order_id, .. } => *order_id,
        }
    }

    /// Tells the requester; a backend answers every op of a batch that it ran.
    fn answer(self) {
        match self {
            Op::Charge { reply, verdict: Some(verdict), .. } => reply(verdict),
            Op::ClaimEmail { reply, verdict: Some(verdict), .. } => reply(verdict),
            Op::EmailSent { reply, .. } => reply(()),
            Op::Charge { charge, .. } => {
                log::error!(target: "store", "no verdict on the charge of order {}", charge.order_id)
            }
            Op::ClaimEmail { order_id, .. } => {
                log::error!(target: "store", "no verdict on the email of order {order_id}")
            }
        }
    }
}

/// A connected store: runs a batch in one transaction.
pub(crate) trait Backend: Send {
    /// The store's own id, drawn when it was made.
    fn id(&self) -> &str;
    /// Runs every op of `batch` in one transaction, filling in their answers;
    /// on an error nothing of it is recorded.
    fn run(&mut self, batch: &mut [Op], instance: &str) -> Result<(), StoreError>;
    /// Deletes rows older than `retention_ms` by the store's clock; how many.
    fn prune(&mut self, retention_ms: i64) -> Result<u64, StoreError>;
}

/// Connects to the store at `url` as the writer `instance`.
fn connect(url: &StoreUrl, instance: &str) -> Result<Box<dyn Backend>, StoreError> {
    Ok(match url {
        StoreUrl::Sqlite(path) => Box::new(sqlite::Sqlite::open(path)?),
        StoreUrl::Postgres(url) => Box::new(postgres::Postgres::connect(url, instance)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_parsed_and_passwords_masked() {
        assert_eq!(StoreUrl::parse("sqlite://a/b.db").unwrap(), StoreUrl::Sqlite("a/b.db".into()));
        assert_eq!(StoreUrl::parse("sqlite:///tmp/b.db").unwrap(), StoreUrl::Sqlite("/tmp/b.db".into()));
        let pg = StoreUrl::parse("postgres://pay:secret@db:5432/payments").unwrap();
        assert_eq!(pg.shown(), "postgres://pay:******@db:5432/payments");
        assert_eq!(StoreUrl::parse("postgres://pay@db/p").unwrap().shown(), "postgres://pay@db/p");
        for bad in ["sqlite://", "payments.db", "mysql://x"] {
            assert!(StoreUrl::parse(bad).unwrap_err().to_string().contains("not a store URL"), "{bad}");
        }
    }
}
