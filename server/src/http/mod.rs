//! The HTTP shell around the relay: CBOR in, CBOR out, with body limits, timeouts,
//! gzip and graceful shutdown. All protocol logic is in `relay`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use gridsync_core::sync::wire::{self, ErrorBody, MAX_BODY_BYTES, PROTOCOL_VERSION};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tower_http::compression::CompressionLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::metrics::Metrics;
use crate::relay::{Relay, RelayError};

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    /// The relay.
    pub relay: Arc<Relay>,
    /// Its metrics.
    pub metrics: Arc<Metrics>,
}

fn error_body(code: &str, message: String) -> ErrorBody {
    ErrorBody {
        v: PROTOCOL_VERSION,
        error: code.into(),
        message,
        wipe: false,
    }
}

fn bearer(headers: &HeaderMap) -> &str {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
}

/// Decode the body, run `f` on a blocking thread (SQLite and Automerge are
/// synchronous), encode the answer; count it in the metrics (`count` sees a
/// successful answer).
async fn call<Req, Resp>(
    state: AppState,
    route: &'static str,
    body: Bytes,
    f: impl FnOnce(&Relay, Req) -> Result<Resp, RelayError> + Send + 'static,
    count: fn(&Metrics, &Resp),
) -> Response
where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
{
    let started = Instant::now();
    let (status, answer) = match wire::decode::<Req>(&body) {
        Err(e) => (400, wire::encode(&error_body("bad_request", e.to_string()))),
        Ok(req) => {
            let relay = state.relay.clone();
            match tokio::task::spawn_blocking(move || f(&relay, req)).await {
                Ok(Ok(resp)) => {
                    count(&state.metrics, &resp);
                    (200, wire::encode(&resp))
                }
                Ok(Err(e)) => (e.status, wire::encode(&e.body)),
                Err(e) => {
                    tracing::error!(error = %e, "handler panicked");
                    let message = "internal server error; try again later".to_owned();
                    (500, wire::encode(&error_body("internal", message)))
                }
            }
        }
    };
    state
        .metrics
        .request(route, status, started.elapsed(), body.len(), answer.len());
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/cbor")], answer).into_response()
}

fn no_count<T>(_: &Metrics, _: &T) {}

fn count_push(m: &Metrics, r: &wire::PushResponse) {
    for result in &r.results {
        m.pushed(
            match result.status {
                wire::ChangeStatus::Accepted => "accepted",
                wire::ChangeStatus::Duplicate => "duplicate",
                wire::ChangeStatus::Deferred => "deferred",
                wire::ChangeStatus::Rejected => "rejected",
            },
            1,
        );
    }
}

fn count_pull(m: &Metrics, r: &wire::PullResponse) {
    m.pulled(r.changes.len() as u64);
}

async fn enroll(State(state): State<AppState>, body: Bytes) -> Response {
    call(
        state,
        "enroll",
        body,
        |relay, req| relay.enroll(req),
        no_count,
    )
    .await
}

/// A request with the device's bearer token: `f` gets the token and the request.
async fn with_token<Req, Resp>(
    state: AppState,
    headers: &HeaderMap,
    route: &'static str,
    body: Bytes,
    f: fn(&Relay, &str, Req) -> Result<Resp, RelayError>,
    count: fn(&Metrics, &Resp),
) -> Response
where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
{
    let token = bearer(headers).to_owned();
    call(
        state,
        route,
        body,
        move |relay, req| f(relay, &token, req),
        count,
    )
    .await
}

async fn push(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    with_token(state, &headers, "push", body, Relay::push, count_push).await
}

async fn pull(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    with_token(state, &headers, "pull", body, Relay::pull, count_pull).await
}

async fn blob_put(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    with_token(state, &headers, "blob_put", body, Relay::put_blob, no_count).await
}

async fn blob_get(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    with_token(state, &headers, "blob_get", body, Relay::get_blob, no_count).await
}

async fn healthz() -> &'static str {
    "ok"
}

async fn metrics(State(state): State<AppState>) -> Response {
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

/// The application: one router, with limits and timeouts as layers.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/v1/enroll", post(enroll))
        .route("/v1/push", post(push))
        .route("/v1/pull", post(pull))
        .route("/v1/blob/put", post(blob_put))
        .route("/v1/blob/get", post(blob_get))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(crate::console::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(120),
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// A certificate chain and its private key, PEM files, for serving HTTPS.
#[derive(Debug, Clone)]
pub struct Tls {
    /// The certificate chain (server certificate first).
    pub cert: std::path::PathBuf,
    /// The private key.
    pub key: std::path::PathBuf,
}

/// Serve until Ctrl-C or SIGTERM, then finish the requests in flight: plain HTTP,
/// or HTTPS with `tls` (rustls; TLS 1.2 and 1.3). `on_listening` is told the bound
/// address (useful with port 0).
pub async fn serve(
    relay: Arc<Relay>,
    listen: SocketAddr,
    tls: Option<&Tls>,
    on_listening: impl FnOnce(SocketAddr),
) -> std::io::Result<()> {
    let app = app(AppState {
        relay,
        metrics: Arc::new(Metrics::default()),
    });
    let Some(tls) = tls else {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        on_listening(listener.local_addr()?);
        return axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await;
    };
    // One crypto provider for the process; an error means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
        .await
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "TLS certificate {} or key {}: {e}",
                    tls.cert.display(),
                    tls.key.display()
                ),
            )
        })?;
    let listener = std::net::TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    on_listening(listener.local_addr()?);
    let handle = axum_server::Handle::new();
    let stopping = handle.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        stopping.graceful_shutdown(Some(Duration::from_secs(30)));
    });
    axum_server::from_tcp_rustls(listener, config)?
        .handle(handle)
        .serve(app.into_make_service())
        .await
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
