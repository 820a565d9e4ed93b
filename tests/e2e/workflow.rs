//! The six-step loop across a worker, a dispatcher and a department handler on
//! three devices, with offline periods, through the relay.

use gridsync_core::{Action, CaseFilter, Location, NewCase, Severity, Status};
use gridsync_tests::{run_until_quiet, SimRelay};

pub const WORKER: &str = "w-339901001001001";
pub const DISPATCHER: &str = "cd-339901001001";
pub const HANDLER: &str = "h-water-1";

pub fn leak() -> NewCase {
    NewCase {
        title: "楼上管道漏水".into(),
        description: "3号楼楼上管道漏水".into(),
        category: "livelihood".parse().unwrap(),
        subcategory: Some("livelihood.water_leak".parse().unwrap()),
        severity: Severity::High,
        grid: None,
        location: Some(Location {
            lat: 30.27,
            lon: 120.15,
            address: "望湖小区3号楼".into(),
        }),
        people: vec![],
        photos: vec![],
        links: Default::default(),
    }
}

#[test]
fn a_case_goes_round_the_loop_across_three_devices_with_offline_periods() {
    let relay = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let worker = relay.enroll(WORKER, dir.path());
    let dispatcher = relay.enroll(DISPATCHER, dir.path());
    let handler = relay.enroll(HANDLER, dir.path());

    // Reported with no signal; nothing leaves the phone.
    worker.set_online(false);
    let id = worker.report_case(leak()).unwrap();
    worker.add_note(&id, "楼下天花板渗水").unwrap();
    assert!(worker.sync().is_err());
    assert_eq!(
        worker.outbox_pending(usize::MAX).unwrap().len(),
        2,
        "still waiting"
    );

    // Back online: pushed, and the dispatcher sees it; the handler does not yet.
    worker.set_online(true);
    let r = worker.sync().unwrap();
    assert_eq!(r.pushed, 2);
    assert!(worker.outbox_pending(usize::MAX).unwrap().is_empty());
    dispatcher.sync().unwrap();
    handler.sync().unwrap();
    assert_eq!(dispatcher.get_case(&id).unwrap().doc.notes.len(), 1);
    assert!(
        handler.doc_ids().unwrap().is_empty(),
        "not dispatched to the handler yet"
    );

    dispatcher.act(&id, Action::Accept).unwrap();
    dispatcher
        .dispatch(&id, "water".parse().unwrap(), None)
        .unwrap();
    dispatcher.sync().unwrap();
    let r = handler.sync().unwrap();
    assert!(r.pulled >= 4, "the case arrives whole: {r:?}");
    assert_eq!(
        handler.get_case(&id).unwrap().state.status,
        Status::Dispatched
    );

    handler
        .act(
            &id,
            Action::Feedback {
                result: "已更换水管".into(),
            },
        )
        .unwrap();
    handler.sync().unwrap();
    worker.sync().unwrap();
    worker
        .act(
            &id,
            Action::Verify {
                passed: true,
                comment: "已修好".into(),
            },
        )
        .unwrap();
    worker.sync().unwrap();
    dispatcher.sync().unwrap();
    dispatcher.act(&id, Action::Archive).unwrap();
    dispatcher
        .act(
            &id,
            Action::Evaluate {
                satisfaction: 5,
                comment: String::new(),
            },
        )
        .unwrap();
    run_until_quiet(&[&worker, &dispatcher, &handler]);

    for d in [&worker, &dispatcher, &handler] {
        let case = d.get_case(&id).unwrap();
        assert_eq!(case.state.status, Status::Evaluated);
        assert_eq!(case.doc.timeline.len(), 7);
    }
    // The server's own replica has it too, materialised.
    let server = relay.relay.engine().read_doc(&id).unwrap().unwrap();
    match server {
        gridsync_core::DocContent::Case(c) => {
            assert_eq!(gridsync_core::fold(&c.timeline).status, Status::Evaluated)
        }
        other => panic!("expected a case, got {other:?}"),
    }
    let list = dispatcher.list_cases(&CaseFilter::default()).unwrap();
    assert_eq!(list.len(), 1);
}

#[test]
fn thousands_of_changes_move_in_a_few_requests() {
    let relay = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let worker = relay.enroll(WORKER, dir.path());
    let dispatcher = relay.enroll(DISPATCHER, dir.path());
    for i in 0..300 {
        let mut c = leak();
        c.title = format!("第{i}号案件");
        worker.report_case(c).unwrap();
    }
    let up = worker.sync().unwrap();
    assert_eq!(up.pushed, 300);
    assert!(
        up.requests <= 3,
        "push of 300 docs took {} requests",
        up.requests
    );
    let down = dispatcher.sync().unwrap();
    assert_eq!(down.pulled, 300);
    assert!(
        down.requests <= 3,
        "pull of 300 docs took {} requests",
        down.requests
    );
    assert_eq!(
        dispatcher
            .list_cases(&CaseFilter {
                limit: 1000,
                ..Default::default()
            })
            .unwrap()
            .len(),
        300
    );
}

/// A device pulling in small pages is told after each how much still waits, so
/// its progress bar can show bytes remaining for pull as for push.
#[test]
fn each_pull_page_says_how_much_still_waits() {
    use gridsync_core::sync::session::{pull_all, PullTotals};
    use gridsync_core::sync::Link;
    let relay = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let worker = relay.enroll(WORKER, dir.path());
    let dispatcher = relay.enroll(DISPATCHER, dir.path());
    for i in 0..12 {
        let mut c = leak();
        c.title = format!("第{i}号案件");
        worker.report_case(c).unwrap();
    }
    assert_eq!(worker.sync().unwrap().pushed, 12);

    // One change per page (a page holds at least one).
    let mut link = Link::new(&dispatcher.transport, Some(&dispatcher.token));
    let mut seen: Vec<PullTotals> = Vec::new();
    let totals = pull_all(&dispatcher.engine, &mut link, 1, &mut |t| {
        seen.push(t.clone())
    })
    .unwrap();
    assert_eq!(totals.pulled, 12);
    assert_eq!(seen.len(), 12, "{seen:?}");
    for (i, t) in seen.iter().enumerate() {
        let left = 11 - i as u64;
        assert_eq!(t.backlog.changes, left, "after page {}", i + 1);
        assert_eq!(t.backlog.bytes == 0, left == 0, "after page {}", i + 1);
    }
    assert!(
        seen.windows(2)
            .all(|w| w[1].backlog.bytes < w[0].backlog.bytes),
        "the bytes remaining fall page by page"
    );
}

#[test]
fn a_case_reported_and_handled_on_the_spot_offline_goes_up_in_one_push() {
    let relay = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let worker = relay.enroll(WORKER, dir.path());
    let dispatcher = relay.enroll(DISPATCHER, dir.path());
    let id = worker.report_case(leak()).unwrap();
    worker
        .act(
            &id,
            Action::SelfHandle {
                result: "当场处理".into(),
            },
        )
        .unwrap();
    let r = worker.sync().unwrap();
    assert_eq!((r.pushed, r.rejected.len()), (2, 0), "{r:?}");
    dispatcher.sync().unwrap();
    assert_eq!(
        dispatcher.get_case(&id).unwrap().state.status,
        Status::Verified
    );
}
