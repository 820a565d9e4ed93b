//! Replication: a document's heads and the changes another replica lacks, the
//! bounded import of changes (read, then build and check on all cores, then store
//! and index), in-process merging, and the outbox of local changes.

use std::collections::{HashMap, HashSet};

use automerge::{Automerge, Change, ChangeHash};
use rusqlite::{OptionalExtension, Transaction};

use super::relay::Checks;
use super::{ChangeCheck, Engine};
use crate::access::Scope;
use crate::doc::DocContent;
use crate::error::{Error, Result};
use crate::ids::{DocId, DocKind, RegionCode};
use crate::store::{self, DocImport, OutboxItem};

/// The result of importing one document's changes from another replica.
#[derive(Debug)]
pub struct ImportResult {
    /// The document.
    pub doc: DocId,
    /// What was applied, or why the document's changes were all rejected.
    pub outcome: Result<DocImport>,
}

impl Engine {
    /// Every document on this replica.
    pub fn doc_ids(&self) -> Result<Vec<DocId>> {
        self.db.read(|tx| store::doc_ids(tx, None))
    }

    /// The heads of a document (empty if this replica does not have it).
    pub fn heads(&self, id: &DocId) -> Result<Vec<ChangeHash>> {
        self.db.read(|tx| {
            Ok(store::load(tx, id)?
                .map(|d| d.get_heads())
                .unwrap_or_default())
        })
    }

    /// The changes of a document that a replica whose heads are `have` lacks, in
    /// causal order (`raw_bytes()` is what goes on the wire).
    pub fn changes_since(&self, id: &DocId, have: &[ChangeHash]) -> Result<Vec<Change>> {
        self.db.read(|tx| {
            Ok(store::load(tx, id)?
                .map(|d| d.get_changes(have))
                .unwrap_or_default())
        })
    }

    /// Import changes from another replica, all documents in one transaction. The
    /// changes come from the checked decoder (`sync::decode_change`); each
    /// document's are bounded in total, applied, checked against the document
    /// schema and only then stored and indexed; a document whose changes fail is
    /// left as it was and reported.
    pub fn import_changes(&self, batch: Vec<(DocId, Vec<Change>)>) -> Result<Vec<ImportResult>> {
        let now_ms = self.now().timestamp_millis();
        self.write(|tx| self.import_batch(tx, batch, None, now_ms))
    }

    /// Import a batch: read what is stored (I/O), then decode, apply, validate and
    /// check every document on all cores (CPU), then store and index them in order.
    /// Bad input is reported per document; a failing disk aborts the batch.
    pub(super) fn import_batch(
        &self,
        tx: &Transaction<'_>,
        batch: Vec<(DocId, Vec<Change>)>,
        checks: Option<&Checks<'_>>,
        now_ms: i64,
    ) -> Result<Vec<ImportResult>> {
        let ids: Vec<DocId> = batch.iter().map(|(id, _)| id.clone()).collect();
        let stored = ids
            .iter()
            .map(|id| store::load_stored(tx, id))
            .collect::<Result<Vec<_>>>()?;
        let work: Vec<_> = batch.into_iter().zip(stored).collect();
        let check = checks.map(|c| c.check);
        let mut prepared = parallel_map(work, |((id, changes), stored)| {
            prepare_import(&id, changes, stored, check)
        });
        if let Some(writer) = checks.and_then(|c| c.writer) {
            check_references(tx, writer, &mut prepared)?;
        }
        let mut results = Vec::with_capacity(ids.len());
        for (id, prepared) in ids.iter().zip(prepared) {
            let outcome = prepared.and_then(|p| {
                if let (Some(doc), Some(content)) = (&p.doc, &p.report.content) {
                    store::persist(tx, id, doc, &p.applied, false, now_ms)?;
                    Self::materialise_content(tx, id, content)?;
                    self.touch(id);
                }
                Ok(p.report)
            });
            if let Err(Error::Storage(e)) = outcome {
                return Err(Error::Storage(e));
            }
            results.push(ImportResult {
                doc: id.clone(),
                outcome,
            });
        }
        Ok(results)
    }

