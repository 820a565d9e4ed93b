//! What the relay keeps besides the documents themselves: devices and their
//! tokens, one-time enrollment codes, the append-only change log with its sequence,
//! each document's visibility, and what each device has been sent. Behind a trait so
//! a PostgreSQL implementation can follow without touching the protocol.

use std::path::Path;
use std::sync::Mutex;

use gridsync_core::sync::wire::MAX_CHANGES_PER_MESSAGE;
use gridsync_core::{DeptId, DeviceId, DocId, RegionCode, UserId};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[error("relay storage: {0}")]
pub struct StoreError(String);

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError(e.to_string())
    }
}

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// An enrolled device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// Its id.
    pub device: DeviceId,
    /// Its user.
    pub user: UserId,
    /// Revoked devices are told to wipe.
    pub revoked: bool,
    /// When its token stops working, ms since the epoch.
    pub expires_ms: i64,
    /// App version given at enrollment.
    pub app_version: String,
    /// Last request, ms since the epoch.
    pub last_seen_ms: Option<i64>,
    /// Last pull cursor the device sent.
    pub last_cursor: u64,
    /// A downstream relay (a town server syncing upward), not a phone: it forwards
    /// changes its own devices made and is trusted for its region.
    pub relay: bool,
}

/// Who may see a document: the grid it belongs to and, for a case, the department
/// it is dispatched to; and the photos it refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocScope {
    /// The grid.
    pub grid: RegionCode,
    /// The department, while dispatched.
    pub dept: Option<DeptId>,
    /// The photos (display images and thumbnails) it refers to, with who attached each.
    pub photos: Vec<(String, String)>,
}

/// What a user may see: a region subtree, and/or a department's cases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visibility {
    /// The region subtree (none for department handlers).
    pub region: Option<RegionCode>,
    /// The department, for handlers.
    pub dept: Option<DeptId>,
}

/// One change to append to the log.
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// Change hash.
    pub hash: [u8; 32],
    /// Its document.
    pub doc: DocId,
    /// Raw change.
    pub bytes: Vec<u8>,
}

/// One pull page.
#[derive(Debug, Clone, Default)]
pub struct PullPage {
    /// (document, change bytes) in order.
    pub changes: Vec<(String, Vec<u8>)>,
    /// New cursor.
    pub cursor: u64,
    /// Whether more is waiting.
    pub more: bool,
    /// Documents to remove from the device.
    pub purge: Vec<String>,
    /// This page's number, for the device to acknowledge.
    pub page: u64,
}

/// What a device says with a pull request.
#[derive(Debug, Clone, Default)]
pub struct PullAsk<'a> {
    /// Its cursor.
    pub cursor: u64,
    /// Most bytes of changes.
    pub max_bytes: u64,
    /// The last page it applied.
    pub ack_page: u64,
    /// Purges it applied.
    pub purged: &'a [String],
}

