//! The relay killed mid-push: a phone reports a batch and syncs through a clean
//! proxy that follows the HTTP requests; the relay process is SIGKILLed either as
//! soon as the proxy has handed a push's whole body to it, or after a seeded delay.
//! The proxy counts the pushes whose body went to the relay and whose answer never
//! came — the proof that kills landed mid-push. The relay restarts on the same port;
//! at the end every acknowledged write is on the relay exactly once.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gridsync_core::{CaseFilter, DocId};
use gridsync_tests::proxy::{Fault, FaultProxy};

use super::bad_links::new_case;
use super::phone_killed::Acked;
use super::{drain, enroll_phone, panics_in, Level, RelayProcess, Report, Rng, DISPATCHER, WORKER};

/// Run the scenario.
pub fn run(level: Level, seed: u64, work: &Path) -> Report {
    let started = Instant::now();
    let mut report = Report::new("relay_killed", seed);
    let mut rng = Rng::new(seed);
    let rounds = match level {
        Level::Quick => 30,
        Level::Long => 200,
    };
    let data = work.join("relay");
    let relay_log = work.join("relay.log");
    let mut relay = RelayProcess::start(&data, "127.0.0.1:0", &relay_log)
        .expect("the relay starts (is the gridsync binary built?)");
    let addr = relay.addr();
    let listen = addr.to_string();
    let proxy = FaultProxy::start(addr, |_| Fault::Clean).expect("the proxy starts");
    let phone = enroll_phone(&data, &relay.url, &proxy.url(), WORKER, work, &mut rng)
        .expect("the worker's phone enrolls");
    let engine = phone.open().expect("the phone opens");

    let mut acked: Vec<Acked> = Vec::new();
    let (mut sync_errors, mut restart_failures) = (0u64, 0u64);
    for round in 0..rounds {
        let batch = rng.range(20, 60);
        for i in 0..batch {
            let title = format!("重启测试 第{round}轮 第{i}件");
            match engine.report_case(new_case(&title)) {
                Ok(id) => acked.push(Acked::Case(id.to_string(), title)),
                Err(e) => eprintln!("relay_killed: report refused: {e}"),
            }
        }
        // Half the rounds kill as soon as a push body reached the relay, the others
        // after a seeded delay.
        let on_push = rng.chance(50);
        let delay = Duration::from_millis(rng.range(0, 400));
        let pushes_before = proxy.stats.pushes_sent.load(Ordering::Relaxed);
        let result = std::thread::scope(|s| {
            let sync = s.spawn(|| engine.sync(&mut |_| {}));
            let t = Instant::now();
            if on_push {
                while proxy.stats.pushes_sent.load(Ordering::Relaxed) == pushes_before
                    && t.elapsed() < Duration::from_secs(10)
                    && !sync.is_finished()
                {
                    std::thread::sleep(Duration::from_micros(200));
                }
            } else {
                std::thread::sleep(delay);
            }
            relay.kill();
            sync.join()
        });
        report.faults += 1;
        match result {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => sync_errors += 1,
            Err(_) => report.panics += 1,
        }
        report.panics += panics_in(&relay_log);
        let _ = std::fs::write(&relay_log, b"");
        // Restart on the same port (the proxy points there).
        let mut restarted = None;
        for _ in 0..50 {
            match RelayProcess::start(&data, &listen, &relay_log) {
                Ok(r) => {
                    restarted = Some(r);
                    break;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        match restarted {
            Some(r) => relay = r,
            None => {
                restart_failures += 1;
                report.broken += 1;
                break;
            }
        }
        report.runs += 1;
    }

    let deadline = Instant::now() + Duration::from_secs(60);
    if let Err(why) = drain(&engine, deadline) {
        report.stuck_queue("the phone", why);
    }
    let observer = enroll_phone(&data, &relay.url, &relay.url, DISPATCHER, work, &mut rng)
        .ok()
        .and_then(|o| o.open().ok());
    if let Some(observer) = observer {
        if let Err(why) = drain(&observer, Instant::now() + Duration::from_secs(60)) {
            report.stuck_queue("the dispatcher", why);
        }
        let mut lost = BTreeSet::new();
        for (i, w) in acked.iter().enumerate() {
            if !(w.held_by(&engine, false) && w.held_by(&observer, false)) && lost.insert(i) {
                eprintln!("relay_killed: lost: {w:?}");
            }
        }
        report.lost = lost.len() as u64;
        let all = CaseFilter {
            limit: 1_000_000,
            ..Default::default()
        };
        let mut titles: HashMap<String, u64> = HashMap::new();
        for c in observer.list_cases(&all).unwrap_or_default() {
            *titles.entry(c.title).or_default() += 1;
        }
        report.duplicates = titles.values().map(|n| n.saturating_sub(1)).sum();
        for w in &acked {
            let Ok(id) = w.case().parse::<DocId>() else {
                continue;
            };
            let mut a = engine.heads(&id).unwrap_or_default();
            let mut b = observer.heads(&id).unwrap_or_default();
            a.sort();
            b.sort();
            if a != b {
                report.diverged += 1;
            }
        }
    } else {
        report.broken += 1;
    }
    relay.kill();
    report.panics += panics_in(&relay_log);
    let mid_push = proxy.stats.pushes_unanswered.load(Ordering::Relaxed);
    // A run in which no kill landed mid-push did not test what it claims to.
    if mid_push == 0 {
        eprintln!("relay_killed: no kill landed mid-push");
        report.broken += 1;
    }
    report.acked = acked.len() as u64;
    report.set("kills_mid_push", mid_push);
    report.set(
        "pushes_sent",
        proxy.stats.pushes_sent.load(Ordering::Relaxed),
    );
    report.set("sync_errors", sync_errors);
    report.set("restart_failures", restart_failures);
    report.seconds = started.elapsed().as_secs_f64();
    report
}
