//! A restart is another writer, even where everything that names the process
//! repeats, as in a container: notification-service runs as PID 1 of a PID
//! namespace of its own with a fixed `--instance-id`, is SIGKILLed mid-stream,
//! and is started again the same way. Its successor must not take the unsent
//! claims of the killed process for its own (and send them again uncounted): it
//! waits for them to lapse and takes them over, counted in doubt. So every
//! order is emailed, and none more often than once plus its in-doubt count.

use harness::{emailed, outcome, wait_until_all, Broker, ServiceProcess};
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);

/// At 1,000 a second: order-service still makes them well after the group's
/// first assignment (3 s after the consumers join) on a machine of any speed.
const ORDERS: u64 = 10_000;

const SAME_IDENTITY: [&str; 2] = ["--instance-id", "notif-1"];

#[test]
fn a_container_restarted_under_the_same_identity_emails_no_order_beyond_its_doubt() {
    let broker = Broker::start();
    let _payment = ServiceProcess::start("payment-service", &broker, &[]);
    let mut first = ServiceProcess::start_as_pid_one("notification-service", &broker, &SAME_IDENTITY);
    let count = ORDERS.to_string();
    let mut orders = ServiceProcess::start("order-service", &broker, &["--count", &count, "--rate", "1000"]);
    first.wait_until("it emails customers", MINUTE, |lines| emailed(lines).len() >= 500);
    first.kill();
    let emailed_first = emailed(&first.lines()).len() as u64;
    assert!(emailed_first < ORDERS, "every order was emailed before the kill: nothing was tested");
    let pid_one =
        |service: &ServiceProcess| service.lines().iter().any(|line| line.contains("written as notif-1#1-"));
    assert!(pid_one(&first), "the first instance did not run as PID 1 under notif-1");

    let second = ServiceProcess::start_as_pid_one("notification-service", &broker, &SAME_IDENTITY);
    assert!(orders.wait_exit(MINUTE).success(), "order-service failed");
    wait_until_all(&[&first, &second], "every order is emailed", 3 * MINUTE, |lines| {
        emailed(lines).len() as u64 >= ORDERS
    });
    assert!(pid_one(&second), "the second instance did not run as PID 1 under notif-1");
    let lines: Vec<String> = first.lines().into_iter().chain(second.lines()).collect();
    let outcome = outcome(&broker, 1001..=1000 + ORDERS, &lines);
    println!("{emailed_first} emailed before the kill; {outcome:?}");
    outcome.assert_holds();
    assert!(
        outcome.emails_in_doubt > 0,
        "the kill left no claim unsent, so the successor had none to take for its own: nothing was tested"
    );
}
