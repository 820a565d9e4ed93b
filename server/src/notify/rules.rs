//! Which events a person must hear about, and who: pure functions of a case, the
//! directory and the time (`docs/notifications.md`, "Events and recipients").

use chrono::{DateTime, Duration, Utc};
use gridsync_core::index::local_offset;
use gridsync_core::{
    Action, CaseDoc, CaseState, CaseSummary, CategoryCode, DeptId, Directory, DocId, Outcome,
    RegionCode, RegionLevel, Role, Status, SupervisionLevel, UserId,
};
use serde::{Deserialize, Serialize};

/// A return older than this (by its author's clock) when the relay first sees it
/// is not announced: the reporter has long heard of it another way.
pub const RETURN_HORIZON: Duration = Duration::hours(72);

/// Why a message is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Rule {
    /// A case was dispatched to a department: to its handlers.
    #[serde(rename = "dispatched")]
    Dispatched,
    /// A department returned a case: to its reporter.
    #[serde(rename = "returned")]
    Returned,
    /// An open dispatch's deadline is near: to the department's handlers.
    #[serde(rename = "deadline_soon")]
    DeadlineSoon,
    /// Supervision reached level 4 (短信督办), raised by hand or by running late:
    /// to the leaders responsible.
    #[serde(rename = "supervision_sms")]
    Supervision,
}

impl Rule {
    /// Every rule.
    pub const ALL: [Rule; 4] = [
        Rule::Dispatched,
        Rule::Returned,
        Rule::DeadlineSoon,
        Rule::Supervision,
    ];

    /// Stable name, as stored and sent (`event`).
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Dispatched => "dispatched",
            Rule::Returned => "returned",
            Rule::DeadlineSoon => "deadline_soon",
            Rule::Supervision => "supervision_sms",
        }
    }

    /// Parse the stored name.
    pub fn parse(s: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// What a message says: the fields sent to the gateway besides its id and
/// recipient. Codes, a deadline and a short text; never a resident's name, phone,
/// ID number or address, nor the case's title or description.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Why.
    pub event: Rule,
    /// The case's document id.
    pub case: String,
    /// Its category code.
    pub category: CategoryCode,
    /// Its category's Chinese name.
    pub category_name: String,
    /// Its grid's code.
    pub region: RegionCode,
    /// The deadline of the current dispatch, ms since the epoch.
    pub deadline: Option<i64>,
    /// The supervision level, for `supervision_sms`.
    pub level: Option<i64>,
    /// The short Chinese text to deliver.
    pub text: String,
}

/// An event on a case: one rule, one occurrence (a timeline entry's id or a
/// deadline), whom it concerns, and the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The case.
    pub doc: DocId,
    /// Why.
    pub rule: Rule,
    /// Which occurrence: never announced twice to the same person.
    pub occurrence: String,
    /// To whom.
    pub recipients: Vec<UserId>,
    /// What.
    pub message: Message,
}

/// What the rules need of a case, from its document or from the index.
pub struct Facts<'a> {
    /// The case.
    pub id: &'a DocId,
    /// Its grid.
    pub grid: &'a RegionCode,
    /// The level responsible for it.
    pub level: RegionLevel,
    /// Its category.
    pub category: &'a CategoryCode,
    /// Its reporter.
    pub reporter: &'a UserId,
    /// Its status.
    pub status: Status,
    /// The department of the current dispatch.
    pub dept: Option<&'a DeptId>,
    /// The deadline of the current dispatch.
    pub deadline: Option<DateTime<Utc>>,
    /// The supervision level raised by hand.
    pub raised: Option<SupervisionLevel>,
}

impl<'a> Facts<'a> {
    /// From a case's document and its fold.
    pub fn of_case(doc: &'a CaseDoc, state: &'a CaseState) -> Self {
        Facts {
            id: &doc.id,
            grid: &doc.grid,
            level: state.level,
            category: &doc.category,
            reporter: &doc.reporter,
            status: state.status,
            dept: state.assigned_dept.as_ref(),
            deadline: state.deadline,
            raised: state.supervision,
        }
    }

