//! Supervision, black-box: real actix actors that fail, restart and escalate.

use actix::{Context, Message};
use common::actor::error::ActorError;
use common::actor::fault::{CrashMode, FaultPlan, Role};
use common::actor::restart_policy::RestartLimits;
use common::actor::supervisor::{Supervision, Worker, WorkerActor};
use common::base::metrics::Metrics;
use common::base::shutdown::{Reason, Shutdown};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
struct Job(u32);

/// How a job fails on its first attempts.
#[derive(Clone, Copy)]
enum Failing {
    Errors(u32),
    Panics(u32),
    Always,
    /// Transiently, the first n attempts.
    Unavailable(u32),
    /// Permanently.
    Refused,
}

struct Flaky {
    plan: HashMap<u32, Failing>,
    attempts: HashMap<u32, u32>,
    done: mpsc::UnboundedSender<u32>,
    resets: u32,
}

impl Worker for Flaky {
    type Input = Job;
    const NAME: &'static str = "FlakyActor";
    const ROLE: Role = Role::Domain;

    fn handle(&mut self, &Job(id): &Job, _: &mut Context<WorkerActor<Self>>) -> Result<(), ActorError> {
        let attempt = self.attempts.entry(id).or_default();
        *attempt += 1;
        match self.plan.get(&id) {
            Some(Failing::Errors(n)) if *attempt <= *n => {
                return Err(ActorError::Crashed(format!("job {id} failed")))
            }
            Some(Failing::Panics(n)) if *attempt <= *n => panic!("boom in job {id}"),
            Some(Failing::Always) => return Err(ActorError::Crashed("broken for good".into())),
            Some(Failing::Unavailable(n)) if *attempt <= *n => {
                return Err(ActorError::Unavailable(format!("job {id} cannot run yet")))
            }
            Some(Failing::Refused) => {
                return Err(ActorError::Refused(format!("job {id} is refused for good: raise the limit")));
            }
            _ => {}
        }
        self.done.send(id * 1000 + self.resets).expect("the test listens");
        Ok(())
    }

    fn describe(&Job(id): &Job) -> String {
        format!("job {id}")
    }

    fn reset(&mut self) {
        self.resets += 1;
    }
}

fn supervision(max_restarts: u32) -> Supervision {
    Supervision {
        limits: RestartLimits {
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(4),
            max_restarts,
            window: Duration::from_secs(30),
        },
        faults: FaultPlan { rate: 0.0, target: Role::Domain, mode: CrashMode::Panic, seed: 0 },
        metrics: Arc::new(Metrics::default()),
        shutdown: Shutdown::default(),
    }
}

fn flaky(plan: &[(u32, Failing)]) -> (Flaky, mpsc::UnboundedReceiver<u32>) {
    let (done, finished) = mpsc::unbounded_channel();
    (Flaky { plan: plan.iter().copied().collect(), attempts: HashMap::new(), done, resets: 0 }, finished)
}

#[actix_rt::test]
async fn a_crashed_job_is_redelivered_first_and_everything_is_handled_once_in_order() {
    let supervision = supervision(10);
    let (worker, mut finished) = flaky(&[(5, Failing::Errors(2)), (9, Failing::Panics(1))]);
    let actor = WorkerActor::start(worker, &supervision);
    for id in 0..20 {
        actor.do_send(Job(id));
    }
    let mut handled = Vec::new();
    while handled.len() < 20 {
        handled.push(finished.recv().await.expect("the actor lives"));
    }
    // id * 1000 + resets so far: the order is kept, and each crash reset the worker.
    let ids: Vec<u32> = handled.iter().map(|h| h / 1000).collect();
    assert_eq!(ids, (0..20).collect::<Vec<_>>());
    assert_eq!(handled[5] % 1000, 2, "two resets before job 5 succeeded");
    assert_eq!(handled[19] % 1000, 3, "three resets in all");
    assert_eq!(
        supervision.metrics.summary(),
        "processed=0 crashes=3 (FlakyActor=3) restarts=3 redeliveries=3 duplicates_suppressed=0 dead_lettered=0 \
         retries=0 conflicts=0 emails_in_doubt=0"
    );
    assert!(!supervision.shutdown.is_triggered());
}

