//! The command centre's figures and automatic supervision, from the index.

use chrono::Duration;
use gridsync_core::doc::adjustment::{Month, NewAdjustment};
use gridsync_core::points::WorkerPoints;
use gridsync_core::stats::GroupBy;
use gridsync_core::{Action, CaseFilter, DocId, Status, SupervisionLevel};

use crate::support::*;

fn closed_loop(
    worker: &Device,
    dispatcher: &Device,
    handler: &Device,
    clock: &TestClock,
    late: bool,
    satisfaction: u8,
) -> DocId {
    let id = worker.report_case(leak_case()).unwrap();
    sync(worker, dispatcher);
    dispatcher.act(&id, Action::Accept).unwrap();
    dispatcher
        .dispatch(
            &id,
            "water".parse().unwrap(),
            Some(clock.now() + Duration::hours(24)),
        )
        .unwrap();
    sync(dispatcher, handler);
    clock.advance_minutes(if late { 30 * 60 } else { 60 });
    handler
        .act(
            &id,
            Action::Feedback {
                result: "已修复".into(),
            },
        )
        .unwrap();
    sync(handler, worker);
    worker
        .act(
            &id,
            Action::Verify {
                passed: true,
                comment: String::new(),
            },
        )
        .unwrap();
    sync(worker, dispatcher);
    dispatcher.act(&id, Action::Archive).unwrap();
    dispatcher
        .act(
            &id,
            Action::Evaluate {
                satisfaction,
                comment: String::new(),
            },
        )
        .unwrap();
    sync(dispatcher, worker);
    id
}

#[test]
fn rates_count_what_the_loop_did_and_leave_invalid_reports_out() {
    let clock = TestClock::new();
    let worker = device(WORKER, &clock);
    let other = device(OTHER_WORKER, &clock);
    let dispatcher = device(COMMUNITY, &clock);
    let handler = device(HANDLER, &clock);
    let town = device(TOWN, &clock);

    closed_loop(&worker, &dispatcher, &handler, &clock, false, 5);
    closed_loop(&worker, &dispatcher, &handler, &clock, true, 3);
    let spot = worker.report_case(case_with("占道经营", "city")).unwrap();
    worker
        .act(
            &spot,
            Action::SelfHandle {
                result: "已劝离".into(),
            },
        )
        .unwrap();
    let invalid = worker.report_case(case_with("重复上报", "city")).unwrap();
    worker.report_case(case_with("路灯不亮", "city")).unwrap();
    sync(&worker, &dispatcher);
    dispatcher
        .act(
            &invalid,
            Action::Invalidate {
                reason: "重复".into(),
            },
        )
        .unwrap();
    other.report_case(case_with("井盖缺失", "city")).unwrap();
    for d in [&worker, &dispatcher, &other] {
        sync(d, &town);
    }

    let all = town.statistics(&CaseFilter::default()).unwrap();
    assert_eq!((all.reported, all.invalid, all.valid()), (6, 1, 5));
    assert_eq!(all.accepted, 3, "two accepted, one handled on the spot");
    assert_eq!(all.closed, 2);
    assert_eq!(
        all.closed_on_time, 1,
        "the second was handled 30 h into a 24 h deadline"
    );
    assert_eq!(all.self_handled, 1);
    assert_eq!(
        (all.evaluated, all.satisfaction_sum, all.satisfied),
        (2, 8, 1)
    );
    assert_eq!(all.acceptance_rate(), Some(0.6));
    assert_eq!(all.on_time_rate(), Some(0.5));
    assert_eq!(all.mean_satisfaction(), Some(4.0));

    // A region's figures are that region's cases only.
    let community = CaseFilter {
        region: Some(WORKER_GRID[..12].parse().unwrap()),
        ..Default::default()
    };
    assert_eq!(town.statistics(&community).unwrap().reported, 5);
    let grids = town
        .statistics_by(&CaseFilter::default(), GroupBy::Grid)
        .unwrap();
    assert_eq!(grids.len(), 2);
    assert_eq!(
        (grids[0].key.as_str(), grids[0].summary.reported),
        (WORKER_GRID, 5)
    );
    let categories = town
        .statistics_by(&CaseFilter::default(), GroupBy::Category)
        .unwrap();
    let keys: Vec<_> = categories
        .iter()
        .map(|g| (g.key.as_str(), g.summary.reported))
        .collect();
    assert_eq!(keys, [("city", 4), ("livelihood", 2)]);
    let months = town
        .statistics_by(&CaseFilter::default(), GroupBy::Month)
        .unwrap();
    assert_eq!(months.len(), 1);
    assert_eq!(months[0].key, "2026-11");

    // A period that ends before anything was reported counts nothing.
    let before = CaseFilter {
        reported_before: Some(clock.now() - Duration::days(30)),
        ..Default::default()
    };
    assert_eq!(town.statistics(&before).unwrap().reported, 0);
    assert_eq!(town.statistics(&before).unwrap().acceptance_rate(), None);
}

