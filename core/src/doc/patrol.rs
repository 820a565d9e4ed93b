//! The patrol log document (巡查日志): one patrol by one worker.

use automerge::transaction::Transactable;
use automerge::{AutomergeError, ObjType, ReadDoc, ScalarValue, Value, ROOT};
use chrono::{DateTime, Utc};

use super::{
    list_maps, list_obj, opt_f64, opt_str, opt_time, push_map, put_root, read_root, req_list,
    req_parse, req_str, req_time, schema_err, time_value, Fields, SchemaError,
};
use crate::ids::{DocId, DocKind, RegionCode, UserId};
use crate::track::{self, TrackPoint};

/// Limits on one patrol.
pub mod limits {
    /// Track chunks (a chunk holds up to five minutes of points, fewer when a sync
    /// flushes early): enough for a day of patrolling with frequent syncs.
    pub const TRACK_CHUNKS: usize = 5_000;
    /// Check-ins.
    pub const CHECKINS: usize = 2_000;
    /// Observations.
    pub const OBSERVATIONS: usize = 1_000;
    /// Characters of a check-in's place or an observation.
    pub const TEXT: usize = 1_000;
    /// Cases reported on the way.
    pub const CASES: usize = 500;
}

mod key {
    pub const WORKER: &str = "worker";
    pub const GRID: &str = "grid";
    pub const STARTED: &str = "started";
    pub const ENDED: &str = "ended";
    pub const TRACK: &str = "track";
    pub const CHECKINS: &str = "checkins";
    pub const OBSERVATIONS: &str = "observations";
    pub const CASES: &str = "cases";
    pub const AT: &str = "at";
    pub const PLACE: &str = "place";
    pub const LAT: &str = "lat";
    pub const LON: &str = "lon";
    pub const TEXT: &str = "text";
    pub const HOUSEHOLD: &str = "household";
    pub const PLACE_ID: &str = "place_id";
}

const KIND: &str = "patrol";

/// A check-in at a place or household (入户走访).
#[derive(Clone, Debug, PartialEq)]
pub struct CheckIn {
    /// When.
    pub at: DateTime<Utc>,
    /// The place (e.g. "3号楼2单元"). Personal data.
    pub place: String,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
    /// The household visited (走访), when the check-in is a visit. What the visit
    /// found is in the household's document, which erasure removes whole.
    pub household: Option<DocId>,
    /// The registered place visited or inspected, when the check-in is one.
    pub place_id: Option<DocId>,
}

/// Something noticed on patrol that is not a case.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// When.
    pub at: DateTime<Utc>,
    /// What.
    pub text: String,
}

/// The whole content of a patrol document.
#[derive(Clone, Debug, PartialEq)]
pub struct PatrolDoc {
    /// Document id.
    pub id: DocId,
    /// The grid worker.
    pub worker: UserId,
    /// The grid patrolled.
    pub grid: RegionCode,
    /// Start.
    pub started: DateTime<Utc>,
    /// End, once ended.
    pub ended: Option<DateTime<Utc>>,
    /// The GPS track, decoded.
    pub track: Vec<TrackPoint>,
    /// How many chunks the track is stored in.
    pub track_chunks: usize,
    /// Check-ins.
    pub checkins: Vec<CheckIn>,
    /// Observations.
    pub observations: Vec<Observation>,
    /// Cases reported during the patrol.
    pub cases: Vec<DocId>,
}

impl PatrolDoc {
    /// Write a new patrol into an empty document.
    pub fn write_new<T: Transactable>(
        tx: &mut T,
        id: &DocId,
        worker: &UserId,
        grid: &RegionCode,
        started: DateTime<Utc>,
    ) -> Result<(), AutomergeError> {
        put_root(tx, KIND, id)?;
        tx.put(ROOT, key::WORKER, worker.as_str())?;
        tx.put(ROOT, key::GRID, grid.as_str())?;
        tx.put(ROOT, key::STARTED, time_value(started))?;
        tx.put_object(ROOT, key::TRACK, ObjType::List)?;
        tx.put_object(ROOT, key::CHECKINS, ObjType::List)?;
        tx.put_object(ROOT, key::OBSERVATIONS, ObjType::List)?;
        tx.put_object(ROOT, key::CASES, ObjType::List)?;
        Ok(())
    }

