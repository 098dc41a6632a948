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

    /// A chunk of a sealed file failed authentication: the file was altered, cut short,
    /// extended, had chunks dropped or reordered, or belongs to another record.
    #[error(
        "cannot open the sealed file: chunk {chunk} failed authentication (the file was altered, \
         cut short or reordered, or it belongs to another record); restore it from a backup"
    )]
    FileAuthentication {
        /// The index of the chunk that failed (from 0).
        chunk: u64,
    },

    /// A sealed file could not be read or written.
    #[error("{what}: {cause}")]
    Io {
        /// The file, or what was being done.
        what: String,
        /// The I/O error.
        cause: std::io::Error,
    },

    /// The sealed value is not in a known encoding.
    #[error("malformed sealed value: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
}

impl PiiError {
    /// The personal-data error inside an I/O error returned by a sealed file's reader or writer
    /// (an authentication failure, an unknown key …), if it is one.
    pub fn in_io(err: &std::io::Error) -> Option<&PiiError> {
        err.get_ref()
            .and_then(|inner| inner.downcast_ref::<PiiError>())
    }

    /// Turns an I/O error met while working on `path` into a `PiiError`: the personal-data error
    /// inside it if there is one, else [`PiiError::Io`] naming the path.
    pub fn from_io(path: &std::path::Path, err: std::io::Error) -> Self {
        if PiiError::in_io(&err).is_some() {
            if let Some(Ok(inner)) = err.into_inner().map(|e| e.downcast::<PiiError>()) {
                return *inner;
            }
            return PiiError::malformed("a sealed-file error could not be unpacked");
        }
        PiiError::io(path, err)
    }

    pub(crate) fn io(path: &std::path::Path, cause: std::io::Error) -> Self {
        Self::Io {
            what: path.display().to_string(),
            cause,
        }
    }

    pub(crate) fn malformed(reason: impl Into<String>) -> Self {
        Self::Malformed {
            reason: reason.into(),
        }
    }
}
