//! A record the broker refuses for good ends the service with one clear line,
//! instead of being published again every second forever, holding its
//! in-flight slot, its offset and its order.
//!
//! The real broker takes every record this pipeline writes, so the refusal comes
//! from rdkafka's `MockCluster`: a Kafka broker inside the test process that
//! answers produce requests with the errors the test pushes.

use actix::{Actor, Context, Handler};
use clap::Parser;
use common::actor::fault::{CrashMode, FaultPlan, Role};
use common::actor::in_flight::InFlight;
use common::actor::messages::{Completed, Origin, Publish, Ticket};
use common::actor::restart_policy::RestartLimits;
use common::actor::supervisor::Supervision;
use common::base::metrics::Metrics;
use common::base::shutdown::{Reason, Shutdown};
use common::kafka::client::build;
use common::kafka::producer::actor::ProducerActor;
use common::runtime::config::KafkaArgs;
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    kafka: KafkaArgs,
}

/// Stands in for a source: tells the test which events were completed.
struct Source(mpsc::UnboundedSender<Origin>);

impl Actor for Source {
    type Context = Context<Self>;
}

impl Handler<Completed> for Source {
    type Result = ();
    fn handle(&mut self, Completed { origin, .. }: Completed, _: &mut Context<Self>) {
        let _ = self.0.send(origin);
    }
}

#[actix_rt::test]
async fn a_record_refused_for_good_stops_the_service_instead_of_being_retried_forever() {
    let cluster = MockCluster::new(1).expect("a mock cluster");
    cluster.create_topic("orders", 1, 1).expect("a topic on the mock cluster");
    let refusals = [RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE; 100];
    cluster.request_errors(RDKafkaApiKey::Produce, &refusals);
    let kafka = Flags::parse_from(["test", "--brokers", &cluster.bootstrap_servers()]).kafka;
    let supervision = Supervision {
        limits: RestartLimits::default(),
        faults: FaultPlan { rate: 0.0, target: Role::Any, mode: CrashMode::Panic, seed: 0 },
        metrics: Arc::new(Metrics::default()),
        shutdown: Shutdown::default(),
    };
    let producer =
        build::producer(&kafka.settings(), "test", supervision.metrics.clone()).expect("a producer");
    let producer = ProducerActor::start(producer, &supervision);
    let (completions, mut completed) = mpsc::unbounded_channel();
    let source = Source(completions).start();
    let in_flight = InFlight::new(1);
    let slot = Arc::new(in_flight.try_reserve().expect("a free slot"));

    producer.do_send(Publish {
        topic: "orders".into(),
        partition: None,
        key: Some(b"1001".to_vec()),
        payload: b"{}".to_vec(),
        headers: Default::default(),
        ticket: Ticket::new(Origin::Order { order_id: 1001 }, slot, Arc::new(source.recipient())),
        announce: None,
    });
    let escalation = tokio::time::timeout(Duration::from_secs(20), supervision.shutdown.triggered()).await;
    let Ok(Reason::Escalated(why)) = escalation else {
        panic!("a refused record did not stop the service within 20 s: {escalation:?}");
    };
    assert!(why.starts_with("ProducerActor cannot go on: cannot publish to orders"), "{why}");
    assert!(why.contains("MessageSizeTooLarge") && why.contains("max.message.bytes"), "{why}");
    assert!(completed.try_recv().is_err(), "a refused record's event must not complete");
    assert!(
        supervision.metrics.summary().contains("crashes=0 () restarts=0"),
        "{}",
        supervision.metrics.summary()
    );
}
