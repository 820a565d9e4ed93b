//! Scenario 3 of the issue, its I/O-error half: `EIO` injected into SQLite's reads,
//! writes and syncs through the power-cut VFS (`gridsync_tests::powerloss_vfs`), on
//! the phone and on the relay.
//!
//! Phone: rounds of a seeded 16-operation workload (`torture_phone`: reports, notes,
//! photos, handling, syncs with the real relay), each with one fault: the N-th write,
//! sync or read after the database opened fails with `SQLITE_IOERR_*`, once. The
//! first round runs without a fault and counts the calls, so every later fault falls
//! inside a workload (long: at every write and every sync, and 40 reads; quick: six
//! writes, four syncs and four reads, seeded). The fault must surface as a storage
//! error (what an app shows and retries), or be absorbed (a checkpoint's write);
//! every operation after it must work; the process must finish; then the database
//! passes `integrity_check`, holds every acknowledged write, accounts for every local
//! change, and drains to the relay.
//!
//! Relay: `torture_relay` with faults at seeded writes and syncs spread over its
//! work while a phone (in this process) reports, notes and syncs: a push whose
//! storage failed must be answered with an error the phone retries, never
//! acknowledged. Once every fault has fired the phone drains without a restart; then
//! the relay's power is cut (the VFS also buffers), its databases are checked, every
//! change it acknowledged must be in its log, and the shipped `gridsync serve` takes
//! over for the comparison with the dispatcher's copy.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, Instant};

use gridsync_core::sync::SyncError;

use super::bad_links::{compare, new_case};
use super::phone_killed::Acked;
use super::power_lost::{check_phone, check_relay, restart};
use super::{
    drain, enroll_phone, panics_in, Level, PhoneId, RelayProcess, Report, Rng, DISPATCHER, WORKER,
    WORKER_2,
};

/// Operations per phone round: small enough that a fault at every write is a long
/// run, not a day.
const OPS: u64 = 16;
/// A phone round may take this long before it is killed as hung.
const ROUND_LIMIT: Duration = Duration::from_secs(60);

/// The VFS's counts: (writes, syncs, reads).
type Calls = (u64, u64, u64);

/// What the rounds counted.
#[derive(Default)]
struct Counts {
    /// Errors by kind, on the phone's own faults and the relay's answers.
    errors: BTreeMap<String, u64>,
    /// Errors an app cannot act on.
    unclear: u64,
    /// Phone: operations that failed after the one the fault hit.
    errors_after_fault: u64,
    /// Phone rounds whose fault surfaced as an error, and those absorbed.
    surfaced: u64,
    absorbed: u64,
    /// Phone rounds whose workload ended before the scheduled call.
    not_reached: u64,
    /// Phone rounds that did not finish.
    phone_died: u64,
}

