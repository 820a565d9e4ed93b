//! The accept loop: plain TCP or TLS (rustls) on one path, HTTP/1.1 served by
//! hyper with a header-read timeout, a TLS handshake timeout, a cap on open
//! connections, and graceful shutdown.
//!
//! At the cap, the connection that has waited longest without a request in
//! progress (idle between requests, in its TLS handshake or still sending its
//! headers) is closed to make room; one inside a handler never is. A connection
//! whose answer the client stops reading is closed after the body-idle timeout.
//! When accept fails for want of file descriptors, the loop frees the idlest
//! connection and pauses briefly instead of spinning.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio_rustls::TlsAcceptor;

use super::{EdgeLimits, Tls};
use crate::metrics::Metrics;

/// The most a connection buffers while reading (request head, body frames):
/// headers with a cookie and a token are well under it, and 1,024 connections
/// hold at most 64 MiB.
const MAX_BUF_BYTES: usize = 64 * 1024;
/// How long the loop pauses when accept fails (out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// One open connection, as the loop and its task see it.
struct Conn {
    /// Requests in progress (handler running or answer being written).
    busy: AtomicUsize,
    /// Milliseconds since the table's epoch: when it last became idle (accepted,
    /// or finished an answer).
    idle_since: AtomicU64,
    /// When the handler answered and writing began (0: not answering).
    answering_since: AtomicU64,
    /// Last time bytes moved either way.
    last_io: AtomicU64,
    /// Told to close (to make room at the cap).
    close: Notify,
}

/// The open connections of one listener.
pub(super) struct Conns {
    table: Mutex<HashMap<u64, Arc<Conn>>>,
    next: AtomicU64,
    max: usize,
    epoch: Instant,
    /// Tasks still running (evicted ones included), for shutdown.
    live: AtomicUsize,
    all_done: Notify,
    metrics: Option<Arc<Metrics>>,
}

impl Conns {
    pub(super) fn new(max: usize, metrics: Option<Arc<Metrics>>) -> Arc<Conns> {
        Arc::new(Conns {
            table: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
            max: max.max(1),
            epoch: Instant::now(),
            live: AtomicUsize::new(0),
            all_done: Notify::new(),
            metrics,
        })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn closed(&self, reason: &'static str) {
        if let Some(m) = &self.metrics {
            m.connection_closed(reason);
        }
    }

    /// Close the connection idle the longest, if there is one. True if one was.
    fn evict_idlest(&self, table: &mut HashMap<u64, Arc<Conn>>) -> bool {
        let victim = table
            .iter()
            .filter(|(_, c)| c.busy.load(Ordering::Acquire) == 0)
            .min_by_key(|(_, c)| c.idle_since.load(Ordering::Relaxed))
            .map(|(id, _)| *id);
        let Some(conn) = victim.and_then(|id| table.remove(&id)) else {
            return false;
        };
        conn.close.notify_one();
        if let Some(m) = &self.metrics {
            m.connection_open(-1);
        }
        self.closed("evicted");
        true
    }

    /// Room for a new connection: at the cap, the idlest is closed to make it;
    /// `None` when every connection has a request in progress.
    fn admit(self: &Arc<Self>) -> Option<Slot> {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        if table.len() >= self.max && !self.evict_idlest(&mut table) {
            return None;
        }
        let now = self.now();
        let conn = Arc::new(Conn {
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(now),
            answering_since: AtomicU64::new(0),
            last_io: AtomicU64::new(now),
            close: Notify::new(),
        });
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        table.insert(id, conn.clone());
        self.live.fetch_add(1, Ordering::AcqRel);
        if let Some(m) = &self.metrics {
            m.connection_open(1);
        }
        Some(Slot {
            conns: self.clone(),
            id,
            conn,
        })
    }

    /// Free a file descriptor: close the idlest connection (accept failed).
    fn free_one(&self) {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        self.evict_idlest(&mut table);
    }

    /// Wait until every connection task has ended, at most `grace`.
    async fn drained(&self, grace: Duration) -> bool {
        let waiting = async {
            while self.live.load(Ordering::Acquire) > 0 {
                self.all_done.notified().await;
            }
        };
        tokio::time::timeout(grace, waiting).await.is_ok()
    }
}

/// A connection's place in the table; leaving it when the task ends.
struct Slot {
    conns: Arc<Conns>,
    id: u64,
    conn: Arc<Conn>,
}

impl Slot {
    /// The client has stopped reading an answer for longer than `idle`.
    fn stalled(&self, idle: Duration) -> bool {
        let since = self.conn.answering_since.load(Ordering::Acquire);
        if since == 0 || self.conn.busy.load(Ordering::Acquire) == 0 {
            return false;
        }
        let moved = self.conn.last_io.load(Ordering::Relaxed).max(since);
        let idle = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        self.conns.now().saturating_sub(moved) > idle
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut table = self
            .conns
            .table
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if table.remove(&self.id).is_some() {
            if let Some(m) = &self.conns.metrics {
                m.connection_open(-1);
            }
        }
        drop(table);
        if self.conns.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.conns.all_done.notify_one();
        }
    }
}

