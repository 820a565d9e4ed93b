//! Tiers, as the town keeps them (`relay::upstream`): the changes its upstream did
//! not store — refused for good, or deferred and sent again on later rounds — and
//! the photos it asked the upstream for and did not get, so each is asked again
//! later and not for ever.

use gridsync_core::DocId;

use super::sql::{args, Row, Tx, Value};
use super::{visible_args, LogEntry, StoreError, StoreResult, Visibility, VISIBLE};

/// A change the upstream did not store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamRefusal {
    /// The change hash.
    pub hash: [u8; 32],
    /// Its document.
    pub doc: DocId,
    /// Not placed yet (a dependency the upstream lacks): sent again on later
    /// rounds. Otherwise refused for good.
    pub deferred: bool,
    /// Why, as the upstream said it.
    pub reason: String,
    /// When it was first answered, ms since the epoch.
    pub first_ms: i64,
    /// When it was last answered.
    pub last_ms: i64,
    /// How often it was sent.
    pub attempts: u64,
}

/// The upstream's answer for one change it did not store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotStored {
    /// The change hash.
    pub hash: [u8; 32],
    /// Its document.
    pub doc: DocId,
    /// Deferred rather than refused.
    pub deferred: bool,
    /// Why.
    pub reason: String,
}

fn status(deferred: bool) -> &'static str {
    if deferred {
        "deferred"
    } else {
        "rejected"
    }
}

/// Record answers: each change not stored is added (or its attempts counted), and
/// those `stored` now are forgotten.
pub(super) fn record(
    tx: &mut dyn Tx,
    not_stored: &[NotStored],
    stored: &[[u8; 32]],
    now_ms: i64,
) -> StoreResult<()> {
    for n in not_stored {
        tx.exec(
            "INSERT INTO upstream_refusals
                 (hash, doc_id, status, reason, first_ms, last_ms, attempts)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, 1)
             ON CONFLICT (hash) DO UPDATE SET status = excluded.status,
                 reason = excluded.reason, last_ms = excluded.last_ms,
                 attempts = upstream_refusals.attempts + 1",
            args![
                &n.hash[..],
                n.doc.as_str(),
                status(n.deferred),
                n.reason.as_str(),
                now_ms
            ],
        )?;
    }
    for hash in stored {
        tx.exec(
            "DELETE FROM upstream_refusals WHERE hash = ?1",
            args![&hash[..]],
        )?;
    }
    Ok(())
}

/// Deferred changes sent fewer than `max_attempts` times, from the log after
/// `after` in log order (dependencies first), up to about `max_bytes`.
pub(super) fn retries(
    tx: &mut dyn Tx,
    after: u64,
    max_attempts: u64,
    limit: usize,
    max_bytes: u64,
) -> StoreResult<Vec<(u64, LogEntry)>> {
    let rows = tx.rows(
        "SELECT l.seq, l.hash, l.doc_id, l.bytes FROM upstream_refusals r
         JOIN log l ON l.hash = r.hash
         WHERE r.status = 'deferred' AND r.attempts < ?2 AND l.seq > ?1
         ORDER BY l.seq LIMIT ?3",
        args![after, max_attempts, limit as u64],
    )?;
    let mut out = Vec::new();
    let mut bytes = 0u64;
    for r in rows {
        let change = r.bytes(3)?;
        if !out.is_empty() && bytes + change.len() as u64 > max_bytes {
            break;
        }
        bytes += change.len() as u64;
        out.push((
            r.count(0)?,
            LogEntry {
                hash: hash_of(&r, 1)?,
                doc: r.parse(2)?,
                bytes: change,
            },
        ));
    }
    Ok(out)
}

fn hash_of(r: &Row, i: usize) -> StoreResult<[u8; 32]> {
    r.bytes(i)?
        .try_into()
        .map_err(|_| StoreError::failed("a change hash is not 32 bytes"))
}

/// The changes not stored upstream, of documents `vis` covers, most recently
/// answered first, at most `limit`; and how many there are in all.
pub(super) fn list(
    tx: &mut dyn Tx,
    vis: &Visibility,
    limit: u32,
) -> StoreResult<(Vec<UpstreamRefusal>, u64)> {
    let mut with_limit: Vec<Value> = vec![i64::from(limit).into()];
    with_limit.extend(visible_args(vis));
    let rows = tx.rows(
        &format!(
            "SELECT r.hash, r.doc_id, r.status, r.reason, r.first_ms, r.last_ms, r.attempts,
                    count(*) OVER ()
             FROM upstream_refusals r JOIN doc_scope s ON s.doc_id = r.doc_id
             WHERE {VISIBLE} ORDER BY r.last_ms DESC, r.doc_id LIMIT ?1"
        ),
        &with_limit,
    )?;
    let total = rows.first().map(|r| r.count(7)).transpose()?.unwrap_or(0);
    let list = rows
        .iter()
        .map(|r| {
            Ok(UpstreamRefusal {
                hash: hash_of(r, 0)?,
                doc: r.parse(1)?,
                deferred: r.text(2)? == "deferred",
                reason: r.text(3)?,
                first_ms: r.int(4)?,
                last_ms: r.int(5)?,
                attempts: r.count(6)?,
            })
        })
        .collect::<StoreResult<_>>()?;
    Ok((list, total))
}

/// Photos documents here refer to that are not stored here, asked of the upstream
/// fewer than `max_attempts` times and not before `now_ms`, with how often each was
/// missed; at most `limit`.
pub(super) fn photos_missing(
    tx: &mut dyn Tx,
    now_ms: i64,
    max_attempts: u64,
    limit: u32,
) -> StoreResult<Vec<(String, u64)>> {
    tx.rows(
        "SELECT DISTINCT p.hash, coalesce(m.attempts, 0) FROM doc_photos p
         LEFT JOIN upstream_photo_misses m ON m.hash = p.hash
         WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.hash = p.hash)
           AND (m.hash IS NULL OR (m.attempts < ?2 AND m.next_ms <= ?1))
         ORDER BY p.hash LIMIT ?3",
        args![now_ms, max_attempts, i64::from(limit)],
    )?
    .iter()
    .map(|r| Ok((r.text(0)?, r.count(1)?)))
    .collect()
}

/// Count a photo the upstream did not give: asked again from `next_ms`.
pub(super) fn photo_missed(tx: &mut dyn Tx, hash: &str, next_ms: i64) -> StoreResult<()> {
    tx.exec(
        "INSERT INTO upstream_photo_misses (hash, attempts, next_ms) VALUES (?1, 1, ?2)
         ON CONFLICT (hash) DO UPDATE SET attempts = upstream_photo_misses.attempts + 1,
             next_ms = excluded.next_ms",
        args![hash, next_ms],
    )?;
    Ok(())
}
