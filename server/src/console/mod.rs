//! The web console of the command centre, served by `gridsync serve` under
//! `/console`: sign-in with password accounts (`gridsync admin password`), a case
//! board, case detail with the actions this user may take. Pages are rendered on
//! the server; the relay (`relay::console`) does the work, with the same scope
//! rules as for devices.
//!
//! Sessions are an HttpOnly, SameSite=Strict cookie; every form carries the
//! session's CSRF token, checked before anything is changed.

mod charts;
mod directory;
mod enrollments;
mod error;
mod figures;
mod hotline;
mod i18n;
pub(crate) mod map;
mod pages;
mod registry;
mod upstream;

use std::net::SocketAddr;

use axum::extract::{
    ConnectInfo, DefaultBodyLimit, Form, FromRequestParts, Multipart, Path, Query, State,
};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use chrono::Utc;
use gridsync_core::{
    access, Action, CaseFilter, Channel, DeptId, RegionCode, RegionLevel, Severity, Status,
    SupervisionLevel,
};
use serde::{Deserialize, Serialize};

use crate::http::AppState;
use crate::relay::{ConsoleUser, Relay, RelayError, SESSION_HOURS};
use error::PageError;
use i18n::{Lang, Texts};

const SESSION_COOKIE: &str = "gs_session";
const LANG_COOKIE: &str = "gs_lang";
/// Cases per board page.
const PAGE_SIZE: u32 = 50;
/// Longest accepted search text, in characters.
const MAX_QUERY_CHARS: usize = 100;
/// Most bytes of a sign-in form (a user id and a password, URL-encoded). The one
/// console form a stranger can send: every other handler checks the session
/// before it reads a body, and the bodies it reads count against the budget
/// phones share (`http::body`).
const SIGN_IN_BODY_BYTES: usize = 4 * 1024;

/// The console's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/cases") }))
        .route(
            "/console/sign-in",
            get(sign_in_page)
                .post(sign_in)
                .layer(DefaultBodyLimit::max(SIGN_IN_BODY_BYTES)),
        )
        .route("/console/sign-out", post(sign_out))
        .route("/console/lang", get(switch_lang))
        .route("/console/cases", get(board).post(search_board))
        .route("/console/cases/{id}", get(detail))
        .route("/console/cases/{id}/act", post(act))
        .route("/console/cases/{id}/note", post(note))
        .route("/console/cases/{id}/photo", post(attach_photo))
        .route("/console/photos/{hash}", get(photo))
        .route("/console/supervision", get(figures::supervision))
        .route("/console/stats", get(figures::stats))
        .route("/console/stats.csv", get(figures::stats_csv))
        .route("/console/report", get(figures::report))
        .route("/console/points/adjust", post(figures::adjust_points))
        .route("/console/devices", get(figures::devices))
        .route("/console/devices/{id}/revoke", post(figures::revoke))
        .route("/console/map", get(map::map).post(map::search))
        .merge(registry::routes())
        .merge(enrollments::routes())
        .merge(directory::routes())
        .merge(hotline::routes())
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn lang(headers: &HeaderMap) -> Lang {
    Lang::from_cookie(cookie(headers, LANG_COOKIE))
}

/// A page: never cached (command-centre PCs are shared), never framed.
fn html(status: StatusCode, page: maud::Markup) -> Response {
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "same-origin"),
        ],
        page,
    )
        .into_response()
}

/// Run relay work on a blocking thread (SQLite and Automerge are synchronous),
/// on a replica that has caught up with what other nodes stored.
async fn blocking<T: Send + 'static, E: Into<PageError>>(
    state: &AppState,
    f: impl FnOnce(&Relay) -> Result<T, E> + Send + 'static,
) -> Result<T, PageError> {
    let relay = state.relay.clone();
    tokio::task::spawn_blocking(move || {
        relay.catch_up()?;
        f(&relay).map_err(Into::into)
    })
    .await
    .unwrap_or_else(|e| Err(RelayError::internal(e).into()))
}

