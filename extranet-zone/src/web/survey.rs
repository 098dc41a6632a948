//! The 权籍调查 panel of a first registration's case page: sending the survey to the cadastral
//! zone, the packages sent and their reviews, and the new unit's register page.
//!
//! The survey is sent with a multipart form (the survey file, an optional PDF report, the 涉密
//! box). Before the body is read the session, the district (another district's case is 404),
//! the business (only a first registration has a survey), the 审核 role (403) and the case's
//! status are checked; the form's CSRF token must come before the first file. Each file is
//! read into memory up to `materials.max_file_bytes` and no further: the survey file must be
//! parsed whole, and both are small next to the limit. The survey is parsed and checked at the
//! counter with `ow-survey`: a file that cannot be read is shown with its lines and nothing is
//! sent; findings of severity error are shown and only an explicit 「已核对，仍送审」 sends it
//! anyway (the cadastral zone checks again); a package too large or classified for the gateway
//! goes on offline media whatever the box says.

use axum::Form;
use axum::Router;
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use ow_domain::{BusinessType, CaseStatus};
use ow_survey::{
    CheckConfig, OnlineLimits, ParseOptions, Severity, SourceFormat, check_package, detect_format,
    parse_package,
};
use ow_web::csrf::check_csrf;
use ow_web::upload::{AllowedMedia, UploadLimits, check_upload, safe_filename};

use super::cases::{CasePage, build_case_page};
use super::{
    Authed, PageError, authed, check_form_csrf, field, fmt_ms, internal, redirect, render_status,
    url_encode,
};
use crate::AppState;
use crate::cases::{self, Case};
use crate::staff::Role;
use crate::survey::{
    self, NewUnit, REPORT_CHECKLIST, SURVEY_CHECKLIST, SentPackage, SurveyFormat, SurveyUpload,
    UnitPageError, UnitPageInput,
};
use crate::workflow::ActionError;

/// The form routes without a file (the back office's small body limit applies).
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/cases/{no}/survey/unit", post(save_unit_page))
        .route("/cases/{no}/survey/submitted", post(send_submitted_survey))
}

/// The survey upload, with a body limit of two files of `materials.max_file_bytes` and the
/// form's text fields.
pub(super) fn upload_routes(state: &AppState) -> Router<AppState> {
    let total = state
        .settings
        .materials
        .max_file_bytes
        .saturating_mul(2)
        .saturating_add(64 * 1024);
    Router::new()
        .route("/cases/{no}/survey", post(send_survey))
        .layer(DefaultBodyLimit::max(
            usize::try_from(total).unwrap_or(usize::MAX),
        ))
}

/// The panel on the case page.
pub(super) struct SurveyPanel {
    /// The send form is shown.
    pub(super) can_send: bool,
    /// Why there is no send form (to a member who cannot send now), or empty.
    pub(super) send_hint: String,
    /// The packages sent, oldest first.
    pub(super) packages: Vec<PackageView>,
    /// The new unit's page, after an approval.
    pub(super) unit: Option<UnitView>,
    /// The unit page may be edited by this member now.
    pub(super) unit_editable: bool,
    /// Why the last upload could not be read (its lines).
    pub(super) problems: Vec<ProblemView>,
    /// The counter check's findings of the last upload.
    pub(super) findings: Vec<FindingView>,
    /// The findings include errors: the 「已核对，仍送审」 box is shown.
    pub(super) needs_ack: bool,
    /// The 涉密 box as it was sent.
    pub(super) confidential_checked: bool,
    /// The survey packages the applicant submitted (materials of the case under
    /// `cadastral_survey` in TXT or GeoJSON), which may be sent without uploading them again.
    pub(super) submitted: Vec<SubmittedSurvey>,
}

/// A survey package the applicant submitted with the case.
pub(super) struct SubmittedSurvey {
    pub(super) material_id: String,
    pub(super) file_name: String,
    pub(super) format: &'static str,
}

/// A package sent, as the panel lists it.
pub(super) struct PackageView {
    pub(super) sent: String,
    pub(super) route: &'static str,
    pub(super) format: &'static str,
    pub(super) outcome_code: &'static str,
    pub(super) outcome: &'static str,
    pub(super) reviewed: String,
    pub(super) parcels: Vec<String>,
    pub(super) findings: Vec<FindingView>,
    pub(super) reason: String,
}

