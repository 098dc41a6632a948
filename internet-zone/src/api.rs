//! The JSON API under `/api/v1`: the same session cookie as the pages, `X-CSRF-Token` on every
//! write made with a session, errors as `application/problem+json` ([`ApiProblem`]) in Chinese,
//! including those of the request's shape: [`ApiJson`], [`ApiMultipart`] and [`ApiPath`] turn
//! axum's plain-text rejections into 400, 413 and 415 problems, and an unsupported method is a
//! 405 problem. Described by the OpenAPI document at `/api/v1/openapi.json`
//! ([`crate::openapi`]); a test runs schemathesis against the running portal to keep the two
//! in agreement.

use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Multipart, Path, Request, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::{Json, Router};
use ow_web::problem::ApiProblem;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::accounts::{self, AccountView, LoginError, RegisterError, RegisterInput};
use crate::app::AppState;
use crate::applications::{self, ApplicationForm, MaterialView, SubmitError, TimelineEntry};
use crate::certificates::{self, CertificateSummary, VerifyResult};
use crate::error::FieldError;
use crate::files::{UploadRefusal, check_all_for};
use crate::pages::attachment;
use crate::uploads::{TokenCheck, UploadBodyError, read_upload};
use crate::web::{ApiCitizen, check_api_csrf};

/// The `application/problem+json` body of every error ([`ApiProblem`]), for the document.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemBody {
    /// HTTP status.
    pub status: u16,
    /// Stable code for programs, e.g. `unauthorized`, `csrf.missing`, `upload.not_allowed`.
    pub code: String,
    /// What went wrong and what to do, in Chinese.
    pub message: String,
    /// Optional English detail.
    pub detail: Option<String>,
}

/// A problem body with per-field errors (422).
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationProblem {
    /// 422.
    pub status: u16,
    /// `validation`.
    pub code: String,
    /// Summary in Chinese.
    pub message: String,
    /// One entry per field.
    pub errors: Vec<FieldError>,
}

/// The answer to refused files: a survey package's problems as a validation problem (one
/// error per problem, on field `cadastral_survey`), other refusals as they are.
fn refusal(e: UploadRefusal) -> ApiResult {
    match e {
        UploadRefusal::Upload(e) => Err(ApiProblem::from(e)),
        UploadRefusal::Internal(e) => Err(e.into()),
        UploadRefusal::Survey(e) => Ok(validation(
            e.messages_zh()
                .into_iter()
                .map(|m| FieldError::new(crate::business::SURVEY_ITEM, m))
                .collect(),
        )),
    }
}

fn validation(errors: Vec<FieldError>) -> Response {
    let body = ValidationProblem {
        status: 422,
        code: "validation".into(),
        message: errors
            .first()
            .map(|e| e.message.clone())
            .unwrap_or_else(|| "提交的内容有误".into()),
        errors,
    };
    let mut r = (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response();
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(ow_web::problem::PROBLEM_JSON),
    );
    r
}

fn upload_body_problem(e: UploadBodyError) -> ApiProblem {
    match e {
        UploadBodyError::Csrf(c) => ApiProblem::from(c),
        UploadBodyError::Upload(u) => ApiProblem::from(u),
        UploadBodyError::TooLarge => too_large(),
        UploadBodyError::Malformed(m) => ApiProblem::bad_request(m),
        UploadBodyError::Internal(e) => e.into(),
    }
}

/// 413: the request body is over the limit.
pub fn too_large() -> ApiProblem {
    ApiProblem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "请求内容过大：请压缩或拆分上传的文件后重试",
    )
}

/// 415: the body is not of the media type the operation takes.
fn unsupported_media_type(expected: &str) -> ApiProblem {
    ApiProblem::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!("请求内容类型不正确：请以 {expected} 提交"),
    )
}

