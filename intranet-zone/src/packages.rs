//! Survey packages (权籍调查成果): stored at import with their check results, listed in the
//! surveyors' queue, approved (unit codes assigned, the parcels become existing parcels) or
//! rejected. Both decisions queue a `SurveyReview` for the extranet in the same transaction.

use std::collections::HashSet;

use ow_domain::UnitCode;
use ow_exchange::{Message, ReviewFinding, ReviewedParcel, SurveyReview};
use serde::Serialize;
use sqlx::{Any, Row, Transaction};

use crate::checks::{CheckedParcel, ParcelId};
use crate::error::{IntranetError, Result};
use crate::surveyors::{Role, Surveyor};
use crate::{AppState, TO_EXTRANET, db, parcels};

/// Status of a package.
pub const PENDING: &str = "pending";
/// Status of an approved package.
pub const APPROVED: &str = "approved";
/// Status of a rejected package.
pub const REJECTED: &str = "rejected";

/// A package as it is stored at import.
#[derive(Debug, Clone)]
pub struct NewPackage<'a> {
    /// The message.
    pub message: &'a ow_exchange::SurveyPackage,
    /// The message id.
    pub message_id: &'a str,
    /// The bundle it came in.
    pub bundle_id: &'a str,
    /// The sealed survey file.
    pub survey_file_id: &'a str,
    /// The sealed report, if any.
    pub report_file_id: Option<&'a str>,
    /// The parcels as checked.
    pub parcels: &'a [CheckedParcel],
    /// The findings.
    pub findings: &'a [ReviewFinding],
}

fn findings_context(package_id: &str) -> String {
    format!("int_packages:{package_id}:findings")
}

fn count(findings: &[ReviewFinding], severity: &str) -> i64 {
    i64::try_from(findings.iter().filter(|f| f.severity == severity).count()).unwrap_or(i64::MAX)
}

/// Whether a package id is already stored.
pub async fn exists(tx: &mut Transaction<'static, Any>, package_id: &str) -> Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM int_packages WHERE package_id = $1")
        .bind(package_id)
        .fetch_one(&mut **tx)
        .await?;
    Ok(n > 0)
}

/// Stores a package (status `pending`) with its parcels and sealed findings.
pub async fn insert(
    tx: &mut Transaction<'static, Any>,
    state: &AppState,
    p: &NewPackage<'_>,
    now_ms: i64,
) -> Result<()> {
    let m = p.message;
    let findings_json = serde_json::to_string(p.findings)
        .map_err(|e| IntranetError::Invalid(format!("findings cannot be encoded: {e}")))?;
    sqlx::query(
        "INSERT INTO int_packages (package_id, application_no, district_code, format, \
         confidential, message_id, bundle_id, sent_at_ms, received_at_ms, survey_file_id, \
         survey_size, survey_blake3, report_file_id, status, error_count, warning_count, \
         findings_sealed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
         $15, $16, $17)",
    )
    .bind(&m.package_id)
    .bind(&m.application_no)
    .bind(&m.district_code)
    .bind(&m.format)
    .bind(i64::from(m.confidential))
    .bind(p.message_id)
    .bind(p.bundle_id)
    .bind(m.sent_at_ms)
    .bind(now_ms)
    .bind(p.survey_file_id)
    .bind(i64::try_from(m.survey.size).unwrap_or(i64::MAX))
    .bind(&m.survey.blake3)
    .bind(p.report_file_id)
    .bind(PENDING)
    .bind(count(p.findings, "error"))
    .bind(count(p.findings, "warning"))
    .bind(db::seal(
        &state.pii,
        db::FINDINGS_FIELD,
        &findings_context(&m.package_id),
        &findings_json,
    ))
    .execute(&mut **tx)
    .await?;
    for (i, parcel) in p.parcels.iter().enumerate() {
        let position = i64::try_from(i).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO int_package_parcels (package_id, position, number, name_sealed, \
             area_m2, geom_wkb) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&m.package_id)
        .bind(position)
        .bind(&parcel.number)
        .bind(db::seal(
            &state.pii,
            db::PARCEL_NAME_FIELD,
            &format!("int_package_parcels:{}:{position}", m.package_id),
            &parcel.name,
        ))
        .bind(db::area_text(parcel.area_m2))
        .bind(db::geometry_to_hex(&parcel.geometry)?)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// A row of the queue.