/// A finding, of the counter check or of a review.
pub(super) struct FindingView {
    pub(super) severity_code: String,
    pub(super) severity: &'static str,
    pub(super) place: String,
    pub(super) message: String,
    pub(super) advice: String,
}

/// A problem that kept the survey file from being read.
pub(super) struct ProblemView {
    pub(super) line: String,
    pub(super) message: String,
    pub(super) advice: String,
}

/// The new unit's page.
pub(super) struct UnitView {
    pub(super) unit_code: String,
    pub(super) area_m2: String,
    pub(super) location: String,
    pub(super) usage: String,
    pub(super) right_type: String,
    pub(super) right_type_zh: &'static str,
    pub(super) right_nature: String,
    pub(super) use_term: String,
}

fn right_type_zh(code: &str) -> &'static str {
    match code {
        "3" => "国有建设用地使用权",
        "4" => "国有建设用地使用权/房屋所有权",
        _ => "",
    }
}

fn unit_view(u: &NewUnit) -> UnitView {
    let right_type = u.right_type.to_string();
    UnitView {
        unit_code: u.unit_code.clone(),
        area_m2: u.area_m2.clone(),
        location: u.location.clone(),
        usage: u.usage.clone(),
        right_type_zh: right_type_zh(&right_type),
        right_type,
        right_nature: u.right_nature.clone(),
        use_term: u.use_term.clone(),
    }
}

fn package_view(p: &SentPackage) -> PackageView {
    let (outcome_code, outcome) = match p.outcome.as_deref() {
        None => ("waiting", "等待审核"),
        Some("approved") => ("approved", "审核通过"),
        Some("rejected") => ("rejected", "审核未通过"),
        Some(_) => ("unknown", "无法识别的审核结果"),
    };
    PackageView {
        sent: fmt_ms(p.sent_at_ms),
        route: if p.confidential {
            "光盘摆渡"
        } else {
            "网闸"
        },
        format: if p.format == SurveyFormat::GeoJson.as_str() {
            "GeoJSON"
        } else {
            "界址点坐标 TXT"
        },
        outcome_code,
        outcome,
        reviewed: p.reviewed_at_ms.map(fmt_ms).unwrap_or_default(),
        parcels: p
            .parcels
            .iter()
            .map(|q| format!("{}（{} 平方米）", q.unit_code, q.area_m2))
            .collect(),
        findings: p
            .findings
            .iter()
            .map(|f| FindingView {
                severity: if f.severity == "error" {
                    "错误"
                } else {
                    "警告"
                },
                severity_code: f.severity.clone(),
                place: place(f.parcel.as_deref(), f.point.as_deref(), None),
                message: f.message.clone(),
                advice: f.advice.clone(),
            })
            .collect(),
        reason: p.reason.clone().unwrap_or_default(),
    }
}

fn place(parcel: Option<&str>, point: Option<&str>, line: Option<u32>) -> String {
    let mut parts = Vec::new();
    if let Some(p) = parcel {
        parts.push(format!("地块{p}"));
    }
    if let Some(p) = point {
        parts.push(p.to_owned());
    }
    if let Some(l) = line {
        parts.push(format!("第{l}行"));
    }
    parts.join("，")
}

