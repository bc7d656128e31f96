//! Pruning by key range: rows past the retention are found by their order id,
//! with no index on their time, which each insert would otherwise pay for.
//!
//! Order ids grow with time (order-service makes them from the clock). At each
//! prune the store notes a mark: the time, and for each table an id above every
//! id it holds. A row recorded before a mark's time has an id below the mark's.
//! So a prune takes the latest mark older than the retention and deletes, in
//! the id range below it, the rows older than the retention: a range scan of
//! the rowid (SQLite) or primary key (PostgreSQL). A row never goes earlier
//! than the retention; one goes at most a prune interval later than it would
//! by time alone, plus, for a row whose id is out of line (a foreign producer's),
//! until a mark passes its id.
//!
//! Marks are bounded: those older than the one a prune used are deleted, so a
//! store keeps about one per prune interval of the retention, per instance.

use super::StoreError;

/// The statements of a prune, in either store's SQL, with `{now}` standing
/// for the store's clock in ms.
pub(super) trait Pruning {
    /// Runs `sql` with `params`; how many rows it changed.
    fn change(&mut self, sql: &str, params: &[i64]) -> Result<u64, StoreError>;
    /// The mark `sql` selects (time, payments' bound, emails' bound), if any.
    fn select_mark(&mut self, sql: &str, params: &[i64]) -> Result<Option<[i64; 3]>, StoreError>;
}

/// The marks' table (one of the store's tables, see `schema.rs`).
pub(super) const MARKS: &str = "CREATE TABLE IF NOT EXISTS prune_marks (
            at_ms BIGINT NOT NULL,
            payments_below BIGINT NOT NULL,
            emails_below BIGINT NOT NULL
        );";

/// A mark of now: above every id the tables hold. A store notes one when it
/// is made or migrated, then at each prune.
pub(super) const MARK_NOW: &str = "INSERT INTO prune_marks (at_ms, payments_below, emails_below)
    SELECT {now}, coalesce((SELECT max(order_id) FROM payments), -1) + 1,
           coalesce((SELECT max(order_id) FROM emails), -1) + 1";

const LATEST_PAST_RETENTION: &str = "SELECT at_ms, payments_below, emails_below FROM prune_marks
    WHERE at_ms <= {now} - $1 ORDER BY at_ms DESC LIMIT 1";
const PRUNE_PAYMENTS: &str = "DELETE FROM payments WHERE order_id < $1 AND charged_at_ms < {now} - $2";
const PRUNE_EMAILS: &str = "DELETE FROM emails WHERE order_id < $1 AND claimed_at_ms < {now} - $2";
const PRUNE_MARKS: &str = "DELETE FROM prune_marks WHERE at_ms < $1";

/// Deletes what is older than the retention among the rows below the latest
/// mark older than it, in one transaction `tx` whose clock is `now` in its SQL;
/// how many rows. Then notes a mark of now.
pub(super) fn prune(tx: &mut impl Pruning, now: &str, retention_ms: i64) -> Result<u64, StoreError> {
    let sql = |template: &str| template.replace("{now}", now);
    let mut pruned = 0;
    if let Some([at_ms, payments_below, emails_below]) =
        tx.select_mark(&sql(LATEST_PAST_RETENTION), &[retention_ms])?
    {
        pruned += tx.change(&sql(PRUNE_PAYMENTS), &[payments_below, retention_ms])?;
        pruned += tx.change(&sql(PRUNE_EMAILS), &[emails_below, retention_ms])?;
        tx.change(PRUNE_MARKS, &[at_ms])?;
    }
    tx.change(&sql(MARK_NOW), &[])?;
    Ok(pruned)
}
