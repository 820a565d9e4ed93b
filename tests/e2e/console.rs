//! The web console over real HTTP: `gridsync serve`, password accounts set with
//! `gridsync admin password`, sessions, CSRF, scope, and console actions reaching
//! devices through sync.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use chrono::Datelike;
use gridsync_core::{Action, DocId, Engine, Status};

use crate::sockets::{enroll, enroll_with_clock, gridsync, start, start_with, Server};
use crate::workflow::{leak, DISPATCHER, HANDLER, WORKER};

const OTHER_DISPATCHER: &str = "cd-339901002001";

pub(crate) fn set_password(data: &Path, user: &str, password: &str) {
    let mut child = gridsync()
        .args(["admin", "--data"])
        .arg(data)
        .args(["password", "--user", user])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("admin password");
    writeln!(child.stdin.take().expect("stdin"), "{password}").unwrap();
    assert!(child.wait().unwrap().success());
}

/// The password the tests give console accounts.
pub(crate) const PASSWORD: &str = "console-2026-test";

/// A console signed in as `user`, her password set first.
pub(crate) fn signed_in(server: &Server, data: &Path, user: &str) -> Console {
    set_password(data, user, PASSWORD);
    let mut console = Console::new(server);
    assert_eq!(console.sign_in(user, PASSWORD).status, 303);
    console
}

/// A browser's view of the console: one session cookie.
pub(crate) struct Console {
    agent: ureq::Agent,
    url: String,
    cookie: String,
}

pub(crate) struct Page {
    pub(crate) status: u16,
    location: Option<String>,
    pub(crate) body: String,
}

impl Console {
    pub(crate) fn new(server: &Server) -> Console {
        let agent = ureq::Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            .build()
            .into();
        Console {
            agent,
            url: server.url.clone(),
            cookie: String::new(),
        }
    }

    fn page(mut r: ureq::http::Response<ureq::Body>) -> Page {
        Page {
            status: r.status().as_u16(),
            location: r
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            // Photos are bytes; pages are UTF-8.
            body: String::from_utf8_lossy(&r.body_mut().read_to_vec().unwrap()).into_owned(),
        }
    }

    pub(crate) fn get(&self, path: &str) -> Page {
        let r = self
            .agent
            .get(format!("{}{path}", self.url))
            .header("Cookie", &self.cookie)
            .call()
            .unwrap();
        Self::page(r)
    }

    pub(crate) fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let r = self
            .agent
            .post(format!("{}{path}", self.url))
            .header("Cookie", &self.cookie)
            .send_form(form.iter().copied())
            .unwrap();
        Self::page(r)
    }

    pub(crate) fn sign_in(&mut self, user: &str, password: &str) -> Page {
        let r = self
            .agent
            .post(format!("{}/console/sign-in", self.url))
            .send_form([("user", user), ("password", password)])
            .unwrap();
        if let Some(c) = r.headers().get("set-cookie").and_then(|v| v.to_str().ok()) {
            self.cookie = c.split(';').next().unwrap_or_default().to_owned();
        }
        Self::page(r)
    }

    /// The CSRF token of the signed-in session, from any page's forms.
    pub(crate) fn csrf(&self) -> String {
        let body = self.get("/console/cases").body;
        let at = body
            .find("name=\"csrf\" value=\"")
            .expect("a form with a CSRF token")
            + 19;
        body[at..].split('"').next().unwrap().to_owned()
    }

    pub(crate) fn act(&self, id: &DocId, form: &[(&str, &str)]) -> Page {
        let csrf = self.csrf();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(form);
        self.post(&format!("/console/cases/{id}/act"), &all)
    }
}

