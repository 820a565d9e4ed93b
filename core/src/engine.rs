//! The engine the app talks to: one SQLite file, the directory, and the typed
//! operations of a grid worker's, dispatcher's or handler's day.

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use automerge::transaction::{CommitOptions, Transaction as AmTransaction};
use automerge::{Automerge, AutomergeError, Change, ChangeHash, ReadDoc};
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params, OptionalExtension, Transaction};

use crate::blobs::Blobs;
use crate::db::Db;
use crate::directory::{Directory, Role, User};
use crate::doc::case::{self, check_coordinates, check_note, CaseDoc, NewCase, Note, PhotoRef};
use crate::doc::patrol::{self, CheckIn, Observation, PatrolDoc};
use crate::doc::DocContent;
use crate::error::{Error, OpenError, Result};
use crate::ids::{DeptId, DeviceId, DocId, DocKind, PhotoHash, RegionLevel, UserId};
use crate::index::{self, CaseFilter, CaseSummary, DailyCompliance};
use crate::photo::PhotoLimits;
use crate::store::{self, DocImport, OutboxItem};
use crate::track::TrackPoint;
use crate::vault::DeviceKey;
use crate::watch::{Subscription, Watchers};
use crate::wipe::Live;
use crate::workflow::{fold, Action, CaseState, Entry, Outcome, Status};

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

/// Points buffered before they are written into the patrol as one chunk (5 minutes
/// at one point every 5 seconds).
pub const TRACK_CHUNK_POINTS: i64 = 60;
/// Most points accepted in one `add_track_points` call.
pub const MAX_POINTS_PER_CALL: usize = 1000;

/// A case with its folded state.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    /// The document content.
    pub doc: CaseDoc,
    /// The fold of its timeline.
    pub state: CaseState,
}

impl Case {
    /// Timeline entries paired with what became of each (applied, conflict, refused).
    pub fn timeline(&self) -> impl Iterator<Item = (&Entry, &Outcome)> {
        self.doc.timeline.iter().zip(&self.state.outcomes)
    }
}

/// A server's veto over incoming changes to one document: given the document id,
/// its content before them (`None` for a new document) and after them, and the
/// changes, `Err(reason)` refuses them all.
pub type ChangeCheck<'a> = dyn Fn(
        &DocId,
        Option<&DocContent>,
        &DocContent,
        &[automerge::Change],
    ) -> std::result::Result<(), String>
    + Sync
    + 'a;

/// Where a device's pulls stand (see [`Engine::pull_state`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullState {
    /// The server sequence number up to which changes have been applied.
    pub cursor: u64,
    /// The number of the last pull page applied.
    pub page: u64,
    /// The purge list of that page.
    pub purged: Vec<DocId>,
}

/// The photos stored on a device (see [`Engine::photo_usage`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhotoUsage {
    /// Display images stored.
    pub display: u64,
    /// Their bytes.
    pub display_bytes: u64,
    /// Thumbnails stored.
    pub thumbs: u64,
    /// Their bytes.
    pub thumb_bytes: u64,
    /// Photos of this device's cases not yet on the server (never evicted).
    pub waiting_upload: u64,
}

/// The result of importing one document's changes from another replica.
#[derive(Debug)]
pub struct ImportResult {
    /// The document.
    pub doc: DocId,
    /// What was applied, or why the document's changes were all rejected.
    pub outcome: Result<DocImport>,
}

/// A photo stored on this device, ready to attach to a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhotoInfo {
    /// The display image's hash (what a case refers to).
    pub hash: PhotoHash,
    /// The thumbnail's hash.
    pub thumb: PhotoHash,
    /// Display image width.
    pub width: u32,
    /// Display image height.
    pub height: u32,
}

/// The embedded engine.
pub struct Engine {
    /// The database, until the engine is wiped.
    db: Live,
    /// Photo files; sealed with the device's photo key on a phone.
    blobs: Blobs,
    /// One sync at a time: a token the relay rotates is stored by the sync that
    /// received it before the next sync reads it. What the syncs share is how to
    /// pace the link: a sync cut off leaves it to the retry.
    syncing: Mutex<crate::sync::Pace>,
    photo_limits: PhotoLimits,
    identity: Identity,
    directory: RwLock<Option<Arc<Directory>>>,
    clock: Clock,
    watchers: Watchers,
    /// Documents the write in progress touched; only used under the write lock.
    touched: Mutex<Vec<DocId>>,
}

