//! What leaders judge the work by: the supervision list, the statistics with charts
//! and CSV export, the printable monthly report, and the devices page.

use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use gridsync_core::access::check_points_adjuster;
use gridsync_core::doc::adjustment::{limits, Month, NewAdjustment};
use gridsync_core::index::{local_offset, MAX_PAGE};
use gridsync_core::points::WorkerPoints;
use gridsync_core::stats::{GroupBy, Summary};
use gridsync_core::{
    CaseFilter, CaseSummary, Channel, Directory, RegionCode, RegionLevel, Role, Status,
    SupervisionLevel, UserId,
};
use maud::{html, Markup};
use serde::{Deserialize, Serialize};

use super::error::PageError;
use super::i18n::{Lang, Texts};
use super::{blocking, charts, csrf_refusal, failure, given, html, lang, pages, scope, CsrfForm};
use crate::http::AppState;
use crate::relay::store::BACKLOG_CAP;
use crate::relay::{ConsoleUser, DeviceView, RelayError};

/// The longest period figures are asked for, in days.
const MAX_DAYS: i64 = 366;

fn local_date(t: chrono::DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&local_offset()).date_naive()
}

/// `YYYY-MM` of a day: a month as the forms and the figures name it.
fn month_key(day: NaiveDate) -> String {
    format!("{:04}-{:02}", day.year(), day.month())
}

fn start_of(day: NaiveDate) -> chrono::DateTime<Utc> {
    local_offset()
        .from_local_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default())
        .single()
        .map(|t| t.to_utc())
        .unwrap_or_default()
}

// ---- supervision ------------------------------------------------------------

pub(super) async fn supervision(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
) -> Response {
    let lang = lang(&headers);
    let who2 = who.clone();
    let result = blocking(&state, move |r| {
        let now = Utc::now();
        // Every open dispatch: supervision comes from running late or from a
        // dispatcher raising it by hand before the deadline.
        let filter = CaseFilter {
            statuses: vec![Status::Dispatched],
            limit: MAX_PAGE,
            ..scope(&who2)?
        };
        let rows = r
            .engine()
            .list_cases(&filter)
            .map_err(RelayError::internal)?;
        let dir = r.engine().directory().map_err(RelayError::internal)?;
        Ok::<_, PageError>((rows, dir, now))
    })
    .await;
    let (rows, dir, now) = match result {
        Ok(v) => v,
        Err(e) => return failure(lang, Some(&who), &e),
    };
    let t = lang.t();
    let truncated = rows.len() >= MAX_PAGE as usize;
    let mut levels: Vec<(SupervisionLevel, Vec<&CaseSummary>)> = (1..=5)
        .rev()
        .filter_map(SupervisionLevel::from_number)
        .map(|l| (l, Vec::new()))
        .collect();
    for c in &rows {
        let level = SupervisionLevel::effective(c.status, c.deadline, c.supervision, now);
        if let Some(slot) = levels.iter_mut().find(|(l, _)| Some(*l) == level) {
            slot.1.push(c);
        }
    }
    let body = html! {
        h2 { (t.supervision_title) }
        p { (t.supervision_auto) }
        @if levels.iter().all(|(_, cases)| cases.is_empty()) { p id="no-overdue" { (t.no_overdue) } }
        @if truncated { p.flash.err { (t.truncated) } }
        @for (level, cases) in &levels {
            section data-level=(level.number()) {
                h3 { (lang.supervision(*level)) " · " span.count { (cases.len()) } }
                @if !cases.is_empty() {
                    table { tbody {
                        @for c in cases {
                            tr data-id=(c.id.as_str()) {
                                td { a href={ "/console/cases/" (c.id.as_str()) } { (c.title) } }
                                td { (pages::region_name(&dir, &c.grid)) }
                                td { @if let Some(d) = &c.assigned_dept { (pages::dept_name(&dir, d)) } }
                                td { @if let Some(d) = c.deadline { (pages::local(d)) } }
                            }
                        }
                    } }
                }
            }
        }
    };
    html(
        StatusCode::OK,
        pages::layout(lang, Some(&who), "/console/supervision", body),
    )
}

