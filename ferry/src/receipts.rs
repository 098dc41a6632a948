//! Receipts: the receiving zone's signed statement of what landed, carried back on the return
//! channel (by hand, on a disc, from the intranet), which the sending zone imports to mark its
//! sent bundles confirmed (`docs/offline-media.md`, "Receipts").
//!
//! A receipt is an ordinary bundle of kind [`RECEIPT_KIND`] on the return channel, signed with
//! the receiving zone's key like any other, holding one item, [`RECEIPT_ITEM`] (a JSON
//! [`ReceiptPayload`]). The receiving agent of the return channel lands it like any bundle —
//! so a forged one fails its signature and a replayed one is refused as a `duplicate` — and then,
//! instead of handing it to the zone's importer, gives it to [`take_landed`], which checks what
//! it confirms and marks the sent bundles confirmed. Heartbeats ([`crate::heartbeat`]) take the
//! same way and are simply dropped once landed.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use ow_bundle::{Channel, EncryptionSecret, Header, TrustStore, Zone};
use ow_ferrylog::Event;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use tracing::{info, warn};

use crate::AgentError;
use crate::audit::AgentLog;
use crate::config::FerryConfig;
use crate::pack::{PackItem, PackRequest};
use crate::state::{FerryState, StateError, sequence_text};

/// The kind of a receipt bundle.
pub const RECEIPT_KIND: &str = "ferry.receipt";
/// The kind of a heartbeat bundle.
pub const HEARTBEAT_KIND: &str = "ferry.heartbeat";
/// The one item of a receipt bundle.
pub const RECEIPT_ITEM: &str = "receipt.json";
/// The `format` member of a receipt.
pub const RECEIPT_FORMAT: &str = "onewindow-ferry-receipt/1";
/// The largest `receipt.json` read (about 200 000 listed bundles): a receipt is read into memory.
pub const MAX_RECEIPT_BYTES: u64 = 64 << 20;

/// Bundles the ferry consumes itself and never hands to a zone's importer: exactly these two
/// kinds (any other kind, even one starting with `ferry.`, lands in the inbox as usual). They are
/// accepted on every channel whatever its `allowed_kinds`.
pub fn is_ferry_kind(kind: &str) -> bool {
    kind == RECEIPT_KIND || kind == HEARTBEAT_KIND
}

/// A receipt's content (`receipt.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptPayload {
    /// Always [`RECEIPT_FORMAT`].
    pub format: String,
    /// The zone that wrote it: the receiving zone of `channel`, the signer of the bundle.
    pub zone: Zone,
    /// The channel whose landings it lists (it ends in `zone`).
    pub channel: Channel,
    /// The receiving agent (or media route) that landed them.
    pub agent: String,
    /// When it was written.
    pub written_at: DateTime<Utc>,
    /// Every bundle landed on `channel` with a sequence in `first_sequence..=last_sequence` is
    /// listed; a sequence of that range not listed had not landed when it was written.
    pub first_sequence: u64,
    /// See `first_sequence`.
    pub last_sequence: u64,
    /// `[sequence, bundle id, digest (hex BLAKE3 of the header)]`, in sequence order.
    pub landed: Vec<(u64, String, String)>,
    /// The landing agent's latest signed log checkpoint, when it has one.
    pub checkpoint: Option<ShippedCheckpoint>,
}

/// A ferry-log checkpoint carried in a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShippedCheckpoint {
    /// The agent whose log it is (the note's origin is `onewindow/ferry/<agent>`).
    pub agent: String,
    /// Entries covered (the size inside the note).
    pub size: u64,
    /// The signed note, as in `checkpoints.jsonl`.
    pub note: String,
}

/// One receipt written by [`write_receipts`].
#[derive(Debug, Clone, Serialize)]
pub struct WrittenReceipt {
    /// The channel whose landings it lists.
    pub channel: String,
    /// The return channel it travels on.
    pub return_channel: String,
    /// Its bundle id.
    pub bundle_id: String,
    /// Its sequence on the return channel.
    pub sequence: u64,
    /// Bundles listed.
    pub bundles: usize,
    /// The range of sequences it speaks for.
    pub first_sequence: u64,
    /// See `first_sequence`.
    pub last_sequence: u64,
    /// Entries covered by the log checkpoint it carries (none when the log has no checkpoint).
    pub checkpoint_size: Option<u64>,
    /// Where the bundle was placed.
    pub path: PathBuf,
}

