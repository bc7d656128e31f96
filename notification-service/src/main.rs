//! notification-service: consumes payment events from `payment_topic` and
//! "emails" each customer once, each email claimed in the service's store
//! (`--store`) before it goes out and recorded there once sent (see `rules.rs`;
//! `notification.rs` runs them).
//!
//! ConsumerActor --Process--> NotificationActor --claim--> store --Claimed--> NotificationActor
//!   (email sent) --sent--> store --Recorded--> NotificationActor --Completed--> ConsumerActor
//! (its ProducerActor only writes dead letters)

mod email;
mod notification;
mod rules;

use clap::Parser;
use common::actor::fault::Role;
use common::kafka::producer::dead_letter::dead_letter_topic;
use common::runtime::config::{probability, DedupArgs, KafkaArgs, RuntimeArgs, StoreArgs};
use common::runtime::service::ConsumerSpec;
use common::wire::event::Status;
use email::Mailer;
use notification::NotificationActor;
use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Emails customers about their payments from payment_topic.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Consumer group: instances in the same group share the payments.
    #[arg(long, default_value = "notification-service")]
    group_id: String,
    /// Share of email sends (0..=1) the mail server refuses, to see a failed send
    /// retried: the email is marked sent only once it went out.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    email_failure_rate: f64,
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
        "notification-service",
        Role::Consumer,
        &args.kafka,
        &args.runtime,
        |mut service| async move {
            let payments = &args.kafka.payment_topic;
            service.ensure_topics(&[payments.clone(), dead_letter_topic(payments)]).await?;
            let producer = service.start_producer()?;
            let notification = service.supervise(NotificationActor::new(
                Mailer::new(args.email_failure_rate, args.runtime.seed),
                service.open_store(&args.store)?,
                args.dedup.dedup_capacity as usize,
                service.metrics(),
            ));
            service.start_consumer(ConsumerSpec {
                group: &args.group_id,
                topic: payments,
                accepted: &[Status::PaymentSuccessful, Status::PaymentFailed],
                domain: notification.recipient(),
                dead_letters: producer.recipient(),
            })?;
            Ok(service)
        },
    )
}
