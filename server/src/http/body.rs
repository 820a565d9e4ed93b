//! Request bodies at the edge: every body is metered against one budget of bytes in
//! flight (a semaphore of bytes, taken as frames arrive and held until the handler
//! has answered), and a body that stops arriving is given up after the body-idle
//! timeout. The protocol routes then read their body within the route's limit and
//! inflate a gzip body within the same limit.

use std::future::Future;
use std::io::Read;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use crate::metrics::Metrics;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a request body was given up before it was whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum BodyFailure {
    /// The budget of body bytes in flight stayed exhausted for the busy wait.
    #[error("the server is busy receiving other requests")]
    Busy,
    /// No body bytes arrived for the body-idle timeout.
    #[error("no body bytes arrived for {} s", .0.as_secs())]
    Idle(Duration),
}

impl BodyFailure {
    /// The reason label in metrics.
    pub(super) fn reason(self) -> &'static str {
        match self {
            BodyFailure::Busy => "busy",
            BodyFailure::Idle(_) => "body_idle",
        }
    }
}

/// The bytes of request bodies all requests may hold at once.
pub(super) struct Budget {
    permits: Arc<Semaphore>,
    total: usize,
    /// How long a request waits for room before it is answered `busy`.
    wait: Duration,
    /// How long a body may send nothing.
    idle: Duration,
    /// The longest a refused request's body is read and thrown away.
    drain_for: Duration,
    metrics: Arc<Metrics>,
}

impl Budget {
    pub(super) fn new(
        total: usize,
        wait: Duration,
        idle: Duration,
        drain_for: Duration,
        metrics: Arc<Metrics>,
    ) -> Arc<Budget> {
        // A tokio semaphore holds at most usize::MAX >> 3 permits.
        let total = total.min(Semaphore::MAX_PERMITS);
        Arc::new(Budget {
            permits: Arc::new(Semaphore::new(total)),
            total,
            wait,
            idle,
            drain_for,
            metrics,
        })
    }
}

/// The budgets: the public resident pages' (`/r`) and everyone else's.
pub(super) struct Budgets {
    /// Phones, relays and the console.
    pub(super) staff: Arc<Budget>,
    /// The resident pages.
    pub(super) public: Arc<Budget>,
}

/// What one request holds of the budget, and why its body failed, if it did.
/// Released when the last handle is dropped: after the handler has answered and
/// the body is gone.
pub(super) struct Ticket {
    budget: Arc<Budget>,
    held: Mutex<Held>,
    failure: Mutex<Option<BodyFailure>>,
    /// The body is being read only to be thrown away: no budget taken.
    discarding: AtomicBool,
}

#[derive(Default)]
struct Held {
    permit: Option<OwnedSemaphorePermit>,
    bytes: usize,
}

impl Ticket {
    fn new(budget: Arc<Budget>) -> Ticket {
        Ticket {
            budget,
            held: Mutex::new(Held::default()),
            failure: Mutex::new(None),
            discarding: AtomicBool::new(false),
        }
    }

    /// Why the body failed, if it did.
    pub(super) fn failure(&self) -> Option<BodyFailure> {
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fail(&self, failure: BodyFailure) -> BoxError {
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(failure);
        self.budget.metrics.refused(failure.reason());
        Box::new(failure)
    }

    fn keep(&self, permit: OwnedSemaphorePermit, n: usize) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        match &mut held.permit {
            Some(p) => p.merge(permit),
            None => held.permit = Some(permit),
        }
        held.bytes += n;
        self.budget.metrics.body_bytes_held(n as i64);
    }

    /// Take `n` bytes of the budget now, if there is room.
    fn try_take(&self, n: usize) -> bool {
        let Ok(n32) = u32::try_from(n) else {
            return false;
        };
        match self.budget.permits.clone().try_acquire_many_owned(n32) {
            Ok(permit) => {
                self.keep(permit, n);
                true
            }
            Err(_) => false,
        }
    }

