//! `[[media]]` routes in a zone's ferry configuration: which channel a zone carries on offline
//! media, from which outbox it exports, into which inbox it imports, and the import policy.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use ow_bundle::{Channel, Zone};
use serde::Deserialize;

use crate::config::SendConfig;

/// How strictly an importing route keeps a channel's sequence order across discs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MediaOrder {
    /// Sets may land in any order; a sequence gap is logged (`gap`) and filled when its disc
    /// comes (the chain is checked in both directions).
    #[default]
    Any,
    /// A set lands only right after what the channel already landed: a set whose first
    /// sequence leaves a gap is refused (`out-of-order`), naming the missing sequences. The
    /// discs of one set may still arrive in any order. Only for channels that travel on media
    /// alone.
    Strict,
}

/// One offline-media route of this zone, validated.
#[derive(Debug, Clone)]
pub struct MediaRoute {
    /// Route name: names its ferry log (default `<channel>-media-tx` or `<channel>-media-rx`).
    pub name: String,
    /// The channel carried.
    pub channel: Channel,
    /// Export routes: the outbox whose pending bundles are written to media.
    pub outbox: Option<PathBuf>,
    /// Export routes: where exported bundles go once their disc is recorded.
    pub sent: PathBuf,
    /// Export routes: where outbox files that are not bundles of this route are set aside.
    pub rejected: PathBuf,
    /// Import routes: the inbox bundles land in (the channel's gateway inbox, if it has one).
    pub inbox: Option<PathBuf>,
    /// Import routes: a `<disc id>.reason` file per refused disc.
    pub refused: PathBuf,
    /// Import routes: largest bundle accepted (also caps a reassembled bundle).
    pub max_bundle_bytes: u64,
    /// Import routes: kinds accepted; empty means any.
    pub allowed_kinds: Vec<String>,
    /// Import routes: how far in the future a bundle's creation time may be.
    pub max_clock_skew: chrono::Duration,
    /// Import routes: sequence order across sets.
    pub order: MediaOrder,
    /// Export routes: the default capacity of one disc in bytes (`--capacity` overrides).
    pub capacity: Option<u64>,
}

impl MediaRoute {
    /// True when this zone writes the route's media (the channel starts here).
    pub fn exports(&self, zone: Zone) -> bool {
        self.channel.from == zone
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMedia {
    name: Option<String>,
    channel: Channel,
    outbox: Option<PathBuf>,
    sent: Option<PathBuf>,
    rejected: Option<PathBuf>,
    inbox: Option<PathBuf>,
    refused: Option<PathBuf>,
    #[serde(default = "default_max_bundle_bytes")]
    max_bundle_bytes: u64,
    #[serde(default)]
    allowed_kinds: Vec<String>,
    #[serde(default = "default_max_clock_skew_s")]
    max_clock_skew_s: u32,
    #[serde(default)]
    order: MediaOrder,
    capacity: Option<String>,
}

fn default_max_bundle_bytes() -> u64 {
    4 << 30
}

fn default_max_clock_skew_s() -> u32 {
    u32::try_from(ow_bundle::VerifyOptions::DEFAULT_MAX_CLOCK_SKEW_SECONDS).unwrap_or(300)
}

/// Validates the `[[media]]` entries; an error is `(setting, problem)`.
pub(crate) fn resolve_routes(
    raw: Vec<RawMedia>,
    zone: Zone,
    data_dir: &Path,
    resolve: &dyn Fn(&Path) -> PathBuf,
    names: &mut HashSet<String>,
    send: &[SendConfig],
) -> Result<Vec<MediaRoute>, (String, String)> {
    let mut routes = Vec::new();
    for (i, m) in raw.into_iter().enumerate() {
        let at = |field: &str| format!("media[{i}].{field}");
        let exports = m.channel.from == zone;
        if !exports && m.channel.to != zone {
            return Err((
                at("channel"),
                format!(
                    "is {} but this configuration is for the {zone} zone; a media route carries \
                     a channel that starts or ends in its zone",
                    m.channel
                ),
            ));
        }
        let name = m.name.unwrap_or_else(|| {
            format!("{}-media-{}", m.channel, if exports { "tx" } else { "rx" })
        });
        crate::config::check_name(&name).map_err(|problem| (at("name"), problem))?;
        if !names.insert(name.clone()) {
            return Err((at("name"), format!("`{name}` is used twice")));
        }
        let outbox = m.outbox.as_deref().map(resolve);
        let inbox = m.inbox.as_deref().map(resolve);
        if exports {
            let Some(outbox) = &outbox else {
                return Err((
                    at("outbox"),
                    "is required: the route exports, so it needs the outbox its bundles wait in"
                        .into(),
                ));
            };
            if send.iter().any(|s| &s.outbox == outbox) {
                return Err((
                    at("outbox"),
                    "is also a [[send]] agent's outbox; a sending agent would carry its bundles \
                     to the gateway before they reach a disc. Give the media route an outbox of \
                     its own"
                        .into(),
                ));
            }
        } else if inbox.is_none() {
            return Err((
                at("inbox"),
                "is required: the route imports, so it needs the inbox bundles land in".into(),
            ));
        }
        let capacity = m
            .capacity
            .as_deref()
            .map(super::parse_capacity)
            .transpose()
            .map_err(|problem| (at("capacity"), problem))?;
        routes.push(MediaRoute {
            sent: m
                .sent
                .as_deref()
                .map(resolve)
                .unwrap_or_else(|| data_dir.join("sent").join(&name)),
            rejected: m
                .rejected
                .as_deref()
                .map(resolve)
                .unwrap_or_else(|| data_dir.join("rejected").join(&name)),
            refused: m
                .refused
                .as_deref()
                .map(resolve)
                .unwrap_or_else(|| data_dir.join("refused-media").join(&name)),
            name,
            channel: m.channel,
            outbox,
            inbox,
            max_bundle_bytes: m.max_bundle_bytes,
            allowed_kinds: m.allowed_kinds,
            max_clock_skew: chrono::Duration::seconds(i64::from(m.max_clock_skew_s)),
            order: m.order,
            capacity,
        });
    }
    Ok(routes)
}
