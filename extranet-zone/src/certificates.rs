//! Certificates (不动产权证书): numbering, signing, storing, cancelling.
//!
//! Numbers are `鲁(2026)青州市不动产权第0000123号`: per district, per year (Beijing time), per
//! kind, from a counter row (`ext_cert_counters`) that the issuing transaction increments with
//! an upsert — the row lock serialises concurrent issuers on PostgreSQL, SQLite has one writer —
//! and the unique constraint on (district, year, kind, sequence) makes reuse impossible. The
//! signed e-certificate holds full personal data, so it is stored sealed, like the verification
//! code (kept so staff can reprint); the public side gets only the code's digest.

use chrono::{DateTime, Datelike, FixedOffset, Utc};
use ow_certificate::{
    AreaM2, ECertificate, FORMAT, Holder, IdDocumentType, JointOwnership, LicenseId,
    SignedCertificate, SigningKey, VerificationCode, code_digest,
};
use ow_domain::{
    CertificateKind, CertificateNumber, PersonName, RegistrationType, RightType, Share, UnitCode,
};
use ow_pii::PiiKeyring;
use sqlx::{AnyConnection, Row};

use crate::db;
use crate::error::{ExtranetError, Result};
use crate::exchange::CertificateStatus as StatusMessage;
use crate::register::{Right, Unit};

/// Certificate status: in force.
pub const VALID: &str = "valid";
/// Certificate status: cancelled.
pub const CANCELLED: &str = "cancelled";
/// The reason given when a transfer cancels the seller's certificate.
pub const TRANSFER_CANCEL_REASON: &str = "因转移登记注销";

/// A district (tenant) with what its certificates need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct District {
    /// 6-digit code.
    pub code: String,
    /// Name, e.g. `青州市`.
    pub name: String,
    /// Province abbreviation, e.g. `鲁`.
    pub province: char,
    /// The registration centre, e.g. `青州市不动产登记中心`.
    pub issuer: String,
}

/// A district by code.
pub async fn district(conn: &mut AnyConnection, code: &str) -> Result<Option<District>> {
    let row = sqlx::query("SELECT code, name, province, issuer FROM ext_districts WHERE code = $1")
        .bind(code)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let province: String = row.try_get("province")?;
    Ok(Some(District {
        code: row.try_get("code")?,
        name: row.try_get("name")?,
        province: province
            .chars()
            .next()
            .ok_or_else(|| db::corrupt(format!("province of district {code}")))?,
        issuer: row.try_get("issuer")?,
    }))
}

/// Beijing time (UTC+8) of a Unix-ms instant, whole seconds.
pub fn beijing(ms: i64) -> DateTime<FixedOffset> {
    let secs = ms.div_euclid(1000);
    DateTime::<Utc>::from_timestamp(secs, 0)
        .unwrap_or_default()
        .with_timezone(&BEIJING)
}

/// China Standard Time.
pub const BEIJING: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+8 is a valid offset"),
};

fn kind_code(kind: CertificateKind) -> &'static str {
    match kind {
        CertificateKind::RightsCertificate => "rights",
        CertificateKind::RegistrationProof => "proof",
    }
}

/// Allocates the next number of `district` for `year` and `kind` (inside the issuing
/// transaction).
pub async fn allocate_number(
    conn: &mut AnyConnection,
    district: &District,
    year: u16,
    kind: CertificateKind,
) -> Result<CertificateNumber> {
    let sequence: i64 = sqlx::query_scalar(
        "INSERT INTO ext_cert_counters (district_code, year, kind, last_sequence) \
         VALUES ($1, $2, $3, 1) ON CONFLICT (district_code, year, kind) \
         DO UPDATE SET last_sequence = ext_cert_counters.last_sequence + 1 \
         RETURNING last_sequence",
    )
    .bind(&district.code)
    .bind(i64::from(year))
    .bind(kind_code(kind))
    .fetch_one(&mut *conn)
    .await?;
    let sequence = u32::try_from(sequence)
        .map_err(|_| db::corrupt(format!("certificate counter {sequence}")))?;
    CertificateNumber::new(district.province, year, &district.name, kind, sequence).map_err(|e| {
        ExtranetError::Invalid(format!(
            "cannot number a certificate of district {}: {}",
            district.code,
            e.message_zh()
        ))
    })
}

