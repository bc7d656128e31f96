//! A host whose clock is off makes no peer take over its fresh claims: a claim
//! is timed, and its age judged, by the store's clock, not by the hosts'. A
//! store client running 30 s behind (libfaketime; twice a claim's lease)
//! claims emails in a PostgreSQL store; an instance on time, asking for the
//! same emails right after, must find every claim fresh. Judged by the hosts'
//! clocks, it would find each 30 s old, lapsed, and take it over: an email
//! sent twice, in doubt.
//!
//! PostgreSQL only: the instances of a SQLite file share its host, and so its clock.

use common::store::{EmailVerdict, StoreUrl};
use harness::postgres::Postgres;
use harness::store::{ask, open};
use std::process::Command;

const ORDERS: u64 = 50;

#[test]
fn a_client_30_s_behind_makes_no_peer_take_over_its_fresh_claims() {
    let postgres = Postgres::start();
    let claims = Command::new("faketime")
        .args([
            "-f",
            "-30s",
            env!("CARGO_BIN_EXE_store-claim"),
            &postgres.url(),
            "behind#1-0",
            "1",
            &ORDERS.to_string(),
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot run faketime (Debian's faketime package): {e}"));
    let stdout = String::from_utf8_lossy(&claims.stdout);
    assert!(claims.status.success(), "store-claim failed: {}", String::from_utf8_lossy(&claims.stderr));
    assert_eq!(stdout.lines().filter(|verdict| *verdict == "Claimed").count() as u64, ORDERS, "{stdout}");
    let skewed = postgres.query("SELECT count(*) FROM emails");
    assert_eq!(skewed, ORDERS.to_string(), "the claims are not in the store");

    let url = StoreUrl::parse(&postgres.url()).expect("a store URL");
    let on_time = open(&url, "on-time#2-0");
    for order_id in 1..=ORDERS {
        assert_eq!(
            ask(|reply| on_time.claim_email(order_id, false, reply)),
            EmailVerdict::Busy { claimed_by: "behind#1-0".into() },
            "order {order_id}: a claim made moments ago by a client 30 s behind"
        );
    }
}
