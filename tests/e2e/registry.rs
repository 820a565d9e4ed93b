//! The grid's base data through a relay: a worker's persons and households reach
//! the dispatchers over her grid and no one else; the relay refuses base data
//! from a department handler and a person whose ID number a tampered app forged.

use automerge::transaction::Transactable;
use gridsync_core::doc::registry::{NewPerson, Tag};
use gridsync_core::registry::PersonFilter;
use gridsync_core::sync::wire::ChangeStatus;
use gridsync_core::{DocId, DocKind};
use gridsync_tests::SimRelay;

use crate::access::{forge, push_raw};
use crate::workflow::{DISPATCHER, HANDLER, WORKER};

const GRID: &str = "339901001001001";
const OTHER_GRID_WORKER: &str = "w-339901001001002";

fn zhang(household: &DocId) -> NewPerson {
    NewPerson {
        grid: GRID.parse().unwrap(),
        name: "张建国".into(),
        id_number: Some("33010619900101131X".parse().unwrap()),
        sex: None,
        born: None,
        phone: Some("13812345678".parse().unwrap()),
        household: Some((household.clone(), "户主".into())),
        tags: vec![Tag::ElderlyAlone],
        notes: String::new(),
    }
}

fn kinds(d: &gridsync_core::Engine) -> Vec<DocKind> {
    d.doc_ids().unwrap().iter().map(DocId::kind).collect()
}

#[test]
fn base_data_reaches_the_dispatchers_over_the_grid_and_no_department() {
    let relay = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let worker = relay.enroll(WORKER, dir.path());
    let dispatcher = relay.enroll(DISPATCHER, dir.path());
    let handler = relay.enroll(HANDLER, dir.path());
    let neighbour = relay.enroll(OTHER_GRID_WORKER, dir.path());

    let home = worker
        .register_household(None, "望湖小区3号楼2单元301")
        .unwrap();
    let person = worker.register_person(zhang(&home)).unwrap();
    let report = worker.sync().unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);

    for d in [&dispatcher, &handler, &neighbour] {
        d.sync().unwrap();
    }
    let seen = dispatcher.list_persons(&PersonFilter::default()).unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].id_masked.as_deref(), Some("3301**********131X"));
    assert_eq!(dispatcher.get_person(&person).unwrap().name, "张建国");
    assert_eq!(
        dispatcher.get_household(&home).unwrap().address,
        "望湖小区3号楼2单元301"
    );

    // The department handler's and the other grid's phones never receive it.
    for d in [&handler, &neighbour] {
        let kinds = kinds(d);
        assert!(
            !kinds.contains(&DocKind::Person) && !kinds.contains(&DocKind::Household),
            "{kinds:?}"
        );
    }
}

/// A town's worth of residents stays off the town and district dispatchers'
/// phones (they see it on the console); the community's phone keeps its grids'.
#[test]
fn base_data_stays_off_the_phones_of_town_dispatchers() {
    let relay = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let worker = relay.enroll(WORKER, dir.path());
    let community = relay.enroll(DISPATCHER, dir.path());
    let town = relay.enroll("td-339901001", dir.path());
    let district = relay.enroll("dd-339901-1", dir.path());

    let home = worker
        .register_household(None, "望湖小区3号楼2单元301")
        .unwrap();
    worker.register_person(zhang(&home)).unwrap();
    let case = worker.report_case(crate::workflow::leak()).unwrap();
    worker.sync().unwrap();
    for d in [&community, &town, &district] {
        d.sync().unwrap();
    }
    let registry =
        |d: &gridsync_core::Engine| kinds(d).into_iter().filter(|k| k.is_registry()).count();
    assert_eq!(registry(&community), 2);
    for d in [&town, &district] {
        assert_eq!(registry(d), 0, "no base data on a town or district phone");
        assert!(d.get_case(&case).is_ok(), "the cases arrive as before");
        assert!(d.list_persons(&PersonFilter::default()).unwrap().is_empty());
    }
    // The relay still keeps it all, for the consoles.
    let replica = relay.relay.engine();
    assert_eq!(replica.doc_ids().unwrap().len(), 3);
    // Where the town sees numbers masked it searches by the last four shown, not
    // by the hidden ones before them.
    let td = replica.user(&"td-339901001".parse().unwrap()).unwrap();
    let by = |suffix: &str| {
        replica.list_persons_as(
            &td,
            &PersonFilter {
                id_suffix: Some(suffix.into()),
                ..Default::default()
            },
        )
    };
    assert_eq!(by("131X").unwrap().len(), 1);
    assert!(by("01131X").is_err());
    let cd = replica.user(&DISPATCHER.parse().unwrap()).unwrap();
    let by_cd = replica.list_persons_as(
        &cd,
        &PersonFilter {
            id_suffix: Some("01131X".into()),
            ..Default::default()
        },
    );
    assert_eq!(
        by_cd.unwrap().len(),
        1,
        "the community sees the whole number anyway"
    );
}

#[test]
fn the_relay_refuses_base_data_it_should_not_keep() {
    let relay = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let worker = relay.enroll(WORKER, dir.path());
    let handler = relay.enroll(HANDLER, dir.path());
    let home = worker
        .register_household(None, "望湖小区3号楼2单元301")
        .unwrap();
    let person = worker.register_person(zhang(&home)).unwrap();
    worker.sync().unwrap();

    // A tampered app writes an ID number with a wrong check digit.
    let forged = forge(&worker, &person, |tx| {
        tx.put(automerge::ROOT, "id_number", "330106199001011310")
    });
    let answer = push_raw(&worker, &person, forged);
    assert_eq!(answer.status, ChangeStatus::Rejected, "{answer:?}");
    let reason = answer.reason.unwrap_or_default();
    assert!(reason.contains("id_number"), "{reason}");
    assert!(
        !reason.contains("330106"),
        "the reason never repeats the number: {reason}"
    );

    // A department handler's device pushes a household of its own making.
    let household = DocId::new(DocKind::Household);
    let bytes = forge(&handler, &household, |tx| {
        let me: gridsync_core::UserId = HANDLER.parse().unwrap();
        gridsync_core::doc::registry::HouseholdDoc::write_new(
            tx,
            &household,
            &me,
            chrono::Utc::now(),
            &GRID.parse().unwrap(),
            "望湖小区",
        )
    });
    let answer = push_raw(&handler, &household, bytes);
    assert_eq!(answer.status, ChangeStatus::Rejected, "{answer:?}");
}
