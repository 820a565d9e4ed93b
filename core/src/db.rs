//! The SQLite file: one writer connection and one reader, reached as
//! `db.write(|tx| …)` and `db.read(|tx| …)`. WAL with `synchronous = FULL`, so a
//! write that returned has survived power loss.
//!
//! On a phone the file is encrypted with SQLCipher under a key derived from the
//! device key (see `docs/adr/0010-encryption-at-rest.md`). A plaintext database
//! opened with a key is converted once, and [`Db::rekey`] moves the file to a new
//! key; both write an encrypted copy beside the file and rename it over the
//! original, so a crash at any moment leaves one complete file under one key.
//!
//! A connection SQLCipher has given up on (one page failed its check, as after a
//! failed read) is closed and reopened before its next operation.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior};

use crate::error::{Error, OpenError, Result};
use crate::schema;
use crate::vault::{DeviceKey, KeyUse};

/// The device's database.
pub struct Db {
    path: PathBuf,
    // Dropped in this order: the writer, closing last, checkpoints the WAL into
    // the file and removes it (a read-only connection cannot).
    reader: Mutex<Slot>,
    writer: Mutex<Slot>,
    /// The key the file is encrypted with (`None`: plaintext); changed by `rekey`
    /// while both connection locks are held.
    key: Mutex<Option<RawKey>>,
}

const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// SQLCipher 4's page size: an encrypted file is a whole number of these pages.
const CIPHER_PAGE: u64 = 4096;

/// The HMAC over every page. HMAC-SHA256 rather than SQLCipher 4's default
/// HMAC-SHA512: most phone cores (and the project machine) have SHA-256
/// instructions and none for SHA-512, and the page HMAC was the largest part of
/// an encrypted durable write. Files written with the default are converted at
/// open ([`Cipher::Legacy`]). See `docs/adr/0010-encryption-at-rest.md`.
const HMAC_ALGORITHM: &str = "HMAC_SHA256";

/// The cipher settings a keyed connection reads the file with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cipher {
    /// This version's: SQLCipher 4 with [`HMAC_ALGORITHM`].
    Current,
    /// SQLCipher 4's defaults (HMAC-SHA512), as files were written before.
    Legacy,
}

/// The page cache of each connection to an encrypted file, in KiB (SQLite's default
/// is 2 MiB). A page found there is already decrypted; a miss costs a decryption
/// and an HMAC check, not just a copy from the OS cache. The cache grows only as
/// pages are read. See `docs/performance.md`.
const ENCRYPTED_CACHE_KIB: i64 = 16 * 1024;

/// One of the two connections.
struct Slot {
    conn: Connection,
    /// Not to be used again: reopened before the next operation. Set when
    /// SQLCipher has put the connection in its error state, and while a reopen
    /// fails.
    stale: bool,
}

impl Slot {
    fn new(conn: Connection) -> Slot {
        Slot { conn, stale: false }
    }
}

/// Opens one of the two connections: [`open_writer`] or [`open_reader`].
type Opener = fn(&Path, Option<&RawKey>) -> Result<Connection, OpenError>;

/// SQLCipher's raw-key form of the database key, `x'<64 hex digits>'`: used as
/// the AES key as it is, without PBKDF2. Zeroed when dropped.
struct RawKey([u8; 67]);

impl RawKey {
    fn new(device: &DeviceKey) -> RawKey {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut key = device.derive(KeyUse::Database);
        let mut out = [0u8; 67];
        out[0] = b'x';
        out[1] = b'\'';
        for (i, b) in key.iter().enumerate() {
            out[2 + 2 * i] = HEX[usize::from(b >> 4)];
            out[3 + 2 * i] = HEX[usize::from(b & 0xf)];
        }
        out[66] = b'\'';
        key.fill(0);
        std::hint::black_box(&key);
        RawKey(out)
    }

    fn as_str(&self) -> &str {
        // Only ASCII is ever written into it.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl Clone for RawKey {
    fn clone(&self) -> RawKey {
        RawKey(self.0)
    }
}

impl Drop for RawKey {
    fn drop(&mut self) {
        self.0.fill(0);
        std::hint::black_box(&self.0);
    }
}

/// A failure of the file work around SQLite (export, rename, fsync).
#[derive(Debug)]
enum Fail {
    Sql(rusqlite::Error),
    Io(std::io::Error),
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Fail::Sql(e)
    }
}

impl From<std::io::Error> for Fail {
    fn from(e: std::io::Error) -> Self {
        Fail::Io(e)
    }
}

impl From<Fail> for Error {
    fn from(e: Fail) -> Self {
        match e {
            Fail::Sql(e) => Error::Storage(e),
            Fail::Io(e) => Error::Io(e),
        }
    }
}

impl Fail {
    fn opening(self, path: &Path) -> OpenError {
        match self {
            Fail::Sql(source) => OpenError::Sqlite {
                path: path.to_owned(),
                source,
            },
            Fail::Io(source) => OpenError::Io {
                path: path.to_owned(),
                source,
            },
        }
    }
}

