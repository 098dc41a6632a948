//! The session cookie.
//!
//! The cookie carries the token from [`crate::token::new_token`]; the server stores
//! [`crate::token::token_digest`] of it. It is always `HttpOnly` (no script can read it),
//! `SameSite=Strict` (no other site's page can send it) and `Path=/`; `Secure` when the zone is
//! served over HTTPS, which it is everywhere but a developer's machine.
//!
//! Over HTTPS, name the cookie with the `__Host-` prefix (`__Host-ow_session`): the browser then
//! refuses it unless it is `Secure`, has `Path=/` and no `Domain`, so a sibling sub-domain cannot
//! plant one. Over plain HTTP (local development) use a name without the prefix.

use std::time::Duration;

use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use axum_extra::extract::cookie::CookieJar;

use crate::token::looks_like_token;

/// How the session cookie is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCookie {
    /// Cookie name, such as `__Host-ow_session` (HTTPS) or `ow_session` (local HTTP).
    pub name: &'static str,
    /// Whether to add `Secure` (browser sends it over HTTPS only).
    pub secure: bool,
    /// Lifetime in the browser (`Max-Age`); the server enforces its own expiry too.
    pub max_age: Duration,
}

impl SessionCookie {
    /// The `Set-Cookie` value that hands `token` to the browser.
    ///
    /// `token` should come from [`crate::token::new_token`]; any character that is not allowed
    /// in a cookie value is dropped.
    pub fn set_cookie_header(&self, token: &str) -> HeaderValue {
        let value: String = token
            .chars()
            .filter(|c| c.is_ascii_graphic() && !matches!(c, '"' | ',' | ';' | '\\'))
            .collect();
        self.header(&value, self.max_age.as_secs())
    }

    /// The `Set-Cookie` value that removes the cookie (on logout).
    pub fn clear_cookie_header(&self) -> HeaderValue {
        self.header("", 0)
    }

    /// `headers` with a `Set-Cookie` for `token` appended (keeps other `Set-Cookie`s).
    pub fn append_set_cookie(&self, headers: &mut HeaderMap, token: &str) {
        headers.append(SET_COOKIE, self.set_cookie_header(token));
    }

    fn header(&self, value: &str, max_age_secs: u64) -> HeaderValue {
        let name: String = self
            .name
            .chars()
            .filter(|c| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?={}".contains(*c))
            .collect();
        let mut cookie =
            format!("{name}={value}; Max-Age={max_age_secs}; Path=/; HttpOnly; SameSite=Strict");
        if self.secure {
            cookie.push_str("; Secure");
        }
        // Only visible ASCII and spaces were put in, so this always succeeds.
        HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The session token presented in the request's `Cookie` header(s), if any has the shape of
    /// a token. A malformed value is treated as no session.
    pub fn read_token(&self, headers: &HeaderMap) -> Option<String> {
        read_token(headers, self.name)
    }
}

/// The value of cookie `name` in `headers` when it has the shape of a session token
/// (43 base64url characters), else `None`.
pub fn read_token(headers: &HeaderMap, name: &str) -> Option<String> {
    if !headers.contains_key(COOKIE) {
        return None;
    }
    let jar = CookieJar::from_headers(headers);
    let value = jar.get(name)?.value();
    looks_like_token(value).then(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::new_token;

    fn cookie(secure: bool) -> SessionCookie {
        SessionCookie {
            name: if secure {
                "__Host-ow_session"
            } else {
                "ow_session"
            },
            secure,
            max_age: Duration::from_secs(8 * 3600),
        }
    }

    #[test]
    fn set_cookie_has_all_attributes() {
        let t = new_token();
        let v = cookie(true).set_cookie_header(&t);
        let s = v.to_str().unwrap();
        assert!(s.starts_with(&format!("__Host-ow_session={t}; ")), "{s}");
        for attr in [
            "HttpOnly",
            "SameSite=Strict",
            "Path=/",
            "Secure",
            "Max-Age=28800",
        ] {
            assert!(s.split("; ").any(|a| a == attr), "{attr} missing in {s}");
        }
        let s = cookie(false).set_cookie_header(&t);
        assert!(!s.to_str().unwrap().contains("Secure"));
    }

    #[test]
    fn clear_cookie_expires_it() {
        let v = cookie(true).clear_cookie_header();
        let s = v.to_str().unwrap();
        assert!(s.starts_with("__Host-ow_session=; "), "{s}");
        assert!(s.contains("Max-Age=0"));
    }

    #[test]
    fn read_token_round_trip() {
        let c = cookie(false);
        let t = new_token();
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_str(&format!("theme=dark; ow_session={t}; x=1")).unwrap(),
        );
        assert_eq!(c.read_token(&h), Some(t.clone()));
        assert_eq!(read_token(&h, "other"), None);

        // Several Cookie headers (HTTP/2 splits them).
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=b"));
        h.append(
            COOKIE,
            HeaderValue::from_str(&format!("ow_session={t}")).unwrap(),
        );
        assert_eq!(c.read_token(&h), Some(t));
    }

    #[test]
    fn read_token_ignores_garbage() {
        let c = cookie(false);
        assert_eq!(c.read_token(&HeaderMap::new()), None);
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_static("ow_session=../../etc/passwd"),
        );
        assert_eq!(c.read_token(&h), None);
        h.insert(COOKIE, HeaderValue::from_static("ow_session="));
        assert_eq!(c.read_token(&h), None);
        h.insert(COOKIE, HeaderValue::from_static(";;;==;"));
        assert_eq!(c.read_token(&h), None);
    }

    #[test]
    fn cookie_value_cannot_inject_attributes() {
        let v = cookie(false).set_cookie_header("abc; Domain=evil.example");
        let s = v.to_str().unwrap();
        assert!(s.starts_with("ow_session=abcDomain=evil.example; "), "{s}");
        assert!(!s.contains("; Domain"));
    }
}
