//! The places' index: a row per place and per safety inspection, folded from the
//! places' documents like the other base data, so lists, rental figures and a
//! place's page never load a document.

use chrono::{DateTime, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, OptionalExtension, Transaction};

use crate::doc::place::{Occupancy, PlaceDoc, PlaceKind};
use crate::error::{Error, Result};
use crate::ids::{DocId, RegionCode};
use crate::index::MAX_PAGE;
use crate::registry::{like_escape, parse, MAX_QUERY_CHARS};

/// Upsert a place's row and its inspections' rows.
pub(crate) fn index_place(tx: &Transaction<'_>, p: &PlaceDoc, updated_ms: i64) -> Result<()> {
    let org = p.org.as_ref();
    tx.prepare_cached(
        "INSERT INTO places (doc_id, grid, kind, name, address, within, occupancy, org_type,
            credit_code, contact, lat, lon, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (doc_id) DO UPDATE SET grid = excluded.grid, kind = excluded.kind,
            name = excluded.name, address = excluded.address, within = excluded.within,
            occupancy = excluded.occupancy, org_type = excluded.org_type,
            credit_code = excluded.credit_code, contact = excluded.contact,
            lat = excluded.lat, lon = excluded.lon, updated_ms = excluded.updated_ms",
    )?
    .execute(params![
        p.id.as_str(),
        p.grid.as_str(),
        p.kind.as_str(),
        p.name,
        p.address,
        p.within.as_ref().map(DocId::as_str),
        p.occupancy.map(Occupancy::as_str),
        org.map(|o| o.org_type.as_str()),
        org.and_then(|o| o.credit_code.as_ref()).map(|c| c.as_str()),
        org.and_then(|o| o.contact.as_ref()).map(DocId::as_str),
        p.location.map(|l| l.0),
        p.location.map(|l| l.1),
        updated_ms,
    ])?;
    tx.prepare_cached("DELETE FROM inspections WHERE doc_id = ?1")?
        .execute([p.id.as_str()])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO inspections (doc_id, n, worker, grid, at_ms, passed)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (n, i) in p.inspections.iter().enumerate() {
        insert.execute(params![
            p.id.as_str(),
            n as i64,
            i.by.as_str(),
            p.grid.as_str(),
            i.at.timestamp_millis(),
            i.passed,
        ])?;
    }
    Ok(())
}

/// Which places a list shows.
#[derive(Clone, Default, PartialEq)]
pub struct PlaceFilter {
    /// Places of this region (a grid, or a larger region's grids).
    pub region: Option<RegionCode>,
    /// Of this kind.
    pub kind: Option<PlaceKind>,
    /// Dwellings lived in this way (出租: the rental housing).
    pub occupancy: Option<Occupancy>,
    /// Part of the name or the address.
    pub text: Option<String>,
    /// In this building.
    pub within: Option<DocId>,
    /// Most rows returned (at most [`MAX_PAGE`]; 0 means 50).
    pub limit: u32,
    /// Rows skipped.
    pub offset: u32,
}

/// A place as lists show it.
#[derive(Clone, Debug, PartialEq)]
pub struct PlaceSummary {
    /// Document id.
    pub id: DocId,
    /// The grid.
    pub grid: RegionCode,
    /// What it is.
    pub kind: PlaceKind,
    /// Its name.
    pub name: String,
    /// Its address.
    pub address: String,
    /// How a dwelling is lived in.
    pub occupancy: Option<Occupancy>,
    /// The organisation's type, for a shop or an enterprise.
    pub org_type: Option<String>,
    /// Where (WGS-84).
    pub location: Option<(f64, f64)>,
    /// The last safety inspection: when, and whether it passed.
    pub last_inspection: Option<(DateTime<Utc>, bool)>,
}

impl std::fmt::Debug for PlaceFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlaceFilter")
            .field("region", &self.region)
            .field("kind", &self.kind)
            .field("occupancy", &self.occupancy)
            .field("within", &self.within)
            .finish_non_exhaustive()
    }
}

