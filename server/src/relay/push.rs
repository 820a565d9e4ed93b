//! Push: every change a device (or a console session, or a downstream relay, or
//! this relay's upstream) sends is decoded once at the edge, checked against the
//! replica and the access rules, stored once and logged before it is answered.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

use automerge::{Change, ChangeHash};
use chrono::Utc;
use gridsync_core::access::{authorize, authorize_relayed, check_adjusted_worker, Scope};
use gridsync_core::sync::change::{decode_wire_changes, ChangeError};
use gridsync_core::sync::wire::{
    ChangeResult, ChangeStatus, PushRequest, PushResponse, MAX_CHANGES_PER_MESSAGE,
    PROTOCOL_VERSION,
};
use gridsync_core::{fold, DeviceId, DocContent, DocId, PhotoHash, User};

use super::store::{DocScope, LogEntry, Visibility};
use super::{check_version, visibility, Caller, Relay, RelayError};

/// Times a push whose store call failed transiently (a lost lock, a dropped
/// connection) is checked and logged again before the device is told "busy".
const PUSH_ATTEMPTS: usize = 3;

/// Why a change of an erased document is refused.
const ERASED: &str = "the record was erased; it is removed from this device";

/// Why a change already logged for another document is refused.
const FOREIGN: &str = "the change belongs to another record";

/// A change of the batch by its hash and raw bytes, to log it once stored.
type Sent = (ChangeHash, Vec<u8>);

/// A pushed change after the checked decoder (`decode_wire_changes`, once per
/// message at the edge): the document and the change, or the name to answer
/// refused bytes under and why.
pub(crate) type Incoming = Result<(DocId, Change), (ChangeHash, ChangeError)>;

/// How far the changes of one push are checked.
pub(crate) enum Trust<'a> {
    /// A phone or a console session: every change made on that device, and allowed
    /// to that user (role, scope, workflow, photos) — or to one of her former
    /// placements given (a phone that has not heard of her move yet).
    Device(&'a User, Vec<User>),
    /// A downstream relay (a town server): it checked its devices' changes itself
    /// and is trusted for the documents of its region.
    Relay(gridsync_core::RegionCode),
    /// This relay's own upstream (a district server), whose answers are pulled, not
    /// pushed to us.
    Upstream,
}

impl Relay {
    /// Store what a device pushes: every change checked, stored once, answered.
    pub fn push(&self, caller: &Caller, req: PushRequest) -> Result<PushResponse, RelayError> {
        let Caller { device, user, .. } = caller;
        check_version(req.v)?;
        if req.changes.len() > MAX_CHANGES_PER_MESSAGE {
            return Err(RelayError::bad_request(format!(
                "at most {MAX_CHANGES_PER_MESSAGE} changes per push"
            )));
        }
        if req.erased.len() > MAX_CHANGES_PER_MESSAGE {
            return Err(RelayError::bad_request(format!(
                "at most {MAX_CHANGES_PER_MESSAGE} erasures per push"
            )));
        }
        let trust = if device.relay {
            Trust::Relay(user.region.clone())
        } else {
            Trust::Device(
                user,
                self.former_placements(user, device.directory_revision),
            )
        };
        if !req.erased.is_empty() {
            // Only a relay syncing upward passes erasures on (ADR 0011); a phone
            // erases nothing.
            if !device.relay {
                return Err(RelayError::bad_request(
                    "only a relay may send erasures; this device is a phone",
                ));
            }
            self.erase_relayed(&user.region, &req.erased)?;
        }
        let v = req.v;
        let mut answer = self.push_as(
            device.device,
            &trust,
            decode_wire_changes(req.changes.into_vec()),
        )?;
        answer.v = v;
        Ok(answer)
    }

    /// A downstream relay's erasures: each a registry document or a case of its
    /// region (or one this relay never had), erased here too (a case only when
    /// due here, see [`Relay::erase_from_tier`]). The region is judged on a
    /// replica caught up with the shared log first: on a node whose replica lags
    /// (its last push a while ago), a document another node logged would look
    /// never had, and pass.
    fn erase_relayed(
        &self,
        region: &gridsync_core::RegionCode,
        docs: &[DocId],
    ) -> Result<(), RelayError> {
        self.catch_up()?;
        for doc in docs {
            super::tombstoned_kind(doc)?;
            let content = self.engine.read_doc(doc).map_err(RelayError::internal)?;
            if let Some(content) = content {
                if !region.contains(content.grid()) {
                    return Err(RelayError::bad_request(format!(
                        "{doc} is outside this relay's region; it cannot erase it"
                    )));
                }
            }
        }
        let new = self.erase_from_tier(docs)?;
        tracing::info!(erased = docs.len(), new, "erasures from a downstream relay");
        Ok(())
    }

