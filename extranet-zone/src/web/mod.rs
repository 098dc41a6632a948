//! The registrar's pages: server-rendered Chinese HTML (askama, `templates/`), plain forms with
//! POST-redirect-GET, no JavaScript. Every POST carries the CSRF token; every response has the
//! security headers. A registrar sees only their own district: another district's case, unit
//! or certificate is 404.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use ow_web::csrf::{check_csrf, csrf_token_for};

use crate::AppState;
use crate::certificates;
use crate::staff::{self, Role, StaffMember, Stage};

mod admin;
mod auth;
mod cases;
mod materials;
mod queues;
mod survey;
mod units;

/// The router of the back office.
pub fn router(state: AppState) -> Router {
    let app = Router::new()
        .route("/", get(home))
        .merge(auth::routes())
        .merge(queues::routes())
        .merge(cases::routes())
        .merge(materials::routes())
        .merge(units::routes())
        .merge(survey::routes())
        .merge(admin::routes())
        .route(ow_web::health::HEALTHZ_PATH, get(ow_web::health::healthz))
        .route(ow_web::page::STYLE_CSS_PATH, get(ow_web::page::style_css))
        .route(BACKOFFICE_CSS_PATH, get(backoffice_css))
        .fallback(not_found_fallback)
        .layer(tower_http::limit::RequestBodyLimitLayer::new(64 * 1024))
        // Merged after the small limit: the survey upload has its own, sized for its files.
        .merge(survey::upload_routes(&state))
        .with_state(state.clone());
    ow_web::headers::with_security_headers(crate::throttle_guards(&state).layer(app))
}

/// Where the back office's own style sheet is served.
pub const BACKOFFICE_CSS_PATH: &str = "/static/backoffice.css";

/// The back office's additions to the shared style sheet (counter-screen width, two columns).
pub const BACKOFFICE_CSS: &str = include_str!("../../static/backoffice.css");

async fn backoffice_css() -> Response {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        BACKOFFICE_CSS,
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// Layout, errors, helpers

/// The signed-in member as the header shows them.
#[derive(Debug, Clone)]
struct Header {
    display_name: String,
    district_name: String,
    roles_zh: String,
    is_admin: bool,
}

/// Shared by every page.
#[derive(Debug, Clone, Default)]
struct Layout {
    title: String,
    staff: Option<Header>,
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

    fn for_staff(title: impl Into<String>, auth: &Authed) -> Self {
        Layout {
            title: title.into(),
            staff: Some(Header {
                display_name: auth.staff.display_name.clone(),
                district_name: auth.staff.district_name.clone(),
                roles_zh: auth.staff.roles_zh(),
                is_admin: auth.staff.has(Role::DistrictAdmin),
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
    /// Not signed in: go to the login page.
    Login,
    /// 404.
    NotFound,
    /// 403 with a message.
    Forbidden(String),
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
            PageError::Forbidden(m) => (StatusCode::FORBIDDEN, "无权操作", m),
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

fn fields<'a>(form: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    form.iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// `2026-03-02 09:30` in Beijing time.
pub fn fmt_ms(ms: i64) -> String {
    certificates::beijing(ms)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A signed-in member with the session token (for CSRF).
struct Authed {
    staff: StaffMember,
    token: String,
    csrf: String,
}

async fn authed(state: &AppState, headers: &HeaderMap) -> Result<Authed, PageError> {
    let token = state.cookie.read_token(headers).ok_or(PageError::Login)?;
    match staff::session(&state.store, &token, state.now())
        .await
        .map_err(internal)?
    {
        Some((staff, Stage::Full)) => Ok(Authed {
            csrf: csrf_token_for(&token),
            staff,
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
        Ok(_) => redirect("/cases"),
        Err(_) => redirect("/login"),
    }
}

async fn not_found_fallback() -> Response {
    PageError::NotFound.into_response()
}

/// A party of a case or a holder of a right, as a table row shows them.
struct PartyView {
    name: String,
    id_type: &'static str,
    id_number: String,
    phone: String,
    share: String,
}

/// The Chinese name of an identity document type code.
fn id_type_zh(code: &str) -> &'static str {
    code.parse::<u16>()
        .ok()
        .and_then(ow_certificate::IdDocumentType::from_code)
        .map_or("其它", |t| t.name_zh())
}

/// Fen as `1234.56 元`.
fn yuan(fen: i64) -> String {
    format!("{}.{:02} 元", fen / 100, (fen % 100).abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_and_money() {
        assert_eq!(url_encode("鲁(2026)"), "%E9%B2%81%282026%29");
        assert_eq!(yuan(123_456), "1234.56 元");
    }
}
