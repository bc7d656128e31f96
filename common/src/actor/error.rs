//! What can go wrong inside an actor, and which kind of failure it is.
//!
//! The kind decides what the supervisor does (see `supervisor.rs`):
//!
//! - **transient**: the world is not ready yet (librdkafka's queue is full, the
//!   broker is away, the mail server refuses for now). The same input is tried
//!   again after a backoff; however many there are, they are no crash loop.
//! - **permanent**: trying again cannot help (the broker refuses a record for
//!   good). The service stops with one line naming the cause and the fix.
//! - **crash**: a panic or an injected fault, whose state nobody knows: the actor
//!   restarts, and a crash loop is escalated.
//!
//! Which failures of a dependency are which is that dependency's layer's
//! knowledge (for Kafka: `kafka/producer/failure.rs`).

use thiserror::Error;

/// An actor's failure to handle one input; each message names the cause and the fix.
#[derive(Debug, Error)]
pub enum ActorError {
    /// Something the actor depends on is unavailable for now (the mail server,
    /// librdkafka's queue); it may be later.
    #[error("{0}")]
    Unavailable(String),
    /// Something the actor depends on refuses the input, and would refuse it again.
    #[error("{0}")]
    Refused(String),
    /// A panic or an injected fault: the actor's state is unknown.
    #[error("{0}")]
    Crashed(String),
}

/// What the supervisor does about a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Transient,
    Permanent,
    Crash,
}

impl ActorError {
    pub fn kind(&self) -> Kind {
        match self {
            ActorError::Unavailable(_) => Kind::Transient,
            ActorError::Refused(_) => Kind::Permanent,
            ActorError::Crashed(_) => Kind::Crash,
        }
    }
}
