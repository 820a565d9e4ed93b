//! Who may see and change what: the one place for the access rules.
//!
//! Pure functions over the directory's users and the documents' content, no SQL
//! and no HTTP. The engine asks them before it writes, so a user hears "no" at
//! once and offline; the server asks them again of every pushed change, because
//! what a device checked proves nothing.
//!
//! - Seeing ([`scope_of`]): a department handler sees the cases dispatched to her
//!   department and no patrols; everyone else every document in their region's
//!   subtree.
//! - Changing: documents only grow ([`check_history`]); a user adds timeline
//!   entries, notes and photos in their own name and role, to what they see, as
//!   the workflow allows, and reports cases in grids their region covers
//!   ([`authorize`]); a patrol log is written by its grid worker alone. A
//!   downstream relay vouches for who made a change, not for what the rules allow
//!   ([`authorize_relayed`]).

use crate::directory::{Directory, Role, User};
use crate::doc::adjustment::AdjustmentDoc;
use crate::doc::case::CaseDoc;
use crate::doc::patrol::PatrolDoc;
use crate::doc::place::{Inspection, PlaceDoc};
use crate::doc::registry::{HouseholdDoc, PersonDoc, Visit};
use crate::doc::DocContent;
use crate::ids::{DeptId, DocId, RegionCode, RegionLevel, UserId};
use crate::index::CaseFilter;
use crate::workflow::{fold, may_report, Action, Entry, Outcome, Refusal};

/// What a user may see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every case and patrol whose grid lies in this region's subtree.
    Region(RegionCode),
    /// The cases dispatched to this department (while they stay dispatched to it,
    /// handled included); no patrols.
    Department(DeptId),
    /// Nothing: a department handler without a department (a directory the
    /// directory's own checks would refuse).
    Nothing,
}

/// What `user` may see: a department handler what is dispatched to her department,
/// everyone else their region's subtree.
pub fn scope_of(user: &User) -> Scope {
    match (user.role, &user.department) {
        (Role::DepartmentHandler, Some(dept)) => Scope::Department(dept.clone()),
        (Role::DepartmentHandler, None) => Scope::Nothing,
        _ => Scope::Region(user.region.clone()),
    }
}

impl Scope {
    /// The region whose subtree is in scope, if this is a region scope.
    pub fn region(&self) -> Option<&RegionCode> {
        match self {
            Scope::Region(r) => Some(r),
            _ => None,
        }
    }

    /// The department whose cases are in scope, if this is a department scope.
    pub fn dept(&self) -> Option<&DeptId> {
        match self {
            Scope::Department(d) => Some(d),
            _ => None,
        }
    }

    /// Whether a document of `grid`, dispatched to `dept` (`None` for a patrol or a
    /// case not dispatched), is in scope. What an index row or the relay's store
    /// knows of a document is enough to decide.
    pub fn sees(&self, grid: &RegionCode, dept: Option<&DeptId>) -> bool {
        match self {
            Scope::Region(r) => r.contains(grid),
            Scope::Department(d) => dept == Some(d),
            Scope::Nothing => false,
        }
    }

    /// Whether `case` is in scope (its timeline is folded for the department).
    pub fn sees_case(&self, case: &CaseDoc) -> bool {
        match self {
            Scope::Region(r) => r.contains(&case.grid),
            _ => self.sees(&case.grid, fold(&case.timeline).assigned_dept.as_ref()),
        }
    }

    /// Whether `patrol` is in scope.
    pub fn sees_patrol(&self, patrol: &PatrolDoc) -> bool {
        self.sees(&patrol.grid, None)
    }

    /// Whether a document is in scope.
    pub fn sees_doc(&self, doc: &DocContent) -> bool {
        match doc {
            DocContent::Case(c) => self.sees_case(c),
            DocContent::Patrol(p) => self.sees_patrol(p),
            // Base data is never dispatched: a department scope sees none of it.
            // Base data and points adjustments are never dispatched either.
            DocContent::Person(_)
            | DocContent::Household(_)
            | DocContent::Place(_)
            | DocContent::Adjustment(_) => self.sees(doc.grid(), None),
        }
    }

    /// Whether every document of `region` (a grid or a larger region) is in scope,
    /// now and whatever becomes of it: only a region scope over it. New documents
    /// are made in grids the maker's scope covers, and a region list offers only
    /// these.
    pub fn covers(&self, region: &RegionCode) -> bool {
        self.region().is_some_and(|r| r.contains(region))
    }

    /// The scope part of a case list's filter (region or department), to narrow
    /// further. Refused for [`Scope::Nothing`], which no filter can express.
    pub fn case_filter(&self) -> Result<CaseFilter, Denied> {
        match self {
            Scope::Region(r) => Ok(CaseFilter {
                region: Some(r.clone()),
                ..Default::default()
            }),
            Scope::Department(d) => Ok(CaseFilter {
                assigned_dept: Some(d.clone()),
                ..Default::default()
            }),
            Scope::Nothing => Err(Denied::NoDepartment),
        }
    }
}

/// Why a user may not see or make a change. The messages are what a refused
/// device or console user is told; they name codes and ids, never a person.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// A change turned a case into a patrol or back.
    #[error("document kind changed")]
    KindChanged,
    /// A change rewrote a patrol's worker, grid or start.
    #[error("a patrol's worker, grid and start cannot change")]
    PatrolRewritten,
    /// A change reopened or re-ended an ended patrol.
    #[error("an ended patrol cannot be reopened or re-ended")]
    PatrolEnded,
    /// A change took something out of a patrol log or reordered it.
    #[error("a patrol log can only be added to")]
    PatrolShrunk,
    /// A change rewrote what was reported (grid, reporter, title, people …).
    #[error("what was reported cannot be changed afterwards")]
    ReportChanged,
    /// A change altered, removed or reordered timeline entries.
    #[error("timeline entries cannot be changed, removed or reordered")]
    TimelineRewritten,
    /// A change altered or removed notes or photos.
    #[error("notes and photos cannot be changed or removed")]
    NotesRewritten,
    /// A patrol log written by someone other than its grid worker.
    #[error("a patrol log can only be written by its grid worker")]
    NotPatrolWorker,
    /// A patrol log of a grid outside the worker's region.
    #[error("the patrol's grid is outside your region")]
    PatrolOutsideRegion,
    /// A change to a case outside the user's scope.
    #[error("case {0} is outside your scope")]
    OutOfScope(DocId),
    /// A role that never reports cases (department handlers handle them).
    #[error("a {role} may not report cases")]
    MayNotReport {
        /// The role's stored name.
        role: &'static str,
    },
    /// A new case in a grid the user's region does not cover.
    #[error("grid {0} is outside your region")]
    GridOutsideRegion(RegionCode),
    /// A new case naming someone else as its reporter.
    #[error("a new case must be reported by you")]
    NotReporter,
    /// A timeline entry naming someone else, or another role.
    #[error("a timeline entry must name you and your role")]
    NotAuthor,
    /// A note or photo added in someone else's name.
    #[error("a note or photo must be added in your own name")]
    NotNoteAuthor,
    /// A timeline entry the workflow refuses.
    #[error("workflow: {0}")]
    Workflow(Refusal),
    /// A relay forwarded a document outside its region.
    #[error("the document is outside the relay's region")]
    OutsideRelayRegion,
    /// A relay forwarded a patrol log that is not a grid worker's of its grid.
    #[error("a patrol log must be a grid worker's of that grid")]
    NotWorkersPatrol,
    /// A relay forwarded an entry, note or photo no directory user could have made.
    #[error("an entry, note or photo names someone who could not have made it")]
    Unvouched,
    /// A handler without a department sees nothing, and no list can say so.
    #[error("this handler has no department in the directory")]
    NoDepartment,
    /// A change rewrote who registered a person or household, or when.
    #[error("who registered a record, and when, cannot change")]
    RegistryRewritten,
    /// A change brought back a household that left the grid, or moved its date.
    #[error("a household that left the grid cannot be changed back")]
    HouseholdLeft,
    /// Base data written by a role that does not keep it, or outside the user's
    /// region (before or after the change).
    #[error("base data of grid {0} is not yours to keep")]
    RegistryOutsideRegion(RegionCode),
    /// A new person or household naming someone else as who registered it.
    #[error("a new record must be registered in your name")]
    NotRegistrar,
    /// A change altered, removed or reordered a household's visits.
    #[error("visits cannot be changed, removed or reordered")]
    VisitsRewritten,
    /// A visit recorded in someone else's name.
    #[error("a visit must be recorded in your own name")]
    NotVisitor,
    /// A change to a points adjustment, which is written once.
    #[error("a points adjustment cannot be changed")]
    AdjustmentRewritten,
    /// A points adjustment by someone who does not lead the worker's grid.
    #[error("only a community or town dispatcher over grid {0} may adjust its points")]
    NotLeader(RegionCode),
    /// A new points adjustment naming someone else as who made it.
    #[error("a points adjustment must be made in your own name")]
    NotAdjuster,
    /// A new points adjustment whose worker is not a grid worker of its grid.
    #[error("a points adjustment must name a grid worker of its grid")]
    NotGridsWorker,
    /// A new case reported at a level above its author's.
    #[error("a new case cannot start at {} level", .0.as_str())]
    ReportLevel(RegionLevel),
}

