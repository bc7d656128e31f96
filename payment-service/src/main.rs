//! payment-service: consumes `order_created` events from `order_topic`, charges
//! each order once, and publishes the outcome to `payment_topic`.
//!
//! Each charge is recorded in the service's store (`--store`) under its order's
//! id before its payment event is published: the store, not the consumer, is
//! the fence against a second decision (see `rules.rs`; `payment.rs` runs them).
//!
//! ConsumerActor --Process--> PaymentActor --Charge--> store --Charged--> PaymentActor
//!   --Publish--> ProducerActor --Completed--> PaymentActor --Completed--> ConsumerActor

mod payment;
mod rules;

use clap::Parser;
use common::actor::fault::Role;
use common::kafka::producer::dead_letter::dead_letter_topic;
use common::runtime::config::{probability, DedupArgs, KafkaArgs, RuntimeArgs, StoreArgs};
use common::runtime::service::ConsumerSpec;
use common::wire::event::Status;
use payment::{PaymentActor, PaymentSetup};
use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Pays for orders from order_topic and publishes payment events.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Consumer group: instances in the same group share the orders.
    #[arg(long, default_value = "payment-service")]
    group_id: String,
    /// Share of payments to decline (0..=1), published as payment_failed.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    decline_rate: f64,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    dedup: DedupArgs,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

fn main() -> ExitCode {
    let args = &Args::parse();
    common::runtime::service::run(
        "payment-service",
        Role::Consumer,
        &args.kafka,
        &args.runtime,
        |mut service| async move {
            let (orders, payments) = (&args.kafka.order_topic, &args.kafka.payment_topic);
            service.ensure_topics(&[orders.clone(), payments.clone(), dead_letter_topic(orders)]).await?;
            let producer = service.start_producer()?;
            let payment = service.supervise(PaymentActor::new(PaymentSetup {
                decline_rate: args.decline_rate,
                seed: args.runtime.seed,
                order_topic: orders.clone(),
                payment_topic: payments.as_str().into(),
                store: service.open_store(&args.store)?,
                dedup_capacity: args.dedup.dedup_capacity as usize,
                producer: producer.clone().recipient(),
                metrics: service.metrics(),
            }));
            service.start_consumer(ConsumerSpec {
                group: &args.group_id,
                topic: orders,
                accepted: &[Status::Created],
                domain: payment.recipient(),
                dead_letters: producer.recipient(),
            })?;
            Ok(service)
        },
    )
}
