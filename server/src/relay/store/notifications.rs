//! The notification ledger (`docs/notifications.md`): one row per (case, rule,
//! recipient, occurrence), so that each message is queued once whichever node
//! notices the event first and however often it is noticed again; then its
//! attempts, and whether it was sent or given up. Payloads hold no personal data
//! of residents; a recipient's contact is looked up when the message is sent.

use gridsync_core::{DocId, UserId};

use super::sql::{args, Row, Tx};
use super::{StoreError, StoreResult};
use crate::notify::Rule;

/// Rows shown for one case at most.
const MAX_PER_CASE: i64 = 200;

/// A message to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    /// The case it is about.
    pub doc: DocId,
    /// Why it is sent.
    pub rule: Rule,
    /// To whom.
    pub recipient: UserId,
    /// Which occurrence of the rule on this case (a timeline entry's id, or a
    /// deadline): the same occurrence is never queued twice.
    pub occurrence: String,
    /// The message's JSON fields, without personal data (see `notify::Message`).
    pub payload: String,
    /// When it was noticed, ms since the epoch.
    pub created_ms: i64,
}

/// Where a queued message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationState {
    /// Waiting for its next attempt (or for the recipient's rate limit).
    Queued,
    /// The gateway accepted it.
    Sent,
    /// Given up after the last attempt.
    Failed,
    /// Not sent: the case moved on before it could be (no longer with the
    /// department, or dispatched again with another deadline).
    Cancelled,
}

impl NotificationState {
    /// Every state.
    pub const ALL: [NotificationState; 4] = [
        NotificationState::Queued,
        NotificationState::Sent,
        NotificationState::Failed,
        NotificationState::Cancelled,
    ];

    /// Stable name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationState::Queued => "queued",
            NotificationState::Sent => "sent",
            NotificationState::Failed => "failed",
            NotificationState::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> StoreResult<Self> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| StoreError::failed("a notification has an unknown state"))
    }
}

/// A message in the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRecord {
    /// Its number, stable across attempts (the receiver's deduplication key).
    pub id: i64,
    /// The case.
    pub doc: DocId,
    /// Why.
    pub rule: Rule,
    /// To whom.
    pub recipient: UserId,
    /// The message's JSON fields.
    pub payload: String,
    /// Where it stands.
    pub state: NotificationState,
    /// Attempts made.
    pub attempts: u32,
    /// When it was queued, ms since the epoch.
    pub created_ms: i64,
    /// Its next attempt is due (queued), ms since the epoch.
    pub next_ms: i64,
    /// When it was sent or given up, ms since the epoch.
    pub done_ms: Option<i64>,
    /// Why the last attempt failed or the message waits (a short code such as
    /// `http_500`, `timeout`, `rate_limited`; never the gateway's answer).
    pub detail: Option<String>,
}

/// What became of an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settle {
    /// Accepted by the gateway at `at_ms`.
    Sent {
        /// Attempts made, this one included.
        attempts: u32,
        /// When.
        at_ms: i64,
    },
    /// Failed; tried again at `next_ms`.
    Retry {
        /// Attempts made, this one included.
        attempts: u32,
        /// When to try again.
        next_ms: i64,
        /// Why it failed.
        detail: String,
    },
    /// Failed for the last time.
    Failed {
        /// Attempts made, this one included.
        attempts: u32,
        /// When it was given up.
        at_ms: i64,
        /// Why it failed.
        detail: String,
    },
    /// Not attempted: the recipient's rate limit; due again at `next_ms`.
    Deferred {
        /// When the recipient may be sent to again.
        next_ms: i64,
    },
    /// Not attempted, and never will be: the case moved on.
    Cancelled {
        /// When.
        at_ms: i64,
    },
}

const COLUMNS: &str = "id, doc_id, rule, recipient, payload, state, attempts, created_ms,
                       next_ms, done_ms, detail";

fn record(r: &Row) -> StoreResult<NotificationRecord> {
    Ok(NotificationRecord {
        id: r.int(0)?,
        doc: r.parse(1)?,
        rule: Rule::parse(&r.text(2)?)
            .ok_or_else(|| StoreError::failed("a notification has an unknown rule"))?,
        recipient: r.parse(3)?,
        payload: r.text(4)?,
        state: NotificationState::parse(&r.text(5)?)?,
        attempts: u32::try_from(r.count(6)?).unwrap_or(u32::MAX),
        created_ms: r.int(7)?,
        next_ms: r.int(8)?,
        done_ms: r.opt_int(9)?,
        detail: r.opt_text(10)?,
    })
}

