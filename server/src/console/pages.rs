//! The console's pages, rendered on the server (maud escapes every value). Plain
//! forms and links: no script is needed to use it.

use chrono::{DateTime, Utc};
use gridsync_core::index::local_offset;
use gridsync_core::{
    CaseSummary, Channel, Directory, Outcome, RegionCode, Severity, Status, SupervisionLevel,
};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::i18n::{Lang, Texts};
use super::{ActionKind, BoardQuery};
use crate::relay::store::NotificationRecord;
use crate::relay::ConsoleUser;

/// A time in ms since the epoch, as [`local`] shows it.
fn millis(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(local)
        .unwrap_or_default()
}

/// Times are shown in China Standard Time.
pub fn local(t: DateTime<Utc>) -> String {
    t.with_timezone(&local_offset())
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

const STYLE: &str = r#"
body{font-family:"PingFang SC","Noto Sans CJK SC","Microsoft YaHei","WenQuanYi Micro Hei",sans-serif;margin:0;background:#f4f6f9;color:#1f2933}
header{background:#0b4f8a;color:#fff;padding:.6em 1.2em;display:flex;gap:1em;align-items:center}
header h1{font-size:1.15em;margin:0;flex:1}header a,header button{color:#fff}
header form{margin:0}header button{background:none;border:1px solid #fff;border-radius:3px;cursor:pointer}
main{padding:1em 1.2em;max-width:1200px}
table{border-collapse:collapse;width:100%;background:#fff}th,td{padding:.4em .6em;border-bottom:1px solid #e4e7eb;text-align:left}
.counts{display:flex;gap:.6em;flex-wrap:wrap;margin-bottom:1em}.counts a{background:#fff;padding:.4em .8em;border-radius:4px;text-decoration:none;color:inherit;border:1px solid #d9e2ec}
.counts a.on{border-color:#0b4f8a;font-weight:bold}
.overdue td{background:#fde8e8}.tag-overdue{color:#c81e1e;font-weight:bold}
.filters{background:#fff;padding:.6em;margin-bottom:1em;display:flex;gap:.6em;flex-wrap:wrap;align-items:end}
.filters label{display:flex;flex-direction:column;font-size:.85em}
section{background:#fff;padding:.8em 1em;margin-bottom:1em;border-radius:4px}
.timeline li{margin-bottom:.5em}.conflict{color:#b45309}.refused{color:#c81e1e}.time-implausible{color:#b45309;font-weight:bold}
.photos img{max-height:120px;margin-right:.5em;border:1px solid #d9e2ec}
.flash{padding:.6em 1em;border-radius:4px;margin-bottom:1em}.ok{background:#e3f9e5}.err{background:#fde8e8}
.actions form{border-top:1px solid #e4e7eb;padding:.5em 0;display:flex;gap:.5em;flex-wrap:wrap;align-items:end}
.actions label{display:flex;flex-direction:column;font-size:.85em}
nav a{margin-right:.6em}.figures table{margin-bottom:.4em}.chart{max-width:100%;height:auto}
@media print{header,.filters,.noprint,.csv{display:none}body{background:#fff}section{break-inside:avoid}}
"#;

/// The frame of every page.
pub fn layout(lang: Lang, who: Option<&ConsoleUser>, back: &str, body: Markup) -> Markup {
    let t = lang.t();
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (t.title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { (t.title) }
                    @if who.is_some() {
                        nav {
                            a href="/console/cases" { (t.cases) } " "
                            a href="/console/supervision" { (t.supervision_title) } " "
                            a href="/console/map" { (super::map::title(lang)) } " "
                            a href="/console/stats" { (t.stats) } " "
                            a href="/console/report" { (t.monthly_report) } " "
                            @if who.is_some_and(|w| w.user.role != gridsync_core::Role::DepartmentHandler) {
                                a href="/console/registry" { (super::registry::words(lang).registry) } " "
                            }
                            @if who.is_some_and(|w| w.user.role.is_dispatcher()) {
                                a href="/console/hotline" { (super::hotline::title(lang)) } " "
                                a href="/console/devices" { (t.devices) } " "
                            }
                            @if who.is_some_and(super::enrollments::may_enroll) {
                                a href="/console/enrollments" { (super::enrollments::title(lang)) } " "
                            }
                            @if who.is_some_and(super::directory::may_edit) {
                                a href="/console/directory" { (super::directory::title(lang)) }
                            }
                        }
                    }
                    a id="lang" href=(lang_link(lang, back)) { (t.switch_lang) }
                    @if let Some(who) = who {
                        span id="me" { (who.user.name) " · " (role_name(lang, who.user.role)) }
                        form method="post" action="/console/sign-out" {
                            input type="hidden" name="csrf" value=(who.csrf);
                            button type="submit" { (t.sign_out) }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The link that switches language and comes back to `back`.
fn lang_link(lang: Lang, back: &str) -> String {
    let to = if lang == Lang::Zh { "en" } else { "zh" };
    let query = serde_urlencoded::to_string([("to", to), ("back", back)]).unwrap_or_default();
    format!("/console/lang?{query}")
}

/// A role as people call it.
pub fn role_name(lang: Lang, role: gridsync_core::Role) -> &'static str {
    match lang {
        Lang::Zh => role.label_zh(),
        Lang::En => role.as_str(),
    }
}

/// A department's name.
pub fn dept_name(dir: &Directory, id: &gridsync_core::DeptId) -> String {
    dir.department(id)
        .map(|d| d.name.clone())
        .unwrap_or_else(|| id.to_string())
}

/// The sign-in form, with an error when the last try failed.
pub fn sign_in(lang: Lang, error: Option<&str>) -> Markup {
    let t = lang.t();
    layout(
        lang,
        None,
        "/console/sign-in",
        html! {
            section {
                h2 { (t.sign_in) }
                @if let Some(e) = error { p.flash.err { (e) } }
                form method="post" action="/console/sign-in" {
                    p { label { (t.user_name) br; input name="user" autocomplete="username" required; } }
                    p { label { (t.password) br; input name="password" type="password" autocomplete="current-password" required; } }
                    button type="submit" { (t.sign_in) }
                }
            }
        },
    )
}

pub fn region_name(dir: &Directory, code: &RegionCode) -> String {
    dir.region(code)
        .map(|r| r.name.clone())
        .unwrap_or_else(|| code.to_string())
}

pub fn category_name(dir: &Directory, lang: Lang, code: &gridsync_core::CategoryCode) -> String {
    dir.category(code)
        .map(|c| lang.pick(&c.name, &c.name_en).to_owned())
        .unwrap_or_else(|| code.to_string())
}

/// What the board shows.
pub struct Board<'a> {
    pub query: &'a BoardQuery,
    pub counts: Vec<(Status, u64)>,
    pub rows: Vec<CaseSummary>,
    pub grids: Vec<(RegionCode, String)>,
    pub now: DateTime<Utc>,
    pub page_size: u32,
}

/// The filter fields the board and the map share (grid, category, severity,
/// channel, department, overdue, search), each showing what `q` asked.
pub fn case_filters(
    lang: Lang,
    dir: &Directory,
    q: &BoardQuery,
    grids: &[(RegionCode, String)],
) -> Markup {
    let t = lang.t();
    html! {
        label { (t.grid) select name="grid" {
            option value="" { (t.all) }
            @for (code, name) in grids {
                option value=(code.as_str()) selected[q.grid.as_deref() == Some(code.as_str())] { (name) }
            }
        } }
        label { (t.category) select name="category" {
            option value="" { (t.all) }
            @for c in dir.categories() {
                option value=(c.code.as_str()) selected[q.category.as_deref() == Some(c.code.as_str())] {
                    (lang.pick(&c.name, &c.name_en))
                }
            }
        } }
        label { (t.severity) select name="severity" {
            option value="" { (t.all) }
            @for s in [Severity::Low, Severity::Normal, Severity::High, Severity::Urgent] {
                option value=(s.as_str()) selected[q.severity.as_deref() == Some(s.as_str())] { (lang.severity(s)) }
            }
        } }
        label { (t.channel) select name="channel" {
            option value="" { (t.all) }
            @for c in Channel::KNOWN {
                option value=(c.as_str()) selected[q.channel.as_deref() == Some(c.as_str())] { (lang.channel(c)) }
            }
        } }
        label { (t.department) select name="dept" {
            option value="" { (t.all) }
            @for d in dir.departments() {
                option value=(d.id.as_str()) selected[q.dept.as_deref() == Some(d.id.as_str())] { (d.name) }
            }
        } }
        label { (t.overdue_only) input type="checkbox" name="overdue" value="1" checked[q.overdue.is_some()]; }
        label { (t.search) input type="search" name="q" value=(q.q.clone().unwrap_or_default()); }
    }
}

/// The case board: counts by status, filters, the list.
pub fn board(lang: Lang, who: &ConsoleUser, dir: &Directory, b: &Board<'_>) -> Markup {
    let t = lang.t();
    let q = b.query;
    let total: u64 = b.counts.iter().map(|(_, n)| n).sum();
    let with_status = |s: Option<Status>| {
        let mut next = q.clone();
        next.status = s.map(|s| s.as_str().to_owned());
        next.offset = None;
        format!("/console/cases?{}", next.to_query())
    };
    let page = |offset: u32| {
        let mut next = q.clone();
        next.offset = Some(offset);
        format!("/console/cases?{}", next.to_query())
    };
    let offset = q.offset.unwrap_or(0);
    let selected = q.status.as_deref();
    layout(
        lang,
        Some(who),
        &format!("/console/cases?{}", q.to_query()),
        html! {
            div.counts id="counts" {
                a class=(if selected.is_none() { "on" } else { "" }) href=(with_status(None)) { (t.all) " " strong { (total) } }
                @for (status, n) in &b.counts {
                    a class=(if selected == Some(status.as_str()) { "on" } else { "" })
                      href=(with_status(Some(*status))) data-status=(status.as_str()) {
                        (lang.status(*status)) " " strong { (n) }
                    }
                }
            }
            form.filters method="post" action="/console/cases" {
                @if let Some(s) = selected { input type="hidden" name="status" value=(s); }
                (case_filters(lang, dir, q, &b.grids))
                button type="submit" { (t.filter) }
            }
            @if b.rows.is_empty() {
                p id="empty" { (t.no_cases) }
            } @else {
                table id="cases" {
                    thead { tr {
                        th { (t.case_title) } th { (t.status) } th { (t.grid) } th { (t.category) }
                        th { (t.severity) } th { (t.department) } th { (t.deadline) } th { (t.reported_at) }
                    } }
                    tbody {
                        @for c in &b.rows {
                            @let overdue = c.status == Status::Dispatched && c.deadline.is_some_and(|d| d < b.now);
                            tr class=(if overdue { "overdue" } else { "" }) data-id=(c.id.as_str()) {
                                td { a href={ "/console/cases/" (c.id.as_str()) } { (c.title) } }
                                td.status { (lang.status(c.status)) }
                                td { (region_name(dir, &c.grid)) }
                                td { (category_name(dir, lang, &c.category)) }
                                td { (lang.severity(c.severity)) }
                                td { @if let Some(d) = &c.assigned_dept { (dept_name(dir, d)) } }
                                td {
                                    @if let Some(d) = c.deadline { (local(d)) }
                                    @if overdue { " " span.tag-overdue { (t.overdue) } }
                                    @if let Some(level) = SupervisionLevel::effective(c.status, c.deadline, c.supervision, b.now) {
                                        " " span.tag-overdue { (lang.supervision(level)) }
                                    }
                                }
                                td { (local(c.created)) }
                            }
                        }
                    }
                }
                p {
                    @if offset > 0 { a href=(page(offset.saturating_sub(b.page_size))) { (t.prev_page) } " " }
                    @if b.rows.len() as u32 == b.page_size { a href=(page(offset.saturating_add(b.page_size))) { (t.next_page) } }
                }
            }
        },
    )
}

/// What the detail page shows besides the case.
pub struct Detail<'a> {
    pub case: &'a gridsync_core::Case,
    pub actions: Vec<ActionKind>,
    pub uploaded: &'a dyn Fn(&gridsync_core::PhotoHash) -> bool,
    pub flash: Option<(bool, String)>,
    pub now: DateTime<Utc>,
    /// The messages sent or queued about the case (`notify`).
    pub notifications: &'a [NotificationRecord],
}

/// One case: fields, photos, timeline, notes and the actions this user may take.
pub fn detail(lang: Lang, who: &ConsoleUser, dir: &Directory, d: &Detail<'_>) -> Markup {
    let t = lang.t();
    let c = &d.case.doc;
    let state = &d.case.state;
    let name_of = |u: &gridsync_core::UserId| {
        dir.user(u)
            .map(|u| u.name.clone())
            .unwrap_or_else(|| u.to_string())
    };
    layout(
        lang,
        Some(who),
        &format!("/console/cases/{}", c.id.as_str()),
        html! {
            p { a href="/console/cases" { "← " (t.back_to_cases) } }
            @if let Some((ok, message)) = &d.flash {
                p id="flash" class={ "flash " (if *ok { "ok" } else { "err" }) } { (message) }
            }
            section id="case" {
                h2 { (c.title) }
                p { (t.status) "：" strong id="status" data-status=(state.status.as_str()) { (lang.status(state.status)) }
                    @if state.is_overdue(d.now) { " " span.tag-overdue { (t.overdue) } } }
                p { (t.grid) "：" (region_name(dir, &c.grid)) " · " (t.category) "："
                    (category_name(dir, lang, &c.category))
                    @if let Some(sub) = &c.subcategory { " / " (category_name_sub(dir, lang, sub)) }
                    " · " (t.severity) "：" (lang.severity(c.severity)) }
                p { (t.reporter) "：" (name_of(&c.reporter)) " · " (t.reported_at) "：" (local(c.created)) }
                @if let Some(dept) = &state.assigned_dept {
                    p { (t.department) "：" (dept_name(dir, dept))
                        @if let Some(deadline) = state.deadline { " · " (t.deadline) "：" (local(deadline)) } }
                }
                @let supervision = SupervisionLevel::effective(state.status, state.deadline, state.supervision, d.now);
                @if let Some(level) = supervision {
                    p id="supervision" data-level=(level.number()) { (t.supervision) "：" (lang.supervision(level)) }
                }
                @if !c.description.is_empty() { p { (t.description) "：" (c.description) } }
                @if let Some(loc) = &c.location {
                    p { (t.location) "：" (loc.address) " (" (format!("{:.5}, {:.5}", loc.lat, loc.lon)) ")" }
                }
                @if !c.people.is_empty() {
                    p { (t.people) "："
                        @for p in &c.people { (p.name) " (" (p.role) ") " (p.phone) "；" } }
                }
            }
            section.photos id="photos" {
                h3 { (t.photos) }
                @if c.photos.is_empty() { p { (t.no_photos) } }
                @for p in &c.photos {
                    @if (d.uploaded)(&p.hash) {
                        a href={ "/console/photos/" (p.hash.as_str()) } target="_blank" {
                            img src={ "/console/photos/" (p.thumb.as_ref().unwrap_or(&p.hash).as_str()) } alt=(t.photos) loading="lazy";
                        }
                    } @else { span { (t.photo_pending) } }
                }
            }
            section.timeline id="timeline" {
                h3 { (t.timeline) }
                ol {
                    @for (i, (entry, outcome)) in d.case.timeline().enumerate() {
                        li class=(match outcome { Outcome::Applied => "", Outcome::Conflict { .. } => "conflict", Outcome::Refused(_) => "refused" }) {
                            strong.label { (lang.action(&entry.action)) } " · " (name_of(&entry.actor))
                            " · " (local(entry.at))
                            @if let Some(judged) = state.judged_at.get(i).copied().flatten() {
                                " " span.time-implausible data-judged=(judged.timestamp_millis()) title=(t.time_implausible_why) {
                                    "⚠ " (t.time_implausible) " " (local(judged)) " " (t.time_implausible_end)
                                }
                            }
                            @if let Some(text) = entry_text(&entry.action) { @if !text.is_empty() { " — " (text) } }
                            @match outcome {
                                Outcome::Applied => {},
                                Outcome::Conflict { reason, .. } => { " [" (t.conflict) ": " (reason.to_string()) "]" },
                                Outcome::Refused(reason) => { " [" (t.refused) ": " (reason.to_string()) "]" },
                            }
                        }
                    }
                }
                @if !d.notifications.is_empty() {
                    h4 { (t.notifications) }
                    ul id="notifications" {
                        @for n in d.notifications {
                            li data-rule=(n.rule.as_str()) data-state=(n.state.as_str()) {
                                strong.label { (lang.notify_rule(n.rule)) } " → " (name_of(&n.recipient))
                                " · " (millis(n.done_ms.unwrap_or(n.created_ms)))
                                " · " (lang.notify_state(n.state))
                                " (" (t.attempts) " " (n.attempts)
                                @if let Some(detail) = &n.detail { ", " (detail) }
                                ")"
                            }
                        }
                    }
                }
            }
            @if !state.status.is_closed() {
                section id="add-photo" {
                    form method="post" enctype="multipart/form-data" action={ "/console/cases/" (c.id.as_str()) "/photo" } {
                        input type="hidden" name="csrf" value=(who.csrf);
                        label { (t.add_photo) " " input type="file" name="photo" accept="image/jpeg,image/png,image/webp" required; }
                        button type="submit" { (t.upload) }
                    }
                }
            }
            section id="notes" {
                h3 { (t.notes) }
                ul { @for n in &c.notes { li { (name_of(&n.by)) " · " (local(n.at)) " — " (n.text) } } }
                form method="post" action={ "/console/cases/" (c.id.as_str()) "/note" } {
                    input type="hidden" name="csrf" value=(who.csrf);
                    input name="text" maxlength="2000" required;
                    button type="submit" { (t.add_note) }
                }
            }
            section.actions id="actions" {
                h3 { (t.actions) }
                @if d.actions.is_empty() { p { (t.no_actions) } }
                @for kind in &d.actions {
                    (action_form(lang, who, dir, c, SupervisionLevel::effective(state.status, state.deadline, state.supervision, d.now), *kind))
                }
            }
        },
    )
}

fn category_name_sub(dir: &Directory, lang: Lang, sub: &gridsync_core::CategoryCode) -> String {
    dir.categories()
        .iter()
        .flat_map(|c| &c.subcategories)
        .find(|s| &s.code == sub)
        .map(|s| lang.pick(&s.name, &s.name_en).to_owned())
        .unwrap_or_else(|| sub.to_string())
}

fn entry_text(a: &gridsync_core::Action) -> Option<String> {
    use gridsync_core::Action as A;
    match a {
        A::Evaluate {
            satisfaction,
            comment,
        } => Some(format!("{satisfaction}/5 {comment}")),
        A::Dispatch { deadline, .. } => Some(local(*deadline)),
        other => other.text().map(str::to_owned),
    }
}

fn action_form(
    lang: Lang,
    who: &ConsoleUser,
    dir: &Directory,
    case: &gridsync_core::CaseDoc,
    supervision: Option<SupervisionLevel>,
    kind: ActionKind,
) -> Markup {
    let t: &Texts = lang.t();
    let next_level = supervision.map_or(1, |l| l.number() + 1).min(5);
    let text_field = |label: &str, required: bool| {
        html! { label { (label) input name="text" maxlength="2000" required[required]; } }
    };
    html! {
        form method="post" action={ "/console/cases/" (case.id.as_str()) "/act" } data-action=(kind.name()) {
            input type="hidden" name="csrf" value=(who.csrf);
            input type="hidden" name="action" value=(kind.name());
            @match kind {
                ActionKind::Dispatch => {
                    label { (t.department) select name="dept" required {
                        @for d in dir.departments() { option value=(d.id.as_str()) { (d.name) } }
                    } }
                    label { (t.deadline_hours) input name="hours" type="number" min="1" max="720" placeholder=(t.deadline_default); }
                },
                ActionKind::Feedback | ActionKind::SelfHandle => { (text_field(t.result, true)) },
                ActionKind::Return | ActionKind::Escalate | ActionKind::Invalidate => { (text_field(t.reason, true)) },
                ActionKind::Verify => {
                    label { (t.passed) select name="passed" { option value="1" { (t.passed) } option value="0" { (t.not_passed) } } }
                    (text_field(t.comment, false))
                },
                ActionKind::Evaluate => {
                    label { (t.satisfaction) input name="satisfaction" type="number" min="1" max="5" value="5" required; }
                    (text_field(t.comment, false))
                },
                ActionKind::Urge => {
                    label { (t.level) input name="level" type="number" min=(next_level) max="5" value=(next_level) required; }
                    (text_field(t.comment, false))
                },
                ActionKind::Accept | ActionKind::Archive => {},
            }
            button type="submit" { (kind.label(t)) }
        }
    }
}

/// An error page.
pub fn error(lang: Lang, who: Option<&ConsoleUser>, headline: &str, detail: &str) -> Markup {
    let t = lang.t();
    layout(
        lang,
        who,
        "/console/cases",
        html! {
            section {
                h2 id="error" { (headline) }
                @if !detail.is_empty() { p { (detail) } }
                p { a href="/console/cases" { (t.back_to_cases) } }
            }
        },
    )
}
