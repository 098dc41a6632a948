//! Settings of the cadastral zone: layered with `ow-config` (defaults → TOML file → `OW_`
//! environment variables → `--set`), then checked by [`Validate`] with messages naming the
//! setting. Relative paths in the file are relative to the file's folder ([`Settings::resolve`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ow_config::{ConfigError, ExposeSecret, Secret, Validate};
use serde::{Deserialize, Serialize};

/// Everything `ow-intranet` reads from its configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address the web server listens on (`127.0.0.1:8083`).
    pub listen: SocketAddr,
    /// The data folder: SQLite database, sealed survey files, exchange work files.
    pub data_dir: PathBuf,
    /// Database URL; empty means the SQLite file `intranet.db` in `data_dir`.
    pub database_url: Secret,
    /// The personal-data key file (mode 0600; `ow-intranet init-keys` creates it).
    pub pii_key_file: PathBuf,
    /// The base URL surveyors reach this server at.
    pub public_url: String,
    /// Whether the session cookie is `Secure` (set when served over HTTPS).
    pub cookie_secure: bool,
    /// How long a surveyor's session lasts, in minutes.
    pub session_minutes: u32,
    /// Surveyor login rules.
    pub login: LoginSettings,
    /// Survey packages and the drawing.
    pub survey: SurveySettings,
    /// The intrinsic checks of a survey (`ow_survey::CheckConfig`: zone, point spacing, the
    /// class-based area tolerance …; `docs/survey-format.md`).
    pub checks: ow_survey::CheckConfig,
    /// The tolerances of the checks against existing parcels.
    pub spatial: SpatialSettings,
    /// The exchange with the extranet (bundles through the ferry and offline media).
    pub exchange: ExchangeSettings,
}

/// Surveyor login rules (the same rules as the back office's staff).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginSettings {
    /// Failed logins (password or dynamic code) in a row that lock an account.
    pub max_failures: u32,
    /// How long a lock lasts, in minutes.
    pub lock_minutes: u32,
    /// Minimum password length for new surveyor passwords.
    pub min_password_length: usize,
    /// Login attempts (both steps together) one client address may make per minute.
    pub throttle_per_minute: u32,
    /// How many of them may come at once.
    pub throttle_burst: u32,
    /// Addresses or networks of reverse proxies whose `Forwarded` / `X-Forwarded-For` names
    /// the client (default none: the TCP peer is the client).
    pub trusted_proxies: Vec<String>,
    /// IPv6 clients are counted per network of this prefix length.
    pub ipv6_prefix: u8,
    /// Password hashes computed at once (0 = one per core).
    pub argon2_concurrency: usize,
    /// Seconds a login waits for a hashing slot before it is told to try again.
    pub argon2_wait_seconds: u64,
}

/// Survey packages and their checks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SurveySettings {
    /// Largest survey file accepted, in bytes.
    pub max_file_bytes: u64,
    /// How far around a parcel its neighbours are drawn, in metres.
    pub draw_neighbours_m: f64,
}

/// The tolerances of the overlap and gap checks (`ow_spatial::Tolerance`; its defaults and
/// their reasons are documented there).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpatialSettings {
    /// An overlap piece of at most this area (m²) is a sliver, not an overlap.
    pub sliver_area_m2: f64,
    /// An overlap piece at most this wide (m) is a sliver.
    pub sliver_width_m: f64,
    /// A boundary claimed as shared may stand off its neighbour by at most this much (m).
    pub gap_m: f64,
    /// How far from the neighbour (m) a boundary still counts as facing it.
    pub search_m: f64,
}

impl Default for SpatialSettings {
    fn default() -> Self {
        let t = ow_spatial::Tolerance::default();
        SpatialSettings {
            sliver_area_m2: t.sliver_area_m2,
            sliver_width_m: t.sliver_width_m,
            gap_m: t.gap_m,
            search_m: t.search_m,
        }
    }
}

impl SpatialSettings {
    /// As the spatial checks take them.
    pub fn tolerance(&self) -> ow_spatial::Tolerance {
        ow_spatial::Tolerance {
            sliver_area_m2: self.sliver_area_m2,
            sliver_width_m: self.sliver_width_m,
            gap_m: self.gap_m,
            search_m: self.search_m,
        }
    }
}

