//! The PostgreSQL store: for instances on several hosts.
//!
//! Each batch is one transaction at READ COMMITTED: an insert that meets a row
//! another instance is inserting waits for that transaction, then does nothing,
//! and the select after it sees the committed row; a takeover is a
//! compare-and-set whose row count says whether it won. Times are the server's
//! (`clock_timestamp()`), one clock for every host.
//!
//! Every wait is bounded (`BOUNDS`, and the client's TCP settings in
//! `connect`): a zombie frozen or cut off inside a batch loses its session, and
//! the row locks its successor waits for, within `idle_in_transaction_session_timeout`;
//! a server that stops answering fails the batch, which the writer retries on a
//! new connection. The schema is created only where it is missing, so a
//! reconnect takes no table lock.
//!
//! Statements are prepared once per connection, and each takes a batch's
//! orders as arrays (`unnest`, `= ANY`): a batch is a few round trips, not two per order.

use super::backend::{key, Backend, Op};
use super::prune::{self, Pruning};
use super::rules::{apply, ChargeRow, ClaimRow, Statements};
use super::schema::{self, Plan};
use super::{RecordedCharge, StoreError};
use foldhash::{HashMap, HashSet};
use postgres::types::ToSql;
use postgres::{Client, Config, GenericClient, NoTls, Row, Statement, Transaction};
use std::time::Duration;

/// Now, in ms since the Unix epoch, in PostgreSQL's SQL (a macro: `concat!`
/// puts it into each statement's text at compile time).
macro_rules! now_ms {
    () => {
        "(extract(epoch FROM clock_timestamp()) * 1000)::int8"
    };
}

/// The session's bounds on waiting: for a lock (another instance's batch on the
/// same orders), for a statement, and for a transaction left open by its
/// client (frozen or cut off), whose session the server then ends.
const BOUNDS: &str = "SET lock_timeout = '5s';
    SET statement_timeout = '30s';
    SET idle_in_transaction_session_timeout = '10s'";

/// How long connecting may take, unless the URL says.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// TCP keepalives and the user timeout: a server that vanished (a cut link,
/// a dead host) is noticed in seconds, not after Linux's 2 h 11 min.
const KEEPALIVES_IDLE: Duration = Duration::from_secs(10);
const KEEPALIVES_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVES_RETRIES: u32 = 3;
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) struct Postgres {
    client: Client,
    prepared: Prepared,
    id: String,
}

/// The statements of a batch, prepared once per connection.
struct Prepared {
    insert_charges: Statement,
    recorded_charges: Statement,
    insert_claims: Statement,
    claims: Statement,
    take_over: Statement,
    sent: Statement,
}

