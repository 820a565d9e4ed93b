//! The one place a [`RelayError`] becomes an HTTP status and a body: CBOR
//! [`ErrorBody`](gridsync_core::sync::wire::ErrorBody) for the protocol; the
//! console renders its own pages from the same status.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use gridsync_core::sync::wire;

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
        RelayError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
        RelayError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for RelayError {
    /// The protocol's answer: the status and a CBOR error body.
    fn into_response(self) -> Response {
        let mut headers = vec![(header::CONTENT_TYPE, "application/cbor")];
        if matches!(self, RelayError::Busy(_)) {
            headers.push((header::RETRY_AFTER, "2"));
        }
        let headers: Vec<_> = headers
            .into_iter()
            .map(|(k, v)| (k, v.to_owned()))
            .collect();
        let mut response = (status(&self), wire::encode(&self.body())).into_response();
        for (k, v) in headers {
            if let Ok(v) = v.parse() {
                response.headers_mut().insert(k, v);
            }
        }
        response
    }
}
