//! A manual points adjustment (积分调整): a leader adds or takes away points of one
//! grid worker for one month, with a reason. One Automerge document each, written
//! once and never changed, in the worker's grid, so the ledger is the documents
//! themselves: every replica that holds them counts the same total, and nothing
//! can be edited or removed afterwards (see [`crate::access::check_history`]).

use automerge::transaction::Transactable;
use automerge::{AutomergeError, ReadDoc, ROOT};
use chrono::{DateTime, Utc};

use super::{
    check_len, opt_i64, put_root, read_root, req_parse, req_str, req_time, schema_err, time_value,
    SchemaError,
};
use crate::ids::{DocId, RegionCode, UserId};

/// Limits on one adjustment.
pub mod limits {
    /// The most points one adjustment adds or takes away.
    pub const POINTS: i32 = 1_000;
    /// Its reason, in characters.
    pub const REASON: usize = 200;
}

const KIND: &str = "adjustment";

mod key {
    pub const GRID: &str = "grid";
    pub const WORKER: &str = "worker";
    pub const MONTH: &str = "month";
    pub const POINTS: &str = "points";
    pub const REASON: &str = "reason";
    pub const BY: &str = "by";
    pub const AT: &str = "at";
}

/// A month as the ledger names it, `YYYY-MM` (China Standard Time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Month {
    year: i32,
    month: u32,
}

impl Month {
    /// The month `month` (1–12) of `year` (2000–2099).
    pub fn new(year: i32, month: u32) -> Result<Month, String> {
        if !(2000..=2099).contains(&year) || !(1..=12).contains(&month) {
            return Err("a month is 1 to 12 of a year from 2000 to 2099".into());
        }
        Ok(Month { year, month })
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl std::str::FromStr for Month {
    type Err = String;
    fn from_str(s: &str) -> Result<Month, String> {
        let bad = || "a month is written YYYY-MM".to_owned();
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        Month::new(y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?)
    }
}

/// What a leader enters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAdjustment {
    /// The grid worker.
    pub worker: UserId,
    /// The month it counts in.
    pub month: Month,
    /// Points added (positive) or taken away (negative); never 0.
    pub points: i32,
    /// Why: required.
    pub reason: String,
}

impl NewAdjustment {
    /// Bounded points, not zero, and a reason within [`limits::REASON`]. The
    /// message never repeats the reason.
    pub fn validate(&self) -> Result<(), String> {
        if self.points == 0 || self.points.abs() > limits::POINTS {
            return Err(format!(
                "an adjustment is from -{0} to {0} points, not 0",
                limits::POINTS
            ));
        }
        check_len("reason", &self.reason, limits::REASON, true)
    }
}

/// An adjustment document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdjustmentDoc {
    /// Document id.
    pub id: DocId,
    /// The worker's grid: who sees it starts from here.
    pub grid: RegionCode,
    /// The grid worker.
    pub worker: UserId,
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

impl AdjustmentDoc {
    /// Write the adjustment into an empty document.
    pub fn write_new<T: Transactable>(&self, tx: &mut T) -> Result<(), AutomergeError> {
        put_root(tx, KIND, &self.id)?;
        tx.put(ROOT, key::GRID, self.grid.as_str())?;
        tx.put(ROOT, key::WORKER, self.worker.as_str())?;
        tx.put(ROOT, key::MONTH, self.month.to_string())?;
        tx.put(ROOT, key::POINTS, i64::from(self.points))?;
        tx.put(ROOT, key::REASON, self.reason.as_str())?;
        tx.put(ROOT, key::BY, self.by.as_str())?;
        tx.put(ROOT, key::AT, time_value(self.at))?;
        Ok(())
    }

    /// Read and validate an adjustment document: the same bounds as a new one.
    pub fn read(doc: &impl ReadDoc, id: &DocId) -> Result<AdjustmentDoc, SchemaError> {
        let root = read_root(doc, KIND, id)?;
        let points =
            opt_i64(&root, key::POINTS)?.ok_or_else(|| schema_err(key::POINTS, "missing"))?;
        let points = i32::try_from(points)
            .ok()
            .filter(|p| *p != 0 && p.abs() <= limits::POINTS)
            .ok_or_else(|| schema_err(key::POINTS, "out of range"))?;
        let reason = req_str(&root, key::REASON)?;
        check_len("reason", &reason, limits::REASON, true)
            .map_err(|_| schema_err(key::REASON, "empty or too long"))?;
        Ok(AdjustmentDoc {
            id: id.clone(),
            grid: req_parse(&root, key::GRID)?,
            worker: req_parse(&root, key::WORKER)?,
            month: req_parse(&root, key::MONTH)?,
            points,
            reason,
            by: req_parse(&root, key::BY)?,
            at: req_time(&root, key::AT)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use automerge::Automerge;
    use chrono::TimeZone;

    use super::*;
    use crate::ids::DocKind;

    fn sample() -> AdjustmentDoc {
        AdjustmentDoc {
            id: DocId::new(DocKind::Adjustment),
            grid: "330106001001001".parse().unwrap(),
            worker: "w-330106001001001".parse().unwrap(),
            month: Month::new(2026, 11).unwrap(),
            points: -5,
            reason: "巡查记录不全".into(),
            by: "cd-330106001001".parse().unwrap(),
            at: Utc.with_ymd_and_hms(2026, 11, 30, 8, 0, 0).unwrap(),
        }
    }

    #[test]
    fn an_adjustment_reads_back_as_written() {
        let a = sample();
        let mut doc = Automerge::new();
        doc.transact::<_, _, AutomergeError>(|t| a.write_new(t))
            .unwrap();
        assert_eq!(AdjustmentDoc::read(&doc, &a.id).unwrap(), a);
    }

    #[test]
    fn points_and_reason_are_bounded() {
        let new = |points, reason: &str| NewAdjustment {
            worker: "w-330106001001001".parse().unwrap(),
            month: Month::new(2026, 11).unwrap(),
            points,
            reason: reason.into(),
        };
        assert!(new(10, "月度考核优秀").validate().is_ok());
        assert!(new(-limits::POINTS, "x").validate().is_ok());
        assert!(new(0, "x").validate().is_err());
        assert!(new(limits::POINTS + 1, "x").validate().is_err());
        assert!(new(5, "  ").validate().is_err());
        assert!(new(5, &"长".repeat(limits::REASON + 1)).validate().is_err());
        // A document holding what the form refuses does not read either.
        for bad in [0, 5000] {
            let a = AdjustmentDoc {
                points: bad,
                ..sample()
            };
            let mut doc = Automerge::new();
            doc.transact::<_, _, AutomergeError>(|t| a.write_new(t))
                .unwrap();
            assert!(AdjustmentDoc::read(&doc, &a.id).is_err());
        }
    }

    #[test]
    fn months_are_checked() {
        assert_eq!("2026-11".parse::<Month>().unwrap().to_string(), "2026-11");
        for bad in ["2026-13", "2026-1", "26-11", "2026-00", "x"] {
            assert!(bad.parse::<Month>().is_err(), "{bad}");
        }
    }
}