#[derive(Debug, Clone, Serialize)]
pub struct QueueRow {
    /// Package id.
    pub package_id: String,
    /// Application.
    pub application_no: String,
    /// `boundary-txt` or `geojson`.
    pub format: String,
    /// Came on offline media as confidential.
    pub confidential: bool,
    /// Status.
    pub status: String,
    /// Error findings.
    pub error_count: i64,
    /// Warning findings.
    pub warning_count: i64,
    /// Parcels.
    pub parcel_count: i64,
    /// When it arrived.
    pub received_at_ms: i64,
}

/// The packages of `district` with `status` (`None`: all), oldest first.
pub async fn queue(
    store: &ow_store::Store,
    district: &str,
    status: Option<&str>,
) -> Result<Vec<QueueRow>> {
    let rows = sqlx::query(
        "SELECT p.package_id, p.application_no, p.format, p.confidential, p.status, \
         p.error_count, p.warning_count, p.received_at_ms, \
         (SELECT COUNT(*) FROM int_package_parcels x WHERE x.package_id = p.package_id) AS n \
         FROM int_packages p WHERE p.district_code = $1 AND ($2 = '' OR p.status = $2) \
         ORDER BY p.received_at_ms, p.package_id",
    )
    .bind(district)
    .bind(status.unwrap_or(""))
    .fetch_all(store.reader())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(QueueRow {
                package_id: r.try_get("package_id")?,
                application_no: r.try_get("application_no")?,
                format: r.try_get("format")?,
                confidential: r.try_get::<i64, _>("confidential")? != 0,
                status: r.try_get("status")?,
                error_count: r.try_get("error_count")?,
                warning_count: r.try_get("warning_count")?,
                parcel_count: r.try_get("n")?,
                received_at_ms: r.try_get("received_at_ms")?,
            })
        })
        .collect()
}

/// A parcel of a package.
#[derive(Clone)]
pub struct PackageParcel {
    /// Position in the survey.
    pub position: i64,
    /// 地块编号.
    pub number: String,
    /// 地块名称.
    pub name: String,
    /// Area (two decimals).
    pub area_m2: String,
    /// The geometry.
    pub geometry: geo::MultiPolygon<f64>,
    /// The unit code assigned at approval.
    pub unit_code: Option<String>,
    /// The existing parcel it became.
    pub parcel_id: Option<ParcelId>,
}

impl std::fmt::Debug for PackageParcel {
    /// The name is not shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackageParcel")
            .field("number", &self.number)
            .field("area_m2", &self.area_m2)
            .field("unit_code", &self.unit_code)
            .finish_non_exhaustive()
    }
}

/// A package with everything its page shows.
#[derive(Clone)]
pub struct Package {
    /// The queue's columns.
    pub row: QueueRow,
    /// District.
    pub district_code: String,
    /// Sealed survey file.
    pub survey_file_id: String,
    /// Sealed report.
    pub report_file_id: Option<String>,
    /// The findings.
    pub findings: Vec<ReviewFinding>,
    /// The parcels.
    pub parcels: Vec<PackageParcel>,
    /// Who decided.
    pub decided_by: Option<String>,
    /// When.
    pub decided_at_ms: Option<i64>,
    /// The reason given (rejection, or override).
    pub reason: Option<String>,
}

impl std::fmt::Debug for Package {
    /// The reason and the findings' wording are left out (they may quote personal data).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Package")
            .field("row", &self.row)
            .field("findings", &self.findings.len())
            .field("parcels", &self.parcels)
            .field("decided_by", &self.decided_by)
            .finish_non_exhaustive()
    }
}

