//! ow-extranet: the registrar back office (登记机构内网业务系统), the register and certificates.
//!
//! - [`config`]: the settings (`ow-config`, validated).
//! - [`AppState::open`]: opens the store (migrating the exchange's and this crate's tables),
//!   the personal-data keyring, the certificate signing key, the audit log (signed with the
//!   extranet zone key) and the exchange with the portal.
//! - [`router`] and [`serve`]: the HTTP server and the exchange loop, stopping cleanly.
//! - [`import`]: applications and supplements arriving from the portal ([`import::Importer`]).
//! - [`staff`], [`workflow`], [`register`], [`rules`], [`certificates`], [`audit`], [`seed`],
//!   [`deadline`] (time limits in working days).
//!
//! See `docs/extranet-zone.md` for roles, workflow, rules, numbering, config keys and the CLI.

pub mod audit;
pub mod cases;
pub mod certificates;
pub mod config;
pub mod db;
pub mod deadline;
pub mod error;
pub mod exchange;
pub mod import;
pub mod materials;
pub mod ops;
pub mod register;
pub mod register_log;
pub mod rules;
pub mod seed;
pub mod staff;
pub mod survey;
pub mod web;
pub mod workflow;

use std::future::Future;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use ow_bundle::{Channel, Zone};
use ow_certificate::SigningKey;
use ow_pii::PiiKeyring;
use ow_store::{OpenOptions, Store};
use ow_web::lockout::LockoutPolicy;
use ow_web::password::PasswordHasher;
use ow_web::session::SessionCookie;
use ow_web::throttle::{ClientAddressing, Guards, Throttle};

pub use config::Settings;
pub use error::{ExtranetError, Result};
pub use web::router;

/// The clock: now, as a UTC time. Tests may replace it.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

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
    /// The e-certificate signing key.
    pub cert_key: SigningKey,
    /// The audit log.
    pub audit: audit::AuditLog,
    /// The exchange with the portal (absent for offline commands).
    pub exchange: Option<Arc<exchange::Exchange>>,
    /// Password hashing.
    pub hasher: PasswordHasher,
    /// Lockout rules.
    pub lockout: LockoutPolicy,
    /// Who a request comes from (trusted proxies, IPv6 prefix).
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

/// The channel applications arrive on.
pub const FROM_PORTAL: Channel = Channel {
    from: Zone::Internet,
    to: Zone::Extranet,
};

/// The channel survey reviews arrive on (from offline media).
pub const FROM_INTRANET: Channel = Channel {
    from: Zone::Intranet,
    to: Zone::Extranet,
};

/// `(channel, folder)` when the folder is configured (not empty).
fn configured(channel: Channel, folder: &Path) -> Option<(Channel, std::path::PathBuf)> {
    (!folder.as_os_str().is_empty()).then(|| (channel, folder.to_path_buf()))
}

/// How to open the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Serving: the exchange is opened too.
    Serve,
    /// Offline commands (seed, staff): no exchange loop.
    Offline,
}