// ---- statistics -------------------------------------------------------------

/// The period and region figures are asked for, as in the URL.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub(super) struct FiguresQuery {
    from: Option<String>,
    to: Option<String>,
    month: Option<String>,
    region: Option<String>,
    table: Option<String>,
}

struct Period {
    from: NaiveDate,
    /// Inclusive.
    to: NaiveDate,
}

impl FiguresQuery {
    fn period(&self) -> Result<Period, PageError> {
        let bad = || {
            PageError::form("bad period: dates are YYYY-MM-DD, months YYYY-MM, at most 366 days")
        };
        let today = local_date(Utc::now());
        let period = if let Some(m) = given(&self.month) {
            let from =
                NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d").map_err(|_| bad())?;
            let next = from
                .checked_add_months(chrono::Months::new(1))
                .ok_or_else(bad)?;
            Period {
                from,
                to: next.pred_opt().ok_or_else(bad)?,
            }
        } else {
            let date = |s: String| NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|_| bad());
            let from = given(&self.from)
                .map(date)
                .transpose()?
                .unwrap_or_else(|| today.with_day(1).unwrap_or(today));
            let to = given(&self.to).map(date).transpose()?.unwrap_or(today);
            Period { from, to }
        };
        if period.to < period.from || (period.to - period.from).num_days() >= MAX_DAYS {
            return Err(bad());
        }
        Ok(period)
    }

    fn filter(&self, who: &ConsoleUser, period: &Period) -> Result<CaseFilter, PageError> {
        let mut filter = scope(who)?;
        if let Some(r) = self.region.as_deref().filter(|s| !s.is_empty()) {
            let region: RegionCode = r.parse().map_err(|_| PageError::form("unknown region"))?;
            if !gridsync_core::access::scope_of(&who.user).covers(&region) {
                return Err(PageError::form("unknown region"));
            }
            filter.region = Some(region);
        }
        filter.reported_from = Some(start_of(period.from));
        filter.reported_before = period.to.succ_opt().map(start_of);
        Ok(filter)
    }
}

/// One grid worker's row.
struct WorkerRow {
    name: String,
    summary: Summary,
    compliant_days: u32,
    days: u32,
}

/// Everything the statistics page and the monthly report show.
struct Figures {
    period: Period,
    region: Option<RegionCode>,
    summary: Summary,
    by_category: Vec<(String, Summary)>,
    by_channel: Vec<(String, Summary)>,
    by_month: Vec<(String, Summary)>,
    by_category_month: Vec<(String, Vec<u64>)>,
    by_grid: Vec<(String, Summary)>,
    workers: Vec<WorkerRow>,
    /// The month the points are of (the period's first), and each worker's.
    points_month: String,
    points: Vec<(String, WorkerPoints)>,
    /// The leaders' adjustments behind them, in the order made.
    adjustments: Vec<AdjustmentRow>,
    /// The grid workers whose points this user may adjust (id, name).
    adjustable: Vec<(UserId, String)>,
}

/// One adjustment as the ledger shows it: names, not ids.
struct AdjustmentRow {
    worker: String,
    points: i32,
    reason: String,
    by: String,
    at: String,
}

