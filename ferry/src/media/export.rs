//! `ow-ferry media export`: the pending bundles of a media route's outbox → one disc, or a set of
//! discs (`Bag-Count: k of n`, one set id) on which a bundle larger than a disc is split into
//! parts.
//!
//! Steps, each crash-safe:
//! 0. a journal left by a killed export is dealt with first ([`recover`]): its recorded discs are
//!    named to be carried, its unrecorded ones emptied; the export stops there;
//! 1. the outbox is listed; a file that is not a bundle of the route's channel is set aside in
//!    `rejected/` with its reason; a bundle already recorded as sent (an export that stopped after
//!    recording) is moved to `sent/` and not written again;
//! 2. the discs are planned; the journal names the set and every disc folder; then each disc:
//!    its bundles (or parts) copied to `data/`, hashed while copied, and synced; then the tag
//!    files, and last the signed media manifest (a disc without it is `incomplete` for any
//!    importer);
//! 3. the ferry log gets one `media-exported` entry per bundle and is synced; then the discs and
//!    the bundles' sent rows are committed in one transaction;
//! 4. the bundles are moved from the outbox to `sent/`; the journal is removed once the summary
//!    is printed ([`printed`]).
//!
//! With `--disc`, bundles that do not fit stay in the outbox for the next disc.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
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
/// Smallest part worth starting on a disc's remaining room.
const MIN_PART: u64 = 64 << 10;
/// Most discs in a set.
pub const MAX_DISCS: u32 = 10_000;

/// One disc of an export.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportedDisc {
    /// The disc's folder.
    pub folder: std::path::PathBuf,
    /// The disc's id (`External-Identifier`).
    pub disc_id: String,
    /// Its place in the set (`Bag-Count: <disc> of <n>`).
    pub disc: u32,
    /// Whole bundles on it.
    pub bundles: usize,
    /// Parts of split bundles on it.
    pub parts: usize,
    /// Payload bytes on it.
    pub bytes: u64,
    /// Lowest and highest sequence on it.
    pub sequences: (u64, u64),
}

/// What an export wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportReport {
    /// The first disc's id (`External-Identifier`); every disc is listed in `discs`.
    pub disc_id: String,
    /// The set's id (`Bag-Group-Identifier`).
    pub set_id: String,
    /// Discs in the set.
    pub disc_count: u32,
    /// Bundles written (whole or split).
    pub bundles: usize,
    /// Bundles split into parts across discs.
    pub split: usize,
    /// Payload bytes written.
    pub bytes: u64,
    /// Lowest and highest sequence in the set.
    pub sequences: (u64, u64),
    /// Bundles left in the outbox because the disc was full.
    pub left_pending: usize,
    /// Outbox files set aside in `rejected/`.
    pub rejected: usize,
    /// Every disc of the set, in order.
    pub discs: Vec<ExportedDisc>,
    /// ISO images written (`--iso`), one per disc, in disc order.
    pub images: Vec<std::path::PathBuf>,
    /// The export's journal: removed by [`printed`] once the operator has the summary.
    #[serde(skip)]
    pub journal: std::path::PathBuf,
}

/// Called once the summary is printed: the export is over and its journal goes. Until then, a
/// killed export is named by the next one (its discs are recorded: carry them).
pub fn printed(report: &ExportReport) -> Result<(), MediaError> {
    remove_journal(&report.journal)
}

/// Where an export writes.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// One disc's folder, or (`set`) the folder that gets one sub-folder per disc.
    pub folder: &'a Path,
    /// Write every pending bundle as a set of as many discs as needed (`disc-<k>-of-<n>`),
    /// splitting a bundle larger than a disc into parts; otherwise one disc, the rest pending.
    pub set: bool,
    /// The route's export journal (`<data_dir>/media-exports/<route>.json`).
    pub journal: &'a Path,
}

struct Pending {
    file: Seen,
    header: Header,
    digest: String,
}

/// A piece of a bundle placed on a disc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    /// The whole bundle `pending[at]`.
    Whole { at: usize },
    /// Part `index` of `pending[at]`: `bytes` bytes from `offset`.
    Part {
        at: usize,
        index: u32,
        offset: u64,
        bytes: u64,
    },
}

