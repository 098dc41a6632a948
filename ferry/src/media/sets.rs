//! Sets of discs on import: a disc must agree with the discs of its set already imported, a
//! strict-order route takes a set only after the sequences before it, and the parts of split
//! bundles are held (private, beside the route's staging) until every part of a bundle has
//! come, then reassembled and checked against the size and BLAKE3 every part names
//! (`docs/offline-media.md`, "Sets and split bundles").

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use super::bag::{self, Content};
use super::import::ImportContext;
use super::signed::MediaManifest;
use super::{MediaError, MediaRoute};
use crate::AgentError;
use crate::dropfolder;
use crate::intake;

/// Where the parts of a set's split bundles are held until every part has come.
pub(super) fn set_folder(ctx: &ImportContext<'_>, route: &MediaRoute, set_id: &str) -> PathBuf {
    ctx.staging_root
        .join(&route.name)
        .join(format!("set-{set_id}"))
}

/// A disc must agree with the discs of its set imported before: the same count and channel, and
/// its place not taken by another disc.
pub(super) async fn check_set(
    ctx: &ImportContext<'_>,
    manifest: &MediaManifest,
) -> Result<(), MediaError> {
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
pub(super) async fn check_order(
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
pub(super) struct HeldPart {
    pub(super) part_name: String,
    pub(super) bundle_id: String,
    pub(super) sequence: u64,
    pub(super) index: u32,
    pub(super) count: u32,
    pub(super) offset: u64,
    pub(super) bytes: u64,
    pub(super) bundle_bytes: u64,
    pub(super) bundle_blake3: String,
    pub(super) file_name: String,
}

impl HeldPart {
    /// What every part of one bundle must agree on.
    pub(super) fn whole(&self) -> (u64, u32, u64, &str, &str) {
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
pub(super) const HELD_SUFFIX: &str = ".json";

/// The parts held for a set, by bundle id. A part is moved in before its record, so a record
/// names a part whose bytes are there.
pub(super) fn held_parts(set_dir: &Path) -> Result<BTreeMap<String, Vec<HeldPart>>, MediaError> {
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
pub(super) fn check_part(
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

/// Reassembles, into `dest`, every split bundle of the set whose parts are all held: the parts
/// in order, each where its offset says, the whole of the size and BLAKE3 every part names.
/// Held parts of bundles that have landed are removed. Returns the reassembled file names and the
/// number of split bundles still waiting for parts.
pub(super) async fn assemble_ready(
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

pub(super) fn held_damaged(path: &Path) -> MediaError {
    MediaError::Unfit(format!(
        "the held parts in {} no longer match what their discs signed (the ferry's private \
         storage was damaged); move that folder aside and import the set's discs again",
        path.display()
    ))
}

pub(super) fn remove_held(set_dir: &Path, parts: &[HeldPart]) {
    for part in parts {
        let _ = fs::remove_file(set_dir.join(format!("{}{HELD_SUFFIX}", part.part_name)));
        let _ = fs::remove_file(set_dir.join(&part.part_name));
    }
}

/// The set's discs not yet imported (the current one counts as imported).
pub(super) async fn missing_discs(
    ctx: &ImportContext<'_>,
    m: &MediaManifest,
) -> Result<Vec<u32>, MediaError> {
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
