//! The registrar's pages: server-rendered Chinese HTML (askama, `templates/`), plain forms with
//! POST-redirect-GET, no JavaScript. Every POST carries the CSRF token; every response has the
//! security headers. A registrar sees only their own district: another district's case, unit
//! or certificate is 404.

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use chrono::TimeDelta;
use ow_domain::{BusinessType, CaseStatus};
use ow_web::csrf::{check_csrf, csrf_token_for};
use ow_web::token::new_token;
use serde::Deserialize;

use crate::AppState;
use crate::cases;
use crate::certificates;
use crate::register;
use crate::rules::{self, RuleViolation};
use crate::staff::{self, LoginError, NewStaff, Role, StaffError, StaffMember, Stage};
use crate::workflow::{self, Action, ActionError, ActionInput};

/// The cookie that carries the pre-login CSRF secret.
const PRE_COOKIE: &str = "ow_ext_pre";

/// The router of the back office.
pub fn router(state: AppState) -> Router {
    let app = Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login_submit))
        .route("/login/totp", get(totp_page).post(totp_submit))
        .route("/logout", post(logout))
        .route("/cases", get(queue))
        .route("/cases/{no}", get(case_page))
        .route("/cases/{no}/materials/{id}", get(material))
        .route("/cases/{no}/{action}", post(case_action))
        .route("/units", get(units_page))
        .route("/units/{code}", get(unit_page))
        .route("/certificates", get(certificate_page))
        .route("/certificates/print", get(certificate_print))
        .route("/staff", get(staff_page).post(staff_create))
        .route(ow_web::health::HEALTHZ_PATH, get(ow_web::health::healthz))
        .route(ow_web::page::STYLE_CSS_PATH, get(ow_web::page::style_css))
        .fallback(not_found_fallback)
        .layer(tower_http::limit::RequestBodyLimitLayer::new(64 * 1024))
        .with_state(state);
    ow_web::headers::with_security_headers(app)
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

// ---------------------------------------------------------------------------------------------
// Login

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    username: String,
}

#[derive(Template)]
#[template(path = "totp.html")]
struct TotpPage {
    layout: Layout,
}

fn pre_token(headers: &HeaderMap) -> Option<String> {
    ow_web::session::read_token(headers, PRE_COOKIE)
}

fn pre_cookie(state: &AppState, token: &str) -> HeaderValue {
    let secure = if state.settings.cookie_secure {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{PRE_COOKIE}={token}; Max-Age=3600; Path=/login; HttpOnly; SameSite=Strict{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn login_response(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    username: &str,
    error: Option<String>,
) -> Response {
    let (token, fresh) = match pre_token(headers) {
        Some(t) => (t, false),
        None => (new_token(), true),
    };
    let mut layout = Layout::new("工作人员登录");
    layout.csrf = csrf_token_for(&token);
    layout.error = error;
    let mut r = render_status(
        status,
        &LoginPage {
            layout,
            username: username.to_owned(),
        },
    );
    if fresh {
        r.headers_mut()
            .append(SET_COOKIE, pre_cookie(state, &token));
    }
    r
}

async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    login_response(&state, &headers, StatusCode::OK, "", None)
}

async fn login_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let username = field(&form, "username").unwrap_or("").trim().to_owned();
    let pre = pre_token(&headers);
    if let Err(e) = check_csrf(pre.as_deref(), field(&form, "csrf")) {
        return login_response(
            &state,
            &headers,
            StatusCode::BAD_REQUEST,
            &username,
            Some(e.message_zh()),
        );
    }
    let password = field(&form, "password").unwrap_or("");
    let now = state.now();
    match staff::check_password(
        &state.store,
        &state.hasher,
        &state.lockout,
        &username,
        password,
        now,
    )
    .await
    {
        Ok(id) => {
            let lifetime = TimeDelta::minutes(10);
            match staff::create_session(&state.store, &id, Stage::Password, now, lifetime).await {
                Ok(token) => {
                    let mut r = redirect("/login/totp");
                    r.headers_mut()
                        .append(SET_COOKIE, state.cookie.set_cookie_header(&token));
                    r
                }
                Err(e) => PageError::Internal(e.to_string()).into_response(),
            }
        }
        Err(LoginError::Internal(e)) => PageError::Internal(e.to_string()).into_response(),
        Err(e) => {
            tracing::info!("staff login refused at the password step");
            login_response(
                &state,
                &headers,
                StatusCode::UNAUTHORIZED,
                &username,
                Some(e.to_string()),
            )
        }
    }
}

async fn pending_session(state: &AppState, headers: &HeaderMap) -> Option<(StaffMember, String)> {
    let token = state.cookie.read_token(headers)?;
    match staff::session(&state.store, &token, state.now()).await {
        Ok(Some((staff, Stage::Password))) => Some((staff, token)),
        _ => None,
    }
}

async fn totp_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some((_, token)) = pending_session(&state, &headers).await else {
        return redirect("/login");
    };
    let mut layout = Layout::new("输入动态口令");
    layout.csrf = csrf_token_for(&token);
    render(&TotpPage { layout })
}

