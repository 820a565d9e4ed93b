//! The hotline form (来电登记): a dispatcher taking a 12345 call, or a message
//! from a WeChat account or a website, enters the resident's report with the
//! same fields as the resident page. The case is reported in her own name, marked
//! with its channel, routed like the page's (a position if she has one, else the
//! grid chosen), and the caller is given a tracking code to follow it at `/r/track`.

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use gridsync_core::{Channel, Directory};
use maud::{html, Markup};

use super::error::PageError;
use super::i18n::Lang;
use super::pages::layout;
use super::{blocking, csrf_refusal, failure, html as page, lang};
use crate::http::AppState;
use crate::relay::resident::limits;
use crate::relay::{ConsoleUser, Receipt, RelayError, ResidentError};
use crate::resident::{pages::report_fields, read_form, refusal, ReportForm};

/// The hotline form's words.
struct Words {
    title: &'static str,
    channel: &'static str,
    caller: &'static str,
    submit: &'static str,
    entered: &'static str,
    duplicate: &'static str,
    code: &'static str,
    dispatchers_only: &'static str,
}

const ZH: Words = Words {
    title: "来电登记",
    channel: "来源渠道",
    caller: "来电人（选填）",
    submit: "登记",
    entered: "已登记为事件，进入所在社区的受理流程。",
    duplicate: "24 小时内已登记过相同的事件，未重复登记；以下是该事件的查询码。",
    code: "请将查询码告知来电人，可在 /r/track 查询进度（只显示这一次）：",
    dispatchers_only: "只有调度员可以登记来电",
};

const EN: Words = Words {
    title: "Hotline intake",
    channel: "Channel",
    caller: "Caller (optional)",
    submit: "Enter",
    entered: "Entered as a case; it goes to the community of its grid.",
    duplicate:
        "The same case was entered within 24 hours and was not entered again; its tracking code:",
    code: "Give the caller this tracking code for /r/track (shown only once):",
    dispatchers_only: "Only dispatchers enter calls",
};

fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::Zh => &ZH,
        Lang::En => &EN,
    }
}

/// The menu's name for the form.
pub fn title(lang: Lang) -> &'static str {
    words(lang).title
}

/// The hotline form's routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/console/hotline", get(form).post(enter))
}

/// The refusal for anyone but a dispatcher.
fn not_a_dispatcher(lang: Lang, who: &ConsoleUser) -> Option<Response> {
    (!who.user.role.is_dispatcher()).then(|| {
        let refused = PageError::Relay(RelayError::Forbidden {
            code: "refused",
            message: words(lang).dispatchers_only.into(),
        });
        failure(lang, Some(who), &refused)
    })
}

fn form_page(
    lang: Lang,
    who: &ConsoleUser,
    dir: &Directory,
    f: &ReportForm,
    refused: Option<&str>,
) -> Markup {
    let w = words(lang);
    layout(
        lang,
        Some(who),
        "/console/hotline",
        html! {
            section {
                h2 { (w.title) }
                @if let Some(m) = refused { p.flash.err role="alert" { (m) } }
                form #hotline method="post" action="/console/hotline" enctype="multipart/form-data" {
                    input type="hidden" name="csrf" value=(who.csrf);
                    label for="channel" { (w.channel) }
                    select #channel name="channel" {
                        @for c in Channel::ENTERED {
                            option value=(c.as_str()) selected[f.channel == c.as_str()] {
                                (c.label_zh())
                            }
                        }
                    }
                    label for="caller" { (w.caller) }
                    input #caller name="caller" maxlength=(limits::CALLER) value=(f.caller);
                    (report_fields(dir, f, false))
                    button type="submit" { (w.submit) }
                }
            }
        },
    )
}

async fn form(State(state): State<AppState>, headers: HeaderMap, who: ConsoleUser) -> Response {
    let lang = lang(&headers);
    if let Some(refused) = not_a_dispatcher(lang, &who) {
        return refused;
    }
    match blocking(&state, |r| {
        r.engine().directory().map_err(RelayError::internal)
    })
    .await
    {
        Ok(dir) => page(
            StatusCode::OK,
            form_page(lang, &who, &dir, &ReportForm::default(), None),
        ),
        Err(e) => failure(lang, Some(&who), &e),
    }
}

fn receipt(lang: Lang, who: &ConsoleUser, r: &Receipt) -> Markup {
    let w = words(lang);
    layout(
        lang,
        Some(who),
        "/console/hotline",
        html! {
            section {
                p.flash.ok { (if r.duplicate { w.duplicate } else { w.entered }) }
                @if let Some(code) = &r.code {
                    p { (w.code) }
                    p { strong #code { (code) } }
                }
                p {
                    a href=(format!("/console/cases/{}", r.case)) { (r.case) } " · "
                    a href="/console/hotline" { (w.title) }
                }
            }
        },
    )
}

async fn enter(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    form: Result<Multipart, MultipartRejection>,
) -> Response {
    let lang = lang(&headers);
    if let Some(refused) = not_a_dispatcher(lang, &who) {
        return refused;
    }
    let Ok(form) = form else {
        let e = PageError::form("multipart/form-data");
        return failure(lang, Some(&who), &e);
    };
    let (f, photos) = match read_form(form).await {
        Ok(read) => read,
        Err(e) => return again(&state, lang, &who, ReportForm::default(), &e).await,
    };
    if let Some(refused) = csrf_refusal(lang, &who, &f.csrf) {
        return refused;
    }
    let (typed, actor) = (f.clone(), who.clone());
    let entered = blocking(&state, move |r| {
        let report = f.report(photos)?;
        r.console_report(&actor, Channel::parse(&f.channel), &report)
    })
    .await;
    match entered {
        Ok(r) => page(StatusCode::OK, receipt(lang, &who, &r)),
        Err(PageError::Resident(e)) => again(&state, lang, &who, typed, &e).await,
        Err(e) => failure(lang, Some(&who), &e),
    }
}

/// The form again, with what was typed and why it was refused.
async fn again(
    state: &AppState,
    lang: Lang,
    who: &ConsoleUser,
    typed: ReportForm,
    e: &ResidentError,
) -> Response {
    let (status, message) = refusal(e);
    match blocking(state, |r| {
        r.engine().directory().map_err(RelayError::internal)
    })
    .await
    {
        Ok(dir) => page(status, form_page(lang, who, &dir, &typed, Some(&message))),
        Err(e) => failure(lang, Some(who), &e),
    }
}
