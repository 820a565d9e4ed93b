//! The device database encrypted at rest: what is on disk, wrong keys, damaged
//! pages, converting a plaintext install, rekeying, and SIGKILL in the middle of
//! the last two.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use gridsync_core::vault::DeviceKey;
use gridsync_core::{CaseFilter, DeviceId, DocId, Engine, Identity, OpenError};

use crate::support::*;

const CANARY: &str = "张三家漏水 13812345678";

fn key(n: u8) -> DeviceKey {
    DeviceKey::from_bytes([n; 32])
}

fn hex(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

fn identity() -> Identity {
    Identity {
        user: WORKER.parse().unwrap(),
        device: DeviceId::random(),
    }
}

fn open(path: &Path, identity: &Identity, key: Option<&DeviceKey>) -> Result<Engine, OpenError> {
    let clock = TestClock::new();
    let c = Arc::new(move || clock.now());
    match key {
        Some(k) => Engine::open_encrypted_with_clock(path, identity.clone(), k, c),
        None => Engine::open_with_clock(path, identity.clone(), c),
    }
}

/// A case whose title and reporter's phone are the canaries.
fn canary_case(i: usize) -> gridsync_core::NewCase {
    let mut c = leak_case();
    c.title = format!("{CANARY} #{i}");
    c.people[0].phone = "13812345678".into();
    c
}

/// A device at `path` holding `n` canary cases; their ids.
fn fill(engine: &Engine, n: usize) -> Vec<DocId> {
    engine.load_directory(SAMPLE).unwrap();
    (0..n)
        .map(|i| engine.report_case(canary_case(i)).unwrap())
        .collect()
}

fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Every file in `dir` (not folders), with its bytes.
fn files_in(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The files holding any canary.
fn leaks(dir: &Path) -> Vec<PathBuf> {
    files_in(dir)
        .into_iter()
        .filter(|(_, b)| contains(b, CANARY) || contains(b, "13812345678") || contains(b, "张三"))
        .map(|(p, _)| p)
        .collect()
}

/// Copy the database files (itself, `-wal`, `-shm`) as they are now, as a crash
/// would leave them.
fn crash_image(from: &Path, to: &Path) {
    for s in ["", "-wal", "-shm"] {
        if let Ok(bytes) = std::fs::read(beside(from, s)) {
            std::fs::write(beside(to, s), bytes).unwrap();
        }
    }
}

fn assert_all_there(engine: &Engine, ids: &[DocId]) {
    for id in ids {
        let case = engine.get_case(id).unwrap();
        assert!(case.doc.title.starts_with(CANARY), "{}", case.doc.title);
    }
}

#[test]
fn nothing_readable_on_disk_and_everything_back_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.db");
    let me = identity();
    let engine = open(&path, &me, Some(&key(1))).unwrap();
    let ids = fill(&engine, 20);
    engine
        .set_server("https://relay.example", "device-token-secret")
        .unwrap();
    // While the WAL holds the writes …
    assert!(std::fs::metadata(beside(&path, "-wal")).unwrap().len() > 0);
    assert_eq!(leaks(dir.path()), Vec::<PathBuf>::new());
    assert!(files_in(dir.path())
        .iter()
        .all(|(_, b)| !contains(b, "device-token-secret")));
    // … and once closing has checkpointed them into the file.
    drop(engine);
    assert!(!beside(&path, "-wal").exists());
    assert_eq!(leaks(dir.path()), Vec::<PathBuf>::new());

    let engine = open(&path, &me, Some(&key(1))).unwrap();
    assert_all_there(&engine, &ids);
    assert_eq!(
        engine.server().unwrap(),
        Some(("https://relay.example".into(), "device-token-secret".into()))
    );
    let found = engine
        .list_cases(&CaseFilter {
            text: Some("漏水".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(found.len(), ids.len());

    // The same scan finds the canaries in a plaintext database: it can fail.
    let plain = tempfile::tempdir().unwrap();
    let engine = open(&plain.path().join("relay-side.db"), &me, None).unwrap();
    fill(&engine, 1);
    assert!(!leaks(plain.path()).is_empty());
}

#[test]
fn a_wrong_key_is_wrong_key_and_the_files_stay_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.db");
    let me = identity();
    let engine = open(&path, &me, Some(&key(1))).unwrap();
    let ids = fill(&engine, 5);
    // A copy as a crash leaves it: the last writes only in the WAL.
    let crashed = dir.path().join("crashed.db");
    crash_image(&path, &crashed);
    drop(engine);

    for db in [&path, &crashed] {
        let data = || {
            let mut v: Vec<_> = files_in(dir.path())
                .into_iter()
                .filter(|(p, _)| !p.to_string_lossy().ends_with("-shm"))
                .collect();
            v.sort();
            v
        };
        let before = data();
        for wrong in [Some(key(2)), None] {
            match open(db, &me, wrong.as_ref()) {
                Err(OpenError::WrongKey { path }) => assert_eq!(&path, db),
                Err(other) => panic!("{other}"),
                Ok(_) => panic!("opened with the wrong key"),
            }
            assert!(data() == before, "files changed by a wrong key");
        }
        assert_all_there(&open(db, &me, Some(&key(1))).unwrap(), &ids);
    }
}

#[test]
fn a_flipped_byte_in_a_page_is_an_error_never_other_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.db");
    let me = identity();
    let engine = open(&path, &me, Some(&key(1))).unwrap();
    let ids = fill(&engine, 30);
    drop(engine);
    let pristine = std::fs::read(&path).unwrap();
    let pages = pristine.len() / 4096;
    assert!(pages > 8, "{pages} pages");
    // Page 2, a page in the middle, the last page; a bit in the middle of each.
    for page in [2, pages / 2, pages] {
        let mut bytes = pristine.clone();
        bytes[(page - 1) * 4096 + 2048] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let caught = match open(&path, &me, Some(&key(1))) {
            Err(e) => Some(format!("open: {e}")),
            Ok(engine) => {
                let everything = || -> gridsync_core::Result<()> {
                    for id in &ids {
                        engine.get_case(id)?;
                    }
                    for text in [None, Some("漏水".to_string())] {
                        engine.list_cases(&CaseFilter {
                            text,
                            limit: 500,
                            ..Default::default()
                        })?;
                    }
                    engine.count_cases(&CaseFilter::default())?;
                    engine.outbox_pending(usize::MAX)?;
                    engine.server()?;
                    Ok(())
                };
                // Whatever is read, a damaged page is never returned as data.
                match everything() {
                    Err(e) => Some(format!("read: {e}")),
                    // The page was not on any path read above: reading every
                    // page must still fail.
                    Ok(()) => {
                        drop(engine);
                        integrity_problem(&path, &key(1)).map(|p| format!("integrity: {p}"))
                    }
                }
            }
        };
        println!(
            "{}",
            serde_json::json!({ "test": "flipped_byte", "page": page, "pages": pages, "caught": caught })
        );
        let failed = caught.is_some();
        assert!(failed, "page {page}: a flipped byte went unnoticed");
    }
    std::fs::write(&path, &pristine).unwrap();
    assert_all_there(&open(&path, &me, Some(&key(1))).unwrap(), &ids);
}

/// SQLCipher's own check of every page's HMAC: the first problem found.
fn integrity_problem(path: &Path, key: &DeviceKey) -> Option<String> {
    let raw: String = key
        .derive(gridsync_core::vault::KeyUse::Database)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let conn = rusqlite::Connection::open(path).unwrap();
    // The engine's cipher settings: SQLCipher 4 with HMAC-SHA256 (ADR 0010).
    conn.execute_batch(&format!(
        "PRAGMA key = \"x'{raw}'\"; PRAGMA cipher_hmac_algorithm = HMAC_SHA256;"
    ))
    .unwrap();
    let problems: Vec<String> = conn
        .prepare("PRAGMA cipher_integrity_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| vec![e.to_string()]);
    problems.into_iter().next()
}

#[test]
fn a_plaintext_install_is_encrypted_at_its_first_keyed_open_with_nothing_lost() {
    let dir = tempfile::tempdir().unwrap();
    let me = identity();
    let live = tempfile::tempdir().unwrap();
    let old = live.path().join("phone.db");
    let engine = open(&old, &me, None).unwrap();
    let ids = fill(&engine, 40);
    engine
        .set_server("https://relay.example", "device-token-secret")
        .unwrap();
    let outbox = engine.outbox_pending(usize::MAX).unwrap();
    assert!(!outbox.is_empty());
    // The app updated while running: the last writes are still in the WAL.
    let path = dir.path().join("phone.db");
    crash_image(&old, &path);
    assert!(std::fs::metadata(beside(&path, "-wal")).unwrap().len() > 0);
    drop(engine);

    let engine = open(&path, &me, Some(&key(1))).unwrap();
    assert_all_there(&engine, &ids);
    assert_eq!(engine.outbox_pending(usize::MAX).unwrap(), outbox);
    assert_eq!(
        engine.server().unwrap().map(|(_, t)| t).as_deref(),
        Some("device-token-secret")
    );
    let found = engine
        .list_cases(&CaseFilter {
            text: Some("漏水".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(found.len(), ids.len());
    // The plaintext is gone from every file, open and closed.
    assert_eq!(leaks(dir.path()), Vec::<PathBuf>::new());
    drop(engine);
    assert_eq!(leaks(dir.path()), Vec::<PathBuf>::new());
    assert!(matches!(
        open(&path, &me, None),
        Err(OpenError::WrongKey { .. })
    ));
}

#[test]
fn rekey_moves_the_database_to_the_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.db");
    let me = identity();
    let engine = open(&path, &me, Some(&key(1))).unwrap();
    let mut ids = fill(&engine, 10);
    engine.rekey(&key(2)).unwrap();
    ids.push(engine.report_case(canary_case(99)).unwrap());
    assert_all_there(&engine, &ids);
    drop(engine);
    assert!(matches!(
        open(&path, &me, Some(&key(1))),
        Err(OpenError::WrongKey { .. })
    ));
    assert_all_there(&open(&path, &me, Some(&key(2))).unwrap(), &ids);
    assert_eq!(leaks(dir.path()), Vec::<PathBuf>::new());
}

/// A deterministic xorshift for kill delays.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

const KILL_POINTS: usize = 50;

#[test]
fn killing_the_phone_mid_rekey_leaves_the_old_or_the_new_key_and_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.db");
    let me = identity();
    let engine = open(&path, &me, Some(&key(1))).unwrap();
    let mut acked = fill(&engine, 150);
    drop(engine);
    let keys = [key(1), key(2)];
    let hexes = [hex(1), hex(2)];
    let mut current = 0;
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut mid_rekey, mut opened_old, mut opened_new, mut rekeys) = (0, 0, 0, 0);
    // Kills land up to `window` after `ready`: at least 400 ms, and at least twice
    // what the first run (let go until its first rekey ends) took on this machine
    // now, so a loaded machine still sees rekeys finish between kills; and doubled
    // (up to 8 s) after ten kills in a row that saw no rekey finish, should the
    // machine have become busier since.
    let mut window: Option<u64> = None;
    let mut since_rekeyed = 0;
    for _ in 0..KILL_POINTS {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rekey_loop"))
            .args(["rekey", path.to_str().unwrap(), WORKER])
            .arg(me.device.to_string())
            .arg(current.to_string())
            .args(&hexes)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        assert_eq!(lines.next().unwrap().unwrap(), "ready");
        let mut seen = Vec::new();
        match window {
            Some(ms) => std::thread::sleep(std::time::Duration::from_millis(rng.below(ms))),
            None => {
                let start = std::time::Instant::now();
                for line in lines.by_ref() {
                    let line = line.unwrap();
                    let done = line.starts_with("rekeyed ");
                    seen.push(line);
                    if done {
                        break;
                    }
                }
                window = Some((2 * start.elapsed().as_millis() as u64).max(400));
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let mut in_flight = None;
        let (rekeys_before, opened_new_before) = (rekeys, opened_new);
        for line in seen.into_iter().chain(lines.map(Result::unwrap)) {
            match line.split_once(' ') {
                Some(("ack", id)) => acked.push(id.parse().unwrap()),
                Some(("rekeying", n)) => in_flight = Some(n.parse::<usize>().unwrap()),
                Some(("rekeyed", n)) => {
                    current = n.parse().unwrap();
                    in_flight = None;
                    rekeys += 1;
                }
                _ => panic!("unexpected line {line}"),
            }
        }
        let engine = match (open(&path, &me, Some(&keys[current])), in_flight) {
            (Ok(engine), Some(_)) => {
                mid_rekey += 1;
                opened_old += 1;
                engine
            }
            (Ok(engine), None) => engine,
            (Err(OpenError::WrongKey { .. }), Some(next)) => {
                mid_rekey += 1;
                opened_new += 1;
                current = next;
                open(&path, &me, Some(&keys[current])).expect("neither key opens")
            }
            (Err(e), _) => panic!("the database does not open with its key: {e}"),
        };
        // A rekey finished if the app said so, or the database was on the new key.
        let finished = rekeys > rekeys_before || opened_new > opened_new_before;
        since_rekeyed = if finished { 0 } else { since_rekeyed + 1 };
        if since_rekeyed >= 10 {
            window = window.map(|w| (w * 2).min(8_000));
            since_rekeyed = 0;
        }
        assert_all_there(&engine, &acked);
        assert!(!beside(&path, ".encrypting").exists());
        drop(engine);
    }
    println!(
        "{}",
        serde_json::json!({
            "test": "kill_during_rekey",
            "points": KILL_POINTS,
            "window_ms": window,
            "rekeys_completed": rekeys,
            "killed_mid_rekey": mid_rekey,
            "then_opened_with_old_key": opened_old,
            "then_opened_with_new_key": opened_new,
            "acknowledged_writes_checked": acked.len(),
        })
    );
    assert!(
        mid_rekey > KILL_POINTS / 4,
        "too few kills landed in a rekey"
    );
    assert!(opened_old > 0 && opened_new > 0);
}

#[test]
fn killing_the_phone_while_it_encrypts_its_plaintext_database_loses_nothing() {
    let image = tempfile::tempdir().unwrap();
    let me = identity();
    let old = image.path().join("phone.db");
    let engine = open(&old, &me, None).unwrap();
    let ids = fill(&engine, 150);
    let outbox = engine.outbox_pending(usize::MAX).unwrap();
    let pristine = tempfile::tempdir().unwrap();
    let plain = pristine.path().join("phone.db");
    crash_image(&old, &plain);
    drop(engine);

    let run = |dir: &Path, delay: Option<u64>| -> bool {
        let path = dir.join("phone.db");
        crash_image(&plain, &path);
        let mut child = Command::new(env!("CARGO_BIN_EXE_rekey_loop"))
            .args(["convert", path.to_str().unwrap(), WORKER])
            .arg(me.device.to_string())
            .arg(hex(1))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(ms) = delay {
            std::thread::sleep(std::time::Duration::from_micros(ms));
            let _ = child.kill();
        }
        child.wait().unwrap();
        let mut out = String::new();
        std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
        out.trim() == "opened"
    };
    // One run to the end measures the span; the kill points are spread over twice
    // that, so on a machine that has since grown busier some still land after the
    // conversion.
    let start = std::time::Instant::now();
    assert!(run(tempfile::tempdir().unwrap().path(), None));
    let span = 2 * start.elapsed().as_micros() as u64;

    // Kill the conversion `delay` µs in and check what is left: whether the
    // child had finished, and whether the file was still plaintext.
    let kill_at = |delay: u64| -> (bool, bool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("phone.db");
        let finished = run(dir.path(), Some(delay));
        let header = std::fs::read(&path).unwrap();
        let plain = header.starts_with(b"SQLite format 3\0");
        let engine = open(&path, &me, Some(&key(1))).unwrap();
        assert_all_there(&engine, &ids);
        assert_eq!(engine.outbox_pending(usize::MAX).unwrap(), outbox);
        assert_eq!(leaks(dir.path()), Vec::<PathBuf>::new());
        drop(engine);
        assert_eq!(leaks(dir.path()), Vec::<PathBuf>::new());
        (finished, plain)
    };
    let mut outcomes: Vec<(bool, bool)> = (0..KILL_POINTS)
        .map(|point| kill_at(span * point as u64 / KILL_POINTS as u64))
        .collect();
    // Should the machine have grown busier since the span was measured, kills at
    // doubling delays (up to 8 s) until one lands after the conversion.
    let mut later = span;
    while outcomes.iter().all(|&(_, plain)| plain) && later < 8_000_000 {
        later = (later * 2).min(8_000_000);
        outcomes.push(kill_at(later));
    }
    let finished = outcomes.iter().filter(|&&(done, _)| done).count();
    let still_plain = outcomes.iter().filter(|&&(_, plain)| plain).count();
    let encrypted = outcomes.len() - still_plain;
    println!(
        "{}",
        serde_json::json!({
            "test": "kill_during_conversion",
            "points": outcomes.len(),
            "span_ms": span / 1000,
            "killed_while_plaintext": still_plain,
            "killed_once_encrypted": encrypted,
            "child_had_finished": finished,
        })
    );
    assert!(still_plain > 0 && encrypted > 0);
}
