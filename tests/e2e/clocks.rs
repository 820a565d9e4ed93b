//! Phones whose clocks are off (issue #19, scenario 6): the relay judges deadlines,
//! overdue and the times of its index by its own clock where a phone's time is
//! implausible, flags those entries, and leaves the documents as written.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use gridsync_core::sync::{self, SyncReport};
use gridsync_core::{CaseFilter, DeviceId, DocId, Engine, Identity, Status};
use gridsync_tests::{LocalTransport, SimRelay};

use crate::workflow::{leak, DISPATCHER, WORKER};

/// A phone enrolled with `relay` whose clock is `offset` off the true time.
struct Skewed<'a> {
    engine: Engine,
    transport: LocalTransport<'a>,
}

impl<'a> Skewed<'a> {
    fn enroll(sim: &'a SimRelay, user: &str, folder: &std::path::Path, offset: Duration) -> Self {
        let code = sim.relay.create_enrollment(user).unwrap();
        let device = DeviceId::random();
        let transport = LocalTransport::new(&sim.relay);
        let e = sync::enroll(&transport, &code, device, "sim-1.0").unwrap();
        let engine = Engine::open_with_clock(
            folder.join(format!("{user}-{device}.db")),
            Identity {
                user: e.user,
                device,
            },
            Arc::new(move || Utc::now() + offset),
        )
        .unwrap();
        engine.load_directory(&e.directory).unwrap();
        engine.set_server("local:", &e.token).unwrap();
        Skewed { engine, transport }
    }

    fn sync(&self) -> SyncReport {
        sync::sync(&self.engine, &self.transport, &mut |_| {}).unwrap()
    }
}

/// The deadline of `id` in the relay's case index.
fn index_deadline(sim: &SimRelay, id: &DocId) -> Option<DateTime<Utc>> {
    let all = CaseFilter {
        limit: 1000,
        ..Default::default()
    };
    sim.relay
        .engine()
        .list_cases(&all)
        .unwrap()
        .into_iter()
        .find(|c| &c.id == id)
        .and_then(|c| c.deadline)
}

fn near(a: DateTime<Utc>, b: DateTime<Utc>) -> bool {
    (a - b).num_minutes().abs() <= 5
}

#[test]
fn a_skewed_dispatchers_deadline_is_judged_from_the_relays_clock_and_flagged() {
    let sim = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let worker = sim.enroll(WORKER, dir.path());
    for offset in [
        Duration::days(-365),
        Duration::days(-3),
        Duration::days(3),
        Duration::days(365),
    ] {
        let dispatcher = Skewed::enroll(&sim, DISPATCHER, dir.path(), offset);
        let id = worker.report_case(leak()).unwrap();
        worker.sync().unwrap();
        dispatcher.sync();
        let dept = "water".parse().unwrap();
        dispatcher.engine.dispatch(&id, dept, None).unwrap();
        let sent = Utc::now();
        dispatcher.sync();

        // The document keeps the device's deadline: every replica the same.
        let written = dispatcher.engine.get_case(&id).unwrap();
        let written_deadline = written.state.deadline.unwrap();
        // The directory's rule for the case, a span that does not depend on clocks.
        let at = written.doc.timeline[1].at;
        let rule = written_deadline - at;
        assert!(near(at, sent + offset), "{offset}");
        assert!(rule > Duration::hours(1), "{rule}");
        worker.sync().unwrap();
        assert_eq!(
            worker.get_case(&id).unwrap().state.deadline,
            Some(written_deadline)
        );
        let relay_doc = sim.relay.engine().read_doc(&id).unwrap();
        assert!(
            matches!(&relay_doc, Some(gridsync_core::DocContent::Case(c)) if c.timeline == written.doc.timeline)
        );

        // The relay's index: the rule's span from its own clock, not overdue.
        let judged = index_deadline(&sim, &id).unwrap();
        assert!(
            near(judged, sent + rule),
            "{offset}: the relay's deadline {judged} is not {rule} from {sent}"
        );
        let overdue = CaseFilter {
            statuses: vec![Status::Dispatched],
            overdue_at: Some(Utc::now()),
            limit: 1000,
            ..Default::default()
        };
        assert!(
            !sim.relay
                .engine()
                .list_cases(&overdue)
                .unwrap()
                .iter()
                .any(|c| c.id == id),
            "{offset}: overdue at once on the relay"
        );

        // Flagged: the dispatch is read at another time than written.
        let doc = match relay_doc {
            Some(gridsync_core::DocContent::Case(c)) => c,
            _ => unreachable!(),
        };
        let state = sim.relay.judged_state(&doc);
        // The same reading (its receipt recorded a moment after the index took it).
        assert!(near(state.deadline.unwrap(), judged));
        assert_eq!(state.judged_at.len(), 2, "{offset}");
        assert!(state.judged_at[0].is_none(), "the report is on time");
        assert!(
            state.judged_at[1].is_some(),
            "{offset}: the dispatch flagged"
        );
    }
    assert_eq!(sim.relay.implausible_times(), 4);
}

