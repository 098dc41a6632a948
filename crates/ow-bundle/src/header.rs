//! The signed JSON header: its fields, their serde form, and the structural checks shared by the
//! writer and the reader.
//!
//! The header is serialized as compact UTF-8 JSON with fields in declaration order; a reader never
//! re-serializes it: the signature and the bundle digest cover the exact bytes as stored.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::VerifyError;
use crate::format::{
    FORMAT_VERSION_1, FORMAT_VERSION_2, NEWEST_FORMAT_VERSION, Suite, is_supported_version,
};
use crate::keys::KeyId;
use crate::names::{validate_identifier, validate_kind, validate_media_type};
use crate::read::Limits;
use crate::zone::{Channel, Zone};

/// The signed header of a bundle.
///
/// Fields are public for reading; a `Header` obtained from [`read_header`](crate::read_header)
/// is *unverified* until [`verify`](crate::verify) accepts the bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Format version; must equal the prefix's and be 1 or 2.
    pub format_version: u16,
    /// Cryptographic suite id; must equal the prefix's (1 = ed25519-blake3-age-x25519-zstd).
    pub suite: u16,
    /// Unique bundle id, `[A-Za-z0-9._-]{1,64}`; a UUID v7 by default.
    pub bundle_id: String,
    /// The channel the bundle travels on.
    pub channel: Channel,
    /// Sending zone; must equal `channel`'s `from`.
    pub sender: Zone,
    /// Receiving zone; must equal `channel`'s `to`.
    pub receiver: Zone,
    /// Key id of the Ed25519 key that signed the bundle.
    pub key_id: KeyId,
    /// Sequence number on this channel, starting at 1.
    pub sequence: u64,
    /// Digest of the previous bundle on the channel; `None` exactly when `sequence` is 1. The
    /// field must be present (as `null` at sequence 1): a header missing it is refused.
    #[serde(deserialize_with = "present_or_null")]
    pub prev_digest: Option<Digest>,
    /// Creation time (RFC 3339, UTC).
    #[serde(with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    /// End of validity (RFC 3339, UTC); must be after `created_at`.
    #[serde(with = "rfc3339")]
    pub expires_at: DateTime<Utc>,
    /// What the bundle carries, `[a-z0-9._-]{1,64}`, e.g. `application.submitted`.
    pub kind: String,
    /// Optional registration case id, `[A-Za-z0-9._-]{1,64}`; present as `null` when there is
    /// none (a header missing the field is refused).
    #[serde(deserialize_with = "present_or_null")]
    pub case_id: Option<String>,
    /// Compression of the payload plaintext.
    pub compression: Compression,
    /// Encryption of the compressed payload.
    pub encryption: Encryption,
    /// The stored payload.
    pub payload: PayloadInfo,
    /// The items, in payload order.
    pub items: Vec<ItemInfo>,
}

/// Reads an optional field that must nevertheless be present. serde treats a missing `Option`
/// field as `None` unless the field has its own deserializer; with this one, a header missing the
/// field fails with "missing field", as the format requires (every field, `null` allowed).
fn present_or_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer)
}

/// Compression algorithm of the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Zstandard (RFC 8878), one or more frames.
    Zstd,
}

/// Encryption of the compressed payload.
///
/// JSON: `{"scheme":"none"}`, `{"scheme":"age-x25519","recipient_key_id":"<16 hex>"}` (format
/// version 1) or `{"scheme":"chunked-xchacha20poly1305","recipient_key_id":"<16 hex>",
/// "chunk_size":N,"wrapped_key":"<base64>"}` (format version 2); any other field or scheme is
/// rejected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawEncryption", into = "RawEncryption")]
pub enum Encryption {
    /// Stored compressed only.
    None,
    /// An age (C2SP age v1) file with exactly the X25519 recipient named here (format version 1).
    AgeX25519 {
        /// [`EncryptionPublic::key_id`](crate::EncryptionPublic::key_id) of the recipient.
        recipient_key_id: KeyId,
    },
    /// XChaCha20-Poly1305 chunks of `chunk_size` bytes under a payload key, which is wrapped to
    /// the recipient as a small age file (format version 2, `docs/bundle-format.md` §5.2).
    ChunkedXChaCha20Poly1305 {
        /// [`EncryptionPublic::key_id`](crate::EncryptionPublic::key_id) of the recipient.
        recipient_key_id: KeyId,
        /// Plaintext bytes per chunk (each stored chunk is 16 bytes longer); a power of two from
        /// 4 KiB to 4 MiB.
        chunk_size: u32,
        /// The 32-byte payload key as a binary age v1 file for the recipient.
        wrapped_key: WrappedKey,
    },
}

