//! Tiers: a town server syncing upward to a district server with the same protocol,
//! and four servers in a chain (city → district → town → community).

use std::cell::Cell;
use std::path::Path;
use std::time::{Duration, Instant};

use gridsync_core::sync::wire::{self, ChangeStatus};
use gridsync_core::sync::{self, Transport, TransportError};
use gridsync_core::{Action, DocId, Entry, Role, Status};
use gridsync_server::relay::store::{UpstreamRefusal, Visibility};
use gridsync_server::relay::UpstreamLink;
use gridsync_tests::{LocalTransport, SimRelay};

use crate::console::{set_password, Console};
use crate::sockets::{enroll, gridsync, start, start_with, Server};
use crate::workflow::{leak, DISPATCHER, HANDLER, WORKER};

const TOWN: &str = "td-339901001";
const OTHER_TOWN: &str = "td-339901002";
const DISTRICT_DISPATCHER: &str = "dd-339901-1";
/// The district server's account at the city.
const DISTRICT: &str = "dd-339901-1";
/// A district dispatcher working at the district's own server.
const DISTRICT_PHONE: &str = "dd-339901-2";
/// The city's dispatcher (市调度员), in the city directory of [`city_directory`].
const CITY_DISPATCHER: &str = "sd-3399-1";
/// A worker of another community, enrolled at the community server by mistake:
/// what she reports is not the community's to send upward.
const STRAY_WORKER: &str = "w-339901001002001";