/// `PRAGMA wal_checkpoint(TRUNCATE)`: false if a reader kept it from finishing.
fn truncate_wal(conn: &Connection) -> Result<bool, rusqlite::Error> {
    let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
    Ok(busy == 0)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves SQLite consistent (the open transaction
    // is rolled back when dropped), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn failure(code: std::ffi::c_int, message: &str) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), Some(message.into()))
}

/// `PRAGMA key`, the first statement on a connection to an encrypted file, and
/// the cipher settings, before any page is read. The statement text holds the
/// key, so it is zeroed after use.
fn apply_key(conn: &Connection, key: &RawKey, cipher: Cipher) -> rusqlite::Result<()> {
    let mut sql = String::with_capacity(80);
    sql.push_str("PRAGMA key = \"");
    sql.push_str(key.as_str());
    sql.push('"');
    let done = conn.execute_batch(&sql);
    let mut bytes = sql.into_bytes();
    bytes.fill(0);
    std::hint::black_box(&bytes);
    done?;
    if cipher == Cipher::Current {
        conn.pragma_update(None, "cipher_hmac_algorithm", HMAC_ALGORITHM)?;
    }
    // A SQLite without SQLCipher ignores `PRAGMA key` and would write plaintext.
    let cipher: Option<String> = conn
        .query_row("PRAGMA cipher_version", [], |r| r.get(0))
        .optional()?;
    match cipher {
        Some(_) => Ok(()),
        None => Err(failure(
            rusqlite::ffi::SQLITE_MISUSE,
            "this SQLite cannot encrypt (SQLCipher is not linked)",
        )),
    }
}

/// The size, in bytes, a WAL file is cut back to by the first commit after a
/// checkpoint restarts it. Without a limit the file keeps the largest size one
/// transaction ever gave it (a 4 MiB page of pushed changes, a VACUUM), with the
/// old frames past the write position readable in it; with it, only the first
/// 4 MiB are kept for reuse (old frames there stay until overwritten, as before).
/// 4 MiB is the automatic checkpoint's 1,000 pages of 4 KiB.
pub const WAL_SIZE_LIMIT: i64 = 4 * 1024 * 1024;

/// Settings of every connection, once the file is known to open.
fn configure(conn: &Connection, keyed: bool) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
    if keyed {
        conn.pragma_update(None, "cache_size", -ENCRYPTED_CACHE_KIB)?;
    }
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Freed pages and cells are overwritten with zeros: a purged or erased
    // document leaves nothing readable in the file's free space (ADR 0011).
    conn.pragma_update(None, "secure_delete", "ON")?;
    if cfg!(target_vendor = "apple") {
        conn.pragma_update(None, "fullfsync", "ON")?;
        conn.pragma_update(None, "checkpoint_fullfsync", "ON")?;
    }
    Ok(())
}

/// What is at a database path, read before SQLite touches it so a foreign file is
/// never written to.
#[derive(Debug, PartialEq, Eq)]
enum OnDisk {
    /// Nothing, or an empty file: a new database.
    New,
    /// A plaintext SQLite file.
    Plain,
    /// Something else: an encrypted database if it is a whole number of cipher
    /// pages, otherwise not a database.
    Other { len: u64 },
}

fn probe(path: &Path) -> std::io::Result<OnDisk> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(OnDisk::New),
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
    Ok(match read {
        0 => OnDisk::New,
        16 if &header == SQLITE_HEADER => OnDisk::Plain,
        _ => OnDisk::Other {
            len: file.metadata()?.len(),
        },
    })
}

