//! Server-rendered pages (askama templates in `templates/`), in Chinese, for phones, without
//! JavaScript: plain forms, POST-redirect-GET, a CSRF token in every POST form.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, FromRequestParts, Multipart, Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use ow_domain::{CaseStatus, Material};
use serde::Deserialize;

use crate::accounts::{self, LoginError, RegisterError, RegisterInput};
use crate::app::AppState;
use crate::applications::{
    self, ApplicationForm, BUSINESS, MAX_PARTIES, MaterialView, PartyInput, Side, SubmitError,
};
use crate::certificates::{self, VerifyResult};
use crate::error::FieldError;
use crate::files::check_all;
use crate::util::{fmt_fen, fmt_ms};
use crate::web::{
    Citizen, MaybeCitizen, PageError, check_form_csrf, form_csrf, read_multipart, with_cookie,
};

/// The frame every page shares.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// Page title.
    pub title: String,
    /// Whether a citizen is signed in (navigation, logout form).
    pub signed_in: bool,
    /// CSRF token for the page's forms.
    pub csrf: String,
    /// Form errors for the summary at the top.
    pub errors: Vec<FieldError>,
    /// A success message.
    pub notice: Option<String>,
}

impl Layout {
    /// Whether `field` has an error.
    pub fn has_error(&self, field: &str) -> bool {
        self.errors.iter().any(|e| e.field == field)
    }
}

type PageResult = Result<Response, PageError>;

fn layout(title: &str, session: Option<&accounts::Session>, csrf: String) -> Layout {
    Layout {
        title: title.to_owned(),
        signed_in: session.is_some(),
        csrf,
        errors: Vec::new(),
        notice: None,
    }
}