/// The relay's own storage.
pub trait RelayStore: Send + Sync {
    /// Store a one-time code (hashed) for `user`; with `relay`, the device that
    /// redeems it is a downstream relay.
    fn create_enrollment(
        &self,
        user: &UserId,
        code_hash: &[u8; 32],
        expires_ms: i64,
        relay: bool,
    ) -> StoreResult<()>;
    /// Redeem a code once: records the device with its hashed token and returns the
    /// user, or `None` if the code is unknown, used or expired.
    #[allow(clippy::too_many_arguments)]
    fn redeem_enrollment(
        &self,
        code_hash: &[u8; 32],
        device: DeviceId,
        token_hash: &[u8; 32],
        app_version: &str,
        now_ms: i64,
        token_expires_ms: i64,
    ) -> StoreResult<Option<UserId>>;
    /// The device holding a token.
    fn device_by_token(&self, token_hash: &[u8; 32]) -> StoreResult<Option<DeviceRecord>>;
    /// Revoke a device; false if unknown.
    fn revoke(&self, device: DeviceId, now_ms: i64) -> StoreResult<bool>;
    /// Every device.
    fn devices(&self) -> StoreResult<Vec<DeviceRecord>>;
    /// Append accepted changes (idempotent by hash), update their documents'
    /// visibility, and note that `device` has those documents.
    fn append(
        &self,
        device: DeviceId,
        entries: &[LogEntry],
        scopes: &[(DocId, DocScope)],
        now_ms: i64,
    ) -> StoreResult<()>;
    /// The next page for `device` after `cursor`.
    fn pull(
        &self,
        device: DeviceId,
        vis: &Visibility,
        ask: &PullAsk<'_>,
        now_ms: i64,
    ) -> StoreResult<PullPage>;
    /// Number of changes in the log.
    fn log_len(&self) -> StoreResult<u64>;
    /// Devices not revoked, how many are behind the end of the log, and the sum of
    /// the changes after their cursors (visible or not: an upper bound).
    fn cursor_lag(&self) -> StoreResult<(u64, u64, u64)>;
    /// Whether `device` is enrolled here (a phone, a relay) or is a console account's.
    fn is_local_device(&self, device: DeviceId) -> StoreResult<bool>;
    /// Log entries after `seq` not received from `except` (in order, at most about
    /// `max_bytes` of changes, at least one): what a relay forwards upstream. Each
    /// with its sequence number.
    fn log_after(
        &self,
        seq: u64,
        except: DeviceId,
        max_bytes: u64,
    ) -> StoreResult<Vec<(u64, LogEntry)>>;
    /// Stored blobs in the order they were stored, after position `after` and up to
    /// `upto` (inclusive), at most `limit`, each with its position: what a relay
    /// sends upstream. The last position is [`RelayStore::last_blob`].
    fn blobs_after(&self, after: i64, upto: i64, limit: u32) -> StoreResult<Vec<(i64, String)>>;
    /// The position of the blob stored last (0 if none).
    fn last_blob(&self) -> StoreResult<i64>;
    /// Set several values of the relay's own settings in one transaction.
    fn set_metas(&self, values: &[(&str, String)]) -> StoreResult<()>;
    /// A value of the relay's own settings (`meta`), if set.
    fn meta(&self, key: &str) -> StoreResult<Option<String>>;
    /// Set a value of the relay's own settings.
    fn set_meta(&self, key: &str, value: &str) -> StoreResult<()>;
    /// Changes after `cursor` that a device with `vis` may see and did not push
    /// itself: what its next pulls will bring; counted up to [`BACKLOG_CAP`].
    fn backlog(&self, device: DeviceId, vis: &Visibility, cursor: u64) -> StoreResult<u64>;
    /// Whether a document that refers to photo `hash` is visible to `vis`.
    fn photo_visible(&self, hash: &str, vis: &Visibility) -> StoreResult<bool>;
    /// Whether `user` attached photo `hash` to some document.
    fn photo_attached_by(&self, hash: &str, user: &str) -> StoreResult<bool>;
    /// Whether a document `vis` may not see refers to photo `hash`.
    fn photo_referenced_outside(&self, hash: &str, vis: &Visibility) -> StoreResult<bool>;
    /// The size of a stored blob, if stored.
    fn blob_size(&self, hash: &str) -> StoreResult<Option<u64>>;
    /// Record a blob as stored (after its file is durable).
    fn record_blob(&self, hash: &str, size: u64, now_ms: i64) -> StoreResult<()>;
    /// Set a console password (its PHC hash) for `user`; the account's device is
    /// `device` when the account is new, and kept otherwise. Every session of the
    /// user ends. Returns the account's device.
    fn set_console_password(
        &self,
        user: &UserId,
        password_hash: &str,
        device: DeviceId,
    ) -> StoreResult<DeviceId>;
    /// A console account: its password hash and device.
    fn console_account(&self, user: &UserId) -> StoreResult<Option<(String, DeviceId)>>;
    /// Start a console session (hashed token) with its CSRF token.
    fn create_session(
        &self,
        token_hash: &[u8; 32],
        user: &UserId,
        csrf: &str,
        expires_ms: i64,
    ) -> StoreResult<()>;
    /// A live session: its user and CSRF token. Expired sessions are removed.
    fn session(&self, token_hash: &[u8; 32], now_ms: i64) -> StoreResult<Option<(UserId, String)>>;
    /// End a session.
    fn end_session(&self, token_hash: &[u8; 32]) -> StoreResult<()>;
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
];

