//! Time-based one-time passwords (RFC 6238) for a second login factor.
//!
//! The parameters are the ones every authenticator app uses: HMAC-SHA-1, 6 digits, 30-second
//! steps. A code is accepted one step early or late (±30 s) for clock drift and typing time.
//!
//! Time is always a parameter (Unix seconds), so tests and the demo control it. RFC 6238 §5.2
//! says a code must be accepted only once: [`TotpSecret::verify_step`] returns the step that
//! matched; store it with the account and refuse a code whose step is not later than the stored
//! one.
//!
//! The secret is as sensitive as a password: store it encrypted if the zone can, never log it,
//! and show it (as [`TotpSecret::to_base32`] or [`TotpSecret::otpauth_uri`] in a QR code) only
//! on the enrolment page.

use std::fmt;

use totp_rs::{Algorithm, Builder, Totp};

/// Digits in a code.
pub const DIGITS: u8 = 6;
/// Seconds in a step.
pub const STEP_SECONDS: u64 = 30;
/// Bytes of a generated secret (160 bits, as RFC 4226 recommends).
pub const SECRET_BYTES: usize = 20;
/// Fewest bytes accepted in a secret (128 bits, RFC 4226's minimum).
pub const MIN_SECRET_BYTES: usize = 16;

/// Why a TOTP secret or enrolment URI could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TotpError {
    /// The text is not base32.
    #[error(
        "the authenticator key is not valid base32 (letters A-Z and digits 2-7); \
         copy it again from the enrolment page"
    )]
    InvalidBase32,
    /// The secret is too short.
    #[error(
        "the authenticator key has {bits} bits but needs at least 128; \
         generate a new key"
    )]
    TooShort {
        /// Bits in the secret given.
        bits: usize,
    },
    /// The issuer or account name cannot go into an otpauth URI.
    #[error(
        "the issuer or account name for the authenticator is empty or contains `:`; \
         use a name without a colon"
    )]
    InvalidLabel,
}

impl TotpError {
    /// A short Chinese message for the user.
    pub fn message_zh(&self) -> String {
        match self {
            Self::InvalidBase32 => "动态口令密钥格式不正确，请重新复制绑定页面上的密钥".into(),
            Self::TooShort { .. } => "动态口令密钥长度不足，请重新生成密钥".into(),
            Self::InvalidLabel => "动态口令的签发方或账号名称不能为空，也不能包含冒号".into(),
        }
    }
}

/// The shared secret of an authenticator app enrolment.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret {
    bytes: Vec<u8>,
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret([redacted])")
    }
}

impl TotpSecret {
    /// A new random 160-bit secret.
    ///
    /// # Panics
    ///
    /// If the operating system's random number generator fails.
    pub fn generate() -> Self {
        Self {
            bytes: crate::token::random_bytes::<SECRET_BYTES>().to_vec(),
        }
    }

