//! The workflow of a case: accept (受理) / refuse (不予受理) / request supplement (补正) →
//! review (审核) → record (登簿) → prepare certificate (缮证) → issue (发证, 办结). A refusal
//! after acceptance is 不予登记.
//!
//! Every action needs the right role, checks the status transition for the case's business
//! (`ow_domain::CaseStatus::move_to_for`: 发证 only after 缮证) and runs in ONE transaction that updates the case, writes
//! an `ext_case_events` row (who, when, what, why) and queues an `ApplicationStatus` message to
//! the portal (with the reason). Recording takes the unit's lock row and checks the rules in
//! the same transaction; issuing numbers, signs and stores the certificate, cancels the
//! seller's certificate and queues `CertificateIssued` and the `CertificateStatus` messages.
//! Right after the commit the event is appended to the audit log.

use std::path::PathBuf;

use ow_bundle::{Channel, Zone};
use ow_domain::{BusinessType, CaseStatus, CertificateNumber, StatusTransitionError};
use sqlx::{Any, Transaction};

use crate::AppState;
use crate::cases::{self, Case};
use crate::certificates::{self, IssueInput, TRANSFER_CANCEL_REASON};
use crate::db;
use crate::error::ExtranetError;
use crate::exchange::{self, ApplicationStatus, CertificateIssued, InlineFile, Message};
use crate::register::{self, PartyInput};
use crate::rules::{self, NO_CONCURRENT_RECORDING, RuleViolation};
use crate::staff::{Role, StaffMember};

/// The channel status messages and certificates go out on.
pub const TO_PORTAL: Channel = Channel {
    from: Zone::Extranet,
    to: Zone::Internet,
};

/// The bundle item name of an issued certificate.
pub const CERTIFICATE_ITEM: &str = "certificate.json";

/// Longest reason accepted, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// Longest opinion accepted, in characters.
pub const MAX_OPINION_CHARS: usize = 1000;

/// What a registrar does to a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// 受理.
    Accept,
    /// 不予受理 (before acceptance) or 不予登记 (after).
    Refuse,
    /// 补正.
    RequestSupplement,
    /// 审核通过.
    Review,
    /// 登簿.
    Record,
    /// 缮证.
    PrepareCertificate,
    /// 发证 (办结).
    Issue,
}

impl Action {
    /// Every action, in workflow order.
    pub const ALL: [Action; 7] = [
        Action::Accept,
        Action::RequestSupplement,
        Action::Refuse,
        Action::Review,
        Action::Record,
        Action::PrepareCertificate,
        Action::Issue,
    ];

