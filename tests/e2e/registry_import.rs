//! Rosters imported into the registry and exported from it: every kind of bad row
//! reported by row and column in Chinese with nothing imported, a good file
//! imported as drafts stored like a phone's push (reaching a grid worker's phone),
//! the same file again changing nothing, CSV and XLSX alike; the export masked
//! and safe from formula injection; and the command line while `gridsync serve`
//! runs.

use gridsync_core::pii::check_digit;
use gridsync_core::registry::PersonFilter;
use gridsync_server::registry_io::{
    self, export, import_as_user, read_rows, xlsx_from_rows, Format, ImportError,
};
use gridsync_tests::SimRelay;

use crate::sockets::{enroll, gridsync, start};
use crate::workflow::{DISPATCHER, HANDLER, WORKER};

const GRID: &str = "339901001001001";
const GRID2: &str = "339901001001002";
/// A grid of another community: outside the community dispatcher's region.
const FOREIGN_GRID: &str = "339901001002001";
const TOWN_DISPATCHER: &str = "td-339901001";

const HEADER: &str = "网格编码,地址,姓名,性别,身份证号,联系电话,与户主关系,特殊人群,备注";

/// A valid ID number: born 1950 + n/100 …, sequence `n`, male when `male`.
fn id(n: u32, male: bool) -> String {
    let seq = (n % 100) * 10 + if male { 1 } else { 2 };
    let first17 = format!("330106{}0101{:03}", 1950 + n / 100, seq);
    let mut s = first17.clone();
    s.push(check_digit(&first17).unwrap());
    s
}

/// The same number with a wrong check digit.
fn bad_check(n: u32) -> String {
    let good = id(n, true);
    let last = good.chars().last().unwrap();
    let wrong = if last == '1' { '2' } else { '1' };
    format!("{}{wrong}", &good[..17])
}

fn csv(rows: &[String]) -> Vec<u8> {
    let mut s = String::from("\u{feff}");
    s.push_str(HEADER);
    s.push('\n');
    for r in rows {
        s.push_str(r);
        s.push('\n');
    }
    s.into_bytes()
}

/// A small, valid roster: two households in grid 1, one in grid 2.
fn good_rows() -> Vec<String> {
    vec![
        format!(
            "{GRID},望湖小区3号楼2单元301,张建国,男,{},13812345678,户主,独居老人,",
            id(1, true)
        ),
        format!(
            "{GRID},望湖小区3号楼2单元301,李秀英,女,{},,配偶,,",
            id(2, false)
        ),
        format!(
            "{GRID},望湖小区5号楼101,王小明,,{},0571-88889999,户主,低保、残疾人,需每月上门",
            id(3, true)
        ),
        format!(
            "{GRID},望湖小区5号楼101,王丽,,{},,子女,留守儿童,",
            id(4, false)
        ),
        format!(
            "{GRID2},临江路88号,赵大海,男,{},13900001111,户主,,",
            id(5, true)
        ),
    ]
}

fn import(
    relay: &SimRelay,
    user: &str,
    bytes: &[u8],
    format: Format,
) -> Result<registry_io::ImportSummary, ImportError> {
    import_as_user(&relay.relay, user, bytes, format)
}

fn log_len(relay: &SimRelay) -> u64 {
    relay.relay.store().log_len().unwrap()
}

