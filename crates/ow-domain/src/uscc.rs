//! 统一社会信用代码: the 18-character unified social credit code of GB 32100-2015.
//!
//! Structure: 1 character registration authority (登记管理部门, e.g. `9` market regulation,
//! `1` institutional staffing), 1 character organisation category, 6-digit region code
//! (GB/T 2260), 9-character organisation code (组织机构代码, GB 11714, characters 9–17) and a
//! check character.
//!
//! Alphabet: `0123456789ABCDEFGHJKLMNPQRTUWXY` (31 characters; no I, O, S, V, Z), each worth its
//! index. Check: weights `3^i mod 31` = `1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28`,
//! check = `31 − (Σ mod 31)` with 31 → 0, written with the same alphabet (domain-facts §3.6 \[C\]).
//!
//! The embedded organisation code carries its own GB 11714 check character: weights
//! `3 7 9 10 5 8 4 2` over its first 8 characters (digits worth 0–9, letters A–Z worth 10–35),
//! `c = 11 − (Σ mod 11)` with 10 → `X` and 11 → `0`. All real vectors in domain-facts pass it
//! (`M000100Y4`, `MB0327169`, `708461136`), so it is enforced. Should real codes turn up that
//! fail only this inner check, make it report-only ([`Uscc::organization_code_is_valid`] already
//! exists for that) rather than refusing them.

use std::fmt;
use std::str::FromStr;

use crate::text::{is_full_width, serde_via_str};

/// The 31-character USCC alphabet; a character's value is its index.
pub const ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];
const ORG_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

/// Why a string is not a valid unified social credit code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsccError {
    /// Nothing was entered.
    #[error("the unified social credit code is empty; enter the 18-character code")]
    Empty,
    /// Full-width characters were entered.
    #[error(
        "the unified social credit code contains full-width characters; \
         switch the input method to half-width and enter it again"
    )]
    FullWidth,
    /// Not 18 characters.
    #[error("the unified social credit code has {len} characters but must have 18")]
    WrongLength {
        /// Number of characters entered (after trimming spaces).
        len: usize,
    },
    /// A character outside the alphabet.
    #[error(
        "character {position} of the unified social credit code is not allowed; use digits and \
         the capital letters A-Y except I, O, S, V and Z"
    )]
    InvalidChar {
        /// 1-based position.
        position: usize,
    },
    /// Characters 3–8 (the region code) are not all digits.
    #[error(
        "character {position} of the unified social credit code must be a digit \
         (characters 3-8 are the region code)"
    )]
    RegionNotDigit {
        /// 1-based position.
        position: usize,
    },
    /// The final check character does not match.
    #[error(
        "the check character of the unified social credit code is wrong (the first 17 \
         characters give {expected}, found {found}); check the code for a typo"
    )]
    CheckChar {
        /// Computed check character.
        expected: char,
        /// Entered check character.
        found: char,
    },
    /// The embedded organisation code (characters 9–17) fails its GB 11714 check.
    #[error(
        "the organisation code inside the unified social credit code (characters 9-17) has a \
         wrong check character (expected {expected}, found {found}); check the code for a typo"
    )]
    OrganizationCode {
        /// Computed GB 11714 check character.
        expected: char,
        /// Character 17 as entered.
        found: char,
    },
}

impl UsccError {
    /// A short Chinese message for the applicant on the portal.
    pub fn message_zh(&self) -> String {
        match self {
            Self::Empty => "请输入18位统一社会信用代码".into(),
            Self::FullWidth => "统一社会信用代码含有全角字符，请切换到半角输入后重新输入".into(),
            Self::WrongLength { len } => {
                format!("统一社会信用代码应为18位，您输入了{len}位，请核对后重新输入")
            }
            Self::InvalidChar { position } => format!(
                "统一社会信用代码第{position}位字符无效（不使用I、O、S、V、Z），请核对后重新输入"
            ),
            Self::RegionNotDigit { position } => {
                format!("统一社会信用代码第{position}位应为数字，请核对后重新输入")
            }
            Self::CheckChar { .. } | Self::OrganizationCode { .. } => {
                "统一社会信用代码校验位不正确，请核对后重新输入".into()
            }
        }
    }
}

/// A valid unified social credit code, upper case. Construct it with [`Uscc::parse`] (or
/// `str::parse`, or serde).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uscc(String);