    /// Check, store and log changes received from `device`, as far as `trust`
    /// says: a phone's push or a console action (checked as its user), a downstream
    /// relay's (its region), or what this relay pulled from its upstream.
    pub(crate) fn push_as(
        &self,
        device: DeviceId,
        trust: &Trust<'_>,
        changes: Vec<Incoming>,
    ) -> Result<PushResponse, RelayError> {
        // One result per change, in request order; refused bytes are answered now.
        let mut results: Vec<ChangeResult> = Vec::with_capacity(changes.len());
        let mut valid = Vec::new();
        // A tombstone is checked on every push (ADR 0011): nothing brings an erased
        // document back, and the device is told to purge it.
        let mut erased: HashMap<DocId, bool> = HashMap::new();
        for incoming in changes {
            let incoming = match incoming {
                Ok((id, change)) => {
                    let gone = match erased.get(&id) {
                        Some(gone) => *gone,
                        None => {
                            let gone = self.store.is_erased(&id)?;
                            if gone && !matches!(trust, Trust::Upstream) {
                                self.store.hold_for_purge(device, &id)?;
                            }
                            erased.insert(id.clone(), gone);
                            gone
                        }
                    };
                    if gone {
                        results.push(ChangeResult {
                            hash: change.hash(),
                            status: ChangeStatus::Rejected,
                            reason: Some(ERASED.to_owned()),
                        });
                        continue;
                    }
                    Ok((id, change))
                }
                Err(e) => Err(e),
            };
            match incoming {
                Ok((id, change)) => {
                    results.push(ChangeResult {
                        hash: change.hash(),
                        status: ChangeStatus::Rejected,
                        reason: None,
                    });
                    valid.push((id, change));
                }
                Err((hash, why)) => results.push(ChangeResult {
                    hash,
                    status: ChangeStatus::Rejected,
                    reason: Some(why.to_string()),
                }),
            }
        }
        let batch = gridsync_core::engine::group_by_doc(valid);
        let mut attempt = 0;
        let verdicts = loop {
            attempt += 1;
            match self.check_and_log(device, trust, batch.clone()) {
                Err(RelayError::Busy(why)) if attempt < PUSH_ATTEMPTS => {
                    tracing::warn!(attempt, why, "push checked again after a transient failure");
                }
                other => break other?,
            }
        };
        let mut rejected = 0;
        for r in &mut results {
            if r.reason.is_some() {
                rejected += 1;
                continue;
            }
            let (status, reason) = verdicts
                .get(&r.hash)
                .cloned()
                .unwrap_or((ChangeStatus::Rejected, Some("not applied".to_owned())));
            rejected += usize::from(status == ChangeStatus::Rejected);
            r.status = status;
            r.reason = reason;
        }
        tracing::info!(device = %device, changes = results.len(), rejected, "push");
        Ok(PushResponse {
            v: PROTOCOL_VERSION,
            results,
            speaks: Some(PROTOCOL_VERSION),
        })
    }