/// `text` as a form or query string encodes it.
fn url_encoded(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

fn status_of(engine: &Engine, id: &DocId) -> Status {
    engine.get_case(id).unwrap().state.status
}

fn sync(engine: &Engine) {
    engine.sync(&mut |_| {}).expect("sync");
}

#[test]
fn sign_in_sessions_csrf_and_scope() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let server = start(&data);
    let worker = enroll(&data, &server, WORKER, dir.path());
    let id = worker.report_case(leak()).unwrap();
    sync(&worker);
    set_password(&data, DISPATCHER, "wanghu-2026-dispatch");
    set_password(&data, OTHER_DISPATCHER, "other-2026-dispatch");

    let mut console = Console::new(&server);
    let away = console.get("/console/cases");
    assert_eq!(away.status, 303);
    assert_eq!(away.location.as_deref(), Some("/console/sign-in"));
    let wrong = console.sign_in(DISPATCHER, "not-the-password");
    assert_eq!(wrong.status, 401);
    assert!(
        wrong.body.contains("用户名或密码错误"),
        "the page says why, in Chinese"
    );
    assert!(console.cookie.is_empty());
    for (user, password) in [("cd-339901009009", "whatever-it-is"), ("not an id", "x")] {
        let unknown = console.sign_in(user, password);
        assert_eq!(unknown.status, 401, "unknown users get the same answer");
        assert!(unknown.body.contains("用户名或密码错误"));
    }
    let ok = console.sign_in(DISPATCHER, "wanghu-2026-dispatch");
    assert_eq!(ok.status, 303, "{}", ok.body);

    let board = console.get("/console/cases");
    assert!(board.body.contains(&format!("data-id=\"{id}\"")));
    assert!(board.body.contains("楼上管道漏水"));
    assert!(board.body.contains("待受理"));
    // A search is posted and answered with a link that carries it sealed:
    // what was typed (a resident's name, a phone number) is in no URL.
    let search = |text: &str| {
        let posted = console.post("/console/cases", &[("q", text), ("status", "")]);
        assert_eq!(posted.status, 303, "{}", posted.body);
        let link = posted.location.expect("a link to the results");
        let encoded: String = url_encoded(text);
        assert!(
            link.starts_with("/console/cases?")
                && link.contains("qt=")
                && !link.contains("q=")
                && !link.contains(text)
                && !link.contains(&encoded),
            "{link}"
        );
        (link.clone(), console.get(&link))
    };
    let (link, found) = search("漏水");
    assert!(found.body.contains(&format!("data-id=\"{id}\"")));
    assert!(
        found.body.contains("value=\"漏水\""),
        "the box shows the search"
    );
    let (_, none) = search("塌方");
    assert!(!none.body.contains(&format!("data-id=\"{id}\"")));
    // A link with the text in the clear (typed by hand, or from before) is
    // answered the same way; one whose seal was tampered with is refused.
    let clear = console.get("/console/cases?q=%E6%BC%8F%E6%B0%B4");
    assert_eq!(clear.status, 303);
    assert!(clear
        .location
        .is_some_and(|l| l.contains("qt=") && !l.contains("q=")));
    let tampered = link.replace("qt=", "qt=A");
    assert_eq!(console.get(&tampered).status, 400);
    let bad = console.get("/console/cases?severity=extreme");
    assert_eq!(bad.status, 400);

    // A form without the session's CSRF token changes nothing.
    let forged = console.post(
        &format!("/console/cases/{id}/act"),
        &[("csrf", "forged"), ("action", "accept")],
    );
    assert_eq!(forged.status, 403);
    sync(&worker);
    assert_eq!(status_of(&worker, &id), Status::Reported);

    // A dispatcher of another community neither lists nor opens the case.
    let mut other = Console::new(&server);
    assert_eq!(
        other
            .sign_in(OTHER_DISPATCHER, "other-2026-dispatch")
            .status,
        303
    );
    assert!(!other.get("/console/cases").body.contains(&id.to_string()));
    assert_eq!(other.get(&format!("/console/cases/{id}")).status, 404);
    let refused = other.act(&id, &[("action", "accept")]);
    assert_eq!(refused.status, 404);

    // Signing out ends the session on the server, not just in the browser.
    let cookie = console.cookie.clone();
    let csrf = console.csrf();
    assert_eq!(
        console.post("/console/sign-out", &[("csrf", &csrf)]).status,
        303
    );
    console.cookie = cookie;
    assert_eq!(console.get("/console/cases").status, 303);
}

