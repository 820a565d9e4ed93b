//! The directory as versioned data over a real `gridsync serve`: an administrator
//! moves a worker and adds a department in the console; each change is a new
//! revision with who made it; the phones receive it at their next sync without a
//! restart, and scope follows — the moved worker's old grid leaves her phone while
//! what she had not sent still arrives, and the new department's handler receives
//! the first case dispatched to it. Invalid edits change nothing.

use gridsync_core::{Engine, Status};

use crate::console::{set_password, signed_in, Console, PASSWORD};
use crate::sockets::{enroll, gridsync, start};
use crate::tiers::eventually;
use crate::workflow::{leak, DISPATCHER, WORKER};

const ADMIN: &str = "admin";
/// A grid in another town.
const NEW_GRID: &str = "339901002001002";

fn sync(engine: &Engine) -> gridsync_core::sync::SyncReport {
    engine.sync(&mut |_| {}).expect("sync")
}

/// The revision the console's directory page shows.
fn revision(console: &Console) -> u64 {
    let page = console.get("/console/directory").body;
    let at = page.find("id=\"revision\">").expect("the revision") + 14;
    page[at..].split('<').next().unwrap().parse().unwrap()
}

#[test]
fn a_worker_moved_in_the_console_leaves_her_old_grid_and_keeps_her_unsent_note() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let server = start(&data);
    let worker = enroll(&data, &server, WORKER, dir.path());
    let id = worker.report_case(leak()).unwrap();
    sync(&worker);
    // Offline, she notes something; the command centre moves her meanwhile.
    worker.add_note(&id, "调岗前补充：已联系物业").unwrap();

    let admin = signed_in(&server, &data, ADMIN);
    let before = revision(&admin);
    let csrf = admin.csrf();
    let moved = admin.post(
        "/console/directory/user",
        &[
            ("csrf", &csrf),
            ("user", WORKER),
            ("role", "grid_worker"),
            ("region", NEW_GRID),
        ],
    );
    assert_eq!(moved.status, 303, "{}", moved.body);
    assert_eq!(revision(&admin), before + 1);
    let page = admin.get("/console/directory").body;
    assert!(page.contains("系统管理员 (admin)"), "who made it: {page}");
    assert!(page.contains("用户 新增 0、删除 0、变更 1"), "{page}");

    // Her next sync: the note goes up, the new directory comes down, her old
    // grid's case leaves the phone.
    let r = sync(&worker);
    assert!(r.directory_updated);
    assert_eq!(worker.me().unwrap().region.as_str(), NEW_GRID);
    assert!(
        r.rejected.is_empty(),
        "her unsent note is kept: {:?}",
        r.rejected
    );
    sync(&worker);
    assert!(
        worker.doc_ids().unwrap().is_empty(),
        "her old grid's case left her phone"
    );
    assert_eq!(worker.outbox_len().unwrap(), 0);
    // The old community's dispatcher has the case, with her note.
    let dispatcher = enroll(&data, &server, DISPATCHER, dir.path());
    sync(&dispatcher);
    let case = dispatcher.get_case(&id).unwrap();
    assert!(
        case.doc
            .notes
            .iter()
            .any(|n| n.text == "调岗前补充：已联系物业"),
        "the note made before the move arrived"
    );
    // A second sync brings nothing more: she holds the newest revision.
    assert!(!sync(&worker).directory_updated);

    // Invalid edits change nothing and say why.
    for (form, why) in [
        (
            vec![
                ("user", WORKER),
                ("role", "grid_worker"),
                ("region", "339901002001"),
            ],
            "must be placed at a grid",
        ),
        (
            vec![
                ("user", "w-new"),
                ("role", "grid_worker"),
                ("region", NEW_GRID),
            ],
            "a new user needs a name",
        ),
        (
            vec![
                ("user", ADMIN),
                ("role", "grid_worker"),
                ("region", NEW_GRID),
            ],
            "administrators are placed with the command line",
        ),
    ] {
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend(form);
        let refused = admin.post("/console/directory/user", &all);
        assert!(
            refused.status == 400 || refused.status == 403,
            "{}",
            refused.status
        );
        assert!(refused.body.contains(why), "{why}: {}", refused.body);
    }
    assert_eq!(revision(&admin), before + 1);
    // A dispatcher does not edit the directory.
    let other = signed_in(&server, &data, DISPATCHER);
    let csrf = other.csrf();
    let refused = other.post(
        "/console/directory/department",
        &[
            ("csrf", &csrf),
            ("id", "gas"),
            ("name", "燃气"),
            ("region", "339901"),
        ],
    );
    assert_eq!(refused.status, 403);
}