/// The panel of `case` for this member, or `None` when the business has no survey.
pub(super) async fn panel(
    conn: &mut sqlx::AnyConnection,
    state: &AppState,
    auth: &Authed,
    case: &Case,
) -> Result<Option<SurveyPanel>, PageError> {
    if !needs_survey(case) {
        return Ok(None);
    }
    let no = &case.application_no;
    let packages = survey::packages(conn, &state.pii, no)
        .await
        .map_err(internal)?;
    let approved = packages.iter().any(SentPackage::approved);
    let reviewer = auth.staff.has(Role::Review);
    let can_send = case.status == CaseStatus::Accepted && !approved && reviewer;
    let send_hint = match case.status {
        CaseStatus::Accepted if !approved && !reviewer => "受理后由审核岗位人员上传并送权籍审核。",
        CaseStatus::Submitted => "受理后可上传权籍调查成果，送权籍审核。",
        CaseStatus::SupplementRequested => {
            "待申请人补正；补正材料收到并受理后，可上传修改后的权籍调查成果重新送审。"
        }
        CaseStatus::SurveyReview => "权籍调查成果已送审，等待内网权籍审核结果。",
        _ => "",
    };
    let unit = survey::new_unit(conn, no).await.map_err(internal)?;
    let submitted = submitted_surveys(conn, &state.pii, no)
        .await
        .map_err(internal)?;
    let unit_editable = unit.is_some()
        && reviewer
        && matches!(case.status, CaseStatus::Accepted | CaseStatus::Reviewed);
    Ok(Some(SurveyPanel {
        can_send,
        send_hint: send_hint.to_owned(),
        packages: packages.iter().map(package_view).collect(),
        unit: unit.as_ref().map(unit_view),
        unit_editable,
        problems: Vec::new(),
        findings: Vec::new(),
        needs_ack: false,
        confidential_checked: false,
        submitted,
    }))
}

/// The case's survey packages that came from the applicant (TXT or GeoJSON under
/// `cadastral_survey`, not handed in at the counter), oldest first.
async fn submitted_surveys(
    conn: &mut sqlx::AnyConnection,
    pii: &ow_pii::PiiKeyring,
    no: &str,
) -> crate::Result<Vec<SubmittedSurvey>> {
    Ok(cases::materials(conn, pii, no)
        .await?
        .into_iter()
        .filter(|m| {
            m.checklist_code == SURVEY_CHECKLIST
                && m.source != "counter"
                && matches!(m.media_type.as_str(), "text/plain" | "application/geo+json")
        })
        .map(|m| SubmittedSurvey {
            format: if m.media_type == "application/geo+json" {
                "GeoJSON"
            } else {
                "界址点坐标 TXT"
            },
            material_id: m.id,
            file_name: m.file_name,
        })
        .collect())
}

fn needs_survey(case: &Case) -> bool {
    BusinessType::from_code(&case.business_type).is_some_and(BusinessType::needs_survey)
}

/// The case page again with an error for the survey panel, at `status`.
async fn panel_error(
    state: &AppState,
    auth: &Authed,
    no: &str,
    status: StatusCode,
    message: String,
    adjust: impl FnOnce(&mut SurveyPanel),
) -> Result<Response, PageError> {
    let mut page: CasePage = build_case_page(state, auth, no, false).await?;
    page.layout.error = Some(message);
    if let Some(sv) = page.survey.as_mut() {
        adjust(sv);
    }
    Ok(render_status(status, &page))
}

/// A file part of the upload form, read up to the limit.
struct FilePart {
    file_name: String,
    declared_type: Option<String>,
    bytes: Vec<u8>,
}

