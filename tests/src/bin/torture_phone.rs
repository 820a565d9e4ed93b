//! The phone of the torture suite: a grid worker's app on a real encrypted SQLite
//! file, reporting cases, adding notes, taking photos, handling cases on the spot
//! and syncing with a real relay (whose URL is stored in the database), until it is
//! killed or has done `OPS` operations.
//!
//! It prints one line per event, flushed before the next operation starts:
//! `B <op>` before an operation, `A case|note|photo|act <doc> <detail>` once the
//! engine has returned success (the app was told the write succeeded),
//! `E <op> <kind> fsize=<cap> <error>` when it returned an error, `S ok …` or
//! `S err <kind> fsize=<cap> <error>` after a sync. The orchestrator reads the `A`
//! lines as the writes that must survive anything. `<kind>` is what an app would act
//! on (`storage`, `io`, `network`, `refused:<code>`, `other`); `<cap>` is the file size
//! limit (RLIMIT_FSIZE) the process had when the operation began, `unlimited` unless
//! the disk-full scenario capped it, so an error can be placed before or after space
//! returned.
//!
//! With `TORTURE_VFS` or `TORTURE_VFS_FAULTS` set, SQLite's files go through the
//! power-cut VFS (`gridsync_tests::powerloss_vfs`): a SIGKILL then leaves on disk
//! only what was synced, and scheduled reads, writes or syncs fail; the last line
//! before `done` is `V writes=… syncs=… reads=… faults=…`, the VFS's counts. With
//! `TORTURE_FULL_FLAG=<file>` set, `<cap>` is `full` while that file exists (the
//! orchestrator's mark that the phone's tmpfs is full) and `free` otherwise.
//!
//! Usage: torture_phone DB USER DEVICE KEY_HEX SEED RUN OPS

use std::io::Write;

use gridsync_core::sync::SyncError;
use gridsync_core::vault::DeviceKey;
use gridsync_core::{
    Action, CaseFilter, Engine, Error, Identity, Location, NewCase, Severity, Status,
};

