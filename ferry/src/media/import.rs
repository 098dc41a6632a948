//! `ow-ferry media import`: one disc → every byte checked → the receiver's landing, exactly once.
//!
//! 1. The disc is walked without following anything: a symlink, a device, a name that is not
//!    UTF-8 or a path that could leave the bag refuses the disc (`path-trick`).
//! 2. The signed media manifest is opened with the trust file's keys for the route's channel
//!    (`foreign` for an unknown key or another channel, `altered` for a bad signature); a disc
//!    already imported is `replayed`.
//! 3. The tag manifest's digest must be the signed one, every tag file must match the tag
//!    manifest, and the three payload manifests, the contents list and `Payload-Oxum` must agree
//!    with each other and with the files on the disc (`incomplete` for a missing file, `altered`
//!    for anything else).
//! 4. Each payload file is opened once and copied into a private staging folder while its
//!    SHA-256, SHA-512 and BLAKE3 are computed; one digest off refuses the whole disc. Each
//!    staged bundle is then verified as the receiving agent verifies (signature, decryption,
//!    item hashes, channel, kinds, clock skew) and looked up among the bundles already landed
//!    (`replayed`). Until here nothing has landed.
//! 5. The disc is recorded as `staged`, and the staging folder is handed to the channel's
//!    [`crate::receiver::Receiver`] as its gateway folder, with a marker beside each bundle: the
//!    bundles land through exactly the drop folder's steps (private copy, verification, replay
//!    and chain checks, staging, log, rows, rename). Then the disc is recorded as `imported`.
//!
//! A crash after step 5 began leaves the disc `staged`: importing it again skips the bundles that
//! already landed from it (same id and digest) and lands the rest.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use ow_bundle::{EncryptionSecret, TrustStore, Zone};
use ow_ferrylog::Event;
use tracing::{info, warn};

use super::bag::{self, BagInfo, Content, ManifestProblem};
use super::signed::{MAX_MEDIA_MANIFEST_BYTES, ManifestError, MediaManifest};
use super::{MediaError, MediaRoute, copy_hashing, sha256_hex};
use crate::AgentError;
use crate::audit::AgentLog;
use crate::config::ReceiveConfig;
use crate::dropfolder::{self, MARKER_SUFFIX};
use crate::intake::{self, BoundedReadError, IntakeError};
use crate::policy::ChannelPolicy;
use crate::receiver::Receiver;
use crate::state::FerryState;

/// Largest tag file read (a manifest of 100 000 bundles is about 15 MB).
const MAX_TAG_FILE_BYTES: u64 = 64 << 20;
/// Most entries walked on one disc.
const MAX_ENTRIES: usize = 200_000;

/// What an import did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ImportReport {
    /// The disc's id.
    pub disc_id: String,
    /// The set's id.
    pub set_id: String,
    /// Bundles on the disc.
    pub bundles: usize,
    /// Bundles landed by this run.
    pub landed: usize,
    /// Bundles the receiver refused at landing (quarantined in the route's refused folder).
    pub refused: usize,
    /// Bundles that had already landed from this disc in an earlier, interrupted run.
    pub already_landed: usize,
    /// Bundles left in staging (held back by the receiver; run the import again).
    pub left: usize,
    /// This disc's place in its set …
    pub disc: u32,
    /// … of this many discs.
    pub disc_count: u32,
    /// Parts of split bundles on this disc (held until their bundle is whole).
    pub parts: usize,
    /// Split bundles reassembled from held parts and handed to landing by this run.
    pub assembled: usize,
    /// Split bundles of the set still waiting for parts on discs not yet imported.
    pub split_waiting: usize,
    /// Discs of the set not yet imported.
    pub discs_missing: Vec<u32>,
    /// The set's state in words, naming the discs still to come.
    pub set_status: String,
}

/// What an importer needs besides the route.
pub struct ImportContext<'a> {
    /// This zone.
    pub zone: Zone,
    /// The zone's trust file.
    pub trust: Arc<TrustStore>,
    /// The zone's decryption secret.
    pub decryption: Arc<EncryptionSecret>,
    /// Staging folders live under here (same file system as the inbox, preferably).
    pub staging_root: &'a Path,
    /// The ferry state.
    pub state: &'a FerryState,
}

/// Imports the disc folder `disc` on `route`. A refused disc is recorded in the ferry log
/// (`media-refused`) and gets `<disc id>.reason` in the route's refused folder.
pub async fn import(
    ctx: &ImportContext<'_>,
    route: &MediaRoute,
    disc: &Path,
    log: AgentLog,
) -> Result<ImportReport, MediaError> {
    let Some(inbox) = route.inbox.clone() else {
        return Err(MediaError::Unfit(format!(
            "media route {} exports; it has no inbox to import into",
            route.name
        )));
    };
    dropfolder::ensure_dir(&route.refused).map_err(|e| AgentError::io(&route.refused, e))?;
    let checked = match check_and_stage(ctx, route, disc).await {
        Ok(checked) => checked,
        Err(MediaError::Refused { code, message }) => {
            return Err(refuse(route, disc, code, message, log)?);
        }
        Err(err) => return Err(err),
    };
    land(ctx, route, &inbox, checked, log).await
}