#[test]
fn a_department_added_in_the_console_receives_its_first_case_on_its_handlers_phone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let server = start(&data);
    let admin = signed_in(&server, &data, ADMIN);
    let csrf = admin.csrf();
    let added = admin.post(
        "/console/directory/department",
        &[
            ("csrf", &csrf),
            ("id", "gas"),
            ("name", "区燃气办"),
            ("region", "339901"),
        ],
    );
    assert_eq!(added.status, 303, "{}", added.body);
    let placed = admin.post(
        "/console/directory/user",
        &[
            ("csrf", &csrf),
            ("user", "h-gas-1"),
            ("name", "燃气处置员"),
            ("role", "department_handler"),
            ("region", "339901"),
            ("department", "gas"),
        ],
    );
    assert_eq!(placed.status, 303, "{}", placed.body);
    let twice = admin.post(
        "/console/directory/department",
        &[
            ("csrf", &csrf),
            ("id", "gas"),
            ("name", "重复"),
            ("region", "339901"),
        ],
    );
    assert_eq!(twice.status, 400);

    // The new handler enrolls; a worker's report is dispatched to the new
    // department from the console of a dispatcher who never restarted anything.
    let handler = enroll(&data, &server, "h-gas-1", dir.path());
    let worker = enroll(&data, &server, WORKER, dir.path());
    let id = worker.report_case(leak()).unwrap();
    sync(&worker);
    assert!(
        worker
            .directory()
            .unwrap()
            .department(&"gas".parse().unwrap())
            .is_some(),
        "the worker's phone knows the new department"
    );
    let dispatcher = signed_in(&server, &data, DISPATCHER);
    assert_eq!(dispatcher.act(&id, &[("action", "accept")]).status, 303);
    let dispatched = dispatcher.act(
        &id,
        &[("action", "dispatch"), ("dept", "gas"), ("hours", "24")],
    );
    assert_eq!(dispatched.status, 303, "{}", dispatched.body);
    sync(&handler);
    assert_eq!(
        handler.get_case(&id).unwrap().state.status,
        Status::Dispatched,
        "the first case dispatched to the new department is on its handler's phone"
    );
}

#[test]
fn the_command_line_imports_a_revision_and_a_restart_keeps_console_edits() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let file = dir.path().join("directory.json");
    std::fs::write(&file, gridsync_server::SAMPLE_DIRECTORY).unwrap();
    let admin_cli = |args: &[&str]| {
        gridsync()
            .args(["admin", "--data"])
            .arg(&data)
            .args(["directory"])
            .args(args)
            .output()
            .unwrap()
    };
    let server = crate::sockets::start_with(&data, &["--directory", file.to_str().unwrap()]);
    let admin = signed_in(&server, &data, ADMIN);
    let start = revision(&admin);
    let csrf = admin.csrf();
    let moved = admin.post(
        "/console/directory/user",
        &[
            ("csrf", &csrf),
            ("user", WORKER),
            ("role", "grid_worker"),
            ("region", NEW_GRID),
        ],
    );
    assert_eq!(moved.status, 303);
    drop(server);

    // A restart with the same file keeps the console's edit.
    let server = crate::sockets::start_with(&data, &["--directory", file.to_str().unwrap()]);
    let admin = signed_in(&server, &data, ADMIN);
    assert_eq!(revision(&admin), start + 1);
    let shown = admin_cli(&["show"]);
    let json: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let me = json["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == WORKER)
        .unwrap();
    assert_eq!(me["region"], NEW_GRID);

    // An invalid file is refused with the reason; a valid one is the next
    // revision, picked up by the running server without a restart.
    std::fs::write(&file, "{\"format\": \"gridsync-directory\"}").unwrap();
    let bad = admin_cli(&["import", file.to_str().unwrap()]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("missing field"));
    std::fs::write(&file, gridsync_server::SAMPLE_DIRECTORY).unwrap();
    let good = admin_cli(&["import", file.to_str().unwrap()]);
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(String::from_utf8_lossy(&good.stdout).contains(&format!("revision {}", start + 2)));
    let history = String::from_utf8_lossy(&admin_cli(&["history"]).stdout).into_owned();
    assert!(
        history.starts_with(&format!("{}\t", start + 2)),
        "{history}"
    );
    assert!(
        history.contains("命令行导入：用户 新增 0、删除 0、变更 1"),
        "{history}"
    );
    // The running server's phones see the imported revision within seconds:
    // the worker is back in her first grid.
    let worker = enroll(&data, &server, WORKER, dir.path());
    eventually("the import reaches the phone", || {
        sync(&worker);
        worker.me().unwrap().region.as_str() == "339901001001001"
    });
}