/// The page for a failed request, in the user's language.
fn failure(lang: Lang, who: Option<&ConsoleUser>, e: &PageError) -> Response {
    let t = lang.t();
    let status = e.status();
    if status == StatusCode::UNAUTHORIZED {
        return Redirect::to("/console/sign-in").into_response();
    }
    let message = e.to_string();
    let (headline, detail) = match status {
        StatusCode::NOT_FOUND => (t.not_found, ""),
        StatusCode::FORBIDDEN => (t.not_allowed, message.as_str()),
        StatusCode::BAD_REQUEST => (t.bad_input, message.as_str()),
        _ => (t.server_error, ""),
    };
    html(status, pages::error(lang, who, headline, detail))
}

/// The signed-in user, or the answer that sends them to sign in.
async fn session(state: &AppState, headers: &HeaderMap) -> Result<ConsoleUser, Response> {
    let Some(token) = cookie(headers, SESSION_COOKIE).map(str::to_owned) else {
        return Err(Redirect::to("/console/sign-in").into_response());
    };
    blocking(state, move |r| r.console_session(&token))
        .await
        .map_err(|e| failure(lang(headers), None, &e))
}

/// The signed-in user of a request; without a live session, the answer that sends
/// them to sign in.
impl FromRequestParts<AppState> for ConsoleUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        session(state, &parts.headers).await
    }
}

