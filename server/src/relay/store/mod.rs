//! What the relay keeps besides the documents themselves: devices and their
//! tokens, one-time enrollment codes, the append-only change log with its sequence,
//! each document's visibility, and what each device has been sent.
//!
//! [`RelayStore`] is what the protocol needs; [`SqlStore`] implements it once, over
//! either database ([`sql::Database`]): SQLite in the data folder by default, or
//! PostgreSQL shared by several nodes (`database_url`).

mod notifications;
mod postgres;
pub mod sql;
mod sqlite;
mod upstream;

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use gridsync_core::sync::wire::{Backlog, MAX_CHANGES_PER_MESSAGE};
use gridsync_core::{DeptId, DeviceId, DocId, DocKind, RegionCode, UserId};

pub use self::notifications::{NewNotification, NotificationRecord, NotificationState, Settle};
pub use self::postgres::PgDb;
pub use self::sqlite::SqliteDb;
pub use self::upstream::{NotStored, UpstreamRefusal};
use sql::{args, Database, Held, Mode, Row, Tx, Value};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[error("relay storage: {message}")]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
}

/// Whether a storage failure is worth retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// A lock lost or not had in time, a dropped connection, a busy database, a
    /// serialisation conflict: the same request may well succeed in a moment.
    Transient,
    /// Anything else.
    Failed,
}

impl StoreError {
    /// A failure that retrying will not mend (also what a caller's step given
    /// to the store answers, as in [`RelayStore::remove_erased_photo`]).
    pub fn failed(message: impl Into<String>) -> Self {
        StoreError {
            kind: StoreErrorKind::Failed,
            message: message.into(),
        }
    }

    /// A failure that a retry may mend.
    pub(crate) fn transient(message: impl Into<String>) -> Self {
        StoreError {
            kind: StoreErrorKind::Transient,
            message: message.into(),
        }
    }

    /// Which kind of failure.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }
}

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// An enrolled device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// Its id.
    pub device: DeviceId,
    /// Its user.
    pub user: UserId,
    /// Revoked devices are told to wipe.
    pub revoked: bool,
    /// When its token stops working, ms since the epoch.
    pub expires_ms: i64,
    /// App version given at enrollment.
    pub app_version: String,
    /// Last request, ms since the epoch.
    pub last_seen_ms: Option<i64>,
    /// Last pull cursor the device sent.
    pub last_cursor: u64,
    /// A downstream relay (a town server syncing upward), not a phone: it forwards
    /// changes its own devices made and is trusted for its region.
    pub relay: bool,
    /// When its current token was issued (enrollment, or the last rotation), ms
    /// since the epoch.
    pub token_issued_ms: i64,
    /// The directory revision it said it holds at its last pull (0: none yet).
    pub directory_revision: u64,
}

/// Which of a device's tokens a request bore (see `docs/protocol.md`, "Token
/// rotation").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Its current token.
    Current,
    /// The token offered to replace the current one, not used until now.
    Next,
    /// A token it had before, retired (its successor used) at `retired_ms`.
    Retired {
        /// When its successor was first used, ms since the epoch.
        retired_ms: i64,
    },
}

/// Who may see a document: the grid it belongs to and, for a case, the department
/// it is dispatched to; and the photos it refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocScope {
    /// The grid.
    pub grid: RegionCode,
    /// The department, while dispatched.
    pub dept: Option<DeptId>,
    /// The photos (display images and thumbnails) it refers to, with who attached each.
    pub photos: Vec<(String, String)>,
}

/// What a user may see: a region subtree, and/or a department's cases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visibility {
    /// Whether the grid's base data (persons, households, places) in the region
    /// is sent too (`access::keeps_registry`, and downstream relays).
    pub registry: bool,
    /// The region subtree (none for department handlers).
    pub region: Option<RegionCode>,
    /// The department, for handlers.
    pub dept: Option<DeptId>,
}

impl From<&gridsync_core::access::Scope> for Visibility {
    /// The store's form of an access scope: a region subtree or a department
    /// (nothing at all for a handler without one).
    fn from(scope: &gridsync_core::access::Scope) -> Self {
        Visibility {
            registry: true,
            region: scope.region().cloned(),
            dept: scope.dept().cloned(),
        }
    }
}

/// One change to append to the log.
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// Change hash.
    pub hash: [u8; 32],
    /// Its document.
    pub doc: DocId,
    /// Raw change.
    pub bytes: Vec<u8>,
}

/// One pull page.
#[derive(Debug, Clone, Default)]
pub struct PullPage {
    /// (document, change bytes) in order.
    pub changes: Vec<(DocId, Vec<u8>)>,
    /// New cursor.
    pub cursor: u64,
    /// Whether more is waiting.
    pub more: bool,
    /// Documents to remove from the device.
    pub purge: Vec<DocId>,
    /// This page's number, for the device to acknowledge.
    pub page: u64,
    /// Of `purge`, the documents that were erased (ADR 0011).
    pub erased: Vec<DocId>,
}

/// What [`RelayStore::erase`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Erased {
    /// Erased; `new` is false if it had been erased before (its rows were
    /// deleted again). `photos`: the photos only it referred to, whose records
    /// are gone, left to remove ([`RelayStore::erased_photos_left`]).
    Done {
        /// Not erased before.
        new: bool,
        /// Hashes of the photos left to remove.
        photos: Vec<String>,
    },
    /// Not erased: a change of it arrived after the bound given.
    Renewed,
}

/// A tombstone: a registry document erased for good (ADR 0011). An id, a time and
/// a reason code; nothing about the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erasure {
    /// The erased document.
    pub doc: DocId,
    /// When, ms since the epoch.
    pub erased_ms: i64,
    /// Why: a reason code (`crate::relay::ErasureReason`).
    pub reason: String,
}

/// What a device says with a pull request.
#[derive(Debug, Clone, Default)]
pub struct PullAsk<'a> {
    /// Its cursor.
    pub cursor: u64,
    /// Most bytes of changes.
    pub max_bytes: u64,
    /// The last page it applied.
    pub ack_page: u64,
    /// Purges it applied.
    pub purged: &'a [DocId],
    /// The directory revision it holds, if it said.
    pub directory: Option<u64>,
}

/// One revision of the directory (`docs/directory-format.md`, "Revisions").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryRevision {
    /// Its number: 1, 2, …; the highest is the one in force.
    pub revision: u64,
    /// When it was made, ms since the epoch (0: kept from before revisions).
    pub created_ms: i64,
    /// Who made it in the console (none: the command line, a directory file or
    /// the upstream server).
    pub created_by: Option<String>,
    /// What changed, in a line.
    pub note: String,
}

/// One-time enrollment codes to store (hashed).
#[derive(Debug, Clone)]
pub struct EnrollmentBatch<'a> {
    /// Each code's user and the hash of the code.
    pub codes: &'a [(UserId, [u8; 32])],
    /// When they stop working, ms since the epoch.
    pub expires_ms: i64,
    /// Whether the device that redeems one is a downstream relay.
    pub relay: bool,
    /// Who issued them (none: the command line).
    pub issued_by: Option<&'a UserId>,
    /// When, ms since the epoch.
    pub issued_ms: i64,
}

/// An enrollment code as the console lists it: never the code itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrollment {
    /// The hash of the code: how the console names it.
    pub code_hash: [u8; 32],
    /// The user it enrolls a device for.
    pub user: UserId,
    /// For a downstream relay.
    pub relay: bool,
    /// When it was issued (0 for codes from before this was recorded).
    pub issued_ms: i64,
    /// Who issued it (none: the command line).
    pub issued_by: Option<String>,
    /// When it stops working.
    pub expires_ms: i64,
    /// When it was used, and by which device.
    pub used: Option<(i64, String)>,
    /// When it was withdrawn.
    pub revoked_ms: Option<i64>,
}

