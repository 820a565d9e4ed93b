//! The relay's protocol logic, free of HTTP: enroll, push and pull as functions from
//! a request to an answer. The HTTP layer (`http.rs`) and the in-process simulator
//! both call these.

mod console;
pub mod store;
mod upstream;

pub use console::{ConsoleUser, DeviceView, PASSWORD_CHARS, SESSION_HOURS};
pub use upstream::{UpstreamLink, UpstreamReport, DEFAULT_INTERVAL_SECS};

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use chrono::Utc;
use gridsync_core::doc::case::CaseDoc;
use gridsync_core::sync::wire::{
    BlobGetRequest, BlobGetResponse, BlobPutRequest, BlobPutResponse, ChangeResult, ChangeStatus,
    EnrollRequest, EnrollResponse, ErrorBody, PullRequest, PullResponse, PushRequest, PushResponse,
    WireChange, MAX_BLOB_BYTES, MAX_CHANGES_PER_MESSAGE, MAX_CHUNK_BYTES, MAX_PULL_PAGE_BYTES,
    PROTOCOL_VERSION,
};
use gridsync_core::{
    fold, DeviceId, Directory, DocContent, DocId, Engine, Identity, Outcome, PhotoHash, Role, User,
};
use sha2::{Digest, Sha256};

use store::{DeviceRecord, DocScope, LogEntry, PullAsk, RelayStore, Visibility};

/// How long an enrollment code stays valid.
pub const ENROLLMENT_HOURS: i64 = 72;
const CODE_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// An error answer: HTTP status plus the CBOR body.
#[derive(Debug, Clone, PartialEq)]
pub struct RelayError {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: ErrorBody,
}

impl RelayError {
    pub(crate) fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        RelayError {
            status,
            body: ErrorBody {
                v: PROTOCOL_VERSION,
                error: code.into(),
                message: message.into(),
                wipe: false,
            },
        }
    }
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "bad_request", message)
    }
    fn unauthorized() -> Self {
        Self::new(401, "unauthorized", "unknown or invalid device token")
    }
    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        Self::new(500, "internal", "internal server error; try again later")
    }
}

fn sha256(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

fn random_bytes<const N: usize>() -> Result<[u8; N], RelayError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(RelayError::internal)?;
    Ok(buf)
}

fn check_version(v: u32) -> Result<(), RelayError> {
    if v == PROTOCOL_VERSION {
        Ok(())
    } else {
        Err(RelayError::new(
            400,
            "unsupported_version",
            format!("this server speaks protocol version {PROTOCOL_VERSION}, the app sent {v}; update the app"),
        ))
    }
}

/// How long a device token works before the device must enroll again.
pub const DEFAULT_TOKEN_DAYS: i64 = 365;

/// The relay: its own replica of every document (a core engine), and its store.
pub struct Relay {
    engine: Engine,
    store: Arc<dyn RelayStore>,
    token_lifetime: chrono::Duration,
    blobs: Arc<dyn crate::blobstore::BlobStore>,
    uploads: std::sync::Mutex<()>,
    console_writes: std::sync::Mutex<()>,
    sign_ins: std::sync::atomic::AtomicUsize,
    /// How far into the store's log this node has read into its replica.
    applied: std::sync::atomic::AtomicU64,
    /// Catching up, one thread at a time.
    replica: std::sync::Mutex<ReplicaState>,
}

/// A node's catch-up bookkeeping.
struct ReplicaState {
    /// The position recorded in the replica (`Engine::replica_position`).
    recorded: u64,
    /// Log entries read but waiting for dependencies not logged yet (a change whose
    /// push failed after the replica that checked it had it), in log order.
    waiting: Vec<(u64, LogEntry)>,
}

/// Where a relay keeps what its nodes share.
#[derive(Clone, Default)]
pub struct Storage {
    /// PostgreSQL (`postgres://user:password@host/database`), shared by every node;
    /// `None`: `relay.db` in the data folder.
    pub database_url: Option<String>,
    /// An S3-compatible object store for photos; `None`: `blobs/` in the data
    /// folder (several nodes need a store they all reach).
    pub photos: Option<crate::blobstore::S3Config>,
}

impl std::fmt::Debug for Storage {
    /// Without the database URL, which may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("postgres", &self.database_url.is_some())
            .field("photos", &self.photos)
            .finish()
    }
}

/// How many bytes of changes a catch-up reads at once.
const CATCH_UP_BYTES: u64 = 4 * 1024 * 1024;

impl Relay {
    /// Open the relay in `data` (created if missing) on the embedded default:
    /// `server.db` holds the documents, `relay.db` the devices and the change log.
    /// `directory_json` replaces the stored directory; with `None` the stored one
    /// is kept, or the sample directory loaded if there is none.
    pub fn open(
        data: &Path,
        directory_json: Option<&str>,
    ) -> Result<Relay, Box<dyn std::error::Error>> {
        Self::open_with(data, directory_json, &Storage::default())
    }

