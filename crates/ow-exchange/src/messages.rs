//! The messages zones send each other, one per bundle, as the bundle item `message.json`.
//!
//! Every message travels in an [`Envelope`] that names the format version and carries a
//! `message_id`. Delivery is at least once (a packer that crashes after writing a bundle but
//! before marking it packed writes it again, under a new bundle id), so receivers import by
//! `message_id` exactly once. The full format is specified in `docs/exchange-messages.md`.
//!
//! Personal data (names, ID numbers, phone numbers) is in clear inside these messages: bundles
//! on these channels are always encrypted to the receiving zone, and each zone seals what it
//! stores.

use serde::{Deserialize, Serialize};

/// The envelope format this crate writes and reads.
pub const ENVELOPE_FORMAT: &str = "onewindow-message/1";

/// The bundle item that holds the envelope.
pub const MESSAGE_ITEM: &str = "message.json";

/// Largest `message.json` a receiver accepts (materials travel as separate items).
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// One message with its id and format version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Always [`ENVELOPE_FORMAT`].
    pub format: String,
    /// Unique per message (UUID v7); receivers import each id once.
    pub message_id: String,
    /// When the sending zone created it, Unix milliseconds.
    pub created_at_ms: i64,
    /// The message.
    pub message: Message,
}

/// What is being said. The variant decides the bundle kind ([`Message::kind`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Message {
    /// internet → extranet: a citizen submitted an application.
    ApplicationSubmitted(ApplicationSubmitted),
    /// internet → extranet: a citizen sent supplement (补正) materials.
    SupplementSubmitted(SupplementSubmitted),
    /// extranet → internet: an application moved to a new status.
    ApplicationStatus(ApplicationStatus),
    /// extranet → internet: an e-certificate was issued for an application.
    CertificateIssued(CertificateIssued),
    /// extranet → internet: the public verification record of a certificate (valid or
    /// cancelled), for `/verify`.
    CertificateStatus(CertificateStatus),
}

impl Message {
    /// The bundle kind for this message (the bundle header's `kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            Message::ApplicationSubmitted(_) => "application-submitted",
            Message::SupplementSubmitted(_) => "supplement-submitted",
            Message::ApplicationStatus(_) => "application-status",
            Message::CertificateIssued(_) => "certificate-issued",
            Message::CertificateStatus(_) => "certificate-status",
        }
    }

    /// Every kind, for a channel's allowed-kinds policy.
    pub const KINDS: [&'static str; 5] = [
        "application-submitted",
        "supplement-submitted",
        "application-status",
        "certificate-issued",
        "certificate-status",
    ];

    /// The application the message is about, when it is about one (the bundle's `case_id`).
    pub fn application_no(&self) -> Option<&str> {
        match self {
            Message::ApplicationSubmitted(m) => Some(&m.application_no),
            Message::SupplementSubmitted(m) => Some(&m.application_no),
            Message::ApplicationStatus(m) => Some(&m.application_no),
            Message::CertificateIssued(m) => Some(&m.application_no),
            Message::CertificateStatus(m) => m.application_no.as_deref(),
        }
    }
}

/// A person or organisation on an application (seller = 义务人, buyer = 权利人).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Party {
    /// Full name.
    pub name: String,
    /// 证件种类 code (1 = 身份证, 7 = 营业执照, …; domain facts §3.3).
    pub id_type: String,
    /// The document number (an 18-character ID number for 身份证).
    pub id_number: String,
    /// Phone, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Share as a fraction, `1/2`; a sole owner has `1/1`.
    pub share: String,
}

impl std::fmt::Debug for Party {
    /// Personal data and secrets are shown masked or redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Party")
            .field("name", &"<redacted>")
            .field("id_type", &self.id_type)
            .field("id_number", &"<redacted>")
            .field("phone", &self.phone.as_ref().map(|_| "<redacted>"))
            .field("share", &self.share)
            .finish_non_exhaustive()
    }
}

/// A material (收件材料) carried as a bundle item.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaterialRef {
    /// The item name inside the bundle (a plain file name, e.g. `m01.pdf`).
    pub item: String,
    /// The checklist entry it answers (`ow_domain` material code).
    pub checklist_code: String,
    /// The file name the citizen uploaded, made safe for display.
    pub file_name: String,
    /// `application/pdf`, `image/jpeg` or `image/png`, as sniffed from the bytes.
    pub media_type: String,
    /// Size in bytes.
    pub size: u64,
    /// BLAKE3 of the bytes, lowercase hex (the bundle checks it again).
    pub blake3: String,
}

impl std::fmt::Debug for MaterialRef {
    /// Personal data and secrets are shown masked or redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaterialRef")
            .field("item", &self.item)
            .field("checklist_code", &self.checklist_code)
            .field("media_type", &self.media_type)
            .field("size", &self.size)
            .field("blake3", &self.blake3)
            .finish_non_exhaustive()
    }
}

/// A submitted application (二手房转移登记 and later business types).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationSubmitted {
    /// The application number shown to the citizen; the case id across zones.
    pub application_no: String,
    /// The district (tenant) that handles it: 6-digit county code.
    pub district_code: String,
    /// National business code (`ow_domain::BusinessType::code`).
    pub business_type: String,
    /// The unit, by unit code (28 characters), when the citizen gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_code: Option<String>,
    /// The unit, by its current certificate number, when the citizen gave that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_number: Option<String>,
    /// Current rights holders transferring (义务人).
    pub sellers: Vec<Party>,
    /// New rights holders (权利人).
    pub buyers: Vec<Party>,
    /// Declared price in fen (分).
    pub price_fen: i64,
    /// The materials, each a bundle item.
    pub materials: Vec<MaterialRef>,
    /// An opaque reference to the portal account that applied (never a name or ID number).
    pub applicant_ref: String,
    /// When the citizen pressed submit, Unix milliseconds.
    pub submitted_at_ms: i64,
}

