//! `gridsync bench …`: programs that print figures, one JSON line each, so runs can
//! be compared. Timings are wall-clock on this machine, in milliseconds.

mod link;
mod registry;
mod relay;

pub use link::link;
pub use registry::registry;
pub use relay::relay;

use std::time::Instant;

use automerge::Automerge;
use chrono::{DateTime, Duration, Utc};
use gridsync_core::doc::case::append_entry;
use gridsync_core::sync::decode_change;
use gridsync_core::vault::DeviceKey;
use gridsync_core::{
    Action, CaseDoc, CaseFilter, DeviceId, DocId, DocKind, Engine, Identity, Location, NewCase,
    RegionLevel, Role, Severity, Status, TrackPoint,
};
use serde_json::json;

use crate::sim::{self, SimClock};
use gridsync_server::relay::{Relay, Storage};

type BenchResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// A small deterministic generator (xorshift64*): benchmark data must be the same
/// run to run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const TITLES: &[&str] = &[
    "楼上管道漏水",
    "消防通道被杂物堵塞",
    "小区门口垃圾堆放",
    "邻里噪音纠纷",
    "独居老人需要帮扶",
    "路灯损坏",
    "电动车楼道充电",
    "占道经营",
    "违章搭建阳光房",
    "燃气管道老化",
];
const DESCRIPTIONS: &[&str] = &[
    "居民反映问题已持续多日，影响周边住户正常生活，请尽快安排处理。",
    "现场查看情况属实，已拍照留存，需要相关部门协调解决。",
    "网格员巡查发现，已告知物业，物业表示需要上级部门支持。",
];

/// Whether `bench device` runs on an encrypted database (marked on every line).
static ENCRYPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn print(name: &str, fields: serde_json::Value) {
    let mut fields = fields;
    if ENCRYPTED.load(std::sync::atomic::Ordering::Relaxed) {
        if let Some(m) = fields.as_object_mut() {
            m.insert("encrypted".into(), json!(true));
        }
    }
    print_as("device", name, fields);
}

fn print_as(bench: &str, name: &str, fields: serde_json::Value) {
    let mut line = json!({ "bench": bench, "figure": name });
    if let (Some(obj), Some(extra)) = (line.as_object_mut(), fields.as_object()) {
        obj.extend(extra.clone());
    }
    println!("{line}");
}

fn percentiles(mut ms: Vec<f64>) -> serde_json::Value {
    ms.sort_by(f64::total_cmp);
    let at = |q| quantile(&ms, q);
    json!({ "unit": "ms", "n": ms.len(), "p50": at(0.5), "p99": at(0.99), "max": at(1.0) })
}

/// The `q` quantile (0 to 1, nearest rank) of `sorted`; 0 when it is empty.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted
        .get(((sorted.len().max(1) - 1) as f64 * q).round() as usize)
        .copied()
        .unwrap_or(0.0)
}

fn time_ms<T>(f: impl FnOnce() -> T) -> (f64, T) {
    let start = Instant::now();
    let out = f();
    (start.elapsed().as_secs_f64() * 1e3, out)
}

fn sample(
    samples: usize,
    mut f: impl FnMut(usize) -> BenchResult,
) -> BenchResult<serde_json::Value> {
    let mut ms = Vec::with_capacity(samples);
    for i in 0..samples {
        let (t, r) = time_ms(|| f(i));
        r?;
        ms.push(t);
    }
    Ok(percentiles(ms))
}

