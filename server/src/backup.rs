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

use std::path::Path;
use std::process::Command;

use rusqlite::Connection;

use crate::blobstore::{open_blob_store, BlobStore, LocalBlobStore};
use crate::relay::store::{open_store, RelayStore};
use crate::relay::Storage;

/// The files of a SQLite relay's data folder that a backup holds.
const DATABASES: [&str; 2] = ["relay.db", "server.db"];
/// A PostgreSQL relay's dump in a backup.
const PG_DUMP: &str = "relay.pgdump";
const BLOBS: &str = "blobs";

/// What a backup or restore did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Copied {
    /// Databases copied.
    pub databases: usize,
    /// Photo files copied.
    pub photos: usize,
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
                let (source, copy) = (data.join(name), to.join(name));
                let conn = Connection::open(&source).map_err(sqlite(&source))?;
                conn.busy_timeout(std::time::Duration::from_secs(30))
                    .map_err(sqlite(&source))?;
                conn.execute("VACUUM INTO ?1", [copy.to_string_lossy()])
                    .map_err(sqlite(&source))?;
                check(&copy)?;
                done.databases += 1;
            }
        }
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
    Ok(done)
}

/// Restore the backup `from` into the relay (`data`, `storage`): a new or empty
/// data folder, and, on PostgreSQL, an empty database.
pub fn restore(from: &Path, data: &Path, storage: &Storage) -> Result<Copied> {
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
    let store = open_store(data, storage.database_url.as_deref()).map_err(|e| e.to_string())?;
    check_log(store.as_ref())?;
    let photos = open_blob_store(storage.photos.as_ref(), data).map_err(|e| e.to_string())?;
    done.photos = copy_photos(
        store.as_ref(),
        &LocalBlobStore::at(&from.join(BLOBS)),
        photos.as_ref(),
    )?;
    Ok(done)
}
