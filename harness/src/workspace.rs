//! The workspace and the machine the tests run on: the workspace's binaries,
//! where the harness keeps logs for reading after a run, free ports.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (this crate sits one level below it).
pub(crate) fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("harness is in the workspace").to_path_buf()
}

/// The binary `name` of this workspace, built with the same profile as this crate.
pub fn binary(name: &str) -> PathBuf {
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let binary = workspace().join("target").join(profile).join(name);
    let flag = if cfg!(debug_assertions) { "" } else { " --release" };
    assert!(
        binary.exists(),
        "{} is not built: run `cargo build{flag} --workspace --bins` first (./scripts/test does it)",
        binary.display()
    );
    binary
}

/// Runs `name` (a binary of this workspace, e.g. `order-trace`) to its end.
pub fn run(name: &str, args: &[&str]) -> std::process::Output {
    let binary = binary(name);
    Command::new(&binary)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()))
}

/// Writes `text` to `target/e2e-logs/<test>.<what>.log`, for reading after a run.
pub(crate) fn keep_log(what: &str, text: &str) {
    let dir = workspace().join("target/e2e-logs");
    let test = std::thread::current().name().unwrap_or("test").replace("::", ".");
    let file = dir.join(format!("{test}.{what}.log"));
    let _ = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(file, text));
}

pub(crate) fn free_port_on(ip: Ipv4Addr) -> u16 {
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| panic!("no free port on {ip}: {e}"))
        .port()
}
