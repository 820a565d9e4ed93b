//! The six-step closed loop (六步闭环) as a pure, deterministic fold over a case's
//! append-only timeline.
//!
//! Every replica folds the same list (Automerge gives every replica the same order
//! for concurrent appends) with the same rules, so every replica reaches the same
//! status. Each entry records the id of the entry its author had seen last
//! (`after`); an entry that was made concurrently with another and is no longer
//! valid once the other has been applied is marked as a conflict, not dropped.

use chrono::{DateTime, Utc};

use crate::directory::Role;
use crate::ids::{DeptId, RegionLevel, UserId};

/// The most characters of free text in one timeline entry (a result, a reason …).
pub const MAX_ENTRY_TEXT_CHARS: usize = 2000;

/// Where a case is in the closed loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// 发现上报: reported, waiting to be accepted.
    Reported,
    /// 受理: accepted by a dispatcher, not yet dispatched.
    Accepted,
    /// 派遣: dispatched to a department with a deadline.
    Dispatched,
    /// 处置反馈: the department reported it handled; waiting for on-site verification.
    Handled,
    /// 核查通过: verified on site (or handled on the spot by the grid worker).
    Verified,
    /// 归档: closed and archived.
    Archived,
    /// 考核评价: evaluated after a return visit. Final.
    Evaluated,
    /// 无效: not a real case. Final.
    Invalid,
}

impl Status {
    /// Every status, in loop order.
    pub const ALL: [Status; 8] = [
        Status::Reported,
        Status::Accepted,
        Status::Dispatched,
        Status::Handled,
        Status::Verified,
        Status::Archived,
        Status::Evaluated,
        Status::Invalid,
    ];

    /// Stable snake_case name, as stored in the index tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Reported => "reported",
            Status::Accepted => "accepted",
            Status::Dispatched => "dispatched",
            Status::Handled => "handled",
            Status::Verified => "verified",
            Status::Archived => "archived",
            Status::Evaluated => "evaluated",
            Status::Invalid => "invalid",
        }
    }

    /// Parse the stored name.
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The Chinese label shown to people.
    pub fn label_zh(self) -> &'static str {
        match self {
            Status::Reported => "待受理",
            Status::Accepted => "已受理",
            Status::Dispatched => "处置中",
            Status::Handled => "待核查",
            Status::Verified => "待归档",
            Status::Archived => "已归档",
            Status::Evaluated => "已评价",
            Status::Invalid => "无效",
        }
    }

    /// Whether the case is closed (archived, evaluated or invalid).
    pub fn is_closed(self) -> bool {
        matches!(self, Status::Archived | Status::Evaluated | Status::Invalid)
    }
}

/// The five levels of supervision (督办), raised as a case runs past its deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SupervisionLevel {
    /// 1 电子催办: electronic reminder.
    Reminder = 1,
    /// 2 人工交办: manual hand-over.
    Handover = 2,
    /// 3 现场督办: on-site supervision.
    OnSite = 3,
    /// 4 短信督办: SMS to the leader responsible.
    Sms = 4,
    /// 5 专报督办: special report upward.
    SpecialReport = 5,
}

impl SupervisionLevel {
    /// The level from its number 1–5.
    pub fn from_number(n: i64) -> Option<SupervisionLevel> {
        match n {
            1 => Some(SupervisionLevel::Reminder),
            2 => Some(SupervisionLevel::Handover),
            3 => Some(SupervisionLevel::OnSite),
            4 => Some(SupervisionLevel::Sms),
            5 => Some(SupervisionLevel::SpecialReport),
            _ => None,
        }
    }

    /// The number 1–5.
    pub fn number(self) -> i64 {
        self as i64
    }

    /// The level a case reaches by itself once it runs past its deadline: level 1 at
    /// the deadline, then 2, 3, 4 and 5 after [`SUPERVISION_AFTER_HOURS`]. `None`
    /// before the deadline.
    pub fn for_overdue(deadline: DateTime<Utc>, now: DateTime<Utc>) -> Option<SupervisionLevel> {
        if now <= deadline {
            return None;
        }
        let hours = (now - deadline).num_hours();
        let reached = SUPERVISION_AFTER_HOURS
            .iter()
            .take_while(|h| hours >= **h)
            .count();
        SupervisionLevel::from_number(reached as i64)
    }

