//! Photos on the device: the capture pipeline's output stored (files and `photos`
//! rows), read back by hash, the upload queue, fetched photos, eviction within a
//! quota, and attaching a photo to a case (a visit's or an inspection's photo is
//! given with it).

use std::path::Path;

use rusqlite::{params, OptionalExtension, Transaction};

use super::Engine;
use crate::doc::case::{self, PhotoRef};
use crate::doc::EntryPhoto;
use crate::error::{Error, Result};
use crate::ids::{DocId, PhotoHash, UserId};

/// The photos stored on a device (see [`Engine::photo_usage`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhotoUsage {
    /// Display images stored.
    pub display: u64,
    /// Their bytes.
    pub display_bytes: u64,
    /// Thumbnails stored.
    pub thumbs: u64,
    /// Their bytes.
    pub thumb_bytes: u64,
    /// Photos of this device's cases, visits and inspections not yet on the server (never evicted).
    pub waiting_upload: u64,
}

/// A photo stored on this device, ready to attach to a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhotoInfo {
    /// The display image's hash (what a case refers to).
    pub hash: PhotoHash,
    /// The thumbnail's hash.
    pub thumb: PhotoHash,
    /// Display image width.
    pub width: u32,
    /// Display image height.
    pub height: u32,
}

impl Engine {
    /// Run a photo from the camera through the capture pipeline (limits, orientation,
    /// metadata stripped, display image and thumbnail) and store both, durably.
    /// `name` is the file's name if there is one; it must agree with the content.
    pub fn ingest_photo(&self, bytes: &[u8], name: Option<&str>) -> Result<PhotoInfo> {
        // Held to the end: a wipe meanwhile waits, then erases what was written.
        let _open = self.db.hold()?;
        let done = crate::photo::process(bytes, name, &self.photo_limits)?;
        // Files first, then the rows: a row never names a missing file.
        let note = self.blobs.note_unswept()?;
        self.blobs.write(&done.display.hash, &done.display.bytes)?;
        self.blobs.write(&done.thumb.hash, &done.thumb.bytes)?;
        let now = self.now().timestamp_millis();
        self.write(|tx| -> Result<()> {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO photos (hash, role, thumb, width, height, size, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let (d, t) = (&done.display, &done.thumb);
            insert.execute(params![
                d.hash.as_str(),
                "display",
                t.hash.as_str(),
                d.width,
                d.height,
                d.bytes.len() as i64,
                now
            ])?;
            insert.execute(params![
                t.hash.as_str(),
                "thumb",
                Option::<&str>::None,
                t.width,
                t.height,
                t.bytes.len() as i64,
                now
            ])?;
            Ok(())
        })?;
        note.clear();
        Ok(PhotoInfo {
            hash: done.display.hash,
            thumb: done.thumb.hash,
            width: done.display.width,
            height: done.display.height,
        })
    }

    /// Like [`Engine::ingest_photo`], from a file the camera wrote; its name must
    /// agree with its content, and its size is checked before it is read.
    pub fn ingest_photo_file(&self, path: &Path) -> Result<PhotoInfo> {
        let _open = self.db.hold()?;
        let size = std::fs::metadata(path)?.len();
        let max = self.photo_limits.max_file_bytes;
        if size > max as u64 {
            return Err(crate::photo::PhotoError::Size(
                usize::try_from(size).unwrap_or(usize::MAX),
                max,
            )
            .into());
        }
        let mut bytes = Vec::new();
        // Read at most one byte past the limit, whatever the file does meanwhile.
        std::io::Read::read_to_end(
            &mut std::io::Read::take(std::fs::File::open(path)?, max as u64 + 1),
            &mut bytes,
        )?;
        let name = path.file_name().and_then(|n| n.to_str());
        self.ingest_photo(&bytes, name)
    }

    /// The bytes of a stored photo (display image or thumbnail), checked against its
    /// hash. A photo file that is damaged (or not this device's) is an error, never
    /// other bytes.
    pub fn photo(&self, hash: &PhotoHash) -> Result<Vec<u8>> {
        let _open = self.db.hold()?;
        let bytes = self.blobs.read(hash).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound {
                what: "photo",
                id: hash.to_string(),
            },
            _ => Error::Io(e),
        })?;
        if crate::photo::hash_of(&bytes) != *hash {
            return Err(Error::Io(std::io::Error::other(format!(
                "stored photo {hash} does not match its hash"
            ))));
        }
        Ok(bytes)
    }

    /// Whether the photo is on this device: its row and its file.
    pub fn has_photo(&self, hash: &PhotoHash) -> Result<bool> {
        let row = self.db.read(|tx| -> Result<bool> {
            Ok(tx
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM photos WHERE hash = ?1)")?
                .query_row([hash.as_str()], |r| r.get(0))?)
        })?;
        Ok(row && self.blobs.exists(hash))
    }

    /// Photos of this device's records (cases, visits, inspections) that the
    /// server does not have yet, in upload order: every thumbnail before any
    /// display image, oldest first; each with its size in bytes.
    pub fn photos_to_upload(&self) -> Result<Vec<(PhotoHash, u64)>> {
        self.db.read(|tx| -> Result<Vec<(PhotoHash, u64)>> {
            let mut stmt = tx.prepare_cached(
                "SELECT p.hash, p.size FROM photos p
                 WHERE p.uploaded_ms IS NULL
                   AND EXISTS (SELECT 1 FROM case_photos c WHERE c.hash = p.hash)
                 ORDER BY p.role = 'display', p.created_ms, p.hash",
            )?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.into_iter()
                .map(|(h, size)| Ok((h.parse()?, size.max(0) as u64)))
                .collect()
        })
    }

    /// The photos stored on this device: how many and how many bytes, display images
    /// and thumbnails apart, and how many wait for upload — what a storage setting
    /// shows beside the quota given to [`Engine::evict_photos`].
    pub fn photo_usage(&self) -> Result<PhotoUsage> {
        self.db.read(|tx| -> Result<PhotoUsage> {
            let mut usage = PhotoUsage::default();
            let mut stmt = tx.prepare_cached(
                "SELECT role, count(*), coalesce(sum(size), 0),
                        count(*) FILTER (WHERE uploaded_ms IS NULL
                            AND EXISTS (SELECT 1 FROM case_photos c WHERE c.hash = p.hash))
                 FROM photos p GROUP BY role",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let (role, count, bytes, waiting): (String, i64, i64, i64) =
                    (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
                let (count, bytes) = (count.max(0) as u64, bytes.max(0) as u64);
                match role.as_str() {
                    "display" => (usage.display, usage.display_bytes) = (count, bytes),
                    _ => (usage.thumbs, usage.thumb_bytes) = (count, bytes),
                }
                usage.waiting_upload += waiting.max(0) as u64;
            }
            Ok(usage)
        })
    }

    /// Keep the display images on this device within `max_bytes` by removing those
    /// that can be fetched again: already on the server, and every case showing them
    /// is closed (archived, evaluated or invalid). Oldest go first; thumbnails and
    /// anything not yet uploaded are never removed. Returns the bytes freed.
    pub fn evict_photos(&self, max_bytes: u64) -> Result<u64> {
        let _open = self.db.hold()?;
        let candidates: Vec<(String, i64)> = self.db.read(|tx| -> Result<_> {
            let used: i64 = tx.query_row(
                "SELECT coalesce(sum(size), 0) FROM photos WHERE role = 'display'",
                [],
                |r| r.get(0),
            )?;
            let mut over = used - i64::try_from(max_bytes).unwrap_or(i64::MAX);
            if over <= 0 {
                return Ok(Vec::new());
            }
            let mut stmt = tx.prepare(
                "SELECT p.hash, p.size FROM photos p
                 WHERE p.role = 'display' AND p.uploaded_ms IS NOT NULL
                   AND NOT EXISTS (
                       SELECT 1 FROM case_photos cp JOIN cases c USING (doc_id)
                       WHERE cp.hash = p.hash
                         AND c.status NOT IN ('archived', 'evaluated', 'invalid'))
                 ORDER BY p.created_ms, p.hash",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                if over <= 0 {
                    break;
                }
                let (hash, size): (String, i64) = row?;
                over -= size;
                out.push((hash, size));
            }
            Ok(out)
        })?;
        if candidates.is_empty() {
            return Ok(0);
        }
        let note = self.blobs.note_unswept()?;
        let mut freed = 0;
        for (hash, size) in candidates {
            let hash: PhotoHash = hash.parse()?;
            // Row first: a crash before the file goes leaves a file the next open
            // sweeps (the note says so).
            self.write(|tx| -> Result<()> {
                tx.execute("DELETE FROM photos WHERE hash = ?1", [hash.as_str()])?;
                Ok(())
            })?;
            self.blobs.remove(&hash)?;
            freed += size.max(0) as u64;
        }
        note.clear();
        Ok(freed)
    }

    /// Record that the server has stored a photo.
    pub fn mark_photo_uploaded(&self, hash: &PhotoHash) -> Result<()> {
        let now = self.now().timestamp_millis();
        self.write(|tx| -> Result<()> {
            tx.execute(
                "UPDATE photos SET uploaded_ms = ?2 WHERE hash = ?1 AND uploaded_ms IS NULL",
                params![hash.as_str(), now],
            )?;
            Ok(())
        })
    }

    /// Store a photo fetched from the server, after checking it is the photo a case
    /// on this device refers to and that its content matches its hash.
    pub fn store_fetched_photo(&self, hash: &PhotoHash, bytes: &[u8]) -> Result<()> {
        let _open = self.db.hold()?;
        if crate::photo::hash_of(bytes) != *hash {
            return Err(Error::InvalidInput(format!(
                "the bytes received for photo {hash} do not match its hash"
            )));
        }
        let role: Option<String> = self.db.read(|tx| -> Result<_> {
            Ok(tx
                .prepare_cached("SELECT role FROM case_photos WHERE hash = ?1 LIMIT 1")?
                .query_row([hash.as_str()], |r| r.get(0))
                .optional()?)
        })?;
        let role = role.ok_or_else(|| Error::NotFound {
            what: "photo",
            id: hash.to_string(),
        })?;
        let (width, height) = image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()?
            .into_dimensions()
            .map_err(|e| Error::InvalidInput(format!("photo {hash}: {e}")))?;
        let note = self.blobs.note_unswept()?;
        self.blobs.write(hash, bytes)?;
        let now = self.now().timestamp_millis();
        self.write(|tx| -> Result<()> {
            tx.execute(
                "INSERT OR IGNORE INTO photos
                    (hash, role, thumb, width, height, size, created_ms, uploaded_ms)
                 VALUES (?1, ?2, NULL, ?3, ?4, ?5, ?6, ?6)",
                params![hash.as_str(), role, width, height, bytes.len() as i64, now],
            )?;
            Ok(())
        })?;
        note.clear();
        Ok(())
    }

    fn photo_info(tx: &Transaction<'_>, hash: &PhotoHash) -> Result<PhotoInfo> {
        tx.prepare_cached(
            "SELECT thumb, width, height FROM photos WHERE hash = ?1 AND role = 'display'",
        )?
        .query_row([hash.as_str()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, u32>(1)?,
                r.get::<_, u32>(2)?,
            ))
        })
        .optional()?
        .map(|(thumb, width, height)| {
            Ok(PhotoInfo {
                hash: hash.clone(),
                thumb: thumb.parse()?,
                width,
                height,
            })
        })
        .unwrap_or_else(|| {
            Err(Error::NotFound {
                what: "photo",
                id: hash.to_string(),
            })
        })
    }

    pub(super) fn photo_ref(
        &self,
        tx: &Transaction<'_>,
        hash: &PhotoHash,
        by: &UserId,
    ) -> Result<PhotoRef> {
        let info = Self::photo_info(tx, hash)?;
        Ok(PhotoRef {
            hash: info.hash,
            thumb: Some(info.thumb),
            width: info.width,
            height: info.height,
            by: by.clone(),
            at: self.now(),
        })
    }

    /// A visit's or an inspection's photo: one stored on this device.
    pub(super) fn entry_photo(&self, photo: Option<PhotoHash>) -> Result<Option<EntryPhoto>> {
        photo
            .map(|hash| {
                let info = self.db.read(|tx| Self::photo_info(tx, &hash))?;
                Ok(EntryPhoto {
                    hash: info.hash,
                    thumb: info.thumb,
                })
            })
            .transpose()
    }

    /// Attach a photo stored on this device (see [`Engine::ingest_photo`]) to a case.
    pub fn attach_photo(&self, id: &DocId, hash: PhotoHash) -> Result<()> {
        let me = self.me()?;
        let photo = self.db.read(|tx| self.photo_ref(tx, &hash, &me.id))?;
        self.edit_case(
            id,
            &me,
            |case| case.photos.len() < case::limits::PHOTOS,
            "photos",
            |t| case::add_photo(t, &photo),
        )
    }
}
