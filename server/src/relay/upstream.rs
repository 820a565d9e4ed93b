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
use gridsync_core::sync::{self, SyncError, SyncReport, Transport};
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
/// The last blob sent upward, as `stored_ms hash`.
const BLOBS: &str = "upstream_blobs";

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
    ) -> Result<String, SyncError> {
        let device = DeviceId::random();
        let enrollment = sync::enroll(transport, code, device, env!("CARGO_PKG_VERSION"))?;
        for (key, value) in [
            (URL, url.trim_end_matches('/').to_owned()),
            (TOKEN, enrollment.token),
            (DEVICE, device.to_string()),
            (PUSHED, "0".into()),
            (CURSOR, "0".into()),
            (PAGE, "0".into()),
            (PURGE_ACK, String::new()),
            (BLOBS, String::new()),
        ] {
            self.store.set_meta(key, &value).map_err(internal)?;
        }
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
        Ok(Some(UpstreamLink { url, token, device }))
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
        self.push_upstream(link, transport, &mut report)?;
        self.photos_upstream(link, transport, &mut report)?;
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
                .log_after(after, link.device, PUSH_BYTES)
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

    /// Send every photo stored here since the last one sent, after the changes that
    /// refer to them (the upstream takes only photos of documents it has).
    fn photos_upstream(
        &self,
        link: &UpstreamLink,
        transport: &dyn Transport,
        report: &mut UpstreamReport,
    ) -> Result<(), SyncError> {
        for _ in 0..MAX_REQUESTS {
            let mark = self
                .store
                .meta(BLOBS)
                .map_err(internal)?
                .unwrap_or_default();
            let (ms, hash) = mark.split_once(' ').unwrap_or(("-1", ""));
            let batch = self
                .store
                .blobs_after(ms.parse().unwrap_or(-1), hash, 50)
                .map_err(internal)?;
            if batch.is_empty() {
                return Ok(());
            }
            for (stored_ms, hash) in batch {
                let parsed: PhotoHash = hash
                    .parse()
                    .map_err(|_| SyncError::Protocol("a stored blob hash is bad".into()))?;
                let bytes = self.blobs.read(&parsed).map_err(internal)?;
                match sync::upload_blob(
                    transport,
                    &link.token,
                    &parsed,
                    &bytes,
                    &mut SyncReport::default(),
                ) {
                    Ok(()) => report.photos += 1,
                    Err(SyncError::Refused { .. }) => {
                        report.photos_refused += 1;
                        tracing::warn!("upstream refused a photo");
                    }
                    Err(e) => return Err(e),
                }
                report.requests += 1;
                self.store
                    .set_meta(BLOBS, &format!("{stored_ms} {hash}"))
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
                report.pulled += stored
                    .results
                    .iter()
                    .filter(|r| r.status == ChangeStatus::Accepted)
                    .count() as u64;
            }
            // Documents leaving the region upstream stay here (our own devices may
            // still work on them); the purge is acknowledged so it is not repeated.
            for (key, value) in [
                (CURSOR, answer.cursor.to_string()),
                (PAGE, answer.page.to_string()),
                (PURGE_ACK, answer.purge.join(" ")),
            ] {
                self.store.set_meta(key, &value).map_err(internal)?;
            }
            if !answer.more {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// Seconds between upstream rounds by default.
pub const DEFAULT_INTERVAL_SECS: u64 = 30;
