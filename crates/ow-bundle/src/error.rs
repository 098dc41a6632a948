//! Error types: [`VerifyError`] (one variant per rejection class, each with a stable code),
//! [`BundleError`] (writing, and header reading), [`KeyError`] and [`TrustError`].
//!
//! Messages are written for an operator: they say what was wrong and what to do. Values that come
//! from an untrusted bundle (item names, reasons quoted from parsers) are shown with Rust's debug
//! escaping so that control characters cannot forge log lines.

use std::io;

use chrono::{DateTime, Utc};

use crate::digest::Digest;
use crate::keys::KeyId;
use crate::zone::{Channel, Zone};

/// Why a bundle was rejected. Every variant is one rejection class with a stable
/// [`code`](VerifyError::code); a receiver quarantines and logs a rejected bundle, never imports
/// it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The file does not start with the bundle magic.
    #[error(
        "not a OneWindow bundle: the first 8 bytes are not the bundle magic (a file of another kind, or one mangled by a text-mode transfer that rewrote line endings); quarantine it and check the transfer settings of the gateway"
    )]
    BadMagic,

    /// The format version is not one this build understands.
    #[error(
        "unsupported bundle format version {found} (this build reads versions 1 to {supported}); upgrade the receiving software, or ask the sender to write a version this build reads (`bundle_format_version` in the sender's trust file)"
    )]
    UnsupportedVersion {
        /// Version found in the prefix or header.
        found: u16,
        /// The newest version this build reads (it reads every version from 1 up).
        supported: u16,
    },

    /// The suite id is not implemented.
    #[error(
        "unknown cryptographic suite {found} (this build implements suite 1, ed25519-blake3-age-x25519-zstd); ask the sender to use a suite both sides implement"
    )]
    UnknownSuite {
        /// Suite id found.
        found: u16,
    },

    /// The declared header length exceeds the limit.
    #[error(
        "header declares {declared} bytes, more than the limit of {limit} bytes; the bundle is malformed or hostile — quarantine it (raise max_header_bytes only if such headers are expected)"
    )]
    HeaderTooLarge {
        /// Declared header length.
        declared: u64,
        /// Configured limit.
        limit: u64,
    },

    /// A declared payload size (stored or decompressed) exceeds the limit.
    #[error(
        "{what} is {declared} bytes, more than the limit of {limit} bytes; quarantine the bundle, or raise the limit if bundles this large are expected on this channel"
    )]
    PayloadTooLarge {
        /// Which size: "stored payload" or "decompressed payload".
        what: &'static str,
        /// Declared size.
        declared: u64,
        /// Configured limit.
        limit: u64,
    },

    /// The header lists more items than allowed.
    #[error(
        "header lists {declared} items, more than the limit of {limit}; quarantine the bundle, or raise max_items if such bundles are expected"
    )]
    TooManyItems {
        /// Number of items declared.
        declared: u64,
        /// Configured limit.
        limit: u64,
    },

    /// The header is not valid JSON of the expected shape, or violates a field rule.
    #[error(
        "malformed header: {reason}; the sender wrote an invalid bundle — quarantine it and report it to the sending zone's operators"
    )]
    MalformedHeader {
        /// What rule was broken.
        reason: String,
    },

    /// The signature is malformed or does not verify with the pinned key.
    #[error(
        "bad signature: {reason}; the bundle was altered after signing or signed with a different key than its header claims — quarantine it and do not import"
    )]
    BadSignature {
        /// Details.
        reason: String,
    },

    /// The signing key id is not pinned for this channel.
    #[error(
        "bundle on channel {channel} was signed by key {key_id}, which is not pinned for that channel; if the sending zone rotated its key, add the new public key to the trust file after confirming it out of band, otherwise quarantine the bundle"
    )]
    UnknownKey {
        /// Key id claimed by the header.
        key_id: KeyId,
        /// Channel the bundle travels on.
        channel: Channel,
    },

    /// The channel is inconsistent with the header zones, or not in the trust store.
    #[error("wrong channel: {reason}")]
    WrongChannel {
        /// Details, including what to do.
        reason: String,
    },

    /// The bundle is addressed to another zone.
    #[error(
        "bundle is addressed to the {addressed_to} zone but this receiver is the {receiver} zone; it was routed to the wrong inbox — quarantine it and check the gateway routing"
    )]
    WrongReceiver {
        /// The zone doing the verification.
        receiver: Zone,
        /// The zone named in the header.
        addressed_to: Zone,
    },

    /// The bundle's validity period has ended.
    #[error(
        "bundle expired at {expires_at} (now {now}); it waited too long in transit — ask the sending zone to send it again with a new sequence number"
    )]
    Expired {
        /// Header `expires_at`.
        expires_at: DateTime<Utc>,
        /// Verification time.
        now: DateTime<Utc>,
    },

    /// The bundle claims to be created in the future beyond the allowed clock skew.
    #[error(
        "bundle claims creation at {created_at}, later than now ({now}) plus the allowed clock skew of {max_skew_seconds} s; check the clocks of both zones (NTP) before re-sending"
    )]
    NotYetValid {
        /// Header `created_at`.
        created_at: DateTime<Utc>,
        /// Verification time.
        now: DateTime<Utc>,
        /// Allowed skew in seconds.
        max_skew_seconds: i64,
    },

    /// An item name is not a plain, safe file name.
    #[error(
        "item name {name:?} is not allowed: {reason}; item names must be plain file names — quarantine the bundle and ask the sender to rename the file"
    )]
    BadItemName {
        /// The offending name (as written in the header).
        name: String,
        /// Which rule was broken.
        reason: String,
    },

    /// The file ends before the declared end of the bundle.
    #[error(
        "bundle is truncated: {what}; the transfer was cut short — fetch the file again from the gateway"
    )]
    Truncated {
        /// What was being read, and how much was missing.
        what: String,
    },

    /// Bytes follow the declared end of the payload.
    #[error(
        "{extra} bytes of trailing garbage after the declared end of the payload; the file was appended to or corrupted in transfer — quarantine it"
    )]
    TrailingGarbage {
        /// Number of unexpected bytes.
        extra: u64,
    },

    /// The stored payload's BLAKE3 hash does not match the signed header.
    #[error(
        "payload hash mismatch: BLAKE3 of the stored payload is {actual}, the signed header says {expected}; the payload was altered or corrupted in transfer — quarantine it and ask for a re-send"
    )]
    PayloadHashMismatch {
        /// Hash in the header.
        expected: Digest,
        /// Hash computed over the file.
        actual: Digest,
    },

    /// An item's content does not match its signed hash.
    #[error(
        "item {name:?}: {algorithm} hash mismatch (header {expected}, content {actual}); the sender packed inconsistent data or the payload was altered — quarantine the bundle"
    )]
    ItemHashMismatch {
        /// Item name.
        name: String,
        /// `blake3` or `sha256`.
        algorithm: &'static str,
        /// Hash in the header.
        expected: Digest,
        /// Hash of the content.
        actual: Digest,
    },

    /// Decompression produced more bytes than the header declares.
    #[error(
        "decompression bomb: the payload decompresses to more than the declared {declared} bytes; decompression was stopped — quarantine the bundle and report the sender"
    )]
    DecompressionBomb {
        /// Declared plain size.
        declared: u64,
    },

    /// Decompression produced fewer bytes than the header declares.
    #[error(
        "payload decompressed to {actual} bytes but the header declares {declared}; the sender packed an inconsistent bundle — quarantine it"
    )]
    PlainSizeMismatch {
        /// Declared plain size.
        declared: u64,
        /// Bytes produced.
        actual: u64,
    },

    /// The compressed stream is invalid.
    #[error(
        "payload could not be decompressed: {reason}; the sender packed a broken bundle — quarantine it"
    )]
    DecompressionFailed {
        /// Decoder message.
        reason: String,
    },

    /// Decryption failed (wrong key, or corrupted ciphertext).
    #[error(
        "payload could not be decrypted: {reason}; check that this zone's encryption secret matches the public key the sender has in its trust file"
    )]
    DecryptionFailed {
        /// Details.
        reason: String,
    },

    /// The payload is encrypted but no decryption secret was supplied.
    #[error(
        "payload is encrypted to key {recipient_key_id} but no decryption secret was supplied; configure this zone's age secret key for verification"
    )]
    MissingDecryptionKey {
        /// Key id of the recipient named in the header.
        recipient_key_id: KeyId,
    },

    /// Reading the bundle or writing to the item sink failed.
    #[error("i/o error while {context}: {source}; check the disk and retry")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl VerifyError {
    /// A stable, machine-readable code for this rejection class (used in logs and quarantine
    /// records; never changes meaning once released).
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::BadMagic => "bad-magic",
            VerifyError::UnsupportedVersion { .. } => "unsupported-version",
            VerifyError::UnknownSuite { .. } => "unknown-suite",
            VerifyError::HeaderTooLarge { .. } => "header-too-large",
            VerifyError::PayloadTooLarge { .. } => "payload-too-large",
            VerifyError::TooManyItems { .. } => "too-many-items",
            VerifyError::MalformedHeader { .. } => "malformed-header",
            VerifyError::BadSignature { .. } => "bad-signature",
            VerifyError::UnknownKey { .. } => "unknown-key",
            VerifyError::WrongChannel { .. } => "wrong-channel",
            VerifyError::WrongReceiver { .. } => "wrong-receiver",
            VerifyError::Expired { .. } => "expired",
            VerifyError::NotYetValid { .. } => "not-yet-valid",
            VerifyError::BadItemName { .. } => "bad-item-name",
            VerifyError::Truncated { .. } => "truncated",
            VerifyError::TrailingGarbage { .. } => "trailing-garbage",
            VerifyError::PayloadHashMismatch { .. } => "payload-hash-mismatch",
            VerifyError::ItemHashMismatch { .. } => "item-hash-mismatch",
            VerifyError::DecompressionBomb { .. } => "decompression-bomb",
            VerifyError::PlainSizeMismatch { .. } => "plain-size-mismatch",
            VerifyError::DecompressionFailed { .. } => "decompression-failed",
            VerifyError::DecryptionFailed { .. } => "decryption-failed",
            VerifyError::MissingDecryptionKey { .. } => "missing-decryption-key",
            VerifyError::Io { .. } => "io",
        }
    }

    /// Every code [`code`](VerifyError::code) can return.
    pub const ALL_CODES: &'static [&'static str] = &[
        "bad-magic",
        "unsupported-version",
        "unknown-suite",
        "header-too-large",
        "payload-too-large",
        "too-many-items",
        "malformed-header",
        "bad-signature",
        "unknown-key",
        "wrong-channel",
        "wrong-receiver",
        "expired",
        "not-yet-valid",
        "bad-item-name",
        "truncated",
        "trailing-garbage",
        "payload-hash-mismatch",
        "item-hash-mismatch",
        "decompression-bomb",
        "plain-size-mismatch",
        "decompression-failed",
        "decryption-failed",
        "missing-decryption-key",
        "io",
    ];

    pub(crate) fn malformed(reason: impl Into<String>) -> Self {
        VerifyError::MalformedHeader {
            reason: sanitize(reason.into()),
        }
    }

    pub(crate) fn io(context: &'static str, source: io::Error) -> Self {
        VerifyError::Io { context, source }
    }
}

