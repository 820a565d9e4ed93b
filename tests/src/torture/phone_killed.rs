//! Scenario 1, phone killed: the phone workload (`torture_phone`) SIGKILLed at
//! seeded random moments while it reports, adds notes, takes photos, handles cases
//! and syncs with a real relay (compaction comes with the notes: a document is
//! compacted every 32 changes). After every kill: `integrity_check`, every write
//! the app was told succeeded is there, every local change is in the outbox
//! (pending or acknowledged) or among the refused. Meanwhile the community
//! dispatcher accepts reports, so the phone's syncs apply pulls. At the end the phone
//! drains and the dispatcher's phone reads the relay's copy.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gridsync_core::{Action, CaseFilter, DocId, Engine, PhotoHash, Status};

use super::{
    drain, enroll_phone, integrity_check, panics_in, Level, PhoneId, RelayProcess, Report, Rng,
    DISPATCHER, WORKER,
};

/// A write the app was told succeeded.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Acked {
    /// A reported case and its title.
    Case(String, String),
    /// A note on a case.
    Note(String, String),
    /// A photo attached to a case.
    Photo(String, String),
    /// An action on the case, by its name (`Action::name`: `self_handle`, `accept`).
    Act(String, String),
}

impl Acked {
    /// From an `A …` line of the workload.
    pub fn parse(line: &str) -> Option<Acked> {
        let mut it = line.splitn(4, ' ');
        if it.next()? != "A" {
            return None;
        }
        let (kind, id, rest) = (it.next()?, it.next()?.to_owned(), it.next().unwrap_or(""));
        Some(match kind {
            "case" => Acked::Case(id, rest.to_owned()),
            "note" => Acked::Note(id, rest.to_owned()),
            "photo" => Acked::Photo(id, rest.to_owned()),
            "act" if !rest.is_empty() => Acked::Act(id, rest.to_owned()),
            _ => return None,
        })
    }

    /// The case it belongs to.
    pub fn case(&self) -> &str {
        match self {
            Acked::Case(id, _) | Acked::Note(id, _) | Acked::Photo(id, _) | Acked::Act(id, _) => id,
        }
    }

    /// Whether `engine` holds it (a photo: attached, and its bytes there when
    /// `blob` is set).
    pub fn held_by(&self, engine: &Engine, blob: bool) -> bool {
        let Ok(id) = self.case().parse::<DocId>() else {
            return false;
        };
        let Ok(case) = engine.get_case(&id) else {
            return false;
        };
        match self {
            Acked::Case(_, title) => &case.doc.title == title,
            Acked::Note(_, text) => case.doc.notes.iter().any(|n| &n.text == text),
            Acked::Photo(_, hash) => {
                let Ok(h) = hash.parse::<PhotoHash>() else {
                    return false;
                };
                case.doc.photos.iter().any(|p| p.hash == h)
                    && (!blob || engine.has_photo(&h).unwrap_or(false))
            }
            // The entry itself on the timeline: another's action moving the case on
            // (the dispatcher accepting it) must not stand in for a lost one.
            Acked::Act(_, name) => case.doc.timeline.iter().any(|e| e.action.name() == name),
        }
    }
}

impl Acked {
    /// A photo attached on the relay's copy (read through `relay`, a phone of the
    /// dispatcher) whose bytes the relay does not give. False for anything else: a
    /// missing attachment is the attachment check's to count.
    pub fn bytes_missing_on(&self, relay: &Engine) -> bool {
        let Acked::Photo(_, hash) = self else {
            return false;
        };
        self.held_by(relay, false)
            && !hash
                .parse::<PhotoHash>()
                .is_ok_and(|h| relay.fetch_photo(&h).is_ok())
    }
}

