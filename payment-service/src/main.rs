//! payment-service: consumes `order_created` events from `order_topic`, pays each
//! order once, and publishes the outcome to `payment_topic`.
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
    let args = Args::parse();
    args.runtime.check_crash_actor(Role::Consumer);
    let kafka = args.kafka.clone();
    common::service::run("payment-service", kafka, args.runtime.clone(), |mut service| async move {
        let (orders, payments) = (&args.kafka.order_topic, &args.kafka.payment_topic);
        service.prepare_topics(&[orders.clone(), payments.clone(), dead_letter_topic(orders)]).await?;
        let (brokers, topic) = (args.kafka.brokers.clone(), payments.clone());
        let paid = actix_rt::task::spawn_blocking(move || ledger::paid_orders(&brokers, &topic))
            .await
            .map_err(|e| format!("rebuilding the paid orders failed: {e}"))??;

        let producer = service.start_producer()?;
        let stats = service.supervision.stats.clone();
        let payment = service.supervise(PaymentActor::new(
            paid,
            args.decline_rate,
            args.runtime.seed,
            payments,
            producer.clone().recipient(),
            stats,
        ));
        service.start_consumer(
            &args.group_id,
            orders,
            &[Status::Created],
            payment.recipient(),
            producer.recipient(),
        )?;
        Ok(service)
    })
}
