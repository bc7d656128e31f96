//! A restart is another writer, even where everything that names the process
//! repeats, as in a container: notification-service runs as PID 1 of a PID
//! namespace of its own with a fixed `--instance-id`, is SIGKILLed mid-stream,
//! and is started again the same way. Its successor must not take the unsent
//! claims of the killed process for its own (and send them again uncounted): it
//! waits for them to lapse and takes them over, counted in doubt. So every
//! order is emailed, and none more often than once plus its in-doubt count.
//!
//! The kill must leave emails sent but not recorded as sent, the case the
//! successor must not take for its own: the test holds the store's write lock
//! (nothing commits meanwhile) until some email logged by the first instance
//! has its claim still unsent in the store, and kills it then.

use harness::{emailed, outcome, store_path, wait_until_all, Broker, ServiceProcess};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

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
    let lock = held_with_emails_unrecorded(&broker, &first);
    first.kill();
    drop(lock);
    let emailed_first = emailed(&first.lines()).len() as u64;
    assert!(emailed_first < ORDERS, "every order was emailed before the kill: nothing was tested");
    let pid_one =
        |service: &ServiceProcess| service.lines().iter().any(|line| line.contains("written as notif-1#1-"));
    assert!(pid_one(&first), "the first instance did not run as PID 1 under notif-1");

    let second = ServiceProcess::start_as_pid_one("notification-service", &broker, &SAME_IDENTITY);
    assert!(orders.wait_exit(MINUTE).success(), "order-service failed");
    // Emailed, and recorded as sent: the successor has settled every claim the
    // first left (it takes them over once they lapse), not only emailed the rest.
    let path = store_path(&broker.address, "notification-service");
    let recorded = || harness::store::emails(&path).values().filter(|email| email.sent).count() as u64;
    wait_until_all(&[&first, &second], "every order is emailed and recorded as sent", 3 * MINUTE, |lines| {
        emailed(lines).len() as u64 >= ORDERS && recorded() >= ORDERS
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

/// The notification store's write lock, held once some email `service` logged
/// has its claim unsent in the store: sent, not recorded, and nothing commits
/// while the lock is held. Tried again, while orders flow, until it is so.
fn held_with_emails_unrecorded(broker: &Broker, service: &ServiceProcess) -> rusqlite::Connection {
    const TRIES: usize = 20;
    let store = rusqlite::Connection::open(store_path(&broker.address, "notification-service"))
        .expect("the store opens");
    store.busy_timeout(MINUTE).expect("a busy timeout");
    for _ in 0..TRIES {
        store.execute_batch("BEGIN IMMEDIATE").expect("the write lock is taken");
        // The lines of the emails of the batch now blocked went out before it
        // began: they reach this test within moments.
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            let unsent: BTreeSet<u64> = store
                .prepare("SELECT order_id FROM emails WHERE sent_by IS NULL")
                .and_then(|mut select| {
                    select.query_map([], |row| row.get::<_, i64>(0))?.collect::<Result<Vec<i64>, _>>()
                })
                .expect("the claims are readable")
                .into_iter()
                .map(|id| id as u64)
                .collect();
            if emailed(&service.lines()).keys().any(|id| unsent.contains(id)) {
                return store;
            }
            std::thread::sleep(Duration::from_millis(20)); // polling a log and a file: neither says when
        }
        store.execute_batch("ROLLBACK").expect("the write lock is let go");
        let before = emailed(&service.lines()).len();
        service.wait_until("it emails more customers", MINUTE, |lines| emailed(lines).len() >= before + 50);
    }
    panic!("no email was ever sent and not yet recorded in {TRIES} tries: nothing would be tested");
}
