//! The registry in the console (基础信息): persons and households of the user's
//! region, searched by name, address or the last digits of an ID number, lists
//! with ID and phone numbers masked, a person's detail (full numbers only for those
//! `access::sees_identity` allows, each full view written to the audit log first),
//! a household's members and visits, visit coverage per grid and worker for a
//! month, special-group follow-up lists, and the roster import and masked export.
//! Department handlers see none of it.
//!
//! Searches are posted (a name or an ID suffix never appears in a URL, so it
//! reaches no access log, browser history or proxy); lists filtered by group,
//! grid or month are links.

use axum::extract::{Form, Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{Datelike, Utc};
use gridsync_core::doc::registry::Tag;
use gridsync_core::doc::EntryPhoto;
use gridsync_core::pii::Sex;
use gridsync_core::registry::{PersonFilter, PersonSummary};
use gridsync_core::{access, DocId, Role};
use maud::{html, Markup};
use serde::Deserialize;

use super::error::PageError;
use super::i18n::Lang;
use super::pages::{layout, local, region_name};
use super::{blocking, csrf_refusal, failure, given, html as page, lang};
use crate::http::AppState;
use crate::registry_io::{self, Format};
use crate::relay::{ConsoleUser, ErasureReason, RelayError};

/// Persons per list page.
const PAGE: u32 = 50;

/// The registry's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/registry", get(registry))
        .route("/console/registry/search", post(search))
        .route("/console/registry/coverage", get(coverage))
        .route("/console/registry/follow-up", get(follow_up))
        .route("/console/registry/import", get(import_page).post(import))
        .route("/console/registry/export.csv", get(export_csv))
        .route("/console/registry/export.xlsx", get(export_xlsx))
        .route("/console/persons/{id}", get(person))
        .route("/console/households/{id}", get(household))
        .route("/console/places/{id}", get(place))
        .route("/console/registry/erase/{id}", post(erase))
}

/// The registry's words.
pub struct Words {
    pub registry: &'static str,
    pub counts: &'static str,
    pub persons: &'static str,
    pub households: &'static str,
    pub search: &'static str,
    pub name: &'static str,
    pub address: &'static str,
    pub id_suffix: &'static str,
    pub group: &'static str,
    pub any_group: &'static str,
    pub sex: &'static str,
    pub male: &'static str,
    pub female: &'static str,
    pub birth_year: &'static str,
    pub born: &'static str,
    pub id_number: &'static str,
    pub phone: &'static str,
    pub relation: &'static str,
    pub household: &'static str,
    pub head: &'static str,
    pub members: &'static str,
    pub visits: &'static str,
    pub no_visits: &'static str,
    pub visitor: &'static str,
    pub findings: &'static str,
    pub notes: &'static str,
    pub left: &'static str,
    pub nobody: &'static str,
    pub masked_note: &'static str,
    pub full_note: &'static str,
    pub erase_title: &'static str,
    pub erase_note: &'static str,
    pub erase_reason: &'static str,
    pub erase_confirm: &'static str,
    pub erase_button: &'static str,
    pub erased_done: &'static str,
    pub erase_unconfirmed: &'static str,
    pub reason_moved: &'static str,
    pub reason_deceased: &'static str,
    pub reason_request: &'static str,
    pub reason_error: &'static str,
    pub coverage: &'static str,
    pub month: &'static str,
    pub per_grid: &'static str,
    pub per_worker: &'static str,
    pub visited: &'static str,
    pub rate: &'static str,
    pub follow_up: &'static str,
    pub every_days: &'static str,
    pub last_visit: &'static str,
    pub days_since: &'static str,
    pub never: &'static str,
    pub due: &'static str,
    pub due_only: &'static str,
    pub import: &'static str,
    pub import_help: &'static str,
    pub file: &'static str,
    pub export_csv: &'static str,
    pub export_xlsx: &'static str,
    pub export_note: &'static str,
    pub no_results: &'static str,
    pub handler_refused: &'static str,
    pub grid: &'static str,
    pub next: &'static str,
    pub show: &'static str,
    pub search_help: &'static str,
    pub place: &'static str,
    pub place_kind: &'static str,
    pub occupancy: &'static str,
    pub org_type: &'static str,
    pub inspections: &'static str,
    pub no_inspections: &'static str,
    pub passed: &'static str,
    pub failed: &'static str,
    pub residents: &'static str,
    pub cases: &'static str,
    pub no_cases: &'static str,
    pub import_failed: &'static str,
    pub import_done: &'static str,
}

