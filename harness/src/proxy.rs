//! A TCP proxy with a latency that can be changed while it runs: a slow network
//! between the clients and the broker ([`crate::Broker::start_behind_proxy`]).
//!
//! Each connection is forwarded to the target in both directions. Every chunk
//! read is queued with its due time (read time plus the delay then in force)
//! and written once due, so the delay is a latency, not a bandwidth cap: a
//! stream keeps its throughput, each byte arriving `delay` late. A delay of
//! zero forwards at once. Dropping the proxy stops it and closes every
//! connection it carries.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the proxy tries to reach its target for each connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Proxy {
    /// Where clients connect: `IP:PORT`.
    pub address: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    delay_us: AtomicU64,
    stopped: AtomicBool,
    /// Both sockets of every open connection, to close them when the proxy stops.
    connections: Mutex<HashMap<u64, [TcpStream; 2]>>,
}

impl Shared {
    fn delay(&self) -> Duration {
        Duration::from_micros(self.delay_us.load(Ordering::Relaxed))
    }

    fn forget(&self, id: u64) {
        if let Some(sockets) = self.connections.lock().unwrap_or_else(PoisonError::into_inner).remove(&id) {
            for socket in sockets {
                let _ = socket.shutdown(Shutdown::Both);
            }
        }
    }
}

impl Proxy {
    /// A proxy listening on a free port of `ip`, forwarding to `target`, with no delay.
    pub fn start(ip: IpAddr, target: SocketAddr) -> Proxy {
        let listener =
            TcpListener::bind((ip, 0)).unwrap_or_else(|e| panic!("the proxy cannot listen on {ip}: {e}"));
        let address = listener.local_addr().expect("the proxy's address");
        let shared = Arc::new(Shared::default());
        let acceptor = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("proxy-{}", address.port()))
                .spawn(move || accept(&listener, target, &shared))
                .expect("cannot start the proxy's thread")
        };
        Proxy { address, shared, acceptor: Some(acceptor) }
    }

    /// From now on, every chunk read in either direction is written `delay` later.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.delay_us.store(delay.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn delay(&self) -> Duration {
        self.shared.delay()
    }

    /// How many connections it carries now.
    pub fn connections(&self) -> usize {
        self.shared.connections.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl Drop for Proxy {
    /// Stops accepting and closes every connection.
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        // Wakes the acceptor, blocked in accept(), which then sees it is stopped.
        // If its address is gone already (the bridge removed), it is left blocked:
        // it can accept nothing any more, and anything it did accept it would drop.
        let woken = TcpStream::connect_timeout(&self.address, Duration::from_secs(1)).is_ok();
        if let (true, Some(acceptor)) = (woken, self.acceptor.take()) {
            let _ = acceptor.join();
        }
        let ids: Vec<u64> =
            self.shared.connections.lock().unwrap_or_else(PoisonError::into_inner).keys().copied().collect();
        for id in ids {
            self.shared.forget(id);
        }
    }
}

fn accept(listener: &TcpListener, target: SocketAddr, shared: &Arc<Shared>) {
    for (id, client) in listener.incoming().enumerate() {
        if shared.stopped.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        // The target may be down (a broker restarting): the client sees its
        // connection closed, as it would a refused one, and tries again.
        let Ok(server) = TcpStream::connect_timeout(&target, CONNECT_TIMEOUT) else { continue };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let id = id as u64;
        let sockets = || Some([client.try_clone().ok()?, server.try_clone().ok()?]);
        let (Some(up), Some(down), Some(kept)) = (sockets(), sockets(), sockets()) else { continue };
        shared.connections.lock().unwrap_or_else(PoisonError::into_inner).insert(id, kept);
        if shared.stopped.load(Ordering::SeqCst) {
            shared.forget(id); // stopped meanwhile: Drop may have missed this one
            return;
        }
        let open = Arc::new(AtomicU64::new(2));
        let [client_up, server_up] = up;
        let [client_down, server_down] = down;
        pipe(client_up, server_up, id, open.clone(), shared.clone());
        pipe(server_down, client_down, id, open, shared.clone());
    }
}

/// What a reader hands its writer: a chunk, the end of the stream, or a failure.
enum Chunk {
    Data(Vec<u8>),
    End,
    Broken,
}