fn admin(data: &std::path::Path, args: &[&str]) -> String {
    let out = gridsync()
        .args(["admin", "--data"])
        .arg(data)
        .args(args)
        .output()
        .expect("gridsync admin");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Wait (bounded) until `done` holds.
pub(crate) fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting: {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_town_report_reaches_the_district_and_a_district_dispatch_reaches_the_town_devices() {
    let dir = tempfile::tempdir().unwrap();
    let (district_data, town_data) = (dir.path().join("district"), dir.path().join("town"));
    let district = start(&district_data);
    let code = admin(&district_data, &["enroll", "--user", TOWN, "--relay"]);
    let said = admin(
        &town_data,
        &["upstream", "--url", &district.url, "--code", &code],
    );
    assert!(said.contains(TOWN), "{said}");
    let town = start_with(&town_data, &["--upstream-interval-secs", "1"]);

    let worker = enroll(&town_data, &town, WORKER, dir.path());
    let handler = enroll(&town_data, &town, HANDLER, dir.path());
    let district_phone = enroll(&district_data, &district, DISTRICT_DISPATCHER, dir.path());

    let (id, photo) = crate::photos::report_with_photo(&worker);
    eventually("the report reaches the district", || {
        district_phone.sync(&mut |_| {}).unwrap();
        district_phone.get_case(&id).is_ok()
    });
    eventually("its photo reaches the district", || {
        district_phone.fetch_photo(&photo).is_ok()
    });
    assert_eq!(
        district_phone.photo(&photo).unwrap(),
        worker.photo(&photo).unwrap()
    );
    district_phone.act(&id, Action::Accept).unwrap();
    district_phone
        .dispatch(&id, "water".parse().unwrap(), None)
        .unwrap();
    district_phone.sync(&mut |_| {}).unwrap();

    eventually("the district's dispatch reaches the town's handler", || {
        handler.sync(&mut |_| {}).unwrap();
        handler
            .get_case(&id)
            .is_ok_and(|c| c.state.status == Status::Dispatched)
    });

    // A photo attached on the district's console comes down to the town's phones.
    set_password(&district_data, DISTRICT_DISPATCHER, "qingxi-2026-district");
    let mut console = Console::new(&district);
    assert_eq!(
        console
            .sign_in(DISTRICT_DISPATCHER, "qingxi-2026-district")
            .status,
        303
    );
    let csrf = console.csrf();
    let jpeg = crate::photos::noisy_jpeg(11, 320, 240, 85);
    let attached = console.upload(&format!("/console/cases/{id}/photo"), &csrf, &jpeg);
    assert_eq!(attached.status, 303, "{}", attached.body);
    let mut district_photo = None;
    eventually(
        "the district console's photo reaches the town's handler",
        || {
            handler.sync(&mut |_| {}).unwrap();
            let case = handler.get_case(&id).unwrap();
            district_photo = case
                .doc
                .photos
                .iter()
                .map(|p| p.hash.clone())
                .find(|h| *h != photo);
            district_photo
                .as_ref()
                .is_some_and(|h| handler.fetch_photo(h).is_ok())
        },
    );
    let district_photo = district_photo.unwrap();
    district_phone.sync(&mut |_| {}).unwrap();
    district_phone.fetch_photo(&district_photo).unwrap();
    assert_eq!(
        handler.photo(&district_photo).unwrap(),
        district_phone.photo(&district_photo).unwrap()
    );
    handler
        .act(
            &id,
            Action::Feedback {
                result: "已修复".into(),
            },
        )
        .unwrap();
    handler.sync(&mut |_| {}).unwrap();
    eventually("the handling reaches the district", || {
        district_phone.sync(&mut |_| {}).unwrap();
        district_phone.get_case(&id).unwrap().state.status == Status::Handled
    });
    worker.sync(&mut |_| {}).unwrap();
    let case = worker.get_case(&id).unwrap();
    assert_eq!(case.state.status, Status::Handled);
    let actors: Vec<_> = case.doc.timeline.iter().map(|e| e.actor.as_str()).collect();
    assert_eq!(
        actors,
        [WORKER, DISTRICT_DISPATCHER, DISTRICT_DISPATCHER, HANDLER]
    );
}

/// Connect `town` to the server behind `up` with `code` (from
/// `create_relay_enrollment` there); the link its rounds go by.
pub(crate) fn connect(town: &SimRelay, up: &LocalTransport<'_>, code: &str) -> UpstreamLink {
    town.relay
        .connect_upstream(up, "local:", code, &Default::default())
        .unwrap();
    town.relay.upstream().unwrap().expect("linked")
}

#[test]
fn a_relay_is_trusted_only_for_its_own_region() {
    let district = SimRelay::new();
    let town = SimRelay::new();
    let folder = tempfile::tempdir().unwrap();
    // The town server is enrolled upstream for the wrong town.
    let code = district.relay.create_relay_enrollment(OTHER_TOWN).unwrap();
    let up = LocalTransport::new(&district.relay);
    let link = connect(&town, &up, &code);

    let worker = town.enroll(WORKER, folder.path());
    worker.report_case(leak()).unwrap();
    worker.sync().unwrap();
    let round = town.relay.sync_upstream(&link, &up).unwrap();
    assert_eq!((round.pushed, round.not_stored), (0, 1));
    assert!(district.relay.engine().doc_ids().unwrap().is_empty());
    // Kept with the district's reason for the console, and not sent again.
    let again = town.relay.sync_upstream(&link, &up).unwrap();
    assert_eq!((again.not_stored, again.retried), (0, 0));
    let refused = refusals(&town);
    assert_eq!(refused.len(), 1);
    assert!(!refused[0].deferred && refused[0].attempts == 1);
    assert_eq!(
        refused[0].reason,
        "the document is outside the relay's region"
    );

    // A phone's code does not make a relay: its pushes of others' changes fail.
    let phone_code = district.relay.create_enrollment(TOWN).unwrap();
    let phone_town = SimRelay::new();
    let up = LocalTransport::new(&district.relay);
    let link = connect(&phone_town, &up, &phone_code);
    let worker = phone_town.enroll(WORKER, folder.path());
    worker.report_case(leak()).unwrap();
    worker.sync().unwrap();
    let round = phone_town.relay.sync_upstream(&link, &up).unwrap();
    assert_eq!((round.pushed, round.not_stored), (0, 1));
}

/// Push raw changes with a token, as a relay does.
fn push_as_relay(
    district: &SimRelay,
    token: &str,
    doc: &gridsync_core::DocId,
    bytes: Vec<Vec<u8>>,
) -> Vec<wire::ChangeResult> {
    let body = wire::encode(&wire::PushRequest {
        v: wire::PROTOCOL_VERSION,
        changes: bytes
            .into_iter()
            .map(|bytes| wire::WireChange {
                doc: doc.clone(),
                bytes,
            })
            .collect(),
        erased: Vec::new(),
    });
    let answer = LocalTransport::new(&district.relay)
        .post("/v1/push", Some(token), body)
        .expect("push answered");
    wire::decode::<wire::PushResponse>(&answer).unwrap().results
}

#[test]
fn a_relay_vouches_for_real_authors_only_and_never_for_this_servers_devices() {
    let district = SimRelay::new();
    let town = SimRelay::new();
    let folder = tempfile::tempdir().unwrap();
    let code = district.relay.create_relay_enrollment(TOWN).unwrap();
    let relay = sync::enroll(
        &LocalTransport::new(&district.relay),
        &code,
        gridsync_core::DeviceId::random(),
        "town",
    )
    .unwrap();

    // A town phone's report, forwarded: the relay vouches for its author.
    let worker = town.enroll(WORKER, folder.path());
    let id = worker.report_case(leak()).unwrap();
    let report: Vec<_> = worker
        .outbox_pending(usize::MAX)
        .unwrap()
        .into_iter()
        .map(|o| o.bytes)
        .collect();
    let r = push_as_relay(&district, &relay.token, &id, report);
    assert_eq!(r[0].status, ChangeStatus::Accepted, "{:?}", r[0].reason);

    // An entry naming a dispatcher of another town, forged on the way up.
    let first = worker.get_case(&id).unwrap().doc.timeline[0].id.clone();
    let forged = crate::access::forged_entry(
        &worker,
        &id,
        Entry {
            id: "forged".into(),
            after: Some(first),
            actor: "cd-339901002001".parse().unwrap(),
            role: Role::CommunityDispatcher,
            at: chrono::Utc::now(),
            action: Action::Accept,
        },
    );
    let r = push_as_relay(&district, &relay.token, &id, vec![forged]);
    assert_eq!(r[0].status, ChangeStatus::Rejected);
    assert_eq!(
        r[0].reason.as_deref(),
        Some("an entry, note or photo names someone who could not have made it")
    );

    // A change made on one of the district's own devices is not the town's to forward.
    let dispatcher = district.enroll("cd-339901001001", folder.path());
    dispatcher.sync().unwrap();
    dispatcher.act(&id, Action::Accept).unwrap();
    let theirs = dispatcher.outbox_pending(usize::MAX).unwrap().remove(0);
    let r = push_as_relay(&district, &relay.token, &id, vec![theirs.bytes]);
    assert_eq!(
        r[0].reason.as_deref(),
        Some("the change was made on a device of this server")
    );
}

/// Enroll the server in `data` at `upper` as a relay for `account`
/// (`gridsync admin enroll --relay` there, `gridsync admin upstream` here), then
/// start it syncing upward every second.
fn start_below(upper_data: &Path, upper: &Server, data: &Path, account: &str) -> Server {
    let code = admin(upper_data, &["enroll", "--user", account, "--relay"]);
    let said = admin(data, &["upstream", "--url", &upper.url, "--code", &code]);
    assert!(said.contains(account), "{said}");
    start_with(data, &["--upstream-interval-secs", "1"])
}

/// The sample district under a city (清川市, 3399) with a city dispatcher: the
/// directory the city's server is started with.
fn city_directory() -> String {
    let mut d: serde_json::Value = serde_json::from_str(gridsync_server::SAMPLE_DIRECTORY).unwrap();
    d["name"] = "清川市".into();
    let city = serde_json::json!({"code": "3399", "name": "清川市", "level": "city"});
    d["regions"].as_array_mut().unwrap().insert(0, city);
    let dispatcher = serde_json::json!({
        "id": CITY_DISPATCHER, "name": "市指挥中心值班员", "role": "city_dispatcher", "region": "3399"
    });
    d["users"].as_array_mut().unwrap().push(dispatcher);
    d.to_string()
}

#[test]
fn four_tiers_carry_a_community_report_to_the_city_and_a_city_dispatch_down_to_the_handler() {
    let dir = tempfile::tempdir().unwrap();
    let data = |tier: &str| dir.path().join(tier);
    let file = dir.path().join("city-directory.json");
    std::fs::write(&file, city_directory()).unwrap();
    let city = start_with(&data("city"), &["--directory", file.to_str().unwrap()]);
    let district = start_below(&data("city"), &city, &data("district"), DISTRICT);
    let town = start_below(&data("district"), &district, &data("town"), TOWN);
    let community = start_below(&data("town"), &town, &data("community"), DISPATCHER);

    let worker = enroll(&data("community"), &community, WORKER, dir.path());
    let handler = enroll(&data("community"), &community, HANDLER, dir.path());
    let district_phone = enroll(&data("district"), &district, DISTRICT_PHONE, dir.path());
    let city_phone = enroll(&data("city"), &city, CITY_DISPATCHER, dir.path());

    // The city's directory came down the chain to the community's phones.
    eventually("the city directory reaches the grid worker", || {
        worker.sync(&mut |_| {}).unwrap();
        worker
            .directory()
            .unwrap()
            .user(&CITY_DISPATCHER.parse().unwrap())
            .is_some()
    });

    // Up: a grid worker's report with a photo, community → town → district, where
    // the district's dispatcher sends it up (上报) until it is the district's; the
    // city's dispatcher acts on it there (a case goes up to the district at most,
    // ADR 0016).
    let (id, photo) = crate::photos::report_with_photo(&worker);
    eventually(
        "the report and the city directory reach the district",
        || {
            district_phone.sync(&mut |_| {}).unwrap();
            let knows_city = district_phone
                .directory()
                .unwrap()
                .region(&"3399".parse().unwrap())
                .is_some();
            knows_city && district_phone.get_case(&id).is_ok()
        },
    );
    for _ in 0..2 {
        let reason = "涉及跨街道协调".into();
        district_phone
            .act(&id, Action::Escalate { reason })
            .unwrap();
    }
    let sent_up = district_phone.get_case(&id).unwrap();
    assert_eq!(sent_up.state.level, gridsync_core::RegionLevel::District);
    let further = Action::Escalate {
        reason: "再上报".into(),
    };
    let err = district_phone.act(&id, further).unwrap_err();
    assert!(err.to_string().contains("district level"), "{err}");
    district_phone.sync(&mut |_| {}).unwrap();
    eventually("the report, sent up, reaches the city", || {
        city_phone.sync(&mut |_| {}).unwrap();
        city_phone
            .get_case(&id)
            .is_ok_and(|c| c.state.level == gridsync_core::RegionLevel::District)
    });
    eventually("its photo reaches the city", || {
        city_phone.fetch_photo(&photo).is_ok()
    });
    assert_eq!(
        city_phone.photo(&photo).unwrap(),
        worker.photo(&photo).unwrap()
    );

    // Down: the city accepts, adds a photo of its own and dispatches to water.
    city_phone.act(&id, Action::Accept).unwrap();
    let city_photo = city_phone
        .ingest_photo(
            &crate::photos::noisy_jpeg(7, 640, 480, 85),
            Some("IMG_0100.jpg"),
        )
        .unwrap()
        .hash;
    city_phone.attach_photo(&id, city_photo.clone()).unwrap();
    city_phone
        .dispatch(&id, "water".parse().unwrap(), None)
        .unwrap();
    city_phone.sync(&mut |_| {}).unwrap();
    eventually(
        "the city's dispatch reaches the handler in the community",
        || {
            handler.sync(&mut |_| {}).unwrap();
            handler
                .get_case(&id)
                .is_ok_and(|c| c.state.status == Status::Dispatched)
        },
    );
    eventually(
        "the city's photo reaches the handler in the community",
        || handler.fetch_photo(&city_photo).is_ok(),
    );
    assert_eq!(
        handler.photo(&city_photo).unwrap(),
        city_phone.photo(&city_photo).unwrap()
    );

    // And the handling goes all the way up again.
    handler
        .act(
            &id,
            Action::Feedback {
                result: "已修复".into(),
            },
        )
        .unwrap();
    handler.sync(&mut |_| {}).unwrap();
    eventually("the handling reaches the city", || {
        city_phone.sync(&mut |_| {}).unwrap();
        city_phone.get_case(&id).unwrap().state.status == Status::Handled
    });
    let case = city_phone.get_case(&id).unwrap();
    let actors: Vec<_> = case.doc.timeline.iter().map(|e| e.actor.as_str()).collect();
    assert_eq!(
        actors,
        [
            WORKER,
            DISTRICT_PHONE,
            DISTRICT_PHONE,
            CITY_DISPATCHER,
            CITY_DISPATCHER,
            HANDLER
        ]
    );

    // A report the town refuses (its author's grid is outside the community) is
    // shown on the community's console with the town's reason.
    let stray = enroll(&data("community"), &community, STRAY_WORKER, dir.path());
    stray.report_case(leak()).unwrap();
    stray.sync(&mut |_| {}).unwrap();
    set_password(&data("community"), "admin", "community-2026-admin");
    let mut console = Console::new(&community);
    assert_eq!(console.sign_in("admin", "community-2026-admin").status, 303);
    eventually("the refusal is on the community's console", || {
        let page = console.get("/console/devices").body;
        page.contains("id=\"upstream-refusals\"") && page.contains("已拒绝")
    });
    let page = console.get("/console/devices").body;
    assert!(page.contains("上级未接收的变更"), "{page}");
    assert!(
        !page.contains(id.as_str()),
        "the accepted case is not listed"
    );
    let town_console = {
        set_password(&data("town"), "admin", "town-2026-admin");
        let mut c = Console::new(&town);
        assert_eq!(c.sign_in("admin", "town-2026-admin").status, 303);
        c.get("/console/devices").body
    };
    assert!(
        town_console.contains("上级已接收全部变更"),
        "{town_console}"
    );
    // The city has no upstream: no such section.
    set_password(&data("city"), "admin", "city-2026-admin");
    let mut c = Console::new(&city);
    assert_eq!(c.sign_in("admin", "city-2026-admin").status, 303);
    assert!(!c.get("/console/devices").body.contains("upstream-refusals"));
}

/// The district as the town reaches it, losing the first change of one document
/// from the next `lose` pushes that carry it (as if it had been cut from the
/// request on the way: the answer does not mention it).
struct Lossy<'a> {
    district: LocalTransport<'a>,
    doc: DocId,
    lose: Cell<u32>,
}

impl Transport for Lossy<'_> {
    fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError> {
        if path != "/v1/push" || self.lose.get() == 0 {
            return self.district.post(path, token, body);
        }
        let mut request: wire::PushRequest = wire::decode(&body).unwrap();
        if let Some(at) = request.changes.iter().position(|c| c.doc == self.doc) {
            let mut changes = request.changes.into_vec();
            changes.remove(at);
            request.changes = wire::Changes::new(changes, request.v);
            self.lose.set(self.lose.get() - 1);
        }
        self.district.post(path, token, wire::encode(&request))
    }
}