    /// Open the relay with `storage`. On a shared database, `data` holds only this
    /// node's replica (`server.db`), a cache brought up to date from the shared
    /// log by [`Relay::catch_up`] (pushes and the console do it first; `serve` at
    /// start); the directory given to any node is kept in the database for the
    /// others.
    pub fn open_with(
        data: &Path,
        directory_json: Option<&str>,
        storage: &Storage,
    ) -> Result<Relay, Box<dyn std::error::Error>> {
        std::fs::create_dir_all(data)?;
        let store = store::open_store(data, storage.database_url.as_deref())?;
        let device = store.meta_or_insert(
            "server_device",
            &gridsync_core::DeviceId::random().to_string(),
        )?;
        let identity = Identity {
            user: "relay".parse()?,
            device: device.parse()?,
        };
        let engine = Engine::open(data.join("server.db"), identity)?;
        let shared_directory = if store.shared() {
            store.meta("directory")?
        } else {
            None
        };
        match directory_json.or(shared_directory.as_deref()) {
            Some(json) => engine.load_directory(json)?,
            None if engine.directory().is_err() => {
                tracing::warn!("no directory configured; loading the sample directory");
                engine.load_directory(crate::SAMPLE_DIRECTORY)?;
            }
            None => {}
        }
        if let (Some(json), true) = (directory_json, store.shared()) {
            store.set_meta("directory", json)?;
        }
        // A node of a shared database starts from where its replica says; one
        // node's replica is written together with its log and never catches up.
        let applied = if store.shared() {
            engine.replica_position()?
        } else {
            0
        };
        Ok(Relay {
            engine,
            store,
            token_lifetime: chrono::Duration::days(DEFAULT_TOKEN_DAYS),
            blobs: crate::blobstore::open_blob_store(storage.photos.as_ref(), data)?,
            uploads: std::sync::Mutex::new(()),
            console_writes: std::sync::Mutex::new(()),
            sign_ins: std::sync::atomic::AtomicUsize::new(0),
            applied: std::sync::atomic::AtomicU64::new(applied),
            replica: std::sync::Mutex::new(ReplicaState {
                recorded: applied,
                waiting: Vec::new(),
            }),
        })
    }

    /// Bring this node's replica up to date with the shared log: what other nodes
    /// stored since. Nothing to do on a store of one node.
    pub fn catch_up(&self) -> Result<(), RelayError> {
        use std::sync::atomic::Ordering;
        if !self.store.shared() {
            return Ok(());
        }
        let mut replica = self.replica.lock().unwrap_or_else(|e| e.into_inner());
        let mut from = self.applied.load(Ordering::SeqCst);
        // Changes that waited for their dependencies go again first: the
        // dependency may have arrived since, in the log or through this node.
        let mut waiting = self.import_log_entries(std::mem::take(&mut replica.waiting))?;
        loop {
            let entries = self
                .store
                .log_after(from, None, CATCH_UP_BYTES)
                .map_err(RelayError::internal)?;
            let Some(&(last, _)) = entries.last() else {
                break;
            };
            from = last;
            waiting.extend(self.import_log_entries(entries)?);
        }
        self.applied.fetch_max(from, Ordering::SeqCst);
        // The recorded position stays before the first change still waiting, so a
        // restarted node reads it again.
        let safe = waiting
            .first()
            .map_or(from, |(seq, _)| seq.saturating_sub(1))
            .min(from);
        if safe > replica.recorded {
            self.engine
                .set_replica_position(safe)
                .map_err(RelayError::internal)?;
            replica.recorded = safe;
        }
        if !waiting.is_empty() {
            tracing::warn!(
                changes = waiting.len(),
                "logged changes wait for dependencies not logged yet"
            );
        }
        replica.waiting = waiting;
        Ok(())
    }

    /// Import log entries into the replica (each was checked when it was logged);
    /// answers those whose dependencies the replica lacks, in log order.
    fn import_log_entries(
        &self,
        entries: Vec<(u64, LogEntry)>,
    ) -> Result<Vec<(u64, LogEntry)>, RelayError> {
        if entries.is_empty() {
            return Ok(entries);
        }
        let batch = gridsync_core::engine::group_by_doc(
            entries
                .iter()
                .map(|(_, e)| (e.doc.clone(), e.bytes.clone())),
        );
        let mut missing = HashSet::new();
        for r in self
            .engine
            .import_changes(&batch)
            .map_err(RelayError::internal)?
        {
            match r.outcome {
                Ok(report) => missing.extend(report.missing_deps),
                // Logged changes were valid where they were checked: a bug, not
                // something waiting would mend.
                Err(e) => {
                    tracing::error!(doc = %r.doc, error = %e, "a logged change does not import")
                }
            }
        }
        Ok(entries
            .into_iter()
            .filter(|(_, e)| missing.contains(&automerge::ChangeHash(e.hash)))
            .collect())
    }

