//! Tiers: a town server syncs upward to a district server with the same protocol
//! its phones use. The town enrolls at the district once, as a relay device for the
//! town's account (`gridsync admin enroll --relay` there, `gridsync admin upstream`
//! here); from then on it pushes every change its devices and console made, in log
//! order, and pulls what the district did in the town's region (a district
//! dispatch), storing it in its own log so its phones pull it next, and fetches
//! the photos those changes refer to. Changes the upstream does not store are kept
//! in the relay's store, sent again while deferred, and shown on the console. See
//! `docs/protocol.md` ("Tiers").

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};

use chrono::Utc;

use gridsync_core::sync::route::Push;
use gridsync_core::sync::session::{self, Link, Outgoing, PullApplied, PulledPage, PushVerdicts};
use gridsync_core::sync::wire::{
    ChangeStatus, DirectoryUpdate, PushRequest, MAX_CHANGES_PER_MESSAGE, MAX_PULL_PAGE_BYTES,
};
use gridsync_core::sync::{self, HttpTransport, ServerSecurity, SyncError, Transport};
use gridsync_core::{ChangeHash, DeviceId, DocId, PhotoHash, PullState};

use super::console::ConsoleUser;
use super::push::Trust;
use super::store::{NotStored, UpstreamRefusal};
use super::{visibility, Relay, RelayError};

const URL: &str = "upstream_url";
const TOKEN: &str = "upstream_token";
const DEVICE: &str = "upstream_device";
/// The last of our log's sequence numbers the upstream has answered.
const PUSHED: &str = "upstream_pushed";
const CURSOR: &str = "upstream_cursor";
const PAGE: &str = "upstream_page";
const PURGE_ACK: &str = "upstream_purge_ack";
/// The position of the last blob sent upward (see `RelayStore::blobs_after`).
const BLOBS: &str = "upstream_blobs";
/// Rounds the blob after `BLOBS` has been refused in a row.
const BLOB_REFUSALS: &str = "upstream_blob_refusals";
/// Rounds a refused photo is tried again (its case may reach the upstream later,
/// e.g. a console photo stored just before its change) before it is skipped.
const BLOB_RETRIES: u64 = 5;
/// Certificates to trust for the upstream's `https://`.
const CA_PEM: &str = "upstream_ca_pem";
/// Whether plain `http://` to an upstream off this machine is allowed ("1").
const PLAIN_HTTP: &str = "upstream_plain_http";
/// The last tombstone sent upward: `<erased_ms> <doc>` (ADR 0011).
const ERASED: &str = "upstream_erased";
/// The upstream's directory revision this relay keeps (0: none yet).
const DIRECTORY: &str = "upstream_directory";

/// Rounds a deferred change is sent again; after that it stays on the console,
/// no longer sent.
const CHANGE_ATTEMPTS: u64 = 10;
/// What the console says of a deferred change (the protocol gives no reason).
const DEFERRED: &str = "depends on a change the upstream does not have yet";
/// What the console says of a change the upstream's answer left out.
const UNANSWERED: &str = "the upstream's answer did not mention it";
/// Longest reason from the upstream kept, in characters.
const MAX_REASON_CHARS: usize = 300;
/// Photos fetched from the upstream per round at most.
const PHOTOS_DOWN: u32 = 20;
/// Times a photo is asked of the upstream before it is given up (with the waits
/// below, some seven hours after the first).
const PHOTO_ATTEMPTS: u64 = 16;
/// The wait before a missed photo is asked again, doubled after every miss: the
/// first is short, as the photo is often on its way (uploaded just after the
/// change that refers to it).
const PHOTO_RETRY_MS: i64 = 5_000;
/// The longest wait between two asks.
const PHOTO_RETRY_MAX_MS: i64 = 3_600_000;

/// Bytes of changes per upward push.
const PUSH_BYTES: usize = 4 * 1024 * 1024;
/// Requests per round at most, so one round always ends.
const MAX_REQUESTS: usize = 200;