    /// Under the push lock: check the batch against the replica as of the whole
    /// log, import what passes, and log it. Answers a verdict per change hash.
    fn check_and_log(
        &self,
        device: DeviceId,
        trust: &Trust<'_>,
        batch: Vec<(DocId, Vec<Change>)>,
    ) -> Result<HashMap<ChangeHash, (ChangeStatus, Option<String>)>, RelayError> {
        // On a shared database no other node logs anything until this is logged.
        let _pushes = self.store.lock_pushes()?;
        self.catch_up()?;
        let mut verdicts = HashMap::new();
        let batch = self.without_foreign_changes(batch, &mut verdicts)?;
        let actor = device.actor();
        let check = |id: &DocId,
                     before: Option<&DocContent>,
                     after: &DocContent,
                     changes: &[Change]| match trust {
            Trust::Device(user, former) => {
                if changes.iter().any(|c| c.actor_id() != &actor) {
                    return Err("the change was not made on this device".to_owned());
                }
                let placed = match authorize(user, id, before, after) {
                    Ok(()) => *user,
                    Err(refused) => former
                        .iter()
                        .find(|was| authorize(was, id, before, after).is_ok())
                        .ok_or_else(|| refused.to_string())?,
                };
                // What the user alone cannot tell: that a new adjustment's worker
                // is in its grid.
                if let (None, DocContent::Adjustment(a)) = (before, after) {
                    let dir = self.engine.directory().map_err(|e| {
                        tracing::error!(error = %e, "directory");
                        "the server has no directory".to_owned()
                    })?;
                    check_adjusted_worker(&dir, a).map_err(|d| d.to_string())?;
                }
                self.check_new_photos(&visibility(placed), before, after)
            }
            Trust::Relay(region) => {
                // The relay forwards others' changes, but never ones made here.
                for change in changes {
                    let local = DeviceId::from_actor(change.actor_id())
                        .map(|d| self.store.is_local_device(d))
                        .transpose()
                        .map_err(|e| {
                            tracing::error!(error = %e, "actor check");
                            "the server could not check the change; try again".to_owned()
                        })?;
                    if local == Some(true) {
                        return Err("the change was made on a device of this server".to_owned());
                    }
                }
                let dir = self.engine.directory().map_err(|e| {
                    tracing::error!(error = %e, "directory");
                    "the server has no directory".to_owned()
                })?;
                authorize_relayed(&dir, region, before, after).map_err(|d| d.to_string())?;
                let vis = Visibility::from(&Scope::Region(region.clone()));
                self.check_new_photos(&vis, before, after)
            }
            Trust::Upstream => Ok(()),
        };
        // Whom the documents' new references must stay with: the sender's scope
        // (a device's user, a downstream relay's region); upstream is trusted.
        let writer = match trust {
            Trust::Device(user, _) => Some(gridsync_core::access::scope_of(user)),
            Trust::Relay(region) => Some(Scope::Region(region.clone())),
            Trust::Upstream => None,
        };
        // What each document's changes are, to log the stored ones afterwards.
        let sent: Vec<(DocId, Vec<Sent>)> = batch
            .iter()
            .map(|(id, cs)| {
                let raw = cs.iter().map(|c| (c.hash(), c.raw_bytes().to_vec()));
                (id.clone(), raw.collect())
            })
            .collect();
        let sent_ids: Vec<(DocId, Vec<ChangeHash>)> = sent
            .iter()
            .map(|(id, cs)| (id.clone(), cs.iter().map(|(h, _)| *h).collect()))
            .collect();
        let imported = self
            .engine
            .import_changes_checked(batch, &check, writer.as_ref())
            .map_err(RelayError::internal)?;

        let mut entries = Vec::new();
        let mut scopes = Vec::new();
        // Case timeline entries received now, and how many of them carry a time
        // the relay does not trust (`times`).
        let mut received = Vec::new();
        let mut implausible = 0;
        for (r, (id, changes)) in imported.into_iter().zip(sent) {
            let report = match r.outcome {
                Ok(report) => report,
                Err(e) => {
                    for (hash, _) in changes {
                        verdicts.insert(hash, (ChangeStatus::Rejected, Some(e.to_string())));
                    }
                    continue;
                }
            };
            for h in &report.applied {
                verdicts.insert(*h, (ChangeStatus::Accepted, None));
            }
            for h in &report.duplicates {
                verdicts.insert(*h, (ChangeStatus::Duplicate, None));
            }
            for h in &report.missing_deps {
                let why = "depends on a change the server does not have yet".to_owned();
                verdicts.insert(*h, (ChangeStatus::Deferred, Some(why)));
            }
            for (h, reason) in &report.rejected {
                verdicts.insert(*h, (ChangeStatus::Rejected, Some(reason.clone())));
            }
            // Duplicates are logged again (idempotently): a crash between the
            // engine's commit and the log's must not lose them.
            let stored: HashSet<_> = report
                .applied
                .iter()
                .chain(&report.duplicates)
                .copied()
                .collect();
            if stored.is_empty() {
                continue;
            }
            entries.extend(
                changes
                    .into_iter()
                    .filter(|(hash, _)| stored.contains(hash))
                    .map(|(hash, bytes)| LogEntry {
                        hash: hash.0,
                        doc: id.clone(),
                        bytes,
                    }),
            );
            let content = match report.content {
                Some(c) => Some(c),
                None => self.engine.read_doc(&id).map_err(RelayError::internal)?,
            };
            if let Some(content) = content {
                if let DocContent::Case(case) = &content {
                    implausible += self.note_receipts(case, &mut received);
                }
                scopes.push((id, scope_of(content)));
            }
        }
        // Only after the log is durable is anything answered as stored.
        // On a shared store the log must still end where the catch-up left it: if
        // the push lock was lost meanwhile (its connection dropped), another node
        // may have logged changes these checks did not see, and nothing is stored.
        let expect = self
            .store
            .shared()
            .then(|| self.applied.load(Ordering::SeqCst));
        let top = self.store.append_timed(
            device,
            &entries,
            &scopes,
            &received,
            Utc::now().timestamp_millis(),
            expect,
        )?;
        self.implausible_times
            .fetch_add(implausible, Ordering::Relaxed);
        // Under the push lock, the replica now holds the whole log.
        self.applied.fetch_max(top, Ordering::SeqCst);
        // An erasure that committed while this push was checked (another process,
        // `gridsync admin erase-person`) kept its changes out of the log; they
        // leave the replica too, and are not answered as stored.
        if self.apply_erasures()? > 0 {
            for (id, changes) in &sent_ids {
                if self.store.is_erased(id)? {
                    for hash in changes {
                        verdicts.insert(*hash, (ChangeStatus::Rejected, Some(ERASED.to_owned())));
                    }
                }
            }
        }
        Ok(verdicts)
    }

