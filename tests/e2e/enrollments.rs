//! Enrollment at scale through the console over a real `gridsync serve`: a town's
//! administrator issues codes for a whole community of 300-odd workers at once,
//! gets them as a sheet of QR codes whose links read back, and every code enrolls
//! a phone through the protocol exactly once; the list shows them used; an
//! outstanding code withdrawn stops working; a dispatcher, codes for another town
//! and codes for an administrator are refused.

use gridsync_core::sync::{self, EnrollmentLink, HttpTransport, SyncError};
use gridsync_core::DeviceId;

use crate::console::{set_password, signed_in, Console, PASSWORD};
use crate::sockets::start_with;
use crate::workflow::WORKER;

const COMMUNITY: &str = "339901001001";
/// An administrator placed at the town (added to the test's directory).
const TOWN_ADMIN: &str = "admin-339901001";
/// The district's administrator, in the sample directory.
const ADMIN: &str = "admin";

/// The sample directory with 300 more grids (and a worker in each) in one
/// community: a district's rollout in miniature.
fn big_directory(path: &std::path::Path) {
    let mut file: serde_json::Value =
        serde_json::from_str(include_str!("../../core/data/sample-directory.json")).unwrap();
    let (mut grids, mut workers) = (Vec::new(), Vec::new());
    for n in 0..300 {
        let grid = format!("{COMMUNITY}{:03}", 600 + n);
        grids.push(
            serde_json::json!({"code": grid, "name": format!("扩展网格{n}"), "level": "grid"}),
        );
        workers.push(serde_json::json!({
            "id": format!("w-{grid}"), "name": format!("网格员{n}"),
            "role": "grid_worker", "region": grid,
        }));
    }
    workers.push(serde_json::json!({
        "id": TOWN_ADMIN, "name": "临江街道管理员", "role": "admin", "region": "339901001",
    }));
    let regions = file["regions"].as_array_mut().unwrap();
    let at = regions.iter().position(|r| r["code"] == COMMUNITY).unwrap();
    regions.splice(at + 1..at + 1, grids);
    file["users"].as_array_mut().unwrap().extend(workers);
    std::fs::write(path, file.to_string()).unwrap();
}

/// Each card's enrollment link, from the sheet.
fn links(sheet: &str) -> Vec<EnrollmentLink> {
    sheet
        .split("data-link=\"")
        .skip(1)
        .map(|s| {
            let raw = s.split('"').next().unwrap().replace("&amp;", "&");
            EnrollmentLink::parse(&raw).expect("every card's link reads back")
        })
        .collect()
}

#[test]
fn a_town_issues_codes_for_a_whole_community_and_each_enrolls_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let directory = dir.path().join("directory.json");
    big_directory(&directory);
    let server = start_with(&data, &["--directory", directory.to_str().unwrap()]);
    let town = signed_in(&server, &data, TOWN_ADMIN);
    let csrf = town.csrf();

    let sheet = town.post(
        "/console/enrollments",
        &[
            ("csrf", &csrf),
            ("region", COMMUNITY),
            ("user", ""),
            ("server", &server.url),
        ],
    );
    assert_eq!(sheet.status, 200, "{}", sheet.body);
    let links = links(&sheet.body);
    // Every worker of the community's grids and its dispatcher.
    assert!(links.len() > 300, "{} codes", links.len());
    assert_eq!(
        sheet.body.matches("<svg").count(),
        links.len(),
        "a QR code per card"
    );
    assert!(links.iter().all(|l| l.server == server.url));

    // A script redeems them all through the protocol; each works once.
    let transport = HttpTransport::new(&server.url);
    let mut users = std::collections::HashSet::new();
    for link in &links {
        let e = sync::enroll(&transport, &link.code, DeviceId::random(), "rollout")
            .expect("a fresh code enrolls");
        assert!(e.user.as_str().contains(COMMUNITY) || e.user.as_str() == "cd-339901001001");
        users.insert(e.user);
    }
    assert_eq!(users.len(), links.len(), "one code per person");
    for link in links.iter().take(5) {
        match sync::enroll(&transport, &link.code, DeviceId::random(), "again") {
            Err(SyncError::Unauthorized { .. }) => {}
            other => panic!("a used code must be refused: {:?}", other.map(|e| e.user)),
        }
    }
    let list = town.get("/console/enrollments");
    assert_eq!(
        list.body.matches("data-state=\"used\"").count(),
        links.len()
    );

    // One more, withdrawn before use: it enrolls nothing.
    let one = town.post(
        "/console/enrollments",
        &[
            ("csrf", &csrf),
            ("region", ""),
            ("user", "w-339901001001001"),
            ("server", &server.url),
        ],
    );
    let spare = links_of_one(&one.body);
    let list = town.get("/console/enrollments");
    let hash = list
        .body
        .split("name=\"code\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the outstanding code's withdraw form")
        .to_owned();
    let gone = town.post(
        "/console/enrollments/revoke",
        &[("csrf", &csrf), ("code", &hash)],
    );
    assert_eq!(gone.status, 303);
    assert!(town
        .get("/console/enrollments")
        .body
        .contains("data-state=\"withdrawn\""));
    assert!(matches!(
        sync::enroll(&transport, &spare.code, DeviceId::random(), "late"),
        Err(SyncError::Unauthorized { .. })
    ));

    // A dispatcher does not issue codes; a town's administrator does not issue
    // them for another town, and no one issues them for an administrator.
    let community = signed_in(&server, &data, "cd-339901001001");
    let refused = community.post(
        "/console/enrollments",
        &[
            ("csrf", &community.csrf()),
            ("region", COMMUNITY),
            ("user", ""),
            ("server", &server.url),
        ],
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
    let elsewhere = town.post(
        "/console/enrollments",
        &[
            ("csrf", &csrf),
            ("region", "339901002"),
            ("user", ""),
            ("server", &server.url),
        ],
    );
    assert_eq!(elsewhere.status, 403);
    let district = signed_in(&server, &data, ADMIN);
    let for_admin = district.post(
        "/console/enrollments",
        &[
            ("csrf", &district.csrf()),
            ("region", ""),
            ("user", TOWN_ADMIN),
            ("server", &server.url),
        ],
    );
    assert_eq!(for_admin.status, 403, "{}", for_admin.body);
    let town_dispatcher = signed_in(&server, &data, "td-339901001");
    assert_eq!(town_dispatcher.get("/console/enrollments").status, 403);
    let bad_server = town.post(
        "/console/enrollments",
        &[
            ("csrf", &csrf),
            ("region", COMMUNITY),
            ("user", ""),
            ("server", "ftp://x"),
        ],
    );
    assert_eq!(bad_server.status, 400);
}

