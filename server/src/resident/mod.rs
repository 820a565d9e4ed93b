//! The resident channel's public pages (居民上报), served by `gridsync serve`
//! under `/r`: a small mobile page to report a problem, the receipt with its
//! tracking code, and the progress page with the satisfaction score once the case
//! is closed. No account, no cookie, no external resource; one small inline script
//! (the proof of work and the phone's position). The relay
//! (`relay::resident`) does the work; this is the edge: bodies bounded, the
//! client's address for the rate limits, every refusal a page in Chinese.
//! See docs/resident-channel.md.

pub(crate) mod pages;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Form, Multipart, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::Deserialize;

use crate::http::AppState;
use crate::relay::resident::limits;
use crate::relay::{Relay, RelayError, ResidentError, ResidentReport, Upload, Whereabouts};

/// A report's whole body, photos included.
pub const REPORT_BODY_BYTES: usize = 3 * limits::PHOTO_BYTES + 64 * 1024;
/// The bytes of the resident pages' bodies read at once: as many reports as are
/// let in at once, and room for the small forms. Apart from the phones' budget.
pub const BODY_BUDGET_BYTES: usize = limits::IN_FLIGHT * REPORT_BODY_BYTES + 1024 * 1024;
/// One text field of a form, in bytes (the longest, the description, is 1,000
/// characters of at most 3 bytes).
const FIELD_BYTES: usize = 4 * 1024;
/// The tracking and score forms' whole body, in bytes.
const FORM_BYTES: usize = 2 * FIELD_BYTES;
/// What a form the page did not make is told.
const UNREADABLE: &str = "表单内容不正确，请刷新页面后重新填写";

/// The resident channel's routes.
pub fn routes(open: bool) -> Router<AppState> {
    let router = Router::new()
        .route("/r", get(report_page))
        .route(
            "/r/report",
            post(report).layer(DefaultBodyLimit::max(REPORT_BODY_BYTES)),
        )
        .route(
            "/r/track",
            get(track_page)
                .post(track)
                .layer(DefaultBodyLimit::max(FORM_BYTES)),
        )
        .route(
            "/r/evaluate",
            post(evaluate).layer(DefaultBodyLimit::max(FORM_BYTES)),
        )
        .layer(axum::middleware::from_fn(from_this_site));
    match open {
        true => router,
        false => router.layer(axum::middleware::from_fn(closed)),
    }
}

/// Every public page of a server whose operator turned the channel off
/// (`resident_channel = false`): a sentence saying so, and nothing read.
async fn closed(_: axum::extract::Request, _: axum::middleware::Next) -> Response {
    html(
        StatusCode::NOT_FOUND,
        pages::layout(
            "居民上报",
            maud::html! { p.msg { "本平台未开放居民网上上报，请拨打 12345 热线反映问题。" } },
        ),
    )
}

/// Forms are posted from these pages only: a browser says where a post comes
/// from (`Sec-Fetch-Site`, or else `Origin`), and another site's page that makes
/// its visitors' browsers post here — spreading a flood over thousands of real
/// addresses — is refused. Clients that say nothing (scripts, old browsers) are
/// left to the rate limits and the proof of work.
async fn from_this_site(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let h = req.headers();
    let site = h.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let origin = h.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = h.get(header::HOST).and_then(|v| v.to_str().ok());
    let foreign = match (site, origin) {
        (Some(site), _) => !matches!(site, "same-origin" | "none"),
        (None, Some(origin)) => {
            let authority = origin.split_once("://").map_or(origin, |(_, a)| a);
            host != Some(authority)
        }
        (None, None) => false,
    };
    let post = req.method() == axum::http::Method::POST;
    // A small body is read before anything answers: a refusal (another site, a
    // body that is not the form) would otherwise close the connection with the
    // body unread, and the client could get a reset instead of the answer.
    let small = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n <= FORM_BYTES);
    let req = match post && small {
        true => {
            let (parts, body) = req.into_parts();
            match axum::body::to_bytes(body, FORM_BYTES).await {
                Ok(bytes) => {
                    axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes))
                }
                Err(_) => {
                    return html(StatusCode::BAD_REQUEST, pages::track_form(Some(UNREADABLE)))
                }
            }
        }
        false => req,
    };
    if post && foreign {
        return html(
            StatusCode::FORBIDDEN,
            pages::message("无法提交", "请在本页面上填写并提交，不要从其他网站提交。"),
        );
    }
    next.run(req).await
}