    /// How long tokens issued from now on stay valid.
    pub fn set_token_lifetime(&mut self, lifetime: chrono::Duration) {
        self.token_lifetime = lifetime;
    }

    /// The server's replica (for the console and tests).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Where photos are kept, for logs (no secrets).
    pub fn photo_store(&self) -> String {
        self.blobs.describe()
    }

    /// The relay's store.
    pub fn store(&self) -> &dyn RelayStore {
        self.store.as_ref()
    }

    fn directory(&self) -> Result<Arc<Directory>, RelayError> {
        self.engine.directory().map_err(RelayError::internal)
    }

    /// Create a one-time enrollment code for `user` (admin command).
    pub fn create_enrollment(&self, user: &str) -> Result<String, RelayError> {
        self.new_enrollment(user, false)
    }

    /// Create a one-time enrollment code for a downstream relay (a town server)
    /// acting for `user`, whose region it is trusted for.
    pub fn create_relay_enrollment(&self, user: &str) -> Result<String, RelayError> {
        self.new_enrollment(user, true)
    }

    fn new_enrollment(&self, user: &str, relay: bool) -> Result<String, RelayError> {
        let user: gridsync_core::UserId = user
            .parse()
            .map_err(|e: gridsync_core::ids::IdError| RelayError::bad_request(e.to_string()))?;
        if self.directory()?.user(&user).is_none() {
            return Err(RelayError::bad_request(format!(
                "user {user} is not in the directory"
            )));
        }
        let code: String = random_bytes::<10>()?
            .iter()
            .map(|b| CODE_ALPHABET[(b % 32) as usize] as char)
            .collect();
        let expires = Utc::now() + chrono::Duration::hours(ENROLLMENT_HOURS);
        self.store
            .create_enrollment(&user, &sha256(&code), expires.timestamp_millis(), relay)
            .map_err(RelayError::internal)?;
        Ok(code)
    }