/// Writes one receipt per receiving channel of this zone (or only `only`) into the outbox of the
/// return channel (its `[[send]]` agent's, else its exporting `[[media]]` route's, else `out`),
/// listing every bundle landed with a sequence of at least `from_sequence` (default 1).
pub async fn write_receipts(
    config: &FerryConfig,
    only: Option<Channel>,
    from_sequence: Option<u64>,
    out: Option<&Path>,
    now: DateTime<Utc>,
) -> Result<Vec<WrittenReceipt>, AgentError> {
    write(config, only, from_sequence, out, now, false).await
}

/// [`write_receipts`], but only for the channels on which something new landed since the last
/// receipt this zone wrote for them (`ow-ferry receipts write --if-new`, which the courier runs
/// every round): a channel is skipped when every bundle landed on it (from `from_sequence` on)
/// was listed by that receipt or is a receipt this zone imported. Receipts are cumulative, so
/// nothing is lost by skipping; and a receipt landing is not news, or two zones would answer
/// each other's receipts on every disc forever. A heartbeat landing is news (its receipt
/// confirms it to its sender). Returns only the receipts written (none is not an error).
pub async fn write_new_receipts(
    config: &FerryConfig,
    only: Option<Channel>,
    from_sequence: Option<u64>,
    out: Option<&Path>,
    now: DateTime<Utc>,
) -> Result<Vec<WrittenReceipt>, AgentError> {
    write(config, only, from_sequence, out, now, true).await
}

async fn write(
    config: &FerryConfig,
    only: Option<Channel>,
    from_sequence: Option<u64>,
    out: Option<&Path>,
    now: DateTime<Utc>,
    only_new: bool,
) -> Result<Vec<WrittenReceipt>, AgentError> {
    // Receiving agents and importing media routes, by channel.
    let mut landing: Vec<(Channel, String)> = config
        .receive
        .iter()
        .map(|r| (r.channel, r.name.clone()))
        .collect();
    for route in &config.media {
        if !route.exports(config.zone) && !landing.iter().any(|(c, _)| *c == route.channel) {
            landing.push((route.channel, route.name.clone()));
        }
    }
    if let Some(channel) = only {
        landing.retain(|(c, _)| *c == channel);
        if landing.is_empty() {
            return Err(AgentError::Busy(format!(
                "this configuration lands nothing on channel {channel}: no [[receive]] agent or \
                 importing [[media]] route for it"
            )));
        }
    }
    let signing_key = ow_keys::load_signing_key(&config.keys.signing_key)?;
    let trust = ow_keys::load_trust(&config.keys.trust_file)?;
    let state = FerryState::open(&config.state_db()).await?;
    let mut written = Vec::new();
    crate::dropfolder::ensure_dir(&config.data_dir)
        .map_err(|e| AgentError::io(&config.data_dir, e))?;
    for (channel, agent) in landing {
        let back = channel.reverse();
        let outbox = match (out, config.sender_for(back)) {
            (Some(out), _) => out.to_path_buf(),
            (None, Some(send)) => send.outbox.clone(),
            (None, None) => match config
                .media
                .iter()
                .find(|m| m.channel == back && m.exports(config.zone))
                .and_then(|m| m.outbox.clone())
            {
                Some(outbox) => outbox,
                None => {
                    return Err(AgentError::Busy(format!(
                        "no [[send]] agent or exporting [[media]] route for the return channel \
                         {back}, so the receipt for {channel} has nowhere to go; add one or pass \
                         --out"
                    )));
                }
            },
        };
        let from = from_sequence.unwrap_or(1).max(1);
        let landed = landed_from(&state, &channel.to_string(), from).await?;
        if only_new && !anything_new(&state, &channel.to_string(), &landed).await? {
            info!(channel = %channel, "nothing new landed since the last receipt; none written");
            continue;
        }
        let last = landed.last().map(|l| l.0).unwrap_or(from.saturating_sub(1));
        let payload = ReceiptPayload {
            format: RECEIPT_FORMAT.into(),
            zone: config.zone,
            channel,
            agent: agent.clone(),
            written_at: now,
            first_sequence: from,
            last_sequence: last,
            landed,
            checkpoint: latest_checkpoint(&config.log_dir(&agent), &agent),
        };
        let json = serde_json::to_vec_pretty(&payload)
            .map_err(|e| AgentError::Bundle(format!("cannot encode the receipt: {e}")))?;
        let item = config
            .data_dir
            .join(format!(".receipt-{}.json", uuid::Uuid::now_v7()));
        fs::write(&item, &json).map_err(|e| AgentError::io(&item, e))?;
        let request = PackRequest {
            channel: back,
            kind: RECEIPT_KIND.into(),
            case_id: None,
            valid_for: chrono::Duration::days(365),
            encrypt: true,
            items: vec![PackItem {
                name: RECEIPT_ITEM.into(),
                media_type: "application/json".into(),
                path: item.clone(),
                open: None,
            }],
        };
        let packed =
            crate::pack::pack_into_outbox(&state, &signing_key, &trust, &outbox, &request, now)
                .await;
        let _ = fs::remove_file(&item);
        let packed = packed?;
        record(
            &state,
            "written",
            &packed.header.bundle_id,
            &payload,
            0,
            0,
            &String::from_utf8_lossy(&json),
            now,
        )
        .await?;
        info!(channel = %channel, receipt = %packed.header.bundle_id, bundles = payload.landed.len(), "receipt written");
        written.push(WrittenReceipt {
            channel: channel.to_string(),
            return_channel: back.to_string(),
            bundle_id: packed.header.bundle_id.clone(),
            sequence: packed.header.sequence,
            bundles: payload.landed.len(),
            first_sequence: payload.first_sequence,
            last_sequence: payload.last_sequence,
            checkpoint_size: payload.checkpoint.as_ref().map(|c| c.size),
            path: packed.path,
        });
    }
    state.close().await;
    Ok(written)
}