/// The relay's own storage.
pub trait RelayStore: Send + Sync {
    /// Store one-time codes (hashed), all in one transaction.
    fn create_enrollments(&self, batch: &EnrollmentBatch<'_>) -> StoreResult<()>;
    /// The codes issued at or after `since_ms`, newest first, at most `limit`.
    fn list_enrollments(&self, since_ms: i64, limit: u32) -> StoreResult<Vec<Enrollment>>;
    /// The code with this hash.
    fn find_enrollment(&self, code_hash: &[u8; 32]) -> StoreResult<Option<Enrollment>>;
    /// Disable a user who left, in one transaction: every device of theirs
    /// revoked, every unused code withdrawn, every console session ended. Answers
    /// how many devices were revoked (none if already disabled).
    fn disable_user(&self, user: &UserId, by: Option<&UserId>, now_ms: i64) -> StoreResult<usize>;
    /// Enable a disabled user again (her devices stay revoked: she enrolls anew).
    fn enable_user(&self, user: &UserId) -> StoreResult<bool>;
    /// The disabled users: who, since when, disabled by whom.
    fn disabled_users(&self) -> StoreResult<Vec<(UserId, i64, Option<String>)>>;
    /// Whether a user is disabled.
    fn is_disabled(&self, user: &UserId) -> StoreResult<bool>;
    /// Store `json` (validated by the caller) as the revision after `after`, with
    /// the former entries (`(user, entry JSON)`) of the users it moves, in one
    /// transaction; answers its number, or `None` if `after` is no longer the
    /// newest (another node or process stored one meanwhile).
    fn put_directory(
        &self,
        json: &str,
        by: Option<&UserId>,
        note: &str,
        now_ms: i64,
        moved: &[(UserId, String)],
        after: u64,
    ) -> StoreResult<Option<u64>>;
    /// Users' former entries (`(user, entry JSON, until, the revision that moved
    /// her)`) of revisions stored at or after `since_ms`.
    fn former_placements(&self, since_ms: i64) -> StoreResult<Vec<(UserId, String, i64, u64)>>;
    /// The number of the newest revision (0: none yet).
    fn directory_revision(&self) -> StoreResult<u64>;
    /// The newest revision and its JSON.
    fn latest_directory(&self) -> StoreResult<Option<(DirectoryRevision, String)>>;
    /// The newest revisions, newest first, at most `limit` (without their JSON).
    fn directory_history(&self, limit: u32) -> StoreResult<Vec<DirectoryRevision>>;
    /// Withdraw a code not yet used; false if it is unknown, used or withdrawn.
    fn revoke_enrollment(&self, code_hash: &[u8; 32], now_ms: i64) -> StoreResult<bool>;
    /// Redeem a code once: records the device with its hashed token and returns the
    /// user, or `None` if the code is unknown, used or expired.
    #[allow(clippy::too_many_arguments)]
    fn redeem_enrollment(
        &self,
        code_hash: &[u8; 32],
        device: DeviceId,
        token_hash: &[u8; 32],
        app_version: &str,
        now_ms: i64,
        token_expires_ms: i64,
    ) -> StoreResult<Option<UserId>>;
    /// The device holding a token as its current one.
    fn device_by_token(&self, token_hash: &[u8; 32]) -> StoreResult<Option<DeviceRecord>>;
    /// The device a token is or was issued to, and which of its tokens it is.
    fn find_token(&self, token_hash: &[u8; 32]) -> StoreResult<Option<(DeviceRecord, TokenKind)>>;
    /// Offer `next` as the successor of `device`'s token, if `current` still is its
    /// token and it is not revoked. A successor offered before (its answer lost, or
    /// taken by a copy of the device) is retired at `now_ms`. False if not offered.
    fn offer_token(
        &self,
        device: DeviceId,
        current: &[u8; 32],
        next: &[u8; 32],
        now_ms: i64,
    ) -> StoreResult<bool>;
    /// `next`, the offered successor of `device`'s token, was used: it becomes the
    /// token (issued at `now_ms`) and the old one is retired at `now_ms`. Retired
    /// tokens of the device from before `forget_before_ms` are forgotten. False if
    /// `next` is not offered (any more).
    fn confirm_token(
        &self,
        device: DeviceId,
        next: &[u8; 32],
        now_ms: i64,
        forget_before_ms: i64,
    ) -> StoreResult<bool>;
    /// Revoke a device; false if unknown.
    fn revoke(&self, device: DeviceId, now_ms: i64) -> StoreResult<bool>;
    /// Every device.
    fn devices(&self) -> StoreResult<Vec<DeviceRecord>>;
    /// Append accepted changes (idempotent by hash), update their documents'
    /// visibility, and note that `device` has those documents. With `expect_top`,
    /// nothing is stored unless the log still ends there. Answers the log's last
    /// sequence number after it.
    fn append(
        &self,
        device: DeviceId,
        entries: &[LogEntry],
        scopes: &[(DocId, DocScope)],
        now_ms: i64,
        expect_top: Option<u64>,
    ) -> StoreResult<u64> {
        self.append_timed(device, entries, scopes, &[], now_ms, expect_top)
    }
    /// [`RelayStore::append`], recording in the same transaction that the case
    /// timeline entries `received` (document, entry id) were received at `now_ms`
    /// — unless an earlier receipt is recorded: the first one counts.
    fn append_timed(
        &self,
        device: DeviceId,
        entries: &[LogEntry],
        scopes: &[(DocId, DocScope)],
        received: &[(DocId, String)],
        now_ms: i64,
        expect_top: Option<u64>,
    ) -> StoreResult<u64>;
    /// When the relay received each recorded timeline entry of case `doc`: (entry
    /// id, ms since the epoch by the relay's clock).
    fn entry_receipts(&self, doc: &DocId) -> StoreResult<Vec<(String, i64)>>;
    /// When this relay last received a change of `doc`, by its own clock.
    fn last_received(&self, doc: &DocId) -> StoreResult<Option<i64>>;
    /// Hold the lock under which a push checks changes against the replica and
    /// logs them, across every node on this store, until the answer is dropped.
    fn lock_pushes(&self) -> StoreResult<Box<dyn Held + '_>>;
    /// Whether several nodes may share this store (each keeping its own replica).
    fn shared(&self) -> bool;
    /// How many of its connections can work at once (threads beyond them wait).
    fn connections(&self) -> usize;
    /// The log's last sequence number (0 if empty).
    fn log_top(&self) -> StoreResult<u64>;
    /// The next page for `device` after `cursor`.
    fn pull(
        &self,
        device: DeviceId,
        vis: &Visibility,
        ask: &PullAsk<'_>,
        now_ms: i64,
    ) -> StoreResult<PullPage>;
    /// Number of changes in the log.
    fn log_len(&self) -> StoreResult<u64>;
    /// Devices not revoked, how many are behind the end of the log, and the sum of
    /// the changes after their cursors (visible or not: an upper bound).
    fn cursor_lag(&self) -> StoreResult<(u64, u64, u64)>;
    /// Whether `device` is enrolled here (a phone, a relay) or is a console account's.
    fn is_local_device(&self, device: DeviceId) -> StoreResult<bool>;
    /// Log entries after `seq`, except those received from `except` (in order, at
    /// most about `max_bytes` of changes, at least one), each with its sequence
    /// number: what a relay forwards upstream, and what a node's replica catches
    /// up with.
    fn log_after(
        &self,
        seq: u64,
        except: Option<DeviceId>,
        max_bytes: u64,
    ) -> StoreResult<Vec<(u64, LogEntry)>>;
    /// Stored blobs in the order they were stored, after position `after` and up to
    /// `upto` (inclusive), at most `limit`, each with its position: what a relay
    /// sends upstream. The last position is [`RelayStore::last_blob`].
    fn blobs_after(&self, after: i64, upto: i64, limit: u32) -> StoreResult<Vec<(i64, String)>>;
    /// The position of the blob stored last (0 if none).
    fn last_blob(&self) -> StoreResult<i64>;
    /// Set several values of the relay's own settings in one transaction.
    fn set_metas(&self, values: &[(&str, String)]) -> StoreResult<()>;
    /// A value of the relay's own settings (`meta`), if set.
    fn meta(&self, key: &str) -> StoreResult<Option<String>>;
    /// A value of the relay's own settings, set to `value` if it had none (the
    /// first node to ask decides).
    fn meta_or_insert(&self, key: &str, value: &str) -> StoreResult<String>;
    /// Set a value of the relay's own settings.
    fn set_meta(&self, key: &str, value: &str) -> StoreResult<()>;
    /// Settings whose key starts with `prefix` (no `%` or `_` in it), at most
    /// `limit`, in key order.
    fn metas_with_prefix(&self, prefix: &str, limit: u32) -> StoreResult<Vec<(String, String)>>;
    /// Remove settings, in one transaction.
    fn delete_metas(&self, keys: &[String]) -> StoreResult<()>;
    /// Changes after `cursor` that a device with `vis` may see and did not push
    /// itself, and their bytes: what its next pulls will bring; counted up to
    /// `cap` changes (the scan is the cost).
    fn backlog(
        &self,
        device: DeviceId,
        vis: &Visibility,
        cursor: u64,
        cap: u64,
    ) -> StoreResult<Backlog>;
    /// Whether a document that refers to photo `hash` is visible to `vis`.
    fn photo_visible(&self, hash: &str, vis: &Visibility) -> StoreResult<bool>;
    /// Whether `user` attached photo `hash` to some document.
    fn photo_attached_by(&self, hash: &str, user: &str) -> StoreResult<bool>;
    /// Whether a document `vis` may not see refers to photo `hash`.
    fn photo_referenced_outside(&self, hash: &str, vis: &Visibility) -> StoreResult<bool>;
    /// The size of a stored blob, if stored.
    fn blob_size(&self, hash: &str) -> StoreResult<Option<u64>>;
    /// Record a blob as stored (after its file is durable). A removal of the
    /// same bytes left by an erasure is called off; one that ran before this
    /// recorded them may have taken the file: see `Relay::keep_blob`.
    fn record_blob(&self, hash: &str, size: u64, now_ms: i64) -> StoreResult<()>;
    /// Set a console password (its PHC hash) for `user`; the account's device is
    /// `device` when the account is new, and kept otherwise. Every session of the
    /// user ends. Returns the account's device.
    fn set_console_password(
        &self,
        user: &UserId,
        password_hash: &str,
        device: DeviceId,
    ) -> StoreResult<DeviceId>;
    /// A console account: its password hash and device.
    fn console_account(&self, user: &UserId) -> StoreResult<Option<(String, DeviceId)>>;
    /// Start a console session (hashed token) with its CSRF token.
    fn create_session(
        &self,
        token_hash: &[u8; 32],
        user: &UserId,
        csrf: &str,
        expires_ms: i64,
    ) -> StoreResult<()>;
    /// A live session: its user and CSRF token. Expired sessions are removed.
    fn session(&self, token_hash: &[u8; 32], now_ms: i64) -> StoreResult<Option<(UserId, String)>>;
    /// End a session.
    fn end_session(&self, token_hash: &[u8; 32]) -> StoreResult<()>;
    /// Erase document `doc` from the log (ADR 0011): its log rows, scope, photo
    /// references (and the records of photos no other document refers to),
    /// receipts and queued notifications are deleted and a permanent tombstone
    /// recorded, in one transaction. Which devices hold it (`device_docs`) is
    /// kept, so their pulls are told to purge it until they acknowledge. With
    /// `renewed_after`, nothing is done if a change of it was received later
    /// (a case a push renewed after its retention was judged).
    fn erase(
        &self,
        doc: &DocId,
        reason: &str,
        now_ms: i64,
        renewed_after: Option<i64>,
    ) -> StoreResult<Erased>;
    /// After erasures: make the deleted rows unreadable on disk.
    fn scrub(&self) -> StoreResult<()>;
    /// Whether erasures committed since the last scrub that finished: a mark
    /// `erase` sets, for [`RelayStore::scrubbed`] to clear.
    fn scrub_pending(&self) -> StoreResult<Option<String>>;
    /// A scrub finished that began when [`RelayStore::scrub_pending`] answered
    /// `mark`: the mark is cleared unless an erasure set it again meanwhile.
    fn scrubbed(&self, mark: &str) -> StoreResult<()>;
    /// The photos erased documents left to remove from the photo store, after
    /// `after` in hash order, up to `limit`: recorded by `erase` in its
    /// transaction, so a crash or a failed removal after it leaves them here,
    /// not as files nothing names.
    fn erased_photos_left(&self, after: &str, limit: u32) -> StoreResult<Vec<String>>;
    /// Remove erased photo `hash` with `remove` (its file) and forget it, under
    /// the photo's lock that [`RelayStore::record_blob`] takes too: a photo
    /// recorded again since (the same bytes uploaded for another document) is
    /// kept and only forgotten. A forgotten one marks a scrub as owed (its hash
    /// was in the row). Answers whether `remove` ran.
    fn remove_erased_photo(
        &self,
        hash: &str,
        remove: &mut dyn FnMut() -> StoreResult<()>,
    ) -> StoreResult<bool>;
    /// Whether `doc` was erased.
    fn is_erased(&self, doc: &DocId) -> StoreResult<bool>;
    /// Of the change `hashes`, those already in the log, each with the document
    /// it was logged for.
    fn logged_docs(&self, hashes: &[[u8; 32]]) -> StoreResult<Vec<([u8; 32], DocId)>>;
    /// The tombstones recorded at or after `since_ms`, oldest first.
    fn erasures(&self, since_ms: i64) -> StoreResult<Vec<Erasure>>;
    /// How many tombstones there are.
    fn erasure_count(&self) -> StoreResult<u64>;
    /// Note that `device` holds `doc` (it pushed a change of it that was refused
    /// because it is erased), so its next pull tells it to purge it.
    fn hold_for_purge(&self, device: DeviceId, doc: &DocId) -> StoreResult<()>;
    /// Queue each outbound message not queued before (same case, rule, recipient
    /// and occurrence); how many were new.
    fn queue_notifications(&self, batch: &[NewNotification]) -> StoreResult<u64>;
    /// Queued messages due at `now_ms`, at most `limit`.
    fn due_notifications(&self, now_ms: i64, limit: u32) -> StoreResult<Vec<NotificationRecord>>;
    /// Take a due message for one attempt until `lease_ms`; false if another node
    /// took it first.
    fn claim_notification(&self, id: i64, seen_next_ms: i64, lease_ms: i64) -> StoreResult<bool>;
    /// Record what became of an attempt.
    fn settle_notification(&self, id: i64, outcome: &Settle) -> StoreResult<()>;
    /// When messages were sent to `recipient` at or after `since_ms`, oldest first.
    fn notifications_sent_since(&self, recipient: &UserId, since_ms: i64) -> StoreResult<Vec<i64>>;
    /// The messages about a case (at most 200), in the order they were queued.
    fn notifications_of(&self, doc: &DocId) -> StoreResult<Vec<NotificationRecord>>;
    /// How many messages are in each state (states without any are left out).
    fn notification_counts(&self) -> StoreResult<Vec<(NotificationState, u64)>>;
    /// Tiers: record the upstream's answers to a push, the changes it did not
    /// store (counted again if already recorded) and those it stored (forgotten).
    fn record_upstream_answers(
        &self,
        not_stored: &[NotStored],
        stored: &[[u8; 32]],
        now_ms: i64,
    ) -> StoreResult<()>;
    /// Deferred changes to send upstream again: after log position `after`, sent
    /// fewer than `max_attempts` times, in log order, up to about `max_bytes`.
    fn upstream_retries(
        &self,
        after: u64,
        max_attempts: u64,
        max_bytes: u64,
    ) -> StoreResult<Vec<(u64, LogEntry)>>;
    /// The changes the upstream did not store, of documents `vis` covers, most
    /// recently answered first (at most `limit`), and how many there are.
    fn upstream_refusals(
        &self,
        vis: &Visibility,
        limit: u32,
    ) -> StoreResult<(Vec<UpstreamRefusal>, u64)>;
    /// Photos referred to here but not stored, to fetch from the upstream: asked
    /// fewer than `max_attempts` times and due by `now_ms`, with how often each
    /// was missed; at most `limit`.
    fn photos_missing(
        &self,
        now_ms: i64,
        max_attempts: u64,
        limit: u32,
    ) -> StoreResult<Vec<(String, u64)>>;
    /// The upstream did not give a photo: ask again from `next_ms`.
    fn photo_missed(&self, hash: &str, next_ms: i64) -> StoreResult<()>;
}

/// Open the relay's store: PostgreSQL when `database_url` is given, otherwise
/// `relay.db` in `data`.
pub fn open_store(data: &Path, database_url: Option<&str>) -> StoreResult<Arc<dyn RelayStore>> {
    Ok(match database_url {
        Some(url) => Arc::new(SqlStore::new(PgDb::open(url)?)),
        None => Arc::new(SqlStore::new(SqliteDb::open(&data.join("relay.db"))?)),
    })
}

/// Backlogs are counted up to this many changes ("more than" beyond it), so a
/// device that never synced does not cost a scan of the whole log.
pub const BACKLOG_CAP: u64 = 10_000;

/// The `meta` key of the mark that erasures await a scrub.
const SCRUB_PENDING: &str = "scrub-pending";
/// The prefix of the `meta` keys of erased photos still to remove.
const ERASED_PHOTO: &str = "erased-photo:";

/// Just past every key that starts with [`ERASED_PHOTO`] (`;` follows `:`).
const ERASED_PHOTO_END: &str = "erased-photo;";

fn erased_photo_key(hash: &str) -> String {
    format!("{ERASED_PHOTO}{hash}")
}

/// Mark that a scrub is owed, with a new `mark` each time so that a scrub that
/// began before does not clear it.
fn mark_scrub(tx: &mut dyn Tx, mark: &str) -> StoreResult<()> {
    tx.exec(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        args![SCRUB_PENDING, mark],
    )?;
    Ok(())
}

/// Log rows read at once while a pull fills its page.
const PULL_BATCH: i64 = 500;

/// Change hashes looked up in the log by one statement
/// ([`RelayStore::logged_docs`]).
const LOOKUP_CHUNK: usize = 500;

/// The `?2`, `?3`, `?4` arguments of [`VISIBLE`]: the region range and department.
fn visible_args(vis: &Visibility) -> [Value; 3] {
    [
        vis.region.as_ref().map(|r| r.as_str()).into(),
        vis.region.as_ref().map(|r| format!("{r}:")).into(),
        vis.dept.as_ref().map(|d| d.as_str()).into(),
    ]
}

/// Whether document scope `s` is visible (`?2`–`?4`, see [`visible_args`]).
const VISIBLE: &str = "((CAST(?2 AS TEXT) IS NOT NULL AND s.grid >= ?2 AND s.grid < ?3)
     OR (CAST(?4 AS TEXT) IS NOT NULL AND s.dept = ?4))";

