//! The base data's index: a row per person and per household, folded from their
//! documents like cases are, so lists and searches never load a document.
//!
//! The rows hold what a list shows and nothing more: ID and phone numbers only
//! masked (plus the last six ID characters, for a search by "the last digits"),
//! never in full. The full numbers stay in the documents, read one at a time on a
//! detail view by a role that may see them.

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, OptionalExtension, Transaction};

use chrono::{DateTime, Datelike, Utc};

use crate::doc::registry::{HouseholdDoc, PersonDoc, Tag};
use crate::error::{Error, Result};
use crate::ids::{DocId, RegionCode};
use crate::index::MAX_PAGE;
use crate::pii::{ResidentId, Sex};
use crate::places::PlaceCounts;

/// Longest name or address query, in characters.
pub const MAX_QUERY_CHARS: usize = 50;

/// Upsert a person's row.
pub(crate) fn index_person(tx: &Transaction<'_>, p: &PersonDoc, updated_ms: i64) -> Result<()> {
    let tags: Vec<&str> = p.tags.iter().map(|t| t.as_str()).collect();
    tx.prepare_cached(
        "INSERT INTO persons (doc_id, grid, name, sex, born_year, id_masked, id_suffix, phone_masked,
            household, relation, tags, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (doc_id) DO UPDATE SET grid = excluded.grid, name = excluded.name,
            sex = excluded.sex, born_year = excluded.born_year, id_masked = excluded.id_masked,
            id_suffix = excluded.id_suffix, phone_masked = excluded.phone_masked,
            household = excluded.household, relation = excluded.relation,
            tags = excluded.tags, updated_ms = excluded.updated_ms",
    )?
    .execute(params![
        p.id.as_str(),
        p.grid.as_str(),
        p.name,
        p.sex.map(|s| match s {
            Sex::Male => "male",
            Sex::Female => "female",
        }),
        // The year only: with the masked ID number's first and last four, a whole
        // birth date would leave two digits to guess (the grid code gives them).
        p.born.map(|b| b.year()),
        p.id_number.as_ref().map(ResidentId::masked),
        // Reversed, so "ends with" is a prefix range the index answers.
        p.id_number
            .as_ref()
            .map(|i| i.suffix(6).chars().rev().collect::<String>()),
        p.phone.as_ref().map(|ph| ph.masked()),
        p.household.as_ref().map(|(h, _)| h.as_str()),
        p.household.as_ref().map(|(_, r)| r.as_str()),
        // Comma-delimited at both ends, so a tag is matched whole.
        format!(",{},", tags.join(",")),
        updated_ms,
    ])?;
    Ok(())
}

/// Upsert a household's row.
pub(crate) fn index_household(
    tx: &Transaction<'_>,
    h: &HouseholdDoc,
    updated_ms: i64,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO households (doc_id, grid, address, head, left_ms, updated_ms, place)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (doc_id) DO UPDATE SET grid = excluded.grid, address = excluded.address,
            head = excluded.head, left_ms = excluded.left_ms, updated_ms = excluded.updated_ms,
            place = excluded.place",
    )?
    .execute(params![
        h.id.as_str(),
        h.grid.as_str(),
        h.address,
        h.head.as_ref().map(DocId::as_str),
        h.left.map(|t| t.timestamp_millis()),
        updated_ms,
        h.place.as_ref().map(DocId::as_str),
    ])?;
    tx.prepare_cached("DELETE FROM visits WHERE doc_id = ?1")?
        .execute([h.id.as_str()])?;
    let mut visit = tx.prepare_cached(
        "INSERT INTO visits (doc_id, n, worker, grid, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (n, v) in h.visits.iter().enumerate() {
        visit.execute(params![
            h.id.as_str(),
            n as i64,
            v.by.as_str(),
            h.grid.as_str(),
            v.at.timestamp_millis(),
        ])?;
    }
    Ok(())
}

/// Which persons a list shows.
#[derive(Clone, Default, PartialEq)]
pub struct PersonFilter {
    /// Persons of this region (a grid, or a larger region's grids).
    pub region: Option<RegionCode>,
    /// Part of the name (two Chinese characters are enough).
    pub name: Option<String>,
    /// The last digits of the ID number (1 to 6 characters).
    pub id_suffix: Option<String>,
    /// Persons with this special-group tag.
    pub tag: Option<Tag>,
    /// Members of this household.
    pub household: Option<DocId>,
    /// Persons whose household lives at this place (a dwelling's residents or
    /// tenants).
    pub place: Option<DocId>,
    /// Most rows returned (at most [`MAX_PAGE`]; 0 means 50).
    pub limit: u32,
    /// Rows skipped.
    pub offset: u32,
}

