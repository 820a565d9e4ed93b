//! Photo files on disk, next to the database: `<db>.photos/<aa>/<hash>.jpg`,
//! content-addressed. A file is written to a temporary name, synced, renamed into
//! place and its folder synced before its database row is committed, so a row never
//! names a missing file. A file without a row (a crash between the two, or a row
//! deleted before its file) is swept away when the engine next opens — only then:
//! such work first leaves a [`SweepNote`] on disk and clears it once done, so a
//! clean open does not walk the folder.

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
/// The folder of sweep notes, inside the photo folder.
const NOTES: &str = ".unswept";

/// A note on disk that photo files may stand without their rows until some work is
/// done: while any note exists, the next open sweeps. Clear it when the work is
/// done; dropped uncleared (an error, a crash), it stays.
#[must_use = "clear the note once the work is done"]
pub struct SweepNote(PathBuf);

impl SweepNote {
    /// The work is done: no sweep is needed for it.
    pub fn clear(self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Create `dir` and make its entry durable with its parent's.
fn durable_dir(dir: &Path) -> std::io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    fs::create_dir_all(dir)?;
    for d in [Some(dir), dir.parent(), dir.parent().and_then(Path::parent)]
        .into_iter()
        .flatten()
    {
        File::open(d)?.sync_all()?;
    }
    Ok(())
}

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
        // The new folders' entries must survive a power loss with the file.
        durable_dir(dir)?;
        // A unique temporary name: two writers of one photo never share a file.
        let tmp = dir.join(format!(
            "{TMP_PREFIX}{hash}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &path)?;
        File::open(dir)?.sync_all()
    }

    /// Read up to `len` bytes of a photo from `offset`.
    pub fn read_range(&self, hash: &PhotoHash, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = File::open(self.path(hash))?;
        f.seek(SeekFrom::Start(offset))?;
        let mut out = Vec::new();
        f.take(len).read_to_end(&mut out)?;
        Ok(out)
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

    /// Whether a photo's file is there.
    pub fn exists(&self, hash: &PhotoHash) -> bool {
        self.path(hash).is_file()
    }

    /// Leave a durable note that files may stand without rows until the caller
    /// clears it (before writing files ahead of their rows, or deleting rows ahead
    /// of their files).
    pub fn note_unswept(&self) -> std::io::Result<SweepNote> {
        let dir = self.root.join(NOTES);
        durable_dir(&dir)?;
        let note = dir.join(uuid::Uuid::new_v4().simple().to_string());
        File::create(&note)?.sync_all()?;
        File::open(&dir)?.sync_all()?;
        Ok(SweepNote(note))
    }

    /// Whether some work left a note: the folder must be swept.
    pub fn sweep_noted(&self) -> bool {
        fs::read_dir(self.root.join(NOTES)).is_ok_and(|mut d| d.next().is_some())
    }

    /// After a sweep at open (no other writer yet): every note is settled.
    pub fn clear_notes(&self) {
        if let Ok(notes) = fs::read_dir(self.root.join(NOTES)) {
            for note in notes.flatten() {
                let _ = fs::remove_file(note.path());
            }
        }
    }

    /// Remove photo files whose hash `keep` does not know, and temporary files. Only
    /// names this store writes are touched; what cannot be removed is left (the
    /// next open tries again) rather than stopping the device from opening.
    /// Returns how many were removed.
    pub fn sweep(&self, keep: impl Fn(&str) -> bool) -> usize {
        let mut removed = 0;
        let Ok(dirs) = fs::read_dir(&self.root) else {
            return 0;
        };
        for dir in dirs.flatten() {
            let Ok(files) = fs::read_dir(dir.path()) else {
                continue;
            };
            for file in files.flatten() {
                let path = file.path();
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                let stale = if name.starts_with(TMP_PREFIX) {
                    true
                } else {
                    name.strip_suffix(".jpg")
                        .is_some_and(|h| h.parse::<PhotoHash>().is_ok() && !keep(h))
                };
                if stale && path.is_file() && fs::remove_file(&path).is_ok() {
                    removed += 1;
                }
            }
        }
        removed
    }
}
