//! The crate's error type.

use crate::exchange::ExchangeError;

/// Why an operation of the back office failed (operator-facing; pages show Chinese messages).
#[derive(Debug, thiserror::Error)]
pub enum ExtranetError {
    /// A query failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// The store could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] ow_store::StoreError),
    /// The personal-data keys failed.
    #[error("personal data: {0}")]
    Pii(#[from] ow_pii::PiiError),
    /// A certificate could not be built, signed or its key loaded.
    #[error("certificate: {0}")]
    Certificate(#[from] ow_certificate::CertificateError),
    /// The audit log failed.
    #[error("audit log: {0}")]
    Audit(#[from] ow_ferrylog::Error),
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
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// A request that cannot be carried out (the message says why and what to do).
    #[error("{0}")]
    Invalid(String),
}

impl ExtranetError {
    /// An [`ExtranetError::Io`].
    pub fn io(what: &'static str, path: &std::path::Path, cause: std::io::Error) -> Self {
        ExtranetError::Io {
            what,
            path: path.display().to_string(),
            cause,
        }
    }
}

impl From<ow_domain::DomainError> for ExtranetError {
    fn from(e: ow_domain::DomainError) -> Self {
        ExtranetError::Invalid(e.message_zh())
    }
}

/// Shorthand.
pub type Result<T, E = ExtranetError> = std::result::Result<T, E>;
