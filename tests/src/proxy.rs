//! A cutting TCP proxy on loopback: forwards to a server and drops connections
//! after a chosen number of request bytes, the way a rural link drops. Bounded: it
//! serves a fixed number of connections and counts what it forwarded.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

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