/// The embedded default: SQLite in the data folder.
pub struct SqliteRelayStore {
    conn: Mutex<Connection>,
}

impl SqliteRelayStore {
    /// Open (creating or migrating) `relay.db`.
    pub fn open(path: &Path) -> StoreResult<Self> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > MIGRATIONS.len() as i64 {
            return Err(StoreError(format!(
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
        Ok(SqliteRelayStore {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A value from the relay's own meta table, created by `make` on first use.
    pub fn meta_or_insert(&self, key: &str, make: impl FnOnce() -> String) -> StoreResult<String> {
        let conn = self.conn();
        if let Some(v) = conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?
        {
            return Ok(v);
        }
        let v = make();
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)",
            params![key, v],
        )?;
        Ok(v)
    }
}

fn parse<T: std::str::FromStr>(s: String) -> rusqlite::Result<T> {
    s.parse().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, "bad id".into())
    })
}

fn device_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeviceRecord> {
    Ok(DeviceRecord {
        device: parse(r.get(0)?)?,
        user: parse(r.get(1)?)?,
        revoked: r.get::<_, Option<i64>>(2)?.is_some(),
        app_version: r.get(3)?,
        last_seen_ms: r.get(4)?,
        last_cursor: r.get::<_, i64>(5)?.max(0) as u64,
        expires_ms: r.get(6)?,
        relay: r.get(7)?,
    })
}

/// Backlogs are counted up to this many changes ("more than" beyond it), so a
/// device that never synced does not cost a scan of the whole log.
pub const BACKLOG_CAP: u64 = 10_000;

/// The `?2`, `?3`, `?4` arguments of [`VISIBLE`]: the region range and department.
fn visible_args(vis: &Visibility) -> (Option<String>, Option<String>, Option<String>) {
    (
        vis.region.as_ref().map(|r| r.as_str().to_owned()),
        vis.region.as_ref().map(|r| format!("{r}:")),
        vis.dept.as_ref().map(|d| d.as_str().to_owned()),
    )
}

const VISIBLE: &str =
    "((?2 IS NOT NULL AND s.grid >= ?2 AND s.grid < ?3) OR (?4 IS NOT NULL AND s.dept = ?4))";

impl RelayStore for SqliteRelayStore {
    fn create_enrollment(
        &self,
        user: &UserId,
        code_hash: &[u8; 32],
        expires_ms: i64,
        relay: bool,
    ) -> StoreResult<()> {
        self.conn().execute(
            "INSERT INTO enrollments (code_hash, user_id, expires_ms, relay)
             VALUES (?1, ?2, ?3, ?4)",
            params![&code_hash[..], user.as_str(), expires_ms, relay],
        )?;
        Ok(())
    }

