//! The hub sync protocol, device side: wire types shared with the relay, and the
//! client that pushes the outbox and pulls what the device may see. See
//! `docs/protocol.md`.

pub mod client;
pub mod wire;

pub use client::{
    call, enroll, fetch_photo, sync, upload_blob, Enrollment, HttpTransport, Phase, Progress,
    ServerSecurity, SyncError, SyncReport, Transport, TransportError,
};
