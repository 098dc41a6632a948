//! [`ECertificate`]: the e-certificate document, its parts and its consistency rules.
//!
//! The JSON form of the document is what gets signed (see [`crate::signing`] and
//! `docs/e-certificate.md`), so the order of the fields below is part of the format and must
//! never change within format version 1. Every field is always present; optional values are
//! empty strings or empty arrays, never missing keys. Unknown keys are refused.

use chrono::{DateTime, FixedOffset, Timelike};
use ow_domain::{
    CertificateKind, CertificateNumber, IdNumber, PersonName, RegistrationType, RightType, Share,
    UnitCode, Uscc,
};
use serde::{Deserialize, Serialize};

use crate::code::VerificationCode;
use crate::error::CertificateError;
use crate::license_id::LicenseId;

/// The value of the `format` field of a version-1 certificate.
pub const FORMAT: &str = "onewindow-ecert/1";
/// Most rights holders (and, separately, obligors) on one certificate.
pub const MAX_PARTIES: usize = 100;
/// Most predecessor certificates one certificate replaces.
pub const MAX_REPLACES: usize = 50;

/// An e-certificate (电子证照): a 不动产权证书 or a 不动产登记证明 with the full personal data of
/// its holders (this is the holder's own copy; the public view is [`crate::PublicRecord`]).
///
/// Build it field by field, then [`crate::sign`] it; signing runs [`ECertificate::check`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ECertificate {
    /// Always [`FORMAT`] (`onewindow-ecert/1`).
    pub format: String,
    /// 证号: `鲁(2026)青州市不动产权第0000123号`; its kind says certificate or proof.
    pub certificate_number: CertificateNumber,
    /// 证照标识, whose type code must match the kind of the certificate number.
    pub license_id: LicenseId,
    /// 登记机构: the issuing registration centre, e.g. `青州市不动产登记中心`.
    pub issuer: String,
    /// 6-digit administrative code of the issuing district (the tenant), e.g. `370781`.
    pub district_code: String,
    /// 不动产单元号 (28 characters).
    pub unit_code: UnitCode,
    /// 坐落.
    pub location: String,
    /// 权利类型, serialised as `{"code": 4, "name": "国有建设用地使用权/房屋（构筑物）所有权"}`.
    #[serde(with = "coded")]
    pub right_type: RightType,
    /// 权利性质, e.g. `出让/市场化商品房`; empty if not stated.
    pub right_nature: String,
    /// 登记类型, serialised as `{"code": 200, "name": "转移登记"}`.
    #[serde(with = "coded")]
    pub registration_type: RegistrationType,
    /// 用途, e.g. `城镇住宅用地/成套住宅`.
    #[serde(rename = "use")]
    pub usage: String,
    /// 面积 in square metres, as a decimal string, e.g. `89.50`.
    pub area_m2: AreaM2,
    /// 使用期限, e.g. `2010年01月01日起2080年12月31日止`; empty if not stated.
    pub use_term: String,
    /// 权利人, in the order printed.
    pub holders: Vec<Holder>,
    /// 共有情况.
    pub joint_ownership: JointOwnership,
    /// 义务人 (e.g. the mortgagor on a mortgage proof); empty for most rights certificates.
    /// Obligors carry no share.
    pub obligors: Vec<Holder>,
    /// 登簿时间, whole seconds with a numeric UTC offset.
    #[serde(with = "timestamp")]
    pub recorded_at: DateTime<FixedOffset>,
    /// 发证时间, whole seconds with a numeric UTC offset; not before `recorded_at`.
    #[serde(with = "timestamp")]
    pub issued_at: DateTime<FixedOffset>,
    /// 业务号 / application number of the case that produced the certificate.
    pub case_id: String,
    /// 验证码 printed on the certificate and held in its QR code.
    pub verification_code: VerificationCode,
    /// Numbers of the certificates this one cancels and replaces (e.g. the seller's certificate
    /// on a transfer); empty for a first registration.
    pub replaces: Vec<CertificateNumber>,
    /// 附记; may contain line breaks; empty if none.
    pub notes: String,
}

