//! Offline media (光盘摆渡): a channel's bundles written to a disc as a BagIt bag (RFC 8493) with a
//! media manifest signed by the sending zone, and read back on the other side through the same
//! verification and landing as the drop folder. `docs/offline-media.md` is the specification.
//!
//! * [`bag`]: the BagIt text files (bag-info, manifests, the ferry's contents list) and path checks.
//! * [`signed`]: the signed media manifest.
//! * [`config`]: the `[[media]]` routes of a zone's configuration.
//! * [`iso`]: ISO 9660 images of discs through xorriso.
//! * [`export`]: pending bundles of an outbox → one disc, or a set of discs with bundles larger
//!   than a disc split into parts.
//! * [`import`]: one disc → checks of every byte → the receiver's landing, exactly once; parts
//!   of split bundles are held until their set brings every part, then reassembled and landed.

pub mod bag;
pub mod config;
pub mod export;
pub mod import;
pub mod iso;
pub mod signed;

use std::fs::File;
use std::io::{self, Read, Write};

use sha2::Digest as _;

pub use config::{MediaOrder, MediaRoute};

use crate::AgentError;

/// Why a media operation did not complete.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The disc was refused as a whole; nothing of it was imported.
    #[error("disc refused [{code}]: {message}")]
    Refused {
        /// Refusal code (`incomplete`, `altered`, `foreign`, `replayed`, `path-trick`, …).
        code: &'static str,
        /// What was wrong and what to do.
        message: String,
    },
    /// The export cannot be made as asked (nothing pending, a bundle larger than the disc, a
    /// disc folder that is not empty, …); nothing was recorded.
    #[error("{0}")]
    Unfit(String),
    /// The ferry's state, log or files failed.
    #[error(transparent)]
    Agent(#[from] AgentError),
}

impl MediaError {
    pub(crate) fn refused(code: &'static str, message: impl Into<String>) -> Self {
        Self::Refused {
            code,
            message: message.into(),
        }
    }
}

impl From<crate::state::StateError> for MediaError {
    fn from(err: crate::state::StateError) -> Self {
        Self::Agent(err.into())
    }
}

impl From<ow_ferrylog::Error> for MediaError {
    fn from(err: ow_ferrylog::Error) -> Self {
        Self::Agent(err.into())
    }
}

impl From<sqlx::Error> for MediaError {
    fn from(err: sqlx::Error) -> Self {
        Self::Agent(crate::state::StateError::from(err).into())
    }
}

/// Parses a disc capacity: bytes, or a number with `K`, `M`, `G` or `T` (powers of 1000, as disc
/// makers count: `4.7G` is a single-layer DVD, `25G` a BD-R, `100G` a BD-R XL).
pub fn parse_capacity(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let bad = || {
        format!(
            "{text:?} is not a capacity; write bytes or a number with K, M, G or T (powers of \
             1000), e.g. 4.7G, 25G, 100G"
        )
    };
    let (number, unit) = match text.char_indices().last() {
        Some((at, c)) if c.is_ascii_alphabetic() => (&text[..at], c.to_ascii_uppercase()),
        _ => (text, 'B'),
    };
    let scale: u64 = match unit {
        'B' => 1,
        'K' => 1_000,
        'M' => 1_000_000,
        'G' => 1_000_000_000,
        'T' => 1_000_000_000_000,
        _ => return Err(bad()),
    };
    // Decimal fractions are parsed exactly (no floating point): `4.7` → 47 tenths.
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) || fraction.len() > 9 {
        return Err(bad());
    }
    let digits: u128 = format!("{whole}{fraction}").parse().map_err(|_| bad())?;
    let divisor = 10u128.pow(u32::try_from(fraction.len()).map_err(|_| bad())?);
    let bytes = digits * u128::from(scale) / divisor;
    let bytes = u64::try_from(bytes).map_err(|_| bad())?;
    if bytes < 1_000_000 {
        return Err(format!(
            "{text:?} is less than 1 MB; no disc is that small (did you forget the unit?)"
        ));
    }
    Ok(bytes)
}

