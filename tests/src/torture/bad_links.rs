//! Scenario 4 of the issue, bad links for a long time: phones report, add notes,
//! handle cases and sync through a proxy that gives each connection a seeded fault
//! (latency 0.3–2 s per chunk, 4–64 KB/s, a reset mid-request or mid-answer, a black
//! hole held 1–8 s). Then the link heals: every outbox must drain within 60 s, every
//! phone must hold what the relay holds of its documents, nothing lost or duplicated.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gridsync_core::{Action, CaseFilter, DocId, Engine, Location, NewCase, Severity, Status};
use gridsync_tests::proxy::{Fault, FaultProxy};

use super::phone_killed::Acked;
use super::{
    drain, enroll_phone, panics_in, Level, PhoneId, RelayProcess, Report, Rng, Stuck, DISPATCHER,
    WORKER, WORKER_2,
};

/// The seeded fault of the `i`-th connection.
pub fn plan(rng: &mut Rng) -> Fault {
    match rng.range(0, 100) {
        0..=24 => Fault::Clean,
        25..=44 => Fault::Latency(Duration::from_millis(rng.range(300, 2000))),
        45..=59 => Fault::Throttle(rng.range(4, 65) * 1024),
        60..=71 => Fault::CutUp(rng.range(0, 8 * 1024)),
        72..=83 => Fault::CutDown(rng.range(0, 8 * 1024)),
        _ => Fault::BlackHole(Duration::from_millis(rng.range(1000, 8000))),
    }
}

/// A case of the workload.
pub fn new_case(title: &str) -> NewCase {
    NewCase {
        title: title.to_owned(),
        description: "路灯不亮".into(),
        category: "livelihood"
            .parse()
            .expect("a category of the sample directory"),
        subcategory: None,
        severity: Severity::Normal,
        grid: None,
        location: Some(Location {
            lat: 30.27,
            lon: 120.15,
            address: "望湖小区5号楼".into(),
        }),
        people: vec![],
        photos: vec![],
        links: Default::default(),
    }
}

/// A phone working through the scenario: its index, its cases' title tag, and
/// where what it was told succeeded, and its failed syncs, are counted.
pub struct Worker<'a> {
    pub at: usize,
    pub tag: String,
    pub acked: &'a Mutex<Vec<(usize, Acked)>>,
    pub failed: &'a Mutex<u64>,
}

impl Worker<'_> {
    /// [`step`] after step until `until`, pausing 50 ms to `max_pause_ms` between;
    /// `None` if a count could not be taken (a poisoned lock).
    pub fn work(
        &self,
        engine: &Engine,
        rng: &mut Rng,
        until: Instant,
        max_pause_ms: u64,
    ) -> Option<()> {
        self.work_in_phases(engine, rng, until, max_pause_ms, &|_| false)
    }

    /// [`Worker::work`], except while `quiet(now)`: then the phone writes nothing
    /// and only syncs, every 1–3 s, as an idle app does (a failed sync counted).
    pub fn work_in_phases(
        &self,
        engine: &Engine,
        rng: &mut Rng,
        until: Instant,
        max_pause_ms: u64,
        quiet: &Quiet,
    ) -> Option<()> {
        let mut mine = Vec::new();
        let mut i = 0;
        while Instant::now() < until {
            if quiet(Instant::now()) {
                if engine.sync(&mut |_| {}).is_err() {
                    *self.failed.lock().ok()? += 1;
                }
                std::thread::sleep(Duration::from_millis(rng.range(1000, 3000)));
                continue;
            }
            match step(engine, rng, &mut mine, &self.tag, i) {
                Ok(Some(w)) => self.acked.lock().ok()?.push((self.at, w)),
                Ok(None) => {}
                Err(()) => *self.failed.lock().ok()? += 1,
            }
            i += 1;
            std::thread::sleep(Duration::from_millis(rng.range(50, max_pause_ms)));
        }
        Some(())
    }
}

/// Whether the phones are in a quiet phase at a moment (no new data, only syncs).
pub type Quiet = dyn Fn(Instant) -> bool + Sync;

/// One operation of a phone's working day; the write it was told succeeded, if any.
/// `Err(())` counts a sync that failed.
pub fn step(
    engine: &Engine,
    rng: &mut Rng,
    mine: &mut Vec<DocId>,
    tag: &str,
    i: u64,
) -> Result<Option<Acked>, ()> {
    let roll = rng.range(0, 100);
    if roll < 35 || mine.is_empty() {
        let title = format!("链路测试 {tag} 第{i}件");
        return Ok(engine.report_case(new_case(&title)).ok().map(|id| {
            mine.push(id.clone());
            Acked::Case(id.to_string(), title)
        }));
    }
    let id = mine[rng.range(0, mine.len() as u64) as usize].clone();
    if roll < 65 {
        let text = format!("备注 {tag} 第{i}条");
        Ok(engine
            .add_note(&id, &text)
            .ok()
            .map(|_| Acked::Note(id.to_string(), text)))
    } else if roll < 75 {
        let reported = engine
            .get_case(&id)
            .map(|c| c.state.status == Status::Reported)
            .unwrap_or(false);
        let action = Action::SelfHandle {
            result: "已处置".into(),
        };
        let name = action.name();
        Ok((reported && engine.act(&id, action).is_ok())
            .then(|| Acked::Act(id.to_string(), name.to_owned())))
    } else {
        engine.sync(&mut |_| {}).map(|_| None).map_err(|_| ())
    }
}

