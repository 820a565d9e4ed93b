//! Property: random workflow actions on 2–5 replicas, made offline and merged in
//! random orders, always converge to the same timeline and status everywhere.

use gridsync_core::{Action, CaseFilter, DocId, SupervisionLevel};
use proptest::prelude::*;

use crate::support::*;

/// The users of the replicas, in order: up to five devices.
const USERS: [&str; 5] = [WORKER, COMMUNITY, HANDLER, TOWN, ADMIN];

#[derive(Clone, Debug)]
enum Step {
    /// Replica `r` tries action number `a` (refusals are fine: it is offline UX).
    Act { r: usize, a: u8, flag: bool },
    /// Replica `r` writes a note.
    Note { r: usize },
    /// Everything `from` has goes to `to`.
    Push { from: usize, to: usize },
}

fn action(a: u8, flag: bool, level: u8) -> Option<Action> {
    Some(match a % 11 {
        0 => Action::Accept,
        1 => return None, // dispatch, through Engine::dispatch
        2 => Action::Feedback {
            result: "处理完毕".into(),
        },
        3 => Action::Return {
            reason: "不属本部门职责".into(),
        },
        4 => Action::Verify {
            passed: flag,
            comment: String::new(),
        },
        5 => Action::Archive,
        6 => Action::Evaluate {
            satisfaction: 4,
            comment: String::new(),
        },
        7 => Action::Escalate {
            reason: "重大事项".into(),
        },
        8 => Action::Urge {
            level: SupervisionLevel::from_number(i64::from(level % 5 + 1)).unwrap(),
            comment: String::new(),
        },
        9 => Action::Invalidate {
            reason: "重复上报".into(),
        },
        _ => Action::SelfHandle {
            result: "现场处置".into(),
        },
    })
}

fn steps(replicas: usize) -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        4 => (0..replicas, any::<u8>(), any::<bool>()).prop_map(|(r, a, flag)| Step::Act { r, a, flag }),
        1 => (0..replicas).prop_map(|r| Step::Note { r }),
        3 => (0..replicas, 0..replicas).prop_map(|(from, to)| Step::Push { from, to }),
    ];
    proptest::collection::vec(step, 1..24)
}

fn scenario() -> impl Strategy<Value = (usize, Vec<Step>, Vec<(usize, usize)>)> {
    (2usize..=5).prop_flat_map(|n| {
        let order = proptest::collection::vec((0..n, 0..n), 0..10);
        (Just(n), steps(n), order)
    })
}

/// What a replica holds: its heads, its index rows, and — where its user may see
/// the case — the timeline and folded state.
type Snapshot = (
    Vec<gridsync_core::ChangeHash>,
    Vec<gridsync_core::CaseSummary>,
    Option<(Vec<String>, gridsync_core::CaseState)>,
);

fn snapshot(d: &Device, id: &DocId) -> Snapshot {
    let case = d.get_case(id).ok().map(|case| {
        let ids = case.doc.timeline.iter().map(|e| e.id.clone()).collect();
        (ids, case.state)
    });
    (
        d.heads(id).unwrap(),
        d.list_cases(&CaseFilter::default()).unwrap(),
        case,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn replicas_converge_whatever_the_actions_and_merge_order(
        (n, steps, order) in scenario()
    ) {
        let clock = TestClock::new();
        let devices: Vec<Device> = USERS[..n].iter().map(|u| device(u, &clock)).collect();
        let id = devices[0].report_case(leak_case()).unwrap();
        for d in &devices[1..] {
            push(&devices[0], d);
        }
        for (i, step) in steps.iter().enumerate() {
            clock.advance_minutes(1);
            match *step {
                Step::Act { r, a, flag } => {
                    let d = &devices[r];
                    let _ = match action(a, flag, i as u8) {
                        Some(action) => d.act(&id, action),
                        None => d.dispatch(&id, "water".parse().unwrap(), None),
                    };
                }
                Step::Note { r } => { let _ = devices[r].add_note(&id, &format!("备注{i}")); }
                Step::Push { from, to } => { push(&devices[from], &devices[to]); }
            }
        }
        // Random partial merges, then everyone with everyone until quiet.
        for &(a, b) in &order {
            push(&devices[a], &devices[b]);
        }
        for a in 0..n {
            for b in 0..n {
                push(&devices[a], &devices[b]);
            }
        }
        // The worker's device always sees the case (it is in her grid).
        let reference = snapshot(&devices[0], &id);
        prop_assert!(reference.2.is_some());
        for d in &devices[1..] {
            let s = snapshot(d, &id);
            prop_assert_eq!(&s.0, &reference.0, "same heads");
            prop_assert_eq!(&s.1, &reference.1, "same index rows");
            if let Some(case) = &s.2 {
                prop_assert_eq!(Some(case), reference.2.as_ref(), "same timeline and state");
            }
        }
    }
}