/// A public page: never cached, never framed, no referrer, and a policy that
/// lets nothing load but the page itself and its one script.
fn html(status: StatusCode, page: maud::Markup) -> Response {
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
         script-src '{}'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        pages::script_hash()
    );
    let mut r = (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        page,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    r
}

/// The client's address for the rate limits (the resident channel's, the
/// console's wrong sign-ins): the connection's peer, or what a trusted reverse
/// proxy forwards (`trusted_proxies`; docs/resident-channel.md).
pub(crate) fn client(
    state: &AppState,
    info: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: &HeaderMap,
) -> IpAddr {
    let peer = info.map_or(
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        |Extension(ConnectInfo(a))| a.ip(),
    );
    // Every X-Forwarded-For line, in order: a proxy may add its own line after
    // the one a client wrote.
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let forwarded = forwarded.join(",");
    state
        .relay
        .resident_client(peer, (!forwarded.is_empty()).then_some(forwarded.as_str()))
}

/// Relay work on a blocking thread, on a replica that has caught up.
async fn blocking<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&Relay) -> Result<T, ResidentError> + Send + 'static,
) -> Result<T, ResidentError> {
    let relay = state.relay.clone();
    tokio::task::spawn_blocking(move || {
        relay.catch_up()?;
        f(&relay)
    })
    .await
    .unwrap_or_else(|e| Err(RelayError::internal(e).into()))
}

/// The status and sentence of a refusal; the relay's own failures say only to
/// try again (and are logged without anything the resident sent).
pub(crate) fn refusal(e: &ResidentError) -> (StatusCode, String) {
    match e {
        ResidentError::Invalid(m) => (StatusCode::BAD_REQUEST, m.clone()),
        ResidentError::TooMany(m) => (StatusCode::TOO_MANY_REQUESTS, (*m).to_owned()),
        ResidentError::UnknownCode => (StatusCode::NOT_FOUND, e.to_string()),
        ResidentError::Relay(RelayError::Busy(_)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "系统繁忙，请稍后再试".to_owned(),
        ),
        ResidentError::Relay(r) => {
            tracing::error!(error = %r, "resident channel");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "系统暂时无法处理，请稍后再试".to_owned(),
            )
        }
    }
}

/// The fields of a report form as typed (the page's, or the console's hotline
/// form's), kept to show the form again after a refusal.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReportForm {
    pub(crate) challenge: String,
    pub(crate) nonce: String,
    pub(crate) csrf: String,
    pub(crate) channel: String,
    pub(crate) category: String,
    pub(crate) description: String,
    pub(crate) lat: String,
    pub(crate) lon: String,
    pub(crate) grid: String,
    pub(crate) address: String,
    pub(crate) phone: String,
    pub(crate) caller: String,
}

impl ReportForm {
    /// The report it describes: a position when the phone gave one, else the grid.
    pub(crate) fn report(&self, photos: Vec<Upload>) -> Result<ResidentReport, ResidentError> {
        let number = |s: &str| s.trim().parse::<f64>().ok();
        let at = match (number(&self.lat), number(&self.lon)) {
            (Some(lat), Some(lon)) => Whereabouts::Point { lat, lon },
            _ => Whereabouts::Grid(self.grid.trim().parse().map_err(|_| {
                ResidentError::Invalid(
                    "请允许获取位置，或选择所在社区和网格（只填地址无法确定网格）".into(),
                )
            })?),
        };
        Ok(ResidentReport {
            category: self.category.clone(),
            description: self.description.clone(),
            at,
            address: self.address.clone(),
            phone: self.phone.clone(),
            caller: self.caller.clone(),
            photos,
        })
    }
}