#[test]
fn a_fast_workers_report_is_not_in_the_relays_future_and_the_console_marks_it() {
    let sim = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let worker = Skewed::enroll(&sim, WORKER, dir.path(), Duration::days(365));
    let id = worker.engine.report_case(leak()).unwrap();
    worker.sync();
    let received = Utc::now();
    let all = CaseFilter {
        limit: 1000,
        ..Default::default()
    };
    let row = sim
        .relay
        .engine()
        .list_cases(&all)
        .unwrap()
        .into_iter()
        .find(|c| c.id == id)
        .unwrap();
    assert!(
        near(row.created, received),
        "reported at {} on the relay, a year ahead",
        row.created
    );
    // The console's case: judged at the receipt, the device's time kept beside it.
    sim.relay
        .set_console_password(DISPATCHER, "correct horse battery")
        .unwrap();
    let token = sim
        .relay
        .sign_in(
            DISPATCHER,
            "correct horse battery",
            std::net::Ipv4Addr::LOCALHOST.into(),
        )
        .unwrap();
    let who = sim.relay.console_session(&token).unwrap();
    let case = sim.relay.console_case(&who, id.as_str()).unwrap();
    assert!(case.doc.timeline[0].at > received + Duration::days(364));
    let judged = case.state.judged_at[0].expect("the report's time flagged");
    assert!(near(judged, received));
    assert_eq!(sim.relay.implausible_times(), 1);
    // A sync again records nothing twice.
    worker.sync();
    assert_eq!(sim.relay.implausible_times(), 1);
}

#[test]
fn the_console_shows_a_slow_dispatchers_deadline_from_the_relays_clock_and_marks_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let server = crate::sockets::start(&data);
    let worker = crate::sockets::enroll(&data, &server, WORKER, dir.path());
    let dispatcher = crate::sockets::enroll_with_clock(
        &data,
        &server,
        DISPATCHER,
        dir.path(),
        Arc::new(|| Utc::now() - Duration::days(365)),
    );
    let id = worker.report_case(leak()).unwrap();
    worker.sync(&mut |_| {}).unwrap();
    dispatcher.sync(&mut |_| {}).unwrap();
    dispatcher
        .dispatch(&id, "water".parse().unwrap(), None)
        .unwrap();
    dispatcher.sync(&mut |_| {}).unwrap();
    let written = dispatcher.get_case(&id).unwrap().state.deadline.unwrap();
    assert!(
        written < Utc::now() - Duration::days(300),
        "a year behind as written"
    );

    let console = crate::console::signed_in(&server, &data, DISPATCHER);
    let page = console.get(&format!("/console/cases/{}", id.as_str()));
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("设备时间异常，按服务器判定时间"),
        "the dispatch is marked"
    );
    assert_eq!(page.body.matches("class=\"time-implausible\"").count(), 1);
    assert!(
        !page.body.contains("class=\"tag-overdue\""),
        "not overdue at once"
    );
    assert!(
        !page.body.contains("id=\"supervision\""),
        "no supervision raised"
    );
    // Nor on the supervision page, which reads the relay's index.
    let supervision = console.get("/console/supervision");
    assert_eq!(supervision.status, 200);
    assert!(
        !supervision.body.contains(id.as_str()),
        "not listed as late"
    );
}
