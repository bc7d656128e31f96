//! The topics a service uses, at start: wait for the broker, create the missing
//! ones (`--create-topics`, `--partitions`, `--replication-factor`), and log each
//! as found, so an operator sees a topic that would lose data with one broker.
//!
//! A broker that goes away meanwhile (restarted, briefly cut off) is waited for
//! again: a service started during an outage starts once the broker is back.
//! What retrying cannot mend (a refused replication factor, an unauthorised
//! client, a missing topic with `--create-topics false`) ends the start with an
//! error that says what to change.

use crate::kafka::client::build;
use crate::kafka::client::context::KafkaContext;
use crate::kafka::client::error::KafkaSetupError;
use crate::kafka::client::settings::KafkaSettings;
use log::{info, warn};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::metadata::Metadata;
use rdkafka::producer::{BaseProducer, Producer};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where to tell users to get a broker.
const HOW_TO_START_A_BROKER: &str =
    "start one with `./scripts/broker` (or `docker compose up -d`), or point --brokers / KAFKA_BROKERS at yours";

/// How long one metadata request or topic creation may take.
const ATTEMPT: Duration = Duration::from_secs(10);

/// The wait between two attempts after a failure that retrying may mend.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A topic as the broker describes it.
#[derive(Debug, PartialEq)]
struct Found {
    partitions: usize,
    replication_factor: usize,
}

/// Waits for the broker (at most `--broker-wait-secs`, if set), creates the
/// `topics` that are missing (unless `--create-topics false`), and logs each
/// topic's partition count and replication factor.
pub async fn ensure(kafka: &KafkaSettings, service: &str, topics: &[String]) -> Result<(), KafkaSetupError> {
    let deadline = kafka.broker_wait().map(|wait| Instant::now() + wait);
    // A producer client, unlike an admin client, hands librdkafka's logs and errors
    // to its context when polled: why a broker refused us (TLS, SASL) gets logged.
    let probe: Arc<BaseProducer<KafkaContext>> = Arc::new(build::client(kafka, service)?);
    // Made only when a topic is missing: mostly they all exist.
    let mut admin: Option<AdminClient<KafkaContext>> = None;
    let mut created = false;
    loop {
        let attempt = deadline.map_or(ATTEMPT, |deadline| {
            deadline.saturating_duration_since(Instant::now()).clamp(RETRY_AFTER, ATTEMPT)
        });
        let found = match describe(&probe, topics, attempt).await {
            Ok(found) => found,
            Err(e) => {
                wait_or_give_up(kafka, deadline, &e).await?;
                continue;
            }
        };
        let missing: Vec<&String> =
            topics.iter().zip(&found).filter(|(_, found)| found.is_none()).map(|(topic, _)| topic).collect();
        if missing.is_empty() {
            for (topic, found) in topics.iter().zip(found.into_iter().flatten()) {
                info!(
                    target: "kafka",
                    "topic {topic}: {} partitions, replication factor {}",
                    found.partitions,
                    found.replication_factor
                );
            }
            return Ok(());
        }
        if !kafka.create_topics {
            return Err(KafkaSetupError::TopicsMissing {
                topics: missing.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", "),
                brokers: kafka.brokers.clone(),
            });
        }
        let admin = match admin.as_mut() {
            Some(admin) => admin,
            None => admin.insert(build::client(kafka, service)?),
        };
        match create(admin, kafka, &missing, attempt).await {
            // A topic that exists (made before, or by another service) but is not
            // described: the broker is not ready, or this client may not see it.
            Ok(()) if created => {
                let names = missing.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ");
                let e = format!("the broker has topic {names} but does not describe its partitions");
                wait_or_give_up(kafka, deadline, &e).await?
            }
            // Described again at once: a broker may take a moment to show a topic it made.
            Ok(()) => {
                created = true;
                tokio::time::sleep(RETRY_AFTER / 10).await // it announces no readiness to wait for
            }
            Err(Failure::Retry(e)) => wait_or_give_up(kafka, deadline, &e).await?,
            Err(Failure::Refused(e)) => return Err(KafkaSetupError::TopicsRefused(e)),
        }
    }
}

