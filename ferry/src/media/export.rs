//! `ow-ferry media export`: the pending bundles of a media route's outbox → one disc.
//!
//! Steps, each crash-safe:
//! 1. the outbox is listed; a file that is not a bundle of the route's channel is set aside in
//!    `rejected/` with its reason; a bundle already recorded as sent (an export that stopped after
//!    recording) is moved to `sent/` and not written again;
//! 2. the oldest bundles that fit the disc are copied to `data/bundles/`, hashed while copied, and
//!    synced; then the tag files, and last the signed media manifest (a disc without it is
//!    `incomplete` for any importer);
//! 3. the ferry log gets one `media-exported` entry per bundle and is synced; then the disc and
//!    the bundles' sent rows are committed in one transaction;
//! 4. the bundles are moved from the outbox to `sent/`.
//!
//! Bundles that do not fit stay in the outbox for the next disc.

use std::fs::{self, File};
use std::path::Path;

use chrono::Utc;
use ed25519_dalek::SigningKey;
use ow_bundle::{Header, Limits, Zone};
use ow_ferrylog::Event;
use tracing::{info, warn};

use super::bag::{self, BagInfo, Content};
use super::signed::MediaManifest;
use super::{MediaError, MediaRoute, copy_hashing, sha256_hex};
use crate::audit::AgentLog;
use crate::dropfolder::{self, Seen};
use crate::state::{FerryState, Sent, insert_sent, sequence_text};
use crate::{AgentError, bundle_file_name, intake};

/// Room kept on a disc for the tag files and the file system's own structures.
const DISC_OVERHEAD: u64 = 4 << 20;
/// Room kept per file (directory entry and block rounding on ISO 9660/UDF).
const PER_FILE_OVERHEAD: u64 = 4 << 10;

/// What an export wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportReport {
    /// The disc's id (`External-Identifier`).
    pub disc_id: String,
    /// The set's id (`Bag-Group-Identifier`).
    pub set_id: String,
    /// Bundles written.
    pub bundles: usize,
    /// Payload bytes written.
    pub bytes: u64,
    /// Lowest and highest sequence on the disc.
    pub sequences: (u64, u64),
    /// Bundles left in the outbox because the disc was full.
    pub left_pending: usize,
    /// Outbox files set aside in `rejected/`.
    pub rejected: usize,
}

struct Pending {
    file: Seen,
    header: Header,
    digest: String,
}

