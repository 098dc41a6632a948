//! Packing queued messages into bundles in the outbox folders, setting aside any message that
//! cannot be packed so that the next one goes through.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use ow_bundle::Channel;
use ow_ferry::pack::{PackItem, PackRequest, pack_many_into_outbox};
use ow_ferrylog::Event;
use ow_pii::{PiiKeyring, Sealed};
use sqlx::Row;
use tracing::{info, warn};

use crate::deadletter::{DeadLetter, Direction};
use crate::error::FailureClass;
use crate::exchange::{FaultPoint, LogLine, create_private, private_dir};
use crate::outbox::{ENVELOPE_FIELD, StoredInline, inline_ctx};
use crate::{
    ContractViolation, Envelope, Exchange, ExchangeError, MAX_FILE_BYTES, MAX_FILES_PER_MESSAGE,
    MAX_FILES_TOTAL_BYTES, MESSAGE_ITEM, Message, OutboundFile, Route,
};

/// How long a packed bundle stays valid for the receiving ferry agent.
const BUNDLE_VALIDITY_DAYS: i64 = 30;
/// Queued messages packed per round (one group commit per channel). Up to this many bundles are
/// synced file by file, more with one `syncfs` (`ow_ferry::dropfolder::sync_written`), which on a
/// busy disk also waits for everyone else's writes; applications carry megabytes, so batches
/// stay within the per-file limit.
const PACK_BATCH: i64 = ow_ferry::dropfolder::PER_FILE_SYNC_MAX as i64;

/// A queued row.
#[derive(Debug, Clone)]
struct Queued {
    message_id: String,
    channel: String,
    kind: String,
    case_id: Option<String>,
    envelope_sealed: Option<String>,
    files_json: String,
    inline_json: Option<String>,
    attempts: i64,
    next_attempt_at_ms: Option<i64>,
    /// The route the row was queued for.
    route: Route,
}

/// What became of one channel's batch.
#[derive(Debug, Default)]
struct BatchResult {
    packed: usize,
    set_aside: usize,
    /// A message failed transiently and waits: the rest of the channel waits behind it.
    waiting: bool,
}

impl Exchange {
    /// Packs every queued message into bundles in the outbox folders, in queue order per
    /// channel. A message that cannot be packed is set aside as a dead letter (at once when the
    /// failure is deterministic — a contract violation, a file that is gone, a bundle the
    /// format refuses — or when its retry budget is spent) and the next one is packed; while a
    /// message waits for its next try, the messages behind it on its channel wait too, so order
    /// is kept. Returns how many bundles were packed.
    pub async fn pack_pending(&self) -> Result<usize, ExchangeError> {
        let _guard = self.pack_lock.lock().await;
        // Each (channel, route) is its own queue: a channel's media route (offline discs)
        // and its gateway draw sequence numbers from the same channel but keep their own
        // order, and a message waiting on one never holds the other.
        let queues: Vec<(String, String)> = sqlx::query_as(
            "SELECT DISTINCT channel, route FROM exchange_outbox \
             WHERE packed_at_ms IS NULL AND dead_at_ms IS NULL ORDER BY channel, route",
        )
        .fetch_all(self.store.writer())
        .await?;
        let mut total = 0;
        for (channel, route_name) in queues {
            // A route this build does not know cannot be packed safely: leave it queued.
            let Some(route) = Route::parse(&route_name) else {
                warn!(channel = %channel, route = %route_name, "queued messages on an unknown route are left queued");
                continue;
            };
            loop {
                let rows = sqlx::query(
                    "SELECT message_id, channel, kind, case_id, envelope_sealed, files_json, \
                     inline_json, attempts, next_attempt_at_ms FROM exchange_outbox \
                     WHERE channel = $1 AND route = $2 AND packed_at_ms IS NULL \
                     AND dead_at_ms IS NULL ORDER BY message_id LIMIT $3",
                )
                .bind(&channel)
                .bind(route.as_str())
                .bind(PACK_BATCH)
                .fetch_all(self.store.writer())
                .await?;
                let now = ow_store::now_ms();
                let mut queued = Vec::with_capacity(rows.len());
                for row in rows {
                    let q = Queued {
                        message_id: row.try_get("message_id")?,
                        channel: row.try_get("channel")?,
                        kind: row.try_get("kind")?,
                        case_id: row.try_get("case_id")?,
                        envelope_sealed: row.try_get("envelope_sealed")?,
                        files_json: row.try_get("files_json")?,
                        inline_json: row.try_get("inline_json")?,
                        attempts: row.try_get("attempts")?,
                        next_attempt_at_ms: row.try_get("next_attempt_at_ms")?,
                        route,
                    };
                    // A message waiting for its next try holds the ones behind it.
                    if q.next_attempt_at_ms.is_some_and(|t| t > now) {
                        break;
                    }
                    queued.push(q);
                }
                if queued.is_empty() {
                    break;
                }
                let result = self.pack_batch(&channel, route, queued).await?;
                total += result.packed;
                if result.waiting || result.packed + result.set_aside == 0 {
                    break;
                }
            }
        }
        Ok(total)
    }

