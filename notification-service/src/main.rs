//! notification-service: consumes payment events from `payment_topic` and
//! "emails" each customer once.
//!
//! ConsumerActor --Process--> NotificationActor --Completed--> ConsumerActor
//! (its ProducerActor only writes dead letters)

mod notification;

use clap::Parser;
use common::config::{KafkaArgs, RuntimeArgs};
use common::event::Status;
use common::fault::Role;
use common::kafka::dead_letter_topic;
use notification::NotificationActor;
use std::process::ExitCode;

/// Emails customers about their payments from payment_topic.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Consumer group: instances in the same group share the payments.
    #[arg(long, default_value = "notification-service")]
    group_id: String,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

fn main() -> ExitCode {
    let args = &Args::parse();
    common::service::run(
        "notification-service",
        Role::Consumer,
        &args.kafka,
        &args.runtime,
        |mut service| async move {
            let payments = &args.kafka.payment_topic;
            service.prepare_topics(&[payments.clone(), dead_letter_topic(payments)]).await?;
            let producer = service.start_producer()?;
            let notification = service.supervise(NotificationActor::new(service.supervision.stats.clone()));
            let accepted = &[Status::PaymentSuccessful, Status::PaymentFailed];
            service.start_consumer(
                &args.group_id,
                payments,
                accepted,
                notification.recipient(),
                producer.recipient(),
                Box::new(|| {}), // no ledger: see notification.rs for the email guarantee
            )?;
            Ok(service)
        },
    )
}
