//! The protocol's routes, in one table: each names its path, whether it needs a
//! device token, the largest request body it takes, and (through [`Endpoint`]) its
//! request and answer types. The relay's HTTP shell, the in-process transport of
//! the tests and the clients all read this table.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::wire::{decode, encode, DecodeError};
use super::wire::{
    BlobGetRequest, BlobGetResponse, BlobPutRequest, BlobPutResponse, EnrollRequest,
    EnrollResponse, PullRequest, PullResponse, PushRequest, PushResponse, MAX_BODY_BYTES,
    MAX_CHUNK_BYTES,
};

/// One route of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `POST /v1/enroll`: redeem a one-time code (no token).
    Enroll,
    /// `POST /v1/push`: local changes.
    Push,
    /// `POST /v1/pull`: what is new since a cursor.
    Pull,
    /// `POST /v1/blob/put`: one chunk of a photo upload.
    BlobPut,
    /// `POST /v1/blob/get`: part of a photo.
    BlobGet,
}

impl Route {
    /// Every route.
    pub const ALL: [Route; 5] = [
        Route::Enroll,
        Route::Push,
        Route::Pull,
        Route::BlobPut,
        Route::BlobGet,
    ];

    /// The HTTP path.
    pub fn path(self) -> &'static str {
        match self {
            Route::Enroll => "/v1/enroll",
            Route::Push => "/v1/push",
            Route::Pull => "/v1/pull",
            Route::BlobPut => "/v1/blob/put",
            Route::BlobGet => "/v1/blob/get",
        }
    }

    /// The route at `path`, if any.
    pub fn from_path(path: &str) -> Option<Route> {
        Route::ALL.into_iter().find(|r| r.path() == path)
    }

    /// A short name, for metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            Route::Enroll => "enroll",
            Route::Push => "push",
            Route::Pull => "pull",
            Route::BlobPut => "blob_put",
            Route::BlobGet => "blob_get",
        }
    }

    /// Whether the request must carry a device token (checked before its body is
    /// read).
    pub fn needs_token(self) -> bool {
        self != Route::Enroll
    }

    /// The largest request body (after any content decoding) this route takes.
    /// Only pushes are large, and only a device with a token reaches them.
    pub fn max_request_bytes(self) -> usize {
        match self {
            Route::Enroll => 4 * 1024,
            Route::BlobGet => 4 * 1024,
            // The purge acknowledgement: up to MAX_CHANGES_PER_MESSAGE ids.
            Route::Pull => 1024 * 1024,
            Route::BlobPut => MAX_CHUNK_BYTES + 4 * 1024,
            Route::Push => MAX_BODY_BYTES,
        }
    }
}

/// A route with its request and answer types.
pub trait Endpoint {
    /// Which route.
    const ROUTE: Route;
    /// What the client sends.
    type Request: Serialize + DeserializeOwned + Send + 'static;
    /// What the server answers.
    type Response: Serialize + DeserializeOwned + Send + 'static;
}

macro_rules! endpoint {
    ($(#[$meta:meta])* $name:ident, $route:expr, $req:ty, $resp:ty) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name;

        impl Endpoint for $name {
            const ROUTE: Route = $route;
            type Request = $req;
            type Response = $resp;
        }
    };
}

endpoint!(
    /// Enrollment.
    Enroll,
    Route::Enroll,
    EnrollRequest,
    EnrollResponse
);
endpoint!(
    /// Push.
    Push,
    Route::Push,
    PushRequest,
    PushResponse
);
endpoint!(
    /// Pull.
    Pull,
    Route::Pull,
    PullRequest,
    PullResponse
);
endpoint!(
    /// Photo upload chunk.
    BlobPut,
    Route::BlobPut,
    BlobPutRequest,
    BlobPutResponse
);
endpoint!(
    /// Photo download range.
    BlobGet,
    Route::BlobGet,
    BlobGetRequest,
    BlobGetResponse
);

/// A request of any route, decoded from its body.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Enrollment.
    Enroll(EnrollRequest),
    /// Push.
    Push(PushRequest),
    /// Pull.
    Pull(PullRequest),
    /// Photo upload chunk.
    BlobPut(BlobPutRequest),
    /// Photo download range.
    BlobGet(BlobGetRequest),
}

impl Request {
    /// Decode the body of a request to `route` (bounded by the route's limit).
    pub fn decode(route: Route, body: &[u8]) -> Result<Request, DecodeError> {
        if body.len() > route.max_request_bytes() {
            return Err(DecodeError(format!(
                "a {} request of {} bytes exceeds {}",
                route.name(),
                body.len(),
                route.max_request_bytes()
            )));
        }
        Ok(match route {
            Route::Enroll => Request::Enroll(decode(body)?),
            Route::Push => Request::Push(decode(body)?),
            Route::Pull => Request::Pull(decode(body)?),
            Route::BlobPut => Request::BlobPut(decode(body)?),
            Route::BlobGet => Request::BlobGet(decode(body)?),
        })
    }
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Enrollment.
    Enroll(EnrollResponse),
    /// Push.
    Push(PushResponse),
    /// Pull.
    Pull(PullResponse),
    /// Photo upload chunk.
    BlobPut(BlobPutResponse),
    /// Photo download range.
    BlobGet(BlobGetResponse),
}

impl Answer {
    /// The CBOR body.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Answer::Enroll(a) => encode(a),
            Answer::Push(a) => encode(a),
            Answer::Pull(a) => encode(a),
            Answer::BlobPut(a) => encode(a),
            Answer::BlobGet(a) => encode(a),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_unique_and_found_again() {
        for r in Route::ALL {
            assert_eq!(Route::from_path(r.path()), Some(r));
        }
        assert_eq!(Route::from_path("/v1/other"), None);
        assert!(!Route::Enroll.needs_token());
        assert!(Route::Push.max_request_bytes() > Route::Pull.max_request_bytes());
    }
}
