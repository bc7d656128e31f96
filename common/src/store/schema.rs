//! The store's tables, and their version: a store made by an older service is
//! migrated in place, one made by a newer service is refused.
//!
//! Version 1 keyed both tables by `BIGINT PRIMARY KEY`, which SQLite keeps as
//! a table and a unique index beside it; version 2 keys them by `INTEGER
//! PRIMARY KEY` there (the rowid: one B-tree a row fewer per insert). The
//! tables are otherwise the same in both stores, and on PostgreSQL the two
//! versions are the same tables. SQLite keeps the version in `PRAGMA
//! user_version`, PostgreSQL in the table `store_schema`.

use super::StoreError;

/// The version this service writes.
pub(super) const VERSION: i64 = 2;

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
        CREATE INDEX IF NOT EXISTS payments_charged_at ON payments (charged_at_ms);
        CREATE TABLE IF NOT EXISTS emails (
            order_id {key} PRIMARY KEY,
            claimed_by TEXT NOT NULL,
            claimed_at_ms BIGINT NOT NULL,
            sent_by TEXT,
            sent_at_ms BIGINT,
            in_doubt INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX IF NOT EXISTS emails_claimed_at ON emails (claimed_at_ms);"
    )
}

/// What to do with a store whose tables are at `found` (`None`: it has none).
#[derive(Debug, PartialEq)]
pub(super) enum Plan {
    Create,
    /// Tables of version 1, to rebuild as [`VERSION`]'s.
    Migrate,
    UpToDate,
}

pub(super) fn plan(found: Option<i64>) -> Result<Plan, StoreError> {
    match found {
        None => Ok(Plan::Create),
        Some(version) if version > VERSION => Err(StoreError::SchemaNewer { found: version, known: VERSION }),
        Some(VERSION) => Ok(Plan::UpToDate),
        Some(_) => Ok(Plan::Migrate),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_is_created_migrated_used_or_refused_by_its_version() {
        assert_eq!(plan(None).unwrap(), Plan::Create);
        assert_eq!(plan(Some(1)).unwrap(), Plan::Migrate);
        assert_eq!(plan(Some(VERSION)).unwrap(), Plan::UpToDate);
        let newer = plan(Some(VERSION + 1)).unwrap_err().to_string();
        assert!(newer.contains("schema is version 3, newer than this service's (2)"), "{newer}");
    }
}