fn figures(
    r: &crate::relay::Relay,
    who: &ConsoleUser,
    q: &FiguresQuery,
    lang: Lang,
) -> Result<(Figures, std::sync::Arc<Directory>), PageError> {
    let period = q.period()?;
    let filter = q.filter(who, &period)?;
    let engine = r.engine();
    let dir = engine.directory().map_err(RelayError::internal)?;
    let by = |g| {
        engine
            .statistics_by(&filter, g)
            .map_err(RelayError::internal)
    };
    let summary = engine.statistics(&filter).map_err(RelayError::internal)?;
    let categories = by(GroupBy::Category)?;
    let months = by(GroupBy::Month)?;
    let mut by_category_month = Vec::new();
    for g in &categories {
        let per_month = engine
            .statistics_by(
                &CaseFilter {
                    category: g.key.parse().ok(),
                    ..filter.clone()
                },
                GroupBy::Month,
            )
            .map_err(RelayError::internal)?;
        let row = months
            .iter()
            .map(|m| {
                per_month
                    .iter()
                    .find(|p| p.key == m.key)
                    .map_or(0, |p| p.summary.reported)
            })
            .collect();
        by_category_month.push((category_label(&dir, lang, &g.key), row));
    }
    let by_category: Vec<_> = categories
        .into_iter()
        .map(|g| (category_label(&dir, lang, &g.key), g.summary))
        .collect();
    let by_channel = by(GroupBy::Channel)?
        .into_iter()
        .map(|g| (lang.channel(Channel::parse(&g.key)).to_owned(), g.summary))
        .collect();
    let by_grid = by(GroupBy::Grid)?
        .into_iter()
        .map(|g| {
            (
                g.key
                    .parse()
                    .map(|c| pages::region_name(&dir, &c))
                    .unwrap_or(g.key),
                g.summary,
            )
        })
        .collect();
    let reported: std::collections::HashMap<String, Summary> = by(GroupBy::Reporter)?
        .into_iter()
        .map(|g| (g.key, g.summary))
        .collect();
    let workers: Vec<_> = dir
        .users()
        .iter()
        .filter(|u| u.role == Role::GridWorker)
        .filter(|u| {
            filter
                .region
                .as_ref()
                .is_some_and(|r| r.contains(&u.region))
        })
        .collect();
    let ids: Vec<_> = workers.iter().map(|u| u.id.clone()).collect();
    let compliance = engine
        .patrol_compliance(&ids, period.from, period.to)
        .map_err(RelayError::internal)?;
    // (days, compliant days) per worker, in one pass.
    let mut days: std::collections::HashMap<&str, (u32, u32)> = std::collections::HashMap::new();
    for d in &compliance {
        let entry = days.entry(d.worker.as_str()).or_default();
        entry.0 += 1;
        entry.1 += u32::from(d.compliant);
    }
    let workers = workers
        .iter()
        .map(|u| {
            let (days, compliant_days) = days.get(u.id.as_str()).copied().unwrap_or_default();
            WorkerRow {
                name: u.name.clone(),
                summary: reported.get(u.id.as_str()).cloned().unwrap_or_default(),
                compliant_days,
                days,
            }
        })
        .collect();
    // Points are monthly: those of the month the period starts in.
    let points_month = month_key(period.from);
    let name_of = |id: &str| {
        id.parse()
            .ok()
            .and_then(|id| dir.user(&id))
            .map_or_else(|| id.to_owned(), |u| u.name.clone())
    };
    let (year, month) = (period.from.year(), period.from.month());
    let points = engine
        .points_as(&who.user, filter.region.as_ref(), year, month)
        .map_err(RelayError::internal)?
        .into_iter()
        .map(|p| (name_of(&p.worker), p))
        .collect();
    let adjustments = engine
        .points_adjustments_as(&who.user, filter.region.as_ref(), year, month)
        .map_err(RelayError::internal)?
        .into_iter()
        .map(|a| AdjustmentRow {
            worker: name_of(a.worker.as_str()),
            points: a.points,
            reason: a.reason,
            by: name_of(a.by.as_str()),
            at: pages::local(a.at),
        })
        .collect();
    let adjustable = dir
        .users()
        .iter()
        .filter(|u| u.role == Role::GridWorker)
        .filter(|u| check_points_adjuster(&who.user, &u.region).is_ok())
        .map(|u| (u.id.clone(), u.name.clone()))
        .collect();
    let figures = Figures {
        points_month,
        points,
        adjustments,
        adjustable,
        region: filter.region.clone(),
        summary,
        by_category,
        by_channel,
        by_month: months.into_iter().map(|g| (g.key, g.summary)).collect(),
        by_category_month,
        by_grid,
        workers,
        period,
    };
    Ok((figures, dir))
}

