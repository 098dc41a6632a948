//! Importing bundles from the inbox folders: only what the ferry agent landed, verified again,
//! items streamed to private staging files, exactly once, and never letting one bundle stop the
//! channel.

use std::fs;
use std::future::Future;
use std::io::{self, Read as _, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use ow_bundle::{
    Channel, EncryptionSecret, Header, ItemInfo, ItemSink, TrustStore, VerifyOptions, Zone,
};
use ow_ferrylog::Event;
use ow_store::Store;
use sqlx::{Any, Transaction};
use tracing::{info, warn};

use crate::deadletter::{DEAD, DeadLetter, Direction};
use crate::error::FailureClass;
use crate::exchange::{FaultPoint, LogLine, create_private, private_dir};
use crate::pack::clip;
use crate::{
    Envelope, Exchange, ExchangeError, MAX_FILE_BYTES, MAX_MESSAGE_BYTES, MESSAGE_ITEM, Message,
};

/// Where bundles set aside are moved, inside each inbox folder.
pub(crate) const SET_ASIDE_DIR: &str = ".rejected";

/// A file that came with a message: staged on disk (0600, in the exchange's private staging
/// folder) while its message is imported, or held in memory when built by a test or a tool.
#[derive(Clone)]
pub struct InboundFile {
    /// Its item name in the bundle.
    pub item: String,
    /// Its media type as declared in the (verified) header.
    pub media_type: String,
    size: u64,
    blake3: String,
    content: Content,
}

#[derive(Clone)]
enum Content {
    Memory(Arc<[u8]>),
    Staged(PathBuf),
}

impl std::fmt::Debug for InboundFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundFile")
            .field("item", &self.item)
            .field("media_type", &self.media_type)
            .field("len", &self.size)
            .finish()
    }
}

impl InboundFile {
    /// A file held in memory (tests, tools that re-import a message).
    pub fn from_bytes(
        item: impl Into<String>,
        media_type: impl Into<String>,
        bytes: Vec<u8>,
    ) -> Self {
        InboundFile {
            item: item.into(),
            media_type: media_type.into(),
            size: u64::try_from(bytes.len()).unwrap_or(u64::MAX),
            blake3: blake3::hash(&bytes).to_hex().to_string(),
            content: Content::Memory(bytes.into()),
        }
    }

    fn staged(info: &ItemInfo, path: PathBuf) -> Self {
        InboundFile {
            item: info.name.clone(),
            media_type: info.media_type.clone(),
            size: info.size,
            blake3: info.blake3.to_hex(),
            content: Content::Staged(path),
        }
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// BLAKE3 of its bytes, lowercase hex (checked by bundle verification).
    pub fn blake3_hex(&self) -> &str {
        &self.blake3
    }

    /// Its bytes. Reads the staged file (at most the contract's [`MAX_FILE_BYTES`]); call
    /// from a blocking thread, or use [`InboundFile::read_async`].
    pub fn read(&self) -> Result<Vec<u8>, ExchangeError> {
        match &self.content {
            Content::Memory(bytes) => Ok(bytes.to_vec()),
            Content::Staged(path) => {
                let file = fs::File::open(path).map_err(|e| ExchangeError::io(path, e))?;
                let mut out = Vec::new();
                file.take(MAX_FILE_BYTES + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| ExchangeError::io(path, e))?;
                Ok(out)
            }
        }
    }

    /// Its bytes, read on a blocking thread.
    pub async fn read_async(&self) -> Result<Vec<u8>, ExchangeError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.read())
            .await
            .map_err(|e| ExchangeError::Handler(format!("reading a file failed: {e}")))?
    }

    /// Its first `n` bytes (enough to tell a file type by its magic bytes).
    pub fn head(&self, n: usize) -> Result<Vec<u8>, ExchangeError> {
        match &self.content {
            Content::Memory(bytes) => Ok(bytes[..bytes.len().min(n)].to_vec()),
            Content::Staged(path) => {
                let file = fs::File::open(path).map_err(|e| ExchangeError::io(path, e))?;
                let mut out = Vec::with_capacity(n);
                file.take(u64::try_from(n).unwrap_or(u64::MAX))
                    .read_to_end(&mut out)
                    .map_err(|e| ExchangeError::io(path, e))?;
                Ok(out)
            }
        }
    }
}

