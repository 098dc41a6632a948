//! 证照标识: the licence identifier of an electronic licence (GB/T 36904, domain-facts §3.7 \[V\]).
//!
//! Form: `1.2.156.3005.2.{type code}.{issuer code}.{serial}.{version}.{check}`, for example
//! `1.2.156.3005.2.11100000MB03271699022.340100.000000016.001.9`.
//!
//! - `1.2.156.3005.2` is the fixed OID arc of Chinese electronic licences.
//! - The type code names the kind of licence: [`TYPE_CODE_RIGHTS_CERTIFICATE`] (不动产权证) or
//!   [`TYPE_CODE_REGISTRATION_PROOF`] (不动产登记证明), each the 自然资源部 USCC followed by 3 digits.
//! - The issuer code is usually the issuing district's 6-digit code (e.g. `340100`).
//! - The serial is built with 9 digits by [`LicenseId::new`]; parsing accepts 1–32 characters
//!   of `0-9A-Z`.
//! - The version has exactly 3 digits (`001` for the first issue).
//! - The check character is ISO/IEC 7064 MOD 37,36 (hybrid system, alphabet `0-9A-Z`) over the
//!   concatenation type code ‖ issuer code ‖ serial ‖ version, without the dots.
//!
//! The check character comes from the `iso-7064` crate (LiosK/iso-7064-rs, which implements all
//! eight systems of ISO/IEC 7064:2003), not from a hand-written loop; the tests hold the real
//! vector above and values computed independently.

use std::fmt;
use std::str::FromStr;

use iso_7064::MOD37_36;
use ow_domain::CertificateKind;

/// The fixed OID arc every licence id starts with (without the final dot).
pub const OID_PREFIX: &str = "1.2.156.3005.2";
/// 证照类型代码 of 不动产权证 (rights certificate).
pub const TYPE_CODE_RIGHTS_CERTIFICATE: &str = "11100000MB03271699001";
/// 证照类型代码 of 不动产登记证明 (registration proof).
pub const TYPE_CODE_REGISTRATION_PROOF: &str = "11100000MB03271699022";
/// Longest type code, issuer code or serial accepted when parsing.
pub const MAX_COMPONENT_LEN: usize = 32;
/// Largest serial [`LicenseId::new`] accepts (9 digits).
pub const MAX_SERIAL: u64 = 999_999_999;

/// Why a licence id could not be parsed or built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LicenseIdError {
    /// The id does not start with `1.2.156.3005.2.` or does not have five parts after it.
    #[error(
        "the licence id (证照标识) must read 1.2.156.3005.2.<type>.<issuer>.<serial>.<version>.<check>, \
         e.g. 1.2.156.3005.2.11100000MB03271699022.340100.000000016.001.9; copy it exactly as printed"
    )]
    Malformed,
    /// A part is empty, too long or has characters other than `0-9A-Z`.
    #[error(
        "the {part} of the licence id must be 1 to {MAX_COMPONENT_LEN} characters of 0-9 and A-Z"
    )]
    InvalidPart {
        /// Which part: `type code`, `issuer code` or `serial`.
        part: &'static str,
    },
    /// The version is not 3 digits (or is 000).
    #[error("the version of the licence id must be 3 digits from 001 to 999")]
    InvalidVersion,
    /// The check character does not match.
    #[error(
        "the check character of the licence id is '{found}' but should be '{expected}'; \
         the id was mistyped or altered"
    )]
    CheckChar {
        /// The correct check character.
        expected: char,
        /// The one found.
        found: char,
    },
    /// A serial above [`MAX_SERIAL`] (or 0) was passed to [`LicenseId::new`].
    #[error("licence serial {serial} is out of range; a new id takes 1 to {MAX_SERIAL}")]
    SerialOutOfRange {
        /// The serial given.
        serial: u64,
    },
}

/// A valid licence id (证照标识), with its check character verified.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LicenseId {
    canonical: String,
    type_code: String,
    issuer_code: String,
    serial: String,
    version: u16,
    check: char,
}

impl LicenseId {
    /// Builds the licence id of a new certificate: the type code for `kind`, the issuer code
    /// (normally the district code), the serial padded to 9 digits and the version padded to 3.
    pub fn new(
        kind: CertificateKind,
        issuer_code: &str,
        serial: u64,
        version: u16,
    ) -> Result<Self, LicenseIdError> {
        if serial == 0 || serial > MAX_SERIAL {
            return Err(LicenseIdError::SerialOutOfRange { serial });
        }
        if version == 0 || version > 999 {
            return Err(LicenseIdError::InvalidVersion);
        }
        let type_code = type_code_for(kind);
        let issuer_code = check_part(issuer_code, "issuer code")?;
        let serial = format!("{serial:09}");
        let check = compute_check(type_code, issuer_code, &serial, version)?;
        Ok(Self::assemble(
            type_code,
            issuer_code,
            &serial,
            version,
            check,
        ))
    }

