//! order-service: creates orders and publishes `order_created` events to `order_topic`.
//!
//! drive --Tick--> OrderGenerator --Process--> OrderPublisher --Publish--> ProducerActor
//!   (acknowledged by the broker: Deliveries) --Completed--> OrderGenerator

mod generator;
mod ids;
mod publisher;

use clap::Parser;
use common::actor::fault::Role;
use common::runtime::config::{KafkaArgs, RuntimeArgs};
use common::runtime::setup_error::SetupError;
use common::wire::event::MAX_ORDER_ID;
use generator::{GeneratorSetup, OrderGenerator};
use ids::{IdClass, OrderIds};
use log::info;
use publisher::OrderPublisher;
use std::process::ExitCode;
use std::time::SystemTime;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Creates orders and publishes them to order_topic.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    #[command(flatten)]
    kafka: KafkaArgs,
    /// The first order id, at most 9007199254740991 (2^53 - 1). Default: the
    /// microseconds since 2026-01-01T00:00:00Z, so that a later run starts above
    /// every earlier run's ids as long as the clock does not step back and fewer
    /// than a million orders a second were made on average.
    #[arg(long, value_parser = start_id)]
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

fn start_id(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(id) if id <= MAX_ORDER_ID => Ok(id),
        Ok(_) => Err(format!(
            "{text} is above {MAX_ORDER_ID} (2^53 - 1), the highest order id (JavaScript and Python \
             readers read ids up to it exactly): give a lower one"
        )),
        Err(_) => Err(format!("{text:?} is not an order id: give a whole number from 0 to {MAX_ORDER_ID}")),
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
    // `--start-id` and the first id of the instance's class from it, checked before anything starts.
    let forced = args.start_id.map(|start| {
        let first = ids::forced(class, start).unwrap_or_else(|message| {
            clap::Error::raw(clap::error::ErrorKind::ValueValidation, message + "\n").exit()
        });
        (start, first)
    });
    common::runtime::service::run(
        "order-service",
        Role::Generator,
        &args.kafka,
        &args.runtime,
        |mut service| async move {
            let topic = &args.kafka.order_topic;
            service.ensure_topics(std::slice::from_ref(topic)).await?;
            let first_id = match forced {
                Some((start, first)) => {
                    info!(target: "OrderGenerator", "order ids start at {first} (--start-id {start})");
                    first
                }
                None => {
                    let first = ids::from_clock(class, SystemTime::now()).map_err(SetupError::service)?;
                    info!(
                        target: "OrderGenerator",
                        "order ids start at {first}: microseconds since 2026-01-01 (clock)"
                    );
                    first
                }
            };
            let producer = service.start_producer()?;
            let publisher = service.supervise(OrderPublisher::new(topic, producer.recipient()));
            let generator = service.supervise(OrderGenerator::new(GeneratorSetup {
                ids: OrderIds::new(first_id, args.instances),
                seed: args.runtime.seed,
                count: args.count,
                orders: publisher.recipient(),
                metrics: service.metrics(),
                shutdown: service.shutdown(),
            }));
            actix_rt::spawn(generator::drive(
                generator,
                args.rate,
                args.count,
                service.in_flight(),
                service.shutdown(),
            ));
            Ok(service)
        },
    )
}
