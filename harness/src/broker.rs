//! The Nisshi broker of a test (or of the benchmark): on a free port, with its
//! storage in the test's folder or in memory, behind a proxy or secured if
//! asked. Killed on drop.

use crate::service_process::signal;
use crate::test_folder::test_dir;
use crate::workspace::{free_port_on, keep_log, workspace};
use crate::{proxy, security, Security};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A Nisshi broker on a free port of 127.0.0.1, with durable sqlite storage in a
/// fresh temporary folder (or in memory). Killed on drop.
pub struct Broker {
    /// Where clients reach it, as it advertises itself: its own address, or its
    /// proxy's ([`Broker::start_behind_proxy`]).
    pub address: String,
    /// Where it listens.
    listen: SocketAddr,
    dir: PathBuf,
    /// Nisshi's `--storage-engine`.
    storage: &'static str,
    child: Option<Child>,
    security: Security,
}

impl Broker {
    pub fn start() -> Broker {
        let mut broker = Broker::stopped();
        broker.restart();
        broker
    }

    /// A broker that keeps its records in memory only, which makes it faster
    /// (the benchmark's: the broker must not be what limits the clients).
    pub fn start_in_memory() -> Broker {
        let mut broker = Broker::stopped();
        broker.storage = "memory://nisshi/";
        broker.restart();
        broker
    }

    /// A broker with a free port and storage, not running yet: `restart` starts it.
    pub fn stopped() -> Broker {
        Broker::stopped_at(Ipv4Addr::LOCALHOST, None)
    }

    /// A broker listening on a free port of `ip` (a [`crate::netns::Network`]'s bridge,
    /// which hosts in namespaces reach), advertised there.
    pub fn start_on(ip: Ipv4Addr) -> Broker {
        let mut broker = Broker::stopped_at(ip, None);
        broker.restart();
        broker
    }

    /// A broker on 127.0.0.1 advertised behind a [`proxy::Proxy`]: it listens on
    /// a port of its own, but tells clients to use the proxy's, so that every
    /// client (given `broker.address`, the proxy's) talks to it through the proxy
    /// only. Keep the proxy as long as the broker.
    pub fn start_behind_proxy() -> (Broker, proxy::Proxy) {
        Broker::start_behind_proxy_on(Ipv4Addr::LOCALHOST)
    }

    /// [`Broker::start_behind_proxy`] with the broker and the proxy on `ip`.
    pub fn start_behind_proxy_on(ip: Ipv4Addr) -> (Broker, proxy::Proxy) {
        let listen = SocketAddr::from((ip, free_port_on(ip)));
        let proxy = proxy::Proxy::start(IpAddr::V4(ip), listen);
        let mut broker = Broker::stopped_at(ip, Some((listen.port(), proxy.address)));
        broker.restart();
        (broker, proxy)
    }

    /// A broker not running yet, on a free port of `ip` or on `behind`'s port,
    /// advertised at `behind`'s address (a proxy) or at its own. Its folder is
    /// named after the port clients use, as [`crate::store_path`] expects.
    fn stopped_at(ip: Ipv4Addr, behind: Option<(u16, SocketAddr)>) -> Broker {
        let listen = SocketAddr::from((ip, behind.map_or_else(|| free_port_on(ip), |(port, _)| port)));
        let address = behind.map_or(listen, |(_, proxy)| proxy);
        let dir = test_dir(address.port());
        std::fs::create_dir_all(&dir).expect("cannot create a temporary folder for the broker");
        Broker {
            address: address.to_string(),
            listen,
            dir,
            storage: "sqlite://nisshi.db",
            child: None,
            security: Security::default(),
        }
    }