/// What to issue.
#[derive(Debug)]
pub struct IssueInput<'a> {
    /// The district.
    pub district: &'a District,
    /// The unit.
    pub unit: &'a Unit,
    /// The (new, current) right with its holders.
    pub right: &'a Right,
    /// 登记类型.
    pub registration_type: RegistrationType,
    /// The case, if any (seeded certificates have none).
    pub application_no: Option<&'a str>,
    /// 登簿时间.
    pub recorded_at_ms: i64,
    /// 发证时间.
    pub issued_at_ms: i64,
    /// Certificates it replaces.
    pub replaces: Vec<CertificateNumber>,
    /// The staff member issuing.
    pub issued_by: Option<&'a str>,
}

/// An issued certificate.
#[derive(Debug, Clone)]
pub struct Issued {
    /// Its number.
    pub number: CertificateNumber,
    /// Its verification code.
    pub code: VerificationCode,
    /// The signed document.
    pub signed: SignedCertificate,
    /// The signed document as JSON.
    pub json: String,
    /// The public status message (valid).
    pub status: StatusMessage,
}

fn holder_of(h: &crate::register::Holder, in_shares: bool) -> Result<Holder> {
    let name = PersonName::parse(&h.name)
        .map_err(|e| ExtranetError::Invalid(format!("holder name: {}", e.message_zh())))?;
    let id_type = h
        .id_type
        .parse::<u16>()
        .ok()
        .and_then(IdDocumentType::from_code)
        .unwrap_or(IdDocumentType::Other);
    let share = if in_shares {
        Some(
            Share::parse(&h.share)
                .map_err(|e| ExtranetError::Invalid(format!("share: {}", e.message_zh())))?,
        )
    } else {
        None
    };
    Ok(Holder {
        name,
        id_type,
        id_number: h.id_number.clone(),
        share,
    })
}

