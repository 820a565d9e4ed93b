//! Simulated devices on local SQLite files with a shared, controllable clock —
//! what the demo and the benchmarks run on.

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use gridsync_core::{DeviceId, Engine, Identity};

use gridsync_server::SAMPLE_DIRECTORY;

/// A clock that only moves when told to.
#[derive(Clone)]
pub struct SimClock(Arc<AtomicI64>);

impl SimClock {
    /// Start at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        SimClock(Arc::new(AtomicI64::new(start.timestamp_millis())))
    }

    /// The simulated time.
    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.0.load(Ordering::SeqCst)).unwrap_or_default()
    }

    /// Move forward.
    pub fn advance(&self, d: chrono::Duration) {
        self.0.fetch_add(d.num_milliseconds(), Ordering::SeqCst);
    }

    /// Move to `t`. Simulations run devices one after another, so the clock may be
    /// set back to replay a second device's morning.
    pub fn set(&self, t: DateTime<Utc>) {
        self.0.store(t.timestamp_millis(), Ordering::SeqCst);
    }
}

/// Open a device for `user` at `dir/<user>.db` with the sample directory loaded.
pub fn device(
    dir: &Path,
    user: &str,
    clock: &SimClock,
) -> Result<Engine, Box<dyn std::error::Error>> {
    let identity = Identity {
        user: user.parse()?,
        device: DeviceId::random(),
    };
    let c = clock.clone();
    let engine = Engine::open_with_clock(
        dir.join(format!("{user}.db")),
        identity,
        Arc::new(move || c.now()),
    )?;
    engine.load_directory(SAMPLE_DIRECTORY)?;
    Ok(engine)
}

/// Everything `from` has goes to `to`; returns the number of changes moved.
pub fn push(from: &Engine, to: &Engine) -> Result<usize, Box<dyn std::error::Error>> {
    let mut moved = 0;
    for r in to.merge_from(from)? {
        moved += r.outcome?.applied.len();
    }
    Ok(moved)
}
