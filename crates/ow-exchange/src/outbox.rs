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

/// A small file that travels with a message from memory: it is stored sealed in the queued
/// row (never as a plain file on disk), written to a private staging file only while its bundle
/// is packed, and forgotten once packed. For documents with personal data, such as a signed
/// e-certificate.
#[derive(Clone, PartialEq, Eq)]
pub struct InlineFile {
    /// Item name in the bundle (as for [`OutboundFile::item`]).
    pub item: String,
    /// Media type.
    pub media_type: String,
    /// The bytes (at most [`MAX_INLINE_BYTES`]).
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for InlineFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineFile")
            .field("item", &self.item)
            .field("media_type", &self.media_type)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// Largest [`InlineFile`].
pub const MAX_INLINE_BYTES: usize = 1 << 20;

/// An inline file as stored in `exchange_outbox.inline_json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredInline {
    pub(crate) item: String,
    pub(crate) media_type: String,
    pub(crate) sealed: String,
}

/// The sealing context of an inline file: the message id and the item name.
pub(crate) fn inline_ctx(message_id: &str, item: &str) -> Vec<u8> {
    format!("{message_id}/{item}").into_bytes()
}

/// Queues `message` for `channel` inside `tx`: it is packed after `tx` commits, and never if
/// `tx` rolls back. Returns the message id. Call [`crate::Exchange::wake`] after committing to
/// pack without waiting for the next poll.
///
/// A message that could never be delivered is refused here, where it is made, with
/// [`ExchangeError::Contract`] or [`ExchangeError::BadMessage`]: a kind the channel does not
/// carry, an application number that is not a valid case id, a control character in a text
/// field, more or larger files than one message may carry ([`Message::check`]).
pub async fn enqueue(
    tx: &mut Transaction<'static, Any>,
    pii: &PiiKeyring,
    channel: &Channel,
    message: Message,
    files: Vec<OutboundFile>,
) -> Result<String, ExchangeError> {
    enqueue_with_inline(tx, pii, channel, message, files, Vec::new()).await
}

