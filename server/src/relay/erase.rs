//! Erasing a person for good (ADR 0011): the whole registry document, with its
//! history, from the log, the replica and, through the pull's purge list, every
//! device that holds it. A permanent tombstone keeps it from coming back.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use gridsync_core::{DocId, DocKind, PhotoHash};

use super::store::{Erased, RelayStore, StoreError};
use super::{Relay, RelayError};
use crate::blobstore::BlobStore;

/// Why a document was erased: a small closed set of codes, recorded with the
/// tombstone and in the audit log (never anything about the person).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErasureReason {
    /// The person moved away and the retention period has passed.
    MovedAwayRetention,
    /// The person died and the retention period has passed.
    DeceasedRetention,
    /// The person asked for it (PIPL's right to erasure).
    AtRequest,
    /// The record was entered by mistake or twice.
    EnteredInError,
    /// Erased at another tier (a town's erasure reaching its district, or the
    /// district's reaching the town); never given by an operator.
    Tier,
    /// A closed case past its category's retention (`retention.rs`); never given
    /// by an operator.
    CaseRetention,
}

impl ErasureReason {
    /// Every code an operator may give, as accepted on the command line.
    pub const CHOICES: [ErasureReason; 4] = [
        ErasureReason::MovedAwayRetention,
        ErasureReason::DeceasedRetention,
        ErasureReason::AtRequest,
        ErasureReason::EnteredInError,
    ];

    /// The code as stored and logged.
    pub fn code(self) -> &'static str {
        match self {
            ErasureReason::MovedAwayRetention => "moved-away-retention",
            ErasureReason::DeceasedRetention => "deceased-retention",
            ErasureReason::AtRequest => "at-request",
            ErasureReason::EnteredInError => "entered-in-error",
            ErasureReason::Tier => "tier",
            ErasureReason::CaseRetention => "case-retention",
        }
    }
}

impl std::fmt::Display for ErasureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl std::str::FromStr for ErasureReason {
    type Err = String;

    /// An operator's code; `tier` is not one.
    fn from_str(s: &str) -> Result<Self, String> {
        Self::CHOICES
            .into_iter()
            .find(|r| r.code() == s)
            .ok_or_else(|| {
                let codes: Vec<_> = Self::CHOICES.iter().map(|r| r.code()).collect();
                format!("unknown reason; give one of: {}", codes.join(", "))
            })
    }
}

/// Whether `doc` is a document an operator may erase: a person or a household of
/// the registry. Cases leave by their category's retention.
pub fn erasable(doc: &DocId) -> Result<(), RelayError> {
    match doc.kind() {
        DocKind::Person | DocKind::Household => Ok(()),
        _ => Err(RelayError::bad_request(
            "only a registry document (a person or a household) can be erased",
        )),
    }
}

/// Whether `doc` may carry a tombstone: a registry document, or a case removed
/// by its category's retention (a restored `erasures.log`, another tier's).
pub fn tombstoned_kind(doc: &DocId) -> Result<(), RelayError> {
    match doc.kind() {
        DocKind::Case => Ok(()),
        _ => erasable(doc),
    }
}

/// Whether `reason` may erase `doc`: a case only by retention (here or at
/// another tier), a registry document by anything but.
fn check_reason(doc: &DocId, reason: ErasureReason) -> Result<(), RelayError> {
    tombstoned_kind(doc)?;
    let case = doc.kind() == DocKind::Case;
    let by_retention = matches!(reason, ErasureReason::CaseRetention | ErasureReason::Tier);
    if case && !by_retention {
        return Err(RelayError::bad_request(
            "a case is erased only by its category's retention",
        ));
    }
    if !case && reason == ErasureReason::CaseRetention {
        return Err(RelayError::bad_request(
            "retention erases cases, not registry documents",
        ));
    }
    Ok(())
}

impl Relay {
    /// Erase registry document `doc` for good (ADR 0011), or a case past its
    /// retention: see [`Relay::erase_all`]. Answers false if it had been erased
    /// already (the steps run again: an erasure interrupted half-way is finished
    /// this way).
    pub fn erase(&self, doc: &DocId, reason: ErasureReason) -> Result<bool, RelayError> {
        Ok(self.erase_all(std::slice::from_ref(doc), reason)? == 1)
    }

    /// Erase `docs` for good: per document, under the push lock, its log rows,
    /// scope, photo records, receipts and notifications deleted and a tombstone
    /// recorded in one transaction of the store; then the photos only they
    /// referred to removed from the photo store; then their rows in this node's
    /// replica; then [`Relay::scrub`]. Every device holding one is told to purge
    /// it by its next pull; a later push of it is refused. Answers how many were
    /// not erased before.
    ///
    /// An operator's erasure; retention goes through [`Relay::erase_unscrubbed`]
    /// with the moment it judged the cases due. Safe while `gridsync serve` runs
    /// on the same data folder: a push that raced with it is refused at its log
    /// append, and the serving relay erases it from the replica again after that
    /// append.
    pub fn erase_all(&self, docs: &[DocId], reason: ErasureReason) -> Result<usize, RelayError> {
        let new = self.erase_unscrubbed(docs, reason, None)?;
        if !docs.is_empty() {
            self.scrub()?;
        }
        Ok(new)
    }