/// The problem for a JSON body axum could not take.
pub fn json_problem(rejection: JsonRejection) -> ApiProblem {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return too_large();
    }
    match rejection {
        JsonRejection::MissingJsonContentType(_) => unsupported_media_type("application/json"),
        JsonRejection::JsonSyntaxError(e) => ApiProblem::new(
            StatusCode::BAD_REQUEST,
            "bad_request.json_syntax",
            "请求内容不是有效的 JSON，请检查格式后重试",
        )
        .with_detail(e.body_text()),
        JsonRejection::JsonDataError(e) => ApiProblem::new(
            StatusCode::BAD_REQUEST,
            "bad_request.json_fields",
            "JSON 缺少必填字段或字段类型不对，请对照接口文档 /api/v1/openapi.json 修改",
        )
        .with_detail(e.body_text()),
        other => ApiProblem::bad_request("请求内容无法读取，请重试").with_detail(other.body_text()),
    }
}

/// `Json<T>` whose rejections are problems: 415 without `Content-Type: application/json`,
/// 400 for malformed JSON or missing and mistyped fields, 413 over the body limit.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiProblem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_problem(rejection)),
        }
    }
}

/// `Multipart` whose rejection (not `multipart/form-data`, or no boundary) is a 415 problem.
pub struct ApiMultipart(pub Multipart);

impl<S> FromRequest<S> for ApiMultipart
where
    S: Send + Sync,
{
    type Rejection = ApiProblem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Multipart::from_request(req, state)
            .await
            .map(ApiMultipart)
            .map_err(|r: MultipartRejection| {
                unsupported_media_type("multipart/form-data").with_detail(r.body_text())
            })
    }
}

/// `Path<T>` whose rejection (a segment that is not valid UTF-8 once decoded) is 404: such a
/// value cannot name anything.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiProblem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|_: PathRejection| ApiProblem::not_found())
    }
}

/// 405 for a method an API path does not serve (axum adds the `Allow` header).
async fn method_not_allowed() -> ApiProblem {
    ApiProblem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "该接口不支持此请求方法，请查看 /api/v1/openapi.json",
    )
}

/// Longest accepted values of the JSON fields, in characters (the document states them as
/// `maxLength`; a longer value is a 422 field error).
pub mod limits {
    /// `login` of [`super::LoginRequest`].
    pub const LOGIN: usize = 64;
    /// Passwords (the policy's `password.max_length` is at most this).
    pub const PASSWORD: usize = 1024;
    /// Names.
    pub const NAME: usize = 64;
    /// ID numbers.
    pub const ID_NUMBER: usize = 32;
    /// Phone numbers.
    pub const PHONE: usize = 32;
    /// Certificate numbers.
    pub const CERTIFICATE_NUMBER: usize = 64;
    /// Verification codes.
    pub const CODE: usize = 32;
}

/// A 422 field error for each `(field, value, max)` longer than `max` characters.
fn over_long(fields: &[(&str, &str, usize)]) -> Vec<FieldError> {
    fields
        .iter()
        .filter(|(_, value, max)| value.chars().count() > *max)
        .map(|(field, _, max)| FieldError::new(*field, format!("内容过长：最多{max}个字符")))
        .collect()
}

type ApiResult = Result<Response, ApiProblem>;

/// Login request.
#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    /// ID number or phone.
    #[schema(max_length = 64)]
    pub login: String,
    /// Password.
    #[schema(max_length = 1024)]
    pub password: String,
}

impl std::fmt::Debug for LoginRequest {
    /// Personal data and secrets are shown masked or redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("login", &ow_domain::mask::mask_all(&self.login))
            .finish_non_exhaustive()
    }
}

/// Login answer: the session cookie is set; send `csrf_token` as `X-CSRF-Token` on writes.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// The account.
    pub account_id: String,
    /// The CSRF token of this session.
    pub csrf_token: String,
}

/// Registration answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegisterResponse {
    /// The same for a new and an already registered ID number (registration does not tell
    /// who has an account): what to do next, in Chinese.
    pub message: String,
}

