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
//! fsync), so outside the VFS: for them both processes run under the interposer of
//! [`cut_files`] (`LD_PRELOAD`), and after each kill the orchestrator throws away
//! what the process had not synced — bytes not fsynced, names (creations, renames,
//! unlinks, folders) whose folder was not fsynced. A third of the phone's cuts and a
//! third of the relay's land just after the process started changing a photo file.
//! After each cut every photo row of the phone must have its whole file (the
//! SHA-256 its name says), and after a relay's cut every photo the relay recorded,
//! and every photo a phone was told the relay stored, must be whole in its folder.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gridsync_core::PhotoHash;
use gridsync_tests::proxy::{Fault, FaultProxy};
use sha2::{Digest, Sha256};

use cut_files::{FileCut, Undone};

use super::bad_links::compare;
use super::phone_killed::{dispatch, unaccounted_changes, Acked};
use super::{
    drain, enroll_phone, integrity_check, open_raw, panics_in, sqlite_integrity, Level, PhoneId,
    RelayProcess, Report, Rng, DISPATCHER, WORKER,
};

pub mod cut_files;

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
    let data = work.join("relay");
    let absolute = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
    let relay_files = FileCut::new(
        &absolute(work.join("cut-relay")),
        vec![
            absolute(data.join("blobs")),
            absolute(data.join("server.db.photos")),
        ],
    );
    let relay_files = match relay_files {
        Ok(c) => c,
        Err(e) => {
            eprintln!("power_lost: the photo files cannot be cut: {e}");
            report.broken += 1;
            return report;
        }
    };
    // The relay never lies about fsync, even when the run's environment asks the
    // phone's VFS to (`TORTURE_VFS_LYING_SYNC=1`, the check that this scenario can
    // fail): `gridsync admin` reads its files from another process while it runs,
    // and would not see what a lying VFS kept in the relay's memory.
    let relay_env = [
        env.clone(),
        vec![("TORTURE_VFS_LYING_SYNC", "0".to_owned())],
        relay_files.env(),
    ]
    .concat();
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
    let phone_files = match FileCut::new(
        &absolute(work.join("cut-phone")),
        vec![absolute(phone_photos(&phone.db))],
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("power_lost: the photo files cannot be cut: {e}");
            report.broken += 1;
            return report;
        }
    };
    let phone_env = [env.clone(), phone_files.env()].concat();

    let mut acked: Vec<Acked> = Vec::new();
    let mut accepted: Vec<Acked> = Vec::new();
    let mut lost_in_rounds: BTreeSet<usize> = BTreeSet::new();
    let mut missing_on_relay: BTreeSet<Vec<u8>> = BTreeSet::new();
    let mut photos = PhotoChecks::default();
    let (mut mid_write, mut mid_sync, mut relay_cuts, mut relay_on_push) = (0u64, 0, 0, 0);
    let (mut acked_pushes_checked, mut syncs_ok, mut restart_failures) = (0u64, 0u64, 0u64);
    let (mut phone_on_photo, mut relay_on_photo, mut photos_uploaded) = (0u64, 0u64, 0u64);
    let (mut phone_undone, mut relay_undone) = (Undone::default(), Undone::default());
    for run in 0..cuts {
        let phone_log = work.join(format!("phone-{run}.log"));
        let Ok(mut child) = phone.workload_with(seed, run, 400, &phone_log, &phone_env) else {
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
        // A third of the cuts of each wait for a photo file to change, then up to
        // 1.5 ms more: inside the write, sync, rename, folder sync.
        let phone_waits_photo = rng.chance(33);
        let relay_waits_photo = !on_push && rng.chance(67);
        let (phone_jitter, relay_jitter) = (rng.range(0, 1500), rng.range(0, 1500));
        let mut drng = rng.fork();
        let stop = AtomicBool::new(false);
        let pushes_before = proxy.stats.pushes_sent.load(Ordering::Relaxed);
        let relay_journal_before = relay_files.journal_len();
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
                } else if relay_waits_photo {
                    // As soon as the relay starts changing a photo file (an upload
                    // arriving), or at the phone's cut.
                    while relay_files.journal_len() == relay_journal_before && t.elapsed() < delay {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    if relay_files.journal_len() != relay_journal_before {
                        relay_on_photo += 1;
                        std::thread::sleep(Duration::from_micros(relay_jitter));
                    }
                } else {
                    std::thread::sleep(relay_delay);
                }
                relay.kill(); // the relay's power goes
            }
            let mut on_photo = false;
            if phone_waits_photo {
                // From half the delay, the phone's first photo write (or the delay).
                std::thread::sleep((delay / 2).saturating_sub(t.elapsed()));
                let before = phone_files.journal_len();
                while phone_files.journal_len() == before && t.elapsed() < delay {
                    std::thread::sleep(Duration::from_micros(200));
                }
                on_photo = phone_files.journal_len() != before;
            }
            if on_photo {
                phone_on_photo += 1;
                std::thread::sleep(Duration::from_micros(phone_jitter));
            } else {
                std::thread::sleep(delay.saturating_sub(t.elapsed()));
            }
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
        photos_uploaded += lines
            .iter()
            .filter_map(|l| l.strip_prefix("S ok "))
            .filter_map(|l| l.rsplit_once("photos=")?.1.parse::<u64>().ok())
            .sum::<u64>();
        acked.extend(lines.iter().filter_map(|l| Acked::parse(l)));

        match phone_files.cut() {
            Ok(u) => add(&mut phone_undone, u),
            Err(e) => {
                eprintln!("power_lost: run {run}: the phone's photo files: {e}");
                report.broken += 1;
            }
        }
        if let Some(engine) = check_phone(&phone, &acked, &mut lost_in_rounds, &mut report, run) {
            photos.check_phone(&phone, &engine, &mut report, run);
        }
        if cut_relay {
            relay_cuts += 1;
            relay_on_push += u64::from(on_push);
            report.faults += 1;
            match relay_files.cut() {
                Ok(u) => add(&mut relay_undone, u),
                Err(e) => {
                    eprintln!("power_lost: run {run}: the relay's photo files: {e}");
                    report.broken += 1;
                }
            }
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
            photos.check_relay(&data, &[&phone, &observer_id], &mut report, run);
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
    match relay_files.cut() {
        Ok(u) => add(&mut relay_undone, u),
        Err(e) => {
            eprintln!("power_lost: the relay's photo files at the end: {e}");
            report.broken += 1;
        }
    }
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
    photos.check_relay(&data, &[&phone, &observer_id], &mut report, cuts);
    let relay = restart(&[], &data, &listen, &relay_log, false);
    let dispatched = acked.len();
    acked.extend(accepted);
    let (Some(mut relay), Ok(engine)) = (relay, phone.open()) else {
        eprintln!("power_lost: the relay or the phone does not open at the end");
        report.broken += 1;
        report.seconds = started.elapsed().as_secs_f64();
        return report;
    };
    if let Err(why) = drain(&engine, Instant::now() + Duration::from_secs(60)) {
        report.stuck_queue("the phone", why);
    }
    if let Err(why) = drain(&observer, Instant::now() + Duration::from_secs(60)) {
        report.stuck_queue("the dispatcher", why);
    }
    let docs_compared = compare_at_the_end(&mut report, engine, &observer, &acked, &lost_in_rounds);
    report.lost += missing_on_relay.len() as u64;
    report.lost += photos.lost();
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
    report.set(
        "photos_acked",
        acked
            .iter()
            .filter(|w| matches!(w, Acked::Photo(..)))
            .count() as u64,
    );
    report.set("photos_uploaded", photos_uploaded);
    report.set("phone_photo_rows_checked", photos.phone_rows_checked);
    report.set("phone_photos_bad", photos.phone_bad.len() as u64);
    report.set("relay_photos_checked", photos.relay_checked);
    report.set("relay_photos_acked_checked", photos.relay_acked_checked);
    report.set("relay_photos_bad", photos.relay_bad.len() as u64);
    report.set("phone_cuts_on_photo_write", phone_on_photo);
    report.set("relay_cuts_on_photo_write", relay_on_photo);
    report.set("phone_photo_file_syncs", phone_undone.file_syncs);
    report.set("phone_photo_dir_syncs", phone_undone.dir_syncs);
    report.set("phone_photo_names_undone", phone_undone.names);
    report.set("phone_photo_files_undone", phone_undone.files);
    report.set("relay_photo_file_syncs", relay_undone.file_syncs);
    report.set("relay_photo_dir_syncs", relay_undone.dir_syncs);
    report.set("relay_photo_names_undone", relay_undone.names);
    report.set("relay_photo_files_undone", relay_undone.files);
    report.seconds = started.elapsed().as_secs_f64();
    report
}

fn add(total: &mut Undone, one: Undone) {
    total.names += one.names;
    total.files += one.files;
    total.file_syncs += one.file_syncs;
    total.dir_syncs += one.dir_syncs;
}

/// The photo folder of the phone database at `db` (`Blobs::for_db`).
fn phone_photos(db: &Path) -> PathBuf {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".photos");
    db.with_file_name(name)
}