    /// The level shown for a case at `now`: the highest of the level raised by hand
    /// (督办 entries) and the one an open dispatch reaches by running late. Computed
    /// the same on every replica, so it needs no change to any document.
    pub fn effective(
        status: Status,
        deadline: Option<DateTime<Utc>>,
        raised: Option<SupervisionLevel>,
        now: DateTime<Utc>,
    ) -> Option<SupervisionLevel> {
        let late = match (status, deadline) {
            (Status::Dispatched, Some(d)) => SupervisionLevel::for_overdue(d, now),
            _ => None,
        };
        raised.max(late)
    }

    /// The Chinese name of the level.
    pub fn label_zh(self) -> &'static str {
        match self {
            SupervisionLevel::Reminder => "电子催办",
            SupervisionLevel::Handover => "人工交办",
            SupervisionLevel::OnSite => "现场督办",
            SupervisionLevel::Sms => "短信督办",
            SupervisionLevel::SpecialReport => "专报督办",
        }
    }
}

/// Hours past its deadline at which an open dispatch reaches supervision levels 1–5.
pub const SUPERVISION_AFTER_HOURS: [i64; 5] = [0, 24, 72, 168, 360];

/// One step a person takes on a case.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// The first entry of every case: reported, to be handled at `level`.
    Report {
        /// The level that should accept the case (community for a grid worker's report).
        level: RegionLevel,
    },
    /// A dispatcher accepts the case (受理).
    Accept,
    /// The grid worker handles it on the spot (自办: small matters stay in the grid).
    SelfHandle {
        /// What was done.
        result: String,
    },
    /// A dispatcher dispatches it to a department with a deadline (派遣).
    Dispatch {
        /// The department responsible.
        dept: DeptId,
        /// When it must be handled by.
        deadline: DateTime<Utc>,
    },
    /// The department reports it handled (处置反馈).
    Feedback {
        /// What was done.
        result: String,
    },
    /// The department returns it: not its remit (退回).
    Return {
        /// Why.
        reason: String,
    },
    /// The grid worker checks on site (任务核查); if not fixed it goes back to the handler.
    Verify {
        /// Whether the problem is fixed.
        passed: bool,
        /// What was seen.
        comment: String,
    },
    /// A dispatcher closes and archives it (事件归档).
    Archive,
    /// Satisfaction on the return visit, 1–5 (考核评价).
    Evaluate {
        /// 1 (very unsatisfied) to 5 (very satisfied).
        satisfaction: u8,
        /// Notes from the return visit.
        comment: String,
    },
    /// Sent one level up the region tree (上报).
    Escalate {
        /// Why.
        reason: String,
    },
    /// Supervision raised (督办).
    Urge {
        /// The new level; must be above the current one.
        level: SupervisionLevel,
        /// Notes.
        comment: String,
    },
    /// Marked not a real case (无效).
    Invalidate {
        /// Why.
        reason: String,
    },
}

