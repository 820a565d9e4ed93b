//! The directory in the console (目录管理): administrators place users (a new
//! grid worker, a worker moved to another grid, a new handler) and add
//! departments within their region; an administrator of the top region (the
//! district, or the city above it) replaces the whole directory. Every change is validated and becomes a new
//! revision with who and when (the history below the forms); nodes and phones
//! pick it up without a restart. A server that syncs upward keeps its upstream's
//! directory and shows it read-only.

use axum::extract::{Form, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::DateTime;
use gridsync_core::directory::{Directory, PointsRules, MAX_RETENTION_DAYS, MIN_RETENTION_DAYS};
use gridsync_core::doc::registry::Tag;
use gridsync_core::{access, DeptId, RegionCode, Role, Severity, UserId};
use maud::{html, Markup};
use serde::Deserialize;

use super::error::PageError;
use super::i18n::Lang;
use super::pages::{layout, local, role_name};
use super::{blocking, csrf_refusal, failure, html as page, lang};
use crate::http::AppState;
use crate::relay::{ConsoleUser, DirectoryEdit, RelayError, RuleEdit};

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/directory", get(show))
        .route("/console/directory.json", get(download))
        .route("/console/directory/user", post(place_user))
        .route("/console/directory/department", post(add_department))
        .route("/console/directory/import", post(import))
        .route("/console/directory/category", post(rename_category))
        .route("/console/directory/deadline", post(set_deadline))
        .route("/console/directory/points", post(set_points))
        .route("/console/directory/visit", post(set_visit))
        .route("/console/directory/retention", post(set_retention))
}

/// The roles a console edit may give (administrators come from a file).
const PLACEABLE: [Role; 6] = [
    Role::GridWorker,
    Role::CommunityDispatcher,
    Role::TownDispatcher,
    Role::DistrictDispatcher,
    Role::CityDispatcher,
    Role::DepartmentHandler,
];

struct Words {
    title: &'static str,
    revision: &'static str,
    upstream_note: &'static str,
    place: &'static str,
    place_note: &'static str,
    user: &'static str,
    name: &'static str,
    role: &'static str,
    region: &'static str,
    department: &'static str,
    none: &'static str,
    save: &'static str,
    add_department: &'static str,
    dept_id: &'static str,
    replace: &'static str,
    replace_note: &'static str,
    download: &'static str,
    history: &'static str,
    when: &'static str,
    by: &'static str,
    change: &'static str,
    command_line: &'static str,
    rules: &'static str,
    rules_note: &'static str,
    category: &'static str,
    name_zh: &'static str,
    name_en: &'static str,
    rename: &'static str,
    deadline: &'static str,
    severity: &'static str,
    hours: &'static str,
    any: &'static str,
    points: &'static str,
    points_fields: [&'static str; 6],
    visit: &'static str,
    group: &'static str,
    every_days: &'static str,
    retention: &'static str,
    retention_days: &'static str,
    kept: &'static str,
    days_unit: &'static str,
}

const ZH: Words = Words {
    title: "目录管理",
    revision: "当前版本",
    upstream_note: "本服务器的目录由上级服务器下发，只读；请在上级服务器修改。",
    place: "人员调整",
    place_note: "新增人员，或调整已有人员的网格、角色、部门。调出原网格的人员，其手机下次同步时移除原网格的数据，未同步的记录保留并照常上传。",
    user: "用户编号",
    name: "姓名（新增人员必填）",
    role: "角色",
    region: "所在区域编号",
    department: "部门（仅部门处置人员）",
    none: "—",
    save: "保存",
    add_department: "新增部门",
    dept_id: "部门编号",
    replace: "导入完整目录",
    replace_note: "粘贴完整的目录 JSON（格式见 docs/directory-format.md）。校验不通过则不作任何修改。",
    download: "下载当前目录",
    history: "版本记录",
    when: "时间",
    by: "操作人",
    change: "变更",
    command_line: "命令行 / 文件 / 上级",
    rules: "分类与规则",
    rules_note: "全区统一的事件分类名称、处置时限、积分、走访频次和结案留存期限；修改后各手机下次同步时生效。结案事件超过留存期限后，从服务器、各手机和此后的备份中彻底删除，不可恢复。",
    category: "事件分类",
    name_zh: "中文名称",
    name_en: "英文名称",
    rename: "分类改名",
    deadline: "处置时限",
    severity: "紧急程度",
    hours: "时限（小时）",
    any: "全部（*）",
    points: "积分规则",
    points_fields: ["有效上报", "自行处置", "重大事件加分", "无效上报", "走访", "安全检查"],
    visit: "走访频次",
    group: "特殊人群",
    every_days: "间隔天数（留空则取消）",
    retention: "结案留存期限",
    retention_days: "留存天数（30–36500，留空则永久保留）",
    kept: "永久保留",
    days_unit: "天",
};

const EN: Words = Words {
    title: "Directory",
    revision: "Revision in force",
    upstream_note: "This server keeps its upstream server's directory, read-only here: change it there.",
    place: "Place a user",
    place_note: "Add a user, or move one to another grid, role or department. A worker moved out of a grid loses its data on her phone at its next sync; what she has not synced is kept and sent.",
    user: "User id",
    name: "Name (required for a new user)",
    role: "Role",
    region: "Region code",
    department: "Department (handlers only)",
    none: "—",
    save: "Save",
    add_department: "Add a department",
    dept_id: "Department id",
    replace: "Import a whole directory",
    replace_note: "Paste a whole directory as JSON (see docs/directory-format.md). Nothing changes unless it validates.",
    download: "Download the directory",
    history: "Revisions",
    when: "When",
    by: "By",
    change: "Change",
    command_line: "command line / file / upstream",
    rules: "Categories and rules",
    rules_note: "The district's category names, deadlines, points, visit schedules and retention of closed cases; phones follow at their next sync. A closed case past its retention is erased from the server, every phone and later backups, for good.",
    category: "Category",
    name_zh: "Chinese name",
    name_en: "English name",
    rename: "Rename a category",
    deadline: "Deadlines",
    severity: "Severity",
    hours: "Hours",
    any: "any (*)",
    points: "Points rules",
    points_fields: ["Valid report", "Handled on the spot", "Major case bonus", "Invalid report", "Visit", "Inspection"],
    visit: "Visit schedules",
    group: "Special group",
    every_days: "Every … days (empty: none)",
    retention: "Retention of closed cases",
    retention_days: "Days (30–36500; empty: kept for good)",
    kept: "kept for good",
    days_unit: "days",
};

fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::Zh => &ZH,
        Lang::En => &EN,
    }
}