/// A request in progress on a connection, until its answer has been written.
struct Busy {
    conns: Arc<Conns>,
    conn: Arc<Conn>,
}

impl Busy {
    fn start(conns: &Arc<Conns>, conn: &Arc<Conn>) -> Busy {
        conn.busy.fetch_add(1, Ordering::AcqRel);
        conn.answering_since.store(0, Ordering::Release);
        Busy {
            conns: conns.clone(),
            conn: conn.clone(),
        }
    }

    fn answering(&self) {
        self.conn
            .answering_since
            .store(self.conns.now().max(1), Ordering::Release);
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.conn
            .idle_since
            .store(self.conns.now(), Ordering::Relaxed);
        self.conn.answering_since.store(0, Ordering::Release);
        self.conn.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An answer's body, holding its request's [`Busy`] until hyper is done with it.
struct Answer {
    body: Body,
    _busy: Busy,
}

impl http_body::Body for Answer {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A stream that notes when bytes last moved.
struct Watched<T> {
    inner: T,
    conns: Arc<Conns>,
    conn: Arc<Conn>,
}

impl<T> Watched<T> {
    fn moved(&self) {
        self.conn.last_io.store(self.conns.now(), Ordering::Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.moved();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.moved();
        }
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.moved();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The TLS acceptor for a certificate chain and key (PEM files): TLS 1.2 and 1.3
/// with rustls and ring; HTTP/1.1 by ALPN.
pub(super) fn acceptor(tls: &Tls) -> io::Result<TlsAcceptor> {
    let bad = |e: &dyn std::fmt::Display| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "TLS certificate {} or key {}: {e}",
                tls.cert.display(),
                tls.key.display()
            ),
        )
    };
    let read = |path: &std::path::Path| {
        std::fs::read(path)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display())))
    };
    let (cert_pem, key_pem) = (read(&tls.cert)?, read(&tls.key)?);
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&e))?;
    if certs.is_empty() {
        return Err(bad(&"no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| bad(&e))?;
    // One crypto provider for the process; an error means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(&e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| bad(&e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Warn when the cap on connections does not fit under the process's limit on
/// open files (Linux: read from /proc).
pub(super) fn check_fd_limit(max_connections: usize) {
    let Ok(limits) = std::fs::read_to_string("/proc/self/limits") else {
        return;
    };
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse::<usize>().ok());
    // The databases, photo files and the metrics listener need some too.
    if let Some(soft) = soft {
        if max_connections + 64 > soft {
            tracing::warn!(
                max_connections,
                open_files_limit = soft,
                "max_connections is close to the open-files limit; raise the limit (ulimit -n, LimitNOFILE) or lower max_connections"
            );
        }
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Accept and serve connections until `stop` turns true, then let the requests in
/// flight finish (at most 30 s).
pub(super) async fn run(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    conns: Arc<Conns>,
    limits: EdgeLimits,
    mut stop: watch::Receiver<bool>,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_BUF_BYTES)
        .keep_alive(true);
    let mut last_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.wait_for(|s| *s) => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Most likely out of file descriptors (EMFILE): free one, pause.
                if let Some(m) = &conns.metrics {
                    m.accept_error();
                }
                if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    tracing::warn!(error = %e, "accept failed; closing an idle connection and pausing");
                    last_warning = Some(Instant::now());
                }
                conns.free_one();
                tokio::select! {
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => {},
                    _ = stop.wait_for(|s| *s) => break,
                }
                continue;
            }
        };
        let Some(slot) = conns.admit() else {
            // Every connection is inside a request: say so and close.
            conns.closed("refused");
            if tls.is_none() {
                let _ = stream.try_write(
                    b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
                );
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(
            stream,
            tls.clone(),
            http.clone(),
            app.clone(),
            slot,
            limits.clone(),
            stop.clone(),
        ));
    }
    drop(listener);
    if !conns.drained(SHUTDOWN_GRACE).await {
        tracing::warn!("requests still in flight after the shutdown grace; closing them");
    }
}

