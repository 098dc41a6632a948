//! 不动产权证书号 / 不动产登记证明号: rights certificate and registration proof numbers
//! (domain-facts §3.2 \[V\]).
//!
//! Canonical form: `{省简称}({年度}){市县名称}不动产权第{7位顺序号}号`, for proofs
//! `…不动产证明第…号`, e.g. `鲁(2026)青州市不动产权第0000123号`.
//!
//! The parser is lenient with what legacy data contains and the display is strict:
//!
//! - full-width brackets `（）` are accepted and displayed as ASCII `()`;
//! - the sequence may have 5 to 8 digits and is displayed padded to 7 (an 8-digit sequence keeps
//!   its 8 digits); deployments that use "last 2 digits of the region code + 5 digits" produce 7
//!   digits and need nothing special;
//! - the city/county part is 1–20 CJK characters, which also admits Shanghai's legacy
//!   district style `沪(2019)浦字不动产权第012345号` (county `浦字`).
//!
//! Refused: a province abbreviation outside the 34 province-level ones, a year outside
//! 1990–2100, full-width digits, a sequence of 0 or of fewer than 5 / more than 8 digits (the
//! 3-digit numbers found in some legacy data are refused too).
//!
//! [`CertificateNumber::new`] builds a number for issuing and only accepts sequences up to
//! 9 999 999, so it always prints exactly 7 digits.

use std::fmt;
use std::str::FromStr;

use crate::text::{is_cjk, is_full_width, serde_via_str};

/// The 34 province-level abbreviations (省级行政区简称).
pub const PROVINCE_ABBREVIATIONS: [char; 34] = [
    '京', '津', '沪', '渝', '冀', '豫', '云', '辽', '黑', '湘', '皖', '鲁', '新', '苏', '浙', '赣',
    '鄂', '桂', '甘', '晋', '蒙', '陕', '吉', '闽', '贵', '粤', '青', '藏', '川', '宁', '琼', '港',
    '澳', '台',
];

/// Earliest year accepted in a certificate number.
pub const MIN_YEAR: u16 = 1990;
/// Latest year accepted in a certificate number.
pub const MAX_YEAR: u16 = 2100;
/// Largest sequence [`CertificateNumber::new`] accepts (7 digits).
pub const MAX_NEW_SEQUENCE: u32 = 9_999_999;
/// Longest city/county name, in characters.
pub const MAX_COUNTY_CHARS: usize = 20;

/// Why a string or set of fields is not a valid certificate or proof number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateNumberError {
    /// Nothing was entered.
    #[error(
        "the certificate number is empty; enter it as printed, e.g. 鲁(2026)青州市不动产权第0000123号"
    )]
    Empty,
    /// Full-width digits or letters (full-width brackets are fine).
    #[error(
        "the certificate number contains full-width digits or letters; \
         switch the input method to half-width and enter it again"
    )]
    FullWidth,
    /// The overall shape is wrong.
    #[error(
        "the certificate number does not have the form 省(年度)市县不动产权第0000123号 \
         (or 不动产证明第…号 for a proof); enter it exactly as printed"
    )]
    Malformed,
    /// The first character is not one of the 34 province-level abbreviations.
    #[error(
        "'{found}' is not a province-level abbreviation; the number must start with one of \
         京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼港澳台"
    )]
    UnknownProvince {
        /// The character found.
        found: char,
    },
    /// The year is not 4 digits in 1990–2100.
    #[error("the year in brackets must be 4 digits from {MIN_YEAR} to {MAX_YEAR}")]
    InvalidYear,
    /// The city/county part is empty, too long or not Chinese characters.
    #[error(
        "the city or county name after the year must be 1 to {MAX_COUNTY_CHARS} Chinese \
         characters, e.g. 青州市"
    )]
    InvalidCounty,
    /// Neither `不动产权第` nor `不动产证明第` follows the county.
    #[error("after the city or county name the number must read 不动产权第 or 不动产证明第")]
    UnknownKind,
    /// The sequence is not 5–8 digits, or is zero.
    #[error("the number between 第 and 号 must have 5 to 8 digits and must not be zero")]
    InvalidSequence,
    /// A sequence passed to [`CertificateNumber::new`] is 0 or above 9 999 999.
    #[error("sequence {sequence} is out of range; a new number takes 1 to {MAX_NEW_SEQUENCE}")]
    SequenceOutOfRange {
        /// The sequence given.
        sequence: u32,
    },
}

