//! The agent configuration file: one TOML file per zone, naming its keys, its trust file and the
//! sending and receiving agents with their folders.
//!
//! Relative paths are resolved against the folder holding the configuration file, so a zone's
//! configuration and folders can be moved together. See `deploy/local/` for real examples.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ow_bundle::{Channel, Zone};
use serde::Deserialize;

/// Why a configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {path}: {cause}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// The file is not valid TOML for this schema; the message names the setting.
    #[error("configuration file {path} is invalid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, which names the offending key.
        message: String,
    },
    /// The file parsed but a setting is inconsistent.
    #[error("configuration file {path}: setting `{setting}` {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The offending setting.
        setting: String,
        /// What is wrong and what to do.
        problem: String,
    },
}

/// A zone's ferry configuration, validated.
#[derive(Debug, Clone)]
pub struct FerryConfig {
    /// The zone this ferry process serves.
    pub zone: Zone,
    /// State database, ferry logs, and (by default) the folders below.
    pub data_dir: PathBuf,
    /// The zone's keys and trust file.
    pub keys: KeysConfig,
    /// Ferry-log settings.
    pub log: LogSettings,
    /// Sending agents: outbox → gateway folder.
    pub send: Vec<SendConfig>,
    /// Receiving agents: gateway folder → inbox.
    pub receive: Vec<ReceiveConfig>,
    /// Offline-media routes: `ow-ferry media export` / `media import` ([`crate::media`]).
    pub media: Vec<crate::media::MediaRoute>,
    /// The one-way discipline: heartbeats, the "no traffic" alarm, receipts ([`OnewaySettings`]).
    pub oneway: OnewaySettings,
}

/// The one-way discipline's timings (`[oneway]`; each 0 or absent turns it off).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OnewaySettings {
    /// A sending agent that has sent nothing for this long sends a `ferry.heartbeat` bundle.
    pub heartbeat: Option<Duration>,
    /// A receiving channel on which nothing (not even a heartbeat) has landed for this long shows
    /// the `no-traffic` alarm in `ow-ferry status`.
    pub silence_alarm: Option<Duration>,
    /// A sent bundle that no receipt has confirmed this long after it was sent is listed for
    /// resend (`unconfirmed` in `ow-ferry status`).
    pub confirm_within: Option<Duration>,
}

/// Where the zone's keys are.
#[derive(Debug, Clone)]
pub struct KeysConfig {
    /// Ed25519 signing key (secret, mode 0600): signs bundles and log checkpoints.
    pub signing_key: PathBuf,
    /// age X25519 identity (secret, mode 0600): decrypts bundles sent to this zone.
    pub encryption_key: PathBuf,
    /// Trust file: per channel, the sender's public keys and the receiver's encryption key.
    pub trust_file: PathBuf,
}

/// Ferry-log settings.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// Write a signed checkpoint at least every this many entries (and on shutdown).
    pub checkpoint_every: u64,
}

/// One sending agent.
#[derive(Debug, Clone)]
pub struct SendConfig {
    /// Agent name, used in the ferry log and in `status` (default `<channel>-tx`).
    pub name: String,
    /// The channel it sends on; its `from` zone is this zone.
    pub channel: Channel,
    /// Where the zone drops complete bundles for this channel.
    pub outbox: PathBuf,
    /// The gateway device's folder (mirrored to the other side).
    pub gateway: PathBuf,
    /// Where bundles go once they are safely in the gateway folder.
    pub sent: PathBuf,
    /// Where outbox files that are not valid bundles for this channel are set aside.
    pub rejected: PathBuf,
    /// Vouch for complete bundles with markers (see `marker_style`).
    pub marker: bool,
    /// How markers are written: one manifest per batch (the default) or `<name>.done` per file.
    pub marker_style: MarkerStyle,
    /// Periodic rescan of the outbox, in case file-system events were dropped.
    pub rescan: Duration,
    /// Most bundles moved in one batch (one group commit).
    pub batch: usize,
}

/// How a sending agent marks complete bundles in its gateway folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MarkerStyle {
    /// One `batch-<id>.done` manifest per batch, listing each bundle's name and size. Receivers
    /// of this version and later accept it; it saves creating and deleting a file per bundle.
    #[default]
    Batch,
    /// An empty `<name>.done` beside each bundle, for receivers older than batch manifests.
    PerFile,
}

