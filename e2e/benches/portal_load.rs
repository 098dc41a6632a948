//! Load on the citizen portal (not a test): concurrent citizens submit applications with a
//! 1 MiB upload, then poll their applications' status, against the real `ow-internet` of a
//! local stack on loopback. Prints requests per second and p50/p99 latencies; figures go to
//! `docs/benchmarks.md`.
//!
//! `cargo bench -p ow-e2e --bench portal_load` (builds the binaries in release mode first).
//! `OW_LOAD_CITIZENS` (default 32) and `OW_LOAD_SECONDS` (default 10) set the load.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use ow_e2e::{Stack, StackOptions};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// A valid GB 11643 ID number with serial `n` (born 1990-01-01 in 370781).
fn id_number(n: u32) -> String {
    let body = format!("37078119900101{:03}", n % 1000);
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .chars()
        .zip(W)
        .map(|(c, w)| c.to_digit(10).unwrap() * w)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{body}{check}")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let citizens = env_or("OW_LOAD_CITIZENS", 32) as u32;
    let seconds = env_or("OW_LOAD_SECONDS", 10);
    let stack = Stack::start(StackOptions {
        internet_sets: vec![
            "uploads.max_file_bytes=2097152".into(),
            "lockout.max_failures=100".into(),
        ],
        ..StackOptions::default()
    })
    .expect("the stack starts");
    let base = stack.internet_url.clone();
    let unit = stack.seed["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["district_code"] == "370781" && !u["seized"].as_bool().unwrap())
        .unwrap()
        .clone();
    let mut pdf = b"%PDF-1.4\n".to_vec();
    pdf.resize(1 << 20, b' ');

    // Sign everyone in first (argon2id is deliberately slow and not what is measured).
    let mut sessions = Vec::new();
    for n in 0..citizens {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap();
        let id = id_number(n);
        let password = "Load-Test-2026!";
        let r = http
            .post(format!("{base}/api/v1/register"))
            .json(
                &json!({"name": "测试", "id_number": id, "phone": format!("138{:08}", n),
                          "password": password, "password_confirm": password}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        let login: Value = http
            .post(format!("{base}/api/v1/login"))
            .json(&json!({"login": id, "password": password}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        sessions.push((http, login["csrf_token"].as_str().unwrap().to_owned(), id));
    }

    // Submissions: every citizen submits once, all at the same time.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (http, csrf, id) in sessions.clone() {
        let base = base.clone();
        let unit = unit.clone();
        let pdf = pdf.clone();
        tasks.push(tokio::spawn(async move {
            let sellers: Vec<Value> = unit["holders"].as_array().unwrap().iter()
                .map(|h| json!({"name": h["name"], "id_number": h["id_number"], "phone": "", "share": h["share"]}))
                .collect();
            let form = json!({"unit_code": unit["unit_code"], "certificate_number": "", "price_yuan": "1000000",
                "sellers": sellers, "buyers": [{"name": "测试", "id_number": id, "phone": "", "share": "1/1"}]});
            let mut mp = Form::new().text("application", form.to_string());
            for code in ["application_form", "applicant_identity", "title_certificate", "sale_contract", "tax_receipt", "marital_status"] {
                let bytes = if code == "sale_contract" { pdf.clone() } else { pdf[..1024].to_vec() };
                mp = mp.part(code, Part::bytes(bytes).file_name(format!("{code}.pdf")).mime_str("application/pdf").unwrap());
            }
            let t = Instant::now();
            let r = http.post(format!("{base}/api/v1/applications")).header("X-CSRF-Token", csrf).multipart(mp).send().await.unwrap();
            let ok = r.status() == 201;
            let no: Value = r.json().await.unwrap_or(Value::Null);
            (t.elapsed(), ok, no["application_no"].as_str().unwrap_or_default().to_owned())
        }));
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    let mut numbers = Vec::new();
    for t in tasks {
        let (d, ok, no) = t.await.unwrap();
        lat.push(d);
        if ok { numbers.push(no) } else { errors += 1 }
    }
    let elapsed = started.elapsed();
    lat.sort();
    println!(
        "submissions (1 MiB upload + 5 small files, {citizens} concurrent): {:.1}/s, p50 {:?}, p99 {:?}, errors {errors}",
        f64::from(citizens) / elapsed.as_secs_f64(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    );

    // Status reads: every citizen polls its application for `seconds`.
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for ((http, _, _), no) in sessions.into_iter().zip(numbers) {
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                match http
                    .get(format!("{base}/api/v1/applications/{no}"))
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 200 => {
                        let _ = r.bytes().await;
                        lat.push(t.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        lat.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed();
    lat.sort();
    println!(
        "status reads ({citizens} concurrent): {:.0}/s, p50 {:?}, p99 {:?}, errors {errors}",
        lat.len() as f64 / elapsed.as_secs_f64(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    );
    drop(stack);
}
