//! What only a server asks of its replica; the phone never calls these (the
//! bindings do not expose them). Drafting a change as a console user, reading as
//! one, the command centre's figures, reading any document without a scope, the
//! checked import of a push, and a node's position in a shared log.

use automerge::transaction::Transaction as AmTransaction;
use automerge::{Automerge, AutomergeError, Change};
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::OptionalExtension;

use super::cases::check_room;
use super::{make_change, Case, Engine, Identity, ImportResult, PhotoInfo};
use crate::access::Scope;
use crate::directory::User;
use crate::doc::case::{self, check_note, CaseDoc, NewCase, Note, PhotoRef};
use crate::doc::registry::{self, HouseholdDoc, NewPerson, PersonDoc, PersonEdit, Tag};
use crate::doc::DocContent;
use crate::error::{Error, Result};
use crate::ids::{DocId, DocKind, RegionCode, UserId};
use crate::index::{self, CaseFilter, DailyCompliance};
use crate::registry::{GridCounts, GridCoverage, PersonFilter, PersonSummary, WorkerCoverage};
use crate::store;
use crate::workflow::{fold, Action};

/// A closed case, as [`Engine::closed_cases_before`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClosedCase {
    /// The case.
    pub doc: DocId,
    /// When it was closed, as the index reads its timeline.
    pub closed: DateTime<Utc>,
}

/// What a server checks incoming changes with (see
/// [`Engine::import_changes_checked`]).
pub(super) struct Checks<'a> {
    /// The veto over each document's changes.
    pub(super) check: &'a ChangeCheck<'a>,
    /// The writer's scope, which the documents' new references must stay in.
    pub(super) writer: Option<&'a Scope>,
}

/// A server's veto over incoming changes to one document: given the document id,
/// its content before them (`None` for a new document) and after them, and the
/// changes, `Err(reason)` refuses them all.
pub type ChangeCheck<'a> = dyn Fn(
        &DocId,
        Option<&DocContent>,
        &DocContent,
        &[automerge::Change],
    ) -> std::result::Result<(), String>
    + Sync
    + 'a;

impl Engine {
    /// The change `author` taking `action` on case `id` would make, checked exactly
    /// as [`Engine::act`] checks it, without storing it. A server's console acts for
    /// its signed-in users this way; the change then goes through the same checked
    /// import as a device's push.
    pub fn draft_action(&self, author: &Identity, id: &DocId, action: Action) -> Result<Vec<u8>> {
        let me = self.user(&author.user)?;
        self.check_department(&action)?;
        let (mut doc, case) = self.db.read(|tx| self.load_case_in_scope(tx, id, &me))?;
        let entry = self.action_entry(&case, &me, action)?;
        self.draft_change(&mut doc, id, author, |t| case::append_entry(t, &entry))
    }

    /// Like [`Engine::add_note`], drafted for `author` (see [`Engine::draft_action`]).
    pub fn draft_note(&self, author: &Identity, id: &DocId, text: &str) -> Result<Vec<u8>> {
        check_note(text)?;
        let note = Note {
            by: author.user.clone(),
            at: self.now(),
            text: text.to_owned(),
        };
        self.draft_case_edit(
            author,
            id,
            |case| case.notes.len() < case::limits::NOTES,
            "notes",
            |t| case::add_note(t, &note),
        )
    }

    /// Like [`Engine::attach_photo`], drafted for `author`, for a photo whose files
    /// the caller stores (a server keeps photos outside its replica's database).
    pub fn draft_photo(&self, author: &Identity, id: &DocId, photo: &PhotoInfo) -> Result<Vec<u8>> {
        let photo = PhotoRef {
            hash: photo.hash.clone(),
            thumb: Some(photo.thumb.clone()),
            width: photo.width,
            height: photo.height,
            by: author.user.clone(),
            at: self.now(),
        };
        self.draft_case_edit(
            author,
            id,
            |case| case.photos.len() < case::limits::PHOTOS,
            "photos",
            |t| case::add_photo(t, &photo),
        )
    }

