//! Automerge documents in SQLite: a compacted snapshot per document plus the
//! changes made since, append-only and keyed by hash. Local changes are also
//! queued in the outbox by hash, and their bytes stay in `doc_changes` until the
//! server has settled them.

use std::panic::{catch_unwind, AssertUnwindSafe};

use automerge::{Automerge, Change, ChangeHash, ReadDoc};
use rusqlite::{params, OptionalExtension, Transaction};

use crate::error::{Error, Result};
use crate::ids::{DocId, DocKind, PhotoHash};
use crate::sync::change::decode_change;

/// Largest total of changes to one document in one import.
pub const MAX_DOC_IMPORT_BYTES: usize = 16 * 1024 * 1024;
/// Changes since the last snapshot before the document is compacted.
const COMPACT_AFTER: i64 = 32;

/// A document's stored bytes: its snapshot and the changes since. Reading them is
/// I/O; building the document from them is CPU work that may run on another thread.
pub(crate) struct StoredDoc {
    snapshot: Option<Vec<u8>>,
    changes: Vec<Vec<u8>>,
}

/// The stored bytes of a document, or `None` if this replica does not have it.
pub(crate) fn load_stored(tx: &Transaction<'_>, id: &DocId) -> Result<Option<StoredDoc>> {
    let snapshot: Option<Option<Vec<u8>>> = tx
        .prepare_cached("SELECT snapshot FROM docs WHERE doc_id = ?1")?
        .query_row([id.as_str()], |r| r.get(0))
        .optional()?;
    let Some(snapshot) = snapshot else {
        return Ok(None);
    };
    let mut stmt = tx.prepare_cached(
        "SELECT bytes FROM doc_changes WHERE doc_id = ?1 AND folded IS NULL ORDER BY id",
    )?;
    let changes = stmt
        .query_map([id.as_str()], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(StoredDoc { snapshot, changes }))
}

