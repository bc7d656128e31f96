//! The payment rules, one by one: each order's tickets are plain names.

use super::*;

fn order(order_id: u64, user_id: u64, amount: f64) -> OrderEvent {
    OrderEvent { order_id, user_id, amount, status: Status::Created, reason: None, created_at_ms: None }
}

/// The charge of `order` as `charged_by` recorded it, with its own payment event.
fn recorded(order: &OrderEvent, charged_by: &str) -> RecordedCharge {
    RecordedCharge {
        user_id: order.user_id,
        amount: order.amount,
        event: format!("the payment event {charged_by} decided").into_bytes(),
        charged_by: charged_by.to_string(),
        charged_at_ms: 1_795_635_251_081,
    }
}

fn rules() -> PaymentRules<&'static str> {
    PaymentRules::new(0.0, 7, 100)
}

/// Hands `order` to `rules` and returns the charge it asks the store for.
fn first_arrival(rules: &mut PaymentRules<&'static str>, order: &OrderEvent, ticket: &'static str) -> Charge {
    match rules.arrived(order, ticket) {
        Arrival::First(charge) => charge,
        other => panic!("{ticket}: the first of its id, yet {other:?}"),
    }
}

/// The tickets done with an order, and the orders held behind it.
type Done = Option<(Vec<&'static str>, Vec<&'static str>)>;

fn acknowledge(rules: &mut PaymentRules<&'static str>, order_id: u64) -> Done {
    rules.acknowledged(order_id).map(|waiting| (waiting.tickets().copied().collect(), waiting.held))
}

fn done(tickets: &[&'static str], held: &[&'static str]) -> Done {
    Some((tickets.to_vec(), held.to_vec()))
}

#[test]
fn an_order_is_charged_published_and_done_once_acknowledged() {
    let (mut rules, order) = (rules(), order(1042, 47, 220.13));
    let charge = first_arrival(&mut rules, &order, "order");
    let paid = OrderEvent { status: Status::PaymentSuccessful, ..order.clone() };
    let expected =
        Charge { order_id: 1042, user_id: 47, amount: 220.13, declined: None, event: paid.encode() };
    assert_eq!(charge, expected);
    let outcome = rules.charged(&order, charge.event.clone(), ChargeVerdict::Recorded);
    assert_eq!(outcome, ChargeOutcome::Publish(paid.encode()));
    assert_eq!(acknowledge(&mut rules, 1042), done(&["order"], &[]));
    assert_eq!(acknowledge(&mut rules, 1042), None, "done once");
}

#[test]
fn a_duplicate_on_its_way_waits_for_the_original_then_a_late_one_is_done_at_once() {
    let (mut rules, order) = (rules(), order(1042, 47, 220.13));
    let charge = first_arrival(&mut rules, &order, "order");
    assert_eq!(rules.arrived(&order, "copy"), Arrival::Copy, "no second charge");
    rules.charged(&order, charge.event, ChargeVerdict::Recorded);
    assert_eq!(acknowledge(&mut rules, 1042), done(&["order", "copy"], &[]));
    assert_eq!(rules.arrived(&order, "late copy"), Arrival::Done("late copy"));
}

#[test]
fn an_identical_copy_recorded_before_publishes_the_recorded_event() {
    let (mut rules, order) = (rules(), order(1042, 47, 220.13));
    let charge = first_arrival(&mut rules, &order, "order");
    let before = recorded(&order, "payment-service@zombie");
    let outcome = rules.charged(&order, charge.event, ChargeVerdict::Found(before.clone()));
    assert_eq!(outcome, ChargeOutcome::Republish(before), "the record's bytes, not this decision's");
    assert_eq!(acknowledge(&mut rules, 1042), done(&["order"], &[]));
    assert_eq!(rules.arrived(&order, "copy"), Arrival::Done("copy"), "taken as paid");
}