/// Numbers, builds, signs and stores a certificate for `input.right` (inside the caller's
/// transaction). Nothing is sent: the caller queues the messages.
pub async fn issue(
    conn: &mut AnyConnection,
    pii: &PiiKeyring,
    key: &SigningKey,
    input: IssueInput<'_>,
) -> Result<Issued> {
    let issued_at = beijing(input.issued_at_ms);
    let recorded_at = beijing(input.recorded_at_ms.min(input.issued_at_ms));
    let year = u16::try_from(issued_at.year())
        .map_err(|_| ExtranetError::Invalid("issue year out of range".into()))?;
    let kind = CertificateKind::RightsCertificate;
    let number = allocate_number(conn, input.district, year, kind).await?;
    let serial = u64::from(year % 100) * 10_000_000 + u64::from(number.sequence());
    let license_id = LicenseId::new(kind, &input.district.code, serial, 1)
        .map_err(|e| ExtranetError::Invalid(format!("licence id of {number}: {e}")))?;
    let in_shares = input.right.holders.len() > 1;
    let holders = input
        .right
        .holders
        .iter()
        .map(|h| holder_of(h, in_shares))
        .collect::<Result<Vec<_>>>()?;
    let code = VerificationCode::generate()?;
    let unit_code = UnitCode::parse(&input.unit.unit_code)
        .map_err(|e| ExtranetError::Invalid(e.message_zh()))?;
    let right_type = u8::try_from(input.unit.right_type)
        .ok()
        .and_then(RightType::from_code)
        .unwrap_or(RightType::StateConstructionLandAndBuilding);
    let area_m2 = AreaM2::parse(&input.unit.area_m2)?;
    let certificate = ECertificate {
        format: FORMAT.into(),
        certificate_number: number.clone(),
        license_id,
        issuer: input.district.issuer.clone(),
        district_code: input.district.code.clone(),
        unit_code,
        location: input.unit.location.clone(),
        right_type,
        right_nature: input.unit.right_nature.clone(),
        registration_type: input.registration_type,
        usage: input.unit.usage.clone(),
        area_m2,
        use_term: input.unit.use_term.clone(),
        holders,
        joint_ownership: if in_shares {
            JointOwnership::InShares
        } else {
            JointOwnership::Sole
        },
        obligors: Vec::new(),
        recorded_at,
        issued_at,
        // Certificates from before this system (seeded history) carry a historic 业务号.
        case_id: input
            .application_no
            .map_or_else(|| format!("HIST-{}", input.unit.unit_code), str::to_owned),
        verification_code: code,
        replaces: input.replaces.clone(),
        notes: String::new(),
    };
    let signed = ow_certificate::sign(&certificate, key)?;
    let json = signed.to_json()?;
    let digest = code_digest(&number, &code);
    let holders_masked: Vec<String> = certificate.holders.iter().map(Holder::masked).collect();
    let ctx = format!("ext_certificates:{}", number.as_str());
    sqlx::query(
        "INSERT INTO ext_certificates (certificate_number, district_code, year, kind, sequence, \
         unit_code, right_id, application_no, status, holders_masked, location, code_digest, \
         code_sealed, signed_sealed, issued_at_ms, issued_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'valid', $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(number.as_str())
    .bind(&input.district.code)
    .bind(i64::from(year))
    .bind(kind_code(kind))
    .bind(i64::from(number.sequence()))
    .bind(&input.unit.unit_code)
    .bind(&input.right.id)
    .bind(input.application_no)
    .bind(serde_json::to_string(&holders_masked).unwrap_or_default())
    .bind(&input.unit.location)
    .bind(&digest)
    .bind(db::seal(pii, db::CODE_FIELD, &ctx, &code.grouped()))
    .bind(db::seal(pii, db::CERTIFICATE_FIELD, &ctx, &json))
    .bind(input.issued_at_ms - input.issued_at_ms.rem_euclid(1000))
    .bind(input.issued_by)
    .execute(&mut *conn)
    .await?;
    let status = StatusMessage {
        certificate_number: number.as_str().to_owned(),
        status: VALID.into(),
        code_digest: digest,
        holders_masked,
        unit_code: input.unit.unit_code.clone(),
        location: input.unit.location.clone(),
        issued_at_ms: input.issued_at_ms - input.issued_at_ms.rem_euclid(1000),
        cancelled_at_ms: None,
        cancelled_reason: None,
        application_no: input.application_no.map(str::to_owned),
    };
    Ok(Issued {
        number,
        code,
        signed,
        json,
        status,
    })
}

/// A certificate row (no personal data in clear).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRow {
    /// Number.
    pub number: String,
    /// District.
    pub district_code: String,
    /// Unit.
    pub unit_code: String,
    /// Right it evidences.
    pub right_id: String,
    /// The case that issued it.
    pub application_no: Option<String>,
    /// `valid` or `cancelled`.
    pub status: String,
    /// Holders masked.
    pub holders_masked: Vec<String>,
    /// 坐落.
    pub location: String,
    /// Digest of the verification code.
    pub code_digest: String,
    /// Issued.
    pub issued_at_ms: i64,
    /// Cancelled.
    pub cancelled_at_ms: Option<i64>,
    /// Why cancelled.
    pub cancelled_reason: Option<String>,
    /// The case that cancelled it.
    pub cancelled_by_application: Option<String>,
}

impl CertificateRow {
    /// `有效` / `已注销`.
    pub fn status_zh(&self) -> &'static str {
        if self.status == VALID {
            "有效"
        } else {
            "已注销"
        }
    }

    /// The public status message for the portal.
    pub fn status_message(&self) -> StatusMessage {
        StatusMessage {
            certificate_number: self.number.clone(),
            status: self.status.clone(),
            code_digest: self.code_digest.clone(),
            holders_masked: self.holders_masked.clone(),
            unit_code: self.unit_code.clone(),
            location: self.location.clone(),
            issued_at_ms: self.issued_at_ms,
            cancelled_at_ms: self.cancelled_at_ms,
            cancelled_reason: self.cancelled_reason.clone(),
            application_no: self
                .cancelled_by_application
                .clone()
                .or_else(|| self.application_no.clone()),
        }
    }
}

const CERT_COLUMNS: &str = "certificate_number, district_code, unit_code, right_id, \
    application_no, status, holders_masked, location, code_digest, issued_at_ms, \
    cancelled_at_ms, cancelled_reason, cancelled_by_application";

fn row_of(row: &sqlx::any::AnyRow) -> Result<CertificateRow> {
    let masked: String = row.try_get("holders_masked")?;
    Ok(CertificateRow {
        number: row.try_get("certificate_number")?,
        district_code: row.try_get("district_code")?,
        unit_code: row.try_get("unit_code")?,
        right_id: row.try_get("right_id")?,
        application_no: row.try_get("application_no")?,
        status: row.try_get("status")?,
        holders_masked: serde_json::from_str(&masked).unwrap_or_default(),
        location: row.try_get("location")?,
        code_digest: row.try_get("code_digest")?,
        issued_at_ms: row.try_get("issued_at_ms")?,
        cancelled_at_ms: row.try_get("cancelled_at_ms")?,
        cancelled_reason: row.try_get("cancelled_reason")?,
        cancelled_by_application: row.try_get("cancelled_by_application")?,
    })
}

