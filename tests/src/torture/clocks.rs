//! Scenario 6 of the issue, clocks — in part. `faketime` is not installed, so each
//! phone's clock is the engine's own clock (`Engine::open_encrypted_with_clock`, the
//! time every write is stamped with) set ±3 days and ±1 year off, while the relay
//! and the dispatcher run on the true time. The phones report, note, handle and sync
//! directly with the relay; the dispatcher accepts reports. Checked: nothing lost or
//! duplicated, every replica converges, and how many syncs each skewed phone had
//! refused. Then tokens by the relay's clock: no phone's token is rotated before
//! the relay's 24 hours, whatever its own clock says; a token aged past them in the
//! relay's records is rotated at the next syncs; one past its expiry there is refused
//! (401, no wipe) and works again once extended. Then deadlines: a dispatcher at
//! each skew dispatches a case, and where the relay puts its deadline against its
//! own clock is measured (printed, not judged: the deadline is written by the
//! dispatching device). Not checked: implausible device times flagged (the relay
//! does not flag them yet).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use gridsync_core::sync::SyncError;
use gridsync_core::vault::DeviceKey;
use gridsync_core::{CaseFilter, Engine, Status, SupervisionLevel};

use super::bad_links::{compare, Worker};
use super::phone_killed::dispatch;
use super::{
    drain, enroll_phone, panics_in, Level, PhoneId, RelayProcess, Report, Rng, DISPATCHER, WORKER,
    WORKER_2,
};

/// The phones' clock offsets, in hours.
const OFFSETS_H: [i64; 4] = [-365 * 24, -3 * 24, 3 * 24, 365 * 24];