/// Whether `user`'s role reports cases at all (everyone but department handlers:
/// dispatchers record hotline reports).
pub fn check_reporter(user: &User) -> Result<(), Denied> {
    if may_report(user.role) {
        Ok(())
    } else {
        Err(Denied::MayNotReport {
            role: user.role.as_str(),
        })
    }
}

/// The level a new case reported by `role` starts at: her own for a dispatcher,
/// the community for everyone else (an administrator's report included).
pub fn report_level(role: Role) -> RegionLevel {
    match role.dispatch_level() {
        Some(level) if role != Role::Admin => level,
        _ => RegionLevel::Community,
    }
}

/// A new case's report starts no higher than its author's [`report_level`] (the
/// author's role is checked with the entries): a case reported at a level above
/// would be out of reach of the dispatchers who should take it.
fn check_report_level(c: &CaseDoc) -> Result<(), Denied> {
    match c.timeline.first() {
        Some(Entry {
            role,
            action: Action::Report { level },
            ..
        }) if *level > report_level(*role) => Err(Denied::ReportLevel(*level)),
        // A first entry that is not a report is the workflow's to refuse.
        _ => Ok(()),
    }
}

/// Whether `user` may report a new case in `grid`: a role that reports, and a grid
/// their scope covers.
pub fn check_new_case(user: &User, grid: &RegionCode) -> Result<(), Denied> {
    check_reporter(user)?;
    if scope_of(user).covers(grid) {
        Ok(())
    } else {
        Err(Denied::GridOutsideRegion(grid.clone()))
    }
}

/// Whether `user` keeps the base data of `grid`: grid workers of their grid and
/// dispatchers over it (department handlers never see it).
pub fn check_registry_writer(user: &User, grid: &RegionCode) -> Result<(), Denied> {
    if user.role != Role::DepartmentHandler && scope_of(user).covers(grid) {
        Ok(())
    } else {
        Err(Denied::RegistryOutsideRegion(grid.clone()))
    }
}

/// Whether `user` may see a resident's full ID and phone numbers on a detail view of
/// a registry document in `grid`: the people who visit and call residents (the
/// grid's workers, the community over it) and administrators, within their region.
/// Everyone else sees them masked; lists and exports are masked for everyone.
pub fn sees_identity(user: &User, grid: &RegionCode) -> bool {
    matches!(
        user.role,
        Role::GridWorker | Role::CommunityDispatcher | Role::Admin
    ) && scope_of(user).covers(grid)
}

/// Whether `user`'s devices receive the base data of their region: the grid
/// workers who keep it, the community over them and administrators. Town and
/// district dispatchers see it on the console (masked, counted) but do not carry
/// a town's worth of residents on a phone; department handlers never see it.
pub fn keeps_registry(user: &User) -> bool {
    matches!(
        user.role,
        Role::GridWorker | Role::CommunityDispatcher | Role::Admin
    )
}

/// Whether `user` leads `grid` and may adjust its grid workers' points by hand: a
/// community or town dispatcher (or an administrator) whose region covers it.
pub fn check_points_adjuster(user: &User, grid: &RegionCode) -> Result<(), Denied> {
    let leader = matches!(
        user.role,
        Role::CommunityDispatcher | Role::TownDispatcher | Role::Admin
    );
    if leader && scope_of(user).covers(grid) {
        Ok(())
    } else {
        Err(Denied::NotLeader(grid.clone()))
    }
}

/// Whether `user` may write `patrol`: it is theirs, they are a grid worker, and
/// its grid is in their region.
pub fn check_patrol_writer(user: &User, patrol: &PatrolDoc) -> Result<(), Denied> {
    if patrol.worker != user.id || user.role != Role::GridWorker {
        return Err(Denied::NotPatrolWorker);
    }
    if !scope_of(user).covers(&patrol.grid) {
        return Err(Denied::PatrolOutsideRegion);
    }
    Ok(())
}

/// What no change may do, whoever makes it: change a document's kind, rewrite what
/// was reported, change, remove or reorder timeline entries, notes or photos, or
/// take anything out of a patrol log. `before` is `None` for a new document.
pub fn check_history(before: Option<&DocContent>, after: &DocContent) -> Result<(), Denied> {
    match (before, after) {
        (None, _) => Ok(()),
        (Some(DocContent::Patrol(b)), DocContent::Patrol(p)) => {
            if b.worker != p.worker || b.grid != p.grid || b.started != p.started {
                return Err(Denied::PatrolRewritten);
            }
            if b.ended.is_some() && b.ended != p.ended {
                return Err(Denied::PatrolEnded);
            }
            // Patrol logs only grow: what was recorded stays, in order.
            let grown = p.track.starts_with(&b.track)
                && p.checkins.starts_with(&b.checkins)
                && p.observations.starts_with(&b.observations)
                && p.cases.starts_with(&b.cases);
            if grown {
                Ok(())
            } else {
                Err(Denied::PatrolShrunk)
            }
        }
        (Some(DocContent::Person(b)), DocContent::Person(p)) => {
            if b.created_by != p.created_by || b.created != p.created {
                return Err(Denied::RegistryRewritten);
            }
            Ok(())
        }
        (Some(DocContent::Household(b)), DocContent::Household(h)) => {
            if b.created_by != h.created_by || b.created != h.created {
                return Err(Denied::RegistryRewritten);
            }
            // Only clearing it: two devices recording the leaving offline merge to
            // one of their times, and neither may be refused for it.
            if b.left.is_some() && h.left.is_none() {
                return Err(Denied::HouseholdLeft);
            }
            if !is_subsequence(&b.visits, &h.visits) {
                return Err(Denied::VisitsRewritten);
            }
            Ok(())
        }
        (Some(DocContent::Place(b)), DocContent::Place(p)) => {
            if b.created_by != p.created_by || b.created != p.created || b.kind != p.kind {
                return Err(Denied::RegistryRewritten);
            }
            if !is_subsequence(&b.inspections, &p.inspections) {
                return Err(Denied::VisitsRewritten);
            }
            Ok(())
        }
        (Some(DocContent::Adjustment(b)), DocContent::Adjustment(a)) => {
            if a == b {
                Ok(())
            } else {
                Err(Denied::AdjustmentRewritten)
            }
        }
        (Some(DocContent::Case(b)), DocContent::Case(c)) => {
            let report_unchanged = b.grid == c.grid
                && b.reporter == c.reporter
                && b.created == c.created
                && b.title == c.title
                && b.description == c.description
                && b.category == c.category
                && b.subcategory == c.subcategory
                && b.severity == c.severity
                && b.location == c.location
                && b.people == c.people
                && b.links == c.links;
            if !report_unchanged {
                return Err(Denied::ReportChanged);
            }
            if !is_subsequence(&b.timeline, &c.timeline) {
                return Err(Denied::TimelineRewritten);
            }
            if !is_subsequence(&b.notes, &c.notes) || !is_subsequence(&b.photos, &c.photos) {
                return Err(Denied::NotesRewritten);
            }
            Ok(())
        }
        _ => Err(Denied::KindChanged),
    }
}

/// May `user` (on a phone, or in the console) change document `id` from `before`
/// (`None` if new) to `after`? The rules the server enforces on every push,
/// whatever the device's own checks said: [`check_history`], then a patrol log
/// only by its grid worker, a new case only as [`check_new_case`] allows and in
/// the user's name, and on a case the user sees (as it was before: a handler's
/// case is hers while dispatched to her department) only new entries, notes and
/// photos in the user's own name and role that the workflow accepts.
pub fn authorize(
    user: &User,
    id: &DocId,
    before: Option<&DocContent>,
    after: &DocContent,
) -> Result<(), Denied> {
    check_history(before, after)?;
    match after {
        DocContent::Patrol(p) => check_patrol_writer(user, p),
        DocContent::Adjustment(a) => check_new_adjustment(user, before, a),
        DocContent::Person(PersonDoc { created_by, .. })
        | DocContent::Household(HouseholdDoc { created_by, .. })
        | DocContent::Place(PlaceDoc { created_by, .. }) => {
            // Moving a record to another grid needs both grids. A record outside
            // the user's region answers as a case does, without naming its grid.
            if let Some(b) = before {
                check_registry_writer(user, b.grid())
                    .map_err(|_| Denied::OutOfScope(id.clone()))?;
            }
            check_registry_writer(user, after.grid())?;
            if before.is_none() && *created_by != user.id {
                return Err(Denied::NotRegistrar);
            }
            if new_visitors(before, after).any(|by| *by != user.id) {
                return Err(Denied::NotVisitor);
            }
            Ok(())
        }
        DocContent::Case(c) => {
            let b = match before {
                Some(DocContent::Case(b)) => Some(b),
                _ => None,
            };
            match b {
                Some(b) if !scope_of(user).sees_case(b) => {
                    return Err(Denied::OutOfScope(id.clone()))
                }
                Some(_) => {}
                // A new case's entries are all checked as new: the first must be
                // the user's report.
                None => {
                    check_new_case(user, &c.grid)?;
                    if c.reporter != user.id {
                        return Err(Denied::NotReporter);
                    }
                    check_report_level(c)?;
                }
            }
            check_new_entries(b, c, |actor, role| {
                *actor == user.id && role.is_none_or(|r| r == user.role)
            })
            .map_err(|e| match e {
                NewEntry::Author => Denied::NotAuthor,
                NewEntry::Workflow(reason) => Denied::Workflow(reason),
                NewEntry::NoteOrPhoto => Denied::NotNoteAuthor,
            })
        }
    }
}

