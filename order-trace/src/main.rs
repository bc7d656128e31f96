//! order-trace: one order's journey through the pipeline, read from the topics.
//!
//! `order-trace 1042` reads `order_topic`, `payment_topic` and both dead-letter
//! topics, only in the partition the order's key maps to, and prints what
//! happened to the order: created, paid or declined (with the reason), any
//! invalid copy and its dead letter (with the error), each with its topic,
//! partition, offset, timestamp and the time since the step before.
//! `--json` prints the same as one JSON object. Exits 1 if nothing is found.

mod journey;
mod partitioner;

use clap::Parser;
use common::kafka::client::properties::ClientProperties;
use common::kafka::producer::dead_letter::dead_letter_topic;
use common::wire::event::Status;
use journey::{Step, Topics};
use std::io::Write;
use std::process::ExitCode;

/// Prints one order's journey through the pipeline's topics.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// The id of the order to trace.
    order_id: u64,
    /// Kafka bootstrap servers (host:port, comma-separated).
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    #[arg(long, default_value = "order_topic")]
    order_topic: String,
    #[arg(long, default_value = "payment_topic")]
    payment_topic: String,
    /// Print the journey as one JSON object, for machines.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    client: ClientProperties,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let (order_dead_letters, payment_dead_letters) =
        (dead_letter_topic(&args.order_topic), dead_letter_topic(&args.payment_topic));
    let topics = Topics([
        (&args.order_topic, &[Status::Created]),
        (&args.payment_topic, &[Status::PaymentSuccessful, Status::PaymentFailed]),
        (&order_dead_letters, &[]),
        (&payment_dead_letters, &[]),
    ]);
    let (steps, looked) =
        match journey::trace(&args.client.client_config(&args.brokers), &topics, args.order_id) {
            Ok(found) => found,
            Err(e) => {
                eprintln!("order-trace: {e}");
                return ExitCode::FAILURE;
            }
        };
    let output = if args.json {
        let journey = serde_json::json!({ "order_id": args.order_id, "read": looked, "steps": steps });
        format!("{journey:#}\n")
    } else if steps.is_empty() {
        String::new()
    } else {
        let lines = steps.iter().map(|step| line(step) + "\n").collect::<String>();
        format!("order {}: read {}\n{lines}", args.order_id, looked.join(", "))
    };
    match std::io::stdout().write_all(output.as_bytes()) {
        // A reader that stopped early (`| head`) is no failure.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("order-trace: cannot write the journey: {e}");
            return ExitCode::FAILURE;
        }
        _ => {}
    }
    if steps.is_empty() {
        eprintln!("order-trace: no record of order {} in {}", args.order_id, looked.join(", "));
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// `2026-11-27T16:21:03.164Z  +44 ms  declined  payment_topic[2]@330  card declined`
fn line(step: &Step) -> String {
    let when = step.timestamp_ms.and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok());
    let when = when.map_or_else(|| "(no timestamp)".to_string(), |t| format!("{t:.3}"));
    let since = step.since_previous_ms.map_or_else(String::new, |ms| format!("+{ms} ms"));
    let what = step.what.to_string();
    let place = format!("{}[{}]@{}", step.topic, step.partition, step.offset);
    let detail = match (&step.event, &step.reason, &step.dead_letter_of) {
        (_, Some(why), Some(source)) => format!("{why} (from {source})"),
        (_, Some(why), None) => why.clone(),
        (Some(event), None, _) => format!("user {}, amount {}", event.user_id, event.amount),
        (None, None, _) => String::new(),
    };
    format!("{when}  {since:>10}  {what:<13}  {place:<24}  {detail}")
}
