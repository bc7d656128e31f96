//! The store's schema version: a store an older service made is migrated in
//! place, with what it holds; one a newer service made is refused, and a
//! service given it stops at start with exit status 2, saying why. A store
//! has an id of its own from version 3 on, kept for its life.

use common::store::{ChargeVerdict, EmailVerdict, Store, StoreSetup, StoreUrl};
use harness::postgres::Postgres;
use harness::store::{ask, open};
use harness::{Broker, ServiceProcess};
use rusqlite::Connection;
use std::path::PathBuf;
use std::time::Duration;

/// Version 1's tables, as the services before the version wrote them.
const VERSION_1: &str = "CREATE TABLE payments (
        order_id BIGINT PRIMARY KEY, user_id BIGINT NOT NULL, amount REAL NOT NULL,
        outcome TEXT NOT NULL, reason TEXT, event TEXT NOT NULL,
        charged_by TEXT NOT NULL, charged_at_ms BIGINT NOT NULL);
    CREATE INDEX payments_charged_at ON payments (charged_at_ms);
    CREATE TABLE emails (
        order_id BIGINT PRIMARY KEY, claimed_by TEXT NOT NULL, claimed_at_ms BIGINT NOT NULL,
        sent_by TEXT, sent_at_ms BIGINT, in_doubt INTEGER NOT NULL DEFAULT 0);
    CREATE INDEX emails_claimed_at ON emails (claimed_at_ms);";

/// A SQLite store with version 1's tables, in a fresh folder of this test's:
/// the folder, the store's path, and a connection to it.
fn store_of_version_1(name: &str) -> (PathBuf, PathBuf, Connection) {
    let dir = std::env::temp_dir().join(format!("pipeline-schema-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let path = dir.join("store.db");
    let store = Connection::open(&path).expect("the store opens");
    store.execute_batch(VERSION_1).expect("version 1's tables");
    (dir, path, store)
}

#[test]
fn a_sqlite_store_of_version_1_is_migrated_in_place_with_its_rows() {
    let (dir, path, old) = store_of_version_1("migrated");
    // Made moments ago: older than the store's retention, they would be pruned.
    old.execute_batch(
        "INSERT INTO payments VALUES (1, 7, 12.5, 'declined', 'card declined', '{\"old\":1}', 'a#1',
             unixepoch() * 1000);
         INSERT INTO emails VALUES (7, 'a#1', unixepoch() * 1000, 'a#1', unixepoch() * 1000, 0);",
    )
    .expect("version 1's rows");
    drop(old);

    let store = open(&StoreUrl::Sqlite(path.display().to_string()), "b#2-0");
    match ask(|reply| store.charge(charge(1), reply)) {
        ChargeVerdict::Found(recorded) => assert_eq!(recorded.event, b"{\"old\":1}"),
        other => panic!("the migrated charge of order 1 was not found: {other:?}"),
    }
    assert_eq!(
        ask(|reply| store.claim_email(7, false, reply)),
        EmailVerdict::AlreadySent { sent_by: "a#1".into() }
    );
    let migrated = Connection::open(&path).expect("the store opens");
    let value = |sql: &str| -> String {
        migrated.query_row(sql, [], |row| row.get(0)).unwrap_or_else(|e| panic!("{sql}: {e}"))
    };
    assert_eq!(value("SELECT CAST(user_version AS TEXT) FROM pragma_user_version"), "3");
    assert_eq!(value("SELECT CAST(count(*) AS TEXT) FROM store_identity"), "1", "the store has an id");
    for table in ["payments", "emails"] {
        let sql = value(&format!("SELECT sql FROM sqlite_master WHERE name = '{table}'"));
        assert!(sql.contains("order_id INTEGER PRIMARY KEY"), "{table} is not keyed by its rowid: {sql}");
    }
    let indexes = value("SELECT CAST(count(*) AS TEXT) FROM sqlite_master WHERE type = 'index'");
    assert_eq!(indexes, "0", "an index is left: neither automatic ones nor time ones (pruning is by key)");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_service_given_a_sqlite_store_of_a_newer_schema_exits_2_at_start() {
    let (dir, path, newer) = store_of_version_1("newer");
    newer.pragma_update(None, "user_version", 4).expect("a newer version");
    drop(newer);

    let broker = Broker::start();
    let url = format!("sqlite://{}", path.display());
    let mut payment = ServiceProcess::start("payment-service", &broker, &["--store", &url]);
    let status = payment.wait_exit(Duration::from_secs(60));
    assert_eq!(status.code(), Some(2), "payment-service with a newer store: {status}");
    let why = format!("the store {url}: its schema is version 4, newer than this service's (3)");
    assert!(payment.lines().iter().any(|line| line.contains(&why)), "no line says {why:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_postgres_store_of_a_newer_schema_is_refused() {
    let postgres = Postgres::start();
    let url = StoreUrl::parse(&postgres.url()).expect("a store URL");
    drop(open(&url, "a#1-0")); // creates the tables at the current version
    postgres.query("UPDATE store_schema SET version = 4");
    let setup = StoreSetup { url, instance: "b#2-0".into(), retention_days: 7, log_written: || true };
    let refused = Store::open(setup).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(refused.contains("schema is version 4, newer than this service's (3)"), "{refused:?}");
}

/// The id a store at `url` has, as a service opening it finds it.
fn id_of(url: &StoreUrl) -> String {
    open(url, "a#1-0").id().to_string()
}

#[test]
fn a_sqlite_store_of_version_2_is_given_an_id_which_it_keeps() {
    let (dir, path, version_1) = store_of_version_1("version-2");
    drop(version_1);
    let url = StoreUrl::Sqlite(path.display().to_string());
    let first = id_of(&url);
    assert_eq!(id_of(&url), first, "the id changed on a second opening");
    let store = Connection::open(&path).expect("the store opens");
    store.execute_batch("DROP TABLE store_identity; PRAGMA user_version = 2;").expect("made version 2");
    drop(store);
    let given = id_of(&url);
    assert_ne!(given, first, "the id is drawn again when the migration gives one");
    assert_eq!(id_of(&url), given, "the id changed on a second opening");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_postgres_store_of_version_2_is_given_an_id_which_it_keeps() {
    let postgres = Postgres::start();
    let url = StoreUrl::parse(&postgres.url()).expect("a store URL");
    let first = id_of(&url);
    assert_eq!(id_of(&url), first, "the id changed on a second opening");
    postgres.query("DROP TABLE store_identity; UPDATE store_schema SET version = 2");
    let given = id_of(&url);
    assert_ne!(given, first, "the id is drawn again when the migration gives one");
    assert_eq!(id_of(&url), given, "the id changed on a second opening");
    assert_eq!(postgres.query("SELECT max(version) FROM store_schema"), "3");
}

fn charge(order_id: u64) -> common::store::Charge {
    common::store::Charge {
        order_id,
        user_id: 7,
        amount: 12.5,
        declined: None,
        event: b"{\"new\":1}".to_vec(),
    }
}