/// A rights holder (权利人) or obligor (义务人) with full personal data.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Holder {
    /// Name of the person or organisation.
    pub name: PersonName,
    /// 证件种类, serialised as `{"code": 1, "name": "身份证"}`.
    pub id_type: IdDocumentType,
    /// 证件号: a resident ID number in canonical form for 身份证, a USCC for an 18-character
    /// 营业执照 number, otherwise 1–64 characters as printed on the document.
    pub id_number: String,
    /// 共有份额 such as `1/2` for 按份共有; `null` otherwise.
    pub share: Option<Share>,
}

impl std::fmt::Debug for Holder {
    /// Personal data and secrets are shown masked or redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Holder")
            .field("name", &self.name)
            .field("id_type", &self.id_type)
            .field(
                "id_number",
                &ow_domain::mask::mask_id_number(&self.id_number),
            )
            .field("share", &self.share)
            .finish_non_exhaustive()
    }
}

impl Holder {
    /// The masked form shown on public pages: `张*三（370781********1234）`.
    pub fn masked(&self) -> String {
        format!(
            "{}（{}）",
            self.name.masked(),
            ow_domain::mask::mask_id_number(&self.id_number)
        )
    }
}

/// 证件种类 (identity document type, domain-facts §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IdDocumentType {
    /// 1 身份证 (resident ID card).
    ResidentId,
    /// 2 港澳台身份证.
    HongKongMacaoTaiwanId,
    /// 3 护照.
    Passport,
    /// 4 户口簿.
    HouseholdRegister,
    /// 5 军官证.
    MilitaryOfficerId,
    /// 6 组织机构代码.
    OrganizationCode,
    /// 7 营业执照.
    BusinessLicence,
    /// 99 其它.
    Other,
}

impl IdDocumentType {
    const TABLE: [(u16, Self, &'static str); 8] = [
        (1, Self::ResidentId, "身份证"),
        (2, Self::HongKongMacaoTaiwanId, "港澳台身份证"),
        (3, Self::Passport, "护照"),
        (4, Self::HouseholdRegister, "户口簿"),
        (5, Self::MilitaryOfficerId, "军官证"),
        (6, Self::OrganizationCode, "组织机构代码"),
        (7, Self::BusinessLicence, "营业执照"),
        (99, Self::Other, "其它"),
    ];

    /// The code: 1–7 or 99.
    pub fn code(self) -> u16 {
        Self::TABLE.iter().find(|e| e.1 == self).map_or(99, |e| e.0)
    }

    /// The type for a code, or `None`.
    pub fn from_code(code: u16) -> Option<Self> {
        Self::TABLE.iter().find(|e| e.0 == code).map(|e| e.1)
    }

    /// Chinese name, e.g. `身份证`.
    pub fn name_zh(self) -> &'static str {
        Self::TABLE
            .iter()
            .find(|e| e.1 == self)
            .map_or("其它", |e| e.2)
    }
}

/// 共有情况 / 共有方式 (domain-facts §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JointOwnership {
    /// 0 单独所有: exactly one holder.
    Sole,
    /// 1 共同共有: two or more holders, no shares.
    Joint,
    /// 2 按份共有: two or more holders whose shares add up to exactly 1.
    InShares,
    /// 3 其它共有: two or more holders; shares optional.
    Other,
}

impl JointOwnership {
    const TABLE: [(u16, Self, &'static str); 4] = [
        (0, Self::Sole, "单独所有"),
        (1, Self::Joint, "共同共有"),
        (2, Self::InShares, "按份共有"),
        (3, Self::Other, "其它共有"),
    ];

    /// The code: 0–3.
    pub fn code(self) -> u16 {
        Self::TABLE.iter().find(|e| e.1 == self).map_or(3, |e| e.0)
    }

    /// The value for a code, or `None`.
    pub fn from_code(code: u16) -> Option<Self> {
        Self::TABLE.iter().find(|e| e.0 == code).map(|e| e.1)
    }

    /// Chinese name, e.g. `按份共有`.
    pub fn name_zh(self) -> &'static str {
        Self::TABLE
            .iter()
            .find(|e| e.1 == self)
            .map_or("其它共有", |e| e.2)
    }
}

/// An area in square metres as a decimal string: 1–10 integer digits without leading zeros
/// (except a single `0`), optionally `.` and 1–4 decimals, e.g. `89.50`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AreaM2(String);