/// What the town's console would list, for the whole district.
fn refusals(town: &SimRelay) -> Vec<UpstreamRefusal> {
    let everything = Visibility {
        registry: true,
        region: Some("339901".parse().unwrap()),
        dept: None,
    };
    let (list, total) = town
        .relay
        .store()
        .upstream_refusals(&everything, 100)
        .unwrap();
    assert_eq!(total, list.len() as u64);
    list
}

#[test]
fn a_change_the_upstream_did_not_place_is_sent_again_until_it_is_stored() {
    let district = SimRelay::new();
    let town = SimRelay::new();
    let folder = tempfile::tempdir().unwrap();
    let up = LocalTransport::new(&district.relay);
    let code = district.relay.create_relay_enrollment(TOWN).unwrap();
    let link = connect(&town, &up, &code);
    let worker = town.enroll(WORKER, folder.path());
    let id = worker.report_case(leak()).unwrap();
    worker.add_note(&id, "井盖已设置警示").unwrap();
    worker.sync().unwrap();

    // The report is lost on the way twice: the note depends on it.
    let lossy = Lossy {
        district: LocalTransport::new(&district.relay),
        doc: id.clone(),
        lose: Cell::new(2),
    };
    let first = town.relay.sync_upstream(&link, &lossy).unwrap();
    assert_eq!((first.pushed, first.not_stored, first.retried), (0, 2, 0));
    let second = town.relay.sync_upstream(&link, &lossy).unwrap();
    assert_eq!(
        (second.pushed, second.not_stored, second.retried),
        (0, 2, 2)
    );
    // Both wait, each with why: the report was not answered, the note depends on it.
    let waiting = refusals(&town);
    assert_eq!(waiting.len(), 2);
    assert!(waiting
        .iter()
        .all(|r| r.doc == id && r.retried() && r.attempts == 2));
    let mut reasons: Vec<_> = waiting.iter().map(|r| r.reason.as_str()).collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "depends on a change the upstream does not have yet",
            "the upstream's answer did not mention it"
        ]
    );
    assert!(district.relay.engine().doc_ids().unwrap().is_empty());

    let third = town.relay.sync_upstream(&link, &lossy).unwrap();
    assert_eq!((third.pushed, third.not_stored, third.retried), (2, 0, 2));
    assert!(refusals(&town).is_empty());
    let dispatcher = district.enroll(DISTRICT_DISPATCHER, folder.path());
    dispatcher.sync().unwrap();
    assert_eq!(dispatcher.get_case(&id).unwrap().doc.notes.len(), 1);
}

