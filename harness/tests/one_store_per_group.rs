//! The instances of a group fence with one store, or not at all: an instance
//! whose store is another than its group's stops at start with exit status 2,
//! naming both stores; a store replaced under a running service (another store
//! at its URL) ends it with exit status 1.

use harness::postgres::Postgres;
use harness::{store_path, Broker, ServiceProcess};
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);

/// The store id a service logged at start.
fn store_id(service: &ServiceProcess) -> String {
    let lines = service.lines();
    let line = lines.iter().find(|line| line.contains("(store ")).expect("a line names the store's id");
    let (_, rest) = line.split_once("(store ").expect("the store's id");
    rest.split(')').next().expect("the store's id").to_string()
}

fn assigned(lines: &[String]) -> bool {
    lines.iter().any(|line| line.contains("partitions assigned"))
}

#[test]
fn an_instance_whose_store_is_not_its_groups_exits_2_at_start_naming_both() {
    let broker = Broker::start();
    let first = ServiceProcess::start("payment-service", &broker, &[]);
    first.wait_until("the first instance has its partitions", MINUTE, assigned);

    // Another folder, so another default store: as two containers, or two hosts, would each have.
    let other = store_path(&broker.address, "payment-service").with_file_name("elsewhere.db");
    let url = format!("sqlite://{}", other.display());
    let mut second = ServiceProcess::start("payment-service", &broker, &["--store", &url]);
    let status = second.wait_exit(MINUTE);
    assert_eq!(status.code(), Some(2), "an instance on another store: {status}");
    let (ours, theirs) = (store_id(&second), store_id(&first));
    assert_ne!(ours, theirs, "two files, two stores");
    let why =
        format!("fence with two stores: this one with store {ours}, member payment-service.store-{theirs}");
    assert!(second.lines().iter().any(|line| line.contains(&why)), "no line says {why:?}");
    assert!(!assigned(&second.lines()), "it joined the group before it stopped");

    // One on the group's store joins it.
    let third = ServiceProcess::start("payment-service", &broker, &[]);
    third.wait_until("an instance on the group's store has partitions", MINUTE, assigned);
    assert_eq!(store_id(&third), theirs);
    for instance in [&first, &third] {
        assert!(instance.lines().iter().all(|line| !line.contains("two stores")), "{}", instance.name);
    }
}

#[test]
fn a_postgres_store_made_anew_under_a_running_service_ends_it_with_exit_1() {
    let broker = Broker::start();
    let postgres = Postgres::start();
    let url = postgres.url();
    let mut payment = ServiceProcess::start("payment-service", &broker, &["--store", &url]);
    let paid =
        |count: usize| move |lines: &[String]| harness::count_orders(lines, harness::PAID).len() >= count;
    let mut orders = ServiceProcess::start("order-service", &broker, &["--count", "20", "--rate", "0"]);
    payment.wait_until("it pays every order", MINUTE, paid(20));
    assert!(orders.wait_exit(MINUTE).success(), "order-service failed");
    let first = store_id(&payment);

    // The database emptied (its tables dropped) and the service's session ended: it reconnects,
    // and finds no tables, so makes them, with a new id.
    postgres.query("DROP TABLE payments, emails, store_identity, store_schema");
    postgres.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'payment-service%'");
    let mut more = ServiceProcess::start(
        "order-service",
        &broker,
        &["--count", "20", "--rate", "0", "--start-id", "2001"],
    );
    let status = payment.wait_exit(MINUTE);
    assert_eq!(status.code(), Some(1), "payment-service whose store was made anew: {status}");
    let why = format!(", it was {first}): exiting with status 1");
    assert!(
        payment.lines().iter().any(|line| line.contains("is another store now") && line.contains(&why)),
        "no line says {why:?}"
    );
    assert!(more.wait_exit(MINUTE).success(), "order-service failed");
    assert_eq!(
        postgres.query("SELECT count(*) FROM payments"),
        "0",
        "a charge was recorded in the new store"
    );
}