/// An application with its timeline. `Debug` does not show the reason.
#[derive(Serialize, ToSchema)]
pub struct ApplicationView {
    /// 申请编号.
    pub application_no: String,
    /// National business code (2000402).
    pub business_type: String,
    /// Current status code.
    pub status: String,
    /// Current status in Chinese.
    pub status_zh: String,
    /// The registrar's latest reason.
    pub status_reason: Option<String>,
    /// Checklist codes asked for (补正).
    pub requested_materials: Vec<String>,
    /// District.
    pub district_code: Option<String>,
    /// Submitted, Unix milliseconds.
    pub submitted_at_ms: Option<i64>,
    /// The status timeline, oldest first.
    pub timeline: Vec<TimelineEntry>,
    /// Materials sent.
    pub materials: Vec<MaterialView>,
}

impl std::fmt::Debug for ApplicationView {
    /// The registrar's reason may quote people: not shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplicationView")
            .field("application_no", &self.application_no)
            .field("business_type", &self.business_type)
            .field("status", &self.status)
            .field("requested_materials", &self.requested_materials)
            .field("district_code", &self.district_code)
            .field("submitted_at_ms", &self.submitted_at_ms)
            .field("timeline", &self.timeline)
            .field("materials", &self.materials)
            .finish_non_exhaustive()
    }
}

/// Submission answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubmittedResponse {
    /// 申请编号.
    pub application_no: String,
}

/// Supplement answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct SupplementResponse {
    /// The supplement.
    pub supplement_id: String,
}

/// Verification request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct VerifyRequest {
    /// 证书编号, e.g. `鲁(2026)青州市不动产权第0000123号` (full-width brackets accepted).
    #[schema(
        min_length = 1,
        max_length = 64,
        example = "鲁(2026)青州市不动产权第0000123号"
    )]
    pub certificate_number: String,
    /// 验证码: ten letters and digits, e.g. `7KQ4M-X9PTB`; case, spaces and hyphens ignored.
    #[schema(min_length = 1, max_length = 32, example = "7KQ4M-X9PTB")]
    pub code: String,
}

/// Multipart body of `POST /api/v1/applications` (documentation only).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ApplicationUpload {
    /// The form as JSON ([`ApplicationForm`]).
    pub application: String,
    /// The business code: `2000402` (二手房转移登记, the default) or `1000301` (首次登记).
    pub business_type: Option<String>,
    /// One part per material, named by its checklist code (`application_form`,
    /// `applicant_identity`, `title_certificate`, `sale_contract`, `tax_receipt`,
    /// `marital_status`, `power_of_attorney`); PDF, JPEG or PNG.
    #[schema(format = Binary, value_type = String)]
    pub sale_contract: Vec<u8>,
}

/// Multipart body of `POST /api/v1/applications/{no}/supplements` (documentation only).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SupplementUpload {
    /// The checklist code the files answer.
    pub checklist_code: String,
    /// A note to the registrar.
    pub note: Option<String>,
    /// One or more files (PDF, JPEG, PNG).
    #[schema(format = Binary, value_type = String)]
    pub file: Vec<u8>,
}

impl std::fmt::Debug for SupplementUpload {
    /// Personal data and secrets are shown masked or redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupplementUpload")
            .field("checklist_code", &self.checklist_code)
            .field("file_len", &self.file.len())
            .finish_non_exhaustive()
    }
}

/// `POST /api/v1/register`.
#[utoipa::path(post, path = "/api/v1/register", tag = "accounts", request_body = RegisterInput,
    responses((status = 202, body = RegisterResponse), (status = 422, body = ValidationProblem), (status = 429, body = ProblemBody), (status = 503, body = ProblemBody)))]
