//! The engine the app talks to: one SQLite file, the directory, and the typed
//! operations of a grid worker's, dispatcher's or handler's day.
//!
//! One `impl Engine` per concern: `cases.rs`, `photos.rs`, `patrols.rs`,
//! `replication.rs` (exporting and importing changes, the outbox), `sync_state.rs`
//! (the server, tokens, pull state, push results, purges) and `relay.rs` (what only
//! a server asks of its replica). This file holds the `Engine` itself: opening,
//! identity, the directory, wipe, and the internals every write goes through.

mod cases;
mod patrols;
mod photos;
mod places;
mod points;
mod registry;
mod relay;
mod replication;
mod sync_state;

pub use cases::Case;
pub use patrols::{MAX_POINTS_PER_CALL, TRACK_CHUNK_POINTS};
pub use photos::{PhotoInfo, PhotoUsage};
pub use relay::{ChangeCheck, ClosedCase, FollowUp, HouseholdRow, RegistryKeys};
pub(crate) use replication::parallel_map;
pub use replication::{group_by_doc, ImportResult};
pub use sync_state::PullState;

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use automerge::transaction::{CommitOptions, Transaction as AmTransaction};
use automerge::{Automerge, AutomergeError, ReadDoc};
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Transaction};

use crate::blobs::Blobs;
use crate::db::Db;
use crate::directory::{Directory, User};
use crate::doc::DocContent;
use crate::error::{Error, OpenError, Result};
use crate::ids::{DeviceId, DocId, UserId};
use crate::index;
use crate::photo::PhotoLimits;
use crate::store;
use crate::vault::DeviceKey;
use crate::watch::{Subscription, Watchers};
use crate::wipe::Live;
use crate::workflow::fold;

/// Who is using this device. Fixed when the database is created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The user, as named in the directory.
    pub user: UserId,
    /// This device; its id is the Automerge actor of every local change.
    pub device: DeviceId,
}

/// A source of the current time (tests and simulations replace it).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The embedded engine.
pub struct Engine {
    /// The database, until the engine is wiped.
    db: Live,
    /// Photo files; sealed with the device's photo key on a phone.
    blobs: Blobs,
    /// One sync at a time: a token the relay rotates is stored by the sync that
    /// received it before the next sync reads it. What the syncs share is what
    /// they learnt of the server: how to pace the link (a sync cut off leaves it
    /// to the retry) and the protocol version it speaks.
    syncing: Mutex<crate::sync::Learnt>,
    photo_limits: PhotoLimits,
    identity: Identity,
    directory: RwLock<Option<Arc<Directory>>>,
    clock: Clock,
    watchers: Watchers,
    /// Documents the write in progress touched; only used under the write lock.
    touched: Mutex<Vec<DocId>>,
}

impl Engine {
    /// Open (creating or migrating) the database at `path` for `identity`. Loads no
    /// documents: only the schema check, the identity and the directory are read.
    pub fn open(path: impl AsRef<Path>, identity: Identity) -> Result<Engine, OpenError> {
        Self::open_with_clock(path, identity, Arc::new(Utc::now))
    }

    /// Like [`Engine::open`], with a clock of the caller's.
    pub fn open_with_clock(
        path: impl AsRef<Path>,
        identity: Identity,
        clock: Clock,
    ) -> Result<Engine, OpenError> {
        Self::open_keyed(path.as_ref(), identity, None, clock)
    }

    /// Open (creating or migrating) the phone's database at `path`, encrypted with
    /// SQLCipher under a key derived from the device key `key` (see
    /// `docs/adr/0010-encryption-at-rest.md`). A plaintext database from an older
    /// install is converted on this first open, nothing lost. A file encrypted
    /// under another key (or a plaintext open of an encrypted file) is
    /// [`OpenError::WrongKey`], and is left untouched.
    pub fn open_encrypted(
        path: impl AsRef<Path>,
        identity: Identity,
        key: &DeviceKey,
    ) -> Result<Engine, OpenError> {
        Self::open_encrypted_with_clock(path, identity, key, Arc::new(Utc::now))
    }

    /// Like [`Engine::open_encrypted`], with a clock of the caller's.
    pub fn open_encrypted_with_clock(
        path: impl AsRef<Path>,
        identity: Identity,
        key: &DeviceKey,
        clock: Clock,
    ) -> Result<Engine, OpenError> {
        Self::open_keyed(path.as_ref(), identity, Some(key), clock)
    }