/// The refusal of a form that does not carry the session's CSRF token.
fn csrf_refusal(lang: Lang, who: &ConsoleUser, csrf: &str) -> Option<Response> {
    (!constant_time_eq(who.csrf.as_bytes(), csrf.as_bytes())).then(|| {
        html(
            StatusCode::FORBIDDEN,
            pages::error(lang, Some(who), lang.t().not_allowed, "CSRF"),
        )
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn sign_in_page(headers: HeaderMap) -> Response {
    html(StatusCode::OK, pages::sign_in(lang(&headers), None))
}

#[derive(Deserialize)]
struct SignInForm {
    user: String,
    password: String,
}

async fn sign_in(
    State(state): State<AppState>,
    info: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(f): Form<SignInForm>,
) -> Response {
    let lang = lang(&headers);
    let client = crate::resident::client(&state, info, &headers);
    match blocking(&state, move |r| r.sign_in(&f.user, &f.password, client)).await {
        Ok(token) => (
            [(
                header::SET_COOKIE,
                format!(
                    "{SESSION_COOKIE}={token}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}",
                    SESSION_HOURS * 3600
                ),
            )],
            Redirect::to("/console/cases"),
        )
            .into_response(),
        Err(PageError::Relay(RelayError::SignIn)) => html(
            StatusCode::UNAUTHORIZED,
            pages::sign_in(lang, Some(lang.t().wrong_password)),
        ),
        Err(PageError::Relay(RelayError::SignInLimited)) => html(
            StatusCode::TOO_MANY_REQUESTS,
            pages::sign_in(lang, Some(lang.t().too_many_guesses)),
        ),
        Err(e) => failure(lang, None, &e),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some(page) = csrf_refusal(lang(&headers), &who, &f.csrf) {
        return page;
    }
    if let Some(token) = cookie(&headers, SESSION_COOKIE).map(str::to_owned) {
        if let Err(e) = blocking(&state, move |r| r.sign_out(&token)).await {
            return failure(lang(&headers), None, &e);
        }
    }
    (
        [(
            header::SET_COOKIE,
            format!("{SESSION_COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0"),
        )],
        Redirect::to("/console/sign-in"),
    )
        .into_response()
}

#[derive(Deserialize)]
struct LangQuery {
    to: String,
    back: Option<String>,
}

async fn switch_lang(Query(q): Query<LangQuery>) -> Response {
    let value = if q.to == "en" { "en" } else { "zh" };
    // Only back into the console: never an open redirect.
    let back = q
        .back
        .filter(|b| {
            b.starts_with("/console")
                && !b.contains("//")
                && b.bytes().all(|c| c.is_ascii_graphic() && c != b'\\')
        })
        .unwrap_or_else(|| "/console/cases".into());
    (
        [(
            header::SET_COOKIE,
            format!("{LANG_COOKIE}={value}; Path=/console; SameSite=Lax; Max-Age=31536000"),
        )],
        Redirect::to(&back),
    )
        .into_response()
}

/// The board's filters, as in its URL.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct BoardQuery {
    status: Option<String>,
    grid: Option<String>,
    category: Option<String>,
    severity: Option<String>,
    channel: Option<String>,
    dept: Option<String>,
    overdue: Option<String>,
    /// The search text: from the filter form (posted), never written into a
    /// URL — it can be a resident's name or phone number. Links carry it
    /// sealed, in `qt`.
    #[serde(skip_serializing)]
    q: Option<String>,
    /// The search text sealed ([`Relay::seal_search`]).
    qt: Option<String>,
    offset: Option<u32>,
}

impl BoardQuery {
    fn to_query(&self) -> String {
        serde_urlencoded::to_string(self).unwrap_or_default()
    }

    /// Whether a search text came in the clear (a posted form, or a URL
    /// written by hand or from before searches were sealed).
    fn searches_in_the_clear(&self) -> bool {
        given(&self.q).is_some()
    }

    /// The search text sealed into `qt` (for a URL), from the first page.
    fn seal(&mut self, relay: &Relay) -> Result<(), PageError> {
        seal_search(&mut self.q, &mut self.qt, relay)?;
        self.offset = None;
        Ok(())
    }

    /// The search text of a sealed `qt`, into `q`.
    fn open(&mut self, relay: &Relay) -> Result<(), PageError> {
        open_search(&mut self.q, &self.qt, relay)
    }

    /// The filter for `who`: theirs to see, narrowed by what they asked.
    fn filter(&self, who: &ConsoleUser) -> Result<CaseFilter, PageError> {
        let bad = |what: &str| PageError::form(format!("unknown {what}"));
        let mut filter = scope(who)?;
        if let Some(s) = given(&self.status) {
            filter.statuses = vec![Status::parse(&s).ok_or_else(|| bad("status"))?];
        }
        if let Some(g) = given(&self.grid) {
            let grid: RegionCode = g.parse().map_err(|_| bad("grid"))?;
            // A grid outside the user's region would only ever show nothing.
            if filter.region.as_ref().is_some_and(|r| !r.contains(&grid)) {
                return Err(bad("grid"));
            }
            filter.region = Some(grid);
        }
        if let Some(c) = given(&self.category) {
            filter.category = Some(c.parse().map_err(|_| bad("category"))?);
        }
        if let Some(s) = given(&self.severity) {
            filter.severity = Some(Severity::parse(&s).ok_or_else(|| bad("severity"))?);
        }
        if let Some(c) = given(&self.channel) {
            let known = Channel::KNOWN.into_iter().find(|k| k.as_str() == c);
            filter.channel = Some(known.ok_or_else(|| bad("channel"))?);
        }
        if let Some(d) = given(&self.dept) {
            let dept: DeptId = d.parse().map_err(|_| bad("department"))?;
            // A handler's board is her department's already.
            if filter
                .assigned_dept
                .as_ref()
                .is_some_and(|mine| *mine != dept)
            {
                return Err(bad("department"));
            }
            filter.assigned_dept = Some(dept);
        }
        if self.overdue.is_some() {
            filter.overdue_at = Some(Utc::now());
        }
        if let Some(q) = given(&self.q) {
            filter.text = Some(checked_search(q)?);
        }
        filter.limit = PAGE_SIZE;
        filter.offset = self.offset.unwrap_or(0);
        Ok(filter)
    }
}

/// A search text `q` sealed into `qt`, `q` emptied.
fn seal_search(
    q: &mut Option<String>,
    qt: &mut Option<String>,
    relay: &Relay,
) -> Result<(), PageError> {
    *qt = match given(&q.take()) {
        Some(text) => Some(relay.seal_search(&checked_search(text)?)?),
        None => None,
    };
    Ok(())
}

/// The text of a sealed search `qt`, if any, into `q`.
fn open_search(
    q: &mut Option<String>,
    qt: &Option<String>,
    relay: &Relay,
) -> Result<(), PageError> {
    if let Some(t) = given(qt) {
        *q = Some(relay.open_search(&t)?);
    }
    Ok(())
}

/// A search text within the console's bound.
fn checked_search(q: String) -> Result<String, PageError> {
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(PageError::form(format!(
            "search text has at most {MAX_QUERY_CHARS} characters"
        )));
    }
    Ok(q)
}

/// Answer a search that came in the clear with the same page, the text sealed
/// into its URL (`303`): what the address bar and the history keep.
async fn to_sealed<Q: Serialize + Send + 'static>(
    state: &AppState,
    lang: Lang,
    who: &ConsoleUser,
    path: &'static str,
    query: Q,
    seal: fn(&mut Q, &Relay) -> Result<(), PageError>,
) -> Response {
    let sealed = blocking(state, move |r| {
        let mut query = query;
        seal(&mut query, r)?;
        Ok::<_, PageError>(serde_urlencoded::to_string(&query).unwrap_or_default())
    })
    .await;
    match sealed {
        Ok(query) => Redirect::to(&format!("{path}?{query}")).into_response(),
        Err(e) => failure(lang, Some(who), &e),
    }
}

/// The grids `who` may filter by: those their scope covers.
fn scope_grids(
    dir: &gridsync_core::directory::Directory,
    who: &ConsoleUser,
) -> Vec<(RegionCode, String)> {
    let scope = access::scope_of(&who.user);
    dir.regions()
        .iter()
        .filter(|r| r.level == RegionLevel::Grid && scope.covers(&r.code))
        .map(|r| (r.code.clone(), r.name.clone()))
        .collect()
}

/// A form or query field, trimmed, if it says anything.
fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Everything `who` may see ([`access::Scope`]): a handler's department's cases,
/// anyone else's region.
fn scope(who: &ConsoleUser) -> Result<CaseFilter, PageError> {
    access::scope_of(&who.user).case_filter().map_err(|e| {
        PageError::Relay(RelayError::Forbidden {
            code: "refused",
            message: e.to_string(),
        })
    })
}

async fn board(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Query(q): Query<BoardQuery>,
) -> Response {
    let lang = lang(&headers);
    if q.searches_in_the_clear() {
        return to_sealed(&state, lang, &who, "/console/cases", q, BoardQuery::seal).await;
    }
    let (q2, who2) = (q.clone(), who.clone());
    let result = blocking(&state, move |r| {
        let engine = r.engine();
        let mut q2 = q2;
        q2.open(r)?;
        let filter = q2.filter(&who2)?;
        let counts = engine
            .count_cases(&filter.for_counting())
            .map_err(RelayError::internal)?;
        let rows = engine.list_cases(&filter).map_err(RelayError::internal)?;
        let dir = engine.directory().map_err(RelayError::internal)?;
        Ok::<_, PageError>((counts, rows, dir, q2))
    })
    .await;
    match result {
        Ok((counts, rows, dir, q)) => {
            let grids = scope_grids(&dir, &who);
            let page = pages::board(
                lang,
                &who,
                &dir,
                &pages::Board {
                    query: &q,
                    counts,
                    rows,
                    grids,
                    now: Utc::now(),
                    page_size: PAGE_SIZE,
                },
            );
            html(StatusCode::OK, page)
        }
        Err(e) => failure(lang, Some(&who), &e),
    }
}

/// The board's filter form, posted: the same board, its search sealed.
async fn search_board(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Form(q): Form<BoardQuery>,
) -> Response {
    let lang = lang(&headers);
    to_sealed(&state, lang, &who, "/console/cases", q, BoardQuery::seal).await
}

/// The actions the console offers, in the order shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionKind {
    Accept,
    Dispatch,
    SelfHandle,
    Feedback,
    Return,
    Verify,
    Archive,
    Evaluate,
    Escalate,
    Urge,
    Invalidate,
}

