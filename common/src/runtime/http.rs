//! What operators and orchestrators ask a service over HTTP (`--metrics-addr`),
//! served by actix-web on a thread of its own beside the actors:
//!
//! - `/metrics`: the service's Prometheus registry (see `metrics.rs`);
//! - `/health` (liveness): 200 while the actor system answers;
//! - `/ready` (readiness): 200 once the consumer has partitions (a service
//!   without one: once its producer exists), the broker answers and the store
//!   (if any) keeps up; 503 with the reason otherwise, and while shutting down.

use crate::actor::in_flight::InFlight;
use crate::base::metrics::Metrics;
use crate::base::shutdown::Shutdown;
use crate::kafka::consumer::group::GroupConsumer;
use crate::kafka::producer::deliveries::KafkaProducer;
use crate::runtime::setup_error::SetupError;
use crate::store::Store;
use actix_rt::ArbiterHandle;
use actix_web::{web, App, HttpResponse, HttpServer};
use log::info;
use rdkafka::consumer::Consumer;
use rdkafka::producer::Producer;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How long the actor system and the broker may take to answer a probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the endpoints read.
pub struct Endpoints {
    pub metrics: Arc<Metrics>,
    pub in_flight: InFlight,
    pub readiness: Readiness,
    pub shutdown: Shutdown,
}

/// The Kafka clients `/ready` asks about, handed over as the service makes them.
#[derive(Clone, Default)]
pub struct Readiness {
    producer: Arc<OnceLock<KafkaProducer>>,
    consumer: Arc<OnceLock<Arc<GroupConsumer>>>,
    store: Arc<OnceLock<Store>>,
}

impl Readiness {
    pub fn producer_made(&self, producer: KafkaProducer) {
        let _ = self.producer.set(producer);
    }

    pub fn consumer_made(&self, consumer: Arc<GroupConsumer>) {
        let _ = self.consumer.set(consumer);
    }

    pub fn store_opened(&self, store: Store) {
        let _ = self.store.set(store);
    }

    /// Why the service is not ready, if it is not. Blocking: asks the broker.
    fn check(&self) -> Result<(), String> {
        if let Some(stalled) = self.store.get().and_then(Store::stalled) {
            return Err(stalled);
        }
        let answer = match (self.consumer.get(), self.producer.get()) {
            (Some(consumer), _) => {
                if consumer.assignment().map_or(0, |partitions| partitions.count()) == 0 {
                    return Err("the consumer has no partitions assigned yet".into());
                }
                consumer.fetch_metadata(None, PROBE_TIMEOUT)
            }
            (None, Some(producer)) => producer.client().fetch_metadata(None, PROBE_TIMEOUT),
            (None, None) => return Err("starting: waiting for the broker".into()),
        };
        answer.map(|_| ()).map_err(|e| format!("the Kafka broker does not answer: {e}"))
    }
}

/// What each request handler gets.
struct State {
    endpoints: Endpoints,
    /// The service's actor system, asked by `/health` whether it still runs tasks.
    actors: ArbiterHandle,
}

/// Serves the endpoints on `address` (HOST:PORT; port 0 picks a free one) from
/// the current actix system, and logs where.
pub fn serve(address: &str, endpoints: Endpoints) -> Result<(), SetupError> {
    let state = web::Data::new(State { endpoints, actors: actix_rt::Arbiter::current() });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/metrics", web::get().to(metrics))
            .route("/health", web::get().to(health))
            .route("/ready", web::get().to(ready))
    })
    .workers(1)
    .disable_signals() // Ctrl-C and SIGTERM belong to the service's graceful shutdown
    .bind(address)
    .map_err(|source| SetupError::MetricsAddress { address: address.to_string(), source })?;
    let bound: Vec<String> = server.addrs().iter().map(|a| format!("http://{a}")).collect();
    actix_rt::spawn(server.run());
    info!(target: "http", "serving /metrics, /health and /ready on {}", bound.join(" "));
    Ok(())
}

async fn metrics(state: web::Data<State>) -> HttpResponse {
    let Endpoints { metrics, in_flight, .. } = &state.endpoints;
    metrics.set_in_flight(in_flight.count());
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(metrics.exposition())
}

async fn health(state: web::Data<State>) -> HttpResponse {
    let (alive, answer) = tokio::sync::oneshot::channel();
    let asked = state.actors.spawn(async move {
        let _ = alive.send(());
    });
    match tokio::time::timeout(PROBE_TIMEOUT, answer).await {
        Ok(Ok(())) if asked => HttpResponse::Ok().body("alive\n"),
        _ => HttpResponse::ServiceUnavailable().body("the actor system does not answer\n"),
    }
}

async fn ready(state: web::Data<State>) -> HttpResponse {
    if state.endpoints.shutdown.is_triggered() {
        return HttpResponse::ServiceUnavailable().body("shutting down\n");
    }
    let readiness = state.endpoints.readiness.clone();
    match web::block(move || readiness.check()).await {
        Ok(Ok(())) => HttpResponse::Ok().body("ready\n"),
        Ok(Err(why)) => HttpResponse::ServiceUnavailable().body(format!("{why}\n")),
        Err(e) => HttpResponse::ServiceUnavailable().body(format!("cannot check readiness: {e}\n")),
    }
}
