//! [`FerryLog`]: the appender a ferry agent keeps open for its whole life.
//!
//! Appends are buffered and hashed incrementally (one SHA-256 of the line plus amortised
//! `O(1)` node hashes on the Merkle frontier); nothing is fsynced until [`FerryLog::sync`],
//! [`FerryLog::checkpoint`] or [`FerryLog::close`], so callers group-commit: many appends, one
//! sync. Every `checkpoint_every` entries a signed checkpoint is written automatically.
//!
//! On open, the whole log on disk is re-read and verified (entries, hash chain, checkpoint
//! signatures and roots); a damaged log is refused. An unterminated last line — a crash in the
//! middle of an append — is truncated with a warning; any other damage is an error.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::entry::EntryDraft;
use crate::error::{Error, Result};
use crate::merkle::{Frontier, Hash};
use crate::note::{Checkpoint, sign_checkpoint, validate_key_name, validate_origin};
use crate::store::{CHECKPOINTS_FILE, CheckpointRecord, ENTRIES_FILE, TornTail, full_check};

/// Default number of entries between automatic checkpoints.
pub const DEFAULT_CHECKPOINT_EVERY: u64 = 1000;

/// The origin prefix of OneWindow ferry logs; the agent name follows.
pub const ORIGIN_PREFIX: &str = "onewindow.example/ferry/";

/// How to open a ferry log.
pub struct LogConfig {
    /// The checkpoint origin line, e.g. `onewindow.example/ferry/extranet-rx`.
    pub origin: String,
    /// The signing key's name in checkpoint notes (often the same as the origin).
    pub key_name: String,
    /// The agent's Ed25519 signing key.
    pub signing_key: SigningKey,
    /// Write a checkpoint automatically after this many new entries (0: only on request).
    pub checkpoint_every: u64,
}

impl LogConfig {
    /// A configuration with the default checkpoint interval.
    pub fn new(
        origin: impl Into<String>,
        key_name: impl Into<String>,
        signing_key: SigningKey,
    ) -> Self {
        LogConfig {
            origin: origin.into(),
            key_name: key_name.into(),
            signing_key,
            checkpoint_every: DEFAULT_CHECKPOINT_EVERY,
        }
    }

    /// The usual configuration for agent `agent`: origin and key name
    /// `onewindow.example/ferry/<agent>`, default checkpoint interval.
    pub fn for_agent(agent: &str, signing_key: SigningKey) -> Self {
        let origin = format!("{ORIGIN_PREFIX}{agent}");
        Self::new(origin.clone(), origin, signing_key)
    }
}

impl std::fmt::Debug for LogConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogConfig")
            .field("origin", &self.origin)
            .field("key_name", &self.key_name)
            .field(
                "verifying_key",
                &hex::encode(self.signing_key.verifying_key().as_bytes()),
            )
            .field("checkpoint_every", &self.checkpoint_every)
            .finish_non_exhaustive()
    }
}

/// An open, verified, append-only ferry log. One process at a time (an exclusive file lock is
/// held on `entries.jsonl`).
pub struct FerryLog {
    dir: PathBuf,
    config: LogConfig,
    entries: BufWriter<File>,
    checkpoints: File,
    frontier: Frontier,
    last_leaf: Hash,
    last_time: Option<DateTime<Utc>>,
    last_checkpoint_size: u64,
    line: Vec<u8>,
    poisoned: bool,
}

impl std::fmt::Debug for FerryLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FerryLog")
            .field("dir", &self.dir)
            .field("config", &self.config)
            .field("size", &self.frontier.size())
            .field("last_checkpoint_size", &self.last_checkpoint_size)
            .finish_non_exhaustive()
    }
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

fn open_append(path: &Path) -> Result<(File, bool)> {
    let existed = path.exists();
    let f = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(io_err("open", path))?;
    Ok((f, !existed))
}

fn truncate_torn(file: &File, path: &Path, torn: TornTail) -> Result<()> {
    tracing::warn!(
        path = %path.display(),
        offset = torn.offset,
        bytes = torn.len,
        "truncating a torn last line left by an interrupted append"
    );
    file.set_len(torn.offset)
        .map_err(io_err("truncate the torn last line of", path))?;
    file.sync_all().map_err(io_err("sync", path))
}

