//! The grid's base data on devices: persons and households registered, edited
//! offline on two devices and merged field by field, moved between households
//! concurrently, a household leaving the grid; lists masked, details in full, and
//! nothing of it for a department handler.

use gridsync_core::doc::registry::{NewPerson, PersonEdit, Tag};
use gridsync_core::pii::{Phone, ResidentId, Sex};
use gridsync_core::registry::PersonFilter;
use gridsync_core::{DocId, Error};

use crate::support::*;

const ID: &str = "33010619900101131X";

fn id_number(s: &str) -> ResidentId {
    s.parse().unwrap()
}

fn person(name: &str, number: Option<&str>, household: Option<&DocId>) -> NewPerson {
    NewPerson {
        grid: WORKER_GRID.parse().unwrap(),
        name: name.into(),
        id_number: number.map(id_number),
        sex: None,
        born: None,
        phone: Some("13812345678".parse::<Phone>().unwrap()),
        household: household.map(|h| (h.clone(), "户主".to_owned())),
        tags: vec![],
        notes: String::new(),
    }
}

fn members(device: &Device, household: &DocId) -> Vec<String> {
    device
        .list_persons(&PersonFilter {
            household: Some(household.clone()),
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect()
}

#[test]
fn lists_mask_id_and_phone_numbers_and_a_detail_view_has_them_whole() {
    let clock = TestClock::new();
    let w = device(WORKER, &clock);
    let home = w.register_household(None, "望湖小区3号楼2单元301").unwrap();
    let zhang = w
        .register_person(person("张建国", Some(ID), Some(&home)))
        .unwrap();
    w.register_person(person("李秀英", None, None)).unwrap();

    let all = w.list_persons(&PersonFilter::default()).unwrap();
    assert_eq!(all.len(), 2);
    let row = all.iter().find(|p| p.id == zhang).unwrap();
    assert_eq!(row.id_masked.as_deref(), Some("3301**********131X"));
    assert_eq!(row.phone_masked.as_deref(), Some("138****5678"));
    assert_eq!(row.sex, Some(Sex::Male), "from the ID number");
    // The year only: a whole date beside the masked number would give it away.
    assert_eq!(row.birth_year, Some(1990));
    assert_eq!(row.household, Some((home.clone(), "户主".to_owned())));
    // Nothing in a list row holds a full number, whatever prints it.
    assert!(!format!("{all:?}").contains(ID));
    assert!(!format!("{all:?}").contains("13812345678"));

    let full = w.get_person(&zhang).unwrap();
    assert_eq!(full.id_number.as_ref().map(ResidentId::full), Some(ID));
    assert_eq!(full.phone.as_ref().map(Phone::full), Some("13812345678"));

    // Search by two characters of a name, by the last digits of an ID number.
    let by_name = |q: &str| {
        w.list_persons(&PersonFilter {
            name: Some(q.into()),
            ..Default::default()
        })
        .unwrap()
        .len()
    };
    assert_eq!((by_name("建国"), by_name("秀英"), by_name("王")), (1, 1, 0));
    let by_suffix = |q: &str| {
        w.list_persons(&PersonFilter {
            id_suffix: Some(q.into()),
            ..Default::default()
        })
    };
    assert_eq!(by_suffix("131x").unwrap().len(), 1, "a lowercase x is an X");
    assert_eq!(by_suffix("1234").unwrap().len(), 0);
    assert!(matches!(by_suffix("12%"), Err(Error::InvalidInput(_))));
    assert!(matches!(by_suffix("1234567"), Err(Error::InvalidInput(_))));
}

#[test]
fn bad_input_is_refused_with_a_reason_that_never_repeats_a_number() {
    let clock = TestClock::new();
    let w = device(WORKER, &clock);
    let mut wrong_sex = person("张建国", Some(ID), None);
    wrong_sex.sex = Some(Sex::Female);
    let mut no_name = person(" ", None, None);
    no_name.phone = None;
    let mut other_grid = person("王芳", None, None);
    other_grid.grid = "339901002001001".parse().unwrap();
    for (what, p) in [("wrong sex", wrong_sex), ("no name", no_name)] {
        match w.register_person(p) {
            Err(Error::InvalidInput(m)) => assert!(!m.contains(ID), "{what}: {m}"),
            other => panic!("{what}: {other:?}"),
        }
    }
    assert!(matches!(
        w.register_person(other_grid),
        Err(Error::Forbidden(_))
    ));
    let zhang = w.register_person(person("张建国", Some(ID), None)).unwrap();
    // An edit that would contradict the ID number is refused and leaves nothing.
    let err = w
        .edit_person(
            &zhang,
            PersonEdit {
                born: Some(Some(chrono::NaiveDate::from_ymd_opt(1991, 1, 1).unwrap())),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    assert_eq!(
        w.get_person(&zhang).unwrap().born,
        chrono::NaiveDate::from_ymd_opt(1990, 1, 1)
    );
    // A new ID number brings its own birth date and sex.
    w.edit_person(
        &zhang,
        PersonEdit {
            id_number: Some(Some(id_number("11010519491231002X"))),
            ..Default::default()
        },
    )
    .unwrap();
    let after = w.get_person(&zhang).unwrap();
    assert_eq!(after.born, chrono::NaiveDate::from_ymd_opt(1949, 12, 31));
    assert_eq!(after.sex, Some(Sex::Female));
    assert!(matches!(
        w.move_person(&zhang, Some((zhang.clone(), "户主".into()))),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn two_devices_editing_one_person_offline_keep_both_edits() {
    let clock = TestClock::new();
    let w = device(WORKER, &clock);
    let cd = device(COMMUNITY, &clock);
    let zhang = w.register_person(person("张建国", Some(ID), None)).unwrap();
    sync(&w, &cd);

    // Offline: the worker changes the phone and tags him 独居老人; the community
    // dispatcher tags him 低保 and writes a note.
    w.edit_person(
        &zhang,
        PersonEdit {
            phone: Some(Some("13900001111".parse().unwrap())),
            add_tags: vec![Tag::ElderlyAlone],
            ..Default::default()
        },
    )
    .unwrap();
    cd.edit_person(
        &zhang,
        PersonEdit {
            notes: Some("每周电话回访".into()),
            add_tags: vec![Tag::LowIncome],
            ..Default::default()
        },
    )
    .unwrap();
    sync(&w, &cd);

    let a = w.get_person(&zhang).unwrap();
    assert_eq!(a, cd.get_person(&zhang).unwrap());
    assert_eq!(a.phone.as_ref().map(Phone::full), Some("13900001111"));
    assert_eq!(a.notes, "每周电话回访");
    assert_eq!(a.tags, vec![Tag::ElderlyAlone, Tag::LowIncome]);
    let tagged = |d: &Device, tag| {
        d.list_persons(&PersonFilter {
            tag: Some(tag),
            ..Default::default()
        })
        .unwrap()
        .len()
    };
    assert_eq!(
        (tagged(&w, Tag::LowIncome), tagged(&cd, Tag::ElderlyAlone)),
        (1, 1)
    );
    assert_eq!(tagged(&w, Tag::Disabled), 0);
}

#[test]
fn a_person_moved_to_two_households_at_once_ends_in_one_everywhere() {
    let clock = TestClock::new();
    let w = device(WORKER, &clock);
    let cd = device(COMMUNITY, &clock);
    let old = w.register_household(None, "望湖小区3号楼2单元301").unwrap();
    let east = w.register_household(None, "望湖小区5号楼1单元102").unwrap();
    let west = w.register_household(None, "望湖小区7号楼3单元501").unwrap();
    let li = w
        .register_person(person("李小明", None, Some(&old)))
        .unwrap();
    sync(&w, &cd);

    w.move_person(&li, Some((east.clone(), "子女".into())))
        .unwrap();
    cd.move_person(&li, Some((west.clone(), "配偶".into())))
        .unwrap();
    assert_eq!(members(&w, &east), vec!["李小明"]);
    assert_eq!(members(&cd, &west), vec!["李小明"]);
    sync(&w, &cd);

    let here = w.get_person(&li).unwrap().household;
    assert_eq!(here, cd.get_person(&li).unwrap().household);
    let (household, relation) = here.expect("in a household");
    assert!(
        (household == east && relation == "子女") || (household == west && relation == "配偶"),
        "the household and the relation come from the same move"
    );
    for d in [&w, &cd] {
        let counts: Vec<usize> = [&old, &east, &west].map(|h| members(d, h).len()).to_vec();
        assert_eq!(counts.iter().sum::<usize>(), 1, "in exactly one household");
    }
}

#[test]
fn a_household_that_left_the_grid_takes_no_one_in() {
    let clock = TestClock::new();
    let w = device(WORKER, &clock);
    let home = w.register_household(None, "望湖小区3号楼2单元301").unwrap();
    let zhang = w
        .register_person(person("张建国", Some(ID), Some(&home)))
        .unwrap();
    w.set_household_head(&home, Some(&zhang)).unwrap();
    assert_eq!(w.get_household(&home).unwrap().head, Some(zhang.clone()));

    clock.advance_minutes(60);
    w.household_leaves(&home).unwrap();
    assert_eq!(w.get_household(&home).unwrap().left, Some(clock.now()));
    assert!(matches!(
        w.household_leaves(&home),
        Err(Error::InvalidInput(_))
    ));
    let newcomer = w.register_person(person("王芳", None, None)).unwrap();
    assert!(matches!(
        w.move_person(&newcomer, Some((home.clone(), "配偶".into()))),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        w.register_person(person("赵强", None, Some(&home))),
        Err(Error::InvalidInput(_))
    ));
}

#[test]
fn counts_per_grid_follow_households_leaving_and_tags_changing() {
    let clock = TestClock::new();
    let w = device(WORKER, &clock);
    let town = device(TOWN, &clock);
    let home = w.register_household(None, "望湖小区3号楼2单元301").unwrap();
    let gone = w.register_household(None, "望湖小区5号楼1单元102").unwrap();
    let mut zhang = person("张建国", Some(ID), Some(&home));
    zhang.tags = vec![Tag::ElderlyAlone, Tag::LowIncome];
    let zhang = w.register_person(zhang).unwrap();
    let mut li = person("李秀英", None, None);
    li.tags = vec![Tag::LowIncome];
    w.register_person(li).unwrap();
    w.household_leaves(&gone).unwrap();
    w.edit_person(
        &zhang,
        PersonEdit {
            remove_tags: vec![Tag::ElderlyAlone],
            ..Default::default()
        },
    )
    .unwrap();
    sync(&w, &town);

    let counts = town.registry_counts(None).unwrap();
    assert_eq!(counts.len(), 1, "{counts:?}");
    let grid = &counts[0];
    assert_eq!(grid.grid, WORKER_GRID);
    assert_eq!((grid.persons, grid.households), (2, 1));
    let tag = |t| grid.tags.iter().find(|(x, _)| *x == t).map(|(_, n)| *n);
    assert_eq!(tag(Tag::LowIncome), Some(2));
    assert_eq!(tag(Tag::ElderlyAlone), Some(0));
    // Another town's region holds nothing of it; a handler is refused.
    let other_town = "339901002".parse().unwrap();
    assert!(town.registry_counts(Some(&other_town)).unwrap().is_empty());
    assert!(matches!(
        device(HANDLER, &clock).registry_counts(None),
        Err(Error::Forbidden(_))
    ));
}

#[test]
fn visits_during_a_patrol_clear_due_visits_until_the_rule_comes_round_again() {
    let clock = TestClock::new();
    let w = device(WORKER, &clock);
    let town = device(TOWN, &clock);
    let home = w.register_household(None, "望湖小区3号楼2单元301").unwrap();
    let poor = w.register_household(None, "望湖小区5号楼1单元102").unwrap();
    let mut alone = person("张建国", Some(ID), Some(&home));
    alone.tags = vec![Tag::ElderlyAlone, Tag::LowIncome]; // weekly wins over monthly
    w.register_person(alone).unwrap();
    let mut low = person("李秀英", None, Some(&poor));
    low.tags = vec![Tag::LowIncome];
    w.register_person(low).unwrap();
    w.register_person(person("王芳", None, Some(&poor)))
        .unwrap(); // no group: never due

    let due = |d: &Device| -> Vec<(String, u32, bool)> {
        d.due_visits()
            .unwrap()
            .into_iter()
            .map(|v| (v.person.name, v.every_days, v.last_visit.is_some()))
            .collect()
    };
    // Never visited, in grid and name order.
    assert_eq!(
        due(&w),
        vec![("张建国".into(), 7, false), ("李秀英".into(), 30, false)]
    );

    let patrol = w.start_patrol().unwrap();
    w.visit(
        &patrol,
        &home,
        "老人身体状况良好，家中燃气已检查",
        30.2741,
        120.1551,
        None,
    )
    .unwrap();
    assert_eq!(due(&w), vec![("李秀英".into(), 30, false)]);
    // The patrol says where and when; what was found is the household's, so it
    // goes with the household if that is ever erased.
    let p = w.get_patrol(&patrol).unwrap();
    assert_eq!(p.checkins[0].household, Some(home.clone()));
    assert_eq!(p.checkins[0].place, "入户走访");
    let visits = w.get_household(&home).unwrap().visits;
    assert_eq!(visits.len(), 1);
    assert_eq!(visits[0].findings, "老人身体状况良好，家中燃气已检查");
    assert_eq!(
        (visits[0].by.as_str(), &visits[0].patrol),
        (WORKER, &patrol)
    );

    // Eight days on, the weekly rule makes him due again; the monthly one not yet.
    clock.advance_minutes(8 * 24 * 60);
    w.visit(&patrol, &poor, "低保材料已更新", 30.2742, 120.1552, None)
        .unwrap();
    assert_eq!(due(&w), vec![("张建国".into(), 7, true)]);

    // The command centre's coverage for the month, per grid and per worker.
    w.end_patrol(&patrol).unwrap();
    sync(&w, &town);
    let (grids, workers) = town.visit_coverage(None, 2026, 11).unwrap();
    assert_eq!(grids.len(), 1);
    assert_eq!((grids[0].households, grids[0].visited), (2, 2));
    assert_eq!(workers.len(), 1);
    assert_eq!(
        (
            workers[0].worker.as_str(),
            workers[0].visits,
            workers[0].households
        ),
        (WORKER, 2, 2)
    );
    let (_, none) = town.visit_coverage(None, 2026, 12).unwrap();
    assert!(none.is_empty(), "no visits in December");
    assert!(matches!(
        town.visit_coverage(None, 2026, 13),
        Err(Error::InvalidInput(_))
    ));

    // A household that left takes no visits, and its people are not due; nor
    // does a household of another grid join this grid's patrol.
    w.household_leaves(&poor).unwrap();
    let again = w.start_patrol().unwrap();
    assert!(matches!(
        w.visit(&again, &poor, "回访", 30.2742, 120.1552, None),
        Err(Error::InvalidInput(_))
    ));
    assert!(!due(&w).iter().any(|(name, _, _)| name == "李秀英"));
    let cd = device(COMMUNITY, &clock);
    let next_grid = cd
        .register_household(Some("339901001001002".parse().unwrap()), "望湖小区9号楼")
        .unwrap();
    sync(&w, &cd);
    assert!(matches!(
        w.visit(&again, &next_grid, "回访", 30.2742, 120.1552, None),
        Err(Error::NotFound { .. } | Error::InvalidInput(_))
    ));
}

#[test]
fn a_department_handler_neither_sees_nor_writes_base_data() {
    let clock = TestClock::new();
    let w = device(WORKER, &clock);
    let h = device(HANDLER, &clock);
    let other = device(OTHER_WORKER, &clock);
    let zhang = w.register_person(person("张建国", Some(ID), None)).unwrap();
    sync(&w, &h);
    sync(&w, &other);
    assert!(matches!(
        h.list_persons(&PersonFilter::default()),
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(h.get_person(&zhang), Err(Error::NotFound { .. })));
    assert!(matches!(
        h.register_household(Some(WORKER_GRID.parse().unwrap()), "望湖小区"),
        Err(Error::Forbidden(_))
    ));
    // Another grid's worker: not found, and an empty list.
    assert!(matches!(
        other.get_person(&zhang),
        Err(Error::NotFound { .. })
    ));
    assert!(other
        .list_persons(&PersonFilter::default())
        .unwrap()
        .is_empty());
}

#[test]
fn a_person_and_her_household_are_in_one_grid() {
    let clock = TestClock::new();
    let cd = device(COMMUNITY, &clock);
    // Two grids of the same community: the dispatcher keeps both.
    let grid_b = "339901001001002";
    let here = cd
        .register_household(Some(WORKER_GRID.parse().unwrap()), "望湖小区3号楼2单元301")
        .unwrap();
    let there = cd
        .register_household(Some(grid_b.parse().unwrap()), "望湖小区9号楼1单元101")
        .unwrap();
    fn refused<T>(r: Result<T, Error>) -> bool {
        matches!(r, Err(Error::InvalidInput(m)) if m.contains("grid"))
    }
    assert!(refused(cd.register_person(person(
        "张建国",
        None,
        Some(&there)
    ))));
    let zhang = cd
        .register_person(person("张建国", None, Some(&here)))
        .unwrap();
    assert!(refused(
        cd.move_person(&zhang, Some((there.clone(), "子女".into())))
    ));
    assert!(refused(cd.set_household_head(&there, Some(&zhang))));
    cd.set_household_head(&here, Some(&zhang)).unwrap();
    assert_eq!(members(&cd, &here), vec!["张建国"]);
}