/// [`VISIBLE`], narrowed to documents that are not base data when `vis` does not
/// take it.
fn visible_sql(vis: &Visibility) -> &'static str {
    static WITHOUT_REGISTRY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let not_registry: Vec<String> = DocKind::ALL
            .into_iter()
            .filter(|k| k.is_registry())
            .map(|k| format!("s.doc_id NOT LIKE '{}-%'", k.as_str()))
            .collect();
        format!("({VISIBLE} AND {})", not_registry.join(" AND "))
    });
    if vis.registry {
        VISIBLE
    } else {
        &WITHOUT_REGISTRY
    }
}

/// `?1` the device, `?2`–`?4` its visibility, then `rest`.
fn device_vis_args(device: &str, vis: &Visibility, rest: &[Value]) -> Vec<Value> {
    let mut out = vec![Value::from(device)];
    out.extend(visible_args(vis));
    out.extend_from_slice(rest);
    out
}

const DEVICE_COLUMNS: &str = "device_id, user_id, revoked_ms, app_version, last_seen_ms,
     last_cursor, expires_ms, relay, token_issued_ms, directory_revision";
/// How many columns [`DEVICE_COLUMNS`] names: a query's next column is at this index.
const DEVICE_COLUMN_COUNT: usize = 10;

fn device_row(r: &Row) -> StoreResult<DeviceRecord> {
    Ok(DeviceRecord {
        device: r.parse(0)?,
        user: r.parse(1)?,
        revoked: r.opt_int(2)?.is_some(),
        app_version: r.text(3)?,
        last_seen_ms: r.opt_int(4)?,
        last_cursor: r.count(5)?,
        expires_ms: r.int(6)?,
        relay: r.bool(7)?,
        token_issued_ms: r.int(8)?,
        directory_revision: r.count(9)?,
    })
}

fn seq_arg(seq: u64) -> Value {
    Value::from(seq)
}

/// The relay's store, written once over either database.
pub struct SqlStore<D> {
    db: D,
}

impl<D: Database> SqlStore<D> {
    /// A store on `db`.
    pub fn new(db: D) -> Self {
        SqlStore { db }
    }

    fn read<T>(&self, f: impl FnOnce(&mut dyn Tx) -> StoreResult<T>) -> StoreResult<T> {
        self.db.transaction(Mode::Read, f)
    }

