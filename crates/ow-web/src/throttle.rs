//! Per-source throttling of the routes that cost the server work an attacker can ask for without
//! an account: login, registration, the TOTP step and certificate verification. Each spends an
//! argon2 computation (19 MiB, tens of milliseconds) or a database lookup, so without a limit
//! a flood from one address could use all memory and CPU; with it, the flood is answered `429`
//! before any of that work starts.
//!
//! * [`ClientAddressing`] decides who a request comes from: the TCP peer's address, or — only
//!   when the peer is one of the configured trusted proxies — the address the proxies recorded
//!   in `Forwarded` (RFC 7239) or `X-Forwarded-For`, read from the right and skipping trusted
//!   proxies, so a client cannot choose its own key by sending the header itself. IPv6 clients
//!   are keyed by their network prefix (`/64` by default: one subscriber gets a whole `/64`
//!   and could otherwise rotate through 2^64 addresses); IPv4-mapped IPv6 addresses count as
//!   IPv4.
//! * [`Throttle`] is one limit (requests per minute with a burst) per key, a GCRA rate limiter
//!   from the `governor` crate. Its memory is bounded: keys whose state is back to fresh are
//!   dropped every [`PRUNE_EVERY`] checks.
//! * [`Guards`] maps routes (method + path) to throttles, and [`Guards::layer`] applies them as
//!   an axum middleware: a throttled request gets `429 Too Many Requests` with `Retry-After`
//!   and a Chinese page (or `application/problem+json` under `/api/`) saying when to try again.
//!
//! The argon2 work itself is bounded too, by the password hasher's semaphore (see
//! [`crate::password::PasswordHasher::with_concurrency`]): a flood from many addresses queues
//! for it instead of allocating memory without limit.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use ipnet::IpNet;

use crate::page::{STYLE_CSS_PATH, escape_html};
use crate::problem::ApiProblem;

/// Checks between two prunings of keys whose state is back to fresh.
pub const PRUNE_EVERY: u64 = 1024;

/// The prefix IPv6 clients are keyed by unless configured otherwise.
pub const DEFAULT_IPV6_PREFIX: u8 = 64;

/// A configuration value the throttle cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ThrottleConfigError {
    /// A trusted proxy is neither an address nor a network.
    #[error(
        "trusted proxy {0:?} is not an IP address or network; write it like 10.0.0.5, \
         10.0.0.0/8 or fd00::/8"
    )]
    BadProxy(String),
    /// The IPv6 prefix length is out of range.
    #[error("the IPv6 prefix length {0} is out of range; use 1 to 128 (64 is usual)")]
    BadPrefix(u8),
    /// A limit of zero requests.
    #[error(
        "a throttle of 0 requests per minute or a burst of 0 would refuse everything; use 1 or more"
    )]
    ZeroLimit,
}

/// Who a request comes from, for throttling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddressing {
    trusted_proxies: Vec<IpNet>,
    ipv6_prefix: u8,
}

impl Default for ClientAddressing {
    /// No trusted proxies (the peer is the client); IPv6 keyed by `/64`.
    fn default() -> Self {
        Self {
            trusted_proxies: Vec::new(),
            ipv6_prefix: DEFAULT_IPV6_PREFIX,
        }
    }
}