async fn connection(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    http: http1::Builder,
    app: Router,
    slot: Slot,
    limits: EdgeLimits,
    mut stop: watch::Receiver<bool>,
) {
    let peer = stream
        .peer_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let watched = Watched {
        inner: stream,
        conns: slot.conns.clone(),
        conn: slot.conn.clone(),
    };
    match tls {
        None => serve_http(watched, http, app, &slot, peer, &limits, &mut stop).await,
        Some(acceptor) => {
            let handshake = tokio::time::timeout(limits.header_timeout, acceptor.accept(watched));
            let stream = tokio::select! {
                r = handshake => r,
                () = slot.conn.close.notified() => return,
                _ = stop.wait_for(|s| *s) => return,
            };
            match stream {
                Ok(Ok(stream)) => {
                    serve_http(stream, http, app, &slot, peer, &limits, &mut stop).await
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => slot.conns.closed("handshake_timeout"),
            }
        }
    }
}

async fn serve_http<IO>(
    io: IO,
    http: http1::Builder,
    app: Router,
    slot: &Slot,
    peer: SocketAddr,
    limits: &EdgeLimits,
    stop: &mut watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let inner = TowerToHyperService::new(app);
    let (conns, conn) = (slot.conns.clone(), slot.conn.clone());
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        // The peer's address, for the resident channel's per-address limits.
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        let busy = Busy::start(&conns, &conn);
        let answering = hyper::service::Service::call(&inner, req);
        async move {
            let response: Response<Body> = match answering.await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            busy.answering();
            Ok::<_, Infallible>(response.map(|body| Body::new(Answer { body, _busy: busy })))
        }
    });
    let served = http.serve_connection(TokioIo::new(io), service);
    tokio::pin!(served);
    let mut stopping = false;
    let mut check = tokio::time::interval(Duration::from_secs(1));
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            r = served.as_mut() => {
                if let Err(e) = r {
                    if e.is_timeout() {
                        slot.conns.closed("header_timeout");
                    } else {
                        tracing::debug!(error = %e, "connection ended");
                    }
                }
                return;
            }
            () = slot.conn.close.notified() => {
                if slot.conn.busy.load(Ordering::Acquire) == 0 {
                    return;
                }
                // A request began as it was picked: let it finish, then close.
                served.as_mut().graceful_shutdown();
            }
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                served.as_mut().graceful_shutdown();
            }
            _ = check.tick() => {
                if slot.stalled(limits.body_idle_timeout) {
                    slot.conns.closed("stalled");
                    return;
                }
            }
        }
    }
}