/// Build one realistic case document in memory, as another device would have made
/// it: all fields with Chinese text and 1–7 timeline entries.
fn generated_case(
    rng: &mut Rng,
    grids: &[gridsync_core::RegionCode],
    now: DateTime<Utc>,
) -> BenchResult<(DocId, Vec<Vec<u8>>)> {
    let id = DocId::new(DocKind::Case);
    let grid = rng.pick(grids).clone();
    let worker = format!("w-{grid}").parse()?;
    let dispatcher: gridsync_core::UserId = format!("cd-{}", &grid.as_str()[..12]).parse()?;
    let created = now - Duration::minutes(rng.below(180 * 24 * 60) as i64);
    let categories = [
        ("city", "city.garbage"),
        ("safety", "safety.fire_exit"),
        ("livelihood", "livelihood.water_leak"),
        ("dispute", "dispute.neighbor"),
        ("security", "security.theft"),
        ("petition", "petition.wage_arrears"),
    ];
    let (cat, sub) = *rng.pick(&categories);
    let entry =
        |n: usize, after: Option<String>, actor: &gridsync_core::UserId, role, at, action| {
            gridsync_core::Entry {
                id: format!("{}{n}", &id.as_str()[5..]),
                after,
                actor: actor.clone(),
                role,
                at,
                action,
            }
        };
    let report = entry(
        0,
        None,
        &worker,
        Role::GridWorker,
        created,
        Action::Report {
            level: RegionLevel::Community,
        },
    );
    let input = NewCase {
        title: format!("{}（{}号楼）", rng.pick(TITLES), 1 + rng.below(30)),
        description: rng.pick(DESCRIPTIONS).to_string(),
        category: cat.parse()?,
        subcategory: Some(sub.parse()?),
        severity: *rng.pick(&[
            Severity::Low,
            Severity::Normal,
            Severity::High,
            Severity::Urgent,
        ]),
        grid: None,
        location: Some(Location {
            lat: 30.2 + rng.below(1000) as f64 * 1e-4,
            lon: 120.1 + rng.below(1000) as f64 * 1e-4,
            address: format!("望湖小区{}号楼{}单元", 1 + rng.below(30), 1 + rng.below(4)),
        }),
        people: vec![],
        photos: vec![],
        links: Default::default(),
    };
    let content = CaseDoc::new(id.clone(), worker.clone(), grid, input, report);
    let mut doc = Automerge::new().with_actor(DeviceId::random().actor());
    doc.transact(|tx| content.write_new(tx))
        .map_err(|f| f.error)?;
    let handler: gridsync_core::UserId = "h-water-1".parse()?;
    let steps = rng.below(7);
    let mut last = content.last_entry_id().map(str::to_owned);
    let mut at = created;
    for n in 1..=steps {
        at += Duration::minutes(30 + rng.below(600) as i64);
        let (actor, role, action) = match n {
            1 => (&dispatcher, Role::CommunityDispatcher, Action::Accept),
            2 => (
                &dispatcher,
                Role::CommunityDispatcher,
                Action::Dispatch {
                    dept: "water".parse()?,
                    deadline: at + Duration::hours(24 + rng.below(72) as i64),
                },
            ),
            3 => (
                &handler,
                Role::DepartmentHandler,
                Action::Feedback {
                    result: "已处理完毕".into(),
                },
            ),
            4 => (
                &worker,
                Role::GridWorker,
                Action::Verify {
                    passed: true,
                    comment: "现场核查通过".into(),
                },
            ),
            5 => (&dispatcher, Role::CommunityDispatcher, Action::Archive),
            _ => (
                &dispatcher,
                Role::CommunityDispatcher,
                Action::Evaluate {
                    satisfaction: 5,
                    comment: String::new(),
                },
            ),
        };
        let e = entry(n, last.take(), actor, role, at, action);
        last = Some(e.id.clone());
        doc.transact(|tx| append_entry(tx, &e))
            .map_err(|f| f.error)?;
    }
    let changes = doc
        .get_changes(&[])
        .iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect();
    Ok((id, changes))
}

/// Fill `engine` (and `twin`, with the same documents) as a district dispatcher's
/// device would be after pulling every case: `cases` generated cases, imported in
/// batches of 1,000 through the checked decoder, as a pull does. Returns the time
/// `engine`'s imports took (ms) and the raw change bytes.
fn fill(
    engine: &Engine,
    twin: Option<&Engine>,
    grids: &[gridsync_core::RegionCode],
    cases: usize,
    clock: &SimClock,
) -> BenchResult<(f64, usize)> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut raw_bytes = 0usize;
    let mut import_ms = 0.0;
    let mut made = 0;
    while made < cases {
        let n = (cases - made).min(1000);
        let batch = (0..n)
            .map(|_| generated_case(&mut rng, grids, clock.now()))
            .collect::<BenchResult<Vec<_>>>()?;
        raw_bytes += batch
            .iter()
            .flat_map(|(_, c)| c)
            .map(Vec::len)
            .sum::<usize>();
        let import = |e: &Engine| {
            let decoded = batch
                .iter()
                .map(|(id, raw)| {
                    let changes: Result<Vec<_>, _> = raw.iter().map(|b| decode_change(b)).collect();
                    changes.map(|cs| (id.clone(), cs))
                })
                .collect::<Result<Vec<_>, _>>()?;
            for r in e.import_changes(decoded)? {
                r.outcome?;
            }
            Ok::<_, Box<dyn std::error::Error>>(())
        };
        let (t, done) = time_ms(|| import(engine));
        done?;
        if let Some(twin) = twin {
            import(twin)?;
        }
        import_ms += t;
        made += n;
    }
    Ok((import_ms, raw_bytes))
}

/// Purges timed by `bench device`: each merges the whole search index.
const PURGE_SAMPLES: usize = 20;

