//! The resident channel over real HTTP against `gridsync serve`: a resident's
//! report with a photo lands in the grid holding its position, at that
//! community; the loop runs; the resident follows it by tracking code (steps and
//! times, no names) and scores it; bad input, a missing or spent proof of work
//! and a burst are refused in Chinese; a duplicate is told so, without the first reporter's code; the
//! dispatcher's hotline form reports in her own name with its channel.

use gridsync_core::{CaseFilter, Channel, DocId, Engine, Status};
use sha2::{Digest, Sha256};

use crate::console::{set_password, Console};
use crate::photos::camera_jpeg;
use crate::sockets::{enroll, start, Server};
use crate::workflow::{DISPATCHER, HANDLER, WORKER};

const GRID: &str = "339901001001001";
const HERE: (&str, &str) = ("30.2741", "120.1551");
const OTHER_GRID: &str = "339901002001001";
const OTHER_DISPATCHER: &str = "cd-339901002001";
/// Names in the sample directory of the people who act on the case.
const NAMES: [&str; 4] = ["崔宏建", "石子然", "熊雨", "cd-339901001001"];

/// A phone's browser on the public pages.
struct Resident {
    agent: ureq::Agent,
    url: String,
    /// What an `X-Forwarded-For` header says, when one is sent.
    forwarded: Option<String>,
}

struct Answer {
    status: u16,
    body: String,
    csp: String,
}

/// A report as the page's form sends it.
#[derive(Clone, Default)]
struct Report<'a> {
    category: &'a str,
    description: &'a str,
    at: Option<(&'a str, &'a str)>,
    grid: &'a str,
    address: &'a str,
    phone: &'a str,
    photos: Vec<Vec<u8>>,
}

fn leak_here() -> Report<'static> {
    Report {
        category: "livelihood",
        description: "小区3号楼楼道水管漏水，已经两天了",
        at: Some(HERE),
        address: "望湖小区3号楼",
        phone: "13800001234",
        ..Report::default()
    }
}

/// The nonce the page's script would find.
fn solve(challenge: &str) -> String {
    (0u64..)
        .map(|n| n.to_string())
        .find(|n| {
            let d = Sha256::digest(format!("{challenge}:{n}").as_bytes());
            d[0] == 0 && d[1] == 0
        })
        .expect("a nonce")
}

fn between<'a>(body: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let at = body.find(start)? + start.len();
    body[at..].split(end).next()
}

impl Resident {
    fn new(server: &Server) -> Resident {
        Resident {
            agent: ureq::Agent::config_builder()
                .max_redirects(0)
                .http_status_as_error(false)
                .build()
                .into(),
            url: server.url.clone(),
            forwarded: None,
        }
    }

    fn answer(mut r: ureq::http::Response<ureq::Body>) -> Answer {
        Answer {
            status: r.status().as_u16(),
            csp: r
                .headers()
                .get("content-security-policy")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            body: r.body_mut().read_to_string().unwrap(),
        }
    }

    fn get(&self, path: &str) -> Answer {
        Self::answer(
            self.agent
                .get(format!("{}{path}", self.url))
                .call()
                .unwrap(),
        )
    }

    fn post(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        Self::answer(
            self.agent
                .post(format!("{}{path}", self.url))
                .send_form(form.iter().copied())
                .unwrap(),
        )
    }

    /// A fresh challenge, from the report page.
    fn challenge(&self) -> String {
        let page = self.get("/r").body;
        between(&page, "name=\"challenge\" value=\"", "\"")
            .expect("a challenge in the form")
            .to_owned()
    }

