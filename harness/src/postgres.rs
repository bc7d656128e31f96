//! A PostgreSQL server of the test's own: Debian's `postgresql` binaries, run
//! as the `postgres` user (PostgreSQL refuses root), on a free port of
//! 127.0.0.1, its data in a temporary folder. Stopped and removed on drop.

use std::path::PathBuf;
use std::process::Command;

/// Where Debian's `postgresql` package puts the server's programs.
const BIN: &str = "/usr/lib/postgresql/15/bin";

/// The user the server runs as.
const USER: &str = "postgres";

pub struct Postgres {
    pub port: u16,
    dir: PathBuf,
}

impl Postgres {
    /// Makes a fresh cluster and starts it; panics, saying why, if it cannot.
    pub fn start() -> Postgres {
        let port = crate::workspace::free_port_on(std::net::Ipv4Addr::LOCALHOST);
        let dir = std::env::temp_dir().join(format!("pipeline-postgres-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("cannot create a folder for PostgreSQL");
        run("chown", &[&format!("{USER}:"), &dir.display().to_string()]);
        let postgres = Postgres { port, dir };
        postgres.as_postgres("initdb", &["-A", "trust", "-U", USER, "-D", &postgres.data()]);
        postgres.resume();
        postgres
    }

    /// The store URL services take (`--store`).
    pub fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server (fast shutdown: clients are disconnected); its data stays.
    pub fn stop(&self) {
        self.as_postgres("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    /// Starts the server (again) on its port and data, and waits until it takes connections.
    pub fn resume(&self) {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.dir.display());
        let log = self.dir.join("postgres.log").display().to_string();
        self.as_postgres("pg_ctl", &["-D", &self.data(), "-l", &log, "-o", &options, "-w", "start"]);
    }

    /// Runs an SQL statement with psql and returns its unaligned output.
    pub fn query(&self, sql: &str) -> String {
        let output = Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER, "-At", "-c", sql, "postgres"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run psql: {e}"));
        assert!(output.status.success(), "psql {sql:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn as_postgres(&self, program: &str, args: &[&str]) {
        let path = format!("{BIN}/{program}");
        let mut all = vec!["-u", USER, "--", &path];
        all.extend_from_slice(args);
        run("runuser", &all);
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", USER, "--", &format!("{BIN}/pg_ctl"), "-D", &self.data(), "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run {program} (PostgreSQL's tests need Debian's postgresql package and root): {e}")
    });
    assert!(
        output.status.success(),
        "{program} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
