//! The happy path, end to end: 1,000 orders through the three real services.

use harness::{assert_exactly_once, count_orders, errors, Broker, ServiceProcess, NOTIFIED, PAID};
use std::time::Duration;

const ORDERS: u64 = 1000;
const FIRST: u64 = 1001;

#[test]
fn every_order_is_paid_and_notified_exactly_once() {
    let broker = Broker::start();
    let mut notification = ServiceProcess::start("notification-service", &broker, &[]);
    let mut payment = ServiceProcess::start("payment-service", &broker, &[]);
    let mut orders = ServiceProcess::start("order-service", &broker, &["--count", "1000", "--rate", "0"]);

    let status = orders.wait_exit(Duration::from_secs(120));
    assert!(status.success(), "order-service exited with {status}");
    notification.wait_until("every order is notified", Duration::from_secs(120), |lines| {
        count_orders(lines, NOTIFIED).len() as u64 >= ORDERS
    });
    payment.stop_gracefully(Duration::from_secs(30));
    notification.stop_gracefully(Duration::from_secs(30));

    let ids = FIRST..=FIRST + ORDERS - 1;
    assert_exactly_once(
        &count_orders(&orders.lines(), "📦 Order Created: {\"order_id\":"),
        ids.clone(),
        "created",
    );
    assert_exactly_once(&count_orders(&payment.lines(), PAID), ids.clone(), "paid");
    assert_exactly_once(&count_orders(&notification.lines(), NOTIFIED), ids, "notified");
    let emails = notification.lines().iter().filter(|l| l.contains("📨 Email sent to customer")).count();
    assert_eq!(emails as u64, ORDERS, "one email per order");
    for service in [&orders, &payment, &notification] {
        let lines = service.lines();
        assert!(errors(&lines).is_empty(), "{} printed errors: {:#?}", service.name, errors(&lines));
        let summary = lines.iter().find(|l| l.contains("📊 summary:")).cloned();
        let summary = summary.unwrap_or_else(|| panic!("{} logged no summary", service.name));
        assert!(summary.contains(&format!("processed={ORDERS} crashes=0")), "{}: {summary}", service.name);
    }
}

#[test]
fn a_missing_broker_is_reported_in_one_clear_line() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let address = format!("127.0.0.1:{port}");
    let mut payment = ServiceProcess::start_at("payment-service", &address, &[]);
    // The service waits 15 s for the broker by default; 60 s means it hangs.
    let status = payment.wait_exit(Duration::from_secs(60));
    assert!(!status.success());
    let lines = payment.lines();
    let errors = errors(&lines);
    assert_eq!(errors.len(), 1, "one error line expected: {errors:#?}");
    assert!(errors[0].contains(&address), "{}", errors[0]);
    assert!(errors[0].contains("./scripts/broker"), "{}", errors[0]);
}