/// A file as it was when its bytes were found right: the same inode, size and
/// modification time mean the same bytes (a cut that puts bytes back rewrites the
/// inode; one that puts a name back links another).
type Seen = (u64, u64, u64, i64, i64);

fn seen(m: &std::fs::Metadata) -> Seen {
    (m.dev(), m.ino(), m.len(), m.mtime(), m.mtime_nsec())
}

/// The photo checks after the cuts: which photos were found without their whole
/// bytes (each counted once, as lost), and how much was checked.
#[derive(Default)]
struct PhotoChecks {
    /// Photo rows of the phone whose file is missing or not the photo.
    phone_bad: BTreeSet<String>,
    /// Photos the relay recorded, or that a phone was told it stored, whose file
    /// in the relay's folder is missing or not the photo (or that it lacks a record).
    relay_bad: BTreeSet<String>,
    phone_rows_checked: u64,
    relay_checked: u64,
    relay_acked_checked: u64,
    /// Files found right, by path.
    good: HashMap<PathBuf, Seen>,
}

impl PhotoChecks {
    fn lost(&self) -> u64 {
        (self.phone_bad.len() + self.relay_bad.len()) as u64
    }

    /// Whether `path`'s file was found right before and has not changed since.
    fn unchanged(&self, path: &Path) -> bool {
        std::fs::symlink_metadata(path)
            .is_ok_and(|m| self.good.get(path).is_some_and(|s| *s == seen(&m)))
    }