/// `gridsync bench device`; with `encrypted`, on a SQLCipher database as on a phone.
pub fn device(cases: usize, samples: usize, encrypted: bool) -> BenchResult {
    ENCRYPTED.store(encrypted, std::sync::atomic::Ordering::Relaxed);
    let key = encrypted.then(|| DeviceKey::from_bytes([0x42; 32]));
    let dir = tempfile::tempdir()?;
    let clock = SimClock::new(Utc::now());
    let user = "dd-339901-1";
    let engine = match &key {
        Some(key) => sim::device_encrypted(dir.path(), user, &clock, key)?,
        None => sim::device(dir.path(), user, &clock)?,
    };
    let directory = engine.directory()?;
    let grids: Vec<_> = directory
        .regions()
        .iter()
        .filter(|r| r.level == RegionLevel::Grid)
        .map(|r| r.code.clone())
        .collect();

    // With encryption, a plaintext twin holds the same cases: the durable report is
    // timed on both in alternation, so both see the same load on a shared machine.
    let twin_dir = tempfile::tempdir()?;
    let twin = match &key {
        Some(_) => Some(sim::device(twin_dir.path(), user, &clock)?),
        None => None,
    };
    let (import_ms, raw_bytes) = fill(&engine, twin.as_ref(), &grids, cases, &clock)?;
    print(
        "import",
        json!({ "docs": cases, "docs_per_s": cases as f64 / (import_ms / 1e3), "raw_change_bytes_per_case": raw_bytes / cases.max(1) }),
    );

    let db_path = engine.db_path().to_owned();
    let wal = db_path.with_extension("db-wal");
    let disk =
        std::fs::metadata(&db_path)?.len() + std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    print(
        "db_bytes_per_case",
        json!({ "cases": cases, "bytes": disk / cases.max(1) as u64 }),
    );

    let identity = engine.identity().clone();
    drop(engine);
    let mut open_ms = Vec::new();
    let open = |identity: Identity| match &key {
        Some(key) => Engine::open_encrypted(&db_path, identity, key),
        None => Engine::open(&db_path, identity),
    };
    for _ in 0..5 {
        let (t, e) = time_ms(|| open(identity.clone()));
        drop(e?);
        open_ms.push(t);
    }
    let mut stats = percentiles(open_ms);
    if let Some(m) = stats.as_object_mut() {
        m.insert("cases".into(), json!(cases));
    }
    print("open", stats);
    let c = clock.clone();
    let engine = match &key {
        Some(key) => Engine::open_encrypted_with_clock(
            &db_path,
            identity,
            key,
            std::sync::Arc::new(move || c.now()),
        )?,
        None => Engine::open_with_clock(&db_path, identity, std::sync::Arc::new(move || c.now()))?,
    };

    let town: gridsync_core::RegionCode = "339901001".parse()?;
    let filters = [
        ("list_first_page", CaseFilter::default()),
        (
            "filter_status_region",
            CaseFilter {
                statuses: vec![Status::Dispatched],
                region: Some(town.clone()),
                ..Default::default()
            },
        ),
        (
            "filter_category_status",
            CaseFilter {
                category: Some("safety".parse()?),
                statuses: vec![Status::Reported, Status::Accepted],
                ..Default::default()
            },
        ),
        (
            "filter_overdue",
            CaseFilter {
                overdue_at: Some(clock.now()),
                ..Default::default()
            },
        ),
        (
            "filter_assigned_dept",
            CaseFilter {
                assigned_dept: Some("water".parse()?),
                statuses: vec![Status::Dispatched],
                ..Default::default()
            },
        ),
        (
            "search_two_chars",
            CaseFilter {
                text: Some("漏水".into()),
                ..Default::default()
            },
        ),
        (
            "search_one_char",
            CaseFilter {
                text: Some("楼".into()),
                limit: 50,
                ..Default::default()
            },
        ),
    ];
    for (name, f) in &filters {
        let mut rows = 0;
        let mut stats = sample(samples, |_| {
            rows = engine.list_cases(f)?.len();
            Ok(())
        })?;
        if let Some(m) = stats.as_object_mut() {
            m.insert("cases".into(), json!(cases));
            m.insert("rows".into(), json!(rows));
        }
        print(name, stats);
    }
    let mut stats = sample(samples, |_| {
        engine
            .count_cases(&CaseFilter::default())
            .map(drop)
            .map_err(Into::into)
    })?;
    if let Some(m) = stats.as_object_mut() {
        m.insert("cases".into(), json!(cases));
    }
    print("count_by_status", stats);

    let input = |i: usize| -> BenchResult<NewCase> {
        Ok(NewCase {
            title: format!("楼道堆放杂物{i}"),
            description: DESCRIPTIONS[i % DESCRIPTIONS.len()].into(),
            category: "safety".parse()?,
            subcategory: Some("safety.fire_exit".parse()?),
            severity: Severity::High,
            grid: Some(grids[i % grids.len()].clone()),
            location: Some(Location {
                lat: 30.27,
                lon: 120.15,
                address: "望湖小区".into(),
            }),
            people: vec![],
            photos: vec![],
            links: Default::default(),
        })
    };
    let report = |e: &Engine, i: usize| -> BenchResult<f64> {
        let case = input(i)?;
        let (t, r) = time_ms(|| e.report_case(case));
        r?;
        Ok(t)
    };
    let stats = match &twin {
        None => percentiles(
            (0..samples)
                .map(|i| report(&engine, i))
                .collect::<BenchResult<_>>()?,
        ),
        Some(twin) => {
            // Both warmed alike, then one report on each in turn.
            for i in 0..20 {
                report(&engine, samples + i)?;
                report(twin, samples + i)?;
            }
            let (mut encrypted_ms, mut plain_ms) = (Vec::new(), Vec::new());
            for i in 0..samples {
                encrypted_ms.push(report(&engine, i)?);
                plain_ms.push(report(twin, i)?);
            }
            let p50 = |ms: &[f64]| {
                let mut ms = ms.to_vec();
                ms.sort_by(f64::total_cmp);
                quantile(&ms, 0.5)
            };
            let ratio = p50(&encrypted_ms) / p50(&plain_ms);
            let mut twin_stats = percentiles(plain_ms);
            if let Some(m) = twin_stats.as_object_mut() {
                m.insert("encrypted_over_plaintext_p50".into(), json!(ratio));
            }
            print("report_case_plaintext_twin", twin_stats);
            percentiles(encrypted_ms)
        }
    };
    print("report_case", stats);

    let reported = engine.list_cases(&CaseFilter {
        statuses: vec![Status::Reported],
        limit: samples as u32,
        ..Default::default()
    })?;
    let stats = sample(reported.len().min(samples), |i| {
        engine
            .act(&reported[i].id, Action::Accept)
            .map(drop)
            .map_err(Into::into)
    })?;
    print("act_accept", stats);

    // A case erased (an erasure or its retention's end reaching the phone): its
    // rows gone, the search index merged so its words leave it, the WAL emptied.
    let stats = sample(reported.len().min(PURGE_SAMPLES), |i| {
        engine
            .erase_documents(std::slice::from_ref(&reported[i].id))
            .map(drop)
            .map_err(Into::into)
    })?;
    print("purge_case", stats);

    if let Some(key) = &key {
        // Last, since the copy also compacts the file. Converting a plaintext
        // install is the same copy.
        let (t, r) = time_ms(|| engine.rekey(key));
        r?;
        let bytes = std::fs::metadata(&db_path)?.len();
        print(
            "rekey",
            json!({ "cases": cases, "ms": t, "db_bytes": bytes, "mb_per_s": bytes as f64 / 1e6 / (t / 1e3) }),
        );
    }

    // Bytes per patrol-hour: a worker walks an hour with a fix every 5 s.
    let worker = sim::device(dir.path(), "w-339901001001001", &clock)?;
    let patrol = worker.start_patrol()?;
    let start = clock.now();
    for minute in 0..60 {
        let points: Vec<TrackPoint> = (0..12)
            .map(|i| TrackPoint {
                at: start + Duration::seconds(60 * minute + 5 * i),
                lat: 30.27 + 1e-5 * (minute * 12 + i) as f64,
                lon: 120.15 + 1e-5 * ((minute * 12 + i) % 50) as f64,
            })
            .collect();
        worker.add_track_points(&patrol, &points)?;
    }
    worker.end_patrol(&patrol)?;
    let change_bytes: usize = worker
        .changes_since(&patrol, &[])?
        .iter()
        .map(|c| c.raw_bytes().len())
        .sum();
    print(
        "track_bytes_per_patrol_hour",
        json!({ "points": 720, "change_bytes": change_bytes }),
    );
    Ok(())
}