/// Writes the route's pending bundles onto the disc folder `disc` (absent or empty).
pub async fn export(
    zone: Zone,
    route: &MediaRoute,
    disc: &Path,
    capacity: Option<u64>,
    key: &SigningKey,
    state: &FerryState,
    log: &mut AgentLog,
) -> Result<ExportReport, MediaError> {
    let Some(outbox) = route.outbox.as_deref() else {
        return Err(MediaError::Unfit(format!(
            "media route {} imports; it has no outbox to export from",
            route.name
        )));
    };
    for dir in [outbox, route.sent.as_path(), route.rejected.as_path()] {
        dropfolder::ensure_dir(dir).map_err(|e| AgentError::io(dir, e))?;
    }
    prepare_disc(disc)?;

    let (mut pending, rejected) = pending_bundles(zone, route, outbox, state).await?;
    if pending.is_empty() {
        return Err(MediaError::Unfit(format!(
            "nothing to export: the outbox {} holds no pending bundle of {}",
            outbox.display(),
            route.channel
        )));
    }
    pending.sort_by_key(|p| p.header.sequence);
    let capacity = capacity.or(route.capacity).unwrap_or(u64::MAX);
    let mut room = capacity.saturating_sub(DISC_OVERHEAD);
    let mut take = 0;
    for p in &pending {
        let need = p.file.len.saturating_add(PER_FILE_OVERHEAD);
        if need > room {
            break;
        }
        room -= need;
        take += 1;
    }
    if take == 0 {
        let first = &pending[0];
        return Err(MediaError::Unfit(format!(
            "bundle {} (sequence {}) is {} bytes, more than a disc of {capacity} bytes holds; \
             this version does not split a bundle across discs — use a larger medium \
             (--capacity 25G or 100G)",
            first.header.bundle_id, first.header.sequence, first.file.len
        )));
    }
    let left_pending = pending.len() - take;
    pending.truncate(take);

    let set_id = uuid::Uuid::now_v7().to_string();
    let disc_id = uuid::Uuid::now_v7().to_string();
    let written = write_bag(zone, route, disc, &pending, &set_id, &disc_id, key)?;

    // The log first, then the rows: a crash in between shows an export in the log that the
    // state does not hold (the next export writes those bundles again, on a new disc).
    let reason = format!("disc {disc_id} (set {set_id}, disc 1 of 1)");
    for p in &pending {
        log.bundle_event(
            Event::MediaExported,
            Some(&p.header),
            p.file.len,
            Some(reason.clone()),
        )?;
    }
    log.sync()?;
    let now = Utc::now();
    let sent: Vec<Sent> = pending
        .iter()
        .map(|p| Sent {
            bundle_id: p.header.bundle_id.clone(),
            channel: route.channel.to_string(),
            sequence: p.header.sequence,
            digest: p.digest.clone(),
            bytes: p.file.len,
            sent_at: now,
        })
        .collect();
    let mut tx = state.pool().begin().await?;
    sqlx::query(
        "INSERT INTO media_discs (direction, disc_id, set_id, route, channel, disc_index, \
         disc_count, first_sequence, last_sequence, bundles, parts, payload_bytes, \
         tagmanifest_sha256, status, recorded_at) \
         VALUES ('export', ?, ?, ?, ?, 1, 1, ?, ?, ?, 0, ?, ?, 'exported', ?)",
    )
    .bind(&disc_id)
    .bind(&set_id)
    .bind(&route.name)
    .bind(route.channel.to_string())
    .bind(sequence_text(written.sequences.0))
    .bind(sequence_text(written.sequences.1))
    .bind(i64::try_from(pending.len()).unwrap_or(i64::MAX))
    .bind(i64::try_from(written.bytes).unwrap_or(i64::MAX))
    .bind(&written.tagmanifest_sha256)
    .bind(now.to_rfc3339())
    .execute(&mut *tx)
    .await?;
    insert_sent(&mut tx, &sent).await?;
    tx.commit().await?;

    for p in &pending {
        let target = dropfolder::unused_path(&route.sent, &p.file.name);
        dropfolder::move_file(&p.file.path, &target)
            .map_err(|e| AgentError::io(&p.file.path, e))?;
    }
    for dir in [outbox, route.sent.as_path()] {
        dropfolder::fsync_dir(dir).map_err(|e| AgentError::io(dir, e))?;
    }
    info!(route = %route.name, disc = %disc_id, bundles = pending.len(), bytes = written.bytes, "disc exported");
    Ok(ExportReport {
        disc_id,
        set_id,
        bundles: pending.len(),
        bytes: written.bytes,
        sequences: written.sequences,
        left_pending,
        rejected,
    })
}

/// The disc folder must be new or empty, and a real folder.
fn prepare_disc(disc: &Path) -> Result<(), MediaError> {
    match fs::symlink_metadata(disc) {
        Ok(meta) if meta.is_dir() => {
            let mut entries = fs::read_dir(disc).map_err(|e| AgentError::io(disc, e))?;
            if entries.next().is_some() {
                return Err(MediaError::Unfit(format!(
                    "the disc folder {} is not empty; export onto an empty folder (a blank disc)",
                    disc.display()
                )));
            }
        }
        Ok(_) => {
            return Err(MediaError::Unfit(format!(
                "{} is not a folder (or is a symlink); name an empty folder for the disc",
                disc.display()
            )));
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(disc).map_err(|e| AgentError::io(disc, e))?;
        }
        Err(err) => return Err(AgentError::io(disc, err).into()),
    }
    Ok(())
}

