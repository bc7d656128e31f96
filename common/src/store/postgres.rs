//! The PostgreSQL store: for instances on several hosts.
//!
//! Each batch is one transaction at READ COMMITTED: an insert that meets a row
//! another instance is inserting waits for that transaction, then does nothing,
//! and the select after it sees the committed row.

use super::{apply, key, schema, Backend, Charge, Op, RecordedCharge, Statements, StoreError};
use postgres::{Client, NoTls, Transaction};

pub(super) struct Postgres {
    client: Client,
}

impl Postgres {
    pub(super) fn connect(url: &str) -> Result<Postgres, StoreError> {
        let mut client = Client::connect(url, NoTls)?;
        client.batch_execute(&schema("DOUBLE PRECISION"))?;
        Ok(Postgres { client })
    }
}

impl Backend for Postgres {
    fn run(&mut self, batch: &mut [Op], instance: &str, now_ms: i64) -> Result<(), StoreError> {
        let mut transaction = self.client.transaction()?;
        apply(&mut transaction, batch, instance, now_ms)?;
        transaction.commit()?;
        Ok(())
    }

    fn prune(&mut self, before_ms: i64) -> Result<u64, StoreError> {
        let payments = self.client.execute("DELETE FROM payments WHERE charged_at_ms < $1", &[&before_ms])?;
        let emails = self.client.execute("DELETE FROM emails WHERE claimed_at_ms < $1", &[&before_ms])?;
        Ok(payments + emails)
    }
}

impl Statements for Transaction<'_> {
    fn insert_charge(
        &mut self,
        charge: &Charge,
        outcome: &str,
        event: &str,
        instance: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let inserted = self.execute(
            "INSERT INTO payments (order_id, user_id, amount, outcome, reason, event, charged_by, charged_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (order_id) DO NOTHING",
            &[
                &key(charge.order_id),
                &key(charge.user_id),
                &charge.amount,
                &outcome,
                &charge.declined,
                &event,
                &instance,
                &now_ms,
            ],
        )?;
        Ok(inserted == 1)
    }

    fn recorded_charge(&mut self, order_id: u64) -> Result<RecordedCharge, StoreError> {
        let row = self.query_one(
            "SELECT user_id, amount, event, charged_by, charged_at_ms FROM payments WHERE order_id = $1",
            &[&key(order_id)],
        )?;
        Ok(RecordedCharge {
            user_id: row.try_get::<_, i64>(0)? as u64,
            amount: row.try_get(1)?,
            event: row.try_get::<_, String>(2)?.into_bytes(),
            charged_by: row.try_get(3)?,
            charged_at_ms: row.try_get(4)?,
        })
    }

    fn insert_claim(&mut self, order_id: u64, instance: &str, now_ms: i64) -> Result<bool, StoreError> {
        let inserted = self.execute(
            "INSERT INTO emails (order_id, claimed_by, claimed_at_ms) VALUES ($1, $2, $3) ON CONFLICT (order_id) DO NOTHING",
            &[&key(order_id), &instance, &now_ms],
        )?;
        Ok(inserted == 1)
    }

    fn claim(&mut self, order_id: u64) -> Result<(String, i64, Option<String>), StoreError> {
        let row = self.query_one(
            "SELECT claimed_by, claimed_at_ms, sent_by FROM emails WHERE order_id = $1",
            &[&key(order_id)],
        )?;
        Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
    }

    fn take_over(
        &mut self,
        order_id: u64,
        instance: &str,
        now_ms: i64,
        in_doubt: bool,
    ) -> Result<(), StoreError> {
        self.execute(
            "UPDATE emails SET claimed_by = $2, claimed_at_ms = $3, in_doubt = in_doubt + $4 WHERE order_id = $1",
            &[&key(order_id), &instance, &now_ms, &i32::from(in_doubt)],
        )?;
        Ok(())
    }

    fn sent(&mut self, order_id: u64, instance: &str, now_ms: i64) -> Result<(), StoreError> {
        self.execute(
            "UPDATE emails SET sent_by = $2, sent_at_ms = $3 WHERE order_id = $1",
            &[&key(order_id), &instance, &now_ms],
        )?;
        Ok(())
    }
}