    /// URL segment: `accept`, `refuse`, `supplement`, `review`, `record`, `prepare`, `issue`.
    pub fn code(self) -> &'static str {
        match self {
            Action::Accept => "accept",
            Action::Refuse => "refuse",
            Action::RequestSupplement => "supplement",
            Action::Review => "review",
            Action::Record => "record",
            Action::PrepareCertificate => "prepare",
            Action::Issue => "issue",
        }
    }

    /// The action for a URL segment.
    pub fn from_code(code: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.code() == code)
    }

    /// The status the case moves to.
    pub fn target(self) -> CaseStatus {
        match self {
            Action::Accept => CaseStatus::Accepted,
            Action::Refuse => CaseStatus::Refused,
            Action::RequestSupplement => CaseStatus::SupplementRequested,
            Action::Review => CaseStatus::Reviewed,
            Action::Record => CaseStatus::Recorded,
            Action::PrepareCertificate => CaseStatus::CertificatePrepared,
            Action::Issue => CaseStatus::Completed,
        }
    }

    /// The role needed to take this action on a case in status `from`.
    pub fn role_for(self, from: CaseStatus) -> Role {
        match (self, from) {
            (Action::Accept, _) => Role::Accept,
            (
                Action::Refuse | Action::RequestSupplement,
                CaseStatus::Accepted | CaseStatus::SurveyReview,
            ) => Role::Review,
            (Action::Refuse, CaseStatus::Reviewed) => Role::Record,
            (Action::Refuse | Action::RequestSupplement, _) => Role::Accept,
            (Action::Review, _) => Role::Review,
            (Action::Record, _) => Role::Record,
            (Action::PrepareCertificate | Action::Issue, _) => Role::Certificate,
        }
    }

    /// The event name in the timeline and the audit log, e.g. `case.accept`.
    pub fn event(self, from: CaseStatus) -> &'static str {
        match self {
            Action::Accept => "case.accept",
            Action::Refuse
                if matches!(
                    from,
                    CaseStatus::Accepted | CaseStatus::SurveyReview | CaseStatus::Reviewed
                ) =>
            {
                "case.refuse-registration"
            }
            Action::Refuse => "case.refuse",
            Action::RequestSupplement => "case.request-supplement",
            Action::Review => "case.review",
            Action::Record => "case.record",
            Action::PrepareCertificate => "case.prepare-certificate",
            Action::Issue => "case.issue",
        }
    }

    /// The button label in Chinese for a case in status `from`.
    pub fn label_zh(self, from: CaseStatus) -> &'static str {
        match self {
            Action::Accept => "受理",
            Action::Refuse
                if matches!(
                    from,
                    CaseStatus::Accepted | CaseStatus::SurveyReview | CaseStatus::Reviewed
                ) =>
            {
                "不予登记"
            }
            Action::Refuse => "不予受理",
            Action::RequestSupplement => "要求补正",
            Action::Review => "审核通过",
            Action::Record => "登簿",
            Action::PrepareCertificate => "缮证",
            Action::Issue => "发证（办结）",
        }
    }

    /// Whether a reason must be given.
    pub fn needs_reason(self) -> bool {
        matches!(self, Action::Refuse | Action::RequestSupplement)
    }

    /// The name of the registrar's opinion on this step, e.g. `审核意见`.
    pub fn opinion_label_zh(self) -> &'static str {
        match self {
            Action::Accept => "受理意见",
            Action::Refuse | Action::RequestSupplement => "内部意见",
            Action::Review => "审核意见",
            Action::Record => "登簿意见",
            Action::PrepareCertificate => "缮证意见",
            Action::Issue => "发证意见",
        }
    }

    /// Whether the step needs the registrar's opinion (审核意见 for 审核, 登簿意见 for 登簿).
    pub fn needs_opinion(self) -> bool {
        matches!(self, Action::Review | Action::Record)
    }

    /// Whether the step cannot be undone and is confirmed on a page of its own first
    /// (登簿 changes the register; 发证 numbers and signs a certificate).
    pub fn needs_confirmation(self) -> bool {
        matches!(self, Action::Record | Action::Issue)
    }
}

/// The actions `staff` may take on a case in status `status`.
pub fn available(status: CaseStatus, staff: &StaffMember) -> Vec<Action> {
    Action::ALL
        .into_iter()
        .filter(|a| {
            status.can_move_to(a.target())
                && staff.has(a.role_for(status))
                && !awaits_survey(status, *a)
        })
        .collect()
}

/// Whether `action` must wait for the survey review: while the cadastral zone reviews the
/// survey (待权籍审核) only its review moves the case on; a registrar may only refuse it.
fn awaits_survey(status: CaseStatus, action: Action) -> bool {
    status == CaseStatus::SurveyReview && action != Action::Refuse
}

/// What the registrar typed.
#[derive(Clone, Default)]
pub struct ActionInput {
    /// The reason (required for refusals and supplement requests).
    pub reason: Option<String>,
    /// For a supplement request: the checklist codes asked for.
    pub requested_materials: Vec<String>,
    /// The registrar's opinion (required where [`Action::needs_opinion`]); stored sealed with
    /// the event, never sent to the portal, never written to the audit log.
    pub opinion: Option<String>,
}

impl std::fmt::Debug for ActionInput {
    /// Personal data and secrets are shown masked or redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionInput")
            .field("requested_materials", &self.requested_materials)
            .finish_non_exhaustive()
    }
}

