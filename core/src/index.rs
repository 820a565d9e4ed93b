//! The materialised index: every document is folded into plain rows on every local
//! or merged change, so lists, filters, counts and search never load a document.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Transaction};

use crate::doc::case::{CaseDoc, Channel, Severity};
use crate::doc::patrol::PatrolDoc;
use crate::doc::DocContent;
use crate::error::{Error, Result};
use crate::ids::{CategoryCode, DeptId, DocId, DocKind, RegionCode, RegionLevel, UserId};
use crate::search;
use crate::track;
use crate::workflow::{fold, CaseState, Entry, Status, SupervisionLevel};

/// Most rows one list call returns.
pub const MAX_PAGE: u32 = 1000;

/// China Standard Time: patrol days and monthly figures follow the local calendar.
pub fn local_offset() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// How a server reads a case's timeline for its index: the same entries in the
/// same order, some at another time than their author's clock wrote (and a
/// dispatch's deadline moved with it), or `None` to take them as written.
pub type TimelineReading = dyn Fn(&CaseDoc) -> Option<Vec<Entry>> + Send + Sync;

/// The readings registered, each with the database file whose index it is for.
static READINGS: std::sync::Mutex<Vec<(std::path::PathBuf, std::sync::Weak<TimelineReading>)>> =
    std::sync::Mutex::new(Vec::new());

fn canonical(db: &std::path::Path) -> std::path::PathBuf {
    let name = db.file_name().unwrap_or_default();
    db.parent()
        .and_then(|d| {
            std::fs::canonicalize(if d.as_os_str().is_empty() {
                ".".as_ref()
            } else {
                d
            })
            .ok()
        })
        .map_or_else(|| db.to_path_buf(), |d| d.join(name))
}

/// Index the cases of the database file `db` (an engine's, opened after this) with
/// the times `reading` gives: a relay judges deadlines, overdue and durations by
/// when it received an entry where its author's clock is implausible
/// (docs/reliability.md, clocks). The documents are not touched. The reading
/// holds while the caller keeps `reading`; every other database (a phone's) is
/// indexed as written.
pub fn read_timelines_with(db: &std::path::Path, reading: &std::sync::Arc<TimelineReading>) {
    let mut all = READINGS.lock().unwrap_or_else(|e| e.into_inner());
    all.retain(|(_, r)| r.strong_count() > 0);
    all.push((canonical(db), std::sync::Arc::downgrade(reading)));
}

/// The reading registered for the database `tx` writes, if any.
fn reading_for(tx: &Transaction<'_>) -> Option<std::sync::Arc<TimelineReading>> {
    let all = READINGS.lock().unwrap_or_else(|e| e.into_inner());
    if all.is_empty() {
        return None;
    }
    let path = std::path::Path::new(tx.path().filter(|p| !p.is_empty())?);
    let found = |p: &std::path::Path| {
        all.iter()
            .rev()
            .find(|(db, _)| db == p)
            .and_then(|(_, r)| r.upgrade())
    };
    found(path).or_else(|| found(&canonical(path)))
}

