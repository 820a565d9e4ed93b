//! Erasing a person (ADR 0011): the canary scan of every file on the relay, two
//! phones and a restored backup; an offline phone's edit of an erased person
//! refused and purged; a restore from before the erasure that does not bring the
//! person back; the same on PostgreSQL with two nodes.

use std::path::{Path, PathBuf};

use gridsync_core::doc::registry::{NewPerson, PersonEdit};
use gridsync_core::registry::PersonFilter;
use gridsync_core::sync::wire::ChangeStatus;
use gridsync_core::sync::{self, HttpTransport};
use gridsync_core::vault::DeviceKey;
use gridsync_core::{DeviceId, DocId, DocKind, Engine, Identity};
use gridsync_server::relay::{ErasureReason, Relay, Storage};
use gridsync_tests::{LocalTransport, SimDevice, SimRelay};

use crate::access::push_raw;
use crate::sockets::{enroll, enrollment_code, gridsync, start, Server};
use crate::tiers::connect;
use crate::workflow::{DISPATCHER, WORKER};

const GRID: &str = "339901001001001";

/// A valid 18-digit resident ID number (GB 11643 check digit) from 17 digits.
fn resident_id(first17: &str) -> String {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = first17
        .chars()
        .zip(WEIGHTS)
        .map(|(c, w)| c.to_digit(10).expect("a digit") * w)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{first17}{check}")
}

/// Values no other test writes, each one searched for in every file.
struct Canary {
    name: String,
    renamed: String,
    id_number: String,
    phone: String,
    new_phone: String,
    note: String,
}

impl Canary {
    fn new() -> Canary {
        Canary {
            name: "雀鸟甲乙丙丁".into(),
            renamed: "雀鸟戊己庚辛".into(),
            id_number: resident_id("33010619870512731"),
            phone: "13955501234".into(),
            new_phone: "13955504321".into(),
            note: "CANARY-NOTE-7f3e9a1c 独居需每周探访".into(),
        }
    }

    fn strings(&self) -> Vec<&str> {
        vec![
            &self.name,
            &self.renamed,
            &self.id_number,
            &self.phone,
            &self.new_phone,
            &self.note,
        ]
    }

    fn person(&self) -> NewPerson {
        NewPerson {
            grid: GRID.parse().unwrap(),
            name: self.name.clone(),
            id_number: Some(self.id_number.parse().expect("a valid ID number")),
            sex: None,
            born: None,
            phone: Some(self.phone.parse().unwrap()),
            household: None,
            tags: Vec::new(),
            notes: self.note.clone(),
        }
    }

    /// A second and third value in the history.
    fn edit(&self) -> PersonEdit {
        PersonEdit {
            name: Some(self.renamed.clone()),
            phone: Some(Some(self.new_phone.parse().unwrap())),
            ..Default::default()
        }
    }
}

/// Every (file, canary) where a canary is found in a file under `root`.
fn scan(root: &Path, canary: &Canary) -> Vec<(PathBuf, String)> {
    let strings = canary.strings();
    let needles: Vec<&[u8]> = strings.iter().map(|s| s.as_bytes()).collect();
    gridsync_tests::canary::scan(root, &needles)
        .into_iter()
        .map(|(file, i)| (file, strings[i].to_owned()))
        .collect()
}

