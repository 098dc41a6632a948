//! The running exchange: packing queued messages and importing received bundles.

use std::fs;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use ow_bundle::{
    Channel, EncryptionSecret, Header, Limits, SigningKey, TrustStore, VerifyOptions, Zone,
};
use ow_ferry::audit::AgentLog;
use ow_ferry::pack::{PackItem, PackRequest, pack_many_into_outbox, recover_outbox};
use ow_ferry::state::FerryState;
use ow_ferrylog::Event;
use ow_pii::{PiiKeyring, Sealed};
use ow_store::Store;
use sqlx::{Any, Row, Transaction};
use tracing::{debug, info, warn};

use crate::outbox::ENVELOPE_FIELD;
use crate::{Envelope, ExchangeError, MESSAGE_ITEM, OutboundFile};

/// How long a packed bundle stays valid for the receiving ferry agent.
const BUNDLE_VALIDITY_DAYS: i64 = 30;
/// Queued messages packed per round (one group commit per channel). Up to this many bundles are
/// synced file by file, more with one `syncfs` (`ow_ferry::dropfolder::sync_written`), which on a
/// busy disk also waits for everyone else's writes; applications carry megabytes, so batches
/// stay within the per-file limit.
const PACK_BATCH: i64 = ow_ferry::dropfolder::PER_FILE_SYNC_MAX as i64;

/// Where a zone's exchange finds its keys and folders.
#[derive(Debug, Clone)]
pub struct ExchangeConfig {
    /// This zone.
    pub zone: Zone,
    /// The exchange's own working folder: staging files and the exchange log (`log/`).
    pub work_dir: PathBuf,
    /// The sending ferry agent's state database (`<ferry data_dir>/ferry-state.db`). Sequence
    /// numbers per channel are allocated there, so the zone and the ferry agent (which finishes
    /// an interrupted pack on its start) agree on what was committed.
    pub packer_state: PathBuf,
    /// The zone's bundle signing key (0600).
    pub signing_key_file: PathBuf,
    /// The zone's bundle decryption key (0600).
    pub encryption_key_file: PathBuf,
    /// The trust file (pinned sender keys per channel, receivers' encryption keys).
    pub trust_file: PathBuf,
    /// Per sending channel, the ferry agent's outbox folder.
    pub outboxes: Vec<(Channel, PathBuf)>,
    /// Per receiving channel, the ferry agent's inbox folder.
    pub inboxes: Vec<(Channel, PathBuf)>,
    /// How often to look for work when nothing wakes the loop.
    pub poll_interval: Duration,
}

/// A file that came with a message.
#[derive(Clone)]
pub struct InboundFile {
    /// Its item name in the bundle.
    pub item: String,
    /// Its media type as declared in the (verified) header.
    pub media_type: String,
    /// Its bytes (hash-checked by bundle verification).
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for InboundFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundFile")
            .field("item", &self.item)
            .field("media_type", &self.media_type)
            .field("len", &self.bytes.len())
            .finish()
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

/// The zone's side of an import: apply one message inside the given transaction.
pub trait ImportHandler: Send + Sync + 'static {
    /// Applies `message` in `tx`. `Err` means a transient failure: the transaction is rolled back
    /// and the bundle stays in the inbox to be tried again.
    fn import(
        &self,
        tx: &mut Transaction<'static, Any>,
        message: &InboundMessage,
    ) -> impl Future<Output = Result<Disposition, ExchangeError>> + Send;
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
    /// Bundles that failed verification here and were set aside in `.rejected/`.
    pub rejected: usize,
    /// Bundles left in the inbox after a transient failure, to be retried.
    pub failed: usize,
}