/// Upsert a case's row and its search terms.
pub(crate) fn index_case(tx: &Transaction<'_>, case: &CaseDoc, state: &CaseState) -> Result<()> {
    let read = reading_for(tx)
        .and_then(|reading| reading(case))
        .filter(|t| t.len() == case.timeline.len());
    let read_state;
    let (timeline, state, created) = match &read {
        Some(timeline) => {
            read_state = fold(timeline);
            // The report is the case's creation: read at another time, so is it.
            let shift = match (timeline.first(), case.timeline.first()) {
                (Some(read), Some(written)) => read.at - written.at,
                _ => chrono::Duration::zero(),
            };
            let created = case
                .created
                .checked_add_signed(shift)
                .unwrap_or(case.created);
            (timeline.as_slice(), &read_state, created)
        }
        None => (case.timeline.as_slice(), state, case.created),
    };
    let updated = timeline
        .iter()
        .map(|e| e.at)
        .chain(case.notes.iter().map(|n| n.at))
        .chain(case.photos.iter().map(|p| p.at))
        .max()
        .unwrap_or(created);
    let rowid: i64 = tx
        .prepare_cached(
            "INSERT INTO cases (doc_id, grid, category, subcategory, severity, status, level,
                reporter, assigned_dept, deadline_ms, supervision, self_handled, satisfaction,
                has_conflict, title, photo_count, created_ms, updated_ms, accepted_ms,
                handled_ms, closed_ms, place, escalations, lat, lon, channel)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)
             ON CONFLICT (doc_id) DO UPDATE SET grid = excluded.grid,
                category = excluded.category, subcategory = excluded.subcategory,
                severity = excluded.severity, status = excluded.status, level = excluded.level,
                reporter = excluded.reporter, assigned_dept = excluded.assigned_dept,
                deadline_ms = excluded.deadline_ms, supervision = excluded.supervision,
                self_handled = excluded.self_handled, satisfaction = excluded.satisfaction,
                has_conflict = excluded.has_conflict, title = excluded.title,
                photo_count = excluded.photo_count, created_ms = excluded.created_ms,
                updated_ms = excluded.updated_ms, accepted_ms = excluded.accepted_ms,
                handled_ms = excluded.handled_ms, closed_ms = excluded.closed_ms,
                place = excluded.place, escalations = excluded.escalations,
                lat = excluded.lat, lon = excluded.lon, channel = excluded.channel
             RETURNING rowid",
        )?
        .query_row(
            params![
                case.id.as_str(),
                case.grid.as_str(),
                case.category.as_str(),
                case.subcategory.as_ref().map(|s| s.as_str()),
                case.severity.as_str(),
                state.status.as_str(),
                state.level.as_str(),
                case.reporter.as_str(),
                state.assigned_dept.as_ref().map(|d| d.as_str()),
                state.deadline.map(ms),
                state.supervision.map(SupervisionLevel::number),
                state.self_handled,
                state.satisfaction,
                state.has_conflict(),
                case.title,
                case.photos.len() as i64,
                ms(created),
                ms(updated),
                state.accepted_at.map(ms),
                state.handled_at.map(ms),
                state.closed_at.map(ms),
                case.links.place.as_ref().map(DocId::as_str),
                state.escalations,
                case.location.as_ref().map(|l| l.lat),
                case.location.as_ref().map(|l| l.lon),
                case.channel.as_str(),
            ],
            |r| r.get(0),
        )?;
    // A case's links are part of its report and never change.
    for person in &case.links.persons {
        tx.prepare_cached("INSERT OR IGNORE INTO case_persons (doc_id, person) VALUES (?1, ?2)")?
            .execute(params![case.id.as_str(), person.as_str()])?;
    }
    let mut text = format!("{}\n{}", case.title, case.description);
    for note in &case.notes {
        text.push('\n');
        text.push_str(&note.text);
    }
    let (uni, bi) = search::index_columns(&text);
    tx.prepare_cached("DELETE FROM case_search WHERE rowid = ?1")?
        .execute([rowid])?;
    tx.prepare_cached("INSERT INTO case_search (rowid, uni, bi) VALUES (?1, ?2, ?3)")?
        .execute(params![rowid, uni, bi])?;
    Ok(())
}

/// Record the photo files a document refers to (photos only ever join a
/// document): what the upload queue, fetching, eviction and purging go by.
pub(crate) fn index_photos(tx: &Transaction<'_>, id: &DocId, content: &DocContent) -> Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO case_photos (doc_id, hash, role) VALUES (?1, ?2, ?3)",
    )?;
    for p in content.photos() {
        let role = if p.thumb { "thumb" } else { "display" };
        insert.execute(params![id.as_str(), p.hash.as_str(), role])?;
    }
    Ok(())
}