impl Postgres {
    /// Connects as `instance`, which is also the session's `application_name`
    /// (unless the URL names one): `pg_stat_activity` shows whose session holds what.
    pub(super) fn connect(url: &str, instance: &str) -> Result<Postgres, StoreError> {
        let mut config: Config = url.parse()?;
        if config.get_application_name().is_none() {
            config.application_name(instance);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config
            .keepalives(true)
            .keepalives_idle(KEEPALIVES_IDLE)
            .keepalives_interval(KEEPALIVES_INTERVAL)
            .keepalives_retries(KEEPALIVES_RETRIES)
            .tcp_user_timeout(TCP_USER_TIMEOUT);
        let mut client = config.connect(NoTls)?;
        client.batch_execute(BOUNDS)?;
        prepare_tables(&mut client)?;
        let id = client.query_one(schema::ITS_ID, &[])?.try_get(0)?;
        let prepared = Prepared::on(&mut client)?;
        Ok(Postgres { client, prepared, id })
    }
}

/// Creates the tables where they are missing, and records their version; one
/// instance at a time (an advisory lock), and only where something is missing,
/// so that a reconnect takes no table lock.
fn prepare_tables(client: &mut Client) -> Result<(), StoreError> {
    if schema::plan(found_version(client)?)? == Plan::UpToDate {
        return Ok(());
    }
    let mut transaction = client.transaction()?;
    transaction.execute("SELECT pg_advisory_xact_lock(4242001)", &[])?;
    if schema::plan(found_version(&mut transaction)?)? != Plan::UpToDate {
        // Version 1's tables are version 2's here; version 3 adds the store's id.
        transaction.batch_execute(schema::DROP_TIME_INDEXES)?;
        transaction.batch_execute(&schema::tables("BIGINT", "DOUBLE PRECISION"))?;
        transaction.execute(schema::NAME_IT, &[&schema::new_id()])?;
        transaction.execute(&prune::MARK_NOW.replace("{now}", now_ms!()), &[])?;
        transaction.batch_execute("CREATE TABLE IF NOT EXISTS store_schema (version BIGINT NOT NULL)")?;
        transaction.execute("INSERT INTO store_schema (version) VALUES ($1)", &[&schema::VERSION])?;
    }
    transaction.commit()?;
    Ok(())
}

/// The version of the tables there (`None`: there are none; 1: tables
/// without a recorded version).
fn found_version(client: &mut impl GenericClient) -> Result<Option<i64>, StoreError> {
    let tables = client.query_one(
        "SELECT to_regclass('store_schema') IS NOT NULL,
                to_regclass('payments') IS NOT NULL AND to_regclass('emails') IS NOT NULL",
        &[],
    )?;
    Ok(match (tables.try_get::<_, bool>(0)?, tables.try_get::<_, bool>(1)?) {
        (true, _) => client.query_one("SELECT max(version) FROM store_schema", &[])?.try_get(0)?,
        (false, true) => Some(1),
        (false, false) => None,
    })
}

impl Prepared {
    fn on(client: &mut Client) -> Result<Prepared, StoreError> {
        Ok(Prepared {
            insert_charges: client.prepare(concat!(
                "INSERT INTO payments (order_id, user_id, amount, outcome, reason, event, charged_by, charged_at_ms)
                 SELECT o, u, a, oc, r, e, $7, ",
                now_ms!(),
                " FROM unnest($1::int8[], $2::int8[], $3::float8[], $4::text[], $5::text[], $6::text[])
                     AS c (o, u, a, oc, r, e)
                 ON CONFLICT (order_id) DO NOTHING RETURNING order_id"
            ))?,
            recorded_charges: client.prepare(
                "SELECT order_id, user_id, amount, event, charged_by, charged_at_ms FROM payments
                 WHERE order_id = ANY($1)",
            )?,
            insert_claims: client.prepare(concat!(
                "INSERT INTO emails (order_id, claimed_by, claimed_at_ms) SELECT o, $2, ",
                now_ms!(),
                " FROM unnest($1::int8[]) AS c (o) ON CONFLICT (order_id) DO NOTHING RETURNING order_id"
            ))?,
            claims: client.prepare(concat!(
                "SELECT order_id, claimed_by, claimed_at_ms, ",
                now_ms!(),
                " - claimed_at_ms, sent_by FROM emails WHERE order_id = ANY($1)"
            ))?,
            take_over: client.prepare(concat!(
                "UPDATE emails SET claimed_by = $2, claimed_at_ms = ",
                now_ms!(),
                ", in_doubt = in_doubt + $3
                 WHERE order_id = $1 AND claimed_by = $4 AND claimed_at_ms = $5 AND sent_by IS NULL"
            ))?,
            sent: client.prepare(concat!(
                "UPDATE emails SET sent_by = $2, sent_at_ms = ",
                now_ms!(),
                " WHERE order_id = ANY($1)"
            ))?,
        })
    }
}

impl Backend for Postgres {
    fn id(&self) -> &str {
        &self.id
    }

    fn run(&mut self, batch: &mut [Op], instance: &str) -> Result<(), StoreError> {
        let mut transaction = Batch { tx: self.client.transaction()?, prepared: &self.prepared };
        apply(&mut transaction, batch, instance)?;
        transaction.tx.commit()?;
        Ok(())
    }

    fn prune(&mut self, retention_ms: i64) -> Result<u64, StoreError> {
        let mut transaction = self.client.transaction()?;
        let pruned = prune::prune(&mut transaction, now_ms!(), retention_ms)?;
        transaction.commit()?;
        Ok(pruned)
    }
}

/// The parameters of a prune's statement, as the client takes them.
fn sql_params(params: &[i64]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|param| param as &(dyn ToSql + Sync)).collect()
}