/// Read a multipart report form: text fields within [`FIELD_BYTES`], at most
/// [`limits::PHOTOS`] photos (empty file inputs skipped), unknown fields refused.
pub(crate) async fn read_form(
    mut form: Multipart,
) -> Result<(ReportForm, Vec<Upload>), ResidentError> {
    let bad = |m: &str| ResidentError::Invalid(m.to_owned());
    let mut f = ReportForm::default();
    let mut photos = Vec::new();
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ResidentError::Invalid(format!(
                    "提交的内容过大：照片每张不超过 {} MB，合计不超过 {} MB",
                    limits::PHOTO_BYTES / (1024 * 1024),
                    REPORT_BODY_BYTES / (1024 * 1024)
                )))
            }
            Err(_) => return Err(bad("上传中断，请重新提交")),
        };
        let name = field.name().unwrap_or_default().to_owned();
        let file_name = field.file_name().map(str::to_owned);
        let bytes = field.bytes().await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ResidentError::Invalid(format!(
                    "提交的内容过大：照片每张不超过 {} MB，合计不超过 {} MB",
                    limits::PHOTO_BYTES / (1024 * 1024),
                    REPORT_BODY_BYTES / (1024 * 1024)
                ))
            } else {
                bad("上传中断，请重新提交")
            }
        })?;
        if name == "photo" {
            if bytes.is_empty() {
                continue;
            }
            if photos.len() == limits::PHOTOS {
                return Err(ResidentError::Invalid(format!(
                    "最多上传 {} 张照片",
                    limits::PHOTOS
                )));
            }
            photos.push(Upload {
                bytes: bytes.to_vec(),
                name: file_name,
            });
            continue;
        }
        if bytes.len() > FIELD_BYTES {
            return Err(bad("填写的内容过长"));
        }
        let text = String::from_utf8(bytes.to_vec()).map_err(|_| bad("无法识别填写的文字"))?;
        let slot = match name.as_str() {
            "challenge" => &mut f.challenge,
            "nonce" => &mut f.nonce,
            "csrf" => &mut f.csrf,
            "channel" => &mut f.channel,
            "category" => &mut f.category,
            "description" => &mut f.description,
            "lat" => &mut f.lat,
            "lon" => &mut f.lon,
            "grid" => &mut f.grid,
            "address" => &mut f.address,
            "phone" => &mut f.phone,
            "caller" => &mut f.caller,
            _ => return Err(bad("表单内容不正确，请刷新页面后重新填写")),
        };
        *slot = text;
    }
    Ok((f, photos))
}

/// Read a refused report's body to its end (within its limit), keeping nothing,
/// so that the browser, which sends the whole body before it reads an answer,
/// shows the refusal rather than a broken connection.
async fn drain(mut form: Multipart) {
    while let Ok(Some(mut field)) = form.next_field().await {
        while let Ok(Some(_)) = field.chunk().await {}
    }
}

/// The report form, with a fresh challenge; `again` is a refused form to show
/// with its message.
async fn form_page(state: &AppState, again: Option<(&ReportForm, StatusCode, String)>) -> Response {
    let fresh = blocking(state, |r| {
        Ok((
            r.resident_challenge()?,
            r.engine().directory().map_err(RelayError::internal)?,
        ))
    })
    .await;
    match fresh {
        Ok((challenge, dir)) => {
            let (form, status, message) = match again {
                Some((f, s, m)) => (f.clone(), s, Some(m)),
                None => (ReportForm::default(), StatusCode::OK, None),
            };
            html(
                status,
                pages::report(&dir, &challenge, &form, message.as_deref()),
            )
        }
        Err(e) => {
            let (status, message) = refusal(&e);
            html(status, pages::message("无法打开上报页面", &message))
        }
    }
}

async fn report_page(State(state): State<AppState>) -> Response {
    form_page(&state, None).await
}

