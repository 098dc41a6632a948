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

/// Most files (materials, a certificate) one message may carry besides `message.json`. A portal
/// caps the materials of one application (and of one supplement) at this number, at upload and
/// at submit; a receiver refuses a bundle with more items before decompressing anything.
pub const MAX_FILES_PER_MESSAGE: usize = 50;

/// Largest single file one message may carry.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// Largest total of the files of one message (what one bundle may hold besides `message.json`).
pub const MAX_FILES_TOTAL_BYTES: u64 = 256 << 20;

/// The limits a receiver verifies a bundle of this contract with: header, item count and
/// decompressed size are checked against them before anything is decompressed.
pub fn bundle_limits() -> ow_bundle::Limits {
    let max_message = MAX_MESSAGE_BYTES as u64;
    ow_bundle::Limits {
        max_items: (MAX_FILES_PER_MESSAGE + 1) as u64,
        max_plain_bytes: MAX_FILES_TOTAL_BYTES + max_message,
        // Compressed and encrypted data is at most a little larger than the plain data.
        max_payload_bytes: (MAX_FILES_TOTAL_BYTES + max_message)
            + (MAX_FILES_TOTAL_BYTES >> 6)
            + (1 << 20),
        ..ow_bundle::Limits::default()
    }
}

/// Whether `id` can be a case id (an application number) across zones: the bundle header's
/// `case_id` rules, 1–64 of ASCII letters, digits, `.`, `_`, `-`, not starting with `.` or `-`.
pub fn is_valid_case_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !id.starts_with(['.', '-'])
}