/// A memory figure of a process (`VmHWM:` its peak, `VmRSS:` now), from
/// /proc/<pid>/status (Linux), in MB.
fn status_mb(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// Peak resident memory of a process, in MB.
fn peak_rss_mb(pid: u32) -> Option<f64> {
    status_mb(pid, "VmHWM:")
}

/// `gridsync bench sync`: one device pushes `docs` cases made offline, a second,
/// empty device pulls them; one JSON line.
pub fn sync(docs: usize, server: Option<String>, data: Option<std::path::PathBuf>) -> BenchResult {
    let dir = tempfile::tempdir()?;
    let relay = match (server, data) {
        (Some(url), Some(data)) => sim::RelayProcess::external(&url, &data, &Storage::default()),
        (None, None) => sim::RelayProcess::start(&dir.path().join("relay"))?,
        _ => {
            return Err(
                "--server needs --data (the server's data folder, for enrollment codes)".into(),
            )
        }
    };
    let clock = SimClock::new(Utc::now());
    let devices = dir.path().join("devices");
    std::fs::create_dir_all(&devices)?;
    // A community dispatcher records hotline cases offline and takes each a few steps.
    let writer = relay.enroll(&devices, "cd-339901001001", &clock)?;
    hotline_cases(&writer, docs)?;
    let raw: usize = writer
        .outbox_pending(usize::MAX)?
        .iter()
        .map(|c| c.bytes.len())
        .sum();

    // Through a counting proxy (no throttle, no cuts): what crosses the wire,
    // headers and compression included.
    let wire = link::Proxy::start(link::address(&relay.url)?, None, None)?;
    let (_, token) = writer.server()?.ok_or("not enrolled")?;
    writer.set_server(&wire.url(), &token)?;
    let start = Instant::now();
    let up = writer.sync(&mut |_| {})?;
    let push_s = start.elapsed().as_secs_f64();
    let wire_push = wire.bytes();

    let reader = relay.enroll(&devices, "td-339901001", &clock)?;
    let (_, token) = reader.server()?.ok_or("not enrolled")?;
    reader.set_server(&wire.url(), &token)?;
    let start = Instant::now();
    let down = reader.sync(&mut |_| {})?;
    let pull_s = start.elapsed().as_secs_f64();
    let wire_pull = wire.bytes() - wire_push;
    let received = reader.list_cases(&CaseFilter {
        limit: 1,
        ..Default::default()
    })?;
    if down.pulled < (docs * 4) as u64 || received.is_empty() && docs > 0 {
        return Err(format!(
            "the reader received {} changes for {docs} cases",
            down.pulled
        )
        .into());
    }
    let line = json!({
        "bench": "sync",
        "docs": docs,
        "push_s": push_s,
        "pull_s": pull_s,
        "requests": up.requests + down.requests,
        "push_requests": up.requests,
        "pull_requests": down.requests,
        "bytes_up": up.bytes_up,
        "bytes_down": down.bytes_down,
        "raw_change_bytes": raw,
        "wire_bytes_push": wire_push,
        "wire_bytes_pull": wire_pull,
        "wire_push_over_raw": wire_push as f64 / raw.max(1) as f64,
        "wire_pull_over_raw": wire_pull as f64 / raw.max(1) as f64,
        "server_rss_mb": relay.pid().and_then(peak_rss_mb),
    });
    println!("{line}");
    Ok(())
}

/// `docs` hotline cases a community dispatcher records offline on `writer`, each
/// with all its fields in Chinese and 4 timeline entries (reported, accepted,
/// dispatched, urged).
fn hotline_cases(writer: &Engine, docs: usize) -> BenchResult {
    let grids: Vec<_> = writer
        .directory()?
        .regions()
        .iter()
        .filter(|r| r.level == RegionLevel::Grid && r.code.as_str().starts_with("339901001001"))
        .map(|r| r.code.clone())
        .collect();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for i in 0..docs {
        let id = writer.report_case(NewCase {
            title: format!("{}（{}号楼）", rng.pick(TITLES), 1 + rng.below(30)),
            description: rng.pick(DESCRIPTIONS).to_string(),
            category: "livelihood".parse()?,
            subcategory: Some("livelihood.water_leak".parse()?),
            severity: Severity::High,
            grid: Some(grids[i % grids.len()].clone()),
            location: Some(Location {
                lat: 30.2 + rng.below(1000) as f64 * 1e-4,
                lon: 120.1 + rng.below(1000) as f64 * 1e-4,
                address: format!("望湖小区{}号楼{}单元", 1 + rng.below(30), 1 + rng.below(4)),
            }),
            people: vec![gridsync_core::Person {
                name: "居民".into(),
                role: "报告人".into(),
                phone: String::new(),
            }],
            photos: vec![],
            links: Default::default(),
        })?;
        writer.act(&id, Action::Accept)?;
        writer.dispatch(&id, "water".parse()?, None)?;
        writer.act(
            &id,
            Action::Urge {
                level: gridsync_core::SupervisionLevel::Reminder,
                comment: "请按时限办理".into(),
            },
        )?;
    }
    Ok(())
}

/// A harsh 12-megapixel JPEG: noise in every pixel, so it does not compress (17 MB at
/// quality 90, where a phone's photo is 3–6 MB); different for every `seed`.
fn noisy_jpeg(seed: u64) -> BenchResult<Vec<u8>> {
    let mut rng = Rng(seed * 2 + 1);
    let noise: Vec<u8> = (0..4096).map(|_| rng.next() as u8).collect();
    let img = image::ImageBuffer::from_fn(4000, 3000, |x, y| {
        let n = noise[((x * 7 + y * 13) % 4096) as usize];
        image::Rgb([(x / 16) as u8 ^ n, (y / 12) as u8, n / 2 + (x % 97) as u8])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90).encode_image(&img)?;
    Ok(out)
}

/// A 12-megapixel street as a phone would shoot it, 3–4 MB at quality 90: a sky
/// gradient, a row of buildings of brick with windows and a red sign of white
/// strokes (hard edges, like text), a road with lane marks; grain in every
/// pixel, faint in the sky, strong on the asphalt. Different for every `seed`.
fn street_jpeg(seed: u64) -> BenchResult<Vec<u8>> {
    const W: u32 = 4000;
    const H: u32 = 3000;
    const KERB: u32 = 2300;
    let mut rng = Rng(seed * 2 + 1);
    // (left, right, roof, colour), left to right.
    let mut buildings = Vec::new();
    let mut left = 0;
    while left < W {
        let width = 300 + rng.below(600) as u32;
        let roof = 500 + rng.below(1000) as u32;
        let colour = [
            90 + rng.below(120) as i32,
            80 + rng.below(110) as i32,
            70 + rng.below(100) as i32,
        ];
        buildings.push((left, left + width, roof, colour));
        left += width;
    }
    let grain: Vec<i32> = (0..65536).map(|_| rng.below(256) as i32 - 128).collect();
    let img = image::ImageBuffer::from_fn(W, H, |x, y| {
        let g = grain[((x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) & 0xFFFF) as usize];
        // A colour and the strength of its grain.
        let (base, amp): ([i32; 3], i32) = if y > KERB {
            if (x / 60) % 4 == 0 && (2600..2640).contains(&y) {
                ([230, 230, 220], 6)
            } else {
                let v = 70 + (y - KERB) as i32 / 20;
                ([v, v, v + 5], 28)
            }
        } else {
            match buildings.iter().find(|b| x >= b.0 && x < b.1) {
                Some(&(left, _, roof, c)) if y >= roof => {
                    let (bx, by) = (x - left, y - roof);
                    if (200..330).contains(&by) && (40..280).contains(&bx) {
                        let (sx, sy) = (bx - 40, by - 200);
                        let stroke = match ((sx / 24) * 7 + (sy / 26) * 3) % 5 {
                            0 => sx % 24 < 4,
                            1 => sy % 26 < 4,
                            2 => sx % 24 == sy % 26,
                            3 => sx % 24 > 19,
                            _ => false,
                        };
                        if stroke && (16..115).contains(&sy) {
                            ([250, 250, 240], 4)
                        } else {
                            ([180, 30, 30], 4)
                        }
                    } else if (31..95).contains(&(bx % 120)) && (41..130).contains(&(by % 160)) {
                        let shade = 40 + ((bx / 120 + by / 160) % 3) as i32 * 25;
                        ([shade, shade + 10, shade + 30], 6)
                    } else if by % 12 == 0 || (bx + (by / 12 % 2) * 18) % 36 == 0 {
                        ([150, 150, 140], 6)
                    } else {
                        let d = by as i32 / 40;
                        ([c[0] - d, c[1] - d, c[2] - d], 14)
                    }
                }
                _ => {
                    let t = y as i32 * 100 / KERB as i32;
                    ([110 + t, 160 + t / 2, 235 - t / 4], 3)
                }
            }
        };
        let n = g * amp / 128;
        image::Rgb(base.map(|v| (v + n).clamp(0, 255) as u8))
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90).encode_image(&img)?;
    Ok(out)
}

/// Ingest `count` photos of one scene and print its figures: the ingest time of the
/// first `timed` (and of the pipeline alone, without the hash, the files and the
/// row), the input size, and the display image and thumbnail of the last.
fn ingest_scene(
    worker: &Engine,
    scene: &str,
    count: usize,
    timed: usize,
    make: fn(u64) -> BenchResult<Vec<u8>>,
) -> BenchResult<Vec<gridsync_core::PhotoInfo>> {
    let limits = gridsync_core::photo::PhotoLimits::default();
    let (mut ingest, mut pipeline) = (Vec::new(), Vec::new());
    let mut infos = Vec::new();
    let mut input_bytes = Vec::new();
    for i in 0..count {
        let jpeg = make(i as u64 + 1)?;
        input_bytes.push(jpeg.len());
        let (t, info) = time_ms(|| worker.ingest_photo(&jpeg, Some("IMG.JPG")));
        infos.push(info?);
        if i < timed {
            ingest.push(t);
            let (t, done) = time_ms(|| gridsync_core::photo::process(&jpeg, None, &limits));
            done?;
            pipeline.push(t);
        }
    }
    let mut stats = percentiles(ingest);
    if let Some(m) = stats.as_object_mut() {
        m.insert("megapixels".into(), json!(12));
        m.insert("input_bytes".into(), json!(input_bytes));
        m.insert("pipeline_p50".into(), percentiles(pipeline)["p50"].clone());
    }
    print_as("photo", &format!("ingest_{scene}"), stats);
    if let Some(info) = infos.last() {
        let display = worker.photo(&info.hash)?.len();
        let thumb = worker.photo(&info.thumb)?.len();
        print_as(
            "photo",
            &format!("display_bytes_{scene}"),
            json!({ "bytes": display, "width": info.width, "height": info.height,
                    "budget": gridsync_core::photo::DISPLAY_BUDGET_BYTES }),
        );
        print_as(
            "photo",
            &format!("thumb_bytes_{scene}"),
            json!({ "bytes": thumb }),
        );
    }
    Ok(infos)
}

/// Drops every `every`-th photo request, after the relay has answered half of the
/// time: a link that keeps dropping, counting the photo bytes it was asked to carry.
struct DroppingLink {
    inner: gridsync_core::sync::HttpTransport,
    every: u64,
    calls: std::cell::Cell<u64>,
    cuts: std::cell::Cell<u64>,
    chunk_bytes: std::cell::Cell<u64>,
}

impl gridsync_core::sync::Transport for DroppingLink {
    fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, gridsync_core::sync::TransportError> {
        if path != "/v1/blob/put" {
            return self.inner.post(path, token, body);
        }
        if let Ok(chunk) =
            gridsync_core::sync::wire::decode::<gridsync_core::sync::wire::BlobPutRequest>(&body)
        {
            self.chunk_bytes
                .set(self.chunk_bytes.get() + chunk.bytes.len() as u64);
        }
        let n = self.calls.get() + 1;
        self.calls.set(n);
        if n % self.every != 0 {
            return self.inner.post(path, token, body);
        }
        self.cuts.set(self.cuts.get() + 1);
        if n % (2 * self.every) == 0 {
            let _ = self.inner.post(path, token, body);
        }
        Err(gridsync_core::sync::TransportError::Network(
            "dropped".into(),
        ))
    }
}

fn report_with_photos(worker: &Engine, photos: Vec<gridsync_core::PhotoHash>) -> BenchResult {
    worker.report_case(NewCase {
        title: "楼道堆放杂物".into(),
        description: DESCRIPTIONS[0].into(),
        category: "safety".parse()?,
        subcategory: Some("safety.fire_exit".parse()?),
        severity: Severity::High,
        grid: None,
        location: None,
        people: vec![],
        photos,
        links: Default::default(),
    })?;
    Ok(())
}

/// `gridsync bench photo`: the capture pipeline on 12-megapixel JPEGs, a realistic
/// street and a harsh noisy one, then the noisy ones' upload to a relay on loopback,
/// cleanly and over a link that keeps dropping.
pub fn photo(samples: usize) -> BenchResult {
    let dir = tempfile::tempdir()?;
    let clock = SimClock::new(Utc::now());
    let relay = sim::RelayProcess::start(&dir.path().join("relay"))?;
    let devices = dir.path().join("devices");
    std::fs::create_dir_all(&devices)?;
    let worker = relay.enroll(&devices, "w-339901001001001", &clock)?;
    let samples = samples.clamp(1, 25);
    ingest_scene(&worker, "realistic", samples, samples, street_jpeg)?;
    // Twice as many noisy ones: the second half goes over the dropping link.
    let hashes = ingest_scene(&worker, "noisy", 2 * samples, samples, noisy_jpeg)?;

    // A clean upload of the first half.
    let (first, second) = hashes.split_at(samples);
    report_with_photos(&worker, first.iter().map(|p| p.hash.clone()).collect())?;
    let start = Instant::now();
    let clean = worker.sync(&mut |_| {})?;
    let secs = start.elapsed().as_secs_f64();
    print_as(
        "photo",
        "upload",
        json!({ "photos": clean.photos_uploaded, "bytes": clean.photo_bytes_sent, "seconds": secs,
                "mb_per_s": clean.photo_bytes_sent as f64 / 1e6 / secs }),
    );

    // The second half over a link that drops every fourth photo request.
    report_with_photos(&worker, second.iter().map(|p| p.hash.clone()).collect())?;
    let mut total = 0u64;
    for p in second {
        total += (worker.photo(&p.hash)?.len() + worker.photo(&p.thumb)?.len()) as u64;
    }
    let (url, _) = worker.server()?.ok_or("not enrolled")?;
    let link = DroppingLink {
        inner: gridsync_core::sync::HttpTransport::new(&url),
        every: 4,
        calls: Default::default(),
        cuts: Default::default(),
        chunk_bytes: Default::default(),
    };
    for _ in 0..1000 {
        if gridsync_core::sync::sync(&worker, &link, &mut |_| {}).is_ok() {
            break;
        }
    }
    let resent = link.chunk_bytes.get().saturating_sub(total);
    let cuts = link.cuts.get();
    print_as(
        "photo",
        "resent_per_cut",
        json!({ "cuts": cuts, "bytes_resent": resent, "per_cut": resent as f64 / cuts.max(1) as f64,
                "chunk_bytes": gridsync_core::sync::client::PHOTO_CHUNK_BYTES }),
    );
    Ok(())
}

/// A small photo, different for every `seed` (a phone's 640×480 shot).
fn small_jpeg(seed: u64) -> BenchResult<Vec<u8>> {
    let mut rng = Rng(seed * 2 + 1);
    let tint = [rng.next() as u8, rng.next() as u8, rng.next() as u8];
    let img = image::ImageBuffer::from_fn(640, 480, |x, y| {
        image::Rgb([
            tint[0].wrapping_add((x / 8) as u8),
            tint[1].wrapping_add((y / 8) as u8),
            tint[2].wrapping_add(((x + y) / 16) as u8),
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img).write_to(&mut out, image::ImageFormat::Jpeg)?;
    Ok(out.into_inner())
}

/// What one simulated device did.
#[derive(Default)]
struct DeviceRun {
    sync_ms: Vec<f64>,
    errors: u64,
    cases: u64,
    photos: u64,
}

/// `bench load`: `devices` grid workers, each patrolling, reporting cases with small
/// photos and syncing on a compressed but realistic schedule (a sync every few
/// seconds, a case every few syncs), against `servers` round-robin, for `minutes`.
/// Then every device syncs until quiet and the relay's replica is checked: every
/// document of every device is there, with the same history (exactly once: the log
/// stores a change once by its hash), and every device holds what the relay has.
pub fn load(
    devices: usize,
    minutes: f64,
    nodes: usize,
    servers: Vec<String>,
    data: Option<std::path::PathBuf>,
    storage: &Storage,
) -> BenchResult {
    if devices == 0 || !(minutes > 0.0 && minutes <= 24.0 * 60.0) {
        return Err("--devices must be at least 1 and --minutes between 0 and 1440".into());
    }
    if !(1..=16).contains(&nodes) {
        return Err("--nodes must be 1 to 16".into());
    }
    if nodes > 1 && storage.database_url.is_none() {
        return Err("several nodes need a shared database: give --database-url".into());
    }
    let dir = tempfile::tempdir()?;
    let relays: Vec<sim::RelayProcess> = match (servers.is_empty(), data) {
        // Each node its own data folder (its replica), all on `storage`.
        (true, None) => (0..nodes)
            .map(|n| sim::RelayProcess::start_on(&dir.path().join(format!("node{n}")), storage))
            .collect::<BenchResult<_>>()?,
        (false, Some(data)) => servers
            .iter()
            .map(|url| sim::RelayProcess::external(url, &data, storage))
            .collect(),
        _ => {
            return Err(
                "--server needs --data (a relay's data folder, for enrollment codes)".into(),
            )
        }
    };
    let folder = dir.path().join("devices");
    std::fs::create_dir_all(&folder)?;
    let directory = relays[0].open()?.engine().directory()?;
    let workers: Vec<String> = directory
        .users()
        .iter()
        .filter(|u| u.role == Role::GridWorker)
        .map(|u| u.id.to_string())
        .take(devices)
        .collect();
    if workers.len() < devices {
        return Err(format!("the directory has only {} grid workers", workers.len()).into());
    }
    let clock: gridsync_core::Clock = std::sync::Arc::new(Utc::now);
    let engines = workers
        .iter()
        .enumerate()
        .map(|(i, w)| relays[i % relays.len()].enroll_with_clock(&folder, w, clock.clone()))
        .collect::<BenchResult<Vec<Engine>>>()?;
    let urls: Vec<String> = relays.iter().map(|r| r.url.clone()).collect();
    let deadline = Instant::now() + std::time::Duration::from_secs_f64(minutes * 60.0);
    let started = Instant::now();

    let runs: Vec<DeviceRun> = std::thread::scope(|s| {
        let handles: Vec<_> = engines
            .iter()
            .enumerate()
            .map(|(i, engine)| {
                let urls = &urls;
                s.spawn(move || run_device(i, engine, urls, deadline))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();

    // Quiet down: everyone syncs twice (the second pull brings what others pushed last).
    let mut final_errors = 0u64;
    for _ in 0..2 {
        for e in &engines {
            if e.sync(&mut |_| {}).is_err() {
                final_errors += 1;
            }
        }
    }
    let (exactly_once, converged) = check_load(&relays[0].open()?, &engines)?;
    let mut sync_ms: Vec<f64> = runs
        .iter()
        .flat_map(|r| r.sync_ms.iter().copied())
        .collect();
    let syncs = sync_ms.len();
    sync_ms.sort_by(f64::total_cmp);
    let at = |q| quantile(&sync_ms, q);
    println!(
        "{}",
        json!({
            "bench": "load",
            "devices": devices,
            "servers": urls.len(),
            "database": if storage.database_url.is_some() { "postgres" } else { "sqlite" },
            "minutes": minutes,
            "syncs": syncs,
            "syncs_per_s": syncs as f64 / elapsed,
            "sync_p50_ms": at(0.5),
            "sync_p95_ms": at(0.95),
            "sync_p99_ms": at(0.99),
            "errors": runs.iter().map(|r| r.errors).sum::<u64>() + final_errors,
            "cases": runs.iter().map(|r| r.cases).sum::<u64>(),
            "photos": runs.iter().map(|r| r.photos).sum::<u64>(),
            "exactly_once": exactly_once,
            "converged": converged,
            "server_rss_mb": relays[0].pid().and_then(peak_rss_mb),
        })
    );
    if exactly_once && converged {
        Ok(())
    } else {
        Err("the relay and the devices did not end with the same data".into())
    }
}

/// One device's day, compressed: patrol points every loop, a case (with a photo on
/// every other one) every third loop, a sync every loop, 1–4 s apart.
fn run_device(i: usize, engine: &Engine, urls: &[String], deadline: Instant) -> DeviceRun {
    let mut run = DeviceRun::default();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1));
    let (Ok(patrol), Ok(category)) = (
        engine.start_patrol(),
        "livelihood".parse::<gridsync_core::CategoryCode>(),
    ) else {
        run.errors += 1;
        return run;
    };
    let mut step = 0u64;
    while Instant::now() < deadline {
        step += 1;
        let now = Utc::now();
        let points: Vec<TrackPoint> = (0..5)
            .map(|k| TrackPoint {
                at: now + Duration::milliseconds(k),
                lat: 30.27 + rng.below(1000) as f64 * 1e-5,
                lon: 120.15 + rng.below(1000) as f64 * 1e-5,
            })
            .collect();
        run.errors += u64::from(engine.add_track_points(&patrol, &points).is_err());
        if step % 3 == 0 {
            let mut photos = Vec::new();
            if step % 6 == 0 {
                match small_jpeg(i as u64 * 100_000 + step)
                    .and_then(|j| Ok(engine.ingest_photo(&j, Some("photo.jpg"))?))
                {
                    Ok(p) => {
                        photos.push(p.hash);
                        run.photos += 1;
                    }
                    Err(_) => run.errors += 1,
                }
            }
            let reported = engine.report_case(NewCase {
                title: rng.pick(TITLES).to_string(),
                description: rng.pick(DESCRIPTIONS).to_string(),
                category: category.clone(),
                subcategory: None,
                severity: Severity::Normal,
                grid: None,
                location: None,
                people: vec![],
                photos,
                links: Default::default(),
            });
            match reported {
                Ok(_) => run.cases += 1,
                Err(_) => run.errors += 1,
            }
        }
        let transport =
            gridsync_core::sync::HttpTransport::new(&urls[(i + step as usize) % urls.len()]);
        let start = Instant::now();
        match gridsync_core::sync::sync(engine, &transport, &mut |_| {}) {
            Ok(_) => run.sync_ms.push(start.elapsed().as_secs_f64() * 1e3),
            Err(_) => run.errors += 1,
        }
        std::thread::sleep(std::time::Duration::from_millis(
            1000 + rng.below(3000) as u64,
        ));
    }
    run.errors += u64::from(engine.end_patrol(&patrol).is_err());
    run
}

/// Whether every device document is on the relay with the same heads (exactly once
/// in the log by construction: its hash is unique), and every device holds every
/// document of its grid the relay has.
fn check_load(relay: &Relay, engines: &[Engine]) -> BenchResult<(bool, bool)> {
    relay.catch_up().map_err(|e| e.to_string())?;
    let server = relay.engine();
    let mut exactly_once = true;
    let mut converged = true;
    let log = relay.store().log_len()?;
    let mut changes = 0u64;
    for e in engines {
        e.flush_tracks()?;
        for id in e.doc_ids()? {
            let mine = e.heads(&id)?;
            changes += e.changes_since(&id, &[])?.len() as u64;
            if server.heads(&id)? != mine {
                exactly_once = false;
            }
        }
    }
    // Every change every device holds is in the log once: devices hold only their
    // own grid's documents here (one worker per grid), so the counts must match.
    if changes != log {
        exactly_once = false;
    }
    for e in engines {
        let me = e.me()?;
        for id in server.doc_ids()? {
            let in_my_grid = server
                .read_doc(&id)?
                .is_some_and(|d| me.region.contains(d.grid()));
            if in_my_grid && e.heads(&id)? != server.heads(&id)? {
                converged = false;
            }
        }
    }
    Ok((exactly_once, converged))
}