    fn redeem_enrollment(
        &self,
        code_hash: &[u8; 32],
        device: DeviceId,
        token_hash: &[u8; 32],
        app_version: &str,
        now_ms: i64,
        token_expires_ms: i64,
    ) -> StoreResult<Option<UserId>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let redeemed: Option<(String, bool)> = tx
            .query_row(
                "UPDATE enrollments SET used_ms = ?2, device_id = ?3
                 WHERE code_hash = ?1 AND used_ms IS NULL AND expires_ms > ?2
                 RETURNING user_id, relay",
                params![&code_hash[..], now_ms, device.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((user, relay)) = redeemed else {
            return Ok(None);
        };
        let taken: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM devices WHERE device_id = ?1)",
            [device.to_string()],
            |r| r.get(0),
        )?;
        if taken {
            // A device id is enrolled once; the code stays unused.
            return Ok(None);
        }
        tx.execute(
            "INSERT INTO devices
                (device_id, user_id, token_hash, app_version, enrolled_ms, expires_ms, relay)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                device.to_string(),
                user,
                &token_hash[..],
                app_version,
                now_ms,
                token_expires_ms,
                relay
            ],
        )?;
        tx.commit()?;
        Ok(Some(parse(user)?))
    }

    fn device_by_token(&self, token_hash: &[u8; 32]) -> StoreResult<Option<DeviceRecord>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT device_id, user_id, revoked_ms, app_version, last_seen_ms, last_cursor,
                        expires_ms, relay
                 FROM devices WHERE token_hash = ?1",
                [&token_hash[..]],
                device_row,
            )
            .optional()?)
    }

    fn revoke(&self, device: DeviceId, now_ms: i64) -> StoreResult<bool> {
        Ok(self.conn().execute(
            "UPDATE devices SET revoked_ms = ?2 WHERE device_id = ?1 AND revoked_ms IS NULL",
            params![device.to_string(), now_ms],
        )? > 0)
    }

    fn devices(&self) -> StoreResult<Vec<DeviceRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT device_id, user_id, revoked_ms, app_version, last_seen_ms, last_cursor,
                    expires_ms, relay
             FROM devices ORDER BY enrolled_ms",
        )?;
        let rows = stmt.query_map([], device_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn append(
        &self,
        device: DeviceId,
        entries: &[LogEntry],
        scopes: &[(DocId, DocScope)],
        now_ms: i64,
    ) -> StoreResult<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO log (hash, doc_id, device_id, bytes, received_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for e in entries {
                insert.execute(params![
                    &e.hash[..],
                    e.doc.as_str(),
                    device.to_string(),
                    e.bytes,
                    now_ms
                ])?;
            }
            let mut scope = tx.prepare_cached(
                "INSERT INTO doc_scope (doc_id, grid, dept) VALUES (?1, ?2, ?3)
                 ON CONFLICT (doc_id) DO UPDATE SET grid = excluded.grid, dept = excluded.dept",
            )?;
            let mut has = tx.prepare_cached(
                "INSERT INTO device_docs (device_id, doc_id, sent_page) VALUES (?1, ?2, 0)
                 ON CONFLICT (device_id, doc_id) DO UPDATE SET sent_page = 0",
            )?;
            let mut photo = tx.prepare_cached(
                "INSERT OR IGNORE INTO doc_photos (doc_id, hash, added_by) VALUES (?1, ?2, ?3)",
            )?;
            for (doc, s) in scopes {
                scope.execute(params![
                    doc.as_str(),
                    s.grid.as_str(),
                    s.dept.as_ref().map(|d| d.as_str())
                ])?;
                for (hash, by) in &s.photos {
                    photo.execute(params![doc.as_str(), hash, by])?;
                }
                has.execute(params![device.to_string(), doc.as_str()])?;
            }
            tx.execute(
                "UPDATE devices SET last_seen_ms = ?2 WHERE device_id = ?1",
                params![device.to_string(), now_ms],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn pull(
        &self,
        device: DeviceId,
        vis: &Visibility,
        ask: &PullAsk<'_>,
        now_ms: i64,
    ) -> StoreResult<PullPage> {
        let (cursor, max_bytes) = (ask.cursor, ask.max_bytes);
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let dev = device.to_string();
        let (lo, hi, dept) = visible_args(vis);
        let cursor_i = i64::try_from(cursor).unwrap_or(i64::MAX);
        // Histories sent in a page the device never applied must be sent again.
        tx.execute(
            "DELETE FROM device_docs WHERE device_id = ?1 AND sent_page > ?2",
            params![dev, i64::try_from(ask.ack_page).unwrap_or(i64::MAX)],
        )?;
        let page_no: i64 = tx.query_row(
            "UPDATE devices SET last_page = last_page + 1 WHERE device_id = ?1 RETURNING last_page",
            [&dev],
            |r| r.get(0),
        )?;
        for doc in ask.purged {
            tx.execute(
                "DELETE FROM device_docs WHERE device_id = ?1 AND doc_id = ?2",
                params![dev, doc],
            )?;
        }
        let mut page = PullPage {
            cursor,
            page: page_no.max(0) as u64,
            ..Default::default()
        };
        let mut bytes = 0u64;
        let mut full = false;
        let mut sent_docs: Vec<String> = Vec::new();
        {
            // Documents that became visible with history before the cursor arrive whole.
            let mut newly = tx.prepare_cached(&format!(
                "SELECT s.doc_id FROM doc_scope s
                 WHERE {VISIBLE}
                   AND NOT EXISTS (SELECT 1 FROM device_docs d WHERE d.device_id = ?1 AND d.doc_id = s.doc_id)
                   AND EXISTS (SELECT 1 FROM log l WHERE l.doc_id = s.doc_id AND l.seq <= ?5)"
            ))?;
            let docs: Vec<String> = newly
                .query_map(params![dev, lo, hi, dept, cursor_i], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut history = tx.prepare_cached(
                "SELECT bytes FROM log WHERE doc_id = ?1 AND seq <= ?2 ORDER BY seq",
            )?;
            for doc in docs {
                if full {
                    break;
                }
                let changes: Vec<Vec<u8>> = history
                    .query_map(params![doc, cursor_i], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                let size: u64 = changes.iter().map(|c| c.len() as u64).sum();
                let over_count = page.changes.len() + changes.len() > MAX_CHANGES_PER_MESSAGE;
                if !page.changes.is_empty() && (bytes + size > max_bytes || over_count) {
                    full = true;
                    break;
                }
                bytes += size;
                page.changes
                    .extend(changes.into_iter().map(|c| (doc.clone(), c)));
                sent_docs.push(doc);
            }
            if !full {
                let mut next = tx.prepare_cached(&format!(
                    "SELECT l.seq, l.doc_id, l.bytes, l.device_id = ?1 FROM log l JOIN doc_scope s USING (doc_id)
                     WHERE l.seq > ?5 AND {VISIBLE} ORDER BY l.seq"
                ))?;
                let mut rows = next.query(params![dev, lo, hi, dept, cursor_i])?;
                while let Some(r) = rows.next()? {
                    let seq: i64 = r.get(0)?;
                    let doc: String = r.get(1)?;
                    let own: bool = r.get(3)?;
                    if !own {
                        let change: Vec<u8> = r.get(2)?;
                        let over_count = page.changes.len() >= MAX_CHANGES_PER_MESSAGE;
                        let over_bytes =
                            !page.changes.is_empty() && bytes + change.len() as u64 > max_bytes;
                        if over_count || over_bytes {
                            full = true;
                            break;
                        }
                        bytes += change.len() as u64;
                        page.changes.push((doc.clone(), change));
                    }
                    page.cursor = seq.max(0) as u64;
                    sent_docs.push(doc);
                }
            }
            if !full {
                // Nothing more for this device: skip past what it may not see.
                let max: Option<i64> =
                    tx.query_row("SELECT max(seq) FROM log", [], |r| r.get(0))?;
                page.cursor = page.cursor.max(max.unwrap_or(0).max(0) as u64);
            }
        }
        page.more = full;
        {
            let mut has = tx.prepare_cached(
                "INSERT OR IGNORE INTO device_docs (device_id, doc_id, sent_page) VALUES (?1, ?2, ?3)",
            )?;
            for doc in &sent_docs {
                has.execute(params![dev, doc, page_no])?;
            }
            let mut gone = tx.prepare_cached(&format!(
                "SELECT d.doc_id FROM device_docs d JOIN doc_scope s USING (doc_id)
                 WHERE d.device_id = ?1 AND NOT {VISIBLE}"
            ))?;
            page.purge = gone
                .query_map(params![dev, lo, hi, dept], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
        }
        tx.execute(
            "UPDATE devices SET last_seen_ms = ?2, last_cursor = ?3 WHERE device_id = ?1",
            params![dev, now_ms, cursor_i],
        )?;
        tx.commit()?;
        Ok(page)
    }

    fn log_len(&self) -> StoreResult<u64> {
        let n: i64 = self
            .conn()
            .query_row("SELECT count(*) FROM log", [], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    fn cursor_lag(&self) -> StoreResult<(u64, u64, u64)> {
        let (devices, behind, changes): (i64, i64, i64) = self.conn().query_row(
            "SELECT count(*), coalesce(sum(last_cursor < m.top), 0),
                    coalesce(sum(max(m.top - last_cursor, 0)), 0)
             FROM devices, (SELECT coalesce(max(seq), 0) AS top FROM log) m
             WHERE revoked_ms IS NULL",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        Ok((
            devices.max(0) as u64,
            behind.max(0) as u64,
            changes.max(0) as u64,
        ))
    }

    fn is_local_device(&self, device: DeviceId) -> StoreResult<bool> {
        Ok(self.conn().query_row(
            "SELECT EXISTS (SELECT 1 FROM devices WHERE device_id = ?1)
                 OR EXISTS (SELECT 1 FROM console_accounts WHERE device_id = ?1)",
            [device.to_string()],
            |r| r.get(0),
        )?)
    }

    fn log_after(
        &self,
        seq: u64,
        except: DeviceId,
        max_bytes: u64,
    ) -> StoreResult<Vec<(u64, LogEntry)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, hash, doc_id, bytes FROM log
             WHERE seq > ?1 AND device_id != ?2 ORDER BY seq LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![
                i64::try_from(seq).unwrap_or(i64::MAX),
                except.to_string(),
                MAX_CHANGES_PER_MESSAGE as i64
            ],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                ))
            },
        )?;
        let mut out = Vec::new();
        let mut bytes = 0u64;
        for row in rows {
            let (seq, hash, doc, change) = row?;
            if !out.is_empty() && bytes + change.len() as u64 > max_bytes {
                break;
            }
            bytes += change.len() as u64;
            let hash: [u8; 32] = hash
                .try_into()
                .map_err(|_| StoreError("a log hash is not 32 bytes".into()))?;
            out.push((
                seq.max(0) as u64,
                LogEntry {
                    hash,
                    doc: parse(doc)?,
                    bytes: change,
                },
            ));
        }
        Ok(out)
    }

    fn blobs_after(&self, after: i64, upto: i64, limit: u32) -> StoreResult<Vec<(i64, String)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT rowid, hash FROM blobs WHERE rowid > ?1 AND rowid <= ?2 ORDER BY rowid LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![after, upto, limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn last_blob(&self) -> StoreResult<i64> {
        Ok(self
            .conn()
            .query_row("SELECT coalesce(max(rowid), 0) FROM blobs", [], |r| {
                r.get(0)
            })?)
    }

    fn set_metas(&self, values: &[(&str, String)]) -> StoreResult<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for (key, value) in values {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn meta(&self, key: &str) -> StoreResult<Option<String>> {
        Ok(self
            .conn()
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    fn set_meta(&self, key: &str, value: &str) -> StoreResult<()> {
        self.conn().execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    fn backlog(&self, device: DeviceId, vis: &Visibility, cursor: u64) -> StoreResult<u64> {
        let (lo, hi, dept) = visible_args(vis);
        let n: i64 = self.conn().query_row(
            &format!(
                "SELECT count(*) FROM (SELECT 1 FROM log l JOIN doc_scope s ON s.doc_id = l.doc_id
                 WHERE l.seq > ?5 AND l.device_id != ?1 AND {VISIBLE} LIMIT {BACKLOG_CAP})"
            ),
            params![
                device.to_string(),
                lo,
                hi,
                dept,
                i64::try_from(cursor).unwrap_or(i64::MAX)
            ],
            |r| r.get(0),
        )?;
        Ok(n.max(0) as u64)
    }

    fn photo_visible(&self, hash: &str, vis: &Visibility) -> StoreResult<bool> {
        let (lo, hi, dept) = visible_args(vis);
        Ok(self.conn().query_row(
            &format!(
                "SELECT EXISTS (SELECT 1 FROM doc_photos p JOIN doc_scope s USING (doc_id)
                 WHERE p.hash = ?1 AND {VISIBLE})"
            ),
            params![hash, lo, hi, dept],
            |r| r.get(0),
        )?)
    }

    fn photo_attached_by(&self, hash: &str, user: &str) -> StoreResult<bool> {
        Ok(self.conn().query_row(
            "SELECT EXISTS (SELECT 1 FROM doc_photos WHERE hash = ?1 AND added_by = ?2)",
            params![hash, user],
            |r| r.get(0),
        )?)
    }

    fn photo_referenced_outside(&self, hash: &str, vis: &Visibility) -> StoreResult<bool> {
        let (lo, hi, dept) = visible_args(vis);
        Ok(self.conn().query_row(
            &format!(
                "SELECT EXISTS (SELECT 1 FROM doc_photos p JOIN doc_scope s USING (doc_id)
                 WHERE p.hash = ?1 AND NOT {VISIBLE})"
            ),
            params![hash, lo, hi, dept],
            |r| r.get(0),
        )?)
    }

    fn blob_size(&self, hash: &str) -> StoreResult<Option<u64>> {
        Ok(self
            .conn()
            .query_row("SELECT size FROM blobs WHERE hash = ?1", [hash], |r| {
                r.get::<_, i64>(0)
            })
            .optional()?
            .map(|n| n.max(0) as u64))
    }

    fn record_blob(&self, hash: &str, size: u64, now_ms: i64) -> StoreResult<()> {
        self.conn().execute(
            "INSERT OR IGNORE INTO blobs (hash, size, stored_ms) VALUES (?1, ?2, ?3)",
            params![hash, i64::try_from(size).unwrap_or(i64::MAX), now_ms],
        )?;
        Ok(())
    }

    fn set_console_password(
        &self,
        user: &UserId,
        password_hash: &str,
        device: DeviceId,
    ) -> StoreResult<DeviceId> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO console_accounts (user_id, password_hash, device_id) VALUES (?1, ?2, ?3)
             ON CONFLICT (user_id) DO UPDATE SET password_hash = excluded.password_hash",
            params![user.as_str(), password_hash, device.to_string()],
        )?;
        tx.execute(
            "DELETE FROM console_sessions WHERE user_id = ?1",
            [user.as_str()],
        )?;
        let device: String = tx.query_row(
            "SELECT device_id FROM console_accounts WHERE user_id = ?1",
            [user.as_str()],
            |r| r.get(0),
        )?;
        tx.commit()?;
        Ok(parse(device)?)
    }

    fn console_account(&self, user: &UserId) -> StoreResult<Option<(String, DeviceId)>> {
        let row: Option<(String, String)> = self
            .conn()
            .query_row(
                "SELECT password_hash, device_id FROM console_accounts WHERE user_id = ?1",
                [user.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(row.map(|(h, d)| parse(d).map(|d| (h, d))).transpose()?)
    }

    fn create_session(
        &self,
        token_hash: &[u8; 32],
        user: &UserId,
        csrf: &str,
        expires_ms: i64,
    ) -> StoreResult<()> {
        self.conn().execute(
            "INSERT INTO console_sessions (token_hash, user_id, csrf, expires_ms)
             VALUES (?1, ?2, ?3, ?4)",
            params![&token_hash[..], user.as_str(), csrf, expires_ms],
        )?;
        Ok(())
    }

    fn session(&self, token_hash: &[u8; 32], now_ms: i64) -> StoreResult<Option<(UserId, String)>> {
        let conn = self.conn();
        conn.execute(
            "DELETE FROM console_sessions WHERE expires_ms <= ?1",
            [now_ms],
        )?;
        let row: Option<(String, String)> = conn
            .query_row(
                "SELECT user_id, csrf FROM console_sessions WHERE token_hash = ?1",
                [&token_hash[..]],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(row.map(|(u, c)| parse(u).map(|u| (u, c))).transpose()?)
    }

    fn end_session(&self, token_hash: &[u8; 32]) -> StoreResult<()> {
        self.conn().execute(
            "DELETE FROM console_sessions WHERE token_hash = ?1",
            [&token_hash[..]],
        )?;
        Ok(())
    }
}
