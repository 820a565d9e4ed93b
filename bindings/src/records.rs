//! Plain records that cross the FFI, and their conversions to and from the core
//! types (all in one place).

use chrono::{DateTime, NaiveDate, Utc};
use gridsync_core::directory::{Category, Department, Directory, Region, User};
use gridsync_core::doc::case::{Channel, Note, Person, PhotoRef};
use gridsync_core::doc::patrol::{CheckIn, Observation, PatrolDoc};
use gridsync_core::doc::place::{
    self, CreditCode, Inspection, NewPlace, OrgFacts, PlaceDoc, PlaceEdit,
};
use gridsync_core::doc::registry::{HouseholdDoc, NewPerson, PersonDoc, PersonEdit, Tag};
use gridsync_core::pii::{self, Phone, ResidentId};
use gridsync_core::places::{PlaceCounts, PlaceFilter, PlaceSummary};
use gridsync_core::registry::{
    DueVisit, GridCounts, GridCoverage, PersonFilter, PersonSummary, WorkerCoverage,
};
use gridsync_core::{
    Action, Case, CaseFilter, CaseLinks, CaseSummary, DocId, Location, NewCase, PhotoHash,
    PhotoInfo, PhotoUsage, RegionCode, Severity, Status, SupervisionLevel, TrackPoint,
};

use crate::{invalid, GridsyncError};

/// What redeeming an enrollment code gives.
#[derive(uniffi::Record)]
pub struct Enrollment {
    /// The user the code was issued for.
    pub user: String,
    /// The device token.
    pub token: String,
    /// The directory JSON.
    pub directory_json: String,
}

/// How a device reaches its server safely.
#[derive(uniffi::Record)]
pub struct ServerSecurityRecord {
    /// PEM certificates to trust for `https://` (a town's own CA), instead of the
    /// public roots.
    pub ca_pem: Option<String>,
    /// Allow plain `http://` to a server that is not on this machine.
    pub allow_plain_http: bool,
}

impl From<ServerSecurityRecord> for gridsync_core::sync::ServerSecurity {
    fn from(r: ServerSecurityRecord) -> Self {
        gridsync_core::sync::ServerSecurity {
            ca_pem: r.ca_pem,
            allow_plain_http: r.allow_plain_http,
        }
    }
}

/// A case to report.
#[derive(uniffi::Record)]
pub struct NewCaseRecord {
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Category code, e.g. `livelihood`.
    pub category: String,
    /// Subcategory code, e.g. `livelihood.water_leak`.
    pub subcategory: Option<String>,
    /// `low`, `normal`, `high` or `urgent`.
    pub severity: String,
    /// The grid (a grid worker's own when empty).
    pub grid: Option<String>,
    /// Latitude, if known.
    pub lat: Option<f64>,
    /// Longitude, if known.
    pub lon: Option<f64>,
    /// Address.
    pub address: String,
    /// Hashes of photos stored with `ingest_photo`.
    pub photos: Vec<String>,
    /// People involved (当事人): personal data, kept encrypted on the device and
    /// shown only to the roles that handle the case.
    #[uniffi(default)]
    pub people: Vec<PersonRecord>,
    /// The registered place it is about (a place's id). With no `lat`/`lon`, the
    /// case takes the place's address and position. It must be in the case's grid.
    #[uniffi(default)]
    pub place_id: Option<String>,
    /// The registered persons it is about (persons' ids), each once. Only their ids
    /// go into the case; their names and numbers stay in their own records.
    #[uniffi(default)]
    pub person_ids: Vec<String>,
}

/// A person involved in a case (当事人).
#[derive(uniffi::Record)]
pub struct PersonRecord {
    /// Name.
    pub name: String,
    /// Role in the case (e.g. 业主, 租户).
    pub role: String,
    /// Phone number, may be empty.
    pub phone: String,
}

impl From<&Person> for PersonRecord {
    fn from(p: &Person) -> Self {
        PersonRecord {
            name: p.name.clone(),
            role: p.role.clone(),
            phone: p.phone.clone(),
        }
    }
}

impl TryFrom<NewCaseRecord> for NewCase {
    type Error = GridsyncError;
    fn try_from(r: NewCaseRecord) -> Result<Self, GridsyncError> {
        Ok(NewCase {
            title: r.title,
            description: r.description,
            category: r.category.parse().map_err(invalid)?,
            subcategory: r
                .subcategory
                .map(|s| s.parse())
                .transpose()
                .map_err(invalid)?,
            severity: Severity::parse(&r.severity)
                .ok_or_else(|| invalid("severity must be low, normal, high or urgent"))?,
            grid: r.grid.map(|g| g.parse()).transpose().map_err(invalid)?,
            location: match (r.lat, r.lon) {
                (Some(lat), Some(lon)) => Some(Location {
                    lat,
                    lon,
                    address: r.address,
                }),
                _ => None,
            },
            people: r
                .people
                .into_iter()
                .map(|p| Person {
                    name: p.name,
                    role: p.role,
                    phone: p.phone,
                })
                .collect(),
            photos: r
                .photos
                .iter()
                .map(|h| h.parse())
                .collect::<Result<_, _>>()
                .map_err(invalid)?,
            links: CaseLinks {
                place: r.place_id.as_deref().map(doc_id).transpose()?,
                persons: r
                    .person_ids
                    .iter()
                    .map(|p| doc_id(p))
                    .collect::<Result<_, _>>()?,
            },
        })
    }
}

/// A workflow action: what `act` takes and what a timeline entry did. Converted
/// to and from the core's `Action` by two exhaustive matches, so a new action in
/// the core does not compile until it is here too.
#[derive(uniffi::Enum, Debug, Clone, PartialEq)]
pub enum CaseAction {
    /// 发现上报: the first entry of every case (made by `report_case`, not `act`).
    Report {
        /// The level that should accept it (`community`, `town`, …).
        level: String,
    },
    /// 受理.
    Accept,
    /// 自办.
    SelfHandle {
        /// What was done.
        result: String,
    },
    /// 派遣.
    Dispatch {
        /// Department id.
        dept: String,
        /// The deadline, ms since the epoch; `None`: from the directory's rules
        /// (acting). A timeline entry always has one.
        #[uniffi(default)]
        deadline_ms: Option<i64>,
    },
    /// 处置反馈.
    Feedback {
        /// What was done.
        result: String,
    },
    /// 退回.
    Return {
        /// Why.
        reason: String,
    },
    /// 核查.
    Verify {
        /// Fixed?
        passed: bool,
        /// What was seen.
        comment: String,
    },
    /// 归档.
    Archive,
    /// 回访评价.
    Evaluate {
        /// 1–5.
        satisfaction: u8,
        /// Notes.
        comment: String,
    },
    /// 上报.
    Escalate {
        /// Why.
        reason: String,
    },
    /// 督办.
    Urge {
        /// 1–5.
        level: u8,
        /// Notes.
        comment: String,
    },
    /// 作废.
    Invalidate {
        /// Why.
        reason: String,
    },
}

/// An action to take: `Dispatch` and `Report` are not plain core actions (the one
/// needs its deadline worked out, the other is `report_case`), so `act` handles
/// them before this conversion.
impl TryFrom<CaseAction> for Action {
    type Error = GridsyncError;
    fn try_from(a: CaseAction) -> Result<Self, GridsyncError> {
        Ok(match a {
            CaseAction::Report { .. } => {
                return Err(invalid("a case is reported with report_case, not act"))
            }
            CaseAction::Accept => Action::Accept,
            CaseAction::SelfHandle { result } => Action::SelfHandle { result },
            CaseAction::Dispatch { dept, deadline_ms } => Action::Dispatch {
                dept: dept.parse().map_err(invalid)?,
                deadline: deadline_ms
                    .map(time)
                    .transpose()?
                    .ok_or_else(|| invalid("dispatch needs a deadline here"))?,
            },
            CaseAction::Feedback { result } => Action::Feedback { result },
            CaseAction::Return { reason } => Action::Return { reason },
            CaseAction::Verify { passed, comment } => Action::Verify { passed, comment },
            CaseAction::Archive => Action::Archive,
            CaseAction::Evaluate {
                satisfaction,
                comment,
            } => Action::Evaluate {
                satisfaction,
                comment,
            },
            CaseAction::Escalate { reason } => Action::Escalate { reason },
            CaseAction::Urge { level, comment } => Action::Urge {
                level: SupervisionLevel::from_number(level.into())
                    .ok_or_else(|| invalid("level must be 1 to 5"))?,
                comment,
            },
            CaseAction::Invalidate { reason } => Action::Invalidate { reason },
        })
    }
}

