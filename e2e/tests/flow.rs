//! The whole flow with the real binaries, over HTTP and the ferry's folders only: a citizen
//! applies on the portal, registrars in the back office accept, review, record and issue, the
//! certificate comes back to the citizen and `/verify` says valid, and the seller's old
//! certificate says cancelled. Then the refusals: a seized unit, another citizen, another
//! district, a forged or altered certificate; and, in a second stack, bad uploads that are
//! refused with a clear message while nothing is stored or sent; and, in a third, a poison
//! message that is set aside without stopping the messages behind it.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

mod common;

use common::{
    PATIENCE, PDF, Registrar, csrf_in, no_personal_data_in_clear, register_citizen, send_as_portal,
    staff_with,
};
use ow_e2e::{Stack, StackOptions};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

/// A citizen on the portal's JSON API.
struct Citizen {
    http: reqwest::Client,
    base: String,
    csrf: String,
    name: String,
    id_number: String,
}

impl Citizen {
    async fn register(base: &str, name: &str, id_number: &str, phone: &str) -> Citizen {
        let (http, csrf) = register_citizen(base, name, id_number, phone).await;
        Citizen {
            http,
            base: base.to_owned(),
            csrf,
            name: name.to_owned(),
            id_number: id_number.to_owned(),
        }
    }

    /// Applies to buy `unit` (a seed unit) alone, with every required material. Returns the
    /// application number.
    async fn apply(&self, unit: &Value) -> String {
        let (status, body) = self.apply_with(unit, &[]).await;
        assert_eq!(status, 201, "apply: {body}");
        body["application_no"].as_str().unwrap().to_owned()
    }