/// The places `f` selects, ordered by grid, kind and name.
pub(crate) fn list_places(tx: &Transaction<'_>, f: &PlaceFilter) -> Result<Vec<PlaceSummary>> {
    let mut clauses = Vec::new();
    let mut args: Vec<SqlValue> = Vec::new();
    if let Some(region) = &f.region {
        clauses.push("grid LIKE ? ESCAPE '\\'");
        args.push(format!("{}%", like_escape(region.as_str())).into());
    }
    if let Some(kind) = f.kind {
        clauses.push("kind = ?");
        args.push(kind.as_str().to_owned().into());
    }
    if let Some(o) = f.occupancy {
        clauses.push("occupancy = ?");
        args.push(o.as_str().to_owned().into());
    }
    if let Some(text) = f.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        if text.chars().count() > MAX_QUERY_CHARS {
            return Err(Error::InvalidInput(format!(
                "a name or address query is at most {MAX_QUERY_CHARS} characters"
            )));
        }
        clauses.push("(name LIKE ? ESCAPE '\\' OR address LIKE ? ESCAPE '\\')");
        let pattern = format!("%{}%", like_escape(text));
        args.push(pattern.clone().into());
        args.push(pattern.into());
    }
    if let Some(w) = &f.within {
        clauses.push("within = ?");
        args.push(w.as_str().to_owned().into());
    }
    let limit = match f.limit {
        0 => 50,
        n => n.min(MAX_PAGE),
    };
    let sql = format!(
        "SELECT doc_id, grid, kind, name, address, occupancy, org_type, lat, lon,
                (SELECT at_ms || ':' || passed FROM inspections i
                  WHERE i.doc_id = places.doc_id ORDER BY n DESC LIMIT 1)
           FROM places {} {} ORDER BY grid, kind, name, doc_id LIMIT {limit} OFFSET {}",
        if clauses.is_empty() { "" } else { "WHERE" },
        clauses.join(" AND "),
        f.offset
    );
    let rows = tx
        .prepare(&sql)?
        .query_map(params_from_iter(args), |r| {
            let bad = |i| {
                rusqlite::Error::InvalidColumnType(i, "value".into(), rusqlite::types::Type::Text)
            };
            let last: Option<String> = r.get(9)?;
            let last_inspection = last.and_then(|s| {
                let (at, passed) = s.split_once(':')?;
                Some((
                    DateTime::from_timestamp_millis(at.parse().ok()?)?,
                    passed == "1",
                ))
            });
            Ok(PlaceSummary {
                id: parse(r.get(0)?)?,
                grid: parse(r.get(1)?)?,
                kind: PlaceKind::parse(&r.get::<_, String>(2)?).ok_or_else(|| bad(2))?,
                name: r.get(3)?,
                address: r.get(4)?,
                occupancy: r
                    .get::<_, Option<String>>(5)?
                    .map(|o| Occupancy::parse(&o).ok_or_else(|| bad(5)))
                    .transpose()?,
                org_type: r.get(6)?,
                location: match (r.get(7)?, r.get(8)?) {
                    (Some(lat), Some(lon)) => Some((lat, lon)),
                    _ => None,
                },
                last_inspection,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Where a place is: what a case reported there, or a household living there,
/// takes from it.
pub(crate) struct PlaceRow {
    /// Its grid.
    pub grid: RegionCode,
    /// What it is.
    pub kind: Option<PlaceKind>,
    /// Its address.
    pub address: String,
    /// Its position, if known.
    pub location: Option<(f64, f64)>,
}

/// A place's row.
pub(crate) fn place_row(tx: &Transaction<'_>, id: &DocId) -> Result<Option<PlaceRow>> {
    Ok(tx
        .prepare_cached("SELECT grid, address, lat, lon, kind FROM places WHERE doc_id = ?1")?
        .query_row([id.as_str()], |r| {
            Ok(PlaceRow {
                grid: parse(r.get(0)?)?,
                kind: PlaceKind::parse(&r.get::<_, String>(4)?),
                address: r.get(1)?,
                location: match (r.get(2)?, r.get(3)?) {
                    (Some(lat), Some(lon)) => Some((lat, lon)),
                    _ => None,
                },
            })
        })
        .optional()?)
}

/// A grid's places: how many, rental housing (出租房) and the households and
/// persons living in it, and organisations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlaceCounts {
    /// Places registered.
    pub places: u64,
    /// Dwellings rented out.
    pub rented: u64,
    /// Households living in rented dwellings, still in the grid.
    pub tenant_households: u64,
    /// Persons of those households.
    pub tenants: u64,
    /// Shops and enterprises.
    pub organisations: u64,
}

/// The place counts of every grid of `region` that has places, by grid code.
pub(crate) fn place_counts(
    tx: &Transaction<'_>,
    region: &RegionCode,
) -> Result<Vec<(String, PlaceCounts)>> {
    let prefix = format!("{}%", like_escape(region.as_str()));
    let rows = tx
        .prepare(
            "SELECT p.grid, count(*), sum(p.occupancy IS 'rented'),
                    sum(p.kind IN ('shop', 'enterprise')),
                    (SELECT count(*) FROM households h JOIN places r ON r.doc_id = h.place
                      WHERE r.grid = p.grid AND r.occupancy = 'rented' AND h.left_ms IS NULL),
                    (SELECT count(*) FROM persons m JOIN households h ON h.doc_id = m.household
                       JOIN places r ON r.doc_id = h.place
                      WHERE r.grid = p.grid AND r.occupancy = 'rented' AND h.left_ms IS NULL)
               FROM places p WHERE p.grid LIKE ?1 ESCAPE '\\' GROUP BY p.grid ORDER BY p.grid",
        )?
        .query_map([&prefix], |r| {
            let n = |i| r.get::<_, i64>(i).map(|v| v as u64);
            Ok((
                r.get(0)?,
                PlaceCounts {
                    places: n(1)?,
                    rented: n(2)?,
                    organisations: n(3)?,
                    tenant_households: n(4)?,
                    tenants: n(5)?,
                },
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}