/// Each topic's partitions and replication factor, `None` where it does not exist.
async fn describe(
    probe: &Arc<BaseProducer<KafkaContext>>,
    topics: &[String],
    attempt: Duration,
) -> Result<Vec<Option<Found>>, String> {
    let client = probe.clone();
    let metadata = actix_rt::task::spawn_blocking(move || {
        // Every topic, not each by name: a producer asking for a topic by name
        // makes a broker with auto-creation create it, with the broker's settings.
        let answer = client.client().fetch_metadata(None, attempt);
        if answer.is_err() {
            client.poll(Duration::from_millis(100)); // serves what librdkafka queued: why it failed
        }
        answer
    })
    .await
    .map_err(|e| format!("the broker check failed: {e}"))?
    .map_err(|e| e.to_string())?;
    Ok(topics.iter().map(|topic| found(&metadata, topic)).collect())
}

/// `topic` in `metadata`, if it exists and has its partitions.
fn found(metadata: &Metadata, topic: &str) -> Option<Found> {
    let described = metadata.topics().iter().find(|t| t.name() == topic)?;
    let partitions = described.partitions();
    if described.error().is_some() || partitions.is_empty() {
        return None;
    }
    let replication_factor = partitions.iter().map(|p| p.replicas().len()).min().unwrap_or(0);
    Some(Found { partitions: partitions.len(), replication_factor })
}

/// Why a creation failed.
enum Failure {
    /// The broker is away or busy: try again.
    Retry(String),
    /// The broker said no, and will say it again: the message says what to change.
    Refused(String),
}

/// Creates `topics` with `--partitions` and `--replication-factor`. One that
/// another service created meanwhile is fine.
async fn create(
    admin: &AdminClient<KafkaContext>,
    kafka: &KafkaSettings,
    topics: &[&String],
    attempt: Duration,
) -> Result<(), Failure> {
    let new_topics: Vec<NewTopic> = topics
        .iter()
        .map(|t| NewTopic::new(t, kafka.partitions, TopicReplication::Fixed(kafka.replication_factor)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(attempt)).request_timeout(Some(attempt));
    let results = admin.create_topics(&new_topics, &options).await.map_err(|e| match e {
        KafkaError::AdminOp(code) if is_refusal(code) => Failure::Refused(refused(kafka, "the topics", code)),
        e => Failure::Retry(format!("cannot create the topics: {e}")),
    })?;
    for result in results {
        match result {
            Ok(topic) => info!(target: "kafka", "created topic {topic}"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) if is_refusal(code) => {
                return Err(Failure::Refused(refused(kafka, &topic, code)))
            }
            Err((topic, code)) => return Err(Failure::Retry(format!("cannot create topic {topic}: {code}"))),
        }
    }
    Ok(())
}

/// A creation error that retrying does not mend.
fn is_refusal(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        code,
        InvalidReplicationFactor
            | InvalidPartitions
            | InvalidReplicaAssignment
            | InvalidConfig
            | InvalidTopic
            | PolicyViolation
            | TopicAuthorizationFailed
            | ClusterAuthorizationFailed
            | UnsupportedVersion
            | InvalidRequest
    )
}

fn refused(kafka: &KafkaSettings, what: &str, code: RDKafkaErrorCode) -> String {
    let replication = match kafka.replication_factor {
        -1 => "the broker's default".to_string(),
        factor => factor.to_string(),
    };
    format!(
        "the broker at {} refuses to create {what} with {} partitions and replication factor {replication}: \
         {code}; change --partitions / --replication-factor (a replication factor cannot exceed the number \
         of brokers), give this client the right to create topics, or make the topics yourself and start \
         with --create-topics false",
        kafka.brokers, kafka.partitions
    )
}

/// Waits before the next attempt, or gives up once `--broker-wait-secs` has passed.
async fn wait_or_give_up(
    kafka: &KafkaSettings,
    deadline: Option<Instant>,
    error: &str,
) -> Result<(), KafkaSetupError> {
    if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
        let secured = if kafka.client.is_empty() {
            String::new()
        } else {
            format!(
                "; if it is up, check the client properties ({}): a TLS or SASL broker drops \
                 a client whose security settings it refuses (see the warning above, and its log)",
                kafka.client
            )
        };
        return Err(KafkaSetupError::BrokerUnreachable(format!(
            "cannot reach the Kafka broker at {} within {} s ({error}): {HOW_TO_START_A_BROKER}{secured}",
            kafka.brokers, kafka.broker_wait_secs
        )));
    }
    warn!(target: "kafka", "still waiting for the Kafka broker at {} ({error})", kafka.brokers);
    tokio::time::sleep(RETRY_AFTER).await; // a retry's pace: the broker announces nothing to wait for
    Ok(())
}