    /// [`Relay::erase_all`] without the scrub, for a sweep that scrubs once
    /// after all its batches. With `judged`, the moment the documents were
    /// judged due: one a change of which arrived since is left alone (a push
    /// renewed it meanwhile).
    ///
    /// The photo files go after the tombstone has committed, which records them
    /// as left to remove: a crash between leaves them for the next sweep
    /// ([`Relay::remove_erased_photos`]), never a live document without its
    /// photos. Fails if one of these documents' photos could not be removed
    /// (it stays listed); another erasure's leftover that fails again is only
    /// logged.
    pub(super) fn erase_unscrubbed(
        &self,
        docs: &[DocId],
        reason: ErasureReason,
        judged: Option<DateTime<Utc>>,
    ) -> Result<usize, RelayError> {
        if docs.is_empty() {
            return Ok(0);
        }
        for doc in docs {
            check_reason(doc, reason)?;
        }
        let mut erased = Vec::with_capacity(docs.len());
        let mut own_photos = HashSet::new();
        let mut new = 0;
        {
            let _pushes = self.store.lock_pushes()?;
            let now = Utc::now().timestamp_millis();
            let bound = judged.map(|t| t.timestamp_millis());
            for doc in docs {
                match self.store.erase(doc, reason.code(), now, bound)? {
                    Erased::Done { new: fresh, photos } => {
                        new += usize::from(fresh);
                        own_photos.extend(photos);
                        erased.push(doc.clone());
                        // The audit record: the id and the reason code, nothing
                        // about its content.
                        tracing::info!(target: "audit", doc = %doc, reason = reason.code(), new = fresh, "erased");
                    }
                    Erased::Renewed => {
                        tracing::info!(doc = %doc, "a change arrived since it was judged due; kept");
                    }
                }
            }
        }
        // The replica is cleared even if a photo fails: the tombstones have
        // committed, and the photo stays left to remove.
        let photos = self.remove_erased_photos();
        self.erase_from_replica(&erased)?;
        if let Some((hash, e)) = photos?
            .failed
            .into_iter()
            .find(|(hash, _)| own_photos.contains(hash))
        {
            return Err(RelayError::internal(format!(
                "an erased document's photo {hash} was not removed (tried again at the next sweep): {e}"
            )));
        }
        Ok(new)
    }

    /// Remove from the photo store the photos erasures left to remove — just
    /// committed, or left by a crash or a failure before (a sweep calls this
    /// first): [`remove_erased_photos`].
    pub(super) fn remove_erased_photos(&self) -> Result<PhotoRemoval, RelayError> {
        Ok(remove_erased_photos(
            self.store.as_ref(),
            self.blobs.as_ref(),
        )?)
    }

    /// The file that marks this node's replica as owing a scrub (the store's
    /// mark is shared by the nodes; each replica is its own): made before rows
    /// are erased from it, removed once it was scrubbed.
    fn replica_scrub_mark(&self) -> PathBuf {
        let mut path = self.engine.db_path().as_os_str().to_owned();
        path.push(".scrub-pending");
        PathBuf::from(path)
    }

    /// Whether this node's replica owes a scrub.
    pub(super) fn replica_scrub_pending(&self) -> bool {
        self.replica_scrub_mark().exists()
    }

    /// Erase `docs` from this node's replica, marked first as owing a scrub (the
    /// mark is left only if a document went or it was there before). Answers
    /// how many it held.
    fn erase_from_replica(&self, docs: &[DocId]) -> Result<usize, RelayError> {
        let mark = self.replica_scrub_mark();
        let had = mark.exists();
        if !had {
            make_durable(&mark).map_err(RelayError::internal)?;
        }
        // A reader of another process (a serving relay) may keep the WAL
        // checkpoint waiting a moment: try again before giving up.
        let mut held = 0;
        retry(|| {
            held = self
                .engine
                .erase_documents(docs)
                .map_err(RelayError::internal)?;
            Ok(())
        })?;
        if held == 0 && !had {
            std::fs::remove_file(&mark).map_err(RelayError::internal)?;
        }
        Ok(held)
    }

    /// Make erased rows unreadable on disk: SQLite's files rebuilt from their
    /// live rows (`VACUUM`: `secure_delete` zeroes deleted rows, not the copies a
    /// page split left in a page's unused space) and their WALs emptied, for the
    /// store and this node's replica; PostgreSQL's tables rows were deleted from
    /// rewritten (`VACUUM (FULL)`). Rewrites whole files: once per erasure or
    /// sweep. Each mark of a scrub owed is cleared after its part, unless an
    /// erasure set it again meanwhile.
    pub(super) fn scrub(&self) -> Result<(), RelayError> {
        let mark = self.store.scrub_pending()?;
        retry(|| Ok(self.store.scrub()?))?;
        if let Some(mark) = mark {
            self.store.scrubbed(&mark)?;
        }
        self.scrub_replica()
    }

