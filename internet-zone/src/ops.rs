//! Operators' commands on the portal's exchange, run beside (or without) the server:
//! `ow-internet status` (counts and dead letters: ids, kinds, reason codes, no personal data)
//! and `ow-internet retry-dead-letter ID` (the running exchange puts it back in line and logs
//! the retry).

use ow_exchange::{DeadLetter, ExchangeStatus};
use ow_store::{OpenOptions, Store};

use crate::config::Settings;
use crate::error::AppError;

async fn open_store(settings: &Settings) -> Result<Store, AppError> {
    let store = Store::open(&settings.database_url(), &OpenOptions::default()).await?;
    ow_exchange::migrate(&store).await?;
    Ok(store)
}

/// The exchange's counts and dead letters.
pub async fn exchange_status(settings: &Settings) -> Result<ExchangeStatus, AppError> {
    let store = open_store(settings).await?;
    let status = ow_exchange::status(&store).await;
    store.close().await;
    Ok(status?)
}

/// Asks the exchange to retry dead letter `id` (after its cause was fixed).
pub async fn retry_dead_letter(settings: &Settings, id: &str) -> Result<DeadLetter, AppError> {
    let store = open_store(settings).await?;
    let letter = ow_exchange::request_retry(&store, id).await;
    store.close().await;
    Ok(letter?)
}