/// Records a refused disc: `<disc>.disc.reason` in the route's refused folder and a
/// `media-refused` entry in its ferry log. Returns the refusal, for the caller to report.
pub(crate) fn refuse(
    route: &MediaRoute,
    disc: &Path,
    code: &'static str,
    message: String,
    mut log: AgentLog,
) -> Result<MediaError, MediaError> {
    dropfolder::ensure_dir(&route.refused).map_err(|e| AgentError::io(&route.refused, e))?;
    let disc_name = disc_label(disc);
    let reason = serde_json::json!({
        "code": code,
        "message": message,
        "route": route.name,
        "disc": disc_name,
        "refused_at": Utc::now().to_rfc3339(),
    });
    let target = dropfolder::unused_path(&route.refused, &format!("{disc_name}.disc"));
    dropfolder::write_reason(&target, &reason).map_err(|e| AgentError::io(&target, e))?;
    log.agent_event(
        Event::MediaRefused,
        Some(format!("{code}: disc {disc_name}: {message}")),
    )?;
    log.close()?;
    warn!(route = %route.name, code, "disc refused: {message}");
    Ok(MediaError::Refused { code, message })
}

/// The disc's folder name, for reasons and the log (never a citizen's file name: disc folders are
/// named by operators or by the disc id).
fn disc_label(disc: &Path) -> String {
    disc.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "disc".to_owned())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect()
}

struct Checked {
    manifest: MediaManifest,
    staging: PathBuf,
    /// Canonical file names of the staged bundles still to land.
    staged: Vec<String>,
    /// Parts of split bundles staged from this disc.
    parts: Vec<HeldPart>,
    bundles: usize,
    already_landed: usize,
}

async fn check_and_stage(
    ctx: &ImportContext<'_>,
    route: &MediaRoute,
    disc: &Path,
) -> Result<Checked, MediaError> {
    let files = walk(disc)?;
    let read_tag = |name: &str| -> Result<String, MediaError> {
        if !files.contains_key(name) {
            return Err(MediaError::refused(
                "incomplete",
                format!(
                    "the disc has no {name}; it was not finished or not copied whole — ask the sender for a new disc"
                ),
            ));
        }
        let bytes =
            intake::read_bounded(&disc.join(name), MAX_TAG_FILE_BYTES).map_err(|e| match e {
                BoundedReadError::Unfit(u) => {
                    MediaError::refused("path-trick", format!("{name}: {}", u.message))
                }
                BoundedReadError::TooLarge { len, cap } => {
                    MediaError::refused("altered", format!("{name} is {len} bytes, over {cap}"))
                }
                BoundedReadError::Gone => {
                    MediaError::refused("incomplete", format!("{name} disappeared while read"))
                }
                BoundedReadError::Io(err) => MediaError::refused(
                    "unreadable",
                    format!("cannot read {name}: {err}; clean the disc or try another drive"),
                ),
            })?;
        String::from_utf8(bytes)
            .map_err(|_| MediaError::refused("altered", format!("{name} is not UTF-8 text")))
    };

    // The signature first: nothing else on a disc is trusted before it.
    let signed = read_tag(bag::MEDIA_MANIFEST_NAME)?;
    if signed.len() as u64 > MAX_MEDIA_MANIFEST_BYTES {
        return Err(MediaError::refused(
            "altered",
            "the media manifest is too large",
        ));
    }
    let (manifest, _key) = MediaManifest::open(&signed, &ctx.trust).map_err(|e| match e {
        ManifestError::UnknownKey(m) => MediaError::refused(
            "foreign",
            format!("{m}; the disc does not come from a zone this one trusts — hand it to the security officer"),
        ),
        ManifestError::BadSignature => MediaError::refused(
            "altered",
            "the media manifest's signature does not verify: the disc was changed after it was made",
        ),
        ManifestError::Malformed(m) => MediaError::refused("altered", m),
    })?;
    if manifest.channel != route.channel {
        return Err(MediaError::refused(
            "foreign",
            format!(
                "the disc carries channel {} but this import route receives {}; import it on \
                 the route (or in the zone) it was made for",
                manifest.channel, route.channel
            ),
        ));
    }
    let prior: Option<String> = sqlx::query_scalar(
        "SELECT status FROM media_discs WHERE direction = 'import' AND disc_id = ?",
    )
    .bind(&manifest.disc_id)
    .fetch_optional(ctx.state.pool())
    .await?;
    if prior.as_deref() == Some("imported") {
        return Err(MediaError::refused(
            "replayed",
            format!(
                "disc {} was already imported; nothing on it is imported twice. Put it aside",
                manifest.disc_id
            ),
        ));
    }
    let resuming = prior.is_some();
    check_set(ctx, &manifest).await?;
    check_order(ctx, route, &manifest).await?;

    // The tag manifest is the signed one, and vouches for every other tag file.
    let tagmanifest = read_tag(bag::TAGMANIFEST_NAME)?;
    if sha256_hex(tagmanifest.as_bytes()) != manifest.tagmanifest_sha256 {
        return Err(MediaError::refused(
            "altered",
            "the tag manifest is not the one the media manifest signs: the disc was changed",
        ));
    }
    let tag_lines = bag::parse_manifest(bag::TAGMANIFEST_NAME, &tagmanifest, 64, true)
        .map_err(manifest_problem)?;
    let tag_digests: BTreeMap<String, String> =
        tag_lines.into_iter().map(|(d, p)| (p, d)).collect();
    let mut tags = BTreeMap::new();
    for name in bag::TAG_FILES {
        let Some(expected) = tag_digests.get(name) else {
            return Err(MediaError::refused(
                "altered",
                format!("the tag manifest does not list {name}"),
            ));
        };
        let text = read_tag(name)?;
        if &sha256_hex(text.as_bytes()) != expected {
            return Err(MediaError::refused(
                "altered",
                format!("{name} does not match the tag manifest: the disc was changed"),
            ));
        }
        tags.insert(name, text);
    }
    let tag = |name: &str| tags.get(name).map(String::as_str).unwrap_or_default();
    if tag(bag::BAGIT_NAME) != bag::BAGIT_TXT {
        return Err(MediaError::refused(
            "altered",
            "bagit.txt is not BagIt 1.0, UTF-8",
        ));
    }
    let info =
        BagInfo::parse(tag(bag::BAG_INFO_NAME)).map_err(|m| MediaError::refused("altered", m))?;
    if info.disc_id != manifest.disc_id
        || info.set_id != manifest.set_id
        || info.channel != manifest.channel.to_string()
        || info.payload_oxum != manifest.payload_oxum
        || (info.disc_index, info.disc_count) != (manifest.disc_index, manifest.disc_count)
        || info.sequences != manifest.sequences
    {
        return Err(MediaError::refused(
            "altered",
            "bag-info.txt disagrees with the signed media manifest",
        ));
    }
    let sha256 = payload_manifest(tag(bag::MANIFEST_SHA256), bag::MANIFEST_SHA256, 64)?;
    let sha512 = payload_manifest(tag(bag::MANIFEST_SHA512), bag::MANIFEST_SHA512, 128)?;
    let blake3 = payload_manifest(tag(bag::MANIFEST_BLAKE3), bag::MANIFEST_BLAKE3, 64)?;
    let contents = bag::parse_contents(tag(bag::CONTENTS_NAME))
        .map_err(|m| MediaError::refused("altered", m))?;
    let listed: BTreeSet<&String> = sha256.keys().collect();
    let content_paths: BTreeSet<&String> = contents
        .iter()
        .map(|c| match c {
            Content::Bundle { path, .. } | Content::Part { path, .. } => path,
        })
        .collect();
    if listed != sha512.keys().collect()
        || listed != blake3.keys().collect()
        || listed != content_paths
    {
        return Err(MediaError::refused(
            "altered",
            "the payload manifests and the contents list do not name the same files",
        ));
    }
    let parts_listed = contents
        .iter()
        .filter(|c| matches!(c, Content::Part { .. }))
        .count() as u64;
    if contents.len() != content_paths.len()
        || contents.len() as u64 - parts_listed != manifest.bundles
        || parts_listed != manifest.parts
    {
        return Err(MediaError::refused(
            "altered",
            "the contents list repeats a file or disagrees with the signed bundle and part counts",
        ));
    }
    if contents.iter().any(|c| {
        c.sequence() < manifest.sequences.0
            || c.sequence() > manifest.sequences.1
            || c.sequence() < manifest.set_sequences.0
            || c.sequence() > manifest.set_sequences.1
    }) {
        return Err(MediaError::refused(
            "altered",
            "a file on the disc lies outside the signed sequence ranges",
        ));
    }
    let on_disc: BTreeSet<&String> = files.keys().filter(|p| p.starts_with("data/")).collect();
    if let Some(missing) = listed.difference(&on_disc).next() {
        return Err(MediaError::refused(
            "incomplete",
            format!(
                "{missing} is listed but not on the disc ({} of {} payload files missing); ask \
                 the sender for a new disc",
                listed.difference(&on_disc).count(),
                listed.len()
            ),
        ));
    }
    if let Some(extra) = on_disc.difference(&listed).next() {
        return Err(MediaError::refused(
            "altered",
            format!("{extra} is on the disc but in no manifest: something was added"),
        ));
    }
    let total: u64 = contents.iter().map(Content::bytes).sum();
    if bag::payload_oxum(total, contents.len()) != manifest.payload_oxum {
        return Err(MediaError::refused(
            "altered",
            "Payload-Oxum does not match the contents",
        ));
    }

    // Copy every payload file once into staging, hashing as it goes.
    let staging = ctx.staging_root.join(&route.name).join(&manifest.disc_id);
    let parts_staging = parts_staging(&staging);
    let set_dir = set_folder(ctx, route, &manifest.set_id);
    for dir in [&staging, &parts_staging] {
        if fs::symlink_metadata(dir).is_ok() {
            fs::remove_dir_all(dir).map_err(|e| AgentError::io(dir, e))?;
        }
        fs::create_dir_all(dir).map_err(|e| AgentError::io(dir, e))?;
    }
    let result = stage_all(
        ctx,
        route,
        disc,
        &files,
        &contents,
        [&sha256, &sha512, &blake3],
        &staging,
        &set_dir,
        resuming,
    )
    .await;
    let staged = match result {
        Ok(staged) => staged,
        Err(err) => {
            let _ = fs::remove_dir_all(&staging);
            let _ = fs::remove_dir_all(&parts_staging);
            return Err(err);
        }
    };
    Ok(Checked {
        bundles: contents.len() - staged.parts_on_disc,
        manifest,
        staging,
        staged: staged.names,
        parts: staged.parts,
        already_landed: staged.already,
    })
}