/// Why the upload body was not taken.
enum BodyRefusal {
    /// No or a wrong CSRF token before the first file.
    Csrf(String),
    /// A file over the limit (its field's label).
    TooLarge(&'static str),
    /// The body is not a complete multipart form, or over the request limit.
    Malformed(StatusCode),
}

fn malformed(e: MultipartError) -> BodyRefusal {
    BodyRefusal::Malformed(e.status())
}

/// Reads `field` into memory, refusing it as soon as it passes `max` bytes.
async fn read_limited(
    field: &mut Field<'_>,
    max: u64,
    label: &'static str,
) -> Result<Vec<u8>, BodyRefusal> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(malformed)? {
        if u64::try_from(bytes.len() + chunk.len()).unwrap_or(u64::MAX) > max {
            // The rest of this field is read past, never kept.
            while field.chunk().await.map_err(malformed)?.is_some() {}
            return Err(BodyRefusal::TooLarge(label));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Reads what is left of the form and drops it.
async fn drain(mut mp: Multipart) {
    while let Ok(Some(mut f)) = mp.next_field().await {
        while let Ok(Some(_)) = f.chunk().await {}
    }
}

/// What the upload form carried.
#[derive(Default)]
struct UploadForm {
    survey: Option<FilePart>,
    report: Option<FilePart>,
    confidential: bool,
    acknowledged: bool,
}

/// The longest text field of the upload form.
const MAX_TEXT_BYTES: u64 = 4 * 1024;

async fn read_form(
    mut mp: Multipart,
    session_token: &str,
    max_file_bytes: u64,
) -> Result<UploadForm, BodyRefusal> {
    let mut form = UploadForm::default();
    let mut token_ok = false;
    while let Some(mut f) = mp.next_field().await.map_err(malformed)? {
        let name = f.name().unwrap_or_default().to_owned();
        let Some(file_name) = f.file_name().map(str::to_owned) else {
            let bytes = read_limited(&mut f, MAX_TEXT_BYTES, "表单")
                .await
                .map_err(|_| BodyRefusal::Malformed(StatusCode::BAD_REQUEST))?;
            let text = String::from_utf8_lossy(&bytes);
            match name.as_str() {
                "csrf" if !token_ok => {
                    check_csrf(Some(session_token), Some(&text))
                        .map_err(|e| BodyRefusal::Csrf(e.message_zh()))?;
                    token_ok = true;
                }
                "confidential" => form.confidential = text == "yes",
                "acknowledged" => form.acknowledged = text == "yes",
                _ => {}
            }
            continue;
        };
        if !token_ok {
            let e = check_csrf(Some(session_token), None).err();
            return Err(BodyRefusal::Csrf(
                e.map(|e| e.message_zh())
                    .unwrap_or_else(|| "页面已过期，请刷新页面后重新提交".to_owned()),
            ));
        }
        let (label, slot) = match name.as_str() {
            "survey" => ("权籍调查成果文件", &mut form.survey),
            "report" => ("权籍调查报告", &mut form.report),
            _ => {
                // Not a field of this form: read past it, keep nothing.
                while f.chunk().await.map_err(malformed)?.is_some() {}
                continue;
            }
        };
        let declared_type = f.content_type().map(str::to_owned);
        let bytes = match read_limited(&mut f, max_file_bytes, label).await {
            Err(BodyRefusal::TooLarge(label)) => {
                // Read the rest without keeping it (bounded by the route's body limit), so the
                // browser gets the answer rather than a reset connection.
                drop(f);
                drain(mp).await;
                return Err(BodyRefusal::TooLarge(label));
            }
            other => other?,
        };
        if bytes.is_empty() && file_name.is_empty() {
            continue;
        }
        *slot = Some(FilePart {
            file_name,
            declared_type,
            bytes,
        });
    }
    if !token_ok {
        let e = check_csrf(Some(session_token), None).err();
        return Err(BodyRefusal::Csrf(
            e.map(|e| e.message_zh())
                .unwrap_or_else(|| "页面已过期，请刷新页面后重新提交".to_owned()),
        ));
    }
    Ok(form)
}

/// The counter's judgement of a survey file.
enum Judged {
    /// It could not be read.
    Unreadable(Vec<ProblemView>),
    /// Read: its format, the findings, and why it must go on media (if it must).
    Read {
        format: SurveyFormat,
        findings: Vec<FindingView>,
        errors: bool,
        counter_only: Option<String>,
    },
}

fn judge(file_name: &str, bytes: &[u8], max_bytes: u64) -> Judged {
    let Some(format) = detect_format(file_name, bytes) else {
        return Judged::Unreadable(vec![ProblemView {
            line: String::new(),
            message: "无法识别权籍调查成果文件的格式".to_owned(),
            advice: "请上传界址点坐标 TXT 文件（含 [属性描述]、[地块坐标]）或 GeoJSON 文件"
                .to_owned(),
        }]);
    };
    let opts = ParseOptions {
        max_bytes: usize::try_from(max_bytes).unwrap_or(usize::MAX),
        ..ParseOptions::default()
    };
    let pkg = match parse_package(bytes, format, &opts) {
        Ok(pkg) => pkg,
        Err(errors) => {
            return Judged::Unreadable(
                errors
                    .0
                    .into_iter()
                    .map(|p| ProblemView {
                        line: p.line.map(|l| format!("第{l}行")).unwrap_or_default(),
                        message: p.message,
                        advice: p.advice,
                    })
                    .collect(),
            );
        }
    };
    let findings = check_package(&pkg, &CheckConfig::default());
    let errors = findings.iter().any(|f| f.severity == Severity::Error);
    Judged::Read {
        format: match format {
            SourceFormat::BoundaryTxt => SurveyFormat::BoundaryTxt,
            SourceFormat::GeoJson => SurveyFormat::GeoJson,
        },
        findings: findings
            .into_iter()
            .map(|f| FindingView {
                severity_code: f.severity.as_str().to_owned(),
                severity: f.severity.label_zh(),
                place: place(f.parcel.as_deref(), f.point.as_deref(), f.line),
                message: f.message,
                advice: f.advice,
            })
            .collect(),
        errors,
        counter_only: pkg
            .counter_only(&OnlineLimits::default())
            .map(|r| r.message()),
    }
}

async fn send_survey(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(no): Path<String>,
    mp: Multipart,
) -> Result<Response, PageError> {
    let auth = authed(&state, &headers).await?;
    // Judged before the body: district, business, role, status.
    let (case, approved) = {
        let mut conn = state.store.reader().acquire().await.map_err(internal)?;
        let case = cases::get(&mut conn, &auth.staff.district_code, &no)
            .await
            .map_err(internal)?
            .ok_or(PageError::NotFound)?;
        let approved = survey::packages(&mut conn, &state.pii, &no)
            .await
            .map_err(internal)?
            .iter()
            .any(SentPackage::approved);
        (case, approved)
    };
    if !needs_survey(&case) {
        return Err(PageError::NotFound);
    }
    if !auth.staff.has(Role::Review) {
        return Err(PageError::Forbidden(
            "只有本区县审核岗位的登记人员可以送权籍审核；请联系审核岗位人员办理".into(),
        ));
    }
    if case.status != CaseStatus::Accepted || approved {
        let message = if approved {
            "权籍调查成果已审核通过，不需要再次送审；请填写新单元的登簿信息后继续办理".to_owned()
        } else {
            format!(
                "申请当前为“{}”状态，只有已受理的首次登记可以送权籍审核",
                case.status.name_zh()
            )
        };
        return panel_error(&state, &auth, &no, StatusCode::CONFLICT, message, |_| {}).await;
    }
    let max = state.settings.materials.max_file_bytes;
    let form = match read_form(mp, &auth.token, max).await {
        Ok(f) => f,
        Err(BodyRefusal::Csrf(m)) => return Err(PageError::BadRequest(m)),
        Err(BodyRefusal::TooLarge(label)) => {
            return panel_error(
                &state,
                &auth,
                &no,
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "{label}超过 {} MB 的上限，未送审；请检查是否选错了文件，成果过大时请刻录光盘按涉密成果办理",
                    max / (1024 * 1024)
                ),
                |_| {},
            )
            .await;
        }
        Err(BodyRefusal::Malformed(status)) => {
            return panel_error(
                &state,
                &auth,
                &no,
                if status == StatusCode::PAYLOAD_TOO_LARGE {
                    status
                } else {
                    StatusCode::BAD_REQUEST
                },
                "上传内容不完整或格式不正确，未送审；请重新选择文件提交".to_owned(),
                |_| {},
            )
            .await;
        }
    };
    let confidential_box = form.confidential;
    let Some(survey_file) = form.survey.filter(|f| !f.bytes.is_empty()) else {
        return panel_error(
            &state,
            &auth,
            &no,
            StatusCode::BAD_REQUEST,
            "请选择权籍调查成果文件（界址点坐标 TXT 或 GeoJSON），文件不能为空".to_owned(),
            |sv| sv.confidential_checked = confidential_box,
        )
        .await;
    };
    // The report, if any, must be a PDF by its content.
    let report = match form.report {
        Some(r) => {
            let limits = UploadLimits {
                max_file_bytes: max,
                max_files: 1,
            };
            match check_upload(&r.file_name, r.declared_type.as_deref(), &r.bytes, &limits) {
                Ok(c) if c.media == AllowedMedia::Pdf => Some((c.safe_filename, r.bytes)),
                Ok(_) => {
                    return panel_error(
                        &state,
                        &auth,
                        &no,
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "权籍调查报告须为 PDF 文件，未送审；请将报告另存为 PDF 后重新提交".into(),
                        |sv| sv.confidential_checked = confidential_box,
                    )
                    .await;
                }
                Err(e) => {
                    return panel_error(
                        &state,
                        &auth,
                        &no,
                        StatusCode::UNPROCESSABLE_ENTITY,
                        format!("权籍调查报告未能接收，未送审：{}", e.message_zh()),
                        |sv| sv.confidential_checked = confidential_box,
                    )
                    .await;
                }
            }
        }
        None => None,
    };
    let survey_name = safe_filename(&survey_file.file_name, None);
    let bytes = survey_file.bytes;
    let (judged, bytes) = tokio::task::spawn_blocking(move || {
        let j = judge(&survey_name, &bytes, max);
        (j, (survey_name, bytes))
    })
    .await
    .map_err(internal)?;
    let (survey_name, bytes) = bytes;
    let (format, counter_only) = match judged {
        Judged::Unreadable(problems) => {
            return panel_error(
                &state,
                &auth,
                &no,
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "权籍调查成果文件有{}处问题，无法读取，未送审；请按下列提示请测绘单位改正后重新上传",
                    problems.len()
                ),
                |sv| {
                    sv.problems = problems;
                    sv.confidential_checked = confidential_box;
                },
            )
            .await;
        }
        Judged::Read {
            findings,
            errors: true,
            ..
        } if !form.acknowledged => {
            let count = findings
                .iter()
                .filter(|f| f.severity_code == "error")
                .count();
            return panel_error(
                &state,
                &auth,
                &no,
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "窗口预检发现{count}处错误，未送审。请核对下列问题：需要改正的请测绘单位改正后重新上传；\
                     核对后仍要送审的，请重新选择文件并勾选“已核对，仍送审”（内网权籍审核将再次检查）"
                ),
                |sv| {
                    sv.findings = findings;
                    sv.needs_ack = true;
                    sv.confidential_checked = confidential_box;
                },
            )
            .await;
        }
        Judged::Read {
            format,
            counter_only,
            ..
        } => (format, counter_only),
    };
    let confidential = confidential_box || counter_only.is_some();
    let survey_id = survey::store_counter_file(
        &state,
        &no,
        SURVEY_CHECKLIST,
        &survey_name,
        format.media_type(),
        std::io::Cursor::new(bytes),
    )
    .await
    .map_err(internal)?;
    let report_id = match report {
        Some((name, bytes)) => Some(
            survey::store_counter_file(
                &state,
                &no,
                REPORT_CHECKLIST,
                &name,
                "application/pdf",
                std::io::Cursor::new(bytes),
            )
            .await
            .map_err(internal)?,
        ),
        None => None,
    };
    let upload = SurveyUpload {
        format,
        survey_material_id: survey_id,
        report_material_id: report_id,
        confidential,
    };
    match survey::send(&state, &auth.staff, &no, upload).await {
        Ok(_) => {
            let how = match (&counter_only, confidential) {
                (Some(_), _) => "forced-media",
                (None, true) => "media",
                (None, false) => "gateway",
            };
            Ok(redirect(&format!(
                "/cases/{}?survey={how}",
                url_encode(&no)
            )))
        }
        Err(e) => action_failed(&state, &auth, &no, e).await,
    }
}

