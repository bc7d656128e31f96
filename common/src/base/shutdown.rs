//! Graceful shutdown: one small, explicit signal every part of a service can watch.
//!
//! The first trigger wins and names the reason: Ctrl-C (exit 0), the work being
//! finished (`--count`, exit 0), or a supervisor escalating a crash loop (exit 1).
//! On the signal, sources stop taking new events; `service::run` then drains what
//! is in flight, commits, flushes and exits with the reason's code.

use std::process::ExitCode;
use std::sync::Arc;
use tokio::sync::watch;

/// Why the service is shutting down.
#[derive(Clone, Debug, PartialEq)]
pub enum Reason {
    /// Ctrl-C, SIGTERM or SIGHUP.
    Interrupted,
    /// The service did all it was asked to (order-service `--count`).
    Finished,
    /// An actor crash-looped; the text names the actor and its last error.
    Escalated(String),
    /// The service's settings cannot work together with another instance's
    /// (two stores in one group); the text says what to change.
    Misconfigured(String),
}

impl Reason {
    /// The process's exit status: 0, 1 after a crash loop or a permanent
    /// error, 2 for settings that cannot work (as for a bad flag).
    pub fn status(&self) -> u8 {
        match self {
            Reason::Interrupted | Reason::Finished => 0,
            Reason::Escalated(_) => 1,
            Reason::Misconfigured(_) => 2,
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.status())
    }
}

/// A cloneable handle on the service's shutdown signal.
#[derive(Clone, Debug)]
pub struct Shutdown {
    reason: Arc<watch::Sender<Option<Reason>>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown { reason: Arc::new(watch::channel(None).0) }
    }
}

impl Shutdown {
    /// Routes Ctrl-C (SIGINT), SIGTERM and SIGHUP to this signal. A second Ctrl-C exits at
    /// once, for when a graceful shutdown is stuck (nothing committed is lost).
    pub fn trigger_on_ctrl_c(&self) -> Result<(), ctrlc::Error> {
        let shutdown = self.clone();
        ctrlc::set_handler(move || {
            if shutdown.is_triggered() {
                crate::base::logging::flush();
                eprintln!("second Ctrl-C: exiting now; uncommitted events will be redelivered");
                std::process::exit(130);
            }
            shutdown.trigger(Reason::Interrupted);
        })
    }

    /// Starts the shutdown, unless it has already started for another reason.
    pub fn trigger(&self, reason: Reason) {
        self.reason.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(reason);
            true
        });
    }

    pub fn is_triggered(&self) -> bool {
        self.reason.borrow().is_some()
    }

    /// Waits for the signal and returns its reason.
    pub async fn triggered(&self) -> Reason {
        let mut receiver = self.reason.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let reason =
            receiver.wait_for(Option::is_some).await.expect("shutdown sender outlives its receivers");
        reason.clone().expect("waited for Some")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn the_first_reason_wins() {
        let shutdown = Shutdown::default();
        assert!(!shutdown.is_triggered());
        let waiter = actix_rt::spawn({
            let shutdown = shutdown.clone();
            async move { shutdown.triggered().await }
        });
        shutdown.trigger(Reason::Escalated("PaymentActor".into()));
        shutdown.trigger(Reason::Interrupted);
        assert_eq!(waiter.await.unwrap(), Reason::Escalated("PaymentActor".into()));
        assert_eq!(shutdown.triggered().await.exit_code(), ExitCode::FAILURE);
    }
}
