//! Every refusal: wrong role, wrong state, out of scope, bad input. Each says what
//! was wrong and changes nothing.

use gridsync_core::sync::decode_change;
use gridsync_core::{
    Action, CaseFilter, DeviceId, Engine, Error, Identity, OpenError, Severity, Status,
};

use crate::support::*;

fn outbox_len(e: &Engine) -> usize {
    e.outbox_pending(usize::MAX).unwrap().len()
}

#[test]
fn wrong_role_and_wrong_state_are_refused_with_the_reason() {
    let clock = TestClock::new();
    let worker = device(WORKER, &clock);
    let handler = device(HANDLER, &clock);
    let dispatcher = device(COMMUNITY, &clock);
    let id = worker.report_case(leak_case()).unwrap();
    sync(&worker, &dispatcher);
    let before = outbox_len(&worker);

    let err = worker.act(&id, Action::Archive).unwrap_err();
    assert!(matches!(err, Error::Refused(_)));
    assert_eq!(err.to_string(), "refused: a grid_worker may not archive");

    let err = dispatcher.act(&id, Action::Archive).unwrap_err();
    assert_eq!(
        err.to_string(),
        "refused: cannot archive a case that is reported"
    );

    let err = worker
        .act(
            &id,
            Action::Verify {
                passed: true,
                comment: String::new(),
            },
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "refused: cannot verify a case that is reported"
    );

    let err = dispatcher
        .act(
            &id,
            Action::Evaluate {
                satisfaction: 5,
                comment: String::new(),
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("cannot evaluate"), "{err}");

    // Department handlers handle; they do not report.
    let err = handler.report_case(leak_case()).unwrap_err();
    assert!(matches!(err, Error::Forbidden(_)), "{err}");
    assert_eq!(outbox_len(&worker), before, "refusals write nothing");
    assert_eq!(worker.get_case(&id).unwrap().doc.timeline.len(), 1);
}

#[test]
fn handlers_act_only_on_their_departments_cases() {
    let clock = TestClock::new();
    let worker = device(WORKER, &clock);
    let dispatcher = device(COMMUNITY, &clock);
    let other = device(OTHER_HANDLER, &clock);
    let id = worker.report_case(leak_case()).unwrap();
    sync(&worker, &dispatcher);
    dispatcher
        .dispatch(&id, "water".parse().unwrap(), None)
        .unwrap();
    sync(&dispatcher, &other);
    let err = other
        .act(&id, Action::Feedback { result: "x".into() })
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    let err = dispatcher
        .dispatch(&id, "nosuchdept".parse().unwrap(), None)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid input: unknown department nosuchdept"
    );
}

#[test]
fn cases_outside_ones_region_look_like_cases_that_do_not_exist() {
    let clock = TestClock::new();
    let worker = device(WORKER, &clock);
    let outsider = device(OTHER_COMMUNITY, &clock);
    let id = worker.report_case(leak_case()).unwrap();
    sync(&worker, &outsider);
    let hidden = outsider.get_case(&id).unwrap_err().to_string();
    let missing = outsider
        .get_case(&"case-0123456789abcdef0123456789abcdef".parse().unwrap())
        .unwrap_err()
        .to_string();
    assert_eq!(
        hidden.replace(id.as_str(), "ID"),
        missing.replace("case-0123456789abcdef0123456789abcdef", "ID")
    );
    assert!(outsider.act(&id, gridsync_core::Action::Accept).is_err());
}