    async fn pack_batch(
        &self,
        channel: &str,
        route: Route,
        batch: Vec<Queued>,
    ) -> Result<BatchResult, ExchangeError> {
        // A media message goes to the media outbox or nowhere: never through the gateway.
        let outboxes = match route {
            Route::Gateway => &self.cfg.outboxes,
            Route::Media => &self.cfg.media_outboxes,
        };
        let Some((chan, outbox)) = outboxes
            .iter()
            .find(|(c, _)| c.to_string() == channel)
            .cloned()
        else {
            // No outbox for this channel and route: nothing here can ever pack these messages.
            let mut result = BatchResult::default();
            for q in &batch {
                let err = ExchangeError::NoOutbox {
                    channel: match route {
                        Route::Gateway => channel.to_string(),
                        Route::Media => format!("{channel} (offline media)"),
                    },
                };
                self.set_aside_outbound(q, "no-outbox", &err.to_string())
                    .await?;
                result.set_aside += 1;
            }
            return Ok(result);
        };
        let dir = private_dir(&self.staging())?;
        let result = self.pack_batch_in(chan, &outbox, batch, &dir).await;
        if let Err(e) = fs::remove_dir_all(&dir) {
            warn!(error = %e, "could not remove a staging folder; it is removed at the next start");
        }
        result
    }