/// Local changes (by this device's actor) that are neither in the outbox (pending
/// or acknowledged) nor among the changes the relay refused.
pub fn unaccounted_changes(phone: &PhoneId, engine: &Engine) -> Result<u64, String> {
    let conn = super::open_raw(phone)?;
    let mut known: HashSet<Vec<u8>> = HashSet::new();
    for sql in ["SELECT hash FROM outbox", "SELECT hash FROM rejections"] {
        let mut st = conn.prepare(sql).map_err(|e| e.to_string())?;
        let rows = st
            .query_map([], |r| r.get::<_, Vec<u8>>(0))
            .map_err(|e| e.to_string())?;
        for h in rows {
            known.insert(h.map_err(|e| e.to_string())?);
        }
    }
    let actor = phone.identity.device.actor();
    let mut missing = 0;
    for doc in engine.doc_ids().map_err(|e| e.to_string())? {
        for ch in engine.changes_since(&doc, &[]).map_err(|e| e.to_string())? {
            if ch.actor_id() == &actor && !known.contains(&ch.hash().0[..]) {
                missing += 1;
            }
        }
    }
    Ok(missing)
}

/// The dispatcher's work while the phone runs: sync, accept a reported case, until
/// `stop`. The acceptances it was told succeeded.
pub fn dispatch(engine: &Engine, rng: &mut Rng, stop: &AtomicBool) -> Vec<Acked> {
    let mut done = Vec::new();
    let reported = CaseFilter {
        statuses: vec![Status::Reported],
        limit: 1000,
        ..Default::default()
    };
    while !stop.load(Ordering::Relaxed) {
        let _ = engine.sync(&mut |_| {});
        let cases = engine.list_cases(&reported).unwrap_or_default();
        if !cases.is_empty() && rng.chance(50) {
            let id = &cases[rng.range(0, cases.len() as u64) as usize].id;
            if engine.act(id, Action::Accept).is_ok() {
                done.push(Acked::Act(id.to_string(), Action::Accept.name().to_owned()));
            }
        }
        std::thread::sleep(Duration::from_millis(rng.range(100, 500)));
    }
    done
}