impl ClientAddressing {
    /// Trusted proxies as written in the settings (`10.0.0.5`, `10.0.0.0/8`, `fd00::/8`) and the
    /// IPv6 prefix length clients are keyed by.
    pub fn parse(trusted_proxies: &[String], ipv6_prefix: u8) -> Result<Self, ThrottleConfigError> {
        if !(1..=128).contains(&ipv6_prefix) {
            return Err(ThrottleConfigError::BadPrefix(ipv6_prefix));
        }
        let trusted_proxies = trusted_proxies
            .iter()
            .map(|text| {
                let t = text.trim();
                t.parse::<IpNet>()
                    .or_else(|_| t.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| ThrottleConfigError::BadProxy(text.clone()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            trusted_proxies,
            ipv6_prefix,
        })
    }

    fn trusted(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        self.trusted_proxies.iter().any(|net| net.contains(&addr))
    }

    /// The client's address: `peer`, unless `peer` is a trusted proxy; then the right-most
    /// address in `Forwarded` (or, without it, `X-Forwarded-For`) that is not itself a trusted
    /// proxy. An entry that is not an address (`unknown`, an obfuscated name, garbage) stops
    /// the walk at the proxy that wrote it, which is then taken as the client.
    pub fn client_addr(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusted(peer) {
            return peer;
        }
        let chain = forwarded_chain(headers);
        let mut client = peer;
        for entry in chain.iter().rev() {
            match entry {
                Some(addr) => {
                    client = canonical(*addr);
                    if !self.trusted(client) {
                        return client;
                    }
                }
                None => return client,
            }
        }
        client
    }

    /// The key a client address is throttled under: an IPv4 address as it is, an IPv6 address
    /// cut to the configured prefix.
    pub fn key(&self, addr: IpAddr) -> IpAddr {
        match canonical(addr) {
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(v6) => {
                let bits = u128::from(v6);
                let prefix = u32::from(self.ipv6_prefix.min(128));
                let mask = if prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - prefix)
                };
                IpAddr::V6(Ipv6Addr::from(bits & mask))
            }
        }
    }
}

