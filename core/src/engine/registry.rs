//! The grid's base data on a device: registering households and persons, editing
//! a person field by field, moving a person between households, a household
//! leaving the grid, visiting a household on a patrol; a person in full for a
//! detail view, lists with ID and phone numbers masked, counts per grid, visits
//! due and visit coverage. Grid workers keep their grid's base data, dispatchers
//! the data of their region; department handlers neither see nor write it.

use automerge::transaction::Transaction as AmTransaction;
use automerge::Automerge;
use rusqlite::Transaction;

use super::Engine;
use crate::access::{check_registry_writer, scope_of};
use crate::directory::{Role, User};
use crate::doc::patrol::CheckIn;
use crate::doc::registry::{self, HouseholdDoc, NewPerson, PersonDoc, PersonEdit, Visit};
use crate::doc::DocContent;
use crate::error::{Error, Result};
use crate::ids::{DocId, DocKind, PhotoHash, RegionCode};
use crate::registry::{
    DueVisit, GridCounts, GridCoverage, PersonFilter, PersonSummary, WorkerCoverage,
};
use crate::store;

pub(super) fn not_found(what: &'static str, id: &DocId) -> Error {
    Error::NotFound {
        what,
        id: id.to_string(),
    }
}

/// The region a registry read by `user` covers: `asked` narrowed to the user's
/// region (theirs when `None`; `None` when the two do not meet). A department
/// handler is refused: base data is not theirs to see.
pub(super) fn registry_region_of(
    user: &User,
    asked: Option<&RegionCode>,
) -> Result<Option<RegionCode>> {
    let Some(scope) = scope_of(user)
        .region()
        .cloned()
        .filter(|_| user.role != Role::DepartmentHandler)
    else {
        return Err(Error::Forbidden(
            "a department handler does not see the grid's base data".into(),
        ));
    };
    Ok(match asked {
        Some(r) if scope.contains(r) => Some(r.clone()),
        Some(r) if r.contains(&scope) => Some(scope),
        Some(_) => None,
        None => Some(scope),
    })
}

/// The first instant of a calendar month in China Standard Time, and of the next.
pub(super) fn month_bounds(
    year: i32,
    month: u32,
) -> Result<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> {
    let bad_month = || Error::InvalidInput(format!("{year}-{month} is not a month"));
    let first = chrono::NaiveDate::from_ymd_opt(year, month, 1).ok_or_else(bad_month)?;
    let next = first
        .checked_add_months(chrono::Months::new(1))
        .ok_or_else(bad_month)?;
    let at_midnight = |d: chrono::NaiveDate| {
        d.and_time(chrono::NaiveTime::MIN)
            .and_local_timezone(crate::index::local_offset())
            .single()
            .map(|t| t.with_timezone(&chrono::Utc))
            .ok_or_else(bad_month)
    };
    Ok((at_midnight(first)?, at_midnight(next)?))
}

/// The place a visit's check-in names: the household's id says where; its
/// address stays in the household's document.
const VISIT_PLACE: &str = "入户走访";

pub(super) fn forbidden(e: crate::access::Denied) -> Error {
    Error::Forbidden(e.to_string())
}

impl Engine {
    /// The grid a new record goes in: the one given, or a grid worker's own.
    pub(super) fn registry_grid(&self, me: &User, grid: Option<RegionCode>) -> Result<RegionCode> {
        let grid = match (grid, me.role) {
            (Some(g), _) => g,
            (None, Role::GridWorker) => me.region.clone(),
            (None, _) => return Err(Error::InvalidInput("grid is required".into())),
        };
        match self.directory()?.region(&grid) {
            Some(r) if r.level == crate::ids::RegionLevel::Grid => {}
            _ => {
                return Err(Error::InvalidInput(format!(
                    "{grid} is not a grid in the directory"
                )))
            }
        }
        check_registry_writer(me, &grid).map_err(forbidden)?;
        Ok(grid)
    }

    /// Register a household at `address` in `grid` (a grid worker's own when
    /// `None`). Durable when this returns.
    pub fn register_household(&self, grid: Option<RegionCode>, address: &str) -> Result<DocId> {
        let me = self.me()?;
        let grid = self.registry_grid(&me, grid)?;
        let n = address.chars().count();
        if address.trim().is_empty() || n > registry::limits::ADDRESS {
            return Err(Error::InvalidInput(format!(
                "an address is 1 to {} characters",
                registry::limits::ADDRESS
            )));
        }
        let id = DocId::new(DocKind::Household);
        let at = self.now();
        self.write(|tx| {
            let mut doc = Automerge::new();
            self.commit_local(tx, &id, &mut doc, |t| {
                HouseholdDoc::write_new(t, &id, &me.id, at, &grid, address)
            })?;
            self.materialise(tx, &id, &doc)
        })?;
        Ok(id)
    }