/// The exchange with the extranet.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExchangeSettings {
    /// The intranet zone signing key.
    pub signing_key_file: PathBuf,
    /// The intranet zone encryption key.
    pub encryption_key_file: PathBuf,
    /// The trust file with the other zones' public keys.
    pub trust_file: PathBuf,
    /// Outbox folder of the channel `intranet-to-extranet` (exported on offline media).
    pub outbox: PathBuf,
    /// Inbox folder of the channel `extranet-to-intranet`.
    pub inbox: PathBuf,
    /// Staging files and the zone's exchange log; empty means `exchange` in `data_dir`.
    pub work_dir: PathBuf,
    /// The ferry agent's state database (`<ferry data_dir>/ferry-state.db`), where sequence
    /// numbers per channel are allocated; empty means `packer.db` in `work_dir`.
    pub packer_state: PathBuf,
    /// The receiving ferry agent's state database, read only; empty means `packer_state`.
    pub landed_state: PathBuf,
    /// How often to look for bundles and queued messages, in milliseconds.
    pub poll_interval_ms: u64,
    /// Tries of a failing message before it is set aside as a dead letter (1–100).
    pub retry_budget: u32,
    /// Wait after a message's first failure, doubled after each further one, in milliseconds.
    pub retry_first_delay_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8083)),
            data_dir: PathBuf::from("data"),
            database_url: Secret::default(),
            pii_key_file: PathBuf::new(),
            public_url: "http://127.0.0.1:8083".into(),
            cookie_secure: false,
            session_minutes: 480,
            login: LoginSettings::default(),
            survey: SurveySettings::default(),
            checks: ow_survey::CheckConfig::default(),
            spatial: SpatialSettings::default(),
            exchange: ExchangeSettings::default(),
        }
    }
}

impl Default for LoginSettings {
    fn default() -> Self {
        LoginSettings {
            max_failures: 5,
            lock_minutes: 15,
            min_password_length: 12,
            throttle_per_minute: 10,
            throttle_burst: 20,
            trusted_proxies: Vec::new(),
            ipv6_prefix: ow_web::throttle::DEFAULT_IPV6_PREFIX,
            argon2_concurrency: 0,
            argon2_wait_seconds: 10,
        }
    }
}

impl Default for SurveySettings {
    fn default() -> Self {
        SurveySettings {
            max_file_bytes: 16 * 1024 * 1024,
            draw_neighbours_m: 50.0,
        }
    }
}

impl Default for ExchangeSettings {
    fn default() -> Self {
        ExchangeSettings {
            signing_key_file: PathBuf::new(),
            encryption_key_file: PathBuf::new(),
            trust_file: PathBuf::new(),
            outbox: PathBuf::new(),
            inbox: PathBuf::new(),
            work_dir: PathBuf::new(),
            packer_state: PathBuf::new(),
            landed_state: PathBuf::new(),
            poll_interval_ms: 1000,
            retry_budget: 8,
            retry_first_delay_ms: 2000,
        }
    }
}

impl ExchangeSettings {
    /// The receiving ferry agent's state database: `landed_state`, or `packer_state` when empty.
    pub fn landed_state(&self) -> PathBuf {
        if self.landed_state.as_os_str().is_empty() {
            self.packer_state.clone()
        } else {
            self.landed_state.clone()
        }
    }
}

fn required_path(setting: &str, path: &Path, what: &str) -> Result<(), ConfigError> {
    if path.as_os_str().is_empty() {
        return Err(ConfigError::invalid(
            setting,
            format!("it is empty; give the path of {what}"),
        ));
    }
    Ok(())
}

