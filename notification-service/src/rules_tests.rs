//! The notification rules, one by one: each payment event's ticket is a plain name.

use super::*;

const SOON: Duration = Duration::from_millis(3);

fn rules() -> NotificationRules<&'static str> {
    NotificationRules::new(100)
}

fn busy(instance: &str) -> EmailVerdict {
    EmailVerdict::Busy { claimed_by: instance.to_string() }
}

/// The tickets that waited for an email.
fn tickets(waiting: Option<Waiting<&'static str>>) -> Vec<&'static str> {
    waiting.iter().flat_map(Waiting::tickets).copied().collect()
}

fn send() -> ClaimOutcome<&'static str> {
    ClaimOutcome::Send { taken_over_from: None }
}

#[test]
fn a_payment_is_claimed_sent_and_done_once_recorded() {
    let mut rules = rules();
    assert_eq!(rules.arrived(1042, "payment"), Arrival::First(()), "claimed in the store");
    assert_eq!(rules.claimed(1042, EmailVerdict::Claimed, SOON), send());
    assert_eq!(tickets(rules.recorded(1042)), vec!["payment"]);
    assert_eq!(rules.recorded(1042), None, "done once");
}

#[test]
fn a_duplicate_on_its_way_waits_for_the_email_then_a_late_one_is_done_at_once() {
    let mut rules = rules();
    rules.arrived(1042, "payment");
    assert_eq!(rules.arrived(1042, "copy"), Arrival::Copy, "no second claim");
    assert_eq!(tickets(rules.recorded(1042)), vec!["payment", "copy"]);
    assert_eq!(rules.arrived(1042, "late copy"), Arrival::Done("late copy"));
}

#[test]
fn busy_elsewhere_asks_again_later_and_stays_on_its_way() {
    let mut rules = rules();
    rules.arrived(1042, "payment");
    let outcome = rules.claimed(1042, busy("notification-service@other#2"), SOON);
    let claimant = Claimant::Sending("notification-service@other#2".into());
    assert_eq!(outcome, ClaimOutcome::AskLater { after: BUSY_WAIT, claimant });
    assert_eq!(rules.arrived(1042, "copy"), Arrival::Copy, "not done until sent");
    assert_eq!(rules.claimed(1042, EmailVerdict::Claimed, SOON), send(), "the claim lapsed or was let go");
}

#[test]
fn a_claim_granted_late_is_renewed_before_the_send() {
    let mut rules = rules();
    rules.arrived(1042, "payment");
    let late = RENEW_AFTER + Duration::from_millis(1);
    let outcome = rules.claimed(1042, EmailVerdict::Claimed, late);
    assert_eq!(outcome, ClaimOutcome::Renew { taken_over_from: None, waited: late });
    assert_eq!(rules.claimed(1042, EmailVerdict::Claimed, SOON), send(), "renewed: still ours");
    assert_eq!(rules.claimed(1042, EmailVerdict::Claimed, RENEW_AFTER), send(), "not over the bound");
}

#[test]
fn a_claim_taken_over_is_sent_in_doubt_and_renewed_if_granted_late() {
    let mut rules = rules();
    rules.arrived(1042, "payment");
    let dead = || EmailVerdict::TakenOver { claimed_by: "notification-service@host#77".into() };
    let taken_over_from = Some("notification-service@host#77".to_string());
    assert_eq!(
        rules.claimed(1042, dead(), SOON),
        ClaimOutcome::Send { taken_over_from: taken_over_from.clone() }
    );
    let late = RENEW_AFTER * 2;
    assert_eq!(rules.claimed(1042, dead(), late), ClaimOutcome::Renew { taken_over_from, waited: late });
}

#[test]
fn a_claim_of_ours_taken_over_meanwhile_is_not_sent_here_but_asked_for_until_sent() {
    let mut rules = rules();
    rules.arrived(1042, "payment");
    let successor = "notification-service@host#78".to_string();
    let verdict = EmailVerdict::ClaimedElsewhere { claimed_by: successor.clone() };
    let outcome = rules.claimed(1042, verdict, SOON);
    let claimant = Claimant::TookOver(successor.clone());
    assert_eq!(outcome, ClaimOutcome::AskLater { after: BUSY_WAIT, claimant });
    let sent = rules.claimed(1042, EmailVerdict::AlreadySent { sent_by: successor.clone() }, SOON);
    let ClaimOutcome::AlreadySent { sent_by, waiting } = sent else { panic!("sent by the successor") };
    assert_eq!((sent_by, tickets(waiting)), (successor, vec!["payment"]));
}

#[test]
fn an_email_already_sent_is_not_sent_again_and_its_copies_are_done() {
    let mut rules = rules();
    rules.arrived(1042, "payment");
    rules.arrived(1042, "copy");
    let sent_by = "notification-service@host#1".to_string();
    let outcome = rules.claimed(1042, EmailVerdict::AlreadySent { sent_by: sent_by.clone() }, SOON);
    let ClaimOutcome::AlreadySent { sent_by: recorded_by, waiting } = outcome else { panic!("already sent") };
    assert_eq!((recorded_by, tickets(waiting)), (sent_by, vec!["payment", "copy"]));
    assert_eq!(rules.arrived(1042, "late copy"), Arrival::Done("late copy"), "remembered as sent");
}

#[test]
fn a_crash_between_the_send_and_its_record_sends_again_and_stays_on_its_way() {
    let mut rules = rules();
    rules.arrived(1042, "payment");
    assert_eq!(rules.claimed(1042, EmailVerdict::Claimed, SOON), send());
    // The send failed (or the actor crashed there): the same answer is handed again.
    assert_eq!(rules.arrived(1042, "copy"), Arrival::Copy, "a failed send is no email");
    assert_eq!(rules.claimed(1042, EmailVerdict::Claimed, SOON), send());
    assert_eq!(tickets(rules.recorded(1042)), vec!["payment", "copy"]);
}

#[test]
fn only_the_last_orders_emailed_are_remembered() {
    let mut rules = NotificationRules::new(2);
    for order_id in 1..=3 {
        rules.arrived(order_id, "payment");
        rules.recorded(order_id);
    }
    assert_eq!(rules.arrived(1, "forgotten copy"), Arrival::First(()), "claimed again");
    assert_eq!(rules.arrived(3, "copy"), Arrival::Done("copy"));
}
