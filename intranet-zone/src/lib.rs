//! ow-intranet: the cadastral zone (业务内网), where surveyors review survey packages
//! (权籍调查成果) against the cadastral database, and the register mirror.
//!
//! - [`config`]: the settings (`ow-config`, validated).
//! - [`AppState::open`]: opens the store (migrating the exchange's and this crate's tables),
//!   the personal-data keyring, the exchange with the extranet, and loads the spatial index of
//!   existing parcels.
//! - [`router`] and [`serve`]: the HTTP server and the exchange loop, stopping cleanly.
//! - [`import`]: survey packages and register logs arriving from the extranet.
//! - [`packages`] (queue, approve, reject → `SurveyReview`), [`parcels`] (existing parcels and
//!   their history), [`register`] (the mirror), [`checks`] (the survey and spatial checks),
//!   [`surveyors`] (accounts, two factors), [`files`] (sealed survey files), [`seed`].
//!
//! See `docs/intranet-zone.md` for roles, pages, config keys, the CLI and what leaves the zone.

pub mod checks;
pub mod config;
pub mod db;
pub mod error;
pub mod files;
pub mod import;
pub mod packages;
pub mod parcels;
pub mod register;
pub mod seed;
pub mod surveyors;
pub mod web;

use std::future::Future;
use std::ops::Deref;
use std::path::Path;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use ow_bundle::{Channel, Zone};
use ow_exchange::{Exchange, ExchangeConfig, RetryPolicy};
use ow_pii::PiiKeyring;
use ow_store::{OpenOptions, Store};
use ow_web::lockout::LockoutPolicy;
use ow_web::password::PasswordHasher;
use ow_web::session::SessionCookie;
use ow_web::throttle::{ClientAddressing, Guards, Throttle};

pub use config::Settings;
pub use error::{IntranetError, Result};
pub use web::router;

/// The clock: now, as a UTC time. Tests may replace it.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The channel survey packages and register logs arrive on (one-way gateway, or offline media).
pub const FROM_EXTRANET: Channel = Channel {
    from: Zone::Extranet,
    to: Zone::Intranet,
};

/// The channel review results leave on (offline media only).
pub const TO_EXTRANET: Channel = Channel {
    from: Zone::Intranet,
    to: Zone::Extranet,
};

/// Everything a request handler or the importer needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

/// The parts of [`AppState`].
pub struct Inner {
    /// The validated settings.
    pub settings: Settings,
    /// The database.
    pub store: Store,
    /// The personal-data keys.
    pub pii: Arc<PiiKeyring>,
    /// The exchange with the extranet (absent for offline commands).
    pub exchange: Option<Arc<Exchange>>,
    /// The spatial index of existing parcels.
    pub index: Arc<RwLock<checks::ParcelIndex>>,
    /// Password hashing.
    pub hasher: PasswordHasher,
    /// Lockout rules.
    pub lockout: LockoutPolicy,
    /// Who a request comes from.
    pub client_addressing: ClientAddressing,
    /// Per-source limit on the two login steps.
    pub login_throttle: Arc<Throttle>,
    /// The session cookie.
    pub cookie: SessionCookie,
    /// The clock.
    pub clock: Clock,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store.url())
            .field("data_dir", &self.settings.data_dir)
            .finish_non_exhaustive()
    }
}

/// How to open the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Serving: the exchange is opened too.
    Serve,
    /// Offline commands (seed, surveyor add): no exchange loop.
    Offline,
}

