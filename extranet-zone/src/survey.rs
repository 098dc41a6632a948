//! Survey packages of first registrations (权籍调查成果): sending a case's survey to the cadastral
//! zone, and taking its review back.
//!
//! - [`store_counter_file`]: a survey file (or its report) handed in at the counter becomes a
//!   material of the case, sealed like any other.
//! - [`send`]: a registrar with the 审核 role sends an accepted case's survey to the intranet.
//!   One transaction queues the `survey-package` message (a confidential package — classified,
//!   or too large to be accepted online — on the offline-media route, never through the
//!   gateway), records the package in `ext_survey_packages`, moves the case to 待权籍审核 and
//!   tells the portal.
//! - [`import_review`]: the intranet's `survey-review` (from a disc) answers a package we sent,
//!   once: approved brings the case back to 受理 with the unit code and area the surveyor
//!   assigned; rejected moves it to 补正 with the findings in plain words for the citizen.
//!
//! Findings and the surveyor's reason are stored sealed (they may quote a name from the survey).

use std::io::Read;

use ow_domain::{BusinessType, CaseStatus, UnitCode};
use serde::{Deserialize, Serialize};
use sqlx::{Any, Row, Transaction};

use crate::AppState;
use crate::cases;
use crate::db;
use crate::error::{ExtranetError, Result};
use crate::exchange::{
    self, ApplicationStatus, MaterialRef, Message, OutboundFile, SurveyPackage, SurveyReview,
};
use crate::materials;
use crate::register_log::TO_INTRANET;
use crate::staff::{Role, StaffMember};
use crate::workflow::{ActionError, TO_PORTAL};

/// The checklist entry of a survey package (不动产权籍调查表、宗地图及宗地界址点坐标).
pub const SURVEY_CHECKLIST: &str = "cadastral_survey";

/// The checklist entry under which a counter-uploaded survey report is kept.
pub const REPORT_CHECKLIST: &str = "cadastral_survey_report";

/// The field sealed review texts are bound to.
const REVIEW_FIELD: ow_pii::Field = ow_pii::Field::Other("survey-review");

/// A survey file's format, as the message names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SurveyFormat {
    /// 界址点坐标 TXT.
    BoundaryTxt,
    /// GeoJSON.
    GeoJson,
}

impl SurveyFormat {
    /// `boundary-txt` or `geojson`.
    pub fn as_str(self) -> &'static str {
        match self {
            SurveyFormat::BoundaryTxt => "boundary-txt",
            SurveyFormat::GeoJson => "geojson",
        }
    }

    /// The media type the survey file travels as.
    pub fn media_type(self) -> &'static str {
        match self {
            SurveyFormat::BoundaryTxt => "text/plain",
            SurveyFormat::GeoJson => "application/geo+json",
        }
    }

    /// The bundle item name of the survey file.
    fn item(self) -> &'static str {
        match self {
            SurveyFormat::BoundaryTxt => "survey.txt",
            SurveyFormat::GeoJson => "survey.geojson",
        }
    }
}

/// What to send: materials of the case.
#[derive(Debug, Clone)]
pub struct SurveyUpload {
    /// The survey file's format.
    pub format: SurveyFormat,
    /// The material holding the survey file.
    pub survey_material_id: String,
    /// The material holding the survey report (PDF), if any.
    pub report_material_id: Option<String>,
    /// Classified (涉密) or too large for a gateway: offline media only.
    pub confidential: bool,
}

/// Seals a file handed in at the counter as a material of case `no` (checklist entry
/// `checklist_code`, source `counter`), durably before its row commits; returns the material
/// id. `file_name` is kept sealed. The bytes are read from `source` on a blocking thread.
pub async fn store_counter_file(
    state: &AppState,
    no: &str,
    checklist_code: &str,
    file_name: &str,
    media_type: &str,
    source: impl Read + Send + 'static,
) -> Result<String> {
    let id = ow_store::new_id();
    let (size, hash) = {
        let pii = state.pii.clone();
        let data_dir = state.data_dir().to_path_buf();
        let id = id.clone();
        tokio::task::spawn_blocking(move || -> Result<(u64, String)> {
            let mut hashing = HashingReader {
                inner: source,
                hasher: blake3::Hasher::new(),
            };
            let size = materials::store_blocking(&pii, &data_dir, &id, &mut hashing)?;
            Ok((size, hashing.hasher.finalize().to_hex().to_string()))
        })
        .await
        .map_err(|e| ExtranetError::Corrupt(format!("storing a counter file failed: {e}")))??
    };
    sqlx::query(
        "INSERT INTO ext_case_materials (id, application_no, checklist_code, file_name, \
         media_type, size, blake3, source, received_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'counter', $8)",
    )
    .bind(&id)
    .bind(no)
    .bind(checklist_code)
    .bind(cases::seal_file_name(&state.pii, &id, file_name))
    .bind(media_type)
    .bind(i64::try_from(size).unwrap_or(i64::MAX))
    .bind(hash)
    .bind(state.now_ms())
    .execute(state.store.writer())
    .await?;
    Ok(id)
}

