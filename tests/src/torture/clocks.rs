//! Scenario 6 of the issue, clocks — in part. `faketime` is not installed, so each
//! phone's clock is the engine's own clock (`Engine::open_encrypted_with_clock`, the
//! time every write is stamped with) set ±3 days and ±1 year off, while the relay
//! and the dispatcher run on the true time. The phones report, note, handle and sync
//! directly with the relay; the dispatcher accepts reports. Checked: nothing lost or
//! duplicated, every replica converges, and how many syncs each skewed phone had
//! refused. Not checked here: deadlines and token expiry judged by the relay, and
//! implausible device times flagged (the relay does not flag them yet).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use gridsync_core::vault::DeviceKey;
use gridsync_core::Engine;

use super::bad_links::{compare, Worker};
use super::phone_killed::dispatch;
use super::{
    drain, enroll_phone, panics_in, Level, RelayProcess, Report, Rng, DISPATCHER, WORKER, WORKER_2,
};

/// The phones' clock offsets, in hours.
const OFFSETS_H: [i64; 4] = [-365 * 24, -3 * 24, 3 * 24, 365 * 24];

/// Run the scenario.
pub fn run(level: Level, seed: u64, work: &Path) -> Report {
    let started = Instant::now();
    let mut report = Report::new("clocks", seed);
    let mut rng = Rng::new(seed);
    let (rounds, seconds) = match level {
        Level::Quick => (1, 20),
        Level::Long => (2, 120),
    };
    let data = work.join("relay");
    let relay_log = work.join("relay.log");
    let mut relay = RelayProcess::start(&data, "127.0.0.1:0", &relay_log)
        .expect("the relay starts (is the gridsync binary built?)");
    let offsets: Vec<i64> = (0..rounds).flat_map(|_| OFFSETS_H).collect();
    let ids: Vec<_> = offsets
        .iter()
        .enumerate()
        .map(|(p, _)| {
            let user = if p % 2 == 0 { WORKER } else { WORKER_2 };
            enroll_phone(&data, &relay.url, &relay.url, user, work, &mut rng)
                .expect("a phone enrolls")
        })
        .collect();
    let observer = enroll_phone(&data, &relay.url, &relay.url, DISPATCHER, work, &mut rng)
        .expect("the dispatcher enrolls")
        .open()
        .expect("the dispatcher's phone opens");

    let until = Instant::now() + Duration::from_secs(seconds);
    let acked = Mutex::new(Vec::new());
    let refused: Vec<Mutex<u64>> = offsets.iter().map(|_| Mutex::new(0)).collect();
    let stop = AtomicBool::new(false);
    let mut drng = rng.fork();
    let mut engines: Vec<Option<Engine>> = Vec::new();
    let mut accepted = Vec::new();
    std::thread::scope(|s| {
        let dispatcher = s.spawn(|| dispatch(&observer, &mut drng, &stop));
        let handles: Vec<_> = ids
            .iter()
            .zip(&offsets)
            .enumerate()
            .map(|(p, (id, hours))| {
                let mut rng = rng.fork();
                let (acked, refused) = (&acked, &refused[p]);
                let offset = chrono::Duration::hours(*hours);
                s.spawn(move || {
                    let engine = Engine::open_encrypted_with_clock(
                        &id.db,
                        id.identity.clone(),
                        &DeviceKey::from_bytes(id.key),
                        Arc::new(move || Utc::now() + offset),
                    )
                    .ok()?;
                    let phone = Worker {
                        at: p,
                        tag: format!("时钟{p}"),
                        acked,
                        failed: refused,
                    };
                    phone.work(&engine, &mut rng, until, 300)?;
                    Some(engine)
                })
            })
            .collect();
        engines = handles
            .into_iter()
            .map(|h| h.join().ok().flatten())
            .collect();
        stop.store(true, Ordering::Relaxed);
        match dispatcher.join() {
            Ok(done) => accepted = done,
            Err(_) => report.panics += 1,
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    for e in engines.iter().flatten() {
        if !drain(e, deadline) {
            report.stuck += 1;
        }
    }
    if !drain(&observer, Instant::now() + Duration::from_secs(60)) {
        report.stuck += 1;
    }
    let mut acked = acked.into_inner().unwrap_or_default();
    let dispatcher_writes = accepted.len() as u64;
    // The dispatcher's acceptances must reach the phone that reported the case.
    for w in accepted {
        if let Some(p) = acked
            .iter()
            .find(|(_, a)| a.case() == w.case())
            .map(|(p, _)| *p)
        {
            acked.push((p, w));
        }
    }
    let docs_compared = compare(&mut report, &engines, &acked, &observer);
    report.broken += engines.iter().filter(|e| e.is_none()).count() as u64;
    relay.kill();
    report.panics += panics_in(&relay_log);
    report.runs = offsets.len() as u64;
    report.faults = offsets.len() as u64;
    report.acked = acked.len() as u64;
    report.set("offsets_hours", offsets);
    report.set(
        "failed_syncs_per_phone",
        refused
            .into_iter()
            .map(|m| m.into_inner().unwrap_or(0))
            .collect::<Vec<u64>>(),
    );
    report.set("accepted_by_dispatcher", dispatcher_writes);
    report.set("docs_compared", docs_compared);
    report.seconds = started.elapsed().as_secs_f64();
    report
}