impl From<&Action> for CaseAction {
    fn from(a: &Action) -> Self {
        match a.clone() {
            Action::Report { level } => CaseAction::Report {
                level: level.as_str().into(),
            },
            Action::Accept => CaseAction::Accept,
            Action::SelfHandle { result } => CaseAction::SelfHandle { result },
            Action::Dispatch { dept, deadline } => CaseAction::Dispatch {
                dept: dept.to_string(),
                deadline_ms: Some(deadline.timestamp_millis()),
            },
            Action::Feedback { result } => CaseAction::Feedback { result },
            Action::Return { reason } => CaseAction::Return { reason },
            Action::Verify { passed, comment } => CaseAction::Verify { passed, comment },
            Action::Archive => CaseAction::Archive,
            Action::Evaluate {
                satisfaction,
                comment,
            } => CaseAction::Evaluate {
                satisfaction,
                comment,
            },
            Action::Escalate { reason } => CaseAction::Escalate { reason },
            Action::Urge { level, comment } => CaseAction::Urge {
                level: level.number() as u8,
                comment,
            },
            Action::Invalidate { reason } => CaseAction::Invalidate { reason },
        }
    }
}

/// A time from the app (ms since the epoch).
pub(crate) fn time(ms: i64) -> Result<DateTime<Utc>, GridsyncError> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| invalid("time out of range"))
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// One timeline entry as shown to people.
#[derive(uniffi::Record)]
pub struct TimelineEntryRecord {
    /// Who.
    pub actor: String,
    /// Their role.
    pub role: String,
    /// Action name (`report`, `accept`, …).
    pub action: String,
    /// The action with what it carried (result, reason, department, deadline …).
    pub details: CaseAction,
    /// Chinese label (发现上报, 受理, …).
    pub label_zh: String,
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// `applied`, `conflict` or `refused`.
    pub outcome: String,
    /// Why a conflicting or refused entry did not take effect.
    pub outcome_reason: Option<String>,
}

/// A case with its timeline.
#[derive(uniffi::Record)]
pub struct CaseRecord {
    /// Id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Status (`reported`, …).
    pub status: String,
    /// Chinese status label.
    pub status_zh: String,
    /// Grid.
    pub grid: String,
    /// Category code.
    pub category: String,
    /// Subcategory code.
    pub subcategory: Option<String>,
    /// `low`, `normal`, `high` or `urgent`.
    pub severity: String,
    /// The channel it came in by: `phone` (a grid worker), `resident` (the
    /// resident page), `hotline`, `wechat`, `website`, `visit`, or `other`.
    pub channel: String,
    /// Who reported it.
    pub reporter: String,
    /// When, ms since the epoch.
    pub created_ms: i64,
    /// Where, if known.
    pub location: Option<LocationRecord>,
    /// People involved.
    pub people: Vec<PersonRecord>,
    /// Photos, in the order attached (fetch one not on the device with
    /// `fetch_photo`; show the thumbnail first).
    pub photos: Vec<PhotoRefRecord>,
    /// Notes.
    pub notes: Vec<NoteRecord>,
    /// The level responsible (`community`, `town`, …).
    pub level: String,
    /// The department it is dispatched to.
    pub assigned_dept: Option<String>,
    /// The deadline of the current dispatch, ms since the epoch.
    pub deadline_ms: Option<i64>,
    /// Supervision level 1–5, once raised.
    pub supervision: Option<u8>,
    /// Handled on the spot by the grid worker.
    pub self_handled: bool,
    /// Satisfaction 1–5, once evaluated.
    pub satisfaction: Option<u8>,
    /// The timeline.
    pub timeline: Vec<TimelineEntryRecord>,
    /// The registered place it is about (a place's id).
    pub place_id: Option<String>,
    /// The registered persons it is about (persons' ids).
    pub person_ids: Vec<String>,
}

/// Where a case is.
#[derive(uniffi::Record)]
pub struct LocationRecord {
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
    /// Address.
    pub address: String,
}

/// A photo attached to a case.
#[derive(uniffi::Record)]
pub struct PhotoRefRecord {
    /// The display image's hash.
    pub hash: String,
    /// Its thumbnail's hash.
    pub thumb: Option<String>,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Who attached it.
    pub by: String,
    /// When, ms since the epoch.
    pub at_ms: i64,
}

impl From<&PhotoRef> for PhotoRefRecord {
    fn from(p: &PhotoRef) -> Self {
        PhotoRefRecord {
            hash: p.hash.to_string(),
            thumb: p.thumb.as_ref().map(ToString::to_string),
            width: p.width,
            height: p.height,
            by: p.by.to_string(),
            at_ms: millis(p.at),
        }
    }
}

/// A note on a case.
#[derive(uniffi::Record)]
pub struct NoteRecord {
    /// Who wrote it.
    pub by: String,
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// The text.
    pub text: String,
}

impl From<&Note> for NoteRecord {
    fn from(n: &Note) -> Self {
        NoteRecord {
            by: n.by.to_string(),
            at_ms: millis(n.at),
            text: n.text.clone(),
        }
    }
}

impl From<&Case> for CaseRecord {
    fn from(c: &Case) -> Self {
        CaseRecord {
            id: c.doc.id.to_string(),
            title: c.doc.title.clone(),
            description: c.doc.description.clone(),
            status: c.state.status.as_str().into(),
            status_zh: c.state.status.label_zh().into(),
            grid: c.doc.grid.to_string(),
            category: c.doc.category.to_string(),
            subcategory: c.doc.subcategory.as_ref().map(ToString::to_string),
            severity: c.doc.severity.as_str().into(),
            channel: c.doc.channel.as_str().into(),
            reporter: c.doc.reporter.to_string(),
            created_ms: millis(c.doc.created),
            location: c.doc.location.as_ref().map(|l| LocationRecord {
                lat: l.lat,
                lon: l.lon,
                address: l.address.clone(),
            }),
            people: c.doc.people.iter().map(PersonRecord::from).collect(),
            photos: c.doc.photos.iter().map(PhotoRefRecord::from).collect(),
            notes: c.doc.notes.iter().map(NoteRecord::from).collect(),
            level: c.state.level.as_str().into(),
            assigned_dept: c.state.assigned_dept.as_ref().map(ToString::to_string),
            deadline_ms: c.state.deadline.map(millis),
            supervision: c.state.supervision.map(|s| s.number() as u8),
            self_handled: c.state.self_handled,
            satisfaction: c.state.satisfaction,
            timeline: c
                .timeline()
                .map(|(e, o)| {
                    use gridsync_core::Outcome;
                    let (outcome, outcome_reason) = match o {
                        Outcome::Applied => ("applied", None),
                        Outcome::Conflict { reason, .. } => ("conflict", Some(reason.to_string())),
                        Outcome::Refused(reason) => ("refused", Some(reason.to_string())),
                    };
                    TimelineEntryRecord {
                        actor: e.actor.to_string(),
                        role: e.role.as_str().into(),
                        action: e.action.name().into(),
                        details: CaseAction::from(&e.action),
                        label_zh: e.action.label_zh().into(),
                        at_ms: millis(e.at),
                        outcome: outcome.into(),
                        outcome_reason,
                    }
                })
                .collect(),
            place_id: c.doc.links.place.as_ref().map(ToString::to_string),
            person_ids: c
                .doc
                .links
                .persons
                .iter()
                .map(ToString::to_string)
                .collect(),
        }
    }
}

/// Which cases to list or count. Every field narrows the list; the defaults narrow
/// nothing.
#[derive(uniffi::Record)]
pub struct CaseFilterRecord {
    /// Statuses (empty: all).
    #[uniffi(default)]
    pub statuses: Vec<String>,
    /// Search text (title, description, notes; Chinese works).
    #[uniffi(default)]
    pub text: Option<String>,
    /// Page size (0: 100; at most 500).
    #[uniffi(default)]
    pub limit: u32,
    /// Rows to skip (the next page).
    #[uniffi(default)]
    pub offset: u32,
    /// Within this region (a grid, community, town …) and below it.
    #[uniffi(default)]
    pub region: Option<String>,
    /// Of this top-level category.
    #[uniffi(default)]
    pub category: Option<String>,
    /// Of this severity (`low`, `normal`, `high`, `urgent`).
    #[uniffi(default)]
    pub severity: Option<String>,
    /// Dispatched to this department.
    #[uniffi(default)]
    pub assigned_dept: Option<String>,
    /// Reported by this user.
    #[uniffi(default)]
    pub reporter: Option<String>,
    /// Only cases past their deadline now.
    #[uniffi(default)]
    pub overdue: bool,
    /// Only cases whose timeline holds a conflict.
    #[uniffi(default)]
    pub conflicts_only: bool,
    /// Reported at or after this time, ms since the epoch.
    #[uniffi(default)]
    pub reported_from_ms: Option<i64>,
    /// Reported before this time, ms since the epoch.
    #[uniffi(default)]
    pub reported_before_ms: Option<i64>,
    /// Only cases about this registered place or person (its id).
    #[uniffi(default)]
    pub about: Option<String>,
    /// Only cases that came in by this channel (`phone`, `resident`, `hotline`,
    /// `wechat`, `website`, `visit`).
    #[uniffi(default)]
    pub channel: Option<String>,
}

