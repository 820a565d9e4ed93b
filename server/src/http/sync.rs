//! The protocol routes: CBOR in, CBOR out. A route that needs a device token has it
//! checked before a byte of its body is read; then the body is read within the
//! route's limit, decoded, and handed to the relay on a blocking thread (SQLite and
//! Automerge are synchronous). Every refusal becomes an answer in one place,
//! [`Refusal::into_response`].

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use gridsync_core::sync::route::{Answer, Request as ProtocolRequest, Route};
use gridsync_core::sync::wire::{self, ErrorBody, PROTOCOL_VERSION};
use tokio::sync::Semaphore;

use super::body::{self, BodyError, BodyFailure};
use super::AppState;
use crate::metrics::Metrics;
use crate::relay::{Relay, RelayError};

/// Protocol work that waits on one lock inside the relay is let onto a blocking
/// thread one request at a time; the rest wait here, holding no thread. So
/// requests stuck behind a slow photo store, or behind another node's push lock,
/// cannot fill the blocking pool (capped near the database's connections,
/// main.rs) while pulls and other pushes wait for a thread.
pub(crate) struct Lanes {
    /// Photo chunks: a node writes one upload at a time (`Relay::put_blob`).
    blob_put: Arc<Semaphore>,
    /// Pushes on a shared database: a node's pushes queue for the cluster's
    /// push lock one at a time (`PgDb::lock_pushes`). A node alone on SQLite
    /// takes no such lock.
    push: Option<Arc<Semaphore>>,
}

impl Lanes {
    /// The lanes of `relay`'s routes.
    pub(crate) fn new(relay: &Relay) -> Lanes {
        Lanes {
            blob_put: Arc::new(Semaphore::new(1)),
            push: relay.store().shared().then(|| Arc::new(Semaphore::new(1))),
        }
    }

    fn of(&self, route: Route) -> Option<&Arc<Semaphore>> {
        match route {
            Route::BlobPut => Some(&self.blob_put),
            Route::Push => self.push.as_ref(),
            Route::Enroll | Route::Pull | Route::BlobGet => None,
        }
    }
}

/// Why a protocol request was not answered by the relay, or the relay's refusal.
#[derive(Debug)]
pub(super) enum Refusal {
    /// The relay said no.
    Relay(RelayError),
    /// The body could not be taken.
    Body(BodyError),
    /// The body is not CBOR of the expected shape.
    Malformed(String),
    /// The relay's code panicked.
    Panicked,
}

fn error_body(code: &str, message: String) -> ErrorBody {
    ErrorBody {
        v: PROTOCOL_VERSION,
        error: code.into(),
        message,
        wipe: false,
    }
}

impl Refusal {
    /// The status and body of the answer.
    fn answer(self) -> (StatusCode, ErrorBody) {
        match self {
            Refusal::Relay(e) => (super::error::status(&e), e.body()),
            Refusal::Malformed(why) => (StatusCode::BAD_REQUEST, error_body("bad_request", why)),
            Refusal::Panicked => (
                StatusCode::INTERNAL_SERVER_ERROR,
                error_body("internal", "internal server error; try again later".into()),
            ),
            Refusal::Body(e) => match e {
                BodyError::TooLarge { limit } => (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    error_body(
                        "too_large",
                        format!("this request's body may be at most {limit} bytes"),
                    ),
                ),
                BodyError::Failed(BodyFailure::Busy) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    error_body(
                        "busy",
                        "the server is busy receiving other requests; try again shortly".into(),
                    ),
                ),
                BodyError::Failed(BodyFailure::Idle(after)) => (
                    StatusCode::REQUEST_TIMEOUT,
                    error_body(
                        "timeout",
                        format!(
                            "no body bytes arrived for {} s; the request was given up",
                            after.as_secs()
                        ),
                    ),
                ),
                BodyError::CutOff => (
                    StatusCode::BAD_REQUEST,
                    error_body("bad_request", "the request body was cut off".into()),
                ),
                BodyError::Encoding => (
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    error_body(
                        "unsupported_encoding",
                        "a request body may be sent plain or with Content-Encoding: gzip".into(),
                    ),
                ),
                BodyError::Gzip(why) => (
                    StatusCode::BAD_REQUEST,
                    error_body("bad_request", format!("the gzip body is not valid: {why}")),
                ),
            },
        }
    }

    /// The metrics label of a refusal made at the edge, if it is one.
    fn edge_reason(&self) -> Option<&'static str> {
        match self {
            Refusal::Body(BodyError::TooLarge { .. }) => Some("too_large"),
            Refusal::Body(BodyError::Encoding) => Some("unsupported_encoding"),
            // Busy and idle are counted where they happen (the body meter).
            _ => None,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, body) = self.answer();
        cbor(status, wire::encode(&body))
    }
}

