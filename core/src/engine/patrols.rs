//! Patrols: a grid worker's own running patrol, its GPS points (buffered in
//! `track_pending`, written into the document in chunks), check-ins, observations,
//! linked cases, and reading a patrol in the user's scope.

use automerge::transaction::Transaction as AmTransaction;
use automerge::{Automerge, AutomergeError};
use chrono::DateTime;
use rusqlite::{params, Transaction};

use super::Engine;
use crate::directory::Role;
use crate::doc::case::check_coordinates;
use crate::doc::patrol::{self, CheckIn, Observation, PatrolDoc};
use crate::error::{Error, Result};
use crate::ids::{DocId, DocKind};
use crate::index;
use crate::store;
use crate::track::TrackPoint;

/// Points buffered before they are written into the patrol as one chunk (5 minutes
/// at one point every 5 seconds).
pub const TRACK_CHUNK_POINTS: i64 = 60;
/// Most points accepted in one `add_track_points` call.
pub const MAX_POINTS_PER_CALL: usize = 1000;

impl Engine {
    /// Start a patrol of the grid worker's grid.
    pub fn start_patrol(&self) -> Result<DocId> {
        let me = self.me()?;
        if me.role != Role::GridWorker {
            return Err(Error::Forbidden("only grid workers patrol".into()));
        }
        let id = DocId::new(DocKind::Patrol);
        let now = self.now();
        self.write(|tx| {
            let mut doc = Automerge::new();
            self.commit_local(tx, &id, &mut doc, |t| {
                PatrolDoc::write_new(t, &id, &me.id, &me.region, now)
            })?;
            self.materialise(tx, &id, &doc)
        })?;
        Ok(id)
    }

    pub(super) fn own_running_patrol(
        &self,
        tx: &Transaction<'_>,
        id: &DocId,
    ) -> Result<(Automerge, PatrolDoc)> {
        let not_found = || Error::NotFound {
            what: "patrol",
            id: id.to_string(),
        };
        if id.kind() != DocKind::Patrol {
            return Err(not_found());
        }
        let doc = store::load(tx, id)?.ok_or_else(not_found)?;
        let patrol = PatrolDoc::read(&doc, id).map_err(Error::malformed(id))?;
        if patrol.worker != self.identity.user {
            return Err(not_found());
        }
        if patrol.ended.is_some() {
            return Err(Error::InvalidInput("the patrol has already ended".into()));
        }
        Ok((doc, patrol))
    }

    /// Record GPS points. They are durable at once and written into the patrol
    /// document in chunks of [`TRACK_CHUNK_POINTS`].
    pub fn add_track_points(&self, id: &DocId, points: &[TrackPoint]) -> Result<()> {
        if points.len() > MAX_POINTS_PER_CALL {
            return Err(Error::InvalidInput(format!(
                "at most {MAX_POINTS_PER_CALL} points per call"
            )));
        }
        for p in points {
            check_coordinates(p.lat, p.lon)?;
        }
        self.write(|tx| {
            let (_, patrol) = self.own_running_patrol(tx, id)?;
            if patrol.track_chunks >= patrol::limits::TRACK_CHUNKS {
                return Err(Error::InvalidInput(
                    "the patrol's track is full; end it and start a new patrol".into(),
                ));
            }
            let mut insert = tx.prepare_cached(
                "INSERT INTO track_pending (doc_id, at_ms, lat, lon) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for p in points {
                insert.execute(params![id.as_str(), p.at.timestamp_millis(), p.lat, p.lon])?;
            }
            let pending: i64 = tx.query_row(
                "SELECT count(*) FROM track_pending WHERE doc_id = ?1",
                [id.as_str()],
                |r| r.get(0),
            )?;
            if pending >= TRACK_CHUNK_POINTS {
                self.flush_track(tx, id)?;
            } else {
                index::count_buffered_points(tx, id, points.len())?;
            }
            Ok(())
        })
    }