async fn report(
    State(state): State<AppState>,
    info: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> Response {
    // Counted before the body is read: a stranger's 24 MiB costs a report.
    let client = client(&state, info, &headers);
    let admitted = match state.relay.resident_admit(client) {
        Ok(admitted) => admitted,
        Err(e) => {
            if let Ok(form) = form {
                drain(form).await;
            }
            let (status, message) = refusal(&e);
            return form_page(&state, Some((&ReportForm::default(), status, message))).await;
        }
    };
    let Ok(form) = form else {
        let again = (
            &ReportForm::default(),
            StatusCode::BAD_REQUEST,
            UNREADABLE.to_owned(),
        );
        return form_page(&state, Some(again)).await;
    };
    let (f, photos) = match read_form(form).await {
        Ok(read) => read,
        Err(e) => {
            let (status, message) = refusal(&e);
            return form_page(&state, Some((&ReportForm::default(), status, message))).await;
        }
    };
    let typed = f.clone();
    let result = blocking(&state, move |r| {
        let report = f.report(photos)?;
        r.resident_report(&admitted, &f.challenge, &f.nonce, &report)
    })
    .await;
    match result {
        Ok(receipt) => html(StatusCode::OK, pages::receipt(&receipt)),
        Err(e) => {
            let (status, message) = refusal(&e);
            form_page(&state, Some((&typed, status, message))).await
        }
    }
}

async fn track_page() -> Response {
    html(StatusCode::OK, pages::track_form(None))
}

#[derive(Deserialize)]
struct TrackForm {
    #[serde(default)]
    code: String,
}

/// The code is posted, never put in a URL: proxies and browser histories keep
/// URLs, and the code is all it takes to see the progress and score it.
async fn track(
    State(state): State<AppState>,
    info: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    form: Result<Form<TrackForm>, FormRejection>,
) -> Response {
    match form {
        Ok(Form(f)) => show_progress(&state, client(&state, info, &headers), f.code, None).await,
        Err(_) => html(StatusCode::BAD_REQUEST, pages::track_form(Some(UNREADABLE))),
    }
}

async fn show_progress(
    state: &AppState,
    client: IpAddr,
    code: String,
    flash: Option<(bool, String)>,
) -> Response {
    if code.len() > 64 {
        return html(
            StatusCode::NOT_FOUND,
            pages::track_form(Some(&ResidentError::UnknownCode.to_string())),
        );
    }
    let c = code.clone();
    match blocking(state, move |r| r.resident_track(client, &c)).await {
        Ok(progress) => html(
            StatusCode::OK,
            pages::progress(&code, &progress, flash.as_ref()),
        ),
        Err(e) => {
            let (status, message) = refusal(&e);
            html(status, pages::track_form(Some(&message)))
        }
    }
}

#[derive(Deserialize)]
struct EvaluateForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    satisfaction: String,
    #[serde(default)]
    comment: String,
}

async fn evaluate(
    State(state): State<AppState>,
    info: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    form: Result<Form<EvaluateForm>, FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return html(StatusCode::BAD_REQUEST, pages::track_form(Some(UNREADABLE)));
    };
    let client = client(&state, info, &headers);
    if f.code.len() > 64 || f.comment.len() > FIELD_BYTES {
        return html(
            StatusCode::BAD_REQUEST,
            pages::track_form(Some("填写的内容过长")),
        );
    }
    let score = f.satisfaction.trim().parse::<u8>().unwrap_or(0);
    let (code, comment) = (f.code.clone(), f.comment);
    let done = blocking(&state, move |r| {
        r.resident_evaluate(client, &code, score, &comment)
    })
    .await;
    let flash = match &done {
        Ok(()) => (true, "感谢您的评价！".to_owned()),
        Err(e @ (ResidentError::Invalid(_) | ResidentError::TooMany(_))) => (false, refusal(e).1),
        Err(e) => {
            let (status, message) = refusal(e);
            return html(status, pages::track_form(Some(&message)));
        }
    };
    show_progress(&state, client, f.code, Some(flash)).await
}