impl ActionKind {
    const ALL: [ActionKind; 11] = [
        ActionKind::Accept,
        ActionKind::Dispatch,
        ActionKind::SelfHandle,
        ActionKind::Feedback,
        ActionKind::Return,
        ActionKind::Verify,
        ActionKind::Archive,
        ActionKind::Evaluate,
        ActionKind::Escalate,
        ActionKind::Urge,
        ActionKind::Invalidate,
    ];

    fn name(self) -> &'static str {
        match self {
            ActionKind::Accept => "accept",
            ActionKind::Dispatch => "dispatch",
            ActionKind::SelfHandle => "self_handle",
            ActionKind::Feedback => "feedback",
            ActionKind::Return => "return",
            ActionKind::Verify => "verify",
            ActionKind::Archive => "archive",
            ActionKind::Evaluate => "evaluate",
            ActionKind::Escalate => "escalate",
            ActionKind::Urge => "urge",
            ActionKind::Invalidate => "invalidate",
        }
    }

    fn label(self, t: &Texts) -> &'static str {
        match self {
            ActionKind::Accept => t.do_accept,
            ActionKind::Dispatch => t.do_dispatch,
            ActionKind::SelfHandle => t.do_self_handle,
            ActionKind::Feedback => t.do_feedback,
            ActionKind::Return => t.do_return,
            ActionKind::Verify => t.do_verify,
            ActionKind::Archive => t.do_archive,
            ActionKind::Evaluate => t.do_evaluate,
            ActionKind::Escalate => t.do_escalate,
            ActionKind::Urge => t.do_urge,
            ActionKind::Invalidate => t.do_invalidate,
        }
    }

    fn parse(name: &str) -> Option<ActionKind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The action from a submitted form; every field checked.
    fn action(
        self,
        f: &ActForm,
        default_deadline: impl FnOnce() -> Result<chrono::DateTime<Utc>, PageError>,
    ) -> Result<Action, PageError> {
        let text = || f.text.clone().unwrap_or_default().trim().to_owned();
        let number = |field: &str, v: &Option<String>, range: std::ops::RangeInclusive<i64>| {
            v.as_deref()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .filter(|n| range.contains(n))
                .ok_or_else(|| {
                    PageError::form(format!(
                        "{field} must be a number from {} to {}",
                        range.start(),
                        range.end()
                    ))
                })
        };
        Ok(match self {
            ActionKind::Accept => Action::Accept,
            ActionKind::Archive => Action::Archive,
            ActionKind::Dispatch => {
                let dept: DeptId = f
                    .dept
                    .as_deref()
                    .unwrap_or_default()
                    .parse()
                    .map_err(|_| PageError::form("choose a department"))?;
                let deadline = match f.hours.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                    Some(_) => {
                        Utc::now() + chrono::Duration::hours(number("hours", &f.hours, 1..=720)?)
                    }
                    None => default_deadline()?,
                };
                Action::Dispatch { dept, deadline }
            }
            ActionKind::SelfHandle => Action::SelfHandle { result: text() },
            ActionKind::Feedback => Action::Feedback { result: text() },
            ActionKind::Return => Action::Return { reason: text() },
            ActionKind::Escalate => Action::Escalate { reason: text() },
            ActionKind::Invalidate => Action::Invalidate { reason: text() },
            ActionKind::Verify => Action::Verify {
                passed: f.passed.as_deref() == Some("1"),
                comment: text(),
            },
            ActionKind::Evaluate => Action::Evaluate {
                satisfaction: number("satisfaction", &f.satisfaction, 1..=5)? as u8,
                comment: text(),
            },
            ActionKind::Urge => Action::Urge {
                level: SupervisionLevel::from_number(number("level", &f.level, 1..=5)?)
                    .ok_or_else(|| PageError::form("level must be 1 to 5"))?,
                comment: text(),
            },
        })
    }
}

