//! Scenario 2 of the issue, power lost: the phone workload (`torture_phone`) and the
//! relay (`torture_relay`, the relay's code as `gridsync serve` runs it) both write
//! SQLite through the power-cut VFS (`gridsync_tests::powerloss_vfs`), which keeps
//! every unsynced write in the process's memory; a SIGKILL then leaves on disk only
//! what was synced, as a power cut does. Every round cuts the phone at a seeded
//! moment while it reports, notes, takes photos, handles cases and syncs, and the
//! community dispatcher accepts reports; half the rounds cut the relay too (half of
//! those as soon as a push's body has reached it). After every cut, with the
//! processes down: the phone's database passes `integrity_check`, holds every write
//! the app was told succeeded and accounts for every local change; a cut relay's
//! databases pass `integrity_check` and its log holds every change the phone and the
//! dispatcher were told it stored. At the end the shipped `gridsync serve` opens what
//! the cuts left, everything drains, and the dispatcher's copy is compared.
//!
//! Photo files are written outside SQLite (temporary file, fsync, rename, folder
//! fsync) and so outside the VFS: for them a cut is a process crash.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gridsync_tests::proxy::{Fault, FaultProxy};

use super::bad_links::compare;
use super::phone_killed::{dispatch, unaccounted_changes, Acked};
use super::{
    drain, enroll_phone, integrity_check, open_raw, panics_in, sqlite_integrity, Level, PhoneId,
    RelayProcess, Report, Rng, DISPATCHER, WORKER,
};

/// The environment that puts a process's SQLite under the power-cut VFS.
pub fn powerloss_env() -> Vec<(&'static str, String)> {
    vec![("TORTURE_VFS", "powerloss".to_owned())]
}

