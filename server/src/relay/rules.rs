//! Who may see and change what, as the relay enforces it on every push.

use std::collections::HashSet;

use gridsync_core::doc::case::CaseDoc;
use gridsync_core::{fold, Directory, DocContent, DocId, Outcome, Role, User};

use super::store::Visibility;

fn grid_of(content: &DocContent) -> &gridsync_core::RegionCode {
    match content {
        DocContent::Case(c) => &c.grid,
        DocContent::Patrol(p) => &p.grid,
    }
}

/// What `user` may see: department handlers what is dispatched to their department,
/// everyone else their region's subtree.
pub(super) fn visibility(user: &User) -> Visibility {
    let handler = user.role == Role::DepartmentHandler;
    Visibility {
        region: (!handler).then(|| user.region.clone()),
        dept: if handler {
            user.department.clone()
        } else {
            None
        },
    }
}

/// May `user` make this change to this document? The rules the server enforces on
/// every push, whatever the device's own checks said.
/// What no change may do, whoever makes it: change a document's kind, rewrite what
/// was reported, change, remove or reorder timeline entries, notes or photos, or
/// take anything out of a patrol log.
fn check_history(before: Option<&DocContent>, after: &DocContent) -> Result<(), String> {
    match (before, after) {
        (None, _) => Ok(()),
        (Some(DocContent::Patrol(b)), DocContent::Patrol(p)) => {
            if b.worker != p.worker || b.grid != p.grid || b.started != p.started {
                return Err("a patrol's worker, grid and start cannot change".into());
            }
            if b.ended.is_some() && b.ended != p.ended {
                return Err("an ended patrol cannot be reopened or re-ended".into());
            }
            // Patrol logs only grow: what was recorded stays, in order.
            let grown = p.track.starts_with(&b.track)
                && p.checkins.starts_with(&b.checkins)
                && p.observations.starts_with(&b.observations)
                && p.cases.starts_with(&b.cases);
            if grown {
                Ok(())
            } else {
                Err("a patrol log can only be added to".into())
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
                && b.people == c.people;
            if !report_unchanged {
                return Err("what was reported cannot be changed afterwards".into());
            }
            if !is_subsequence(&b.timeline, &c.timeline) {
                return Err("timeline entries cannot be changed, removed or reordered".into());
            }
            if !is_subsequence(&b.notes, &c.notes) || !is_subsequence(&b.photos, &c.photos) {
                return Err("notes and photos cannot be changed or removed".into());
            }
            Ok(())
        }
        _ => Err("document kind changed".into()),
    }
}

pub(super) fn authorize(
    user: &User,
    id: &DocId,
    before: Option<&DocContent>,
    after: &DocContent,
) -> Result<(), String> {
    check_history(before, after)?;
    match after {
        DocContent::Patrol(p) => {
            if p.worker != user.id {
                return Err("a patrol log can only be written by its grid worker".into());
            }
            if !user.region.contains(&p.grid) {
                return Err("the patrol's grid is outside your region".into());
            }
            Ok(())
        }
        DocContent::Case(c) => {
            let b = match before {
                Some(DocContent::Case(b)) => Some(b),
                _ => None,
            };
            // Department handlers see what is dispatched to their department only.
            let visible = if user.role == Role::DepartmentHandler {
                b.is_some_and(|b| fold(&b.timeline).assigned_dept == user.department)
            } else {
                user.region.contains(&c.grid)
            };
            if !visible {
                return Err(format!("case {id} is outside your scope"));
            }
            // A new case's entries are all checked as new: the first must be your report.
            if b.is_none() && c.reporter != user.id {
                return Err("a new case must be reported by you".into());
            }
            check_new_entries(b, c, |actor, role| {
                *actor == user.id && role.is_none_or(|r| r == user.role)
            })
            .map_err(|e| match e {
                NewEntry::Author => "a timeline entry must name you and your role".into(),
                NewEntry::Workflow(reason) => format!("workflow: {reason}"),
                NewEntry::NoteOrPhoto => "a note or photo must be added in your own name".into(),
            })
        }
    }
}

/// What a downstream relay forwards for its region: the same history rules as any
/// change, every document inside the region before and after, and every new entry,
/// note or photo made by a directory user who could have made it (role and scope) —
/// the relay vouches for who made it, not for what the rules allow.
pub(super) fn authorize_relayed(
    dir: &Directory,
    region: &gridsync_core::RegionCode,
    before: Option<&DocContent>,
    after: &DocContent,
) -> Result<(), String> {
    check_history(before, after)?;
    if !before
        .into_iter()
        .chain([after])
        .all(|c| region.contains(grid_of(c)))
    {
        return Err("the document is outside the relay's region".into());
    }
    match after {
        DocContent::Patrol(p) => match dir.user(&p.worker) {
            Some(u) if u.role == Role::GridWorker && u.region.contains(&p.grid) => Ok(()),
            _ => Err("a patrol log must be a grid worker's of that grid".into()),
        },
        DocContent::Case(c) => {
            let b = match before {
                Some(DocContent::Case(b)) => Some(b),
                _ => None,
            };
            let dept = fold(&c.timeline).assigned_dept;
            check_new_entries(b, c, |actor, role| {
                dir.user(actor).is_some_and(|u| {
                    let in_scope = if u.role == Role::DepartmentHandler {
                        u.department.is_some() && u.department == dept
                    } else {
                        u.region.contains(&c.grid)
                    };
                    in_scope && role.is_none_or(|r| r == u.role)
                })
            })
            .map_err(|e| match e {
                NewEntry::Workflow(reason) => format!("workflow: {reason}"),
                NewEntry::Author | NewEntry::NoteOrPhoto => {
                    "an entry, note or photo names someone who could not have made it".into()
                }
            })
        }
    }
}

/// Whether every item of `old` is in `new`, in the same order (concurrent appends
/// from other devices may sit between them).
fn is_subsequence<T: PartialEq>(old: &[T], new: &[T]) -> bool {
    let mut rest = new.iter();
    old.iter().all(|o| rest.any(|n| n == o))
}

/// Why a new timeline entry, note or photo is refused.
enum NewEntry {
    /// An entry not made by someone who may make it.
    Author,
    /// An entry the workflow refuses.
    Workflow(String),
    /// A note or photo not added by someone who may add it.
    NoteOrPhoto,
}

/// Every timeline entry, note and photo in `after` that was not in `before` must be
/// one `may_author(actor, role)` allows (role `None` for notes and photos), and no
/// new entry may be refused by the workflow.
fn check_new_entries(
    before: Option<&CaseDoc>,
    after: &CaseDoc,
    may_author: impl Fn(&gridsync_core::UserId, Option<Role>) -> bool,
) -> Result<(), NewEntry> {
    let known: HashSet<&str> = before
        .map(|b| b.timeline.iter().map(|e| e.id.as_str()).collect())
        .unwrap_or_default();
    let state = fold(&after.timeline);
    for (entry, outcome) in after.timeline.iter().zip(&state.outcomes) {
        if known.contains(entry.id.as_str()) {
            continue;
        }
        if !may_author(&entry.actor, Some(entry.role)) {
            return Err(NewEntry::Author);
        }
        if let Outcome::Refused(reason) = outcome {
            return Err(NewEntry::Workflow(reason.to_string()));
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
