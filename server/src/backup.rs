//! Backup and restore of a relay, safe while `gridsync serve` runs, on either
//! database.
//!
//! - **SQLite** (the embedded default): `relay.db` first, then `server.db`, each
//!   with `VACUUM INTO` (a consistent snapshot, checked with `PRAGMA
//!   integrity_check`). A push commits to `server.db` before the log in
//!   `relay.db`, so every change the copied log names is in the copied replica.
//! - **PostgreSQL**: `pg_dump` of the shared database (one consistent snapshot) into
//!   `relay.pgdump`. Nodes' replicas are caches and are not backed up: after a
//!   restore, every node starts with an empty data folder and rebuilds its replica
//!   from the restored log.
//!
//! Then the photos every backed-up database records, read from the photo store
//! (local folder or object store) into the backup's `blobs/`. Photos are stored
//! before they are recorded, so every recorded photo is there. Changes
//! acknowledged after the snapshot are not in the backup: devices that pushed them
//! keep them (they were acknowledged), so a restored relay misses them until those
//! devices are enrolled again with their data.
//!
//! The audit log (`audit.db`, who saw residents' full numbers) is in the data
//! folder on either database, and is backed up and restored the same way
//! (`VACUUM INTO`) when the relay has one.
//!
//! Erasures (ADR 0011): a backup cannot be edited, so backups are kept for a
//! bounded time ([`prune`]) and every tombstone is also written next to the
//! backups, in `erasures.log` (append-only, one `erased_ms<TAB>doc<TAB>reason` line
//! each: ids, times and reason codes, nothing personal). [`restore`] applies every
//! tombstone in it — including those recorded after the backup was taken — before
//! the restored relay serves anything.

use std::path::Path;
use std::process::Command;

use rusqlite::Connection;

use crate::blobstore::{open_blob_store, BlobStore, LocalBlobStore};
use crate::relay::store::{open_store, RelayStore};
use crate::relay::Storage;

/// The files of a SQLite relay's data folder that a backup holds.
const DATABASES: [&str; 2] = ["relay.db", "server.db"];
/// The audit log, in any relay's data folder once someone has been audited.
const AUDIT: &str = crate::audit::FILE;
/// A PostgreSQL relay's dump in a backup.
const PG_DUMP: &str = "relay.pgdump";
const BLOBS: &str = "blobs";
/// The tombstones, next to the backups (in the folder that holds them).
pub const ERASURES_LOG: &str = "erasures.log";
/// Written into every backup: when it was taken (`taken_ms=…`), so [`prune`]
/// knows it for a backup and how old it is.
const MARKER: &str = "backup-info";
/// How long backups are kept by default (ADR 0011), in days.
pub const DEFAULT_RETENTION_DAYS: u32 = 30;

/// What a backup or restore did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Copied {
    /// Databases copied.
    pub databases: usize,
    /// Photo files copied.
    pub photos: usize,
    /// Tombstones applied (a restore).
    pub erasures: usize,
}

type Result<T> = std::result::Result<T, String>;

fn io(path: &Path) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