    fn write<T>(&self, f: impl FnOnce(&mut dyn Tx) -> StoreResult<T>) -> StoreResult<T> {
        self.db.transaction(Mode::Write, f)
    }

    fn exists(&self, sql: &str, args: &[Value]) -> StoreResult<bool> {
        self.read(|tx| tx.one(sql, args)?.bool(0))
    }

    fn top(tx: &mut dyn Tx) -> StoreResult<u64> {
        tx.one("SELECT coalesce(max(seq), 0) FROM log", &[])?
            .count(0)
    }
}

/// The documents of a pull page and what it has taken so far.
struct Filling {
    page: PullPage,
    bytes: u64,
    max_bytes: u64,
    sent_docs: Vec<DocId>,
}

impl Filling {
    /// Whether `changes` more changes of `size` bytes still fit (the first always does).
    fn fits(&self, changes: usize, size: u64) -> bool {
        self.page.changes.is_empty()
            || (self.bytes + size <= self.max_bytes
                && self.page.changes.len() + changes <= MAX_CHANGES_PER_MESSAGE)
    }
}

/// What [`enrollment`] reads, in its order.
const ENROLLMENT_COLUMNS: &str = "code_hash, user_id, relay, issued_ms, issued_by, expires_ms, \
     used_ms, device_id, revoked_ms";

/// An `enrollments` row read with [`ENROLLMENT_COLUMNS`].
fn directory_revision(r: &Row) -> StoreResult<DirectoryRevision> {
    Ok(DirectoryRevision {
        revision: r.count(0)?,
        created_ms: r.int(1)?,
        created_by: r.opt_text(2)?,
        note: r.text(3)?,
    })
}

fn enrollment(r: &Row) -> StoreResult<Enrollment> {
    let code_hash: [u8; 32] = r
        .bytes(0)?
        .try_into()
        .map_err(|_| StoreError::failed("a code hash of the wrong length"))?;
    Ok(Enrollment {
        code_hash,
        user: r.parse(1)?,
        relay: r.bool(2)?,
        issued_ms: r.int(3)?,
        issued_by: r.opt_text(4)?,
        expires_ms: r.int(5)?,
        used: match (r.opt_int(6)?, r.opt_text(7)?) {
            (Some(at), Some(device)) => Some((at, device)),
            _ => None,
        },
        revoked_ms: r.opt_int(8)?,
    })
}

impl<D: Database> RelayStore for SqlStore<D> {
    fn create_enrollments(&self, b: &EnrollmentBatch<'_>) -> StoreResult<()> {
        let by = b.issued_by.map(UserId::as_str);
        self.write(|tx| {
            for (user, hash) in b.codes {
                tx.exec(
                    "INSERT INTO enrollments
                        (code_hash, user_id, expires_ms, relay, issued_ms, issued_by)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    args![
                        &hash[..],
                        user.as_str(),
                        b.expires_ms,
                        b.relay,
                        b.issued_ms,
                        by
                    ],
                )?;
            }
            Ok(())
        })
    }

    fn list_enrollments(&self, since_ms: i64, limit: u32) -> StoreResult<Vec<Enrollment>> {
        let rows = self.read(|tx| {
            tx.rows(
                &format!(
                    "SELECT {ENROLLMENT_COLUMNS} FROM enrollments WHERE issued_ms >= ?1
                     ORDER BY issued_ms DESC, user_id LIMIT ?2"
                ),
                args![since_ms, i64::from(limit)],
            )
        })?;
        rows.iter().map(enrollment).collect()
    }

    fn find_enrollment(&self, code_hash: &[u8; 32]) -> StoreResult<Option<Enrollment>> {
        self.read(|tx| {
            tx.row(
                &format!("SELECT {ENROLLMENT_COLUMNS} FROM enrollments WHERE code_hash = ?1"),
                args![&code_hash[..]],
            )
        })?
        .as_ref()
        .map(enrollment)
        .transpose()
    }

    fn disable_user(&self, user: &UserId, by: Option<&UserId>, now_ms: i64) -> StoreResult<usize> {
        let (user, by) = (user.as_str(), by.map(UserId::as_str));
        self.write(|tx| {
            let fresh = tx.exec(
                "INSERT INTO disabled_users (user_id, disabled_ms, disabled_by) VALUES (?1, ?2, ?3)
                 ON CONFLICT (user_id) DO NOTHING",
                args![user, now_ms, by],
            )?;
            if fresh == 0 {
                return Ok(0);
            }
            let revoked = tx.exec(
                "UPDATE devices SET revoked_ms = ?2 WHERE user_id = ?1 AND revoked_ms IS NULL",
                args![user, now_ms],
            )?;
            tx.exec(
                "UPDATE enrollments SET revoked_ms = ?2
                 WHERE user_id = ?1 AND used_ms IS NULL AND revoked_ms IS NULL",
                args![user, now_ms],
            )?;
            tx.exec(
                "DELETE FROM console_sessions WHERE user_id = ?1",
                args![user],
            )?;
            Ok(usize::try_from(revoked).unwrap_or(usize::MAX))
        })
    }

    fn is_disabled(&self, user: &UserId) -> StoreResult<bool> {
        self.exists(
            "SELECT EXISTS (SELECT 1 FROM disabled_users WHERE user_id = ?1)",
            args![user.as_str()],
        )
    }

    fn enable_user(&self, user: &UserId) -> StoreResult<bool> {
        let n = self.write(|tx| {
            tx.exec(
                "DELETE FROM disabled_users WHERE user_id = ?1",
                args![user.as_str()],
            )
        })?;
        Ok(n > 0)
    }

