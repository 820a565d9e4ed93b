//! The hub sync protocol, in one module shared by the phone, the relay and a
//! town's link to its district (see `docs/protocol.md`):
//!
//! - `wire`: the versioned CBOR messages, with typed ids and bounds;
//! - `change`: the checked decoder, the only way bytes from outside become an
//!   Automerge change;
//! - `route`: the table of routes (path, token, body limit, message types);
//! - `session`: the push/pull session — what to send next, what an answer means,
//!   what to record — and the one loop that drives it for any replica;
//! - `pace`: pages that fit the link — page sizes and request timeouts from the
//!   throughput measured so far;
//! - `client`: the phone's side over HTTP(S): enrollment, sync, photos.

pub mod change;
pub mod client;
pub mod link;
pub mod pace;
pub mod route;
pub mod session;
pub mod wire;

pub use change::{decode_change, ChangeError, MAX_CHANGE_BYTES};
pub use client::{
    enroll, fetch_blob, fetch_photo, fetch_photo_reporting, sync, upload_blob, Enrollment,
    HttpTransport, Phase, Progress, ServerSecurity, SyncError, SyncReport, Transport,
    TransportError,
};
pub use link::{EnrollmentLink, LinkError};
pub use pace::Pace;
pub use route::{Endpoint, Route};
pub use session::{Learnt, Link, Outgoing, PullApplied, PulledPage, PushVerdicts, Replica};
