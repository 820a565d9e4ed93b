//! Points (积分): what each grid worker earned in a month under the directory's
//! [`PointsRules`], counted from the index tables — the cases she reported (valid,
//! handled on the spot, major, invalid) and the visits and inspections she made —
//! plus the leaders' manual adjustments of that month (one document each, see
//! [`crate::doc::adjustment`]). Nothing is stored: every replica holding the same
//! documents counts the same figures, and a case marked invalid after the month
//! still takes its points back.

use chrono::{DateTime, Utc};
use rusqlite::{params, Transaction};

use crate::directory::PointsRules;
use crate::doc::adjustment::{AdjustmentDoc, Month};
use crate::error::Result;
use crate::ids::{DocId, RegionCode, UserId};

/// One worker's month.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerPoints {
    /// The worker's user id.
    pub worker: String,
    /// Reports not marked invalid.
    pub valid_reports: u64,
    /// Of them, handled on the spot.
    pub handled_on_the_spot: u64,
    /// Of them, of severity `urgent`.
    pub major_cases: u64,
    /// Reports marked invalid.
    pub invalid_reports: u64,
    /// Household visits (a household counts once a day).
    pub visits: u64,
    /// Safety inspections (a place counts once a day).
    pub inspections: u64,
    /// The points these earn under the rules.
    pub computed: i64,
    /// The sum of the leaders' adjustments for the month.
    pub adjusted: i64,
    /// The month's points: computed plus adjusted.
    pub points: i64,
}

impl WorkerPoints {
    fn score(&mut self, r: &PointsRules) {
        let n = |count: u64, each: i32| {
            i64::try_from(count)
                .unwrap_or(i64::MAX)
                .saturating_mul(i64::from(each))
        };
        self.computed = [
            n(self.valid_reports, r.valid_report),
            n(self.handled_on_the_spot, r.handled_on_the_spot),
            n(self.major_cases, r.major_case),
            n(self.invalid_reports, r.invalid_report),
            n(self.visits, r.visit),
            n(self.inspections, r.inspection),
        ]
        .into_iter()
        .fold(0, i64::saturating_add);
        self.points = self.computed.saturating_add(self.adjusted);
    }
}

/// One manual adjustment, as the ledger lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adjustment {
    /// Its document.
    pub id: DocId,
    /// The grid worker.
    pub worker: UserId,
    /// Her grid.
    pub grid: RegionCode,
    /// The month it counts in.
    pub month: Month,
    /// Points added or taken away.
    pub points: i32,
    /// Why.
    pub reason: String,
    /// The leader who made it.
    pub by: UserId,
    /// When.
    pub at: DateTime<Utc>,
}

/// Write an adjustment's index row (it never changes afterwards).
pub(crate) fn index_adjustment(tx: &Transaction<'_>, a: &AdjustmentDoc) -> Result<()> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO adjustments (doc_id, grid, worker, month, points, reason, by, at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        a.id.as_str(),
        a.grid.as_str(),
        a.worker.as_str(),
        a.month.to_string(),
        a.points,
        a.reason,
        a.by.as_str(),
        a.at.timestamp_millis(),
    ])?;
    Ok(())
}