    fn disabled_users(&self) -> StoreResult<Vec<(UserId, i64, Option<String>)>> {
        self.read(|tx| {
            tx.rows(
                "SELECT user_id, disabled_ms, disabled_by FROM disabled_users ORDER BY user_id",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.parse(0)?, r.int(1)?, r.opt_text(2)?)))
            .collect()
        })
    }

    fn put_directory(
        &self,
        json: &str,
        by: Option<&UserId>,
        note: &str,
        now_ms: i64,
        moved: &[(UserId, String)],
        after: u64,
    ) -> StoreResult<Option<u64>> {
        let by = by.map(UserId::as_str);
        self.write(|tx| {
            // Stored only on top of `after`; two at once collide on the number and
            // the second stores nothing (SQLite's upsert after a SELECT needs the
            // WHERE).
            let Some(row) = tx.row(
                "INSERT INTO directory_versions (revision, json, created_ms, created_by, note)
                 SELECT COALESCE(MAX(revision), 0) + 1, ?1, ?2, ?3, ?4 FROM directory_versions
                 WHERE true HAVING COALESCE(MAX(revision), 0) = ?5
                 ON CONFLICT (revision) DO NOTHING
                 RETURNING revision",
                args![json, now_ms, by, note, after],
            )?
            else {
                return Ok(None);
            };
            let revision = row.int(0)?;
            for (user, entry) in moved {
                tx.exec(
                    "INSERT INTO former_placements (user_id, user_json, until_ms, revision)
                     VALUES (?1, ?2, ?3, ?4)",
                    args![user.as_str(), entry.as_str(), now_ms, revision],
                )?;
            }
            Ok(Some(revision.max(0) as u64))
        })
    }

    fn former_placements(&self, since_ms: i64) -> StoreResult<Vec<(UserId, String, i64, u64)>> {
        self.read(|tx| {
            tx.rows(
                "SELECT user_id, user_json, until_ms, revision FROM former_placements
                 WHERE until_ms >= ?1 ORDER BY until_ms",
                args![since_ms],
            )?
            .iter()
            .map(|r| Ok((r.parse(0)?, r.text(1)?, r.int(2)?, r.count(3)?)))
            .collect()
        })
    }

    fn directory_revision(&self) -> StoreResult<u64> {
        self.read(|tx| {
            match tx.row(
                "SELECT COALESCE(MAX(revision), 0) FROM directory_versions",
                &[],
            )? {
                Some(r) => r.count(0),
                None => Ok(0),
            }
        })
    }

    fn latest_directory(&self) -> StoreResult<Option<(DirectoryRevision, String)>> {
        self.read(|tx| {
            tx.row(
                "SELECT revision, created_ms, created_by, note, json FROM directory_versions
                 ORDER BY revision DESC LIMIT 1",
                &[],
            )?
            .map(|r| Ok((directory_revision(&r)?, r.text(4)?)))
            .transpose()
        })
    }

    fn directory_history(&self, limit: u32) -> StoreResult<Vec<DirectoryRevision>> {
        self.read(|tx| {
            tx.rows(
                "SELECT revision, created_ms, created_by, note FROM directory_versions
                 ORDER BY revision DESC LIMIT ?1",
                args![i64::from(limit)],
            )?
            .iter()
            .map(directory_revision)
            .collect()
        })
    }

    fn revoke_enrollment(&self, code_hash: &[u8; 32], now_ms: i64) -> StoreResult<bool> {
        self.write(|tx| {
            Ok(tx
                .row(
                    "UPDATE enrollments SET revoked_ms = ?2
                     WHERE code_hash = ?1 AND used_ms IS NULL AND revoked_ms IS NULL
                     RETURNING user_id",
                    args![&code_hash[..], now_ms],
                )?
                .is_some())
        })
    }

    fn redeem_enrollment(
        &self,
        code_hash: &[u8; 32],
        device: DeviceId,
        token_hash: &[u8; 32],
        app_version: &str,
        now_ms: i64,
        token_expires_ms: i64,
    ) -> StoreResult<Option<UserId>> {
        let device = device.to_string();
        self.write(|tx| {
            let taken = tx
                .one(
                    "SELECT EXISTS (SELECT 1 FROM devices WHERE device_id = ?1)",
                    args![device.as_str()],
                )?
                .bool(0)?;
            if taken {
                // A device id is enrolled once; the code stays unused.
                return Ok(None);
            }
            let Some(redeemed) = tx.row(
                "UPDATE enrollments SET used_ms = ?2, device_id = ?3
                 WHERE code_hash = ?1 AND used_ms IS NULL AND revoked_ms IS NULL
                   AND expires_ms > ?2
                 RETURNING user_id, relay",
                args![&code_hash[..], now_ms, device.as_str()],
            )?
            else {
                return Ok(None);
            };
            let (user, relay) = (redeemed.text(0)?, redeemed.bool(1)?);
            tx.exec(
                "INSERT INTO devices
                    (device_id, user_id, token_hash, app_version, enrolled_ms, expires_ms, relay,
                     token_issued_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?5)",
                args![
                    device.as_str(),
                    user.as_str(),
                    &token_hash[..],
                    app_version,
                    now_ms,
                    token_expires_ms,
                    relay
                ],
            )?;
            user.parse()
                .map(Some)
                .map_err(|_| StoreError::failed("a malformed user id"))
        })
    }

    fn device_by_token(&self, token_hash: &[u8; 32]) -> StoreResult<Option<DeviceRecord>> {
        self.read(|tx| {
            tx.row(
                &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE token_hash = ?1"),
                args![&token_hash[..]],
            )?
            .as_ref()
            .map(device_row)
            .transpose()
        })
    }

    fn find_token(&self, token_hash: &[u8; 32]) -> StoreResult<Option<(DeviceRecord, TokenKind)>> {
        let live = self.read(|tx| {
            tx.row(
                &format!(
                    "SELECT {DEVICE_COLUMNS}, CASE WHEN token_hash = ?1 THEN 1 ELSE 0 END
                     FROM devices WHERE token_hash = ?1 OR next_token_hash = ?1"
                ),
                args![&token_hash[..]],
            )
        })?;
        if let Some(r) = live {
            let kind = if r.bool(DEVICE_COLUMN_COUNT)? {
                TokenKind::Current
            } else {
                TokenKind::Next
            };
            return Ok(Some((device_row(&r)?, kind)));
        }
        self.read(|tx| {
            tx.row(
                &format!(
                    "SELECT {DEVICE_COLUMNS}, r.retired_ms
                     FROM retired_tokens r JOIN devices USING (device_id)
                     WHERE r.token_hash = ?1"
                ),
                args![&token_hash[..]],
            )?
            .map(|r| {
                let retired_ms = r.int(DEVICE_COLUMN_COUNT)?;
                Ok((device_row(&r)?, TokenKind::Retired { retired_ms }))
            })
            .transpose()
        })
    }

    fn offer_token(
        &self,
        device: DeviceId,
        current: &[u8; 32],
        next: &[u8; 32],
        now_ms: i64,
    ) -> StoreResult<bool> {
        let dev = device.to_string();
        let n = self.write(|tx| {
            // The device that took the replaced successor is not this one (which
            // asks again with its current token): a copy, if it ever uses it.
            tx.exec(
                "INSERT INTO retired_tokens (token_hash, device_id, retired_ms)
                 SELECT next_token_hash, device_id, ?3 FROM devices
                 WHERE device_id = ?1 AND token_hash = ?2 AND revoked_ms IS NULL
                   AND next_token_hash IS NOT NULL
                 ON CONFLICT DO NOTHING",
                args![dev.as_str(), &current[..], now_ms],
            )?;
            tx.exec(
                "UPDATE devices SET next_token_hash = ?3
                 WHERE device_id = ?1 AND token_hash = ?2 AND revoked_ms IS NULL",
                args![dev.as_str(), &current[..], &next[..]],
            )
        })?;
        Ok(n == 1)
    }

    fn confirm_token(
        &self,
        device: DeviceId,
        next: &[u8; 32],
        now_ms: i64,
        forget_before_ms: i64,
    ) -> StoreResult<bool> {
        let dev = device.to_string();
        self.write(|tx| {
            tx.exec(
                "INSERT INTO retired_tokens (token_hash, device_id, retired_ms)
                 SELECT token_hash, device_id, ?3 FROM devices
                 WHERE device_id = ?1 AND next_token_hash = ?2
                 ON CONFLICT DO NOTHING",
                args![dev.as_str(), &next[..], now_ms],
            )?;
            let promoted = tx.exec(
                "UPDATE devices
                 SET token_hash = next_token_hash, next_token_hash = NULL, token_issued_ms = ?3
                 WHERE device_id = ?1 AND next_token_hash = ?2",
                args![dev.as_str(), &next[..], now_ms],
            )?;
            tx.exec(
                "DELETE FROM retired_tokens WHERE device_id = ?1 AND retired_ms < ?2",
                args![dev.as_str(), forget_before_ms],
            )?;
            Ok(promoted == 1)
        })
    }

    fn revoke(&self, device: DeviceId, now_ms: i64) -> StoreResult<bool> {
        let n = self.write(|tx| {
            tx.exec(
                "UPDATE devices SET revoked_ms = ?2 WHERE device_id = ?1 AND revoked_ms IS NULL",
                args![device.to_string(), now_ms],
            )
        })?;
        Ok(n > 0)
    }

    fn devices(&self) -> StoreResult<Vec<DeviceRecord>> {
        self.read(|tx| {
            tx.rows(
                &format!("SELECT {DEVICE_COLUMNS} FROM devices ORDER BY enrolled_ms"),
                &[],
            )?
            .iter()
            .map(device_row)
            .collect()
        })
    }

    fn append_timed(
        &self,
        device: DeviceId,
        entries: &[LogEntry],
        scopes: &[(DocId, DocScope)],
        received: &[(DocId, String)],
        now_ms: i64,
        expect_top: Option<u64>,
    ) -> StoreResult<u64> {
        let dev = device.to_string();
        self.db.transaction(Mode::Append, |tx| {
            if let Some(expected) = expect_top {
                let top = Self::top(tx)?;
                if top != expected {
                    return Err(StoreError::transient(format!(
                        "the log ends at {top}, not at {expected} where this push's checks \
                         stood (its push lock was lost?); nothing stored, the device will retry"
                    )));
                }
            }
            // The device's row first, as a pull takes it first: no deadlock.
            tx.exec(
                "UPDATE devices SET last_seen_ms = ?2 WHERE device_id = ?1",
                args![dev.as_str(), now_ms],
            )?;
            // An erasure that committed while this push was being checked wins:
            // nothing of an erased document enters the log again.
            let mut erased = std::collections::HashSet::new();
            for doc in entries
                .iter()
                .map(|e| &e.doc)
                .chain(scopes.iter().map(|(d, _)| d))
            {
                if !erased.contains(doc) && erased_in(tx, doc)? {
                    erased.insert(doc.clone());
                }
            }
            for e in entries.iter().filter(|e| !erased.contains(&e.doc)) {
                tx.exec(
                    "INSERT INTO log (hash, doc_id, device_id, bytes, received_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                    args![
                        &e.hash[..],
                        e.doc.as_str(),
                        dev.as_str(),
                        &e.bytes[..],
                        now_ms
                    ],
                )?;
            }
            for (doc, s) in scopes.iter().filter(|(d, _)| !erased.contains(d)) {
                tx.exec(
                    "INSERT INTO doc_scope (doc_id, grid, dept) VALUES (?1, ?2, ?3)
                     ON CONFLICT (doc_id) DO UPDATE SET grid = excluded.grid, dept = excluded.dept",
                    args![
                        doc.as_str(),
                        s.grid.as_str(),
                        s.dept.as_ref().map(|d| d.as_str())
                    ],
                )?;
                for (hash, by) in &s.photos {
                    tx.exec(
                        "INSERT INTO doc_photos (doc_id, hash, added_by) VALUES (?1, ?2, ?3)
                         ON CONFLICT DO NOTHING",
                        args![doc.as_str(), hash.as_str(), by.as_str()],
                    )?;
                }
                tx.exec(
                    "INSERT INTO device_docs (device_id, doc_id, sent_page) VALUES (?1, ?2, 0)
                     ON CONFLICT (device_id, doc_id) DO UPDATE SET sent_page = 0",
                    args![dev.as_str(), doc.as_str()],
                )?;
            }
            for (doc, entry) in received.iter().filter(|(d, _)| !erased.contains(d)) {
                tx.exec(
                    "INSERT INTO entry_receipts (doc_id, entry_id, received_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT DO NOTHING",
                    args![doc.as_str(), entry.as_str(), now_ms],
                )?;
            }
            Self::top(tx)
        })
    }

    fn entry_receipts(&self, doc: &DocId) -> StoreResult<Vec<(String, i64)>> {
        self.read(|tx| {
            tx.rows(
                "SELECT entry_id, received_ms FROM entry_receipts WHERE doc_id = ?1",
                args![doc.as_str()],
            )?
            .iter()
            .map(|r| Ok((r.text(0)?, r.int(1)?)))
            .collect()
        })
    }

    fn last_received(&self, doc: &DocId) -> StoreResult<Option<i64>> {
        self.read(|tx| {
            let row = tx.one(
                "SELECT max(received_ms) FROM log WHERE doc_id = ?1",
                args![doc.as_str()],
            )?;
            row.opt_int(0)
        })
    }

    fn lock_pushes(&self) -> StoreResult<Box<dyn Held + '_>> {
        self.db.lock_pushes()
    }

    fn shared(&self) -> bool {
        self.db.shared()
    }

    fn connections(&self) -> usize {
        self.db.connections()
    }

    fn log_top(&self) -> StoreResult<u64> {
        self.read(|tx| Self::top(tx))
    }

    fn pull(
        &self,
        device: DeviceId,
        vis: &Visibility,
        ask: &PullAsk<'_>,
        now_ms: i64,
    ) -> StoreResult<PullPage> {
        let dev = device.to_string();
        let cursor = ask.cursor;
        if let Some(page) = self.read(|tx| quiet_pull(tx, &dev, vis, ask, now_ms))? {
            return Ok(page);
        }
        self.write(|tx| {
            // Everything up to `top` is committed (appends become visible in
            // order), so the cursor may move up to it and never past a change
            // still being committed.
            let top = Self::top(tx)?;
            let page_no = tx
                .one(
                    "UPDATE devices SET last_page = last_page + 1 WHERE device_id = ?1
                     RETURNING last_page",
                    args![dev.as_str()],
                )?
                .count(0)?;
            // Histories sent in a page the device never applied must be sent again.
            tx.exec(
                "DELETE FROM device_docs WHERE device_id = ?1 AND sent_page > ?2",
                args![dev.as_str(), ask.ack_page],
            )?;
            for doc in ask.purged {
                tx.exec(
                    "DELETE FROM device_docs WHERE device_id = ?1 AND doc_id = ?2",
                    args![dev.as_str(), doc.as_str()],
                )?;
            }
            let mut fill = Filling {
                page: PullPage {
                    cursor,
                    page: page_no,
                    ..Default::default()
                },
                bytes: 0,
                max_bytes: ask.max_bytes,
                sent_docs: Vec::new(),
            };
            let full = pull_new_documents(tx, &dev, vis, cursor, &mut fill)?
                || pull_log(tx, &dev, vis, top, &mut fill)?;
            if !full {
                // Nothing more for this device: skip past what it may not see.
                fill.page.cursor = fill.page.cursor.max(top);
            }
            fill.page.more = full;
            for doc in &fill.sent_docs {
                tx.exec(
                    "INSERT INTO device_docs (device_id, doc_id, sent_page) VALUES (?1, ?2, ?3)
                     ON CONFLICT DO NOTHING",
                    args![dev.as_str(), doc.as_str(), page_no],
                )?;
            }
            (fill.page.purge, fill.page.erased) = purge_lists(tx, &dev, vis)?;
            tx.exec(
                "UPDATE devices SET last_seen_ms = ?2, last_cursor = ?3,
                 directory_revision = COALESCE(?4, directory_revision) WHERE device_id = ?1",
                args![dev.as_str(), now_ms, cursor, ask.directory],
            )?;
            Ok(fill.page)
        })
    }

    fn log_len(&self) -> StoreResult<u64> {
        self.read(|tx| tx.one("SELECT count(*) FROM log", &[])?.count(0))
    }

    fn cursor_lag(&self) -> StoreResult<(u64, u64, u64)> {
        self.read(|tx| {
            let r = tx.one(
                "SELECT count(*),
                        CAST(coalesce(sum(CASE WHEN last_cursor < m.top THEN 1 ELSE 0 END), 0) AS BIGINT),
                        CAST(coalesce(sum(CASE WHEN last_cursor < m.top THEN m.top - last_cursor ELSE 0 END), 0) AS BIGINT)
                 FROM devices, (SELECT coalesce(max(seq), 0) AS top FROM log) m
                 WHERE revoked_ms IS NULL",
                &[],
            )?;
            Ok((r.count(0)?, r.count(1)?, r.count(2)?))
        })
    }

    fn is_local_device(&self, device: DeviceId) -> StoreResult<bool> {
        self.exists(
            "SELECT EXISTS (SELECT 1 FROM devices WHERE device_id = ?1)
                 OR EXISTS (SELECT 1 FROM console_accounts WHERE device_id = ?1)",
            args![device.to_string()],
        )
    }

    fn log_after(
        &self,
        seq: u64,
        except: Option<DeviceId>,
        max_bytes: u64,
    ) -> StoreResult<Vec<(u64, LogEntry)>> {
        let rows = self.read(|tx| {
            tx.rows(
                "SELECT seq, hash, doc_id, bytes FROM log
                 WHERE seq > ?1 AND (CAST(?2 AS TEXT) IS NULL OR device_id != ?2)
                 ORDER BY seq LIMIT ?3",
                args![
                    seq_arg(seq),
                    except.map(|d| d.to_string()),
                    MAX_CHANGES_PER_MESSAGE as i64
                ],
            )
        })?;
        let mut out = Vec::new();
        let mut bytes = 0u64;
        for r in rows {
            let change = r.bytes(3)?;
            if !out.is_empty() && bytes + change.len() as u64 > max_bytes {
                break;
            }
            bytes += change.len() as u64;
            let hash: [u8; 32] = r
                .bytes(1)?
                .try_into()
                .map_err(|_| StoreError::failed("a log hash is not 32 bytes"))?;
            out.push((
                r.count(0)?,
                LogEntry {
                    hash,
                    doc: r.parse(2)?,
                    bytes: change,
                },
            ));
        }
        Ok(out)
    }

    fn blobs_after(&self, after: i64, upto: i64, limit: u32) -> StoreResult<Vec<(i64, String)>> {
        self.read(|tx| {
            tx.rows(
                "SELECT pos, hash FROM blobs WHERE pos > ?1 AND pos <= ?2 ORDER BY pos LIMIT ?3",
                args![after, upto, i64::from(limit)],
            )?
            .iter()
            .map(|r| Ok((r.int(0)?, r.text(1)?)))
            .collect()
        })
    }

    fn last_blob(&self) -> StoreResult<i64> {
        self.read(|tx| {
            tx.one("SELECT coalesce(max(pos), 0) FROM blobs", &[])?
                .int(0)
        })
    }

    fn set_metas(&self, values: &[(&str, String)]) -> StoreResult<()> {
        self.write(|tx| {
            for (key, value) in values {
                tx.exec(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    args![*key, value.as_str()],
                )?;
            }
            Ok(())
        })
    }

    fn meta(&self, key: &str) -> StoreResult<Option<String>> {
        self.read(|tx| {
            tx.row("SELECT value FROM meta WHERE key = ?1", args![key])?
                .map(|r| r.text(0))
                .transpose()
        })
    }

    fn meta_or_insert(&self, key: &str, value: &str) -> StoreResult<String> {
        self.write(|tx| {
            tx.exec(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                args![key, value],
            )?;
            tx.one("SELECT value FROM meta WHERE key = ?1", args![key])?
                .text(0)
        })
    }

    fn set_meta(&self, key: &str, value: &str) -> StoreResult<()> {
        self.set_metas(&[(key, value.to_owned())])
    }

    fn metas_with_prefix(&self, prefix: &str, limit: u32) -> StoreResult<Vec<(String, String)>> {
        self.read(|tx| {
            tx.rows(
                "SELECT key, value FROM meta WHERE key LIKE ?1 ORDER BY key LIMIT ?2",
                args![format!("{prefix}%"), i64::from(limit)],
            )?
            .iter()
            .map(|r| Ok((r.text(0)?, r.text(1)?)))
            .collect()
        })
    }

    fn delete_metas(&self, keys: &[String]) -> StoreResult<()> {
        self.write(|tx| {
            for key in keys {
                tx.exec("DELETE FROM meta WHERE key = ?1", args![key.as_str()])?;
            }
            Ok(())
        })
    }

    fn backlog(
        &self,
        device: DeviceId,
        vis: &Visibility,
        cursor: u64,
        cap: u64,
    ) -> StoreResult<Backlog> {
        let visible = visible_sql(vis);
        self.read(|tx| {
            let row = tx.one(
                &format!(
                    "SELECT count(*), coalesce(sum(b.n), 0) FROM (
                       SELECT length(l.bytes) AS n FROM log l JOIN doc_scope s ON s.doc_id = l.doc_id
                       WHERE l.seq > ?5 AND l.device_id != ?1 AND {visible} LIMIT {cap}) AS b"
                ),
                &device_vis_args(&device.to_string(), vis, &[seq_arg(cursor)]),
            )?;
            Ok(Backlog {
                changes: row.count(0)?,
                bytes: row.count(1)?,
            })
        })
    }

    fn photo_visible(&self, hash: &str, vis: &Visibility) -> StoreResult<bool> {
        self.exists(
            &format!(
                "SELECT EXISTS (SELECT 1 FROM doc_photos p JOIN doc_scope s USING (doc_id)
                 WHERE p.hash = ?1 AND {VISIBLE})"
            ),
            &device_vis_args(hash, vis, &[]),
        )
    }

    fn photo_attached_by(&self, hash: &str, user: &str) -> StoreResult<bool> {
        self.exists(
            "SELECT EXISTS (SELECT 1 FROM doc_photos WHERE hash = ?1 AND added_by = ?2)",
            args![hash, user],
        )
    }

    fn photo_referenced_outside(&self, hash: &str, vis: &Visibility) -> StoreResult<bool> {
        self.exists(
            &format!(
                "SELECT EXISTS (SELECT 1 FROM doc_photos p JOIN doc_scope s USING (doc_id)
                 WHERE p.hash = ?1 AND NOT {VISIBLE})"
            ),
            &device_vis_args(hash, vis, &[]),
        )
    }

    fn blob_size(&self, hash: &str) -> StoreResult<Option<u64>> {
        self.read(|tx| {
            tx.row("SELECT size FROM blobs WHERE hash = ?1", args![hash])?
                .map(|r| r.count(0))
                .transpose()
        })
    }

    fn record_blob(&self, hash: &str, size: u64, now_ms: i64) -> StoreResult<()> {
        // Like the log's sequence, blob positions must become visible in order: an
        // upstream round sends photos up to the last position it sees.
        self.db.transaction(Mode::Append, |tx| {
            // Not while an erasure's removal of the same bytes runs.
            tx.lock_photo(hash)?;
            tx.exec(
                "INSERT INTO blobs (hash, size, stored_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
                args![hash, size, now_ms],
            )?;
            tx.exec(
                "DELETE FROM meta WHERE key = ?1",
                args![erased_photo_key(hash)],
            )
        })?;
        Ok(())
    }

    fn set_console_password(
        &self,
        user: &UserId,
        password_hash: &str,
        device: DeviceId,
    ) -> StoreResult<DeviceId> {
        self.write(|tx| {
            tx.exec(
                "INSERT INTO console_accounts (user_id, password_hash, device_id) VALUES (?1, ?2, ?3)
                 ON CONFLICT (user_id) DO UPDATE SET password_hash = excluded.password_hash",
                args![user.as_str(), password_hash, device.to_string()],
            )?;
            tx.exec(
                "DELETE FROM console_sessions WHERE user_id = ?1",
                args![user.as_str()],
            )?;
            tx.one(
                "SELECT device_id FROM console_accounts WHERE user_id = ?1",
                args![user.as_str()],
            )?
            .parse(0)
        })
    }

    fn console_account(&self, user: &UserId) -> StoreResult<Option<(String, DeviceId)>> {
        self.read(|tx| {
            tx.row(
                "SELECT password_hash, device_id FROM console_accounts WHERE user_id = ?1",
                args![user.as_str()],
            )?
            .map(|r| Ok((r.text(0)?, r.parse(1)?)))
            .transpose()
        })
    }

    fn create_session(
        &self,
        token_hash: &[u8; 32],
        user: &UserId,
        csrf: &str,
        expires_ms: i64,
    ) -> StoreResult<()> {
        self.write(|tx| {
            tx.exec(
                "INSERT INTO console_sessions (token_hash, user_id, csrf, expires_ms)
                 VALUES (?1, ?2, ?3, ?4)",
                args![&token_hash[..], user.as_str(), csrf, expires_ms],
            )
        })?;
        Ok(())
    }

    fn session(&self, token_hash: &[u8; 32], now_ms: i64) -> StoreResult<Option<(UserId, String)>> {
        self.write(|tx| {
            tx.exec(
                "DELETE FROM console_sessions WHERE expires_ms <= ?1",
                args![now_ms],
            )?;
            tx.row(
                "SELECT user_id, csrf FROM console_sessions WHERE token_hash = ?1",
                args![&token_hash[..]],
            )?
            .map(|r| Ok((r.parse(0)?, r.text(1)?)))
            .transpose()
        })
    }

    fn end_session(&self, token_hash: &[u8; 32]) -> StoreResult<()> {
        self.write(|tx| {
            tx.exec(
                "DELETE FROM console_sessions WHERE token_hash = ?1",
                args![&token_hash[..]],
            )
        })?;
        Ok(())
    }

    fn erase(
        &self,
        doc: &DocId,
        reason: &str,
        now_ms: i64,
        renewed_after: Option<i64>,
    ) -> StoreResult<Erased> {
        // In append order: a push that is logging this document either committed
        // before (its rows are deleted here, or it renewed the case) or sees the
        // tombstone (see `append`).
        self.db.transaction(Mode::Append, |tx| {
            if let Some(bound) = renewed_after {
                let renewed = tx.row(
                    "SELECT 1 FROM log WHERE doc_id = ?1 AND received_ms > ?2",
                    args![doc.as_str(), bound],
                )?;
                if renewed.is_some() {
                    return Ok(Erased::Renewed);
                }
            }
            let photos = tx
                .rows(
                    "SELECT d.hash FROM doc_photos d WHERE d.doc_id = ?1 AND NOT EXISTS (
                         SELECT 1 FROM doc_photos o WHERE o.hash = d.hash AND o.doc_id <> ?1)
                     ORDER BY d.hash",
                    args![doc.as_str()],
                )?
                .iter()
                .map(|r| r.text(0))
                .collect::<StoreResult<Vec<_>>>()?;
            for hash in &photos {
                tx.exec("DELETE FROM blobs WHERE hash = ?1", args![hash.as_str()])?;
                tx.exec(
                    "DELETE FROM upstream_photo_misses WHERE hash = ?1",
                    args![hash.as_str()],
                )?;
                tx.exec(
                    "INSERT INTO meta (key, value) VALUES (?1, '') ON CONFLICT DO NOTHING",
                    args![erased_photo_key(hash)],
                )?;
            }
            for sql in [
                "DELETE FROM log WHERE doc_id = ?1",
                "DELETE FROM doc_scope WHERE doc_id = ?1",
                "DELETE FROM doc_photos WHERE doc_id = ?1",
                "DELETE FROM notifications WHERE doc_id = ?1",
                "DELETE FROM upstream_refusals WHERE doc_id = ?1",
                "DELETE FROM entry_receipts WHERE doc_id = ?1",
            ] {
                tx.exec(sql, args![doc.as_str()])?;
            }
            let new = tx.exec(
                "INSERT INTO erased (doc_id, erased_ms, reason) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
                args![doc.as_str(), now_ms, reason],
            )?;
            mark_scrub(tx, &format!("{now_ms}-{doc}"))?;
            Ok(Erased::Done {
                new: new == 1,
                photos,
            })
        })
    }

    fn scrub(&self) -> StoreResult<()> {
        self.db.scrub()
    }

    fn scrub_pending(&self) -> StoreResult<Option<String>> {
        self.meta(SCRUB_PENDING)
    }

    fn scrubbed(&self, mark: &str) -> StoreResult<()> {
        self.write(|tx| {
            tx.exec(
                "DELETE FROM meta WHERE key = ?1 AND value = ?2",
                args![SCRUB_PENDING, mark],
            )
        })?;
        Ok(())
    }

    fn erased_photos_left(&self, after: &str, limit: u32) -> StoreResult<Vec<String>> {
        // A range, not LIKE: the same on both databases, and by the key's index.
        self.read(|tx| {
            tx.rows(
                "SELECT key FROM meta WHERE key > ?1 AND key < ?2 ORDER BY key LIMIT ?3",
                args![erased_photo_key(after), ERASED_PHOTO_END, i64::from(limit)],
            )?
            .iter()
            .map(|r| {
                let key = r.text(0)?;
                Ok(key[ERASED_PHOTO.len()..].to_owned())
            })
            .collect()
        })
    }

    fn remove_erased_photo(
        &self,
        hash: &str,
        remove: &mut dyn FnMut() -> StoreResult<()>,
    ) -> StoreResult<bool> {
        // Under the photo's lock, as `record_blob`: the file goes only while no
        // record of it can appear. Not the log's: a slow photo store does not
        // hold up the pushes of every node.
        self.db.transaction(Mode::Write, |tx| {
            tx.lock_photo(hash)?;
            let key = erased_photo_key(hash);
            if tx
                .row("SELECT 1 FROM meta WHERE key = ?1", args![key.as_str()])?
                .is_none()
            {
                return Ok(false);
            }
            let recorded = tx
                .row("SELECT 1 FROM blobs WHERE hash = ?1", args![hash])?
                .is_some();
            if !recorded {
                remove()?;
            }
            tx.exec("DELETE FROM meta WHERE key = ?1", args![key.as_str()])?;
            // Its hash was in the row: a scrub is owed (the mark says nothing of it).
            mark_scrub(tx, &format!("photo-{}", Utc::now().timestamp_micros()))?;
            Ok(!recorded)
        })
    }

    fn is_erased(&self, doc: &DocId) -> StoreResult<bool> {
        self.read(|tx| erased_in(tx, doc))
    }

    fn logged_docs(&self, hashes: &[[u8; 32]]) -> StoreResult<Vec<([u8; 32], DocId)>> {
        // One statement for every lookup, written once (PostgreSQL prepares each
        // text once per connection): a short last chunk repeats its last hash.
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            let marks: Vec<String> = (1..=LOOKUP_CHUNK).map(|i| format!("?{i}")).collect();
            format!(
                "SELECT hash, doc_id FROM log WHERE hash IN ({})",
                marks.join(", ")
            )
        });
        let sql = SQL.as_str();
        let mut found = Vec::new();
        for chunk in hashes.chunks(LOOKUP_CHUNK) {
            let args: Vec<Value> = (0..LOOKUP_CHUNK)
                .map(|i| Value::Bytes(chunk[i.min(chunk.len() - 1)].to_vec()))
                .collect();
            for r in self.read(|tx| tx.rows(sql, &args))? {
                let hash = <[u8; 32]>::try_from(r.bytes(0)?)
                    .map_err(|_| StoreError::failed("a logged change hash is not 32 bytes"))?;
                found.push((hash, r.parse(1)?));
            }
        }
        Ok(found)
    }

    fn erasures(&self, since_ms: i64) -> StoreResult<Vec<Erasure>> {
        self.read(|tx| {
            tx.rows(
                "SELECT doc_id, erased_ms, reason FROM erased WHERE erased_ms >= ?1
                 ORDER BY erased_ms, doc_id",
                args![since_ms],
            )?
            .iter()
            .map(|r| {
                Ok(Erasure {
                    doc: r.parse(0)?,
                    erased_ms: r.int(1)?,
                    reason: r.text(2)?,
                })
            })
            .collect()
        })
    }

    fn erasure_count(&self) -> StoreResult<u64> {
        self.read(|tx| tx.one("SELECT count(*) FROM erased", &[])?.count(0))
    }

    fn hold_for_purge(&self, device: DeviceId, doc: &DocId) -> StoreResult<()> {
        self.write(|tx| {
            tx.exec(
                "INSERT INTO device_docs (device_id, doc_id, sent_page) VALUES (?1, ?2, 0)
                 ON CONFLICT DO NOTHING",
                args![device.to_string(), doc.as_str()],
            )
        })?;
        Ok(())
    }

    fn queue_notifications(&self, batch: &[NewNotification]) -> StoreResult<u64> {
        self.write(|tx| notifications::queue(tx, batch))
    }

    fn due_notifications(&self, now_ms: i64, limit: u32) -> StoreResult<Vec<NotificationRecord>> {
        self.read(|tx| notifications::due(tx, now_ms, limit))
    }

    fn claim_notification(&self, id: i64, seen_next_ms: i64, lease_ms: i64) -> StoreResult<bool> {
        self.write(|tx| notifications::claim(tx, id, seen_next_ms, lease_ms))
    }

    fn settle_notification(&self, id: i64, outcome: &Settle) -> StoreResult<()> {
        self.write(|tx| notifications::settle(tx, id, outcome))
    }

    fn notifications_sent_since(&self, recipient: &UserId, since_ms: i64) -> StoreResult<Vec<i64>> {
        self.read(|tx| notifications::sent_since(tx, recipient, since_ms))
    }

    fn notifications_of(&self, doc: &DocId) -> StoreResult<Vec<NotificationRecord>> {
        self.read(|tx| notifications::of_case(tx, doc))
    }

    fn notification_counts(&self) -> StoreResult<Vec<(NotificationState, u64)>> {
        self.read(notifications::counts)
    }

    fn record_upstream_answers(
        &self,
        not_stored: &[NotStored],
        stored: &[[u8; 32]],
        now_ms: i64,
    ) -> StoreResult<()> {
        self.write(|tx| upstream::record(tx, not_stored, stored, now_ms))
    }

    fn upstream_retries(
        &self,
        after: u64,
        max_attempts: u64,
        max_bytes: u64,
    ) -> StoreResult<Vec<(u64, LogEntry)>> {
        self.read(|tx| {
            upstream::retries(tx, after, max_attempts, MAX_CHANGES_PER_MESSAGE, max_bytes)
        })
    }

    fn upstream_refusals(
        &self,
        vis: &Visibility,
        limit: u32,
    ) -> StoreResult<(Vec<UpstreamRefusal>, u64)> {
        self.read(|tx| upstream::list(tx, vis, limit))
    }

    fn photos_missing(
        &self,
        now_ms: i64,
        max_attempts: u64,
        limit: u32,
    ) -> StoreResult<Vec<(String, u64)>> {
        self.read(|tx| upstream::photos_missing(tx, now_ms, max_attempts, limit))
    }

    fn photo_missed(&self, hash: &str, next_ms: i64) -> StoreResult<()> {
        self.write(|tx| upstream::photo_missed(tx, hash, next_ms))
    }
}

