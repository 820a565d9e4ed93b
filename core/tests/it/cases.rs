//! A case's life on one or more devices: report, workflow, lists, search.

use gridsync_core::{Action, CaseFilter, Outcome, RegionCode, Status, SupervisionLevel};

use crate::support::*;

#[test]
fn a_reported_case_is_listed_searchable_and_survives_a_restart() {
    let clock = TestClock::new();
    let worker = device(WORKER, &clock);
    let id = worker.report_case(leak_case()).unwrap();

    let list = worker.list_cases(&CaseFilter::default()).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, id);
    assert_eq!(list[0].status, Status::Reported);
    assert_eq!(list[0].grid.as_str(), WORKER_GRID);

    let worker = worker.reopen(&clock);
    let case = worker.get_case(&id).unwrap();
    assert_eq!(case.doc.title, "楼上管道漏水");
    assert_eq!(case.doc.people[0].name, "张三");
    assert_eq!(
        case.doc.location.as_ref().unwrap().address,
        "望湖小区3号楼2单元"
    );
    assert_eq!(case.doc.timeline.len(), 1);
    assert_eq!(case.state.status, Status::Reported);
    let found = worker
        .list_cases(&CaseFilter {
            text: Some("漏水".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(found.len(), 1, "two-character Chinese query finds the case");
}

#[test]
fn chinese_search_matches_words_of_any_length_and_notes() {
    let clock = TestClock::new();
    let worker = device(WORKER, &clock);
    let leak = worker.report_case(leak_case()).unwrap();
    let fight = worker
        .report_case(case_with("邻里纠纷：噪音扰民", "dispute"))
        .unwrap();
    let search = |q: &str| {
        let mut ids: Vec<_> = worker
            .list_cases(&CaseFilter {
                text: Some(q.into()),
                ..Default::default()
            })
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(search("漏水"), vec![leak.clone()]);
    assert_eq!(search("管道漏水"), vec![leak.clone()]);
    assert_eq!(search("纠纷"), vec![fight.clone()]);
    assert_eq!(
        search("天花板"),
        vec![leak.clone()],
        "description is indexed"
    );
    assert!(search("漏纠").is_empty(), "characters must be adjacent");
    assert!(search("垃圾").is_empty());

    worker
        .add_note(&fight, "双方同意调解，约定晚十点后保持安静")
        .unwrap();
    assert_eq!(search("调解"), vec![fight.clone()], "notes are indexed");
    assert_eq!(search("楼"), vec![leak], "a single character matches too");
    assert!(worker
        .list_cases(&CaseFilter {
            text: Some("  ".into()),
            ..Default::default()
        })
        .is_err());
}

#[test]
fn the_six_step_loop_runs_across_worker_dispatcher_and_handler_devices() {
    let clock = TestClock::new();
    let worker = device(WORKER, &clock);
    let dispatcher = device(COMMUNITY, &clock);
    let handler = device(HANDLER, &clock);

    let id = worker.report_case(leak_case()).unwrap();
    sync(&worker, &dispatcher);
    clock.advance_minutes(10);
    dispatcher.act(&id, Action::Accept).unwrap();
    let state = dispatcher
        .dispatch(&id, "water".parse().unwrap(), None)
        .unwrap();
    assert_eq!(state.status, Status::Dispatched);
    // livelihood/high has no specific rule: the severity default of 24 h applies.
    assert_eq!(
        state.deadline,
        Some(clock.now() + chrono::Duration::hours(24))
    );

    sync(&dispatcher, &handler);
    let mine = handler
        .list_cases(&handler.assigned_to_me().unwrap())
        .unwrap();
    assert_eq!(
        mine.len(),
        1,
        "the handler sees the case dispatched to her department"
    );
    clock.advance_minutes(120);
    handler
        .act(
            &id,
            Action::Feedback {
                result: "更换了破裂的水管".into(),
            },
        )
        .unwrap();

    sync(&handler, &dispatcher);
    sync(&dispatcher, &worker);
    assert_eq!(
        worker
            .list_cases(&worker.assigned_to_me().unwrap())
            .unwrap()
            .len(),
        1
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
    sync(&worker, &dispatcher);
    dispatcher.act(&id, Action::Archive).unwrap();
    dispatcher
        .act(
            &id,
            Action::Evaluate {
                satisfaction: 5,
                comment: "居民满意".into(),
            },
        )
        .unwrap();
    sync(&dispatcher, &worker);
    sync(&dispatcher, &handler);

    for d in [&worker, &dispatcher, &handler] {
        let case = d.get_case(&id).unwrap();
        assert_eq!(case.state.status, Status::Evaluated);
        assert_eq!(case.state.satisfaction, Some(5));
        let actions: Vec<_> = case.doc.timeline.iter().map(|e| e.action.name()).collect();
        assert_eq!(
            actions,
            ["report", "accept", "dispatch", "feedback", "verify", "archive", "evaluate"]
        );
        let who: Vec<_> = case.doc.timeline.iter().map(|e| e.actor.as_str()).collect();
        assert_eq!(
            who,
            [WORKER, COMMUNITY, COMMUNITY, HANDLER, WORKER, COMMUNITY, COMMUNITY]
        );
        assert!(case.timeline().all(|(_, o)| *o == Outcome::Applied));
        let counts = d.count_cases(&CaseFilter::default()).unwrap();
        assert_eq!(counts, vec![(Status::Evaluated, 1)]);
    }
}

#[test]
fn conflicting_offline_decisions_resolve_identically_and_show_as_a_conflict() {
    let clock = TestClock::new();
    let worker = device(WORKER, &clock);
    let dispatcher = device(COMMUNITY, &clock);
    let id = worker
        .report_case(case_with("楼道堆放杂物堵塞消防通道", "safety"))
        .unwrap();
    sync(&worker, &dispatcher);

    // Both offline: the worker clears it on the spot, the dispatcher dispatches it.
    worker
        .act(
            &id,
            Action::SelfHandle {
                result: "已现场清理".into(),
            },
        )
        .unwrap();
    dispatcher
        .dispatch(&id, "urban".parse().unwrap(), None)
        .unwrap();
    sync(&worker, &dispatcher);

    let a = worker.get_case(&id).unwrap();
    let b = dispatcher.get_case(&id).unwrap();
    assert_eq!(
        a.doc.timeline, b.doc.timeline,
        "same timeline on both replicas"
    );
    assert_eq!(a.state, b.state, "same status on both replicas");
    assert_eq!(a.doc.timeline.len(), 3, "neither entry is lost");
    assert!(a.state.has_conflict());
    let conflicts: Vec<_> = a
        .timeline()
        .filter(|(_, o)| matches!(o, Outcome::Conflict { .. }))
        .collect();
    assert_eq!(conflicts.len(), 1);
    for d in [&worker, &dispatcher] {
        let flagged = d
            .list_cases(&CaseFilter {
                conflicts_only: true,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(flagged.len(), 1, "the index shows the conflict");
        assert_eq!(flagged[0].status, a.state.status);
    }
}

#[test]
fn filters_by_status_region_category_overdue_and_assignment() {
    let clock = TestClock::new();
    let worker = device(WORKER, &clock);
    let dispatcher = device(COMMUNITY, &clock);
    let a = worker.report_case(leak_case()).unwrap();
    let b = worker
        .report_case(case_with("小区门口垃圾堆放", "city"))
        .unwrap();
    let _c = worker.report_case(case_with("占道经营", "city")).unwrap();
    sync(&worker, &dispatcher);
    dispatcher
        .dispatch(&a, "water".parse().unwrap(), None)
        .unwrap();
    dispatcher
        .dispatch(
            &b,
            "urban".parse().unwrap(),
            Some(clock.now() + chrono::Duration::hours(2)),
        )
        .unwrap();

    let count = |f: CaseFilter| dispatcher.list_cases(&f).unwrap().len();
    assert_eq!(
        count(CaseFilter {
            statuses: vec![Status::Dispatched],
            ..Default::default()
        }),
        2
    );
    assert_eq!(
        count(CaseFilter {
            category: Some("city".parse().unwrap()),
            ..Default::default()
        }),
        2
    );
    let town: RegionCode = "339901001".parse().unwrap();
    let other_town: RegionCode = "339901002".parse().unwrap();
    assert_eq!(
        count(CaseFilter {
            region: Some(town),
            ..Default::default()
        }),
        3
    );
    assert_eq!(
        count(CaseFilter {
            region: Some(other_town),
            ..Default::default()
        }),
        0
    );
    assert_eq!(
        count(CaseFilter {
            assigned_dept: Some("water".parse().unwrap()),
            ..Default::default()
        }),
        1
    );

    let overdue = |d: &Device| {
        d.list_cases(&CaseFilter {
            overdue_at: Some(clock.now()),
            ..Default::default()
        })
        .unwrap()
    };
    assert!(overdue(&dispatcher).is_empty());
    clock.advance_minutes(3 * 60);
    let late = overdue(&dispatcher);
    assert_eq!(
        late.len(),
        1,
        "the 2-hour deadline has passed, the 24-hour one has not"
    );
    assert_eq!(late[0].id, b);
    dispatcher
        .act(
            &b,
            Action::Urge {
                level: SupervisionLevel::Reminder,
                comment: "请尽快处理".into(),
            },
        )
        .unwrap();
    let row = &overdue(&dispatcher)[0];
    assert_eq!(row.supervision, Some(SupervisionLevel::Reminder));
    let counts = dispatcher.count_cases(&CaseFilter::default()).unwrap();
    assert_eq!(counts, vec![(Status::Reported, 1), (Status::Dispatched, 2)]);
}
