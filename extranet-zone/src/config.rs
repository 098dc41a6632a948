//! Settings of the back office: layered with `ow-config` (defaults → TOML file → `OW_`
//! environment variables → `--set`), then checked by [`Validate`] with messages naming the
//! setting. Relative paths in the file are relative to the file's folder ([`Settings::resolve`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ow_config::{ConfigError, ExposeSecret, Secret, Validate};
use serde::{Deserialize, Serialize};

/// Everything `ow-extranet` reads from its configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address the web server listens on (`127.0.0.1:8082`).
    pub listen: SocketAddr,
    /// The data folder: SQLite database, materials, audit log, outgoing files.
    pub data_dir: PathBuf,
    /// Database URL; empty means the SQLite file `extranet.db` in `data_dir`.
    pub database_url: Secret,
    /// The personal-data key file (mode 0600).
    pub pii_key_file: PathBuf,
    /// The e-certificate signing key (`<name>.secret`, mode 0600, from `ow-extranet init-keys`).
    pub certificate_key_file: PathBuf,
    /// The base URL registrars reach this server at.
    pub public_url: String,
    /// The portal's public verification page, put in the QR code of certificates.
    pub portal_verify_url: String,
    /// Whether the session cookie is `Secure` (set when served over HTTPS).
    pub cookie_secure: bool,
    /// How long a staff session lasts, in minutes.
    pub session_minutes: u32,
    /// Staff login rules.
    pub login: LoginSettings,
    /// Received materials.
    pub materials: MaterialSettings,
    /// The tamper-evident audit log of registrar actions.
    pub audit: AuditSettings,
    /// The exchange with the portal (bundles through the ferry).
    pub exchange: ExchangeSettings,
}

/// Staff login rules.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginSettings {
    /// Failed logins (password or dynamic code) in a row that lock an account.
    pub max_failures: u32,
    /// How long a lock lasts, in minutes.
    pub lock_minutes: u32,
    /// Minimum password length for new staff passwords.
    pub min_password_length: usize,
    /// Login attempts (password and dynamic-code steps together) one client address may make
    /// per minute on average (`login.throttle_per_minute`; see `ow_web::throttle`).
    pub throttle_per_minute: u32,
    /// How many of them may come at once (`login.throttle_burst`).
    pub throttle_burst: u32,
    /// Addresses or networks of reverse proxies whose `Forwarded` / `X-Forwarded-For` names
    /// the client (`login.trusted_proxies`; default none: the TCP peer is the client).
    pub trusted_proxies: Vec<String>,
    /// IPv6 clients are counted per network of this prefix length (`login.ipv6_prefix`).
    pub ipv6_prefix: u8,
    /// Password hashes computed at once (`login.argon2_concurrency`; 0 = one per core).
    pub argon2_concurrency: usize,
    /// Seconds a login waits for a hashing slot before it is told to try again
    /// (`login.argon2_wait_seconds`).
    pub argon2_wait_seconds: u64,
}

/// Received materials.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaterialSettings {
    /// Largest accepted material file, in bytes.
    pub max_file_bytes: u64,
}

/// The audit log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    /// The log folder; empty means `audit` in `data_dir`.
    pub dir: PathBuf,
    /// Write a signed checkpoint after this many entries (and on shutdown).
    pub checkpoint_every: u64,
}