    /// Send a report with this challenge and nonce.
    fn send(&self, r: &Report<'_>, challenge: &str, nonce: &str) -> Answer {
        let b = "resident-test-boundary";
        let mut body = Vec::new();
        let (lat, lon) = r.at.unwrap_or_default();
        for (name, value) in [
            ("challenge", challenge),
            ("nonce", nonce),
            ("category", r.category),
            ("description", r.description),
            ("lat", lat),
            ("lon", lon),
            ("grid", r.grid),
            ("address", r.address),
            ("phone", r.phone),
        ] {
            body.extend_from_slice(
                format!(
                    "--{b}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        for (i, photo) in r.photos.iter().enumerate() {
            body.extend_from_slice(
                format!("--{b}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"IMG_{i}.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").as_bytes(),
            );
            body.extend_from_slice(photo);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{b}--\r\n").as_bytes());
        let mut request = self
            .agent
            .post(format!("{}/r/report", self.url))
            .header("Content-Type", format!("multipart/form-data; boundary={b}"));
        if let Some(f) = &self.forwarded {
            request = request.header("X-Forwarded-For", f);
        }
        Self::answer(request.send(&body[..]).unwrap())
    }

    /// Report as the page does: challenge, proof of work, submit.
    fn report(&self, r: &Report<'_>) -> Answer {
        let challenge = self.challenge();
        let nonce = solve(&challenge);
        self.send(r, &challenge, &nonce)
    }

    fn track(&self, code: &str) -> Answer {
        self.post("/r/track", &[("code", code)])
    }
}

/// The tracking code on a receipt.
fn code_of(receipt: &Answer) -> String {
    assert_eq!(receipt.status, 200, "{}", receipt.body);
    between(&receipt.body, "id=\"code\">", "<")
        .expect("a tracking code on the receipt")
        .to_owned()
}

fn sync(engine: &Engine) {
    engine.sync(&mut |_| {}).expect("sync");
}

fn only_case(engine: &Engine) -> DocId {
    let cases = engine.list_cases(&CaseFilter::default()).unwrap();
    assert_eq!(cases.len(), 1, "{cases:?}");
    cases[0].id.clone()
}

#[test]
fn a_resident_report_runs_the_loop_and_is_scored_by_its_tracking_code() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let server = start(&data);
    let resident = Resident::new(&server);

    // A small page that loads nothing from anywhere.
    let page = resident.get("/r");
    assert_eq!(page.status, 200);
    assert!(page.body.len() < 64 * 1024, "{} bytes", page.body.len());
    assert!(!page.body.contains("http://") && !page.body.contains("https://"));
    assert!(!page.body.contains("<script src"));
    assert!(page.csp.contains("default-src 'none'") && page.csp.contains("script-src 'sha256-"));

    let receipt = resident.report(&Report {
        photos: vec![camera_jpeg()],
        ..leak_here()
    });
    let code = code_of(&receipt);
    assert!(receipt.body.contains("已收到您的上报"));

    // The grid worker of the grid holding the position gets it, photo and all.
    let worker = enroll(&data, &server, WORKER, dir.path());
    sync(&worker);
    let id = only_case(&worker);
    let case = worker.get_case(&id).unwrap();
    assert_eq!(case.doc.grid.as_str(), GRID);
    assert_eq!(case.doc.channel, Channel::Resident);
    assert_eq!(case.doc.reporter.as_str(), DISPATCHER, "ADR 0013");
    assert_eq!(case.doc.photos.len(), 1);
    assert!(case.doc.photos[0].thumb.is_some());
    assert_eq!(case.doc.people[0].phone, "13800001234");
    assert_eq!(case.state.status, Status::Reported);

    let first = resident.track(&code);
    assert_eq!(first.status, 200);
    assert!(first.body.contains("已收到上报") && first.body.contains("待受理"));

    // The community dispatcher takes it round the loop, with the department and
    // the worker.
    set_password(&data, DISPATCHER, "wanghu-2026-dispatch");
    set_password(&data, HANDLER, "water-2026-handler");
    let mut dispatcher = Console::new(&server);
    dispatcher.sign_in(DISPATCHER, "wanghu-2026-dispatch");
    let mut handler = Console::new(&server);
    handler.sign_in(HANDLER, "water-2026-handler");
    let photo = dispatcher.get(&format!("/console/photos/{}", case.doc.photos[0].hash));
    assert_eq!(photo.status, 200, "the photo is on the relay");
    assert_eq!(dispatcher.act(&id, &[("action", "accept")]).status, 303);
    let dispatched = dispatcher.act(&id, &[("action", "dispatch"), ("dept", "water")]);
    assert_eq!(dispatched.status, 303, "{}", dispatched.body);
    let fed_back = handler.act(
        &id,
        &[("action", "feedback"), ("text", "石师傅已更换水管接头")],
    );
    assert_eq!(fed_back.status, 303, "{}", fed_back.body);
    sync(&worker);
    worker
        .act(
            &id,
            gridsync_core::Action::Verify {
                passed: true,
                comment: "复查不漏了".into(),
            },
        )
        .unwrap();
    sync(&worker);
    assert_eq!(dispatcher.act(&id, &[("action", "archive")]).status, 303);

    // The resident sees steps and times, nobody's name and nothing anyone wrote.
    let closed = resident.track(&code);
    assert_eq!(closed.status, 200);
    for step in [
        "社区已受理",
        "已派遣至职能部门处置",
        "现场核查通过",
        "已办结",
    ] {
        assert!(closed.body.contains(step), "{step} in {}", closed.body);
    }
    for private in NAMES
        .iter()
        .chain(&["水管接头", "复查不漏了", "13800001234", "water"])
    {
        assert!(
            !closed.body.contains(private),
            "{private} shown to the public"
        );
    }
    assert!(closed.body.contains("id=\"evaluate\""));

    // The score becomes the loop's evaluation step.
    let scored = resident.post(
        "/r/evaluate",
        &[
            ("code", &code),
            ("satisfaction", "5"),
            ("comment", "修得很快"),
        ],
    );
    assert_eq!(scored.status, 200);
    assert!(scored.body.contains("感谢您的评价") && scored.body.contains("已评价"));
    assert!(!scored.body.contains("id=\"evaluate\""));
    sync(&worker);
    let case = worker.get_case(&id).unwrap();
    assert_eq!(case.state.status, Status::Evaluated);
    assert_eq!(case.state.satisfaction, Some(5));
    let again = resident.post("/r/evaluate", &[("code", &code), ("satisfaction", "1")]);
    assert!(again.body.contains("已经评价过"), "{}", again.body);

    // A code typed in lower case with spaces is the same code; a wrong one is not.
    let typed = code.to_lowercase().replace('-', " ");
    assert_eq!(resident.track(&typed).status, 200);
    let wrong = resident.track("ABCD-EFGH-JKLM");
    assert_eq!(wrong.status, 404);
    assert!(wrong.body.contains("查询码不正确"));
}

#[test]
fn a_chosen_grid_routes_without_a_position_and_a_dispatcher_can_mark_it_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let server = start(&data);
    let resident = Resident::new(&server);

    let receipt = resident.report(&Report {
        category: "city",
        description: "路口井盖缺失，晚上很危险",
        grid: OTHER_GRID,
        address: "幸福路与和平路路口",
        ..Report::default()
    });
    let code = code_of(&receipt);
    set_password(&data, OTHER_DISPATCHER, "other-2026-dispatch");
    let mut dispatcher = Console::new(&server);
    dispatcher.sign_in(OTHER_DISPATCHER, "other-2026-dispatch");
    let board = dispatcher.get("/console/cases").body;
    let id: DocId = between(&board, "data-id=\"", "\"")
        .expect("the case on the community's board")
        .parse()
        .unwrap();
    assert!(board.contains("居民上报"), "the channel is in the title");
    let detail = dispatcher.get(&format!("/console/cases/{id}")).body;
    assert!(
        detail.contains("幸福路与和平路路口"),
        "the address, in the description"
    );

    let invalid = dispatcher.act(
        &id,
        &[("action", "invalidate"), ("text", "重复上报，已合并处理")],
    );
    assert_eq!(invalid.status, 303, "{}", invalid.body);
    let tracked = resident.track(&code).body;
    assert!(tracked.contains("经核实为无效上报") && tracked.contains("无效"));
    assert!(
        !tracked.contains("重复上报，已合并处理"),
        "no reasons shown"
    );
    assert!(!tracked.contains("id=\"evaluate\""));
    let scored = resident.post("/r/evaluate", &[("code", &code), ("satisfaction", "3")]);
    assert!(scored.body.contains("办结后才能评价"), "{}", scored.body);
}

#[test]
fn bad_reports_are_refused_in_chinese() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("relay"));
    let resident = Resident::new(&server);
    let refused = |a: &Answer, status: u16, says: &str| {
        assert_eq!(a.status, status, "{}", a.body);
        assert!(a.body.contains(says), "{says} in {}", a.body);
        // The form comes back with what was typed and a fresh challenge.
        assert!(a.body.contains("name=\"challenge\""));
    };

