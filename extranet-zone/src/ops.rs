//! Operators' commands on the back office's exchange, run beside (or without) the server:
//! `ow-extranet status` (counts and dead letters: ids, kinds, reason codes, no personal data)
//! and `ow-extranet retry-dead-letter ID` (the running exchange puts it back in line and logs
//! the retry).

use ow_store::{OpenOptions, Store};

use crate::Settings;
use crate::error::Result;
use crate::exchange::{self, DeadLetter, ExchangeStatus};

async fn open_store(settings: &Settings) -> Result<Store> {
    let store = Store::open(&settings.database_url(), &OpenOptions::default()).await?;
    exchange::migrate(&store).await?;
    Ok(store)
}

/// The exchange's counts and dead letters.
pub async fn exchange_status(settings: &Settings) -> Result<ExchangeStatus> {
    let store = open_store(settings).await?;
    let status = exchange::status(&store).await;
    store.close().await;
    Ok(status?)
}

/// Asks the exchange to retry dead letter `id` (after its cause was fixed).
pub async fn retry_dead_letter(settings: &Settings, id: &str) -> Result<DeadLetter> {
    let store = open_store(settings).await?;
    let letter = exchange::request_retry(&store, id).await;
    store.close().await;
    Ok(letter?)
}
