//! The command centre's figures, from the index tables (no document is loaded):
//! how many cases were reported, accepted, closed, closed on time, handled on the
//! spot, and how satisfied residents were, at which level cases were closed
//! (分级处置: grid, community, town, district) and how many were sent up; per
//! category and month, per grid and per reporter. Every figure is over the cases a [`CaseFilter`] selects (a region, a
//! reporting period), so the same rules decide what a user may count as what they
//! may list.

use rusqlite::{params_from_iter, Transaction};

use crate::error::Result;
use crate::ids::RegionLevel;
use crate::index::{local_offset, where_clause, CaseFilter};

/// The loop's figures over a set of cases.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Cases reported.
    pub reported: u64,
    /// Of them, marked not a real case (left out of every rate).
    pub invalid: u64,
    /// Accepted or dispatched by a dispatcher, or handled on the spot.
    pub accepted: u64,
    /// Archived or evaluated.
    pub closed: u64,
    /// Closed, and handled by the deadline of their dispatch (or on the spot).
    pub closed_on_time: u64,
    /// Handled on the spot by the grid worker (自办).
    pub self_handled: u64,
    /// Evaluated on a return visit.
    pub evaluated: u64,
    /// Sum of the satisfaction scores (1–5) of the evaluated cases.
    pub satisfaction_sum: u64,
    /// Evaluated as satisfied (4 or 5).
    pub satisfied: u64,
    /// Closed cases by the level that closed them, in [`LEVELS`] order: handled
    /// on the spot in the grid (小事不出网格), by the community, the town (street),
    /// the district, the city.
    pub closed_at: [u64; 5],
    /// Valid cases sent up at least once (上报).
    pub escalated: u64,
}

/// The levels of [`Summary::closed_at`], lowest first.
pub const LEVELS: [RegionLevel; 5] = [
    RegionLevel::Grid,
    RegionLevel::Community,
    RegionLevel::Town,
    RegionLevel::District,
    RegionLevel::City,
];

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

impl Summary {
    /// Cases that count: reported and not invalid.
    pub fn valid(&self) -> u64 {
        self.reported.saturating_sub(self.invalid)
    }
    /// 受理率: accepted ÷ valid.
    pub fn acceptance_rate(&self) -> Option<f64> {
        ratio(self.accepted, self.valid())
    }
    /// 结案率: closed ÷ valid.
    pub fn closure_rate(&self) -> Option<f64> {
        ratio(self.closed, self.valid())
    }
    /// 按期结案率: closed on time ÷ closed.
    pub fn on_time_rate(&self) -> Option<f64> {
        ratio(self.closed_on_time, self.closed)
    }
    /// 自办率: handled on the spot ÷ valid.
    pub fn self_handled_share(&self) -> Option<f64> {
        ratio(self.self_handled, self.valid())
    }
    /// 满意率: satisfied ÷ evaluated.
    pub fn satisfaction_rate(&self) -> Option<f64> {
        ratio(self.satisfied, self.evaluated)
    }
    /// Mean satisfaction score, 1–5.
    pub fn mean_satisfaction(&self) -> Option<f64> {
        ratio(self.satisfaction_sum, self.evaluated)
    }
    /// Share of the closed cases closed at `level` or below it (one district's
    /// account: 72.4 % closed by the street and the communities themselves).
    pub fn closed_at_or_below(&self, level: RegionLevel) -> Option<f64> {
        let upto: u64 = LEVELS
            .iter()
            .zip(self.closed_at)
            .filter(|(l, _)| **l <= level)
            .map(|(_, n)| n)
            .sum();
        ratio(upto, self.closed)
    }
    /// 上报率: sent up ÷ valid.
    pub fn escalation_rate(&self) -> Option<f64> {
        ratio(self.escalated, self.valid())
    }
}

/// A [`Summary`] for one group: a grid, a reporter, a category in a month.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// The grid code, user id or `category month` key.
    pub key: String,
    /// Its figures.
    pub summary: Summary,
}

