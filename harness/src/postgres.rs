//! A PostgreSQL server of the test's own: Debian's `postgresql` binaries, run
//! as the `postgres` user (PostgreSQL refuses root), on a free port of
//! 127.0.0.1 (or of another address of this machine: a test network's bridge),
//! its data in a temporary folder. Stopped and removed on drop.

use crate::store::{Charge, Email};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;

/// Where Debian's `postgresql` package puts the server's programs.
const BIN: &str = "/usr/lib/postgresql/15/bin";

/// The user the server runs as.
const USER: &str = "postgres";

pub struct Postgres {
    pub ip: Ipv4Addr,
    pub port: u16,
    dir: PathBuf,
}

impl Postgres {
    /// Makes a fresh cluster and starts it; panics, saying why, if it cannot.
    pub fn start() -> Postgres {
        Postgres::start_on(Ipv4Addr::LOCALHOST)
    }

    /// Makes a fresh cluster listening on `ip` and starts it.
    pub fn start_on(ip: Ipv4Addr) -> Postgres {
        let port = crate::workspace::free_port_on(ip);
        let dir = std::env::temp_dir().join(format!("pipeline-postgres-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("cannot create a folder for PostgreSQL");
        run("chown", &[&format!("{USER}:"), &dir.display().to_string()]);
        let postgres = Postgres { ip, port, dir };
        postgres.as_postgres("initdb", &["-A", "trust", "-U", USER, "-D", &postgres.data()]);
        // initdb trusts only the loopback: hosts on a test network's bridge too.
        let hba = std::path::Path::new(&postgres.data()).join("pg_hba.conf");
        let trusted = std::fs::read_to_string(&hba).map(|conf| conf + "host all all samenet trust\n");
        trusted
            .and_then(|conf| std::fs::write(&hba, conf))
            .unwrap_or_else(|e| panic!("cannot extend {}: {e}", hba.display()));
        postgres.resume();
        postgres
    }

    /// The store URL services take (`--store`).
    pub fn url(&self) -> String {
        format!("postgres://{USER}@{}:{}/postgres", self.ip, self.port)
    }

    /// Stops the server (fast shutdown: clients are disconnected); its data stays.
    pub fn stop(&self) {
        self.as_postgres("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    /// Starts the server (again) on its port and data, and waits until it takes connections.
    pub fn resume(&self) {
        let options = format!("-p {} -k {} -c listen_addresses={}", self.port, self.dir.display(), self.ip);
        let log = self.dir.join("postgres.log").display().to_string();
        self.as_postgres("pg_ctl", &["-D", &self.data(), "-l", &log, "-o", &options, "-w", "start"]);
    }

    /// Freezes every process of the server (SIGSTOP): its connections stay open
    /// and its kernel still acknowledges what clients send, but nothing answers,
    /// as a server in a stalled VM.
    pub fn hang(&self) {
        self.signal_all(nix::sys::signal::Signal::SIGSTOP);
    }

    /// Lets a hung server go on (SIGCONT).
    pub fn unhang(&self) {
        self.signal_all(nix::sys::signal::Signal::SIGCONT);
    }

    /// Sends `signal` to the server's postmaster and each of its children.
    fn signal_all(&self, signal: nix::sys::signal::Signal) {
        let pid_file = std::path::Path::new(&self.data()).join("postmaster.pid");
        let postmaster: i32 = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|text| text.lines().next()?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no postmaster pid in {}", pid_file.display()));
        let parent_of = |pid: i32| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // pid (comm) state ppid ...: comm may hold spaces, so read after its ')'.
            stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse::<i32>().ok()
        };
        let children = std::fs::read_dir("/proc")
            .expect("/proc is readable")
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| parent_of(pid) == Some(postmaster));
        for pid in std::iter::once(postmaster).chain(children) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
            // one may have just ended
        }
    }

    /// Runs an SQL statement with psql and returns its unaligned output.
    pub fn query(&self, sql: &str) -> String {
        let output = Command::new("psql")
            .args([
                "-h",
                &self.ip.to_string(),
                "-p",
                &self.port.to_string(),
                "-U",
                USER,
                "-At",
                "-c",
                sql,
                "postgres",
            ])
            .output()
            .unwrap_or_else(|e| panic!("cannot run psql: {e}"));
        assert!(output.status.success(), "psql {sql:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// Every charge the server's payment store holds, by order id.
    pub fn charges(&self) -> BTreeMap<u64, Charge> {
        let rows = self.query(
            "SELECT order_id || E'\\t' || outcome || E'\\t' || charged_by || E'\\t' || event FROM payments",
        );
        rows.lines()
            .map(|row| {
                let mut fields = row.splitn(4, '\t');
                let mut field = || fields.next().expect("four fields").to_string();
                let order_id = field().parse().expect("an order id");
                let (outcome, charged_by, event) = (field(), field(), field());
                (order_id, Charge { outcome, event, charged_by })
            })
            .collect()
    }

    /// Every email the server's notification store holds, by order id.
    pub fn emails(&self) -> BTreeMap<u64, Email> {
        let rows = self.query("SELECT order_id, sent_at_ms IS NOT NULL, in_doubt FROM emails");
        rows.lines()
            .map(|row| {
                let fields: Vec<&str> = row.split('|').collect();
                let email = Email { sent: fields[1] == "t", in_doubt: fields[2].parse().expect("a count") };
                (fields[0].parse().expect("an order id"), email)
            })
            .collect()
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