impl Uscc {
    /// Parses a code: surrounding spaces are trimmed and lower-case letters upper-cased;
    /// full-width characters are refused.
    pub fn parse(input: &str) -> Result<Self, UsccError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(UsccError::Empty);
        }
        if s.chars().any(is_full_width) {
            return Err(UsccError::FullWidth);
        }
        let chars: Vec<char> = s.chars().map(|c| c.to_ascii_uppercase()).collect();
        if chars.len() != 18 {
            return Err(UsccError::WrongLength { len: chars.len() });
        }
        let mut values = [0u32; 18];
        for (i, &c) in chars.iter().enumerate() {
            values[i] = value_of(c).ok_or(UsccError::InvalidChar { position: i + 1 })?;
            if (2..8).contains(&i) && !c.is_ascii_digit() {
                return Err(UsccError::RegionNotDigit { position: i + 1 });
            }
        }
        let expected = check_of(&values[..17]);
        if expected != chars[17] {
            return Err(UsccError::CheckChar {
                expected,
                found: chars[17],
            });
        }
        let org: String = chars[8..17].iter().collect();
        let org_expected = org_check_of(&org);
        if org_expected != Some(chars[16]) {
            return Err(UsccError::OrganizationCode {
                expected: org_expected.unwrap_or('?'),
                found: chars[16],
            });
        }
        Ok(Self(chars.into_iter().collect()))
    }

    /// The check character for 17 leading characters, or `None` if `prefix` is not 17
    /// characters of the alphabet.
    ///
    /// ```
    /// assert_eq!(ow_domain::Uscc::check_char_for("91110000600007372"), Some('K'));
    /// ```
    pub fn check_char_for(prefix: &str) -> Option<char> {
        let values: Vec<u32> = prefix.chars().map(value_of).collect::<Option<_>>()?;
        (values.len() == 17).then(|| check_of(&values))
    }

    /// Whether a 9-character organisation code (GB 11714) has a correct check character.
    /// Every parsed [`Uscc`] passes this for [`Uscc::organization_code`].
    pub fn organization_code_is_valid(code: &str) -> bool {
        code.chars().count() == 9 && org_check_of(code) == code.chars().last()
    }

    /// The canonical code.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Character 1: the registration authority (登记管理部门代码).
    pub fn registration_authority(&self) -> char {
        self.char_at(0)
    }

    /// Character 2: the organisation category (机构类别代码).
    pub fn organization_category(&self) -> char {
        self.char_at(1)
    }

    /// Characters 3–8: the region code (GB/T 2260) of the registration authority.
    pub fn region_code(&self) -> &str {
        &self.0[2..8]
    }

    /// Characters 9–17: the organisation code (组织机构代码, GB 11714).
    pub fn organization_code(&self) -> &str {
        &self.0[8..17]
    }

    fn char_at(&self, i: usize) -> char {
        char::from(self.0.as_bytes()[i])
    }
}

/// Value of a USCC character (its index in [`ALPHABET`]).
fn value_of(c: char) -> Option<u32> {
    ALPHABET.find(c).and_then(|i| u32::try_from(i).ok())
}

/// Check character over 17 values.
fn check_of(values: &[u32]) -> char {
    let sum: u32 = values.iter().zip(WEIGHTS).map(|(v, w)| v * w).sum();
    let check = (31 - sum % 31) % 31;
    ALPHABET.chars().nth(check as usize).unwrap_or('?')
}

/// GB 11714 check character of a 9-character organisation code (its first 8 are weighed).
fn org_check_of(code: &str) -> Option<char> {
    let mut sum = 0u32;
    let mut n = 0;
    for (c, w) in code.chars().zip(ORG_WEIGHTS) {
        let v = match c {
            '0'..='9' => u32::from(c) - u32::from('0'),
            'A'..='Z' => u32::from(c) - u32::from('A') + 10,
            _ => return None,
        };
        sum += v * w;
        n += 1;
    }
    if n != 8 {
        return None;
    }
    Some(match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        d => char::from_digit(d, 10)?,
    })
}

impl FromStr for Uscc {
    type Err = UsccError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

serde_via_str!(Uscc, "an 18-character unified social credit code");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;

    const VALID: [&str; 3] = [
        "91350100M000100Y43",
        "91440300708461136T",
        "11100000MB03271699",
    ];

    #[test]
    fn valid_vectors() {
        for v in VALID {
            let code = Uscc::parse(v).expect(v);
            assert_eq!(code.to_string(), v);
        }
        let code = Uscc::parse("11100000MB03271699").expect("valid");
        assert_eq!(code.registration_authority(), '1');
        assert_eq!(code.organization_category(), '1');
        assert_eq!(code.region_code(), "100000");
        assert_eq!(code.organization_code(), "MB0327169");
    }

    #[test]
    fn invalid_vector_reports_expected_check_char() {
        assert_eq!(
            Uscc::parse("91110000600007372D"),
            Err(UsccError::CheckChar {
                expected: 'K',
                found: 'D'
            })
        );
        assert_eq!(Uscc::check_char_for("91110000600007372"), Some('K'));
    }