async fn totp_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let Some((member, token)) = pending_session(&state, &headers).await else {
        return redirect("/login");
    };
    if let Err(e) = check_form_csrf(&token, &form) {
        return e.into_response();
    }
    let now = state.now();
    let code = field(&form, "code").unwrap_or("");
    match staff::check_totp(
        &state.store,
        &state.pii,
        &state.lockout,
        &member.id,
        code,
        now,
    )
    .await
    {
        Ok(()) => {
            let _ = staff::end_session(&state.store, &token).await;
            let lifetime = TimeDelta::minutes(i64::from(state.settings.session_minutes));
            match staff::create_session(&state.store, &member.id, Stage::Full, now, lifetime).await
            {
                Ok(full) => {
                    tracing::info!(staff_id = %member.id, "staff signed in");
                    let mut r = redirect("/cases");
                    r.headers_mut()
                        .append(SET_COOKIE, state.cookie.set_cookie_header(&full));
                    r
                }
                Err(e) => PageError::Internal(e.to_string()).into_response(),
            }
        }
        Err(LoginError::Locked(l)) => {
            let _ = staff::end_session(&state.store, &token).await;
            let mut r = login_response(
                &state,
                &headers,
                StatusCode::UNAUTHORIZED,
                &member.username,
                Some(l.message_zh()),
            );
            r.headers_mut()
                .append(SET_COOKIE, state.cookie.clear_cookie_header());
            r
        }
        Err(LoginError::Internal(e)) => PageError::Internal(e.to_string()).into_response(),
        Err(e) => {
            let mut layout = Layout::new("输入动态口令");
            layout.csrf = csrf_token_for(&token);
            layout.error = Some(e.to_string());
            render_status(StatusCode::UNAUTHORIZED, &TotpPage { layout })
        }
    }
}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let Some(token) = state.cookie.read_token(&headers) else {
        return redirect("/login");
    };
    if let Err(e) = check_form_csrf(&token, &form) {
        return e.into_response();
    }
    let _ = staff::end_session(&state.store, &token).await;
    let mut r = redirect("/login");
    r.headers_mut()
        .append(SET_COOKIE, state.cookie.clear_cookie_header());
    r
}

// ---------------------------------------------------------------------------------------------
// Queue

struct CountView {
    code: &'static str,
    name: &'static str,
    count: i64,
    selected: bool,
}

struct QueueRow {
    no: String,
    business: &'static str,
    unit_code: String,
    status: &'static str,
    status_code: &'static str,
    received: String,
    updated: String,
}

#[derive(Template)]
#[template(path = "queue.html")]
struct QueuePage {
    layout: Layout,
    counts: Vec<CountView>,
    heading: String,
    rows: Vec<QueueRow>,
}

#[derive(Deserialize)]
struct QueueQuery {
    status: Option<String>,
}

