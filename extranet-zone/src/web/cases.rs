//! One case: its page and the registrar's actions on it.
//!
//! Each action form carries the registrar's opinion (审核意见 and 登簿意见 required). 登簿 and
//! 发证 cannot be undone: their forms first answer with a confirmation page (plain HTML, no
//! JavaScript) whose own form carries `confirmed=yes`. Names and ID numbers are masked; a
//! registrar of the district opens them in full (`?ids=full`) to compare them with the uploaded
//! ID card, and each such view is an event in the case history and the audit log.

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use ow_domain::{BusinessType, CaseStatus};
use serde::Deserialize;

use super::materials::opens_inline;
use super::queues::stage_label_zh;
use super::{
    Authed, Layout, PageError, PartyView, authed, check_form_csrf, field, fields, fmt_ms,
    id_type_zh, internal, redirect, render, render_status, url_encode, yuan,
};
use crate::AppState;
use crate::cases::{self, Case};
use crate::deadline::{self, Deadline};
use crate::register;
use crate::rules::{self, RuleViolation};
use crate::staff::{Role, StaffMember};
use crate::workflow::{self, Action, ActionError, ActionInput};

use crate::cases::FULL_VIEW_FIELDS;

/// Whether `staff` may see the parties of their district's cases in full: registrars (any
/// workflow role); a district admin alone may not.
pub fn may_view_in_full(staff: &StaffMember) -> bool {
    [Role::Accept, Role::Review, Role::Record, Role::Certificate]
        .into_iter()
        .any(|r| staff.has(r))
}

/// The routes of this part of the back office.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/cases/{no}", get(case_page))
        .route("/cases/{no}/{action}", post(case_action))
}

struct MaterialView {
    id: String,
    inline: bool,
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
    opinion_label: &'static str,
    opinion: String,
    audit: String,
}

struct ActionView {
    code: &'static str,
    label: &'static str,
    needs_reason: bool,
    supplement: bool,
    danger: bool,
    prefill: String,
    opinion_label: &'static str,
    opinion_required: bool,
    confirm: bool,
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
    stage: &'static str,
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
    /// Whether names and ID numbers are shown in full (and this view was logged).
    full_ids: bool,
    /// Whether this member may open them in full.
    can_view_full: bool,
    time_limit: String,
    due: String,
    left: String,
    overdue: bool,
    /// The opinion typed, kept when the form comes back with an error.
    opinion_typed: String,
}

/// The confirmation of 登簿 or 发证: what will happen, with a form that carries the opinion.
#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    layout: Layout,
    no: String,
    code: &'static str,
    label: &'static str,
    business: &'static str,
    unit_code: String,
    location: String,
    sellers: Vec<PartyView>,
    buyers: Vec<PartyView>,
    consequences: Vec<&'static str>,
    opinion_label: &'static str,
    opinion: String,
}

/// The name of the opinion stored with an event, by its action.
fn opinion_label_of_event(action: &str) -> &'static str {
    Action::ALL
        .into_iter()
        .find(|a| {
            [CaseStatus::Submitted, CaseStatus::Accepted]
                .into_iter()
                .any(|from| a.event(from) == action)
        })
        .map_or("意见", Action::opinion_label_zh)
}

fn checklist_name(business: &str, code: &str) -> String {
    BusinessType::from_code(business)
        .and_then(|b| b.required_materials().iter().find(|m| m.code == code))
        .map_or_else(|| code.to_owned(), |m| m.name_zh.to_owned())
}