fn category_label(dir: &Directory, lang: Lang, code: &str) -> String {
    code.parse()
        .map(|c| pages::category_name(dir, lang, &c))
        .unwrap_or_else(|_| code.to_owned())
}

fn percent(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_owned(), |v| format!("{:.1}%", v * 100.0))
}

/// The headline figures as (label, value) rows: the page, the report and the CSV.
fn summary_rows(t: &Texts, s: &Summary) -> Vec<(&'static str, String)> {
    vec![
        (t.reported, s.reported.to_string()),
        (t.valid, s.valid().to_string()),
        (t.acceptance_rate, percent(s.acceptance_rate())),
        (t.closure_rate, percent(s.closure_rate())),
        (t.on_time_rate, percent(s.on_time_rate())),
        (t.self_handled_share, percent(s.self_handled_share())),
        (t.satisfaction_rate, percent(s.satisfaction_rate())),
        (
            t.mean_satisfaction,
            s.mean_satisfaction()
                .map_or_else(|| "—".into(), |v| format!("{v:.2}")),
        ),
        (t.closed_at_grid, s.closed_at[0].to_string()),
        (t.closed_at_community, s.closed_at[1].to_string()),
        (t.closed_at_town, s.closed_at[2].to_string()),
        (t.closed_at_district, s.closed_at[3].to_string()),
        (t.closed_at_city, s.closed_at[4].to_string()),
        (
            t.closed_locally_share,
            percent(s.closed_at_or_below(RegionLevel::Town)),
        ),
        (t.escalated, s.escalated.to_string()),
        (t.escalation_rate, percent(s.escalation_rate())),
    ]
}