/// Makes text quoted from an untrusted bundle safe for one log line: control characters are
/// escaped and the text is cut at 300 characters.
pub(crate) fn sanitize(text: String) -> String {
    const MAX_CHARS: usize = 300;
    if !text.chars().any(char::is_control) && text.chars().count() <= MAX_CHARS {
        return text;
    }
    let mut out = String::with_capacity(text.len().min(4 * MAX_CHARS));
    for (i, c) in text.chars().enumerate() {
        if i == MAX_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

/// Errors while writing a bundle, or reading a bundle's header with
/// [`read_header`](crate::read_header).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The bundle being read was rejected (only from [`read_header`](crate::read_header)).
    #[error(transparent)]
    Rejected(#[from] VerifyError),

    /// A metadata field given to the builder is invalid.
    #[error("invalid bundle {field}: {reason}")]
    InvalidMetadata {
        /// Field name as in the header.
        field: &'static str,
        /// Which rule was broken.
        reason: String,
    },

    /// An item name given to the builder is not a plain, safe file name.
    #[error("item name {name:?} is not allowed: {reason}")]
    InvalidItemName {
        /// The name.
        name: String,
        /// Which rule was broken.
        reason: String,
    },

    /// An item's reader yielded a different number of bytes than declared.
    #[error("item {name:?} was declared as {declared} bytes but its reader yielded {actual}")]
    ItemSizeMismatch {
        /// Item name.
        name: String,
        /// Declared size.
        declared: u64,
        /// What the reader yielded (e.g. "17 bytes", "more bytes").
        actual: String,
    },

    /// The bundle would exceed a limit the receiver enforces.
    #[error("{what} would be {actual}, more than the limit of {limit}")]
    LimitExceeded {
        /// What would be too large.
        what: &'static str,
        /// Actual value.
        actual: u64,
        /// Limit.
        limit: u64,
    },

    /// Neither `encrypt_to` nor `without_encryption` was called on the builder.
    #[error(
        "no encryption choice: call encrypt_to(receiver key) or, deliberately, without_encryption()"
    )]
    EncryptionNotChosen,

    /// The encryption layer failed.
    #[error("encryption failed: {0}")]
    Encryption(String),

    /// Reading an item or writing the bundle failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

impl BundleError {
    /// A stable, machine-readable code; for [`BundleError::Rejected`] the rejection's code.
    pub fn code(&self) -> &'static str {
        match self {
            BundleError::Rejected(e) => e.code(),
            BundleError::InvalidMetadata { .. } => "invalid-metadata",
            BundleError::InvalidItemName { .. } => "bad-item-name",
            BundleError::ItemSizeMismatch { .. } => "item-size-mismatch",
            BundleError::LimitExceeded { .. } => "limit-exceeded",
            BundleError::EncryptionNotChosen => "encryption-not-chosen",
            BundleError::Encryption(_) => "encryption-failed",
            BundleError::Io(_) => "io",
        }
    }

    /// The rejection, when this error came from reading a bundle.
    pub fn as_rejection(&self) -> Option<&VerifyError> {
        match self {
            BundleError::Rejected(e) => Some(e),
            _ => None,
        }
    }

    /// Converts into the rejection, when this error came from reading a bundle.
    pub fn into_rejection(self) -> Result<VerifyError, Self> {
        match self {
            BundleError::Rejected(e) => Ok(e),
            other => Err(other),
        }
    }
}

