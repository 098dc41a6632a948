//! Writing bundles: [`BundleBuilder`] collects metadata and item sources, then
//! [`BundleBuilder::write`] streams every item once through BLAKE3, SHA-256 and the zstd encoder,
//! into age, into a BLAKE3-hashing spool (memory up to a threshold, then a temporary file), and
//! finally emits prefix, header, signature and payload. [`BundleBuilder::write_to_file`] does the
//! same into a file, but writes the payload beyond the first 4 MiB straight into the file after
//! a gap left for the framing, so a large payload is not copied a second time.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signer, SigningKey};

use crate::chunked::{DEFAULT_CHUNK_SIZE, PayloadKey, check_chunk_size};
use crate::digest::Digest;
use crate::error::BundleError;
use crate::format::{
    FORMAT_VERSION, FORMAT_VERSION_2, PREFIX_LEN, Suite, encode_prefix, is_supported_version,
    signed_message,
};
use crate::header::{Compression, Encryption, Header, ItemInfo, PayloadInfo, WrappedKey};
use crate::io_util::IO_BUF;
use crate::keys::{EncryptionPublic, KeyId};
use crate::names::{validate_item_name, validate_media_type};
use crate::pack::{ItemSource, PackItem, PackParams, Packed, SealWith, pack};
use crate::read::Limits;
use crate::zone::Channel;

/// Default zstd level: fast, and most scanned material is already compressed.
pub const DEFAULT_ZSTD_LEVEL: i32 = 1;

/// Default bytes of payload kept in memory before the spool moves to a temporary file.
pub const DEFAULT_SPOOL_MEMORY: usize = 64 << 20;

/// At most this many bytes of payload are kept in memory by
/// [`BundleBuilder::write_to_file`]; the rest goes straight into the file.
const DIRECT_SPOOL_MEMORY: usize = 4 << 20;

enum Source<'a> {
    Reader(Box<dyn Read + 'a>),
    Bytes(Cow<'a, [u8]>),
}

struct PendingItem<'a> {
    name: String,
    media_type: String,
    size: u64,
    source: Source<'a>,
}

enum EncryptionChoice {
    Unset,
    Plain,
    To(EncryptionPublic),
}

/// Result of writing a bundle.
#[derive(Clone, Debug)]
pub struct PackedBundle {
    /// The header as written and signed.
    pub header: Header,
    /// The bundle digest: BLAKE3 over the header bytes (the next bundle's `prev_digest`).
    pub digest: Digest,
    /// Total bytes written.
    pub total_len: u64,
}

/// Builds and writes one bundle.
///
/// ```no_run
/// # use ow_bundle::*;
/// # fn demo(signer: &SigningKey, trust: &TrustStore, out: std::fs::File) -> Result<(), Box<dyn std::error::Error>> {
/// let channel: Channel = "internet-to-extranet".parse()?;
/// let created = chrono::Utc::now();
/// let receiver_key = trust.receiver_encryption_key(channel).ok_or("no receiver key")?;
/// let packed = BundleBuilder::new(channel, "application.submitted", 1, None, created,
///                                 created + chrono::Duration::days(7))
///     .case_id("QZ-2026-000123")
///     .encrypt_to(receiver_key)
///     .item_bytes("application.json", "application/json", br#"{"ok":true}"#.as_slice())
///     .write(signer, out)?;
/// println!("wrote {} ({} bytes)", packed.digest, packed.total_len);
/// # Ok(()) }
/// ```
pub struct BundleBuilder<'a> {
    bundle_id: Option<String>,
    channel: Channel,
    sequence: u64,
    prev_digest: Option<Digest>,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    kind: String,
    case_id: Option<String>,
    encryption: EncryptionChoice,
    zstd_level: i32,
    spool_memory: usize,
    limits: Limits,
    format_version: u16,
    chunk_size: u32,
    payload_key: Option<[u8; 32]>,
    items: Vec<PendingItem<'a>>,
}

