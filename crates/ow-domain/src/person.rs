//! Personal data of applicants and rights holders: [`PhoneNumber`] (mainland mobile number) and
//! [`PersonName`].
//!
//! Both are personal data, like [`crate::IdNumber`]: they have no `Display`, their `Debug` shows
//! the masked form, and the clear value is reached only through `as_str()` (and serde).
//! Masking rules: phone `138****5678` (first 3, last 4); name `*` / `张*` / `张*三` / `欧**明`
//! (see [`crate::mask::mask_name`]).

use std::fmt;
use std::str::FromStr;

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use crate::mask;
use crate::text::{is_full_width, serde_via_str};

/// Longest name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// Why a string is not a valid mainland mobile number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PhoneNumberError {
    /// Nothing was entered.
    #[error("the mobile number is empty; enter an 11-digit mainland mobile number")]
    Empty,
    /// Full-width digits were entered.
    #[error(
        "the mobile number contains full-width digits; \
         switch the input method to half-width and enter it again"
    )]
    FullWidth,
    /// Something other than digits, spaces, `-` or a leading `+86`.
    #[error(
        "the mobile number may contain only digits (spaces, '-' and a leading +86 are ignored)"
    )]
    InvalidChar,
    /// Not 11 digits.
    #[error("the mobile number has {len} digits but must have 11")]
    WrongLength {
        /// Number of digits entered (after removing separators and +86).
        len: usize,
    },
    /// Does not start with 13–19.
    #[error(
        "the number is not a mainland mobile number (it must start with 13 to 19); \
         enter a mobile number that can receive text messages"
    )]
    NotMobile,
}

impl PhoneNumberError {
    /// A short Chinese message for the citizen on the portal.
    pub fn message_zh(&self) -> String {
        match self {
            Self::Empty => "请输入11位手机号码".into(),
            Self::FullWidth => "手机号码含有全角数字，请切换到半角输入后重新输入".into(),
            Self::InvalidChar => "手机号码只能包含数字，请核对后重新输入".into(),
            Self::WrongLength { len } => {
                format!("手机号码应为11位，您输入了{len}位，请核对后重新输入")
            }
            Self::NotMobile => "请输入以13至19开头的中国大陆手机号码".into(),
        }
    }
}

/// A valid mainland mobile number (11 digits, `1[3-9]…`). Construct it with
/// [`PhoneNumber::parse`] (or `str::parse`, or serde).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses a mobile number. Surrounding spaces are trimmed; inner spaces and hyphens
    /// (`138 1234 5678`, `138-1234-5678`) and a leading `+86`, `0086` or `86` before 11 digits
    /// are removed. Full-width digits are refused.
    pub fn parse(input: &str) -> Result<Self, PhoneNumberError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(PhoneNumberError::Empty);
        }
        if s.chars().any(is_full_width) {
            return Err(PhoneNumberError::FullWidth);
        }
        let s = s.strip_prefix('+').unwrap_or(s);
        let mut digits = String::with_capacity(s.len());
        for c in s.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' => {}
                _ => return Err(PhoneNumberError::InvalidChar),
            }
        }
        let digits = match digits.len() {
            13 => digits.strip_prefix("86").unwrap_or(&digits).to_owned(),
            15 => digits.strip_prefix("0086").unwrap_or(&digits).to_owned(),
            _ => digits,
        };
        if digits.len() != 11 {
            return Err(PhoneNumberError::WrongLength { len: digits.len() });
        }
        let b = digits.as_bytes();
        if b[0] != b'1' || !(b'3'..=b'9').contains(&b[1]) {
            return Err(PhoneNumberError::NotMobile);
        }
        Ok(Self(digits))
    }

    /// The 11 digits in clear. Personal data: show [`PhoneNumber::masked`] on screens.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The masked form `138****5678`.
    pub fn masked(&self) -> String {
        mask::mask_middle(&self.0, 3, 4)
    }
}

impl FromStr for PhoneNumber {
    type Err = PhoneNumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PhoneNumber").field(&self.masked()).finish()
    }
}

serde_via_str!(PhoneNumber, "an 11-digit mainland mobile number");

/// Why a string is not a valid person name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PersonNameError {
    /// Nothing but spaces.
    #[error("the name is empty; enter the name as shown on the identity document")]
    Empty,
    /// More than [`MAX_NAME_CHARS`] characters.
    #[error("the name has {len} characters; at most {MAX_NAME_CHARS} are allowed")]
    TooLong {
        /// Number of characters entered (after trimming).
        len: usize,
    },
    /// A control character (line break, tab, NUL …).
    #[error("the name contains a line break or other control character; remove it")]
    ControlChar,
    /// A character that changes the direction of the text around it (U+202A–U+202E,
    /// U+2066–U+2069, U+200E, U+200F, U+061C), which can make a name display as another.
    #[error(
        "the name contains an invisible text-direction character (such as U+202E); \
         type the name again instead of pasting it"
    )]
    BidiControl,
    /// A zero-width character or byte order mark (U+200B–U+200D, U+2060, U+180E, U+FEFF),
    /// which makes two names that look the same differ.
    #[error(
        "the name contains an invisible zero-width character or byte order mark; \
         type the name again instead of pasting it"
    )]
    ZeroWidth,
    /// Another invisible or unassigned character (a format character such as a soft hyphen,
    /// a private-use or unassigned code point).
    #[error(
        "the name contains an invisible or unassigned character (U+{code:04X}); \
         type the name again instead of pasting it"
    )]
    InvisibleChar {
        /// The character's code point.
        code: u32,
    },
}

