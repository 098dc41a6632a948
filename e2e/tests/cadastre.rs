//! The cadastral zone end to end, with the real binaries of all three zones, over HTTP, the
//! ferry's folders and discs only: the register crosses the one-way gateway into the intranet's
//! mirror; a first registration's survey goes the same way, is checked, drawn and approved by a
//! surveyor; the review comes back on a disc; the registrar records the new unit and issues its
//! certificate, and the new unit reaches the mirror. A survey overlapping an existing parcel is
//! caught by the checks, rejected, and the finding reaches the case after the return trip.
//!
//! The first case is applied for by a citizen on the portal's JSON API with the survey package
//! (the TXT pre-checked by the portal), and the registrar sends the survey the citizen
//! submitted; at the end the citizen has the certificate. The second case is sent as the portal
//! would send it (signed with the internet zone's key, on its sequence, through its ferry
//! agent) and its survey is uploaded at the counter.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::{Duration, Instant};

use common::{
    PATIENCE, PDF, Registrar, csrf_in, no_personal_data_in_clear, register_citizen,
    send_as_portal_with, sign_in_with_totp, staff_with,
};
use ow_e2e::{Stack, StackOptions};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

/// A citizen on the portal's JSON API.
struct Citizen {
    http: reqwest::Client,
    base: String,
    csrf: String,
}

impl Citizen {
    async fn register(base: &str, name: &str, id_number: &str, phone: &str) -> Citizen {
        let (http, csrf) = register_citizen(base, name, id_number, phone).await;
        Citizen {
            http,
            base: base.to_owned(),
            csrf,
        }
    }