impl<'a> BundleBuilder<'a> {
    /// Starts a bundle on `channel` with the given kind, sequence number, previous digest
    /// (`None` exactly for sequence 1) and validity period. Times are parameters: the library
    /// does not read the clock here.
    ///
    /// Encryption must be chosen before [`write`](Self::write): [`encrypt_to`](Self::encrypt_to)
    /// (the normal case) or, deliberately, [`without_encryption`](Self::without_encryption).
    pub fn new(
        channel: Channel,
        kind: impl Into<String>,
        sequence: u64,
        prev_digest: Option<Digest>,
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Self {
        Self {
            bundle_id: None,
            channel,
            sequence,
            prev_digest,
            created_at,
            expires_at,
            kind: kind.into(),
            case_id: None,
            encryption: EncryptionChoice::Unset,
            zstd_level: DEFAULT_ZSTD_LEVEL,
            spool_memory: DEFAULT_SPOOL_MEMORY,
            limits: Limits::default(),
            format_version: FORMAT_VERSION,
            chunk_size: DEFAULT_CHUNK_SIZE,
            payload_key: None,
            items: Vec::new(),
        }
    }

    /// Convenience that **reads the system clock**: created now, expiring after `valid_for`.
    pub fn new_valid_from_now(
        channel: Channel,
        kind: impl Into<String>,
        sequence: u64,
        prev_digest: Option<Digest>,
        valid_for: chrono::Duration,
    ) -> Self {
        let now = Utc::now();
        let expires = now
            .checked_add_signed(valid_for)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        Self::new(channel, kind, sequence, prev_digest, now, expires)
    }

    /// Sets the bundle id (`[A-Za-z0-9._-]{1,64}`). Default: a new UUID v7 whose timestamp is
    /// `created_at`.
    pub fn bundle_id(mut self, id: impl Into<String>) -> Self {
        self.bundle_id = Some(id.into());
        self
    }

    /// Sets the registration case id (`[A-Za-z0-9._-]{1,64}`).
    pub fn case_id(mut self, id: impl Into<String>) -> Self {
        self.case_id = Some(id.into());
        self
    }

    /// Encrypts the payload to the receiving zone's age key (the normal case).
    pub fn encrypt_to(mut self, recipient: &EncryptionPublic) -> Self {
        self.encryption = EncryptionChoice::To(recipient.clone());
        self
    }

    /// Stores the payload compressed but not encrypted. Use only where the channel's policy
    /// allows plaintext.
    pub fn without_encryption(mut self) -> Self {
        self.encryption = EncryptionChoice::Plain;
        self
    }

    /// The format version to write: 2 (the default) or 1, for a receiver whose software does
    /// not read version 2 yet (`docs/bundle-format.md` §8, upgrade order). Any other value
    /// fails at [`write`](Self::write) with `invalid-metadata`.
    pub fn format_version(mut self, version: u16) -> Self {
        self.format_version = version;
        self
    }

    /// Plaintext bytes per encrypted chunk in format version 2 (default 256 KiB; a power of two
    /// from 4 KiB to 4 MiB). Ignored for version 1 and for unencrypted bundles.
    pub fn chunk_size(mut self, bytes: u32) -> Self {
        self.chunk_size = bytes;
        self
    }

    /// Uses `key` as the version 2 payload key instead of a fresh random one. **Only for test
    /// vectors**: a payload key must never encrypt two payloads.
    #[doc(hidden)]
    pub fn payload_key_for_test_vectors(mut self, key: [u8; 32]) -> Self {
        self.payload_key = Some(key);
        self
    }

    /// Sets the zstd level (default 1; zstd accepts negative "fast" levels up to 22).
    pub fn compression_level(mut self, level: i32) -> Self {
        self.zstd_level = level;
        self
    }

    /// Bytes of payload kept in memory before spooling to a temporary file (default 64 MiB;
    /// [`write_to_file`](Self::write_to_file) keeps at most 4 MiB and writes the rest into its
    /// file).
    pub fn spool_memory(mut self, bytes: usize) -> Self {
        self.spool_memory = bytes;
        self
    }

    /// Limits the written bundle must respect (default [`Limits::default`], what a default
    /// receiver accepts), so a sender fails early instead of the receiver rejecting later.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Adds an item read from `reader`, which must yield exactly `size` bytes.
    pub fn item(
        mut self,
        name: impl Into<String>,
        media_type: impl Into<String>,
        reader: impl Read + 'a,
        size: u64,
    ) -> Self {
        self.items.push(PendingItem {
            name: name.into(),
            media_type: media_type.into(),
            size,
            source: Source::Reader(Box::new(reader)),
        });
        self
    }

    /// Adds an item from bytes in memory.
    pub fn item_bytes(
        mut self,
        name: impl Into<String>,
        media_type: impl Into<String>,
        bytes: impl Into<Cow<'a, [u8]>>,
    ) -> Self {
        let bytes = bytes.into();
        self.items.push(PendingItem {
            name: name.into(),
            media_type: media_type.into(),
            size: bytes.len() as u64,
            source: Source::Bytes(bytes),
        });
        self
    }

    fn check_items(&self) -> Result<u64, BundleError> {
        let n = self.items.len() as u64;
        if n > self.limits.max_items {
            return Err(BundleError::LimitExceeded {
                what: "item count",
                actual: n,
                limit: self.limits.max_items,
            });
        }
        let mut seen = std::collections::HashSet::with_capacity(self.items.len());
        let mut plain: u64 = 0;
        for item in &self.items {
            validate_item_name(&item.name, self.limits.max_item_name_len).map_err(|reason| {
                BundleError::InvalidItemName {
                    name: item.name.clone(),
                    reason,
                }
            })?;
            if !seen.insert(item.name.to_lowercase()) {
                return Err(BundleError::InvalidItemName {
                    name: item.name.clone(),
                    reason: "duplicate name (names must be unique, ignoring case)".into(),
                });
            }
            validate_media_type(&item.media_type).map_err(|reason| {
                BundleError::InvalidMetadata {
                    field: "media_type",
                    reason: format!("item {:?}: {reason}", item.name),
                }
            })?;
            plain = plain
                .checked_add(item.size)
                .ok_or(BundleError::LimitExceeded {
                    what: "sum of item sizes",
                    actual: u64::MAX,
                    limit: self.limits.max_plain_bytes,
                })?;
        }
        if plain > self.limits.max_plain_bytes {
            return Err(BundleError::LimitExceeded {
                what: "sum of item sizes",
                actual: plain,
                limit: self.limits.max_plain_bytes,
            });
        }
        Ok(plain)
    }

    /// Packs, signs and writes the bundle to `out`, reading every item exactly once.
    ///
    /// Nothing is written to `out` until the payload is complete, so an error (a reader
    /// yielding the wrong number of bytes, an invalid name) leaves `out` untouched. A payload
    /// larger than the spool's memory part (see [`spool_memory`](Self::spool_memory)) passes
    /// through an anonymous temporary file; [`write_to_file`](Self::write_to_file) avoids that
    /// copy.
    pub fn write<W: Write>(self, signer: &SigningKey, out: W) -> Result<PackedBundle, BundleError> {
        let Assembled {
            header,
            digest,
            framing,
            spool,
            payload_len,
        } = self.assemble(signer, None)?;
        // Large spools are copied straight through; small bundles need no large buffer.
        let mut out = BufWriter::with_capacity(
            IO_BUF.min(
                framing
                    .len()
                    .saturating_add(usize::try_from(payload_len).unwrap_or(IO_BUF)),
            ),
            out,
        );
        out.write_all(&framing)?;
        let copied = spool.write_to(&mut out)?;
        if copied != payload_len {
            return Err(BundleError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("payload spool yielded {copied} of {payload_len} bytes"),
            )));
        }
        out.flush()?;
        Ok(PackedBundle {
            header,
            digest,
            total_len: framing.len() as u64 + payload_len,
        })
    }

    /// Packs, signs and writes the bundle into `file`, from offset 0, leaving the file exactly
    /// the bundle's length; reads every item exactly once. Meant for a new file.
    ///
    /// Unlike [`write`](Self::write), the part of a payload beyond the spool's memory part (at
    /// most 4 MiB here) is written straight into `file` while it is produced, after a gap left
    /// for the prefix, header and signature (whose length is known in advance up to the number
    /// of digits of the payload's length), so the payload is written once instead of being
    /// spooled to a temporary file and copied. If the guess of that length turns out wrong
    /// (a payload that compressed well enough to lose a digit) the written part is moved
    /// within the file, which costs what the temporary file would have.
    ///
    /// The file's position is not used or changed, and nothing is synced: that is the caller's
    /// call. On error the file's contents are unspecified; the caller discards it.
    pub fn write_to_file(
        self,
        signer: &SigningKey,
        file: &File,
    ) -> Result<PackedBundle, BundleError> {
        // Positional writes below would leave an old file's tail behind the bundle.
        if file.metadata()?.len() != 0 {
            file.set_len(0)?;
        }
        let Assembled {
            header,
            digest,
            framing,
            spool,
            payload_len,
        } = self.assemble(signer, Some(file))?;
        let total_len = spool.finish_into(file, &framing)?;
        let expected = framing.len() as u64 + payload_len;
        if total_len != expected {
            return Err(BundleError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("payload spool yielded {total_len} of {expected} bundle bytes"),
            )));
        }
        // A payload moved towards the start leaves stale bytes past the end.
        if file.metadata()?.len() != total_len {
            file.set_len(total_len)?;
        }
        Ok(PackedBundle {
            header,
            digest,
            total_len,
        })
    }

    /// Packs the payload and builds the signed framing (prefix, header, signature, payload
    /// length). With `direct`, payload bytes beyond the spool's memory part go straight into
    /// that file (see [`write_to_file`](Self::write_to_file)).
    fn assemble(
        self,
        signer: &SigningKey,
        direct: Option<&File>,
    ) -> Result<Assembled, BundleError> {
        let recipient = match &self.encryption {
            EncryptionChoice::Unset => return Err(BundleError::EncryptionNotChosen),
            EncryptionChoice::Plain => None,
            EncryptionChoice::To(r) => Some(r.clone()),
        };
        let plain_size = self.check_items()?;
        let version = self.format_version;
        if !is_supported_version(version) {
            return Err(BundleError::InvalidMetadata {
                field: "format_version",
                reason: format!("{version} is not a format version this build writes (1 or 2)"),
            });
        }
        // Version 2 encrypts with a fresh payload key wrapped to the receiver in the header.
        let seal = match (&recipient, version) {
            (None, _) => None,
            (Some(r), FORMAT_VERSION_2) => {
                check_chunk_size(self.chunk_size).map_err(|reason| {
                    BundleError::InvalidMetadata {
                        field: "chunk_size",
                        reason,
                    }
                })?;
                let key = match self.payload_key {
                    Some(k) => PayloadKey::from_bytes(k),
                    None => PayloadKey::generate()?,
                };
                let wrapped = key.wrap(r).map_err(BundleError::Encryption)?;
                Some(SealWith::Chunked {
                    to: r,
                    key,
                    chunk_size: self.chunk_size,
                    wrapped: WrappedKey(wrapped),
                })
            }
            (Some(r), _) => Some(SealWith::Age(r)),
        };
        let bundle_id = match &self.bundle_id {
            Some(id) => id.clone(),
            None => default_bundle_id(&self.created_at),
        };
        let suite = Suite::DEFAULT;
        let mut header = Header {
            format_version: version,
            suite: suite.id(),
            bundle_id,
            channel: self.channel,
            sender: self.channel.from,
            receiver: self.channel.to,
            key_id: KeyId::of(&signer.verifying_key()),
            sequence: self.sequence,
            prev_digest: self.prev_digest,
            created_at: self.created_at,
            expires_at: self.expires_at,
            kind: self.kind,
            case_id: self.case_id,
            compression: Compression::Zstd,
            encryption: match &seal {
                None => Encryption::None,
                Some(SealWith::Age(r)) => Encryption::AgeX25519 {
                    recipient_key_id: r.key_id(),
                },
                Some(SealWith::Chunked {
                    to,
                    chunk_size,
                    wrapped,
                    ..
                }) => Encryption::ChunkedXChaCha20Poly1305 {
                    recipient_key_id: to.key_id(),
                    chunk_size: *chunk_size,
                    wrapped_key: wrapped.clone(),
                },
            },
            payload: PayloadInfo {
                size: 0,
                blake3: Digest::from_bytes([0; 32]),
                plain_size,
            },
            items: Vec::with_capacity(self.items.len()),
        };
        header
            .check_fields()
            .map_err(|reason| BundleError::InvalidMetadata {
                field: "header",
                reason,
            })?;

        // Writing into a file, memory holds only the start of the payload: what is written
        // into the file as it comes needs no copy, and its pages can be written back while
        // the rest is being packed.
        let spool_memory = match direct {
            Some(_) => self.spool_memory.min(DIRECT_SPOOL_MEMORY),
            None => self.spool_memory,
        };
        // Where the payload will start in a bundle file, guessed only when part of the payload
        // may go to the file before the header is final.
        let stored_bound = stored_bound(plain_size, seal.as_ref());
        let direct = match direct {
            Some(file) if stored_bound > spool_memory as u64 => {
                let guess = framing_len_guess(&header, &self.items, stored_bound)?;
                Some((file, guess))
            }
            _ => None,
        };

        // Payload: items -> zstd -> (age) -> BLAKE3-hashing spool. Every item is read once;
        // large payloads run the stages on separate threads (see `pack`).
        let mut items = self.items;
        let metas: Vec<(String, String, u64)> = items
            .iter()
            .map(|i| (i.name.clone(), i.media_type.clone(), i.size))
            .collect();
        let sources: Vec<PackItem<'_, 'a>> = items
            .iter_mut()
            .zip(&metas)
            .map(|(i, (name, _, size))| PackItem {
                name,
                size: *size,
                source: match &mut i.source {
                    Source::Bytes(b) => ItemSource::Bytes(b),
                    Source::Reader(r) => ItemSource::Reader(r),
                },
            })
            .collect();
        let Packed {
            digests,
            spool,
            hash: payload_hash,
            len: payload_len,
        } = pack(
            sources,
            &PackParams {
                seal: seal.as_ref(),
                zstd_level: self.zstd_level,
                spool_memory,
                plain_size,
                direct,
            },
        )?;
        for ((name, media_type, size), (blake3, sha256)) in metas.into_iter().zip(digests) {
            header.items.push(ItemInfo {
                name,
                media_type,
                size,
                blake3,
                sha256,
            });
        }
        if payload_len > self.limits.max_payload_bytes {
            return Err(BundleError::LimitExceeded {
                what: "stored payload",
                actual: payload_len,
                limit: self.limits.max_payload_bytes,
            });
        }
        header.payload.size = payload_len;
        header.payload.blake3 = payload_hash;
        // The writer holds itself to the reader's structural rules.
        header
            .check_structure(version, suite.id(), payload_len, &self.limits)
            .and_then(|()| header.check_item_names(self.limits.max_item_name_len))
            .map_err(|e| BundleError::InvalidMetadata {
                field: "header",
                reason: e.to_string(),
            })?;

        // Header, signature, framing.
        let header_bytes = header
            .to_bytes()
            .map_err(|e| BundleError::Io(io::Error::other(e)))?;
        let header_len = header_bytes.len() as u64;
        let header_cap = self.limits.max_header_bytes.min(u64::from(u32::MAX));
        if header_len > header_cap {
            return Err(BundleError::LimitExceeded {
                what: "header size",
                actual: header_len,
                limit: header_cap,
            });
        }
        let prefix = encode_prefix(version, suite.id(), header_len as u32);
        let signature = signer
            .sign(&signed_message(&prefix, &header_bytes))
            .to_bytes();
        let digest = Digest::blake3(&header_bytes);

        let mut framing =
            Vec::with_capacity(PREFIX_LEN + header_bytes.len() + 2 + signature.len() + 8);
        framing.extend_from_slice(&prefix);
        framing.extend_from_slice(&header_bytes);
        framing.extend_from_slice(&(signature.len() as u16).to_be_bytes());
        framing.extend_from_slice(&signature);
        framing.extend_from_slice(&payload_len.to_be_bytes());
        Ok(Assembled {
            header,
            digest,
            framing,
            spool,
            payload_len,
        })
    }
}

