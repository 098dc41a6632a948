//! Error types: [`Error`] for writing, reading and proving, and [`LogVerifyError`] for what
//! verification found wrong in a log (always naming the entry or checkpoint and its line).

use std::io;
use std::path::PathBuf;

use crate::merkle::ProofError;
use crate::note::NoteError;

/// What is wrong with a ferry log on disk. Line numbers are 1-based; entry indexes 0-based.
#[derive(Debug, thiserror::Error)]
pub enum LogVerifyError {
    /// A file could not be read.
    #[error("could not read {path}: {source}; check that the path is a ferry log directory")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A line of `entries.jsonl` is not a valid entry.
    #[error(
        "entries.jsonl line {line} (entry {line_index}) is not a valid entry ({reason}): the \
         line was edited, damaged, or a crash left a torn line that is not the last one"
    , line_index = .line.saturating_sub(1))]
    EntryNotJson {
        /// Line number.
        line: u64,
        /// The parse error.
        reason: String,
    },
    /// An entry's index is not the next one.
    #[error(
        "entries.jsonl line {line} holds entry {found} where entry {expected} was expected: \
         entry {expected} was deleted, or entries were inserted or reordered at this point"
    )]
    IndexMismatch {
        /// Line number.
        line: u64,
        /// The index the line should have.
        expected: u64,
        /// The index the line has.
        found: u64,
    },
    /// An entry's `prev` is not the leaf hash of the previous line.
    #[error("entry {index} (entries.jsonl line {line}) breaks the hash chain: {hint}")]
    ChainBroken {
        /// Line number.
        line: u64,
        /// The entry whose `prev` does not match.
        index: u64,
        /// Which entry was most likely changed.
        hint: String,
    },
    /// A line of `checkpoints.jsonl` is not a checkpoint record.
    #[error(
        "checkpoints.jsonl line {line} is not a checkpoint record ({reason}): the line was \
         edited or damaged"
    )]
    CheckpointNotJson {
        /// Line number.
        line: u64,
        /// The parse error.
        reason: String,
    },
    /// A checkpoint's signed note is bad (signature, key, or format).
    #[error("checkpoint at checkpoints.jsonl line {line} (size {size}) is not valid: {source}")]
    CheckpointNote {
        /// Line number.
        line: u64,
        /// The `size` field of the record.
        size: u64,
        /// What is wrong with the note.
        source: NoteError,
    },
    /// A checkpoint record's `size` differs from the size in its signed note.
    #[error(
        "checkpoint at checkpoints.jsonl line {line} says size {record_size} but its signed \
         note says {note_size}: the record was edited"
    )]
    CheckpointSizeMismatch {
        /// Line number.
        line: u64,
        /// The record's `size` field.
        record_size: u64,
        /// The size in the signed note.
        note_size: u64,
    },
    /// A checkpoint is for another log.
    #[error(
        "checkpoint at checkpoints.jsonl line {line} is for origin {found:?}, not {expected:?}: \
         checkpoints of another log were mixed in"
    )]
    CheckpointOrigin {
        /// Line number.
        line: u64,
        /// The origin in the note.
        found: String,
        /// The origin expected.
        expected: String,
    },
    /// A checkpoint covers fewer entries than the one before it.
    #[error(
        "checkpoint at checkpoints.jsonl line {line} (size {size}) goes backwards after a \
         checkpoint of size {previous}: checkpoints were reordered or replaced"
    )]
    CheckpointBackwards {
        /// Line number.
        line: u64,
        /// Its size.
        size: u64,
        /// The size of the checkpoint before it.
        previous: u64,
    },
    /// A checkpoint's root is not the root of the entries it covers.
    #[error(
        "checkpoint at checkpoints.jsonl line {line} (size {size}) does not match the first \
         {size} entries: an entry with index in {from}..={last} was changed (with the hash \
         chain recomputed) or entries were replaced, since the checkpoint of size {from} still \
         matches"
    , last = .size.saturating_sub(1))]
    CheckpointRootMismatch {
        /// Line number.
        line: u64,
        /// Its size.
        size: u64,
        /// Size of the last checkpoint that matched (0 if none): entries before it are intact.
        from: u64,
    },
    /// A checkpoint note kept outside the log is not valid itself.
    #[error("the shipped checkpoint note is not valid: {source}")]
    ShippedNote {
        /// What is wrong with the note.
        source: NoteError,
    },
    /// A checkpoint kept outside the log (e.g. shipped to another zone) does not match it.
    #[error(
        "the shipped checkpoint of size {size} does not match this log: {reason}. The log was \
         rewritten after that checkpoint left the zone (by someone holding the signing key, or \
         the directory was replaced); treat it as a security incident"
    )]
    ShippedCheckpointMismatch {
        /// The shipped checkpoint's size.
        size: u64,
        /// What differs.
        reason: String,
    },
    /// A checkpoint covers more entries than the log has.
    #[error(
        "checkpoint at checkpoints.jsonl line {line} covers {size} entries but entries.jsonl \
         has only {entries}: entries {entries}..={last} were deleted from the end"
    , last = .size.saturating_sub(1))]
    CheckpointBeyondLog {
        /// Line number.
        line: u64,
        /// Its size.
        size: u64,
        /// How many entries the log has.
        entries: u64,
    },
}

/// Errors from writing, reading and proving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O operation failed.
    #[error("could not {action} {path}: {source}; check the path, free space and permissions")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Another process holds the log.
    #[error(
        "{path} is locked by another process: only one agent may append to a ferry log; stop \
         the other agent or give this one its own log directory"
    )]
    Locked {
        /// The locked file.
        path: PathBuf,
    },
    /// The log on disk failed verification; nothing is appended to it.
    #[error(
        "the ferry log in {dir} is damaged or was tampered with, so nothing more will be \
         appended to it: {source}. Keep the directory as evidence, have a security officer run \
         the log verification, and start the agent on a new log directory"
    )]
    Corrupt {
        /// The log directory.
        dir: PathBuf,
        /// What verification found.
        source: LogVerifyError,
    },
    /// A draft entry has a field that cannot be logged.
    #[error("invalid entry field `{field}`: {reason}")]
    InvalidEntry {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// An argument or configuration value is not usable.
    #[error("invalid argument: {reason}")]
    InvalidArgument {
        /// What is wrong.
        reason: String,
    },
    /// A previous write failed, so the in-memory state may not match the disk.
    #[error(
        "an earlier write to the ferry log in {dir} failed, so what is on disk is uncertain; \
         drop this handle and reopen the log with FerryLog::open to recover"
    )]
    Poisoned {
        /// The log directory.
        dir: PathBuf,
    },
    /// No checkpoint covers the entry or has the size asked for.
    #[error("{reason}")]
    NoCheckpoint {
        /// What was looked for and what exists.
        reason: String,
    },
    /// A signed note or checkpoint is not valid.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// A Merkle proof does not verify.
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// The log does not verify (while reading or proving).
    #[error(transparent)]
    Verify(#[from] LogVerifyError),
    /// A proof document is malformed.
    #[error("the proof document is not valid: {reason}; use the document exactly as produced")]
    ProofDoc {
        /// What is wrong.
        reason: String,
    },
    /// An entry or record could not be encoded as JSON (should not happen).
    #[error("could not encode JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
