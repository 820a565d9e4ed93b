//! `gridsync bench registry`: the grid's base data at the sizes of a town.
//!
//! - `import`: a town's roster (`--persons`, default 100,000, with a household for
//!   every three) arriving at a replica as other devices' changes, in batches of
//!   1,000 documents, through the checked decoder: persons per second;
//! - `relay_search_*`: on that replica (plaintext, as a relay's), a town
//!   dispatcher's console searches — two characters of a name, the last four
//!   digits of an ID number, a special-group list;
//! - `phone_register` and `phone_search_*`: a grid worker's encrypted phone holding
//!   `--phone-persons` (default 3,000) of her grid's residents, registered one by
//!   one as she would, then searched the same ways;
//! - `phone_sync`: a new phone of the same worker pulls her grid's whole registry
//!   from a relay on loopback: time, changes and bytes on the wire;
//! - `import_file` and `import_file_again`: a roster spreadsheet of `--persons`
//!   rows (CSV) imported into a relay as `gridsync admin import-registry` does —
//!   every row checked, drafted as the importing user and stored through the
//!   relay's checked push — and the same file imported again (nothing changes).

use std::time::Instant;

use automerge::Automerge;
use chrono::{NaiveDate, Utc};
use gridsync_core::doc::registry::{HouseholdDoc, NewPerson, PersonDoc, Tag};
use gridsync_core::pii::{check_digit, ResidentId};
use gridsync_core::registry::PersonFilter;
use gridsync_core::sync::decode_change;
use gridsync_core::vault::DeviceKey;
use gridsync_core::{DeviceId, DocId, DocKind, Engine, RegionCode, RegionLevel, UserId};
use serde_json::json;

use super::{percentiles, print_as, sample, time_ms, BenchResult, Rng};
use crate::sim::{self, SimClock};

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "林", "高", "罗",
];
const GIVEN: &[&str] = &[
    "建国", "秀英", "桂兰", "志强", "海燕", "小明", "丽娟", "国华", "玉梅", "文杰", "淑珍", "俊峰",
    "晓东", "春梅", "永红", "德明", "雪琴", "子豪", "欣怡", "浩然",
];

/// A resident as a roster would list them: a valid ID number of a birth date
/// between 1930 and 2020, a name, now and then a phone and a special group.
fn resident(rng: &mut Rng, grid: &RegionCode, n: u64) -> BenchResult<NewPerson> {
    let born = NaiveDate::from_ymd_opt(1930, 1, 1).ok_or("a date")?
        + chrono::Days::new(rng.below(90 * 365) as u64);
    let first17 = format!("330106{}{:03}", born.format("%Y%m%d"), n % 1000);
    let check = check_digit(&first17).ok_or("17 digits")?;
    let id: ResidentId = format!("{first17}{check}").parse()?;
    let tags = match rng.below(20) {
        0 => vec![Tag::ElderlyAlone],
        1 => vec![Tag::LowIncome],
        2 => vec![Tag::Disabled, Tag::LowIncome],
        _ => vec![],
    };
    Ok(NewPerson {
        grid: grid.clone(),
        name: format!("{}{}", rng.pick(SURNAMES), rng.pick(GIVEN)),
        id_number: Some(id),
        sex: None,
        born: None,
        phone: (rng.below(3) > 0)
            .then(|| format!("13{:09}", rng.below(1_000_000_000)).parse())
            .transpose()?,
        household: None,
        tags,
        notes: String::new(),
    })
}

/// A roster of `persons` residents of `grids` as a town hands it over: CSV with
/// the headers of `docs/registry-import.md`, a household for every three rows
/// (its first row the head). ID numbers are unique: a birth date per thousand
/// rows and the sequence number within it.
fn roster_csv(rng: &mut Rng, grids: &[RegionCode], persons: usize) -> BenchResult<Vec<u8>> {
    let mut out = gridsync_server::registry_io::headers().join(",");
    out.push('\n');
    for n in 0..persons {
        let household = n / 3;
        let grid = &grids[household % grids.len()];
        let p = resident(rng, grid, n as u64)?;
        let born = NaiveDate::from_ymd_opt(1930, 1, 1).ok_or("a date")?
            + chrono::Days::new((n / 1000) as u64);
        let first17 = format!("330106{}{:03}", born.format("%Y%m%d"), n % 1000);
        let check = check_digit(&first17).ok_or("17 digits")?;
        let tags: Vec<&str> = p.tags.iter().map(|t| t.label_zh()).collect();
        out.push_str(&format!(
            "{grid},幸福小区{household}号,{},,{first17}{check},{},{},{},\n",
            p.name,
            p.phone.as_ref().map(|ph| ph.full()).unwrap_or_default(),
            if n % 3 == 0 { "户主" } else { "子女" },
            tags.join("、"),
        ));
    }
    Ok(out.into_bytes())
}

