//! payment-service: consumes `order_created` events from `order_topic`, pays each
//! order once, and publishes the outcome to `payment_topic`.
//!
//! After each partition assignment the ledger (`ledger.rs`) reads `payment_topic`,
//! so orders paid before a crash or by another instance are not paid again.
//!
//! ConsumerActor --Process--> PaymentActor --Publish--> ProducerActor --Completed--> ConsumerActor

mod ledger;
mod payment;

use clap::Parser;
use common::config::{probability, KafkaArgs, RuntimeArgs};
use common::event::Status;
use common::fault::Role;
use common::kafka::dead_letter_topic;
use payment::PaymentActor;
use std::process::ExitCode;

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
    runtime: RuntimeArgs,
}

fn main() -> ExitCode {
    let args = &Args::parse();
    common::service::run(
        "payment-service",
        Role::Consumer,
        &args.kafka,
        &args.runtime,
        |mut service| async move {
            let (orders, payments) = (&args.kafka.order_topic, &args.kafka.payment_topic);
            service.prepare_topics(&[orders.clone(), payments.clone(), dead_letter_topic(orders)]).await?;
            let producer = service.start_producer()?;
            let payment = service.supervise(PaymentActor::new(
                args.decline_rate,
                args.runtime.seed,
                payments,
                producer.clone().recipient(),
                service.supervision.stats.clone(),
            ));
            let refresh_ledger = ledger::refresh_after_assign(
                args.kafka.brokers.clone(),
                payments.clone(),
                payment.clone().recipient(),
                service.supervision.shutdown.clone(),
            );
            let accepted = &[Status::Created];
            service.start_consumer(
                &args.group_id,
                orders,
                accepted,
                payment.recipient(),
                producer.recipient(),
                refresh_ledger,
            )?;
            Ok(service)
        },
    )
}