#[test]
fn console_actions_reach_devices_and_merge_with_offline_work() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let server = start(&data);
    let worker = enroll(&data, &server, WORKER, dir.path());
    let handler = enroll(&data, &server, HANDLER, dir.path());
    set_password(&data, DISPATCHER, "wanghu-2026-dispatch");
    let mut console = Console::new(&server);
    console.sign_in(DISPATCHER, "wanghu-2026-dispatch");

    let id = worker.report_case(leak()).unwrap();
    sync(&worker);
    let detail = console.get(&format!("/console/cases/{id}"));
    assert!(detail.body.contains("data-action=\"accept\""));
    assert!(
        !detail.body.contains("data-action=\"archive\""),
        "not from this state"
    );

    let accepted = console.act(&id, &[("action", "accept")]);
    assert_eq!(accepted.status, 303, "{}", accepted.body);
    let bad = console.act(
        &id,
        &[("action", "dispatch"), ("dept", "water"), ("hours", "0")],
    );
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("hours must be a number from 1 to 720"));
    let dispatched = console.act(
        &id,
        &[("action", "dispatch"), ("dept", "water"), ("hours", "24")],
    );
    assert_eq!(dispatched.status, 303, "{}", dispatched.body);

    // The worker, offline, notes something while the console notes something too.
    worker.add_note(&id, "楼下住户称仍在滴水").unwrap();
    let csrf = console.csrf();
    let noted = console.post(
        &format!("/console/cases/{id}/note"),
        &[("csrf", &csrf), ("text", "已电话通知水务")],
    );
    assert_eq!(noted.status, 303);

    sync(&handler);
    assert_eq!(
        status_of(&handler, &id),
        Status::Dispatched,
        "the dispatch reached the department"
    );
    handler
        .act(
            &id,
            Action::Feedback {
                result: "已更换阀门".into(),
            },
        )
        .unwrap();
    sync(&handler);
    sync(&worker);
    let case = worker.get_case(&id).unwrap();
    assert_eq!(case.state.status, Status::Handled);
    let notes: Vec<_> = case.doc.notes.iter().map(|n| n.text.as_str()).collect();
    assert!(
        notes.contains(&"楼下住户称仍在滴水") && notes.contains(&"已电话通知水务"),
        "{notes:?}"
    );
    worker
        .act(
            &id,
            Action::Verify {
                passed: true,
                comment: "已不再漏水".into(),
            },
        )
        .unwrap();
    sync(&worker);

    assert_eq!(console.act(&id, &[("action", "archive")]).status, 303);
    let evaluated = console.act(
        &id,
        &[
            ("action", "evaluate"),
            ("satisfaction", "5"),
            ("text", "居民满意"),
        ],
    );
    assert_eq!(evaluated.status, 303);
    let page = console.get(&format!("/console/cases/{id}?done=1"));
    assert!(page.body.contains("data-status=\"evaluated\""));
    for label in [
        "发现上报",
        "受理",
        "派遣",
        "处置反馈",
        "核查通过",
        "归档",
        "回访评价",
    ] {
        assert!(page.body.contains(label), "the timeline shows {label}");
    }
    sync(&worker);
    assert_eq!(status_of(&worker, &id), Status::Evaluated);
    let evaluation = worker
        .get_case(&id)
        .unwrap()
        .doc
        .timeline
        .last()
        .unwrap()
        .actor
        .clone();
    assert_eq!(
        evaluation.as_str(),
        DISPATCHER,
        "recorded as the dispatcher's own action"
    );
}

