//! My applications: the list, one application's detail with its timeline, supplement uploads,
//! and the citizen's own uploaded files.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use ow_domain::CaseStatus;

use super::{Layout, PageResult, attachment, error_page, layout, mb, render, see_other};
use crate::accounts;
use crate::app::AppState;
use crate::applications::{self, MaterialView, SubmitError};
use crate::error::FieldError;
use crate::files::check_all_for;
use crate::uploads::{TokenCheck, UploadBodyError, read_upload};
use crate::util::fmt_ms;
use crate::web::{Citizen, PageError, check_form_csrf, check_form_origin, form_csrf};

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

/// `GET /applications[?deleted=1]`: drafts and applications; after a draft was deleted, says so.
pub async fn applications_list(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
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
    let mut l = layout("我的申请", Some(&s), csrf);
    if q.contains_key("deleted") {
        l.notice = Some("草稿已删除，其中上传的材料也已一并删除".into());
    }
    render(&ApplicationsPage { layout: l, rows }, StatusCode::OK)
}

struct TimelineRow {
    class: &'static str,
    title: String,
    when: String,
    /// `原因` for a refusal or a request for supplements, `说明` for a registrar's note on
    /// another step; `None` for text that is not a reason (the receipt's words).
    label: Option<&'static str>,
    text: Option<String>,
    /// The text has line breaks to keep (a cadastral review's findings, one per line).
    multiline: bool,
    requested: String,
}

