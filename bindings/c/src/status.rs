//! The status codes of the C API, the one mapping from the facade's error to them, and
//! the thread's last error message.

use std::cell::RefCell;
use std::ffi::CString;

use gridsync_ffi::GridsyncError;

/// What a call did: `GRIDSYNC_STATUS_OK`, or why it failed. The numbers are stable.
/// After a failure, `gridsync_last_error_message` on the same thread says more.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GridsyncStatus {
    /// The call succeeded; out-parameters are set.
    Ok = 0,
    /// No network, or the link dropped: try again later.
    Network = 1,
    /// The device must enroll again (its token was refused).
    Unauthorized = 2,
    /// The device was revoked: erase its data (`gridsync_engine_wipe`), delete the
    /// key, enroll again.
    UnauthorizedWipe = 3,
    /// No such case or photo (or not visible to this user).
    NotFound = 4,
    /// The user may not do this, or the case's state does not allow it.
    Refused = 5,
    /// A field is missing, too long or out of range; a photo was refused; a key is
    /// not 32 bytes; JSON input does not parse; plain `http://` off this machine.
    InvalidInput = 6,
    /// The local database or files failed.
    Storage = 7,
    /// The database does not open with this key; nothing was changed.
    WrongKey = 8,
    /// This device erased its data (revoked by the relay, or `gridsync_engine_wipe`):
    /// delete the key and go back to enrollment. Every later call answers the same.
    Wiped = 9,
    /// The engine was closed (`gridsync_engine_close`, or after a wipe).
    Closed = 10,
    /// Anything else, including an internal error caught at the boundary.
    Other = 11,
    /// A pointer argument that must not be NULL was NULL (a caller's bug).
    NullArgument = 100,
    /// A string argument was not valid UTF-8 (a caller's bug).
    InvalidUtf8 = 101,
}

impl GridsyncStatus {
    /// The code's name as written in the header, for logs.
    pub(crate) fn from_code(code: i32) -> Option<Self> {
        use GridsyncStatus as S;
        [
            S::Ok,
            S::Network,
            S::Unauthorized,
            S::UnauthorizedWipe,
            S::NotFound,
            S::Refused,
            S::InvalidInput,
            S::Storage,
            S::WrongKey,
            S::Wiped,
            S::Closed,
            S::Other,
            S::NullArgument,
            S::InvalidUtf8,
        ]
        .into_iter()
        .find(|s| *s as i32 == code)
    }

    /// The name of the code in the header, NUL-terminated.
    pub(crate) fn name(self) -> &'static std::ffi::CStr {
        use GridsyncStatus as S;
        match self {
            S::Ok => c"GRIDSYNC_STATUS_OK",
            S::Network => c"GRIDSYNC_STATUS_NETWORK",
            S::Unauthorized => c"GRIDSYNC_STATUS_UNAUTHORIZED",
            S::UnauthorizedWipe => c"GRIDSYNC_STATUS_UNAUTHORIZED_WIPE",
            S::NotFound => c"GRIDSYNC_STATUS_NOT_FOUND",
            S::Refused => c"GRIDSYNC_STATUS_REFUSED",
            S::InvalidInput => c"GRIDSYNC_STATUS_INVALID_INPUT",
            S::Storage => c"GRIDSYNC_STATUS_STORAGE",
            S::WrongKey => c"GRIDSYNC_STATUS_WRONG_KEY",
            S::Wiped => c"GRIDSYNC_STATUS_WIPED",
            S::Closed => c"GRIDSYNC_STATUS_CLOSED",
            S::Other => c"GRIDSYNC_STATUS_OTHER",
            S::NullArgument => c"GRIDSYNC_STATUS_NULL_ARGUMENT",
            S::InvalidUtf8 => c"GRIDSYNC_STATUS_INVALID_UTF8",
        }
    }
}

/// A failed call: its status and the message `gridsync_last_error_message` gives.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: GridsyncStatus,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(status: GridsyncStatus, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn null(argument: &str) -> Self {
        Failure::new(
            GridsyncStatus::NullArgument,
            format!("`{argument}` is NULL"),
        )
    }

    pub(crate) fn invalid(reason: impl std::fmt::Display) -> Self {
        Failure::new(GridsyncStatus::InvalidInput, reason.to_string())
    }

    pub(crate) fn other(reason: impl std::fmt::Display) -> Self {
        Failure::new(GridsyncStatus::Other, reason.to_string())
    }
}