impl Encryption {
    /// The scheme's name as written in the header.
    pub fn scheme(&self) -> &'static str {
        match self {
            Encryption::None => "none",
            Encryption::AgeX25519 { .. } => "age-x25519",
            Encryption::ChunkedXChaCha20Poly1305 { .. } => CHUNKED_SCHEME,
        }
    }

    /// The recipient's key id, when encrypted.
    pub fn recipient_key_id(&self) -> Option<KeyId> {
        match self {
            Encryption::None => None,
            Encryption::AgeX25519 { recipient_key_id }
            | Encryption::ChunkedXChaCha20Poly1305 {
                recipient_key_id, ..
            } => Some(*recipient_key_id),
        }
    }
}

/// Scheme name of format version 2's chunked encryption.
const CHUNKED_SCHEME: &str = "chunked-xchacha20poly1305";

/// A wrapped payload key: bytes, written in the header as standard base64 with padding.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey(pub Vec<u8>);

impl std::fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WrappedKey({} bytes)", self.0.len())
    }
}

impl Serialize for WrappedKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use base64::Engine as _;
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for WrappedKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use base64::Engine as _;
        let text = String::deserialize(d)?;
        if text.len() > crate::chunked::MAX_WRAPPED_KEY_LEN * 4 / 3 + 4 {
            return Err(serde::de::Error::custom("wrapped_key is too long"));
        }
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map(WrappedKey)
            .map_err(|e| serde::de::Error::custom(format!("wrapped_key is not base64: {e}")))
    }
}

/// The wire form of [`Encryption`] (an internally tagged enum cannot reject unknown fields on a
/// unit variant, so the tag is checked by hand).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEncryption {
    scheme: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recipient_key_id: Option<KeyId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chunk_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wrapped_key: Option<WrappedKey>,
}

impl TryFrom<RawEncryption> for Encryption {
    type Error = String;

    fn try_from(raw: RawEncryption) -> Result<Self, Self::Error> {
        let scheme = raw.scheme.as_str();
        let chunked = scheme == CHUNKED_SCHEME;
        if !chunked && (raw.chunk_size.is_some() || raw.wrapped_key.is_some()) {
            return Err(format!(
                "encryption scheme {scheme:?} takes no chunk_size or wrapped_key"
            ));
        }
        match (scheme, raw.recipient_key_id) {
            ("none", None) => Ok(Encryption::None),
            ("none", Some(_)) => Err("encryption scheme `none` takes no recipient_key_id".into()),
            ("age-x25519", Some(id)) => Ok(Encryption::AgeX25519 {
                recipient_key_id: id,
            }),
            ("age-x25519" | CHUNKED_SCHEME, None) => Err(format!(
                "encryption scheme `{scheme}` needs a recipient_key_id"
            )),
            (CHUNKED_SCHEME, Some(id)) => {
                let (Some(chunk_size), Some(wrapped_key)) = (raw.chunk_size, raw.wrapped_key)
                else {
                    return Err(format!(
                        "encryption scheme `{CHUNKED_SCHEME}` needs a chunk_size and a wrapped_key"
                    ));
                };
                crate::chunked::check_chunk_size(chunk_size)?;
                if wrapped_key.0.is_empty()
                    || wrapped_key.0.len() > crate::chunked::MAX_WRAPPED_KEY_LEN
                {
                    return Err(format!(
                        "wrapped_key is {} bytes, expected 1 to {}",
                        wrapped_key.0.len(),
                        crate::chunked::MAX_WRAPPED_KEY_LEN
                    ));
                }
                Ok(Encryption::ChunkedXChaCha20Poly1305 {
                    recipient_key_id: id,
                    chunk_size,
                    wrapped_key,
                })
            }
            (other, _) => Err(format!(
                "unknown encryption scheme {other:?}: expected `none`, `age-x25519` or `{CHUNKED_SCHEME}`"
            )),
        }
    }
}

