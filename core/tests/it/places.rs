//! Places of the grid's base data on devices: a building and its flats, a shop and
//! its organisation, rental housing and its tenants, safety inspections on a
//! patrol, two devices editing a place offline, and cases reported at a known place
//! or about known persons — linked by id, their location taken from the place.

use gridsync_core::doc::place::{NewPlace, Occupancy, OrgFacts, PlaceEdit, PlaceKind};
use gridsync_core::doc::registry::NewPerson;
use gridsync_core::places::PlaceFilter;
use gridsync_core::registry::PersonFilter;
use gridsync_core::{CaseFilter, CaseLinks, DocId, Error};

use crate::support::*;

fn place(kind: PlaceKind, name: &str, within: Option<&DocId>) -> NewPlace {
    NewPlace {
        grid: WORKER_GRID.parse().unwrap(),
        kind,
        name: name.into(),
        address: format!("望湖小区{name}"),
        within: within.cloned(),
        location: Some((30.2741, 120.1551)),
        occupancy: None,
        org: None,
    }
}

fn resident(name: &str, household: &DocId) -> NewPerson {
    NewPerson {
        grid: WORKER_GRID.parse().unwrap(),
        name: name.into(),
        id_number: None,
        sex: None,
        born: None,
        phone: None,
        household: Some((household.clone(), "户主".into())),
        tags: vec![],
        notes: String::new(),
    }
}