/// After the queues drained: one more round for each phone (so every phone has
/// pulled what the others pushed), then every acknowledged write on its phone and on
/// the relay (read through `observer`), each title once, and every document of every
/// phone with the relay's heads. Sets lost, duplicates and diverged; answers how many
/// documents were compared.
pub fn compare(
    report: &mut Report,
    engines: &[Option<Engine>],
    acked: &[(usize, Acked)],
    observer: &Engine,
) -> u64 {
    // One more round each, so every phone has pulled what the others pushed.
    for e in engines.iter().flatten() {
        let _ = drain(e, Instant::now() + Duration::from_secs(20));
    }
    let mut lost = BTreeSet::new();
    for (i, (p, w)) in acked.iter().enumerate() {
        let on_phone = engines[*p].as_ref().is_some_and(|e| w.held_by(e, false));
        if !(on_phone && w.held_by(observer, false)) && lost.insert(i) {
            eprintln!("{}: lost: phone {p}: {w:?}", report.scenario);
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
    report.duplicates = titles.values().map(|n| n.saturating_sub(1)).sum();
    let mut docs_compared = 0u64;
    for e in engines.iter().flatten() {
        for doc in e.doc_ids().unwrap_or_default() {
            let mut a = e.heads(&doc).unwrap_or_default();
            let mut b = observer.heads(&doc).unwrap_or_default();
            a.sort();
            b.sort();
            docs_compared += 1;
            if a != b {
                report.diverged += 1;
            }
        }
    }
    report.lost = lost.len() as u64;
    docs_compared
}

/// The real relay, the fault proxy before it, and phones enrolled through it (two
/// grid workers of the community, several devices each): what `bad_links` and
/// `soak` start.
pub struct Fleet {
    /// `gridsync serve`.
    pub relay: RelayProcess,
    /// Between the phones and the relay, faults planned by [`plan`] until healed.
    pub proxy: FaultProxy,
    /// The relay's data folder.
    pub data: PathBuf,
    /// The relay's stderr.
    pub relay_log: PathBuf,
    /// The phones.
    pub phones: Vec<PhoneId>,
}

impl Fleet {
    /// Start the relay and the proxy in `work` and enroll `phones` phones.
    pub fn start(phones: usize, work: &Path, rng: &mut Rng) -> Fleet {
        let data = work.join("relay");
        let relay_log = work.join("relay.log");
        let relay = RelayProcess::start(&data, "127.0.0.1:0", &relay_log)
            .expect("the relay starts (is the gridsync binary built?)");
        let mut plan_rng = rng.fork();
        let proxy = FaultProxy::start(relay.addr(), move |_| plan(&mut plan_rng))
            .expect("the fault proxy starts");
        let phones = (0..phones)
            .map(|p| {
                let user = if p % 2 == 0 { WORKER } else { WORKER_2 };
                enroll_phone(&data, &relay.url, &proxy.url(), user, work, rng)
                    .expect("a phone enrolls")
            })
            .collect();
        Fleet {
            relay,
            proxy,
            data,
            relay_log,
            phones,
        }
    }
}

/// What the phones did while the link was bad.
pub struct Worked {
    /// Each phone's engine (`None`: it did not open, or its thread failed).
    pub engines: Vec<Option<Engine>>,
    /// The writes each phone was told succeeded.
    pub acked: Vec<(usize, Acked)>,
    /// Syncs that failed.
    pub failed_syncs: u64,
}

/// Every phone of `fleet` in a thread of its own with its own encrypted engine and
/// HTTP client, working until `until` (an operation every 50 ms to `max_pause_ms`,
/// only syncing while `quiet`), while `beside` runs in another thread with the
/// acknowledged writes so far in view; answers what both did.
pub fn work_phones<T: Send>(
    fleet: &Fleet,
    rng: &mut Rng,
    until: Instant,
    max_pause_ms: u64,
    quiet: &Quiet,
    beside: impl FnOnce(&Mutex<Vec<(usize, Acked)>>) -> T + Send,
) -> (Worked, Option<T>) {
    let acked: Mutex<Vec<(usize, Acked)>> = Mutex::new(Vec::new());
    let failed_syncs = Mutex::new(0u64);
    let (engines, beside) = std::thread::scope(|s| {
        let acked_ref = &acked;
        let beside = s.spawn(move || beside(acked_ref));
        let handles: Vec<_> = fleet
            .phones
            .iter()
            .enumerate()
            .map(|(p, id)| {
                let mut rng = rng.fork();
                let (acked, failed_syncs) = (&acked, &failed_syncs);
                s.spawn(move || {
                    let engine = id.open().ok()?;
                    let phone = Worker {
                        at: p,
                        tag: format!("手机{p}"),
                        acked,
                        failed: failed_syncs,
                    };
                    phone.work_in_phases(&engine, &mut rng, until, max_pause_ms, quiet)?;
                    Some(engine)
                })
            })
            .collect();
        let engines: Vec<Option<Engine>> = handles
            .into_iter()
            .map(|h| h.join().ok().flatten())
            .collect();
        (engines, beside.join().ok())
    });
    let worked = Worked {
        engines,
        acked: acked.into_inner().unwrap_or_default(),
        failed_syncs: failed_syncs.into_inner().unwrap_or(0),
    };
    (worked, beside)
}

/// The link heals: every phone's queues must drain within 60 s (`stuck`); then the
/// dispatcher reads the relay's copy and everything is compared ([`compare`]: lost,
/// duplicates, diverged). A phone that did not work through is `broken`. The relay
/// is killed and its log read for panics; the proxy's and the phones' figures go
/// into the report.
pub fn heal_and_check(
    report: &mut Report,
    mut fleet: Fleet,
    worked: &Worked,
    work: &Path,
    rng: &mut Rng,
) {
    fleet.proxy.heal();
    let healed = Instant::now();
    // Each phone's seconds to drain, or what was left; `None` for one that never
    // opened (`broken`); a drain that panicked is a panic.
    type Drained = std::thread::Result<Option<Result<f64, Stuck>>>;
    let drained: Vec<Drained> = std::thread::scope(|s| {
        let hs: Vec<_> = worked
            .engines
            .iter()
            .map(|e| {
                s.spawn(move || {
                    let e = e.as_ref()?;
                    let drained = drain(e, healed + Duration::from_secs(60));
                    Some(drained.map(|()| healed.elapsed().as_secs_f64()))
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join()).collect()
    });
    let mut slowest = 0.0f64;
    for (i, d) in drained.into_iter().enumerate() {
        match d {
            Ok(Some(Ok(seconds))) => slowest = slowest.max(seconds),
            Ok(Some(Err(why))) => report.stuck_queue(&format!("phone {i}"), why),
            Ok(None) => {}
            Err(_) => report.panics += 1,
        }
    }

    let relay_url = fleet.relay.url.clone();
    let observer = enroll_phone(&fleet.data, &relay_url, &relay_url, DISPATCHER, work, rng)
        .ok()
        .and_then(|o| o.open().ok());
    let mut docs_compared = 0;
    match observer {
        Some(observer) => {
            if let Err(why) = drain(&observer, Instant::now() + Duration::from_secs(60)) {
                report.stuck_queue("the dispatcher", why);
            }
            docs_compared = compare(report, &worked.engines, &worked.acked, &observer);
        }
        None => report.broken += 1,
    }
    report.broken += worked.engines.iter().filter(|e| e.is_none()).count() as u64;
    fleet.relay.kill();
    report.panics += panics_in(&fleet.relay_log);
    let st = &fleet.proxy.stats;
    let phones = fleet.phones.len() as u64;
    report.runs = phones;
    report.faults = st.faults();
    report.acked = worked.acked.len() as u64;
    report.set("phones", phones);
    report.set("connections", st.connections.load(Ordering::Relaxed));
    report.set("latency", st.latency.load(Ordering::Relaxed));
    report.set("throttled", st.throttled.load(Ordering::Relaxed));
    report.set("cut_mid_request", st.cut_up.load(Ordering::Relaxed));
    report.set("cut_mid_answer", st.cut_down.load(Ordering::Relaxed));
    report.set("black_holes", st.black_holes.load(Ordering::Relaxed));
    report.set("failed_syncs", worked.failed_syncs);
    report.set("docs_compared", docs_compared);
    report.set("drain_seconds_max", (slowest * 10.0).round() / 10.0);
}

/// Run the scenario.
pub fn run(level: Level, seed: u64, work: &Path) -> Report {
    let started = Instant::now();
    let mut report = Report::new("bad_links", seed);
    let mut rng = Rng::new(seed);
    let (phones, minutes) = match level {
        Level::Quick => (2, 1.0),
        Level::Long => (10, 10.0),
    };
    let fleet = Fleet::start(phones, work, &mut rng);
    let until = Instant::now() + Duration::from_secs_f64(minutes * 60.0);
    let (worked, _) = work_phones(&fleet, &mut rng, until, 400, &|_| false, |_| ());
    heal_and_check(&mut report, fleet, &worked, work, &mut rng);
    report.seconds = started.elapsed().as_secs_f64();
    report
}
