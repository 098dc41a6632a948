//! Settings of the portal: layered with `ow-config` (defaults → TOML file → `OW_` environment
//! variables → `--set key=value`), validated into [`Settings`] before anything starts.
//!
//! Relative paths in the file are relative to the file's folder ([`Settings::resolve_paths`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ow_config::{ConfigError, Secret, Validate};
use serde::{Deserialize, Serialize};

/// Every setting of `ow-internet`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address the HTTP server listens on (`listen`).
    pub listen: SocketAddr,
    /// The portal's public base URL, e.g. `https://bdc.example.gov.cn` (`public_url`); the
    /// verification link in QR codes is `<public_url>/verify`.
    pub public_url: String,
    /// Folder for the SQLite database and the uploaded files (`data_dir`).
    pub data_dir: PathBuf,
    /// Database URL (`database_url`): empty = SQLite file `internet.db` in `data_dir`;
    /// `postgres://…` for PostgreSQL.
    pub database_url: Secret,
    /// Personal-data key file, mode 0600 (`pii_key_file`).
    pub pii_key_file: PathBuf,
    /// Add `Secure` to the session cookie; set it whenever the portal is served over HTTPS
    /// (`cookie_secure`).
    pub cookie_secure: bool,
    /// How long a login lasts, in minutes (`session_minutes`).
    pub session_minutes: u64,
    /// The extranet's certificate public key file (`ow-ed25519:…`), against which issued
    /// e-certificates and uploaded certificate files are verified (`certificate_key_file`).
    pub certificate_key_file: PathBuf,
    /// Password rules and hashing cost (`password.*`).
    pub password: PasswordSettings,
    /// Login lockout (`lockout.*`).
    pub lockout: LockoutSettings,
    /// Upload limits (`uploads.*`).
    pub uploads: UploadSettings,
    /// Public verification page (`verify.*`).
    pub verify: VerifySettings,
    /// Per-source throttling of login and registration, and the password-hashing pool
    /// (`throttle.*`).
    pub throttle: ThrottleSettings,
    /// County names as printed in certificate numbers → 6-digit district codes
    /// (`counties.青州市 = "370781"`), for applications identified by certificate number only.
    pub counties: BTreeMap<String, String>,
    /// Bundle exchange with the extranet (`exchange.*`).
    pub exchange: ExchangeSettings,
}

/// `password.*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordSettings {
    /// Minimum length in characters (`password.min_length`, at least 8).
    pub min_length: usize,
    /// Minimum character classes among lower, upper, digit, symbol (`password.min_classes`, 1–4).
    pub min_classes: u8,
    /// Maximum length (`password.max_length`).
    pub max_length: usize,
    /// argon2id memory in KiB (`password.argon2_memory_kib`; OWASP: 19456).
    pub argon2_memory_kib: u32,
    /// argon2id iterations (`password.argon2_iterations`; OWASP: 2).
    pub argon2_iterations: u32,
}

/// `lockout.*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutSettings {
    /// Failed logins in a row that lock an account (`lockout.max_failures`).
    pub max_failures: u32,
    /// Minutes the lock lasts (`lockout.lock_minutes`).
    pub lock_minutes: i64,
}

/// `uploads.*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UploadSettings {
    /// Largest accepted file in bytes (`uploads.max_file_bytes`).
    pub max_file_bytes: u64,
    /// Most files in one request (`uploads.max_files`).
    pub max_files: usize,
}

/// `verify.*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerifySettings {
    /// Verification attempts one client address may make per minute (`verify.per_minute`).
    pub per_minute: u32,
}

/// `throttle.*`: per-source limits (see `ow_web::throttle`) and the argon2 pool.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleSettings {
    /// Login and registration attempts (pages and API together) one client may make per
    /// minute on average (`throttle.login_per_minute`).
    pub login_per_minute: u32,
    /// How many of them may come at once (`throttle.login_burst`).
    pub login_burst: u32,
    /// Addresses or networks (`10.0.0.5`, `10.0.0.0/8`, `fd00::/8`) of reverse proxies whose
    /// `Forwarded` / `X-Forwarded-For` header names the client (`throttle.trusted_proxies`;
    /// default none: the TCP peer is the client).
    pub trusted_proxies: Vec<String>,
    /// IPv6 clients are counted per network of this prefix length (`throttle.ipv6_prefix`).
    pub ipv6_prefix: u8,
    /// Password hashes computed at once (`throttle.argon2_concurrency`; 0 = one per core).
    pub argon2_concurrency: usize,
    /// Seconds a login or registration waits for a hashing slot before it is answered 503
    /// (`throttle.argon2_wait_seconds`).
    pub argon2_wait_seconds: u64,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        ThrottleSettings {
            login_per_minute: 10,
            login_burst: 10,
            trusted_proxies: Vec::new(),
            ipv6_prefix: ow_web::throttle::DEFAULT_IPV6_PREFIX,
            argon2_concurrency: 0,
            argon2_wait_seconds: 10,
        }
    }
}