    // Each report takes one of the address's five, refused or not.
    let four = Report {
        photos: vec![camera_jpeg(); 4],
        ..leak_here()
    };
    refused(&resident.report(&four), 400, "最多上传 3 张照片");
    // Just over the whole body's limit, so the relay's answer is read (a body far
    // over it is cut off; the page's script refuses such photos before sending).
    let huge = Report {
        photos: vec![vec![0xff; 8 * 1024 * 1024 + 30 * 1024]; 3],
        ..leak_here()
    };
    refused(&resident.report(&huge), 400, "提交的内容过大");

    // Neither is a form the page makes.
    let not_multipart = Resident::answer(
        resident
            .agent
            .post(format!("{}/r/report", resident.url))
            .header("Content-Type", "application/json")
            .send("{}")
            .unwrap(),
    );
    refused(&not_multipart, 400, "表单内容不正确");
    let not_a_form = Resident::answer(
        resident
            .agent
            .post(format!("{}/r/track", resident.url))
            .header("Content-Type", "application/json")
            .send("{\"code\":\"x\"}")
            .unwrap(),
    );
    assert_eq!(not_a_form.status, 400);
    assert!(not_a_form.body.contains("表单内容不正确"));

    let unknown = Report {
        category: "ufo",
        ..leak_here()
    };
    let unknown_answer = resident.report(&unknown);
    refused(&unknown_answer, 400, "请选择问题类别");
    assert!(
        unknown_answer.body.contains("小区3号楼楼道水管漏水"),
        "what was typed is kept"
    );
    let challenge = resident.challenge();
    refused(
        &resident.send(&leak_here(), &challenge, ""),
        400,
        "安全校验未完成",
    );