pub async fn register(
    State(app): State<AppState>,
    ApiJson(input): ApiJson<RegisterInput>,
) -> ApiResult {
    let errors = over_long(&[
        ("name", &input.name, limits::NAME),
        ("id_number", &input.id_number, limits::ID_NUMBER),
        ("phone", &input.phone, limits::PHONE),
        ("password", &input.password, limits::PASSWORD),
        (
            "password_confirm",
            &input.password_confirm,
            limits::PASSWORD,
        ),
    ]);
    if !errors.is_empty() {
        return Ok(validation(errors));
    }
    match accounts::register(&app, &input, ow_store::now_ms()).await {
        Ok(_) => Ok((
            StatusCode::ACCEPTED,
            Json(RegisterResponse {
                message: accounts::REGISTERED_NOTICE_ZH.to_owned(),
            }),
        )
            .into_response()),
        Err(RegisterError::Invalid(errors)) => Ok(validation(errors)),
        Err(RegisterError::Busy) => {
            Err(ApiProblem::from(ow_web::password::PasswordHashError::Busy))
        }
        Err(RegisterError::Internal(e)) => Err(e.into()),
    }
}

/// `POST /api/v1/login`.
#[utoipa::path(post, path = "/api/v1/login", tag = "accounts", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ProblemBody),
        (status = 422, body = ValidationProblem, description = "a value over its maxLength"),
        (status = 429, body = ProblemBody)))]
pub async fn login(State(app): State<AppState>, ApiJson(req): ApiJson<LoginRequest>) -> ApiResult {
    let errors = over_long(&[
        ("login", &req.login, limits::LOGIN),
        ("password", &req.password, limits::PASSWORD),
    ]);
    if !errors.is_empty() {
        return Ok(validation(errors));
    }
    match accounts::login(&app, &req.login, &req.password, chrono::Utc::now()).await {
        Ok(s) => {
            let mut r = Json(LoginResponse {
                account_id: s.account_id.clone(),
                csrf_token: ow_web::csrf::csrf_token_for(&s.token),
            })
            .into_response();
            r.headers_mut()
                .append(SET_COOKIE, app.cookie.set_cookie_header(&s.token));
            Ok(r)
        }
        Err(LoginError::Internal(e)) => Err(e.into()),
        Err(LoginError::Locked(l)) => Err(ApiProblem::from(l)),
        Err(LoginError::Busy) => Err(ApiProblem::from(ow_web::password::PasswordHashError::Busy)),
        Err(e @ LoginError::BadCredentials) => Err(ApiProblem::new(
            StatusCode::UNAUTHORIZED,
            "login.failed",
            e.message_zh(),
        )),
    }
}

/// `POST /api/v1/logout`.
#[utoipa::path(post, path = "/api/v1/logout", tag = "accounts",
    params(("X-CSRF-Token" = String, Header, description = "the session's CSRF token")),
    responses((status = 204), (status = 401, body = ProblemBody), (status = 403, body = ProblemBody)))]
pub async fn logout(
    State(app): State<AppState>,
    ApiCitizen(s): ApiCitizen,
    headers: HeaderMap,
) -> ApiResult {
    check_api_csrf(&s, &headers)?;
    accounts::logout(&app, &s.token).await?;
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .append(SET_COOKIE, app.cookie.clear_cookie_header());
    Ok(r)
}

/// `GET /api/v1/me`.
#[utoipa::path(get, path = "/api/v1/me", tag = "accounts",
    responses((status = 200, body = AccountView), (status = 401, body = ProblemBody)))]
pub async fn me(State(app): State<AppState>, ApiCitizen(s): ApiCitizen) -> ApiResult {
    Ok(Json(accounts::view(&app, &s.account_id).await?).into_response())
}

async fn application_view(
    app: &crate::app::App,
    row: applications::ApplicationRow,
) -> Result<ApplicationView, ApiProblem> {
    let timeline = applications::timeline(app, &row.id).await?;
    let materials = applications::materials(app, &row.id).await?;
    let status = row.status.clone().unwrap_or_default();
    Ok(ApplicationView {
        application_no: row.application_no.clone().unwrap_or_default(),
        business_type: row.business.code().into(),
        status_zh: row
            .case_status()
            .map(|c| c.name_zh().to_owned())
            .unwrap_or_default(),
        status,
        status_reason: row.status_reason.clone(),
        requested_materials: row.requested_materials.clone(),
        district_code: row.district_code.clone(),
        submitted_at_ms: row.submitted_at_ms,
        timeline,
        materials,
    })
}

