//! Business types offered on the portal ([`BusinessType`]) and their material checklists
//! ([`Material`]).
//!
//! Codes are the 7-digit national reporting business codes (`RecType`, domain-facts §3.3 \[V\]):
//! normally the DJLX code followed by a 4-digit category. Mortgages are the exception: the
//! reporting code `9000101` starts with 9, but a first mortgage registration is a 首次登记
//! (DJLX 100) of the 抵押权 in the register, so [`BusinessType::registration_type`] returns
//! [`RegistrationType::First`] for it.
//!
//! The material checklists are a built-in default drawn from the implementing rules
//! (不动产登记暂行条例实施细则) and common practice, not from a verified source. Checklists vary by
//! city and are published with the catalogue from the extranet, so treat them as configurable
//! data: a later version will load them from configuration and these lists will become the
//! fallback.

use std::fmt;

use crate::codes::RegistrationType;

/// One item of a material checklist (收件材料).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Material {
    /// Stable English snake-case code, e.g. `sale_contract`.
    pub code: &'static str,
    /// Chinese name shown to the applicant, e.g. `房屋买卖合同`.
    pub name_zh: &'static str,
    /// Whether the application cannot be submitted without it.
    pub required: bool,
}

const fn req(code: &'static str, name_zh: &'static str) -> Material {
    Material {
        code,
        name_zh,
        required: true,
    }
}

const fn opt(code: &'static str, name_zh: &'static str) -> Material {
    Material {
        code,
        name_zh,
        required: false,
    }
}

const APPLICATION_FORM: Material = req("application_form", "不动产登记申请书");
const APPLICANT_IDENTITY: Material = req("applicant_identity", "申请人身份证明");
const TITLE_CERTIFICATE: Material = req("title_certificate", "不动产权属证书");
const POWER_OF_ATTORNEY: Material = opt("power_of_attorney", "授权委托书及受托人身份证明");

const TRANSFER_SECOND_HAND: [Material; 7] = [
    APPLICATION_FORM,
    APPLICANT_IDENTITY,
    TITLE_CERTIFICATE,
    req("sale_contract", "房屋买卖合同"),
    req("tax_receipt", "完税凭证"),
    opt("marital_status", "婚姻状况证明"),
    POWER_OF_ATTORNEY,
];

const MORTGAGE_FIRST: [Material; 6] = [
    APPLICATION_FORM,
    APPLICANT_IDENTITY,
    TITLE_CERTIFICATE,
    req("principal_debt_contract", "主债权合同"),
    req("mortgage_contract", "抵押合同"),
    POWER_OF_ATTORNEY,
];

const SEIZURE: [Material; 3] = [
    req(
        "assistance_notice",
        "人民法院等嘱托机关送达的协助执行通知书",
    ),
    req("seizure_ruling", "查封裁定书等生效法律文书"),
    req("officer_credentials", "执行公务人员的工作证和执行公务证"),
];

const PRE_NOTICE: [Material; 5] = [
    APPLICATION_FORM,
    APPLICANT_IDENTITY,
    req("presale_contract", "已备案的商品房预售合同"),
    opt("pre_notice_agreement", "当事人关于预告登记的约定"),
    POWER_OF_ATTORNEY,
];

const OBJECTION: [Material; 5] = [
    APPLICATION_FORM,
    APPLICANT_IDENTITY,
    req(
        "interest_evidence",
        "证实对登记的不动产权利有利害关系的材料",
    ),
    req("error_evidence", "证实不动产登记簿记载的事项错误的材料"),
    POWER_OF_ATTORNEY,
];

const FIRST_REGISTRATION: [Material; 6] = [
    APPLICATION_FORM,
    APPLICANT_IDENTITY,
    req("land_source", "土地权属来源材料（出让合同或划拨决定书等）"),
    req(
        "cadastral_survey",
        "不动产权籍调查表、宗地图及宗地界址点坐标",
    ),
    req("land_fee_receipts", "土地出让价款、土地税费等缴纳凭证"),
    POWER_OF_ATTORNEY,
];

/// A business the portal accepts applications for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BusinessType {
    /// 1000301 建设用地使用权、宅基地使用权首次登记.
    FirstRegistration,
    /// 2000402 二手房转移登记 (房地产权（独幢、层、套、间）转移).
    TransferSecondHand,
    /// 9000101 抵押权首次登记.
    MortgageFirst,
    /// 8000101 查封登记 (on a court's or other authority's request).
    Seizure,
    /// 7000101 预告登记.
    PreNotice,
    /// 6000101 异议登记.
    Objection,
}

impl BusinessType {
    /// Every business type.
    pub const ALL: [Self; 6] = [
        Self::FirstRegistration,
        Self::TransferSecondHand,
        Self::MortgageFirst,
        Self::Seizure,
        Self::PreNotice,
        Self::Objection,
    ];