/// The package `package_id` if it belongs to `district` (another district's package is
/// `None`, as an absent one).
pub async fn get(
    conn: &mut sqlx::AnyConnection,
    state: &AppState,
    district: &str,
    package_id: &str,
) -> Result<Option<Package>> {
    let row = sqlx::query(
        "SELECT p.*, (SELECT COUNT(*) FROM int_package_parcels x \
         WHERE x.package_id = p.package_id) AS n FROM int_packages p \
         WHERE p.package_id = $1 AND p.district_code = $2",
    )
    .bind(package_id)
    .bind(district)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let findings_text = db::open(
        &state.pii,
        db::FINDINGS_FIELD,
        &findings_context(package_id),
        &r.try_get::<String, _>("findings_sealed")?,
    )?;
    let findings: Vec<ReviewFinding> = serde_json::from_str(&findings_text)
        .map_err(|e| IntranetError::Corrupt(format!("findings of package {package_id}: {e}")))?;
    let reason = match (
        r.try_get::<Option<String>, _>("reason_sealed")?,
        r.try_get::<Option<String>, _>("override_reason_sealed")?,
    ) {
        (Some(s), _) | (None, Some(s)) => Some(db::open(
            &state.pii,
            db::REASON_FIELD,
            &format!("int_packages:{package_id}:reason"),
            &s,
        )?),
        (None, None) => None,
    };
    let parcel_rows = sqlx::query(
        "SELECT position, number, name_sealed, area_m2, geom_wkb, unit_code, parcel_id \
         FROM int_package_parcels WHERE package_id = $1 ORDER BY position",
    )
    .bind(package_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut parcels = Vec::with_capacity(parcel_rows.len());
    for p in parcel_rows {
        let position: i64 = p.try_get("position")?;
        parcels.push(PackageParcel {
            position,
            number: p.try_get("number")?,
            name: db::open(
                &state.pii,
                db::PARCEL_NAME_FIELD,
                &format!("int_package_parcels:{package_id}:{position}"),
                &p.try_get::<String, _>("name_sealed")?,
            )?,
            area_m2: p.try_get("area_m2")?,
            geometry: db::geometry_from_hex(&p.try_get::<String, _>("geom_wkb")?)?,
            unit_code: p.try_get("unit_code")?,
            parcel_id: p.try_get("parcel_id")?,
        });
    }
    Ok(Some(Package {
        row: QueueRow {
            package_id: r.try_get("package_id")?,
            application_no: r.try_get("application_no")?,
            format: r.try_get("format")?,
            confidential: r.try_get::<i64, _>("confidential")? != 0,
            status: r.try_get("status")?,
            error_count: r.try_get("error_count")?,
            warning_count: r.try_get("warning_count")?,
            parcel_count: r.try_get("n")?,
            received_at_ms: r.try_get("received_at_ms")?,
        },
        district_code: r.try_get("district_code")?,
        survey_file_id: r.try_get("survey_file_id")?,
        report_file_id: r.try_get("report_file_id")?,
        findings,
        parcels,
        decided_by: r.try_get("decided_by")?,
        decided_at_ms: r.try_get("decided_at_ms")?,
        reason,
    }))
}

/// Why a decision was not taken. The messages are for the surveyor's page.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// No such package in the surveyor's district.
    #[error("成果不存在，或不属于您所在的区县")]
    NotFound,
    /// Decided before.
    #[error("该成果已经审查完毕（{0}），不能再次审查")]
    AlreadyDecided(String),
    /// The input is refused; each line says what is wrong and what to do.
    #[error("{}", .0.join("；"))]
    Refused(Vec<String>),
    /// Anything else.
    #[error(transparent)]
    Other(#[from] IntranetError),
}

impl From<sqlx::Error> for ReviewError {
    fn from(e: sqlx::Error) -> Self {
        ReviewError::Other(e.into())
    }
}

impl From<ow_store::StoreError> for ReviewError {
    fn from(e: ow_store::StoreError) -> Self {
        ReviewError::Other(e.into())
    }
}

impl From<ow_exchange::ExchangeError> for ReviewError {
    fn from(e: ow_exchange::ExchangeError) -> Self {
        ReviewError::Other(e.into())
    }
}

/// What an approval needs.
#[derive(Clone, Default)]
pub struct ApproveInput {
    /// One unit code per parcel, by 地块编号.
    pub unit_codes: Vec<(String, String)>,
    /// Required when the package has error findings (and only a chief may give it).
    pub override_reason: Option<String>,
}

impl std::fmt::Debug for ApproveInput {
    /// The reason is not shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApproveInput")
            .field("unit_codes", &self.unit_codes)
            .finish_non_exhaustive()
    }
}

/// What a decision queued.
#[derive(Debug, Clone)]
pub struct Decided {
    /// The `SurveyReview` message id.
    pub message_id: String,
    /// Parcels that became existing parcels (for the spatial index).
    pub new_parcels: Vec<(ParcelId, geo::MultiPolygon<f64>)>,
}

fn clean_reason(text: Option<&str>) -> Option<String> {
    text.map(str::trim).filter(|t| !t.is_empty()).map(|t| {
        t.chars()
            .filter(|c| !c.is_control() || *c == '\n')
            .take(2000)
            .collect()
    })
}