fn main() {
    if let Err(e) = run() {
        eprintln!("torture_phone: {e}");
        std::process::exit(2);
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // The orchestrator going away ends the phone too.
    if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
        std::process::exit(3);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    // Before any connection opens: the VFS must be SQLite's default by then.
    let vfs = gridsync_tests::powerloss_vfs::install_from_env()?;
    let args: Vec<String> = std::env::args().collect();
    let [_, db, user, device, key, seed, run, ops] = &args[..] else {
        return Err("usage: torture_phone DB USER DEVICE KEY_HEX SEED RUN OPS".into());
    };
    let key = (0..32)
        .map(|i| u8::from_str_radix(key.get(2 * i..2 * i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()?;
    let key = DeviceKey::from_slice(&key).ok_or("the key is 32 bytes")?;
    let (seed, run, ops): (u64, u64, u64) = (seed.parse()?, run.parse()?, ops.parse()?);
    let engine = Engine::open_encrypted(
        db,
        Identity {
            user: user.parse()?,
            device: device.parse()?,
        },
        &key,
    )?;
    say("ready");
    if vfs {
        // The VFS's counts once open: a fault scheduled past them hits the workload.
        let (writes, syncs, reads) = gridsync_tests::powerloss_vfs::calls();
        say(&format!("V0 writes={writes} syncs={syncs} reads={reads}"));
    }
    let mut rng = Rng(seed ^ run.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let all = CaseFilter {
        limit: 100_000,
        ..Default::default()
    };
    let mut mine: Vec<String> = match engine.list_cases(&all) {
        Ok(cases) => cases.into_iter().map(|c| c.id.to_string()).collect(),
        Err(e) => {
            say(&format!(
                "E read {} fsize={} {e}",
                kind(&e),
                file_size_cap()
            ));
            Vec::new()
        }
    };
    for i in 0..ops {
        let roll = rng.below(100);
        let cap = file_size_cap();
        let pick = |rng: &mut Rng, mine: &[String]| {
            (!mine.is_empty()).then(|| mine[rng.below(mine.len() as u64) as usize].clone())
        };
        if roll < 30 || mine.is_empty() {
            let title = format!("压力测试 第{run}轮 第{i}件");
            say("B case");
            match engine.report_case(case(&title)) {
                Ok(id) => {
                    say(&format!("A case {id} {title}"));
                    mine.push(id.to_string());
                }
                Err(e) => say(&format!("E case {} fsize={cap} {e}", kind(&e))),
            }
        } else if roll < 55 {
            let Some(id) = pick(&mut rng, &mine) else {
                continue;
            };
            let text = format!("备注 第{run}轮 第{i}条");
            say("B note");
            match engine.add_note(&id.parse()?, &text) {
                Ok(()) => say(&format!("A note {id} {text}")),
                Err(e) => say(&format!("E note {} fsize={cap} {e}", kind(&e))),
            }
        } else if roll < 65 {
            let Some(id) = pick(&mut rng, &mine) else {
                continue;
            };
            let jpeg = gridsync_tests::photo(rng.next(), 320, 240);
            let doc_id = id.parse()?;
            say("B photo");
            let done = engine
                .ingest_photo(&jpeg, None)
                .and_then(|p| engine.attach_photo(&doc_id, p.hash.clone()).map(|_| p));
            match done {
                Ok(p) => say(&format!("A photo {id} {}", p.hash)),
                Err(e) => say(&format!("E photo {} fsize={cap} {e}", kind(&e))),
            }
        } else if roll < 72 {
            let Some(id) = pick(&mut rng, &mine) else {
                continue;
            };
            let doc_id = id.parse()?;
            match engine.get_case(&doc_id) {
                Ok(c) if c.state.status != Status::Reported => continue,
                Ok(_) => {}
                // A read can fail too (an I/O error): the app shows it.
                Err(e) => {
                    say(&format!("E read {} fsize={cap} {e}", kind(&e)));
                    continue;
                }
            }
            say("B act");
            let action = Action::SelfHandle {
                result: format!("已现场处置 第{run}轮"),
            };
            match engine.act(&doc_id, action) {
                Ok(_) => say(&format!("A act {id} self_handle")),
                Err(e) => say(&format!("E act {} fsize={cap} {e}", kind(&e))),
            }
        } else {
            say("B sync");
            match engine.sync(&mut |_| {}) {
                Ok(r) => say(&format!(
                    "S ok pushed={} pulled={} photos={}",
                    r.pushed, r.pulled, r.photos_uploaded
                )),
                Err(e) => say(&format!("S err {} fsize={cap} {e}", sync_kind(&e))),
            }
        }
    }
    if vfs {
        let (writes, syncs, reads) = gridsync_tests::powerloss_vfs::calls();
        let faults = gridsync_tests::powerloss_vfs::faults_injected();
        say(&format!(
            "V writes={writes} syncs={syncs} reads={reads} faults={faults}"
        ));
    }
    say("done");
    Ok(())
}

/// What an app would act on: a storage failure (disk full, I/O error) it shows and
/// retries later; anything else is a different story.
fn kind(e: &Error) -> &'static str {
    match e {
        Error::Storage(_) => "storage",
        Error::Io(_) => "io",
        _ => "other",
    }
}

fn sync_kind(e: &SyncError) -> String {
    match e {
        SyncError::Network(_) => "network".into(),
        SyncError::Refused { code, .. } => format!("refused:{code}"),
        SyncError::Local(e) => kind(e).into(),
        _ => "other".into(),
    }
}

/// This process's soft RLIMIT_FSIZE as `/proc/self/limits` shows it (`unlimited`
/// where there is no such file).
fn file_size_cap() -> String {
    if let Some(flag) = std::env::var_os("TORTURE_FULL_FLAG") {
        let full = std::path::Path::new(&flag).exists();
        return if full { "full" } else { "free" }.into();
    }
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find_map(|l| l.strip_prefix("Max file size"))
                .and_then(|v| v.split_whitespace().next().map(str::to_owned))
        })
        .unwrap_or_else(|| "unlimited".into())
}

fn case(title: &str) -> NewCase {
    NewCase {
        title: title.to_owned(),
        description: "楼道堆放杂物".into(),
        category: "livelihood"
            .parse()
            .expect("a category of the sample directory"),
        subcategory: None,
        severity: Severity::Normal,
        grid: None,
        location: Some(Location {
            lat: 30.27,
            lon: 120.15,
            address: "望湖小区3号楼".into(),
        }),
        people: vec![],
        photos: vec![],
        links: Default::default(),
    }
}