/// One document written as another device would have: its changes' bytes.
fn offline_doc(
    kind: DocKind,
    write: impl FnOnce(
        &mut automerge::transaction::Transaction<'_>,
        &DocId,
    ) -> Result<(), automerge::AutomergeError>,
) -> BenchResult<(DocId, Vec<u8>)> {
    let id = DocId::new(kind);
    let mut doc = Automerge::new().with_actor(DeviceId::random().actor());
    doc.transact(|tx| write(tx, &id))
        .map_err(|f| f.error.to_string())?;
    let change = doc.get_last_local_change().ok_or("no change")?;
    Ok((id, change.raw_bytes().to_vec()))
}

/// `--persons` residents (and a household for every three) of `grids`, imported
/// into `engine` in batches of 1,000 documents. Returns the import time in ms.
fn import_roster(engine: &Engine, grids: &[RegionCode], persons: usize) -> BenchResult<f64> {
    let mut rng = Rng(0x5851_f42d_4c95_7f2d);
    let now = Utc::now();
    let mut ms = 0.0;
    let mut made = 0;
    while made < persons {
        let n = (persons - made).min(1000);
        let mut batch = Vec::with_capacity(n + n / 3);
        for i in made..made + n {
            let grid = &grids[i % grids.len()];
            let worker: UserId = format!("w-{grid}").parse()?;
            let household = if i % 3 == 0 {
                let address = format!("望湖小区{}号楼{}室", 1 + i / 300, 101 + i % 300);
                let (h, bytes) = offline_doc(DocKind::Household, |tx, id| {
                    HouseholdDoc::write_new(tx, id, &worker, now, grid, &address)
                })?;
                batch.push((h.clone(), bytes));
                Some(h)
            } else {
                None
            };
            let mut p = resident(&mut rng, grid, i as u64)?;
            p.household = household.map(|h| (h, "户主".to_owned()));
            batch.push(offline_doc(DocKind::Person, |tx, id| {
                PersonDoc::write_new(tx, id, &worker, now, &p)
            })?);
        }
        let (t, results) = time_ms(|| {
            let decoded = batch
                .iter()
                .map(|(id, raw)| Ok((id.clone(), vec![decode_change(raw)?])))
                .collect::<BenchResult<Vec<_>>>()?;
            Ok::<_, Box<dyn std::error::Error>>(engine.import_changes(decoded)?)
        });
        for r in results? {
            r.outcome?;
        }
        ms += t;
        made += n;
    }
    Ok(ms)
}

/// The searches a list screen makes, each `samples` times. The ID suffix searched
/// is the last four characters of a resident the list shows (what a user reads
/// off a masked row).
fn searches(engine: &Engine, who: &str, persons: usize, samples: usize) -> BenchResult {
    let first = engine.list_persons(&PersonFilter {
        limit: 1,
        ..Default::default()
    })?;
    let suffix = first
        .first()
        .and_then(|p| p.id_masked.as_deref())
        .and_then(|m| m.get(m.len() - 4..))
        .ok_or("no resident with an ID number to search for")?
        .to_owned();
    let filters = [
        (
            "name_two_chars",
            PersonFilter {
                name: Some("建国".into()),
                ..Default::default()
            },
        ),
        (
            // No one has it: the whole region is read (the worst case of a name).
            "name_absent",
            PersonFilter {
                name: Some("欧阳".into()),
                ..Default::default()
            },
        ),
        (
            "id_last_four",
            PersonFilter {
                id_suffix: Some(suffix),
                ..Default::default()
            },
        ),
        (
            "special_group",
            PersonFilter {
                tag: Some(Tag::ElderlyAlone),
                ..Default::default()
            },
        ),
    ];
    for (name, f) in &filters {
        let mut rows = 0;
        let mut stats = sample(samples, |_| {
            rows = engine.list_persons(f)?.len();
            Ok(())
        })?;
        if let Some(m) = stats.as_object_mut() {
            m.insert("persons".into(), json!(persons));
            m.insert("rows".into(), json!(rows));
        }
        print_as("registry", &format!("{who}_search_{name}"), stats);
    }
    Ok(())
}