/// `path` with `suffix` appended to its file name (`x.db` → `x.db-wal`).
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Where the encrypted copy is written before it replaces the database.
fn temp_path(path: &Path) -> PathBuf {
    beside(path, ".encrypting")
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Make a rename or unlink in `path`'s folder survive power loss.
fn sync_folder(path: &Path) -> std::io::Result<()> {
    if cfg!(unix) {
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::File::open(folder)?.sync_all()?;
    }
    Ok(())
}

/// A copy left by a conversion or rekey that did not finish: always encrypted,
/// never the only copy (the original is replaced only by a complete one).
fn remove_leftovers(path: &Path) -> std::io::Result<()> {
    let tmp = temp_path(path);
    remove_if_present(&beside(&tmp, "-journal"))?;
    remove_if_present(&tmp)
}

/// Write a copy of the database open on `conn` to `tmp`, encrypted with `key`
/// under the current cipher settings, and make it durable. `conn`'s WAL is checkpointed into its file first, so that
/// once `conn` is closed the original is complete in its one file.
fn export_encrypted(conn: &Connection, tmp: &Path, key: &RawKey) -> Result<(), Fail> {
    remove_if_present(&beside(tmp, "-journal"))?;
    remove_if_present(tmp)?;
    let (busy, _, _): (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    if busy != 0 {
        return Err(Fail::Sql(failure(
            rusqlite::ffi::SQLITE_BUSY,
            "the database is in use by another connection",
        )));
    }
    let tmp_text = tmp
        .to_str()
        .ok_or_else(|| std::io::Error::other("the database path is not UTF-8"))?;
    conn.execute(
        "ATTACH DATABASE ?1 AS vault KEY ?2",
        [tmp_text, key.as_str()],
    )?;
    let exported = (|| -> rusqlite::Result<()> {
        // Before the copy's first page is written.
        conn.pragma_update(Some("vault"), "cipher_hmac_algorithm", HMAC_ALGORITHM)?;
        // A rollback journal, not WAL: the copy must be whole in its one file.
        conn.pragma_update(Some("vault"), "journal_mode", "DELETE")?;
        conn.pragma_update(Some("vault"), "synchronous", "FULL")?;
        conn.query_row("SELECT sqlcipher_export('vault')", [], |_| Ok(()))?;
        // sqlcipher_export copies the schema and rows, not the header fields.
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let app_id: i64 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
        conn.pragma_update(Some("vault"), "user_version", version)?;
        conn.pragma_update(Some("vault"), "application_id", app_id)?;
        Ok(())
    })();
    let detached = conn.execute("DETACH DATABASE vault", []);
    exported?;
    detached?;
    std::fs::OpenOptions::new()
        .write(true)
        .open(tmp)?
        .sync_all()?;
    Ok(())
}

/// Put the encrypted copy `tmp` in place of `path` (one atomic rename: when this
/// fails, the original is still there). Every connection to `path` must be
/// closed, and its WAL and rollback journal empty: a journal left beside the new
/// file would be replayed into it.
fn replace(path: &Path, tmp: &Path) -> Result<(), Fail> {
    for journal in ["-wal", "-journal"] {
        match std::fs::metadata(beside(path, journal)) {
            Ok(m) if m.len() > 0 => {
                return Err(Fail::Io(std::io::Error::other(format!(
                    "the database's {journal} file could not be emptied"
                ))))
            }
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(tmp, meta.permissions())?;
    }
    std::fs::rename(tmp, path)?;
    Ok(())
}

/// After [`replace`]: make the rename durable, and only then remove the old
/// database's (empty) WAL and its wal-index.
fn settle(path: &Path) -> Result<(), Fail> {
    sync_folder(path)?;
    for sidecar in ["-wal", "-shm", "-journal"] {
        remove_if_present(&beside(path, sidecar))?;
    }
    sync_folder(path)?;
    Ok(())
}

/// Close `conn` (the last connection to close checkpoints and removes the WAL),
/// leaving an in-memory placeholder in its place until it is reopened.
fn close(conn: &mut Connection) -> rusqlite::Result<()> {
    let old = std::mem::replace(conn, Connection::open_in_memory()?);
    old.close().map_err(|(_, e)| e)
}

fn classify(e: rusqlite::Error, path: &Path, keyed: bool) -> OpenError {
    match e.sqlite_error_code() {
        // With a key, page 1 failing its HMAC is the key's fault (or page 1's:
        // they cannot be told apart, and either way nothing is touched).
        Some(rusqlite::ErrorCode::NotADatabase) if keyed => OpenError::WrongKey {
            path: path.to_owned(),
        },
        Some(rusqlite::ErrorCode::NotADatabase) | Some(rusqlite::ErrorCode::DatabaseCorrupt) => {
            OpenError::NotGridsync {
                path: path.to_owned(),
            }
        }
        _ => OpenError::Sqlite {
            path: path.to_owned(),
            source: e,
        },
    }
}

/// Check that the file open on `conn` is a gridsync database (or a new one) this
/// version can open; its application id and schema version.
fn check_ours(conn: &Connection, path: &Path, keyed: bool) -> Result<(i32, i64), OpenError> {
    let classify = |e| classify(e, path, keyed);
    let app_id: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(classify)?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(classify)?;
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .map_err(classify)?;
    if app_id != schema::APPLICATION_ID && (tables > 0 || version > 0 || app_id != 0) {
        return Err(OpenError::NotGridsync {
            path: path.to_owned(),
        });
    }
    if version > schema::current_version() {
        return Err(OpenError::TooNew {
            path: path.to_owned(),
            found: version,
            supported: schema::current_version(),
        });
    }
    Ok((app_id, version))
}

/// A connection to `path` with `key` (if any) under `cipher`, checked to be a
/// gridsync database this version can open: its application id and schema
/// version. Until then, closing it does not checkpoint a WAL into the file, so a
/// refusal leaves the file as it was.
fn open_checked(
    path: &Path,
    key: Option<&RawKey>,
    cipher: Cipher,
) -> Result<(Connection, i32, i64), OpenError> {
    let sqlite = |source| OpenError::Sqlite {
        path: path.to_owned(),
        source,
    };
    let conn = Connection::open(path).map_err(sqlite)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        .map_err(sqlite)?;
    if let Some(key) = key {
        apply_key(&conn, key, cipher).map_err(sqlite)?;
    }
    let (app_id, version) = check_ours(&conn, path, key.is_some())?;
    Ok((conn, app_id, version))
}

/// Open the writer, creating or migrating the schema.
fn open_writer(path: &Path, key: Option<&RawKey>) -> Result<Connection, OpenError> {
    let keyed = key.is_some();
    let sqlite = |source| OpenError::Sqlite {
        path: path.to_owned(),
        source,
    };
    let (mut writer, app_id, version) = open_checked(path, key, Cipher::Current)?;
    let mode: String = writer
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(|e| classify(e, path, keyed))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(sqlite(rusqlite::Error::InvalidQuery));
    }
    writer
        .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, false)
        .map_err(sqlite)?;
    configure(&writer, keyed).map_err(sqlite)?;
    if app_id == 0 {
        writer
            .pragma_update(None, "application_id", schema::APPLICATION_ID)
            .map_err(sqlite)?;
    }
    schema::migrate(&mut writer, version).map_err(|e| classify(e, path, keyed))?;
    Ok(writer)
}

/// Open the reader, once the writer has made the file a gridsync database.
fn open_reader(path: &Path, key: Option<&RawKey>) -> Result<Connection, OpenError> {
    let sqlite = |source| OpenError::Sqlite {
        path: path.to_owned(),
        source,
    };
    let reader = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite)?;
    if let Some(key) = key {
        apply_key(&reader, key, Cipher::Current).map_err(sqlite)?;
    }
    configure(&reader, key.is_some()).map_err(sqlite)?;
    Ok(reader)
}