    /// In-process replication: import everything `other` has that this replica
    /// lacks, in one transaction. Used by tests, the demo and simulations; devices
    /// talk to a server through the sync protocol instead.
    pub fn merge_from(&self, other: &Engine) -> Result<Vec<ImportResult>> {
        other.flush_tracks()?;
        let mut batch = Vec::new();
        for id in other.doc_ids()? {
            let changes = other.changes_since(&id, &self.heads(&id)?)?;
            if !changes.is_empty() {
                batch.push((id, changes));
            }
        }
        self.import_changes(batch)
    }

    /// Local changes not yet acknowledged by the server, oldest first, up to about
    /// `max_bytes` (at least one). Buffered track points are written out first.
    pub fn outbox_pending(&self, max_bytes: usize) -> Result<Vec<OutboxItem>> {
        self.flush_tracks()?;
        self.db.read(|tx| store::outbox_pending(tx, max_bytes))
    }

    /// How many local changes wait for the server.
    pub fn outbox_len(&self) -> Result<u64> {
        Ok(self.outbox_size()?.0)
    }

    /// Local changes not yet acknowledged by the server, and their bytes.
    pub fn outbox_size(&self) -> Result<(u64, u64)> {
        self.db.read(store::outbox_size)
    }

    /// Record that the server has durably stored these changes.
    pub fn mark_delivered(&self, hashes: &[ChangeHash]) -> Result<usize> {
        let now = self.now().timestamp_millis();
        self.write(|tx| store::mark_acked(tx, hashes, now))
    }
}

/// A document's import, worked out and not yet written.
struct PreparedImport {
    /// The merged document, when there is something to store.
    doc: Option<Automerge>,
    applied: Vec<automerge::Change>,
    report: DocImport,
    /// When checked: the references to other documents the changes made,
    /// with whether each target must be in this document's grid.
    new_refs: Vec<(DocId, bool)>,
}

impl PreparedImport {
    /// Refuse every change newly applied, for `reason`: nothing is stored.
    fn refuse(&mut self, reason: &str) {
        self.report.rejected = self
            .report
            .applied
            .drain(..)
            .map(|h| (h, reason.to_owned()))
            .collect();
        self.report.content = None;
        self.doc = None;
        self.applied.clear();
    }
}

/// The grid of a person, household or place this replica holds.
fn grid_of(tx: &Transaction<'_>, id: &DocId) -> Result<Option<RegionCode>> {
    let table = match id.kind() {
        DocKind::Person => "persons",
        DocKind::Household => "households",
        DocKind::Place => "places",
        DocKind::Case | DocKind::Patrol | DocKind::Adjustment => return Ok(None),
    };
    let grid: Option<String> = tx
        .prepare_cached(&format!("SELECT grid FROM {table} WHERE doc_id = ?1"))?
        .query_row([id.as_str()], |r| r.get(0))
        .optional()?;
    Ok(grid.and_then(|g| g.parse().ok()))
}

/// Refuse the documents whose new references reach a target out of the
/// writer's scope, or out of their own grid where the reference requires it.
/// Targets are looked up in this batch first (a household and its first member
/// sent together), then in the replica; a target in neither is let through.
fn check_references(
    tx: &Transaction<'_>,
    writer: &Scope,
    prepared: &mut [Result<PreparedImport>],
) -> Result<()> {
    let in_batch: HashMap<DocId, RegionCode> = prepared
        .iter()
        .filter_map(|p| p.as_ref().ok()?.report.content.as_ref())
        .map(|c| (c.id().clone(), c.grid().clone()))
        .collect();
    for p in prepared.iter_mut().filter_map(|p| p.as_mut().ok()) {
        let Some(grid) = p.report.content.as_ref().map(|c| c.grid().clone()) else {
            continue;
        };
        let mut refusal = None;
        for (target, same_grid) in &p.new_refs {
            let target_grid = match in_batch.get(target) {
                Some(g) => Some(g.clone()),
                None => grid_of(tx, target)?,
            };
            let Some(target_grid) = target_grid else {
                continue;
            };
            let what = target.kind().as_str();
            if !writer.sees(&target_grid, None) {
                refusal = Some(format!("refers to a {what} outside your scope"));
            } else if *same_grid && target_grid != grid {
                refusal = Some(format!("refers to a {what} in another grid"));
            }
            if refusal.is_some() {
                break;
            }
        }
        if let Some(reason) = refusal {
            p.refuse(&reason);
        }
    }
    Ok(())
}