    /// Redeem an enrollment code.
    pub fn enroll(&self, req: EnrollRequest) -> Result<EnrollResponse, RelayError> {
        check_version(req.v)?;
        let device: gridsync_core::DeviceId = req
            .device
            .parse()
            .map_err(|e: gridsync_core::ids::IdError| RelayError::bad_request(e.to_string()))?;
        if req.code.len() > 64 || req.app_version.chars().count() > 64 {
            return Err(RelayError::bad_request("code or app version too long"));
        }
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?);
        let code = req.code.trim().to_ascii_uppercase();
        let user = self
            .store
            .redeem_enrollment(
                &sha256(&code),
                device,
                &sha256(&token),
                &req.app_version,
                Utc::now().timestamp_millis(),
                (Utc::now() + self.token_lifetime).timestamp_millis(),
            )
            .map_err(RelayError::internal)?
            .ok_or_else(|| {
                RelayError::new(
                    401,
                    "unauthorized",
                    "the enrollment code is unknown, used or expired",
                )
            })?;
        let directory = self.engine.directory_json().map_err(RelayError::internal)?;
        tracing::info!(device = %device, "device enrolled");
        Ok(EnrollResponse {
            v: PROTOCOL_VERSION,
            token,
            user: user.to_string(),
            directory,
        })
    }

    /// Authenticate a bearer token: the device and its user.
    pub fn authenticate(&self, token: &str) -> Result<(DeviceRecord, User), RelayError> {
        if token.is_empty() || token.len() > 256 {
            return Err(RelayError::unauthorized());
        }
        let device = self
            .store
            .device_by_token(&sha256(token))
            .map_err(RelayError::internal)?
            .ok_or_else(RelayError::unauthorized)?;
        if device.revoked {
            let mut err =
                RelayError::new(401, "revoked", "this device was revoked; erase its data");
            err.body.wipe = true;
            return Err(err);
        }
        if device.expires_ms <= Utc::now().timestamp_millis() {
            return Err(RelayError::new(
                401,
                "expired",
                "the device token has expired; enroll the device again",
            ));
        }
        let user = self
            .directory()?
            .user(&device.user)
            .cloned()
            .ok_or_else(RelayError::unauthorized)?;
        Ok((device, user))
    }

    /// Store what a device pushes: every change checked, stored once, answered.
    pub fn push(&self, token: &str, req: PushRequest) -> Result<PushResponse, RelayError> {
        let (device, user) = self.authenticate(token)?;
        check_version(req.v)?;
        if req.changes.len() > MAX_CHANGES_PER_MESSAGE {
            return Err(RelayError::bad_request(format!(
                "at most {MAX_CHANGES_PER_MESSAGE} changes per push"
            )));
        }
        let trust = if device.relay {
            Trust::Relay(user.region.clone())
        } else {
            Trust::Device(&user)
        };
        self.push_as(device.device, &trust, req.changes)
    }

    /// Check, store and log changes received from `device`, as far as `trust`
    /// says: a phone's push or a console action (checked as its user), a downstream
    /// relay's (its region), or what this relay pulled from its upstream.
    pub(crate) fn push_as(
        &self,
        device: DeviceId,
        trust: &Trust<'_>,
        changes: Vec<WireChange>,
    ) -> Result<PushResponse, RelayError> {
        // Each change's hash names it in the answer; what cannot even be parsed is
        // named by the SHA-256 of its bytes and rejected.
        let mut results: Vec<ChangeResult> = Vec::with_capacity(changes.len());
        let mut valid = Vec::new();
        for WireChange { doc, bytes } in changes {
            let parsed = doc
                .parse::<DocId>()
                .map_err(|e| e.to_string())
                .and_then(|id| {
                    automerge::Change::try_from(&bytes[..])
                        .map(|c| (id, c.hash()))
                        .map_err(|e| format!("not an Automerge change: {e}"))
                });
            match parsed {
                Ok((id, hash)) => {
                    results.push(ChangeResult {
                        hash: hash.0.to_vec(),
                        status: ChangeStatus::Rejected,
                        reason: None,
                    });
                    valid.push((id, bytes));
                }
                Err(reason) => results.push(ChangeResult {
                    hash: Sha256::digest(&bytes).to_vec(),
                    status: ChangeStatus::Rejected,
                    reason: Some(reason),
                }),
            }
        }
        let batch = gridsync_core::engine::group_by_doc(valid);
        // Checked against the replica as of the whole log: on a shared database
        // no other node logs anything until this push is logged.
        let _pushes = self.store.lock_pushes().map_err(RelayError::internal)?;
        self.catch_up()?;
        let actor = device.actor();
        let check = |id: &DocId,
                     before: Option<&DocContent>,
                     after: &DocContent,
                     changes: &[automerge::Change]| match trust {
            Trust::Device(user) => {
                if changes.iter().any(|c| c.actor_id() != &actor) {
                    return Err("the change was not made on this device".to_owned());
                }
                authorize(user, id, before, after)?;
                self.check_new_photos(&visibility(user), before, after)
            }
            Trust::Relay(region) => {
                // The relay forwards others' changes, but never ones made here.
                for change in changes {
                    let local = DeviceId::from_actor(change.actor_id())
                        .map(|d| self.store.is_local_device(d))
                        .transpose()
                        .map_err(|e| {
                            tracing::error!(error = %e, "actor check");
                            "the server could not check the change; try again".to_owned()
                        })?;
                    if local == Some(true) {
                        return Err("the change was made on a device of this server".to_owned());
                    }
                }
                let dir = self.engine.directory().map_err(|e| {
                    tracing::error!(error = %e, "directory");
                    "the server has no directory".to_owned()
                })?;
                authorize_relayed(&dir, region, before, after)?;
                let vis = Visibility {
                    region: Some(region.clone()),
                    dept: None,
                };
                self.check_new_photos(&vis, before, after)
            }
            Trust::Upstream => Ok(()),
        };
        let imported = self
            .engine
            .import_changes_checked(&batch, &check)
            .map_err(RelayError::internal)?;

        let mut verdicts: HashMap<automerge::ChangeHash, (ChangeStatus, Option<String>)> =
            HashMap::new();
        let mut entries = Vec::new();
        let mut scopes = Vec::new();
        for (r, (id, raw)) in imported.into_iter().zip(&batch) {
            match r.outcome {
                Ok(report) => {
                    for h in &report.applied {
                        verdicts.insert(*h, (ChangeStatus::Accepted, None));
                    }
                    for h in &report.duplicates {
                        verdicts.insert(*h, (ChangeStatus::Duplicate, None));
                    }
                    for h in &report.missing_deps {
                        let why = "depends on a change the server does not have yet".to_owned();
                        verdicts.insert(*h, (ChangeStatus::Deferred, Some(why)));
                    }
                    for (h, reason) in &report.rejected {
                        verdicts.insert(*h, (ChangeStatus::Rejected, Some(reason.clone())));
                    }
                    // Duplicates are logged again (idempotently): a crash between the
                    // engine's commit and the log's must not lose them.
                    let stored: HashSet<_> = report
                        .applied
                        .iter()
                        .chain(&report.duplicates)
                        .copied()
                        .collect();
                    if stored.is_empty() {
                        continue;
                    }
                    for bytes in raw {
                        if let Ok(change) = automerge::Change::try_from(&bytes[..]) {
                            if stored.contains(&change.hash()) {
                                entries.push(LogEntry {
                                    hash: change.hash().0,
                                    doc: id.clone(),
                                    bytes: bytes.clone(),
                                });
                            }
                        }
                    }
                    let content = match report.content {
                        Some(c) => Some(c),
                        None => self.engine.read_doc(id).map_err(RelayError::internal)?,
                    };
                    if let Some(content) = content {
                        scopes.push((id.clone(), scope_of(content)));
                    }
                }
                Err(e) => {
                    for bytes in raw {
                        if let Ok(change) = automerge::Change::try_from(&bytes[..]) {
                            verdicts.insert(
                                change.hash(),
                                (ChangeStatus::Rejected, Some(e.to_string())),
                            );
                        }
                    }
                }
            }
        }
        // Only after the log is durable is anything answered as stored.
        // On a shared store the log must still end where the catch-up left it: if
        // the push lock was lost meanwhile (its connection dropped), another node
        // may have logged changes these checks did not see, and nothing is stored.
        let expect = self
            .store
            .shared()
            .then(|| self.applied.load(std::sync::atomic::Ordering::SeqCst));
        let top = self
            .store
            .append(
                device,
                &entries,
                &scopes,
                Utc::now().timestamp_millis(),
                expect,
            )
            .map_err(RelayError::internal)?;
        // Under the push lock, the replica now holds the whole log.
        self.applied
            .fetch_max(top, std::sync::atomic::Ordering::SeqCst);
        drop(_pushes);
        let mut rejected = 0;
        for r in &mut results {
            if r.reason.is_some() {
                rejected += 1;
                continue;
            }
            let verdict = automerge::ChangeHash::try_from(&r.hash[..])
                .ok()
                .and_then(|h| verdicts.get(&h).cloned());
            let (status, reason) =
                verdict.unwrap_or((ChangeStatus::Rejected, Some("not applied".to_owned())));
            rejected += usize::from(status == ChangeStatus::Rejected);
            r.status = status;
            r.reason = reason;
        }
        tracing::info!(device = %device, changes = results.len(), rejected, "push");
        Ok(PushResponse {
            v: PROTOCOL_VERSION,
            results,
        })
    }

    /// A photo newly referred to must not be one a document outside the user's scope
    /// refers to: knowing a hash must not be a way to read someone else's photo.
    fn check_new_photos(
        &self,
        vis: &Visibility,
        before: Option<&DocContent>,
        after: &DocContent,
    ) -> Result<(), String> {
        let DocContent::Case(c) = after else {
            return Ok(());
        };
        let known: HashSet<&PhotoHash> = match before {
            Some(DocContent::Case(b)) => b
                .photos
                .iter()
                .flat_map(|p| std::iter::once(&p.hash).chain(p.thumb.as_ref()))
                .collect(),
            _ => HashSet::new(),
        };
        for hash in c
            .photos
            .iter()
            .flat_map(|p| std::iter::once(&p.hash).chain(p.thumb.as_ref()))
            .filter(|h| !known.contains(h))
        {
            let elsewhere = self
                .store
                .photo_referenced_outside(hash.as_str(), vis)
                .map_err(|e| {
                    tracing::error!(error = %e, "photo check");
                    "the server could not check the photo; try again".to_owned()
                })?;
            if elsewhere {
                return Err("a photo of a case outside your scope cannot be attached".into());
            }
        }
        Ok(())
    }

    /// The photo, if `user` may see a document that refers to it; otherwise the same
    /// answer as for a photo that does not exist.
    fn visible_photo(&self, user: &User, hash: &str) -> Result<PhotoHash, RelayError> {
        let not_found = || RelayError::new(404, "not_found", "no such photo");
        let parsed: PhotoHash = hash.parse().map_err(|_| not_found())?;
        if !self
            .store
            .photo_visible(parsed.as_str(), &visibility(user))
            .map_err(RelayError::internal)?
        {
            return Err(not_found());
        }
        Ok(parsed)
    }

    /// Store one chunk of a photo upload; resumable, verified against the hash.
    pub fn put_blob(
        &self,
        token: &str,
        req: BlobPutRequest,
    ) -> Result<BlobPutResponse, RelayError> {
        let (device, user) = self.authenticate(token)?;
        check_version(req.v)?;
        let hash = self.uploadable_photo(&user, &req.hash)?;
        if req.total == 0 || req.total > MAX_BLOB_BYTES || req.bytes.len() > MAX_CHUNK_BYTES {
            return Err(RelayError::bad_request(format!(
                "a photo must be 1 byte to {MAX_BLOB_BYTES} bytes, sent in chunks of at most {MAX_CHUNK_BYTES}"
            )));
        }
        let answer = |received, done| BlobPutResponse {
            v: PROTOCOL_VERSION,
            received,
            done,
        };
        if self
            .store
            .blob_size(hash.as_str())
            .map_err(RelayError::internal)?
            .is_some()
        {
            return Ok(answer(req.total, true));
        }
        // Each device uploads into its own partial, named with the size it
        // announced: nobody else can add to it, and a different size starts afresh.
        // Partials live in the photo store, so the next chunk may reach another node.
        let _guard = self.uploads.lock().unwrap_or_else(|e| e.into_inner());
        let partial = format!("{hash}-{}-{}", device.device, req.total);
        let have = self
            .blobs
            .partial_len(&partial)
            .map_err(RelayError::internal)?;
        if have > req.total {
            // Two nodes appended the same retried chunk: start the photo afresh.
            self.forget_partial(&partial);
            return Ok(answer(0, false));
        }
        if req.offset != have {
            // Not where the server stands (a retry, or a cut): say where to go on.
            return Ok(answer(have, false));
        }
        let end = have + req.bytes.len() as u64;
        if end > req.total {
            self.forget_partial(&partial);
            return Err(RelayError::bad_request("more bytes than the photo's size"));
        }
        self.blobs
            .append_partial(&partial, &req.bytes)
            .map_err(RelayError::internal)?;
        if end < req.total {
            return Ok(answer(end, false));
        }
        let bytes = self
            .blobs
            .read_partial(&partial)
            .map_err(RelayError::internal)?;
        if gridsync_core::photo::hash_of(&bytes) != hash {
            self.forget_partial(&partial);
            return Err(RelayError::bad_request(
                "the photo does not match its hash; send it again",
            ));
        }
        // Only what the capture pipeline makes is kept and handed to other devices:
        // a JPEG no larger than a display image.
        if let Err(why) = check_rendition(&bytes) {
            self.forget_partial(&partial);
            return Err(RelayError::bad_request(why));
        }
        self.blobs
            .put(&hash, &bytes)
            .map_err(RelayError::internal)?;
        self.store
            .record_blob(hash.as_str(), req.total, Utc::now().timestamp_millis())
            .map_err(RelayError::internal)?;
        // The partial goes only once the blob is durable and recorded.
        self.forget_partial(&partial);
        tracing::info!(device = %device.device, size = req.total, "photo stored");
        Ok(answer(req.total, true))
    }

    /// Drop a partial upload; a failure only leaves it for the next attempt to
    /// overwrite or resume.
    fn forget_partial(&self, key: &str) {
        if let Err(e) = self.blobs.remove_partial(key) {
            tracing::warn!(error = %e, "could not remove a partial upload");
        }
    }

    /// Part of a stored photo a device may see.
    pub fn get_blob(
        &self,
        token: &str,
        req: BlobGetRequest,
    ) -> Result<BlobGetResponse, RelayError> {
        let (_, user) = self.authenticate(token)?;
        check_version(req.v)?;
        let hash = self.visible_photo(&user, &req.hash)?;
        let Some(total) = self
            .store
            .blob_size(hash.as_str())
            .map_err(RelayError::internal)?
        else {
            return Err(RelayError::new(
                404,
                "not_found",
                "the photo has not been uploaded yet",
            ));
        };
        let len = req.max_bytes.clamp(1, MAX_CHUNK_BYTES as u64);
        let bytes = self
            .blobs
            .read_range(&hash, req.offset.min(total), len)
            .map_err(RelayError::internal)?;
        Ok(BlobGetResponse {
            v: PROTOCOL_VERSION,
            total,
            bytes,
        })
    }

    /// A photo `user` may upload: one a document they may see refers to, or one
    /// they attached themselves (their case may have left their scope since).
    fn uploadable_photo(&self, user: &User, hash: &str) -> Result<PhotoHash, RelayError> {
        let not_found = || RelayError::new(404, "not_found", "no such photo");
        let parsed: PhotoHash = hash.parse().map_err(|_| not_found())?;
        let ok = self
            .store
            .photo_attached_by(parsed.as_str(), user.id.as_str())
            .map_err(RelayError::internal)?
            || self
                .store
                .photo_visible(parsed.as_str(), &visibility(user))
                .map_err(RelayError::internal)?;
        if ok {
            Ok(parsed)
        } else {
            Err(not_found())
        }
    }

    /// The next page of what a device may see.
    pub fn pull(&self, token: &str, req: PullRequest) -> Result<PullResponse, RelayError> {
        let (device, user) = self.authenticate(token)?;
        check_version(req.v)?;
        if req.purged.len() > MAX_CHANGES_PER_MESSAGE {
            return Err(RelayError::bad_request("purge acknowledgement too long"));
        }
        let vis = visibility(&user);
        let ask = PullAsk {
            cursor: req.cursor,
            max_bytes: req.max_bytes.clamp(1, MAX_PULL_PAGE_BYTES),
            ack_page: req.ack_page,
            purged: &req.purged,
        };
        let page = self
            .store
            .pull(device.device, &vis, &ask, Utc::now().timestamp_millis())
            .map_err(RelayError::internal)?;
        tracing::info!(device = %device.device, changes = page.changes.len(), more = page.more, "pull");
        Ok(PullResponse {
            v: PROTOCOL_VERSION,
            changes: page
                .changes
                .into_iter()
                .map(|(doc, bytes)| WireChange { doc, bytes })
                .collect(),
            cursor: page.cursor,
            more: page.more,
            purge: page.purge,
            page: page.page,
        })
    }
}

