//! Reading a bundle's prefix, header, signature and payload length without keys
//! ([`read_header`]), under [`Limits`] that are checked before anything is allocated.

use std::io::Read;

use crate::digest::Digest;
use crate::error::{BundleError, VerifyError};
use crate::format::{
    MAGIC, NEWEST_FORMAT_VERSION, PREFIX_LEN, Suite, encode_prefix, is_supported_version,
};
use crate::header::Header;
use crate::io_util::read_full;

/// Size caps a reader enforces before allocating, reading or decompressing. Declared sizes in a
/// bundle are never trusted beyond these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest header accepted (bytes of JSON). Default 1 MiB.
    pub max_header_bytes: u64,
    /// Largest stored payload accepted. Default 4 GiB.
    pub max_payload_bytes: u64,
    /// Largest decompressed payload (sum of item sizes) accepted. Default 8 GiB.
    pub max_plain_bytes: u64,
    /// Most items accepted. Default 4096 (about what fits in a 1 MiB header).
    pub max_items: u64,
    /// Longest item name accepted, in bytes; capped at 255. Default 255.
    pub max_item_name_len: usize,
}

impl Limits {
    /// Default cap on header size.
    pub const DEFAULT_MAX_HEADER_BYTES: u64 = 1 << 20;
    /// Default cap on stored payload size.
    pub const DEFAULT_MAX_PAYLOAD_BYTES: u64 = 4 << 30;
    /// Default cap on decompressed size.
    pub const DEFAULT_MAX_PLAIN_BYTES: u64 = 8 << 30;
    /// Default cap on item count.
    pub const DEFAULT_MAX_ITEMS: u64 = 4096;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: Self::DEFAULT_MAX_HEADER_BYTES,
            max_payload_bytes: Self::DEFAULT_MAX_PAYLOAD_BYTES,
            max_plain_bytes: Self::DEFAULT_MAX_PLAIN_BYTES,
            max_items: Self::DEFAULT_MAX_ITEMS,
            max_item_name_len: crate::names::MAX_ITEM_NAME_BYTES,
        }
    }
}

/// A bundle whose framing and header parsed, but whose signature, hashes, channel and times have
/// **not** been checked. Good for `inspect` and routing; never for import.
#[derive(Clone, Debug)]
pub struct UnverifiedBundle {
    pub(crate) header: Header,
    pub(crate) header_bytes: Vec<u8>,
    pub(crate) signature: Vec<u8>,
    pub(crate) payload_len: u64,
    pub(crate) digest: Digest,
}

impl UnverifiedBundle {
    /// The parsed (unverified) header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The exact header bytes as stored (what is signed and hashed).
    pub fn header_bytes(&self) -> &[u8] {
        &self.header_bytes
    }

    /// The raw signature bytes.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The payload length from the binary framing.
    pub fn payload_len(&self) -> u64 {
        self.payload_len
    }

    /// Offset of the first payload byte from the start of the bundle.
    pub fn payload_offset(&self) -> u64 {
        (PREFIX_LEN + self.header_bytes.len() + 2 + self.signature.len() + 8) as u64
    }

    /// Total length the bundle declares (prefix through payload).
    pub fn declared_len(&self) -> u64 {
        self.payload_offset().saturating_add(self.payload_len)
    }

    /// BLAKE3 over the header bytes: the bundle digest (unverified until `verify` accepts).
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The 16-byte prefix as it was read.
    pub(crate) fn prefix(&self) -> [u8; PREFIX_LEN] {
        // Only reachable after the header length was checked against a u64 cap <= u32::MAX.
        let len = u32::try_from(self.header_bytes.len()).unwrap_or(u32::MAX);
        encode_prefix(self.header.format_version, self.header.suite, len)
    }
}

/// Reads the prefix, header, signature and payload length from `reader`, leaving it positioned
/// at the first payload byte. Needs no keys. Checks, in order: magic, version, suite, header
/// length cap, signature length, payload length cap, header JSON, and the header's structure
/// (agreement with the prefix and payload length, item count and plain-size caps, field syntax,
/// item sizes adding up). Item names, channel, keys, signature and times are checked by
/// [`verify`](crate::verify).
pub fn read_header(reader: impl Read, limits: &Limits) -> Result<UnverifiedBundle, BundleError> {
    let mut reader = reader;
    read_header_inner(&mut reader, limits).map_err(BundleError::Rejected)
}