/// A table as CSV-ready rows: a header and the data.
struct Table {
    name: &'static str,
    title: &'static str,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

fn tables(t: &Texts, f: &Figures) -> Vec<Table> {
    let group = |name, title, first: &str, rows: &[(String, Summary)]| Table {
        name,
        title,
        header: vec![
            first.to_owned(),
            t.reported.into(),
            t.closed.into(),
            t.closure_rate.into(),
            t.on_time_rate.into(),
        ],
        rows: rows
            .iter()
            .map(|(k, s)| {
                vec![
                    k.clone(),
                    s.reported.to_string(),
                    s.closed.to_string(),
                    percent(s.closure_rate()),
                    percent(s.on_time_rate()),
                ]
            })
            .collect(),
    };
    let mut month_header = vec![t.category.to_owned()];
    month_header.extend(f.by_month.iter().map(|(m, _)| m.clone()));
    vec![
        Table {
            name: "summary",
            title: t.stats,
            header: vec![t.figure.into(), t.value.into()],
            rows: summary_rows(t, &f.summary)
                .into_iter()
                .map(|(k, v)| vec![k.to_owned(), v])
                .collect(),
        },
        group("category", t.per_category, t.category, &f.by_category),
        group("channel", t.per_channel, t.channel, &f.by_channel),
        group("month", t.per_month, t.month, &f.by_month),
        Table {
            name: "category_month",
            title: t.per_category_month,
            header: month_header,
            rows: f
                .by_category_month
                .iter()
                .map(|(c, ns)| {
                    std::iter::once(c.clone())
                        .chain(ns.iter().map(u64::to_string))
                        .collect()
                })
                .collect(),
        },
        Table {
            name: "level",
            title: t.per_level,
            header: vec![
                t.month.into(),
                t.closed.into(),
                t.closed_at_grid.into(),
                t.closed_at_community.into(),
                t.closed_at_town.into(),
                t.closed_at_district.into(),
                t.closed_at_city.into(),
                t.escalated.into(),
            ],
            rows: f
                .by_month
                .iter()
                .map(|(m, s)| {
                    std::iter::once(m.clone())
                        .chain(std::iter::once(s.closed.to_string()))
                        .chain(s.closed_at.iter().map(u64::to_string))
                        .chain(std::iter::once(s.escalated.to_string()))
                        .collect()
                })
                .collect(),
        },
        group("grid", t.per_grid, t.grid, &f.by_grid),
        Table {
            name: "worker",
            title: t.per_worker,
            header: vec![
                t.worker.into(),
                t.reported.into(),
                t.closed.into(),
                t.compliant_days.into(),
                t.days.into(),
            ],
            rows: f
                .workers
                .iter()
                .map(|w| {
                    vec![
                        w.name.clone(),
                        w.summary.reported.to_string(),
                        w.summary.closed.to_string(),
                        w.compliant_days.to_string(),
                        w.days.to_string(),
                    ]
                })
                .collect(),
        },
        Table {
            name: "points",
            title: t.points_title,
            header: vec![
                t.month.into(),
                t.worker.into(),
                t.valid_reports.into(),
                t.handled_on_spot.into(),
                t.major_cases.into(),
                t.invalid_reports.into(),
                t.visits_made.into(),
                t.inspections_made.into(),
                t.points_computed.into(),
                t.points_adjusted.into(),
                t.points.into(),
            ],
            rows: f
                .points
                .iter()
                .map(|(name, p)| {
                    vec![
                        f.points_month.clone(),
                        name.clone(),
                        p.valid_reports.to_string(),
                        p.handled_on_the_spot.to_string(),
                        p.major_cases.to_string(),
                        p.invalid_reports.to_string(),
                        p.visits.to_string(),
                        p.inspections.to_string(),
                        p.computed.to_string(),
                        p.adjusted.to_string(),
                        p.points.to_string(),
                    ]
                })
                .collect(),
        },
        Table {
            name: "adjustments",
            title: t.adjustments_title,
            header: vec![
                t.month.into(),
                t.worker.into(),
                t.points.into(),
                t.reason.into(),
                t.adjusted_by.into(),
                t.adjusted_at.into(),
            ],
            rows: f
                .adjustments
                .iter()
                .map(|a| {
                    vec![
                        f.points_month.clone(),
                        a.worker.clone(),
                        format!("{:+}", a.points),
                        a.reason.clone(),
                        a.by.clone(),
                        a.at.clone(),
                    ]
                })
                .collect(),
        },
    ]
}

/// The form a leader records a points adjustment with, for the workers she
/// leads; nothing for anyone else.
fn adjust_form(t: &Texts, who: &ConsoleUser, f: &Figures) -> Markup {
    html! {
        @if !f.adjustable.is_empty() {
            section.figures id="adjust-points" {
                h3 { (t.adjust_title) }
                p { (t.adjust_rule) }
                form method="post" action="/console/points/adjust" {
                    input type="hidden" name="csrf" value=(who.csrf);
                    label { (t.worker)
                        select name="worker" required {
                            @for (id, name) in &f.adjustable { option value=(id.as_str()) { (name) } }
                        }
                    }
                    label { (t.month) input type="month" name="month" required value=(f.points_month); }
                    label { (t.adjust_value)
                        input type="number" name="points" required step="1"
                            min=(-limits::POINTS) max=(limits::POINTS);
                    }
                    label { (t.reason)
                        input name="reason" required maxlength=(limits::REASON);
                    }
                    button type="submit" { (t.adjust_submit) }
                }
            }
        }
    }
}

/// A points adjustment as the form sends it.
#[derive(Deserialize)]
pub(super) struct AdjustForm {
    csrf: String,
    worker: String,
    month: String,
    points: String,
    reason: String,
}

pub(super) async fn adjust_points(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Form(f): Form<AdjustForm>,
) -> Response {
    let lang = lang(&headers);
    if let Some(page) = csrf_refusal(lang, &who, &f.csrf) {
        return page;
    }
    let input = (|| {
        Ok::<_, PageError>(NewAdjustment {
            worker: f
                .worker
                .parse()
                .map_err(|_| PageError::form("请选择网格员"))?,
            month: f
                .month
                .parse::<Month>()
                .map_err(|_| PageError::form("月份格式为 YYYY-MM"))?,
            points: f
                .points
                .trim()
                .parse()
                .map_err(|_| PageError::form("分值须为整数"))?,
            reason: f.reason.trim().to_owned(),
        })
    })();
    let input = match input {
        Ok(input) => input,
        Err(e) => return failure(lang, Some(&who), &e),
    };
    let month = input.month;
    let who2 = who.clone();
    match blocking(&state, move |r| r.console_adjust_points(&who2, input)).await {
        Ok(_) => {
            Redirect::to(&format!("/console/stats?month={month}#table-adjustments")).into_response()
        }
        Err(e) => failure(lang, Some(&who), &e),
    }
}

fn table_markup(table: &Table, csv: Option<&str>, t: &Texts) -> Markup {
    html! {
        section.figures id={ "table-" (table.name) } {
            h3 { (table.title)
                @if let Some(link) = csv { " " a.csv href=(link) { (t.export_csv) } } }
            table {
                thead { tr { @for h in &table.header { th { (h) } } } }
                tbody { @for row in &table.rows { tr { @for cell in row { td { (cell) } } } } }
            }
        }
    }
}

fn charts_markup(t: &Texts, f: &Figures) -> Markup {
    let counts = |rows: &[(String, Summary)], n: usize| -> Vec<(String, u64)> {
        rows.iter()
            .take(n)
            .map(|(k, s)| (k.clone(), s.reported))
            .collect()
    };
    html! {
        section.charts {
            h3 { (t.per_category) } (charts::bars(t.per_category, &counts(&f.by_category, 20)))
            h3 { (t.per_month) } (charts::bars(t.per_month, &counts(&f.by_month, 24)))
            h3 { (t.per_grid) } (charts::bars(t.per_grid, &counts(&f.by_grid, 15)))
        }
    }
}

fn period_form(t: &Texts, action: &str, q: &FiguresQuery, monthly: bool, f: &Figures) -> Markup {
    html! {
        form.filters method="get" action=(action) {
            @if monthly {
                label { (t.month) input type="month" name="month" value=(month_key(f.period.from)); }
            } @else {
                label { (t.period_from) input type="date" name="from" value=(f.period.from.to_string()); }
                label { (t.period_to) input type="date" name="to" value=(f.period.to.to_string()); }
            }
            label { (t.region) input name="region" value=(q.region.clone().unwrap_or_default()) placeholder=(f.region.as_ref().map(|r| r.as_str()).unwrap_or_default()); }
            button type="submit" { (t.show) }
        }
    }
}

async fn load(
    state: &AppState,
    headers: &HeaderMap,
    who: &ConsoleUser,
    q: FiguresQuery,
) -> Result<(Figures, std::sync::Arc<Directory>), Response> {
    let lang = lang(headers);
    let who2 = who.clone();
    blocking(state, move |r| figures(r, &who2, &q, lang))
        .await
        .map_err(|e| failure(lang, Some(who), &e))
}

pub(super) async fn stats(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Query(q): Query<FiguresQuery>,
) -> Response {
    let lang = lang(&headers);
    let t = lang.t();
    let (f, _) = match load(&state, &headers, &who, q.clone()).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let csv = |name: &str| {
        let mut next = q.clone();
        next.from = Some(f.period.from.to_string());
        next.to = Some(f.period.to.to_string());
        next.month = None;
        next.table = Some(name.to_owned());
        format!(
            "/console/stats.csv?{}",
            serde_urlencoded::to_string(&next).unwrap_or_default()
        )
    };
    let body = html! {
        h2 { (t.stats) " · " (f.period.from) " — " (f.period.to) }
        (period_form(t, "/console/stats", &q, false, &f))
        p { a href={ "/console/report?month=" (month_key(f.period.from)) } { (t.monthly_report) } }
        (charts_markup(t, &f))
        @for table in tables(t, &f) { (table_markup(&table, Some(&csv(table.name)), t)) }
        (adjust_form(t, &who, &f))
        p { (t.patrol_rule) }
    };
    html(
        StatusCode::OK,
        pages::layout(lang, Some(&who), "/console/stats", body),
    )
}

pub(super) async fn stats_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Query(q): Query<FiguresQuery>,
) -> Response {
    let lang = lang(&headers);
    let name = q.table.clone().unwrap_or_else(|| "summary".into());
    let (f, _) = match load(&state, &headers, &who, q).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let Some(table) = tables(lang.t(), &f).into_iter().find(|t| t.name == name) else {
        return failure(lang, Some(&who), &PageError::form("unknown table"));
    };
    // A byte-order mark so spreadsheet programs read the Chinese as UTF-8.
    let mut out = String::from("\u{feff}");
    for row in std::iter::once(&table.header).chain(&table.rows) {
        let cells: Vec<String> = row.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"gridsync-{name}-{}-{}.csv\"",
                    f.period.from, f.period.to
                ),
            ),
        ],
        out,
    )
        .into_response()
}

