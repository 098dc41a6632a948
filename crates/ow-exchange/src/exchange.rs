//! The running exchange: its configuration, keys, log and loop. Packing is in `pack.rs`,
//! importing in `import.rs`, dead letters in `deadletter.rs`.

use std::fs;
use std::future::Future;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ow_bundle::{Channel, EncryptionSecret, Header, SigningKey, TrustStore, Zone};
use ow_ferry::audit::AgentLog;
use ow_ferry::pack::recover_outbox;
use ow_ferry::state::FerryState;
use ow_ferrylog::Event;
use ow_pii::PiiKeyring;
use ow_store::Store;
use tracing::{debug, info, warn};

use crate::ExchangeError;
use crate::deadletter::{self, DEAD, Direction, RETRIED};
use crate::import::{ImportHandler, ImportReport};
use crate::landed::LandedView;

/// How often, and how patiently, a failing message is tried again before it is set aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries before a message that keeps failing is set aside as a dead letter.
    pub budget: u32,
    /// Wait after the first failure; doubled after each further one.
    pub first_delay: Duration,
    /// Longest wait between two tries.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Eight tries over about four minutes.
    fn default() -> Self {
        RetryPolicy {
            budget: 8,
            first_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(600),
        }
    }
}

impl RetryPolicy {
    /// The wait after the `attempts`-th failure.
    pub fn delay_after(&self, attempts: u32) -> Duration {
        let shift = attempts.saturating_sub(1).min(30);
        self.first_delay
            .saturating_mul(1u32 << shift)
            .min(self.max_delay)
    }
}

/// Where a zone's exchange finds its keys and folders.
#[derive(Debug, Clone)]
pub struct ExchangeConfig {
    /// This zone.
    pub zone: Zone,
    /// The exchange's own working folder: staging files (`staging/`, 0700, emptied at start)
    /// and the exchange log (`log/`).
    pub work_dir: PathBuf,
    /// The sending ferry agent's state database (`<ferry data_dir>/ferry-state.db`). Sequence
    /// numbers per channel are allocated there, so the zone and the ferry agent (which finishes
    /// an interrupted pack on its start) agree on what was committed.
    pub packer_state: PathBuf,
    /// The receiving ferry agent's state database, read only: a bundle is imported only if
    /// the agent landed it (its `rx_landed` row has the bundle's id and digest). Usually the
    /// same file as `packer_state`.
    pub landed_state: PathBuf,
    /// The zone's bundle signing key (0600).
    pub signing_key_file: PathBuf,
    /// The zone's bundle decryption key (0600).
    pub encryption_key_file: PathBuf,
    /// The trust file (pinned sender keys per channel, receivers' encryption keys).
    pub trust_file: PathBuf,
    /// Per sending channel, the ferry agent's outbox folder.
    pub outboxes: Vec<(Channel, PathBuf)>,
    /// Per sending channel, the outbox of its offline-media route (the ferry's `[[media]]`
    /// route), for messages that must never touch a gateway ([`crate::Route::Media`]). A media
    /// message on a channel without one is set aside, never sent by the gateway.
    pub media_outboxes: Vec<(Channel, PathBuf)>,
    /// Per receiving channel, the ferry agent's inbox folder.
    pub inboxes: Vec<(Channel, PathBuf)>,
    /// How often to look for work when nothing wakes the loop.
    pub poll_interval: Duration,
    /// Retries of a failing message before it is set aside.
    pub retry: RetryPolicy,
}

/// A point between two steps where a test can stop the exchange as a crash would
/// ([`Exchange::set_fault`]).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPoint {
    /// After the `queued` entries are logged, before the rows are marked packed.
    BeforePackedCommit,
    /// After the `imported` entry is logged, before the import commits.
    BeforeImportCommit,
}

/// A zone's exchange: its packer and its importer.
pub struct Exchange {
    pub(crate) cfg: ExchangeConfig,
    pub(crate) store: Store,
    pub(crate) pii: Arc<PiiKeyring>,
    pub(crate) signing_key: SigningKey,
    pub(crate) decryption: EncryptionSecret,
    pub(crate) trust: TrustStore,
    pub(crate) state: FerryState,
    pub(crate) landed: tokio::sync::Mutex<LandedView>,
    log: Arc<Mutex<Option<AgentLog>>>,
    wake: tokio::sync::Notify,
    pub(crate) pack_lock: tokio::sync::Mutex<()>,
    pub(crate) import_lock: tokio::sync::Mutex<()>,
    fault: Mutex<Option<FaultPoint>>,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange")
            .field("zone", &self.cfg.zone)
            .field("work_dir", &self.cfg.work_dir)
            .finish_non_exhaustive()
    }
}

/// One entry for the exchange log.
pub(crate) struct LogLine {
    pub(crate) event: Event,
    pub(crate) header: Option<Header>,
    pub(crate) bytes: u64,
    pub(crate) reason: Option<String>,
}