#[test]
fn supervision_figures_and_devices_in_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let server = start(&data);
    // A grid worker who reported four days ago and a dispatcher who acted three
    // days ago, both offline since (times the relay finds plausible: each after
    // what it follows, none after it arrived): the dispatch is two days late now.
    let days_ago = |n: i64| -> gridsync_core::Clock {
        std::sync::Arc::new(move || chrono::Utc::now() - chrono::Duration::days(n))
    };
    let worker = enroll_with_clock(&data, &server, WORKER, dir.path(), days_ago(4));
    let phone = enroll_with_clock(&data, &server, DISPATCHER, dir.path(), days_ago(3));
    set_password(&data, DISPATCHER, "wanghu-2026-dispatch");
    let mut console = Console::new(&server);
    console.sign_in(DISPATCHER, "wanghu-2026-dispatch");

    let late = worker.report_case(leak()).unwrap();
    let spot = worker.report_case(leak()).unwrap();
    worker
        .act(
            &spot,
            Action::SelfHandle {
                result: "已处理".into(),
            },
        )
        .unwrap();
    sync(&worker);
    sync(&phone);
    phone.act(&late, Action::Accept).unwrap();
    phone
        .dispatch(
            &late,
            "water".parse().unwrap(),
            Some(chrono::Utc::now() - chrono::Duration::days(2)),
        )
        .unwrap();
    sync(&phone);

    // Two days past its deadline the case has reached level 2 by itself.
    let supervision = console.get("/console/supervision").body;
    let level2 = supervision
        .split("data-level=\"2\"")
        .nth(1)
        .unwrap()
        .split("</section>")
        .next()
        .unwrap();
    assert!(level2.contains(&late.to_string()), "{supervision}");
    assert!(!supervision.contains(&spot.to_string()));
    let detail = console.get(&format!("/console/cases/{late}")).body;
    assert!(detail.contains("data-level=\"2\"") && detail.contains("人工交办"));

    // The figures of the month the cases were reported in (four days ago: on the
    // first days of a month, the month before), and the same as CSV.
    let reported = worker.get_case(&late).unwrap().doc.timeline[0]
        .at
        .with_timezone(&gridsync_core::index::local_offset());
    let month = reported.format("%Y-%m").to_string();
    let table = |name: &str| {
        console
            .get(&format!("/console/stats.csv?table={name}&month={month}"))
            .body
    };
    let csv = table("summary");
    assert!(
        csv.starts_with('\u{feff}'),
        "a BOM for spreadsheet programs"
    );
    let rows: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(rows[0], "指标,数值");
    assert!(rows.contains(&"上报,2"), "{rows:?}");
    assert!(rows.contains(&"受理率,100.0%"), "{rows:?}");
    assert!(rows.contains(&"自办率,50.0%"), "{rows:?}");
    // 分级处置 and 积分: the levels per month, and the worker's points this month
    // under the sample directory's rules (two valid reports at 2, one handled on
    // the spot +3).
    let level = table("level");
    assert_eq!(
        level.trim_start_matches('\u{feff}').lines().next(),
        Some("月份,结案,网格内办结,社区办结,街道办结,区级办结,市级办结,上报上级")
    );
    // 来源渠道: both cases came from the worker's phone; the board filters by it.
    let channels = table("channel");
    let channels: Vec<&str> = channels.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(channels[0], "来源渠道,上报,结案,结案率,按期结案率");
    assert_eq!(channels.len(), 2, "{channels:?}");
    assert!(channels[1].starts_with("网格员上报,2,"), "{channels:?}");
    let board = console.get("/console/cases?channel=phone").body;
    assert!(board.contains(&late.to_string()) && board.contains(&spot.to_string()));
    assert!(console
        .get("/console/cases?channel=hotline")
        .body
        .contains("id=\"empty\""));
    assert_eq!(console.get("/console/cases?channel=telegram").status, 400);
    let points = table("points");
    let points: Vec<&str> = points.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(points.len(), 2, "{points:?}");
    assert!(points[1].ends_with(",2,1,0,0,0,0,7,0,7"), "{points:?}");
    let stats = console.get(&format!("/console/stats?month={month}")).body;
    assert!(stats.contains("<svg") && stats.contains("民生服务"));
    assert!(stats.contains("id=\"table-level\"") && stats.contains("id=\"table-points\""));
    // 积分调整: the dispatcher leads the worker's community, so the form is hers;
    // her adjustment joins the ranking, the ledger and its CSV, the monthly
    // report, and reaches the worker's phone.
    assert!(stats.contains("id=\"adjust-points\""));
    let adjust = |points: &str, reason: &str| {
        let csrf = console.csrf();
        console.post(
            "/console/points/adjust",
            &[
                ("csrf", csrf.as_str()),
                ("worker", WORKER),
                ("month", month.as_str()),
                ("points", points),
                ("reason", reason),
            ],
        )
    };
    assert_eq!(adjust("-3", "台账不全").status, 303);
    assert_eq!(adjust("0", "零分").status, 400);
    assert_eq!(adjust("5", "  ").status, 400);
    let points = table("points");
    let points: Vec<&str> = points.trim_start_matches('\u{feff}').lines().collect();
    assert!(points[1].ends_with(",2,1,0,0,0,0,7,-3,4"), "{points:?}");
    let ledger = table("adjustments");
    let ledger: Vec<&str> = ledger.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(ledger.len(), 2, "{ledger:?}");
    assert!(
        ledger[1].starts_with(&month) && ledger[1].contains(",-3,台账不全,"),
        "{ledger:?}"
    );
    assert!(console
        .get(&format!("/console/report?month={month}"))
        .body
        .contains("台账不全"));
    sync(&worker);
    let mine = worker
        .points(None, reported.year(), reported.month())
        .unwrap();
    assert_eq!(
        mine.iter()
            .map(|p| (p.adjusted, p.points))
            .collect::<Vec<_>>(),
        [(-3, 4)]
    );
    let report = console.get(&format!("/console/report?month={month}")).body;
    assert!(report.contains("id=\"hot-spots\"") && report.contains("望湖社区第1网格"));
    assert_eq!(
        console
            .get("/console/stats?from=2026-02-01&to=2025-01-01")
            .status,
        400
    );

    // Devices: the worker's phone is listed and can be revoked from here.
    let devices = console.get("/console/devices").body;
    let id = worker.identity().device.to_string();
    assert!(devices.contains(&format!("data-device=\"{id}\"")));
    let csrf = console.csrf();
    let revoked = console.post(&format!("/console/devices/{id}/revoke"), &[("csrf", &csrf)]);
    assert_eq!(revoked.status, 303);
    match worker.sync(&mut |_| {}) {
        Err(gridsync_core::sync::SyncError::Wiped { left }) => assert!(left.is_empty()),
        other => panic!("a revoked phone wipes itself, got {other:?}"),
    }
}

