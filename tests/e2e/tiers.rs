//! Tiers: a town server syncing upward to a district server with the same protocol.

use std::time::{Duration, Instant};

use gridsync_core::sync::wire::{self, ChangeStatus};
use gridsync_core::sync::{self, Transport};
use gridsync_core::{Action, Entry, Role, Status};
use gridsync_tests::{LocalTransport, SimRelay};

use crate::sockets::{enroll, gridsync, start, start_with};
use crate::workflow::{leak, HANDLER, WORKER};

const TOWN: &str = "td-339901001";
const OTHER_TOWN: &str = "td-339901002";
const DISTRICT_DISPATCHER: &str = "dd-339901-1";

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
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
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

#[test]
fn a_relay_is_trusted_only_for_its_own_region() {
    let district = SimRelay::new();
    let town = SimRelay::new();
    let folder = tempfile::tempdir().unwrap();
    // The town server is enrolled upstream for the wrong town.
    let code = district.relay.create_relay_enrollment(OTHER_TOWN).unwrap();
    let up = LocalTransport::new(&district.relay);
    town.relay
        .connect_upstream(&up, "local:", &code, &Default::default())
        .unwrap();
    let link = town.relay.upstream().unwrap().expect("linked");

    let worker = town.enroll(WORKER, folder.path());
    worker.report_case(leak()).unwrap();
    worker.sync().unwrap();
    let round = town.relay.sync_upstream(&link, &up).unwrap();
    assert_eq!((round.pushed, round.not_stored), (0, 1));
    assert!(district.relay.engine().doc_ids().unwrap().is_empty());

    // A phone's code does not make a relay: its pushes of others' changes fail.
    let phone_code = district.relay.create_enrollment(TOWN).unwrap();
    let phone_town = SimRelay::new();
    let up = LocalTransport::new(&district.relay);
    phone_town
        .relay
        .connect_upstream(&up, "local:", &phone_code, &Default::default())
        .unwrap();
    let link = phone_town.relay.upstream().unwrap().expect("linked");
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
