//! The SQLite store: one file, shared by the instances of a service on one host.
//!
//! WAL journal (readers never wait for the writer) and `synchronous=FULL` (a
//! recorded charge survives a power cut, not only a crash); each batch takes
//! the write lock at its start (`BEGIN IMMEDIATE`), and an instance waits up to
//! `busy_timeout` for another's batch to end. Times are the host's clock as
//! SQLite reads it (`now_ms!`): every instance of a file shares the host.

use super::backend::{key, Backend, Op};
use super::prune::{self, Pruning};
use super::rules::{apply, ChargeRow, ClaimRow, Statements};
use super::schema::{self, Plan};
use super::{RecordedCharge, StoreError};
use foldhash::{HashMap, HashSet};
use rusqlite::{
    params, params_from_iter, CachedStatement, Connection, OptionalExtension, Transaction,
    TransactionBehavior,
};
use std::time::Duration;

/// Now, in ms since the Unix epoch, in SQLite's SQL (a macro: `concat!` puts
/// it into each statement's text at compile time).
macro_rules! now_ms {
    () => {
        "CAST(unixepoch('subsec') * 1000 AS INTEGER)"
    };
}

/// Which file a path names: its device and inode.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct FileId(u64, u64);

/// The file at `path` now, if there is one.
pub(super) fn file_id(path: &str) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|file| FileId(file.dev(), file.ino()))
}

pub(super) struct Sqlite {
    connection: Connection,
    id: String,
}

impl Sqlite {
    pub(super) fn open(path: &str) -> Result<Sqlite, StoreError> {
        let mut connection = Connection::open(path)?;
        connection.busy_timeout(Duration::from_secs(5))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        prepare_tables(&mut connection, path)?;
        let id = connection.query_row(schema::ITS_ID, [], |row| row.get(0))?;
        Ok(Sqlite { connection, id })
    }
}

/// Creates the tables, or migrates those of an older service, under the write
/// lock: instances opening one file at once do it once.
fn prepare_tables(connection: &mut Connection, path: &str) -> Result<(), StoreError> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = transaction.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let has_tables: bool = transaction.query_row(
        "SELECT count(*) = 2 FROM sqlite_master WHERE type = 'table' AND name IN ('payments', 'emails')",
        [],
        |row| row.get(0),
    )?;
    // Version 1 kept no version: its files say 0.
    let found = match (version, has_tables) {
        (0, false) => None,
        (0, true) => Some(1),
        (version, _) => Some(version),
    };
    match schema::plan(found)? {
        Plan::UpToDate => return Ok(()),
        Plan::Create => transaction.execute_batch(&schema::tables("INTEGER", "REAL"))?,
        Plan::Migrate { from: 1 } => transaction.execute_batch(&format!(
            "DROP INDEX IF EXISTS payments_charged_at;
             DROP INDEX IF EXISTS emails_claimed_at;
             ALTER TABLE payments RENAME TO payments_v1;
             ALTER TABLE emails RENAME TO emails_v1;
             {}
             INSERT INTO payments SELECT * FROM payments_v1;
             INSERT INTO emails SELECT * FROM emails_v1;
             DROP TABLE payments_v1;
             DROP TABLE emails_v1;",
            schema::tables("INTEGER", "REAL")
        ))?,
        Plan::Migrate { .. } => {
            transaction.execute_batch(schema::DROP_TIME_INDEXES)?;
            transaction.execute_batch(schema::IDENTITY)?;
            transaction.execute_batch(prune::MARKS)?;
        }
    }
    transaction.execute(schema::NAME_IT, [schema::new_id()])?;
    transaction.execute(&prune::MARK_NOW.replace("{now}", now_ms!()), [])?;
    if let Some(from) = found {
        log::info!(target: "store", "sqlite://{path}: migrated from schema version {from} to {}", schema::VERSION);
    }
    transaction.pragma_update(None, "user_version", schema::VERSION)?;
    transaction.commit()?;
    Ok(())
}

impl Backend for Sqlite {
    fn id(&self) -> &str {
        &self.id
    }

    fn run(&mut self, batch: &mut [Op], instance: &str) -> Result<(), StoreError> {
        let mut transaction = self.connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        apply(&mut transaction, batch, instance)?;
        transaction.commit()?;
        Ok(())
    }

    fn prune(&mut self, retention_ms: i64) -> Result<u64, StoreError> {
        let mut transaction = self.connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let pruned = prune::prune(&mut transaction, now_ms!(), retention_ms)?;
        transaction.commit()?;
        Ok(pruned)
    }
}

