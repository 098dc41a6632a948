//! What the portal does with messages from the extranet ([`PortalImporter`], an
//! `ow_exchange::ImportHandler`). Each import runs inside the exchange's transaction, which
//! also records the bundle and message ids, so it happens exactly once; the handler is also
//! idempotent on its own (timeline rows, certificates and public records are keyed).
//!
//! - `ApplicationStatus` → a timeline row, and the application's current status.
//! - `CertificateIssued` → the signed certificate, verified against the extranet's certificate
//!   key, stored sealed for the applicant's account (and its public record, if none yet).
//! - `CertificateStatus` → the public record `/verify` answers from (a cancellation is final).
//!
//! Content that cannot be accepted (an unknown application, a certificate that does not verify)
//! is `Disposition::Refused` with the reason: recorded, never retried.

use std::sync::Arc;

use ow_certificate::{CertificateTrust, SignedCertificate, code_digest};
use ow_domain::{CaseStatus, CertificateNumber};
use ow_exchange::{
    ApplicationStatus, CertificateIssued, CertificateStatus, Disposition, ExchangeError,
    ImportHandler, InboundMessage, Message,
};
use ow_pii::PiiKeyring;
use sqlx::{Any, Row, Transaction};

use crate::app::{App, INBOUND};
use crate::applications::{insert_timeline, materials_delivered};
use crate::certificates::{CERT_FIELD, cert_ctx};
use crate::error::AppError;
use crate::files::FileStore;

/// The portal's import handler.
#[derive(Debug, Clone)]
pub struct PortalImporter {
    pii: Arc<PiiKeyring>,
    trust: CertificateTrust,
    files: FileStore,
}

fn refused(reason: impl Into<String>) -> Result<Disposition, ExchangeError> {
    let reason = reason.into();
    tracing::warn!(%reason, "message refused");
    Ok(Disposition::Refused { reason })
}

fn handler_err(e: impl std::fmt::Display) -> ExchangeError {
    ExchangeError::Handler(e.to_string())
}

impl PortalImporter {
    /// A handler using the app's keyring and certificate trust.
    pub fn new(app: &App) -> Self {
        PortalImporter {
            pii: app.pii.clone(),
            trust: app.trust.clone(),
            files: app.files.clone(),
        }
    }

    /// A handler from its parts.
    pub fn from_parts(pii: Arc<PiiKeyring>, trust: CertificateTrust, files: FileStore) -> Self {
        PortalImporter { pii, trust, files }
    }

    async fn application(
        tx: &mut Transaction<'static, Any>,
        application_no: &str,
    ) -> Result<Option<(String, String, Option<i64>)>, ExchangeError> {
        let row = sqlx::query(
            "SELECT id, account_id, status_changed_at_ms FROM inet_applications WHERE application_no = $1 AND state = 'submitted'",
        )
        .bind(application_no)
        .fetch_optional(&mut **tx)
        .await?;
        Ok(match row {
            Some(r) => Some((
                r.try_get("id")?,
                r.try_get("account_id")?,
                r.try_get("status_changed_at_ms")?,
            )),
            None => None,
        })
    }