#[test]
fn supervision_rises_by_itself_as_a_dispatch_runs_late() {
    let clock = TestClock::new();
    let deadline = clock.now();
    let at = |hours: i64| deadline + Duration::hours(hours);
    let level =
        |hours| SupervisionLevel::for_overdue(deadline, at(hours)).map(SupervisionLevel::number);
    assert_eq!(level(0), None, "not before the deadline has passed");
    assert_eq!(level(1), Some(1));
    assert_eq!(level(24), Some(2));
    assert_eq!(level(72), Some(3));
    assert_eq!(level(168), Some(4));
    assert_eq!(level(400), Some(5));

    let eff = |status, raised, hours| {
        SupervisionLevel::effective(status, Some(deadline), raised, at(hours))
    };
    assert_eq!(
        eff(Status::Dispatched, Some(SupervisionLevel::OnSite), 30),
        Some(SupervisionLevel::OnSite),
        "raised by hand above the clock"
    );
    assert_eq!(
        eff(Status::Dispatched, Some(SupervisionLevel::Reminder), 30),
        Some(SupervisionLevel::Handover)
    );
    assert_eq!(
        eff(Status::Handled, None, 400),
        None,
        "a handled case no longer runs late"
    );
}

/// Send `id` up one level with `from`.
fn escalate(from: &Device, id: &DocId) {
    from.act(
        id,
        Action::Escalate {
            reason: "超出处置能力".into(),
        },
    )
    .unwrap();
}

/// Every device's changes to every other, through `hub`.
fn share(devices: &[&Device], hub: &Device) {
    for _ in 0..2 {
        for d in devices {
            sync(d, hub);
        }
    }
}

/// The loop from acceptance to archive at `closer`'s level: `closer` accepts and
/// dispatches, the handler reports it handled, the worker verifies, `closer`
/// archives.
fn close_at(closer: &Device, worker: &Device, handler: &Device, hub: &Device, id: &DocId) {
    let all = [closer, worker, handler];
    share(&all, hub);
    closer.act(id, Action::Accept).unwrap();
    closer.dispatch(id, "water".parse().unwrap(), None).unwrap();
    share(&all, hub);
    handler
        .act(
            id,
            Action::Feedback {
                result: "已处理".into(),
            },
        )
        .unwrap();
    share(&all, hub);
    worker
        .act(
            id,
            Action::Verify {
                passed: true,
                comment: String::new(),
            },
        )
        .unwrap();
    share(&all, hub);
    closer.act(id, Action::Archive).unwrap();
    share(&all, hub);
}