impl StoredDoc {
    /// Build the document.
    pub(crate) fn build(self, id: &DocId) -> Result<Automerge> {
        let corrupt = |e: automerge::AutomergeError| Error::BadChange {
            doc: id.to_string(),
            reason: format!("stored document is unreadable: {e}"),
        };
        let mut doc = match self.snapshot {
            Some(bytes) => Automerge::load(&bytes).map_err(corrupt)?,
            None => Automerge::new(),
        };
        let changes = self
            .changes
            .iter()
            .map(|bytes| {
                decode_change(bytes).map_err(|e| Error::BadChange {
                    doc: id.to_string(),
                    reason: format!("stored change is unreadable: {e}"),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if !changes.is_empty() {
            // Stored changes passed the checked decoder, but a change that does not
            // fit its document can still make Automerge panic: an error, not a crash.
            match catch_unwind(AssertUnwindSafe(|| doc.apply_changes(changes))) {
                Ok(applied) => applied.map_err(corrupt)?,
                Err(_) => {
                    return Err(Error::BadChange {
                        doc: id.to_string(),
                        reason: "a stored change could not be applied (Automerge panicked)".into(),
                    })
                }
            }
        }
        Ok(doc)
    }
}

/// Load a document, or `None` if this replica does not have it.
pub(crate) fn load(tx: &Transaction<'_>, id: &DocId) -> Result<Option<Automerge>> {
    load_stored(tx, id)?.map(|s| s.build(id)).transpose()
}

fn ensure_doc_row(tx: &Transaction<'_>, id: &DocId, now_ms: i64) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO docs (doc_id, kind, updated_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (doc_id) DO UPDATE SET updated_ms = excluded.updated_ms",
    )?
    .execute(params![id.as_str(), id.kind().as_str(), now_ms])?;
    Ok(())
}

/// Persist changes to `doc` (already applied in memory), compacting when due.
/// Local changes also enter the outbox.
///
/// Compaction folds a document's changes into its snapshot and deletes them,
/// except those still waiting in the outbox, which read their bytes from
/// `doc_changes`: they stay, marked `folded`, until the server settles them
/// ([`mark_acked`], [`mark_rejected`]).
pub(crate) fn persist(
    tx: &Transaction<'_>,
    id: &DocId,
    doc: &Automerge,
    changes: &[Change],
    local: bool,
    now_ms: i64,
) -> Result<()> {
    ensure_doc_row(tx, id, now_ms)?;
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO doc_changes (doc_id, hash, bytes) VALUES (?1, ?2, ?3)",
    )?;
    let mut outbox = tx.prepare_cached(
        "INSERT OR IGNORE INTO outbox (doc_id, hash, created_ms, size) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for change in changes {
        let hash = change.hash();
        insert.execute(params![id.as_str(), &hash.0[..], change.raw_bytes()])?;
        if local {
            outbox.execute(params![
                id.as_str(),
                &hash.0[..],
                now_ms,
                change.raw_bytes().len() as i64
            ])?;
        }
    }
    let pending: i64 = tx
        .prepare_cached("SELECT count(*) FROM doc_changes WHERE doc_id = ?1 AND folded IS NULL")?
        .query_row([id.as_str()], |r| r.get(0))?;
    if pending > COMPACT_AFTER {
        // The snapshot and the deletion commit together, so a crash leaves either the
        // old changes or the new snapshot, never neither.
        tx.prepare_cached("UPDATE docs SET snapshot = ?2 WHERE doc_id = ?1")?
            .execute(params![id.as_str(), doc.save()])?;
        tx.prepare_cached(
            "DELETE FROM doc_changes WHERE doc_id = ?1 AND hash NOT IN
                 (SELECT hash FROM outbox WHERE doc_id = ?1 AND acked_ms IS NULL)",
        )?
        .execute([id.as_str()])?;
        tx.prepare_cached("UPDATE doc_changes SET folded = 1 WHERE doc_id = ?1")?
            .execute([id.as_str()])?;
    }
    Ok(())
}

/// A change the server settled leaves `doc_changes` if compaction kept it only
/// for the outbox.
fn drop_folded(tx: &Transaction<'_>, hash: &ChangeHash) -> Result<()> {
    tx.prepare_cached("DELETE FROM doc_changes WHERE hash = ?1 AND folded = 1")?
        .execute([&hash.0[..]])?;
    Ok(())
}

/// What became of one document's changes in an import.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DocImport {
    /// Changes newly applied.
    pub applied: Vec<ChangeHash>,
    /// Changes this replica already had.
    pub duplicates: Vec<ChangeHash>,
    /// Changes held back because a change they depend on has not arrived.
    pub missing_deps: Vec<ChangeHash>,
    /// Changes refused by the caller's check, with the reason; never stored.
    pub rejected: Vec<(ChangeHash, String)>,
    /// The document's content after the import, when anything was applied.
    pub content: Option<crate::doc::DocContent>,
}

/// Refuse an import whose changes to one document exceed [`MAX_DOC_IMPORT_BYTES`].
pub(crate) fn check_import_size(id: &DocId, changes: &[Change]) -> Result<()> {
    let total: usize = changes.iter().map(|c| c.raw_bytes().len()).sum();
    if total > MAX_DOC_IMPORT_BYTES {
        return Err(Error::BadChange {
            doc: id.to_string(),
            reason: format!("{total} bytes of changes; the limit is {MAX_DOC_IMPORT_BYTES}"),
        });
    }
    Ok(())
}

/// Apply decoded changes to an in-memory document. A panic inside Automerge is
/// caught and reported as a bad change; the caller discards the document.
pub(crate) fn apply(
    id: &DocId,
    doc: &mut Automerge,
    changes: Vec<Change>,
) -> Result<(Vec<Change>, DocImport)> {
    let mut report = DocImport::default();
    let mut fresh = Vec::new();
    for change in changes {
        if doc.get_change_by_hash(&change.hash()).is_some() {
            report.duplicates.push(change.hash());
        } else {
            fresh.push(change);
        }
    }
    let result = catch_unwind(AssertUnwindSafe(|| doc.apply_changes(fresh.clone())));
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return Err(Error::BadChange {
                doc: id.to_string(),
                reason: e.to_string(),
            })
        }
        Err(_) => {
            return Err(Error::BadChange {
                doc: id.to_string(),
                reason: "the change could not be applied (Automerge panicked)".into(),
            })
        }
    }
    let mut applied = Vec::new();
    for change in fresh {
        if doc.get_change_by_hash(&change.hash()).is_some() {
            report.applied.push(change.hash());
            applied.push(change);
        } else {
            report.missing_deps.push(change.hash());
        }
    }
    Ok((applied, report))
}