/// Run the scenario.
pub fn run(level: Level, seed: u64, work: &Path) -> Report {
    let started = Instant::now();
    let mut report = Report::new("io_errors", seed);
    let mut rng = Rng::new(seed);
    let data = work.join("relay");
    let relay_log = work.join("relay.log");
    let mut counts = Counts::default();
    let mut acked: Vec<(usize, Acked)> = Vec::new();

    // The phone's faults, against the shipped relay.
    let mut relay = RelayProcess::start(&data, "127.0.0.1:0", &relay_log)
        .expect("the relay starts (is the gridsync binary built?)");
    let listen = relay.addr().to_string();
    let phone = enroll_phone(&data, &relay.url, &relay.url, WORKER, work, &mut rng)
        .expect("the worker's phone enrolls");
    let observer_id = enroll_phone(&data, &relay.url, &relay.url, DISPATCHER, work, &mut rng)
        .expect("the dispatcher's phone enrolls");
    let mut lost_in_rounds: BTreeSet<usize> = BTreeSet::new();
    let mut phone_acked: Vec<Acked> = Vec::new();
    let mut plan: Vec<Option<(&str, u64)>> = vec![None];
    let mut run_no = 0u64;
    let mut i = 0;
    let (mut workload_calls, mut phone_faults) = ((0u64, 0u64, 0u64), 0u64);
    while i < plan.len() {
        let fault = plan[i];
        i += 1;
        let mut env = vec![("TORTURE_VFS", "powerloss".to_owned())];
        if let Some((kind, n)) = fault {
            env.push(("TORTURE_VFS_FAULTS", format!("{kind}:{n}")));
        }
        let calls = phone_round(
            &phone,
            seed,
            run_no,
            &env,
            work,
            fault.is_some(),
            &mut phone_acked,
            &mut counts,
            &mut report,
        );
        check_phone(
            &phone,
            &phone_acked,
            &mut lost_in_rounds,
            &mut report,
            run_no,
        );
        if let Ok(engine) = phone.open() {
            if let Err(why) = drain(&engine, Instant::now() + Duration::from_secs(60)) {
                report.stuck_queue(&format!("run {run_no}: the phone after its fault"), why);
            }
        }
        run_no += 1;
        report.runs += 1;
        if fault.is_some() {
            report.faults += 1;
            phone_faults += 1;
        }
        // The clean first round sets the plan: calls past those of opening.
        if let (0, Some((at_open, total))) = (i - 1, calls) {
            workload_calls = (
                total.0.saturating_sub(at_open.0),
                total.1.saturating_sub(at_open.1),
                total.2.saturating_sub(at_open.2),
            );
            plan.extend(phone_plan(level, &mut rng, at_open, workload_calls));
        }
    }
    acked.extend(phone_acked.iter().map(|w| (0, w.clone())));

    // The relay's faults: the relay's code under the VFS, with a schedule.
    relay.kill();
    let relay_faults = match level {
        Level::Quick => 8,
        Level::Long => 40,
    };
    let mut schedule = Vec::new();
    let (mut w, mut s) = (rng.range(150, 300), rng.range(40, 80));
    for k in 0..relay_faults {
        if k % 2 == 0 {
            schedule.push(format!("write:{w}"));
            w += rng.range(40, 160);
        } else {
            schedule.push(format!("sync:{s}"));
            s += rng.range(10, 40);
        }
    }
    let env = vec![
        ("TORTURE_VFS", "powerloss".to_owned()),
        ("TORTURE_VFS_FAULTS", schedule.join(",")),
    ];
    let _ = std::fs::write(&relay_log, b"");
    report.panics += panics_in(&relay_log);
    let relay_faults_fired;
    let mut relay_syncs = 0u64;
    match restart(&env, &data, &listen, &relay_log, true) {
        Some(r) => relay = r,
        None => {
            eprintln!("io_errors: torture_relay does not start");
            report.broken += 1;
            report.seconds = started.elapsed().as_secs_f64();
            return report;
        }
    }
    let worker_id = enroll_phone(&data, &relay.url, &relay.url, WORKER_2, work, &mut rng);
    let worker = worker_id
        .as_ref()
        .map_err(|e| e.to_string())
        .and_then(|p| p.open().map_err(|e| e.to_string()));
    let (Ok(worker_id), Ok(worker)) = (&worker_id, worker) else {
        eprintln!("io_errors: the second phone does not enroll with torture_relay");
        report.broken += 1;
        report.seconds = started.elapsed().as_secs_f64();
        return report;
    };
    let mut worker_acked: Vec<Acked> = Vec::new();
    let deadline = Instant::now()
        + Duration::from_secs(match level {
            Level::Quick => 60,
            Level::Long => 300,
        });
    let mut step = 0u64;
    loop {
        let fired = fired(&relay_log);
        if fired >= relay_faults || Instant::now() >= deadline {
            relay_faults_fired = fired;
            break;
        }
        for _ in 0..rng.range(1, 4) {
            let title = format!("读写错误 第{step}件");
            step += 1;
            match worker.report_case(new_case(&title)) {
                Ok(id) => {
                    if rng.chance(50) {
                        let text = format!("备注 {title}");
                        if worker.add_note(&id, &text).is_ok() {
                            worker_acked.push(Acked::Note(id.to_string(), text));
                        }
                    }
                    worker_acked.push(Acked::Case(id.to_string(), title));
                }
                Err(e) => {
                    eprintln!("io_errors: the second phone's report failed: {e}");
                    report.broken += 1;
                }
            }
        }
        relay_syncs += 1;
        if let Err(e) = worker.sync(&mut |_| {}) {
            let kind = match &e {
                SyncError::Network(_) => "network".to_owned(),
                SyncError::Refused { code, .. } => format!("refused:{code}"),
                _ => {
                    eprintln!("io_errors: a sync error an app cannot act on: {e}");
                    counts.unclear += 1;
                    "other".to_owned()
                }
            };
            *counts.errors.entry(kind).or_default() += 1;
        }
    }
    report.faults += relay_faults_fired;
    if relay_faults_fired < relay_faults {
        eprintln!("io_errors: only {relay_faults_fired} of {relay_faults} relay faults fired");
        report.broken += 1;
    }
    // The faults have stopped: the next syncs must drain, without a restart.
    let t = Instant::now();
    if let Err(why) = drain(&worker, t + Duration::from_secs(60)) {
        report.stuck_queue("the second phone once the relay's faults stopped", why);
    }
    let drain_after_relay_faults = t.elapsed().as_secs_f64();
    // Then its power goes: what it acknowledged must be on its disk.
    relay.kill();
    report.panics += panics_in(&relay_log);
    let (checked, missing) = match check_relay(&data, &[&phone, worker_id]) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("io_errors: relay: {e}");
            report.broken += 1;
            (0, Vec::new())
        }
    };
    let missing_on_relay = missing.len() as u64;
    let relay = restart(&[], &data, &listen, &relay_log, false);
    let (Some(mut relay), Ok(phone_engine), Ok(observer)) =
        (relay, phone.open(), observer_id.open())
    else {
        eprintln!("io_errors: the relay or a phone does not open at the end");
        report.broken += 1;
        report.seconds = started.elapsed().as_secs_f64();
        return report;
    };
    acked.extend(worker_acked.iter().map(|w| (1, w.clone())));
    if let Err(why) = drain(&observer, Instant::now() + Duration::from_secs(60)) {
        report.stuck_queue("the dispatcher", why);
    }
    let engines = [Some(phone_engine), Some(worker)];
    let docs_compared = compare(&mut report, &engines, &acked, &observer);
    for (i, w) in phone_acked.iter().enumerate() {
        let held = engines[0].as_ref().is_some_and(|e| w.held_by(e, false));
        if held
            && w.held_by(&observer, false)
            && (lost_in_rounds.contains(&i) || w.bytes_missing_on(&observer))
        {
            eprintln!("io_errors: lost after a round or without its bytes: {w:?}");
            report.lost += 1;
        }
    }
    report.lost += missing_on_relay;
    relay.kill();
    report.panics += panics_in(&relay_log);
    report.broken += counts.unclear + counts.errors_after_fault + counts.phone_died;
    report.acked = acked.len() as u64;
    report.set("phone_faults", phone_faults);
    report.set(
        "phone_workload_calls",
        serde_json::json!({"writes": workload_calls.0, "syncs": workload_calls.1, "reads": workload_calls.2}),
    );
    report.set("phone_faults_surfaced", counts.surfaced);
    report.set("phone_faults_absorbed", counts.absorbed);
    report.set("phone_faults_not_reached", counts.not_reached);
    report.set("errors_after_fault", counts.errors_after_fault);
    report.set("phone_died", counts.phone_died);
    report.set("relay_faults", relay_faults_fired);
    report.set("relay_syncs", relay_syncs);
    report.set("errors", serde_json::json!(counts.errors));
    report.set("unclear_errors", counts.unclear);
    report.set(
        "drain_seconds_after_relay_faults",
        (drain_after_relay_faults * 10.0).round() / 10.0,
    );
    report.set("acked_pushes_checked", checked);
    report.set("acked_pushes_missing", missing_on_relay);
    report.set("docs_compared", docs_compared);
    report.seconds = started.elapsed().as_secs_f64();
    report
}