/// Where a disc's parts wait while its checks run.
fn parts_staging(staging: &Path) -> PathBuf {
    PathBuf::from(format!("{}.parts", staging.display()))
}

/// Where the parts of a set's split bundles are held until every part has come.
fn set_folder(ctx: &ImportContext<'_>, route: &MediaRoute, set_id: &str) -> PathBuf {
    ctx.staging_root
        .join(&route.name)
        .join(format!("set-{set_id}"))
}

/// A disc must agree with the discs of its set imported before: the same count and channel, and
/// its place not taken by another disc.
async fn check_set(ctx: &ImportContext<'_>, manifest: &MediaManifest) -> Result<(), MediaError> {
    let rows: Vec<(String, i64, i64, String)> = sqlx::query_as(
        "SELECT disc_id, disc_index, disc_count, channel FROM media_discs \
         WHERE direction = 'import' AND set_id = ?",
    )
    .bind(&manifest.set_id)
    .fetch_all(ctx.state.pool())
    .await?;
    for (disc_id, index, count, channel) in rows {
        if disc_id == manifest.disc_id {
            continue;
        }
        if count != i64::from(manifest.disc_count) || channel != manifest.channel.to_string() {
            return Err(MediaError::refused(
                "altered",
                format!(
                    "the disc says set {} has {} discs on {}, but disc {disc_id} of the same set \
                     said {count} on {channel}; hand both discs to the security officer",
                    manifest.set_id, manifest.disc_count, manifest.channel
                ),
            ));
        }
        if index == i64::from(manifest.disc_index) {
            return Err(MediaError::refused(
                "replayed",
                format!(
                    "disc {} of {} of set {} was already imported (as disc {disc_id}); put this \
                     one aside",
                    manifest.disc_index, manifest.disc_count, manifest.set_id
                ),
            ));
        }
    }
    Ok(())
}

