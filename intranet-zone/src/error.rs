//! The crate's error type.

use ow_exchange::ExchangeError;

/// Why an operation of the cadastral zone failed (operator-facing; pages show Chinese messages).
#[derive(Debug, thiserror::Error)]
pub enum IntranetError {
    /// A query failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// The store could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] ow_store::StoreError),
    /// The personal-data keys failed.
    #[error("personal data: {0}")]
    Pii(#[from] ow_pii::PiiError),
    /// The exchange failed.
    #[error("exchange: {0}")]
    Exchange(#[from] ExchangeError),
    /// A key file could not be loaded.
    #[error("key: {0}")]
    Key(#[from] ow_keys::KeyError),
    /// The configuration is not acceptable.
    #[error(transparent)]
    Config(#[from] ow_config::ConfigError),
    /// A file operation failed.
    #[error("cannot {what} {path}: {cause}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or folder.
        path: String,
        /// What the operating system said.
        cause: std::io::Error,
    },
    /// Stored data does not read back as expected.
    #[error("stored data is inconsistent: {0}; restore the database from a backup or report it")]
    Corrupt(String),
    /// A request that cannot be carried out (the message says why and what to do).
    #[error("{0}")]
    Invalid(String),
}

impl IntranetError {
    /// An [`IntranetError::Io`].
    pub fn io(what: &'static str, path: &std::path::Path, cause: std::io::Error) -> Self {
        IntranetError::Io {
            what,
            path: path.display().to_string(),
            cause,
        }
    }
}

/// Shorthand.
pub type Result<T, E = IntranetError> = std::result::Result<T, E>;
