//! Scenario 3 of the issue, disk full, first on the phone, then on the relay (its
//! I/O-error half is `io_errors`). Where this process may mount one (root, as CI
//! runs here), the phone's folder and the relay's data folder are each on a small
//! tmpfs of their own ([`TMPFS_MIB`]), and a disk fills by a ballast file written
//! until the kernel refuses (`ENOSPC`) and shortened by 64 KiB; deleting it is space
//! returning. Elsewhere the full disk is a file size cap: RLIMIT_FSIZE set on the
//! running process with `prlimit`, 64 KiB past the end of its database's WAL once
//! that was checkpointed and truncated (SIGXFSZ ignored, so a write past the cap
//! fails with `EFBIG` instead of killing it); lifting the cap is space returning.
//! Either way the real binaries' real writes are refused by the kernel, and space
//! returns without a restart. The line says which ran (`method`).
//!
//! Phone: the workload (`torture_phone`) reports, notes, takes photos, handles and
//! syncs while its cap is in force, until it has seen enough errors; every error
//! must be a storage or I/O error (what an app shows and retries), the process keeps
//! running, and once the cap is lifted no operation fails for storage any more.
//! Relay: the same workload, uncapped, syncs with a capped relay until enough syncs
//! were refused; the relay must answer errors (never acknowledge a change it did not
//! keep), and once its cap is lifted the phone drains to it. After each round the
//! phone's database passes `integrity_check`, holds every write it was told
//! succeeded and accounts for every local change. At the end the relay is SIGKILLed
//! and restarted (what it acknowledged must be on its disk), its database is checked,
//! and the dispatcher's phone must hold every acknowledged write, each once, with
//! the same heads, and every photo's bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::phone_killed::Acked;
use super::{
    cap_file_size, drain, enroll_phone, open_raw, panics_in, sqlite_integrity, Level, PhoneId,
    RelayProcess, Report, Rng, DISPATCHER, WORKER,
};

/// How far past the end of the truncated WAL the cap is set, or how much of a
/// tmpfs the ballast leaves free: a few writes still fit.
const HEADROOM: u64 = 64 * 1024;
/// The size of each tmpfs (the phone's, the relay's): bounds the memory a full disk
/// takes and the ballast's writing.
pub const TMPFS_MIB: u64 = 48;
/// The phone's operations per round.
const OPS: u64 = 400;
/// A round of the workload may take this long before it is killed as hung.
const ROUND_LIMIT: Duration = Duration::from_secs(180);

/// Whose disk fills up in a round.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Full {
    Phone,
    Relay,
}

/// What the rounds counted.
#[derive(Default)]
struct Counts {
    /// Errors while a disk was full, by kind (`storage`, `io`, `refused:internal` …).
    while_full: BTreeMap<String, u64>,
    /// Errors while full that an app could not act on (not a storage, I/O, network
    /// or server error).
    unclear: u64,
    /// Storage or I/O errors of operations that began with no cap in force.
    after_space_returned: u64,
    /// Writes acknowledged while the cap was in force.
    acked_while_full: u64,
    /// Writes acknowledged after it was lifted.
    acked_after: u64,
    /// Rounds whose cap never produced an error (the round tested nothing).
    never_full: u64,
    /// Rounds whose phone did not reach the end of its workload.
    phone_died: u64,
    /// The largest cap set, KiB.
    cap_kib_max: u64,
    /// The longest drain after a round, s.
    drain_seconds_max: f64,
}