    /// A secret from raw bytes (at least 16).
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Result<Self, TotpError> {
        let bytes = bytes.into();
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(TotpError::TooShort {
                bits: bytes.len() * 8,
            });
        }
        Ok(Self { bytes })
    }

    /// A secret from its base32 form (RFC 4648). Spaces, dashes and `=` padding are ignored
    /// and lower case is accepted, as people type keys in groups.
    pub fn from_base32(text: &str) -> Result<Self, TotpError> {
        let cleaned: String = text
            .chars()
            .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '='))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if cleaned.is_empty() {
            return Err(TotpError::InvalidBase32);
        }
        let secret =
            totp_rs::Secret::try_from_base32(&cleaned).map_err(|_| TotpError::InvalidBase32)?;
        Self::from_bytes(secret.as_bytes().to_vec())
    }

    /// The base32 form without padding, as shown for manual entry in an app.
    pub fn to_base32(&self) -> String {
        totp_rs::Secret::from(self.bytes.clone()).to_base32()
    }

    /// The raw bytes (for encrypted storage).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn builder(&self) -> Builder {
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(DIGITS)
            .with_skew(1)
            .with_step_duration(STEP_SECONDS)
            .with_secret(self.bytes.clone())
    }

    fn totp(&self) -> Totp {
        // Digits, step and secret length are valid by construction.
        self.builder().build_noncompliant()
    }

    /// The `otpauth://totp/…` URI that an authenticator app reads from a QR code, such as
    /// `otpauth://totp/不动产登记:zhangsan?secret=…&issuer=不动产登记` (percent-encoded).
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> Result<String, TotpError> {
        if issuer.trim().is_empty() || account.trim().is_empty() {
            return Err(TotpError::InvalidLabel);
        }
        self.builder()
            .with_issuer(Some(issuer))
            .with_account_name(account)
            .build()
            .and_then(|t| t.to_url())
            .map_err(|_| TotpError::InvalidLabel)
    }

    /// The code for the step containing `now_unix` (for tests and the demo).
    pub fn code_at(&self, now_unix: u64) -> String {
        self.totp().generate(now_unix).to_string()
    }

    /// Whether `code` is valid at `now_unix`, allowing one step before or after. Spaces in the
    /// code are ignored.
    pub fn verify(&self, code: &str, now_unix: u64) -> bool {
        self.verify_step(code, now_unix).is_some()
    }

    /// The step (`unix time / 30`) that `code` matches at `now_unix`, allowing one step before
    /// or after; `None` when it matches none. Store the step and refuse a later code whose step
    /// is not greater, so a code is used only once.
    pub fn verify_step(&self, code: &str, now_unix: u64) -> Option<u64> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != usize::from(DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        self.totp().check(&code, now_unix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(b"12345678901234567890".to_vec()).unwrap()
    }

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 Appendix B, SHA-1, 8-digit codes truncated to the last 6 digits.
        let s = rfc_secret();
        for (t, code8) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(s.code_at(t), &code8[2..], "T = {t}");
            assert!(s.verify(&code8[2..], t));
        }
        assert_eq!(s.code_at(59), "287082");
    }

    #[test]
    fn skew_of_one_step_each_way() {
        let s = rfc_secret();
        let code = s.code_at(1_111_111_109); // step 37037036
        assert!(s.verify(&code, 1_111_111_109));
        assert!(s.verify(&code, 1_111_111_109 - 30));
        assert!(s.verify(&code, 1_111_111_109 + 30));
        assert!(!s.verify(&code, 1_111_111_109 + 61));
        assert!(!s.verify(&code, 1_111_111_109 - 61));
        assert_eq!(
            s.verify_step(&code, 1_111_111_109 + 30),
            Some(1_111_111_109 / 30)
        );
    }

    #[test]
    fn malformed_codes_are_refused() {
        let s = rfc_secret();
        assert!(s.verify("287 082", 59));
        for bad in [
            "",
            "28708",
            "2870821",
            "+87082",
            "28708a",
            "２８７０８２",
            "94287082",
        ] {
            assert!(!s.verify(bad, 59), "{bad}");
        }
    }

    #[test]
    fn base32_round_trip() {
        let s = rfc_secret();
        let b32 = s.to_base32();
        assert_eq!(b32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(TotpSecret::from_base32(&b32).unwrap(), s);
        assert_eq!(
            TotpSecret::from_base32("gezd gnbv gy3t qojq gezd gnbv gy3t qojq").unwrap(),
            s
        );
        assert_eq!(
            TotpSecret::from_base32("not base32!"),
            Err(TotpError::InvalidBase32)
        );
        assert_eq!(TotpSecret::from_base32(""), Err(TotpError::InvalidBase32));
        assert_eq!(
            TotpSecret::from_base32("GEZDGNBV"),
            Err(TotpError::TooShort { bits: 40 })
        );
    }

    #[test]
    fn generated_secrets_are_random_and_usable() {
        let a = TotpSecret::generate();
        let b = TotpSecret::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_bytes().len(), 20);
        assert_eq!(a.to_base32().len(), 32);
        let now = 1_700_000_000;
        assert!(a.verify(&a.code_at(now), now));
        assert_eq!(format!("{a:?}"), "TotpSecret([redacted])");
    }

    #[test]
    fn otpauth_uri() {
        let s = rfc_secret();
        let uri = s.otpauth_uri("OneWindow", "zhangsan").unwrap();
        assert_eq!(
            uri,
            "otpauth://totp/OneWindow:zhangsan?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=OneWindow"
        );
        let uri = s.otpauth_uri("不动产登记", "张 三").unwrap();
        assert!(uri.starts_with("otpauth://totp/%E4%B8%8D"), "{uri}");
        assert!(!uri.contains(' '));
        assert_eq!(s.otpauth_uri("a:b", "x"), Err(TotpError::InvalidLabel));
        assert_eq!(s.otpauth_uri("a", "x:y"), Err(TotpError::InvalidLabel));
        assert_eq!(s.otpauth_uri("", "x"), Err(TotpError::InvalidLabel));
    }
}
