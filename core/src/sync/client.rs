//! The device side of a sync: push the outbox in pages by bytes, then pull pages
//! until the server has nothing more. The network is behind [`Transport`], so tests
//! and simulations drive the same code without sockets.

use std::time::Duration;

use automerge::ChangeHash;

use super::route::{self, Route};
use super::session::{
    self, check_version, Link, Outgoing, PullApplied, PulledPage, PushVerdicts, Replica,
};
use super::wire::{self, DirectoryUpdate, EnrollRequest, ErrorBody, FIRST_PROTOCOL_VERSION};
use crate::engine::{Engine, PullState};
use crate::error::Error;
use crate::ids::DeviceId;

/// Bytes of changes per push request.
pub const PUSH_PAGE_BYTES: usize = 4 * 1024 * 1024;
/// Bytes of changes asked for per pull request.
pub const PULL_PAGE_BYTES: u64 = 4 * 1024 * 1024;

/// Why a request did not get a 2xx answer.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// No answer: no route, refused, cut mid-way, timed out. Safe to retry later.
    #[error("network: {0}")]
    Network(String),
    /// Refused before sending: the connection would not be safe.
    #[error("insecure: {0}")]
    Insecure(String),
    /// The server answered with an error status.
    #[error("server answered {status}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The body (CBOR [`ErrorBody`] when from a gridsync server).
        body: Vec<u8>,
    },
}

/// Something that can POST a body to the server and return the answer's body.
pub trait Transport {
    /// POST `body` (CBOR) to `path` (e.g. `/v1/push`) with the bearer token if any.
    fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError>;

    /// [`Transport::post`], given up as a network error after `timeout` (a
    /// transport without a clock of its own ignores it).
    fn post_within(
        &self,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, TransportError> {
        let _ = timeout;
        self.post(path, token, body)
    }
}

/// How a device may reach its server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerSecurity {
    /// PEM certificates to trust for `https://`, instead of the public roots: a
    /// town's own certificate authority, or a self-signed server certificate.
    pub ca_pem: Option<String>,
    /// Allow plain `http://` to a server that is not on this machine. Off by
    /// default: the token and residents' data would cross the network readable.
    pub allow_plain_http: bool,
}

/// HTTP(S) to a server URL, with gzip on answers. Plain `http://` only to this
/// machine (loopback) unless [`ServerSecurity::allow_plain_http`].
pub struct HttpTransport {
    base: String,
    agent: ureq::Agent,
    /// Why every request is refused before it is sent (plain HTTP off this machine).
    refusal: Option<String>,
}

impl HttpTransport {
    /// A transport to `base` (e.g. `https://town.example:7878`, or
    /// `http://127.0.0.1:7878`), trusting the public certificate roots.
    pub fn new(base: &str) -> Self {
        Self::build(base, &ServerSecurity::default(), None)
    }

    /// A transport to `base` with `security`'s trust and rules; an error if its
    /// certificates cannot be read.
    pub fn with_security(base: &str, security: &ServerSecurity) -> Result<Self, SyncError> {
        let roots = security
            .ca_pem
            .as_deref()
            .map(root_certs)
            .transpose()
            .map_err(SyncError::Insecure)?;
        Ok(Self::build(base, security, roots))
    }

    fn build(base: &str, security: &ServerSecurity, roots: Option<ureq::tls::RootCerts>) -> Self {
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(roots) = roots {
            tls = tls.root_certs(roots);
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(DEFAULT_TIMEOUT))
            .tls_config(tls.build())
            .build()
            .new_agent();
        let base = base.trim_end_matches('/').to_owned();
        let refusal = (!security.allow_plain_http && plain_http_off_machine(&base)).then(|| {
            "plain http:// to a server that is not on this machine is refused: use https://, \
             or allow plain HTTP explicitly"
                .to_owned()
        });
        HttpTransport {
            base,
            agent,
            refusal,
        }
    }
}

/// Request bodies from this size on are sent gzipped (pushes only).
const GZIP_FROM_BYTES: usize = 1024;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

