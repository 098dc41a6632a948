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
//! session (login, registration) cannot carry a session-derived token: they carry one derived
//! from a pre-session secret in its own `SameSite=Strict` cookie.
//!
//! Before the token, a form POST is checked with [`origin_allowed`] (OWASP: `Origin`, then
//! `Referer`, then the token). Pages are served with `Referrer-Policy: same-origin`
//! ([`crate::headers`]), so a browser sends this site's origin with every form it posts here; a browser that sends `Origin: null` or nothing at all is left to
//! the token, never refused for it.

use axum::http::HeaderMap;
use axum::http::header::{HOST, ORIGIN, REFERER};

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

/// Whether a form POST comes from this site, by the browser's own headers — the "verifying
/// origin with standard headers" step of the OWASP CSRF guidance. Call it before the token check
/// ([`check_csrf`]); it never replaces it.
///
/// This site's origin is `expected_origin` (the configured public URL, such as
/// `https://bdc.example.gov.cn`) or the origin the browser itself addressed: the public URL's
/// scheme with the request's `Host` (a person who opened `http://localhost:8080` when the public
/// URL says `http://127.0.0.1:8080` is still on this site; an attacker cannot choose the `Host`
/// a victim's browser sends).
///
/// In order:
/// 1. `Sec-Fetch-Site: cross-site` is refused: browsers set it themselves.
/// 2. An `Origin` header decides, unless it is `null`: it must be this site's origin.
/// 3. Else a `Referer` header decides: its origin must be this site's.
/// 4. Else (`Origin: null` with no `Referer` — sent by a browser on a page whose referrer policy
///    is `no-referrer` — or neither header, as from old browsers and some privacy settings) the
///    request is allowed here and the token alone decides. `null` is never taken as a match, but
///    never as a refusal either: legitimate browsers send it, and the token, bound to a
///    `SameSite=Strict` cookie, cannot be forged from another site.
pub fn origin_allowed(headers: &HeaderMap, expected_origin: &str) -> Result<(), CsrfError> {
    let site = SiteOrigins::new(headers, expected_origin);
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return Err(CsrfError::CrossOrigin);
    }
    match headers.get(ORIGIN).map(|v| v.to_str()) {
        Some(Ok(origin)) if origin.trim() == "null" => {}
        Some(Ok(origin)) => return site.check(origin),
        Some(Err(_)) => return Err(CsrfError::CrossOrigin),
        None => {}
    }
    match headers.get(REFERER).map(|v| v.to_str()) {
        Some(Ok(referer)) => site.check(referer),
        Some(Err(_)) => Err(CsrfError::CrossOrigin),
        None => Ok(()),
    }
}

/// The origins a request may legitimately come from: the public URL's, and the one the browser
/// addressed (the public URL's scheme with the `Host` header).
struct SiteOrigins {
    public: Option<reqwest::Url>,
    addressed: Option<reqwest::Url>,
}

impl SiteOrigins {
    fn new(headers: &HeaderMap, expected_origin: &str) -> SiteOrigins {
        let public = reqwest::Url::parse(expected_origin.trim()).ok();
        let addressed = match (&public, headers.get(HOST).and_then(|h| h.to_str().ok())) {
            (Some(public), Some(host)) if !host.contains(['/', '@', '?', '#', '\\']) => {
                reqwest::Url::parse(&format!("{}://{host}/", public.scheme())).ok()
            }
            _ => None,
        };
        SiteOrigins { public, addressed }
    }

    /// `url` (an `Origin` or a `Referer`) has this site's origin: scheme, host and port.
    fn check(&self, url: &str) -> Result<(), CsrfError> {
        let Ok(url) = reqwest::Url::parse(url.trim()) else {
            return Err(CsrfError::CrossOrigin);
        };
        let origin = url.origin();
        if !origin.is_tuple() {
            return Err(CsrfError::CrossOrigin);
        }
        let matches =
            |site: &Option<reqwest::Url>| site.as_ref().is_some_and(|s| s.origin() == origin);
        if matches(&self.public) || matches(&self.addressed) {
            Ok(())
        } else {
            Err(CsrfError::CrossOrigin)
        }
    }
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