    /// Register a person. Durable when this returns.
    pub fn register_person(&self, person: NewPerson) -> Result<DocId> {
        let me = self.me()?;
        person.validate().map_err(Error::InvalidInput)?;
        let grid = self.registry_grid(&me, Some(person.grid.clone()))?;
        let id = DocId::new(DocKind::Person);
        let at = self.now();
        self.write(|tx| {
            if let Some((household, _)) = &person.household {
                self.check_household(tx, &me, household, &grid)?;
            }
            let mut doc = Automerge::new();
            let person = NewPerson {
                grid: grid.clone(),
                ..person
            };
            self.commit_local(tx, &id, &mut doc, |t| {
                PersonDoc::write_new(t, &id, &me.id, at, &person)
            })?;
            self.materialise(tx, &id, &doc)
        })?;
        Ok(id)
    }

    /// Change a person's own facts (name, ID number, phone, tags, notes …). A new
    /// ID number brings its sex and birth date unless the edit gives them.
    pub fn edit_person(&self, id: &DocId, mut edit: PersonEdit) -> Result<()> {
        edit.validate().map_err(Error::InvalidInput)?;
        if let Some(Some(number)) = &edit.id_number {
            edit.sex.get_or_insert(Some(number.sex()));
            edit.born.get_or_insert(Some(number.birth_date()));
        }
        let me = self.me()?;
        self.write(|tx| {
            let (mut doc, _) = self.load_registry_doc(tx, &me, id, DocKind::Person)?;
            self.commit_local(tx, id, &mut doc, |t| edit.apply(t))?;
            // Checked on the person as edited when the edit touches these facts (a
            // merge of two honest edits may disagree; other edits stay possible);
            // an error rolls the write back.
            let touches = edit.id_number.is_some() || edit.sex.is_some() || edit.born.is_some();
            let after = PersonDoc::read(&doc, id).map_err(Error::malformed(id))?;
            if let (Some(number), true) = (&after.id_number, touches) {
                if after.sex.is_some_and(|s| s != number.sex())
                    || after.born.is_some_and(|b| b != number.birth_date())
                {
                    return Err(Error::InvalidInput(
                        "sex and birth date must match the ID number".into(),
                    ));
                }
            }
            self.materialise(tx, id, &doc)
        })
    }

    /// Move a person into `household` with the relationship to its head, or out
    /// of any household with `None`: one change to the person's document, so
    /// concurrent moves end in the same household on every replica.
    pub fn move_person(&self, id: &DocId, household: Option<(DocId, String)>) -> Result<()> {
        let me = self.me()?;
        if let Some((_, relation)) = &household {
            if relation.trim().is_empty() || relation.chars().count() > registry::limits::RELATION {
                return Err(Error::InvalidInput(format!(
                    "a relationship is 1 to {} characters",
                    registry::limits::RELATION
                )));
            }
        }
        self.write(|tx| {
            let (mut doc, content) = self.load_registry_doc(tx, &me, id, DocKind::Person)?;
            if let Some((h, _)) = &household {
                self.check_household(tx, &me, h, content.grid())?;
            }
            self.commit_local(tx, id, &mut doc, |t| {
                registry::set_household(t, household.as_ref())
            })?;
            self.materialise(tx, id, &doc)
        })
    }

    /// Name `person` the head of `household` (`None`: nobody).
    pub fn set_household_head(&self, household: &DocId, person: Option<&DocId>) -> Result<()> {
        let me = self.me()?;
        self.write(|tx| {
            let (mut doc, content) =
                self.load_registry_doc(tx, &me, household, DocKind::Household)?;
            if let Some(p) = person {
                self.check_head(tx, &me, p, content.grid())?;
            }
            self.commit_local(tx, household, &mut doc, |t| registry::set_head(t, person))?;
            self.materialise(tx, household, &doc)
        })
    }

    /// Record that `household` left the grid (搬离), now. Once only.
    pub fn household_leaves(&self, household: &DocId) -> Result<()> {
        let me = self.me()?;
        let at = self.now();
        self.write(|tx| {
            let (mut doc, content) =
                self.load_registry_doc(tx, &me, household, DocKind::Household)?;
            if matches!(
                content,
                DocContent::Household(HouseholdDoc { left: Some(_), .. })
            ) {
                return Err(Error::InvalidInput("the household has already left".into()));
            }
            self.commit_local(tx, household, &mut doc, |t| registry::leave(t, at))?;
            self.materialise(tx, household, &doc)
        })
    }

