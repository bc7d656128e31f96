//! The store's tables, and their version: a store made by an older service is
//! migrated in place, one made by a newer service is refused.
//!
//! Version 1 keyed both tables by `BIGINT PRIMARY KEY`, which SQLite keeps as
//! a table and a unique index beside it; version 2 keys them by `INTEGER
//! PRIMARY KEY` there (the rowid: one B-tree a row fewer per insert). The
//! tables are otherwise the same in both stores, and on PostgreSQL the two
//! versions are the same tables. Version 3 adds the store's own id
//! (`store_identity`, one row drawn when it is made), which the instances of
//! a group compare, so that two of them never fence on two stores unawares.
//! SQLite keeps the version in `PRAGMA user_version`, PostgreSQL in the table
//! `store_schema`.

use super::StoreError;

/// The version this service writes.
pub(super) const VERSION: i64 = 3;

/// The tables of [`VERSION`], with `key` the order id's column type and
/// `double` the amount's.
pub(super) fn tables(key: &str, double: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS payments (
            order_id {key} PRIMARY KEY,
            user_id BIGINT NOT NULL,
            amount {double} NOT NULL,
            outcome TEXT NOT NULL,
            reason TEXT,
            event TEXT NOT NULL,
            charged_by TEXT NOT NULL,
            charged_at_ms BIGINT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS emails (
            order_id {key} PRIMARY KEY,
            claimed_by TEXT NOT NULL,
            claimed_at_ms BIGINT NOT NULL,
            sent_by TEXT,
            sent_at_ms BIGINT,
            in_doubt INTEGER NOT NULL DEFAULT 0
        );
        {IDENTITY}
        {MARKS}",
        MARKS = super::prune::MARKS
    )
}

/// What version 3 drops: the time indexes, which each insert paid for (see `prune.rs`).
pub(super) const DROP_TIME_INDEXES: &str =
    "DROP INDEX IF EXISTS payments_charged_at; DROP INDEX IF EXISTS emails_claimed_at;";

/// The store's id: made with its tables, or by the migration that adds it.
pub(super) const IDENTITY: &str = "CREATE TABLE IF NOT EXISTS store_identity (id TEXT NOT NULL);";

/// Gives the store an id (a parameter: a fresh random one) unless it has one.
pub(super) const NAME_IT: &str =
    "INSERT INTO store_identity (id) SELECT CAST($1 AS TEXT) WHERE NOT EXISTS (SELECT 1 FROM store_identity)";

/// The store's id.
pub(super) const ITS_ID: &str = "SELECT id FROM store_identity";

/// A fresh store id.
pub(super) fn new_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// What to do with a store whose tables are at `found` (`None`: it has none).
#[derive(Debug, PartialEq)]
pub(super) enum Plan {
    Create,
    /// Tables of an older version (`from`), to bring up to [`VERSION`]'s.
    Migrate {
        from: i64,
    },
    UpToDate,
}

pub(super) fn plan(found: Option<i64>) -> Result<Plan, StoreError> {
    match found {
        None => Ok(Plan::Create),
        Some(version) if version > VERSION => Err(StoreError::SchemaNewer { found: version, known: VERSION }),
        Some(VERSION) => Ok(Plan::UpToDate),
        Some(from) => Ok(Plan::Migrate { from }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_is_created_migrated_used_or_refused_by_its_version() {
        assert_eq!(plan(None).unwrap(), Plan::Create);
        assert_eq!(plan(Some(1)).unwrap(), Plan::Migrate { from: 1 });
        assert_eq!(plan(Some(2)).unwrap(), Plan::Migrate { from: 2 });
        assert_eq!(plan(Some(VERSION)).unwrap(), Plan::UpToDate);
        let newer = plan(Some(VERSION + 1)).unwrap_err().to_string();
        assert!(newer.contains("schema is version 4, newer than this service's (3)"), "{newer}");
    }
}
