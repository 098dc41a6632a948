//! 验证码: the verification code printed on a certificate, and its digest.
//!
//! A code is 10 characters from [`ALPHABET`] (31 characters: digits and upper-case letters
//! without the look-alikes `0 O 1 I L`), about 49.5 bits of randomness, displayed in two groups
//! of five: `7KQ4M-X9PTB`. Parsing accepts lower case, spaces and hyphens anywhere.
//!
//! A zone that needs to check codes stores only [`code_digest`] of the certificate number and the
//! code, never the code itself, and compares digests in constant time ([`digest_matches`]).

use std::fmt;
use std::str::FromStr;

use ow_domain::CertificateNumber;
use subtle::ConstantTimeEq;

use crate::error::CertificateError;

/// The 31 characters a code is made of, in the order that maps random values to characters.
pub const ALPHABET: &[u8; 31] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
/// Number of characters in a code (hyphen not counted).
pub const CODE_LEN: usize = 10;
/// BLAKE3 `derive_key` context of [`code_digest`].
pub const DIGEST_CONTEXT: &str = "OneWindow ow-certificate verification-code digest v1";

/// Why a string is not a verification code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerificationCodeError {
    /// Nothing was entered.
    #[error("the verification code is empty; enter the 10 characters printed under the QR code")]
    Empty,
    /// Full-width characters were entered.
    #[error(
        "the verification code contains full-width characters; \
         switch the input method to half-width and enter it again"
    )]
    FullWidth,
    /// One of `0 O 1 I L`, which codes never contain.
    #[error(
        "the verification code never contains '{found}' (codes leave out 0, O, 1, I and L); \
         check the printed code again"
    )]
    Ambiguous {
        /// The character found.
        found: char,
    },
    /// Another character that codes do not contain.
    #[error(
        "'{found}' cannot appear in a verification code; \
         it has only digits 2-9 and letters (spaces and hyphens are ignored)"
    )]
    InvalidChar {
        /// The character found.
        found: char,
    },
    /// Not 10 characters.
    #[error("the verification code has {len} characters but must have {CODE_LEN}")]
    WrongLength {
        /// Number of characters entered, without spaces and hyphens.
        len: usize,
    },
}

impl VerificationCodeError {
    /// A short Chinese message for the citizen on the portal.
    pub fn message_zh(&self) -> String {
        match self {
            Self::Empty => "请输入证书上的10位验证码".into(),
            Self::FullWidth => "验证码含有全角字符，请切换到半角输入后重新输入".into(),
            Self::Ambiguous { found } => {
                format!("验证码中不含“{found}”（验证码不使用0、O、1、I、L），请核对后重新输入")
            }
            Self::InvalidChar { found } => {
                format!("验证码中不能含有“{found}”，请核对后重新输入")
            }
            Self::WrongLength { len } => {
                format!("验证码应为{CODE_LEN}位，您输入了{len}位，请核对后重新输入")
            }
        }
    }
}

/// A verification code. Its `Debug` output hides the characters.
#[derive(Clone, Copy)]
pub struct VerificationCode([u8; CODE_LEN]);

impl VerificationCode {
    /// Generates a new code from the operating system's random number generator (rejection
    /// sampling, so every character is equally likely).
    pub fn generate() -> Result<Self, CertificateError> {
        let mut code = [0u8; CODE_LEN];
        let mut filled = 0;
        let mut buffer = [0u8; 32];
        while filled < CODE_LEN {
            getrandom::fill(&mut buffer).map_err(|err| CertificateError::Random {
                reason: err.to_string(),
            })?;
            for byte in buffer {
                // 248 = 8 × 31: values from 248 up would favour the first characters.
                if byte < 248 && filled < CODE_LEN {
                    code[filled] = ALPHABET[usize::from(byte % 31)];
                    filled += 1;
                }
            }
        }
        Ok(Self(code))
    }

