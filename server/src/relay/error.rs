//! What can go wrong in the relay, by meaning. No HTTP status here: the HTTP shell
//! (`http::error`) maps each variant to a status and a CBOR or HTML body, in one
//! place.

use gridsync_core::sync::wire::{ErrorBody, PROTOCOL_VERSION};

use super::store::{StoreError, StoreErrorKind};

/// Why the relay refused or failed a request. Messages are for people and never
/// name a resident.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// No token, or one the relay does not know.
    #[error("unknown or invalid device token")]
    BadToken,
    /// The device was revoked: it must erase its data.
    #[error("this device was revoked; erase its data")]
    Revoked,
    /// The token's lifetime is over.
    #[error("the device token has expired; enroll the device again")]
    Expired,
    /// An enrollment code that is unknown, used or expired.
    #[error("the enrollment code is unknown, used or expired")]
    BadCode,
    /// The client speaks another protocol version.
    #[error(
        "this server speaks protocol version {PROTOCOL_VERSION}, the app sent {0}; update the app"
    )]
    UnsupportedVersion(u32),
    /// A malformed or out-of-bounds request; the message says what was wrong.
    #[error("{0}")]
    BadRequest(String),
    /// Not allowed for this user (the console's actions and pages).
    #[error("{message}")]
    Forbidden {
        /// A stable code (`forbidden`, `csrf`).
        code: &'static str,
        /// What was refused.
        message: String,
    },
    /// Nothing of that name this caller may see (the same answer as for nothing).
    #[error("{0}")]
    NotFound(&'static str),
    /// A console sign-in with a wrong user name or password.
    #[error("wrong user name or password")]
    SignIn,
    /// Console sign-ins from an address that guessed wrong too often lately.
    #[error("too many wrong passwords from this address; try again in a few minutes")]
    SignInLimited,
    /// A console request without a live session.
    #[error("not signed in, or the session expired")]
    NoSession,
    /// Too much at once, or a lock lost on the way: try again shortly.
    #[error("{0}")]
    Busy(&'static str),
    /// The relay failed; the cause is in the server's log, not in the answer.
    #[error("internal server error; try again later")]
    Internal,
}

impl RelayError {
    /// A malformed request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        RelayError::BadRequest(message.into())
    }

    /// A failure of the relay itself: logged here, answered without detail.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        RelayError::Internal
    }

    /// The stable code of the protocol's error body.
    pub fn code(&self) -> &'static str {
        match self {
            RelayError::BadToken => "unauthorized",
            RelayError::Revoked => "revoked",
            RelayError::Expired => "expired",
            RelayError::BadCode => "unauthorized",
            RelayError::UnsupportedVersion(_) => "unsupported_version",
            RelayError::BadRequest(_) => "bad_request",
            RelayError::Forbidden { code, .. } => code,
            RelayError::NotFound(_) => "not_found",
            RelayError::SignIn => "sign_in",
            RelayError::SignInLimited => "sign_in_limited",
            RelayError::NoSession => "session",
            RelayError::Busy(_) => "busy",
            RelayError::Internal => "internal",
        }
    }

    /// The protocol's error body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            v: PROTOCOL_VERSION,
            error: self.code().to_owned(),
            message: self.to_string(),
            wipe: *self == RelayError::Revoked,
        }
    }
}

impl From<StoreError> for RelayError {
    /// A transient store failure (a lost lock, a dropped connection, a busy
    /// database) is answered "busy", so the client retries; anything else is
    /// internal.
    fn from(e: StoreError) -> Self {
        match e.kind() {
            StoreErrorKind::Transient => {
                tracing::warn!(error = %e, "transient store failure");
                RelayError::Busy("the server is busy; try again shortly")
            }
            StoreErrorKind::Failed => RelayError::internal(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_store_failures_are_busy_and_others_internal() {
        let busy = RelayError::from(StoreError::transient("the push lock was lost"));
        assert!(matches!(busy, RelayError::Busy(_)));
        assert_eq!(busy.code(), "busy");
        let failed = RelayError::from(StoreError::failed("disk I/O error"));
        assert_eq!(failed, RelayError::Internal);
        assert!(
            !failed.to_string().contains("disk"),
            "the cause stays in the log"
        );
        assert!(RelayError::Revoked.body().wipe);
        assert!(!RelayError::BadToken.body().wipe);
    }
}