/// The three payload digests of one file, computed in one pass.
pub(crate) struct Digests {
    sha256: sha2::Sha256,
    sha512: sha2::Sha512,
    blake3: blake3::Hasher,
}

/// Hex digests: SHA-256, SHA-512, BLAKE3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hex {
    pub sha256: String,
    pub sha512: String,
    pub blake3: String,
}

impl Digests {
    pub(crate) fn new() -> Self {
        Self {
            sha256: sha2::Sha256::new(),
            sha512: sha2::Sha512::new(),
            blake3: blake3::Hasher::new(),
        }
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.sha256.update(bytes);
        self.sha512.update(bytes);
        self.blake3.update(bytes);
    }

    pub(crate) fn finish(self) -> Hex {
        Hex {
            sha256: hex::encode(self.sha256.finalize()),
            sha512: hex::encode(self.sha512.finalize()),
            blake3: self.blake3.finalize().to_hex().to_string(),
        }
    }
}

/// SHA-256 (hex) of some bytes.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Copies `source` into `out` through a 1 MiB buffer (memory stays bounded whatever the size),
/// hashing every byte; returns the bytes copied and their digests. Reads at most `limit + 1`
/// bytes, so a file that grew is seen as longer than expected without being read to its end.
pub(crate) fn copy_hashing(
    source: &mut impl Read,
    out: &mut File,
    limit: u64,
) -> io::Result<(u64, Hex)> {
    let mut digests = Digests::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut limited = source.take(limit.saturating_add(1));
    let mut total = 0u64;
    loop {
        let n = match limited.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        digests.update(&buffer[..n]);
        out.write_all(&buffer[..n])?;
        total += n as u64;
    }
    Ok((total, digests.finish()))
}

/// The route of `config` that carries `channel` in the wanted direction (the only such route
/// when `channel` is absent).
pub fn find_route(
    config: &crate::config::FerryConfig,
    channel: Option<ow_bundle::Channel>,
    exporting: bool,
) -> Result<&MediaRoute, MediaError> {
    let candidates: Vec<&MediaRoute> = config
        .media
        .iter()
        .filter(|r| r.exports(config.zone) == exporting)
        .filter(|r| channel.is_none_or(|c| r.channel == c))
        .collect();
    let what = if exporting { "exports" } else { "imports" };
    match candidates.as_slice() {
        [one] => Ok(one),
        [] => Err(MediaError::Unfit(format!(
            "the {} zone's configuration has no [[media]] route that {what}{}; add one",
            config.zone,
            channel.map(|c| format!(" {c}")).unwrap_or_default()
        ))),
        _ => Err(MediaError::Unfit(format!(
            "several [[media]] routes {what}; name one with --channel"
        ))),
    }
}

/// `ow-ferry media export`: loads the zone's key and state and writes one disc.
pub async fn run_export(
    config: &crate::config::FerryConfig,
    channel: Option<ow_bundle::Channel>,
    disc: &std::path::Path,
    capacity: Option<u64>,
    set: bool,
    iso: Option<&std::path::Path>,
) -> Result<export::ExportReport, MediaError> {
    let route = find_route(config, channel, true)?;
    if iso.is_some() && !iso::available() {
        return Err(MediaError::Unfit(iso::GET_XORRISO.to_owned()));
    }
    let key = ow_keys::load_signing_key(&config.keys.signing_key).map_err(AgentError::from)?;
    std::fs::create_dir_all(&config.data_dir).map_err(|e| AgentError::io(&config.data_dir, e))?;
    let state = crate::state::FerryState::open(&config.state_db()).await?;
    let mut log = crate::audit::AgentLog::open(
        &config.log_dir(&route.name),
        &route.name,
        &route.channel.to_string(),
        config.zone,
        key.clone(),
        config.log.checkpoint_every,
    )?;
    let result = export::export(
        config.zone,
        route,
        export::Target {
            folder: disc,
            set,
            journal: &config
                .data_dir
                .join("media-exports")
                .join(format!("{}.json", route.name)),
        },
        capacity,
        &key,
        &state,
        &mut log,
    )
    .await;
    log.close()?;
    state.close().await;
    let mut report = result?;
    // After the discs are recorded: an image that fails leaves the journal, so the next export
    // names the recorded discs to carry.
    if let Some(file) = iso {
        for disc in &report.discs {
            let image = iso::image_path(file, disc.disc, report.disc_count);
            let volume = iso::volume_id(&report.set_id, disc.disc, report.disc_count);
            iso::write_image(&disc.folder, &image, &volume)?;
            report.images.push(image);
        }
    }
    Ok(report)
}

