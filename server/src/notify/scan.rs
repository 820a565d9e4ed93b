//! Noticing events: the cases logged since the last round (their timelines: a
//! dispatch, a return, supervision raised by hand) and the open dispatches in the
//! case index (a deadline near, level 4 reached by running late). What is found is
//! queued in the ledger, where each (case, rule, recipient, occurrence) is kept
//! once: a round may see the same event again, after a restart or on another node,
//! and nothing is sent twice.

use chrono::{DateTime, Duration, Utc};
use gridsync_core::index::MAX_PAGE;
use gridsync_core::{CaseFilter, DocContent, DocId, DocKind, RegionCode, Status};

use super::rules::{self, Event, Facts};
use super::NotifyError;
use crate::relay::store::NewNotification;
use crate::relay::Relay;

/// Where in the change log the last round stopped (the relay's `meta`).
pub const CURSOR_KEY: &str = "notify_cursor";
/// Log bytes read per page.
const PAGE_BYTES: u64 = 4 * 1024 * 1024;
/// Log pages read per round at most; the rest waits for the next round.
const MAX_PAGES: usize = 20;

fn queue(relay: &Relay, events: Vec<Event>, now: DateTime<Utc>) -> Result<u64, NotifyError> {
    let mut batch = Vec::new();
    for e in events {
        let payload = serde_json::to_string(&e.message)?;
        for recipient in e.recipients {
            batch.push(NewNotification {
                doc: e.doc.clone(),
                rule: e.rule,
                recipient,
                occurrence: e.occurrence.clone(),
                payload: payload.clone(),
                created_ms: now.timestamp_millis(),
            });
        }
    }
    if batch.is_empty() {
        return Ok(0);
    }
    Ok(relay.store().queue_notifications(&batch)?)
}

/// Where the log scan goes on from. The first time on a relay, the end of the log:
/// what happened before notifications were turned on is not announced.
pub fn start_cursor(relay: &Relay) -> Result<u64, NotifyError> {
    let store = relay.store();
    if let Some(c) = store.meta(CURSOR_KEY)?.and_then(|v| v.parse::<u64>().ok()) {
        return Ok(c);
    }
    let top = store.log_top()?;
    Ok(store
        .meta_or_insert(CURSOR_KEY, &top.to_string())?
        .parse()
        .unwrap_or(top))
}

/// Which cases a relay announces, and how early.
#[derive(Debug, Clone)]
pub struct Reach {
    /// How long before a deadline its department is reminded.
    pub lead: Duration,
    /// The region subtrees whose cases are announced; empty: every case.
    pub regions: Vec<RegionCode>,
}

impl Reach {
    fn covers(&self, grid: &RegionCode) -> bool {
        self.regions.is_empty() || self.regions.iter().any(|r| r.contains(grid))
    }
}

/// The cases changed in the log since the cursor.
fn logged(relay: &Relay, now: DateTime<Utc>, reach: &Reach) -> Result<u64, NotifyError> {
    let store = relay.store();
    let mut cursor = start_cursor(relay)?;
    let dir = relay.engine().directory()?;
    let mut queued = 0;
    for _ in 0..MAX_PAGES {
        let page = store.log_after(cursor, None, PAGE_BYTES)?;
        let Some((last, _)) = page.last() else { break };
        let last = *last;
        let mut cases: Vec<&DocId> = page
            .iter()
            .map(|(_, e)| &e.doc)
            .filter(|d| d.kind() == DocKind::Case)
            .collect();
        cases.sort();
        cases.dedup();
        let mut events = Vec::new();
        for id in cases {
            match relay.engine().read_doc(id) {
                Ok(Some(DocContent::Case(doc))) if reach.covers(&doc.grid) => {
                    // Times as the relay judges them: a skewed phone's deadline
                    // is not announced by its clock (relay::times).
                    let state = relay.judged_state(&doc);
                    events.extend(rules::of_case(&dir, &doc, &state, now, reach.lead));
                }
                Ok(_) => {}
                // A case the replica cannot read would otherwise stop every
                // later event from being noticed.
                Err(e @ gridsync_core::Error::Malformed { .. }) => {
                    tracing::warn!(case = %id, error = %e, "case not readable; no notification");
                }
                Err(e) => return Err(e.into()),
            }
        }
        queued += queue(relay, events, now)?;
        cursor = last;
        store.set_meta(CURSOR_KEY, &cursor.to_string())?;
    }
    Ok(queued)
}

/// The open dispatches whose deadline is near or passed, from the index.
fn timed(relay: &Relay, now: DateTime<Utc>, reach: &Reach) -> Result<u64, NotifyError> {
    let dir = relay.engine().directory()?;
    let regions: Vec<Option<RegionCode>> = if reach.regions.is_empty() {
        vec![None]
    } else {
        reach.regions.iter().cloned().map(Some).collect()
    };
    let mut queued = 0;
    for region in regions {
        let mut filter = CaseFilter {
            statuses: vec![Status::Dispatched],
            overdue_at: Some(now + reach.lead),
            region,
            limit: MAX_PAGE,
            ..CaseFilter::default()
        };
        loop {
            let page = relay.engine().list_cases(&filter)?;
            let events = page
                .iter()
                .flat_map(|c| rules::timed(&dir, &Facts::of_summary(c), now, reach.lead))
                .collect();
            queued += queue(relay, events, now)?;
            if page.len() < MAX_PAGE as usize {
                break;
            }
            filter.offset = filter.offset.saturating_add(MAX_PAGE);
        }
    }
    Ok(queued)
}

/// One round: bring the replica up to date, then look at the log and the index;
/// how many messages were queued.
pub fn scan(relay: &Relay, reach: &Reach) -> Result<u64, NotifyError> {
    relay.catch_up()?;
    let now = Utc::now();
    Ok(logged(relay, now, reach)? + timed(relay, now, reach)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reach_covers_its_regions_subtrees_or_everything() {
        let grid: RegionCode = "339901001001001".parse().unwrap();
        let reach = |regions: &[&str]| Reach {
            lead: Duration::hours(2),
            regions: regions.iter().map(|r| r.parse().unwrap()).collect(),
        };
        assert!(reach(&[]).covers(&grid));
        assert!(reach(&["339901002", "339901001"]).covers(&grid));
        assert!(reach(&["339901001001001"]).covers(&grid));
        assert!(!reach(&["339901002"]).covers(&grid));
    }
}