/// `GET /api/v1/applications`: the citizen's submitted applications.
#[utoipa::path(get, path = "/api/v1/applications", tag = "applications",
    responses((status = 200, body = Vec<ApplicationView>), (status = 401, body = ProblemBody)))]
pub async fn list_applications(
    State(app): State<AppState>,
    ApiCitizen(s): ApiCitizen,
) -> ApiResult {
    let mut out = Vec::new();
    for row in applications::list(&app, &s.account_id).await? {
        if row.application_no.is_some() {
            out.push(application_view(&app, row).await?);
        }
    }
    Ok(Json(out).into_response())
}

/// `GET /api/v1/applications/{no}`: one application with its timeline (404 if not the
/// citizen's).
#[utoipa::path(get, path = "/api/v1/applications/{no}", tag = "applications",
    params(("no" = String, Path, description = "申请编号")),
    responses((status = 200, body = ApplicationView), (status = 401, body = ProblemBody), (status = 404, body = ProblemBody)))]
pub async fn get_application(
    State(app): State<AppState>,
    ApiCitizen(s): ApiCitizen,
    ApiPath(no): ApiPath<String>,
) -> ApiResult {
    let row = applications::get_application(&app, &s.account_id, &no)
        .await?
        .ok_or_else(ApiProblem::not_found)?;
    Ok(Json(application_view(&app, row).await?).into_response())
}

/// `POST /api/v1/applications` (multipart): creates and submits an application in one call.
/// Part `application` is the form as JSON; each file part is named by its checklist code.
#[utoipa::path(post, path = "/api/v1/applications", tag = "applications",
    params(("X-CSRF-Token" = String, Header, description = "the session's CSRF token")),
    request_body(content = ApplicationUpload, content_type = "multipart/form-data"),
    responses((status = 201, body = SubmittedResponse), (status = 401, body = ProblemBody),
        (status = 403, body = ProblemBody), (status = 422, body = ValidationProblem)))]
pub async fn create_application(
    State(app): State<AppState>,
    ApiCitizen(s): ApiCitizen,
    headers: HeaderMap,
    ApiMultipart(mp): ApiMultipart,
) -> ApiResult {
    check_api_csrf(&s, &headers)?;
    let (fields, files) = read_upload(mp, &app.files, &app.upload_limits, TokenCheck::Checked)
        .await
        .map_err(upload_body_problem)?;
    let Some(json) = fields.get("application") else {
        return Ok(validation(vec![FieldError::new(
            "application",
            "缺少 application 部分（申请内容 JSON）",
        )]));
    };
    let form: ApplicationForm = match serde_json::from_str(json) {
        Ok(f) => f,
        Err(_) => {
            return Ok(validation(vec![FieldError::new(
                "application",
                "application 部分不是有效的申请内容 JSON",
            )]));
        }
    };
    let business = match fields.get("business_type").map(|c| c.trim()) {
        None | Some("") => crate::business::DEFAULT,
        Some(code) => match crate::business::offered(code) {
            Some(b) => b,
            None => {
                return Ok(validation(vec![FieldError::new(
                    "business_type",
                    "本平台不受理该业务类型，请填写 2000402（二手房转移登记）或 1000301（首次登记）",
                )]));
            }
        },
    };
    let mut errors = applications::check_form(&form, business, &app)
        .err()
        .unwrap_or_default();
    if let Some(f) = files
        .iter()
        .find(|f| !applications::is_checklist_code(business, &f.field))
    {
        errors.push(FieldError::new(
            f.field.clone(),
            format!("未知的材料类型：{}", f.field),
        ));
    }
    for m in business.required_materials() {
        if m.required && !files.iter().any(|f| f.field == m.code) {
            errors.push(FieldError::new(m.code, format!("请上传“{}”", m.name_zh)));
        }
    }
    if !errors.is_empty() {
        return Ok(validation(errors));
    }
    let accepted = match check_all_for(business, files, &app.upload_limits, &app.files).await {
        Ok((accepted, _)) => accepted,
        Err(e) => return refusal(e),
    };
    match applications::submit_new(
        &app,
        &s.account_id,
        business,
        &form,
        accepted,
        ow_store::now_ms(),
    )
    .await
    {
        Ok(no) => Ok((
            StatusCode::CREATED,
            Json(SubmittedResponse { application_no: no }),
        )
            .into_response()),
        Err(SubmitError::Invalid(errors)) => Ok(validation(errors)),
        Err(SubmitError::NotFound) => Err(ApiProblem::not_found()),
        Err(SubmitError::Internal(e)) => Err(e.into()),
    }
}

