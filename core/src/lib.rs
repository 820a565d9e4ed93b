//! gridsync-core: the offline store that lives on a grid worker's phone.
//!
//! One SQLite file per device holds every case and patrol as an Automerge document
//! (snapshot + incremental changes), a materialised index for lists, filters and
//! Chinese full-text search, and a durable outbox of local changes. The case
//! workflow — the six-step closed loop — is an append-only timeline inside each
//! case document whose status is a deterministic fold, so offline edits on several
//! devices merge without loss. See `docs/ARCHITECTURE.md`.
#![warn(missing_docs)]

pub mod access;
pub mod blobs;
pub mod coords;
pub mod db;
pub mod directory;
pub mod doc;
pub mod engine;
pub mod error;
pub mod ids;
pub mod index;
pub mod jpeg;
pub mod photo;
pub mod pii;
pub mod places;
pub mod points;
pub mod registry;
pub mod schema;
pub mod search;
pub mod stats;
pub mod store;
pub mod sync;
pub mod track;
pub mod vault;
pub mod watch;
mod wipe;
pub mod workflow;

pub use automerge::ChangeHash;
pub use directory::{Directory, Role, User};
pub use doc::case::{CaseDoc, CaseLinks, Channel, Location, NewCase, Person, Severity};
pub use doc::patrol::PatrolDoc;
pub use doc::DocContent;
pub use engine::{
    Case, ChangeCheck, Clock, ClosedCase, Engine, Identity, ImportResult, PhotoInfo, PhotoUsage,
    PullState,
};
pub use error::{Error, OpenError, Result};
pub use ids::{
    CategoryCode, DeptId, DeviceId, DocId, DocKind, PhotoHash, RegionCode, RegionLevel, UserId,
};
pub use index::{CaseFilter, CaseMap, CasePoint, CaseSummary, DailyCompliance};
pub use store::{DocImport, OutboxItem};
pub use track::TrackPoint;
pub use watch::Subscription;
pub use workflow::{fold, Action, CaseState, Entry, Outcome, Status, SupervisionLevel};