const ZH: Words = Words {
    registry: "人口与房屋",
    counts: "各网格基础信息",
    persons: "人口",
    households: "户",
    search: "查询",
    name: "姓名",
    address: "地址",
    id_suffix: "身份证号后几位",
    group: "特殊人群",
    any_group: "全部",
    sex: "性别",
    male: "男",
    female: "女",
    birth_year: "出生年份",
    born: "出生日期",
    id_number: "身份证号",
    phone: "联系电话",
    relation: "与户主关系",
    household: "所在户",
    head: "户主",
    members: "家庭成员",
    visits: "走访记录",
    no_visits: "尚无走访记录",
    visitor: "走访人",
    findings: "走访情况",
    notes: "备注",
    left: "已搬离",
    nobody: "（未设定）",
    masked_note: "身份证号和电话已脱敏显示；完整号码仅向本网格网格员、所在社区和管理员显示。",
    full_note: "您正在查看完整的身份证号和电话，本次查看已记入审计日志。",
    erase_title: "永久删除",
    erase_note: "删除后，此记录及其全部历史将从服务器、所有手机和今后的备份中清除，无法恢复；审计日志只记录编号和原因。",
    erase_reason: "删除原因",
    erase_confirm: "我确认永久删除此记录",
    erase_button: "永久删除",
    erased_done: "记录已永久删除。",
    erase_unconfirmed: "请勾选确认后再删除。",
    reason_moved: "迁出且已过保存期限",
    reason_deceased: "死亡且已过保存期限",
    reason_request: "本人申请删除",
    reason_error: "录入错误或重复",
    coverage: "走访覆盖",
    month: "月份",
    per_grid: "各网格走访覆盖",
    per_worker: "网格员走访情况",
    visited: "已走访户数",
    rate: "覆盖率",
    follow_up: "重点人群走访",
    every_days: "走访周期（天）",
    last_visit: "最近走访",
    days_since: "距今天数",
    never: "从未走访",
    due: "应走访",
    due_only: "只看应走访",
    import: "导入花名册",
    import_help: "上传 .xlsx 或 UTF-8 编码的 .csv 文件。表头：网格编码、地址、姓名、性别、身份证号、联系电话、与户主关系、特殊人群、备注。先检查全部行，有任何错误则不导入任何数据；重复导入同一文件不会产生重复记录。",
    file: "文件",
    export_csv: "导出CSV（脱敏）",
    export_xlsx: "导出Excel（脱敏）",
    export_note: "导出文件中的身份证号和电话均已脱敏。",
    no_results: "没有符合条件的记录",
    handler_refused: "部门处置人员不能查看网格基础信息（人口、户、走访）。",
    grid: "网格",
    next: "下一页",
    show: "查询",
    search_help: "可按姓名（两个字即可）、地址或身份证号后几位查询。",
    place: "房屋/场所",
    place_kind: "类型",
    occupancy: "居住情况",
    org_type: "单位类型",
    inspections: "安全检查",
    no_inspections: "尚无安全检查记录",
    passed: "合格",
    failed: "不合格",
    residents: "居住人员",
    cases: "相关案件",
    no_cases: "没有相关案件",
    import_failed: "未导入",
    import_done: "已导入",
};

const EN: Words = Words {
    registry: "Residents",
    counts: "Base data per grid",
    persons: "Persons",
    households: "Households",
    search: "Search",
    name: "Name",
    address: "Address",
    id_suffix: "Last digits of the ID number",
    group: "Special group",
    any_group: "All",
    sex: "Sex",
    male: "Male",
    female: "Female",
    birth_year: "Born in",
    born: "Birth date",
    id_number: "ID number",
    phone: "Phone",
    relation: "Relationship to head",
    household: "Household",
    head: "Head of household",
    members: "Members",
    visits: "Visits",
    no_visits: "No visits yet",
    visitor: "Visited by",
    findings: "Findings",
    notes: "Notes",
    left: "Left the grid",
    nobody: "(none)",
    masked_note: "ID and phone numbers are masked; in full only to the grid's workers, its community and administrators.",
    full_note: "You are seeing the full ID and phone numbers; this view has been recorded in the audit log.",
    erase_title: "Erase for good",
    erase_note: "The record and all its history leave the server, every phone and future backups; it cannot be undone. The audit log keeps only its id and the reason.",
    erase_reason: "Reason",
    erase_confirm: "I confirm erasing this record for good",
    erase_button: "Erase",
    erased_done: "The record has been erased.",
    erase_unconfirmed: "Tick the confirmation to erase.",
    reason_moved: "Moved away, retention passed",
    reason_deceased: "Deceased, retention passed",
    reason_request: "At the person's request",
    reason_error: "Entered in error or twice",
    coverage: "Visit coverage",
    month: "Month",
    per_grid: "Coverage per grid",
    per_worker: "Visits per grid worker",
    visited: "Households visited",
    rate: "Coverage",
    follow_up: "Special-group follow-up",
    every_days: "Visit every (days)",
    last_visit: "Last visit",
    days_since: "Days since",
    never: "Never visited",
    due: "Due",
    due_only: "Due only",
    import: "Import a roster",
    import_help: "Upload an .xlsx or a UTF-8 .csv file with the Chinese headers of the template. Every row is checked first; if any is wrong nothing is imported. Importing the same file again creates no duplicates.",
    file: "File",
    export_csv: "Export CSV (masked)",
    export_xlsx: "Export Excel (masked)",
    export_note: "ID and phone numbers in exports are masked.",
    no_results: "Nothing matches",
    handler_refused: "Department handlers do not see the grid's base data (residents, households, visits).",
    grid: "Grid",
    next: "Next",
    show: "Show",
    search_help: "Search by name (two characters are enough), address, or the last digits of an ID number.",
    place: "Place",
    place_kind: "Kind",
    occupancy: "Occupancy",
    org_type: "Organisation type",
    inspections: "Safety inspections",
    no_inspections: "No inspections yet",
    passed: "Passed",
    failed: "Failed",
    residents: "Residents",
    cases: "Cases",
    no_cases: "No cases",
    import_failed: "Not imported",
    import_done: "Imported",
};

/// The registry's words in `lang`.
pub fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::Zh => &ZH,
        Lang::En => &EN,
    }
}

fn tag_label(lang: Lang, tag: Tag) -> &'static str {
    match lang {
        Lang::Zh => tag.label_zh(),
        Lang::En => match tag {
            Tag::ElderlyAlone => "Elderly living alone",
            Tag::Disabled => "Disabled",
            Tag::LowIncome => "Low income (dibao)",
            Tag::LeftBehindChild => "Left-behind child",
            Tag::CommunityCorrection => "Community correction",
            Tag::MentalIllness => "Severe mental illness",
        },
    }
}

fn sex_label(lang: Lang, sex: Option<Sex>) -> &'static str {
    let w = words(lang);
    match sex {
        Some(Sex::Male) => w.male,
        Some(Sex::Female) => w.female,
        None => "",
    }
}