/// The CPU half of an import: bound, apply, validate, check.
fn prepare_import(
    id: &DocId,
    changes: Vec<Change>,
    stored: Option<store::StoredDoc>,
    check: Option<&ChangeCheck<'_>>,
) -> Result<PreparedImport> {
    store::check_import_size(id, &changes)?;
    let mut doc = match stored {
        Some(s) => s.build(id)?,
        None => Automerge::new(),
    };
    let before = match check {
        Some(_) if !doc.get_heads().is_empty() => {
            Some(DocContent::read(&doc, id).map_err(Error::malformed(id))?)
        }
        _ => None,
    };
    let (applied, mut report) = store::apply(id, &mut doc, changes)?;
    if applied.is_empty() {
        return Ok(PreparedImport {
            doc: None,
            applied,
            report,
            new_refs: Vec::new(),
        });
    }
    let after = DocContent::read(&doc, id).map_err(Error::malformed(id))?;
    let mut new_refs = Vec::new();
    if let Some(check) = check {
        let old: HashSet<&DocId> = before
            .iter()
            .flat_map(DocContent::references)
            .map(|r| r.target)
            .collect();
        new_refs = after
            .references()
            .into_iter()
            .filter(|r| !old.contains(r.target))
            .map(|r| (r.target.clone(), r.same_grid))
            .collect();
        if let Err(reason) = check(id, before.as_ref(), &after, &applied) {
            let mut refused = PreparedImport {
                doc: None,
                applied,
                report,
                new_refs: Vec::new(),
            };
            refused.refuse(&reason);
            return Ok(refused);
        }
    }
    report.content = Some(after);
    Ok(PreparedImport {
        doc: Some(doc),
        applied,
        report,
        new_refs,
    })
}

/// Map `f` over `items` on up to four threads, keeping the order. Small inputs stay
/// on the calling thread.
pub(crate) fn parallel_map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    if threads < 2 || items.len() < 64 {
        return items.into_iter().map(f).collect();
    }
    let per = items.len().div_ceil(threads);
    let mut chunks: Vec<Vec<T>> = Vec::new();
    let mut items = items.into_iter();
    loop {
        let chunk: Vec<T> = items.by_ref().take(per).collect();
        if chunk.is_empty() {
            break;
        }
        chunks.push(chunk);
    }
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| s.spawn(move || chunk.into_iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(v) => v,
                // A panic outside Automerge's own guard is a bug: surface it.
                Err(p) => std::panic::resume_unwind(p),
            })
            .collect()
    })
}

/// Group changes by document, keeping first-seen document order and each
/// document's change order.
pub fn group_by_doc<T>(changes: impl IntoIterator<Item = (DocId, T)>) -> Vec<(DocId, Vec<T>)> {
    let mut batch: Vec<(DocId, Vec<T>)> = Vec::new();
    let mut index: std::collections::HashMap<DocId, usize> = std::collections::HashMap::new();
    for (id, item) in changes {
        match index.get(&id) {
            Some(&i) => batch[i].1.push(item),
            None => {
                index.insert(id.clone(), batch.len());
                batch.push((id, vec![item]));
            }
        }
    }
    batch
}