impl CaseFilterRecord {
    /// The core filter, with "overdue" meaning overdue at `now`.
    pub(crate) fn into_filter(self, now: DateTime<Utc>) -> Result<CaseFilter, GridsyncError> {
        fn parse<T: std::str::FromStr>(v: Option<String>) -> Result<Option<T>, GridsyncError>
        where
            T::Err: std::fmt::Display,
        {
            v.map(|s| s.parse()).transpose().map_err(invalid)
        }
        Ok(CaseFilter {
            statuses: self
                .statuses
                .iter()
                .map(|s| Status::parse(s).ok_or_else(|| invalid(format!("unknown status {s}"))))
                .collect::<Result<_, _>>()?,
            region: parse(self.region)?,
            category: parse(self.category)?,
            severity: self
                .severity
                .map(|s| {
                    Severity::parse(&s)
                        .ok_or_else(|| invalid("severity must be low, normal, high or urgent"))
                })
                .transpose()?,
            assigned_dept: parse(self.assigned_dept)?,
            reporter: parse(self.reporter)?,
            overdue_at: self.overdue.then_some(now),
            text: self.text,
            conflicts_only: self.conflicts_only,
            reported_from: self.reported_from_ms.map(time).transpose()?,
            reported_before: self.reported_before_ms.map(time).transpose()?,
            about: parse(self.about)?,
            channel: self
                .channel
                .map(|c| {
                    Channel::KNOWN
                        .into_iter()
                        .find(|k| k.as_str() == c)
                        .ok_or_else(|| invalid(format!("unknown channel {c}")))
                })
                .transpose()?,
            limit: self.limit,
            offset: self.offset,
        })
    }
}

/// How many cases have one status.
#[derive(uniffi::Record)]
pub struct StatusCountRecord {
    /// Status.
    pub status: String,
    /// Chinese status label.
    pub status_zh: String,
    /// Cases.
    pub count: u64,
}

/// One row of a case list.
#[derive(uniffi::Record)]
pub struct CaseSummaryRecord {
    /// Id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Status.
    pub status: String,
    /// Chinese status label.
    pub status_zh: String,
    /// Whether the timeline holds a conflict.
    pub has_conflict: bool,
    /// Photos attached.
    pub photo_count: u32,
    /// Grid.
    pub grid: String,
    /// Category code.
    pub category: String,
    /// Subcategory code.
    pub subcategory: Option<String>,
    /// Severity.
    pub severity: String,
    /// The channel it came in by (see `CaseRecord.channel`).
    pub channel: String,
    /// Who reported it.
    pub reporter: String,
    /// The department it is dispatched to.
    pub assigned_dept: Option<String>,
    /// Deadline of the current dispatch, ms since the epoch.
    pub deadline_ms: Option<i64>,
    /// Supervision level 1–5.
    pub supervision: Option<u8>,
    /// Reported at, ms since the epoch.
    pub created_ms: i64,
    /// Last activity, ms since the epoch.
    pub updated_ms: i64,
}

impl From<&CaseSummary> for CaseSummaryRecord {
    fn from(c: &CaseSummary) -> Self {
        CaseSummaryRecord {
            id: c.id.to_string(),
            title: c.title.clone(),
            status: c.status.as_str().into(),
            status_zh: c.status.label_zh().into(),
            has_conflict: c.has_conflict,
            photo_count: c.photo_count,
            grid: c.grid.to_string(),
            category: c.category.to_string(),
            subcategory: c.subcategory.as_ref().map(ToString::to_string),
            severity: c.severity.as_str().into(),
            channel: c.channel.as_str().into(),
            reporter: c.reporter.to_string(),
            assigned_dept: c.assigned_dept.as_ref().map(ToString::to_string),
            deadline_ms: c.deadline.map(millis),
            supervision: c.supervision.map(|s| s.number() as u8),
            created_ms: millis(c.created),
            updated_ms: millis(c.updated),
        }
    }
}

/// A GPS fix.
#[derive(uniffi::Record)]
pub struct TrackPointRecord {
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
}

impl TryFrom<TrackPointRecord> for TrackPoint {
    type Error = GridsyncError;
    fn try_from(p: TrackPointRecord) -> Result<Self, GridsyncError> {
        Ok(TrackPoint {
            at: time(p.at_ms)?,
            lat: p.lat,
            lon: p.lon,
        })
    }
}

impl From<&TrackPoint> for TrackPointRecord {
    fn from(p: &TrackPoint) -> Self {
        TrackPointRecord {
            at_ms: millis(p.at),
            lat: p.lat,
            lon: p.lon,
        }
    }
}

/// A patrol (巡查) with what was recorded on it.
#[derive(uniffi::Record)]
pub struct PatrolRecord {
    /// Id.
    pub id: String,
    /// The grid worker.
    pub worker: String,
    /// The grid patrolled.
    pub grid: String,
    /// Start, ms since the epoch.
    pub started_ms: i64,
    /// End, once ended.
    pub ended_ms: Option<i64>,
    /// The GPS track (points recorded and flushed into the document).
    pub track: Vec<TrackPointRecord>,
    /// Check-ins (打卡) at places.
    pub checkins: Vec<CheckInRecord>,
    /// Things noticed that are not cases.
    pub observations: Vec<ObservationRecord>,
    /// Cases reported on this patrol.
    pub cases: Vec<String>,
}

/// A check-in at a place on a patrol.
#[derive(uniffi::Record)]
pub struct CheckInRecord {
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// The place (e.g. 3号楼2单元).
    pub place: String,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
    /// The household visited, when the check-in is a visit (what the visit found
    /// is in the household's record).
    pub household_id: Option<String>,
    /// The registered place, when the check-in is an inspection (what it found is
    /// in the place's record).
    pub place_id: Option<String>,
}

/// Something noticed on a patrol.
#[derive(uniffi::Record)]
pub struct ObservationRecord {
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// What.
    pub text: String,
}

impl From<&PatrolDoc> for PatrolRecord {
    fn from(p: &PatrolDoc) -> Self {
        PatrolRecord {
            id: p.id.to_string(),
            worker: p.worker.to_string(),
            grid: p.grid.to_string(),
            started_ms: millis(p.started),
            ended_ms: p.ended.map(millis),
            track: p.track.iter().map(TrackPointRecord::from).collect(),
            checkins: p
                .checkins
                .iter()
                .map(|c: &CheckIn| CheckInRecord {
                    at_ms: millis(c.at),
                    place: c.place.clone(),
                    lat: c.lat,
                    lon: c.lon,
                    household_id: c.household.as_ref().map(ToString::to_string),
                    place_id: c.place_id.as_ref().map(ToString::to_string),
                })
                .collect(),
            observations: p
                .observations
                .iter()
                .map(|o: &Observation| ObservationRecord {
                    at_ms: millis(o.at),
                    text: o.text.clone(),
                })
                .collect(),
            cases: p.cases.iter().map(ToString::to_string).collect(),
        }
    }
}