/// The menu's name for this page.
pub fn title(lang: Lang) -> &'static str {
    words(lang).title
}

/// Whether `who` may come here (the relay checks again): administrators.
pub fn may_edit(who: &ConsoleUser) -> bool {
    who.user.role == Role::Admin
}

fn refused() -> PageError {
    PageError::Relay(RelayError::Forbidden {
        code: "refused",
        message: "only administrators see and change the directory".into(),
    })
}

async fn show(State(state): State<AppState>, headers: HeaderMap, who: ConsoleUser) -> Response {
    let lang = lang(&headers);
    if !may_edit(&who) {
        return failure(lang, Some(&who), &refused());
    }
    let result = blocking(&state, |r| {
        let history = r.directory_history()?;
        let upstream = r.upstream().map_err(RelayError::internal)?.is_some();
        let dir = r.engine().directory().map_err(RelayError::internal)?;
        Ok::<_, PageError>((r.directory_revision(), history, upstream, dir))
    })
    .await;
    let (revision, history, upstream, dir) = match result {
        Ok(v) => v,
        Err(e) => return failure(lang, Some(&who), &e),
    };
    let w = words(lang);
    let scope = access::scope_of(&who.user);
    let whole = dir.is_top(&who.user.region);
    let body = html! {
        h2 { (w.title) }
        p { (w.revision) " " strong id="revision" { (revision) }
            @if whole { " · " a href="/console/directory.json" download="directory.json" { (w.download) } } }
        @if upstream {
            p id="upstream-note" { (w.upstream_note) }
        } @else {
            datalist id="regions" {
                @for r in dir.regions().iter().filter(|r| scope.covers(&r.code)) {
                    option value=(r.code.as_str()) { (r.name) }
                }
            }
            form.filters id="place-user" method="post" action="/console/directory/user" {
                h3 { (w.place) }
                p { small { (w.place_note) } }
                input type="hidden" name="csrf" value=(who.csrf);
                label { (w.user) input type="text" name="user" maxlength="64" required; }
                label { (w.name) input type="text" name="name" maxlength="100"; }
                label { (w.role) select name="role" {
                    @for role in PLACEABLE { option value=(role.as_str()) { (role_name(lang, role)) } }
                } }
                label { (w.region) input type="text" name="region" list="regions" maxlength="15" required; }
                label { (w.department) select name="department" {
                    option value="" { (w.none) }
                    @for d in dir.departments().iter().filter(|d| scope.covers(&d.region)) {
                        option value=(d.id.as_str()) { (d.name) }
                    }
                } }
                button type="submit" { (w.save) }
            }
            form.filters id="add-department" method="post" action="/console/directory/department" {
                h3 { (w.add_department) }
                input type="hidden" name="csrf" value=(who.csrf);
                label { (w.dept_id) input type="text" name="id" maxlength="32" required; }
                label { (w.name) input type="text" name="name" maxlength="100" required; }
                label { (w.region) input type="text" name="region" list="regions" maxlength="15" required; }
                button type="submit" { (w.save) }
            }
            @if whole { (rules_forms(lang, &who, &dir)) }
            @if whole {
                form id="import" method="post" action="/console/directory/import" {
                    h3 { (w.replace) }
                    p { small { (w.replace_note) } }
                    input type="hidden" name="csrf" value=(who.csrf);
                    textarea name="json" rows="8" cols="80" required {}
                    button type="submit" { (w.save) }
                }
            }
        }
        h3 { (w.history) }
        table id="history" {
            tr { th { "#" } th { (w.when) } th { (w.by) } th { (w.change) } }
            @for r in &history {
                tr data-revision=(r.revision) {
                    td { (r.revision) }
                    td { (DateTime::from_timestamp_millis(r.created_ms).filter(|_| r.created_ms > 0).map(local).unwrap_or_default()) }
                    td { (r.created_by.as_deref().map_or_else(|| w.command_line.to_owned(), |u| by_name(&dir, u))) }
                    td { (r.note) }
                }
            }
        }
    };
    page(
        StatusCode::OK,
        layout(lang, Some(&who), "/console/directory", body),
    )
}