fn sqlite(path: &Path) -> impl Fn(rusqlite::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

/// Refuse a target that holds anything: a backup never overwrites, a restore never
/// mixes two relays' data.
fn empty_target(dir: &Path) -> Result<()> {
    if dir.exists() && std::fs::read_dir(dir).map_err(io(dir))?.next().is_some() {
        return Err(format!(
            "{} is not empty; give an empty or new folder",
            dir.display()
        ));
    }
    std::fs::create_dir_all(dir).map_err(io(dir))
}

/// Check a database file: it opens and `PRAGMA integrity_check` says ok.
fn check(path: &Path) -> Result<()> {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(sqlite(path))?;
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(sqlite(path))?;
    if verdict == "ok" {
        Ok(())
    } else {
        Err(format!("{} is damaged: {verdict}", path.display()))
    }
}

/// Copy every photo `store` records from `from` to `to`.
/// Every change in a restored log must pass the checked decoder, as it did when it
/// was pushed: a backup from a compromised or damaged source is refused before a
/// relay serves it to phones.
fn check_log(store: &dyn RelayStore) -> Result<()> {
    let mut after = 0;
    let mut bad = 0u64;
    loop {
        let page = store
            .log_after(after, None, 4 * 1024 * 1024)
            .map_err(|e| e.to_string())?;
        let Some(&(last, _)) = page.last() else {
            break;
        };
        bad += page
            .iter()
            .filter(|(_, e)| gridsync_core::sync::decode_change(&e.bytes).is_err())
            .count() as u64;
        after = last;
    }
    if bad > 0 {
        return Err(format!(
            "the restored log holds {bad} changes that are not acceptable Automerge changes \
             (damaged or tampered backup); do not serve this data folder"
        ));
    }
    Ok(())
}

fn copy_photos(store: &dyn RelayStore, from: &dyn BlobStore, to: &dyn BlobStore) -> Result<usize> {
    let last = store.last_blob().map_err(|e| e.to_string())?;
    let (mut after, mut copied) = (0, 0);
    loop {
        let batch = store
            .blobs_after(after, last, 500)
            .map_err(|e| e.to_string())?;
        let Some(&(position, _)) = batch.last() else {
            return Ok(copied);
        };
        for (_, hash) in batch {
            let hash = hash
                .parse()
                .map_err(|_| format!("a recorded photo has a malformed hash: {hash}"))?;
            let bytes = from.read(&hash).map_err(|e| e.to_string())?;
            to.put(&hash, &bytes).map_err(|e| e.to_string())?;
            copied += 1;
        }
        after = position;
    }
}

/// Arguments and environment that point PostgreSQL's tools at `url`, with the
/// password in the environment rather than on a command line others can see.
fn libpq(command: &str, url: &str) -> Result<Command> {
    let config: postgres::Config = url
        .parse()
        .map_err(|e| format!("database_url is not a PostgreSQL URL: {e}"))?;
    let quote = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
    let mut info = Vec::new();
    for host in config.get_hosts() {
        match host {
            postgres::config::Host::Tcp(h) => info.push(format!("host={}", quote(h))),
            postgres::config::Host::Unix(p) => {
                info.push(format!("host={}", quote(&p.to_string_lossy())))
            }
        }
    }
    if let Some(port) = config.get_ports().first() {
        info.push(format!("port={port}"));
    }
    if let Some(user) = config.get_user() {
        info.push(format!("user={}", quote(user)));
    }
    if let Some(db) = config.get_dbname() {
        info.push(format!("dbname={}", quote(db)));
    }
    let mut cmd = Command::new(command);
    cmd.arg("--dbname").arg(info.join(" "));
    if let Some(password) = config.get_password() {
        cmd.env("PGPASSWORD", String::from_utf8_lossy(password).into_owned());
    }
    Ok(cmd)
}

/// Run a PostgreSQL tool, saying clearly if it is missing or fails.
fn run(mut cmd: Command, what: &str) -> Result<()> {
    let out = cmd.output().map_err(|e| {
        format!("cannot run {what} ({e}); install PostgreSQL's client tools (Debian: postgresql-client)")
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Back up the relay (`data`, `storage`) into the new or empty folder `to`.
pub fn backup(data: &Path, storage: &Storage, to: &Path) -> Result<Copied> {
    if storage.database_url.is_none() {
        for name in DATABASES {
            if !data.join(name).exists() {
                return Err(format!(
                    "{} has no {name}: not a relay's data folder",
                    data.display()
                ));
            }
        }
    }
    empty_target(to)?;
    let mut done = Copied::default();
    match &storage.database_url {
        Some(url) => {
            let mut dump = libpq("pg_dump", url)?;
            dump.args(["--format=custom", "--no-owner", "--no-privileges", "--file"])
                .arg(to.join(PG_DUMP));
            run(dump, "pg_dump")?;
            done.databases = 1;
        }
        None => {
            for name in DATABASES {
                snapshot(&data.join(name), &to.join(name))?;
                done.databases += 1;
            }
        }
    }
    if data.join(AUDIT).exists() {
        snapshot(&data.join(AUDIT), &to.join(AUDIT))?;
        done.databases += 1;
    }
    // The photos the backed-up database records (the live one records at least
    // those).
    let store = open_store(data, storage.database_url.as_deref()).map_err(|e| e.to_string())?;
    check_log(store.as_ref())?;
    let photos = open_blob_store(storage.photos.as_ref(), data).map_err(|e| e.to_string())?;
    done.photos = copy_photos(
        store.as_ref(),
        photos.as_ref(),
        &LocalBlobStore::at(&to.join(BLOBS)),
    )?;
    let marker = to.join(MARKER);
    std::fs::write(
        &marker,
        format!("taken_ms={}\n", chrono::Utc::now().timestamp_millis()),
    )
    .map_err(io(&marker))?;
    // Every tombstone so far, next to the backups: a restore of this backup (or
    // an older one) applies them all.
    record_erasures(store.as_ref(), &backups_folder(to))?;
    Ok(done)
}

/// A consistent copy of a live SQLite database, checked.
fn snapshot(source: &Path, copy: &Path) -> Result<()> {
    let conn = Connection::open(source).map_err(sqlite(source))?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(sqlite(source))?;
    conn.execute("VACUUM INTO ?1", [copy.to_string_lossy()])
        .map_err(sqlite(source))?;
    check(copy)
}

/// The folder that holds backup `to` (where `erasures.log` lives).
pub fn backups_folder(to: &Path) -> std::path::PathBuf {
    match to.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => std::path::PathBuf::from("."),
    }
}

/// One line of `erasures.log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedErasure {
    /// When, ms since the epoch.
    pub erased_ms: i64,
    /// The erased document.
    pub doc: gridsync_core::DocId,
    /// The reason code.
    pub reason: String,
}

/// Read `erasures.log` in `folder` (none if there is no such file). A line that
/// does not parse is an error: a tombstone must never be skipped silently.
pub fn read_erasures(folder: &Path) -> Result<Vec<LoggedErasure>> {
    read_erasures_file(&folder.join(ERASURES_LOG))
}

/// Read an `erasures.log` file (none if it does not exist).
pub fn read_erasures_file(path: &Path) -> Result<Vec<LoggedErasure>> {
    let path = path.to_owned();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(&path)(e)),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let bad = || {
                format!(
                    "{} line {}: not `ms<TAB>doc<TAB>reason`",
                    path.display(),
                    i + 1
                )
            };
            let mut parts = line.split('\t');
            let (Some(ms), Some(doc), Some(reason)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(bad());
            };
            Ok(LoggedErasure {
                erased_ms: ms.parse().map_err(|_| bad())?,
                doc: doc.parse().map_err(|_| bad())?,
                reason: reason.to_owned(),
            })
        })
        .collect()
}