/// Department handlers get a clear refusal before anything is read.
fn refuse_handler(lang: Lang, who: &ConsoleUser) -> Option<Response> {
    (who.user.role == Role::DepartmentHandler).then(|| {
        page(
            StatusCode::FORBIDDEN,
            super::pages::error(
                lang,
                Some(who),
                lang.t().not_allowed,
                words(lang).handler_refused,
            ),
        )
    })
}

fn core_refusal(e: gridsync_core::Error) -> PageError {
    match e {
        gridsync_core::Error::NotFound { what, .. } => PageError::Relay(RelayError::NotFound(what)),
        gridsync_core::Error::Forbidden(m) => PageError::Relay(RelayError::Forbidden {
            code: "refused",
            message: m,
        }),
        gridsync_core::Error::InvalidInput(m) => PageError::form(m),
        other => PageError::Relay(RelayError::internal(other)),
    }
}

fn parse_tag(s: &Option<String>) -> Option<Tag> {
    given(s).and_then(|t| Tag::ALL.into_iter().find(|x| x.as_str() == t))
}

/// The registry's sub-navigation.
fn subnav(lang: Lang) -> Markup {
    let w = words(lang);
    html! {
        nav.counts {
            a href="/console/registry" { (w.registry) }
            a href="/console/registry/follow-up" { (w.follow_up) }
            a href="/console/registry/coverage" { (w.coverage) }
            a href="/console/registry/import" { (w.import) }
            a.csv href="/console/registry/export.csv" { (w.export_csv) }
            a.csv href="/console/registry/export.xlsx" { (w.export_xlsx) }
        }
    }
}

/// The search form (posted: what is typed stays out of URLs).
fn search_form(lang: Lang, who: &ConsoleUser, f: &SearchForm) -> Markup {
    let w = words(lang);
    let tag = parse_tag(&f.tag);
    html! {
        form.filters method="post" action="/console/registry/search" id="registry-search" {
            input type="hidden" name="csrf" value=(who.csrf);
            label { (w.name) input name="name" value=(f.name.clone().unwrap_or_default()) maxlength="50"; }
            label { (w.address) input name="address" value=(f.address.clone().unwrap_or_default()) maxlength="50"; }
            label { (w.id_suffix) input name="id_suffix" value=(f.id_suffix.clone().unwrap_or_default()) maxlength="6" size="8"; }
            label { (w.group)
                select name="tag" {
                    option value="" { (w.any_group) }
                    @for t in Tag::ALL {
                        option value=(t.as_str()) selected[tag == Some(t)] { (tag_label(lang, t)) }
                    }
                }
            }
            button type="submit" { (w.search) }
        }
        p { small { (w.search_help) } }
    }
}

