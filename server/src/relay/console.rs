//! The console's side of the relay, free of HTTP: password accounts, sessions, and
//! actions taken by signed-in users. A console account acts through a device of its
//! own: its actions are drafted on the server's replica exactly as a phone would
//! make them, then stored through the same checked push as a phone's changes, so
//! they reach devices on their next sync and merge with offline work the same way.

use std::net::IpAddr;
use std::time::Instant;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine as _;
use chacha20poly1305::aead::Aead;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use chrono::Utc;
use gridsync_core::doc::adjustment::NewAdjustment;
use gridsync_core::photo::PhotoLimits;
use gridsync_core::sync::wire::{ChangeStatus, WireChange};
use gridsync_core::{Action, Case, DeviceId, DocId, Identity, PhotoHash, PhotoInfo, User, UserId};

use super::push::Trust;
use super::resident::{Rate, Refused};
use super::store::BACKLOG_CAP;
use super::{device_visibility, random_bytes, sha256, Relay, RelayError};
use gridsync_core::sync::change::decode_wire_changes;

/// How long a console session lasts.
pub const SESSION_HOURS: i64 = 12;
/// Password length bounds, in characters.
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 8..=128;

/// Sign-ins checked at the same time, at most.
pub(crate) const MAX_SIGN_INS: usize = 4;

/// Wrong sign-ins one address may make: ten at once, then one a minute. Only
/// wrong ones count (a command centre's desks behind one address all sign in at
/// eight), and while they are spent even the right password is refused, so a
/// guesser learns nothing. Counted per address, not per account: a stranger who
/// guesses at an account does not lock its dispatcher out. Each node counts its
/// own.
pub const SIGN_IN_GUESSES: Rate = Rate {
    burst: 10.0,
    every_secs: 60.0,
};

/// Longest sealed search text taken from a URL, in characters (a search text
/// of the console's 100 characters seals to at most about 460).
const MAX_SEALED_SEARCH: usize = 1024;

/// The Argon2 hash of a password nobody has, checked for unknown users.
const UNKNOWN_USER_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$bm9ib2R5LWhhcy10aGlz$1Hn8Q9u2mWqzMjd0m8m3e2b1i+0y8dQm5s8n9aQ2k8Y";

/// One of `max` slots (sign-ins, or a resident's photos being decoded), given
/// back when dropped.
pub(super) struct SignInSlot<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> SignInSlot<'a> {
    pub(super) fn take(count: &'a std::sync::atomic::AtomicUsize, max: usize) -> Option<Self> {
        use std::sync::atomic::Ordering;
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| SignInSlot(count))
    }
}

impl Drop for SignInSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// A device as the console lists it.
#[derive(Debug, Clone)]
pub struct DeviceView {
    /// Its user.
    pub user: User,
    /// The relay's record.
    pub record: super::store::DeviceRecord,
    /// Changes waiting for its next pulls.
    pub backlog: u64,
}

/// A signed-in console user.
#[derive(Debug, Clone)]
pub struct ConsoleUser {
    /// The user, from the directory.
    pub user: User,
    /// The device the account acts through.
    pub device: DeviceId,
    /// The session's CSRF token, required in every form.
    pub csrf: String,
}

impl ConsoleUser {
    fn identity(&self) -> Identity {
        Identity {
            user: self.user.id.clone(),
            device: self.device,
        }
    }
}

pub(super) fn refused(code: &'static str, message: impl Into<String>) -> RelayError {
    RelayError::Forbidden {
        code,
        message: message.into(),
    }
}

fn core_error(e: gridsync_core::Error) -> RelayError {
    use gridsync_core::Error as E;
    match e {
        E::NotFound { what, .. } => RelayError::NotFound(what),
        E::Forbidden(_) | E::Refused(_) => refused("refused", e.to_string()),
        E::InvalidInput(_) => RelayError::bad_request(e.to_string()),
        other => RelayError::internal(other),
    }
}

/// The optional base map under the console's map: a tile server's URL template
/// with `{z}`, `{x}` and `{y}` (slippy-map tiles in Web Mercator), e.g. a
/// provincial map service's; in WGS-84 like the directory, or in GCJ-02 (the
/// tiles are then placed where their corners really are: [`TileUrl::gcj02`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TileUrl {
    template: String,
    gcj02: bool,
}

/// The longest tile URL template, in bytes.
const MAX_TILE_URL: usize = 512;