    /// From a row of the case index.
    pub fn of_summary(c: &'a CaseSummary) -> Self {
        Facts {
            id: &c.id,
            grid: &c.grid,
            level: c.level,
            category: &c.category,
            reporter: &c.reporter,
            status: c.status,
            dept: c.assigned_dept.as_ref(),
            deadline: c.deadline,
            raised: c.supervision,
        }
    }
}

/// The handlers of a department.
pub fn handlers(dir: &Directory, dept: &DeptId) -> Vec<UserId> {
    dir.users()
        .iter()
        .filter(|u| u.role == Role::DepartmentHandler && u.department.as_ref() == Some(dept))
        .map(|u| u.id.clone())
        .collect()
}

/// The leaders responsible for a case at `level` in `grid`: the dispatchers one
/// level above it whose region holds the grid (a community's case → its town's
/// dispatchers; a town's → the district's; a district's → the city's, if the
/// directory has one); when that level has none, the dispatchers of the case's
/// own level. Administrators are not
/// leaders: they keep the system, not the cases.
pub fn leaders(dir: &Directory, grid: &RegionCode, level: RegionLevel) -> Vec<UserId> {
    let at = |level: RegionLevel| -> Vec<UserId> {
        let Some(region) = grid.ancestor(level) else {
            return Vec::new();
        };
        dir.users()
            .iter()
            .filter(|u| {
                u.role != Role::Admin
                    && u.role.dispatch_level() == Some(level)
                    && u.region == region
            })
            .map(|u| u.id.clone())
            .collect()
    };
    let above = level.parent().map(at).unwrap_or_default();
    if above.is_empty() {
        at(level)
    } else {
        above
    }
}

fn local(t: DateTime<Utc>) -> String {
    t.with_timezone(&local_offset())
        .format("%m月%d日%H:%M")
        .to_string()
}

/// The last characters of a case id: enough to find it in the console's search.
fn short(id: &DocId) -> &str {
    let s = id.as_str();
    &s[s.len().saturating_sub(8)..]
}

fn event(
    dir: &Directory,
    f: &Facts<'_>,
    rule: Rule,
    occurrence: String,
    recipients: Vec<UserId>,
) -> Event {
    let category_name = dir
        .category(f.category)
        .map_or_else(|| f.category.to_string(), |c| c.name.clone());
    let dept_name = f
        .dept
        .and_then(|d| dir.department(d))
        .map_or("处置部门", |d| d.name.as_str());
    let deadline = f.deadline.map(local).unwrap_or_default();
    let case = short(f.id);
    let level = (rule == Rule::Supervision).then_some(SupervisionLevel::Sms.number());
    let text = match rule {
        Rule::Dispatched => format!(
            "【网格事件】{category_name}事件{case}已派遣至{dept_name}，请于{deadline}前处置。"
        ),
        Rule::Returned => {
            format!("【网格事件】您上报的{category_name}事件{case}已被退回，请登录查看。")
        }
        Rule::DeadlineSoon => format!(
            "【网格事件】{category_name}事件{case}将于{deadline}到期，请{dept_name}抓紧处置。"
        ),
        Rule::Supervision => format!(
            "【短信督办】{category_name}事件{case}已超过处置时限（{deadline}），请督促{dept_name}处置。"
        ),
    };
    Event {
        doc: f.id.clone(),
        rule,
        occurrence,
        recipients,
        message: Message {
            event: rule,
            case: f.id.to_string(),
            category: f.category.clone(),
            category_name,
            region: f.grid.clone(),
            deadline: f.deadline.map(|d| d.timestamp_millis()),
            level,
            text,
        },
    }
}