/// A person as lists show them: ID and phone numbers masked.
#[derive(Clone, PartialEq)]
pub struct PersonSummary {
    /// Document id.
    pub id: DocId,
    /// The grid.
    pub grid: RegionCode,
    /// Name.
    pub name: String,
    /// Sex.
    pub sex: Option<Sex>,
    /// Birth year (the whole date only on a detail view: with the masked ID
    /// number it would give the number away).
    pub birth_year: Option<i32>,
    /// `3301**********1234`.
    pub id_masked: Option<String>,
    /// `138****5678`.
    pub phone_masked: Option<String>,
    /// The household and the relationship to its head.
    pub household: Option<(DocId, String)>,
    /// Special groups.
    pub tags: Vec<Tag>,
}

// Debug prints ids, never a name, a query or a masked number.

impl std::fmt::Debug for PersonFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonFilter")
            .field("region", &self.region)
            .field("tag", &self.tag)
            .field("household", &self.household)
            .field("limit", &self.limit)
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for PersonSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonSummary")
            .field("id", &self.id)
            .field("grid", &self.grid)
            .finish_non_exhaustive()
    }
}

pub(crate) fn like_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

pub(crate) fn parse<T: std::str::FromStr>(s: String) -> rusqlite::Result<T> {
    s.parse().map_err(|_| {
        rusqlite::Error::InvalidColumnType(0, "id".into(), rusqlite::types::Type::Text)
    })
}

/// The persons `f` selects, ordered by grid and name.
pub(crate) fn list_persons(tx: &Transaction<'_>, f: &PersonFilter) -> Result<Vec<PersonSummary>> {
    let mut clauses = Vec::new();
    let mut args: Vec<SqlValue> = Vec::new();
    let searching = f.name.is_some() || f.id_suffix.is_some();
    if let Some(region) = &f.region {
        // Grid codes extend their region's code. While searching, the region is a
        // filter on the rows found (`+grid`), not the index walked: walking a
        // town's grids in name order to find a few rows reads every row.
        clauses.push(if searching {
            "+grid LIKE ? ESCAPE '\\'"
        } else {
            "grid LIKE ? ESCAPE '\\'"
        });
        args.push(format!("{}%", like_escape(region.as_str())).into());
    }
    if let Some(name) = f.name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        if name.chars().count() > MAX_QUERY_CHARS {
            return Err(Error::InvalidInput(format!(
                "a name query is at most {MAX_QUERY_CHARS} characters"
            )));
        }
        clauses.push("name LIKE ? ESCAPE '\\'");
        args.push(format!("%{}%", like_escape(name)).into());
    }
    if let Some(suffix) = f.id_suffix.as_deref().map(str::trim) {
        let ok = (1..=6).contains(&suffix.len())
            && suffix
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'X' || b == b'x');
        if !ok {
            return Err(Error::InvalidInput(
                "the last digits of an ID number are 1 to 6 digits (or X)".into(),
            ));
        }
        // `id_suffix` holds the last six characters reversed.
        let reversed: String = suffix.to_ascii_uppercase().chars().rev().collect();
        clauses.push("id_suffix >= ? AND id_suffix < ?");
        args.push(reversed.clone().into());
        args.push(format!("{reversed}~").into());
    }
    if let Some(tag) = f.tag {
        clauses.push("tags LIKE ?");
        args.push(format!("%,{},%", tag.as_str()).into());
    }
    if let Some(h) = &f.household {
        clauses.push("household = ?");
        args.push(h.as_str().to_owned().into());
    }
    if let Some(p) = &f.place {
        clauses.push("household IN (SELECT doc_id FROM households WHERE place = ?)");
        args.push(p.as_str().to_owned().into());
    }
    let limit = match f.limit {
        0 => 50,
        n => n.min(MAX_PAGE),
    };
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM persons {} {} ORDER BY grid, name, doc_id
          LIMIT {limit} OFFSET {}",
        if clauses.is_empty() { "" } else { "WHERE" },
        clauses.join(" AND "),
        f.offset
    );
    let rows = tx
        .prepare(&sql)?
        .query_map(params_from_iter(args), summary)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// The `persons` columns [`summary`] reads, in its order.