    /// Read and validate a patrol document.
    pub fn read(doc: &impl ReadDoc, id: &DocId) -> Result<PatrolDoc, SchemaError> {
        let root = read_root(doc, KIND, id)?;
        let track_list = req_list(&root, key::TRACK)?;
        let chunks = doc.length(&track_list);
        if chunks > limits::TRACK_CHUNKS {
            return Err(schema_err(key::TRACK, "has more chunks than allowed"));
        }
        let mut points = Vec::new();
        for i in 0..chunks {
            match doc.get(&track_list, i) {
                Ok(Some((Value::Scalar(v), _))) => match v.as_ref() {
                    ScalarValue::Bytes(b) => points.extend(
                        track::decode(b).map_err(|_| schema_err(key::TRACK, "malformed chunk"))?,
                    ),
                    _ => return Err(schema_err(key::TRACK, "chunk is not bytes")),
                },
                _ => return Err(schema_err(key::TRACK, "chunk is not bytes")),
            }
        }
        let checkins_list = req_list(&root, key::CHECKINS)?;
        let checkins = bounded(
            list_maps(doc, &checkins_list, key::CHECKINS)?,
            key::CHECKINS,
            limits::CHECKINS,
        )?
        .iter()
        .map(|obj| {
            let f = &Fields::of(doc, obj);
            let reference = |field: &'static str, kind: DocKind| {
                let given = opt_str(f, field)?;
                let id = given
                    .as_deref()
                    .and_then(|h| h.parse::<DocId>().ok())
                    .filter(|h| h.kind() == kind);
                match (given, id) {
                    (Some(_), None) => {
                        Err(schema_err(field, "not a document id of the right kind"))
                    }
                    (_, id) => Ok(id),
                }
            };
            let household = reference(key::HOUSEHOLD, DocKind::Household)?;
            let place_id = reference(key::PLACE_ID, DocKind::Place)?;
            Ok(CheckIn {
                at: req_time(f, key::AT)?,
                place: req_str(f, key::PLACE)?,
                lat: opt_f64(f, key::LAT)?.unwrap_or_default(),
                lon: opt_f64(f, key::LON)?.unwrap_or_default(),
                household,
                place_id,
            })
        })
        .collect::<Result<_, SchemaError>>()?;
        let obs_list = req_list(&root, key::OBSERVATIONS)?;
        let observations = bounded(
            list_maps(doc, &obs_list, key::OBSERVATIONS)?,
            key::OBSERVATIONS,
            limits::OBSERVATIONS,
        )?
        .iter()
        .map(|obj| {
            let f = &Fields::of(doc, obj);
            Ok(Observation {
                at: req_time(f, key::AT)?,
                text: req_str(f, key::TEXT)?,
            })
        })
        .collect::<Result<_, SchemaError>>()?;
        let cases_list = req_list(&root, key::CASES)?;
        let n_cases = doc.length(&cases_list);
        if n_cases > limits::CASES {
            return Err(schema_err(key::CASES, "has more items than allowed"));
        }
        let cases = (0..n_cases)
            .map(|i| match doc.get(&cases_list, i) {
                Ok(Some((Value::Scalar(v), _))) => match v.as_ref() {
                    ScalarValue::Str(s) => s
                        .parse()
                        .map_err(|_| schema_err(key::CASES, "not a case id")),
                    _ => Err(schema_err(key::CASES, "not a case id")),
                },
                _ => Err(schema_err(key::CASES, "not a case id")),
            })
            .collect::<Result<_, SchemaError>>()?;
        Ok(PatrolDoc {
            id: id.clone(),
            worker: req_parse(&root, key::WORKER)?,
            grid: req_parse(&root, key::GRID)?,
            started: req_time(&root, key::STARTED)?,
            ended: opt_time(&root, key::ENDED)?,
            track: points,
            track_chunks: chunks,
            checkins,
            observations,
            cases,
        })
    }

    /// Duration so far (to `now` while running).
    pub fn duration(&self, now: DateTime<Utc>) -> chrono::Duration {
        self.ended.unwrap_or(now) - self.started
    }
}

fn bounded<T>(items: Vec<T>, field: &str, max: usize) -> Result<Vec<T>, SchemaError> {
    if items.len() > max {
        return Err(schema_err(field, "has more items than allowed"));
    }
    Ok(items)
}

/// Append one encoded chunk of track points.
pub fn append_track<T: Transactable>(
    tx: &mut T,
    points: &[TrackPoint],
) -> Result<(), AutomergeError> {
    let list = list_obj(tx, key::TRACK)?;
    let len = tx.length(&list);
    tx.insert(&list, len, ScalarValue::Bytes(track::encode(points)))?;
    Ok(())
}

/// Record a check-in.
pub fn add_checkin<T: Transactable>(tx: &mut T, c: &CheckIn) -> Result<(), AutomergeError> {
    let list = list_obj(tx, key::CHECKINS)?;
    let obj = push_map(tx, &list)?;
    tx.put(&obj, key::AT, time_value(c.at))?;
    tx.put(&obj, key::PLACE, c.place.as_str())?;
    tx.put(&obj, key::LAT, c.lat)?;
    tx.put(&obj, key::LON, c.lon)?;
    if let Some(h) = &c.household {
        tx.put(&obj, key::HOUSEHOLD, h.as_str())?;
    }
    if let Some(p) = &c.place_id {
        tx.put(&obj, key::PLACE_ID, p.as_str())?;
    }
    Ok(())
}

/// Record an observation.
pub fn add_observation<T: Transactable>(tx: &mut T, o: &Observation) -> Result<(), AutomergeError> {
    let list = list_obj(tx, key::OBSERVATIONS)?;
    let obj = push_map(tx, &list)?;
    tx.put(&obj, key::AT, time_value(o.at))?;
    tx.put(&obj, key::TEXT, o.text.as_str())?;
    Ok(())
}

/// Record a case reported during the patrol.
pub fn add_case<T: Transactable>(tx: &mut T, case: &DocId) -> Result<(), AutomergeError> {
    let list = list_obj(tx, key::CASES)?;
    let len = tx.length(&list);
    tx.insert(&list, len, case.as_str())?;
    Ok(())
}

/// Mark the patrol ended.
pub fn end<T: Transactable>(tx: &mut T, at: DateTime<Utc>) -> Result<(), AutomergeError> {
    tx.put(ROOT, key::ENDED, time_value(at))
}
