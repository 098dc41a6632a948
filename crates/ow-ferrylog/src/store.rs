//! The on-disk layout of a log directory and the streaming checks shared by
//! [`FerryLog::open`](crate::FerryLog::open), [`verify_log`](crate::verify_log) and the proof
//! builders.
//!
//! A log is a directory with two append-only files:
//! - `entries.jsonl`: one [`Entry`] per line;
//! - `checkpoints.jsonl`: one [`CheckpointRecord`] per line.
//!
//! Reading is streaming: only the Merkle frontier (and, when building a proof, the leaf hashes)
//! is kept in memory.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::entry::Entry;
use crate::error::{Error, LogVerifyError};
use crate::merkle::{Frontier, Hash, leaf_hash};
use crate::note::{Checkpoint, open_checkpoint, parse_checkpoint_note};

/// File name of the entries inside a log directory.
pub const ENTRIES_FILE: &str = "entries.jsonl";
/// File name of the checkpoints inside a log directory.
pub const CHECKPOINTS_FILE: &str = "checkpoints.jsonl";

/// One line of `checkpoints.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRecord {
    /// Number of entries covered (repeats the size inside the note, for quick reading).
    pub size: u64,
    /// Time of the last entry covered (not signed; the library never reads the clock).
    #[serde(with = "crate::entry::time_ms")]
    pub time: DateTime<Utc>,
    /// The signed checkpoint note (C2SP tlog-checkpoint in a signed note).
    pub note: String,
}

/// An unterminated final line (a crash in the middle of an append).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TornTail {
    /// Byte offset where the torn line starts (the length to truncate the file to).
    pub offset: u64,
    /// Its length in bytes.
    pub len: u64,
}

/// Reads a file line by line, keeping line numbers and detecting an unterminated last line.
pub(crate) struct LineReader {
    reader: BufReader<File>,
    path: PathBuf,
    buf: Vec<u8>,
    line: u64,
    offset: u64,
}

/// What [`LineReader::next_line`] found.
pub(crate) enum Line<'a> {
    /// A complete line (without its newline), its 1-based number.
    Full(u64, &'a [u8]),
    /// An unterminated last line.
    Torn(TornTail),
    /// End of file.
    End,
}