const SUMMARY_COLUMNS: &str =
    "doc_id, grid, name, sex, born_year, id_masked, phone_masked, household, relation, tags";

/// A list row from the first columns of `r`, as [`SUMMARY_COLUMNS`] orders them.
fn summary(r: &rusqlite::Row<'_>) -> rusqlite::Result<PersonSummary> {
    let household: Option<String> = r.get(7)?;
    let relation: Option<String> = r.get(8)?;
    let tags: String = r.get(9)?;
    Ok(PersonSummary {
        id: parse(r.get(0)?)?,
        grid: parse(r.get(1)?)?,
        name: r.get(2)?,
        sex: r
            .get::<_, Option<String>>(3)?
            .and_then(|s| match s.as_str() {
                "male" => Some(Sex::Male),
                "female" => Some(Sex::Female),
                _ => None,
            }),
        birth_year: r.get(4)?,
        id_masked: r.get(5)?,
        phone_masked: r.get(6)?,
        household: household
            .map(|h| Ok::<_, rusqlite::Error>((parse(h)?, relation.unwrap_or_default())))
            .transpose()?,
        tags: tags.split(',').filter_map(Tag::parse).collect(),
    })
}

/// A household's row: its grid, address, head and when it left.
pub(crate) fn household_row(
    tx: &Transaction<'_>,
    id: &DocId,
) -> Result<Option<(RegionCode, Option<i64>)>> {
    Ok(tx
        .prepare_cached("SELECT grid, left_ms FROM households WHERE doc_id = ?1")?
        .query_row([id.as_str()], |r| Ok((parse(r.get(0)?)?, r.get(1)?)))
        .optional()?)
}

/// What a grid holds: persons, households still in it, persons per special
/// group, and its places.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GridCounts {
    /// The grid.
    pub grid: String,
    /// Persons registered in it.
    pub persons: u64,
    /// Households that have not left it.
    pub households: u64,
    /// Persons per special group, in [`Tag::ALL`] order.
    pub tags: Vec<(Tag, u64)>,
    /// Places, rental housing and its tenants, organisations.
    pub places: PlaceCounts,
}