fn new_entry_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
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
        Ok(Engine {
            db: Live::new(db),
            blobs,
            syncing: Mutex::new(crate::sync::Pace::default()),
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
    /// replacing the previous one.
    pub fn load_directory(&self, json: &str) -> Result<()> {
        let dir = Directory::from_json(json)?;
        let now = self.now().timestamp_millis();
        self.write(|tx| -> Result<()> {
            tx.execute(
                "INSERT INTO directory (id, json, loaded_ms) VALUES (1, ?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET json = excluded.json, loaded_ms = excluded.loaded_ms",
                params![json, now],
            )?;
            Ok(())
        })?;
        *self.directory.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(dir));
        Ok(())
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

    // ---- cases -------------------------------------------------------------

    /// Report a new case. Durable when this returns.
    pub fn report_case(&self, input: NewCase) -> Result<DocId> {
        let dir = self.directory()?;
        let me = self.me()?;
        input.validate()?;
        if dir.category(&input.category).is_none() {
            return Err(Error::InvalidInput(format!(
                "unknown category {}",
                input.category
            )));
        }
        if let Some(sub) = &input.subcategory {
            if !dir.is_subcategory_of(sub, &input.category) {
                return Err(Error::InvalidInput(format!(
                    "{sub} is not a subcategory of {}",
                    input.category
                )));
            }
        }
        let forbidden = |e: crate::access::Denied| Error::Forbidden(e.to_string());
        // Asked before the grid is, so that a handler hears why she cannot.
        crate::access::check_reporter(&me).map_err(forbidden)?;
        let grid = match (&input.grid, me.role) {
            (None, Role::GridWorker) => me.region.clone(),
            (None, _) => return Err(Error::InvalidInput("grid is required".into())),
            (Some(g), _) => g.clone(),
        };
        match dir.region(&grid) {
            Some(r) if r.level == RegionLevel::Grid => {}
            _ => {
                return Err(Error::InvalidInput(format!(
                    "{grid} is not a grid in the directory"
                )))
            }
        }
        crate::access::check_new_case(&me, &grid).map_err(forbidden)?;
        let level = match me.role.dispatch_level() {
            Some(l) if me.role != Role::Admin => l,
            _ => RegionLevel::Community,
        };
        let report = Entry {
            id: new_entry_id(),
            after: None,
            actor: me.id.clone(),
            role: me.role,
            at: self.now(),
            action: Action::Report { level },
        };
        let id = DocId::new(DocKind::Case);
        let mut content = CaseDoc::new(id.clone(), me.id.clone(), grid, input, report);
        for photo in &mut content.photos {
            *photo = self.db.read(|tx| self.photo_ref(tx, &photo.hash, &me.id))?;
        }
        self.write(|tx| -> Result<()> {
            let mut doc = Automerge::new();
            self.commit_local(tx, &id, &mut doc, |t| content.write_new(t))?;
            self.materialise(tx, &id, &doc)?;
            Ok(())
        })?;
        Ok(id)
    }

    /// Take a workflow action on a case. Checks the role, the region and the case's
    /// state, appends the entry and returns the new state.
    pub fn act(&self, id: &DocId, action: Action) -> Result<CaseState> {
        let me = self.me()?;
        self.check_department(&action)?;
        self.write(|tx| {
            let (mut doc, case) = self.load_case_in_scope(tx, id, &me)?;
            let entry = self.action_entry(&case, &me, action)?;
            self.commit_local(tx, id, &mut doc, |t| case::append_entry(t, &entry))?;
            self.materialise(tx, id, &doc)?;
            let mut timeline = case.timeline;
            timeline.push(entry);
            Ok(fold(&timeline))
        })
    }

    /// The change `author` taking `action` on case `id` would make, checked exactly
    /// as [`Engine::act`] checks it, without storing it. A server's console acts for
    /// its signed-in users this way; the change then goes through the same checked
    /// import as a device's push.
    pub fn draft_action(&self, author: &Identity, id: &DocId, action: Action) -> Result<Vec<u8>> {
        let me = self.user(&author.user)?;
        self.check_department(&action)?;
        let (mut doc, case) = self.db.read(|tx| self.load_case_in_scope(tx, id, &me))?;
        let entry = self.action_entry(&case, &me, action)?;
        self.draft_change(&mut doc, id, author, |t| case::append_entry(t, &entry))
    }

    /// Like [`Engine::add_note`], drafted for `author` (see [`Engine::draft_action`]).
    pub fn draft_note(&self, author: &Identity, id: &DocId, text: &str) -> Result<Vec<u8>> {
        check_note(text)?;
        let note = Note {
            by: author.user.clone(),
            at: self.now(),
            text: text.to_owned(),
        };
        self.draft_case_edit(
            author,
            id,
            |case| case.notes.len() < case::limits::NOTES,
            "notes",
            |t| case::add_note(t, &note),
        )
    }

    /// Like [`Engine::attach_photo`], drafted for `author`, for a photo whose files
    /// the caller stores (a server keeps photos outside its replica's database).
    pub fn draft_photo(&self, author: &Identity, id: &DocId, photo: &PhotoInfo) -> Result<Vec<u8>> {
        let photo = PhotoRef {
            hash: photo.hash.clone(),
            thumb: Some(photo.thumb.clone()),
            width: photo.width,
            height: photo.height,
            by: author.user.clone(),
            at: self.now(),
        };
        self.draft_case_edit(
            author,
            id,
            |case| case.photos.len() < case::limits::PHOTOS,
            "photos",
            |t| case::add_photo(t, &photo),
        )
    }

    /// [`Engine::edit_case`] drafted for `author`: the same checks, nothing stored.
    fn draft_case_edit(
        &self,
        author: &Identity,
        id: &DocId,
        has_room: impl FnOnce(&CaseDoc) -> bool,
        what: &str,
        edit: impl FnOnce(&mut AmTransaction<'_>) -> Result<(), AutomergeError>,
    ) -> Result<Vec<u8>> {
        let me = self.user(&author.user)?;
        let (mut doc, case) = self.db.read(|tx| self.load_case_in_scope(tx, id, &me))?;
        check_room(has_room(&case), what)?;
        self.draft_change(&mut doc, id, author, edit)
    }

    fn check_department(&self, action: &Action) -> Result<()> {
        if let Action::Dispatch { dept, .. } = action {
            if self.directory()?.department(dept).is_none() {
                return Err(Error::InvalidInput(format!("unknown department {dept}")));
            }
        }
        Ok(())
    }

    /// The timeline entry `me` taking `action` appends to `case`, once the role and
    /// the case's state allow it. Scope is checked by whoever loaded the case:
    /// `check_scope` hides cases not dispatched to a handler's department, so a
    /// handler only ever acts on her department's cases.
    fn action_entry(&self, case: &CaseDoc, me: &User, action: Action) -> Result<Entry> {
        fold(&case.timeline).check(me.role, &action)?;
        if case.timeline.len() >= case::limits::TIMELINE {
            return Err(Error::InvalidInput("the case's timeline is full".into()));
        }
        Ok(Entry {
            id: new_entry_id(),
            after: case.last_entry_id().map(str::to_owned),
            actor: me.id.clone(),
            role: me.role,
            at: self.now(),
            action,
        })
    }

    /// The deadline a dispatch of `case` gets by default: the directory's rule for
    /// its category and severity, from now.
    pub fn default_deadline(&self, case: &CaseDoc) -> Result<DateTime<Utc>> {
        let hours = self
            .directory()?
            .deadline_hours(&case.category, case.severity);
        Ok(self.now() + chrono::Duration::hours(hours.into()))
    }

    /// Dispatch a case to a department; the deadline defaults to the directory's rule
    /// for the case's category and severity.
    pub fn dispatch(
        &self,
        id: &DocId,
        dept: DeptId,
        deadline: Option<DateTime<Utc>>,
    ) -> Result<CaseState> {
        let deadline = match deadline {
            Some(d) => d,
            None => self.default_deadline(&self.get_case(id)?.doc)?,
        };
        self.act(id, Action::Dispatch { dept, deadline })
    }

    /// Add a note to a case.
    pub fn add_note(&self, id: &DocId, text: &str) -> Result<()> {
        check_note(text)?;
        let me = self.me()?;
        let note = Note {
            by: me.id.clone(),
            at: self.now(),
            text: text.to_owned(),
        };
        self.edit_case(
            id,
            &me,
            |case| case.notes.len() < case::limits::NOTES,
            "notes",
            |t| case::add_note(t, &note),
        )
    }

    /// Run a photo from the camera through the capture pipeline (limits, orientation,
    /// metadata stripped, display image and thumbnail) and store both, durably.
    /// `name` is the file's name if there is one; it must agree with the content.
    pub fn ingest_photo(&self, bytes: &[u8], name: Option<&str>) -> Result<PhotoInfo> {
        // Held to the end: a wipe meanwhile waits, then erases what was written.
        let _open = self.db.hold()?;
        let done = crate::photo::process(bytes, name, &self.photo_limits)?;
        // Files first, then the rows: a row never names a missing file.
        let note = self.blobs.note_unswept()?;
        self.blobs.write(&done.display.hash, &done.display.bytes)?;
        self.blobs.write(&done.thumb.hash, &done.thumb.bytes)?;
        let now = self.now().timestamp_millis();
        self.write(|tx| -> Result<()> {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO photos (hash, role, thumb, width, height, size, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let (d, t) = (&done.display, &done.thumb);
            insert.execute(params![
                d.hash.as_str(),
                "display",
                t.hash.as_str(),
                d.width,
                d.height,
                d.bytes.len() as i64,
                now
            ])?;
            insert.execute(params![
                t.hash.as_str(),
                "thumb",
                Option::<&str>::None,
                t.width,
                t.height,
                t.bytes.len() as i64,
                now
            ])?;
            Ok(())
        })?;
        note.clear();
        Ok(PhotoInfo {
            hash: done.display.hash,
            thumb: done.thumb.hash,
            width: done.display.width,
            height: done.display.height,
        })
    }

    /// Like [`Engine::ingest_photo`], from a file the camera wrote; its name must
    /// agree with its content, and its size is checked before it is read.
    pub fn ingest_photo_file(&self, path: &Path) -> Result<PhotoInfo> {
        let _open = self.db.hold()?;
        let size = std::fs::metadata(path)?.len();
        let max = self.photo_limits.max_file_bytes;
        if size > max as u64 {
            return Err(crate::photo::PhotoError::Size(
                usize::try_from(size).unwrap_or(usize::MAX),
                max,
            )
            .into());
        }
        let mut bytes = Vec::new();
        // Read at most one byte past the limit, whatever the file does meanwhile.
        std::io::Read::read_to_end(
            &mut std::io::Read::take(std::fs::File::open(path)?, max as u64 + 1),
            &mut bytes,
        )?;
        let name = path.file_name().and_then(|n| n.to_str());
        self.ingest_photo(&bytes, name)
    }

    /// The bytes of a stored photo (display image or thumbnail), checked against its
    /// hash. A photo file that is damaged (or not this device's) is an error, never
    /// other bytes.
    pub fn photo(&self, hash: &PhotoHash) -> Result<Vec<u8>> {
        let _open = self.db.hold()?;
        let bytes = self.blobs.read(hash).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound {
                what: "photo",
                id: hash.to_string(),
            },
            _ => Error::Io(e),
        })?;
        if crate::photo::hash_of(&bytes) != *hash {
            return Err(Error::Io(std::io::Error::other(format!(
                "stored photo {hash} does not match its hash"
            ))));
        }
        Ok(bytes)
    }

    /// Whether the photo is on this device: its row and its file.
    pub fn has_photo(&self, hash: &PhotoHash) -> Result<bool> {
        let row = self.db.read(|tx| -> Result<bool> {
            Ok(tx
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM photos WHERE hash = ?1)")?
                .query_row([hash.as_str()], |r| r.get(0))?)
        })?;
        Ok(row && self.blobs.exists(hash))
    }

    /// Photos of this device's cases that the server does not have yet, in upload
    /// order: every thumbnail before any display image, oldest first; each with
    /// its size in bytes.
    pub fn photos_to_upload(&self) -> Result<Vec<(PhotoHash, u64)>> {
        self.db.read(|tx| -> Result<Vec<(PhotoHash, u64)>> {
            let mut stmt = tx.prepare_cached(
                "SELECT p.hash, p.size FROM photos p
                 WHERE p.uploaded_ms IS NULL
                   AND EXISTS (SELECT 1 FROM case_photos c WHERE c.hash = p.hash)
                 ORDER BY p.role = 'display', p.created_ms, p.hash",
            )?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.into_iter()
                .map(|(h, size)| Ok((h.parse()?, size.max(0) as u64)))
                .collect()
        })
    }

    /// The photos stored on this device: how many and how many bytes, display images
    /// and thumbnails apart, and how many wait for upload — what a storage setting
    /// shows beside the quota given to [`Engine::evict_photos`].
    pub fn photo_usage(&self) -> Result<PhotoUsage> {
        self.db.read(|tx| -> Result<PhotoUsage> {
            let mut usage = PhotoUsage::default();
            let mut stmt = tx.prepare_cached(
                "SELECT role, count(*), coalesce(sum(size), 0),
                        count(*) FILTER (WHERE uploaded_ms IS NULL
                            AND EXISTS (SELECT 1 FROM case_photos c WHERE c.hash = p.hash))
                 FROM photos p GROUP BY role",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let (role, count, bytes, waiting): (String, i64, i64, i64) =
                    (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
                let (count, bytes) = (count.max(0) as u64, bytes.max(0) as u64);
                match role.as_str() {
                    "display" => (usage.display, usage.display_bytes) = (count, bytes),
                    _ => (usage.thumbs, usage.thumb_bytes) = (count, bytes),
                }
                usage.waiting_upload += waiting.max(0) as u64;
            }
            Ok(usage)
        })
    }

    /// Keep the display images on this device within `max_bytes` by removing those
    /// that can be fetched again: already on the server, and every case showing them
    /// is closed (archived, evaluated or invalid). Oldest go first; thumbnails and
    /// anything not yet uploaded are never removed. Returns the bytes freed.
    pub fn evict_photos(&self, max_bytes: u64) -> Result<u64> {
        let _open = self.db.hold()?;
        let candidates: Vec<(String, i64)> = self.db.read(|tx| -> Result<_> {
            let used: i64 = tx.query_row(
                "SELECT coalesce(sum(size), 0) FROM photos WHERE role = 'display'",
                [],
                |r| r.get(0),
            )?;
            let mut over = used - i64::try_from(max_bytes).unwrap_or(i64::MAX);
            if over <= 0 {
                return Ok(Vec::new());
            }
            let mut stmt = tx.prepare(
                "SELECT p.hash, p.size FROM photos p
                 WHERE p.role = 'display' AND p.uploaded_ms IS NOT NULL
                   AND NOT EXISTS (
                       SELECT 1 FROM case_photos cp JOIN cases c USING (doc_id)
                       WHERE cp.hash = p.hash
                         AND c.status NOT IN ('archived', 'evaluated', 'invalid'))
                 ORDER BY p.created_ms, p.hash",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                if over <= 0 {
                    break;
                }
                let (hash, size): (String, i64) = row?;
                over -= size;
                out.push((hash, size));
            }
            Ok(out)
        })?;
        if candidates.is_empty() {
            return Ok(0);
        }
        let note = self.blobs.note_unswept()?;
        let mut freed = 0;
        for (hash, size) in candidates {
            let hash: PhotoHash = hash.parse()?;
            // Row first: a crash before the file goes leaves a file the next open
            // sweeps (the note says so).
            self.write(|tx| -> Result<()> {
                tx.execute("DELETE FROM photos WHERE hash = ?1", [hash.as_str()])?;
                Ok(())
            })?;
            self.blobs.remove(&hash)?;
            freed += size.max(0) as u64;
        }
        note.clear();
        Ok(freed)
    }

    /// Record that the server has stored a photo.
    pub fn mark_photo_uploaded(&self, hash: &PhotoHash) -> Result<()> {
        let now = self.now().timestamp_millis();
        self.write(|tx| -> Result<()> {
            tx.execute(
                "UPDATE photos SET uploaded_ms = ?2 WHERE hash = ?1 AND uploaded_ms IS NULL",
                params![hash.as_str(), now],
            )?;
            Ok(())
        })
    }

    /// Store a photo fetched from the server, after checking it is the photo a case
    /// on this device refers to and that its content matches its hash.
    pub fn store_fetched_photo(&self, hash: &PhotoHash, bytes: &[u8]) -> Result<()> {
        let _open = self.db.hold()?;
        if crate::photo::hash_of(bytes) != *hash {
            return Err(Error::InvalidInput(format!(
                "the bytes received for photo {hash} do not match its hash"
            )));
        }
        let role: Option<String> = self.db.read(|tx| -> Result<_> {
            Ok(tx
                .prepare_cached("SELECT role FROM case_photos WHERE hash = ?1 LIMIT 1")?
                .query_row([hash.as_str()], |r| r.get(0))
                .optional()?)
        })?;
        let role = role.ok_or_else(|| Error::NotFound {
            what: "photo",
            id: hash.to_string(),
        })?;
        let (width, height) = image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()?
            .into_dimensions()
            .map_err(|e| Error::InvalidInput(format!("photo {hash}: {e}")))?;
        let note = self.blobs.note_unswept()?;
        self.blobs.write(hash, bytes)?;
        let now = self.now().timestamp_millis();
        self.write(|tx| -> Result<()> {
            tx.execute(
                "INSERT OR IGNORE INTO photos
                    (hash, role, thumb, width, height, size, created_ms, uploaded_ms)
                 VALUES (?1, ?2, NULL, ?3, ?4, ?5, ?6, ?6)",
                params![hash.as_str(), role, width, height, bytes.len() as i64, now],
            )?;
            Ok(())
        })?;
        note.clear();
        Ok(())
    }

    fn photo_info(tx: &Transaction<'_>, hash: &PhotoHash) -> Result<PhotoInfo> {
        tx.prepare_cached(
            "SELECT thumb, width, height FROM photos WHERE hash = ?1 AND role = 'display'",
        )?
        .query_row([hash.as_str()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, u32>(1)?,
                r.get::<_, u32>(2)?,
            ))
        })
        .optional()?
        .map(|(thumb, width, height)| {
            Ok(PhotoInfo {
                hash: hash.clone(),
                thumb: thumb.parse()?,
                width,
                height,
            })
        })
        .unwrap_or_else(|| {
            Err(Error::NotFound {
                what: "photo",
                id: hash.to_string(),
            })
        })
    }

    fn photo_ref(&self, tx: &Transaction<'_>, hash: &PhotoHash, by: &UserId) -> Result<PhotoRef> {
        let info = Self::photo_info(tx, hash)?;
        Ok(PhotoRef {
            hash: info.hash,
            thumb: Some(info.thumb),
            width: info.width,
            height: info.height,
            by: by.clone(),
            at: self.now(),
        })
    }

    /// Attach a photo stored on this device (see [`Engine::ingest_photo`]) to a case.
    pub fn attach_photo(&self, id: &DocId, hash: PhotoHash) -> Result<()> {
        let me = self.me()?;
        let photo = self.db.read(|tx| self.photo_ref(tx, &hash, &me.id))?;
        self.edit_case(
            id,
            &me,
            |case| case.photos.len() < case::limits::PHOTOS,
            "photos",
            |t| case::add_photo(t, &photo),
        )
    }

    fn edit_case(
        &self,
        id: &DocId,
        me: &User,
        has_room: impl FnOnce(&CaseDoc) -> bool,
        what: &str,
        edit: impl FnOnce(&mut AmTransaction<'_>) -> Result<(), AutomergeError>,
    ) -> Result<()> {
        self.write(|tx| {
            let (mut doc, case) = self.load_case_in_scope(tx, id, me)?;
            check_room(has_room(&case), what)?;
            self.commit_local(tx, id, &mut doc, edit)?;
            self.materialise(tx, id, &doc)
        })
    }

    /// Whether `me` may see and act on `case` at all: within their region, or, for a
    /// department handler, dispatched to their department ([`crate::access::Scope`]).
    fn check_scope(&self, me: &User, case: &CaseDoc) -> Result<()> {
        if crate::access::scope_of(me).sees_case(case) {
            Ok(())
        } else {
            // The same answer as for a case that does not exist: no probing by id.
            Err(Error::NotFound {
                what: "case",
                id: case.id.to_string(),
            })
        }
    }

    /// Load a case the user may see, as a document and as content.
    fn load_case_in_scope(
        &self,
        tx: &Transaction<'_>,
        id: &DocId,
        me: &User,
    ) -> Result<(Automerge, CaseDoc)> {
        let doc = self.load_case_doc(tx, id)?;
        let case = CaseDoc::read(&doc, id).map_err(Error::malformed(id))?;
        self.check_scope(me, &case)?;
        Ok((doc, case))
    }

    fn load_case_doc(&self, tx: &Transaction<'_>, id: &DocId) -> Result<Automerge> {
        if id.kind() != DocKind::Case {
            return Err(Error::NotFound {
                what: "case",
                id: id.to_string(),
            });
        }
        store::load(tx, id)?.ok_or_else(|| Error::NotFound {
            what: "case",
            id: id.to_string(),
        })
    }

    /// A case with its timeline and state (loads the one document).
    pub fn get_case(&self, id: &DocId) -> Result<Case> {
        self.get_case_as(&self.me()?, id)
    }

    /// A case as `user` may see it: the same "not found" as for a missing case when
    /// it is outside their scope. For a server answering for its users.
    pub fn get_case_as(&self, user: &User, id: &DocId) -> Result<Case> {
        let (_, doc) = self.db.read(|tx| self.load_case_in_scope(tx, id, user))?;
        let state = fold(&doc.timeline);
        Ok(Case { doc, state })
    }

    /// List cases from the index (no document is loaded).
    pub fn list_cases(&self, filter: &CaseFilter) -> Result<Vec<CaseSummary>> {
        self.db.read(|tx| index::list_cases(tx, filter))
    }

    /// The loop's figures over the cases `filter` selects (see [`crate::stats`]).
    pub fn statistics(&self, filter: &CaseFilter) -> Result<crate::stats::Summary> {
        self.db.read(|tx| crate::stats::summary(tx, filter))
    }

    /// The loop's figures per grid, reporter, category or month.
    pub fn statistics_by(
        &self,
        filter: &CaseFilter,
        by: crate::stats::GroupBy,
    ) -> Result<Vec<crate::stats::Group>> {
        self.db.read(|tx| crate::stats::grouped(tx, filter, by))
    }

    /// Count cases by status from the index.
    pub fn count_cases(&self, filter: &CaseFilter) -> Result<Vec<(Status, u64)>> {
        self.db.read(|tx| index::count_by_status(tx, filter))
    }

    /// The filter for "assigned to me": a handler's department's open cases, a
    /// dispatcher's region's cases waiting for a dispatcher, a grid worker's cases
    /// waiting for her verification.
    pub fn assigned_to_me(&self) -> Result<CaseFilter> {
        let me = self.me()?;
        let scope = crate::access::scope_of(&me)
            .case_filter()
            .map_err(|e| Error::Forbidden(e.to_string()))?;
        let statuses = match me.role {
            Role::DepartmentHandler => vec![Status::Dispatched],
            Role::GridWorker => vec![Status::Handled],
            _ => vec![
                Status::Reported,
                Status::Accepted,
                Status::Verified,
                Status::Archived,
            ],
        };
        Ok(CaseFilter { statuses, ..scope })
    }

    // ---- patrols -----------------------------------------------------------

    /// Start a patrol of the grid worker's grid.
    pub fn start_patrol(&self) -> Result<DocId> {
        let me = self.me()?;
        if me.role != Role::GridWorker {
            return Err(Error::Forbidden("only grid workers patrol".into()));
        }
        let id = DocId::new(DocKind::Patrol);
        let now = self.now();
        self.write(|tx| {
            let mut doc = Automerge::new();
            self.commit_local(tx, &id, &mut doc, |t| {
                PatrolDoc::write_new(t, &id, &me.id, &me.region, now)
            })?;
            self.materialise(tx, &id, &doc)
        })?;
        Ok(id)
    }

    fn own_running_patrol(
        &self,
        tx: &Transaction<'_>,
        id: &DocId,
    ) -> Result<(Automerge, PatrolDoc)> {
        let not_found = || Error::NotFound {
            what: "patrol",
            id: id.to_string(),
        };
        if id.kind() != DocKind::Patrol {
            return Err(not_found());
        }
        let doc = store::load(tx, id)?.ok_or_else(not_found)?;
        let patrol = PatrolDoc::read(&doc, id).map_err(Error::malformed(id))?;
        if patrol.worker != self.identity.user {
            return Err(not_found());
        }
        if patrol.ended.is_some() {
            return Err(Error::InvalidInput("the patrol has already ended".into()));
        }
        Ok((doc, patrol))
    }

    /// Record GPS points. They are durable at once and written into the patrol
    /// document in chunks of [`TRACK_CHUNK_POINTS`].
    pub fn add_track_points(&self, id: &DocId, points: &[TrackPoint]) -> Result<()> {
        if points.len() > MAX_POINTS_PER_CALL {
            return Err(Error::InvalidInput(format!(
                "at most {MAX_POINTS_PER_CALL} points per call"
            )));
        }
        for p in points {
            check_coordinates(p.lat, p.lon)?;
        }
        self.write(|tx| {
            let (_, patrol) = self.own_running_patrol(tx, id)?;
            if patrol.track_chunks >= patrol::limits::TRACK_CHUNKS {
                return Err(Error::InvalidInput(
                    "the patrol's track is full; end it and start a new patrol".into(),
                ));
            }
            let mut insert = tx.prepare_cached(
                "INSERT INTO track_pending (doc_id, at_ms, lat, lon) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for p in points {
                insert.execute(params![id.as_str(), p.at.timestamp_millis(), p.lat, p.lon])?;
            }
            let pending: i64 = tx.query_row(
                "SELECT count(*) FROM track_pending WHERE doc_id = ?1",
                [id.as_str()],
                |r| r.get(0),
            )?;
            if pending >= TRACK_CHUNK_POINTS {
                self.flush_track(tx, id)?;
            } else {
                tx.execute(
                    "UPDATE patrols SET track_points = track_points + ?2 WHERE doc_id = ?1",
                    params![id.as_str(), points.len() as i64],
                )?;
            }
            Ok(())
        })
    }

    fn pending_points(tx: &Transaction<'_>, id: &DocId) -> Result<Vec<TrackPoint>> {
        let mut stmt = tx.prepare_cached(
            "SELECT at_ms, lat, lon FROM track_pending WHERE doc_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([id.as_str()], |r| {
            Ok(TrackPoint {
                at: DateTime::from_timestamp_millis(r.get(0)?).unwrap_or_default(),
                lat: r.get(1)?,
                lon: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Move buffered points of one patrol into its document.
    fn flush_track(&self, tx: &Transaction<'_>, id: &DocId) -> Result<()> {
        let points = Self::pending_points(tx, id)?;
        if points.is_empty() {
            return Ok(());
        }
        let mut doc = store::load(tx, id)?.ok_or_else(|| Error::NotFound {
            what: "patrol",
            id: id.to_string(),
        })?;
        let chunks = PatrolDoc::read(&doc, id)
            .map_err(Error::malformed(id))?
            .track_chunks;
        if chunks >= patrol::limits::TRACK_CHUNKS {
            // add_track_points refuses points once the track is full, so this only
            // leaves points that were already pending; they stay durable here
            // rather than block every other document's sync.
            return Ok(());
        }
        for chunk in points.chunks(crate::track::MAX_POINTS_PER_CHUNK) {
            self.commit_local(tx, id, &mut doc, |t| patrol::append_track(t, chunk))?;
        }
        tx.execute("DELETE FROM track_pending WHERE doc_id = ?1", [id.as_str()])?;
        self.materialise(tx, id, &doc)
    }

    /// Write every patrol's buffered points into its document (done before changes
    /// are exported, so a sync carries them).
    pub fn flush_tracks(&self) -> Result<()> {
        self.write(|tx| {
            let ids: Vec<String> = tx
                .prepare("SELECT DISTINCT doc_id FROM track_pending")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            for id in ids {
                self.flush_track(tx, &id.parse()?)?;
            }
            Ok(())
        })
    }

    /// Check in at a place or household.
    pub fn check_in(&self, id: &DocId, place: &str, lat: f64, lon: f64) -> Result<()> {
        check_coordinates(lat, lon)?;
        check_patrol_text("place", place)?;
        let c = CheckIn {
            at: self.now(),
            place: place.to_owned(),
            lat,
            lon,
        };
        self.edit_patrol(
            id,
            |p| p.checkins.len() < patrol::limits::CHECKINS,
            |t| patrol::add_checkin(t, &c),
        )
    }

    /// Note something seen on patrol.
    pub fn add_observation(&self, id: &DocId, text: &str) -> Result<()> {
        check_patrol_text("observation", text)?;
        let o = Observation {
            at: self.now(),
            text: text.to_owned(),
        };
        self.edit_patrol(
            id,
            |p| p.observations.len() < patrol::limits::OBSERVATIONS,
            |t| patrol::add_observation(t, &o),
        )
    }

    /// Record that a case was reported during this patrol.
    pub fn link_case_to_patrol(&self, id: &DocId, case: &DocId) -> Result<()> {
        if case.kind() != DocKind::Case {
            return Err(Error::InvalidInput(format!("{case} is not a case")));
        }
        self.edit_patrol(
            id,
            |p| p.cases.len() < patrol::limits::CASES,
            |t| patrol::add_case(t, case),
        )
    }

    /// End a patrol; buffered points are written into it first.
    pub fn end_patrol(&self, id: &DocId) -> Result<()> {
        let now = self.now();
        self.write(|tx| {
            self.own_running_patrol(tx, id)?;
            self.flush_track(tx, id)?;
            let mut doc = store::load(tx, id)?.ok_or_else(|| Error::NotFound {
                what: "patrol",
                id: id.to_string(),
            })?;
            self.commit_local(tx, id, &mut doc, |t| patrol::end(t, now))?;
            self.materialise(tx, id, &doc)
        })
    }

    fn edit_patrol(
        &self,
        id: &DocId,
        has_room: impl FnOnce(&PatrolDoc) -> bool,
        edit: impl FnOnce(&mut AmTransaction<'_>) -> Result<(), AutomergeError>,
    ) -> Result<()> {
        self.write(|tx| {
            let (mut doc, p) = self.own_running_patrol(tx, id)?;
            if !has_room(&p) {
                return Err(Error::InvalidInput("the patrol log is full".into()));
            }
            self.commit_local(tx, id, &mut doc, edit)?;
            self.materialise(tx, id, &doc)
        })
    }

    /// A patrol with its whole track (buffered points included).
    pub fn get_patrol(&self, id: &DocId) -> Result<PatrolDoc> {
        let me = self.me()?;
        let not_found = || Error::NotFound {
            what: "patrol",
            id: id.to_string(),
        };
        if id.kind() != DocKind::Patrol {
            return Err(not_found());
        }
        self.db.read(|tx| {
            let doc = store::load(tx, id)?.ok_or_else(not_found)?;
            let mut p = PatrolDoc::read(&doc, id).map_err(Error::malformed(id))?;
            if !crate::access::scope_of(&me).sees_patrol(&p) {
                return Err(not_found());
            }
            p.track.extend(Self::pending_points(tx, id)?);
            Ok(p)
        })
    }

    /// Each worker's compliance with "two patrols a day, two hours each" on each day
    /// from `from` to `to` (China Standard Time), zero-filled. At most 366 days.
    pub fn patrol_compliance(
        &self,
        workers: &[UserId],
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DailyCompliance>> {
        let days = (to - from).num_days();
        if !(0..366).contains(&days) {
            return Err(Error::InvalidInput(
                "the date range must be 1 to 366 days".into(),
            ));
        }
        self.db
            .read(|tx| index::patrol_compliance(tx, workers, from, to))
    }

    // ---- replication -------------------------------------------------------

    /// Read any document on this replica, without the user's scope check: for a
    /// server, which holds every document of its region.
    pub fn read_doc(&self, id: &DocId) -> Result<Option<DocContent>> {
        self.db.read(|tx| {
            store::load(tx, id)?
                .map(|doc| DocContent::read(&doc, id).map_err(Error::malformed(id)))
                .transpose()
        })
    }

    /// Every document on this replica.
    pub fn doc_ids(&self) -> Result<Vec<DocId>> {
        self.db.read(|tx| store::doc_ids(tx, None))
    }

    /// The heads of a document (empty if this replica does not have it).
    pub fn heads(&self, id: &DocId) -> Result<Vec<ChangeHash>> {
        self.db.read(|tx| {
            Ok(store::load(tx, id)?
                .map(|d| d.get_heads())
                .unwrap_or_default())
        })
    }

    /// The changes of a document that a replica whose heads are `have` lacks, in
    /// causal order (`raw_bytes()` is what goes on the wire).
    pub fn changes_since(&self, id: &DocId, have: &[ChangeHash]) -> Result<Vec<Change>> {
        self.db.read(|tx| {
            Ok(store::load(tx, id)?
                .map(|d| d.get_changes(have))
                .unwrap_or_default())
        })
    }

    /// Import changes from another replica, all documents in one transaction. The
    /// changes come from the checked decoder (`sync::decode_change`); each
    /// document's are bounded in total, applied, checked against the document
    /// schema and only then stored and indexed; a document whose changes fail is
    /// left as it was and reported.
    pub fn import_changes(&self, batch: Vec<(DocId, Vec<Change>)>) -> Result<Vec<ImportResult>> {
        let now_ms = self.now().timestamp_millis();
        self.write(|tx| self.import_batch(tx, batch, None, now_ms))
    }

    /// Like [`Engine::import_changes`], but each document's new changes are shown to
    /// `check` with the document before and after them; if `check` refuses, none of
    /// them is stored. This is how a server authorises what a device pushes.
    pub fn import_changes_checked(
        &self,
        batch: Vec<(DocId, Vec<Change>)>,
        check: &ChangeCheck<'_>,
    ) -> Result<Vec<ImportResult>> {
        let now_ms = self.now().timestamp_millis();
        self.write(|tx| self.import_batch(tx, batch, Some(check), now_ms))
    }

    /// Import a batch: read what is stored (I/O), then decode, apply, validate and
    /// check every document on all cores (CPU), then store and index them in order.
    /// Bad input is reported per document; a failing disk aborts the batch.
    fn import_batch(
        &self,
        tx: &Transaction<'_>,
        batch: Vec<(DocId, Vec<Change>)>,
        check: Option<&ChangeCheck<'_>>,
        now_ms: i64,
    ) -> Result<Vec<ImportResult>> {
        let ids: Vec<DocId> = batch.iter().map(|(id, _)| id.clone()).collect();
        let stored = ids
            .iter()
            .map(|id| store::load_stored(tx, id))
            .collect::<Result<Vec<_>>>()?;
        let work: Vec<_> = batch.into_iter().zip(stored).collect();
        let prepared = parallel_map(work, |((id, changes), stored)| {
            prepare_import(&id, changes, stored, check)
        });
        let mut results = Vec::with_capacity(ids.len());
        for (id, prepared) in ids.iter().zip(prepared) {
            let outcome = prepared.and_then(|p| {
                if let (Some(doc), Some(content)) = (&p.doc, &p.report.content) {
                    store::persist(tx, id, doc, &p.applied, false, now_ms)?;
                    Self::materialise_content(tx, id, content)?;
                    self.touch(id);
                }
                Ok(p.report)
            });
            if let Err(Error::Storage(e)) = outcome {
                return Err(Error::Storage(e));
            }
            results.push(ImportResult {
                doc: id.clone(),
                outcome,
            });
        }
        Ok(results)
    }

    /// In-process replication: import everything `other` has that this replica
    /// lacks, in one transaction. Used by tests, the demo and simulations; devices
    /// talk to a server through the sync protocol instead.
    pub fn merge_from(&self, other: &Engine) -> Result<Vec<ImportResult>> {
        other.flush_tracks()?;
        let mut batch = Vec::new();
        for id in other.doc_ids()? {
            let changes = other.changes_since(&id, &self.heads(&id)?)?;
            if !changes.is_empty() {
                batch.push((id, changes));
            }
        }
        self.import_changes(batch)
    }

    /// Local changes not yet acknowledged by the server, oldest first, up to about
    /// `max_bytes` (at least one). Buffered track points are written out first.
    pub fn outbox_pending(&self, max_bytes: usize) -> Result<Vec<OutboxItem>> {
        self.flush_tracks()?;
        self.db.read(|tx| store::outbox_pending(tx, max_bytes))
    }

    /// How many local changes wait for the server.
    pub fn outbox_len(&self) -> Result<u64> {
        Ok(self.outbox_size()?.0)
    }

    /// Local changes not yet acknowledged by the server, and their bytes.
    pub fn outbox_size(&self) -> Result<(u64, u64)> {
        self.db.read(|tx| -> Result<(u64, u64)> {
            let (n, bytes): (i64, i64) = tx.query_row(
                "SELECT count(*), coalesce(sum(length(bytes)), 0) FROM outbox
                 WHERE acked_ms IS NULL",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok((n.max(0) as u64, bytes.max(0) as u64))
        })
    }

    /// Record that the server has durably stored these changes.
    pub fn mark_delivered(&self, hashes: &[ChangeHash]) -> Result<usize> {
        let now = self.now().timestamp_millis();
        self.write(|tx| store::mark_acked(tx, hashes, now))
    }

    // ---- sync state ----------------------------------------------------------

    /// Remember the server and this device's token (from enrollment).
    pub fn set_server(&self, url: &str, token: &str) -> Result<()> {
        self.write(|tx| -> Result<()> {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('server_url', ?1), ('token', ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![url, token],
            )?;
            Ok(())
        })
    }

    /// Remember how to reach the server safely: the certificates to trust for
    /// `https://`, and whether plain `http://` off this machine is allowed (see
    /// [`crate::sync::ServerSecurity`]).
    pub fn set_server_security(&self, security: &crate::sync::ServerSecurity) -> Result<()> {
        if let Some(pem) = &security.ca_pem {
            if pem.len() > 64 * 1024 {
                return Err(Error::InvalidInput(
                    "certificates: at most 64 KiB of PEM".into(),
                ));
            }
        }
        self.write(|tx| -> Result<()> {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('server_ca_pem', ?1), ('server_plain_http', ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![
                    security.ca_pem.clone().unwrap_or_default(),
                    if security.allow_plain_http { "1" } else { "0" }
                ],
            )?;
            Ok(())
        })
    }

    /// How to reach the server safely, as last set (by default: public roots, no
    /// plain HTTP off this machine).
    pub fn server_security(&self) -> Result<crate::sync::ServerSecurity> {
        self.db.read(|tx| -> Result<_> {
            let get = |k: &str| -> rusqlite::Result<Option<String>> {
                tx.query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0))
                    .optional()
            };
            Ok(crate::sync::ServerSecurity {
                ca_pem: get("server_ca_pem")?.filter(|p| !p.is_empty()),
                allow_plain_http: get("server_plain_http")?.as_deref() == Some("1"),
            })
        })
    }

    /// How far into its server's shared change log this replica has applied
    /// (a relay node's own bookkeeping; 0 if never set).
    pub fn replica_position(&self) -> Result<u64> {
        self.db.read(|tx| -> Result<_> {
            let v: Option<String> = tx
                .query_row(
                    "SELECT value FROM meta WHERE key = 'replica_position'",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
        })
    }

    /// Record how far into its server's shared change log this replica has applied.
    pub fn set_replica_position(&self, seq: u64) -> Result<()> {
        self.write(|tx| -> Result<()> {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('replica_position', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [seq.to_string()],
            )?;
            Ok(())
        })
    }

    /// The server URL and token, if this device has been enrolled.
    pub fn server(&self) -> Result<Option<(String, String)>> {
        self.db.read(|tx| -> Result<_> {
            let get = |k: &str| -> rusqlite::Result<Option<String>> {
                tx.query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0))
                    .optional()
            };
            Ok(get("server_url")?.zip(get("token")?))
        })
    }

    /// Where this device's pulls stand: the server sequence number up to which it
    /// has applied changes, and the number and purge list of the last page it
    /// applied (to acknowledge).
    pub fn pull_state(&self) -> Result<PullState> {
        self.db.read(|tx| -> Result<_> {
            let get = |k: &str| -> rusqlite::Result<Option<String>> {
                tx.query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0))
                    .optional()
            };
            Ok(PullState {
                cursor: get("pull_cursor")?
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
                page: get("pull_page")?.and_then(|v| v.parse().ok()).unwrap_or(0),
                purged: get("purge_ack")?
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::parse)
                    .collect::<Result<_, _>>()?,
            })
        })
    }

    /// Apply one pull page: its changes, its purges and the new cursor, in one
    /// transaction, so a crash leaves either all of it or none. Returns the import
    /// results and how many documents were removed.
    pub fn apply_pull(
        &self,
        changes: Vec<(DocId, Change)>,
        purge: &[DocId],
        cursor: u64,
        page: u64,
    ) -> Result<(Vec<ImportResult>, usize)> {
        self.apply_pull_with_token(changes, purge, cursor, page, None)
    }

    /// Like [`Engine::apply_pull`], storing the page's new token (token rotation)
    /// in the same transaction: the device never has the page without the token
    /// the server issued with it, nor the token without the page.
    pub fn apply_pull_with_token(
        &self,
        changes: Vec<(DocId, Change)>,
        purge: &[DocId],
        cursor: u64,
        page: u64,
        new_token: Option<&str>,
    ) -> Result<(Vec<ImportResult>, usize)> {
        let batch = group_by_doc(changes);
        let now_ms = self.now().timestamp_millis();
        self.write(|tx| {
            // A document that came back into scope is no longer to be removed.
            for (id, _) in &batch {
                tx.execute("DELETE FROM purge_pending WHERE doc_id = ?1", [id.as_str()])?;
            }
            let results = self.import_batch(tx, batch, None, now_ms)?;
            for id in purge {
                tx.execute(
                    "INSERT OR IGNORE INTO purge_pending (doc_id)
                     SELECT doc_id FROM docs WHERE doc_id = ?1",
                    [id.as_str()],
                )?;
            }
            let (purged, photos) = self.settle_purges(tx)?;
            let ack = purge
                .iter()
                .map(DocId::as_str)
                .collect::<Vec<_>>()
                .join(" ");
            tx.execute(
                "INSERT INTO meta (key, value)
                 VALUES ('pull_cursor', ?1), ('purge_ack', ?2), ('pull_page', ?3)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![cursor.to_string(), ack, page.to_string()],
            )?;
            if let Some(token) = new_token {
                tx.execute("UPDATE meta SET value = ?1 WHERE key = 'token'", [token])?;
            }
            Ok((results, purged, photos))
        })
        .map(|(results, purged, photos)| {
            self.remove_photo_files(photos);
            (results, purged)
        })
    }

    /// Record the server's answer to a push: acknowledged changes leave the outbox;
    /// rejected ones leave it with their reason.
    ///
    /// A `deferred` change (the server lacks a dependency) that depends on a change
    /// the server refused can never be accepted: it is refused here too, with that
    /// reason, so it does not wait in the outbox for ever.
    pub fn record_push_results(
        &self,
        acked: &[ChangeHash],
        rejected: &[(ChangeHash, String)],
        deferred: &[ChangeHash],
    ) -> Result<()> {
        let now = self.now().timestamp_millis();
        self.write(|tx| {
            store::mark_acked(tx, acked, now)?;
            store::mark_rejected(tx, rejected, now)?;
            let doomed = store::depending_on_rejections(tx, deferred)?;
            let why = "depends on a change the server refused".to_owned();
            let doomed: Vec<_> = doomed.into_iter().map(|h| (h, why.clone())).collect();
            store::mark_rejected(tx, &doomed, now)?;
            self.settle_purges(tx).map(|(_, photos)| photos)
        })
        .map(|photos| self.remove_photo_files(photos))
    }

    /// Changes the server refused, newest first, with its reasons.
    pub fn rejected_changes(&self) -> Result<Vec<(DocId, ChangeHash, String)>> {
        self.db.read(|tx| -> Result<_> {
            let mut stmt = tx.prepare(
                "SELECT doc_id, hash, reason FROM rejections ORDER BY rejected_ms DESC, hash",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (doc, hash, reason) = row?;
                let hash = ChangeHash::try_from(&hash[..])
                    .map_err(|_| Error::InvalidInput("stored hash is not 32 bytes".into()))?;
                out.push((doc.parse()?, hash, reason));
            }
            Ok(out)
        })
    }

    /// Remove documents the server no longer shows this device, once none of their
    /// local changes is still waiting to be delivered: unsent work is never dropped.
    /// Returns how many documents went and the photo files to remove after commit.
    fn settle_purges(&self, tx: &Transaction<'_>) -> Result<(usize, PhotoRemoval)> {
        let ids: Vec<String> = tx
            .prepare_cached("SELECT doc_id FROM purge_pending")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut purged = 0;
        let mut photos = Vec::new();
        for id in ids {
            let id: DocId = id.parse()?;
            if !store::has_unsettled(tx, &id)? {
                photos.extend(store::purge(tx, &id)?);
                self.touch(&id);
                purged += 1;
            }
        }
        // Noted before the rows go: a crash after the commit leaves files to sweep.
        let note = (!photos.is_empty())
            .then(|| self.blobs.note_unswept())
            .transpose()?;
        Ok((purged, PhotoRemoval { photos, note }))
    }

    /// Remove the files of photos whose rows a committed purge deleted. A file that
    /// cannot be removed now is swept at the next open (its note stays).
    fn remove_photo_files(&self, removal: PhotoRemoval) {
        let all = removal
            .photos
            .iter()
            .map(|hash| self.blobs.remove(hash))
            .fold(true, |ok, r| ok & r.is_ok());
        if let (true, Some(note)) = (all, removal.note) {
            note.clear();
        }
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

    /// Hold the sync lock (one sync at a time on this engine).
    pub(crate) fn one_sync(&self) -> std::sync::MutexGuard<'_, crate::sync::Pace> {
        self.syncing.lock().unwrap_or_else(|e| e.into_inner())
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

    /// One change to `doc` made by `author`'s device, as bytes, not stored.
    fn draft_change(
        &self,
        doc: &mut Automerge,
        id: &DocId,
        author: &Identity,
        edit: impl FnOnce(&mut AmTransaction<'_>) -> Result<(), AutomergeError>,
    ) -> Result<Vec<u8>> {
        make_change(doc, id, &author.device, self.now(), edit)?
            .map(|c| c.raw_bytes().to_vec())
            .ok_or_else(|| Error::InvalidInput("the edit changes nothing".into()))
    }

    /// Fold a document into the index tables.
    fn materialise(&self, tx: &Transaction<'_>, id: &DocId, doc: &Automerge) -> Result<()> {
        let content = DocContent::read(doc, id).map_err(Error::malformed(id))?;
        Self::materialise_content(tx, id, &content)
    }

    fn materialise_content(tx: &Transaction<'_>, id: &DocId, content: &DocContent) -> Result<()> {
        match content {
            DocContent::Case(case) => index::index_case(tx, case, &fold(&case.timeline)),
            DocContent::Patrol(p) => index::index_patrol(tx, p, &Self::pending_points(tx, id)?),
        }
    }
}

fn check_room(has_room: bool, what: &str) -> Result<()> {
    if has_room {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "the case has the maximum number of {what}"
        )))
    }
}