/// Forwards `from` to `to`, each chunk `delay` late: a reader thread queues
/// chunks with their due time, a writer thread writes each when it is due.
/// `open` counts the directions of connection `id` still open.
fn pipe(from: TcpStream, mut to: TcpStream, id: u64, open: Arc<AtomicU64>, shared: Arc<Shared>) {
    let (queue, due) = mpsc::channel::<(Instant, Chunk)>();
    let reader_shared = shared.clone();
    let mut reader_from = from.try_clone().ok();
    let spawned = std::thread::Builder::new().name(format!("proxy-read-{id}")).spawn(move || {
        let Some(from) = reader_from.as_mut() else {
            let _ = queue.send((Instant::now(), Chunk::Broken));
            return;
        };
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let chunk = match from.read(&mut buffer) {
                Ok(0) => Chunk::End,
                Ok(n) => Chunk::Data(buffer[..n].to_vec()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => Chunk::Broken,
            };
            let last = !matches!(chunk, Chunk::Data(_));
            if queue.send((Instant::now() + reader_shared.delay(), chunk)).is_err() || last {
                return;
            }
        }
    });
    if spawned.is_err() {
        shared.forget(id);
        return;
    }
    let _ = std::thread::Builder::new().name(format!("proxy-write-{id}")).spawn(move || {
        let mut broken = true;
        for (at, chunk) in due {
            // The latency itself: this chunk is not due yet.
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
            match chunk {
                Chunk::Data(bytes) => {
                    if to.write_all(&bytes).is_err() {
                        break;
                    }
                }
                Chunk::End => {
                    let _ = to.shutdown(Shutdown::Write);
                    broken = false;
                    break;
                }
                Chunk::Broken => break,
            }
        }
        if broken {
            // One side failed: the whole connection goes, as through a real network.
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
        }
        if broken || open.fetch_sub(1, Ordering::SeqCst) == 1 {
            shared.forget(id);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                std::thread::spawn(move || {
                    let mut reader = stream.try_clone().unwrap();
                    let _ = std::io::copy(&mut reader, &mut stream);
                });
            }
        });
        address
    }

    fn round_trip(stream: &mut TcpStream, bytes: &[u8]) -> Duration {
        let started = Instant::now();
        stream.write_all(bytes).unwrap();
        let mut back = vec![0u8; bytes.len()];
        stream.read_exact(&mut back).unwrap();
        assert_eq!(back, bytes);
        started.elapsed()
    }

    #[test]
    fn forwards_both_ways_with_the_delay_in_force() {
        let proxy = Proxy::start(IpAddr::V4(Ipv4Addr::LOCALHOST), echo_server());
        let mut client = TcpStream::connect(proxy.address).unwrap();
        assert!(round_trip(&mut client, b"hello") < Duration::from_millis(100));
        proxy.set_delay(Duration::from_millis(100));
        // 100 ms each way.
        let slow = round_trip(&mut client, b"slow");
        assert!(slow >= Duration::from_millis(200), "{slow:?}");
        assert!(slow < Duration::from_millis(1000), "{slow:?}");
        proxy.set_delay(Duration::ZERO);
        assert!(round_trip(&mut client, b"fast again") < Duration::from_millis(100));
    }

    #[test]
    fn a_delay_is_a_latency_not_a_bandwidth_cap() {
        let proxy = Proxy::start(IpAddr::V4(Ipv4Addr::LOCALHOST), echo_server());
        proxy.set_delay(Duration::from_millis(100));
        let client = TcpStream::connect(proxy.address).unwrap();
        let mut writer = client.try_clone().unwrap();
        // Before the sender starts: it may write its first chunks at once.
        let started = Instant::now();
        let sent = std::thread::spawn(move || {
            // 100 chunks written 10 ms apart: a cap of one chunk per delay would
            // take 20 s; a latency adds 200 ms to the whole.
            for _ in 0..100 {
                writer.write_all(&[7u8; 1000]).unwrap();
                std::thread::sleep(Duration::from_millis(10)); // the pace of the sender
            }
        });
        let mut back = vec![0u8; 100_000];
        (&client).read_exact(&mut back).unwrap();
        sent.join().unwrap();
        let took = started.elapsed();
        // The last chunk is written 99 pauses after the first, and comes back 200 ms later.
        assert!(took >= Duration::from_millis(990 + 200), "{took:?}");
        assert!(took < Duration::from_millis(4000), "{took:?}");
    }

    #[test]
    fn dropping_it_closes_its_connections() {
        let proxy = Proxy::start(IpAddr::V4(Ipv4Addr::LOCALHOST), echo_server());
        let mut client = TcpStream::connect(proxy.address).unwrap();
        round_trip(&mut client, b"hi");
        assert_eq!(proxy.connections(), 1);
        let address = proxy.address;
        drop(proxy);
        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut byte = [0u8; 1];
        assert!(matches!(client.read(&mut byte), Ok(0) | Err(_)), "still open");
        assert!(TcpStream::connect(address).is_err(), "still listening");
    }

    #[test]
    fn a_target_that_is_down_closes_the_client() {
        let gone = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let proxy = Proxy::start(IpAddr::V4(Ipv4Addr::LOCALHOST), gone);
        let mut client = TcpStream::connect(proxy.address).unwrap();
        client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut byte = [0u8; 1];
        assert!(matches!(client.read(&mut byte), Ok(0) | Err(_)));
    }
}