/// The top region administrator's forms for the taxonomy's names and the rules,
/// with the rules in force.
fn rules_forms(lang: Lang, who: &ConsoleUser, dir: &Directory) -> Markup {
    let w = words(lang);
    let points = dir.points_rules().unwrap_or_default();
    let values = [
        points.valid_report,
        points.handled_on_the_spot,
        points.major_case,
        points.invalid_report,
        points.visit,
        points.inspection,
    ];
    html! {
        section id="rules" {
            h3 { (w.rules) }
            p { small { (w.rules_note) } }
            form.filters id="rename-category" method="post" action="/console/directory/category" {
                strong { (w.rename) }
                input type="hidden" name="csrf" value=(who.csrf);
                label { (w.category) select name="code" {
                    @for c in dir.categories() { option value=(c.code.as_str()) { (c.name) } }
                } }
                label { (w.name_zh) input type="text" name="name" maxlength="100" required; }
                label { (w.name_en) input type="text" name="name_en" maxlength="100" required; }
                button type="submit" { (w.save) }
            }
            table id="deadlines" {
                tr { th { (w.category) } th { (w.severity) } th { (w.hours) } }
                @for r in dir.deadline_rules() {
                    tr { td { (r.category) } td { (r.severity) } td { (r.hours) } }
                }
            }
            form.filters id="set-deadline" method="post" action="/console/directory/deadline" {
                strong { (w.deadline) }
                input type="hidden" name="csrf" value=(who.csrf);
                label { (w.category) select name="category" {
                    option value="*" { (w.any) }
                    @for c in dir.categories() { option value=(c.code.as_str()) { (c.name) } }
                } }
                label { (w.severity) select name="severity" {
                    option value="*" { (w.any) }
                    @for s in SEVERITIES { option value=(s.as_str()) { (lang.severity(s)) } }
                } }
                label { (w.hours) input type="number" name="hours" min="1" max="8760" required; }
                button type="submit" { (w.save) }
            }
            form.filters id="set-points" method="post" action="/console/directory/points" {
                strong { (w.points) }
                input type="hidden" name="csrf" value=(who.csrf);
                @for ((field, label), value) in POINTS_FIELDS.iter().zip(w.points_fields).zip(values) {
                    label { (label) input type="number" name=(field) min="-1000" max="1000" value=(value) required; }
                }
                button type="submit" { (w.save) }
            }
            form.filters id="set-visit" method="post" action="/console/directory/visit" {
                strong { (w.visit) }
                input type="hidden" name="csrf" value=(who.csrf);
                label { (w.group) select name="tag" {
                    @for t in Tag::ALL {
                        option value=(t.as_str()) {
                            (t.label_zh())
                            @if let Some(days) = dir.visit_every(t) { " · " (days) }
                        }
                    }
                } }
                label { (w.every_days) input type="number" name="every_days" min="1" max="366"; }
                button type="submit" { (w.save) }
            }
            form.filters id="set-retention" method="post" action="/console/directory/retention" {
                strong { (w.retention) }
                input type="hidden" name="csrf" value=(who.csrf);
                label { (w.category) select name="code" {
                    @for c in dir.categories() {
                        option value=(c.code.as_str()) {
                            (lang.pick(&c.name, &c.name_en)) " · "
                            @match c.retention_days {
                                Some(days) => { (days) " " (w.days_unit) }
                                None => { (w.kept) }
                            }
                        }
                    }
                } }
                label { (w.retention_days) input type="number" name="days" min=(MIN_RETENTION_DAYS) max=(MAX_RETENTION_DAYS); }
                button type="submit" { (w.save) }
            }
        }
    }
}