/// How far the changes of one push are checked.
pub(crate) enum Trust<'a> {
    /// A phone or a console session: every change made on that device, and allowed
    /// to that user (role, scope, workflow, photos).
    Device(&'a User),
    /// A downstream relay (a town server): it checked its devices' changes itself
    /// and is trusted for the documents of its region.
    Relay(gridsync_core::RegionCode),
    /// This relay's own upstream (a district server), whose answers are pulled, not
    /// pushed to us.
    Upstream,
}

fn grid_of(content: &DocContent) -> &gridsync_core::RegionCode {
    match content {
        DocContent::Case(c) => &c.grid,
        DocContent::Patrol(p) => &p.grid,
    }
}

/// What `user` may see: department handlers what is dispatched to their department,
/// everyone else their region's subtree.
fn visibility(user: &User) -> Visibility {
    let handler = user.role == Role::DepartmentHandler;
    Visibility {
        region: (!handler).then(|| user.region.clone()),
        dept: if handler {
            user.department.clone()
        } else {
            None
        },
    }
}

fn scope_of(content: DocContent) -> DocScope {
    match content {
        DocContent::Case(c) => DocScope {
            dept: fold(&c.timeline).assigned_dept,
            photos: c
                .photos
                .iter()
                .flat_map(|p| {
                    std::iter::once(&p.hash)
                        .chain(p.thumb.as_ref())
                        .map(move |h| (h.to_string(), p.by.to_string()))
                })
                .collect(),
            grid: c.grid,
        },
        DocContent::Patrol(p) => DocScope {
            grid: p.grid,
            dept: None,
            photos: Vec::new(),
        },
    }
}

