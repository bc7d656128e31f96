//! Supervision that really restarts, the way Erlang/OTP and kameo do it.
//!
//! Every actor of every service is a [`Worker`] run inside [`WorkerActor`], an actix
//! actor under `actix::Supervisor`. actix restarts an actor only when it stops,
//! never after a panic, and has no backoff or limit, so `WorkerActor` adds them:
//!
//! - a crash (a panic, caught with `catch_unwind`, or an [`ActorError`] of the
//!   crash kind) stops the actor; actix restarts it with its mailbox intact and
//!   [`Worker::reset`] clears what the worker keeps for the event at hand;
//! - after a backoff from the [`RestartPolicy`], the event that was being handled
//!   is handed to the actor again before anything else in its mailbox;
//! - a crash loop (more failures in a row than the policy allows) is escalated:
//!   the service shuts down and exits non-zero, naming the actor and its error;
//! - a transient error is no crash: the same input is tried again after a
//!   backoff, without a restart, and never makes a crash loop;
//! - a permanent error is escalated at once: trying again cannot help.
//!
//! The Kafka clients live outside the actors (behind `Arc`s), so a restart costs
//! no reconnect and no consumer-group rebalance.

use crate::actor::error::{ActorError, Kind};
use crate::actor::fault::{Fault, FaultPlan, InjectedPanic, Role, INJECTED_PANIC};
use crate::actor::restart_policy::{RestartLimits, RestartPolicy, Verdict};
use crate::base::metrics::Metrics;
use crate::base::shutdown::{Reason, Shutdown};
use actix::{Actor, ActorContext, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message, WrapFuture};
use log::{error, warn};
use rand::{rngs::SmallRng, SeedableRng};
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Once};
use std::time::Instant;

/// The logic of one actor; [`WorkerActor`] runs it.
pub trait Worker: Sized + Unpin + 'static {
    /// What the actor handles; every message it accepts converts into this.
    type Input: Unpin + 'static;
    /// The actor's name in log lines, e.g. "PaymentActor".
    const NAME: &'static str;
    /// Which `--crash-actor` choice hits this actor.
    const ROLE: Role;

    /// Handles one input. A panic or an error is handed to it again later (see
    /// the module's doc for when), so the work must be safe to redo.
    fn handle(&mut self, input: &Self::Input, ctx: &mut Context<WorkerActor<Self>>)
        -> Result<(), ActorError>;

    /// Names the input for crash lines, e.g. "order 1042".
    fn describe(input: &Self::Input) -> String;

    /// Whether the input is an event, as opposed to bookkeeping (an
    /// acknowledgement, a rebalance): injected faults strike events only, and
    /// only a handled event proves the actor healthy again.
    fn is_event(_input: &Self::Input) -> bool {
        true
    }

    /// Called before each restart: drop state that the crash may have left
    /// half-changed. State that must outlive crashes (idempotency ledgers) stays.
    fn reset(&mut self) {}
}

/// What a service gives each actor it supervises.
#[derive(Clone, Debug)]
pub struct Supervision {
    pub limits: RestartLimits,
    pub faults: FaultPlan,
    pub metrics: Arc<Metrics>,
    pub shutdown: Shutdown,
}

/// A [`Worker`] under supervision: the actix actor that services address.
pub struct WorkerActor<W: Worker> {
    worker: W,
    policy: RestartPolicy,
    fault: Option<Fault>,
    jitter: SmallRng,
    /// The input that crashed the actor, handed to it again after the restart.
    redelivery: Option<(W::Input, std::time::Duration)>,
    /// Set once the actor crash-looped: it handles nothing more while the service stops.
    escalated: bool,
    /// actix restarts an actor only while someone holds its address. Messages in
    /// its mailbox hold none (a queued `Completed` does not), so the actor holds
    /// its own: a crash during shutdown, when every other holder is gone, still
    /// restarts it and its queued messages are handled.
    _own_address: Option<Addr<Self>>,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
}

impl<W: Worker> WorkerActor<W> {
    /// Starts `worker` as a supervised actor.
    pub fn start(worker: W, supervision: &Supervision) -> Addr<Self> {
        install_panic_hook();
        let actor = WorkerActor {
            worker,
            policy: RestartPolicy::new(supervision.limits),
            fault: supervision.faults.fault_for(W::ROLE),
            jitter: SmallRng::from_entropy(),
            redelivery: None,
            escalated: false,
            _own_address: None,
            metrics: supervision.metrics.clone(),
            shutdown: supervision.shutdown.clone(),
        };
        actix::Supervisor::start(move |ctx: &mut Context<Self>| WorkerActor {
            _own_address: Some(ctx.address()),
            ..actor
        })
    }