/// Whether `landed` (what a receipt for `channel` would list now) holds a bundle that the last
/// receipt written for `channel` did not list and that is not a receipt this zone imported.
async fn anything_new(
    state: &FerryState,
    channel: &str,
    landed: &[(u64, String, String)],
) -> Result<bool, StateError> {
    let previous: Option<String> = sqlx::query_scalar(
        "SELECT payload FROM ferry_receipts WHERE direction = 'written' AND channel = ? \
         ORDER BY rowid DESC LIMIT 1",
    )
    .bind(channel)
    .fetch_optional(state.pool())
    .await?;
    // A previous receipt that no longer parses lists nothing: write a new one.
    let listed: std::collections::HashSet<String> = previous
        .and_then(|text| serde_json::from_str::<ReceiptPayload>(&text).ok())
        .map(|p| p.landed.into_iter().map(|(_, id, _)| id).collect())
        .unwrap_or_default();
    for (_, id, _) in landed.iter().filter(|(_, id, _)| !listed.contains(id)) {
        let imported: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM ferry_receipts WHERE direction = 'imported' AND receipt_id = ?",
        )
        .bind(id)
        .fetch_optional(state.pool())
        .await?;
        if imported.is_none() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The last checkpoint in a log folder, read without opening the log (its agent may hold it).
fn latest_checkpoint(dir: &Path, agent: &str) -> Option<ShippedCheckpoint> {
    let text = fs::read_to_string(dir.join(ow_ferrylog::CHECKPOINTS_FILE)).ok()?;
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    let record: ow_ferrylog::CheckpointRecord = serde_json::from_str(line).ok()?;
    Some(ShippedCheckpoint {
        agent: agent.to_owned(),
        size: record.size,
        note: record.note,
    })
}

async fn landed_from(
    state: &FerryState,
    channel: &str,
    from: u64,
) -> Result<Vec<(u64, String, String)>, StateError> {
    let rows = sqlx::query(
        "SELECT sequence, bundle_id, digest FROM rx_landed WHERE channel = ? AND sequence >= ? \
         ORDER BY sequence",
    )
    .bind(channel)
    .bind(sequence_text(from))
    .fetch_all(state.pool())
    .await?;
    let mut landed = Vec::with_capacity(rows.len());
    for row in rows {
        let sequence: String = row.try_get("sequence")?;
        let sequence = sequence
            .parse::<u64>()
            .map_err(|e| StateError::Query(sqlx::Error::Decode(Box::new(e))))?;
        landed.push((sequence, row.try_get("bundle_id")?, row.try_get("digest")?));
    }
    Ok(landed)
}

#[allow(clippy::too_many_arguments)]
async fn record(
    state: &FerryState,
    direction: &str,
    receipt_id: &str,
    payload: &ReceiptPayload,
    confirmed: u64,
    mismatched: u64,
    json: &str,
    now: DateTime<Utc>,
) -> Result<(), StateError> {
    sqlx::query(
        "INSERT INTO ferry_receipts (direction, receipt_id, channel, first_sequence, \
         last_sequence, bundles, confirmed, mismatched, checkpoint_size, payload, recorded_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (direction, receipt_id) DO NOTHING",
    )
    .bind(direction)
    .bind(receipt_id)
    .bind(payload.channel.to_string())
    .bind(sequence_text(payload.first_sequence))
    .bind(sequence_text(payload.last_sequence))
    .bind(i64::try_from(payload.landed.len()).unwrap_or(i64::MAX))
    .bind(i64::try_from(confirmed).unwrap_or(i64::MAX))
    .bind(i64::try_from(mismatched).unwrap_or(i64::MAX))
    .bind(
        payload
            .checkpoint
            .as_ref()
            .map(|c| i64::try_from(c.size).unwrap_or(i64::MAX)),
    )
    .bind(json)
    .bind(now.to_rfc3339())
    .execute(state.pool())
    .await?;
    Ok(())
}

/// What the receiving agent needs to take a landed ferry bundle.
pub struct FerryIntake<'a> {
    /// The zone's state (the same database its sending agents record into).
    pub state: &'a FerryState,
    /// The trust file (pinned keys).
    pub trust: &'a TrustStore,
    /// This zone's decryption key.
    pub decryption: &'a EncryptionSecret,
    /// Where a receipt refused for its content is set aside, with its reason.
    pub quarantine: &'a Path,
}