async fn pending(
    tx: &mut Transaction<'static, Any>,
    state: &AppState,
    who: &Surveyor,
    package_id: &str,
) -> Result<Package, ReviewError> {
    let package = get(tx, state, &who.district_code, package_id)
        .await?
        .ok_or(ReviewError::NotFound)?;
    if package.row.status != PENDING {
        let zh = if package.row.status == APPROVED {
            "已通过"
        } else {
            "已驳回"
        };
        return Err(ReviewError::AlreadyDecided(zh.into()));
    }
    Ok(package)
}

/// Approves a package: checks every unit code (28 characters, the case's district, not used
/// by an existing parcel or the register mirror, not twice), records each parcel as an
/// existing parcel with a history row, and queues the `SurveyReview` — in one transaction.
/// The caller adds [`Decided::new_parcels`] to the spatial index after it returns.
pub async fn approve(
    state: &AppState,
    who: &Surveyor,
    package_id: &str,
    input: &ApproveInput,
) -> Result<Decided, ReviewError> {
    let now = state.now_ms();
    let buildings = package_buildings(state, who, package_id).await?;
    let mut tx = state.store.begin().await?;
    let package = pending(&mut tx, state, who, package_id).await?;
    if package.parcels.is_empty() {
        return Err(ReviewError::Refused(vec![
            "该成果没有可以入库的宗地（文件无法解析），只能驳回".into(),
        ]));
    }
    let override_reason = clean_reason(input.override_reason.as_deref());
    let mut problems = Vec::new();
    if package.row.error_count > 0 {
        match (&override_reason, who.has(Role::Chief)) {
            (None, _) => problems.push(format!(
                "该成果有 {} 项错误，不能直接通过：请驳回，或由审查负责人填写“强制通过理由”后通过",
                package.row.error_count
            )),
            (Some(_), false) => problems
                .push("有错误的成果只能由审查负责人强制通过；请驳回，或请审查负责人处理".into()),
            (Some(_), true) => {}
        }
    }
    let mut chosen: Vec<(&PackageParcel, UnitCode)> = Vec::new();
    let mut seen = HashSet::new();
    for parcel in &package.parcels {
        let given = input
            .unit_codes
            .iter()
            .find(|(n, _)| *n == parcel.number)
            .map(|(_, c)| c.trim())
            .unwrap_or("");
        let code = match UnitCode::parse(given) {
            Ok(code) => code,
            Err(e) => {
                let f = crate::checks::unit_code_malformed(given, &e.message_zh());
                problems.push(format!(
                    "地块 {}：{}，{}",
                    parcel.number, f.message, f.advice
                ));
                continue;
            }
        };
        if code.county_code() != package.district_code {
            problems.push(format!(
                "地块 {}：不动产单元号 {} 的前6位应为本案区县代码 {}，请核对",
                parcel.number,
                code.as_str(),
                package.district_code
            ));
            continue;
        }
        if !seen.insert(code.parcel_code().to_owned())
            || parcels::taken(&mut tx, code.parcel_code(), code.as_str()).await?
        {
            let f = crate::checks::unit_code_taken(code.as_str());
            problems.push(format!(
                "地块 {}：{}，{}",
                parcel.number, f.message, f.advice
            ));
            continue;
        }
        chosen.push((parcel, code));
    }
    if !problems.is_empty() {
        return Err(ReviewError::Refused(problems));
    }
    let mut reviewed = Vec::new();
    let mut new_parcels = Vec::new();
    for (parcel, code) in &chosen {
        let id = parcels::insert(
            &mut tx,
            &state.pii,
            &parcels::NewParcel {
                parcel_code: code.parcel_code(),
                unit_code: Some(code.as_str()),
                district_code: &package.district_code,
                name: &parcel.name,
                geometry: &parcel.geometry,
                area_m2: parcel.area_m2.parse().unwrap_or(0.0),
                package_id: Some(package_id),
                application_no: Some(&package.row.application_no),
                surveyor_id: Some(&who.id),
                action: "approved",
            },
            now,
        )
        .await?;
        for b in buildings
            .iter()
            .filter(|b| b.parcel_number == parcel.number)
        {
            sqlx::query(
                "INSERT INTO int_buildings (id, parcel_id, number, area_m2, geom_wkb, \
                 package_id, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(ow_store::new_id())
            .bind(id)
            .bind(&b.number)
            .bind(db::area_text(b.area_m2))
            .bind(db::geometry_to_hex(&b.geometry)?)
            .bind(package_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE int_package_parcels SET unit_code = $1, parcel_id = $2 \
             WHERE package_id = $3 AND position = $4",
        )
        .bind(code.as_str())
        .bind(id)
        .bind(package_id)
        .bind(parcel.position)
        .execute(&mut *tx)
        .await?;
        reviewed.push(ReviewedParcel {
            number: parcel.number.clone(),
            unit_code: code.as_str().to_owned(),
            area_m2: parcel.area_m2.clone(),
        });
        new_parcels.push((id, parcel.geometry.clone()));
    }
    let message_id = finish(
        &mut tx,
        state,
        who,
        &package,
        APPROVED,
        reviewed,
        override_reason.as_deref(),
        now,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(package_id, surveyor_id = %who.id, "survey package approved");
    Ok(Decided {
        message_id,
        new_parcels,
    })
}

/// The buildings of a package, read from its sealed survey file (before the decision's
/// transaction opens, so the file is not read while the database writer is held).
async fn package_buildings(
    state: &AppState,
    who: &Surveyor,
    package_id: &str,
) -> Result<Vec<crate::checks::CheckedBuilding>, ReviewError> {
    let mut conn = state.store.reader().acquire().await?;
    let Some(package) = get(&mut conn, state, &who.district_code, package_id).await? else {
        return Err(ReviewError::NotFound);
    };
    drop(conn);
    let pii = state.pii.clone();
    let dir = state.data_dir().to_path_buf();
    let max = state.settings.survey.max_file_bytes;
    let format = package.row.format.clone();
    tokio::task::spawn_blocking(move || {
        crate::files::read_blocking(&pii, &dir, &package.survey_file_id, max)
            .map(|bytes| crate::checks::buildings(&bytes, &format))
    })
    .await
    .map_err(|e| IntranetError::Invalid(format!("reading the survey file failed: {e}")))?
    .map_err(ReviewError::Other)
}

/// Rejects a package with a reason (required) and its findings, and queues the
/// `SurveyReview` in the same transaction.
pub async fn reject(
    state: &AppState,
    who: &Surveyor,
    package_id: &str,
    reason: &str,
) -> Result<Decided, ReviewError> {
    let Some(reason) = clean_reason(Some(reason)) else {
        return Err(ReviewError::Refused(vec![
            "请填写驳回理由：说明哪里有问题、申请人应如何修改".into(),
        ]));
    };
    let now = state.now_ms();
    let mut tx = state.store.begin().await?;
    let package = pending(&mut tx, state, who, package_id).await?;
    let message_id = finish(
        &mut tx,
        state,
        who,
        &package,
        REJECTED,
        Vec::new(),
        Some(&reason),
        now,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(package_id, surveyor_id = %who.id, "survey package rejected");
    Ok(Decided {
        message_id,
        new_parcels: Vec::new(),
    })
}

#[allow(clippy::too_many_arguments)]
async fn finish(
    tx: &mut Transaction<'static, Any>,
    state: &AppState,
    who: &Surveyor,
    package: &Package,
    outcome: &str,
    parcels: Vec<ReviewedParcel>,
    reason: Option<&str>,
    now: i64,
) -> Result<String, ReviewError> {
    let package_id = &package.row.package_id;
    let message_id = ow_exchange::enqueue(
        tx,
        &state.pii,
        &TO_EXTRANET,
        Message::SurveyReview(SurveyReview {
            application_no: package.row.application_no.clone(),
            package_id: package_id.clone(),
            outcome: outcome.to_owned(),
            parcels,
            findings: package.findings.clone(),
            reason: reason.map(str::to_owned),
            reviewed_at_ms: now,
        }),
        Vec::new(),
    )
    .await?;
    let sealed = reason.map(|r| {
        db::seal(
            &state.pii,
            db::REASON_FIELD,
            &format!("int_packages:{package_id}:reason"),
            r,
        )
    });
    let (reason_col, override_col) = if outcome == APPROVED {
        (None, sealed)
    } else {
        (sealed, None)
    };
    let updated = sqlx::query(
        "UPDATE int_packages SET status = $1, decided_by = $2, decided_at_ms = $3, \
         reason_sealed = $4, override_reason_sealed = $5, review_message_id = $6 \
         WHERE package_id = $7 AND status = $8",
    )
    .bind(outcome)
    .bind(&who.id)
    .bind(now)
    .bind(reason_col)
    .bind(override_col)
    .bind(&message_id)
    .bind(package_id)
    .bind(PENDING)
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() != 1 {
        return Err(ReviewError::AlreadyDecided("刚刚已由他人处理".into()));
    }
    Ok(message_id)
}
