//! Where a test's files live: one temporary folder per test, named after its
//! broker's port, and in it the SQLite store the harness gives each service.

use std::path::PathBuf;

/// The temporary folder of the test whose broker listens on `port`: the broker's
/// storage and the services' stores, removed with the broker.
pub(crate) fn test_dir(port: u16) -> PathBuf {
    std::env::temp_dir().join(format!("pipeline-harness-{}-{port}", std::process::id()))
}

/// The store (`--store`) that the harness gives `service` (payment-service or
/// notification-service) run against the broker at `address`: a SQLite file in
/// that test's folder, shared by the instances of the service, as on one host.
pub fn store_url(address: &str, service: &str) -> String {
    format!("sqlite://{}", store_path(address, service).display())
}

/// The SQLite file of [`store_url`].
pub fn store_path(address: &str, service: &str) -> PathBuf {
    let port = address.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let dir = test_dir(port);
    let _ = std::fs::create_dir_all(&dir); // the broker may not exist (yet)
    dir.join(format!("{service}.db"))
}
