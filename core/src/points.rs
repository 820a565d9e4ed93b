//! Points (积分): what each grid worker earned in a month under the directory's
//! [`PointsRules`], counted from the index tables — the cases she reported (valid,
//! handled on the spot, major, invalid) and the visits and inspections she made.
//! Nothing is stored: every replica holding the same documents counts the same
//! figures, and a case marked invalid after the month still takes its points back.

use chrono::{DateTime, Utc};
use rusqlite::{params, Transaction};

use crate::directory::PointsRules;
use crate::error::Result;
use crate::ids::RegionCode;

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
    pub points: i64,
}

impl WorkerPoints {
    fn score(&mut self, r: &PointsRules) {
        let n = |count: u64, each: i32| {
            i64::try_from(count)
                .unwrap_or(i64::MAX)
                .saturating_mul(i64::from(each))
        };
        self.points = [
            n(self.valid_reports, r.valid_report),
            n(self.handled_on_the_spot, r.handled_on_the_spot),
            n(self.major_cases, r.major_case),
            n(self.invalid_reports, r.invalid_report),
            n(self.visits, r.visit),
            n(self.inspections, r.inspection),
        ]
        .into_iter()
        .fold(0, i64::saturating_add);
    }
}

/// The month `from`..`to` of every grid worker (`is_worker`) who reported,
/// visited or inspected in `region`'s grids, or of `worker` only; most points
/// first, then by id.
pub(crate) fn month(
    tx: &Transaction<'_>,
    region: &RegionCode,
    worker: Option<&str>,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
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
                points: 0,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    // Grid workers only: a dispatcher's own reports earn no worker points.
    rows.retain(|w| is_worker(&w.worker));
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