    /// The batch without the changes the log holds for another document, or that
    /// the batch itself names under another document first, each refused in
    /// `verdicts`. The log and the replica keep a change once, under the document
    /// it came with: the same bytes sent again under another document (a rooted
    /// phone's crafted change with no dependencies, copied from one case into a
    /// second) would be applied there in memory, then kept by neither (or by the
    /// replica alone, if that document's snapshot were taken then) and answered
    /// as stored.
    fn without_foreign_changes(
        &self,
        batch: Vec<(DocId, Vec<Change>)>,
        verdicts: &mut HashMap<ChangeHash, (ChangeStatus, Option<String>)>,
    ) -> Result<Vec<(DocId, Vec<Change>)>, RelayError> {
        let hashes: Vec<[u8; 32]> = batch
            .iter()
            .flat_map(|(_, cs)| cs.iter().map(|c| c.hash().0))
            .collect();
        let mut owner: HashMap<[u8; 32], DocId> =
            self.store.logged_docs(&hashes)?.into_iter().collect();
        let mut kept = Vec::with_capacity(batch.len());
        for (id, changes) in batch {
            let mut own = Vec::with_capacity(changes.len());
            for change in changes {
                let first = owner.entry(change.hash().0).or_insert_with(|| id.clone());
                if *first == id {
                    own.push(change);
                } else {
                    tracing::warn!(doc = %id, "a change of another document; refused");
                    verdicts.insert(
                        change.hash(),
                        (ChangeStatus::Rejected, Some(FOREIGN.to_owned())),
                    );
                }
            }
            if !own.is_empty() {
                kept.push((id, own));
            }
        }
        Ok(kept)
    }

    /// A photo newly referred to must not be one a document outside the user's scope
    /// refers to: knowing a hash must not be a way to read someone else's photo.
    fn check_new_photos(
        &self,
        vis: &Visibility,
        before: Option<&DocContent>,
        after: &DocContent,
    ) -> Result<(), String> {
        let known: HashSet<&PhotoHash> = before
            .map(|b| b.photos().into_iter().map(|p| p.hash).collect())
            .unwrap_or_default();
        for hash in after
            .photos()
            .into_iter()
            .map(|p| p.hash)
            .filter(|h| !known.contains(h))
        {
            let elsewhere = self
                .store
                .photo_referenced_outside(hash.as_str(), vis)
                .map_err(|e| {
                    tracing::error!(error = %e, "photo check");
                    "the server could not check the photo; try again".to_owned()
                })?;
            if elsewhere {
                return Err("a photo outside your scope cannot be attached".into());
            }
        }
        Ok(())
    }
}

/// Who may see a document, from its content: its grid, the department a case is
/// dispatched to, and the photos it refers to.
fn scope_of(content: DocContent) -> DocScope {
    let photos = content
        .photos()
        .into_iter()
        .map(|p| (p.hash.to_string(), p.by.to_string()))
        .collect();
    match content {
        DocContent::Case(c) => DocScope {
            dept: fold(&c.timeline).assigned_dept,
            photos,
            grid: c.grid,
        },
        // Never dispatched: a department's scope sees no patrol, no base data and
        // no points adjustment.
        DocContent::Patrol(_)
        | DocContent::Person(_)
        | DocContent::Household(_)
        | DocContent::Place(_)
        | DocContent::Adjustment(_) => DocScope {
            grid: content.grid().clone(),
            dept: None,
            photos,
        },
    }
}