/// Upsert a patrol's row. `pending_points` are buffered points not yet in the document.
pub(crate) fn index_patrol(
    tx: &Transaction<'_>,
    patrol: &PatrolDoc,
    pending_points: &[track::TrackPoint],
) -> Result<()> {
    let mut points = patrol.track.clone();
    points.extend_from_slice(pending_points);
    let day = patrol.started.with_timezone(&local_offset()).date_naive();
    tx.prepare_cached(
        "INSERT INTO patrols (doc_id, worker, grid, day, started_ms, ended_ms, track_points,
            distance_m, checkins, observations, cases_reported)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (doc_id) DO UPDATE SET worker = excluded.worker, grid = excluded.grid,
            day = excluded.day, started_ms = excluded.started_ms, ended_ms = excluded.ended_ms,
            track_points = excluded.track_points, distance_m = excluded.distance_m,
            checkins = excluded.checkins, observations = excluded.observations,
            cases_reported = excluded.cases_reported",
    )?
    .execute(params![
        patrol.id.as_str(),
        patrol.worker.as_str(),
        patrol.grid.as_str(),
        day.to_string(),
        ms(patrol.started),
        patrol.ended.map(ms),
        points.len() as i64,
        track::length_m(&points),
        patrol.checkins.len() as i64,
        patrol.observations.len() as i64,
        patrol.cases.len() as i64,
    ])?;
    Ok(())
}

/// Count `n` more buffered points in a patrol's row (its distance waits for the
/// flush that writes them into the document).
pub(crate) fn count_buffered_points(tx: &Transaction<'_>, id: &DocId, n: usize) -> Result<()> {
    tx.execute(
        "UPDATE patrols SET track_points = track_points + ?2 WHERE doc_id = ?1",
        params![id.as_str(), n as i64],
    )?;
    Ok(())
}

/// Which cases to list or count. Empty fields do not filter.
#[derive(Clone, Debug, Default)]
pub struct CaseFilter {
    /// Any of these statuses.
    pub statuses: Vec<Status>,
    /// Within this region's subtree.
    pub region: Option<RegionCode>,
    /// Of this top-level category.
    pub category: Option<CategoryCode>,
    /// Of this severity.
    pub severity: Option<Severity>,
    /// Dispatched to this department.
    pub assigned_dept: Option<DeptId>,
    /// Reported by this user.
    pub reporter: Option<UserId>,
    /// Only cases dispatched and past their deadline at this time.
    pub overdue_at: Option<DateTime<Utc>>,
    /// Only cases whose title, description or notes match (Chinese works).
    pub text: Option<String>,
    /// Only cases with a conflict in their timeline.
    pub conflicts_only: bool,
    /// Only cases reported at or after this time.
    pub reported_from: Option<DateTime<Utc>>,
    /// Only cases reported before this time.
    pub reported_before: Option<DateTime<Utc>>,
    /// Only cases about this registered place or person (its document id).
    pub about: Option<DocId>,
    /// Only cases that came in by this channel.
    pub channel: Option<Channel>,
    /// Page size (at most [`MAX_PAGE`]); 0 means 100.
    pub limit: u32,
    /// Rows to skip.
    pub offset: u32,
}

/// One row of a case list.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseSummary {
    /// Document id.
    pub id: DocId,
    /// Title.
    pub title: String,
    /// Status.
    pub status: Status,
    /// Grid.
    pub grid: RegionCode,
    /// Responsible level.
    pub level: RegionLevel,
    /// Category.
    pub category: CategoryCode,
    /// Subcategory.
    pub subcategory: Option<CategoryCode>,
    /// Severity.
    pub severity: Severity,
    /// Reporter.
    pub reporter: UserId,
    /// Department, if dispatched.
    pub assigned_dept: Option<DeptId>,
    /// Deadline of the current dispatch.
    pub deadline: Option<DateTime<Utc>>,
    /// Supervision level.
    pub supervision: Option<SupervisionLevel>,
    /// Whether the timeline holds a conflict.
    pub has_conflict: bool,
    /// Photos attached.
    pub photo_count: u32,
    /// The channel it came in by.
    pub channel: Channel,
    /// Reported at.
    pub created: DateTime<Utc>,
    /// Last activity.
    pub updated: DateTime<Utc>,
}

impl CaseFilter {
    /// This filter for counting: every status, no page.
    pub fn for_counting(&self) -> CaseFilter {
        CaseFilter {
            statuses: Vec::new(),
            limit: 0,
            offset: 0,
            ..self.clone()
        }
    }
}

