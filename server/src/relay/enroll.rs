//! Enrollment and authentication: one-time codes (stored hashed, expiring), device
//! tokens (stored hashed), and the caller a token names.

use base64::Engine as _;
use chrono::Utc;
use gridsync_core::ids::IdError;
use gridsync_core::sync::wire::{EnrollRequest, EnrollResponse, PROTOCOL_VERSION};
use gridsync_core::User;

use super::store::DeviceRecord;
use super::{check_version, random_bytes, sha256, Relay, RelayError};

/// How long an enrollment code stays valid.
pub const ENROLLMENT_HOURS: i64 = 72;
const CODE_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// Longest token looked up.
const MAX_TOKEN_LEN: usize = 256;

/// The device a request's token names, and its directory user.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The device.
    pub device: DeviceRecord,
    /// Its user.
    pub user: User,
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
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?);
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
        tracing::info!(device = %device, "device enrolled");
        Ok(EnrollResponse {
            v: PROTOCOL_VERSION,
            token,
            user,
            directory,
        })
    }

    /// Authenticate a bearer token: the device and its user. The HTTP shell calls
    /// this before it reads a request's body.
    pub fn authenticate(&self, token: &str) -> Result<Caller, RelayError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(RelayError::BadToken);
        }
        let device = self
            .store
            .device_by_token(&sha256(token))?
            .ok_or(RelayError::BadToken)?;
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
        Ok(Caller { device, user })
    }
}