    /// Parses a licence id: surrounding spaces are trimmed and letters are upper-cased; the
    /// check character must match.
    pub fn parse(input: &str) -> Result<Self, LicenseIdError> {
        let upper = input.trim().to_ascii_uppercase();
        let rest = upper
            .strip_prefix(OID_PREFIX)
            .and_then(|rest| rest.strip_prefix('.'))
            .ok_or(LicenseIdError::Malformed)?;
        let parts: Vec<&str> = rest.split('.').collect();
        let [type_code, issuer_code, serial, version, check] = parts.as_slice() else {
            return Err(LicenseIdError::Malformed);
        };
        let type_code = check_part(type_code, "type code")?;
        let issuer_code = check_part(issuer_code, "issuer code")?;
        let serial = check_part(serial, "serial")?;
        if version.len() != 3 || !version.bytes().all(|b| b.is_ascii_digit()) {
            return Err(LicenseIdError::InvalidVersion);
        }
        let version: u16 = version
            .parse()
            .map_err(|_| LicenseIdError::InvalidVersion)?;
        if version == 0 {
            return Err(LicenseIdError::InvalidVersion);
        }
        let mut check_chars = check.chars();
        let (Some(found), None) = (check_chars.next(), check_chars.next()) else {
            return Err(LicenseIdError::Malformed);
        };
        let expected = compute_check(type_code, issuer_code, serial, version)?;
        if found != expected {
            return Err(LicenseIdError::CheckChar { expected, found });
        }
        Ok(Self::assemble(
            type_code,
            issuer_code,
            serial,
            version,
            expected,
        ))
    }

    fn assemble(
        type_code: &str,
        issuer_code: &str,
        serial: &str,
        version: u16,
        check: char,
    ) -> Self {
        Self {
            canonical: format!(
                "{OID_PREFIX}.{type_code}.{issuer_code}.{serial}.{version:03}.{check}"
            ),
            type_code: type_code.to_owned(),
            issuer_code: issuer_code.to_owned(),
            serial: serial.to_owned(),
            version,
            check,
        }
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.canonical
    }

    /// The 证照类型代码.
    pub fn type_code(&self) -> &str {
        &self.type_code
    }

    /// The kind of certificate the type code stands for, or `None` for another type code.
    pub fn kind(&self) -> Option<CertificateKind> {
        match self.type_code.as_str() {
            TYPE_CODE_RIGHTS_CERTIFICATE => Some(CertificateKind::RightsCertificate),
            TYPE_CODE_REGISTRATION_PROOF => Some(CertificateKind::RegistrationProof),
            _ => None,
        }
    }

    /// The 颁发机构代码.
    pub fn issuer_code(&self) -> &str {
        &self.issuer_code
    }

    /// The 流水号 as written.
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// The version (1 for the first issue).
    pub fn version(&self) -> u16 {
        self.version
    }

    /// The check character.
    pub fn check_char(&self) -> char {
        self.check
    }
}

/// The 证照类型代码 for a kind of certificate.
pub fn type_code_for(kind: CertificateKind) -> &'static str {
    match kind {
        CertificateKind::RightsCertificate => TYPE_CODE_RIGHTS_CERTIFICATE,
        CertificateKind::RegistrationProof => TYPE_CODE_REGISTRATION_PROOF,
    }
}

/// The ISO/IEC 7064 MOD 37,36 check character of `payload` (characters `0-9A-Z`), or `None`
/// if the payload is empty or has another character.
///
/// ```
/// let payload = "11100000MB03271699022340100000000016001";
/// assert_eq!(ow_certificate::license_id::mod37_36_check_char(payload), Some('9'));
/// ```
pub fn mod37_36_check_char(payload: &str) -> Option<char> {
    if payload.is_empty() || !payload.bytes().all(is_upper_alnum) {
        return None;
    }
    MOD37_36.compute(payload).ok().map(|[c]| c)
}

fn compute_check(
    type_code: &str,
    issuer_code: &str,
    serial: &str,
    version: u16,
) -> Result<char, LicenseIdError> {
    let payload = format!("{type_code}{issuer_code}{serial}{version:03}");
    mod37_36_check_char(&payload).ok_or(LicenseIdError::Malformed)
}

fn is_upper_alnum(b: u8) -> bool {
    b.is_ascii_digit() || b.is_ascii_uppercase()
}

fn check_part<'a>(part: &'a str, name: &'static str) -> Result<&'a str, LicenseIdError> {
    if part.is_empty() || part.len() > MAX_COMPONENT_LEN || !part.bytes().all(is_upper_alnum) {
        return Err(LicenseIdError::InvalidPart { part: name });
    }
    Ok(part)
}

impl FromStr for LicenseId {
    type Err = LicenseIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for LicenseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical)
    }
}

impl serde::Serialize for LicenseId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.canonical)
    }
}