impl Console {
    /// A form sent as `multipart/form-data`, text fields only.
    pub(crate) fn post_multipart(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let boundary = "gridsync-test-boundary";
        let mut body = String::new();
        for (name, value) in fields {
            body.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            ));
        }
        body.push_str(&format!("--{boundary}--\r\n"));
        let r = self
            .agent
            .post(format!("{}{path}", self.url))
            .header("Cookie", &self.cookie)
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .send(body.as_bytes())
            .unwrap();
        Self::page(r)
    }

    /// A multipart upload, as the browser's photo form sends it.
    pub(crate) fn upload(&self, path: &str, csrf: &str, photo: &[u8]) -> Page {
        let boundary = "gridsync-test-boundary";
        let mut body = Vec::new();
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(photo);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let r = self
            .agent
            .post(format!("{}{path}", self.url))
            .header("Cookie", &self.cookie)
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .send(&body[..])
            .unwrap();
        Self::page(r)
    }
}

#[test]
fn scope_covers_photos_devices_uploads_and_the_handlers_board() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let server = start(&data);
    let worker = enroll(&data, &server, WORKER, dir.path());
    let (id, photo) = crate::photos::report_with_photo(&worker);
    for (user, password) in [
        (DISPATCHER, "wanghu-2026-dispatch"),
        (OTHER_DISPATCHER, "other-2026-dispatch"),
        (HANDLER, "water-2026-handler"),
    ] {
        set_password(&data, user, password);
    }
    let mut mine = Console::new(&server);
    mine.sign_in(DISPATCHER, "wanghu-2026-dispatch");
    let mut other = Console::new(&server);
    other.sign_in(OTHER_DISPATCHER, "other-2026-dispatch");
    let mut handler = Console::new(&server);
    handler.sign_in(HANDLER, "water-2026-handler");

    assert_eq!(mine.get(&format!("/console/photos/{}", photo)).status, 200);
    assert_eq!(other.get(&format!("/console/photos/{}", photo)).status, 404);
    let device = worker.identity().device.to_string();
    let csrf = other.csrf();
    let r = other.post(
        &format!("/console/devices/{device}/revoke"),
        &[("csrf", &csrf)],
    );
    assert_eq!(r.status, 404, "not another community's phone");
    assert_eq!(handler.get("/console/devices").status, 403);

    // An upload needs the session's CSRF token; with it, the photo is attached.
    let jpeg = crate::photos::camera_jpeg();
    let forged = mine.upload(&format!("/console/cases/{id}/photo"), "forged", &jpeg);
    assert_eq!(forged.status, 403);
    let csrf = mine.csrf();
    let other_photo = image_variant(&jpeg);
    let done = mine.upload(&format!("/console/cases/{id}/photo"), &csrf, &other_photo);
    assert_eq!(done.status, 303, "{}", done.body);
    worker.sync(&mut |_| {}).unwrap();
    assert_eq!(worker.get_case(&id).unwrap().doc.photos.len(), 2);

    // A handler's board holds what is dispatched to her department, and only that.
    assert!(!handler.get("/console/cases").body.contains(&id.to_string()));
    mine.act(&id, &[("action", "accept")]);
    mine.act(
        &id,
        &[("action", "dispatch"), ("dept", "water"), ("hours", "24")],
    );
    assert!(handler.get("/console/cases").body.contains(&id.to_string()));
    let elsewhere = handler.get("/console/cases?dept=housing");
    assert_eq!(elsewhere.status, 400, "not another department's board");
}

