//! `gridsync bench relay`: the relay at capacity. Enrolled devices sync closed-loop
//! (each starts its next sync the moment the last one answers, no think time), so
//! the figure is what the relay can do, not what the devices asked for:
//!
//! - `idle`: nothing new anywhere; each sync is a pull that finds nothing;
//! - `active`: before each sync a device reports one new case; its sync pushes it and
//!   pulls what the other devices of its community pushed meanwhile;
//! - `paced`: the active workload again, but open-loop at half the active rate, each
//!   device on a fixed schedule: the latency a relay at half its capacity gives.
//!
//! Each line carries syncs/s, p50/p99 of a whole sync (all its requests), the relay
//! process's CPU (in cores: 1.0 is one core busy all the phase) and its resident
//! memory. The load generator runs on the same machine: its own CPU is printed too,
//! so a reader sees how much of the machine was left to the relay.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gridsync_core::sync::HttpTransport;
use gridsync_core::{Engine, NewCase, RegionLevel, Severity};
use gridsync_server::relay::Storage;
use serde_json::json;

use super::{print_as, quantile, status_mb, BenchResult, Rng, DESCRIPTIONS, TITLES};
use crate::sim;

/// CPU time of a process (all its threads), user + system, from /proc (Linux).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces:
    // utime and stime are the 14th and 15th fields of the line.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on every Linux architecture a relay runs on.
    Some(ticks / 100.0)
}

#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Idle,
    Active,
    /// Open-loop: one sync every this long on each device.
    Paced(Duration),
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Active => "active",
            Phase::Paced(_) => "paced",
        }
    }
}

#[derive(Default)]
struct Run {
    sync_ms: Vec<f64>,
    errors: u64,
    pulled: u64,
}

/// One device's loop until `deadline`.
fn drive(i: usize, engine: &Engine, url: &str, phase: Phase, deadline: Instant) -> Run {
    let mut run = Run::default();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ (i as u64 + 1));
    let grids: Vec<_> = match engine.directory().and_then(|d| {
        let me = engine.me()?;
        Ok(d.regions()
            .iter()
            .filter(|r| r.level == RegionLevel::Grid && me.region.contains(&r.code))
            .map(|r| r.code.clone())
            .collect())
    }) {
        Ok(grids) => grids,
        Err(_) => {
            run.errors += 1;
            return run;
        }
    };
    let (Ok(category), false) = (
        "livelihood".parse::<gridsync_core::CategoryCode>(),
        grids.is_empty(),
    ) else {
        run.errors += 1;
        return run;
    };
    // One transport per device: its connections are kept alive between syncs.
    let transport = HttpTransport::new(url);
    // Devices start spread over the first interval, not all at once.
    let mut next = Instant::now()
        + match phase {
            Phase::Paced(every) => every.mul_f64(rng.below(1000) as f64 / 1000.0),
            _ => Duration::ZERO,
        };
    loop {
        if let Phase::Paced(every) = phase {
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
            next += every;
        }
        if Instant::now() >= deadline {
            break;
        }
        if phase != Phase::Idle {
            let reported = engine.report_case(NewCase {
                title: rng.pick(TITLES).to_string(),
                description: rng.pick(DESCRIPTIONS).to_string(),
                category: category.clone(),
                subcategory: None,
                severity: Severity::Normal,
                grid: Some(rng.pick(&grids).clone()),
                location: None,
                people: vec![],
                photos: vec![],
                links: Default::default(),
            });
            run.errors += u64::from(reported.is_err());
        }
        let start = Instant::now();
        match gridsync_core::sync::sync(engine, &transport, &mut |_| {}) {
            Ok(report) => {
                run.sync_ms.push(start.elapsed().as_secs_f64() * 1e3);
                run.pulled += report.pulled;
            }
            Err(_) => run.errors += 1,
        }
    }
    run
}

