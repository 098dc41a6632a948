//! What the public `/verify` page shows: [`PublicRecord`] (masked holders, no ID numbers in
//! clear) and the [`VerifyOutcome`] of a check.

use chrono::{DateTime, FixedOffset};
use ow_domain::{CertificateNumber, UnitCode};
use serde::{Deserialize, Serialize};

use crate::code::{VerificationCode, digest_hex, digest_matches};
use crate::document::{ECertificate, timestamp};
use crate::error::CertificateError;

/// Whether a certificate is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateStatus {
    /// 有效: in force.
    Valid,
    /// 已注销: cancelled (replaced by a later certificate, or the right was cancelled).
    Cancelled,
}

impl CertificateStatus {
    /// `有效` or `已注销`.
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Valid => "有效",
            Self::Cancelled => "已注销",
        }
    }
}

/// The public facts of one certificate, as `/verify` shows them. Holder names and ID numbers
/// are masked (`张*三（370781********1234）`); nothing else personal is included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicRecord {
    /// 证号.
    pub certificate_number: CertificateNumber,
    /// The issuing registration centre.
    pub issuer: String,
    /// In force or cancelled.
    pub status: CertificateStatus,
    /// Each rights holder masked, in certificate order: `张*三（370781********1234）`.
    pub holders_masked: Vec<String>,
    /// 不动产单元号.
    pub unit_code: UnitCode,
    /// 坐落.
    pub location: String,
    /// 发证时间.
    #[serde(with = "timestamp")]
    pub issued_at: DateTime<FixedOffset>,
    /// When it was cancelled, if it was.
    #[serde(with = "timestamp::option")]
    pub cancelled_at: Option<DateTime<FixedOffset>>,
    /// Why it was cancelled (e.g. `转移登记，由鲁(2026)青州市不动产权第0000200号替代`), if it was.
    pub cancelled_reason: Option<String>,
}

impl PublicRecord {
    /// The public record of a newly issued certificate (status valid).
    pub fn from_certificate(certificate: &ECertificate) -> Self {
        Self {
            certificate_number: certificate.certificate_number.clone(),
            issuer: certificate.issuer.clone(),
            status: CertificateStatus::Valid,
            holders_masked: certificate.holders.iter().map(|h| h.masked()).collect(),
            unit_code: certificate.unit_code.clone(),
            location: certificate.location.clone(),
            issued_at: certificate.issued_at,
            cancelled_at: None,
            cancelled_reason: None,
        }
    }

    /// Marks the certificate cancelled at `at` for `reason`. Refuses a record already cancelled
    /// and a time before issue.
    pub fn cancel(
        &mut self,
        at: DateTime<FixedOffset>,
        reason: &str,
    ) -> Result<(), CertificateError> {
        if self.status == CertificateStatus::Cancelled {
            return Err(CertificateError::invalid(
                "status",
                format!(
                    "certificate {} is already cancelled; a certificate is cancelled only once",
                    self.certificate_number
                ),
            ));
        }
        if at < self.issued_at {
            return Err(CertificateError::invalid(
                "cancelled_at",
                "is before the certificate was issued; check the cancellation time",
            ));
        }
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().any(char::is_control) {
            return Err(CertificateError::invalid(
                "cancelled_reason",
                "must be a non-empty line of text, e.g. 转移登记",
            ));
        }
        self.status = CertificateStatus::Cancelled;
        self.cancelled_at = Some(at);
        self.cancelled_reason = Some(reason.to_owned());
        Ok(())
    }
}

/// The answer `/verify` gives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "record", rename_all = "snake_case")]
pub enum VerifyOutcome {
    /// 有效: genuine and in force.
    Valid(PublicRecord),
    /// 已注销: genuine but cancelled.
    Cancelled(PublicRecord),
    /// 非真实证书: no certificate with this number and verification code (or a signature that
    /// does not verify).
    NotGenuine,
}