/// `POST /api/v1/applications/{no}/supplements` (multipart `checklist_code`, `note`, `file`).
#[utoipa::path(post, path = "/api/v1/applications/{no}/supplements", tag = "applications",
    params(("no" = String, Path, description = "申请编号"), ("X-CSRF-Token" = String, Header, description = "the session's CSRF token")),
    request_body(content = SupplementUpload, content_type = "multipart/form-data"),
    responses((status = 201, body = SupplementResponse), (status = 401, body = ProblemBody),
        (status = 403, body = ProblemBody, description = "no or wrong X-CSRF-Token"),
        (status = 404, body = ProblemBody), (status = 422, body = ValidationProblem)))]
pub async fn supplement(
    State(app): State<AppState>,
    ApiCitizen(s): ApiCitizen,
    headers: HeaderMap,
    ApiPath(no): ApiPath<String>,
    ApiMultipart(mp): ApiMultipart,
) -> ApiResult {
    check_api_csrf(&s, &headers)?;
    let row = applications::get_application(&app, &s.account_id, &no)
        .await?
        .ok_or_else(ApiProblem::not_found)?;
    let (fields, mut files) = read_upload(mp, &app.files, &app.upload_limits, TokenCheck::Checked)
        .await
        .map_err(upload_body_problem)?;
    let code = fields.get("checklist_code").cloned().unwrap_or_default();
    if !applications::is_checklist_code(row.business, &code) {
        return Ok(validation(vec![FieldError::new(
            "checklist_code",
            "请选择材料类型",
        )]));
    }
    for f in &mut files {
        f.field = code.clone();
    }
    let accepted = match check_all_for(row.business, files, &app.upload_limits, &app.files).await {
        Ok((accepted, _)) => accepted,
        Err(e) => return refusal(e),
    };
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
        Ok(id) => Ok((
            StatusCode::CREATED,
            Json(SupplementResponse { supplement_id: id }),
        )
            .into_response()),
        Err(SubmitError::Invalid(errors)) => Ok(validation(errors)),
        Err(SubmitError::NotFound) => Err(ApiProblem::not_found()),
        Err(SubmitError::Internal(e)) => Err(e.into()),
    }
}

/// `GET /api/v1/certificates`: 我的证书.
#[utoipa::path(get, path = "/api/v1/certificates", tag = "certificates",
    responses((status = 200, body = Vec<CertificateSummary>), (status = 401, body = ProblemBody)))]
pub async fn list_certificates(
    State(app): State<AppState>,
    ApiCitizen(s): ApiCitizen,
) -> ApiResult {
    Ok(Json(certificates::list(&app, &s.account_id).await?).into_response())
}

/// `GET /api/v1/certificates/{id}`: the signed e-certificate JSON (404 if not the citizen's).
#[utoipa::path(get, path = "/api/v1/certificates/{id}", tag = "certificates",
    params(("id" = String, Path, description = "certificate id from the list")),
    responses((status = 200, description = "the signed e-certificate (ow-certificate JSON)", content_type = "application/json"),
        (status = 401, body = ProblemBody), (status = 404, body = ProblemBody)))]