impl AreaM2 {
    /// Parses an area, refusing anything but the canonical decimal form.
    pub fn parse(input: &str) -> Result<Self, CertificateError> {
        let bad = || {
            CertificateError::invalid(
                "area_m2",
                format!(
                    "{input:?} is not an area in square metres; write it as a decimal such as \
                     89.50 (digits, at most 4 decimals, no unit, no leading zeros)"
                ),
            )
        };
        let (whole, fraction) = match input.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (input, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || whole.len() > 10 || (whole.len() > 1 && whole.starts_with('0')) {
            return Err(bad());
        }
        if let Some(fraction) = fraction
            && (!digits(fraction) || fraction.len() > 4)
        {
            return Err(bad());
        }
        Ok(Self(input.to_owned()))
    }

    /// The decimal string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Serialize for AreaM2 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AreaM2 {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl ECertificate {
    /// Rights certificate or registration proof (from the certificate number).
    pub fn kind(&self) -> CertificateKind {
        self.certificate_number.kind()
    }

    /// Checks every rule a field's type cannot express: the format, text fields, the licence
    /// id's type code against the certificate kind, holders against 共有情况 (shares of
    /// 按份共有 add up to exactly 1), ID numbers, time order and the replaced numbers.
    pub fn check(&self) -> Result<(), CertificateError> {
        if self.format != FORMAT {
            return Err(CertificateError::UnknownFormat {
                found: self.format.clone(),
                expected: FORMAT,
            });
        }
        let kind = self.kind();
        if self.license_id.kind() != Some(kind) {
            return Err(CertificateError::invalid(
                "license_id",
                format!(
                    "its type code {} does not belong to a {} (the certificate number is {}); \
                     build the licence id for the certificate's kind",
                    self.license_id.type_code(),
                    kind.name_zh(),
                    self.certificate_number
                ),
            ));
        }
        check_text("issuer", &self.issuer, 100, Required::Yes, Lines::One)?;
        if self.district_code.len() != 6
            || !self.district_code.bytes().all(|b| b.is_ascii_digit())
            || self.district_code.starts_with('0')
        {
            return Err(CertificateError::invalid(
                "district_code",
                format!(
                    "{:?} is not a 6-digit administrative code such as 370781",
                    self.district_code
                ),
            ));
        }
        check_text("location", &self.location, 200, Required::Yes, Lines::One)?;
        check_text(
            "right_nature",
            &self.right_nature,
            100,
            Required::No,
            Lines::One,
        )?;
        check_text("use", &self.usage, 100, Required::Yes, Lines::One)?;
        check_text("use_term", &self.use_term, 100, Required::No, Lines::One)?;
        self.check_holders()?;
        if self.obligors.len() > MAX_PARTIES {
            return Err(CertificateError::invalid(
                "obligors",
                format!("there are more than {MAX_PARTIES} obligors"),
            ));
        }
        for obligor in &self.obligors {
            check_holder("obligors", obligor)?;
            if obligor.share.is_some() {
                return Err(CertificateError::invalid(
                    "obligors",
                    "an obligor has a share; shares belong to rights holders only, set it to null",
                ));
            }
        }
        for (field, at) in [
            ("recorded_at", &self.recorded_at),
            ("issued_at", &self.issued_at),
        ] {
            if at.nanosecond() != 0 {
                return Err(CertificateError::invalid(
                    field,
                    "has fractional seconds; round the time to whole seconds",
                ));
            }
        }
        if self.issued_at < self.recorded_at {
            return Err(CertificateError::invalid(
                "issued_at",
                "is before recorded_at; a certificate is issued after the right is recorded",
            ));
        }
        check_text("case_id", &self.case_id, 64, Required::Yes, Lines::One)?;
        if self.replaces.len() > MAX_REPLACES {
            return Err(CertificateError::invalid(
                "replaces",
                format!("lists more than {MAX_REPLACES} certificates"),
            ));
        }
        for (index, number) in self.replaces.iter().enumerate() {
            if *number == self.certificate_number {
                return Err(CertificateError::invalid(
                    "replaces",
                    "lists the certificate's own number; list only the cancelled predecessors",
                ));
            }
            if self.replaces[..index].contains(number) {
                return Err(CertificateError::invalid(
                    "replaces",
                    format!("lists {number} twice"),
                ));
            }
        }
        check_text("notes", &self.notes, 2000, Required::No, Lines::Many)
    }

    fn check_holders(&self) -> Result<(), CertificateError> {
        let count = self.holders.len();
        if count == 0 || count > MAX_PARTIES {
            return Err(CertificateError::invalid(
                "holders",
                format!("there must be 1 to {MAX_PARTIES} rights holders, not {count}"),
            ));
        }
        for holder in &self.holders {
            check_holder("holders", holder)?;
        }
        let shares: Vec<Share> = self.holders.iter().filter_map(|h| h.share).collect();
        let bad = |reason: String| Err(CertificateError::invalid("holders", reason));
        match self.joint_ownership {
            JointOwnership::Sole => {
                if count != 1 {
                    return bad(format!(
                        "单独所有 needs exactly one holder, but there are {count}; \
                         choose 共同共有 or 按份共有"
                    ));
                }
                if shares.iter().any(|s| *s != Share::WHOLE) {
                    return bad("the sole holder's share must be null or 1/1".into());
                }
            }
            JointOwnership::Joint => {
                if count < 2 {
                    return bad("共同共有 needs at least two holders; choose 单独所有".into());
                }
                if !shares.is_empty() {
                    return bad(
                        "holders of 共同共有 have no shares; set every share to null, or choose \
                         按份共有"
                            .into(),
                    );
                }
            }
            JointOwnership::InShares => {
                if count < 2 {
                    return bad("按份共有 needs at least two holders; choose 单独所有".into());
                }
                if shares.len() != count {
                    return bad("every holder of 按份共有 needs a share such as 1/2".into());
                }
                if !Share::sum_is_one(&shares) {
                    return bad(
                        "the shares of 按份共有 do not add up to exactly 1; correct them".into(),
                    );
                }
            }
            JointOwnership::Other => {
                if count < 2 {
                    return bad("其它共有 needs at least two holders; choose 单独所有".into());
                }
            }
        }
        Ok(())
    }
}

fn check_holder(field: &'static str, holder: &Holder) -> Result<(), CertificateError> {
    let id = holder.id_number.as_str();
    let wrong = |reason: String| Err(CertificateError::invalid(field, reason));
    match holder.id_type {
        IdDocumentType::ResidentId => match IdNumber::parse(id) {
            Ok(parsed) if parsed.as_str() == id => Ok(()),
            Ok(_) => wrong(
                "a resident ID number is not in canonical form (18 characters, upper-case X, \
                 no spaces)"
                    .into(),
            ),
            Err(err) => wrong(format!("a resident ID number is invalid: {err}")),
        },
        IdDocumentType::BusinessLicence if id.chars().count() == 18 => match Uscc::parse(id) {
            Ok(parsed) if parsed.as_str() == id => Ok(()),
            Ok(_) => wrong("a credit code is not in canonical form (upper case, no spaces)".into()),
            Err(err) => wrong(format!("a unified social credit code is invalid: {err}")),
        },
        _ => check_text(field, id, 64, Required::Yes, Lines::One),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Required {
    Yes,
    No,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lines {
    One,
    Many,
}

fn check_text(
    field: &'static str,
    value: &str,
    max_chars: usize,
    required: Required,
    lines: Lines,
) -> Result<(), CertificateError> {
    if required == Required::Yes && value.trim().is_empty() {
        return Err(CertificateError::invalid(field, "is empty; fill it in"));
    }
    if value.trim() != value {
        return Err(CertificateError::invalid(
            field,
            "has spaces or line breaks at the start or end; trim them",
        ));
    }
    let count = value.chars().count();
    if count > max_chars {
        return Err(CertificateError::invalid(
            field,
            format!("has {count} characters; at most {max_chars} are allowed"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !(lines == Lines::Many && c == '\n'))
    {
        let allowed = if lines == Lines::Many {
            "only line breaks (\\n) are allowed"
        } else {
            "write it on one line"
        };
        return Err(CertificateError::invalid(
            field,
            format!("contains a control character; {allowed}"),
        ));
    }
    Ok(())
}

/// Code lists that serialise as `{"code": <number>, "name": "<Chinese name>"}`.
pub(crate) trait CodeList: Copy + Sized {
    /// What the list is, for error messages.
    const WHAT: &'static str;
    fn list_code(self) -> u16;
    fn list_name(self) -> &'static str;
    fn from_list_code(code: u16) -> Option<Self>;
}

impl CodeList for RightType {
    const WHAT: &'static str = "right type (权利类型)";
    fn list_code(self) -> u16 {
        u16::from(self.code())
    }
    fn list_name(self) -> &'static str {
        self.name_zh()
    }
    fn from_list_code(code: u16) -> Option<Self> {
        u8::try_from(code).ok().and_then(Self::from_code)
    }
}

impl CodeList for RegistrationType {
    const WHAT: &'static str = "registration type (登记类型)";
    fn list_code(self) -> u16 {
        self.code()
    }
    fn list_name(self) -> &'static str {
        self.name_zh()
    }
    fn from_list_code(code: u16) -> Option<Self> {
        Self::from_code(code)
    }
}

impl CodeList for IdDocumentType {
    const WHAT: &'static str = "identity document type (证件种类)";
    fn list_code(self) -> u16 {
        self.code()
    }
    fn list_name(self) -> &'static str {
        self.name_zh()
    }
    fn from_list_code(code: u16) -> Option<Self> {
        Self::from_code(code)
    }
}

impl CodeList for JointOwnership {
    const WHAT: &'static str = "joint ownership (共有情况)";
    fn list_code(self) -> u16 {
        self.code()
    }
    fn list_name(self) -> &'static str {
        self.name_zh()
    }
    fn from_list_code(code: u16) -> Option<Self> {
        Self::from_code(code)
    }
}

macro_rules! coded_serde {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                coded::serialize(self, serializer)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                coded::deserialize(deserializer)
            }
        }
    };
}

