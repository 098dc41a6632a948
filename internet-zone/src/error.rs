//! Errors of the portal library.

use std::path::PathBuf;

/// Something the portal could not do. Messages say what was wrong and what to do; none of them
/// contains personal data.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The configuration is not usable.
    #[error(transparent)]
    Config(#[from] ow_config::ConfigError),
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] ow_store::StoreError),
    /// A query failed.
    #[error("database error: {0}; check that the database is reachable and not full")]
    Db(#[from] sqlx::Error),
    /// The personal-data keyring failed (missing key file, wrong mode, a value that does not open).
    #[error(transparent)]
    Pii(#[from] ow_pii::PiiError),
    /// A certificate could not be parsed, verified or rendered.
    #[error(transparent)]
    Certificate(#[from] ow_certificate::CertificateError),
    /// The bundle exchange failed.
    #[error(transparent)]
    Exchange(#[from] ow_exchange::ExchangeError),
    /// A file could not be read or written.
    #[error("cannot read or write {}: {cause}; check the data folder and its permissions", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the operating system said.
        cause: std::io::Error,
    },
    /// A key file named by a setting could not be loaded.
    #[error("setting {setting}: {cause}")]
    KeyFile {
        /// The setting, e.g. `pii_key_file`.
        setting: &'static str,
        /// What went wrong, with what to do.
        cause: String,
    },
    /// A page could not be rendered.
    #[error("cannot render page: {0}")]
    Template(#[from] askama::Error),
    /// A stored value is not what this version expects.
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

impl AppError {
    /// An [`AppError::Io`].
    pub fn io(path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        AppError::Io {
            path: path.into(),
            cause,
        }
    }
}

impl From<serde_json::Error> for AppError {
    fn from(e: serde_json::Error) -> Self {
        AppError::Corrupt(format!("JSON: {e}"))
    }
}

/// One problem with one form field: `field` is the input's name (for the link from the error
/// summary), `message` the Chinese text shown to the citizen.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The form field or JSON member, e.g. `seller_0_id_number`.
    pub field: String,
    /// What is wrong, in Chinese.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}