/// How one timeline entry reads: its title, and its text with the label that fits it.
fn timeline_wording(
    e: &applications::TimelineEntry,
) -> (String, Option<&'static str>, Option<String>) {
    let status = CaseStatus::from_code(&e.status);
    if e.status == applications::RECEIVED {
        return ("登记机构已收到".into(), None, e.reason.clone());
    }
    match status {
        // The portal's own entries: the submission, and a supplement sent (which carries the
        // words 已提交补正材料 as its note, not as a reason).
        Some(CaseStatus::Submitted) if e.reason.is_some() => ("已提交补正材料".into(), None, None),
        Some(CaseStatus::Submitted) => ("已提交".into(), None, None),
        Some(CaseStatus::Refused | CaseStatus::SupplementRequested | CaseStatus::Withdrawn) => {
            (e.status_zh.clone(), Some("原因"), e.reason.clone())
        }
        Some(CaseStatus::SurveyReview) => (
            format!("{}（权籍调查成果审核中）", e.status_zh),
            Some("说明"),
            e.reason.clone(),
        ),
        _ => (e.status_zh.clone(), Some("说明"), e.reason.clone()),
    }
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

fn material_names(biz: ow_domain::BusinessType, codes: &[String]) -> String {
    codes
        .iter()
        .map(|c| {
            biz.required_materials()
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
            let (title, label, text) = timeline_wording(e);
            TimelineRow {
                class: match st {
                    Some(CaseStatus::Refused | CaseStatus::Withdrawn) => "rejected",
                    _ if last && !st.is_some_and(CaseStatus::is_final) => "current",
                    _ => "done",
                },
                title,
                when: fmt_ms(e.changed_at_ms),
                label: text.as_ref().and(label),
                multiline: text.as_ref().is_some_and(|t| t.contains('\n')),
                text,
                requested: material_names(row.business, &e.requested_materials),
            }
        })
        .collect();
    if !status.is_some_and(CaseStatus::is_final) {
        let seen: Vec<&str> = events.iter().map(|e| e.status.as_str()).collect();
        // A business with a survey passes 待权籍审核 after 受理.
        let survey = row
            .business
            .needs_survey()
            .then_some(CaseStatus::SurveyReview);
        let upcoming = [CaseStatus::Accepted].into_iter().chain(survey).chain([
            CaseStatus::Reviewed,
            CaseStatus::Recorded,
            CaseStatus::CertificatePrepared,
            CaseStatus::Completed,
        ]);
        for next in upcoming {
            if !seen.contains(&next.code()) {
                timeline.push(TimelineRow {
                    class: "pending",
                    title: next.name_zh().to_owned(),
                    when: String::new(),
                    label: None,
                    text: None,
                    multiline: false,
                    requested: String::new(),
                });
            }
        }
    }
    let supplement = status == Some(CaseStatus::SupplementRequested);
    let (csrf, _) = form_csrf(app, Some(s), headers);
    let mut l = layout(&format!("申请 {no}"), Some(s), csrf);
    l.set_errors(errors);
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
        checklist: row
            .business
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
    let notice = if q.contains_key("supplemented") {
        Some("补正材料已提交".to_owned())
    } else {
        None
    };
    let page = application_page(&app, &s, &headers, &no, Vec::new(), notice).await?;
    render(&page, StatusCode::OK)
}

#[derive(Template)]
#[template(path = "submitted.html")]
struct SubmittedPage {
    layout: Layout,
    application_no: String,
    submitted: String,
}

/// `GET /applications/{no}/submitted`: the confirmation after submitting: the application
/// number, what happens next, the legal time limit and how the citizen will be told.
pub async fn application_submitted(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path(no): Path<String>,
) -> PageResult {
    let row = applications::get_application(&app, &s.account_id, &no)
        .await?
        .ok_or(PageError::NotFound)?;
    let (csrf, _) = form_csrf(&app, Some(&s), &headers);
    render(
        &SubmittedPage {
            layout: layout("申请已提交", Some(&s), csrf),
            application_no: no,
            submitted: row.submitted_at_ms.map(fmt_ms).unwrap_or_default(),
        },
        StatusCode::OK,
    )
}

/// `POST /applications/{no}/supplements` (multipart: `checklist_code`, `file`, `note`).
pub async fn supplement(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path(no): Path<String>,
    mp: Multipart,
) -> PageResult {
    // Whose application, and whether the page's origin is ours, before a byte of the body is
    // read; the token before the first file is written.
    check_form_origin(&app, &headers)?;
    let biz = applications::get_application(&app, &s.account_id, &no)
        .await?
        .ok_or(PageError::NotFound)?
        .business;
    let check = |t: Option<&str>| check_form_csrf(&app, Some(&s), &headers, t);
    let read = match read_upload(
        mp,
        &app.files,
        &app.upload_limits,
        TokenCheck::FormField(&check),
    )
    .await
    {
        Err(UploadBodyError::Csrf(e)) => return Err(PageError::Csrf(e)),
        Err(UploadBodyError::Internal(e)) => return Err(e.into()),
        other => other,
    };
    let result = match read {
        Err(e) => Err(vec![FieldError::new("file", e.message_zh())]),
        Ok((fields, mut files)) => {
            let code = fields.get("checklist_code").cloned().unwrap_or_default();
            if !applications::is_checklist_code(biz, &code) {
                Err(vec![FieldError::new("checklist_code", "请选择材料类型")])
            } else {
                for f in &mut files {
                    f.field = code.clone();
                }
                match check_all_for(biz, files, &app.upload_limits, &app.files).await {
                    Err(e) => Err(e
                        .messages_zh()
                        .into_iter()
                        .map(|m| FieldError::new("file", m))
                        .collect()),
                    Ok((accepted, _)) => {
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

/// `GET /materials/{id}`: one of the citizen's own uploaded files.
pub async fn material_download(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    Path(id): Path<String>,
) -> PageResult {
    let (m, body) = applications::material_file(&app, &s.account_id, &id)
        .await?
        .ok_or(PageError::NotFound)?;
    let Some((body, len)) = body else {
        let html = error_page(
            "材料已送达",
            "该材料已送达不动产登记机构，为保护您的个人信息，网上办事大厅不再保存副本。如需查阅，请联系登记机构。",
        );
        return Ok((StatusCode::GONE, axum::response::Html(html)).into_response());
    };
    let ext = m.file_name.rsplit('.').next().unwrap_or("bin");
    let mut r = body.into_response();
    // Known from the sealed file's layout: a download cut by a failing chunk is seen as cut.
    r.headers_mut()
        .insert(axum::http::header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(v) = HeaderValue::from_str(&m.media_type) {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    r.headers_mut().insert(
        CONTENT_DISPOSITION,
        attachment(&m.file_name, &format!("material.{ext}")),
    );
    Ok(r)
}
