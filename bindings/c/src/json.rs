//! The JSON shapes of the C API: a new case and a case filter in, a case and a case
//! list out. They mirror the facade's records field for field, so C sees the same
//! data as Kotlin, Swift and Python.

use gridsync_ffi::{
    CaseFilterRecord, CaseRecord, CaseSummaryRecord, NewCaseRecord, PersonRecord,
    TimelineEntryRecord,
};
use serde::{Deserialize, Serialize};

use crate::status::Failure;

/// `gridsync_engine_report_case`'s input. `title`, `category` and `severity` are
/// required; the others may be left out.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewCaseJson {
    title: String,
    #[serde(default)]
    description: String,
    category: String,
    #[serde(default)]
    subcategory: Option<String>,
    severity: String,
    #[serde(default)]
    grid: Option<String>,
    #[serde(default)]
    lat: Option<f64>,
    #[serde(default)]
    lon: Option<f64>,
    #[serde(default)]
    address: String,
    #[serde(default)]
    photos: Vec<String>,
    #[serde(default)]
    people: Vec<PersonJson>,
}

/// A person involved in a case (当事人), in and out.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct PersonJson {
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    phone: String,
}

impl From<PersonJson> for PersonRecord {
    fn from(p: PersonJson) -> Self {
        PersonRecord {
            name: p.name,
            role: p.role,
            phone: p.phone,
        }
    }
}

impl From<PersonRecord> for PersonJson {
    fn from(p: PersonRecord) -> Self {
        PersonJson {
            name: p.name,
            role: p.role,
            phone: p.phone,
        }
    }
}

impl From<NewCaseJson> for NewCaseRecord {
    fn from(j: NewCaseJson) -> Self {
        NewCaseRecord {
            title: j.title,
            description: j.description,
            category: j.category,
            subcategory: j.subcategory,
            severity: j.severity,
            grid: j.grid,
            lat: j.lat,
            lon: j.lon,
            address: j.address,
            photos: j.photos,
            people: j.people.into_iter().map(Into::into).collect(),
            place_id: None,
            person_ids: Vec::new(),
        }
    }
}

/// `gridsync_engine_list_cases`'s filter; every field may be left out, and each
/// one given narrows the list.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct CaseFilterJson {
    statuses: Vec<String>,
    text: Option<String>,
    limit: u32,
    offset: u32,
    region: Option<String>,
    category: Option<String>,
    severity: Option<String>,
    assigned_dept: Option<String>,
    reporter: Option<String>,
    overdue: bool,
    conflicts_only: bool,
    reported_from_ms: Option<i64>,
    reported_before_ms: Option<i64>,
    about: Option<String>,
    channel: Option<String>,
}

impl From<CaseFilterJson> for CaseFilterRecord {
    fn from(j: CaseFilterJson) -> Self {
        CaseFilterRecord {
            statuses: j.statuses,
            text: j.text,
            limit: j.limit,
            offset: j.offset,
            region: j.region,
            category: j.category,
            severity: j.severity,
            assigned_dept: j.assigned_dept,
            reporter: j.reporter,
            overdue: j.overdue,
            conflicts_only: j.conflicts_only,
            reported_from_ms: j.reported_from_ms,
            reported_before_ms: j.reported_before_ms,
            about: j.about,
            channel: j.channel,
        }
    }
}

/// Parse one of the JSON inputs; a mistake is `INVALID_INPUT` naming the field.
pub(crate) fn parse<T: for<'de> Deserialize<'de>>(json: &str, what: &str) -> Result<T, Failure> {
    serde_json::from_str(json).map_err(|e| Failure::invalid(format!("{what}: {e}")))
}

/// Serialise an output shape.
pub(crate) fn write<T: Serialize>(value: &T) -> Result<String, Failure> {
    serde_json::to_string(value).map_err(Failure::other)
}

/// A case with its timeline, as `gridsync_engine_get_case` gives it: the facade's
/// `CaseRecord`, field for field (times in ms since the epoch).
#[derive(Serialize)]
pub(crate) struct CaseJson {
    id: String,
    title: String,
    description: String,
    status: String,
    status_zh: String,
    grid: String,
    category: String,
    subcategory: Option<String>,
    severity: String,
    channel: String,
    reporter: String,
    created_ms: i64,
    location: Option<LocationJson>,
    people: Vec<PersonJson>,
    photos: Vec<PhotoRefJson>,
    notes: Vec<NoteJson>,
    level: String,
    assigned_dept: Option<String>,
    deadline_ms: Option<i64>,
    supervision: Option<u8>,
    self_handled: bool,
    satisfaction: Option<u8>,
    timeline: Vec<TimelineEntryJson>,
}

#[derive(Serialize)]
struct LocationJson {
    lat: f64,
    lon: f64,
    address: String,
}