/// Open the writer (creating or migrating the schema) and the reader.
fn connect(path: &Path, key: Option<&RawKey>) -> Result<(Connection, Connection), OpenError> {
    Ok((open_writer(path, key)?, open_reader(path, key)?))
}

/// Whether SQLCipher still trusts `conn`. One page failing its HMAC check puts
/// the connection in an error state for good: every later page it reads comes
/// back as zeros ("file is not a database", "database disk image is malformed").
/// SQLCipher 4.19 also decrypts the buffer of a read that failed, so one `EIO`
/// does it, though the file is intact (`docs/reliability.md`, scenario 3).
/// Asked after an operation fails, whatever its error says: the failed read
/// itself is an I/O error, the operations after it something else.
fn cipher_ok(conn: &Connection) -> bool {
    conn.query_row("PRAGMA cipher_status", [], |r| r.get::<_, String>(0))
        .is_ok_and(|status| status == "1")
}

/// Rewrite the gridsync database at `path` as a copy encrypted with `key` under
/// the current cipher settings, made durable and renamed over it. `from` is how
/// the file reads now: plaintext (`None`), or encrypted with that key under
/// SQLCipher 4's defaults. A foreign file, or one that does not open that way, is
/// refused untouched (`NotGridsync`, `WrongKey`).
fn convert(path: &Path, key: &RawKey, from: Option<&RawKey>) -> Result<(), OpenError> {
    let (conn, _, _) = open_checked(path, from, Cipher::Legacy)?;
    let tmp = temp_path(path);
    let done = export_encrypted(&conn, &tmp, key)
        .and_then(|()| conn.close().map_err(|(_, e)| Fail::Sql(e)))
        .and_then(|()| replace(path, &tmp));
    if done.is_err() {
        let _ = remove_leftovers(path);
    }
    done.and_then(|()| settle(path))
        .map_err(|e| e.opening(path))
}

/// Why a connection could not be reopened, as a SQLite error: what the
/// operation that needed it answers (a storage error).
fn reopen_failure(e: OpenError) -> rusqlite::Error {
    use rusqlite::ffi;
    let code = match e {
        OpenError::Sqlite { source, .. } => return source,
        OpenError::WrongKey { .. } | OpenError::NotGridsync { .. } => ffi::SQLITE_NOTADB,
        OpenError::Io { .. } => ffi::SQLITE_IOERR,
        _ => ffi::SQLITE_CANTOPEN,
    };
    failure(code, &e.to_string())
}

fn reopen_error(e: OpenError) -> Error {
    match e {
        OpenError::Io { source, .. } => Error::Io(source),
        other => Error::Storage(reopen_failure(other)),
    }
}