/// The exchange with the portal.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExchangeSettings {
    /// The extranet zone signing key (also signs the audit log's checkpoints).
    pub signing_key_file: PathBuf,
    /// The extranet zone encryption key.
    pub encryption_key_file: PathBuf,
    /// The trust file with the other zones' public keys.
    pub trust_file: PathBuf,
    /// Outbox folder of the channel `extranet-to-internet`.
    pub outbox: PathBuf,
    /// Inbox folder of the channel `internet-to-extranet`.
    pub inbox: PathBuf,
    /// Outbox folder of the channel `extranet-to-intranet` through the one-way gateway (the
    /// ferry's `[[send]]` route): survey packages and the register log. Empty: no link to the
    /// intranet (register-log rows wait, unsent, until one is configured).
    pub intranet_outbox: PathBuf,
    /// Outbox folder of the channel `extranet-to-intranet` on offline media (the ferry's
    /// `[[media]]` route): confidential survey packages, which never touch the gateway.
    pub intranet_media_outbox: PathBuf,
    /// Inbox folder of the channel `intranet-to-extranet` (survey reviews, landed from discs).
    pub intranet_inbox: PathBuf,
    /// Staging files and the zone's exchange log; empty means `exchange` in `data_dir`.
    pub work_dir: PathBuf,
    /// The sending ferry agent's state database (`<ferry data_dir>/ferry-state.db`), where
    /// sequence numbers per channel are allocated; empty means `packer.db` in `work_dir`.
    pub packer_state: PathBuf,
    /// The receiving ferry agent's state database, read only: a bundle is imported only if the
    /// agent landed it; empty means the same file as `packer_state`.
    pub landed_state: PathBuf,
    /// How often to look for bundles and queued messages, in milliseconds.
    pub poll_interval_ms: u64,
    /// Tries of a failing message before it is set aside as a dead letter (1–100).
    pub retry_budget: u32,
    /// Wait after a message's first failure, doubled after each further one, in milliseconds
    /// (1–600000).
    pub retry_first_delay_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8082)),
            data_dir: PathBuf::from("data"),
            database_url: Secret::default(),
            pii_key_file: PathBuf::new(),
            certificate_key_file: PathBuf::new(),
            public_url: "http://127.0.0.1:8082".into(),
            portal_verify_url: "http://127.0.0.1:8081/verify".into(),
            cookie_secure: false,
            session_minutes: 480,
            login: LoginSettings::default(),
            materials: MaterialSettings::default(),
            audit: AuditSettings::default(),
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