    fn run(&mut self, input: W::Input, ctx: &mut Context<Self>) {
        if self.escalated {
            return; // the service is shutting down; the event stays uncommitted
        }
        let is_event = W::is_event(&input);
        let (worker, fault) = (&mut self.worker, self.fault.as_mut().filter(|_| is_event));
        let outcome = catch_panic(|| {
            if let Some(fault) = fault {
                fault.strike()?;
            }
            worker.handle(&input, ctx)
        });
        match outcome {
            Ok(()) if is_event => self.policy.record_success(),
            Ok(()) => {}
            Err(error) => match error.kind() {
                Kind::Transient => self.retry_later(input, error, ctx),
                Kind::Permanent => {
                    let what = W::describe(&input);
                    self.escalate(format!("{} cannot go on: {error} (while handling {what})", W::NAME));
                }
                Kind::Crash => self.crashed(input, error, ctx),
            },
        }
    }

    /// Tries `input` again after a backoff, without a restart: the actor is sound,
    /// the world was not ready. The mailbox waits meanwhile, keeping the order.
    fn retry_later(&mut self, input: W::Input, error: ActorError, ctx: &mut Context<Self>) {
        let backoff = self.policy.record_transient(&mut self.jitter);
        warn!(
            target: "supervisor",
            "{}: {error} while handling {}; trying again in {} ms",
            W::NAME,
            W::describe(&input),
            backoff.as_millis()
        );
        ctx.wait(actix::clock::sleep(backoff).into_actor(self).map(move |(), act, ctx| {
            act.metrics.retried();
            act.run(input, ctx);
        }));
    }

    /// Stops the service: this actor cannot go on. It handles nothing more.
    fn escalate(&mut self, why: String) {
        error!(target: "supervisor", "{why}; shutting the service down");
        self.escalated = true;
        self.shutdown.trigger(Reason::Escalated(why));
    }

    fn crashed(&mut self, input: W::Input, cause: ActorError, ctx: &mut Context<Self>) {
        self.metrics.crashed(W::NAME);
        let what = W::describe(&input);
        match self.policy.record_failure(Instant::now(), &mut self.jitter) {
            Verdict::Restart { restart, backoff } => {
                warn!(
                    target: "supervisor",
                    "{} crashed ({cause}) while handling {what}; restart {restart} in {} ms",
                    W::NAME,
                    backoff.as_millis()
                );
                self.metrics.restarted(W::NAME);
                self.redelivery = Some((input, backoff));
                ctx.stop(); // actix::Supervisor restarts us: see `restarting`, `started`
            }
            Verdict::Escalate { failures, within } => {
                let why = format!(
                    "{} is crash-looping: {failures} crashes in {:.1} s with no event handled in between; \
                     last error: {cause} while handling {what}",
                    W::NAME,
                    within.as_secs_f64()
                );
                self.escalate(why);
            }
        }
    }
}

impl<W: Worker> Actor for WorkerActor<W> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // After a restart: wait out the backoff, then redeliver the crashed input.
        // `wait` holds back the mailbox meanwhile, so the input keeps its place.
        if let Some((input, backoff)) = self.redelivery.take() {
            ctx.wait(actix::clock::sleep(backoff).into_actor(self).map(move |(), act, ctx| {
                act.metrics.redelivered();
                act.run(input, ctx);
            }));
        }
    }
}

impl<W: Worker> actix::Supervised for WorkerActor<W> {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.worker.reset();
    }
}

impl<W, M> Handler<M> for WorkerActor<W>
where
    W: Worker,
    M: Message<Result = ()> + Into<W::Input> + 'static,
{
    type Result = ();

    fn handle(&mut self, message: M, ctx: &mut Context<Self>) {
        self.run(message.into(), ctx);
    }
}

thread_local! {
    /// True while a supervised handler runs on this thread: its panics are ours to report.
    static IN_HANDLER: Cell<bool> = const { Cell::new(false) };
    static PANIC_CAUSE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `f`, turning a panic into an `Err` with the panic's message and place.
fn catch_panic(f: impl FnOnce() -> Result<(), ActorError>) -> Result<(), ActorError> {
    IN_HANDLER.with(|flag| flag.set(true));
    let outcome = panic::catch_unwind(AssertUnwindSafe(f));
    IN_HANDLER.with(|flag| flag.set(false));
    outcome.unwrap_or_else(|_| {
        let cause = PANIC_CAUSE.with(|cause| cause.borrow_mut().take());
        Err(ActorError::Crashed(cause.unwrap_or_else(|| "panic".into())))
    })
}

/// Panics inside supervised handlers are recorded for the crash line instead of
/// printed; every other panic still goes to the default hook.
fn install_panic_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let default_hook = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if IN_HANDLER.with(Cell::get) {
                let cause = panic_cause(info.payload(), info.location());
                PANIC_CAUSE.with(|slot| *slot.borrow_mut() = Some(cause));
            } else {
                default_hook(info);
            }
        }));
    });
}

fn panic_cause(payload: &(dyn Any + Send), location: Option<&panic::Location>) -> String {
    if payload.is::<InjectedPanic>() {
        return INJECTED_PANIC.to_string();
    }
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-text payload".into());
    match location {
        Some(at) => format!("panic at {}:{}: {message}", at.file(), at.line()),
        None => format!("panic: {message}"),
    }
}