impl Pruning for Transaction<'_> {
    fn change(&mut self, sql: &str, params: &[i64]) -> Result<u64, StoreError> {
        Ok(Transaction::execute(self, sql, &sql_params(params))?)
    }

    fn select_mark(&mut self, sql: &str, params: &[i64]) -> Result<Option<[i64; 3]>, StoreError> {
        let Some(row) = self.query_opt(sql, &sql_params(params))? else { return Ok(None) };
        Ok(Some([row.try_get(0)?, row.try_get(1)?, row.try_get(2)?]))
    }
}

/// A batch's transaction and the connection's statements.
struct Batch<'a> {
    tx: Transaction<'a>,
    prepared: &'a Prepared,
}

/// Order ids as the store keeps them.
fn keys(order_ids: &[u64]) -> Vec<i64> {
    order_ids.iter().copied().map(key).collect()
}

/// The order ids of rows returned, whose first column is one.
fn ids_of(rows: &[Row]) -> Result<HashSet<u64>, StoreError> {
    rows.iter().map(|row| Ok(row.try_get::<_, i64>(0)? as u64)).collect()
}

impl Statements for Batch<'_> {
    fn insert_charges(&mut self, rows: &[ChargeRow<'_>], instance: &str) -> Result<HashSet<u64>, StoreError> {
        let order_ids: Vec<i64> = rows.iter().map(|row| key(row.charge.order_id)).collect();
        let user_ids: Vec<i64> = rows.iter().map(|row| key(row.charge.user_id)).collect();
        let amounts: Vec<f64> = rows.iter().map(|row| row.charge.amount).collect();
        let outcomes: Vec<&str> = rows.iter().map(|row| row.outcome).collect();
        let reasons: Vec<Option<&str>> = rows.iter().map(|row| row.charge.declined.as_deref()).collect();
        let events: Vec<&str> = rows.iter().map(|row| &*row.event).collect();
        ids_of(&self.tx.query(
            &self.prepared.insert_charges,
            &[&order_ids, &user_ids, &amounts, &outcomes, &reasons, &events, &instance],
        )?)
    }

    fn recorded_charges(&mut self, order_ids: &[u64]) -> Result<HashMap<u64, RecordedCharge>, StoreError> {
        let rows = self.tx.query(&self.prepared.recorded_charges, &[&keys(order_ids)])?;
        rows.iter()
            .map(|row| {
                let recorded = RecordedCharge {
                    user_id: row.try_get::<_, i64>(1)? as u64,
                    amount: row.try_get(2)?,
                    event: row.try_get::<_, String>(3)?.into_bytes(),
                    charged_by: row.try_get(4)?,
                    charged_at_ms: row.try_get(5)?,
                };
                Ok((row.try_get::<_, i64>(0)? as u64, recorded))
            })
            .collect()
    }

    fn insert_claims(&mut self, order_ids: &[u64], instance: &str) -> Result<HashSet<u64>, StoreError> {
        ids_of(&self.tx.query(&self.prepared.insert_claims, &[&keys(order_ids), &instance])?)
    }

    fn claims(&mut self, order_ids: &[u64]) -> Result<HashMap<u64, ClaimRow>, StoreError> {
        let rows = self.tx.query(&self.prepared.claims, &[&keys(order_ids)])?;
        rows.iter()
            .map(|row| {
                let claim = ClaimRow {
                    claimed_by: row.try_get(1)?,
                    claimed_at_ms: row.try_get(2)?,
                    age_ms: row.try_get(3)?,
                    sent_by: row.try_get(4)?,
                };
                Ok((row.try_get::<_, i64>(0)? as u64, claim))
            })
            .collect()
    }

    fn take_over(
        &mut self,
        order_id: u64,
        instance: &str,
        in_doubt: bool,
        seen: &ClaimRow,
    ) -> Result<bool, StoreError> {
        let updated = self.tx.execute(
            &self.prepared.take_over,
            &[&key(order_id), &instance, &i32::from(in_doubt), &seen.claimed_by, &seen.claimed_at_ms],
        )?;
        Ok(updated == 1)
    }

    fn sent(&mut self, order_ids: &[u64], instance: &str) -> Result<(), StoreError> {
        self.tx.execute(&self.prepared.sent, &[&keys(order_ids), &instance])?;
        Ok(())
    }
}
