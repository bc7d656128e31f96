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

/// A charge is the record if it is the first of its order; any other meets the record.
fn record_charges(tx: &mut impl Statements, batch: &mut [Op], instance: &str) -> Result<(), StoreError> {
    let rows: Vec<ChargeRow> = batch
        .iter()
        .filter_map(|op| match op {
            Op::Charge { charge, .. } => Some(ChargeRow {
                charge,
                outcome: if charge.declined.is_some() { "declined" } else { "charged" },
                event: String::from_utf8_lossy(&charge.event),
            }),
            _ => None,
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let mut inserted = tx.insert_charges(&rows, instance)?;
    let mut found = Vec::new();
    for op in batch.iter_mut() {
        if let Op::Charge { charge, verdict, .. } = op {
            match inserted.remove(&charge.order_id) {
                true => *verdict = Some(ChargeVerdict::Recorded),
                false => found.push(charge.order_id),
            }
        }
    }
    if found.is_empty() {
        return Ok(());
    }
    let recorded = tx.recorded_charges(&found)?;
    for op in batch.iter_mut() {
        if let Op::Charge { charge, verdict: verdict @ None, .. } = op {
            let row = recorded.get(&charge.order_id).ok_or(StoreError::Vanished(charge.order_id))?;
            *verdict = Some(ChargeVerdict::Found(row.clone()));
        }
    }
    Ok(())
}

/// A claim is ours if it is the first on its email; any other meets the claim there.
fn claim_emails(tx: &mut impl Statements, batch: &mut [Op], instance: &str) -> Result<(), StoreError> {
    let asked: Vec<u64> = batch
        .iter()
        .filter_map(|op| match op {
            Op::ClaimEmail { order_id, .. } => Some(*order_id),
            _ => None,
        })
        .collect();
    if asked.is_empty() {
        return Ok(());
    }
    let mut inserted = tx.insert_claims(&asked, instance)?;
    let mut met = Vec::new();
    for op in batch.iter_mut() {
        if let Op::ClaimEmail { order_id, verdict, .. } = op {
            match inserted.remove(order_id) {
                true => *verdict = Some(EmailVerdict::Claimed),
                false => met.push(*order_id),
            }
        }
    }
    if met.is_empty() {
        return Ok(());
    }
    let claims = tx.claims(&met)?;
    for op in batch.iter_mut() {
        if let Op::ClaimEmail { order_id, renew, verdict: verdict @ None, .. } = op {
            let seen = claims.get(order_id).ok_or(StoreError::Vanished(*order_id))?;
            *verdict = Some(settle_claim(tx, *order_id, *renew, instance, seen)?);
        }
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