/// A route that keeps strict order takes a set only when every sequence before the set's first
/// has landed; otherwise the disc is refused (`out-of-order`), naming what is missing. The discs
/// of one set share its first sequence, so they may still come in any order.
async fn check_order(
    ctx: &ImportContext<'_>,
    route: &MediaRoute,
    manifest: &MediaManifest,
) -> Result<(), MediaError> {
    if route.order != super::MediaOrder::Strict {
        return Ok(());
    }
    let channel = route.channel.to_string();
    let first = manifest.set_sequences.0;
    let highest = ctx.state.highest_landed(&channel).await?;
    let mut missing: Vec<(u64, u64)> = ctx
        .state
        .missing_ranges(&channel)
        .await?
        .into_iter()
        .filter(|(from, _)| *from < first)
        .map(|(from, to)| (from, to.min(first - 1)))
        .collect();
    if first > highest.saturating_add(1) {
        missing.push((highest + 1, first - 1));
    }
    if missing.is_empty() {
        return Ok(());
    }
    let named: Vec<String> = missing
        .iter()
        .take(20)
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}–{b}")
            }
        })
        .collect();
    Err(MediaError::refused(
        "out-of-order",
        format!(
            "set {} begins at sequence {first}, but sequence(s) {}{} of {channel} have not \
             landed; this route keeps strict order — import the discs that carry them first, \
             then this one again",
            manifest.set_id,
            named.join(", "),
            if missing.len() > 20 { ", …" } else { "" }
        ),
    ))
}

/// One held part of a split bundle: the `part` line of the disc it came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct HeldPart {
    part_name: String,
    bundle_id: String,
    sequence: u64,
    index: u32,
    count: u32,
    offset: u64,
    bytes: u64,
    bundle_bytes: u64,
    bundle_blake3: String,
    file_name: String,
}

impl HeldPart {
    /// What every part of one bundle must agree on.
    fn whole(&self) -> (u64, u32, u64, &str, &str) {
        (
            self.sequence,
            self.count,
            self.bundle_bytes,
            &self.bundle_blake3,
            &self.file_name,
        )
    }
}

/// A held part's record (`<part file name>.json`) beside its bytes.
const HELD_SUFFIX: &str = ".json";

