//! The error type of the crate.

use std::path::PathBuf;

use crate::{Field, PiiKeyId};

/// Why personal data could not be sealed, opened, or its key file used.
///
/// No variant carries key material or a plaintext value, so an error can be logged as it is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PiiError {
    /// The key file is loose (group or others can read it) or cannot be read; the message comes
    /// from `ow-keys` and tells the operator what to do.
    #[error(transparent)]
    Key(#[from] ow_keys::KeyError),

    /// The key file does not follow the format described in `docs/personal-data.md`.
    #[error("personal-data key file {path} is invalid: {reason}")]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong (never quotes key material).
        reason: String,
    },

    /// [`crate::PiiKeyring::generate_key_file`] found a file at the path.
    #[error(
        "{path} already exists; ow-pii never overwrites a key file (losing a key makes every \
         value sealed with it unreadable). To add a key, rotate the existing file instead"
    )]
    Exists {
        /// The existing file.
        path: PathBuf,
    },

    /// The key file (or its temporary copy during rotation) could not be written.
    #[error("cannot write personal-data key file {path}: {cause}")]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },

    /// The operating system's random generator failed while making a key.
    #[error("the operating system's random generator failed: {0}")]
    Random(String),

    /// The sealed value names a key id the keyring does not hold.
    #[error(
        "the value was sealed with key {key_id}, which is not in the personal-data key file; \
         the key file may be missing an old key (rotation keeps old keys: restore the line \
         `ow-pii-key:{key_id}:…` from the key-file backup)"
    )]
    UnknownKey {
        /// The key id named by the sealed value.
        key_id: PiiKeyId,
    },

    /// Authentication failed: the stored value was altered, or it is opened for another field or
    /// another record than the one it was sealed for.
    #[error(
        "cannot open the sealed {field} value: authentication failed (the stored value was \
         altered, or it was sealed for another field or record)"
    )]
    Authentication {
        /// The field the caller tried to open.
        field: Field,
    },

    /// The sealed value is not in a known encoding.
    #[error("malformed sealed value: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
}

impl PiiError {
    pub(crate) fn malformed(reason: impl Into<String>) -> Self {
        Self::Malformed {
            reason: reason.into(),
        }
    }
}
