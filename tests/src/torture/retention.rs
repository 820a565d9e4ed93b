//! Scenario 9 of the issue, retention: livelihood's closed cases are kept 30 days
//! (the directory's `retention_days`). A worker and a dispatcher, their clocks 40
//! days back, report cases with a canary word each (some with a photo), close
//! some, leave others open, and close some of a category kept for good. A sweep
//! while the relay's receipts are new must erase nothing (a phone's clock does not
//! make a case due); then the relay's receipts are moved 40 days back (the time
//! passing on its clock) and a sweep must erase exactly the closed livelihood
//! cases. Then the phones pull, a backup is taken, the relay is stopped and a
//! backup from before the sweep is restored; a canary scan of every file — the
//! relay's folder and log, the new backup, the restored relay, the phones' files
//! raw and their databases decrypted — must find none of the erased cases, and
//! every case that stays must be on the relay and the phones.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, Utc};
use gridsync_core::vault::DeviceKey;
use gridsync_core::{Action, CaseFilter, DocId, Engine, NewCase, PhotoHash};
use gridsync_tests::canary;

use super::bad_links::new_case;
use super::{
    drain, enroll_phone, open_raw, panics_in, sibling_binary, Level, PhoneId, RelayProcess, Report,
    Rng, DISPATCHER, WORKER,
};

/// The retention set on livelihood, and how far back the phones' clocks and the
/// relay's receipts are put.
const RETENTION_DAYS: u32 = 30;
const AGE_DAYS: i64 = 40;

/// What happens to a case of the scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// Livelihood, closed: due.
    Erased,
    /// Livelihood, still open.
    Open,
    /// Safety (kept for good), closed.
    KeptCategory,
}

struct Planted {
    id: DocId,
    fate: Fate,
    canary: String,
    photo: Option<PhotoHash>,
}

