//! Photos: resumable uploads verified against their hash and checked to be the
//! app's stripped renditions, and ranges of photos a device may see.

use chrono::Utc;
use gridsync_core::sync::wire::{
    BlobGetRequest, BlobGetResponse, BlobPutRequest, BlobPutResponse, MAX_BLOB_BYTES,
    MAX_CHUNK_BYTES,
};
use gridsync_core::{PhotoHash, User};

use crate::blobstore::BlobStoreError;

use super::{check_version, visibility, Caller, Relay, RelayError};

/// Unfinished uploads one device may have at once; starting another forgets its
/// oldest. A phone uploads its photos one after the other, so more are uploads
/// it gave up (a photo sent again with another size, a phone reset mid-upload)
/// or a rooted phone filling the disk, each up to a photo's 16 MiB.
pub const MAX_PARTIALS_PER_DEVICE: usize = 8;

/// How long an unfinished upload that stopped growing is kept: a phone offline
/// for days resumes it; one revoked or reset never comes back for it.
pub const PARTIAL_DAYS: u64 = 14;

impl Relay {
    /// The photo, if `user` may see a document that refers to it; otherwise the same
    /// answer as for a photo that does not exist.
    pub(super) fn visible_photo(&self, user: &User, hash: &PhotoHash) -> Result<(), RelayError> {
        if self.store.photo_visible(hash.as_str(), &visibility(user))? {
            Ok(())
        } else {
            Err(RelayError::NotFound("no such photo"))
        }
    }

    /// Store one chunk of a photo upload; resumable, verified against the hash.
    pub fn put_blob(
        &self,
        caller: &Caller,
        req: BlobPutRequest,
    ) -> Result<BlobPutResponse, RelayError> {
        let Caller { device, user, .. } = caller;
        check_version(req.v)?;
        self.uploadable_photo(user, &req.hash)?;
        let hash = &req.hash;
        if req.total == 0 || req.total > MAX_BLOB_BYTES || req.bytes.len() > MAX_CHUNK_BYTES {
            return Err(RelayError::bad_request(format!(
                "a photo must be 1 byte to {MAX_BLOB_BYTES} bytes, sent in chunks of at most {MAX_CHUNK_BYTES}"
            )));
        }
        let answer = |received, done| BlobPutResponse {
            v: req.v,
            received,
            done,
        };
        if self
            .store
            .blob_size(hash.as_str())
            .map_err(RelayError::internal)?
            .is_some()
            && self.has_file(hash)?
        {
            return Ok(answer(req.total, true));
        }
        // Each device uploads into its own partial, named with the size it
        // announced: nobody else can add to it, and a different size starts afresh.
        // Partials live in the photo store, so the next chunk may reach another node.
        let _guard = self.uploads.lock().unwrap_or_else(|e| e.into_inner());
        let partial = format!("{hash}-{}-{}", device.device, req.total);
        let have = self
            .blobs
            .partial_len(&partial)
            .map_err(RelayError::internal)?;
        if have > req.total {
            // Two nodes appended the same retried chunk: start the photo afresh.
            self.forget_partial(&partial);
            return Ok(answer(0, false));
        }
        if req.offset != have {
            // Not where the server stands (a retry, or a cut): say where to go on.
            return Ok(answer(have, false));
        }
        if have == 0 {
            self.make_room_for_partial(&device.device.to_string());
        }
        let end = have + req.bytes.len() as u64;
        if end > req.total {
            self.forget_partial(&partial);
            return Err(RelayError::bad_request("more bytes than the photo's size"));
        }
        self.blobs
            .append_partial(&partial, &req.bytes)
            .map_err(RelayError::internal)?;
        if end < req.total {
            return Ok(answer(end, false));
        }
        let bytes = self
            .blobs
            .read_partial(&partial)
            .map_err(RelayError::internal)?;
        if let Err(why) = check_blob(hash, &bytes) {
            self.forget_partial(&partial);
            return Err(RelayError::bad_request(why));
        }
        self.keep_blob(hash, &bytes)?;
        // The partial goes only once the blob is durable and recorded.
        self.forget_partial(&partial);
        tracing::info!(device = %device.device, size = req.total, "photo stored");
        Ok(answer(req.total, true))
    }

    /// Keep a checked photo ([`check_blob`]): durable in the photo store first,
    /// then recorded, so a recorded photo can always be read. The same bytes
    /// may have been an erased document's, their removal running between the
    /// two steps (the put found the old file, the removal took it before the
    /// record called it off): once recorded they are removed no more, so a file
    /// missing then is put again.
    pub(super) fn keep_blob(&self, hash: &PhotoHash, bytes: &[u8]) -> Result<(), RelayError> {
        self.blobs.put(hash, bytes).map_err(RelayError::internal)?;
        self.store
            .record_blob(
                hash.as_str(),
                bytes.len() as u64,
                Utc::now().timestamp_millis(),
            )
            .map_err(RelayError::internal)?;
        if self.has_file(hash)? {
            Ok(())
        } else {
            self.blobs.put(hash, bytes).map_err(RelayError::internal)
        }
    }