    // Five are spent: the rest from another address (a new relay).
    let server = start(&dir.path().join("other"));
    let resident = Resident::new(&server);
    let challenge = resident.challenge();
    let nonce = solve(&challenge);
    // The mac's last hex digit changed (to one it is not: '0' one time in 16).
    let (kept, last) = challenge.split_at(challenge.len() - 1);
    let forged = format!("{kept}{}", if last == "0" { '1' } else { '0' });
    refused(
        &resident.send(&leak_here(), &forged, &nonce),
        400,
        "页面已过期",
    );
    let big_photo = Report {
        photos: vec![vec![0xff; 9 * 1024 * 1024]],
        ..leak_here()
    };
    refused(&resident.report(&big_photo), 400, "第 1 张照片超过 8 MB");
    let away = Report {
        at: Some(("39.9042", "116.4074")),
        ..leak_here()
    };
    refused(&resident.report(&away), 400, "不在本平台服务的网格内");
}

#[test]
fn a_burst_meets_the_rate_limit_and_a_duplicate_is_not_given_the_first_code() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("relay"));
    let resident = Resident::new(&server);

    let first = code_of(&resident.report(&leak_here()));
    // The same report a little way off: told it is known, and not given the
    // first one's code (the key to scoring that case).
    let again = resident.report(&Report {
        at: Some(("30.2742", "120.1552")),
        ..leak_here()
    });
    assert_eq!(again.status, 200);
    assert!(again.body.contains("已经有人提交过"));
    assert!(!again.body.contains(&first) && !again.body.contains("id=\"code\""));

    // A spent challenge is not good for a second report.
    let challenge = resident.challenge();
    let nonce = solve(&challenge);
    let other = Report {
        description: "垃圾桶满了没人清理",
        ..leak_here()
    };
    let _ = code_of(&resident.send(&other, &challenge, &nonce));
    let spent = resident.send(
        &Report {
            description: "路灯不亮",
            ..leak_here()
        },
        &challenge,
        &nonce,
    );
    assert_eq!(spent.status, 400);
    assert!(spent.body.contains("已经提交过"), "{}", spent.body);

    // A burst of eight more from one address: one of the five is left, the rest
    // are refused, each with the reason.
    let descriptions = [
        "一号楼电梯故障困人",
        "二号楼外墙瓷砖脱落",
        "三号楼门口占道经营",
        "四号楼噪音扰民严重",
        "五号楼垃圾堆放发臭",
        "六号楼消防通道堵塞",
        "七号楼下水道堵塞",
        "八号楼违规搭建",
    ];
    let answers: Vec<Answer> = descriptions
        .iter()
        .map(|d| {
            resident.report(&Report {
                description: d,
                ..leak_here()
            })
        })
        .collect();
    let taken = answers.iter().filter(|a| a.status == 200).count();
    assert_eq!(taken, 1, "five per address at once");
    for a in answers.iter().filter(|a| a.status != 200) {
        assert_eq!(a.status, 429);
        assert!(a.body.contains("您提交得太频繁了"), "{}", a.body);
    }
    // Following a report is limited apart from reporting.
    assert_eq!(resident.track(&first).status, 200);
}