impl CertificateNumberError {
    /// A short Chinese message for the applicant on the portal.
    pub fn message_zh(&self) -> String {
        match self {
            Self::Empty => "请输入不动产权证书号或登记证明号".into(),
            Self::FullWidth => "证书号含有全角数字或字母，请切换到半角输入后重新输入".into(),
            Self::Malformed => {
                "证书号格式不正确，应形如“鲁(2026)青州市不动产权第0000123号”，请按证书所载填写"
                    .into()
            }
            Self::UnknownProvince { found } => {
                format!("“{found}”不是省级行政区简称，请核对证书号后重新输入")
            }
            Self::InvalidYear => format!("证书号中的年度应为{MIN_YEAR}至{MAX_YEAR}年的四位数字"),
            Self::InvalidCounty => "证书号中的市县名称不正确，请核对后重新输入".into(),
            Self::UnknownKind => "证书号中应包含“不动产权第”或“不动产证明第”".into(),
            Self::InvalidSequence => "证书号中的顺序号应为5至8位数字，请核对后重新输入".into(),
            Self::SequenceOutOfRange { .. } => {
                format!("证书顺序号应在1至{MAX_NEW_SEQUENCE}之间")
            }
        }
    }
}

/// Whether the number belongs to a rights certificate or a registration proof.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum CertificateKind {
    /// 不动产权证书 (ownership and use rights); number reads `不动产权第…号`.
    RightsCertificate,
    /// 不动产登记证明 (mortgages, pre-notices, objections …); number reads `不动产证明第…号`.
    RegistrationProof,
}

impl CertificateKind {
    /// The segment used inside the number: `不动产权` or `不动产证明`.
    pub fn segment(self) -> &'static str {
        match self {
            Self::RightsCertificate => "不动产权",
            Self::RegistrationProof => "不动产证明",
        }
    }

    /// Chinese name of the document: `不动产权证书` or `不动产登记证明`.
    pub fn name_zh(self) -> &'static str {
        match self {
            Self::RightsCertificate => "不动产权证书",
            Self::RegistrationProof => "不动产登记证明",
        }
    }
}

/// A valid certificate or proof number, held as fields and displayed in canonical form.
/// Construct it with [`CertificateNumber::parse`] (lenient), [`CertificateNumber::new`] (for
/// issuing), `str::parse` or serde.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CertificateNumber {
    canonical: String,
    province: char,
    year: u16,
    county: String,
    kind: CertificateKind,
    sequence: u32,
}

impl CertificateNumber {
    /// Builds a number from its fields, validating each, with the sequence padded to 7 digits.
    pub fn new(
        province: char,
        year: u16,
        county: &str,
        kind: CertificateKind,
        sequence: u32,
    ) -> Result<Self, CertificateNumberError> {
        if sequence == 0 || sequence > MAX_NEW_SEQUENCE {
            return Err(CertificateNumberError::SequenceOutOfRange { sequence });
        }
        Self::from_fields(province, year, county, kind, sequence)
    }

    /// Parses a number leniently (see the module documentation): spaces around it are trimmed,
    /// `（）` become `()`, the sequence may have 5–8 digits.
    pub fn parse(input: &str) -> Result<Self, CertificateNumberError> {
        use CertificateNumberError as E;
        let s = input.trim();
        if s.is_empty() {
            return Err(E::Empty);
        }
        if s.chars()
            .any(|c| is_full_width(c) && c != '（' && c != '）')
        {
            return Err(E::FullWidth);
        }
        let chars: Vec<char> = s.chars().collect();
        if chars.len() < 7 {
            return Err(E::Malformed);
        }
        let province = chars[0];
        if !is_cjk(province) {
            return Err(E::Malformed);
        }
        if !PROVINCE_ABBREVIATIONS.contains(&province) {
            return Err(E::UnknownProvince { found: province });
        }
        if !matches!(chars[1], '(' | '（') || !matches!(chars[6], ')' | '）') {
            return Err(E::Malformed);
        }
        if !chars[2..6].iter().all(char::is_ascii_digit) {
            return Err(E::InvalidYear);
        }
        let year: u16 = chars[2..6]
            .iter()
            .collect::<String>()
            .parse()
            .map_err(|_| E::InvalidYear)?;
        let rest: String = chars[7..].iter().collect();
        let Some(body) = rest.strip_suffix('号') else {
            return Err(E::Malformed);
        };
        let Some(at) = body.find("不动产") else {
            return Err(E::UnknownKind);
        };
        let county = &body[..at];
        let after = &body[at + "不动产".len()..];
        let (kind, digits) = if let Some(d) = after.strip_prefix("权第") {
            (CertificateKind::RightsCertificate, d)
        } else if let Some(d) = after.strip_prefix("证明第") {
            (CertificateKind::RegistrationProof, d)
        } else {
            return Err(E::UnknownKind);
        };
        if !(5..=8).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(E::InvalidSequence);
        }
        let sequence: u32 = digits.parse().map_err(|_| E::InvalidSequence)?;
        if sequence == 0 {
            return Err(E::InvalidSequence);
        }
        Self::from_fields(province, year, county, kind, sequence)
    }

    fn from_fields(
        province: char,
        year: u16,
        county: &str,
        kind: CertificateKind,
        sequence: u32,
    ) -> Result<Self, CertificateNumberError> {
        if !PROVINCE_ABBREVIATIONS.contains(&province) {
            return Err(CertificateNumberError::UnknownProvince { found: province });
        }
        if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
            return Err(CertificateNumberError::InvalidYear);
        }
        let n = county.chars().count();
        if n == 0 || n > MAX_COUNTY_CHARS || !county.chars().all(is_cjk) {
            return Err(CertificateNumberError::InvalidCounty);
        }
        let canonical = format!(
            "{province}({year}){county}{}第{sequence:07}号",
            kind.segment()
        );
        Ok(Self {
            canonical,
            province,
            year,
            county: county.to_owned(),
            kind,
            sequence,
        })
    }

    /// The canonical form, e.g. `鲁(2026)青州市不动产权第0000123号`.
    pub fn as_str(&self) -> &str {
        &self.canonical
    }

    /// The province-level abbreviation, e.g. `鲁`.
    pub fn province(&self) -> char {
        self.province
    }

    /// The year, e.g. 2026.
    pub fn year(&self) -> u16 {
        self.year
    }

    /// The city or county name, e.g. `青州市`.
    pub fn county(&self) -> &str {
        &self.county
    }

    /// Rights certificate or registration proof.
    pub fn kind(&self) -> CertificateKind {
        self.kind
    }

    /// The sequence number, e.g. 123.
    pub fn sequence(&self) -> u32 {
        self.sequence
    }
}