impl PersonNameError {
    /// A short Chinese message for the citizen on the portal.
    pub fn message_zh(&self) -> String {
        match self {
            Self::Empty => "请输入与身份证件一致的姓名".into(),
            Self::TooLong { .. } => format!("姓名不能超过{MAX_NAME_CHARS}个字符"),
            Self::ControlChar => "姓名中含有换行等非法字符，请删除后重新输入".into(),
            Self::BidiControl => {
                "姓名中含有改变文字方向的不可见字符，请不要粘贴，直接手动输入姓名".into()
            }
            Self::ZeroWidth => {
                "姓名中含有零宽字符或字节顺序标记（BOM）等不可见字符，请不要粘贴，直接手动输入姓名"
                    .into()
            }
            Self::InvisibleChar { .. } => {
                "姓名中含有不可见或无法显示的字符，请不要粘贴，直接手动输入姓名".into()
            }
        }
    }
}

/// A person's name: 1–64 characters after trimming, in Unicode normalization form C, without
/// control, text-direction, zero-width, byte-order-mark or other invisible characters.
/// Construct it with [`PersonName::parse`] (or `str::parse`, or serde).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PersonName(String);

/// Why `c` may not appear in a name, if it may not.
fn refused_in_name(c: char) -> Option<PersonNameError> {
    match c {
        '\u{061C}'
        | '\u{200E}'
        | '\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2066}'..='\u{2069}' => {
            return Some(PersonNameError::BidiControl);
        }
        '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{180E}' | '\u{FEFF}' => {
            return Some(PersonNameError::ZeroWidth);
        }
        _ => {}
    }
    match c.general_category() {
        GeneralCategory::Control
        | GeneralCategory::LineSeparator
        | GeneralCategory::ParagraphSeparator => Some(PersonNameError::ControlChar),
        GeneralCategory::Format
        | GeneralCategory::PrivateUse
        | GeneralCategory::Surrogate
        | GeneralCategory::Unassigned => Some(PersonNameError::InvisibleChar { code: c.into() }),
        _ => None,
    }
}

impl PersonName {
    /// Parses a name: surrounding whitespace is trimmed and the rest is normalised to NFC (so
    /// a name typed with a combining accent equals the same name typed precomposed); inner
    /// characters are otherwise kept as entered (`·` in minority and foreign names, spaces in
    /// Latin names). Control, text-direction (bidi), zero-width, byte-order-mark, other format,
    /// private-use and unassigned characters are refused, each with its own error.
    pub fn parse(input: &str) -> Result<Self, PersonNameError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(PersonNameError::Empty);
        }
        if let Some(e) = s.chars().find_map(refused_in_name) {
            return Err(e);
        }
        let s: String = s.nfc().collect();
        let len = s.chars().count();
        if len > MAX_NAME_CHARS {
            return Err(PersonNameError::TooLong { len });
        }
        Ok(Self(s))
    }

    /// The name in clear. Personal data: show [`PersonName::masked`] on screens.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The masked form: `*`, `张*`, `张*三`, `欧**明`.
    pub fn masked(&self) -> String {
        mask::mask_name(&self.0)
    }
}

impl FromStr for PersonName {
    type Err = PersonNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Debug for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PersonName").field(&self.masked()).finish()
    }
}

