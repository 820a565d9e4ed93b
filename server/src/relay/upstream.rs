//! Tiers: a town server syncs upward to a district server with the same protocol
//! its phones use. The town enrolls at the district once, as a relay device for the
//! town's account (`gridsync admin enroll --relay` there, `gridsync admin upstream`
//! here); from then on it pushes every change its devices and console made, in log
//! order, and pulls what the district did in the town's region (a district
//! dispatch), storing it in its own log so its phones pull it next. See
//! `docs/protocol.md` ("Tiers").

use gridsync_core::sync::wire::{
    ChangeStatus, PullRequest, PullResponse, PushRequest, PushResponse, WireChange,
    MAX_PULL_PAGE_BYTES, PROTOCOL_VERSION,
};
use gridsync_core::sync::{self, HttpTransport, ServerSecurity, SyncError, SyncReport, Transport};
use gridsync_core::{DeviceId, PhotoHash};

use super::{Relay, RelayError, Trust};

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

/// Bytes of changes per upward push.
const PUSH_BYTES: u64 = 4 * 1024 * 1024;
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
    /// Changes pulled from it that were new here.
    pub pulled: u64,
    /// Changes pulled from it that this relay could not store.
    pub pulled_not_stored: u64,
    /// Photos it now holds (sent, or found already there).
    pub photos: u64,
    /// Photos it would not take (a case outside the region).
    pub photos_refused: u64,
    /// Requests made.
    pub requests: u64,
}

fn internal(e: impl std::fmt::Display) -> SyncError {
    SyncError::Protocol(format!("this relay's store: {e}"))
}

fn relay_error(e: RelayError) -> SyncError {
    SyncError::Protocol(format!("this relay: {}", e.body.message))
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
    /// come from it, then pull until it has nothing more for our region.
    pub fn sync_upstream(
        &self,
        link: &UpstreamLink,
        transport: &dyn Transport,
    ) -> Result<UpstreamReport, SyncError> {
        let mut report = UpstreamReport::default();
        // Photos stored before the push starts have their changes in the log already
        // (a phone's photo is taken only for a case the relay has): they go up after it.
        let photos_upto = self.store.last_blob().map_err(internal)?;
        self.push_upstream(link, transport, &mut report)?;
        self.photos_upstream(link, transport, photos_upto, &mut report)?;
        self.pull_upstream(link, transport, &mut report)?;
        if report.pushed + report.pulled + report.not_stored + report.photos > 0 {
            tracing::info!(
                pushed = report.pushed,
                pulled = report.pulled,
                not_stored = report.not_stored,
                photos = report.photos,
                "upstream sync"
            );
        }
        Ok(report)
    }

    fn push_upstream(
        &self,
        link: &UpstreamLink,
        transport: &dyn Transport,
        report: &mut UpstreamReport,
    ) -> Result<(), SyncError> {
        for _ in 0..MAX_REQUESTS {
            let after = self.counter(PUSHED)?;
            let entries = self
                .store
                .log_after(after, Some(link.device), PUSH_BYTES)
                .map_err(internal)?;
            let Some(last) = entries.last().map(|(seq, _)| *seq) else {
                return Ok(());
            };
            let request = PushRequest {
                v: PROTOCOL_VERSION,
                changes: entries
                    .into_iter()
                    .map(|(_, e)| WireChange {
                        doc: e.doc.to_string(),
                        bytes: e.bytes,
                    })
                    .collect(),
            };
            let answer: PushResponse =
                sync::call(transport, "/v1/push", Some(&link.token), &request)?;
            report.requests += 1;
            for r in &answer.results {
                match r.status {
                    ChangeStatus::Accepted | ChangeStatus::Duplicate => report.pushed += 1,
                    _ => {
                        // Our devices' changes were checked here; the upstream may
                        // still hold a different directory. Nothing to retry.
                        report.not_stored += 1;
                        tracing::warn!(status = ?r.status, reason = r.reason.as_deref().unwrap_or(""), "upstream did not store a change");
                    }
                }
            }
            self.store
                .set_meta(PUSHED, &last.to_string())
                .map_err(internal)?;
        }
        Ok(())
    }

    /// Send the photos stored here since the last one sent, up to `upto`, after the
    /// changes that refer to them (the upstream takes only photos of documents it
    /// has). A refused photo is tried again for a few rounds, then skipped; a network
    /// failure ends the round, and the next resumes from the same photo.
    fn photos_upstream(
        &self,
        link: &UpstreamLink,
        transport: &dyn Transport,
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
                report.requests += 1;
                let sent = sync::upload_blob(
                    transport,
                    &link.token,
                    &parsed,
                    &bytes,
                    &mut SyncReport::default(),
                );
                match sent {
                    Ok(()) => report.photos += 1,
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

    fn pull_upstream(
        &self,
        link: &UpstreamLink,
        transport: &dyn Transport,
        report: &mut UpstreamReport,
    ) -> Result<(), SyncError> {
        for _ in 0..MAX_REQUESTS {
            let purged: Vec<String> = self
                .store
                .meta(PURGE_ACK)
                .map_err(internal)?
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            let request = PullRequest {
                v: PROTOCOL_VERSION,
                cursor: self.counter(CURSOR)?,
                max_bytes: MAX_PULL_PAGE_BYTES,
                purged,
                ack_page: self.counter(PAGE)?,
            };
            let answer: PullResponse =
                sync::call(transport, "/v1/pull", Some(&link.token), &request)?;
            report.requests += 1;
            if !answer.changes.is_empty() {
                let stored = self
                    .push_as(link.device, &Trust::Upstream, answer.changes)
                    .map_err(relay_error)?;
                for r in &stored.results {
                    match r.status {
                        ChangeStatus::Accepted => report.pulled += 1,
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
            // Documents leaving the region upstream stay here (our own devices may
            // still work on them); the purge is acknowledged so it is not repeated.
            self.store
                .set_metas(&[
                    (CURSOR, answer.cursor.to_string()),
                    (PAGE, answer.page.to_string()),
                    (PURGE_ACK, answer.purge.join(" ")),
                ])
                .map_err(internal)?;
            if !answer.more {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// Seconds between upstream rounds by default.
pub const DEFAULT_INTERVAL_SECS: u64 = 30;