/// The discs of an export: which pieces go on which disc, in sequence order. With `split`
/// false, one disc and only whole bundles (what does not fit is left out). A bundle that fits an
/// empty disc is never split; a larger one fills the rest of the current disc and as many discs
/// after it as it needs.
fn plan(sizes: &[u64], room_per_disc: u64, split: bool) -> Vec<Vec<Piece>> {
    let mut discs: Vec<Vec<Piece>> = vec![Vec::new()];
    let mut room = room_per_disc;
    for (at, &len) in sizes.iter().enumerate() {
        let need = len.saturating_add(PER_FILE_OVERHEAD);
        if need <= room {
            if let Some(d) = discs.last_mut() {
                d.push(Piece::Whole { at });
            }
            room -= need;
            continue;
        }
        if !split {
            break;
        }
        if need <= room_per_disc {
            discs.push(vec![Piece::Whole { at }]);
            room = room_per_disc - need;
            continue;
        }
        let mut offset = 0;
        let mut index = 0;
        while offset < len {
            if room < PER_FILE_OVERHEAD + MIN_PART {
                discs.push(Vec::new());
                room = room_per_disc;
            }
            let bytes = (len - offset).min(room - PER_FILE_OVERHEAD);
            index += 1;
            if let Some(d) = discs.last_mut() {
                d.push(Piece::Part {
                    at,
                    index,
                    offset,
                    bytes,
                });
            }
            room -= bytes + PER_FILE_OVERHEAD;
            offset += bytes;
        }
    }
    discs.retain(|d| !d.is_empty());
    discs
}

