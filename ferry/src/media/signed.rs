//! The signed media manifest (`ow-media-manifest.txt`): the sending zone's Ed25519 signature over
//! the tag manifest's SHA-256 digest, with the disc's identity, its place in its set, its counts
//! and sequence ranges, and the time it was made.
//!
//! ```text
//! ow-media-manifest v1
//! channel intranet-to-extranet
//! sender intranet
//! receiver extranet
//! set-id <uuid>
//! disc-id <uuid>
//! disc <k> of <n>
//! sequences <first> <last>
//! set-sequences <first> <last>
//! bundles <whole bundles on this disc>
//! parts <parts of split bundles on this disc>
//! payload-oxum <bytes>.<files>
//! created-at <RFC 3339 UTC>
//! tagmanifest-sha256 <64 hex>
//! key-id <16 hex>
//! signature <base64 of the 64-byte Ed25519 signature>
//! ```
//!
//! The signature is over [`SIGNING_CONTEXT`] followed by every byte of the file before the
//! `signature` line (the body, ending with the newline after `key-id`). The tag manifest lists
//! the SHA-256 of every other tag file, and the payload manifests the digests of every payload
//! file, so the one signature covers every byte on the disc.

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier};
use ow_bundle::{Channel, KeyId, TrustStore, Zone};

/// Prepended to the body before signing, so a media manifest signature can never be taken for
/// a bundle's or a checkpoint's.
pub const SIGNING_CONTEXT: &[u8] = b"onewindow/media-manifest/v1\n";
const HEADER: &str = "ow-media-manifest v1";
/// Largest media manifest read.
pub const MAX_MEDIA_MANIFEST_BYTES: u64 = 16 << 10;

/// What the sending zone vouches for about one disc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaManifest {
    /// The channel the disc carries.
    pub channel: Channel,
    /// The set (`Bag-Group-Identifier`).
    pub set_id: String,
    /// This disc (`External-Identifier`).
    pub disc_id: String,
    /// 1-based place in the set.
    pub disc_index: u32,
    /// Discs in the set.
    pub disc_count: u32,
    /// Lowest and highest sequence of anything on this disc.
    pub sequences: (u64, u64),
    /// Lowest and highest sequence in the whole set.
    pub set_sequences: (u64, u64),
    /// Whole bundles on this disc.
    pub bundles: u64,
    /// Parts of split bundles on this disc.
    pub parts: u64,
    /// `Payload-Oxum` of this disc.
    pub payload_oxum: String,
    /// When the disc was made.
    pub created_at: DateTime<Utc>,
    /// SHA-256 (hex) of `tagmanifest-sha256.txt`.
    pub tagmanifest_sha256: String,
}

/// Why a media manifest was refused; the variants map to the refusal codes of an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestError {
    /// It does not parse (`altered`).
    Malformed(String),
    /// Signed by a key not pinned for the channel (`foreign`).
    UnknownKey(String),
    /// The signature does not verify (`altered`).
    BadSignature,
}

impl MediaManifest {
    fn body(&self, key_id: &KeyId) -> String {
        format!(
            "{HEADER}\nchannel {}\nsender {}\nreceiver {}\nset-id {}\ndisc-id {}\ndisc {} of {}\n\
             sequences {} {}\nset-sequences {} {}\nbundles {}\nparts {}\npayload-oxum {}\n\
             created-at {}\ntagmanifest-sha256 {}\nkey-id {key_id}\n",
            self.channel,
            self.channel.from,
            self.channel.to,
            self.set_id,
            self.disc_id,
            self.disc_index,
            self.disc_count,
            self.sequences.0,
            self.sequences.1,
            self.set_sequences.0,
            self.set_sequences.1,
            self.bundles,
            self.parts,
            self.payload_oxum,
            self.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            self.tagmanifest_sha256,
        )
    }

    /// The signed file's text.
    pub fn sign(&self, key: &SigningKey) -> String {
        let body = self.body(&KeyId::of(&key.verifying_key()));
        let mut message = SIGNING_CONTEXT.to_vec();
        message.extend_from_slice(body.as_bytes());
        let signature = key.sign(&message);
        format!(
            "{body}signature {}\n",
            base64::engine::general_purpose::STANDARD.encode(signature.to_bytes())
        )
    }

