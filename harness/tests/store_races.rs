//! Instances racing for one email's claim, on both stores: two takeovers of
//! the same lapsed claim, and a renewal against a takeover. Exactly one of
//! them may send.
//!
//! On PostgreSQL the race is made certain: a test connection holds the claim's
//! row (`FOR UPDATE`) while both instances read the claim and reach their
//! update, and lets it go once both wait for it. SQLite runs one batch at a
//! time (`BEGIN IMMEDIATE`), so there both ask at once and one goes first.

use common::store::{EmailVerdict, Store, StoreUrl};
use harness::postgres::Postgres;
use harness::store::{ask, asked, open};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

const ORDER: u64 = 7;

/// The instance whose claim lapses.
const FIRST: &str = "a#1-0";

/// How long a store takes to answer once it may, at most.
const ANSWER: Duration = Duration::from_secs(60);

/// `FIRST`'s store, having claimed `ORDER`'s email, the claim then made to lapse.
fn lapsed_claim(url: &StoreUrl, lapse: impl FnOnce()) -> Store {
    let first = open(url, FIRST);
    assert_eq!(ask(|reply| first.claim_email(ORDER, false, reply)), EmailVerdict::Claimed);
    lapse();
    first
}

/// Asks each `(store, renew)` for `ORDER`'s email, all at once.
fn ask_at_once(requests: [(&Store, bool); 2]) -> [Receiver<EmailVerdict>; 2] {
    requests.map(|(store, renew)| asked(|reply| store.claim_email(ORDER, renew, reply)))
}

/// Fails unless exactly one of `answers` says to send the email.
fn assert_one_sends(answers: [Receiver<EmailVerdict>; 2]) {
    let verdicts = answers.map(|answer| answer.recv_timeout(ANSWER).expect("the store answers"));
    let senders = verdicts
        .iter()
        .filter(|verdict| matches!(verdict, EmailVerdict::Claimed | EmailVerdict::TakenOver { .. }))
        .count();
    assert_eq!(senders, 1, "{verdicts:?}: not exactly one sends");
}

/// The two races on a SQLite store.
#[test]
fn sqlite_lets_one_of_two_racing_instances_send() {
    let dir = std::env::temp_dir().join(format!("pipeline-store-races-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    for (name, renew) in [("takeovers", false), ("renewal", true)] {
        let path = dir.join(format!("{name}.db"));
        let url = StoreUrl::Sqlite(path.display().to_string());
        let first = lapsed_claim(&url, || {
            let db = rusqlite::Connection::open(&path).expect("the store opens");
            db.execute("UPDATE emails SET claimed_at_ms = claimed_at_ms - 60000", []).expect("it lapses");
        });
        let (second, third) = (open(&url, "b#2-0"), open(&url, "c#3-0"));
        let racer = if renew { &first } else { &third };
        assert_one_sends(ask_at_once([(racer, renew), (&second, false)]));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two instances take over the same lapsed claim, both having read it.
#[test]
fn postgres_lets_one_of_two_racing_takeovers_send() {
    let postgres = Postgres::start();
    let url = StoreUrl::parse(&postgres.url()).expect("a store URL");
    let _first = lapsed_claim(&url, || lapse(&postgres));
    let (second, third) = (open(&url, "b#2-0"), open(&url, "c#3-0"));
    assert_one_sends(held_while_asked(&postgres, [(&second, false), (&third, false)]));
}

/// The instance whose claim lapsed renews it while another takes it over.
#[test]
fn postgres_lets_one_of_a_renewal_and_a_takeover_send() {
    let postgres = Postgres::start();
    let url = StoreUrl::parse(&postgres.url()).expect("a store URL");
    let first = lapsed_claim(&url, || lapse(&postgres));
    let second = open(&url, "b#2-0");
    assert_one_sends(held_while_asked(&postgres, [(&first, true), (&second, false)]));
}

fn lapse(postgres: &Postgres) {
    postgres.query("UPDATE emails SET claimed_at_ms = claimed_at_ms - 60000");
}

/// Makes `requests` while a test connection holds `ORDER`'s row, and lets it
/// go once both wait for it: each has read the claim and reached its update.
fn held_while_asked(postgres: &Postgres, requests: [(&Store, bool); 2]) -> [Receiver<EmailVerdict>; 2] {
    let connect = || postgres::Client::connect(&postgres.url(), postgres::NoTls).expect("a test connection");
    let (mut holder, mut watcher) = (connect(), connect());
    let mut hold = holder.transaction().expect("a transaction");
    hold.execute("SELECT 1 FROM emails WHERE order_id = $1 FOR UPDATE", &[&(ORDER as i64)])
        .expect("the row is held");
    let answers = ask_at_once(requests);
    // Within the stores' lock_timeout (5 s): past it, their updates give up.
    let deadline = Instant::now() + Duration::from_secs(4);
    loop {
        let waiting: i64 = watcher
            .query_one("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'", &[])
            .and_then(|row| row.try_get(0))
            .expect("pg_stat_activity is readable");
        if waiting == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "{waiting} of the 2 instances wait for the held row after 4 s");
        std::thread::sleep(Duration::from_millis(10)); // polling the server: it tells no one
    }
    hold.commit().expect("the row is let go");
    answers
}
