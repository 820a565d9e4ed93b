//! The SQLite file: one writer connection and one reader, reached as
//! `db.write(|tx| …)` and `db.read(|tx| …)`. WAL with `synchronous = FULL`, so a
//! write that returned has survived power loss.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::error::{OpenError, Result};
use crate::schema;

/// The device's database.
pub struct Db {
    path: PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while holding the lock leaves SQLite consistent (the open transaction
    // is rolled back when dropped), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    if cfg!(target_vendor = "apple") {
        conn.pragma_update(None, "fullfsync", "ON")?;
        conn.pragma_update(None, "checkpoint_fullfsync", "ON")?;
    }
    Ok(())
}

/// Whether an existing file starts like a SQLite database. Read before SQLite
/// touches it, so a foreign file is never written to.
fn looks_like_sqlite(path: &Path) -> std::io::Result<bool> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(e),
    };
    let mut header = [0u8; 16];
    let mut read = 0;
    while read < header.len() {
        match file.read(&mut header[read..])? {
            0 => break,
            n => read += n,
        }
    }
    Ok(read == 0 || (read == 16 && &header == SQLITE_HEADER))
}

impl Db {
    /// Open (creating or migrating) the database at `path`.
    pub fn open(path: &Path) -> Result<Db, OpenError> {
        let not_ours = || OpenError::NotGridsync {
            path: path.to_owned(),
        };
        let sqlite = |source| OpenError::Sqlite {
            path: path.to_owned(),
            source,
        };
        match looks_like_sqlite(path) {
            Ok(true) => {}
            Ok(false) => return Err(not_ours()),
            Err(e) => return Err(sqlite(rusqlite::Error::ToSqlConversionFailure(Box::new(e)))),
        }
        let mut writer = Connection::open(path).map_err(sqlite)?;
        let classify = |e: rusqlite::Error| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase)
            | Some(rusqlite::ErrorCode::DatabaseCorrupt) => not_ours(),
            _ => sqlite(e),
        };
        let app_id: i32 = writer
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .map_err(classify)?;
        let version: i64 = writer
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(classify)?;
        let tables: i64 = writer
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(classify)?;
        if app_id != schema::APPLICATION_ID && (tables > 0 || version > 0 || app_id != 0) {
            return Err(not_ours());
        }
        if version > schema::current_version() {
            return Err(OpenError::TooNew {
                path: path.to_owned(),
                found: version,
                supported: schema::current_version(),
            });
        }
        let mode: String = writer
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(classify)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(sqlite(rusqlite::Error::InvalidQuery));
        }
        configure(&writer).map_err(sqlite)?;
        if app_id == 0 {
            writer
                .pragma_update(None, "application_id", schema::APPLICATION_ID)
                .map_err(sqlite)?;
        }
        schema::migrate(&mut writer, version).map_err(classify)?;
        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sqlite)?;
        configure(&reader).map_err(sqlite)?;
        Ok(Db {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        })
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run `f` in one IMMEDIATE transaction; commit (durably) if it returns Ok.
    pub fn write<T, E: From<rusqlite::Error>>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Run `f` in a read transaction (a consistent snapshot).
    pub fn read<T, E: From<rusqlite::Error>>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = lock(&self.reader);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        f(&tx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_and_corrupt_files_are_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();

        let text = dir.path().join("notes.db");
        std::fs::write(&text, "这不是数据库").unwrap();
        assert!(matches!(
            Db::open(&text),
            Err(OpenError::NotGridsync { .. })
        ));
        assert_eq!(std::fs::read_to_string(&text).unwrap(), "这不是数据库");

        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        let before = std::fs::read(&other).unwrap();
        let err = Db::open(&other).err().expect("foreign db refused");
        assert!(err.to_string().contains("not a gridsync database"), "{err}");
        assert_eq!(std::fs::read(&other).unwrap(), before);

        let ours = dir.path().join("ours.db");
        drop(Db::open(&ours).unwrap());
        let mut bytes = std::fs::read(&ours).unwrap();
        for b in bytes.iter_mut().skip(100) {
            *b = 0x5a;
        }
        std::fs::write(&ours, &bytes).unwrap();
        let _ = std::fs::remove_file(dir.path().join("ours.db-wal"));
        assert!(matches!(
            Db::open(&ours),
            Err(OpenError::NotGridsync { .. })
        ));
        assert!(ours.exists());
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        drop(Db::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        assert!(matches!(
            Db::open(&path),
            Err(OpenError::TooNew { found: 99, .. })
        ));
    }

    #[test]
    fn opens_in_wal_with_full_sync() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("a.db")).unwrap();
        let (mode, sync): (String, i64) = db
            .write(|tx| -> rusqlite::Result<_> {
                Ok((
                    tx.query_row("PRAGMA journal_mode", [], |r| r.get(0))?,
                    tx.query_row("PRAGMA synchronous", [], |r| r.get(0))?,
                ))
            })
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "synchronous = FULL");
    }
}