#[test]
fn a_dispatcher_enters_a_hotline_call_in_her_own_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let server = start(&data);
    set_password(&data, DISPATCHER, "wanghu-2026-dispatch");
    let mut console = Console::new(&server);
    console.sign_in(DISPATCHER, "wanghu-2026-dispatch");

    let form = console.get("/console/hotline");
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("12345"));
    let csrf = between(&form.body, "name=\"csrf\" value=\"", "\"")
        .unwrap()
        .to_owned();
    let fields = [
        ("csrf", csrf.as_str()),
        ("channel", "hotline"),
        ("caller", "李女士"),
        ("phone", "13900005678"),
        ("category", "city"),
        ("description", "来电反映望湖小区门口路灯不亮"),
        ("grid", GRID),
        ("address", "望湖小区南门"),
    ];
    let entered = console.post_multipart("/console/hotline", &fields);
    assert_eq!(entered.status, 200, "{}", entered.body);
    let code = between(&entered.body, "id=\"code\">", "<").expect("a tracking code");
    // The same call entered twice is one case.
    let twice = console.post_multipart("/console/hotline", &fields);
    assert!(twice.body.contains("未重复登记"), "{}", twice.body);
    assert_eq!(between(&twice.body, "id=\"code\">", "<"), Some(code));
    let resident = Resident::new(&server);
    assert_eq!(
        resident.track(code).status,
        200,
        "the caller can follow it too"
    );

    let worker = enroll(&data, &server, WORKER, dir.path());
    sync(&worker);
    let case = worker.get_case(&only_case(&worker)).unwrap();
    assert_eq!(case.doc.channel, Channel::Hotline);
    assert_eq!(case.doc.reporter.as_str(), DISPATCHER);
    assert_eq!(case.doc.people[0].name, "李女士");
    assert_eq!(case.doc.people[0].role, "来电人");

    // A department handler takes no calls.
    set_password(&data, HANDLER, "water-2026-handler");
    let mut handler = Console::new(&server);
    handler.sign_in(HANDLER, "water-2026-handler");
    let refused = handler.get("/console/hotline");
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("只有调度员可以登记来电"));

    // Without the session's CSRF token, nothing is entered.
    let forged = console.post_multipart(
        "/console/hotline",
        &[
            ("csrf", "forged"),
            ("channel", "hotline"),
            ("category", "city"),
        ],
    );
    assert_eq!(forged.status, 403);
}

#[test]
fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit() {
    let dir = tempfile::tempdir().unwrap();
    // Seven residents behind one proxy on this machine: none is limited by the
    // others' reports.
    let server = crate::sockets::start_with(
        &dir.path().join("behind"),
        &["--trusted-proxy", "127.0.0.1"],
    );
    let taken = |server: &Server| {
        (1..=7)
            .filter(|n| {
                let mut r = Resident::new(server);
                r.forwarded = Some(format!("198.51.100.{n}, 127.0.0.1"));
                let description = format!("第{n}号楼下水道堵塞");
                r.report(&Report {
                    description: &description,
                    ..leak_here()
                })
                .status
                    == 200
            })
            .count()
    };
    assert_eq!(taken(&server), 7);
    // Without the setting the header is not believed: one address, five reports.
    let direct = start(&dir.path().join("direct"));
    assert_eq!(taken(&direct), 5);
}

#[test]
fn two_nodes_on_postgresql_share_codes_duplicates_and_challenges() {
    let dir = tempfile::tempdir().unwrap();
    let url = gridsync_tests::postgres_database();
    let flags = ["--database-url", url.as_str()];
    let a = crate::sockets::start_with(&dir.path().join("a"), &flags);
    let b = crate::sockets::start_with(&dir.path().join("b"), &flags);
    let (on_a, on_b) = (Resident::new(&a), Resident::new(&b));

    let code = code_of(&on_a.report(&leak_here()));
    // The other node knows the code, and the same report there gets it again:
    // the secret, the codes and the duplicates are the cluster's, not a node's.
    let tracked = on_b.track(&code);
    assert_eq!(tracked.status, 200, "{}", tracked.body);
    assert!(tracked.body.contains("已收到上报"));
    let again = on_b.report(&leak_here());
    assert!(again.body.contains("已经有人提交过") && !again.body.contains(&code));
    // A challenge from one node is good on the other.
    let challenge = on_a.challenge();
    let nonce = solve(&challenge);
    let other = Report {
        description: "小区东门路灯不亮",
        ..leak_here()
    };
    assert_eq!(on_b.send(&other, &challenge, &nonce).status, 200);
}