/// What a downstream relay serving `region` may forward: the same history rules as
/// any change, every document inside the region before and after, a patrol log
/// only of a grid worker who may write it, and every new entry, note or photo made
/// by a directory user who could have made it (their role, and the case in their
/// scope as it is after the change) — the relay vouches for who made it, not for
/// what the rules allow, so the workflow is checked here too.
pub fn authorize_relayed(
    dir: &Directory,
    region: &RegionCode,
    before: Option<&DocContent>,
    after: &DocContent,
) -> Result<(), Denied> {
    check_history(before, after)?;
    let relay = Scope::Region(region.clone());
    if !before
        .into_iter()
        .chain([after])
        .all(|d| relay.covers(d.grid()))
    {
        return Err(Denied::OutsideRelayRegion);
    }
    match after {
        DocContent::Patrol(p) => match dir.user(&p.worker) {
            Some(u) if check_patrol_writer(u, p).is_ok() => Ok(()),
            _ => Err(Denied::NotWorkersPatrol),
        },
        DocContent::Adjustment(a) => match dir.user(&a.by) {
            Some(u) if check_new_adjustment(u, before, a).is_ok() => check_adjusted_worker(dir, a),
            _ => Err(Denied::Unvouched),
        },
        // Inside the relay's region (checked above), registered and visited by
        // people who keep that grid's base data.
        DocContent::Person(PersonDoc { created_by, .. })
        | DocContent::Household(HouseholdDoc { created_by, .. })
        | DocContent::Place(PlaceDoc { created_by, .. }) => {
            let keeps = |id: &UserId| {
                dir.user(id)
                    .is_some_and(|u| check_registry_writer(u, after.grid()).is_ok())
            };
            let vouched =
                (before.is_some() || keeps(created_by)) && new_visitors(before, after).all(keeps);
            if vouched {
                Ok(())
            } else {
                Err(Denied::Unvouched)
            }
        }
        DocContent::Case(c) => {
            let b = match before {
                Some(DocContent::Case(b)) => Some(b),
                _ => None,
            };
            if b.is_none() {
                check_report_level(c)?;
            }
            let dept = fold(&c.timeline).assigned_dept;
            check_new_entries(b, c, |actor, role| {
                dir.user(actor).is_some_and(|u| {
                    scope_of(u).sees(&c.grid, dept.as_ref()) && role.is_none_or(|r| r == u.role)
                })
            })
            .map_err(|e| match e {
                NewEntry::Workflow(reason) => Denied::Workflow(reason),
                NewEntry::Author | NewEntry::NoteOrPhoto => Denied::Unvouched,
            })
        }
    }
}

/// Whether the worker a new points adjustment names is a grid worker of its
/// grid in `dir`: what the relay checks besides [`authorize`], which knows only
/// the user (an adjustment may not slip into a grid its worker is not in).
pub fn check_adjusted_worker(dir: &Directory, a: &AdjustmentDoc) -> Result<(), Denied> {
    match dir.user(&a.worker) {
        Some(u) if u.role == Role::GridWorker && u.region == a.grid => Ok(()),
        _ => Err(Denied::NotGridsWorker),
    }
}

/// A points adjustment is made once, in its maker's name, by a leader of the
/// worker's grid; nothing changes it afterwards.
fn check_new_adjustment(
    user: &User,
    before: Option<&DocContent>,
    a: &AdjustmentDoc,
) -> Result<(), Denied> {
    if before.is_some() {
        return Err(Denied::AdjustmentRewritten);
    }
    check_points_adjuster(user, &a.grid)?;
    if a.by != user.id {
        return Err(Denied::NotAdjuster);
    }
    Ok(())
}

/// Why a new timeline entry, note or photo is refused by [`check_new_entries`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewEntry {
    /// An entry not made by someone who may make it.
    Author,
    /// An entry the workflow refuses.
    Workflow(Refusal),
    /// A note or photo not added by someone who may add it.
    NoteOrPhoto,
}

/// Every timeline entry, note and photo in `after` that was not in `before` must be
/// one `may_author(actor, role)` allows (role `None` for notes and photos), and no
/// new entry may be refused by the workflow. An entry that lost a conflict with a
/// concurrent one is not refused: it was valid where it was made.
pub fn check_new_entries(
    before: Option<&CaseDoc>,
    after: &CaseDoc,
    may_author: impl Fn(&UserId, Option<Role>) -> bool,
) -> Result<(), NewEntry> {
    // The entries held before are matched in order, whole (history checks that
    // they are a subsequence), not by id: an id is the writer's to choose, so a
    // new entry reusing an old one's id is still checked as new.
    let held = before.map_or(&[][..], |b| b.timeline.as_slice());
    let mut matched = 0;
    let state = fold(&after.timeline);
    for (entry, outcome) in after.timeline.iter().zip(&state.outcomes) {
        if held.get(matched) == Some(entry) {
            matched += 1;
            continue;
        }
        if !may_author(&entry.actor, Some(entry.role)) {
            return Err(NewEntry::Author);
        }
        if let Outcome::Refused(reason) = outcome {
            return Err(NewEntry::Workflow(reason.clone()));
        }
    }
    let new_notes_ok = after
        .notes
        .iter()
        .all(|n| before.is_some_and(|b| b.notes.contains(n)) || may_author(&n.by, None));
    let new_photos_ok = after
        .photos
        .iter()
        .all(|p| before.is_some_and(|b| b.photos.contains(p)) || may_author(&p.by, None));
    if new_notes_ok && new_photos_ok {
        Ok(())
    } else {
        Err(NewEntry::NoteOrPhoto)
    }
}

/// Who made the visits of a household, or the inspections of a place, that
/// `before` did not have.
fn new_visitors<'a>(
    before: Option<&'a DocContent>,
    after: &'a DocContent,
) -> impl Iterator<Item = &'a UserId> {
    // The entries of `new` left over once `old` is matched in order (history
    // checks that it is a subsequence): by position, so a copy of an existing
    // entry counts as new and is checked like any other.
    fn added<'a, T: PartialEq>(
        old: &'a [T],
        new: &'a [T],
        by: impl Fn(&'a T) -> &'a UserId + 'a,
    ) -> Box<dyn Iterator<Item = &'a UserId> + 'a> {
        let mut matched = 0;
        Box::new(
            new.iter()
                .filter(move |v| {
                    if old.get(matched) == Some(*v) {
                        matched += 1;
                        false
                    } else {
                        true
                    }
                })
                .map(by),
        )
    }
    match (before, after) {
        (Some(DocContent::Household(b)), DocContent::Household(h)) => {
            added(&b.visits, &h.visits, |v: &Visit| &v.by)
        }
        (_, DocContent::Household(h)) => added(&[], &h.visits, |v: &Visit| &v.by),
        (Some(DocContent::Place(b)), DocContent::Place(p)) => {
            added(&b.inspections, &p.inspections, |i: &Inspection| &i.by)
        }
        (_, DocContent::Place(p)) => added(&[], &p.inspections, |i: &Inspection| &i.by),
        _ => Box::new(std::iter::empty()),
    }
}

/// Whether every item of `old` is in `new`, in the same order (concurrent appends
/// from other devices may sit between them).
fn is_subsequence<T: PartialEq>(old: &[T], new: &[T]) -> bool {
    let mut rest = new.iter();
    old.iter().all(|o| rest.any(|n| n == o))
}

#[cfg(test)]
mod tests {
    //! Role × scope × action tables. Each row names who acts, on what, doing what,
    //! and whether it is allowed; every row is checked against the server's rule
    //! ([`authorize`]) and, where the engine checks the same thing locally, against
    //! the engine's rule (scope plus workflow), so the two cannot drift apart.

    use chrono::{DateTime, TimeZone, Utc};

    use super::*;
    use crate::directory::tests::sample;
    use crate::doc::case::{NewCase, Note, PhotoRef, Severity};
    use crate::doc::patrol::Observation;
    use crate::ids::{DocKind, RegionLevel};
    use crate::workflow::{Action, Entry, SupervisionLevel};

    /// Grid worker of grid A.
    const W: &str = "w-339901001001001";
    /// Grid worker of grid B, A's sibling in the same community.
    const W2: &str = "w-339901001001002";
    /// Dispatcher of the community of A and B.
    const CD: &str = "cd-339901001001";
    /// Dispatcher of another community of the same town.
    const CD2: &str = "cd-339901001002";
    /// Dispatcher of the town.
    const TD: &str = "td-339901001";
    /// Dispatcher of the district.
    const DD: &str = "dd-339901-1";
    /// Handler of the water department.
    const H: &str = "h-water-1";
    /// Handler of the housing department.
    const H2: &str = "h-housing-1";
    const ADMIN: &str = "admin";
    const EVERYONE: [&str; 9] = [W, W2, CD, CD2, TD, DD, H, H2, ADMIN];

    const GRID_A: &str = "339901001001001";
    const GRID_B: &str = "339901001001002";
    const GRID_OTHER_COMMUNITY: &str = "339901001002001";
    const GRID_OTHER_TOWN: &str = "339901002001001";
    const TOWN: &str = "339901001";
    const OTHER_TOWN: &str = "339901002";