    fn open_keyed(
        path: &Path,
        identity: Identity,
        key: Option<&DeviceKey>,
        clock: Clock,
    ) -> Result<Engine, OpenError> {
        let db = Db::open(path, key)?;
        let sqlite = |source| OpenError::Sqlite {
            path: path.to_owned(),
            source,
        };
        let stored = db
            .write(|tx| -> rusqlite::Result<_> {
                let user: Option<String> = tx
                    .query_row("SELECT value FROM meta WHERE key = 'user'", [], |r| {
                        r.get(0)
                    })
                    .optional()?;
                let device: Option<String> = tx
                    .query_row("SELECT value FROM meta WHERE key = 'device'", [], |r| {
                        r.get(0)
                    })
                    .optional()?;
                if user.is_none() {
                    tx.execute(
                        "INSERT INTO meta (key, value) VALUES ('user', ?1), ('device', ?2)",
                        params![identity.user.as_str(), identity.device.to_string()],
                    )?;
                }
                let json: Option<String> = tx
                    .query_row("SELECT json FROM directory WHERE id = 1", [], |r| r.get(0))
                    .optional()?;
                Ok((user, device, json))
            })
            .map_err(sqlite)?;
        let (user, device, json) = stored;
        if let (Some(user), Some(device)) = (user, device) {
            if user != identity.user.as_str() || device != identity.device.to_string() {
                return Err(OpenError::WrongIdentity {
                    path: path.to_owned(),
                });
            }
        }
        let directory = json
            .map(|j| Directory::from_json(&j))
            .transpose()
            .map_err(|source| OpenError::Directory {
                path: path.to_owned(),
                source,
            })?
            .map(Arc::new);
        let blobs = match key {
            Some(key) => Blobs::for_db_encrypted(path, key).map_err(|source| OpenError::Io {
                path: path.to_owned(),
                source,
            })?,
            None => Blobs::for_db(path),
        };
        // Files left by a crash between a file and its row are of no photo; only
        // work that was interrupted (it left a note) can have left any.
        if blobs.sweep_noted() {
            let known: std::collections::HashSet<String> = db
                .read(|tx| -> rusqlite::Result<_> {
                    tx.prepare("SELECT hash FROM photos")?
                        .query_map([], |r| r.get(0))?
                        .collect()
                })
                .map_err(sqlite)?;
            blobs.sweep(|h| known.contains(h));
            blobs.clear_notes();
        }
        Self::rebuild_index(&db).map_err(sqlite)?;
        Ok(Engine {
            db: Live::new(db),
            blobs,
            syncing: Mutex::new(crate::sync::Learnt::default()),
            photo_limits: PhotoLimits::default(),
            identity,
            directory: RwLock::new(directory),
            clock,
            watchers: Watchers::default(),
            touched: Mutex::new(Vec::new()),
        })
    }

    /// Be told which documents each committed write touched: local edits, pulled
    /// changes, purges. Until the returned [`Subscription`] is dropped. See
    /// [`crate::watch`] for the thread a listener runs on.
    pub fn watch(&self, listener: impl Fn(&[DocId]) + Send + Sync + 'static) -> Subscription {
        self.watchers.subscribe(Arc::new(listener))
    }

    /// Who this device belongs to.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The database file.
    pub fn db_path(&self) -> &Path {
        self.db.path()
    }

    /// Re-encrypt the database under a key derived from the device key `new`
    /// (encrypting it, if it was opened plaintext). Other calls wait meanwhile; it
    /// takes about as long as copying the file.
    ///
    /// A crash at any moment leaves the database whole under the old key or the
    /// new one, with every write that had returned. After `Ok` it is under the new
    /// key; after an error, under either: so the app keeps the new key beside the
    /// old one until `rekey` has returned `Ok` (and, after a crash, opens with the
    /// old key and then the new one).
    ///
    /// Photo files are sealed under the new key first ([`Blobs::rekey`]), then the
    /// database: cut short, a second `rekey` with the same key (on the engine opened
    /// with the old key, which the database still opens with) finishes both.
    pub fn rekey(&self, new: &DeviceKey) -> Result<()> {
        let db = self.db.hold()?;
        self.blobs.rekey(new)?;
        db.rekey(new)
    }

    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// Validate and store a directory (JSON, see `docs/directory-format.md`),
    /// replacing the previous one. It counts as revision 0: the server's newest
    /// revision replaces it at the next sync.
    pub fn load_directory(&self, json: &str) -> Result<()> {
        self.keep_directory(json, 0)
    }

