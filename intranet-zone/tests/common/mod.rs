//! Test harness: the cadastral zone over a temporary folder with fresh keys, seeded with the
//! demo data; survey packages and register logs as the extranet sends them; a surveyor's
//! browser (reqwest with a cookie store) against the real server on 127.0.0.1:0.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use ow_bundle::Zone;
use ow_exchange::{
    Disposition, Envelope, InboundFile, InboundMessage, MaterialRef, Message, RegisterLog,
    RegisterLogEntry, SurveyPackage, SurveyReview,
};
use ow_intranet::import::Importer;
use ow_intranet::seed::SeedSummary;
use ow_intranet::{AppState, FROM_EXTRANET, Mode, Settings, TO_EXTRANET};
use ow_web::totp::TotpSecret;

/// Settings for a fresh folder with fresh keys; `database_url` empty = SQLite.
pub fn settings_in(dir: &std::path::Path, database_url: &str) -> Settings {
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    ow_pii::PiiKeyring::generate_key_file(&keys.join("pii.keys")).unwrap();
    ow_keys::generate_zone_keys(&keys, Zone::Intranet).unwrap();
    let s = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("data"),
        database_url: database_url.into(),
        pii_key_file: keys.join("pii.keys"),
        exchange: ow_intranet::config::ExchangeSettings {
            signing_key_file: keys.join("intranet.sign.secret"),
            encryption_key_file: keys.join("intranet.enc.secret"),
            outbox: dir.join("outbox"),
            inbox: dir.join("inbox"),
            ..Default::default()
        },
        login: ow_intranet::config::LoginSettings {
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

/// The zone opened offline over `database_url` and seeded.
pub struct Cadastre {
    pub state: AppState,
    pub seed: SeedSummary,
    pub dir: tempfile::TempDir,
}

pub async fn open_seeded(database_url: &str) -> Cadastre {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("OW_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    // SQLite: the database file in the zone's own data folder.
    let database_url = if database_url.starts_with("postgres") {
        database_url
    } else {
        ""
    };
    let state = AppState::open(settings_in(dir.path(), database_url), Mode::Offline)
        .await
        .unwrap();
    let seed = ow_intranet::seed::seed_demo(&state).await.unwrap();
    Cadastre { state, seed, dir }
}

impl Cadastre {
    /// Imports `msg` through the importer, exactly once (`None`: seen before).
    pub async fn import(&self, msg: &InboundMessage) -> Option<Disposition> {
        match ow_exchange::import_message(
            &self.state.store,
            &Importer::new(self.state.clone()),
            msg,
        )
        .await
        .unwrap()
        {
            ow_exchange::ImportOutcome::Imported => Some(Disposition::Imported),
            ow_exchange::ImportOutcome::Refused { reason } => Some(Disposition::Refused { reason }),
            ow_exchange::ImportOutcome::Duplicate => None,
        }
    }

    /// The survey reviews queued for the extranet.
    pub async fn reviews(&self) -> Vec<SurveyReview> {
        ow_exchange::queued_messages(&self.state.store, &self.state.pii, &TO_EXTRANET)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|(e, _)| match e.message {
                Message::SurveyReview(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    pub async fn surveyor(&self, username: &str) -> ow_intranet::surveyors::Surveyor {
        ow_intranet::surveyors::find_by_username(&self.state.store, username)
            .await
            .unwrap()
            .unwrap()
    }

    pub fn credentials(&self, username: &str) -> (String, String) {
        let s = self
            .seed
            .surveyors
            .iter()
            .find(|s| s.username == username)
            .unwrap();
        (s.password.clone().unwrap(), s.totp_secret.clone().unwrap())
    }
}

/// A boundary TXT file (UTF-8) with one rectangular parcel in zone 39, the closing point
/// present; `declared_ha` as written in the header.
pub fn rectangle_txt(number: &str, name: &str, rect: [f64; 4], declared_ha: &str) -> Vec<u8> {
    let [x, y, w, h] = rect;
    let corners = [(x, y + h), (x + w, y + h), (x + w, y), (x, y), (x, y + h)];
    let mut out = format!(
        "[属性描述]\n格式版本号=1.0\n坐标系=2000国家大地坐标系\n几度分带=3\n投影类型=高斯克吕格\n\
         计量单位=米\n带号=39\n精度=0.001\n[地块坐标]\n5,{declared_ha},{number},{name},面,,071,0701,@\n"
    );
    for (i, (e, n)) in corners.iter().enumerate() {
        let label = if i == 4 { 1 } else { i + 1 };
        out.push_str(&format!("J{label},1,{n:.3},{:.3}\n", 39_000_000.0 + e));
    }
    out.into_bytes()
}

/// A GeoJSON package (zone 39, prefixed eastings) with parcel `D1` on `rect` claiming
/// `neighbours`, and building `F1` of 10 m × 10 m inside it.
pub fn parcel_geojson(rect: [f64; 4], neighbours: &[&str]) -> Vec<u8> {
    let [x, y, w, h] = rect;
    let ring = |x: f64, y: f64, w: f64, h: f64| {
        let x = 39_000_000.0 + x;
        serde_json::json!([[[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]]])
    };
    serde_json::json!({
        "type": "FeatureCollection", "zone": 39,
        "features": [
            {"type": "Feature", "properties": {"kind": "parcel", "number": "D1", "name": "测试地块",
                "declared_area_m2": w * h, "neighbours": neighbours},
             "geometry": {"type": "Polygon", "coordinates": ring(x, y, w, h)}},
            {"type": "Feature", "properties": {"kind": "building", "number": "F1", "parcel": "D1"},
             "geometry": {"type": "Polygon", "coordinates": ring(x + 10.0, y + 10.0, 10.0, 10.0)}}
        ]
    })
    .to_string()
    .into_bytes()
}

/// A clean parcel away from every demo parcel: 100 m × 50 m = 5000 m² = 0.5 ha.
pub const CLEAN: [f64; 4] = [634_000.0, 4_062_000.0, 100.0, 50.0];

/// A parcel overlapping the demo parcels 370781001001GB00001 and …00002 (2000 m² each).
pub const OVERLAPPING: [f64; 4] = [632_050.0, 4_062_040.0, 100.0, 80.0];

/// A survey package message as the extranet sends it.
pub fn survey_message(
    application_no: &str,
    district: &str,
    package_id: &str,
    bytes: Vec<u8>,
) -> InboundMessage {
    let geojson = bytes.first() == Some(&b'{');
    let media_type = if geojson {
        "application/geo+json"
    } else {
        "text/plain"
    };
    let item = if geojson {
        "survey.geojson"
    } else {
        "survey.txt"
    };
    let survey = MaterialRef {
        item: item.into(),
        checklist_code: "survey_package".into(),
        file_name: "成果".into(),
        media_type: media_type.into(),
        size: bytes.len() as u64,
        blake3: blake3_hex(&bytes),
    };
    InboundMessage {
        bundle_id: uuid::Uuid::now_v7().to_string(),
        channel: FROM_EXTRANET,
        envelope: Envelope::new(
            Message::SurveyPackage(SurveyPackage {
                application_no: application_no.into(),
                district_code: district.into(),
                package_id: package_id.into(),
                format: if geojson { "geojson" } else { "boundary-txt" }.into(),
                survey,
                report: None,
                confidential: false,
                sent_at_ms: 1,
            }),
            1,
        ),
        files: vec![InboundFile::from_bytes(item, media_type, bytes)],
    }
}

fn blake3_hex(bytes: &[u8]) -> String {
    InboundFile::from_bytes("x", "text/plain", bytes.to_vec())
        .blake3_hex()
        .to_owned()
}

/// A register-log message with entries `seqs` of district 370781 (each its own unit).
pub fn register_message(seqs: std::ops::RangeInclusive<u64>) -> InboundMessage {
    let entries = seqs
        .map(|seq| RegisterLogEntry {
            seq,
            unit_code: format!("370781001001GB00001F0001{:04}", seq % 10_000),
            registration_type: if seq % 2 == 0 { "200" } else { "100" }.into(),
            right_type: "4".into(),
            certificate_number: None,
            state: "current".into(),
            area_m2: Some(format!("{}.00", 80 + seq)),
            application_no: None,
            recorded_at_ms: i64::try_from(seq).unwrap(),
        })
        .collect();
    InboundMessage {
        bundle_id: uuid::Uuid::now_v7().to_string(),
        channel: FROM_EXTRANET,
        envelope: Envelope::new(
            Message::RegisterLog(RegisterLog {
                district_code: "370781".into(),
                entries,
            }),
            1,
        ),
        files: Vec::new(),
    }
}

/// A running server.
pub struct TestServer {
    pub base: String,
    pub zone: Cadastre,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        let zone = open_seeded("").await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = zone.state.clone();
        let task = tokio::spawn(async move {
            ow_intranet::serve(listener, served, async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        TestServer {
            base,
            zone,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    /// Signs `username` in with password and TOTP.
    pub async fn login(&self, username: &str) -> Browser {
        let (password, totp) = self.zone.credentials(username);
        let b = Browser::new(&self.base);
        let (status, body) = b.password_step(username, &password).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("动态口令"), "{body}");
        let code = TotpSecret::from_base32(&totp)
            .unwrap()
            .code_at(chrono::Utc::now().timestamp() as u64);
        let (status, body) = b.totp_step(&code).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("待审查的调查成果"), "{body}");
        b
    }
}

/// A surveyor's browser.
pub struct Browser {
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

impl Browser {
    pub fn new(base: &str) -> Browser {
        Browser {
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
}