const SEVERITIES: [Severity; 4] = [
    Severity::Low,
    Severity::Normal,
    Severity::High,
    Severity::Urgent,
];

/// The points rules' fields, in the form's order.
const POINTS_FIELDS: [&str; 6] = [
    "valid_report",
    "handled_on_the_spot",
    "major_case",
    "invalid_report",
    "visit",
    "inspection",
];

fn by_name(dir: &Directory, id: &str) -> String {
    id.parse::<UserId>()
        .ok()
        .and_then(|u| dir.user(&u).map(|u| format!("{} ({id})", u.name)))
        .unwrap_or_else(|| id.to_owned())
}

/// The directory in force, for an administrator of the top region to edit
/// offline and import (it holds every region's staff contacts).
async fn download(State(state): State<AppState>, headers: HeaderMap, who: ConsoleUser) -> Response {
    let lang = lang(&headers);
    if !may_edit(&who) {
        return failure(lang, Some(&who), &refused());
    }
    let region = who.user.region.clone();
    match blocking(&state, move |r| {
        let dir = r.engine().directory().map_err(RelayError::internal)?;
        if !dir.is_top(&region) {
            return Err(refused());
        }
        r.engine()
            .directory_json()
            .map_err(|e| RelayError::internal(e).into())
    })
    .await
    {
        Ok(json) => (
            [
                (header::CONTENT_TYPE, "application/json; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            json,
        )
            .into_response(),
        Err(e) => failure(lang, Some(&who), &e),
    }
}

#[derive(Deserialize)]
pub struct UserForm {
    csrf: String,
    user: String,
    #[serde(default)]
    name: String,
    role: String,
    region: String,
    #[serde(default)]
    department: String,
}

fn field<T: std::str::FromStr>(value: &str, what: &str) -> Result<T, PageError> {
    value
        .trim()
        .parse()
        .map_err(|_| PageError::form(format!("{what} is not valid")))
}

impl UserForm {
    fn edit(&self) -> Result<DirectoryEdit, PageError> {
        let department = match self.department.trim() {
            "" => None,
            d => Some(field::<DeptId>(d, "the department")?),
        };
        if self.name.chars().count() > 100 {
            return Err(PageError::form("the name has more than 100 characters"));
        }
        Ok(DirectoryEdit::PlaceUser {
            id: field(&self.user, "the user id")?,
            name: self.name.clone(),
            role: Role::parse(self.role.trim())
                .ok_or_else(|| PageError::form("the role is not valid"))?,
            region: field::<RegionCode>(&self.region, "the region code")?,
            department,
        })
    }
}

#[derive(Deserialize)]
pub struct DepartmentForm {
    csrf: String,
    id: String,
    name: String,
    region: String,
}

#[derive(Deserialize)]
pub struct ImportForm {
    csrf: String,
    json: String,
}

async fn place_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Form(f): Form<UserForm>,
) -> Response {
    let edit = f.edit();
    apply(state, headers, who, &f.csrf, edit).await
}

async fn add_department(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Form(f): Form<DepartmentForm>,
) -> Response {
    let edit = (|| {
        if f.name.chars().count() > 100 {
            return Err(PageError::form("the name has more than 100 characters"));
        }
        Ok(DirectoryEdit::AddDepartment {
            id: field(&f.id, "the department id")?,
            name: f.name.clone(),
            region: field(&f.region, "the region code")?,
        })
    })();
    apply(state, headers, who, &f.csrf, edit).await
}

#[derive(Deserialize)]
pub struct CategoryForm {
    csrf: String,
    code: String,
    name: String,
    name_en: String,
}

async fn rename_category(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Form(f): Form<CategoryForm>,
) -> Response {
    let edit = field(&f.code, "the category").map(|code| {
        DirectoryEdit::Rule(RuleEdit::RenameCategory {
            code,
            name: f.name.clone(),
            name_en: f.name_en.clone(),
        })
    });
    apply(state, headers, who, &f.csrf, edit).await
}

#[derive(Deserialize)]
pub struct DeadlineForm {
    csrf: String,
    category: String,
    severity: String,
    hours: String,
}

async fn set_deadline(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Form(f): Form<DeadlineForm>,
) -> Response {
    let edit = field(&f.hours, "the hours").map(|hours| {
        DirectoryEdit::Rule(RuleEdit::Deadline {
            category: f.category.trim().to_owned(),
            severity: f.severity.trim().to_owned(),
            hours,
        })
    });
    apply(state, headers, who, &f.csrf, edit).await
}

#[derive(Deserialize)]
pub struct PointsForm {
    csrf: String,
    valid_report: String,
    handled_on_the_spot: String,
    major_case: String,
    invalid_report: String,
    visit: String,
    inspection: String,
}

async fn set_points(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Form(f): Form<PointsForm>,
) -> Response {
    let points = (|| {
        Ok(PointsRules {
            valid_report: field(&f.valid_report, "valid_report")?,
            handled_on_the_spot: field(&f.handled_on_the_spot, "handled_on_the_spot")?,
            major_case: field(&f.major_case, "major_case")?,
            invalid_report: field(&f.invalid_report, "invalid_report")?,
            visit: field(&f.visit, "visit")?,
            inspection: field(&f.inspection, "inspection")?,
        })
    })();
    let edit = points.map(|p| DirectoryEdit::Rule(RuleEdit::Points(p)));
    apply(state, headers, who, &f.csrf, edit).await
}

#[derive(Deserialize)]
pub struct VisitForm {
    csrf: String,
    tag: String,
    #[serde(default)]
    every_days: String,
}

async fn set_visit(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Form(f): Form<VisitForm>,
) -> Response {
    let every_days = match f.every_days.trim() {
        "" => Ok(None),
        days => field(days, "the days").map(Some),
    };
    let edit = every_days.map(|every_days| {
        DirectoryEdit::Rule(RuleEdit::Visit {
            tag: f.tag.trim().to_owned(),
            every_days,
        })
    });
    apply(state, headers, who, &f.csrf, edit).await
}

#[derive(Deserialize)]
pub struct RetentionForm {
    csrf: String,
    code: String,
    days: String,
}

async fn set_retention(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Form(f): Form<RetentionForm>,
) -> Response {
    let edit = (|| {
        let days = match f.days.trim() {
            "" => None,
            days => Some(field(days, "the days")?),
        };
        Ok(DirectoryEdit::Rule(RuleEdit::Retention {
            code: field(&f.code, "the category")?,
            days,
        }))
    })();
    apply(state, headers, who, &f.csrf, edit).await
}

async fn import(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Form(f): Form<ImportForm>,
) -> Response {
    apply(
        state,
        headers,
        who,
        &f.csrf,
        Ok(DirectoryEdit::Replace(f.json)),
    )
    .await
}

/// Check the form's CSRF token, then have the relay apply the edit.
async fn apply(
    state: AppState,
    headers: HeaderMap,
    who: ConsoleUser,
    csrf: &str,
    edit: Result<DirectoryEdit, PageError>,
) -> Response {
    let lang = lang(&headers);
    if let Some(page) = csrf_refusal(lang, &who, csrf) {
        return page;
    }
    let edit = match edit {
        Ok(e) => e,
        Err(e) => return failure(lang, Some(&who), &e),
    };
    let who2 = who.clone();
    match blocking(&state, move |r| r.console_edit_directory(&who2, edit)).await {
        Ok(_) => Redirect::to("/console/directory").into_response(),
        Err(e) => failure(lang, Some(&who), &e),
    }
}
