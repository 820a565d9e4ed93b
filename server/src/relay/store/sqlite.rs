//! The embedded default: SQLite (`relay.db` in the data folder), one connection,
//! one node.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, TransactionBehavior};

use super::sql::{Database, Held, Mode, Row, Tx, Value};
use super::{StoreError, StoreResult};

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        let busy = matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        );
        if busy {
            StoreError::transient(e.to_string())
        } else {
            StoreError::failed(e.to_string())
        }
    }
}

const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
    CREATE TABLE enrollments (
        code_hash  BLOB PRIMARY KEY,
        user_id    TEXT NOT NULL,
        expires_ms INTEGER NOT NULL,
        used_ms    INTEGER,
        device_id  TEXT
    ) STRICT;
    CREATE TABLE devices (
        device_id    TEXT PRIMARY KEY,
        user_id      TEXT NOT NULL,
        token_hash   BLOB NOT NULL UNIQUE,
        app_version  TEXT NOT NULL,
        enrolled_ms  INTEGER NOT NULL,
        expires_ms   INTEGER NOT NULL,
        revoked_ms   INTEGER,
        last_seen_ms INTEGER,
        last_cursor  INTEGER NOT NULL DEFAULT 0,
        last_page    INTEGER NOT NULL DEFAULT 0
    ) STRICT;
    -- The change log: the server's sequence is its rowid.
    CREATE TABLE log (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        hash        BLOB NOT NULL UNIQUE,
        doc_id      TEXT NOT NULL,
        device_id   TEXT NOT NULL,
        bytes       BLOB NOT NULL,
        received_ms INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX log_doc ON log (doc_id, seq);
    CREATE TABLE doc_scope (
        doc_id TEXT PRIMARY KEY,
        grid   TEXT NOT NULL,
        dept   TEXT
    ) STRICT;
    CREATE INDEX doc_scope_grid ON doc_scope (grid);
    CREATE INDEX doc_scope_dept ON doc_scope (dept);
    -- Documents each device holds. `sent_page` is the pull page that carried them
    -- (0: the device pushed them); until the device acknowledges that page, it may
    -- not have applied it, and a lost answer must be sent again.
    CREATE TABLE device_docs (
        device_id TEXT NOT NULL,
        doc_id    TEXT NOT NULL,
        sent_page INTEGER NOT NULL,
        PRIMARY KEY (device_id, doc_id)
    ) STRICT, WITHOUT ROWID;
"#,
    r#"
    -- Photos: the blobs stored (files in the data folder's `blobs/`), and which
    -- documents refer to which photo (a device may move only photos of documents
    -- it may see).
    CREATE TABLE blobs (
        hash      TEXT PRIMARY KEY,
        size      INTEGER NOT NULL,
        stored_ms INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE doc_photos (
        doc_id   TEXT NOT NULL,
        hash     TEXT NOT NULL,
        added_by TEXT NOT NULL,
        PRIMARY KEY (doc_id, hash)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX doc_photos_hash ON doc_photos (hash);
"#,
    r#"
    -- The web console: password accounts (Argon2 PHC strings), each acting through a
    -- device of its own, and sessions (hashed tokens) with their CSRF tokens.
    CREATE TABLE console_accounts (
        user_id       TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        device_id     TEXT NOT NULL UNIQUE
    ) STRICT;
    CREATE TABLE console_sessions (
        token_hash BLOB PRIMARY KEY,
        user_id    TEXT NOT NULL,
        csrf       TEXT NOT NULL,
        expires_ms INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX console_sessions_user ON console_sessions (user_id);
"#,
    r#"
    -- Tiers: a device may be a downstream relay (a town server syncing upward).
    ALTER TABLE enrollments ADD COLUMN relay INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE devices ADD COLUMN relay INTEGER NOT NULL DEFAULT 0;
"#,
    r#"
    -- Token rotation: the successor offered for a device's token (until it is used),
    -- when the current one was issued, and the tokens each device had before (a
    -- retired token seen again means the device was copied).
    ALTER TABLE devices ADD COLUMN next_token_hash BLOB;
    ALTER TABLE devices ADD COLUMN token_issued_ms INTEGER NOT NULL DEFAULT 0;
    UPDATE devices SET token_issued_ms = enrolled_ms;
    CREATE UNIQUE INDEX devices_next_token ON devices (next_token_hash);
    CREATE TABLE retired_tokens (
        token_hash BLOB PRIMARY KEY,
        device_id  TEXT NOT NULL,
        retired_ms INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX retired_tokens_device ON retired_tokens (device_id, retired_ms);
"#,
    r#"
    -- Erasures (ADR 0011): a permanent tombstone per erased registry document, an
    -- id, a time and a reason code, nothing personal.
    CREATE TABLE erased (
        doc_id    TEXT PRIMARY KEY,
        erased_ms INTEGER NOT NULL,
        reason    TEXT NOT NULL
    ) STRICT;
    CREATE INDEX erased_time ON erased (erased_ms);
"#,
    r#"
    -- Outbound notifications (docs/notifications.md): one row per case, rule,
    -- recipient and occurrence, so each is queued once; the payload holds no
    -- personal data of residents.
    CREATE TABLE notifications (
        id         INTEGER PRIMARY KEY,
        doc_id     TEXT NOT NULL,
        rule       TEXT NOT NULL,
        recipient  TEXT NOT NULL,
        occurrence TEXT NOT NULL,
        payload    TEXT NOT NULL,
        state      TEXT NOT NULL,
        attempts   INTEGER NOT NULL,
        created_ms INTEGER NOT NULL,
        next_ms    INTEGER NOT NULL,
        done_ms    INTEGER,
        detail     TEXT,
        UNIQUE (doc_id, rule, recipient, occurrence)
    ) STRICT;
    CREATE INDEX notifications_due ON notifications (state, next_ms);
    CREATE INDEX notifications_sent ON notifications (recipient, done_ms);
"#,
    r#"
    -- Enrollment at scale (the console's codes page): when and by whom each code
    -- was issued, and codes withdrawn before use.
    ALTER TABLE enrollments ADD COLUMN issued_ms INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE enrollments ADD COLUMN issued_by TEXT;
    ALTER TABLE enrollments ADD COLUMN revoked_ms INTEGER;
    CREATE INDEX enrollments_issued ON enrollments (issued_ms);
"#,
    r#"
    -- Users who left: disabled in one action (devices revoked, codes withdrawn,
    -- console sessions ended); they sign in and enroll no more until enabled.
    CREATE TABLE disabled_users (
        user_id     TEXT PRIMARY KEY,
        disabled_ms INTEGER NOT NULL,
        disabled_by TEXT
    ) STRICT;
"#,
    r#"
    -- The directory as versioned data (docs/directory-format.md, "Versions"):
    -- every change a new revision with who made it and when; the newest is the
    -- one every node and phone follows. A directory a shared store kept in
    -- `meta` before becomes revision 1.
    CREATE TABLE directory_versions (
        revision   INTEGER PRIMARY KEY,
        json       TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        created_by TEXT,
        note       TEXT NOT NULL
    ) STRICT;
    INSERT INTO directory_versions (revision, json, created_ms, created_by, note)
        SELECT 1, value, 0, NULL, 'kept from before revisions' FROM meta WHERE key = 'directory';
    DELETE FROM meta WHERE key = 'directory';
    -- Where a user worked until a revision moved her (her directory entry as it
    -- was): for a while her phone's unsent work there is still taken.
    CREATE TABLE former_placements (
        user_id   TEXT NOT NULL,
        user_json TEXT NOT NULL,
        until_ms  INTEGER NOT NULL,
        revision  INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX former_placements_until ON former_placements (until_ms);
    -- The directory revision each device said it holds at its last pull: a
    -- moved user's device that holds the revision that moved her has heard of
    -- it, and her former placement no longer counts for it.
    ALTER TABLE devices ADD COLUMN directory_revision INTEGER NOT NULL DEFAULT 0;
"#,
    r#"
    -- Tiers: changes the upstream did not store (refused, or deferred and sent
    -- again on later rounds), shown on the console; and photos asked of the
    -- upstream and not had, asked again later and not for ever.
    CREATE TABLE upstream_refusals (
        hash     BLOB PRIMARY KEY,
        doc_id   TEXT NOT NULL,
        status   TEXT NOT NULL,
        reason   TEXT NOT NULL,
        first_ms INTEGER NOT NULL,
        last_ms  INTEGER NOT NULL,
        attempts INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX upstream_refusals_doc ON upstream_refusals (doc_id);
    CREATE TABLE upstream_photo_misses (
        hash     TEXT PRIMARY KEY,
        attempts INTEGER NOT NULL,
        next_ms  INTEGER NOT NULL
    ) STRICT;
"#,
    r#"
    -- When this relay received each case timeline entry (the first time), by its
    -- own clock: a phone's clock that is implausibly off is not what deadlines,
    -- overdue and durations are judged by (docs/reliability.md, clocks).
    CREATE TABLE entry_receipts (
        doc_id      TEXT NOT NULL,
        entry_id    TEXT NOT NULL,
        received_ms INTEGER NOT NULL,
        PRIMARY KEY (doc_id, entry_id)
    ) STRICT, WITHOUT ROWID;
"#,
    r#"
    -- Photo positions are never reused: an erased document's photos leave
    -- `blobs`, and a new photo must not take a position the upstream round or a
    -- backup has already passed (a rowid would be: SQLite reuses the largest).
    CREATE TABLE blobs_positioned (
        pos       INTEGER PRIMARY KEY AUTOINCREMENT,
        hash      TEXT NOT NULL UNIQUE,
        size      INTEGER NOT NULL,
        stored_ms INTEGER NOT NULL
    ) STRICT;
    INSERT INTO blobs_positioned (pos, hash, size, stored_ms)
        SELECT rowid, hash, size, stored_ms FROM blobs ORDER BY rowid;
    DROP TABLE blobs;
    ALTER TABLE blobs_positioned RENAME TO blobs;
"#,
];

/// `relay.db`: one connection, so one transaction at a time, for one node.
pub struct SqliteDb {
    conn: Mutex<Connection>,
}

impl SqliteDb {
    /// Open (creating or migrating) the database at `path`.
    pub fn open(path: &Path) -> StoreResult<Self> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(
            None,
            "journal_size_limit",
            gridsync_core::db::WAL_SIZE_LIMIT,
        )?;
        // Freed pages are zeroed: an erased document's log rows leave nothing
        // readable in the file (ADR 0011).
        conn.pragma_update(None, "secure_delete", "ON")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > MIGRATIONS.len() as i64 {
            return Err(StoreError::failed(format!(
                "{} has schema version {version}, newer than this server",
                path.display()
            )));
        }
        for (i, step) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute_batch(step)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
            tx.commit()?;
        }
        Ok(SqliteDb {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(v) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Value::Bool(b) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(*b))),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

impl Tx for rusqlite::Transaction<'_> {
    fn exec(&mut self, sql: &str, args: &[Value]) -> StoreResult<u64> {
        let mut stmt = self.prepare_cached(sql)?;
        Ok(stmt.execute(rusqlite::params_from_iter(args))? as u64)
    }

    fn rows(&mut self, sql: &str, args: &[Value]) -> StoreResult<Vec<Row>> {
        let mut stmt = self.prepare_cached(sql)?;
        let width = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                values.push(match r.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(v) => Value::Int(v),
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
                    ValueRef::Real(f) => {
                        return Err(StoreError::failed(format!(
                            "column {i}: unexpected number {f}"
                        )))
                    }
                });
            }
            out.push(Row(values));
        }
        Ok(out)
    }
}

impl Database for SqliteDb {
    fn transaction<T>(
        &self,
        mode: Mode,
        f: impl FnOnce(&mut dyn Tx) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut conn = self.conn();
        let behavior = match mode {
            Mode::Read => TransactionBehavior::Deferred,
            Mode::Write | Mode::Append => TransactionBehavior::Immediate,
        };
        let mut tx = conn.transaction_with_behavior(behavior)?;
        let out = f(&mut tx)?;
        tx.commit()?;
        Ok(out)
    }

    fn lock_pushes(&self) -> StoreResult<Box<dyn Held + '_>> {
        // One node: its replica is written only by this process, whose engine
        // and connection already take one write at a time.
        Ok(Box::new(()))
    }

    fn shared(&self) -> bool {
        false
    }

    fn connections(&self) -> usize {
        // One connection behind a mutex: reads and writes take turns.
        1
    }

    fn scrub(&self) -> StoreResult<()> {
        // `secure_delete` zeroed what was deleted, but a page split or merge may
        // have left copies of rows in a page's unused space: the file is rebuilt
        // from its live rows. The WAL still holds the images written before,
        // until it is checkpointed and truncated.
        let conn = self.conn();
        conn.execute_batch("VACUUM")?;
        let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        if busy != 0 {
            return Err(StoreError::transient(
                "relay.db's WAL could not be emptied (a reader was in the way)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare(
                "SELECT coalesce(sql, name) FROM sqlite_schema
                 WHERE name NOT LIKE 'sqlite_%' ORDER BY name",
            )
            .unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    }

    #[test]
    fn token_rotation_migrates_an_existing_relay() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.db");
        {
            let conn = Connection::open(&old).unwrap();
            for step in &MIGRATIONS[..4] {
                conn.execute_batch(step).unwrap();
            }
            conn.pragma_update(None, "user_version", 4).unwrap();
            conn.execute(
                "INSERT INTO devices (device_id, user_id, token_hash, app_version, enrolled_ms,
                                      expires_ms)
                 VALUES ('d', 'u', x'01', '1', 1234, 99999)",
                [],
            )
            .unwrap();
        }
        drop(SqliteDb::open(&old).unwrap());
        let fresh = dir.path().join("fresh.db");
        drop(SqliteDb::open(&fresh).unwrap());
        let (old, fresh) = (
            Connection::open(&old).unwrap(),
            Connection::open(&fresh).unwrap(),
        );
        assert_eq!(schema(&old), schema(&fresh));
        let issued: i64 = old
            .query_row("SELECT token_issued_ms FROM devices", [], |r| r.get(0))
            .unwrap();
        assert_eq!(issued, 1234, "an enrolled token counts from its enrollment");
    }
}