/// Run the scenario.
pub fn run(level: Level, seed: u64, work: &Path) -> Report {
    let started = Instant::now();
    let mut report = Report::new("power_lost", seed);
    let mut rng = Rng::new(seed);
    let cuts = match level {
        Level::Quick => 20,
        Level::Long => 100,
    };
    let env = powerloss_env();
    // The relay never lies about fsync, even when the run's environment asks the
    // phone's VFS to (`TORTURE_VFS_LYING_SYNC=1`, the check that this scenario can
    // fail): `gridsync admin` reads its files from another process while it runs,
    // and would not see what a lying VFS kept in the relay's memory.
    let relay_env = [
        env.clone(),
        vec![("TORTURE_VFS_LYING_SYNC", "0".to_owned())],
    ]
    .concat();
    let data = work.join("relay");
    let relay_log = work.join("relay.log");
    let mut relay = RelayProcess::start_under_vfs(&relay_env, &data, "127.0.0.1:0", &relay_log)
        .expect("the relay starts (is torture_relay built?)");
    let addr = relay.addr();
    let listen = addr.to_string();
    // Clean: it only follows the requests, to count pushes the relay died holding.
    let proxy = FaultProxy::start(addr, |_| Fault::Clean).expect("the proxy starts");
    let phone = enroll_phone(&data, &relay.url, &proxy.url(), WORKER, work, &mut rng)
        .expect("the worker's phone enrolls");
    let observer_id = enroll_phone(&data, &relay.url, &proxy.url(), DISPATCHER, work, &mut rng)
        .expect("the dispatcher's phone enrolls");
    let observer = observer_id.open().expect("the dispatcher's phone opens");

    let mut acked: Vec<Acked> = Vec::new();
    let mut accepted: Vec<Acked> = Vec::new();
    let mut lost_in_rounds: BTreeSet<usize> = BTreeSet::new();
    let mut missing_on_relay: BTreeSet<Vec<u8>> = BTreeSet::new();
    let (mut mid_write, mut mid_sync, mut relay_cuts, mut relay_on_push) = (0u64, 0, 0, 0);
    let (mut acked_pushes_checked, mut syncs_ok, mut restart_failures) = (0u64, 0u64, 0u64);
    for run in 0..cuts {
        let phone_log = work.join(format!("phone-{run}.log"));
        let Ok(mut child) = phone.workload_with(seed, run, 400, &phone_log, &env) else {
            report.broken += 1;
            continue;
        };
        let Some(stdout) = child.stdout.take() else {
            report.broken += 1;
            continue;
        };
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<String>>()
        });
        let delay = Duration::from_millis(rng.range(300, 2500));
        let cut_relay = rng.chance(50);
        let on_push = rng.chance(50);
        let relay_delay = Duration::from_millis(rng.range(200, delay.as_millis() as u64));
        let mut drng = rng.fork();
        let stop = AtomicBool::new(false);
        let pushes_before = proxy.stats.pushes_sent.load(Ordering::Relaxed);
        std::thread::scope(|s| {
            let dispatcher = s.spawn(|| dispatch(&observer, &mut drng, &stop));
            let t = Instant::now();
            if cut_relay {
                if on_push {
                    // As soon as a push's whole body reached the relay (or at the
                    // phone's cut if none did).
                    while proxy.stats.pushes_sent.load(Ordering::Relaxed) == pushes_before
                        && t.elapsed() < delay
                    {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                } else {
                    std::thread::sleep(relay_delay);
                }
                relay.kill(); // the relay's power goes
            }
            std::thread::sleep(delay.saturating_sub(t.elapsed()));
            let _ = child.kill(); // the phone's power goes
            let _ = child.wait();
            super::reaped(child.id());
            stop.store(true, Ordering::Relaxed);
            match dispatcher.join() {
                Ok(done) => accepted.extend(done),
                Err(_) => report.panics += 1,
            }
        });
        report.runs += 1;
        report.faults += 1;
        let lines = reader.join().unwrap_or_default();
        report.panics += panics_in(&phone_log);
        match lines.last().map(String::as_str) {
            Some("B sync") => mid_sync += 1,
            Some(l) if l.starts_with("B ") => mid_write += 1,
            _ => {}
        }
        syncs_ok += lines.iter().filter(|l| l.starts_with("S ok")).count() as u64;
        acked.extend(lines.iter().filter_map(|l| Acked::parse(l)));

        check_phone(&phone, &acked, &mut lost_in_rounds, &mut report, run);
        if cut_relay {
            relay_cuts += 1;
            relay_on_push += u64::from(on_push);
            report.faults += 1;
            match check_relay(&data, &[&phone, &observer_id]) {
                Ok((checked, missing)) => {
                    acked_pushes_checked = acked_pushes_checked.max(checked);
                    for h in missing {
                        if missing_on_relay.insert(h) {
                            eprintln!("power_lost: run {run}: an acknowledged change is not in the relay's log");
                        }
                    }
                }
                Err(e) => {
                    eprintln!("power_lost: run {run}: relay: {e}");
                    report.broken += 1;
                }
            }
            match restart(&relay_env, &data, &listen, &relay_log, true) {
                Some(r) => relay = r,
                None => {
                    restart_failures += 1;
                    report.broken += 1;
                    break;
                }
            }
        }
    }

    // The last cut of the relay, then the shipped binary on what the cuts left.
    relay.kill();
    relay_cuts += 1;
    report.faults += 1;
    match check_relay(&data, &[&phone, &observer_id]) {
        Ok((checked, missing)) => {
            acked_pushes_checked = acked_pushes_checked.max(checked);
            missing_on_relay.extend(missing);
        }
        Err(e) => {
            eprintln!("power_lost: relay at the end: {e}");
            report.broken += 1;
        }
    }
    let relay = restart(&[], &data, &listen, &relay_log, false);
    let dispatched = acked.len();
    acked.extend(accepted);
    let (Some(mut relay), Ok(engine)) = (relay, phone.open()) else {
        eprintln!("power_lost: the relay or the phone does not open at the end");
        report.broken += 1;
        report.seconds = started.elapsed().as_secs_f64();
        return report;
    };
    if !drain(&engine, Instant::now() + Duration::from_secs(60)) {
        report.stuck += 1;
    }
    if !drain(&observer, Instant::now() + Duration::from_secs(60)) {
        report.stuck += 1;
    }
    let docs_compared = compare_at_the_end(&mut report, engine, &observer, &acked, &lost_in_rounds);
    report.lost += missing_on_relay.len() as u64;
    relay.kill();
    report.panics += panics_in(&relay_log);
    report.acked = acked.len() as u64;
    report.set("accepted_by_dispatcher", (acked.len() - dispatched) as u64);
    report.set("phone_cuts", report.runs);
    report.set("relay_cuts", relay_cuts);
    report.set("relay_cuts_on_push", relay_on_push);
    report.set(
        "relay_cuts_mid_push",
        proxy.stats.pushes_unanswered.load(Ordering::Relaxed),
    );
    report.set("cuts_mid_write", mid_write);
    report.set("cuts_mid_sync", mid_sync);
    report.set("acked_pushes_checked", acked_pushes_checked);
    report.set("acked_pushes_missing", missing_on_relay.len() as u64);
    report.set("restart_failures", restart_failures);
    report.set("syncs_ok", syncs_ok);
    report.set("docs_compared", docs_compared);
    report.seconds = started.elapsed().as_secs_f64();
    report
}

