//! Golden files (issue #19, scenario 8): a grid worker's phone database, a relay's
//! data folder and the protocol-v1 messages of a sync, as the build that wrote
//! them left them (`tests/golden/<generation>/`), opened and answered by this
//! build. Nothing the phone held is lost, its unsent work reaches the relay, every
//! recorded request is still understood, and a phone speaking another protocol
//! version is refused with the message to update, never half-synced.
//!
//! A generation is written once and never rewritten: when a format changes, add
//! the next one beside it (see `tests/golden/README.md`):
//! `GRIDSYNC_WRITE_GOLDEN=tests/golden/v3 cargo test -p gridsync-tests --test e2e golden::write -- --ignored`

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use chrono::Duration;
use gridsync_core::doc::place::{NewPlace, Occupancy, OrgFacts, PlaceKind};
use gridsync_core::doc::registry::{NewPerson, PersonEdit, Tag};
use gridsync_core::sync::route::{Request, Route};
use gridsync_core::sync::{self, Transport, TransportError};
use gridsync_core::track::TrackPoint;
use gridsync_core::{
    Action, CaseFilter, CaseLinks, DeviceId, Engine, Identity, Location, NewCase, Severity,
};
use gridsync_server::relay::{Relay, RelayError};
use gridsync_tests::{LocalTransport, GOLDEN_GENERATIONS};
use serde::{Deserialize, Serialize};

const WORKER: &str = "w-339901001001001";
const COMMUNITY: &str = "cd-339901001001";
const HANDLER: &str = "h-water-1";

/// What a generation's phone held when it was written.
#[derive(Serialize, Deserialize)]
struct Expected {
    /// The phone's user and device.
    user: String,
    device: String,
    /// Its token at the relay.
    token: String,
    /// Every case on the phone: id, title, status.
    cases: Vec<(String, String, String)>,
    /// Persons, households and places on the phone.
    persons: usize,
    households: usize,
    places: usize,
    /// Local changes not yet sent.
    pending: u64,
    /// The cases reported offline, not yet on the relay.
    unsent_cases: Vec<String>,
}

/// A transport that keeps every request and answer it carries.
struct Recording<'a> {
    inner: LocalTransport<'a>,
    log: RefCell<Vec<(String, Vec<u8>)>>,
}

impl Transport for Recording<'_> {
    fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError> {
        let answer = self.inner.post(path, token, body.clone());
        self.log.borrow_mut().push((path.to_owned(), body));
        answer
    }
}

fn enroll(relay: &Relay, user: &str, folder: &Path) -> (Engine, String) {
    let code = relay.create_enrollment(user).expect("code");
    let device = DeviceId::random();
    let e = sync::enroll(&LocalTransport::new(relay), &code, device, "golden-1.0").expect("enroll");
    let engine = Engine::open(
        folder.join(format!("{user}.db")),
        Identity {
            user: e.user,
            device,
        },
    )
    .expect("opens");
    engine.load_directory(&e.directory).expect("directory");
    engine.set_server("local:", &e.token).expect("server");
    (engine, e.token)
}

