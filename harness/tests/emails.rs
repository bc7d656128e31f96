//! An email is marked sent only once it went out: with a mail server that
//! refuses a third of the sends, each refused email is sent again, and every
//! customer gets exactly one.

use harness::{assert_exactly_once, count_orders, counter, summary, Broker, ServiceProcess, NOTIFIED};
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn a_refused_email_is_sent_again_not_taken_for_a_duplicate() {
    let broker = Broker::start();
    let refusing = ["--email-failure-rate", "0.3", "--seed", "11"];
    let mut notification = ServiceProcess::start("notification-service", &broker, &refusing);
    let mut payment = ServiceProcess::start("payment-service", &broker, &[]);
    let mut orders = ServiceProcess::start("order-service", &broker, &["--count", "200", "--rate", "0"]);
    assert!(orders.wait_exit(MINUTE).success(), "order-service failed");
    notification
        .wait_until("every order is notified", MINUTE, |lines| count_orders(lines, NOTIFIED).len() >= 200);
    payment.stop_gracefully(MINUTE);
    notification.stop_gracefully(MINUTE);

    let lines = notification.lines();
    assert_exactly_once(&count_orders(&lines, NOTIFIED), 1001..=1200, "emails");
    let emails = lines.iter().filter(|l| l.contains("📨 Email sent to customer")).count();
    assert_eq!(emails, 200, "one email per order");
    let refused = lines.iter().filter(|l| l.contains("the mail server refused")).count();
    assert!(refused >= 20, "only {refused} sends refused at a rate of 0.3");
    assert_eq!(
        counter(&summary(&notification), "duplicates_suppressed"),
        0,
        "a refused email taken for sent"
    );
}