impl AppState {
    /// Opens everything the settings name (see the crate docs). The personal-data key file must
    /// exist with mode 0600 (`ow-intranet init-keys`).
    pub async fn open(settings: Settings, mode: Mode) -> Result<AppState> {
        let data_dir = settings.data_dir.clone();
        std::fs::create_dir_all(&data_dir)
            .map_err(|e| IntranetError::io("create the data folder", &data_dir, e))?;
        files::prepare_dir(&data_dir)?;
        let named = |setting: &str, e: &dyn std::fmt::Display| {
            IntranetError::Invalid(format!("setting {setting}: {e}"))
        };
        let pii = Arc::new(
            PiiKeyring::load(&settings.pii_key_file).map_err(|e| named("pii_key_file", &e))?,
        );
        ow_keys::load_signing_key(&settings.exchange.signing_key_file)
            .map_err(|e| named("exchange.signing_key_file", &e))?;
        let store = Store::open(&settings.database_url(), &OpenOptions::default()).await?;
        db::migrate(&store).await?;
        let exchange = match mode {
            Mode::Offline => None,
            Mode::Serve => {
                let x = &settings.exchange;
                let cfg = ExchangeConfig {
                    zone: Zone::Intranet,
                    work_dir: x.work_dir.clone(),
                    packer_state: x.packer_state.clone(),
                    landed_state: x.landed_state(),
                    signing_key_file: x.signing_key_file.clone(),
                    encryption_key_file: x.encryption_key_file.clone(),
                    trust_file: x.trust_file.clone(),
                    // The channel back has no gateway at all: its one outbox is the one the
                    // ferry's `[[media]]` route exports onto discs.
                    outboxes: vec![(TO_EXTRANET, x.outbox.clone())],
                    media_outboxes: Vec::new(),
                    inboxes: vec![(FROM_EXTRANET, x.inbox.clone())],
                    poll_interval: Duration::from_millis(x.poll_interval_ms),
                    retry: RetryPolicy {
                        budget: x.retry_budget,
                        first_delay: Duration::from_millis(x.retry_first_delay_ms),
                        ..RetryPolicy::default()
                    },
                };
                Some(Arc::new(
                    Exchange::open(cfg, store.clone(), pii.clone()).await?,
                ))
            }
        };
        let index = parcels::load_index(&store).await?;
        tracing::info!(
            parcels = index.len(),
            "spatial index of existing parcels loaded"
        );
        let l = &settings.login;
        let lockout = LockoutPolicy {
            max_failures: l.max_failures,
            lock_for: TimeDelta::minutes(i64::from(l.lock_minutes)),
        };
        let client_addressing = ClientAddressing::parse(&l.trusted_proxies, l.ipv6_prefix)
            .map_err(|e| named("login.trusted_proxies", &e))?;
        let login_throttle = Arc::new(
            Throttle::per_minute(l.throttle_per_minute, l.throttle_burst)
                .map_err(|e| named("login.throttle_per_minute", &e))?,
        );
        let permits = match l.argon2_concurrency {
            0 => std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            n => n,
        };
        let hasher = PasswordHasher::new()
            .with_concurrency(permits, Duration::from_secs(l.argon2_wait_seconds));
        let cookie = SessionCookie {
            name: if settings.cookie_secure {
                "__Host-ow_int_session"
            } else {
                "ow_int_session"
            },
            secure: settings.cookie_secure,
            max_age: Duration::from_secs(u64::from(settings.session_minutes) * 60),
        };
        Ok(AppState {
            inner: Arc::new(Inner {
                settings,
                store,
                pii,
                exchange,
                index: Arc::new(RwLock::new(index)),
                hasher,
                lockout,
                client_addressing,
                login_throttle,
                cookie,
                clock: Arc::new(Utc::now),
            }),
        })
    }

    /// The same state with another clock (tests).
    pub fn with_clock(self, clock: Clock) -> AppState {
        match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                inner.clock = clock;
                AppState {
                    inner: Arc::new(inner),
                }
            }
            Err(inner) => AppState { inner },
        }
    }

    /// Now.
    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// Now, Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.now().timestamp_millis()
    }

    /// The data folder.
    pub fn data_dir(&self) -> &Path {
        &self.settings.data_dir
    }

    /// The spatial index, for reading (a panic elsewhere while it was held does not stop it:
    /// every update is a whole insert).
    pub fn index_read(&self) -> RwLockReadGuard<'_, checks::ParcelIndex> {
        self.index
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The spatial index, for an update.
    pub fn index_write(&self) -> RwLockWriteGuard<'_, checks::ParcelIndex> {
        self.index
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// After a decision committed: adds the new parcels to the spatial index and nudges the
    /// exchange to pack the review.
    pub fn after_decision(&self, decided: &packages::Decided) {
        if !decided.new_parcels.is_empty() {
            let mut index = self.index_write();
            for (id, geometry) in &decided.new_parcels {
                index.insert(*id, geometry.clone());
            }
        }
        if let Some(x) = &self.exchange {
            x.wake();
        }
    }
}

/// The throttled routes: both login steps share one budget per source.
pub fn throttle_guards(state: &AppState) -> Guards {
    use axum::http::Method;
    Guards::new(state.client_addressing.clone())
        .guard(Method::POST, "/login", &state.login_throttle)
        .guard(Method::POST, "/login/totp", &state.login_throttle)
}

