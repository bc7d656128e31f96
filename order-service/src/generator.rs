//! The order generator: makes up orders like the original demo, at `--rate` per
//! second, and counts those the broker has acknowledged.
//!
//! A small pacing task (`drive`) sends the actor a `Tick` per order, after taking
//! an in-flight slot; the actor turns each tick into an order (the next id of
//! this instance, see `ids.rs`; random user and amount) for the order actor, and
//! frees the slot once the order is on `order_topic`. With `--count N`, the
//! service finishes after N acks. Should this instance's ids pass the highest
//! order id, the service stops with an error rather than wrap.

use crate::ids::OrderIds;
use actix::{Addr, Context, Message, Recipient};
use common::error::ActorError;
use common::event::{OrderEvent, Status, MAX_ORDER_ID};
use common::fault::Role;
use common::in_flight::InFlight;
use common::messages::{Completed, Origin, Process, TicketIssuer};
use common::shutdown::{Reason, Shutdown};
use common::stats::Stats;
use common::supervisor::{Supervised, Worker};
use log::info;
use rand::{rngs::SmallRng, Rng, SeedableRng};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Time to make the next order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Tick;

pub enum GeneratorInput {
    Tick,
    Acknowledged(Origin),
}

impl From<Tick> for GeneratorInput {
    fn from(_: Tick) -> Self {
        GeneratorInput::Tick
    }
}

impl From<Completed> for GeneratorInput {
    fn from(Completed(origin): Completed) -> Self {
        GeneratorInput::Acknowledged(origin)
    }
}

pub struct OrderGenerator {
    ids: OrderIds,
    rng: SmallRng,
    orders: Recipient<Process>,
    /// Each order's ticket, completed when the broker has the order.
    tickets: TicketIssuer,
    acknowledged: u64,
    count: Option<u64>,
    in_flight: InFlight,
    stats: Arc<Stats>,
    shutdown: Shutdown,
}

/// How to build an [`OrderGenerator`].
pub struct GeneratorSetup {
    pub ids: OrderIds,
    pub seed: u64,
    pub count: Option<u64>,
    pub orders: Recipient<Process>,
    pub in_flight: InFlight,
    pub stats: Arc<Stats>,
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
            in_flight: setup.in_flight,
            stats: setup.stats,
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
        ctx: &mut Context<Supervised<Self>>,
    ) -> Result<(), ActorError> {
        match input {
            GeneratorInput::Tick => {
                let Some(event) = self.new_order() else {
                    self.in_flight.release();
                    self.shutdown.trigger(Reason::Escalated(format!(
                        "{} cannot go on: the next order id would be above {MAX_ORDER_ID} (2^53 - 1), \
                         the highest order id, and ids never wrap; start order-service again without \
                         --start-id (ids from the clock) or with a lower one",
                        Self::NAME
                    )));
                    return Ok(());
                };
                let origin = Origin::Order { order_id: event.order_id };
                let ticket = self.tickets.issue(origin, ctx);
                self.orders.do_send(Process { event, ticket, payload: None });
            }
            GeneratorInput::Acknowledged(_) => {
                self.acknowledged += 1;
                self.stats.processed();
                self.in_flight.release();
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
            GeneratorInput::Tick => "a tick".to_string(),
            GeneratorInput::Acknowledged(origin) => format!("the acknowledgement of {origin:?}"),
        }
    }

    fn is_event(input: &GeneratorInput) -> bool {
        matches!(input, GeneratorInput::Tick)
    }
}

/// Paces the generator: `rate` orders per second (0 = as fast as the in-flight
/// bound allows), `count` in all if given, until shutdown.
pub async fn drive(
    generator: Addr<Supervised<OrderGenerator>>,
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
        tokio::select! {
            biased;
            _ = &mut stop => return,
            () = in_flight.reserve() => {}
        }
        if let Some(pace) = &mut pace {
            tokio::select! {
                biased;
                _ = &mut stop => return in_flight.release(),
                _ = pace.tick() => {}
            }
        }
        generator.do_send(Tick);
        issued += 1;
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