/// Run `phase` on every device for `seconds`; print its line; return syncs/s.
fn phase(
    engines: &[Engine],
    url: &str,
    relay_pid: Option<u32>,
    phase: Phase,
    seconds: f64,
) -> BenchResult<f64> {
    let cpu = |pid: Option<u32>| pid.and_then(cpu_seconds);
    let me = std::process::id();
    let (relay_cpu_before, own_cpu_before) = (cpu(relay_pid), cpu(Some(me)));
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let runs: Vec<Run> = std::thread::scope(|s| {
        let handles: Vec<_> = engines
            .iter()
            .enumerate()
            .map(|(i, engine)| s.spawn(move || drive(i, engine, url, phase, deadline)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let busy = |before: Option<f64>, pid: Option<u32>| {
        before
            .zip(cpu(pid))
            .map(|(b, a)| ((a - b) / elapsed * 100.0).round() / 100.0)
    };
    let mut ms: Vec<f64> = runs
        .iter()
        .flat_map(|r| r.sync_ms.iter().copied())
        .collect();
    ms.sort_by(f64::total_cmp);
    let at = |q| quantile(&ms, q);
    let syncs_per_s = ms.len() as f64 / elapsed;
    let errors: u64 = runs.iter().map(|r| r.errors).sum();
    let mut line = json!({
        "devices": engines.len(),
        "seconds": elapsed,
        "syncs": ms.len(),
        "syncs_per_s": syncs_per_s,
        "p50_ms": at(0.5),
        "p99_ms": at(0.99),
        "max_ms": at(1.0),
        "changes_pulled": runs.iter().map(|r| r.pulled).sum::<u64>(),
        "errors": errors,
        "relay_cpu_cores": busy(relay_cpu_before, relay_pid),
        "load_generator_cpu_cores": busy(own_cpu_before, Some(me)),
        "relay_rss_mb": relay_pid.and_then(|pid| status_mb(pid, "VmRSS:")),
    });
    if let (Phase::Paced(every), Some(m)) = (phase, line.as_object_mut()) {
        m.insert(
            "offered_syncs_per_s".into(),
            json!(engines.len() as f64 / every.as_secs_f64()),
        );
    }
    print_as("relay", phase.name(), line);
    if errors > 0 {
        return Err(format!(
            "{errors} syncs or reports failed in the {} phase",
            phase.name()
        )
        .into());
    }
    Ok(syncs_per_s)
}

/// Where the load generator's device databases go: memory-backed when the machine
/// has /dev/shm, so the devices' own fsyncs are not counted against the relay.
fn device_folder() -> BenchResult<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    Ok(if shm.is_dir() {
        tempfile::tempdir_in(shm)?
    } else {
        tempfile::tempdir()?
    })
}

/// `gridsync bench relay`: `devices` desks of the sample directory's community
/// dispatchers, two or more per community, drive a relay closed-loop for `seconds`
/// per phase.
pub fn relay(
    devices: usize,
    seconds: f64,
    server: Option<String>,
    data: Option<PathBuf>,
) -> BenchResult {
    if !((1..=1000).contains(&devices) && seconds > 0.0 && seconds <= 3600.0) {
        return Err("--devices must be 1 to 1000 and --seconds between 0 and 3600".into());
    }
    let dir = tempfile::tempdir()?;
    let relay = match (server, data) {
        (Some(url), Some(data)) => sim::RelayProcess::external(&url, &data, &Storage::default()),
        (None, None) => sim::RelayProcess::start(&dir.path().join("relay"))?,
        _ => {
            return Err(
                "--server needs --data (the relay's data folder, for enrollment codes)".into(),
            )
        }
    };
    let directory = relay.open()?.engine().directory()?;
    let dispatchers: Vec<String> = directory
        .users()
        .iter()
        .filter(|u| u.role == gridsync_core::Role::CommunityDispatcher)
        .map(|u| u.id.to_string())
        .collect();
    if dispatchers.is_empty() {
        return Err("the relay's directory has no community dispatchers".into());
    }
    // At least two desks per community, so each active sync has another desk's
    // cases to pull.
    let communities = (devices / 2).clamp(1, dispatchers.len());
    let folder = device_folder()?;
    let clock: gridsync_core::Clock = std::sync::Arc::new(chrono::Utc::now);
    let engines = (0..devices)
        .map(|i| {
            let desk = folder.path().join(format!("desk{i}"));
            std::fs::create_dir_all(&desk)?;
            relay.enroll_with_clock(&desk, &dispatchers[i % communities], clock.clone())
        })
        .collect::<BenchResult<Vec<Engine>>>()?;
    // Everyone holds what the relay has before the clock starts.
    for engine in &engines {
        engine.sync(&mut |_| {})?;
    }
    let pid = relay.pid();
    phase(&engines, &relay.url, pid, Phase::Idle, seconds)?;
    let active = phase(&engines, &relay.url, pid, Phase::Active, seconds)?;
    if active > 0.0 {
        let every = Duration::from_secs_f64(devices as f64 / (active / 2.0));
        phase(&engines, &relay.url, pid, Phase::Paced(every), seconds)?;
    }
    Ok(())
}