fn within<T: PartialOrd + std::fmt::Display>(
    setting: &str,
    value: T,
    low: T,
    high: T,
    unit: &str,
) -> Result<(), ConfigError> {
    if value < low || value > high {
        return Err(ConfigError::invalid(
            setting,
            format!("{value} is out of range: give a value from {low} to {high} {unit}"),
        ));
    }
    Ok(())
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), ConfigError> {
        required_path("data_dir", &self.data_dir, "the data folder")?;
        required_path(
            "pii_key_file",
            &self.pii_key_file,
            "the personal-data key file (ow-intranet init-keys creates one)",
        )?;
        required_path(
            "exchange.signing_key_file",
            &self.exchange.signing_key_file,
            "the intranet zone signing key (intranet.sign.secret, from ow-ferry keygen)",
        )?;
        if !(self.public_url.starts_with("http://") || self.public_url.starts_with("https://")) {
            return Err(ConfigError::invalid(
                "public_url",
                "is not an http:// or https:// URL; write it like http://127.0.0.1:8083",
            ));
        }
        within("session_minutes", self.session_minutes, 5, 1440, "minutes")?;
        let l = &self.login;
        within("login.max_failures", l.max_failures, 1, 100, "failures")?;
        within("login.lock_minutes", l.lock_minutes, 1, 1440, "minutes")?;
        within(
            "login.min_password_length",
            l.min_password_length,
            8,
            128,
            "characters",
        )?;
        within(
            "login.throttle_per_minute",
            l.throttle_per_minute,
            1,
            u32::MAX,
            "",
        )?;
        within("login.throttle_burst", l.throttle_burst, 1, u32::MAX, "")?;
        within(
            "login.argon2_wait_seconds",
            l.argon2_wait_seconds,
            1,
            300,
            "seconds",
        )?;
        ow_web::throttle::ClientAddressing::parse(&l.trusted_proxies, l.ipv6_prefix)
            .map_err(|e| ConfigError::invalid("login.trusted_proxies", e.to_string()))?;
        within(
            "survey.max_file_bytes",
            self.survey.max_file_bytes,
            1,
            64 << 20,
            "bytes",
        )?;
        within(
            "survey.draw_neighbours_m",
            self.survey.draw_neighbours_m,
            1.0,
            10_000.0,
            "metres",
        )?;
        self.checks
            .validate()
            .map_err(|e| ConfigError::invalid("checks", e.to_string()))?;
        let sp = &self.spatial;
        within(
            "spatial.sliver_area_m2",
            sp.sliver_area_m2,
            0.0,
            10_000.0,
            "m²",
        )?;
        within("spatial.sliver_width_m", sp.sliver_width_m, 0.0, 100.0, "m")?;
        within("spatial.gap_m", sp.gap_m, 0.0, 100.0, "m")?;
        within("spatial.search_m", sp.search_m, 0.0, 1000.0, "m")?;
        let x = &self.exchange;
        within("exchange.retry_budget", x.retry_budget, 1, 100, "tries")?;
        within(
            "exchange.retry_first_delay_ms",
            x.retry_first_delay_ms,
            1,
            600_000,
            "ms",
        )?;
        within(
            "exchange.poll_interval_ms",
            x.poll_interval_ms,
            10,
            600_000,
            "ms",
        )?;
        let url = self.database_url.expose_secret();
        let understood = url.is_empty()
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://")
            || url.starts_with("sqlite:");
        if !understood {
            return Err(ConfigError::invalid(
                "database_url",
                "must be empty (SQLite in data_dir), sqlite:PATH or postgres://user:password@host/db",
            ));
        }
        Ok(())
    }
}

impl Settings {
    /// Loads the settings from `file` (if any), `OW_` variables and `--set` overrides, resolves
    /// relative paths against the file's folder and validates them.
    pub fn load(file: Option<&Path>, overrides: &[(String, String)]) -> Result<Self, ConfigError> {
        let settings: Settings = ow_config::load(file, "OW_", overrides)?;
        let settings = settings.resolve(file);
        settings.validate()?;
        Ok(settings)
    }

    /// The settings with every relative path made relative to `file`'s folder and the empty
    /// defaults that live in `data_dir` filled in.
    pub fn resolve(mut self, file: Option<&Path>) -> Self {
        let rel = |p: &Path| {
            if p.as_os_str().is_empty() {
                PathBuf::new()
            } else {
                ow_config::relative_to(file, p)
            }
        };
        self.data_dir = rel(&self.data_dir);
        self.pii_key_file = rel(&self.pii_key_file);
        let x = &mut self.exchange;
        x.signing_key_file = rel(&x.signing_key_file);
        x.encryption_key_file = rel(&x.encryption_key_file);
        x.trust_file = rel(&x.trust_file);
        x.outbox = rel(&x.outbox);
        x.inbox = rel(&x.inbox);
        x.work_dir = if x.work_dir.as_os_str().is_empty() {
            self.data_dir.join("exchange")
        } else {
            rel(&x.work_dir)
        };
        x.packer_state = if x.packer_state.as_os_str().is_empty() {
            x.work_dir.join("packer.db")
        } else {
            rel(&x.packer_state)
        };
        x.landed_state = rel(&x.landed_state);
        self
    }

    /// The database URL to open: the configured one, or the SQLite file in `data_dir`.
    pub fn database_url(&self) -> String {
        let url = self.database_url.expose_secret();
        if url.is_empty() {
            self.data_dir
                .join("intranet.db")
                .to_string_lossy()
                .into_owned()
        } else {
            url.to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_the_key_files_and_name_the_setting() {
        let err = Settings::default().validate().expect_err("no key files");
        assert!(err.to_string().contains("pii_key_file"), "{err}");
        let mut s = Settings {
            pii_key_file: "k".into(),
            ..Settings::default()
        };
        s.exchange.signing_key_file = "s".into();
        s.validate().expect("valid");
        s.survey.draw_neighbours_m = 0.0;
        let err = s.validate().expect_err("out of range");
        assert!(
            err.to_string().contains("survey.draw_neighbours_m"),
            "{err}"
        );
    }
}
