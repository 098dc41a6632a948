//! Errors of the exchange.

use std::path::PathBuf;

/// What went wrong while queueing, packing or importing messages.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// A database operation failed.
    #[error("database error in the exchange: {0}")]
    Database(#[from] sqlx::Error),
    /// Opening or migrating the store failed.
    #[error(transparent)]
    Store(#[from] ow_store::StoreError),
    /// A key or trust file could not be loaded.
    #[error(transparent)]
    Keys(#[from] ow_keys::KeyError),
    /// Sealing or opening a queued message failed.
    #[error(
        "cannot open a queued message: {0}; check that the personal-data key file is the one the messages were sealed with"
    )]
    Pii(#[from] ow_pii::PiiError),
    /// A file could not be read or written.
    #[error("{path}: {cause}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the file system said.
        cause: std::io::Error,
    },
    /// Packing a bundle failed.
    #[error("cannot pack a bundle: {0}")]
    Pack(String),
    /// The exchange log could not be written.
    #[error("cannot write the exchange log: {0}")]
    Log(#[from] ow_ferrylog::Error),
    /// No outbox folder is configured for a channel a message was queued on.
    #[error(
        "no outbox folder is configured for channel {channel}; add it to the exchange settings"
    )]
    NoOutbox {
        /// The channel.
        channel: String,
    },
    /// A received message is not a valid envelope.
    #[error("{reason}")]
    BadMessage {
        /// What is wrong with it.
        reason: String,
    },
    /// The zone's import handler failed (the import is rolled back and retried).
    #[error("import failed: {0}")]
    Handler(String),
}

impl ExchangeError {
    pub(crate) fn io(path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        ExchangeError::Io {
            path: path.into(),
            cause,
        }
    }
}