/// Photo files whose rows a purge deleted, to remove once it has committed, with the
/// note that makes the next open sweep if that does not happen.
struct PhotoRemoval {
    photos: Vec<PhotoHash>,
    note: Option<crate::blobs::SweepNote>,
}

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

/// A document's import, worked out and not yet written.
struct PreparedImport {
    /// The merged document, when there is something to store.
    doc: Option<Automerge>,
    applied: Vec<automerge::Change>,
    report: DocImport,
}

/// The CPU half of an import: bound, apply, validate, check.
fn prepare_import(
    id: &DocId,
    changes: Vec<Change>,
    stored: Option<store::StoredDoc>,
    check: Option<&ChangeCheck<'_>>,
) -> Result<PreparedImport> {
    store::check_import_size(id, &changes)?;
    let mut doc = match stored {
        Some(s) => s.build(id)?,
        None => Automerge::new(),
    };
    let before = match check {
        Some(_) if !doc.get_heads().is_empty() => {
            Some(DocContent::read(&doc, id).map_err(Error::malformed(id))?)
        }
        _ => None,
    };
    let (applied, mut report) = store::apply(id, &mut doc, changes)?;
    if applied.is_empty() {
        return Ok(PreparedImport {
            doc: None,
            applied,
            report,
        });
    }
    let after = DocContent::read(&doc, id).map_err(Error::malformed(id))?;
    if let Some(check) = check {
        if let Err(reason) = check(id, before.as_ref(), &after, &applied) {
            report.rejected = report
                .applied
                .drain(..)
                .map(|h| (h, reason.clone()))
                .collect();
            return Ok(PreparedImport {
                doc: None,
                applied: Vec::new(),
                report,
            });
        }
    }
    report.content = Some(after);
    Ok(PreparedImport {
        doc: Some(doc),
        applied,
        report,
    })
}