    /// One change: what, by whom (a user, or the region of a relay), the document
    /// before (`None` if new) and after, and the verdict.
    type ChangeRow = (
        &'static str,
        &'static str,
        Option<DocContent>,
        DocContent,
        Result<(), Denied>,
    );

    /// A user, the region and the department of their scope, regions it covers and
    /// regions it does not.
    type ScopeRow = (
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        &'static [&'static str],
        &'static [&'static str],
    );

    fn at(min: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_793_577_600 + min * 60, 0).unwrap()
    }

    fn user(dir: &Directory, id: &str) -> User {
        dir.user(&id.parse().unwrap()).expect(id).clone()
    }

    /// `c` with an entry appended after its last one, by `actor` in `role`.
    fn with_entry(c: &CaseDoc, actor: &User, role: Role, action: Action) -> CaseDoc {
        let mut c = c.clone();
        let n = c.timeline.len();
        c.timeline.push(Entry {
            id: format!("e{n}"),
            after: c.last_entry_id().map(str::to_owned),
            actor: actor.id.clone(),
            role,
            at: at(n as i64),
            action,
        });
        c
    }

    /// A case reported by `reporter` in `grid`, then `steps`, each in its actor's
    /// own name and role.
    fn case(dir: &Directory, reporter: &str, grid: &str, steps: &[(&str, Action)]) -> CaseDoc {
        let r = user(dir, reporter);
        let report = Entry {
            id: "e0".into(),
            after: None,
            actor: r.id.clone(),
            role: r.role,
            at: at(0),
            action: Action::Report {
                level: RegionLevel::Community,
            },
        };
        let input = NewCase {
            title: "楼上管道漏水".into(),
            description: String::new(),
            category: "livelihood".parse().unwrap(),
            subcategory: None,
            severity: Severity::High,
            grid: None,
            location: None,
            people: vec![],
            photos: vec![],
            links: Default::default(),
        };
        let id = DocId::new(DocKind::Case);
        let mut c = CaseDoc::new(id, r.id, grid.parse().unwrap(), input, report);
        for (who, action) in steps {
            let u = user(dir, who);
            c = with_entry(&c, &u, u.role, action.clone());
        }
        assert!(
            fold(&c.timeline)
                .outcomes
                .iter()
                .all(|o| *o == Outcome::Applied),
            "fixture {:?} must fold cleanly",
            c.timeline
        );
        c
    }

    fn patrol(worker: &str, grid: &str) -> PatrolDoc {
        PatrolDoc {
            id: DocId::new(DocKind::Patrol),
            worker: worker.parse().unwrap(),
            grid: grid.parse().unwrap(),
            started: at(0),
            ended: None,
            track: vec![],
            track_chunks: 0,
            checkins: vec![],
            observations: vec![Observation {
                at: at(1),
                text: "东门路灯不亮".into(),
            }],
            cases: vec![],
        }
    }

    fn note(by: &str) -> Note {
        Note {
            by: by.parse().unwrap(),
            at: at(30),
            text: "已电话联系物业".into(),
        }
    }

    fn photo(by: &str) -> PhotoRef {
        PhotoRef {
            hash: "ab".repeat(32).parse().unwrap(),
            thumb: None,
            width: 1600,
            height: 1200,
            by: by.parse().unwrap(),
            at: at(30),
        }
    }

    fn dispatch(dept: &str) -> Action {
        Action::Dispatch {
            dept: dept.parse().unwrap(),
            deadline: at(600),
        }
    }

    fn feedback() -> Action {
        Action::Feedback {
            result: "修好了".into(),
        }
    }

    fn verify() -> Action {
        Action::Verify {
            passed: true,
            comment: "已修复".into(),
        }
    }

    /// The cases the tables act on, all in the sample directory's first town.
    struct Cases {
        /// Reported by W in grid A.
        reported: CaseDoc,
        /// Reported by W2 in grid B.
        sibling: CaseDoc,
        /// Reported in another community of the town.
        other_community: CaseDoc,
        /// Reported in another town.
        other_town: CaseDoc,
        /// Grid A, accepted by CD.
        accepted: CaseDoc,
        /// Grid A, escalated by W to the town.
        escalated: CaseDoc,
        /// Grid A, dispatched to water.
        water: CaseDoc,
        /// Grid A, dispatched to housing.
        housing: CaseDoc,
        /// Grid A, handled by water.
        handled: CaseDoc,
        /// Grid A, dispatched to water and returned by it.
        returned: CaseDoc,
        /// Grid A, verified by W.
        verified: CaseDoc,
        /// Grid A, archived by CD.
        archived: CaseDoc,
    }

    fn cases(dir: &Directory) -> Cases {
        let accept = (CD, Action::Accept);
        let to_water = (CD, dispatch("water"));
        let handled = [accept.clone(), to_water.clone(), (H, feedback())];
        let verified = [handled.clone().as_slice(), &[(W, verify())]].concat();
        let archived = [verified.as_slice(), &[(CD, Action::Archive)]].concat();
        let returned = [
            accept.clone(),
            to_water.clone(),
            (
                H,
                Action::Return {
                    reason: "不属本局职责".into(),
                },
            ),
        ];
        let escalate = Action::Escalate {
            reason: "涉及多个社区".into(),
        };
        Cases {
            reported: case(dir, W, GRID_A, &[]),
            sibling: case(dir, W2, GRID_B, &[]),
            other_community: case(dir, "w-339901001002001", GRID_OTHER_COMMUNITY, &[]),
            other_town: case(dir, "w-339901002001001", GRID_OTHER_TOWN, &[]),
            accepted: case(dir, W, GRID_A, std::slice::from_ref(&accept)),
            escalated: case(dir, W, GRID_A, &[(W, escalate)]),
            water: case(dir, W, GRID_A, &[accept.clone(), to_water]),
            housing: case(dir, W, GRID_A, &[accept, (CD, dispatch("housing"))]),
            handled: case(dir, W, GRID_A, &handled),
            returned: case(dir, W, GRID_A, &returned),
            verified: case(dir, W, GRID_A, &verified),
            archived: case(dir, W, GRID_A, &archived),
        }
    }

    fn doc(c: &CaseDoc) -> DocContent {
        DocContent::Case(c.clone())
    }

    #[test]
    fn a_new_case_starts_no_higher_than_its_reporter() {
        let dir = sample();
        let at_level = |who: &str, level: RegionLevel| {
            let mut c = case(&dir, who, GRID_A, &[]);
            c.timeline[0].action = Action::Report { level };
            doc(&c)
        };
        let town: RegionCode = TOWN.parse().unwrap();
        for (who, level, allowed) in [
            (W, RegionLevel::Community, true),
            (W, RegionLevel::Town, false),
            (W, RegionLevel::City, false),
            (ADMIN, RegionLevel::District, false),
            (TD, RegionLevel::Town, true),
            (DD, RegionLevel::District, true),
            (DD, RegionLevel::City, false),
        ] {
            let c = at_level(who, level);
            let expected = if allowed {
                Ok(())
            } else {
                Err(Denied::ReportLevel(level))
            };
            assert_eq!(
                authorize(&user(&dir, who), c.id(), None, &c),
                expected,
                "{who} at {level:?}"
            );
            if who != ADMIN && who != DD {
                assert_eq!(
                    authorize_relayed(&dir, &town, None, &c),
                    expected,
                    "relayed: {who} at {level:?}"
                );
            }
        }
    }

    #[test]
    fn an_entry_reusing_an_old_entrys_id_is_checked_as_new() {
        let dir = sample();
        let before = case(&dir, W, GRID_A, &[(CD, Action::Accept)]);
        // The grid worker appends an archive in the dispatcher's name, under the
        // id of the accept she already holds.
        let cd = user(&dir, CD);
        let mut forged = with_entry(
            &before,
            &cd,
            cd.role,
            Action::Invalidate {
                reason: "重复".into(),
            },
        );
        let copied = before.timeline[1].id.clone();
        forged.timeline.last_mut().unwrap().id = copied;
        let (before, forged) = (doc(&before), doc(&forged));
        assert_eq!(
            authorize(&user(&dir, W), forged.id(), Some(&before), &forged),
            Err(Denied::NotAuthor)
        );
        let town: RegionCode = TOWN.parse().unwrap();
        assert!(authorize_relayed(&dir, &town, Some(&before), &forged).is_ok());
    }

    #[test]
    fn who_sees_what() {
        let dir = sample();
        let c = cases(&dir);
        let dispatchers_over_a = [W, CD, TD, DD, ADMIN];
        let table: Vec<(&str, DocContent, Vec<&str>)> = vec![
            (
                "a case in grid A",
                doc(&c.reported),
                dispatchers_over_a.to_vec(),
            ),
            (
                "a case in sibling grid B",
                doc(&c.sibling),
                vec![W2, CD, TD, DD, ADMIN],
            ),
            (
                "a case in another community",
                doc(&c.other_community),
                vec![CD2, TD, DD, ADMIN],
            ),
            (
                "a case in another town",
                doc(&c.other_town),
                vec![DD, ADMIN],
            ),
            (
                "a case dispatched to water",
                doc(&c.water),
                vec![W, CD, TD, DD, ADMIN, H],
            ),
            (
                "a case dispatched to housing",
                doc(&c.housing),
                vec![W, CD, TD, DD, ADMIN, H2],
            ),
            (
                "a case water has handled",
                doc(&c.handled),
                vec![W, CD, TD, DD, ADMIN, H],
            ),
            (
                "a case water has returned",
                doc(&c.returned),
                dispatchers_over_a.to_vec(),
            ),
            (
                "a case escalated to the town",
                doc(&c.escalated),
                dispatchers_over_a.to_vec(),
            ),
            (
                "W's patrol of grid A",
                DocContent::Patrol(patrol(W, GRID_A)),
                dispatchers_over_a.to_vec(),
            ),
            (
                "W2's patrol of grid B",
                DocContent::Patrol(patrol(W2, GRID_B)),
                vec![W2, CD, TD, DD, ADMIN],
            ),
        ];
        let mut rows = 0;
        for (what, d, seers) in &table {
            for who in EVERYONE {
                let expected = seers.contains(&who);
                let seen = scope_of(&user(&dir, who)).sees_doc(d);
                assert_eq!(seen, expected, "{who} sees {what}: expected {expected}");
                rows += 1;
            }
        }
        assert_eq!(rows, 99);
    }

    /// Every user takes a workflow action in their own name and role; the listed
    /// ones may. The engine's local check (the case in scope, the workflow allowing
    /// it) and the server's must both say so, and give the same refusal.
    #[test]
    fn who_may_take_each_workflow_action() {
        let dir = sample();
        let c = cases(&dir);
        let dispatchers = vec![CD, TD, DD, ADMIN];
        let table: Vec<(&str, &CaseDoc, Action, Vec<&str>)> = vec![
            (
                "accept a case of grid A",
                &c.reported,
                Action::Accept,
                dispatchers.clone(),
            ),
            (
                "accept a case of another community",
                &c.other_community,
                Action::Accept,
                vec![CD2, TD, DD, ADMIN],
            ),
            (
                "accept a case escalated to the town",
                &c.escalated,
                Action::Accept,
                vec![TD, DD, ADMIN],
            ),
            (
                "self-handle a case of grid A",
                &c.reported,
                Action::SelfHandle {
                    result: "当场劝导".into(),
                },
                vec![W, ADMIN],
            ),
            (
                "self-handle a case of grid B",
                &c.sibling,
                Action::SelfHandle {
                    result: "当场劝导".into(),
                },
                vec![W2, ADMIN],
            ),
            (
                "dispatch a case of grid A",
                &c.accepted,
                dispatch("water"),
                dispatchers.clone(),
            ),
            (
                "feed back on a case dispatched to water",
                &c.water,
                feedback(),
                vec![H, ADMIN],
            ),
            (
                "feed back on a case dispatched to housing",
                &c.housing,
                feedback(),
                vec![H2, ADMIN],
            ),
            (
                "return a case dispatched to water",
                &c.water,
                Action::Return {
                    reason: "不属本局职责".into(),
                },
                vec![H, ADMIN],
            ),
            (
                "verify a case water handled",
                &c.handled,
                verify(),
                vec![W, ADMIN],
            ),
            (
                "archive a verified case",
                &c.verified,
                Action::Archive,
                dispatchers.clone(),
            ),
            (
                "evaluate an archived case",
                &c.archived,
                Action::Evaluate {
                    satisfaction: 5,
                    comment: "满意".into(),
                },
                dispatchers.clone(),
            ),
            (
                "escalate a case of grid A",
                &c.reported,
                Action::Escalate {
                    reason: "涉及多个社区".into(),
                },
                vec![W, CD, TD, DD, ADMIN],
            ),
            (
                "urge a case dispatched to water",
                &c.water,
                Action::Urge {
                    level: SupervisionLevel::Handover,
                    comment: "加快".into(),
                },
                dispatchers.clone(),
            ),
            (
                "invalidate a case of grid A",
                &c.reported,
                Action::Invalidate {
                    reason: "重复上报".into(),
                },
                dispatchers.clone(),
            ),
            (
                "invalidate a case of another town",
                &c.other_town,
                Action::Invalidate {
                    reason: "重复上报".into(),
                },
                vec![DD, ADMIN],
            ),
            (
                "accept a case already accepted",
                &c.accepted,
                Action::Accept,
                vec![],
            ),
        ];
        let mut rows = 0;
        for (what, before, action, allowed) in &table {
            for who in EVERYONE {
                let u = user(&dir, who);
                let row = format!("{who} may {what}");
                let expected = allowed.contains(&who);
                let after = with_entry(before, &u, u.role, action.clone());
                let server = authorize(&u, &before.id, Some(&doc(before)), &doc(&after));
                let local = if scope_of(&u).sees_case(before) {
                    fold(&before.timeline)
                        .check(u.role, action)
                        .map_err(Denied::Workflow)
                } else {
                    Err(Denied::OutOfScope(before.id.clone()))
                };
                assert_eq!(server.is_ok(), expected, "{row}: server says {server:?}");
                assert_eq!(server, local, "{row}: the engine and the server disagree");
                rows += 1;
            }
        }
        assert_eq!(rows, 17 * 9);
    }

    /// Reporting a new case in a grid, in one's own name: the engine's check
    /// ([`check_new_case`]) and the server's agree.
    #[test]
    fn who_may_report_a_case_where() {
        let dir = sample();
        let table: Vec<(&str, Vec<&str>)> = vec![
            (GRID_A, vec![W, CD, TD, DD, ADMIN]),
            (GRID_B, vec![W2, CD, TD, DD, ADMIN]),
            (GRID_OTHER_COMMUNITY, vec![CD2, TD, DD, ADMIN]),
            (GRID_OTHER_TOWN, vec![DD, ADMIN]),
        ];
        let mut rows = 0;
        for (grid, allowed) in &table {
            for who in EVERYONE {
                let u = user(&dir, who);
                let row = format!("{who} reports a case in grid {grid}");
                let expected = allowed.contains(&who);
                let new = case(&dir, who, grid, &[]);
                let server = authorize(&u, &new.id, None, &doc(&new));
                let local = check_new_case(&u, &grid.parse().unwrap());
                assert_eq!(server.is_ok(), expected, "{row}: server says {server:?}");
                assert_eq!(server, local, "{row}: the engine and the server disagree");
                let why = server.err();
                if u.role == Role::DepartmentHandler {
                    assert_eq!(
                        why,
                        Some(Denied::MayNotReport {
                            role: "department_handler"
                        }),
                        "{row}"
                    );
                }
                rows += 1;
            }
        }
        assert_eq!(rows, 4 * 9);
    }

    /// Notes and photos: in one's own name on a case one sees; never in another's.
    #[test]
    fn who_may_add_notes_and_photos_in_whose_name() {
        let dir = sample();
        let c = cases(&dir);
        type Add = fn(&mut CaseDoc, &str);
        let add_note: Add = |c, by| c.notes.push(note(by));
        let add_photo: Add = |c, by| c.photos.push(photo(by));
        let table: Vec<(&str, &CaseDoc, Add, bool, Vec<&str>)> = vec![
            (
                "a note on a case of grid A in own name",
                &c.reported,
                add_note,
                true,
                vec![W, CD, TD, DD, ADMIN],
            ),
            (
                "a photo on a case of grid A in own name",
                &c.reported,
                add_photo,
                true,
                vec![W, CD, TD, DD, ADMIN],
            ),
            (
                "a note on a case dispatched to water in own name",
                &c.water,
                add_note,
                true,
                vec![W, CD, TD, DD, ADMIN, H],
            ),
            (
                "a photo on a case dispatched to housing in own name",
                &c.housing,
                add_photo,
                true,
                vec![W, CD, TD, DD, ADMIN, H2],
            ),
            (
                "a note on a case of another town in own name",
                &c.other_town,
                add_note,
                true,
                vec![DD, ADMIN],
            ),
            (
                "a note on a case of grid A in another's name",
                &c.reported,
                add_note,
                false,
                vec![],
            ),
            (
                "a photo on a case dispatched to water in another's name",
                &c.water,
                add_photo,
                false,
                vec![],
            ),
        ];
        let mut rows = 0;
        for (what, before, add, own, allowed) in &table {
            for who in EVERYONE {
                let u = user(&dir, who);
                let row = format!("{who} adds {what}");
                let expected = allowed.contains(&who);
                let mut after = (*before).clone();
                let by = match (own, who) {
                    (true, _) => who,
                    (false, ADMIN) => DD,
                    (false, _) => ADMIN,
                };
                add(&mut after, by);
                let server = authorize(&u, &before.id, Some(&doc(before)), &doc(&after));
                let sees = scope_of(&u).sees_case(before);
                assert_eq!(server.is_ok(), expected, "{row}: server says {server:?}");
                if *own {
                    assert_eq!(sees, expected, "{row}: the engine's local check disagrees");
                } else if sees {
                    assert_eq!(server, Err(Denied::NotNoteAuthor), "{row}");
                }
                rows += 1;
            }
        }
        assert_eq!(rows, 7 * 9);
    }

    /// Single changes, each with the exact verdict: impersonation, rewriting
    /// history, and patrol logs.
    #[test]
    fn impersonation_history_and_patrol_logs() {
        let dir = sample();
        let c = cases(&dir);
        let u = |id: &str| user(&dir, id);
        let edit = |base: &CaseDoc, f: &dyn Fn(&mut CaseDoc)| {
            let mut c = base.clone();
            f(&mut c);
            doc(&c)
        };
        let with_note = edit(&c.reported, &|c| c.notes.push(note(CD)));
        let with_photo = edit(&c.reported, &|c| c.photos.push(photo(W)));
        let own_patrol = patrol(W, GRID_A);
        let grown = {
            let mut p = own_patrol.clone();
            p.observations.push(Observation {
                at: at(2),
                text: "垃圾桶满溢".into(),
            });
            p
        };
        let ended = PatrolDoc {
            ended: Some(at(120)),
            ..own_patrol.clone()
        };
        let patrol_edit = |f: &dyn Fn(&mut PatrolDoc)| {
            let mut p = own_patrol.clone();
            f(&mut p);
            DocContent::Patrol(p)
        };
        let pd = |p: &PatrolDoc| DocContent::Patrol(p.clone());
        let cd = u(CD);
        let w = u(W);
        #[rustfmt::skip]
        let table: Vec<ChangeRow> = vec![
            // Impersonation.
            ("accepts in the dispatcher's name and role", W, Some(doc(&c.reported)),
                doc(&with_entry(&c.reported, &cd, Role::CommunityDispatcher, Action::Accept)),
                Err(Denied::NotAuthor)),
            ("accepts in own name as a dispatcher", W, Some(doc(&c.reported)),
                doc(&with_entry(&c.reported, &w, Role::CommunityDispatcher, Action::Accept)),
                Err(Denied::NotAuthor)),
            ("verifies in the grid worker's name", CD, Some(doc(&c.handled)),
                doc(&with_entry(&c.handled, &w, Role::GridWorker, verify())),
                Err(Denied::NotAuthor)),
            ("feeds back in a colleague's name", H, Some(doc(&c.water)),
                doc(&with_entry(&c.water, &u("h-water-2"), Role::DepartmentHandler, feedback())),
                Err(Denied::NotAuthor)),
            ("reports a case naming the dispatcher as reporter", W, None,
                edit(&c.reported, &|c| c.reporter = CD.parse().unwrap()),
                Err(Denied::NotReporter)),
            ("reports a case whose report entry names the dispatcher", W, None,
                edit(&c.reported, &|c| {
                    c.timeline[0].actor = CD.parse().unwrap();
                    c.timeline[0].role = Role::CommunityDispatcher;
                }),
                Err(Denied::NotAuthor)),
            ("reports a case with a dispatch already in it", W, None,
                doc(&with_entry(&c.reported, &w, Role::GridWorker, dispatch("water"))),
                Err(Denied::Workflow(Refusal::Role { role: "grid_worker", action: "dispatch" }))),
            // What was reported, and the timeline, stay as they were.
            ("retitles a case", W, Some(doc(&c.reported)),
                edit(&c.reported, &|c| c.title = "改过的标题".into()),
                Err(Denied::ReportChanged)),
            ("moves a case to another grid", DD, Some(doc(&c.reported)),
                edit(&c.reported, &|c| c.grid = GRID_B.parse().unwrap()),
                Err(Denied::ReportChanged)),
            ("removes the accept entry", TD, Some(doc(&c.accepted)),
                edit(&c.accepted, &|c| { c.timeline.pop(); }),
                Err(Denied::TimelineRewritten)),
            ("reorders the timeline", ADMIN, Some(doc(&c.accepted)),
                edit(&c.accepted, &|c| c.timeline.swap(0, 1)),
                Err(Denied::TimelineRewritten)),
            ("rewrites the handler's feedback", H, Some(doc(&c.handled)),
                edit(&c.handled, &|c| c.timeline[3].action = Action::Feedback { result: "没修".into() }),
                Err(Denied::TimelineRewritten)),
            ("removes a note", ADMIN, Some(with_note.clone()),
                doc(&c.reported),
                Err(Denied::NotesRewritten)),
            ("edits the dispatcher's note", CD, Some(with_note.clone()),
                edit(&c.reported, &|c| c.notes.push(Note { text: "改了".into(), ..note(CD) })),
                Err(Denied::NotesRewritten)),
            ("removes a photo", W, Some(with_photo), doc(&c.reported),
                Err(Denied::NotesRewritten)),
            ("turns a case into a patrol", W, Some(doc(&c.reported)), pd(&own_patrol),
                Err(Denied::KindChanged)),
            // Patrol logs.
            ("starts a patrol of grid A", W, None, pd(&own_patrol), Ok(())),
            ("adds to own patrol", W, Some(pd(&own_patrol)), pd(&grown), Ok(())),
            ("ends own patrol", W, Some(pd(&own_patrol)), pd(&ended), Ok(())),
            ("adds to W's patrol", W2, Some(pd(&own_patrol)), pd(&grown),
                Err(Denied::NotPatrolWorker)),
            ("adds to W's patrol", CD, Some(pd(&own_patrol)), pd(&grown),
                Err(Denied::NotPatrolWorker)),
            ("adds to W's patrol", H, Some(pd(&own_patrol)), pd(&grown),
                Err(Denied::NotPatrolWorker)),
            ("starts a patrol of their own", CD, None, pd(&patrol(CD, GRID_A)),
                Err(Denied::NotPatrolWorker)),
            ("starts a patrol in W2's name", W, None, pd(&patrol(W2, GRID_B)),
                Err(Denied::NotPatrolWorker)),
            ("starts a patrol of grid B", W, None, pd(&patrol(W, GRID_B)),
                Err(Denied::PatrolOutsideRegion)),
            ("removes an observation", W, Some(pd(&own_patrol)),
                patrol_edit(&|p| p.observations.clear()),
                Err(Denied::PatrolShrunk)),
            ("moves own patrol to grid B", W, Some(pd(&own_patrol)),
                patrol_edit(&|p| p.grid = GRID_B.parse().unwrap()),
                Err(Denied::PatrolRewritten)),
            ("reopens an ended patrol", W, Some(pd(&ended)), pd(&own_patrol),
                Err(Denied::PatrolEnded)),
            ("turns a patrol into a case", W, Some(pd(&own_patrol)), doc(&c.reported),
                Err(Denied::KindChanged)),
        ];
        for (what, who, before, after, expected) in &table {
            let got = authorize(&u(who), after.id(), before.as_ref(), after);
            assert_eq!(&got, expected, "{who} {what}");
        }
        assert_eq!(table.len(), 29);
    }

    /// What a town relay may forward, and what another town's may not.
    #[test]
    fn what_a_downstream_relay_may_forward() {
        let dir = sample();
        let c = cases(&dir);
        let u = |id: &str| user(&dir, id);
        let entry = |base: &CaseDoc, by: &str, action: Action| {
            let by = u(by);
            doc(&with_entry(base, &by, by.role, action))
        };
        let ghost = User {
            id: "nobody".parse().unwrap(),
            ..u(W)
        };
        let self_handle = Action::SelfHandle {
            result: "当场劝导".into(),
        };
        #[rustfmt::skip]
        let table: Vec<ChangeRow> = vec![
            ("W's self-handling in grid A", TOWN, Some(doc(&c.reported)),
                entry(&c.reported, W, self_handle.clone()), Ok(())),
            ("W's self-handling in grid A", OTHER_TOWN, Some(doc(&c.reported)),
                entry(&c.reported, W, self_handle.clone()), Err(Denied::OutsideRelayRegion)),
            ("CD's acceptance", TOWN, Some(doc(&c.reported)),
                entry(&c.reported, CD, Action::Accept), Ok(())),
            ("water's feedback on a case dispatched to water", TOWN, Some(doc(&c.water)),
                entry(&c.water, H, feedback()), Ok(())),
            ("housing's feedback on a case dispatched to water", TOWN, Some(doc(&c.water)),
                entry(&c.water, H2, feedback()), Err(Denied::Unvouched)),
            ("W2's verification of a case of grid A", TOWN, Some(doc(&c.handled)),
                entry(&c.handled, W2, verify()), Err(Denied::Unvouched)),
            ("an entry by someone not in the directory", TOWN, Some(doc(&c.reported)),
                doc(&with_entry(&c.reported, &ghost, Role::GridWorker, self_handle)),
                Err(Denied::Unvouched)),
            ("W2's note on a case of grid A", TOWN, Some(doc(&c.reported)),
                { let mut n = c.reported.clone(); n.notes.push(note(W2)); doc(&n) },
                Err(Denied::Unvouched)),
            ("W's archiving", TOWN, Some(doc(&c.verified)),
                entry(&c.verified, W, Action::Archive),
                Err(Denied::Workflow(Refusal::Role { role: "grid_worker", action: "archive" }))),
            ("a retitled case", TOWN, Some(doc(&c.reported)),
                { let mut n = c.reported.clone(); n.title = "改过的标题".into(); doc(&n) },
                Err(Denied::ReportChanged)),
            ("a new case W reported in grid A", TOWN, None, doc(&c.reported), Ok(())),
            ("a new case a handler reported", TOWN, None, doc(&case(&dir, H, GRID_A, &[])),
                Err(Denied::Unvouched)),
            ("W's patrol of grid A", TOWN, None, DocContent::Patrol(patrol(W, GRID_A)), Ok(())),
            ("a patrol in CD's name", TOWN, None, DocContent::Patrol(patrol(CD, GRID_A)),
                Err(Denied::NotWorkersPatrol)),
            ("W's patrol of grid B", TOWN, None, DocContent::Patrol(patrol(W, GRID_B)),
                Err(Denied::NotWorkersPatrol)),
        ];
        for (what, region, before, after, expected) in &table {
            let got = authorize_relayed(&dir, &region.parse().unwrap(), before.as_ref(), after);
            assert_eq!(&got, expected, "the relay of {region} forwards {what}");
        }
        assert_eq!(table.len(), 15);
    }

    #[test]
    fn the_reasons_read_as_the_devices_are_told() {
        let id: DocId = "case-0123456789abcdef0123456789abcdef".parse().unwrap();
        let table = [
            (
                Denied::OutOfScope(id),
                "case case-0123456789abcdef0123456789abcdef is outside your scope",
            ),
            (
                Denied::Workflow(Refusal::Role {
                    role: "grid_worker",
                    action: "archive",
                }),
                "workflow: a grid_worker may not archive",
            ),
            (
                Denied::MayNotReport {
                    role: "department_handler",
                },
                "a department_handler may not report cases",
            ),
            (
                Denied::GridOutsideRegion(GRID_B.parse().unwrap()),
                "grid 339901001001002 is outside your region",
            ),
        ];
        for (denied, text) in table {
            assert_eq!(denied.to_string(), text);
        }
    }

    /// A list filtered by a user's scope holds exactly the cases the scope sees:
    /// the console's board and the engine's lists use the same rule as a case page.
    #[test]
    fn a_scope_lists_what_it_sees() {
        let dir = sample();
        let c = cases(&dir);
        let all = [
            &c.reported,
            &c.sibling,
            &c.other_community,
            &c.other_town,
            &c.accepted,
            &c.escalated,
            &c.water,
            &c.housing,
            &c.handled,
            &c.returned,
            &c.verified,
            &c.archived,
        ];
        let tmp = tempfile::tempdir().unwrap();
        let db = crate::db::Db::open(&tmp.path().join("index.db"), None).unwrap();
        db.write(|tx| -> crate::error::Result<()> {
            for case in all {
                // The document row the index refers to; its content is not needed.
                tx.execute(
                    "INSERT INTO docs (doc_id, kind, updated_ms) VALUES (?1, 'case', 0)",
                    [case.id.as_str()],
                )?;
                crate::index::index_case(tx, case, &fold(&case.timeline))?;
            }
            Ok(())
        })
        .unwrap();
        for who in EVERYONE {
            let scope = scope_of(&user(&dir, who));
            let filter = scope.case_filter().unwrap();
            let mut listed: Vec<DocId> = db
                .read(|tx| crate::index::list_cases(tx, &filter))
                .unwrap()
                .into_iter()
                .map(|s| s.id)
                .collect();
            let mut seen: Vec<DocId> = all
                .iter()
                .filter(|c| scope.sees_case(c))
                .map(|c| c.id.clone())
                .collect();
            listed.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            seen.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            assert_eq!(listed, seen, "{who}'s list");
            assert!(!seen.is_empty(), "{who} sees something");
        }
    }

    #[test]
    fn a_handler_without_a_department_sees_nothing() {
        let dir = sample();
        let c = cases(&dir);
        let lost = User {
            department: None,
            ..user(&dir, H)
        };
        let scope = scope_of(&lost);
        assert_eq!(scope, Scope::Nothing);
        for case in [&c.reported, &c.returned, &c.water] {
            assert!(!scope.sees_case(case));
        }
        assert_eq!(scope.case_filter().unwrap_err(), Denied::NoDepartment);
        let note_on_returned = {
            let mut n = c.returned.clone();
            n.notes.push(note(H));
            doc(&n)
        };
        assert_eq!(
            authorize(
                &lost,
                &c.returned.id,
                Some(&doc(&c.returned)),
                &note_on_returned
            ),
            Err(Denied::OutOfScope(c.returned.id.clone()))
        );
    }

    #[test]
    fn scopes_cover_regions_and_make_filters() {
        let dir = sample();
        let table: [ScopeRow; 5] = [
            (W, Some(GRID_A), None, &[GRID_A], &[GRID_B, TOWN]),
            (
                CD,
                Some("339901001001"),
                None,
                &[GRID_A, GRID_B],
                &[GRID_OTHER_COMMUNITY, TOWN],
            ),
            (
                TD,
                Some(TOWN),
                None,
                &[GRID_A, GRID_OTHER_COMMUNITY, TOWN],
                &[GRID_OTHER_TOWN],
            ),
            (
                ADMIN,
                Some("339901"),
                None,
                &[GRID_OTHER_TOWN, OTHER_TOWN],
                &[],
            ),
            (H, None, Some("water"), &[], &[GRID_A, "339901"]),
        ];
        for (who, region, dept, covered, not_covered) in table {
            let scope = scope_of(&user(&dir, who));
            let f = scope.case_filter().unwrap();
            assert_eq!(f.region.as_ref().map(RegionCode::as_str), region, "{who}");
            assert_eq!(f.assigned_dept.as_ref().map(DeptId::as_str), dept, "{who}");
            assert_eq!(scope.region().map(RegionCode::as_str), region, "{who}");
            assert_eq!(scope.dept().map(DeptId::as_str), dept, "{who}");
            for r in covered {
                assert!(scope.covers(&r.parse().unwrap()), "{who} covers {r}");
            }
            for r in not_covered {
                assert!(
                    !scope.covers(&r.parse().unwrap()),
                    "{who} does not cover {r}"
                );
            }
        }
    }

    /// Who keeps a grid's base data: the rules the relay enforces on persons and
    /// households, whatever the device checked.
    #[test]
    fn who_may_write_a_person_or_a_household() {
        use crate::doc::registry::{HouseholdDoc, PersonDoc};
        let dir = sample();
        let u = |id: &str| user(&dir, id);
        let person = |by: &str, grid: &str| {
            DocContent::Person(PersonDoc {
                id: DocId::new(DocKind::Person),
                grid: grid.parse().unwrap(),
                name: "张建国".into(),
                sex: None,
                born: None,
                id_number: None,
                phone: None,
                household: None,
                tags: vec![],
                notes: String::new(),
                created_by: by.parse().unwrap(),
                created: at(0),
            })
        };
        let household = |by: &str, left: Option<DateTime<Utc>>| {
            DocContent::Household(HouseholdDoc {
                id: DocId::new(DocKind::Household),
                grid: GRID_A.parse().unwrap(),
                address: "望湖小区3号楼".into(),
                head: None,
                place: None,
                left,
                visits: vec![],
                created_by: by.parse().unwrap(),
                created: at(0),
            })
        };
        let mine = person(W, GRID_A);
        let moved = |to: &str| match &mine {
            DocContent::Person(p) => DocContent::Person(PersonDoc {
                grid: to.parse().unwrap(),
                ..p.clone()
            }),
            _ => unreachable!(),
        };
        let relabelled = match &mine {
            DocContent::Person(p) => DocContent::Person(PersonDoc {
                created_by: CD.parse().unwrap(),
                ..p.clone()
            }),
            _ => unreachable!(),
        };
        let home = household(W, None);
        let with_left = |left| match &home {
            DocContent::Household(h) => DocContent::Household(HouseholdDoc { left, ..h.clone() }),
            _ => unreachable!(),
        };
        let gone = with_left(Some(at(5)));
        let visited = |visits: Vec<&str>| match &home {
            DocContent::Household(h) => DocContent::Household(HouseholdDoc {
                visits: visits
                    .iter()
                    .enumerate()
                    .map(|(i, by)| crate::doc::registry::Visit {
                        at: at(10 + i as i64),
                        by: by.parse().unwrap(),
                        patrol: DocId::new(DocKind::Patrol),
                        findings: "燃气已检查".into(),
                        photo: None,
                    })
                    .collect(),
                ..h.clone()
            }),
            _ => unreachable!(),
        };
        let one_visit = visited(vec![W]);
        let deny = |grid: &str| Err(Denied::RegistryOutsideRegion(grid.parse().unwrap()));
        #[rustfmt::skip]
        let table: Vec<ChangeRow> = vec![
            ("registers a person in her grid", W, None, mine.clone(), Ok(())),
            ("registers a person in grid B", W, None, person(W, GRID_B), deny(GRID_B)),
            ("registers a person in someone else's name", W, None, person(CD, GRID_A),
                Err(Denied::NotRegistrar)),
            ("a community dispatcher registers one", CD, None, person(CD, GRID_B), Ok(())),
            ("another community's dispatcher", CD2, None, person(CD2, GRID_A), deny(GRID_A)),
            ("a handler registers one", H, None, person(H, GRID_A), deny(GRID_A)),
            ("a handler edits one", H, Some(mine.clone()), mine.clone(),
                Err(Denied::OutOfScope(mine.id().clone()))),
            ("moves a person to grid B", W, Some(mine.clone()), moved(GRID_B), deny(GRID_B)),
            ("CD moves a person to grid B", CD, Some(mine.clone()), moved(GRID_B), Ok(())),
            ("CD moves a person out of the community", CD, Some(mine.clone()),
                moved(GRID_OTHER_COMMUNITY), deny(GRID_OTHER_COMMUNITY)),
            ("rewrites who registered a person", CD, Some(mine.clone()), relabelled,
                Err(Denied::RegistryRewritten)),
            ("a household leaves", W, Some(home.clone()), gone.clone(), Ok(())),
            ("brings a household back", W, Some(gone.clone()), home.clone(),
                Err(Denied::HouseholdLeft)),
            ("a concurrent leaving merged to its time", CD, Some(gone.clone()),
                with_left(Some(at(9))), Ok(())),
            ("W records her visit", W, Some(home.clone()), one_visit.clone(), Ok(())),
            ("W records a visit in CD's name", W, Some(home.clone()), visited(vec![CD]),
                Err(Denied::NotVisitor)),
            ("CD removes W's visit", CD, Some(one_visit.clone()), home.clone(),
                Err(Denied::VisitsRewritten)),
            ("W2 edits grid A's household", W2, Some(home.clone()), home.clone(),
                Err(Denied::OutOfScope(home.id().clone()))),
            ("turns a person into a household", W, Some(mine.clone()), gone,
                Err(Denied::KindChanged)),
        ];
        for (what, who, before, after, expected) in &table {
            let got = authorize(&u(who), after.id(), before.as_ref(), after);
            assert_eq!(&got, expected, "{who} {what}");
        }
        // Department handlers never see base data; a region scope over the grid does.
        assert!(!scope_of(&u(H)).sees_doc(&mine));
        assert!(scope_of(&u(TD)).sees_doc(&mine));
        assert!(!scope_of(&u(W2)).sees_doc(&mine));
    }

    /// Places follow the same keepers; their inspections, like visits, only grow
    /// and each is made in its inspector's own name; what a place is never changes.
    #[test]
    fn who_may_write_a_place() {
        use crate::doc::place::{Inspection, PlaceDoc, PlaceKind};
        let dir = sample();
        let u = |id: &str| user(&dir, id);
        let shop = |by: &str, grid: &str, inspectors: &[&str]| {
            DocContent::Place(PlaceDoc {
                id: "place-0192f0c0a1b27c3d8e9f001122334455".parse().unwrap(),
                grid: grid.parse().unwrap(),
                kind: PlaceKind::Shop,
                name: "平安超市".into(),
                address: "幸福路8号".into(),
                within: None,
                location: None,
                occupancy: None,
                org: None,
                inspections: inspectors
                    .iter()
                    .enumerate()
                    .map(|(i, by)| Inspection {
                        at: at(10 + i as i64),
                        by: by.parse().unwrap(),
                        patrol: "patrol-0192f0c0a1b27c3d8e9f001122334455".parse().unwrap(),
                        passed: true,
                        findings: String::new(),
                        photo: None,
                    })
                    .collect(),
                created_by: by.parse().unwrap(),
                created: at(0),
            })
        };
        let mine = shop(W, GRID_A, &[]);
        let inspected = shop(W, GRID_A, &[W]);
        // The same inspection twice, exactly: the second is new, in W's name.
        let copied = match &inspected {
            DocContent::Place(p) => DocContent::Place(PlaceDoc {
                inspections: [p.inspections.clone(), p.inspections.clone()].concat(),
                ..p.clone()
            }),
            _ => unreachable!(),
        };
        let rekinded = match &mine {
            DocContent::Place(p) => DocContent::Place(PlaceDoc {
                kind: PlaceKind::Dwelling,
                ..p.clone()
            }),
            _ => unreachable!(),
        };
        let deny = |grid: &str| Err(Denied::RegistryOutsideRegion(grid.parse().unwrap()));
        #[rustfmt::skip]
        let table: Vec<ChangeRow> = vec![
            ("registers a shop in her grid", W, None, mine.clone(), Ok(())),
            ("registers one in grid B", W, None, shop(W, GRID_B, &[]), deny(GRID_B)),
            ("registers one in CD's name", W, None, shop(CD, GRID_A, &[]),
                Err(Denied::NotRegistrar)),
            ("a handler registers one", H, None, shop(H, GRID_A, &[]), deny(GRID_A)),
            ("W records her inspection", W, Some(mine.clone()), inspected.clone(), Ok(())),
            ("W records one in W2's name", W, Some(mine.clone()), shop(W, GRID_A, &[W2]),
                Err(Denied::NotVisitor)),
            ("CD removes W's inspection", CD, Some(inspected.clone()), mine.clone(),
                Err(Denied::VisitsRewritten)),
            ("CD copies W's inspection", CD, Some(inspected.clone()), copied.clone(),
                Err(Denied::NotVisitor)),
            ("W repeats her own", W, Some(inspected.clone()), copied, Ok(())),
            ("W adds a second of her own", W, Some(inspected), shop(W, GRID_A, &[W, W]), Ok(())),
            ("turns the shop into a dwelling", CD, Some(mine.clone()), rekinded,
                Err(Denied::RegistryRewritten)),
            ("W2 edits grid A's shop", W2, Some(mine.clone()), mine.clone(),
                Err(Denied::OutOfScope(mine.id().clone()))),
        ];
        for (what, who, before, after, expected) in &table {
            let got = authorize(&u(who), after.id(), before.as_ref(), after);
            assert_eq!(&got, expected, "{who} {what}");
        }
        assert!(!scope_of(&u(H)).sees_doc(&mine));
    }

    /// A points adjustment: made once, in the maker's name, by a community or
    /// town dispatcher (or an administrator) over the worker's grid; seen by the
    /// region over the grid, never by a department. A relay forwards one only
    /// from a directory user who could have made it.
    #[test]
    fn points_adjustments_by_role_and_scope() {
        use crate::doc::adjustment::{AdjustmentDoc, Month};
        let dir = sample();
        let u = |id| user(&dir, id);
        let adj = |by: &str, grid: &str| {
            DocContent::Adjustment(AdjustmentDoc {
                id: DocId::new(DocKind::Adjustment),
                grid: grid.parse().unwrap(),
                worker: W.parse().unwrap(),
                month: Month::new(2026, 11).unwrap(),
                points: 5,
                reason: "协助处置".into(),
                by: by.parse().unwrap(),
                at: at(0),
            })
        };
        let not_leader = |grid: &str| Err(Denied::NotLeader(grid.parse().unwrap()));
        let mine = adj(CD, GRID_A);
        let changed = match &mine {
            DocContent::Adjustment(a) => DocContent::Adjustment(AdjustmentDoc {
                points: 500,
                ..a.clone()
            }),
            _ => unreachable!(),
        };
        #[rustfmt::skip]
        let table: Vec<ChangeRow> = vec![
            ("CD adjusts grid A", CD, None, mine.clone(), Ok(())),
            ("TD adjusts grid A", TD, None, adj(TD, GRID_A), Ok(())),
            ("the admin adjusts grid A", ADMIN, None, adj(ADMIN, GRID_A), Ok(())),
            ("W adjusts her own", W, None, adj(W, GRID_A), not_leader(GRID_A)),
            ("CD2 adjusts grid A", CD2, None, adj(CD2, GRID_A), not_leader(GRID_A)),
            ("DD adjusts grid A", DD, None, adj(DD, GRID_A), not_leader(GRID_A)),
            ("H adjusts grid A", H, None, adj(H, GRID_A), not_leader(GRID_A)),
            ("CD adjusts in TD's name", CD, None, adj(TD, GRID_A), Err(Denied::NotAdjuster)),
            ("CD raises her own", CD, Some(mine.clone()), changed.clone(),
                Err(Denied::AdjustmentRewritten)),
            ("CD writes it again", CD, Some(mine.clone()), mine.clone(),
                Err(Denied::AdjustmentRewritten)),
        ];
        for (what, who, before, after, expected) in &table {
            let got = authorize(&u(who), after.id(), before.as_ref(), after);
            assert_eq!(&got, expected, "{who} {what}");
        }
        let town: RegionCode = TOWN.parse().unwrap();
        assert_eq!(authorize_relayed(&dir, &town, None, &mine), Ok(()));
        assert_eq!(
            authorize_relayed(&dir, &town, None, &adj(W, GRID_A)),
            Err(Denied::Unvouched)
        );
        assert_eq!(
            authorize_relayed(&dir, &town, Some(&mine), &changed),
            Err(Denied::AdjustmentRewritten)
        );
        // W works in grid A: one in grid B naming her slips into another grid.
        let elsewhere = adj(CD, GRID_B);
        assert_eq!(authorize(&u(CD), elsewhere.id(), None, &elsewhere), Ok(()));
        let DocContent::Adjustment(a) = &elsewhere else {
            unreachable!()
        };
        assert_eq!(check_adjusted_worker(&dir, a), Err(Denied::NotGridsWorker));
        assert_eq!(
            authorize_relayed(&dir, &town, None, &elsewhere),
            Err(Denied::NotGridsWorker)
        );
        let DocContent::Adjustment(a) = &mine else {
            unreachable!()
        };
        assert_eq!(check_adjusted_worker(&dir, a), Ok(()));
        for (who, sees) in [
            (W, true),
            (W2, false),
            (CD, true),
            (CD2, false),
            (TD, true),
            (H, false),
        ] {
            assert_eq!(scope_of(&u(who)).sees_doc(&mine), sees, "{who}");
        }
    }
}