    /// Applies for 首次登记 alone in [`DISTRICT`] with the survey package `survey` (a 界址点坐标
    /// TXT) and every other required material as a small PDF. Returns the application number.
    async fn apply_first_registration(&self, name: &str, id_number: &str, survey: &str) -> String {
        let form = json!({
            "district_code": DISTRICT,
            "buyers": [{"name": name, "id_number": id_number, "phone": "", "share": "1/1"}],
        });
        let mut multipart = Form::new()
            .text("application", form.to_string())
            .text("business_type", "1000301");
        for code in [
            "application_form",
            "applicant_identity",
            "land_source",
            "land_fee_receipts",
        ] {
            multipart = multipart.part(
                code,
                Part::bytes(PDF.to_vec())
                    .file_name(format!("{code}.pdf"))
                    .mime_str("application/pdf")
                    .unwrap(),
            );
        }
        multipart = multipart.part(
            "cadastral_survey",
            Part::bytes(survey.as_bytes().to_vec())
                .file_name("界址点坐标.txt")
                .mime_str("text/plain")
                .unwrap(),
        );
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
        assert_eq!(status, 201, "apply: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        body["application_no"].as_str().unwrap().to_owned()
    }

    /// Polls 我的证书 until a certificate is there; returns the list.
    async fn wait_certificates(&self) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let list: Value = self
                .http
                .get(format!("{}/api/v1/certificates", self.base))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if list.as_array().is_some_and(|l| !l.is_empty()) {
                return list;
            }
            assert!(
                Instant::now() < deadline,
                "no certificate reached the portal"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

const DISTRICT: &str = "370781";

/// A surveyor signed in to the cadastral zone.
struct Surveyor {
    http: reqwest::Client,
    base: String,
}

impl Surveyor {
    async fn sign_in(stack: &Stack) -> Surveyor {
        let base = stack.intranet_url.clone().unwrap();
        let account = stack.intranet_seed["surveyors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["district_code"] == DISTRICT && s["password"].is_string())
            .unwrap_or_else(|| panic!("no seeded surveyor in {DISTRICT}"))
            .clone();
        let (http, landed) = sign_in_with_totp(&base, &account).await;
        assert!(!landed.starts_with("/login"), "surveyor sign-in: {landed}");
        Surveyor { http, base }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// Waits until `path` shows `needle`.
    async fn wait_for(&self, path: &str, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (status, page) = self.get(path).await;
            if status == 200 && page.contains(needle) {
                return page;
            }
            assert!(
                Instant::now() < deadline,
                "{path} never showed {needle}: {page}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Waits for the package of application `no` in the queue; returns its page path.
    async fn wait_package(&self, no: &str) -> String {
        let queue = self.wait_for("/packages?status=all", no).await;
        let at = queue.find(no).unwrap();
        let start = queue[..at].rfind("href=\"/packages/").unwrap() + "href=\"".len();
        queue[start..start + queue[start..].find('"').unwrap()].to_owned()
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

/// A first registration (首次登记) of district [`DISTRICT`]: one applicant, no unit code yet.
fn first_registration(no: &str, seed: &Value) -> ow_exchange::Message {
    let buyer = &seed["demo_buyers"][0];
    ow_exchange::Message::ApplicationSubmitted(ow_exchange::ApplicationSubmitted {
        application_no: no.into(),
        district_code: DISTRICT.into(),
        business_type: "1000301".into(),
        unit_code: None,
        certificate_number: None,
        sellers: Vec::new(),
        buyers: vec![ow_exchange::Party {
            name: buyer["name"].as_str().unwrap().into(),
            id_type: "1".into(),
            id_number: buyer["id_number"].as_str().unwrap().into(),
            phone: None,
            share: "1/1".into(),
        }],
        price_fen: 0,
        materials: vec![ow_exchange::MaterialRef {
            item: "m01.pdf".into(),
            checklist_code: "land_source".into(),
            file_name: "土地出让合同.pdf".into(),
            media_type: "application/pdf".into(),
            size: PDF.len() as u64,
            blake3: blake3::hash(PDF).to_hex().to_string(),
        }],
        applicant_ref: "acct-e2e-first".into(),
        submitted_at_ms: chrono::Utc::now().timestamp_millis(),
    })
}

impl Registrar {
    async fn page(&self, path: &str) -> String {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Sends the case's survey from the counter, as the 权籍调查 panel's form does.
    async fn send_survey(&self, no: &str, file_name: &str, survey: &str) -> (u16, String) {
        let csrf = csrf_in(&self.page(&format!("/cases/{no}")).await);
        let form = Form::new().text("csrf", csrf).part(
            "survey",
            Part::bytes(survey.as_bytes().to_vec())
                .file_name(file_name.to_owned())
                .mime_str("text/plain")
                .unwrap(),
        );
        let r = self
            .http
            .post(format!("{}/cases/{no}/survey", self.base))
            .multipart(form)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// Waits until the case page shows `needle`.
    async fn wait_case_shows(&self, no: &str, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let page = self.page(&format!("/cases/{no}")).await;
            if page.contains(needle) {
                return page;
            }
            assert!(
                Instant::now() < deadline,
                "case {no} never showed {needle}: {page}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

/// Carries discs from the intranet until one arrives (the review must be packed first).
async fn carry_back(stack: &Stack) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if stack
            .carry_discs("intranet-to-extranet", "intranet", "extranet")
            .unwrap()
            > 0
        {
            return;
        }
        assert!(Instant::now() < deadline, "no disc ever left the intranet");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The demo survey files `ow-intranet seed-demo` writes.
fn demo_survey(stack: &Stack, name: &str) -> String {
    let dir = stack.root.join("demo-surveys");
    let out = std::process::Command::new(ow_e2e::binary("ow-intranet").unwrap())
        .args(["seed-demo", "--config"])
        .arg(stack.root.join("intranet.toml"))
        .arg("--surveys-out")
        .arg(&dir)
        .env("OW_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(dir.join(name)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_registration_is_surveyed_in_the_intranet_and_answered_on_a_disc() {
    let stack = Stack::start(StackOptions {
        intranet: true,
        ..StackOptions::default()
    })
    .expect("the stack starts with the cadastral zone");
    let seed = stack.seed.clone();
    let demo_unit = stack.demo_unit(DISTRICT, false).unwrap();

    // The register crossed the one-way gateway into the intranet's mirror.
    let surveyor = Surveyor::sign_in(&stack).await;
    surveyor
        .wait_for("/register", demo_unit["unit_code"].as_str().unwrap())
        .await;

    // A citizen applies for 首次登记 on the portal with the survey package; the case is
    // accepted and the reviewer sends the survey the citizen submitted, without uploading it.
    let clean = demo_survey(&stack, "demo-survey-clean.txt");
    let buyer = &seed["demo_buyers"][0];
    let (buyer_name, buyer_id) = (
        buyer["name"].as_str().unwrap(),
        buyer["id_number"].as_str().unwrap(),
    );
    let citizen = Citizen::register(&stack.internet_url, buyer_name, buyer_id, "13800138000").await;
    let no = citizen
        .apply_first_registration(buyer_name, buyer_id, &clean)
        .await;
    let no = no.as_str();
    let accept = Registrar::sign_in(&stack, &staff_with(&seed, "accept", DISTRICT)).await;
    accept.wait_case(no).await;
    assert_eq!(accept.act(no, "accept", None).await.0, 200);
    let review = Registrar::sign_in(&stack, &staff_with(&seed, "review", DISTRICT)).await;
    let page = review.page(&format!("/cases/{no}")).await;
    assert!(page.contains("送审申请人提交的成果"), "{page}");
    let marker = "name=\"material\" value=\"";
    let start = page.find(marker).expect("the citizen's survey is listed") + marker.len();
    let material = page[start..start + page[start..].find('"').unwrap()].to_owned();
    let csrf = csrf_in(&page);
    let r = review
        .http
        .post(format!("{}/cases/{no}/survey/submitted", review.base))
        .form(&[("csrf", csrf.as_str()), ("material", material.as_str())])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let page = r.text().await.unwrap();
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("survey_review"), "{page}");

    // In the intranet: the package is checked and drawn; the surveyor approves it.
    let package = surveyor.wait_package(no).await;
    let (status, page) = surveyor.get(&package).await;
    assert_eq!(status, 200);
    assert!(page.contains("<svg") && page.contains(">J1<"), "{page}");
    let unit_code = format!("{DISTRICT}001001GB09001F00010001");
    let csrf = csrf_in(&page);
    let (status, page) = surveyor
        .post(
            &format!("{package}/approve"),
            &[("csrf", csrf.as_str()), ("code_0", unit_code.as_str())],
        )
        .await;
    assert!(status == 200 || status == 303, "{status}: {page}");

    // The review leaves on a disc; the case comes back with its unit code.
    carry_back(&stack).await;
    review.wait_case_shows(no, &unit_code).await;
    let page = review.page(&format!("/cases/{no}")).await;
    let csrf = csrf_in(&page);
    let r = review
        .http
        .post(format!("{}/cases/{no}/survey/unit", review.base))
        .form(&[
            ("csrf", csrf.as_str()),
            ("location", "青州市云门山街道示范新建小区1号楼"),
            ("usage", "住宅"),
            ("right_type", "4"),
            ("right_nature", "出让"),
            ("use_term", "2026-01-01起2095-12-31止"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    assert_eq!(review.act(no, "review", None).await.0, 200);
    let record = Registrar::sign_in(&stack, &staff_with(&seed, "record", DISTRICT)).await;
    let (status, page) = record.act(no, "record", None).await;
    assert_eq!(status, 200, "{page}");
    let cert = Registrar::sign_in(&stack, &staff_with(&seed, "certificate", DISTRICT)).await;
    assert_eq!(cert.act(no, "prepare", None).await.0, 200);
    let (status, page) = cert.act(no, "issue", None).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("不动产权第"), "a certificate number: {page}");

    // The new unit reaches the mirror through the register log.
    surveyor.wait_for("/register", &unit_code).await;
    // The citizen has the certificate (我的证书).
    let certificates = citizen.wait_certificates().await;
    assert_eq!(certificates.as_array().unwrap().len(), 1, "{certificates}");

    // A survey overlapping an existing parcel: the checks name the overlap, the surveyor
    // rejects it, and after the disc the citizen's case asks for a corrected survey with it.
    let no = "SQ2026E2EFIRST02";
    send_as_portal_with(
        &stack,
        first_registration(no, &seed),
        vec![("m01.pdf", "application/pdf", PDF.to_vec())],
    )
    .await;
    accept.wait_case(no).await;
    assert_eq!(accept.act(no, "accept", None).await.0, 200);
    let overlapping = demo_survey(&stack, "demo-survey-overlapping.txt");
    let (status, page) = review.send_survey(no, "界址点坐标.txt", &overlapping).await;
    assert_eq!(status, 200, "{page}");
    let package = surveyor.wait_package(no).await;
    let page = surveyor.wait_for(&package, "overlap-existing").await;
    let csrf = csrf_in(&page);
    let (status, page) = surveyor
        .post(
            &format!("{package}/reject"),
            &[
                ("csrf", csrf.as_str()),
                ("reason", "与已登记宗地重叠，请重新测量"),
            ],
        )
        .await;
    assert!(status == 200 || status == 303, "{status}: {page}");
    carry_back(&stack).await;
    let page = review.wait_case_shows(no, "supplement_requested").await;
    assert!(
        page.contains("重叠"),
        "the finding reaches the case: {page}"
    );

    // Every file the three zones, their agents and the discs left: no personal data in clear.
    let mut stack = stack;
    stack.stop();
    no_personal_data_in_clear(&stack.root, &seed);
}
