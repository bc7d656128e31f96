//! A zombie on PostgreSQL stalls its successor no longer than the store's
//! bounds. Two payment-service instances share one PostgreSQL store while
//! orders flow; one is frozen (SIGSTOP) or cut off (its network namespace's
//! link down) in the middle of a batch, holding the row locks of the orders in
//! it, for a minute. The other takes over its partitions and re-reads exactly
//! those orders: it waits for their rows at most `lock_timeout` at a time, and
//! the server ends the zombie's session after
//! `idle_in_transaction_session_timeout`. So every order is emailed while the
//! zombie is still away, and once it is back each order has one outcome.
//!
//! Each instance decides for itself (`--decline-rate 0.5`, its own `--seed`),
//! so a second decision would show as a different payment event.

use harness::netns::Network;
use harness::postgres::Postgres;
use harness::{emailed, payment_events, store, Broker, ServiceProcess, PAID};
use std::time::{Duration, Instant};

const MINUTE: Duration = Duration::from_secs(60);

/// How long the zombie is away: far longer than the store's bounds (10 s).
const AWAY: Duration = Duration::from_secs(60);

/// At 1,000 a second: they still flow when the zombie goes away.
const ORDERS: u64 = 10_000;

/// The zombie's writer identity, from its `written as` line.
fn writer_identity(service: &ServiceProcess) -> String {
    service.wait_until("it names its writer identity", MINUTE, |lines| {
        lines.iter().any(|line| line.contains(", written as "))
    });
    let lines = service.lines();
    let line = lines.iter().find(|line| line.contains(", written as ")).expect("the line waited for");
    line.rsplit(", written as ").next().expect("an identity").trim().to_string()
}

/// Polls the server (it tells no one) until `sql` counts a row, for at most `within`.
fn counts_a_row_within(postgres: &Postgres, sql: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if postgres.query(sql) != "0" {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Strikes the zombie (`away`) inside a batch, on any machine's speed. The
/// payments table is locked against inserts, so the zombie's next batch waits
/// in its INSERT; `away` strikes then, and the lock's release lets that INSERT
/// take its orders' row locks, which the zombie holds with no COMMIT to come.
fn strike_inside_a_batch(postgres: &Postgres, identity: &str, away: impl FnOnce()) {
    let mut client = postgres::Client::connect(&postgres.url(), postgres::NoTls).expect("a test connection");
    let mut lock = client.transaction().expect("a transaction");
    lock.batch_execute("LOCK TABLE payments IN SHARE MODE").expect("the payments table locked");
    let session = format!("SELECT count(*) FROM pg_stat_activity WHERE application_name = '{identity}'");
    // Within the store's lock_timeout (5 s), after which the batch would fail.
    let waits = format!("{session} AND wait_event_type = 'Lock'");
    assert!(
        counts_a_row_within(postgres, &waits, Duration::from_secs(3)),
        "the zombie's batch never waited on the locked table: were orders still flowing?"
    );
    away();
    lock.commit().expect("the payments table unlocked");
    let holds = format!("{session} AND state = 'idle in transaction'");
    let held = counts_a_row_within(postgres, &holds, Duration::from_secs(3));
    let sessions = postgres.query(&format!(
        "SELECT state, wait_event_type, wait_event, query FROM pg_stat_activity WHERE application_name = '{identity}'"
    ));
    assert!(held, "the zombie's session does not hold its batch open: nothing was tested; {sessions}");
}

/// Two payment instances (the `zombie` started by the caller) on `postgres`,
/// notification-service, orders; `away` and `back` are the fault.
fn the_survivor_finishes_while_the_zombie_is_away(
    postgres: &Postgres,
    broker: &Broker,
    start_zombie: impl FnOnce(&[&str]) -> ServiceProcess,
    away: impl Fn(&ServiceProcess),
    back: impl Fn(&ServiceProcess),
) {
    let url = postgres.url();
    let decides = |seed: &'static str| ["--store", url.as_str(), "--decline-rate", "0.5", "--seed", seed];
    let mut survivor = ServiceProcess::start("payment-service", broker, &decides("1"));
    let mut zombie = start_zombie(&decides("2"));
    let identity = writer_identity(&zombie);
    let mut notification = ServiceProcess::start("notification-service", broker, &[]);
    // The orders start once every consumer has its partitions (the group's
    // first assignment waits 3 s, more as members join): the strike, 20 paid
    // orders in, then meets orders in flight on any machine.
    for service in [&survivor, &zombie, &notification] {
        service.wait_until("its partitions are assigned", MINUTE, |lines| {
            lines.iter().any(|line| line.contains("partitions assigned: ") && line.contains("_topic["))
        });
    }
    let mut orders =
        ServiceProcess::start("order-service", broker, &["--count", &ORDERS.to_string(), "--rate", "1000"]);
    zombie.wait_until("it pays orders", MINUTE, |lines| lines.iter().filter(|line| line.contains(PAID)).count() >= 20);
    strike_inside_a_batch(postgres, &identity, || away(&zombie));
    let away_at = Instant::now();
    let emailed_then = emailed(&notification.lines()).len() as u64;
    assert!(emailed_then < ORDERS, "every order was emailed before the fault: nothing was tested");

    notification.wait_until(
        "every order is emailed while the zombie is away",
        AWAY.saturating_sub(Duration::from_secs(5)),
        |lines| emailed(lines).len() as u64 >= ORDERS,
    );
    let done_after = away_at.elapsed();
    std::thread::sleep(AWAY.saturating_sub(away_at.elapsed())); // the fault itself: it lasts this long
    back(&zombie);
    println!("{emailed_then} of {ORDERS} emailed when the zombie went away; all {done_after:?} after");

    assert!(orders.wait_exit(MINUTE).success(), "order-service failed");
    for service in [&mut survivor, &mut zombie, &mut notification] {
        service.stop_gracefully(MINUTE);
    }
    let outcome = store::Outcome::of(
        1001..=1000 + ORDERS,
        &payment_events(broker),
        &postgres.charges(),
        &store::emails(&harness::store_path(&broker.address, "notification-service")),
        &emailed(&notification.lines()),
    );
    println!("{outcome:?}");
    outcome.assert_holds();
}

#[test]
fn a_payment_instance_frozen_in_a_batch_stalls_its_successor_only_within_the_store_bounds() {
    let postgres = Postgres::start();
    let broker = Broker::start();
    the_survivor_finishes_while_the_zombie_is_away(
        &postgres,
        &broker,
        |args| ServiceProcess::start("payment-service", &broker, args),
        ServiceProcess::pause,
        ServiceProcess::resume,
    );
}

#[test]
fn a_payment_instance_cut_off_in_a_batch_stalls_its_successor_only_within_the_store_bounds() {
    let network = Network::new();
    let host = network.add_host();
    let postgres = Postgres::start_on(network.bridge_ip());
    let broker = Broker::start_on(network.bridge_ip());
    the_survivor_finishes_while_the_zombie_is_away(
        &postgres,
        &broker,
        |args| host.start("payment-service", &broker, args),
        |_| network.cut(&host),
        |_| network.restore(&host),
    );
}