/// How to group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupBy {
    /// By grid.
    Grid,
    /// By the user who reported.
    Reporter,
    /// By top-level category.
    Category,
    /// By month of reporting (UTC+8), `YYYY-MM`.
    Month,
    /// By the channel a case came in by (`Channel::as_str`).
    Channel,
}

const COLUMNS: &str = "count(*),
    coalesce(sum(status = 'invalid'), 0),
    coalesce(sum(status != 'invalid' AND (accepted_ms IS NOT NULL OR self_handled)), 0),
    coalesce(sum(status IN ('archived', 'evaluated')), 0),
    coalesce(sum(status IN ('archived', 'evaluated')
        AND (self_handled OR deadline_ms IS NULL OR handled_ms <= deadline_ms)), 0),
    coalesce(sum(status != 'invalid' AND self_handled), 0),
    count(satisfaction),
    coalesce(sum(satisfaction), 0),
    coalesce(sum(satisfaction >= 4), 0),
    coalesce(sum(status IN ('archived', 'evaluated') AND level = 'grid'), 0),
    coalesce(sum(status IN ('archived', 'evaluated') AND level = 'community'), 0),
    coalesce(sum(status IN ('archived', 'evaluated') AND level = 'town'), 0),
    coalesce(sum(status IN ('archived', 'evaluated') AND level = 'district'), 0),
    coalesce(sum(status IN ('archived', 'evaluated') AND level = 'city'), 0),
    coalesce(sum(status != 'invalid' AND escalations > 0), 0)";

/// How many columns [`COLUMNS`] has.
const COLUMN_COUNT: usize = 15;

fn summary_of(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Summary> {
    let n = |i: usize| r.get::<_, i64>(first + i).map(|v| v.max(0) as u64);
    Ok(Summary {
        reported: n(0)?,
        invalid: n(1)?,
        accepted: n(2)?,
        closed: n(3)?,
        closed_on_time: n(4)?,
        self_handled: n(5)?,
        evaluated: n(6)?,
        satisfaction_sum: n(7)?,
        satisfied: n(8)?,
        closed_at: [n(9)?, n(10)?, n(11)?, n(12)?, n(13)?],
        escalated: n(14)?,
    })
}

/// The figures over every case `f` selects (its page and status fields are ignored).
pub(crate) fn summary(tx: &Transaction<'_>, f: &CaseFilter) -> Result<Summary> {
    let (cond, args) = where_clause(&f.for_counting())?;
    let sql = format!("SELECT {COLUMNS} FROM cases WHERE {cond}");
    Ok(tx
        .prepare_cached(&sql)?
        .query_row(params_from_iter(args), |r| summary_of(r, 0))?)
}

/// The figures per group, largest groups first (months in order).
pub(crate) fn grouped(tx: &Transaction<'_>, f: &CaseFilter, by: GroupBy) -> Result<Vec<Group>> {
    let (cond, args) = where_clause(&f.for_counting())?;
    let offset_s = local_offset().local_minus_utc();
    let (key, order) = match by {
        GroupBy::Grid => ("grid".to_owned(), "1 DESC, key"),
        GroupBy::Reporter => ("reporter".to_owned(), "1 DESC, key"),
        GroupBy::Category => ("category".to_owned(), "1 DESC, key"),
        GroupBy::Channel => ("channel".to_owned(), "1 DESC, key"),
        GroupBy::Month => (
            format!("strftime('%Y-%m', created_ms / 1000 + {offset_s}, 'unixepoch')"),
            "key",
        ),
    };
    // The count comes first so `ORDER BY 1` is the number of cases.
    let sql = format!(
        "SELECT {COLUMNS}, {key} AS key FROM cases WHERE {cond} GROUP BY key ORDER BY {order}"
    );
    let mut stmt = tx.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), |r| {
        Ok(Group {
            summary: summary_of(r, 0)?,
            key: r.get(COLUMN_COUNT)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