/// `exchange.*`: the zone's bundle folders and keys (see `deploy/local/internet.ferry.toml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExchangeSettings {
    /// Run the exchange loop (pack the outbox, import the inbox) inside `serve`
    /// (`exchange.enabled`). When off, submissions are still queued in the outbox table.
    pub enabled: bool,
    /// The internet zone's bundle signing key (`exchange.signing_key_file`).
    pub signing_key_file: PathBuf,
    /// The internet zone's bundle encryption key (`exchange.encryption_key_file`).
    pub encryption_key_file: PathBuf,
    /// The trust file with the pinned keys of each channel (`exchange.trust_file`).
    pub trust_file: PathBuf,
    /// Folder where bundles for the extranet are written (`exchange.outbox_dir`).
    pub outbox_dir: PathBuf,
    /// Folder where bundles from the extranet arrive (`exchange.inbox_dir`).
    pub inbox_dir: PathBuf,
    /// The sending ferry agent's state database, where sequence numbers per channel are
    /// allocated (`exchange.packer_state`; `<ferry data_dir>/ferry-state.db`).
    pub packer_state: PathBuf,
    /// The receiving ferry agent's state database, read only: a bundle is imported only if the
    /// agent landed it (`exchange.landed_state`; empty means the same file as `packer_state`).
    pub landed_state: PathBuf,
    /// Staging files and the exchange log (`exchange.work_dir`; default `<data_dir>/exchange`).
    pub work_dir: PathBuf,
    /// How often the loop looks for work, in milliseconds (`exchange.poll_ms`).
    pub poll_ms: u64,
    /// Tries of a failing message before it is set aside as a dead letter
    /// (`exchange.retry_budget`, 1–100).
    pub retry_budget: u32,
    /// Wait after a message's first failure, doubled after each further one, in milliseconds
    /// (`exchange.retry_first_delay_ms`, 1–600000).
    pub retry_first_delay_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        let mut counties = BTreeMap::new();
        counties.insert("青州市".to_owned(), "370781".to_owned());
        counties.insert("潍城区".to_owned(), "370702".to_owned());
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: "http://127.0.0.1:8080".into(),
            data_dir: PathBuf::from("data"),
            database_url: Secret::default(),
            pii_key_file: PathBuf::from("keys/internet-pii.keys"),
            cookie_secure: false,
            session_minutes: 8 * 60,
            certificate_key_file: PathBuf::from("keys/extranet-cert.pub"),
            password: PasswordSettings::default(),
            lockout: LockoutSettings::default(),
            uploads: UploadSettings::default(),
            verify: VerifySettings::default(),
            throttle: ThrottleSettings::default(),
            counties,
            exchange: ExchangeSettings::default(),
        }
    }
}

impl Default for PasswordSettings {
    fn default() -> Self {
        PasswordSettings {
            min_length: 10,
            min_classes: 3,
            max_length: 128,
            argon2_memory_kib: 19456,
            argon2_iterations: 2,
        }
    }
}

impl Default for LockoutSettings {
    fn default() -> Self {
        LockoutSettings {
            max_failures: 5,
            lock_minutes: 15,
        }
    }
}

impl Default for UploadSettings {
    fn default() -> Self {
        UploadSettings {
            max_file_bytes: 10 * 1024 * 1024,
            max_files: 20,
        }
    }
}

impl Default for VerifySettings {
    fn default() -> Self {
        VerifySettings { per_minute: 30 }
    }
}