coded_serde!(IdDocumentType);
coded_serde!(JointOwnership);

/// Serde glue for [`CodeList`] values: `{"code": …, "name": …}`, the name checked against the
/// code on input.
pub(crate) mod coded {
    use serde::{Deserialize, Serialize};

    use super::CodeList;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Repr<'a> {
        code: u16,
        #[serde(borrow)]
        name: std::borrow::Cow<'a, str>,
    }

    pub(crate) fn serialize<T: CodeList, S: serde::Serializer>(
        value: &T,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        Repr {
            code: value.list_code(),
            name: value.list_name().into(),
        }
        .serialize(serializer)
    }

    pub(crate) fn deserialize<'de, T: CodeList, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<T, D::Error> {
        let repr = Repr::deserialize(deserializer)?;
        let value = T::from_list_code(repr.code).ok_or_else(|| {
            serde::de::Error::custom(format!("unknown {} code {}", T::WHAT, repr.code))
        })?;
        if value.list_name() != repr.name {
            return Err(serde::de::Error::custom(format!(
                "{} code {} is named {:?}, not {:?}",
                T::WHAT,
                repr.code,
                value.list_name(),
                repr.name
            )));
        }
        Ok(value)
    }
}

/// Serde glue for timestamps: RFC 3339 with whole seconds and a numeric offset,
/// `2026-03-02T09:30:00+08:00`, and nothing else on input.
pub(crate) mod timestamp {
    use chrono::{DateTime, FixedOffset};
    use serde::Deserialize;

