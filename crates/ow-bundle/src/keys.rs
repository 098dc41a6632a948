//! Keys: Ed25519 signing keys (from `ed25519-dalek`), their [`KeyId`]s and plain-text encodings,
//! and the age X25519 encryption key pair ([`EncryptionSecret`], [`EncryptionPublic`]).
//!
//! Text forms (one line, surrounding whitespace ignored when parsing):
//!
//! | key | text |
//! |---|---|
//! | Ed25519 signing key (secret) | `ow-ed25519-secret:` + standard base64 (with padding) of the 32-byte seed |
//! | Ed25519 verifying key | `ow-ed25519:` + standard base64 of the 32-byte public key |
//! | age X25519 secret | `AGE-SECRET-KEY-1…` (age's Bech32 encoding, upper case) |
//! | age X25519 recipient | `age1…` (age's Bech32 encoding, lower case) |
//!
//! Secrets never appear in `Debug` output.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use age::secrecy::ExposeSecret;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::digest::decode_lower_hex;
use crate::error::KeyError;

/// Prefix of the text form of an Ed25519 signing key.
pub const SIGNING_KEY_PREFIX: &str = "ow-ed25519-secret:";
/// Prefix of the text form of an Ed25519 verifying key.
pub const VERIFYING_KEY_PREFIX: &str = "ow-ed25519:";

/// A short key identifier: the first 8 bytes of BLAKE3 over the key, shown as 16 lowercase hex
/// characters.
///
/// For an Ed25519 verifying key the hash is over its 32 raw bytes ([`KeyId::of`]); for an age
/// recipient it is over the `age1…` text ([`EncryptionPublic::key_id`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; 8]);

impl KeyId {
    /// The key id of an Ed25519 verifying key: BLAKE3 over its 32 bytes, first 8 bytes.
    pub fn of(key: &VerifyingKey) -> Self {
        Self::of_bytes(key.as_bytes())
    }

    /// First 8 bytes of BLAKE3 over `bytes`.
    pub(crate) fn of_bytes(bytes: &[u8]) -> Self {
        let h = blake3::hash(bytes);
        let mut id = [0u8; 8];
        id.copy_from_slice(&h.as_bytes()[..8]);
        Self(id)
    }

    /// Wraps 8 raw bytes.
    pub const fn from_bytes(bytes: [u8; 8]) -> Self {
        Self(bytes)
    }

    /// The raw 8 bytes.
    pub const fn as_bytes(&self) -> &[u8; 8] {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", hex::encode(self.0))
    }
}

impl FromStr for KeyId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        decode_lower_hex::<8>(s).map(Self)
    }
}

impl Serialize for KeyId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Generates a new Ed25519 signing key from the operating system's random number generator.
pub fn generate_signing_key() -> Result<SigningKey, KeyError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut_slice()).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Encodes a signing key as `ow-ed25519-secret:<base64 of the 32-byte seed>`.
///
/// The returned string is wiped from memory when dropped.
pub fn encode_signing_key(key: &SigningKey) -> Zeroizing<String> {
    let seed = Zeroizing::new(key.to_bytes());
    // Reserve the final capacity up front so no reallocation leaves a copy of the secret behind.
    let mut out = Zeroizing::new(String::with_capacity(SIGNING_KEY_PREFIX.len() + 44));
    out.push_str(SIGNING_KEY_PREFIX);
    STANDARD.encode_string(seed.as_slice(), &mut out);
    out
}

/// Parses `ow-ed25519-secret:<base64>`; surrounding whitespace (e.g. a final newline) is ignored.
pub fn decode_signing_key(text: &str) -> Result<SigningKey, KeyError> {
    let body = text
        .trim()
        .strip_prefix(SIGNING_KEY_PREFIX)
        .ok_or_else(|| {
            KeyError::InvalidSigningKey(format!("missing prefix `{SIGNING_KEY_PREFIX}`"))
        })?;
    let mut seed = Zeroizing::new([0u8; 32]);
    let mut buf = Zeroizing::new(Vec::with_capacity(48));
    STANDARD
        .decode_vec(body, &mut buf)
        .map_err(|e| KeyError::InvalidSigningKey(format!("bad base64 ({e})")))?;
    if buf.len() != 32 {
        return Err(KeyError::InvalidSigningKey(format!(
            "decoded to {} bytes instead of 32",
            buf.len()
        )));
    }
    seed.copy_from_slice(&buf);
    Ok(SigningKey::from_bytes(&seed))
}

/// Encodes a verifying key as `ow-ed25519:<base64 of the 32-byte key>`.
pub fn encode_verifying_key(key: &VerifyingKey) -> String {
    format!("{VERIFYING_KEY_PREFIX}{}", STANDARD.encode(key.as_bytes()))
}

/// Parses `ow-ed25519:<base64>`; surrounding whitespace is ignored. Rejects keys that are not
/// valid curve points and weak (small-order) keys.
pub fn decode_verifying_key(text: &str) -> Result<VerifyingKey, KeyError> {
    let body = text
        .trim()
        .strip_prefix(VERIFYING_KEY_PREFIX)
        .ok_or_else(|| {
            KeyError::InvalidVerifyingKey(format!("missing prefix `{VERIFYING_KEY_PREFIX}`"))
        })?;
    let bytes = STANDARD
        .decode(body)
        .map_err(|e| KeyError::InvalidVerifyingKey(format!("bad base64 ({e})")))?;
    let bytes: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
        KeyError::InvalidVerifyingKey(format!("decoded to {} bytes instead of 32", bytes.len()))
    })?;
    let key = VerifyingKey::from_bytes(&bytes)
        .map_err(|_| KeyError::InvalidVerifyingKey("not a valid Ed25519 point".into()))?;
    if key.is_weak() {
        return Err(KeyError::InvalidVerifyingKey(
            "weak (small-order) key refused".into(),
        ));
    }
    Ok(key)
}