/// 分级处置: a scripted month whose figures are counted by hand — one case closed
/// on the spot, one by the community, one sent up to the town and closed there,
/// one sent up twice and closed by the district, one sent up and still open, one
/// still with the community.
#[test]
fn cases_are_counted_at_the_level_that_closed_them_and_escalations_once_each() {
    let clock = TestClock::new();
    let worker = device(WORKER, &clock);
    let community = device(COMMUNITY, &clock);
    let town = device(TOWN, &clock);
    let district = device("dd-339901-1", &clock);
    let handler = device(HANDLER, &clock);
    let all = [&worker, &community, &town, &handler];

    let spot = worker.report_case(case_with("占道经营", "city")).unwrap();
    worker
        .act(
            &spot,
            Action::SelfHandle {
                result: "已劝离".into(),
            },
        )
        .unwrap();
    share(&all, &district);
    community.act(&spot, Action::Archive).unwrap();

    let by_community = worker.report_case(leak_case()).unwrap();
    close_at(&community, &worker, &handler, &district, &by_community);

    let by_town = worker.report_case(leak_case()).unwrap();
    share(&all, &district);
    escalate(&community, &by_town);
    share(&all, &district);
    close_at(&town, &worker, &handler, &district, &by_town);

    let by_district = worker.report_case(leak_case()).unwrap();
    share(&all, &district);
    escalate(&community, &by_district);
    share(&all, &district);
    escalate(&town, &by_district);
    share(&all, &district);
    close_at(&district, &worker, &handler, &district, &by_district);

    let sent_up_open = worker.report_case(leak_case()).unwrap();
    share(&all, &district);
    escalate(&community, &sent_up_open);
    worker.report_case(leak_case()).unwrap();
    share(&all, &district);

    for (i, d) in [&district, &town].into_iter().enumerate() {
        let s = d.statistics(&CaseFilter::default()).unwrap();
        assert_eq!(s.reported, 6);
        assert_eq!(s.closed, 4);
        assert_eq!(
            s.closed_at,
            [1, 1, 1, 1, 0],
            "grid, community, town, district, city: device {i}"
        );
        assert_eq!(s.escalated, 3, "a case sent up twice counts once");
        assert_eq!(
            s.closed_at_or_below(gridsync_core::RegionLevel::Town),
            Some(0.75)
        );
        assert_eq!(s.escalation_rate(), Some(0.5));
    }
    let months = district
        .statistics_by(&CaseFilter::default(), GroupBy::Month)
        .unwrap();
    assert_eq!(months[0].summary.closed_at, [1, 1, 1, 1, 0]);
}

/// A database indexed before `cases.escalations` existed gets it filled in on the
/// first open of this version.
#[test]
fn an_older_index_is_rebuilt_once_on_open() {
    let clock = TestClock::new();
    let worker = device(WORKER, &clock);
    let community = device(COMMUNITY, &clock);
    let id = worker.report_case(leak_case()).unwrap();
    sync(&worker, &community);
    escalate(&community, &id);
    // As an older version left it: no escalations counted, no index version.
    let path = community.path();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "UPDATE cases SET escalations = 0; DELETE FROM meta WHERE key = 'index_version';",
        )
        .unwrap();
    }
    assert_eq!(
        community
            .statistics(&CaseFilter::default())
            .unwrap()
            .escalated,
        0
    );
    let community = community.reopen(&clock);
    assert_eq!(
        community
            .statistics(&CaseFilter::default())
            .unwrap()
            .escalated,
        1
    );
}