/// The outbox's bundles of this route, not yet exported; sets aside what does not belong.
async fn pending_bundles(
    zone: Zone,
    route: &MediaRoute,
    outbox: &Path,
    state: &FerryState,
) -> Result<(Vec<Pending>, usize), MediaError> {
    let listing = dropfolder::scan(outbox).map_err(|e| AgentError::io(outbox, e))?;
    let limits = Limits {
        max_payload_bytes: route.max_bundle_bytes,
        ..Limits::default()
    };
    let mut pending = Vec::new();
    let mut rejected = 0;
    for (seen, unfit) in &listing.unfit {
        set_aside(route, seen, unfit.code, &unfit.message)?;
        rejected += 1;
    }
    for file in listing.files {
        let read = File::open(&file.path)
            .map_err(|e| ("io".to_owned(), format!("cannot open the file: {e}")))
            .and_then(|mut f| {
                ow_bundle::read_header(&mut f, &limits)
                    .map_err(|e| (e.code().to_owned(), e.to_string()))
            });
        let bundle = match read {
            Ok(bundle) => bundle,
            Err((code, message)) => {
                set_aside(route, &file, &code, &message)?;
                rejected += 1;
                continue;
            }
        };
        let header = bundle.header().clone();
        if header.channel != route.channel || header.sender != zone {
            let message = format!(
                "the bundle is for channel {} from the {} zone, but this media route carries {} \
                 from the {zone} zone; the packer wrote it to the wrong outbox",
                header.channel, header.sender, route.channel
            );
            set_aside(route, &file, "wrong-channel", &message)?;
            rejected += 1;
            continue;
        }
        if state.sent_by_id(&header.bundle_id).await?.is_some() {
            // An export recorded it but stopped before moving it: finish that move.
            warn!(route = %route.name, file = %file.name, "already exported; moved to sent");
            let target = dropfolder::unused_path(&route.sent, &file.name);
            dropfolder::move_file(&file.path, &target)
                .map_err(|e| AgentError::io(&file.path, e))?;
            continue;
        }
        pending.push(Pending {
            digest: bundle.digest().to_string(),
            file,
            header,
        });
    }
    Ok((pending, rejected))
}

fn set_aside(route: &MediaRoute, file: &Seen, code: &str, message: &str) -> Result<(), MediaError> {
    let target = dropfolder::unused_path(&route.rejected, &file.name);
    intake::move_entry(&file.path, &target).map_err(|e| AgentError::io(&file.path, e))?;
    let reason = serde_json::json!({
        "code": code,
        "message": message,
        "route": route.name,
        "file": file.name,
        "set_aside_at": Utc::now().to_rfc3339(),
    });
    dropfolder::write_reason(&target, &reason).map_err(|e| AgentError::io(&target, e))?;
    warn!(route = %route.name, file = %file.name, code, "outbox file set aside: {message}");
    Ok(())
}

struct Written {
    bytes: u64,
    sequences: (u64, u64),
    tagmanifest_sha256: String,
}

