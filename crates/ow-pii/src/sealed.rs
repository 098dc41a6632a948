//! Key ids and the stored form of a sealed value.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::PiiError;

/// Version byte of the binary encoding and `v1` prefix of the text encoding.
pub const SEALED_VERSION: u8 = 1;
/// Length of an XChaCha20-Poly1305 nonce.
pub const NONCE_LEN: usize = 24;
/// Length of the Poly1305 tag that ends every ciphertext.
pub const TAG_LEN: usize = 16;
/// Length of a key id in bytes (shown as 8 hex digits).
pub const KEY_ID_LEN: usize = 4;
/// Bytes a sealed value adds to its plaintext in the binary encoding.
pub const SEALED_OVERHEAD: usize = 1 + KEY_ID_LEN + NONCE_LEN + TAG_LEN;

const TEXT_PREFIX: &str = "v1.";

/// The id of a key in the personal-data key file: 8 lower-case hex digits, the first 4 bytes of a
/// BLAKE3 key derivation from the key (so it identifies the key without revealing it).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PiiKeyId(pub(crate) [u8; KEY_ID_LEN]);

impl PiiKeyId {
    /// The id of an encryption key.
    pub(crate) fn of_seal_key(key: &[u8; 32]) -> Self {
        Self::derive("OneWindow ow-pii key id v1", key)
    }

    /// The id of a blind-index key.
    pub(crate) fn of_index_key(key: &[u8; 32]) -> Self {
        Self::derive("OneWindow ow-pii index key id v1", key)
    }

    fn derive(context: &str, key: &[u8; 32]) -> Self {
        let derived = zeroize::Zeroizing::new(blake3::derive_key(context, key));
        let mut id = [0; KEY_ID_LEN];
        id.copy_from_slice(&derived[..KEY_ID_LEN]);
        Self(id)
    }

    /// The id as 4 bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_ID_LEN] {
        &self.0
    }
}

impl fmt::Display for PiiKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for PiiKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PiiKeyId({self})")
    }
}

impl FromStr for PiiKeyId {
    type Err = PiiError;

    /// Parses 8 hex digits (either case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 2 * KEY_ID_LEN {
            return Err(PiiError::malformed(format!(
                "a key id has {} hex digits, found {} characters",
                2 * KEY_ID_LEN,
                s.len()
            )));
        }
        let mut id = [0; KEY_ID_LEN];
        hex::decode_to_slice(s, &mut id)
            .map_err(|_| PiiError::malformed("a key id must be hex digits"))?;
        Ok(Self(id))
    }
}

/// A sealed (encrypted and authenticated) personal-data value, as stored in a database column.
///
/// Two stable encodings, both naming the key id so the right key is picked after rotation:
///
/// - binary (BLOB columns), [`Sealed::to_bytes`]: `0x01 ‖ key id (4) ‖ nonce (24) ‖ ciphertext ‖
///   tag (16)`, i.e. 45 bytes more than the plaintext;
/// - text (TEXT columns), [`Sealed::to_text`] and `Display`/`FromStr`:
///   `v1.<key id, 8 hex>.<base64url without padding of nonce ‖ ciphertext ‖ tag>`.
///
/// `Debug` shows only the key id and the length.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub(crate) key_id: PiiKeyId,
    pub(crate) nonce: [u8; NONCE_LEN],
    /// Ciphertext followed by the tag.
    pub(crate) ciphertext: Vec<u8>,
}

impl Sealed {
    /// The id of the key that sealed the value.
    pub fn key_id(&self) -> PiiKeyId {
        self.key_id
    }

    /// The binary encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + KEY_ID_LEN + NONCE_LEN + self.ciphertext.len());
        out.push(SEALED_VERSION);
        out.extend_from_slice(&self.key_id.0);
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Decodes the binary encoding. Checks the form only; authenticity is checked by
    /// [`crate::PiiKeyring::open`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PiiError> {
        let Some((&version, rest)) = bytes.split_first() else {
            return Err(PiiError::malformed("empty value"));
        };
        if version != SEALED_VERSION {
            return Err(PiiError::malformed(format!(
                "unknown format version {version} (this build reads version {SEALED_VERSION})"
            )));
        }
        if rest.len() < KEY_ID_LEN {
            return Err(PiiError::malformed(
                "truncated before the end of the key id",
            ));
        }
        let (id, rest) = rest.split_at(KEY_ID_LEN);
        let mut key_id = [0; KEY_ID_LEN];
        key_id.copy_from_slice(id);
        Self::from_payload(PiiKeyId(key_id), rest)
    }

    /// The text encoding, `v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`.
    pub fn to_text(&self) -> String {
        let mut payload = Vec::with_capacity(NONCE_LEN + self.ciphertext.len());
        payload.extend_from_slice(&self.nonce);
        payload.extend_from_slice(&self.ciphertext);
        let mut out = String::with_capacity(12 + (payload.len() * 4).div_ceil(3));
        out.push_str(TEXT_PREFIX);
        out.push_str(&self.key_id.to_string());
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut out);
        out
    }

    /// Decodes the text encoding. Checks the form only; authenticity is checked by
    /// [`crate::PiiKeyring::open`].
    pub fn from_text(text: &str) -> Result<Self, PiiError> {
        let Some(rest) = text.strip_prefix(TEXT_PREFIX) else {
            let version = text.split('.').next().unwrap_or_default();
            return Err(PiiError::malformed(if text.contains('.') {
                format!("unknown text format version {version:?} (this build reads \"v1\")")
            } else {
                "not a sealed value (expected v1.<key id>.<data>)".to_owned()
            }));
        };
        let Some((id, payload)) = rest.split_once('.') else {
            return Err(PiiError::malformed(
                "missing the data part (expected v1.<key id>.<data>)",
            ));
        };
        let key_id: PiiKeyId = id.parse()?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|err| PiiError::malformed(format!("data part is not base64url: {err}")))?;
        Self::from_payload(key_id, &payload)
    }

    fn from_payload(key_id: PiiKeyId, payload: &[u8]) -> Result<Self, PiiError> {
        if payload.len() < NONCE_LEN + TAG_LEN {
            return Err(PiiError::malformed(format!(
                "too short: {} bytes of nonce and ciphertext, at least {} needed",
                payload.len(),
                NONCE_LEN + TAG_LEN
            )));
        }
        let (nonce_bytes, ciphertext) = payload.split_at(NONCE_LEN);
        let mut nonce = [0; NONCE_LEN];
        nonce.copy_from_slice(nonce_bytes);
        Ok(Self {
            key_id,
            nonce,
            ciphertext: ciphertext.to_vec(),
        })
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed")
            .field("key_id", &self.key_id)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Sealed {
    /// The text encoding (ciphertext only; no plaintext is ever shown).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl FromStr for Sealed {
    type Err = PiiError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_text(s)
    }
}
