//! Photo files on disk, next to the database: `<db>.photos/<aa>/<hash>.jpg`,
//! content-addressed. A file is written to a temporary name, synced, renamed into
//! place and its folder synced before its database row is committed, so a row never
//! names a missing file. A file without a row (a crash between the two, or a row
//! deleted before its file) is swept away when the engine next opens — only then:
//! such work first leaves a [`SweepNote`] on disk and clears it once done, so a
//! clean open does not walk the folder.
//!
//! On a phone the files are sealed (`<hash>.sealed`): XChaCha20-Poly1305 under the
//! key derived from the device's root key for photos ([`KeyUse::Photos`]), a random
//! nonce per file, and the photo's hash as associated data, so a file cannot be
//! read without the key, a flipped byte is an error rather than a wrong picture, and
//! one photo's file put in another's place does not open. The address stays the
//! SHA-256 of the plain JPEG: deduplication, resumable uploads and the server's hash
//! check see the same photo as before. Plain bytes are only ever in memory; the
//! temporary file of a write holds the sealed bytes. A relay's folder is not sealed
//! (the server's disk is its operator's concern): sealing is per [`Blobs`].
//!
//! A sealed file is `GSPH`, a version byte (1), the 24-byte nonce, then the
//! ciphertext with its 16-byte tag. The associated data is the magic, the version
//! and the hash in hex.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard};

use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::{Aead, OsRng, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use zeroize::Zeroize;

use crate::ids::PhotoHash;
use crate::vault::{DeviceKey, KeyUse};

/// The photo folder of a database.
#[derive(Debug, Clone)]
pub struct Blobs {
    root: PathBuf,
    /// Set on a phone: files are sealed with it. Shared by clones; replaced by
    /// [`Blobs::rekey`].
    seal: Arc<RwLock<Option<Seal>>>,
}

const TMP_PREFIX: &str = ".tmp-";
/// Plain photo files (a relay's, or a phone's from before sealing).
const PLAIN_EXT: &str = "jpg";
/// Sealed photo files.
const SEALED_EXT: &str = "sealed";
const MAGIC: &[u8; 4] = b"GSPH";
const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const HEADER_LEN: usize = MAGIC.len() + 1 + NONCE_LEN;
const TAG_LEN: usize = 16;

/// The photo key. Its `Debug` shows nothing; the cipher wipes its key when dropped.
struct Seal(XChaCha20Poly1305);

impl std::fmt::Debug for Seal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seal(…)")
    }
}

/// The associated data of `hash`'s file: the format and the address it belongs at.
fn associated_data(hash: &PhotoHash) -> Vec<u8> {
    let mut aad = Vec::with_capacity(MAGIC.len() + 1 + 64);
    aad.extend_from_slice(MAGIC);
    aad.push(VERSION);
    aad.extend_from_slice(hash.as_str().as_bytes());
    aad
}

fn damaged(hash: &PhotoHash, why: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("the file of photo {hash} cannot be opened: {why}"),
    )
}

impl Seal {
    fn new(key: &DeviceKey) -> Seal {
        let mut k = key.derive(KeyUse::Photos);
        let cipher = XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(&k));
        k.zeroize();
        Seal(cipher)
    }

    /// The sealed file of `plain`, the photo `hash`.
    fn seal(&self, hash: &PhotoHash, plain: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng
            .try_fill_bytes(&mut nonce)
            .map_err(|e| std::io::Error::other(format!("no randomness for a nonce: {e}")))?;
        let sealed = self
            .0
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: &associated_data(hash),
                },
            )
            .map_err(|_| std::io::Error::other(format!("photo {hash} could not be sealed")))?;
        let mut out = Vec::with_capacity(HEADER_LEN + sealed.len());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// The plain bytes of `hash`'s sealed `file`: an error unless the file is
    /// whole, was sealed with this key, and was sealed as this photo.
    fn open(&self, hash: &PhotoHash, file: &[u8]) -> std::io::Result<Vec<u8>> {
        if file.len() < HEADER_LEN + TAG_LEN {
            return Err(damaged(hash, "too short to be a sealed photo"));
        }
        if &file[..MAGIC.len()] != MAGIC {
            return Err(damaged(hash, "not a sealed photo"));
        }
        if file[MAGIC.len()] != VERSION {
            return Err(damaged(
                hash,
                &format!("sealed with format version {}", file[MAGIC.len()]),
            ));
        }
        let nonce = XNonce::from_slice(&file[MAGIC.len() + 1..HEADER_LEN]);
        self.0
            .decrypt(
                nonce,
                Payload {
                    msg: &file[HEADER_LEN..],
                    aad: &associated_data(hash),
                },
            )
            .map_err(|_| {
                damaged(
                    hash,
                    "it is damaged, belongs to another photo, or was sealed with another key",
                )
            })
    }
}
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