/// [`enqueue`] with files that travel from memory ([`InlineFile`]) besides files on disk.
pub async fn enqueue_with_inline(
    tx: &mut Transaction<'static, Any>,
    pii: &PiiKeyring,
    channel: &Channel,
    message: Message,
    files: Vec<OutboundFile>,
    inline: Vec<InlineFile>,
) -> Result<String, ExchangeError> {
    let names: Vec<&str> = files
        .iter()
        .map(|f| f.item.as_str())
        .chain(inline.iter().map(|f| f.item.as_str()))
        .collect();
    for (i, name) in names.iter().enumerate() {
        ow_bundle::validate_item_name(name, usize::MAX).map_err(|e| ExchangeError::BadMessage {
            reason: format!("item name {name:?} cannot travel: {e}"),
        })?;
        if *name == crate::MESSAGE_ITEM || names[..i].iter().any(|n| n.eq_ignore_ascii_case(name)) {
            return Err(ExchangeError::BadMessage {
                reason: format!("item name {name:?} is used twice in one message"),
            });
        }
    }
    if names.len() > crate::MAX_FILES_PER_MESSAGE {
        return Err(crate::ContractViolation::TooManyFiles { count: names.len() }.into());
    }
    if let Some(big) = inline.iter().find(|f| f.bytes.len() > MAX_INLINE_BYTES) {
        return Err(ExchangeError::BadMessage {
            reason: format!(
                "inline file {:?} is {} bytes, more than the {MAX_INLINE_BYTES} an inline file may hold",
                big.item,
                big.bytes.len()
            ),
        });
    }
    let kind = message.kind();
    if !Message::kinds_on(channel).contains(&kind) {
        return Err(ExchangeError::BadMessage {
            reason: format!("channel {channel} does not carry {kind} messages"),
        });
    }
    message.check()?;
    let case_id = message.application_no().map(str::to_owned);
    let route = message.route();
    let envelope = Envelope::new(message, ow_store::now_ms());
    let json = serde_json::to_vec(&envelope).map_err(|e| ExchangeError::BadMessage {
        reason: format!("message cannot be encoded: {e}"),
    })?;
    if json.len() > crate::MAX_MESSAGE_BYTES {
        return Err(ExchangeError::BadMessage {
            reason: format!(
                "the message is {} bytes, more than the {} a message may hold",
                json.len(),
                crate::MAX_MESSAGE_BYTES
            ),
        });
    }
    let sealed = pii
        .seal(ENVELOPE_FIELD, envelope.message_id.as_bytes(), &json)
        .to_text();
    let files_json = serde_json::to_string(&files).map_err(|e| ExchangeError::BadMessage {
        reason: format!("file list cannot be encoded: {e}"),
    })?;
    let inline_json = if inline.is_empty() {
        None
    } else {
        let stored: Vec<StoredInline> = inline
            .iter()
            .map(|f| StoredInline {
                item: f.item.clone(),
                media_type: f.media_type.clone(),
                sealed: pii
                    .seal(
                        ENVELOPE_FIELD,
                        &inline_ctx(&envelope.message_id, &f.item),
                        &f.bytes,
                    )
                    .to_text(),
            })
            .collect();
        Some(
            serde_json::to_string(&stored).map_err(|e| ExchangeError::BadMessage {
                reason: format!("inline files cannot be encoded: {e}"),
            })?,
        )
    };
    sqlx::query(
        "INSERT INTO exchange_outbox (message_id, channel, kind, case_id, envelope_sealed, \
         files_json, inline_json, created_at_ms, route) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&envelope.message_id)
    .bind(channel.to_string())
    .bind(kind)
    .bind(case_id)
    .bind(sealed)
    .bind(files_json)
    .bind(inline_json)
    .bind(envelope.created_at_ms)
    .bind(route.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(envelope.message_id)
}

/// The files on disk that queued messages not yet packed still need (dead letters included,
/// since an operator may retry them). A zone may delete any other file it wrote for the outbox.
pub async fn files_still_needed(
    store: &ow_store::Store,
) -> Result<std::collections::HashSet<PathBuf>, ExchangeError> {
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT files_json FROM exchange_outbox WHERE packed_at_ms IS NULL")
            .fetch_all(store.reader())
            .await?;
    let mut needed = std::collections::HashSet::new();
    for json in rows {
        let files: Vec<OutboundFile> =
            serde_json::from_str(&json).map_err(|e| ExchangeError::BadMessage {
                reason: format!("a queued file list is damaged: {e}"),
            })?;
        needed.extend(files.into_iter().map(|f| f.path));
    }
    Ok(needed)
}

/// How many queued messages are not packed yet (dead letters not counted).
pub async fn pending_count(store: &ow_store::Store) -> Result<i64, ExchangeError> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM exchange_outbox WHERE packed_at_ms IS NULL AND dead_at_ms IS NULL",
    )
    .fetch_one(store.reader())
    .await?)
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

/// The inline files ([`InlineFile`]) of a queued message not packed yet, opened (for tests and
/// operators' tools); empty once packed.
pub async fn queued_inline_files(
    store: &ow_store::Store,
    pii: &PiiKeyring,
    message_id: &str,
) -> Result<Vec<InlineFile>, ExchangeError> {
    let json: Option<Option<String>> =
        sqlx::query_scalar("SELECT inline_json FROM exchange_outbox WHERE message_id = $1")
            .bind(message_id)
            .fetch_optional(store.reader())
            .await?;
    let Some(Some(json)) = json else {
        return Ok(Vec::new());
    };
    let stored: Vec<StoredInline> =
        serde_json::from_str(&json).map_err(|e| ExchangeError::BadMessage {
            reason: format!("the inline files of {message_id} are damaged: {e}"),
        })?;
    stored
        .into_iter()
        .map(|f| {
            let bytes = pii.open(
                ENVELOPE_FIELD,
                &inline_ctx(message_id, &f.item),
                &ow_pii::Sealed::from_text(&f.sealed)?,
            )?;
            Ok(InlineFile {
                item: f.item,
                media_type: f.media_type,
                bytes: bytes.to_vec(),
            })
        })
        .collect()
}