pub(crate) fn where_clause(f: &CaseFilter) -> Result<(String, Vec<SqlValue>)> {
    let mut sql = vec!["1".to_owned()];
    let mut args: Vec<SqlValue> = Vec::new();
    let arg = |v: SqlValue, args: &mut Vec<SqlValue>| {
        args.push(v);
        format!("?{}", args.len())
    };
    if !f.statuses.is_empty() {
        let marks: Vec<String> = f
            .statuses
            .iter()
            .map(|s| arg(SqlValue::Text(s.as_str().into()), &mut args))
            .collect();
        sql.push(format!("status IN ({})", marks.join(", ")));
    }
    if let Some(region) = &f.region {
        // Codes are digits, and ':' sorts right after '9': an index range scan.
        let lo = arg(SqlValue::Text(region.as_str().into()), &mut args);
        let hi = arg(SqlValue::Text(format!("{region}:")), &mut args);
        sql.push(format!("grid >= {lo} AND grid < {hi}"));
    }
    if let Some(c) = &f.category {
        let p = arg(SqlValue::Text(c.as_str().into()), &mut args);
        sql.push(format!("category = {p}"));
    }
    if let Some(s) = f.severity {
        let p = arg(SqlValue::Text(s.as_str().into()), &mut args);
        sql.push(format!("severity = {p}"));
    }
    if let Some(d) = &f.assigned_dept {
        let p = arg(SqlValue::Text(d.as_str().into()), &mut args);
        sql.push(format!("assigned_dept = {p}"));
    }
    if let Some(u) = &f.reporter {
        let p = arg(SqlValue::Text(u.as_str().into()), &mut args);
        sql.push(format!("reporter = {p}"));
    }
    if let Some(c) = f.channel {
        let p = arg(SqlValue::Text(c.as_str().into()), &mut args);
        sql.push(format!("channel = {p}"));
    }
    if let Some(id) = &f.about {
        let p = arg(SqlValue::Text(id.as_str().into()), &mut args);
        sql.push(match id.kind() {
            DocKind::Place => format!("place = {p}"),
            DocKind::Person => {
                format!("doc_id IN (SELECT doc_id FROM case_persons WHERE person = {p})")
            }
            _ => "0".to_owned(),
        });
    }
    if let Some(now) = f.overdue_at {
        let p = arg(SqlValue::Integer(ms(now)), &mut args);
        sql.push(format!("status = 'dispatched' AND deadline_ms < {p}"));
    }
    if let Some(text) = &f.text {
        let expr = search::match_expression(text)?;
        let p = arg(SqlValue::Text(expr), &mut args);
        sql.push(format!(
            "cases.rowid IN (SELECT rowid FROM case_search WHERE case_search MATCH {p})"
        ));
    }
    if f.conflicts_only {
        sql.push("has_conflict = 1".into());
    }
    if let Some(t) = f.reported_from {
        let p = arg(SqlValue::Integer(ms(t)), &mut args);
        sql.push(format!("created_ms >= {p}"));
    }
    if let Some(t) = f.reported_before {
        let p = arg(SqlValue::Integer(ms(t)), &mut args);
        sql.push(format!("created_ms < {p}"));
    }
    Ok((sql.join(" AND "), args))
}

fn parse_col<T: std::str::FromStr>(s: String) -> rusqlite::Result<T> {
    s.parse().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, "bad id".into())
    })
}

/// List cases matching `f`, newest first (most overdue first when filtering overdue).
/// Most cases a map shows as markers (the newest); its counts cover them all.
pub const MAX_MAP_POINTS: u32 = 5_000;

/// A case on a map: where it is and what state it is in.
#[derive(Clone, Debug, PartialEq)]
pub struct CasePoint {
    /// Document id.
    pub id: DocId,
    /// Title.
    pub title: String,
    /// Status.
    pub status: Status,
    /// Latitude, WGS-84.
    pub lat: f64,
    /// Longitude, WGS-84.
    pub lon: f64,
}

