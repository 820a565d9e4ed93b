//! The one place a [`RelayError`] becomes an HTTP status: the protocol answers it
//! with the error's CBOR body (`sync::Refusal`), the console with a page.

use axum::http::StatusCode;

use crate::relay::RelayError;

/// The HTTP status of a relay error.
pub fn status(e: &RelayError) -> StatusCode {
    match e {
        RelayError::BadToken
        | RelayError::Revoked
        | RelayError::Expired
        | RelayError::BadCode
        | RelayError::SignIn
        | RelayError::NoSession => StatusCode::UNAUTHORIZED,
        RelayError::UnsupportedVersion(_) | RelayError::BadRequest(_) => StatusCode::BAD_REQUEST,
        RelayError::Forbidden { .. } => StatusCode::FORBIDDEN,
        RelayError::NotFound(_) => StatusCode::NOT_FOUND,
        RelayError::SignInLimited => StatusCode::TOO_MANY_REQUESTS,
        RelayError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
        RelayError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}