impl FerryLog {
    /// Creates the log in `dir`, or reopens and verifies it.
    ///
    /// On reopen every entry is re-read: the index sequence, the hash chain and every
    /// checkpoint (signature by this key, origin, root) must verify, or [`Error::Corrupt`] is
    /// returned naming the entry or checkpoint. A torn last line (no newline) is truncated and
    /// a warning is logged.
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<FerryLog> {
        let dir = dir.as_ref().to_owned();
        validate_origin(&config.origin)?;
        validate_key_name(&config.key_name)?;
        std::fs::create_dir_all(&dir).map_err(io_err("create the log directory", &dir))?;

        let entries_path = dir.join(ENTRIES_FILE);
        let checkpoints_path = dir.join(CHECKPOINTS_FILE);
        let (entries_file, created_entries) = open_append(&entries_path)?;
        match entries_file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(Error::Locked { path: entries_path });
            }
            Err(TryLockError::Error(e)) => return Err(io_err("lock", &entries_path)(e)),
        }
        let (checkpoints_file, created_checkpoints) = open_append(&checkpoints_path)?;
        if created_entries || created_checkpoints {
            // Make the new directory entries durable.
            if let Ok(d) = File::open(&dir) {
                d.sync_all().map_err(io_err("sync", &dir))?;
            }
        }

        let verifying_key = config.signing_key.verifying_key();
        let check = full_check(
            &dir,
            Some((&verifying_key, &config.key_name)),
            Some(&config.origin),
            |_, _, _| {},
        )
        .map_err(|source| Error::Corrupt {
            dir: dir.clone(),
            source,
        })?;
        if let Some(t) = check.entries.torn_tail {
            truncate_torn(&entries_file, &entries_path, t)?;
        }
        if let Some(t) = check.checkpoints_torn {
            truncate_torn(&checkpoints_file, &checkpoints_path, t)?;
        }
        let last_checkpoint_size = check.checkpoints.last().map_or(0, |c| c.checkpoint.size);
        tracing::info!(
            dir = %dir.display(),
            entries = check.entries.count,
            checkpoints = check.checkpoints.len(),
            last_checkpoint_size,
            "ferry log opened and verified"
        );
        Ok(FerryLog {
            dir,
            config,
            entries: BufWriter::with_capacity(64 * 1024, entries_file),
            checkpoints: checkpoints_file,
            frontier: check.frontier,
            last_leaf: check.entries.last_leaf,
            last_time: check.entries.last_time,
            last_checkpoint_size,
            line: Vec::with_capacity(1024),
            poisoned: false,
        })
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The checkpoint origin.
    pub fn origin(&self) -> &str {
        &self.config.origin
    }

    /// The key name used in checkpoint notes.
    pub fn key_name(&self) -> &str {
        &self.config.key_name
    }

    /// The public key that verifies this log's checkpoints.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.config.signing_key.verifying_key()
    }

    /// Number of entries (the index the next entry will get).
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// The Merkle root of all entries appended so far (including unsynced ones).
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// Size of the latest signed checkpoint.
    pub fn last_checkpoint_size(&self) -> u64 {
        self.last_checkpoint_size
    }

    fn check_poison(&self) -> Result<()> {
        if self.poisoned {
            Err(Error::Poisoned {
                dir: self.dir.clone(),
            })
        } else {
            Ok(())
        }
    }

    /// Appends an entry (buffered, not yet durable: call [`FerryLog::sync`]) and returns its
    /// index. Writes a signed checkpoint (with a sync) every `checkpoint_every` entries.
    ///
    /// An invalid draft is refused without touching the log. If a write fails (including the
    /// automatic checkpoint), the handle is poisoned: whether the entry reached the disk is
    /// unknown, so drop the handle and reopen the log.
    pub fn append(&mut self, draft: EntryDraft) -> Result<u64> {
        self.check_poison()?;
        draft.validate()?;
        let index = self.frontier.size();
        let entry = draft.into_entry(index, &self.last_leaf);
        self.line.clear();
        serde_json::to_writer(&mut self.line, &entry)?;
        let leaf = crate::merkle::leaf_hash(&self.line);
        self.line.push(b'\n');
        if let Err(e) = self.entries.write_all(&self.line) {
            self.poisoned = true;
            return Err(io_err("append to", &self.dir.join(ENTRIES_FILE))(e));
        }
        self.frontier.push(leaf);
        self.last_leaf = leaf;
        self.last_time = Some(entry.time);
        let every = self.config.checkpoint_every;
        if every > 0 && self.frontier.size() - self.last_checkpoint_size >= every {
            self.checkpoint()?;
        }
        Ok(index)
    }

    /// Flushes buffered entries and fsyncs `entries.jsonl`.
    pub fn sync(&mut self) -> Result<()> {
        self.check_poison()?;
        let path = self.dir.join(ENTRIES_FILE);
        let res = self
            .entries
            .flush()
            .and_then(|()| self.entries.get_ref().sync_data());
        if let Err(e) = res {
            self.poisoned = true;
            return Err(io_err("flush and sync", &path)(e));
        }
        Ok(())
    }

    /// Syncs the entries, then, if entries were added since the last checkpoint, signs a
    /// checkpoint of the current tree, appends it to `checkpoints.jsonl` and syncs it.
    /// Returns the new checkpoint, or `None` if there was nothing new to sign.
    pub fn checkpoint(&mut self) -> Result<Option<Checkpoint>> {
        self.sync()?;
        let size = self.frontier.size();
        if size == 0 || size == self.last_checkpoint_size {
            return Ok(None);
        }
        let checkpoint = Checkpoint {
            origin: self.config.origin.clone(),
            size,
            root: self.frontier.root(),
        };
        let note = sign_checkpoint(&checkpoint, &self.config.key_name, &self.config.signing_key)?;
        let record = CheckpointRecord {
            size,
            time: self.last_time.unwrap_or(DateTime::UNIX_EPOCH),
            note,
        };
        let mut line = serde_json::to_vec(&record)?;
        line.push(b'\n');
        let path = self.dir.join(CHECKPOINTS_FILE);
        let res = self
            .checkpoints
            .write_all(&line)
            .and_then(|()| self.checkpoints.sync_data());
        if let Err(e) = res {
            self.poisoned = true;
            return Err(io_err("write a checkpoint to", &path)(e));
        }
        self.last_checkpoint_size = size;
        tracing::debug!(
            dir = %self.dir.display(),
            size,
            root = %checkpoint.root_hex(),
            "ferry log checkpoint signed"
        );
        Ok(Some(checkpoint))
    }

    /// Writes a final checkpoint (if anything is new) and syncs. Agents call this on shutdown.
    pub fn close(mut self) -> Result<()> {
        self.checkpoint()?;
        tracing::info!(
            dir = %self.dir.display(),
            entries = self.frontier.size(),
            "ferry log closed"
        );
        Ok(())
    }
}