/// The cases a filter selects as a map shows them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CaseMap {
    /// The newest [`MAX_MAP_POINTS`] that have a position.
    pub points: Vec<CasePoint>,
    /// How many there are per grid (with a position or not), by grid code.
    pub per_grid: Vec<(RegionCode, u64)>,
}

/// The cases `f` selects as a map shows them (see [`CaseMap`]).
pub(crate) fn case_map(tx: &Transaction<'_>, f: &CaseFilter) -> Result<CaseMap> {
    let (cond, mut args) = where_clause(f)?;
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT grid, count(*) FROM cases WHERE {cond} GROUP BY grid ORDER BY grid"
    ))?;
    let per_grid = stmt
        .query_map(params_from_iter(args.iter()), |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?
        .filter_map(|row| match row {
            Ok((grid, n)) => grid.parse().ok().map(|g| Ok((g, n.max(0) as u64))),
            Err(e) => Some(Err(e)),
        })
        .collect::<rusqlite::Result<Vec<_>>>()?;
    args.push(SqlValue::Integer(MAX_MAP_POINTS.into()));
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT doc_id, title, status, lat, lon FROM cases
         WHERE {cond} AND lat IS NOT NULL AND lon IS NOT NULL
         ORDER BY created_ms DESC, doc_id LIMIT ?{}",
        args.len()
    ))?;
    let rows = stmt
        .query_map(params_from_iter(args), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, f64>(3)?,
                r.get::<_, f64>(4)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    // A row this code did not write (another version's status) is left off.
    let points = rows
        .into_iter()
        .filter_map(|(id, title, status, lat, lon)| {
            Some(CasePoint {
                id: id.parse().ok()?,
                title,
                status: Status::parse(&status)?,
                lat,
                lon,
            })
        })
        .collect();
    Ok(CaseMap { points, per_grid })
}