/// Only the same words about the same spot are one report: at the same address
/// when neither has a position, or within reach of each other when both do.
#[test]
fn the_same_words_elsewhere_are_a_new_report() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("relay"));
    let resident = Resident::new(&server);
    let here = Report {
        at: None,
        grid: GRID,
        description: "楼道灯坏了",
        ..leak_here()
    };
    let first = code_of(&resident.report(&here));
    let next_door = resident.report(&Report {
        address: "望湖小区9号楼",
        ..here.clone()
    });
    assert_ne!(code_of(&next_door), first, "another building's lamp");
    let placed = resident.report(&Report {
        at: Some(HERE),
        ..here.clone()
    });
    assert_ne!(code_of(&placed), first, "one with a position, one without");
    let same = resident.report(&here);
    assert!(same.body.contains("已经有人提交过"), "{}", same.body);
}

/// Another site's page cannot make its visitors' browsers post here.
#[test]
fn posts_from_another_site_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("relay"));
    let resident = Resident::new(&server);
    let code = code_of(&resident.report(&leak_here()));
    let post = |name: &str, value: &str| {
        let mut r = resident
            .agent
            .post(format!("{}/r/track", resident.url))
            .header(name, value)
            .send_form([("code", code.as_str())])
            .unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    };
    for (name, value) in [
        ("Sec-Fetch-Site", "cross-site"),
        ("Sec-Fetch-Site", "same-site"),
        ("Origin", "https://evil.example"),
    ] {
        let (status, body) = post(name, value);
        assert_eq!(status, 403, "{name}: {value}");
        assert!(body.contains("不要从其他网站提交") && !body.contains(&code));
    }
    let (status, _) = post("Sec-Fetch-Site", "same-origin");
    assert_eq!(status, 200, "this page's own form");
    let own = server.url.trim_start_matches("http://").to_owned();
    let (status, _) = post("Origin", &format!("http://{own}"));
    assert_eq!(status, 200);
}

/// The duplicate-detection entries hold a report's position: one older than the
/// duplicate window is forgotten when a report is next taken; a fresh one stays.
#[test]
fn old_duplicate_entries_and_their_positions_are_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let server = start(&data);
    let store = gridsync_server::relay::store::open_store(&data, None).unwrap();
    let two_days_ago = chrono::Utc::now().timestamp_millis() - 2 * 24 * 3600 * 1000;
    let planted = format!("resident.dup.{}.{GRID}.at", "0".repeat(64));
    store
        .set_meta(
            &planted,
            &format!("case-00000000000000000000000000000000 {two_days_ago} 30.2741 120.1551"),
        )
        .unwrap();
    let resident = Resident::new(&server);
    code_of(&resident.report(&leak_here()));
    let kept = store.metas_with_prefix("resident.dup.", 100).unwrap();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_ne!(kept[0].0, planted, "the two-day-old entry is gone");
}

/// An operator who does not offer the channel turns it off: every public page
/// says so, nothing is taken, and the console's hotline form still works.
#[test]
fn a_server_with_the_channel_off_says_so_and_takes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let server = crate::sockets::start_with(&data, &["--resident-channel", "false"]);
    let resident = Resident::new(&server);
    for page in ["/r", "/r/track"] {
        let closed = resident.get(page);
        assert_eq!(closed.status, 404, "{page}");
        assert!(
            closed.body.contains("未开放居民网上上报"),
            "{}",
            closed.body
        );
    }
    let refused = resident.post("/r/report", &[("category", "livelihood")]);
    assert_eq!(refused.status, 404);
    set_password(&data, DISPATCHER, "hotline-2026-closed");
    let mut console = Console::new(&server);
    assert_eq!(
        console.sign_in(DISPATCHER, "hotline-2026-closed").status,
        303
    );
    assert!(
        console
            .get("/console/cases")
            .body
            .contains("href=\"/console/hotline\""),
        "the dispatcher's menu leads to the hotline form"
    );
    assert_eq!(console.get("/console/hotline").status, 200);
}
