//! What the end-to-end tests share: an HTTP client, a registrar signed in with TOTP, the seeded
//! staff, and a message sent as the portal would send it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use ow_e2e::Stack;
use serde_json::Value;

/// How long to wait for something to cross the ferry. Crossings take well under a second on an
/// idle machine; while other jobs wrote gigabytes to the same disk, a sync has been seen to
/// take a minute, so wait longer than that rather than fail a correct run.
pub const PATIENCE: Duration = Duration::from_secs(180);

pub const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n";

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::limited(5))
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// Signs `account` (`username`, `password`, `totp_secret` as a seed printed them) in to the
/// zone server at `base` with password and TOTP, as both staff servers ask; returns the client
/// and the path it landed on.
pub async fn sign_in_with_totp(base: &str, account: &Value) -> (reqwest::Client, String) {
    let http = client();
    let page = http.get(format!("{base}/login")).send().await.unwrap();
    let csrf = csrf_in(&page.text().await.unwrap());
    let r = http
        .post(format!("{base}/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", account["username"].as_str().unwrap()),
            ("password", account["password"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    let page = r.text().await.unwrap();
    let csrf = csrf_in(&page);
    let secret =
        ow_web::totp::TotpSecret::from_base32(account["totp_secret"].as_str().unwrap()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let r = http
        .post(format!("{base}/login/totp"))
        .form(&[("csrf", csrf.as_str()), ("code", &secret.code_at(now))])
        .send()
        .await
        .unwrap();
    let landed = r.url().path().to_owned();
    (http, landed)
}

/// A registrar signed in to the back office with password and TOTP.
pub struct Registrar {
    pub http: reqwest::Client,
    pub base: String,
}

pub fn csrf_in(html: &str) -> String {
    let start = html
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no CSRF field in the page: {html}"))
        + "name=\"csrf\" value=\"".len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

impl Registrar {
    pub async fn sign_in(stack: &Stack, staff: &Value) -> Registrar {
        let base = stack.extranet_url.clone();
        let (http, landed) = sign_in_with_totp(&base, staff).await;
        assert!(landed.starts_with("/cases"), "TOTP step: {landed}");
        Registrar { http, base }
    }

    pub async fn case_page(&self, no: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/cases/{no}", self.base))
            .send()
            .await
            .unwrap()
    }

    /// Waits until the case has arrived over the ferry.
    pub async fn wait_case(&self, no: &str) {
        let deadline = Instant::now() + PATIENCE;
        while self.case_page(no).await.status() != 200 {
            assert!(
                Instant::now() < deadline,
                "case {no} never arrived in the back office"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn act(&self, no: &str, action: &str, reason: Option<&str>) -> (u16, String) {
        let page = self.case_page(no).await.text().await.unwrap();
        let csrf = csrf_in(&page);
        // The registrar's opinion (required for 审核 and 登簿), and the confirmation that 登簿
        // and 发证 ask for on a page of their own.
        let mut form = vec![
            ("csrf", csrf.clone()),
            ("opinion", "材料齐全，同意。".to_owned()),
            ("confirmed", "yes".to_owned()),
        ];
        if let Some(reason) = reason {
            form.push(("reason", reason.to_owned()));
        }
        let r = self
            .http
            .post(format!("{}/cases/{no}/{action}", self.base))
            .form(&form)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

pub fn staff_with(seed: &Value, role: &str, district: &str) -> Value {
    seed["staff"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["district_code"] == district
                && s["roles"].as_array().unwrap().iter().any(|r| r == role)
                && s["password"].is_string()
        })
        .unwrap_or_else(|| panic!("no seeded {role} staff in {district}"))
        .clone()
}

/// Packs `message` as the internet zone would, with its keys and on its sequence, into the
/// portal's outbox, where the running ferry agent picks it up — but without the portal's input
/// checks: what a portal bug, or an attacker inside the internet zone, could send.
pub async fn send_as_portal(stack: &Stack, message: ow_exchange::Message) {
    send_as_portal_with(stack, message, Vec::new()).await;
}

/// [`send_as_portal`] with files besides `message.json`: `(item name, media type, bytes)`.
pub async fn send_as_portal_with(
    stack: &Stack,
    message: ow_exchange::Message,
    files: Vec<(&str, &str, Vec<u8>)>,
) {
    let root = &stack.root;
    // Outside the stack's folder: this clear message.json is the test's, not the system's, and
    // must not be found by the scan for personal data in clear.
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().to_path_buf();
    let path = dir.join("message.json");
    let kind = message.kind().to_owned();
    let envelope = ow_exchange::Envelope::new(message, 1);
    std::fs::write(&path, serde_json::to_vec(&envelope).unwrap()).unwrap();
    let mut items = vec![ow_ferry::pack::PackItem {
        name: "message.json".into(),
        media_type: "application/json".into(),
        path,
        open: None,
    }];
    for (name, media_type, bytes) in files {
        let file = dir.join(name);
        std::fs::write(&file, bytes).unwrap();
        items.push(ow_ferry::pack::PackItem {
            name: name.into(),
            media_type: media_type.into(),
            path: file,
            open: None,
        });
    }
    let state = ow_ferry::state::FerryState::open(&root.join("internet/ferry/ferry-state.db"))
        .await
        .unwrap();
    ow_ferry::pack::pack_into_outbox(
        &state,
        &ow_keys::load_signing_key(&root.join("keys/internet.sign.secret")).unwrap(),
        &ow_keys::load_trust(&root.join("trust.toml")).unwrap(),
        &root.join("internet/outbox"),
        &ow_ferry::pack::PackRequest {
            channel: "internet-to-extranet".parse().unwrap(),
            kind,
            case_id: None,
            valid_for: chrono::Duration::days(1),
            encrypt: true,
            items,
        },
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    state.close().await;
}

/// Scans every file under `root` for the seeded people, the demo buyers and the citizens this
/// test registered.
pub fn no_personal_data_in_clear(root: &std::path::Path, seed: &Value) {
    use ow_pii::scan::{Needle, PersonalKind, scan_tree};
    let mut needles = Vec::new();
    let people = seed["units"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|u| u["holders"].as_array().unwrap().iter())
        .chain(seed["demo_buyers"].as_array().unwrap().iter());
    for person in people {
        needles.push(Needle::new(
            PersonalKind::Name,
            person["name"].as_str().unwrap(),
        ));
        needles.push(Needle::new(
            PersonalKind::IdNumber,
            person["id_number"].as_str().unwrap(),
        ));
    }
    needles.push(Needle::new(PersonalKind::Name, "李四"));
    needles.push(Needle::new(PersonalKind::IdNumber, "110101199003074477"));
    for phone in ["13800138000", "13900139000"] {
        needles.push(Needle::new(PersonalKind::Phone, phone));
    }
    assert!(needles.len() > 20, "the seed lists people");
    let files = ow_pii::scan::files_under(root);
    assert!(
        files
            .iter()
            .any(|f| f.starts_with(root.join("extranet/app")))
            && (!root.join("intranet/app").exists()
                || files
                    .iter()
                    .any(|f| f.starts_with(root.join("intranet/app"))))
            && files.iter().any(|f| f.to_string_lossy().ends_with(".log")),
        "the scan sees the stack's files: {files:?}"
    );
    // Certificates travel sealed in the queued row and staging files are removed once packed:
    // no hit at all is allowed, the back office's hand-off and the exchange's staging included.
    let hits = scan_tree(root, &needles);
    let list = hits
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        hits.is_empty(),
        "personal data in clear in {} place(s):\n{list}",
        hits.len()
    );
}

/// Registers a citizen on the portal's JSON API and signs them in; returns the client (with
/// the session cookie) and the CSRF token the API's writes need.
pub async fn register_citizen(
    base: &str,
    name: &str,
    id_number: &str,
    phone: &str,
) -> (reqwest::Client, String) {
    let http = client();
    let password = "Qingzhou-2026!";
    let r = http
        .post(format!("{base}/api/v1/register"))
        .json(
            &serde_json::json!({"name": name, "id_number": id_number, "phone": phone,
                  "password": password, "password_confirm": password}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "register: {}", r.text().await.unwrap());
    let r = http
        .post(format!("{base}/api/v1/login"))
        .json(&serde_json::json!({"login": id_number, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "login");
    let body: Value = r.json().await.unwrap();
    (http, body["csrf_token"].as_str().unwrap().to_owned())
}