impl VerifyOutcome {
    /// `有效`, `已注销` or `非真实证书`.
    pub fn label_zh(&self) -> &'static str {
        match self {
            Self::Valid(_) => "有效",
            Self::Cancelled(_) => "已注销",
            Self::NotGenuine => "非真实证书",
        }
    }

    /// The outcome for a genuine certificate's record, by its status.
    pub fn of_record(record: PublicRecord) -> Self {
        match record.status {
            CertificateStatus::Valid => Self::Valid(record),
            CertificateStatus::Cancelled => Self::Cancelled(record),
        }
    }

    /// Decides a `/verify` query. `found` is what the store holds for the queried certificate
    /// number, if anything: its public record and its stored [`crate::code_digest`]. The outcome is
    /// genuine only if the record's number and `code` give that digest; the digest is computed
    /// and compared in constant time even when nothing was found.
    pub fn decide(found: Option<(&PublicRecord, &str)>, code: &VerificationCode) -> Self {
        match found {
            Some((record, stored_digest))
                if digest_matches(stored_digest, &record.certificate_number, code) =>
            {
                Self::of_record(record.clone())
            }
            Some(_) => Self::NotGenuine,
            None => {
                // Spend the same work as a lookup that found something, so response time does
                // not tell which certificate numbers exist.
                std::hint::black_box(digest_hex("京(2026)某市不动产权第0000001号", code));
                Self::NotGenuine
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::code_digest;
    use crate::testutil::{sample, sample_in_shares};

    fn at(text: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(text).expect("time")
    }

    #[test]
    fn record_masks_holders() {
        let cert = sample_in_shares();
        let record = PublicRecord::from_certificate(&cert);
        assert_eq!(
            record.holders_masked,
            ["张*三（370781********2347）", "李*四（370781********1266）"]
        );
        assert_eq!(record.status, CertificateStatus::Valid);
        assert_eq!(record.certificate_number, cert.certificate_number);
        assert_eq!(record.unit_code, cert.unit_code);
        assert_eq!(record.location, cert.location);
        assert_eq!(record.issued_at, cert.issued_at);
        let json = serde_json::to_string(&record).expect("json");
        for clear in [
            "张小三",
            "370781199001012347",
            "李小四",
            "370781199202021266",
        ] {
            assert!(!json.contains(clear), "{clear} leaked into {json}");
        }
        assert_eq!(
            serde_json::from_str::<PublicRecord>(&json).expect("parse"),
            record
        );
    }

    #[test]
    fn cancellation() {
        let mut record = PublicRecord::from_certificate(&sample());
        assert!(
            record
                .cancel(at("2026-01-01T00:00:00+08:00"), "转移")
                .is_err()
        );
        assert!(record.cancel(at("2026-05-01T10:00:00+08:00"), " ").is_err());
        record
            .cancel(at("2026-05-01T10:00:00+08:00"), " 转移登记 ")
            .expect("cancel");
        assert_eq!(record.status, CertificateStatus::Cancelled);
        assert_eq!(record.cancelled_reason.as_deref(), Some("转移登记"));
        assert_eq!(record.status.label_zh(), "已注销");
        let json = serde_json::to_string(&record).expect("json");
        assert!(
            json.contains(r#""cancelled_at":"2026-05-01T10:00:00+08:00""#),
            "{json}"
        );
        assert!(json.contains(r#""status":"cancelled""#), "{json}");
        assert_eq!(
            serde_json::from_str::<PublicRecord>(&json).expect("parse"),
            record
        );
        let err = record
            .cancel(at("2026-06-01T10:00:00+08:00"), "again")
            .expect_err("twice");
        assert!(err.to_string().contains("already cancelled"), "{err}");
    }

    #[test]
    fn outcomes_and_labels() {
        let cert = sample();
        let record = PublicRecord::from_certificate(&cert);
        let digest = code_digest(&cert.certificate_number, &cert.verification_code);

        let valid = VerifyOutcome::decide(Some((&record, &digest)), &cert.verification_code);
        assert_eq!(valid, VerifyOutcome::Valid(record.clone()));
        assert_eq!(valid.label_zh(), "有效");

        let wrong_code = VerificationCode::parse("22222-22222").expect("code");
        let not_genuine = VerifyOutcome::decide(Some((&record, &digest)), &wrong_code);
        assert_eq!(not_genuine, VerifyOutcome::NotGenuine);
        assert_eq!(not_genuine.label_zh(), "非真实证书");
        assert_eq!(
            VerifyOutcome::decide(None, &cert.verification_code),
            VerifyOutcome::NotGenuine
        );

        let mut cancelled = record;
        cancelled
            .cancel(at("2026-05-01T10:00:00+08:00"), "转移登记")
            .expect("cancel");
        let outcome = VerifyOutcome::decide(Some((&cancelled, &digest)), &cert.verification_code);
        assert_eq!(outcome, VerifyOutcome::Cancelled(cancelled));
        assert_eq!(outcome.label_zh(), "已注销");

        let json = serde_json::to_string(&outcome).expect("json");
        assert!(
            json.starts_with(r#"{"outcome":"cancelled","record":{"#),
            "{json}"
        );
        assert_eq!(
            serde_json::to_string(&VerifyOutcome::NotGenuine).expect("json"),
            r#"{"outcome":"not_genuine"}"#
        );
        assert_eq!(CertificateStatus::Valid.label_zh(), "有效");
    }
}
