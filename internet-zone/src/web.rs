//! HTTP plumbing shared by the pages and the API: the signed-in citizen extractors, CSRF for
//! forms with and without a session, reading multipart uploads within limits, error responses.

use std::collections::HashMap;

use axum::extract::multipart::Multipart;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use ow_web::csrf::{CsrfError, check_csrf, csrf_token_for, origin_allowed};
use ow_web::problem::ApiProblem;
use ow_web::token::new_token;
use ow_web::upload::UploadError;

use crate::accounts::{self, Session};
use crate::app::{App, AppState};
use crate::error::AppError;

/// The cookie carrying the pre-session CSRF secret (login, registration, verify forms).
pub fn anon_cookie_name(app: &App) -> &'static str {
    if app.settings.cookie_secure {
        "__Host-ow_csrf"
    } else {
        "ow_csrf"
    }
}

/// The session of the request, if it carries a valid one.
pub async fn current_session(app: &App, headers: &HeaderMap) -> Result<Option<Session>, AppError> {
    match app.cookie.read_token(headers) {
        Some(token) => accounts::session_for(app, &token, ow_store::now_ms()).await,
        None => Ok(None),
    }
}

/// An optional session (pages that work signed in or not).
#[derive(Debug, Clone)]
pub struct MaybeCitizen(pub Option<Session>);

/// A signed-in citizen on a page; otherwise a redirect to the login page.
#[derive(Debug, Clone)]
pub struct Citizen(pub Session);

/// A signed-in citizen on the API; otherwise 401 problem+json.
#[derive(Debug, Clone)]
pub struct ApiCitizen(pub Session);

impl<S> FromRequestParts<S> for MaybeCitizen
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let app = AppState::from_ref(state);
        Ok(MaybeCitizen(current_session(&app, &parts.headers).await?))
    }
}

impl<S> FromRequestParts<S> for Citizen
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let app = AppState::from_ref(state);
        match current_session(&app, &parts.headers).await? {
            Some(s) => Ok(Citizen(s)),
            None => Err(PageError::LoginRequired),
        }
    }
}

impl<S> FromRequestParts<S> for ApiCitizen
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiProblem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let app = AppState::from_ref(state);
        match current_session(&app, &parts.headers).await {
            Ok(Some(s)) => Ok(ApiCitizen(s)),
            Ok(None) => Err(ApiProblem::unauthorized()),
            Err(e) => Err(internal_problem(e)),
        }
    }
}

/// The CSRF token for a page's forms and, when a new pre-session secret had to be made, the
/// `Set-Cookie` that hands it to the browser.
pub fn form_csrf(
    app: &App,
    session: Option<&Session>,
    headers: &HeaderMap,
) -> (String, Option<HeaderValue>) {
    if let Some(s) = session {
        return (csrf_token_for(&s.token), None);
    }
    let name = anon_cookie_name(app);
    if let Some(secret) = ow_web::session::read_token(headers, name) {
        return (csrf_token_for(&secret), None);
    }
    let secret = new_token();
    let mut cookie = format!("{name}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age=86400");
    if app.settings.cookie_secure {
        cookie.push_str("; Secure");
    }
    (csrf_token_for(&secret), HeaderValue::from_str(&cookie).ok())
}

/// The origin check of a form POST alone (the first half of [`check_form_csrf`]): upload
/// routes run it before reading a byte of the body.
pub fn check_form_origin(app: &App, headers: &HeaderMap) -> Result<(), CsrfError> {
    origin_allowed(headers, app.settings.public_url.trim_end_matches('/'))
}

/// Checks a form POST: its origin ([`origin_allowed`]: `Origin`, then `Referer`), then its token
/// against the session when there is one, otherwise against the pre-session secret.
pub fn check_form_csrf(
    app: &App,
    session: Option<&Session>,
    headers: &HeaderMap,
    submitted: Option<&str>,
) -> Result<(), CsrfError> {
    check_form_origin(app, headers)?;
    if let Some(s) = session {
        return check_csrf(Some(&s.token), submitted);
    }
    let secret = ow_web::session::read_token(headers, anon_cookie_name(app));
    check_csrf(secret.as_deref(), submitted)
}

/// Checks the API's `X-CSRF-Token` header against the session.
pub fn check_api_csrf(session: &Session, headers: &HeaderMap) -> Result<(), ApiProblem> {
    check_csrf(Some(&session.token), ow_web::csrf::header_token(headers)).map_err(ApiProblem::from)
}

/// Why a page request failed.
#[derive(Debug)]
pub enum PageError {
    /// Not there, or not the citizen's.
    NotFound,
    /// Sign in first.
    LoginRequired,
    /// The form's CSRF token was missing or wrong.
    Csrf(CsrfError),
    /// The request body was not acceptable (message in Chinese).
    BadRequest(String),
    /// Too many requests.
    TooMany,
    /// Every password-hashing slot stayed busy: 503, try again in a minute.
    Busy,
    /// Something broke (logged; the citizen sees a generic message).
    Internal(AppError),
}

impl From<AppError> for PageError {
    fn from(e: AppError) -> Self {
        PageError::Internal(e)
    }
}

impl From<sqlx::Error> for PageError {
    fn from(e: sqlx::Error) -> Self {
        PageError::Internal(e.into())
    }
}