struct HashingReader<R> {
    inner: R,
    hasher: blake3::Hasher,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// A material of a case, as the package needs it.
struct StoredMaterial {
    id: String,
    media_type: String,
    size: u64,
    blake3: String,
}

async fn material(
    tx: &mut Transaction<'static, Any>,
    no: &str,
    id: &str,
) -> std::result::Result<StoredMaterial, ActionError> {
    let row = sqlx::query(
        "SELECT id, media_type, size, blake3 FROM ext_case_materials \
         WHERE id = $1 AND application_no = $2",
    )
    .bind(id)
    .bind(no)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(ActionError::NotFound)?;
    let size: i64 = row.try_get("size")?;
    Ok(StoredMaterial {
        id: row.try_get("id")?,
        media_type: row.try_get("media_type")?,
        size: u64::try_from(size).unwrap_or(0),
        blake3: row.try_get("blake3")?,
    })
}

/// Sends the survey of case `no` to the cadastral zone (see the module documentation); returns
/// the package id.
pub async fn send(
    state: &AppState,
    staff: &StaffMember,
    no: &str,
    upload: SurveyUpload,
) -> std::result::Result<String, ActionError> {
    if !staff.has(Role::Review) {
        return Err(ActionError::Forbidden { role: Role::Review });
    }
    let now = state.now_ms();
    let mut tx = state.store.begin().await.map_err(ExtranetError::from)?;
    let case = cases::get(&mut tx, &staff.district_code, no)
        .await?
        .ok_or(ActionError::NotFound)?;
    let from = case.status;
    let business = BusinessType::from_code(&case.business_type);
    let to = match business {
        Some(b) => from.move_to_for(CaseStatus::SurveyReview, b)?,
        None => from.move_to(CaseStatus::SurveyReview)?,
    };
    let survey = material(&mut tx, no, &upload.survey_material_id).await?;
    let report = match &upload.report_material_id {
        Some(id) => Some(material(&mut tx, no, id).await?),
        None => None,
    };
    let data_dir = state.data_dir();
    let to_file =
        |m: &StoredMaterial, item: &str| -> std::result::Result<OutboundFile, ActionError> {
            Ok(OutboundFile {
                item: item.to_owned(),
                media_type: m.media_type.clone(),
                path: materials::material_file(data_dir, &m.id)
                    .ok_or_else(|| ExtranetError::Corrupt(format!("material id {:?}", m.id)))?,
                sealed_context: Some(materials::material_context(&m.id)),
            })
        };
    let to_ref = |m: &StoredMaterial, item: &str, checklist: &str, media_type: &str| MaterialRef {
        item: item.to_owned(),
        checklist_code: checklist.to_owned(),
        file_name: item.to_owned(),
        media_type: media_type.to_owned(),
        size: m.size,
        blake3: m.blake3.clone(),
    };
    let mut files = vec![to_file(&survey, upload.format.item())?];
    if let Some(r) = &report {
        files.push(to_file(r, "report.pdf")?);
    }
    let package_id = uuid::Uuid::now_v7().to_string();
    exchange::enqueue(
        &mut tx,
        &state.pii,
        &TO_INTRANET,
        Message::SurveyPackage(SurveyPackage {
            application_no: no.to_owned(),
            district_code: case.district_code.clone(),
            package_id: package_id.clone(),
            format: upload.format.as_str().to_owned(),
            survey: to_ref(
                &survey,
                upload.format.item(),
                SURVEY_CHECKLIST,
                upload.format.media_type(),
            ),
            report: report
                .as_ref()
                .map(|r| to_ref(r, "report.pdf", REPORT_CHECKLIST, "application/pdf")),
            confidential: upload.confidential,
            sent_at_ms: now,
        }),
        files,
    )
    .await?;
    sqlx::query(
        "INSERT INTO ext_survey_packages (package_id, application_no, format, \
         survey_material_id, report_material_id, confidential, sent_at_ms, sent_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&package_id)
    .bind(no)
    .bind(upload.format.as_str())
    .bind(&survey.id)
    .bind(report.as_ref().map(|r| r.id.clone()))
    .bind(i64::from(upload.confidential))
    .bind(now)
    .bind(&staff.id)
    .execute(&mut *tx)
    .await?;
    move_case(&mut tx, no, from, to, None, now).await?;
    cases::insert_event(
        &mut tx,
        &state.pii,
        no,
        Some(&staff.district_code),
        Some(&staff.id),
        if upload.confidential {
            "case.survey-sent-on-media"
        } else {
            "case.survey-sent"
        },
        Some(from),
        Some(to),
        None,
        now,
    )
    .await?;
    tell_portal(state, &mut tx, no, to, None, now).await?;
    tx.commit().await.map_err(ExtranetError::from)?;
    tracing::info!(application_no = %no, package = %package_id, confidential = upload.confidential,
        "survey package queued for the cadastral zone");
    state.after_commit().await;
    Ok(package_id)
}

/// The register page of a first registration's new unit (`ext_new_units`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewUnit {
    /// The unit code the approved survey assigned.
    pub unit_code: String,
    /// The area the survey computed, m² with two decimals.
    pub area_m2: String,
    /// 坐落.
    pub location: String,
    /// 用途.
    pub usage: String,
    /// 权利类型 code: 3 (国有建设用地使用权) or 4 (国有建设用地使用权/房屋所有权).
    pub right_type: i64,
    /// 权利性质 (出让, 划拨 …).
    pub right_nature: String,
    /// 使用期限.
    pub use_term: String,
}

impl NewUnit {
    /// Whether everything 登簿 needs is filled in.
    pub fn is_complete(&self) -> bool {
        [
            &self.unit_code,
            &self.area_m2,
            &self.location,
            &self.usage,
            &self.right_nature,
            &self.use_term,
        ]
        .iter()
        .all(|v| !v.trim().is_empty())
    }

