//! Why a store cannot be opened or written, and which of those trying again cannot mend.

use thiserror::Error;

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
    #[error("cannot be opened at start ({source}): {fix}, then start the service again")]
    AtStart { source: Box<StoreError>, fix: &'static str },
    #[error("order {0}'s row was there, then gone within one transaction (pruned meanwhile?): trying the batch again")]
    Vanished(u64),
}

impl StoreError {
    /// Whether trying again cannot help: the store is there, but not one this
    /// service can use.
    pub fn is_fatal(&self) -> bool {
        matches!(self, StoreError::SchemaNewer { .. })
    }

    /// Whether another instance holds what this one waited for (SQLite's write
    /// lock, a PostgreSQL lock) past the bound: the store is there, and busy.
    pub fn is_contention(&self) -> bool {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            }
            StoreError::Postgres(e) => e.code() == Some(&::postgres::error::SqlState::LOCK_NOT_AVAILABLE),
            _ => false,
        }
    }
}