impl FromStr for CertificateNumber {
    type Err = CertificateNumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for CertificateNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical)
    }
}

serde_via_str!(
    CertificateNumber,
    "a certificate number such as 鲁(2026)青州市不动产权第0000123号"
);

#[cfg(test)]
mod tests {
    use super::*;
    use CertificateKind::{RegistrationProof, RightsCertificate};
    use CertificateNumberError as E;

    #[test]
    fn canonical_number() {
        let c = CertificateNumber::parse("鲁(2026)青州市不动产权第0000123号").expect("valid");
        assert_eq!(c.province(), '鲁');
        assert_eq!(c.year(), 2026);
        assert_eq!(c.county(), "青州市");
        assert_eq!(c.kind(), RightsCertificate);
        assert_eq!(c.sequence(), 123);
        assert_eq!(c.to_string(), "鲁(2026)青州市不动产权第0000123号");
        assert_eq!(c.kind().name_zh(), "不动产权证书");
    }

    #[test]
    fn full_width_brackets_are_normalised() {
        let c = CertificateNumber::parse(" 苏（2019）徐州市不动产权第0020128号 ").expect("valid");
        assert_eq!(c.as_str(), "苏(2019)徐州市不动产权第0020128号");
        let mixed =
            CertificateNumber::parse("京（2020)朝阳区不动产证明第0001234号").expect("valid");
        assert_eq!(mixed.as_str(), "京(2020)朝阳区不动产证明第0001234号");
        assert_eq!(mixed.kind(), RegistrationProof);
        assert_eq!(mixed.kind().name_zh(), "不动产登记证明");
    }

    #[test]
    fn legacy_sequences_and_shanghai_style() {
        let five = CertificateNumber::parse("浙(2016)杭州市不动产权第00123号").expect("5 digits");
        assert_eq!(five.sequence(), 123);
        assert_eq!(five.as_str(), "浙(2016)杭州市不动产权第0000123号");
        let eight = CertificateNumber::parse("粤(2018)广州市不动产权第12345678号").expect("8");
        assert_eq!(eight.as_str(), "粤(2018)广州市不动产权第12345678号");
        let sh = CertificateNumber::parse("沪(2019)浦字不动产权第012345号").expect("Shanghai");
        assert_eq!(sh.county(), "浦字");
        assert_eq!(sh.as_str(), "沪(2019)浦字不动产权第0012345号");
    }