    /// A new case drafted for `author` (see [`Engine::draft_action`]): the checks
    /// of [`Engine::report_case`], marked with the channel it came in by, with
    /// photos whose files the caller stores (at most [`case::limits::PHOTOS`]).
    /// Its id and the change. The resident channel and the console's hotline form
    /// report this way.
    pub fn draft_report(
        &self,
        author: &Identity,
        input: NewCase,
        channel: case::Channel,
        photos: &[PhotoInfo],
    ) -> Result<(DocId, Vec<u8>)> {
        if !input.photos.is_empty() || photos.len() > case::limits::PHOTOS {
            return Err(Error::InvalidInput(format!(
                "at most {} photos, each stored by the caller",
                case::limits::PHOTOS
            )));
        }
        let me = self.user(&author.user)?;
        let (id, mut content) = self.new_case(&me, input)?;
        content.channel = channel;
        content.photos = photos
            .iter()
            .map(|p| PhotoRef {
                hash: p.hash.clone(),
                thumb: Some(p.thumb.clone()),
                width: p.width,
                height: p.height,
                by: me.id.clone(),
                at: content.created,
            })
            .collect();
        let bytes =
            self.draft_change(&mut Automerge::new(), &id, author, |t| content.write_new(t))?;
        Ok((id, bytes))
    }