/// One CSV cell, quoted when needed; a leading formula character is neutralised.
fn csv_cell(c: &str) -> String {
    let c = if c.starts_with(['=', '+', '-', '@']) && c.parse::<f64>().is_err() {
        format!("'{c}")
    } else {
        c.to_owned()
    };
    if c.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", c.replace('"', "\"\""))
    } else {
        c
    }
}

pub(super) async fn report(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Query(mut q): Query<FiguresQuery>,
) -> Response {
    let lang = lang(&headers);
    let t = lang.t();
    if q.month.as_deref().unwrap_or_default().is_empty() {
        let today = local_date(Utc::now());
        q.month = Some(month_key(today));
    }
    let (f, dir) = match load(&state, &headers, &who, q.clone()).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let region = f
        .region
        .as_ref()
        .map(|r| pages::region_name(&dir, r))
        .unwrap_or_default();
    let body = html! {
        (period_form(t, "/console/report", &q, true, &f))
        article.report id="report" {
            h2 { (region) " · " (t.monthly_report) " · " (month_key(f.period.from)) }
            p.noprint { button type="button" onclick="window.print()" { (t.print) } }
            @let all = tables(t, &f);
            @if let Some(summary) = all.first() { (table_markup(summary, None, t)) }
            section id="top-categories" {
                h3 { (t.top_categories) }
                ol { @for (name, s) in f.by_category.iter().take(5) { li { (name) " — " (s.reported) } } }
            }
            section id="hot-spots" {
                h3 { (t.hot_spots) }
                ol { @for (name, s) in f.by_grid.iter().take(5) { li { (name) " — " (s.reported) } } }
            }
            (charts_markup(t, &f))
            @for table in all.iter().skip(1) { (table_markup(table, None, t)) }
            p { (t.patrol_rule) }
        }
    };
    html(
        StatusCode::OK,
        pages::layout(lang, Some(&who), "/console/report", body),
    )
}