    /// Visit a household (入户走访) during one's own running patrol: the patrol gets a
    /// check-in that names the household (at a neutral place, with its GPS
    /// position), the household's document gets the visit with what it found. Both
    /// in one write; what was found lives only in the household's document, so
    /// erasing the household erases it. The household must be in the patrol's grid
    /// and still there. `photo`, if any, is one stored on this device
    /// ([`Engine::ingest_photo`]); it is uploaded like a case's.
    pub fn visit(
        &self,
        patrol: &DocId,
        household: &DocId,
        findings: &str,
        lat: f64,
        lon: f64,
        photo: Option<PhotoHash>,
    ) -> Result<()> {
        let n = findings.chars().count();
        if findings.trim().is_empty() || n > registry::limits::FINDINGS {
            return Err(Error::InvalidInput(format!(
                "findings: 1 to {} characters",
                registry::limits::FINDINGS
            )));
        }
        let photo = self.entry_photo(photo)?;
        let at = self.now();
        let checkin = CheckIn {
            at,
            place: VISIT_PLACE.to_owned(),
            lat,
            lon,
            household: Some(household.clone()),
            place_id: None,
        };
        self.record_on_patrol(patrol, household, checkin, |me, content| {
            let DocContent::Household(h) = content else {
                return Err(not_found("household", household));
            };
            if h.left.is_some() {
                return Err(Error::InvalidInput(
                    "the household has left the grid".into(),
                ));
            }
            if h.visits.len() >= registry::limits::VISITS {
                return Err(Error::InvalidInput(
                    "the household's visit log is full".into(),
                ));
            }
            let visit = Visit {
                at,
                by: me.id.clone(),
                patrol: patrol.clone(),
                findings: findings.to_owned(),
                photo,
            };
            Ok(move |t: &mut AmTransaction<'_>| registry::add_visit(t, &visit))
        })
    }

    /// One write for what a grid worker records at a household or place during
    /// her own running patrol: the check-in on the patrol (it names the target by
    /// id, at a neutral label, with its GPS position) and, on the target's
    /// document, what `entry` makes of it after its checks. The target must be
    /// in the patrol's grid.
    pub(super) fn record_on_patrol<E>(
        &self,
        patrol: &DocId,
        target: &DocId,
        checkin: CheckIn,
        entry: impl FnOnce(&User, &DocContent) -> Result<E>,
    ) -> Result<()>
    where
        E: FnOnce(&mut AmTransaction<'_>) -> std::result::Result<(), automerge::AutomergeError>,
    {
        crate::doc::case::check_coordinates(checkin.lat, checkin.lon)?;
        let me = self.me()?;
        self.write(|tx| {
            let (mut patrol_doc, p) = self.own_running_patrol(tx, patrol)?;
            if p.checkins.len() >= crate::doc::patrol::limits::CHECKINS {
                return Err(Error::InvalidInput("the patrol log is full".into()));
            }
            let (mut target_doc, content) =
                self.load_registry_doc(tx, &me, target, target.kind())?;
            if content.grid() != &p.grid {
                return Err(Error::InvalidInput(format!(
                    "the {} is not in the patrol's grid",
                    target.kind().as_str()
                )));
            }
            let write = entry(&me, &content)?;
            self.commit_local(tx, patrol, &mut patrol_doc, |t| {
                crate::doc::patrol::add_checkin(t, &checkin)
            })?;
            self.commit_local(tx, target, &mut target_doc, write)?;
            self.materialise(tx, patrol, &patrol_doc)?;
            self.materialise(tx, target, &target_doc)
        })
    }

    /// A person in full — ID and phone numbers unmasked — for a detail view.
    pub fn get_person(&self, id: &DocId) -> Result<PersonDoc> {
        let me = self.me()?;
        self.db.read(
            |tx| match self.load_registry_doc(tx, &me, id, DocKind::Person)?.1 {
                DocContent::Person(p) => Ok(p),
                _ => Err(not_found("person", id)),
            },
        )
    }

    /// A household.
    pub fn get_household(&self, id: &DocId) -> Result<HouseholdDoc> {
        let me = self.me()?;
        self.db.read(
            |tx| match self.load_registry_doc(tx, &me, id, DocKind::Household)?.1 {
                DocContent::Household(h) => Ok(h),
                _ => Err(not_found("household", id)),
            },
        )
    }

    /// Persons as lists show them (masked), within this user's region.
    pub fn list_persons(&self, filter: &PersonFilter) -> Result<Vec<PersonSummary>> {
        let Some(region) = self.registry_region(filter.region.as_ref())? else {
            return Ok(Vec::new());
        };
        let filter = PersonFilter {
            region: Some(region),
            ..filter.clone()
        };
        self.db
            .read(|tx| crate::registry::list_persons(tx, &filter))
    }

    /// Persons, households and special groups per grid of `region` (this user's
    /// region when `None`, and never beyond it).
    pub fn registry_counts(&self, region: Option<&RegionCode>) -> Result<Vec<GridCounts>> {
        match self.registry_region(region)? {
            Some(region) => self.db.read(|tx| crate::registry::counts(tx, &region)),
            None => Ok(Vec::new()),
        }
    }

    /// The persons of this user's region due for a visit now, by the directory's
    /// visit rules: never visited first, then the longest since.
    pub fn due_visits(&self) -> Result<Vec<DueVisit>> {
        let Some(region) = self.registry_region(None)? else {
            return Ok(Vec::new());
        };
        let dir = self.directory()?;
        let now = self.now();
        self.db
            .read(|tx| crate::registry::due_visits(tx, &region, now, |tag| dir.visit_every(tag)))
    }

    /// Visit coverage of `region` (this user's when `None`) in a calendar month
    /// (China Standard Time): per grid, households visited of those registered;
    /// per worker, visits and households.
    pub fn visit_coverage(
        &self,
        region: Option<&RegionCode>,
        year: i32,
        month: u32,
    ) -> Result<(Vec<GridCoverage>, Vec<WorkerCoverage>)> {
        self.visit_coverage_of(&self.me()?, region, year, month)
    }

    /// [`Engine::visit_coverage`] as `user` may see it (also the relay's, for a
    /// console user).
    pub(super) fn visit_coverage_of(
        &self,
        user: &User,
        region: Option<&RegionCode>,
        year: i32,
        month: u32,
    ) -> Result<(Vec<GridCoverage>, Vec<WorkerCoverage>)> {
        let (from, to) = month_bounds(year, month)?;
        match registry_region_of(user, region)? {
            Some(region) => self
                .db
                .read(|tx| crate::registry::visit_coverage(tx, &region, from, to)),
            None => Ok((Vec::new(), Vec::new())),
        }
    }

    /// The region a registry read covers: `asked` narrowed to this user's region
    /// (the user's own when `None`; `None` when they do not meet). A department
    /// handler is refused: base data is not theirs to see.
    pub(super) fn registry_region(&self, asked: Option<&RegionCode>) -> Result<Option<RegionCode>> {
        registry_region_of(&self.me()?, asked)
    }

    /// A household this user keeps, in `grid` (the person's: a household of
    /// another grid would take the person out of her grid's rounds and counts)
    /// and still there.
    pub(super) fn check_household(
        &self,
        tx: &Transaction<'_>,
        me: &User,
        id: &DocId,
        grid: &RegionCode,
    ) -> Result<()> {
        if id.kind() != DocKind::Household {
            return Err(not_found("household", id));
        }
        match crate::registry::household_row(tx, id)? {
            Some((g, _)) if !scope_of(me).sees(&g, None) => Err(not_found("household", id)),
            Some((g, _)) if &g != grid => Err(Error::InvalidInput(
                "the household is in another grid; move the person there first".into(),
            )),
            Some((_, Some(_))) => Err(Error::InvalidInput(
                "the household has left the grid".into(),
            )),
            Some(_) => Ok(()),
            None => Err(not_found("household", id)),
        }
    }

    /// A person this user keeps, in the household's `grid`, to head it.
    pub(super) fn check_head(
        &self,
        tx: &Transaction<'_>,
        me: &User,
        person: &DocId,
        grid: &RegionCode,
    ) -> Result<()> {
        let (_, content) = self.load_registry_doc(tx, me, person, DocKind::Person)?;
        if content.grid() != grid {
            return Err(Error::InvalidInput(
                "the head of a household lives in its grid".into(),
            ));
        }
        Ok(())
    }

    /// A person's or household's document this user keeps, and its content. Out
    /// of scope answers as not found: no probing by id.
    pub(super) fn load_registry_doc(
        &self,
        tx: &Transaction<'_>,
        me: &User,
        id: &DocId,
        kind: DocKind,
    ) -> Result<(Automerge, DocContent)> {
        let what = kind.as_str();
        if id.kind() != kind || me.role == Role::DepartmentHandler {
            return Err(not_found(what, id));
        }
        let doc = store::load(tx, id)?.ok_or_else(|| not_found(what, id))?;
        let content = DocContent::read(&doc, id).map_err(Error::malformed(id))?;
        if !scope_of(me).sees(content.grid(), None) {
            return Err(not_found(what, id));
        }
        Ok((doc, content))
    }
}