    /// Take `n` bytes of the budget, waiting at most the busy wait for room.
    pub(super) async fn take(self: Arc<Self>, n: usize) -> Result<(), BodyFailure> {
        if n == 0 || self.try_take(n) {
            return Ok(());
        }
        let n32 = match u32::try_from(n) {
            Ok(n32) if n <= self.budget.total => n32,
            // More than the whole budget: it would never fit.
            _ => return Err(BodyFailure::Busy),
        };
        let waiting = self.budget.permits.clone().acquire_many_owned(n32);
        match tokio::time::timeout(self.budget.wait, waiting).await {
            Ok(Ok(permit)) => {
                self.keep(permit, n);
                Ok(())
            }
            // Timed out, or the semaphore closed (it never is).
            _ => Err(BodyFailure::Busy),
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let held = self.held.get_mut().unwrap_or_else(PoisonError::into_inner);
        self.budget.metrics.body_bytes_held(-(held.bytes as i64));
    }
}

/// Waiting for room in the budget.
type Wait = Pin<Box<dyn Future<Output = Result<(), BodyFailure>> + Send>>;

/// A request body metered against the budget and the body-idle timeout.
struct Metered {
    inner: Body,
    ticket: Arc<Ticket>,
    idle: Pin<Box<Sleep>>,
    /// The idle clock starts when the handler first asks for the body (a client
    /// waiting for `100 Continue` sends nothing before).
    started: bool,
    /// A frame that arrived while the budget was full, and the wait for room.
    waiting: Option<(Frame<Bytes>, Wait)>,
    failed: Option<BodyFailure>,
}

impl Metered {
    fn new(inner: Body, ticket: Arc<Ticket>) -> Metered {
        let idle = Box::pin(tokio::time::sleep(ticket.budget.idle));
        Metered {
            inner,
            ticket,
            idle,
            started: false,
            waiting: None,
            failed: None,
        }
    }

    fn rearm(&mut self) {
        let deadline = Instant::now() + self.ticket.budget.idle;
        self.idle.as_mut().reset(deadline);
    }

    fn fail(&mut self, failure: BodyFailure) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.failed = Some(failure);
        Poll::Ready(Some(Err(self.ticket.fail(failure))))
    }
}

impl http_body::Body for Metered {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(failure) = this.failed {
            return Poll::Ready(Some(Err(Box::new(failure))));
        }
        if !this.started {
            this.started = true;
            this.rearm();
        }
        if let Some((_, wait)) = &mut this.waiting {
            let Poll::Ready(taken) = wait.as_mut().poll(cx) else {
                return Poll::Pending;
            };
            let Some((frame, _)) = this.waiting.take() else {
                return Poll::Pending;
            };
            return match taken {
                Ok(()) => {
                    this.rearm();
                    Poll::Ready(Some(Ok(frame)))
                }
                Err(failure) => this.fail(failure),
            };
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.rearm();
                let n = frame.data_ref().map_or(0, Bytes::len);
                if n == 0
                    || this.ticket.discarding.load(Ordering::Relaxed)
                    || this.ticket.try_take(n)
                {
                    return Poll::Ready(Some(Ok(frame)));
                }
                // The budget is full: wait (briefly) for room before taking it in.
                this.waiting = Some((frame, Box::pin(this.ticket.clone().take(n))));
                Pin::new(this).poll_frame(cx)
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                if this.idle.as_mut().poll(cx).is_ready() {
                    return this.fail(BodyFailure::Idle(this.ticket.budget.idle));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.waiting.is_none() && self.failed.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Middleware: meter every request's body; hand the handler the ticket (as an
/// extension); keep the budget until the handler has answered. A page or form
/// whose body failed is answered with why, as plain text (the protocol routes
/// answer in CBOR themselves).
pub(super) async fn meter(
    State(budgets): State<Arc<Budgets>>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let budget = if path == "/r" || path.starts_with("/r/") {
        budgets.public.clone()
    } else {
        budgets.staff.clone()
    };
    let ticket = Arc::new(Ticket::new(budget));
    let protocol = gridsync_core::sync::Route::from_path(req.uri().path()).is_some();
    let (mut parts, body) = req.into_parts();
    parts.extensions.insert(ticket.clone());
    let body = Body::new(Metered::new(body, ticket.clone()));
    let response = next.run(Request::from_parts(parts, body)).await;
    match ticket.failure() {
        Some(failure) if !protocol => {
            let status = match failure {
                BodyFailure::Busy => StatusCode::SERVICE_UNAVAILABLE,
                BodyFailure::Idle(_) => StatusCode::REQUEST_TIMEOUT,
            };
            (status, format!("{failure}; try again")).into_response()
        }
        _ => response,
    }
}

/// Why a protocol request's body could not be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum BodyError {
    /// Larger than the route takes (on the wire, or once inflated).
    TooLarge { limit: usize },
    /// Given up: busy or idle.
    Failed(BodyFailure),
    /// The client stopped sending before the end.
    CutOff,
    /// A `Content-Encoding` other than gzip.
    Encoding,
    /// Not valid gzip.
    Gzip(String),
}

/// How the body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    Gzip,
}

fn encoding(headers: &HeaderMap) -> Result<Encoding, BodyError> {
    let mut found = Encoding::Identity;
    for value in headers.get_all(header::CONTENT_ENCODING) {
        let value = value.to_str().map_err(|_| BodyError::Encoding)?;
        for coding in value.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            match coding.to_ascii_lowercase().as_str() {
                "identity" => {}
                // One layer of gzip; gzip of gzip is not something a client sends.
                "gzip" | "x-gzip" if found == Encoding::Identity => found = Encoding::Gzip,
                _ => return Err(BodyError::Encoding),
            }
        }
    }
    Ok(found)
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Refuse, before anything is read, a body that says it is too large or that is
/// encoded in a way the relay does not read.
pub(super) fn precheck(headers: &HeaderMap, limit: usize) -> Result<(), BodyError> {
    encoding(headers)?;
    match content_length(headers) {
        Some(n) if n > limit as u64 => Err(BodyError::TooLarge { limit }),
        _ => Ok(()),
    }
}

/// The ticket of a request that went through [`meter`].
pub(super) fn ticket(parts: &axum::http::request::Parts) -> Option<Arc<Ticket>> {
    parts.extensions.get::<Arc<Ticket>>().cloned()
}

/// Read a protocol request's body (after [`precheck`]): at most `limit` bytes on the
/// wire, and, when it is gzip, at most `limit` bytes once inflated.
pub(super) async fn read(
    headers: &HeaderMap,
    mut body: Body,
    limit: usize,
    ticket: Option<Arc<Ticket>>,
) -> Result<Bytes, BodyError> {
    let encoding = encoding(headers)?;
    let failed = |ticket: &Option<Arc<Ticket>>| {
        ticket
            .as_ref()
            .and_then(|t| t.failure())
            .map_or(BodyError::CutOff, BodyError::Failed)
    };
    let mut frames: Vec<Bytes> = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| failed(&ticket))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        total += data.len();
        if total > limit {
            return Err(BodyError::TooLarge { limit });
        }
        frames.push(data);
    }
    drop(body);
    let wire = match frames.len() {
        0 => Bytes::new(),
        1 => frames.swap_remove(0),
        _ => {
            // The copy is taken from the budget too: for a moment both exist.
            if let Some(ticket) = &ticket {
                ticket
                    .clone()
                    .take(total)
                    .await
                    .map_err(BodyError::Failed)?;
            }
            let mut whole = Vec::with_capacity(total);
            for frame in frames.drain(..) {
                whole.extend_from_slice(&frame);
            }
            Bytes::from(whole)
        }
    };
    match encoding {
        Encoding::Identity => Ok(wire),
        Encoding::Gzip => inflate(wire, limit, ticket).await,
    }
}

