//! Fault proxies on loopback. `CuttingProxy` forwards to a server and drops
//! connections after a chosen number of request bytes, the way a rural link drops;
//! bounded, it serves a fixed number of connections and counts what it forwarded.
//! `FaultProxy` (the torture suite's) gives each connection a planned fault —
//! latency, a bandwidth cap, a reset mid-request or mid-answer, a black hole — until
//! healed, and counts pushes the server never answered.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// What the proxy saw.
#[derive(Default)]
pub struct ProxyStats {
    /// Bytes forwarded from clients to the server.
    pub up: AtomicU64,
    /// Connections cut.
    pub cuts: AtomicU64,
}

/// A running proxy.
pub struct CuttingProxy {
    /// Its address.
    pub addr: SocketAddr,
    /// Its counters.
    pub stats: Arc<ProxyStats>,
}

impl CuttingProxy {
    /// Proxy to `upstream`. Connection `i` is cut after `cut_after(i)` request bytes
    /// (`None`: never). At most `max_connections` are served.
    pub fn start(
        upstream: SocketAddr,
        max_connections: usize,
        cut_after: impl Fn(usize) -> Option<u64> + Send + 'static,
    ) -> std::io::Result<CuttingProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(ProxyStats::default());
        let s = stats.clone();
        thread::spawn(move || {
            for (i, client) in listener.incoming().take(max_connections).enumerate() {
                let (Ok(client), Ok(server)) = (client, TcpStream::connect(upstream)) else {
                    continue;
                };
                let limit = cut_after(i);
                let stats = s.clone();
                thread::spawn(move || pipe(client, server, limit, &stats));
            }
        });
        Ok(CuttingProxy { addr, stats })
    }

    /// The proxy's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn pipe(client: TcpStream, server: TcpStream, limit: Option<u64>, stats: &ProxyStats) {
    let (Ok(mut client_r), Ok(mut server_w)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let (mut server_r, mut client_w) = (server, client);
    let down = thread::spawn(move || {
        let _ = std::io::copy(&mut server_r, &mut client_w);
        let _ = client_w.shutdown(Shutdown::Both);
    });
    let mut sent = 0u64;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match client_r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let allowed = limit.map_or(n as u64, |l| (l.saturating_sub(sent)).min(n as u64));
        if allowed > 0 && server_w.write_all(&buf[..allowed as usize]).is_err() {
            break;
        }
        sent += allowed;
        stats.up.fetch_add(allowed, Ordering::Relaxed);
        if (allowed as usize) < n {
            stats.cuts.fetch_add(1, Ordering::Relaxed);
            break;
        }
    }
    let _ = server_w.shutdown(Shutdown::Both);
    let _ = client_r.shutdown(Shutdown::Both);
    let _ = down.join();
}

/// What a [`FaultProxy`] does to one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forwarded as it is.
    Clean,
    /// Every chunk, both ways, held back this long (a slow or flapping link).
    Latency(Duration),
    /// At most this many bytes per second each way (a weak signal).
    Throttle(u64),
    /// Reset after this many request bytes (mid-request).
    CutUp(u64),
    /// Reset after this many answer bytes (mid-answer).
    CutDown(u64),
    /// At most `rate` bytes per second each way, reset after `after` bytes either
    /// way: a weak link that also drops.
    SlowCut {
        /// Bytes per second.
        rate: u64,
        /// Bytes (each way) before the reset.
        after: u64,
    },
    /// Accepted, never forwarded, held open this long, then closed: a black hole
    /// and, while it lasts, a half-open connection.
    BlackHole(Duration),
}