/// A stored photo.
#[derive(uniffi::Record)]
pub struct PhotoRecord {
    /// Display image hash (attach this).
    pub hash: String,
    /// Thumbnail hash.
    pub thumb: String,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

impl From<PhotoInfo> for PhotoRecord {
    fn from(p: PhotoInfo) -> Self {
        PhotoRecord {
            hash: p.hash.to_string(),
            thumb: p.thumb.to_string(),
            width: p.width,
            height: p.height,
        }
    }
}

/// The photos stored on the device, for a storage setting.
#[derive(uniffi::Record)]
pub struct PhotoUsageRecord {
    /// Display images stored.
    pub display: u64,
    /// Their bytes.
    pub display_bytes: u64,
    /// Thumbnails stored.
    pub thumbs: u64,
    /// Their bytes.
    pub thumb_bytes: u64,
    /// Photos of this device's cases, visits and inspections not yet on the server (never evicted).
    pub waiting_upload: u64,
}

impl From<PhotoUsage> for PhotoUsageRecord {
    fn from(u: PhotoUsage) -> Self {
        PhotoUsageRecord {
            display: u.display,
            display_bytes: u.display_bytes,
            thumbs: u.thumbs,
            thumb_bytes: u.thumb_bytes,
            waiting_upload: u.waiting_upload,
        }
    }
}

/// A change of this device the server refused, and why (e.g. an action the
/// user's role may no longer take). It stays on the device, out of the outbox.
#[derive(uniffi::Record)]
pub struct RejectedChangeRecord {
    /// The case or patrol it belongs to.
    pub doc_id: String,
    /// The change's hash (hex).
    pub hash: String,
    /// The server's reason.
    pub reason: String,
}

/// Sync progress.
#[derive(uniffi::Record)]
pub struct SyncProgress {
    /// `push`, `pull`, `photos` (uploading) or `fetch` (one photo on demand).
    pub phase: String,
    /// Items so far in this phase.
    pub items: u64,
    /// Bytes so far in this phase.
    pub bytes: u64,
    /// Items left: changes to push, changes the server says wait for this device
    /// (counted up to 1,000), photos to upload.
    pub remaining: u64,
    /// Their bytes.
    pub bytes_remaining: u64,
}

impl From<gridsync_core::sync::Progress> for SyncProgress {
    fn from(p: gridsync_core::sync::Progress) -> Self {
        SyncProgress {
            phase: match p.phase {
                gridsync_core::sync::Phase::Push => "push",
                gridsync_core::sync::Phase::Pull => "pull",
                gridsync_core::sync::Phase::Photos => "photos",
                gridsync_core::sync::Phase::Fetch => "fetch",
            }
            .into(),
            items: p.items,
            bytes: p.bytes,
            remaining: p.remaining,
            bytes_remaining: p.bytes_remaining,
        }
    }
}

/// What a sync did.
#[derive(uniffi::Record)]
pub struct SyncSummary {
    /// Changes the server stored.
    pub pushed: u64,
    /// Changes refused (reasons are kept on the device).
    pub rejected: u64,
    /// Changes received.
    pub pulled: u64,
    /// Documents removed.
    pub purged: u64,
    /// Whether a newer directory arrived: read it again (`directory()`), e.g. for
    /// a moved grid or a new department in the pickers.
    pub directory_updated: bool,
    /// Photos uploaded.
    pub photos_uploaded: u64,
}

impl From<gridsync_core::sync::SyncReport> for SyncSummary {
    fn from(r: gridsync_core::sync::SyncReport) -> Self {
        SyncSummary {
            pushed: r.pushed,
            rejected: r.rejected.len() as u64,
            pulled: r.pulled,
            purged: r.purged,
            directory_updated: r.directory_updated,
            photos_uploaded: r.photos_uploaded,
        }
    }
}

/// The directory for pickers: regions, departments, users and the category
/// taxonomy, as the device holds it.
#[derive(uniffi::Record)]
pub struct DirectoryRecord {
    /// Name of the top region.
    pub name: String,
    /// Regions (city, district, town, community, grid), parents before children.
    pub regions: Vec<RegionRecord>,
    /// Departments cases are dispatched to.
    pub departments: Vec<DepartmentRecord>,
    /// Users.
    pub users: Vec<UserRecord>,
    /// Categories with their subcategories.
    pub categories: Vec<CategoryRecord>,
    /// The points (积分) each event earns; none when the town awards no points.
    pub points_rules: Option<PointsRulesRecord>,
}

/// The points (积分) each event earns a grid worker.
#[derive(uniffi::Record)]
pub struct PointsRulesRecord {
    /// Per report not marked invalid.
    pub valid_report: i32,
    /// Per case handled on the spot.
    pub handled_on_the_spot: i32,
    /// Added per valid report of severity urgent.
    pub major_case: i32,
    /// Per report marked invalid (usually negative).
    pub invalid_report: i32,
    /// Per household visit.
    pub visit: i32,
    /// Per safety inspection of a place.
    pub inspection: i32,
}

/// A region of the tree.
#[derive(uniffi::Record)]
pub struct RegionRecord {
    /// Code; its prefix is its parent's.
    pub code: String,
    /// Name.
    pub name: String,
    /// `city`, `district`, `town`, `community` or `grid`.
    pub level: String,
}

/// A department.
#[derive(uniffi::Record)]
pub struct DepartmentRecord {
    /// Id (what `Dispatch` takes).
    pub id: String,
    /// Name.
    pub name: String,
    /// The region whose cases it handles.
    pub region: String,
}

/// A user.
#[derive(uniffi::Record)]
pub struct UserRecord {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// `grid_worker`, `dispatcher`, `handler` or `admin`.
    pub role: String,
    /// Chinese role label.
    pub role_zh: String,
    /// Where they work.
    pub region: String,
    /// A handler's department.
    pub department: Option<String>,
}

/// A category and its subcategories.
#[derive(uniffi::Record)]
pub struct CategoryRecord {
    /// Code (what `NewCaseRecord.category` takes).
    pub code: String,
    /// Chinese name.
    pub name: String,
    /// English name.
    pub name_en: String,
    /// Subcategories.
    pub subcategories: Vec<SubcategoryRecord>,
}

/// A subcategory.
#[derive(uniffi::Record)]
pub struct SubcategoryRecord {
    /// Code (`<category>.<name>`).
    pub code: String,
    /// Chinese name.
    pub name: String,
    /// English name.
    pub name_en: String,
}

impl From<&User> for UserRecord {
    fn from(u: &User) -> Self {
        UserRecord {
            id: u.id.to_string(),
            name: u.name.clone(),
            role: u.role.as_str().into(),
            role_zh: u.role.label_zh().into(),
            region: u.region.to_string(),
            department: u.department.as_ref().map(ToString::to_string),
        }
    }
}

impl From<&Directory> for DirectoryRecord {
    fn from(d: &Directory) -> Self {
        DirectoryRecord {
            name: d.name.clone(),
            regions: d
                .regions()
                .iter()
                .map(|r: &Region| RegionRecord {
                    code: r.code.to_string(),
                    name: r.name.clone(),
                    level: r.level.as_str().into(),
                })
                .collect(),
            departments: d
                .departments()
                .iter()
                .map(|x: &Department| DepartmentRecord {
                    id: x.id.to_string(),
                    name: x.name.clone(),
                    region: x.region.to_string(),
                })
                .collect(),
            users: d.users().iter().map(UserRecord::from).collect(),
            categories: d
                .categories()
                .iter()
                .map(|c: &Category| CategoryRecord {
                    code: c.code.to_string(),
                    name: c.name.clone(),
                    name_en: c.name_en.clone(),
                    subcategories: c
                        .subcategories
                        .iter()
                        .map(|s| SubcategoryRecord {
                            code: s.code.to_string(),
                            name: s.name.clone(),
                            name_en: s.name_en.clone(),
                        })
                        .collect(),
                })
                .collect(),
            points_rules: d.points_rules().map(|p| PointsRulesRecord {
                valid_report: p.valid_report,
                handled_on_the_spot: p.handled_on_the_spot,
                major_case: p.major_case,
                invalid_report: p.invalid_report,
                visit: p.visit,
                inspection: p.inspection,
            }),
        }
    }
}

// The grid's base data (基础信息): persons and households.

/// A special group (特殊人群) a town follows up with visits. Converted to and from
/// the core's `Tag` by two exhaustive matches, so a new group in the core does not
/// compile until it is here too.
#[derive(uniffi::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialGroup {
    /// 独居老人.
    ElderlyAlone,
    /// 残疾人.
    Disabled,
    /// 低保.
    LowIncome,
    /// 留守儿童.
    LeftBehindChild,
    /// 社区矫正.
    CommunityCorrection,
    /// 严重精神障碍.
    MentalIllness,
}

impl From<SpecialGroup> for Tag {
    fn from(g: SpecialGroup) -> Self {
        match g {
            SpecialGroup::ElderlyAlone => Tag::ElderlyAlone,
            SpecialGroup::Disabled => Tag::Disabled,
            SpecialGroup::LowIncome => Tag::LowIncome,
            SpecialGroup::LeftBehindChild => Tag::LeftBehindChild,
            SpecialGroup::CommunityCorrection => Tag::CommunityCorrection,
            SpecialGroup::MentalIllness => Tag::MentalIllness,
        }
    }
}

impl From<Tag> for SpecialGroup {
    fn from(t: Tag) -> Self {
        match t {
            Tag::ElderlyAlone => SpecialGroup::ElderlyAlone,
            Tag::Disabled => SpecialGroup::Disabled,
            Tag::LowIncome => SpecialGroup::LowIncome,
            Tag::LeftBehindChild => SpecialGroup::LeftBehindChild,
            Tag::CommunityCorrection => SpecialGroup::CommunityCorrection,
            Tag::MentalIllness => SpecialGroup::MentalIllness,
        }
    }
}

fn groups(tags: &[Tag]) -> Vec<SpecialGroup> {
    tags.iter().copied().map(SpecialGroup::from).collect()
}

fn tags(groups: Vec<SpecialGroup>) -> Vec<Tag> {
    groups.into_iter().map(Tag::from).collect()
}

/// A special group with its Chinese name, for a picker.
#[derive(uniffi::Record)]
pub struct SpecialGroupRecord {
    /// The group.
    pub group: SpecialGroup,
    /// Its Chinese name (独居老人, 低保, …).
    pub label_zh: String,
}

/// Every special group, in the order lists show them.
pub(crate) fn special_groups() -> Vec<SpecialGroupRecord> {
    Tag::ALL
        .into_iter()
        .map(|t| SpecialGroupRecord {
            group: t.into(),
            label_zh: t.label_zh().into(),
        })
        .collect()
}

/// Sex (as a resident ID number records it).
#[derive(uniffi::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sex {
    /// 男.
    Male,
    /// 女.
    Female,
}

impl From<Sex> for pii::Sex {
    fn from(s: Sex) -> Self {
        match s {
            Sex::Male => pii::Sex::Male,
            Sex::Female => pii::Sex::Female,
        }
    }
}

impl From<pii::Sex> for Sex {
    fn from(s: pii::Sex) -> Self {
        match s {
            pii::Sex::Male => Sex::Male,
            pii::Sex::Female => Sex::Female,
        }
    }
}