    /// The unit as the register records it.
    pub fn to_unit(&self, district: &str) -> crate::register::Unit {
        crate::register::Unit {
            unit_code: self.unit_code.clone(),
            district_code: district.to_owned(),
            location: self.location.clone(),
            area_m2: self.area_m2.clone(),
            usage: self.usage.clone(),
            right_type: self.right_type,
            right_nature: self.right_nature.clone(),
            use_term: self.use_term.clone(),
        }
    }
}

/// The new unit's page of case `no`, once a survey was approved.
pub async fn new_unit(conn: &mut sqlx::AnyConnection, no: &str) -> Result<Option<NewUnit>> {
    let row = sqlx::query(
        "SELECT unit_code, area_m2, location, usage, right_type, right_nature, use_term          FROM ext_new_units WHERE application_no = $1",
    )
    .bind(no)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(NewUnit {
        unit_code: row.try_get("unit_code")?,
        area_m2: row.try_get("area_m2")?,
        location: row.try_get("location")?,
        usage: row.try_get("usage")?,
        right_type: row.try_get("right_type")?,
        right_nature: row.try_get("right_nature")?,
        use_term: row.try_get("use_term")?,
    }))
}

/// What the registrar enters on the new unit's page.
#[derive(Debug, Clone, Default)]
pub struct UnitPageInput {
    /// 坐落.
    pub location: String,
    /// 用途.
    pub usage: String,
    /// 权利类型 code: `3` or `4`.
    pub right_type: String,
    /// 权利性质.
    pub right_nature: String,
    /// 使用期限.
    pub use_term: String,
}

