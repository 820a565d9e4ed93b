//! Integration tests of the core engine, compiled as one binary.

mod cases;
mod convergence;
mod patrols;
mod photos;
mod places;
mod refusals;
mod registry;
mod replication;
mod stats;
mod support;
mod vault;
mod watch;