    /// This node's part of [`Relay::scrub`].
    fn scrub_replica(&self) -> Result<(), RelayError> {
        retry(|| self.engine.scrub().map_err(RelayError::internal))?;
        match std::fs::remove_file(self.replica_scrub_mark()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(RelayError::internal(e)),
            _ => Ok(()),
        }
    }

    /// Erase from this node's replica every tombstoned document it still holds,
    /// if tombstones were added since it last looked: another node's, another
    /// process's (`gridsync admin erase-person` while serving) or a restored
    /// `erasures.log`'s. Cheap when nothing changed (one count).
    pub fn apply_erasures(&self) -> Result<usize, RelayError> {
        let count = self.store.erasure_count()?;
        if count == self.erasures_seen.load(Ordering::SeqCst) {
            return Ok(0);
        }
        let tombstoned: Vec<DocId> = self.store.erasures(0)?.into_iter().map(|e| e.doc).collect();
        let erased = self.erase_from_replica(&tombstoned)?;
        if self.replica_scrub_pending() {
            self.scrub_replica()?;
        }
        if erased > 0 {
            tracing::info!(
                documents = erased,
                "erased tombstoned documents from the replica"
            );
        }
        self.erasures_seen.store(count, Ordering::SeqCst);
        Ok(erased)
    }

    /// Apply tombstones received from another tier (a downstream relay's push or
    /// the upstream's pull answer): each registry document erased here as by
    /// [`Relay::erase`], with the reason `tier`. A case is erased only where this
    /// relay's own reading finds it past its retention (a tier's clock or a
    /// compromised tier does not remove a case here early); otherwise this
    /// relay's own sweep removes it when it is due. Answers how many were new here.
    pub(crate) fn erase_from_tier(&self, docs: &[DocId]) -> Result<usize, RelayError> {
        let judged = Utc::now();
        let mut due = Vec::new();
        for doc in docs {
            if tombstoned_kind(doc).is_err() {
                tracing::warn!(doc = %doc, "a tier named a document that cannot be erased; ignored");
                continue;
            }
            if self.store.is_erased(doc)? {
                continue;
            }
            if doc.kind() == DocKind::Case && !self.retention_due(doc, judged)? {
                continue;
            }
            due.push(doc.clone());
        }
        let new = self.erase_unscrubbed(&due, ErasureReason::Tier, Some(judged))?;
        if !due.is_empty() {
            self.scrub()?;
        }
        Ok(new)
    }
}

/// What [`remove_erased_photos`] did.
#[derive(Debug, Default)]
pub(crate) struct PhotoRemoval {
    /// Files removed.
    pub removed: usize,
    /// The photos whose removal failed, still listed for the next try, and why.
    pub failed: Vec<(String, StoreError)>,
}

/// Remove from `photos` the photos erasures recorded in `store` as left to
/// remove, each unless the same bytes were recorded again since. Every one is
/// tried, in hash order, whatever failed before it; a failed one stays listed
/// (and is logged). Fails only if the list cannot be read.
pub(crate) fn remove_erased_photos(
    store: &dyn RelayStore,
    photos: &dyn BlobStore,
) -> Result<PhotoRemoval, StoreError> {
    const PAGE: u32 = 200;
    let mut done = PhotoRemoval::default();
    let mut after = String::new();
    loop {
        let left = store.erased_photos_left(&after, PAGE)?;
        for hash in &left {
            let mut remove = || {
                let photo = hash
                    .parse::<PhotoHash>()
                    .map_err(|e| StoreError::failed(e.to_string()))?;
                photos
                    .remove(&photo)
                    .map_err(|e| StoreError::failed(e.to_string()))
            };
            match store.remove_erased_photo(hash, &mut remove) {
                Ok(gone) => done.removed += usize::from(gone),
                Err(e) => {
                    tracing::error!(photo = %hash, error = %e, "an erased document's photo was not removed");
                    done.failed.push((hash.clone(), e));
                }
            }
        }
        match left.last() {
            Some(last) if left.len() == PAGE as usize => after = last.clone(),
            _ => return Ok(done),
        }
    }
}

/// Create an empty file at `path` that survives a power cut.
fn make_durable(path: &Path) -> std::io::Result<()> {
    std::fs::File::create(path)?.sync_all()?;
    match path.parent() {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// `step` again after a pause if it fails, up to five tries: a reader of another
/// process may keep a checkpoint waiting a moment.
fn retry(mut step: impl FnMut() -> Result<(), RelayError>) -> Result<(), RelayError> {
    let mut attempt = 0;
    loop {
        match step() {
            Ok(()) => return Ok(()),
            Err(e) if attempt == 4 => return Err(e),
            Err(_) => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        }
    }
}