    async fn status(
        &self,
        tx: &mut Transaction<'static, Any>,
        s: &ApplicationStatus,
    ) -> Result<Disposition, ExchangeError> {
        let Some(status) = CaseStatus::from_code(&s.status) else {
            return refused(format!(
                "status {:?} of application {} is not a known status",
                s.status, s.application_no
            ));
        };
        let Some((id, _, changed)) = Self::application(tx, &s.application_no).await? else {
            return refused(format!(
                "application {} was not submitted on this portal",
                s.application_no
            ));
        };
        if s.reason
            .as_deref()
            .is_some_and(|r| r.chars().count() > 2000)
        {
            return refused(format!(
                "the reason for application {} is longer than 2000 characters",
                s.application_no
            ));
        }
        // The back office's receipt of a submission or supplement is a step of its own
        // (登记机构已收到), not a repeat of 已提交.
        let step = if s.received_message_id.is_some() && status == CaseStatus::Submitted {
            crate::applications::RECEIVED
        } else {
            status.code()
        };
        insert_timeline(
            tx,
            &self.pii,
            &id,
            step,
            s.reason.as_deref(),
            &s.requested_materials,
            s.changed_at_ms,
        )
        .await
        .map_err(handler_err)?;
        if changed.is_none_or(|c| s.changed_at_ms >= c) {
            let requested = if s.requested_materials.is_empty() {
                None
            } else {
                Some(serde_json::to_string(&s.requested_materials).map_err(handler_err)?)
            };
            sqlx::query(
                "UPDATE inet_applications SET status = $1, status_reason = $2, requested_materials = $3, \
                 status_changed_at_ms = $4 WHERE id = $5",
            )
            .bind(status.code())
            .bind(crate::applications::seal_status_reason(
                &self.pii,
                &id,
                s.reason.as_deref(),
            ))
            .bind(requested)
            .bind(s.changed_at_ms)
            .bind(&id)
            .execute(&mut **tx)
            .await?;
        }
        if let Some(message_id) = &s.received_message_id {
            // The back office has the submission: the portal keeps materials only until then.
            let delivered = materials_delivered(tx, message_id, ow_store::now_ms()).await?;
            if !delivered.is_empty() {
                let count = delivered.len();
                self.files.remove(delivered).await.map_err(handler_err)?;
                tracing::info!(application = %s.application_no, materials = count,
                    "materials received by the back office; the portal's copies removed");
            }
        }
        tracing::info!(application = %s.application_no, status = status.code(), "status imported");
        Ok(Disposition::Imported)
    }

    async fn issued(
        &self,
        tx: &mut Transaction<'static, Any>,
        msg: &InboundMessage,
        c: &CertificateIssued,
    ) -> Result<Disposition, ExchangeError> {
        let Some((app_id, account_id, _)) = Self::application(tx, &c.application_no).await? else {
            return refused(format!(
                "certificate {} is for application {}, which was not submitted on this portal",
                c.certificate_number, c.application_no
            ));
        };
        let Some(file) = msg.file(&c.item) else {
            return refused(format!(
                "the bundle has no item {:?} with the certificate",
                c.item
            ));
        };
        let bytes = file.read_async().await?;
        let signed = match SignedCertificate::from_json(&bytes) {
            Ok(s) => s,
            Err(e) => return refused(format!("the certificate file is not valid: {e}")),
        };
        let cert = match signed.verify(&self.trust) {
            Ok(cert) => cert,
            Err(e) => {
                return refused(format!(
                    "certificate {} does not verify against the extranet's certificate key: {e}",
                    c.certificate_number
                ));
            }
        };
        if cert.certificate_number.as_str() != c.certificate_number {
            return refused(format!(
                "the message names certificate {} but the file holds {}",
                c.certificate_number, cert.certificate_number
            ));
        }
        let id = ow_store::new_id();
        let sealed = self.pii.seal(CERT_FIELD, &cert_ctx(&id), &bytes).to_text();
        let issued_ms = cert.issued_at.timestamp_millis();
        sqlx::query(
            "INSERT INTO inet_certificates (id, account_id, application_id, certificate_number, signed_sealed, issued_at_ms, received_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (certificate_number) DO NOTHING",
        )
        .bind(&id)
        .bind(&account_id)
        .bind(&app_id)
        .bind(cert.certificate_number.as_str())
        .bind(sealed)
        .bind(issued_ms)
        .bind(ow_store::now_ms())
        .execute(&mut **tx)
        .await?;
        let holders: Vec<String> = cert.holders.iter().map(|h| h.masked()).collect();
        sqlx::query(
            "INSERT INTO inet_public_certificates (certificate_number, status, code_digest, holders_masked, unit_code, location, \
             issued_at_ms, cancelled_at_ms, cancelled_reason, application_no, updated_at_ms) \
             VALUES ($1, 'valid', $2, $3, $4, $5, $6, NULL, NULL, $7, $8) ON CONFLICT (certificate_number) DO NOTHING",
        )
        .bind(cert.certificate_number.as_str())
        .bind(code_digest(&cert.certificate_number, &cert.verification_code))
        .bind(serde_json::to_string(&holders).map_err(handler_err)?)
        .bind(cert.unit_code.as_str())
        .bind(&cert.location)
        .bind(issued_ms)
        .bind(&c.application_no)
        .bind(ow_store::now_ms())
        .execute(&mut **tx)
        .await?;
        tracing::info!(application = %c.application_no, "certificate imported");
        Ok(Disposition::Imported)
    }