    /// Whether photo `hash`'s file is in the photo store. A recorded photo's
    /// may be missing after a crash in [`Relay::keep_blob`] (the removal of
    /// the same bytes took it, the process died before putting it again): its
    /// upload is then taken again, not answered as stored.
    fn has_file(&self, hash: &PhotoHash) -> Result<bool, RelayError> {
        match self.blobs.read_range(hash, 0, 1) {
            Ok(_) => Ok(true),
            Err(BlobStoreError::NotFound { .. }) => Ok(false),
            Err(e) => Err(RelayError::internal(e)),
        }
    }

    /// Before `device` starts an upload: forget its oldest unfinished ones past
    /// [`MAX_PARTIALS_PER_DEVICE`] - 1. A store that cannot list them now only
    /// delays this to the next upload (and the daily sweep).
    fn make_room_for_partial(&self, device: &str) {
        let named = format!("-{device}-");
        let mut mine = match self.blobs.partials() {
            Ok(all) => all
                .into_iter()
                .filter(|p| p.key.contains(&named))
                .collect::<Vec<_>>(),
            Err(e) => {
                tracing::warn!(error = %e, "could not list partial uploads");
                return;
            }
        };
        let over = (mine.len() + 1).saturating_sub(MAX_PARTIALS_PER_DEVICE);
        if over == 0 {
            return;
        }
        mine.sort_by_key(|p| p.modified);
        for p in mine.iter().take(over) {
            self.forget_partial(&p.key);
        }
        tracing::warn!(
            device,
            forgotten = over,
            "a device's oldest unfinished uploads forgotten"
        );
    }

    /// Forget the unfinished uploads that have not grown for [`PARTIAL_DAYS`]
    /// as of `now`: daily in `serve`. Answers how many went.
    pub fn sweep_partials(&self, now: std::time::SystemTime) -> Result<usize, RelayError> {
        let cutoff = now
            .checked_sub(std::time::Duration::from_secs(PARTIAL_DAYS * 24 * 3600))
            .unwrap_or(std::time::UNIX_EPOCH);
        let stale: Vec<String> = self
            .blobs
            .partials()
            .map_err(RelayError::internal)?
            .into_iter()
            .filter(|p| p.modified < cutoff)
            .map(|p| p.key)
            .collect();
        for key in &stale {
            self.blobs
                .remove_partial(key)
                .map_err(RelayError::internal)?;
        }
        if !stale.is_empty() {
            tracing::info!(
                forgotten = stale.len(),
                "unfinished uploads past {PARTIAL_DAYS} days forgotten"
            );
        }
        Ok(stale.len())
    }

    /// Drop a partial upload; a failure only leaves it for the next attempt to
    /// overwrite or resume.
    fn forget_partial(&self, key: &str) {
        if let Err(e) = self.blobs.remove_partial(key) {
            tracing::warn!(error = %e, "could not remove a partial upload");
        }
    }

    /// Part of a stored photo a device may see.
    pub fn get_blob(
        &self,
        caller: &Caller,
        req: BlobGetRequest,
    ) -> Result<BlobGetResponse, RelayError> {
        check_version(req.v)?;
        self.visible_photo(&caller.user, &req.hash)?;
        let hash = &req.hash;
        let Some(total) = self
            .store
            .blob_size(hash.as_str())
            .map_err(RelayError::internal)?
        else {
            return Err(RelayError::NotFound("the photo has not been uploaded yet"));
        };
        let len = req.max_bytes.clamp(1, MAX_CHUNK_BYTES as u64);
        let bytes = self
            .blobs
            .read_range(hash, req.offset.min(total), len)
            .map_err(RelayError::internal)?;
        Ok(BlobGetResponse {
            v: req.v,
            total,
            bytes,
        })
    }

    /// A photo `user` may upload: one a document they may see refers to, or one
    /// they attached themselves (their case may have left their scope since).
    fn uploadable_photo(&self, user: &User, hash: &PhotoHash) -> Result<(), RelayError> {
        let ok = self
            .store
            .photo_attached_by(hash.as_str(), user.id.as_str())?
            || self.store.photo_visible(hash.as_str(), &visibility(user))?;
        if ok {
            Ok(())
        } else {
            Err(RelayError::NotFound("no such photo"))
        }
    }
}

/// Whether `bytes` are the photo `hash` names, and one the relay keeps and hands
/// to other devices: what the capture pipeline makes, a JPEG no larger than a
/// display image (see [`check_rendition`]).
pub(super) fn check_blob(hash: &PhotoHash, bytes: &[u8]) -> Result<(), String> {
    if gridsync_core::photo::hash_of(bytes) != *hash {
        return Err("the photo does not match its hash; send it again".into());
    }
    check_rendition(bytes)
}

/// Whether `bytes` are what the capture pipeline stores: a well-formed JPEG no
/// larger than a display image, carrying image data only (no EXIF, XMP, IPTC,
/// comments or thumbnails) — the privacy promise holds against a modified app too.
fn check_rendition(bytes: &[u8]) -> Result<(), String> {
    let limit = gridsync_core::photo::PhotoLimits::default().display_px;
    gridsync_core::jpeg::check_clean_jpeg(bytes, limit)
        .map(|_| ())
        .map_err(|e| e.to_string())
}