/// 积分: a scripted month for two grid workers, counted by hand under the sample
/// directory's rules (valid report 2, handled on the spot +3, major case +10,
/// invalid report −5, visit 1, inspection 2), plus the leaders' adjustments.
#[test]
fn points_for_a_month_match_the_hand_count_and_each_role_sees_its_share() {
    use gridsync_core::doc::place::{NewPlace, PlaceKind};
    use gridsync_core::Severity;
    let clock = TestClock::new();
    let worker = device(WORKER, &clock);
    // A grid worker of the next community, in the same town.
    const NEIGHBOUR: &str = "w-339901001002001";
    let other = device(NEIGHBOUR, &clock);
    let community = device(COMMUNITY, &clock);
    let town = device(TOWN, &clock);

    worker.report_case(leak_case()).unwrap();
    let mut urgent = leak_case();
    urgent.severity = Severity::Urgent;
    worker.report_case(urgent).unwrap();
    let spot = worker.report_case(case_with("占道经营", "city")).unwrap();
    worker
        .act(
            &spot,
            Action::SelfHandle {
                result: "已劝离".into(),
            },
        )
        .unwrap();
    let invalid = worker.report_case(case_with("重复上报", "city")).unwrap();
    let home = worker
        .register_household(None, "望湖小区3号楼2单元301")
        .unwrap();
    let shop = worker
        .register_place(NewPlace {
            grid: WORKER_GRID.parse().unwrap(),
            kind: PlaceKind::Shop,
            name: "平安超市".into(),
            address: "幸福路8号".into(),
            within: None,
            location: None,
            occupancy: None,
            org: None,
        })
        .unwrap();
    let patrol = worker.start_patrol().unwrap();
    // The same household twice in a day counts once; another counts too.
    worker
        .visit(&patrol, &home, "一切正常", 30.27, 120.15, None)
        .unwrap();
    worker
        .visit(&patrol, &home, "燃气已检查", 30.27, 120.15, None)
        .unwrap();
    let next_door = worker
        .register_household(None, "望湖小区3号楼2单元302")
        .unwrap();
    worker
        .visit(&patrol, &next_door, "一切正常", 30.27, 120.15, None)
        .unwrap();
    worker
        .inspect(&patrol, &shop, true, "", 30.27, 120.15, None)
        .unwrap();
    other.report_case(case_with("井盖缺失", "city")).unwrap();
    // A dispatcher's own report earns no worker points.
    let mut by_dispatcher = case_with("路灯不亮", "city");
    by_dispatcher.grid = Some(WORKER_GRID.parse().unwrap());
    community.report_case(by_dispatcher).unwrap();
    sync(&worker, &community);
    community
        .act(
            &invalid,
            Action::Invalidate {
                reason: "重复".into(),
            },
        )
        .unwrap();
    // Adjustments: the community's leader rewards her, the town's takes points
    // from the neighbour, and one of the next month counts in that month only.
    let adjust = |d: &Device, worker: &str, month: u32, points: i32, reason: &str| {
        d.adjust_points(NewAdjustment {
            worker: worker.parse().unwrap(),
            month: Month::new(2026, month).unwrap(),
            points,
            reason: reason.into(),
        })
    };
    adjust(&community, WORKER, 11, 5, "协助处置火情").unwrap();
    adjust(&community, WORKER, 11, -2, "台账不全").unwrap();
    adjust(&community, WORKER, 12, 7, "下月奖励").unwrap();
    adjust(&town, NEIGHBOUR, 11, -1, "巡查迟到").unwrap();
    // Only a leader over her grid: not a worker, not the next community's.
    assert!(matches!(
        adjust(&worker, WORKER, 11, 100, "自己加分"),
        Err(gridsync_core::Error::Forbidden(_))
    ));
    assert!(matches!(
        adjust(&community, NEIGHBOUR, 11, 1, "不是本社区"),
        Err(gridsync_core::Error::Forbidden(_))
    ));
    assert!(matches!(
        adjust(&community, WORKER, 11, 0, "零分"),
        Err(gridsync_core::Error::InvalidInput(_))
    ));
    assert!(matches!(
        adjust(&community, WORKER, 11, 3, " "),
        Err(gridsync_core::Error::InvalidInput(_))
    ));
    for d in [&worker, &other, &community] {
        sync(d, &town);
    }
    sync(&town, &worker);
    sync(&town, &other);

    let table = |d: &Device| -> Vec<(String, [u64; 6], i64, i64)> {
        d.points(None, 2026, 11)
            .unwrap()
            .into_iter()
            .map(|p| {
                (
                    p.worker,
                    [
                        p.valid_reports,
                        p.handled_on_the_spot,
                        p.major_cases,
                        p.invalid_reports,
                        p.visits,
                        p.inspections,
                    ],
                    p.adjusted,
                    p.points,
                )
            })
            .collect()
    };
    let mine = (
        WORKER.to_owned(),
        [3, 1, 1, 1, 2, 1],
        5 - 2,
        3 * 2 + 3 + 10 - 5 + 2 + 2 + 5 - 2,
    );
    let theirs = (NEIGHBOUR.to_owned(), [1, 0, 0, 0, 0, 0], -1, 2 - 1);
    assert_eq!(table(&town), vec![mine.clone(), theirs.clone()]);
    assert_eq!(table(&community), vec![mine.clone()], "her community only");
    assert_eq!(table(&worker), vec![mine], "her own only");
    assert_eq!(table(&other), vec![theirs], "the neighbour's own only");
    // The ledger: who, how much, why, by whom, in the order made.
    let ledger = |d: &Device, month| -> Vec<(String, i32, String, String)> {
        d.points_adjustments(None, 2026, month)
            .unwrap()
            .into_iter()
            .map(|a| (a.worker.to_string(), a.points, a.reason, a.by.to_string()))
            .collect()
    };
    let row = |w: &str, n, why: &str, by: &str| (w.to_owned(), n, why.to_owned(), by.to_owned());
    assert_eq!(
        ledger(&town, 11),
        vec![
            row(WORKER, 5, "协助处置火情", COMMUNITY),
            row(WORKER, -2, "台账不全", COMMUNITY),
            row(NEIGHBOUR, -1, "巡查迟到", TOWN),
        ]
    );
    assert_eq!(ledger(&worker, 11).len(), 2, "her own only");
    // A month with only an adjustment still lists her.
    let [dec] = &table_of(&worker, 12)[..] else {
        panic!("one row for December")
    };
    assert_eq!((dec.computed, dec.adjusted, dec.points), (0, 7, 7));
    assert!(worker.points(None, 2026, 10).unwrap().is_empty());
    assert!(worker.points(None, 2026, 13).is_err());
    assert!(device(HANDLER, &clock).points(None, 2026, 11).is_err());
}

