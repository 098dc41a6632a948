//! # ow-ferrylog: the tamper-evident ferry log
//!
//! Every ferry agent appends what it queued, sent, received, landed, rejected, imported, and
//! carried on offline media to its own log directory. A security officer can later prove,
//! offline and from the files plus the agent's public key alone, what crossed, when, in which
//! direction, and that no entry was edited, deleted, reordered or inserted.
//!
//! The log is three layers:
//! 1. **Entries** ([`Entry`]): one compact JSON object per line of `entries.jsonl`. Each entry
//!    carries `prev`, the leaf hash of the line before it, so a verifier can name the exact
//!    entry where the chain breaks.
//! 2. **A Merkle tree** ([`merkle`]) over the lines, RFC 9162 / RFC 6962 style, so one entry
//!    can be proven to be in the log ([`prove_inclusion`]) and an older state of the log can be
//!    proven to be a prefix of a newer one ([`prove_consistency`]).
//! 3. **Signed checkpoints** ([`note`]): C2SP tlog-checkpoints in C2SP signed notes (Ed25519)
//!    in `checkpoints.jsonl`, written every `checkpoint_every` entries and on close. Shipped
//!    across the gap to another zone, they stop even the agent itself from quietly rewriting
//!    what it already logged.
//!
//! Entries never contain personal data: only ids, hashes, sizes and codes (see [`entry`]).
//! The file formats are documented in `docs/ferry-log.md`.
//!
//! ```no_run
//! # fn main() -> Result<(), ow_ferrylog::Error> {
//! use ow_ferrylog::{EntryDraft, Event, FerryLog, LogConfig, verify_log};
//! # let signing_key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
//! let config = LogConfig::for_agent("extranet-rx", signing_key.clone());
//! let mut log = FerryLog::open("/var/lib/onewindow/ferry-log/extranet-rx", config)?;
//! let mut draft = EntryDraft::new(chrono::Utc::now(), "extranet-rx", Event::Received);
//! draft.channel = Some("internet-to-extranet".into());
//! draft.bundle_id = Some("0193f5c2-7d7e-7a40-9c55-3e1f2b1d0a11".into());
//! draft.bytes = 4096;
//! log.append(draft)?;
//! log.sync()?;
//! log.close()?;
//! let report = verify_log(
//!     "/var/lib/onewindow/ferry-log/extranet-rx",
//!     &signing_key.verifying_key(),
//!     "onewindow.example/ferry/extranet-rx",
//! )?;
//! assert_eq!(report.unsigned_tail, 0);
//! # Ok(()) }
//! ```

pub mod entry;
pub mod error;
pub mod log;
pub mod merkle;
pub mod note;
pub mod proof;
pub mod store;
pub mod verify;

pub use entry::{Entry, EntryDraft, Event, Filter};
pub use error::{Error, LogVerifyError, Result};
pub use log::{DEFAULT_CHECKPOINT_EVERY, FerryLog, LogConfig};
pub use merkle::{Hash, ProofError};
pub use note::{
    Checkpoint, NoteError, key_hash, open_checkpoint, parse_checkpoint_note, sign_checkpoint,
    verifier_key_string, verify_note,
};
pub use proof::{
    ConsistencyProofDoc, InclusionProofDoc, VerifiedInclusion, prove_consistency, prove_inclusion,
    verify_consistency_proof, verify_inclusion_proof,
};
pub use store::{CHECKPOINTS_FILE, CheckpointRecord, ENTRIES_FILE, read_entries};
pub use verify::{LogReport, check_shipped_checkpoint, verify_log};
