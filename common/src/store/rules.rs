//! The rules of a batch, the same for both stores: what a charge meets, what a
//! claim on an email meets; each backend gives the statements (`Statements`),
//! in its SQL, that these rules run inside the batch's transaction.

use super::{Charge, ChargeVerdict, EmailVerdict, Op, RecordedCharge, StoreError, CLAIM_LEASE_MS};

/// An email's claim as the store holds it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ClaimRow {
    pub claimed_by: String,
    pub claimed_at_ms: i64,
    /// How old the claim is by the store's clock.
    pub age_ms: i64,
    pub sent_by: Option<String>,
}

/// The statements of a transaction, in either store's SQL. Times are the
/// store's own (PostgreSQL's `clock_timestamp()`, the clock of the host of a
/// SQLite file): the instances of a shared store compare one clock, not each
/// their host's.
pub(crate) trait Statements {
    /// Inserts the charge unless its order has one; whether it did.
    fn insert_charge(
        &mut self,
        charge: &Charge,
        outcome: &str,
        event: &str,
        instance: &str,
    ) -> Result<bool, StoreError>;
    fn recorded_charge(&mut self, order_id: u64) -> Result<RecordedCharge, StoreError>;
    /// Inserts a claim on the email unless it has one; whether it did.
    fn insert_claim(&mut self, order_id: u64, instance: &str) -> Result<bool, StoreError>;
    fn claim(&mut self, order_id: u64) -> Result<ClaimRow, StoreError>;
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
    fn sent(&mut self, order_id: u64, instance: &str) -> Result<(), StoreError>;
}

/// Runs every op of `batch` in the transaction `tx`, filling in their answers:
/// the same rules for both stores.
pub(super) fn apply(tx: &mut impl Statements, batch: &mut [Op], instance: &str) -> Result<(), StoreError> {
    batch.iter_mut().try_for_each(|op| apply_one(tx, op, instance))
}

fn apply_one(tx: &mut impl Statements, op: &mut Op, instance: &str) -> Result<(), StoreError> {
    match op {
        Op::Charge { charge, verdict, .. } => {
            let outcome = if charge.declined.is_some() { "declined" } else { "charged" };
            let event = String::from_utf8_lossy(&charge.event);
            *verdict = Some(match tx.insert_charge(charge, outcome, &event, instance)? {
                true => ChargeVerdict::Recorded,
                false => ChargeVerdict::Found(tx.recorded_charge(charge.order_id)?),
            });
        }
        Op::ClaimEmail { order_id, renew, verdict, .. } => {
            *verdict = Some(claim_email(tx, *order_id, *renew, instance)?);
        }
        Op::EmailSent { order_id, .. } => tx.sent(*order_id, instance)?,
    }
    Ok(())
}

/// The claim rules: a new claim is ours; a claim of ours is renewed; another's
/// is waited for until it lapses, then taken over, in doubt. A renewal or a
/// takeover that another instance's beat (between the read and the update) is
/// not ours: that instance's word stands.
fn claim_email(
    tx: &mut impl Statements,
    order_id: u64,
    renew: bool,
    instance: &str,
) -> Result<EmailVerdict, StoreError> {
    if tx.insert_claim(order_id, instance)? {
        return Ok(EmailVerdict::Claimed);
    }
    let seen = tx.claim(order_id)?;
    let (ours, in_doubt) = match &seen {
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
    if tx.take_over(order_id, instance, in_doubt, &seen)? {
        return Ok(ours);
    }
    Ok(match tx.claim(order_id)? {
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
        claims: BTreeMap<u64, ClaimRow>,
        interloper: Option<String>,
    }

    impl Memory {
        fn row(&mut self, order_id: u64) -> &mut ClaimRow {
            self.claims.get_mut(&order_id).expect("a claim")
        }
    }

    impl Statements for Memory {
        fn insert_charge(&mut self, _: &Charge, _: &str, _: &str, _: &str) -> Result<bool, StoreError> {
            unreachable!("charges are not played here")
        }
        fn recorded_charge(&mut self, _: u64) -> Result<RecordedCharge, StoreError> {
            unreachable!("charges are not played here")
        }
        fn insert_claim(&mut self, order_id: u64, instance: &str) -> Result<bool, StoreError> {
            let row = ClaimRow {
                claimed_by: instance.into(),
                claimed_at_ms: self.now_ms,
                age_ms: 0,
                sent_by: None,
            };
            Ok(self
                .claims
                .insert(order_id, row.clone())
                .map(|old| self.claims.insert(order_id, old))
                .is_none())
        }
        fn claim(&mut self, order_id: u64) -> Result<ClaimRow, StoreError> {
            let now_ms = self.now_ms;
            let row = self.row(order_id);
            Ok(ClaimRow { age_ms: now_ms - row.claimed_at_ms, ..row.clone() })
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
        fn sent(&mut self, order_id: u64, instance: &str) -> Result<(), StoreError> {
            self.row(order_id).sent_by = Some(instance.into());
            Ok(())
        }
    }

    fn ask(store: &mut Memory, instance: &str, renew: bool) -> EmailVerdict {
        claim_email(store, 7, renew, instance).expect("the memory store cannot fail")
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
        store.sent(7, "b").expect("recorded");
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
}