/// What a [`FaultProxy`] saw and did.
#[derive(Default, Debug)]
pub struct FaultStats {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Connections given each fault: latency, throttle, cut up, cut down, black hole.
    pub latency: AtomicU64,
    /// See `latency`.
    pub throttled: AtomicU64,
    /// See `latency`.
    pub cut_up: AtomicU64,
    /// See `latency`.
    pub cut_down: AtomicU64,
    /// See `latency`.
    pub black_holes: AtomicU64,
    /// See `latency` ([`Fault::SlowCut`]).
    pub slow_cuts: AtomicU64,
    /// Bytes forwarded to the server.
    pub up: AtomicU64,
    /// Bytes forwarded to the clients.
    pub down: AtomicU64,
    /// Push requests (`POST /v1/push`) whose whole body was handed to the server.
    pub pushes_sent: AtomicU64,
    /// Of those, pushes after whose body the server's side closed without a byte of
    /// answer: the server died (or dropped the connection) mid-push.
    pub pushes_unanswered: AtomicU64,
}

impl FaultStats {
    /// Connections that were given a fault.
    pub fn faults(&self) -> u64 {
        [
            &self.latency,
            &self.throttled,
            &self.cut_up,
            &self.cut_down,
            &self.black_holes,
            &self.slow_cuts,
        ]
        .iter()
        .map(|a| a.load(Ordering::Relaxed))
        .sum()
    }
}

/// A TCP proxy on loopback that gives each connection a fault chosen by a plan
/// (`plan(i)` for the `i`-th connection: a seeded plan replays the same schedule),
/// until it is healed; and that watches the HTTP requests going through for pushes
/// left unanswered. Stops accepting when dropped.
pub struct FaultProxy {
    /// Its address.
    pub addr: SocketAddr,
    /// Its counters.
    pub stats: Arc<FaultStats>,
    healed: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    /// Proxy to `upstream` with the fault plan `plan`.
    pub fn start(
        upstream: SocketAddr,
        mut plan: impl FnMut(usize) -> Fault + Send + 'static,
    ) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(FaultStats::default());
        let healed = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, h, st) = (stats.clone(), healed.clone(), stop.clone());
        thread::spawn(move || {
            let mut i = 0;
            while !st.load(Ordering::Relaxed) {
                let client = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    Err(_) => continue,
                };
                let fault = plan(i);
                i += 1;
                let fault = if h.load(Ordering::Relaxed) {
                    Fault::Clean
                } else {
                    fault
                };
                s.connections.fetch_add(1, Ordering::Relaxed);
                let counter = match fault {
                    Fault::Clean => None,
                    Fault::Latency(_) => Some(&s.latency),
                    Fault::Throttle(_) => Some(&s.throttled),
                    Fault::CutUp(_) => Some(&s.cut_up),
                    Fault::CutDown(_) => Some(&s.cut_down),
                    Fault::BlackHole(_) => Some(&s.black_holes),
                    Fault::SlowCut { .. } => Some(&s.slow_cuts),
                };
                if let Some(c) = counter {
                    c.fetch_add(1, Ordering::Relaxed);
                }
                let stats = s.clone();
                thread::spawn(move || faulty_pipe(client, upstream, fault, &stats));
            }
        });
        Ok(FaultProxy {
            addr,
            stats,
            healed,
            stop,
        })
    }

    /// The proxy's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// From now on every new connection is clean.
    pub fn heal(&self) {
        self.healed.store(true, Ordering::Relaxed);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The HTTP request in flight on a connection, as far as the proxy follows it.
#[derive(Default)]
struct Exchange {
    /// Header bytes of the request being read.
    head: Vec<u8>,
    /// Body bytes still to come (`None`: reading a head).
    body_left: Option<u64>,
    /// Whether the current request is a push.
    push: bool,
    /// A push's whole body went to the server and no answer byte came back yet.
    push_waiting: bool,
}

impl Exchange {
    /// Follow request bytes forwarded to the server.
    fn up(&mut self, mut bytes: &[u8], stats: &FaultStats) {
        while !bytes.is_empty() {
            match self.body_left {
                Some(left) => {
                    let n = (left as usize).min(bytes.len());
                    bytes = &bytes[n..];
                    let left = left - n as u64;
                    self.body_left = Some(left);
                    if left == 0 {
                        if self.push {
                            self.push_waiting = true;
                            stats.pushes_sent.fetch_add(1, Ordering::Relaxed);
                        }
                        self.body_left = None;
                    }
                }
                None => {
                    self.head.push(bytes[0]);
                    bytes = &bytes[1..];
                    if self.head.ends_with(b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&self.head).to_ascii_lowercase();
                        self.push = head.starts_with("post /v1/push ");
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<u64>().ok())
                            .unwrap_or(0);
                        self.head.clear();
                        self.body_left = Some(len);
                        self.push_waiting = false;
                        if len == 0 {
                            self.body_left = None;
                        }
                    } else if self.head.len() > 64 * 1024 {
                        // Not HTTP as we know it: stop following.
                        self.head.clear();
                        self.body_left = Some(u64::MAX);
                    }
                }
            }
        }
    }
}