impl AppState {
    /// Opens everything the settings name (see the crate docs). The certificate key and the
    /// personal-data key file must exist with mode 0600 (`ow-extranet init-keys`).
    pub async fn open(settings: Settings, mode: Mode) -> Result<AppState> {
        let data_dir = settings.data_dir.clone();
        std::fs::create_dir_all(&data_dir)
            .map_err(|e| ExtranetError::io("create the data folder", &data_dir, e))?;
        materials::prepare_dir(&data_dir)?;
        let named = |setting: &str, e: &dyn std::fmt::Display| {
            ExtranetError::Invalid(format!("setting {setting}: {e}"))
        };
        let pii = Arc::new(
            PiiKeyring::load(&settings.pii_key_file).map_err(|e| named("pii_key_file", &e))?,
        );
        let cert_key = ow_certificate::load_signing_key(&settings.certificate_key_file)
            .map_err(|e| named("certificate_key_file", &e))?;
        let zone_key = ow_keys::load_signing_key(&settings.exchange.signing_key_file)
            .map_err(|e| named("exchange.signing_key_file", &e))?;
        let store = Store::open(&settings.database_url(), &OpenOptions::default()).await?;
        db::migrate(&store).await?;
        let purged = purge_outgoing(&data_dir, &store).await?;
        if purged > 0 {
            tracing::info!(
                files = purged,
                "signed certificates already sent removed from the outgoing folder"
            );
        }
        let audit = audit::AuditLog::open(
            &settings.audit.dir,
            zone_key,
            settings.audit.checkpoint_every,
        )?;
        let exchange = match mode {
            Mode::Offline => None,
            Mode::Serve => {
                let x = &settings.exchange;
                let cfg = exchange::ExchangeConfig {
                    zone: Zone::Extranet,
                    work_dir: x.work_dir.clone(),
                    packer_state: x.packer_state.clone(),
                    landed_state: x.landed_state(),
                    signing_key_file: x.signing_key_file.clone(),
                    encryption_key_file: x.encryption_key_file.clone(),
                    trust_file: x.trust_file.clone(),
                    outboxes: std::iter::once((workflow::TO_PORTAL, x.outbox.clone()))
                        .chain(configured(register_log::TO_INTRANET, &x.intranet_outbox))
                        .collect(),
                    media_outboxes: configured(register_log::TO_INTRANET, &x.intranet_media_outbox)
                        .into_iter()
                        .collect(),
                    inboxes: std::iter::once((FROM_PORTAL, x.inbox.clone()))
                        .chain(configured(FROM_INTRANET, &x.intranet_inbox))
                        .collect(),
                    poll_interval: Duration::from_millis(x.poll_interval_ms),
                    retry: exchange::RetryPolicy {
                        budget: x.retry_budget,
                        first_delay: Duration::from_millis(x.retry_first_delay_ms),
                        ..exchange::RetryPolicy::default()
                    },
                };
                Some(Arc::new(
                    exchange::Exchange::open(cfg, store.clone(), pii.clone()).await?,
                ))
            }
        };
        let lockout = LockoutPolicy {
            max_failures: settings.login.max_failures,
            lock_for: TimeDelta::minutes(i64::from(settings.login.lock_minutes)),
        };
        let l = &settings.login;
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
                "__Host-ow_ext_session"
            } else {
                "ow_ext_session"
            },
            secure: settings.cookie_secure,
            max_age: Duration::from_secs(u64::from(settings.session_minutes) * 60),
        };
        let state = AppState {
            inner: Arc::new(Inner {
                settings,
                store,
                pii,
                cert_key,
                audit,
                exchange,
                hasher,
                lockout,
                client_addressing,
                login_throttle,
                cookie,
                clock: Arc::new(Utc::now),
            }),
        };
        // Seal what an earlier version stored in clear (materials, file names, reasons) before
        // anything is served or appended to the audit log.
        let sealed = materials::seal_stored(&state).await?;
        if sealed != materials::SealReport::default() {
            tracing::info!(
                files = sealed.files_sealed,
                clear_files_removed = sealed.clear_files_removed,
                names = sealed.names_sealed,
                reasons = sealed.reasons_sealed,
                "personal data stored in clear by an earlier version sealed"
            );
        }
        // Bring any event committed before a crash into the audit log.
        let caught_up = state.audit.flush_pending(&state.store).await?;
        if caught_up > 0 {
            tracing::info!(
                entries = caught_up,
                "audit log caught up with committed events"
            );
        }
        Ok(state)
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

    /// After a commit: appends new events to the audit log, queues new register-log entries
    /// for the intranet and nudges the exchange.
    pub async fn after_commit(&self) {
        if let Err(e) = self.audit.flush_pending(&self.store).await {
            tracing::error!(error = %e, "cannot append to the audit log; will retry");
        }
        self.queue_register_log().await;
        if let Some(x) = &self.exchange {
            x.wake();
        }
    }

    /// Whether the intranet is linked: a gateway or media outbox towards it is configured.
    pub fn intranet_linked(&self) -> bool {
        let x = &self.settings.exchange;
        self.exchange.is_some()
            && !(x.intranet_outbox.as_os_str().is_empty()
                && x.intranet_media_outbox.as_os_str().is_empty())
    }

    /// Queues register-log entries not yet sent, when the intranet is linked; a failure is
    /// logged and retried on the next round (the entries stay unsent, nothing is lost).
    pub async fn queue_register_log(&self) {
        if !self.intranet_linked() {
            return;
        }
        if let Err(e) = register_log::queue_unsent(&self.store, &self.pii).await {
            tracing::error!(error = %e, "cannot queue the register log for the intranet; will retry");
        }
    }
}