// ---- devices ----------------------------------------------------------------

/// Devices per page.
const DEVICES_PAGE: usize = 50;

#[derive(Deserialize)]
pub(super) struct DevicesQuery {
    offset: Option<usize>,
}

pub(super) async fn devices(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Query(q): Query<DevicesQuery>,
) -> Response {
    let lang = lang(&headers);
    let t = lang.t();
    let who2 = who.clone();
    let offset = q.offset.unwrap_or(0);
    let listed = blocking(&state, move |r| {
        let devices = r.console_devices(&who2, offset, DEVICES_PAGE)?;
        let refused = r.console_upstream_refusals(&who2, super::upstream::ROWS)?;
        Ok::<_, RelayError>((devices, refused))
    })
    .await;
    let ((list, total), refused): ((Vec<DeviceView>, usize), _) = match listed {
        Ok(l) => l,
        Err(e) => return failure(lang, Some(&who), &e),
    };
    let body = html! {
        h2 { (t.devices) }
        table id="devices" {
            thead { tr { th { (t.user_name) } th { (t.device) } th { (t.app_version) } th { (t.last_sync) } th { (t.backlog) } th { (t.status) } th {} } }
            tbody {
                @for d in &list {
                    tr data-device=(d.record.device.to_string()) {
                        td { (d.user.name) " (" (pages::role_name(lang, d.user.role)) ")" }
                        td { code { (d.record.device.to_string().get(..8).unwrap_or_default()) } }
                        td { (d.record.app_version) }
                        td { (d.record.last_seen_ms.and_then(chrono::DateTime::from_timestamp_millis).map(pages::local).unwrap_or_else(|| t.never.to_owned())) }
                        td.backlog { (d.backlog) @if d.backlog >= BACKLOG_CAP { "+" } }
                        td.state { (if d.record.revoked { t.revoked } else { t.active }) }
                        td { @if !d.record.revoked {
                            form method="post" action={ "/console/devices/" (d.record.device.to_string()) "/revoke" } {
                                input type="hidden" name="csrf" value=(who.csrf);
                                button type="submit" { (t.revoke) }
                            }
                        } }
                    }
                }
            }
        }
        p {
            @if offset > 0 { a href={ "/console/devices?offset=" (offset.saturating_sub(DEVICES_PAGE)) } { (t.prev_page) } " " }
            @if offset.saturating_add(DEVICES_PAGE) < total { a href={ "/console/devices?offset=" (offset + DEVICES_PAGE) } { (t.next_page) } }
        }
        @if let Some((refusals, all)) = &refused {
            (super::upstream::section(lang, refusals, *all))
        }
    };
    html(
        StatusCode::OK,
        pages::layout(lang, Some(&who), "/console/devices", body),
    )
}