/// Every document id of `kind` on this replica.
pub(crate) fn doc_ids(tx: &Transaction<'_>, kind: Option<DocKind>) -> Result<Vec<DocId>> {
    let mut stmt =
        tx.prepare_cached("SELECT doc_id FROM docs WHERE ?1 IS NULL OR kind = ?1 ORDER BY doc_id")?;
    let ids = stmt
        .query_map([kind.map(DocKind::as_str)], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    ids.into_iter()
        .map(|s| s.parse().map_err(Error::from))
        .collect()
}

/// A change waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    /// Position in the outbox (local order, dependencies first).
    pub seq: i64,
    /// The document.
    pub doc: DocId,
    /// The change hash.
    pub hash: ChangeHash,
    /// The raw change.
    pub bytes: Vec<u8>,
}

/// Unacknowledged changes in order, up to about `max_bytes` (always at least one).
pub(crate) fn outbox_pending(tx: &Transaction<'_>, max_bytes: usize) -> Result<Vec<OutboxItem>> {
    let mut stmt = tx.prepare_cached(
        "SELECT o.seq, o.doc_id, o.hash, c.bytes FROM outbox o
         LEFT JOIN doc_changes c ON c.hash = o.hash
         WHERE o.acked_ms IS NULL ORDER BY o.seq",
    )?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    let mut total = 0;
    while let Some(row) = rows.next()? {
        let doc: String = row.get(1)?;
        // Compaction keeps an unsent change's bytes; a row without them is damage,
        // said out loud rather than skipped.
        let Some(bytes) = row.get::<_, Option<Vec<u8>>>(3)? else {
            return Err(Error::BadChange {
                doc,
                reason: "an unsent change's bytes are missing from the database".into(),
            });
        };
        if !out.is_empty() && total + bytes.len() > max_bytes {
            break;
        }
        total += bytes.len();
        let hash: Vec<u8> = row.get(2)?;
        out.push(OutboxItem {
            seq: row.get(0)?,
            doc: doc.parse()?,
            hash: ChangeHash::try_from(&hash[..]).map_err(|_| Error::BadChange {
                doc,
                reason: "stored outbox hash is not 32 bytes".into(),
            })?,
            bytes,
        });
    }
    Ok(out)
}

/// How many changes are unacknowledged, and their bytes.
pub(crate) fn outbox_size(tx: &Transaction<'_>) -> Result<(u64, u64)> {
    let (n, bytes): (i64, i64) = tx.query_row(
        "SELECT count(*), coalesce(sum(size), 0) FROM outbox WHERE acked_ms IS NULL",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok((n.max(0) as u64, bytes.max(0) as u64))
}

/// Move changes the server refused out of the outbox, keeping them with the reason.
pub(crate) fn mark_rejected(
    tx: &Transaction<'_>,
    rejected: &[(ChangeHash, String)],
    now_ms: i64,
) -> Result<usize> {
    let mut keep = tx.prepare_cached(
        "INSERT OR IGNORE INTO rejections (hash, doc_id, bytes, reason, rejected_ms)
         SELECT o.hash, o.doc_id, c.bytes, ?2, ?3 FROM outbox o
         LEFT JOIN doc_changes c ON c.hash = o.hash
         WHERE o.hash = ?1 AND o.acked_ms IS NULL",
    )?;
    let mut remove =
        tx.prepare_cached("DELETE FROM outbox WHERE hash = ?1 AND acked_ms IS NULL")?;
    let mut n = 0;
    for (h, reason) in rejected {
        keep.execute(params![&h.0[..], reason, now_ms])?;
        let removed = remove.execute([&h.0[..]])?;
        if removed > 0 {
            drop_folded(tx, h)?;
        }
        n += removed;
    }
    Ok(n)
}

/// The changes the server refused, newest first, with its reasons.
pub(crate) fn rejections(tx: &Transaction<'_>) -> Result<Vec<(DocId, ChangeHash, String)>> {
    let mut stmt =
        tx.prepare("SELECT doc_id, hash, reason FROM rejections ORDER BY rejected_ms DESC, hash")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Vec<u8>>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (doc, hash, reason) = row?;
        let hash = ChangeHash::try_from(&hash[..])
            .map_err(|_| Error::InvalidInput("stored hash is not 32 bytes".into()))?;
        out.push((doc.parse()?, hash, reason));
    }
    Ok(out)
}