    /// [`Engine::edit_case`] drafted for `author`: the same checks, nothing stored.
    fn draft_case_edit(
        &self,
        author: &Identity,
        id: &DocId,
        has_room: impl FnOnce(&CaseDoc) -> bool,
        what: &str,
        edit: impl FnOnce(&mut AmTransaction<'_>) -> Result<(), AutomergeError>,
    ) -> Result<Vec<u8>> {
        let me = self.user(&author.user)?;
        let (mut doc, case) = self.db.read(|tx| self.load_case_in_scope(tx, id, &me))?;
        check_room(has_room(&case), what)?;
        self.draft_change(&mut doc, id, author, edit)
    }

    /// One change to `doc` made by `author`'s device, as bytes, not stored.
    fn draft_change(
        &self,
        doc: &mut Automerge,
        id: &DocId,
        author: &Identity,
        edit: impl FnOnce(&mut AmTransaction<'_>) -> Result<(), AutomergeError>,
    ) -> Result<Vec<u8>> {
        make_change(doc, id, &author.device, self.now(), edit)?
            .map(|c| c.raw_bytes().to_vec())
            .ok_or_else(|| Error::InvalidInput("the edit changes nothing".into()))
    }

    /// A new household drafted for `author` (see [`Engine::draft_action`]): the
    /// same checks as [`Engine::register_household`]; its id and the change.
    pub fn draft_register_household(
        &self,
        author: &Identity,
        grid: RegionCode,
        address: &str,
    ) -> Result<(DocId, Vec<u8>)> {
        let me = self.user(&author.user)?;
        let grid = self.registry_grid(&me, Some(grid))?;
        let n = address.chars().count();
        if address.trim().is_empty() || n > registry::limits::ADDRESS {
            return Err(Error::InvalidInput(format!(
                "an address is 1 to {} characters",
                registry::limits::ADDRESS
            )));
        }
        let id = DocId::new(DocKind::Household);
        let at = self.now();
        let bytes = self.draft_change(&mut Automerge::new(), &id, author, |t| {
            HouseholdDoc::write_new(t, &id, &me.id, at, &grid, address)
        })?;
        Ok((id, bytes))
    }

    /// A new person drafted for `author`: the checks of [`Engine::register_person`]
    /// (its household must be on this replica already); its id and the change.
    pub fn draft_register_person(
        &self,
        author: &Identity,
        person: NewPerson,
    ) -> Result<(DocId, Vec<u8>)> {
        let me = self.user(&author.user)?;
        person.validate().map_err(Error::InvalidInput)?;
        let grid = self.registry_grid(&me, Some(person.grid.clone()))?;
        if let Some((household, _)) = &person.household {
            self.db
                .read(|tx| self.check_household(tx, &me, household, &grid))?;
        }
        let person = NewPerson { grid, ..person };
        let id = DocId::new(DocKind::Person);
        let at = self.now();
        let bytes = self.draft_change(&mut Automerge::new(), &id, author, |t| {
            PersonDoc::write_new(t, &id, &me.id, at, &person)
        })?;
        Ok((id, bytes))
    }

    /// [`Engine::edit_person`] drafted for `author`: the same checks, nothing stored.
    pub fn draft_edit_person(
        &self,
        author: &Identity,
        id: &DocId,
        mut edit: PersonEdit,
    ) -> Result<Vec<u8>> {
        edit.validate().map_err(Error::InvalidInput)?;
        if let Some(Some(number)) = &edit.id_number {
            edit.sex.get_or_insert(Some(number.sex()));
            edit.born.get_or_insert(Some(number.birth_date()));
        }
        let me = self.user(&author.user)?;
        let (mut doc, _) = self
            .db
            .read(|tx| self.load_registry_doc(tx, &me, id, DocKind::Person))?;
        let bytes = self.draft_change(&mut doc, id, author, |t| edit.apply(t))?;
        let after = PersonDoc::read(&doc, id).map_err(Error::malformed(id))?;
        let touches = edit.id_number.is_some() || edit.sex.is_some() || edit.born.is_some();
        if let (Some(number), true) = (&after.id_number, touches) {
            if after.sex.is_some_and(|s| s != number.sex())
                || after.born.is_some_and(|b| b != number.birth_date())
            {
                return Err(Error::InvalidInput(
                    "sex and birth date must match the ID number".into(),
                ));
            }
        }
        Ok(bytes)
    }

    /// [`Engine::move_person`] drafted for `author`.
    pub fn draft_move_person(
        &self,
        author: &Identity,
        id: &DocId,
        household: Option<(DocId, String)>,
    ) -> Result<Vec<u8>> {
        if let Some((_, relation)) = &household {
            if relation.trim().is_empty() || relation.chars().count() > registry::limits::RELATION {
                return Err(Error::InvalidInput(format!(
                    "a relationship is 1 to {} characters",
                    registry::limits::RELATION
                )));
            }
        }
        let me = self.user(&author.user)?;
        let (mut doc, _) = self.db.read(|tx| {
            let loaded = self.load_registry_doc(tx, &me, id, DocKind::Person)?;
            if let Some((h, _)) = &household {
                self.check_household(tx, &me, h, loaded.1.grid())?;
            }
            Ok(loaded)
        })?;
        self.draft_change(&mut doc, id, author, |t| {
            registry::set_household(t, household.as_ref())
        })
    }

    /// [`Engine::set_household_head`] drafted for `author`.
    pub fn draft_set_head(
        &self,
        author: &Identity,
        household: &DocId,
        person: Option<&DocId>,
    ) -> Result<Vec<u8>> {
        let me = self.user(&author.user)?;
        let (mut doc, _) = self.db.read(|tx| {
            let loaded = self.load_registry_doc(tx, &me, household, DocKind::Household)?;
            if let Some(p) = person {
                self.check_head(tx, &me, p, loaded.1.grid())?;
            }
            Ok(loaded)
        })?;
        self.draft_change(&mut doc, household, author, |t| {
            registry::set_head(t, person)
        })
    }

    /// Every person and household on this replica by what an import matches them
    /// on, without a scope: persons by their masked ID number and its last six
    /// characters (the full number is in the document only), households still in
    /// their grid by grid and address. For a server's roster import, which checks
    /// the user's region itself.
    pub fn registry_keys(&self) -> Result<RegistryKeys> {
        self.db.read(|tx| {
            let persons = tx
                .prepare(
                    "SELECT doc_id, grid, id_masked, id_suffix FROM persons
                      WHERE id_masked IS NOT NULL",
                )?
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?
                .into_iter()
                .filter_map(|(id, grid, masked, reversed)| {
                    let suffix: String = reversed.chars().rev().collect();
                    Some((id.parse().ok()?, grid.parse().ok()?, masked, suffix))
                })
                .collect();
            let households = tx
                .prepare(
                    "SELECT doc_id, grid, address, head FROM households WHERE left_ms IS NULL",
                )?
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?
                .into_iter()
                .filter_map(|(id, grid, address, head)| {
                    Some((
                        id.parse().ok()?,
                        grid.parse().ok()?,
                        address,
                        head.and_then(|h| h.parse().ok()),
                    ))
                })
                .collect();
            Ok(RegistryKeys {
                persons,
                households,
            })
        })
    }

    /// The region a registry read by `user` covers: `asked` narrowed to the
    /// user's region (theirs when `None`; `None` when the two do not meet). A
    /// department handler is refused: base data is not theirs to see.
    pub fn registry_region_as(
        &self,
        user: &User,
        asked: Option<&RegionCode>,
    ) -> Result<Option<RegionCode>> {
        super::registry::registry_region_of(user, asked)
    }

    /// [`Engine::list_persons`] as `user` sees them (masked, within their region).
    pub fn list_persons_as(
        &self,
        user: &User,
        filter: &PersonFilter,
    ) -> Result<Vec<PersonSummary>> {
        // The masked number shows the last four digits; searching by more would
        // let someone who may only see it masked learn the hidden ones.
        let hidden = filter
            .id_suffix
            .as_deref()
            .is_some_and(|s| s.trim().chars().count() > 4);
        if hidden && !crate::access::keeps_registry(user) {
            return Err(Error::InvalidInput(
                "search by at most the last four characters of an ID number".into(),
            ));
        }
        let Some(region) = self.registry_region_as(user, filter.region.as_ref())? else {
            return Ok(Vec::new());
        };
        let filter = PersonFilter {
            region: Some(region),
            ..filter.clone()
        };
        self.db
            .read(|tx| crate::registry::list_persons(tx, &filter))
    }

    /// [`Engine::registry_counts`] as `user` may see them.
    pub fn registry_counts_as(
        &self,
        user: &User,
        region: Option<&RegionCode>,
    ) -> Result<Vec<GridCounts>> {
        match self.registry_region_as(user, region)? {
            Some(region) => self.db.read(|tx| crate::registry::counts(tx, &region)),
            None => Ok(Vec::new()),
        }
    }

    /// A person in full, as `user` may see them (out of their region: not found).
    /// Whether the full ID and phone numbers may be shown is the caller's
    /// question ([`crate::access::sees_identity`]).
    pub fn get_person_as(&self, user: &User, id: &DocId) -> Result<PersonDoc> {
        match self
            .db
            .read(|tx| self.load_registry_doc(tx, user, id, DocKind::Person))?
            .1
        {
            DocContent::Person(p) => Ok(p),
            _ => Err(Error::NotFound {
                what: "person",
                id: id.to_string(),
            }),
        }
    }

    /// A household as `user` may see it.
    pub fn get_household_as(&self, user: &User, id: &DocId) -> Result<HouseholdDoc> {
        match self
            .db
            .read(|tx| self.load_registry_doc(tx, user, id, DocKind::Household))?
            .1
        {
            DocContent::Household(h) => Ok(h),
            _ => Err(Error::NotFound {
                what: "household",
                id: id.to_string(),
            }),
        }
    }

    /// A place in full, as `user` may see it (out of their region: not found).
    pub fn get_place_as(&self, user: &User, id: &DocId) -> Result<crate::doc::place::PlaceDoc> {
        match self
            .db
            .read(|tx| self.load_registry_doc(tx, user, id, DocKind::Place))?
            .1
        {
            DocContent::Place(p) => Ok(p),
            _ => Err(Error::NotFound {
                what: "place",
                id: id.to_string(),
            }),
        }
    }

    /// The households living at `place`, in `user`'s region (at most 200).
    pub fn households_at_as(&self, user: &User, place: &DocId) -> Result<Vec<HouseholdRow>> {
        let Some(region) = self.registry_region_as(user, None)? else {
            return Ok(Vec::new());
        };
        self.db.read(|tx| {
            let rows = tx
                .prepare(
                    "SELECT doc_id, grid, address, head, left_ms FROM households
                      WHERE place = ?1 ORDER BY address, doc_id LIMIT 200",
                )?
                .query_map([place.as_str()], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, Option<i64>>(4)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows
                .into_iter()
                .filter_map(|(id, grid, address, head, left)| {
                    let grid: RegionCode = grid.parse().ok()?;
                    region.contains(&grid).then_some(())?;
                    Some(HouseholdRow {
                        id: id.parse().ok()?,
                        grid,
                        address,
                        head: head.and_then(|h| h.parse().ok()),
                        left: left.and_then(DateTime::from_timestamp_millis),
                    })
                })
                .collect())
        })
    }

    /// Households of `user`'s region whose address contains `address` (at most
    /// `limit`, by grid and address), for a console search by address.
    pub fn find_households_as(
        &self,
        user: &User,
        address: &str,
        limit: u32,
    ) -> Result<Vec<HouseholdRow>> {
        let address = address.trim();
        if address.is_empty() || address.chars().count() > crate::registry::MAX_QUERY_CHARS {
            return Err(Error::InvalidInput(format!(
                "an address query is 1 to {} characters",
                crate::registry::MAX_QUERY_CHARS
            )));
        }
        let Some(region) = self.registry_region_as(user, None)? else {
            return Ok(Vec::new());
        };
        let like = |s: &str| -> String {
            s.chars()
                .flat_map(|c| match c {
                    '%' | '_' | '\\' => vec!['\\', c],
                    c => vec![c],
                })
                .collect()
        };
        self.db.read(|tx| {
            let rows = tx
                .prepare(
                    "SELECT doc_id, grid, address, head, left_ms FROM households
                      WHERE +grid LIKE ?1 ESCAPE '\\' AND address LIKE ?2 ESCAPE '\\'
                      ORDER BY grid, address, doc_id LIMIT ?3",
                )?
                .query_map(
                    rusqlite::params![
                        format!("{}%", like(region.as_str())),
                        format!("%{}%", like(address)),
                        limit.min(crate::index::MAX_PAGE)
                    ],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, Option<String>>(3)?,
                            r.get::<_, Option<i64>>(4)?,
                        ))
                    },
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows
                .into_iter()
                .filter_map(|(id, grid, address, head, left)| {
                    Some(HouseholdRow {
                        id: id.parse().ok()?,
                        grid: grid.parse().ok()?,
                        address,
                        head: head.and_then(|h| h.parse().ok()),
                        left: left.and_then(DateTime::from_timestamp_millis),
                    })
                })
                .collect())
        })
    }

    /// The persons of `user`'s region in a special group (`tag`, or any), with
    /// their household's last visit and the visit rule: never visited first, then
    /// the longest since. `due` is whether the rule's days have passed at `now`.
    pub fn follow_ups_as(&self, user: &User, tag: Option<Tag>) -> Result<Vec<FollowUp>> {
        let Some(region) = self.registry_region_as(user, None)? else {
            return Ok(Vec::new());
        };
        let dir = self.directory()?;
        let now = self.now();
        // Every tagged person with their last visit: "due after 0 days" lists all.
        let all = self
            .db
            .read(|tx| crate::registry::due_visits(tx, &region, now, |_| Some(0)))?;
        Ok(all
            .into_iter()
            .filter(|d| tag.is_none_or(|t| d.person.tags.contains(&t)))
            .map(|d| {
                let every_days = d
                    .person
                    .tags
                    .iter()
                    .filter_map(|t| dir.visit_every(*t))
                    .min();
                let due = every_days.is_some_and(|days| {
                    d.last_visit
                        .is_none_or(|l| now - l >= chrono::Duration::days(days.into()))
                });
                FollowUp {
                    person: d.person,
                    every_days,
                    last_visit: d.last_visit,
                    due,
                }
            })
            .collect())
    }

    /// [`Engine::visit_coverage`] of `region` as `user` may see it.
    pub fn visit_coverage_as(
        &self,
        user: &User,
        region: Option<&RegionCode>,
        year: i32,
        month: u32,
    ) -> Result<(Vec<GridCoverage>, Vec<WorkerCoverage>)> {
        self.visit_coverage_of(user, region, year, month)
    }

    /// [`Engine::points`] of `region` as `user` may see them: the console's
    /// ranking of a community's or a town's workers for a month.
    pub fn points_as(
        &self,
        user: &User,
        region: Option<&RegionCode>,
        year: i32,
        month: u32,
    ) -> Result<Vec<crate::points::WorkerPoints>> {
        self.points_of(user, region, year, month)
    }

    /// [`Engine::points_adjustments`] of `region` as `user` may see them: the
    /// ledger under the console's ranking.
    pub fn points_adjustments_as(
        &self,
        user: &User,
        region: Option<&RegionCode>,
        year: i32,
        month: u32,
    ) -> Result<Vec<crate::points::Adjustment>> {
        self.points_adjustments_of(user, region, year, month)
    }

    /// A points adjustment drafted for `author` (see [`Engine::draft_action`]):
    /// the checks of [`Engine::adjust_points`]; its id and the change.
    pub fn draft_adjust_points(
        &self,
        author: &Identity,
        input: crate::doc::adjustment::NewAdjustment,
    ) -> Result<(DocId, Vec<u8>)> {
        let adjustment = self.new_adjustment(&self.user(&author.user)?, input)?;
        let bytes = self.draft_change(&mut Automerge::new(), &adjustment.id, author, |t| {
            adjustment.write_new(t)
        })?;
        Ok((adjustment.id, bytes))
    }

    /// A case as `user` may see it: the same "not found" as for a missing case when
    /// it is outside their scope. For a server answering for its users.
    pub fn get_case_as(&self, user: &User, id: &DocId) -> Result<Case> {
        let (_, doc) = self.db.read(|tx| self.load_case_in_scope(tx, id, user))?;
        let state = fold(&doc.timeline);
        Ok(Case { doc, state })
    }

    /// The GPS tracks of `worker`'s patrols on `day` (local calendar), those `user`
    /// may see, in the order they started: what the console's map draws over
    /// her grid. Points not yet written into a document are included.
    pub fn patrol_tracks_as(
        &self,
        user: &User,
        worker: &UserId,
        day: NaiveDate,
    ) -> Result<Vec<Vec<crate::track::TrackPoint>>> {
        let scope = crate::access::scope_of(user);
        self.db.read(|tx| {
            let ids: Vec<String> = tx
                .prepare_cached(
                    "SELECT doc_id FROM patrols WHERE worker = ?1 AND day = ?2
                     ORDER BY started_ms, doc_id",
                )?
                .query_map(rusqlite::params![worker.as_str(), day.to_string()], |r| {
                    r.get(0)
                })?
                .collect::<rusqlite::Result<_>>()?;
            let mut tracks = Vec::new();
            for id in ids.iter().filter_map(|id| id.parse::<DocId>().ok()) {
                let Some(doc) = store::load(tx, &id)? else {
                    continue;
                };
                let mut p = crate::doc::patrol::PatrolDoc::read(&doc, &id)
                    .map_err(Error::malformed(&id))?;
                if scope.sees_patrol(&p) {
                    p.track.extend(Self::pending_points(tx, &id)?);
                    tracks.push(p.track);
                }
            }
            Ok(tracks)
        })
    }

    /// The loop's figures over the cases `filter` selects (see [`crate::stats`]).
    pub fn statistics(&self, filter: &CaseFilter) -> Result<crate::stats::Summary> {
        self.db.read(|tx| crate::stats::summary(tx, filter))
    }

    /// The loop's figures per grid, reporter, category or month.
    pub fn statistics_by(
        &self,
        filter: &CaseFilter,
        by: crate::stats::GroupBy,
    ) -> Result<Vec<crate::stats::Group>> {
        self.db.read(|tx| crate::stats::grouped(tx, filter, by))
    }

    /// Each worker's compliance with "two patrols a day, two hours each" on each day
    /// from `from` to `to` (China Standard Time), zero-filled. At most 366 days.
    pub fn patrol_compliance(
        &self,
        workers: &[UserId],
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DailyCompliance>> {
        let days = (to - from).num_days();
        if !(0..366).contains(&days) {
            return Err(Error::InvalidInput(
                "the date range must be 1 to 366 days".into(),
            ));
        }
        self.db
            .read(|tx| index::patrol_compliance(tx, workers, from, to))
    }

    /// The cases of `category` closed (archived, evaluated or invalid) before
    /// `before` by the index's reading of their timelines, in the order they
    /// were closed, from just after `after` (a case of an earlier page), at most
    /// `limit`: the candidates of a relay's retention sweep.
    pub fn closed_cases_before(
        &self,
        category: &str,
        before: DateTime<Utc>,
        after: Option<&ClosedCase>,
        limit: u32,
    ) -> Result<Vec<ClosedCase>> {
        self.db.read(|tx| {
            let sql = "SELECT doc_id, closed_ms FROM cases
                 WHERE category = ? AND closed_ms < ? AND (closed_ms, doc_id) > (?, ?)
                 ORDER BY closed_ms, doc_id LIMIT ?";
            let before_ms = before.timestamp_millis();
            let (after_ms, after_doc) = after.map_or((i64::MIN, ""), |c| {
                (c.closed.timestamp_millis(), c.doc.as_str())
            });
            let args: [&dyn rusqlite::ToSql; 5] =
                [&category, &before_ms, &after_ms, &after_doc, &limit];
            let mut stmt = tx.prepare_cached(sql)?;
            let rows = stmt.query_map(args.as_slice(), |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })?;
            let mut cases = Vec::new();
            for row in rows {
                let (doc, closed_ms) = row?;
                // A time out of chrono's range is no time to erase by: never due.
                let closed =
                    DateTime::from_timestamp_millis(closed_ms).unwrap_or(DateTime::<Utc>::MAX_UTC);
                cases.push(ClosedCase {
                    doc: doc.parse()?,
                    closed,
                });
            }
            Ok(cases)
        })
    }

    /// Read any document on this replica, without the user's scope check: for a
    /// server, which holds every document of its region.
    pub fn read_doc(&self, id: &DocId) -> Result<Option<DocContent>> {
        self.db.read(|tx| {
            store::load(tx, id)?
                .map(|doc| DocContent::read(&doc, id).map_err(Error::malformed(id)))
                .transpose()
        })
    }

    /// Like [`Engine::import_changes`], but each document's new changes are shown to
    /// `check` with the document before and after them; if `check` refuses, none of
    /// them is stored. This is how a server authorises what a device pushes.
    ///
    /// With `writer`, the scope of whoever sent them, every reference a document
    /// newly makes to another ([`DocContent::references`]) is checked too: a
    /// target this replica holds (or that arrives in the same batch) must be in
    /// that scope, and in the referring document's grid where the reference
    /// requires it. A target not held is let through: a phone's offline link to
    /// a record since erased, or not yet arrived, must not cost it its report.
    pub fn import_changes_checked(
        &self,
        batch: Vec<(DocId, Vec<Change>)>,
        check: &ChangeCheck<'_>,
        writer: Option<&Scope>,
    ) -> Result<Vec<ImportResult>> {
        let now_ms = self.now().timestamp_millis();
        let checks = Checks { check, writer };
        self.write(|tx| self.import_batch(tx, batch, Some(&checks), now_ms))
    }

    /// How far into its server's shared change log this replica has applied
    /// (a relay node's own bookkeeping; 0 if never set).
    pub fn replica_position(&self) -> Result<u64> {
        self.db.read(|tx| -> Result<_> {
            let v: Option<String> = tx
                .query_row(
                    "SELECT value FROM meta WHERE key = 'replica_position'",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
        })
    }

    /// Record how far into its server's shared change log this replica has applied.
    pub fn set_replica_position(&self, seq: u64) -> Result<()> {
        self.write(|tx| -> Result<()> {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('replica_position', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [seq.to_string()],
            )?;
            Ok(())
        })
    }
}

