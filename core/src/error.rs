//! Errors: one for opening a store, one for operations on it. Messages name
//! fields, ids and limits, never a resident's name, phone, address or location.

use std::path::PathBuf;

use crate::doc::case::FieldError;
use crate::doc::SchemaError;
use crate::workflow::Refusal;

/// Why a database could not be opened. The file is never deleted or modified when
/// opening fails: an unsynced patrol cannot be fetched again.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The file exists but is not a SQLite database gridsync wrote (corrupt, or
    /// another application's).
    #[error("{path} is not a gridsync database (corrupt or from another application); it was left untouched")]
    NotGridsync {
        /// The file.
        path: PathBuf,
    },
    /// Written by a newer version of gridsync.
    #[error(
        "{path} has schema version {found}; this version of gridsync supports up to {supported}"
    )]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: i64,
        /// Ours.
        supported: i64,
    },
    /// The file belongs to another device or user.
    #[error(
        "{path} belongs to another device or user; open it with the identity it was created with"
    )]
    WrongIdentity {
        /// The file.
        path: PathBuf,
    },
    /// The file is encrypted and does not open with the key given (another key,
    /// or none was given). Nothing was changed: open it with its key.
    #[error("{path} does not open with the key given (encrypted with another key, or no key was given); it was left untouched")]
    WrongKey {
        /// The file.
        path: PathBuf,
    },
    /// SQLite could not open or migrate it (permissions, disk full, I/O).
    #[error("cannot open {path}: {source}")]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: rusqlite::Error,
    },
    /// A file beside it could not be read, written or renamed (converting a
    /// plaintext database to an encrypted one).
    #[error("cannot open {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The stored directory could not be read.
    #[error("the directory stored in {path} is unreadable: {source}")]
    Directory {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: crate::directory::DirectoryError,
    },
}

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such case, patrol or user (or not visible to this user).
    #[error("{what} {id} not found")]
    NotFound {
        /// What kind of thing.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// The user may not do this here (wrong role or outside their region).
    #[error("not allowed: {0}")]
    Forbidden(String),
    /// The workflow refuses the action in the case's current state.
    #[error("refused: {0}")]
    Refused(#[from] Refusal),
    /// A field of the input is missing, too long or out of range.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The directory has not been loaded yet, or is invalid.
    #[error("directory: {0}")]
    Directory(#[from] crate::directory::DirectoryError),
    /// A document from another replica does not have the required shape.
    #[error("document {doc} is malformed: {source}")]
    Malformed {
        /// The document.
        doc: String,
        /// What is wrong.
        source: SchemaError,
    },
    /// A change from another replica could not be decoded or applied.
    #[error("change for document {doc} rejected: {reason}")]
    BadChange {
        /// The document.
        doc: String,
        /// Why.
        reason: String,
    },
    /// A photo was refused by the capture pipeline.
    #[error("photo: {0}")]
    Photo(#[from] crate::photo::PhotoError),
    /// A file could not be written or read (photos).
    #[error("file error: {0}")]
    Io(#[from] std::io::Error),
    /// SQLite failed (disk full, I/O error …).
    #[error("storage error: {0}")]
    Storage(#[from] rusqlite::Error),
    /// Automerge failed on a local change (a bug, not bad input).
    #[error("document error: {0}")]
    Document(#[from] automerge::AutomergeError),
    /// This engine's data was erased (a remote wipe, or [`crate::Engine::wipe`]):
    /// nothing more can be done with it. The app enrolls the device again.
    #[error("this device's data was erased; enroll it again")]
    Wiped,
}

impl Error {
    /// The conversion for a document `id` that failed its schema check.
    pub fn malformed(id: &crate::ids::DocId) -> impl Fn(SchemaError) -> Error + '_ {
        move |source| Error::Malformed {
            doc: id.to_string(),
            source,
        }
    }
}

impl From<FieldError> for Error {
    fn from(e: FieldError) -> Self {
        Error::InvalidInput(e.to_string())
    }
}

impl From<crate::ids::IdError> for Error {
    fn from(e: crate::ids::IdError) -> Self {
        Error::InvalidInput(e.to_string())
    }
}

impl From<crate::search::QueryError> for Error {
    fn from(e: crate::search::QueryError) -> Self {
        Error::InvalidInput(e.to_string())
    }
}

/// Result of an engine operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;
