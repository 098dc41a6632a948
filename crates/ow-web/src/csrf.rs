//! Cross-site request forgery protection with synchronizer tokens.
//!
//! The CSRF token of a session is derived from the session token with keyed BLAKE3
//! ([`csrf_token_for`]), so nothing extra is stored and it changes with every new session. The
//! session token never appears in a page; the CSRF token does, and cannot be turned back into the
//! session token.
//!
//! * **Every POST form** carries the token in a hidden field named [`CSRF_FIELD`]:
//!   `<input type="hidden" name="csrf" value="…">`. The handler checks it with [`check_csrf`]
//!   before doing anything else.
//! * **The JSON API** takes the same token in the [`CSRF_HEADER`] header (`X-CSRF-Token`); the
//!   page or client reads it from the page it loaded (or from the login response).
//!
//! The session cookie is also `SameSite=Strict`, which stops most cross-site requests on its
//! own; the token covers older browsers and same-site attackers. Forms used before there is a
//! session (the login form) cannot carry a session-derived token: check [`origin_allowed`] for
//! them.

use axum::http::HeaderMap;
use axum::http::header::{ORIGIN, REFERER};

use crate::token::constant_time_eq;

/// Name of the hidden form field carrying the token.
pub const CSRF_FIELD: &str = "csrf";
/// Name of the API request header carrying the token.
pub const CSRF_HEADER: &str = "X-CSRF-Token";

/// BLAKE3 key-derivation context: fixed, globally unique, never reused for anything else.
const CONTEXT: &str = "OneWindow ow-web 2025 CSRF synchronizer token v1";

/// Why a submitted CSRF token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CsrfError {
    /// No token was submitted (or there is no session).
    #[error(
        "the form carries no CSRF token (or there is no session); \
         reload the page and submit the form again"
    )]
    Missing,
    /// The token does not belong to this session.
    #[error(
        "the form's CSRF token does not match this session (the page is outdated or came from \
         another site); reload the page and submit the form again"
    )]
    Mismatch,
    /// The request came from another site (pre-session forms).
    #[error("the request came from another site; open the page on this site and submit it there")]
    CrossOrigin,
}

impl CsrfError {
    /// A short Chinese message for the user.
    pub fn message_zh(&self) -> String {
        match self {
            Self::Missing | Self::Mismatch => {
                "页面已过期或来源无法确认，请刷新页面后重新提交".into()
            }
            Self::CrossOrigin => "请求来自其他网站，请在本网站页面中重新操作".into(),
        }
    }
}