impl Db {
    /// Open (creating or migrating) the database at `path`: encrypted with a key
    /// derived from `key`, or plaintext if `None` (the relay's own files, tests).
    ///
    /// With a key, a plaintext gridsync database is first converted to an
    /// encrypted one (nothing lost; the plaintext file is gone afterwards), so is
    /// a file encrypted under SQLCipher 4's default settings (HMAC-SHA512), and an
    /// encrypted file that opens with the key under neither is
    /// [`OpenError::WrongKey`]. Without a key, an encrypted file is `WrongKey` too.
    /// A file that is not a gridsync database is refused and left untouched.
    pub fn open(path: &Path, key: Option<&DeviceKey>) -> Result<Db, OpenError> {
        let key = key.map(RawKey::new);
        let io = |source| OpenError::Io {
            path: path.to_owned(),
            source,
        };
        remove_leftovers(path).map_err(io)?;
        match probe(path).map_err(io)? {
            OnDisk::New => {}
            OnDisk::Plain => {
                if let Some(key) = &key {
                    convert(path, key, None)?;
                }
            }
            OnDisk::Other { len } if len % CIPHER_PAGE != 0 => {
                return Err(OpenError::NotGridsync {
                    path: path.to_owned(),
                })
            }
            OnDisk::Other { .. } if key.is_none() => {
                return Err(OpenError::WrongKey {
                    path: path.to_owned(),
                })
            }
            OnDisk::Other { .. } => {}
        }
        let (writer, reader) = match (connect(path, key.as_ref()), &key) {
            // Written before the current cipher settings, or under another key.
            (Err(OpenError::WrongKey { .. }), Some(k)) => {
                convert(path, k, Some(k))?;
                connect(path, key.as_ref())?
            }
            (opened, _) => opened?,
        };
        Ok(Db {
            path: path.to_owned(),
            writer: Mutex::new(Slot::new(writer)),
            reader: Mutex::new(Slot::new(reader)),
            key: Mutex::new(key),
        })
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file is encrypted.
    pub fn is_encrypted(&self) -> bool {
        lock(&self.key).is_some()
    }

    /// Encrypt the file under a key derived from `new` (re-encrypting it if it was
    /// encrypted, encrypting it if it was plaintext). Reads and writes wait
    /// meanwhile.
    ///
    /// An encrypted copy is written beside the file, made durable and renamed over
    /// it, so a crash at any moment leaves the file complete under the old key or
    /// the new one, with every write that had returned. After `Ok`, the file is
    /// under the new key. After an error it may be under either (a failure after
    /// the rename): keep both keys until an open succeeds.
    pub fn rekey(&self, new: &DeviceKey) -> Result<()> {
        let new = RawKey::new(new);
        let mut writer = lock(&self.writer);
        let mut reader = lock(&self.reader);
        let mut key = lock(&self.key);
        let tmp = temp_path(&self.path);
        remove_leftovers(&self.path)?;
        if let Err(e) = export_encrypted(&writer.conn, &tmp, &new) {
            let _ = remove_leftovers(&self.path);
            return Err(e.into());
        }
        // The reader first: the writer, closing last, checkpoints and removes the WAL.
        let renamed = close(&mut reader.conn)
            .and_then(|()| close(&mut writer.conn))
            .map_err(Fail::Sql)
            .and_then(|()| replace(&self.path, &tmp));
        if renamed.is_ok() {
            *key = Some(new);
        } else {
            let _ = remove_leftovers(&self.path);
        }
        let settled = renamed.and_then(|()| settle(&self.path));
        // Reopen under whichever key the file now has; if that fails, before each
        // connection's next operation.
        writer.stale = true;
        reader.stale = true;
        let (w, r) = connect(&self.path, key.as_ref()).map_err(reopen_error)?;
        *writer = Slot::new(w);
        *reader = Slot::new(r);
        settled.map_err(Error::from)
    }

    /// Run `op` on the connection in `slot`, first reopened with `open` if it is
    /// stale. If the reopen fails, its error is the answer (tried again next time);
    /// if `op` fails and SQLCipher no longer trusts the connection, it is stale:
    /// the file is read afresh by the next operation, and a page that is really
    /// corrupt fails that one too.
    fn with<T, E: From<rusqlite::Error>>(
        &self,
        slot: &Mutex<Slot>,
        open: Opener,
        op: impl FnOnce(&mut Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut slot = lock(slot);
        if slot.stale {
            let fresh = open(&self.path, lock(&self.key).as_ref()).map_err(reopen_failure)?;
            // The old one is closed second: never the last, so it does not touch
            // the file as it goes.
            drop(std::mem::replace(&mut slot.conn, fresh));
            slot.stale = false;
        }
        let out = op(&mut slot.conn);
        if out.is_err() && self.is_encrypted() && !cipher_ok(&slot.conn) {
            slot.stale = true;
        }
        out
    }

    /// Run `f` in one IMMEDIATE transaction; commit (durably) if it returns Ok.
    pub fn write<T, E: From<rusqlite::Error>>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.with(&self.writer, open_writer, |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
    }

    /// Write the WAL back into the database and truncate it to nothing, so no old
    /// page image (of a purged document, say) stays in the `-wal` file. Answers
    /// false if a reader kept it from finishing (it is tried again next time).
    pub fn checkpoint_truncate(&self) -> Result<bool, rusqlite::Error> {
        self.with(&self.writer, open_writer, |conn| truncate_wal(conn))
    }

    /// Rebuild the file from its live rows (`VACUUM`), then empty the WAL as
    /// [`Db::checkpoint_truncate`] does. After an erasure: `secure_delete` zeroes
    /// what is deleted, but not the copies of rows a page split or merge left in
    /// a page's unused space, which a rebuilt file no longer has. Rewrites the
    /// whole file: for a server's rare erasures, not a phone's purges.
    pub fn vacuum(&self) -> Result<bool, rusqlite::Error> {
        self.with(&self.writer, open_writer, |conn| {
            conn.execute_batch("VACUUM")?;
            truncate_wal(conn)
        })
    }

    /// Run `f` in a read transaction (a consistent snapshot).
    pub fn read<T, E: From<rusqlite::Error>>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.with(&self.reader, open_reader, |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
            f(&tx)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> DeviceKey {
        DeviceKey::from_bytes([n; 32])
    }

    /// A copy of `live`'s files (database, WAL, shared memory) beside it as
    /// `phone.db`, taken while `live` is open: its last writes still in the WAL,
    /// as a crash leaves them. Answers the copy's path.
    fn copy_while_open(live: &Path) -> PathBuf {
        let path = live.with_file_name("phone.db");
        for (p, bytes) in files(live) {
            let name = p.file_name().unwrap().to_str().unwrap();
            std::fs::write(live.with_file_name(name.replace("live", "phone")), bytes).unwrap();
        }
        assert!(std::fs::metadata(beside(&path, "-wal")).unwrap().len() > 0);
        path
    }

    /// The files of the database at `path` (itself, `-wal`, `-shm`) that exist.
    fn files(path: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        ["", "-wal", "-shm"]
            .iter()
            .map(|s| beside(path, s))
            .filter_map(|p| std::fs::read(&p).ok().map(|b| (p, b)))
            .collect()
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    fn put(db: &Db, k: &str, v: &str) {
        db.write(|tx| {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [k, v],
            )
        })
        .unwrap();
    }

    fn get(db: &Db, k: &str) -> Option<String> {
        db.read(|tx| {
            tx.query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0))
                .optional()
        })
        .unwrap()
    }

    #[test]
    fn foreign_and_corrupt_files_are_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();

        let text = dir.path().join("notes.db");
        std::fs::write(&text, "这不是数据库").unwrap();
        for key in [None, Some(&key(1))] {
            assert!(matches!(
                Db::open(&text, key),
                Err(OpenError::NotGridsync { .. })
            ));
            assert_eq!(std::fs::read_to_string(&text).unwrap(), "这不是数据库");
        }

        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        let before = std::fs::read(&other).unwrap();
        for key in [None, Some(&key(1))] {
            let err = Db::open(&other, key).err().expect("foreign db refused");
            assert!(err.to_string().contains("not a gridsync database"), "{err}");
            assert_eq!(std::fs::read(&other).unwrap(), before);
        }

        let ours = dir.path().join("ours.db");
        drop(Db::open(&ours, None).unwrap());
        let mut bytes = std::fs::read(&ours).unwrap();
        for b in bytes.iter_mut().skip(100) {
            *b = 0x5a;
        }
        std::fs::write(&ours, &bytes).unwrap();
        let _ = std::fs::remove_file(dir.path().join("ours.db-wal"));
        assert!(matches!(
            Db::open(&ours, None),
            Err(OpenError::NotGridsync { .. })
        ));
        assert!(ours.exists());
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        drop(Db::open(&path, None).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        assert!(matches!(
            Db::open(&path, None),
            Err(OpenError::TooNew { found: 99, .. })
        ));
    }

    #[test]
    fn opens_in_wal_with_full_sync() {
        let dir = tempfile::tempdir().unwrap();
        for key in [None, Some(&key(1))] {
            let db = Db::open(&dir.path().join(format!("{}.db", key.is_some())), key).unwrap();
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

    fn cipher_settings(conn: &Connection) -> Vec<String> {
        conn.prepare("PRAGMA cipher_settings")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn sqlcipher_4_with_hmac_sha256_and_a_raw_key() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("a.db"), Some(&key(1))).unwrap();
        assert!(db.is_encrypted());
        for conn in [&db.writer, &db.reader] {
            let slot = lock(conn);
            let cache: i64 = slot
                .conn
                .pragma_query_value(None, "cache_size", |r| r.get(0))
                .unwrap();
            assert_eq!(cache, -ENCRYPTED_CACHE_KIB);
            let settings = cipher_settings(&slot.conn);
            for want in [
                "PRAGMA cipher_page_size = 4096;",
                "PRAGMA cipher_hmac_algorithm = HMAC_SHA256;",
                "PRAGMA cipher_use_hmac = 1;",
            ] {
                assert!(settings.iter().any(|s| s == want), "{want} in {settings:?}");
            }
        }
        drop(db);
        // The file itself is written so: SQLCipher's defaults do not read it.
        let conn = Connection::open(dir.path().join("a.db")).unwrap();
        apply_key(&conn, &RawKey::new(&key(1)), Cipher::Legacy).unwrap();
        let err = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap_err();
        assert_eq!(
            err.sqlite_error_code(),
            Some(rusqlite::ErrorCode::NotADatabase)
        );
    }

    #[test]
    fn a_file_under_sqlcipher_4_defaults_is_converted_with_nothing_lost() {
        let dir = tempfile::tempdir().unwrap();
        // A phone's file from before HMAC-SHA256: SQLCipher 4's defaults, the
        // last write still in the WAL, as a crash leaves it.
        let live = dir.path().join("live.db");
        let mut conn = Connection::open(&live).unwrap();
        apply_key(&conn, &RawKey::new(&key(1)), Cipher::Legacy).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "application_id", schema::APPLICATION_ID)
            .unwrap();
        schema::migrate(&mut conn, 0).unwrap();
        assert!(cipher_settings(&conn)
            .iter()
            .any(|s| s == "PRAGMA cipher_hmac_algorithm = HMAC_SHA512;"));
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('canary', '张三家漏水')",
            [],
        )
        .unwrap();
        let path = copy_while_open(&live);
        drop(conn);

        // A wrong key is still WrongKey, and the file is left as it was.
        let data = |p: &Path| -> Vec<(PathBuf, Vec<u8>)> {
            files(p)
                .into_iter()
                .filter(|(f, _)| !f.to_string_lossy().ends_with("-shm"))
                .collect()
        };
        let before = data(&path);
        for wrong in [Some(&key(2)), None] {
            let err = Db::open(&path, wrong).err().expect("refused");
            assert!(matches!(err, OpenError::WrongKey { .. }), "{err}");
            assert!(data(&path) == before, "changed by a wrong key");
        }
        assert!(!temp_path(&path).exists());

        let db = Db::open(&path, Some(&key(1))).unwrap();
        assert_eq!(get(&db, "canary").as_deref(), Some("张三家漏水"));
        let version: i64 = db
            .read(|tx| tx.query_row("PRAGMA user_version", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(version, schema::current_version());
        assert!(cipher_settings(&lock(&db.writer).conn)
            .iter()
            .any(|s| s == "PRAGMA cipher_hmac_algorithm = HMAC_SHA256;"));
        put(&db, "after", "1");
        drop(db);
        assert!(!temp_path(&path).exists());
        for (p, bytes) in files(&path) {
            assert!(
                !contains(&bytes, "张三家漏水".as_bytes()),
                "{}",
                p.display()
            );
        }
        // Converted once: it now opens under the current settings directly.
        let db = Db::open(&path, Some(&key(1))).unwrap();
        assert_eq!(get(&db, "after").as_deref(), Some("1"));
        assert_eq!(get(&db, "canary").as_deref(), Some("张三家漏水"));
    }

    #[test]
    fn a_key_encrypts_every_file_and_the_same_key_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("phone.db");
        let canary = "张三家漏水 13812345678";
        let db = Db::open(&path, Some(&key(1))).unwrap();
        put(&db, "canary", canary);
        // While the WAL holds the row, then after a checkpoint.
        let live = files(&path);
        assert!(live
            .iter()
            .any(|(p, b)| p.ends_with("phone.db-wal") && !b.is_empty()));
        lock(&db.writer)
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        for (p, bytes) in live.iter().chain(&files(&path)) {
            assert!(!contains(bytes, canary.as_bytes()), "{}", p.display());
            assert!(!contains(bytes, b"13812345678"), "{}", p.display());
            assert!(!bytes.starts_with(SQLITE_HEADER), "{}", p.display());
        }
        drop(db);
        let db = Db::open(&path, Some(&key(1))).unwrap();
        assert_eq!(get(&db, "canary").as_deref(), Some(canary));

        // The same scan finds it in a plaintext file: the scan can fail.
        let plain = dir.path().join("plain.db");
        let db = Db::open(&plain, None).unwrap();
        put(&db, "canary", canary);
        assert!(files(&plain)
            .iter()
            .any(|(_, b)| contains(b, canary.as_bytes())));
    }

    #[test]
    fn a_wrong_or_missing_key_is_wrong_key_and_touches_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("phone.db");
        let db = Db::open(&path, Some(&key(1))).unwrap();
        put(&db, "canary", "x");
        // A copy taken while the WAL still holds the row, as a crash leaves it.
        let crashed = dir.path().join("crashed.db");
        for (p, bytes) in files(&path) {
            let name = p
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .replace("phone", "crashed");
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        drop(db);
        // Everything but the wal-index (`-shm`), which SQLite rebuilds from the WAL.
        let data = |p: &Path| -> Vec<(PathBuf, Vec<u8>)> {
            files(p)
                .into_iter()
                .filter(|(f, _)| !f.to_string_lossy().ends_with("-shm"))
                .collect()
        };
        for path in [&path, &crashed] {
            let before = data(path);
            for wrong in [Some(&key(2)), None] {
                let err = Db::open(path, wrong).err().expect("refused");
                assert!(matches!(err, OpenError::WrongKey { .. }), "{err}");
                assert!(data(path) == before, "{} changed", path.display());
            }
            let db = Db::open(path, Some(&key(1))).unwrap();
            assert_eq!(get(&db, "canary").as_deref(), Some("x"));
        }
    }

    #[test]
    fn a_plaintext_database_is_encrypted_at_its_first_open_with_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.db");
        let db = Db::open(&live, None).unwrap();
        put(&db, "canary", "张三家漏水 13812345678");
        let version: i64 = db
            .read(|tx| tx.query_row("PRAGMA user_version", [], |r| r.get(0)))
            .unwrap();
        // An install from before: the row still in the WAL, as a crash leaves it.
        let path = copy_while_open(&live);
        drop(db);
        for (p, _) in files(&live) {
            std::fs::remove_file(p).unwrap();
        }

        let db = Db::open(&path, Some(&key(1))).unwrap();
        assert!(db.is_encrypted());
        assert_eq!(
            get(&db, "canary").as_deref(),
            Some("张三家漏水 13812345678")
        );
        let (app_id, v): (i32, i64) = db
            .read(|tx| {
                Ok((
                    tx.query_row("PRAGMA application_id", [], |r| r.get(0))?,
                    tx.query_row("PRAGMA user_version", [], |r| r.get(0))?,
                ))
            })
            .map_err(|e: rusqlite::Error| e)
            .unwrap();
        assert_eq!((app_id, v), (schema::APPLICATION_ID, version));
        drop(db);
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let p = entry.unwrap().path();
            let bytes = std::fs::read(&p).unwrap();
            assert!(
                !contains(&bytes, "张三家漏水".as_bytes()),
                "{}",
                p.display()
            );
        }
        assert!(!temp_path(&path).exists());
        assert!(matches!(
            Db::open(&path, None),
            Err(OpenError::WrongKey { .. })
        ));
        assert!(matches!(
            Db::open(&path, Some(&key(2))),
            Err(OpenError::WrongKey { .. })
        ));
    }

    #[test]
    fn an_unfinished_copy_is_removed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("phone.db");
        drop(Db::open(&path, Some(&key(1))).unwrap());
        std::fs::write(temp_path(&path), [7u8; 5000]).unwrap();
        std::fs::write(beside(&temp_path(&path), "-journal"), [7u8; 100]).unwrap();
        drop(Db::open(&path, Some(&key(1))).unwrap());
        assert!(!temp_path(&path).exists());
        assert!(!beside(&temp_path(&path), "-journal").exists());
    }

    #[test]
    fn rekey_moves_the_file_to_the_new_key_and_keeps_working() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("phone.db");
        let db = Db::open(&path, Some(&key(1))).unwrap();
        put(&db, "a", "1");
        db.rekey(&key(2)).unwrap();
        assert_eq!(get(&db, "a").as_deref(), Some("1"));
        put(&db, "b", "2");
        assert!(!temp_path(&path).exists());
        drop(db);
        assert!(matches!(
            Db::open(&path, Some(&key(1))),
            Err(OpenError::WrongKey { .. })
        ));
        let db = Db::open(&path, Some(&key(2))).unwrap();
        assert_eq!(get(&db, "b").as_deref(), Some("2"));

        // A plaintext database is encrypted by its first rekey.
        let plain = dir.path().join("plain.db");
        let db = Db::open(&plain, None).unwrap();
        put(&db, "a", "1");
        db.rekey(&key(3)).unwrap();
        assert!(db.is_encrypted());
        drop(db);
        let db = Db::open(&plain, Some(&key(3))).unwrap();
        assert_eq!(get(&db, "a").as_deref(), Some("1"));
    }

    /// Overwrite every page of `path` but the first with noise, as a failed read
    /// leaves its buffer; answers the file as it was, to put back.
    fn spoil(path: &Path) -> Vec<u8> {
        let good = std::fs::read(path).unwrap();
        let mut bad = good.clone();
        for b in bad.iter_mut().skip(CIPHER_PAGE as usize) {
            *b ^= 0x5a;
        }
        std::fs::write(path, bad).unwrap();
        good
    }

    fn count(db: &Db) -> rusqlite::Result<i64> {
        db.read(|tx| tx.query_row("SELECT count(*) FROM meta", [], |r| r.get(0)))
    }

    fn is_storage_failure(e: &rusqlite::Error) {
        use rusqlite::ErrorCode::*;
        assert!(
            matches!(
                e.sqlite_error_code(),
                Some(DatabaseCorrupt | NotADatabase | SystemIoFailure)
            ),
            "{e}"
        );
    }

    /// An encrypted database whose `meta` rows fill several pages, all in the file
    /// (none in the WAL); answers its path and the number of rows.
    fn filled(dir: &Path) -> (PathBuf, i64) {
        let path = dir.join("phone.db");
        let db = Db::open(&path, Some(&key(1))).unwrap();
        db.write(|tx| {
            for i in 0..300 {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                    (format!("k{i}"), ROW.repeat(10)),
                )?;
            }
            Ok::<_, rusqlite::Error>(())
        })
        .unwrap();
        assert!(db.checkpoint_truncate().unwrap());
        let rows = count(&db).unwrap();
        (path, rows)
    }

    const ROW: &str = "张三家漏水";

    // SQLCipher decrypts a page even when its read failed, and one page failing
    // its HMAC puts the connection in an error state for good: every later
    // operation failed until the app restarted, though the file was intact
    // (`docs/reliability.md`, scenario 3). A page that reads as noise once does
    // the same to a connection; the operation after it must work. Each test opens
    // the database afresh, so the rows' pages are read from the file.

    #[test]
    fn the_read_after_a_page_failed_its_check_works() {
        let dir = tempfile::tempdir().unwrap();
        let (path, rows) = filled(dir.path());
        let db = Db::open(&path, Some(&key(1))).unwrap();
        let good = spoil(&path);
        is_storage_failure(&count(&db).unwrap_err());
        std::fs::write(&path, &good).unwrap();
        assert_eq!(count(&db).unwrap(), rows);
        put(&db, "after", "1");
        assert_eq!(count(&db).unwrap(), rows + 1);
    }

    #[test]
    fn the_write_after_a_page_failed_its_check_works() {
        let dir = tempfile::tempdir().unwrap();
        let (path, rows) = filled(dir.path());
        let db = Db::open(&path, Some(&key(1))).unwrap();
        let good = spoil(&path);
        let failed = db
            .write(|tx| tx.execute("UPDATE meta SET value = 'x' WHERE key LIKE 'k%'", []))
            .unwrap_err();
        is_storage_failure(&failed);
        std::fs::write(&path, &good).unwrap();
        put(&db, "after", "1");
        assert!(db.checkpoint_truncate().unwrap());
        assert_eq!(count(&db).unwrap(), rows + 1);
        assert_eq!(get(&db, "k7").as_deref(), Some(&*ROW.repeat(10)));
    }

    #[test]
    fn a_page_that_keeps_failing_its_check_fails_every_operation() {
        let dir = tempfile::tempdir().unwrap();
        let (path, rows) = filled(dir.path());
        let db = Db::open(&path, Some(&key(1))).unwrap();
        let good = spoil(&path);
        for _ in 0..3 {
            is_storage_failure(&count(&db).unwrap_err());
            let deleted = db.write(|tx| tx.execute("DELETE FROM meta WHERE key = 'k1'", []));
            is_storage_failure(&deleted.unwrap_err());
        }
        std::fs::write(&path, &good).unwrap();
        assert_eq!(count(&db).unwrap(), rows);
        assert_eq!(get(&db, "k1").as_deref(), Some(&*ROW.repeat(10)));
    }
}