pub(crate) fn admin(data: &Path, args: &[&str]) -> String {
    let out = gridsync()
        .args(["admin", "--data"])
        .arg(data)
        .args(args)
        .output()
        .expect("gridsync admin");
    assert!(
        out.status.success(),
        "admin {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A phone enrolled over HTTP whose database is encrypted (SQLCipher), as in the app.
pub(crate) fn enroll_encrypted(data: &Path, server: &Server, user: &str, folder: &Path) -> Engine {
    let code = enrollment_code(data, &[], user);
    let device = DeviceId::random();
    let e = sync::enroll(&HttpTransport::new(&server.url), &code, device, "e2e")
        .expect("enroll over HTTP");
    let engine = Engine::open_encrypted(
        folder.join("sealed.db"),
        Identity {
            user: e.user,
            device,
        },
        &DeviceKey::from_bytes([0x3c; 32]),
    )
    .expect("the encrypted phone opens");
    engine.load_directory(&e.directory).unwrap();
    engine.set_server(&server.url, &e.token).unwrap();
    engine
}

fn persons(engine: &Engine) -> Vec<DocId> {
    engine
        .doc_ids()
        .unwrap()
        .into_iter()
        .filter(|d| d.kind() == DocKind::Person)
        .collect()
}

#[test]
fn an_erased_person_is_in_no_file_of_the_relay_the_phones_or_a_restored_backup() {
    let canary = Canary::new();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let folders: Vec<PathBuf> = ["worker", "dispatcher", "sealed"]
        .iter()
        .map(|f| dir.path().join(f))
        .collect();
    for f in &folders {
        std::fs::create_dir_all(f).unwrap();
    }
    let server = start(&data);
    // Two plaintext phones, so a scan of their files would see a leftover, and one
    // encrypted as in the app, checked through its API.
    let worker = enroll(&data, &server, WORKER, &folders[0]);
    let dispatcher = enroll(&data, &server, DISPATCHER, &folders[1]);
    let sealed = enroll_encrypted(&data, &server, WORKER, &folders[2]);
    let sync_all = || {
        for phone in [&worker, &dispatcher, &sealed] {
            let r = phone.sync(&mut |_| {}).expect("sync");
            assert!(r.rejected.is_empty(), "{:?}", r.rejected);
        }
    };

    let id = worker.register_person(canary.person()).unwrap();
    // A neighbour who stays: erasure takes one document, not the grid's.
    let mut other = canary.person();
    other.name = "王秀英".into();
    other.id_number = Some(resident_id("33010619500301002").parse().unwrap());
    other.phone = None;
    other.notes = String::new();
    let stays = worker.register_person(other).unwrap();
    sync_all();
    worker.edit_person(&id, canary.edit()).unwrap();
    sync_all();
    sync_all();
    assert_eq!(dispatcher.get_person(&id).unwrap().name, canary.renamed);
    assert_eq!(sealed.get_person(&id).unwrap().name, canary.renamed);

    // The scan can fail: before the erasure every value is readable in the relay's
    // files and the plaintext phones', the old ones included.
    for root in [&data, &folders[0], &folders[1]] {
        let found = scan(root, &canary);
        for s in canary.strings() {
            assert!(
                found.iter().any(|(_, f)| f == s),
                "{s} not found under {} before the erasure: the scan proves nothing",
                root.display()
            );
        }
    }

    let backups = dir.path().join("backups");
    let before = backups.join("before");
    admin(&data, &["backup", "--to", &before.to_string_lossy()]);

    // Refused: an unknown reason, a case, no confirmation.
    let refused = gridsync()
        .args(["admin", "--data"])
        .arg(&data)
        .args(["erase-person", id.as_str(), "--reason", "bored", "--yes"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("at-request"));
    let case = DocId::new(DocKind::Case);
    let refused = gridsync()
        .args(["admin", "--data"])
        .arg(&data)
        .args([
            "erase-person",
            case.as_str(),
            "--reason",
            "at-request",
            "--yes",
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("only a registry document"));
    let unconfirmed = gridsync()
        .args(["admin", "--data"])
        .arg(&data)
        .args(["erase-person", id.as_str(), "--reason", "at-request"])
        .output()
        .unwrap();
    assert!(!unconfirmed.status.success());
    assert!(dispatcher.get_person(&id).is_ok());

    // Erased while the relay serves; the tombstone goes into erasures.log now.
    let said = admin(
        &data,
        &[
            "erase-person",
            id.as_str(),
            "--reason",
            "at-request",
            "--yes",
            "--backups",
            &backups.to_string_lossy(),
        ],
    );
    assert!(said.contains("erased"), "{said}");
    let log = std::fs::read_to_string(backups.join("erasures.log")).unwrap();
    assert!(
        log.contains(id.as_str()) && log.contains("at-request"),
        "{log}"
    );

    sync_all();
    // Acknowledged: the next pull purges nothing more.
    sync_all();
    for phone in [&worker, &dispatcher, &sealed] {
        assert!(phone.get_person(&id).is_err(), "the person is gone");
        assert_eq!(persons(phone), vec![stays.clone()]);
        assert!(phone
            .list_persons(&PersonFilter::default())
            .unwrap()
            .iter()
            .all(|p| p.name != canary.name && p.name != canary.renamed));
    }
    drop(server);

    // A restore of the backup taken before the erasure applies erasures.log.
    let restored = dir.path().join("restored");
    let said = admin(&restored, &["restore", "--from", &before.to_string_lossy()]);
    assert!(said.contains("1 erasures applied"), "{said}");

    // Nothing readable anywhere: the relay's data folder (killed while serving),
    // the two plaintext phones, the restored relay. The encrypted phone's file is
    // ciphertext; it was checked through its API above.
    let mut leftovers = Vec::new();
    for root in [&data, &folders[0], &folders[1], &restored] {
        leftovers.extend(scan(root, &canary));
    }
    assert!(leftovers.is_empty(), "canaries left: {leftovers:?}");
    // erasures.log names the id, nothing else.
    assert!(scan(&backups, &canary)
        .iter()
        .all(|(f, _)| !f.ends_with("erasures.log")));

    // The restored relay serves without the person, and the neighbour is there.
    let server = start(&restored);
    let late = dir.path().join("late");
    std::fs::create_dir_all(&late).unwrap();
    let newcomer = enroll(&restored, &server, DISPATCHER, &late);
    newcomer.sync(&mut |_| {}).unwrap();
    assert_eq!(persons(&newcomer), vec![stays]);
    assert!(newcomer.get_person(&id).is_err());
}

#[test]
fn an_offline_phone_cannot_bring_an_erased_person_back() {
    let canary = Canary::new();
    let sim = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let worker = sim.enroll(WORKER, dir.path());
    let dispatcher = sim.enroll(DISPATCHER, dir.path());
    let id = worker.register_person(canary.person()).unwrap();
    worker.sync().unwrap();
    dispatcher.sync().unwrap();
    let history: Vec<Vec<u8>> = worker
        .changes_since(&id, &[])
        .unwrap()
        .iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect();

    // The worker edits offline while the person is erased.
    worker.set_online(false);
    worker.edit_person(&id, canary.edit()).unwrap();
    assert!(sim
        .relay
        .erase(&id, ErasureReason::MovedAwayRetention)
        .unwrap());
    assert!(
        !sim.relay.erase(&id, ErasureReason::AtRequest).unwrap(),
        "once"
    );
    assert!(sim.relay.engine().read_doc(&id).unwrap().is_none());

    worker.set_online(true);
    let r = worker.sync().unwrap();
    assert_eq!(r.rejected.len(), 1, "{r:?}");
    assert!(r.rejected[0].1.contains("the record was erased"), "{r:?}");
    assert_eq!(r.purged, 1);
    assert!(worker.get_person(&id).is_err());
    assert!(
        worker
            .rejected_changes()
            .unwrap()
            .iter()
            .all(|(d, _, _)| d != &id),
        "a refused change keeps its bytes: it goes with the document"
    );
    assert_eq!(worker.outbox_pending(usize::MAX).unwrap().len(), 0);
    assert!(dispatcher.sync().unwrap().purged == 1);
    assert!(dispatcher.get_person(&id).is_err());

    // A replay of the person's first change (a phone restored from an old copy)
    // is refused, and that phone told to purge it.
    let replay = push_raw(&dispatcher, &id, history[0].clone());
    assert_eq!(replay.status, ChangeStatus::Rejected);
    assert!(replay.reason.unwrap().contains("erased"));
    assert!(sim.relay.engine().read_doc(&id).unwrap().is_none());
    assert_eq!(sim.relay.store().log_len().unwrap(), 0);
    assert_eq!(dispatcher.sync().unwrap().purged, 0, "it did not hold it");

    // Only a registry document can be erased.
    let case = DocId::new(DocKind::Case);
    assert!(sim.relay.erase(&case, ErasureReason::AtRequest).is_err());
}

/// A device of a relay that is not a [`SimRelay`] (one on PostgreSQL).
fn enroll_at<'a>(relay: &'a Relay, user: &str, folder: &Path) -> SimDevice<'a> {
    let code = relay.create_enrollment(user).expect("code");
    let device = DeviceId::random();
    let transport = LocalTransport::new(relay);
    let e = sync::enroll(&transport, &code, device, "sim-1.0").expect("enroll");
    let engine = Engine::open(
        folder.join(format!("{user}-{device}.db")),
        Identity {
            user: e.user,
            device,
        },
    )
    .expect("device opens");
    engine.load_directory(&e.directory).expect("directory");
    engine.set_server("local:", &e.token).expect("server");
    SimDevice {
        engine,
        transport,
        token: e.token,
        device,
    }
}

#[test]
fn postgres_erasure_reaches_every_node_and_leaves_no_row() {
    let url = gridsync_tests::postgres_database();
    let storage = Storage {
        database_url: Some(url.clone()),
        photos: None,
    };
    let canary = Canary::new();
    let dir = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    let a = Relay::open_with(&a_dir, None, &storage).unwrap();
    let b = Relay::open_with(&b_dir, None, &storage).unwrap();
    let worker = enroll_at(&a, WORKER, dir.path());
    let dispatcher = enroll_at(&b, DISPATCHER, dir.path());
    let id = worker.register_person(canary.person()).unwrap();
    worker.sync().unwrap();
    worker.edit_person(&id, canary.edit()).unwrap();
    worker.sync().unwrap();
    dispatcher.sync().unwrap();
    assert!(dispatcher.get_person(&id).is_ok());
    b.catch_up().unwrap();
    assert!(
        b.engine().read_doc(&id).unwrap().is_some(),
        "node b holds it"
    );

    let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let rows_naming = |db: &mut postgres::Client| -> i64 {
        db.query_one(
            "SELECT (SELECT count(*) FROM log WHERE doc_id = $1)
                  + (SELECT count(*) FROM doc_scope WHERE doc_id = $1)
                  + (SELECT count(*) FROM log WHERE position($2::bytea IN bytes) > 0)",
            &[&id.as_str(), &canary.name.as_bytes()],
        )
        .unwrap()
        .get(0)
    };
    assert!(rows_naming(&mut db) >= 3, "the scan can fail");

    // Erased on node a: the log, the scope and node a's replica at once.
    assert!(a.erase(&id, ErasureReason::AtRequest).unwrap());
    assert_eq!(rows_naming(&mut db), 0);
    let tombstone: (String, i64) = db
        .query_one(
            "SELECT reason, erased_ms FROM erased WHERE doc_id = $1",
            &[&id.as_str()],
        )
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(tombstone.0, "at-request");
    assert!(a.engine().read_doc(&id).unwrap().is_none());
    // VACUUM (FULL) rewrote the tables: no dead tuple of the log is left.
    let dead: i64 = db
        .query_one(
            "SELECT coalesce(n_dead_tup, 0) FROM pg_stat_user_tables WHERE relname = 'log'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(dead, 0);

    // Node b's replica forgets it when it catches up; its device purges it.
    b.catch_up().unwrap();
    assert!(b.engine().read_doc(&id).unwrap().is_none());
    assert_eq!(dispatcher.sync().unwrap().purged, 1);
    assert!(dispatcher.get_person(&id).is_err());
    assert_eq!(worker.sync().unwrap().purged, 1);
    assert!(worker.get_person(&id).is_err());
    assert_eq!(rows_naming(&mut db), 0);
}

#[test]
fn erasures_travel_between_a_town_and_its_district_both_ways() {
    use gridsync_core::sync::{wire, Transport};
    const TOWN: &str = "td-339901001";
    // The district's administrator keeps the district's base data on her phone
    // (a district dispatcher's phone receives none of it).
    const DISTRICT_ADMIN: &str = "admin";
    let canary = Canary::new();
    let district = SimRelay::new();
    let town = SimRelay::new();
    let folder = tempfile::tempdir().unwrap();
    let up = LocalTransport::new(&district.relay);
    let code = district.relay.create_relay_enrollment(TOWN).unwrap();
    let link = connect(&town, &up, &code);
    let worker = town.enroll(WORKER, folder.path());
    let district_phone = district.enroll(DISTRICT_ADMIN, folder.path());

    let mine = worker.register_person(canary.person()).unwrap();
    let mut other = canary.person();
    other.id_number = Some(resident_id("33010619500301002").parse().unwrap());
    let theirs = worker.register_person(other).unwrap();
    worker.sync().unwrap();
    town.relay.sync_upstream(&link, &up).unwrap();
    district_phone.sync().unwrap();
    assert!(district_phone.get_person(&mine).is_ok());
    assert!(district_phone.get_person(&theirs).is_ok());

    // The town's erasure goes up with its next round; the district's phone purges.
    town.relay.erase(&mine, ErasureReason::AtRequest).unwrap();
    let round = town.relay.sync_upstream(&link, &up).unwrap();
    assert_eq!(round.erased_up, 1, "{round:?}");
    assert!(district.relay.store().is_erased(&mine).unwrap());
    assert!(district.relay.engine().read_doc(&mine).unwrap().is_none());
    assert_eq!(district_phone.sync().unwrap().purged, 1);
    assert!(district_phone.get_person(&mine).is_err());
    // Sent once.
    assert_eq!(town.relay.sync_upstream(&link, &up).unwrap().erased_up, 0);

    // The district's erasure comes down in the town's pull.
    district
        .relay
        .erase(&theirs, ErasureReason::MovedAwayRetention)
        .unwrap();
    let round = town.relay.sync_upstream(&link, &up).unwrap();
    assert_eq!(round.erased_down, 1, "{round:?}");
    assert!(town.relay.store().is_erased(&theirs).unwrap());
    assert!(town.relay.engine().read_doc(&theirs).unwrap().is_none());
    assert_eq!(worker.sync().unwrap().purged, 2);
    assert!(worker.doc_ids().unwrap().is_empty());
    assert_eq!(town.relay.store().log_len().unwrap(), 0);
    assert_eq!(district.relay.store().log_len().unwrap(), 0);

    // A phone sends no erasures.
    let body = wire::encode(&wire::PushRequest {
        v: wire::PROTOCOL_VERSION,
        changes: Vec::new().into(),
        erased: vec![DocId::new(DocKind::Person)],
    });
    assert!(LocalTransport::new(&town.relay)
        .post("/v1/push", Some(&worker.token), body)
        .is_err());
}
