//! Enrollment and authentication: one-time codes (stored hashed, expiring), device
//! tokens (stored hashed, rotated), and the caller a token names.
//!
//! Token rotation (`docs/protocol.md`, "Token rotation"): a phone whose token is
//! older than [`TokenRotation::after`] is offered a successor in a pull answer; the
//! first request that bears the successor makes it the token and retires the old
//! one. A retired token seen after [`TokenRotation::grace`] means two devices hold
//! one device's tokens — a copied phone — and the device is revoked: every copy is
//! told to wipe at its next request.

use base64::Engine as _;
use chrono::Utc;
use gridsync_core::ids::IdError;
use gridsync_core::sync::wire::{self, EnrollRequest, EnrollResponse};
use gridsync_core::User;

use super::store::{DeviceRecord, Enrollment, EnrollmentBatch, TokenKind};
use super::ConsoleUser;
use super::{check_version, random_bytes, sha256, Relay, RelayError};

/// How long an enrollment code stays valid.
pub const ENROLLMENT_HOURS: i64 = 72;
const CODE_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// Days a retired token is remembered (a copy holding an older one is refused as
/// unknown, without being detected).
pub const RETIRED_TOKEN_DAYS: i64 = 90;

/// When device tokens are replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenRotation {
    /// A phone's token older than this gets a successor at the phone's next pull.
    pub after: chrono::Duration,
    /// How long a retired token still works: a request the phone started with the
    /// old token while another of its requests was confirming the new one (a photo
    /// download beside a sync) must not revoke it.
    pub grace: chrono::Duration,
}

impl Default for TokenRotation {
    /// A new token every day; the old one accepted 15 minutes after the switch.
    fn default() -> Self {
        TokenRotation {
            after: chrono::Duration::hours(24),
            grace: chrono::Duration::minutes(15),
        }
    }
}

/// The device a request's token names, and its directory user.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The device.
    pub device: DeviceRecord,
    /// Its user.
    pub user: User,
    /// The hash of the request's token when it is the device's current token (not
    /// a retired one still in its grace period): the one a successor may replace.
    pub current_token: Option<[u8; 32]>,
}

/// A fresh bearer token: 256 random bits, URL-safe base64.
fn new_token() -> Result<String, RelayError> {
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?))
}

impl Relay {
    /// Create a one-time enrollment code for `user` (admin command).
    pub fn create_enrollment(&self, user: &str) -> Result<String, RelayError> {
        self.one_enrollment(user, false)
    }

    /// Create a one-time enrollment code for a downstream relay (a town server)
    /// acting for `user`, whose region it is trusted for.
    pub fn create_relay_enrollment(&self, user: &str) -> Result<String, RelayError> {
        self.one_enrollment(user, true)
    }

    fn one_enrollment(&self, user: &str, relay: bool) -> Result<String, RelayError> {
        let user: gridsync_core::UserId = user
            .parse()
            .map_err(|e: IdError| RelayError::bad_request(e.to_string()))?;
        let mut codes = self.issue_enrollments(&[user], relay, None)?;
        codes
            .pop()
            .map(|(_, code)| code)
            .ok_or_else(|| RelayError::internal("no code was issued"))
    }

    /// One-time codes for phones of `users` (each in the directory), issued by
    /// `by` (none: the command line), stored in one transaction: each user and
    /// the code, shown this once and stored only hashed.
    pub fn issue_enrollments(
        &self,
        users: &[gridsync_core::UserId],
        relay: bool,
        by: Option<&gridsync_core::UserId>,
    ) -> Result<Vec<(gridsync_core::UserId, String)>, RelayError> {
        let dir = self.directory()?;
        if let Some(u) = users.iter().find(|u| dir.user(u).is_none()) {
            return Err(RelayError::bad_request(format!(
                "user {u} is not in the directory"
            )));
        }
        for u in users {
            if self.store.is_disabled(u).map_err(RelayError::internal)? {
                return Err(RelayError::bad_request(format!(
                    "user {u} is disabled; enable them first"
                )));
            }
        }
        let mut codes = Vec::with_capacity(users.len());
        for user in users {
            let code: String = random_bytes::<10>()?
                .iter()
                .map(|b| CODE_ALPHABET[(b % 32) as usize] as char)
                .collect();
            codes.push((user.clone(), code));
        }
        let hashed: Vec<_> = codes
            .iter()
            .map(|(u, code)| (u.clone(), sha256(code)))
            .collect();
        let now = Utc::now();
        self.store
            .create_enrollments(&EnrollmentBatch {
                codes: &hashed,
                expires_ms: (now + chrono::Duration::hours(ENROLLMENT_HOURS)).timestamp_millis(),
                relay,
                issued_by: by,
                issued_ms: now.timestamp_millis(),
            })
            .map_err(RelayError::internal)?;
        Ok(codes)
    }