/// Whether `doc` has a tombstone.
fn erased_in(tx: &mut dyn Tx, doc: &DocId) -> StoreResult<bool> {
    tx.one(
        "SELECT EXISTS (SELECT 1 FROM erased WHERE doc_id = ?1)",
        args![doc.as_str()],
    )?
    .bool(0)
}

/// Documents that became visible to the device with history before its cursor
/// arrive whole. Answers whether the page is full.
/// How stale a device's `last_seen_ms` may be before a pull that changes nothing
/// else writes it: the console shows it to the minute.
const LAST_SEEN_PRECISION_MS: i64 = 60_000;

/// The answer to a pull that has nothing to send and nothing to record, read
/// without a write transaction — most pulls of a device in the field, which
/// syncs when nothing is new; or `None` when the pull must go the written way.
///
/// Nothing to record: the cursor is at the end of the log and recorded there,
/// no page since `ack_page` sent a document's history (one that did is sent
/// again), no purge is acknowledged, the directory revision is the recorded one
/// and the device was last seen within [`LAST_SEEN_PRECISION_MS`]. Nothing to
/// send: no document has become visible to it. The answer repeats the device's
/// last page number (a page that sent nothing needs none of its own) and the
/// purge lists, which a read gives as the written way does.
fn quiet_pull(
    tx: &mut dyn Tx,
    dev: &str,
    vis: &Visibility,
    ask: &PullAsk<'_>,
    now_ms: i64,
) -> StoreResult<Option<PullPage>> {
    let Some(row) = tx.row(
        "SELECT last_page, last_cursor, last_seen_ms, directory_revision,
                EXISTS (SELECT 1 FROM device_docs WHERE device_id = ?1 AND sent_page > ?2),
                (SELECT coalesce(max(seq), 0) FROM log)
         FROM devices WHERE device_id = ?1",
        args![dev, ask.ack_page],
    )?
    else {
        return Ok(None);
    };
    let (page, recorded_cursor, seen_ms, revision, unacked, top) = (
        row.count(0)?,
        row.count(1)?,
        row.opt_int(2)?,
        row.count(3)?,
        row.bool(4)?,
        row.count(5)?,
    );
    let quiet = ask.cursor == top
        && recorded_cursor == top
        && !unacked
        && ask.purged.is_empty()
        && ask.directory.is_none_or(|d| d == revision)
        && seen_ms.is_some_and(|seen| (0..LAST_SEEN_PRECISION_MS).contains(&(now_ms - seen)));
    if !quiet {
        return Ok(None);
    }
    let mut fill = Filling {
        page: PullPage {
            cursor: ask.cursor,
            page,
            ..Default::default()
        },
        bytes: 0,
        max_bytes: ask.max_bytes,
        sent_docs: Vec::new(),
    };
    if pull_new_documents(tx, dev, vis, ask.cursor, &mut fill)? || !fill.sent_docs.is_empty() {
        return Ok(None);
    }
    (fill.page.purge, fill.page.erased) = purge_lists(tx, dev, vis)?;
    Ok(Some(fill.page))
}

