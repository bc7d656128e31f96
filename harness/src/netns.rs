//! Hosts on a network of their own, whose cable can be pulled: a [`Network`] is
//! a bridge in the root namespace with an address the broker listens on
//! ([`crate::Broker::start_on`] with [`Network::bridge_ip`]), and each [`Host`] a
//! network namespace joined to the bridge by a veth pair. A service started on
//! a host ([`Host::start`]) reaches the broker only over its veth; [`Network::cut`]
//! sets the bridge's end of it down, and every packet from or to the host is
//! dropped, silently, as by a dead switch port (no reset, no error: the host's
//! connections stay open and go quiet); [`Network::restore`] sets it up again.
//! Processes outside the namespaces reach the bridge's address as a local one.
//!
//! Names start with `pl<pid><letter>` (the letter counts this process's
//! networks), short enough for interface names (15 bytes at most); each network
//! has its own /24 in 10.213.0.0/16. Everything is removed on drop, also when a
//! test panics; at creation, whatever a crashed earlier process of the same id
//! left under the same names is removed first. Needs root.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};

static NETWORKS: AtomicU32 = AtomicU32::new(0);
/// The name prefixes of this process's live networks, for [`remove_all`].
static LIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());

pub struct Network {
    prefix: String,
    bridge: String,
    subnet: u8,
    hosts: Mutex<Vec<Host>>,
}

/// A network namespace on a [`Network`].
#[derive(Clone, Debug)]
pub struct Host {
    /// The namespace's name (`ip netns exec NAME ...`).
    pub netns: String,
    /// Its address on the network.
    pub ip: Ipv4Addr,
    /// The veth's end on the bridge, in the root namespace: what `cut` sets down.
    veth: String,
}

impl Network {
    /// A bridge with its own /24, up, and no hosts yet. Panics, saying why, if it
    /// cannot be made (not root, no `ip`).
    pub fn new() -> Network {
        assert_root();
        let n = NETWORKS.fetch_add(1, Ordering::SeqCst);
        let letter = char::from(b'a' + (n % 26) as u8);
        let prefix = format!("pl{}{letter}", std::process::id());
        remove_matching(&prefix); // a crashed earlier process of this id
        let subnet = free_subnet(std::process::id() * 26 + n);
        let network = Network {
            bridge: format!("{prefix}b"),
            prefix: prefix.clone(),
            subnet,
            hosts: Mutex::new(Vec::new()),
        };
        LIVE.lock().unwrap_or_else(PoisonError::into_inner).push(prefix);
        let bridge = network.bridge.as_str();
        let address = format!("{}/24", network.bridge_ip());
        ip(&["link", "add", bridge, "type", "bridge"]);
        ip(&["addr", "add", &address, "dev", bridge]);
        ip(&["link", "set", bridge, "up"]);
        network
    }

    /// The bridge's address: where the broker listens, for the hosts and for
    /// processes in the root namespace alike.
    pub fn bridge_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.subnet, 1)
    }

    /// A new namespace joined to the bridge, its link up.
    pub fn add_host(&self) -> Host {
        let mut hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        let i = hosts.len();
        assert!(i < 99, "at most 99 hosts on a network");
        let host = Host {
            netns: format!("{}h{i}", self.prefix),
            ip: Ipv4Addr::new(10, 213, self.subnet, 10 + i as u8),
            veth: format!("{}v{i}", self.prefix),
        };
        hosts.push(host.clone());
        let (netns, veth) = (host.netns.as_str(), host.veth.as_str());
        ip(&["netns", "add", netns]);
        ip(&["link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns]);
        ip(&["link", "set", veth, "master", &self.bridge]);
        ip(&["link", "set", veth, "up"]);
        ip(&["-n", netns, "addr", "add", &format!("{}/24", host.ip), "dev", "eth0"]);
        ip(&["-n", netns, "link", "set", "eth0", "up"]);
        ip(&["-n", netns, "link", "set", "lo", "up"]);
        host
    }

    /// Pulls `host`'s cable: its link to the bridge goes down, and its packets
    /// are dropped until [`Network::restore`].
    pub fn cut(&self, host: &Host) {
        ip(&["link", "set", &host.veth, "down"]);
    }

    /// Plugs `host` back in.
    pub fn restore(&self, host: &Host) {
        ip(&["link", "set", &host.veth, "up"]);
    }

    /// Plugs every host back in (best effort: for a cleanup path).
    pub fn restore_all(&self) {
        for host in self.hosts.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            let _ = run_ip(&["link", "set", &host.veth, "up"]);
        }
    }
}