impl From<Encryption> for RawEncryption {
    fn from(e: Encryption) -> Self {
        let scheme = e.scheme().to_owned();
        match e {
            Encryption::None => RawEncryption {
                scheme,
                recipient_key_id: None,
                chunk_size: None,
                wrapped_key: None,
            },
            Encryption::AgeX25519 { recipient_key_id } => RawEncryption {
                scheme,
                recipient_key_id: Some(recipient_key_id),
                chunk_size: None,
                wrapped_key: None,
            },
            Encryption::ChunkedXChaCha20Poly1305 {
                recipient_key_id,
                chunk_size,
                wrapped_key,
            } => RawEncryption {
                scheme,
                recipient_key_id: Some(recipient_key_id),
                chunk_size: Some(chunk_size),
                wrapped_key: Some(wrapped_key),
            },
        }
    }
}

/// Size and hash of the stored payload, and the size of its plaintext.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadInfo {
    /// Bytes of the payload as stored in the file (equals the binary `payload_len`).
    pub size: u64,
    /// BLAKE3 over the stored payload bytes.
    pub blake3: Digest,
    /// Bytes of plaintext: the sum of item sizes.
    pub plain_size: u64,
}

/// One item (file) of the bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemInfo {
    /// A plain file name (see [`validate_item_name`](crate::validate_item_name)).
    pub name: String,
    /// Media type such as `application/pdf`, as declared by the sender.
    pub media_type: String,
    /// Size in bytes.
    pub size: u64,
    /// BLAKE3 of the content.
    pub blake3: Digest,
    /// SHA-256 of the content.
    pub sha256: Digest,
}

impl Header {
    /// The suite this header names, if implemented.
    pub fn suite(&self) -> Option<Suite> {
        Suite::from_id(self.suite)
    }

    /// Serializes as the exact bytes to sign (compact JSON).
    pub(crate) fn to_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// Structural checks that need no keys and no clock: agreement with the prefix and the
    /// payload length, limits, field syntax, and that the item sizes add up to `plain_size`.
    /// Item *names* are checked separately ([`Header::check_item_names`]), after the signature.
    pub(crate) fn check_structure(
        &self,
        prefix_version: u16,
        prefix_suite: u16,
        payload_len: u64,
        limits: &Limits,
    ) -> Result<(), VerifyError> {
        if self.format_version != prefix_version {
            return Err(VerifyError::malformed(format!(
                "format_version {} disagrees with the binary prefix ({prefix_version})",
                self.format_version
            )));
        }
        if !is_supported_version(self.format_version) {
            return Err(VerifyError::UnsupportedVersion {
                found: self.format_version,
                supported: NEWEST_FORMAT_VERSION,
            });
        }
        if self.suite != prefix_suite {
            return Err(VerifyError::malformed(format!(
                "suite {} disagrees with the binary prefix ({prefix_suite})",
                self.suite
            )));
        }
        if self.payload.size != payload_len {
            return Err(VerifyError::malformed(format!(
                "payload.size {} disagrees with the binary payload length {payload_len}",
                self.payload.size
            )));
        }
        self.check_encryption_version()
            .map_err(VerifyError::malformed)?;
        let n_items = u64::try_from(self.items.len()).unwrap_or(u64::MAX);
        if n_items > limits.max_items {
            return Err(VerifyError::TooManyItems {
                declared: n_items,
                limit: limits.max_items,
            });
        }
        if self.payload.plain_size > limits.max_plain_bytes {
            return Err(VerifyError::PayloadTooLarge {
                what: "decompressed payload",
                declared: self.payload.plain_size,
                limit: limits.max_plain_bytes,
            });
        }
        let mut sum: u64 = 0;
        for item in &self.items {
            sum = sum
                .checked_add(item.size)
                .ok_or_else(|| VerifyError::malformed("item sizes overflow a 64-bit integer"))?;
            validate_media_type(&item.media_type).map_err(|r| {
                VerifyError::malformed(format!(
                    "item {:?}: invalid media_type {:?}: {r}",
                    item.name, item.media_type
                ))
            })?;
        }
        if sum != self.payload.plain_size {
            return Err(VerifyError::malformed(format!(
                "item sizes add up to {sum} bytes but payload.plain_size is {}",
                self.payload.plain_size
            )));
        }
        self.check_fields().map_err(VerifyError::malformed)
    }