/// Whether `bytes` are what the capture pipeline stores: a JPEG whose long side is
/// at most a display image's.
fn check_rendition(bytes: &[u8]) -> Result<(), String> {
    let limit = gridsync_core::photo::PhotoLimits::default().display_px;
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    if reader.format() != Some(image::ImageFormat::Jpeg) {
        return Err("only JPEG renditions made by the app are accepted".into());
    }
    let (w, h) = reader.into_dimensions().map_err(|e| e.to_string())?;
    if w.max(h) > limit {
        return Err(format!(
            "a photo may be at most {limit} px on its long side"
        ));
    }
    Ok(())
}

/// May `user` make this change to this document? The rules the server enforces on
/// every push, whatever the device's own checks said.
/// What no change may do, whoever makes it: change a document's kind, rewrite what
/// was reported, change, remove or reorder timeline entries, notes or photos, or
/// take anything out of a patrol log.
fn check_history(before: Option<&DocContent>, after: &DocContent) -> Result<(), String> {
    match (before, after) {
        (None, _) => Ok(()),
        (Some(DocContent::Patrol(b)), DocContent::Patrol(p)) => {
            if b.worker != p.worker || b.grid != p.grid || b.started != p.started {
                return Err("a patrol's worker, grid and start cannot change".into());
            }
            if b.ended.is_some() && b.ended != p.ended {
                return Err("an ended patrol cannot be reopened or re-ended".into());
            }
            // Patrol logs only grow: what was recorded stays, in order.
            let grown = p.track.starts_with(&b.track)
                && p.checkins.starts_with(&b.checkins)
                && p.observations.starts_with(&b.observations)
                && p.cases.starts_with(&b.cases);
            if grown {
                Ok(())
            } else {
                Err("a patrol log can only be added to".into())
            }
        }
        (Some(DocContent::Case(b)), DocContent::Case(c)) => {
            let report_unchanged = b.grid == c.grid
                && b.reporter == c.reporter
                && b.created == c.created
                && b.title == c.title
                && b.description == c.description
                && b.category == c.category
                && b.subcategory == c.subcategory
                && b.severity == c.severity
                && b.location == c.location
                && b.people == c.people;
            if !report_unchanged {
                return Err("what was reported cannot be changed afterwards".into());
            }
            if !is_subsequence(&b.timeline, &c.timeline) {
                return Err("timeline entries cannot be changed, removed or reordered".into());
            }
            if !is_subsequence(&b.notes, &c.notes) || !is_subsequence(&b.photos, &c.photos) {
                return Err("notes and photos cannot be changed or removed".into());
            }
            Ok(())
        }
        _ => Err("document kind changed".into()),
    }
}

