//! The portal's state, built from [`Settings`]: store (migrated), personal-data keyring, password
//! and lockout policies, throttles, upload limits, certificate trust, file store, and the
//! exchange.

use std::sync::Arc;
use std::time::Duration;

use ow_bundle::{Channel, Zone};
use ow_certificate::CertificateTrust;
use ow_pii::PiiKeyring;
use ow_store::{OpenOptions, Store};
use ow_web::lockout::LockoutPolicy;
use ow_web::password::{PasswordHasher, PasswordPolicy};
use ow_web::session::SessionCookie;
use ow_web::throttle::{ClientAddressing, Throttle};
use ow_web::upload::UploadLimits;

use crate::config::Settings;
use crate::error::AppError;
use crate::files::FileStore;

/// This crate's migrations (its own tables, `_ow_migrations_ow-internet`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The channel submissions leave on.
pub const OUTBOUND: Channel = Channel {
    from: Zone::Internet,
    to: Zone::Extranet,
};

/// The channel status and certificates arrive on.
pub const INBOUND: Channel = Channel {
    from: Zone::Extranet,
    to: Zone::Internet,
};

/// Everything a request handler needs. Cheap to clone ([`AppState`] is an `Arc`).
pub struct App {
    /// The validated settings.
    pub settings: Settings,
    /// The database.
    pub store: Store,
    /// Seals and opens personal data.
    pub pii: Arc<PiiKeyring>,
    /// argon2id.
    pub hasher: PasswordHasher,
    /// Rules for new passwords.
    pub password_policy: PasswordPolicy,
    /// Login lockout.
    pub lockout: LockoutPolicy,
    /// The session cookie.
    pub cookie: SessionCookie,
    /// Upload limits.
    pub upload_limits: UploadLimits,
    /// The extranet's certificate keys.
    pub trust: CertificateTrust,
    /// Uploaded materials.
    pub files: FileStore,
    /// Who a request comes from (trusted proxies, IPv6 prefix).
    pub client_addressing: ClientAddressing,
    /// Per-source limit on login and registration (pages and API share it).
    pub login_throttle: Arc<Throttle>,
    /// Per-source limit on certificate verification.
    pub verify_throttle: Arc<Throttle>,
    /// The CJK font for certificate PDFs (`certificate_font_file`), or why it could not be
    /// loaded: the portal runs without it, and the PDF download says it is unavailable.
    pub certificate_font: Result<Arc<ow_certificate::CertificateFont>, String>,
    /// The bundle exchange, when enabled.
    pub exchange: Option<Arc<ow_exchange::Exchange>>,
}

/// Shared state of the router.
pub type AppState = Arc<App>;

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("listen", &self.settings.listen)
            .field("backend", &self.store.backend())
            .finish_non_exhaustive()
    }
}

impl App {
    /// Opens the store (SQLite in `data_dir` unless `database_url` names PostgreSQL), migrates
    /// ow-exchange's and this crate's tables, loads the personal-data key file (must be 0600),
    /// the extranet certificate key, and opens the exchange when enabled.
    pub async fn build(settings: Settings) -> Result<AppState, AppError> {
        // Keys first: a missing or unsafe key file stops the start before anything is created.
        let pii =
            Arc::new(
                PiiKeyring::load(&settings.pii_key_file).map_err(|e| AppError::KeyFile {
                    setting: "pii_key_file",
                    cause: format!("{e} (create one with `ow-internet init-pii-key FILE`)"),
                })?,
            );
        let mut trust = CertificateTrust::new();
        trust
            .add_key_file(&settings.certificate_key_file)
            .map_err(|e| AppError::KeyFile {
                setting: "certificate_key_file",
                cause: format!("{e} (the extranet's certificate public key, ow-ed25519:…)"),
            })?;
        std::fs::create_dir_all(&settings.data_dir)
            .map_err(|e| AppError::io(&settings.data_dir, e))?;
        let store = Store::open(&settings.database_url(), &OpenOptions::default()).await?;
        ow_exchange::migrate(&store).await?;
        store.migrate("ow-internet", &MIGRATOR).await?;
        let exchange = if settings.exchange.enabled {
            let x = &settings.exchange;
            let cfg = ow_exchange::ExchangeConfig {
                zone: Zone::Internet,
                work_dir: x.work_dir.clone(),
                packer_state: x.packer_state.clone(),
                landed_state: x.landed_state(),
                signing_key_file: x.signing_key_file.clone(),
                encryption_key_file: x.encryption_key_file.clone(),
                trust_file: x.trust_file.clone(),
                outboxes: vec![(OUTBOUND, x.outbox_dir.clone())],
                media_outboxes: Vec::new(),
                inboxes: vec![(INBOUND, x.inbox_dir.clone())],
                poll_interval: Duration::from_millis(x.poll_ms),
                retry: ow_exchange::RetryPolicy {
                    budget: x.retry_budget,
                    first_delay: Duration::from_millis(x.retry_first_delay_ms),
                    ..ow_exchange::RetryPolicy::default()
                },
            };
            Some(Arc::new(
                ow_exchange::Exchange::open(cfg, store.clone(), pii.clone()).await?,
            ))
        } else {
            None
        };
        let app = Self::from_parts(settings, store, pii, trust, exchange)?;
        let files = app.files.clone();
        let interrupted = tokio::task::spawn_blocking(move || files.purge_staging())
            .await
            .map_err(|e| AppError::Corrupt(format!("file task failed: {e}")))??;
        if interrupted > 0 {
            tracing::info!(
                interrupted,
                "uploads a stop interrupted removed from staging"
            );
        }
        app.seal_stored_materials().await?;
        Ok(app)
    }