/// Another photo: the same picture mirrored, so its pixels and hash differ.
fn image_variant(jpeg: &[u8]) -> Vec<u8> {
    let img = image::load_from_memory(jpeg).unwrap().fliph();
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

/// Password guessing: an address that guessed wrong ten times is refused, even
/// with the right password, while a dispatcher elsewhere (another address behind
/// the town's proxy) signs in as ever, however often.
#[test]
fn wrong_passwords_from_one_address_are_limited_and_others_still_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let server = start_with(&data, &["--trusted-proxy", "127.0.0.1"]);
    set_password(&data, DISPATCHER, "wanghu-2026-dispatch");
    let console = Console::new(&server);
    let from = |address: &str, password: &str| {
        Console::page(
            console
                .agent
                .post(format!("{}/console/sign-in", console.url))
                .header("X-Forwarded-For", address)
                .send_form([("user", DISPATCHER), ("password", password)])
                .unwrap(),
        )
    };
    let (desk, guesser) = ("198.51.100.7", "203.0.113.9");

    // Right passwords do not count: the same desk signs in again and again.
    for _ in 0..12 {
        assert_eq!(from(desk, "wanghu-2026-dispatch").status, 303);
    }
    for i in 0..10 {
        let wrong = from(guesser, &format!("guess-{i}-2026"));
        assert_eq!(wrong.status, 401, "guess {i}: {}", wrong.body);
    }
    let limited = from(guesser, "wanghu-2026-dispatch");
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert!(
        limited.body.contains("密码错误次数过多"),
        "the page says why, in Chinese: {}",
        limited.body
    );
    assert_eq!(from(desk, "wanghu-2026-dispatch").status, 303);
}