/// The upstream this relay syncs to.
#[derive(Debug, Clone)]
pub struct UpstreamLink {
    /// Its base URL.
    pub url: String,
    /// Our token there.
    pub token: String,
    /// Our device id there; changes pulled from it are logged under it.
    pub device: DeviceId,
    /// How to reach it safely.
    pub security: ServerSecurity,
}

impl UpstreamLink {
    /// The HTTP(S) transport to it.
    pub fn transport(&self) -> Result<HttpTransport, SyncError> {
        HttpTransport::with_security(&self.url, &self.security)
    }
}

/// What one round moved.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UpstreamReport {
    /// Changes the upstream stored (or already had).
    pub pushed: u64,
    /// Changes it refused or could not place yet.
    pub not_stored: u64,
    /// Deferred changes sent again.
    pub retried: u64,
    /// Changes pulled from it that were new here.
    pub pulled: u64,
    /// Changes pulled from it that this relay could not store.
    pub pulled_not_stored: u64,
    /// Photos it now holds (sent, or found already there).
    pub photos: u64,
    /// Photos it would not take (a case outside the region).
    pub photos_refused: u64,
    /// Photos fetched from it (attached there to documents of our region).
    pub photos_down: u64,
    /// Photos asked of it that it did not give (asked again on a later round).
    pub photos_missed: u64,
    /// Requests made.
    pub requests: u64,
    /// Tombstones sent up (ADR 0011).
    pub erased_up: u64,
    /// Documents erased here because the upstream erased them.
    pub erased_down: u64,
}

fn internal(e: impl std::fmt::Display) -> SyncError {
    SyncError::Protocol(format!("this relay's store: {e}"))
}

fn relay_error(e: RelayError) -> SyncError {
    SyncError::Protocol(format!("this relay: {e}"))
}

impl Relay {
    /// Redeem a relay enrollment code from the upstream at `url` and remember the
    /// link. Returns the upstream account this relay acts for.
    pub fn connect_upstream(
        &self,
        transport: &dyn Transport,
        url: &str,
        code: &str,
        security: &ServerSecurity,
    ) -> Result<String, SyncError> {
        let device = DeviceId::random();
        let enrollment = sync::enroll(transport, code, device, env!("CARGO_PKG_VERSION"))?;
        self.store
            .set_metas(&[
                (URL, url.trim_end_matches('/').to_owned()),
                (TOKEN, enrollment.token),
                (DEVICE, device.to_string()),
                (PUSHED, "0".into()),
                (CURSOR, "0".into()),
                (PAGE, "0".into()),
                (PURGE_ACK, String::new()),
                (DIRECTORY, "0".into()),
                (BLOBS, "0".into()),
                (BLOB_REFUSALS, "0".into()),
                (CA_PEM, security.ca_pem.clone().unwrap_or_default()),
                (PLAIN_HTTP, u8::from(security.allow_plain_http).to_string()),
            ])
            .map_err(internal)?;
        Ok(enrollment.user.to_string())
    }

    /// The upstream link, if this relay has one.
    pub fn upstream(&self) -> Result<Option<UpstreamLink>, SyncError> {
        let get = |k| self.store.meta(k).map_err(internal);
        let (Some(url), Some(token), Some(device)) = (get(URL)?, get(TOKEN)?, get(DEVICE)?) else {
            return Ok(None);
        };
        let device = device
            .parse()
            .map_err(|_| SyncError::Protocol("the stored upstream device id is bad".into()))?;
        let security = ServerSecurity {
            ca_pem: get(CA_PEM)?.filter(|p| !p.is_empty()),
            allow_plain_http: get(PLAIN_HTTP)?.as_deref() == Some("1"),
        };
        Ok(Some(UpstreamLink {
            url,
            token,
            device,
            security,
        }))
    }