/// An age X25519 secret key: the receiving zone's decryption key.
///
/// Text form `AGE-SECRET-KEY-1…`. `Debug` shows only the public key id.
#[derive(Clone)]
pub struct EncryptionSecret(age::x25519::Identity, OnceLock<KeyId>);

impl EncryptionSecret {
    fn new(identity: age::x25519::Identity) -> Self {
        Self(identity, OnceLock::new())
    }

    /// Generates a new secret key from the operating system's random number generator.
    pub fn generate() -> Self {
        Self::new(age::x25519::Identity::generate())
    }

    /// The matching public key.
    pub fn public(&self) -> EncryptionPublic {
        EncryptionPublic(self.0.to_public())
    }

    /// The key id of the matching public key, computed once (it costs a scalar multiplication).
    pub(crate) fn key_id(&self) -> KeyId {
        *self.1.get_or_init(|| self.public().key_id())
    }

    /// The secret's text form `AGE-SECRET-KEY-1…`, wiped from memory when dropped.
    ///
    /// There is deliberately no `Display` impl, so a secret cannot be formatted by accident.
    pub fn to_text(&self) -> Zeroizing<String> {
        let s = self.0.to_string();
        Zeroizing::new(s.expose_secret().to_owned())
    }

    pub(crate) fn identity(&self) -> &age::x25519::Identity {
        &self.0
    }
}

impl FromStr for EncryptionSecret {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        age::x25519::Identity::from_str(s.trim())
            .map(Self::new)
            .map_err(|e| KeyError::InvalidEncryptionSecret(e.to_owned()))
    }
}

impl fmt::Debug for EncryptionSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionSecret")
            .field("public_key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

/// An age X25519 recipient: the public key a sender encrypts to. Text form `age1…`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EncryptionPublic(age::x25519::Recipient);

impl EncryptionPublic {
    /// First 8 bytes of BLAKE3 over the `age1…` text, as written in the header's
    /// `encryption.recipient_key_id`.
    pub fn key_id(&self) -> KeyId {
        KeyId::of_bytes(self.0.to_string().as_bytes())
    }

    pub(crate) fn recipient(&self) -> &age::x25519::Recipient {
        &self.0
    }
}

impl FromStr for EncryptionPublic {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        age::x25519::Recipient::from_str(s.trim())
            .map(Self)
            .map_err(|e| KeyError::InvalidEncryptionPublic(e.to_owned()))
    }
}

impl fmt::Display for EncryptionPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for EncryptionPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptionPublic({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_key_text_round_trip() {
        let k = generate_signing_key().unwrap();
        let text = encode_signing_key(&k);
        assert!(text.starts_with(SIGNING_KEY_PREFIX));
        let back = decode_signing_key(&format!("{}\n", &*text)).unwrap();
        assert_eq!(back.to_bytes(), k.to_bytes());
        assert!(decode_signing_key("ow-ed25519-secret:AAAA").is_err());
        assert!(decode_signing_key(&text.replace("secret:", "secret")).is_err());
        assert!(decode_signing_key("ow-ed25519-secret:!!!").is_err());
    }

    #[test]
    fn verifying_key_text_round_trip() {
        let k = SigningKey::from_bytes(&[9u8; 32]).verifying_key();
        let text = encode_verifying_key(&k);
        assert!(text.starts_with("ow-ed25519:"));
        assert_eq!(decode_verifying_key(&text).unwrap(), k);
        assert!(decode_verifying_key(&text.replace("ow-ed25519:", "")).is_err());
        // The identity point is a weak key.
        let mut ident = [0u8; 32];
        ident[0] = 1;
        let weak = format!("ow-ed25519:{}", STANDARD.encode(ident));
        assert!(decode_verifying_key(&weak).is_err());
        // A signing key is not a verifying key.
        let sk = encode_signing_key(&SigningKey::from_bytes(&[9u8; 32]));
        assert!(decode_verifying_key(&sk).is_err());
    }

    #[test]
    fn key_id_is_16_lowercase_hex_of_blake3_prefix() {
        let k = SigningKey::from_bytes(&[1u8; 32]).verifying_key();
        let id = KeyId::of(&k);
        let s = id.to_string();
        assert_eq!(s.len(), 16);
        assert_eq!(s, hex::encode(&blake3::hash(k.as_bytes()).as_bytes()[..8]));
        assert_eq!(s.parse::<KeyId>().unwrap(), id);
        assert!(s.to_uppercase().parse::<KeyId>().is_err());
    }

    #[test]
    fn encryption_keys_text_and_debug() {
        let secret = EncryptionSecret::generate();
        let text = secret.to_text();
        assert!(text.starts_with("AGE-SECRET-KEY-1"));
        let back: EncryptionSecret = text.parse().unwrap();
        assert_eq!(back.public(), secret.public());
        let public = secret.public();
        let ptext = public.to_string();
        assert!(ptext.starts_with("age1"));
        assert_eq!(ptext.parse::<EncryptionPublic>().unwrap(), public);
        assert_eq!(
            public.key_id().to_string(),
            hex::encode(&blake3::hash(ptext.as_bytes()).as_bytes()[..8])
        );
        let dbg = format!("{secret:?}");
        assert!(!dbg.contains(text.as_str()));
        assert!(!dbg.to_uppercase().contains("AGE-SECRET-KEY"));
        assert!(ptext.parse::<EncryptionSecret>().is_err());
        assert!(text.parse::<EncryptionPublic>().is_err());
    }
}