/// Takes a landed bundle of a ferry kind (its row is committed): a heartbeat is dropped, a
/// receipt is checked and applied, then dropped (its JSON is kept in the state database) or set
/// aside in quarantine when refused. Safe to call again for the same file after a crash.
pub async fn take_landed(
    intake: &FerryIntake<'_>,
    log: &mut AgentLog,
    header: &Header,
    file: &Path,
) -> Result<(), AgentError> {
    if header.kind == RECEIPT_KIND {
        match read_receipt(intake, header, file) {
            Ok(payload) => apply(intake, log, header, &payload).await?,
            Err((code, message)) => {
                warn!(receipt = %header.bundle_id, code, "receipt refused: {message}");
                let name = crate::bundle_file_name(header);
                let target = crate::dropfolder::unused_path(intake.quarantine, &name);
                crate::dropfolder::ensure_dir(intake.quarantine)
                    .map_err(|e| AgentError::io(intake.quarantine, e))?;
                crate::dropfolder::move_file(file, &target).map_err(|e| AgentError::io(file, e))?;
                let reason = serde_json::json!({
                    "code": code,
                    "message": message,
                    "channel": header.channel.to_string(),
                    "file": name,
                    "bundle_id": header.bundle_id,
                    "sequence": header.sequence,
                    "quarantined_at": Utc::now().to_rfc3339(),
                });
                crate::dropfolder::write_reason(&target, &reason)
                    .map_err(|e| AgentError::io(&target, e))?;
                log.bundle_event(
                    Event::Rejected,
                    Some(header),
                    0,
                    Some(format!("{code}: {message}; nothing was confirmed")),
                )?;
                log.sync()?;
                return Ok(());
            }
        }
    }
    match fs::remove_file(file) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(AgentError::io(file, err)),
    }
}