fn sync_with(engine: &Engine, transport: &dyn Transport) {
    let report = sync::sync(engine, transport, &mut |_| {}).expect("sync");
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

fn golden(generation: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(generation)
}

/// A day of a grid worker's work in the registry and the loop, the last of it
/// offline: what the golden phone holds.
fn fill(
    worker: &Engine,
    community: &Engine,
    handler: &Engine,
    link: &dyn Transport,
    relay: &Relay,
) {
    let home = worker
        .register_household(None, "望湖小区3号楼2单元501")
        .expect("household");
    let zhang = worker
        .register_person(NewPerson {
            grid: WORKER[2..].parse().expect("grid"),
            name: "张建国".into(),
            id_number: Some("33010619900101131X".parse().expect("id")),
            sex: None,
            born: None,
            phone: Some("13812345678".parse().expect("phone")),
            household: Some((home.clone(), "户主".into())),
            tags: vec![Tag::ElderlyAlone],
            notes: "每周电话回访".into(),
        })
        .expect("person");
    let place = |kind, name: &str, occupancy, org| NewPlace {
        grid: WORKER[2..].parse().expect("grid"),
        kind,
        name: name.into(),
        address: format!("望湖小区{name}"),
        within: None,
        location: Some((30.2741, 120.1551)),
        occupancy,
        org,
    };
    let flat = worker
        .register_place(place(
            PlaceKind::Dwelling,
            "3号楼2单元501",
            Some(Occupancy::Rented),
            None,
        ))
        .expect("flat");
    worker
        .household_lives_at(&home, Some(&flat))
        .expect("lives at");
    let shop = worker
        .register_place(place(
            PlaceKind::Shop,
            "平安超市",
            None,
            Some(OrgFacts {
                org_type: "零售".into(),
                credit_code: Some("91350100M000100Y43".parse().expect("code")),
                contact: Some(zhang.clone()),
            }),
        ))
        .expect("shop");
    let patrol = worker.start_patrol().expect("patrol");
    let now = chrono::Utc::now();
    let track: Vec<TrackPoint> = (0..30)
        .map(|i| TrackPoint {
            at: now + Duration::seconds(i * 10),
            lat: 30.2741 + i as f64 * 1e-4,
            lon: 120.1551,
        })
        .collect();
    worker.add_track_points(&patrol, &track).expect("track");
    worker
        .visit(&patrol, &home, "老人身体状况良好", 30.2741, 120.1551, None)
        .expect("visit");
    worker
        .inspect(&patrol, &shop, false, "灭火器过期", 30.2742, 120.1552, None)
        .expect("inspect");
    let case = |title: &str, links| NewCase {
        title: title.into(),
        description: format!("{title}，请尽快处理"),
        category: "livelihood".parse().expect("category"),
        subcategory: Some("livelihood.water_leak".parse().expect("subcategory")),
        severity: Severity::High,
        grid: None,
        location: Some(Location {
            lat: 30.2741,
            lon: 120.1551,
            address: "望湖小区3号楼".into(),
        }),
        people: vec![],
        photos: vec![],
        links,
    };
    let leak = worker
        .report_case(case(
            "楼上管道漏水",
            CaseLinks {
                place: Some(flat.clone()),
                persons: vec![zhang.clone()],
            },
        ))
        .expect("report");
    let spot = worker
        .report_case(case("楼道堆放杂物", CaseLinks::default()))
        .expect("report");
    worker
        .act(
            &spot,
            Action::SelfHandle {
                result: "已清理".into(),
            },
        )
        .expect("self-handle");
    worker.end_patrol(&patrol).expect("end");

    let relay_link = LocalTransport::new(relay);
    sync_with(worker, link);
    sync_with(community, &relay_link);
    community.act(&leak, Action::Accept).expect("accept");
    community
        .dispatch(&leak, "water".parse().expect("dept"), None)
        .expect("dispatch");
    sync_with(community, &relay_link);
    sync_with(handler, &relay_link);
    handler
        .act(
            &leak,
            Action::Feedback {
                result: "已更换管道".into(),
            },
        )
        .expect("feedback");
    sync_with(handler, &relay_link);
    sync_with(worker, link);
    worker
        .act(
            &leak,
            Action::Verify {
                passed: true,
                comment: "现场已核实".into(),
            },
        )
        .expect("verify");
    sync_with(worker, link);
    sync_with(community, &relay_link);
    community.act(&leak, Action::Archive).expect("archive");
    sync_with(community, &relay_link);
    sync_with(worker, link);

    // Offline: a new case and an edit wait in the outbox. From v2 on, forty notes
    // on the case too: more changes than a compaction waits for, so the file holds
    // unsent changes its snapshot has already folded in (schema 11).
    let offline = worker
        .report_case(case("井盖缺失", CaseLinks::default()))
        .expect("offline report");
    for i in 0..40 {
        worker
            .add_note(&offline, &format!("第{i}次电话催办"))
            .expect("offline note");
    }
    worker
        .edit_person(
            &zhang,
            PersonEdit {
                add_tags: vec![Tag::LowIncome],
                ..Default::default()
            },
        )
        .expect("offline edit");
}

/// Writes a new generation into `$GRIDSYNC_WRITE_GOLDEN` (a folder that must not
/// exist yet). Run by hand when a format changes; never part of a test run.
#[test]
#[ignore]
fn write() {
    let Ok(out) = std::env::var("GRIDSYNC_WRITE_GOLDEN") else {
        panic!("set GRIDSYNC_WRITE_GOLDEN to the new generation's folder");
    };
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(out);
    assert!(
        !out.exists(),
        "{} exists: golden files are never rewritten",
        out.display()
    );
    let relay_dir = out.join("relay");
    std::fs::create_dir_all(&relay_dir).expect("mkdir");
    let others = tempfile::tempdir().expect("temp");
    let relay = Relay::open(&relay_dir, None).expect("relay");
    let (worker, token) = enroll(&relay, WORKER, &out);
    let (community, _) = enroll(&relay, COMMUNITY, others.path());
    let (handler, _) = enroll(&relay, HANDLER, others.path());
    let recording = Recording {
        inner: LocalTransport::new(&relay),
        log: RefCell::new(Vec::new()),
    };
    fill(&worker, &community, &handler, &recording, &relay);

    let listed = worker
        .list_cases(&CaseFilter {
            limit: 1000,
            ..Default::default()
        })
        .expect("cases");
    let mut unsent: Vec<String> = worker
        .outbox_pending(usize::MAX)
        .expect("outbox")
        .iter()
        .filter(|o| o.doc.kind() == gridsync_core::DocKind::Case)
        .map(|o| o.doc.to_string())
        .collect();
    unsent.dedup();
    let count = |what: &str| -> usize {
        match what {
            "persons" => worker
                .list_persons(&Default::default())
                .expect("persons")
                .len(),
            "places" => worker
                .list_places(&Default::default())
                .expect("places")
                .len(),
            _ => worker.registry_counts(None).expect("counts")[0].households as usize,
        }
    };
    let expected = Expected {
        user: WORKER.into(),
        device: worker.identity().device.to_string(),
        token,
        cases: listed
            .iter()
            .map(|c| (c.id.to_string(), c.title.clone(), c.status.as_str().into()))
            .collect(),
        persons: count("persons"),
        households: count("households"),
        places: count("places"),
        pending: worker.outbox_len().expect("pending"),
        unsent_cases: unsent,
    };
    let messages = out.join("messages");
    std::fs::create_dir_all(&messages).expect("mkdir");
    for (i, (path, body)) in recording.log.borrow().iter().enumerate() {
        let name = Route::from_path(path).expect("route").name();
        std::fs::write(messages.join(format!("{i:03}-{name}.cbor")), body).expect("write");
    }
    std::fs::write(
        out.join("expected.json"),
        serde_json::to_string_pretty(&expected).expect("json"),
    )
    .expect("write");
    // Closing checkpoints and removes every WAL: the files are whole databases.
    drop((worker, community, handler, recording));
    drop(relay);
}

#[test]
fn every_generation_opens_syncs_and_is_answered() {
    for generation in GOLDEN_GENERATIONS {
        let from = golden(generation);
        let tmp = tempfile::tempdir().expect("temp");
        copy_dir(&from, tmp.path());
        let expected: Expected = serde_json::from_str(
            &std::fs::read_to_string(tmp.path().join("expected.json")).expect("expected.json"),
        )
        .expect("expected.json parses");
        check(generation, tmp.path(), &expected);
    }
}

fn check(generation: &str, dir: &Path, expected: &Expected) {
    // A token's lifetime is not what this checks: the copy's devices live on.
    rusqlite::Connection::open(dir.join("relay").join("relay.db"))
        .and_then(|db| {
            db.execute(
                "UPDATE devices SET expires_ms = ?1, token_issued_ms = ?2",
                [
                    (chrono::Utc::now() + Duration::days(365)).timestamp_millis(),
                    chrono::Utc::now().timestamp_millis(),
                ],
            )
        })
        .expect("the copy's devices extended");
    let relay = Relay::open(&dir.join("relay"), None)
        .unwrap_or_else(|e| panic!("{generation}: the relay's folder opens: {e}"));
    let identity = Identity {
        user: expected.user.parse().expect("user"),
        device: expected.device.parse().expect("device"),
    };
    let phone = Engine::open(dir.join(format!("{}.db", expected.user)), identity)
        .unwrap_or_else(|e| panic!("{generation}: the phone's database opens: {e}"));

    // Nothing the phone held is lost.
    let cases: Vec<(String, String, String)> = phone
        .list_cases(&CaseFilter {
            limit: 1000,
            ..Default::default()
        })
        .expect("cases")
        .iter()
        .map(|c| (c.id.to_string(), c.title.clone(), c.status.as_str().into()))
        .collect();
    assert_eq!(cases, expected.cases, "{generation}: cases");
    assert_eq!(
        phone
            .list_persons(&Default::default())
            .expect("persons")
            .len(),
        expected.persons,
        "{generation}: persons"
    );
    assert_eq!(
        phone
            .list_places(&Default::default())
            .expect("places")
            .len(),
        expected.places,
        "{generation}: places"
    );
    assert_eq!(phone.outbox_len().expect("pending"), expected.pending);

    // Every recorded request is still understood and answered.
    let caller = relay
        .authenticate(&expected.token)
        .expect("the token works");
    let mut recorded: Vec<PathBuf> = std::fs::read_dir(dir.join("messages"))
        .expect("messages")
        .map(|e| e.expect("entry").path())
        .collect();
    recorded.sort();
    assert!(!recorded.is_empty());
    for path in &recorded {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let route = Route::ALL
            .into_iter()
            .find(|r| name.ends_with(r.name()))
            .unwrap_or_else(|| panic!("{name}: no route"));
        let body = std::fs::read(path).expect("read");
        let request = Request::decode(route, &body)
            .unwrap_or_else(|e| panic!("{generation} {name}: decodes: {e}"));
        relay
            .answer(Some(&caller), request)
            .unwrap_or_else(|e| panic!("{generation} {name}: answered: {e}"));
    }

    // Another protocol version is refused with the message to update, before
    // anything of it is applied.
    let pull = recorded
        .iter()
        .find(|p| p.to_string_lossy().ends_with("pull.cbor"))
        .expect("a recorded pull");
    let Ok(Request::Pull(mut req)) =
        Request::decode(Route::Pull, &std::fs::read(pull).expect("read"))
    else {
        panic!("a pull");
    };
    req.v = gridsync_core::sync::wire::PROTOCOL_VERSION + 1;
    let refused = relay
        .answer(Some(&caller), Request::Pull(req))
        .expect_err("another version");
    assert!(matches!(refused, RelayError::UnsupportedVersion(_)));
    assert!(refused.to_string().contains("update the app"), "{refused}");

    // The phone's unsent work reaches the relay, and a new phone of the
    // community's dispatcher receives all of it.
    let link = LocalTransport::new(&relay);
    sync_with(&phone, &link);
    assert_eq!(phone.outbox_len().expect("pending"), 0, "{generation}");
    let fresh = tempfile::tempdir().expect("temp");
    let (community, _) = enroll(&relay, COMMUNITY, fresh.path());
    sync_with(&community, &LocalTransport::new(&relay));
    let theirs: Vec<String> = community
        .list_cases(&CaseFilter {
            limit: 1000,
            ..Default::default()
        })
        .expect("cases")
        .into_iter()
        .map(|c| c.id.to_string())
        .collect();
    for (id, ..) in &expected.cases {
        assert!(
            theirs.contains(id),
            "{generation}: {id} reached the community"
        );
    }
    for id in &expected.unsent_cases {
        assert!(theirs.contains(id), "{generation}: the unsent {id} arrived");
    }
}
