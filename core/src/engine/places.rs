//! Places on a device: registering and editing buildings, dwellings, shops and
//! enterprises (an organisation is its place's facts), the dwelling a household
//! lives in, a safety inspection on a patrol, a place in full, lists, and what a
//! case reported at a known place or about known persons takes from the registry.
//! The same people keep places as keep the rest of the base data.

use automerge::transaction::Transaction as AmTransaction;
use automerge::Automerge;
use rusqlite::Transaction;

use super::registry::not_found;
use super::Engine;
use crate::access::scope_of;
use crate::directory::User;
use crate::doc::case::{CaseLinks, Location};
use crate::doc::patrol::CheckIn;
use crate::doc::place::{self, Inspection, NewPlace, PlaceDoc, PlaceEdit, PlaceKind};
use crate::doc::registry as household_doc;
use crate::doc::DocContent;
use crate::error::{Error, Result};
use crate::ids::{DocId, DocKind, PhotoHash, RegionCode};
use crate::places::{PlaceFilter, PlaceRow, PlaceSummary};

/// The place a check-in for an inspection names: the place's id says where; its
/// name and address stay in the place's document.
const INSPECTION_PLACE: &str = "安全检查";

impl Engine {
    /// Register a place. Durable when this returns.
    pub fn register_place(&self, place: NewPlace) -> Result<DocId> {
        let me = self.me()?;
        place.validate().map_err(Error::InvalidInput)?;
        let grid = self.registry_grid(&me, Some(place.grid.clone()))?;
        let id = DocId::new(DocKind::Place);
        let at = self.now();
        self.write(|tx| {
            self.check_refs(
                tx,
                &me,
                place.within.as_ref(),
                place.org.as_ref().and_then(|o| o.contact.as_ref()),
            )?;
            let place = NewPlace {
                grid: grid.clone(),
                ..place
            };
            let mut doc = Automerge::new();
            self.commit_local(tx, &id, &mut doc, |t| {
                PlaceDoc::write_new(t, &id, &me.id, at, &place)
            })?;
            self.materialise(tx, &id, &doc)
        })?;
        Ok(id)
    }

    /// Change a place's facts field by field.
    pub fn edit_place(&self, id: &DocId, edit: PlaceEdit) -> Result<()> {
        edit.validate().map_err(Error::InvalidInput)?;
        let me = self.me()?;
        self.write(|tx| {
            let (mut doc, content) = self.load_registry_doc(tx, &me, id, DocKind::Place)?;
            let DocContent::Place(before) = content else {
                return Err(not_found("place", id));
            };
            if edit.occupancy.flatten().is_some() && before.kind != PlaceKind::Dwelling {
                return Err(Error::InvalidInput("occupancy is for dwellings".into()));
            }
            if edit.touches_org() && !matches!(before.kind, PlaceKind::Shop | PlaceKind::Enterprise)
            {
                return Err(Error::InvalidInput(
                    "organisation facts are for shops and enterprises".into(),
                ));
            }
            if edit.within.as_ref().is_some_and(|w| w.as_ref() == Some(id)) {
                return Err(Error::InvalidInput(
                    "a place cannot be within itself".into(),
                ));
            }
            self.check_refs(
                tx,
                &me,
                edit.within.as_ref().and_then(Option::as_ref),
                edit.contact.as_ref().and_then(Option::as_ref),
            )?;
            self.commit_local(tx, id, &mut doc, |t| edit.apply(t))?;
            self.materialise(tx, id, &doc)
        })
    }

    /// Record that `household` lives in the dwelling `place` (`None`: nowhere
    /// registered). A household living in a rented dwelling is its tenant.
    pub fn household_lives_at(&self, household: &DocId, place: Option<&DocId>) -> Result<()> {
        let me = self.me()?;
        self.write(|tx| {
            let (mut doc, content) =
                self.load_registry_doc(tx, &me, household, DocKind::Household)?;
            if let DocContent::Household(h) = &content {
                if h.left.is_some() {
                    return Err(Error::InvalidInput(
                        "the household has left the grid".into(),
                    ));
                }
            }
            if let Some(p) = place {
                let row = self.place_in_scope(tx, &me, p)?;
                if row.kind != Some(PlaceKind::Dwelling) {
                    return Err(Error::InvalidInput(
                        "a household lives in a dwelling (a house or a flat)".into(),
                    ));
                }
                if &row.grid != content.grid() {
                    return Err(Error::InvalidInput(
                        "the dwelling is not in the household's grid".into(),
                    ));
                }
            }
            self.commit_local(tx, household, &mut doc, |t| {
                household_doc::set_place(t, place)
            })?;
            self.materialise(tx, household, &doc)
        })
    }