/// Writes the bag: payload, tag files, tag manifest, and last the signed media manifest.
fn write_bag(
    zone: Zone,
    route: &MediaRoute,
    disc: &Path,
    pending: &[Pending],
    set_id: &str,
    disc_id: &str,
    key: &SigningKey,
) -> Result<Written, MediaError> {
    let bundles_dir = disc.join(bag::BUNDLES_DIR);
    fs::create_dir_all(&bundles_dir).map_err(|e| AgentError::io(&bundles_dir, e))?;
    let mut sha256 = Vec::new();
    let mut sha512 = Vec::new();
    let mut blake3 = Vec::new();
    let mut contents = Vec::new();
    let mut total = 0u64;
    for p in pending {
        let name = bundle_file_name(&p.header);
        let path = format!("{}/{name}", bag::BUNDLES_DIR);
        let dest = disc.join(&path);
        let mut source = File::open(&p.file.path).map_err(|e| AgentError::io(&p.file.path, e))?;
        let mut out =
            intake::create_new_file(&dest, 0o644).map_err(|e| AgentError::io(&dest, e))?;
        let (bytes, hex) = copy_hashing(&mut source, &mut out, p.file.len)
            .map_err(|e| AgentError::io(&dest, e))?;
        if bytes != p.file.len {
            return Err(MediaError::Unfit(format!(
                "outbox file {} changed while it was written to the disc; export again",
                p.file.name
            )));
        }
        out.sync_data().map_err(|e| AgentError::io(&dest, e))?;
        total += bytes;
        sha256.push((hex.sha256, path.clone()));
        sha512.push((hex.sha512, path.clone()));
        blake3.push((hex.blake3, path.clone()));
        contents.push(Content::Bundle {
            path,
            bytes,
            bundle_id: p.header.bundle_id.clone(),
            sequence: p.header.sequence,
        });
    }
    for dir in [bundles_dir.as_path(), &disc.join("data")] {
        dropfolder::fsync_dir(dir).map_err(|e| AgentError::io(dir, e))?;
    }
    let first = pending.first().map_or(0, |p| p.header.sequence);
    let last = pending.last().map_or(0, |p| p.header.sequence);
    let now = Utc::now();
    let oxum = bag::payload_oxum(total, pending.len());
    let info = BagInfo {
        source: format!("OneWindow {zone} zone"),
        bagging_date: now.format("%Y-%m-%d").to_string(),
        payload_oxum: oxum.clone(),
        set_id: set_id.to_owned(),
        disc_index: 1,
        disc_count: 1,
        disc_id: disc_id.to_owned(),
        channel: route.channel.to_string(),
        sender: route.channel.from.to_string(),
        receiver: route.channel.to.to_string(),
        sequences: (first, last),
        set_sequences: (first, last),
    };
    let tag_texts: Vec<(&str, String)> = vec![
        (bag::BAGIT_NAME, bag::BAGIT_TXT.to_owned()),
        (bag::BAG_INFO_NAME, info.encode()),
        (bag::MANIFEST_SHA256, bag::encode_manifest(&sha256)),
        (bag::MANIFEST_SHA512, bag::encode_manifest(&sha512)),
        (bag::MANIFEST_BLAKE3, bag::encode_manifest(&blake3)),
        (bag::CONTENTS_NAME, bag::encode_contents(&contents)),
    ];
    let mut tag_lines = Vec::new();
    for (name, text) in &tag_texts {
        let path = disc.join(name);
        intake::write_new(&path, text.as_bytes()).map_err(|e| AgentError::io(&path, e))?;
        tag_lines.push((sha256_hex(text.as_bytes()), (*name).to_owned()));
    }
    let tagmanifest = bag::encode_manifest(&tag_lines);
    let tag_path = disc.join(bag::TAGMANIFEST_NAME);
    intake::write_new(&tag_path, tagmanifest.as_bytes())
        .map_err(|e| AgentError::io(&tag_path, e))?;
    dropfolder::fsync_dir(disc).map_err(|e| AgentError::io(disc, e))?;
    let tagmanifest_sha256 = sha256_hex(tagmanifest.as_bytes());
    let manifest = MediaManifest {
        channel: route.channel,
        set_id: set_id.to_owned(),
        disc_id: disc_id.to_owned(),
        disc_index: 1,
        disc_count: 1,
        sequences: (first, last),
        set_sequences: (first, last),
        bundles: pending.len() as u64,
        parts: 0,
        payload_oxum: oxum,
        created_at: now,
        tagmanifest_sha256: tagmanifest_sha256.clone(),
    };
    let signed_path = disc.join(bag::MEDIA_MANIFEST_NAME);
    intake::write_new(&signed_path, manifest.sign(key).as_bytes())
        .map_err(|e| AgentError::io(&signed_path, e))?;
    dropfolder::fsync_dir(disc).map_err(|e| AgentError::io(disc, e))?;
    Ok(Written {
        bytes: total,
        sequences: (first, last),
        tagmanifest_sha256,
    })
}
