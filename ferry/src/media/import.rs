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
    mut log: AgentLog,
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
            return Err(MediaError::Refused { code, message });
        }
        Err(err) => return Err(err),
    };
    land(ctx, route, &inbox, checked, log).await
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
    if manifest.disc_count != 1 || manifest.parts != 0 {
        return Err(MediaError::refused(
            "unsupported",
            format!(
                "the disc is {} of {} with {} split parts; this version imports single-disc sets \
                 of whole bundles only — ask the sender to export without a capacity split",
                manifest.disc_index, manifest.disc_count, manifest.parts
            ),
        ));
    }

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
    if contents.len() != content_paths.len() || contents.len() as u64 != manifest.bundles {
        return Err(MediaError::refused(
            "altered",
            "the contents list repeats a file or disagrees with the signed bundle count",
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
    if fs::symlink_metadata(&staging).is_ok() {
        fs::remove_dir_all(&staging).map_err(|e| AgentError::io(&staging, e))?;
    }
    fs::create_dir_all(&staging).map_err(|e| AgentError::io(&staging, e))?;
    let result = stage_all(
        ctx,
        route,
        disc,
        &files,
        &contents,
        [&sha256, &sha512, &blake3],
        &staging,
        resuming,
    )
    .await;
    let (staged, already_landed) = match result {
        Ok(staged) => staged,
        Err(err) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(err);
        }
    };
    Ok(Checked {
        bundles: contents.len(),
        manifest,
        staging,
        staged,
        already_landed,
    })
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
    resuming: bool,
) -> Result<(Vec<String>, usize), MediaError> {
    let policy =
        ChannelPolicy::from_config(ctx.zone, &receive_config(route, staging, PathBuf::new()));
    let mut staged = Vec::new();
    let mut names = BTreeSet::new();
    let mut already = 0;
    for content in contents {
        let Content::Bundle {
            path,
            bytes,
            bundle_id,
            sequence,
        } = content
        else {
            return Err(MediaError::refused(
                "unsupported",
                "the disc holds parts of split bundles",
            ));
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
        let source_path = disc.join(path);
        let (mut source, _) =
            intake::open_candidate(&source_path, *bytes).map_err(|e| match e {
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
        let dest = staging.join(name);
        let mut out =
            intake::create_new_file(&dest, 0o600).map_err(|e| AgentError::io(&dest, e))?;
        let (copied, hex) = copy_hashing(&mut source, &mut out, *bytes).map_err(|err| {
            MediaError::refused(
                "unreadable",
                format!("cannot read {path}: {err}; clean the disc or try another drive"),
            )
        })?;
        out.sync_data().map_err(|e| AgentError::io(&dest, e))?;
        drop(out);
        let expected = [&hex.sha256, &hex.sha512, &hex.blake3];
        if copied != *bytes
            || digests
                .iter()
                .zip(expected)
                .any(|(m, got)| m.get(path) != Some(got))
        {
            return Err(MediaError::refused(
                "altered",
                format!(
                    "{path} does not match the payload manifests: at least one byte was changed"
                ),
            ));
        }
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
    dropfolder::fsync_dir(staging).map_err(|e| AgentError::io(staging, e))?;
    Ok((staged, already))
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

    for name in &checked.staged {
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
    let mut log = receiver.into_log();
    let summary = format!(
        "disc {} (set {}, disc {} of {}): {} bundles, {} landed, {} refused at landing, {} \
         landed before, {} left",
        m.disc_id,
        m.set_id,
        m.disc_index,
        m.disc_count,
        report.bundles,
        report.landed,
        report.refused,
        report.already_landed,
        report.left
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