impl<'de> serde::Deserialize<'de> for LicenseId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CertificateKind::{RegistrationProof, RightsCertificate};

    const VECTOR: &str = "1.2.156.3005.2.11100000MB03271699022.340100.000000016.001.9";

    #[test]
    fn real_vector_parses() {
        let id = LicenseId::parse(VECTOR).expect("the real vector is valid");
        assert_eq!(id.as_str(), VECTOR);
        assert_eq!(id.type_code(), TYPE_CODE_REGISTRATION_PROOF);
        assert_eq!(id.kind(), Some(RegistrationProof));
        assert_eq!(id.issuer_code(), "340100");
        assert_eq!(id.serial(), "000000016");
        assert_eq!(id.version(), 1);
        assert_eq!(id.check_char(), '9');
        assert_eq!(
            mod37_36_check_char("11100000MB03271699022340100000000016001"),
            Some('9')
        );
        let built = LicenseId::new(RegistrationProof, "340100", 16, 1).expect("valid");
        assert_eq!(built, id);
    }

    /// Values computed with an independent implementation of the ISO 7064 MOD 37,36 hybrid
    /// system (p = 36; for each character s = (p + v) mod 36, 0 → 36; p = 2s mod 37; check =
    /// (37 − p) mod 36).
    #[test]
    fn computed_vectors() {
        let cases = [
            (RightsCertificate, "370781", 123, 1, 'N'),
            (RegistrationProof, "370781", 1, 1, '7'),
            (RightsCertificate, "340100", 16, 2, 'X'),
            (RightsCertificate, "320311", 20_128, 1, 'T'),
        ];
        for (kind, issuer, serial, version, check) in cases {
            let id = LicenseId::new(kind, issuer, serial, version).expect("valid");
            assert_eq!(id.check_char(), check, "{id}");
            assert_eq!(LicenseId::parse(id.as_str()).as_ref(), Ok(&id));
            assert_eq!(id.kind(), Some(kind));
        }
        assert_eq!(
            LicenseId::new(RightsCertificate, "370781", 123, 1)
                .expect("valid")
                .as_str(),
            "1.2.156.3005.2.11100000MB03271699001.370781.000000123.001.N"
        );
    }

    #[test]
    fn lenient_input_and_serde() {
        let id = LicenseId::parse(&format!(" {} ", VECTOR.to_lowercase())).expect("valid");
        assert_eq!(id.as_str(), VECTOR);
        let json = serde_json::to_string(&id).expect("serialise");
        assert_eq!(json, format!("\"{VECTOR}\""));
        assert_eq!(serde_json::from_str::<LicenseId>(&json).expect("parse"), id);
        assert!(serde_json::from_str::<LicenseId>(&json.replace(".9\"", ".8\"")).is_err());
    }

    #[test]
    fn refusals() {
        use LicenseIdError as E;
        let p = LicenseId::parse;
        assert_eq!(
            p("1.2.156.3005.2.11100000MB03271699022.340100.000000016.001.8"),
            Err(E::CheckChar {
                expected: '9',
                found: '8'
            })
        );
        // One changed character anywhere in the payload changes the check character.
        assert!(matches!(
            p("1.2.156.3005.2.11100000MB03271699022.340100.000000061.001.9"),
            Err(E::CheckChar { .. })
        ));
        assert_eq!(
            p("1.2.156.3005.3.11100000MB03271699022.340100.000000016.001.9"),
            Err(E::Malformed)
        );
        assert_eq!(
            p("1.2.156.3005.2.11100000MB03271699022.340100.000000016.9"),
            Err(E::Malformed)
        );
        assert_eq!(
            p("1.2.156.3005.2.11100000MB03271699022.340100.000000016.001.99"),
            Err(E::Malformed)
        );
        assert_eq!(
            p("1.2.156.3005.2.11100000MB03271699022..000000016.001.9"),
            Err(E::InvalidPart {
                part: "issuer code"
            })
        );
        assert_eq!(
            p("1.2.156.3005.2.11100000MB-3271699022.340100.000000016.001.9"),
            Err(E::InvalidPart { part: "type code" })
        );
        assert_eq!(
            p("1.2.156.3005.2.11100000MB03271699022.340100.000000016.01.9"),
            Err(E::InvalidVersion)
        );
        assert_eq!(
            p("1.2.156.3005.2.11100000MB03271699022.340100.000000016.000.9"),
            Err(E::InvalidVersion)
        );
        assert_eq!(
            LicenseId::new(RightsCertificate, "370781", 0, 1),
            Err(E::SerialOutOfRange { serial: 0 })
        );
        assert_eq!(
            LicenseId::new(RightsCertificate, "370781", 1_000_000_000, 1),
            Err(E::SerialOutOfRange {
                serial: 1_000_000_000
            })
        );
        assert_eq!(
            LicenseId::new(RightsCertificate, "370781", 1, 1000),
            Err(E::InvalidVersion)
        );
        assert_eq!(mod37_36_check_char(""), None);
        assert_eq!(mod37_36_check_char("ab"), None);
    }
}