impl Default for MaterialSettings {
    fn default() -> Self {
        MaterialSettings {
            max_file_bytes: 20 * 1024 * 1024,
        }
    }
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            dir: PathBuf::new(),
            checkpoint_every: 100,
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

impl Default for ExchangeSettings {
    fn default() -> Self {
        ExchangeSettings {
            signing_key_file: PathBuf::new(),
            encryption_key_file: PathBuf::new(),
            trust_file: PathBuf::new(),
            outbox: PathBuf::new(),
            inbox: PathBuf::new(),
            intranet_outbox: PathBuf::new(),
            intranet_media_outbox: PathBuf::new(),
            intranet_inbox: PathBuf::new(),
            work_dir: PathBuf::new(),
            packer_state: PathBuf::new(),
            landed_state: PathBuf::new(),
            poll_interval_ms: 1000,
            retry_budget: 8,
            retry_first_delay_ms: 2000,
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

fn http_url(setting: &str, url: &str) -> Result<(), ConfigError> {
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
        return Err(ConfigError::invalid(
            setting,
            format!(
                "{url:?} is not an http:// or https:// URL; write it like http://127.0.0.1:8082"
            ),
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
            "the personal-data key file (ow-extranet init-keys creates one)",
        )?;
        required_path(
            "certificate_key_file",
            &self.certificate_key_file,
            "the certificate signing key (ow-extranet init-keys creates one)",
        )?;
        if self
            .certificate_key_file
            .extension()
            .and_then(|e| e.to_str())
            != Some("secret")
        {
            return Err(ConfigError::invalid(
                "certificate_key_file",
                "must name a `<name>.secret` file, e.g. keys/extranet-cert.secret",
            ));
        }
        required_path(
            "exchange.signing_key_file",
            &self.exchange.signing_key_file,
            "the extranet zone signing key (extranet.sign.secret)",
        )?;
        http_url("public_url", &self.public_url)?;
        http_url("portal_verify_url", &self.portal_verify_url)?;
        if !(5..=24 * 60).contains(&self.session_minutes) {
            return Err(ConfigError::invalid(
                "session_minutes",
                "must be between 5 and 1440 minutes",
            ));
        }
        if !(1..=100).contains(&self.login.max_failures) {
            return Err(ConfigError::invalid(
                "login.max_failures",
                "must be between 1 and 100",
            ));
        }
        if !(1..=24 * 60).contains(&self.login.lock_minutes) {
            return Err(ConfigError::invalid(
                "login.lock_minutes",
                "must be between 1 and 1440 minutes",
            ));
        }
        if self.login.throttle_per_minute < 1 || self.login.throttle_burst < 1 {
            return Err(ConfigError::invalid(
                "login.throttle_per_minute",
                "throttle_per_minute and throttle_burst must be at least 1",
            ));
        }
        ow_web::throttle::ClientAddressing::parse(
            &self.login.trusted_proxies,
            self.login.ipv6_prefix,
        )
        .map_err(|e| ConfigError::invalid("login.trusted_proxies", e.to_string()))?;
        if !(1..=300).contains(&self.login.argon2_wait_seconds) {
            return Err(ConfigError::invalid(
                "login.argon2_wait_seconds",
                "must be between 1 and 300",
            ));
        }
        if !(8..=128).contains(&self.login.min_password_length) {
            return Err(ConfigError::invalid(
                "login.min_password_length",
                "must be between 8 and 128 characters",
            ));
        }
        if self.materials.max_file_bytes == 0 || self.materials.max_file_bytes > 1 << 30 {
            return Err(ConfigError::invalid(
                "materials.max_file_bytes",
                "must be between 1 byte and 1 GiB",
            ));
        }
        if self.audit.checkpoint_every == 0 {
            return Err(ConfigError::invalid(
                "audit.checkpoint_every",
                "must be at least 1 (a signed checkpoint every N entries)",
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
        if !(10..=600_000).contains(&self.exchange.poll_interval_ms) {
            return Err(ConfigError::invalid(
                "exchange.poll_interval_ms",
                "must be between 10 and 600000 milliseconds",
            ));
        }
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
        self.certificate_key_file = rel(&self.certificate_key_file);
        self.audit.dir = if self.audit.dir.as_os_str().is_empty() {
            self.data_dir.join("audit")
        } else {
            rel(&self.audit.dir)
        };
        let x = &mut self.exchange;
        x.signing_key_file = rel(&x.signing_key_file);
        x.encryption_key_file = rel(&x.encryption_key_file);
        x.trust_file = rel(&x.trust_file);
        x.outbox = rel(&x.outbox);
        x.inbox = rel(&x.inbox);
        x.intranet_outbox = rel(&x.intranet_outbox);
        x.intranet_media_outbox = rel(&x.intranet_media_outbox);
        x.intranet_inbox = rel(&x.intranet_inbox);
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
                .join("extranet.db")
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

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("extranet.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    const GOOD: &str = r#"
listen = "127.0.0.1:0"
data_dir = "data"
pii_key_file = "keys/pii.keys"
certificate_key_file = "keys/cert.secret"
[exchange]
signing_key_file = "keys/extranet.sign.secret"
outbox = "out"
inbox = "in"
"#;

    #[test]
    fn relative_paths_resolve_against_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), GOOD);
        let s = Settings::load(Some(&file), &[]).unwrap();
        assert_eq!(s.data_dir, dir.path().join("data"));
        assert_eq!(s.audit.dir, dir.path().join("data/audit"));
        assert_eq!(s.exchange.outbox, dir.path().join("out"));
        assert!(s.database_url().ends_with("extranet.db"));
    }

    #[test]
    fn bad_settings_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), GOOD);
        let err = Settings::load(
            Some(&file),
            &[ow_config::parse_set_arg("session_minutes=1").unwrap()],
        )
        .unwrap_err();
        assert!(err.to_string().contains("session_minutes"), "{err}");
        let err = Settings::load(
            Some(&file),
            &[ow_config::parse_set_arg("public_url=ftp://x").unwrap()],
        )
        .unwrap_err();
        assert!(err.to_string().contains("public_url"), "{err}");
        let err = Settings::load(
            Some(&file),
            &[ow_config::parse_set_arg("lissen=1").unwrap()],
        )
        .unwrap_err();
        assert!(err.to_string().contains("lissen"), "{err}");
        let file = write(dir.path(), "listen = \"127.0.0.1:0\"\n");
        let err = Settings::load(Some(&file), &[]).unwrap_err();
        assert!(err.to_string().contains("pii_key_file"), "{err}");
    }
}