#[test]
fn a_change_the_upstream_never_places_is_given_up_after_some_rounds() {
    let district = SimRelay::new();
    let town = SimRelay::new();
    let folder = tempfile::tempdir().unwrap();
    let code = district.relay.create_relay_enrollment(TOWN).unwrap();
    town.relay
        .connect_upstream(
            &LocalTransport::new(&district.relay),
            "local:",
            &code,
            &Default::default(),
        )
        .unwrap();
    let link = town.relay.upstream().unwrap().expect("linked");
    let worker = town.enroll(WORKER, folder.path());
    let id = worker.report_case(leak()).unwrap();
    worker.add_note(&id, "井盖已设置警示").unwrap();
    worker.sync().unwrap();

    // The report is lost on the way every time.
    let lossy = Lossy {
        district: LocalTransport::new(&district.relay),
        doc: id.clone(),
        lose: Cell::new(u32::MAX),
    };
    let sent_again: Vec<u64> = (0..15)
        .map(|_| town.relay.sync_upstream(&link, &lossy).unwrap().retried)
        .collect();
    // Sent again on nine more rounds, then no more; still listed, as given up.
    assert_eq!(sent_again, [0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0]);
    let list = refusals(&town);
    assert_eq!(list.len(), 2);
    assert!(list
        .iter()
        .all(|r| r.deferred && !r.retried() && r.attempts == 10));
}