/// Reads and checks a landed receipt: its one item, its format, the channel it confirms (one
/// this zone sends on, to the zone that signed it), and the checkpoint inside it against the
/// very key that signed the bundle.
fn read_receipt(
    intake: &FerryIntake<'_>,
    header: &Header,
    file: &Path,
) -> Result<ReceiptPayload, (&'static str, String)> {
    // Judged from the signed header before anything is read into memory.
    match header.items.as_slice() {
        [item] if item.name == RECEIPT_ITEM && item.size <= MAX_RECEIPT_BYTES => {}
        items => {
            return Err((
                "receipt-malformed",
                format!(
                    "a receipt holds exactly one item, {RECEIPT_ITEM}, of at most \
                     {MAX_RECEIPT_BYTES} bytes; this one holds {} item(s)",
                    items.len()
                ),
            ));
        }
    }
    let mut reader =
        File::open(file).map_err(|e| ("io", format!("cannot read the landed receipt: {e}")))?;
    // The bundle passed the receiving agent's checks when it landed; it is read again only to get
    // its item, so it is judged as of its own creation (an expiry since then does not matter).
    let options = ow_bundle::VerifyOptions::new(
        intake.trust,
        header.receiver,
        Some(intake.decryption),
        header.created_at,
    );
    let verified = ow_bundle::verify(&mut reader, &options).map_err(|e| {
        (
            "receipt-unreadable",
            format!("the receipt does not verify: {e}"),
        )
    })?;
    let items = verified.into_items().unwrap_or_default();
    let [item] = items.as_slice() else {
        return Err((
            "receipt-malformed",
            format!(
                "a receipt holds exactly one item, {RECEIPT_ITEM}; this one holds {}",
                items.len()
            ),
        ));
    };
    if item.info().name != RECEIPT_ITEM {
        return Err((
            "receipt-malformed",
            format!(
                "a receipt's item is named {RECEIPT_ITEM}, not {:?}",
                item.info().name
            ),
        ));
    }
    let payload: ReceiptPayload = serde_json::from_slice(item.data()).map_err(|e| {
        (
            "receipt-malformed",
            format!("{RECEIPT_ITEM} is not a receipt: {e}"),
        )
    })?;
    if payload.format != RECEIPT_FORMAT {
        return Err((
            "receipt-malformed",
            format!(
                "unknown receipt format {:?}; expected {RECEIPT_FORMAT}",
                payload.format
            ),
        ));
    }
    if payload.zone != header.sender
        || payload.channel.to != header.sender
        || payload.channel.from != header.receiver
    {
        return Err((
            "receipt-wrong-channel",
            format!(
                "the receipt, signed by the {} zone, lists landings on {} written by the {} zone; \
                 a receipt only confirms a channel from this zone ({}) to the zone that signed it",
                header.sender, payload.channel, payload.zone, header.receiver
            ),
        ));
    }
    if payload.first_sequence > payload.last_sequence.saturating_add(1)
        || payload
            .landed
            .iter()
            .any(|(s, _, _)| *s < payload.first_sequence || *s > payload.last_sequence)
    {
        return Err((
            "receipt-malformed",
            "the receipt lists a sequence outside its own range".into(),
        ));
    }
    if let Some(checkpoint) = &payload.checkpoint {
        let key = intake
            .trust
            .sender_key(header.channel, &header.key_id)
            .ok_or((
                "receipt-bad-checkpoint",
                "the receipt's signing key is not pinned".to_owned(),
            ))?;
        let key_name = crate::audit::key_name_for(header.sender);
        let opened =
            ow_ferrylog::open_checkpoint(&checkpoint.note, key, &key_name).map_err(|e| {
                (
                    "receipt-bad-checkpoint",
                    format!("the log checkpoint in the receipt does not verify: {e}"),
                )
            })?;
        if opened.origin != crate::audit::origin_for(&checkpoint.agent)
            || opened.size != checkpoint.size
        {
            return Err((
                "receipt-bad-checkpoint",
                format!(
                    "the checkpoint in the receipt is for {} at size {}, but the receipt says \
                     agent {} at size {}",
                    opened.origin, opened.size, checkpoint.agent, checkpoint.size
                ),
            ));
        }
    }
    Ok(payload)
}