impl Default for Network {
    fn default() -> Network {
        Network::new()
    }
}

impl Drop for Network {
    /// Removes the namespaces, the veth pairs and the bridge.
    fn drop(&mut self) {
        remove_matching(&self.prefix);
        LIVE.lock().unwrap_or_else(PoisonError::into_inner).retain(|p| *p != self.prefix);
    }
}

impl Host {
    /// Starts `name` against `broker` in this host's namespace. The broker must be
    /// reachable from it: listening (or its proxy) on the network's bridge.
    pub fn start(&self, name: &str, broker: &crate::Broker, args: &[&str]) -> crate::ServiceProcess {
        let on_bridge = |address: &str| {
            address
                .parse::<std::net::SocketAddrV4>()
                .is_ok_and(|a| a.ip().octets()[..3] == self.ip.octets()[..3])
        };
        assert!(
            on_bridge(&broker.address),
            "{} cannot reach a broker at {}: start it on the network's bridge (Broker::start_on(network.bridge_ip()))",
            self.netns,
            broker.address
        );
        crate::ServiceProcess::start_in_netns(name, broker, args, &self.netns)
    }
}

/// Removes every network of this process still there: for a process that exits
/// without unwinding (a signal), since drops do not run then.
pub fn remove_all() {
    let live = std::mem::take(&mut *LIVE.lock().unwrap_or_else(PoisonError::into_inner));
    for prefix in live {
        remove_matching(&prefix);
    }
}

fn assert_root() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid =
        status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|ids| ids.split_whitespace().nth(1));
    assert!(
        euid == Some("0"),
        "network faults need root (network namespaces, a bridge, veth pairs): run as root (effective uid {})",
        euid.unwrap_or("unknown")
    );
}

/// Runs `ip ARGS`; panics with its error if it fails.
fn ip(args: &[&str]) {
    if let Err(why) = run_ip(args) {
        panic!("cannot set up the test network: `ip {}` failed: {why}", args.join(" "));
    }
}

fn run_ip(args: &[&str]) -> Result<String, String> {
    let output = Command::new("ip").args(args).output().map_err(|e| format!("cannot run ip: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!("{}: {}", output.status, String::from_utf8_lossy(&output.stderr).trim()))
    }
}

/// Whether `name` is one of the network `prefix`'s: the prefix, then a letter.
fn is_of(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix).is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_alphabetic()))
}

/// Removes the namespaces and links named after `prefix` (best effort).
fn remove_matching(prefix: &str) {
    // Namespaces first: their veth ends go with them, the pairs too.
    let namespaces = run_ip(&["netns", "list"]).unwrap_or_default();
    for netns in namespaces.lines().filter_map(|l| l.split_whitespace().next()) {
        if is_of(netns, prefix) {
            let _ = run_ip(&["netns", "del", netns]);
        }
    }
    // Then the links left (a veth whose namespace still has a process in it, the bridge).
    let links = run_ip(&["-o", "link", "show"]).unwrap_or_default();
    let names: Vec<&str> = links
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name))
        .filter(|name| is_of(name, prefix))
        .collect();
    for name in names.iter().filter(|n| !n.ends_with('b')).chain(names.iter().filter(|n| n.ends_with('b'))) {
        let _ = run_ip(&["link", "del", name]);
    }
}

/// A /24 of 10.213.0.0/16 no address of the root namespace is in, starting
/// from one derived from `seed`.
fn free_subnet(seed: u32) -> u8 {
    let taken = run_ip(&["-4", "-o", "addr", "show"]).unwrap_or_default();
    (0..250u32)
        .map(|i| ((seed + i) % 250 + 1) as u8)
        .find(|x| !taken.contains(&format!(" 10.213.{x}.")))
        .expect("no free /24 in 10.213.0.0/16")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_belong_to_their_prefix_only() {
        assert!(is_of("pl123ab", "pl123a"));
        assert!(is_of("pl123av10", "pl123a"));
        assert!(!is_of("pl1234ab", "pl123a"));
        assert!(!is_of("pl123a", "pl123a"));
        assert!(!is_of("eth0", "pl123a"));
    }
}
