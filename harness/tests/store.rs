//! The store, SQLite and PostgreSQL alike: what wins a key, what a second
//! writer is told, how an email's claim is held, lapses and is taken over; and
//! the whole pipeline on PostgreSQL, through the server stopping mid-stream.

use common::store::{Charge, ChargeVerdict, EmailVerdict, StoreUrl};
use harness::postgres::Postgres;
use harness::store::{ask, open};
use harness::{emailed, payment_events, store, Broker, ServiceProcess};
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);

fn charge(order_id: u64, declined: Option<&str>) -> Charge {
    let event = format!("{{\"order_id\":{order_id},\"declined\":{declined:?}}}");
    Charge {
        order_id,
        user_id: 7,
        amount: 12.5,
        declined: declined.map(str::to_string),
        event: event.into_bytes(),
    }
}

/// Plays both stores' rules with two instances; `lapse` makes the claim on an
/// email older than the claim's lease.
fn fences(url: StoreUrl, lapse: impl Fn(u64)) {
    let (a, b) = (open(&url, "a#1"), open(&url, "b#2"));
    assert_eq!(ask(|reply| a.charge(charge(1, Some("card declined")), reply)), ChargeVerdict::Recorded);
    match ask(|reply| b.charge(charge(1, None), reply)) {
        ChargeVerdict::Found(recorded) => {
            assert_eq!(recorded.event, charge(1, Some("card declined")).event, "the first decision stands");
            assert_eq!((recorded.user_id, recorded.amount, recorded.charged_by.as_str()), (7, 12.5, "a#1"));
        }
        other => panic!("a second charge of order 1 was {other:?}"),
    }
    assert_eq!(ask(|reply| b.charge(charge(2, None), reply)), ChargeVerdict::Recorded);

    assert_eq!(ask(|reply| a.claim_email(7, false, reply)), EmailVerdict::Claimed);
    assert_eq!(ask(|reply| a.claim_email(7, true, reply)), EmailVerdict::Claimed, "a's claim is still a's");
    assert_eq!(ask(|reply| b.claim_email(7, false, reply)), EmailVerdict::Busy { claimed_by: "a#1".into() });
    lapse(7);
    assert_eq!(
        ask(|reply| b.claim_email(7, false, reply)),
        EmailVerdict::TakenOver { claimed_by: "a#1".into() }
    );
    assert_eq!(
        ask(|reply| a.claim_email(7, true, reply)),
        EmailVerdict::ClaimedElsewhere { claimed_by: "b#2".into() },
        "a, back, finds its claim taken over and does not send"
    );
    ask(|reply| b.email_sent(7, reply));
    assert_eq!(
        ask(|reply| a.claim_email(7, false, reply)),
        EmailVerdict::AlreadySent { sent_by: "b#2".into() }
    );
    assert_eq!(ask(|reply| a.claim_email(8, false, reply)), EmailVerdict::Claimed);
}

