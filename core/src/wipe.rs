//! Remote wipe: the engine's database kept where it can be taken away for good, and
//! the erasure of every file the engine keeps on the device.
//!
//! A wiped engine closes its SQLite connections before a file goes (an open
//! connection would keep the unlinked file's blocks alive, and could write a new
//! `-wal` beside it), then unlinks the photo folder, the database's `-wal`, `-shm`
//! and `-journal`, anything else it keeps beside the database, and the database
//! file last: a wipe cut short by a crash leaves the database, whose token makes the
//! relay ask for the wipe again at the next sync, rather than orphaned photos.
//!
//! Files are unlinked, not overwritten: on flash storage an overwrite goes to fresh
//! blocks chosen by the controller (wear levelling), so it would cost time and
//! erase nothing. What protects the blocks left behind is that they were encrypted
//! (the database with SQLCipher, photos sealed) under the device key that the app
//! deletes from the keystore once told of the wipe.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::Transaction;

use crate::db::Db;
use crate::error::{Error, Result};

/// How long a wipe waits for operations still running on the database before it
/// erases the files anyway (an unlinked file stays readable only to those
/// operations, and only until they finish).
const DRAIN: Duration = Duration::from_secs(30);

/// The engine's database while the engine is live; once taken away, every call
/// answers [`Error::Wiped`].
pub(crate) struct Live {
    path: PathBuf,
    db: Mutex<Option<Arc<Db>>>,
}

impl Live {
    pub(crate) fn new(db: Db) -> Live {
        Live {
            path: db.path().to_owned(),
            db: Mutex::new(Some(Arc::new(db))),
        }
    }

    fn slot(&self) -> MutexGuard<'_, Option<Arc<Db>>> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The database, kept open (a wipe waits for it) until the answer is dropped.
    pub(crate) fn hold(&self) -> Result<Arc<Db>> {
        self.slot().clone().ok_or(Error::Wiped)
    }

    /// [`Db::read`], or [`Error::Wiped`].
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        self.hold()?.read(f)
    }

    /// [`Db::write`], or [`Error::Wiped`].
    pub(crate) fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        self.hold()?.write(f)
    }

    /// The database file (still known once wiped).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the database was taken away.
    pub(crate) fn is_closed(&self) -> bool {
        self.slot().is_none()
    }

    /// Take the database away for good and close its connections, once the
    /// operations still using it have finished (waiting at most [`DRAIN`]).
    pub(crate) fn close(&self) {
        let Some(mut db) = self.slot().take() else {
            return;
        };
        let deadline = Instant::now() + DRAIN;
        loop {
            match Arc::try_unwrap(db) {
                // Dropping the last handle closes both connections.
                Ok(db) => {
                    drop(db);
                    return;
                }
                Err(shared) if Instant::now() < deadline => {
                    db = shared;
                    std::thread::sleep(Duration::from_millis(5));
                }
                // Still in use: its connections close when that operation ends.
                Err(_) => return,
            }
        }
    }
}

/// Whether `entry` (a name in the database's folder) is a file the engine keeps for
/// the database named `db`: the database itself, SQLite's `-wal`, `-shm` and
/// `-journal`, and everything named `<db>.…` (the photo folder, files set aside).
fn belongs(db: &str, entry: &str) -> bool {
    entry == db
        || entry
            .strip_prefix(db)
            .is_some_and(|rest| rest.starts_with('-') || rest.starts_with('.'))
}

/// Unlink every file the engine keeps for the database at `db` (see the module
/// documentation for the order), and answer what is still there afterwards (empty
/// when the wipe is complete).
pub(crate) fn erase(db: &Path) -> Vec<PathBuf> {
    let Some(name) = db.file_name().and_then(|n| n.to_str()) else {
        return vec![db.to_owned()];
    };
    let folder = match db.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let ours = || -> Vec<PathBuf> {
        std::fs::read_dir(&folder)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_str().is_some_and(|n| belongs(name, n)))
            .map(|e| e.path())
            .collect()
    };
    let mut found = ours();
    // Folders (photos) first, the database itself last.
    found.sort_by_key(|p| (p.as_path() == db, !p.is_dir()));
    for path in found {
        // `remove_dir_all` unlinks symbolic links, never what they point to.
        let _ = if path.is_dir() && !path.is_symlink() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
    }
    // The unlinks survive a power loss with the folder's entry list.
    if let Ok(dir) = std::fs::File::open(&folder) {
        let _ = dir.sync_all();
    }
    ours()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engines_files_are_named_after_its_database_and_nothing_else() {
        for ours in [
            "worker.db",
            "worker.db-wal",
            "worker.db-shm",
            "worker.db-journal",
            "worker.db.photos",
            "worker.db.corrupt-1",
        ] {
            assert!(belongs("worker.db", ours), "{ours}");
        }
        for theirs in [
            "worker.dbx",
            "other.db",
            "worker.d",
            "worker.db2",
            "settings",
        ] {
            assert!(!belongs("worker.db", theirs), "{theirs}");
        }
    }

    #[test]
    fn erase_unlinks_the_database_its_journals_and_photos_and_leaves_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("worker.db");
        for f in [
            "worker.db",
            "worker.db-wal",
            "worker.db-shm",
            "app-settings.json",
        ] {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        let photos = dir.path().join("worker.db.photos/ab");
        std::fs::create_dir_all(&photos).unwrap();
        std::fs::write(photos.join(".tmp-ab12"), b"sealed").unwrap();
        std::fs::create_dir_all(dir.path().join("worker.db.photos/.unswept")).unwrap();
        assert!(erase(&db).is_empty());
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("app-settings.json")]);
    }
}