impl std::str::FromStr for TileUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<TileUrl, String> {
        let rest = s
            .strip_prefix("https://")
            .or_else(|| s.strip_prefix("http://"))
            .ok_or("map_tile_url must start with https:// or http://")?;
        if s.len() > MAX_TILE_URL {
            return Err(format!("map_tile_url is longer than {MAX_TILE_URL} bytes"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\'' | b'<' | b'>' | b'\\'))
        {
            return Err("map_tile_url has spaces, quotes or characters outside ASCII".into());
        }
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty() || host.contains('{') {
            return Err("map_tile_url needs a host name before its path".into());
        }
        let mut left = s.to_owned();
        for p in ["{z}", "{x}", "{y}"] {
            if left.matches(p).count() != 1 {
                return Err(format!("map_tile_url must contain {p} exactly once"));
            }
            left = left.replace(p, "");
        }
        if left.contains(['{', '}']) {
            return Err("map_tile_url may only use {z}, {x} and {y}".into());
        }
        Ok(TileUrl {
            template: s.to_owned(),
            gcj02: false,
        })
    }
}

impl TileUrl {
    /// The same tiles, drawn in GCJ-02 coordinates (AMap's and other Chinese
    /// services' tiles) or not.
    pub fn in_gcj02(self, gcj02: bool) -> TileUrl {
        TileUrl { gcj02, ..self }
    }

    /// Whether the tiles are drawn in GCJ-02 coordinates.
    pub fn gcj02(&self) -> bool {
        self.gcj02
    }

    /// The URL of tile `x`, `y` at zoom `z`.
    pub fn tile(&self, z: u8, x: u32, y: u32) -> String {
        self.template
            .replace("{z}", &z.to_string())
            .replace("{x}", &x.to_string())
            .replace("{y}", &y.to_string())
    }
}

impl Relay {
    /// Draw the console's map over tiles from `tiles` (`None`: vector shapes
    /// only, which need no internet).
    pub fn set_map_tiles(&mut self, tiles: Option<TileUrl>) {
        self.map_tiles = tiles;
    }

    /// The base map's tiles, if configured.
    pub fn map_tiles(&self) -> Option<&TileUrl> {
        self.map_tiles.as_ref()
    }

    /// Set (or reset) the console password of a directory user; ends their sessions.
    pub fn set_console_password(&self, user: &str, password: &str) -> Result<(), RelayError> {
        let user: UserId = user
            .parse()
            .map_err(|e: gridsync_core::ids::IdError| RelayError::bad_request(e.to_string()))?;
        if self.directory()?.user(&user).is_none() {
            return Err(RelayError::bad_request(format!(
                "user {user} is not in the directory"
            )));
        }
        if !PASSWORD_CHARS.contains(&password.chars().count()) {
            return Err(RelayError::bad_request(format!(
                "a password has {} to {} characters",
                PASSWORD_CHARS.start(),
                PASSWORD_CHARS.end()
            )));
        }
        let salt = SaltString::encode_b64(&random_bytes::<16>()?).map_err(RelayError::internal)?;
        let hash = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(RelayError::internal)?
            .to_string();
        self.store
            .set_console_password(&user, &hash, DeviceId::random())
            .map_err(RelayError::internal)?;
        tracing::info!("console password set");
        Ok(())
    }