/// `POST /cases/{no}/survey/submitted`: sends a survey package the applicant submitted (a
/// material of the case, field `material`), pre-checked as the counter upload is, without
/// uploading it again.
async fn send_submitted_survey(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(no): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let auth = authed(&state, &headers).await?;
    check_form_csrf(&auth.token, &form)?;
    let (case, submitted) = {
        let mut conn = state.store.reader().acquire().await.map_err(internal)?;
        let case = cases::get(&mut conn, &auth.staff.district_code, &no)
            .await
            .map_err(internal)?
            .ok_or(PageError::NotFound)?;
        let submitted = submitted_surveys(&mut conn, &state.pii, &no)
            .await
            .map_err(internal)?;
        (case, submitted)
    };
    if !needs_survey(&case) {
        return Err(PageError::NotFound);
    }
    if !auth.staff.has(Role::Review) {
        return Err(PageError::Forbidden(
            "只有本区县审核岗位的登记人员可以送权籍审核；请联系审核岗位人员办理".into(),
        ));
    }
    let chosen = field(&form, "material").unwrap_or_default();
    let confidential_box = field(&form, "confidential") == Some("yes");
    let acknowledged = field(&form, "acknowledged") == Some("yes");
    let Some(material) = submitted.into_iter().find(|m| m.material_id == chosen) else {
        return panel_error(
            &state,
            &auth,
            &no,
            StatusCode::BAD_REQUEST,
            "请选择申请人提交的权籍调查成果".to_owned(),
            |_| {},
        )
        .await;
    };
    let max = state.settings.materials.max_file_bytes;
    let (pii, data_dir, id) = (
        state.pii.clone(),
        state.data_dir().to_path_buf(),
        material.material_id.clone(),
    );
    let name = material.file_name.clone();
    let judged = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let (reader, _) = crate::materials::open_blocking(&pii, &data_dir, &id)?;
        let mut bytes = Vec::new();
        reader
            .take(max.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| crate::ExtranetError::Corrupt(format!("material {id}: {e}")))?;
        Ok::<_, crate::ExtranetError>(judge(&name, &bytes, max))
    })
    .await
    .map_err(internal)?
    .map_err(internal)?;
    let (format, counter_only) = match judged {
        Judged::Unreadable(problems) => {
            return panel_error(
                &state,
                &auth,
                &no,
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "申请人提交的权籍调查成果有{}处问题，无法读取，未送审；请要求申请人补正",
                    problems.len()
                ),
                |sv| sv.problems = problems,
            )
            .await;
        }
        Judged::Read {
            findings,
            errors: true,
            ..
        } if !acknowledged => {
            return panel_error(
                &state,
                &auth,
                &no,
                StatusCode::UNPROCESSABLE_ENTITY,
                "窗口预检发现错误，未送审。核对后仍要送审的，请勾选“已核对，仍送审”后重新提交（内网权籍审核将再次检查）".to_owned(),
                |sv| {
                    sv.findings = findings;
                    sv.needs_ack = true;
                    sv.confidential_checked = confidential_box;
                },
            )
            .await;
        }
        Judged::Read {
            format,
            counter_only,
            ..
        } => (format, counter_only),
    };
    let confidential = confidential_box || counter_only.is_some();
    let upload = SurveyUpload {
        format,
        survey_material_id: material.material_id,
        report_material_id: None,
        confidential,
    };
    match survey::send(&state, &auth.staff, &no, upload).await {
        Ok(_) => {
            let how = match (&counter_only, confidential) {
                (Some(_), _) => "forced-media",
                (None, true) => "media",
                (None, false) => "gateway",
            };
            Ok(redirect(&format!(
                "/cases/{}?survey={how}",
                url_encode(&no)
            )))
        }
        Err(e) => action_failed(&state, &auth, &no, e).await,
    }
}

