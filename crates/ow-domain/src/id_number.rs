//! 公民身份号码: the 18-character resident ID number of GB 11643-1999.
//!
//! Structure: 6-digit region code (GB/T 2260, address at first registration), 8-digit birth date
//! `YYYYMMDD`, 3-digit sequence (odd for men, even for women) and a check character computed
//! with ISO 7064 MOD 11-2: weights `7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2` over the first 17
//! digits, `r = Σ mod 11`, check = `"10X98765432"[r]` (domain-facts §3.6 \[C\]).
//!
//! [`IdNumber::parse`] is pure: it checks that the birth date is a real calendar date no earlier
//! than [`EARLIEST_BIRTH_YEAR`], but not that it lies in the past, because that needs a clock.
//! Callers that know today's date use [`IdNumber::parse_on`], which also refuses a birth date after
//! it. Deserialization uses [`IdNumber::parse`].
//!
//! An ID number is personal data: the type has no `Display`, its `Debug` shows the masked form,
//! and the clear value is reached only through [`IdNumber::as_str`] (and serde).

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};

use crate::mask;
use crate::text::{is_full_width, serde_via_str};

/// Weights of the 17 leading digits (GB 11643, ISO 7064 MOD 11-2).
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character indexed by `Σ mod 11`.
const CHECK_CHARS: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// Birth years before this are refused as implausible (the oldest real vector is from 1880).
pub const EARLIEST_BIRTH_YEAR: i32 = 1800;

/// Why a string is not a valid 18-character resident ID number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdNumberError {
    /// Nothing was entered.
    #[error("the ID number is empty; enter the 18-character resident ID number")]
    Empty,
    /// Full-width digits or letters were entered.
    #[error(
        "the ID number contains full-width characters (such as `１` or `Ｘ`); \
         switch the input method to half-width and enter it again"
    )]
    FullWidth,
    /// A 15-digit first-generation number was entered.
    #[error(
        "this is a 15-digit first-generation ID number, which is no longer accepted; \
         enter the 18-character number of the current ID card"
    )]
    FirstGeneration,
    /// The number does not have 18 characters.
    #[error(
        "the ID number has {len} characters but must have 18 (17 digits and a check digit or X)"
    )]
    WrongLength {
        /// Number of characters entered (after trimming spaces).
        len: usize,
    },
    /// One of the first 17 characters is not a digit.
    #[error(
        "character {position} of the ID number is not a digit; \
         the first 17 characters must be the digits 0-9"
    )]
    NotDigit {
        /// 1-based position of the offending character.
        position: usize,
    },
    /// The 18th character is neither a digit nor `X`.
    #[error("the last character of the ID number must be a digit or X")]
    BadCheckChar,
    /// The region code starts with 0.
    #[error("the ID number starts with 0, which no region code does; check the first six digits")]
    InvalidRegion,
    /// Characters 7–14 are not a calendar date.
    #[error(
        "the birth date in the ID number (characters 7-14, YYYYMMDD) is not a real date; check it"
    )]
    InvalidBirthDate,
    /// The birth year is before [`EARLIEST_BIRTH_YEAR`].
    #[error(
        "the birth date in the ID number is before the year {EARLIEST_BIRTH_YEAR}; \
         check characters 7-14"
    )]
    BirthDateTooEarly,
    /// The birth date lies after the reference date given to [`IdNumber::parse_on`].
    #[error("the birth date in the ID number is after today ({today}); check characters 7-14")]
    BirthDateInFuture {
        /// The reference date.
        today: NaiveDate,
    },
    /// The check character does not match the first 17 digits.
    #[error(
        "the check character of the ID number is wrong (the first 17 digits give {expected}, \
         found {found}); check the number for a typo"
    )]
    CheckDigit {
        /// Check character computed from the first 17 digits.
        expected: char,
        /// Check character entered.
        found: char,
    },
}

impl IdNumberError {
    /// A short Chinese message for the citizen on the portal.
    pub fn message_zh(&self) -> String {
        match self {
            Self::Empty => "请输入18位居民身份证号码".into(),
            Self::FullWidth => "身份证号码含有全角字符，请切换到半角输入后重新输入".into(),
            Self::FirstGeneration => "不支持15位一代身份证号码，请输入18位身份证号码".into(),
            Self::WrongLength { len } => {
                format!("身份证号码应为18位，您输入了{len}位，请核对后重新输入")
            }
            Self::NotDigit { position } => {
                format!("身份证号码第{position}位应为数字，请核对后重新输入")
            }
            Self::BadCheckChar => "身份证号码最后一位应为数字或X，请核对后重新输入".into(),
            Self::InvalidRegion => "身份证号码前6位地区码不正确，请核对后重新输入".into(),
            Self::InvalidBirthDate | Self::BirthDateTooEarly => {
                "身份证号码中的出生日期不正确，请核对后重新输入".into()
            }
            Self::BirthDateInFuture { .. } => {
                "身份证号码中的出生日期（第7至14位）晚于今天，请核对后重新输入".into()
            }
            Self::CheckDigit { .. } => "身份证号码校验位不正确，请核对后重新输入".into(),
        }
    }
}