async fn queue(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<QueueQuery>,
) -> Result<Response, PageError> {
    let auth = authed(&state, &headers).await?;
    let district = &auth.staff.district_code;
    let selected = match q.status.as_deref() {
        None | Some("") => Some(CaseStatus::Submitted),
        Some("all") => None,
        Some(code) => Some(CaseStatus::from_code(code).ok_or(PageError::NotFound)?),
    };
    let mut conn = state.store.reader().acquire().await.map_err(internal)?;
    let counts = cases::counts(&mut conn, district).await.map_err(internal)?;
    let list = cases::queue(&mut conn, district, selected)
        .await
        .map_err(internal)?;
    let page = QueuePage {
        layout: Layout::for_staff("业务队列", &auth),
        counts: counts
            .into_iter()
            .map(|(s, n)| CountView {
                code: s.code(),
                name: s.name_zh(),
                count: n,
                selected: Some(s) == selected,
            })
            .collect(),
        heading: selected.map_or("全部业务".to_owned(), |s| {
            format!("{}的业务", s.name_zh())
        }),
        rows: list
            .iter()
            .map(|c| QueueRow {
                no: c.application_no.clone(),
                business: c.business_zh(),
                unit_code: c.unit_code.clone().unwrap_or_default(),
                status: c.status.name_zh(),
                status_code: c.status.code(),
                received: fmt_ms(c.received_at_ms),
                updated: fmt_ms(c.updated_at_ms),
            })
            .collect(),
    };
    Ok(render(&page))
}

// ---------------------------------------------------------------------------------------------
// Case

struct PartyView {
    name: String,
    id_type: &'static str,
    id_number: String,
    phone: String,
    share: String,
}

struct MaterialView {
    id: String,
    checklist: String,
    file_name: String,
    media_type: String,
    size_kb: String,
    source: &'static str,
    received: String,
}

struct EventView {
    when: String,
    who: String,
    what: &'static str,
    to: String,
    reason: String,
    audit: String,
}

struct ActionView {
    code: &'static str,
    label: &'static str,
    needs_reason: bool,
    supplement: bool,
    danger: bool,
    prefill: String,
}

struct ChecklistItem {
    code: &'static str,
    name: &'static str,
    required: bool,
}

#[derive(Template)]
#[template(path = "case.html")]
struct CasePage {
    layout: Layout,
    no: String,
    business: &'static str,
    status: &'static str,
    status_code: &'static str,
    unit_code: String,
    unit_known: bool,
    given_certificate: String,
    price: String,
    submitted: String,
    received: String,
    reason: String,
    requested: Vec<String>,
    certificate_number: String,
    certificate_link: String,
    sellers: Vec<PartyView>,
    buyers: Vec<PartyView>,
    materials: Vec<MaterialView>,
    missing: Vec<String>,
    violations: Vec<RuleViolation>,
    show_rules: bool,
    events: Vec<EventView>,
    actions: Vec<ActionView>,
    checklist: Vec<ChecklistItem>,
}

fn id_type_zh(code: &str) -> &'static str {
    code.parse::<u16>()
        .ok()
        .and_then(ow_certificate::IdDocumentType::from_code)
        .map_or("其它", |t| t.name_zh())
}

fn checklist_name(business: &str, code: &str) -> String {
    BusinessType::from_code(business)
        .and_then(|b| b.required_materials().iter().find(|m| m.code == code))
        .map_or_else(|| code.to_owned(), |m| m.name_zh.to_owned())
}

fn yuan(fen: i64) -> String {
    format!("{}.{:02} 元", fen / 100, (fen % 100).abs())
}