/// The certificates of a PEM text as the only roots to trust (a town's own CA),
/// for this crate's HTTP client and any other `ureq` agent of the workspace; an
/// error saying why if none can be read.
pub fn root_certs(pem: &str) -> Result<ureq::tls::RootCerts, String> {
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(pem.as_bytes()) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => return Err(format!("the server certificates cannot be read: {e}")),
        }
    }
    if certs.is_empty() {
        return Err("no certificate in the given PEM".into());
    }
    Ok(ureq::tls::RootCerts::Specific(std::sync::Arc::new(certs)))
}

/// Whether `url` is plain `http://` to a host that is not this machine.
pub fn plain_http_off_machine(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    !loopback
}

/// The timeout of a request outside a [`Link`] (whose pace sets its own).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

impl Transport for HttpTransport {
    fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError> {
        self.post_within(path, token, body, DEFAULT_TIMEOUT)
    }

    fn post_within(
        &self,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, TransportError> {
        if let Some(why) = &self.refusal {
            return Err(TransportError::Insecure(why.clone()));
        }
        let mut req = self
            .agent
            .post(format!("{}{path}", self.base))
            .config()
            .timeout_global(Some(timeout))
            .build()
            .content_type("application/cbor");
        if let Some(token) = token {
            req = req.header("Authorization", format!("Bearer {token}"));
        }
        // Changes compress well and the link is often weak: a push goes gzipped.
        // Photos are JPEG already and go as they are.
        let body = if path == Route::Push.path() && body.len() > GZIP_FROM_BYTES {
            req = req.header("Content-Encoding", "gzip");
            gzip(&body)
        } else {
            body
        };
        let mut resp = req
            .send(&body[..])
            .map_err(|e| TransportError::Network(e.to_string()))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(wire::MAX_BODY_BYTES as u64)
            .read_to_vec()
            .map_err(|e| TransportError::Network(e.to_string()))?;
        if (200..300).contains(&status) {
            Ok(bytes)
        } else {
            Err(TransportError::Status {
                status,
                body: bytes,
            })
        }
    }
}

/// Why a sync stopped. Everything durable before the error stays; the next sync
/// picks up where this one stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The server could not be reached or the link dropped.
    #[error("network: {0}")]
    Network(String),
    /// The token is unknown, expired or revoked. With `wipe`, the device was revoked
    /// and must erase its data ([`sync`] and [`fetch_photo`] do it themselves and
    /// answer [`SyncError::Wiped`] instead).
    #[error("unauthorized: {message}")]
    Unauthorized {
        /// The server's message.
        message: String,
        /// Whether the device must erase its data.
        wipe: bool,
    },
    /// The server revoked this device, and the engine erased everything it kept on
    /// the device before answering: the database, its journals, the photos and
    /// temporary files. Every later call on the engine answers
    /// [`Error::Wiped`]. The app deletes its key from the keystore and returns to
    /// enrollment.
    #[error("this device was revoked; its data has been erased")]
    Wiped {
        /// Files that could not be removed (empty when the wipe is complete); the
        /// app removes them, or calls [`Engine::wipe_in_place`] again.
        left: Vec<std::path::PathBuf>,
    },
    /// The device has no server configured (not enrolled).
    #[error("this device is not enrolled with a server")]
    NotEnrolled,
    /// The server refused the request (bad request, unsupported version …).
    #[error("server refused the request ({code}): {message}")]
    Refused {
        /// Stable error code.
        code: String,
        /// Message.
        message: String,
    },
    /// An answer that does not follow the protocol.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The connection would not be safe (plain HTTP off this machine, unreadable
    /// certificates): nothing was sent.
    #[error("insecure: {0}")]
    Insecure(String),
    /// The local store failed.
    #[error(transparent)]
    Local(#[from] Error),
}

impl From<TransportError> for SyncError {
    fn from(e: TransportError) -> Self {
        match e {
            TransportError::Network(m) => SyncError::Network(m),
            TransportError::Insecure(m) => SyncError::Insecure(m),
            TransportError::Status { status, body } => match wire::decode::<ErrorBody>(&body) {
                Ok(err) if status == 401 => SyncError::Unauthorized {
                    message: err.message,
                    wipe: err.wipe,
                },
                // Busy (503) and timed out (408) are the link's or the moment's
                // fault, not the request's: the same request goes again later.
                Ok(err) if status == 503 || status == 408 => SyncError::Network(format!(
                    "the server asked to try again later ({}): {}",
                    err.error, err.message
                )),
                Ok(err) => SyncError::Refused {
                    code: err.error,
                    message: err.message,
                },
                Err(_) if status == 503 || status == 408 => {
                    SyncError::Network(format!("HTTP {status}: try again later"))
                }
                Err(_) if status == 401 => SyncError::Unauthorized {
                    message: "unauthorized".into(),
                    wipe: false,
                },
                Err(_) => SyncError::Protocol(format!("HTTP {status} without an error body")),
            },
        }
    }
}

/// Which half of a sync is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Sending local changes.
    Push,
    /// Receiving changes.
    Pull,
    /// Uploading photos (thumbnails first).
    Photos,
    /// Downloading one photo on demand ([`fetch_photo_reporting`]).
    Fetch,
}