/// Run the scenario.
pub fn run(level: Level, seed: u64, work: &Path) -> Report {
    let started = Instant::now();
    let mut report = Report::new("retention", seed);
    let mut rng = Rng::new(seed);
    let cases: u64 = match level {
        Level::Quick => 24,
        Level::Long => 300,
    };
    let data = work.join("relay");
    let relay_log = work.join("relay.log");
    let mut relay = RelayProcess::start(&data, "127.0.0.1:0", &relay_log)
        .expect("the relay starts (is the gridsync binary built?)");
    if let Err(e) = set_retention(&data, work) {
        eprintln!("retention: {e}");
        report.broken += 1;
        return finish(report, started);
    }
    report.runs += 1;

    let phone_folder = work.join("phones");
    let _ = std::fs::create_dir_all(&phone_folder);
    let phones: Vec<PhoneId> = [WORKER, DISPATCHER]
        .iter()
        .map(|user| {
            enroll_phone(&data, &relay.url, &relay.url, user, &phone_folder, &mut rng)
                .expect("a phone enrolls")
        })
        .collect();
    let past: gridsync_core::Clock = Arc::new(|| Utc::now() - Duration::days(AGE_DAYS));
    let open = |p: &PhoneId| {
        Engine::open_encrypted_with_clock(
            &p.db,
            p.identity.clone(),
            &DeviceKey::from_bytes(p.key),
            past.clone(),
        )
        .expect("the phone opens")
    };
    let (worker, dispatcher) = (open(&phones[0]), open(&phones[1]));
    let drain_all = |report: &mut Report| {
        for (who, phone) in [("the worker", &worker), ("the dispatcher", &dispatcher)] {
            if let Err(why) = drain(phone, Instant::now() + StdDuration::from_secs(60)) {
                report.stuck_queue(who, why);
            }
        }
    };
    drain_all(&mut report);

    // Plant the cases: each fate in turn from a seeded start (so every fate is
    // there, with and without photos); photos on every other round of three.
    let mut planted = Vec::new();
    let first = rng.range(0, 3);
    for i in 0..cases {
        let fate = [Fate::Erased, Fate::Open, Fate::KeptCategory][((first + i) % 3) as usize];
        let canary = format!("zq{seed:x}k{i}q");
        let photo = (i / 3 % 2 == 0).then(|| {
            worker
                .ingest_photo(
                    &gridsync_tests::photo(salt(seed, i), 640, 480),
                    Some("IMG.jpg"),
                )
                .expect("a photo is ingested")
                .hash
        });
        let mut case = NewCase {
            description: format!("{canary} 楼道渗水"),
            photos: photo.iter().cloned().collect(),
            ..new_case(&format!("留存测试 {canary}"))
        };
        if fate == Fate::KeptCategory {
            case.category = "safety".parse().expect("a category of the sample");
        }
        let Ok(id) = worker.report_case(case) else {
            report.broken += 1;
            continue;
        };
        report.acked += 1;
        if fate != Fate::Open {
            match worker.act(
                &id,
                Action::SelfHandle {
                    result: "已处理".into(),
                },
            ) {
                Ok(_) => report.acked += 1,
                Err(_) => report.broken += 1,
            }
        }
        planted.push(Planted {
            id,
            fate,
            canary,
            photo,
        });
    }
    drain_all(&mut report);
    for p in planted.iter().filter(|p| p.fate != Fate::Open) {
        match dispatcher.act(&p.id, Action::Archive) {
            Ok(_) => report.acked += 1,
            Err(_) => report.broken += 1,
        }
    }
    drain_all(&mut report);
    drain_all(&mut report);

    let erased: Vec<&Planted> = planted.iter().filter(|p| p.fate == Fate::Erased).collect();
    let needles: Vec<Vec<u8>> = erased.iter().flat_map(|p| needles_of(p)).collect();
    let needles: Vec<&[u8]> = needles.iter().map(Vec::as_slice).collect();
    // The scan can fail: before the sweep every canary is in the relay's files.
    let before_sweep = canary::scan(&data, &needles);
    let unseen = (0..needles.len())
        .filter(|i| !before_sweep.iter().any(|(_, f)| f == i))
        .count();
    report.set("canaries", needles.len());
    report.set("canaries_unseen_before", unseen);
    report.broken += unseen as u64;

    let backups = work.join("backups");
    let before = backups.join("before");
    let mut admin_failed = admin(&data, &["backup", "--to", &before.to_string_lossy()]).is_err();

    // Not due by the relay's clock, whatever the phones' say.
    match sweep(&data, &backups) {
        Ok(0) => {}
        Ok(n) => {
            eprintln!("retention: {n} erased while the relay's receipts were new");
            report.lost += n;
        }
        Err(_) => admin_failed = true,
    }
    // Forty days pass on the relay's clock.
    if let Err(e) = age_receipts(&data) {
        eprintln!("retention: receipts not moved: {e}");
        report.broken += 1;
    }
    let swept = sweep(&data, &backups).unwrap_or_else(|_| {
        admin_failed = true;
        0
    });
    report.set("erased", swept);
    report.set("due", erased.len());
    if swept != erased.len() as u64 {
        eprintln!("retention: {swept} erased, {} due", erased.len());
        report.broken += 1;
    }
    drain_all(&mut report);
    drain_all(&mut report);

    // Every phone and the relay (through the dispatcher's phone) hold exactly
    // the cases that stay.
    for (phone, who) in [(&worker, "worker"), (&dispatcher, "dispatcher")] {
        let held: Vec<DocId> = phone
            .list_cases(&CaseFilter {
                limit: u32::MAX,
                ..Default::default()
            })
            .map(|l| l.into_iter().map(|c| c.id).collect())
            .unwrap_or_default();
        for p in &planted {
            let there = held.contains(&p.id);
            match (p.fate, there) {
                (Fate::Erased, true) => {
                    eprintln!("retention: {who} still holds {}", p.id);
                    report.broken += 1;
                }
                (Fate::Open | Fate::KeptCategory, false) => {
                    eprintln!("retention: {who} lost {}", p.id);
                    report.lost += 1;
                }
                _ => {}
            }
            if let (Fate::Erased, Some(hash)) = (p.fate, &p.photo) {
                if phone.has_photo(hash).unwrap_or(true) {
                    eprintln!("retention: {who} still holds a photo of {}", p.id);
                    report.broken += 1;
                }
            }
        }
    }
    let after = backups.join("after");
    admin_failed |= admin(&data, &["backup", "--to", &after.to_string_lossy()]).is_err();
    drop((worker, dispatcher));
    relay.kill();
    report.panics += panics_in(&relay_log);
    let restored = work.join("restored");
    admin_failed |= admin(&restored, &["restore", "--from", &before.to_string_lossy()]).is_err();
    if admin_failed {
        report.broken += 1;
    }

    // The scan: every file of the relay (its log too), the new backup, the
    // restored relay, the phones' files as they are and their databases decrypted.
    let exports = work.join("decrypted");
    let _ = std::fs::create_dir_all(&exports);
    for phone in &phones {
        if let Err(e) = export_decrypted(phone, &exports) {
            eprintln!("retention: a phone's database not exported: {e}");
            report.broken += 1;
        }
    }
    let roots: Vec<PathBuf> = vec![data.clone(), after, restored, exports, phone_folder];
    let mut found = Vec::new();
    let mut files = 0;
    let photos: Vec<&str> = erased
        .iter()
        .filter_map(|p| p.photo.as_ref().map(PhotoHash::as_str))
        .collect();
    let mut photo_copies = 0;
    for root in &roots {
        files += canary::files_under(root).len();
        found.extend(canary::scan(root, &needles));
        for copy in canary::copies(root, &photos) {
            eprintln!("retention: an erased photo left in {}", copy.display());
            photo_copies += 1;
        }
    }
    // The scan can fail: the backup from before the sweep holds every photo.
    let photos_before = canary::copies(&before, &photos).len();
    report.set("photos", photos.len());
    report.set("photo_copies_left", photo_copies);
    if photos_before < photos.len() {
        eprintln!(
            "retention: {photos_before} of {} erased photos in the old backup: the scan proves nothing",
            photos.len()
        );
        report.broken += 1;
    }
    report.broken += photo_copies;
    if contains_any(&relay_log, &needles) {
        found.push((relay_log.clone(), 0));
    }
    for (file, i) in &found {
        eprintln!(
            "retention: canary {} left in {}",
            String::from_utf8_lossy(needles[*i]),
            file.display()
        );
    }
    report.set("files_scanned", files);
    report.set("canaries_left", found.len());
    report.broken += found.len() as u64;
    report.set(
        "kept",
        planted.iter().filter(|p| p.fate != Fate::Erased).count(),
    );
    finish(report, started)
}