    /// Parses a code: letters may be lower case, and spaces and hyphens anywhere are ignored.
    pub fn parse(input: &str) -> Result<Self, VerificationCodeError> {
        let mut code = [0u8; CODE_LEN];
        let mut len = 0usize;
        let mut first_error = None;
        for c in input.chars() {
            if matches!(c, ' ' | '-' | '\t') {
                continue;
            }
            let upper = c.to_ascii_uppercase();
            let error = if ('\u{FF01}'..='\u{FF5E}').contains(&c) || c == '\u{3000}' {
                Some(VerificationCodeError::FullWidth)
            } else if matches!(upper, '0' | 'O' | '1' | 'I' | 'L') {
                Some(VerificationCodeError::Ambiguous { found: c })
            } else if !upper.is_ascii() || !ALPHABET.contains(&(upper as u8)) {
                Some(VerificationCodeError::InvalidChar { found: c })
            } else {
                None
            };
            if let Some(error) = error {
                first_error.get_or_insert(error);
            } else if len < CODE_LEN {
                code[len] = upper as u8;
            }
            len += 1;
        }
        if let Some(error) = first_error {
            return Err(error);
        }
        match len {
            0 => Err(VerificationCodeError::Empty),
            CODE_LEN => Ok(Self(code)),
            _ => Err(VerificationCodeError::WrongLength { len }),
        }
    }

    /// The 10 characters without the hyphen, e.g. `7KQ4MX9PTB`.
    pub fn as_compact(&self) -> &str {
        // Every byte comes from ALPHABET, which is ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The grouped display form, e.g. `7KQ4M-X9PTB` (same as `Display`).
    pub fn grouped(&self) -> String {
        let compact = self.as_compact();
        format!("{}-{}", &compact[..5], &compact[5..])
    }
}

impl PartialEq for VerificationCode {
    /// Compares in constant time.
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for VerificationCode {}

impl fmt::Display for VerificationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.grouped())
    }
}

impl fmt::Debug for VerificationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VerificationCode(*****-*****)")
    }
}

impl FromStr for VerificationCode {
    type Err = VerificationCodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for VerificationCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.grouped())
    }
}

impl<'de> serde::Deserialize<'de> for VerificationCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The digest a zone stores instead of the code: lowercase hex of the 32-byte BLAKE3 hash in
/// `derive_key` mode with context [`DIGEST_CONTEXT`] over the canonical certificate number
/// (UTF-8), one 0x00 byte and the 10 code characters (no hyphen).
pub fn code_digest(certificate_number: &CertificateNumber, code: &VerificationCode) -> String {
    digest_hex(certificate_number.as_str(), code)
}

/// [`code_digest`] over a certificate number given as text.
pub(crate) fn digest_hex(certificate_number: &str, code: &VerificationCode) -> String {
    let mut hasher = blake3::Hasher::new_derive_key(DIGEST_CONTEXT);
    hasher.update(certificate_number.as_bytes());
    hasher.update(&[0]);
    hasher.update(&code.0);
    hasher.finalize().to_hex().to_string()
}