    /// Seals the material files an earlier version stored in clear, and re-seals those sealed
    /// with an older key, before the portal serves anything (only files not yet delivered are
    /// kept); seals reasons stored in clear. Logs counts, never names.
    pub async fn seal_stored_materials(&self) -> Result<(), AppError> {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM inet_materials WHERE delivered_at_ms IS NULL")
                .fetch_all(self.store.reader())
                .await?;
        let (from_clear, resealed) = self.files.seal_legacy(ids).await?;
        let reasons = crate::applications::seal_stored_reasons(self).await?;
        if reasons > 0 {
            tracing::info!(
                reasons,
                "reasons stored in clear by an earlier version sealed"
            );
        }
        if from_clear + resealed > 0 {
            tracing::info!(
                from_clear,
                resealed,
                "stored materials sealed with the current personal-data key"
            );
        }
        Ok(())
    }

    /// Assembles the state from opened parts (the store must be migrated).
    pub fn from_parts(
        settings: Settings,
        store: Store,
        pii: Arc<PiiKeyring>,
        trust: CertificateTrust,
        exchange: Option<Arc<ow_exchange::Exchange>>,
    ) -> Result<AppState, AppError> {
        let p = &settings.password;
        let t = &settings.throttle;
        let permits = match t.argon2_concurrency {
            0 => std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            n => n,
        };
        let hasher = PasswordHasher::with_params(p.argon2_memory_kib, p.argon2_iterations, 1)
            .map_err(|e| {
                AppError::Config(ow_config::ConfigError::invalid(
                    "password.argon2_memory_kib",
                    e.to_string(),
                ))
            })?
            .with_concurrency(permits, Duration::from_secs(t.argon2_wait_seconds));
        let invalid = |setting: &'static str, e: ow_web::throttle::ThrottleConfigError| {
            AppError::Config(ow_config::ConfigError::invalid(setting, e.to_string()))
        };
        let client_addressing = ClientAddressing::parse(&t.trusted_proxies, t.ipv6_prefix)
            .map_err(|e| invalid("throttle.trusted_proxies", e))?;
        let login_throttle = Arc::new(
            Throttle::per_minute(t.login_per_minute, t.login_burst)
                .map_err(|e| invalid("throttle.login_per_minute", e))?,
        );
        let verify_throttle = Arc::new(
            Throttle::per_minute(settings.verify.per_minute, settings.verify.per_minute)
                .map_err(|e| invalid("verify.per_minute", e))?,
        );
        let password_policy = PasswordPolicy {
            min_length: p.min_length,
            min_classes: p.min_classes,
            max_length: p.max_length,
        };
        let lockout = LockoutPolicy {
            max_failures: settings.lockout.max_failures,
            lock_for: chrono::TimeDelta::minutes(settings.lockout.lock_minutes),
        };
        let cookie = SessionCookie {
            name: if settings.cookie_secure {
                "__Host-ow_session"
            } else {
                "ow_session"
            },
            secure: settings.cookie_secure,
            max_age: settings.session_lifetime(),
        };
        let upload_limits = UploadLimits {
            max_file_bytes: settings.uploads.max_file_bytes,
            max_files: settings.uploads.max_files,
        };
        let files = FileStore::new(settings.data_dir.join("files"), pii.clone())?;
        let certificate_font = ow_certificate::CertificateFont::load(
            &settings.certificate_font_file,
            settings.certificate_font_index,
        )
        .map(Arc::new)
        .map_err(|e| {
            tracing::warn!(error = %e, "certificate PDFs unavailable");
            e.to_string()
        });
        Ok(Arc::new(App {
            settings,
            store,
            pii,
            hasher,
            password_policy,
            lockout,
            cookie,
            upload_limits,
            trust,
            files,
            client_addressing,
            login_throttle,
            verify_throttle,
            certificate_font,
            exchange,
        }))
    }

    /// The largest request body accepted on upload routes: every file at its limit plus 1 MiB of
    /// form fields.
    pub fn upload_body_limit(&self) -> usize {
        let per = usize::try_from(self.upload_limits.max_file_bytes).unwrap_or(usize::MAX / 4);
        per.saturating_mul(self.upload_limits.max_files)
            .saturating_add(1 << 20)
    }

    /// Nudges the exchange loop after a message was queued.
    pub fn wake_exchange(&self) {
        if let Some(x) = &self.exchange {
            x.wake();
        }
    }
}
