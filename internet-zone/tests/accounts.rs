//! Accounts under attack, against the real portal on a loopback port: registration that does
//! not tell who has an account, input rules (future birth dates, invisible characters, common
//! passwords), lockout counters updated atomically on every backend, per-source throttling.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ow_internet::accounts::{self, LoginError, REGISTERED_NOTICE_ZH};
use reqwest::StatusCode;

const ZHANG: (&str, &str) = ("张小三", "440524188001010014");
const LI: (&str, &str) = ("李小四", "110101199003074477");

async fn register_form(
    p: &Portal,
    c: &reqwest::Client,
    name: &str,
    id: &str,
    phone: &str,
    password: &str,
) -> (StatusCode, String, String) {
    let (_, _, html) = page(c, &p.url("/register")).await;
    post_form(
        c,
        &p.url("/register"),
        &[
            ("csrf", &csrf_of(&html)),
            ("name", name),
            ("id_number", id),
            ("phone", phone),
            ("password", password),
            ("password_confirm", password),
        ],
    )
    .await
}

/// The notice as the login page renders it (askama escapes nothing in it but keep it exact).
fn notice_shown(body: &str) -> bool {
    body.contains(REGISTERED_NOTICE_ZH)
}

#[tokio::test]
async fn registration_answers_the_same_whether_or_not_the_identity_has_an_account() {
    let p = start(None).await;
    let c = browser();
    // A new identity: its account is created and the notice tells it to sign in.
    let (status, url, first) =
        register_form(&p, &c, ZHANG.0, ZHANG.1, "13812345678", PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    assert!(url.ends_with("/login?registered=1"), "{url}");
    assert!(notice_shown(&first), "{first}");
    assert_eq!(p.count("SELECT COUNT(*) FROM inet_accounts").await, 1);

    // The same ID number again, by someone who does not know the password: the very same
    // answer, and nothing changes (the original password still works, the new one does not).
    let other = browser();
    let (status, url, again) = register_form(
        &p,
        &other,
        "张小三",
        ZHANG.1,
        "13900001111",
        "Another#pass2026",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(url.ends_with("/login?registered=1"), "{url}");
    assert!(notice_shown(&again), "{again}");
    assert!(
        !again.contains("已注册") && !again.contains("已被"),
        "{again}"
    );
    assert_eq!(p.count("SELECT COUNT(*) FROM inet_accounts").await, 1);
    let (status, _, _) = login(&p, &browser(), ZHANG.1, "Another#pass2026").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, url, _) = login(&p, &browser(), ZHANG.1, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{url}");

    // A new identity with a phone number already in use: the same answer again, and this time
    // an account is created; it signs in with its ID number, while the phone stays the login
    // of the first account.
    let (status, url, shared) =
        register_form(&p, &browser(), LI.0, LI.1, "13812345678", PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    assert!(url.ends_with("/login?registered=1"), "{url}");
    assert!(notice_shown(&shared), "{shared}");
    assert_eq!(p.count("SELECT COUNT(*) FROM inet_accounts").await, 2);
    let li = browser();
    let (status, _, _) = login(&p, &li, LI.1, PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, account) = page(&li, &p.url("/account")).await;
    assert!(account.contains("李*四"), "{account}");
    let zhang = browser();
    let (status, _, _) = login(&p, &zhang, "13812345678", PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, account) = page(&zhang, &p.url("/account")).await;
    assert!(
        account.contains("张*三"),
        "the phone signs in its first owner: {account}"
    );

    // The API answers 202 with the same message for a known and a new ID number.
    for (id, phone) in [(ZHANG.1, "13700001234"), (BUYER_NEW, "13700001235")] {
        let r = reqwest::Client::new()
            .post(p.url("/api/v1/register"))
            .json(
                &serde_json::json!({"name": "王五", "id_number": id, "phone": phone,
                "password": PASSWORD, "password_confirm": PASSWORD}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body, serde_json::json!({"message": REGISTERED_NOTICE_ZH}));
    }
    assert_eq!(p.count("SELECT COUNT(*) FROM inet_accounts").await, 3);
    p.stop().await;
}

/// A valid ID number not used elsewhere in these tests.
const BUYER_NEW: &str = "11010519491231002X";

#[tokio::test]
async fn registration_refuses_future_births_invisible_characters_and_guessable_passwords() {
    let p = start(None).await;
    let c = browser();
    // Born next year: a real calendar date, a valid check digit, and still impossible.
    let next_year = chrono::Utc::now()
        .format("%Y")
        .to_string()
        .parse::<i32>()
        .unwrap()
        + 1;
    let future = id_number(&format!("110101{next_year}0101123"));
    let (status, _, body) = register_form(&p, &c, "张小三", &future, "13812345678", PASSWORD).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("晚于今天"), "{body}");

    for (name, expect) in [
        ("张\u{202E}三", "改变文字方向"),
        ("张\u{200B}三", "零宽字符"),
        ("\u{FEFF}张三", "BOM"),
    ] {
        let (status, _, body) = register_form(&p, &c, name, ZHANG.1, "13812345678", PASSWORD).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name:?}");
        assert!(body.contains(expect), "{name:?}: {body}");
    }

    for (password, expect) in [
        ("Password2024!", "过于常见"),
        ("P@ssw0rd123!", "过于常见"),
        ("Woaini1314!", "过于常见"),
        ("Zhang#18800101", "出生日期"),
        ("Zhang#010014x", "身份证号码中连续6位"),
        ("Zhang#345678x", "手机号码中连续6位"),
    ] {
        let (status, _, body) =
            register_form(&p, &c, "张小三", ZHANG.1, "13812345678", password).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{password}");
        assert!(body.contains(expect), "{password}: {body}");
    }
    assert_eq!(p.count("SELECT COUNT(*) FROM inet_accounts").await, 0);

    // A name typed with a combining accent is stored in NFC: the same person either way.
    let (status, _, _) =
        register_form(&p, &c, "Jose\u{301} Li", ZHANG.1, "13812345678", PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    let view = accounts::view(&p.state, &account_id(&p).await)
        .await
        .unwrap();
    assert_eq!(view.name_masked, ow_domain::mask::mask_name("Jos\u{E9} Li"));
    p.stop().await;
}

async fn account_id(p: &Portal) -> String {
    sqlx::query_scalar("SELECT id FROM inet_accounts")
        .fetch_one(p.state.store.reader())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_parallel_wrong_passwords_count_a_hundred_on_every_backend() {
    for db in ow_store::testing::all_backends().await {
        let url = match db.backend {
            ow_store::Backend::Sqlite => None,
            ow_store::Backend::Postgres => Some(db.url.clone()),
        };
        let p = start_with(url, |s| s.lockout.max_failures = 100).await;
        register(&p, &browser(), ZHANG.0, ZHANG.1, "13812345678").await;
        let now = chrono::Utc::now();
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let state = p.state.clone();
                tokio::spawn(async move {
                    accounts::login(&state, ZHANG.1, "Wrong#password1", now).await
                })
            })
            .collect();
        let mut locked = 0;
        for t in tasks {
            match t.await.unwrap() {
                Err(LoginError::BadCredentials) => {}
                Err(LoginError::Locked(_)) => locked += 1,
                other => panic!("{:?}", other.map(|s| s.account_id)),
            }
        }
        let failures = p.count("SELECT failed_logins FROM inet_accounts").await;
        assert_eq!(failures, 100, "{:?}: every failure counts", db.backend);
        assert_eq!(locked, 1, "the hundredth failure locks, once");
        assert_eq!(
            p.count("SELECT COUNT(*) FROM inet_accounts WHERE locked_until_ms IS NOT NULL")
                .await,
            1
        );
        // Locked now: even the right password is refused, and the lock is not reset by it.
        assert!(matches!(
            accounts::login(&p.state, ZHANG.1, PASSWORD, now).await,
            Err(LoginError::Locked(_))
        ));
        // After the lock ends the right password works and clears the counters.
        let later = now + chrono::TimeDelta::minutes(16);
        assert!(
            accounts::login(&p.state, ZHANG.1, PASSWORD, later)
                .await
                .is_ok()
        );
        assert_eq!(p.count("SELECT failed_logins FROM inet_accounts").await, 0);
        p.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_lock_taken_in_parallel_wins_over_a_password_checked_just_before() {
    for db in ow_store::testing::all_backends().await {
        let url = match db.backend {
            ow_store::Backend::Sqlite => None,
            ow_store::Backend::Postgres => Some(db.url.clone()),
        };
        let p = start_with(url, |_| {}).await;
        register(&p, &browser(), ZHANG.0, ZHANG.1, "13812345678").await;
        let id = account_id(&p).await;
        let now = chrono::Utc::now();
        // A failure running beside a correct login locks the account after the login read
        // the row: the login's compare-and-set must see the lock.
        for _ in 0..3 {
            accounts::record_failure(&p.state.store, &p.state.lockout, &id, now)
                .await
                .unwrap();
        }
        let outcome = accounts::record_success(&p.state.store, &id, now)
            .await
            .unwrap();
        assert!(outcome.is_err(), "{:?}: locked wins", db.backend);
        assert_eq!(p.count("SELECT failed_logins FROM inet_accounts").await, 3);
        let after = now + chrono::TimeDelta::minutes(16);
        assert!(
            accounts::record_success(&p.state.store, &id, after)
                .await
                .unwrap()
                .is_ok()
        );
        assert_eq!(p.count("SELECT failed_logins FROM inet_accounts").await, 0);
        p.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_flood_from_one_source_is_throttled_with_a_time_to_retry() {
    let p = start_with(None, |s| {
        s.throttle.login_per_minute = 3;
        s.throttle.login_burst = 3;
        s.throttle.trusted_proxies = vec!["127.0.0.2".into()];
        s.verify.per_minute = 2;
    })
    .await;
    let c = browser();
    for _ in 0..3 {
        let (status, _, body) = login(&p, &c, ZHANG.1, "Wrong#password1").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    // The fourth attempt from this address is refused before any password is checked.
    let (_, _, html) = page(&c, &p.url("/login")).await;
    let r = c
        .post(p.url("/login"))
        .form(&[
            ("csrf", csrf_of(&html).as_str()),
            ("login", ZHANG.1),
            ("password", "Wrong#password1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body = r.text().await.unwrap();
    assert!(
        body.contains("操作过于频繁") && body.contains("后再试"),
        "{body}"
    );
    // Registration and the API share the budget; the API answers problem+json.
    let (status, _, _) = register_form(&p, &c, ZHANG.0, ZHANG.1, "13812345678", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let r = reqwest::Client::new()
        .post(p.url("/api/v1/login"))
        .json(&serde_json::json!({"login": ZHANG.1, "password": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let problem: serde_json::Value = r.json().await.unwrap();
    assert_eq!(problem["code"], "too_many_requests");
    assert!(problem["message"].as_str().unwrap().contains("后再试"));
    // A header the client wrote itself does not buy a new budget: 127.0.0.1 is not a
    // trusted proxy, so X-Forwarded-For is ignored.
    let r = reqwest::Client::new()
        .post(p.url("/api/v1/login"))
        .header("x-forwarded-for", "198.51.100.7")
        .json(&serde_json::json!({"login": ZHANG.1, "password": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // Pages that cost nothing stay open.
    let (status, _, _) = page(&c, &p.url("/login")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(p.count("SELECT COUNT(*) FROM inet_accounts").await, 0);

    // Verification has its own budget: two checks, then 429; the empty form stays open.
    for _ in 0..2 {
        let (status, _, _) = page(&c, &p.url("/verify?cert=x&code=y")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let r = c.get(p.url("/verify?cert=x&code=y")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    let (status, _, _) = page(&c, &p.url("/verify")).await;
    assert_eq!(status, StatusCode::OK);
    p.stop().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_budget() {
    // The portal trusts a proxy on 127.0.0.1: the address it forwards is the client.
    let p = start_with(None, |s| {
        s.throttle.login_per_minute = 2;
        s.throttle.login_burst = 2;
        s.throttle.trusted_proxies = vec!["127.0.0.0/8".into()];
    })
    .await;
    let attempt = |xff: &'static str| {
        let url = p.url("/api/v1/login");
        async move {
            reqwest::Client::new()
                .post(url)
                .header("x-forwarded-for", xff)
                .json(&serde_json::json!({"login": ZHANG.1, "password": "x"}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    for _ in 0..2 {
        assert_eq!(attempt("198.51.100.7").await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(attempt("198.51.100.7").await, StatusCode::TOO_MANY_REQUESTS);
    // Another client behind the same proxy is not affected...
    assert_eq!(attempt("198.51.100.8").await, StatusCode::UNAUTHORIZED);
    // ...but the rest of an IPv6 /64 is the same client.
    for _ in 0..2 {
        assert_eq!(attempt("2001:db8:1:2::1").await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        attempt("2001:db8:1:2:ffff::9").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // A client cannot pick its own key by prepending addresses: the right-most untrusted one
    // counts.
    assert_eq!(
        attempt("203.0.113.1, 198.51.100.7").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    p.stop().await;
}