/// Whether `stored_digest` (from [`code_digest`]) belongs to this certificate number and code.
/// The comparison takes the same time wherever the digests differ.
pub fn digest_matches(
    stored_digest: &str,
    certificate_number: &CertificateNumber,
    code: &VerificationCode,
) -> bool {
    let computed = code_digest(certificate_number, code);
    computed.as_bytes().ct_eq(stored_digest.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use VerificationCodeError as E;

    fn number() -> CertificateNumber {
        CertificateNumber::parse("鲁(2026)青州市不动产权第0000123号").expect("valid")
    }

    #[test]
    fn generated_codes_use_the_alphabet_and_differ() {
        let a = VerificationCode::generate().expect("random");
        let b = VerificationCode::generate().expect("random");
        assert_ne!(a, b, "two random codes should differ");
        for code in [a, b] {
            assert_eq!(code.as_compact().len(), CODE_LEN);
            assert!(code.as_compact().bytes().all(|c| ALPHABET.contains(&c)));
            let grouped = code.to_string();
            assert_eq!(grouped.len(), 11);
            assert_eq!(&grouped[5..6], "-");
            assert_eq!(VerificationCode::parse(&grouped), Ok(code));
        }
        for ambiguous in b"01OIL" {
            assert!(!ALPHABET.contains(ambiguous));
        }
    }

    #[test]
    fn generated_characters_are_spread_over_the_alphabet() {
        let mut seen = [0u32; 31];
        for _ in 0..400 {
            let code = VerificationCode::generate().expect("random");
            for c in code.as_compact().bytes() {
                let index = ALPHABET.iter().position(|a| *a == c).expect("in alphabet");
                seen[index] += 1;
            }
        }
        // 4000 draws over 31 characters: about 129 each; none should be absent or dominant.
        assert!(seen.iter().all(|n| (40..400).contains(n)), "{seen:?}");
    }

    #[test]
    fn parse_variants() {
        let expected = VerificationCode::parse("7KQ4MX9PTB").expect("valid");
        for input in [
            "7KQ4M-X9PTB",
            "7kq4m-x9ptb",
            " 7KQ4M X9PTB ",
            "7K Q4M-X9 P-TB",
            "7kq4mx9ptb",
            "\t7KQ4M--X9PTB",
        ] {
            assert_eq!(VerificationCode::parse(input), Ok(expected), "{input}");
        }
        assert_eq!(expected.as_compact(), "7KQ4MX9PTB");
        assert_eq!(expected.grouped(), "7KQ4M-X9PTB");
        assert_eq!(format!("{expected:?}"), "VerificationCode(*****-*****)");
    }

    #[test]
    fn parse_refusals() {
        let p = VerificationCode::parse;
        assert_eq!(p(""), Err(E::Empty));
        assert_eq!(p(" - "), Err(E::Empty));
        assert_eq!(p("7KQ4M-X9PT"), Err(E::WrongLength { len: 9 }));
        assert_eq!(p("7KQ4M-X9PTBB"), Err(E::WrongLength { len: 11 }));
        assert_eq!(p("7KQ4M-X9PT0"), Err(E::Ambiguous { found: '0' }));
        assert_eq!(p("7KQ4M-X9PTo"), Err(E::Ambiguous { found: 'o' }));
        assert_eq!(p("lKQ4M-X9PTB"), Err(E::Ambiguous { found: 'l' }));
        assert_eq!(p("7KQ4M_X9PTB"), Err(E::InvalidChar { found: '_' }));
        assert_eq!(p("7KQ4M-X9PT码"), Err(E::InvalidChar { found: '码' }));
        assert_eq!(p("７KQ4M-X9PTB"), Err(E::FullWidth));
        for e in [
            E::Empty,
            E::FullWidth,
            E::Ambiguous { found: 'O' },
            E::InvalidChar { found: '_' },
            E::WrongLength { len: 3 },
        ] {
            assert!(!e.message_zh().is_empty());
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn serde_uses_the_grouped_form() {
        let code = VerificationCode::parse("7KQ4MX9PTB").expect("valid");
        let json = serde_json::to_string(&code).expect("serialise");
        assert_eq!(json, "\"7KQ4M-X9PTB\"");
        assert_eq!(
            serde_json::from_str::<VerificationCode>("\"7kq4m x9ptb\"").expect("parse"),
            code
        );
        assert!(serde_json::from_str::<VerificationCode>("\"7KQ4M-X9PT0\"").is_err());
    }

    #[test]
    fn digest_is_bound_to_number_and_code() {
        let code = VerificationCode::parse("7KQ4M-X9PTB").expect("valid");
        let digest = code_digest(&number(), &code);
        assert_eq!(digest.len(), 64);
        assert!(
            digest
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert!(!digest.contains("7KQ4M"));
        // The documented construction, spelled out.
        let mut material = number().as_str().as_bytes().to_vec();
        material.push(0);
        material.extend_from_slice(b"7KQ4MX9PTB");
        assert_eq!(
            digest,
            hex::encode(blake3::derive_key(DIGEST_CONTEXT, &material))
        );

        assert!(digest_matches(&digest, &number(), &code));
        let other_code = VerificationCode::parse("7KQ4M-X9PTC").expect("valid");
        assert!(!digest_matches(&digest, &number(), &other_code));
        let other_number =
            CertificateNumber::parse("鲁(2026)青州市不动产权第0000124号").expect("valid");
        assert!(!digest_matches(&digest, &other_number, &code));
        assert!(!digest_matches(&digest[..63], &number(), &code));
        assert!(!digest_matches("", &number(), &code));
        assert!(!digest_matches(&digest.to_uppercase(), &number(), &code));
    }
}