/// Inflate `gz` into at most `limit` bytes, taking the output's room from the
/// budget as it grows. The room is waited for here, holding no thread: a
/// blocking thread waiting for budget that requests queued for a blocking
/// thread hold would wait its whole busy wait (the pool is capped, main.rs).
/// Only each step's decompression runs on a blocking thread.
async fn inflate(gz: Bytes, limit: usize, ticket: Option<Arc<Ticket>>) -> Result<Bytes, BodyError> {
    const STEP: usize = 256 * 1024;
    let mut decoder = flate2::read::MultiGzDecoder::new(std::io::Cursor::new(gz));
    let mut out: Vec<u8> = Vec::new();
    loop {
        if out.len() == out.capacity() && out.len() < limit {
            let grow = (out.capacity().max(STEP)).min(limit - out.len());
            if let Some(ticket) = &ticket {
                ticket.clone().take(grow).await.map_err(BodyError::Failed)?;
            }
            out.reserve_exact(grow);
        }
        let step = tokio::task::spawn_blocking(move || {
            let ended = fill(&mut decoder, &mut out, limit);
            (decoder, out, ended)
        });
        let (stepped, filled, ended) = step.await.map_err(|e| BodyError::Gzip(e.to_string()))?;
        (decoder, out) = (stepped, filled);
        if ended? {
            return Ok(Bytes::from(out));
        }
    }
}

/// Decompress into `out` up to its capacity, never past `limit`: `Ok(true)` at
/// the stream's end, `Ok(false)` when `out` is full and more may follow.
fn fill(decoder: &mut impl Read, out: &mut Vec<u8>, limit: usize) -> Result<bool, BodyError> {
    loop {
        if out.len() == limit {
            // Full: one more byte means too large.
            let mut probe = [0u8; 1];
            return match decoder.read(&mut probe) {
                Ok(0) => Ok(true),
                Ok(_) => Err(BodyError::TooLarge { limit }),
                Err(e) => Err(BodyError::Gzip(e.to_string())),
            };
        }
        if out.len() == out.capacity() {
            return Ok(false);
        }
        let start = out.len();
        let room = out.capacity().min(limit) - start;
        out.resize(start + room, 0);
        match decoder.read(&mut out[start..]) {
            Ok(0) => {
                out.truncate(start);
                return Ok(true);
            }
            Ok(n) => out.truncate(start + n),
            Err(e) => return Err(BodyError::Gzip(e.to_string())),
        }
    }
}

