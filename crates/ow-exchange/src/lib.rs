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
//! - [`Exchange::import_pending`]: takes only bundles the receiving ferry agent landed (id and
//!   digest in its `rx_landed`, read through [`LandedView`]), re-verifies each (signature,
//!   channel, hashes; the agent already enforced expiry, replay and order) within the message
//!   contract's limits, streams its items to private staging files, and calls the zone's
//!   [`ImportHandler`] inside one transaction that also records the bundle id and the message
//!   id. A message id seen before is skipped, so import is exactly once.
//! - Dead letters ([`deadletter`]): no single message can stop a channel. A message that fails
//!   deterministically, or past its retry budget ([`RetryPolicy`]), is set aside with a reason
//!   code, shown by [`status`], and put back in line by an operator with [`request_retry`].
//!
//! Both ends append to the zone's exchange log (an `ow-ferrylog` log in `work_dir/log`), each
//! entry durable before the state it records: `queued` for each bundle packed, `imported` for
//! each bundle taken in, `rejected` for each message set aside, `action` for each retry.

pub mod deadletter;
mod error;
mod exchange;
mod import;
mod landed;
pub mod messages;
mod outbox;
mod pack;

pub use deadletter::{
    DeadLetter, Direction, ExchangeStatus, dead_letters, dead_letters_for_case, request_retry,
    status,
};
pub use error::{ExchangeError, FailureClass};
pub use exchange::{Exchange, ExchangeConfig, FaultPoint, RetryPolicy};
pub use import::{
    Disposition, ImportHandler, ImportOutcome, ImportReport, InboundFile, InboundMessage,
    import_message,
};
pub use landed::{LandedRecord, LandedView};
pub use messages::*;
pub use outbox::{
    InlineFile, MAX_INLINE_BYTES, OutboundFile, enqueue, enqueue_with_inline, files_still_needed,
    pending_count, queued_inline_files, queued_messages,
};

use ow_store::Store;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Creates or updates the exchange tables (`exchange_outbox`, `exchange_imported`,
/// `exchange_messages`, `exchange_inbound_attempts`, `exchange_dead_letters`) in the zone's
/// database.
pub async fn migrate(store: &Store) -> Result<(), ExchangeError> {
    store.migrate("ow-exchange", &MIGRATOR).await?;
    Ok(())
}