async fn build_case_page(state: &AppState, auth: &Authed, no: &str) -> Result<CasePage, PageError> {
    let district = &auth.staff.district_code;
    let mut conn = state.store.reader().acquire().await.map_err(internal)?;
    let case = cases::get(&mut conn, district, no)
        .await
        .map_err(internal)?
        .ok_or(PageError::NotFound)?;
    let parties = cases::parties(&mut conn, &state.pii, no)
        .await
        .map_err(internal)?;
    let materials = cases::materials(&mut conn, &state.pii, no)
        .await
        .map_err(internal)?;
    let events = cases::events(&mut conn, &state.pii, no)
        .await
        .map_err(internal)?;
    let show_rules = matches!(
        case.status,
        CaseStatus::Submitted
            | CaseStatus::SupplementRequested
            | CaseStatus::Accepted
            | CaseStatus::Reviewed
    );
    let violations = if show_rules {
        rules::check_case(
            &mut conn,
            &state.pii,
            no,
            district,
            case.unit_code.as_deref(),
            &parties,
            state.now_ms(),
        )
        .await
        .map_err(internal)?
    } else {
        Vec::new()
    };
    let unit_known = match case.unit_code.as_deref() {
        Some(code) => register::unit(&mut conn, district, code)
            .await
            .map_err(internal)?
            .is_some(),
        None => false,
    };
    let party_view = |p: &cases::Party| PartyView {
        name: p.name_masked(),
        id_type: id_type_zh(&p.id_type),
        id_number: p.id_masked(),
        phone: p.phone_masked(),
        share: p.share.clone(),
    };
    let checklist: Vec<ChecklistItem> = BusinessType::from_code(&case.business_type)
        .map(|b| {
            b.required_materials()
                .iter()
                .map(|m| ChecklistItem {
                    code: m.code,
                    name: m.name_zh,
                    required: m.required,
                })
                .collect()
        })
        .unwrap_or_default();
    let missing = checklist
        .iter()
        .filter(|c| c.required && !materials.iter().any(|m| m.checklist_code == c.code))
        .map(|c| c.name.to_owned())
        .collect();
    let prefill = violations
        .iter()
        .map(RuleViolation::reason_zh)
        .collect::<Vec<_>>()
        .join("；");
    let actions = workflow::available(case.status, &auth.staff)
        .into_iter()
        .map(|a| ActionView {
            code: a.code(),
            label: a.label_zh(case.status),
            needs_reason: a.needs_reason(),
            supplement: a == Action::RequestSupplement,
            danger: a == Action::Refuse,
            prefill: if a == Action::Refuse {
                prefill.clone()
            } else {
                String::new()
            },
        })
        .collect();
    let status_zh = |s: &Option<String>| {
        s.as_deref()
            .and_then(CaseStatus::from_code)
            .map_or(String::new(), |s| s.name_zh().to_owned())
    };
    Ok(CasePage {
        layout: Layout::for_staff(format!("业务 {no}"), auth),
        no: case.application_no.clone(),
        business: case.business_zh(),
        status: case.status.name_zh(),
        status_code: case.status.code(),
        unit_code: case.unit_code.clone().unwrap_or_default(),
        unit_known,
        given_certificate: case.given_certificate_number.clone().unwrap_or_default(),
        price: yuan(case.price_fen),
        submitted: fmt_ms(case.submitted_at_ms),
        received: fmt_ms(case.received_at_ms),
        reason: case
            .status_reason_opened(&state.pii)
            .map_err(internal)?
            .unwrap_or_default(),
        requested: case
            .requested_materials
            .iter()
            .map(|c| checklist_name(&case.business_type, c))
            .collect(),
        certificate_link: case
            .certificate_number
            .as_deref()
            .map(|n| format!("/certificates?no={}", url_encode(n)))
            .unwrap_or_default(),
        certificate_number: case.certificate_number.clone().unwrap_or_default(),
        sellers: parties
            .iter()
            .filter(|p| p.role == cases::SELLER)
            .map(party_view)
            .collect(),
        buyers: parties
            .iter()
            .filter(|p| p.role == cases::BUYER)
            .map(party_view)
            .collect(),
        materials: materials
            .iter()
            .map(|m| MaterialView {
                id: m.id.clone(),
                checklist: checklist_name(&case.business_type, &m.checklist_code),
                file_name: m.file_name.clone(),
                media_type: m.media_type.clone(),
                size_kb: format!("{:.1} KB", m.size as f64 / 1024.0),
                source: if m.source == "supplement" {
                    "补正"
                } else {
                    "申请"
                },
                received: fmt_ms(m.received_at_ms),
            })
            .collect(),
        missing,
        violations,
        show_rules,
        events: events
            .iter()
            .map(|e| EventView {
                when: fmt_ms(e.at_ms),
                who: e
                    .staff_name
                    .clone()
                    .unwrap_or_else(|| "网上申请（系统接收）".to_owned()),
                what: cases::action_zh(&e.action),
                to: status_zh(&e.to_status),
                reason: e.reason.clone().unwrap_or_default(),
                audit: e
                    .audit_index
                    .map(|i| format!("审计日志第{i}条"))
                    .unwrap_or_default(),
            })
            .collect(),
        actions,
        checklist,
    })
}

#[derive(Deserialize)]
struct CaseQuery {
    done: Option<String>,
}

async fn case_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(no): Path<String>,
    Query(q): Query<CaseQuery>,
) -> Result<Response, PageError> {
    let auth = authed(&state, &headers).await?;
    let mut page = build_case_page(&state, &auth, &no).await?;
    if let Some(done) = q.done.as_deref().and_then(Action::from_code) {
        page.layout.notice = Some(format!("已办理：{}", page_done_label(done)));
    }
    Ok(render(&page))
}