    /// Applies to buy `unit` with every required material as a small PDF, except the checklist
    /// items in `replace` (code, file name, media type, bytes). Returns the status and the body.
    async fn apply_with(
        &self,
        unit: &Value,
        replace: &[(&str, &str, &str, Vec<u8>)],
    ) -> (u16, Value) {
        let sellers: Vec<Value> = unit["holders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| json!({"name": h["name"], "id_number": h["id_number"], "phone": "", "share": h["share"]}))
            .collect();
        let form = json!({
            "unit_code": unit["unit_code"],
            "certificate_number": "",
            "price_yuan": "1280000",
            "sellers": sellers,
            "buyers": [{"name": self.name, "id_number": self.id_number, "phone": "", "share": "1/1"}],
        });
        let mut multipart = Form::new().text("application", form.to_string());
        for code in [
            "application_form",
            "applicant_identity",
            "title_certificate",
            "sale_contract",
            "tax_receipt",
            "marital_status",
        ] {
            let (name, media, bytes) = match replace.iter().find(|r| r.0 == code) {
                Some((_, name, media, bytes)) => (name.to_string(), *media, bytes.clone()),
                // The citizen names files after themselves, as people do: the name is personal
                // data wherever it is stored.
                // An identity document carries the number it shows.
                None if code == "applicant_identity" => (
                    format!("{}身份证.pdf", self.name),
                    "application/pdf",
                    format!("%PDF-1.4\n% {} {}\n%%EOF\n", self.name, self.id_number).into_bytes(),
                ),
                None => (format!("{code}.pdf"), "application/pdf", PDF.to_vec()),
            };
            multipart = multipart.part(
                code,
                Part::bytes(bytes).file_name(name).mime_str(media).unwrap(),
            );
        }
        let r = self
            .http
            .post(format!("{}/api/v1/applications", self.base))
            .header("X-CSRF-Token", &self.csrf)
            .multipart(multipart)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&body).unwrap_or(Value::String(body)),
        )
    }

    /// Uploads an e-certificate file to the public `/verify` page; returns the page.
    async fn verify_file(&self, bytes: Vec<u8>) -> String {
        let page = self
            .http
            .get(format!("{}/verify", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let form = Form::new().text("csrf", csrf_in(&page)).part(
            "file",
            Part::bytes(bytes)
                .file_name("证书.json")
                .mime_str("application/json")
                .unwrap(),
        );
        let r = self
            .http
            .post(format!("{}/verify/file", self.base))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    }

    async fn application(&self, no: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/api/v1/applications/{no}", self.base))
            .send()
            .await
            .unwrap()
    }

    /// Polls the application until its status is `status` (statuses come back over the ferry).
    async fn wait_status(&self, no: &str, status: &str) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let view: Value = self.application(no).await.json().await.unwrap();
            if view["status"] == status {
                return view;
            }
            assert!(
                Instant::now() < deadline,
                "application {no} never reached {status}: {view}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn verify(&self, number: &str, code: &str) -> Value {
        let r = self
            .http
            .post(format!("{}/api/v1/verify", self.base))
            .json(&json!({"certificate_number": number, "code": code}))
            .send()
            .await
            .unwrap();
        r.json().await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_review_record_issue_verify_end_to_end() {
    // Polling /verify below is faster than a person: lift the per-address limit.
    let stack = Stack::start(StackOptions {
        internet_sets: vec!["verify.per_minute=100000".into()],
        ..StackOptions::default()
    })
    .expect("the stack starts");
    let seed = stack.seed.clone();
    let unit = stack.demo_unit("370781", false).unwrap();
    let seized = stack.demo_unit("370781", true).unwrap();
    let buyer = &seed["demo_buyers"][0];

    // The citizen applies, with materials, on the portal.
    let citizen = Citizen::register(
        &stack.internet_url,
        buyer["name"].as_str().unwrap(),
        buyer["id_number"].as_str().unwrap(),
        "13800138000",
    )
    .await;
    let no = citizen.apply(&unit).await;

    // Registrars of 青州市 carry it through; each step goes back to the portal as a status.
    let steps = [
        ("accept", "accept", "accepted"),
        ("review", "review", "reviewed"),
        ("record", "record", "recorded"),
        ("certificate", "prepare", "certificate_prepared"),
        ("certificate", "issue", "completed"),
    ];
    let first = Registrar::sign_in(&stack, &staff_with(&seed, "accept", "370781")).await;
    first.wait_case(&no).await;

    // The back office's receipt comes back: the citizen sees it, and the portal no longer keeps
    // the materials (the internet zone holds them only until they have crossed).
    let files = stack.root.join("internet/app/files");
    let deadline = Instant::now() + PATIENCE;
    let view = loop {
        let view: Value = citizen.application(&no).await.json().await.unwrap();
        // Delivery (the ferry's acknowledgement) and the receipt (a status message from the
        // back office) travel separately; wait for both.
        if view["materials"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["delivered"] == true)
            && view.to_string().contains("登记机构已收到申请材料")
        {
            break view;
        }
        assert!(Instant::now() < deadline, "no receipt came back: {view}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        view.to_string().contains("登记机构已收到申请材料"),
        "{view}"
    );
    assert_eq!(
        files_under(&files),
        0,
        "the portal kept materials after receipt"
    );
    let material = view["materials"][0]["id"].as_str().unwrap();
    let r = citizen
        .http
        .get(format!("{}/materials/{material}", stack.internet_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
    assert!(r.text().await.unwrap().contains("已送达"));
    let mut signed_in: Vec<(String, Registrar)> = vec![("accept".into(), first)];
    for (role, action, status) in steps {
        if !signed_in.iter().any(|(r, _)| r == role) {
            let registrar = Registrar::sign_in(&stack, &staff_with(&seed, role, "370781")).await;
            signed_in.push((role.to_owned(), registrar));
        }
        let registrar = &signed_in.iter().find(|(r, _)| r == role).unwrap().1;
        let (code, page) = registrar.act(&no, action, None).await;
        assert!(code < 400, "{action} on {no}: {code} {page}");
        citizen.wait_status(&no, status).await;
    }

    // The certificate is the citizen's, and /verify says valid; the seller's says cancelled.
    let deadline = Instant::now() + PATIENCE;
    let certificates = loop {
        let list: Value = citizen
            .http
            .get(format!("{}/api/v1/certificates", stack.internet_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if list.as_array().is_some_and(|l| !l.is_empty()) {
            break list;
        }
        assert!(
            Instant::now() < deadline,
            "no certificate reached the portal"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let cert_id = certificates[0]["id"].as_str().unwrap().to_owned();
    let signed: Value = citizen
        .http
        .get(format!(
            "{}/api/v1/certificates/{cert_id}",
            stack.internet_url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let number = signed["certificate"]["certificate_number"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = signed["certificate"]["verification_code"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        number.starts_with("鲁(") && number.contains("青州市不动产权第"),
        "{number}"
    );
    let outcome = citizen.verify(&number, &code).await;
    assert_eq!(outcome["outcome"], "valid", "{outcome}");
    let old_number = unit["certificate_number"].as_str().unwrap();
    let old_code = unit["verification_code"].as_str().unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let outcome = citizen.verify(old_number, old_code).await;
        if outcome["outcome"] == "cancelled" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "old certificate never cancelled: {outcome}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A forged code, or a made-up number: the number and the code do not match.
    let outcome = citizen.verify(&number, "ABCDE-FGHJK").await;
    assert_eq!(outcome["outcome"], "no_match", "{outcome}");
    // The downloaded e-certificate file checks out on /verify; the same file with one field
    // changed, or with another signature, does not.
    let page = citizen
        .verify_file(serde_json::to_vec(&signed).unwrap())
        .await;
    assert!(page.contains("查验结果：有效"), "{page}");
    let mut altered = signed.clone();
    altered["certificate"]["area_m2"] = json!("999.99");
    let page = citizen
        .verify_file(serde_json::to_vec(&altered).unwrap())
        .await;
    assert!(page.contains("查验结果：非真实证书"), "altered: {page}");
    let mut forged = signed.clone();
    let sig = forged["signature"].as_str().unwrap().to_owned();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    forged["signature"] = json!(format!("{flipped}{}", &sig[1..]));
    let page = citizen
        .verify_file(serde_json::to_vec(&forged).unwrap())
        .await;
    assert!(page.contains("查验结果：非真实证书"), "forged: {page}");
    let page = citizen.verify_file(b"not a certificate".to_vec()).await;
    assert!(page.contains("查验结果：非真实证书"), "garbage: {page}");

    // Another citizen sees none of it, by any URL.
    let other = Citizen::register(
        &stack.internet_url,
        "李四",
        "110101199003074477",
        "13900139000",
    )
    .await;
    assert_eq!(other.application(&no).await.status(), 404);
    let r = other
        .http
        .get(format!(
            "{}/api/v1/certificates/{cert_id}",
            stack.internet_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // A registrar of another district cannot see or act on the case.
    let elsewhere = Registrar::sign_in(&stack, &staff_with(&seed, "accept", "370702")).await;
    assert_eq!(elsewhere.case_page(&no).await.status(), 404);

    // A seized unit cannot be transferred, and the citizen is told why.
    let no2 = citizen.apply(&seized).await;
    let accept = &signed_in.iter().find(|(r, _)| r == "accept").unwrap().1;
    accept.wait_case(&no2).await;
    let page = accept.case_page(&no2).await.text().await.unwrap();
    assert!(
        page.contains("查封"),
        "the case page shows the seizure rule"
    );
    // The registrar's reason quotes the holder: personal data, sealed wherever it is stored.
    let holder = seized["holders"][0]["name"].as_str().unwrap();
    let (code, page) = accept
        .act(
            &no2,
            "refuse",
            Some(&format!(
                "该不动产单元已被查封，不能办理转移登记（权利人{holder}）"
            )),
        )
        .await;
    assert!(code < 400, "refuse: {code} {page}");
    let view = citizen.wait_status(&no2, "refused").await;
    assert!(
        view.to_string().contains("查封") && view.to_string().contains(holder),
        "the citizen sees the reason: {view}"
    );

    // Nothing the stack wrote holds a seeded name, ID number or phone in clear: every file
    // under its folder (data, work, ferry, gateway, inbox, outbox, sent, logs), searched as it
    // is on disk, nothing decompressed or decrypted.
    let mut stack = stack;
    stack.stop();
    no_personal_data_in_clear(&stack.root, &seed);
    drop(stack);
}

/// Files under `dir` (recursively), not counting temporary dot-files.
fn files_under(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                files_under(&path)
            } else {
                usize::from(!e.file_name().to_string_lossy().starts_with('.'))
            }
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_are_refused_with_a_clear_message_and_nothing_is_stored_or_sent() {
    let stack = Stack::start(StackOptions {
        internet_sets: vec!["uploads.max_file_bytes=65536".into()],
        ..StackOptions::default()
    })
    .expect("the stack starts");
    let seed = stack.seed.clone();
    let unit = stack.demo_unit("370781", false).unwrap();
    let citizen = Citizen::register(
        &stack.internet_url,
        "王五",
        "37078119900101123X",
        "13700137000",
    )
    .await;
    let files = stack.root.join("internet/app/files");
    let stored_before = files_under(&files);

    // An executable renamed .pdf, a Windows program as a photo, an oversize scan, an empty file.
    let elf = b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00".to_vec();
    let pe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xffPE\x00\x00".to_vec();
    let mut big = PDF.to_vec();
    big.resize(65_537, b' ');
    // (checklist item, file name, declared type, bytes, expected status, what the message says)
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        Vec<u8>,
        u16,
        &'static str,
    );
    let cases: [Case; 4] = [
        (
            "application_form",
            "申请书.pdf",
            "application/pdf",
            elf,
            415,
            "不是 PDF、JPEG 或 PNG",
        ),
        (
            "applicant_identity",
            "身份证.jpg",
            "image/jpeg",
            pe,
            415,
            "不是 PDF、JPEG 或 PNG",
        ),
        (
            "sale_contract",
            "合同.pdf",
            "application/pdf",
            big,
            413,
            "过大",
        ),
        (
            "tax_receipt",
            "完税.pdf",
            "application/pdf",
            Vec::new(),
            422,
            "空文件",
        ),
    ];
    for (code, name, media, bytes, status, says) in cases {
        let (got, body) = citizen
            .apply_with(&unit, &[(code, name, media, bytes)])
            .await;
        assert_eq!(got, status, "{code}: {body}");
        let message = body.to_string();
        assert!(message.contains(says), "{code}: {message}");
        assert!(
            message.contains(name),
            "the message names the file: {message}"
        );
    }
    // Nothing was stored or queued: no files, no application, no bundle.
    assert_eq!(files_under(&files), stored_before, "no file was stored");
    let list: Value = citizen
        .http
        .get(format!("{}/api/v1/applications", stack.internet_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!([]), "no application was made");

    // A good application afterwards goes through, and it alone reaches the back office.
    let no = citizen.apply(&unit).await;
    let registrar = Registrar::sign_in(&stack, &staff_with(&seed, "accept", "370781")).await;
    registrar.wait_case(&no).await;
    let queue = registrar
        .http
        .get(format!("{}/cases", stack.extranet_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        queue.matches("SQ2").count(),
        queue.matches(&no).count(),
        "only the good application arrived: {queue}"
    );
    drop(stack);
}

/// `ow-extranet status --json` of the running stack.
fn extranet_status(stack: &Stack) -> Value {
    let out = std::process::Command::new(ow_e2e::binary("ow-extranet").unwrap())
        .args(["status", "--json", "--config"])
        .arg(stack.root.join("extranet.toml"))
        .env("OW_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_poison_message_does_not_stop_the_next() {
    let stack = Stack::start(StackOptions::default()).expect("the stack starts");
    let seed = stack.seed.clone();
    let unit = stack.demo_unit("370781", false).unwrap();
    let buyer = &seed["demo_buyers"][0];

    // A validly signed application whose number is not a valid case id. Before, the back
    // office refused it and queued its answer under that number, which no bundle can carry:
    // its packer failed on it forever and no status reached the portal again.
    let poison_name = "毒丸测试人";
    send_as_portal(
        &stack,
        ow_exchange::Message::ApplicationSubmitted(ow_exchange::ApplicationSubmitted {
            application_no: "SQ 2026/../1".into(),
            district_code: "370781".into(),
            business_type: "2000402".into(),
            unit_code: unit["unit_code"].as_str().map(str::to_owned),
            certificate_number: None,
            sellers: vec![],
            buyers: vec![ow_exchange::Party {
                name: poison_name.into(),
                id_type: "1".into(),
                id_number: "11010519491231002X".into(),
                phone: None,
                share: "1/1".into(),
            }],
            price_fen: 1,
            materials: vec![],
            applicant_ref: "acct".into(),
            submitted_at_ms: 1,
        }),
    )
    .await;

    // Behind it, a citizen applies and a registrar accepts: the case crosses to the back
    // office and its status comes back to the portal.
    let citizen = Citizen::register(
        &stack.internet_url,
        buyer["name"].as_str().unwrap(),
        buyer["id_number"].as_str().unwrap(),
        "13800138000",
    )
    .await;
    let no = citizen.apply(&unit).await;
    let registrar = Registrar::sign_in(&stack, &staff_with(&seed, "accept", "370781")).await;
    registrar.wait_case(&no).await;
    let (status, body) = registrar.act(&no, "accept", None).await;
    assert!(status < 400, "accept: {status} {body}");
    citizen.wait_status(&no, "accepted").await;

    // The operator sees the dead letter in the back office's status: id, kind, reason code,
    // and nothing personal.
    let report = extranet_status(&stack);
    assert_eq!(report["dead_lettered"], 1, "{report}");
    let letter = &report["dead_letters"][0];
    assert_eq!(letter["code"], "case-id-invalid", "{report}");
    assert_eq!(letter["kind"], "application-submitted", "{report}");
    assert_eq!(letter["direction"], "inbound", "{report}");
    let text = report.to_string();
    assert!(!text.contains(poison_name) && !text.contains("11010519491231002X"));
    let set_aside = stack.root.join("extranet/inbox/.rejected");
    assert_eq!(
        std::fs::read_dir(&set_aside)
            .unwrap()
            .filter(|e| e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".reason"))
            .count(),
        1
    );

    // An operator retries it (nothing was fixed, so it is set aside again, under a new id);
    // the retry is logged in the back office's exchange log.
    let first = letter["id"].as_str().unwrap().to_owned();
    let out = std::process::Command::new(ow_e2e::binary("ow-extranet").unwrap())
        .args(["retry-dead-letter", "--config"])
        .arg(stack.root.join("extranet.toml"))
        .arg(&first)
        .env("OW_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = Instant::now() + PATIENCE;
    loop {
        let report = extranet_status(&stack);
        let ids: Vec<&str> = report["dead_letters"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|d| d["id"].as_str())
            .collect();
        if ids.len() == 1 && ids[0] != first {
            break;
        }
        assert!(Instant::now() < deadline, "the retry never ran: {report}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = std::fs::read_to_string(
        stack
            .root
            .join("extranet/app/exchange/log")
            .join(ow_ferrylog::ENTRIES_FILE),
    )
    .unwrap();
    assert!(
        log.contains(&first) && log.contains("operator retry"),
        "{log}"
    );
}
