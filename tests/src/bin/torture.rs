//! The torture suite: every scenario against the real `gridsync` binary and the
//! phone workload (`torture_phone`), one JSON line per scenario and a summary line.
//! Exits 1 when anything was lost, duplicated, stuck, diverged, panicked or broken.
//!
//! Usage: torture [--quick | --long] [--seed N] [--only NAME] [--keep]

#[path = "../torture/mod.rs"]
mod torture;

use std::time::{Duration, Instant};

use torture::{Level, Report};

type Scenario = fn(Level, u64, &std::path::Path) -> Report;

/// In the order of the priorities.
const SCENARIOS: &[(&str, Scenario)] = &[
    ("phone_killed", torture::phone_killed::run),
    ("power_lost", torture::power_lost::run),
    ("disk_full", torture::disk_full::run),
    ("io_errors", torture::io_errors::run),
    ("bad_links", torture::bad_links::run),
    ("long_offline", torture::long_offline::run),
    ("relay_killed", torture::relay_killed::run),
    ("clocks", torture::clocks::run),
    ("soak", torture::soak::run),
    ("retention", torture::retention::run),
    ("versions", torture::versions::run),
];

fn main() {
    let mut level = Level::Quick;
    let mut seed: Option<u64> = None;
    let mut only: Option<String> = None;
    let mut keep = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => level = Level::Quick,
            "--long" => level = Level::Long,
            "--keep" => keep = true,
            "--seed" => seed = args.next().and_then(|s| s.parse().ok()).or_else(usage),
            "--only" => only = args.next().or_else(usage),
            _ => {
                usage::<()>();
            }
        }
    }
    if let Some(name) = &only {
        if !SCENARIOS.iter().any(|(n, _)| n == name) {
            eprintln!("torture: no scenario {name:?}");
            usage::<()>();
        }
    }
    let seed = seed.unwrap_or_else(|| {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).expect("the OS gives random bytes");
        u64::from_le_bytes(b) >> 16
    });
    let started = Instant::now();
    // Every scenario bounds its own waits; this is the backstop if one does not.
    // (`TORTURE_LIMIT_SECONDS` changes it.)
    let limit = std::env::var("TORTURE_LIMIT_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(match level {
            Level::Quick => Duration::from_secs(15 * 60),
            Level::Long => Duration::from_secs(4 * 60 * 60),
        });
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        println!(
            "{}",
            serde_json::json!({"summary": "timeout", "seed": seed, "seconds": limit.as_secs()})
        );
        torture::kill_children();
        std::process::exit(1);
    });
    let (mut failed, mut ran) = (Vec::new(), 0);
    for (name, scenario) in SCENARIOS {
        if only.as_deref().is_some_and(|o| o != *name) {
            continue;
        }
        let work = tempfile::Builder::new()
            .prefix(&format!("torture-{name}-"))
            .tempdir()
            .expect("a temporary folder");
        // Every scenario gets the run's seed, so `--only NAME --seed N` replays it.
        let report = scenario(level, seed, work.path());
        println!("{}", report.json());
        ran += 1;
        if report.failed() {
            failed.push(*name);
            if keep {
                eprintln!("torture: {name}'s files kept in {}", work.keep().display());
            }
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "summary": if failed.is_empty() { "ok" } else { "failed" },
            "seed": seed,
            "level": format!("{level:?}").to_lowercase(),
            "scenarios": ran,
            "failed": failed,
            "seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        })
    );
    if !failed.is_empty() {
        std::process::exit(1);
    }
}

fn usage<T>() -> Option<T> {
    eprintln!("usage: torture [--quick | --long] [--seed N] [--only NAME] [--keep]");
    std::process::exit(2);
}