/// The only place the facade's error becomes a C status. Deliberately exhaustive: a
/// new variant of `GridsyncError` must be given its code here.
impl From<GridsyncError> for Failure {
    fn from(e: GridsyncError) -> Self {
        use GridsyncStatus as S;
        let status = match &e {
            GridsyncError::Network { .. } => S::Network,
            GridsyncError::Unauthorized { wipe: true, .. } => S::UnauthorizedWipe,
            GridsyncError::Unauthorized { wipe: false, .. } => S::Unauthorized,
            GridsyncError::NotFound { .. } => S::NotFound,
            GridsyncError::Refused { .. } => S::Refused,
            GridsyncError::InvalidInput { .. } => S::InvalidInput,
            GridsyncError::Storage { .. } => S::Storage,
            GridsyncError::WrongKey { .. } => S::WrongKey,
            GridsyncError::Wiped { .. } => S::Wiped,
            GridsyncError::Closed => S::Closed,
            GridsyncError::Other { .. } => S::Other,
        };
        Failure::new(status, e.to_string())
    }
}

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

/// Remember the message of the call that just failed on this thread (or forget it
/// after a success).
pub(crate) fn set_last_error(message: Option<String>) {
    let message = message.map(|m| {
        // A message with a NUL inside still reaches the caller, cut at the NUL.
        let bytes: Vec<u8> = m.into_bytes().into_iter().take_while(|b| *b != 0).collect();
        CString::new(bytes).unwrap_or_default()
    });
    LAST_ERROR.with(|last| *last.borrow_mut() = message);
}

/// A copy of this thread's last error message, if the last call failed.
pub(crate) fn last_error() -> Option<CString> {
    LAST_ERROR.with(|last| last.borrow().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_facade_error_has_its_own_code() {
        let reason = || "r".to_owned();
        let cases = [
            (
                GridsyncError::Network { reason: reason() },
                GridsyncStatus::Network,
            ),
            (
                GridsyncError::Unauthorized {
                    reason: reason(),
                    wipe: false,
                },
                GridsyncStatus::Unauthorized,
            ),
            (
                GridsyncError::Unauthorized {
                    reason: reason(),
                    wipe: true,
                },
                GridsyncStatus::UnauthorizedWipe,
            ),
            (
                GridsyncError::NotFound { reason: reason() },
                GridsyncStatus::NotFound,
            ),
            (
                GridsyncError::Refused { reason: reason() },
                GridsyncStatus::Refused,
            ),
            (
                GridsyncError::InvalidInput { reason: reason() },
                GridsyncStatus::InvalidInput,
            ),
            (
                GridsyncError::Storage { reason: reason() },
                GridsyncStatus::Storage,
            ),
            (
                GridsyncError::WrongKey { reason: reason() },
                GridsyncStatus::WrongKey,
            ),
            (
                GridsyncError::Wiped { reason: reason() },
                GridsyncStatus::Wiped,
            ),
            (GridsyncError::Closed, GridsyncStatus::Closed),
            (
                GridsyncError::Other { reason: reason() },
                GridsyncStatus::Other,
            ),
        ];
        for (error, status) in cases {
            let message = error.to_string();
            let failure = Failure::from(error);
            assert_eq!(failure.status, status);
            assert_eq!(failure.message, message);
        }
    }

    const HEADER: &str = include_str!("../include/gridsync.h");

    #[test]
    fn codes_round_trip_through_their_numbers_and_names_are_the_headers() {
        for code in -1..200 {
            if let Some(status) = GridsyncStatus::from_code(code) {
                assert_eq!(status as i32, code);
                let name = status.name().to_str().unwrap_or_default();
                assert!(
                    HEADER.contains(&format!("{name} = {code},")),
                    "{name} = {code} is in include/gridsync.h"
                );
            }
        }
        assert_eq!(GridsyncStatus::from_code(12), None);
        assert_eq!(
            GridsyncStatus::from_code(101),
            Some(GridsyncStatus::InvalidUtf8)
        );
    }

    #[test]
    fn a_message_with_a_nul_is_cut_there() {
        set_last_error(Some("before\0after".into()));
        assert_eq!(last_error().as_deref(), Some(c"before"));
        set_last_error(None);
        assert_eq!(last_error(), None);
    }
}