impl Exchange {
    /// Loads the keys (refusing loose secret files), opens the packer state and the exchange log,
    /// creates the tables if needed, empties the staging folder (0700) of whatever a crash left
    /// there, and finishes any pack a crash cut short.
    pub async fn open(
        cfg: ExchangeConfig,
        store: Store,
        pii: Arc<PiiKeyring>,
    ) -> Result<Exchange, ExchangeError> {
        crate::migrate(&store).await?;
        let signing_key = ow_keys::load_signing_key(&cfg.signing_key_file)?;
        let decryption = ow_keys::load_encryption_secret(&cfg.encryption_key_file)?;
        let trust = ow_keys::load_trust(&cfg.trust_file)?;
        let staging = cfg.work_dir.join("staging");
        prepare_staging(&staging)?;
        let state = FerryState::open(&cfg.packer_state)
            .await
            .map_err(|e| ExchangeError::Pack(e.to_string()))?;
        for (_, outbox) in cfg.outboxes.iter().chain(&cfg.media_outboxes) {
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
        let landed = LandedView::new(&cfg.landed_state);
        Ok(Exchange {
            cfg,
            store,
            pii,
            signing_key,
            decryption,
            trust,
            state,
            landed: tokio::sync::Mutex::new(landed),
            log: Arc::new(Mutex::new(Some(log))),
            wake: tokio::sync::Notify::new(),
            pack_lock: tokio::sync::Mutex::new(()),
            import_lock: tokio::sync::Mutex::new(()),
            fault: Mutex::new(None),
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

    /// Makes the next pass through `point` fail as a crash there would (tests only).
    #[doc(hidden)]
    pub fn set_fault(&self, point: Option<FaultPoint>) {
        if let Ok(mut f) = self.fault.lock() {
            *f = point;
        }
    }

    pub(crate) fn fault(&self, point: FaultPoint) -> Result<(), ExchangeError> {
        let hit = self
            .fault
            .lock()
            .map(|mut f| {
                if *f == Some(point) {
                    *f = None;
                    true
                } else {
                    false
                }
            })
            .unwrap_or(false);
        if hit {
            return Err(ExchangeError::Handler(format!(
                "simulated crash at {point:?}"
            )));
        }
        Ok(())
    }

    pub(crate) fn staging(&self) -> PathBuf {
        self.cfg.work_dir.join("staging")
    }

    /// Appends entries to the exchange log and makes them durable, on a blocking thread.
    pub(crate) async fn log(&self, lines: Vec<LogLine>) -> Result<(), ExchangeError> {
        if lines.is_empty() {
            return Ok(());
        }
        let log = self.log.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = log
                .lock()
                .map_err(|_| ExchangeError::Handler("exchange log lock poisoned".into()))?;
            let Some(log) = guard.as_mut() else {
                return Ok(());
            };
            for line in lines {
                match line.event {
                    Event::Action => log.agent_event(line.event, line.reason)?,
                    _ if line.header.is_none() && line.bytes == 0 => {
                        log.agent_event(line.event, line.reason)?
                    }
                    _ => {
                        log.bundle_event(line.event, line.header.as_ref(), line.bytes, line.reason)?
                    }
                };
            }
            log.sync()?;
            Ok(())
        })
        .await
        .map_err(|e| ExchangeError::Handler(format!("the exchange log task failed: {e}")))?
    }

    /// Puts back in line the dead letters an operator asked to retry
    /// ([`crate::request_retry`]), logging each retry. Returns how many.
    pub async fn process_retry_requests(&self) -> Result<usize, ExchangeError> {
        let requested = deadletter::retry_requested(&self.store).await?;
        let mut done = 0;
        for row in requested {
            let letter = &row.letter;
            // Log first: the entry is durable before the state it records.
            self.log(vec![LogLine {
                event: Event::Action,
                header: None,
                bytes: 0,
                reason: Some(format!(
                    "operator retry of dead letter {} ({} {}, {}, code {})",
                    letter.id,
                    letter.direction.as_str(),
                    letter.channel,
                    letter.kind.as_deref().unwrap_or("-"),
                    letter.code
                )),
            }])
            .await?;
            match letter.direction {
                Direction::Outbound => {
                    let mut tx = self.store.begin().await?;
                    if let Some(message_id) = &letter.message_id {
                        sqlx::query(
                            "UPDATE exchange_outbox SET dead_at_ms = NULL, attempts = 0, \
                             next_attempt_at_ms = NULL WHERE message_id = $1 AND packed_at_ms IS NULL",
                        )
                        .bind(message_id)
                        .execute(&mut *tx)
                        .await?;
                    }
                    mark_retried(&mut tx, &letter.id).await?;
                    tx.commit().await?;
                }
                Direction::Inbound => {
                    self.put_back_inbound(&row).await?;
                }
            }
            info!(dead_letter = %letter.id, code = %letter.code, "dead letter put back in line");
            done += 1;
        }
        Ok(done)
    }

    async fn put_back_inbound(&self, row: &deadletter::DeadLetterRow) -> Result<(), ExchangeError> {
        let letter = &row.letter;
        let inbox = self
            .cfg
            .inboxes
            .iter()
            .find(|(c, _)| c.to_string() == letter.channel)
            .map(|(_, p)| p.clone());
        let (Some(inbox), Some(file_name), Some(inbox_name)) =
            (inbox, row.file_name.clone(), row.inbox_name.clone())
        else {
            // Nothing to move (the channel is no longer configured here): record the retry.
            let mut tx = self.store.begin().await?;
            mark_retried(&mut tx, &letter.id).await?;
            tx.commit().await?;
            return Ok(());
        };
        let moved = tokio::task::spawn_blocking(move || -> Result<(), ExchangeError> {
            let rejected = inbox.join(crate::import::SET_ASIDE_DIR);
            let from = rejected.join(&file_name);
            let to = inbox.join(&inbox_name);
            if from.exists() {
                if to.exists() {
                    return Err(ExchangeError::io(
                        &to,
                        std::io::Error::new(
                            std::io::ErrorKind::AlreadyExists,
                            "a bundle of that name is in the inbox already; remove one of the two copies",
                        ),
                    ));
                }
                ow_ferry::dropfolder::move_file(&from, &to).map_err(|e| ExchangeError::io(&from, e))?;
                let reason = PathBuf::from(format!(
                    "{}{}",
                    from.display(),
                    ow_ferry::dropfolder::REASON_SUFFIX
                ));
                let _ = fs::remove_file(reason);
                ow_ferry::dropfolder::fsync_dir(&inbox).map_err(|e| ExchangeError::io(&inbox, e))?;
                ow_ferry::dropfolder::fsync_dir(&rejected)
                    .map_err(|e| ExchangeError::io(&rejected, e))?;
            }
            Ok(())
        })
        .await
        .map_err(|e| ExchangeError::Handler(format!("the retry task failed: {e}")))?;
        moved?;
        let mut tx = self.store.begin().await?;
        if let Some(name) = &row.inbox_name {
            sqlx::query("DELETE FROM exchange_inbound_attempts WHERE file_name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        mark_retried(&mut tx, &letter.id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Retries requested by operators, packs and imports until `shutdown` resolves, then writes
    /// a final checkpoint to the exchange log. Failures are logged and retried on the next round;
    /// no single message can stop the loop.
    pub async fn run<H: ImportHandler>(
        self: Arc<Self>,
        handler: Arc<H>,
        shutdown: impl Future<Output = ()> + Send,
    ) {
        tokio::pin!(shutdown);
        loop {
            if let Err(err) = self.process_retry_requests().await {
                warn!(error = %err, "putting retried dead letters back failed; will try again");
            }
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
        self.landed.lock().await.close().await;
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

    /// Records a dead letter inside `tx`.
    pub(crate) async fn insert_dead_letter(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        letter: &deadletter::DeadLetter,
        file_name: Option<&str>,
        inbox_name: Option<&str>,
    ) -> Result<(), ExchangeError> {
        sqlx::query(
            "INSERT INTO exchange_dead_letters (id, direction, channel, message_id, bundle_id, \
             kind, case_id, code, reason, file_name, inbox_name, attempts, dead_at_ms, state) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&letter.id)
        .bind(letter.direction.as_str())
        .bind(&letter.channel)
        .bind(&letter.message_id)
        .bind(&letter.bundle_id)
        .bind(&letter.kind)
        .bind(&letter.case_id)
        .bind(&letter.code)
        .bind(&letter.reason)
        .bind(file_name)
        .bind(inbox_name)
        .bind(letter.attempts)
        .bind(letter.dead_at_ms)
        .bind(DEAD)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

async fn mark_retried(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: &str,
) -> Result<(), ExchangeError> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE exchange_dead_letters SET state = '{RETRIED}', retried_at_ms = $1 WHERE id = $2"
    )))
    .bind(ow_store::now_ms())
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Creates the staging folder readable by the owner only, and empties it: staging files hold
/// opened messages (personal data) and are never needed after a restart (the bundle or the
/// queued row they came from is still there).
fn prepare_staging(staging: &Path) -> Result<(), ExchangeError> {
    if !staging.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(staging)
            .map_err(|e| ExchangeError::io(staging, e))?;
    }
    fs::set_permissions(staging, fs::Permissions::from_mode(0o700))
        .map_err(|e| ExchangeError::io(staging, e))?;
    let entries = fs::read_dir(staging).map_err(|e| ExchangeError::io(staging, e))?;
    let mut purged = 0usize;
    for entry in entries {
        let entry = entry.map_err(|e| ExchangeError::io(staging, e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| ExchangeError::io(&path, e))?;
        let removed = if kind.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        removed.map_err(|e| ExchangeError::io(&path, e))?;
        purged += 1;
    }
    if purged > 0 {
        info!(
            files = purged,
            "staging files left by an interrupted run removed"
        );
    }
    Ok(())
}

/// Creates a private staging subfolder (0700) for one message.
pub(crate) fn private_dir(parent: &Path) -> Result<PathBuf, ExchangeError> {
    let dir = parent.join(uuid::Uuid::now_v7().to_string());
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| ExchangeError::io(&dir, e))?;
    Ok(dir)
}

/// Creates a new file readable by its owner only.
pub(crate) fn create_private(path: &Path) -> Result<fs::File, ExchangeError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| ExchangeError::io(path, e))
}