impl Action {
    /// Stable snake_case name, as stored in documents.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Report { .. } => "report",
            Action::Accept => "accept",
            Action::SelfHandle { .. } => "self_handle",
            Action::Dispatch { .. } => "dispatch",
            Action::Feedback { .. } => "feedback",
            Action::Return { .. } => "return",
            Action::Verify { .. } => "verify",
            Action::Archive => "archive",
            Action::Evaluate { .. } => "evaluate",
            Action::Escalate { .. } => "escalate",
            Action::Urge { .. } => "urge",
            Action::Invalidate { .. } => "invalidate",
        }
    }

    /// The Chinese label shown to people.
    pub fn label_zh(&self) -> &'static str {
        match self {
            Action::Report { .. } => "发现上报",
            Action::Accept => "受理",
            Action::SelfHandle { .. } => "自行处置",
            Action::Dispatch { .. } => "派遣",
            Action::Feedback { .. } => "处置反馈",
            Action::Return { .. } => "退回",
            Action::Verify { passed: true, .. } => "核查通过",
            Action::Verify { passed: false, .. } => "核查未通过",
            Action::Archive => "归档",
            Action::Evaluate { .. } => "回访评价",
            Action::Escalate { .. } => "上报上级",
            Action::Urge { .. } => "督办",
            Action::Invalidate { .. } => "作废",
        }
    }

    /// The free text the entry carries (a result, a reason or a comment), if any.
    pub fn text(&self) -> Option<&str> {
        match self {
            Action::SelfHandle { result } | Action::Feedback { result } => Some(result),
            Action::Return { reason }
            | Action::Escalate { reason }
            | Action::Invalidate { reason } => Some(reason),
            Action::Verify { comment, .. }
            | Action::Evaluate { comment, .. }
            | Action::Urge { comment, .. } => Some(comment),
            Action::Report { .. } | Action::Accept | Action::Dispatch { .. } | Action::Archive => {
                None
            }
        }
    }

    /// Whether `role` may ever take this action (the state is checked separately).
    fn allowed_for(&self, role: Role) -> bool {
        if role == Role::Admin {
            return true;
        }
        match self {
            Action::Report { .. } => may_report(role),
            Action::SelfHandle { .. } | Action::Verify { .. } => role == Role::GridWorker,
            Action::Feedback { .. } | Action::Return { .. } => role == Role::DepartmentHandler,
            Action::Escalate { .. } => role == Role::GridWorker || role.is_dispatcher(),
            Action::Accept
            | Action::Dispatch { .. }
            | Action::Archive
            | Action::Evaluate { .. }
            | Action::Urge { .. }
            | Action::Invalidate { .. } => role.is_dispatcher(),
        }
    }

    /// The statuses this action may be taken from.
    fn allowed_from(&self) -> &'static [Status] {
        use Status::*;
        match self {
            Action::Report { .. } => &[],
            Action::Accept => &[Reported],
            Action::SelfHandle { .. } | Action::Invalidate { .. } | Action::Escalate { .. } => {
                &[Reported, Accepted]
            }
            Action::Dispatch { .. } => &[Reported, Accepted],
            Action::Feedback { .. } | Action::Return { .. } | Action::Urge { .. } => &[Dispatched],
            Action::Verify { .. } => &[Handled],
            Action::Archive => &[Verified],
            Action::Evaluate { .. } => &[Archived],
        }
    }
}

/// Whether `role` may report new cases (everyone but department handlers: a
/// dispatcher records hotline reports).
pub fn may_report(role: Role) -> bool {
    role != Role::DepartmentHandler
}

/// One entry of a case's timeline: who did what, when (全程留痕).
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Unique id of this entry.
    pub id: String,
    /// The id of the last entry its author had seen, `None` for the report.
    pub after: Option<String>,
    /// Who.
    pub actor: UserId,
    /// In which role.
    pub role: Role,
    /// When, by the author's clock.
    pub at: DateTime<Utc>,
    /// What.
    pub action: Action,
}

/// Why an action may not be taken. Deterministic: depends only on the state folded
/// so far and the entry itself.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The role may never take this action.
    #[error("a {role} may not {action}")]
    Role {
        /// The role.
        role: &'static str,
        /// The action.
        action: &'static str,
    },
    /// Not from the current status.
    #[error("cannot {action} a case that is {status}")]
    State {
        /// The action.
        action: &'static str,
        /// The current status.
        status: &'static str,
    },
    /// The case is handled at a higher level than this dispatcher.
    #[error("the case is handled at {case_level} level, above this {role}")]
    Level {
        /// The role.
        role: &'static str,
        /// The case's level.
        case_level: &'static str,
    },
    /// A parameter is out of range.
    #[error("{0}")]
    Parameter(String),
}

/// What became of a timeline entry in the fold.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// It took effect.
    Applied,
    /// It was made concurrently with `lost_to` (offline on two devices) and could no
    /// longer take effect once that was applied. Shown in the timeline as a conflict.
    Conflict {
        /// The entry that won.
        lost_to: String,
        /// Why this one could not follow it.
        reason: Refusal,
    },
    /// It was never valid (e.g. from a replica with different rules). Kept, not applied.
    Refused(Refusal),
}