fn persons_table(lang: Lang, dir: &gridsync_core::Directory, rows: &[PersonSummary]) -> Markup {
    let w = words(lang);
    html! {
        @if rows.is_empty() {
            p id="no-results" { (w.no_results) }
        } @else {
            table id="persons" {
                tr { th { (w.name) } th { (w.sex) } th { (w.birth_year) } th { (w.id_number) } th { (w.phone) } th { (w.grid) } th { (w.relation) } th { (w.group) } }
                @for p in rows {
                    tr {
                        td { a href=(format!("/console/persons/{}", p.id)) { (p.name) } }
                        td { (sex_label(lang, p.sex)) }
                        td { (p.birth_year.map(|y| y.to_string()).unwrap_or_default()) }
                        td.id { (p.id_masked.clone().unwrap_or_default()) }
                        td { (p.phone_masked.clone().unwrap_or_default()) }
                        td { (region_name(dir, &p.grid)) }
                        td { @if let Some((h, r)) = &p.household { a href=(format!("/console/households/{h}")) { (r) } } }
                        td { (p.tags.iter().map(|t| tag_label(lang, *t)).collect::<Vec<_>>().join("、")) }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    tag: Option<String>,
    grid: Option<String>,
    offset: Option<u32>,
}

async fn registry(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Query(q): Query<ListQuery>,
) -> Response {
    let lang = lang(&headers);
    if let Some(r) = refuse_handler(lang, &who) {
        return r;
    }
    let who2 = who.clone();
    let tag = parse_tag(&q.tag);
    let offset = q.offset.unwrap_or(0);
    let grid = given(&q.grid);
    let result = blocking(&state, move |r| {
        let engine = r.engine();
        let region = grid
            .map(|g| g.parse().map_err(|_| PageError::form("unknown grid")))
            .transpose()?;
        let counts = engine
            .registry_counts_as(&who2.user, None)
            .map_err(core_refusal)?;
        let filter = PersonFilter {
            region,
            tag,
            limit: PAGE,
            offset,
            ..Default::default()
        };
        let rows = engine
            .list_persons_as(&who2.user, &filter)
            .map_err(core_refusal)?;
        let dir = engine.directory().map_err(RelayError::internal)?;
        Ok::<_, PageError>((counts, rows, dir))
    })
    .await;
    let (counts, rows, dir) = match result {
        Ok(v) => v,
        Err(e) => return failure(lang, Some(&who), &e),
    };
    let w = words(lang);
    let more = rows.len() as u32 == PAGE;
    let next = serde_urlencoded::to_string([
        (
            "tag",
            tag.map(|t| t.as_str().to_owned()).unwrap_or_default(),
        ),
        ("grid", q.grid.clone().unwrap_or_default()),
        ("offset", offset.saturating_add(PAGE).to_string()),
    ])
    .unwrap_or_default();
    let body = html! {
        h2 { (w.registry) }
        (subnav(lang))
        (search_form(lang, &who, &SearchForm { tag: q.tag.clone(), ..Default::default() }))
        section {
            h3 { (w.counts) }
            table id="counts" {
                tr { th { (w.grid) } th { (w.persons) } th { (w.households) }
                    @for t in Tag::ALL { th { (tag_label(lang, t)) } } }
                @for g in &counts {
                    tr {
                        td { a href=(format!("/console/registry?grid={}", g.grid)) { (g.grid.parse().map(|c| region_name(&dir, &c)).unwrap_or_else(|_| g.grid.clone())) } }
                        td { (g.persons) } td { (g.households) }
                        @for (t, n) in &g.tags {
                            td { a href=(format!("/console/registry?tag={}", t.as_str())) { (n) } }
                        }
                    }
                }
            }
        }
        section {
            h3 { (w.persons) @if let Some(t) = tag { " · " (tag_label(lang, t)) } }
            (persons_table(lang, &dir, &rows))
            @if more { p { a href=(format!("/console/registry?{next}")) { (w.next) } } }
            p { small { (w.masked_note) " " (w.export_note) } }
        }
    };
    page(
        StatusCode::OK,
        layout(lang, Some(&who), "/console/registry", body),
    )
}

#[derive(Debug, Default, Deserialize)]
struct SearchForm {
    #[serde(default)]
    csrf: String,
    name: Option<String>,
    address: Option<String>,
    id_suffix: Option<String>,
    tag: Option<String>,
}

async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Form(f): Form<SearchForm>,
) -> Response {
    let lang = lang(&headers);
    if let Some(r) = refuse_handler(lang, &who) {
        return r;
    }
    if let Some(r) = csrf_refusal(lang, &who, &f.csrf) {
        return r;
    }
    let who2 = who.clone();
    let (name, address, suffix, tag) = (
        given(&f.name),
        given(&f.address),
        given(&f.id_suffix),
        parse_tag(&f.tag),
    );
    // An address alone finds households; anything else (or nothing) finds persons.
    let searched_persons = name.is_some() || suffix.is_some() || address.is_none();
    let result = blocking(&state, move |r| {
        let engine = r.engine();
        let households = match &address {
            Some(a) => engine
                .find_households_as(&who2.user, a, PAGE)
                .map_err(core_refusal)?,
            None => Vec::new(),
        };
        let persons = if searched_persons {
            let filter = PersonFilter {
                name,
                id_suffix: suffix,
                tag,
                limit: PAGE,
                ..Default::default()
            };
            engine
                .list_persons_as(&who2.user, &filter)
                .map_err(core_refusal)?
        } else {
            Vec::new()
        };
        let dir = engine.directory().map_err(RelayError::internal)?;
        Ok::<_, PageError>((households, persons, dir))
    })
    .await;
    let (households, persons, dir) = match result {
        Ok(v) => v,
        Err(e) => return failure(lang, Some(&who), &e),
    };
    let w = words(lang);
    let body = html! {
        h2 { (w.registry) " · " (w.search) }
        (subnav(lang))
        (search_form(lang, &who, &f))
        @if f.address.as_deref().is_some_and(|a| !a.trim().is_empty()) {
            section {
                h3 { (w.households) }
                @if households.is_empty() { p { (w.no_results) } } @else {
                    table id="households" {
                        tr { th { (w.address) } th { (w.grid) } th { (w.left) } }
                        @for h in &households {
                            tr {
                                td { a href=(format!("/console/households/{}", h.id)) { (h.address) } }
                                td { (region_name(&dir, &h.grid)) }
                                td { (h.left.map(local).unwrap_or_default()) }
                            }
                        }
                    }
                }
            }
        }
        @if searched_persons {
            section {
                h3 { (w.persons) }
                (persons_table(lang, &dir, &persons))
                p { small { (w.masked_note) } }
            }
        }
    };
    page(
        StatusCode::OK,
        layout(lang, Some(&who), "/console/registry", body),
    )
}

async fn person(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Path(id): Path<String>,
) -> Response {
    let lang = lang(&headers);
    if let Some(r) = refuse_handler(lang, &who) {
        return r;
    }
    let who2 = who.clone();
    let result = blocking(&state, move |r| {
        let id: DocId = id
            .parse()
            .map_err(|_| RelayError::NotFound("no such person"))?;
        let engine = r.engine();
        let p = engine
            .get_person_as(&who2.user, &id)
            .map_err(core_refusal)?;
        // Full numbers only for those allowed, and only once the view is on record.
        let full = access::sees_identity(&who2.user, &p.grid)
            && match crate::audit::record(&r.data_folder(), &who2.user.id, "identity_view", &id) {
                Ok(()) => true,
                Err(e) => {
                    tracing::error!(error = %e, "audit log; showing masked numbers");
                    false
                }
            };
        let household = p
            .household
            .as_ref()
            .and_then(|(h, _)| engine.get_household_as(&who2.user, h).ok());
        let dir = engine.directory().map_err(RelayError::internal)?;
        Ok::<_, PageError>((p, full, household, dir))
    })
    .await;
    let (p, full, household, dir) = match result {
        Ok(v) => v,
        Err(e) => return failure(lang, Some(&who), &e),
    };
    let w = words(lang);
    let (id_shown, phone_shown) = if full {
        (
            p.id_number.as_ref().map(|i| i.full().to_owned()),
            p.phone.as_ref().map(|ph| ph.full().to_owned()),
        )
    } else {
        (
            p.id_number.as_ref().map(|i| i.masked()),
            p.phone.as_ref().map(|ph| ph.masked()),
        )
    };
    let body = html! {
        (subnav(lang))
        section id="person" {
            h2 { (p.name) }
            table {
                tr { th { (w.grid) } td { (region_name(&dir, &p.grid)) } }
                tr { th { (w.sex) } td { (sex_label(lang, p.sex)) } }
                tr { th { @if full { (w.born) } @else { (w.birth_year) } }
                     td { @if full { (p.born.map(|b| b.to_string()).unwrap_or_default()) }
                          @else { (p.born.map(|b| b.year().to_string()).unwrap_or_default()) } } }
                tr { th { (w.id_number) } td id="id-number" { (id_shown.unwrap_or_default()) } }
                tr { th { (w.phone) } td id="phone" { (phone_shown.unwrap_or_default()) } }
                tr { th { (w.household) } td {
                    @if let (Some((hid, rel)), Some(h)) = (&p.household, &household) {
                        a href=(format!("/console/households/{hid}")) { (h.address) } " · " (rel)
                    } @else if let Some((hid, rel)) = &p.household {
                        a href=(format!("/console/households/{hid}")) { (hid) } " · " (rel)
                    }
                } }
                tr { th { (w.group) } td { (p.tags.iter().map(|t| tag_label(lang, *t)).collect::<Vec<_>>().join("、")) } }
                tr { th { (w.notes) } td { (p.notes) } }
            }
            p.flash.(if full { "ok" } else { "err" }) id="identity-note" {
                @if full { (w.full_note) } @else { (w.masked_note) }
            }
        }
        @if may_erase(&who.user, &p.grid) { (erase_form(lang, &who, &p.id)) }
    };
    page(
        StatusCode::OK,
        layout(lang, Some(&who), "/console/registry", body),
    )
}

async fn household(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Path(id): Path<String>,
) -> Response {
    let lang = lang(&headers);
    if let Some(r) = refuse_handler(lang, &who) {
        return r;
    }
    let who2 = who.clone();
    let result = blocking(&state, move |r| {
        let id: DocId = id
            .parse()
            .map_err(|_| RelayError::NotFound("no such household"))?;
        let engine = r.engine();
        let h = engine
            .get_household_as(&who2.user, &id)
            .map_err(core_refusal)?;
        let members = engine
            .list_persons_as(
                &who2.user,
                &PersonFilter {
                    household: Some(id),
                    limit: 200,
                    ..Default::default()
                },
            )
            .map_err(core_refusal)?;
        let dir = engine.directory().map_err(RelayError::internal)?;
        Ok::<_, PageError>((h, members, dir))
    })
    .await;
    let (h, members, dir) = match result {
        Ok(v) => v,
        Err(e) => return failure(lang, Some(&who), &e),
    };
    let w = words(lang);
    let head_name = h
        .head
        .as_ref()
        .and_then(|hd| members.iter().find(|m| &m.id == hd))
        .map(|m| m.name.clone());
    let body = html! {
        (subnav(lang))
        section id="household" {
            h2 { (h.address) }
            table {
                tr { th { (w.grid) } td { (region_name(&dir, &h.grid)) } }
                tr { th { (w.head) } td id="head" { (head_name.unwrap_or_else(|| w.nobody.to_owned())) } }
                @if let Some(p) = &h.place { tr { th { (w.place) } td { a href=(format!("/console/places/{p}")) { (w.place) } } } }
                @if let Some(left) = h.left { tr { th { (w.left) } td { (local(left)) } } }
            }
        }
        section {
            h3 { (w.members) }
            (persons_table(lang, &dir, &members))
        }
        section id="visits" {
            h3 { (w.visits) }
            @if h.visits.is_empty() { p { (w.no_visits) } } @else {
                table {
                    tr { th { (w.last_visit) } th { (w.visitor) } th { (w.findings) } }
                    @for v in h.visits.iter().rev() {
                        tr {
                            td { (local(v.at)) }
                            td { (dir.user(&v.by).map(|u| u.name.clone()).unwrap_or_else(|| v.by.to_string())) }
                            td { (v.findings) (entry_photo(v.photo.as_ref(), w.findings)) }
                        }
                    }
                }
            }
        }
        @if may_erase(&who.user, &h.grid) { (erase_form(lang, &who, &h.id)) }
    };
    page(
        StatusCode::OK,
        layout(lang, Some(&who), "/console/registry", body),
    )
}

/// Whether `user` may erase a person or household of `grid` for good: the
/// command centre (town and district dispatchers, administrators) within its
/// region. Irreversible (ADR 0011), so not the people who enter the records.
/// A visit's or an inspection's photo: its thumbnail, opening the display image
/// (served only to those who may see the record, like a case's).
fn entry_photo(photo: Option<&EntryPhoto>, alt: &str) -> Markup {
    html! {
        @if let Some(p) = photo {
            " "
            a href={ "/console/photos/" (p.hash.as_str()) } target="_blank" {
                img src={ "/console/photos/" (p.thumb.as_str()) } alt=(alt) loading="lazy" height="48";
            }
        }
    }
}

fn may_erase(user: &gridsync_core::User, grid: &gridsync_core::RegionCode) -> bool {
    matches!(
        user.role,
        Role::TownDispatcher | Role::DistrictDispatcher | Role::CityDispatcher | Role::Admin
    ) && access::scope_of(user).covers(grid)
}

/// The erase form of a person's or household's page: a reason and a
/// confirmation, posted with the session's CSRF token.
fn erase_form(lang: Lang, who: &ConsoleUser, id: &DocId) -> Markup {
    let w = words(lang);
    let reasons = [
        (ErasureReason::MovedAwayRetention, w.reason_moved),
        (ErasureReason::DeceasedRetention, w.reason_deceased),
        (ErasureReason::AtRequest, w.reason_request),
        (ErasureReason::EnteredInError, w.reason_error),
    ];
    html! {
        section id="erase" {
            h3 { (w.erase_title) }
            p { (w.erase_note) }
            form method="post" action=(format!("/console/registry/erase/{id}")) {
                input type="hidden" name="csrf" value=(who.csrf);
                label { (w.erase_reason) " "
                    select name="reason" {
                        @for (r, label) in reasons { option value=(r.code()) { (label) } }
                    }
                }
                label { input type="checkbox" name="confirm" value="yes"; " " (w.erase_confirm) }
                button.danger type="submit" { (w.erase_button) }
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct EraseForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    confirm: String,
}

/// Erase a person or household for good (ADR 0011) and record who did it.
async fn erase(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Path(id): Path<String>,
    Form(f): Form<EraseForm>,
) -> Response {
    let lang = lang(&headers);
    if let Some(r) = refuse_handler(lang, &who) {
        return r;
    }
    if let Some(r) = csrf_refusal(lang, &who, &f.csrf) {
        return r;
    }
    let w = words(lang);
    if f.confirm != "yes" {
        return failure(lang, Some(&who), &PageError::form(w.erase_unconfirmed));
    }
    let Some(reason) = ErasureReason::CHOICES
        .into_iter()
        .find(|r| r.code() == f.reason)
    else {
        return failure(lang, Some(&who), &PageError::form("unknown reason"));
    };
    let who2 = who.clone();
    let result = blocking(&state, move |r| {
        let id: DocId = id
            .parse()
            .map_err(|_| RelayError::NotFound("no such record"))?;
        // Found as this user sees it, or not at all: no erasing by guessed ids.
        let engine = r.engine();
        let grid = match id.kind() {
            gridsync_core::DocKind::Person => engine.get_person_as(&who2.user, &id).map(|p| p.grid),
            gridsync_core::DocKind::Household => {
                engine.get_household_as(&who2.user, &id).map(|h| h.grid)
            }
            _ => return Err(PageError::Relay(RelayError::NotFound("no such record"))),
        }
        .map_err(core_refusal)?;
        if !may_erase(&who2.user, &grid) {
            return Err(PageError::Relay(RelayError::Forbidden {
                code: "refused",
                message: "only the command centre erases records".into(),
            }));
        }
        crate::audit::record(&r.data_folder(), &who2.user.id, "erase", &id)
            .map_err(RelayError::internal)?;
        r.erase(&id, reason)?;
        Ok::<_, PageError>(())
    })
    .await;
    if let Err(e) = result {
        return failure(lang, Some(&who), &e);
    }
    let body = html! {
        (subnav(lang))
        p.flash.ok id="erased" { (w.erased_done) }
    };
    page(
        StatusCode::OK,
        layout(lang, Some(&who), "/console/registry", body),
    )
}

#[derive(Debug, Default, Deserialize)]
struct MonthQuery {
    month: Option<String>,
}

async fn coverage(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Query(q): Query<MonthQuery>,
) -> Response {
    let lang = lang(&headers);
    if let Some(r) = refuse_handler(lang, &who) {
        return r;
    }
    let today = Utc::now()
        .with_timezone(&gridsync_core::index::local_offset())
        .date_naive();
    let (year, month) = match given(&q.month) {
        None => (today.year(), today.month()),
        Some(m) => match m
            .split_once('-')
            .and_then(|(y, m)| Some((y.parse::<i32>().ok()?, m.parse::<u32>().ok()?)))
            .filter(|(y, m)| (2000..=2100).contains(y) && (1..=12).contains(m))
        {
            Some(v) => v,
            None => return failure(lang, Some(&who), &PageError::form("month is YYYY-MM")),
        },
    };
    let who2 = who.clone();
    let result = blocking(&state, move |r| {
        let engine = r.engine();
        let (grids, workers) = engine
            .visit_coverage_as(&who2.user, None, year, month)
            .map_err(core_refusal)?;
        let dir = engine.directory().map_err(RelayError::internal)?;
        Ok::<_, PageError>((grids, workers, dir))
    })
    .await;
    let (grids, workers, dir) = match result {
        Ok(v) => v,
        Err(e) => return failure(lang, Some(&who), &e),
    };
    let w = words(lang);
    let key = format!("{year:04}-{month:02}");
    let body = html! {
        h2 { (w.coverage) " · " (key) }
        (subnav(lang))
        form.filters method="get" action="/console/registry/coverage" {
            label { (w.month) input type="month" name="month" value=(key); }
            button type="submit" { (w.show) }
        }
        section {
            h3 { (w.per_grid) }
            table id="coverage-grids" {
                tr { th { (w.grid) } th { (w.households) } th { (w.visited) } th { (w.rate) } }
                @for g in &grids {
                    tr {
                        td { (g.grid.parse().map(|c| region_name(&dir, &c)).unwrap_or_else(|_| g.grid.clone())) }
                        td { (g.households) } td { (g.visited) }
                        td { @if g.households > 0 { (format!("{:.1}%", 100.0 * g.visited as f64 / g.households as f64)) } }
                    }
                }
            }
        }
        section {
            h3 { (w.per_worker) }
            table id="coverage-workers" {
                tr { th { (w.visitor) } th { (w.visits) } th { (w.visited) } }
                @for x in &workers {
                    tr {
                        td { (x.worker.parse().ok().and_then(|u| dir.user(&u)).map(|u| u.name.clone()).unwrap_or_else(|| x.worker.clone())) }
                        td { (x.visits) } td { (x.households) }
                    }
                }
            }
        }
    };
    page(
        StatusCode::OK,
        layout(lang, Some(&who), "/console/registry/coverage", body),
    )
}

#[derive(Debug, Default, Deserialize)]
struct FollowQuery {
    tag: Option<String>,
    due: Option<String>,
}

async fn follow_up(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Query(q): Query<FollowQuery>,
) -> Response {
    let lang = lang(&headers);
    if let Some(r) = refuse_handler(lang, &who) {
        return r;
    }
    let tag = parse_tag(&q.tag);
    let due_only = q.due.is_some();
    let who2 = who.clone();
    let result = blocking(&state, move |r| {
        let engine = r.engine();
        let mut rows = engine
            .follow_ups_as(&who2.user, tag)
            .map_err(core_refusal)?;
        if due_only {
            rows.retain(|f| f.due);
        }
        rows.truncate(1_000);
        let dir = engine.directory().map_err(RelayError::internal)?;
        Ok::<_, PageError>((rows, dir))
    })
    .await;
    let (rows, dir) = match result {
        Ok(v) => v,
        Err(e) => return failure(lang, Some(&who), &e),
    };
    let w = words(lang);
    let now = Utc::now();
    let body = html! {
        h2 { (w.follow_up) }
        (subnav(lang))
        form.filters method="get" action="/console/registry/follow-up" {
            label { (w.group)
                select name="tag" {
                    option value="" { (w.any_group) }
                    @for t in Tag::ALL { option value=(t.as_str()) selected[tag == Some(t)] { (tag_label(lang, t)) } }
                }
            }
            label { (w.due_only) input type="checkbox" name="due" value="1" checked[due_only]; }
            button type="submit" { (w.show) }
        }
        @if rows.is_empty() { p { (w.no_results) } } @else {
            table id="follow-up" {
                tr { th { (w.name) } th { (w.id_number) } th { (w.grid) } th { (w.group) } th { (w.every_days) } th { (w.last_visit) } th { (w.days_since) } th { (w.due) } }
                @for f in &rows {
                    tr.overdue[f.due] {
                        td { a href=(format!("/console/persons/{}", f.person.id)) { (f.person.name) } }
                        td { (f.person.id_masked.clone().unwrap_or_default()) }
                        td { (region_name(&dir, &f.person.grid)) }
                        td { (f.person.tags.iter().map(|t| tag_label(lang, *t)).collect::<Vec<_>>().join("、")) }
                        td { (f.every_days.map(|d| d.to_string()).unwrap_or_default()) }
                        td { (f.last_visit.map(local).unwrap_or_else(|| w.never.to_owned())) }
                        td { (f.last_visit.map(|l| (now - l).num_days().to_string()).unwrap_or_default()) }
                        td { @if f.due { span.tag-overdue { (w.due) } } }
                    }
                }
            }
        }
    };
    page(
        StatusCode::OK,
        layout(lang, Some(&who), "/console/registry/follow-up", body),
    )
}

fn import_form(lang: Lang, who: &ConsoleUser) -> Markup {
    let w = words(lang);
    html! {
        form method="post" action="/console/registry/import" enctype="multipart/form-data" id="import-form" {
            input type="hidden" name="csrf" value=(who.csrf);
            p { label { (w.file) " " input type="file" name="file" accept=".csv,.xlsx" required; } }
            button type="submit" { (w.import) }
        }
        p { small { (w.import_help) } }
    }
}

async fn import_page(headers: HeaderMap, who: ConsoleUser) -> Response {
    let lang = lang(&headers);
    if let Some(r) = refuse_handler(lang, &who) {
        return r;
    }
    let w = words(lang);
    let body = html! {
        h2 { (w.import) }
        (subnav(lang))
        section { (import_form(lang, &who)) }
    };
    page(
        StatusCode::OK,
        layout(lang, Some(&who), "/console/registry/import", body),
    )
}

async fn import(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    mut form: Multipart,
) -> Response {
    let lang = lang(&headers);
    if let Some(r) = refuse_handler(lang, &who) {
        return r;
    }
    let mut csrf = String::new();
    let mut file: Option<(Vec<u8>, String)> = None;
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_owned();
                let file_name = field.file_name().unwrap_or_default().to_owned();
                let Ok(bytes) = field.bytes().await else {
                    return failure(lang, Some(&who), &PageError::form("the upload was cut off"));
                };
                match name.as_str() {
                    "csrf" => csrf = String::from_utf8_lossy(&bytes).into_owned(),
                    "file" if !bytes.is_empty() => file = Some((bytes.to_vec(), file_name)),
                    _ => {}
                }
            }
            Ok(None) => break,
            Err(_) => return failure(lang, Some(&who), &PageError::form("bad upload")),
        }
    }
    if let Some(r) = csrf_refusal(lang, &who, &csrf) {
        return r;
    }
    let w = words(lang);
    let outcome: Result<registry_io::ImportSummary, Vec<String>> = match file {
        None => Err(vec!["请选择要导入的文件".to_owned()]),
        Some((bytes, name)) => match Format::from_file_name(&name) {
            None => Err(vec!["文件无法导入：只接受 .xlsx 或 .csv 文件".to_owned()]),
            Some(format) => {
                let who2 = who.clone();
                let relay = state.relay.clone();
                tokio::task::spawn_blocking(move || {
                    relay.catch_up().map_err(|e| vec![e.to_string()])?;
                    registry_io::import_as_console(&relay, &who2, &bytes, format)
                        .map_err(|e| e.lines())
                })
                .await
                .unwrap_or_else(|_| Err(vec!["服务器出错，未完成导入".to_owned()]))
            }
        },
    };
    let (status, report) = match &outcome {
        Ok(summary) => (
            StatusCode::OK,
            html! { p.flash.ok id="import-done" { (w.import_done) "：" (summary.line()) } },
        ),
        Err(lines) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            html! {
                div.flash.err id="import-report" {
                    strong { (w.import_failed) }
                    @if let Some((first, rest)) = lines.split_first() {
                        p { (first) }
                        @if !rest.is_empty() { ol { @for l in rest { li { (l) } } } }
                    }
                }
            },
        ),
    };
    let body = html! {
        h2 { (w.import) }
        (subnav(lang))
        section { (report) (import_form(lang, &who)) }
    };
    page(
        status,
        layout(lang, Some(&who), "/console/registry/import", body),
    )
}

async fn export_csv(state: State<AppState>, headers: HeaderMap, who: ConsoleUser) -> Response {
    export(state, headers, who, Format::Csv).await
}

async fn export_xlsx(state: State<AppState>, headers: HeaderMap, who: ConsoleUser) -> Response {
    export(state, headers, who, Format::Xlsx).await
}

async fn export(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    format: Format,
) -> Response {
    let lang = lang(&headers);
    if let Some(r) = refuse_handler(lang, &who) {
        return r;
    }
    let who2 = who.clone();
    match blocking(&state, move |r| {
        registry_io::export(r, &who2.user, None, format).map_err(PageError::from)
    })
    .await
    {
        Ok(bytes) => {
            let (kind, ext) = match format {
                Format::Csv => ("text/csv; charset=utf-8", "csv"),
                Format::Xlsx => (
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    "xlsx",
                ),
            };
            (
                [
                    (header::CONTENT_TYPE, kind.to_owned()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!(
                            "attachment; filename=\"gridsync-registry-{}.{ext}\"",
                            who.user.region
                        ),
                    ),
                    (header::CACHE_CONTROL, "no-store".to_owned()),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
                ],
                bytes,
            )
                .into_response()
        }
        Err(e) => failure(lang, Some(&who), &e),
    }
}

async fn place(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Path(id): Path<String>,
) -> Response {
    let lang = lang(&headers);
    if let Some(r) = refuse_handler(lang, &who) {
        return r;
    }
    let who2 = who.clone();
    let result = blocking(&state, move |r| {
        let id: DocId = id
            .parse()
            .map_err(|_| RelayError::NotFound("no such place"))?;
        let engine = r.engine();
        let place = engine.get_place_as(&who2.user, &id).map_err(core_refusal)?;
        let households = engine
            .households_at_as(&who2.user, &id)
            .map_err(core_refusal)?;
        let residents = engine
            .list_persons_as(
                &who2.user,
                &PersonFilter {
                    place: Some(id.clone()),
                    limit: 200,
                    ..Default::default()
                },
            )
            .map_err(core_refusal)?;
        // Visits are made to the households living here.
        let mut visits = Vec::new();
        for h in &households {
            if let Ok(doc) = engine.get_household_as(&who2.user, &h.id) {
                visits.extend(doc.visits.into_iter().map(|v| (h.address.clone(), v)));
            }
        }
        visits.sort_by_key(|v| std::cmp::Reverse(v.1.at));
        let mut filter =
            access::scope_of(&who2.user)
                .case_filter()
                .map_err(|e| RelayError::Forbidden {
                    code: "refused",
                    message: e.to_string(),
                })?;
        filter.about = Some(id);
        filter.limit = 100;
        let cases = engine.list_cases(&filter).map_err(core_refusal)?;
        let dir = engine.directory().map_err(RelayError::internal)?;
        Ok::<_, PageError>((place, households, residents, visits, cases, dir))
    })
    .await;
    let (p, households, residents, visits, cases, dir) = match result {
        Ok(v) => v,
        Err(e) => return failure(lang, Some(&who), &e),
    };
    let w = words(lang);
    let user_name = |u: &gridsync_core::UserId| {
        dir.user(u)
            .map(|x| x.name.clone())
            .unwrap_or_else(|| u.to_string())
    };
    let body = html! {
        (subnav(lang))
        section id="place" {
            h2 { (p.name) }
            table {
                tr { th { (w.place_kind) } td { (p.kind.label_zh()) } }
                tr { th { (w.address) } td { (p.address) } }
                tr { th { (w.grid) } td { (region_name(&dir, &p.grid)) } }
                @if let Some(o) = p.occupancy { tr { th { (w.occupancy) } td { (o.label_zh()) } } }
                @if let Some(org) = &p.org { tr { th { (w.org_type) } td { (org.org_type) } } }
            }
        }
        section id="place-households" {
            h3 { (w.households) }
            @if households.is_empty() { p { (w.no_results) } } @else {
                ul { @for h in &households { li { a href=(format!("/console/households/{}", h.id)) { (h.address) } } } }
            }
        }
        section {
            h3 { (w.residents) }
            (persons_table(lang, &dir, &residents))
            p { small { (w.masked_note) } }
        }
        section id="place-visits" {
            h3 { (w.visits) }
            @if visits.is_empty() { p { (w.no_visits) } } @else {
                table {
                    tr { th { (w.last_visit) } th { (w.household) } th { (w.visitor) } th { (w.findings) } }
                    @for (address, v) in &visits {
                        tr { td { (local(v.at)) } td { (address) } td { (user_name(&v.by)) } td { (v.findings) (entry_photo(v.photo.as_ref(), w.findings)) } }
                    }
                }
            }
        }
        section id="place-inspections" {
            h3 { (w.inspections) }
            @if p.inspections.is_empty() { p { (w.no_inspections) } } @else {
                table {
                    tr { th { (w.last_visit) } th { (w.visitor) } th { (w.passed) } th { (w.findings) } }
                    @for i in p.inspections.iter().rev() {
                        tr {
                            td { (local(i.at)) } td { (user_name(&i.by)) }
                            td { @if i.passed { (w.passed) } @else { span.tag-overdue { (w.failed) } } }
                            td { (i.findings) (entry_photo(i.photo.as_ref(), w.findings)) }
                        }
                    }
                }
            }
        }
        section id="place-cases" {
            h3 { (w.cases) }
            @if cases.is_empty() { p { (w.no_cases) } } @else {
                ul { @for c in &cases { li { a href=(format!("/console/cases/{}", c.id)) { (c.title) } " · " (lang.status(c.status)) } } }
            }
        }
    };
    page(
        StatusCode::OK,
        layout(lang, Some(&who), "/console/registry", body),
    )
}
