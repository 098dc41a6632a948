//! The trust store: per channel, the sending zone's pinned Ed25519 verifying keys (several, for
//! rotation) and the receiving zone's age encryption public key.
//!
//! The sender uses it to find the receiver's encryption key; the receiver uses it to pin the
//! sender's keys. Its text form is a TOML trust file:
//!
//! ```toml
//! [[channel]]
//! name = "internet-to-extranet"
//! sender_keys = ["ow-ed25519:…", "ow-ed25519:…"]   # the internet zone's signing keys
//! receiver_encryption_key = "age1…"                # the extranet zone's age recipient
//! bundle_format_version = 1                        # optional: only while the extranet's
//!                                                  # software does not read version 2
//! ```
//!
//! Unknown fields, invalid or duplicate channel names, invalid keys and duplicate keys are
//! rejected with a message naming the channel.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ed25519_dalek::VerifyingKey;
use serde::Deserialize;

use crate::error::{KeyError, TrustError};
use crate::keys::{EncryptionPublic, KeyId, decode_verifying_key, encode_verifying_key};
use crate::zone::Channel;

/// Pinned keys per channel. See the [module docs](self) for the TOML form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustStore {
    channels: BTreeMap<Channel, ChannelTrust>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct ChannelTrust {
    sender_keys: BTreeMap<KeyId, VerifyingKey>,
    receiver_encryption_key: Option<EncryptionPublic>,
    bundle_format_version: Option<u16>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrustFile {
    #[serde(default)]
    channel: Vec<RawChannel>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    name: String,
    #[serde(default)]
    sender_keys: Vec<String>,
    #[serde(default)]
    receiver_encryption_key: Option<String>,
    #[serde(default)]
    bundle_format_version: Option<i64>,
}

impl TrustStore {
    /// An empty trust store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a TOML trust file (format in the [module docs](self)).
    pub fn from_toml_str(text: &str) -> Result<Self, TrustError> {
        let raw: RawTrustFile =
            toml::from_str(text).map_err(|e| TrustError::Toml(e.to_string()))?;
        let mut store = TrustStore::new();
        for (i, ch) in raw.channel.into_iter().enumerate() {
            let channel: Channel =
                ch.name
                    .parse()
                    .map_err(|reason| TrustError::InvalidChannel {
                        index: i + 1,
                        reason,
                    })?;
            if store.channels.contains_key(&channel) {
                return Err(TrustError::DuplicateChannel(channel));
            }
            let version = match ch.bundle_format_version {
                None => None,
                Some(v) => match u16::try_from(v) {
                    Ok(v) if crate::format::is_supported_version(v) => Some(v),
                    _ => return Err(TrustError::InvalidFormatVersion { channel, found: v }),
                },
            };
            if ch.sender_keys.is_empty() && ch.receiver_encryption_key.is_none() {
                return Err(TrustError::EmptyChannel(channel));
            }
            let entry = store.channels.entry(channel).or_default();
            entry.bundle_format_version = version;
            for text in &ch.sender_keys {
                let key = decode_verifying_key(text)
                    .map_err(|source| TrustError::InvalidKey { channel, source })?;
                let id = KeyId::of(&key);
                if entry.sender_keys.insert(id, key).is_some() {
                    return Err(TrustError::DuplicateKey {
                        channel,
                        key_id: id,
                    });
                }
            }
            if let Some(text) = &ch.receiver_encryption_key {
                let key: EncryptionPublic = text
                    .parse()
                    .map_err(|source: KeyError| TrustError::InvalidKey { channel, source })?;
                entry.receiver_encryption_key = Some(key);
            }
        }
        Ok(store)
    }

    /// Writes the store as a TOML trust file that [`TrustStore::from_toml_str`] reads back.
    pub fn to_toml_string(&self) -> String {
        let mut out = String::new();
        for (channel, trust) in &self.channels {
            if !out.is_empty() {
                out.push('\n');
            }
            let _ = writeln!(out, "[[channel]]\nname = \"{channel}\"");
            if !trust.sender_keys.is_empty() {
                out.push_str("sender_keys = [\n");
                for key in trust.sender_keys.values() {
                    let _ = writeln!(out, "    \"{}\",", encode_verifying_key(key));
                }
                out.push_str("]\n");
            }
            if let Some(k) = &trust.receiver_encryption_key {
                let _ = writeln!(out, "receiver_encryption_key = \"{k}\"");
            }
            if let Some(v) = trust.bundle_format_version {
                let _ = writeln!(out, "bundle_format_version = {v}");
            }
        }
        out
    }

    /// Pins a sender verifying key for `channel`; returns its key id. Adding the same key twice
    /// is an error.
    pub fn add_sender_key(
        &mut self,
        channel: Channel,
        key: VerifyingKey,
    ) -> Result<KeyId, TrustError> {
        let id = KeyId::of(&key);
        let entry = self.channels.entry(channel).or_default();
        if entry.sender_keys.contains_key(&id) {
            return Err(TrustError::DuplicateKey {
                channel,
                key_id: id,
            });
        }
        entry.sender_keys.insert(id, key);
        Ok(id)
    }

    /// Removes a sender key (e.g. after rotation); returns whether it was present.
    pub fn remove_sender_key(&mut self, channel: Channel, key_id: &KeyId) -> bool {
        self.channels
            .get_mut(&channel)
            .is_some_and(|c| c.sender_keys.remove(key_id).is_some())
    }

    /// Sets the receiving zone's encryption public key for `channel`.
    pub fn set_receiver_encryption_key(&mut self, channel: Channel, key: EncryptionPublic) {
        self.channels
            .entry(channel)
            .or_default()
            .receiver_encryption_key = Some(key);
    }

    /// Whether the store has an entry for `channel`.
    pub fn contains_channel(&self, channel: Channel) -> bool {
        self.channels.contains_key(&channel)
    }

    /// The channels in the store.
    pub fn channels(&self) -> impl Iterator<Item = Channel> + '_ {
        self.channels.keys().copied()
    }

    /// The pinned sender key with `key_id` on `channel`.
    pub fn sender_key(&self, channel: Channel, key_id: &KeyId) -> Option<&VerifyingKey> {
        self.channels.get(&channel)?.sender_keys.get(key_id)
    }

    /// All pinned sender keys on `channel`.
    pub fn sender_keys(&self, channel: Channel) -> impl Iterator<Item = (&KeyId, &VerifyingKey)> {
        self.channels
            .get(&channel)
            .into_iter()
            .flat_map(|c| c.sender_keys.iter())
    }

    /// The bundle format version a sender writes on `channel`: the trust file's
    /// `bundle_format_version` (1 while the receiving zone's software does not read version 2),
    /// or [`FORMAT_VERSION`](crate::FORMAT_VERSION).
    pub fn bundle_format_version(&self, channel: Channel) -> u16 {
        self.channels
            .get(&channel)
            .and_then(|c| c.bundle_format_version)
            .unwrap_or(crate::format::FORMAT_VERSION)
    }

    /// Sets the bundle format version senders write on `channel` (see
    /// [`bundle_format_version`](Self::bundle_format_version)).
    pub fn set_bundle_format_version(&mut self, channel: Channel, version: u16) {
        self.channels
            .entry(channel)
            .or_default()
            .bundle_format_version = Some(version);
    }

    /// The receiving zone's encryption public key on `channel`.
    pub fn receiver_encryption_key(&self, channel: Channel) -> Option<&EncryptionPublic> {
        self.channels
            .get(&channel)?
            .receiver_encryption_key
            .as_ref()
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::EncryptionSecret;

    fn vk(seed: u8) -> VerifyingKey {
        SigningKey::from_bytes(&[seed; 32]).verifying_key()
    }

    #[test]
    fn parse_and_round_trip() {
        let age = EncryptionSecret::generate().public();
        let text = format!(
            "# trust file\n[[channel]]\nname = \"internet-to-extranet\"\nsender_keys = [\"{}\", \"{}\"]\nreceiver_encryption_key = \"{age}\"\n\n[[channel]]\nname = \"extranet-to-intranet\"\nreceiver_encryption_key = \"{age}\"\n",
            encode_verifying_key(&vk(1)),
            encode_verifying_key(&vk(2)),
        );
        let store = TrustStore::from_toml_str(&text).unwrap();
        let c: Channel = "internet-to-extranet".parse().unwrap();
        assert!(store.sender_key(c, &KeyId::of(&vk(1))).is_some());
        assert!(store.sender_key(c, &KeyId::of(&vk(2))).is_some());
        assert!(store.sender_key(c, &KeyId::of(&vk(3))).is_none());
        assert!(store.sender_key(c.reverse(), &KeyId::of(&vk(1))).is_none());
        assert_eq!(store.receiver_encryption_key(c), Some(&age));
        assert_eq!(store.channels().count(), 2);
        let again = TrustStore::from_toml_str(&store.to_toml_string()).unwrap();
        assert_eq!(again, store);
    }

    #[test]
    fn rejections_have_clear_messages() {
        let k = encode_verifying_key(&vk(1));
        let cases = [
            (
                format!("[[channel]]\nname = \"internet-to-internet\"\nsender_keys = [\"{k}\"]\n"),
                "two different zones",
            ),
            (
                format!("[[channel]]\nname = \"dmz-to-extranet\"\nsender_keys = [\"{k}\"]\n"),
                "unknown zone",
            ),
            (
                format!(
                    "[[channel]]\nname = \"internet-to-extranet\"\nsender_keys = [\"{k}\"]\n[[channel]]\nname = \"internet-to-extranet\"\nsender_keys = [\"{k}\"]\n"
                ),
                "more than once",
            ),
            (
                format!("[[channel]]\nname = \"internet-to-extranet\"\nsender_keys = [\"{k}\", \"{k}\"]\n"),
                "listed more than once",
            ),
            (
                format!("[[channel]]\nname = \"internet-to-extranet\"\nsender_keys = [\"{k}\"]\ncolour = \"red\"\n"),
                "unknown field",
            ),
            (
                "[[channel]]\nname = \"internet-to-extranet\"\nsender_keys = [\"ow-ed25519:AAAA\"]\n".to_string(),
                "invalid verifying key",
            ),
            (
                "[[channel]]\nname = \"internet-to-extranet\"\nreceiver_encryption_key = \"age1nope\"\n".to_string(),
                "invalid encryption public key",
            ),
            (
                "[[channel]]\nname = \"internet-to-extranet\"\n".to_string(),
                "neither sender_keys nor receiver_encryption_key",
            ),
            ("[[channels]]\nname = \"x\"\n".to_string(), "unknown field"),
        ];
        for (text, needle) in cases {
            let err = TrustStore::from_toml_str(&text).unwrap_err().to_string();
            assert!(err.contains(needle), "{err:?} should mention {needle:?}");
        }
    }

    #[test]
    fn programmatic_rotation() {
        let c: Channel = "extranet-to-internet".parse().unwrap();
        let mut s = TrustStore::new();
        let id1 = s.add_sender_key(c, vk(1)).unwrap();
        assert!(s.add_sender_key(c, vk(1)).is_err());
        s.add_sender_key(c, vk(2)).unwrap();
        assert_eq!(s.sender_keys(c).count(), 2);
        assert!(s.remove_sender_key(c, &id1));
        assert!(!s.remove_sender_key(c, &id1));
        assert_eq!(s.sender_keys(c).count(), 1);
    }

    #[test]
    fn bundle_format_version_per_channel() {
        let key = EncryptionSecret::generate().public();
        let c: Channel = "extranet-to-intranet".parse().unwrap();
        let other: Channel = "internet-to-extranet".parse().unwrap();
        let text = format!(
            "[[channel]]\nname = \"{c}\"\nreceiver_encryption_key = \"{key}\"\nbundle_format_version = 1\n\n[[channel]]\nname = \"{other}\"\nreceiver_encryption_key = \"{key}\"\n"
        );
        let s = TrustStore::from_toml_str(&text).unwrap();
        assert_eq!(s.bundle_format_version(c), 1);
        assert_eq!(s.bundle_format_version(other), crate::FORMAT_VERSION);
        assert_eq!(TrustStore::from_toml_str(&s.to_toml_string()).unwrap(), s);
        for bad in ["0", "3", "-1", "70000"] {
            let err = TrustStore::from_toml_str(&text.replace("= 1\n", &format!("= {bad}\n")))
                .unwrap_err()
                .to_string();
            assert!(err.contains("bundle_format_version"), "{err}");
        }
    }
}