/// A resident ID number as typed. The error is the Chinese message a form shows,
/// which never repeats the number.
fn resident_id(s: &str) -> Result<ResidentId, GridsyncError> {
    s.parse::<ResidentId>()
        .map_err(|e| GridsyncError::InvalidInput { reason: e.zh() })
}

/// A phone number as typed; the error, like the ID number's, is Chinese and never
/// repeats the number.
fn phone(s: &str) -> Result<Phone, GridsyncError> {
    s.parse::<Phone>()
        .map_err(|e| GridsyncError::InvalidInput { reason: e.zh() })
}

/// A birth date, `YYYY-MM-DD`. The error does not repeat the date.
fn date(s: &str) -> Result<NaiveDate, GridsyncError> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| invalid("a birth date is written YYYY-MM-DD"))
}

fn date_str(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// A text field of an edit: `None` keeps it, blank clears it, anything else is
/// parsed.
fn edit<T>(
    v: Option<String>,
    parse: impl Fn(&str) -> Result<T, GridsyncError>,
) -> Result<Option<Option<T>>, GridsyncError> {
    v.map(|s| match s.trim() {
        "" => Ok(None),
        s => parse(s).map(Some),
    })
    .transpose()
}

/// A person's household and their relationship to its head.
#[derive(uniffi::Record, Debug, Clone, PartialEq)]
pub struct MembershipRecord {
    /// The household's id.
    pub household_id: String,
    /// The relationship to the head of household (户主, 配偶, 子女 …).
    pub relation: String,
}

impl MembershipRecord {
    pub(crate) fn into_core(self) -> Result<(DocId, String), GridsyncError> {
        Ok((self.household_id.parse().map_err(invalid)?, self.relation))
    }
}

fn membership(h: &Option<(DocId, String)>) -> Option<MembershipRecord> {
    h.as_ref().map(|(id, relation)| MembershipRecord {
        household_id: id.to_string(),
        relation: relation.clone(),
    })
}

/// A person to register. With an ID number, sex and birth date come from it (given
/// as well, they must agree with it).
#[derive(uniffi::Record)]
pub struct NewPersonRecord {
    /// Name.
    pub name: String,
    /// The grid the person lives in (a grid worker's own when empty).
    #[uniffi(default)]
    pub grid: Option<String>,
    /// Resident ID number (18 characters). A mistyped one is `InvalidInput` with a
    /// Chinese message for the form, which never repeats the number.
    #[uniffi(default)]
    pub id_number: Option<String>,
    /// Sex, when there is no ID number.
    #[uniffi(default)]
    pub sex: Option<Sex>,
    /// Birth date `YYYY-MM-DD`, when there is no ID number.
    #[uniffi(default)]
    pub born: Option<String>,
    /// Phone number: 11-digit mobile, or a landline with its area code.
    #[uniffi(default)]
    pub phone: Option<String>,
    /// The household and the relationship to its head.
    #[uniffi(default)]
    pub household: Option<MembershipRecord>,
    /// Special groups.
    #[uniffi(default)]
    pub special_groups: Vec<SpecialGroup>,
    /// Notes.
    #[uniffi(default)]
    pub notes: String,
}

impl NewPersonRecord {
    /// The core's person, in `own_grid` unless the record names a grid.
    pub(crate) fn into_core(self, own_grid: RegionCode) -> Result<NewPerson, GridsyncError> {
        Ok(NewPerson {
            grid: match self.grid {
                Some(g) => g.parse().map_err(invalid)?,
                None => own_grid,
            },
            name: self.name,
            id_number: self.id_number.as_deref().map(resident_id).transpose()?,
            sex: self.sex.map(Into::into),
            born: self.born.as_deref().map(date).transpose()?,
            phone: self.phone.as_deref().map(phone).transpose()?,
            household: self
                .household
                .map(MembershipRecord::into_core)
                .transpose()?,
            tags: tags(self.special_groups),
            notes: self.notes,
        })
    }
}

/// A change to a person's own facts: each field left `None` (the default) stays as
/// it is. A blank ID number, phone or birth date clears it. A new ID number sets
/// sex and birth date from it unless they are given too (then they must agree).
/// The household changes with `move_person`.
#[derive(uniffi::Record, Default)]
pub struct PersonEditRecord {
    /// New name.
    #[uniffi(default)]
    pub name: Option<String>,
    /// New ID number; blank clears it.
    #[uniffi(default)]
    pub id_number: Option<String>,
    /// New sex.
    #[uniffi(default)]
    pub sex: Option<Sex>,
    /// Clear the sex (when there is no ID number).
    #[uniffi(default)]
    pub clear_sex: bool,
    /// New birth date `YYYY-MM-DD`; blank clears it.
    #[uniffi(default)]
    pub born: Option<String>,
    /// New phone number; blank clears it.
    #[uniffi(default)]
    pub phone: Option<String>,
    /// New notes.
    #[uniffi(default)]
    pub notes: Option<String>,
    /// Special groups to add.
    #[uniffi(default)]
    pub add_groups: Vec<SpecialGroup>,
    /// Special groups to remove.
    #[uniffi(default)]
    pub remove_groups: Vec<SpecialGroup>,
}

impl TryFrom<PersonEditRecord> for PersonEdit {
    type Error = GridsyncError;
    fn try_from(r: PersonEditRecord) -> Result<Self, GridsyncError> {
        let id_number = edit(r.id_number, resident_id)?;
        // A new ID number brings its sex and birth date unless given (the core's rule).
        let sex = match (r.sex, r.clear_sex) {
            (Some(_), true) => return Err(invalid("sex is either set or cleared, not both")),
            (Some(s), false) => Some(Some(s.into())),
            (None, true) => Some(None),
            (None, false) => None,
        };
        let born = edit(r.born, date)?;
        Ok(PersonEdit {
            name: r.name,
            id_number,
            sex,
            born,
            phone: edit(r.phone, phone)?,
            notes: r.notes,
            add_tags: tags(r.add_groups),
            remove_tags: tags(r.remove_groups),
        })
    }
}

/// A person in full, for a detail view: the ID and phone numbers unmasked (and
/// masked, to show until the user asks for the number).
#[derive(uniffi::Record)]
pub struct PersonDetailRecord {
    /// Id.
    pub id: String,
    /// The grid.
    pub grid: String,
    /// Name.
    pub name: String,
    /// Sex.
    pub sex: Option<Sex>,
    /// Birth date, `YYYY-MM-DD`.
    pub born: Option<String>,
    /// The whole resident ID number.
    pub id_number: Option<String>,
    /// The same masked: `3301**********1234`.
    pub id_masked: Option<String>,
    /// The whole phone number (what a dial button takes).
    pub phone: Option<String>,
    /// The same masked: `138****5678`.
    pub phone_masked: Option<String>,
    /// The household and the relationship to its head.
    pub household: Option<MembershipRecord>,
    /// Special groups.
    pub special_groups: Vec<SpecialGroup>,
    /// Notes.
    pub notes: String,
    /// Who registered the person.
    pub created_by: String,
    /// When, ms since the epoch.
    pub created_ms: i64,
}

impl From<&PersonDoc> for PersonDetailRecord {
    fn from(p: &PersonDoc) -> Self {
        PersonDetailRecord {
            id: p.id.to_string(),
            grid: p.grid.to_string(),
            name: p.name.clone(),
            sex: p.sex.map(Into::into),
            born: p.born.map(date_str),
            id_number: p.id_number.as_ref().map(|i| i.full().to_owned()),
            id_masked: p.id_number.as_ref().map(ResidentId::masked),
            phone: p.phone.as_ref().map(|ph| ph.full().to_owned()),
            phone_masked: p.phone.as_ref().map(Phone::masked),
            household: membership(&p.household),
            special_groups: groups(&p.tags),
            notes: p.notes.clone(),
            created_by: p.created_by.to_string(),
            created_ms: millis(p.created),
        }
    }
}

/// One row of a person list: the ID and phone numbers masked.
#[derive(uniffi::Record)]
pub struct PersonSummaryRecord {
    /// Id.
    pub id: String,
    /// The grid.
    pub grid: String,
    /// Name.
    pub name: String,
    /// Sex.
    pub sex: Option<Sex>,
    /// Birth year (the whole date is on the detail view only: beside the masked
    /// ID number it would give the number away).
    pub birth_year: Option<i32>,
    /// `3301**********1234`.
    pub id_masked: Option<String>,
    /// `138****5678`.
    pub phone_masked: Option<String>,
    /// The household and the relationship to its head.
    pub household: Option<MembershipRecord>,
    /// Special groups.
    pub special_groups: Vec<SpecialGroup>,
}

impl From<&PersonSummary> for PersonSummaryRecord {
    fn from(p: &PersonSummary) -> Self {
        PersonSummaryRecord {
            id: p.id.to_string(),
            grid: p.grid.to_string(),
            name: p.name.clone(),
            sex: p.sex.map(Into::into),
            birth_year: p.birth_year,
            id_masked: p.id_masked.clone(),
            phone_masked: p.phone_masked.clone(),
            household: membership(&p.household),
            special_groups: groups(&p.tags),
        }
    }
}

/// A household (户).
#[derive(uniffi::Record)]
pub struct HouseholdRecord {
    /// Id.
    pub id: String,
    /// The grid.
    pub grid: String,
    /// Address.
    pub address: String,
    /// The head of household (户主), a person's id.
    pub head: Option<String>,
    /// When it left the grid (搬离), ms since the epoch.
    pub left_ms: Option<i64>,
    /// The dwelling it lives in (a place's id; set with `household_lives_at`). A
    /// household living in a rented dwelling is its tenant.
    pub place_id: Option<String>,
    /// Its visits (走访), in the order recorded.
    pub visits: Vec<VisitRecord>,
    /// Who registered it.
    pub created_by: String,
    /// When, ms since the epoch.
    pub created_ms: i64,
}

/// A visit to a household: who, when, on which patrol, what it found.
#[derive(uniffi::Record)]
pub struct VisitRecord {
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// Who visited.
    pub by: String,
    /// The patrol it was made on.
    pub patrol_id: String,
    /// What it found.
    pub findings: String,
    /// The display image's hash of the photo taken there, if one was
    /// (`fetch_photo` brings it).
    pub photo_hash: Option<String>,
    /// Its thumbnail's hash.
    pub thumb_hash: Option<String>,
}

/// A person due for a visit by the directory's visit rules.
#[derive(uniffi::Record)]
pub struct DueVisitRecord {
    /// The person, as lists show them (masked).
    pub person: PersonSummaryRecord,
    /// Days between visits for this person.
    pub every_days: u32,
    /// The household's last visit, ms since the epoch; none if never visited.
    pub last_visit_ms: Option<i64>,
}

impl From<&DueVisit> for DueVisitRecord {
    fn from(d: &DueVisit) -> Self {
        DueVisitRecord {
            person: PersonSummaryRecord::from(&d.person),
            every_days: d.every_days,
            last_visit_ms: d.last_visit.map(millis),
        }
    }
}

/// Visit coverage of a month: per grid and per worker.
#[derive(uniffi::Record)]
pub struct VisitCoverageRecord {
    /// Per grid: households registered (not left) and of them visited.
    pub grids: Vec<GridCoverageRecord>,
    /// Per worker who visited: visits and households.
    pub workers: Vec<WorkerCoverageRecord>,
}

/// One grid's visit coverage.
#[derive(uniffi::Record)]
pub struct GridCoverageRecord {
    /// The grid.
    pub grid: String,
    /// Households registered and not left.
    pub households: u64,
    /// Of them, visited in the month.
    pub visited: u64,
}

/// One grid worker's points (积分) for a month, and what earned them.
#[derive(uniffi::Record)]
pub struct WorkerPointsRecord {
    /// The worker.
    pub worker: String,
    /// Reports not marked invalid.
    pub valid_reports: u64,
    /// Of them, handled on the spot.
    pub handled_on_the_spot: u64,
    /// Of them, of severity urgent.
    pub major_cases: u64,
    /// Reports marked invalid.
    pub invalid_reports: u64,
    /// Household visits.
    pub visits: u64,
    /// Safety inspections.
    pub inspections: u64,
    /// The points these earn under the directory's rules.
    pub computed: i64,
    /// The sum of the leaders' adjustments for the month (see
    /// `points_adjustments`).
    pub adjusted: i64,
    /// The month's points: computed plus adjusted.
    pub points: i64,
}

impl From<gridsync_core::points::WorkerPoints> for WorkerPointsRecord {
    fn from(p: gridsync_core::points::WorkerPoints) -> Self {
        WorkerPointsRecord {
            worker: p.worker,
            valid_reports: p.valid_reports,
            handled_on_the_spot: p.handled_on_the_spot,
            major_cases: p.major_cases,
            invalid_reports: p.invalid_reports,
            visits: p.visits,
            inspections: p.inspections,
            computed: p.computed,
            adjusted: p.adjusted,
            points: p.points,
        }
    }
}

/// A leader's manual adjustment of a grid worker's points (积分调整), as the
/// ledger lists it.
#[derive(uniffi::Record)]
pub struct PointsAdjustmentRecord {
    /// Its document's id.
    pub id: String,
    /// The grid worker.
    pub worker: String,
    /// The month it counts in, `YYYY-MM`.
    pub month: String,
    /// Points added (positive) or taken away (negative).
    pub points: i32,
    /// Why.
    pub reason: String,
    /// The leader who made it.
    pub by: String,
    /// When, milliseconds since the epoch.
    pub at_ms: i64,
}

impl From<gridsync_core::points::Adjustment> for PointsAdjustmentRecord {
    fn from(a: gridsync_core::points::Adjustment) -> Self {
        PointsAdjustmentRecord {
            id: a.id.to_string(),
            worker: a.worker.to_string(),
            month: a.month.to_string(),
            points: a.points,
            reason: a.reason,
            by: a.by.to_string(),
            at_ms: a.at.timestamp_millis(),
        }
    }
}

/// One worker's visits in the month.
#[derive(uniffi::Record)]
pub struct WorkerCoverageRecord {
    /// The worker.
    pub worker: String,
    /// Visits made.
    pub visits: u64,
    /// Different households visited.
    pub households: u64,
}

impl From<(Vec<GridCoverage>, Vec<WorkerCoverage>)> for VisitCoverageRecord {
    fn from((grids, workers): (Vec<GridCoverage>, Vec<WorkerCoverage>)) -> Self {
        VisitCoverageRecord {
            grids: grids
                .into_iter()
                .map(|g| GridCoverageRecord {
                    grid: g.grid,
                    households: g.households,
                    visited: g.visited,
                })
                .collect(),
            workers: workers
                .into_iter()
                .map(|w| WorkerCoverageRecord {
                    worker: w.worker,
                    visits: w.visits,
                    households: w.households,
                })
                .collect(),
        }
    }
}

impl From<&HouseholdDoc> for HouseholdRecord {
    fn from(h: &HouseholdDoc) -> Self {
        HouseholdRecord {
            id: h.id.to_string(),
            grid: h.grid.to_string(),
            address: h.address.clone(),
            head: h.head.as_ref().map(ToString::to_string),
            left_ms: h.left.map(millis),
            place_id: h.place.as_ref().map(ToString::to_string),
            visits: h
                .visits
                .iter()
                .map(|v| VisitRecord {
                    at_ms: millis(v.at),
                    by: v.by.to_string(),
                    patrol_id: v.patrol.to_string(),
                    findings: v.findings.clone(),
                    photo_hash: v.photo.as_ref().map(|p| p.hash.to_string()),
                    thumb_hash: v.photo.as_ref().map(|p| p.thumb.to_string()),
                })
                .collect(),
            created_by: h.created_by.to_string(),
            created_ms: millis(h.created),
        }
    }
}

/// Which persons to list, within this user's region. Every field narrows the list;
/// the defaults narrow nothing.
#[derive(uniffi::Record, Default)]
pub struct PersonFilterRecord {
    /// Within this region (a grid, or a larger region's grids).
    #[uniffi(default)]
    pub region: Option<String>,
    /// Part of the name (two Chinese characters are enough).
    #[uniffi(default)]
    pub name: Option<String>,
    /// The last 1 to 6 characters of the ID number (what a masked row shows).
    #[uniffi(default)]
    pub id_suffix: Option<String>,
    /// In this special group.
    #[uniffi(default)]
    pub special_group: Option<SpecialGroup>,
    /// Members of this household.
    #[uniffi(default)]
    pub household_id: Option<String>,
    /// Persons whose household lives at this place (its residents or tenants).
    #[uniffi(default)]
    pub place_id: Option<String>,
    /// Page size (0: 50; at most 1000).
    #[uniffi(default)]
    pub limit: u32,
    /// Rows to skip (the next page).
    #[uniffi(default)]
    pub offset: u32,
}

impl TryFrom<PersonFilterRecord> for PersonFilter {
    type Error = GridsyncError;
    fn try_from(r: PersonFilterRecord) -> Result<Self, GridsyncError> {
        Ok(PersonFilter {
            region: r.region.map(|s| s.parse()).transpose().map_err(invalid)?,
            name: r.name,
            id_suffix: r.id_suffix,
            tag: r.special_group.map(Into::into),
            household: r
                .household_id
                .map(|s| s.parse())
                .transpose()
                .map_err(invalid)?,
            place: r.place_id.map(|s| s.parse()).transpose().map_err(invalid)?,
            limit: r.limit,
            offset: r.offset,
        })
    }
}

/// What one grid holds: a row of a community's or town's overview.
#[derive(uniffi::Record)]
pub struct GridCountsRecord {
    /// The grid.
    pub grid: String,
    /// Persons registered in it.
    pub persons: u64,
    /// Households that have not left it.
    pub households: u64,
    /// Persons per special group, every group in the order lists show them.
    pub special_groups: Vec<SpecialGroupCountRecord>,
    /// Its places: rental housing and its tenants, organisations.
    pub places: PlaceCountsRecord,
}

/// A grid's places (地点), rental housing (出租房) and organisations (单位).
#[derive(uniffi::Record, Debug, Clone, PartialEq, Eq)]
pub struct PlaceCountsRecord {
    /// Places registered.
    pub places: u64,
    /// Dwellings rented out.
    pub rented: u64,
    /// Households living in rented dwellings, not left.
    pub tenant_households: u64,
    /// Persons of those households.
    pub tenants: u64,
    /// Shops and enterprises.
    pub organisations: u64,
}

impl From<&PlaceCounts> for PlaceCountsRecord {
    fn from(c: &PlaceCounts) -> Self {
        PlaceCountsRecord {
            places: c.places,
            rented: c.rented,
            tenant_households: c.tenant_households,
            tenants: c.tenants,
            organisations: c.organisations,
        }
    }
}

/// Persons in one special group.
#[derive(uniffi::Record)]
pub struct SpecialGroupCountRecord {
    /// The group.
    pub group: SpecialGroup,
    /// Persons.
    pub count: u64,
}

impl From<&GridCounts> for GridCountsRecord {
    fn from(c: &GridCounts) -> Self {
        GridCountsRecord {
            grid: c.grid.clone(),
            persons: c.persons,
            households: c.households,
            special_groups: c
                .tags
                .iter()
                .map(|(t, count)| SpecialGroupCountRecord {
                    group: (*t).into(),
                    count: *count,
                })
                .collect(),
            places: PlaceCountsRecord::from(&c.places),
        }
    }
}

/// A document id as the app gives it. The error names the rule, not the value.
pub(crate) fn doc_id(s: &str) -> Result<DocId, GridsyncError> {
    s.parse().map_err(invalid)
}

/// An optional photo's hash from the app.
pub(crate) fn photo_hash(s: Option<String>) -> Result<Option<PhotoHash>, GridsyncError> {
    s.map(|h| h.parse().map_err(invalid)).transpose()
}

// Places (地点): buildings, dwellings, shops and enterprises, with the organisation
// (单位) running in a shop or an enterprise and its safety inspections.

/// What a place is. Converted to and from the core's `PlaceKind` by two exhaustive
/// matches, so a new kind in the core does not compile until it is here too.
#[derive(uniffi::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceKind {
    /// 楼栋: a residential or office building.
    Building,
    /// 房屋: a house or a flat.
    Dwelling,
    /// 商铺: a shop.
    Shop,
    /// 企业: an enterprise's premises.
    Enterprise,
    /// 其他: anything else worth knowing (a square, a construction site …).
    Other,
}