/// Progress so far, reported after every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Push or pull.
    pub phase: Phase,
    /// Changes sent or received so far in this phase.
    pub items: u64,
    /// Bytes sent or received so far in this phase (message bodies).
    pub bytes: u64,
    /// Changes (photos) still waiting: for push, in the outbox; for pull, what
    /// the server said remains after the last page (0 once none does; counted by
    /// the server up to 1,000); for photos, in the upload queue.
    pub remaining: u64,
    /// Their bytes, as stored (before compression on the link).
    pub bytes_remaining: u64,
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Changes the server stored (or already had).
    pub pushed: u64,
    /// Changes the server refused, with reasons.
    pub rejected: Vec<(ChangeHash, String)>,
    /// Changes received and applied.
    pub pulled: u64,
    /// Changes received that failed the checked decoder (never applied).
    pub pull_refused: u64,
    /// Documents removed because they left this device's scope.
    pub purged: u64,
    /// Whether a newer directory arrived (a moved grid, a new department, a
    /// renamed category): the app reads it again.
    pub directory_updated: bool,
    /// Photos uploaded.
    pub photos_uploaded: u64,
    /// Photo bytes sent (chunks, including any sent again after a cut).
    pub photo_bytes_sent: u64,
    /// Photos that could not be uploaded this time (tried again next sync).
    pub photos_skipped: u64,
    /// HTTP requests made.
    pub requests: u64,
    /// Request body bytes.
    pub bytes_up: u64,
    /// Answer body bytes.
    pub bytes_down: u64,
}

/// Bytes per photo upload chunk: a cut link re-sends at most this much.
pub const PHOTO_CHUNK_BYTES: usize = 128 * 1024;

/// Push every unacknowledged local change, pull everything new, then upload the
/// photos of this device's cases, thumbnails first: a report reaches the command
/// centre before its photos. A change is marked delivered only after the server
/// answered that it stored it; a photo only after the server verified its hash.
///
/// A relay that answers that this device was revoked and must wipe is obeyed before
/// this returns: see [`SyncError::Wiped`].
pub fn sync(
    engine: &Engine,
    transport: &dyn Transport,
    progress: &mut dyn FnMut(Progress),
) -> Result<SyncReport, SyncError> {
    // A token the relay rotates during this sync is stored before another sync
    // reads the stored one.
    let mut learnt = engine.one_sync();
    let (_, token) = engine.server()?.ok_or(SyncError::NotEnrolled)?;
    let mut link = Link::resume(transport, Some(&token), learnt.clone());
    let result = sync_over(engine, &mut link, progress);
    *learnt = link.learnt().clone();
    obey_wipe(engine, result).map(|mut report| {
        report.requests = link.requests;
        report.bytes_up = link.bytes_up;
        report.bytes_down = link.bytes_down;
        report
    })
}