fn finish(mut report: Report, started: Instant) -> Report {
    report.seconds = started.elapsed().as_secs_f64();
    report
}

/// A photo salt of its own for case `i`: `photo` draws blue from bits 16–23 and
/// shifts green by bits 8–15, so salts that differ only in their low bits (a
/// seed's `^ i`) can give the same JPEG — one photo shared by two cases, which
/// the erasure of one rightly keeps.
fn salt(seed: u64, i: u64) -> u64 {
    ((i & 0xff) << 16) | (((i >> 8) & 0xff) << 8) | (seed & 0xff)
}

/// What an erased case leaves if it is not gone: its canary word and, with a
/// photo, the photo's hash (the photo itself is looked for whole, by
/// [`canary::copies`]).
fn needles_of(p: &Planted) -> Vec<Vec<u8>> {
    let mut out = vec![p.canary.clone().into_bytes()];
    if let Some(hash) = &p.photo {
        out.push(hash.as_str().as_bytes().to_vec());
    }
    out
}

fn contains_any(file: &Path, needles: &[&[u8]]) -> bool {
    let bytes = std::fs::read(file).unwrap_or_default();
    needles.iter().any(|n| canary::contains(&bytes, n))
}

/// `gridsync admin <args>` on `data`; its standard output.
fn admin(data: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(sibling_binary("gridsync", "GRIDSYNC_BIN"))
        .args(["admin", "--data"])
        .arg(data)
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr).into_owned();
        eprintln!("retention: admin {args:?}: {why}");
        return Err(why);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `gridsync admin sweep-retention`; how many cases it erased.
fn sweep(data: &Path, backups: &Path) -> Result<u64, String> {
    let said = admin(
        data,
        &["sweep-retention", "--backups", &backups.to_string_lossy()],
    )?;
    said.split(", ")
        .nth(1)
        .and_then(|s| s.strip_suffix(" erased\n").or(s.strip_suffix(" erased")))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| format!("sweep-retention said {said:?}"))
}

/// Livelihood's closed cases kept 30 days: the directory in force with
/// `retention_days`, imported as a new revision.
fn set_retention(data: &Path, work: &Path) -> Result<(), String> {
    let shown = admin(data, &["directory", "show"])?;
    let mut directory: serde_json::Value =
        serde_json::from_str(&shown).map_err(|e| e.to_string())?;
    let category = directory["taxonomy"]
        .as_array_mut()
        .and_then(|t| t.iter_mut().find(|c| c["code"] == "livelihood"))
        .ok_or("no livelihood category")?;
    category["retention_days"] = RETENTION_DAYS.into();
    let file = work.join("directory.json");
    std::fs::write(&file, directory.to_string()).map_err(|e| e.to_string())?;
    admin(data, &["directory", "import", &file.to_string_lossy()]).map(drop)
}

/// Move every receipt and every logged change of the relay `AGE_DAYS` back, as
/// its clock would have recorded them had the phones synced then (the relay keeps
/// serving).
fn age_receipts(data: &Path) -> rusqlite::Result<usize> {
    let db = rusqlite::Connection::open(data.join("relay.db"))?;
    db.busy_timeout(StdDuration::from_secs(10))?;
    let back = [Duration::days(AGE_DAYS).num_milliseconds()];
    db.execute(
        "UPDATE entry_receipts SET received_ms = received_ms - ?1",
        back,
    )?;
    db.execute("UPDATE log SET received_ms = received_ms - ?1", back)
}

/// The phone's database decrypted into `folder` (`sqlcipher_export`): what a
/// thief with the key would read, search index included.
fn export_decrypted(phone: &PhoneId, folder: &Path) -> Result<(), String> {
    let conn = open_raw(phone)?;
    let name = phone
        .db
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let plain = folder.join(format!("{name}.plain"));
    conn.execute(
        "ATTACH DATABASE ?1 AS plain KEY ''",
        [plain.to_string_lossy()],
    )
    .map_err(|e| e.to_string())?;
    conn.query_row("SELECT sqlcipher_export('plain')", [], |_| Ok(()))
        .map_err(|e| e.to_string())?;
    conn.execute_batch("DETACH DATABASE plain")
        .map_err(|e| e.to_string())
}