/// The CSRF token for the session whose (clear) token is `session_token`: 32 bytes of keyed
/// BLAKE3, base64url without padding.
pub fn csrf_token_for(session_token: &str) -> String {
    use base64::Engine as _;
    let key = blake3::derive_key(CONTEXT, session_token.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

/// Checks a submitted CSRF token against the session, in constant time.
///
/// `session_token` is the clear token from the cookie (`None` or empty: no session);
/// `submitted` is the form field or header value (`None` or empty: missing).
pub fn check_csrf(session_token: Option<&str>, submitted: Option<&str>) -> Result<(), CsrfError> {
    let (Some(session), Some(submitted)) = (session_token, submitted) else {
        return Err(CsrfError::Missing);
    };
    let submitted = submitted.trim();
    if session.is_empty() || submitted.is_empty() {
        return Err(CsrfError::Missing);
    }
    if constant_time_eq(csrf_token_for(session), submitted) {
        Ok(())
    } else {
        Err(CsrfError::Mismatch)
    }
}

/// The token in the API header [`CSRF_HEADER`], if present and readable.
pub fn header_token(headers: &HeaderMap) -> Option<&str> {
    headers.get(CSRF_HEADER)?.to_str().ok()
}

/// For forms without a session (login, registration): whether the request comes from
/// `expected_origin` (such as `https://www.example.gov.cn`, no trailing slash).
///
/// Uses the `Origin` header, else the `Sec-Fetch-Site` header, else the `Referer`; a request
/// with none of them (old browsers, some privacy settings) is allowed, because `SameSite=Strict`
/// and the post-login token still protect everything that matters.
pub fn origin_allowed(headers: &HeaderMap, expected_origin: &str) -> Result<(), CsrfError> {
    let expected = expected_origin.trim_end_matches('/');
    if let Some(origin) = headers.get(ORIGIN) {
        return match origin.to_str() {
            Ok(o) if o.eq_ignore_ascii_case(expected) => Ok(()),
            _ => Err(CsrfError::CrossOrigin),
        };
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        return match site.to_str() {
            Ok("same-origin" | "none") => Ok(()),
            _ => Err(CsrfError::CrossOrigin),
        };
    }
    if let Some(referer) = headers.get(REFERER) {
        let ok = referer.to_str().is_ok_and(|r| {
            r.get(..expected.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(expected))
                && matches!(
                    r.as_bytes().get(expected.len()),
                    None | Some(b'/' | b'?' | b'#')
                )
        });
        return if ok {
            Ok(())
        } else {
            Err(CsrfError::CrossOrigin)
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::new_token;
    use axum::http::HeaderValue;

    #[test]
    fn token_is_derived_and_stable() {
        let s = new_token();
        let t = csrf_token_for(&s);
        assert_eq!(t, csrf_token_for(&s));
        assert_eq!(t.len(), 43);
        assert_ne!(t, s);
        assert_ne!(t, crate::token::token_digest(&s));
        assert_ne!(t, csrf_token_for(&new_token()));
    }

    #[test]
    fn check_accepts_the_sessions_token() {
        let s = new_token();
        let t = csrf_token_for(&s);
        assert_eq!(check_csrf(Some(&s), Some(&t)), Ok(()));
        assert_eq!(check_csrf(Some(&s), Some(&format!(" {t}\n"))), Ok(()));
    }

    #[test]
    fn check_refuses_mismatch_and_missing() {
        let s = new_token();
        let other = csrf_token_for(&new_token());
        assert_eq!(check_csrf(Some(&s), Some(&other)), Err(CsrfError::Mismatch));
        assert_eq!(check_csrf(Some(&s), Some(&s)), Err(CsrfError::Mismatch));
        let t = csrf_token_for(&s);
        assert_eq!(
            check_csrf(Some(&s), Some(&t[..42])),
            Err(CsrfError::Mismatch)
        );
        assert_eq!(check_csrf(Some(&s), None), Err(CsrfError::Missing));
        assert_eq!(check_csrf(Some(&s), Some("")), Err(CsrfError::Missing));
        assert_eq!(check_csrf(None, Some(&t)), Err(CsrfError::Missing));
        assert_eq!(
            check_csrf(Some(""), Some(&csrf_token_for(""))),
            Err(CsrfError::Missing)
        );
        assert!(CsrfError::Mismatch.message_zh().contains("刷新页面"));
    }

    #[test]
    fn header_token_reads_the_api_header() {
        let mut h = HeaderMap::new();
        assert_eq!(header_token(&h), None);
        h.insert(CSRF_HEADER, HeaderValue::from_static("abc"));
        assert_eq!(header_token(&h), Some("abc"));
    }

    #[test]
    fn origin_checks() {
        let site = "https://bdc.example.gov.cn";
        let mut h = HeaderMap::new();
        assert_eq!(origin_allowed(&h, site), Ok(()));

        h.insert(
            ORIGIN,
            HeaderValue::from_static("https://bdc.example.gov.cn"),
        );
        assert_eq!(origin_allowed(&h, site), Ok(()));
        h.insert(ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert_eq!(origin_allowed(&h, site), Err(CsrfError::CrossOrigin));
        h.insert(ORIGIN, HeaderValue::from_static("null"));
        assert_eq!(origin_allowed(&h, site), Err(CsrfError::CrossOrigin));

        let mut h = HeaderMap::new();
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert_eq!(origin_allowed(&h, site), Err(CsrfError::CrossOrigin));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert_eq!(origin_allowed(&h, site), Ok(()));

        let mut h = HeaderMap::new();
        h.insert(
            REFERER,
            HeaderValue::from_static("https://bdc.example.gov.cn/login"),
        );
        assert_eq!(origin_allowed(&h, site), Ok(()));
        h.insert(
            REFERER,
            HeaderValue::from_static("https://bdc.example.gov.cn.evil.example/"),
        );
        assert_eq!(origin_allowed(&h, site), Err(CsrfError::CrossOrigin));
    }
}