#[test]
fn sqlite_fences_a_second_writer() {
    let dir = std::env::temp_dir().join(format!("pipeline-store-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let path = dir.join("store.db");
    let lapse = |order_id: u64| {
        let db = rusqlite::Connection::open(&path).expect("the store opens");
        db.execute(
            "UPDATE emails SET claimed_at_ms = claimed_at_ms - 60000 WHERE order_id = ?1",
            [order_id as i64],
        )
        .expect("the claim is made older");
    };
    fences(StoreUrl::Sqlite(path.display().to_string()), lapse);
    let emails = store::emails(&path);
    assert_eq!(emails[&7], store::Email { sent: true, in_doubt: 1 });
    assert_eq!(emails[&8], store::Email { sent: false, in_doubt: 0 });
    assert_eq!(store::charges(&path).len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn postgres_fences_a_second_writer() {
    let postgres = Postgres::start();
    let lapse = |order_id: u64| {
        postgres.query(&format!(
            "UPDATE emails SET claimed_at_ms = claimed_at_ms - 60000 WHERE order_id = {order_id}"
        ));
    };
    fences(StoreUrl::parse(&postgres.url()).expect("a store URL"), lapse);
    assert_eq!(postgres.query("SELECT in_doubt, sent_by FROM emails WHERE order_id = 7"), "1|b#2");
    assert_eq!(postgres.query("SELECT count(*) FROM payments"), "2");
}

/// Two payment-service instances and notification-service on PostgreSQL;
/// the server stopped mid-stream for a while, then started again: the
/// services wait, say so, record and publish nothing meanwhile, and carry on.
#[test]
fn the_pipeline_on_postgres_waits_out_the_store_going_away() {
    let postgres = Postgres::start();
    the_pipeline_on_postgres_waits_out(&postgres, Postgres::stop, Postgres::resume, "is unavailable");
}

/// The same with the server hung (every process of it SIGSTOPped) instead:
/// connections stay open and nothing answers, so no statement fails; the
/// store's watchdog says that nothing commits.
#[test]
fn the_pipeline_on_postgres_waits_out_the_store_hanging() {
    let postgres = Postgres::start();
    the_pipeline_on_postgres_waits_out(&postgres, Postgres::hang, Postgres::unhang, "has not committed for");
}

/// The pipeline on `postgres`, with `away` done to it once 300 orders are
/// emailed, until the services say `said`; then `back`.
fn the_pipeline_on_postgres_waits_out(
    postgres: &Postgres,
    away: impl Fn(&Postgres),
    back: impl Fn(&Postgres),
    said: &str,
) {
    const ORDERS: u64 = 1000;
    let broker = Broker::start();
    let url = postgres.url();
    let store = ["--store", url.as_str(), "--decline-rate", "0.5"];
    let seeded = |seed: &'static str| [&store[..], &["--seed", seed]].concat();
    let mut payments = [
        ServiceProcess::start("payment-service", &broker, &seeded("1")),
        ServiceProcess::start("payment-service", &broker, &seeded("2")),
    ];
    let mut notification = ServiceProcess::start("notification-service", &broker, &["--store", &url]);
    let mut orders =
        ServiceProcess::start("order-service", &broker, &["--count", &ORDERS.to_string(), "--rate", "100"]);
    notification.wait_until("300 orders are emailed", MINUTE, |lines| emailed(lines).len() >= 300);
    away(postgres);
    notification.wait_until(&format!("it says the store {said}"), MINUTE, |lines| {
        lines.iter().any(|l| l.contains("the store postgres://") && l.contains(said))
    });
    let emailed_while_away = emailed(&notification.lines()).len();
    payments[0].wait_until(&format!("it says the store {said}"), MINUTE, |lines| {
        lines.iter().any(|l| l.contains(said))
    });
    back(postgres);
    notification
        .wait_until("every order is emailed", 3 * MINUTE, |lines| emailed(lines).len() as u64 >= ORDERS);
    assert!(
        emailed_while_away < ORDERS as usize,
        "the store went away after the last email: nothing was tested"
    );
    assert!(orders.wait_exit(MINUTE).success(), "order-service failed");
    for payment in &mut payments {
        payment.stop_gracefully(MINUTE);
    }
    notification.stop_gracefully(MINUTE);
    let outcome = store::Outcome::of(
        1001..=1000 + ORDERS,
        &payment_events(&broker),
        &postgres.charges(),
        &postgres.emails(),
        &emailed(&notification.lines()),
    );
    outcome.assert_holds();
    assert_eq!(outcome.emails_in_doubt, 0, "{outcome:?}");
}

/// A store that cannot be reached at start (a SQLite folder that is missing,
/// no PostgreSQL server at the URL) is a wrong `--store` or a server not
/// started: the service exits 2 with a line naming the store (without its
/// password) and the fix, rather than waiting with orders held back.
#[test]
fn a_store_unreachable_at_start_ends_the_service_with_status_2() {
    let broker = Broker::start();
    let missing = std::env::temp_dir().join(format!("pipeline-missing-{}", std::process::id()));
    let sqlite = format!("sqlite://{}/payments.db", missing.display());
    let nothing_listens = std::net::TcpListener::bind("127.0.0.1:0").and_then(|free| free.local_addr());
    let port = nothing_listens.expect("a free port").port();
    let postgres = format!("postgres://postgres:secret@127.0.0.1:{port}/postgres");
    let shown = format!("postgres://postgres:******@127.0.0.1:{port}/postgres");
    for (url, shown, fix) in [
        (&sqlite, &sqlite, "check that its folder exists"),
        (&postgres, &shown, "check that the server is up"),
    ] {
        let mut payment = ServiceProcess::start("payment-service", &broker, &["--store", url]);
        let status = payment.wait_exit(MINUTE);
        let lines = payment.lines();
        assert_eq!(status.code(), Some(2), "payment-service on {shown}: {status}; {lines:#?}");
        let said = |line: &&String| line.contains(shown.as_str()) && line.contains("at start") && line.contains(fix);
        assert!(lines.iter().any(|line| said(&line)), "no line names {shown} and the fix: {lines:#?}");
        assert!(!lines.iter().any(|line| line.contains("secret")), "the password was logged: {lines:#?}");
    }
    assert!(!missing.exists(), "the missing folder was made");
}

/// An order whose id the store holds for another order (ids reused, e.g. the
/// broker's storage emptied, or another producer) is a conflict: dead-lettered
/// with the reason, counted, never paid; a true copy of an order is paid once.
#[test]
fn an_order_id_recorded_for_another_order_is_dead_lettered_as_a_conflict() {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let broker = Broker::start();
    let mut payment = ServiceProcess::start("payment-service", &broker, &[]);
    let mut notification = ServiceProcess::start("notification-service", &broker, &[]);
    let mut orders = ServiceProcess::start("order-service", &broker, &["--count", "20", "--rate", "0"]);
    notification.wait_until("every order is emailed", MINUTE, |lines| emailed(lines).len() >= 20);
    assert!(orders.wait_exit(MINUTE).success(), "order-service failed");

    let original = String::from_utf8(harness::records_on_topic(&broker, "order_topic")[0].payload.clone())
        .expect("an order in JSON");
    let order: serde_json::Value = serde_json::from_str(&original).expect("an order");
    let order_id = order["order_id"].as_u64().expect("an order id");
    let other = format!(r#"{{"order_id":{order_id},"user_id":999999,"amount":1.5,"status":"created"}}"#);
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .create()
        .expect("a test producer");
    let key = order_id.to_string();
    for payload in [&other, &original] {
        producer.send(BaseRecord::to("order_topic").key(&key).payload(payload)).expect("queued");
    }
    producer.flush(MINUTE).expect("the records are written");
    payment.wait_until("the copy is recognised", MINUTE, |lines| {
        lines.iter().filter(|l| l.contains(&format!("🔁 Order {order_id} "))).count() >= 1
            && lines.iter().any(|l| l.contains("conflicts with the charge recorded"))
    });
    payment.stop_gracefully(MINUTE);
    notification.stop_gracefully(MINUTE);
    let summary = harness::summary(&payment);
    assert_eq!(harness::counter(&summary, "conflicts"), 1, "{summary}");
    let letters = harness::records_on_topic(&broker, "order_topic.dlq");
    assert_eq!(letters.len(), 1, "one dead letter: the conflict");
    assert_eq!(letters[0].payload, other.as_bytes());
    assert!(letters[0].headers["dlq.error"].contains("user 999999, amount 1.5"), "{:?}", letters[0].headers);
    let charges = store::charges(&harness::store_path(&broker.address, "payment-service"));
    assert_eq!(charges.len(), 20, "the conflict was not charged");
    assert_eq!(emailed(&notification.lines())[&order_id], 1, "the true copy was not emailed again");
}

/// A SQLite store deleted under a running payment-service ends it at its next
/// batch, with exit status 1 and a line naming the file: it records nothing in
/// a file that another instance, opening the path now, would not share.
#[test]
fn a_sqlite_store_deleted_under_a_running_service_ends_it() {
    let broker = Broker::start();
    let mut payment = ServiceProcess::start("payment-service", &broker, &[]);
    let mut orders = ServiceProcess::start("order-service", &broker, &["--count", "20", "--rate", "0"]);
    payment.wait_until("it pays every order", MINUTE, |lines| {
        harness::count_orders(lines, harness::PAID).len() >= 20
    });
    assert!(orders.wait_exit(MINUTE).success(), "order-service failed");
    let path = harness::store_path(&broker.address, "payment-service");
    std::fs::remove_file(&path).expect("the store file is deleted");
    let mut more = ServiceProcess::start(
        "order-service",
        &broker,
        &["--count", "20", "--rate", "0", "--start-id", "2001"],
    );
    let status = payment.wait_exit(MINUTE);
    assert_eq!(status.code(), Some(1), "payment-service with its store deleted: {status}");
    let why = format!("the store sqlite://{} is deleted or replaced while in use", path.display());
    assert!(payment.lines().iter().any(|line| line.contains(&why)), "no line says {why:?}");
    assert!(more.wait_exit(MINUTE).success(), "order-service failed");
    assert!(!path.exists() || store::charges(&path).is_empty(), "a charge was recorded in a new file");
}

/// notification-service's SQLite store on a disk that fills up while orders
/// flow: it records nothing, sends nothing unclaimed, says the store is
/// unavailable and waits; once there is room, every order is emailed once.
#[test]
fn a_full_disk_under_the_store_holds_emails_back_until_there_is_room() {
    let disk = harness::small_disk::SmallDisk::mount("store");
    let broker = Broker::start();
    let url = format!("sqlite://{}", disk.dir.join("notification-service.db").display());
    let notification = ServiceProcess::start("notification-service", &broker, &["--store", &url]);
    let _payment = ServiceProcess::start("payment-service", &broker, &[]);
    let mut warm_up = ServiceProcess::start("order-service", &broker, &["--count", "50", "--rate", "0"]);
    notification.wait_until("the warm-up is emailed", MINUTE, |lines| emailed(lines).len() >= 50);
    assert!(warm_up.wait_exit(MINUTE).success(), "order-service failed");

    let filler = disk.fill();
    let mut orders = ServiceProcess::start(
        "order-service",
        &broker,
        &["--count", "500", "--rate", "0", "--start-id", "2001"],
    );
    notification.wait_until("it says the store is unavailable", MINUTE, |lines| {
        lines.iter().any(|l| l.contains("is unavailable") && l.contains("full"))
    });
    let emailed_while_full = emailed(&notification.lines()).len();
    assert!(emailed_while_full < 550, "every order was emailed before the disk was full: nothing was tested");
    std::fs::remove_file(&filler).expect("the filler is deleted");
    assert!(orders.wait_exit(MINUTE).success(), "order-service failed");
    notification.wait_until("every order is emailed", MINUTE, |lines| emailed(lines).len() >= 550);
    let emails = emailed(&notification.lines());
    let twice: Vec<_> = emails.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "emailed twice: {twice:?}");
    println!("{emailed_while_full} of 550 emailed when the disk was full");
}