/// Run the scenario.
pub fn run(level: Level, seed: u64, work: &Path) -> Report {
    let started = Instant::now();
    let mut report = Report::new("disk_full", seed);
    let mut rng = Rng::new(seed);
    let rounds = match level {
        Level::Quick => 1,
        Level::Long => 5,
    };
    // First, so that they are unmounted last, after every process and engine on them.
    // `TORTURE_DISK_FULL=rlimit` runs the fallback where a mount would work.
    let disks = if std::env::var("TORTURE_DISK_FULL").is_ok_and(|m| m == "rlimit") {
        Err(std::io::Error::other("TORTURE_DISK_FULL=rlimit"))
    } else {
        Tmpfs::mount(&work.join("phone-disk"))
            .and_then(|p| Ok((p, Tmpfs::mount(&work.join("relay-disk"))?)))
    };
    let disks = match disks {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("disk_full: no tmpfs ({e}); capping file sizes instead");
            None
        }
    };
    let (data, phone_folder) = match &disks {
        Some((phone_disk, relay_disk)) => (relay_disk.dir.join("relay"), phone_disk.dir.clone()),
        None => (work.join("relay"), work.to_path_buf()),
    };
    let full_flag = work.join("phone-disk-full");
    let relay_log = work.join("relay.log");
    let mut relay = RelayProcess::start(&data, "127.0.0.1:0", &relay_log)
        .expect("the relay starts (is the gridsync binary built?)");
    let listen = relay.addr().to_string();
    let phone = enroll_phone(
        &data,
        &relay.url,
        &relay.url,
        WORKER,
        &phone_folder,
        &mut rng,
    )
    .expect("the worker's phone enrolls");
    let observer = enroll_phone(&data, &relay.url, &relay.url, DISPATCHER, work, &mut rng)
        .expect("the dispatcher's phone enrolls");

    let mut acked: Vec<Acked> = Vec::new();
    let mut lost_on_phone: BTreeSet<usize> = BTreeSet::new();
    let mut counts = Counts::default();
    for r in 0..rounds {
        for full in [Full::Phone, Full::Relay] {
            let run = 2 * r + u64::from(full == Full::Relay);
            let log = work.join(format!("phone-{run}.log"));
            let env = match &disks {
                Some(_) => vec![("TORTURE_FULL_FLAG", full_flag.display().to_string())],
                None => Vec::new(),
            };
            let Ok(child) = phone.workload_with(seed, run, OPS, &log, &env) else {
                report.broken += 1;
                continue;
            };
            let fill = match &disks {
                Some((phone_disk, relay_disk)) => match full {
                    Full::Phone => Fill::Ballast {
                        dir: &phone_disk.dir,
                        flag: Some(&full_flag),
                    },
                    Full::Relay => Fill::Ballast {
                        dir: &relay_disk.dir,
                        flag: None,
                    },
                },
                None => {
                    let (cap_pid, cap) = match full {
                        Full::Phone => (
                            child.id(),
                            open_raw(&phone).map(|c| cap_after_checkpoint(&c, &phone.db)),
                        ),
                        Full::Relay => {
                            // The relay's log is capped too: start it empty (its
                            // panics so far counted), so a panic while full still fits.
                            report.panics += panics_in(&relay_log);
                            let _ = std::fs::File::create(&relay_log);
                            let db = data.join("relay.db");
                            let conn = rusqlite::Connection::open(&db).map_err(|e| e.to_string());
                            (
                                relay.child.id(),
                                conn.map(|c| cap_after_checkpoint(&c, &db)),
                            )
                        }
                    };
                    let Ok(cap) = cap else {
                        report.broken += 1;
                        continue;
                    };
                    counts.cap_kib_max = counts.cap_kib_max.max(cap / 1024);
                    Fill::Cap { pid: cap_pid, cap }
                }
            };
            round(child, full, &fill, &mut acked, &mut counts);
            report.runs += 1;
            report.faults += 1;
            report.panics += panics_in(&log);
            check_phone(
                &phone,
                &acked,
                &mut lost_on_phone,
                &mut report,
                &mut counts,
                run,
            );
        }
    }

    // What the relay acknowledged must be on its disk: SIGKILL, check, restart.
    relay.kill();
    report.panics += panics_in(&relay_log);
    if let Err(e) = relay_integrity(&data) {
        eprintln!("disk_full: relay.db: {e}");
        report.broken += 1;
    }
    let relay = RelayProcess::start(&data, &listen, &relay_log);
    let (Ok(mut relay), Ok(phone_engine), Ok(observer)) = (relay, phone.open(), observer.open())
    else {
        eprintln!("disk_full: the relay or a phone does not open after the rounds");
        report.broken += 1;
        report.seconds = started.elapsed().as_secs_f64();
        return report;
    };
    if let Err(why) = drain(&observer, Instant::now() + Duration::from_secs(60)) {
        report.stuck_queue("the dispatcher", why);
    }
    let docs_compared = super::power_lost::compare_at_the_end(
        &mut report,
        phone_engine,
        &observer,
        &acked,
        &lost_on_phone,
    );
    relay.kill();
    report.panics += panics_in(&relay_log);
    report.broken +=
        counts.unclear + counts.after_space_returned + counts.never_full + counts.phone_died;
    report.acked = acked.len() as u64;
    report.set("errors_while_full", serde_json::json!(counts.while_full));
    report.set("unclear_errors", counts.unclear);
    report.set(
        "storage_errors_after_space_returned",
        counts.after_space_returned,
    );
    report.set("acked_while_full", counts.acked_while_full);
    report.set("acked_after_space_returned", counts.acked_after);
    report.set("rounds_never_full", counts.never_full);
    report.set("phone_died", counts.phone_died);
    match &disks {
        Some(_) => {
            report.set("method", "tmpfs");
            report.set("tmpfs_mib", TMPFS_MIB);
            report.set("free_kib_when_full", HEADROOM / 1024);
        }
        None => {
            report.set("method", "rlimit");
            report.set("cap_kib_max", counts.cap_kib_max);
        }
    }
    report.set(
        "drain_seconds_max",
        (counts.drain_seconds_max * 10.0).round() / 10.0,
    );
    report.set("docs_compared", docs_compared);
    report.seconds = started.elapsed().as_secs_f64();
    report
}