pub(super) async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Path(device): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some(page) = csrf_refusal(lang(&headers), &who, &f.csrf) {
        return page;
    }
    let who2 = who.clone();
    match blocking(&state, move |r| r.console_revoke(&who2, &device)).await {
        Ok(()) => Redirect::to("/console/devices").into_response(),
        Err(e) => failure(lang(&headers), Some(&who), &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_formulas_neutralised() {
        assert_eq!(csv_cell("望湖社区"), "望湖社区");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=cmd()"), "'=cmd()");
        assert_eq!(csv_cell("-12"), "-12");
    }

    #[test]
    fn periods_are_months_or_bounded_date_ranges() {
        let q = |from: &str, to: &str, month: &str| FiguresQuery {
            from: Some(from.into()),
            to: Some(to.into()),
            month: Some(month.into()),
            ..Default::default()
        };
        let p = q("", "", "2026-02").period().unwrap();
        assert_eq!(
            (p.from.to_string(), p.to.to_string()),
            ("2026-02-01".into(), "2026-02-28".into())
        );
        let p = q("2026-01-01", "2026-03-31", "").period().unwrap();
        assert_eq!(p.to.to_string(), "2026-03-31");
        assert!(q("2026-03-01", "2026-01-01", "").period().is_err());
        assert!(q("2025-01-01", "2026-03-01", "").period().is_err());
        assert!(q("", "", "2026-13").period().is_err());
        assert!(q("yesterday", "", "").period().is_err());
    }
}
