//! Offline verification of a whole log directory, from the files and the agent's public key.

use std::path::Path;

use ed25519_dalek::VerifyingKey;
use serde::Serialize;

use crate::error::LogVerifyError;
use crate::merkle::Frontier;
use crate::note::{Checkpoint, open_checkpoint};
use crate::store::full_check;

/// What [`verify_log`] established.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogReport {
    /// The origin named by the checkpoints (`None` if there is no checkpoint).
    pub origin: Option<String>,
    /// Number of entries (complete lines) in `entries.jsonl`.
    pub entries: u64,
    /// Number of checkpoints, all signed by the given key.
    pub checkpoints: u64,
    /// Size of the latest checkpoint (0 if none).
    pub last_checkpoint_size: u64,
    /// Entries after the latest checkpoint. They are hash-chained but not yet signed: an
    /// attacker could remove or rewrite them without detection until the next checkpoint.
    pub unsigned_tail: u64,
    /// Merkle root (hex) of all entries.
    pub root: String,
    /// Bytes of an unterminated last line of `entries.jsonl` (a crash mid-append; not an entry,
    /// the agent truncates it on its next start). 0 normally.
    pub torn_tail_bytes: u64,
}

/// Verifies the log in `dir` offline: every entry parses, indexes run 0, 1, 2, … without gaps,
/// each `prev` is the leaf hash of the line before, every checkpoint note is signed by
/// (`key_name`, `key`), all checkpoints have the same origin, sizes never go backwards, no
/// checkpoint covers more entries than exist, and each checkpoint's root equals the Merkle
/// root of the first `size` entries.
///
/// The error names the first problem by entry index and line number, or by checkpoint line.
pub fn verify_log(
    dir: impl AsRef<Path>,
    key: &VerifyingKey,
    key_name: &str,
) -> Result<LogReport, LogVerifyError> {
    let dir = dir.as_ref();
    let entries_path = dir.join(crate::store::ENTRIES_FILE);
    if !entries_path.exists() {
        return Err(LogVerifyError::Io {
            path: entries_path,
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no entries.jsonl: is this a ferry log directory?",
            ),
        });
    }
    let check = full_check(dir, Some((key, key_name)), None, |_, _, _| {})?;
    let last_checkpoint_size = check.checkpoints.last().map_or(0, |c| c.checkpoint.size);
    let report = LogReport {
        origin: check.origin,
        entries: check.entries.count,
        checkpoints: check.checkpoints.len() as u64,
        last_checkpoint_size,
        unsigned_tail: check.entries.count - last_checkpoint_size,
        root: hex::encode(check.frontier.root()),
        torn_tail_bytes: check.entries.torn_tail.map_or(0, |t| t.len),
    };
    tracing::info!(
        dir = %dir.display(),
        entries = report.entries,
        checkpoints = report.checkpoints,
        unsigned_tail = report.unsigned_tail,
        "ferry log verified"
    );
    Ok(report)
}

/// Checks the log in `dir` against a checkpoint note kept outside it — typically one shipped
/// across the gap to another zone (or printed, or archived) when it was written.
///
/// The note must be signed by (`key_name`, `key`), and the first `size` entries of the log must
/// have exactly its root. This is the defence against a rewrite by someone holding the signing
/// key: they can re-sign the local checkpoints, but not the copies already in another zone.
/// The whole log is verified first, as by [`verify_log`].
pub fn check_shipped_checkpoint(
    dir: impl AsRef<Path>,
    note: &str,
    key: &VerifyingKey,
    key_name: &str,
) -> Result<Checkpoint, LogVerifyError> {
    let dir = dir.as_ref();
    let shipped = open_checkpoint(note, key, key_name)
        .map_err(|source| LogVerifyError::ShippedNote { source })?;
    let mismatch = |reason: String| LogVerifyError::ShippedCheckpointMismatch {
        size: shipped.size,
        reason,
    };
    let mut frontier = Frontier::new();
    let mut root_at_size = (shipped.size == 0).then(|| frontier.root());
    let check = full_check(dir, Some((key, key_name)), None, |_, _, leaf| {
        frontier.push(leaf);
        if frontier.size() == shipped.size {
            root_at_size = Some(frontier.root());
        }
    })?;
    if let Some(origin) = &check.origin
        && *origin != shipped.origin
    {
        return Err(mismatch(format!(
            "it is for origin {:?} but the log's checkpoints are for {origin:?}",
            shipped.origin
        )));
    }
    match root_at_size {
        None => Err(mismatch(format!(
            "the log has only {} entries: entries were removed from its end",
            check.entries.count
        ))),
        Some(root) if root != shipped.root => Err(mismatch(format!(
            "the first {} entries have root {} but the shipped checkpoint says {}",
            shipped.size,
            hex::encode(root),
            shipped.root_hex()
        ))),
        Some(_) => Ok(shipped),
    }
}