/// The faults of the phone rounds: long, every write and sync of the workload and
/// 40 reads; quick, six writes, four syncs and four reads; ordinals counted from the
/// process's start (`at_open` are the calls of opening).
fn phone_plan(
    level: Level,
    rng: &mut Rng,
    at_open: (u64, u64, u64),
    workload: (u64, u64, u64),
) -> Vec<Option<(&'static str, u64)>> {
    let pick = |rng: &mut Rng, kind: &'static str, base: u64, of: u64, n: u64| {
        let mut picked = BTreeSet::new();
        for _ in 0..n.min(of) * 4 {
            if picked.len() as u64 >= n.min(of) {
                break;
            }
            picked.insert(rng.range(1, of + 1));
        }
        picked
            .into_iter()
            .map(|k| Some((kind, base + k)))
            .collect::<Vec<_>>()
    };
    let (w, s, r) = workload;
    match level {
        // Reads too: one failed read used to leave the phone's SQLCipher
        // connections failing every operation until the app restarted
        // (docs/reliability.md, scenario 3).
        Level::Quick => [
            pick(rng, "write", at_open.0, w, 6),
            pick(rng, "sync", at_open.1, s, 4),
            pick(rng, "read", at_open.2, r, 4),
        ]
        .concat(),
        Level::Long => (1..=w)
            .map(|k| Some(("write", at_open.0 + k)))
            .chain((1..=s).map(|k| Some(("sync", at_open.1 + k))))
            .chain(pick(rng, "read", at_open.2, r, 40))
            .collect(),
    }
}