impl From<PlaceKind> for place::PlaceKind {
    fn from(k: PlaceKind) -> Self {
        match k {
            PlaceKind::Building => place::PlaceKind::Building,
            PlaceKind::Dwelling => place::PlaceKind::Dwelling,
            PlaceKind::Shop => place::PlaceKind::Shop,
            PlaceKind::Enterprise => place::PlaceKind::Enterprise,
            PlaceKind::Other => place::PlaceKind::Other,
        }
    }
}

impl From<place::PlaceKind> for PlaceKind {
    fn from(k: place::PlaceKind) -> Self {
        match k {
            place::PlaceKind::Building => PlaceKind::Building,
            place::PlaceKind::Dwelling => PlaceKind::Dwelling,
            place::PlaceKind::Shop => PlaceKind::Shop,
            place::PlaceKind::Enterprise => PlaceKind::Enterprise,
            place::PlaceKind::Other => PlaceKind::Other,
        }
    }
}

/// How a dwelling is lived in. Converted to and from the core's `Occupancy` by two
/// exhaustive matches.
#[derive(uniffi::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occupancy {
    /// 自住.
    OwnerOccupied,
    /// 出租: rental housing; the households living there are its tenants.
    Rented,
    /// 空置.
    Vacant,
}

impl From<Occupancy> for place::Occupancy {
    fn from(o: Occupancy) -> Self {
        match o {
            Occupancy::OwnerOccupied => place::Occupancy::OwnerOccupied,
            Occupancy::Rented => place::Occupancy::Rented,
            Occupancy::Vacant => place::Occupancy::Vacant,
        }
    }
}

