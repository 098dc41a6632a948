//! Fixed constants of the binary layout, the suite registry, and the exact signed message.
//!
//! ```text
//! magic(8) | format_version u16 BE | suite u16 BE | header_len u32 BE | header
//!          | sig_len u16 BE | signature | payload_len u64 BE | payload | EOF
//! ```

use std::fmt;

/// The 8 magic bytes that open every bundle. The `\r\n` detects text-mode (CRLF) mangling.
pub const MAGIC: [u8; 8] = *b"OWBNDL\r\n";

/// The format version this crate writes by default (version 2: chunked, parallel AEAD).
pub const FORMAT_VERSION: u16 = FORMAT_VERSION_2;

/// Format version 1: the payload, when encrypted, is one age file (`docs/bundle-format.md` §5.1).
/// Still read, and written on request for receivers not yet upgraded.
pub const FORMAT_VERSION_1: u16 = 1;

/// Format version 2: the payload, when encrypted, is a sequence of XChaCha20-Poly1305 chunks
/// under a payload key wrapped to the receiver in the header (`docs/bundle-format.md` §5.2).
pub const FORMAT_VERSION_2: u16 = 2;

/// The newest format version this crate reads (it reads every version from 1 up to this one).
pub const NEWEST_FORMAT_VERSION: u16 = FORMAT_VERSION_2;

/// Whether this crate reads and writes format `version`.
pub const fn is_supported_version(version: u16) -> bool {
    version == FORMAT_VERSION_1 || version == FORMAT_VERSION_2
}

/// Length of the fixed prefix: magic, version, suite and header length.
pub const PREFIX_LEN: usize = 16;

/// Domain-separation context prepended to the signed message (including the trailing NUL).
pub const SIGNATURE_CONTEXT: &[u8] = b"OneWindow bundle signature v1\0";

/// Ed25519 signature length in bytes (suite 1).
pub(crate) const ED25519_SIGNATURE_LEN: usize = 64;

/// A cryptographic suite: the named set of algorithms a bundle uses.
///
/// The suite id is a field of the prefix and of the header, so a new suite (for example the
/// reserved SM2/SM3/SM4 suite 2) is added without a new format version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Suite {
    /// Suite 1: Ed25519 signature, BLAKE3 digests (plus SHA-256 item hashes), age X25519
    /// encryption, zstd compression.
    Ed25519Blake3AgeX25519Zstd,
}

impl Suite {
    /// Suite id reserved for SM2 signatures, SM3 hashes and SM4 encryption (not implemented).
    pub const RESERVED_SM2_SM3_SM4: u16 = 2;

    /// The suite written by default.
    pub const DEFAULT: Suite = Suite::Ed25519Blake3AgeX25519Zstd;

    /// Looks a suite up by its numeric id.
    pub const fn from_id(id: u16) -> Option<Self> {
        match id {
            1 => Some(Suite::Ed25519Blake3AgeX25519Zstd),
            _ => None,
        }
    }

    /// The numeric id written in the prefix and header.
    pub const fn id(self) -> u16 {
        match self {
            Suite::Ed25519Blake3AgeX25519Zstd => 1,
        }
    }

    /// The registry name, e.g. `ed25519-blake3-age-x25519-zstd`.
    pub const fn name(self) -> &'static str {
        match self {
            Suite::Ed25519Blake3AgeX25519Zstd => "ed25519-blake3-age-x25519-zstd",
        }
    }

    /// Signature length in bytes for this suite.
    pub(crate) const fn signature_len(self) -> usize {
        match self {
            Suite::Ed25519Blake3AgeX25519Zstd => ED25519_SIGNATURE_LEN,
        }
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.id(), self.name())
    }
}

/// The 16-byte prefix for the given fields.
pub(crate) fn encode_prefix(version: u16, suite: u16, header_len: u32) -> [u8; PREFIX_LEN] {
    let mut p = [0u8; PREFIX_LEN];
    p[..8].copy_from_slice(&MAGIC);
    p[8..10].copy_from_slice(&version.to_be_bytes());
    p[10..12].copy_from_slice(&suite.to_be_bytes());
    p[12..16].copy_from_slice(&header_len.to_be_bytes());
    p
}

/// The exact message that is signed: context, prefix, header bytes.
pub(crate) fn signed_message(prefix: &[u8; PREFIX_LEN], header: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNATURE_CONTEXT.len() + PREFIX_LEN + header.len());
    m.extend_from_slice(SIGNATURE_CONTEXT);
    m.extend_from_slice(prefix);
    m.extend_from_slice(header);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_layout() {
        let p = encode_prefix(1, 1, 0x0102_0304);
        assert_eq!(&p[..8], b"OWBNDL\r\n");
        assert_eq!(&p[8..], &[0, 1, 0, 1, 1, 2, 3, 4]);
        assert_eq!(SIGNATURE_CONTEXT.len(), 30);
        assert!(is_supported_version(1) && is_supported_version(2));
        assert!(!is_supported_version(0) && !is_supported_version(3));
    }

    #[test]
    fn suite_registry() {
        assert_eq!(Suite::from_id(1), Some(Suite::Ed25519Blake3AgeX25519Zstd));
        assert_eq!(Suite::from_id(Suite::RESERVED_SM2_SM3_SM4), None);
        assert_eq!(Suite::from_id(0), None);
        assert_eq!(Suite::DEFAULT.name(), "ed25519-blake3-age-x25519-zstd");
    }
}