/// Deletes the files in `data_dir/outgoing` (signed certificates written there by earlier
/// versions, with full names and ID numbers) that no queued message still needs; removes the
/// folder when it is empty. Returns how many files were deleted.
pub async fn purge_outgoing(data_dir: &Path, store: &Store) -> Result<usize> {
    let dir = workflow::outgoing_dir(data_dir);
    if !dir.is_dir() {
        return Ok(0);
    }
    // By file name: the names are unique ids, and a stored path may be spelled differently
    // (relative or absolute) from this listing.
    let needed: std::collections::HashSet<std::ffi::OsString> = exchange::files_still_needed(store)
        .await?
        .into_iter()
        .filter_map(|p| p.file_name().map(ToOwned::to_owned))
        .collect();
    let mut purged = 0;
    let entries = std::fs::read_dir(&dir).map_err(|e| ExtranetError::io("list", &dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| ExtranetError::io("list", &dir, e))?;
        let path = entry.path();
        if path.is_file() && !needed.contains(&entry.file_name()) {
            std::fs::remove_file(&path).map_err(|e| ExtranetError::io("remove", &path, e))?;
            purged += 1;
        }
    }
    if std::fs::read_dir(&dir)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false)
    {
        let _ = std::fs::remove_dir(&dir);
    }
    Ok(purged)
}

/// The throttled routes of the back office: both login steps share one budget per source.
pub fn throttle_guards(state: &AppState) -> Guards {
    use axum::http::Method;
    Guards::new(state.client_addressing.clone())
        .guard(Method::POST, "/login", &state.login_throttle)
        .guard(Method::POST, "/login/totp", &state.login_throttle)
}

/// Writes `bytes` to a new file readable by the owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| ExtranetError::io("create", path, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| ExtranetError::io("write", path, e))
}

/// Runs the HTTP server on `listener`, the exchange loop and the audit flusher until
/// `shutdown` completes; then stops them and writes a final audit checkpoint. The store stays
/// open (the caller owns `state`; close it with `state.store.close()`).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut tasks = Vec::new();
    if let Some(x) = state.exchange.clone() {
        let handler = Arc::new(import::Importer::new(state.clone()));
        tasks.push(tokio::spawn(x.run(handler, stopped(stop_rx.clone()))));
    }
    {
        let state = state.clone();
        let stop = stopped(stop_rx.clone());
        tasks.push(tokio::spawn(async move {
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    () = &mut stop => break,
                    () = tokio::time::sleep(Duration::from_secs(2)) => {
                        if let Err(e) = state.audit.flush_pending(&state.store).await {
                            tracing::error!(error = %e, "audit log flush failed; will retry");
                        }
                        state.queue_register_log().await;
                    }
                }
            }
        }));
    }
    let app = router(state.clone());
    let addr = listener.local_addr().ok();
    tracing::info!(addr = ?addr, "ow-extranet serving");
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
    state.audit.flush_pending(&state.store).await?;
    state.audit.close().await?;
    tracing::info!("ow-extranet stopped");
    result.map_err(|e| ExtranetError::io("serve HTTP on", Path::new("listener"), e))
}
