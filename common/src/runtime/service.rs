//! One service process: its actix system, its Kafka clients, and its lifecycle
//! from startup checks to the graceful shutdown.
//!
//! A service's `main` parses its flags and calls [`run`] with a function that
//! starts its actors; `run` does the rest:
//!
//! 1. logging, Ctrl-C handling, the broker check and the topics;
//! 2. the service's actors (started by the caller with [`Service`]'s helpers);
//! 3. on shutdown: stop taking events, drain those in flight, commit offsets,
//!    flush the producer, log the counters, and exit with the reason's code.

use crate::actor::fault::Role;
use crate::actor::in_flight::InFlight;
use crate::actor::messages::{Process, Publish};
use crate::actor::supervisor::{Supervision, Worker, WorkerActor};
use crate::base::logging;
use crate::base::metrics::Metrics;
use crate::base::shutdown::{Reason, Shutdown};
use crate::kafka::client::build;
use crate::kafka::client::settings::KafkaSettings;
use crate::kafka::client::topics;
use crate::kafka::consumer::actor::{ConsumerActor, ConsumerSetup};
use crate::kafka::producer::actor::ProducerActor;
use crate::kafka::producer::deliveries::KafkaProducer;
use crate::runtime::config::{KafkaArgs, RuntimeArgs, StoreArgs};
use crate::runtime::http::{self, Endpoints, Readiness};
use crate::runtime::setup_error::SetupError;
use crate::runtime::teardown::{self, RunningConsumer};
use crate::store::Store;
use crate::wire::event::Status;
use actix::{Addr, Recipient};
use log::{error, info};
use rdkafka::consumer::Consumer;
use std::cell::OnceCell;
use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a crash-looping service waits for in-flight events before exiting.
const ESCALATION_DRAIN: Duration = Duration::from_secs(2);

/// How long the steps after the drain may take in all: committing, flushing
/// and closing the Kafka clients. Each waits for the broker, which may be away.
const TEARDOWN: Duration = Duration::from_secs(5);

/// What a service's startup function gets: its settings and the actor kit.
pub struct Service {
    name: &'static str,
    kafka: KafkaSettings,
    runtime: RuntimeArgs,
    supervision: Supervision,
    in_flight: InFlight,
    producer: Option<KafkaProducer>,
    consumer: Option<RunningConsumer>,
    readiness: Readiness,
    /// The id of the store the service opened, which its consumer's group checks.
    store_id: OnceCell<String>,
}

/// What a consumer service reads, and where its events go.
pub struct ConsumerSpec<'a> {
    /// The consumer group: instances in one group share the topic's partitions.
    pub group: &'a str,
    pub topic: &'a str,
    /// The statuses a valid event on `topic` may have; others are dead-lettered.
    pub accepted: &'static [Status],
    /// The domain actor that handles each valid event.
    pub domain: Recipient<Process>,
    /// Who publishes the dead letters (the service's producer actor).
    pub dead_letters: Recipient<Publish>,
}

/// Runs the service `name`, whose events come from a `source` actor (consumer
/// or generator), until shutdown. `start` checks the broker, creates topics and
/// starts the actors; its error ends the service with exit code 1.
pub fn run<F, Fut>(
    name: &'static str,
    source: Role,
    kafka: &KafkaArgs,
    runtime: &RuntimeArgs,
    start: F,
) -> ExitCode
where
    F: FnOnce(Service) -> Fut,
    Fut: Future<Output = Result<Service, SetupError>>,
{
    runtime.check_crash_actor(source);
    logging::init(name);
    let code = start_and_serve(name, kafka.settings(), runtime.clone(), start);
    // Last lines that cannot be written are lost with the process: say so by the status.
    if logging::flush() {
        code
    } else {
        ExitCode::FAILURE
    }
}

/// `run`'s body, between setting up the logs and writing out their last lines.
fn start_and_serve<F, Fut>(
    name: &'static str,
    kafka: KafkaSettings,
    runtime: RuntimeArgs,
    start: F,
) -> ExitCode
where
    F: FnOnce(Service) -> Fut,
    Fut: Future<Output = Result<Service, SetupError>>,
{
    if !kafka.client.is_empty() {
        info!(target: "kafka", "client properties: {}", kafka.client);
    }
    let shutdown = Shutdown::default();
    if let Err(e) = shutdown.trigger_on_ctrl_c() {
        error!(target: "service", "cannot handle Ctrl-C: {e}");
        return ExitCode::FAILURE;
    }
    let service = Service {
        name,
        supervision: Supervision {
            limits: runtime.restart_limits(),
            faults: runtime.fault_plan(),
            metrics: Arc::new(Metrics::default()),
            shutdown,
        },
        in_flight: InFlight::new(runtime.max_in_flight),
        kafka,
        runtime,
        producer: None,
        consumer: None,
        readiness: Readiness::default(),
        store_id: OnceCell::new(),
    };
    actix::System::new().block_on(async move {
        if let Err(e) = service.serve_http() {
            error!(target: "service", "{e}");
            return ExitCode::FAILURE;
        }
        let shutdown = service.supervision.shutdown.clone();
        match start(service).await {
            Ok(service) => service.serve().await,
            Err(SetupError::Interrupted) => {
                info!(target: "service", "{}", SetupError::Interrupted);
                shutdown.triggered().await.exit_code()
            }
            Err(e) => {
                error!(target: "service", "{e}");
                e.exit_code()
            }
        }
    })
}