    /// The 7-digit national reporting business code, e.g. `2000402`.
    pub fn code(self) -> &'static str {
        match self {
            Self::FirstRegistration => "1000301",
            Self::TransferSecondHand => "2000402",
            Self::MortgageFirst => "9000101",
            Self::Seizure => "8000101",
            Self::PreNotice => "7000101",
            Self::Objection => "6000101",
        }
    }

    /// The business type for a 7-digit code, or `None` for a code not offered.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.code() == code)
    }

    /// Chinese name shown on the portal.
    pub fn name_zh(self) -> &'static str {
        match self {
            Self::FirstRegistration => "建设用地使用权、宅基地使用权首次登记",
            Self::TransferSecondHand => "二手房转移登记",
            Self::MortgageFirst => "抵押权首次登记",
            Self::Seizure => "查封登记",
            Self::PreNotice => "预告登记",
            Self::Objection => "异议登记",
        }
    }

    /// The registration type (DJLX) recorded for this business (see the module documentation
    /// for why mortgages are [`RegistrationType::First`]).
    pub fn registration_type(self) -> RegistrationType {
        match self {
            Self::FirstRegistration | Self::MortgageFirst => RegistrationType::First,
            Self::TransferSecondHand => RegistrationType::Transfer,
            Self::Seizure => RegistrationType::Seizure,
            Self::PreNotice => RegistrationType::PreNotice,
            Self::Objection => RegistrationType::Objection,
        }
    }

    /// Whether the business ends with a certificate or registration proof (缮证, 发证).
    /// A seizure (查封) is recorded on a court's request and issues neither.
    pub fn issues_certificate(self) -> bool {
        !matches!(self, Self::Seizure)
    }

    /// Whether the unit must be surveyed and the survey checked by the cadastral zone before
    /// the case can be reviewed (首次登记: its parcel or building is new to the register).
    pub fn needs_survey(self) -> bool {
        matches!(self, Self::FirstRegistration)
    }

    /// The default material checklist (configurable data later; see the module documentation).
    pub fn required_materials(self) -> &'static [Material] {
        match self {
            Self::FirstRegistration => &FIRST_REGISTRATION,
            Self::TransferSecondHand => &TRANSFER_SECOND_HAND,
            Self::MortgageFirst => &MORTGAGE_FIRST,
            Self::Seizure => &SEIZURE,
            Self::PreNotice => &PRE_NOTICE,
            Self::Objection => &OBJECTION,
        }
    }
}

impl fmt::Display for BusinessType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name_zh())
    }
}

impl serde::Serialize for BusinessType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> serde::Deserialize<'de> for BusinessType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
        Self::from_code(&code)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown business type code {code:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_and_registration_types() {
        let expected = [
            (
                BusinessType::TransferSecondHand,
                "2000402",
                RegistrationType::Transfer,
            ),
            (
                BusinessType::MortgageFirst,
                "9000101",
                RegistrationType::First,
            ),
            (BusinessType::Seizure, "8000101", RegistrationType::Seizure),
            (
                BusinessType::PreNotice,
                "7000101",
                RegistrationType::PreNotice,
            ),
            (
                BusinessType::Objection,
                "6000101",
                RegistrationType::Objection,
            ),
            (
                BusinessType::FirstRegistration,
                "1000301",
                RegistrationType::First,
            ),
        ];
        for (b, code, reg) in expected {
            assert_eq!(b.code(), code);
            assert_eq!(b.registration_type(), reg);
            assert_eq!(BusinessType::from_code(code), Some(b));
            assert!(!b.name_zh().is_empty());
        }
        assert_eq!(BusinessType::from_code("2000401"), None);
    }

    #[test]
    fn codes_follow_djlx_except_mortgage() {
        for b in BusinessType::ALL {
            let djlx = b.registration_type().code().to_string();
            if b == BusinessType::MortgageFirst {
                continue;
            }
            assert!(b.code().starts_with(&djlx[..1]), "{b:?}");
            assert_eq!(b.code().len(), 7);
        }
    }

    #[test]
    fn second_hand_transfer_checklist() {
        let m = BusinessType::TransferSecondHand.required_materials();
        let required: Vec<&str> = m.iter().filter(|m| m.required).map(|m| m.name_zh).collect();
        assert_eq!(
            required,
            [
                "不动产登记申请书",
                "申请人身份证明",
                "不动产权属证书",
                "房屋买卖合同",
                "完税凭证"
            ]
        );
        assert!(m.iter().any(|m| m.name_zh == "婚姻状况证明" && !m.required));
    }

    #[test]
    fn checklists_are_well_formed() {
        for b in BusinessType::ALL {
            let m = b.required_materials();
            assert!(
                m.iter().any(|m| m.required),
                "{b:?} has a required material"
            );
            let codes: HashSet<&str> = m.iter().map(|m| m.code).collect();
            assert_eq!(codes.len(), m.len(), "{b:?} material codes are unique");
            for item in m {
                assert!(!item.name_zh.is_empty());
                assert!(
                    item.code
                        .bytes()
                        .all(|c| c.is_ascii_lowercase() || c == b'_')
                );
            }
        }
    }

    #[test]
    fn serde_uses_codes() {
        let json = serde_json::to_string(&BusinessType::TransferSecondHand).expect("ser");
        assert_eq!(json, "\"2000402\"");
        assert_eq!(
            serde_json::from_str::<BusinessType>(&json).expect("de"),
            BusinessType::TransferSecondHand
        );
        assert!(serde_json::from_str::<BusinessType>("\"1234567\"").is_err());
        let m = serde_json::to_value(BusinessType::Seizure.required_materials()).expect("ser");
        assert_eq!(m[0]["code"], "assistance_notice");
        assert_eq!(m[0]["required"], true);
    }
}
