//! Devices for tests: an engine on a temporary SQLite file with the sample
//! directory loaded, a controllable clock, and a helper that merges two replicas.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use gridsync_core::{
    CategoryCode, DeviceId, Engine, Identity, Location, NewCase, Person, Severity,
};
use tempfile::TempDir;

pub const SAMPLE: &str = include_str!("../../data/sample-directory.json");

pub const WORKER: &str = "w-339901001001001";
pub const WORKER_GRID: &str = "339901001001001";
pub const OTHER_WORKER: &str = "w-339901002001001";
pub const COMMUNITY: &str = "cd-339901001001";
pub const OTHER_COMMUNITY: &str = "cd-339901002001";
pub const TOWN: &str = "td-339901001";
pub const HANDLER: &str = "h-water-1";
pub const OTHER_HANDLER: &str = "h-housing-1";
pub const ADMIN: &str = "admin";

/// A clock shared by all devices of a test; it only moves when told to.
#[derive(Clone)]
pub struct TestClock(Arc<AtomicI64>);

impl TestClock {
    pub fn new() -> Self {
        // 2026-11-02 08:00 China Standard Time.
        TestClock(Arc::new(AtomicI64::new(1_793_577_600_000)))
    }
    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.0.load(Ordering::SeqCst)).unwrap()
    }
    pub fn advance_minutes(&self, m: i64) {
        self.0.fetch_add(m * 60_000, Ordering::SeqCst);
    }
}

pub struct Device {
    pub engine: Engine,
    pub identity: Identity,
    pub dir: TempDir,
}

impl Device {
    pub fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("device.db")
    }

    /// Close and reopen the engine on the same file.
    pub fn reopen(self, clock: &TestClock) -> Device {
        let Device {
            engine,
            identity,
            dir,
        } = self;
        drop(engine);
        let c = clock.clone();
        let engine = Engine::open_with_clock(
            dir.path().join("device.db"),
            identity.clone(),
            Arc::new(move || c.now()),
        )
        .expect("reopen");
        Device {
            engine,
            identity,
            dir,
        }
    }
}

impl std::ops::Deref for Device {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        &self.engine
    }
}

pub fn device(user: &str, clock: &TestClock) -> Device {
    let dir = tempfile::tempdir().unwrap();
    let identity = Identity {
        user: user.parse().unwrap(),
        device: DeviceId::random(),
    };
    let c = clock.clone();
    let engine = Engine::open_with_clock(
        dir.path().join("device.db"),
        identity.clone(),
        Arc::new(move || c.now()),
    )
    .expect("open");
    engine.load_directory(SAMPLE).expect("sample directory");
    Device {
        engine,
        identity,
        dir,
    }
}

pub fn leak_case() -> NewCase {
    NewCase {
        title: "楼上管道漏水".into(),
        description: "3号楼2单元楼上住户管道漏水，已经渗到楼下天花板。".into(),
        category: "livelihood".parse().unwrap(),
        subcategory: Some("livelihood.water_leak".parse().unwrap()),
        severity: Severity::High,
        grid: None,
        location: Some(Location {
            lat: 30.2741,
            lon: 120.1551,
            address: "望湖小区3号楼2单元".into(),
        }),
        people: vec![Person {
            name: "张三".into(),
            role: "楼上住户".into(),
            phone: "13800000000".into(),
        }],
        photos: vec![],
        links: Default::default(),
    }
}

pub fn case_with(title: &str, category: &str) -> NewCase {
    NewCase {
        title: title.into(),
        description: String::new(),
        category: category.parse::<CategoryCode>().unwrap(),
        subcategory: None,
        severity: Severity::Normal,
        grid: None,
        location: None,
        people: vec![],
        photos: vec![],
        links: Default::default(),
    }
}

/// Send everything `from` has that `to` lacks. Returns the number of changes moved.
pub fn push(from: &Engine, to: &Engine) -> usize {
    let mut moved = 0;
    for r in to.merge_from(from).unwrap() {
        let report = r.outcome.expect("import accepted");
        assert!(report.missing_deps.is_empty(), "{:?}", report);
        moved += report.applied.len();
    }
    moved
}

/// Merge both ways.
pub fn sync(a: &Engine, b: &Engine) {
    push(a, b);
    push(b, a);
}
