//! The relay's protocol logic, free of HTTP: requests in, answers or
//! [`RelayError`]s out. The HTTP shell (`http`) and the in-process transport of the
//! tests both call [`Relay::answer`] with a request decoded by the route table.
//!
//! One file per concern: `enroll` (codes, tokens, the caller), `push` (checking and
//! logging changes), `pull`, `blobs` (photos), `replica` (a node catching up with a
//! shared log), `upstream` (tiers), `console` (the web console's side), `erase`
//! (erasing a person for good, ADR 0011), `store` (what the relay keeps besides
//! documents), `times` (how it reads the times phones write), `error`.

mod blobs;
pub use blobs::{MAX_PARTIALS_PER_DEVICE, PARTIAL_DAYS};
mod console;
mod directory;
mod enroll;
mod erase;
mod error;
mod pull;
mod push;
mod replica;
pub mod resident;
mod retention;
pub mod store;
pub mod times;
mod upstream;

pub use console::{ConsoleUser, DeviceView, DraftOutcome, TileUrl, PASSWORD_CHARS, SESSION_HOURS};
pub use directory::{DirectoryEdit, RuleEdit};
pub use enroll::{Caller, TokenRotation, ENROLLMENT_HOURS, RETIRED_TOKEN_DAYS};
pub(crate) use erase::remove_erased_photos;
pub use erase::{erasable, tombstoned_kind, ErasureReason};
pub use error::RelayError;
pub use resident::{Receipt, ResidentError, ResidentReport, Upload, Whereabouts};
pub use retention::Sweep;
pub use upstream::{UpstreamLink, UpstreamReport, DEFAULT_INTERVAL_SECS};

use std::path::Path;
use std::sync::Arc;

use gridsync_core::sync::route::{Answer, Request};
use gridsync_core::{Directory, Engine, Identity};
use sha2::{Digest, Sha256};

use replica::ReplicaState;
use store::RelayStore;

fn sha256(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

fn random_bytes<const N: usize>() -> Result<[u8; N], RelayError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(RelayError::internal)?;
    Ok(buf)
}

/// What `user` may see, as the store asks it: the access rules' scope.
fn visibility(user: &gridsync_core::User) -> store::Visibility {
    store::Visibility::from(&gridsync_core::access::scope_of(user))
}

/// What a device of `user` is sent: its user's visibility, without the grid's
/// base data unless the user keeps it or the device is a downstream relay (whose
/// console serves the town's base data).
fn device_visibility(user: &gridsync_core::User, relay: bool) -> store::Visibility {
    store::Visibility {
        registry: relay || gridsync_core::access::keeps_registry(user),
        ..visibility(user)
    }
}

/// A request in a version this relay speaks (it answers in the same version).
fn check_version(v: u32) -> Result<(), RelayError> {
    if gridsync_core::sync::wire::speaks(v) {
        Ok(())
    } else {
        Err(RelayError::UnsupportedVersion(v))
    }
}

/// How long a device token works before the device must enroll again.
pub const DEFAULT_TOKEN_DAYS: i64 = 365;

/// The relay: its own replica of every document (a core engine), and its store.
pub struct Relay {
    engine: Engine,
    store: Arc<dyn RelayStore>,
    token_lifetime: chrono::Duration,
    token_rotation: std::sync::RwLock<TokenRotation>,
    blobs: Arc<dyn crate::blobstore::BlobStore>,
    uploads: std::sync::Mutex<()>,
    console_writes: std::sync::Mutex<()>,
    sign_ins: std::sync::atomic::AtomicUsize,
    /// Wrong console sign-ins, per address.
    sign_in_guesses: resident::Clients,
    /// How far into the store's log this node has read into its replica.
    applied: std::sync::atomic::AtomicU64,
    /// Catching up, one thread at a time.
    replica: std::sync::Mutex<ReplicaState>,
    /// How many tombstones this node's replica has been cleared of (ADR 0011).
    erasures_seen: std::sync::atomic::AtomicU64,
    /// The resident channel's rate limits and spent challenges on this node.
    resident: resident::Gate,
    /// The directory revision this node has loaded.
    directory_loaded: std::sync::RwLock<Option<directory::Loaded>>,
    /// When a pull last looked for a newer revision (shared databases).
    directory_checked_ms: std::sync::atomic::AtomicI64,
    /// Storing a revision, one at a time on this node.
    directory_writes: std::sync::Mutex<()>,
    /// The console map's base map, if configured.
    map_tiles: Option<console::TileUrl>,
    /// How the replica's case index reads timelines (`times`), kept alive here.
    _time_reading: Arc<gridsync_core::index::TimelineReading>,
    /// Timeline entries received whose time was implausible, since start.
    implausible_times: std::sync::atomic::AtomicU64,
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

impl Relay {
    /// Open the relay in `data` (created if missing) on the embedded default:
    /// `server.db` holds the documents, `relay.db` the devices and the change log.
    /// `directory_json` (a directory file) becomes a new revision of the
    /// directory when it differs from the file imported last; with `None` the
    /// newest revision is kept, or the sample directory stored if there is none.
    pub fn open(
        data: &Path,
        directory_json: Option<&str>,
    ) -> Result<Relay, Box<dyn std::error::Error>> {
        Self::open_with(data, directory_json, &Storage::default())
    }

