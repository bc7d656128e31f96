//! The order generator: makes up orders like the original demo, at `--rate` per
//! second, and counts those the broker has acknowledged.
//!
//! A small pacing task (`drive`) sends the actor a `Tick` per order with an
//! in-flight slot; the actor turns each tick into an order (the next id of this
//! instance, see `ids.rs`; random user and amount), announces it and hands it to
//! the order publisher in a ticket that holds the slot, which comes back with
//! the broker's acknowledgement and is given back then. With `--count N`, the
//! service finishes after N acks. Should this instance's ids pass the highest
//! order id, the service stops with an error rather than wrap.

use crate::ids::OrderIds;
use actix::{Addr, Context, Message, Recipient};
use common::actor::error::ActorError;
use common::actor::fault::Role;
use common::actor::in_flight::{InFlight, SharedSlot};
use common::actor::messages::{Completed, Origin, Process, TicketIssuer};
use common::actor::supervisor::{Worker, WorkerActor};
use common::base::metrics::Metrics;
use common::base::shutdown::{Reason, Shutdown};
use common::wire::event::{as_text, OrderEvent, Status, MAX_ORDER_ID};
use log::info;
use rand::{rngs::SmallRng, Rng, SeedableRng};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Time to make the next order, whose in-flight slot this carries.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Tick(pub SharedSlot);

common::worker_input! {
    /// What the generator handles: ticks, and the broker's acknowledgements of its orders.
    pub enum GeneratorInput { Tick, Completed }
}

pub struct OrderGenerator {
    ids: OrderIds,
    rng: SmallRng,
    orders: Recipient<Process>,
    /// Each order's ticket, with its slot, completed when the broker has the order.
    tickets: TicketIssuer,
    acknowledged: u64,
    count: Option<u64>,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
}

/// How to build an [`OrderGenerator`].
pub struct GeneratorSetup {
    pub ids: OrderIds,
    pub seed: u64,
    pub count: Option<u64>,
    pub orders: Recipient<Process>,
    pub metrics: Arc<Metrics>,
    pub shutdown: Shutdown,
}

impl OrderGenerator {
    pub fn new(setup: GeneratorSetup) -> Self {
        OrderGenerator {
            ids: setup.ids,
            rng: SmallRng::seed_from_u64(setup.seed),
            orders: setup.orders,
            tickets: TicketIssuer::default(),
            acknowledged: 0,
            count: setup.count,
            metrics: setup.metrics,
            shutdown: setup.shutdown,
        }
    }

    /// The next order, or `None` once this instance's ids are used up.
    fn new_order(&mut self) -> Option<OrderEvent> {
        let order_id = self.ids.next()?;
        let cents: u32 = self.rng.gen_range(100..=50_000);
        Some(OrderEvent {
            order_id,
            user_id: self.rng.gen_range(1..=100),
            amount: f64::from(cents) / 100.0,
            status: Status::Created,
            reason: None,
            created_at_ms: Some(now_ms()),
        })
    }
}

impl Worker for OrderGenerator {
    type Input = GeneratorInput;
    const NAME: &'static str = "OrderGenerator";
    const ROLE: Role = Role::Generator;

    fn handle(
        &mut self,
        input: &GeneratorInput,
        ctx: &mut Context<WorkerActor<Self>>,
    ) -> Result<(), ActorError> {
        match input {
            GeneratorInput::Tick(Tick(slot)) => {
                let Some(event) = self.new_order() else {
                    self.shutdown.trigger(Reason::Escalated(format!(
                        "{} cannot go on: the next order id would be above {MAX_ORDER_ID} (2^53 - 1), \
                         the highest order id, and ids never wrap; start order-service again without \
                         --start-id (ids from the clock) or with a lower one",
                        Self::NAME
                    )));
                    return Ok(());
                };
                let order_id = event.order_id;
                // Encoded once, for the line and for the record.
                let payload: Arc<[u8]> = event.encode().into();
                info!(target: Self::NAME, "📦 Order Created: {}", as_text(&payload));
                let ticket = self.tickets.issue(Origin::Order { order_id }, slot.clone(), ctx);
                self.orders.do_send(Process { event, ticket, payload: Some(payload) });
            }
            // The order's slot is given back as the acknowledgement drops.
            GeneratorInput::Completed(_) => {
                self.acknowledged += 1;
                self.metrics.processed();
                if self.count == Some(self.acknowledged) {
                    info!(target: Self::NAME, "all {} orders are acknowledged by the broker", self.acknowledged);
                    self.shutdown.trigger(Reason::Finished);
                }
            }
        }
        Ok(())
    }

    fn describe(input: &GeneratorInput) -> String {
        match input {
            GeneratorInput::Tick(_) => "a tick".to_string(),
            GeneratorInput::Completed(Completed { origin, .. }) => {
                format!("the acknowledgement of {origin:?}")
            }
        }
    }

    fn is_event(input: &GeneratorInput) -> bool {
        matches!(input, GeneratorInput::Tick(_))
    }
}

/// Paces the generator: `rate` orders per second (0 = as fast as the in-flight
/// bound allows), `count` in all if given, until shutdown.
pub async fn drive(
    generator: Addr<WorkerActor<OrderGenerator>>,
    rate: f64,
    count: Option<u64>,
    in_flight: InFlight,
    shutdown: Shutdown,
) {
    let mut pace = (rate > 0.0).then(|| tokio::time::interval(Duration::from_secs_f64(1.0 / rate)));
    let mut issued = 0;
    let stop = shutdown.triggered();
    tokio::pin!(stop);
    while count.is_none_or(|n| issued < n) {
        let slot = tokio::select! {
            biased;
            _ = &mut stop => return,
            slot = in_flight.reserve() => slot,
        };
        if let Some(pace) = &mut pace {
            tokio::select! {
                biased;
                _ = &mut stop => return, // the slot is given back as it drops
                _ = pace.tick() => {}
            }
        }
        generator.do_send(Tick(Arc::new(slot)));
        issued += 1;
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