/// After an early answer (a refused token, a body declared too large): read the
/// rest of the body and throw it away, in the background, so that a client that
/// sends its whole body before reading the answer gets to read it. Bounded by
/// `max` bytes, the body-idle timeout and the request timeout; takes no budget.
pub(super) fn drain(body: Body, ticket: Option<Arc<Ticket>>, max: usize) {
    let Some(ticket) = ticket else {
        return;
    };
    ticket.discarding.store(true, Ordering::Relaxed);
    let drain_for = ticket.budget.drain_for;
    tokio::spawn(async move {
        let mut body = body;
        let mut seen = 0usize;
        let reading = async {
            while let Some(Ok(frame)) = body.frame().await {
                seen += frame.data_ref().map_or(0, Bytes::len);
                if seen > max {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(drain_for, reading).await;
        drop(ticket);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn budget(total: usize) -> Arc<Budget> {
        Budget::new(
            total,
            Duration::from_millis(50),
            Duration::from_secs(1),
            Duration::from_secs(1),
            Arc::new(Metrics::default()),
        )
    }

    #[tokio::test]
    async fn gzip_inflates_within_the_limit_and_not_past_it() {
        let ok = inflate(gzip(&[7u8; 1000]).into(), 1000, None).await;
        assert_eq!(ok.unwrap().len(), 1000);
        // More than one step of room (256 KiB, then as much again, ...).
        let text: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
        let several = inflate(gzip(&text).into(), 1_000_000, None).await;
        assert_eq!(several.unwrap(), text);

        let gz = gzip(&vec![0u8; 5_000_000]);
        assert!(gz.len() < 10_000, "a bomb: {} bytes", gz.len());
        let big = inflate(gz.into(), 1_000_000, None).await;
        assert_eq!(big, Err(BodyError::TooLarge { limit: 1_000_000 }));

        let bad = inflate(Bytes::from_static(b"not gzip"), 100, None).await;
        assert!(matches!(bad, Err(BodyError::Gzip(_))), "{bad:?}");
    }

    #[tokio::test]
    async fn inflating_takes_its_room_from_the_budget_and_gives_up_when_there_is_none() {
        let budget = budget(300 * 1024);
        let ticket = Arc::new(Ticket::new(budget.clone()));
        let text = vec![1u8; 200 * 1024];
        let inflated = inflate(gzip(&text).into(), 1_000_000, Some(ticket.clone())).await;
        assert_eq!(inflated.unwrap().len(), text.len());
        assert_eq!(
            budget.permits.available_permits(),
            300 * 1024 - 256 * 1024,
            "one step's room taken, and held with the ticket"
        );
        // The next step needs 256 KiB more where 44 KiB are left: busy.
        let more = vec![1u8; 400 * 1024];
        let refused = inflate(gzip(&more).into(), 1_000_000, Some(ticket)).await;
        assert_eq!(refused, Err(BodyError::Failed(BodyFailure::Busy)));
    }

    #[tokio::test]
    async fn the_budget_is_held_until_the_ticket_goes_and_then_is_free() {
        let budget = budget(100);
        let first = Arc::new(Ticket::new(budget.clone()));
        first.clone().take(80).await.unwrap();
        let second = Arc::new(Ticket::new(budget.clone()));
        assert_eq!(second.clone().take(30).await, Err(BodyFailure::Busy));
        assert_eq!(
            second.clone().take(101).await,
            Err(BodyFailure::Busy),
            "more than the whole budget never fits"
        );
        drop(first);
        second.clone().take(30).await.unwrap();
        assert_eq!(budget.permits.available_permits(), 70);
    }

    #[test]
    fn encodings_other_than_gzip_are_refused_and_sizes_checked_first() {
        let mut h = HeaderMap::new();
        assert_eq!(encoding(&h), Ok(Encoding::Identity));
        h.insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
        assert_eq!(encoding(&h), Ok(Encoding::Gzip));
        h.insert(header::CONTENT_ENCODING, "br".parse().unwrap());
        assert_eq!(encoding(&h), Err(BodyError::Encoding));
        h.insert(header::CONTENT_ENCODING, "gzip, gzip".parse().unwrap());
        assert_eq!(encoding(&h), Err(BodyError::Encoding));
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, "4097".parse().unwrap());
        assert_eq!(precheck(&h, 4096), Err(BodyError::TooLarge { limit: 4096 }));
        assert_eq!(precheck(&h, 4097), Ok(()));
    }
}