fn truncated(what: impl Into<String>) -> VerifyError {
    VerifyError::Truncated { what: what.into() }
}

/// Reads exactly `buf.len()` bytes, or reports what was being read as truncated.
fn read_exact_or_truncated<R: Read + ?Sized>(
    r: &mut R,
    buf: &mut [u8],
    what: &str,
) -> Result<(), VerifyError> {
    let n = read_full(r, buf).map_err(|e| VerifyError::io("reading the bundle", e))?;
    if n < buf.len() {
        return Err(truncated(format!(
            "the file ends inside the {what} ({n} of {} bytes present)",
            buf.len()
        )));
    }
    Ok(())
}

pub(crate) fn read_header_inner<R: Read + ?Sized>(
    reader: &mut R,
    limits: &Limits,
) -> Result<UnverifiedBundle, VerifyError> {
    // Prefix: check each field as soon as its bytes are present, so a short or foreign file is
    // reported precisely.
    let mut prefix = [0u8; PREFIX_LEN];
    let n = read_full(reader, &mut prefix).map_err(|e| VerifyError::io("reading the bundle", e))?;
    let have = n.min(MAGIC.len());
    if prefix[..have] != MAGIC[..have] {
        return Err(VerifyError::BadMagic);
    }
    if n < MAGIC.len() {
        return Err(truncated(format!(
            "the file is only {n} bytes long and ends inside the magic"
        )));
    }
    if n < 10 {
        return Err(truncated("the file ends inside the prefix"));
    }
    let version = u16::from_be_bytes([prefix[8], prefix[9]]);
    if !is_supported_version(version) {
        return Err(VerifyError::UnsupportedVersion {
            found: version,
            supported: NEWEST_FORMAT_VERSION,
        });
    }
    if n < 12 {
        return Err(truncated("the file ends inside the prefix"));
    }
    let suite_id = u16::from_be_bytes([prefix[10], prefix[11]]);
    let Some(suite) = Suite::from_id(suite_id) else {
        return Err(VerifyError::UnknownSuite { found: suite_id });
    };
    if n < PREFIX_LEN {
        return Err(truncated("the file ends inside the prefix"));
    }
    let header_len = u32::from_be_bytes([prefix[12], prefix[13], prefix[14], prefix[15]]);
    let header_cap = limits.max_header_bytes.min(u64::from(u32::MAX));
    if u64::from(header_len) > header_cap {
        return Err(VerifyError::HeaderTooLarge {
            declared: u64::from(header_len),
            limit: header_cap,
        });
    }

    // Header bytes: bounded by the cap checked above.
    let header_len = header_len as usize;
    let mut header_bytes = Vec::with_capacity(header_len);
    let got = reader
        .take(header_len as u64)
        .read_to_end(&mut header_bytes)
        .map_err(|e| VerifyError::io("reading the header", e))?;
    if got < header_len {
        return Err(truncated(format!(
            "the file ends inside the header ({got} of {header_len} bytes present)"
        )));
    }

    // Signature.
    let mut len2 = [0u8; 2];
    read_exact_or_truncated(reader, &mut len2, "signature length")?;
    let sig_len = usize::from(u16::from_be_bytes(len2));
    if sig_len != suite.signature_len() {
        return Err(VerifyError::BadSignature {
            reason: format!(
                "signature length is {sig_len} bytes, suite {} signatures are {} bytes",
                suite.id(),
                suite.signature_len()
            ),
        });
    }
    let mut signature = vec![0u8; sig_len];
    read_exact_or_truncated(reader, &mut signature, "signature")?;

    // Payload length.
    let mut len8 = [0u8; 8];
    read_exact_or_truncated(reader, &mut len8, "payload length")?;
    let payload_len = u64::from_be_bytes(len8);
    if payload_len > limits.max_payload_bytes {
        return Err(VerifyError::PayloadTooLarge {
            what: "stored payload",
            declared: payload_len,
            limit: limits.max_payload_bytes,
        });
    }

    // Header JSON and structure.
    let header: Header = serde_json::from_slice(&header_bytes)
        .map_err(|e| VerifyError::malformed(format!("header is not valid: {e}")))?;
    header.check_structure(version, suite_id, payload_len, limits)?;

    let digest = Digest::blake3(&header_bytes);
    Ok(UnverifiedBundle {
        header,
        header_bytes,
        signature,
        payload_len,
        digest,
    })
}
