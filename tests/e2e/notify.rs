//! Notifications over real sockets: `gridsync serve` with a webhook gateway
//! pointing at a stub HTTP service on loopback that fails its first two requests.
//! Level-4 supervision (reached by running late, and raised by hand in the
//! console) and dispatches reach the stub exactly once per rule and recipient,
//! after retries, with no personal data in any message; the console's case page
//! shows each send. Also a return, the rate limit, a cancelled notice and the
//! log-only gateway (with a deadline reminder).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use gridsync_core::{Action, Engine, Person};
use gridsync_tests::fake_server::FakeServer;
use serde_json::Value;

use crate::console::{set_password, Console};
use crate::sockets::{enroll, enroll_with_clock, gridsync, listening, start_with};
use crate::workflow::{leak, DISPATCHER, WORKER};

const TOWN_DISPATCHER: &str = "td-339901001";
const WATER: [&str; 2] = ["h-water-1", "h-water-2"];
/// What no message may carry: a resident's name and phone, the case's title,
/// description and address, and the reporting worker's name.
const PERSONAL: [&str; 6] = [
    "王小明",
    "13912345678",
    "楼上管道漏水",
    "3号楼楼上管道漏水",
    "望湖小区",
    "熊雨",
];

fn sync(engine: &Engine) {
    engine.sync(&mut |_| {}).expect("sync");
}

/// Every request the stub received: its status and JSON body.
type Received = Arc<Mutex<Vec<(u16, Value)>>>;

/// A stub gateway answering 500 to its first two requests and 200 after.
fn stub_gateway() -> (FakeServer, Received) {
    let received: Received = Arc::default();
    let log = received.clone();
    let stub = FakeServer::start_http(200, move |path, body| {
        let mut log = log.lock().unwrap();
        let status = if path != "/hook" {
            404
        } else if log.len() < 2 {
            500
        } else {
            200
        };
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        log.push((status, json));
        (status, Vec::new())
    })
    .unwrap();
    (stub, received)
}