/// The counts of every grid of `region` that holds any base data, by grid code.
pub(crate) fn counts(tx: &Transaction<'_>, region: &RegionCode) -> Result<Vec<GridCounts>> {
    let prefix = format!("{}%", like_escape(region.as_str()));
    let tag_sums: String = Tag::ALL
        .iter()
        .map(|t| format!(", sum(tags LIKE '%,{},%')", t.as_str()))
        .collect();
    let mut by_grid: Vec<GridCounts> = tx
        .prepare(&format!(
            "SELECT grid, count(*){tag_sums} FROM persons
              WHERE grid LIKE ?1 ESCAPE '\\' GROUP BY grid"
        ))?
        .query_map([&prefix], |r| {
            Ok(GridCounts {
                grid: r.get(0)?,
                persons: r.get::<_, i64>(1)? as u64,
                households: 0,
                places: PlaceCounts::default(),
                tags: Tag::ALL
                    .iter()
                    .enumerate()
                    .map(|(i, t)| Ok((*t, r.get::<_, i64>(i + 2)? as u64)))
                    .collect::<rusqlite::Result<_>>()?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let households: Vec<(String, i64)> = tx
        .prepare(
            "SELECT grid, count(*) FROM households
              WHERE grid LIKE ?1 ESCAPE '\\' AND left_ms IS NULL GROUP BY grid",
        )?
        .query_map([&prefix], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut grid_row = |grid: String| -> usize {
        match by_grid.iter().position(|g| g.grid == grid) {
            Some(i) => i,
            None => {
                by_grid.push(GridCounts {
                    grid,
                    tags: Tag::ALL.iter().map(|t| (*t, 0)).collect(),
                    ..Default::default()
                });
                by_grid.len() - 1
            }
        }
    };
    let mut rows = Vec::new();
    for (grid, n) in households {
        rows.push((grid_row(grid), Some(n as u64), None));
    }
    for (grid, places) in crate::places::place_counts(tx, region)? {
        rows.push((grid_row(grid), None, Some(places)));
    }
    for (i, households, places) in rows {
        if let Some(n) = households {
            by_grid[i].households = n;
        }
        if let Some(p) = places {
            by_grid[i].places = p;
        }
    }
    by_grid.sort_by(|a, b| a.grid.cmp(&b.grid));
    Ok(by_grid)
}

/// A person due for a visit.
#[derive(Clone, Debug, PartialEq)]
pub struct DueVisit {
    /// The person, as lists show them.
    pub person: PersonSummary,
    /// Days between visits: the most frequent rule of the person's groups.
    pub every_days: u32,
    /// The household's last visit, if any.
    pub last_visit: Option<DateTime<Utc>>,
}

/// Persons of `region` in a special group with a visit rule whose household has
/// had no visit within the rule's days at `now` (or none ever): never visited
/// first, then the longest since. Persons of households that left are not due.
pub(crate) fn due_visits(
    tx: &Transaction<'_>,
    region: &RegionCode,
    now: DateTime<Utc>,
    every_days: impl Fn(Tag) -> Option<u32>,
) -> Result<Vec<DueVisit>> {
    let prefix = format!("{}%", like_escape(region.as_str()));
    let columns: Vec<String> = SUMMARY_COLUMNS
        .split(", ")
        .map(|c| format!("p.{c}"))
        .collect();
    let sql = format!(
        "SELECT {}, (SELECT max(v.at_ms) FROM visits v WHERE v.doc_id = p.household)
           FROM persons p LEFT JOIN households h ON h.doc_id = p.household
          WHERE p.grid LIKE ?1 ESCAPE '\\' AND p.tags != ',,' AND h.left_ms IS NULL",
        columns.join(", ")
    );
    let rows = tx
        .prepare(&sql)?
        .query_map([&prefix], |r| {
            Ok((summary(r)?, r.get::<_, Option<i64>>(10)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut due: Vec<DueVisit> = rows
        .into_iter()
        .filter_map(|(person, last)| {
            let days = person.tags.iter().filter_map(|t| every_days(*t)).min()?;
            let last_visit = last.and_then(DateTime::from_timestamp_millis);
            let recent = last_visit.is_some_and(|l| now - l < chrono::Duration::days(days.into()));
            (!recent).then_some(DueVisit {
                person,
                every_days: days,
                last_visit,
            })
        })
        .collect();
    due.sort_by(|a, b| {
        (a.last_visit, &a.person.grid, &a.person.name).cmp(&(
            b.last_visit,
            &b.person.grid,
            &b.person.name,
        ))
    });
    Ok(due)
}

/// A grid's visits over a period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GridCoverage {
    /// The grid.
    pub grid: String,
    /// Households registered in it and not left.
    pub households: u64,
    /// Of them, households visited in the period.
    pub visited: u64,
}

/// A worker's visits over a period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerCoverage {
    /// The worker.
    pub worker: String,
    /// Visits made.
    pub visits: u64,
    /// Different households visited.
    pub households: u64,
}

/// Visit coverage of the grids of `region` from `from` up to `to`: per grid, and
/// per worker who visited.
pub(crate) fn visit_coverage(
    tx: &Transaction<'_>,
    region: &RegionCode,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<(Vec<GridCoverage>, Vec<WorkerCoverage>)> {
    let prefix = format!("{}%", like_escape(region.as_str()));
    let (from, to) = (from.timestamp_millis(), to.timestamp_millis());
    let grids = tx
        .prepare(
            "SELECT h.grid, count(*),
                    sum(EXISTS (SELECT 1 FROM visits v WHERE v.doc_id = h.doc_id
                                   AND v.at_ms >= ?2 AND v.at_ms < ?3))
               FROM households h
              WHERE h.grid LIKE ?1 ESCAPE '\\' AND h.left_ms IS NULL
              GROUP BY h.grid ORDER BY h.grid",
        )?
        .query_map(params![prefix, from, to], |r| {
            Ok(GridCoverage {
                grid: r.get(0)?,
                households: r.get::<_, i64>(1)? as u64,
                visited: r.get::<_, i64>(2)? as u64,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let workers = tx
        .prepare(
            "SELECT worker, count(*), count(DISTINCT doc_id) FROM visits
              WHERE grid LIKE ?1 ESCAPE '\\' AND at_ms >= ?2 AND at_ms < ?3
              GROUP BY worker ORDER BY worker",
        )?
        .query_map(params![prefix, from, to], |r| {
            Ok(WorkerCoverage {
                worker: r.get(0)?,
                visits: r.get::<_, i64>(1)? as u64,
                households: r.get::<_, i64>(2)? as u64,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok((grids, workers))
}
