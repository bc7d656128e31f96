//! The ground floor: what every layer above uses, importing none of them. The
//! log and its barrier (a record is out of the process before what it tells is
//! recorded), the metrics, and the shutdown every part of a process watches.

pub mod logging;
pub mod metrics;
pub mod shutdown;
