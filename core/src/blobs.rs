//! Photo files on disk, next to the database: `<db>.photos/<aa>/<hash>.jpg`,
//! content-addressed. A file is written to a temporary name, synced, renamed into
//! place and its folder synced before its database row is committed, so a row never
//! names a missing file; a file without a row (a crash in between) is swept away
//! when the engine opens.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::ids::PhotoHash;

/// The photo folder of a database.
#[derive(Debug, Clone)]
pub struct Blobs {
    root: PathBuf,
}

const TMP_PREFIX: &str = ".tmp-";

impl Blobs {
    /// The folder for the database at `db`.
    pub fn for_db(db: &Path) -> Blobs {
        let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(".photos");
        Blobs {
            root: db.with_file_name(name),
        }
    }

    /// A photo folder at `root` (a server's data folder).
    pub fn at(root: &Path) -> Blobs {
        Blobs {
            root: root.to_owned(),
        }
    }

    /// Where a photo's file lives.
    pub fn path(&self, hash: &PhotoHash) -> PathBuf {
        self.root
            .join(&hash.as_str()[..2])
            .join(format!("{hash}.jpg"))
    }

    /// Write `bytes` as `hash` durably (a no-op if it is already there).
    pub fn write(&self, hash: &PhotoHash, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.path(hash);
        if path.exists() {
            return Ok(());
        }
        let dir = path.parent().unwrap_or(&self.root);
        fs::create_dir_all(dir)?;
        let tmp = dir.join(format!("{TMP_PREFIX}{hash}"));
        {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &path)?;
        File::open(dir)?.sync_all()
    }

    /// Read a photo.
    pub fn read(&self, hash: &PhotoHash) -> std::io::Result<Vec<u8>> {
        fs::read(self.path(hash))
    }

    /// Remove a photo's file (gone already is fine).
    pub fn remove(&self, hash: &PhotoHash) -> std::io::Result<()> {
        match fs::remove_file(self.path(hash)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Remove every file whose hash `keep` does not know, and every temporary file.
    /// Returns how many were removed.
    pub fn sweep(&self, keep: impl Fn(&str) -> bool) -> std::io::Result<usize> {
        let mut removed = 0;
        let Ok(dirs) = fs::read_dir(&self.root) else {
            return Ok(0);
        };
        for dir in dirs {
            let dir = dir?.path();
            if !dir.is_dir() {
                continue;
            }
            for file in fs::read_dir(&dir)? {
                let path = file?.path();
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                let known = name
                    .strip_suffix(".jpg")
                    .is_some_and(|h| !name.starts_with(TMP_PREFIX) && keep(h));
                if !known {
                    fs::remove_file(&path)?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}