/// One receiving agent.
#[derive(Debug, Clone)]
pub struct ReceiveConfig {
    /// Agent name (default `<channel>-rx`).
    pub name: String,
    /// The channel it receives on; its `to` zone is this zone.
    pub channel: Channel,
    /// The gateway device's folder on this side.
    pub gateway: PathBuf,
    /// Where verified bundles land for the zone to import.
    pub inbox: PathBuf,
    /// Where refused files go, each with a `.reason` file beside it.
    pub quarantine: PathBuf,
    /// A file without a marker is complete once its size and time have not changed for this long.
    pub settle: Duration,
    /// Wait for a `.done` marker and never judge a file by a settle time.
    pub require_marker: bool,
    /// A file that still looks truncated this long after its last change is quarantined.
    pub incomplete_timeout: Duration,
    /// Periodic rescan of the gateway folder.
    pub rescan: Duration,
    /// Most bundles landed in one batch (one group commit).
    pub batch: usize,
    /// Largest bundle file accepted on this channel, in bytes.
    pub max_bundle_bytes: u64,
    /// Bundle kinds this channel accepts; empty means any kind.
    pub allowed_kinds: Vec<String>,
    /// How far in the future a bundle's creation time may be (clock skew between the zones).
    /// Default five minutes, the format's default (`max_clock_skew_s`).
    pub max_clock_skew: chrono::Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    zone: Zone,
    data_dir: PathBuf,
    keys: RawKeys,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    send: Vec<RawSend>,
    #[serde(default)]
    receive: Vec<RawReceive>,
    #[serde(default)]
    media: Vec<crate::media::config::RawMedia>,
    #[serde(default)]
    oneway: RawOneway,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOneway {
    #[serde(default)]
    heartbeat_s: u64,
    #[serde(default)]
    silence_alarm_s: u64,
    #[serde(default)]
    confirm_within_s: u64,
}

fn seconds(s: u64) -> Option<Duration> {
    (s > 0).then(|| Duration::from_secs(s))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeys {
    signing_key: PathBuf,
    encryption_key: PathBuf,
    trust_file: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    #[serde(default = "default_checkpoint_every")]
    checkpoint_every: u64,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            checkpoint_every: default_checkpoint_every(),
        }
    }
}