/// Of the given outbox changes, those that depend (directly, or through another of
/// them) on a refused change.
pub(crate) fn depending_on_rejections(
    tx: &Transaction<'_>,
    hashes: &[ChangeHash],
) -> Result<Vec<ChangeHash>> {
    let mut refused =
        tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM rejections WHERE hash = ?1)")?;
    let mut bytes_of = tx.prepare_cached(
        "SELECT c.bytes FROM outbox o JOIN doc_changes c ON c.hash = o.hash WHERE o.hash = ?1",
    )?;
    let mut deps = Vec::new();
    for h in hashes {
        let bytes: Option<Vec<u8>> = bytes_of.query_row([&h.0[..]], |r| r.get(0)).optional()?;
        if let Some(change) = bytes.and_then(|b| decode_change(&b).ok()) {
            deps.push((*h, change.deps().to_vec()));
        }
    }
    let mut doomed: Vec<ChangeHash> = Vec::new();
    // Outbox order is causal, so one pass in order catches chains.
    for (h, ds) in deps {
        let mut bad = false;
        for d in &ds {
            if doomed.contains(d) || refused.query_row([&d.0[..]], |r| r.get::<_, bool>(0))? {
                bad = true;
                break;
            }
        }
        if bad {
            doomed.push(h);
        }
    }
    Ok(doomed)
}

/// Queue document `id` for purging, if this replica has it: it goes once settled
/// (see [`purge`]).
pub(crate) fn queue_purge(tx: &Transaction<'_>, id: &DocId, erased: bool) -> Result<()> {
    tx.execute(
        "INSERT INTO purge_pending (doc_id, erased)
         SELECT doc_id, ?2 FROM docs WHERE doc_id = ?1
         ON CONFLICT (doc_id) DO UPDATE SET erased = max(erased, excluded.erased)",
        params![id.as_str(), erased],
    )?;
    Ok(())
}

/// Keep document `id` after all: it is no longer to be purged.
pub(crate) fn unqueue_purge(tx: &Transaction<'_>, id: &DocId) -> Result<()> {
    tx.execute("DELETE FROM purge_pending WHERE doc_id = ?1", [id.as_str()])?;
    Ok(())
}

/// The documents queued for purging, each with whether it was erased.
pub(crate) fn queued_purges(tx: &Transaction<'_>) -> Result<Vec<(DocId, bool)>> {
    let ids: Vec<(String, bool)> = tx
        .prepare_cached("SELECT doc_id, erased FROM purge_pending")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    ids.into_iter()
        .map(|(s, erased)| Ok((s.parse()?, erased)))
        .collect()
}