/// The state of a case: a deterministic fold over its timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseState {
    /// Current status.
    pub status: Status,
    /// The level of the region tree responsible for it.
    pub level: RegionLevel,
    /// The department it is dispatched to, while dispatched or later.
    pub assigned_dept: Option<DeptId>,
    /// The deadline of the current dispatch.
    pub deadline: Option<DateTime<Utc>>,
    /// The highest supervision level raised.
    pub supervision: Option<SupervisionLevel>,
    /// Whether the grid worker handled it on the spot.
    pub self_handled: bool,
    /// Satisfaction 1–5 once evaluated.
    pub satisfaction: Option<u8>,
    /// When it was first accepted or dispatched.
    pub accepted_at: Option<DateTime<Utc>>,
    /// When the department reported it handled (or it was self-handled).
    pub handled_at: Option<DateTime<Utc>>,
    /// When it was archived or invalidated.
    pub closed_at: Option<DateTime<Utc>>,
    /// How many times it was sent one level up (上报).
    pub escalations: u32,
    /// One outcome per timeline entry, in timeline order.
    pub outcomes: Vec<Outcome>,
    /// Per timeline entry, where a server judged the entry by another time than its
    /// author's clock wrote (an implausible device time: later than the server
    /// received it, or earlier than the entry it follows), the time it judged it
    /// by; the times above are then read at those. Empty from [`fold`], which
    /// takes every `at` as written.
    pub judged_at: Vec<Option<DateTime<Utc>>>,
    last_applied: Option<String>,
}

impl CaseState {
    fn new() -> Self {
        CaseState {
            status: Status::Reported,
            level: RegionLevel::Community,
            assigned_dept: None,
            deadline: None,
            supervision: None,
            self_handled: false,
            satisfaction: None,
            accepted_at: None,
            handled_at: None,
            closed_at: None,
            escalations: 0,
            outcomes: Vec::new(),
            judged_at: Vec::new(),
            last_applied: None,
        }
    }

    /// Whether any entry lost a conflict.
    pub fn has_conflict(&self) -> bool {
        self.outcomes
            .iter()
            .any(|o| matches!(o, Outcome::Conflict { .. }))
    }