/// Run `gridsync admin --data DATA ARGS…`, answering its standard output.
fn admin_ok(data: &std::path::Path, args: &[&str]) -> String {
    let out = gridsync()
        .args(["admin", "--data"])
        .arg(data)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn a_revision_made_at_the_district_reaches_a_town_phone_and_the_town_edits_none() {
    const TOWN: &str = "td-339901001";
    let dir = tempfile::tempdir().unwrap();
    let (district_data, town_data) = (dir.path().join("district"), dir.path().join("town"));
    let district = start(&district_data);
    let code = admin_ok(&district_data, &["enroll", "--user", TOWN, "--relay"]);
    admin_ok(
        &town_data,
        &["upstream", "--url", &district.url, "--code", &code],
    );
    let town = crate::sockets::start_with(&town_data, &["--upstream-interval-secs", "1"]);
    let worker = enroll(&town_data, &town, WORKER, dir.path());
    sync(&worker);

    // The district moves the worker to another grid of the same community.
    let admin = signed_in(&district, &district_data, ADMIN);
    let csrf = admin.csrf();
    let moved = admin.post(
        "/console/directory/user",
        &[
            ("csrf", &csrf),
            ("user", WORKER),
            ("role", "grid_worker"),
            ("region", "339901001001002"),
        ],
    );
    assert_eq!(moved.status, 303, "{}", moved.body);

    // The town's upstream round adopts it; the town's phone receives it.
    eventually("the revision comes down to the town's phone", || {
        sync(&worker);
        worker.me().unwrap().region.as_str() == "339901001001002"
    });
    let history = admin_ok(&town_data, &["directory", "history"]);
    assert!(history.contains("上级下发"), "{history}");

    // The town keeps its upstream's directory: its administrator edits none.
    let town_admin = signed_in(&town, &town_data, ADMIN);
    assert!(town_admin
        .get("/console/directory")
        .body
        .contains("id=\"upstream-note\""));
    let csrf = town_admin.csrf();
    let refused = town_admin.post(
        "/console/directory/department",
        &[
            ("csrf", &csrf),
            ("id", "gas"),
            ("name", "燃气"),
            ("region", "339901"),
        ],
    );
    assert_eq!(refused.status, 403);
}

#[test]
fn the_district_changes_its_rules_and_names_in_the_console_and_phones_follow() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let server = start(&data);
    let worker = enroll(&data, &server, WORKER, dir.path());
    sync(&worker);
    let admin = signed_in(&server, &data, ADMIN);
    let csrf = admin.csrf();
    let post = |path: &str, form: &[(&str, &str)]| {
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(form);
        admin.post(path, &all)
    };
    let before = revision(&admin);
    for (path, form) in [
        (
            "/console/directory/deadline",
            vec![
                ("category", "safety"),
                ("severity", "urgent"),
                ("hours", "2"),
            ],
        ),
        (
            "/console/directory/category",
            vec![
                ("code", "safety"),
                ("name", "安全隐患排查"),
                ("name_en", "Safety checks"),
            ],
        ),
        (
            "/console/directory/points",
            vec![
                ("valid_report", "6"),
                ("handled_on_the_spot", "3"),
                ("major_case", "300"),
                ("invalid_report", "-5"),
                ("visit", "2"),
                ("inspection", "2"),
            ],
        ),
        (
            "/console/directory/visit",
            vec![("tag", "elderly_alone"), ("every_days", "5")],
        ),
        (
            "/console/directory/retention",
            vec![("code", "dispute"), ("days", "1095")],
        ),
        // Set, then kept for good again: the field leaves the category.
        (
            "/console/directory/retention",
            vec![("code", "city"), ("days", "365")],
        ),
        (
            "/console/directory/retention",
            vec![("code", "city"), ("days", "")],
        ),
    ] {
        let saved = post(path, &form);
        assert_eq!(saved.status, 303, "{path}: {}", saved.body);
    }
    assert_eq!(revision(&admin), before + 7);
    let page = admin.get("/console/directory").body;
    assert!(page.contains("1095 天"), "the retention in force is shown");

    // Out-of-bounds rules change nothing and say why.
    for (path, form, why) in [
        (
            "/console/directory/deadline",
            vec![("category", "safety"), ("severity", "*"), ("hours", "0")],
            "hours must be between 1 and 8760",
        ),
        (
            "/console/directory/deadline",
            vec![("category", "weather"), ("severity", "*"), ("hours", "4")],
            "unknown category",
        ),
        (
            "/console/directory/visit",
            vec![("tag", "elderly_alone"), ("every_days", "400")],
            "every_days must be between 1 and 366",
        ),
        (
            "/console/directory/retention",
            vec![("code", "dispute"), ("days", "7")],
            "retention_days must be 30 to 36500",
        ),
        (
            "/console/directory/retention",
            vec![("code", "weather"), ("days", "365")],
            "no category weather",
        ),
    ] {
        let refused = post(path, &form);
        assert_eq!(refused.status, 400, "{path}");
        assert!(refused.body.contains(why), "{why}: {}", refused.body);
    }
    assert_eq!(revision(&admin), before + 7);

    // The phone follows at its next sync.
    assert!(sync(&worker).directory_updated);
    let phone = worker.directory().unwrap();
    let safety: gridsync_core::CategoryCode = "safety".parse().unwrap();
    assert_eq!(
        phone.deadline_hours(&safety, gridsync_core::Severity::Urgent),
        2
    );
    assert_eq!(phone.category(&safety).unwrap().name, "安全隐患排查");
    assert_eq!(phone.points_rules().unwrap().major_case, 300);
    assert_eq!(
        phone.visit_every(gridsync_core::doc::registry::Tag::ElderlyAlone),
        Some(5)
    );
    let days = |code: &str| {
        phone
            .category(&code.parse().unwrap())
            .unwrap()
            .retention_days
    };
    assert_eq!(days("dispute"), Some(1095));
    assert_eq!(days("city"), None);
}