/// A verified message taken from the inbox, handed to the zone's [`ImportHandler`].
#[derive(Debug, Clone)]
pub struct InboundMessage {
    /// The bundle it came in.
    pub bundle_id: String,
    /// The channel it came on.
    pub channel: Channel,
    /// The message.
    pub envelope: Envelope,
    /// The other items of the bundle.
    pub files: Vec<InboundFile>,
}

impl InboundMessage {
    /// The file with item name `item`, if the bundle has it.
    pub fn file(&self, item: &str) -> Option<&InboundFile> {
        self.files.iter().find(|f| f.item == item)
    }
}

/// What the zone did with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Its effects are in the transaction.
    Imported,
    /// Its content cannot be accepted; the reason is recorded with the bundle id and the message
    /// is not retried. The handler may have queued a reply in the same transaction.
    Refused {
        /// Why, for the operator and (through a reply) the sender.
        reason: String,
    },
}

/// The zone's side of an import.
pub trait ImportHandler: Send + Sync + 'static {
    /// Work that needs no database, done before the import's transaction opens (so a big
    /// import never holds the single database writer while files are written and synced): for
    /// example saving materials to content-addressed storage. Must be idempotent and harmless
    /// if the import is then refused or retried. `Err` counts as a failed try.
    fn prepare(
        &self,
        message: &InboundMessage,
    ) -> impl Future<Output = Result<(), ExchangeError>> + Send {
        let _ = message;
        async { Ok(()) }
    }

    /// Applies `message` in `tx`. `Err` means the import failed: the transaction is rolled
    /// back, and the bundle is tried again with backoff until its retry budget is spent (at
    /// once for [`ExchangeError::Permanent`] and database refusals of the data), then set aside
    /// as a dead letter.
    fn import(
        &self,
        tx: &mut Transaction<'static, Any>,
        message: &InboundMessage,
    ) -> impl Future<Output = Result<Disposition, ExchangeError>> + Send;

    /// Called inside the transaction that records a verified message as a dead letter, so the
    /// zone can tell whoever waits for it (the citizen, through a status back to the portal).
    /// An error here is logged and the dead letter recorded without it.
    fn set_aside(
        &self,
        tx: &mut Transaction<'static, Any>,
        letter: &DeadLetter,
        message: &InboundMessage,
    ) -> impl Future<Output = Result<(), ExchangeError>> + Send {
        let _ = (tx, letter, message);
        async { Ok(()) }
    }
}

/// What one [`Exchange::import_pending`] round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Messages imported.
    pub imported: usize,
    /// Messages refused by the zone (recorded, not retried).
    pub refused: usize,
    /// Bundles whose message had been imported before (under another bundle id).
    pub duplicates: usize,
    /// Bundles set aside before import: not landed by the ferry agent, failing verification,
    /// over the contract's limits, a kind the channel does not carry, breaking the contract.
    pub rejected: usize,
    /// Bundles whose import kept failing (or failed deterministically), set aside.
    pub dead_lettered: usize,
    /// Bundles left in the inbox after a failure, to be tried again after a backoff.
    pub failed: usize,
}

/// What [`import_message`] did with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Its effects are committed.
    Imported,
    /// The zone refused its content; the refusal is recorded and committed.
    Refused {
        /// Why.
        reason: String,
    },
    /// Its message id was imported before; nothing changed but the record of this bundle.
    Duplicate,
}

impl ImportOutcome {
    fn as_str(&self) -> &'static str {
        match self {
            ImportOutcome::Imported => "imported",
            ImportOutcome::Refused { .. } => "refused",
            ImportOutcome::Duplicate => "duplicate",
        }
    }
}

/// Imports one verified message exactly once: runs the handler's `prepare`, then in one
/// transaction records its message id (a message seen before is a
/// [`ImportOutcome::Duplicate`]), runs `handler`, and records the bundle id and outcome, then
/// commits. An error from the handler rolls everything back. This is the step
/// [`Exchange::import_pending`] takes for each bundle after verifying it (logging `imported`
/// before the commit); tests and operator tools call it directly.
pub async fn import_message<H: ImportHandler>(
    store: &Store,
    handler: &H,
    message: &InboundMessage,
) -> Result<ImportOutcome, ExchangeError> {
    let (tx, outcome) = begin_import(store, handler, message).await?;
    tx.commit().await?;
    Ok(outcome)
}