/// The cap for a process that writes the database `db` (opened by `conn`): its WAL
/// checkpointed into the database and truncated, then [`HEADROOM`]. The cap is an
/// offset: a write past it fails in any file, so the next pages of WAL fit and then
/// nothing; a cap above the largest file would leave a WAL that had just restarted
/// megabytes of room.
fn cap_after_checkpoint(conn: &rusqlite::Connection, db: &Path) -> u64 {
    let _ = conn.busy_timeout(Duration::from_secs(2));
    for _ in 0..20 {
        let busy: i64 = conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
            .unwrap_or(1);
        if busy == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).map_or(0, |m| m.len()) + HEADROOM
}

/// One round: the workload runs, the cap goes on as it starts and comes off once
/// enough operations (phone) or syncs (relay) failed; every line is counted.
fn round(mut child: Child, full: Full, fill: &Fill, acked: &mut Vec<Acked>, counts: &mut Counts) {
    // Enough failures to have gone through every kind of write at least once.
    let enough = match full {
        Full::Phone => 25,
        Full::Relay => 8,
    };
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + ROUND_LIMIT;
    let (mut capped, mut failures, mut done, mut saw_cap) = (false, 0u64, false, false);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            break;
        };
        if line == "ready" {
            capped = match fill.on() {
                Ok(()) => true,
                Err(e) => {
                    eprintln!("disk_full: the disk does not fill: {e}");
                    false
                }
            };
            continue;
        }
        if line == "done" {
            done = true;
            continue;
        }
        if let Some(w) = Acked::parse(&line) {
            if capped {
                counts.acked_while_full += 1;
            } else {
                counts.acked_after += 1;
            }
            acked.push(w);
            continue;
        }
        // `E <op> <kind> fsize=<cap> …` or `S err <kind> fsize=<cap> …`.
        let mut words = line.split_whitespace();
        let (Some(first), Some(_), Some(kind), Some(fsize)) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            continue;
        };
        if !(first == "E" || line.starts_with("S err")) {
            continue;
        }
        let storage = kind == "storage" || kind == "io";
        // The phone's own cap, as it read it when the operation began; until a line
        // shows the phone has seen it, an operation that began just before the cap
        // went on may fail under it.
        let under_cap = fsize == fill.marker();
        saw_cap |= under_cap;
        let phone_capped = full == Full::Phone && (under_cap || (capped && !saw_cap));
        let relay_answer = kind == "network" || kind.starts_with("refused:");
        if phone_capped || (capped && full == Full::Relay) {
            let clear = match full {
                Full::Phone => storage || relay_answer,
                Full::Relay => relay_answer,
            };
            if !clear {
                eprintln!("disk_full: an error an app cannot act on: {line}");
                counts.unclear += 1;
            }
            *counts.while_full.entry(kind.to_owned()).or_default() += 1;
            failures += 1;
        } else if storage {
            eprintln!("disk_full: a storage error with no cap in force: {line}");
            counts.after_space_returned += 1;
        }
        if capped && failures >= enough {
            // Space returns.
            capped = fill.off().is_err();
        }
    }
    if capped || failures == 0 {
        let _ = fill.off();
        eprintln!("disk_full: the cap never produced {enough} errors ({failures})");
        counts.never_full += 1;
    }
    if !done {
        eprintln!("disk_full: the phone did not finish its workload");
        counts.phone_died += 1;
    }
    let _ = child.kill();
    let _ = child.wait();
    super::reaped(child.id());
    let _ = reader.join();
}