impl From<CsrfError> for PageError {
    fn from(e: CsrfError) -> Self {
        PageError::Csrf(e)
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> Self {
        PageError::Internal(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            PageError::LoginRequired => return Redirect::to("/login").into_response(),
            PageError::NotFound => (
                StatusCode::NOT_FOUND,
                "未找到",
                "未找到您要访问的内容。请从“我的申请”或“我的证书”中选择。".to_owned(),
            ),
            PageError::Csrf(e) => (StatusCode::FORBIDDEN, "请求无法确认", e.message_zh()),
            PageError::BadRequest(m) => (StatusCode::BAD_REQUEST, "提交的内容有误", m),
            PageError::TooMany => (
                StatusCode::TOO_MANY_REQUESTS,
                "操作过于频繁",
                "操作过于频繁，请一分钟后再试".to_owned(),
            ),
            PageError::Busy => {
                let mut r = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Html(crate::pages::error_page(
                        "系统繁忙",
                        &ow_web::password::PasswordHashError::Busy.message_zh(),
                    )),
                )
                    .into_response();
                r.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    HeaderValue::from_static("60"),
                );
                return r;
            }
            PageError::Internal(e) => {
                tracing::error!(error = %e, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "服务暂时不可用",
                    "服务器内部错误，请稍后重试；如问题持续存在，请拨打服务热线".to_owned(),
                )
            }
        };
        (status, Html(crate::pages::error_page(title, &message))).into_response()
    }
}

/// Logs an internal error and answers a 500 problem.
pub fn internal_problem(e: AppError) -> ApiProblem {
    tracing::error!(error = %e, "API request failed");
    ApiProblem::internal()
}

impl From<AppError> for ApiProblem {
    fn from(e: AppError) -> Self {
        internal_problem(e)
    }
}

/// Adds a `Set-Cookie` to a response.
pub fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(c) = cookie {
        response.headers_mut().append(SET_COOKIE, c);
    }
    response
}

/// Why a multipart body could not be read.
#[derive(Debug)]
pub enum MultipartError {
    /// A file was refused (type, size, count).
    Upload(UploadError),
    /// The whole body is over the request limit (413).
    TooLarge,
    /// The body is malformed.
    Malformed(String),
}

impl MultipartError {
    /// The Chinese message.
    pub fn message_zh(&self) -> String {
        match self {
            MultipartError::Upload(e) => e.message_zh(),
            MultipartError::TooLarge => "上传的文件总大小超过限制，请压缩文件或分批上传".to_owned(),
            MultipartError::Malformed(m) => m.clone(),
        }
    }
}

/// A small file read into memory (a certificate to verify). `Debug` shows no name or bytes.
pub struct InMemoryFile {
    /// The form field it came in.
    pub field: String,
    /// The name the browser sent (never log it).
    pub file_name: String,
    /// The declared `Content-Type` (not trusted).
    pub declared_type: Option<String>,
    /// The bytes (at most the limit plus one byte: more is never kept).
    pub bytes: Vec<u8>,
    /// The full size received, which may be over the limit.
    pub size: u64,
}

impl std::fmt::Debug for InMemoryFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryFile")
            .field("field", &self.field)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// Text fields and files of a small multipart body, in memory: for routes whose body limit is
/// small (a certificate to verify). Uploads of materials stream to disk instead
/// (`crate::uploads::read_upload`). Files are parts with a file name; a part whose file name
/// and content are both empty (a file input left empty) is skipped. A file larger than the
/// limit is read to its end (the request body limit caps it) but only the first
/// `max_file_bytes + 1` bytes are kept.
pub async fn read_multipart(
    mut mp: Multipart,
    max_file_bytes: u64,
) -> Result<(HashMap<String, String>, Vec<InMemoryFile>), MultipartError> {
    let mut fields = HashMap::new();
    let mut files = Vec::new();
    let malformed = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            MultipartError::TooLarge
        } else {
            MultipartError::Malformed("上传内容不完整或格式不正确，请重新选择文件上传".to_owned())
        }
    };
    let keep = usize::try_from(max_file_bytes.saturating_add(1)).unwrap_or(usize::MAX);
    while let Some(mut field) = mp.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or_default().to_owned();
        let file_name = field.file_name().map(str::to_owned);
        let declared = field.content_type().map(str::to_owned);
        match file_name {
            Some(file_name) => {
                let mut bytes = Vec::new();
                let mut size: u64 = 0;
                while let Some(chunk) = field.chunk().await.map_err(malformed)? {
                    size = size.saturating_add(chunk.len() as u64);
                    if bytes.len() < keep {
                        let room = keep - bytes.len();
                        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    }
                }
                if file_name.is_empty() && size == 0 {
                    continue;
                }
                files.push(InMemoryFile {
                    field: name,
                    file_name,
                    declared_type: declared,
                    bytes,
                    size,
                });
            }
            None => {
                let text = field.text().await.map_err(malformed)?;
                if text.len() > 64 * 1024 {
                    return Err(MultipartError::Malformed(
                        "表单内容过长，请精简后重新提交".to_owned(),
                    ));
                }
                fields.insert(name, text);
            }
        }
    }
    Ok((fields, files))
}