/// `ow-ferry media import`: loads the zone's keys, trust and state and imports one disc.
pub async fn run_import(
    config: &crate::config::FerryConfig,
    channel: Option<ow_bundle::Channel>,
    disc: &std::path::Path,
) -> Result<import::ImportReport, MediaError> {
    let route = find_route(config, channel, false)?;
    let key = ow_keys::load_signing_key(&config.keys.signing_key).map_err(AgentError::from)?;
    let trust = std::sync::Arc::new(
        ow_keys::load_trust(&config.keys.trust_file).map_err(AgentError::from)?,
    );
    let decryption = std::sync::Arc::new(
        ow_keys::load_encryption_secret(&config.keys.encryption_key).map_err(AgentError::from)?,
    );
    std::fs::create_dir_all(&config.data_dir).map_err(|e| AgentError::io(&config.data_dir, e))?;
    let state = crate::state::FerryState::open(&config.state_db()).await?;
    let log = crate::audit::AgentLog::open(
        &config.log_dir(&route.name),
        &route.name,
        &route.channel.to_string(),
        config.zone,
        key,
        config.log.checkpoint_every,
    )?;
    let staging_root = config.data_dir.join("media-staging");
    // An ISO image is extracted to a private folder first, then imported like a mounted disc.
    let image = std::fs::symlink_metadata(disc).is_ok_and(|m| m.is_file());
    let extracted = if image {
        match iso::extract_image(disc, &staging_root.join(&route.name)) {
            Ok(extracted) => Some(extracted),
            Err(MediaError::Refused { code, message }) => {
                state.close().await;
                return Err(import::refuse(route, disc, code, message, log)?);
            }
            Err(err) => {
                state.close().await;
                return Err(err);
            }
        }
    } else {
        None
    };
    let disc = extracted.as_ref().map_or(disc, |e| e.disc.as_path());
    let ctx = import::ImportContext {
        zone: config.zone,
        trust,
        decryption,
        staging_root: &staging_root,
        state: &state,
    };
    let result = import::import(&ctx, route, disc, log).await;
    state.close().await;
    drop(extracted);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacities_parse_in_decimal_units() {
        assert_eq!(parse_capacity("4.7G").unwrap(), 4_700_000_000);
        assert_eq!(parse_capacity("25G").unwrap(), 25_000_000_000);
        assert_eq!(parse_capacity("100g").unwrap(), 100_000_000_000);
        assert_eq!(parse_capacity("700M").unwrap(), 700_000_000);
        assert_eq!(parse_capacity("2000000").unwrap(), 2_000_000);
        for bad in [
            "",
            "G",
            "4.7X",
            "-1G",
            "1.2.3G",
            "4,7G",
            "12",
            "0.0001M",
            "99999999999T",
        ] {
            assert!(parse_capacity(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn digests_match_the_reference_vectors() {
        let mut d = Digests::new();
        d.update(b"abc");
        let hex = d.finish();
        assert_eq!(
            hex.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(hex.sha512.starts_with("ddaf35a193617aba"));
        assert_eq!(hex.blake3, blake3::hash(b"abc").to_hex().to_string());
    }
}