#[test]
fn a_conflict_is_dead_lettered_and_never_taken_as_paid() {
    let (mut rules, order, other) =
        (rules(), order(1042, 47, 220.13), recorded(&order(1042, 9, 5.0), "payment-service@host#1"));
    let charge = first_arrival(&mut rules, &order, "order");
    let ChargeOutcome::DeadLetter(conflict) =
        rules.charged(&order, charge.event, ChargeVerdict::Found(other))
    else {
        panic!("another user and amount under the id: a conflict")
    };
    assert_eq!(
        conflict.to_string(),
        "order 1042 conflicts with the charge recorded for that id by payment-service@host#1 at \
         1795635251081 (user 9, amount 5): this one has user 47, amount 220.13; order ids were reused \
         (was the broker's storage emptied?), or another producer writes them"
    );
    assert_eq!(acknowledge(&mut rules, 1042), done(&["order"], &[]), "its dead letter is acknowledged");
    first_arrival(&mut rules, &order, "copy"); // the store judges it again
}

#[test]
fn another_order_under_an_id_on_its_way_is_held_until_that_one_is_done() {
    let (mut rules, first, second) = (rules(), order(1042, 47, 220.13), order(1042, 9, 5.0));
    first_arrival(&mut rules, &first, "first");
    assert_eq!(rules.arrived(&second, "second"), Arrival::Held);
    assert_eq!(acknowledge(&mut rules, 1042), done(&["first"], &["second"]));
    first_arrival(&mut rules, &second, "second"); // handed back: the store judges it
}

#[test]
fn a_crash_between_the_record_and_the_publish_publishes_the_record_once_restarted() {
    let order = order(1042, 47, 220.13);
    let charge = first_arrival(&mut rules(), &order, "before the crash");
    // A new process: the charge is in the store, its event was never published.
    let mut restarted = rules();
    let again = first_arrival(&mut restarted, &order, "redelivered");
    assert_eq!(again, charge, "decided the same way");
    let before = RecordedCharge { event: charge.event, ..recorded(&order, "payment-service@host#77") };
    let verdict = ChargeVerdict::Found(before.clone());
    assert_eq!(
        restarted.charged(&order, again.event.clone(), verdict.clone()),
        ChargeOutcome::Republish(before)
    );
    // The actor crashed handling the verdict, and is handed it again.
    assert!(matches!(restarted.charged(&order, again.event, verdict), ChargeOutcome::Republish(_)));
    assert_eq!(acknowledge(&mut restarted, 1042), done(&["redelivered"], &[]));
    assert_eq!(acknowledge(&mut restarted, 1042), None, "the second acknowledgement finds it done");
}

#[test]
fn only_the_last_orders_paid_are_remembered() {
    let mut rules = PaymentRules::new(0.0, 7, 2);
    for order_id in 1..=3 {
        let order = order(order_id, 47, 10.0);
        let charge = first_arrival(&mut rules, &order, "order");
        rules.charged(&order, charge.event, ChargeVerdict::Recorded);
        rules.acknowledged(order_id);
    }
    first_arrival(&mut rules, &order(1, 47, 10.0), "forgotten copy"); // asks the store
    assert_eq!(rules.arrived(&order(3, 47, 10.0), "copy"), Arrival::Done("copy"));
}

fn decisions(decline_rate: f64) -> Vec<Status> {
    (1000..3000).map(|order_id| decide(&order(order_id, 1, 10.0), decline_rate, 7).status).collect()
}

#[test]
fn declines_about_the_asked_share_and_repeatably() {
    let first = decisions(0.25);
    let declined = first.iter().filter(|&&s| s == Status::PaymentFailed).count();
    assert!((400..600).contains(&declined), "{declined} of 2000 declined at 25%");
    assert_eq!(first, decisions(0.25));
    assert!(decisions(0.0).iter().all(|&s| s == Status::PaymentSuccessful));
    assert!(decisions(1.0).iter().all(|&s| s == Status::PaymentFailed));
}

#[test]
fn a_declined_charge_carries_its_reason() {
    let mut rules = PaymentRules::new(1.0, 7, 100);
    let charge = first_arrival(&mut rules, &order(1042, 47, 220.13), "order");
    let reason = charge.declined.expect("declined at rate 1");
    assert!(DECLINE_REASONS.contains(&reason.as_str()), "{reason}");
    assert!(String::from_utf8_lossy(&charge.event).contains(&reason), "the event says why");
}