/// An IPv4-mapped IPv6 address as IPv4; anything else unchanged.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The addresses recorded by proxies, client first: from `Forwarded` (`for=` parameters) when
/// the request has one, else from `X-Forwarded-For`. `None` for an entry that is not an
/// address. Written here rather than taken from a crate: it is a few lines, and the RFC 7239
/// crates parse far more of the header than the one parameter used.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let forwarded: Vec<&str> = headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|line| line.split(','))
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                    .and_then(|(_, v)| parse_node(v.trim().trim_matches('"')))
            })
            .collect();
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|line| line.split(','))
        .map(|entry| parse_node(entry.trim()))
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:4711`.
fn parse_node(text: &str) -> Option<IpAddr> {
    if let Ok(addr) = text.parse::<IpAddr>() {
        return Some(addr);
    }
    if let Ok(sock) = text.parse::<SocketAddr>() {
        return Some(sock.ip());
    }
    text.strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .and_then(|t| t.parse::<IpAddr>().ok())
}

/// A request refused by a throttle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// How long until the next request from the same source would be allowed.
    pub retry_after: Duration,
}

impl Throttled {
    /// Whole seconds for `Retry-After` (at least 1).
    pub fn retry_after_secs(&self) -> u64 {
        let secs = self.retry_after.as_secs();
        let rounded = if self.retry_after.subsec_nanos() > 0 {
            secs + 1
        } else {
            secs
        };
        rounded.max(1)
    }

    /// The Chinese message: what happened and when to try again.
    pub fn message_zh(&self) -> String {
        let secs = self.retry_after_secs();
        let when = if secs < 60 {
            format!("{secs}秒")
        } else {
            format!("{}分钟", secs.div_ceil(60))
        };
        format!("您的操作过于频繁，为保护账号安全已暂时限制，请{when}后再试")
    }

    /// The response: `429` with `Retry-After`, as problem+json when `api`, else a Chinese page.
    pub fn response(&self, api: bool) -> Response {
        let mut response = if api {
            ApiProblem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                self.message_zh(),
            )
            .with_detail(format!(
                "too many requests from this address; retry after {} seconds",
                self.retry_after_secs()
            ))
            .into_response()
        } else {
            let html = format!(
                "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
                 <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
                 <title>操作过于频繁</title><link rel=\"stylesheet\" href=\"{STYLE_CSS_PATH}\">\
                 </head><body><main class=\"container\" id=\"main\"><h1>操作过于频繁</h1>\
                 <p class=\"notice warning\">{}</p><p><a href=\"/\">返回首页</a></p>\
                 </main></body></html>\n",
                escape_html(&self.message_zh())
            );
            let mut r = (StatusCode::TOO_MANY_REQUESTS, html).into_response();
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            r
        };
        if let Ok(v) = HeaderValue::from_str(&self.retry_after_secs().to_string()) {
            response.headers_mut().insert(RETRY_AFTER, v);
        }
        response
    }
}

/// A limit of requests per minute per key, with a burst.
pub struct Throttle<C: Clock = DefaultClock> {
    limiter: RateLimiter<IpAddr, DashMapStateStore<IpAddr>, C, NoOpMiddleware<C::Instant>>,
    clock: C,
    checks: AtomicU64,
}

impl std::fmt::Debug for Throttle<DefaultClock> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field("keys", &self.limiter.len())
            .finish_non_exhaustive()
    }
}

fn quota(per_minute: u32, burst: u32) -> Result<Quota, ThrottleConfigError> {
    let per_minute = NonZeroU32::new(per_minute).ok_or(ThrottleConfigError::ZeroLimit)?;
    let burst = NonZeroU32::new(burst).ok_or(ThrottleConfigError::ZeroLimit)?;
    Ok(Quota::per_minute(per_minute).allow_burst(burst))
}

impl Throttle<DefaultClock> {
    /// `per_minute` requests per minute per key on average, up to `burst` at once.
    pub fn per_minute(per_minute: u32, burst: u32) -> Result<Self, ThrottleConfigError> {
        Self::with_clock(per_minute, burst, DefaultClock::default())
    }
}

impl<C: Clock + Clone> Throttle<C> {
    /// The same on another clock (tests use `governor::clock::FakeRelativeClock`).
    pub fn with_clock(per_minute: u32, burst: u32, clock: C) -> Result<Self, ThrottleConfigError> {
        Ok(Self {
            limiter: RateLimiter::dashmap_with_clock(quota(per_minute, burst)?, clock.clone()),
            clock,
            checks: AtomicU64::new(0),
        })
    }

    /// Counts one request under `key`; `Err` when the key is over its limit.
    pub fn check(&self, key: IpAddr) -> Result<(), Throttled> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&key).map_err(|not_until| Throttled {
            retry_after: not_until.wait_time_from(self.clock.now()),
        })
    }

    /// Keys with state (for tests and the operator).
    pub fn keys(&self) -> usize {
        self.limiter.len()
    }
}

/// One throttled route.
#[derive(Debug)]
struct Guard {
    method: Method,
    path: &'static str,
    only_with_query: bool,
    throttle: Arc<Throttle>,
}

/// Routes and their throttles, applied by [`Guards::layer`].
#[derive(Debug, Default)]
pub struct Guards {
    addressing: ClientAddressing,
    guards: Vec<Guard>,
}

impl Guards {
    /// No guarded route yet; clients identified by `addressing`.
    pub fn new(addressing: ClientAddressing) -> Self {
        Self {
            addressing,
            guards: Vec::new(),
        }
    }

    /// Throttles `method path` (the exact path) with `throttle`. Routes may share a throttle
    /// (login and registration share one budget per source).
    pub fn guard(mut self, method: Method, path: &'static str, throttle: &Arc<Throttle>) -> Self {
        self.guards.push(Guard {
            method,
            path,
            only_with_query: false,
            throttle: throttle.clone(),
        });
        self
    }

    /// Like [`guard`](Self::guard), but only requests with a query string count (`GET /verify`
    /// shows the empty form freely and throttles the checks).
    pub fn guard_with_query(
        mut self,
        method: Method,
        path: &'static str,
        throttle: &Arc<Throttle>,
    ) -> Self {
        self.guards.push(Guard {
            method,
            path,
            only_with_query: true,
            throttle: throttle.clone(),
        });
        self
    }

    /// Checks a request; `Err` when its source is over the limit of its route.
    pub fn check(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        peer: Option<IpAddr>,
        headers: &HeaderMap,
    ) -> Result<(), Throttled> {
        let Some(guard) = self.guards.iter().find(|g| {
            g.method == *method
                && g.path == path
                && (!g.only_with_query || query.is_some_and(|q| !q.is_empty()))
        }) else {
            return Ok(());
        };
        // Without connection info every request shares one key: safe, if strict.
        let peer = peer.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let client = self.addressing.client_addr(peer, headers);
        guard.throttle.check(self.addressing.key(client))
    }

    /// The router with these guards in front of its routes. The server must be started with
    /// `into_make_service_with_connect_info::<SocketAddr>()` so the peer address is known.
    pub fn layer<S: Clone + Send + Sync + 'static>(self, router: Router<S>) -> Router<S> {
        router.layer(axum::middleware::from_fn_with_state(
            Arc::new(self),
            enforce,
        ))
    }
}

async fn enforce(State(guards): State<Arc<Guards>>, request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let uri = request.uri();
    match guards.check(
        request.method(),
        uri.path(),
        uri.query(),
        peer,
        request.headers(),
    ) {
        Ok(()) => next.run(request).await,
        Err(throttled) => throttled.response(uri.path().starts_with("/api/")),
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client() {
        let a = ClientAddressing::default();
        let spoof = headers(&[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8")]);
        assert_eq!(a.client_addr(ip("203.0.113.9"), &spoof), ip("203.0.113.9"));
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_address_counts() {
        let a = ClientAddressing::parse(&["10.0.0.0/8".into(), "192.0.2.1".into()], 64).unwrap();
        let peer = ip("10.1.1.1");
        // The client sent its own X-Forwarded-For; the proxy appended the real address.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7")]);
        assert_eq!(a.client_addr(peer, &h), ip("198.51.100.7"));
        // Two trusted proxies in a row.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 192.0.2.1")]);
        assert_eq!(a.client_addr(peer, &h), ip("198.51.100.7"));
        // Forwarded wins over X-Forwarded-For, with quotes, ports and IPv6 brackets.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            (
                "forwarded",
                "for=6.6.6.6, for=\"[2001:db8:cafe::17]:4711\";proto=https",
            ),
        ]);
        assert_eq!(a.client_addr(peer, &h), ip("2001:db8:cafe::17"));
        let h = headers(&[("forwarded", "for=198.51.100.7:5000;by=10.0.0.1")]);
        assert_eq!(a.client_addr(peer, &h), ip("198.51.100.7"));
        // An unknown hop stops the walk at the proxy that wrote it.
        let h = headers(&[("forwarded", "for=6.6.6.6, for=unknown")]);
        assert_eq!(a.client_addr(peer, &h), peer);
        let h = headers(&[("x-forwarded-for", "garbage")]);
        assert_eq!(a.client_addr(peer, &h), peer);
        // No header: the proxy itself.
        assert_eq!(a.client_addr(peer, &HeaderMap::new()), peer);
        // An untrusted peer's header is ignored.
        let h = headers(&[("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(a.client_addr(ip("203.0.113.9"), &h), ip("203.0.113.9"));
    }

    #[test]
    fn ipv6_is_keyed_by_prefix_and_mapped_ipv4_as_ipv4() {
        let a = ClientAddressing::default();
        assert_eq!(a.key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(a.key(ip("2001:db8:1:2:ffff::9")), ip("2001:db8:1:2::"));
        assert_ne!(a.key(ip("2001:db8:1:3::1")), a.key(ip("2001:db8:1:2::1")));
        assert_eq!(a.key(ip("::ffff:198.51.100.7")), ip("198.51.100.7"));
        assert_eq!(a.key(ip("198.51.100.7")), ip("198.51.100.7"));
        let a48 = ClientAddressing::parse(&[], 48).unwrap();
        assert_eq!(a48.key(ip("2001:db8:1:2::1")), ip("2001:db8:1::"));
        let a128 = ClientAddressing::parse(&[], 128).unwrap();
        assert_eq!(a128.key(ip("2001:db8::1")), ip("2001:db8::1"));
        // A trusted proxy given as an IPv4 address matches its mapped form too.
        let p = ClientAddressing::parse(&["10.0.0.1".into()], 64).unwrap();
        let h = headers(&[("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(p.client_addr(ip("::ffff:10.0.0.1"), &h), ip("198.51.100.7"));
    }

    #[test]
    fn bad_settings_are_refused_with_the_value() {
        assert_eq!(
            ClientAddressing::parse(&["10.0.0.0/33".into()], 64),
            Err(ThrottleConfigError::BadProxy("10.0.0.0/33".into()))
        );
        assert_eq!(
            ClientAddressing::parse(&[], 0),
            Err(ThrottleConfigError::BadPrefix(0))
        );
        assert!(matches!(
            Throttle::per_minute(0, 5),
            Err(ThrottleConfigError::ZeroLimit)
        ));
    }

    #[test]
    fn a_burst_then_one_per_period_per_key() {
        let clock = FakeRelativeClock::default();
        let t = Throttle::with_clock(6, 3, clock.clone()).unwrap();
        let a = ip("198.51.100.7");
        for _ in 0..3 {
            assert_eq!(t.check(a), Ok(()));
        }
        let refused = t.check(a).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(10));
        assert_eq!(refused.retry_after_secs(), 10);
        assert!(
            refused.message_zh().contains("10秒后再试"),
            "{}",
            refused.message_zh()
        );
        // Another source is not affected.
        assert_eq!(t.check(ip("198.51.100.8")), Ok(()));
        clock.advance(Duration::from_secs(10));
        assert_eq!(t.check(a), Ok(()));
        assert!(t.check(a).is_err());
    }

    #[test]
    fn idle_keys_are_pruned() {
        let clock = FakeRelativeClock::default();
        let t = Throttle::with_clock(60, 1, clock.clone()).unwrap();
        for i in 0..PRUNE_EVERY - 1 {
            let key = IpAddr::from(Ipv6Addr::from(u128::from(i) << 64));
            let _ = t.check(key);
        }
        assert_eq!(t.keys(), usize::try_from(PRUNE_EVERY - 1).unwrap());
        clock.advance(Duration::from_secs(120));
        let _ = t.check(ip("198.51.100.7"));
        assert!(t.keys() <= 1, "{}", t.keys());
    }

    #[test]
    fn responses_say_when_to_retry() {
        let t = Throttled {
            retry_after: Duration::from_millis(90_500),
        };
        assert_eq!(t.retry_after_secs(), 91);
        assert!(t.message_zh().contains("2分钟后再试"), "{}", t.message_zh());
        let r = t.response(false);
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[RETRY_AFTER], "91");
        assert!(
            r.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let r = t.response(true);
        assert_eq!(r.headers()[CONTENT_TYPE], crate::problem::PROBLEM_JSON);
        assert_eq!(r.headers()[RETRY_AFTER], "91");
    }

    #[test]
    fn guards_pick_routes_by_method_path_and_query() {
        let login = Arc::new(Throttle::per_minute(1, 1).unwrap());
        let verify = Arc::new(Throttle::per_minute(1, 1).unwrap());
        let g = Guards::new(ClientAddressing::default())
            .guard(Method::POST, "/login", &login)
            .guard_with_query(Method::GET, "/verify", &verify);
        let h = HeaderMap::new();
        let peer = Some(ip("198.51.100.7"));
        assert!(g.check(&Method::POST, "/login", None, peer, &h).is_ok());
        assert!(g.check(&Method::POST, "/login", None, peer, &h).is_err());
        // The login form itself and other routes are never throttled.
        for _ in 0..3 {
            assert!(g.check(&Method::GET, "/login", None, peer, &h).is_ok());
            assert!(g.check(&Method::POST, "/logout", None, peer, &h).is_ok());
            assert!(g.check(&Method::GET, "/verify", None, peer, &h).is_ok());
        }
        assert!(
            g.check(&Method::GET, "/verify", Some("cert=x"), peer, &h)
                .is_ok()
        );
        assert!(
            g.check(&Method::GET, "/verify", Some("cert=x"), peer, &h)
                .is_err()
        );
    }
}
