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
//! each skew dispatches a case the true-time dispatcher has just reported, and the
//! relay's own case index (`server.db`) must put its deadline the rule's 72 hours
//! from the relay's now, not where the dispatching device's clock put it. Then
//! device times: no time in the relay's index of the cases is later than the
//! relay's now, and the relay's reading (`gridsync_server::relay::times`, with the
//! receipts it recorded) flags entries of the fast phones as implausible.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use gridsync_core::sync::SyncError;
use gridsync_core::vault::DeviceKey;
use gridsync_core::{CaseFilter, DocId, Engine, Status, SupervisionLevel};
use gridsync_server::relay::times;

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
    for (i, e) in engines.iter().enumerate() {
        let Some(e) = e else { continue };
        if let Err(why) = drain(e, deadline) {
            report.stuck_queue(&format!("phone {i}"), why);
        }
    }
    if let Err(why) = drain(&observer, Instant::now() + Duration::from_secs(60)) {
        report.stuck_queue("the dispatcher", why);
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
    let server_db = data.join("server.db");
    let deadlines = deadlines(&skewed_dispatchers, &observer, &server_db);
    report.broken += (OFFSETS_H.len() - deadlines.len()) as u64;
    // The relay judges a deadline by its own clock: the rule's span from when it
    // received the dispatch (or from the report it follows), not the device's.
    let by_device_clock = deadlines
        .iter()
        .filter(|d| (d.relay_minutes - RULE_H * 60).abs() > TOLERANCE_MIN || d.relay_overdue)
        .count() as u64;
    report.broken += by_device_clock;
    let future = future_times(&server_db);
    report.broken += future.unwrap_or(1);
    let flagged = flagged_entries(&observer, &relay_db);
    // The fast phones' reports are later than the relay received them.
    report.broken += u64::from(flagged.0 == 0);
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
        "deadline_hours_as_written",
        deadlines
            .iter()
            .map(|d| d.written_hours)
            .collect::<Vec<i64>>(),
    );
    report.set(
        "deadline_hours_after_relay_now",
        deadlines
            .iter()
            .map(|d| (d.relay_minutes + 30).div_euclid(60))
            .collect::<Vec<i64>>(),
    );
    report.set(
        "overdue_as_written_at_once",
        deadlines.iter().filter(|d| d.written_overdue).count() as u64,
    );
    report.set(
        "overdue_on_relay_at_once",
        deadlines.iter().filter(|d| d.relay_overdue).count() as u64,
    );
    report.set("deadlines_by_device_clock", by_device_clock);
    report.set("future_times_in_relay_index", future.unwrap_or(u64::MAX));
    report.set("entries_flagged", flagged.0);
    report.set("entries_read", flagged.1);
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

    /// The receipts the relay recorded for a case's timeline entries.
    fn receipts(&self, doc: &DocId) -> std::collections::HashMap<String, i64> {
        let read = || -> rusqlite::Result<std::collections::HashMap<String, i64>> {
            let c = rusqlite::Connection::open(&self.0)?;
            c.busy_timeout(Duration::from_secs(10))?;
            let mut stmt =
                c.prepare("SELECT entry_id, received_ms FROM entry_receipts WHERE doc_id = ?1")?;
            let rows = stmt.query_map([doc.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        };
        read().unwrap_or_default()
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

/// The directory's default deadline for the `water` department, in hours.
const RULE_H: i64 = 72;

/// How far the relay's deadline may be from the rule's span from its now, in
/// minutes: the relay's tolerance for clocks (5) and the minutes the round takes.
const TOLERANCE_MIN: i64 = times::TOLERANCE_MINUTES + 10;

/// One skewed dispatcher's dispatch, as written and as the relay judges it.
struct Deadline {
    /// The deadline in the document, hours from now.
    written_hours: i64,
    /// Whether that deadline is past already.
    written_overdue: bool,
    /// The deadline in the relay's case index, minutes from the relay's now.
    relay_minutes: i64,
    /// Whether the relay's supervision shows it overdue at once.
    relay_overdue: bool,
}

/// Each skewed dispatcher dispatches a case the true-time `observer` has just
/// reported, with the directory's default deadline. For each: the deadline as
/// written in the document (the observer's copy: every replica holds the same),
/// and as the relay's case index (`server.db`, read as the console reads it) holds
/// it, each against the relay's now, and whether the relay's supervision (the
/// same `SupervisionLevel::effective` its pages and notices use, at its clock)
/// shows it overdue at once.
fn deadlines(dispatchers: &[Engine], observer: &Engine, server_db: &Path) -> Vec<Deadline> {
    let mut out = Vec::new();
    for (i, d) in dispatchers.iter().enumerate() {
        let mut case = super::bad_links::new_case(&format!("时钟派遣 第{i}件"));
        case.grid = WORKER.strip_prefix("w-").and_then(|g| g.parse().ok());
        let Ok(id) = observer.report_case(case) else {
            continue;
        };
        let _ = observer.sync(&mut |_| {});
        let _ = d.sync(&mut |_| {});
        let dept = "water"
            .parse()
            .expect("a department of the sample directory");
        if d.dispatch(&id, dept, None).is_err() || d.sync(&mut |_| {}).is_err() {
            continue;
        }
        let _ = observer.sync(&mut |_| {});
        let Some(written) = observer.get_case(&id).ok().and_then(|c| c.state.deadline) else {
            continue;
        };
        let Some(judged) = index_deadline(server_db, &id) else {
            continue;
        };
        let now = Utc::now();
        let level = |deadline| {
            SupervisionLevel::effective(Status::Dispatched, Some(deadline), None, now).is_some()
        };
        out.push(Deadline {
            written_hours: (written - now).num_hours(),
            written_overdue: level(written),
            relay_minutes: (judged - now).num_minutes(),
            relay_overdue: level(judged),
        });
    }
    out
}

fn server_index(server_db: &Path) -> Option<rusqlite::Connection> {
    let c = rusqlite::Connection::open_with_flags(
        server_db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .ok()?;
    c.busy_timeout(Duration::from_secs(10)).ok()?;
    Some(c)
}

/// The deadline of case `id` in the relay's case index.
fn index_deadline(server_db: &Path, id: &DocId) -> Option<chrono::DateTime<Utc>> {
    let ms: Option<i64> = server_index(server_db)?
        .query_row(
            "SELECT deadline_ms FROM cases WHERE doc_id = ?1",
            [id.as_str()],
            |r| r.get(0),
        )
        .ok()?;
    chrono::DateTime::from_timestamp_millis(ms?)
}

/// How many times in the relay's case index (a report, an acceptance, a handling,
/// a closing) are later than the relay's now, beyond its tolerance: a time from a
/// fast phone taken as written. `None` if the index could not be read.
fn future_times(server_db: &Path) -> Option<u64> {
    let limit =
        (Utc::now() + chrono::Duration::minutes(times::TOLERANCE_MINUTES)).timestamp_millis();
    server_index(server_db)?
        .query_row(
            "SELECT count(*) FROM cases WHERE created_ms > ?1 OR accepted_ms > ?1
                OR handled_ms > ?1 OR closed_ms > ?1",
            [limit],
            |r| r.get::<_, i64>(0),
        )
        .ok()
        .map(|n| n.max(0) as u64)
}

/// Over every case the observer holds (the community's, as the relay holds them):
/// the timeline entries the relay's reading flags as implausible (with the
/// receipts the relay recorded), and the entries read.
fn flagged_entries(observer: &Engine, db: &RelayDb) -> (u64, u64) {
    let (mut flagged, mut read) = (0, 0);
    let mut filter = CaseFilter {
        limit: 1000,
        ..Default::default()
    };
    loop {
        let page = observer.list_cases(&filter).unwrap_or_default();
        for summary in &page {
            let Ok(case) = observer.get_case(&summary.id) else {
                continue;
            };
            let received = db.receipts(&summary.id);
            let reading = times::read(&case.doc.timeline, &received, Utc::now());
            read += reading.len() as u64;
            flagged += reading.iter().filter(|t| t.flag.is_some()).count() as u64;
        }
        if page.len() < 1000 {
            break;
        }
        filter.offset += 1000;
    }
    (flagged, read)
}
