//! Retention (issue #19, scenario 9; docs/directory-format.md, "Retention"): a
//! category of the directory may say how many days its closed cases are kept.
//! A case is due when it is closed (archived, evaluated or invalid, as the relay
//! judges its timeline) and that many days have passed since the later of when
//! it was closed and when this relay last received a change of it — the relay's
//! own clock, so a phone's clock set back does not make a case go early, and any
//! later change (an evaluation after archiving, a note) starts the period again. A due case
//! is erased like an erased person (ADR 0011): from the log, the replica, the
//! photo store and, through the pull's purge list, every phone; its tombstone
//! keeps it out of the backups taken afterwards and is applied to any restored.

use chrono::{DateTime, Duration, Utc};
use gridsync_core::{DocContent, DocId};

use super::{ErasureReason, Relay, RelayError};

/// A sweep looks at the candidates this many at a time (and erases the due ones
/// of each page together).
const STEP: u32 = 200;

/// What a retention sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Closed cases past their category's retention by their close time that
    /// were looked at (a later change received may keep one).
    pub looked_at: usize,
    /// Of those, the ones erased (due, and not erased before).
    pub erased: usize,
}

impl Relay {
    /// Erase every closed case past its category's retention at `now`, after
    /// finishing what an erasure before left undone. Cheap when the directory
    /// keeps every category for good (no case is read).
    pub fn sweep_retention(&self, now: DateTime<Utc>) -> Result<Sweep, RelayError> {
        let directory = self.directory()?;
        // By the relay's own clock (`now` may be another moment): a change that
        // arrives after this renews its case, even half-way through the sweep.
        let judged = Utc::now();
        // What an erasure before left undone (a crash, a failure): its photos
        // (one that fails again is logged and stays listed; the sweep goes on),
        // its scrub.
        let leftovers = self.remove_erased_photos()?;
        if leftovers.removed > 0 {
            tracing::info!(
                photos = leftovers.removed,
                "photos an earlier erasure left were removed"
            );
        }
        let mut touched = self.store.scrub_pending()?.is_some() || self.replica_scrub_pending();
        let mut sweep = Sweep::default();
        for category in directory.categories() {
            let Some(days) = category.retention_days else {
                continue;
            };
            let before = now - Duration::days(days.into());
            let mut after = None;
            loop {
                let page = self
                    .engine
                    .closed_cases_before(category.code.as_str(), before, after.as_ref(), STEP)
                    .map_err(RelayError::internal)?;
                let mut due = Vec::new();
                for case in &page {
                    if self
                        .due_at(&case.doc, days, case.closed)?
                        .is_some_and(|due| due <= now)
                    {
                        due.push(case.doc.clone());
                    }
                }
                sweep.looked_at += page.len();
                sweep.erased +=
                    self.erase_unscrubbed(&due, ErasureReason::CaseRetention, Some(judged))?;
                touched |= !due.is_empty();
                if page.len() < STEP as usize {
                    break;
                }
                after = page.last().cloned();
            }
        }
        if touched {
            self.scrub()?;
        }
        if sweep.erased > 0 {
            tracing::info!(
                erased = sweep.erased,
                looked_at = sweep.looked_at,
                "closed cases past their retention erased"
            );
        }
        Ok(sweep)
    }

    /// Whether case `doc` is past its category's retention at `now`, as this
    /// relay reads it (false for a case it does not hold, an open one, or one
    /// whose category keeps its cases).
    pub(super) fn retention_due(
        &self,
        doc: &DocId,
        now: DateTime<Utc>,
    ) -> Result<bool, RelayError> {
        let Some(DocContent::Case(case)) =
            self.engine.read_doc(doc).map_err(RelayError::internal)?
        else {
            return Ok(false);
        };
        let state = self.judged_state(&case);
        let Some(closed) = state.closed_at.filter(|_| state.status.is_closed()) else {
            return Ok(false);
        };
        let directory = self.directory()?;
        let Some(days) = directory
            .category(&case.category)
            .and_then(|c| c.retention_days)
        else {
            return Ok(false);
        };
        Ok(self
            .due_at(doc, days, closed)?
            .is_some_and(|due| due <= now))
    }

    /// When case `doc`, closed at `closed`, is due under a retention of `days`:
    /// counted from the later of `closed` and the last change of it this relay
    /// received (its own clock; every change, whatever ids or times a phone put
    /// in it). `None` when that is beyond the calendar.
    fn due_at(
        &self,
        doc: &DocId,
        days: u32,
        closed: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, RelayError> {
        let last_received = self
            .store
            .last_received(doc)?
            .and_then(DateTime::from_timestamp_millis);
        let from = last_received.map_or(closed, |r| r.max(closed));
        Ok(from.checked_add_signed(Duration::days(days.into())))
    }
}
