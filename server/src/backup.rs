//! Backup and restore of a relay's data folder on the embedded default (SQLite and
//! local disk), safe while `gridsync serve` runs.
//!
//! A backup copies `relay.db` first, then `server.db` (each with `VACUUM INTO`: a
//! consistent snapshot, checked with `PRAGMA integrity_check`), then the photo
//! files. A push commits to `server.db` before the log in `relay.db`, so every
//! change the copied log names is in the copied replica; photos are written before
//! they are recorded, so every recorded photo's file is there. Changes acknowledged
//! after the copy began are not in it: devices that pushed them keep them (they
//! were acknowledged), so a restored relay misses them until those devices are
//! enrolled again with their data.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

/// The files of a data folder that a backup holds.
const DATABASES: [&str; 2] = ["relay.db", "server.db"];
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

/// Copy photo files from `from` to `to` (content-addressed: a file present is the
/// same file), skipping uploads still in progress.
fn copy_blobs(from: &Path, to: &Path) -> Result<usize> {
    let mut copied = 0;
    if !from.exists() {
        return Ok(0);
    }
    for shard in std::fs::read_dir(from).map_err(io(from))? {
        let shard = shard.map_err(io(from))?.path();
        if !shard.is_dir() || shard.file_name().is_some_and(|n| n == "partial") {
            continue;
        }
        let target: PathBuf = to.join(shard.file_name().unwrap_or_default());
        std::fs::create_dir_all(&target).map_err(io(&target))?;
        for file in std::fs::read_dir(&shard).map_err(io(&shard))? {
            let file = file.map_err(io(&shard))?.path();
            let dest = target.join(file.file_name().unwrap_or_default());
            if file.is_file() && !dest.exists() {
                std::fs::copy(&file, &dest).map_err(io(&file))?;
                copied += 1;
            }
        }
    }
    Ok(copied)
}

/// Back up the data folder `data` into the new or empty folder `to`.
pub fn backup(data: &Path, to: &Path) -> Result<Copied> {
    for name in DATABASES {
        if !data.join(name).exists() {
            return Err(format!(
                "{} has no {name}: not a relay's data folder",
                data.display()
            ));
        }
    }
    empty_target(to)?;
    let mut done = Copied::default();
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
    done.photos = copy_blobs(&data.join(BLOBS), &to.join(BLOBS))?;
    Ok(done)
}

/// Restore a backup `from` into the new or empty data folder `data`.
pub fn restore(from: &Path, data: &Path) -> Result<Copied> {
    for name in DATABASES {
        check(&from.join(name))?;
    }
    empty_target(data)?;
    let mut done = Copied::default();
    for name in DATABASES {
        let (copy, target) = (from.join(name), data.join(name));
        std::fs::copy(&copy, &target).map_err(io(&copy))?;
        done.databases += 1;
    }
    done.photos = copy_blobs(&from.join(BLOBS), &data.join(BLOBS))?;
    Ok(done)
}
