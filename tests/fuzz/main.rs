//! A bounded mutation fuzzer for everything that takes bytes from outside, run on
//! the stable toolchain as part of `cargo test --workspace`.
//!
//! Each target starts from valid inputs and mutates them (bit flips, byte
//! replacement, insertion, deletion, truncation, duplication, splicing of seeds,
//! interesting values and format tokens). Every input runs under `catch_unwind`;
//! a target fails if any input panicked, printing the seed and the input as hex.
//! Inputs a target accepts join its corpus, so mutations go on from them.
//!
//! - `GRIDSYNC_FUZZ_SECONDS`: time budget per target (default 40; the four targets
//!   run two at a time on two cores, so about 80 s in all);
//! - `GRIDSYNC_FUZZ_SEED`: the RNG seed (default: from the clock; always printed);
//! - `GRIDSYNC_FUZZ_ITERATIONS`: a cap on inputs per target, over each target's own.
//!
//! What `catch_unwind` cannot see: aborts (stack overflow, allocation failure).
//! Those end the test binary, which fails the run all the same.

mod change;
mod engine;
mod photo;
mod wire;