    const SITE: &str = "https://bdc.example.gov.cn";

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(*name, HeaderValue::from_static(value));
        }
        h
    }

    #[test]
    fn the_sites_own_origin_is_allowed() {
        let h = headers(&[("origin", "https://bdc.example.gov.cn")]);
        assert_eq!(origin_allowed(&h, SITE), Ok(()));
        // The default port, a trailing slash on the setting, upper case: the same origin.
        let h = headers(&[("origin", "https://BDC.example.gov.cn:443")]);
        assert_eq!(origin_allowed(&h, "https://bdc.example.gov.cn/"), Ok(()));
    }

    #[test]
    fn another_origin_is_refused_whatever_else_is_sent() {
        for origin in [
            "https://evil.example",
            "http://bdc.example.gov.cn",
            "https://bdc.example.gov.cn:8443",
            "https://bdc.example.gov.cn.evil.example",
            "not a url",
            "",
        ] {
            let mut h = HeaderMap::new();
            h.insert(ORIGIN, HeaderValue::from_str(origin).unwrap());
            // A same-site Referer does not rescue a foreign Origin: the Origin decides.
            h.insert(
                REFERER,
                HeaderValue::from_static("https://bdc.example.gov.cn/login"),
            );
            assert_eq!(
                origin_allowed(&h, SITE),
                Err(CsrfError::CrossOrigin),
                "{origin}"
            );
        }
    }

    /// A browser on a page with `Referrer-Policy: no-referrer` posts its forms with `Origin: null`
    /// and no `Referer`: that is a legitimate browser, and the token decides.
    #[test]
    fn a_null_origin_without_referer_is_left_to_the_token() {
        let h = headers(&[("origin", "null")]);
        assert_eq!(origin_allowed(&h, SITE), Ok(()));
        let h = headers(&[("origin", "null"), ("sec-fetch-site", "same-origin")]);
        assert_eq!(origin_allowed(&h, SITE), Ok(()));
    }

    #[test]
    fn a_null_origin_with_a_referer_is_judged_by_the_referer() {
        let h = headers(&[
            ("origin", "null"),
            ("referer", "https://bdc.example.gov.cn/register"),
        ]);
        assert_eq!(origin_allowed(&h, SITE), Ok(()));
        let h = headers(&[("origin", "null"), ("referer", "https://evil.example/page")]);
        assert_eq!(origin_allowed(&h, SITE), Err(CsrfError::CrossOrigin));
    }

    #[test]
    fn without_origin_the_referer_decides() {
        let h = headers(&[("referer", "https://bdc.example.gov.cn/login?next=/apply")]);
        assert_eq!(origin_allowed(&h, SITE), Ok(()));
        for referer in [
            "https://bdc.example.gov.cn.evil.example/",
            "https://bdc.example.gov.cn@evil.example/",
            "https://evil.example/?https://bdc.example.gov.cn/",
            "http://bdc.example.gov.cn/login",
            "/login",
        ] {
            let mut h = HeaderMap::new();
            h.insert(REFERER, HeaderValue::from_str(referer).unwrap());
            assert_eq!(
                origin_allowed(&h, SITE),
                Err(CsrfError::CrossOrigin),
                "{referer}"
            );
        }
    }

    #[test]
    fn neither_header_is_left_to_the_token() {
        assert_eq!(origin_allowed(&HeaderMap::new(), SITE), Ok(()));
    }

    #[test]
    fn a_cross_site_fetch_is_refused() {
        let h = headers(&[("sec-fetch-site", "cross-site")]);
        assert_eq!(origin_allowed(&h, SITE), Err(CsrfError::CrossOrigin));
        let h = headers(&[("origin", "null"), ("sec-fetch-site", "cross-site")]);
        assert_eq!(origin_allowed(&h, SITE), Err(CsrfError::CrossOrigin));
    }

    /// The public URL says 127.0.0.1 but the person typed localhost: the browser's origin is the
    /// host it addressed, so the form is this site's. Another host or port is not.
    #[test]
    fn the_origin_the_browser_addressed_is_this_site() {
        let site = "http://127.0.0.1:8080";
        let h = headers(&[
            ("host", "localhost:8080"),
            ("origin", "http://localhost:8080"),
        ]);
        assert_eq!(origin_allowed(&h, site), Ok(()));
        let h = headers(&[
            ("host", "localhost:8080"),
            ("referer", "http://localhost:8080/login"),
        ]);
        assert_eq!(origin_allowed(&h, site), Ok(()));
        let h = headers(&[
            ("host", "localhost:8080"),
            ("origin", "http://localhost:9090"),
        ]);
        assert_eq!(origin_allowed(&h, site), Err(CsrfError::CrossOrigin));
        let h = headers(&[
            ("host", "localhost:8080"),
            ("origin", "https://localhost:8080"),
        ]);
        assert_eq!(origin_allowed(&h, site), Err(CsrfError::CrossOrigin));
        // A Host header that is not a host cannot widen what matches.
        let h = headers(&[
            ("host", "evil.example/x@localhost:8080"),
            ("origin", "http://evil.example"),
        ]);
        assert_eq!(origin_allowed(&h, site), Err(CsrfError::CrossOrigin));
    }
}
