//! Why a console page or form failed: the console's own form errors, kept apart
//! from what the relay answers.

use axum::http::StatusCode;

use crate::relay::{RelayError, ResidentError};

/// A failed console request.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// A form or query field the console cannot use; the message names the field
    /// and what was wrong (never what was typed).
    #[error("{0}")]
    Form(String),
    /// The relay refused or failed.
    #[error(transparent)]
    Relay(#[from] RelayError),
    /// A resident's report the hotline form could not enter, said in Chinese.
    #[error(transparent)]
    Resident(#[from] ResidentError),
}

impl PageError {
    /// A form field that is missing or wrong.
    pub fn form(message: impl Into<String>) -> Self {
        PageError::Form(message.into())
    }

    /// The HTTP status of the page that says so.
    pub fn status(&self) -> StatusCode {
        match self {
            PageError::Form(_) => StatusCode::BAD_REQUEST,
            PageError::Relay(e) => crate::http::error::status(e),
            PageError::Resident(e) => crate::resident::refusal(e).0,
        }
    }
}
