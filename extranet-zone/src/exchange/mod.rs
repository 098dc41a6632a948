//! The exchange with the portal: `ow-exchange` (transactional outbox, exactly-once inbox), and
//! a helper for tests and offline tools.

use ow_store::Store;

pub use ow_exchange::*;

/// Imports `msg` exactly once through `handler` without a bundle (`ow_exchange::import_message`);
/// `Ok(None)` when its message id was imported before.
pub async fn import_message<H: ImportHandler>(
    store: &Store,
    handler: &H,
    msg: &InboundMessage,
) -> Result<Option<Disposition>, ExchangeError> {
    Ok(
        match ow_exchange::import_message(store, handler, msg).await? {
            ImportOutcome::Imported => Some(Disposition::Imported),
            ImportOutcome::Refused { reason } => Some(Disposition::Refused { reason }),
            ImportOutcome::Duplicate => None,
        },
    )
}
