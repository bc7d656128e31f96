//! payment-service: consumes `order_created` events from `order_topic`, pays each
//! order once, and publishes the outcome to `payment_topic`.
//!
//! After each partition assignment the ledger (`ledger.rs`) reads from
//! `payment_topic` which of the orders Kafka can redeliver are already paid, so
//! orders paid before a crash or by another instance are not paid again.
//!
//! ConsumerActor --Process--> PaymentActor --Publish--> ProducerActor --Completed--> ConsumerActor

mod ledger;
mod payment;

use clap::Parser;
use common::config::{probability, DedupArgs, KafkaArgs, RuntimeArgs};
use common::event::Status;
use common::fault::Role;
use common::kafka::{self, dead_letter_topic};
use ledger::Topics;
use log::{info, warn};
use payment::{PaymentActor, PaymentSetup};
use rdkafka::ClientConfig;
use std::process::ExitCode;
use std::sync::Arc;

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
    dedup: DedupArgs,
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
            let in_flight = args.runtime.max_in_flight;
            let client = args.kafka.client_config();
            let topics = map_topics(client, &args.group_id, orders, payments, in_flight).await?;
            let producer = service.start_producer()?;
            let payment = service.supervise(PaymentActor::new(PaymentSetup {
                decline_rate: args.decline_rate,
                seed: args.runtime.seed,
                payment_topic: payments.as_str().into(),
                pinned: topics.pinned,
                dedup_capacity: args.dedup.dedup_capacity as usize,
                producer: producer.clone().recipient(),
                stats: service.supervision.stats.clone(),
            }));
            let shutdown = service.supervision.shutdown.clone();
            let load_ledger = ledger::load_after_assign(topics, payment.clone().recipient(), shutdown);
            let accepted = &[Status::Created];
            service.start_consumer(
                &args.group_id,
                orders,
                accepted,
                payment.recipient(),
                producer.recipient(),
                Some(Arc::new(load_ledger)),
            )?;
            Ok(service)
        },
    )
}

/// Checks that both topics have the same number of partitions, so that each
/// payment event can go to its order's partition number and the ledger need read
/// only the partitions of the orders assigned (see `ledger.rs`).
async fn map_topics(
    client: ClientConfig,
    group: &str,
    orders: &str,
    payments: &str,
    max_in_flight: u32,
) -> Result<Topics, String> {
    let (group, orders, payments) = (group.to_string(), orders.to_string(), payments.to_string());
    actix_rt::task::spawn_blocking(move || {
        let reader = kafka::reader(&client, &group)?;
        let (order_partitions, payment_partitions) =
            (kafka::partition_count(&reader, &orders)?, kafka::partition_count(&reader, &payments)?);
        let pinned = order_partitions == payment_partitions;
        if pinned {
            info!(target: "PaymentActor", "payment events go to their order's partition ({orders} and {payments} have {order_partitions} each)");
        } else {
            warn!(
                target: "PaymentActor",
                "{orders} has {order_partitions} partitions and {payments} {payment_partitions}: \
                 the ledger reads all of {payments} after each assignment (slow with a long history); \
                 give both topics the same number of partitions"
            );
        }
        let block = (2 * i64::from(max_in_flight)).max(ledger::MIN_BLOCK);
        Ok(Topics { client, group, orders, payments, pinned, block })
    })
    .await
    .map_err(|e| format!("cannot check the topics' partitions: {e}"))?
}
