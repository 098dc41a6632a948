//! Messages between zones, and the two ends that carry them: a transactional outbox that turns
//! queued messages into signed bundles in the zone's outbox folder, and an importer that takes
//! verified bundles from the zone's inbox folder exactly once.
//!
//! - [`messages`]: the wire contract, one JSON [`Envelope`] per bundle (item `message.json`),
//!   with materials and certificates as further items. Spec: `docs/exchange-messages.md`.
//! - [`enqueue`]: called inside the caller's database transaction, so a message is queued if
//!   and only if the change it reports commits.
//! - [`Exchange::pack_pending`]: packs queued messages with the zone's signing key, encrypted to
//!   the receiving zone, on the channel's next sequence numbers (through `ow_ferry::pack`), then
//!   marks them packed. A crash between the two packs a message again under a new bundle id:
//!   delivery is at least once.
//! - [`Exchange::import_pending`]: re-verifies each bundle in the inbox (signature, channel,
//!   hashes; the ferry agent already enforced expiry, replay and order), decrypts it, and calls
//!   the zone's [`ImportHandler`] inside one transaction that also records the bundle id and the
//!   message id. A message id seen before is skipped, so import is exactly once.
//!
//! Both ends append to the zone's exchange log (an `ow-ferrylog` log in `work_dir/log`):
//! `queued` for each bundle packed, `imported` or `rejected` for each bundle taken in.

mod error;
mod exchange;
pub mod messages;
mod outbox;

pub use error::ExchangeError;
pub use exchange::{
    Disposition, Exchange, ExchangeConfig, ImportHandler, ImportOutcome, ImportReport, InboundFile,
    InboundMessage, import_message,
};
pub use messages::*;
pub use outbox::{OutboundFile, enqueue, pending_count, queued_messages};

use ow_store::Store;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Creates or updates the exchange tables (`exchange_outbox`, `exchange_imported`,
/// `exchange_messages`) in the zone's database.
pub async fn migrate(store: &Store) -> Result<(), ExchangeError> {
    store.migrate("ow-exchange", &MIGRATOR).await?;
    Ok(())
}