#[test]
fn a_good_roster_is_imported_once_and_reaches_the_grid_worker() {
    let relay = SimRelay::new();
    let file = csv(&good_rows());
    let done = import(&relay, DISPATCHER, &file, Format::Csv).unwrap();
    assert_eq!(
        (
            done.rows,
            done.households_new,
            done.persons_new,
            done.heads_set
        ),
        (5, 3, 5, 3)
    );
    let logged = log_len(&relay);
    assert!(
        logged >= 11,
        "households, persons and heads are logged: {logged}"
    );

    // The same file again changes nothing: nothing drafted, nothing logged.
    let again = import(&relay, DISPATCHER, &file, Format::Csv).unwrap();
    assert_eq!(
        (
            again.households_new,
            again.persons_new,
            again.persons_updated,
            again.heads_set
        ),
        (0, 0, 0, 0),
        "{again:?}"
    );
    assert_eq!(again.persons_unchanged, 5);
    assert_eq!(log_len(&relay), logged);

    // Stored like a phone's push: pulled by the grid's worker, head and members set.
    let dir = tempfile::tempdir().unwrap();
    let worker = relay.enroll(WORKER, dir.path());
    worker.sync().unwrap();
    let mine = worker.list_persons(&PersonFilter::default()).unwrap();
    assert_eq!(mine.len(), 4, "grid 1's four residents, not grid 2's");
    let zhang = mine.iter().find(|p| p.name == "张建国").unwrap();
    assert_eq!(
        zhang.id_masked.as_deref(),
        Some(&*format!("3301**********{}", &id(1, true)[14..]))
    );
    let (household, relation) = zhang.household.clone().unwrap();
    assert_eq!(relation, "户主");
    let h = worker.get_household(&household).unwrap();
    assert_eq!(h.address, "望湖小区3号楼2单元301");
    assert_eq!(h.head.as_ref(), Some(&zhang.id));
    let wang = worker
        .get_person(&mine.iter().find(|p| p.name == "王小明").unwrap().id)
        .unwrap();
    assert_eq!(wang.notes, "需每月上门");
    assert_eq!(wang.phone.unwrap().full(), "0571-88889999");
    assert_eq!(wang.tags.len(), 2);
}

