//! Personal data of applicants and rights holders: [`PhoneNumber`] (mainland mobile number) and
//! [`PersonName`].
//!
//! Both are personal data, like [`crate::IdNumber`]: they have no `Display`, their `Debug` shows
//! the masked form, and the clear value is reached only through `as_str()` (and serde).
//! Masking rules: phone `138****5678` (first 3, last 4); name `*` / `张*` / `张*三` / `欧**明`
//! (see [`crate::mask::mask_name`]).

use std::fmt;
use std::str::FromStr;

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
}

impl PersonNameError {
    /// A short Chinese message for the citizen on the portal.
    pub fn message_zh(&self) -> String {
        match self {
            Self::Empty => "请输入与身份证件一致的姓名".into(),
            Self::TooLong { .. } => format!("姓名不能超过{MAX_NAME_CHARS}个字符"),
            Self::ControlChar => "姓名中含有换行等非法字符，请删除后重新输入".into(),
        }
    }
}

/// A person's name: 1–64 characters after trimming, no control characters. Construct it with
/// [`PersonName::parse`] (or `str::parse`, or serde).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PersonName(String);

impl PersonName {
    /// Parses a name: surrounding whitespace is trimmed; inner characters are kept as entered
    /// (`·` in minority and foreign names, spaces in Latin names).
    pub fn parse(input: &str) -> Result<Self, PersonNameError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(PersonNameError::Empty);
        }
        if s.chars().any(char::is_control) {
            return Err(PersonNameError::ControlChar);
        }
        let len = s.chars().count();
        if len > MAX_NAME_CHARS {
            return Err(PersonNameError::TooLong { len });
        }
        Ok(Self(s.to_owned()))
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
        for e in [N::Empty, N::TooLong { len: 65 }, N::ControlChar] {
            assert!(!e.message_zh().is_empty());
            assert!(!e.to_string().is_empty());
        }
    }
}