/// The relay again on `listen` (the proxy points there): under the VFS with `env`,
/// or the shipped `gridsync serve` when `under_vfs` is false.
pub fn restart(
    env: &[(&str, String)],
    data: &Path,
    listen: &str,
    log: &Path,
    under_vfs: bool,
) -> Option<RelayProcess> {
    for _ in 0..50 {
        let started = if under_vfs {
            RelayProcess::start_under_vfs(env, data, listen, log)
        } else {
            RelayProcess::start(data, listen, log)
        };
        match started {
            Ok(r) => return Some(r),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    None
}

/// At the end of a scenario with one phone, both drained: [`compare`] the phone's
/// `engine` and the `observer` (what is missing at the end is lost); of the rest,
/// a write missing after a round (`lost_in_rounds`, back by the end) or a photo
/// without its bytes is lost too. Answers how many documents were compared.
pub fn compare_at_the_end(
    report: &mut Report,
    engine: gridsync_core::Engine,
    observer: &gridsync_core::Engine,
    acked: &[Acked],
    lost_in_rounds: &BTreeSet<usize>,
) -> u64 {
    let engines = [Some(engine)];
    let indexed: Vec<(usize, Acked)> = acked.iter().map(|w| (0, w.clone())).collect();
    let docs_compared = compare(report, &engines, &indexed, observer);
    for (i, w) in acked.iter().enumerate() {
        let held = engines[0].as_ref().is_some_and(|e| w.held_by(e, false));
        if held
            && w.held_by(observer, false)
            && (lost_in_rounds.contains(&i) || w.bytes_missing_on(observer))
        {
            eprintln!(
                "{}: lost after a round or without its bytes: {w:?}",
                report.scenario
            );
            report.lost += 1;
        }
    }
    docs_compared
}

/// After a cut, with the phone down: `integrity_check`, every acknowledged write
/// held (photos with their bytes), every local change accounted for. Answers the
/// phone's engine, open, unless it did not open.
pub fn check_phone(
    phone: &PhoneId,
    acked: &[Acked],
    lost: &mut BTreeSet<usize>,
    report: &mut Report,
    run: u64,
) -> Option<gridsync_core::Engine> {
    let name = report.scenario;
    if let Err(e) = integrity_check(phone) {
        eprintln!("{name}: run {run}: integrity_check: {e}");
        report.broken += 1;
    }
    let engine = match phone.open() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{name}: run {run}: the database does not open: {e}");
            report.broken += 1;
            return None;
        }
    };
    for (i, w) in acked.iter().enumerate() {
        if !w.held_by(&engine, true) && lost.insert(i) {
            eprintln!("{name}: run {run}: acknowledged write missing: {w:?}");
        }
    }
    match unaccounted_changes(phone, &engine) {
        Ok(0) => {}
        Ok(n) => {
            eprintln!("{name}: run {run}: {n} local changes neither queued nor acknowledged");
            report.broken += n;
        }
        Err(e) => {
            eprintln!("{name}: run {run}: outbox check: {e}");
            report.broken += 1;
        }
    }
    Some(engine)
}

/// With the relay down: its databases pass `integrity_check`, and every change the
/// `phones` were told it stored (outbox rows with `acked_ms`) is in its log. Answers
/// how many were checked and the hashes missing.
pub fn check_relay(data: &Path, phones: &[&PhoneId]) -> Result<(u64, Vec<Vec<u8>>), String> {
    let relay_db = rusqlite::Connection::open(data.join("relay.db")).map_err(|e| e.to_string())?;
    sqlite_integrity(&relay_db).map_err(|e| format!("relay.db: {e}"))?;
    let server_db =
        rusqlite::Connection::open(data.join("server.db")).map_err(|e| e.to_string())?;
    sqlite_integrity(&server_db).map_err(|e| format!("server.db: {e}"))?;
    drop(server_db);
    let mut in_log = relay_db
        .prepare("SELECT 1 FROM log WHERE hash = ?1")
        .map_err(|e| e.to_string())?;
    let (mut checked, mut missing) = (0u64, Vec::new());
    for phone in phones {
        let conn = open_raw(phone)?;
        let mut st = conn
            .prepare("SELECT hash FROM outbox WHERE acked_ms IS NOT NULL")
            .map_err(|e| e.to_string())?;
        let hashes = st
            .query_map([], |r| r.get::<_, Vec<u8>>(0))
            .map_err(|e| e.to_string())?;
        for h in hashes {
            let h = h.map_err(|e| e.to_string())?;
            checked += 1;
            if !in_log.exists([&h]).map_err(|e| e.to_string())? {
                missing.push(h);
            }
        }
    }
    Ok((checked, missing))
}