/// The adjustments of `month` in `region`'s grids (of `worker` only, when given),
/// in the order they were made.
pub(crate) fn adjustments(
    tx: &Transaction<'_>,
    region: &RegionCode,
    worker: Option<&str>,
    month: Month,
) -> Result<Vec<Adjustment>> {
    let (lo, hi) = (region.as_str().to_owned(), format!("{region}:"));
    let rows = tx
        .prepare_cached(
            "SELECT doc_id, worker, grid, points, reason, by, at_ms FROM adjustments
              WHERE grid >= ?1 AND grid < ?2 AND month = ?3 AND (?4 IS NULL OR worker = ?4)
              ORDER BY at_ms, doc_id",
        )?
        .query_map(params![lo, hi, month.to_string(), worker], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i32>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, i64>(6)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    // A row this code did not write (ids it cannot parse) is left off.
    Ok(rows
        .into_iter()
        .filter_map(|(id, worker, grid, points, reason, by, at)| {
            Some(Adjustment {
                id: id.parse().ok()?,
                worker: worker.parse().ok()?,
                grid: grid.parse().ok()?,
                month,
                points,
                reason,
                by: by.parse().ok()?,
                at: DateTime::from_timestamp_millis(at)?,
            })
        })
        .collect())
}

/// The month `from`..`to` (`month`) of every grid worker (`is_worker`) who
/// reported, visited, inspected or had her points adjusted in `region`'s grids,
/// or of `worker` only; most points first, then by id. An adjustment counts in
/// the grid it was made in, like a report, also after she moved.
pub(crate) fn month(
    tx: &Transaction<'_>,
    region: &RegionCode,
    worker: Option<&str>,
    (month, (from, to)): (Month, (DateTime<Utc>, DateTime<Utc>)),
    rules: &PointsRules,
    is_worker: impl Fn(&str) -> bool,
) -> Result<Vec<WorkerPoints>> {
    let (lo, hi) = (region.as_str().to_owned(), format!("{region}:"));
    let (from, to) = (from.timestamp_millis(), to.timestamp_millis());
    // A household visited or a place inspected counts once a day per worker,
    // however many times it was recorded (days in China Standard Time).
    let offset_ms = i64::from(crate::index::local_offset().local_minus_utc()) * 1000;
    let sql = "SELECT who, sum(valid), sum(spot), sum(major), sum(invalid), sum(visit),
                      sum(inspection)
                 FROM (SELECT reporter AS who, status != 'invalid' AS valid,
                              status != 'invalid' AND self_handled AS spot,
                              status != 'invalid' AND severity = 'urgent' AS major,
                              status = 'invalid' AS invalid, 0 AS visit, 0 AS inspection
                         FROM cases
                        WHERE grid >= ?1 AND grid < ?2 AND created_ms >= ?3 AND created_ms < ?4
                       UNION ALL
                       SELECT worker, 0, 0, 0, 0, 1, 0 FROM (
                         SELECT DISTINCT worker, doc_id, (at_ms + ?6) / 86400000 FROM visits
                          WHERE grid >= ?1 AND grid < ?2 AND at_ms >= ?3 AND at_ms < ?4)
                       UNION ALL
                       SELECT worker, 0, 0, 0, 0, 0, 1 FROM (
                         SELECT DISTINCT worker, doc_id, (at_ms + ?6) / 86400000 FROM inspections
                          WHERE grid >= ?1 AND grid < ?2 AND at_ms >= ?3 AND at_ms < ?4))
                WHERE ?5 IS NULL OR who = ?5
                GROUP BY who";
    let mut rows: Vec<WorkerPoints> = tx
        .prepare_cached(sql)?
        .query_map(params![lo, hi, from, to, worker, offset_ms], |r| {
            let n = |i| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
            Ok(WorkerPoints {
                worker: r.get(0)?,
                valid_reports: n(1)?,
                handled_on_the_spot: n(2)?,
                major_cases: n(3)?,
                invalid_reports: n(4)?,
                visits: n(5)?,
                inspections: n(6)?,
                ..Default::default()
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    // Grid workers only: a dispatcher's own reports earn no worker points.
    rows.retain(|w| is_worker(&w.worker));
    for a in adjustments(tx, region, worker, month)? {
        if !is_worker(a.worker.as_str()) {
            continue;
        }
        let at = match rows.iter().position(|w| w.worker == a.worker.as_str()) {
            Some(at) => at,
            None => {
                rows.push(WorkerPoints {
                    worker: a.worker.to_string(),
                    ..Default::default()
                });
                rows.len() - 1
            }
        };
        rows[at].adjusted = rows[at].adjusted.saturating_add(i64::from(a.points));
    }
    for w in &mut rows {
        w.score(rules);
    }
    rows.sort_by(|a, b| {
        b.points
            .cmp(&a.points)
            .then_with(|| a.worker.cmp(&b.worker))
    });
    Ok(rows)
}