    async fn pack_batch_in(
        &self,
        chan: Channel,
        outbox: &Path,
        batch: Vec<Queued>,
        dir: &Path,
    ) -> Result<BatchResult, ExchangeError> {
        let mut result = BatchResult::default();
        // Open each message and check it against the contract, off the async workers.
        let prepared = {
            let pii = self.pii.clone();
            let dir = dir.to_path_buf();
            let batch = batch.clone();
            tokio::task::spawn_blocking(move || {
                batch
                    .iter()
                    .map(|q| prepare_request(&pii, chan, q, &dir))
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(|e| ExchangeError::Pack(format!("the packing task failed: {e}")))?
        };
        let mut ready: Vec<(Queued, PackRequest)> = Vec::new();
        for (q, prepared) in batch.into_iter().zip(prepared) {
            match prepared {
                Ok(request) => ready.push((q, request)),
                Err(err) => {
                    if self.failed_outbound(&q, &err).await? {
                        result.set_aside += 1;
                    } else {
                        result.waiting = true;
                        break;
                    }
                }
            }
        }
        if ready.is_empty() {
            return Ok(result);
        }
        // One group commit for the batch; if it fails, pack one by one to find the message
        // that cannot be packed and let the others through.
        let requests: Vec<PackRequest> = ready.iter().map(|(_, r)| r.clone()).collect();
        match self.pack_requests(outbox, requests).await {
            Ok(packed) => {
                let queued: Vec<Queued> = ready.into_iter().map(|(q, _)| q).collect();
                result.packed += self.mark_packed(&queued, packed).await?;
            }
            Err(err) if ready.len() == 1 => {
                let (q, _) = &ready[0];
                if self.failed_outbound(q, &err).await? {
                    result.set_aside += 1;
                } else {
                    result.waiting = true;
                }
            }
            Err(err) => {
                warn!(error = %err, "packing a batch failed; packing its messages one by one");
                for (q, request) in ready {
                    match self.pack_requests(outbox, vec![request]).await {
                        Ok(packed) => {
                            result.packed +=
                                self.mark_packed(std::slice::from_ref(&q), packed).await?;
                        }
                        Err(err) => {
                            if self.failed_outbound(&q, &err).await? {
                                result.set_aside += 1;
                            } else {
                                result.waiting = true;
                                break;
                            }
                        }
                    }
                }
            }
        }
        Ok(result)
    }

    /// Signs, compresses, encrypts and syncs bundles on a blocking thread: tens of milliseconds
    /// per megabyte must not hold one of the server's async workers.
    async fn pack_requests(
        &self,
        outbox: &Path,
        requests: Vec<PackRequest>,
    ) -> Result<Vec<ow_ferry::pack::Packed>, ExchangeError> {
        let state = self.state.clone();
        let key = self.signing_key.clone();
        let trust = self.trust.clone();
        let outbox = outbox.to_path_buf();
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
        .map_err(pack_error)
    }

    /// The bundles are durable in the outbox: log `queued` for each (synced), and only then
    /// mark the rows packed (clearing their sealed content). A crash between the two packs the
    /// messages again under new bundle ids, which the receiver drops as duplicates; the log may
    /// repeat an entry but never lacks one for a bundle that exists.
    async fn mark_packed(
        &self,
        batch: &[Queued],
        packed: Vec<ow_ferry::pack::Packed>,
    ) -> Result<usize, ExchangeError> {
        self.log(
            packed
                .iter()
                .map(|p| LogLine {
                    event: Event::Queued,
                    header: Some(p.header.clone()),
                    bytes: p.bytes,
                    reason: None,
                })
                .collect(),
        )
        .await?;
        self.fault(FaultPoint::BeforePackedCommit)?;
        let now = ow_store::now_ms();
        let mut tx = self.store.begin().await?;
        for (q, p) in batch.iter().zip(&packed) {
            sqlx::query(
                "UPDATE exchange_outbox SET packed_at_ms = $1, bundle_id = $2, \
                 envelope_sealed = NULL, inline_json = NULL WHERE message_id = $3",
            )
            .bind(now)
            .bind(&p.header.bundle_id)
            .bind(&q.message_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
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

    /// Handles a failure to pack `q`: an outage is returned as an error (nothing is blamed);
    /// a deterministic failure sets the message aside; a transient one counts against its
    /// budget (setting it aside when spent). Returns whether the message was set aside.
    async fn failed_outbound(
        &self,
        q: &Queued,
        err: &ExchangeError,
    ) -> Result<bool, ExchangeError> {
        match err.class() {
            FailureClass::Outage => Err(ExchangeError::Pack(format!(
                "the zone cannot pack now: {err}"
            ))),
            FailureClass::Permanent => {
                self.set_aside_outbound(q, err.code(), &err.to_string())
                    .await?;
                Ok(true)
            }
            FailureClass::Transient => {
                let attempts = q.attempts.saturating_add(1);
                let policy = self.cfg.retry;
                if attempts >= i64::from(policy.budget) {
                    let reason = format!("failed {attempts} times, the last time: {err}");
                    self.set_aside_outbound_after(q, err.code(), &reason, attempts)
                        .await?;
                    return Ok(true);
                }
                let delay = policy.delay_after(u32::try_from(attempts).unwrap_or(u32::MAX));
                let next = ow_store::now_ms()
                    .saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
                sqlx::query(
                    "UPDATE exchange_outbox SET attempts = $1, next_attempt_at_ms = $2 \
                     WHERE message_id = $3",
                )
                .bind(attempts)
                .bind(next)
                .bind(&q.message_id)
                .execute(self.store.writer())
                .await?;
                warn!(message = %q.message_id, kind = %q.kind, attempts, code = err.code(),
                    error = %err, retry_in_ms = delay.as_millis() as u64,
                    "packing a message failed; will try again");
                Ok(false)
            }
        }
    }

    async fn set_aside_outbound(
        &self,
        q: &Queued,
        code: &str,
        reason: &str,
    ) -> Result<(), ExchangeError> {
        self.set_aside_outbound_after(q, code, reason, q.attempts.saturating_add(1))
            .await
    }

    /// Sets a queued message aside: the `rejected` log entry first (durable), then the row
    /// marked dead and the dead letter recorded, in one transaction.
    async fn set_aside_outbound_after(
        &self,
        q: &Queued,
        code: &str,
        reason: &str,
        attempts: i64,
    ) -> Result<(), ExchangeError> {
        let letter = DeadLetter {
            id: uuid::Uuid::now_v7().to_string(),
            direction: Direction::Outbound,
            channel: q.channel.clone(),
            message_id: Some(q.message_id.clone()),
            bundle_id: None,
            kind: Some(q.kind.clone()),
            case_id: q.case_id.clone().filter(|c| crate::is_valid_case_id(c)),
            code: code.to_owned(),
            reason: clip(reason),
            attempts,
            dead_at_ms: ow_store::now_ms(),
            state: crate::deadletter::DEAD.to_owned(),
        };
        self.log(vec![LogLine {
            event: Event::Rejected,
            header: None,
            bytes: 0,
            reason: Some(format!(
                "dead letter {}: outbound message {} ({}) set aside, code {code}",
                letter.id, q.message_id, q.kind
            )),
        }])
        .await?;
        let mut tx = self.store.begin().await?;
        sqlx::query(
            "UPDATE exchange_outbox SET dead_at_ms = $1, attempts = $2, next_attempt_at_ms = NULL \
             WHERE message_id = $3",
        )
        .bind(letter.dead_at_ms)
        .bind(attempts)
        .bind(&q.message_id)
        .execute(&mut *tx)
        .await?;
        Exchange::insert_dead_letter(&mut tx, &letter, None, None).await?;
        tx.commit().await?;
        warn!(dead_letter = %letter.id, message = %q.message_id, kind = %q.kind, code,
            "message set aside: it cannot be packed; the next one goes through");
        Ok(())
    }
}

/// Classifies what the ferry's packer said: the bundle format refusing the request is
/// deterministic; a file that is gone is too; anything else may pass on another try.
fn pack_error(err: ow_ferry::AgentError) -> ExchangeError {
    match err {
        ow_ferry::AgentError::Bundle(reason) => ExchangeError::Permanent {
            code: "pack-refused",
            reason: format!("the bundle format refuses this message: {reason}"),
        },
        ow_ferry::AgentError::Io { path, cause } => ExchangeError::Io { path, cause },
        other => ExchangeError::Pack(other.to_string()),
    }
}

/// Opens a queued message, checks it against the contract and writes its `message.json` and
/// inline files into `dir` (0600 files in a 0700 folder).
fn prepare_request(
    pii: &Arc<PiiKeyring>,
    channel: Channel,
    q: &Queued,
    dir: &Path,
) -> Result<PackRequest, ExchangeError> {
    let sealed_text = q
        .envelope_sealed
        .as_deref()
        .ok_or_else(|| ExchangeError::Permanent {
            code: "no-content",
            reason: format!("queued message {} has no content", q.message_id),
        })?;
    let json = pii.open(
        ENVELOPE_FIELD,
        q.message_id.as_bytes(),
        &Sealed::from_text(sealed_text)?,
    )?;
    let envelope = Envelope::from_json(&json)?;
    let kind = envelope.message.kind();
    if kind != q.kind || !Message::kinds_on(&channel).contains(&kind) {
        return Err(ExchangeError::Permanent {
            code: "kind-not-allowed",
            reason: format!("channel {channel} does not carry {kind} messages"),
        });
    }
    // The route is the message's to decide: a confidential package queued for the gateway
    // (an edited row, an older build) is set aside, never sent through it.
    if envelope.message.route() != q.route {
        return Err(ExchangeError::Permanent {
            code: "route-mismatch",
            reason: format!(
                "message {} must travel by {} but was queued for {}",
                q.message_id,
                envelope.message.route().as_str(),
                q.route.as_str()
            ),
        });
    }
    envelope.message.check()?;
    if q.case_id
        .as_deref()
        .is_some_and(|c| !crate::is_valid_case_id(c))
    {
        return Err(ContractViolation::CaseId.into());
    }
    let files: Vec<OutboundFile> =
        serde_json::from_str(&q.files_json).map_err(|e| ExchangeError::BadMessage {
            reason: format!("the queued file list of {} is damaged: {e}", q.message_id),
        })?;
    let inline: Vec<StoredInline> = match &q.inline_json {
        Some(text) => serde_json::from_str(text).map_err(|e| ExchangeError::BadMessage {
            reason: format!("the inline files of {} are damaged: {e}", q.message_id),
        })?,
        None => Vec::new(),
    };
    let count = files.len() + inline.len();
    if count > MAX_FILES_PER_MESSAGE {
        return Err(ContractViolation::TooManyFiles { count }.into());
    }
    let mut total: u64 = 0;
    for f in &files {
        let meta = fs::metadata(&f.path).map_err(|e| ExchangeError::io(&f.path, e))?;
        if !meta.is_file() {
            return Err(ExchangeError::Permanent {
                code: "file-missing",
                reason: format!("{} is not a regular file", f.path.display()),
            });
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(ContractViolation::FileTooLarge { size: meta.len() }.into());
        }
        total = total.saturating_add(meta.len());
    }
    if total > MAX_FILES_TOTAL_BYTES {
        return Err(ContractViolation::TooLarge { total }.into());
    }
    let message_path = dir.join(format!("{}.json", q.message_id));
    write_private(&message_path, &json)?;
    let mut items = vec![PackItem {
        name: MESSAGE_ITEM.to_string(),
        media_type: "application/json".to_string(),
        path: message_path,
        open: None,
    }];
    for (i, f) in inline.iter().enumerate() {
        let bytes = pii.open(
            ENVELOPE_FIELD,
            &inline_ctx(&q.message_id, &f.item),
            &Sealed::from_text(&f.sealed)?,
        )?;
        let path: PathBuf = dir.join(format!("{}.inline-{i}", q.message_id));
        write_private(&path, &bytes)?;
        items.push(PackItem {
            name: f.item.clone(),
            media_type: f.media_type.clone(),
            path,
            open: None,
        });
    }
    items.extend(files.into_iter().map(|f| PackItem {
        open: f.sealed_context.map(|context| sealed_opener(pii, context)),
        name: f.item,
        media_type: f.media_type,
        path: f.path,
    }));
    Ok(PackRequest {
        channel,
        kind: q.kind.clone(),
        case_id: q.case_id.clone(),
        valid_for: chrono::Duration::days(BUNDLE_VALIDITY_DAYS),
        encrypt: true,
        items,
    })
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ExchangeError> {
    let mut file = create_private(path)?;
    file.write_all(bytes)
        .map_err(|e| ExchangeError::io(path, e))
}

/// Dead-letter reasons are one line of at most 1,000 bytes.
pub(crate) fn clip(reason: &str) -> String {
    let line: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.len() <= 1000 {
        return line;
    }
    let mut end = 997;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &line[..end])
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