/// Writes the route's pending bundles onto one disc, or onto a set of discs.
pub async fn export(
    zone: Zone,
    route: &MediaRoute,
    target: Target<'_>,
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
    recover(target.journal, state).await?;
    prepare_disc(target.folder)?;

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
    let room_per_disc = capacity.saturating_sub(DISC_OVERHEAD);
    if room_per_disc < PER_FILE_OVERHEAD + MIN_PART {
        return Err(MediaError::Unfit(format!(
            "a disc of {capacity} bytes has no room for payload after {DISC_OVERHEAD} bytes for \
             the tag files; give a real capacity (4.7G, 25G, 100G)"
        )));
    }
    let sizes: Vec<u64> = pending.iter().map(|p| p.file.len).collect();
    let discs = plan(&sizes, room_per_disc, target.set);
    let taken = discs
        .iter()
        .flatten()
        .map(|piece| match piece {
            Piece::Whole { at } | Piece::Part { at, .. } => *at,
        })
        .max()
        .map_or(0, |at| at + 1);
    if taken == 0 {
        let first = &pending[0];
        return Err(MediaError::Unfit(format!(
            "bundle {} (sequence {}) is {} bytes, more than a disc of {capacity} bytes holds; \
             export it as a set of discs (--set FOLDER instead of --disc) or use a larger medium \
             (--capacity 25G or 100G)",
            first.header.bundle_id, first.header.sequence, first.file.len
        )));
    }
    let disc_count = u32::try_from(discs.len())
        .ok()
        .filter(|n| *n <= MAX_DISCS)
        .ok_or_else(|| {
            MediaError::Unfit(format!(
                "the pending bundles need {} discs of {capacity} bytes, more than the {MAX_DISCS} \
                 a set may have; use a larger medium or export fewer bundles at a time",
                discs.len()
            ))
        })?;
    let left_pending = pending.len() - taken;
    pending.truncate(taken);

    // Parts name their whole bundle's size and BLAKE3, so the importer can check a reassembly.
    let mut part_counts = vec![0u32; pending.len()];
    for piece in discs.iter().flatten() {
        if let Piece::Part { at, .. } = piece {
            part_counts[*at] += 1;
        }
    }
    let mut whole_blake3 = vec![String::new(); pending.len()];
    for (at, p) in pending.iter().enumerate() {
        if part_counts[at] > 0 {
            whole_blake3[at] = blake3_of(&p.file.path, p.file.len)?;
        }
    }

    let set_id = uuid::Uuid::now_v7().to_string();
    let set_sequences = (
        pending.first().map_or(0, |p| p.header.sequence),
        pending.last().map_or(0, |p| p.header.sequence),
    );
    let folders: Vec<std::path::PathBuf> = (1..=disc_count)
        .map(|index| {
            if target.set {
                target.folder.join(format!("disc-{index}-of-{disc_count}"))
            } else {
                target.folder.to_path_buf()
            }
        })
        .collect();
    write_journal(
        target.journal,
        &Journal {
            set_id: set_id.clone(),
            discs: folders.clone(),
            set_folder: target.set.then(|| target.folder.to_path_buf()),
            started_at: Utc::now().to_rfc3339(),
        },
    )?;
    let mut written_discs = Vec::new();
    for (i, pieces) in discs.iter().enumerate() {
        let index = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let folder = folders[i].clone();
        if target.set {
            prepare_disc(&folder)?;
        }
        let disc = DiscToWrite {
            zone,
            route,
            folder: &folder,
            pending: &pending,
            pieces,
            part_counts: &part_counts,
            whole_blake3: &whole_blake3,
            set_id: &set_id,
            disc_id: uuid::Uuid::now_v7().to_string(),
            index,
            disc_count,
            set_sequences,
        };
        let written = write_bag(&disc, key)?;
        let disc_id = disc.disc_id;
        written_discs.push((folder, disc_id, written));
    }

    // The log first, then the rows: a crash in between shows an export in the log that the
    // state does not hold (the next export writes those bundles again, on a new disc).
    let discs_of = |at: usize| -> Vec<u32> {
        discs
            .iter()
            .enumerate()
            .filter(|(_, pieces)| {
                pieces.iter().any(|piece| match piece {
                    Piece::Whole { at: a } | Piece::Part { at: a, .. } => *a == at,
                })
            })
            .map(|(i, _)| u32::try_from(i + 1).unwrap_or(u32::MAX))
            .collect()
    };
    for (at, p) in pending.iter().enumerate() {
        let on: Vec<String> = discs_of(at).iter().map(u32::to_string).collect();
        let ids: Vec<&str> = discs_of(at)
            .iter()
            .map(|d| written_discs[*d as usize - 1].1.as_str())
            .collect();
        let reason = format!(
            "disc {} (set {set_id}, disc {} of {disc_count})",
            ids.join(","),
            on.join(",")
        );
        log.bundle_event(
            Event::MediaExported,
            Some(&p.header),
            p.file.len,
            Some(reason),
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
    for (i, (_, disc_id, written)) in written_discs.iter().enumerate() {
        sqlx::query(
            "INSERT INTO media_discs (direction, disc_id, set_id, route, channel, disc_index, \
             disc_count, first_sequence, last_sequence, bundles, parts, payload_bytes, \
             tagmanifest_sha256, status, recorded_at) \
             VALUES ('export', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'exported', ?)",
        )
        .bind(disc_id)
        .bind(&set_id)
        .bind(&route.name)
        .bind(route.channel.to_string())
        .bind(i64::try_from(i + 1).unwrap_or(i64::MAX))
        .bind(i64::from(disc_count))
        .bind(sequence_text(written.sequences.0))
        .bind(sequence_text(written.sequences.1))
        .bind(i64::try_from(written.bundles).unwrap_or(i64::MAX))
        .bind(i64::try_from(written.parts).unwrap_or(i64::MAX))
        .bind(i64::try_from(written.bytes).unwrap_or(i64::MAX))
        .bind(&written.tagmanifest_sha256)
        .bind(now.to_rfc3339())
        .execute(&mut *tx)
        .await?;
    }
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
    let bytes = written_discs.iter().map(|(_, _, w)| w.bytes).sum();
    info!(route = %route.name, set = %set_id, discs = disc_count, bundles = pending.len(), bytes, "set exported");
    Ok(ExportReport {
        disc_id: written_discs[0].1.clone(),
        set_id,
        disc_count,
        bundles: pending.len(),
        split: part_counts.iter().filter(|n| **n > 0).count(),
        bytes,
        sequences: set_sequences,
        left_pending,
        rejected,
        discs: written_discs
            .into_iter()
            .enumerate()
            .map(|(i, (folder, disc_id, w))| ExportedDisc {
                folder,
                disc_id,
                disc: u32::try_from(i + 1).unwrap_or(u32::MAX),
                bundles: w.bundles,
                parts: w.parts,
                bytes: w.bytes,
                sequences: w.sequences,
            })
            .collect(),
        images: Vec::new(),
        journal: target.journal.to_path_buf(),
    })
}

/// BLAKE3 (hex) of the first `len` bytes of a file, read once through a 1 MiB buffer.
fn blake3_of(path: &Path, len: u64) -> Result<String, MediaError> {
    let mut file = File::open(path).map_err(|e| AgentError::io(path, e))?;
    let mut hasher = blake3::Hasher::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let want = usize::try_from(left.min(buffer.len() as u64)).unwrap_or(buffer.len());
        let n = file
            .read(&mut buffer[..want])
            .map_err(|e| AgentError::io(path, e))?;
        if n == 0 {
            return Err(MediaError::Unfit(format!(
                "outbox file {} shrank while it was read; export again",
                path.display()
            )));
        }
        hasher.update(&buffer[..n]);
        left -= n as u64;
    }
    Ok(hasher.finalize().to_hex().to_string())
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

/// The record of an export in progress (`<data_dir>/media-exports/<route>.json`), written before
/// the first byte of a disc and removed once the summary is printed ([`printed`]). Its presence at the
/// start of an export means the last one was killed; [`recover`] then names its discs.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Journal {
    set_id: String,
    /// The disc folders being written, in disc order.
    discs: Vec<std::path::PathBuf>,
    /// `--set`: the folder holding the disc folders (removed if left empty).
    set_folder: Option<std::path::PathBuf>,
    started_at: String,
}

fn write_journal(path: &Path, journal: &Journal) -> Result<(), MediaError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    dropfolder::ensure_dir(dir).map_err(|e| AgentError::io(dir, e))?;
    let temp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    let _ = fs::remove_file(&temp);
    let text = serde_json::to_vec_pretty(journal)
        .map_err(|e| AgentError::io(path, std::io::Error::other(e)))?;
    intake::write_new(&temp, &text).map_err(|e| AgentError::io(&temp, e))?;
    fs::rename(&temp, path).map_err(|e| AgentError::io(path, e))?;
    dropfolder::fsync_dir(dir).map_err(|e| AgentError::io(dir, e))?;
    Ok(())
}