/// A control character that no text field of a message may hold: every C0 control except
/// tab, line feed and carriage return (a form's line breaks), DEL, and every C1 control.
/// PostgreSQL refuses U+0000 in text outright; the others have no place in a registration.
pub fn is_forbidden_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

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
    /// extranet → intranet (one-way gateway, or offline media when confidential): a survey
    /// package (权籍调查成果) of a first registration, to be checked by the cadastral zone.
    SurveyPackage(SurveyPackage),
    /// extranet → intranet: entries of the register log (登簿日志) that keep the intranet's
    /// register mirror current, in sequence per district.
    RegisterLog(RegisterLog),
    /// intranet → extranet (offline media only): the review of a survey package.
    SurveyReview(SurveyReview),
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
            Message::SurveyPackage(_) => "survey-package",
            Message::RegisterLog(_) => "register-log",
            Message::SurveyReview(_) => "survey-review",
        }
    }

    /// Every kind, for a channel's allowed-kinds policy.
    pub const KINDS: [&'static str; 8] = [
        "application-submitted",
        "supplement-submitted",
        "application-status",
        "certificate-issued",
        "certificate-status",
        "survey-package",
        "register-log",
        "survey-review",
    ];

    /// The kinds that may travel on `channel` (the channel's kind policy): applications and
    /// supplements go from the internet to the extranet; status and certificates come back.
    /// Any other channel carries none of these messages.
    pub fn kinds_on(channel: &ow_bundle::Channel) -> &'static [&'static str] {
        use ow_bundle::Zone;
        match (channel.from, channel.to) {
            (Zone::Internet, Zone::Extranet) => &["application-submitted", "supplement-submitted"],
            (Zone::Extranet, Zone::Internet) => &[
                "application-status",
                "certificate-issued",
                "certificate-status",
            ],
            (Zone::Extranet, Zone::Intranet) => &["survey-package", "register-log"],
            (Zone::Intranet, Zone::Extranet) => &["survey-review"],
            _ => &[],
        }
    }

    /// How the message must travel: by the channel's gateway, or only on offline media (a
    /// confidential survey package — classified, or too large to leave the counter — never
    /// touches a gateway). The packer writes a [`Route::Media`] message into the channel's
    /// media outbox and sets it aside rather than use the gateway when there is none.
    pub fn route(&self) -> Route {
        match self {
            Message::SurveyPackage(p) if p.confidential => Route::Media,
            _ => Route::Gateway,
        }
    }

    /// Checks what the contract requires beyond its JSON shape, so a message that would be
    /// refused (or would stop a channel) is refused where it is made: the application number
    /// is a valid case id, no text field holds a control character, and the materials are
    /// within [`MAX_FILES_PER_MESSAGE`], [`MAX_FILE_BYTES`] and [`MAX_FILES_TOTAL_BYTES`].
    /// Senders call it in `enqueue`; receivers refuse a message that fails it.
    pub fn check(&self) -> Result<(), ContractViolation> {
        if let Some(no) = self.application_no()
            && !is_valid_case_id(no)
        {
            return Err(ContractViolation::CaseId);
        }
        let value = serde_json::to_value(self).map_err(|_| ContractViolation::Encoding)?;
        if let Some(field) = control_character_in(&value, "") {
            return Err(ContractViolation::ControlCharacter { field });
        }
        let materials: &[MaterialRef] = match self {
            Message::ApplicationSubmitted(m) => &m.materials,
            Message::SupplementSubmitted(m) => &m.materials,
            Message::SurveyPackage(m) => std::slice::from_ref(&m.survey),
            _ => &[],
        };
        if let Message::SurveyPackage(m) = self
            && let Some(report) = &m.report
        {
            // The report counts against the same limits as the survey file.
            if report.size > MAX_FILE_BYTES {
                return Err(ContractViolation::FileTooLarge { size: report.size });
            }
            if report.size.saturating_add(m.survey.size) > MAX_FILES_TOTAL_BYTES {
                return Err(ContractViolation::TooLarge {
                    total: report.size.saturating_add(m.survey.size),
                });
            }
        }
        if materials.len() > MAX_FILES_PER_MESSAGE {
            return Err(ContractViolation::TooManyFiles {
                count: materials.len(),
            });
        }
        let mut total: u64 = 0;
        for m in materials {
            if m.size > MAX_FILE_BYTES {
                return Err(ContractViolation::FileTooLarge { size: m.size });
            }
            total = total.saturating_add(m.size);
        }
        if total > MAX_FILES_TOTAL_BYTES {
            return Err(ContractViolation::TooLarge { total });
        }
        Ok(())
    }

    /// The application the message is about, when it is about one (the bundle's `case_id`).
    pub fn application_no(&self) -> Option<&str> {
        match self {
            Message::ApplicationSubmitted(m) => Some(&m.application_no),
            Message::SupplementSubmitted(m) => Some(&m.application_no),
            Message::ApplicationStatus(m) => Some(&m.application_no),
            Message::CertificateIssued(m) => Some(&m.application_no),
            Message::CertificateStatus(m) => m.application_no.as_deref(),
            Message::SurveyPackage(m) => Some(&m.application_no),
            Message::RegisterLog(_) => None,
            Message::SurveyReview(m) => Some(&m.application_no),
        }
    }
}

/// How a message travels on its channel ([`Message::route`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// Through the channel's gateway (the ferry agent's outbox).
    Gateway,
    /// Only on offline media (the channel's media outbox, exported onto discs).
    Media,
}