fn faulty_pipe(client: TcpStream, upstream: SocketAddr, fault: Fault, stats: &Arc<FaultStats>) {
    if let Fault::BlackHole(hold) = fault {
        let _ = client.set_read_timeout(Some(Duration::from_millis(50)));
        let until = std::time::Instant::now() + hold;
        let mut sink = [0u8; 16 * 1024];
        let mut c = &client;
        while std::time::Instant::now() < until {
            match c.read(&mut sink) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
        let _ = client.shutdown(Shutdown::Both);
        return;
    }
    let Ok(server) = TcpStream::connect(upstream) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let (Ok(client_r), Ok(server_w)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let exchange = Arc::new(Mutex::new(Exchange::default()));
    let (ex, st) = (exchange.clone(), stats.clone());
    let down = thread::spawn(move || {
        let limit = match fault {
            Fault::CutDown(n) | Fault::SlowCut { after: n, .. } => Some(n),
            _ => None,
        };
        forward(server, client, fault, limit, &st.down, |bytes| {
            if !bytes.is_empty() {
                if let Ok(mut e) = ex.lock() {
                    e.push_waiting = false;
                }
            }
        });
        // The server's side ended: was a push waiting for its answer?
        if let Ok(e) = ex.lock() {
            if e.push_waiting {
                st.pushes_unanswered.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let limit = match fault {
        Fault::CutUp(n) | Fault::SlowCut { after: n, .. } => Some(n),
        _ => None,
    };
    let st = stats.clone();
    forward(client_r, server_w, fault, limit, &stats.up, |bytes| {
        if let Ok(mut e) = exchange.lock() {
            e.up(bytes, &st);
        }
    });
    let _ = down.join();
}

/// Copy `from` to `to` under `fault`, at most `limit` bytes, then shut both.
fn forward(
    mut from: TcpStream,
    mut to: TcpStream,
    fault: Fault,
    limit: Option<u64>,
    counter: &AtomicU64,
    mut seen: impl FnMut(&[u8]),
) {
    let chunk = match fault {
        Fault::Throttle(rate) | Fault::SlowCut { rate, .. } => {
            (rate as usize / 8).clamp(256, 16 * 1024)
        }
        _ => 16 * 1024,
    };
    let mut buf = vec![0u8; chunk];
    let mut sent = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let allowed = limit.map_or(n as u64, |l| l.saturating_sub(sent).min(n as u64)) as usize;
        match fault {
            Fault::Latency(d) => thread::sleep(d),
            Fault::Throttle(rate) | Fault::SlowCut { rate, .. } => thread::sleep(
                Duration::from_micros(allowed as u64 * 1_000_000 / rate.max(1)),
            ),
            _ => {}
        }
        if allowed > 0 && to.write_all(&buf[..allowed]).is_err() {
            break;
        }
        seen(&buf[..allowed]);
        sent += allowed as u64;
        counter.fetch_add(allowed as u64, Ordering::Relaxed);
        if allowed < n {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