/// The events a case's state and the clock make due: level-4 supervision on an
/// open dispatch (by hand or by running late), and a deadline within `lead`.
/// Each dispatch's deadline is its occurrence, so a new dispatch is announced anew.
pub fn timed(dir: &Directory, f: &Facts<'_>, now: DateTime<Utc>, lead: Duration) -> Vec<Event> {
    let (Status::Dispatched, Some(deadline), Some(dept)) = (f.status, f.deadline, f.dept) else {
        return Vec::new();
    };
    let occurrence = deadline.timestamp_millis().to_string();
    let mut out = Vec::new();
    let level = SupervisionLevel::effective(f.status, f.deadline, f.raised, now);
    if level.is_some_and(|l| l >= SupervisionLevel::Sms) {
        let to = leaders(dir, f.grid, f.level);
        out.push(event(dir, f, Rule::Supervision, occurrence.clone(), to));
    }
    if now < deadline && deadline <= now + lead {
        let to = handlers(dir, dept);
        out.push(event(dir, f, Rule::DeadlineSoon, occurrence, to));
    }
    out
}

/// The events of a case whose document changed: the current dispatch, returns
/// (within [`RETURN_HORIZON`]), and what [`timed`] finds.
pub fn of_case(
    dir: &Directory,
    doc: &CaseDoc,
    state: &CaseState,
    now: DateTime<Utc>,
    lead: Duration,
) -> Vec<Event> {
    let f = Facts::of_case(doc, state);
    let mut out = Vec::new();
    let applied = doc
        .timeline
        .iter()
        .zip(&state.outcomes)
        .filter(|(_, o)| matches!(o, Outcome::Applied))
        .map(|(e, _)| e);
    let mut dispatch = None;
    for entry in applied {
        match &entry.action {
            Action::Dispatch { .. } => dispatch = Some(entry),
            Action::Return { .. } if entry.at >= now - RETURN_HORIZON => {
                let to: Vec<UserId> = dir
                    .user(f.reporter)
                    .map(|u| u.id.clone())
                    .into_iter()
                    .collect();
                out.push(event(dir, &f, Rule::Returned, entry.id.clone(), to));
            }
            _ => {}
        }
    }
    if let (Status::Dispatched, Some(entry), Some(dept)) = (state.status, dispatch, f.dept) {
        let to = handlers(dir, dept);
        out.push(event(dir, &f, Rule::Dispatched, entry.id.clone(), to));
    }
    out.extend(timed(dir, &f, now, lead));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridsync_core::doc::case::Severity;
    use gridsync_core::{fold, Entry};

    fn dir() -> Directory {
        Directory::from_json(crate::SAMPLE_DIRECTORY).unwrap()
    }

    fn at(hours: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap() + Duration::hours(hours)
    }

    fn entry(id: &str, after: Option<&str>, by: &str, role: Role, h: i64, action: Action) -> Entry {
        Entry {
            id: id.into(),
            after: after.map(Into::into),
            actor: by.parse().unwrap(),
            role,
            at: at(h),
            action,
        }
    }

    /// A community case dispatched to water at hour 0, due at hour 24.
    fn dispatched() -> CaseDoc {
        let cd = "cd-339901001001";
        CaseDoc {
            channel: Default::default(),
            id: "case-0192f0c0a1b27c3d8e9f001122334455".parse().unwrap(),
            created: at(0),
            reporter: "w-339901001001001".parse().unwrap(),
            grid: "339901001001001".parse().unwrap(),
            title: "张三家楼道漏水".into(),
            description: "住户张三，电话13800000000".into(),
            category: "city".parse().unwrap(),
            subcategory: None,
            severity: Severity::Normal,
            location: None,
            people: Vec::new(),
            photos: Vec::new(),
            notes: Vec::new(),
            timeline: vec![
                entry(
                    "r",
                    None,
                    "w-339901001001001",
                    Role::GridWorker,
                    0,
                    Action::Report {
                        level: RegionLevel::Community,
                    },
                ),
                entry(
                    "a",
                    Some("r"),
                    cd,
                    Role::CommunityDispatcher,
                    0,
                    Action::Accept,
                ),
                entry(
                    "d",
                    Some("a"),
                    cd,
                    Role::CommunityDispatcher,
                    0,
                    Action::Dispatch {
                        dept: "water".parse().unwrap(),
                        deadline: at(24),
                    },
                ),
            ],
            links: Default::default(),
        }
    }

    fn events(doc: &CaseDoc, now: DateTime<Utc>) -> Vec<(Rule, String, Vec<String>)> {
        let state = fold(&doc.timeline);
        of_case(&dir(), doc, &state, now, Duration::hours(2))
            .into_iter()
            .map(|e| {
                let to = e.recipients.iter().map(ToString::to_string).collect();
                (e.rule, e.occurrence, to)
            })
            .collect()
    }

    #[test]
    fn a_dispatch_goes_to_the_departments_handlers() {
        let doc = dispatched();
        assert_eq!(
            events(&doc, at(1)),
            vec![(
                Rule::Dispatched,
                "d".to_owned(),
                vec!["h-water-1".to_owned(), "h-water-2".to_owned()]
            )]
        );
    }

    #[test]
    fn a_near_deadline_and_level_four_follow_the_clock() {
        let doc = dispatched();
        let due = at(24).timestamp_millis().to_string();
        let rules = |h| {
            events(&doc, at(h))
                .into_iter()
                .filter(|(r, ..)| *r != Rule::Dispatched)
                .collect::<Vec<_>>()
        };
        assert!(rules(21).is_empty(), "three hours before: nothing yet");
        assert_eq!(
            rules(23),
            vec![(
                Rule::DeadlineSoon,
                due.clone(),
                vec!["h-water-1".to_owned(), "h-water-2".to_owned()]
            )]
        );
        assert!(rules(24 + 167).is_empty(), "levels 1 to 3 send nothing");
        // 168 hours late: level 4, to the town's dispatcher above the community.
        assert_eq!(
            rules(24 + 168),
            vec![(Rule::Supervision, due, vec!["td-339901001".to_owned()])]
        );
    }

    #[test]
    fn level_four_by_hand_and_a_return_to_the_reporter() {
        let mut doc = dispatched();
        doc.timeline.push(entry(
            "u",
            Some("d"),
            "cd-339901001001",
            Role::CommunityDispatcher,
            2,
            Action::Urge {
                level: SupervisionLevel::Sms,
                comment: String::new(),
            },
        ));
        let rules: Vec<Rule> = events(&doc, at(3)).into_iter().map(|e| e.0).collect();
        assert_eq!(rules, vec![Rule::Dispatched, Rule::Supervision]);

        let mut doc = dispatched();
        doc.timeline.push(entry(
            "x",
            Some("d"),
            "h-water-1",
            Role::DepartmentHandler,
            2,
            Action::Return {
                reason: "不属于本部门".into(),
            },
        ));
        assert_eq!(
            events(&doc, at(3)),
            vec![(
                Rule::Returned,
                "x".to_owned(),
                vec!["w-339901001001001".to_owned()]
            )]
        );
        assert!(
            events(&doc, at(2) + RETURN_HORIZON + Duration::hours(1)).is_empty(),
            "an old return is not announced"
        );
    }

    #[test]
    fn leaders_are_one_level_up_or_at_the_top() {
        let d = dir();
        let grid: RegionCode = "339901001001001".parse().unwrap();
        let ids = |v: Vec<UserId>| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(
            ids(leaders(&d, &grid, RegionLevel::Community)),
            ["td-339901001"]
        );
        assert_eq!(
            ids(leaders(&d, &grid, RegionLevel::Town)),
            ["dd-339901-1", "dd-339901-2"]
        );
        assert_eq!(
            ids(leaders(&d, &grid, RegionLevel::District)),
            ["dd-339901-1", "dd-339901-2"]
        );
    }

    #[test]
    fn a_message_carries_no_personal_data() {
        let mut doc = dispatched();
        doc.timeline.push(entry(
            "u",
            Some("d"),
            "cd-339901001001",
            Role::CommunityDispatcher,
            2,
            Action::Urge {
                level: SupervisionLevel::Sms,
                comment: "联系张三13800000000".into(),
            },
        ));
        let state = fold(&doc.timeline);
        for e in of_case(&dir(), &doc, &state, at(3), Duration::hours(2)) {
            let json = serde_json::to_string(&e.message).unwrap();
            for secret in ["张三", "13800000000", "漏水", "熊雨"] {
                assert!(!json.contains(secret), "{json}");
            }
            assert!(json.contains("\"case\":\"case-0192f0c0a1b27c3d8e9f001122334455\""));
        }
    }
}