/// Sex encoded by the 17th digit (odd: male, even: female).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sex {
    /// 男.
    Male,
    /// 女.
    Female,
}

impl Sex {
    /// Chinese name: `男` or `女`.
    pub fn name_zh(self) -> &'static str {
        match self {
            Self::Male => "男",
            Self::Female => "女",
        }
    }
}

/// A valid 18-character resident ID number, upper-case `X`. Construct it with
/// [`IdNumber::parse`] / [`IdNumber::parse_on`] (or `str::parse`, or serde).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdNumber {
    value: String,
    birth: NaiveDate,
}

impl IdNumber {
    /// Parses an ID number: surrounding spaces are trimmed, a lower-case `x` becomes `X`, and
    /// full-width characters are refused. The birth date must be a real date from
    /// [`EARLIEST_BIRTH_YEAR`] on; it is not compared with today (see [`IdNumber::parse_on`]).
    pub fn parse(input: &str) -> Result<Self, IdNumberError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(IdNumberError::Empty);
        }
        if s.chars().any(is_full_width) {
            return Err(IdNumberError::FullWidth);
        }
        let len = s.chars().count();
        if len == 15 && s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdNumberError::FirstGeneration);
        }
        if len != 18 {
            return Err(IdNumberError::WrongLength { len });
        }
        let chars: Vec<char> = s.chars().collect();
        for (i, c) in chars.iter().take(17).enumerate() {
            if !c.is_ascii_digit() {
                return Err(IdNumberError::NotDigit { position: i + 1 });
            }
        }
        let found = match chars[17] {
            c @ '0'..='9' => c,
            'x' | 'X' => 'X',
            _ => return Err(IdNumberError::BadCheckChar),
        };
        let prefix: String = chars[..17].iter().collect();
        if prefix.starts_with('0') {
            return Err(IdNumberError::InvalidRegion);
        }
        let birth = birth_date_of(&prefix[6..14])?;
        let expected = check_char_of(&prefix).ok_or(IdNumberError::BadCheckChar)?;
        if expected != found {
            return Err(IdNumberError::CheckDigit { expected, found });
        }
        let mut value = prefix;
        value.push(found);
        Ok(Self { value, birth })
    }

    /// Like [`IdNumber::parse`], and also refuses a birth date after `today`.
    pub fn parse_on(input: &str, today: NaiveDate) -> Result<Self, IdNumberError> {
        let id = Self::parse(input)?;
        if id.birth > today {
            return Err(IdNumberError::BirthDateInFuture { today });
        }
        Ok(id)
    }

    /// The check character (`0`–`9` or `X`) for 17 leading digits, or `None` if `prefix` is not
    /// exactly 17 ASCII digits.
    ///
    /// ```
    /// assert_eq!(ow_domain::IdNumber::check_char_for("11010519491231002"), Some('X'));
    /// ```
    pub fn check_char_for(prefix: &str) -> Option<char> {
        check_char_of(prefix)
    }

    /// The ID number in clear (canonical form, upper-case `X`). Personal data: show
    /// [`IdNumber::masked`] on screens and never log this.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The masked form: first 6 characters, 8 stars, last 4 (`370781********1234`).
    pub fn masked(&self) -> String {
        mask::mask_middle(&self.value, 6, 4)
    }

    /// The birth date encoded in characters 7–14.
    pub fn birth_date(&self) -> NaiveDate {
        self.birth
    }

    /// The 6-digit region code (GB/T 2260) of characters 1–6.
    pub fn region_code(&self) -> &str {
        &self.value[..6]
    }

    /// The sex encoded by the 17th character.
    pub fn sex(&self) -> Sex {
        let odd = self.value.as_bytes()[16].wrapping_sub(b'0') % 2 == 1;
        if odd { Sex::Male } else { Sex::Female }
    }

    /// Age in completed years on `date`, or `None` if `date` is before the birth date.
    pub fn age_on(&self, date: NaiveDate) -> Option<u32> {
        if date < self.birth {
            return None;
        }
        let mut years = date.year() - self.birth.year();
        if (date.month(), date.day()) < (self.birth.month(), self.birth.day()) {
            years -= 1;
        }
        u32::try_from(years).ok()
    }
}

