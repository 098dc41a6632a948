//! Random tokens and their stored digests.
//!
//! A session token is 32 random bytes, base64url without padding (43 characters). The browser
//! holds the token; the database holds only [`token_digest`] of it, so a leaked table gives no
//! usable session. Look a session up by the digest of the presented token.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq as _;

/// Length in characters of a token from [`new_token`].
pub const TOKEN_LEN: usize = 43;

/// 32 bytes from the operating system's random source.
///
/// # Panics
///
/// If the operating system's random number generator fails: no secure token can be made then.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
    bytes
}

/// A new random token: 32 bytes, base64url without padding.
///
/// # Panics
///
/// If the operating system's random number generator fails.
pub fn new_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// Whether `s` has the shape of a token from [`new_token`] (43 base64url characters).
pub fn looks_like_token(s: &str) -> bool {
    s.len() == TOKEN_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The value to store for a token: lower-case hex BLAKE3 of it (64 characters).
pub fn token_digest(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
}

/// Compares two byte strings in time independent of where they differ. Strings of different
/// lengths compare unequal at once (their lengths are not secret).
pub fn constant_time_eq(a: impl AsRef<[u8]>, b: impl AsRef<[u8]>) -> bool {
    a.as_ref().ct_eq(b.as_ref()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_url_safe() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), TOKEN_LEN);
        assert!(looks_like_token(&a));
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert!(!looks_like_token("short"));
        assert!(!looks_like_token(&format!("{}=", &a[..42])));
    }

    #[test]
    fn digest_is_hex_blake3_and_not_the_token() {
        let t = new_token();
        let d = token_digest(&t);
        assert_eq!(d.len(), 64);
        assert!(
            d.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(d, token_digest(&t));
        assert_ne!(d, token_digest(&new_token()));
        assert_eq!(
            token_digest(""),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
        assert!(constant_time_eq(b"", b""));
    }
}