/// Create `dir` if needed and make its entry durable with its parent's: when
/// it is made, and once per process when it exists (the process that made it may
/// have died, or another thread may still be making it, before syncing).
fn durable_dir(dir: &Path) -> std::io::Result<()> {
    static SYNCED: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    let synced = SYNCED.get_or_init(Default::default);
    let lock = || synced.lock().unwrap_or_else(|e| e.into_inner());
    if dir.exists() && lock().contains(dir) {
        return Ok(());
    }
    fs::create_dir_all(dir)?;
    for d in [Some(dir), dir.parent(), dir.parent().and_then(Path::parent)]
        .into_iter()
        .flatten()
    {
        File::open(d)?.sync_all()?;
    }
    lock().insert(dir.to_owned());
    Ok(())
}

impl Blobs {
    /// The folder for the database at `db`.
    pub fn for_db(db: &Path) -> Blobs {
        let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(".photos");
        Blobs {
            root: db.with_file_name(name),
            seal: Arc::default(),
        }
    }

    /// The sealed folder for the database at `db`, with the photo key derived from
    /// `key`. Photo files left plain from before sealing are sealed now, and their
    /// plain files removed.
    pub fn for_db_encrypted(db: &Path, key: &DeviceKey) -> std::io::Result<Blobs> {
        let blobs = Blobs {
            seal: Arc::new(RwLock::new(Some(Seal::new(key)))),
            ..Blobs::for_db(db)
        };
        blobs.seal_plain_files()?;
        Ok(blobs)
    }

    /// A photo folder at `root` (a server's data folder), not sealed.
    pub fn at(root: &Path) -> Blobs {
        Blobs {
            root: root.to_owned(),
            seal: Arc::default(),
        }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether files are sealed.
    pub fn sealed(&self) -> bool {
        self.seal().is_some()
    }

    fn seal(&self) -> RwLockReadGuard<'_, Option<Seal>> {
        // The seal is replaced whole or not at all: a poisoned lock is still good.
        self.seal.read().unwrap_or_else(|e| e.into_inner())
    }

    fn path_for(&self, hash: &PhotoHash, sealed: bool) -> PathBuf {
        let ext = if sealed { SEALED_EXT } else { PLAIN_EXT };
        self.root
            .join(&hash.as_str()[..2])
            .join(format!("{hash}.{ext}"))
    }

    /// Where a photo's file lives.
    pub fn path(&self, hash: &PhotoHash) -> PathBuf {
        self.path_for(hash, self.sealed())
    }

    /// Write `bytes` as `hash` durably (a no-op if it is already there). Sealed
    /// before a byte reaches the disk, temporary file included.
    pub fn write(&self, hash: &PhotoHash, bytes: &[u8]) -> std::io::Result<()> {
        let seal = self.seal();
        let path = self.path_for(hash, seal.is_some());
        if path.exists() {
            // Another writer's (or a process that died between its rename and
            // its folder's sync): made durable before it is answered as stored.
            File::open(&path)?.sync_all()?;
            durable_dir(path.parent().unwrap_or(&self.root))?;
            return File::open(path.parent().unwrap_or(&self.root))?.sync_all();
        }
        match &*seal {
            Some(seal) => self.put(hash, &path, &seal.seal(hash, bytes)?),
            None => self.put(hash, &path, bytes),
        }
    }

    /// Put `bytes` at `path` durably: a temporary file, synced, renamed into place
    /// (over what was there), its folder synced.
    fn put(&self, hash: &PhotoHash, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
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
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    }