    fn found_good(&mut self, path: &Path) {
        if let Ok(m) = std::fs::symlink_metadata(path) {
            self.good.insert(path.to_owned(), seen(&m));
        }
    }

    /// With the phone down: every photo row (display image or thumbnail, taken
    /// here or fetched) has its file, and it opens as the photo its hash names.
    fn check_phone(
        &mut self,
        phone: &PhoneId,
        engine: &gridsync_core::Engine,
        report: &mut Report,
        run: u64,
    ) {
        let rows = open_raw(phone).and_then(|conn| {
            let mut st = conn
                .prepare("SELECT hash FROM photos")
                .map_err(|e| e.to_string())?;
            let rows = st
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(|e| e.to_string())?;
            rows.collect::<Result<Vec<String>, _>>()
                .map_err(|e| e.to_string())
        });
        let rows = match rows {
            Ok(r) => r,
            Err(e) => {
                eprintln!("power_lost: run {run}: the phone's photo rows: {e}");
                report.broken += 1;
                return;
            }
        };
        let root = phone_photos(&phone.db);
        self.phone_rows_checked = self.phone_rows_checked.max(rows.len() as u64);
        for hash in rows {
            let path = root
                .join(hash.get(..2).unwrap_or("??"))
                .join(format!("{hash}.sealed"));
            if self.unchanged(&path) {
                continue;
            }
            let whole = hash
                .parse::<PhotoHash>()
                .is_ok_and(|h| engine.photo(&h).is_ok());
            if whole {
                self.found_good(&path);
            } else if self.phone_bad.insert(hash.clone()) {
                eprintln!(
                    "power_lost: run {run}: the phone's photo {hash} has a row but not its bytes"
                );
            }
        }
    }

    /// With the relay down: every photo it recorded, and every photo the `phones`
    /// were told it stored (`uploaded_ms`), is recorded and whole in its folder.
    fn check_relay(&mut self, data: &Path, phones: &[&PhoneId], report: &mut Report, run: u64) {
        let hashes = |conn: &rusqlite::Connection, sql: &str| -> Result<Vec<String>, String> {
            let mut st = conn.prepare(sql).map_err(|e| e.to_string())?;
            let rows = st
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(|e| e.to_string())?;
            rows.collect::<Result<Vec<String>, _>>()
                .map_err(|e| e.to_string())
        };
        let recorded = rusqlite::Connection::open(data.join("relay.db"))
            .map_err(|e| e.to_string())
            .and_then(|c| hashes(&c, "SELECT hash FROM blobs"));
        let recorded: BTreeSet<String> = match recorded {
            Ok(r) => r.into_iter().collect(),
            Err(e) => {
                eprintln!("power_lost: run {run}: the relay's photo records: {e}");
                report.broken += 1;
                return;
            }
        };
        let mut acked = BTreeSet::new();
        for phone in phones {
            match open_raw(phone)
                .and_then(|c| hashes(&c, "SELECT hash FROM photos WHERE uploaded_ms IS NOT NULL"))
            {
                Ok(h) => acked.extend(h),
                Err(e) => {
                    eprintln!("power_lost: run {run}: a phone's uploaded photos: {e}");
                    report.broken += 1;
                }
            }
        }
        self.relay_checked = self.relay_checked.max(recorded.len() as u64);
        self.relay_acked_checked = self.relay_acked_checked.max(acked.len() as u64);
        for hash in recorded.union(&acked) {
            let path = data
                .join("blobs")
                .join(hash.get(..2).unwrap_or("??"))
                .join(format!("{hash}.jpg"));
            let whole = recorded.contains(hash)
                && (self.unchanged(&path)
                    || std::fs::read(&path).is_ok_and(|b| {
                        let sum: String = Sha256::digest(&b)
                            .iter()
                            .map(|x| format!("{x:02x}"))
                            .collect();
                        sum == *hash
                    }));
            if whole {
                self.found_good(&path);
            } else if self.relay_bad.insert(hash.clone()) {
                let what = if acked.contains(hash) {
                    "that a phone was told it stored"
                } else {
                    "that it recorded"
                };
                eprintln!("power_lost: run {run}: the relay lacks the whole photo {hash} {what}");
            }
        }
    }
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