/// The certificates of a unit, newest first.
pub async fn by_unit(conn: &mut AnyConnection, unit_code: &str) -> Result<Vec<CertificateRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CERT_COLUMNS} FROM ext_certificates WHERE unit_code = $1 \
         ORDER BY issued_at_ms DESC, certificate_number DESC"
    )))
    .bind(unit_code)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(row_of).collect()
}

/// Every certificate of a district, newest first (for status republishing and lists).
pub async fn by_district(conn: &mut AnyConnection, district: &str) -> Result<Vec<CertificateRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CERT_COLUMNS} FROM ext_certificates WHERE district_code = $1 \
         ORDER BY issued_at_ms DESC, certificate_number DESC"
    )))
    .bind(district)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(row_of).collect()
}

/// A certificate of `district` by number (another district's: `None`).
pub async fn get(
    conn: &mut AnyConnection,
    district: &str,
    number: &str,
) -> Result<Option<CertificateRow>> {
    let Ok(number) = CertificateNumber::parse(number) else {
        return Ok(None);
    };
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CERT_COLUMNS} FROM ext_certificates WHERE certificate_number = $1 \
         AND district_code = $2"
    )))
    .bind(number.as_str())
    .bind(district)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(row_of).transpose()
}

/// The signed document and verification code of a certificate of `district`.
pub async fn signed(
    conn: &mut AnyConnection,
    pii: &PiiKeyring,
    district: &str,
    number: &str,
) -> Result<Option<(SignedCertificate, VerificationCode)>> {
    let Ok(number) = CertificateNumber::parse(number) else {
        return Ok(None);
    };
    let row = sqlx::query(
        "SELECT code_sealed, signed_sealed FROM ext_certificates WHERE certificate_number = $1 \
         AND district_code = $2",
    )
    .bind(number.as_str())
    .bind(district)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let ctx = format!("ext_certificates:{}", number.as_str());
    let code: String = row.try_get("code_sealed")?;
    let doc: String = row.try_get("signed_sealed")?;
    let code = db::open(pii, db::CODE_FIELD, &ctx, &code)?;
    let doc = db::open(pii, db::CERTIFICATE_FIELD, &ctx, &doc)?;
    let code = VerificationCode::parse(&code).map_err(|_| db::corrupt("verification code"))?;
    let signed = SignedCertificate::from_json(doc.as_bytes())?;
    Ok(Some((signed, code)))
}

/// Cancels every valid certificate of `right_id` (inside the caller's transaction) and returns
/// them as cancelled.
pub async fn cancel_for_right(
    conn: &mut AnyConnection,
    right_id: &str,
    application_no: &str,
    reason: &str,
    now_ms: i64,
) -> Result<Vec<CertificateRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CERT_COLUMNS} FROM ext_certificates WHERE right_id = $1 AND status = 'valid'"
    )))
    .bind(right_id)
    .fetch_all(&mut *conn)
    .await?;
    let now_ms = now_ms - now_ms.rem_euclid(1000);
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut cert = row_of(row)?;
        sqlx::query(
            "UPDATE ext_certificates SET status = 'cancelled', cancelled_at_ms = $1, \
             cancelled_reason = $2, cancelled_by_application = $3 \
             WHERE certificate_number = $4 AND status = 'valid'",
        )
        .bind(now_ms.max(cert.issued_at_ms))
        .bind(reason)
        .bind(application_no)
        .bind(&cert.number)
        .execute(&mut *conn)
        .await?;
        cert.status = CANCELLED.into();
        cert.cancelled_at_ms = Some(now_ms.max(cert.issued_at_ms));
        cert.cancelled_reason = Some(reason.to_owned());
        cert.cancelled_by_application = Some(application_no.to_owned());
        out.push(cert);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beijing_time_is_whole_seconds_at_utc_plus_8() {
        let t = beijing(1_767_225_600_123); // 2026-01-01T00:00:00.123Z
        assert_eq!(t.to_rfc3339(), "2026-01-01T08:00:00+08:00");
    }
}