    async fn cert_status(
        &self,
        tx: &mut Transaction<'static, Any>,
        c: &CertificateStatus,
    ) -> Result<Disposition, ExchangeError> {
        let Ok(number) = CertificateNumber::parse(&c.certificate_number) else {
            return refused(format!(
                "{:?} is not a certificate number",
                c.certificate_number
            ));
        };
        if c.status != "valid" && c.status != "cancelled" {
            return refused(format!(
                "certificate status {:?} is neither valid nor cancelled",
                c.status
            ));
        }
        if c.code_digest.len() != 64 || !c.code_digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return refused("the code digest is not 64 hex digits");
        }
        if c.holders_masked.iter().any(|h| looks_unmasked(h)) {
            return refused("the holders of a public record must be masked");
        }
        sqlx::query(
            "INSERT INTO inet_public_certificates (certificate_number, status, code_digest, holders_masked, unit_code, location, \
             issued_at_ms, cancelled_at_ms, cancelled_reason, application_no, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (certificate_number) DO UPDATE SET status = excluded.status, code_digest = excluded.code_digest, \
             holders_masked = excluded.holders_masked, unit_code = excluded.unit_code, location = excluded.location, \
             issued_at_ms = excluded.issued_at_ms, cancelled_at_ms = excluded.cancelled_at_ms, \
             cancelled_reason = excluded.cancelled_reason, \
             application_no = COALESCE(excluded.application_no, inet_public_certificates.application_no), \
             updated_at_ms = excluded.updated_at_ms \
             WHERE NOT (inet_public_certificates.status = 'cancelled' AND excluded.status = 'valid')",
        )
        .bind(number.as_str())
        .bind(&c.status)
        .bind(c.code_digest.to_ascii_lowercase())
        .bind(serde_json::to_string(&c.holders_masked).map_err(handler_err)?)
        .bind(&c.unit_code)
        .bind(&c.location)
        .bind(c.issued_at_ms)
        .bind(c.cancelled_at_ms)
        .bind(c.cancelled_reason.as_deref())
        .bind(c.application_no.as_deref())
        .bind(ow_store::now_ms())
        .execute(&mut **tx)
        .await?;
        tracing::info!(status = %c.status, "certificate status imported");
        Ok(Disposition::Imported)
    }
}

/// A run of 15 or more digits is an ID number in clear.
fn looks_unmasked(s: &str) -> bool {
    let mut run = 0;
    for c in s.chars() {
        if c.is_ascii_digit() {
            run += 1;
            if run >= 15 {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

impl ImportHandler for PortalImporter {
    async fn import(
        &self,
        tx: &mut Transaction<'static, Any>,
        msg: &InboundMessage,
    ) -> Result<Disposition, ExchangeError> {
        if msg.channel != INBOUND {
            return refused(format!(
                "the portal imports only from {}, not {}",
                INBOUND, msg.channel
            ));
        }
        match &msg.envelope.message {
            Message::ApplicationStatus(s) => self.status(tx, s).await,
            Message::CertificateIssued(c) => self.issued(tx, msg, c).await,
            Message::CertificateStatus(c) => self.cert_status(tx, c).await,
            other => refused(format!(
                "the portal does not accept {} messages",
                other.kind()
            )),
        }
    }
}

impl From<AppError> for ExchangeError {
    fn from(e: AppError) -> Self {
        ExchangeError::Handler(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmasked_ids_are_spotted() {
        assert!(!looks_unmasked("张*三（370781********1234）"));
        assert!(looks_unmasked("张小三（370781199001012347）"));
    }
}