    #[test]
    fn refusals() {
        let p = CertificateNumber::parse;
        assert_eq!(p("  "), Err(E::Empty));
        assert_eq!(p("鲁(２026)青州市不动产权第0000123号"), Err(E::FullWidth));
        assert_eq!(p("鲁(2026)青州市不动产权第０000123号"), Err(E::FullWidth));
        assert_eq!(p("X(2026)青州市不动产权第0000123号"), Err(E::Malformed));
        assert_eq!(
            p("中(2026)青州市不动产权第0000123号"),
            Err(E::UnknownProvince { found: '中' })
        );
        assert_eq!(p("鲁[2026]青州市不动产权第0000123号"), Err(E::Malformed));
        assert_eq!(p("鲁(20266)青州市不动产权第0000123号"), Err(E::Malformed));
        assert_eq!(p("鲁(1989)青州市不动产权第0000123号"), Err(E::InvalidYear));
        assert_eq!(p("鲁(2101)青州市不动产权第0000123号"), Err(E::InvalidYear));
        assert_eq!(p("鲁(20a6)青州市不动产权第0000123号"), Err(E::InvalidYear));
        assert_eq!(p("鲁(2026)不动产权第0000123号"), Err(E::InvalidCounty));
        assert_eq!(
            p("鲁(2026)Qingzhou不动产权第0000123号"),
            Err(E::InvalidCounty)
        );
        assert_eq!(
            p("鲁(2026)青州市 不动产权第0000123号"),
            Err(E::InvalidCounty)
        );
        let long = "青".repeat(21);
        assert_eq!(
            p(&format!("鲁(2026){long}不动产权第0000123号")),
            Err(E::InvalidCounty)
        );
        assert_eq!(p("鲁(2026)青州市房产权第0000123号"), Err(E::UnknownKind));
        assert_eq!(p("鲁(2026)青州市不动产第0000123号"), Err(E::UnknownKind));
        assert_eq!(p("鲁(2026)青州市不动产权第0000123"), Err(E::Malformed));
        assert_eq!(p("鲁(2026)青州市不动产权第0123号"), Err(E::InvalidSequence));
        assert_eq!(
            p("鲁(2026)青州市不动产权第123456789号"),
            Err(E::InvalidSequence)
        );
        assert_eq!(
            p("鲁(2026)青州市不动产权第00000号"),
            Err(E::InvalidSequence)
        );
        assert_eq!(
            p("鲁(2026)青州市不动产权第00-123号"),
            Err(E::InvalidSequence)
        );
    }

    #[test]
    fn all_provinces_are_accepted() {
        assert_eq!(PROVINCE_ABBREVIATIONS.len(), 34);
        for p in PROVINCE_ABBREVIATIONS {
            let s = format!("{p}(2026)某市不动产权第0000001号");
            assert_eq!(CertificateNumber::parse(&s).map(|c| c.to_string()), Ok(s));
        }
    }

    #[test]
    fn constructor_pads_to_seven_digits() {
        let c =
            CertificateNumber::new('鲁', 2026, "青州市", RightsCertificate, 123).expect("valid");
        assert_eq!(c.as_str(), "鲁(2026)青州市不动产权第0000123号");
        let c = CertificateNumber::new('苏', 2019, "徐州市", RegistrationProof, 9_999_999)
            .expect("max");
        assert_eq!(c.as_str(), "苏(2019)徐州市不动产证明第9999999号");
        assert_eq!(CertificateNumber::parse(c.as_str()), Ok(c));
        let new = CertificateNumber::new;
        assert_eq!(
            new('鲁', 2026, "青州市", RightsCertificate, 10_000_000),
            Err(E::SequenceOutOfRange {
                sequence: 10_000_000
            })
        );
        assert_eq!(
            new('鲁', 2026, "青州市", RightsCertificate, 0),
            Err(E::SequenceOutOfRange { sequence: 0 })
        );
        assert_eq!(
            new('A', 2026, "青州市", RightsCertificate, 1),
            Err(E::UnknownProvince { found: 'A' })
        );
        assert_eq!(
            new('鲁', 1989, "青州市", RightsCertificate, 1),
            Err(E::InvalidYear)
        );
        assert_eq!(
            new('鲁', 2026, "", RightsCertificate, 1),
            Err(E::InvalidCounty)
        );
        assert_eq!(
            new('鲁', 2026, "青州(市)", RightsCertificate, 1),
            Err(E::InvalidCounty)
        );
    }

    #[test]
    fn serde_round_trip_and_refusal() {
        let c = CertificateNumber::parse("鲁（2026）青州市不动产权第0000123号").expect("valid");
        let json = serde_json::to_string(&c).expect("serialize");
        assert_eq!(json, "\"鲁(2026)青州市不动产权第0000123号\"");
        assert_eq!(
            serde_json::from_str::<CertificateNumber>(&json).expect("deserialize"),
            c
        );
        assert!(
            serde_json::from_str::<CertificateNumber>("\"鲁(2026)青州市不动产权第12号\"").is_err()
        );
        assert_eq!(
            serde_json::to_string(&CertificateKind::RegistrationProof).expect("kind"),
            "\"registration_proof\""
        );
    }

    #[test]
    fn chinese_messages_are_non_empty() {
        for e in [
            E::Empty,
            E::FullWidth,
            E::Malformed,
            E::UnknownProvince { found: '中' },
            E::InvalidYear,
            E::InvalidCounty,
            E::UnknownKind,
            E::InvalidSequence,
            E::SequenceOutOfRange { sequence: 0 },
        ] {
            assert!(!e.message_zh().is_empty());
            assert!(!e.to_string().is_empty());
        }
    }
}