/// The actions `who` may take on a case in its current state: each asked of the
/// workflow with a stand-in form (any department, the next supervision level).
fn allowed_actions(
    who: &ConsoleUser,
    case: &gridsync_core::Case,
    any_dept: Option<&DeptId>,
) -> Vec<ActionKind> {
    let current = SupervisionLevel::effective(
        case.state.status,
        case.state.deadline,
        case.state.supervision,
        Utc::now(),
    );
    let next_level = current.map_or(1, |l| l.number() + 1).min(5);
    let stand_in = ActForm {
        dept: any_dept.map(|d| d.as_str().to_owned()),
        satisfaction: Some("5".into()),
        level: Some(next_level.to_string()),
        ..Default::default()
    };
    ActionKind::ALL
        .into_iter()
        .filter(|k| {
            k.action(&stand_in, || Ok(Utc::now()))
                .is_ok_and(|a| case.state.check(who.user.role, &a).is_ok())
        })
        .collect()
}

#[derive(Deserialize)]
struct DetailQuery {
    done: Option<String>,
}

async fn detail(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Path(id): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Response {
    let flash = q.done.map(|_| (true, lang(&headers).t().done.to_owned()));
    show_case(&state, &headers, who, id, StatusCode::OK, flash).await
}

async fn show_case(
    state: &AppState,
    headers: &HeaderMap,
    who: ConsoleUser,
    id: String,
    status: StatusCode,
    flash: Option<(bool, String)>,
) -> Response {
    let lang = lang(headers);
    let who2 = who.clone();
    let result = blocking(state, move |r| {
        let case = r.console_case(&who2, &id)?;
        let dir = r.engine().directory().map_err(RelayError::internal)?;
        let uploaded: std::collections::HashSet<_> = case
            .doc
            .photos
            .iter()
            .filter(|p| {
                r.store()
                    .blob_size(p.hash.as_str())
                    .ok()
                    .flatten()
                    .is_some()
            })
            .map(|p| p.hash.clone())
            .collect();
        let notifications = r
            .store()
            .notifications_of(&case.doc.id)
            .map_err(RelayError::from)?;
        Ok::<_, PageError>((case, dir, uploaded, notifications))
    })
    .await;
    match result {
        Ok((case, dir, uploaded, notifications)) => {
            let actions = allowed_actions(&who, &case, dir.departments().first().map(|d| &d.id));
            let page = pages::detail(
                lang,
                &who,
                &dir,
                &pages::Detail {
                    case: &case,
                    actions,
                    uploaded: &|h| uploaded.contains(h),
                    flash,
                    now: Utc::now(),
                    notifications: &notifications,
                },
            );
            html(status, page)
        }
        Err(e) => failure(lang, Some(&who), &e),
    }
}

/// A submitted action form.
#[derive(Debug, Default, Deserialize)]
struct ActForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    dept: Option<String>,
    hours: Option<String>,
    text: Option<String>,
    satisfaction: Option<String>,
    level: Option<String>,
    passed: Option<String>,
}

