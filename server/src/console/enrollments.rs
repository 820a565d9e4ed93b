//! Enrollment codes in the console (设备注册码): an administrator (within her
//! region: an `admin` placed at a town administers the town) issues one-time codes for one user or for everyone placed
//! in a grid, a community or a town at once, and gets them as a printable A4
//! sheet of QR codes (each the enrollment link: the server's address and the code
//! in one scan). Codes are shown that once and stored only hashed; the list shows
//! each code's user and state — outstanding, used (by which device), expired or
//! withdrawn — and withdraws outstanding ones. A user who left is disabled here in
//! one action that also revokes her devices and withdraws her codes.

use axum::extract::{Form, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use gridsync_core::directory::Directory;
use gridsync_core::sync::EnrollmentLink;
use gridsync_core::{access, RegionLevel, User};
use maud::{html, Markup, PreEscaped};
use serde::Deserialize;

use super::error::PageError;
use super::i18n::Lang;
use super::pages::{layout, local, region_name};
use super::{blocking, csrf_refusal, failure, html as page, lang};
use crate::http::AppState;
use crate::relay::store::Enrollment;
use crate::relay::{ConsoleUser, RelayError};

/// Days of codes the list shows.
const LIST_DAYS: i64 = 30;
/// Longest server address accepted for the links.
const MAX_SERVER_CHARS: usize = 200;

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/enrollments", get(list).post(issue))
        .route("/console/enrollments/revoke", post(revoke))
        .route("/console/users/disable", post(disable))
        .route("/console/users/enable", post(enable))
}

struct Words {
    title: &'static str,
    issue: &'static str,
    target: &'static str,
    or_user: &'static str,
    server: &'static str,
    issue_button: &'static str,
    sheet: &'static str,
    sheet_note: &'static str,
    print: &'static str,
    expires: &'static str,
    user: &'static str,
    region: &'static str,
    issued: &'static str,
    by: &'static str,
    state: &'static str,
    outstanding: &'static str,
    used: &'static str,
    expired: &'static str,
    withdrawn: &'static str,
    withdraw: &'static str,
    none: &'static str,
    command_line: &'static str,
    leavers: &'static str,
    leavers_note: &'static str,
    disable: &'static str,
    enable: &'static str,
    disabled_since: &'static str,
    confirm_disable: &'static str,
}

const ZH: Words = Words {
    title: "设备注册码",
    issue: "发放注册码",
    target: "发放范围（网格、社区或街道的全部人员）",
    or_user: "或单个用户编号",
    server: "手机连接的服务器地址",
    issue_button: "生成注册码",
    sheet: "注册码打印页",
    sheet_note: "每个注册码只能使用一次，72 小时内有效。请立即打印或保存本页：关闭后无法再次查看。",
    print: "打印",
    expires: "有效期至",
    user: "用户",
    region: "区域",
    issued: "发放时间",
    by: "发放人",
    state: "状态",
    outstanding: "待使用",
    used: "已使用",
    expired: "已过期",
    withdrawn: "已撤销",
    withdraw: "撤销",
    none: "近 30 天没有发放注册码。",
    command_line: "命令行",
    leavers: "人员停用",
    leavers_note: "人员离职时停用：其全部设备立即注销（下次联网时清除本机数据），未使用的注册码作废，不能再登录或注册。",
    disable: "停用",
    enable: "恢复",
    disabled_since: "停用时间",
    confirm_disable: "我已知晓：其手机上尚未同步的数据将随设备注销一并清除",
};

