//! Plain records that cross the FFI, and their conversions to and from the core
//! types (all in one place).

use chrono::DateTime;
use gridsync_core::{
    Action, Case, CaseFilter, CaseSummary, Location, NewCase, PhotoInfo, Severity, Status,
    SupervisionLevel, TrackPoint,
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
            people: Vec::new(),
            photos: r
                .photos
                .iter()
                .map(|h| h.parse())
                .collect::<Result<_, _>>()
                .map_err(invalid)?,
        })
    }
}

/// A workflow action.
#[derive(uniffi::Enum)]
pub enum CaseAction {
    /// 受理.
    Accept,
    /// 自办.
    SelfHandle {
        /// What was done.
        result: String,
    },
    /// 派遣, with the deadline from the directory's rules.
    Dispatch {
        /// Department id.
        dept: String,
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

impl TryFrom<CaseAction> for Action {
    type Error = GridsyncError;
    fn try_from(a: CaseAction) -> Result<Self, GridsyncError> {
        Ok(match a {
            CaseAction::Accept => Action::Accept,
            CaseAction::SelfHandle { result } => Action::SelfHandle { result },
            CaseAction::Dispatch { .. } => {
                return Err(invalid("dispatch goes through GridEngine::act"))
            }
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

/// One timeline entry as shown to people.
#[derive(uniffi::Record)]
pub struct TimelineEntryRecord {
    /// Who.
    pub actor: String,
    /// Their role.
    pub role: String,
    /// Action name (`report`, `accept`, …).
    pub action: String,
    /// Chinese label (发现上报, 受理, …).
    pub label_zh: String,
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// `applied`, `conflict` or `refused`.
    pub outcome: String,
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
    /// Photo hashes (display images).
    pub photos: Vec<String>,
    /// Notes.
    pub notes: Vec<String>,
    /// The timeline.
    pub timeline: Vec<TimelineEntryRecord>,
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
            photos: c.doc.photos.iter().map(|p| p.hash.to_string()).collect(),
            notes: c.doc.notes.iter().map(|n| n.text.clone()).collect(),
            timeline: c
                .timeline()
                .map(|(e, o)| TimelineEntryRecord {
                    actor: e.actor.to_string(),
                    role: e.role.as_str().into(),
                    action: e.action.name().into(),
                    label_zh: e.action.label_zh().into(),
                    at_ms: e.at.timestamp_millis(),
                    outcome: match o {
                        gridsync_core::Outcome::Applied => "applied",
                        gridsync_core::Outcome::Conflict { .. } => "conflict",
                        gridsync_core::Outcome::Refused(_) => "refused",
                    }
                    .into(),
                })
                .collect(),
        }
    }
}

/// Which cases to list.
#[derive(uniffi::Record)]
pub struct CaseFilterRecord {
    /// Statuses (empty: all).
    pub statuses: Vec<String>,
    /// Search text.
    pub text: Option<String>,
    /// Page size (0: 100).
    pub limit: u32,
}

impl TryFrom<CaseFilterRecord> for CaseFilter {
    type Error = GridsyncError;
    fn try_from(f: CaseFilterRecord) -> Result<Self, GridsyncError> {
        Ok(CaseFilter {
            statuses: f
                .statuses
                .iter()
                .map(|s| Status::parse(s).ok_or_else(|| invalid(format!("unknown status {s}"))))
                .collect::<Result<_, _>>()?,
            text: f.text,
            limit: f.limit,
            ..Default::default()
        })
    }
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
            at: DateTime::from_timestamp_millis(p.at_ms).ok_or_else(|| invalid("bad time"))?,
            lat: p.lat,
            lon: p.lon,
        })
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

/// Sync progress.
#[derive(uniffi::Record)]
pub struct SyncProgress {
    /// `push`, `pull` or `photos`.
    pub phase: String,
    /// Items so far in this phase.
    pub items: u64,
    /// Bytes so far in this phase.
    pub bytes: u64,
    /// Items left (push and photos).
    pub remaining: u64,
}

impl From<gridsync_core::sync::Progress> for SyncProgress {
    fn from(p: gridsync_core::sync::Progress) -> Self {
        SyncProgress {
            phase: match p.phase {
                gridsync_core::sync::Phase::Push => "push",
                gridsync_core::sync::Phase::Pull => "pull",
                gridsync_core::sync::Phase::Photos => "photos",
            }
            .into(),
            items: p.items,
            bytes: p.bytes,
            remaining: p.remaining,
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
            photos_uploaded: r.photos_uploaded,
        }
    }
}