/// Runs the HTTP server on `listener` and the exchange loop until `shutdown` completes; then
/// stops them. The store stays open (close it with `state.store.close()`).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    if let Some(x) = state.exchange.clone() {
        let handler = Arc::new(import::Importer::new(state.clone()));
        let mut rx = stop_rx.clone();
        tasks.push(tokio::spawn(x.run(handler, async move {
            let _ = rx.wait_for(|s| *s).await;
        })));
    }
    let app = router(state.clone());
    let addr = listener.local_addr().ok();
    tracing::info!(addr = ?addr, "ow-intranet serving");
    let stop = stop_tx.clone();
    let service = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let result = axum::serve(listener, service)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop.send(true);
        })
        .await;
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    tracing::info!("ow-intranet stopped");
    result.map_err(|e| IntranetError::io("serve HTTP on", Path::new("listener"), e))
}

#[cfg(test)]
mod tests {
    /// `Debug` of everything that holds a name, a secret, a reason or a parcel name shows none
    /// of them in clear.
    #[test]
    fn debug_of_personal_data_and_secrets_is_redacted() {
        const NAME: &str = "欧阳明月";
        const SECRET: &str = "Pa55-word-never-shown";
        const REASON: &str = "张三宅基地的争议";
        let geometry = crate::seed::rectangle([0.0, 0.0, 1.0, 1.0]);
        let surveyor = crate::surveyors::Surveyor {
            id: "1".into(),
            username: "qz-survey".into(),
            display_name: NAME.into(),
            district_code: "370781".into(),
            district_name: "青州市".into(),
            roles: vec![crate::surveyors::Role::Surveyor],
        };
        let parcel = crate::packages::PackageParcel {
            position: 0,
            number: "D001".into(),
            name: NAME.into(),
            area_m2: "1.00".into(),
            geometry: geometry.clone(),
            unit_code: None,
            parcel_id: None,
        };
        let shown = [
            format!("{surveyor:?}"),
            format!(
                "{:?}",
                crate::surveyors::CreatedSurveyor {
                    surveyor: surveyor.clone(),
                    password: SECRET.into(),
                    totp_base32: SECRET.into(),
                    otpauth_uri: SECRET.into(),
                }
            ),
            format!(
                "{:?}",
                crate::surveyors::NewSurveyor {
                    username: "u".into(),
                    display_name: NAME.into(),
                    district_code: "370781".into(),
                    roles: Vec::new(),
                    password: Some(SECRET.into()),
                }
            ),
            format!(
                "{:?}",
                crate::seed::SeedSurveyor {
                    username: "u".into(),
                    district_code: "370781".into(),
                    roles: Vec::new(),
                    password: Some(SECRET.into()),
                    totp_secret: Some(SECRET.into()),
                    otpauth_uri: Some(SECRET.into()),
                }
            ),
            format!("{parcel:?}"),
            format!(
                "{:?}",
                crate::checks::CheckedParcel {
                    number: "D001".into(),
                    name: NAME.into(),
                    area_m2: 1.0,
                    geometry: geometry.clone(),
                    neighbours: Vec::new(),
                }
            ),
            format!(
                "{:?}",
                crate::parcels::NewParcel {
                    parcel_code: "370781001001GB00001",
                    unit_code: None,
                    district_code: "370781",
                    name: NAME,
                    geometry: &geometry,
                    area_m2: 1.0,
                    package_id: None,
                    application_no: None,
                    surveyor_id: None,
                    action: "seeded",
                }
            ),
            format!(
                "{:?}",
                crate::packages::ApproveInput {
                    unit_codes: Vec::new(),
                    override_reason: Some(REASON.into()),
                }
            ),
            format!(
                "{:?}",
                crate::packages::Package {
                    row: crate::packages::QueueRow {
                        package_id: "p".into(),
                        application_no: "a".into(),
                        format: "geojson".into(),
                        confidential: false,
                        status: "pending".into(),
                        error_count: 0,
                        warning_count: 0,
                        parcel_count: 1,
                        received_at_ms: 0,
                    },
                    district_code: "370781".into(),
                    survey_file_id: "f".into(),
                    report_file_id: None,
                    findings: Vec::new(),
                    parcels: vec![parcel.clone()],
                    decided_by: None,
                    decided_at_ms: None,
                    reason: Some(REASON.into()),
                }
            ),
        ];
        for text in &shown {
            for clear in [NAME, SECRET, REASON] {
                assert!(!text.contains(clear), "{clear} shown in {text}");
            }
        }
    }
}