    pub(super) fn pending_points(tx: &Transaction<'_>, id: &DocId) -> Result<Vec<TrackPoint>> {
        let mut stmt = tx.prepare_cached(
            "SELECT at_ms, lat, lon FROM track_pending WHERE doc_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([id.as_str()], |r| {
            Ok(TrackPoint {
                at: DateTime::from_timestamp_millis(r.get(0)?).unwrap_or_default(),
                lat: r.get(1)?,
                lon: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Move buffered points of one patrol into its document.
    fn flush_track(&self, tx: &Transaction<'_>, id: &DocId) -> Result<()> {
        let points = Self::pending_points(tx, id)?;
        if points.is_empty() {
            return Ok(());
        }
        let mut doc = store::load(tx, id)?.ok_or_else(|| Error::NotFound {
            what: "patrol",
            id: id.to_string(),
        })?;
        let chunks = PatrolDoc::read(&doc, id)
            .map_err(Error::malformed(id))?
            .track_chunks;
        if chunks >= patrol::limits::TRACK_CHUNKS {
            // add_track_points refuses points once the track is full, so this only
            // leaves points that were already pending; they stay durable here
            // rather than block every other document's sync.
            return Ok(());
        }
        for chunk in points.chunks(crate::track::MAX_POINTS_PER_CHUNK) {
            self.commit_local(tx, id, &mut doc, |t| patrol::append_track(t, chunk))?;
        }
        tx.execute("DELETE FROM track_pending WHERE doc_id = ?1", [id.as_str()])?;
        self.materialise(tx, id, &doc)
    }

    /// Write every patrol's buffered points into its document (done before changes
    /// are exported, so a sync carries them).
    pub fn flush_tracks(&self) -> Result<()> {
        self.write(|tx| {
            let ids: Vec<String> = tx
                .prepare("SELECT DISTINCT doc_id FROM track_pending")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            for id in ids {
                self.flush_track(tx, &id.parse()?)?;
            }
            Ok(())
        })
    }

    /// Check in at a place.
    pub fn check_in(&self, id: &DocId, place: &str, lat: f64, lon: f64) -> Result<()> {
        check_coordinates(lat, lon)?;
        check_patrol_text("place", place)?;
        let c = CheckIn {
            at: self.now(),
            place: place.to_owned(),
            lat,
            lon,
            household: None,
            place_id: None,
        };
        self.edit_patrol(
            id,
            |p| p.checkins.len() < patrol::limits::CHECKINS,
            |t| patrol::add_checkin(t, &c),
        )
    }

    /// Note something seen on patrol.
    pub fn add_observation(&self, id: &DocId, text: &str) -> Result<()> {
        check_patrol_text("observation", text)?;
        let o = Observation {
            at: self.now(),
            text: text.to_owned(),
        };
        self.edit_patrol(
            id,
            |p| p.observations.len() < patrol::limits::OBSERVATIONS,
            |t| patrol::add_observation(t, &o),
        )
    }

    /// Record that a case was reported during this patrol.
    pub fn link_case_to_patrol(&self, id: &DocId, case: &DocId) -> Result<()> {
        if case.kind() != DocKind::Case {
            return Err(Error::InvalidInput(format!("{case} is not a case")));
        }
        self.edit_patrol(
            id,
            |p| p.cases.len() < patrol::limits::CASES,
            |t| patrol::add_case(t, case),
        )
    }

    /// End a patrol; buffered points are written into it first.
    pub fn end_patrol(&self, id: &DocId) -> Result<()> {
        let now = self.now();
        self.write(|tx| {
            self.own_running_patrol(tx, id)?;
            self.flush_track(tx, id)?;
            let mut doc = store::load(tx, id)?.ok_or_else(|| Error::NotFound {
                what: "patrol",
                id: id.to_string(),
            })?;
            self.commit_local(tx, id, &mut doc, |t| patrol::end(t, now))?;
            self.materialise(tx, id, &doc)
        })
    }

    fn edit_patrol(
        &self,
        id: &DocId,
        has_room: impl FnOnce(&PatrolDoc) -> bool,
        edit: impl FnOnce(&mut AmTransaction<'_>) -> Result<(), AutomergeError>,
    ) -> Result<()> {
        self.write(|tx| {
            let (mut doc, p) = self.own_running_patrol(tx, id)?;
            if !has_room(&p) {
                return Err(Error::InvalidInput("the patrol log is full".into()));
            }
            self.commit_local(tx, id, &mut doc, edit)?;
            self.materialise(tx, id, &doc)
        })
    }

    /// A patrol with its whole track (buffered points included).
    pub fn get_patrol(&self, id: &DocId) -> Result<PatrolDoc> {
        let me = self.me()?;
        let not_found = || Error::NotFound {
            what: "patrol",
            id: id.to_string(),
        };
        if id.kind() != DocKind::Patrol {
            return Err(not_found());
        }
        self.db.read(|tx| {
            let doc = store::load(tx, id)?.ok_or_else(not_found)?;
            let mut p = PatrolDoc::read(&doc, id).map_err(Error::malformed(id))?;
            if !crate::access::scope_of(&me).sees_patrol(&p) {
                return Err(not_found());
            }
            p.track.extend(Self::pending_points(tx, id)?);
            Ok(p)
        })
    }
}

fn check_patrol_text(field: &'static str, text: &str) -> Result<()> {
    let n = text.chars().count();
    if text.trim().is_empty() {
        return Err(Error::InvalidInput(format!("{field}: is required")));
    }
    if n > patrol::limits::TEXT {
        return Err(Error::InvalidInput(format!(
            "{field}: is {n} characters; the limit is {}",
            patrol::limits::TEXT
        )));
    }
    Ok(())
}
