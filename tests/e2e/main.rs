//! End-to-end tests: devices and the relay, in the simulator and over real sockets.

mod access;
mod backup;
mod blobstore;
mod bombs;
mod clocks;
mod cluster;
mod console;
mod directory;
mod enrollments;
mod erasure;
mod faults;
mod golden;
mod map;
mod notify;
mod photo_privacy;
mod photos;
mod pressure;
mod registry;
mod registry_import;
mod resident;
mod sockets;
mod store;
mod tiers;
mod tls;
mod wipe;
mod workflow;
