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
use gridsync_core::sync::wire::{self, ErrorBody, PROTOCOL_VERSION};
use gridsync_core::sync::Route;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::body::{self, BodyError, BodyFailure};
use super::AppState;
use crate::metrics::Metrics;
use crate::relay::{Caller, Relay, RelayError};

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
    (status, [(header::CONTENT_TYPE, "application/cbor")], bytes).into_response()
}

fn bearer(headers: &HeaderMap) -> &str {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
}

/// A device whose token the edge checked, before reading its body.
pub(super) struct Device {
    caller: Caller,
}

/// The relay calls behind the routes, in one place. Each gets the caller the edge
/// authenticated before reading the body (none for enrollment).
mod calls {
    use gridsync_core::sync::wire::{
        BlobGetRequest, BlobGetResponse, BlobPutRequest, BlobPutResponse, EnrollRequest,
        EnrollResponse, PullRequest, PullResponse, PushRequest, PushResponse,
    };

    use super::Device;
    use crate::relay::{Caller, Relay, RelayError};

    pub fn enroll(
        relay: &Relay,
        _: Option<&Device>,
        req: EnrollRequest,
    ) -> Result<EnrollResponse, RelayError> {
        relay.enroll(req)
    }

    fn caller(who: Option<&Device>) -> Result<&Caller, RelayError> {
        who.map(|d| &d.caller).ok_or(RelayError::BadToken)
    }

    pub fn push(
        relay: &Relay,
        who: Option<&Device>,
        req: PushRequest,
    ) -> Result<PushResponse, RelayError> {
        relay.push(caller(who)?, req)
    }

    pub fn pull(
        relay: &Relay,
        who: Option<&Device>,
        req: PullRequest,
    ) -> Result<PullResponse, RelayError> {
        relay.pull(caller(who)?, req)
    }

    pub fn blob_put(
        relay: &Relay,
        who: Option<&Device>,
        req: BlobPutRequest,
    ) -> Result<BlobPutResponse, RelayError> {
        relay.put_blob(caller(who)?, req)
    }

    pub fn blob_get(
        relay: &Relay,
        who: Option<&Device>,
        req: BlobGetRequest,
    ) -> Result<BlobGetResponse, RelayError> {
        relay.get_blob(caller(who)?, req)
    }
}

type Call<Req, Resp> = fn(&Relay, Option<&Device>, Req) -> Result<Resp, RelayError>;

/// The protocol's routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            Route::Enroll.path(),
            post(|State(s): State<AppState>, req: Request| {
                answer(s, Route::Enroll, req, calls::enroll, no_count)
            }),
        )
        .route(
            Route::Push.path(),
            post(|State(s): State<AppState>, req: Request| {
                answer(s, Route::Push, req, calls::push, count_push)
            }),
        )
        .route(
            Route::Pull.path(),
            post(|State(s): State<AppState>, req: Request| {
                answer(s, Route::Pull, req, calls::pull, count_pull)
            }),
        )
        .route(
            Route::BlobPut.path(),
            post(|State(s): State<AppState>, req: Request| {
                answer(s, Route::BlobPut, req, calls::blob_put, no_count)
            }),
        )
        .route(
            Route::BlobGet.path(),
            post(|State(s): State<AppState>, req: Request| {
                answer(s, Route::BlobGet, req, calls::blob_get, no_count)
            }),
        )
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

/// Authenticate (if the route needs it), read the body, decode it, call the relay,
/// encode the answer, count it.
async fn answer<Req, Resp>(
    state: AppState,
    route: Route,
    req: Request,
    call: Call<Req, Resp>,
    count: fn(&Metrics, &Resp),
) -> Response
where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
{
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let ticket = body::ticket(&parts);
    let limit = route.max_request_bytes();

    // Who it is, before a byte of the body is read: a stranger's body never is.
    let who = if route.needs_token() {
        let token = bearer(&parts.headers).to_owned();
        let relay = state.relay.clone();
        let checked =
            blocking(move || relay.authenticate(&token).map(|c| (c.device.device, c))).await;
        match checked {
            Ok((id, caller)) => {
                tracing::debug!(device = %id, "authenticated");
                Some(Device { caller })
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
    let request = match wire::decode::<Req>(&bytes) {
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
    let relay = state.relay.clone();
    let result = blocking(move || call(&relay, who.as_ref(), request)).await;
    if let Ok(resp) = &result {
        count(&state.metrics, resp);
    }
    finish(
        &state,
        route,
        started,
        size,
        result.map(|r| wire::encode(&r)),
    )
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

/// Shared for the metrics route on the main port.
pub(super) fn bearer_matches(headers: &HeaderMap, expected: &Arc<str>) -> bool {
    use sha2::{Digest, Sha256};
    // Compared as digests: the time taken says nothing about the token.
    let given = Sha256::digest(bearer(headers).as_bytes());
    let expected = Sha256::digest(expected.as_bytes());
    !bearer(headers).is_empty() && given == expected
}