/// The parts held for a set, by bundle id. A part is moved in before its record, so a record
/// names a part whose bytes are there.
fn held_parts(set_dir: &Path) -> Result<BTreeMap<String, Vec<HeldPart>>, MediaError> {
    let mut held: BTreeMap<String, Vec<HeldPart>> = BTreeMap::new();
    let entries = match fs::read_dir(set_dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(held),
        Err(err) => return Err(AgentError::io(set_dir, err).into()),
    };
    for entry in entries {
        let entry = entry.map_err(|e| AgentError::io(set_dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(HELD_SUFFIX) {
            continue;
        }
        let path = entry.path();
        let bytes = fs::read(&path).map_err(|e| AgentError::io(&path, e))?;
        let part: HeldPart = serde_json::from_slice(&bytes).map_err(|e| {
            AgentError::io(
                &path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })?;
        if set_dir.join(&part.part_name).is_file() {
            held.entry(part.bundle_id.clone()).or_default().push(part);
        }
    }
    Ok(held)
}

/// Checks a `part` line: its path and file names are the ones the format gives, its numbers are
/// consistent, and it agrees with the parts of the same bundle held from other discs.
fn check_part(
    route: &MediaRoute,
    content: &Content,
    held: &BTreeMap<String, Vec<HeldPart>>,
) -> Result<HeldPart, MediaError> {
    let Content::Part {
        path,
        bytes,
        bundle_id,
        sequence,
        index,
        count,
        offset,
        bundle_bytes,
        bundle_blake3,
        file_name,
    } = content
    else {
        return Err(MediaError::refused("altered", "not a part"));
    };
    let expected_name = format!(
        "{}.{sequence:020}.{bundle_id}{}",
        route.channel,
        dropfolder::BUNDLE_SUFFIX
    );
    let part_name = bag::part_file_name(file_name, *index, *count);
    let id_ok = !bundle_id.is_empty()
        && bundle_id.len() <= 64
        && bundle_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let problem = if !id_ok || *file_name != expected_name {
        Some("does not name a bundle of this channel".to_owned())
    } else if *path != format!("{}/{part_name}", bag::PARTS_DIR) {
        Some(format!("is not at {}/{part_name}", bag::PARTS_DIR))
    } else if *index == 0 || index > count || *count < 2 || *count > 1_000_000 {
        Some("has impossible part numbers".to_owned())
    } else if *bytes == 0
        || offset
            .checked_add(*bytes)
            .is_none_or(|end| end > *bundle_bytes)
    {
        Some("lies outside its bundle".to_owned())
    } else if *bundle_bytes > route.max_bundle_bytes {
        Some(format!(
            "belongs to a bundle of {bundle_bytes} bytes, over this route's max_bundle_bytes of \
             {}",
            route.max_bundle_bytes
        ))
    } else if bundle_blake3.len() != 64
        || !bundle_blake3
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Some("does not give its bundle's BLAKE3".to_owned())
    } else {
        None
    };
    if let Some(problem) = problem {
        return Err(MediaError::refused(
            "altered",
            format!("part {path} {problem}"),
        ));
    }
    let part = HeldPart {
        part_name,
        bundle_id: bundle_id.clone(),
        sequence: *sequence,
        index: *index,
        count: *count,
        offset: *offset,
        bytes: *bytes,
        bundle_bytes: *bundle_bytes,
        bundle_blake3: bundle_blake3.clone(),
        file_name: file_name.clone(),
    };
    for other in held.get(bundle_id).into_iter().flatten() {
        if other.whole() != part.whole() || (other.index == part.index && other != &part) {
            return Err(MediaError::refused(
                "altered",
                format!(
                    "part {path} disagrees with part {} of {} of the same bundle held from \
                     another disc of the set; hand the discs to the security officer",
                    other.index, other.count
                ),
            ));
        }
    }
    Ok(part)
}

/// What staging one disc gave.
struct Staged {
    /// Whole bundles staged to land.
    names: Vec<String>,
    /// Parts staged (in the disc's parts folder) to join the set's held parts.
    parts: Vec<HeldPart>,
    /// Parts listed on the disc.
    parts_on_disc: usize,
    /// Bundles (or parts of bundles) that had landed from this disc before.
    already: usize,
}

#[allow(clippy::too_many_arguments)]
async fn stage_all(
    ctx: &ImportContext<'_>,
    route: &MediaRoute,
    disc: &Path,
    files: &BTreeMap<String, u64>,
    contents: &[Content],
    digests: [&BTreeMap<String, String>; 3],
    staging: &Path,
    set_dir: &Path,
    resuming: bool,
) -> Result<Staged, MediaError> {
    let policy =
        ChannelPolicy::from_config(ctx.zone, &receive_config(route, staging, PathBuf::new()));
    let held = held_parts(set_dir)?;
    let parts_dir = parts_staging(staging);
    let mut staged = Vec::new();
    let mut parts = Vec::new();
    let mut parts_on_disc = 0;
    let mut names = BTreeSet::new();
    let mut already = 0;
    for content in contents {
        if let Content::Part { path, bytes, .. } = content {
            parts_on_disc += 1;
            let part = check_part(route, content, &held)?;
            if files.get(path) != Some(bytes) {
                return Err(MediaError::refused(
                    "altered",
                    format!("{path} does not have the size the contents list gives"),
                ));
            }
            let dest = parts_dir.join(&part.part_name);
            copy_checked(disc, path, *bytes, &dest, &digests)?;
            if ctx.state.landed_by_id(&part.bundle_id).await?.is_some() {
                if resuming {
                    fs::remove_file(&dest).map_err(|e| AgentError::io(&dest, e))?;
                    already += 1;
                    continue;
                }
                return Err(MediaError::refused(
                    "replayed",
                    format!(
                        "bundle {} (sequence {}) has already landed; the disc repeats what \
                         crossed before — put it aside",
                        part.bundle_id, part.sequence
                    ),
                ));
            }
            parts.push(part);
            continue;
        }
        let Content::Bundle {
            path,
            bytes,
            bundle_id,
            sequence,
        } = content
        else {
            continue;
        };
        let Some(name) = path
            .strip_prefix(&format!("{}/", bag::BUNDLES_DIR))
            .filter(|n| !n.contains('/'))
        else {
            return Err(MediaError::refused(
                "altered",
                format!("{path} is not under {}/", bag::BUNDLES_DIR),
            ));
        };
        if !names.insert(name.to_owned())
            || dropfolder::is_ignored_name(name)
            || !name.ends_with(dropfolder::BUNDLE_SUFFIX)
        {
            return Err(MediaError::refused(
                "altered",
                format!("{path} is not a bundle file name"),
            ));
        }
        if files.get(path) != Some(bytes) {
            return Err(MediaError::refused(
                "altered",
                format!("{path} does not have the size the contents list gives"),
            ));
        }
        let dest = staging.join(name);
        copy_checked(disc, path, *bytes, &dest, &digests)?;
        // The receiving agent's verification, before anything lands, so that a bad bundle
        // refuses the whole disc rather than part of it.
        let file = File::open(&dest).map_err(|e| AgentError::io(&dest, e))?;
        let verified = policy
            .verify(file, &ctx.trust, Some(&ctx.decryption), Utc::now())
            .map_err(|e| {
                let refusal = crate::policy::Refusal::from(&e);
                MediaError::refused(
                    "bundle-refused",
                    format!("{path} is refused [{}]: {}", refusal.code, refusal.message),
                )
            })?;
        let header = verified.header();
        if &header.bundle_id != bundle_id
            || header.sequence != *sequence
            || crate::bundle_file_name(header) != name
        {
            return Err(MediaError::refused(
                "altered",
                format!("{path} is not the bundle the contents list names"),
            ));
        }
        policy.check_header(header).map_err(|r| {
            MediaError::refused(
                "bundle-refused",
                format!("{path} is refused [{}]: {}", r.code, r.message),
            )
        })?;
        if let Some(landed) = ctx.state.landed_by_id(bundle_id).await? {
            if resuming && landed.digest == verified.digest().to_string() {
                fs::remove_file(&dest).map_err(|e| AgentError::io(&dest, e))?;
                already += 1;
                continue;
            }
            return Err(MediaError::refused(
                "replayed",
                format!(
                    "bundle {bundle_id} (sequence {sequence}) has already landed; the disc \
                     repeats what crossed before — put it aside"
                ),
            ));
        }
        staged.push(name.to_owned());
    }
    for dir in [staging, parts_dir.as_path()] {
        dropfolder::fsync_dir(dir).map_err(|e| AgentError::io(dir, e))?;
    }
    Ok(Staged {
        names: staged,
        parts,
        parts_on_disc,
        already,
    })
}

/// Copies the payload file `path` of the disc to `dest` (a new private file) once, hashing it,
/// and refuses the disc unless the bytes match all three payload manifests.
fn copy_checked(
    disc: &Path,
    path: &str,
    bytes: u64,
    dest: &Path,
    digests: &[&BTreeMap<String, String>; 3],
) -> Result<(), MediaError> {
    let source_path = disc.join(path);
    let (mut source, _) = intake::open_candidate(&source_path, bytes).map_err(|e| match e {
        IntakeError::Unfit(u) => {
            MediaError::refused("path-trick", format!("{path}: {}", u.message))
        }
        IntakeError::Changed { .. } => {
            MediaError::refused("altered", format!("{path} changed while read"))
        }
        IntakeError::Gone => {
            MediaError::refused("incomplete", format!("{path} disappeared while read"))
        }
        IntakeError::Io(err) => MediaError::refused(
            "unreadable",
            format!("cannot read {path}: {err}; clean the disc or try another drive"),
        ),
    })?;
    let mut out = intake::create_new_file(dest, 0o600).map_err(|e| AgentError::io(dest, e))?;
    let (copied, hex) = copy_hashing(&mut source, &mut out, bytes).map_err(|err| {
        MediaError::refused(
            "unreadable",
            format!("cannot read {path}: {err}; clean the disc or try another drive"),
        )
    })?;
    out.sync_data().map_err(|e| AgentError::io(dest, e))?;
    drop(out);
    let expected = [&hex.sha256, &hex.sha512, &hex.blake3];
    if copied != bytes
        || digests
            .iter()
            .zip(expected)
            .any(|(m, got)| m.get(path) != Some(got))
    {
        return Err(MediaError::refused(
            "altered",
            format!("{path} does not match the payload manifests: at least one byte was changed"),
        ));
    }
    Ok(())
}

fn payload_manifest(
    text: &str,
    name: &str,
    hex_len: usize,
) -> Result<BTreeMap<String, String>, MediaError> {
    let lines = bag::parse_manifest(name, text, hex_len, false).map_err(manifest_problem)?;
    Ok(lines.into_iter().map(|(d, p)| (p, d)).collect())
}

fn manifest_problem(problem: ManifestProblem) -> MediaError {
    match problem {
        ManifestProblem::Malformed(m) => MediaError::refused("altered", m),
        ManifestProblem::Path(m) => MediaError::refused("path-trick", m),
    }
}

/// Every regular file on the disc with its size, by path relative to the disc; refuses anything
/// that is not a folder or a regular file, and any path a bag may not hold.
fn walk(disc: &Path) -> Result<BTreeMap<String, u64>, MediaError> {
    let meta = fs::symlink_metadata(disc).map_err(|e| {
        MediaError::refused(
            "incomplete",
            format!("cannot open the disc at {}: {e}", disc.display()),
        )
    })?;
    if !meta.is_dir() {
        return Err(MediaError::refused(
            "path-trick",
            format!(
                "{} is not a folder (or is a symlink); name the disc's mount point",
                disc.display()
            ),
        ));
    }
    let mut files = BTreeMap::new();
    let mut stack = vec![String::new()];
    let mut seen = 0usize;
    while let Some(rel) = stack.pop() {
        let dir = if rel.is_empty() {
            disc.to_path_buf()
        } else {
            disc.join(&rel)
        };
        let entries = fs::read_dir(&dir).map_err(|e| {
            MediaError::refused("unreadable", format!("cannot list {}: {e}", dir.display()))
        })?;
        for entry in entries {
            let entry = entry.map_err(|e| {
                MediaError::refused("unreadable", format!("cannot list {}: {e}", dir.display()))
            })?;
            seen += 1;
            if seen > MAX_ENTRIES {
                return Err(MediaError::refused(
                    "altered",
                    format!("the disc holds more than {MAX_ENTRIES} entries"),
                ));
            }
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                return Err(MediaError::refused(
                    "path-trick",
                    "the disc holds a name that is not UTF-8",
                ));
            };
            let path = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            // `file_type` does not follow symlinks.
            let kind = entry
                .file_type()
                .map_err(|e| MediaError::refused("unreadable", format!("{path}: {e}")))?;
            if kind.is_symlink() {
                return Err(MediaError::refused(
                    "path-trick",
                    format!(
                        "{path} is a symbolic link; a disc holds only files and folders — hand it to the security officer"
                    ),
                ));
            }
            if rel.is_empty() {
                let allowed = bag::TAG_FILES.contains(&name.as_str())
                    || name == bag::TAGMANIFEST_NAME
                    || name == bag::MEDIA_MANIFEST_NAME;
                if kind.is_dir() && name == "data" {
                    stack.push(path);
                    continue;
                }
                if !(allowed && kind.is_file()) {
                    return Err(MediaError::refused(
                        "altered",
                        format!(
                            "{path:?} is not part of a ferry bag: something was added to the disc"
                        ),
                    ));
                }
                let len = entry
                    .metadata()
                    .map_err(|e| MediaError::refused("unreadable", format!("{path}: {e}")))?
                    .len();
                files.insert(path, len);
                continue;
            }
            if kind.is_dir() {
                if path.split('/').count() > 3 {
                    return Err(MediaError::refused(
                        "path-trick",
                        format!("{path} is nested too deep"),
                    ));
                }
                stack.push(path);
                continue;
            }
            if !kind.is_file() {
                return Err(MediaError::refused(
                    "path-trick",
                    format!("{path} is not a regular file (a device, FIFO or socket)"),
                ));
            }
            bag::check_bag_path(&path).map_err(|m| MediaError::refused("path-trick", m))?;
            let len = entry
                .metadata()
                .map_err(|e| MediaError::refused("unreadable", format!("{path}: {e}")))?
                .len();
            files.insert(path, len);
        }
    }
    Ok(files)
}

fn receive_config(route: &MediaRoute, staging: &Path, inbox: PathBuf) -> ReceiveConfig {
    ReceiveConfig {
        name: route.name.clone(),
        channel: route.channel,
        gateway: staging.to_path_buf(),
        inbox,
        quarantine: route.refused.clone(),
        settle: Duration::ZERO,
        require_marker: true,
        incomplete_timeout: Duration::from_secs(1),
        rescan: Duration::from_secs(1),
        batch: 256,
        max_bundle_bytes: route.max_bundle_bytes,
        allowed_kinds: route.allowed_kinds.clone(),
        max_clock_skew: route.max_clock_skew,
    }
}

/// Reassembles, into `dest`, every split bundle of the set whose parts are all held: the parts
/// in order, each where its offset says, the whole of the size and BLAKE3 every part names.
/// Held parts of bundles that have landed are removed. Returns the reassembled file names and the
/// number of split bundles still waiting for parts.
async fn assemble_ready(
    ctx: &ImportContext<'_>,
    set_dir: &Path,
    dest: &Path,
) -> Result<(Vec<String>, usize), MediaError> {
    let mut assembled = Vec::new();
    let mut waiting = 0;
    for (bundle_id, mut parts) in held_parts(set_dir)? {
        if ctx.state.landed_by_id(&bundle_id).await?.is_some() {
            remove_held(set_dir, &parts);
            continue;
        }
        parts.sort_by_key(|p| p.index);
        parts.dedup_by_key(|p| p.index);
        let count = parts[0].count;
        let contiguous = parts.len() == count as usize
            && parts
                .iter()
                .enumerate()
                .all(|(i, p)| p.index as usize == i + 1)
            && parts
                .windows(2)
                .all(|w| w[0].offset + w[0].bytes == w[1].offset)
            && parts[0].offset == 0
            && parts
                .last()
                .is_some_and(|p| p.offset + p.bytes == p.bundle_bytes);
        if !contiguous {
            waiting += 1;
            continue;
        }
        let name = parts[0].file_name.clone();
        let target = dest.join(&name);
        let mut out =
            intake::create_new_file(&target, 0o600).map_err(|e| AgentError::io(&target, e))?;
        let mut hasher = blake3::Hasher::new();
        let mut total = 0u64;
        let mut buffer = vec![0u8; 1 << 20];
        for part in &parts {
            let path = set_dir.join(&part.part_name);
            let file = File::open(&path).map_err(|e| AgentError::io(&path, e))?;
            let mut source = file.take(part.bytes.saturating_add(1));
            let mut copied = 0u64;
            loop {
                let n = source
                    .read(&mut buffer)
                    .map_err(|e| AgentError::io(&path, e))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buffer[..n]);
                out.write_all(&buffer[..n])
                    .map_err(|e| AgentError::io(&target, e))?;
                copied += n as u64;
            }
            if copied != part.bytes {
                let _ = fs::remove_file(&target);
                return Err(held_damaged(&path));
            }
            total += copied;
        }
        out.sync_data().map_err(|e| AgentError::io(&target, e))?;
        drop(out);
        if total != parts[0].bundle_bytes
            || hasher.finalize().to_hex().as_str() != parts[0].bundle_blake3
        {
            let _ = fs::remove_file(&target);
            return Err(held_damaged(set_dir));
        }
        assembled.push(name);
    }
    dropfolder::fsync_dir(dest).map_err(|e| AgentError::io(dest, e))?;
    Ok((assembled, waiting))
}

