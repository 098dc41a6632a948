//! The citizen's e-certificates (stored sealed: they hold full personal data) and the public
//! verification records behind `/verify`.

use ow_certificate::{SignedCertificate, VerificationCode, digest_matches};
use ow_domain::CertificateNumber;
use ow_pii::{Field, Sealed};
use serde::Serialize;
use sqlx::Row;

use crate::app::App;
use crate::error::{AppError, FieldError};

pub(crate) const CERT_FIELD: Field = Field::Other("e-certificate");

pub(crate) fn cert_ctx(id: &str) -> Vec<u8> {
    format!("inet_certificates:{id}").into_bytes()
}

/// One certificate in "我的证书".
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CertificateSummary {
    /// Id for the download links.
    pub id: String,
    /// 证号.
    pub certificate_number: String,
    /// The application it resulted from.
    pub application_no: Option<String>,
    /// 发证时间, Unix milliseconds.
    pub issued_at_ms: i64,
    /// `valid`, `cancelled`, or `unknown` when no public record has arrived.
    pub status: String,
}

/// The citizen's certificates, newest first.
pub async fn list(app: &App, account_id: &str) -> Result<Vec<CertificateSummary>, AppError> {
    let rows = sqlx::query(
        "SELECT c.id, c.certificate_number, a.application_no, c.issued_at_ms, p.status \
         FROM inet_certificates c JOIN inet_applications a ON a.id = c.application_id \
         LEFT JOIN inet_public_certificates p ON p.certificate_number = c.certificate_number \
         WHERE c.account_id = $1 ORDER BY c.issued_at_ms DESC, c.id",
    )
    .bind(account_id)
    .fetch_all(app.store.reader())
    .await?;
    rows.iter()
        .map(|r| {
            let status: Option<String> = r.try_get("status")?;
            Ok(CertificateSummary {
                id: r.try_get("id")?,
                certificate_number: r.try_get("certificate_number")?,
                application_no: r.try_get("application_no")?,
                issued_at_ms: r.try_get("issued_at_ms")?,
                status: status.unwrap_or_else(|| "unknown".into()),
            })
        })
        .collect()
}

/// The citizen's signed certificate with this id (`None` if it is not theirs).
pub async fn get_signed(
    app: &App,
    account_id: &str,
    id: &str,
) -> Result<Option<SignedCertificate>, AppError> {
    let row = sqlx::query(
        "SELECT signed_sealed FROM inet_certificates WHERE id = $1 AND account_id = $2",
    )
    .bind(id)
    .bind(account_id)
    .fetch_optional(app.store.reader())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let sealed: String = row.try_get("signed_sealed")?;
    let bytes = app
        .pii
        .open(CERT_FIELD, &cert_ctx(id), &Sealed::from_text(&sealed)?)?;
    Ok(Some(SignedCertificate::from_json(&bytes)?))
}

/// What `/verify` may show about a certificate: nothing personal in clear.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PublicView {
    /// 证号.
    pub certificate_number: String,
    /// `valid` or `cancelled`.
    pub status: String,
    /// 有效 / 已注销.
    pub status_zh: String,
    /// Holders masked: 张*三（370781********1234）.
    pub holders_masked: Vec<String>,
    /// 不动产单元号.
    pub unit_code: String,
    /// 坐落.
    pub location: String,
    /// 发证时间, Unix milliseconds.
    pub issued_at_ms: i64,
    /// 注销时间.
    pub cancelled_at_ms: Option<i64>,
    /// 注销原因.
    pub cancelled_reason: Option<String>,
}

/// The answer of `/verify`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VerifyResult {
    /// `valid`, `cancelled`, `no_match` (no certificate has this number and this code: a
    /// number and code check) or `not_genuine` (a file that does not verify).
    pub outcome: String,
    /// 有效 / 已注销 / 证书编号与验证码不匹配 / 非真实证书.
    pub outcome_zh: String,
    /// The public record, for a genuine certificate.
    pub record: Option<PublicView>,
}

impl VerifyResult {
    /// The answer when no published certificate has this number with this code. It says the
    /// pair does not match rather than "not genuine": a typo in either is the likely cause, and
    /// whether the number exists is not told.
    fn no_match() -> Self {
        VerifyResult {
            outcome: "no_match".into(),
            outcome_zh: "证书编号与验证码不匹配".into(),
            record: None,
        }
    }

    /// The answer for a file that is not a certificate signed by the registration centre.
    pub fn not_genuine() -> Self {
        VerifyResult {
            outcome: "not_genuine".into(),
            outcome_zh: "非真实证书".into(),
            record: None,
        }
    }

    fn of(view: PublicView) -> Self {
        VerifyResult {
            outcome: view.status.clone(),
            outcome_zh: view.status_zh.clone(),
            record: Some(view),
        }
    }
}

async fn public_record(app: &App, number: &str) -> Result<Option<(PublicView, String)>, AppError> {
    let row = sqlx::query(
        "SELECT certificate_number, status, code_digest, holders_masked, unit_code, location, \
         issued_at_ms, cancelled_at_ms, cancelled_reason FROM inet_public_certificates WHERE certificate_number = $1",
    )
    .bind(number)
    .fetch_optional(app.store.reader())
    .await?;
    let Some(r) = row else { return Ok(None) };
    let status: String = r.try_get("status")?;
    let holders: String = r.try_get("holders_masked")?;
    Ok(Some((
        PublicView {
            certificate_number: r.try_get("certificate_number")?,
            status_zh: if status == "cancelled" {
                "已注销"
            } else {
                "有效"
            }
            .into(),
            status,
            holders_masked: serde_json::from_str(&holders)?,
            unit_code: r.try_get("unit_code")?,
            location: r.try_get("location")?,
            issued_at_ms: r.try_get("issued_at_ms")?,
            cancelled_at_ms: r.try_get("cancelled_at_ms")?,
            cancelled_reason: r.try_get("cancelled_reason")?,
        },
        r.try_get("code_digest")?,
    )))
}

