//! The batch rules of `rules.rs`, played on a store in memory.

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
    fn insert_charges(&mut self, rows: &[ChargeRow<'_>], instance: &str) -> Result<HashSet<u64>, StoreError> {
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
    fn recorded_charges(&mut self, order_ids: &[u64]) -> Result<HashMap<u64, RecordedCharge>, StoreError> {
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
            *row = ClaimRow { claimed_by: instance.into(), claimed_at_ms: now_ms, age_ms: 0, sent_by: None };
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
    assert_eq!(ask(&mut store, "b", false), EmailVerdict::Busy { claimed_by: "a".into() }, "not yet lapsed");
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