    /// Inspect a place (安全检查) during one's own running patrol: the patrol gets a
    /// check-in naming the place (at a neutral label, with its GPS position), the
    /// place's document gets the inspection, in one write. The place must be in
    /// the patrol's grid. `photo`, if any, is one stored on this device
    /// ([`Engine::ingest_photo`]): the blocked exit as it was found.
    #[allow(clippy::too_many_arguments)]
    pub fn inspect(
        &self,
        patrol: &DocId,
        place_id: &DocId,
        passed: bool,
        findings: &str,
        lat: f64,
        lon: f64,
        photo: Option<PhotoHash>,
    ) -> Result<()> {
        let n = findings.chars().count();
        if n > place::limits::FINDINGS || (!passed && findings.trim().is_empty()) {
            return Err(Error::InvalidInput(format!(
                "findings: at most {} characters, and required when the place fails",
                place::limits::FINDINGS
            )));
        }
        let photo = self.entry_photo(photo)?;
        let at = self.now();
        let checkin = CheckIn {
            at,
            place: INSPECTION_PLACE.to_owned(),
            lat,
            lon,
            household: None,
            place_id: Some(place_id.clone()),
        };
        self.record_on_patrol(patrol, place_id, checkin, |me, content| {
            let DocContent::Place(target) = content else {
                return Err(not_found("place", place_id));
            };
            if target.inspections.len() >= place::limits::INSPECTIONS {
                return Err(Error::InvalidInput(
                    "the place's inspection log is full".into(),
                ));
            }
            let inspection = Inspection {
                at,
                by: me.id.clone(),
                patrol: patrol.clone(),
                passed,
                findings: findings.to_owned(),
                photo,
            };
            Ok(move |t: &mut AmTransaction<'_>| place::add_inspection(t, &inspection))
        })
    }

    /// A place in full, with its inspections.
    pub fn get_place(&self, id: &DocId) -> Result<PlaceDoc> {
        let me = self.me()?;
        self.db.read(
            |tx| match self.load_registry_doc(tx, &me, id, DocKind::Place)?.1 {
                DocContent::Place(p) => Ok(p),
                _ => Err(not_found("place", id)),
            },
        )
    }

    /// Places as lists show them, within this user's region.
    pub fn list_places(&self, filter: &PlaceFilter) -> Result<Vec<PlaceSummary>> {
        let Some(region) = self.registry_region(filter.region.as_ref())? else {
            return Ok(Vec::new());
        };
        let filter = PlaceFilter {
            region: Some(region),
            ..filter.clone()
        };
        self.db.read(|tx| crate::places::list_places(tx, &filter))
    }

    /// Check a new case's links against the registry as this user sees it: the
    /// place and every person registered and in scope. The case's location, when
    /// it has none, is the place's (its address, and its position if known).
    pub(super) fn resolve_links(
        &self,
        me: &User,
        grid: &RegionCode,
        links: &CaseLinks,
        location: &mut Option<Location>,
    ) -> Result<()> {
        if links.place.is_none() && links.persons.is_empty() {
            return Ok(());
        }
        self.db.read(|tx| {
            if let Some(p) = &links.place {
                let row = self.place_in_scope(tx, me, p)?;
                if &row.grid != grid {
                    return Err(Error::InvalidInput(
                        "the place is not in the case's grid".into(),
                    ));
                }
                if location.is_none() {
                    if let Some((lat, lon)) = row.location {
                        *location = Some(Location {
                            lat,
                            lon,
                            address: row.address,
                        });
                    }
                }
            }
            for person in &links.persons {
                self.load_registry_doc(tx, me, person, DocKind::Person)?;
            }
            Ok(())
        })
    }

    /// A place's grid, address and position, when this user keeps it.
    fn place_in_scope(&self, tx: &Transaction<'_>, me: &User, id: &DocId) -> Result<PlaceRow> {
        match crate::places::place_row(tx, id)? {
            Some(row) if id.kind() == DocKind::Place && scope_of(me).sees(&row.grid, None) => {
                Ok(row)
            }
            _ => Err(not_found("place", id)),
        }
    }

    /// The building a place is within and the contact of its organisation, when
    /// given, are a place and a person this user keeps.
    fn check_refs(
        &self,
        tx: &Transaction<'_>,
        me: &User,
        within: Option<&DocId>,
        contact: Option<&DocId>,
    ) -> Result<()> {
        if let Some(w) = within {
            self.place_in_scope(tx, me, w)?;
        }
        if let Some(c) = contact {
            self.load_registry_doc(tx, me, c, DocKind::Person)?;
        }
        Ok(())
    }
}