#[test]
fn a_changed_row_changes_only_that_person() {
    let relay = SimRelay::new();
    import(&relay, DISPATCHER, &csv(&good_rows()), Format::Csv).unwrap();
    let mut rows = good_rows();
    // A new phone and a new group for 李秀英; 王丽 moves to the first household.
    rows[1] = format!(
        "{GRID},望湖小区3号楼2单元301,李秀英,女,{},13700002222,配偶,独居老人,",
        id(2, false)
    );
    rows[3] = format!(
        "{GRID},望湖小区3号楼2单元301,王丽,,{},,孙女,留守儿童,",
        id(4, false)
    );
    let done = import(&relay, DISPATCHER, &csv(&rows), Format::Csv).unwrap();
    assert_eq!(
        (
            done.persons_new,
            done.households_new,
            done.persons_updated,
            done.persons_unchanged
        ),
        (0, 0, 2, 3),
        "{done:?}"
    );
    let engine = relay.relay.engine();
    let li = engine.registry_keys().unwrap();
    assert_eq!(li.persons.len(), 5);
    let dispatcher = engine.user(&DISPATCHER.parse().unwrap()).unwrap();
    let first = engine
        .list_persons_as(
            &dispatcher,
            &PersonFilter {
                name: Some("李秀".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(first[0].phone_masked.as_deref(), Some("137****2222"));
    let wang_li = engine
        .list_persons_as(
            &dispatcher,
            &PersonFilter {
                name: Some("王丽".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let zhang = engine
        .list_persons_as(
            &dispatcher,
            &PersonFilter {
                name: Some("张建国".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        wang_li[0].household.as_ref().unwrap().0,
        zhang[0].household.as_ref().unwrap().0
    );
    assert_eq!(wang_li[0].household.as_ref().unwrap().1, "孙女");
    // And that is stable too.
    let again = import(&relay, DISPATCHER, &csv(&rows), Format::Csv).unwrap();
    assert_eq!((again.persons_updated, again.persons_unchanged), (0, 5));
}

#[test]
fn every_kind_of_bad_row_is_reported_and_nothing_is_imported() {
    let relay = SimRelay::new();
    let rows = vec![
        // 2: fine on its own
        format!("{GRID},望湖小区1号,周一,,{},,户主,,", id(10, true)),
        // 3: check digit
        format!("{GRID},望湖小区1号,周二,,{},,配偶,,", bad_check(11)),
        // 4: unknown grid
        format!("339901001001099,望湖小区2号,周三,,{},,户主,,", id(12, true)),
        // 5: a grid outside the dispatcher's community
        format!("{FOREIGN_GRID},长安路1号,周四,,{},,户主,,", id(13, true)),
        // 6: the same ID number as row 2
        format!("{GRID},望湖小区1号,周五,,{},,子女,,", id(10, true)),
        // 7: a tag that is not a special group
        format!("{GRID},望湖小区3号,周六,,{},,户主,贫困户,", id(14, true)),
        // 8: a phone number that is not one
        format!("{GRID},望湖小区4号,周日,,{},12345,户主,,", id(15, true)),
        // 9: no name, and sex against the ID number
        format!("{GRID},望湖小区5号,,女,{},,户主,,", id(16, true)),
        // 10: a second head for the household of row 2
        format!("{GRID},望湖小区1号,吴七,,{},,户主,,", id(17, true)),
        // 11: a name too long
        format!(
            "{GRID},望湖小区6号,{},,{},,户主,,",
            "长".repeat(51),
            id(18, true)
        ),
    ];
    let err = import(&relay, DISPATCHER, &csv(&rows), Format::Csv).unwrap_err();
    let ImportError::Rows { errors, total } = &err else {
        panic!("expected row errors, got {err:?}");
    };
    let at = |row: usize, column: &str| {
        errors
            .iter()
            .find(|e| e.row == row && e.column == Some(column))
            .unwrap_or_else(|| panic!("no error at row {row} column {column}: {errors:#?}"))
            .message
            .clone()
    };
    assert!(at(3, "身份证号").contains("校验位"));
    assert!(at(4, "网格编码").contains("目录中没有网格"));
    assert!(at(5, "网格编码").contains("不在您的管辖范围"));
    assert!(at(6, "身份证号").contains("与第 2 行"));
    assert!(at(7, "特殊人群").contains("独居老人"));
    assert!(at(8, "联系电话").contains("11 位手机号"));
    assert!(at(9, "姓名").contains("必填"));
    assert!(at(9, "性别").contains("不符"));
    assert!(at(10, "与户主关系").contains("已有户主（第 2 行）"));
    assert!(at(11, "姓名").contains("最多 50 个"));
    assert!(
        !errors.iter().any(|e| e.row == 2),
        "row 2 is fine: {errors:#?}"
    );
    assert_eq!(*total, errors.len());
    // The report names rows and columns, never a number in full.
    let report = err.to_string();
    assert!(report.contains("未导入任何数据"), "{report}");
    for n in [id(10, true), bad_check(11), id(16, true), "12345".into()] {
        assert!(
            !report.contains(&n),
            "the report repeats a number: {report}"
        );
    }
    // All or nothing: not even row 2.
    assert_eq!(log_len(&relay), 0);
    assert!(relay
        .relay
        .engine()
        .registry_keys()
        .unwrap()
        .persons
        .is_empty());
}

#[test]
fn a_person_registered_in_another_grid_is_a_duplicate() {
    let relay = SimRelay::new();
    import(&relay, TOWN_DISPATCHER, &csv(&good_rows()), Format::Csv).unwrap();
    let moved = vec![format!(
        "{GRID2},临江路90号,张建国,男,{},,户主,,",
        id(1, true)
    )];
    let err = import(&relay, TOWN_DISPATCHER, &csv(&moved), Format::Csv).unwrap_err();
    let ImportError::Rows { errors, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].row, errors[0].column), (2, Some("身份证号")));
    assert!(errors[0].message.contains("已登记在其他网格"));

    // A worker of another grid, importing the same number into her own grid, is
    // not told where (or that) it is registered; the match is in the audit log.
    let elsewhere = vec![format!(
        "{GRID2},临江路90号,张建国,男,{},,户主,,",
        id(1, true)
    )];
    let err = import(&relay, "w-339901001001002", &csv(&elsewhere), Format::Csv).unwrap_err();
    let ImportError::Rows { errors, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(errors[0].message.contains("请联系上级部门核对"), "{err:?}");
    assert!(!errors[0].message.contains("其他网格"));
    let audit = gridsync_server::audit::recent(relay.dir.path(), 10).unwrap();
    assert!(
        audit.iter().any(|e| e.action == "import_conflict"),
        "{audit:?}"
    );
}

#[test]
fn xlsx_imports_like_csv_and_bad_files_are_refused_whole() {
    let relay = SimRelay::new();
    let mut table: Vec<Vec<String>> = vec![HEADER.split(',').map(str::to_owned).collect()];
    for r in good_rows() {
        table.push(r.split(',').map(str::to_owned).collect());
    }
    let book = xlsx_from_rows(&table).unwrap();
    let done = import(&relay, DISPATCHER, &book, Format::Xlsx).unwrap();
    assert_eq!((done.persons_new, done.households_new), (5, 3));
    let logged = log_len(&relay);
    let again = import(&relay, DISPATCHER, &book, Format::Xlsx).unwrap();
    assert_eq!(
        (
            again.persons_new,
            again.persons_updated,
            again.persons_unchanged
        ),
        (0, 0, 5)
    );
    assert_eq!(log_len(&relay), logged);
    // The CSV of the same rows matches the same persons.
    let csv_again = import(&relay, DISPATCHER, &csv(&good_rows()), Format::Csv).unwrap();
    assert_eq!(csv_again.persons_unchanged, 5);

    // An XLSX row with a bad ID is reported like a CSV one.
    table[2][4] = bad_check(2);
    let err = import(
        &relay,
        DISPATCHER,
        &xlsx_from_rows(&table).unwrap(),
        Format::Xlsx,
    )
    .unwrap_err();
    assert!(
        matches!(&err, ImportError::Rows { errors, .. } if errors[0].row == 3),
        "{err:?}"
    );

    // Files refused as a whole, with a reason.
    let file_error = |bytes: &[u8], format: Format| match import(&relay, DISPATCHER, bytes, format)
    {
        Err(ImportError::File(m)) => m,
        other => panic!("expected a file error, got {other:?}"),
    };
    assert!(file_error(b"not a zip at all", Format::Xlsx).contains(".xlsx"));
    assert!(file_error(&[0xB9, 0xFE, 0xB8, 0xF1, b'\n'], Format::Csv).contains("UTF-8"));
    assert!(file_error("姓名,地址\n张三,x\n".as_bytes(), Format::Csv).contains("缺少必填列"));
    assert!(file_error(
        "网格编码,地址,姓名,身份证号,与户主关系,年龄\n".as_bytes(),
        Format::Csv
    )
    .contains("不是模板中的列"));
    let huge = vec![b'a'; registry_io::MAX_FILE_BYTES + 1];
    assert!(file_error(&huge, Format::Csv).contains("超过上限"));
    let wide = format!("{HEADER}{}\n", ",x".repeat(registry_io::MAX_COLUMNS));
    assert!(file_error(wide.as_bytes(), Format::Csv).contains("列数"));
    assert_eq!(log_len(&relay), logged);
}

#[test]
fn a_department_handler_cannot_import_and_a_worker_only_into_her_grid() {
    let relay = SimRelay::new();
    let err = import(&relay, HANDLER, &csv(&good_rows()), Format::Csv).unwrap_err();
    assert!(matches!(err, ImportError::Refused(_)), "{err:?}");
    // The grid worker of grid 1 may import grid 1's rows, not grid 2's.
    let err = import(&relay, WORKER, &csv(&good_rows()), Format::Csv).unwrap_err();
    let ImportError::Rows { errors, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].row, errors[0].column), (6, Some("网格编码")));
    let mine: Vec<String> = good_rows().into_iter().take(4).collect();
    assert_eq!(
        import(&relay, WORKER, &csv(&mine), Format::Csv)
            .unwrap()
            .persons_new,
        4
    );
}

#[test]
fn exports_are_masked_scoped_and_safe_from_formulas() {
    let relay = SimRelay::new();
    let mut rows = good_rows();
    rows.push(format!("{GRID},=SUM(1+1),@恶意,,{},,户主,,", id(30, true)));
    import(&relay, TOWN_DISPATCHER, &csv(&rows), Format::Csv).unwrap();
    let engine = relay.relay.engine();
    let community = engine.user(&DISPATCHER.parse().unwrap()).unwrap();
    let worker2 = engine.user(&"w-339901001001002".parse().unwrap()).unwrap();

    let out = export(&relay.relay, &community, None, Format::Csv).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with('\u{feff}'));
    assert_eq!(text.lines().count(), 1 + 6, "{text}");
    for n in [1, 2, 3, 4, 5, 30] {
        let full = id(n, n % 2 == 1 || n == 30);
        assert!(!text.contains(&full[..]), "a full ID number in the export");
        assert!(!text.contains(&full[6..14]), "a birth date in the export");
    }
    assert!(!text.contains("13812345678") && text.contains("138****5678"));
    assert!(
        text.contains("'=SUM(1+1)") && text.contains("'@恶意"),
        "{text}"
    );
    // Who exported which region is on record.
    let audit = gridsync_server::audit::recent(relay.dir.path(), 10).unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "export" && e.user == DISPATCHER && e.doc == "339901001001"),
        "{audit:?}"
    );

    // A grid worker's export is her grid only; an XLSX reads back the same.
    let xlsx = export(&relay.relay, &worker2, None, Format::Xlsx).unwrap();
    let table = read_rows(&xlsx, Format::Xlsx).unwrap();
    assert_eq!(table.len(), 2, "{table:?}");
    assert_eq!(table[1][3], "赵大海");
    assert!(table[1][6].contains("**********"));
    // A handler gets nothing.
    let handler = engine.user(&HANDLER.parse().unwrap()).unwrap();
    assert!(export(&relay.relay, &handler, None, Format::Csv).is_err());
}

#[test]
fn the_command_line_imports_while_serve_runs_and_exports_masked() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let files = tempfile::tempdir().unwrap();
    let roster = files.path().join("花名册.csv");
    std::fs::write(&roster, csv(&good_rows())).unwrap();
    let run = |args: &[&str]| {
        gridsync()
            .args(["admin", "--data"])
            .arg(data.path())
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&[
        "import-registry",
        roster.to_str().unwrap(),
        "--as",
        DISPATCHER,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("新建 3 户、5 人"));

    // A phone enrolled with the running server pulls what the command stored.
    let phones = tempfile::tempdir().unwrap();
    let worker = enroll(data.path(), &server, WORKER, phones.path());
    worker.sync(&mut |_| {}).unwrap();
    assert_eq!(
        worker.list_persons(&PersonFilter::default()).unwrap().len(),
        4
    );

    // Again: nothing new; a bad file: a report by row, exit code 1.
    let out = run(&[
        "import-registry",
        roster.to_str().unwrap(),
        "--as",
        DISPATCHER,
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("5 人无变化"));
    let bad = files.path().join("bad.csv");
    std::fs::write(
        &bad,
        csv(&[format!("{GRID},x,周二,,{},,户主,,", bad_check(11))]),
    )
    .unwrap();
    let out = run(&["import-registry", bad.to_str().unwrap(), "--as", DISPATCHER]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("第 2 行「身份证号」") && !stderr.contains(&bad_check(11)),
        "{stderr}"
    );

    let exported = files.path().join("out.csv");
    let out = run(&[
        "export-registry",
        "--region",
        "339901001",
        "--format",
        "csv",
        "--out",
        exported.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&exported).unwrap();
    assert_eq!(text.lines().count(), 6);
    assert!(!text.contains(&id(1, true)));
}

/// A client that shows the console's answers as they are: no redirects
/// followed, no status taken for an error.
pub(crate) fn console_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into()
}

/// `GET path` on the console with a session cookie: status and body.
pub(crate) fn console_get(url: &str, cookie: &str, path: &str) -> (u16, String) {
    let agent = console_agent();
    let mut r = agent
        .get(format!("{url}{path}"))
        .header("Cookie", cookie)
        .call()
        .unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

/// Sign in to the console after setting the user's password; the session cookie.
pub(crate) fn console_session(data: &std::path::Path, url: &str, user: &str) -> String {
    use std::io::Write;
    let password = "place-page-2026";
    let mut child = gridsync()
        .args(["admin", "--data"])
        .arg(data)
        .args(["password", "--user", user])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    assert!(child.wait().unwrap().success());
    let agent = console_agent();
    let r = agent
        .post(format!("{url}/console/sign-in"))
        .send_form([("user", user), ("password", password)])
        .unwrap();
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned();
    cookie
}

#[test]
fn the_console_shows_a_place_with_its_households_residents_visits_and_cases() {
    use gridsync_core::doc::place::{NewPlace, Occupancy, PlaceKind};
    use gridsync_core::doc::registry::NewPerson;
    use gridsync_core::CaseLinks;

    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let phones = tempfile::tempdir().unwrap();
    let worker = enroll(data.path(), &server, WORKER, phones.path());
    let place = worker
        .register_place(NewPlace {
            grid: GRID.parse().unwrap(),
            kind: PlaceKind::Dwelling,
            name: "望湖小区7号楼302室".into(),
            address: "望湖小区7号楼302室".into(),
            within: None,
            location: None,
            occupancy: Some(Occupancy::Rented),
            org: None,
        })
        .unwrap();
    let household = worker
        .register_household(None, "望湖小区7号楼302室（租户）")
        .unwrap();
    worker.household_lives_at(&household, Some(&place)).unwrap();
    worker
        .register_person(NewPerson {
            grid: GRID.parse().unwrap(),
            name: "孙租客".into(),
            id_number: Some(id(40, true).parse().unwrap()),
            sex: None,
            born: None,
            phone: None,
            household: Some((household.clone(), "户主".into())),
            tags: Vec::new(),
            notes: String::new(),
        })
        .unwrap();
    let mut case = crate::workflow::leak();
    case.title = "出租屋楼道堆放杂物".into();
    case.links = CaseLinks {
        place: Some(place.clone()),
        persons: Vec::new(),
    };
    worker.report_case(case).unwrap();
    let patrol = worker.start_patrol().unwrap();
    let photo = worker
        .ingest_photo(&crate::photos::camera_jpeg(), None)
        .unwrap();
    worker
        .visit(
            &patrol,
            &household,
            "租户在家，消防通道已清理",
            30.27,
            120.15,
            Some(photo.hash.clone()),
        )
        .unwrap();
    worker.sync(&mut |_| {}).unwrap();
    assert!(worker.photos_to_upload().unwrap().is_empty());

    let cookie = console_session(data.path(), &server.url, DISPATCHER);
    let (status, body) = console_get(&server.url, &cookie, &format!("/console/places/{place}"));
    assert_eq!(status, 200, "{body}");
    for shown in [
        "望湖小区7号楼302室",
        "出租",
        "望湖小区7号楼302室（租户）",
        "孙租客",
        "出租屋楼道堆放杂物",
        "租户在家，消防通道已清理",
    ] {
        assert!(body.contains(shown), "the place page lacks {shown}");
    }
    // The visit's photo: its thumbnail shown, served to the dispatcher as stored.
    let thumb = format!("/console/photos/{}", photo.thumb);
    assert!(
        body.contains(&thumb),
        "the place page lacks the visit's photo"
    );
    let mut r = console_agent()
        .get(format!("{}{thumb}", server.url))
        .header("Cookie", &cookie)
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.body_mut().read_to_vec().unwrap(),
        worker.photo(&photo.thumb).unwrap()
    );
    assert!(
        !body.contains(&id(40, true)),
        "a list shows the ID number masked"
    );
    // The household links back to the place.
    let (_, body) = console_get(
        &server.url,
        &cookie,
        &format!("/console/households/{household}"),
    );
    assert!(body.contains(&format!("/console/places/{place}")));

    // A department handler is refused, a dispatcher of another community finds nothing.
    let handler = console_session(data.path(), &server.url, HANDLER);
    let (status, body) = console_get(&server.url, &handler, &format!("/console/places/{place}"));
    assert_eq!(status, 403);
    assert!(body.contains("部门处置人员不能查看网格基础信息") && !body.contains("孙租客"));
    let (status, _) = console_get(&server.url, &handler, &thumb);
    assert_eq!(status, 404, "a handler must not get a visit's photo");
    let other = console_session(data.path(), &server.url, "cd-339901001002");
    let (status, body) = console_get(&server.url, &other, &format!("/console/places/{place}"));
    assert_eq!(status, 404);
    assert!(!body.contains("孙租客"));
}

/// `POST path` with a form on the console: status and body.
fn console_post(url: &str, cookie: &str, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let agent = console_agent();
    let mut r = agent
        .post(format!("{url}{path}"))
        .header("Cookie", cookie)
        .send_form(form.iter().copied())
        .unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

/// The command centre erases a person from the console: a reason and a
/// confirmation, the record gone from the relay and the phone; the community
/// dispatcher who entered it is not offered the button.
#[test]
fn the_command_centre_erases_a_person_from_the_console() {
    use gridsync_core::doc::registry::NewPerson;
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let phones = tempfile::tempdir().unwrap();
    let worker = enroll(data.path(), &server, WORKER, phones.path());
    let person = worker
        .register_person(NewPerson {
            grid: GRID.parse().unwrap(),
            name: "周要求删除".into(),
            id_number: Some(id(41, true).parse().unwrap()),
            sex: None,
            born: None,
            phone: None,
            household: None,
            tags: Vec::new(),
            notes: String::new(),
        })
        .unwrap();
    worker.sync(&mut |_| {}).unwrap();
    let path = format!("/console/persons/{person}");

    let community = console_session(data.path(), &server.url, DISPATCHER);
    let (_, body) = console_get(&server.url, &community, &path);
    assert!(body.contains("周要求删除") && !body.contains("id=\"erase\""));

    let town = console_session(data.path(), &server.url, TOWN_DISPATCHER);
    let (_, body) = console_get(&server.url, &town, &path);
    assert!(body.contains("id=\"erase\""), "{body}");
    let csrf = body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a CSRF token")
        .to_owned();
    let erase = format!("/console/registry/erase/{person}");
    // Without the confirmation, or with a made-up reason, nothing happens.
    let (status, body) = console_post(
        &server.url,
        &town,
        &erase,
        &[("csrf", &csrf), ("reason", "at-request")],
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("请勾选确认"));
    let (status, _) = console_post(
        &server.url,
        &town,
        &erase,
        &[("csrf", &csrf), ("reason", "tier"), ("confirm", "yes")],
    );
    assert_eq!(status, 400);
    assert_eq!(console_get(&server.url, &town, &path).0, 200);

    let (status, body) = console_post(
        &server.url,
        &town,
        &erase,
        &[
            ("csrf", &csrf),
            ("reason", "at-request"),
            ("confirm", "yes"),
        ],
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("记录已永久删除"));
    assert_eq!(console_get(&server.url, &town, &path).0, 404);
    assert_eq!(worker.sync(&mut |_| {}).unwrap().purged, 1);
    assert!(worker.get_person(&person).is_err());
}