/// Supplement materials for an application the registrar asked to complete (补正).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupplementSubmitted {
    /// The application.
    pub application_no: String,
    /// The citizen's note to the registrar.
    #[serde(default)]
    pub note: String,
    /// The materials, each a bundle item.
    pub materials: Vec<MaterialRef>,
    /// When, Unix milliseconds.
    pub submitted_at_ms: i64,
}

impl std::fmt::Debug for SupplementSubmitted {
    /// Personal data and secrets are shown masked or redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupplementSubmitted")
            .field("application_no", &self.application_no)
            .field("materials", &self.materials)
            .field("submitted_at_ms", &self.submitted_at_ms)
            .finish_non_exhaustive()
    }
}

/// A status change of an application, for the citizen's timeline.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationStatus {
    /// The application.
    pub application_no: String,
    /// The new status (`ow_domain::CaseStatus::code`).
    pub status: String,
    /// The registrar's reason (不予受理 / 补正 / 不予登记), in Chinese, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For a supplement request: the checklist codes asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requested_materials: Vec<String>,
    /// When the status changed, Unix milliseconds.
    pub changed_at_ms: i64,
    /// The message (`Envelope::message_id`) whose import this status answers, if it answers
    /// one: the back office received that submission or supplement, so the portal need no
    /// longer keep its materials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_message_id: Option<String>,
}

impl std::fmt::Debug for ApplicationStatus {
    /// Personal data and secrets are shown masked or redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplicationStatus")
            .field("application_no", &self.application_no)
            .field("status", &self.status)
            .field("requested_materials", &self.requested_materials)
            .field("changed_at_ms", &self.changed_at_ms)
            .field("received_message_id", &self.received_message_id)
            .finish_non_exhaustive()
    }
}

/// An e-certificate issued for an application. The signed certificate is the bundle item
/// named by `item` (`ow_certificate::SignedCertificate` JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateIssued {
    /// The application it results from.
    pub application_no: String,
    /// Its number, 鲁(2026)青州市不动产权第0000123号.
    pub certificate_number: String,
    /// The item holding the signed certificate JSON.
    pub item: String,
}

/// The public verification record of one certificate: what `/verify` may show anyone.
/// Personal data is masked here; the verification code travels only as its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateStatus {
    /// The certificate number.
    pub certificate_number: String,
    /// `valid` or `cancelled`.
    pub status: String,
    /// `ow_certificate::code_digest` of the number and its verification code.
    pub code_digest: String,
    /// Holders, masked (张*三 370781********1234).
    pub holders_masked: Vec<String>,
    /// The unit code.
    pub unit_code: String,
    /// 坐落.
    pub location: String,
    /// When it was issued, Unix milliseconds.
    pub issued_at_ms: i64,
    /// When it was cancelled, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_at_ms: Option<i64>,
    /// Why it was cancelled (e.g. 因转移登记注销, with the new certificate's application).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_reason: Option<String>,
    /// The application that issued or cancelled it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_no: Option<String>,
}

impl Envelope {
    /// Wraps `message` with a fresh id.
    pub fn new(message: Message, created_at_ms: i64) -> Self {
        Envelope {
            format: ENVELOPE_FORMAT.to_string(),
            message_id: uuid::Uuid::now_v7().to_string(),
            created_at_ms,
            message,
        }
    }

    /// Parses and checks the envelope of a received `message.json`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, crate::ExchangeError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(crate::ExchangeError::BadMessage {
                reason: format!(
                    "message.json is {} bytes, more than the {} allowed",
                    bytes.len(),
                    MAX_MESSAGE_BYTES
                ),
            });
        }
        let envelope: Envelope =
            serde_json::from_slice(bytes).map_err(|e| crate::ExchangeError::BadMessage {
                reason: format!("message.json is not a valid message: {e}"),
            })?;
        if envelope.format != ENVELOPE_FORMAT {
            return Err(crate::ExchangeError::BadMessage {
                reason: format!(
                    "message format {:?} is not supported (this zone reads {ENVELOPE_FORMAT})",
                    envelope.format
                ),
            });
        }
        Ok(envelope)
    }
}

#[cfg(test)]
mod debug_tests {
    use super::*;

    #[test]
    fn debug_shows_no_name_number_phone_file_name_note_or_reason() {
        let (name, id, phone) = ("欧阳明月", "370781199001012345", "13800138000");
        let material = MaterialRef {
            item: "m01.pdf".into(),
            checklist_code: "applicant_identity".into(),
            file_name: format!("{name}身份证.pdf"),
            media_type: "application/pdf".into(),
            size: 1,
            blake3: String::new(),
        };
        let shown = [
            format!(
                "{:?}",
                Party {
                    name: name.into(),
                    id_type: "1".into(),
                    id_number: id.into(),
                    phone: Some(phone.into()),
                    share: "1/1".into(),
                }
            ),
            format!(
                "{:?}",
                SupplementSubmitted {
                    application_no: "SQ1".into(),
                    note: format!("{name} {phone}"),
                    materials: vec![material],
                    submitted_at_ms: 0,
                }
            ),
            format!(
                "{:?}",
                ApplicationStatus {
                    application_no: "SQ1".into(),
                    status: "refused".into(),
                    reason: Some(format!("{name} {id}")),
                    requested_materials: vec![],
                    changed_at_ms: 0,
                    received_message_id: None,
                }
            ),
        ];
        for text in &shown {
            for clear in [name, id, phone] {
                assert!(!text.contains(clear), "{clear} shown in {text}");
            }
        }
    }
}
