//! Load on the citizen portal (not a test): concurrent citizens submit applications with a
//! 1 MiB upload, then poll their applications' status, against the real `ow-internet` of a
//! local stack on loopback. Prints requests per second and p50/p99 latencies; figures go to
//! `docs/benchmarks.md`.
//!
//! `cargo build --release --workspace --bins && cargo bench -p ow-e2e --bench portal_load` (the
//! stack runs the release binaries, which the bench does not build).
//! `OW_LOAD_CITIZENS` (default 32) citizens take part; `OW_LOAD_SUBMITTERS` (default 8) of them
//! submit back to back for `OW_LOAD_SECONDS` (default 10), then submissions arrive at
//! `OW_LOAD_RATE` per second (default 100) for as long, then every citizen polls status.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// `len` bytes that do not compress: a PDF header, then xorshift output.
fn incompressible(len: usize) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn report(what: &str, elapsed: Duration, mut lat: Vec<Duration>, errors: u64) {
    lat.sort();
    println!(
        "{what}: {:.1}/s, p50 {:.1} ms, p99 {:.1} ms, {} requests, errors {errors}",
        lat.len() as f64 / elapsed.as_secs_f64(),
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.len(),
    );
}

/// What every submission shares.
struct Submit {
    base: String,
    unit: Value,
    body: Vec<u8>,
}

impl Submit {
    /// Submits one application whose files are unique to `n`; the latency, and the application
    /// number when the portal answered 201.
    async fn submit(
        &self,
        http: &reqwest::Client,
        csrf: &str,
        id: &str,
        n: u64,
    ) -> (Duration, Option<String>) {
        let sellers: Vec<Value> = self.unit["holders"].as_array().unwrap().iter()
            .map(|h| json!({"name": h["name"], "id_number": h["id_number"], "phone": "", "share": h["share"]}))
            .collect();
        let form = json!({"unit_code": self.unit["unit_code"], "certificate_number": "", "price_yuan": "1000000",
            "sellers": sellers, "buyers": [{"name": "测试", "id_number": id, "phone": "", "share": "1/1"}]});
        let mut mp = Form::new().text("application", form.to_string());
        for code in [
            "application_form",
            "applicant_identity",
            "title_certificate",
            "sale_contract",
            "tax_receipt",
            "marital_status",
        ] {
            let len = if code == "sale_contract" {
                self.body.len()
            } else {
                1024
            };
            let mut bytes = format!("%PDF-1.4\n%{n} {code}\n").into_bytes();
            bytes.extend_from_slice(&self.body[bytes.len()..len]);
            mp = mp.part(
                code,
                Part::bytes(bytes)
                    .file_name(format!("{code}.pdf"))
                    .mime_str("application/pdf")
                    .unwrap(),
            );
        }
        let t = Instant::now();
        let r = http
            .post(format!("{}/api/v1/applications", self.base))
            .header("X-CSRF-Token", csrf)
            .multipart(mp)
            .send()
            .await;
        let Ok(r) = r else { return (t.elapsed(), None) };
        let ok = r.status() == 201;
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let elapsed = t.elapsed();
        (
            elapsed,
            ok.then(|| {
                body["application_no"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            }),
        )
    }
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
    let unit = stack.demo_unit("370781", false).unwrap();

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
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
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

    // Submissions, two ways. Every upload is different (a unique first line on shared
    // incompressible bytes), so neither content addressing nor compression flatters the figures.
    let submitters = env_or("OW_LOAD_SUBMITTERS", 8) as usize;
    let rate = env_or("OW_LOAD_RATE", 100);
    let counter = Arc::new(AtomicU64::new(0));
    let mut numbers: Vec<Option<String>> = vec![None; sessions.len()];
    let ctx = Arc::new(Submit {
        base: base.clone(),
        unit: unit.clone(),
        body: incompressible(1 << 20),
    });

    // (1) Closed loop: `submitters` citizens submit one after another as fast as the portal answers.
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, (http, csrf, id)) in sessions.iter().take(submitters).cloned().enumerate() {
        let ctx = Arc::clone(&ctx);
        let counter = Arc::clone(&counter);
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                out.push(ctx.submit(&http, &csrf, &id, n).await);
            }
            (i, out)
        }));
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (i, out) = t.await.unwrap();
        for (d, no) in out {
            lat.push(d);
            match no {
                Some(no) => numbers[i] = Some(no),
                None => errors += 1,
            }
        }
    }
    report(
        &format!(
            "submissions, closed loop ({submitters} citizens back to back, 1 MiB + 5 small files)"
        ),
        started.elapsed(),
        lat,
        errors,
    );

    // (2) Open loop: a new submission every 1/rate s whatever the answers, spread over all
    // citizens; the latencies show whether the portal keeps up with that arrival rate.
    let total = rate * seconds;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..total {
        let due = started + Duration::from_secs_f64(k as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
        let i = (k as usize) % sessions.len();
        let (http, csrf, id) = sessions[i].clone();
        let ctx = Arc::clone(&ctx);
        let n = counter.fetch_add(1, Ordering::Relaxed);
        tasks.push(tokio::spawn(async move {
            (i, ctx.submit(&http, &csrf, &id, n).await)
        }));
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (i, (d, no)) = t.await.unwrap();
        lat.push(d);
        match no {
            Some(no) => numbers[i] = Some(no),
            None => errors += 1,
        }
    }
    report(
        &format!("submissions, open loop ({rate}/s offered for {seconds} s)"),
        started.elapsed(),
        lat,
        errors,
    );

    // Status reads: every citizen polls its application for `seconds`; then, as the reference
    // measured in the same run, the same clients poll the bare `/healthz` route for as long.
    let polls: Vec<(reqwest::Client, String)> = sessions
        .into_iter()
        .zip(numbers)
        .filter_map(|((http, _, _), no)| no.map(|no| (http, no)))
        .collect();
    let status = poll(
        polls
            .iter()
            .map(|(http, no)| (http.clone(), format!("{base}/api/v1/applications/{no}")))
            .collect(),
        seconds,
    )
    .await;
    let bare = poll(
        polls
            .iter()
            .map(|(http, _)| (http.clone(), format!("{base}/healthz")))
            .collect(),
        seconds,
    )
    .await;
    let rate = |(elapsed, lat, _): &(Duration, Vec<Duration>, u64)| {
        lat.len() as f64 / elapsed.as_secs_f64()
    };
    let ratio = rate(&status) / rate(&bare);
    let (elapsed, lat, errors) = status;
    report(
        &format!("status reads ({} concurrent)", polls.len()),
        elapsed,
        lat,
        errors,
    );
    let (elapsed, lat, errors) = bare;
    report(
        &format!("reference: bare /healthz ({} concurrent)", polls.len()),
        elapsed,
        lat,
        errors,
    );
    println!("status reads / bare route, same run: {ratio:.2}");
    drop(stack);
}

/// Each client GETs its URL back to back for `seconds`: the elapsed time, the latencies of the
/// answers that were 200, and the number of failures.
async fn poll(
    clients: Vec<(reqwest::Client, String)>,
    seconds: u64,
) -> (Duration, Vec<Duration>, u64) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (http, url) in clients {
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                match http.get(&url).send().await {
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
    (started.elapsed(), lat, errors)
}