#[actix_rt::test]
async fn a_crash_loop_escalates_to_a_shutdown_naming_the_actor_and_its_error() {
    let supervision = supervision(3);
    let (worker, _finished) = flaky(&[(1, Failing::Always)]);
    let actor = WorkerActor::start(worker, &supervision);
    actor.do_send(Job(1));
    let Reason::Escalated(why) = supervision.shutdown.triggered().await else {
        panic!("expected an escalation");
    };
    assert!(why.contains("FlakyActor is crash-looping: 4 crashes"), "{why}");
    assert!(why.contains("last error: broken for good while handling job 1"), "{why}");
    assert!(supervision.metrics.summary().contains("crashes=4 (FlakyActor=4) restarts=3"));
}

#[actix_rt::test]
async fn transient_failures_are_retried_in_place_and_never_escalate() {
    let supervision = supervision(3);
    let (worker, mut finished) = flaky(&[(2, Failing::Unavailable(20))]);
    let actor = WorkerActor::start(worker, &supervision);
    for id in 0..5 {
        actor.do_send(Job(id));
    }
    for expected in 0..5 {
        // id * 1000 + resets: in order, and never restarted.
        assert_eq!(finished.recv().await.expect("the actor lives"), expected * 1000);
    }
    assert!(!supervision.shutdown.is_triggered(), "20 transient failures are no crash loop");
    let summary = supervision.metrics.summary();
    assert!(summary.contains("crashes=0 () restarts=0") && summary.contains(" retries=20 "), "{summary}");
}

#[actix_rt::test]
async fn a_permanent_failure_escalates_at_once_with_its_fix() {
    let supervision = supervision(10);
    let (worker, _finished) = flaky(&[(1, Failing::Refused)]);
    let actor = WorkerActor::start(worker, &supervision);
    actor.do_send(Job(1));
    let Reason::Escalated(why) = supervision.shutdown.triggered().await else {
        panic!("expected an escalation");
    };
    assert!(why.starts_with("FlakyActor cannot go on: job 1 is refused for good"), "{why}");
    assert!(why.contains("raise the limit") && why.contains("while handling job 1"), "{why}");
    assert!(
        supervision.metrics.summary().contains("crashes=0 () restarts=0"),
        "no restart: retrying cannot help"
    );
}

#[actix_rt::test]
async fn injected_faults_are_survived_in_order() {
    let mut supervision = supervision(1000);
    supervision.faults = FaultPlan { rate: 0.3, target: Role::Any, mode: CrashMode::Panic, seed: 9 };
    let (worker, mut finished) = flaky(&[]);
    let actor = WorkerActor::start(worker, &supervision);
    for id in 0..200 {
        actor.do_send(Job(id));
    }
    for expected in 0..200 {
        assert_eq!(finished.recv().await.expect("the actor lives") / 1000, expected);
    }
    let summary = supervision.metrics.summary();
    let crashes: u32 = summary.split("crashes=").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!((30..=120).contains(&crashes), "{summary}");
}

#[actix_rt::test]
async fn a_crash_restarts_the_actor_even_when_nobody_else_holds_its_address() {
    // Queued messages hold no address: at shutdown, they may be all that is left.
    let supervision = supervision(10);
    let (worker, mut finished) = flaky(&[(1, Failing::Errors(1))]);
    let actor = WorkerActor::start(worker, &supervision);
    for id in 0..3 {
        actor.do_send(Job(id));
    }
    drop(actor);
    for expected in 0..3 {
        assert_eq!(finished.recv().await.expect("the actor was restarted") / 1000, expected);
    }
}