/// What a device holds and must remove: documents it may no longer see and, of
/// them, those erased (whose scope rows are gone with them), as a pull answers
/// them — the purge list with the erased at its end, and the erased.
fn purge_lists(
    tx: &mut dyn Tx,
    dev: &str,
    vis: &Visibility,
) -> StoreResult<(Vec<DocId>, Vec<DocId>)> {
    let mut purge: Vec<DocId> = tx
        .rows(
            &format!(
                "SELECT d.doc_id FROM device_docs d JOIN doc_scope s USING (doc_id)
                 WHERE d.device_id = ?1 AND NOT {}",
                visible_sql(vis)
            ),
            &device_vis_args(dev, vis, &[]),
        )?
        .iter()
        .map(|r| r.parse(0))
        .collect::<StoreResult<_>>()?;
    let erased: Vec<DocId> = tx
        .rows(
            "SELECT d.doc_id FROM device_docs d JOIN erased e USING (doc_id)
             WHERE d.device_id = ?1 ORDER BY d.doc_id",
            args![dev],
        )?
        .iter()
        .map(|r| r.parse(0))
        .collect::<StoreResult<_>>()?;
    purge.extend(erased.iter().cloned());
    Ok((purge, erased))
}

fn pull_new_documents(
    tx: &mut dyn Tx,
    dev: &str,
    vis: &Visibility,
    cursor: u64,
    fill: &mut Filling,
) -> StoreResult<bool> {
    let docs = tx.rows(
        &format!(
            "SELECT s.doc_id FROM doc_scope s
             WHERE {}
               AND NOT EXISTS (SELECT 1 FROM device_docs d WHERE d.device_id = ?1 AND d.doc_id = s.doc_id)
               AND EXISTS (SELECT 1 FROM log l WHERE l.doc_id = s.doc_id AND l.seq <= ?5)",
            visible_sql(vis)
        ),
        &device_vis_args(dev, vis, &[seq_arg(cursor)]),
    )?;
    for doc in docs {
        let doc: DocId = doc.parse(0)?;
        let changes = tx
            .rows(
                "SELECT bytes FROM log WHERE doc_id = ?1 AND seq <= ?2 ORDER BY seq",
                args![doc.as_str(), seq_arg(cursor)],
            )?
            .iter()
            .map(|r| r.bytes(0))
            .collect::<StoreResult<Vec<_>>>()?;
        let size: u64 = changes.iter().map(|c| c.len() as u64).sum();
        if !fill.fits(changes.len(), size) {
            return Ok(true);
        }
        fill.bytes += size;
        fill.page
            .changes
            .extend(changes.into_iter().map(|c| (doc.clone(), c)));
        fill.sent_docs.push(doc);
    }
    Ok(false)
}