#[test]
fn a_town_administrator_changes_only_her_towns_people_and_no_district_rules() {
    const TOWN_ADMIN: &str = "admin-339901001";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let server = start(&data);
    // The operator adds a town administrator with a directory file.
    let mut directory: serde_json::Value =
        serde_json::from_str(gridsync_server::SAMPLE_DIRECTORY).unwrap();
    directory["users"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "id": TOWN_ADMIN, "name": "临江街道管理员", "role": "admin", "region": "339901001",
        }));
    let file = dir.path().join("with-town-admin.json");
    std::fs::write(&file, directory.to_string()).unwrap();
    admin_ok(&data, &["directory", "import", file.to_str().unwrap()]);
    // The running server takes it within 2 seconds. Until then her sign-in is
    // a wrong one, and ten of those from this address would hold every sign-in:
    // she tries every second, not as fast as `eventually` polls.
    set_password(&data, TOWN_ADMIN, PASSWORD);
    let mut town = Console::new(&server);
    let tried = std::time::Instant::now();
    while town.sign_in(TOWN_ADMIN, PASSWORD).status != 303 {
        assert!(
            tried.elapsed() < std::time::Duration::from_secs(8),
            "the new administrator signs in within a few seconds"
        );
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    let csrf = town.csrf();
    let post = |path: &str, form: &[(&str, &str)]| {
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(form);
        town.post(path, &all)
    };
    // Within her town: a worker moved between two of its grids.
    let moved = post(
        "/console/directory/user",
        &[
            ("user", WORKER),
            ("role", "grid_worker"),
            ("region", "339901001001002"),
        ],
    );
    assert_eq!(moved.status, 303, "{}", moved.body);
    // Not: a handler of a district department (she would see the whole
    // district's cases of that department), a user into another town, the
    // district's rules, a whole directory, or its download.
    for (path, form) in [
        (
            "/console/directory/user",
            vec![
                ("user", "h-new"),
                ("name", "新处置员"),
                ("role", "department_handler"),
                ("region", "339901001"),
                ("department", "water"),
            ],
        ),
        (
            "/console/directory/user",
            vec![
                ("user", WORKER),
                ("role", "grid_worker"),
                ("region", NEW_GRID),
            ],
        ),
        (
            "/console/directory/deadline",
            vec![("category", "*"), ("severity", "*"), ("hours", "1")],
        ),
        (
            "/console/directory/import",
            vec![("json", gridsync_server::SAMPLE_DIRECTORY)],
        ),
    ] {
        let refused = post(path, &form);
        assert_eq!(refused.status, 403, "{path} {form:?}: {}", refused.body);
    }
    assert_eq!(town.get("/console/directory.json").status, 403);
    assert!(!town
        .get("/console/directory")
        .body
        .contains("directory.json"));

    // The district's administrator may not create or change administrators by
    // pasting a whole directory either.
    let district = signed_in(&server, &data, ADMIN);
    let csrf = district.csrf();
    let mut promoted: serde_json::Value =
        serde_json::from_str(&admin_ok(&data, &["directory", "show"])).unwrap();
    let users = promoted["users"].as_array_mut().unwrap();
    users.iter_mut().find(|u| u["id"] == DISPATCHER).unwrap()["role"] = "admin".into();
    let refused = district.post(
        "/console/directory/import",
        &[("csrf", &csrf), ("json", &promoted.to_string())],
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
}