    #[test]
    fn inner_organization_code_vectors() {
        for code in ["M000100Y4", "MB0327169", "708461136"] {
            assert!(Uscc::organization_code_is_valid(code), "{code}");
        }
        assert!(!Uscc::organization_code_is_valid("M000100Y5"));
        assert!(!Uscc::organization_code_is_valid("M000100Y"));
    }

    #[test]
    fn inner_check_is_enforced() {
        // Outer check recomputed so that only the inner GB 11714 check fails.
        let prefix = "91350100M000100Y5";
        let check = Uscc::check_char_for(prefix).expect("alphabet");
        assert_eq!(
            Uscc::parse(&format!("{prefix}{check}")),
            Err(UsccError::OrganizationCode {
                expected: '4',
                found: '5'
            })
        );
    }

    #[test]
    fn normalisation_and_refusals() {
        assert_eq!(
            Uscc::parse(" 91350100m000100y43 ").map(|c| c.to_string()),
            Ok("91350100M000100Y43".to_owned())
        );
        assert_eq!(Uscc::parse(""), Err(UsccError::Empty));
        assert_eq!(
            Uscc::parse("９1350100M000100Y43"),
            Err(UsccError::FullWidth)
        );
        assert_eq!(
            Uscc::parse("91350100M000100Y4"),
            Err(UsccError::WrongLength { len: 17 })
        );
        assert_eq!(
            Uscc::parse("91350100I000100Y43"),
            Err(UsccError::InvalidChar { position: 9 })
        );
        assert_eq!(
            Uscc::parse("9135010OM000100Y43"),
            Err(UsccError::InvalidChar { position: 8 })
        );
        assert_eq!(
            Uscc::parse("913501A0M000100Y43"),
            Err(UsccError::RegionNotDigit { position: 7 })
        );
    }

    #[test]
    fn property_every_single_character_change_is_refused() {
        let mut candidates: Vec<char> = (0x20u8..0x7f).map(char::from).collect();
        candidates.extend(['１', 'Ａ', '鲁', 'é']);
        for v in VALID {
            let original: Vec<char> = v.chars().collect();
            for pos in 0..18 {
                for &c in &candidates {
                    if c.to_ascii_uppercase() == original[pos] {
                        continue;
                    }
                    let mut changed = original.clone();
                    changed[pos] = c;
                    let s: String = changed.into_iter().collect();
                    // A space at either end is trimmed and leaves 17 characters: still refused.
                    assert!(Uscc::parse(&s).is_err(), "{s:?} must be refused");
                }
            }
        }
    }

    #[test]
    fn property_random_codes_with_computed_checks_validate() {
        let alphabet: Vec<char> = ALPHABET.chars().collect();
        let mut rng = Rng::new(0x05cc);
        for _ in 0..2_000 {
            let mut s = String::new();
            s.push(alphabet[rng.below(31) as usize]);
            s.push(alphabet[rng.below(31) as usize]);
            s.push_str(&format!("{:06}", rng.below(1_000_000)));
            let body: String = (0..8).map(|_| alphabet[rng.below(31) as usize]).collect();
            let Some(org_check) = org_check_of(&body) else {
                continue;
            };
            if value_of(org_check).is_none() {
                continue;
            }
            s.push_str(&body);
            s.push(org_check);
            let check = Uscc::check_char_for(&s).expect("alphabet");
            let full = format!("{s}{check}");
            assert!(Uscc::parse(&full).is_ok(), "{full}");
            for other in alphabet.iter().filter(|&&c| c != check) {
                assert!(Uscc::parse(&format!("{s}{other}")).is_err());
            }
        }
    }

    #[test]
    fn serde_round_trip_and_refusal() {
        let code = Uscc::parse("91440300708461136T").expect("valid");
        let json = serde_json::to_string(&code).expect("serialize");
        assert_eq!(json, "\"91440300708461136T\"");
        assert_eq!(
            serde_json::from_str::<Uscc>(&json).expect("deserialize"),
            code
        );
        assert!(serde_json::from_str::<Uscc>("\"91110000600007372D\"").is_err());
    }

    #[test]
    fn chinese_messages_are_non_empty() {
        use UsccError as E;
        for e in [
            E::Empty,
            E::FullWidth,
            E::WrongLength { len: 1 },
            E::InvalidChar { position: 1 },
            E::RegionNotDigit { position: 3 },
            E::CheckChar {
                expected: 'K',
                found: 'D',
            },
            E::OrganizationCode {
                expected: '4',
                found: '5',
            },
        ] {
            assert!(!e.message_zh().is_empty());
            assert!(!e.to_string().is_empty());
        }
    }
}