    /// The encryption scheme belongs to the format version, and a chunked payload's length is
    /// one a writer could have produced with its chunk size (so the chunk count is bound).
    pub(crate) fn check_encryption_version(&self) -> Result<(), String> {
        match (&self.encryption, self.format_version) {
            (Encryption::None, _) | (Encryption::AgeX25519 { .. }, FORMAT_VERSION_1) => Ok(()),
            (Encryption::ChunkedXChaCha20Poly1305 { chunk_size, .. }, FORMAT_VERSION_2) => {
                crate::chunked::chunk_layout(self.payload.size, *chunk_size).map(|_| ())
            }
            (e, v) => Err(format!(
                "encryption scheme `{}` does not belong to format version {v}",
                e.scheme()
            )),
        }
    }

    /// Field syntax and consistency rules (used by the writer too).
    pub(crate) fn check_fields(&self) -> Result<(), String> {
        if !self.channel.is_valid() {
            return Err(format!("channel {} joins a zone to itself", self.channel));
        }
        validate_identifier(&self.bundle_id).map_err(|r| format!("invalid bundle_id: {r}"))?;
        validate_kind(&self.kind).map_err(|r| format!("invalid kind {:?}: {r}", self.kind))?;
        if let Some(case) = &self.case_id {
            validate_identifier(case).map_err(|r| format!("invalid case_id {case:?}: {r}"))?;
        }
        match (self.sequence, &self.prev_digest) {
            (0, _) => return Err("sequence must start at 1".into()),
            (1, Some(_)) => return Err("sequence 1 must not have a prev_digest".into()),
            (s, None) if s > 1 => {
                return Err(format!("sequence {s} must carry the prev_digest"));
            }
            _ => {}
        }
        if self.expires_at <= self.created_at {
            return Err(format!(
                "expires_at {} is not after created_at {}",
                rfc3339::format(&self.expires_at),
                rfc3339::format(&self.created_at)
            ));
        }
        Ok(())
    }

    /// Item name rules: each a plain file name within `max_len`, no two equal ignoring case.
    pub(crate) fn check_item_names(&self, max_len: usize) -> Result<(), VerifyError> {
        let mut seen = std::collections::HashSet::with_capacity(self.items.len());
        for item in &self.items {
            crate::names::validate_item_name(&item.name, max_len).map_err(|reason| {
                VerifyError::BadItemName {
                    name: item.name.chars().take(300).collect(),
                    reason,
                }
            })?;
            if !seen.insert(item.name.to_lowercase()) {
                return Err(VerifyError::BadItemName {
                    name: item.name.clone(),
                    reason: "duplicate name (names must be unique, ignoring case)".into(),
                });
            }
        }
        Ok(())
    }
}

/// RFC 3339 text for timestamps: UTC with a `Z` suffix, fractional seconds only when non-zero
/// (`2026-03-01T08:00:00Z`, `2026-03-01T08:00:00.250Z`). Any RFC 3339 offset is accepted when
/// reading and converted to UTC.
pub(crate) mod rfc3339 {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn format(t: &DateTime<Utc>) -> String {
        t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }

