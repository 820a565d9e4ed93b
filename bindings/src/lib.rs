//! gridsync-ffi: a thin UniFFI facade over `gridsync-core` for Kotlin, Swift and
//! Python. FFI types hold the core type and convert with `From`; the logic stays in
//! the core. Local calls are synchronous (call them off the UI thread); `sync` is
//! async. Generated bindings come from `uniffi-bindgen` in library mode (see
//! `bindings/README.md`).
#![warn(missing_docs)]

mod records;

use std::sync::{Arc, Mutex};

use gridsync_core::sync::{HttpTransport, ServerSecurity, SyncError};
use gridsync_core::vault::DeviceKey;
use gridsync_core::{DeviceId, DocId, Engine, Identity, Subscription};

pub use records::*;

uniffi::setup_scaffolding!();

/// The one error type apps see; each variant is something an app can act on.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum GridsyncError {
    /// No network, or the link dropped: try again later.
    #[error("network: {reason}")]
    Network {
        /// What happened.
        reason: String,
    },
    /// The device must enroll again; with `wipe`, erase its data first.
    #[error("unauthorized: {reason}")]
    Unauthorized {
        /// What the server said.
        reason: String,
        /// The device was revoked.
        wipe: bool,
    },
    /// No such case, patrol or photo (or not visible to this user).
    #[error("not found: {reason}")]
    NotFound {
        /// What was looked for.
        reason: String,
    },
    /// The user may not do this, or the case's state does not allow it.
    #[error("refused: {reason}")]
    Refused {
        /// Why.
        reason: String,
    },
    /// A field is missing, too long or out of range; a photo was refused.
    #[error("invalid input: {reason}")]
    InvalidInput {
        /// Which field and why.
        reason: String,
    },
    /// The local database or files failed.
    #[error("storage: {reason}")]
    Storage {
        /// What failed.
        reason: String,
    },
    /// The database does not open with the key given (nothing was changed): during
    /// a key change, open with the other key the app keeps; with no other key, the
    /// data cannot be read, and the device enrolls again.
    #[error("wrong key: {reason}")]
    WrongKey {
        /// Which file.
        reason: String,
    },
    /// This device erased its data (the relay revoked it, or the app called
    /// `wipe`): delete the key from the keystore and go back to enrollment. Every
    /// later call on this engine answers the same.
    #[error("wiped: {reason}")]
    Wiped {
        /// What was erased, or which files could not be.
        reason: String,
    },
    /// The engine was closed.
    #[error("the engine is closed")]
    Closed,
    /// Anything else.
    #[error("{reason}")]
    Other {
        /// What happened.
        reason: String,
    },
}

impl From<gridsync_core::Error> for GridsyncError {
    fn from(e: gridsync_core::Error) -> Self {
        use gridsync_core::Error as E;
        let reason = e.to_string();
        match e {
            E::NotFound { .. } => GridsyncError::NotFound { reason },
            E::Forbidden(_) | E::Refused(_) => GridsyncError::Refused { reason },
            E::InvalidInput(_) | E::Photo(_) | E::Directory(_) => {
                GridsyncError::InvalidInput { reason }
            }
            E::Storage(_) | E::Io(_) => GridsyncError::Storage { reason },
            E::Wiped => GridsyncError::Wiped { reason },
            _ => GridsyncError::Other { reason },
        }
    }
}

impl From<gridsync_core::OpenError> for GridsyncError {
    fn from(e: gridsync_core::OpenError) -> Self {
        let reason = e.to_string();
        match e {
            gridsync_core::OpenError::WrongKey { .. } => GridsyncError::WrongKey { reason },
            _ => GridsyncError::Storage { reason },
        }
    }
}

/// The device key from the bytes the app keeps in the keystore (32 of them); the
/// app's copy is zeroed.
fn device_key(mut bytes: Vec<u8>) -> Result<DeviceKey, GridsyncError> {
    let key = DeviceKey::from_slice(&bytes);
    bytes.fill(0);
    std::hint::black_box(&bytes);
    key.ok_or_else(|| invalid("the device key must be exactly 32 bytes"))
}

