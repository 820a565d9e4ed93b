//! Scenario 4 of the issue, bad links for a long time: phones report, add notes,
//! handle cases and sync through a proxy that gives each connection a seeded fault
//! (latency 0.3–2 s per chunk, 4–64 KB/s, a reset mid-request or mid-answer, a black
//! hole held 1–8 s). Then the link heals: every outbox must drain within 60 s, every
//! phone must hold what the relay holds of its documents, nothing lost or duplicated.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gridsync_core::{Action, CaseFilter, DocId, Engine, Location, NewCase, Severity, Status};
use gridsync_tests::proxy::{Fault, FaultProxy};

use super::phone_killed::Acked;
use super::{
    drain, enroll_phone, panics_in, Level, RelayProcess, Report, Rng, DISPATCHER, WORKER, WORKER_2,
};

/// The relay's footprint at one moment.
pub struct Sample {
    /// Seconds since the phones started.
    at: f64,
    /// Resident set (VmRSS).
    rss_kib: f64,
    /// Open file descriptors.
    fds: f64,
    /// `relay.db-wal`.
    wal_kib: f64,
    /// `relay.db`.
    db_kib: f64,
}

impl Sample {
    /// Read `/proc/<pid>` and the data folder (`None` off Linux or once the relay died).
    fn take(pid: u32, data: &Path, t0: Instant) -> Option<Sample> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())?;
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as f64;
        let kib = |name: &str| {
            std::fs::metadata(data.join(name))
                .map(|m| m.len() as f64 / 1024.0)
                .unwrap_or(0.0)
        };
        Some(Sample {
            at: t0.elapsed().as_secs_f64(),
            rss_kib,
            fds,
            wal_kib: kib("relay.db-wal"),
            db_kib: kib("relay.db"),
        })
    }
}