impl Route {
    /// The stored name: `gateway` or `media`.
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Gateway => "gateway",
            Route::Media => "media",
        }
    }

    /// The route for a stored name; anything unknown is `None`.
    pub fn parse(text: &str) -> Option<Route> {
        match text {
            "gateway" => Some(Route::Gateway),
            "media" => Some(Route::Media),
            _ => None,
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

/// A survey package of a first registration (首次登记), sent to the cadastral zone for its
/// checks and a surveyor's review. The survey file and the survey report are bundle items; the
/// intranet parses and checks the file itself and trusts nothing the portal concluded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurveyPackage {
    /// The application (the case id across zones).
    pub application_no: String,
    /// The district (tenant) of the case: 6-digit county code.
    pub district_code: String,
    /// This package's id (UUID v7): a case may send a corrected package after a rejection, and
    /// the review names the package it answers.
    pub package_id: String,
    /// The survey file: `boundary-txt` (界址点坐标 TXT, `docs/survey-format.md`) or `geojson`.
    pub format: String,
    /// The survey file as a bundle item. `checklist_code` is `survey_package`; `media_type` is
    /// `text/plain` or `application/geo+json`.
    pub survey: MaterialRef,
    /// The survey report (PDF) as a bundle item, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<MaterialRef>,
    /// Marked classified (涉密) or too large for a gateway: this package came on offline media.
    #[serde(default)]
    pub confidential: bool,
    /// When the back office sent it, Unix milliseconds.
    pub sent_at_ms: i64,
}

/// One entry of the register log: what 登簿 changed about a unit. No personal data: the
/// intranet's register mirror needs the state of units, not who holds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterLogEntry {
    /// Position in the district's register log, from 1, without gaps.
    pub seq: u64,
    /// The unit code (28 characters).
    pub unit_code: String,
    /// 登记类型 code (domain facts §3.3): `100` 首次, `200` 转移, `400` 注销 …
    pub registration_type: String,
    /// 权利类型 code, e.g. `4` 国有建设用地使用权/房屋所有权.
    pub right_type: String,
    /// The certificate issued or cancelled by this entry, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_number: Option<String>,
    /// The unit's state after this entry: `current` (现势) or `cancelled` (注销/历史).
    pub state: String,
    /// The registered area in square metres, two decimals (`5000.00`), when the entry sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area_m2: Option<String>,
    /// The application that caused it, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_no: Option<String>,
    /// When it was recorded (登簿), Unix milliseconds.
    pub recorded_at_ms: i64,
}

/// A run of consecutive register-log entries of one district.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterLog {
    /// The district: 6-digit county code.
    pub district_code: String,
    /// Entries in ascending `seq`, consecutive.
    pub entries: Vec<RegisterLogEntry>,
}

/// A finding of the survey checks or of the surveyor, as the citizen and the registrar see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewFinding {
    /// Stable code (`overlap-existing`, `area-mismatch` …; `docs/survey-format.md`).
    pub code: String,
    /// `error` or `warning`.
    pub severity: String,
    /// The parcel (地块编号) it concerns, when it concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parcel: Option<String>,
    /// The boundary point (J3) or segment (J3–J4) it concerns, when it concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<String>,
    /// What is wrong, in plain words.
    pub message: String,
    /// What to do about it.
    #[serde(default)]
    pub advice: String,
}

/// A reviewed parcel of an approved package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewedParcel {
    /// The parcel number in the survey (地块编号).
    pub number: String,
    /// The unit code the surveyor assigned (28 characters, GB/T 37346).
    pub unit_code: String,
    /// The area computed from the checked geometry, square metres with two decimals.
    pub area_m2: String,
}

/// The cadastral zone's answer to a survey package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurveyReview {
    /// The application.
    pub application_no: String,
    /// The package answered ([`SurveyPackage::package_id`]).
    pub package_id: String,
    /// `approved` or `rejected`.
    pub outcome: String,
    /// For an approved package: each parcel with its unit code and area.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parcels: Vec<ReviewedParcel>,
    /// The findings (for a rejection, at least one, or a `reason`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<ReviewFinding>,
    /// The surveyor's own words, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the surveyor decided, Unix milliseconds.
    pub reviewed_at_ms: i64,
}

