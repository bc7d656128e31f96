//! order-service: creates orders and publishes `order_created` events to `order_topic`.
//!
//! drive --Tick--> OrderGenerator --Process--> OrderActor --Publish--> ProducerActor --Completed--> OrderGenerator

mod generator;
mod ids;
mod orders;

use clap::Parser;
use common::config::{KafkaArgs, RuntimeArgs};
use common::fault::Role;
use generator::{GeneratorSetup, OrderGenerator};
use ids::IdClass;
use orders::OrderActor;
use std::process::ExitCode;

/// Creates orders and publishes them to order_topic.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    #[command(flatten)]
    kafka: KafkaArgs,
    /// The first order id (default: the first after the highest order on
    /// order_topic, or 1001 on an empty topic).
    #[arg(long)]
    start_id: Option<u64>,
    /// How many order-service instances run at once: each makes every N-th id.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
    instances: u64,
    /// This instance's number, from 0 to --instances minus 1: its ids are those
    /// equal to it modulo --instances, so no two instances make the same id.
    #[arg(long, default_value_t = 0)]
    instance: u64,
    /// Orders per second (0 = as fast as the broker takes them).
    #[arg(long, default_value_t = 1.0, value_parser = rate)]
    rate: f64,
    /// Stop after this many orders are acknowledged by the broker (default: run until Ctrl-C).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

fn rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if r == 0.0 || (0.001..=1_000_000.0).contains(&r) => Ok(r),
        _ => Err(format!(
            "{text:?} is not a rate: give orders per second from 0.001 to 1000000, like 1 or 500 (0 = unlimited)"
        )),
    }
}

fn main() -> ExitCode {
    let args = &Args::parse();
    if args.instance >= args.instances {
        let message = format!(
            "--instance {} is not below --instances {}: number the instances from 0\n",
            args.instance, args.instances
        );
        clap::Error::raw(clap::error::ErrorKind::ValueValidation, message).exit();
    }
    let class = IdClass { instance: args.instance, instances: args.instances };
    common::service::run(
        "order-service",
        Role::Generator,
        &args.kafka,
        &args.runtime,
        |mut service| async move {
            let topic = &args.kafka.order_topic;
            service.prepare_topics(std::slice::from_ref(topic)).await?;
            let (client, topic, start_id) = (args.kafka.client_config(), topic.clone(), args.start_id);
            let first_id =
                actix_rt::task::spawn_blocking(move || ids::first_id(&client, &topic, class, start_id))
                    .await
                    .map_err(|e| format!("cannot read where order ids continue: {e}"))??;
            let producer = service.start_producer()?;
            let orders = service.supervise(OrderActor::new(&args.kafka.order_topic, producer.recipient()));
            let generator = service.supervise(OrderGenerator::new(GeneratorSetup {
                first_id,
                id_step: args.instances,
                seed: args.runtime.seed,
                count: args.count,
                orders: orders.recipient(),
                in_flight: service.in_flight.clone(),
                stats: service.supervision.stats.clone(),
                shutdown: service.supervision.shutdown.clone(),
            }));
            let (in_flight, shutdown) = (service.in_flight.clone(), service.supervision.shutdown.clone());
            actix_rt::spawn(generator::drive(generator, args.rate, args.count, in_flight, shutdown));
            Ok(service)
        },
    )
}