pub(crate) fn list_cases(tx: &Transaction<'_>, f: &CaseFilter) -> Result<Vec<CaseSummary>> {
    let (cond, mut args) = where_clause(f)?;
    let order = if f.overdue_at.is_some() {
        "deadline_ms ASC"
    } else {
        "created_ms DESC"
    };
    let limit = match f.limit {
        0 => 100,
        n => n.min(MAX_PAGE),
    };
    args.push(SqlValue::Integer(limit.into()));
    args.push(SqlValue::Integer(f.offset.into()));
    let n = args.len();
    let sql = format!(
        "SELECT doc_id, title, status, grid, level, category, subcategory, severity, reporter,
            assigned_dept, deadline_ms, supervision, has_conflict, photo_count, created_ms,
            updated_ms, channel
         FROM cases WHERE {cond} ORDER BY {order}, doc_id LIMIT ?{} OFFSET ?{n}",
        n - 1
    );
    let mut stmt = tx.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), |r| {
        let status: String = r.get(2)?;
        let level: String = r.get(4)?;
        let severity: String = r.get(7)?;
        let bad = || {
            rusqlite::Error::FromSqlConversionFailure(
                2,
                rusqlite::types::Type::Text,
                "bad enum".into(),
            )
        };
        Ok(CaseSummary {
            id: parse_col(r.get(0)?)?,
            title: r.get(1)?,
            status: Status::parse(&status).ok_or_else(bad)?,
            grid: parse_col(r.get(3)?)?,
            level: level.parse().map_err(|_| bad())?,
            category: parse_col(r.get(5)?)?,
            subcategory: r.get::<_, Option<String>>(6)?.map(parse_col).transpose()?,
            severity: Severity::parse(&severity).ok_or_else(bad)?,
            reporter: parse_col(r.get(8)?)?,
            assigned_dept: r.get::<_, Option<String>>(9)?.map(parse_col).transpose()?,
            deadline: r.get::<_, Option<i64>>(10)?.map(time),
            supervision: r
                .get::<_, Option<i64>>(11)?
                .and_then(SupervisionLevel::from_number),
            has_conflict: r.get(12)?,
            photo_count: r.get(13)?,
            created: time(r.get(14)?),
            updated: time(r.get(15)?),
            channel: Channel::parse(&r.get::<_, String>(16)?),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Count cases matching `f` by status (statuses with no case are left out).
pub(crate) fn count_by_status(tx: &Transaction<'_>, f: &CaseFilter) -> Result<Vec<(Status, u64)>> {
    let (cond, args) = where_clause(f)?;
    let sql = format!("SELECT status, count(*) FROM cases WHERE {cond} GROUP BY status");
    let mut stmt = tx.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (s, n) = row?;
        let status = Status::parse(&s)
            .ok_or_else(|| Error::InvalidInput(format!("unknown status {s} in index")))?;
        out.push((status, n.max(0) as u64));
    }
    out.sort_by_key(|(s, _)| Status::ALL.iter().position(|x| x == s));
    Ok(out)
}

/// One worker's patrols on one day, against "two patrols a day, each at least two hours".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DailyCompliance {
    /// The worker.
    pub worker: UserId,
    /// The day (China Standard Time).
    pub day: NaiveDate,
    /// Patrols ended that started that day.
    pub patrols: u32,
    /// Of those, patrols of at least two hours.
    pub qualifying: u32,
    /// Total patrol minutes.
    pub minutes: u32,
    /// Whether two qualifying patrols were made.
    pub compliant: bool,
}

/// Patrols a day need, and how long each.
pub const PATROLS_PER_DAY: u32 = 2;
/// Minimum length of a qualifying patrol, in minutes.
pub const MIN_PATROL_MINUTES: i64 = 120;

/// Compliance for each worker on each day in `from..=to`, zero-filled.
pub(crate) fn patrol_compliance(
    tx: &Transaction<'_>,
    workers: &[UserId],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<DailyCompliance>> {
    let mut stmt = tx.prepare_cached(
        "SELECT day, count(*), sum(ended_ms - started_ms >= ?4),
                sum(ended_ms - started_ms) / 60000
         FROM patrols
         WHERE worker = ?1 AND day BETWEEN ?2 AND ?3 AND ended_ms IS NOT NULL
         GROUP BY day",
    )?;
    let mut out = Vec::new();
    for worker in workers {
        let mut found = std::collections::HashMap::new();
        let rows = stmt.query_map(
            params![
                worker.as_str(),
                from.to_string(),
                to.to_string(),
                MIN_PATROL_MINUTES * 60_000
            ],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    (
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                    ),
                ))
            },
        )?;
        for row in rows {
            let (day, v) = row?;
            found.insert(day, v);
        }
        for day in from.iter_days().take_while(|d| *d <= to) {
            let (patrols, qualifying, minutes) =
                found.get(&day.to_string()).copied().unwrap_or_default();
            let qualifying = qualifying.max(0) as u32;
            out.push(DailyCompliance {
                worker: worker.clone(),
                day,
                patrols: patrols.max(0) as u32,
                qualifying,
                minutes: minutes.max(0) as u32,
                compliant: qualifying >= PATROLS_PER_DAY,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A filter naming a department, and the overdue list, find their rows through
    /// the partial indexes that leave undispatched cases out (schema step 12).
    #[test]
    fn department_and_overdue_filters_use_their_partial_indexes() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::schema::migrate(&mut conn, 0).unwrap();
        let tx = conn.transaction().unwrap();
        let filters = [
            (
                CaseFilter {
                    assigned_dept: Some("water".parse().unwrap()),
                    ..Default::default()
                },
                "cases_dept",
            ),
            (
                CaseFilter {
                    overdue_at: Some(Utc::now()),
                    ..Default::default()
                },
                "cases_deadline",
            ),
        ];
        for (f, index) in filters {
            let (cond, args) = where_clause(&f).unwrap();
            let plan: Vec<String> = tx
                .prepare(&format!(
                    "EXPLAIN QUERY PLAN SELECT doc_id FROM cases WHERE {cond}"
                ))
                .unwrap()
                .query_map(params_from_iter(args), |r| r.get(3))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            assert!(
                plan.iter()
                    .any(|step| step.contains(&format!("INDEX {index} "))),
                "{index}: {plan:?}"
            );
        }
    }
}