/// A revoked device's data goes before the app hears of it: the app may be killed
/// at any moment after, and the next open must not find the data still there.
fn obey_wipe<T>(engine: &Engine, result: Result<T, SyncError>) -> Result<T, SyncError> {
    match result {
        Err(SyncError::Unauthorized { wipe: true, .. }) => Err(SyncError::Wiped {
            left: engine.erase(),
        }),
        other => other,
    }
}

fn sync_over(
    engine: &Engine,
    link: &mut Link<'_>,
    progress: &mut dyn FnMut(Progress),
) -> Result<SyncReport, SyncError> {
    let mut report = SyncReport::default();
    let pushed = session::push_all(engine, link, PUSH_PAGE_BYTES, &mut |t| {
        // Reading the outbox's size for progress must not fail the sync.
        let (remaining, bytes_remaining) = engine.outbox_size().unwrap_or_default();
        progress(Progress {
            phase: Phase::Push,
            items: t.stored + t.rejected.len() as u64,
            bytes: t.bytes,
            remaining,
            bytes_remaining,
        })
    })?;
    report.pushed = pushed.stored;
    report.rejected = pushed.rejected;
    let pulled = session::pull_all(engine, link, PULL_PAGE_BYTES, &mut |t| {
        progress(Progress {
            phase: Phase::Pull,
            items: t.pulled,
            bytes: t.bytes,
            remaining: t.backlog.changes,
            bytes_remaining: t.backlog.bytes,
        })
    })?;
    report.pulled = pulled.pulled;
    report.pull_refused = pulled.refused;
    report.purged = pulled.purged;
    report.directory_updated = pulled.directory;
    upload_photos(engine, link, progress, &mut report)?;
    Ok(report)
}

/// The phone's side of a session: the outbox goes up, pulled pages are applied
/// with their cursor in one transaction.
impl Replica for Engine {
    fn outgoing(&self, max_bytes: usize) -> Result<Vec<Outgoing>, SyncError> {
        Ok(self
            .outbox_pending(max_bytes)?
            .into_iter()
            .map(|item| Outgoing {
                doc: item.doc,
                hash: item.hash,
                bytes: item.bytes,
            })
            .collect())
    }

    fn record_push(&self, v: &PushVerdicts) -> Result<bool, SyncError> {
        let before = self.outbox_len()?;
        self.record_push_results(&v.stored, &v.rejected, &v.deferred)?;
        Ok(self.outbox_len()? != before)
    }

    fn pull_state(&self) -> Result<PullState, SyncError> {
        Ok(Engine::pull_state(self)?)
    }

    fn apply_pull(&self, page: PulledPage) -> Result<PullApplied, SyncError> {
        let (results, purged) = Engine::apply_pull_with_token(
            self,
            page.changes,
            &page.purge,
            &page.erased,
            page.next.cursor,
            page.next.page,
            page.new_token.as_deref(),
        )?;
        let new = results
            .iter()
            .filter_map(|r| r.outcome.as_ref().ok())
            .map(|applied| applied.applied.len() as u64)
            .sum();
        Ok(PullApplied {
            new,
            purged: purged as u64,
            token_kept: page.new_token.is_some(),
        })
    }

    fn directory_revision(&self) -> Result<Option<u64>, SyncError> {
        Ok(Some(Engine::directory_revision(self)?))
    }

    fn apply_directory(&self, update: DirectoryUpdate) -> Result<(), SyncError> {
        Ok(self.keep_directory(&update.json, update.revision)?)
    }
}