async fn act(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Path(id): Path<String>,
    Form(f): Form<ActForm>,
) -> Response {
    let csrf = f.csrf.clone();
    change_case(&state, &headers, who, id, &csrf, move |r, actor, case| {
        let kind = ActionKind::parse(&f.action).ok_or_else(|| PageError::form("unknown action"))?;
        let action = kind.action(&f, || {
            r.engine()
                .default_deadline(&case.doc)
                .map_err(|e| RelayError::internal(e).into())
        })?;
        Ok(r.console_act(actor, &case.doc.id, action)?)
    })
    .await
}

#[derive(Deserialize)]
struct NoteForm {
    csrf: String,
    text: String,
}

async fn note(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Path(id): Path<String>,
    Form(f): Form<NoteForm>,
) -> Response {
    change_case(&state, &headers, who, id, &f.csrf, move |r, actor, case| {
        Ok(r.console_note(actor, &case.doc.id, &f.text)?)
    })
    .await
}

/// A photo uploaded in the console (multipart: `csrf`, then `photo`).
async fn attach_photo(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Path(id): Path<String>,
    mut form: Multipart,
) -> Response {
    let lang = lang(&headers);
    // Who it is, before reading up to 16 MiB of upload.
    let mut csrf = String::new();
    let mut photo: Option<(Vec<u8>, Option<String>)> = None;
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_owned();
                let file_name = field.file_name().map(str::to_owned);
                let Ok(bytes) = field.bytes().await else {
                    return failure(lang, None, &PageError::form("the upload was cut off"));
                };
                match name.as_str() {
                    "csrf" => csrf = String::from_utf8_lossy(&bytes).into_owned(),
                    "photo" if !bytes.is_empty() => photo = Some((bytes.to_vec(), file_name)),
                    _ => {}
                }
            }
            Ok(None) => break,
            Err(e) => return failure(lang, None, &PageError::form(format!("bad upload: {e}"))),
        }
    }
    change_case(&state, &headers, who, id, &csrf, move |r, actor, case| {
        let (bytes, name) = photo.ok_or_else(|| PageError::form("choose a photo"))?;
        Ok(r.console_attach_photo(actor, &case.doc.id, &bytes, name.as_deref())?)
    })
    .await
}

