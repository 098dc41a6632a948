//! One case: its page and the registrar's actions on it.

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use ow_domain::{BusinessType, CaseStatus};
use serde::Deserialize;

use super::{
    Authed, Layout, PageError, PartyView, authed, check_form_csrf, field, fields, fmt_ms,
    id_type_zh, internal, redirect, render, render_status, url_encode, yuan,
};
use crate::AppState;
use crate::cases;
use crate::register;
use crate::rules::{self, RuleViolation};
use crate::workflow::{self, Action, ActionError, ActionInput};

/// The routes of this part of the back office.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/cases/{no}", get(case_page))
        .route("/cases/{no}/{action}", post(case_action))
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

fn checklist_name(business: &str, code: &str) -> String {
    BusinessType::from_code(business)
        .and_then(|b| b.required_materials().iter().find(|m| m.code == code))
        .map_or_else(|| code.to_owned(), |m| m.name_zh.to_owned())
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
    let materials = cases::materials(&mut conn, no).await.map_err(internal)?;
    let events = cases::events(&mut conn, no).await.map_err(internal)?;
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
        reason: case.status_reason.clone().unwrap_or_default(),
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