/// (case, event, recipient) of each message the stub accepted, with how many times.
fn accepted(received: &Received) -> BTreeMap<(String, String, String), usize> {
    let mut out = BTreeMap::new();
    for (status, m) in received.lock().unwrap().iter() {
        if *status == 200 {
            let key = (
                m["case"].as_str().unwrap_or_default().to_owned(),
                m["event"].as_str().unwrap_or_default().to_owned(),
                m["recipient"]["user"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
            *out.entry(key).or_insert(0) += 1;
        }
    }
    out
}

#[test]
fn level_four_and_dispatches_reach_the_gateway_once_each_after_it_fails_twice() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let (stub, received) = stub_gateway();
    let config = dir.path().join("gridsync.toml");
    std::fs::write(
        &config,
        format!(
            "[notify]\ngateway = \"webhook\"\nurl = \"{}/hook\"\nscan_interval_secs = 1\n\
             retry_base_secs = 1\nmax_attempts = 4\ntimeout_secs = 5\n",
            stub.url()
        ),
    )
    .unwrap();
    let metrics_token = "e2e-metrics-token-0123456789";
    let server = start_with(
        &data,
        &[
            "--config",
            config.to_str().unwrap(),
            "--metrics-token",
            metrics_token,
        ],
    );
    // A grid worker who reported nine days ago and a dispatcher who acted eight
    // days ago, both offline since (times the relay finds plausible): the dispatch
    // is now more than 168 hours late, so supervision has reached level 4 by itself.
    let days_ago = |n: i64| -> gridsync_core::Clock {
        Arc::new(move || Utc::now() - chrono::Duration::days(n))
    };
    let worker = enroll_with_clock(&data, &server, WORKER, dir.path(), days_ago(9));
    let phone = enroll_with_clock(&data, &server, DISPATCHER, dir.path(), days_ago(8));
    set_password(&data, DISPATCHER, "wanghu-2026-dispatch");
    let mut console = Console::new(&server);
    console.sign_in(DISPATCHER, "wanghu-2026-dispatch");

    let mut personal = leak();
    personal.people = vec![Person {
        name: "王小明".into(),
        role: "业主".into(),
        phone: "13912345678".into(),
    }];
    let late = worker.report_case(personal.clone()).unwrap();
    let urged = worker.report_case(personal).unwrap();
    sync(&worker);
    sync(&phone);
    phone.act(&late, Action::Accept).unwrap();
    phone
        .dispatch(
            &late,
            "water".parse().unwrap(),
            Some(Utc::now() - chrono::Duration::hours(7 * 24 + 1)),
        )
        .unwrap();
    sync(&phone);
    // The other case the way a dispatcher at her desk does it: dispatched for
    // 24 hours, then supervision raised to level 4 by hand.
    for form in [
        &[("action", "accept")][..],
        &[("action", "dispatch"), ("dept", "water"), ("hours", "24")],
        &[
            ("action", "urge"),
            ("level", "4"),
            ("comment", "请王小明配合"),
        ],
    ] {
        let page = console.act(&urged, form);
        assert_eq!(page.status, 303, "{}", page.body);
    }

    // One message per rule and recipient: the dispatch to each water handler and
    // level 4 to the town's dispatcher, for each case.
    let mut want = BTreeMap::new();
    for case in [&late, &urged] {
        for h in WATER {
            want.insert((case.to_string(), "dispatched".into(), h.to_owned()), 1);
        }
        want.insert(
            (
                case.to_string(),
                "supervision_sms".into(),
                TOWN_DISPATCHER.to_owned(),
            ),
            1,
        );
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while accepted(&received) != want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    // A few more rounds of scanning and sending: nothing is sent again.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(accepted(&received), want);

    let all = received.lock().unwrap().clone();
    assert_eq!(
        all.len(),
        want.len() + 2,
        "two failures, then one success each"
    );
    // The two that failed were retried, under the same id.
    let failed: BTreeSet<i64> = all[..2]
        .iter()
        .map(|(_, m)| m["id"].as_i64().unwrap())
        .collect();
    assert!(all[..2].iter().all(|(s, m)| *s == 500 && m["attempt"] == 1));
    for (status, m) in &all[2..] {
        assert_eq!(*status, 200);
        let retried = failed.contains(&m["id"].as_i64().unwrap());
        assert_eq!(m["attempt"], if retried { 2 } else { 1 }, "{m}");
    }
    for (_, m) in &all {
        assert_eq!(m["format"], "gridsync-notification");
        assert_eq!(m["category"], "livelihood");
        assert_eq!(m["region"], "339901001001001");
        assert!(m["deadline"].is_i64() && !m["text"].as_str().unwrap().is_empty());
        let body = m.to_string();
        for secret in PERSONAL {
            assert!(!body.contains(secret), "{secret} in {body}");
        }
    }
    let level4 = all
        .iter()
        .find(|(_, m)| m["event"] == "supervision_sms")
        .unwrap();
    assert_eq!(level4.1["level"], 4);
    assert!(level4.1["text"].as_str().unwrap().contains("短信督办"));

    // /metrics counts them by state.
    let metrics = ureq::get(format!("{}/metrics", server.url))
        .header("Authorization", format!("Bearer {metrics_token}"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    for line in [
        "gridsync_notifications{state=\"sent\"} 6",
        "gridsync_notifications{state=\"queued\"} 0",
        "gridsync_notifications{state=\"failed\"} 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }

    // The case page shows each send on the timeline.
    let page = console.get(&format!("/console/cases/{late}")).body;
    let list = page
        .split("id=\"notifications\"")
        .nth(1)
        .expect("a notification list")
        .split("</ul>")
        .next()
        .unwrap();
    assert_eq!(list.matches("data-state=\"sent\"").count(), 3, "{list}");
    assert!(list.contains("data-rule=\"supervision_sms\"") && list.contains("短信督办"));
    assert!(list.contains("data-rule=\"dispatched\"") && list.contains("派遣通知"));
}

#[test]
fn a_return_reaches_the_reporter_and_the_rate_limit_defers_the_excess() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let received: Received = Arc::default();
    let log = received.clone();
    let stub = FakeServer::start_http(200, move |_, body| {
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        log.lock().unwrap().push((200, json));
        (200, Vec::new())
    })
    .unwrap();
    let config = dir.path().join("gridsync.toml");
    std::fs::write(
        &config,
        format!(
            "[notify]\ngateway = \"webhook\"\nurl = \"{}/hook\"\nscan_interval_secs = 1\n\
             max_per_hour = 1\n",
            stub.url()
        ),
    )
    .unwrap();
    let server = start_with(&data, &["--config", config.to_str().unwrap()]);
    let worker = enroll(&data, &server, WORKER, dir.path());
    let handler = enroll(&data, &server, WATER[0], dir.path());
    set_password(&data, DISPATCHER, "wanghu-2026-dispatch");
    let mut console = Console::new(&server);
    console.sign_in(DISPATCHER, "wanghu-2026-dispatch");
    let first = worker.report_case(leak()).unwrap();
    let second = worker.report_case(leak()).unwrap();
    sync(&worker);
    for case in [&first, &second] {
        for form in [
            &[("action", "accept")][..],
            &[("action", "dispatch"), ("dept", "water"), ("hours", "24")],
        ] {
            assert_eq!(console.act(case, form).status, 303);
        }
    }
    let heard = |received: &Received| -> BTreeMap<String, Vec<String>> {
        let mut by = BTreeMap::<String, Vec<String>>::new();
        for (_, m) in received.lock().unwrap().iter() {
            by.entry(m["recipient"]["user"].as_str().unwrap().to_owned())
                .or_default()
                .push(m["event"].as_str().unwrap().to_owned());
        }
        by
    };
    let mut want: BTreeMap<String, Vec<String>> = WATER
        .into_iter()
        .map(|u| (u.to_owned(), vec!["dispatched".to_owned()]))
        .collect();
    let wait_for = |want: &BTreeMap<String, Vec<String>>| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while heard(&received) != *want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
    };

    // One dispatch per handler this hour; the other waits, shown on its page.
    wait_for(&want);
    let waiting = || {
        [&first, &second]
            .map(|c| console.get(&format!("/console/cases/{c}")).body)
            .iter()
            .map(|p| p.matches("rate_limited").count())
            .sum::<usize>()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while waiting() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(waiting(), 2, "one per handler");

    // The handler returns the first case: its reporter hears of it.
    sync(&handler);
    handler
        .act(
            &first,
            Action::Return {
                reason: "不属于本部门".into(),
            },
        )
        .unwrap();
    sync(&handler);
    want.insert(WORKER.to_owned(), vec!["returned".to_owned()]);
    wait_for(&want);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(heard(&received), want);
    let returned = received
        .lock()
        .unwrap()
        .iter()
        .find(|(_, m)| m["event"] == "returned")
        .map(|(_, m)| m.clone())
        .unwrap();
    assert_eq!(returned["case"], first.to_string());
    assert!(
        !returned.to_string().contains("不属于本部门"),
        "no free text"
    );
    let page = console.get(&format!("/console/cases/{first}")).body;
    assert!(page.contains("data-rule=\"returned\" data-state=\"sent\""));
}

#[test]
fn a_dispatch_notice_the_case_moved_past_is_cancelled_not_sent() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    // The gateway refuses every dispatch notice (the messaging service is down for
    // them), and takes everything else.
    let received: Received = Arc::default();
    let log = received.clone();
    let stub = FakeServer::start_http(500, move |_, body| {
        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let status = if json["event"] == "dispatched" {
            500
        } else {
            200
        };
        log.lock().unwrap().push((status, json));
        (status, Vec::new())
    })
    .unwrap();
    let config = dir.path().join("gridsync.toml");
    std::fs::write(
        &config,
        format!(
            "[notify]\ngateway = \"webhook\"\nurl = \"{}/hook\"\nscan_interval_secs = 1\n\
             retry_base_secs = 1\nmax_attempts = 100\n",
            stub.url()
        ),
    )
    .unwrap();
    let server = start_with(&data, &["--config", config.to_str().unwrap()]);
    let worker = enroll(&data, &server, WORKER, dir.path());
    let handler = enroll(&data, &server, WATER[0], dir.path());
    set_password(&data, DISPATCHER, "wanghu-2026-dispatch");
    let mut console = Console::new(&server);
    console.sign_in(DISPATCHER, "wanghu-2026-dispatch");
    let case = worker.report_case(leak()).unwrap();
    sync(&worker);
    for form in [
        &[("action", "accept")][..],
        &[("action", "dispatch"), ("dept", "water"), ("hours", "24")],
    ] {
        assert_eq!(console.act(&case, form).status, 303);
    }
    let page = || console.get(&format!("/console/cases/{case}")).body;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !page().contains("http_500") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(page().contains("http_500"), "the notices are being retried");

    // The handler's phone returns the case while its notices wait for a retry.
    sync(&handler);
    handler
        .act(
            &case,
            Action::Return {
                reason: "不属于本部门".into(),
            },
        )
        .unwrap();
    sync(&handler);
    let deadline = Instant::now() + Duration::from_secs(30);
    while (page().matches("data-state=\"cancelled\"").count() < 2
        || !page().contains("data-rule=\"returned\" data-state=\"sent\""))
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    let shown = page();
    assert_eq!(
        shown.matches("data-state=\"cancelled\"").count(),
        2,
        "{shown}"
    );
    assert!(shown.contains("data-rule=\"returned\" data-state=\"sent\""));
    std::thread::sleep(Duration::from_secs(2));
    let tried = received.lock().unwrap().len();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(received.lock().unwrap().len(), tried, "no more attempts");
    assert!(received
        .lock()
        .unwrap()
        .iter()
        .all(|(status, m)| (*status == 500) == (m["event"] == "dispatched")));
}

#[test]
fn the_log_gateway_records_and_logs_without_personal_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let config = dir.path().join("gridsync.toml");
    std::fs::write(
        &config,
        "[notify]\ngateway = \"log\"\nscan_interval_secs = 1\n",
    )
    .unwrap();
    let logs = dir.path().join("stderr.log");
    let child = gridsync()
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .arg("--config")
        .arg(&config)
        .env("GRIDSYNC_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&logs).unwrap())
        .spawn()
        .unwrap();
    let server = listening(child);
    let worker = enroll(&data, &server, WORKER, dir.path());
    set_password(&data, DISPATCHER, "wanghu-2026-dispatch");
    let mut console = Console::new(&server);
    console.sign_in(DISPATCHER, "wanghu-2026-dispatch");
    let mut personal = leak();
    personal.people = vec![Person {
        name: "王小明".into(),
        role: "业主".into(),
        phone: "13912345678".into(),
    }];
    let case = worker.report_case(personal).unwrap();
    sync(&worker);
    for form in [
        &[("action", "accept")][..],
        // Due in an hour: within the two hours' lead, so a reminder goes too.
        &[("action", "dispatch"), ("dept", "water"), ("hours", "1")],
    ] {
        assert_eq!(console.act(&case, form).status, 303);
    }
    let page = || console.get(&format!("/console/cases/{case}")).body;
    let deadline = Instant::now() + Duration::from_secs(30);
    while page().matches("data-state=\"sent\"").count() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(page().matches("data-state=\"sent\"").count(), 4);
    assert!(page().contains("到期提醒"));

    let text = std::fs::read_to_string(&logs).unwrap();
    let logged: Vec<&str> = text.lines().filter(|l| l.contains("log gateway")).collect();
    assert_eq!(logged.len(), 4, "{text}");
    for h in WATER {
        for event in ["\"dispatched\"", "\"deadline_soon\""] {
            assert!(
                logged
                    .iter()
                    .any(|l| l.contains(h) && l.contains(&case.to_string()) && l.contains(event)),
                "{text}"
            );
        }
    }
    for secret in PERSONAL {
        assert!(!text.contains(secret), "{secret} in the logs");
    }
    assert!(!text.contains("【"), "the message text is not logged");
}
