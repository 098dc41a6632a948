//! Test harness: a real server on 127.0.0.1:0 with a temporary data folder and fresh keys,
//! seeded with the demo data, and a registrar's browser (reqwest with a cookie store).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use ow_bundle::{Channel, Zone};
use ow_extranet::exchange::{
    self, ApplicationSubmitted, Disposition, Envelope, InboundFile, InboundMessage, MaterialRef,
    Message, Party,
};
use ow_extranet::import::Importer;
use ow_extranet::seed::SeedSummary;
use ow_extranet::{AppState, Mode, Settings};
use ow_web::totp::TotpSecret;

/// A running back office.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The server's state (same database, keys, audit log).
    pub state: AppState,
    /// What seeding created.
    pub seed: SeedSummary,
    /// The temporary folder (data, keys).
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Settings for a fresh folder, with fresh keys; `database_url` empty = SQLite.
pub fn settings_in(dir: &std::path::Path, database_url: &str) -> Settings {
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    ow_pii::PiiKeyring::generate_key_file(&keys.join("pii.keys")).unwrap();
    ow_certificate::generate_key_file(&keys, "extranet-cert").unwrap();
    ow_keys::generate_zone_keys(&keys, Zone::Extranet).unwrap();
    let s = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("data"),
        database_url: database_url.into(),
        pii_key_file: keys.join("pii.keys"),
        certificate_key_file: keys.join("extranet-cert.secret"),
        exchange: ow_extranet::config::ExchangeSettings {
            signing_key_file: keys.join("extranet.sign.secret"),
            encryption_key_file: keys.join("extranet.enc.secret"),
            outbox: dir.join("outbox"),
            inbox: dir.join("inbox"),
            ..Default::default()
        },
        login: ow_extranet::config::LoginSettings {
            // Tests sign many registrars in from 127.0.0.1; tests/staff.rs sets real limits.
            throttle_per_minute: 10_000,
            throttle_burst: 10_000,
            ..Default::default()
        },
        ..Settings::default()
    }
    .resolve(None);
    ow_config::Validate::validate(&s).unwrap();
    s
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// [`TestServer::start`] with `adjust` applied to the settings first.
    pub async fn start_with(adjust: impl FnOnce(&mut Settings)) -> TestServer {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("OW_LOG")
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().unwrap();
        let mut settings = settings_in(dir.path(), "");
        adjust(&mut settings);
        let state = AppState::open(settings, Mode::Offline).await.unwrap();
        let seed = ow_extranet::seed::seed_demo(&state).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = state.clone();
        let task = tokio::spawn(async move {
            ow_extranet::serve(listener, served, async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        TestServer {
            base,
            state,
            seed,
            dir,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Stops the server (final audit checkpoint written).
    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    pub fn staff(&self, username: &str) -> (String, String) {
        let s = self
            .seed
            .staff
            .iter()
            .find(|s| s.username == username)
            .unwrap_or_else(|| panic!("no seeded staff {username}"));
        (s.password.clone().unwrap(), s.totp_secret.clone().unwrap())
    }

    pub fn unit(&self, code: &str) -> &ow_extranet::seed::SeedUnit {
        self.seed
            .units
            .iter()
            .find(|u| u.unit_code == code)
            .unwrap()
    }

    /// Logs in `username` with password and TOTP.
    pub async fn login(&self, username: &str) -> Registrar {
        self.login_at_step(username, 0).await
    }

    /// Logs in `username` again in the same 30 s: a code is accepted once, so this one uses
    /// the next step's code (the server accepts one step of clock skew).
    pub async fn login_again(&self, username: &str) -> Registrar {
        self.login_at_step(username, 1).await
    }

    async fn login_at_step(&self, username: &str, step: u64) -> Registrar {
        let (password, totp) = self.staff(username);
        let r = Registrar::new(&self.base);
        let (status, body) = r.password_step(username, &password).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("动态口令"), "{body}");
        let code = TotpSecret::from_base32(&totp)
            .unwrap()
            .code_at(chrono::Utc::now().timestamp() as u64 + 30 * step);
        let (status, body) = r.totp_step(&code).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("业务队列"), "{body}");
        r
    }

    /// Imports an application through the importer, exactly once.
    pub async fn import(&self, msg: &InboundMessage) -> Option<Disposition> {
        let d =
            exchange::import_message(&self.state.store, &Importer::new(self.state.clone()), msg)
                .await
                .unwrap();
        self.state.after_commit().await;
        d
    }

    /// Messages queued for the portal.
    pub async fn outbox(&self) -> Vec<(Envelope, Vec<exchange::OutboundFile>)> {
        exchange::queued_messages(
            &self.state.store,
            &self.state.pii,
            &Channel {
                from: Zone::Extranet,
                to: Zone::Internet,
            },
        )
        .await
        .unwrap()
    }

    pub fn audit_dir(&self) -> PathBuf {
        self.state.settings.audit.dir.clone()
    }
}

/// A registrar's browser.
pub struct Registrar {
    pub client: reqwest::Client,
    pub base: String,
}

pub fn csrf_of(body: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let at = body
        .find(marker)
        .unwrap_or_else(|| panic!("no csrf field in {body}"))
        + marker.len();
    body[at..].split('"').next().unwrap().to_owned()
}

impl Registrar {
    pub fn new(base: &str) -> Registrar {
        Registrar {
            client: reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .unwrap(),
            base: base.to_owned(),
        }
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .client
            .get(format!("{}{}", self.base, path))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let r = self
            .client
            .post(format!("{}{}", self.base, path))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    }

    pub async fn password_step(&self, username: &str, password: &str) -> (u16, String) {
        let (_, page) = self.get("/login").await;
        let csrf = csrf_of(&page);
        self.post(
            "/login",
            &[
                ("csrf", &csrf),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    pub async fn totp_step(&self, code: &str) -> (u16, String) {
        let (_, page) = self.get("/login/totp").await;
        let csrf = csrf_of(&page);
        self.post("/login/totp", &[("csrf", &csrf), ("code", code)])
            .await
    }

    /// Takes `action` on case `no` as a registrar does: the extra form fields, a standard
    /// opinion where the step needs one and none is given, and, when a confirmation page
    /// comes back, its confirm button. Returns the final page.
    pub async fn act(&self, no: &str, action: &str, extra: &[(&str, &str)]) -> (u16, String) {
        let mut form: Vec<(&str, &str)> = extra.to_vec();
        if matches!(action, "review" | "record") && !form.iter().any(|(k, _)| *k == "opinion") {
            form.push(("opinion", "材料齐全，符合登记条件，同意。"));
        }
        let (status, page) = self.act_raw(no, action, &form).await;
        if status == 200 && page.contains("id=\"confirm-form\"") {
            return self.confirm(no, action, &page).await;
        }
        (status, page)
    }

    /// Posts exactly `extra` (and the CSRF token) to `action` on case `no`.
    pub async fn act_raw(&self, no: &str, action: &str, extra: &[(&str, &str)]) -> (u16, String) {
        let (status, page) = self.get(&format!("/cases/{no}")).await;
        let csrf = if status == 200 {
            csrf_of(&page)
        } else {
            // Another district's case: take the token from a page we can see.
            let (_, q) = self.get("/cases").await;
            csrf_of(&q)
        };
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(extra);
        self.post(&format!("/cases/{no}/{action}"), &form).await
    }

    /// Submits the form of a confirmation page as its button does.
    pub async fn confirm(&self, no: &str, action: &str, page: &str) -> (u16, String) {
        let form_html = &page[page
            .find("id=\"confirm-form\"")
            .expect("a confirmation form")..];
        let hidden = |name: &str| -> String {
            let marker = format!("name=\"{name}\" value=\"");
            let at = form_html.find(&marker).expect("hidden field") + marker.len();
            html_unescape(form_html[at..].split('"').next().unwrap())
        };
        let (csrf, opinion, confirmed) = (hidden("csrf"), hidden("opinion"), hidden("confirmed"));
        self.post(
            &format!("/cases/{no}/{action}"),
            &[
                ("csrf", csrf.as_str()),
                ("opinion", opinion.as_str()),
                ("confirmed", confirmed.as_str()),
            ],
        )
        .await
    }
}

/// Undoes HTML escaping of an attribute value (named and numeric character references), as
/// a browser does before it submits the value.
pub fn html_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A small valid PDF.
pub fn pdf(tag: &str) -> Vec<u8> {
    format!("%PDF-1.4\n% {tag}\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n").into_bytes()
}

pub fn party(name: &str, id: &str, share: &str) -> Party {
    Party {
        name: name.into(),
        id_type: "1".into(),
        id_number: id.into(),
        phone: Some("13800138000".into()),
        share: share.into(),
    }
}

/// An `ApplicationSubmitted` for a transfer of `unit_code` with two PDF materials.
pub fn application(
    no: &str,
    district: &str,
    unit_code: &str,
    sellers: Vec<Party>,
    buyers: Vec<Party>,
) -> InboundMessage {
    let files: Vec<(String, Vec<u8>, &str)> = vec![
        (
            "m01.pdf".into(),
            pdf(&format!("{no} contract")),
            "sale_contract",
        ),
        (
            "m02.pdf".into(),
            pdf(&format!("{no} form")),
            "application_form",
        ),
    ];
    let materials = files
        .iter()
        .map(|(item, bytes, code)| MaterialRef {
            item: item.clone(),
            checklist_code: (*code).into(),
            file_name: format!("{code}.pdf"),
            media_type: "application/pdf".into(),
            size: bytes.len() as u64,
            blake3: blake3::hash(bytes).to_hex().to_string(),
        })
        .collect();
    let message = Message::ApplicationSubmitted(ApplicationSubmitted {
        application_no: no.into(),
        district_code: district.into(),
        business_type: "2000402".into(),
        unit_code: Some(unit_code.into()),
        certificate_number: None,
        sellers,
        buyers,
        price_fen: 150_000_000,
        materials,
        applicant_ref: "acct-test".into(),
        submitted_at_ms: ow_store::now_ms(),
    });
    InboundMessage {
        bundle_id: ow_store::new_id(),
        channel: Channel {
            from: Zone::Internet,
            to: Zone::Extranet,
        },
        envelope: Envelope::new(message, ow_store::now_ms()),
        files: files
            .into_iter()
            .map(|(item, bytes, _)| InboundFile::from_bytes(item, "application/pdf", bytes))
            .collect(),
    }
}

/// The status code of a case page (`data-status`).
pub fn case_status(page: &str) -> String {
    let marker = "id=\"case-status\" data-status=\"";
    let at = page
        .find(marker)
        .unwrap_or_else(|| panic!("no status in {page}"))
        + marker.len();
    page[at..].split('"').next().unwrap().to_owned()
}
