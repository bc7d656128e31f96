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
//! callback. A store it cannot reach at start is an error; one that goes away
//! later, it retries the batch on, saying so every few seconds: nothing is
//! charged or emailed that was not recorded.
//!
//! By what it stores: charges (`charges.rs`), emails (`emails.rs`), the rules
//! both backends apply (`rules.rs`), the backends (`backend.rs`, `sqlite.rs`,
//! `postgres.rs`), the schema (`schema.rs`, `prune.rs`); where it is (`url.rs`).

mod backend;
mod charges;
mod emails;
mod error;
mod health;
mod postgres;
mod prune;
mod rules;
mod schema;
mod sqlite;
mod url;
mod writer;

use backend::Op;
use std::sync::{mpsc, Arc};

pub use charges::{Charge, ChargeVerdict, RecordedCharge};
pub use emails::{EmailVerdict, CLAIM_LEASE_MS};
pub use error::StoreError;
pub use health::STALL_BOUND;
pub use url::StoreUrl;
pub use writer::MAX_BATCH;

/// Whom the writer answers: called on the writer's thread.
pub type Reply<T> = Box<dyn FnOnce(T) + Send>;

/// A service's handle on its store: requests are queued to the writer thread.
#[derive(Clone)]
pub struct Store {
    requests: mpsc::Sender<Op>,
    health: Arc<health::Health>,
    id: Arc<str>,
}

/// How a service opens its store.
pub struct StoreSetup {
    pub url: StoreUrl,
    /// Who this instance is, in the records it writes (`charged_by`, `sent_by`).
    pub instance: String,
    pub retention_days: u32,
    /// The log barrier: writes out the log lines so far, and says whether they
    /// were written. What a batch records is told in log lines (an email is its
    /// lines), so a batch is committed only once they are out of the process.
    pub log_written: fn() -> bool,
}

impl Store {
    /// Starts the writer thread; it connects (and creates or migrates its
    /// tables) at once. A store this service cannot reach or use now is an
    /// error; one that goes away later is retried while events wait.
    pub fn open(setup: StoreSetup) -> Result<Store, StoreError> {
        let health = Arc::new(health::Health::new(setup.url.shown()));
        let (requests, id) = writer::start(setup, health.clone())?;
        health::Health::watch(&health);
        Ok(Store { requests, health, id: id.into() })
    }

    /// The store's own id (see `schema.rs`).
    pub fn id(&self) -> &str {
        &self.id
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