fn render<T: Template>(t: &T, status: StatusCode) -> PageResult {
    Ok((status, Html(t.render()?)).into_response())
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

fn mb(bytes: u64) -> String {
    let tenths = (bytes * 10 + 524_288) / 1_048_576;
    if tenths.is_multiple_of(10) {
        format!("{}", tenths / 10)
    } else {
        format!("{}.{}", tenths / 10, tenths % 10)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    layout: Layout,
    message: &'a str,
}

/// The HTML of an error page.
pub fn error_page(title: &str, message: &str) -> String {
    let page = ErrorPage {
        layout: layout(title, None, String::new()),
        message,
    };
    page.render()
        .unwrap_or_else(|_| format!("<!DOCTYPE html><title>{title}</title><p>{message}</p>"))
}

/// The client's address (when the server was started with connect info).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

// ---------------------------------------------------------------- home, accounts

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage {
    layout: Layout,
}

/// `GET /`.
pub async fn index(
    State(app): State<AppState>,
    MaybeCitizen(s): MaybeCitizen,
    headers: HeaderMap,
) -> PageResult {
    let (csrf, cookie) = form_csrf(&app, s.as_ref(), &headers);
    let page = IndexPage {
        layout: layout("首页", s.as_ref(), csrf),
    };
    Ok(with_cookie(render(&page, StatusCode::OK)?, cookie))
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage {
    layout: Layout,
    name: String,
    id_number: String,
    phone: String,
    password_hint: String,
}

fn password_hint(app: &crate::app::App) -> String {
    format!(
        "至少{}个字符，包含小写字母、大写字母、数字、符号中的至少{}类",
        app.password_policy.min_length, app.password_policy.min_classes
    )
}

/// `GET /register`.
pub async fn register_form(
    State(app): State<AppState>,
    MaybeCitizen(s): MaybeCitizen,
    headers: HeaderMap,
) -> PageResult {
    if s.is_some() {
        return Ok(see_other("/applications"));
    }
    let (csrf, cookie) = form_csrf(&app, None, &headers);
    let page = RegisterPage {
        layout: layout("注册", None, csrf),
        name: String::new(),
        id_number: String::new(),
        phone: String::new(),
        password_hint: password_hint(&app),
    };
    Ok(with_cookie(render(&page, StatusCode::OK)?, cookie))
}

/// The registration form.
#[derive(Debug, Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    id_number: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

/// `POST /register`.
pub async fn register(
    State(app): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<RegisterForm>,
) -> PageResult {
    check_form_csrf(&app, None, &headers, Some(&f.csrf))?;
    let input = RegisterInput {
        name: f.name.clone(),
        id_number: f.id_number.clone(),
        phone: f.phone.clone(),
        password: f.password,
        password_confirm: f.password_confirm,
    };
    match accounts::register(&app, &input, ow_store::now_ms()).await {
        Ok(_) => Ok(see_other("/login?registered=1")),
        Err(RegisterError::Invalid(errors)) => {
            let (csrf, cookie) = form_csrf(&app, None, &headers);
            let mut l = layout("注册", None, csrf);
            l.errors = errors;
            let page = RegisterPage {
                layout: l,
                name: f.name,
                id_number: f.id_number,
                phone: f.phone,
                password_hint: password_hint(&app),
            };
            Ok(with_cookie(
                render(&page, StatusCode::UNPROCESSABLE_ENTITY)?,
                cookie,
            ))
        }
        Err(RegisterError::Internal(e)) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    login: String,
}

/// `GET /login`.
pub async fn login_form(
    State(app): State<AppState>,
    MaybeCitizen(s): MaybeCitizen,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    if s.is_some() {
        return Ok(see_other("/applications"));
    }
    let (csrf, cookie) = form_csrf(&app, None, &headers);
    let mut l = layout("登录", None, csrf);
    if q.contains_key("registered") {
        l.notice = Some("注册成功，请登录".into());
    }
    let page = LoginPage {
        layout: l,
        login: String::new(),
    };
    Ok(with_cookie(render(&page, StatusCode::OK)?, cookie))
}

/// The login form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
}

/// `POST /login`.
pub async fn login(
    State(app): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> PageResult {
    check_form_csrf(&app, None, &headers, Some(&f.csrf))?;
    match accounts::login(&app, &f.login, &f.password, chrono::Utc::now()).await {
        Ok(session) => {
            let mut r = see_other("/applications");
            r.headers_mut()
                .append(SET_COOKIE, app.cookie.set_cookie_header(&session.token));
            Ok(r)
        }
        Err(LoginError::Internal(e)) => Err(e.into()),
        Err(e) => {
            let (csrf, cookie) = form_csrf(&app, None, &headers);
            let mut l = layout("登录", None, csrf);
            l.errors = vec![FieldError::new("login", e.message_zh())];
            let page = LoginPage {
                layout: l,
                login: f.login,
            };
            let status = if matches!(e, LoginError::Locked(_)) {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::UNAUTHORIZED
            };
            Ok(with_cookie(render(&page, status)?, cookie))
        }
    }
}

/// A form with only the CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`.
pub async fn logout(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Form(f): Form<CsrfOnly>,
) -> PageResult {
    check_form_csrf(&app, Some(&s), &headers, Some(&f.csrf))?;
    accounts::logout(&app, &s.token).await?;
    let mut r = see_other("/");
    r.headers_mut()
        .append(SET_COOKIE, app.cookie.clear_cookie_header());
    Ok(r)
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    layout: Layout,
    account: accounts::AccountView,
}

/// `GET /account`.
pub async fn account(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
) -> PageResult {
    let (csrf, _) = form_csrf(&app, Some(&s), &headers);
    let page = AccountPage {
        layout: layout("我的账户", Some(&s), csrf),
        account: accounts::view(&app, &s.account_id).await?,
    };
    render(&page, StatusCode::OK)
}

// ---------------------------------------------------------------- applying

#[derive(Template)]
#[template(path = "apply.html")]
struct ApplyPage {
    layout: Layout,
    checklist: &'static [Material],
    max_mb: String,
}

/// `GET /apply`.
pub async fn apply(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
) -> PageResult {
    let (csrf, _) = form_csrf(&app, Some(&s), &headers);
    let page = ApplyPage {
        layout: layout(BUSINESS.name_zh(), Some(&s), csrf),
        checklist: BUSINESS.required_materials(),
        max_mb: mb(app.upload_limits.max_file_bytes),
    };
    render(&page, StatusCode::OK)
}

/// `POST /drafts`: starts a draft.
pub async fn create_draft(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Form(f): Form<CsrfOnly>,
) -> PageResult {
    check_form_csrf(&app, Some(&s), &headers, Some(&f.csrf))?;
    let id = applications::create_draft(&app, &s.account_id, ow_store::now_ms()).await?;
    Ok(see_other(&format!("/drafts/{id}/unit")))
}

async fn load_draft(
    app: &crate::app::App,
    s: &accounts::Session,
    id: &str,
) -> Result<(applications::ApplicationRow, ApplicationForm), PageError> {
    let row = applications::get_draft(app, &s.account_id, id)
        .await?
        .ok_or(PageError::NotFound)?;
    let form = applications::open_form(app, &row)?;
    Ok((row, form))
}

#[derive(Template)]
#[template(path = "draft_unit.html")]
struct UnitPage {
    layout: Layout,
    draft_id: String,
    step: usize,
    form: ApplicationForm,
}

/// `GET /drafts/{id}/unit`.
pub async fn draft_unit(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> PageResult {
    let (_, form) = load_draft(&app, &s, &id).await?;
    let (csrf, _) = form_csrf(&app, Some(&s), &headers);
    let page = UnitPage {
        layout: layout("不动产与成交价格", Some(&s), csrf),
        draft_id: id,
        step: 1,
        form,
    };
    render(&page, StatusCode::OK)
}

/// The unit form.
#[derive(Debug, Deserialize)]
pub struct UnitForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    unit_code: String,
    #[serde(default)]
    certificate_number: String,
    #[serde(default)]
    price_yuan: String,
}

/// `POST /drafts/{id}/unit`: saves, then checks.
pub async fn save_unit(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<UnitForm>,
) -> PageResult {
    check_form_csrf(&app, Some(&s), &headers, Some(&f.csrf))?;
    let (_, mut form) = load_draft(&app, &s, &id).await?;
    form.unit_code = f.unit_code.trim().to_owned();
    form.certificate_number = f.certificate_number.trim().to_owned();
    form.price_yuan = f.price_yuan.trim().to_owned();
    applications::save_draft(&app, &s.account_id, &id, &form, ow_store::now_ms()).await?;
    let mut errors = applications::check_unit(&form, &app)
        .err()
        .unwrap_or_default();
    if let Err(e) = applications::parse_price_fen(&form.price_yuan) {
        errors.push(e);
    }
    if errors.is_empty() {
        return Ok(see_other(&format!("/drafts/{id}/parties")));
    }
    let (csrf, _) = form_csrf(&app, Some(&s), &headers);
    let mut l = layout("不动产与成交价格", Some(&s), csrf);
    l.errors = errors;
    render(
        &UnitPage {
            layout: l,
            draft_id: id,
            step: 1,
            form,
        },
        StatusCode::UNPROCESSABLE_ENTITY,
    )
}

struct PartyRow {
    input: PartyInput,
    f_name: String,
    f_id: String,
    f_phone: String,
    f_share: String,
}

struct SideView {
    key: &'static str,
    title: &'static str,
    rows: Vec<PartyRow>,
    can_add: bool,
}

fn side_view(side: Side, rows: &[PartyInput]) -> SideView {
    let key = side.key();
    SideView {
        key,
        title: side.name_zh(),
        rows: rows
            .iter()
            .enumerate()
            .map(|(i, r)| PartyRow {
                input: r.clone(),
                f_name: format!("{key}_{i}_name"),
                f_id: format!("{key}_{i}_id_number"),
                f_phone: format!("{key}_{i}_phone"),
                f_share: format!("{key}_{i}_share"),
            })
            .collect(),
        can_add: rows.len() < MAX_PARTIES,
    }
}

#[derive(Template)]
#[template(path = "draft_parties.html")]
struct PartiesPage {
    layout: Layout,
    draft_id: String,
    step: usize,
    sellers: Vec<PartyInput>,
    buyers: Vec<PartyInput>,
    sides: Vec<SideView>,
}

fn parties_page(l: Layout, id: String, form: &ApplicationForm) -> PartiesPage {
    let mut sellers = form.sellers.clone();
    let mut buyers = form.buyers.clone();
    if sellers.is_empty() {
        sellers.push(PartyInput::default());
    }
    if buyers.is_empty() {
        buyers.push(PartyInput::default());
    }
    PartiesPage {
        layout: l,
        draft_id: id,
        step: 2,
        sides: vec![
            side_view(Side::Seller, &sellers),
            side_view(Side::Buyer, &buyers),
        ],
        sellers,
        buyers,
    }
}

/// `GET /drafts/{id}/parties`.
pub async fn draft_parties(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> PageResult {
    let (_, form) = load_draft(&app, &s, &id).await?;
    let (csrf, _) = form_csrf(&app, Some(&s), &headers);
    render(
        &parties_page(layout("买卖双方", Some(&s), csrf), id, &form),
        StatusCode::OK,
    )
}

fn rows_from(fields: &HashMap<String, String>, side: Side) -> Vec<PartyInput> {
    let key = side.key();
    let n = fields
        .get(&format!("{key}_rows"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_PARTIES);
    let get = |i: usize, f: &str| {
        fields
            .get(&format!("{key}_{i}_{f}"))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    (0..n)
        .map(|i| PartyInput {
            name: get(i, "name"),
            id_number: get(i, "id_number"),
            phone: get(i, "phone"),
            share: get(i, "share"),
        })
        .collect()
}

/// `POST /drafts/{id}/parties`: saves; "再添加一位" adds a row; "保存并继续" checks both sides.
pub async fn save_parties(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(fields): Form<HashMap<String, String>>,
) -> PageResult {
    check_form_csrf(
        &app,
        Some(&s),
        &headers,
        fields.get("csrf").map(String::as_str),
    )?;
    let (_, mut form) = load_draft(&app, &s, &id).await?;
    form.sellers = rows_from(&fields, Side::Seller);
    form.buyers = rows_from(&fields, Side::Buyer);
    let action = fields.get("action").map(String::as_str).unwrap_or("save");
    match action {
        "add_seller" if form.sellers.len() < MAX_PARTIES => {
            form.sellers.push(PartyInput::default())
        }
        "add_buyer" if form.buyers.len() < MAX_PARTIES => form.buyers.push(PartyInput::default()),
        _ => {}
    }
    applications::save_draft(&app, &s.account_id, &id, &form, ow_store::now_ms()).await?;
    if action.starts_with("add_") {
        return Ok(see_other(&format!("/drafts/{id}/parties")));
    }
    let mut errors = Vec::new();
    if let Err(e) = applications::check_side(&form.sellers, Side::Seller) {
        errors.extend(e);
    }
    if let Err(e) = applications::check_side(&form.buyers, Side::Buyer) {
        errors.extend(e);
    }
    if errors.is_empty() {
        return Ok(see_other(&format!("/drafts/{id}/materials")));
    }
    let (csrf, _) = form_csrf(&app, Some(&s), &headers);
    let mut l = layout("买卖双方", Some(&s), csrf);
    l.errors = errors;
    render(
        &parties_page(l, id, &form),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
}

struct FileRow {
    id: String,
    file_name: String,
    size_text: String,
}

struct MaterialItem {
    code: &'static str,
    name_zh: &'static str,
    required: bool,
    files: Vec<FileRow>,
}

#[derive(Template)]
#[template(path = "draft_materials.html")]
struct MaterialsPage {
    layout: Layout,
    draft_id: String,
    step: usize,
    items: Vec<MaterialItem>,
    max_mb: String,
}

fn size_text(size: i64) -> String {
    let size = u64::try_from(size).unwrap_or(0);
    if size < 1024 * 1024 {
        format!("{} KB", size.div_ceil(1024))
    } else {
        format!("{} MB", mb(size))
    }
}

async fn materials_page(
    app: &crate::app::App,
    l: Layout,
    id: String,
) -> Result<MaterialsPage, PageError> {
    let have = applications::materials(app, &id).await?;
    let items = BUSINESS
        .required_materials()
        .iter()
        .map(|m| MaterialItem {
            code: m.code,
            name_zh: m.name_zh,
            required: m.required,
            files: have
                .iter()
                .filter(|h| h.checklist_code == m.code)
                .map(|h| FileRow {
                    id: h.id.clone(),
                    file_name: h.file_name.clone(),
                    size_text: size_text(h.size),
                })
                .collect(),
        })
        .collect();
    Ok(MaterialsPage {
        layout: l,
        draft_id: id,
        step: 3,
        items,
        max_mb: mb(app.upload_limits.max_file_bytes),
    })
}

/// `GET /drafts/{id}/materials`.
pub async fn draft_materials(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> PageResult {
    load_draft(&app, &s, &id).await?;
    let (csrf, _) = form_csrf(&app, Some(&s), &headers);
    let page = materials_page(&app, layout("上传材料", Some(&s), csrf), id).await?;
    render(&page, StatusCode::OK)
}

/// `POST /drafts/{id}/materials` (multipart): one or more files, each in a field named by its
/// checklist code. Every file is checked first; one refusal stores nothing.
pub async fn upload_materials(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path(id): Path<String>,
    mp: Multipart,
) -> PageResult {
    let read = read_multipart(mp, app.upload_limits.max_file_bytes).await;
    let (fields, files) = match &read {
        Ok((fields, files)) => (fields.clone(), files.clone()),
        Err(_) => (HashMap::new(), Vec::new()),
    };
    if read.is_ok() {
        check_form_csrf(
            &app,
            Some(&s),
            &headers,
            fields.get("csrf").map(String::as_str),
        )?;
    }
    load_draft(&app, &s, &id).await?;
    let result = match read {
        Err(e) => Err(FieldError::new("file", e.message_zh())),
        Ok(_) if files.is_empty() => Err(FieldError::new("file", "请选择要上传的文件")),
        Ok(_) => match files
            .iter()
            .find(|f| !applications::is_checklist_code(&f.field))
        {
            Some(f) => Err(FieldError::new(
                "file",
                format!("未知的材料类型：{}", f.field),
            )),
            None => {
                let code = files.first().map(|f| f.field.clone()).unwrap_or_default();
                check_all(files, &app.upload_limits)
                    .map_err(|e| FieldError::new(code, e.message_zh()))
            }
        },
    };
    let result = match result {
        Ok(accepted) => applications::check_draft_capacity(&app, &id, &accepted)
            .await?
            .map(|()| accepted),
        Err(e) => Err(e),
    };
    match result {
        Ok(accepted) => {
            if !applications::add_draft_materials(
                &app,
                &s.account_id,
                &id,
                accepted,
                ow_store::now_ms(),
            )
            .await?
            {
                return Err(PageError::NotFound);
            }
            Ok(see_other(&format!("/drafts/{id}/materials")))
        }
        Err(err) => {
            let (csrf, _) = form_csrf(&app, Some(&s), &headers);
            let mut l = layout("上传材料", Some(&s), csrf);
            l.errors = vec![err];
            let page = materials_page(&app, l, id).await?;
            render(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
    }
}

/// `POST /drafts/{id}/materials/{material}/delete`.
pub async fn delete_material(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path((id, material)): Path<(String, String)>,
    Form(f): Form<CsrfOnly>,
) -> PageResult {
    check_form_csrf(&app, Some(&s), &headers, Some(&f.csrf))?;
    if !applications::remove_draft_material(&app, &s.account_id, &id, &material).await? {
        return Err(PageError::NotFound);
    }
    Ok(see_other(&format!("/drafts/{id}/materials")))
}

/// `POST /drafts/{id}/delete`.
pub async fn delete_draft(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> PageResult {
    check_form_csrf(&app, Some(&s), &headers, Some(&f.csrf))?;
    if !applications::delete_draft(&app, &s.account_id, &id).await? {
        return Err(PageError::NotFound);
    }
    Ok(see_other("/applications"))
}

struct PartyLine {
    role: &'static str,
    name: String,
    id_number: String,
    share: String,
}

#[derive(Template)]
#[template(path = "draft_check.html")]
struct CheckPage {
    layout: Layout,
    draft_id: String,
    step: usize,
    business: &'static str,
    unit_code: String,
    certificate_number: String,
    price: String,
    parties: Vec<PartyLine>,
    materials: Vec<MaterialView>,
    ready: bool,
}

async fn check_page(
    app: &crate::app::App,
    s: &accounts::Session,
    headers: &HeaderMap,
    id: String,
    extra_errors: Vec<FieldError>,
) -> Result<CheckPage, PageError> {
    let (_, form) = load_draft(app, s, &id).await?;
    let materials = applications::materials(app, &id).await?;
    let mut errors = applications::check_form(&form, app)
        .err()
        .unwrap_or_default();
    for m in applications::missing_materials(&materials) {
        errors.push(FieldError::new(
            format!("material_{}", m.code),
            format!("请上传“{}”", m.name_zh),
        ));
    }
    for e in extra_errors {
        if !errors.contains(&e) {
            errors.push(e);
        }
    }
    let mut parties = Vec::new();
    for (role, rows) in [("出卖人", &form.sellers), ("买受人", &form.buyers)] {
        for p in rows
            .iter()
            .filter(|p| !p.name.trim().is_empty() || !p.id_number.trim().is_empty())
        {
            parties.push(PartyLine {
                role,
                name: ow_domain::mask::mask_name(p.name.trim()),
                id_number: ow_domain::mask::mask_id_number(p.id_number.trim()),
                share: p.share.clone(),
            });
        }
    }
    let (csrf, _) = form_csrf(app, Some(s), headers);
    let ready = errors.is_empty();
    let mut l = layout("核对信息", Some(s), csrf);
    l.errors = errors;
    Ok(CheckPage {
        layout: l,
        draft_id: id,
        step: 4,
        business: BUSINESS.name_zh(),
        unit_code: form.unit_code.clone(),
        certificate_number: form.certificate_number.clone(),
        price: applications::parse_price_fen(&form.price_yuan)
            .map(fmt_fen)
            .unwrap_or_else(|_| form.price_yuan.clone()),
        parties,
        materials,
        ready,
    })
}

/// `GET /drafts/{id}/check`: 核对信息, personal data masked.
pub async fn draft_check(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> PageResult {
    let page = check_page(&app, &s, &headers, id, Vec::new()).await?;
    render(&page, StatusCode::OK)
}

/// `POST /drafts/{id}/submit`.
pub async fn submit(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> PageResult {
    check_form_csrf(&app, Some(&s), &headers, Some(&f.csrf))?;
    match applications::submit(&app, &s.account_id, &id, ow_store::now_ms()).await {
        Ok(no) => Ok(see_other(&format!("/applications/{no}?submitted=1"))),
        Err(SubmitError::NotFound) => Err(PageError::NotFound),
        Err(SubmitError::Invalid(errors)) => {
            let page = check_page(&app, &s, &headers, id, errors).await?;
            render(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(SubmitError::Internal(e)) => Err(e.into()),
    }
}

// ---------------------------------------------------------------- my applications

fn badge(status: Option<CaseStatus>) -> &'static str {
    match status {
        Some(CaseStatus::Completed | CaseStatus::Recorded | CaseStatus::CertificatePrepared) => {
            "ok"
        }
        Some(CaseStatus::Refused | CaseStatus::Withdrawn) => "bad",
        Some(CaseStatus::SupplementRequested) => "warn",
        _ => "",
    }
}

struct ListRow {
    link: String,
    label: String,
    status_zh: String,
    badge: &'static str,
    when: String,
}

#[derive(Template)]
#[template(path = "applications.html")]
struct ApplicationsPage {
    layout: Layout,
    rows: Vec<ListRow>,
}

/// `GET /applications`: drafts and applications.
pub async fn applications_list(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
) -> PageResult {
    let rows = applications::list(&app, &s.account_id)
        .await?
        .into_iter()
        .map(|r| match &r.application_no {
            Some(no) => ListRow {
                link: format!("/applications/{no}"),
                label: no.clone(),
                status_zh: r
                    .case_status()
                    .map(|c| c.name_zh().to_owned())
                    .unwrap_or_default(),
                badge: badge(r.case_status()),
                when: fmt_ms(r.submitted_at_ms.unwrap_or(r.created_at_ms)),
            },
            None => ListRow {
                link: format!("/drafts/{}/unit", r.id),
                label: "草稿".into(),
                status_zh: "未提交".into(),
                badge: "",
                when: fmt_ms(r.created_at_ms),
            },
        })
        .collect();
    let (csrf, _) = form_csrf(&app, Some(&s), &headers);
    render(
        &ApplicationsPage {
            layout: layout("我的申请", Some(&s), csrf),
            rows,
        },
        StatusCode::OK,
    )
}

struct TimelineRow {
    class: &'static str,
    title: String,
    when: String,
    reason: Option<String>,
    requested: String,
}

struct ChecklistOption {
    code: &'static str,
    name_zh: &'static str,
    selected: bool,
}

#[derive(Template)]
#[template(path = "application.html")]
struct ApplicationPage {
    layout: Layout,
    application_no: String,
    status_zh: String,
    badge: &'static str,
    submitted: String,
    unit_code: String,
    certificate_number: String,
    timeline: Vec<TimelineRow>,
    supplement: bool,
    reason: Option<String>,
    checklist: Vec<ChecklistOption>,
    max_mb: String,
    materials: Vec<MaterialView>,
}

fn material_names(codes: &[String]) -> String {
    codes
        .iter()
        .map(|c| {
            BUSINESS
                .required_materials()
                .iter()
                .find(|m| m.code == c)
                .map(|m| m.name_zh.to_owned())
                .unwrap_or_else(|| c.clone())
        })
        .collect::<Vec<_>>()
        .join("、")
}

async fn application_page(
    app: &crate::app::App,
    s: &accounts::Session,
    headers: &HeaderMap,
    no: &str,
    errors: Vec<FieldError>,
    notice: Option<String>,
) -> Result<ApplicationPage, PageError> {
    let row = applications::get_application(app, &s.account_id, no)
        .await?
        .ok_or(PageError::NotFound)?;
    let form = applications::open_form(app, &row)?;
    let events = applications::timeline(app, &row.id).await?;
    let status = row.case_status();
    let mut timeline: Vec<TimelineRow> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let st = CaseStatus::from_code(&e.status);
            let last = i + 1 == events.len();
            TimelineRow {
                class: match st {
                    Some(CaseStatus::Refused | CaseStatus::Withdrawn) => "rejected",
                    _ if last && !st.is_some_and(CaseStatus::is_final) => "current",
                    _ => "done",
                },
                title: if e.status == "submitted" && e.reason.is_some() {
                    "已提交补正材料".into()
                } else {
                    e.status_zh.clone()
                },
                when: fmt_ms(e.changed_at_ms),
                reason: e.reason.clone().filter(|r| r != "已提交补正材料"),
                requested: material_names(&e.requested_materials),
            }
        })
        .collect();
    if !status.is_some_and(CaseStatus::is_final) {
        let seen: Vec<&str> = events.iter().map(|e| e.status.as_str()).collect();
        for next in [
            CaseStatus::Accepted,
            CaseStatus::Reviewed,
            CaseStatus::Recorded,
            CaseStatus::CertificatePrepared,
            CaseStatus::Completed,
        ] {
            if !seen.contains(&next.code()) {
                timeline.push(TimelineRow {
                    class: "pending",
                    title: next.name_zh().to_owned(),
                    when: String::new(),
                    reason: None,
                    requested: String::new(),
                });
            }
        }
    }
    let supplement = status == Some(CaseStatus::SupplementRequested);
    let (csrf, _) = form_csrf(app, Some(s), headers);
    let mut l = layout(&format!("申请 {no}"), Some(s), csrf);
    l.errors = errors;
    l.notice = notice;
    Ok(ApplicationPage {
        layout: l,
        application_no: no.to_owned(),
        status_zh: status.map(|c| c.name_zh().to_owned()).unwrap_or_default(),
        badge: badge(status),
        submitted: row.submitted_at_ms.map(fmt_ms).unwrap_or_default(),
        unit_code: form.unit_code,
        certificate_number: form.certificate_number,
        timeline,
        supplement,
        reason: row.status_reason.clone(),
        checklist: BUSINESS
            .required_materials()
            .iter()
            .map(|m| ChecklistOption {
                code: m.code,
                name_zh: m.name_zh,
                selected: row.requested_materials.iter().any(|c| c == m.code),
            })
            .collect(),
        max_mb: mb(app.upload_limits.max_file_bytes),
        materials: applications::materials(app, &row.id).await?,
    })
}

/// `GET /applications/{no}`: detail and timeline.
pub async fn application_detail(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path(no): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let notice = if q.contains_key("submitted") {
        Some(format!("申请已提交，申请编号 {no}。请留意办理进度。"))
    } else if q.contains_key("supplemented") {
        Some("补正材料已提交".to_owned())
    } else {
        None
    };
    let page = application_page(&app, &s, &headers, &no, Vec::new(), notice).await?;
    render(&page, StatusCode::OK)
}

/// `POST /applications/{no}/supplements` (multipart: `checklist_code`, `file`, `note`).
pub async fn supplement(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path(no): Path<String>,
    mp: Multipart,
) -> PageResult {
    let read = read_multipart(mp, app.upload_limits.max_file_bytes).await;
    if let Ok((fields, _)) = &read {
        check_form_csrf(
            &app,
            Some(&s),
            &headers,
            fields.get("csrf").map(String::as_str),
        )?;
    }
    if applications::get_application(&app, &s.account_id, &no)
        .await?
        .is_none()
    {
        return Err(PageError::NotFound);
    }
    let result = match read {
        Err(e) => Err(vec![FieldError::new("file", e.message_zh())]),
        Ok((fields, mut files)) => {
            let code = fields.get("checklist_code").cloned().unwrap_or_default();
            if !applications::is_checklist_code(&code) {
                Err(vec![FieldError::new("checklist_code", "请选择材料类型")])
            } else {
                for f in &mut files {
                    f.field = code.clone();
                }
                match check_all(files, &app.upload_limits) {
                    Err(e) => Err(vec![FieldError::new("file", e.message_zh())]),
                    Ok(accepted) => {
                        let note = fields.get("note").cloned().unwrap_or_default();
                        match applications::submit_supplement(
                            &app,
                            &s.account_id,
                            &no,
                            &note,
                            accepted,
                            ow_store::now_ms(),
                        )
                        .await
                        {
                            Ok(_) => Ok(()),
                            Err(SubmitError::NotFound) => return Err(PageError::NotFound),
                            Err(SubmitError::Invalid(e)) => Err(e),
                            Err(SubmitError::Internal(e)) => return Err(e.into()),
                        }
                    }
                }
            }
        }
    };
    match result {
        Ok(()) => Ok(see_other(&format!("/applications/{no}?supplemented=1"))),
        Err(errors) => {
            let page = application_page(&app, &s, &headers, &no, errors, None).await?;
            render(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
    }
}

/// `Content-Disposition: attachment` with an ASCII fallback and the UTF-8 name.
pub fn attachment(file_name: &str, fallback: &str) -> HeaderValue {
    let mut encoded = String::new();
    for b in file_name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// `GET /materials/{id}`: one of the citizen's own uploaded files.
pub async fn material_download(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    Path(id): Path<String>,
) -> PageResult {
    let (m, bytes) = applications::material_file(&app, &s.account_id, &id)
        .await?
        .ok_or(PageError::NotFound)?;
    let Some(bytes) = bytes else {
        let html = error_page(
            "材料已送达",
            "该材料已送达不动产登记机构，为保护您的个人信息，网上办事大厅不再保存副本。如需查阅，请联系登记机构。",
        );
        return Ok((StatusCode::GONE, axum::response::Html(html)).into_response());
    };
    let ext = m.file_name.rsplit('.').next().unwrap_or("bin");
    let mut r = bytes.into_response();
    if let Ok(v) = HeaderValue::from_str(&m.media_type) {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    r.headers_mut().insert(
        CONTENT_DISPOSITION,
        attachment(&m.file_name, &format!("material.{ext}")),
    );
    Ok(r)
}

// ---------------------------------------------------------------- certificates

struct CertRow {
    id: String,
    number: String,
    status_zh: &'static str,
    badge: &'static str,
    when: String,
}

#[derive(Template)]
#[template(path = "certificates.html")]
struct CertificatesPage {
    layout: Layout,
    rows: Vec<CertRow>,
}

/// `GET /certificates`: 我的证书.
pub async fn certificates_list(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
) -> PageResult {
    let rows = certificates::list(&app, &s.account_id)
        .await?
        .into_iter()
        .map(|c| CertRow {
            status_zh: match c.status.as_str() {
                "valid" => "有效",
                "cancelled" => "已注销",
                _ => "待确认",
            },
            badge: match c.status.as_str() {
                "valid" => "ok",
                "cancelled" => "bad",
                _ => "",
            },
            id: c.id,
            number: c.certificate_number,
            when: fmt_ms(c.issued_at_ms),
        })
        .collect();
    let (csrf, _) = form_csrf(&app, Some(&s), &headers);
    render(
        &CertificatesPage {
            layout: layout("我的证书", Some(&s), csrf),
            rows,
        },
        StatusCode::OK,
    )
}

/// `GET /certificates/{id}/download`: the signed e-certificate JSON.
pub async fn certificate_download(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    Path(id): Path<String>,
) -> PageResult {
    let signed = certificates::get_signed(&app, &s.account_id, &id)
        .await?
        .ok_or(PageError::NotFound)?;
    let json = signed.to_json().map_err(crate::error::AppError::from)?;
    let name = format!("{}.json", signed.certificate.certificate_number.as_str());
    let mut r = json.into_response();
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut()
        .insert(CONTENT_DISPOSITION, attachment(&name, "e-certificate.json"));
    Ok(r)
}

/// `GET /certificates/{id}/print`: the printable page with the QR code.
pub async fn certificate_print(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    Path(id): Path<String>,
) -> PageResult {
    let signed = certificates::get_signed(&app, &s.account_id, &id)
        .await?
        .ok_or(PageError::NotFound)?;
    let html = ow_certificate::render_html(&signed, &app.settings.verify_base_url())
        .map_err(crate::error::AppError::from)?;
    Ok(Html(html).into_response())
}

// ---------------------------------------------------------------- public verification

#[derive(Template)]
#[template(path = "verify.html")]
struct VerifyPage {
    layout: Layout,
    cert: String,
    code: String,
    result: Option<VerifyResult>,
    issued: String,
    cancelled: Option<String>,
}

fn verify_page(l: Layout, cert: String, code: String, result: Option<VerifyResult>) -> VerifyPage {
    let issued = result
        .as_ref()
        .and_then(|r| r.record.as_ref())
        .map(|r| fmt_ms(r.issued_at_ms))
        .unwrap_or_default();
    let cancelled = result
        .as_ref()
        .and_then(|r| r.record.as_ref())
        .and_then(|r| r.cancelled_at_ms)
        .map(fmt_ms);
    VerifyPage {
        layout: l,
        cert,
        code,
        result,
        issued,
        cancelled,
    }
}

/// `GET /verify`: the form, or the answer for `?cert=…&code=…` (the QR link; `no` is accepted
/// for `cert`). Public, rate-limited per address.
pub async fn verify(
    State(app): State<AppState>,
    MaybeCitizen(s): MaybeCitizen,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let (csrf, cookie) = form_csrf(&app, s.as_ref(), &headers);
    let mut l = layout("电子证书查验", s.as_ref(), csrf);
    let cert = q
        .get("cert")
        .or_else(|| q.get("no"))
        .map(|v| v.trim().to_owned())
        .unwrap_or_default();
    let code = q
        .get("code")
        .map(|v| v.trim().to_owned())
        .unwrap_or_default();
    let mut result = None;
    let mut status = StatusCode::OK;
    if !cert.is_empty() || !code.is_empty() {
        if !allow(&app, addr) {
            return Err(PageError::TooMany);
        }
        match certificates::verify_code(&app, &cert, &code).await? {
            Ok(r) => result = Some(r),
            Err(errors) => {
                l.errors = errors;
                status = StatusCode::UNPROCESSABLE_ENTITY;
            }
        }
    }
    Ok(with_cookie(
        render(&verify_page(l, cert, code, result), status)?,
        cookie,
    ))
}

fn allow(app: &crate::app::App, addr: Option<IpAddr>) -> bool {
    let ip = addr.unwrap_or(IpAddr::from([0, 0, 0, 0]));
    app.verify_limiter.allow(ip, std::time::Instant::now())
}

/// `POST /verify/file` (multipart `file`): checks an e-certificate file.
pub async fn verify_file(
    State(app): State<AppState>,
    MaybeCitizen(s): MaybeCitizen,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    mp: Multipart,
) -> PageResult {
    let read = read_multipart(mp, ow_certificate::MAX_SIGNED_JSON_BYTES as u64).await;
    let (csrf, cookie) = form_csrf(&app, s.as_ref(), &headers);
    let mut l = layout("电子证书查验", s.as_ref(), csrf);
    let (fields, files) = match read {
        Ok(v) => v,
        Err(e) => {
            l.errors = vec![FieldError::new("file", e.message_zh())];
            return Ok(with_cookie(
                render(
                    &verify_page(l, String::new(), String::new(), None),
                    StatusCode::UNPROCESSABLE_ENTITY,
                )?,
                cookie,
            ));
        }
    };
    check_form_csrf(
        &app,
        s.as_ref(),
        &headers,
        fields.get("csrf").map(String::as_str),
    )?;
    if !allow(&app, addr) {
        return Err(PageError::TooMany);
    }
    let Some(file) = files.into_iter().next() else {
        l.errors = vec![FieldError::new("file", "请选择电子证照文件")];
        return Ok(with_cookie(
            render(
                &verify_page(l, String::new(), String::new(), None),
                StatusCode::UNPROCESSABLE_ENTITY,
            )?,
            cookie,
        ));
    };
    let result = if file.size > ow_certificate::MAX_SIGNED_JSON_BYTES as u64 {
        certificates::VerifyResult {
            outcome: "not_genuine".into(),
            outcome_zh: "非真实证书".into(),
            record: None,
        }
    } else {
        certificates::verify_file(&app, &file.bytes).await?
    };
    Ok(with_cookie(
        render(
            &verify_page(l, String::new(), String::new(), Some(result)),
            StatusCode::OK,
        )?,
        cookie,
    ))
}