#[test]
fn bad_report_input_is_refused_field_by_field() {
    let clock = TestClock::new();
    let worker = device(WORKER, &clock);
    type Mutation = Box<dyn Fn(&mut gridsync_core::NewCase)>;
    let cases: Vec<(Mutation, &str)> = vec![
        (
            Box::new(|c| c.title = "   ".into()),
            "invalid input: title: is required",
        ),
        (
            Box::new(|c| c.title = "长".repeat(201)),
            "invalid input: title: is 201 characters; the limit is 200",
        ),
        (
            Box::new(|c| c.description = "字".repeat(5001)),
            "invalid input: description: is 5001 characters; the limit is 5000",
        ),
        (
            Box::new(|c| c.category = "weather".parse().unwrap()),
            "invalid input: unknown category weather",
        ),
        (
            Box::new(|c| c.subcategory = Some("city.garbage".parse().unwrap())),
            "invalid input: city.garbage is not a subcategory of livelihood",
        ),
        (
            Box::new(|c| c.location.as_mut().unwrap().lat = 91.0),
            "invalid input: latitude: must be between -90 and 90",
        ),
        (
            Box::new(|c| c.location.as_mut().unwrap().lon = f64::NAN),
            "invalid input: longitude: must be between -180 and 180",
        ),
        (
            Box::new(|c| c.grid = Some(OTHER_WORKER[2..].parse().unwrap())),
            "not allowed: grid 339901002001001 is outside your region",
        ),
        (
            Box::new(|c| c.grid = Some("339901001001999".parse().unwrap())),
            "invalid input: 339901001001999 is not a grid in the directory",
        ),
        (
            Box::new(|c| c.people[0].name = String::new()),
            "invalid input: person name: is required",
        ),
    ];
    for (mutate, expected) in cases {
        let mut input = leak_case();
        mutate(&mut input);
        let err = worker.report_case(input).unwrap_err();
        assert_eq!(err.to_string(), expected);
        let msg = err.to_string();
        assert!(
            !msg.contains("张三") && !msg.contains("13800000000") && !msg.contains("望湖小区"),
            "no personal data in errors: {msg}"
        );
    }
    assert!(worker
        .list_cases(&CaseFilter::default())
        .unwrap()
        .is_empty());
    let mut ok = leak_case();
    ok.severity = Severity::Urgent;
    worker.report_case(ok).unwrap();

    let id = worker.list_cases(&CaseFilter::default()).unwrap()[0]
        .id
        .clone();
    let err = worker.add_note(&id, &"注".repeat(2001)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid input: note: is 2001 characters; the limit is 2000"
    );
    let err = worker
        .act(
            &id,
            Action::Escalate {
                reason: "升".repeat(2001),
            },
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("longer than 2000 characters"),
        "{err}"
    );
}

#[test]
fn a_database_opens_only_for_the_identity_that_created_it() {
    let clock = TestClock::new();
    let worker = device(WORKER, &clock);
    let path = worker.path();
    drop(worker.engine);
    let stranger = Identity {
        user: OTHER_WORKER.parse().unwrap(),
        device: DeviceId::random(),
    };
    match Engine::open(&path, stranger) {
        Err(OpenError::WrongIdentity { .. }) => {}
        other => panic!("expected WrongIdentity, got {:?}", other.err()),
    }
}

#[test]
fn actions_before_a_directory_is_loaded_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(
        dir.path().join("x.db"),
        Identity {
            user: WORKER.parse().unwrap(),
            device: DeviceId::random(),
        },
    )
    .unwrap();
    let err = e.report_case(leak_case()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid input: no directory has been loaded on this device"
    );
    assert!(e
        .load_directory("{\"format\":\"gridsync-directory\"}")
        .is_err());
}

#[test]
fn drafted_actions_are_checked_like_local_ones_and_import_as_their_author() {
    let clock = TestClock::new();
    let worker = device(WORKER, &clock);
    let server = device(ADMIN, &clock);
    let id = worker.report_case(leak_case()).unwrap();
    push(&worker, &server);
    let console = |user: &str| Identity {
        user: user.parse().unwrap(),
        device: DeviceId::random(),
    };
    let dispatcher = console(COMMUNITY);

    let refused = server.draft_action(&dispatcher, &id, Action::Archive);
    assert!(matches!(refused, Err(Error::Refused(_))), "{refused:?}");
    let outside = server.draft_action(&console(OTHER_COMMUNITY), &id, Action::Accept);
    assert!(
        matches!(outside, Err(Error::NotFound { .. })),
        "{outside:?}"
    );
    assert!(server.outbox_pending(usize::MAX).unwrap().is_empty());

    let change = server
        .draft_action(&dispatcher, &id, Action::Accept)
        .unwrap();
    assert_eq!(
        server.get_case(&id).unwrap().state.status,
        Status::Reported,
        "not stored"
    );
    // A server stores each drafted change before drafting the next of the same author.
    server
        .import_changes(vec![(id.clone(), vec![decode_change(&change).unwrap()])])
        .unwrap();
    let note = server
        .draft_note(&dispatcher, &id, "已派网格员复核")
        .unwrap();
    let results = worker
        .import_changes(vec![(
            id.clone(),
            vec![
                decode_change(&change).unwrap(),
                decode_change(&note).unwrap(),
            ],
        )])
        .unwrap();
    assert_eq!(results[0].outcome.as_ref().unwrap().applied.len(), 2);
    let case = worker.get_case(&id).unwrap();
    assert_eq!(case.state.status, Status::Accepted);
    let last = case.doc.timeline.last().unwrap();
    assert_eq!(last.actor.as_str(), COMMUNITY);
    assert_eq!(case.doc.notes[0].text, "已派网格员复核");
}