/// [`import_message`] up to the commit: returns the open transaction with the outcome.
async fn begin_import<H: ImportHandler>(
    store: &Store,
    handler: &H,
    message: &InboundMessage,
) -> Result<(Transaction<'static, Any>, ImportOutcome), ExchangeError> {
    let message_id = &message.envelope.message_id;
    let seen: Option<String> =
        sqlx::query_scalar("SELECT bundle_id FROM exchange_messages WHERE message_id = $1")
            .bind(message_id)
            .fetch_optional(store.reader())
            .await?;
    if seen.is_none() {
        handler.prepare(message).await?;
    }
    let now = ow_store::now_ms();
    let mut tx = store.begin().await?;
    let fresh = sqlx::query(
        "INSERT INTO exchange_messages (message_id, bundle_id, imported_at_ms) \
         VALUES ($1, $2, $3) ON CONFLICT (message_id) DO NOTHING",
    )
    .bind(message_id)
    .bind(&message.bundle_id)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    let result = if fresh {
        match handler.import(&mut tx, message).await {
            Ok(Disposition::Imported) => ImportOutcome::Imported,
            Ok(Disposition::Refused { reason }) => ImportOutcome::Refused { reason },
            Err(err) => {
                let _ = tx.rollback().await;
                return Err(err);
            }
        }
    } else {
        ImportOutcome::Duplicate
    };
    let reason = match &result {
        ImportOutcome::Imported => None,
        ImportOutcome::Refused { reason } => Some(reason.clone()),
        ImportOutcome::Duplicate => Some(format!("message {message_id} was imported before")),
    };
    sqlx::query(
        "INSERT INTO exchange_imported (bundle_id, message_id, channel, kind, case_id, \
         outcome, reason, imported_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (bundle_id) DO NOTHING",
    )
    .bind(&message.bundle_id)
    .bind(message_id)
    .bind(message.channel.to_string())
    .bind(message.envelope.message.kind())
    .bind(message.envelope.message.application_no())
    .bind(result.as_str())
    .bind(reason)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok((tx, result))
}

/// Why a bundle is set aside before it is imported.
struct Rejection {
    code: &'static str,
    reason: String,
    /// The header, verified or (when verification failed) as the file claims.
    header: Option<Box<Header>>,
    /// The message, when the bundle verified (only then may the dead letter name the
    /// application and the zone tell the citizen).
    message: Option<Box<InboundMessage>>,
}

impl Rejection {
    fn new(code: &'static str, reason: impl Into<String>, header: Option<&Header>) -> Self {
        Rejection {
            code,
            reason: reason.into(),
            header: header.map(|h| Box::new(h.clone())),
            message: None,
        }
    }
}

/// What happened to one inbox file.
enum Taken {
    Imported,
    Refused,
    Duplicate,
    Rejected,
    DeadLettered,
    /// Failed; the channel waits for the backoff.
    Waiting,
}

impl Exchange {
    /// Imports the bundles waiting in the inbox folders through `handler`, in sending order per
    /// channel. A bundle is imported only if the receiving ferry agent landed it (same id and
    /// digest in its `rx_landed`), it verifies again here, it keeps within the contract's
    /// limits and carries a kind its channel allows; otherwise it is set aside in
    /// `<inbox>/.rejected/` with its reason and a dead-letter record, and the next one is taken.
    /// A bundle whose import fails is tried again with backoff (the channel waits meanwhile, to
    /// keep order) until its budget is spent, then set aside too.
    pub async fn import_pending<H: ImportHandler>(
        &self,
        handler: &H,
    ) -> Result<ImportReport, ExchangeError> {
        let _guard = self.import_lock.lock().await;
        let mut report = ImportReport::default();
        for (channel, inbox) in &self.cfg.inboxes {
            let names = {
                let inbox = inbox.clone();
                tokio::task::spawn_blocking(move || list_bundles(&inbox))
                    .await
                    .map_err(|e| {
                        ExchangeError::Handler(format!("listing the inbox failed: {e}"))
                    })??
            };
            for name in names {
                match self.take_one(*channel, inbox, &name, handler).await {
                    Ok(Taken::Imported) => report.imported += 1,
                    Ok(Taken::Refused) => report.refused += 1,
                    Ok(Taken::Duplicate) => report.duplicates += 1,
                    Ok(Taken::Rejected) => report.rejected += 1,
                    Ok(Taken::DeadLettered) => report.dead_lettered += 1,
                    Ok(Taken::Waiting) => {
                        report.failed += 1;
                        break;
                    }
                    Err(err) => {
                        // The zone itself is unwell (database, staging folder): wait for the
                        // next round without blaming the bundle.
                        warn!(file = %name, error = %err, "import paused; will retry");
                        report.failed += 1;
                        break;
                    }
                }
            }
        }
        Ok(report)
    }