fn default_checkpoint_every() -> u64 {
    1000
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSend {
    name: Option<String>,
    channel: Channel,
    outbox: PathBuf,
    gateway: PathBuf,
    sent: Option<PathBuf>,
    rejected: Option<PathBuf>,
    #[serde(default)]
    marker: bool,
    #[serde(default)]
    marker_style: MarkerStyle,
    #[serde(default = "default_rescan_ms")]
    rescan_ms: u64,
    #[serde(default = "default_batch")]
    batch: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReceive {
    name: Option<String>,
    channel: Channel,
    gateway: PathBuf,
    inbox: PathBuf,
    quarantine: Option<PathBuf>,
    #[serde(default = "default_settle_ms")]
    settle_ms: u64,
    #[serde(default)]
    require_marker: bool,
    #[serde(default = "default_incomplete_timeout_s")]
    incomplete_timeout_s: u64,
    #[serde(default = "default_rescan_ms")]
    rescan_ms: u64,
    #[serde(default = "default_batch")]
    batch: usize,
    #[serde(default = "default_max_bundle_bytes")]
    max_bundle_bytes: u64,
    #[serde(default)]
    allowed_kinds: Vec<String>,
    #[serde(default = "default_max_clock_skew_s")]
    max_clock_skew_s: u32,
}

fn default_rescan_ms() -> u64 {
    2000
}
fn default_batch() -> usize {
    256
}
fn default_settle_ms() -> u64 {
    2000
}
fn default_incomplete_timeout_s() -> u64 {
    600
}
fn default_max_clock_skew_s() -> u32 {
    // The format's default (`VerifyOptions::DEFAULT_MAX_CLOCK_SKEW_SECONDS`); fits in u32.
    u32::try_from(ow_bundle::VerifyOptions::DEFAULT_MAX_CLOCK_SKEW_SECONDS).unwrap_or(300)
}
fn default_max_bundle_bytes() -> u64 {
    4 << 30
}

impl FerryConfig {
    /// Reads, parses and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
            path: path.to_path_buf(),
            cause,
        })?;
        Self::from_toml_str(&text, path)
    }

    /// Parses and validates configuration text; `path` is used for messages and relative paths.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|err| ConfigError::Parse {
            path: path.to_path_buf(),
            message: err.to_string(),
        })?;
        let base = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let invalid = |setting: String, problem: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            setting,
            problem,
        };

        let data_dir = resolve(&raw.data_dir);
        if raw.log.checkpoint_every == 0 {
            return Err(invalid(
                "log.checkpoint_every".into(),
                "must be at least 1".into(),
            ));
        }
        let mut names = HashSet::new();
        let mut send = Vec::new();
        for (i, s) in raw.send.into_iter().enumerate() {
            let at = |field: &str| format!("send[{i}].{field}");
            if s.channel.from != raw.zone {
                return Err(invalid(
                    at("channel"),
                    format!(
                        "is {} but this configuration is for the {} zone; a zone only sends on \
                         channels that start from it",
                        s.channel, raw.zone
                    ),
                ));
            }
            if s.batch == 0 {
                return Err(invalid(at("batch"), "must be at least 1".into()));
            }
            let name = s.name.unwrap_or_else(|| format!("{}-tx", s.channel));
            check_name(&name).map_err(|problem| invalid(at("name"), problem))?;
            if !names.insert(name.clone()) {
                return Err(invalid(at("name"), format!("`{name}` is used twice")));
            }
            let outbox = resolve(&s.outbox);
            let gateway = resolve(&s.gateway);
            if outbox == gateway {
                return Err(invalid(at("gateway"), "must differ from the outbox".into()));
            }
            send.push(SendConfig {
                sent: s
                    .sent
                    .map(|p| resolve(&p))
                    .unwrap_or_else(|| data_dir.join("sent").join(&name)),
                rejected: s
                    .rejected
                    .map(|p| resolve(&p))
                    .unwrap_or_else(|| data_dir.join("rejected").join(&name)),
                name,
                channel: s.channel,
                outbox,
                gateway,
                marker: s.marker,
                marker_style: s.marker_style,
                rescan: Duration::from_millis(s.rescan_ms.max(10)),
                batch: s.batch,
            });
        }
        let mut receive = Vec::new();
        for (i, r) in raw.receive.into_iter().enumerate() {
            let at = |field: &str| format!("receive[{i}].{field}");
            if r.channel.to != raw.zone {
                return Err(invalid(
                    at("channel"),
                    format!(
                        "is {} but this configuration is for the {} zone; a zone only receives \
                         on channels that end in it",
                        r.channel, raw.zone
                    ),
                ));
            }
            if r.batch == 0 {
                return Err(invalid(at("batch"), "must be at least 1".into()));
            }
            let name = r.name.unwrap_or_else(|| format!("{}-rx", r.channel));
            check_name(&name).map_err(|problem| invalid(at("name"), problem))?;
            if !names.insert(name.clone()) {
                return Err(invalid(at("name"), format!("`{name}` is used twice")));
            }
            let gateway = resolve(&r.gateway);
            let inbox = resolve(&r.inbox);
            if gateway == inbox {
                return Err(invalid(
                    at("inbox"),
                    "must differ from the gateway folder".into(),
                ));
            }
            if r.incomplete_timeout_s * 1000 < r.settle_ms {
                return Err(invalid(
                    at("incomplete_timeout_s"),
                    "must be at least the settle time".into(),
                ));
            }
            receive.push(ReceiveConfig {
                quarantine: r
                    .quarantine
                    .map(|p| resolve(&p))
                    .unwrap_or_else(|| data_dir.join("quarantine").join(&name)),
                name,
                channel: r.channel,
                gateway,
                inbox,
                settle: Duration::from_millis(r.settle_ms),
                require_marker: r.require_marker,
                incomplete_timeout: Duration::from_secs(r.incomplete_timeout_s),
                rescan: Duration::from_millis(r.rescan_ms.max(10)),
                batch: r.batch,
                max_bundle_bytes: r.max_bundle_bytes,
                allowed_kinds: r.allowed_kinds,
                max_clock_skew: chrono::Duration::seconds(i64::from(r.max_clock_skew_s)),
            });
        }
        let media = crate::media::config::resolve_routes(
            raw.media, raw.zone, &data_dir, &resolve, &mut names, &send,
        )
        .map_err(|(setting, problem)| invalid(setting, problem))?;
        Ok(Self {
            media,
            oneway: OnewaySettings {
                heartbeat: seconds(raw.oneway.heartbeat_s),
                silence_alarm: seconds(raw.oneway.silence_alarm_s),
                confirm_within: seconds(raw.oneway.confirm_within_s),
            },
            zone: raw.zone,
            keys: KeysConfig {
                signing_key: resolve(&raw.keys.signing_key),
                encryption_key: resolve(&raw.keys.encryption_key),
                trust_file: resolve(&raw.keys.trust_file),
            },
            data_dir,
            log: LogSettings {
                checkpoint_every: raw.log.checkpoint_every,
            },
            send,
            receive,
        })
    }

    /// The state database file.
    pub fn state_db(&self) -> PathBuf {
        self.data_dir.join("ferry-state.db")
    }

    /// The ferry-log folder of one agent.
    pub fn log_dir(&self, agent: &str) -> PathBuf {
        self.data_dir.join("log").join(agent)
    }

    /// The ferry-log folder of the packer (bundles signed with `ow-ferry pack`).
    pub fn packer_log_dir(&self) -> PathBuf {
        self.log_dir(&format!("{}-pack", self.zone))
    }

    /// The sending agent for `channel`, if configured.
    pub fn sender_for(&self, channel: Channel) -> Option<&SendConfig> {
        self.send.iter().find(|s| s.channel == channel)
    }
}

pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` must be 1–64 characters of letters, digits, `-`, `_` or `.`, not starting \
             with `.` (it names a log folder)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
zone = "extranet"
data_dir = "data"
[keys]
signing_key = "keys/extranet.sign.secret"
encryption_key = "keys/extranet.enc.secret"
trust_file = "trust.toml"
[[send]]
channel = "extranet-to-internet"
outbox = "outbox/internet"
gateway = "/mnt/gw/to-internet"
marker = true
[[receive]]
channel = "internet-to-extranet"
gateway = "/mnt/gw/from-internet"
inbox = "inbox/internet"
settle_ms = 500
"#;

    #[test]
    fn resolves_relative_paths_against_the_file() {
        let config = FerryConfig::from_toml_str(GOOD, Path::new("/etc/ow/ferry.toml")).unwrap();
        assert_eq!(config.data_dir, Path::new("/etc/ow/data"));
        assert_eq!(config.send[0].gateway, Path::new("/mnt/gw/to-internet"));
        assert_eq!(config.send[0].name, "extranet-to-internet-tx");
        assert_eq!(
            config.receive[0].quarantine,
            Path::new("/etc/ow/data/quarantine/internet-to-extranet-rx")
        );
        assert_eq!(config.receive[0].settle, Duration::from_millis(500));
        // The format's clock skew, not a ferry-specific one.
        assert_eq!(
            config.receive[0].max_clock_skew,
            chrono::Duration::minutes(5)
        );
    }

    #[test]
    fn unknown_setting_is_named() {
        let text = GOOD.replace("marker = true", "markr = true");
        let err = FerryConfig::from_toml_str(&text, Path::new("f.toml")).unwrap_err();
        assert!(err.to_string().contains("markr"), "{err}");
    }

    #[test]
    fn sending_on_a_foreign_channel_is_refused() {
        let text = GOOD.replace(
            "channel = \"extranet-to-internet\"",
            "channel = \"internet-to-extranet\"",
        );
        let err = FerryConfig::from_toml_str(&text, Path::new("f.toml")).unwrap_err();
        assert!(err.to_string().contains("send[0].channel"), "{err}");
    }

    #[test]
    fn receiving_on_a_foreign_channel_is_refused() {
        let text = GOOD.replace(
            "channel = \"internet-to-extranet\"",
            "channel = \"extranet-to-intranet\"",
        );
        let err = FerryConfig::from_toml_str(&text, Path::new("f.toml")).unwrap_err();
        assert!(err.to_string().contains("receive[0].channel"), "{err}");
    }

    #[test]
    fn bad_zone_is_named() {
        let text = GOOD.replace("zone = \"extranet\"", "zone = \"moon\"");
        let err = FerryConfig::from_toml_str(&text, Path::new("f.toml")).unwrap_err();
        assert!(err.to_string().contains("zone"), "{err}");
    }
}
