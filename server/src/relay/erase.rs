//! Erasing a person for good (ADR 0011): the whole registry document, with its
//! history, from the log, the replica and, through the pull's purge list, every
//! device that holds it. A permanent tombstone keeps it from coming back.

use std::sync::atomic::Ordering;

use chrono::Utc;
use gridsync_core::{DocId, DocKind};

use super::{Relay, RelayError};

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

/// Whether `doc` is a document erasure applies to: a person or a household of
/// the registry. Cases and patrols follow their own retention.
pub fn erasable(doc: &DocId) -> Result<(), RelayError> {
    match doc.kind() {
        DocKind::Person | DocKind::Household => Ok(()),
        _ => Err(RelayError::bad_request(
            "only a registry document (a person or a household) can be erased",
        )),
    }
}

impl Relay {
    /// Erase registry document `doc` for good (ADR 0011): its log rows, scope and
    /// photo references deleted and a tombstone recorded in one transaction of the
    /// store, then its rows in this node's replica, then the freed space made
    /// unreadable (SQLite: `secure_delete` and a truncating WAL checkpoint on both
    /// databases; PostgreSQL: `VACUUM (FULL)` of the log and scope tables). Every
    /// device holding it is told to purge it by its next pull; a later push of it
    /// is refused. Answers false if it had been erased already (the steps run
    /// again: an erasure interrupted half-way is finished this way).
    ///
    /// Safe while `gridsync serve` runs on the same data folder: a push that
    /// raced with it is refused at its log append, and the serving relay erases it
    /// from the replica again after that append.
    pub fn erase(&self, doc: &DocId, reason: ErasureReason) -> Result<bool, RelayError> {
        erasable(doc)?;
        let new = {
            let _pushes = self.store.lock_pushes()?;
            self.store
                .erase(doc, reason.code(), Utc::now().timestamp_millis())?
        };
        // A reader of another process (a serving relay) may keep the WAL
        // checkpoint waiting a moment: try again before giving up.
        let mut attempt = 0;
        while let Err(e) = self.engine.erase_document(doc) {
            attempt += 1;
            if attempt == 5 {
                return Err(RelayError::internal(e));
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let mut attempt = 0;
        while let Err(e) = self.store.scrub() {
            attempt += 1;
            if attempt == 5 {
                return Err(e.into());
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        // The audit record: the id and the reason code, nothing about the person.
        tracing::info!(target: "audit", doc = %doc, reason = reason.code(), new, "erased");
        Ok(new)
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
        let mut erased = 0;
        for e in self.store.erasures(0)? {
            if self
                .engine
                .erase_document(&e.doc)
                .map_err(RelayError::internal)?
            {
                erased += 1;
            }
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
    /// the upstream's pull answer): each erased here as by [`Relay::erase`], with
    /// the reason `tier`. Answers how many were new here.
    pub(crate) fn erase_from_tier(&self, docs: &[DocId]) -> Result<usize, RelayError> {
        let mut new = 0;
        for doc in docs {
            if erasable(doc).is_err() {
                tracing::warn!(doc = %doc, "a tier named a document that cannot be erased; ignored");
                continue;
            }
            if self.store.is_erased(doc)? {
                continue;
            }
            new += usize::from(self.erase(doc, ErasureReason::Tier)?);
        }
        Ok(new)
    }
}