fn held_damaged(path: &Path) -> MediaError {
    MediaError::Unfit(format!(
        "the held parts in {} no longer match what their discs signed (the ferry's private \
         storage was damaged); move that folder aside and import the set's discs again",
        path.display()
    ))
}

fn remove_held(set_dir: &Path, parts: &[HeldPart]) {
    for part in parts {
        let _ = fs::remove_file(set_dir.join(format!("{}{HELD_SUFFIX}", part.part_name)));
        let _ = fs::remove_file(set_dir.join(&part.part_name));
    }
}

/// The set's discs not yet imported (the current one counts as imported).
async fn missing_discs(ctx: &ImportContext<'_>, m: &MediaManifest) -> Result<Vec<u32>, MediaError> {
    let done: Vec<i64> = sqlx::query_scalar(
        "SELECT disc_index FROM media_discs WHERE direction = 'import' AND set_id = ? \
         AND (status = 'imported' OR disc_id = ?)",
    )
    .bind(&m.set_id)
    .bind(&m.disc_id)
    .fetch_all(ctx.state.pool())
    .await?;
    Ok((1..=m.disc_count)
        .filter(|k| !done.contains(&i64::from(*k)))
        .collect())
}

/// Lands the staged bundles through the receiving agent and records the disc.
async fn land(
    ctx: &ImportContext<'_>,
    route: &MediaRoute,
    inbox: &Path,
    checked: Checked,
    log: AgentLog,
) -> Result<ImportReport, MediaError> {
    let m = &checked.manifest;
    sqlx::query(
        "INSERT INTO media_discs (direction, disc_id, set_id, route, channel, disc_index, \
         disc_count, first_sequence, last_sequence, bundles, parts, payload_bytes, \
         tagmanifest_sha256, status, recorded_at) \
         VALUES ('import', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'staged', ?) \
         ON CONFLICT (direction, disc_id) DO NOTHING",
    )
    .bind(&m.disc_id)
    .bind(&m.set_id)
    .bind(&route.name)
    .bind(m.channel.to_string())
    .bind(i64::from(m.disc_index))
    .bind(i64::from(m.disc_count))
    .bind(crate::state::sequence_text(m.sequences.0))
    .bind(crate::state::sequence_text(m.sequences.1))
    .bind(i64::try_from(m.bundles).unwrap_or(i64::MAX))
    .bind(i64::try_from(m.parts).unwrap_or(i64::MAX))
    .bind(
        m.payload_oxum
            .split_once('.')
            .and_then(|(b, _)| b.parse::<i64>().ok())
            .unwrap_or(0),
    )
    .bind(&m.tagmanifest_sha256)
    .bind(Utc::now().to_rfc3339())
    .execute(ctx.state.pool())
    .await?;

    // The disc's parts join the set's held parts (each part before its record), and every
    // split bundle whose parts are now all held is reassembled beside the whole bundles.
    let set_dir = set_folder(ctx, route, &m.set_id);
    let parts_dir = parts_staging(&checked.staging);
    if !checked.parts.is_empty() {
        fs::create_dir_all(&set_dir).map_err(|e| AgentError::io(&set_dir, e))?;
        for part in &checked.parts {
            let from = parts_dir.join(&part.part_name);
            let to = set_dir.join(&part.part_name);
            fs::rename(&from, &to).map_err(|e| AgentError::io(&from, e))?;
            let record = serde_json::to_vec(part).map_err(|e| {
                AgentError::io(&to, std::io::Error::new(std::io::ErrorKind::InvalidData, e))
            })?;
            let temp = set_dir.join(format!(".{}{HELD_SUFFIX}.tmp", part.part_name));
            let _ = fs::remove_file(&temp);
            intake::write_new(&temp, &record).map_err(|e| AgentError::io(&temp, e))?;
            let path = set_dir.join(format!("{}{HELD_SUFFIX}", part.part_name));
            fs::rename(&temp, &path).map_err(|e| AgentError::io(&path, e))?;
        }
        dropfolder::fsync_dir(&set_dir).map_err(|e| AgentError::io(&set_dir, e))?;
    }
    let _ = fs::remove_dir_all(&parts_dir);
    let (assembled, waiting) = assemble_ready(ctx, &set_dir, &checked.staging).await?;

    for name in checked.staged.iter().chain(&assembled) {
        let marker = checked.staging.join(format!("{name}{MARKER_SUFFIX}"));
        intake::write_new(&marker, b"").map_err(|e| AgentError::io(&marker, e))?;
    }
    dropfolder::fsync_dir(&checked.staging).map_err(|e| AgentError::io(&checked.staging, e))?;
    let config = receive_config(route, &checked.staging, inbox.to_path_buf());
    let mut receiver = Receiver::start(
        config,
        ctx.zone,
        ctx.state.clone(),
        log,
        Arc::clone(&ctx.trust),
        Arc::clone(&ctx.decryption),
    )
    .await?;
    let mut report = ImportReport {
        disc_id: m.disc_id.clone(),
        set_id: m.set_id.clone(),
        bundles: checked.bundles,
        already_landed: checked.already_landed,
        ..ImportReport::default()
    };
    for _ in 0..16 {
        let pass = receiver.poll().await?;
        report.landed += pass.landed;
        report.refused += pass.rejected;
        if pass.landed + pass.rejected == 0 {
            break;
        }
    }
    let left = dropfolder::list_candidates(&checked.staging)
        .map_err(|e| AgentError::io(&checked.staging, e))?;
    report.left = left.len();
    // A reassembled bundle that left staging landed or was quarantined: its parts are done.
    let held = held_parts(&set_dir)?;
    for parts in held.values() {
        let name = &parts[0].file_name;
        if assembled.contains(name) && !left.iter().any(|seen| &seen.name == name) {
            remove_held(&set_dir, parts);
        }
    }
    if held_parts(&set_dir)?.is_empty() {
        let _ = fs::remove_dir(&set_dir);
    }
    report.disc = m.disc_index;
    report.disc_count = m.disc_count;
    report.parts = checked.parts.len();
    report.assembled = assembled.len();
    report.split_waiting = waiting;
    report.discs_missing = missing_discs(ctx, m).await?;
    let mut log = receiver.into_log();
    let set_status = if report.discs_missing.is_empty() {
        "every disc of the set imported".to_owned()
    } else {
        let missing: Vec<String> = report.discs_missing.iter().map(u32::to_string).collect();
        format!(
            "waiting for disc{} {} of {}",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", "),
            m.disc_count
        )
    };
    report.set_status = format!(
        "set {}: {set_status}; {} split bundle(s) wait for parts",
        m.set_id, report.split_waiting
    );
    let summary = format!(
        "disc {} (set {}, disc {} of {}): {} bundles, {} parts, {} reassembled, {} landed, {} \
         refused at landing, {} landed before, {} left; {}",
        m.disc_id,
        m.set_id,
        m.disc_index,
        m.disc_count,
        report.bundles,
        report.parts,
        report.assembled,
        report.landed,
        report.refused,
        report.already_landed,
        report.left,
        report.set_status
    );
    if report.left == 0 {
        log.agent_event(Event::MediaImported, Some(summary))?;
        log.sync()?;
        sqlx::query(
            "UPDATE media_discs SET status = 'imported', recorded_at = ? \
             WHERE direction = 'import' AND disc_id = ?",
        )
        .bind(Utc::now().to_rfc3339())
        .bind(&m.disc_id)
        .execute(ctx.state.pool())
        .await?;
        let _ = fs::remove_dir_all(&checked.staging);
        info!(route = %route.name, disc = %m.disc_id, landed = report.landed, "disc imported");
    } else {
        warn!(route = %route.name, disc = %m.disc_id, left = report.left, "disc partly landed; import it again");
    }
    log.close()?;
    Ok(report)
}