#[derive(Serialize)]
struct PhotoRefJson {
    hash: String,
    thumb: Option<String>,
    width: u32,
    height: u32,
    by: String,
    at_ms: i64,
}

#[derive(Serialize)]
struct NoteJson {
    by: String,
    at_ms: i64,
    text: String,
}

/// A timeline entry. The facade's `details` (the action with what it carried) is
/// not mirrored: `action` names it.
#[derive(Serialize)]
struct TimelineEntryJson {
    actor: String,
    role: String,
    action: String,
    label_zh: String,
    at_ms: i64,
    outcome: String,
    outcome_reason: Option<String>,
}

impl From<CaseRecord> for CaseJson {
    fn from(c: CaseRecord) -> Self {
        CaseJson {
            id: c.id,
            title: c.title,
            description: c.description,
            status: c.status,
            status_zh: c.status_zh,
            grid: c.grid,
            category: c.category,
            subcategory: c.subcategory,
            severity: c.severity,
            channel: c.channel,
            reporter: c.reporter,
            created_ms: c.created_ms,
            location: c.location.map(|l| LocationJson {
                lat: l.lat,
                lon: l.lon,
                address: l.address,
            }),
            people: c.people.into_iter().map(Into::into).collect(),
            photos: c
                .photos
                .into_iter()
                .map(|p| PhotoRefJson {
                    hash: p.hash,
                    thumb: p.thumb,
                    width: p.width,
                    height: p.height,
                    by: p.by,
                    at_ms: p.at_ms,
                })
                .collect(),
            notes: c
                .notes
                .into_iter()
                .map(|n| NoteJson {
                    by: n.by,
                    at_ms: n.at_ms,
                    text: n.text,
                })
                .collect(),
            level: c.level,
            assigned_dept: c.assigned_dept,
            deadline_ms: c.deadline_ms,
            supervision: c.supervision,
            self_handled: c.self_handled,
            satisfaction: c.satisfaction,
            timeline: c
                .timeline
                .into_iter()
                .map(TimelineEntryJson::from)
                .collect(),
        }
    }
}

impl From<TimelineEntryRecord> for TimelineEntryJson {
    fn from(e: TimelineEntryRecord) -> Self {
        TimelineEntryJson {
            actor: e.actor,
            role: e.role,
            action: e.action,
            label_zh: e.label_zh,
            at_ms: e.at_ms,
            outcome: e.outcome,
            outcome_reason: e.outcome_reason,
        }
    }
}

/// One row of `gridsync_engine_list_cases`: the facade's `CaseSummaryRecord`.
#[derive(Serialize)]
pub(crate) struct CaseSummaryJson {
    id: String,
    title: String,
    status: String,
    status_zh: String,
    has_conflict: bool,
    photo_count: u32,
    grid: String,
    category: String,
    subcategory: Option<String>,
    severity: String,
    channel: String,
    reporter: String,
    assigned_dept: Option<String>,
    deadline_ms: Option<i64>,
    supervision: Option<u8>,
    created_ms: i64,
    updated_ms: i64,
}

impl From<CaseSummaryRecord> for CaseSummaryJson {
    fn from(c: CaseSummaryRecord) -> Self {
        CaseSummaryJson {
            id: c.id,
            title: c.title,
            status: c.status,
            status_zh: c.status_zh,
            has_conflict: c.has_conflict,
            photo_count: c.photo_count,
            grid: c.grid,
            category: c.category,
            subcategory: c.subcategory,
            severity: c.severity,
            channel: c.channel,
            reporter: c.reporter,
            assigned_dept: c.assigned_dept,
            deadline_ms: c.deadline_ms,
            supervision: c.supervision,
            created_ms: c.created_ms,
            updated_ms: c.updated_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::GridsyncStatus;

    #[test]
    fn a_new_case_needs_only_title_category_and_severity() {
        let case: NewCaseRecord = parse::<NewCaseJson>(
            r#"{"title":"t","category":"city","severity":"high"}"#,
            "case",
        )
        .map(Into::into)
        .map_err(|f| f.message)
        .expect("parses");
        assert_eq!(case.title, "t");
        assert_eq!(case.description, "");
        assert!(case.photos.is_empty() && case.lat.is_none() && case.grid.is_none());
    }

    #[test]
    fn a_misspelt_or_missing_field_is_invalid_input_naming_it() {
        let misspelt = parse::<NewCaseJson>(
            r#"{"title":"t","category":"city","severity":"high","photo":[]}"#,
            "case",
        )
        .err()
        .map(|f| (f.status, f.message));
        assert!(
            matches!(&misspelt, Some((GridsyncStatus::InvalidInput, m)) if m.contains("photo")),
            "{misspelt:?}"
        );
        let missing = parse::<NewCaseJson>(r#"{"title":"t","category":"city"}"#, "case")
            .err()
            .map(|f| f.message);
        assert!(
            matches!(&missing, Some(m) if m.contains("severity")),
            "{missing:?}"
        );
    }
}