const EN: Words = Words {
    title: "Enrollment codes",
    issue: "Issue codes",
    target: "For everyone in (a grid, a community or a town)",
    or_user: "or one user id",
    server: "Server address the phones connect to",
    issue_button: "Issue codes",
    sheet: "Enrollment codes to print",
    sheet_note:
        "Each code works once, for 72 hours. Print or save this page now: it cannot be shown again.",
    print: "Print",
    expires: "Valid until",
    user: "User",
    region: "Region",
    issued: "Issued",
    by: "Issued by",
    state: "State",
    outstanding: "Outstanding",
    used: "Used",
    expired: "Expired",
    withdrawn: "Withdrawn",
    withdraw: "Withdraw",
    none: "No codes issued in the last 30 days.",
    command_line: "command line",
    leavers: "Users who left",
    leavers_note: "Disabling a user who left revokes all her devices at once (each erases its data at its next contact), withdraws her unused codes, and stops her signing in or enrolling.",
    disable: "Disable",
    enable: "Enable",
    disabled_since: "Disabled",
    confirm_disable: "I understand: whatever her phones have not yet synced is erased with them",
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
pub fn may_enroll(who: &ConsoleUser) -> bool {
    who.user.role == gridsync_core::Role::Admin
}

/// The address phones reach this server at, as the browser reached it: a guess
/// the form lets the operator correct (behind a proxy it differs). Never taken
/// from the page's URL, so a link cannot plant another server on a sheet.
fn guessed_server(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.len() <= MAX_SERVER_CHARS)
        .map(|h| format!("http://{h}"))
        .unwrap_or_default()
}