    /// Whether it is dispatched and past its deadline at `now`.
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        self.status == Status::Dispatched && self.deadline.is_some_and(|d| d < now)
    }

    /// Whether `role` may take `action` now. The same rule the fold applies.
    pub fn check(&self, role: Role, action: &Action) -> Result<(), Refusal> {
        if !action.allowed_for(role) {
            return Err(Refusal::Role {
                role: role.as_str(),
                action: action.name(),
            });
        }
        if matches!(action, Action::Report { .. }) {
            return Err(Refusal::State {
                action: "report",
                status: "already reported",
            });
        }
        if !action.allowed_from().contains(&self.status) {
            return Err(Refusal::State {
                action: action.name(),
                status: self.status.as_str(),
            });
        }
        if let Some(level) = role.dispatch_level() {
            if level < self.level {
                return Err(Refusal::Level {
                    role: role.as_str(),
                    case_level: self.level.as_str(),
                });
            }
        }
        if let Some(text) = action.text() {
            if text.chars().count() > MAX_ENTRY_TEXT_CHARS {
                return Err(Refusal::Parameter(format!(
                    "text of {} is longer than {MAX_ENTRY_TEXT_CHARS} characters",
                    action.name()
                )));
            }
        }
        match action {
            Action::Evaluate { satisfaction, .. } if !(1..=5).contains(satisfaction) => Err(
                Refusal::Parameter("satisfaction must be between 1 and 5".into()),
            ),
            Action::Urge { level, .. } if self.supervision.is_some_and(|s| s >= *level) => Err(
                Refusal::Parameter("supervision can only be raised above its current level".into()),
            ),
            // A case is sent up to the district at most, as every build has
            // folded it: whether a city is above depends on the directory, which
            // the fold does not have. A city's dispatchers act on district-level
            // cases directly (ADR 0016).
            Action::Escalate { .. } if self.level >= RegionLevel::District => Err(
                Refusal::Parameter("the case is already at district level".into()),
            ),
            // A grid worker hands a case up from her community; further up is for
            // dispatchers. Likewise she can only handle on the spot what is still
            // the community's.
            Action::Escalate { .. } | Action::SelfHandle { .. }
                if role == Role::GridWorker && self.level > RegionLevel::Community =>
            {
                Err(Refusal::Level {
                    role: role.as_str(),
                    case_level: self.level.as_str(),
                })
            }
            _ => Ok(()),
        }
    }

    fn apply(&mut self, entry: &Entry) {
        match &entry.action {
            Action::Report { level } => self.level = *level,
            Action::Accept => {
                self.status = Status::Accepted;
                self.accepted_at.get_or_insert(entry.at);
            }
            Action::SelfHandle { .. } => {
                self.status = Status::Verified;
                self.self_handled = true;
                self.level = RegionLevel::Grid;
                self.handled_at = Some(entry.at);
            }
            Action::Dispatch { dept, deadline } => {
                self.status = Status::Dispatched;
                self.assigned_dept = Some(dept.clone());
                self.deadline = Some(*deadline);
                self.supervision = None;
                self.accepted_at.get_or_insert(entry.at);
            }
            Action::Feedback { .. } => {
                self.status = Status::Handled;
                self.handled_at = Some(entry.at);
            }
            Action::Return { .. } => {
                self.status = Status::Accepted;
                self.assigned_dept = None;
                self.deadline = None;
                self.supervision = None;
            }
            Action::Verify { passed, .. } => {
                self.status = if *passed {
                    Status::Verified
                } else {
                    Status::Dispatched
                };
            }
            Action::Archive => {
                self.status = Status::Archived;
                self.closed_at = Some(entry.at);
            }
            Action::Evaluate { satisfaction, .. } => {
                self.status = Status::Evaluated;
                self.satisfaction = Some(*satisfaction);
            }
            Action::Escalate { .. } => {
                self.status = Status::Reported;
                self.escalations += 1;
                if let Some(up) = self.level.parent() {
                    self.level = up;
                }
            }
            Action::Urge { level, .. } => self.supervision = Some(*level),
            Action::Invalidate { .. } => {
                self.status = Status::Invalid;
                self.closed_at = Some(entry.at);
            }
        }
    }
}