fn remove_journal(path: &Path) -> Result<(), MediaError> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(AgentError::io(path, err).into()),
    }
    if let Some(dir) = path.parent() {
        dropfolder::fsync_dir(dir).map_err(|e| AgentError::io(dir, e))?;
    }
    Ok(())
}

/// Empties a disc folder the ferry wrote (its own files and folders only: the folder was empty
/// when the export began).
fn clear_folder(folder: &Path) -> Result<(), MediaError> {
    let entries = match fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(AgentError::io(folder, err).into()),
    };
    for entry in entries {
        let entry = entry.map_err(|e| AgentError::io(folder, e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| AgentError::io(&path, e))?;
        if kind.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        }
        .map_err(|e| AgentError::io(&path, e))?;
    }
    dropfolder::fsync_dir(folder).map_err(|e| AgentError::io(folder, e))?;
    Ok(())
}

/// Finishes with an export that was killed, before anything else is written: if its discs were
/// recorded they are complete and are named to be carried; if not, they are half-written (or
/// complete but unrecorded, so their bundles are still pending) and are emptied so that nothing
/// on them is ever carried. Either way the operator is told, and the export stops there.
async fn recover(journal_path: &Path, state: &FerryState) -> Result<(), MediaError> {
    let bytes = match fs::read(journal_path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(AgentError::io(journal_path, err).into()),
    };
    let Ok(journal) = serde_json::from_slice::<Journal>(&bytes) else {
        // Cut short while written: the export had not begun writing a disc.
        remove_journal(journal_path)?;
        return Ok(());
    };
    let folders: Vec<String> = journal
        .discs
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    let recorded: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM media_discs WHERE direction = 'export' AND set_id = ?",
    )
    .bind(&journal.set_id)
    .fetch_one(state.pool())
    .await?;
    let message = if recorded > 0 {
        format!(
            "the last export (set {}, started {}) stopped before its summary was printed, after \
             it recorded its {} disc(s): they are complete and must be carried (if they were \
             not already): {}. Their bundles are in `ow-ferry log show --event media-exported`; \
             run the export again for what is still pending",
            journal.set_id,
            journal.started_at,
            journal.discs.len(),
            folders.join(", ")
        )
    } else {
        for folder in &journal.discs {
            clear_folder(folder)?;
            if journal.set_folder.is_some() {
                let _ = fs::remove_dir(folder);
            }
        }
        if let Some(set) = &journal.set_folder {
            let _ = fs::remove_dir(set);
        }
        format!(
            "the last export (set {}, started {}) was interrupted before it recorded its discs: \
             the half-written disc folder(s) {} were emptied — carry nothing written there. \
             Their bundles are still pending; run the export again",
            journal.set_id,
            journal.started_at,
            folders.join(", ")
        )
    };
    remove_journal(journal_path)?;
    warn!("{message}");
    Err(MediaError::Unfit(message))
}