/// Why an action was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// No such case in the staff member's district.
    #[error("未找到该业务")]
    NotFound,
    /// The staff member lacks the role.
    #[error("您没有“{}”岗位权限，不能办理此操作", .role.name_zh())]
    Forbidden {
        /// The role needed.
        role: Role,
    },
    /// The status does not allow it.
    #[error("{}", .0.message_zh())]
    Transition(#[from] StatusTransitionError),
    /// A reason is required.
    #[error("请填写理由（不超过{MAX_REASON_CHARS}字），理由将告知申请人")]
    ReasonRequired,
    /// A supplement request must name checklist items.
    #[error("请勾选需要补正的材料")]
    MaterialsRequired,
    /// The step needs an opinion, or the one given is too long.
    #[error("请填写{label}（不超过{MAX_OPINION_CHARS}字）")]
    OpinionRequired {
        /// `审核意见`, `登簿意见`, ….
        label: &'static str,
    },
    /// The rules refuse it.
    #[error("不符合登簿规则：{}", .0.iter().map(RuleViolation::reason_zh).collect::<Vec<_>>().join("；"))]
    Rules(Vec<RuleViolation>),
    /// The case waits for the cadastral zone's survey review.
    #[error("该业务正在等待权籍审核结果，审核结果返回后才能继续办理")]
    AwaitingSurvey,
    /// Someone else changed the case at the same time.
    #[error("该业务刚被他人办理，请刷新页面后再试")]
    Conflict,
    /// Anything else.
    #[error("系统错误，请稍后再试")]
    Internal(#[from] ExtranetError),
}

impl From<sqlx::Error> for ActionError {
    fn from(e: sqlx::Error) -> Self {
        ActionError::Internal(e.into())
    }
}

impl From<exchange::ExchangeError> for ActionError {
    fn from(e: exchange::ExchangeError) -> Self {
        ActionError::Internal(e.into())
    }
}

fn clean_reason(reason: Option<&str>) -> Option<String> {
    let r: String = reason?
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let r = r.trim().to_owned();
    (!r.is_empty()).then_some(r)
}

/// An opinion as stored: line breaks kept (as `\n`), other control characters dropped,
/// trimmed; `None` when nothing is left.
fn clean_opinion(opinion: Option<&str>) -> Option<String> {
    let o: String = opinion?
        .replace("\r\n", "\n")
        .chars()
        .filter(|c| *c == '\n' || !c.is_control())
        .collect();
    let o = o.trim().to_owned();
    (!o.is_empty()).then_some(o)
}

/// What an action will do once its input has passed [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The status the case moves to.
    pub to: CaseStatus,
    /// The reason, cleaned.
    pub reason: Option<String>,
    /// The opinion, cleaned.
    pub opinion: Option<String>,
    /// For a supplement request: the checklist codes asked for, without duplicates.
    pub requested: Vec<String>,
}

/// The checks an action passes before anything is written: the transition, the role, the
/// reason, the opinion and the supplement list. [`perform`] runs them again inside its
/// transaction; a confirmation page runs them first, so it never asks to confirm a step that
/// would be refused for these reasons.
pub fn check(
    case: &Case,
    staff: &StaffMember,
    action: Action,
    input: &ActionInput,
) -> Result<Checked, ActionError> {
    let reason = clean_reason(input.reason.as_deref());
    let opinion = clean_opinion(input.opinion.as_deref());
    let from = case.status;
    // 发证 needs 缮证: a recorded case of a business that issues a certificate must be prepared
    // first (an unknown business code gets the certificate flow, the strict one).
    let to = match BusinessType::from_code(&case.business_type) {
        Some(business) => from.move_to_for(action.target(), business)?,
        None => from.move_to(action.target())?,
    };
    if awaits_survey(from, action) {
        return Err(ActionError::AwaitingSurvey);
    }
    let role = action.role_for(from);
    if !staff.has(role) {
        return Err(ActionError::Forbidden { role });
    }
    let reason_too_long = reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > MAX_REASON_CHARS);
    if reason_too_long || (action.needs_reason() && reason.is_none()) {
        return Err(ActionError::ReasonRequired);
    }
    let opinion_too_long = opinion
        .as_ref()
        .is_some_and(|o| o.chars().count() > MAX_OPINION_CHARS);
    if opinion_too_long || (action.needs_opinion() && opinion.is_none()) {
        return Err(ActionError::OpinionRequired {
            label: action.opinion_label_zh(),
        });
    }
    let mut requested = Vec::new();
    if action == Action::RequestSupplement {
        let checklist = BusinessType::from_code(&case.business_type)
            .map(BusinessType::required_materials)
            .unwrap_or_default();
        for code in &input.requested_materials {
            if checklist.iter().any(|m| m.code == code.as_str()) && !requested.contains(code) {
                requested.push(code.clone());
            }
        }
        if requested.is_empty() {
            return Err(ActionError::MaterialsRequired);
        }
    }
    Ok(Checked {
        to,
        reason,
        opinion,
        requested,
    })
}

