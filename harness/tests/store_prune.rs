//! Pruning by key range (`common/src/store/prune.rs`), on both stores: below
//! the latest mark older than the retention, the rows older than it go; a
//! young row there, or an old one above the mark, stays; older marks go.

use common::store::{Charge, ChargeVerdict, StoreUrl};
use harness::postgres::Postgres;
use harness::store::{ask, open};
use rusqlite::Connection;
use std::time::{SystemTime, UNIX_EPOCH};

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Rows and marks about a retention of 7 days: ids 50 (old), 60 (young) and
/// 150 (old, above the mark of 8 days ago) in both tables, and marks of 9 days,
/// 8 days and an hour ago.
fn history() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_millis() as i64;
    let (old, young) = (now - 8 * DAY_MS, now);
    format!(
        "INSERT INTO payments (order_id, user_id, amount, outcome, event, charged_by, charged_at_ms)
             VALUES (50, 7, 1.0, 'charged', '{{}}', 'old', {old}), (60, 7, 1.0, 'charged', '{{}}', 'old', {young}),
                    (150, 7, 1.0, 'charged', '{{}}', 'old', {old});
         INSERT INTO emails (order_id, claimed_by, claimed_at_ms, sent_by, sent_at_ms)
             VALUES (50, 'old', {old}, 'old', {old}), (60, 'old', {young}, 'old', {young}),
                    (150, 'old', {old}, 'old', {old});
         DELETE FROM prune_marks;
         INSERT INTO prune_marks VALUES ({}, 10, 10), ({}, 100, 100), ({}, 200, 200);",
        now - 9 * DAY_MS,
        now - 8 * DAY_MS,
        now - 3600 * 1000,
    )
}

/// Opens the store at `url` (which the first opening made, and `write`
/// filled with [`history`]) and has it prune, then reads back with `query`
/// the ids left in both tables and how many marks there are.
fn prune(url: &StoreUrl, write: impl Fn(&str), query: impl Fn(&str) -> String) {
    drop(open(url, "maker#1-0"));
    write(&history());
    let store = open(url, "pruner#2-0");
    let charge =
        |order_id| Charge { order_id, user_id: 7, amount: 1.0, declined: None, event: b"{}".to_vec() };
    // The writer prunes after its first batch, before it takes the second.
    assert_eq!(ask(|reply| store.charge(charge(1000), reply)), ChargeVerdict::Recorded);
    assert_eq!(ask(|reply| store.charge(charge(1001), reply)), ChargeVerdict::Recorded);
    assert_eq!(
        query("SELECT group_concat(order_id, ',') FROM (SELECT order_id FROM payments ORDER BY 1) AS p"),
        "60,150,1000,1001"
    );
    assert_eq!(
        query("SELECT group_concat(order_id, ',') FROM (SELECT order_id FROM emails ORDER BY 1) AS e"),
        "60,150"
    );
    // The mark used, the hour-old one, and the one just noted.
    assert_eq!(query("SELECT count(*) FROM prune_marks"), "3");
    assert_eq!(query("SELECT min(payments_below) FROM prune_marks"), "100");
}

#[test]
fn sqlite_prunes_old_rows_below_the_mark() {
    let dir = std::env::temp_dir().join(format!("pipeline-prune-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let path = dir.join("store.db");
    let db = || Connection::open(&path).expect("the store opens");
    prune(
        &StoreUrl::Sqlite(path.display().to_string()),
        |sql| db().execute_batch(sql).expect("history written"),
        |sql| db().query_row(sql, [], |row| row.get::<_, rusqlite::types::Value>(0)).map(text).expect(sql),
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn text(value: rusqlite::types::Value) -> String {
    match value {
        rusqlite::types::Value::Integer(n) => n.to_string(),
        rusqlite::types::Value::Text(s) => s,
        other => format!("{other:?}"),
    }
}

#[test]
fn postgres_prunes_old_rows_below_the_mark() {
    let postgres = Postgres::start();
    let url = StoreUrl::parse(&postgres.url()).expect("a store URL");
    prune(
        &url,
        |sql| drop(postgres.query(sql)),
        |sql| postgres.query(&sql.replace("group_concat(order_id, ',')", "string_agg(order_id::text, ',')")),
    );
}