    /// Read up to `len` bytes of a photo from `offset`.
    pub fn read_range(&self, hash: &PhotoHash, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        if self.sealed() {
            // A sealed file opens whole or not at all; photos are a few MiB at most.
            let plain = self.read(hash)?;
            let start = usize::try_from(offset)
                .unwrap_or(usize::MAX)
                .min(plain.len());
            let end = start
                .saturating_add(usize::try_from(len).unwrap_or(usize::MAX))
                .min(plain.len());
            return Ok(plain[start..end].to_vec());
        }
        let mut f = File::open(self.path(hash))?;
        f.seek(SeekFrom::Start(offset))?;
        let mut out = Vec::new();
        f.take(len).read_to_end(&mut out)?;
        Ok(out)
    }

    /// Read a photo (its plain bytes). A sealed file that is damaged, sealed with
    /// another key or sealed as another photo is an `InvalidData` error.
    pub fn read(&self, hash: &PhotoHash) -> std::io::Result<Vec<u8>> {
        let seal = self.seal();
        let file = fs::read(self.path_for(hash, seal.is_some()))?;
        match &*seal {
            Some(seal) => seal.open(hash, &file),
            None => Ok(file),
        }
    }

    /// Every photo file: its hash, path, and whether it is sealed.
    fn photo_files(&self) -> Vec<(PhotoHash, PathBuf, bool)> {
        let mut out = Vec::new();
        for dir in fs::read_dir(&self.root).into_iter().flatten().flatten() {
            for file in fs::read_dir(dir.path()).into_iter().flatten().flatten() {
                let path = file.path();
                let parsed = path.file_name().and_then(|n| n.to_str()).and_then(|n| {
                    let (h, ext) = n.rsplit_once('.')?;
                    let sealed = match ext {
                        SEALED_EXT => true,
                        PLAIN_EXT => false,
                        _ => return None,
                    };
                    Some((h.parse::<PhotoHash>().ok()?, sealed))
                });
                if let Some((hash, sealed)) = parsed {
                    out.push((hash, path, sealed));
                }
            }
        }
        out
    }

    /// Seal every photo file under the photo key derived from `new`, and seal with
    /// it from now on (a plain folder becomes sealed). Reads and writes wait
    /// meanwhile. Each file is replaced whole (a temporary file renamed over it), so
    /// a rekey cut short leaves every file under the old key or the new one; run
    /// again with the same key, it finishes the job (files already under `new` are
    /// left as they are). A file that opens under neither key (damaged) is left.
    /// Returns how many files were sealed anew.
    pub fn rekey(&self, new: &DeviceKey) -> std::io::Result<usize> {
        let mut seal = self.seal.write().unwrap_or_else(|e| e.into_inner());
        let next = Seal::new(new);
        let mut resealed = 0;
        for (hash, path, sealed) in self.photo_files() {
            let bytes = fs::read(&path)?;
            let plain = match (&*seal, sealed) {
                (_, false) if crate::photo::hash_of(&bytes) == hash => bytes,
                (_, false) => continue,
                (_, true) if next.open(&hash, &bytes).is_ok() => continue,
                (Some(old), true) => match old.open(&hash, &bytes) {
                    Ok(plain) => plain,
                    Err(_) => continue,
                },
                (None, true) => continue,
            };
            self.put(
                &hash,
                &self.path_for(&hash, true),
                &next.seal(&hash, &plain)?,
            )?;
            if !sealed {
                fs::remove_file(&path)?;
            }
            resealed += 1;
        }
        *seal = Some(next);
        Ok(resealed)
    }