/// `gridsync bench registry`.
pub fn registry(persons: usize, phone_persons: usize, samples: usize) -> BenchResult {
    if !(1..=1_000_000).contains(&persons) || !(1..=20_000).contains(&phone_persons) {
        return Err("--persons must be 1 to 1,000,000 and --phone-persons 1 to 20,000".into());
    }
    let dir = tempfile::tempdir()?;
    let clock = SimClock::new(Utc::now());

    // A town relay's replica: the roster arrives as changes.
    let town = sim::device(dir.path(), "td-339901001", &clock)?;
    let grids: Vec<RegionCode> = town
        .directory()?
        .regions()
        .iter()
        .filter(|r| r.level == RegionLevel::Grid && r.code.as_str().starts_with("339901001"))
        .map(|r| r.code.clone())
        .collect();
    let ms = import_roster(&town, &grids, persons)?;
    print_as(
        "registry",
        "import",
        json!({ "persons": persons, "households": persons.div_ceil(3), "ms": ms,
                "persons_per_s": persons as f64 / (ms / 1e3) }),
    );
    searches(&town, "relay", persons, samples)?;
    drop(town);

    // A grid worker's phone: encrypted, her grid's residents entered one by one.
    let worker = "w-339901001001001";
    let grid: RegionCode = "339901001001001".parse()?;
    let key = DeviceKey::from_bytes([0x42; 32]);
    let phone = sim::device_encrypted(dir.path(), worker, &clock, &key)?;
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut register_ms = Vec::with_capacity(phone_persons);
    for i in 0..phone_persons {
        let p = resident(&mut rng, &grid, i as u64)?;
        let (t, r) = time_ms(|| phone.register_person(p));
        r?;
        register_ms.push(t);
    }
    let mut stats = percentiles(register_ms);
    if let Some(m) = stats.as_object_mut() {
        m.insert("persons".into(), json!(phone_persons));
        m.insert("encrypted".into(), json!(true));
    }
    print_as("registry", "phone_register", stats);
    searches(&phone, "phone", phone_persons, samples)?;

    // Her grid's registry to a new phone, through a relay on loopback.
    let relay = sim::RelayProcess::start(&dir.path().join("relay"))?;
    let (first_dir, fresh_dir) = (dir.path().join("first"), dir.path().join("second"));
    std::fs::create_dir_all(&first_dir)?;
    std::fs::create_dir_all(&fresh_dir)?;
    let first = relay.enroll(&first_dir, worker, &clock)?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..phone_persons {
        first.register_person(resident(&mut rng, &grid, i as u64)?)?;
    }
    first.sync(&mut |_| {})?;
    let fresh = relay.enroll(&fresh_dir, worker, &clock)?;
    let start = Instant::now();
    let down = fresh.sync(&mut |_| {})?;
    let secs = start.elapsed().as_secs_f64();
    let received = fresh
        .list_persons(&PersonFilter {
            limit: 1,
            ..Default::default()
        })?
        .len();
    if received == 0 {
        return Err("the new phone received no residents".into());
    }
    print_as(
        "registry",
        "phone_sync",
        json!({ "persons": phone_persons, "s": secs, "changes": down.pulled,
                "requests": down.requests, "bytes_down": down.bytes_down }),
    );
    drop((first, fresh, relay));

    // A town's roster file through `admin import-registry`, twice.
    let roster = roster_csv(&mut Rng(0x5851_f42d_4c95_7f2d), &grids, persons)?;
    let relay = gridsync_server::relay::Relay::open(&dir.path().join("import"), None)?;
    for figure in ["import_file", "import_file_again"] {
        let (ms, done) = time_ms(|| {
            gridsync_server::registry_io::import_as_user(
                &relay,
                "td-339901001",
                &roster,
                gridsync_server::registry_io::Format::Csv,
            )
        });
        let done = done.map_err(|e| format!("{figure}: {e}"))?;
        print_as(
            "registry",
            figure,
            json!({ "rows": done.rows, "bytes": roster.len(), "ms": ms,
                    "rows_per_s": done.rows as f64 / (ms / 1e3),
                    "persons_new": done.persons_new, "households_new": done.households_new,
                    "persons_unchanged": done.persons_unchanged }),
        );
    }
    Ok(())
}