impl Pruning for Transaction<'_> {
    fn change(&mut self, sql: &str, params: &[i64]) -> Result<u64, StoreError> {
        Ok(Connection::execute(self, sql, params_from_iter(params))? as u64)
    }

    fn select_mark(&mut self, sql: &str, params: &[i64]) -> Result<Option<[i64; 3]>, StoreError> {
        let mark =
            self.query_row(sql, params_from_iter(params), |row| Ok([row.get(0)?, row.get(1)?, row.get(2)?]));
        Ok(mark.optional()?)
    }
}

/// The row `select` finds for each of `order_ids` that has one, made by `read`.
fn rows_by_id<T>(
    select: &mut CachedStatement<'_>,
    order_ids: &[u64],
    read: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<HashMap<u64, T>, StoreError> {
    let mut found = HashMap::default();
    for &order_id in order_ids {
        if let Some(row) = select.query_row([key(order_id)], &read).optional()? {
            found.insert(order_id, row);
        }
    }
    Ok(found)
}

impl Statements for Transaction<'_> {
    fn insert_charges(&mut self, rows: &[ChargeRow<'_>], instance: &str) -> Result<HashSet<u64>, StoreError> {
        let mut insert = self.prepare_cached(concat!(
            "INSERT INTO payments (order_id, user_id, amount, outcome, reason, event, charged_by, charged_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ",
            now_ms!(),
            ") ON CONFLICT (order_id) DO NOTHING"
        ))?;
        let mut inserted = HashSet::default();
        for ChargeRow { charge, outcome, event } in rows {
            let row = params![
                key(charge.order_id),
                key(charge.user_id),
                charge.amount,
                outcome,
                charge.declined,
                event,
                instance
            ];
            if insert.execute(row)? == 1 {
                inserted.insert(charge.order_id);
            }
        }
        Ok(inserted)
    }

    fn recorded_charges(&mut self, order_ids: &[u64]) -> Result<HashMap<u64, RecordedCharge>, StoreError> {
        let mut select = self.prepare_cached(
            "SELECT user_id, amount, event, charged_by, charged_at_ms FROM payments WHERE order_id = ?1",
        )?;
        rows_by_id(&mut select, order_ids, |row| {
            Ok(RecordedCharge {
                user_id: row.get::<_, i64>(0)? as u64,
                amount: row.get(1)?,
                event: row.get::<_, String>(2)?.into_bytes(),
                charged_by: row.get(3)?,
                charged_at_ms: row.get(4)?,
            })
        })
    }

    fn insert_claims(&mut self, order_ids: &[u64], instance: &str) -> Result<HashSet<u64>, StoreError> {
        let mut insert = self.prepare_cached(concat!(
            "INSERT INTO emails (order_id, claimed_by, claimed_at_ms) VALUES (?1, ?2, ",
            now_ms!(),
            ") ON CONFLICT (order_id) DO NOTHING"
        ))?;
        let mut inserted = HashSet::default();
        for &order_id in order_ids {
            if insert.execute(params![key(order_id), instance])? == 1 {
                inserted.insert(order_id);
            }
        }
        Ok(inserted)
    }

    fn claims(&mut self, order_ids: &[u64]) -> Result<HashMap<u64, ClaimRow>, StoreError> {
        let mut select = self.prepare_cached(concat!(
            "SELECT claimed_by, claimed_at_ms, ",
            now_ms!(),
            " - claimed_at_ms, sent_by FROM emails WHERE order_id = ?1"
        ))?;
        rows_by_id(&mut select, order_ids, |row| {
            Ok(ClaimRow {
                claimed_by: row.get(0)?,
                claimed_at_ms: row.get(1)?,
                age_ms: row.get(2)?,
                sent_by: row.get(3)?,
            })
        })
    }

    fn take_over(
        &mut self,
        order_id: u64,
        instance: &str,
        in_doubt: bool,
        seen: &ClaimRow,
    ) -> Result<bool, StoreError> {
        let updated = self
            .prepare_cached(concat!(
                "UPDATE emails SET claimed_by = ?2, claimed_at_ms = ",
                now_ms!(),
                ", in_doubt = in_doubt + ?3
                 WHERE order_id = ?1 AND claimed_by = ?4 AND claimed_at_ms = ?5 AND sent_by IS NULL"
            ))?
            .execute(params![
                key(order_id),
                instance,
                i64::from(in_doubt),
                seen.claimed_by,
                seen.claimed_at_ms
            ])?;
        Ok(updated == 1)
    }

    fn sent(&mut self, order_ids: &[u64], instance: &str) -> Result<(), StoreError> {
        let mut update = self.prepare_cached(concat!(
            "UPDATE emails SET sent_by = ?2, sent_at_ms = ",
            now_ms!(),
            " WHERE order_id = ?1"
        ))?;
        for &order_id in order_ids {
            update.execute(params![key(order_id), instance])?;
        }
        Ok(())
    }
}