/// Checks a certificate number and verification code. A malformed input is a field error; a
/// well-formed pair that matches nothing (unknown number, or wrong code for a real number) is
/// `no_match`, the same answer in the same time either way.
pub async fn verify_code(
    app: &App,
    number: &str,
    code: &str,
) -> Result<Result<VerifyResult, Vec<FieldError>>, AppError> {
    let mut errors = Vec::new();
    let number = CertificateNumber::parse(number)
        .map_err(|e| errors.push(FieldError::new("cert", e.message_zh())))
        .ok();
    let code = VerificationCode::parse(code)
        .map_err(|e| errors.push(FieldError::new("code", e.message_zh())))
        .ok();
    let (Some(number), Some(code)) = (number, code) else {
        return Ok(Err(errors));
    };
    let found = public_record(app, number.as_str()).await?;
    Ok(Ok(match found {
        Some((view, digest)) if digest_matches(&digest, &number, &code) => VerifyResult::of(view),
        Some(_) => VerifyResult::no_match(),
        None => {
            // Same work as a found record, so timing does not tell which numbers exist.
            std::hint::black_box(digest_matches("", &number, &code));
            VerifyResult::no_match()
        }
    }))
}

/// Checks an uploaded e-certificate file, the signed `.json` or the PDF that carries it: the
/// signature against the extranet's key, then the published status. Anything that does not
/// parse or verify is 非真实证书.
pub async fn verify_file(app: &App, bytes: Vec<u8>) -> Result<VerifyResult, AppError> {
    let signed = if bytes.starts_with(b"%PDF-") {
        // A PDF from outside is parsed off the async workers; a parser panic is a refusal.
        match tokio::task::spawn_blocking(move || ow_certificate::signed_from_pdf(&bytes)).await {
            Ok(Ok(signed)) => signed,
            Ok(Err(e)) => {
                tracing::info!(error = %e, "uploaded PDF holds no readable e-certificate");
                return Ok(VerifyResult::not_genuine());
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading an uploaded PDF failed");
                return Ok(VerifyResult::not_genuine());
            }
        }
    } else {
        match SignedCertificate::from_json(&bytes) {
            Ok(signed) => signed,
            Err(_) => return Ok(VerifyResult::not_genuine()),
        }
    };
    let Ok(cert) = signed.verify(&app.trust) else {
        return Ok(VerifyResult::not_genuine());
    };
    let found = public_record(app, cert.certificate_number.as_str()).await?;
    Ok(match found {
        Some((view, digest))
            if digest_matches(&digest, &cert.certificate_number, &cert.verification_code) =>
        {
            VerifyResult::of(view)
        }
        _ => VerifyResult::not_genuine(),
    })
}

/// What the back office has published about a unit that the portal may show the citizen who is
/// applying for it: the address (坐落), and the masked holders when the citizen has typed the
/// seller's certificate number. It comes from the same public records `/verify` answers from
/// (`CertificateStatus` messages); the portal holds no register. `None` when nothing is published
/// for the unit or certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedUnit {
    /// 坐落.
    pub location: String,
    /// Holders of the certificate, masked as published (张*三（370781********1234）); empty
    /// unless the citizen typed the certificate number.
    pub holders_masked: Vec<String>,
}

/// Looks up the valid public record for the unit code and/or certificate number of a draft.
/// The address is shown for a matching unit code or certificate number; the masked holders
/// only for a matching certificate number (knowing it means having seen the certificate), and
/// only when a unit code, if also given, is that certificate's.
pub async fn published_unit(
    app: &App,
    unit_code: &str,
    certificate_number: &str,
) -> Result<Option<PublishedUnit>, AppError> {
    let unit_code = unit_code.trim();
    let certificate_number = certificate_number.trim();
    if !certificate_number.is_empty() {
        let row = sqlx::query(
            "SELECT unit_code, location, holders_masked FROM inet_public_certificates \
             WHERE certificate_number = $1 AND status = 'valid'",
        )
        .bind(certificate_number)
        .fetch_optional(app.store.reader())
        .await?;
        if let Some(r) = row {
            let unit: String = r.try_get("unit_code")?;
            if unit_code.is_empty() || unit == unit_code {
                let holders: String = r.try_get("holders_masked")?;
                return Ok(Some(PublishedUnit {
                    location: r.try_get("location")?,
                    holders_masked: serde_json::from_str(&holders)?,
                }));
            }
        }
    }
    if unit_code.is_empty() {
        return Ok(None);
    }
    let location: Option<String> = sqlx::query_scalar(
        "SELECT location FROM inet_public_certificates WHERE unit_code = $1 AND status = 'valid' \
         ORDER BY issued_at_ms DESC LIMIT 1",
    )
    .bind(unit_code)
    .fetch_optional(app.store.reader())
    .await?;
    Ok(location.map(|location| PublishedUnit {
        location,
        holders_masked: Vec::new(),
    }))
}
