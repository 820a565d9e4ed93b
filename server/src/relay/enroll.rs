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
use gridsync_core::sync::wire::{self, EnrollRequest, EnrollResponse, PROTOCOL_VERSION};
use gridsync_core::User;

use super::store::{DeviceRecord, TokenKind};
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
        self.new_enrollment(user, false)
    }

    /// Create a one-time enrollment code for a downstream relay (a town server)
    /// acting for `user`, whose region it is trusted for.
    pub fn create_relay_enrollment(&self, user: &str) -> Result<String, RelayError> {
        self.new_enrollment(user, true)
    }

    fn new_enrollment(&self, user: &str, relay: bool) -> Result<String, RelayError> {
        let user: gridsync_core::UserId = user
            .parse()
            .map_err(|e: IdError| RelayError::bad_request(e.to_string()))?;
        if self.directory()?.user(&user).is_none() {
            return Err(RelayError::bad_request(format!(
                "user {user} is not in the directory"
            )));
        }
        let code: String = random_bytes::<10>()?
            .iter()
            .map(|b| CODE_ALPHABET[(b % 32) as usize] as char)
            .collect();
        let expires = Utc::now() + chrono::Duration::hours(ENROLLMENT_HOURS);
        self.store
            .create_enrollment(&user, &sha256(&code), expires.timestamp_millis(), relay)
            .map_err(RelayError::internal)?;
        Ok(code)
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
            v: PROTOCOL_VERSION,
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