/// Map `f` over `items` on up to four threads, keeping the order. Small inputs stay
/// on the calling thread.
fn parallel_map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    if threads < 2 || items.len() < 64 {
        return items.into_iter().map(f).collect();
    }
    let per = items.len().div_ceil(threads);
    let mut chunks: Vec<Vec<T>> = Vec::new();
    let mut items = items.into_iter();
    loop {
        let chunk: Vec<T> = items.by_ref().take(per).collect();
        if chunk.is_empty() {
            break;
        }
        chunks.push(chunk);
    }
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| s.spawn(move || chunk.into_iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(v) => v,
                // A panic outside Automerge's own guard is a bug: surface it.
                Err(p) => std::panic::resume_unwind(p),
            })
            .collect()
    })
}

/// Group changes by document, keeping first-seen document order and each
/// document's change order.
pub fn group_by_doc<T>(changes: impl IntoIterator<Item = (DocId, T)>) -> Vec<(DocId, Vec<T>)> {
    let mut batch: Vec<(DocId, Vec<T>)> = Vec::new();
    let mut index: std::collections::HashMap<DocId, usize> = std::collections::HashMap::new();
    for (id, item) in changes {
        match index.get(&id) {
            Some(&i) => batch[i].1.push(item),
            None => {
                index.insert(id.clone(), batch.len());
                batch.push((id, vec![item]));
            }
        }
    }
    batch
}

fn check_patrol_text(field: &'static str, text: &str) -> Result<()> {
    let n = text.chars().count();
    if text.trim().is_empty() {
        return Err(Error::InvalidInput(format!("{field}: is required")));
    }
    if n > patrol::limits::TEXT {
        return Err(Error::InvalidInput(format!(
            "{field}: is {n} characters; the limit is {}",
            patrol::limits::TEXT
        )));
    }
    Ok(())
}
