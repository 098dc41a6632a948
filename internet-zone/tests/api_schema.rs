//! The API answers as its OpenAPI document says: the shapes of errors (400, 413, 415 as
//! `application/problem+json` in Chinese), and schemathesis run against the real portal on a
//! loopback port with a fresh data folder, signed in as a test account.
//!
//! The schemathesis run needs the `schemathesis` command (`pip install schemathesis`). Without
//! it the run is reported as not done and passes, unless `OW_REQUIRE_SCHEMATHESIS=1` (CI:
//! `.ci/schemathesis.sh`), which makes its absence a failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const PROBLEM: &str = "application/problem+json";

/// Registers and signs in a citizen over the API; returns (session token, CSRF token).
async fn signed_in(p: &Portal, c: &reqwest::Client) -> (String, String) {
    let id = id_number("37078119900101123");
    let r = c
        .post(p.url("/api/v1/register"))
        .json(
            &json!({"name": "测试员", "id_number": id, "phone": "13900001111",
            "password": PASSWORD, "password_confirm": PASSWORD}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = c
        .post(p.url("/api/v1/login"))
        .json(&json!({"login": "13900001111", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("ow_session="))
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_owned();
    let body: Value = r.json().await.unwrap();
    (cookie, body["csrf_token"].as_str().unwrap().to_owned())
}

async fn problem(r: reqwest::Response) -> (StatusCode, Value) {
    let status = r.status();
    assert_eq!(
        r.headers()["content-type"],
        PROBLEM,
        "{status} is a problem body"
    );
    (status, r.json().await.unwrap())
}

/// True when `s` contains CJK text: the message is for people, in Chinese.
fn chinese(s: &Value) -> bool {
    s.as_str()
        .is_some_and(|t| t.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shape_errors_are_chinese_problems() {
    let p = start(None).await;
    let c = reqwest::Client::new();

    // Wrong media type: 415.
    let r = c
        .post(p.url("/api/v1/login"))
        .header("content-type", "text/plain")
        .body("login=a&password=b")
        .send()
        .await
        .unwrap();
    let (status, body) = problem(r).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["code"], "unsupported_media_type");
    assert!(chinese(&body["message"]), "{body}");

    // Not JSON: 400; a member of the wrong type: 400.
    for (raw, code) in [
        ("{\"login\": ", "bad_request.json_syntax"),
        (
            "{\"login\": 5, \"password\": []}",
            "bad_request.json_fields",
        ),
        ("{}", "bad_request.json_fields"),
    ] {
        let r = c
            .post(p.url("/api/v1/login"))
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        let (status, body) = problem(r).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{raw}");
        assert_eq!(body["code"], code, "{raw}");
        assert!(chinese(&body["message"]), "{body}");
    }

    // Over the body limit: 413 in Chinese, not axum's English plain text.
    let huge = format!(
        "{{\"certificate_number\": \"{}\", \"code\": \"x\"}}",
        "9".repeat(3 << 20)
    );
    // (A client of its own: the server answers before reading the whole body and closes.)
    let r = reqwest::Client::new()
        .post(p.url("/api/v1/verify"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    let (status, body) = problem(r).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["code"], "payload_too_large");
    assert!(chinese(&body["message"]), "{body}");

    // A value over its documented maxLength: 422 naming the member.
    let r = c
        .post(p.url("/api/v1/verify"))
        .json(&json!({"certificate_number": "鲁".repeat(65), "code": "7KQ4M-X9PTB"}))
        .send()
        .await
        .unwrap();
    let (status, body) = problem(r).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "certificate_number");
    // A malformed number is reported under the API's name for it, not the form's `cert`.
    let r = c
        .post(p.url("/api/v1/verify"))
        .json(&json!({"certificate_number": "not a number", "code": "7KQ4M-X9PTB"}))
        .send()
        .await
        .unwrap();
    let (_, body) = problem(r).await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["certificate_number"], "{body}");

    // An unsupported method: 405 problem with Allow.
    let r = c.delete(p.url("/api/v1/verify")).send().await.unwrap();
    assert_eq!(r.headers()["allow"], "POST");
    let (status, body) = problem(r).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(chinese(&body["message"]));

    // Multipart routes: not multipart is 415; a body over the upload limit is 413.
    let (cookie, csrf) = signed_in(&p, &c).await;
    let r = c
        .post(p.url("/api/v1/applications"))
        .header("cookie", format!("ow_session={cookie}"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"application": {}}))
        .send()
        .await
        .unwrap();
    let (status, body) = problem(r).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    let limit = p.state.upload_body_limit();
    let form = reqwest::multipart::Form::new()
        .text("application", "{}")
        .part(
            "sale_contract",
            reqwest::multipart::Part::bytes(vec![b'%'; limit + 1024])
                .file_name("big.pdf")
                .mime_str("application/pdf")
                .unwrap(),
        );
    let r = c
        .post(p.url("/api/v1/applications"))
        .header("cookie", format!("ow_session={cookie}"))
        .header("x-csrf-token", &csrf)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let (status, body) = problem(r).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(chinese(&body["message"]), "{body}");
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing() {
    let available = std::process::Command::new("schemathesis")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        assert_ne!(
            std::env::var("OW_REQUIRE_SCHEMATHESIS").as_deref(),
            Ok("1"),
            "OW_REQUIRE_SCHEMATHESIS=1 but schemathesis is not installed (pip install schemathesis)"
        );
        eprintln!("schemathesis is not installed: the schema run was not done");
        return;
    }
    // The per-address limits of /verify, /login and /register would answer most fuzzed
    // requests with 429 and leave the handlers untested.
    let p = start_with(None, |s| {
        s.verify.per_minute = 1_000_000;
        s.throttle.login_per_minute = 1_000_000;
        s.throttle.login_burst = 1_000_000;
    })
    .await;
    let c = reqwest::Client::new();
    let (cookie, csrf) = signed_in(&p, &c).await;
    let work = tempfile::tempdir().unwrap();
    // The session goes in through the document's `session` security scheme, so schemathesis
    // knows it and can check that each operation refuses a request without it.
    let config = work.path().join("schemathesis.toml");
    std::fs::write(
        &config,
        format!("[auth.openapi.session]\napi_key = \"{cookie}\"\n"),
    )
    .unwrap();
    let max_time: u64 = std::env::var("OW_SCHEMATHESIS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    let mut cmd = std::process::Command::new("schemathesis");
    cmd.current_dir(work.path())
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(p.url("/api/v1/openapi.json"))
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", "20"])
        .args(["--max-time", &max_time.to_string()])
        .args(["--seed", "20260301"])
        .args(["--workers", "1"])
        .args(["--checks", "all"])
        // Positive data can still be refused: check digits, the seller being the holder and
        // the like are beyond what a schema states. The other two need links between
        // operations, which this document does not declare.
        .args([
            "--exclude-checks",
            "positive_data_acceptance,use_after_free,ensure_resource_availability",
        ])
        .args(["--exclude-path", "/api/v1/logout"])
        .args(["--request-timeout", "20"])
        .args(["-H", &format!("X-CSRF-Token: {csrf}")])
        .arg("--report-dir")
        .arg(work.path().join("report"))
        .args(["--report", "junit"]);
    // The server runs on this runtime's workers; schemathesis runs beside them (its own
    // --max-time and --request-timeout bound it).
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("schemathesis ran");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(out.status.success(), "schemathesis found problems:\n{text}");
    p.stop().await;
}
