//! The surveyors' pages: server-rendered Chinese HTML (askama, `templates/`), plain forms with
//! POST-redirect-GET, no JavaScript and no external resources (the intranet has no internet):
//! drawings are inline SVG. Every POST carries the CSRF token; every response has the security
//! headers. A surveyor sees only their own district: another district's package is 404.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use ow_web::csrf::{check_csrf, csrf_token_for};

use crate::AppState;
use crate::surveyors::{self, Stage, Surveyor};

mod auth;
mod packages;
mod register;

/// The router of the cadastral zone.
pub fn router(state: AppState) -> Router {
    let app = Router::new()
        .route("/", get(home))
        .merge(auth::routes())
        .merge(packages::routes())
        .merge(register::routes())
        .route(ow_web::health::HEALTHZ_PATH, get(ow_web::health::healthz))
        .route(ow_web::page::STYLE_CSS_PATH, get(ow_web::page::style_css))
        .fallback(not_found_fallback)
        // An approval form carries one unit code per parcel; a package may hold thousands.
        .layer(tower_http::limit::RequestBodyLimitLayer::new(1024 * 1024))
        .with_state(state.clone());
    ow_web::headers::with_security_headers(crate::throttle_guards(&state).layer(app))
}

/// The signed-in surveyor as the header shows them.
#[derive(Debug, Clone)]
struct Header {
    display_name: String,
    district_name: String,
    roles_zh: String,
}

/// Shared by every page.
#[derive(Debug, Clone, Default)]
struct Layout {
    title: String,
    surveyor: Option<Header>,
    csrf: String,
    notice: Option<String>,
    error: Option<String>,
}

impl Layout {
    fn new(title: impl Into<String>) -> Self {
        Layout {
            title: title.into(),
            ..Layout::default()
        }
    }

    fn for_surveyor(title: impl Into<String>, auth: &Authed) -> Self {
        Layout {
            title: title.into(),
            surveyor: Some(Header {
                display_name: auth.surveyor.display_name.clone(),
                district_name: auth.surveyor.district_name.clone(),
                roles_zh: auth.surveyor.roles_zh(),
            }),
            csrf: auth.csrf.clone(),
            ..Layout::default()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    heading: String,
    message: String,
}

/// A page-level failure.
#[derive(Debug)]
enum PageError {
    /// Not signed in.
    Login,
    /// 404.
    NotFound,
    /// 400 with a message.
    BadRequest(String),
    /// 500; the cause is logged, not shown.
    Internal(String),
}

fn internal(e: impl std::fmt::Display) -> PageError {
    PageError::Internal(e.to_string())
}

fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "页面生成失败").into_response()
        }
    }
}

fn render_status(status: StatusCode, page: &impl Template) -> Response {
    let mut r = render(page);
    if r.status() == StatusCode::OK {
        *r.status_mut() = status;
    }
    r
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, heading, message) = match self {
            PageError::Login => return redirect("/login"),
            PageError::NotFound => (
                StatusCode::NOT_FOUND,
                "未找到",
                "您要查看的内容不存在，或不属于您所在的区县。".to_owned(),
            ),
            PageError::BadRequest(m) => (StatusCode::BAD_REQUEST, "请求有误", m),
            PageError::Internal(cause) => {
                tracing::error!(%cause, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "系统错误",
                    "系统暂时无法完成操作，请稍后再试；如持续出现请联系系统管理员。".to_owned(),
                )
            }
        };
        render_status(
            status,
            &ErrorPage {
                layout: Layout::new(heading),
                heading: heading.to_owned(),
                message,
            },
        )
    }
}

fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `2026-03-02 09:30` in Beijing time.
fn fmt_ms(ms: i64) -> String {
    let Some(beijing) = chrono::FixedOffset::east_opt(8 * 3600) else {
        return String::new();
    };
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&beijing)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

/// A signed-in surveyor with the session token (for CSRF).
struct Authed {
    surveyor: Surveyor,
    csrf: String,
    token: String,
}

async fn authed(state: &AppState, headers: &HeaderMap) -> Result<Authed, PageError> {
    let token = state.cookie.read_token(headers).ok_or(PageError::Login)?;
    match surveyors::session(&state.store, &token, state.now())
        .await
        .map_err(internal)?
    {
        Some((surveyor, Stage::Full)) => Ok(Authed {
            csrf: csrf_token_for(&token),
            surveyor,
            token,
        }),
        _ => Err(PageError::Login),
    }
}

fn check_form_csrf(token: &str, form: &[(String, String)]) -> Result<(), PageError> {
    check_csrf(Some(token), field(form, "csrf")).map_err(|e| PageError::BadRequest(e.message_zh()))
}

async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match authed(&state, &headers).await {
        Ok(_) => redirect("/packages"),
        Err(_) => redirect("/login"),
    }
}

async fn not_found_fallback() -> Response {
    PageError::NotFound.into_response()
}