    /// Seal the plain photo files a folder holds from before it was sealed, then
    /// remove them. Returns how many were sealed. (Removing a plain file unlinks it;
    /// on flash its old blocks may linger until the controller reuses them, which no
    /// overwrite from here could prevent.)
    fn seal_plain_files(&self) -> std::io::Result<usize> {
        if !self.sealed() {
            return Ok(0);
        }
        let mut sealed = 0;
        for (hash, path, _) in self.photo_files().into_iter().filter(|f| !f.2) {
            let plain = fs::read(&path)?;
            // A plain file that is not its photo is not sealed as if it were.
            if crate::photo::hash_of(&plain) == hash {
                self.write(&hash, &plain)?;
                sealed += 1;
            }
            fs::remove_file(&path)?;
            if let Some(dir) = path.parent() {
                File::open(dir)?.sync_all()?;
            }
        }
        Ok(sealed)
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
                    name.rsplit_once('.').is_some_and(|(h, ext)| {
                        (ext == PLAIN_EXT || ext == SEALED_EXT)
                            && h.parse::<PhotoHash>().is_ok()
                            && !keep(h)
                    })
                };
                if stale && path.is_file() && fs::remove_file(&path).is_ok() {
                    removed += 1;
                }
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::photo::hash_of;

    const JPEG: &[u8] =
        b"\xFF\xD8\xFF\xE1\x00\x10Exif\x00\x00 a canary: PATROL-CANARY-7731 \xFF\xD9";

    fn key(n: u8) -> DeviceKey {
        DeviceKey::from_bytes([n; 32])
    }

    fn sealed_at(dir: &Path, n: u8) -> Blobs {
        Blobs::for_db_encrypted(&dir.join("phone.db"), &key(n)).unwrap()
    }

