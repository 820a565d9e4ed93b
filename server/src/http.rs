//! The HTTP shell around the relay: CBOR in, CBOR out, with body limits, timeouts,
//! gzip and graceful shutdown. All protocol logic is in `relay`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

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

use crate::relay::{Relay, RelayError};

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    /// The relay.
    pub relay: Arc<Relay>,
}

fn cbor<T: Serialize>(status: StatusCode, msg: &T) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/cbor")],
        wire::encode(msg),
    )
        .into_response()
}

impl IntoResponse for RelayError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        cbor(status, &self.body)
    }
}

fn bad_body(message: String) -> Response {
    cbor(
        StatusCode::BAD_REQUEST,
        &ErrorBody {
            v: PROTOCOL_VERSION,
            error: "bad_request".into(),
            message,
            wipe: false,
        },
    )
}

fn bearer(headers: &HeaderMap) -> &str {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
}

/// Decode the body, run `f` on a blocking thread (SQLite and Automerge are
/// synchronous), encode the answer.
async fn call<Req, Resp>(
    state: AppState,
    body: Bytes,
    f: impl FnOnce(&Relay, Req) -> Result<Resp, RelayError> + Send + 'static,
) -> Response
where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
{
    let req: Req = match wire::decode(&body) {
        Ok(r) => r,
        Err(e) => return bad_body(e.to_string()),
    };
    match tokio::task::spawn_blocking(move || f(&state.relay, req)).await {
        Ok(Ok(resp)) => cbor(StatusCode::OK, &resp),
        Ok(Err(e)) => e.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "handler panicked");
            cbor(
                StatusCode::INTERNAL_SERVER_ERROR,
                &ErrorBody {
                    v: PROTOCOL_VERSION,
                    error: "internal".into(),
                    message: "internal server error; try again later".into(),
                    wipe: false,
                },
            )
        }
    }
}

async fn enroll(State(state): State<AppState>, body: Bytes) -> Response {
    call(state, body, |relay, req| relay.enroll(req)).await
}

async fn push(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let token = bearer(&headers).to_owned();
    call(state, body, move |relay, req| relay.push(&token, req)).await
}

async fn pull(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let token = bearer(&headers).to_owned();
    call(state, body, move |relay, req| relay.pull(&token, req)).await
}

async fn blob_put(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let token = bearer(&headers).to_owned();
    call(state, body, move |relay, req| relay.put_blob(&token, req)).await
}

async fn blob_get(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let token = bearer(&headers).to_owned();
    call(state, body, move |relay, req| relay.get_blob(&token, req)).await
}

async fn healthz() -> &'static str {
    "ok"
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
    let app = app(AppState { relay });
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