    /// Redeem an enrollment code.
    pub fn enroll(&self, req: EnrollRequest) -> Result<EnrollResponse, RelayError> {
        check_version(req.v)?;
        let device = req.device;
        if req.code.len() > 64 || req.app_version.chars().count() > 64 {
            return Err(RelayError::bad_request("code or app version too long"));
        }
        let token = new_token()?;
        let code = req.code.trim().to_ascii_uppercase();
        let user = self
            .store
            .redeem_enrollment(
                &sha256(&code),
                device,
                &sha256(&token),
                &req.app_version,
                Utc::now().timestamp_millis(),
                (Utc::now() + self.token_lifetime).timestamp_millis(),
            )?
            .ok_or(RelayError::BadCode)?;
        let directory = self.engine.directory_json().map_err(RelayError::internal)?;
        let directory = gridsync_core::directory::Directory::device_copy(&directory)
            .map_err(RelayError::internal)?;
        tracing::info!(device = %device, "device enrolled");
        Ok(EnrollResponse {
            v: req.v,
            token,
            user,
            directory,
        })
    }

    /// How tokens rotate.
    pub fn token_rotation(&self) -> TokenRotation {
        *self
            .token_rotation
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Change how tokens rotate (from the next request on).
    pub fn set_token_rotation(&self, rotation: TokenRotation) {
        *self
            .token_rotation
            .write()
            .unwrap_or_else(|e| e.into_inner()) = rotation;
    }

    /// Authenticate a bearer token: the device and its user. The HTTP shell calls
    /// this before it reads a request's body. The first request bearing a device's
    /// offered successor token makes it the token; a token retired longer ago than
    /// the grace period revokes the device (it was copied).
    pub fn authenticate(&self, token: &str) -> Result<Caller, RelayError> {
        if !wire::is_token(token) {
            return Err(RelayError::BadToken);
        }
        // The caller's user is read from the directory: the newest revision's.
        self.refresh_directory_now_and_then()?;
        let hash = sha256(token);
        let now = Utc::now().timestamp_millis();
        let (mut device, kind) = self.store.find_token(&hash)?.ok_or(RelayError::BadToken)?;
        let current = match kind {
            TokenKind::Current => true,
            TokenKind::Next if device.revoked => false,
            TokenKind::Next => {
                let forget = now - chrono::Duration::days(RETIRED_TOKEN_DAYS).num_milliseconds();
                if self
                    .store
                    .confirm_token(device.device, &hash, now, forget)?
                {
                    device.token_issued_ms = now;
                    tracing::info!(device = %device.device, "device token rotated");
                } else {
                    // Another request confirmed it a moment ago, or a newer successor
                    // was offered since (this one's answer was lost yet it arrived).
                    match self.store.find_token(&hash)? {
                        Some((d, TokenKind::Current)) => device = d,
                        _ => return Err(RelayError::BadToken),
                    }
                }
                true
            }
            TokenKind::Retired { retired_ms } => {
                let grace = self.token_rotation().grace.num_milliseconds();
                if !device.revoked && now - retired_ms >= grace {
                    self.store.revoke(device.device, now)?;
                    tracing::warn!(
                        device = %device.device,
                        "a retired token was used after its successor: the device was copied; \
                         it is revoked and every copy will be told to wipe"
                    );
                    return Err(RelayError::Revoked);
                }
                false
            }
        };
        if device.revoked {
            return Err(RelayError::Revoked);
        }
        if device.expires_ms <= Utc::now().timestamp_millis() {
            return Err(RelayError::Expired);
        }
        let user = self
            .directory()?
            .user(&device.user)
            .cloned()
            .ok_or(RelayError::BadToken)?;
        Ok(Caller {
            device,
            user,
            current_token: current.then_some(hash),
        })
    }
}

impl Relay {
    /// A successor for the caller's token, if it is due: a phone (not a downstream
    /// relay) bearing its current token, issued longer ago than the rotation period.
    /// The successor is offered in the store (replacing one offered before whose
    /// answer was lost) and returned, to go in the answer; `None` if not due or if
    /// it could not be offered (the current token goes on working).
    pub(super) fn rotate_token(&self, caller: &Caller) -> Option<String> {
        let current = caller.current_token?;
        let device = &caller.device;
        let now = Utc::now().timestamp_millis();
        let age = now - device.token_issued_ms;
        if device.relay || age < self.token_rotation().after.num_milliseconds() {
            return None;
        }
        let offered = new_token().and_then(|token| {
            self.store
                .offer_token(device.device, &current, &sha256(&token), now)
                .map_err(RelayError::from)
                .map(|ok| ok.then_some(token))
        });
        match offered {
            Ok(token) => token,
            Err(e) => {
                tracing::warn!(device = %device.device, error = %e, "no token rotation this time");
                None
            }
        }
    }
}

/// Most codes one request of the console issues.
pub const MAX_CODES_AT_ONCE: usize = 1_000;

/// Whether `who` may issue and see enrollment codes and disable users: the
/// administrators (a town's administrator is an `admin` placed at the town),
/// within their region. Dispatchers may not: a code or a disabled account is a
/// way to act as, or silence, someone else, so it stays with the role that
/// already holds every right.
fn may_enroll(who: &ConsoleUser) -> Result<gridsync_core::access::Scope, RelayError> {
    match who.user.role {
        gridsync_core::Role::Admin => Ok(gridsync_core::access::scope_of(&who.user)),
        _ => Err(RelayError::Forbidden {
            code: "refused",
            message: "only administrators issue enrollment codes and disable users".into(),
        }),
    }
}

/// Whether `target` may be given a code or disabled from the console: never an
/// administrator (they enroll and are managed with the command line).
fn manageable(target: &User) -> Result<(), RelayError> {
    if target.role == gridsync_core::Role::Admin {
        return Err(RelayError::Forbidden {
            code: "refused",
            message: "administrators are enrolled and disabled with the command line".into(),
        });
    }
    Ok(())
}

impl Relay {
    /// Codes for the phones of `target` — one user's id, or a region's code for
    /// every user placed in it (a grid, a community, a town) — issued by `who`,
    /// whose region must hold them. Administrators enroll with the command line.
    pub fn console_issue_enrollments(
        &self,
        who: &ConsoleUser,
        target: &str,
    ) -> Result<Vec<(User, String)>, RelayError> {
        let scope = may_enroll(who)?;
        let dir = self.directory()?;
        let target = target.trim();
        let disabled: std::collections::HashSet<_> = self
            .store
            .disabled_users()
            .map_err(RelayError::internal)?
            .into_iter()
            .map(|(u, _, _)| u)
            .collect();
        let users: Vec<User> = match target.parse::<gridsync_core::RegionCode>() {
            // Everyone placed there who has not left.
            Ok(region) if dir.region(&region).is_some() => dir
                .users()
                .iter()
                .filter(|u| region.contains(&u.region) && u.role != gridsync_core::Role::Admin)
                .filter(|u| !disabled.contains(&u.id))
                .cloned()
                .collect(),
            _ => {
                let user = target
                    .parse::<gridsync_core::UserId>()
                    .ok()
                    .and_then(|u| dir.user(&u).cloned())
                    .ok_or_else(|| {
                        RelayError::bad_request("no such user or region in the directory")
                    })?;
                vec![user]
            }
        };
        for u in &users {
            manageable(u)?;
        }
        if users.iter().any(|u| !scope.covers(&u.region)) {
            return Err(RelayError::Forbidden {
                code: "refused",
                message: "some of these users are outside your region".into(),
            });
        }
        if users.is_empty() || users.len() > MAX_CODES_AT_ONCE {
            return Err(RelayError::bad_request(format!(
                "{} users: a request issues 1 to {MAX_CODES_AT_ONCE} codes",
                users.len()
            )));
        }
        let ids: Vec<_> = users.iter().map(|u| u.id.clone()).collect();
        let codes = self.issue_enrollments(&ids, false, Some(&who.user.id))?;
        tracing::info!(
            codes = codes.len(),
            "enrollment codes issued from the console"
        );
        Ok(users
            .into_iter()
            .zip(codes)
            .map(|(user, (_, code))| (user, code))
            .collect())
    }

