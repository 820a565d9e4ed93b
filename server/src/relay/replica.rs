//! A node's replica of a shared log: on PostgreSQL every node keeps its own
//! `server.db` and catches it up with what other nodes logged (ADR 0009).

use std::collections::HashSet;

use gridsync_core::sync::decode_change;

use super::store::LogEntry;
use super::{Relay, RelayError};

/// A node's catch-up bookkeeping.
pub(super) struct ReplicaState {
    /// The position recorded in the replica (`Engine::replica_position`).
    recorded: u64,
    /// Log entries read but waiting for dependencies not logged yet (a change whose
    /// push failed after the replica that checked it had it), in log order.
    waiting: Vec<(u64, LogEntry)>,
}

impl ReplicaState {
    /// Recorded at `position`, nothing waiting.
    pub(super) fn at(position: u64) -> Self {
        ReplicaState {
            recorded: position,
            waiting: Vec::new(),
        }
    }
}

/// How many bytes of changes a catch-up reads at once.
const CATCH_UP_BYTES: u64 = 4 * 1024 * 1024;

impl Relay {
    /// Bring this node's replica up to date with the shared log: what other nodes
    /// stored since (nothing to do on a store of one node); and its directory
    /// with a revision another node or process stored.
    pub fn catch_up(&self) -> Result<(), RelayError> {
        use std::sync::atomic::Ordering;
        // A directory revision stored by another node or process, too.
        self.refresh_directory_now_and_then()?;
        if !self.store.shared() {
            return Ok(());
        }
        let mut replica = self.replica.lock().unwrap_or_else(|e| e.into_inner());
        let mut from = self.applied.load(Ordering::SeqCst);
        // Changes that waited for their dependencies go again first: the
        // dependency may have arrived since, in the log or through this node.
        let mut waiting = self.import_log_entries(std::mem::take(&mut replica.waiting))?;
        loop {
            let entries = self.store.log_after(from, None, CATCH_UP_BYTES)?;
            let Some(&(last, _)) = entries.last() else {
                break;
            };
            from = last;
            waiting.extend(self.import_log_entries(entries)?);
        }
        self.applied.fetch_max(from, Ordering::SeqCst);
        // The recorded position stays before the first change still waiting, so a
        // restarted node reads it again.
        let safe = waiting
            .first()
            .map_or(from, |(seq, _)| seq.saturating_sub(1))
            .min(from);
        if safe > replica.recorded {
            self.engine
                .set_replica_position(safe)
                .map_err(RelayError::internal)?;
            replica.recorded = safe;
        }
        if !waiting.is_empty() {
            tracing::warn!(
                changes = waiting.len(),
                "logged changes wait for dependencies not logged yet"
            );
        }
        replica.waiting = waiting;
        drop(replica);
        // Another node's erasures leave this replica too (ADR 0011).
        self.apply_erasures()?;
        Ok(())
    }

    /// Import log entries into the replica (each was checked when it was logged);
    /// answers those whose dependencies the replica lacks, in log order.
    fn import_log_entries(
        &self,
        entries: Vec<(u64, LogEntry)>,
    ) -> Result<Vec<(u64, LogEntry)>, RelayError> {
        if entries.is_empty() {
            return Ok(entries);
        }
        // Logged changes passed the checked decoder when they were pushed; they go
        // through it again, as everything read from storage does.
        let mut decoded = Vec::with_capacity(entries.len());
        for (_, e) in &entries {
            match decode_change(&e.bytes) {
                Ok(change) => decoded.push((e.doc.clone(), change)),
                Err(err) => {
                    tracing::error!(doc = %e.doc, error = %err, "a logged change does not decode")
                }
            }
        }
        let batch = gridsync_core::engine::group_by_doc(decoded);
        let mut missing = HashSet::new();
        for r in self
            .engine
            .import_changes(batch)
            .map_err(RelayError::internal)?
        {
            match r.outcome {
                Ok(report) => missing.extend(report.missing_deps),
                // Logged changes were valid where they were checked: a bug, not
                // something waiting would mend.
                Err(e) => {
                    tracing::error!(doc = %r.doc, error = %e, "a logged change does not import")
                }
            }
        }
        Ok(entries
            .into_iter()
            .filter(|(_, e)| missing.contains(&automerge::ChangeHash(e.hash)))
            .collect())
    }
}
