//! Cases: reporting, the workflow's actions, notes, reading a case in the user's
//! scope, lists and counts from the index.

use automerge::transaction::Transaction as AmTransaction;
use automerge::{Automerge, AutomergeError};
use chrono::{DateTime, Utc};
use rusqlite::Transaction;

use super::registry::forbidden;
use super::Engine;
use crate::directory::{Role, User};
use crate::doc::case::{self, check_note, CaseDoc, NewCase, Note};
use crate::error::{Error, Result};
use crate::ids::{DeptId, DocId, DocKind, RegionLevel};
use crate::index::{self, CaseFilter, CaseSummary};
use crate::store;
use crate::workflow::{fold, Action, CaseState, Entry, Outcome, Status};

/// A case with its folded state.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    /// The document content.
    pub doc: CaseDoc,
    /// The fold of its timeline.
    pub state: CaseState,
}

impl Case {
    /// Timeline entries paired with what became of each (applied, conflict, refused).
    pub fn timeline(&self) -> impl Iterator<Item = (&Entry, &Outcome)> {
        self.doc.timeline.iter().zip(&self.state.outcomes)
    }
}

fn new_entry_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl Engine {
    /// Report a new case. Durable when this returns.
    pub fn report_case(&self, input: NewCase) -> Result<DocId> {
        let me = self.me()?;
        let (id, mut content) = self.new_case(&me, input)?;
        for photo in &mut content.photos {
            *photo = self.db.read(|tx| self.photo_ref(tx, &photo.hash, &me.id))?;
        }
        self.write(|tx| -> Result<()> {
            let mut doc = Automerge::new();
            self.commit_local(tx, &id, &mut doc, |t| content.write_new(t))?;
            self.materialise(tx, &id, &doc)?;
            Ok(())
        })?;
        Ok(id)
    }

    /// A new case reported by `me`, every field, the taxonomy, the grid and the
    /// reporter's right to report there checked; its id and content, not stored.
    pub(super) fn new_case(&self, me: &User, mut input: NewCase) -> Result<(DocId, CaseDoc)> {
        let dir = self.directory()?;
        input.validate()?;
        if dir.category(&input.category).is_none() {
            return Err(Error::InvalidInput(format!(
                "unknown category {}",
                input.category
            )));
        }
        if let Some(sub) = &input.subcategory {
            if !dir.is_subcategory_of(sub, &input.category) {
                return Err(Error::InvalidInput(format!(
                    "{sub} is not a subcategory of {}",
                    input.category
                )));
            }
        }
        // Asked before the grid is, so that a handler hears why she cannot.
        crate::access::check_reporter(me).map_err(forbidden)?;
        let grid = match (&input.grid, me.role) {
            (None, Role::GridWorker) => me.region.clone(),
            (None, _) => return Err(Error::InvalidInput("grid is required".into())),
            (Some(g), _) => g.clone(),
        };
        match dir.region(&grid) {
            Some(r) if r.level == RegionLevel::Grid => {}
            _ => {
                return Err(Error::InvalidInput(format!(
                    "{grid} is not a grid in the directory"
                )))
            }
        }
        crate::access::check_new_case(me, &grid).map_err(forbidden)?;
        self.resolve_links(me, &grid, &input.links, &mut input.location)?;
        let level = crate::access::report_level(me.role);
        let report = Entry {
            id: new_entry_id(),
            after: None,
            actor: me.id.clone(),
            role: me.role,
            at: self.now(),
            action: Action::Report { level },
        };
        let id = DocId::new(DocKind::Case);
        let content = CaseDoc::new(id.clone(), me.id.clone(), grid, input, report);
        Ok((id, content))
    }

    /// Take a workflow action on a case. Checks the role, the region and the case's
    /// state, appends the entry and returns the new state.
    pub fn act(&self, id: &DocId, action: Action) -> Result<CaseState> {
        let me = self.me()?;
        self.check_department(&action)?;
        self.write(|tx| {
            let (mut doc, case) = self.load_case_in_scope(tx, id, &me)?;
            let entry = self.action_entry(&case, &me, action)?;
            self.commit_local(tx, id, &mut doc, |t| case::append_entry(t, &entry))?;
            self.materialise(tx, id, &doc)?;
            let mut timeline = case.timeline;
            timeline.push(entry);
            Ok(fold(&timeline))
        })
    }

    pub(super) fn check_department(&self, action: &Action) -> Result<()> {
        if let Action::Dispatch { dept, .. } = action {
            if self.directory()?.department(dept).is_none() {
                return Err(Error::InvalidInput(format!("unknown department {dept}")));
            }
        }
        Ok(())
    }

    /// The timeline entry `me` taking `action` appends to `case`, once the role and
    /// the case's state allow it. Scope is checked by whoever loaded the case:
    /// `check_scope` hides cases not dispatched to a handler's department, so a
    /// handler only ever acts on her department's cases.
    pub(super) fn action_entry(&self, case: &CaseDoc, me: &User, action: Action) -> Result<Entry> {
        fold(&case.timeline).check(me.role, &action)?;
        if case.timeline.len() >= case::limits::TIMELINE {
            return Err(Error::InvalidInput("the case's timeline is full".into()));
        }
        Ok(Entry {
            id: new_entry_id(),
            after: case.last_entry_id().map(str::to_owned),
            actor: me.id.clone(),
            role: me.role,
            at: self.now(),
            action,
        })
    }

    /// The deadline a dispatch of `case` gets by default: the directory's rule for
    /// its category and severity, from now.
    pub fn default_deadline(&self, case: &CaseDoc) -> Result<DateTime<Utc>> {
        let hours = self
            .directory()?
            .deadline_hours(&case.category, case.severity);
        Ok(self.now() + chrono::Duration::hours(hours.into()))
    }

    /// Dispatch a case to a department; the deadline defaults to the directory's rule
    /// for the case's category and severity.
    pub fn dispatch(
        &self,
        id: &DocId,
        dept: DeptId,
        deadline: Option<DateTime<Utc>>,
    ) -> Result<CaseState> {
        let deadline = match deadline {
            Some(d) => d,
            None => self.default_deadline(&self.get_case(id)?.doc)?,
        };
        self.act(id, Action::Dispatch { dept, deadline })
    }

    /// Add a note to a case.
    pub fn add_note(&self, id: &DocId, text: &str) -> Result<()> {
        check_note(text)?;
        let me = self.me()?;
        let note = Note {
            by: me.id.clone(),
            at: self.now(),
            text: text.to_owned(),
        };
        self.edit_case(
            id,
            &me,
            |case| case.notes.len() < case::limits::NOTES,
            "notes",
            |t| case::add_note(t, &note),
        )
    }

    pub(super) fn edit_case(
        &self,
        id: &DocId,
        me: &User,
        has_room: impl FnOnce(&CaseDoc) -> bool,
        what: &str,
        edit: impl FnOnce(&mut AmTransaction<'_>) -> Result<(), AutomergeError>,
    ) -> Result<()> {
        self.write(|tx| {
            let (mut doc, case) = self.load_case_in_scope(tx, id, me)?;
            check_room(has_room(&case), what)?;
            self.commit_local(tx, id, &mut doc, edit)?;
            self.materialise(tx, id, &doc)
        })
    }

    /// Whether `me` may see and act on `case` at all: within their region, or, for a
    /// department handler, dispatched to their department ([`crate::access::Scope`]).
    fn check_scope(&self, me: &User, case: &CaseDoc) -> Result<()> {
        if crate::access::scope_of(me).sees_case(case) {
            Ok(())
        } else {
            // The same answer as for a case that does not exist: no probing by id.
            Err(Error::NotFound {
                what: "case",
                id: case.id.to_string(),
            })
        }
    }

    /// Load a case the user may see, as a document and as content.
    pub(super) fn load_case_in_scope(
        &self,
        tx: &Transaction<'_>,
        id: &DocId,
        me: &User,
    ) -> Result<(Automerge, CaseDoc)> {
        let doc = self.load_case_doc(tx, id)?;
        let case = CaseDoc::read(&doc, id).map_err(Error::malformed(id))?;
        self.check_scope(me, &case)?;
        Ok((doc, case))
    }

    fn load_case_doc(&self, tx: &Transaction<'_>, id: &DocId) -> Result<Automerge> {
        if id.kind() != DocKind::Case {
            return Err(Error::NotFound {
                what: "case",
                id: id.to_string(),
            });
        }
        store::load(tx, id)?.ok_or_else(|| Error::NotFound {
            what: "case",
            id: id.to_string(),
        })
    }

    /// A case with its timeline and state (loads the one document).
    pub fn get_case(&self, id: &DocId) -> Result<Case> {
        self.get_case_as(&self.me()?, id)
    }

    /// List cases from the index (no document is loaded).
    pub fn list_cases(&self, filter: &CaseFilter) -> Result<Vec<CaseSummary>> {
        self.db.read(|tx| index::list_cases(tx, filter))
    }

    /// The cases `filter` selects as a map shows them: the newest with a
    /// position ([`index::MAX_MAP_POINTS`] at most) and the count per grid.
    pub fn case_map(&self, filter: &CaseFilter) -> Result<index::CaseMap> {
        self.db.read(|tx| index::case_map(tx, filter))
    }

    /// Count cases by status from the index.
    pub fn count_cases(&self, filter: &CaseFilter) -> Result<Vec<(Status, u64)>> {
        self.db.read(|tx| index::count_by_status(tx, filter))
    }

    /// The filter for "assigned to me": a handler's department's open cases, a
    /// dispatcher's region's cases waiting for a dispatcher, a grid worker's cases
    /// waiting for her verification.
    pub fn assigned_to_me(&self) -> Result<CaseFilter> {
        let me = self.me()?;
        let scope = crate::access::scope_of(&me)
            .case_filter()
            .map_err(|e| Error::Forbidden(e.to_string()))?;
        let statuses = match me.role {
            Role::DepartmentHandler => vec![Status::Dispatched],
            Role::GridWorker => vec![Status::Handled],
            _ => vec![
                Status::Reported,
                Status::Accepted,
                Status::Verified,
                Status::Archived,
            ],
        };
        Ok(CaseFilter { statuses, ..scope })
    }
}

pub(super) fn check_room(has_room: bool, what: &str) -> Result<()> {
    if has_room {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "the case has the maximum number of {what}"
        )))
    }
}