async fn build_case_page(
    state: &AppState,
    auth: &Authed,
    no: &str,
    full_ids: bool,
) -> Result<CasePage, PageError> {
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
            rules::CaseKey {
                application_no: no,
                district,
                business: &case.business_type,
                unit_code: case.unit_code.as_deref(),
            },
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
        name: if full_ids {
            p.name.clone()
        } else {
            p.name_masked()
        },
        id_type: id_type_zh(&p.id_type),
        id_number: if full_ids {
            p.id_number.clone()
        } else {
            p.id_masked()
        },
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
            opinion_label: a.opinion_label_zh(),
            opinion_required: a.needs_opinion(),
            confirm: a.needs_confirmation(),
        })
        .collect();
    let limit = deadline::time_limit_for_code(&case.business_type);
    let open = !case.status.is_final();
    let deadline = case
        .accepted_at_ms
        .filter(|_| open)
        .map(|at| Deadline::compute(at, limit, state.now_ms()));
    let mut event_views = Vec::with_capacity(events.len());
    for e in &events {
        let opinion = cases::open_opinion(&state.pii, e).map_err(internal)?;
        event_views.push(EventView {
            when: fmt_ms(e.at_ms),
            who: e
                .staff_name
                .clone()
                .unwrap_or_else(|| "网上申请（系统接收）".to_owned()),
            what: cases::action_zh(&e.action),
            to: status_zh(&e.to_status),
            // A full view's reason lists field kinds for the audit log, not for people.
            reason: if e.action == cases::VIEW_PERSONAL_DATA {
                String::new()
            } else {
                e.reason.clone().unwrap_or_default()
            },
            opinion_label: opinion_label_of_event(&e.action),
            opinion: opinion.unwrap_or_default(),
            audit: e
                .audit_index
                .map(|i| format!("审计日志第{i}条"))
                .unwrap_or_default(),
        });
    }
    fn status_zh(s: &Option<String>) -> String {
        s.as_deref()
            .and_then(CaseStatus::from_code)
            .map_or(String::new(), |s| s.name_zh().to_owned())
    }
    Ok(CasePage {
        layout: Layout::for_staff(format!("业务 {no}"), auth),
        no: case.application_no.clone(),
        business: case.business_zh(),
        status: case.status.name_zh(),
        status_code: case.status.code(),
        stage: stage_label_zh(case.status),
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
                inline: opens_inline(&m.media_type),
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
        events: event_views,
        actions,
        checklist,
        full_ids,
        can_view_full: may_view_in_full(&auth.staff),
        time_limit: format!("{limit}个工作日"),
        due: deadline
            .map(|d| d.due.format("%Y-%m-%d").to_string())
            .unwrap_or_default(),
        left: deadline.map(|d| d.left_zh()).unwrap_or_default(),
        overdue: deadline.is_some_and(|d| d.overdue()),
        opinion_typed: String::new(),
    })
}

#[derive(Deserialize)]
struct CaseQuery {
    done: Option<String>,
    /// `full`: show names and ID numbers in full (logged).
    ids: Option<String>,
}

/// Records that `staff` viewed the parties of case `no` in full: an event in the case history
/// and, right after the commit, an audit-log entry (who, case, field kinds, when).
async fn log_full_view(state: &AppState, staff: &StaffMember, no: &str) -> Result<(), PageError> {
    let mut tx = state.store.begin().await.map_err(internal)?;
    cases::insert_event(
        &mut tx,
        &state.pii,
        no,
        Some(&staff.district_code),
        Some(&staff.id),
        cases::VIEW_PERSONAL_DATA,
        None,
        None,
        Some(FULL_VIEW_FIELDS),
        state.now_ms(),
    )
    .await
    .map_err(internal)?;
    tx.commit().await.map_err(internal)?;
    tracing::info!(application_no = %no, staff_id = %staff.id, fields = FULL_VIEW_FIELDS,
        "personal data viewed in full");
    state.after_commit().await;
    Ok(())
}

async fn case_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(no): Path<String>,
    Query(q): Query<CaseQuery>,
) -> Result<Response, PageError> {
    let auth = authed(&state, &headers).await?;
    let full = match q.ids.as_deref() {
        None | Some("") => false,
        Some("full") => true,
        Some(_) => return Err(PageError::NotFound),
    };
    if full {
        let mut conn = state.store.reader().acquire().await.map_err(internal)?;
        cases::get(&mut conn, &auth.staff.district_code, &no)
            .await
            .map_err(internal)?
            .ok_or(PageError::NotFound)?;
        drop(conn);
        if !may_view_in_full(&auth.staff) {
            return Err(PageError::Forbidden(
                "只有本区县的登记人员（受理、审核、登簿、缮证岗位）可以查看完整的姓名和证件号码"
                    .into(),
            ));
        }
        log_full_view(&state, &auth.staff, &no).await?;
    }
    let mut page = build_case_page(&state, &auth, &no, full).await?;
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
        opinion: field(&form, "opinion").map(str::to_owned),
    };
    if action.needs_confirmation() && field(&form, "confirmed") != Some("yes") {
        return confirmation(&state, &auth, &no, action, &input).await;
    }
    match workflow::perform(&state, &auth.staff, &no, action, input.clone()).await {
        Ok(_) => Ok(redirect(&format!(
            "/cases/{}?done={}",
            url_encode(&no),
            action.code()
        ))),
        Err(e) => failed(&state, &auth, &no, action, &input, e).await,
    }
}