/// After a round, with the phone closed: `integrity_check`, every acknowledged
/// write held, every local change accounted for, then a drain to the relay.
fn check_phone(
    phone: &PhoneId,
    acked: &[Acked],
    lost: &mut BTreeSet<usize>,
    report: &mut Report,
    counts: &mut Counts,
    run: u64,
) {
    let Some(engine) = super::power_lost::check_phone(phone, acked, lost, report, run) else {
        return;
    };
    let t = Instant::now();
    match drain(&engine, t + Duration::from_secs(60)) {
        Ok(()) => {
            counts.drain_seconds_max = counts.drain_seconds_max.max(t.elapsed().as_secs_f64());
        }
        Err(why) => report.stuck_queue(&format!("run {run}: the phone once space returned"), why),
    }
}

/// `PRAGMA integrity_check` on the stopped relay's database.
fn relay_integrity(data: &Path) -> Result<(), String> {
    sqlite_integrity(&rusqlite::Connection::open(data.join("relay.db")).map_err(|e| e.to_string())?)
}

/// How a round fills a disk and gives the space back.
enum Fill<'a> {
    /// RLIMIT_FSIZE on the process `pid`.
    Cap { pid: u32, cap: u64 },
    /// A ballast file filling the tmpfs at `dir`; `flag` exists while it is full
    /// (the phone reads it, `TORTURE_FULL_FLAG`).
    Ballast {
        dir: &'a Path,
        flag: Option<&'a Path>,
    },
}

impl Fill<'_> {
    /// The disk is full from now on.
    fn on(&self) -> std::io::Result<()> {
        match self {
            Fill::Cap { pid, cap } => cap_file_size(*pid, Some(*cap)),
            Fill::Ballast { dir, flag } => {
                // The mark first: an operation that reads no mark began with space.
                if let Some(flag) = flag {
                    std::fs::write(flag, b"")?;
                }
                fill_with_ballast(dir)
            }
        }
    }

    /// Space returns.
    fn off(&self) -> std::io::Result<()> {
        match self {
            Fill::Cap { pid, .. } => cap_file_size(*pid, None),
            Fill::Ballast { dir, flag } => {
                match std::fs::remove_file(dir.join(BALLAST)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
                // The mark last: an operation that read it may have begun while full.
                if let Some(flag) = flag {
                    let _ = std::fs::remove_file(flag);
                }
                Ok(())
            }
        }
    }

    /// What the phone prints as `fsize=` while this fill is on.
    fn marker(&self) -> String {
        match self {
            Fill::Cap { cap, .. } => format!("fsize={cap}"),
            Fill::Ballast { .. } => "fsize=full".to_owned(),
        }
    }
}

/// The ballast file's name in a tmpfs.
const BALLAST: &str = "ballast";

/// Fill the file system at `dir` with a ballast file until the kernel refuses a
/// write (`ENOSPC`), then shorten it by [`HEADROOM`]: a few writes still fit. At
/// most the tmpfs's size is written.
fn fill_with_ballast(dir: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let path = dir.join(BALLAST);
    let mut file = std::fs::File::create(&path)?;
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    let limit = TMPFS_MIB * 1024 * 1024 + chunk.len() as u64;
    let refused = loop {
        match file.write(&chunk) {
            Ok(0) => break true,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => break true, // ENOSPC
            Err(e) => return Err(e),
        }
        if written > limit {
            break false;
        }
    };
    if !refused {
        return Err(std::io::Error::other("the tmpfs took more than its size"));
    }
    file.set_len(written.saturating_sub(HEADROOM))?;
    file.sync_all()
}

/// A size-capped tmpfs mounted for the scenario; unmounted when dropped (also when
/// the scenario panics), lazily if something still holds it.
pub struct Tmpfs {
    /// The mount point.
    pub dir: PathBuf,
}

impl Tmpfs {
    /// Mount a [`TMPFS_MIB`] tmpfs at `dir` (created). Fails without the privilege
    /// to mount (not root, a container without it) or without `mount`.
    pub fn mount(dir: &Path) -> std::io::Result<Tmpfs> {
        std::fs::create_dir_all(dir)?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={TMPFS_MIB}m,mode=0700"))
            .arg("tmpfs")
            .arg(dir)
            .output()?;
        if !out.status.success() {
            return Err(std::io::Error::other(format!(
                "mount: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(Tmpfs {
            dir: dir.to_path_buf(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let done = Command::new("umount")
            .arg(&self.dir)
            .output()
            .is_ok_and(|o| o.status.success());
        if !done {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).output();
        }
    }
}