    pub(crate) fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| serde::de::Error::custom(format!("invalid RFC 3339 time {s:?}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header {
            format_version: 1,
            suite: 1,
            bundle_id: "b1".into(),
            channel: "internet-to-extranet".parse().unwrap(),
            sender: Zone::Internet,
            receiver: Zone::Extranet,
            key_id: KeyId::from_bytes([1; 8]),
            sequence: 1,
            prev_digest: None,
            created_at: "2026-03-01T08:00:00Z".parse().unwrap(),
            expires_at: "2026-03-08T08:00:00Z".parse().unwrap(),
            kind: "application.submitted".into(),
            case_id: Some("QZ-1".into()),
            compression: Compression::Zstd,
            encryption: Encryption::AgeX25519 {
                recipient_key_id: KeyId::from_bytes([2; 8]),
            },
            payload: PayloadInfo {
                size: 10,
                blake3: Digest::blake3(b"x"),
                plain_size: 3,
            },
            items: vec![ItemInfo {
                name: "a.txt".into(),
                media_type: "text/plain".into(),
                size: 3,
                blake3: Digest::blake3(b"abc"),
                sha256: Digest::blake3(b"abc"),
            }],
        }
    }

    #[test]
    fn json_round_trip_and_shape() {
        let h = sample();
        let bytes = h.to_bytes().unwrap();
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(text.starts_with(r#"{"format_version":1,"suite":1,"bundle_id":"b1","#));
        assert!(text.contains(r#""created_at":"2026-03-01T08:00:00Z""#));
        assert!(text.contains(
            r#""encryption":{"scheme":"age-x25519","recipient_key_id":"0202020202020202"}"#
        ));
        let back: Header = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, h);
        h.check_structure(1, 1, 10, &Limits::default()).unwrap();

        let none = r#"{"scheme":"none"}"#;
        assert_eq!(
            serde_json::from_str::<Encryption>(none).unwrap(),
            Encryption::None
        );
        assert!(serde_json::from_str::<Encryption>(r#"{"scheme":"none","x":1}"#).is_err());
        assert!(
            serde_json::from_str::<Encryption>(
                r#"{"scheme":"age-x25519","recipient_key_id":"0202020202020202","x":1}"#
            )
            .is_err()
        );
        assert!(serde_json::from_str::<Encryption>(r#"{"scheme":"rot13"}"#).is_err());
        assert!(serde_json::from_str::<Encryption>(r#"{"scheme":"age-x25519"}"#).is_err());
        assert!(
            serde_json::from_str::<Encryption>(
                r#"{"scheme":"none","recipient_key_id":"0202020202020202"}"#
            )
            .is_err()
        );
        assert_eq!(serde_json::to_string(&Encryption::None).unwrap(), none);
    }

    #[test]
    fn unknown_and_duplicate_fields_rejected() {
        let text = String::from_utf8(sample().to_bytes().unwrap()).unwrap();
        let extra = text.replacen('{', r#"{"extra":1,"#, 1);
        assert!(serde_json::from_str::<Header>(&extra).is_err());
        let dup = text.replacen('{', r#"{"kind":"other","#, 1);
        assert!(serde_json::from_str::<Header>(&dup).is_err());
    }

    #[test]
    fn structure_rules() {
        let l = Limits::default();
        let mut h = sample();
        h.sequence = 2;
        assert!(h.check_structure(1, 1, 10, &l).is_err());
        h.prev_digest = Some(Digest::blake3(b"p"));
        h.check_structure(1, 1, 10, &l).unwrap();
        assert!(h.check_structure(1, 1, 11, &l).is_err());
        assert!(h.check_structure(1, 2, 10, &l).is_err());
        let mut h2 = sample();
        h2.items[0].size = 4;
        assert!(h2.check_structure(1, 1, 10, &l).is_err());
        let mut h3 = sample();
        h3.expires_at = h3.created_at;
        assert!(h3.check_structure(1, 1, 10, &l).is_err());
        let mut h4 = sample();
        h4.items[0].size = u64::MAX;
        h4.items.push(h4.items[0].clone());
        assert!(h4.check_structure(1, 1, 10, &l).is_err());
    }
}
