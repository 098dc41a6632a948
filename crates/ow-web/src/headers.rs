//! Security headers on every response.
//!
//! Add [`security_headers`] as the outermost middleware of each zone's router, or call
//! [`with_security_headers`]:
//!
//! ```
//! use axum::{Router, routing::get};
//!
//! let app: Router = ow_web::headers::with_security_headers(
//!     Router::new().route("/", get(|| async { "首页" })),
//! );
//! ```
//!
//! The headers allow only the site's own scripts, styles, images and forms, forbid framing,
//! send a referrer to the site itself only, and forbid caching — pages hold personal data. A
//! handler that sets one of these headers itself keeps its own value (for example the style
//! sheet's `Cache-Control`).

use axum::Router;
use axum::extract::Request;
use axum::http::header::HeaderName;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The Content-Security-Policy sent with every response.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'self'; img-src 'self' data:; \
     style-src 'self' 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// The Permissions-Policy sent with every response: no powerful features.
pub const PERMISSIONS_POLICY_VALUE: &str =
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), bluetooth=()";

/// The Referrer-Policy sent with every response: browsers send a referrer, and the `Origin` of
/// a form they post, to this site only, and nothing to other sites (pages hold application
/// numbers in their paths). `no-referrer` would make a browser post this site's own forms with
/// `Origin: null`, which an origin check cannot tell from a forged request
/// ([`crate::csrf::origin_allowed`]).
pub const REFERRER_POLICY_VALUE: &str = "same-origin";

/// Every header set, with its value.
pub const SECURITY_HEADERS: [(&str, &str); 8] = [
    ("content-security-policy", CONTENT_SECURITY_POLICY_VALUE),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", REFERRER_POLICY_VALUE),
    ("cache-control", "no-store"),
    ("permissions-policy", PERMISSIONS_POLICY_VALUE),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
];

/// Adds the [`SECURITY_HEADERS`] that the response does not already have.
pub fn apply_security_headers(headers: &mut HeaderMap) {
    for (name, value) in SECURITY_HEADERS {
        let name = HeaderName::from_static(name);
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
}

/// axum middleware (for `axum::middleware::from_fn`) adding the security headers.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    apply_security_headers(response.headers_mut());
    response
}

/// `router` with [`security_headers`] around all its routes (and its fallback).
pub fn with_security_headers<S>(router: Router<S>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.layer(axum::middleware::from_fn(security_headers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::header::{
        CACHE_CONTROL, CONTENT_SECURITY_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
    };
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use tower::ServiceExt as _;

    fn app() -> Router {
        with_security_headers(Router::new().route("/", get(|| async { "首页" })).route(
            "/cached",
            get(|| async { ([(CACHE_CONTROL, "public, max-age=60")], "css") }),
        ))
    }

    async fn get_path(path: &str) -> Response {
        app()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn every_header_is_set() {
        let resp = get_path("/").await;
        assert_eq!(resp.status(), StatusCode::OK);
        for (name, value) in SECURITY_HEADERS {
            assert_eq!(
                resp.headers().get(name).map(|v| v.to_str().unwrap()),
                Some(value),
                "{name}"
            );
        }
        assert_eq!(
            resp.headers()[CONTENT_SECURITY_POLICY],
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        );
    }

    /// Browsers must send this site's origin with the forms they post here (a `no-referrer`
    /// policy makes them send `Origin: null`), and nothing to other sites.
    #[tokio::test]
    async fn the_referrer_policy_keeps_the_origin_for_this_site_only() {
        let resp = get_path("/").await;
        assert_eq!(resp.headers()["referrer-policy"], "same-origin");
    }

    #[tokio::test]
    async fn not_found_responses_get_them_too() {
        let resp = get_path("/nope").await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert_eq!(resp.headers()[X_FRAME_OPTIONS], "DENY");
        assert_eq!(resp.headers()[CACHE_CONTROL], "no-store");
    }

    #[tokio::test]
    async fn a_handlers_own_value_is_kept() {
        let resp = get_path("/cached").await;
        assert_eq!(resp.headers()[CACHE_CONTROL], "public, max-age=60");
        assert_eq!(resp.headers()[X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
}