/// Faults the relay announced in its log so far.
fn fired(log: &Path) -> u64 {
    std::fs::read_to_string(log)
        .map(|s| s.matches("powerloss_vfs: fault").count() as u64)
        .unwrap_or(0)
}

/// `key=value` numbers of a `V` line.
fn vfs_counts(line: &str) -> (u64, u64, u64, u64) {
    let get = |key: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (get("writes="), get("syncs="), get("reads="), get("faults="))
}

/// One phone round; answers the VFS's counts at open and at the end, if it printed
/// them.
#[allow(clippy::too_many_arguments)]
fn phone_round(
    phone: &PhoneId,
    seed: u64,
    run: u64,
    env: &[(&str, String)],
    work: &Path,
    faulted: bool,
    acked: &mut Vec<Acked>,
    counts: &mut Counts,
    report: &mut Report,
) -> Option<(Calls, Calls)> {
    let log = work.join(format!("phone-{run}.log"));
    let Ok(mut child) = phone.workload_with(seed, run, OPS, &log, env) else {
        report.broken += 1;
        return None;
    };
    let stdout = child.stdout.take()?;
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + ROUND_LIMIT;
    let (mut at_open, mut at_end, mut done) = (None, None, false);
    let (mut errors, mut faults_fired) = (0u64, 0u64);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            break;
        };
        if line == "done" {
            done = true;
            continue;
        }
        if let Some(w) = Acked::parse(&line) {
            acked.push(w);
            continue;
        }
        if line.starts_with("V0 ") {
            let (w, s, r, _) = vfs_counts(&line);
            at_open = Some((w, s, r));
            continue;
        }
        if line.starts_with("V ") {
            let (w, s, r, f) = vfs_counts(&line);
            at_end = Some((w, s, r));
            faults_fired = f;
            continue;
        }
        // `E <op> <kind> …` or `S err <kind> …`.
        let words: Vec<&str> = line.split_whitespace().take(3).collect();
        let kind = match words[..] {
            ["E", _, kind] => kind,
            ["S", "err", kind] => kind,
            _ => continue,
        };
        errors += 1;
        *counts.errors.entry(kind.to_owned()).or_default() += 1;
        if !(kind == "storage" || kind == "io") {
            eprintln!("io_errors: run {run}: an error an app cannot act on: {line}");
            counts.unclear += 1;
        }
        if !faulted {
            eprintln!("io_errors: run {run}: an error without a fault: {line}");
            counts.errors_after_fault += 1;
        } else if errors > 1 {
            eprintln!("io_errors: run {run}: an error after the faulted call: {line}");
            counts.errors_after_fault += 1;
        }
    }
    if !done {
        eprintln!("io_errors: run {run}: the phone did not finish its workload");
        counts.phone_died += 1;
    }
    if faulted && done {
        match (faults_fired, errors) {
            (0, _) => counts.not_reached += 1,
            (_, 0) => counts.absorbed += 1,
            _ => counts.surfaced += 1,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    super::reaped(child.id());
    let _ = reader.join();
    report.panics += panics_in(&log);
    at_open.zip(at_end)
}