    /// Parses the file and verifies its signature against the keys `trust` pins for the
    /// channel it names. Returns the manifest and the signing key's id.
    pub fn open(text: &str, trust: &TrustStore) -> Result<(Self, KeyId), ManifestError> {
        let malformed = |what: &str| ManifestError::Malformed(what.to_owned());
        let Some(at) = text.rfind("signature ") else {
            return Err(malformed("the media manifest has no signature line"));
        };
        let (body, signature_line) = text.split_at(at);
        if !body.ends_with('\n') || !signature_line.ends_with('\n') {
            return Err(malformed("the media manifest is cut short"));
        }
        let mut lines = body.lines();
        if lines.next() != Some(HEADER) {
            return Err(malformed("the file is not an ow-media-manifest v1"));
        }
        let mut field = |name: &str| -> Result<String, ManifestError> {
            let line = lines
                .next()
                .ok_or_else(|| malformed(&format!("the media manifest has no `{name}` line")))?;
            line.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(' '))
                .map(str::to_owned)
                .ok_or_else(|| {
                    malformed(&format!(
                        "the media manifest has {line:?} where `{name}` was expected"
                    ))
                })
        };
        let pair = |value: &str, sep: &str, name: &str| -> Result<(u64, u64), ManifestError> {
            value
                .split_once(sep)
                .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
                .ok_or_else(|| malformed(&format!("the media manifest's `{name}` is malformed")))
        };
        let channel: Channel = field("channel")?
            .parse()
            .map_err(|e: String| ManifestError::Malformed(e))?;
        let sender: Zone = field("sender")?
            .parse()
            .map_err(|e: String| ManifestError::Malformed(e))?;
        let receiver: Zone = field("receiver")?
            .parse()
            .map_err(|e: String| ManifestError::Malformed(e))?;
        if sender != channel.from || receiver != channel.to {
            return Err(malformed(
                "the media manifest's zones do not match its channel",
            ));
        }
        let set_id = field("set-id")?;
        let disc_id = field("disc-id")?;
        let (disc_index, disc_count) = pair(&field("disc")?, " of ", "disc")?;
        let sequences = pair(&field("sequences")?, " ", "sequences")?;
        let set_sequences = pair(&field("set-sequences")?, " ", "set-sequences")?;
        let bundles = field("bundles")?
            .parse()
            .map_err(|_| malformed("the media manifest's `bundles` is not a number"))?;
        let parts = field("parts")?
            .parse()
            .map_err(|_| malformed("the media manifest's `parts` is not a number"))?;
        let payload_oxum = field("payload-oxum")?;
        let created_at = DateTime::parse_from_rfc3339(&field("created-at")?)
            .map_err(|_| malformed("the media manifest's `created-at` is not RFC 3339"))?
            .with_timezone(&Utc);
        let tagmanifest_sha256 = field("tagmanifest-sha256")?;
        let key_id: KeyId = field("key-id")?
            .parse()
            .map_err(|e: String| ManifestError::Malformed(e))?;
        if lines.next().is_some() {
            return Err(malformed("the media manifest has extra lines"));
        }
        let ids_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        let (Ok(disc_index), Ok(disc_count)) =
            (u32::try_from(disc_index), u32::try_from(disc_count))
        else {
            return Err(malformed(
                "the media manifest's disc numbers are out of range",
            ));
        };
        if !ids_ok(&set_id)
            || !ids_ok(&disc_id)
            || disc_index == 0
            || disc_index > disc_count
            || disc_count > 10_000
            || sequences.0 > sequences.1
            || set_sequences.0 > set_sequences.1
        {
            return Err(malformed(
                "the media manifest's ids, disc numbers or ranges are invalid",
            ));
        }
        let signature = signature_line
            .strip_prefix("signature ")
            .and_then(|s| s.strip_suffix('\n'))
            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
            .and_then(|bytes| <[u8; 64]>::try_from(bytes.as_slice()).ok())
            .map(|bytes| Signature::from_bytes(&bytes))
            .ok_or_else(|| malformed("the media manifest's signature is not 64 bytes of base64"))?;
        let key = trust.sender_key(channel, &key_id).ok_or_else(|| {
            ManifestError::UnknownKey(format!(
                "the disc is signed with key {key_id}, which the trust file does not pin for \
                 {channel}"
            ))
        })?;
        let manifest = Self {
            channel,
            set_id,
            disc_id,
            disc_index,
            disc_count,
            sequences,
            set_sequences,
            bundles,
            parts,
            payload_oxum,
            created_at,
            tagmanifest_sha256,
        };
        // The body as re-encoded must be the body as read: one text, one meaning.
        if manifest.body(&key_id) != body {
            return Err(malformed("the media manifest is not in its canonical form"));
        }
        let mut message = SIGNING_CONTEXT.to_vec();
        message.extend_from_slice(body.as_bytes());
        key.verify(&message, &signature)
            .map_err(|_| ManifestError::BadSignature)?;
        Ok((manifest, key_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> MediaManifest {
        MediaManifest {
            channel: "intranet-to-extranet".parse().unwrap(),
            set_id: "0193f5c2-7d7e-7a40-9c55-3e1f2b1d0a11".into(),
            disc_id: "0193f5c2-7d7e-7a40-9c55-3e1f2b1d0a12".into(),
            disc_index: 1,
            disc_count: 2,
            sequences: (1, 4),
            set_sequences: (1, 9),
            bundles: 4,
            parts: 0,
            payload_oxum: "100.4".into(),
            created_at: Utc::now(),
            tagmanifest_sha256: "ab".repeat(32),
        }
    }

    #[test]
    fn signed_manifest_opens_only_with_the_pinned_key_and_unchanged() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let mut trust = TrustStore::new();
        let channel = manifest().channel;
        trust.add_sender_key(channel, key.verifying_key()).unwrap();
        let text = manifest().sign(&key);
        let (opened, _) = MediaManifest::open(&text, &trust).unwrap();
        assert_eq!(opened.disc_id, manifest().disc_id);

        let altered = text.replace("bundles 4", "bundles 5");
        assert_eq!(
            MediaManifest::open(&altered, &trust).unwrap_err(),
            ManifestError::BadSignature
        );
        let other = SigningKey::from_bytes(&[8; 32]);
        assert!(matches!(
            MediaManifest::open(&manifest().sign(&other), &trust),
            Err(ManifestError::UnknownKey(_))
        ));
        assert!(matches!(
            MediaManifest::open(&text[..text.len() - 5], &trust),
            Err(ManifestError::Malformed(_))
        ));
    }
}