    /// The `chrono` format of a timestamp.
    pub(crate) const FORMAT: &str = "%Y-%m-%dT%H:%M:%S%:z";

    pub(crate) fn to_text(at: &DateTime<FixedOffset>) -> String {
        at.format(FORMAT).to_string()
    }

    pub(crate) fn parse(text: &str) -> Result<DateTime<FixedOffset>, String> {
        let at = DateTime::parse_from_str(text, FORMAT)
            .ok()
            .filter(|at| to_text(at) == text)
            .ok_or_else(|| {
                format!(
                    "{text:?} is not a timestamp of the form 2026-03-02T09:30:00+08:00 \
                     (whole seconds, numeric UTC offset)"
                )
            })?;
        Ok(at)
    }

    pub(crate) fn serialize<S: serde::Serializer>(
        at: &DateTime<FixedOffset>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&to_text(at))
    }

    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<FixedOffset>, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        parse(&text).map_err(serde::de::Error::custom)
    }

    /// The same for `Option`, `null` for `None`.
    pub(crate) mod option {
        use chrono::{DateTime, FixedOffset};
        use serde::Deserialize;

        pub(crate) fn serialize<S: serde::Serializer>(
            at: &Option<DateTime<FixedOffset>>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match at {
                Some(at) => super::serialize(at, serializer),
                None => serializer.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<DateTime<FixedOffset>>, D::Error> {
            let text = Option::<std::borrow::Cow<str>>::deserialize(deserializer)?;
            text.map(|text| super::parse(&text).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{sample, sample_in_shares};

    fn invalid_field(cert: &ECertificate) -> &'static str {
        match cert.check() {
            Err(CertificateError::Invalid { field, .. }) => field,
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }

    #[test]
    fn samples_are_valid() {
        sample().check().expect("sole owner sample");
        sample_in_shares().check().expect("in-shares sample");
        assert_eq!(sample().kind(), CertificateKind::RightsCertificate);
    }

    #[test]
    fn json_round_trip_keeps_field_order() {
        let cert = sample_in_shares();
        let json = serde_json::to_string(&cert).expect("serialise");
        let keys = [
            "format",
            "certificate_number",
            "license_id",
            "issuer",
            "district_code",
            "unit_code",
            "location",
            "right_type",
            "right_nature",
            "registration_type",
            "use",
            "area_m2",
            "use_term",
            "holders",
            "joint_ownership",
            "obligors",
            "recorded_at",
            "issued_at",
            "case_id",
            "verification_code",
            "replaces",
            "notes",
        ];
        let mut last = 0;
        for key in keys {
            let at = json
                .find(&format!("\"{key}\":"))
                .unwrap_or_else(|| panic!("{key} missing"));
            assert!(at >= last, "{key} out of order");
            last = at;
        }
        let back: ECertificate = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, cert);
        assert_eq!(serde_json::to_string(&back).expect("serialise"), json);
        assert!(json.contains(
            r#""right_type":{"code":4,"name":"国有建设用地使用权/房屋（构筑物）所有权"}"#
        ));
        assert!(json.contains(r#""joint_ownership":{"code":2,"name":"按份共有"}"#));
        assert!(json.contains(
            r#""id_type":{"code":1,"name":"身份证"},"id_number":"370781199001012347","share":"1/2""#
        ));
        assert!(json.contains(r#""recorded_at":"2026-03-02T09:30:00+08:00""#));
    }

    #[test]
    fn deserialisation_refuses_unknown_keys_bad_codes_and_names() {
        let json = serde_json::to_string(&sample()).expect("serialise");
        let extra = json.replacen('{', r#"{"extra":1,"#, 1);
        assert!(serde_json::from_str::<ECertificate>(&extra).is_err());
        let missing = json.replace(r#","notes":"""#, "");
        assert!(serde_json::from_str::<ECertificate>(&missing).is_err());
        let bad_code = json.replace(r#"{"code":4,"#, r#"{"code":24,"#);
        let err = serde_json::from_str::<ECertificate>(&bad_code).expect_err("unknown code");
        assert!(err.to_string().contains("unknown right type"), "{err}");
        let bad_name = json.replace("\"name\":\"转移登记\"", "\"name\":\"首次登记\"");
        let err = serde_json::from_str::<ECertificate>(&bad_name).expect_err("wrong name");
        assert!(err.to_string().contains("is named"), "{err}");
        let fractional = json.replace("09:30:00+08:00", "09:30:00.5+08:00");
        assert!(serde_json::from_str::<ECertificate>(&fractional).is_err());
        let zulu = json.replace("2026-03-02T09:30:00+08:00", "2026-03-02T01:30:00Z");
        assert!(serde_json::from_str::<ECertificate>(&zulu).is_err());
        let bad_area = json.replace("\"89.50\"", "\"89.5 m2\"");
        assert!(serde_json::from_str::<ECertificate>(&bad_area).is_err());
    }

    #[test]
    fn areas() {
        for ok in ["0", "0.5", "89.50", "1234567890.1234", "120"] {
            assert_eq!(AreaM2::parse(ok).expect(ok).as_str(), ok);
        }
        for bad in [
            "",
            ".5",
            "5.",
            "089.5",
            "1.23456",
            "12345678901",
            "1,5",
            "-1",
            " 1",
        ] {
            assert!(AreaM2::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ownership_rules() {
        let mut two_sole = sample_in_shares();
        two_sole.joint_ownership = JointOwnership::Sole;
        assert_eq!(invalid_field(&two_sole), "holders");

        let mut joint_with_shares = sample_in_shares();
        joint_with_shares.joint_ownership = JointOwnership::Joint;
        assert_eq!(invalid_field(&joint_with_shares), "holders");
        for holder in &mut joint_with_shares.holders {
            holder.share = None;
        }
        joint_with_shares.check().expect("共同共有 without shares");

        let mut wrong_sum = sample_in_shares();
        wrong_sum.holders[0].share = Some(Share::parse("1/3").expect("share"));
        let err = wrong_sum.check().expect_err("shares add to 5/6");
        assert!(err.to_string().contains("add up to exactly 1"), "{err}");

        let mut missing_share = sample_in_shares();
        missing_share.holders[1].share = None;
        assert_eq!(invalid_field(&missing_share), "holders");

        let mut nobody = sample();
        nobody.holders.clear();
        assert_eq!(invalid_field(&nobody), "holders");

        let mut sole_half = sample();
        sole_half.holders[0].share = Some(Share::parse("1/2").expect("share"));
        assert_eq!(invalid_field(&sole_half), "holders");
        sole_half.holders[0].share = Some(Share::WHOLE);
        sole_half.check().expect("1/1 is fine for the sole holder");
    }

    #[test]
    fn field_rules() {
        let mut c = sample();
        c.license_id =
            LicenseId::new(CertificateKind::RegistrationProof, "370781", 1, 1).expect("valid");
        assert_eq!(invalid_field(&c), "license_id");

        let mut c = sample();
        c.format = "onewindow-ecert/2".into();
        assert!(matches!(
            c.check(),
            Err(CertificateError::UnknownFormat { .. })
        ));

        let mut c = sample();
        c.district_code = "37078".into();
        assert_eq!(invalid_field(&c), "district_code");

        let mut c = sample();
        c.location = " 青州市某路1号".into();
        assert_eq!(invalid_field(&c), "location");

        let mut c = sample();
        c.issuer = "青州市\n不动产登记中心".into();
        assert_eq!(invalid_field(&c), "issuer");

        let mut c = sample();
        c.notes = "第一行\n第二行".into();
        c.check().expect("notes may have line breaks");
        c.notes = "a\u{7}b".into();
        assert_eq!(invalid_field(&c), "notes");
        c.notes = "附".repeat(2001);
        assert_eq!(invalid_field(&c), "notes");

        let mut c = sample();
        c.usage = String::new();
        assert_eq!(invalid_field(&c), "use");

        let mut c = sample();
        c.holders[0].id_number = "370781199001011235".into();
        assert_eq!(invalid_field(&c), "holders");
        c.holders[0].id_number = "11010519491231002x".into();
        assert_eq!(
            invalid_field(&c),
            "holders",
            "lower-case x is not canonical"
        );
        c.holders[0].id_type = IdDocumentType::Passport;
        c.check().expect("a passport number is free text");

        let mut c = sample();
        c.obligors.push(c.holders[0].clone());
        c.check().expect("an obligor without share");
        c.obligors[0].share = Some(Share::WHOLE);
        assert_eq!(invalid_field(&c), "obligors");

        let mut c = sample();
        c.issued_at = c.recorded_at - chrono::Duration::seconds(1);
        assert_eq!(invalid_field(&c), "issued_at");
        c.issued_at = c.recorded_at + chrono::Duration::milliseconds(1500);
        assert_eq!(invalid_field(&c), "issued_at");

        let mut c = sample();
        c.replaces.push(c.certificate_number.clone());
        assert_eq!(invalid_field(&c), "replaces");
        let mut c = sample();
        c.replaces.push(c.replaces[0].clone());
        assert_eq!(invalid_field(&c), "replaces");

        let mut c = sample();
        c.case_id = String::new();
        assert_eq!(invalid_field(&c), "case_id");
    }

    #[test]
    fn code_lists() {
        for code in [1, 2, 3, 4, 5, 6, 7, 99] {
            let t = IdDocumentType::from_code(code).expect("known");
            assert_eq!(t.code(), code);
            assert!(!t.name_zh().is_empty());
        }
        assert_eq!(IdDocumentType::from_code(8), None);
        for code in 0..4 {
            let o = JointOwnership::from_code(code).expect("known");
            assert_eq!(o.code(), code);
        }
        assert_eq!(JointOwnership::InShares.name_zh(), "按份共有");
        assert_eq!(JointOwnership::from_code(4), None);
    }

    #[test]
    fn masked_holder() {
        let holder = &sample_in_shares().holders[1];
        assert_eq!(holder.masked(), "李*四（370781********1266）");
    }
}