/// Marks confirmed every listed bundle whose id this zone sent on that channel at that sequence
/// with that digest; anything else listed is counted as a mismatch and logged.
async fn apply(
    intake: &FerryIntake<'_>,
    log: &mut AgentLog,
    header: &Header,
    payload: &ReceiptPayload,
) -> Result<(), AgentError> {
    let channel = payload.channel.to_string();
    let now = Utc::now();
    let mut confirmed = 0u64;
    let mut mismatched = Vec::new();
    let mut tx = intake
        .state
        .pool()
        .begin()
        .await
        .map_err(StateError::from)?;
    for (sequence, id, digest) in &payload.landed {
        let sent = sqlx::query("SELECT channel, sequence, digest FROM tx_sent WHERE bundle_id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StateError::from)?;
        let matches = match &sent {
            Some(row) => {
                row.try_get::<String, _>("channel")
                    .map_err(StateError::from)?
                    == channel
                    && row
                        .try_get::<String, _>("sequence")
                        .map_err(StateError::from)?
                        == sequence_text(*sequence)
                    && row
                        .try_get::<String, _>("digest")
                        .map_err(StateError::from)?
                        == *digest
            }
            None => false,
        };
        if !matches {
            mismatched.push(*sequence);
            continue;
        }
        let done = sqlx::query(
            "INSERT INTO tx_confirmed (bundle_id, channel, sequence, receipt_id, confirmed_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (bundle_id) DO NOTHING",
        )
        .bind(id)
        .bind(&channel)
        .bind(sequence_text(*sequence))
        .bind(&header.bundle_id)
        .bind(now.to_rfc3339())
        .execute(&mut *tx)
        .await
        .map_err(StateError::from)?;
        confirmed += done.rows_affected();
    }
    tx.commit().await.map_err(StateError::from)?;
    let json = serde_json::to_string(payload).unwrap_or_default();
    record(
        intake.state,
        "imported",
        &header.bundle_id,
        payload,
        confirmed,
        mismatched.len() as u64,
        &json,
        now,
    )
    .await?;
    let mut reason = format!(
        "receipt for {channel} sequences {}..={}: {} listed, {confirmed} newly confirmed",
        payload.first_sequence,
        payload.last_sequence,
        payload.landed.len()
    );
    if !mismatched.is_empty() {
        warn!(receipt = %header.bundle_id, ?mismatched, "a receipt lists bundles this zone did not send as listed");
        reason.push_str(&format!(
            "; receipt-mismatch: {} listed bundle(s) were not sent as listed (first at sequence {})",
            mismatched.len(),
            mismatched[0]
        ));
    }
    log.bundle_event(Event::Imported, Some(header), 0, Some(reason))?;
    log.sync()?;
    info!(receipt = %header.bundle_id, confirmed, "receipt imported");
    Ok(())
}

/// Per channel: how many sent bundles a receipt confirmed.
pub async fn confirmed_count(state: &FerryState, channel: &str) -> Result<u64, StateError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tx_confirmed WHERE channel = ?")
        .bind(channel)
        .fetch_one(state.pool())
        .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The sequences sent on `channel` before `sent_before` that no receipt has confirmed: to be
/// resent (or explained) by an operator.
pub async fn unconfirmed(
    state: &FerryState,
    channel: &str,
    sent_before: DateTime<Utc>,
) -> Result<Vec<u64>, StateError> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT s.sequence, s.sent_at FROM tx_sent s \
         LEFT JOIN tx_confirmed c ON c.bundle_id = s.bundle_id \
         WHERE s.channel = ? AND c.bundle_id IS NULL ORDER BY s.sequence",
    )
    .bind(channel)
    .fetch_all(state.pool())
    .await?;
    let mut out = Vec::new();
    for (sequence, sent_at) in rows {
        let sent_at = DateTime::parse_from_rfc3339(&sent_at)
            .map_err(|e| StateError::Query(sqlx::Error::Decode(Box::new(e))))?;
        if sent_at.with_timezone(&Utc) < sent_before {
            out.push(
                sequence
                    .parse()
                    .map_err(|e| StateError::Query(sqlx::Error::Decode(Box::new(e))))?,
            );
        }
    }
    Ok(out)
}

