//! Staff sign-in under attack: the lockout counter and the TOTP last-used step are updated
//! atomically on every backend (store tests), one dynamic code sent twice at once signs in
//! once (HTTP), and a flood of logins from one address is throttled (HTTP).

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ow_extranet::staff::{self, LoginError};
use ow_extranet::{AppState, Mode};
use ow_web::totp::TotpSecret;

async fn staff_id(state: &AppState, username: &str) -> String {
    staff::find_by_username(&state.store, username)
        .await
        .unwrap()
        .unwrap()
        .id
}

async fn column(state: &AppState, sql: &str, id: &str) -> Option<i64> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(id)
        .fetch_one(state.store.reader())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counters_are_atomic_on_every_backend() {
    for db in ow_store::testing::all_backends().await {
        let backend = db.backend.as_str();
        let dir = tempfile::tempdir().unwrap();
        let url = if backend == "sqlite" {
            String::new()
        } else {
            db.url.clone()
        };
        let mut settings = settings_in(dir.path(), &url);
        settings.login.max_failures = 100;
        let state = AppState::open(settings, Mode::Offline).await.unwrap();
        let seed = ow_extranet::seed::seed_demo(&state).await.unwrap();
        let id = staff_id(&state, "qz-review").await;
        let now = chrono::Utc::now();

        // 100 wrong passwords at once count 100, and the hundredth locks, once.
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let state = state.clone();
                tokio::spawn(async move {
                    staff::check_password(
                        &state.store,
                        &state.hasher,
                        &state.lockout,
                        "qz-review",
                        "Wrong-password-1A",
                        now,
                    )
                    .await
                })
            })
            .collect();
        let mut locked = 0;
        for t in tasks {
            match t.await.unwrap() {
                Err(LoginError::BadCredentials) => {}
                Err(LoginError::Locked(_)) => locked += 1,
                other => panic!("{backend}: {other:?}"),
            }
        }
        let failures = column(
            &state,
            "SELECT failed_logins FROM ext_staff WHERE id = $1",
            &id,
        )
        .await
        .unwrap();
        assert_eq!(failures, 100, "{backend}: every failure counts");
        assert_eq!(locked, 1, "{backend}");
        assert!(
            column(
                &state,
                "SELECT locked_until_ms FROM ext_staff WHERE id = $1",
                &id
            )
            .await
            .is_some()
        );

        // One code submitted twice at the same moment (after the lock ended) is taken once.
        let later = now + chrono::TimeDelta::minutes(16);
        let totp = seed
            .staff
            .iter()
            .find(|s| s.username == "qz-review")
            .and_then(|s| s.totp_secret.clone())
            .unwrap();
        let code = TotpSecret::from_base32(&totp)
            .unwrap()
            .code_at(later.timestamp() as u64);
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (state, id, code) = (state.clone(), id.clone(), code.clone());
                tokio::spawn(async move {
                    staff::check_totp(&state.store, &state.pii, &state.lockout, &id, &code, later)
                        .await
                })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => ok += 1,
                Err(LoginError::BadCode) => {}
                other => panic!("{backend}: {other:?}"),
            }
        }
        assert_eq!(ok, 1, "{backend}: one code, one sign-in");
        let step = column(
            &state,
            "SELECT totp_last_step FROM ext_staff WHERE id = $1",
            &id,
        )
        .await
        .unwrap();
        assert_eq!(step, later.timestamp() / 30);
        // The refused copies counted as failures after the success reset the counter.
        let failures = column(
            &state,
            "SELECT failed_logins FROM ext_staff WHERE id = $1",
            &id,
        )
        .await
        .unwrap();
        assert_eq!(failures, 7, "{backend}");
        state.store.close().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_code_sent_twice_at_once_signs_in_once() {
    let mut server = TestServer::start().await;
    let (password, totp) = server.staff("qz-cert");
    // Two browsers pass the password step, then send the same code at the same moment.
    let a = Registrar::new(&server.base);
    let b = Registrar::new(&server.base);
    for r in [&a, &b] {
        let (status, body) = r.password_step("qz-cert", &password).await;
        assert_eq!(status, 200, "{body}");
    }
    let code = TotpSecret::from_base32(&totp)
        .unwrap()
        .code_at(chrono::Utc::now().timestamp() as u64);
    let (_, page_a) = a.get("/login/totp").await;
    let (_, page_b) = b.get("/login/totp").await;
    let (csrf_a, csrf_b) = (csrf_of(&page_a), csrf_of(&page_b));
    let form_a = [("csrf", csrf_a.as_str()), ("code", code.as_str())];
    let form_b = [("csrf", csrf_b.as_str()), ("code", code.as_str())];
    let (ra, rb) = tokio::join!(
        a.post("/login/totp", &form_a),
        b.post("/login/totp", &form_b),
    );
    let signed_in = [&ra, &rb]
        .iter()
        .filter(|(status, body)| *status == 200 && body.contains("业务队列"))
        .count();
    assert_eq!(signed_in, 1, "{ra:?} {rb:?}");
    let refused = [&ra, &rb]
        .iter()
        .filter(|(status, body)| *status == 401 && body.contains("动态口令不正确或已使用"))
        .count();
    assert_eq!(refused, 1, "{ra:?} {rb:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_logins_from_one_address_is_throttled() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings_in(dir.path(), "");
    settings.login.throttle_per_minute = 3;
    settings.login.throttle_burst = 3;
    let state = AppState::open(settings, Mode::Offline).await.unwrap();
    ow_extranet::seed::seed_demo(&state).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(ow_extranet::serve(listener, state.clone(), async move {
        let _ = rx.await;
    }));
    let r = Registrar::new(&base);
    for _ in 0..3 {
        let (status, body) = r.password_step("qz-review", "Wrong-password-1A").await;
        assert_eq!(status, 401, "{body}");
    }
    let (_, page) = r.get("/login").await;
    let resp = r
        .client
        .post(format!("{base}/login"))
        .form(&[
            ("csrf", csrf_of(&page).as_str()),
            ("username", "qz-review"),
            ("password", "Wrong-password-1A"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(resp.headers().contains_key("content-security-policy"));
    let body = resp.text().await.unwrap();
    assert!(body.contains("操作过于频繁"), "{body}");
    // Refused before the password was looked at: the account counted three failures only.
    let id = staff_id(&state, "qz-review").await;
    let failures = column(
        &state,
        "SELECT failed_logins FROM ext_staff WHERE id = $1",
        &id,
    )
    .await
    .unwrap();
    assert_eq!(failures, 3);
    // The login page itself stays open.
    let (status, _) = r.get("/login").await;
    assert_eq!(status, 200);
    let _ = tx.send(());
    task.await.unwrap().unwrap();
}
