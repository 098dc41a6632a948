//! A real portal on 127.0.0.1:0 with a temporary data folder, and a phone-like client.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::field_reassign_with_default
)]

use std::path::PathBuf;
use std::sync::Arc;

use ow_certificate::{
    AreaM2, ECertificate, FORMAT, Holder, IdDocumentType, JointOwnership, LicenseId,
    SignedCertificate, SigningKey, VerificationCode,
};
use ow_domain::{
    CertificateKind, CertificateNumber, IdNumber, PersonName, RegistrationType, RightType, Share,
    UnitCode,
};
use ow_exchange::{Disposition, Envelope, ImportHandler, InboundFile, InboundMessage, Message};
use ow_internet::{App, AppState, PortalImporter, Settings};
use reqwest::{Client, StatusCode};

pub const UNIT: &str = "370781001001GB00001F00010101";
pub const PASSWORD: &str = "Qingzhou#2026pw";

/// A valid 18-character ID number from a 17-digit prefix.
pub fn id_number(prefix17: &str) -> String {
    let c = IdNumber::check_char_for(prefix17).expect("prefix");
    format!("{prefix17}{c}")
}

pub struct Portal {
    pub base: String,
    pub state: AppState,
    pub data_dir: PathBuf,
    pub cert_key: SigningKey,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), ow_internet::AppError>>>,
    _dir: tempfile::TempDir,
}

/// Starts a portal; `database_url` `None` = SQLite in the data folder.
pub async fn start(database_url: Option<String>) -> Portal {
    start_with(database_url, |_| {}).await
}

pub async fn start_with(database_url: Option<String>, tweak: impl FnOnce(&mut Settings)) -> Portal {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let pii = keys.join("pii.keys");
    ow_pii::PiiKeyring::generate_key_file(&pii).expect("pii key");
    let cert = ow_certificate::generate_key_file(&keys, "extranet-cert").expect("cert key");
    let cert_key = ow_certificate::load_signing_key(&cert.secret_path).expect("signing key");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut settings = Settings::default();
    settings.listen = addr;
    settings.public_url = format!("http://{addr}");
    settings.data_dir = dir.path().join("data");
    if let Some(url) = database_url {
        settings.database_url = url.into();
    }
    settings.pii_key_file = pii;
    settings.certificate_key_file = cert.public_path.clone();
    settings.exchange.enabled = false;
    settings.password.argon2_memory_kib = 8;
    settings.password.argon2_iterations = 1;
    settings.uploads.max_file_bytes = 64 * 1024;
    settings.lockout.max_failures = 3;
    // Tests sign many citizens in from 127.0.0.1; tests/accounts.rs sets real limits.
    settings.throttle.login_per_minute = 10_000;
    settings.throttle.login_burst = 10_000;
    tweak(&mut settings);
    let data_dir = settings.data_dir.clone();
    let state = App::build(settings).await.expect("app builds");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(ow_internet::serve(listener, state.clone(), async move {
        let _ = rx.await;
    }));
    Portal {
        base: format!("http://{addr}"),
        state,
        data_dir,
        cert_key,
        stop: Some(tx),
        task: Some(task),
        _dir: dir,
    }
}

impl Portal {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server and waits for it; returns the temporary folder (deleted when dropped).
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("server task").expect("server ran");
        }
        self.state.store.close().await;
        self._dir
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(self.state.store.reader())
            .await
            .expect(sql)
    }

    /// Feeds one message to the import handler, as the exchange would.
    pub async fn import(&self, message: Message, files: Vec<InboundFile>) -> Disposition {
        let msg = InboundMessage {
            bundle_id: uuid::Uuid::now_v7().to_string(),
            channel: ow_internet::INBOUND,
            envelope: Envelope::new(message, ow_store::now_ms()),
            files,
        };
        let handler = PortalImporter::new(&self.state);
        let mut tx = self.state.store.begin().await.unwrap();
        let d = handler.import(&mut tx, &msg).await.expect("import");
        tx.commit().await.unwrap();
        d
    }

    /// A signed certificate for `application_no` held by `holders` (name, id, share).
    pub fn certificate(
        &self,
        sequence: u32,
        application_no: &str,
        holders: &[(&str, &str, &str)],
    ) -> (SignedCertificate, VerificationCode) {
        let code = VerificationCode::generate().unwrap();
        let number = CertificateNumber::new(
            '鲁',
            2026,
            "青州市",
            CertificateKind::RightsCertificate,
            sequence,
        )
        .unwrap();
        let cert = ECertificate {
            format: FORMAT.into(),
            certificate_number: number,
            license_id: LicenseId::new(
                CertificateKind::RightsCertificate,
                "370781",
                u64::from(sequence),
                1,
            )
            .unwrap(),
            issuer: "青州市不动产登记中心".into(),
            district_code: "370781".into(),
            unit_code: UnitCode::parse(UNIT).unwrap(),
            location: "青州市云门山街道驼山路88号3号楼2单元101室".into(),
            right_type: RightType::StateConstructionLandAndBuilding,
            right_nature: "出让/市场化商品房".into(),
            registration_type: RegistrationType::Transfer,
            usage: "城镇住宅用地/成套住宅".into(),
            area_m2: AreaM2::parse("89.50").unwrap(),
            use_term: String::new(),
            holders: holders
                .iter()
                .map(|(n, id, share)| Holder {
                    name: PersonName::parse(n).unwrap(),
                    id_type: IdDocumentType::ResidentId,
                    id_number: (*id).into(),
                    share: if holders.len() > 1 {
                        Some(Share::parse(share).unwrap())
                    } else {
                        None
                    },
                })
                .collect(),
            joint_ownership: if holders.len() > 1 {
                JointOwnership::InShares
            } else {
                JointOwnership::Sole
            },
            obligors: Vec::new(),
            recorded_at: chrono::DateTime::parse_from_rfc3339("2026-03-02T09:30:00+08:00").unwrap(),
            issued_at: chrono::DateTime::parse_from_rfc3339("2026-03-02T15:00:00+08:00").unwrap(),
            case_id: application_no.into(),
            verification_code: code,
            replaces: Vec::new(),
            notes: String::new(),
        };
        (ow_certificate::sign(&cert, &self.cert_key).unwrap(), code)
    }
}