fn links_of_one(sheet: &str) -> EnrollmentLink {
    let mut all = links(sheet);
    assert_eq!(all.len(), 1, "{sheet}");
    all.remove(0)
}

/// A worker who leaves is disabled in one action: her phone is told to erase itself
/// at its next sync, her unused code stops working, she signs in and is issued
/// codes no more; enabled again, she enrolls anew.
#[test]
fn a_worker_who_leaves_is_disabled_in_one_action() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let server = crate::sockets::start(&data);
    let worker = crate::sockets::enroll(&data, &server, WORKER, dir.path());
    worker.report_case(crate::workflow::leak()).unwrap();
    worker.sync(&mut |_| {}).unwrap();
    let town = signed_in(&server, &data, ADMIN);
    let csrf = town.csrf();
    let issue = |target: (&str, &str)| {
        town.post(
            "/console/enrollments",
            &[("csrf", &csrf), target, ("server", &server.url)],
        )
    };
    let spare = links_of_one(&issue(("user", WORKER)).body);
    set_password(&data, WORKER, PASSWORD);

    // Not without saying her unsent work goes with her phone.
    let unconfirmed = town.post(
        "/console/users/disable",
        &[("csrf", &csrf), ("user", WORKER)],
    );
    assert_eq!(unconfirmed.status, 400);
    let done = town.post(
        "/console/users/disable",
        &[("csrf", &csrf), ("user", WORKER), ("confirm", "yes")],
    );
    assert_eq!(done.status, 303, "{}", done.body);
    let page = town.get("/console/enrollments");
    assert!(page.body.contains(&format!("data-user=\"{WORKER}\"")));

    // Her phone erases itself at its next contact.
    assert!(matches!(
        worker.sync(&mut |_| {}),
        Err(SyncError::Wiped { .. })
    ));
    // Her unused code, her password, new codes for her or her grid: all refused.
    let transport = HttpTransport::new(&server.url);
    assert!(matches!(
        sync::enroll(&transport, &spare.code, DeviceId::random(), "after"),
        Err(SyncError::Unauthorized { .. })
    ));
    let mut her = Console::new(&server);
    assert_ne!(her.sign_in(WORKER, PASSWORD).status, 303);
    assert_eq!(issue(("user", WORKER)).status, 400);
    let grid = issue(("region", "339901001001001"));
    assert_eq!(
        grid.status, 400,
        "the grid's only worker left: no one to issue for"
    );

    // Enabled again: a new code enrolls a new phone.
    let back = town.post(
        "/console/users/enable",
        &[("csrf", &csrf), ("user", WORKER)],
    );
    assert_eq!(back.status, 303);
    let again = links_of_one(&issue(("user", WORKER)).body);
    let e = sync::enroll(&transport, &again.code, DeviceId::random(), "new phone").unwrap();
    assert_eq!(e.user.as_str(), WORKER);
    // An administrator is not disabled from the console.
    let admin = town.post(
        "/console/users/disable",
        &[("csrf", &csrf), ("user", ADMIN), ("confirm", "yes")],
    );
    assert_eq!(admin.status, 403);
}