    /// A broker that lets in only the clients that `security` says: those with
    /// [`Broker::client_args`] (which [`crate::ServiceProcess::start`] passes).
    pub fn start_secured(security: Security) -> Broker {
        let mut broker = Broker::stopped();
        if let Some((name, password)) = &security.user {
            // Nisshi keeps its users in its storage: create this one while the
            // broker is open to all, then start it again secured.
            broker.restart();
            let nisshi = nisshi();
            let url = format!("tcp://{}", broker.address);
            let created = Command::new(&nisshi)
                .args(["user", "create", "--broker", &url, "--mechanism", "scram512", name, password])
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", nisshi.display()));
            assert!(created.status.success(), "nisshi user create failed: {created:?}");
            broker.terminate(Duration::from_secs(30));
        }
        if security.tls {
            security::write_self_signed_certificate(&broker.dir);
        }
        broker.security = security;
        // Written once: a service reads it as it starts, perhaps while the next one starts.
        let properties = broker.client_properties().join("\n") + "\n";
        std::fs::write(broker.client_properties_file(), properties)
            .expect("cannot write the client properties");
        broker.restart();
        broker
    }

    /// The flags a service needs to get into this broker: `--kafka-config FILE`
    /// with the properties of [`Broker::client_properties`] (none for a broker open to all).
    pub fn client_args(&self) -> Vec<String> {
        if self.client_properties().is_empty() {
            return Vec::new();
        }
        vec!["--kafka-config".into(), self.client_properties_file().display().to_string()]
    }

    fn client_properties_file(&self) -> PathBuf {
        self.dir.join("client.properties")
    }

    /// The librdkafka properties (KEY=VALUE) a client needs to get into this broker.
    pub fn client_properties(&self) -> Vec<String> {
        self.security.client_properties(&self.dir)
    }

    /// Starts the broker (again) on its port and storage.
    pub fn restart(&mut self) {
        let nisshi = nisshi();
        // Appended to, so a restarted broker's log follows the previous run's.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("cannot create the broker log");
        let (url, advertised) = (format!("tcp://{}", self.listen), format!("tcp://{}", self.address));
        let mut child = Command::new(&nisshi)
            .current_dir(&self.dir) // the sqlite path is relative to it
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &advertised])
            .args(["--storage-engine", self.storage])
            .args(self.security.broker_flags(&self.dir))
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", nisshi.display()));
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(self.listen).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the broker exited at start ({status}):\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "the broker did not listen within 30 s:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20)); // polling a port: no event to wait on
        }
        self.child = Some(child);
    }

    /// Kills the broker with SIGKILL (a crash, or a pulled plug); its storage stays.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the broker with SIGTERM (what Ctrl-C, systemd or Docker send) and
    /// waits for it to exit; its storage stays. Panics if it outlives `timeout`.
    pub fn terminate(&mut self, timeout: Duration) {
        let Some(mut child) = self.child.take() else { return };
        signal(&child, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + timeout;
        while child.try_wait().expect("cannot wait for the broker").is_none() {
            if Instant::now() >= deadline {
                let _ = child.kill();
                panic!("the broker did not exit within {timeout:?} of SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20)); // no exit event to wait on with a deadline
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// A client configuration that gets into this broker.
    pub fn client_config(&self) -> rdkafka::ClientConfig {
        let mut config = rdkafka::ClientConfig::new();
        config.set("bootstrap.servers", &self.address);
        for property in self.client_properties() {
            let (key, value) = property.split_once('=').expect("KEY=VALUE");
            config.set(key, value);
        }
        config
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("nisshi.log")
    }
}

impl Drop for Broker {
    /// Kills the broker, keeps its log in `target/e2e-logs/<test>.broker.log`
    /// and removes its storage.
    fn drop(&mut self) {
        self.kill();
        keep_log("broker", &self.log());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The Nisshi binary: `NISSHI_BIN`, or the one `scripts/install-nisshi` installs.
fn nisshi() -> PathBuf {
    let nisshi = std::env::var_os("NISSHI_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".tools/bin/nisshi"));
    assert!(
        nisshi.exists(),
        "the Nisshi broker is not installed at {}: run ./scripts/install-nisshi (./scripts/test does it)",
        nisshi.display()
    );
    nisshi
}