/// Why the unit page was not saved.
#[derive(Debug, thiserror::Error)]
pub enum UnitPageError {
    /// No approved survey yet.
    #[error("权籍调查成果审核通过后才能填写新单元的登簿信息")]
    NoApprovedSurvey,
    /// A field is empty, too long or holds control characters.
    #[error("{0}")]
    Invalid(String),
    /// The case is not at a stage where the page may change.
    #[error("{0}")]
    Action(#[from] ActionError),
}

/// Longest value of a unit page field, in characters.
pub const MAX_UNIT_FIELD_CHARS: usize = 200;

/// Saves the registrar's part of the new unit's page (role 审核, before 登簿).
pub async fn set_unit_page(
    state: &AppState,
    staff: &StaffMember,
    no: &str,
    input: &UnitPageInput,
) -> std::result::Result<(), UnitPageError> {
    if !staff.has(Role::Review) {
        return Err(ActionError::Forbidden { role: Role::Review }.into());
    }
    let fields = [
        ("坐落", input.location.trim()),
        ("用途", input.usage.trim()),
        ("权利性质", input.right_nature.trim()),
        ("使用期限", input.use_term.trim()),
    ];
    for (label, value) in fields {
        if value.is_empty() {
            return Err(UnitPageError::Invalid(format!("请填写{label}")));
        }
        if value.chars().count() > MAX_UNIT_FIELD_CHARS {
            return Err(UnitPageError::Invalid(format!(
                "{label}不超过{MAX_UNIT_FIELD_CHARS}字"
            )));
        }
        if value.chars().any(char::is_control) {
            return Err(UnitPageError::Invalid(format!(
                "{label}含有无法识别的字符，请重新填写"
            )));
        }
    }
    let right_type: i64 = match input.right_type.trim() {
        "3" => 3,
        "4" | "" => 4,
        _ => {
            return Err(UnitPageError::Invalid(
                "权利类型只能是国有建设用地使用权或国有建设用地使用权/房屋所有权".into(),
            ));
        }
    };
    let mut tx = state
        .store
        .begin()
        .await
        .map_err(ExtranetError::from)
        .map_err(ActionError::from)?;
    let case = cases::get(&mut tx, &staff.district_code, no)
        .await
        .map_err(ActionError::from)?
        .ok_or(ActionError::NotFound)?;
    if !matches!(case.status, CaseStatus::Accepted | CaseStatus::Reviewed) {
        return Err(UnitPageError::Invalid(format!(
            "申请当前为“{}”状态，不能修改新单元的登簿信息",
            case.status.name_zh()
        )));
    }
    let updated = sqlx::query(
        "UPDATE ext_new_units SET location = $1, usage = $2, right_type = $3,          right_nature = $4, use_term = $5, entered_by = $6, entered_at_ms = $7          WHERE application_no = $8",
    )
    .bind(input.location.trim())
    .bind(input.usage.trim())
    .bind(right_type)
    .bind(input.right_nature.trim())
    .bind(input.use_term.trim())
    .bind(&staff.id)
    .bind(state.now_ms())
    .bind(no)
    .execute(&mut *tx)
    .await
    .map_err(ActionError::from)?;
    if updated.rows_affected() != 1 {
        return Err(UnitPageError::NoApprovedSurvey);
    }
    cases::insert_event(
        &mut tx,
        &state.pii,
        no,
        Some(&staff.district_code),
        Some(&staff.id),
        "case.unit-page",
        None,
        None,
        None,
        state.now_ms(),
    )
    .await
    .map_err(ActionError::from)?;
    tx.commit().await.map_err(ActionError::from)?;
    state.after_commit().await;
    Ok(())
}

/// What the back office keeps of a review.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredReview {
    findings: Vec<exchange::ReviewFinding>,
    reason: Option<String>,
}