impl LineReader {
    /// Opens `path`; `Ok(None)` if it does not exist.
    pub(crate) fn open(path: &Path) -> Result<Option<Self>, LogVerifyError> {
        match File::open(path) {
            Ok(f) => Ok(Some(LineReader {
                reader: BufReader::with_capacity(256 * 1024, f),
                path: path.to_owned(),
                buf: Vec::new(),
                line: 0,
                offset: 0,
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(LogVerifyError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }

    pub(crate) fn next_line(&mut self) -> Result<Line<'_>, LogVerifyError> {
        self.buf.clear();
        let n = self
            .reader
            .read_until(b'\n', &mut self.buf)
            .map_err(|source| LogVerifyError::Io {
                path: self.path.clone(),
                source,
            })?;
        if n == 0 {
            return Ok(Line::End);
        }
        let start = self.offset;
        self.offset += n as u64;
        match self.buf.strip_suffix(b"\n") {
            Some(line) => {
                self.line += 1;
                Ok(Line::Full(self.line, line))
            }
            None => Ok(Line::Torn(TornTail {
                offset: start,
                len: n as u64,
            })),
        }
    }
}

/// What a successful scan of `entries.jsonl` found.
#[derive(Debug, Clone)]
pub(crate) struct EntriesSummary {
    /// Number of complete entries.
    pub count: u64,
    /// Leaf hash of the last entry (zeros if none).
    pub last_leaf: Hash,
    /// Time of the last entry.
    pub last_time: Option<DateTime<Utc>>,
    /// A torn last line, if any (not counted).
    pub torn_tail: Option<TornTail>,
}

/// Streams `entries.jsonl`, checking JSON, index sequence and the `prev` chain, and calls
/// `visit(line_number, line_bytes, entry, leaf_hash)` for every valid entry. A missing file is
/// an empty log.
pub(crate) fn scan_entries(
    dir: &Path,
    mut visit: impl FnMut(u64, &[u8], &Entry, Hash) -> Result<(), LogVerifyError>,
) -> Result<EntriesSummary, LogVerifyError> {
    let mut summary = EntriesSummary {
        count: 0,
        last_leaf: [0u8; 32],
        last_time: None,
        torn_tail: None,
    };
    let Some(mut reader) = LineReader::open(&dir.join(ENTRIES_FILE))? else {
        return Ok(summary);
    };
    loop {
        let (line_no, bytes) = match reader.next_line()? {
            Line::End => break,
            Line::Torn(t) => {
                summary.torn_tail = Some(t);
                break;
            }
            Line::Full(n, b) => (n, b),
        };
        let entry: Entry =
            serde_json::from_slice(bytes).map_err(|e| LogVerifyError::EntryNotJson {
                line: line_no,
                reason: e.to_string(),
            })?;
        let expected = summary.count;
        if entry.index != expected {
            return Err(LogVerifyError::IndexMismatch {
                line: line_no,
                expected,
                found: entry.index,
            });
        }
        if entry.prev_hash() != Some(summary.last_leaf) {
            let hint = if expected == 0 {
                "the first entry's prev must be 64 zeros; entries were removed from the start \
                 or the prev field was changed"
                    .to_owned()
            } else {
                format!(
                    "its prev is not the hash of entry {prev} (line {prev_line}): entry {prev} \
                     was edited, or this entry's prev field was changed",
                    prev = expected - 1,
                    prev_line = line_no - 1
                )
            };
            return Err(LogVerifyError::ChainBroken {
                line: line_no,
                index: entry.index,
                hint,
            });
        }
        let leaf = leaf_hash(bytes);
        visit(line_no, bytes, &entry, leaf)?;
        summary.count += 1;
        summary.last_leaf = leaf;
        summary.last_time = Some(entry.time);
    }
    Ok(summary)
}

/// Checkpoint records with their line numbers, and a torn last line if any.
pub(crate) type CheckpointRecords = (Vec<(u64, CheckpointRecord)>, Option<TornTail>);

/// Reads `checkpoints.jsonl`: each record with its line number, plus a torn last line if any.
pub(crate) fn read_checkpoint_records(dir: &Path) -> Result<CheckpointRecords, LogVerifyError> {
    let mut out = Vec::new();
    let Some(mut reader) = LineReader::open(&dir.join(CHECKPOINTS_FILE))? else {
        return Ok((out, None));
    };
    loop {
        match reader.next_line()? {
            Line::End => return Ok((out, None)),
            Line::Torn(t) => return Ok((out, Some(t))),
            Line::Full(line, bytes) => {
                let rec: CheckpointRecord = serde_json::from_slice(bytes).map_err(|e| {
                    LogVerifyError::CheckpointNotJson {
                        line,
                        reason: e.to_string(),
                    }
                })?;
                out.push((line, rec));
            }
        }
    }
}

/// A checkpoint record whose note was parsed (and, when a key was given, verified).
#[derive(Debug, Clone)]
pub(crate) struct CheckedCheckpoint {
    pub line: u64,
    pub record: CheckpointRecord,
    pub checkpoint: Checkpoint,
}

/// The result of a full check of a log directory.
#[derive(Debug, Clone)]
pub(crate) struct FullCheck {
    pub entries: EntriesSummary,
    pub frontier: Frontier,
    pub checkpoints: Vec<CheckedCheckpoint>,
    pub checkpoints_torn: Option<TornTail>,
    pub origin: Option<String>,
}

/// Checks a whole log: every checkpoint note (signature when `key` is given, format,
/// origin, order), every entry (JSON, index, chain), and every checkpoint root against the
/// tree of the entries it covers. `on_entry(line_bytes, entry, leaf_hash)` sees every entry
/// that passed the entry checks.
pub(crate) fn full_check(
    dir: &Path,
    key: Option<(&VerifyingKey, &str)>,
    expected_origin: Option<&str>,
    mut on_entry: impl FnMut(&[u8], &Entry, Hash),
) -> Result<FullCheck, LogVerifyError> {
    let (records, checkpoints_torn) = read_checkpoint_records(dir)?;
    let checkpoints = check_checkpoint_notes(records, key, expected_origin)?;
    let origin = checkpoints
        .first()
        .map(|c| c.checkpoint.origin.clone())
        .or_else(|| expected_origin.map(str::to_owned));

    let mut frontier = Frontier::new();
    let mut next = 0usize;
    let mut last_ok = 0u64;
    // Checkpoints of the empty tree (size 0) are checked before any entry.
    check_roots_at(&frontier, &checkpoints, &mut next, &mut last_ok)?;
    let entries = scan_entries(dir, |_, bytes, entry, leaf| {
        on_entry(bytes, entry, leaf);
        frontier.push(leaf);
        check_roots_at(&frontier, &checkpoints, &mut next, &mut last_ok)
    })?;
    if let Some(c) = checkpoints.get(next) {
        return Err(LogVerifyError::CheckpointBeyondLog {
            line: c.line,
            size: c.checkpoint.size,
            entries: entries.count,
        });
    }
    Ok(FullCheck {
        entries,
        frontier,
        checkpoints,
        checkpoints_torn,
        origin,
    })
}

fn check_roots_at(
    frontier: &Frontier,
    checkpoints: &[CheckedCheckpoint],
    next: &mut usize,
    last_ok: &mut u64,
) -> Result<(), LogVerifyError> {
    while let Some(c) = checkpoints.get(*next) {
        if c.checkpoint.size != frontier.size() {
            break;
        }
        if c.checkpoint.root != frontier.root() {
            return Err(LogVerifyError::CheckpointRootMismatch {
                line: c.line,
                size: c.checkpoint.size,
                from: *last_ok,
            });
        }
        *last_ok = c.checkpoint.size;
        *next += 1;
    }
    Ok(())
}

/// Parses (and with a key, verifies) every checkpoint note, and checks sizes, origin and order.
pub(crate) fn check_checkpoint_notes(
    records: Vec<(u64, CheckpointRecord)>,
    key: Option<(&VerifyingKey, &str)>,
    expected_origin: Option<&str>,
) -> Result<Vec<CheckedCheckpoint>, LogVerifyError> {
    let mut out: Vec<CheckedCheckpoint> = Vec::with_capacity(records.len());
    let mut origin: Option<String> = expected_origin.map(str::to_owned);
    for (line, record) in records {
        let parsed = match key {
            Some((k, name)) => open_checkpoint(&record.note, k, name),
            None => parse_checkpoint_note(&record.note),
        };
        let checkpoint = parsed.map_err(|source| LogVerifyError::CheckpointNote {
            line,
            size: record.size,
            source,
        })?;
        if checkpoint.size != record.size {
            return Err(LogVerifyError::CheckpointSizeMismatch {
                line,
                record_size: record.size,
                note_size: checkpoint.size,
            });
        }
        match &origin {
            Some(o) if *o != checkpoint.origin => {
                return Err(LogVerifyError::CheckpointOrigin {
                    line,
                    found: checkpoint.origin,
                    expected: o.clone(),
                });
            }
            Some(_) => {}
            None => origin = Some(checkpoint.origin.clone()),
        }
        if let Some(prev) = out.last()
            && checkpoint.size < prev.checkpoint.size
        {
            return Err(LogVerifyError::CheckpointBackwards {
                line,
                size: checkpoint.size,
                previous: prev.checkpoint.size,
            });
        }
        out.push(CheckedCheckpoint {
            line,
            record,
            checkpoint,
        });
    }
    Ok(out)
}

/// Reads every complete entry of the log in `dir` (a torn last line is skipped).
///
/// This only parses: it does not check the index sequence, the hash chain or the checkpoints.
/// Run [`verify_log`](crate::verify_log) first when the result must be trusted.
pub fn read_entries(dir: impl AsRef<Path>) -> Result<Vec<Entry>, Error> {
    let dir = dir.as_ref();
    let path = dir.join(ENTRIES_FILE);
    let mut reader = LineReader::open(&path)?.ok_or_else(|| Error::Io {
        action: "open",
        path: path.clone(),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no entries.jsonl: is this a ferry log directory?",
        ),
    })?;
    let mut out = Vec::new();
    loop {
        match reader.next_line()? {
            Line::End | Line::Torn(_) => return Ok(out),
            Line::Full(line, bytes) => {
                let e: Entry =
                    serde_json::from_slice(bytes).map_err(|e| LogVerifyError::EntryNotJson {
                        line,
                        reason: e.to_string(),
                    })?;
                out.push(e);
            }
        }
    }
}