/// Computes the check character of 17 ASCII digits.
fn check_char_of(prefix: &str) -> Option<char> {
    let bytes = prefix.as_bytes();
    if bytes.len() != 17 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = bytes
        .iter()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    CHECK_CHARS.get((sum % 11) as usize).copied()
}

/// Parses `YYYYMMDD` (already known to be ASCII digits).
fn birth_date_of(digits: &str) -> Result<NaiveDate, IdNumberError> {
    let num = |r: std::ops::Range<usize>| digits.get(r).and_then(|s| s.parse::<u32>().ok());
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(4..6), num(6..8)) else {
        return Err(IdNumberError::InvalidBirthDate);
    };
    let year = i32::try_from(y).map_err(|_| IdNumberError::InvalidBirthDate)?;
    let date = NaiveDate::from_ymd_opt(year, m, d).ok_or(IdNumberError::InvalidBirthDate)?;
    if year < EARLIEST_BIRTH_YEAR {
        return Err(IdNumberError::BirthDateTooEarly);
    }
    Ok(date)
}

impl FromStr for IdNumber {
    type Err = IdNumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("IdNumber").field(&self.masked()).finish()
    }
}

serde_via_str!(IdNumber, "an 18-character resident ID number");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("test date")
    }

    #[test]
    fn valid_vectors() {
        for v in [
            "11010519491231002X",
            "440524188001010014",
            "110101199003074477",
        ] {
            let id = IdNumber::parse(v).expect(v);
            assert_eq!(id.as_str(), v);
        }
        let id = IdNumber::parse("11010519491231002X").expect("valid");
        assert_eq!(id.birth_date(), date(1949, 12, 31));
        assert_eq!(id.region_code(), "110105");
        assert_eq!(id.sex(), Sex::Female);
        let id = IdNumber::parse("110101199003074477").expect("valid");
        assert_eq!(id.sex(), Sex::Male);
        assert_eq!(id.sex().name_zh(), "男");
        assert_eq!(
            IdNumber::parse("440524188001010014").map(|i| i.birth_date()),
            Ok(date(1880, 1, 1))
        );
    }

    #[test]
    fn invalid_vector_reports_expected_check_char() {
        assert_eq!(
            IdNumber::parse("11010119900307451X"),
            Err(IdNumberError::CheckDigit {
                expected: '4',
                found: 'X'
            })
        );
        assert!(IdNumber::parse("110101199003074514").is_ok());
    }

    #[test]
    fn lower_case_x_and_spaces_are_normalised() {
        let id = IdNumber::parse("  11010519491231002x \t").expect("valid");
        assert_eq!(id.as_str(), "11010519491231002X");
        let id = IdNumber::parse("\u{3000}11010519491231002X\u{3000}").expect("ideographic space");
        assert_eq!(id.as_str(), "11010519491231002X");
    }

    #[test]
    fn refusals() {
        use IdNumberError as E;
        assert_eq!(IdNumber::parse("   "), Err(E::Empty));
        assert_eq!(IdNumber::parse("１１010519491231002X"), Err(E::FullWidth));
        assert_eq!(IdNumber::parse("11010519491231002Ｘ"), Err(E::FullWidth));
        assert_eq!(IdNumber::parse("110105491231002"), Err(E::FirstGeneration));
        assert_eq!(
            IdNumber::parse("1101051949123100"),
            Err(E::WrongLength { len: 16 })
        );
        assert_eq!(
            IdNumber::parse("11010519491231002XX"),
            Err(E::WrongLength { len: 19 })
        );
        assert_eq!(
            IdNumber::parse("1101A519491231002X"),
            Err(E::NotDigit { position: 5 })
        );
        assert_eq!(
            IdNumber::parse("110105 9491231002X"),
            Err(E::NotDigit { position: 7 })
        );
        assert_eq!(IdNumber::parse("11010519491231002Y"), Err(E::BadCheckChar));
        assert_eq!(IdNumber::parse("01010519491231002X"), Err(E::InvalidRegion));
        assert_eq!(
            IdNumber::parse("110105194902300021"),
            Err(E::InvalidBirthDate)
        );
        assert_eq!(
            IdNumber::parse("110105194913010021"),
            Err(E::InvalidBirthDate)
        );
        assert_eq!(
            IdNumber::parse("110105194900010021"),
            Err(E::InvalidBirthDate)
        );
        // A real date, but before 1800.
        let prefix = "11010517991231002";
        let check = IdNumber::check_char_for(prefix).expect("digits");
        assert_eq!(
            IdNumber::parse(&format!("{prefix}{check}")),
            Err(E::BirthDateTooEarly)
        );
    }

    #[test]
    fn leap_days() {
        let ok = "11010520000229002";
        let c = IdNumber::check_char_for(ok).expect("digits");
        assert!(IdNumber::parse(&format!("{ok}{c}")).is_ok());
        let bad = "11010519000229002";
        let c = IdNumber::check_char_for(bad).expect("digits");
        assert_eq!(
            IdNumber::parse(&format!("{bad}{c}")),
            Err(IdNumberError::InvalidBirthDate)
        );
    }

    #[test]
    fn future_birth_date_with_reference_date() {
        let v = "110101199003074477";
        assert!(IdNumber::parse_on(v, date(2026, 1, 1)).is_ok());
        assert!(IdNumber::parse_on(v, date(1990, 3, 7)).is_ok());
        assert_eq!(
            IdNumber::parse_on(v, date(1990, 3, 6)),
            Err(IdNumberError::BirthDateInFuture {
                today: date(1990, 3, 6)
            })
        );
    }

    #[test]
    fn age() {
        let id = IdNumber::parse("110101199003074477").expect("valid");
        assert_eq!(id.age_on(date(2008, 3, 6)), Some(17));
        assert_eq!(id.age_on(date(2008, 3, 7)), Some(18));
        assert_eq!(id.age_on(date(1990, 3, 7)), Some(0));
        assert_eq!(id.age_on(date(1990, 3, 6)), None);
    }

    #[test]
    fn masking_and_debug() {
        let id = IdNumber::parse("110101199003074477").expect("valid");
        assert_eq!(id.masked(), "110101********4477");
        let dbg = format!("{id:?}");
        assert_eq!(dbg, "IdNumber(\"110101********4477\")");
        assert!(!dbg.contains("19900307"));
        let dbg = format!("{:?}", Some(&id));
        assert!(!dbg.contains("110101199003074477"));
    }

    #[test]
    fn serde_round_trip_and_refusal() {
        let id = IdNumber::parse("11010519491231002x").expect("valid");
        let json = serde_json::to_string(&id).expect("serialize");
        assert_eq!(json, "\"11010519491231002X\"");
        let back: IdNumber = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, id);
        let err = serde_json::from_str::<IdNumber>("\"11010119900307451X\"");
        assert!(err.is_err());
        assert!(serde_json::from_str::<IdNumber>("11010519491231").is_err());
    }

    #[test]
    fn property_check_char_validates_and_every_other_is_refused() {
        let mut rng = Rng::new(0x1d_0001);
        let mut tried = 0;
        while tried < 2_000 {
            // A random region (first digit 1-9) and a random real birth date.
            let region = 100_000 + rng.below(900_000);
            let birth = date(1900, 1, 1) + chrono::Days::new(rng.below(45_000));
            let seq = rng.below(1000);
            let prefix = format!("{region}{}{seq:03}", birth.format("%Y%m%d"));
            let check = IdNumber::check_char_for(&prefix).expect("17 digits");
            let id =
                IdNumber::parse(&format!("{prefix}{check}")).expect("computed check validates");
            assert_eq!(id.birth_date(), birth);
            for other in "0123456789X".chars().filter(|&c| c != check) {
                assert!(matches!(
                    IdNumber::parse(&format!("{prefix}{other}")),
                    Err(IdNumberError::CheckDigit { .. })
                ));
            }
            tried += 1;
        }
    }

    #[test]
    fn property_single_digit_changes_are_refused() {
        let valid = "110101199003074477";
        for pos in 0..17 {
            for d in b'0'..=b'9' {
                let mut bytes = valid.as_bytes().to_vec();
                if bytes[pos] == d {
                    continue;
                }
                bytes[pos] = d;
                let s = String::from_utf8(bytes).expect("ascii");
                assert!(IdNumber::parse(&s).is_err(), "{s} must be refused");
            }
        }
    }

    #[test]
    fn chinese_messages_are_non_empty() {
        use IdNumberError as E;
        let all = [
            E::Empty,
            E::FullWidth,
            E::FirstGeneration,
            E::WrongLength { len: 3 },
            E::NotDigit { position: 2 },
            E::BadCheckChar,
            E::InvalidRegion,
            E::InvalidBirthDate,
            E::BirthDateTooEarly,
            E::BirthDateInFuture {
                today: date(2026, 1, 1),
            },
            E::CheckDigit {
                expected: '4',
                found: 'X',
            },
        ];
        for e in all {
            assert!(!e.message_zh().is_empty());
            assert!(!e.to_string().is_empty());
        }
        assert_eq!(
            E::CheckDigit {
                expected: '4',
                found: 'X'
            }
            .message_zh(),
            "身份证号码校验位不正确，请核对后重新输入"
        );
    }
}