/// Remove a document and everything derived from it. Its outbox rows must all be
/// acknowledged; they go too. The changes of it the server refused stay for the
/// user to see (`rejections`), except an `erased` document's (ADR 0011, 0017)
/// and a person's or a household's: they hold the person's data, which must not
/// outlive the document on this device.
///
/// Returns the photos only this document referred to: their rows are deleted here,
/// and the caller removes their files once the transaction has committed (a photo
/// of a case the user may no longer see does not stay on the phone).
pub(crate) fn purge(tx: &Transaction<'_>, id: &DocId, erased: bool) -> Result<Vec<PhotoHash>> {
    let only_here: Vec<String> = tx
        .prepare_cached(
            "SELECT c.hash FROM case_photos c
             WHERE c.doc_id = ?1
               AND NOT EXISTS (SELECT 1 FROM case_photos o WHERE o.hash = c.hash AND o.doc_id <> ?1)",
        )?
        .query_map([id.as_str()], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut forget = tx.prepare_cached("DELETE FROM photos WHERE hash = ?1")?;
    for hash in &only_here {
        forget.execute([hash])?;
    }
    // Its terms stay in the search index's segments until they merge: the
    // caller runs `merge_search` once its purges are done.
    tx.prepare_cached(
        "DELETE FROM case_search WHERE rowid = (SELECT rowid FROM cases WHERE doc_id = ?1)",
    )?
    .execute([id.as_str()])?;
    tx.prepare_cached("DELETE FROM outbox WHERE doc_id = ?1")?
        .execute([id.as_str()])?;
    if erased || matches!(id.kind(), DocKind::Person | DocKind::Household) {
        tx.prepare_cached("DELETE FROM rejections WHERE doc_id = ?1")?
            .execute([id.as_str()])?;
    }
    if erased {
        // The relay removed the photos only this document referred to there. One
        // that another document here refers to (attached before this pull told
        // of the erasure) may be among them: it goes up again, answered at once
        // if the relay kept it.
        tx.prepare_cached(
            "UPDATE photos SET uploaded_ms = NULL WHERE hash IN (
                 SELECT c.hash FROM case_photos c WHERE c.doc_id = ?1
                    AND EXISTS (SELECT 1 FROM case_photos o
                                WHERE o.hash = c.hash AND o.doc_id <> ?1))",
        )?
        .execute([id.as_str()])?;
    }
    tx.prepare_cached("DELETE FROM docs WHERE doc_id = ?1")?
        .execute([id.as_str()])?;
    only_here
        .into_iter()
        .map(|h| h.parse().map_err(Error::from))
        .collect()
}

/// Merge the search index into one segment, after purges. A contentless FTS5
/// table only marks a deleted row; its terms (the words of a case's title,
/// description and notes) stay in the older segments until those are merged, and
/// FTS5's `secure-delete` cannot take them out without the text. Merging writes
/// them out of the index; `secure_delete` zeroes the pages they leave.
pub(crate) fn merge_search(tx: &Transaction<'_>) -> Result<()> {
    tx.prepare_cached("INSERT INTO case_search (case_search) VALUES ('optimize')")?
        .execute([])?;
    Ok(())
}

/// Whether a document has local changes the server has not yet settled.
pub(crate) fn has_unsettled(tx: &Transaction<'_>, id: &DocId) -> Result<bool> {
    Ok(tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM outbox WHERE doc_id = ?1 AND acked_ms IS NULL)
                 OR EXISTS (SELECT 1 FROM case_photos c JOIN photos p USING (hash)
                            WHERE c.doc_id = ?1 AND p.uploaded_ms IS NULL)",
        )?
        .query_row([id.as_str()], |r| r.get(0))?)
}

/// Mark changes acknowledged by the server. Returns how many were newly marked.
pub(crate) fn mark_acked(
    tx: &Transaction<'_>,
    hashes: &[ChangeHash],
    now_ms: i64,
) -> Result<usize> {
    let mut stmt =
        tx.prepare_cached("UPDATE outbox SET acked_ms = ?2 WHERE hash = ?1 AND acked_ms IS NULL")?;
    let mut n = 0;
    for h in hashes {
        let marked = stmt.execute(params![&h.0[..], now_ms])?;
        if marked > 0 {
            drop_folded(tx, h)?;
        }
        n += marked;
    }
    Ok(n)
}

/// When a document last changed here (`docs.updated_ms`), 0 if it is not stored.
pub(crate) fn updated_ms(tx: &Transaction<'_>, id: &DocId) -> Result<i64> {
    Ok(tx
        .prepare_cached("SELECT updated_ms FROM docs WHERE doc_id = ?1")?
        .query_row([id.as_str()], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}