/// A link that drops every photo upload.
struct NoPhotoUploads<'a>(LocalTransport<'a>);

impl Transport for NoPhotoUploads<'_> {
    fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError> {
        if path == "/v1/blob/put" {
            return Err(TransportError::Network("cut".into()));
        }
        self.0.post(path, token, body)
    }
}

#[test]
fn a_photo_the_upstream_does_not_have_is_asked_for_again_only_after_a_wait() {
    let district = SimRelay::new();
    let town = SimRelay::new();
    let folder = tempfile::tempdir().unwrap();
    let up = LocalTransport::new(&district.relay);
    let code = district.relay.create_relay_enrollment(TOWN).unwrap();
    let link = connect(&town, &up, &code);
    let worker = town.enroll(WORKER, folder.path());
    let id = worker.report_case(leak()).unwrap();
    worker.sync().unwrap();
    town.relay.sync_upstream(&link, &up).unwrap();

    // At the district a dispatcher attaches a photo; her change goes up, the
    // photo itself does not.
    let dispatcher = district.enroll(DISTRICT_DISPATCHER, folder.path());
    dispatcher.sync().unwrap();
    let photo = dispatcher
        .ingest_photo(&crate::photos::camera_jpeg(), Some("IMG_0003.jpg"))
        .unwrap()
        .hash;
    dispatcher.attach_photo(&id, photo.clone()).unwrap();
    let cut = NoPhotoUploads(LocalTransport::new(&district.relay));
    assert!(sync::sync(&dispatcher.engine, &cut, &mut |_| {}).is_err());

    // The town learns of it and asks for it (display image and thumbnail): not
    // there. The next rounds do not ask again.
    let first = town.relay.sync_upstream(&link, &up).unwrap();
    assert_eq!(
        (first.pulled, first.photos_down, first.photos_missed),
        (1, 0, 2)
    );
    dispatcher.sync().unwrap();
    for _ in 0..3 {
        let next = town.relay.sync_upstream(&link, &up).unwrap();
        assert_eq!((next.photos_down, next.photos_missed), (0, 0));
    }
}