/// Carries out `action` on case `no` for `staff` and returns the new status.
pub async fn perform(
    state: &AppState,
    staff: &StaffMember,
    no: &str,
    action: Action,
    input: ActionInput,
) -> Result<CaseStatus, ActionError> {
    let now = state.now_ms();
    let mut tx = state.store.begin().await.map_err(ExtranetError::from)?;
    let case = cases::get(&mut tx, &staff.district_code, no)
        .await?
        .ok_or(ActionError::NotFound)?;
    let from = case.status;
    let Checked {
        to,
        reason,
        opinion,
        requested,
    } = check(&case, staff, action, &input)?;
    match action {
        Action::Record => record(state, &mut tx, staff, &case, now).await?,
        Action::Issue => issue(state, &mut tx, staff, &case, now).await?,
        _ => {}
    }
    let updated = sqlx::query(
        "UPDATE ext_cases SET status = $1, status_reason = $2, requested_materials = $3, \
         updated_at_ms = $4 WHERE application_no = $5 AND status = $6",
    )
    .bind(to.code())
    .bind(cases::seal_status_reason(&state.pii, no, reason.as_deref()))
    .bind(requested.join(","))
    .bind(now)
    .bind(no)
    .bind(from.code())
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() != 1 {
        return Err(ActionError::Conflict);
    }
    if action == Action::Accept {
        sqlx::query("UPDATE ext_cases SET accepted_at_ms = $1 WHERE application_no = $2")
            .bind(now)
            .bind(no)
            .execute(&mut *tx)
            .await?;
    }
    let event_id = cases::insert_event(
        &mut tx,
        &state.pii,
        no,
        Some(&staff.district_code),
        Some(&staff.id),
        action.event(from),
        Some(from),
        Some(to),
        reason.as_deref(),
        now,
    )
    .await?;
    if let Some(opinion) = &opinion {
        cases::set_opinion(&mut tx, &state.pii, &event_id, opinion).await?;
    }
    exchange::enqueue(
        &mut tx,
        &state.pii,
        &TO_PORTAL,
        Message::ApplicationStatus(ApplicationStatus {
            application_no: no.to_owned(),
            status: to.code().to_owned(),
            reason: reason.clone(),
            requested_materials: requested,
            changed_at_ms: now,
            received_message_id: None,
        }),
        Vec::new(),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(application_no = %no, staff_id = %staff.id, action = action.code(),
        status = to.code(), "case action");
    state.after_commit().await;
    Ok(to)
}

async fn record(
    state: &AppState,
    tx: &mut Transaction<'static, Any>,
    staff: &StaffMember,
    case: &Case,
    now: i64,
) -> Result<(), ActionError> {
    let no = &case.application_no;
    let Some(unit_code) = case.unit_code.as_deref() else {
        let parties = cases::parties(tx, &state.pii, no).await?;
        return Err(ActionError::Rules(
            rules::check_case(
                tx,
                &state.pii,
                rules::CaseKey {
                    application_no: no,
                    district: &case.district_code,
                    business: &case.business_type,
                    unit_code: None,
                },
                &parties,
                now,
            )
            .await?,
        ));
    };
    // The unit's lock row: another case recording now holds it (or takes it first and makes
    // this insert wait, on PostgreSQL, until it commits and the rules below see its result).
    if let Some(other) = register::lock_holder(tx, unit_code).await?
        && &other != no
    {
        return Err(ActionError::Rules(vec![RuleViolation {
            rule: NO_CONCURRENT_RECORDING.0,
            title_zh: NO_CONCURRENT_RECORDING.1,
            message_zh: format!("该不动产单元正在办理业务{other}的登簿，请待其完成后再办理"),
        }]));
    }
    let locked = sqlx::query(
        "INSERT INTO ext_unit_locks (unit_code, application_no, taken_at_ms) VALUES ($1, $2, $3)",
    )
    .bind(unit_code)
    .bind(no)
    .bind(now)
    .execute(&mut **tx)
    .await;
    match locked {
        Ok(_) => {}
        Err(e) if db::unique_violation(&e) => {
            return Err(ActionError::Rules(vec![RuleViolation {
                rule: NO_CONCURRENT_RECORDING.0,
                title_zh: NO_CONCURRENT_RECORDING.1,
                message_zh: "该不动产单元正在办理其他业务的登簿，请待其完成后再办理".into(),
            }]));
        }
        Err(e) => return Err(e.into()),
    }
    let parties = cases::parties(tx, &state.pii, no).await?;
    let violations = rules::check_case(
        tx,
        &state.pii,
        rules::CaseKey {
            application_no: no,
            district: &case.district_code,
            business: &case.business_type,
            unit_code: Some(unit_code),
        },
        &parties,
        now,
    )
    .await?;
    if !violations.is_empty() {
        return Err(ActionError::Rules(violations));
    }
    let first_registration =
        BusinessType::from_code(&case.business_type).is_some_and(BusinessType::needs_survey);
    let old_right_id = if first_registration {
        // 首次登记: the unit's register page is opened now, from the approved survey (code,
        // area) and what the registrar entered (坐落, 用途, 权利性质, 使用期限).
        let page = crate::survey::new_unit(tx, no)
            .await?
            .filter(crate::survey::NewUnit::is_complete)
            .ok_or_else(|| ExtranetError::Corrupt(format!("case {no}: unit page missing")))?;
        if register::unit(tx, &case.district_code, unit_code)
            .await?
            .is_none()
        {
            register::insert_unit(tx, &page.to_unit(&case.district_code), now).await?;
        }
        None
    } else {
        let old = register::current_right(tx, &state.pii, unit_code)
            .await?
            .ok_or_else(|| ExtranetError::Corrupt(format!("unit {unit_code} lost its right")))?;
        if !register::end_right(tx, &old.id, no, now).await? {
            return Err(ActionError::Conflict);
        }
        Some(old.id)
    };
    let buyers: Vec<PartyInput> = parties
        .iter()
        .filter(|p| p.role == cases::BUYER)
        .map(|p| PartyInput {
            name: p.name.clone(),
            id_type: p.id_type.clone(),
            id_number: p.id_number.clone(),
            share: p.share.clone(),
        })
        .collect();
    let registration_type = BusinessType::from_code(&case.business_type)
        .map_or(ow_domain::RegistrationType::Transfer, |b| {
            b.registration_type()
        });
    let new_right = register::insert_right(
        tx,
        &state.pii,
        unit_code,
        registration_type,
        Some(no),
        &buyers,
        now,
        Some(&staff.id),
    )
    .await?;
    sqlx::query(
        "UPDATE ext_cases SET old_right_id = $1, new_right_id = $2, recorded_at_ms = $3 \
         WHERE application_no = $4",
    )
    .bind(old_right_id.as_deref())
    .bind(&new_right)
    .bind(now)
    .bind(no)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM ext_unit_locks WHERE unit_code = $1 AND application_no = $2")
        .bind(unit_code)
        .bind(no)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn issue(
    state: &AppState,
    tx: &mut Transaction<'static, Any>,
    staff: &StaffMember,
    case: &Case,
    now: i64,
) -> Result<(), ActionError> {
    let no = &case.application_no;
    let corrupt = |what: &str| ExtranetError::Corrupt(format!("case {no}: {what}"));
    let district = certificates::district(tx, &case.district_code)
        .await?
        .ok_or_else(|| corrupt("district missing"))?;
    let unit_code = case
        .unit_code
        .as_deref()
        .ok_or_else(|| corrupt("no unit"))?;
    let unit = register::unit(tx, &case.district_code, unit_code)
        .await?
        .ok_or_else(|| corrupt("unit missing"))?;
    let right_id = case
        .new_right_id
        .as_deref()
        .ok_or_else(|| corrupt("not recorded"))?;
    let right = register::right(tx, &state.pii, right_id)
        .await?
        .ok_or_else(|| corrupt("recorded right missing"))?;
    let cancelled = match case.old_right_id.as_deref() {
        Some(old) => {
            certificates::cancel_for_right(tx, old, no, TRANSFER_CANCEL_REASON, now).await?
        }
        None => Vec::new(),
    };
    let replaces = cancelled
        .iter()
        .filter_map(|c| CertificateNumber::parse(&c.number).ok())
        .collect();
    let registration_type = BusinessType::from_code(&case.business_type)
        .map_or(ow_domain::RegistrationType::Transfer, |b| {
            b.registration_type()
        });
    let issued = certificates::issue(
        tx,
        &state.pii,
        &state.cert_key,
        IssueInput {
            district: &district,
            unit: &unit,
            right: &right,
            registration_type,
            application_no: Some(no),
            recorded_at_ms: case.recorded_at_ms.unwrap_or(now),
            issued_at_ms: now,
            replaces,
            issued_by: Some(&staff.id),
        },
    )
    .await?;
    // The signed certificate (full names and ID numbers) travels from memory, sealed in the
    // queued row: no plain copy is ever written to disk here.
    exchange::enqueue_with_inline(
        tx,
        &state.pii,
        &TO_PORTAL,
        Message::CertificateIssued(CertificateIssued {
            application_no: no.clone(),
            certificate_number: issued.number.as_str().to_owned(),
            item: CERTIFICATE_ITEM.into(),
        }),
        Vec::new(),
        vec![InlineFile {
            item: CERTIFICATE_ITEM.into(),
            media_type: "application/json".into(),
            bytes: issued.json.clone().into_bytes(),
        }],
    )
    .await?;
    exchange::enqueue(
        tx,
        &state.pii,
        &TO_PORTAL,
        Message::CertificateStatus(issued.status.clone()),
        Vec::new(),
    )
    .await?;
    for old in &cancelled {
        exchange::enqueue(
            tx,
            &state.pii,
            &TO_PORTAL,
            Message::CertificateStatus(old.status_message()),
            Vec::new(),
        )
        .await?;
    }
    sqlx::query("UPDATE ext_cases SET certificate_number = $1 WHERE application_no = $2")
        .bind(issued.number.as_str())
        .bind(no)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Where earlier versions wrote signed certificates for the packer; emptied at start of
/// whatever no queued message still needs ([`crate::purge_outgoing`]).
pub fn outgoing_dir(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("outgoing")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staff(roles: &[Role]) -> StaffMember {
        StaffMember {
            id: "s".into(),
            username: "u".into(),
            display_name: "u".into(),
            district_code: "370781".into(),
            district_name: "青州市".into(),
            roles: roles.to_vec(),
        }
    }

    #[test]
    fn roles_decide_the_available_actions() {
        let a = staff(&[Role::Accept]);
        assert_eq!(
            available(CaseStatus::Submitted, &a),
            vec![Action::Accept, Action::RequestSupplement, Action::Refuse]
        );
        assert!(available(CaseStatus::Accepted, &a).is_empty());
        let r = staff(&[Role::Review]);
        assert_eq!(
            available(CaseStatus::Accepted, &r),
            vec![Action::RequestSupplement, Action::Refuse, Action::Review]
        );
        let d = staff(&[Role::Record]);
        assert_eq!(
            available(CaseStatus::Reviewed, &d),
            vec![Action::Refuse, Action::Record]
        );
        let c = staff(&[Role::Certificate]);
        assert_eq!(
            available(CaseStatus::Recorded, &c),
            vec![Action::PrepareCertificate],
            "发证 waits for 缮证"
        );
        assert_eq!(
            available(CaseStatus::CertificatePrepared, &c),
            vec![Action::Issue]
        );
        assert!(available(CaseStatus::Completed, &staff(&Role::ALL)).is_empty());
        assert!(available(CaseStatus::Submitted, &staff(&[Role::DistrictAdmin])).is_empty());
    }

    #[test]
    fn refusal_after_acceptance_is_refusal_to_register() {
        assert_eq!(Action::Refuse.event(CaseStatus::Submitted), "case.refuse");
        assert_eq!(
            Action::Refuse.event(CaseStatus::Reviewed),
            "case.refuse-registration"
        );
        assert_eq!(Action::Refuse.label_zh(CaseStatus::Accepted), "不予登记");
        for a in Action::ALL {
            assert_eq!(Action::from_code(a.code()), Some(a));
        }
    }
}