/// A zone's exchange: its packer and its importer.
pub struct Exchange {
    cfg: ExchangeConfig,
    store: Store,
    pii: Arc<PiiKeyring>,
    signing_key: SigningKey,
    decryption: EncryptionSecret,
    trust: TrustStore,
    state: FerryState,
    log: Mutex<Option<AgentLog>>,
    wake: tokio::sync::Notify,
    pack_lock: tokio::sync::Mutex<()>,
    import_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange")
            .field("zone", &self.cfg.zone)
            .field("work_dir", &self.cfg.work_dir)
            .finish_non_exhaustive()
    }
}

impl Exchange {
    /// Loads the keys (refusing loose secret files), opens the packer state and the exchange log,
    /// creates the tables if needed, and finishes any pack a crash cut short.
    pub async fn open(
        cfg: ExchangeConfig,
        store: Store,
        pii: Arc<PiiKeyring>,
    ) -> Result<Exchange, ExchangeError> {
        crate::migrate(&store).await?;
        let signing_key = ow_keys::load_signing_key(&cfg.signing_key_file)?;
        let decryption = ow_keys::load_encryption_secret(&cfg.encryption_key_file)?;
        let trust = ow_keys::load_trust(&cfg.trust_file)?;
        fs::create_dir_all(cfg.work_dir.join("staging"))
            .map_err(|e| ExchangeError::io(cfg.work_dir.join("staging"), e))?;
        let state = FerryState::open(&cfg.packer_state)
            .await
            .map_err(|e| ExchangeError::Pack(e.to_string()))?;
        for (_, outbox) in &cfg.outboxes {
            recover_outbox(outbox, &state)
                .await
                .map_err(|e| ExchangeError::Pack(e.to_string()))?;
        }
        for (_, inbox) in &cfg.inboxes {
            fs::create_dir_all(inbox).map_err(|e| ExchangeError::io(inbox, e))?;
        }
        let agent = format!("{}-exchange", cfg.zone);
        let first_channel = cfg
            .outboxes
            .iter()
            .chain(&cfg.inboxes)
            .map(|(c, _)| c.to_string())
            .next()
            .unwrap_or_default();
        let log = AgentLog::open(
            &cfg.work_dir.join("log"),
            &agent,
            &first_channel,
            cfg.zone,
            signing_key.clone(),
            1000,
        )?;
        Ok(Exchange {
            cfg,
            store,
            pii,
            signing_key,
            decryption,
            trust,
            state,
            log: Mutex::new(Some(log)),
            wake: tokio::sync::Notify::new(),
            pack_lock: tokio::sync::Mutex::new(()),
            import_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The store the exchange records in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Wakes the loop in [`Exchange::run`] (call after committing an [`crate::enqueue`]).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Packs every queued message into bundles in the outbox folders. Returns how many.
    pub async fn pack_pending(&self) -> Result<usize, ExchangeError> {
        let _guard = self.pack_lock.lock().await;
        let mut total = 0;
        loop {
            let rows = sqlx::query(
                "SELECT message_id, channel, kind, case_id, envelope_sealed, files_json \
                 FROM exchange_outbox WHERE packed_at_ms IS NULL ORDER BY message_id LIMIT $1",
            )
            .bind(PACK_BATCH)
            .fetch_all(self.store.writer())
            .await?;
            if rows.is_empty() {
                return Ok(total);
            }
            let mut queued = Vec::with_capacity(rows.len());
            for row in rows {
                queued.push(Queued {
                    message_id: row.try_get("message_id")?,
                    channel: row.try_get("channel")?,
                    kind: row.try_get("kind")?,
                    case_id: row.try_get("case_id")?,
                    envelope_sealed: row.try_get("envelope_sealed")?,
                    files_json: row.try_get("files_json")?,
                });
            }
            // One group commit per channel, in queue order within each channel.
            let mut channels: Vec<String> = Vec::new();
            for q in &queued {
                if !channels.contains(&q.channel) {
                    channels.push(q.channel.clone());
                }
            }
            for channel in channels {
                let batch: Vec<&Queued> = queued.iter().filter(|q| q.channel == channel).collect();
                total += self.pack_batch(&channel, &batch).await?;
            }
        }
    }

    async fn pack_batch(&self, channel: &str, batch: &[&Queued]) -> Result<usize, ExchangeError> {
        let (chan, outbox) = self
            .cfg
            .outboxes
            .iter()
            .find(|(c, _)| c.to_string() == channel)
            .ok_or_else(|| ExchangeError::NoOutbox {
                channel: channel.to_string(),
            })?;
        let staging = self.cfg.work_dir.join("staging");
        let mut temps = Vec::new();
        let mut requests = Vec::with_capacity(batch.len());
        let result = async {
            for q in batch {
                let sealed_text = q.envelope_sealed.as_deref().ok_or_else(|| {
                    ExchangeError::Pack(format!("queued message {} has no content", q.message_id))
                })?;
                let sealed = Sealed::from_text(sealed_text)?;
                let json = self
                    .pii
                    .open(ENVELOPE_FIELD, q.message_id.as_bytes(), &sealed)?;
                let temp = staging.join(format!("{}.json", q.message_id));
                fs::write(&temp, &*json).map_err(|e| ExchangeError::io(&temp, e))?;
                temps.push(temp.clone());
                let files: Vec<OutboundFile> =
                    serde_json::from_str(&q.files_json).map_err(|e| ExchangeError::BadMessage {
                        reason: format!("queued file list of {} is damaged: {e}", q.message_id),
                    })?;
                let mut items = vec![PackItem {
                    name: MESSAGE_ITEM.to_string(),
                    media_type: "application/json".to_string(),
                    path: temp,
                    open: None,
                }];
                items.extend(files.into_iter().map(|f| {
                    PackItem {
                        open: f
                            .sealed_context
                            .map(|context| sealed_opener(&self.pii, context)),
                        name: f.item,
                        media_type: f.media_type,
                        path: f.path,
                    }
                }));
                requests.push(PackRequest {
                    channel: *chan,
                    kind: q.kind.clone(),
                    case_id: q.case_id.clone(),
                    valid_for: chrono::Duration::days(BUNDLE_VALIDITY_DAYS),
                    encrypt: true,
                    items,
                });
            }
            // Signing, compressing, encrypting and syncing a batch takes long enough (tens of
            // milliseconds per megabyte) that it must not hold one of the server's async workers:
            // it runs on a blocking thread, where the OS shares the cores with request handling.
            let state = self.state.clone();
            let key = self.signing_key.clone();
            let trust = self.trust.clone();
            let outbox = outbox.clone();
            let requests = std::mem::take(&mut requests);
            let runtime = tokio::runtime::Handle::current();
            tokio::task::spawn_blocking(move || {
                runtime.block_on(pack_many_into_outbox(
                    &state,
                    &key,
                    &trust,
                    &outbox,
                    &requests,
                    Utc::now(),
                ))
            })
            .await
            .map_err(|e| ExchangeError::Pack(format!("the packing task failed: {e}")))?
            .map_err(|e| ExchangeError::Pack(e.to_string()))
        }
        .await;
        for temp in &temps {
            let _ = fs::remove_file(temp);
        }
        let packed = result?;
        // The bundles are durable in the outbox; now mark the rows. A crash before this commit
        // packs them again under new bundle ids, which the receiver drops as duplicates.
        let now = ow_store::now_ms();
        let mut tx = self.store.begin().await?;
        for (q, p) in batch.iter().zip(&packed) {
            sqlx::query(
                "UPDATE exchange_outbox SET packed_at_ms = $1, bundle_id = $2, \
                 envelope_sealed = NULL WHERE message_id = $3",
            )
            .bind(now)
            .bind(&p.header.bundle_id)
            .bind(&q.message_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.log_bundles(
            Event::Queued,
            packed.iter().map(|p| (Some(&p.header), p.bytes, None)),
        )?;
        for p in &packed {
            info!(
                bundle = %p.header.bundle_id,
                kind = %p.header.kind,
                case = p.header.case_id.as_deref().unwrap_or("-"),
                sequence = p.header.sequence,
                "message packed"
            );
        }
        Ok(packed.len())
    }

    /// Imports every bundle waiting in the inbox folders through `handler`, oldest first.
    pub async fn import_pending<H: ImportHandler>(
        &self,
        handler: &H,
    ) -> Result<ImportReport, ExchangeError> {
        let _guard = self.import_lock.lock().await;
        let mut report = ImportReport::default();
        for (channel, inbox) in &self.cfg.inboxes {
            let mut names = Vec::new();
            let entries = fs::read_dir(inbox).map_err(|e| ExchangeError::io(inbox, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| ExchangeError::io(inbox, e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if !name.starts_with('.') && name.ends_with(".owb") {
                    names.push(name);
                }
            }
            // Canonical names start with the channel and the zero-padded sequence.
            names.sort();
            for name in names {
                let path = inbox.join(&name);
                match self.import_one(*channel, &path, handler).await {
                    Ok(Outcome::Imported) => report.imported += 1,
                    Ok(Outcome::Refused) => report.refused += 1,
                    Ok(Outcome::Duplicate) => report.duplicates += 1,
                    Ok(Outcome::Rejected) => report.rejected += 1,
                    Err(err) => {
                        // Keep order on the channel: stop here and try again next round.
                        warn!(file = %name, error = %err, "import failed; will retry");
                        report.failed += 1;
                        break;
                    }
                }
            }
        }
        Ok(report)
    }

    async fn import_one<H: ImportHandler>(
        &self,
        channel: Channel,
        path: &Path,
        handler: &H,
    ) -> Result<Outcome, ExchangeError> {
        let bytes = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let checked = {
            let path = path.to_path_buf();
            let trust = self.trust.clone();
            let decryption = self.decryption.clone();
            let zone = self.cfg.zone;
            tokio::task::spawn_blocking(move || verify_file(&path, &trust, zone, &decryption))
                .await
                .map_err(|e| ExchangeError::Handler(format!("verification task failed: {e}")))?
        };
        let (header, message) = match checked {
            Ok(ok) => ok,
            Err(Rejection { header, reason }) => {
                self.reject(path, header.as_deref(), bytes, &reason)?;
                return Ok(Outcome::Rejected);
            }
        };
        if header.channel != channel {
            let reason = format!(
                "bundle is for channel {} but arrived in the inbox of {channel}",
                header.channel
            );
            self.reject(path, Some(&header), bytes, &reason)?;
            return Ok(Outcome::Rejected);
        }
        let done: Option<String> =
            sqlx::query_scalar("SELECT outcome FROM exchange_imported WHERE bundle_id = $1")
                .bind(&header.bundle_id)
                .fetch_optional(self.store.writer())
                .await?;
        if done.is_some() {
            // Imported before a crash cut the clean-up short.
            remove_durably(path)?;
            return Ok(Outcome::Duplicate);
        }
        let (outcome, reason) = match import_message(&self.store, handler, &message).await? {
            ImportOutcome::Imported => (Outcome::Imported, None),
            ImportOutcome::Refused { reason } => (Outcome::Refused, Some(reason)),
            ImportOutcome::Duplicate => (
                Outcome::Duplicate,
                Some(format!(
                    "message {} was imported before",
                    message.envelope.message_id
                )),
            ),
        };
        let log_reason = match outcome {
            Outcome::Imported => None,
            _ => Some(format!(
                "{}: {}",
                outcome.as_str(),
                reason.as_deref().unwrap_or("")
            )),
        };
        self.log_bundles(Event::Imported, [(Some(&header), bytes, log_reason)])?;
        remove_durably(path)?;
        info!(
            bundle = %header.bundle_id,
            kind = %header.kind,
            case = header.case_id.as_deref().unwrap_or("-"),
            outcome = outcome.as_str(),
            "bundle taken from the inbox"
        );
        Ok(outcome)
    }

    fn reject(
        &self,
        path: &Path,
        header: Option<&Header>,
        bytes: u64,
        reason: &str,
    ) -> Result<(), ExchangeError> {
        let dir = path
            .parent()
            .map(|p| p.join(".rejected"))
            .unwrap_or_else(|| PathBuf::from(".rejected"));
        fs::create_dir_all(&dir).map_err(|e| ExchangeError::io(&dir, e))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "bundle.owb".into());
        let dest = ow_ferry::dropfolder::unused_path(&dir, &name);
        ow_ferry::dropfolder::move_file(path, &dest).map_err(|e| ExchangeError::io(path, e))?;
        ow_ferry::dropfolder::write_reason(
            &dest,
            &serde_json::json!({ "reason": reason, "at": Utc::now().to_rfc3339() }),
        )
        .map_err(|e| ExchangeError::io(&dest, e))?;
        if let Err(e) =
            self.log_bundles(Event::Rejected, [(header, bytes, Some(reason.to_string()))])
        {
            warn!(error = %e, "could not log a rejected bundle");
        }
        warn!(file = %dest.display(), reason, "bundle set aside: it failed verification in the zone");
        Ok(())
    }

    fn log_bundles<'h>(
        &self,
        event: Event,
        entries: impl IntoIterator<Item = (Option<&'h Header>, u64, Option<String>)>,
    ) -> Result<(), ExchangeError> {
        let mut guard = self
            .log
            .lock()
            .map_err(|_| ExchangeError::Handler("exchange log lock poisoned".into()))?;
        let Some(log) = guard.as_mut() else {
            return Ok(());
        };
        for (header, bytes, reason) in entries {
            log.bundle_event(event, header, bytes, reason)?;
        }
        log.sync()?;
        Ok(())
    }

    /// Packs and imports until `shutdown` resolves, then writes a final checkpoint to the
    /// exchange log. Failures are logged and retried on the next round.
    pub async fn run<H: ImportHandler>(
        self: Arc<Self>,
        handler: Arc<H>,
        shutdown: impl Future<Output = ()> + Send,
    ) {
        tokio::pin!(shutdown);
        loop {
            if let Err(err) = self.pack_pending().await {
                warn!(error = %err, "packing queued messages failed; will retry");
            }
            match self.import_pending(&*handler).await {
                Ok(report) if report != ImportReport::default() => debug!(?report, "import round"),
                Ok(_) => {}
                Err(err) => warn!(error = %err, "importing from the inbox failed; will retry"),
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.cfg.poll_interval) => {}
            }
        }
        self.close();
    }

    /// Writes the exchange log's final checkpoint. Further log appends are skipped.
    pub fn close(&self) {
        if let Ok(mut guard) = self.log.lock()
            && let Some(log) = guard.take()
            && let Err(err) = log.close()
        {
            warn!(error = %err, "could not close the exchange log");
        }
    }
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

/// Imports one verified message exactly once: in one transaction, records its message id (a
/// message seen before is a [`ImportOutcome::Duplicate`]), runs `handler`, and records the bundle id
/// and outcome, then commits. An error from the handler rolls everything back. This is the step
/// [`Exchange::import_pending`] takes for each bundle after verifying it; tests and operator
/// tools (re-importing a message taken from quarantine) call it directly.
pub async fn import_message<H: ImportHandler>(
    store: &Store,
    handler: &H,
    message: &InboundMessage,
) -> Result<ImportOutcome, ExchangeError> {
    let message_id = &message.envelope.message_id;
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
    let (outcome, reason) = match &result {
        ImportOutcome::Imported => ("imported", None),
        ImportOutcome::Refused { reason } => ("refused", Some(reason.clone())),
        ImportOutcome::Duplicate => (
            "duplicate",
            Some(format!("message {message_id} was imported before")),
        ),
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
    .bind(outcome)
    .bind(reason)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(result)
}

struct Queued {
    message_id: String,
    channel: String,
    kind: String,
    case_id: Option<String>,
    envelope_sealed: Option<String>,
    files_json: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Imported,
    Refused,
    Duplicate,
    Rejected,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Imported => "imported",
            Outcome::Refused => "refused",
            Outcome::Duplicate => "duplicate",
            Outcome::Rejected => "rejected",
        }
    }
}

struct Rejection {
    header: Option<Box<Header>>,
    reason: String,
}

/// Verifies a bundle file and parses its message. Expiry was enforced by the ferry agent when it
/// landed the bundle, so verification here runs at the bundle's own creation time: a bundle that
/// waited in the inbox while the zone was down is still imported. Signature, channel, receiver,
/// hashes and decryption are all checked again.
fn verify_file(
    path: &Path,
    trust: &TrustStore,
    zone: Zone,
    decryption: &EncryptionSecret,
) -> Result<(Header, InboundMessage), Rejection> {
    let reject = |header: Option<Header>, reason: String| Rejection {
        header: header.map(Box::new),
        reason,
    };
    let limits = Limits::default();
    let file = fs::File::open(path).map_err(|e| reject(None, format!("cannot open: {e}")))?;
    let unverified = ow_bundle::read_header(std::io::BufReader::new(file), &limits)
        .map_err(|e| reject(None, format!("not a readable bundle: {e}")))?;
    let created = unverified.header().created_at;
    let file = fs::File::open(path).map_err(|e| reject(None, format!("cannot open: {e}")))?;
    let opts = VerifyOptions::new(trust, zone, Some(decryption), created);
    let verified = ow_bundle::verify(std::io::BufReader::new(file), &opts).map_err(|e| {
        reject(
            Some(unverified.header().clone()),
            format!("{}: {e}", e.code()),
        )
    })?;
    let header = verified.header().clone();
    let items = verified.into_items().unwrap_or_default();
    let mut envelope = None;
    let mut files = Vec::new();
    for item in items {
        let info = item.info().clone();
        if info.name == MESSAGE_ITEM {
            envelope = Some(
                Envelope::from_json(item.data())
                    .map_err(|e| reject(Some(header.clone()), e.to_string()))?,
            );
        } else {
            files.push(InboundFile {
                item: info.name,
                media_type: info.media_type,
                bytes: item.into_data(),
            });
        }
    }
    let envelope = envelope.ok_or_else(|| {
        reject(
            Some(header.clone()),
            format!("the bundle has no {MESSAGE_ITEM}"),
        )
    })?;
    if envelope.message.kind() != header.kind {
        return Err(reject(
            Some(header.clone()),
            format!(
                "the bundle's kind is {} but its message is {}",
                header.kind,
                envelope.message.kind()
            ),
        ));
    }
    let message = InboundMessage {
        bundle_id: header.bundle_id.clone(),
        channel: header.channel,
        envelope,
        files,
    };
    Ok((header, message))
}

/// Opens a sealed outbound file (an uploaded material) with the zone's keyring while it is
/// packed: its clear bytes go straight into the encrypted bundle, never to a file.
fn sealed_opener(pii: &Arc<PiiKeyring>, context: String) -> ow_ferry::pack::OpenItem {
    let pii = pii.clone();
    Arc::new(move |path: &Path| {
        let (reader, len) = pii
            .open_file(context.as_bytes(), path)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        Ok((Box::new(reader) as Box<dyn std::io::Read + Send>, len))
    })
}

fn remove_durably(path: &Path) -> Result<(), ExchangeError> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(ExchangeError::io(path, e)),
    }
    if let Some(dir) = path.parent() {
        ow_ferry::dropfolder::fsync_dir(dir).map_err(|e| ExchangeError::io(dir, e))?;
    }
    Ok(())
}