    fn counter(&self, key: &str) -> Result<u64, SyncError> {
        Ok(self
            .store
            .meta(key)
            .map_err(internal)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// One round with the upstream: push everything new in our log that did not
    /// come from it, then its photos, then pull until it has nothing more for our
    /// region — the same session a phone runs, over this relay's bookkeeping.
    pub fn sync_upstream(
        &self,
        link: &UpstreamLink,
        transport: &dyn Transport,
    ) -> Result<UpstreamReport, SyncError> {
        let mut wire = Link::new(transport, Some(&link.token));
        // Photos stored before the push starts have their changes in the log already
        // (a phone's photo is taken only for a case the relay has): they go up after it.
        let photos_upto = self.store.last_blob().map_err(internal)?;
        let replica = UpstreamReplica {
            relay: self,
            link,
            retrying: Cell::new(false),
            retried_upto: Cell::new(0),
            last_pushed: Cell::new(None),
            in_flight: RefCell::new(HashMap::new()),
            report: RefCell::new(UpstreamReport::default()),
        };
        let erasures = {
            let mut report = replica.report.borrow_mut();
            self.erasures_upstream(&mut wire, &mut report)
        };
        // Deferred changes go again before the new ones, which may depend on them;
        // what they depend on is older still, so it went up before them.
        replica.retrying.set(true);
        let result = erasures
            .and_then(|_| session::push_all(&replica, &mut wire, PUSH_BYTES, &mut |_| {}))
            .and_then(|_| {
                replica.retrying.set(false);
                session::push_all(&replica, &mut wire, PUSH_BYTES, &mut |_| {})
            })
            .and_then(|_| {
                let mut report = replica.report.borrow_mut();
                self.photos_upstream(&mut wire, photos_upto, &mut report)
            })
            .and_then(|_| session::pull_all(&replica, &mut wire, MAX_PULL_PAGE_BYTES, &mut |_| {}))
            .and_then(|_| {
                let mut report = replica.report.borrow_mut();
                self.photos_downstream(&mut wire, &mut report)
            });
        result?;
        let mut report = replica.report.into_inner();
        report.requests = wire.requests;
        if report.pushed + report.pulled + report.not_stored + report.photos + report.photos_down
            > 0
        {
            tracing::info!(
                pushed = report.pushed,
                pulled = report.pulled,
                not_stored = report.not_stored,
                retried = report.retried,
                photos = report.photos,
                photos_down = report.photos_down,
                "upstream sync"
            );
        }
        Ok(report)
    }

    /// Send the tombstones recorded here since the last one sent (this town's
    /// erasures, and those it received) upward, in pushes without changes: the
    /// upstream erases them too (ADR 0011). Sent first, so nothing of an erased
    /// document is pushed after it.
    fn erasures_upstream(
        &self,
        wire: &mut Link<'_>,
        report: &mut UpstreamReport,
    ) -> Result<(), SyncError> {
        let last = self
            .store
            .meta(ERASED)
            .map_err(internal)?
            .unwrap_or_default();
        let (last_ms, last_doc) = match last.split_once(' ') {
            Some((ms, doc)) => (ms.parse::<i64>().unwrap_or(0), doc.to_owned()),
            None => (0, String::new()),
        };
        let pending: Vec<_> = self
            .store
            .erasures(last_ms)
            .map_err(internal)?
            .into_iter()
            .filter(|e| (e.erased_ms, e.doc.as_str()) > (last_ms, last_doc.as_str()))
            .collect();
        for chunk in pending.chunks(MAX_CHANGES_PER_MESSAGE) {
            let request = PushRequest {
                v: wire.protocol(),
                changes: Default::default(),
                erased: chunk.iter().map(|e| e.doc.clone()).collect(),
            };
            let answer = wire.call::<Push>(&request)?;
            session::check_version(answer.v)?;
            if let Some(e) = chunk.last() {
                self.store
                    .set_meta(ERASED, &format!("{} {}", e.erased_ms, e.doc))
                    .map_err(internal)?;
            }
            report.erased_up += chunk.len() as u64;
        }
        Ok(())
    }

    /// Send the photos stored here since the last one sent, up to `upto`, after the
    /// changes that refer to them (the upstream takes only photos of documents it
    /// has). A refused photo is tried again for a few rounds, then skipped; a network
    /// failure ends the round, and the next resumes from the same photo.
    fn photos_upstream(
        &self,
        wire: &mut Link<'_>,
        upto: i64,
        report: &mut UpstreamReport,
    ) -> Result<(), SyncError> {
        for _ in 0..MAX_REQUESTS {
            let after = i64::try_from(self.counter(BLOBS)?).unwrap_or(i64::MAX);
            let batch = self.store.blobs_after(after, upto, 50).map_err(internal)?;
            if batch.is_empty() {
                return Ok(());
            }
            for (position, hash) in batch {
                let parsed: PhotoHash = hash
                    .parse()
                    .map_err(|_| SyncError::Protocol("a stored blob hash is bad".into()))?;
                let bytes = self.blobs.read(&parsed).map_err(internal)?;
                match sync::upload_blob(wire, &parsed, &bytes) {
                    Ok(_) => report.photos += 1,
                    Err(SyncError::Refused { .. }) => {
                        let refusals = self.counter(BLOB_REFUSALS)? + 1;
                        if refusals < BLOB_RETRIES {
                            self.store
                                .set_meta(BLOB_REFUSALS, &refusals.to_string())
                                .map_err(internal)?;
                            // Try again next round, after that round's push.
                            return Ok(());
                        }
                        report.photos_refused += 1;
                        tracing::warn!(attempts = refusals, "upstream refused a photo; skipped");
                    }
                    Err(e) => return Err(e),
                }
                self.store
                    .set_metas(&[(BLOBS, position.to_string()), (BLOB_REFUSALS, "0".into())])
                    .map_err(internal)?;
            }
        }
        Ok(())
    }
}

impl Relay {
    /// Fetch the photos documents here refer to and this relay does not hold —
    /// attached upstream (a district dispatcher's photo on a case of our region) —
    /// so our devices can fetch them here. A few per round; one the upstream does
    /// not give (not uploaded there yet, refused, or not the photo its hash names)
    /// is asked again after a wait that doubles, and given up after
    /// [`PHOTO_ATTEMPTS`] tries. A network failure ends the round.
    fn photos_downstream(
        &self,
        wire: &mut Link<'_>,
        report: &mut UpstreamReport,
    ) -> Result<(), SyncError> {
        let now = Utc::now().timestamp_millis();
        let wanted = self
            .store
            .photos_missing(now, PHOTO_ATTEMPTS, PHOTOS_DOWN)
            .map_err(internal)?;
        for (hash, misses) in wanted {
            let parsed: PhotoHash = hash
                .parse()
                .map_err(|_| SyncError::Protocol("a stored photo hash is bad".into()))?;
            let fetched = sync::fetch_blob(wire, &parsed, &mut |_| {}).and_then(|bytes| {
                super::blobs::check_blob(&parsed, &bytes)
                    .map(|()| bytes)
                    .map_err(|why| SyncError::Protocol(format!("a photo from upstream: {why}")))
            });
            match fetched {
                Ok(bytes) => {
                    // A failure here is this relay's own: it ends the round.
                    self.keep_blob(&parsed, &bytes).map_err(relay_error)?;
                    report.photos_down += 1;
                }
                Err(e @ (SyncError::Refused { .. } | SyncError::Protocol(_))) => {
                    let wait = PHOTO_RETRY_MS
                        .saturating_mul(1 << misses.min(20))
                        .min(PHOTO_RETRY_MAX_MS);
                    self.store
                        .photo_missed(&hash, now.saturating_add(wait))
                        .map_err(internal)?;
                    report.photos_missed += 1;
                    tracing::warn!(error = %e, attempts = misses + 1, "a photo from upstream was not had");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// For the console: the changes the upstream did not store, of documents `who`
    /// may see (most recent first, at most `limit`), and how many there are; `None`
    /// when this relay has no upstream. For dispatchers.
    pub fn console_upstream_refusals(
        &self,
        who: &ConsoleUser,
        limit: u32,
    ) -> Result<Option<(Vec<UpstreamRefusal>, u64)>, RelayError> {
        if !who.user.role.is_dispatcher() {
            return Err(super::console::refused(
                "refused",
                "only dispatchers see what the upstream refused",
            ));
        }
        if self.store.meta(URL)?.is_none() {
            return Ok(None);
        }
        Ok(Some(
            self.store
                .upstream_refusals(&visibility(&who.user), limit)?,
        ))
    }
}

impl UpstreamRefusal {
    /// Whether it is still sent again on later rounds (deferred, and not yet sent
    /// as often as a deferred change is).
    pub fn retried(&self) -> bool {
        self.deferred && self.attempts < CHANGE_ATTEMPTS
    }
}

/// The upstream session's state, kept in the relay's store: how far our log has
/// gone up, what the upstream did not store, and where our pulls from it stand.
struct UpstreamReplica<'a> {
    relay: &'a Relay,
    link: &'a UpstreamLink,
    /// Pushing deferred changes again rather than new ones.
    retrying: Cell<bool>,
    /// The log position of the last deferred change sent again this round.
    retried_upto: Cell<u64>,
    /// The log position of the last change handed out for the push in flight.
    last_pushed: Cell<Option<u64>>,
    /// The documents of the changes in flight, for what the upstream refuses.
    in_flight: RefCell<HashMap<ChangeHash, DocId>>,
    report: RefCell<UpstreamReport>,
}

impl session::Replica for UpstreamReplica<'_> {
    fn outgoing(&self, max_bytes: usize) -> Result<Vec<Outgoing>, SyncError> {
        let store = &self.relay.store;
        let entries = if self.retrying.get() {
            store.upstream_retries(self.retried_upto.get(), CHANGE_ATTEMPTS, max_bytes as u64)
        } else {
            let after = self.relay.counter(PUSHED)?;
            store.log_after(after, Some(self.link.device), max_bytes as u64)
        }
        .map_err(internal)?;
        self.last_pushed.set(entries.last().map(|(seq, _)| *seq));
        *self.in_flight.borrow_mut() = entries
            .iter()
            .map(|(_, e)| (ChangeHash(e.hash), e.doc.clone()))
            .collect();
        Ok(entries
            .into_iter()
            .map(|(_, e)| Outgoing {
                doc: e.doc,
                hash: ChangeHash(e.hash),
                bytes: e.bytes,
            })
            .collect())
    }

    fn record_push(&self, verdicts: &PushVerdicts) -> Result<bool, SyncError> {
        let in_flight = self.in_flight.take();
        let retrying = self.retrying.get();
        let mut report = self.report.borrow_mut();
        report.pushed += verdicts.stored.len() as u64;
        if retrying {
            report.retried += in_flight.len() as u64;
        }
        // Our devices' changes were checked here; the upstream may still hold a
        // different directory. A refusal is kept for the console; a deferred change,
        // or one the answer left out, is sent again on the next rounds.
        let refused = verdicts
            .rejected
            .iter()
            .map(|(h, why)| (h, false, why.as_str()));
        let deferred = verdicts.deferred.iter().map(|h| (h, true, DEFERRED));
        let answered: HashSet<&ChangeHash> = (verdicts.stored.iter())
            .chain(verdicts.rejected.iter().map(|(h, _)| h))
            .chain(&verdicts.deferred)
            .collect();
        let unanswered = in_flight
            .keys()
            .filter(|h| !answered.contains(h))
            .map(|h| (h, true, UNANSWERED));
        let mut not_stored = Vec::new();
        for (hash, deferred, reason) in refused.chain(deferred).chain(unanswered) {
            let doc = in_flight
                .get(hash)
                .ok_or_else(|| SyncError::Protocol("an answer for a change not sent".into()))?;
            report.not_stored += 1;
            tracing::warn!(doc = %doc, deferred, reason, "upstream did not store a change");
            not_stored.push(NotStored {
                hash: hash.0,
                doc: doc.clone(),
                deferred,
                reason: reason.chars().take(MAX_REASON_CHARS).collect(),
            });
        }
        // A new change has nothing recorded to forget.
        let stored: Vec<[u8; 32]> = if retrying {
            verdicts.stored.iter().map(|h| h.0).collect()
        } else {
            Vec::new()
        };
        self.relay
            .store
            .record_upstream_answers(&not_stored, &stored, Utc::now().timestamp_millis())
            .map_err(internal)?;
        let Some(last) = self.last_pushed.take() else {
            return Ok(false);
        };
        if retrying {
            self.retried_upto.set(last);
        } else {
            self.relay
                .store
                .set_meta(PUSHED, &last.to_string())
                .map_err(internal)?;
        }
        Ok(true)
    }

    fn pull_state(&self) -> Result<PullState, SyncError> {
        let purged = self
            .relay
            .store
            .meta(PURGE_ACK)
            .map_err(internal)?
            .unwrap_or_default()
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<Vec<DocId>, _>>()
            .map_err(|_| SyncError::Protocol("a stored purge acknowledgement is bad".into()))?;
        Ok(PullState {
            cursor: self.relay.counter(CURSOR)?,
            page: self.relay.counter(PAGE)?,
            purged,
        })
    }

    fn directory_revision(&self) -> Result<Option<u64>, SyncError> {
        Ok(Some(self.relay.counter(DIRECTORY)?))
    }

    /// The upstream's directory becomes this relay's next revision (its phones
    /// receive it at their next pull), with the upstream's number kept to ask
    /// from.
    fn apply_directory(&self, update: DirectoryUpdate) -> Result<(), SyncError> {
        self.relay
            .adopt_upstream_directory(&update)
            .map_err(relay_error)?;
        self.relay
            .store
            .set_meta(DIRECTORY, &update.revision.to_string())
            .map_err(internal)
    }

    fn apply_pull(&self, page: PulledPage) -> Result<PullApplied, SyncError> {
        let mut report = self.report.borrow_mut();
        report.pulled_not_stored += page.refused.len() as u64;
        for (doc, why) in &page.refused {
            tracing::warn!(doc = %doc, error = %why, "a change from upstream does not decode");
        }
        let mut applied = PullApplied::default();
        if !page.changes.is_empty() {
            let stored = self
                .relay
                .push_as(
                    self.link.device,
                    &Trust::Upstream,
                    page.changes.into_iter().map(Ok).collect(),
                )
                .map_err(relay_error)?;
            for r in &stored.results {
                match r.status {
                    ChangeStatus::Accepted => applied.new += 1,
                    ChangeStatus::Duplicate => {}
                    // The upstream's own log is in order, so this is a change this
                    // replica cannot take (a directory that differs): say so.
                    _ => {
                        report.pulled_not_stored += 1;
                        tracing::warn!(status = ?r.status, reason = r.reason.as_deref().unwrap_or(""), "a change from upstream was not stored");
                    }
                }
            }
        }
        report.pulled += applied.new;
        // Erased upstream: erased here too, before the purge is acknowledged.
        if !page.erased.is_empty() {
            report.erased_down += self
                .relay
                .erase_from_tier(&page.erased)
                .map_err(relay_error)? as u64;
        }
        // Documents leaving the region upstream stay here (our own devices may
        // still work on them); the purge is acknowledged so it is not repeated.
        let ack = page
            .next
            .purged
            .iter()
            .map(DocId::as_str)
            .collect::<Vec<_>>()
            .join(" ");
        self.relay
            .store
            .set_metas(&[
                (CURSOR, page.next.cursor.to_string()),
                (PAGE, page.next.page.to_string()),
                (PURGE_ACK, ack),
            ])
            .map_err(internal)?;
        Ok(applied)
    }
}

/// Seconds between upstream rounds by default.
pub const DEFAULT_INTERVAL_SECS: u64 = 30;