    /// A console search text sealed for the board's and the map's links
    /// (XChaCha20-Poly1305, a random nonce, under a key of this relay's secret,
    /// base64url): what a dispatcher types to find a case — a resident's name or
    /// phone number — never stands in a URL, so not in the browser's history, a
    /// proxy's log or a link copied out of the console.
    pub fn seal_search(&self, text: &str) -> Result<String, RelayError> {
        let nonce = random_bytes::<24>()?;
        let sealed = self
            .search_key()?
            .encrypt(XNonce::from_slice(&nonce), text.as_bytes())
            .map_err(|_| RelayError::internal("sealing a search failed"))?;
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([&nonce[..], &sealed].concat()))
    }

    /// The text of [`Relay::seal_search`]'s `sealed`; a link this relay did not
    /// make (or changed on the way) is refused.
    pub fn open_search(&self, sealed: &str) -> Result<String, RelayError> {
        let refused =
            || RelayError::bad_request("the search in this link is not valid here; search again");
        if sealed.len() > MAX_SEALED_SEARCH {
            return Err(refused());
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| refused())?;
        if bytes.len() < 24 {
            return Err(refused());
        }
        let (nonce, sealed) = bytes.split_at(24);
        let text = self
            .search_key()?
            .decrypt(XNonce::from_slice(nonce), sealed)
            .map_err(|_| refused())?;
        String::from_utf8(text).map_err(|_| refused())
    }

    fn search_key(&self) -> Result<XChaCha20Poly1305, RelayError> {
        let key = self.derived_secret("gridsync console search")?;
        Ok(XChaCha20Poly1305::new(&key.into()))
    }

    /// Check a user name and password from `client` (the address the resident
    /// channel's limits count, [`Relay::resident_client`]); a new session token
    /// on success. Unknown users and wrong passwords get the same answer; an
    /// address that guessed wrong too often ([`SIGN_IN_GUESSES`]) is refused
    /// before anything is checked.
    pub fn sign_in(
        &self,
        user: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<String, RelayError> {
        // The guess is taken before the check, so sign-ins checked at once from
        // one address cannot all pass on its last one; given back unless wrong.
        let counted = match self.sign_in_guesses.take(client, Instant::now()) {
            Ok(()) => true,
            Err(Refused::Spent) => return Err(RelayError::SignInLimited),
            // Every address remembered is still limited: this one goes
            // uncounted rather than lock everyone out; the sign-ins checked at
            // once and Argon2's cost still bound its pace.
            Err(Refused::Crowded) => false,
        };
        let signed_in = self.check_sign_in(user, password);
        if counted && signed_in != Err(RelayError::SignIn) {
            self.sign_in_guesses.give_back(client);
        }
        signed_in
    }

    fn check_sign_in(&self, user: &str, password: &str) -> Result<String, RelayError> {
        let wrong = || RelayError::SignIn;
        if user.len() > 64 || password.chars().count() > *PASSWORD_CHARS.end() {
            return Err(wrong());
        }
        // Each check costs ~19 MiB and tens of milliseconds: a few at a time.
        let _slot = SignInSlot::take(&self.sign_ins, MAX_SIGN_INS).ok_or(RelayError::Busy(
            "too many sign-ins at once; try again shortly",
        ))?;
        // Who she is now: the newest directory revision's.
        self.refresh_directory_now_and_then()?;
        let user: Option<UserId> = user.trim().parse().ok();
        let account = match &user {
            Some(u) => self
                .store
                .console_account(u)
                .map_err(RelayError::internal)?,
            None => None,
        };
        // An unknown user costs the same check, so timing tells nothing.
        let hash = account
            .map(|(hash, _)| hash)
            .unwrap_or_else(|| UNKNOWN_USER_HASH.to_owned());
        let parsed = PasswordHash::new(&hash).map_err(RelayError::internal)?;
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        let user = match user {
            Some(u) if matches && self.directory()?.user(&u).is_some() => u,
            _ => return Err(wrong()),
        };
        // One who left signs in no more (the same answer: nothing to probe).
        if self
            .store
            .is_disabled(&user)
            .map_err(RelayError::internal)?
        {
            return Err(wrong());
        }
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?);
        let csrf = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<24>()?);
        let expires = Utc::now() + chrono::Duration::hours(SESSION_HOURS);
        self.store
            .create_session(&sha256(&token), &user, &csrf, expires.timestamp_millis())
            .map_err(RelayError::internal)?;
        Ok(token)
    }

    /// The user of a live session.
    pub fn console_session(&self, token: &str) -> Result<ConsoleUser, RelayError> {
        let expired = || RelayError::NoSession;
        if token.is_empty() || token.len() > 128 {
            return Err(expired());
        }
        self.refresh_directory_now_and_then()?;
        let (user, csrf) = self
            .store
            .session(&sha256(token), Utc::now().timestamp_millis())
            .map_err(RelayError::internal)?
            .ok_or_else(expired)?;
        let (_, device) = self
            .store
            .console_account(&user)
            .map_err(RelayError::internal)?
            .ok_or_else(expired)?;
        let user = self.directory()?.user(&user).cloned().ok_or_else(expired)?;
        Ok(ConsoleUser { user, device, csrf })
    }

    /// End a session.
    pub fn sign_out(&self, token: &str) -> Result<(), RelayError> {
        self.store
            .end_session(&sha256(token))
            .map_err(RelayError::internal)
    }

    /// A case as `who` may see it.
    pub fn console_case(&self, who: &ConsoleUser, id: &str) -> Result<Case, RelayError> {
        let id: DocId = id
            .parse()
            .map_err(|_| RelayError::NotFound("no such case"))?;
        let mut case = self
            .engine
            .get_case_as(&who.user, &id)
            .map_err(core_error)?;
        // Judged as the relay judges it: an implausible device time is read at
        // another (`times`), and `state.judged_at` says which.
        case.state = self.judged_state(&case.doc);
        Ok(case)
    }

    /// Take a workflow action on a case as `who`.
    pub fn console_act(
        &self,
        who: &ConsoleUser,
        id: &DocId,
        action: Action,
    ) -> Result<(), RelayError> {
        self.store_console_change(who, id, |engine| {
            engine.draft_action(&who.identity(), id, action)
        })
    }

    /// Add a note to a case as `who`.
    pub fn console_note(
        &self,
        who: &ConsoleUser,
        id: &DocId,
        text: &str,
    ) -> Result<(), RelayError> {
        self.store_console_change(who, id, |engine| {
            engine.draft_note(&who.identity(), id, text)
        })
    }

    /// Record a leader's points adjustment as `who`: the engine's checks, then the
    /// relay's as for any change (only a leader over the worker's grid).
    pub fn console_adjust_points(
        &self,
        who: &ConsoleUser,
        input: NewAdjustment,
    ) -> Result<DocId, RelayError> {
        let _one_at_a_time = self.console_writes();
        let (id, bytes) = self
            .engine
            .draft_adjust_points(&who.identity(), input)
            .map_err(core_error)?;
        self.store_draft(who, &id, bytes)?;
        Ok(id)
    }

    /// Draft a change and store it, one at a time: two drafts made before either is
    /// stored would both take the account's next sequence number on the document.
    fn store_console_change(
        &self,
        who: &ConsoleUser,
        id: &DocId,
        draft: impl FnOnce(&gridsync_core::Engine) -> gridsync_core::Result<Vec<u8>>,
    ) -> Result<(), RelayError> {
        let _one_at_a_time = self.console_writes();
        let bytes = draft(&self.engine).map_err(core_error)?;
        self.store_draft(who, id, bytes)
    }

    /// Store a change drafted as `who` (under [`Relay::console_writes`]).
    fn store_draft(&self, who: &ConsoleUser, id: &DocId, bytes: Vec<u8>) -> Result<(), RelayError> {
        // A draft goes through the checked decoder like any change from outside.
        let answer = self.push_as(
            who.device,
            &Trust::Device(&who.user, Vec::new()),
            decode_wire_changes(vec![WireChange {
                doc: id.clone(),
                bytes,
            }]),
        )?;
        match answer.results.into_iter().next() {
            Some(r) if r.status == ChangeStatus::Accepted => Ok(()),
            Some(r) => Err(refused(
                "refused",
                r.reason
                    .unwrap_or_else(|| "the change was not stored".into()),
            )),
            None => Err(RelayError::internal("a console change got no answer")),
        }
    }

    /// Attach a photo to a case as `who` (a handler's proof of handling): run it
    /// through the capture pipeline a phone uses (limits, orientation, metadata
    /// stripped, display image and thumbnail), store both files, then the change.
    pub fn console_attach_photo(
        &self,
        who: &ConsoleUser,
        id: &DocId,
        bytes: &[u8],
        name: Option<&str>,
    ) -> Result<(), RelayError> {
        let done = gridsync_core::photo::process(bytes, name, &PhotoLimits::default())
            .map_err(|e| RelayError::bad_request(e.to_string()))?;
        let info = self.keep_photo(done)?;
        self.store_console_change(who, id, |engine| {
            engine.draft_photo(&who.identity(), id, &info)
        })
    }

    /// Store a processed photo's display image and thumbnail as blobs; what a
    /// document refers to them by.
    pub(super) fn keep_photo(
        &self,
        done: gridsync_core::photo::Processed,
    ) -> Result<PhotoInfo, RelayError> {
        for r in [&done.display, &done.thumb] {
            self.keep_blob(&r.hash, &r.bytes)?;
        }
        Ok(PhotoInfo {
            hash: done.display.hash,
            thumb: done.thumb.hash,
            width: done.display.width,
            height: done.display.height,
        })
    }

    /// A page of the devices of the users in `who`'s region, most recently seen
    /// first, with what each still has to pull; and how many there are. For
    /// dispatchers and administrators.
    pub fn console_devices(
        &self,
        who: &ConsoleUser,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<DeviceView>, usize), RelayError> {
        let mut all = self.devices_in_scope(who)?;
        all.sort_by_key(|(d, _)| std::cmp::Reverse(d.last_seen_ms));
        let total = all.len();
        let mut page = Vec::new();
        for (record, user) in all.into_iter().skip(offset).take(limit) {
            let backlog = self
                .store
                .backlog(
                    record.device,
                    &device_visibility(&user, record.relay),
                    record.last_cursor,
                    BACKLOG_CAP,
                )
                .map_err(RelayError::internal)?
                .changes;
            page.push(DeviceView {
                user,
                record,
                backlog,
            });
        }
        Ok((page, total))
    }

    fn devices_in_scope(
        &self,
        who: &ConsoleUser,
    ) -> Result<Vec<(super::store::DeviceRecord, User)>, RelayError> {
        if !who.user.role.is_dispatcher() {
            return Err(refused("refused", "only dispatchers see devices"));
        }
        let dir = self.directory()?;
        let scope = gridsync_core::access::scope_of(&who.user);
        Ok(self
            .store
            .devices()?
            .into_iter()
            .filter_map(|record| {
                let user = dir.user(&record.user)?;
                scope.covers(&user.region).then(|| (record, user.clone()))
            })
            .collect())
    }

    /// Revoke a device of a user in `who`'s region.
    pub fn console_revoke(&self, who: &ConsoleUser, device: &str) -> Result<(), RelayError> {
        let not_found = || RelayError::NotFound("no such device");
        let device: DeviceId = device.parse().map_err(|_| not_found())?;
        if !self
            .devices_in_scope(who)?
            .iter()
            .any(|(d, _)| d.device == device && !d.revoked)
        {
            return Err(not_found());
        }
        self.store
            .revoke(device, Utc::now().timestamp_millis())
            .map_err(RelayError::internal)?;
        tracing::info!(device = %device, "device revoked from the console");
        Ok(())
    }

    /// A stored photo `who` may see, whole.
    pub fn console_photo(&self, who: &ConsoleUser, hash: &str) -> Result<Vec<u8>, RelayError> {
        let hash: PhotoHash = hash
            .parse()
            .map_err(|_| RelayError::NotFound("no such photo"))?;
        self.visible_photo(&who.user, &hash)?;
        if self
            .store
            .blob_size(hash.as_str())
            .map_err(RelayError::internal)?
            .is_none()
        {
            return Err(RelayError::NotFound("the photo has not been uploaded yet"));
        }
        self.blobs.read(&hash).map_err(RelayError::internal)
    }
}