    /// Open the relay with `storage`. On a shared database, `data` holds only this
    /// node's replica (`server.db`), a cache brought up to date from the shared
    /// log by [`Relay::catch_up`] (pushes and the console do it first; `serve` at
    /// start); the directory's revisions are kept in the database for every node.
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
        if let Some(json) = directory_json {
            // A bad file is refused before anything is stored, with what is wrong.
            Directory::from_json(json)?;
        }
        // The replica's case index judges times as the relay does, from its first
        // rebuild on.
        let time_reading = times::index_reading(store.clone());
        gridsync_core::index::read_timelines_with(&data.join("server.db"), &time_reading);
        let engine = Engine::open(data.join("server.db"), identity)?;
        // A node of a shared database starts from where its replica says; one
        // node's replica is written together with its log and never catches up.
        let applied = if store.shared() {
            engine.replica_position()?
        } else {
            0
        };
        let relay = Relay {
            engine,
            store,
            token_lifetime: chrono::Duration::days(DEFAULT_TOKEN_DAYS),
            token_rotation: std::sync::RwLock::new(TokenRotation::default()),
            blobs: crate::blobstore::open_blob_store(storage.photos.as_ref(), data)?,
            uploads: std::sync::Mutex::new(()),
            console_writes: std::sync::Mutex::new(()),
            sign_ins: std::sync::atomic::AtomicUsize::new(0),
            sign_in_guesses: resident::Clients::new(console::SIGN_IN_GUESSES),
            applied: std::sync::atomic::AtomicU64::new(applied),
            replica: std::sync::Mutex::new(ReplicaState::at(applied)),
            erasures_seen: std::sync::atomic::AtomicU64::new(0),
            resident: resident::Gate::default(),
            directory_loaded: std::sync::RwLock::new(None),
            directory_checked_ms: std::sync::atomic::AtomicI64::new(0),
            directory_writes: std::sync::Mutex::new(()),
            map_tiles: None,
            _time_reading: time_reading,
            implausible_times: std::sync::atomic::AtomicU64::new(0),
        };
        relay.open_directory(directory_json)?;
        // Nothing erased is served: an erasure interrupted before the replica, or
        // tombstones restored from `erasures.log`, are applied before anything else.
        relay.apply_erasures()?;
        Ok(relay)
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

    /// Answer a decoded protocol request. `caller` is the device its token named
    /// (checked before the body was read); enrollment needs none.
    pub fn answer(&self, caller: Option<&Caller>, request: Request) -> Result<Answer, RelayError> {
        if let Request::Enroll(req) = request {
            return self.enroll(req).map(Answer::Enroll);
        }
        let caller = caller.ok_or(RelayError::BadToken)?;
        match request {
            Request::Enroll(_) => Err(RelayError::BadToken),
            Request::Push(req) => self.push(caller, req).map(Answer::Push),
            Request::Pull(req) => self.pull(caller, req).map(Answer::Pull),
            Request::BlobPut(req) => self.put_blob(caller, req).map(Answer::BlobPut),
            Request::BlobGet(req) => self.get_blob(caller, req).map(Answer::BlobGet),
        }
    }
}
