//! Order ids never repeat: a second run of order-service continues after the
//! highest order on `order_topic` (past bad records at its end), and two
//! instances running at once make disjoint ids. Every order of every run is
//! paid and notified exactly once.

use harness::{assert_exactly_once, count_orders, payments_on_topic, Broker, Service, NOTIFIED};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);
const CREATED: &str = "📦 Order Created: {\"order_id\":";

#[test]
fn later_runs_and_concurrent_instances_never_reuse_an_order_id() {
    let broker = Broker::start();
    let mut notification = Service::start("notification-service", &broker, &[]);
    let mut payment = Service::start("payment-service", &broker, &[]);
    let mut first_run = Service::start("order-service", &broker, &["--count", "100", "--rate", "0"]);
    assert!(first_run.wait_exit(MINUTE).success(), "the first run failed");

    // A bad record at the end of every partition: the last record is not always an order.
    let producer: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", &broker.address).create().expect("a test producer");
    for partition in 0..3 {
        let record = BaseRecord::<str, [u8]>::to("order_topic").partition(partition).payload(b"not an order");
        producer.send(record).map_err(|(e, _)| e).expect("the test producer's queue has room");
    }
    producer.flush(Duration::from_secs(30)).expect("the test producer flushes");

    let instance = |n: &'static str| {
        let args = ["--count", "100", "--rate", "0", "--instances", "2", "--instance", n];
        Service::start("order-service", &broker, &args)
    };
    let mut second_runs = [instance("0"), instance("1")];
    for run in &mut second_runs {
        assert!(run.wait_exit(MINUTE).success(), "a second-run instance failed");
    }
    notification
        .wait_until("every order is notified", MINUTE, |lines| count_orders(lines, NOTIFIED).len() >= 300);
    payment.stop_gracefully(MINUTE);
    notification.stop_gracefully(MINUTE);

    let mut created = first_run.lines();
    for run in &second_runs {
        assert!(run.lines().iter().any(|l| l.contains("the highest order on order_topic is 1100")));
        created.extend(run.lines());
    }
    let all = 1001..=1300;
    assert_exactly_once(&count_orders(&created, CREATED), all.clone(), "orders created");
    assert_exactly_once(&payments_on_topic(&broker), all.clone(), "payment events on payment_topic");
    assert_exactly_once(&count_orders(&notification.lines(), NOTIFIED), all, "notifications");
}