/// A phone of the scenario: its id and its clock, `hours` off the true time.
fn skewed(id: &PhoneId, hours: i64) -> Option<Engine> {
    let offset = chrono::Duration::hours(hours);
    Engine::open_encrypted_with_clock(
        &id.db,
        id.identity.clone(),
        &DeviceKey::from_bytes(id.key),
        Arc::new(move || Utc::now() + offset),
    )
    .ok()
}

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
    let relay_db = RelayDb(data.join("relay.db"));
    let enrolled_tokens: Vec<Option<Vec<u8>>> =
        ids.iter().map(|id| relay_db.token_hash(id)).collect();
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
                s.spawn(move || {
                    let engine = skewed(id, *hours)?;
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
    let tokens = tokens(&relay_db, &ids, &engines, &enrolled_tokens);
    report.broken += tokens.broken();
    let mut skewed_dispatchers = Vec::new();
    for hours in OFFSETS_H {
        let id = enroll_phone(&data, &relay.url, &relay.url, DISPATCHER, work, &mut rng)
            .expect("a dispatcher enrolls");
        skewed_dispatchers.extend(skewed(&id, hours));
    }
    let deadlines = deadlines(&skewed_dispatchers, &observer);
    report.broken += (OFFSETS_H.len() - deadlines.len()) as u64;
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
    report.set("tokens_rotated_early", tokens.rotated_early);
    report.set("tokens_rotated_when_due", tokens.rotated_when_due);
    report.set("tokens_refused_when_expired", tokens.refused_when_expired);
    report.set("tokens_working_when_extended", tokens.working_when_extended);
    report.set(
        "deadline_hours_after_relay_now",
        deadlines.iter().map(|d| d.0).collect::<Vec<i64>>(),
    );
    report.set(
        "overdue_on_relay_at_once",
        deadlines.iter().filter(|d| d.1).count() as u64,
    );
    report.set("docs_compared", docs_compared);
    report.seconds = started.elapsed().as_secs_f64();
    report
}

/// The relay's records, read and aged directly (as `gridsync admin` does while it
/// runs): the relay reads a device's row at every request.
struct RelayDb(std::path::PathBuf);

impl RelayDb {
    fn run(&self, sql: &str, id: &PhoneId, ms: i64) -> bool {
        rusqlite::Connection::open(&self.0)
            .and_then(|c| {
                c.busy_timeout(Duration::from_secs(10))?;
                c.execute(sql, rusqlite::params![id.identity.device.to_string(), ms])
            })
            .is_ok_and(|n| n == 1)
    }

    fn token_hash(&self, id: &PhoneId) -> Option<Vec<u8>> {
        let c = rusqlite::Connection::open(&self.0).ok()?;
        c.busy_timeout(Duration::from_secs(10)).ok()?;
        c.query_row(
            "SELECT token_hash FROM devices WHERE device_id = ?1",
            [id.identity.device.to_string()],
            |r| r.get(0),
        )
        .ok()
    }
}

/// Token checks over the skewed phones, each counted per phone.
#[derive(Default)]
struct Tokens {
    phones: u64,
    rotated_early: u64,
    rotated_when_due: u64,
    refused_when_expired: u64,
    working_when_extended: u64,
}

impl Tokens {
    fn broken(&self) -> u64 {
        self.rotated_early
            + (self.phones - self.rotated_when_due)
            + (self.phones - self.refused_when_expired)
            + (self.phones - self.working_when_extended)
    }
}

/// Lifetime and rotation of each skewed phone's token, judged by the relay's clock.
fn tokens(
    db: &RelayDb,
    ids: &[PhoneId],
    engines: &[Option<Engine>],
    enrolled: &[Option<Vec<u8>>],
) -> Tokens {
    let mut t = Tokens::default();
    let now = || Utc::now().timestamp_millis();
    let day = 24 * 3_600_000;
    for ((id, engine), first) in ids.iter().zip(engines).zip(enrolled) {
        let Some(engine) = engine else { continue };
        t.phones += 1;
        // Minutes old on the relay's clock, whatever the phone's says.
        let before = db.token_hash(id);
        if before.is_none() || &before != first {
            eprintln!("clocks: a token rotated before the relay's 24 hours");
            t.rotated_early += 1;
        }
        // 25 hours old on the relay's clock: rotated by the next two syncs (offer,
        // then confirm).
        let aged = db.run(
            "UPDATE devices SET token_issued_ms = ?2 WHERE device_id = ?1",
            id,
            now() - day - 3_600_000,
        );
        let synced = engine.sync(&mut |_| {}).is_ok() && engine.sync(&mut |_| {}).is_ok();
        if aged && synced && db.token_hash(id).is_some_and(|h| Some(h) != before) {
            t.rotated_when_due += 1;
        }
        // Expired on the relay's clock a second ago: refused, and not told to wipe.
        let expired = db.run(
            "UPDATE devices SET expires_ms = ?2 WHERE device_id = ?1",
            id,
            now() - 1000,
        );
        if expired
            && matches!(
                engine.sync(&mut |_| {}),
                Err(SyncError::Unauthorized { wipe: false, .. })
            )
        {
            t.refused_when_expired += 1;
        }
        let extended = db.run(
            "UPDATE devices SET expires_ms = ?2 WHERE device_id = ?1",
            id,
            now() + 30 * day,
        );
        if extended && engine.sync(&mut |_| {}).is_ok() {
            t.working_when_extended += 1;
        }
    }
    t
}

/// Each skewed dispatcher dispatches a reported case with the directory's default
/// deadline; the true-time `observer` reads it back from the relay. For each: the
/// hours from the relay's now to the deadline, and whether the relay's supervision
/// (the same `SupervisionLevel::effective` its pages and notices use, at its clock)
/// shows it overdue at once.
fn deadlines(dispatchers: &[Engine], observer: &Engine) -> Vec<(i64, bool)> {
    let reported = CaseFilter {
        statuses: vec![Status::Reported],
        limit: 1000,
        ..Default::default()
    };
    let mut out = Vec::new();
    for d in dispatchers {
        let _ = d.sync(&mut |_| {});
        let Some(case) = d
            .list_cases(&reported)
            .ok()
            .and_then(|c| c.into_iter().next())
        else {
            continue;
        };
        let dept = "water"
            .parse()
            .expect("a department of the sample directory");
        if d.dispatch(&case.id, dept, None).is_err() || d.sync(&mut |_| {}).is_err() {
            continue;
        }
        let _ = observer.sync(&mut |_| {});
        let Some(deadline) = observer
            .get_case(&case.id)
            .ok()
            .and_then(|c| c.state.deadline)
        else {
            continue;
        };
        let now = Utc::now();
        let overdue = SupervisionLevel::effective(Status::Dispatched, Some(deadline), None, now);
        out.push(((deadline - now).num_hours(), overdue.is_some()));
    }
    out
}