/// Queue each message not queued before; how many were new.
pub(super) fn queue(tx: &mut dyn Tx, batch: &[NewNotification]) -> StoreResult<u64> {
    let mut added = 0;
    for n in batch {
        added += tx.exec(
            "INSERT INTO notifications (doc_id, rule, recipient, occurrence, payload, state,
                                        attempts, created_ms, next_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, 'queued', 0, ?6, ?6)
             ON CONFLICT (doc_id, rule, recipient, occurrence) DO NOTHING",
            args![
                n.doc.as_str(),
                n.rule.as_str(),
                n.recipient.as_str(),
                n.occurrence.as_str(),
                n.payload.as_str(),
                n.created_ms
            ],
        )?;
    }
    Ok(added)
}

/// Queued messages due at `now_ms`, oldest due first.
pub(super) fn due(
    tx: &mut dyn Tx,
    now_ms: i64,
    limit: u32,
) -> StoreResult<Vec<NotificationRecord>> {
    tx.rows(
        &format!(
            "SELECT {COLUMNS} FROM notifications WHERE state = 'queued' AND next_ms <= ?1
             ORDER BY next_ms, id LIMIT ?2"
        ),
        args![now_ms, i64::from(limit)],
    )?
    .iter()
    .map(record)
    .collect()
}

/// Take a due message for one attempt: its due time moves to `lease_ms`, so no
/// other node sends it meanwhile; false if another node took it first.
pub(super) fn claim(
    tx: &mut dyn Tx,
    id: i64,
    seen_next_ms: i64,
    lease_ms: i64,
) -> StoreResult<bool> {
    Ok(tx.exec(
        "UPDATE notifications SET next_ms = ?3
         WHERE id = ?1 AND state = 'queued' AND next_ms = ?2",
        args![id, seen_next_ms, lease_ms],
    )? == 1)
}

/// Record what became of an attempt. A message another node has already
/// settled (sent, failed or cancelled) stays as it was: a late deferral must not
/// queue it again.
pub(super) fn settle(tx: &mut dyn Tx, id: i64, outcome: &Settle) -> StoreResult<()> {
    let (state, attempts, next_ms, done_ms, detail) = match outcome {
        Settle::Sent { attempts, at_ms } => ("sent", Some(*attempts), None, Some(*at_ms), None),
        Settle::Retry {
            attempts,
            next_ms,
            detail,
        } => (
            "queued",
            Some(*attempts),
            Some(*next_ms),
            None,
            Some(detail.as_str()),
        ),
        Settle::Failed {
            attempts,
            at_ms,
            detail,
        } => (
            "failed",
            Some(*attempts),
            None,
            Some(*at_ms),
            Some(detail.as_str()),
        ),
        Settle::Deferred { next_ms } => {
            ("queued", None, Some(*next_ms), None, Some("rate_limited"))
        }
        Settle::Cancelled { at_ms } => ("cancelled", None, None, Some(*at_ms), None),
    };
    tx.exec(
        "UPDATE notifications SET state = ?2, attempts = coalesce(?3, attempts),
                next_ms = coalesce(?4, next_ms), done_ms = ?5, detail = ?6
         WHERE id = ?1 AND state = 'queued'",
        args![id, state, attempts.map(i64::from), next_ms, done_ms, detail],
    )?;
    Ok(())
}

/// When messages were sent to `recipient` at or after `since_ms`, oldest first.
pub(super) fn sent_since(
    tx: &mut dyn Tx,
    recipient: &UserId,
    since_ms: i64,
) -> StoreResult<Vec<i64>> {
    tx.rows(
        "SELECT done_ms FROM notifications
         WHERE recipient = ?1 AND state = 'sent' AND done_ms >= ?2 ORDER BY done_ms",
        args![recipient.as_str(), since_ms],
    )?
    .iter()
    .map(|r| r.int(0))
    .collect()
}

/// The messages about one case, in the order they were queued.
pub(super) fn of_case(tx: &mut dyn Tx, doc: &DocId) -> StoreResult<Vec<NotificationRecord>> {
    tx.rows(
        &format!("SELECT {COLUMNS} FROM notifications WHERE doc_id = ?1 ORDER BY id LIMIT ?2"),
        args![doc.as_str(), MAX_PER_CASE],
    )?
    .iter()
    .map(record)
    .collect()
}

/// How many messages are in each state.
pub(super) fn counts(tx: &mut dyn Tx) -> StoreResult<Vec<(NotificationState, u64)>> {
    tx.rows(
        "SELECT state, count(*) FROM notifications GROUP BY state",
        &[],
    )?
    .iter()
    .map(|r| Ok((NotificationState::parse(&r.text(0)?)?, r.count(1)?)))
    .collect()
}