fn authorize(
    user: &User,
    id: &DocId,
    before: Option<&DocContent>,
    after: &DocContent,
) -> Result<(), String> {
    check_history(before, after)?;
    match after {
        DocContent::Patrol(p) => {
            if p.worker != user.id {
                return Err("a patrol log can only be written by its grid worker".into());
            }
            if !user.region.contains(&p.grid) {
                return Err("the patrol's grid is outside your region".into());
            }
            Ok(())
        }
        DocContent::Case(c) => {
            let b = match before {
                Some(DocContent::Case(b)) => Some(b),
                _ => None,
            };
            // Department handlers see what is dispatched to their department only.
            let visible = if user.role == Role::DepartmentHandler {
                b.is_some_and(|b| fold(&b.timeline).assigned_dept == user.department)
            } else {
                user.region.contains(&c.grid)
            };
            if !visible {
                return Err(format!("case {id} is outside your scope"));
            }
            // A new case's entries are all checked as new: the first must be your report.
            if b.is_none() && c.reporter != user.id {
                return Err("a new case must be reported by you".into());
            }
            check_new_entries(b, c, |actor, role| {
                *actor == user.id && role.is_none_or(|r| r == user.role)
            })
            .map_err(|e| match e {
                NewEntry::Author => "a timeline entry must name you and your role".into(),
                NewEntry::Workflow(reason) => format!("workflow: {reason}"),
                NewEntry::NoteOrPhoto => "a note or photo must be added in your own name".into(),
            })
        }
    }
}