impl From<SyncError> for GridsyncError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::Network(reason) => GridsyncError::Network { reason },
            SyncError::Unauthorized { message, wipe } => GridsyncError::Unauthorized {
                reason: message,
                wipe,
            },
            SyncError::NotEnrolled => GridsyncError::Unauthorized {
                reason: e.to_string(),
                wipe: false,
            },
            SyncError::Local(inner) => inner.into(),
            SyncError::Wiped { ref left } => GridsyncError::Wiped {
                reason: if left.is_empty() {
                    e.to_string()
                } else {
                    format!("{e}; {} files could not be removed", left.len())
                },
            },
            // The app fixes the address (https://) or the certificates.
            SyncError::Insecure(reason) => GridsyncError::InvalidInput { reason },
            other => GridsyncError::Other {
                reason: other.to_string(),
            },
        }
    }
}

fn invalid(e: impl std::fmt::Display) -> GridsyncError {
    GridsyncError::InvalidInput {
        reason: e.to_string(),
    }
}

/// Told how a sync is going.
#[uniffi::export(with_foreign)]
pub trait SyncObserver: Send + Sync {
    /// Called after every request.
    fn on_progress(&self, progress: SyncProgress);
}

/// Told which documents changed: a local edit, a sync that brought news, a case
/// that left this device. Ids start with their kind (`case-`, `patrol-`, `person-`,
/// `household-`, `place-`). Called on the thread that committed the change (the caller
/// of a local edit, or the sync worker): hop to the UI thread and re-read there.
#[uniffi::export(with_foreign)]
pub trait DocumentsObserver: Send + Sync {
    /// The ids of the cases, patrols, persons, households and places a committed
    /// write touched.
    fn on_documents_changed(&self, doc_ids: Vec<String>);
}

/// A live `watch`: dropping it (or `cancel`) stops the notifications.
#[derive(uniffi::Object)]
pub struct WatchHandle {
    subscription: Subscription,
}

#[uniffi::export]
impl WatchHandle {
    /// Stop the notifications now (dropping the handle does the same).
    pub fn cancel(&self) {
        self.subscription.cancel();
    }
}

/// A new random device id (keep it with the database).
#[uniffi::export]
pub fn new_device_id() -> String {
    DeviceId::random().to_string()
}

/// What an enrollment QR code (printed by the console) says: the server's
/// address and the one-time code, both checked, for `enroll`.
#[derive(uniffi::Record)]
pub struct EnrollmentLinkRecord {
    /// The server's address.
    pub server_url: String,
    /// The one-time code.
    pub code: String,
}

/// Read a scanned enrollment QR code (`gridsync://enroll?server=…&code=…`);
/// anything else is `InvalidInput`, with a reason that never repeats the code.
#[uniffi::export]
pub fn parse_enrollment_link(text: String) -> Result<EnrollmentLinkRecord, GridsyncError> {
    let link = gridsync_core::sync::EnrollmentLink::parse(&text).map_err(invalid)?;
    Ok(EnrollmentLinkRecord {
        server_url: link.server,
        code: link.code,
    })
}

/// A position, in degrees.
#[derive(uniffi::Record)]
pub struct CoordinateRecord {
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
}

/// The WGS-84 position of a GCJ-02 one (what AMap's and other Chinese map SDKs
/// report): gridsync keeps WGS-84 everywhere, so an app that takes positions
/// from such an SDK converts them with this before a report or a track.
/// Outside China nothing moves.
#[uniffi::export]
pub fn wgs84_from_gcj02(lat: f64, lon: f64) -> Result<CoordinateRecord, GridsyncError> {
    if !(lat.is_finite() && lon.is_finite() && lat.abs() <= 90.0 && lon.abs() <= 180.0) {
        return Err(invalid(
            "a position needs a latitude within ±90 and a longitude within ±180",
        ));
    }
    let (lat, lon) = gridsync_core::coords::gcj02_to_wgs84(lat, lon);
    Ok(CoordinateRecord { lat, lon })
}

/// Redeem a one-time enrollment code with the server at `server_url`. Plain
/// `http://` is refused unless the server is on this machine or `security` allows
/// it; `security` also names the certificates to trust for a town's own
/// `https://` (give the same to `set_server_security` afterwards).
#[uniffi::export(async_runtime = "tokio", default(security = None))]
pub async fn enroll(
    server_url: String,
    code: String,
    device_id: String,
    app_version: String,
    security: Option<ServerSecurityRecord>,
) -> Result<Enrollment, GridsyncError> {
    let device: DeviceId = device_id.parse().map_err(invalid)?;
    let security = security.map(ServerSecurity::from).unwrap_or_default();
    blocking(move || {
        let transport = HttpTransport::with_security(&server_url, &security)?;
        let e = gridsync_core::sync::enroll(&transport, &code, device, &app_version)?;
        Ok(Enrollment {
            user: e.user.to_string(),
            token: e.token,
            directory_json: e.directory,
        })
    })
    .await
}