#[test]
fn rental_housing_counts_its_tenants_and_a_flat_lists_who_lives_there() {
    let clock = TestClock::new();
    let w = device(WORKER, &clock);
    let building = w
        .register_place(place(PlaceKind::Building, "3号楼", None))
        .unwrap();
    let rented = w
        .register_place(NewPlace {
            occupancy: Some(Occupancy::Rented),
            ..place(PlaceKind::Dwelling, "3号楼2单元301", Some(&building))
        })
        .unwrap();
    let owned = w
        .register_place(NewPlace {
            occupancy: Some(Occupancy::OwnerOccupied),
            ..place(PlaceKind::Dwelling, "3号楼2单元302", Some(&building))
        })
        .unwrap();
    let tenants = w.register_household(None, "望湖小区3号楼2单元301").unwrap();
    let owners = w.register_household(None, "望湖小区3号楼2单元302").unwrap();
    w.register_person(resident("租客甲", &tenants)).unwrap();
    w.register_person(resident("租客乙", &tenants)).unwrap();
    w.register_person(resident("业主丙", &owners)).unwrap();
    w.household_lives_at(&tenants, Some(&rented)).unwrap();
    w.household_lives_at(&owners, Some(&owned)).unwrap();
    // A household lives in a dwelling, not in a building or a shop.
    assert!(matches!(
        w.household_lives_at(&owners, Some(&building)),
        Err(Error::InvalidInput(_))
    ));

    let living_at = |p: &DocId| -> Vec<String> {
        w.list_persons(&PersonFilter {
            place: Some(p.clone()),
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect()
    };
    assert_eq!(living_at(&rented), vec!["租客乙", "租客甲"]);
    assert_eq!(living_at(&owned), vec!["业主丙"]);

    let flats = w
        .list_places(&PlaceFilter {
            within: Some(building.clone()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(flats.len(), 2);
    let rentals = w
        .list_places(&PlaceFilter {
            occupancy: Some(Occupancy::Rented),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        rentals.iter().map(|p| &p.id).collect::<Vec<_>>(),
        vec![&rented]
    );

    let counts = w.registry_counts(None).unwrap();
    assert_eq!(counts.len(), 1);
    let c = &counts[0].places;
    assert_eq!(
        (
            c.places,
            c.rented,
            c.tenant_households,
            c.tenants,
            c.organisations
        ),
        (3, 1, 1, 2, 0)
    );

    // The tenants leave: the flat is still rental housing, with no tenants.
    w.household_leaves(&tenants).unwrap();
    let c = &w.registry_counts(None).unwrap()[0].places;
    assert_eq!((c.rented, c.tenant_households, c.tenants), (1, 0, 0));
}

#[test]
fn a_shop_inspected_on_a_patrol_keeps_what_was_found_and_the_patrol_only_where() {
    let clock = TestClock::new();
    let w = device(WORKER, &clock);
    let cd = device(COMMUNITY, &clock);
    let owner_home = w.register_household(None, "幸福路8号").unwrap();
    let owner = w.register_person(resident("店主", &owner_home)).unwrap();
    let shop = w
        .register_place(NewPlace {
            org: Some(OrgFacts {
                org_type: "餐饮".into(),
                credit_code: Some("91350100M000100Y43".parse().unwrap()),
                contact: Some(owner.clone()),
            }),
            ..place(PlaceKind::Shop, "平安小吃店", None)
        })
        .unwrap();
    let patrol = w.start_patrol().unwrap();
    assert!(
        matches!(
            w.inspect(&patrol, &shop, false, "", 30.27, 120.15, None),
            Err(Error::InvalidInput(_))
        ),
        "a failed inspection says what failed"
    );
    let blocked = w
        .ingest_photo(&crate::photos::jpeg(640, 480), None)
        .unwrap();
    w.inspect(
        &patrol,
        &shop,
        false,
        "灭火器过期，后厨通道堆放杂物",
        30.27,
        120.15,
        Some(blocked.hash.clone()),
    )
    .unwrap();
    clock.advance_minutes(60);
    w.inspect(&patrol, &shop, true, "", 30.27, 120.15, None)
        .unwrap();

    let p = w.get_place(&shop).unwrap();
    assert_eq!(p.inspections.len(), 2);
    assert!(!p.inspections[0].passed && p.inspections[1].passed);
    let photo = p.inspections[0].photo.clone().unwrap();
    assert_eq!((&photo.hash, &photo.thumb), (&blocked.hash, &blocked.thumb));
    assert_eq!(p.inspections[1].photo, None);
    // The photo waits for upload like a case's: thumbnail first.
    let queued: Vec<_> = w
        .photos_to_upload()
        .unwrap()
        .into_iter()
        .map(|(h, _)| h)
        .collect();
    assert_eq!(queued, [blocked.thumb.clone(), blocked.hash.clone()]);
    assert_eq!(p.org.as_ref().and_then(|o| o.contact.clone()), Some(owner));
    let checkins = w.get_patrol(&patrol).unwrap().checkins;
    assert_eq!(checkins[0].place_id, Some(shop.clone()));
    assert_eq!(checkins[0].place, "安全检查", "the patrol holds no finding");

    let row = &w.list_places(&PlaceFilter::default()).unwrap()[0];
    assert_eq!(row.org_type.as_deref(), Some("餐饮"));
    assert_eq!(row.last_inspection.map(|(_, passed)| passed), Some(true));
    assert_eq!(w.registry_counts(None).unwrap()[0].places.organisations, 1);

    // The community dispatcher receives the shop and its inspections.
    sync(&w, &cd);
    assert_eq!(cd.get_place(&shop).unwrap(), p);
    // Its photo is one the dispatcher's phone may fetch and keep; another is not.
    cd.store_fetched_photo(&photo.hash, &w.photo(&photo.hash).unwrap())
        .unwrap();
    assert!(cd.has_photo(&photo.hash).unwrap());
    let other = w
        .ingest_photo(&crate::photos::jpeg(320, 240), None)
        .unwrap();
    assert!(matches!(
        cd.store_fetched_photo(&other.hash, &w.photo(&other.hash).unwrap()),
        Err(Error::NotFound { what: "photo", .. })
    ));
}

#[test]
fn two_devices_editing_one_place_offline_keep_both_edits() {
    let clock = TestClock::new();
    let w = device(WORKER, &clock);
    let cd = device(COMMUNITY, &clock);
    let flat = w
        .register_place(NewPlace {
            occupancy: Some(Occupancy::OwnerOccupied),
            ..place(PlaceKind::Dwelling, "5号楼1单元102", None)
        })
        .unwrap();
    sync(&w, &cd);
    w.edit_place(
        &flat,
        PlaceEdit {
            occupancy: Some(Some(Occupancy::Rented)),
            ..Default::default()
        },
    )
    .unwrap();
    cd.edit_place(
        &flat,
        PlaceEdit {
            name: Some("5号楼1单元102室".into()),
            location: Some(None),
            ..Default::default()
        },
    )
    .unwrap();
    sync(&w, &cd);
    let a = w.get_place(&flat).unwrap();
    assert_eq!(a, cd.get_place(&flat).unwrap());
    assert_eq!(a.occupancy, Some(Occupancy::Rented));
    assert_eq!(a.name, "5号楼1单元102室");
    assert_eq!(a.location, None);
}

#[test]
fn bad_places_are_refused_with_a_reason() {
    let clock = TestClock::new();
    let w = device(WORKER, &clock);
    let shop = place(PlaceKind::Shop, "平安超市", None);
    let refused = |p: NewPlace| matches!(w.register_place(p), Err(Error::InvalidInput(_)));
    assert!(refused(NewPlace {
        occupancy: Some(Occupancy::Rented),
        ..shop.clone()
    }));
    assert!(refused(NewPlace {
        name: " ".into(),
        ..shop.clone()
    }));
    assert!(refused(NewPlace {
        location: Some((95.0, 120.0)),
        ..shop.clone()
    }));
    assert!(refused(NewPlace {
        grid: "339901001".parse().unwrap(),
        ..shop.clone()
    }));
    // Another grid's place is out of a grid worker's reach.
    assert!(matches!(
        w.register_place(NewPlace {
            grid: "339901002001001".parse().unwrap(),
            ..shop.clone()
        }),
        Err(Error::Forbidden(_))
    ));
    let building = w
        .register_place(place(PlaceKind::Building, "3号楼", None))
        .unwrap();
    assert!(matches!(
        w.edit_place(
            &building,
            PlaceEdit {
                occupancy: Some(Some(Occupancy::Vacant)),
                ..Default::default()
            }
        ),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        w.edit_place(
            &building,
            PlaceEdit {
                within: Some(Some(building.clone())),
                ..Default::default()
            }
        ),
        Err(Error::InvalidInput(_))
    ));
    // A department handler neither sees nor writes places, even holding one
    // (copied to her device here, as no relay would).
    let h = device(HANDLER, &clock);
    sync(&w, &h);
    assert!(matches!(
        h.get_place(&building),
        Err(Error::NotFound { .. })
    ));
    assert!(h.list_places(&PlaceFilter::default()).is_err());
}

#[test]
fn a_case_at_a_known_place_takes_its_location_and_is_found_from_the_place_and_the_person() {
    let clock = TestClock::new();
    let w = device(WORKER, &clock);
    let cd = device(COMMUNITY, &clock);
    let flat = w
        .register_place(place(PlaceKind::Dwelling, "3号楼2单元301", None))
        .unwrap();
    let home = w.register_household(None, "望湖小区3号楼2单元301").unwrap();
    let zhang = w.register_person(resident("张建国", &home)).unwrap();

    let mut report = case_with("楼上管道漏水", "livelihood");
    report.links = CaseLinks {
        place: Some(flat.clone()),
        persons: vec![zhang.clone()],
    };
    let case = w.report_case(report.clone()).unwrap();
    let got = w.get_case(&case).unwrap();
    let location = got.doc.location.as_ref().expect("taken from the place");
    assert_eq!(location.address, "望湖小区3号楼2单元301");
    assert_eq!((location.lat, location.lon), (30.2741, 120.1551));
    assert_eq!(got.doc.links, report.links);
    // No name, number or address of the person is copied into the case.
    assert!(got.doc.people.is_empty());

    let about = |d: &Device, id: &DocId| -> Vec<DocId> {
        d.list_cases(&CaseFilter {
            about: Some(id.clone()),
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect()
    };
    assert_eq!(about(&w, &flat), vec![case.clone()]);
    assert_eq!(about(&w, &zhang), vec![case.clone()]);
    sync(&w, &cd);
    assert_eq!(about(&cd, &flat), vec![case.clone()]);

    // Links must name what this user keeps: an unknown place or person is refused.
    report.links.place = Some(DocId::new(gridsync_core::DocKind::Place));
    assert!(matches!(
        w.report_case(report.clone()),
        Err(Error::NotFound { .. })
    ));
    report.links = CaseLinks {
        place: None,
        persons: vec![zhang.clone(), zhang.clone()],
    };
    assert!(
        matches!(w.report_case(report), Err(Error::InvalidInput(ref m)) if m.contains("persons")),
        "each person once"
    );
}