/// A person to follow up (see [`Engine::follow_ups_as`]).
#[derive(Clone, Debug, PartialEq)]
pub struct FollowUp {
    /// The person, masked as lists show them.
    pub person: PersonSummary,
    /// Days between visits by the directory's rules for their groups, if any.
    pub every_days: Option<u32>,
    /// The household's last visit.
    pub last_visit: Option<DateTime<Utc>>,
    /// Whether a visit is due now.
    pub due: bool,
}

/// What a roster import matches rows on (see [`Engine::registry_keys`]).
#[derive(Clone, Default)]
pub struct RegistryKeys {
    /// Persons with an ID number: id, grid, masked ID number, its last six characters.
    pub persons: Vec<(DocId, RegionCode, String, String)>,
    /// Households not left: id, grid, address, head.
    pub households: Vec<(DocId, RegionCode, String, Option<DocId>)>,
}

impl std::fmt::Debug for RegistryKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryKeys")
            .field("persons", &self.persons.len())
            .field("households", &self.households.len())
            .finish()
    }
}

/// A household as a search lists it.
#[derive(Clone, PartialEq)]
pub struct HouseholdRow {
    /// Document id.
    pub id: DocId,
    /// The grid.
    pub grid: RegionCode,
    /// The address. Personal data.
    pub address: String,
    /// The head of household.
    pub head: Option<DocId>,
    /// When it left the grid.
    pub left: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for HouseholdRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HouseholdRow")
            .field("id", &self.id)
            .field("grid", &self.grid)
            .finish_non_exhaustive()
    }
}
