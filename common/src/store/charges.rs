//! What payment-service records: a charge per order, the event decided for it,
//! and what became of a charge sent to the store.

/// A payment-service charge to record: the order as it arrived and the payment
/// event decided for it, as it would be published.
#[derive(Clone, Debug, PartialEq)]
pub struct Charge {
    pub order_id: u64,
    pub user_id: u64,
    pub amount: f64,
    /// `None`: charged; `Some(reason)`: declined.
    pub declined: Option<String>,
    pub event: Vec<u8>,
}

/// A charge as the store holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedCharge {
    pub user_id: u64,
    pub amount: f64,
    pub event: Vec<u8>,
    pub charged_by: String,
    pub charged_at_ms: i64,
}

/// What became of a [`Charge`] sent to the store.
#[derive(Clone, Debug, PartialEq)]
pub enum ChargeVerdict {
    /// This one is the record: its event is the one to publish.
    Recorded,
    /// The order was recorded before (by this instance before a crash, or by
    /// another): that record stands.
    Found(RecordedCharge),
}