/// Imports a review from the intranet inside the import's transaction. `Ok(Err(reason))` is a
/// refusal (recorded by the exchange with the reason): an unknown package, one already
/// answered, or a review that does not fit the case.
pub async fn import_review(
    state: &AppState,
    tx: &mut Transaction<'static, Any>,
    review: &SurveyReview,
) -> Result<std::result::Result<(), String>> {
    let row = sqlx::query(
        "SELECT application_no, outcome FROM ext_survey_packages WHERE package_id = $1",
    )
    .bind(&review.package_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else {
        return Ok(Err(format!(
            "survey package {} was not sent by this back office",
            review.package_id
        )));
    };
    let no: String = row.try_get("application_no")?;
    let outcome: Option<String> = row.try_get("outcome")?;
    if no != review.application_no {
        return Ok(Err(format!(
            "the review names application {} but package {} belongs to {no}",
            review.application_no, review.package_id
        )));
    }
    if outcome.is_some() {
        return Ok(Err(format!(
            "survey package {} was already reviewed",
            review.package_id
        )));
    }
    let Some(case) = cases::get_any(tx, &no).await? else {
        return Ok(Err(format!("application {no} is not here")));
    };
    let now = state.now_ms();
    let (to, reason, unit_code) = match review.outcome.as_str() {
        "approved" => {
            let Some(first) = review.parcels.first() else {
                return Ok(Err("an approved review names no parcel".into()));
            };
            match UnitCode::parse(&first.unit_code) {
                Ok(code) if code.county_code() == case.district_code => {}
                _ => {
                    return Ok(Err(format!(
                        "the approved unit code {:?} is not a unit code of district {}",
                        first.unit_code, case.district_code
                    )));
                }
            }
            let codes: Vec<String> = review
                .parcels
                .iter()
                .map(|p| format!("{}（{} 平方米）", p.unit_code, p.area_m2))
                .collect();
            (
                CaseStatus::Accepted,
                format!("权籍调查成果审核通过，不动产单元号：{}", codes.join("、")),
                Some(first.unit_code.clone()),
            )
        }
        "rejected" => (
            CaseStatus::SupplementRequested,
            rejection_text(review),
            None,
        ),
        other => return Ok(Err(format!("unknown review outcome {other:?}"))),
    };
    if case.status != CaseStatus::SurveyReview {
        // Withdrawn or refused meanwhile: keep the review, leave the case as it is.
        record_review(state, tx, review, now).await?;
        cases::insert_event(
            tx,
            &state.pii,
            &no,
            Some(&case.district_code),
            None,
            "case.survey-reviewed-late",
            None,
            None,
            Some(&reason),
            now,
        )
        .await?;
        return Ok(Ok(()));
    }
    record_review(state, tx, review, now).await?;
    if let (Some(code), Some(first)) = (&unit_code, review.parcels.first()) {
        sqlx::query("UPDATE ext_cases SET unit_code = $1 WHERE application_no = $2")
            .bind(code)
            .bind(&no)
            .execute(&mut **tx)
            .await?;
        // The new unit's page: code and area from the survey; what the registrar entered
        // for an earlier approval stays.
        let updated = sqlx::query(
            "UPDATE ext_new_units SET unit_code = $1, area_m2 = $2 WHERE application_no = $3",
        )
        .bind(code)
        .bind(&first.area_m2)
        .bind(&no)
        .execute(&mut **tx)
        .await?;
        if updated.rows_affected() == 0 {
            sqlx::query(
                "INSERT INTO ext_new_units (application_no, unit_code, area_m2) VALUES ($1, $2, $3)",
            )
            .bind(&no)
            .bind(code)
            .bind(&first.area_m2)
            .execute(&mut **tx)
            .await?;
        }
    }
    let requested = if to == CaseStatus::SupplementRequested {
        vec![SURVEY_CHECKLIST.to_owned()]
    } else {
        Vec::new()
    };
    if !move_case(
        tx,
        &no,
        case.status,
        to,
        Some((&state.pii, &reason, &requested)),
        now,
    )
    .await?
    {
        return Err(ExtranetError::Corrupt(format!(
            "case {no} changed while its review was imported"
        )));
    }
    cases::insert_event(
        tx,
        &state.pii,
        &no,
        Some(&case.district_code),
        None,
        if to == CaseStatus::Accepted {
            "case.survey-approved"
        } else {
            "case.survey-rejected"
        },
        Some(case.status),
        Some(to),
        Some(&reason),
        now,
    )
    .await?;
    tell_portal(state, tx, &no, to, Some((&reason, requested)), now).await?;
    tracing::info!(application_no = %no, package = %review.package_id,
        outcome = %review.outcome, "survey review imported");
    Ok(Ok(()))
}

/// The findings in plain words for the citizen: the surveyor's reason, then each finding with
/// what to do.
fn rejection_text(review: &SurveyReview) -> String {
    let mut text = String::from("权籍调查成果审核未通过");
    if let Some(reason) = review.reason.as_deref().filter(|r| !r.trim().is_empty()) {
        text.push('：');
        text.push_str(reason.trim());
    }
    for (i, f) in review.findings.iter().enumerate() {
        let place = match (&f.parcel, &f.point) {
            (Some(p), Some(pt)) => format!("（地块{p}，{pt}）"),
            (Some(p), None) => format!("（地块{p}）"),
            (None, Some(pt)) => format!("（{pt}）"),
            (None, None) => String::new(),
        };
        text.push_str(&format!("\n{}. {}{}", i + 1, f.message, place));
        if !f.advice.is_empty() {
            text.push_str(&format!(" 处理建议：{}", f.advice));
        }
    }
    text.push_str("\n请委托测绘单位修改后重新提交权籍调查成果。");
    text
}

async fn record_review(
    state: &AppState,
    tx: &mut Transaction<'static, Any>,
    review: &SurveyReview,
    now: i64,
) -> Result<()> {
    let stored = serde_json::to_string(&StoredReview {
        findings: review.findings.clone(),
        reason: review.reason.clone(),
    })
    .map_err(|e| ExtranetError::Corrupt(format!("review cannot be stored: {e}")))?;
    let parcels = serde_json::to_string(&review.parcels)
        .map_err(|e| ExtranetError::Corrupt(format!("review cannot be stored: {e}")))?;
    sqlx::query(
        "UPDATE ext_survey_packages SET outcome = $1, review_sealed = $2, parcels_json = $3, \
         reviewed_at_ms = $4, received_at_ms = $5 WHERE package_id = $6 AND outcome IS NULL",
    )
    .bind(&review.outcome)
    .bind(db::seal(
        &state.pii,
        REVIEW_FIELD,
        &format!("ext_survey_packages:{}", review.package_id),
        &stored,
    ))
    .bind(parcels)
    .bind(review.reviewed_at_ms)
    .bind(now)
    .bind(&review.package_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Moves the case from `from` to `to` if it is still at `from`; with a reason and requested
/// checklist entries when given. Returns whether it moved.
async fn move_case(
    tx: &mut Transaction<'static, Any>,
    no: &str,
    from: CaseStatus,
    to: CaseStatus,
    reason: Option<(&ow_pii::PiiKeyring, &str, &[String])>,
    now: i64,
) -> std::result::Result<bool, sqlx::Error> {
    let (sealed, requested) = match reason {
        Some((pii, text, requested)) => (
            cases::seal_status_reason(pii, no, Some(text)),
            requested.join(","),
        ),
        None => (None, String::new()),
    };
    let updated = sqlx::query(
        "UPDATE ext_cases SET status = $1, status_reason = $2, requested_materials = $3, \
         updated_at_ms = $4 WHERE application_no = $5 AND status = $6",
    )
    .bind(to.code())
    .bind(sealed)
    .bind(requested)
    .bind(now)
    .bind(no)
    .bind(from.code())
    .execute(&mut **tx)
    .await?;
    Ok(updated.rows_affected() == 1)
}

async fn tell_portal(
    state: &AppState,
    tx: &mut Transaction<'static, Any>,
    no: &str,
    to: CaseStatus,
    reason: Option<(&str, Vec<String>)>,
    now: i64,
) -> std::result::Result<(), exchange::ExchangeError> {
    let (reason, requested_materials) = match reason {
        Some((r, req)) => (Some(r.to_owned()), req),
        None => (None, Vec::new()),
    };
    exchange::enqueue(
        tx,
        &state.pii,
        &TO_PORTAL,
        Message::ApplicationStatus(ApplicationStatus {
            application_no: no.to_owned(),
            status: to.code().to_owned(),
            reason,
            requested_materials,
            changed_at_ms: now,
            received_message_id: None,
        }),
        Vec::new(),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::ReviewFinding;

    #[test]
    fn a_rejection_reads_as_plain_instructions() {
        let review = SurveyReview {
            application_no: "SQ1".into(),
            package_id: "p".into(),
            outcome: "rejected".into(),
            parcels: Vec::new(),
            findings: vec![ReviewFinding {
                code: "overlap-existing".into(),
                severity: "error".into(),
                parcel: Some("D001".into()),
                point: None,
                message: "与已登记宗地 370781001001GB00001 重叠 120.50 平方米".into(),
                advice: "请核对界址点坐标".into(),
            }],
            reason: Some(" 与邻宗重叠 ".into()),
            reviewed_at_ms: 1,
        };
        let text = rejection_text(&review);
        assert!(
            text.starts_with("权籍调查成果审核未通过：与邻宗重叠\n1. 与已登记宗地"),
            "{text}"
        );
        assert!(
            text.contains("（地块D001） 处理建议：请核对界址点坐标"),
            "{text}"
        );
        assert!(text.ends_with("重新提交权籍调查成果。"), "{text}");
    }
}