/// Why a message breaks the contract ([`Message::check`]). The texts name no content, only the
/// field, so they can be logged and shown to operators.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractViolation {
    /// The application number cannot be a case id.
    #[error(
        "the application number is not a valid case id (1 to 64 of A-Z a-z 0-9 . _ -, not starting with . or -)"
    )]
    CaseId,
    /// A text field holds a control character.
    #[error(
        "field {field} holds a control character (U+0000 to U+001F other than tab and line breaks, or U+007F to U+009F)"
    )]
    ControlCharacter {
        /// The JSON path of the field, e.g. `note`.
        field: String,
    },
    /// More files than one message may carry.
    #[error(
        "the message carries {count} files, more than the {MAX_FILES_PER_MESSAGE} one message may hold"
    )]
    TooManyFiles {
        /// How many.
        count: usize,
    },
    /// One file is larger than a message may carry.
    #[error(
        "a file of {size} bytes is larger than the {MAX_FILE_BYTES} bytes one message may carry"
    )]
    FileTooLarge {
        /// Its size.
        size: u64,
    },
    /// The files together are larger than a message may carry.
    #[error(
        "the files add up to {total} bytes, more than the {MAX_FILES_TOTAL_BYTES} bytes one message may carry"
    )]
    TooLarge {
        /// Their total size.
        total: u64,
    },
    /// The message cannot be encoded as JSON.
    #[error("the message cannot be encoded as JSON")]
    Encoding,
}

impl ContractViolation {
    /// A short machine code for logs and dead-letter records.
    pub fn code(&self) -> &'static str {
        match self {
            ContractViolation::CaseId => "case-id-invalid",
            ContractViolation::ControlCharacter { .. } => "control-character",
            ContractViolation::TooManyFiles { .. } => "too-many-files",
            ContractViolation::FileTooLarge { .. } | ContractViolation::TooLarge { .. } => {
                "too-large"
            }
            ContractViolation::Encoding => "bad-message",
        }
    }
}