/// Fold a timeline into the case's state. Total and deterministic: every replica
/// holding the same list computes the same state.
pub fn fold(timeline: &[Entry]) -> CaseState {
    let mut state = CaseState::new();
    for (i, entry) in timeline.iter().enumerate() {
        let verdict = if i == 0 {
            match entry.action {
                Action::Report { .. } => Ok(()),
                _ => Err(Refusal::State {
                    action: entry.action.name(),
                    status: "not yet reported",
                }),
            }
        } else {
            state.check(entry.role, &entry.action)
        };
        // The author saw the timeline up to `after`. If that is not the state the fold
        // has reached, something they did not see was applied meanwhile: a refusal is
        // then a lost conflict, not a forged entry.
        let unseen = entry.after.as_deref() != state.last_applied.as_deref();
        let outcome = match verdict {
            Ok(()) => {
                state.apply(entry);
                state.last_applied = Some(entry.id.clone());
                Outcome::Applied
            }
            Err(reason) => match (&state.last_applied, unseen) {
                (Some(winner), true) => Outcome::Conflict {
                    lost_to: winner.clone(),
                    reason,
                },
                _ => Outcome::Refused(reason),
            },
        };
        state.outcomes.push(outcome);
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(min: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_790_000_000 + min * 60, 0).unwrap()
    }

    fn entry(id: &str, after: Option<&str>, role: Role, action: Action) -> Entry {
        Entry {
            id: id.into(),
            after: after.map(Into::into),
            actor: "u1".parse().unwrap(),
            role,
            at: at(id.len() as i64),
            action,
        }
    }

    fn report() -> Entry {
        entry(
            "r",
            None,
            Role::GridWorker,
            Action::Report {
                level: RegionLevel::Community,
            },
        )
    }

    fn dispatch(id: &str, after: &str) -> Entry {
        entry(
            id,
            Some(after),
            Role::CommunityDispatcher,
            Action::Dispatch {
                dept: "water".parse().unwrap(),
                deadline: at(600),
            },
        )
    }

    #[test]
    fn the_six_step_loop_folds_to_evaluated() {
        let t = vec![
            report(),
            entry("a", Some("r"), Role::CommunityDispatcher, Action::Accept),
            dispatch("d", "a"),
            entry(
                "f",
                Some("d"),
                Role::DepartmentHandler,
                Action::Feedback {
                    result: "修好了".into(),
                },
            ),
            entry(
                "v",
                Some("f"),
                Role::GridWorker,
                Action::Verify {
                    passed: true,
                    comment: String::new(),
                },
            ),
            entry("x", Some("v"), Role::CommunityDispatcher, Action::Archive),
            entry(
                "e",
                Some("x"),
                Role::CommunityDispatcher,
                Action::Evaluate {
                    satisfaction: 5,
                    comment: String::new(),
                },
            ),
        ];
        let s = fold(&t);
        assert_eq!(s.status, Status::Evaluated);
        assert_eq!(s.satisfaction, Some(5));
        assert_eq!(s.assigned_dept.as_ref().map(|d| d.as_str()), Some("water"));
        assert!(s.outcomes.iter().all(|o| *o == Outcome::Applied));
        assert!(s.closed_at.is_some());
        assert!(!s.has_conflict());
    }

    #[test]
    fn failed_verification_goes_back_to_the_handler() {
        let t = vec![
            report(),
            dispatch("d", "r"),
            entry(
                "f",
                Some("d"),
                Role::DepartmentHandler,
                Action::Feedback { result: "x".into() },
            ),
            entry(
                "v",
                Some("f"),
                Role::GridWorker,
                Action::Verify {
                    passed: false,
                    comment: "still leaking".into(),
                },
            ),
        ];
        let s = fold(&t);
        assert_eq!(s.status, Status::Dispatched);
        assert!(s.is_overdue(at(601)));
        assert!(!s.is_overdue(at(599)));
    }

    #[test]
    fn concurrent_conflicting_decisions_leave_one_winner_and_a_visible_conflict() {
        // Offline at the same time: the worker fixes it on the spot while the
        // dispatcher dispatches it. Both were made after the report.
        let self_handle = entry(
            "s",
            Some("r"),
            Role::GridWorker,
            Action::SelfHandle {
                result: "清理了".into(),
            },
        );
        let t = vec![report(), dispatch("d", "r"), self_handle];
        let s = fold(&t);
        assert_eq!(s.status, Status::Dispatched);
        assert!(s.has_conflict());
        match &s.outcomes[2] {
            Outcome::Conflict { lost_to, .. } => assert_eq!(lost_to, "d"),
            other => panic!("expected a conflict, got {other:?}"),
        }
    }

    #[test]
    fn later_entries_on_the_losing_branch_are_conflicts_too() {
        // The dispatcher accepted and then dispatched offline, while the worker
        // handled it on the spot; the worker's entry comes first in the list.
        let t = vec![
            report(),
            entry(
                "s",
                Some("r"),
                Role::GridWorker,
                Action::SelfHandle {
                    result: "done".into(),
                },
            ),
            entry("a", Some("r"), Role::CommunityDispatcher, Action::Accept),
            dispatch("d", "a"),
        ];
        let s = fold(&t);
        assert_eq!(s.status, Status::Verified);
        assert!(matches!(&s.outcomes[2], Outcome::Conflict { lost_to, .. } if lost_to == "s"));
        assert!(matches!(&s.outcomes[3], Outcome::Conflict { lost_to, .. } if lost_to == "s"));
    }

    #[test]
    fn concurrent_compatible_entries_both_apply() {
        // Made concurrently, but in timeline order (urge, then return) each is still
        // valid when its turn comes, so both take effect.
        let t = vec![
            report(),
            dispatch("d", "r"),
            entry(
                "u",
                Some("d"),
                Role::CommunityDispatcher,
                Action::Urge {
                    level: SupervisionLevel::Reminder,
                    comment: String::new(),
                },
            ),
            entry(
                "t",
                Some("d"),
                Role::DepartmentHandler,
                Action::Return {
                    reason: "not ours".into(),
                },
            ),
        ];
        let s = fold(&t);
        assert_eq!(s.status, Status::Accepted);
        assert!(s.outcomes.iter().all(|o| *o == Outcome::Applied));
        assert_eq!(s.assigned_dept, None);
    }

    #[test]
    fn refusals_name_the_role_or_state() {
        let s = fold(&[report()]);
        let err = s.check(Role::GridWorker, &Action::Archive).unwrap_err();
        assert_eq!(err.to_string(), "a grid_worker may not archive");
        let err = s
            .check(
                Role::DepartmentHandler,
                &Action::Feedback { result: "x".into() },
            )
            .unwrap_err();
        assert_eq!(err.to_string(), "cannot feedback a case that is reported");
        let err = s
            .check(
                Role::CommunityDispatcher,
                &Action::Evaluate {
                    satisfaction: 5,
                    comment: String::new(),
                },
            )
            .unwrap_err();
        assert!(matches!(err, Refusal::State { .. }));
        let long = "长".repeat(MAX_ENTRY_TEXT_CHARS + 1);
        let err = s
            .check(Role::GridWorker, &Action::Escalate { reason: long })
            .unwrap_err();
        assert!(err.to_string().contains("longer than"));
    }

    #[test]
    fn escalated_cases_are_out_of_reach_of_lower_dispatchers() {
        let t = vec![
            report(),
            entry(
                "e",
                Some("r"),
                Role::CommunityDispatcher,
                Action::Escalate {
                    reason: "major".into(),
                },
            ),
        ];
        let s = fold(&t);
        assert_eq!(s.level, RegionLevel::Town);
        assert_eq!(s.status, Status::Reported);
        assert!(matches!(
            s.check(Role::CommunityDispatcher, &Action::Accept),
            Err(Refusal::Level { .. })
        ));
        assert!(s.check(Role::TownDispatcher, &Action::Accept).is_ok());
        let again = Action::Escalate {
            reason: "again".into(),
        };
        assert!(matches!(
            s.check(Role::GridWorker, &again),
            Err(Refusal::Level { .. })
        ));
        assert!(s.check(Role::TownDispatcher, &again).is_ok());
    }

    #[test]
    fn a_case_goes_up_to_the_district_and_the_city_acts_on_it() {
        let mut t = vec![report()];
        for (i, role) in [Role::CommunityDispatcher, Role::TownDispatcher]
            .into_iter()
            .enumerate()
        {
            let after = t.last().map(|e| e.id.clone());
            t.push(entry(
                &format!("e{i}"),
                after.as_deref(),
                role,
                Action::Escalate {
                    reason: "major".into(),
                },
            ));
        }
        let s = fold(&t);
        assert_eq!(s.level, RegionLevel::District);
        assert_eq!(s.escalations, 2);
        assert!(s.check(Role::TownDispatcher, &Action::Accept).is_err());
        assert!(s.check(Role::DistrictDispatcher, &Action::Accept).is_ok());
        assert!(s.check(Role::CityDispatcher, &Action::Accept).is_ok());
        let err = s
            .check(
                Role::CityDispatcher,
                &Action::Escalate {
                    reason: "higher".into(),
                },
            )
            .unwrap_err();
        assert!(err.to_string().contains("district level"), "{err}");
    }

    #[test]
    fn a_forged_entry_is_kept_but_refused() {
        let t = vec![
            report(),
            entry("x", Some("r"), Role::GridWorker, Action::Archive),
        ];
        let s = fold(&t);
        assert_eq!(s.status, Status::Reported);
        assert!(matches!(
            s.outcomes[1],
            Outcome::Refused(Refusal::Role { .. })
        ));
    }
}