/// A change to case `id` by `who`, from a form that carried `csrf`: refused without
/// the session's token, made on the case as `who` sees it, answered by
/// [`after_change`].
async fn change_case(
    state: &AppState,
    headers: &HeaderMap,
    who: ConsoleUser,
    id: String,
    csrf: &str,
    change: impl FnOnce(&Relay, &ConsoleUser, &gridsync_core::Case) -> Result<(), PageError>
        + Send
        + 'static,
) -> Response {
    if let Some(page) = csrf_refusal(lang(headers), &who, csrf) {
        return page;
    }
    let (doc, actor) = (id.clone(), who.clone());
    let result = blocking(state, move |r| {
        let case = r.console_case(&actor, &doc)?;
        change(r, &actor, &case)
    })
    .await;
    after_change(state, headers, who, id, result).await
}

/// After a change: back to the case (a redirect, so a reload does not repeat it),
/// or the case again with what was wrong.
async fn after_change(
    state: &AppState,
    headers: &HeaderMap,
    who: ConsoleUser,
    id: String,
    result: Result<(), PageError>,
) -> Response {
    match result {
        Ok(()) => {
            Redirect::to(&format!("/console/cases/{}?done=1", urlencode(&id))).into_response()
        }
        Err(
            e @ (PageError::Form(_)
            | PageError::Relay(RelayError::BadRequest(_) | RelayError::Forbidden { .. })),
        ) => {
            let t = lang(headers).t();
            let status = e.status();
            let headline = if status == StatusCode::BAD_REQUEST {
                t.bad_input
            } else {
                t.not_allowed
            };
            let message = format!("{headline}：{e}");
            show_case(state, headers, who, id, status, Some((false, message))).await
        }
        Err(e) => failure(lang(headers), None, &e),
    }
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|q| q.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}

async fn photo(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Path(hash): Path<String>,
) -> Response {
    let who2 = who.clone();
    match blocking(&state, move |r| r.console_photo(&who2, &hash)).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "image/jpeg"),
                (header::CACHE_CONTROL, "no-store"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => failure(lang(&headers), Some(&who), &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; gs_session=abc; gs_lang=en".parse().unwrap(),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(lang(&h), Lang::En);
        assert_eq!(cookie(&h, "missing"), None);
    }

    #[test]
    fn csrf_tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