/// The JSON path of the first string (or object key) in `value` holding a forbidden control
/// character.
fn control_character_in(value: &serde_json::Value, path: &str) -> Option<String> {
    let bad = |s: &str| s.chars().any(is_forbidden_control);
    match value {
        serde_json::Value::String(s) => bad(s).then(|| path.to_owned()),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| control_character_in(v, &format!("{path}[{i}]"))),
        serde_json::Value::Object(map) => map.iter().find_map(|(k, v)| {
            let here = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            if bad(k) {
                Some(here)
            } else {
                control_character_in(v, &here)
            }
        }),
        _ => None,
    }
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
        // The parser's own message may quote the content (a name, an ID number): say only what
        // kind of error it is and where.
        let envelope: Envelope =
            serde_json::from_slice(bytes).map_err(|e| crate::ExchangeError::BadMessage {
                reason: format!(
                    "message.json is not a valid message ({:?} error at line {}, column {})",
                    e.classify(),
                    e.line(),
                    e.column()
                ),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn supplement(no: &str, note: &str, files: usize, size: u64) -> Message {
        Message::SupplementSubmitted(SupplementSubmitted {
            application_no: no.into(),
            note: note.into(),
            materials: (0..files)
                .map(|i| MaterialRef {
                    item: format!("m{i}.pdf"),
                    checklist_code: "tax_receipt".into(),
                    file_name: "完税凭证.pdf".into(),
                    media_type: "application/pdf".into(),
                    size,
                    blake3: "0".repeat(64),
                })
                .collect(),
            submitted_at_ms: 1,
        })
    }

    #[test]
    fn the_contract_refuses_what_would_stop_a_channel() {
        assert_eq!(
            supplement("SQ20260302000001", "已补充\r\n\t完税凭证", 2, 10).check(),
            Ok(())
        );
        for bad in ["", "SQ 1", "../x", ".x", "-x", "申请1", &"A".repeat(65)] {
            assert_eq!(
                supplement(bad, "", 0, 0).check(),
                Err(ContractViolation::CaseId),
                "{bad:?}"
            );
        }
        for note in ["a\u{0}b", "\u{1b}[2J", "\u{7f}", "\u{85}"] {
            assert_eq!(
                supplement("SQ1", note, 0, 0).check(),
                Err(ContractViolation::ControlCharacter {
                    field: "note".into()
                }),
                "{note:?}"
            );
        }
        assert!(matches!(
            supplement("SQ1", "", MAX_FILES_PER_MESSAGE + 1, 1).check(),
            Err(ContractViolation::TooManyFiles { .. })
        ));
        assert!(matches!(
            supplement("SQ1", "", 1, MAX_FILE_BYTES + 1).check(),
            Err(ContractViolation::FileTooLarge { .. })
        ));
        assert!(matches!(
            supplement("SQ1", "", 5, MAX_FILE_BYTES).check(),
            Err(ContractViolation::TooLarge { .. })
        ));
        let mut status = Message::ApplicationStatus(ApplicationStatus {
            application_no: "SQ1".into(),
            status: "accepted".into(),
            reason: None,
            requested_materials: vec!["tax\u{0}".into()],
            changed_at_ms: 1,
            received_message_id: None,
        });
        assert_eq!(
            status.check(),
            Err(ContractViolation::ControlCharacter {
                field: "requested_materials[0]".into()
            })
        );
        if let Message::ApplicationStatus(s) = &mut status {
            s.requested_materials.clear();
        }
        assert_eq!(status.check(), Ok(()));
    }

    fn survey_package(survey_size: u64, report_size: Option<u64>) -> Message {
        let file = |item: &str, media_type: &str, size: u64| MaterialRef {
            item: item.into(),
            checklist_code: "survey_package".into(),
            file_name: item.into(),
            media_type: media_type.into(),
            size,
            blake3: "0".repeat(64),
        };
        Message::SurveyPackage(SurveyPackage {
            application_no: "SQ20261203000001".into(),
            district_code: "370781".into(),
            package_id: "0190f0f0-0000-7000-8000-000000000001".into(),
            format: "boundary-txt".into(),
            survey: file("survey.txt", "text/plain", survey_size),
            report: report_size.map(|size| file("report.pdf", "application/pdf", size)),
            confidential: false,
            sent_at_ms: 1,
        })
    }

    #[test]
    fn survey_messages_travel_only_between_extranet_and_intranet() {
        use ow_bundle::{Channel, Zone};
        let to_intranet = Channel {
            from: Zone::Extranet,
            to: Zone::Intranet,
        };
        let back = Channel {
            from: Zone::Intranet,
            to: Zone::Extranet,
        };
        let portal = Channel {
            from: Zone::Extranet,
            to: Zone::Internet,
        };
        let package = survey_package(10, Some(10));
        assert_eq!(package.check(), Ok(()));
        assert!(Message::kinds_on(&to_intranet).contains(&package.kind()));
        assert!(!Message::kinds_on(&portal).contains(&package.kind()));
        assert!(!Message::kinds_on(&back).contains(&package.kind()));
        assert_eq!(Message::kinds_on(&back), &["survey-review"]);
        assert!(Message::KINDS.contains(&"register-log"));
        // The report counts against the same limits as the survey file.
        assert!(matches!(
            survey_package(10, Some(MAX_FILE_BYTES + 1)).check(),
            Err(ContractViolation::FileTooLarge { .. })
        ));
        assert!(matches!(
            survey_package(MAX_FILE_BYTES + 1, None).check(),
            Err(ContractViolation::FileTooLarge { .. })
        ));
        let log = Message::RegisterLog(RegisterLog {
            district_code: "370781".into(),
            entries: vec![RegisterLogEntry {
                seq: 1,
                unit_code: "370781001001GB00001F00010001".into(),
                registration_type: "100".into(),
                right_type: "4".into(),
                certificate_number: None,
                state: "current\u{7}".into(),
                area_m2: Some("5000.00".into()),
                application_no: None,
                recorded_at_ms: 1,
            }],
        });
        assert_eq!(log.application_no(), None);
        assert_eq!(
            log.check(),
            Err(ContractViolation::ControlCharacter {
                field: "entries[0].state".into()
            })
        );
    }

    #[test]
    fn parse_errors_do_not_quote_the_content() {
        let json = br#"{"format":"onewindow-message/1","message_id":"x","created_at_ms":1,
            "message":{"type":"application-status","application_no":12345678901234567}}"#;
        let err = Envelope::from_json(json).unwrap_err().to_string();
        assert!(!err.contains("12345678901234567"), "{err}");
    }
}
