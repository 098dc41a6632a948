//! The exchange with the portal: `ow-exchange` (transactional outbox, exactly-once inbox), and
//! two helpers for tests and offline tools.

use ow_bundle::Channel;
use ow_pii::{Field, PiiKeyring, Sealed};
use ow_store::Store;
use sqlx::Row;

pub use ow_exchange::*;

/// Imports `msg` exactly once through `handler` without a bundle, the way
/// `Exchange::import_pending` does after verifying one: the message id and the bundle id are
/// recorded (`exchange_messages`, `exchange_imported`) in the same transaction as the handler's
/// effects; a message id seen before is skipped (`Ok(None)`). For tests and for re-importing
/// messages an operator took from quarantine.
pub async fn import_message<H: ImportHandler>(
    store: &Store,
    handler: &H,
    msg: &InboundMessage,
) -> Result<Option<Disposition>, ExchangeError> {
    let now = ow_store::now_ms();
    let mut tx = store.begin().await?;
    let fresh = sqlx::query(
        "INSERT INTO exchange_messages (message_id, bundle_id, imported_at_ms) \
         VALUES ($1, $2, $3) ON CONFLICT (message_id) DO NOTHING",
    )
    .bind(&msg.envelope.message_id)
    .bind(&msg.bundle_id)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !fresh {
        return Ok(None);
    }
    let disposition = match handler.import(&mut tx, msg).await {
        Ok(d) => d,
        Err(e) => {
            let _ = tx.rollback().await;
            return Err(e);
        }
    };
    let (outcome, reason) = match &disposition {
        Disposition::Imported => ("imported", None),
        Disposition::Refused { reason } => ("refused", Some(reason.clone())),
    };
    sqlx::query(
        "INSERT INTO exchange_imported (bundle_id, message_id, channel, kind, case_id, outcome, \
         reason, imported_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&msg.bundle_id)
    .bind(&msg.envelope.message_id)
    .bind(msg.channel.to_string())
    .bind(msg.envelope.message.kind())
    .bind(msg.envelope.message.application_no())
    .bind(outcome)
    .bind(reason)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(disposition))
}

/// The sealing field of queued envelopes in `exchange_outbox`.
// TODO(lead): ow-exchange keeps this private (`outbox::ENVELOPE_FIELD`); expose a reader of
// queued messages there and drop this copy.
const ENVELOPE_FIELD: Field = Field::Other("exchange-envelope");

/// Messages queued for `channel` and not packed yet, oldest first, with their files (for
/// tests and the operator's status page).
pub async fn queued_messages(
    store: &Store,
    pii: &PiiKeyring,
    channel: &Channel,
) -> Result<Vec<(Envelope, Vec<OutboundFile>)>, ExchangeError> {
    let rows = sqlx::query(
        "SELECT message_id, envelope_sealed, files_json FROM exchange_outbox \
         WHERE channel = $1 AND envelope_sealed IS NOT NULL ORDER BY created_at_ms, message_id",
    )
    .bind(channel.to_string())
    .fetch_all(store.reader())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.try_get("message_id")?;
        let sealed: String = row.try_get("envelope_sealed")?;
        let files: String = row.try_get("files_json")?;
        let json = pii.open(ENVELOPE_FIELD, id.as_bytes(), &Sealed::from_text(&sealed)?)?;
        let envelope = Envelope::from_json(&json)?;
        let files: Vec<OutboundFile> =
            serde_json::from_str(&files).map_err(|e| ExchangeError::BadMessage {
                reason: format!("files_json of {id}: {e}"),
            })?;
        out.push((envelope, files));
    }
    Ok(out)
}