/// The case page again with why `action` was not done (the opinion typed kept).
async fn failed(
    state: &AppState,
    auth: &Authed,
    no: &str,
    action: Action,
    input: &ActionInput,
    e: ActionError,
) -> Result<Response, PageError> {
    let status = match &e {
        ActionError::NotFound => return Err(PageError::NotFound),
        ActionError::Forbidden { .. } => StatusCode::FORBIDDEN,
        ActionError::ReasonRequired
        | ActionError::MaterialsRequired
        | ActionError::OpinionRequired { .. } => StatusCode::BAD_REQUEST,
        ActionError::Internal(cause) => {
            tracing::error!(application_no = %no, error = %cause, "case action failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
        _ => StatusCode::CONFLICT,
    };
    let mut page = build_case_page(state, auth, no, false).await?;
    page.layout.error = Some(format!(
        "未能{}：{e}",
        action.label_zh(CaseStatus::Submitted)
    ));
    page.opinion_typed = input.opinion.clone().unwrap_or_default();
    if let ActionError::Rules(v) = &e {
        page.violations = v.clone();
        page.show_rules = true;
    }
    Ok(render_status(status, &page))
}

/// The confirmation page of 登簿 or 发证, after the same checks [`workflow::perform`] runs
/// first; for 登簿 also the register's rules as they stand now: a case they refuse gets the
/// case page with the violations (409), as the 登簿 itself would, and nothing to confirm.
async fn confirmation(
    state: &AppState,
    auth: &Authed,
    no: &str,
    action: Action,
    input: &ActionInput,
) -> Result<Response, PageError> {
    let district = &auth.staff.district_code;
    let mut conn = state.store.reader().acquire().await.map_err(internal)?;
    let case: Case = cases::get(&mut conn, district, no)
        .await
        .map_err(internal)?
        .ok_or(PageError::NotFound)?;
    let checked = match workflow::check(&case, &auth.staff, action, input) {
        Ok(c) => c,
        Err(e) => {
            drop(conn);
            return failed(state, auth, no, action, input, e).await;
        }
    };
    let parties = cases::parties(&mut conn, &state.pii, no)
        .await
        .map_err(internal)?;
    let violations = if action == Action::Record {
        rules::check_case(
            &mut conn,
            &state.pii,
            rules::CaseKey {
                application_no: no,
                district,
                business: &case.business_type,
                unit_code: case.unit_code.as_deref(),
            },
            &parties,
            state.now_ms(),
        )
        .await
        .map_err(internal)?
    } else {
        Vec::new()
    };
    if !violations.is_empty() {
        // Nothing to confirm: the case page says why, as a refused 登簿 does.
        drop(conn);
        return failed(
            state,
            auth,
            no,
            action,
            input,
            ActionError::Rules(violations),
        )
        .await;
    }
    let registered = match case.unit_code.as_deref() {
        Some(code) => register::unit(&mut conn, district, code)
            .await
            .map_err(internal)?
            .map(|u| u.location),
        None => None,
    };
    // A first registration's unit is opened by this 登簿: its page is still the new unit's.
    let first_registration = registered.is_none()
        && ow_domain::BusinessType::from_code(&case.business_type)
            .is_some_and(ow_domain::BusinessType::needs_survey);
    let location = match registered {
        Some(location) => location,
        None => crate::survey::new_unit(&mut conn, no)
            .await
            .map_err(internal)?
            .map(|u| u.location)
            .unwrap_or_default(),
    };
    drop(conn);
    let view = |p: &cases::Party| PartyView {
        name: p.name_masked(),
        id_type: id_type_zh(&p.id_type),
        id_number: p.id_masked(),
        phone: p.phone_masked(),
        share: p.share.clone(),
    };
    let consequences: Vec<&'static str> = match action {
        Action::Record if first_registration => vec![
            "登记簿将开设新的不动产单元（单元号、面积取自权籍调查审核结果），记载下列权利人及其份额为现势权利；",
            "登簿后申请人不能再撤回申请，登簿结果不能在本系统中撤销（如有错误须办理更正登记）；",
            "办理结果将通知申请人。",
        ],
        Action::Record => vec![
            "登记簿将记载下列权利人及其份额为现势权利，原权利转为历史；",
            "登簿后申请人不能再撤回申请，登簿结果不能在本系统中撤销（如有错误须办理更正登记）；",
            "办理结果将通知申请人。",
        ],
        _ => vec![
            "将按本区县本年度顺序编制不动产权证书号（证书号不会重复使用）；",
            "将签发电子证照，并注销义务人的原证书；",
            "业务办结，证书和办结状态将推送给申请人，发证后不能撤销。",
        ],
    };
    let label = action.label_zh(case.status);
    Ok(render(&ConfirmPage {
        layout: Layout::for_staff(format!("确认{label} {no}"), auth),
        no: case.application_no.clone(),
        code: action.code(),
        label,
        business: case.business_zh(),
        unit_code: case.unit_code.clone().unwrap_or_default(),
        location,
        sellers: parties
            .iter()
            .filter(|p| p.role == cases::SELLER)
            .map(view)
            .collect(),
        buyers: parties
            .iter()
            .filter(|p| p.role == cases::BUYER)
            .map(view)
            .collect(),
        consequences,
        opinion_label: action.opinion_label_zh(),
        opinion: checked.opinion.unwrap_or_default(),
    }))
}
