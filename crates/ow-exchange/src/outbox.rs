//! The transactional outbox: queueing a message inside the caller's transaction.

use std::path::PathBuf;

use ow_bundle::Channel;
use ow_pii::{Field, PiiKeyring};
use serde::{Deserialize, Serialize};
use sqlx::{Any, Transaction};

use crate::{Envelope, ExchangeError, Message};

/// The personal-data field queued envelopes are sealed as.
pub(crate) const ENVELOPE_FIELD: Field = Field::Other("exchange-envelope");

/// A file that travels with a message as a bundle item. The file must stay in place until the
/// message is packed (zones keep their materials and certificates anyway).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundFile {
    /// Item name in the bundle: a plain file name, unique within the message, not
    /// `message.json`.
    pub item: String,
    /// Media type, e.g. `application/pdf`.
    pub media_type: String,
    /// Where the bytes are.
    pub path: PathBuf,
    /// When the file is sealed personal data (`ow_pii` sealed file, e.g. an uploaded material):
    /// the context it was sealed for. The packer opens it with the zone's keyring as it packs,
    /// so its clear bytes exist only inside the (encrypted) bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_context: Option<String>,
}

/// Queues `message` for `channel` inside `tx`: it is packed after `tx` commits, and never if
/// `tx` rolls back. Returns the message id. Call [`crate::Exchange::wake`] after committing to
/// pack without waiting for the next poll.
pub async fn enqueue(
    tx: &mut Transaction<'static, Any>,
    pii: &PiiKeyring,
    channel: &Channel,
    message: Message,
    files: Vec<OutboundFile>,
) -> Result<String, ExchangeError> {
    for (i, file) in files.iter().enumerate() {
        ow_bundle::validate_item_name(&file.item, usize::MAX).map_err(|e| {
            ExchangeError::BadMessage {
                reason: format!("item name {:?} cannot travel: {e}", file.item),
            }
        })?;
        if file.item == crate::MESSAGE_ITEM || files[..i].iter().any(|f| f.item == file.item) {
            return Err(ExchangeError::BadMessage {
                reason: format!("item name {:?} is used twice in one message", file.item),
            });
        }
    }
    let kind = message.kind();
    let case_id = message.application_no().map(str::to_owned);
    let envelope = Envelope::new(message, ow_store::now_ms());
    let json = serde_json::to_vec(&envelope).map_err(|e| ExchangeError::BadMessage {
        reason: format!("message cannot be encoded: {e}"),
    })?;
    let sealed = pii
        .seal(ENVELOPE_FIELD, envelope.message_id.as_bytes(), &json)
        .to_text();
    let files_json = serde_json::to_string(&files).map_err(|e| ExchangeError::BadMessage {
        reason: format!("file list cannot be encoded: {e}"),
    })?;
    sqlx::query(
        "INSERT INTO exchange_outbox (message_id, channel, kind, case_id, envelope_sealed, \
         files_json, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&envelope.message_id)
    .bind(channel.to_string())
    .bind(kind)
    .bind(case_id)
    .bind(sealed)
    .bind(files_json)
    .bind(envelope.created_at_ms)
    .execute(&mut **tx)
    .await?;
    Ok(envelope.message_id)
}

/// How many queued messages are not packed yet.
pub async fn pending_count(store: &ow_store::Store) -> Result<i64, ExchangeError> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM exchange_outbox WHERE packed_at_ms IS NULL")
            .fetch_one(store.reader())
            .await?,
    )
}

/// The messages queued for `channel` and not packed yet, oldest first, opened, with their files
/// (for tests and operators' status pages).
pub async fn queued_messages(
    store: &ow_store::Store,
    pii: &PiiKeyring,
    channel: &Channel,
) -> Result<Vec<(Envelope, Vec<OutboundFile>)>, ExchangeError> {
    use sqlx::Row;
    let rows = sqlx::query(
        "SELECT message_id, envelope_sealed, files_json FROM exchange_outbox \
         WHERE channel = $1 AND envelope_sealed IS NOT NULL ORDER BY message_id",
    )
    .bind(channel.to_string())
    .fetch_all(store.reader())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.try_get("message_id")?;
        let sealed: String = row.try_get("envelope_sealed")?;
        let files: String = row.try_get("files_json")?;
        let json = pii.open(
            ENVELOPE_FIELD,
            id.as_bytes(),
            &ow_pii::Sealed::from_text(&sealed)?,
        )?;
        let envelope = Envelope::from_json(&json)?;
        let files: Vec<OutboundFile> =
            serde_json::from_str(&files).map_err(|e| ExchangeError::BadMessage {
                reason: format!("the file list of queued message {id} is damaged: {e}"),
            })?;
        out.push((envelope, files));
    }
    Ok(out)
}