/// The log after the cursor, up to `top`, that the device may see and did not push
/// itself, a batch of rows at a time. Answers whether the page is full.
fn pull_log(
    tx: &mut dyn Tx,
    dev: &str,
    vis: &Visibility,
    top: u64,
    fill: &mut Filling,
) -> StoreResult<bool> {
    loop {
        let rows = tx.rows(
            &format!(
                "SELECT l.seq, l.doc_id, l.bytes, l.device_id = ?1 FROM log l JOIN doc_scope s USING (doc_id)
                 WHERE l.seq > ?5 AND l.seq <= ?6 AND {} ORDER BY l.seq LIMIT ?7",
                visible_sql(vis)
            ),
            &device_vis_args(
                dev,
                vis,
                &[seq_arg(fill.page.cursor), seq_arg(top), Value::Int(PULL_BATCH)],
            ),
        )?;
        let last_batch = (rows.len() as i64) < PULL_BATCH;
        for r in rows {
            let doc: DocId = r.parse(1)?;
            if !r.bool(3)? {
                let change = r.bytes(2)?;
                if !fill.fits(1, change.len() as u64) {
                    return Ok(true);
                }
                fill.bytes += change.len() as u64;
                fill.page.changes.push((doc.clone(), change));
            }
            fill.page.cursor = r.count(0)?;
            fill.sent_docs.push(doc);
        }
        if last_batch {
            return Ok(false);
        }
    }
}
