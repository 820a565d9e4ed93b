//! gridsync-server: the relay / command-centre server. Devices enroll, push their
//! changes and pull what they may see; the relay keeps its own replica of every
//! document, materialised for the command centre.
#![warn(missing_docs)]

pub mod audit;
pub mod backup;
pub mod blobstore;
mod console;
pub mod http;
pub mod metrics;
pub mod notify;
pub mod registry_io;
pub mod relay;
mod resident;

/// The sample directory shipped with the core crate (used when none is configured).
pub const SAMPLE_DIRECTORY: &str = include_str!("../../core/data/sample-directory.json");