    /// Every file under `root`, with its bytes.
    fn files(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut dirs = vec![root.to_owned()];
        while let Some(d) = dirs.pop() {
            for e in fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    dirs.push(e.path());
                } else {
                    out.push((e.path(), fs::read(e.path()).unwrap()));
                }
            }
        }
        out
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn a_sealed_photo_reads_back_and_its_file_holds_no_plain_byte() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = sealed_at(dir.path(), 1);
        let hash = hash_of(JPEG);
        blobs.write(&hash, JPEG).unwrap();
        assert_eq!(blobs.read(&hash).unwrap(), JPEG);
        assert_eq!(blobs.read_range(&hash, 2, 4).unwrap(), &JPEG[2..6]);
        assert_eq!(blobs.read_range(&hash, 1000, 4).unwrap(), b"");
        let on_disk = files(blobs.root());
        assert_eq!(on_disk.len(), 1, "one file, no temporary left");
        let (path, bytes) = &on_disk[0];
        assert_eq!(path, &blobs.path(&hash));
        assert!(path.to_string_lossy().ends_with(".sealed"));
        assert_eq!(&bytes[..5], b"GSPH\x01");
        assert_eq!(bytes.len(), JPEG.len() + HEADER_LEN + TAG_LEN);
        for needle in [&b"PATROL-CANARY"[..], b"Exif", b"\xFF\xD8\xFF"] {
            assert!(!contains(bytes, needle), "{needle:?} on disk");
        }
        // The same photo sealed twice uses two nonces.
        let again = Seal::new(&key(1)).seal(&hash, JPEG).unwrap();
        assert_ne!(again, *bytes);
    }

    #[test]
    fn any_flipped_byte_is_an_error_never_other_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = sealed_at(dir.path(), 1);
        let hash = hash_of(JPEG);
        blobs.write(&hash, JPEG).unwrap();
        let good = fs::read(blobs.path(&hash)).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            fs::write(blobs.path(&hash), &bad).unwrap();
            let err = blobs.read(&hash).expect_err("a flipped byte must not read");
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "byte {i}");
            assert!(blobs.read_range(&hash, 0, 10).is_err());
        }
        for cut in [0, 5, HEADER_LEN, good.len() - 1] {
            fs::write(blobs.path(&hash), &good[..cut]).unwrap();
            assert!(blobs.read(&hash).is_err(), "cut at {cut}");
        }
        fs::write(blobs.path(&hash), &good).unwrap();
        assert_eq!(blobs.read(&hash).unwrap(), JPEG);
    }

    #[test]
    fn a_file_opens_only_as_its_own_photo_and_with_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = sealed_at(dir.path(), 1);
        let (a, b) = (JPEG, &b"\xFF\xD8 another photo \xFF\xD9"[..]);
        let (ha, hb) = (hash_of(a), hash_of(b));
        blobs.write(&ha, a).unwrap();
        blobs.write(&hb, b).unwrap();
        // Swapped files: each is whole, but neither opens at the other's address.
        fs::create_dir_all(blobs.path(&hb).parent().unwrap()).unwrap();
        fs::copy(blobs.path(&ha), blobs.path(&hb)).unwrap();
        assert!(blobs.read(&hb).is_err(), "a's file at b's address");
        assert_eq!(blobs.read(&ha).unwrap(), a);
        // Another device's key opens nothing.
        let stranger = sealed_at(dir.path(), 2);
        assert!(stranger.read(&ha).is_err());
    }

    #[test]
    fn a_relay_folder_stays_plain() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::at(dir.path());
        let hash = hash_of(JPEG);
        blobs.write(&hash, JPEG).unwrap();
        assert!(blobs.path(&hash).to_string_lossy().ends_with(".jpg"));
        assert_eq!(fs::read(blobs.path(&hash)).unwrap(), JPEG);
        assert_eq!(blobs.read_range(&hash, 2, 4).unwrap(), &JPEG[2..6]);
    }

    #[test]
    fn plain_files_from_before_sealing_are_sealed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("phone.db");
        let plain = Blobs::for_db(&db);
        let hash = hash_of(JPEG);
        plain.write(&hash, JPEG).unwrap();
        let sealed = Blobs::for_db_encrypted(&db, &key(1)).unwrap();
        assert!(!plain.exists(&hash), "the plain file is gone");
        assert_eq!(sealed.read(&hash).unwrap(), JPEG);
        assert!(files(sealed.root())
            .iter()
            .all(|(_, bytes)| !contains(bytes, b"PATROL-CANARY")));
    }

    #[test]
    fn a_sweep_removes_sealed_files_without_rows_and_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = sealed_at(dir.path(), 1);
        let (keep, drop) = (hash_of(JPEG), hash_of(b"gone"));
        blobs.write(&keep, JPEG).unwrap();
        blobs.write(&drop, b"gone").unwrap();
        let tmp = blobs.path(&keep).with_file_name(format!("{TMP_PREFIX}x"));
        fs::write(&tmp, b"sealed half").unwrap();
        assert_eq!(blobs.sweep(|h| h == keep.as_str()), 2);
        assert!(blobs.exists(&keep) && !blobs.exists(&drop) && !tmp.exists());
    }

    #[test]
    fn a_rekey_reseals_every_file_and_can_be_run_again() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("phone.db");
        let (a, b) = (JPEG, &b"\xFF\xD8 photo b \xFF\xD9"[..]);
        let (ha, hb) = (hash_of(a), hash_of(b));
        // Plain files (an engine opened without a key) are sealed by a rekey.
        let blobs = Blobs::for_db(&db);
        blobs.write(&ha, a).unwrap();
        assert_eq!(blobs.rekey(&key(1)).unwrap(), 1);
        assert!(blobs.sealed() && !blobs.path_for(&ha, false).exists());
        blobs.write(&hb, b).unwrap();
        // Under a new key, every file; the old key opens none of them.
        assert_eq!(blobs.rekey(&key(2)).unwrap(), 2);
        assert_eq!(
            (blobs.read(&ha).unwrap(), blobs.read(&hb).unwrap()),
            (a.to_vec(), b.to_vec())
        );
        let reopened = Blobs::for_db_encrypted(&db, &key(2)).unwrap();
        assert_eq!(reopened.read(&hb).unwrap(), b);
        assert!(Blobs::for_db_encrypted(&db, &key(1))
            .unwrap()
            .read(&ha)
            .is_err());
        // Cut short: one file under key 3, one still under key 2; run again, done.
        let half = Blobs::for_db_encrypted(&db, &key(2)).unwrap();
        let sealed_b = Seal::new(&key(3)).seal(&hb, b).unwrap();
        fs::write(half.path(&hb), sealed_b).unwrap();
        assert_eq!(half.rekey(&key(3)).unwrap(), 1);
        let done = Blobs::for_db_encrypted(&db, &key(3)).unwrap();
        assert_eq!(
            (done.read(&ha).unwrap(), done.read(&hb).unwrap()),
            (a.to_vec(), b.to_vec())
        );
    }
}