/// What a downstream relay forwards for its region: the same history rules as any
/// change, every document inside the region before and after, and every new entry,
/// note or photo made by a directory user who could have made it (role and scope) —
/// the relay vouches for who made it, not for what the rules allow.
fn authorize_relayed(
    dir: &Directory,
    region: &gridsync_core::RegionCode,
    before: Option<&DocContent>,
    after: &DocContent,
) -> Result<(), String> {
    check_history(before, after)?;
    if !before
        .into_iter()
        .chain([after])
        .all(|c| region.contains(grid_of(c)))
    {
        return Err("the document is outside the relay's region".into());
    }
    match after {
        DocContent::Patrol(p) => match dir.user(&p.worker) {
            Some(u) if u.role == Role::GridWorker && u.region.contains(&p.grid) => Ok(()),
            _ => Err("a patrol log must be a grid worker's of that grid".into()),
        },
        DocContent::Case(c) => {
            let b = match before {
                Some(DocContent::Case(b)) => Some(b),
                _ => None,
            };
            let dept = fold(&c.timeline).assigned_dept;
            check_new_entries(b, c, |actor, role| {
                dir.user(actor).is_some_and(|u| {
                    let in_scope = if u.role == Role::DepartmentHandler {
                        u.department.is_some() && u.department == dept
                    } else {
                        u.region.contains(&c.grid)
                    };
                    in_scope && role.is_none_or(|r| r == u.role)
                })
            })
            .map_err(|e| match e {
                NewEntry::Workflow(reason) => format!("workflow: {reason}"),
                NewEntry::Author | NewEntry::NoteOrPhoto => {
                    "an entry, note or photo names someone who could not have made it".into()
                }
            })
        }
    }
}

/// Whether every item of `old` is in `new`, in the same order (concurrent appends
/// from other devices may sit between them).
fn is_subsequence<T: PartialEq>(old: &[T], new: &[T]) -> bool {
    let mut rest = new.iter();
    old.iter().all(|o| rest.any(|n| n == o))
}

/// Why a new timeline entry, note or photo is refused.
enum NewEntry {
    /// An entry not made by someone who may make it.
    Author,
    /// An entry the workflow refuses.
    Workflow(String),
    /// A note or photo not added by someone who may add it.
    NoteOrPhoto,
}

/// Every timeline entry, note and photo in `after` that was not in `before` must be
/// one `may_author(actor, role)` allows (role `None` for notes and photos), and no
/// new entry may be refused by the workflow.
fn check_new_entries(
    before: Option<&CaseDoc>,
    after: &CaseDoc,
    may_author: impl Fn(&gridsync_core::UserId, Option<Role>) -> bool,
) -> Result<(), NewEntry> {
    let known: HashSet<&str> = before
        .map(|b| b.timeline.iter().map(|e| e.id.as_str()).collect())
        .unwrap_or_default();
    let state = fold(&after.timeline);
    for (entry, outcome) in after.timeline.iter().zip(&state.outcomes) {
        if known.contains(entry.id.as_str()) {
            continue;
        }
        if !may_author(&entry.actor, Some(entry.role)) {
            return Err(NewEntry::Author);
        }
        if let Outcome::Refused(reason) = outcome {
            return Err(NewEntry::Workflow(reason.to_string()));
        }
    }
    let new_notes_ok = after
        .notes
        .iter()
        .all(|n| before.is_some_and(|b| b.notes.contains(n)) || may_author(&n.by, None));
    let new_photos_ok = after
        .photos
        .iter()
        .all(|p| before.is_some_and(|b| b.photos.contains(p)) || may_author(&p.by, None));
    if new_notes_ok && new_photos_ok {
        Ok(())
    } else {
        Err(NewEntry::NoteOrPhoto)
    }
}
