//! A fake gridsync server on loopback: answers protocol routes with whatever a test
//! scripts, to show what a phone or a town relay does with a hostile upstream.
//! Bounded: it serves a fixed number of connections, one request each.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use gridsync_core::sync::route::Route;

/// A running fake server.
pub struct FakeServer {
    /// Its address.
    pub addr: SocketAddr,
    /// Requests answered so far.
    pub requests: Arc<AtomicU64>,
}

impl FakeServer {
    /// Serve at most `max_requests` requests, each answered by `answer(route,
    /// request body)` with a status and a CBOR body.
    pub fn start(
        max_requests: u64,
        answer: impl Fn(Route, Vec<u8>) -> (u16, Vec<u8>) + Send + 'static,
    ) -> std::io::Result<FakeServer> {
        Self::start_http(max_requests, move |path, body| {
            match Route::from_path(path) {
                Some(route) => answer(route, body),
                None => (404, Vec::new()),
            }
        })
    }

    /// Serve at most `max_requests` requests of any path, each answered by
    /// `answer(path, request body)` with a status and a body: a stand-in for any
    /// HTTP service the relay calls (e.g. a notification webhook).
    pub fn start_http(
        max_requests: u64,
        answer: impl Fn(&str, Vec<u8>) -> (u16, Vec<u8>) + Send + 'static,
    ) -> std::io::Result<FakeServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(AtomicU64::new(0));
        let counted = requests.clone();
        thread::spawn(move || {
            for stream in listener.incoming().take(max_requests as usize) {
                let Ok(mut stream) = stream else { continue };
                let Some((path, body)) = read_request(&mut stream) else {
                    continue;
                };
                let (status, bytes) = answer(&path, body);
                counted.fetch_add(1, Ordering::SeqCst);
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/cbor\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    bytes.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&bytes);
            }
        });
        Ok(FakeServer { addr, requests })
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// The path and body of one HTTP/1.1 request with a content length (what the
/// gridsync clients send), bounded to 32 MiB.
fn read_request(stream: &mut std::net::TcpStream) -> Option<(String, Vec<u8>)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_owned();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().ok()?;
            }
        }
    }
    if length > 32 * 1024 * 1024 {
        return None;
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((path, body))
}
