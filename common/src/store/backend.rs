//! What the writer thread runs: one request ([`Op`]) and its answer, and a
//! connected store ([`Backend`]) that runs a batch of them in one transaction.

use super::charges::{Charge, ChargeVerdict};
use super::emails::EmailVerdict;
use super::error::StoreError;
use super::url::StoreUrl;
use super::{postgres, sqlite, Reply};

/// Order ids are u64; both stores keep a signed 64-bit integer, the same bits.
pub(super) fn key(order_id: u64) -> i64 {
    order_id as i64
}

/// One request to the writer, and its answer once its batch's transaction ran.
pub(crate) enum Op {
    Charge { charge: Charge, reply: Reply<ChargeVerdict>, verdict: Option<ChargeVerdict> },
    ClaimEmail { order_id: u64, renew: bool, reply: Reply<EmailVerdict>, verdict: Option<EmailVerdict> },
    EmailSent { order_id: u64, reply: Reply<()> },
}

impl Op {
    pub(super) fn order_id(&self) -> u64 {
        match self {
            Op::Charge { charge, .. } => charge.order_id,
            Op::ClaimEmail { order_id, .. } | Op::EmailSent { order_id, .. } => *order_id,
        }
    }

    /// Tells the requester; a backend answers every op of a batch that it ran.
    pub(super) fn answer(self) {
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
pub(super) fn connect(url: &StoreUrl, instance: &str) -> Result<Box<dyn Backend>, StoreError> {
    Ok(match url {
        StoreUrl::Sqlite(path) => Box::new(sqlite::Sqlite::open(path)?),
        StoreUrl::Postgres(url) => Box::new(postgres::Postgres::connect(url, instance)?),
    })
}
