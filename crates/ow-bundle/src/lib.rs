//! # ow-bundle — the OneWindow bundle format
//!
//! Data crosses the gaps between the internet, extranet and intranet zones only as *bundles*:
//! single files whose header is readable without keys (for routing and audit), whose payload is
//! zstd-compressed and, by default, encrypted for the receiving zone (format version 2: chunks of
//! XChaCha20-Poly1305 sealed and opened in parallel, under a key wrapped with age; version 1, still
//! read and written on request: one age stream), and whose every byte is
//! covered by one Ed25519 signature of the sending zone plus per-item BLAKE3 and SHA-256 hashes.
//!
//! The byte layout, every header field, the order of checks and the error codes are specified in
//! `docs/bundle-format.md` at the repository root; this crate is the reference implementation.
//!
//! * Write a bundle with [`BundleBuilder`].
//! * Look at a bundle's header without keys with [`read_header`] (the result is *unverified*).
//! * Verify a bundle with [`verify`] (items collected in memory) or [`verify_to_sink`] (items
//!   streamed to an [`ItemSink`]); only a [`VerifiedBundle`] may be imported.
//! * Pin keys per channel in a [`TrustStore`], usually parsed from a TOML trust file.
//!
//! The library does no file-system I/O of its own beyond the `Read`/`Write`/`Seek` values and
//! the `File` it is handed (and the temporary spool file that [`BundleBuilder::write`] may
//! create for large payloads; [`BundleBuilder::write_to_file`] writes them in place instead),
//! and it never reads the clock except in the clearly-named convenience
//! [`BundleBuilder::new_valid_from_now`].

mod chunked;
mod digest;
mod error;
mod format;
mod header;
mod io_util;
mod keys;
mod names;
mod pack;
mod pipeline;
mod read;
mod spool;
mod trust;
mod unpack;
mod verify;
mod write;
mod zone;

pub use chunked::{DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, chunk_layout, chunk_nonce};
pub use digest::Digest;
pub use error::{BundleError, KeyError, TrustError, VerifyError};
pub use format::{
    FORMAT_VERSION, FORMAT_VERSION_1, FORMAT_VERSION_2, MAGIC, NEWEST_FORMAT_VERSION, PREFIX_LEN,
    SIGNATURE_CONTEXT, Suite, is_supported_version,
};
pub use header::{Compression, Encryption, Header, ItemInfo, PayloadInfo, WrappedKey};
pub use keys::{
    EncryptionPublic, EncryptionSecret, KeyId, SIGNING_KEY_PREFIX, VERIFYING_KEY_PREFIX,
    decode_signing_key, decode_verifying_key, encode_signing_key, encode_verifying_key,
    generate_signing_key,
};
pub use names::{validate_item_name, validate_kind};
pub use read::{Limits, UnverifiedBundle, read_header};
pub use trust::TrustStore;
pub use verify::{
    DiscardSink, ItemSink, MemorySink, VerifiedBundle, VerifiedItem, VerifyOptions, verify,
    verify_to_sink,
};
pub use write::{BundleBuilder, DEFAULT_SPOOL_MEMORY, DEFAULT_ZSTD_LEVEL, PackedBundle};
pub use zone::{Channel, Zone};

/// Re-exported so callers name exactly the key types this crate signs and verifies with.
pub use ed25519_dalek::{SigningKey, VerifyingKey};
