//! Scenario 8 of the issue, versions, against the real binaries: each committed
//! golden generation (`tests/golden/v1`, `v2`, …: a phone database, a relay data folder and
//! recorded protocol-v1 messages, see `tests/e2e/golden.rs`) opened by this build's
//! `gridsync serve` and engine — the phone's file converted to SQLCipher on the way,
//! as an app upgrading to encryption at rest does. Nothing the phone held is lost,
//! its unsent work drains, every recorded request is answered over HTTP, and a
//! request of the next protocol version is refused with the message to update.

use std::path::Path;
use std::time::{Duration, Instant};

use gridsync_core::sync::route::{Request, Route};
use gridsync_core::sync::{HttpTransport, Transport, TransportError};
use gridsync_core::{CaseFilter, Engine};
use serde::Deserialize;

use super::{
    drain, enroll_phone, panics_in, Level, PhoneId, RelayProcess, Report, Rng, DISPATCHER,
};

#[derive(Deserialize)]
struct Expected {
    user: String,
    device: String,
    token: String,
    cases: Vec<(String, String, String)>,
    pending: u64,
    unsent_cases: Vec<String>,
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// Run the scenario.
pub fn run(_level: Level, seed: u64, work: &Path) -> Report {
    let started = Instant::now();
    let mut report = Report::new("versions", seed);
    let mut rng = Rng::new(seed);
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("golden");
    let (mut answered, mut refused_versions) = (0u64, 0u64);
    for generation in gridsync_tests::GOLDEN_GENERATIONS {
        report.runs += 1;
        let dir = work.join(generation);
        let expected = copy_dir(&golden.join(generation), &dir)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                std::fs::read_to_string(dir.join("expected.json")).map_err(|e| e.to_string())
            })
            .and_then(|s| serde_json::from_str::<Expected>(&s).map_err(|e| e.to_string()));
        let expected = match expected {
            Ok(e) => e,
            Err(e) => {
                eprintln!("versions: {generation}: the golden files: {e}");
                report.broken += 1;
                continue;
            }
        };
        report.acked += expected.cases.len() as u64;
        // A token's lifetime is not what this checks: the copy's devices live on.
        let extended =
            rusqlite::Connection::open(dir.join("relay").join("relay.db")).and_then(|db| {
                let now = chrono::Utc::now();
                db.execute(
                    "UPDATE devices SET expires_ms = ?1, token_issued_ms = ?2",
                    [
                        (now + chrono::Duration::days(365)).timestamp_millis(),
                        now.timestamp_millis(),
                    ],
                )
            });
        if let Err(e) = extended {
            eprintln!("versions: {generation}: the relay's folder: {e}");
            report.broken += 1;
            continue;
        }
        let data = dir.join("relay");
        let log = dir.join("relay.log");
        let relay = match RelayProcess::start(&data, "127.0.0.1:0", &log) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("versions: {generation}: gridsync serve on the old folder: {e}");
                report.broken += 1;
                continue;
            }
        };
        let (Ok(user), Ok(device)) = (expected.user.parse(), expected.device.parse()) else {
            report.broken += 1;
            continue;
        };
        let mut key = [0u8; 32];
        for chunk in key.chunks_mut(8) {
            chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
        }
        let phone = PhoneId {
            db: dir.join(format!("{}.db", expected.user)),
            identity: gridsync_core::Identity { user, device },
            key,
        };
        // The plaintext file of that build, opened with a key: converted once.
        let engine = match phone.open() {
            Ok(e) => e,
            Err(e) => {
                eprintln!("versions: {generation}: the phone's database: {e}");
                report.broken += 1;
                report.lost += expected.cases.len() as u64;
                continue;
            }
        };
        let all = CaseFilter {
            limit: 100_000,
            ..Default::default()
        };
        let held: Vec<(String, String, String)> = engine
            .list_cases(&all)
            .unwrap_or_default()
            .iter()
            .map(|c| (c.id.to_string(), c.title.clone(), c.status.as_str().into()))
            .collect();
        let mut lost = std::collections::BTreeSet::new();
        for case in &expected.cases {
            if !held.contains(case) {
                eprintln!("versions: {generation}: the phone lost {case:?}");
                lost.insert(case.0.clone());
            }
        }
        if engine.outbox_len().unwrap_or(u64::MAX) != expected.pending {
            eprintln!("versions: {generation}: the outbox changed");
            report.broken += 1;
        }
        if let Err(e) = super::integrity_check(&phone) {
            eprintln!("versions: {generation}: integrity_check after conversion: {e}");
            report.broken += 1;
        }

        // Every recorded request answered over HTTP by this build's relay.
        let http = HttpTransport::new(&relay.url);
        let mut recorded: Vec<_> = std::fs::read_dir(dir.join("messages"))
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        recorded.sort();
        if recorded.is_empty() {
            report.broken += 1;
        }
        for path in &recorded {
            let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            let Some(route) = Route::ALL.into_iter().find(|r| name.ends_with(r.name())) else {
                report.broken += 1;
                continue;
            };
            let body = std::fs::read(path).unwrap_or_default();
            match http.post(route.path(), Some(&expected.token), body.clone()) {
                Ok(_) => answered += 1,
                Err(e) => {
                    eprintln!("versions: {generation}: {name} not answered: {e}");
                    report.broken += 1;
                }
            }
            // The same request from a phone of the next protocol version.
            if let Ok(Request::Pull(mut req)) = Request::decode(route, &body) {
                req.v = gridsync_core::sync::wire::PROTOCOL_VERSION + 1;
                match http.post(
                    route.path(),
                    Some(&expected.token),
                    gridsync_core::sync::wire::encode(&req),
                ) {
                    Err(TransportError::Status { status, body })
                        if status >= 400
                            && String::from_utf8_lossy(&body).contains("update the app") =>
                    {
                        refused_versions += 1
                    }
                    other => {
                        eprintln!(
                            "versions: {generation}: a v+1 pull was not refused: {:?}",
                            other.map(|b| b.len())
                        );
                        report.broken += 1;
                    }
                }
            }
        }
        if refused_versions == 0 {
            report.broken += 1;
        }

        // The phone's unsent work reaches the relay; a new dispatcher phone gets all.
        let token = expected.token.clone();
        match engine.set_server(&relay.url, &token) {
            Ok(()) => {
                if let Err(why) = drain(&engine, Instant::now() + Duration::from_secs(60)) {
                    report.stuck_queue("the old phone", why);
                }
            }
            Err(e) => {
                eprintln!("versions: the old phone takes no relay address: {e}");
                report.stuck += 1;
            }
        }
        let observer = enroll_phone(&data, &relay.url, &relay.url, DISPATCHER, work, &mut rng)
            .ok()
            .and_then(|o| o.open().ok());
        let theirs: Vec<String> = observer
            .as_ref()
            .map(|o: &Engine| {
                if let Err(why) = drain(o, Instant::now() + Duration::from_secs(60)) {
                    report.stuck_queue("the new dispatcher phone", why);
                }
                o.list_cases(&all).unwrap_or_default()
            })
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.id.to_string())
            .collect();
        for id in expected
            .cases
            .iter()
            .map(|c| &c.0)
            .chain(&expected.unsent_cases)
        {
            if !theirs.contains(id) {
                eprintln!("versions: {generation}: {id} did not reach the relay");
                lost.insert(id.clone());
            }
        }
        report.lost += lost.len() as u64;
        drop(relay);
        report.panics += panics_in(&log);
    }
    report.set(
        "generations",
        gridsync_tests::GOLDEN_GENERATIONS.len() as u64,
    );
    report.set("recorded_requests_answered", answered);
    report.set("next_version_refused", refused_versions);
    report.seconds = started.elapsed().as_secs_f64();
    report
}