/// What became of one drafted registry change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DraftOutcome {
    /// Stored and logged (or already there).
    Stored,
    /// Refused, with the push's reason.
    Refused(String),
}

impl Relay {
    /// Store drafted changes of distinct documents, made on `device` as `user`,
    /// through the same checked push as a phone's: one outcome per draft, in
    /// order. Registry imports use it, a batch at a time.
    pub(crate) fn store_drafts(
        &self,
        device: DeviceId,
        user: &User,
        drafts: Vec<(DocId, Vec<u8>)>,
    ) -> Result<Vec<DraftOutcome>, RelayError> {
        let changes = drafts
            .into_iter()
            .map(|(doc, bytes)| WireChange { doc, bytes })
            .collect();
        let answer = self.push_as(
            device,
            &Trust::Device(user, Vec::new()),
            decode_wire_changes(changes),
        )?;
        Ok(answer
            .results
            .into_iter()
            .map(|r| match r.status {
                ChangeStatus::Accepted | ChangeStatus::Duplicate => DraftOutcome::Stored,
                _ => DraftOutcome::Refused(
                    r.reason
                        .unwrap_or_else(|| "the change was not stored".into()),
                ),
            })
            .collect())
    }

    /// Hold while drafting and storing as a console account (see
    /// [`Relay::store_drafts`]): two drafts of one account on one document must not
    /// be made before either is stored.
    pub(crate) fn console_writes(&self) -> std::sync::MutexGuard<'_, ()> {
        self.console_writes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The data folder (where `server.db` is).
    pub(crate) fn data_folder(&self) -> std::path::PathBuf {
        self.engine
            .db_path()
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::TileUrl;

    #[test]
    fn tile_urls_need_a_scheme_a_host_and_each_placeholder_once() {
        let ok: TileUrl = "https://tiles.example.cn/{z}/{x}/{y}.png".parse().unwrap();
        assert_eq!(
            ok.tile(15, 27_300, 13_400),
            "https://tiles.example.cn/15/27300/13400.png"
        );
        assert!("http://10.0.0.5:8080/wmts?l={z}&c={x}&r={y}"
            .parse::<TileUrl>()
            .is_ok());
        for bad in [
            "ftp://tiles.example.cn/{z}/{x}/{y}.png",
            "tiles.example.cn/{z}/{x}/{y}.png",
            "https://tiles.example.cn/{z}/{x}.png",
            "https://tiles.example.cn/{z}/{x}/{y}/{y}.png",
            "https://{s}.tiles.example.cn/{z}/{x}/{y}.png",
            "https://tiles.example.cn/{z}/{x}/{y}.png?k={key}",
            "https://tiles.example.cn/{z}/{x}/{y}.png\" onload=\"x",
            "https:///{z}/{x}/{y}.png",
        ] {
            assert!(bad.parse::<TileUrl>().is_err(), "{bad}");
        }
    }
}
