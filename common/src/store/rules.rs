//! The rules of a batch, the same for both stores: what a charge meets, what a
//! claim on an email meets; each backend gives the statements (`Statements`),
//! in its SQL, that these rules run inside the batch's transaction.
//!
//! A statement takes the whole batch's orders at once (on PostgreSQL, one
//! multi-row statement over arrays: a round trip per batch, not per order);
//! only what is rare, a claim to renew or take over, is a statement per order.

use super::{Charge, ChargeVerdict, EmailVerdict, Op, RecordedCharge, StoreError, CLAIM_LEASE_MS};
use foldhash::{HashMap, HashSet};

/// An email's claim as the store holds it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ClaimRow {
    pub claimed_by: String,
    pub claimed_at_ms: i64,
    /// How old the claim is by the store's clock.
    pub age_ms: i64,
    pub sent_by: Option<String>,
}

/// A charge as it is written: its outcome and its event as text.
pub(crate) struct ChargeRow<'a> {
    pub charge: &'a Charge,
    pub outcome: &'static str,
    pub event: std::borrow::Cow<'a, str>,
}

/// The statements of a transaction, in either store's SQL. Times are the
/// store's own (PostgreSQL's `clock_timestamp()`, the clock of the host of a
/// SQLite file): the instances of a shared store compare one clock, not each
/// their host's.
pub(crate) trait Statements {
    /// Inserts each charge whose order has none yet; the ids it inserted.
    fn insert_charges(
        &mut self,
        charges: &[ChargeRow<'_>],
        instance: &str,
    ) -> Result<HashSet<u64>, StoreError>;
    fn recorded_charges(&mut self, order_ids: &[u64]) -> Result<HashMap<u64, RecordedCharge>, StoreError>;
    /// Inserts a claim on each email that has none yet; the ids it inserted.
    fn insert_claims(&mut self, order_ids: &[u64], instance: &str) -> Result<HashSet<u64>, StoreError>;
    fn claims(&mut self, order_ids: &[u64]) -> Result<HashMap<u64, ClaimRow>, StoreError>;
    /// Makes the unsent claim `seen` this instance's as of now, counting it in
    /// doubt if it was another's, if it is still as `seen` (a compare-and-set):
    /// whether it was.
    fn take_over(
        &mut self,
        order_id: u64,
        instance: &str,
        in_doubt: bool,
        seen: &ClaimRow,
    ) -> Result<bool, StoreError>;
    fn sent(&mut self, order_ids: &[u64], instance: &str) -> Result<(), StoreError>;
}

/// Runs every op of `batch` in the transaction `tx`, filling in their answers:
/// the same rules for both stores. Emails recorded as sent go first, so a
/// claim on one in the same batch finds it sent.
pub(super) fn apply(tx: &mut impl Statements, batch: &mut [Op], instance: &str) -> Result<(), StoreError> {
    record_sent(tx, batch, instance)?;
    claim_emails(tx, batch, instance)?;
    record_charges(tx, batch, instance)
}

fn record_sent(tx: &mut impl Statements, batch: &[Op], instance: &str) -> Result<(), StoreError> {
    let sent: Vec<u64> = batch
        .iter()
        .filter_map(|op| match op {
            Op::EmailSent { order_id, .. } => Some(*order_id),
            _ => None,
        })
        .collect();
    if sent.is_empty() {
        return Ok(());
    }
    tx.sent(&sent, instance)
}

/// The batch's charges, each with its verdict.
fn charge_ops(batch: &mut [Op]) -> impl Iterator<Item = (&Charge, &mut Option<ChargeVerdict>)> {
    batch.iter_mut().filter_map(|op| match op {
        Op::Charge { charge, verdict, .. } => Some((&*charge, verdict)),
        _ => None,
    })
}

/// The batch's claims on emails: the order, whether to renew, the verdict.
fn claim_ops(batch: &mut [Op]) -> impl Iterator<Item = (u64, bool, &mut Option<EmailVerdict>)> {
    batch.iter_mut().filter_map(|op| match op {
        Op::ClaimEmail { order_id, renew, verdict, .. } => Some((*order_id, *renew, verdict)),
        _ => None,
    })
}

/// The rule of a batch's inserts: of the ops of one kind, the first of each
/// order that `inserted` holds made the row, and is told `made`; the others
/// met a row already there, and their order ids are returned.
fn first_of_each_made<'a, V: 'a>(
    ops: impl Iterator<Item = (u64, &'a mut Option<V>)>,
    mut inserted: HashSet<u64>,
    made: impl Fn() -> V,
) -> Vec<u64> {
    let mut met = Vec::new();
    for (order_id, verdict) in ops {
        match inserted.remove(&order_id) {
            true => *verdict = Some(made()),
            false => met.push(order_id),
        }
    }
    met
}

/// A charge is the record if it is the first of its order; any other meets the record.
fn record_charges(tx: &mut impl Statements, batch: &mut [Op], instance: &str) -> Result<(), StoreError> {
    let rows: Vec<ChargeRow> = charge_ops(batch)
        .map(|(charge, _)| ChargeRow {
            charge,
            outcome: if charge.declined.is_some() { "declined" } else { "charged" },
            event: String::from_utf8_lossy(&charge.event),
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let inserted = tx.insert_charges(&rows, instance)?;
    let ops = charge_ops(batch).map(|(charge, verdict)| (charge.order_id, verdict));
    let met = first_of_each_made(ops, inserted, || ChargeVerdict::Recorded);
    if met.is_empty() {
        return Ok(());
    }
    let recorded = tx.recorded_charges(&met)?;
    for (charge, verdict) in charge_ops(batch).filter(|(_, verdict)| verdict.is_none()) {
        let row = recorded.get(&charge.order_id).ok_or(StoreError::Vanished(charge.order_id))?;
        *verdict = Some(ChargeVerdict::Found(row.clone()));
    }
    Ok(())
}

/// A claim is ours if it is the first on its email; any other meets the claim there.
fn claim_emails(tx: &mut impl Statements, batch: &mut [Op], instance: &str) -> Result<(), StoreError> {
    let asked: Vec<u64> = claim_ops(batch).map(|(order_id, ..)| order_id).collect();
    if asked.is_empty() {
        return Ok(());
    }
    let inserted = tx.insert_claims(&asked, instance)?;
    let ops = claim_ops(batch).map(|(order_id, _, verdict)| (order_id, verdict));
    let met = first_of_each_made(ops, inserted, || EmailVerdict::Claimed);
    if met.is_empty() {
        return Ok(());
    }
    let claims = tx.claims(&met)?;
    for (order_id, renew, verdict) in claim_ops(batch).filter(|(.., verdict)| verdict.is_none()) {
        let seen = claims.get(&order_id).ok_or(StoreError::Vanished(order_id))?;
        *verdict = Some(settle_claim(tx, order_id, renew, instance, seen)?);
    }
    Ok(())
}

/// The rules for a claim that met one (`seen`): a claim of ours is renewed;
/// another's is waited for until it lapses, then taken over, in doubt. A
/// renewal or a takeover that another instance's beat (between the read and
/// the update) is not ours: that instance's word stands.
fn settle_claim(
    tx: &mut impl Statements,
    order_id: u64,
    renew: bool,
    instance: &str,
    seen: &ClaimRow,
) -> Result<EmailVerdict, StoreError> {
    let (ours, in_doubt) = match seen {
        ClaimRow { sent_by: Some(sent_by), .. } => {
            return Ok(EmailVerdict::AlreadySent { sent_by: sent_by.clone() })
        }
        claim if claim.claimed_by == instance => (EmailVerdict::Claimed, false),
        claim if renew => return Ok(EmailVerdict::ClaimedElsewhere { claimed_by: claim.claimed_by.clone() }),
        claim if claim.age_ms < CLAIM_LEASE_MS => {
            return Ok(EmailVerdict::Busy { claimed_by: claim.claimed_by.clone() })
        }
        claim => (EmailVerdict::TakenOver { claimed_by: claim.claimed_by.clone() }, true),
    };
    if tx.take_over(order_id, instance, in_doubt, seen)? {
        return Ok(ours);
    }
    let now = tx.claims(&[order_id])?.remove(&order_id).ok_or(StoreError::Vanished(order_id))?;
    Ok(match now {
        ClaimRow { sent_by: Some(sent_by), .. } => EmailVerdict::AlreadySent { sent_by },
        ClaimRow { claimed_by, .. } if renew => EmailVerdict::ClaimedElsewhere { claimed_by },
        ClaimRow { claimed_by, .. } => EmailVerdict::Busy { claimed_by },
    })
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