fn upload_photos(
    engine: &Engine,
    link: &mut Link<'_>,
    progress: &mut dyn FnMut(Progress),
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    let queue = engine.photos_to_upload()?;
    let total = queue.len() as u64;
    let mut bytes_remaining: u64 = queue.iter().map(|(_, size)| size).sum();
    for (i, (hash, size)) in queue.iter().enumerate() {
        bytes_remaining = bytes_remaining.saturating_sub(*size);
        let sent = engine
            .photo(hash)
            .map_err(SyncError::from)
            .and_then(|bytes| upload_blob(link, hash, &bytes));
        match sent.map(|n| report.photo_bytes_sent += n) {
            Ok(()) => {
                engine.mark_photo_uploaded(hash)?;
                report.photos_uploaded += 1;
            }
            // This photo cannot go up now (the server does not know its case, or the
            // file is damaged): the others must not wait behind it.
            Err(SyncError::Refused { .. }) | Err(SyncError::Local(_)) => {
                report.photos_skipped += 1;
            }
            Err(e) => return Err(e),
        }
        progress(Progress {
            phase: Phase::Photos,
            items: i as u64 + 1,
            bytes: report.photo_bytes_sent,
            remaining: total - (i as u64 + 1),
            bytes_remaining,
        });
    }
    Ok(())
}

/// Upload one photo's bytes, resuming where an earlier cut-off upload stopped, until
/// the server has verified its hash. Also how a town relay sends photos upward.
///
/// Returns the photo bytes sent (including any sent again after a cut).
pub fn upload_blob(
    link: &mut Link<'_>,
    hash: &crate::ids::PhotoHash,
    bytes: &[u8],
) -> Result<u64, SyncError> {
    let mut sent = 0u64;
    let len = bytes.len() as u64;
    let mut offset = 0u64;
    // The first request carries no data: it asks where an earlier, cut-off upload
    // stopped (or whether the server already has the photo).
    let mut probe = true;
    // A well-behaved server moves forward every time; bound the rounds regardless.
    let rounds = 8 + 2 * bytes.len() / super::Pace::MIN_PAGE as usize;
    for _ in 0..rounds {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let size = link.page(PHOTO_CHUNK_BYTES as u64) as usize;
        let end = if probe {
            start
        } else {
            (start + size).min(bytes.len())
        };
        probe = false;
        let chunk = bytes[start..end].to_vec();
        sent += chunk.len() as u64;
        let resp = link.call::<route::BlobPut>(&wire::BlobPutRequest {
            v: link.protocol(),
            hash: hash.clone(),
            total: len,
            offset,
            bytes: chunk,
        })?;
        check_version(resp.v)?;
        if resp.done {
            return Ok(sent);
        }
        if resp.received > len {
            return Err(SyncError::Protocol(
                "the server holds more than the photo".into(),
            ));
        }
        // The server says where to go on: after a cut, that is where it stopped.
        offset = resp.received;
    }
    Err(SyncError::Protocol(format!(
        "the upload of photo {hash} made no progress"
    )))
}

/// Fetch a photo of a case on this device from the server (on demand: thumbnails
/// when a list is shown, display images when a photo is opened) and store it. The
/// photo is kept in memory until it is whole and checked, then stored sealed: no
/// partial download is ever on disk. A wipe the relay asks for is obeyed, as by
/// [`sync`].
pub fn fetch_photo(
    engine: &Engine,
    transport: &dyn Transport,
    hash: &crate::ids::PhotoHash,
) -> Result<(), SyncError> {
    fetch_photo_reporting(engine, transport, hash, &mut |_| {})
}

/// [`fetch_photo`], telling `progress` after every chunk (phase `Fetch`: bytes so
/// far and bytes remaining; one item once stored).
pub fn fetch_photo_reporting(
    engine: &Engine,
    transport: &dyn Transport,
    hash: &crate::ids::PhotoHash,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), SyncError> {
    obey_wipe(engine, fetch_photo_over(engine, transport, hash, progress))
}