impl From<place::Occupancy> for Occupancy {
    fn from(o: place::Occupancy) -> Self {
        match o {
            place::Occupancy::OwnerOccupied => Occupancy::OwnerOccupied,
            place::Occupancy::Rented => Occupancy::Rented,
            place::Occupancy::Vacant => Occupancy::Vacant,
        }
    }
}

/// A place kind with its Chinese name, for a picker.
#[derive(uniffi::Record)]
pub struct PlaceKindRecord {
    /// The kind.
    pub kind: PlaceKind,
    /// Its Chinese name (楼栋, 房屋, …).
    pub label_zh: String,
}

/// An occupancy with its Chinese name, for a picker.
#[derive(uniffi::Record)]
pub struct OccupancyRecord {
    /// The occupancy.
    pub occupancy: Occupancy,
    /// Its Chinese name (自住, 出租, 空置).
    pub label_zh: String,
}

/// Every place kind, in the order lists show them.
pub(crate) fn place_kinds() -> Vec<PlaceKindRecord> {
    place::PlaceKind::ALL
        .iter()
        .map(|&k| PlaceKindRecord {
            kind: k.into(),
            label_zh: k.label_zh().into(),
        })
        .collect()
}

/// Every occupancy, in the order lists show them.
pub(crate) fn occupancies() -> Vec<OccupancyRecord> {
    place::Occupancy::ALL
        .iter()
        .map(|&o| OccupancyRecord {
            occupancy: o.into(),
            label_zh: o.label_zh().into(),
        })
        .collect()
}

/// The organisation (单位) running in a shop or an enterprise.
#[derive(uniffi::Record, Debug, Clone, PartialEq)]
pub struct OrgFactsRecord {
    /// Its type (餐饮, 零售, 小作坊 …).
    #[uniffi(default)]
    pub org_type: String,
    /// Its unified social credit code (统一社会信用代码, 18 characters). One whose
    /// check character is wrong is `InvalidInput`.
    #[uniffi(default)]
    pub credit_code: Option<String>,
    /// Its contact (负责人): a registered person's id.
    #[uniffi(default)]
    pub contact_id: Option<String>,
}

impl TryFrom<OrgFactsRecord> for OrgFacts {
    type Error = GridsyncError;
    fn try_from(r: OrgFactsRecord) -> Result<Self, GridsyncError> {
        Ok(OrgFacts {
            org_type: r.org_type,
            credit_code: r.credit_code.as_deref().map(credit_code).transpose()?,
            contact: r.contact_id.as_deref().map(doc_id).transpose()?,
        })
    }
}

impl From<&OrgFacts> for OrgFactsRecord {
    fn from(o: &OrgFacts) -> Self {
        OrgFactsRecord {
            org_type: o.org_type.clone(),
            credit_code: o.credit_code.as_ref().map(|c| c.as_str().to_owned()),
            contact_id: o.contact.as_ref().map(ToString::to_string),
        }
    }
}

/// A unified social credit code as typed (spaces around it and lower case are
/// forgiven).
fn credit_code(s: &str) -> Result<CreditCode, GridsyncError> {
    s.parse::<CreditCode>()
        .map_err(|e| invalid(format!("credit_code: {e}")))
}

/// A position from two optional coordinates: both or neither.
fn position(lat: Option<f64>, lon: Option<f64>) -> Result<Option<(f64, f64)>, GridsyncError> {
    match (lat, lon) {
        (Some(lat), Some(lon)) => Ok(Some((lat, lon))),
        (None, None) => Ok(None),
        _ => Err(invalid("lat and lon are given together")),
    }
}

/// A place to register (楼栋, 房屋, 商铺, 企业 …).
#[derive(uniffi::Record)]
pub struct NewPlaceRecord {
    /// What it is.
    pub kind: PlaceKind,
    /// Its name (3号楼, 平安超市 …).
    pub name: String,
    /// Its address.
    pub address: String,
    /// The grid it is in (a grid worker's own when empty).
    #[uniffi(default)]
    pub grid: Option<String>,
    /// The building it is in (a flat's or a shop's): a place's id.
    #[uniffi(default)]
    pub within_id: Option<String>,
    /// Latitude (WGS-84, as the phone's GPS gives it), with `lon`.
    #[uniffi(default)]
    pub lat: Option<f64>,
    /// Longitude, with `lat`.
    #[uniffi(default)]
    pub lon: Option<f64>,
    /// How a dwelling is lived in (dwellings only).
    #[uniffi(default)]
    pub occupancy: Option<Occupancy>,
    /// The organisation of a shop or an enterprise (those only).
    #[uniffi(default)]
    pub org: Option<OrgFactsRecord>,
}