/// The least-squares slope of `(seconds, value)` points, per minute (0 for fewer than
/// two points).
pub fn slope_per_minute(points: impl Iterator<Item = (f64, f64)>) -> f64 {
    let p: Vec<(f64, f64)> = points.collect();
    let n = p.len() as f64;
    if p.len() < 2 {
        return 0.0;
    }
    let (mx, my) = (
        p.iter().map(|x| x.0).sum::<f64>() / n,
        p.iter().map(|x| x.1).sum::<f64>() / n,
    );
    let num: f64 = p.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let den: f64 = p.iter().map(|(x, _)| (x - mx) * (x - mx)).sum();
    if den == 0.0 {
        0.0
    } else {
        num / den * 60.0
    }
}

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
        let mut mine = Vec::new();
        let mut i = 0;
        while Instant::now() < until {
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

/// Run the scenario.
pub fn run(level: Level, seed: u64, work: &Path) -> Report {
    let started = Instant::now();
    let mut report = Report::new("bad_links", seed);
    let mut rng = Rng::new(seed);
    let (phones, minutes) = match level {
        Level::Quick => (2, 1.0),
        Level::Long => (10, 10.0),
    };
    let data = work.join("relay");
    let relay_log = work.join("relay.log");
    let mut relay = RelayProcess::start(&data, "127.0.0.1:0", &relay_log)
        .expect("the relay starts (is the gridsync binary built?)");
    let mut plan_rng = rng.fork();
    let proxy = FaultProxy::start(relay.addr(), move |_| plan(&mut plan_rng))
        .expect("the fault proxy starts");
    let ids: Vec<_> = (0..phones)
        .map(|p| {
            let user = if p % 2 == 0 { WORKER } else { WORKER_2 };
            enroll_phone(&data, &relay.url, &proxy.url(), user, work, &mut rng)
                .expect("a phone enrolls")
        })
        .collect();

    let until = Instant::now() + Duration::from_secs_f64(minutes * 60.0);
    let acked: Mutex<Vec<(usize, Acked)>> = Mutex::new(Vec::new());
    let failed_syncs = Mutex::new(0u64);
    let mut engines: Vec<Option<Engine>> = Vec::new();
    let relay_pid = relay.child.id();
    let every = Duration::from_secs(match level {
        Level::Quick => 5,
        Level::Long => 10,
    });
    let mut samples: Vec<Sample> = Vec::new();
    std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let mut out = Vec::new();
            let t0 = Instant::now();
            while Instant::now() < until {
                out.extend(Sample::take(relay_pid, &data, t0));
                std::thread::sleep(every);
            }
            out
        });
        let handles: Vec<_> = ids
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
                    phone.work(&engine, &mut rng, until, 400)?;
                    Some(engine)
                })
            })
            .collect();
        engines = handles
            .into_iter()
            .map(|h| h.join().ok().flatten())
            .collect();
        samples = sampler.join().unwrap_or_default();
    });
    // The link heals: every queue must drain within 60 s.
    proxy.heal();
    let healed = Instant::now();
    let drained: Vec<Option<f64>> = std::thread::scope(|s| {
        let hs: Vec<_> = engines
            .iter()
            .map(|e| {
                s.spawn(move || {
                    let e = e.as_ref()?;
                    drain(e, healed + Duration::from_secs(60))
                        .then(|| healed.elapsed().as_secs_f64())
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().ok().flatten()).collect()
    });
    report.stuck += drained.iter().filter(|d| d.is_none()).count() as u64;
    let slowest = drained.iter().flatten().fold(0.0f64, |a, b| a.max(*b));

    let acked = acked.into_inner().unwrap_or_default();
    let observer = enroll_phone(&data, &relay.url, &relay.url, DISPATCHER, work, &mut rng)
        .ok()
        .and_then(|o| o.open().ok());
    let Some(observer) = observer else {
        report.broken += 1;
        return report;
    };
    if !drain(&observer, Instant::now() + Duration::from_secs(60)) {
        report.stuck += 1;
    }
    let docs_compared = compare(&mut report, &engines, &acked, &observer);
    report.broken += engines.iter().filter(|e| e.is_none()).count() as u64;
    relay.kill();
    report.panics += panics_in(&relay_log);
    let st = &proxy.stats;
    report.runs = phones as u64;
    report.faults = st.faults();
    report.acked = acked.len() as u64;
    report.set("phones", phones as u64);
    report.set("connections", st.connections.load(Ordering::Relaxed));
    report.set("latency", st.latency.load(Ordering::Relaxed));
    report.set("throttled", st.throttled.load(Ordering::Relaxed));
    report.set("cut_mid_request", st.cut_up.load(Ordering::Relaxed));
    report.set("cut_mid_answer", st.cut_down.load(Ordering::Relaxed));
    report.set("black_holes", st.black_holes.load(Ordering::Relaxed));
    report.set("failed_syncs", failed_syncs.into_inner().unwrap_or(0));
    report.set("docs_compared", docs_compared);
    report.set("drain_seconds_max", (slowest * 10.0).round() / 10.0);
    // The relay's footprint while the phones worked: the first and last sample and
    // the least-squares slope per minute over the second half (after warm-up).
    let late = &samples[samples.len() / 2..];
    for (name, get) in [
        (
            "relay_rss_kib",
            (|x: &Sample| x.rss_kib) as fn(&Sample) -> f64,
        ),
        ("relay_fds", |x: &Sample| x.fds),
        ("relay_wal_kib", |x: &Sample| x.wal_kib),
        ("relay_db_kib", |x: &Sample| x.db_kib),
    ] {
        let first = samples.first().map(get).unwrap_or(0.0);
        let last = samples.last().map(get).unwrap_or(0.0);
        report.set(&format!("{name}_first"), first.round());
        report.set(&format!("{name}_last"), last.round());
        let slope = slope_per_minute(late.iter().map(|x| (x.at, get(x))));
        report.set(
            &format!("{name}_slope_per_min"),
            (slope * 10.0).round() / 10.0,
        );
    }
    report.set("samples", samples.len() as u64);
    report.seconds = started.elapsed().as_secs_f64();
    report
}