impl Default for ExchangeSettings {
    fn default() -> Self {
        ExchangeSettings {
            enabled: true,
            signing_key_file: PathBuf::from("keys/internet.sign.secret"),
            encryption_key_file: PathBuf::from("keys/internet.enc.secret"),
            trust_file: PathBuf::from("trust.toml"),
            outbox_dir: PathBuf::from("outbox/extranet"),
            inbox_dir: PathBuf::from("inbox/extranet"),
            packer_state: PathBuf::from("ferry/ferry-state.db"),
            landed_state: PathBuf::new(),
            work_dir: PathBuf::new(),
            poll_ms: 1000,
            retry_budget: ow_exchange::RetryPolicy::default().budget,
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

impl Settings {
    /// Loads the settings (see the module docs), resolves relative paths against the file's
    /// folder and validates them.
    pub fn load(file: Option<&Path>, overrides: &[(String, String)]) -> Result<Self, ConfigError> {
        let mut settings: Settings = ow_config::load(file, "OW_", overrides)?;
        settings.resolve_paths(file);
        settings.validate()?;
        Ok(settings)
    }

    /// Makes every relative path relative to the folder of `file`.
    pub fn resolve_paths(&mut self, file: Option<&Path>) {
        let r = |p: &mut PathBuf| *p = ow_config::relative_to(file, p);
        r(&mut self.data_dir);
        r(&mut self.pii_key_file);
        r(&mut self.certificate_key_file);
        r(&mut self.exchange.signing_key_file);
        r(&mut self.exchange.encryption_key_file);
        r(&mut self.exchange.trust_file);
        r(&mut self.exchange.outbox_dir);
        r(&mut self.exchange.inbox_dir);
        r(&mut self.exchange.packer_state);
        if !self.exchange.landed_state.as_os_str().is_empty() {
            r(&mut self.exchange.landed_state);
        }
        if self.exchange.work_dir.as_os_str().is_empty() {
            self.exchange.work_dir = self.data_dir.join("exchange");
        } else {
            r(&mut self.exchange.work_dir);
        }
    }

    /// The database URL to open: the configured one, or the SQLite file in `data_dir`.
    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            self.data_dir
                .join("internet.db")
                .to_string_lossy()
                .into_owned()
        } else {
            self.database_url.expose().to_owned()
        }
    }

    /// `<public_url>/verify`, the link printed in QR codes.
    pub fn verify_base_url(&self) -> String {
        format!("{}/verify", self.public_url.trim_end_matches('/'))
    }

    /// The session lifetime.
    pub fn session_lifetime(&self) -> Duration {
        Duration::from_secs(self.session_minutes.saturating_mul(60))
    }

    /// The district code for a county name as printed in a certificate number.
    pub fn district_of_county(&self, county: &str) -> Option<&str> {
        self.counties.get(county).map(String::as_str)
    }
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), ConfigError> {
        let url = self.public_url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
            return Err(ConfigError::invalid(
                "public_url",
                "must be the portal's address starting with http:// or https://, e.g. https://bdc.example.gov.cn",
            ));
        }
        if self.cookie_secure && url.starts_with("http://") {
            return Err(ConfigError::invalid(
                "cookie_secure",
                "is true but public_url is http://: browsers would never send the cookie back; serve over https or set cookie_secure = false for local use",
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid(
                "data_dir",
                "is empty; name the folder for the database and uploaded files",
            ));
        }
        if !(5..=7 * 24 * 60).contains(&self.session_minutes) {
            return Err(ConfigError::invalid(
                "session_minutes",
                "must be between 5 and 10080 (one week)",
            ));
        }
        let p = &self.password;
        if p.min_length < 8 || p.min_length > p.max_length || p.max_length > 1024 {
            return Err(ConfigError::invalid(
                "password.min_length",
                "must be at least 8 and not more than password.max_length (at most 1024)",
            ));
        }
        if !(1..=4).contains(&p.min_classes) {
            return Err(ConfigError::invalid(
                "password.min_classes",
                "must be 1 to 4 (lower case, upper case, digits, symbols)",
            ));
        }
        if p.argon2_memory_kib < 8 || p.argon2_iterations < 1 {
            return Err(ConfigError::invalid(
                "password.argon2_memory_kib",
                "argon2 needs at least 8 KiB of memory and 1 iteration (recommended: 19456 and 2)",
            ));
        }
        if self.lockout.max_failures < 1 || self.lockout.max_failures > 100 {
            return Err(ConfigError::invalid(
                "lockout.max_failures",
                "must be between 1 and 100",
            ));
        }
        if !(1..=24 * 60).contains(&self.lockout.lock_minutes) {
            return Err(ConfigError::invalid(
                "lockout.lock_minutes",
                "must be between 1 and 1440",
            ));
        }
        if !(1024..=ow_exchange::MAX_FILE_BYTES).contains(&self.uploads.max_file_bytes) {
            return Err(ConfigError::invalid(
                "uploads.max_file_bytes",
                format!(
                    "must be between 1024 bytes and {} MiB, the largest file one exchange message may carry",
                    ow_exchange::MAX_FILE_BYTES >> 20
                ),
            ));
        }
        if !(1..=100).contains(&self.exchange.retry_budget) {
            return Err(ConfigError::invalid(
                "exchange.retry_budget",
                "must be between 1 and 100 tries",
            ));
        }
        if !(1..=600_000).contains(&self.exchange.retry_first_delay_ms) {
            return Err(ConfigError::invalid(
                "exchange.retry_first_delay_ms",
                "must be between 1 and 600000 milliseconds",
            ));
        }
        if !(1..=100).contains(&self.uploads.max_files) {
            return Err(ConfigError::invalid(
                "uploads.max_files",
                "must be between 1 and 100",
            ));
        }
        if self.verify.per_minute < 1 {
            return Err(ConfigError::invalid(
                "verify.per_minute",
                "must be at least 1",
            ));
        }
        let t = &self.throttle;
        if t.login_per_minute < 1 || t.login_burst < 1 {
            return Err(ConfigError::invalid(
                "throttle.login_per_minute",
                "login_per_minute and login_burst must be at least 1",
            ));
        }
        ow_web::throttle::ClientAddressing::parse(&t.trusted_proxies, t.ipv6_prefix)
            .map_err(|e| ConfigError::invalid("throttle.trusted_proxies", e.to_string()))?;
        if !(1..=300).contains(&t.argon2_wait_seconds) {
            return Err(ConfigError::invalid(
                "throttle.argon2_wait_seconds",
                "must be between 1 and 300",
            ));
        }
        for (county, code) in &self.counties {
            if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ConfigError::invalid(
                    format!("counties.{county}"),
                    "must be a 6-digit district code such as \"370781\"",
                ));
            }
        }
        if self.exchange.enabled && !(100..=3_600_000).contains(&self.exchange.poll_ms) {
            return Err(ConfigError::invalid(
                "exchange.poll_ms",
                "must be between 100 and 3600000 milliseconds",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let s = Settings::default();
        s.validate().expect("defaults valid");
        assert_eq!(s.district_of_county("青州市"), Some("370781"));
        assert_eq!(s.district_of_county("潍城区"), Some("370702"));
    }

    #[test]
    fn bad_values_name_the_setting() {
        let over = vec![("password.min_length".to_owned(), "4".to_owned())];
        let err = Settings::load(None, &over).expect_err("refused");
        assert!(err.to_string().contains("password.min_length"), "{err}");

        let over = vec![("counties.青州市".to_owned(), "37".to_owned())];
        // Keys must be ASCII for --set; check validation directly instead.
        let _ = over;
        let mut s = Settings::default();
        s.counties.insert("某县".into(), "12".into());
        let err = s.validate().expect_err("refused");
        assert!(err.to_string().contains("counties.某县"), "{err}");

        let over = vec![("cookie_secure".to_owned(), "true".to_owned())];
        let err = Settings::load(None, &over).expect_err("refused");
        assert!(err.to_string().contains("cookie_secure"), "{err}");

        let mut s = Settings::default();
        s.throttle.trusted_proxies = vec!["10.0.0.0/99".into()];
        let err = s.validate().expect_err("refused");
        assert!(
            err.to_string().contains("throttle.trusted_proxies"),
            "{err}"
        );
        assert!(err.to_string().contains("10.0.0.0/99"), "{err}");

        let over = vec![("no_such_key".to_owned(), "1".to_owned())];
        assert!(Settings::load(None, &over).is_err());
    }

    #[test]
    fn relative_paths_follow_the_file() {
        let mut s = Settings::default();
        s.resolve_paths(Some(Path::new("/etc/ow/internet.toml")));
        assert_eq!(s.data_dir, PathBuf::from("/etc/ow/data"));
        assert_eq!(s.exchange.work_dir, PathBuf::from("/etc/ow/data/exchange"));
        assert!(s.database_url().ends_with("data/internet.db"));
    }
}