fn page_done_label(a: Action) -> &'static str {
    match a {
        Action::Accept => "受理",
        Action::Refuse => "不予受理/不予登记",
        Action::RequestSupplement => "要求补正（已通知申请人）",
        Action::Review => "审核通过",
        Action::Record => "登簿",
        Action::PrepareCertificate => "缮证",
        Action::Issue => "发证，业务已办结",
    }
}

async fn case_action(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((no, action)): Path<(String, String)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let auth = authed(&state, &headers).await?;
    check_form_csrf(&auth.token, &form)?;
    let action = Action::from_code(&action).ok_or(PageError::NotFound)?;
    let input = ActionInput {
        reason: field(&form, "reason").map(str::to_owned),
        requested_materials: fields(&form, "materials")
            .into_iter()
            .map(str::to_owned)
            .collect(),
    };
    match workflow::perform(&state, &auth.staff, &no, action, input).await {
        Ok(_) => Ok(redirect(&format!(
            "/cases/{}?done={}",
            url_encode(&no),
            action.code()
        ))),
        Err(ActionError::NotFound) => Err(PageError::NotFound),
        Err(e) => {
            let status = match &e {
                ActionError::Forbidden { .. } => StatusCode::FORBIDDEN,
                ActionError::ReasonRequired | ActionError::MaterialsRequired => {
                    StatusCode::BAD_REQUEST
                }
                ActionError::Internal(cause) => {
                    tracing::error!(application_no = %no, error = %cause, "case action failed");
                    StatusCode::INTERNAL_SERVER_ERROR
                }
                _ => StatusCode::CONFLICT,
            };
            let mut page = build_case_page(&state, &auth, &no).await?;
            page.layout.error = Some(format!(
                "未能{}：{e}",
                action.label_zh(CaseStatus::Submitted)
            ));
            if let ActionError::Rules(v) = &e {
                page.violations = v.clone();
                page.show_rules = true;
            }
            Ok(render_status(status, &page))
        }
    }
}