impl NewPlaceRecord {
    /// The core's place, in `own_grid` unless the record names a grid.
    pub(crate) fn into_core(self, own_grid: RegionCode) -> Result<NewPlace, GridsyncError> {
        Ok(NewPlace {
            grid: match self.grid {
                Some(g) => g.parse().map_err(invalid)?,
                None => own_grid,
            },
            kind: self.kind.into(),
            name: self.name,
            address: self.address,
            within: self.within_id.as_deref().map(doc_id).transpose()?,
            location: position(self.lat, self.lon)?,
            occupancy: self.occupancy.map(Into::into),
            org: self.org.map(TryInto::try_into).transpose()?,
        })
    }
}

/// A change to a place's facts: each field left `None` (the default) stays as it
/// is. A blank building, credit code or contact clears it; `clear_location` and
/// `clear_occupancy` clear those. The kind never changes.
#[derive(uniffi::Record, Default)]
pub struct PlaceEditRecord {
    /// New name.
    #[uniffi(default)]
    pub name: Option<String>,
    /// New address.
    #[uniffi(default)]
    pub address: Option<String>,
    /// New building (a place's id); blank clears it.
    #[uniffi(default)]
    pub within_id: Option<String>,
    /// New latitude, with `lon`.
    #[uniffi(default)]
    pub lat: Option<f64>,
    /// New longitude, with `lat`.
    #[uniffi(default)]
    pub lon: Option<f64>,
    /// Clear the position.
    #[uniffi(default)]
    pub clear_location: bool,
    /// New occupancy (dwellings only).
    #[uniffi(default)]
    pub occupancy: Option<Occupancy>,
    /// Clear the occupancy.
    #[uniffi(default)]
    pub clear_occupancy: bool,
    /// New organisation type (shops and enterprises only).
    #[uniffi(default)]
    pub org_type: Option<String>,
    /// New unified social credit code; blank clears it.
    #[uniffi(default)]
    pub credit_code: Option<String>,
    /// New contact (a person's id); blank clears it.
    #[uniffi(default)]
    pub contact_id: Option<String>,
}

impl TryFrom<PlaceEditRecord> for PlaceEdit {
    type Error = GridsyncError;
    fn try_from(r: PlaceEditRecord) -> Result<Self, GridsyncError> {
        let location = match (position(r.lat, r.lon)?, r.clear_location) {
            (Some(_), true) => {
                return Err(invalid("a position is either set or cleared, not both"))
            }
            (Some(p), false) => Some(Some(p)),
            (None, true) => Some(None),
            (None, false) => None,
        };
        let occupancy = match (r.occupancy, r.clear_occupancy) {
            (Some(_), true) => return Err(invalid("occupancy is either set or cleared, not both")),
            (Some(o), false) => Some(Some(o.into())),
            (None, true) => Some(None),
            (None, false) => None,
        };
        Ok(PlaceEdit {
            name: r.name,
            address: r.address,
            within: edit(r.within_id, doc_id)?,
            location,
            occupancy,
            org_type: r.org_type,
            credit_code: edit(r.credit_code, credit_code)?,
            contact: edit(r.contact_id, doc_id)?,
        })
    }
}

/// A safety inspection (安全检查) of a place, made on a patrol.
#[derive(uniffi::Record)]
pub struct InspectionRecord {
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// Who inspected.
    pub by: String,
    /// The patrol it was made on.
    pub patrol_id: String,
    /// Whether the place passed.
    pub passed: bool,
    /// What it found (a blocked exit, an expired extinguisher …).
    pub findings: String,
    /// The display image's hash of the photo taken there, if one was
    /// (`fetch_photo` brings it).
    pub photo_hash: Option<String>,
    /// Its thumbnail's hash.
    pub thumb_hash: Option<String>,
}

impl From<&Inspection> for InspectionRecord {
    fn from(i: &Inspection) -> Self {
        InspectionRecord {
            at_ms: millis(i.at),
            by: i.by.to_string(),
            patrol_id: i.patrol.to_string(),
            passed: i.passed,
            findings: i.findings.clone(),
            photo_hash: i.photo.as_ref().map(|p| p.hash.to_string()),
            thumb_hash: i.photo.as_ref().map(|p| p.thumb.to_string()),
        }
    }
}

/// A place in full, with its inspections: a detail view. Its residents or tenants
/// are `list_persons` with `place_id`; the flats and shops in a building are
/// `list_places` with `within_id`.
#[derive(uniffi::Record)]
pub struct PlaceDetailRecord {
    /// Id.
    pub id: String,
    /// The grid.
    pub grid: String,
    /// What it is.
    pub kind: PlaceKind,
    /// Its name.
    pub name: String,
    /// Its address.
    pub address: String,
    /// The building it is in, a place's id.
    pub within_id: Option<String>,
    /// Latitude (WGS-84), if known.
    pub lat: Option<f64>,
    /// Longitude, if known.
    pub lon: Option<f64>,
    /// How a dwelling is lived in.
    pub occupancy: Option<Occupancy>,
    /// The organisation of a shop or an enterprise, when any of its facts is known.
    pub org: Option<OrgFactsRecord>,
    /// Safety inspections, in the order recorded.
    pub inspections: Vec<InspectionRecord>,
    /// Who registered it.
    pub created_by: String,
    /// When, ms since the epoch.
    pub created_ms: i64,
}

impl From<&PlaceDoc> for PlaceDetailRecord {
    fn from(p: &PlaceDoc) -> Self {
        PlaceDetailRecord {
            id: p.id.to_string(),
            grid: p.grid.to_string(),
            kind: p.kind.into(),
            name: p.name.clone(),
            address: p.address.clone(),
            within_id: p.within.as_ref().map(ToString::to_string),
            lat: p.location.map(|l| l.0),
            lon: p.location.map(|l| l.1),
            occupancy: p.occupancy.map(Into::into),
            org: p.org.as_ref().map(OrgFactsRecord::from),
            inspections: p.inspections.iter().map(InspectionRecord::from).collect(),
            created_by: p.created_by.to_string(),
            created_ms: millis(p.created),
        }
    }
}

/// A place's last safety inspection, as a list shows it.
#[derive(uniffi::Record, Debug, Clone, PartialEq)]
pub struct LastInspectionRecord {
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// Whether the place passed.
    pub passed: bool,
}

/// One row of a place list.
#[derive(uniffi::Record)]
pub struct PlaceSummaryRecord {
    /// Id.
    pub id: String,
    /// The grid.
    pub grid: String,
    /// What it is.
    pub kind: PlaceKind,
    /// Its name.
    pub name: String,
    /// Its address.
    pub address: String,
    /// How a dwelling is lived in.
    pub occupancy: Option<Occupancy>,
    /// The organisation's type, for a shop or an enterprise.
    pub org_type: Option<String>,
    /// Latitude (WGS-84), if known.
    pub lat: Option<f64>,
    /// Longitude, if known.
    pub lon: Option<f64>,
    /// The last safety inspection.
    pub last_inspection: Option<LastInspectionRecord>,
}

impl From<&PlaceSummary> for PlaceSummaryRecord {
    fn from(p: &PlaceSummary) -> Self {
        PlaceSummaryRecord {
            id: p.id.to_string(),
            grid: p.grid.to_string(),
            kind: p.kind.into(),
            name: p.name.clone(),
            address: p.address.clone(),
            occupancy: p.occupancy.map(Into::into),
            org_type: p.org_type.clone(),
            lat: p.location.map(|l| l.0),
            lon: p.location.map(|l| l.1),
            last_inspection: p.last_inspection.map(|(at, passed)| LastInspectionRecord {
                at_ms: millis(at),
                passed,
            }),
        }
    }
}

/// Which places to list, within this user's region. Every field narrows the list;
/// the defaults narrow nothing.
#[derive(uniffi::Record, Default)]
pub struct PlaceFilterRecord {
    /// Within this region (a grid, or a larger region's grids).
    #[uniffi(default)]
    pub region: Option<String>,
    /// Of this kind.
    #[uniffi(default)]
    pub kind: Option<PlaceKind>,
    /// Dwellings lived in this way (`Rented`: the rental housing).
    #[uniffi(default)]
    pub occupancy: Option<Occupancy>,
    /// Part of the name or the address.
    #[uniffi(default)]
    pub text: Option<String>,
    /// In this building (a place's id).
    #[uniffi(default)]
    pub within_id: Option<String>,
    /// Page size (0: 50; at most 1000).
    #[uniffi(default)]
    pub limit: u32,
    /// Rows to skip (the next page).
    #[uniffi(default)]
    pub offset: u32,
}

impl TryFrom<PlaceFilterRecord> for PlaceFilter {
    type Error = GridsyncError;
    fn try_from(r: PlaceFilterRecord) -> Result<Self, GridsyncError> {
        Ok(PlaceFilter {
            region: r.region.map(|s| s.parse()).transpose().map_err(invalid)?,
            kind: r.kind.map(Into::into),
            occupancy: r.occupancy.map(Into::into),
            text: r.text,
            within: r.within_id.as_deref().map(doc_id).transpose()?,
            limit: r.limit,
            offset: r.offset,
        })
    }
}