fn cbor(status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut response =
        (status, [(header::CONTENT_TYPE, "application/cbor")], bytes).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        // Busy: the client's next sync comes anyway; this says when it may.
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("2"));
    }
    response
}

fn bearer(headers: &HeaderMap) -> &str {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
}

/// The protocol's routes, from core's route table.
pub(super) fn routes() -> Router<AppState> {
    Route::ALL.into_iter().fold(Router::new(), |router, route| {
        router.route(
            route.path(),
            post(move |State(s): State<AppState>, req: Request| answer(s, route, req)),
        )
    })
}

/// Run relay work on a blocking thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RelayError> + Send + 'static,
) -> Result<T, Refusal> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(Refusal::Relay),
        Err(e) => {
            tracing::error!(error = %e, "handler panicked");
            Err(Refusal::Panicked)
        }
    }
}

/// Authenticate (if the route needs it), read the body, decode it by the route's
/// type, let the relay answer, encode the answer, count it.
async fn answer(state: AppState, route: Route, req: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let ticket = body::ticket(&parts);
    let limit = route.max_request_bytes();

    // Who it is, before a byte of the body is read: a stranger's body never is.
    let caller = if route.needs_token() {
        let token = bearer(&parts.headers).to_owned();
        let relay = state.relay.clone();
        match blocking(move || relay.authenticate(&token)).await {
            Ok(caller) => {
                tracing::debug!(device = %caller.device.device, "authenticated");
                Some(caller)
            }
            Err(refusal) => return early(&state, route, started, refusal, body, ticket),
        }
    } else {
        None
    };
    // A body announced too large, or encoded in a way the relay does not read.
    if let Err(e) = body::precheck(&parts.headers, limit) {
        return early(&state, route, started, Refusal::Body(e), body, ticket);
    }

    let bytes = match body::read(&parts.headers, body, limit, ticket).await {
        Ok(bytes) => bytes,
        Err(e) => return finish(&state, route, started, 0, Err(Refusal::Body(e))),
    };
    let size = bytes.len();
    let request = match ProtocolRequest::decode(route, &bytes) {
        Ok(request) => request,
        Err(e) => {
            return finish(
                &state,
                route,
                started,
                size,
                Err(Refusal::Malformed(e.to_string())),
            )
        }
    };
    drop(bytes);
    // Its place in its lane, held until the blocking work ends (not just until
    // this request times out). The semaphores are never closed.
    let admitted = match state.lanes.of(route) {
        Some(lane) => lane.clone().acquire_owned().await.ok(),
        None => None,
    };
    let relay = state.relay.clone();
    let result = blocking(move || {
        let _admitted = admitted;
        relay.answer(caller.as_ref(), request)
    })
    .await;
    if let Ok(answer) = &result {
        count(&state.metrics, answer);
    }
    finish(&state, route, started, size, result.map(|a| a.encode()))
}

/// Answer before the body is read; the rest of the body is read and thrown away
/// meanwhile, so a client that sends it all before reading still gets the answer.
fn early(
    state: &AppState,
    route: Route,
    started: Instant,
    refusal: Refusal,
    body: axum::body::Body,
    ticket: Option<Arc<body::Ticket>>,
) -> Response {
    body::drain(body, ticket, route.max_request_bytes());
    finish(state, route, started, 0, Err(refusal))
}

/// Count the answer in the metrics and make it a response.
fn finish(
    state: &AppState,
    route: Route,
    started: Instant,
    bytes_in: usize,
    result: Result<Vec<u8>, Refusal>,
) -> Response {
    let (status, bytes) = match result {
        Ok(bytes) => (StatusCode::OK, bytes),
        Err(refusal) => {
            if let Some(reason) = refusal.edge_reason() {
                state.metrics.refused(reason);
            }
            let (status, body) = refusal.answer();
            (status, wire::encode(&body))
        }
    };
    state.metrics.request(
        route.name(),
        status.as_u16(),
        started.elapsed(),
        bytes_in,
        bytes.len(),
    );
    cbor(status, bytes)
}

/// What the metrics count of an answer: pushed changes by outcome, pulled changes.
fn count(m: &Metrics, answer: &Answer) {
    match answer {
        Answer::Push(r) => {
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
        Answer::Pull(r) => m.pulled(r.changes.len() as u64),
        _ => {}
    }
}

/// Shared for the metrics route on the main port.
pub(super) fn bearer_matches(headers: &HeaderMap, expected: &Arc<str>) -> bool {
    use sha2::{Digest, Sha256};
    // Compared as digests: the time taken says nothing about the token.
    let given = Sha256::digest(bearer(headers).as_bytes());
    let expected = Sha256::digest(expected.as_bytes());
    !bearer(headers).is_empty() && given == expected
}