/// A client like a phone browser: cookies, follows redirects.
pub fn browser() -> Client {
    Client::builder().cookie_store(true).build().unwrap()
}

/// The `csrf` hidden field of a page.
pub fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no csrf field in {html}"))
        + marker.len();
    let end = html[start..].find('"').unwrap();
    html[start..start + end].to_owned()
}

pub async fn page(c: &Client, url: &str) -> (StatusCode, String, String) {
    let r = c.get(url).send().await.unwrap();
    let status = r.status();
    let final_url = r.url().to_string();
    (status, final_url, r.text().await.unwrap())
}

pub async fn post_form(
    c: &Client,
    url: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String, String) {
    let r = c.post(url).form(form).send().await.unwrap();
    let status = r.status();
    let final_url = r.url().to_string();
    (status, final_url, r.text().await.unwrap())
}

pub async fn register(p: &Portal, c: &Client, name: &str, id: &str, phone: &str) {
    let (_, _, html) = page(c, &p.url("/register")).await;
    let csrf = csrf_of(&html);
    let (status, url, body) = post_form(
        c,
        &p.url("/register"),
        &[
            ("csrf", &csrf),
            ("name", name),
            ("id_number", id),
            ("phone", phone),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(url.contains("/login?registered=1"), "{url}");
}

pub async fn login(
    p: &Portal,
    c: &Client,
    login: &str,
    password: &str,
) -> (StatusCode, String, String) {
    let (_, _, html) = page(c, &p.url("/login")).await;
    let csrf = csrf_of(&html);
    post_form(
        c,
        &p.url("/login"),
        &[("csrf", &csrf), ("login", login), ("password", password)],
    )
    .await
}

pub fn pdf(tag: &str) -> Vec<u8> {
    format!("%PDF-1.7\n% {tag}\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n").into_bytes()
}

/// Starts a draft; returns its id.
pub async fn new_draft(p: &Portal, c: &Client) -> String {
    let (_, _, html) = page(c, &p.url("/apply")).await;
    let csrf = csrf_of(&html);
    let (status, url, _) = post_form(c, &p.url("/drafts"), &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::OK);
    url.split("/drafts/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned()
}

pub async fn upload(
    p: &Portal,
    c: &Client,
    draft: &str,
    code: &str,
    name: &str,
    bytes: Vec<u8>,
) -> (StatusCode, String) {
    let (_, _, html) = page(c, &p.url(&format!("/drafts/{draft}/materials"))).await;
    let csrf = csrf_of(&html);
    let form = reqwest::multipart::Form::new().text("csrf", csrf).part(
        code.to_owned(),
        reqwest::multipart::Part::bytes(bytes)
            .file_name(name.to_owned())
            .mime_str("application/pdf")
            .unwrap(),
    );
    let r = c
        .post(p.url(&format!("/drafts/{draft}/materials")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

/// Fills a draft completely (seller `seller`, two buyers 1/2 each) and submits it; returns the
/// application number.
pub async fn apply(
    p: &Portal,
    c: &Client,
    seller: (&str, &str),
    buyers: [(&str, &str); 2],
) -> String {
    let draft = new_draft(p, c).await;
    let (_, _, html) = page(c, &p.url(&format!("/drafts/{draft}/unit"))).await;
    let csrf = csrf_of(&html);
    let (status, url, body) = post_form(
        c,
        &p.url(&format!("/drafts/{draft}/unit")),
        &[
            ("csrf", &csrf),
            ("unit_code", UNIT),
            ("certificate_number", ""),
            ("price_yuan", "1250000"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(url.ends_with("/parties"), "{url}");
    let (status, url, body) = post_form(
        c,
        &p.url(&format!("/drafts/{draft}/parties")),
        &[
            ("csrf", &csrf),
            ("seller_rows", "1"),
            ("buyer_rows", "2"),
            ("seller_0_name", seller.0),
            ("seller_0_id_number", seller.1),
            ("seller_0_share", "1"),
            ("buyer_0_name", buyers[0].0),
            ("buyer_0_id_number", buyers[0].1),
            ("buyer_0_share", "1/2"),
            ("buyer_1_name", buyers[1].0),
            ("buyer_1_id_number", buyers[1].1),
            ("buyer_1_share", "50%"),
            ("action", "save"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(url.ends_with("/materials"), "{url}");
    for m in ow_domain::BusinessType::TransferSecondHand.required_materials() {
        if m.required {
            let (status, body) = upload(
                p,
                c,
                &draft,
                m.code,
                &format!("{}.pdf", m.name_zh),
                pdf(m.code),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }
    let (status, _, html) = page(c, &p.url(&format!("/drafts/{draft}/check"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("确认提交"), "{html}");
    let csrf = csrf_of(&html);
    let (status, url, body) = post_form(
        c,
        &p.url(&format!("/drafts/{draft}/submit")),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("申请已提交"), "{body}");
    url.split("/applications/")
        .nth(1)
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned()
}

pub fn importer_of(p: &Portal) -> Arc<PortalImporter> {
    Arc::new(PortalImporter::new(&p.state))
}