impl Service {
    /// Waits for the broker and creates the topics this service uses that are
    /// missing (see `topics.rs`); Ctrl-C meanwhile ends the start.
    pub async fn ensure_topics(&self, topics: &[String]) -> Result<(), SetupError> {
        tokio::select! {
            ensured = topics::ensure(&self.kafka, self.name, topics) => Ok(ensured?),
            _ = self.supervision.shutdown.triggered() => Err(SetupError::Interrupted),
        }
    }

    /// Starts the producer actor (one Kafka producer for the whole service).
    pub fn start_producer(&mut self) -> Result<Addr<WorkerActor<ProducerActor>>, SetupError> {
        let producer = build::producer(&self.kafka, self.name, self.supervision.metrics.clone())?;
        self.producer = Some(producer.clone());
        self.readiness.producer_made(producer.clone());
        Ok(ProducerActor::start(producer, &self.supervision))
    }

    /// Starts the consumer actor that `spec` describes.
    pub fn start_consumer(&mut self, spec: ConsumerSpec<'_>) -> Result<(), SetupError> {
        let statistics = self.runtime.metrics_addr.is_some();
        let store_id = self.store_id.get().map(String::as_str);
        let client = build::consumer(&self.kafka, self.name, spec.group, spec.topic, statistics, store_id)?;
        client.context().client().report_statistics_to(self.supervision.metrics.clone());
        self.readiness.consumer_made(client.clone());
        let setup = ConsumerSetup {
            client: client.clone(),
            topic: spec.topic.to_string(),
            accepted: spec.accepted,
            domain: spec.domain,
            dead_letters: spec.dead_letters,
            in_flight: self.in_flight.clone(),
            service: self.name,
            drain_timeout: Duration::from_secs(self.runtime.drain_timeout_secs),
        };
        let actor = ConsumerActor::start(setup, &self.supervision);
        self.consumer = Some(RunningConsumer { client, actor });
        Ok(())
    }

    /// Opens this service's store (see `store/`): one this service cannot
    /// reach or use now is an error (exit 2).
    pub fn open_store(&self, store: &StoreArgs) -> Result<Store, SetupError> {
        let setup = store.setup(self.name, self.writer_identity());
        let url = setup.url.shown();
        let instance = setup.instance.clone();
        let store = Store::open(setup).map_err(|source| SetupError::Store { url: url.clone(), source })?;
        info!(target: "store", "store: {url} (store {}), written as {instance}", store.id());
        let _ = self.store_id.set(store.id().to_string()); // one store per service
        self.readiness.store_opened(store.clone());
        Ok(store)
    }

    /// Who this process is in the records it writes: its `--instance-id` (or
    /// the service and host), its process id, and a random part drawn here, once
    /// per process. The random part makes a restart another writer even where
    /// the rest repeats: a container's service is PID 1 every time it starts.
    fn writer_identity(&self) -> String {
        let name = self.kafka.instance_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            format!("{}@{}", self.name, host.trim())
        });
        format!("{name}#{}-{:016x}", std::process::id(), rand::random::<u64>())
    }

    /// Starts any worker under this service's supervision.
    pub fn supervise<W: Worker>(&self, worker: W) -> Addr<WorkerActor<W>> {
        WorkerActor::start(worker, &self.supervision)
    }

    /// The service's metrics, for actors that count what they do.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.supervision.metrics.clone()
    }

    /// The service's shutdown signal, for sources that stop on it or trigger it.
    pub fn shutdown(&self) -> Shutdown {
        self.supervision.shutdown.clone()
    }

    /// The bound on events in flight, for a source that takes their slots.
    pub fn in_flight(&self) -> InFlight {
        self.in_flight.clone()
    }

    /// Serves /metrics, /health and /ready if `--metrics-addr` asks for them.
    fn serve_http(&self) -> Result<(), SetupError> {
        let Some(address) = &self.runtime.metrics_addr else { return Ok(()) };
        let endpoints = Endpoints {
            metrics: self.supervision.metrics.clone(),
            in_flight: self.in_flight.clone(),
            readiness: self.readiness.clone(),
            shutdown: self.supervision.shutdown.clone(),
        };
        http::serve(address, endpoints)
    }

    async fn serve(self) -> ExitCode {
        let metrics = self.supervision.metrics.clone();
        if self.runtime.stats_interval > 0 {
            metrics.log_summary_every(Duration::from_secs(self.runtime.stats_interval));
        }
        let reason = self.supervision.shutdown.triggered().await;
        let drain = match &reason {
            Reason::Interrupted => {
                info!(target: "service", "interrupted: finishing the events in flight, then exiting");
                Duration::from_secs(self.runtime.drain_timeout_secs)
            }
            Reason::Finished => Duration::from_secs(self.runtime.drain_timeout_secs),
            Reason::Escalated(why) | Reason::Misconfigured(why) => {
                error!(target: "service", "shutting down: {why}");
                ESCALATION_DRAIN
            }
        };
        teardown::drain(&self.in_flight, drain, self.consumer.is_some()).await;
        let deadline = Instant::now() + TEARDOWN;
        teardown::close_clients(self.consumer.as_ref(), self.producer.as_ref(), deadline).await;
        info!(target: "stats", "📊 summary: {}", metrics.summary());
        if let Reason::Escalated(why) | Reason::Misconfigured(why) = &reason {
            error!(target: "service", "exiting with failure (status {}): {why}", reason.status());
        }
        teardown::exit_at(deadline, reason.status());
        reason.exit_code()
    }
}