fn table_of(d: &Device, month: u32) -> Vec<WorkerPoints> {
    d.points(None, 2026, month).unwrap()
}

/// 来源渠道: a case entered from the hotline and one from the resident page keep
/// their channel in the index — the board filters by it, the figures count per
/// channel — and a database indexed before the channel had a column gets it
/// filled in on the first open of this version.
#[test]
fn cases_are_filtered_and_counted_by_channel() {
    use gridsync_core::Channel;
    let clock = TestClock::new();
    let worker = device(WORKER, &clock);
    let community = device(COMMUNITY, &clock);
    worker.report_case(leak_case()).unwrap();
    worker.report_case(leak_case()).unwrap();
    sync(&worker, &community);
    let me = community.identity().clone();
    for channel in [Channel::Hotline, Channel::Hotline, Channel::Resident] {
        let mut input = case_with("路灯不亮", "city");
        input.grid = Some(WORKER_GRID.parse().unwrap());
        let (id, bytes) = community.draft_report(&me, input, channel, &[]).unwrap();
        let change = automerge::Change::from_bytes(bytes).unwrap();
        community.import_changes(vec![(id, vec![change])]).unwrap();
    }
    let of = |channel| CaseFilter {
        channel: Some(channel),
        ..Default::default()
    };
    let listed = community.list_cases(&of(Channel::Hotline)).unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|c| c.channel == Channel::Hotline));
    assert_eq!(community.list_cases(&of(Channel::Wechat)).unwrap().len(), 0);
    let per_channel = |d: &Device| -> Vec<(String, u64)> {
        d.statistics_by(&CaseFilter::default(), GroupBy::Channel)
            .unwrap()
            .into_iter()
            .map(|g| (g.key, g.summary.reported))
            .collect()
    };
    let want = vec![
        ("hotline".to_owned(), 2),
        ("phone".to_owned(), 2),
        ("resident".to_owned(), 1),
    ];
    assert_eq!(per_channel(&community), want);
    // As a version before the channel column left it.
    let path = community.path();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "UPDATE cases SET channel = 'phone'; DELETE FROM meta WHERE key = 'index_version';",
        )
        .unwrap();
    }
    assert_eq!(per_channel(&community), vec![("phone".to_owned(), 5)]);
    let community = community.reopen(&clock);
    assert_eq!(per_channel(&community), want);
}