async fn material(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((no, id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let auth = authed(&state, &headers).await?;
    let mut conn = state.store.reader().acquire().await.map_err(internal)?;
    cases::get(&mut conn, &auth.staff.district_code, &no)
        .await
        .map_err(internal)?
        .ok_or(PageError::NotFound)?;
    let materials = cases::materials(&mut conn, &state.pii, &no)
        .await
        .map_err(internal)?;
    drop(conn);
    let m = materials
        .into_iter()
        .find(|m| m.id == id)
        .ok_or(PageError::NotFound)?;
    // Opened as a stream; every chunk is authenticated (a replaced or altered file fails).
    let (body, len) = crate::materials::body(&state, &m.id)
        .await
        .map_err(|e| PageError::Internal(format!("material {} of {no}: {e}", m.id)))?;
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(axum::http::header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_str(&m.media_type)
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"material\"; filename*=UTF-8''{}",
        url_encode(&m.file_name)
    )) {
        h.insert(CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

// ---------------------------------------------------------------------------------------------
// Register

struct UnitRow {
    code: String,
    location: String,
    area: String,
}

#[derive(Template)]
#[template(path = "units.html")]
struct UnitsPage {
    layout: Layout,
    units: Vec<UnitRow>,
}

async fn units_page(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let auth = authed(&state, &headers).await?;
    let mut conn = state.store.reader().acquire().await.map_err(internal)?;
    let units = register::units(&mut conn, &auth.staff.district_code)
        .await
        .map_err(internal)?;
    Ok(render(&UnitsPage {
        layout: Layout::for_staff("登记簿", &auth),
        units: units
            .into_iter()
            .map(|u| UnitRow {
                code: u.unit_code,
                location: u.location,
                area: u.area_m2,
            })
            .collect(),
    }))
}

struct RightView {
    status: &'static str,
    current: bool,
    registration_type: &'static str,
    application_no: String,
    recorded: String,
    ended: String,
    holders: Vec<PartyView>,
}

struct SeizureView {
    kind: &'static str,
    court: String,
    document_no: String,
    term: String,
    in_force: bool,
}

struct MortgageView {
    mortgagee: String,
    method: &'static str,
    amount: String,
    term: String,
    current: bool,
}

struct CertView {
    number: String,
    link: String,
    status: &'static str,
    valid: bool,
    issued: String,
    holders: String,
    cancelled: String,
}

#[derive(Template)]
#[template(path = "unit.html")]
struct UnitPage {
    layout: Layout,
    unit_code: String,
    location: String,
    area: String,
    usage: String,
    right_type: &'static str,
    right_nature: String,
    use_term: String,
    rights: Vec<RightView>,
    seizures: Vec<SeizureView>,
    mortgages: Vec<MortgageView>,
    certificates: Vec<CertView>,
}

fn cert_view(c: &certificates::CertificateRow) -> CertView {
    CertView {
        link: format!("/certificates?no={}", url_encode(&c.number)),
        number: c.number.clone(),
        status: c.status_zh(),
        valid: c.status == certificates::VALID,
        issued: fmt_ms(c.issued_at_ms),
        holders: c.holders_masked.join("、"),
        cancelled: match (c.cancelled_at_ms, &c.cancelled_reason) {
            (Some(at), Some(r)) => format!("{} {}", fmt_ms(at), r),
            _ => String::new(),
        },
    }
}

async fn unit_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Result<Response, PageError> {
    let auth = authed(&state, &headers).await?;
    let mut conn = state.store.reader().acquire().await.map_err(internal)?;
    let unit = register::unit(&mut conn, &auth.staff.district_code, &code)
        .await
        .map_err(internal)?
        .ok_or(PageError::NotFound)?;
    let now = state.now_ms();
    let rights = register::rights(&mut conn, &state.pii, &code)
        .await
        .map_err(internal)?;
    let seizures = register::seizures(&mut conn, &code)
        .await
        .map_err(internal)?;
    let mortgages = register::mortgages(&mut conn, &code)
        .await
        .map_err(internal)?;
    let certs = certificates::by_unit(&mut conn, &code)
        .await
        .map_err(internal)?;
    let page = UnitPage {
        layout: Layout::for_staff(format!("不动产单元 {code}"), &auth),
        right_type: unit.right_type_zh(),
        unit_code: unit.unit_code,
        location: unit.location,
        area: unit.area_m2,
        usage: unit.usage,
        right_nature: unit.right_nature,
        use_term: unit.use_term,
        rights: rights
            .iter()
            .map(|r| RightView {
                status: if r.status == register::CURRENT {
                    "现势"
                } else {
                    "历史"
                },
                current: r.status == register::CURRENT,
                registration_type: r.registration_type_zh(),
                application_no: r.application_no.clone().unwrap_or_default(),
                recorded: fmt_ms(r.recorded_at_ms),
                ended: r.ended_at_ms.map(fmt_ms).unwrap_or_default(),
                holders: r
                    .holders
                    .iter()
                    .map(|h| PartyView {
                        name: h.name_masked(),
                        id_type: id_type_zh(&h.id_type),
                        id_number: h.id_masked(),
                        phone: String::new(),
                        share: h.share.clone(),
                    })
                    .collect(),
            })
            .collect(),
        seizures: seizures
            .iter()
            .map(|s| SeizureView {
                kind: s.kind_zh(),
                court: s.court.clone(),
                document_no: s.document_no.clone(),
                term: format!("{} 至 {}", fmt_ms(s.starts_at_ms), fmt_ms(s.ends_at_ms)),
                in_force: s.in_force(now),
            })
            .collect(),
        mortgages: mortgages
            .iter()
            .map(|m| MortgageView {
                mortgagee: m.mortgagee.clone(),
                method: if m.method == 2 {
                    "最高额抵押"
                } else {
                    "一般抵押"
                },
                amount: yuan(m.amount_fen),
                term: format!("{} 至 {}", fmt_ms(m.starts_at_ms), fmt_ms(m.ends_at_ms)),
                current: m.status == register::CURRENT,
            })
            .collect(),
        certificates: certs.iter().map(cert_view).collect(),
    };
    Ok(render(&page))
}

// ---------------------------------------------------------------------------------------------
// Certificates

#[derive(Template)]
#[template(path = "certificate.html")]
struct CertificatePage {
    layout: Layout,
    cert: CertView,
    unit_code: String,
    location: String,
    application_no: String,
    print_link: String,
}

#[derive(Deserialize)]
struct CertQuery {
    no: Option<String>,
}

async fn certificate_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CertQuery>,
) -> Result<Response, PageError> {
    let auth = authed(&state, &headers).await?;
    let no = q.no.unwrap_or_default();
    let mut conn = state.store.reader().acquire().await.map_err(internal)?;
    let c = certificates::get(&mut conn, &auth.staff.district_code, &no)
        .await
        .map_err(internal)?
        .ok_or(PageError::NotFound)?;
    Ok(render(&CertificatePage {
        layout: Layout::for_staff(format!("证书 {}", c.number), &auth),
        print_link: format!("/certificates/print?no={}", url_encode(&c.number)),
        unit_code: c.unit_code.clone(),
        location: c.location.clone(),
        application_no: c.application_no.clone().unwrap_or_default(),
        cert: cert_view(&c),
    }))
}

async fn certificate_print(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CertQuery>,
) -> Result<Response, PageError> {
    let auth = authed(&state, &headers).await?;
    let no = q.no.unwrap_or_default();
    let mut conn = state.store.reader().acquire().await.map_err(internal)?;
    let (signed, _code) =
        certificates::signed(&mut conn, &state.pii, &auth.staff.district_code, &no)
            .await
            .map_err(internal)?
            .ok_or(PageError::NotFound)?;
    tracing::info!(staff_id = %auth.staff.id, "certificate printed");
    let html = ow_certificate::render_html(&signed, &state.settings.portal_verify_url)
        .map_err(internal)?;
    Ok(Html(html).into_response())
}

// ---------------------------------------------------------------------------------------------
// Staff administration

struct StaffRow {
    username: String,
    display_name: String,
    roles: String,
}

struct RoleOption {
    code: &'static str,
    name: &'static str,
}

struct Credentials {
    username: String,
    password: String,
    totp: String,
    otpauth: String,
}

#[derive(Template)]
#[template(path = "staff.html")]
struct StaffPage {
    layout: Layout,
    staff: Vec<StaffRow>,
    roles: Vec<RoleOption>,
    created: Option<Credentials>,
}

async fn staff_page_inner(
    state: &AppState,
    auth: &Authed,
    created: Option<Credentials>,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let list = staff::list_district(&state.store, &auth.staff.district_code)
        .await
        .map_err(internal)?;
    let mut layout = Layout::for_staff("工作人员管理", auth);
    layout.error = error;
    Ok(render_status(
        status,
        &StaffPage {
            layout,
            staff: list
                .iter()
                .map(|m| StaffRow {
                    username: m.username.clone(),
                    display_name: m.display_name.clone(),
                    roles: m.roles_zh(),
                })
                .collect(),
            roles: Role::ALL
                .iter()
                .map(|r| RoleOption {
                    code: r.code(),
                    name: r.name_zh(),
                })
                .collect(),
            created,
        },
    ))
}

fn require_admin(auth: &Authed) -> Result<(), PageError> {
    if auth.staff.has(Role::DistrictAdmin) {
        Ok(())
    } else {
        Err(PageError::Forbidden(
            "只有区县管理员可以管理工作人员账号".into(),
        ))
    }
}

async fn staff_page(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let auth = authed(&state, &headers).await?;
    require_admin(&auth)?;
    staff_page_inner(&state, &auth, None, None, StatusCode::OK).await
}

async fn staff_create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let auth = authed(&state, &headers).await?;
    check_form_csrf(&auth.token, &form)?;
    require_admin(&auth)?;
    let roles: Vec<Role> = fields(&form, "roles")
        .into_iter()
        .filter_map(Role::from_code)
        .collect();
    let new = NewStaff {
        username: field(&form, "username").unwrap_or("").to_owned(),
        display_name: field(&form, "display_name").unwrap_or("").to_owned(),
        district_code: auth.staff.district_code.clone(),
        roles,
        password: None,
    };
    match staff::create_staff(
        &state.store,
        &state.pii,
        &state.hasher,
        state.settings.login.min_password_length,
        new,
        Some(&auth.staff.id),
        state.now_ms(),
    )
    .await
    {
        Ok(c) => {
            let creds = Credentials {
                username: c.member.username,
                password: c.password,
                totp: c.totp_base32,
                otpauth: c.otpauth_uri,
            };
            staff_page_inner(&state, &auth, Some(creds), None, StatusCode::OK).await
        }
        Err(StaffError::Other(e)) => Err(internal(e)),
        Err(e) => {
            staff_page_inner(
                &state,
                &auth,
                None,
                Some(e.to_string()),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
    }
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
