//! Pull: the next page of what a device may see since its cursor, the device's
//! next token when its token is due for rotation, and the directory's newest
//! revision when the device holds an older one.

use chrono::Utc;
use gridsync_core::sync::wire::{
    Changes, PullRequest, PullResponse, WireChange, MAX_CHANGES_PER_MESSAGE, MAX_PULL_PAGE_BYTES,
    PROTOCOL_VERSION,
};

use super::store::PullAsk;
use super::{check_version, device_visibility, Caller, Relay, RelayError};

/// How far the backlog in a pull answer is counted: enough for a progress bar
/// ("at least"), and a scan small beside the page itself (10,000, the console's
/// cap, cost 100–300 ms a page at 10,000 cases).
const PULL_BACKLOG_CAP: u64 = 1_000;

impl Relay {
    /// The next page of what a device may see, with a successor for its token if
    /// that is due (see [`Relay::authenticate`]).
    pub fn pull(&self, caller: &Caller, req: PullRequest) -> Result<PullResponse, RelayError> {
        let Caller { device, user, .. } = caller;
        check_version(req.v)?;
        if req.purged.len() > MAX_CHANGES_PER_MESSAGE {
            return Err(RelayError::bad_request("purge acknowledgement too long"));
        }
        let vis = device_visibility(user, device.relay);
        let ask = PullAsk {
            cursor: req.cursor,
            max_bytes: req.max_bytes.clamp(1, MAX_PULL_PAGE_BYTES),
            ack_page: req.ack_page,
            purged: &req.purged,
            directory: req.directory,
        };
        let page = self
            .store
            .pull(device.device, &vis, &ask, Utc::now().timestamp_millis())?;
        tracing::info!(device = %device.device, changes = page.changes.len(), more = page.more, "pull");
        // Offered once the page is ready: a failure before here leaves no successor
        // waiting; one after (the answer lost) leaves one the device never saw,
        // replaced at its next pull while its current token goes on working.
        let new_token = self.rotate_token(caller);
        // For the device's progress bar; only while pages remain.
        let backlog = match page.more {
            true => Some(
                self.store
                    .backlog(device.device, &vis, page.cursor, PULL_BACKLOG_CAP)?,
            ),
            false => None,
        };
        let changes = page
            .changes
            .into_iter()
            .map(|(doc, bytes)| WireChange { doc, bytes })
            .collect();
        // Answered in the request's version: a device from before version 2 reads
        // one entry per change.
        Ok(PullResponse {
            v: req.v,
            changes: Changes::new(changes, req.v),
            cursor: page.cursor,
            more: page.more,
            purge: page.purge,
            page: page.page,
            new_token,
            backlog,
            // A relay erases these rather than keeping them (ADR 0011); a phone
            // purges them with the rest, and forgets its refused changes of them.
            erased: page.erased,
            directory: self.directory_update(req.directory, device.relay.then_some(&user.region)),
            speaks: Some(PROTOCOL_VERSION),
        })
    }
}