/// Every special group (特殊人群) with its Chinese name, in the order lists show
/// them: for a picker.
#[uniffi::export]
pub fn special_groups() -> Vec<SpecialGroupRecord> {
    records::special_groups()
}

/// Every place kind (楼栋, 房屋, 商铺, 企业, 其他) with its Chinese name, in the
/// order lists show them: for a picker.
#[uniffi::export]
pub fn place_kinds() -> Vec<PlaceKindRecord> {
    records::place_kinds()
}

/// Every occupancy of a dwelling (自住, 出租, 空置) with its Chinese name: for a
/// picker.
#[uniffi::export]
pub fn occupancies() -> Vec<OccupancyRecord> {
    records::occupancies()
}

/// The engine on the device: one SQLite file, opened once, closed explicitly.
#[derive(uniffi::Object)]
pub struct GridEngine {
    inner: Mutex<Option<Arc<Engine>>>,
}

impl GridEngine {
    fn engine(&self) -> Result<Arc<Engine>, GridsyncError> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or(GridsyncError::Closed)
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl GridEngine {
    /// Open (creating or migrating) the database at `path` for this user and device,
    /// encrypted under `key`: the device's 32-byte root key, which the app keeps in
    /// the platform keystore (Android Keystore, iOS Keychain). A plaintext database
    /// from an older install is encrypted on this open. `WrongKey` if the file is
    /// encrypted under another key; it is left untouched.
    #[uniffi::constructor]
    pub fn open(
        path: String,
        user_id: String,
        device_id: String,
        key: Vec<u8>,
    ) -> Result<Arc<Self>, GridsyncError> {
        let key = device_key(key)?;
        let identity = Identity {
            user: user_id.parse().map_err(invalid)?,
            device: device_id.parse().map_err(invalid)?,
        };
        let engine = Engine::open_encrypted(path, identity, &key)?;
        Ok(Arc::new(GridEngine {
            inner: Mutex::new(Some(Arc::new(engine))),
        }))
    }

    /// Close the engine and its database; every later call fails with `Closed`. (Not
    /// `close`: Kotlin's generated objects already have a `close` that frees the handle.)
    pub fn close_store(&self) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// Erase everything this engine keeps on the device — the database, its
    /// journals, the photos and temporary files — and close it (a worker leaves, a
    /// phone is handed over). The app then deletes its key from the keystore.
    pub fn wipe(&self) -> Result<(), GridsyncError> {
        let engine = self.engine()?;
        engine.wipe_in_place()?;
        self.close_store();
        Ok(())
    }

    /// Re-encrypt the database under `new_key` (32 bytes). Keep the new key beside
    /// the old one in the keystore until this returns: a crash meanwhile leaves the
    /// database under one or the other, so open with the old key and then the new.
    /// Other calls wait while it runs (about as long as copying the file).
    pub fn rekey(&self, new_key: Vec<u8>) -> Result<(), GridsyncError> {
        let key = device_key(new_key)?;
        Ok(self.engine()?.rekey(&key)?)
    }

    /// Tell `observer` which documents each committed change touches, until the
    /// returned handle is dropped or cancelled.
    pub fn watch(
        &self,
        observer: Arc<dyn DocumentsObserver>,
    ) -> Result<Arc<WatchHandle>, GridsyncError> {
        let subscription = self.engine()?.watch(move |ids| {
            observer.on_documents_changed(ids.iter().map(ToString::to_string).collect())
        });
        Ok(Arc::new(WatchHandle { subscription }))
    }

    /// Load the directory (JSON), e.g. the one enrollment returned.
    pub fn load_directory(&self, json: String) -> Result<(), GridsyncError> {
        Ok(self.engine()?.load_directory(&json)?)
    }

    /// The directory this device holds (JSON, as loaded): regions, departments,
    /// users, the category taxonomy, deadline rules.
    pub fn directory_json(&self) -> Result<String, GridsyncError> {
        Ok(self.engine()?.directory_json()?)
    }

    /// Local changes not yet acknowledged by the server: what "waiting to sync" shows.
    pub fn pending_changes(&self) -> Result<u64, GridsyncError> {
        Ok(self.engine()?.outbox_len()?)
    }

    /// How to reach the server safely: certificates to trust for `https://`, and
    /// whether plain `http://` off this machine is allowed (off by default).
    pub fn set_server_security(&self, security: ServerSecurityRecord) -> Result<(), GridsyncError> {
        Ok(self.engine()?.set_server_security(&security.into())?)
    }

    /// Remember the server and token from enrollment.
    pub fn set_server(&self, url: String, token: String) -> Result<(), GridsyncError> {
        Ok(self.engine()?.set_server(&url, &token)?)
    }

    /// Report a case; returns its id.
    pub fn report_case(&self, case: NewCaseRecord) -> Result<String, GridsyncError> {
        let input = case.try_into()?;
        Ok(self.engine()?.report_case(input)?.to_string())
    }

    /// Take a workflow action on a case; returns the new status. `Dispatch`
    /// without a deadline takes the directory's rule for the case.
    pub fn act(&self, case_id: String, action: CaseAction) -> Result<String, GridsyncError> {
        let engine = self.engine()?;
        let id = case_id.parse().map_err(invalid)?;
        let state = match action {
            CaseAction::Dispatch { dept, deadline_ms } => engine.dispatch(
                &id,
                dept.parse().map_err(invalid)?,
                deadline_ms.map(records::time).transpose()?,
            )?,
            other => engine.act(&id, other.try_into()?)?,
        };
        Ok(state.status.as_str().to_owned())
    }

    /// Add a note to a case.
    pub fn add_note(&self, case_id: String, text: String) -> Result<(), GridsyncError> {
        Ok(self
            .engine()?
            .add_note(&case_id.parse().map_err(invalid)?, &text)?)
    }

    /// A case with its timeline.
    pub fn get_case(&self, case_id: String) -> Result<CaseRecord, GridsyncError> {
        let case = self
            .engine()?
            .get_case(&case_id.parse().map_err(invalid)?)?;
        Ok(CaseRecord::from(&case))
    }

    /// Cases from the index, newest first; `text` searches (Chinese works).
    pub fn list_cases(
        &self,
        filter: CaseFilterRecord,
    ) -> Result<Vec<CaseSummaryRecord>, GridsyncError> {
        let engine = self.engine()?;
        let filter = filter.into_filter(chrono::Utc::now())?;
        Ok(summaries(&engine.list_cases(&filter)?))
    }

    /// The cases waiting for this user, newest first: a grid worker's cases to
    /// verify, a dispatcher's to accept or dispatch, a handler's department's open
    /// cases. `limit` 0 means 100.
    pub fn list_my_work(
        &self,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<CaseSummaryRecord>, GridsyncError> {
        let engine = self.engine()?;
        let filter = gridsync_core::CaseFilter {
            limit,
            offset,
            ..engine.assigned_to_me()?
        };
        Ok(summaries(&engine.list_cases(&filter)?))
    }

    /// How many cases of each status match `filter` (its paging is ignored): the
    /// badges of a home screen. Statuses with no case are left out.
    pub fn count_cases(
        &self,
        filter: CaseFilterRecord,
    ) -> Result<Vec<StatusCountRecord>, GridsyncError> {
        let engine = self.engine()?;
        let filter = filter.into_filter(chrono::Utc::now())?;
        Ok(engine
            .count_cases(&filter)?
            .into_iter()
            .map(|(status, count)| StatusCountRecord {
                status: status.as_str().into(),
                status_zh: status.label_zh().into(),
                count,
            })
            .collect())
    }

    /// The directory as records, for pickers: regions, departments, users,
    /// categories and subcategories.
    pub fn directory(&self) -> Result<DirectoryRecord, GridsyncError> {
        Ok(DirectoryRecord::from(&*self.engine()?.directory()?))
    }

    /// The user this device is enrolled for.
    pub fn me(&self) -> Result<UserRecord, GridsyncError> {
        Ok(UserRecord::from(&self.engine()?.me()?))
    }

    /// This device's changes the server refused, newest first, with its reasons.
    pub fn rejected_changes(&self) -> Result<Vec<RejectedChangeRecord>, GridsyncError> {
        Ok(self
            .engine()?
            .rejected_changes()?
            .into_iter()
            .map(|(doc, hash, reason)| RejectedChangeRecord {
                doc_id: doc.to_string(),
                hash: hash.to_string(),
                reason,
            })
            .collect())
    }

    /// Start a patrol of this worker's grid; returns its id.
    pub fn start_patrol(&self) -> Result<String, GridsyncError> {
        Ok(self.engine()?.start_patrol()?.to_string())
    }

    /// Record GPS fixes.
    pub fn add_track_points(
        &self,
        patrol_id: String,
        points: Vec<TrackPointRecord>,
    ) -> Result<(), GridsyncError> {
        let points: Vec<_> = points
            .into_iter()
            .map(TryInto::try_into)
            .collect::<Result<_, _>>()?;
        Ok(self
            .engine()?
            .add_track_points(&patrol_id.parse().map_err(invalid)?, &points)?)
    }

    /// End a patrol.
    pub fn end_patrol(&self, patrol_id: String) -> Result<(), GridsyncError> {
        Ok(self
            .engine()?
            .end_patrol(&patrol_id.parse().map_err(invalid)?)?)
    }

    /// Points recorded on a patrol.
    pub fn patrol_track_len(&self, patrol_id: String) -> Result<u64, GridsyncError> {
        Ok(self
            .engine()?
            .get_patrol(&patrol_id.parse().map_err(invalid)?)?
            .track
            .len() as u64)
    }

    /// A patrol with its track, check-ins, observations and cases.
    pub fn get_patrol(&self, patrol_id: String) -> Result<PatrolRecord, GridsyncError> {
        let patrol = self
            .engine()?
            .get_patrol(&patrol_id.parse().map_err(invalid)?)?;
        Ok(PatrolRecord::from(&patrol))
    }

    /// Check in (打卡) at a place on a patrol.
    pub fn check_in(
        &self,
        patrol_id: String,
        place: String,
        lat: f64,
        lon: f64,
    ) -> Result<(), GridsyncError> {
        Ok(self
            .engine()?
            .check_in(&patrol_id.parse().map_err(invalid)?, &place, lat, lon)?)
    }

    /// Record something noticed on a patrol that is not a case.
    pub fn add_observation(&self, patrol_id: String, text: String) -> Result<(), GridsyncError> {
        Ok(self
            .engine()?
            .add_observation(&patrol_id.parse().map_err(invalid)?, &text)?)
    }

    /// Record that a case was reported on a patrol.
    pub fn link_case_to_patrol(
        &self,
        patrol_id: String,
        case_id: String,
    ) -> Result<(), GridsyncError> {
        Ok(self.engine()?.link_case_to_patrol(
            &patrol_id.parse().map_err(invalid)?,
            &case_id.parse().map_err(invalid)?,
        )?)
    }

    /// Run a photo from the camera through the capture pipeline and store it.
    pub fn ingest_photo(
        &self,
        bytes: Vec<u8>,
        file_name: Option<String>,
    ) -> Result<PhotoRecord, GridsyncError> {
        let info = self.engine()?.ingest_photo(&bytes, file_name.as_deref())?;
        Ok(PhotoRecord::from(info))
    }

    /// The bytes of a stored photo (`NotFound` if it is not on this device:
    /// `fetch_photo` gets it).
    pub fn photo_bytes(&self, hash: String) -> Result<Vec<u8>, GridsyncError> {
        Ok(self.engine()?.photo(&hash.parse().map_err(invalid)?)?)
    }

    /// Whether a photo is on this device.
    pub fn has_photo(&self, hash: String) -> Result<bool, GridsyncError> {
        Ok(self.engine()?.has_photo(&hash.parse().map_err(invalid)?)?)
    }

    /// Attach a photo stored with `ingest_photo` to a case already reported.
    pub fn attach_photo(&self, case_id: String, hash: String) -> Result<(), GridsyncError> {
        Ok(self.engine()?.attach_photo(
            &case_id.parse().map_err(invalid)?,
            hash.parse().map_err(invalid)?,
        )?)
    }

    /// A photo of a case on this device, downloaded from the server if it is not
    /// here (another user took it, or it was evicted); progress (phase `fetch`)
    /// goes to `observer` after every chunk. The bytes are checked against the
    /// hash before they are stored.
    pub async fn fetch_photo(
        &self,
        hash: String,
        observer: Option<Arc<dyn SyncObserver>>,
    ) -> Result<Vec<u8>, GridsyncError> {
        let engine = self.engine()?;
        let hash: gridsync_core::PhotoHash = hash.parse().map_err(invalid)?;
        blocking(move || {
            engine.fetch_photo_reporting(&hash, &mut |p| {
                if let Some(o) = &observer {
                    o.on_progress(SyncProgress::from(p));
                }
            })?;
            Ok(engine.photo(&hash)?)
        })
        .await
    }

    /// The photos stored on this device and their bytes.
    pub fn photo_usage(&self) -> Result<PhotoUsageRecord, GridsyncError> {
        Ok(self.engine()?.photo_usage()?.into())
    }

    /// Keep display images within `max_bytes` by removing those the server has
    /// and whose cases are closed (they can be fetched again); thumbnails and
    /// photos not yet uploaded stay. Returns the bytes freed.
    pub fn evict_photos(&self, max_bytes: u64) -> Result<u64, GridsyncError> {
        Ok(self.engine()?.evict_photos(max_bytes)?)
    }

    /// Register a household at `address` in `grid` (a grid worker's own when
    /// `None`); returns its id.
    pub fn register_household(
        &self,
        grid: Option<String>,
        address: String,
    ) -> Result<String, GridsyncError> {
        let grid = grid.map(|g| g.parse()).transpose().map_err(invalid)?;
        Ok(self
            .engine()?
            .register_household(grid, &address)?
            .to_string())
    }

    /// Register a person; returns their id. A mistyped ID or phone number is
    /// `InvalidInput` with a Chinese message for the form that never repeats it.
    pub fn register_person(&self, person: NewPersonRecord) -> Result<String, GridsyncError> {
        let engine = self.engine()?;
        let person = person.into_core(engine.me()?.region)?;
        Ok(engine.register_person(person)?.to_string())
    }

    /// Change a person's own facts (the fields of `edit` that are set).
    pub fn edit_person(
        &self,
        person_id: String,
        edit: PersonEditRecord,
    ) -> Result<(), GridsyncError> {
        let id = person_id.parse().map_err(invalid)?;
        let edit = edit.try_into()?;
        Ok(self.engine()?.edit_person(&id, edit)?)
    }

    /// Move a person into a household (with the relationship to its head), or out
    /// of any household with `None`. Two workers moving the same person offline end
    /// in the same household on every device.
    pub fn move_person(
        &self,
        person_id: String,
        household: Option<MembershipRecord>,
    ) -> Result<(), GridsyncError> {
        let id = person_id.parse().map_err(invalid)?;
        let household = household.map(MembershipRecord::into_core).transpose()?;
        Ok(self.engine()?.move_person(&id, household)?)
    }

    /// Name a person the head of a household (户主); `None`: nobody.
    pub fn set_household_head(
        &self,
        household_id: String,
        person_id: Option<String>,
    ) -> Result<(), GridsyncError> {
        let household = household_id.parse().map_err(invalid)?;
        let person: Option<DocId> = person_id.map(|p| p.parse()).transpose().map_err(invalid)?;
        Ok(self
            .engine()?
            .set_household_head(&household, person.as_ref())?)
    }

    /// Record that a household left the grid (搬离), now. Once only.
    pub fn household_leaves(&self, household_id: String) -> Result<(), GridsyncError> {
        Ok(self
            .engine()?
            .household_leaves(&household_id.parse().map_err(invalid)?)?)
    }

    /// A person in full, ID and phone numbers unmasked: a detail view. Out of this
    /// user's region (or for a department handler) it is `NotFound`.
    pub fn get_person(&self, person_id: String) -> Result<PersonDetailRecord, GridsyncError> {
        let person = self
            .engine()?
            .get_person(&person_id.parse().map_err(invalid)?)?;
        Ok(PersonDetailRecord::from(&person))
    }

    /// A household (its members: `list_persons` with `household_id`).
    pub fn get_household(&self, household_id: String) -> Result<HouseholdRecord, GridsyncError> {
        let household = self
            .engine()?
            .get_household(&household_id.parse().map_err(invalid)?)?;
        Ok(HouseholdRecord::from(&household))
    }

    /// Persons within this user's region, by grid and name, ID and phone numbers
    /// masked. A department handler is `Refused`.
    pub fn list_persons(
        &self,
        filter: PersonFilterRecord,
    ) -> Result<Vec<PersonSummaryRecord>, GridsyncError> {
        let filter = filter.try_into()?;
        Ok(self
            .engine()?
            .list_persons(&filter)?
            .iter()
            .map(PersonSummaryRecord::from)
            .collect())
    }

    /// Persons, households, persons per special group and places (rental housing,
    /// its tenants, organisations) in each grid of `region` (this user's region
    /// when `None`, never beyond it) that holds any. A department handler is
    /// `Refused`.
    pub fn registry_counts(
        &self,
        region: Option<String>,
    ) -> Result<Vec<GridCountsRecord>, GridsyncError> {
        let region: Option<gridsync_core::RegionCode> =
            region.map(|r| r.parse()).transpose().map_err(invalid)?;
        Ok(self
            .engine()?
            .registry_counts(region.as_ref())?
            .iter()
            .map(GridCountsRecord::from)
            .collect())
    }

    /// Visit a household (入户走访) on one's own running patrol: the patrol gets a
    /// check-in naming the household, the household the visit with `findings`.
    /// The household must be in the patrol's grid and not have left.
    /// `photo_hash`, if given, is a photo stored on this device (`ingest_photo`);
    /// it is uploaded with the visit like a case's.
    #[uniffi::method(default(photo_hash = None))]
    pub fn visit(
        &self,
        patrol_id: String,
        household_id: String,
        findings: String,
        lat: f64,
        lon: f64,
        photo_hash: Option<String>,
    ) -> Result<(), GridsyncError> {
        Ok(self.engine()?.visit(
            &patrol_id.parse().map_err(invalid)?,
            &household_id.parse().map_err(invalid)?,
            &findings,
            lat,
            lon,
            records::photo_hash(photo_hash)?,
        )?)
    }

    /// The persons of this user's region due for a visit now (never visited
    /// first, then the longest since). A department handler is `Refused`.
    pub fn due_visits(&self) -> Result<Vec<DueVisitRecord>, GridsyncError> {
        Ok(self
            .engine()?
            .due_visits()?
            .iter()
            .map(DueVisitRecord::from)
            .collect())
    }

    /// Visit coverage of `region` (this user's when `None`) in a calendar month,
    /// China time: per grid and per worker.
    pub fn visit_coverage(
        &self,
        region: Option<String>,
        year: i32,
        month: u32,
    ) -> Result<VisitCoverageRecord, GridsyncError> {
        let region: Option<gridsync_core::RegionCode> =
            region.map(|r| r.parse()).transpose().map_err(invalid)?;
        Ok(self
            .engine()?
            .visit_coverage(region.as_ref(), year, month)?
            .into())
    }

    /// Points (积分) for a calendar month, China time, under the directory's points
    /// rules: a grid worker's own row, or every worker's of `region` (this user's
    /// when `None`) for a dispatcher, most points first. Empty when the directory
    /// awards no points; a department handler is `Refused`.
    pub fn points(
        &self,
        region: Option<String>,
        year: i32,
        month: u32,
    ) -> Result<Vec<WorkerPointsRecord>, GridsyncError> {
        let region: Option<gridsync_core::RegionCode> =
            region.map(|r| r.parse()).transpose().map_err(invalid)?;
        Ok(self
            .engine()?
            .points(region.as_ref(), year, month)?
            .into_iter()
            .map(WorkerPointsRecord::from)
            .collect())
    }

    /// The leaders' adjustments behind `points` for the same month, in the order
    /// they were made, with their reasons: a grid worker's own, or those of
    /// `region` (this user's when `None`) for a dispatcher.
    pub fn points_adjustments(
        &self,
        region: Option<String>,
        year: i32,
        month: u32,
    ) -> Result<Vec<PointsAdjustmentRecord>, GridsyncError> {
        let region: Option<gridsync_core::RegionCode> =
            region.map(|r| r.parse()).transpose().map_err(invalid)?;
        Ok(self
            .engine()?
            .points_adjustments(region.as_ref(), year, month)?
            .into_iter()
            .map(PointsAdjustmentRecord::from)
            .collect())
    }

    /// Add (positive) or take away (negative) points of grid worker `worker` for a
    /// month, with a reason; returns the adjustment's id. Only a community or town
    /// dispatcher over her grid (or an administrator): anyone else is `Refused`.
    /// Written once: it cannot be changed or removed afterwards.
    pub fn adjust_points(
        &self,
        worker: String,
        year: i32,
        month: u32,
        points: i32,
        reason: String,
    ) -> Result<String, GridsyncError> {
        use gridsync_core::doc::adjustment::{Month, NewAdjustment};
        let input = NewAdjustment {
            worker: worker.parse().map_err(invalid)?,
            month: Month::new(year, month).map_err(invalid)?,
            points,
            reason,
        };
        Ok(self.engine()?.adjust_points(input)?.to_string())
    }

    /// Register a place (a building, a dwelling, a shop or an enterprise, with the
    /// organisation running in it); returns its id. Occupancy is for dwellings,
    /// organisation facts for shops and enterprises; a credit code whose check
    /// character is wrong is `InvalidInput`. The building it is within and the
    /// organisation's contact must be a place and a person this user keeps.
    pub fn register_place(&self, place: NewPlaceRecord) -> Result<String, GridsyncError> {
        let engine = self.engine()?;
        let place = place.into_core(engine.me()?.region)?;
        Ok(engine.register_place(place)?.to_string())
    }

    /// Change a place's facts (the fields of `edit` that are set). Two workers
    /// editing the same place offline merge field by field.
    pub fn edit_place(&self, place_id: String, edit: PlaceEditRecord) -> Result<(), GridsyncError> {
        let id = records::doc_id(&place_id)?;
        let edit = edit.try_into()?;
        Ok(self.engine()?.edit_place(&id, edit)?)
    }

    /// Record that a household lives in the dwelling `place_id` (`None`: nowhere
    /// registered). A household living in a rented dwelling is its tenant. The
    /// dwelling must be in the household's grid.
    pub fn household_lives_at(
        &self,
        household_id: String,
        place_id: Option<String>,
    ) -> Result<(), GridsyncError> {
        let household = records::doc_id(&household_id)?;
        let place = place_id.as_deref().map(records::doc_id).transpose()?;
        Ok(self
            .engine()?
            .household_lives_at(&household, place.as_ref())?)
    }

    /// Inspect a place (安全检查) on one's own running patrol: the patrol gets a
    /// check-in naming the place, the place the inspection with `findings`
    /// (required when it fails). The place must be in the patrol's grid.
    /// `photo_hash`, if given, is a photo stored on this device (`ingest_photo`).
    #[uniffi::method(default(photo_hash = None))]
    #[allow(clippy::too_many_arguments)]
    pub fn inspect(
        &self,
        patrol_id: String,
        place_id: String,
        passed: bool,
        findings: String,
        lat: f64,
        lon: f64,
        photo_hash: Option<String>,
    ) -> Result<(), GridsyncError> {
        Ok(self.engine()?.inspect(
            &records::doc_id(&patrol_id)?,
            &records::doc_id(&place_id)?,
            passed,
            &findings,
            lat,
            lon,
            records::photo_hash(photo_hash)?,
        )?)
    }

    /// A place in full, with its inspections. Out of this user's region (or for a
    /// department handler) it is `NotFound`.
    pub fn get_place(&self, place_id: String) -> Result<PlaceDetailRecord, GridsyncError> {
        let place = self.engine()?.get_place(&records::doc_id(&place_id)?)?;
        Ok(PlaceDetailRecord::from(&place))
    }

    /// Places within this user's region, by grid, kind and name. A department
    /// handler is `Refused`.
    pub fn list_places(
        &self,
        filter: PlaceFilterRecord,
    ) -> Result<Vec<PlaceSummaryRecord>, GridsyncError> {
        let filter = filter.try_into()?;
        Ok(self
            .engine()?
            .list_places(&filter)?
            .iter()
            .map(PlaceSummaryRecord::from)
            .collect())
    }

    /// Push, pull and upload photos; progress goes to `observer`.
    pub async fn sync(
        &self,
        observer: Option<Arc<dyn SyncObserver>>,
    ) -> Result<SyncSummary, GridsyncError> {
        let engine = self.engine()?;
        blocking(move || {
            let mut report = |p: gridsync_core::sync::Progress| {
                if let Some(o) = &observer {
                    o.on_progress(SyncProgress::from(p));
                }
            };
            Ok(engine.sync(&mut report).map(SyncSummary::from)?)
        })
        .await
    }
}

fn summaries(rows: &[gridsync_core::CaseSummary]) -> Vec<CaseSummaryRecord> {
    rows.iter().map(CaseSummaryRecord::from).collect()
}

/// Run blocking engine work (network, disk) off the async runtime's threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, GridsyncError> + Send + 'static,
) -> Result<T, GridsyncError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| GridsyncError::Other {
            reason: e.to_string(),
        })?
}