/// Append to `erasures.log` in `folder` every tombstone of `store` it does not
/// list yet (created if missing; synced). Answers how many were appended.
pub fn record_erasures(store: &dyn RelayStore, folder: &Path) -> Result<usize> {
    use std::io::Write;
    let listed: std::collections::HashSet<_> =
        read_erasures(folder)?.into_iter().map(|e| e.doc).collect();
    let missing: Vec<_> = store
        .erasures(0)
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|e| !listed.contains(&e.doc))
        .collect();
    if missing.is_empty() {
        return Ok(0);
    }
    std::fs::create_dir_all(folder).map_err(io(folder))?;
    let path = folder.join(ERASURES_LOG);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io(&path))?;
    let mut text = String::new();
    for e in &missing {
        text.push_str(&format!("{}\t{}\t{}\n", e.erased_ms, e.doc, e.reason));
    }
    file.write_all(text.as_bytes()).map_err(io(&path))?;
    file.sync_all().map_err(io(&path))?;
    Ok(missing.len())
}

/// Delete the backups in `folder` taken more than `days` days before `now_ms`:
/// folders holding a backup's marker (or, from before it, `relay.db` and
/// `server.db`, or `relay.pgdump`, aged by that file's time). Nothing else is
/// touched, `erasures.log` included. Answers the folders deleted.
pub fn prune(folder: &Path, days: u32, now_ms: i64) -> Result<Vec<std::path::PathBuf>> {
    let cutoff = now_ms - i64::from(days) * 24 * 60 * 60 * 1000;
    let mut gone = Vec::new();
    for entry in std::fs::read_dir(folder).map_err(io(folder))? {
        let path = entry.map_err(io(folder))?.path();
        if !path.is_dir() {
            continue;
        }
        let Some(taken_ms) = backup_time(&path)? else {
            continue;
        };
        if taken_ms < cutoff {
            std::fs::remove_dir_all(&path).map_err(io(&path))?;
            gone.push(path);
        }
    }
    gone.sort();
    Ok(gone)
}

