//! Web pieces shared by the zone servers: passwords, sessions, CSRF, lockout, TOTP, upload
//! sniffing, security headers.
//!
//! Both web zones — the citizen portal `ow-internet` and the registrar back office
//! `ow-extranet` — are axum servers rendering Chinese server-side HTML that works without
//! JavaScript, plus a JSON API. This crate holds what they share. It has no database: the zone
//! crates own their tables and call these pure functions and small types.
//!
//! | module | what |
//! | --- | --- |
//! | [`password`] | password policy (with a common-password deny-list) and argon2id hashing, with a dummy verify for unknown accounts |
//! | [`token`] | random session tokens and the digest that is stored instead of them |
//! | [`session`] | the session cookie: `Set-Cookie` values and reading the token back |
//! | [`csrf`] | synchronizer tokens derived from the session token (nothing extra stored) |
//! | [`lockout`] | account lockout after repeated failures, as pure functions of time |
//! | [`throttle`] | per-source throttling of login, registration and verification (governor), client addresses behind trusted proxies |
//! | [`totp`] | authenticator-app one-time codes (RFC 6238, SHA-1, 6 digits, 30 s) |
//! | [`upload`] | magic-byte sniffing, size limits and safe file names for uploads |
//! | [`download`] | response bodies streamed from a blocking reader (sealed files) |
//! | [`headers`] | security headers on every response |
//! | [`page`] | the shared style sheet and HTML escaping |
//! | [`problem`] | `application/problem+json` error bodies for the API |
//! | [`health`] | the `/healthz` handler and the client behind the `healthcheck` subcommand |
//!
//! # How a login flows through it
//!
//! 0. The route is throttled per source ([`throttle::Guards`]) before any of this runs.
//! 1. The zone looks the account up. Unknown account: [`password::PasswordHasher::verify_dummy`]
//!    (same time spent) and the same "wrong account or password" answer.
//! 2. [`lockout::LockoutPolicy::check`] before verifying; on a wrong password an atomic
//!    increment in the database and [`lockout::LockoutPolicy::locks_at`] on the count it returns.
//! 3. [`password::PasswordHasher::verify_async`] (on a blocking thread, within the hasher's
//!    concurrency limit), then [`totp::TotpSecret::verify_step`] when the account has a second
//!    factor, taking the step with a compare-and-set.
//! 4. [`token::new_token`] becomes the cookie ([`session::SessionCookie::set_cookie_header`]);
//!    only [`token::token_digest`] is stored.
//! 5. Every form carries [`csrf::csrf_token_for`] in a hidden `csrf` field, checked with
//!    [`csrf::check_csrf`].
//!
//! Nothing here logs. Callers must never log passwords, tokens, TOTP secrets or codes, names,
//! ID numbers or uploaded file names.

mod common_passwords;
pub mod csrf;
pub mod download;
pub mod headers;
pub mod health;
pub mod lockout;
pub mod page;
pub mod password;
pub mod problem;
pub mod session;
pub mod throttle;
pub mod token;
pub mod totp;
pub mod upload;
