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

/// A photo taken at a visit goes up with it like a case's and comes down only to
/// those who keep the base data; its hash read off the record is no way for
/// another grid's worker to claim it.
#[test]
fn a_visits_photo_goes_up_and_reaches_only_those_who_keep_the_base_data() {
    let relay = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let worker = relay.enroll(WORKER, dir.path());
    let dispatcher = relay.enroll(DISPATCHER, dir.path());
    let handler = relay.enroll(HANDLER, dir.path());
    let neighbour = relay.enroll(OTHER_GRID_WORKER, dir.path());

    let home = worker
        .register_household(None, "望湖小区3号楼2单元301")
        .unwrap();
    let jpeg = crate::photos::camera_jpeg();
    let photo = worker.ingest_photo(&jpeg, Some("IMG_0101.jpg")).unwrap();
    let patrol = worker.start_patrol().unwrap();
    let unknown: gridsync_core::PhotoHash = "ab".repeat(32).parse().unwrap();
    assert!(matches!(
        worker.visit(
            &patrol,
            &home,
            "燃气管道老化",
            30.2741,
            120.1551,
            Some(unknown)
        ),
        Err(gridsync_core::Error::NotFound { what: "photo", .. })
    ));
    worker
        .visit(
            &patrol,
            &home,
            "燃气管道老化，已提醒更换",
            30.2741,
            120.1551,
            Some(photo.hash.clone()),
        )
        .unwrap();
    let visits = worker.get_household(&home).unwrap().visits;
    assert_eq!(
        visits[0].photo,
        Some(gridsync_core::doc::EntryPhoto {
            hash: photo.hash.clone(),
            thumb: photo.thumb.clone(),
        })
    );
    assert_eq!(worker.photos_to_upload().unwrap().len(), 2);
    let report = worker.sync().unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert!(worker.photos_to_upload().unwrap().is_empty());

    dispatcher.sync().unwrap();
    let seen = dispatcher.get_household(&home).unwrap().visits;
    assert_eq!(seen[0].photo, visits[0].photo);
    for hash in [&photo.thumb, &photo.hash] {
        gridsync_core::sync::fetch_photo(&dispatcher.engine, &dispatcher.transport, hash).unwrap();
        assert_eq!(dispatcher.photo(hash).unwrap(), worker.photo(hash).unwrap());
    }

    // A department never receives base data, nor its photos.
    handler.sync().unwrap();
    match gridsync_core::sync::fetch_photo(&handler.engine, &handler.transport, &photo.hash) {
        Err(gridsync_core::sync::SyncError::Refused { code, .. }) => {
            assert_eq!(code, "not_found")
        }
        other => panic!("a handler must not get a visit's photo: {other:?}"),
    }

    // The same picture in the next grid (a forwarded file, same hash) on a visit
    // there: refused, so the first visit's photo stays out of that grid.
    let next_door = neighbour
        .register_household(Some("339901001001002".parse().unwrap()), "望湖小区9号楼")
        .unwrap();
    let copy = neighbour.ingest_photo(&jpeg, None).unwrap();
    assert_eq!(copy.hash, photo.hash);
    let theirs = neighbour.start_patrol().unwrap();
    neighbour
        .visit(
            &theirs,
            &next_door,
            "走访",
            30.2742,
            120.1552,
            Some(copy.hash),
        )
        .unwrap();
    // (The household's changes of that push are refused together.)
    let report = neighbour.sync().unwrap();
    assert!(!report.rejected.is_empty());
    for (_, why) in &report.rejected {
        assert_eq!(why, "a photo outside your scope cannot be attached");
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

/// A tampered app cannot tie records across grids: a member of a household the
/// writer does not keep, or a head from another grid, is refused by the relay,
/// while a household and its first member sent in one push go through.
#[test]
fn the_relay_refuses_references_out_of_scope_or_out_of_the_grid() {
    let relay = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let worker = relay.enroll(WORKER, dir.path());
    let neighbour = relay.enroll(OTHER_GRID_WORKER, dir.path());
    let community = relay.enroll(DISPATCHER, dir.path());

    // One push: the household and the person whose household it is.
    let home = worker
        .register_household(None, "望湖小区3号楼2单元301")
        .unwrap();
    let person = worker.register_person(zhang(&home)).unwrap();
    let report = worker.sync().unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);

    // The next grid's worker moves her own resident into the first grid's
    // household, which she does not keep.
    let next_grid: gridsync_core::RegionCode = "339901001001002".parse().unwrap();
    let theirs = neighbour
        .register_person(NewPerson {
            grid: next_grid.clone(),
            id_number: None,
            phone: None,
            household: None,
            ..zhang(&home)
        })
        .unwrap();
    neighbour.sync().unwrap();
    let forged = forge(&neighbour, &theirs, |tx| {
        gridsync_core::doc::registry::set_household(tx, Some(&(home.clone(), "之子".into())))
    });
    let answer = push_raw(&neighbour, &theirs, forged);
    assert_eq!(answer.status, ChangeStatus::Rejected, "{answer:?}");
    assert_eq!(
        answer.reason.as_deref(),
        Some("refers to a household outside your scope")
    );

    // The community keeps both grids, but a household's head lives in its grid.
    community.sync().unwrap();
    let next_home = community
        .register_household(Some(next_grid), "望湖小区9号楼")
        .unwrap();
    community.sync().unwrap();
    let forged = forge(&community, &next_home, |tx| {
        gridsync_core::doc::registry::set_head(tx, Some(&person))
    });
    let answer = push_raw(&community, &next_home, forged);
    assert_eq!(answer.status, ChangeStatus::Rejected, "{answer:?}");
    assert_eq!(
        answer.reason.as_deref(),
        Some("refers to a person in another grid")
    );
    // Pointing at a record the relay has never seen is let through: a phone's
    // offline link to one since erased must not cost it its change.
    let unknown = DocId::new(DocKind::Person);
    let forged = forge(&community, &next_home, |tx| {
        gridsync_core::doc::registry::set_head(tx, Some(&unknown))
    });
    let answer = push_raw(&community, &next_home, forged);
    assert_eq!(answer.status, ChangeStatus::Accepted, "{answer:?}");
}