/// When the backup in `dir` was taken, or `None` if `dir` is not a backup.
fn backup_time(dir: &Path) -> Result<Option<i64>> {
    let marker = dir.join(MARKER);
    if marker.exists() {
        let text = std::fs::read_to_string(&marker).map_err(io(&marker))?;
        let ms = text
            .lines()
            .find_map(|l| l.strip_prefix("taken_ms="))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| format!("{} is damaged", marker.display()))?;
        return Ok(Some(ms));
    }
    let older = if dir.join(PG_DUMP).exists() {
        dir.join(PG_DUMP)
    } else if DATABASES.iter().all(|n| dir.join(n).exists()) {
        dir.join(DATABASES[0])
    } else {
        return Ok(None);
    };
    let modified = std::fs::metadata(&older)
        .and_then(|m| m.modified())
        .map_err(io(&older))?;
    let ms = modified
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    Ok(Some(ms))
}

/// Restore the backup `from` into the relay (`data`, `storage`): a new or empty
/// data folder, and, on PostgreSQL, an empty database. Every tombstone of
/// `erasures` (`erasures.log` next to the backups) is applied before anything is
/// served: the log rows and replica rows of each erased document are deleted, as
/// [`crate::relay::Relay::erase`] does.
pub fn restore(
    from: &Path,
    data: &Path,
    storage: &Storage,
    erasures: &[LoggedErasure],
) -> Result<Copied> {
    let pg = from.join(PG_DUMP).exists();
    match (&storage.database_url, pg) {
        (Some(_), false) => {
            return Err(format!(
                "{} is a SQLite relay's backup; restore it without database_url",
                from.display()
            ))
        }
        (None, true) => {
            return Err(format!(
                "{} is a PostgreSQL relay's backup; give the database_url to restore it into",
                from.display()
            ))
        }
        (None, false) => {
            for name in DATABASES {
                check(&from.join(name))?;
            }
        }
        (Some(_), true) => {}
    }
    empty_target(data)?;
    let mut done = Copied::default();
    match &storage.database_url {
        Some(url) => {
            let mut client = postgres::Client::connect(url, postgres::NoTls)
                .map_err(|e| format!("cannot reach the database: {e}"))?;
            let tables: i64 = client
                .query_one(
                    "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
                    &[],
                )
                .and_then(|r| r.try_get(0))
                .map_err(|e| e.to_string())?;
            if tables > 0 {
                return Err("the database is not empty; restore into a new, empty database".into());
            }
            let mut restore = libpq("pg_restore", url)?;
            restore
                .args(["--no-owner", "--exit-on-error", "--single-transaction"])
                .arg(from.join(PG_DUMP));
            run(restore, "pg_restore")?;
            done.databases = 1;
        }
        None => {
            for name in DATABASES {
                let (copy, target) = (from.join(name), data.join(name));
                std::fs::copy(&copy, &target).map_err(io(&copy))?;
                done.databases += 1;
            }
        }
    }
    let audit = from.join(AUDIT);
    if audit.exists() {
        check(&audit)?;
        std::fs::copy(&audit, data.join(AUDIT)).map_err(io(&audit))?;
        done.databases += 1;
    }
    let store = open_store(data, storage.database_url.as_deref()).map_err(|e| e.to_string())?;
    let photos = open_blob_store(storage.photos.as_ref(), data).map_err(|e| e.to_string())?;
    check_log(store.as_ref())?;
    for e in erasures {
        crate::relay::tombstoned_kind(&e.doc).map_err(|why| format!("{}: {why}", e.doc))?;
        store
            .erase(&e.doc, &e.reason, e.erased_ms, None)
            .map_err(|e| e.to_string())?;
    }
    // Their photos are not copied below; a photo store kept from before (a
    // bucket) may still hold them. One that fails stays listed for the relay's
    // first sweep: the restore goes on.
    match crate::relay::remove_erased_photos(store.as_ref(), photos.as_ref()) {
        Ok(done) if done.failed.is_empty() => {}
        Ok(done) => tracing::warn!(
            photos = done.failed.len(),
            "erased photos not removed from the photo store yet; the relay's first sweep tries again"
        ),
        Err(e) => tracing::warn!(
            error = %e,
            "erased photos not listed; the relay's first sweep removes them"
        ),
    }
    store.scrub().map_err(|e| e.to_string())?;
    done.erasures = erasures.len();
    if storage.database_url.is_none() {
        // The replica: opening the relay erases every tombstoned document from it.
        drop(store);
        crate::relay::Relay::open_with(data, None, storage).map_err(|e| e.to_string())?;
    }
    let store = open_store(data, storage.database_url.as_deref()).map_err(|e| e.to_string())?;
    done.photos = copy_photos(
        store.as_ref(),
        &LocalBlobStore::at(&from.join(BLOBS)),
        photos.as_ref(),
    )?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_MS: i64 = 24 * 60 * 60 * 1000;

    fn backup_at(folder: &Path, name: &str, taken_ms: i64) -> std::path::PathBuf {
        let dir = folder.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(MARKER), format!("taken_ms={taken_ms}\n")).unwrap();
        std::fs::write(dir.join("relay.db"), b"x").unwrap();
        dir
    }

    #[test]
    fn prune_deletes_only_backups_older_than_the_retention() {
        let folder = tempfile::tempdir().unwrap();
        let now = 100 * DAY_MS;
        let old = backup_at(folder.path(), "old", now - 31 * DAY_MS);
        let recent = backup_at(folder.path(), "recent", now - 29 * DAY_MS);
        // Not a backup: no marker, no databases.
        let other = folder.path().join("notes");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("readme.txt"), b"keep me").unwrap();
        std::fs::write(folder.path().join(ERASURES_LOG), b"").unwrap();

        let gone = prune(folder.path(), 30, now).unwrap();
        assert_eq!(gone, vec![old.clone()]);
        assert!(!old.exists() && recent.exists() && other.exists());
        assert!(folder.path().join(ERASURES_LOG).exists(), "never pruned");
    }

    #[test]
    fn erasures_log_lines_are_read_strictly() {
        let folder = tempfile::tempdir().unwrap();
        assert!(read_erasures(folder.path()).unwrap().is_empty(), "no file");
        let doc = "person-0123456789abcdef0123456789abcdef";
        std::fs::write(
            folder.path().join(ERASURES_LOG),
            format!("1700000000000\t{doc}\tat-request\n"),
        )
        .unwrap();
        let read = read_erasures(folder.path()).unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].doc.as_str(), doc);
        assert_eq!(
            (read[0].erased_ms, read[0].reason.as_str()),
            (1_700_000_000_000, "at-request")
        );
        // A damaged line is an error, never a tombstone skipped.
        std::fs::write(
            folder.path().join(ERASURES_LOG),
            format!("soon\t{doc}\tat-request\n"),
        )
        .unwrap();
        assert!(read_erasures(folder.path()).is_err());
    }
}