/// The receipts a zone imported (each checked when imported), oldest first, for
/// [`crate::reconcile::add_receipts`].
pub async fn imported_receipts(state: &FerryState) -> Result<Vec<ReceiptPayload>, StateError> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT payload FROM ferry_receipts WHERE direction = 'imported' ORDER BY recorded_at",
    )
    .fetch_all(state.pool())
    .await?;
    rows.iter()
        .map(|text| {
            serde_json::from_str(text)
                .map_err(|e| StateError::Query(sqlx::Error::Decode(Box::new(e))))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Landed;

    const CHANNEL: &str = "extranet-to-intranet";

    fn landed(sequence: u64, id: &str) -> Landed {
        Landed {
            channel: CHANNEL.into(),
            sequence,
            bundle_id: id.into(),
            digest: format!("d{sequence}"),
            prev_digest: None,
            file_name: format!("{id}.owb"),
            bytes: 10,
            landed_at: Utc::now(),
        }
    }

    fn payload(channel: &str, landed: &[(u64, &str)]) -> ReceiptPayload {
        ReceiptPayload {
            format: RECEIPT_FORMAT.into(),
            zone: Zone::Intranet,
            channel: channel.parse().unwrap(),
            agent: "rx".into(),
            written_at: Utc::now(),
            first_sequence: 1,
            last_sequence: landed.last().map(|l| l.0).unwrap_or(0),
            landed: landed
                .iter()
                .map(|(s, id)| (*s, (*id).to_owned(), format!("d{s}")))
                .collect(),
            checkpoint: None,
        }
    }

    async fn wrote(state: &FerryState, id: &str, payload: &ReceiptPayload) {
        let json = serde_json::to_string(payload).unwrap();
        record(state, "written", id, payload, 0, 0, &json, Utc::now())
            .await
            .unwrap();
    }

    async fn new_now(state: &FerryState) -> bool {
        let listed = landed_from(state, CHANNEL, 1).await.unwrap();
        anything_new(state, CHANNEL, &listed).await.unwrap()
    }

    #[tokio::test]
    async fn news_is_a_landing_the_last_receipt_did_not_list_and_not_an_imported_receipt() {
        let dir = tempfile::tempdir().unwrap();
        let state = FerryState::open(&dir.path().join("s.db")).await.unwrap();
        assert!(!new_now(&state).await, "nothing landed, nothing to say");

        state
            .record_landed(&[landed(1, "a"), landed(2, "b")])
            .await
            .unwrap();
        assert!(new_now(&state).await, "two landings and no receipt yet");

        // A receipt for another channel says nothing about this one.
        wrote(
            &state,
            "r0",
            &payload("internet-to-extranet", &[(1, "a"), (2, "b")]),
        )
        .await;
        assert!(new_now(&state).await);

        wrote(&state, "r1", &payload(CHANNEL, &[(1, "a"), (2, "b")])).await;
        assert!(!new_now(&state).await, "the last receipt listed both");

        // The other zone's receipt landing is not news...
        state.record_landed(&[landed(3, "c")]).await.unwrap();
        let theirs = payload("intranet-to-extranet", &[]);
        let json = serde_json::to_string(&theirs).unwrap();
        record(&state, "imported", "c", &theirs, 0, 0, &json, Utc::now())
            .await
            .unwrap();
        assert!(!new_now(&state).await, "an imported receipt is not news");

        // ...but anything else is, even below the highest sequence listed (a gap filled).
        state.record_landed(&[landed(5, "e")]).await.unwrap();
        assert!(new_now(&state).await);
        wrote(
            &state,
            "r2",
            &payload(CHANNEL, &[(1, "a"), (2, "b"), (3, "c"), (5, "e")]),
        )
        .await;
        assert!(!new_now(&state).await);
        state.record_landed(&[landed(4, "d")]).await.unwrap();
        assert!(new_now(&state).await, "a gap filled is news");
        state.close().await;
    }
}