pub async fn download_certificate(
    State(app): State<AppState>,
    ApiCitizen(s): ApiCitizen,
    ApiPath(id): ApiPath<String>,
) -> ApiResult {
    let signed = certificates::get_signed(&app, &s.account_id, &id)
        .await?
        .ok_or_else(ApiProblem::not_found)?;
    let json = signed.to_json().map_err(crate::error::AppError::from)?;
    let mut r = json.into_response();
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut().insert(
        CONTENT_DISPOSITION,
        attachment(
            &format!("{}.json", signed.certificate.certificate_number.as_str()),
            "e-certificate.json",
        ),
    );
    Ok(r)
}

/// `POST /api/v1/verify`: public check of a certificate number and verification code.
#[utoipa::path(post, path = "/api/v1/verify", tag = "verify", request_body = VerifyRequest,
    responses((status = 200, body = VerifyResult), (status = 422, body = ValidationProblem), (status = 429, body = ProblemBody)))]
pub async fn verify(
    State(app): State<AppState>,
    ApiJson(req): ApiJson<VerifyRequest>,
) -> ApiResult {
    let errors = over_long(&[
        (
            "certificate_number",
            &req.certificate_number,
            limits::CERTIFICATE_NUMBER,
        ),
        ("code", &req.code, limits::CODE),
    ]);
    if !errors.is_empty() {
        return Ok(validation(errors));
    }
    match certificates::verify_code(&app, &req.certificate_number, &req.code).await? {
        Ok(r) => Ok(Json(r).into_response()),
        // The portal's form calls the number `cert`; the API calls it `certificate_number`.
        Err(errors) => Ok(validation(
            errors
                .into_iter()
                .map(|e| {
                    if e.field == "cert" {
                        FieldError::new("certificate_number", e.message)
                    } else {
                        e
                    }
                })
                .collect(),
        )),
    }
}

/// `GET /api/v1/openapi.json`.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "this document", content_type = "application/json")))]
pub async fn openapi_json() -> Response {
    Json(crate::openapi::document_json()).into_response()
}

/// Builds a router while recording each (method, path), so tests can compare the routes with
/// the OpenAPI document.
pub struct RouteRecorder {
    router: Router<AppState>,
    routes: Vec<(&'static str, &'static str)>,
}

impl RouteRecorder {
    fn new() -> Self {
        RouteRecorder {
            router: Router::new(),
            routes: Vec::new(),
        }
    }

    fn add(
        mut self,
        methods: &[&'static str],
        path: &'static str,
        handler: MethodRouter<AppState>,
    ) -> Self {
        self.router = self.router.route(path, handler);
        for m in methods {
            self.routes.push((m, path));
        }
        self
    }
}

fn build(upload_limit: usize) -> RouteRecorder {
    let limit = axum::extract::DefaultBodyLimit::max(upload_limit.max(1 << 20));
    use axum::routing::{get, post};
    RouteRecorder::new()
        .add(&["post"], "/api/v1/register", post(register))
        .add(&["post"], "/api/v1/login", post(login))
        .add(&["post"], "/api/v1/logout", post(logout))
        .add(&["get"], "/api/v1/me", get(me))
        .add(
            &["get", "post"],
            "/api/v1/applications",
            get(list_applications).post(create_application).layer(limit),
        )
        .add(&["get"], "/api/v1/applications/{no}", get(get_application))
        .add(
            &["post"],
            "/api/v1/applications/{no}/supplements",
            post(supplement).layer(limit),
        )
        .add(&["get"], "/api/v1/certificates", get(list_certificates))
        .add(
            &["get"],
            "/api/v1/certificates/{id}",
            get(download_certificate),
        )
        .add(&["post"], "/api/v1/verify", post(verify))
        .add(&["get"], "/api/v1/openapi.json", get(openapi_json))
}

/// The API routes (state still to be given); multipart routes accept `upload_limit` bytes.
/// A method a path does not serve is a 405 problem.
pub fn routes(upload_limit: usize) -> Router<AppState> {
    build(upload_limit)
        .router
        .method_not_allowed_fallback(method_not_allowed)
}

/// Every (method, path) the API serves, lower-case method.
pub fn route_list() -> Vec<(&'static str, &'static str)> {
    build(0).routes
}
