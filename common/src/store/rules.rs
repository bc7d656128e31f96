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
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A store in memory, its clock set by the test; `interloper` changes a
    /// claim between its read and the update that follows, as a racing
    /// instance does.
    #[derive(Default)]
    struct Memory {
        now_ms: i64,
        charges: BTreeMap<u64, RecordedCharge>,
        claims: BTreeMap<u64, ClaimRow>,
        interloper: Option<String>,
    }

    impl Memory {
        fn row(&mut self, order_id: u64) -> &mut ClaimRow {
            self.claims.get_mut(&order_id).expect("a claim")
        }
    }

    impl Statements for Memory {
        fn insert_charges(
            &mut self,
            rows: &[ChargeRow<'_>],
            instance: &str,
        ) -> Result<HashSet<u64>, StoreError> {
            let mut inserted = HashSet::default();
            for ChargeRow { charge, event, .. } in rows {
                if !self.charges.contains_key(&charge.order_id) {
                    let recorded = RecordedCharge {
                        user_id: charge.user_id,
                        amount: charge.amount,
                        event: event.as_bytes().to_vec(),
                        charged_by: instance.into(),
                        charged_at_ms: self.now_ms,
                    };
                    self.charges.insert(charge.order_id, recorded);
                    inserted.insert(charge.order_id);
                }
            }
            Ok(inserted)
        }
        fn recorded_charges(
            &mut self,
            order_ids: &[u64],
        ) -> Result<HashMap<u64, RecordedCharge>, StoreError> {
            Ok(order_ids.iter().filter_map(|id| Some((*id, self.charges.get(id)?.clone()))).collect())
        }
        fn insert_claims(&mut self, order_ids: &[u64], instance: &str) -> Result<HashSet<u64>, StoreError> {
            let mut inserted = HashSet::default();
            for &order_id in order_ids {
                if !self.claims.contains_key(&order_id) {
                    let row = ClaimRow {
                        claimed_by: instance.into(),
                        claimed_at_ms: self.now_ms,
                        age_ms: 0,
                        sent_by: None,
                    };
                    self.claims.insert(order_id, row);
                    inserted.insert(order_id);
                }
            }
            Ok(inserted)
        }
        fn claims(&mut self, order_ids: &[u64]) -> Result<HashMap<u64, ClaimRow>, StoreError> {
            let now_ms = self.now_ms;
            Ok(order_ids
                .iter()
                .filter_map(|id| {
                    let row = self.claims.get(id)?;
                    Some((*id, ClaimRow { age_ms: now_ms - row.claimed_at_ms, ..row.clone() }))
                })
                .collect())
        }
        fn take_over(
            &mut self,
            order_id: u64,
            instance: &str,
            _in_doubt: bool,
            seen: &ClaimRow,
        ) -> Result<bool, StoreError> {
            let now_ms = self.now_ms;
            if let Some(other) = self.interloper.take() {
                *self.row(order_id) =
                    ClaimRow { claimed_by: other, claimed_at_ms: now_ms, age_ms: 0, sent_by: None };
            }
            let row = self.row(order_id);
            let unchanged = (&row.claimed_by, row.claimed_at_ms, &row.sent_by)
                == (&seen.claimed_by, seen.claimed_at_ms, &None);
            if unchanged {
                *row =
                    ClaimRow { claimed_by: instance.into(), claimed_at_ms: now_ms, age_ms: 0, sent_by: None };
            }
            Ok(unchanged)
        }
        fn sent(&mut self, order_ids: &[u64], instance: &str) -> Result<(), StoreError> {
            for &order_id in order_ids {
                self.row(order_id).sent_by = Some(instance.into());
            }
            Ok(())
        }
    }

    fn claim(order_id: u64, renew: bool) -> Op {
        Op::ClaimEmail { order_id, renew, reply: Box::new(|_| {}), verdict: None }
    }

    fn charge(order_id: u64, user_id: u64) -> Op {
        let charge =
            Charge { order_id, user_id, amount: 1.0, declined: None, event: format!("{user_id}").into() };
        Op::Charge { charge, reply: Box::new(|_| {}), verdict: None }
    }

    fn sent(order_id: u64) -> Op {
        Op::EmailSent { order_id, reply: Box::new(|()| {}) }
    }

    /// The verdicts of a batch run by `instance`, in its order.
    fn run(store: &mut Memory, instance: &str, mut batch: Vec<Op>) -> Vec<String> {
        apply(store, &mut batch, instance).expect("the memory store cannot fail");
        batch
            .into_iter()
            .map(|op| match op {
                Op::Charge { verdict, .. } => format!("{:?}", verdict.expect("a verdict")),
                Op::ClaimEmail { verdict, .. } => format!("{:?}", verdict.expect("a verdict")),
                Op::EmailSent { .. } => "sent".into(),
            })
            .collect()
    }

    fn ask(store: &mut Memory, instance: &str, renew: bool) -> EmailVerdict {
        let mut batch = [claim(7, renew)];
        apply(store, &mut batch, instance).expect("the memory store cannot fail");
        let [Op::ClaimEmail { verdict: Some(verdict), .. }] = batch else { panic!("no verdict") };
        verdict
    }

    #[test]
    fn a_claim_is_ours_kept_busy_for_others_then_taken_over_once_lapsed() {
        let mut store = Memory::default();
        assert_eq!(ask(&mut store, "a", false), EmailVerdict::Claimed);
        assert_eq!(ask(&mut store, "a", true), EmailVerdict::Claimed, "renewed");
        assert_eq!(ask(&mut store, "b", false), EmailVerdict::Busy { claimed_by: "a".into() });
        store.now_ms += CLAIM_LEASE_MS - 1;
        assert_eq!(
            ask(&mut store, "b", false),
            EmailVerdict::Busy { claimed_by: "a".into() },
            "not yet lapsed"
        );
        store.now_ms += 1;
        assert_eq!(ask(&mut store, "b", false), EmailVerdict::TakenOver { claimed_by: "a".into() });
        assert_eq!(ask(&mut store, "a", true), EmailVerdict::ClaimedElsewhere { claimed_by: "b".into() });
        assert_eq!(ask(&mut store, "a", false), EmailVerdict::Busy { claimed_by: "b".into() });
        store.sent(&[7], "b").expect("recorded");
        for (instance, renew) in [("a", false), ("a", true), ("b", false), ("c", false)] {
            assert_eq!(ask(&mut store, instance, renew), EmailVerdict::AlreadySent { sent_by: "b".into() });
        }
    }

    #[test]
    fn a_takeover_or_renewal_beaten_by_another_instance_does_not_send() {
        for (instance, renew, beaten) in [
            ("b", false, EmailVerdict::Busy { claimed_by: "c".into() }),
            ("a", true, EmailVerdict::ClaimedElsewhere { claimed_by: "c".into() }),
            ("a", false, EmailVerdict::Busy { claimed_by: "c".into() }),
        ] {
            let mut store = Memory::default();
            assert_eq!(ask(&mut store, "a", false), EmailVerdict::Claimed);
            store.now_ms += CLAIM_LEASE_MS;
            store.interloper = Some("c".into());
            assert_eq!(ask(&mut store, instance, renew), beaten, "{instance} (renew: {renew})");
        }
    }

    #[test]
    fn in_one_batch_the_first_charge_of_an_order_is_the_record_and_its_copies_meet_it() {
        let mut store = Memory::default();
        run(&mut store, "a", vec![charge(1, 10)]);
        let verdicts = run(&mut store, "b", vec![charge(1, 11), charge(2, 20), charge(2, 21), charge(3, 30)]);
        let found = |order_id: u64| format!("{:?}", ChargeVerdict::Found(store.charges[&order_id].clone()));
        assert_eq!(verdicts, [found(1), "Recorded".into(), found(2), "Recorded".into()]);
        assert_eq!((store.charges[&1].user_id, store.charges[&2].user_id), (10, 20), "the first stands");
    }

    #[test]
    fn in_one_batch_an_email_recorded_as_sent_is_not_claimed_again() {
        let mut store = Memory::default();
        run(&mut store, "a", vec![claim(1, false), claim(2, false)]);
        let verdicts = run(&mut store, "a", vec![claim(1, false), sent(1), claim(3, false), claim(3, false)]);
        let sent_by_a = format!("{:?}", EmailVerdict::AlreadySent { sent_by: "a".into() });
        let claimed = format!("{:?}", EmailVerdict::Claimed);
        assert_eq!(verdicts, [sent_by_a, "sent".into(), claimed.clone(), claimed]);
    }
}