struct Written {
    bytes: u64,
    bundles: usize,
    parts: usize,
    sequences: (u64, u64),
    tagmanifest_sha256: String,
}

struct DiscToWrite<'a> {
    zone: Zone,
    route: &'a MediaRoute,
    folder: &'a Path,
    pending: &'a [Pending],
    pieces: &'a [Piece],
    part_counts: &'a [u32],
    whole_blake3: &'a [String],
    set_id: &'a str,
    disc_id: String,
    index: u32,
    disc_count: u32,
    set_sequences: (u64, u64),
}

/// Writes one bag: payload, tag files, tag manifest, and last the signed media manifest.
fn write_bag(d: &DiscToWrite<'_>, key: &SigningKey) -> Result<Written, MediaError> {
    let (zone, route, disc) = (d.zone, d.route, d.folder);
    let mut sha256 = Vec::new();
    let mut sha512 = Vec::new();
    let mut blake3 = Vec::new();
    let mut contents = Vec::new();
    let mut total = 0u64;
    let (mut bundles, mut parts) = (0usize, 0usize);
    let mut sequences = (u64::MAX, 0u64);
    let mut dirs = vec![disc.join("data")];
    for piece in d.pieces {
        let (at, part) = match *piece {
            Piece::Whole { at } => (at, None),
            Piece::Part {
                at,
                index,
                offset,
                bytes,
            } => (at, Some((index, offset, bytes))),
        };
        let p = &d.pending[at];
        let name = bundle_file_name(&p.header);
        let path = match part {
            None => format!("{}/{name}", bag::BUNDLES_DIR),
            Some((index, _, _)) => format!(
                "{}/{}",
                bag::PARTS_DIR,
                bag::part_file_name(&name, index, d.part_counts[at])
            ),
        };
        let dest = disc.join(&path);
        if let Some(dir) = dest.parent()
            && !dirs.iter().any(|d| d == dir)
        {
            fs::create_dir_all(dir).map_err(|e| AgentError::io(dir, e))?;
            dirs.push(dir.to_path_buf());
        }
        let mut source = File::open(&p.file.path).map_err(|e| AgentError::io(&p.file.path, e))?;
        let mut out =
            intake::create_new_file(&dest, 0o644).map_err(|e| AgentError::io(&dest, e))?;
        let expected = part.map_or(p.file.len, |(_, _, bytes)| bytes);
        let copied = match part {
            None => copy_hashing(&mut source, &mut out, expected),
            Some((_, offset, bytes)) => source
                .seek(SeekFrom::Start(offset))
                .and_then(|_| copy_hashing(&mut (&mut source).take(bytes), &mut out, bytes)),
        };
        let (bytes, hex) = copied.map_err(|e| AgentError::io(&dest, e))?;
        if bytes != expected {
            return Err(MediaError::Unfit(format!(
                "outbox file {} changed while it was written to the disc; export again",
                p.file.name
            )));
        }
        out.sync_data().map_err(|e| AgentError::io(&dest, e))?;
        total += bytes;
        sequences = (
            sequences.0.min(p.header.sequence),
            sequences.1.max(p.header.sequence),
        );
        sha256.push((hex.sha256, path.clone()));
        sha512.push((hex.sha512, path.clone()));
        blake3.push((hex.blake3, path.clone()));
        contents.push(match part {
            None => {
                bundles += 1;
                Content::Bundle {
                    path,
                    bytes,
                    bundle_id: p.header.bundle_id.clone(),
                    sequence: p.header.sequence,
                }
            }
            Some((index, offset, _)) => {
                parts += 1;
                Content::Part {
                    path,
                    bytes,
                    bundle_id: p.header.bundle_id.clone(),
                    sequence: p.header.sequence,
                    index,
                    count: d.part_counts[at],
                    offset,
                    bundle_bytes: p.file.len,
                    bundle_blake3: d.whole_blake3[at].clone(),
                    file_name: name,
                }
            }
        });
    }
    for dir in dirs.iter().rev() {
        dropfolder::fsync_dir(dir).map_err(|e| AgentError::io(dir, e))?;
    }
    let now = Utc::now();
    let oxum = bag::payload_oxum(total, contents.len());
    let info = BagInfo {
        source: format!("OneWindow {zone} zone"),
        bagging_date: now.format("%Y-%m-%d").to_string(),
        payload_oxum: oxum.clone(),
        set_id: d.set_id.to_owned(),
        disc_index: d.index,
        disc_count: d.disc_count,
        disc_id: d.disc_id.clone(),
        channel: route.channel.to_string(),
        sender: route.channel.from.to_string(),
        receiver: route.channel.to.to_string(),
        sequences,
        set_sequences: d.set_sequences,
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
        set_id: d.set_id.to_owned(),
        disc_id: d.disc_id.clone(),
        disc_index: d.index,
        disc_count: d.disc_count,
        sequences,
        set_sequences: d.set_sequences,
        bundles: bundles as u64,
        parts: parts as u64,
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
        bundles,
        parts,
        sequences,
        tagmanifest_sha256,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOM: u64 = 100 * PER_FILE_OVERHEAD;

    #[test]
    fn a_single_disc_takes_whole_bundles_until_full() {
        let sizes = [ROOM / 2, ROOM / 4, ROOM / 2];
        let discs = plan(&sizes, ROOM, false);
        assert_eq!(
            discs,
            vec![vec![Piece::Whole { at: 0 }, Piece::Whole { at: 1 }]]
        );
        // A bundle larger than the disc: nothing fits.
        assert_eq!(plan(&[ROOM * 2], ROOM, false), Vec::<Vec<Piece>>::new());
    }

    #[test]
    fn a_set_splits_only_what_no_disc_holds_and_covers_every_byte_once() {
        let sizes = [ROOM / 2, ROOM * 5 / 2, ROOM - PER_FILE_OVERHEAD, 10];
        let discs = plan(&sizes, ROOM, true);
        // The bundle that fits an empty disc is whole; the large one is in parts.
        assert!(discs.iter().flatten().any(|p| *p == Piece::Whole { at: 2 }));
        let mut covered = 0u64;
        let mut next_index = 1;
        for (disc, pieces) in discs.iter().enumerate() {
            let used: u64 = pieces
                .iter()
                .map(|p| match p {
                    Piece::Whole { at } => sizes[*at] + PER_FILE_OVERHEAD,
                    Piece::Part { bytes, .. } => bytes + PER_FILE_OVERHEAD,
                })
                .sum();
            assert!(used <= ROOM, "disc {disc} overfull");
            for p in pieces {
                if let Piece::Part {
                    at: 1,
                    index,
                    offset,
                    bytes,
                } = *p
                {
                    assert_eq!(index, next_index);
                    assert_eq!(offset, covered);
                    covered += bytes;
                    next_index += 1;
                }
            }
        }
        assert_eq!(covered, sizes[1]);
        assert!(discs.len() >= 4);
    }
}