async fn list(State(state): State<AppState>, headers: HeaderMap, who: ConsoleUser) -> Response {
    let lang = lang(&headers);
    let who2 = who.clone();
    let result = blocking(&state, move |r| {
        let rows = r.console_enrollments(&who2, LIST_DAYS)?;
        let disabled = r.console_disabled_users(&who2)?;
        let dir = r.engine().directory().map_err(RelayError::internal)?;
        Ok::<_, PageError>((rows, disabled, dir))
    })
    .await;
    let (rows, disabled, dir) = match result {
        Ok(v) => v,
        Err(e) => return failure(lang, Some(&who), &e),
    };
    let server = guessed_server(&headers);
    let w = words(lang);
    let now = Utc::now();
    let body = html! {
        h2 { (w.title) }
        (issue_form(lang, &who, &dir, &server))
        section id="leavers" {
            h3 { (w.leavers) }
            p { small { (w.leavers_note) } }
            form method="post" action="/console/users/disable" {
                input type="hidden" name="csrf" value=(who.csrf);
                label { (w.user) " " input type="text" name="user" maxlength="64" required; }
                label { input type="checkbox" name="confirm" value="yes" required; " " (w.confirm_disable) }
                button type="submit" { (w.disable) }
            }
            @if !disabled.is_empty() {
                table id="disabled" {
                    tr { th { (w.user) } th { (w.region) } th { (w.disabled_since) } th { (w.by) } th {} }
                    @for (user, at, by) in &disabled {
                        tr data-user=(user.id.as_str()) {
                            td { (user.name) " (" (user.id.as_str()) ")" }
                            td { (region_name(&dir, &user.region)) }
                            td { (local(ms(*at))) }
                            td { (by.as_deref().unwrap_or(w.command_line)) }
                            td {
                                form method="post" action="/console/users/enable" {
                                    input type="hidden" name="csrf" value=(who.csrf);
                                    input type="hidden" name="user" value=(user.id.as_str());
                                    button type="submit" { (w.enable) }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if rows.is_empty() { p id="no-codes" { (w.none) } } @else {
            table id="codes" {
                thead { tr {
                    th { (w.user) } th { (w.region) } th { (w.issued) } th { (w.by) }
                    th { (w.expires) } th { (w.state) } th {}
                } }
                tbody {
                    @for (e, user) in &rows {
                        tr data-state=(state_key(e, now)) {
                            td { (user.name) " (" (user.id.as_str()) ")" }
                            td { (region_name(&dir, &user.region)) }
                            td { (if e.issued_ms > 0 { local(ms(e.issued_ms)) } else { String::new() }) }
                            td { (e.issued_by.as_deref().unwrap_or(w.command_line)) }
                            td { (local(ms(e.expires_ms))) }
                            td { (state_label(w, e, now)) }
                            td {
                                @if state_key(e, now) == "outstanding" {
                                    form method="post" action="/console/enrollments/revoke" {
                                        input type="hidden" name="csrf" value=(who.csrf);
                                        input type="hidden" name="code" value=(hex(&e.code_hash));
                                        button type="submit" { (w.withdraw) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page(
        StatusCode::OK,
        layout(lang, Some(&who), "/console/enrollments", body),
    )
}

fn ms(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t).unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A code's state, as a stable key.
fn state_key(e: &Enrollment, now: DateTime<Utc>) -> &'static str {
    match (e.revoked_ms, &e.used) {
        (Some(_), _) => "withdrawn",
        (None, Some(_)) => "used",
        (None, None) if e.expires_ms <= now.timestamp_millis() => "expired",
        (None, None) => "outstanding",
    }
}

fn state_label(w: &Words, e: &Enrollment, now: DateTime<Utc>) -> String {
    match state_key(e, now) {
        "withdrawn" => w.withdrawn.to_owned(),
        "used" => match &e.used {
            Some((at, device)) => format!("{} · {} · {device}", w.used, local(ms(*at))),
            None => w.used.to_owned(),
        },
        "expired" => w.expired.to_owned(),
        _ => w.outstanding.to_owned(),
    }
}

/// The form that issues codes: a region in `who`'s scope, or one user.
fn issue_form(lang: Lang, who: &ConsoleUser, dir: &Directory, server: &str) -> Markup {
    let w = words(lang);
    let scope = access::scope_of(&who.user);
    html! {
        form.filters id="issue" method="post" action="/console/enrollments" {
            h3 { (w.issue) }
            input type="hidden" name="csrf" value=(who.csrf);
            label { (w.target) select name="region" {
                option value="" { "—" }
                @for r in dir.regions().iter().filter(|r| r.level < RegionLevel::District && scope.covers(&r.code)) {
                    option value=(r.code.as_str()) { (r.name) " " (r.code.as_str()) }
                }
            } }
            label { (w.or_user) input type="text" name="user" maxlength="64"; }
            label { (w.server) input type="url" name="server" value=(server) maxlength=(MAX_SERVER_CHARS) required; }
            button type="submit" { (w.issue_button) }
        }
    }
}

#[derive(Deserialize)]
pub struct IssueForm {
    csrf: String,
    region: Option<String>,
    user: Option<String>,
    server: String,
}

async fn issue(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Form(f): Form<IssueForm>,
) -> Response {
    let lang = lang(&headers);
    if let Some(page) = csrf_refusal(lang, &who, &f.csrf) {
        return page;
    }
    let target = [f.user.as_deref(), f.region.as_deref()]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|t| !t.is_empty())
        .map(str::to_owned);
    let Some(target) = target else {
        return failure(
            lang,
            Some(&who),
            &PageError::form("choose a region or give a user id"),
        );
    };
    // The link must read back, so the address is checked before any code is made.
    let server = f.server.trim().to_owned();
    if server.chars().count() > MAX_SERVER_CHARS
        || EnrollmentLink::new(&server, "CHECKONLY").is_err()
    {
        return failure(
            lang,
            Some(&who),
            &PageError::form("the server address must start with http:// or https://"),
        );
    }
    let who2 = who.clone();
    let result = blocking(&state, move |r| {
        let codes = r.console_issue_enrollments(&who2, &target)?;
        let dir = r.engine().directory().map_err(RelayError::internal)?;
        Ok::<_, PageError>((codes, dir))
    })
    .await;
    let (codes, dir) = match result {
        Ok(v) => v,
        Err(e) => return failure(lang, Some(&who), &e),
    };
    let expires = Utc::now() + chrono::Duration::hours(crate::relay::ENROLLMENT_HOURS);
    let mut cards = Vec::with_capacity(codes.len());
    for (user, code) in &codes {
        match card(lang, &dir, &server, user, code, expires) {
            Ok(c) => cards.push(c),
            Err(e) => return failure(lang, Some(&who), &e),
        }
    }
    let w = words(lang);
    let body = html! {
        style { (PreEscaped(SHEET_STYLE)) }
        h2 { (w.sheet) " · " (codes.len()) }
        p.no-print { (w.sheet_note) " " button type="button" onclick="window.print()" { (w.print) } }
        div.sheet id="sheet" { @for c in &cards { (c) } }
    };
    // Never cached: the codes are on this page only.
    let mut response = page(
        StatusCode::OK,
        layout(lang, Some(&who), "/console/enrollments", body),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

/// A4, three codes across: each card cut out and handed to its worker.
const SHEET_STYLE: &str = "@page{size:A4;margin:10mm}\
.sheet{display:grid;grid-template-columns:repeat(3,1fr);gap:4mm}\
.card{border:1px dashed #9aa5b1;padding:3mm;break-inside:avoid;text-align:center;font-size:12px}\
.card svg{width:42mm;height:42mm}.card .code{font:bold 16px monospace;letter-spacing:1px}\
@media print{header,.no-print{display:none}main{padding:0}}";

/// One user's card: the QR code of the link, who it is for, the code to type.
fn card(
    lang: Lang,
    dir: &Directory,
    server: &str,
    user: &User,
    code: &str,
    expires: DateTime<Utc>,
) -> Result<Markup, PageError> {
    let w = words(lang);
    let link = EnrollmentLink::new(server, code)
        .map_err(|e| PageError::form(e.to_string()))?
        .to_string();
    let qr = qrcode::QrCode::new(link.as_bytes())
        .map_err(|_| PageError::form("the server address is too long for a QR code"))?;
    let svg = qr
        .render::<qrcode::render::svg::Color<'_>>()
        .quiet_zone(true)
        .build();
    // The renderer's XML declaration has no place inside HTML.
    let svg = svg
        .find("<svg")
        .map_or(svg.as_str(), |i| &svg[i..])
        .to_owned();
    Ok(html! {
        div.card data-user=(user.id.as_str()) data-link=(link) {
            (PreEscaped(svg))
            div { strong { (user.name) } " · " (user.id.as_str()) }
            div { (region_name(dir, &user.region)) }
            div.code { (code) }
            div { (w.expires) " " (local(expires)) }
        }
    })
}

async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Form(f): Form<RevokeForm>,
) -> Response {
    let lang = lang(&headers);
    if let Some(page) = csrf_refusal(lang, &who, &f.csrf) {
        return page;
    }
    let who2 = who.clone();
    match blocking(&state, move |r| r.console_revoke_enrollment(&who2, &f.code)).await {
        Ok(()) => Redirect::to("/console/enrollments").into_response(),
        Err(e) => failure(lang, Some(&who), &e),
    }
}

#[derive(Deserialize)]
pub struct RevokeForm {
    csrf: String,
    code: String,
}

#[derive(Deserialize)]
pub struct UserForm {
    csrf: String,
    user: String,
    /// Required to disable: her unsent work goes with her devices.
    confirm: Option<String>,
}

async fn disable(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Form(f): Form<UserForm>,
) -> Response {
    set_disabled(state, headers, who, f, true).await
}

async fn enable(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Form(f): Form<UserForm>,
) -> Response {
    set_disabled(state, headers, who, f, false).await
}

async fn set_disabled(
    state: AppState,
    headers: HeaderMap,
    who: ConsoleUser,
    f: UserForm,
    disabled: bool,
) -> Response {
    let lang = lang(&headers);
    if let Some(page) = csrf_refusal(lang, &who, &f.csrf) {
        return page;
    }
    if disabled && f.confirm.as_deref() != Some("yes") {
        return failure(
            lang,
            Some(&who),
            &PageError::form("confirm that her unsynced work is erased with her devices"),
        );
    }
    let who2 = who.clone();
    match blocking(&state, move |r| {
        r.console_set_disabled(&who2, &f.user, disabled)
    })
    .await
    {
        Ok(()) => Redirect::to("/console/enrollments").into_response(),
        Err(e) => failure(lang, Some(&who), &e),
    }
}