/// The notice of the case page after a survey was sent (`?survey=`) or the unit page saved.
pub(super) fn notice(code: &str) -> Option<&'static str> {
    Some(match code {
        "gateway" => "已送权籍审核：权籍调查成果将经网闸发送至内网权籍审核，案件转为“待权籍审核”。",
        "media" => {
            "已送权籍审核：成果按涉密成果办理，已排入光盘摆渡（不经网闸），请按摆渡流程刻录光盘送内网。"
        }
        "forced-media" => {
            "已送权籍审核：该成果涉密或面积超过6平方公里，只能光盘摆渡，不经网闸；已排入光盘摆渡，请按摆渡流程刻录光盘送内网。"
        }
        "unit" => "新单元的登簿信息已保存。",
        _ => return None,
    })
}

async fn action_failed(
    state: &AppState,
    auth: &Authed,
    no: &str,
    e: ActionError,
) -> Result<Response, PageError> {
    let status = match &e {
        ActionError::NotFound => return Err(PageError::NotFound),
        ActionError::Forbidden { .. } => StatusCode::FORBIDDEN,
        ActionError::Internal(cause) => {
            tracing::error!(application_no = %no, error = %cause, "survey action failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
        _ => StatusCode::CONFLICT,
    };
    panel_error(state, auth, no, status, format!("未能办理：{e}"), |_| {}).await
}

async fn save_unit_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(no): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let auth = authed(&state, &headers).await?;
    check_form_csrf(&auth.token, &form)?;
    let value = |name: &str| field(&form, name).unwrap_or_default().to_owned();
    let input = UnitPageInput {
        location: value("location"),
        usage: value("usage"),
        right_type: value("right_type"),
        right_nature: value("right_nature"),
        use_term: value("use_term"),
    };
    match survey::set_unit_page(&state, &auth.staff, &no, &input).await {
        Ok(()) => Ok(redirect(&format!("/cases/{}?survey=unit", url_encode(&no)))),
        Err(UnitPageError::Action(e)) => action_failed(&state, &auth, &no, e).await,
        Err(e) => {
            let status = match e {
                UnitPageError::NoApprovedSurvey => StatusCode::CONFLICT,
                _ => StatusCode::BAD_REQUEST,
            };
            panel_error(
                &state,
                &auth,
                &no,
                status,
                format!("新单元的登簿信息未保存：{e}"),
                |sv| {
                    // The values typed stay in the form.
                    if let Some(u) = sv.unit.as_mut() {
                        u.location = input.location;
                        u.usage = input.usage;
                        u.right_type_zh = right_type_zh(input.right_type.trim());
                        u.right_type = input.right_type;
                        u.right_nature = input.right_nature;
                        u.use_term = input.use_term;
                    }
                },
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TXT: &str = "[属性描述]\n带号=38\n[地块坐标]\n5,0.5000,D001,示例地块,面,,070101,0701,@\n\
        J1,1,3380000.000,38500000.000\nJ2,1,3380000.000,38500100.000\n\
        J3,1,3379950.000,38500100.000\nJ4,1,3379950.000,38500000.000\n\
        J1,1,3380000.000,38500000.000\n";

    #[test]
    fn a_good_file_is_read_and_may_go_online() {
        match judge("a.txt", TXT.as_bytes(), 1 << 20) {
            Judged::Read {
                format,
                errors,
                counter_only,
                ..
            } => {
                assert_eq!(format, SurveyFormat::BoundaryTxt);
                assert!(!errors);
                assert!(counter_only.is_none());
            }
            Judged::Unreadable(p) => {
                panic!("{:?}", p.iter().map(|p| &p.message).collect::<Vec<_>>())
            }
        }
    }

    #[test]
    fn a_garbage_line_is_named_by_its_number() {
        let bad = TXT.replace("J3,1,3379950.000,38500100.000", "这一行不是坐标");
        match judge("a.txt", bad.as_bytes(), 1 << 20) {
            Judged::Unreadable(p) => assert!(
                p.iter().any(|p| p.line == "第7行"),
                "{:?}",
                p.iter().map(|p| (&p.line, &p.message)).collect::<Vec<_>>()
            ),
            Judged::Read { .. } => panic!("garbage was read"),
        }
        // Larger than the limit: refused by size, not read.
        assert!(matches!(
            judge("a.txt", TXT.as_bytes(), 10),
            Judged::Unreadable(_)
        ));
        // Neither content nor name says what it is.
        assert!(matches!(
            judge("a.bin", b"hello", 1 << 20),
            Judged::Unreadable(_)
        ));
    }

    #[test]
    fn a_classified_package_must_go_on_media() {
        let classified = TXT.replace("带号=38\n", "带号=38\n密级=秘密\n");
        match judge("a.txt", classified.as_bytes(), 1 << 20) {
            Judged::Read { counter_only, .. } => assert!(counter_only.is_some()),
            Judged::Unreadable(p) => {
                panic!("{:?}", p.iter().map(|p| &p.message).collect::<Vec<_>>())
            }
        }
    }

    #[test]
    fn places_read_as_words() {
        assert_eq!(
            place(Some("D001"), Some("J3"), Some(7)),
            "地块D001，J3，第7行"
        );
        assert_eq!(place(None, None, None), "");
    }
}