/// Errors parsing or generating keys.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The signing-key text is not `ow-ed25519-secret:<base64 of 32 bytes>`.
    #[error(
        "invalid signing key: {0}; expected `ow-ed25519-secret:` followed by the standard base64 of a 32-byte seed"
    )]
    InvalidSigningKey(String),
    /// The verifying-key text is not `ow-ed25519:<base64 of 32 bytes>` or not a valid point.
    #[error(
        "invalid verifying key: {0}; expected `ow-ed25519:` followed by the standard base64 of a 32-byte Ed25519 public key"
    )]
    InvalidVerifyingKey(String),
    /// The text is not an age X25519 secret key.
    #[error("invalid encryption secret key: {0}; expected an age secret key `AGE-SECRET-KEY-1…`")]
    InvalidEncryptionSecret(String),
    /// The text is not an age X25519 recipient.
    #[error("invalid encryption public key: {0}; expected an age recipient `age1…`")]
    InvalidEncryptionPublic(String),
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
}

/// Errors parsing a trust file or building a [`TrustStore`](crate::TrustStore).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The TOML is invalid or has unknown/missing fields.
    #[error("trust file is not valid: {0}")]
    Toml(String),
    /// A channel name is invalid.
    #[error("trust file channel #{index}: {reason}")]
    InvalidChannel {
        /// 1-based position of the `[[channel]]` table.
        index: usize,
        /// Why.
        reason: String,
    },
    /// The same channel appears twice.
    #[error(
        "trust file lists channel {0} more than once; merge the entries into one [[channel]] table"
    )]
    DuplicateChannel(Channel),
    /// A key in the trust file is invalid.
    #[error("trust file channel {channel}: {source}")]
    InvalidKey {
        /// Channel.
        channel: Channel,
        /// Why.
        #[source]
        source: KeyError,
    },
    /// The same sender key appears twice for a channel.
    #[error("trust file channel {channel}: sender key {key_id} is listed more than once")]
    DuplicateKey {
        /// Channel.
        channel: Channel,
        /// Key id of the duplicate.
        key_id: KeyId,
    },
    /// A channel entry has neither sender keys nor a receiver encryption key.
    #[error(
        "trust file channel {0}: lists neither sender_keys nor receiver_encryption_key; remove the entry or fill it in"
    )]
    EmptyChannel(Channel),
    /// `bundle_format_version` names a version this build does not write.
    #[error(
        "trust file channel {channel}: bundle_format_version {found} is not one this build writes; use 2 (the default) or 1 while the receiving zone's software does not read version 2"
    )]
    InvalidFormatVersion {
        /// The channel.
        channel: Channel,
        /// The value found.
        found: i64,
    },
}