/// The framing's length if the stored payload is `payload_len` bytes long: the header with
/// placeholder digests (every digest is 64 hex digits whatever its value) serialized as it will
/// be, so only the number of digits of `payload.size` can make the real one differ.
fn framing_len_guess(
    header: &Header,
    items: &[PendingItem<'_>],
    payload_len: u64,
) -> Result<u64, BundleError> {
    let zero = Digest::from_bytes([0; 32]);
    let mut skeleton = header.clone();
    skeleton.payload.size = payload_len;
    skeleton.items = items
        .iter()
        .map(|i| ItemInfo {
            name: i.name.clone(),
            media_type: i.media_type.clone(),
            size: i.size,
            blake3: zero,
            sha256: zero,
        })
        .collect();
    let header_len = skeleton
        .to_bytes()
        .map_err(|e| BundleError::Io(io::Error::other(e)))?
        .len();
    Ok((PREFIX_LEN + header_len + 2 + ed25519_dalek::SIGNATURE_LENGTH + 8) as u64)
}

/// A bundle ready to be emitted: framing built, payload in the spool.
struct Assembled {
    header: Header,
    digest: Digest,
    /// Prefix, header, signature length, signature and payload length: every byte before the
    /// payload.
    framing: Vec<u8>,
    spool: crate::spool::Spool,
    payload_len: u64,
}

/// An upper bound of the stored payload's length for `plain` bytes of items: zstd's worst case
/// (incompressible input stored in raw blocks, with block and frame headers) plus, encrypted,
/// age's header and a 16-byte tag per 64 KiB chunk (version 1) or a 16-byte tag per chunk
/// (version 2). Used only to guess the framing's length; a wrong guess costs a copy, not
/// correctness.
fn stored_bound(plain: u64, seal: Option<&SealWith<'_>>) -> u64 {
    let compressed = plain.saturating_add(plain >> 7).saturating_add(512);
    match seal {
        None => compressed,
        Some(SealWith::Age(_)) => compressed
            .saturating_add((compressed / (64 << 10) + 1).saturating_mul(16))
            .saturating_add(1024),
        Some(SealWith::Chunked { chunk_size, .. }) => {
            compressed.saturating_add((compressed / u64::from(*chunk_size) + 1).saturating_mul(16))
        }
    }
}

/// A UUID v7 whose timestamp is `created_at` (clamped to the Unix epoch), with random bits.
fn default_bundle_id(created_at: &DateTime<Utc>) -> String {
    let secs = u64::try_from(created_at.timestamp()).unwrap_or(0);
    let nanos = created_at.timestamp_subsec_nanos().min(999_999_999);
    let ts = uuid::Timestamp::from_unix(uuid::NoContext, secs, nanos);
    uuid::Uuid::new_v7(ts).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_bundle_id_is_uuid_v7_at_created_at() {
        let t: DateTime<Utc> = "2026-03-01T08:00:00Z".parse().unwrap();
        let id = default_bundle_id(&t);
        let u = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(u.get_version_num(), 7);
        let (secs, _) = u.get_timestamp().unwrap().to_unix();
        assert_eq!(secs as i64, t.timestamp());
        assert_ne!(default_bundle_id(&t), id);
    }
}