/// Run the scenario.
pub fn run(level: Level, seed: u64, work: &Path) -> Report {
    let started = Instant::now();
    let mut report = Report::new("phone_killed", seed);
    let mut rng = Rng::new(seed);
    let kills = match level {
        Level::Quick => 30,
        Level::Long => 200,
    };
    let data = work.join("relay");
    let relay_log = work.join("relay.log");
    let mut relay = RelayProcess::start(&data, "127.0.0.1:0", &relay_log)
        .expect("the relay starts (is the gridsync binary built?)");
    let phone = enroll_phone(&data, &relay.url, &relay.url, WORKER, work, &mut rng)
        .expect("the worker's phone enrolls");
    // The community dispatcher accepts reports while the phone runs, so the phone's
    // syncs apply pulls that change its cases; at the end it reads the relay's copy.
    let observer = enroll_phone(&data, &relay.url, &relay.url, DISPATCHER, work, &mut rng)
        .expect("the dispatcher's phone enrolls")
        .open()
        .expect("the dispatcher's phone opens");
    let mut accepted: Vec<Acked> = Vec::new();

    let mut acked: Vec<Acked> = Vec::new();
    let mut lost: BTreeSet<usize> = BTreeSet::new();
    let (mut mid_write, mut mid_sync, mut finished, mut open_failed) = (0u64, 0u64, 0u64, 0u64);
    let (mut syncs_ok, mut pulled) = (0u64, 0u64);
    let mut max_outbox = 0u64;
    for run in 0..kills {
        let phone_log = work.join(format!("phone-{run}.log"));
        let Ok(mut child) = phone.workload(seed, run, 400, &phone_log) else {
            report.broken += 1;
            continue;
        };
        let stdout = child.stdout.take().expect("stdout is piped");
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<String>>()
        });
        let delay = Duration::from_millis(rng.range(20, 2000));
        let mut drng = rng.fork();
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let dispatcher = s.spawn(|| dispatch(&observer, &mut drng, &stop));
            std::thread::sleep(delay);
            let _ = child.kill(); // SIGKILL
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
            Some("done") => finished += 1,
            Some("B sync") => mid_sync += 1,
            Some(l) if l.starts_with("B ") => mid_write += 1,
            _ => {}
        }
        syncs_ok += lines.iter().filter(|l| l.starts_with("S ok")).count() as u64;
        pulled += lines
            .iter()
            .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("pulled=")))
            .filter_map(|n| n.parse::<u64>().ok())
            .sum::<u64>();
        acked.extend(lines.iter().filter_map(|l| Acked::parse(l)));

        // The checks after the restart, with the phone closed.
        if let Err(e) = integrity_check(&phone) {
            eprintln!("phone_killed: run {run}: integrity_check: {e}");
            report.broken += 1;
        }
        let engine = match phone.open() {
            Ok(e) => e,
            Err(e) => {
                eprintln!("phone_killed: run {run}: the database does not open: {e}");
                open_failed += 1;
                report.broken += 1;
                continue;
            }
        };
        for (i, w) in acked.iter().enumerate() {
            if !w.held_by(&engine, true) && lost.insert(i) {
                eprintln!("phone_killed: run {run}: acknowledged write missing: {w:?}");
            }
        }
        match unaccounted_changes(&phone, &engine) {
            Ok(0) => {}
            Ok(n) => {
                eprintln!(
                    "phone_killed: run {run}: {n} local changes neither queued nor acknowledged"
                );
                report.broken += n;
            }
            Err(e) => {
                eprintln!("phone_killed: run {run}: outbox check: {e}");
                report.broken += 1;
            }
        }
        max_outbox = max_outbox.max(engine.outbox_len().unwrap_or(0));
    }

    // The end: the phone drains to the relay, the dispatcher reads the relay's copy,
    // and the phone pulls the dispatcher's last acceptances.
    let dispatched = acked.len();
    acked.extend(accepted);
    match phone.open() {
        Ok(engine) => {
            let deadline = Instant::now() + Duration::from_secs(60);
            if let Err(why) = drain(&engine, deadline) {
                report.stuck_queue("the phone", why);
            }
            if let Err(why) = drain(&observer, Instant::now() + Duration::from_secs(60)) {
                report.stuck_queue("the dispatcher", why);
            }
            if let Err(why) = drain(&engine, Instant::now() + Duration::from_secs(60)) {
                report.stuck_queue("the phone, pulling the dispatcher's work", why);
            }
            for (i, w) in acked.iter().enumerate() {
                let held = w.held_by(&engine, true) && w.held_by(&observer, false);
                let blob = match w {
                    Acked::Photo(_, h) => h
                        .parse::<PhotoHash>()
                        .ok()
                        .is_some_and(|h| observer.fetch_photo(&h).is_ok()),
                    _ => true,
                };
                if !(held && blob) && lost.insert(i) {
                    eprintln!("phone_killed: not on the relay: {w:?}");
                }
            }
            let all = CaseFilter {
                limit: 1_000_000,
                ..Default::default()
            };
            let mut titles: HashMap<String, u64> = HashMap::new();
            for c in observer.list_cases(&all).unwrap_or_default() {
                *titles.entry(c.title).or_default() += 1;
            }
            report.duplicates += titles.values().map(|n| n.saturating_sub(1)).sum::<u64>();
            let cases: BTreeSet<&str> = acked.iter().map(Acked::case).collect();
            for id in &cases {
                let Ok(id) = id.parse::<DocId>() else {
                    continue;
                };
                let mut a = engine.heads(&id).unwrap_or_default();
                let mut b = observer.heads(&id).unwrap_or_default();
                a.sort();
                b.sort();
                if a != b || a.is_empty() {
                    report.diverged += 1;
                }
            }
            report.set("cases", cases.len() as u64);
        }
        Err(e) => {
            eprintln!("phone_killed: the final check could not start: {e}");
            report.broken += 1;
        }
    }
    relay.kill();
    report.panics += panics_in(&relay_log);
    report.acked = acked.len() as u64;
    report.lost = lost.len() as u64;
    report.set("accepted_by_dispatcher", (acked.len() - dispatched) as u64);
    report.set("kills_mid_write", mid_write);
    report.set("kills_mid_sync", mid_sync);
    report.set("runs_finished_before_kill", finished);
    report.set("open_failures", open_failed);
    report.set("syncs_ok", syncs_ok);
    report.set("changes_pulled", pulled);
    report.set("max_outbox", max_outbox);
    report.seconds = started.elapsed().as_secs_f64();
    report
}
