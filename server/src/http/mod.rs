//! The HTTP shell around the relay: CBOR in, CBOR out. All protocol logic is in
//! `relay`; this is the edge, where neither a phone nor a stranger may exhaust the
//! relay's memory, connections or file descriptors:
//!
//! - `listener.rs`: the accept loop (plain TCP or TLS alike), header-read and
//!   handshake timeouts, a cap on open connections that closes the idlest to make
//!   room, graceful shutdown;
//! - `body.rs`: every request body metered against one budget of bytes in flight
//!   and the body-idle timeout; protocol bodies read within their route's limit,
//!   gzip bodies inflated within it;
//! - `sync.rs`: the protocol routes, with the device token checked before the body
//!   is read, and every refusal made an answer in one place.
//!
//! The limits are documented in docs/operations.md ("Limits at the edge").

mod body;
pub mod error;
mod listener;
mod sync;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use gridsync_core::sync::wire::MAX_BODY_BYTES;
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::metrics::Metrics;
use crate::relay::Relay;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    /// The relay.
    pub relay: Arc<Relay>,
    /// Its metrics.
    pub metrics: Arc<Metrics>,
    /// Where protocol work waits for a lock inside the relay.
    pub(crate) lanes: Arc<sync::Lanes>,
}

/// The limits and timeouts of the HTTP edge.
#[derive(Debug, Clone)]
pub struct EdgeLimits {
    /// Open connections at most; at the cap, the one idle longest is closed.
    pub max_connections: usize,
    /// A new connection's TLS handshake, and each request's head, must arrive
    /// within this; an idle keep-alive connection is closed after it too.
    pub header_timeout: Duration,
    /// A request body that sends nothing for this long is given up (`408`); an
    /// answer the client stops reading for this long closes the connection.
    pub body_idle_timeout: Duration,
    /// A request must be answered within this (`408`).
    pub request_timeout: Duration,
    /// Bytes of request bodies all requests may hold at once.
    pub body_budget_bytes: usize,
    /// How long a request waits for room in that budget before `503 busy`.
    pub busy_wait: Duration,
}

impl Default for EdgeLimits {
    fn default() -> Self {
        EdgeLimits {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(15),
            request_timeout: Duration::from_secs(120),
            body_budget_bytes: 64 * 1024 * 1024,
            busy_wait: Duration::from_secs(5),
        }
    }
}

/// A certificate chain and its private key, PEM files, for serving HTTPS.
#[derive(Debug, Clone)]
pub struct Tls {
    /// The certificate chain (server certificate first).
    pub cert: std::path::PathBuf,
    /// The private key.
    pub key: std::path::PathBuf,
}

/// Where and how `serve` listens. (Not `Debug`: it holds the metrics token.)
#[derive(Clone)]
pub struct ServeOptions {
    /// The public address.
    pub listen: SocketAddr,
    /// HTTPS on it, when set.
    pub tls: Option<Tls>,
    /// Limits and timeouts.
    pub limits: EdgeLimits,
    /// Serve `/metrics` (only) on this address too, plain HTTP, without a token:
    /// bind it to loopback or a private network.
    pub metrics_listen: Option<SocketAddr>,
    /// Serve `/metrics` on the public address to requests with this bearer token.
    /// Without it (and by default) the public address does not serve `/metrics`.
    pub metrics_token: Option<String>,
}

/// Connections the metrics listener takes at once.
const METRICS_CONNECTIONS: usize = 16;

/// Logged for each request: the method and the path, never the query string (the
/// console's search text can hold residents' names and phone numbers).
fn request_span(req: &Request) -> tracing::Span {
    tracing::debug_span!("request", method = %req.method(), path = %req.uri().path())
}

/// The application: the protocol, the console, the resident pages, `/healthz`, and `/metrics` when a
/// token is configured for it; with the body meter, limits and timeouts as layers.
pub fn app(state: AppState, limits: &EdgeLimits, metrics_token: Option<&str>) -> Router {
    let budget = |bytes| {
        body::Budget::new(
            bytes,
            limits.busy_wait,
            limits.body_idle_timeout,
            limits.request_timeout,
            state.metrics.clone(),
        )
    };
    // The public resident pages have a budget of their own (as many reports as
    // are read at once), so strangers' uploads never take room phones and the
    // console need.
    let budget = Arc::new(body::Budgets {
        staff: budget(limits.body_budget_bytes),
        public: budget(crate::resident::BODY_BUDGET_BYTES),
    });
    let mut router = Router::new()
        .merge(sync::routes())
        .route("/healthz", get(healthz))
        .merge(crate::console::routes())
        .merge(crate::resident::routes(state.relay.resident_channel_open()));
    if let Some(token) = metrics_token {
        let token: Arc<str> = token.into();
        router = router.route(
            "/metrics",
            get(move |State(s): State<AppState>, headers: HeaderMap| {
                metrics_with_token(s, headers, token.clone())
            }),
        );
    }
    router
        // For the console's forms and uploads; protocol routes read their bodies
        // themselves, each within its own limit.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(budget, body::meter))
        .layer(CompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

/// `/metrics` alone, for the metrics listener.
fn metrics_app(state: AppState) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(s): State<AppState>| async move { metrics(s).await }),
        )
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok"
}

/// `/metrics` on the public address: only with the configured bearer token.
async fn metrics_with_token(state: AppState, headers: HeaderMap, token: Arc<str>) -> Response {
    if sync::bearer_matches(&headers, &token) {
        metrics(state).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
        )
            .into_response()
    }
}

async fn metrics(state: AppState) -> Response {
    let relay = state.relay.clone();
    let rendered = tokio::task::spawn_blocking(move || state.metrics.render(&relay))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
    match rendered {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Serve until Ctrl-C or SIGTERM, then finish the requests in flight (at most
/// 30 s): plain HTTP, or HTTPS with `options.tls` (rustls; TLS 1.2 and 1.3).
/// `on_listening` is told the bound public address (useful with port 0).
pub async fn serve(
    relay: Arc<Relay>,
    options: ServeOptions,
    on_listening: impl FnOnce(SocketAddr),
) -> std::io::Result<()> {
    let limits = options.limits;
    let state = AppState {
        lanes: Arc::new(sync::Lanes::new(&relay)),
        relay,
        metrics: Arc::new(Metrics::default()),
    };
    let tls = options.tls.as_ref().map(listener::acceptor).transpose()?;
    let public = TcpListener::bind(options.listen).await?;
    let private = match options.metrics_listen {
        Some(addr) => Some(TcpListener::bind(addr).await?),
        None => None,
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    listener::check_fd_limit(limits.max_connections + METRICS_CONNECTIONS);
    on_listening(public.local_addr()?);
    let side = match private {
        Some(l) => {
            tracing::info!(addr = %l.local_addr()?, "metrics listening");
            Some(tokio::spawn(listener::run(
                l,
                None,
                metrics_app(state.clone()),
                listener::Conns::new(METRICS_CONNECTIONS, None),
                limits.clone(),
                stopped.clone(),
            )))
        }
        None => None,
    };
    let app = app(state.clone(), &limits, options.metrics_token.as_deref());
    let conns = listener::Conns::new(limits.max_connections, Some(state.metrics.clone()));
    listener::run(public, tls, app, conns, limits, stopped).await;
    if let Some(side) = side {
        let _ = side.await;
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