    /// Validate and store revision `revision` of the directory (what a server
    /// sent in a pull answer), replacing the previous one, in one transaction.
    pub fn keep_directory(&self, json: &str, revision: u64) -> Result<()> {
        let dir = Directory::from_json(json)?;
        let now = self.now().timestamp_millis();
        self.write(|tx| -> Result<()> {
            tx.execute(
                "INSERT INTO directory (id, json, loaded_ms) VALUES (1, ?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET json = excluded.json, loaded_ms = excluded.loaded_ms",
                params![json, now],
            )?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('directory_revision', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [revision.to_string()],
            )?;
            Ok(())
        })?;
        *self.directory.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(dir));
        Ok(())
    }

    /// The revision of the stored directory (0: loaded by the app, or before
    /// revisions).
    pub fn directory_revision(&self) -> Result<u64> {
        self.db.read(|tx| -> Result<u64> {
            let value: Option<String> = tx
                .query_row(
                    "SELECT value FROM meta WHERE key = 'directory_revision'",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(value.and_then(|v| v.parse().ok()).unwrap_or(0))
        })
    }

    /// The current directory.
    pub fn directory(&self) -> Result<Arc<Directory>> {
        if self.db.is_closed() {
            return Err(Error::Wiped);
        }
        self.directory
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| {
                Error::InvalidInput("no directory has been loaded on this device".into())
            })
    }

    /// The stored directory as JSON (what a server hands to enrolling devices).
    pub fn directory_json(&self) -> Result<String> {
        self.db.read(|tx| -> Result<String> {
            tx.query_row("SELECT json FROM directory WHERE id = 1", [], |r| r.get(0))
                .optional()?
                .ok_or_else(|| Error::InvalidInput("no directory has been loaded".into()))
        })
    }

    /// This device's user, from the directory.
    pub fn me(&self) -> Result<User> {
        self.user(&self.identity.user)
    }

    /// A user from the directory.
    pub fn user(&self, id: &UserId) -> Result<User> {
        self.directory()?
            .user(id)
            .cloned()
            .ok_or_else(|| Error::NotFound {
                what: "user",
                id: id.to_string(),
            })
    }

    // ---- wipe ----------------------------------------------------------------

    /// Erase everything this engine keeps on the device — the database with its
    /// `-wal` and `-shm`, the photo folder, temporary files and sweep notes — and
    /// close it. Files are unlinked (see `wipe.rs` for why not overwritten). An
    /// error names what could not be removed; [`Engine::wipe_in_place`] on another
    /// handle, or the app deleting the files, finishes the job.
    pub fn wipe(self) -> Result<()> {
        self.wipe_in_place()
    }

    /// Like [`Engine::wipe`], for an engine that others still hold: from now on
    /// every call on it answers [`Error::Wiped`]. Waits for operations still
    /// running on it. Calling it again retries what could not be removed.
    pub fn wipe_in_place(&self) -> Result<()> {
        let left = self.erase();
        if left.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = left.iter().map(|p| p.display().to_string()).collect();
        Err(Error::Io(std::io::Error::other(format!(
            "the wipe could not remove {}",
            names.join(", ")
        ))))
    }

    /// Whether this engine was wiped.
    pub fn is_wiped(&self) -> bool {
        self.db.is_closed()
    }

    /// Close the database for good, forget the directory, unlink every file; the
    /// files still there afterwards.
    pub(crate) fn erase(&self) -> Vec<std::path::PathBuf> {
        self.db.close();
        *self.directory.write().unwrap_or_else(|e| e.into_inner()) = None;
        crate::wipe::erase(self.db.path())
    }

    // ---- internals ---------------------------------------------------------

    /// Run `f` in the write transaction; once it has committed, tell the watchers
    /// which documents it touched. The list is taken while the write lock is still
    /// held, so it holds exactly this transaction's documents.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let (out, mut ids) = self.db.write(|tx| {
            self.touched_ids().clear();
            let out = f(tx);
            let ids = std::mem::take(&mut *self.touched_ids());
            out.map(|out| (out, ids))
        })?;
        ids.sort_unstable();
        ids.dedup();
        self.watchers.notify(&ids);
        Ok(out)
    }

    /// Note that the write in progress changed (or removed) document `id`.
    fn touch(&self, id: &DocId) {
        self.touched_ids().push(id.clone());
    }

    fn touched_ids(&self) -> std::sync::MutexGuard<'_, Vec<DocId>> {
        self.touched.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Make one local change to `doc`, persist it and put it in the outbox.
    fn commit_local(
        &self,
        tx: &Transaction<'_>,
        id: &DocId,
        doc: &mut Automerge,
        edit: impl FnOnce(&mut AmTransaction<'_>) -> Result<(), AutomergeError>,
    ) -> Result<()> {
        let now = self.now();
        if let Some(change) = make_change(doc, id, &self.identity.device, now, edit)? {
            store::persist(tx, id, doc, &[change], true, now.timestamp_millis())?;
            self.touch(id);
        }
        Ok(())
    }

    /// Materialise every document again, once, when the index was written by an
    /// older [`INDEX_VERSION`] (a column derived from the documents was added since).
    /// A document that no longer reads keeps its old row: opening never fails for
    /// one record. Batches of 500 documents, each one transaction.
    fn rebuild_index(db: &Db) -> rusqlite::Result<()> {
        let stored: i64 = db.read(|tx| {
            Ok::<_, rusqlite::Error>(
                tx.query_row(
                    "SELECT value FROM meta WHERE key = 'index_version'",
                    [],
                    |r| r.get::<_, String>(0),
                )
                .optional()?
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            )
        })?;
        if stored >= INDEX_VERSION {
            return Ok(());
        }
        let ids: Vec<String> = db.read(|tx| {
            tx.prepare("SELECT doc_id FROM docs ORDER BY doc_id")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()
        })?;
        // Only SQLite's own errors stop the rebuild; a document that does not load
        // or read is passed over.
        let storage_only = |r: Result<()>| match r {
            Err(Error::Storage(e)) => Err(e),
            _ => Ok(()),
        };
        for batch in ids.chunks(500) {
            db.write(|tx| {
                for id in batch.iter().filter_map(|id| id.parse::<DocId>().ok()) {
                    storage_only(store::load(tx, &id).and_then(|doc| {
                        match doc {
                            Some(doc) => DocContent::read(&doc, &id)
                                .map_err(Error::malformed(&id))
                                .and_then(|content| Self::materialise_content(tx, &id, &content)),
                            None => Ok(()),
                        }
                    }))?;
                }
                Ok::<_, rusqlite::Error>(())
            })?;
        }
        db.write(|tx| {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('index_version', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [INDEX_VERSION.to_string()],
            )
            .map(|_| ())
        })
    }

    /// Fold a document into the index tables.
    fn materialise(&self, tx: &Transaction<'_>, id: &DocId, doc: &Automerge) -> Result<()> {
        let content = DocContent::read(doc, id).map_err(Error::malformed(id))?;
        Self::materialise_content(tx, id, &content)
    }

    fn materialise_content(tx: &Transaction<'_>, id: &DocId, content: &DocContent) -> Result<()> {
        index::index_photos(tx, id, content)?;
        match content {
            DocContent::Case(case) => index::index_case(tx, case, &fold(&case.timeline)),
            DocContent::Patrol(p) => index::index_patrol(tx, p, &Self::pending_points(tx, id)?),
            DocContent::Person(p) => {
                crate::registry::index_person(tx, p, store::updated_ms(tx, id)?)
            }
            DocContent::Household(h) => {
                crate::registry::index_household(tx, h, store::updated_ms(tx, id)?)
            }
            DocContent::Place(p) => crate::places::index_place(tx, p, store::updated_ms(tx, id)?),
            DocContent::Adjustment(a) => crate::points::index_adjustment(tx, a),
        }
    }
}

/// The version of what [`Engine::materialise`] writes into the index tables: 1
/// added `cases.escalations` (schema step 7), 2 `cases.lat` and `cases.lon`
/// (step 8), 3 `cases.channel` (step 9).
const INDEX_VERSION: i64 = 3;

/// Apply `edit` to `doc` as one change by `device`'s actor at `now`; `None` when
/// the edit changed nothing.
fn make_change(
    doc: &mut Automerge,
    id: &DocId,
    device: &DeviceId,
    now: DateTime<Utc>,
    edit: impl FnOnce(&mut AmTransaction<'_>) -> Result<(), AutomergeError>,
) -> Result<Option<automerge::Change>> {
    doc.set_actor(device.actor());
    let done = doc
        .transact_with(
            |_| CommitOptions::default().with_time(now.timestamp()),
            edit,
        )
        .map_err(|f| Error::Document(f.error))?;
    let Some(hash) = done.hash else {
        return Ok(None);
    };
    doc.get_change_by_hash(&hash)
        .map(Some)
        .ok_or_else(|| Error::BadChange {
            doc: id.to_string(),
            reason: "the change just made is missing".into(),
        })
}