fn fetch_photo_over(
    engine: &Engine,
    transport: &dyn Transport,
    hash: &crate::ids::PhotoHash,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), SyncError> {
    if engine.has_photo(hash)? {
        return Ok(());
    }
    let (_, token) = engine.server()?.ok_or(SyncError::NotEnrolled)?;
    let mut link = Link::new(transport, Some(&token));
    let bytes = fetch_blob(&mut link, hash, progress)?;
    engine.store_fetched_photo(hash, &bytes)?;
    progress(Progress {
        phase: Phase::Fetch,
        items: 1,
        bytes: bytes.len() as u64,
        remaining: 0,
        bytes_remaining: 0,
    });
    Ok(())
}

/// Download one photo's bytes whole, chunk by chunk, telling `progress` after every
/// chunk but the last. The caller checks them against the hash before keeping
/// them. Also how a town relay fetches photos from its upstream.
pub fn fetch_blob(
    link: &mut Link<'_>,
    hash: &crate::ids::PhotoHash,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<u8>, SyncError> {
    let mut bytes: Vec<u8> = Vec::new();
    loop {
        let resp = link.call::<route::BlobGet>(&wire::BlobGetRequest {
            v: link.protocol(),
            hash: hash.clone(),
            offset: bytes.len() as u64,
            max_bytes: link.page(wire::MAX_CHUNK_BYTES as u64),
        })?;
        check_version(resp.v)?;
        if resp.total > wire::MAX_BLOB_BYTES
            || resp.bytes.is_empty() && (bytes.len() as u64) < resp.total
        {
            return Err(SyncError::Protocol("a photo answer out of bounds".into()));
        }
        bytes.extend(resp.bytes);
        if bytes.len() as u64 >= resp.total {
            return Ok(bytes);
        }
        progress(Progress {
            phase: Phase::Fetch,
            items: 0,
            bytes: bytes.len() as u64,
            remaining: 1,
            bytes_remaining: resp.total - bytes.len() as u64,
        });
    }
}

/// What a device receives when it redeems an enrollment code. Its `Debug` hides
/// the token.
#[derive(Clone, PartialEq)]
pub struct Enrollment {
    /// The user the code was issued for.
    pub user: crate::ids::UserId,
    /// The bearer token.
    pub token: String,
    /// The directory JSON.
    pub directory: String,
}

impl std::fmt::Debug for Enrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrollment")
            .field("user", &self.user)
            .field("token", &"…")
            .field("directory_bytes", &self.directory.len())
            .finish()
    }
}

/// Redeem a one-time enrollment code for `device`.
pub fn enroll(
    transport: &dyn Transport,
    code: &str,
    device: DeviceId,
    app_version: &str,
) -> Result<Enrollment, SyncError> {
    let resp = Link::new(transport, None).call::<route::Enroll>(&EnrollRequest {
        v: FIRST_PROTOCOL_VERSION,
        code: code.trim().to_owned(),
        device,
        app_version: app_version.to_owned(),
    })?;
    check_version(resp.v)?;
    Ok(Enrollment {
        user: resp.user,
        token: resp.token,
        directory: resp.directory,
    })
}

impl Engine {
    /// Sync with the server this device was enrolled with, over HTTP(S).
    pub fn sync(&self, progress: &mut dyn FnMut(Progress)) -> Result<SyncReport, SyncError> {
        sync(self, &self.transport()?, progress)
    }

    /// Fetch a photo of a case on this device from the server, over HTTP(S).
    pub fn fetch_photo(&self, hash: &crate::ids::PhotoHash) -> Result<(), SyncError> {
        fetch_photo(self, &self.transport()?, hash)
    }

    /// [`Engine::fetch_photo`], telling `progress` after every chunk.
    pub fn fetch_photo_reporting(
        &self,
        hash: &crate::ids::PhotoHash,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(), SyncError> {
        fetch_photo_reporting(self, &self.transport()?, hash, progress)
    }

    /// The transport to the stored server, with the stored [`ServerSecurity`].
    fn transport(&self) -> Result<HttpTransport, SyncError> {
        let (url, _) = self.server()?.ok_or(SyncError::NotEnrolled)?;
        HttpTransport::with_security(&url, &self.server_security()?)
    }
}