serde_via_str!(PersonName, "a person's name");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers() {
        for input in [
            "13812345678",
            " 138 1234 5678 ",
            "138-1234-5678",
            "+8613812345678",
            "+86 138 1234 5678",
            "008613812345678",
            "8613812345678",
        ] {
            assert_eq!(
                PhoneNumber::parse(input).map(|p| p.as_str().to_owned()),
                Ok("13812345678".to_owned()),
                "{input}"
            );
        }
        assert!(PhoneNumber::parse("19912345678").is_ok());
    }

    #[test]
    fn phone_refusals() {
        use PhoneNumberError as E;
        assert_eq!(PhoneNumber::parse(""), Err(E::Empty));
        assert_eq!(PhoneNumber::parse("１3812345678"), Err(E::FullWidth));
        assert_eq!(PhoneNumber::parse("138.1234.5678"), Err(E::InvalidChar));
        assert_eq!(
            PhoneNumber::parse("1381234567"),
            Err(E::WrongLength { len: 10 })
        );
        assert_eq!(PhoneNumber::parse("010-12345678"), Err(E::NotMobile));
        assert_eq!(PhoneNumber::parse("12812345678"), Err(E::NotMobile));
        assert_eq!(PhoneNumber::parse("23812345678"), Err(E::NotMobile));
        assert_eq!(PhoneNumber::parse("+12025550123"), Err(E::NotMobile));
    }

    #[test]
    fn phone_masking_debug_serde() {
        let p = PhoneNumber::parse("13812345678").expect("valid");
        assert_eq!(p.masked(), "138****5678");
        assert_eq!(format!("{p:?}"), "PhoneNumber(\"138****5678\")");
        let json = serde_json::to_string(&p).expect("serialize");
        assert_eq!(json, "\"13812345678\"");
        assert_eq!(
            serde_json::from_str::<PhoneNumber>(&json).expect("deserialize"),
            p
        );
        assert!(serde_json::from_str::<PhoneNumber>("\"12812345678\"").is_err());
    }

    #[test]
    fn names_and_masking() {
        let cases = [
            ("张", "*"),
            ("张三", "张*"),
            ("张小三", "张*三"),
            ("欧阳明明", "欧**明"),
            (" 阿依古丽·买买提 ", "阿******提"),
        ];
        for (input, masked) in cases {
            let n = PersonName::parse(input).expect(input);
            assert_eq!(n.as_str(), input.trim());
            assert_eq!(n.masked(), masked);
            assert_eq!(format!("{n:?}"), format!("PersonName({masked:?})"));
        }
        assert!(PersonName::parse(&"名".repeat(64)).is_ok());
    }

    #[test]
    fn name_refusals() {
        use PersonNameError as E;
        assert_eq!(PersonName::parse(" \u{3000} "), Err(E::Empty));
        assert_eq!(PersonName::parse("张\n三"), Err(E::ControlChar));
        assert_eq!(PersonName::parse("张\u{0}三"), Err(E::ControlChar));
        assert_eq!(
            PersonName::parse(&"名".repeat(65)),
            Err(E::TooLong { len: 65 })
        );
    }

    #[test]
    fn invisible_and_direction_characters_are_refused() {
        use PersonNameError as E;
        for (input, expected) in [
            ("张\u{202E}三", E::BidiControl),
            ("\u{202D}张三", E::BidiControl),
            ("张三\u{2066}", E::BidiControl),
            ("张\u{200F}三", E::BidiControl),
            ("张\u{200B}三", E::ZeroWidth),
            ("张\u{200D}三", E::ZeroWidth),
            ("张\u{2060}三", E::ZeroWidth),
            ("\u{FEFF}张三", E::ZeroWidth),
            ("张三\u{FEFF}", E::ZeroWidth),
            ("张\u{00AD}三", E::InvisibleChar { code: 0xAD }),
            ("张\u{E000}三", E::InvisibleChar { code: 0xE000 }),
            ("张\u{E0041}三", E::InvisibleChar { code: 0xE0041 }),
            ("张\u{2028}三", E::ControlChar),
            ("张\u{85}三", E::ControlChar),
        ] {
            assert_eq!(PersonName::parse(input), Err(expected), "{input:?}");
        }
        assert!(E::BidiControl.message_zh().contains("手动输入"));
        assert!(E::ZeroWidth.message_zh().contains("BOM"));
        assert!(
            E::InvisibleChar { code: 0xAD }
                .to_string()
                .contains("U+00AD")
        );
    }

    #[test]
    fn names_are_normalised_to_nfc() {
        // "José" with a combining acute accent equals the precomposed form.
        let decomposed = PersonName::parse("Jose\u{301} Li").expect("valid");
        let precomposed = PersonName::parse("Jos\u{E9} Li").expect("valid");
        assert_eq!(decomposed, precomposed);
        assert_eq!(decomposed.as_str(), "Jos\u{E9} Li");
        // Minority names keep their middle dot; CJK compatibility ideographs become their
        // unified form under NFC (U+F900 → U+8C48), as every other system stores them.
        assert_eq!(
            PersonName::parse("阿依古丽·买买提")
                .expect("valid")
                .as_str(),
            "阿依古丽·买买提"
        );
        assert_eq!(
            PersonName::parse("\u{F900}三").expect("valid").as_str(),
            "\u{8C48}三"
        );
    }

    #[test]
    fn name_serde() {
        let n = PersonName::parse("张小三").expect("valid");
        let json = serde_json::to_string(&n).expect("serialize");
        assert_eq!(json, "\"张小三\"");
        assert_eq!(
            serde_json::from_str::<PersonName>(&json).expect("deserialize"),
            n
        );
        assert!(serde_json::from_str::<PersonName>("\"  \"").is_err());
        assert!(serde_json::from_str::<PersonName>("\"a\\u0007b\"").is_err());
    }

    #[test]
    fn chinese_messages_are_non_empty() {
        use PhoneNumberError as P;
        for e in [
            P::Empty,
            P::FullWidth,
            P::InvalidChar,
            P::WrongLength { len: 3 },
            P::NotMobile,
        ] {
            assert!(!e.message_zh().is_empty());
            assert!(!e.to_string().is_empty());
        }
        use PersonNameError as N;
        for e in [
            N::Empty,
            N::TooLong { len: 65 },
            N::ControlChar,
            N::BidiControl,
            N::ZeroWidth,
            N::InvisibleChar { code: 0xAD },
        ] {
            assert!(!e.message_zh().is_empty());
            assert!(!e.to_string().is_empty());
        }
    }
}