    /// The codes of the last `days` days for users in `who`'s region, newest
    /// first, each with its user.
    pub fn console_enrollments(
        &self,
        who: &ConsoleUser,
        days: i64,
    ) -> Result<Vec<(Enrollment, User)>, RelayError> {
        let scope = may_enroll(who)?;
        let dir = self.directory()?;
        let since = (Utc::now() - chrono::Duration::days(days)).timestamp_millis();
        Ok(self
            .store
            .list_enrollments(since, 20_000)
            .map_err(RelayError::internal)?
            .into_iter()
            .filter_map(|e| {
                let user = dir.user(&e.user)?.clone();
                scope.covers(&user.region).then_some((e, user))
            })
            .collect())
    }

    /// Withdraw an unused code (named by its hash, in hex) of a user in `who`'s
    /// region.
    pub fn console_revoke_enrollment(
        &self,
        who: &ConsoleUser,
        code_hash: &str,
    ) -> Result<(), RelayError> {
        let scope = may_enroll(who)?;
        let not_found = || RelayError::NotFound("no such unused code");
        let hash: [u8; 32] = hex_bytes(code_hash).ok_or_else(not_found)?;
        let dir = self.directory()?;
        let theirs = self
            .store
            .find_enrollment(&hash)
            .map_err(RelayError::internal)?
            .and_then(|e| dir.user(&e.user).map(|u| scope.covers(&u.region)))
            .unwrap_or(false);
        if !theirs
            || !self
                .store
                .revoke_enrollment(&hash, Utc::now().timestamp_millis())
                .map_err(RelayError::internal)?
        {
            return Err(not_found());
        }
        Ok(())
    }
}

/// 64 hex digits as 32 bytes.
fn hex_bytes(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl Relay {
    /// Disable a user who left (admin command, or the console as `by`): every
    /// device of theirs revoked (each told to wipe at its next request), every
    /// unused code withdrawn, every console session ended, one transaction.
    /// Answers how many devices were revoked.
    pub fn disable_user(
        &self,
        user: &gridsync_core::UserId,
        by: Option<&gridsync_core::UserId>,
    ) -> Result<usize, RelayError> {
        if self.directory()?.user(user).is_none() {
            return Err(RelayError::bad_request(format!(
                "user {user} is not in the directory"
            )));
        }
        let revoked = self
            .store
            .disable_user(user, by, Utc::now().timestamp_millis())
            .map_err(RelayError::internal)?;
        tracing::info!(user = %user, devices = revoked, "user disabled");
        Ok(revoked)
    }

    /// Enable a disabled user again; false if they were not disabled.
    pub fn enable_user(&self, user: &gridsync_core::UserId) -> Result<bool, RelayError> {
        self.store.enable_user(user).map_err(RelayError::internal)
    }

    /// The console's disable and enable: a user in `who`'s region, `who` being
    /// one who issues codes.
    pub fn console_set_disabled(
        &self,
        who: &ConsoleUser,
        user: &str,
        disabled: bool,
    ) -> Result<(), RelayError> {
        let scope = may_enroll(who)?;
        let dir = self.directory()?;
        let user = user
            .trim()
            .parse::<gridsync_core::UserId>()
            .ok()
            .and_then(|u| dir.user(&u).cloned())
            .filter(|u| scope.covers(&u.region))
            .ok_or(RelayError::NotFound("no such user in your region"))?;
        manageable(&user)?;
        if disabled {
            self.disable_user(&user.id, Some(&who.user.id))?;
        } else {
            self.enable_user(&user.id)?;
        }
        Ok(())
    }

    /// The disabled users of `who`'s region, with since when and by whom.
    pub fn console_disabled_users(
        &self,
        who: &ConsoleUser,
    ) -> Result<Vec<(User, i64, Option<String>)>, RelayError> {
        let scope = may_enroll(who)?;
        let dir = self.directory()?;
        Ok(self
            .store
            .disabled_users()
            .map_err(RelayError::internal)?
            .into_iter()
            .filter_map(|(u, at, by)| {
                let user = dir.user(&u)?.clone();
                scope.covers(&user.region).then_some((user, at, by))
            })
            .collect())
    }
}