    async fn take_one<H: ImportHandler>(
        &self,
        channel: Channel,
        inbox: &Path,
        name: &str,
        handler: &H,
    ) -> Result<Taken, ExchangeError> {
        let path = inbox.join(name);
        // A bundle in its backoff holds the channel.
        let waiting: Option<(i64, i64)> = {
            use sqlx::Row;
            sqlx::query(
                "SELECT attempts, next_attempt_at_ms FROM exchange_inbound_attempts \
                 WHERE file_name = $1",
            )
            .bind(name)
            .fetch_optional(self.store.writer())
            .await?
            .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?)))
            .transpose()?
        };
        if waiting.is_some_and(|(_, next)| next > ow_store::now_ms()) {
            return Ok(Taken::Waiting);
        }
        let attempts_so_far = waiting.map(|(a, _)| a).unwrap_or(0);
        let bytes = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let dir = private_dir(&self.staging())?;
        let result = self
            .take_staged(
                channel,
                inbox,
                name,
                &path,
                bytes,
                attempts_so_far,
                &dir,
                handler,
            )
            .await;
        if let Err(e) = fs::remove_dir_all(&dir) {
            warn!(error = %e, "could not remove a staging folder; it is removed at the next start");
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn take_staged<H: ImportHandler>(
        &self,
        channel: Channel,
        inbox: &Path,
        name: &str,
        path: &Path,
        bytes: u64,
        attempts_so_far: i64,
        dir: &Path,
        handler: &H,
    ) -> Result<Taken, ExchangeError> {
        let message = match self.open_bundle(channel, path, dir).await? {
            Ok(message) => message,
            Err(rejection) => {
                self.set_aside_inbound(
                    channel,
                    inbox,
                    name,
                    bytes,
                    rejection,
                    attempts_so_far,
                    handler,
                )
                .await?;
                return Ok(Taken::Rejected);
            }
        };
        let header = message.0;
        let message = message.1;
        let done: Option<String> =
            sqlx::query_scalar("SELECT outcome FROM exchange_imported WHERE bundle_id = $1")
                .bind(&header.bundle_id)
                .fetch_optional(self.store.writer())
                .await?;
        if done.is_some() {
            // Imported before a crash cut the clean-up short.
            self.forget_attempts(name).await?;
            remove_durably(path).await?;
            return Ok(Taken::Duplicate);
        }
        let attempt = async {
            let (tx, outcome) = begin_import(&self.store, handler, &message).await?;
            // The log entry is durable before the state it records.
            let log_reason = match &outcome {
                ImportOutcome::Imported => None,
                ImportOutcome::Refused { reason } => Some(format!("refused: {reason}")),
                ImportOutcome::Duplicate => Some(format!(
                    "duplicate: message {} was imported before",
                    message.envelope.message_id
                )),
            };
            self.log(vec![LogLine {
                event: Event::Imported,
                header: Some(header.clone()),
                bytes,
                reason: log_reason,
            }])
            .await?;
            self.fault(FaultPoint::BeforeImportCommit)?;
            tx.commit().await?;
            Ok::<_, ExchangeError>(outcome)
        };
        match attempt.await {
            Ok(outcome) => {
                self.forget_attempts(name).await?;
                remove_durably(path).await?;
                info!(
                    bundle = %header.bundle_id,
                    kind = %header.kind,
                    case = header.case_id.as_deref().unwrap_or("-"),
                    outcome = outcome.as_str(),
                    "bundle taken from the inbox"
                );
                Ok(match outcome {
                    ImportOutcome::Imported => Taken::Imported,
                    ImportOutcome::Refused { .. } => Taken::Refused,
                    ImportOutcome::Duplicate => Taken::Duplicate,
                })
            }
            Err(err) => {
                let attempts = attempts_so_far.saturating_add(1);
                let dead = match err.class() {
                    FailureClass::Outage => return Err(err),
                    FailureClass::Permanent => true,
                    FailureClass::Transient => attempts >= i64::from(self.cfg.retry.budget),
                };
                if dead {
                    let reason = if attempts > 1 {
                        format!("import failed {attempts} times, the last time: {err}")
                    } else {
                        format!("import failed: {err}")
                    };
                    let rejection = Rejection {
                        code: err.code(),
                        reason,
                        header: Some(Box::new(header)),
                        message: Some(Box::new(message)),
                    };
                    self.set_aside_inbound(
                        channel,
                        inbox,
                        name,
                        bytes,
                        rejection,
                        attempts_so_far,
                        handler,
                    )
                    .await?;
                    return Ok(Taken::DeadLettered);
                }
                let delay = self
                    .cfg
                    .retry
                    .delay_after(u32::try_from(attempts).unwrap_or(u32::MAX));
                let next = ow_store::now_ms()
                    .saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
                sqlx::query(
                    "INSERT INTO exchange_inbound_attempts (file_name, channel, attempts, \
                     next_attempt_at_ms, last_code) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (file_name) DO UPDATE SET attempts = excluded.attempts, \
                     next_attempt_at_ms = excluded.next_attempt_at_ms, last_code = excluded.last_code",
                )
                .bind(name)
                .bind(channel.to_string())
                .bind(attempts)
                .bind(next)
                .bind(err.code())
                .execute(self.store.writer())
                .await?;
                warn!(bundle = %header.bundle_id, kind = %header.kind, attempts,
                    code = err.code(), error = %err, retry_in_ms = delay.as_millis() as u64,
                    "import failed; will try again");
                Ok(Taken::Waiting)
            }
        }
    }

    /// Checks a bundle file before anything is imported: its header within the contract's
    /// limits, landed by the ferry agent under the same id and digest, verified again with the
    /// zone's keys (items streamed into `dir`), its message well-formed, of a kind the channel
    /// carries and within the contract. `Ok(Err(_))` sets the bundle aside; `Err` is an outage.
    async fn open_bundle(
        &self,
        channel: Channel,
        path: &Path,
        dir: &Path,
    ) -> Result<Result<(Header, InboundMessage), Rejection>, ExchangeError> {
        let unverified = {
            let path = path.to_path_buf();
            tokio::task::spawn_blocking(move || check_header(&path))
                .await
                .map_err(|e| ExchangeError::Handler(format!("reading a bundle failed: {e}")))?
        };
        let (claimed, claimed_digest) = match unverified {
            Ok(found) => found,
            Err(rejection) => return Ok(Err(rejection)),
        };
        if claimed.channel != channel {
            return Ok(Err(Rejection::new(
                "wrong-channel",
                format!(
                    "the bundle is for channel {} but is in the inbox of {channel}",
                    claimed.channel
                ),
                Some(&claimed),
            )));
        }
        let landed = self.landed.lock().await.landed(&claimed.bundle_id).await?;
        let Some(landed) = landed else {
            return Ok(Err(Rejection::new(
                "not-landed",
                "the ferry agent never landed this bundle (it was placed in the inbox some other \
                 way: expired, quarantined or copied by hand); nothing was imported",
                Some(&claimed),
            )));
        };
        if landed.digest != claimed_digest
            || landed.channel != channel.to_string()
            || landed.sequence != claimed.sequence
        {
            return Ok(Err(Rejection::new(
                "landed-mismatch",
                "the file differs from the bundle the ferry agent landed under this id; nothing \
                 was imported",
                Some(&claimed),
            )));
        }
        let verified = {
            let path = path.to_path_buf();
            let dir = dir.to_path_buf();
            let trust = self.trust.clone();
            let decryption = self.decryption.clone();
            let zone = self.cfg.zone;
            tokio::task::spawn_blocking(move || {
                verify_into(&path, &trust, zone, &decryption, &dir, &landed.digest)
            })
            .await
            .map_err(|e| ExchangeError::Handler(format!("verifying a bundle failed: {e}")))??
        };
        Ok(verified)
    }

    /// Sets an inbox file aside: a `rejected` entry in the exchange log (durable) first, then
    /// the dead letter recorded (and, for a verified message, the zone's `set_aside` hook), then
    /// the file moved to `.rejected/` with a `.reason` beside it.
    #[allow(clippy::too_many_arguments)]
    async fn set_aside_inbound<H: ImportHandler>(
        &self,
        channel: Channel,
        inbox: &Path,
        name: &str,
        bytes: u64,
        rejection: Rejection,
        attempts_so_far: i64,
        handler: &H,
    ) -> Result<(), ExchangeError> {
        let verified = rejection.message.is_some();
        let letter = DeadLetter {
            id: uuid::Uuid::now_v7().to_string(),
            direction: Direction::Inbound,
            channel: channel.to_string(),
            message_id: rejection
                .message
                .as_ref()
                .map(|m| m.envelope.message_id.clone()),
            bundle_id: rejection
                .header
                .as_ref()
                .map(|h| h.bundle_id.clone())
                .filter(|id| crate::is_valid_case_id(id)),
            kind: rejection
                .message
                .as_ref()
                .map(|m| m.envelope.message.kind().to_owned()),
            case_id: rejection
                .message
                .as_ref()
                .and_then(|m| m.envelope.message.application_no())
                .filter(|c| crate::is_valid_case_id(c))
                .map(str::to_owned),
            code: rejection.code.to_owned(),
            reason: clip(&rejection.reason),
            attempts: attempts_so_far.saturating_add(1),
            dead_at_ms: ow_store::now_ms(),
            state: DEAD.to_owned(),
        };
        self.log(vec![LogLine {
            event: Event::Rejected,
            header: rejection.header.as_deref().cloned(),
            bytes,
            reason: Some(format!(
                "dead letter {}: {}{}",
                letter.id,
                rejection.code,
                if verified {
                    ""
                } else {
                    " (bundle not imported)"
                }
            )),
        }])
        .await?;
        let set_aside_dir = inbox.join(SET_ASIDE_DIR);
        let file_name = {
            let set_aside_dir = set_aside_dir.clone();
            let name = name.to_owned();
            tokio::task::spawn_blocking(move || {
                ow_ferry::dropfolder::ensure_dir(&set_aside_dir)
                    .map_err(|e| ExchangeError::io(&set_aside_dir, e))?;
                let dest = ow_ferry::dropfolder::unused_path(&set_aside_dir, &name);
                Ok::<_, ExchangeError>(
                    dest.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or(name),
                )
            })
            .await
            .map_err(|e| ExchangeError::Handler(format!("setting a bundle aside failed: {e}")))??
        };
        self.record_dead_letter(
            &letter,
            &file_name,
            name,
            rejection.message.as_deref(),
            handler,
        )
        .await?;
        let from = inbox.join(name);
        let dest = set_aside_dir.join(&file_name);
        let reason_json = serde_json::json!({
            "dead_letter": letter.id,
            "code": letter.code,
            "reason": letter.reason,
            "at": Utc::now().to_rfc3339(),
        });
        let inbox = inbox.to_path_buf();
        tokio::task::spawn_blocking(move || -> Result<(), ExchangeError> {
            ow_ferry::dropfolder::move_file(&from, &dest)
                .map_err(|e| ExchangeError::io(&from, e))?;
            ow_ferry::dropfolder::write_reason(&dest, &reason_json)
                .map_err(|e| ExchangeError::io(&dest, e))?;
            ow_ferry::dropfolder::fsync_dir(&inbox).map_err(|e| ExchangeError::io(&inbox, e))?;
            Ok(())
        })
        .await
        .map_err(|e| ExchangeError::Handler(format!("setting a bundle aside failed: {e}")))??;
        warn!(dead_letter = %letter.id, file = %name, code = %letter.code,
            "bundle set aside; the next one goes through");
        Ok(())
    }

    /// Records `letter` and clears the file's retry count in one transaction, with the zone's
    /// hook for a verified message; if the hook fails, records it without the hook.
    async fn record_dead_letter<H: ImportHandler>(
        &self,
        letter: &DeadLetter,
        file_name: &str,
        inbox_name: &str,
        message: Option<&InboundMessage>,
        handler: &H,
    ) -> Result<(), ExchangeError> {
        if let Some(message) = message {
            let mut tx = self.store.begin().await?;
            let with_hook = async {
                Exchange::insert_dead_letter(&mut tx, letter, Some(file_name), Some(inbox_name))
                    .await?;
                forget_attempts_in(&mut tx, inbox_name).await?;
                handler.set_aside(&mut tx, letter, message).await
            }
            .await;
            match with_hook {
                Ok(()) => {
                    tx.commit().await?;
                    return Ok(());
                }
                Err(err) => {
                    let _ = tx.rollback().await;
                    warn!(dead_letter = %letter.id, error = %err,
                        "the zone could not record whom to tell about a dead letter");
                }
            }
        }
        let mut tx = self.store.begin().await?;
        Exchange::insert_dead_letter(&mut tx, letter, Some(file_name), Some(inbox_name)).await?;
        forget_attempts_in(&mut tx, inbox_name).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn forget_attempts(&self, name: &str) -> Result<(), ExchangeError> {
        sqlx::query("DELETE FROM exchange_inbound_attempts WHERE file_name = $1")
            .bind(name)
            .execute(self.store.writer())
            .await?;
        Ok(())
    }
}

async fn forget_attempts_in(
    tx: &mut Transaction<'static, Any>,
    name: &str,
) -> Result<(), ExchangeError> {
    sqlx::query("DELETE FROM exchange_inbound_attempts WHERE file_name = $1")
        .bind(name)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The bundle files in an inbox, in sending order (canonical names start with the channel and
/// the zero-padded sequence).
fn list_bundles(inbox: &Path) -> Result<Vec<String>, ExchangeError> {
    let mut names = Vec::new();
    let entries = fs::read_dir(inbox).map_err(|e| ExchangeError::io(inbox, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| ExchangeError::io(inbox, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && name.ends_with(".owb") {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Reads a bundle's header without keys and checks it against the contract's limits before
/// anything is decompressed: `message.json` present and at most [`MAX_MESSAGE_BYTES`], every
/// other item at most [`MAX_FILE_BYTES`], item count and total within
/// [`crate::bundle_limits`]. Returns the (unverified) header and its digest.
fn check_header(path: &Path) -> Result<(Header, String), Rejection> {
    let file = fs::File::open(path)
        .map_err(|e| Rejection::new("unreadable", format!("cannot open: {e}"), None))?;
    let unverified =
        ow_bundle::read_header(io::BufReader::new(file), &ow_bundle::Limits::default()).map_err(
            |e| Rejection::new("not-a-bundle", format!("not a readable bundle: {e}"), None),
        )?;
    let header = unverified.header().clone();
    let digest = unverified.digest().to_hex();
    let too_large = |reason: String| Err(Rejection::new("too-large", reason, Some(&header)));
    let limits = crate::bundle_limits();
    let items = u64::try_from(header.items.len()).unwrap_or(u64::MAX);
    if items > limits.max_items {
        return too_large(format!(
            "the bundle has {items} items, more than the {} one message may carry",
            limits.max_items
        ));
    }
    if header.payload.plain_size > limits.max_plain_bytes
        || header.payload.size > limits.max_payload_bytes
    {
        return too_large(format!(
            "the bundle holds {} bytes, more than the {} one message may carry",
            header.payload.plain_size, limits.max_plain_bytes
        ));
    }
    match header.items.iter().find(|i| i.name == MESSAGE_ITEM) {
        None => {
            return Err(Rejection::new(
                "bad-message",
                format!("the bundle has no {MESSAGE_ITEM}"),
                Some(&header),
            ));
        }
        Some(m) if m.size > MAX_MESSAGE_BYTES as u64 => {
            return too_large(format!(
                "{MESSAGE_ITEM} is {} bytes, more than the {MAX_MESSAGE_BYTES} allowed",
                m.size
            ));
        }
        Some(_) => {}
    }
    if let Some(big) = header
        .items
        .iter()
        .find(|i| i.name != MESSAGE_ITEM && i.size > MAX_FILE_BYTES)
    {
        return too_large(format!(
            "an item is {} bytes, more than the {MAX_FILE_BYTES} one file may be",
            big.size
        ));
    }
    Ok((header, digest))
}

/// Where verified item bytes go: `message.json` to memory (at most [`MAX_MESSAGE_BYTES`],
/// checked before), every other item to its own new 0600 file in the message's private staging
/// folder. Nothing decompresses a whole bundle into memory.
struct StagingSink {
    dir: PathBuf,
    message: Vec<u8>,
    files: Vec<(ItemInfo, PathBuf)>,
}

enum SinkWriter<'a> {
    Memory(&'a mut Vec<u8>),
    File(fs::File),
}

impl Write for SinkWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            SinkWriter::Memory(v) => v.write(buf),
            SinkWriter::File(f) => f.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            SinkWriter::Memory(_) => Ok(()),
            SinkWriter::File(f) => f.flush(),
        }
    }
}

impl ItemSink for StagingSink {
    type Writer<'s> = SinkWriter<'s>;

    fn begin_item(&mut self, item: &ItemInfo) -> io::Result<SinkWriter<'_>> {
        if item.name == MESSAGE_ITEM {
            self.message.clear();
            return Ok(SinkWriter::Memory(&mut self.message));
        }
        // Staged under a number, never under the sender's item name.
        let path = self.dir.join(format!("{:04}", self.files.len()));
        let file = create_private(&path).map_err(|e| io::Error::other(e.to_string()))?;
        self.files.push((item.clone(), path));
        Ok(SinkWriter::File(file))
    }

    fn finish_item(&mut self, _item: &ItemInfo) -> io::Result<()> {
        Ok(())
    }

    fn abort(&mut self) {
        for (_, path) in self.files.drain(..) {
            let _ = fs::remove_file(path);
        }
        self.message.clear();
    }
}

/// Verifies a landed bundle and parses its message, streaming items into `dir`. Expiry was
/// enforced by the ferry agent when it landed the bundle, so verification here runs at the
/// bundle's own creation time: a bundle that waited in the inbox while the zone was down is
/// still imported. Signature, channel, receiver, hashes and decryption are all checked again,
/// and the digest must be the one the agent landed.
fn verify_into(
    path: &Path,
    trust: &TrustStore,
    zone: Zone,
    decryption: &EncryptionSecret,
    dir: &Path,
    landed_digest: &str,
) -> Result<Result<(Header, InboundMessage), Rejection>, ExchangeError> {
    let reject = |code: &'static str, reason: String, header: Option<&Header>| {
        Ok(Err(Rejection::new(code, reason, header)))
    };
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return reject("unreadable", format!("cannot open: {e}"), None),
    };
    let unverified =
        match ow_bundle::read_header(io::BufReader::new(&file), &crate::bundle_limits()) {
            Ok(u) => u,
            Err(e) => return reject("not-a-bundle", format!("not a readable bundle: {e}"), None),
        };
    let created = unverified.header().created_at;
    let mut opts = VerifyOptions::new(trust, zone, Some(decryption), created);
    opts.limits = crate::bundle_limits();
    let mut sink = StagingSink {
        dir: dir.to_path_buf(),
        message: Vec::new(),
        files: Vec::new(),
    };
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return reject("unreadable", format!("cannot open: {e}"), None),
    };
    let verified = match ow_bundle::verify_to_sink(io::BufReader::new(file), &opts, &mut sink) {
        Ok(v) => v,
        Err(e) => {
            return reject(
                "verify-failed",
                format!("{}: {e}", e.code()),
                Some(unverified.header()),
            );
        }
    };
    let header = verified.header().clone();
    if verified.digest().to_hex() != landed_digest {
        return reject(
            "landed-mismatch",
            "the file changed after the ferry agent landed it".into(),
            Some(&header),
        );
    }
    let envelope = match Envelope::from_json(&sink.message) {
        Ok(e) => e,
        Err(e) => return reject("bad-message", e.to_string(), Some(&header)),
    };
    let kind = envelope.message.kind();
    let message = InboundMessage {
        bundle_id: header.bundle_id.clone(),
        channel: header.channel,
        files: sink
            .files
            .iter()
            .map(|(info, path)| InboundFile::staged(info, path.clone()))
            .collect(),
        envelope,
    };
    let verified_rejection = |code: &'static str, reason: String| {
        Ok(Err(Rejection {
            code,
            reason,
            header: Some(Box::new(header.clone())),
            message: Some(Box::new(message.clone())),
        }))
    };
    if kind != header.kind {
        return verified_rejection(
            "kind-mismatch",
            format!(
                "the bundle's kind is {} but its message is {kind}",
                header.kind
            ),
        );
    }
    if !Message::kinds_on(&header.channel).contains(&kind) {
        return verified_rejection(
            "kind-not-allowed",
            format!("channel {} does not carry {kind} messages", header.channel),
        );
    }
    if let Err(violation) = message.envelope.message.check() {
        return verified_rejection(violation.code(), violation.to_string());
    }
    Ok(Ok((header, message)))
}

async fn remove_durably(path: &Path) -> Result<(), ExchangeError> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(ExchangeError::io(&path, e)),
        }
        if let Some(dir) = path.parent() {
            ow_ferry::dropfolder::fsync_dir(dir).map_err(|e| ExchangeError::io(dir, e))?;
        }
        Ok(())
    })
    .await
    .map_err(|e| ExchangeError::Handler(format!("removing a bundle failed: {e}")))?
}
