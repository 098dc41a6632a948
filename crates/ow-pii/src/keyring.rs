//! The loaded keys and the operations on personal data: seal, open, blind index.

use std::fmt;
use std::path::Path;

use chacha20poly1305::aead::{Aead, AeadInPlace, Payload};
use chacha20poly1305::{Key, KeyInit, XChaCha20Poly1305, XNonce};
use zeroize::{Zeroize, Zeroizing};

use crate::keyfile::{self, Secret};
use crate::sealed::{NONCE_LEN, SEALED_VERSION};
use crate::{Field, PiiError, PiiKeyId, Sealed};

/// Domain-separation prefix of the associated data.
const AD_DOMAIN: &[u8] = b"OneWindow ow-pii v1\0";

/// One encryption key. The cipher holds the subkey and wipes it on drop.
pub(crate) struct SealKey {
    pub(crate) id: PiiKeyId,
    cipher: XChaCha20Poly1305,
    /// The cipher for sealed files (its own subkey).
    pub(crate) file_cipher: XChaCha20Poly1305,
}

/// The personal-data keys of a zone: every encryption key of the key file (the active one seals,
/// all of them open) and the blind-index key.
///
/// `Debug` shows key ids only; all key material is wiped from memory when the keyring is dropped.
pub struct PiiKeyring {
    pub(crate) keys: Vec<SealKey>,
    active: usize,
    index_id: PiiKeyId,
    index_key: Secret,
}

impl PiiKeyring {
    /// Loads the key file at `path`.
    ///
    /// Refuses a file that group or others can read ([`PiiError::Key`] with `ow-keys`'
    /// message and the `chmod 600` fix) and a file that does not follow the format
    /// ([`PiiError::KeyFile`], naming the line but never quoting key material).
    pub fn load(path: &Path) -> Result<Self, PiiError> {
        let text = keyfile::read_checked(path)?;
        let parsed = keyfile::parse(path, &text)?;
        let keyring = Self::from_parsed(parsed);
        tracing::debug!(path = %path.display(), keys = keyring.keys.len(),
            active = %keyring.active_key_id(), index_key = %keyring.index_id,
            "loaded personal-data keyring");
        Ok(keyring)
    }

    /// Creates a new key file at `path` with mode 0600, holding a fresh index key and one fresh
    /// active encryption key, and returns the id of that key.
    ///
    /// Never overwrites: if anything exists at `path` the result is [`PiiError::Exists`]. The
    /// parent directory must exist.
    pub fn generate_key_file(path: &Path) -> Result<PiiKeyId, PiiError> {
        keyfile::generate(path)
    }

    /// Rotates the encryption key of the key file at `path`: appends a fresh key marked
    /// `:active`, removes the mark from the previous one and keeps every other line (old keys
    /// still open the values they sealed; the index key is untouched, so blind indexes stay
    /// valid). Returns the new key's id.
    ///
    /// The file is replaced atomically: the new content is written to a temporary 0600 file in the
    /// same directory (same owner as the original), synced, and renamed over the old one. The file
    /// is checked like [`PiiKeyring::load`] first. Running processes keep using the old active key
    /// until they reload; values they seal still open everywhere, because the old key stays.
    pub fn rotate(path: &Path) -> Result<PiiKeyId, PiiError> {
        keyfile::rotate(path)
    }

    /// An in-memory keyring with fresh random keys, for other crates' tests (feature
    /// `test-util`). Values sealed with it cannot be opened once it is dropped.
    #[cfg(feature = "test-util")]
    pub fn ephemeral() -> Result<Self, PiiError> {
        let index_key = keyfile::random_key()?;
        let key = keyfile::random_key()?;
        Ok(Self::from_parsed(keyfile::KeyFile {
            index_id: PiiKeyId::of_index_key(&index_key),
            index_key,
            keys: vec![keyfile::KeyEntry {
                id: PiiKeyId::of_seal_key(&key),
                key,
                active: true,
            }],
            active: 0,
        }))
    }

    fn from_parsed(parsed: keyfile::KeyFile) -> Self {
        let keys = parsed
            .keys
            .iter()
            .map(|entry| {
                // The file holds master keys; the cipher gets a derived subkey, so the same bytes
                // could never serve two purposes.
                let subkey = Zeroizing::new(blake3::derive_key(
                    "OneWindow ow-pii XChaCha20-Poly1305 v1",
                    &entry.key[..],
                ));
                let file_subkey = Zeroizing::new(blake3::derive_key(
                    crate::file::FILE_SUBKEY_CONTEXT,
                    &entry.key[..],
                ));
                SealKey {
                    id: entry.id,
                    cipher: XChaCha20Poly1305::new(Key::from_slice(&subkey[..])),
                    file_cipher: XChaCha20Poly1305::new(Key::from_slice(&file_subkey[..])),
                }
            })
            .collect();
        Self {
            keys,
            active: parsed.active,
            index_id: parsed.index_id,
            index_key: parsed.index_key,
        }
    }

    /// The id of the key new values are sealed with.
    pub fn active_key_id(&self) -> PiiKeyId {
        self.keys[self.active].id
    }

    /// The ids of all encryption keys, in key-file order.
    pub fn key_ids(&self) -> Vec<PiiKeyId> {
        self.keys.iter().map(|k| k.id).collect()
    }

    /// Whether the keyring holds the encryption key `id`.
    pub fn has_key(&self, id: PiiKeyId) -> bool {
        self.keys.iter().any(|k| k.id == id)
    }

    /// The id of the blind-index key (the same before and after rotations).
    pub fn index_key_id(&self) -> PiiKeyId {
        self.index_id
    }

    /// Seals `plaintext` with the active key and a fresh random 24-byte nonce.
    ///
    /// `field` and `context` are authenticated with the value (not stored in it): opening needs the
    /// same field and context, so a ciphertext copied into another column or another record does
    /// not open. Use as context a stable identifier of the record that never changes for its
    /// life, for example `b"rights_holder:0190f3c2-…"` (table and primary key). An id the database
    /// assigns after the insert cannot be used; assign it before sealing.
    ///
    /// # Panics
    ///
    /// Only if the operating system's random generator fails (no safe nonce can be made) or the
    /// plaintext exceeds the cipher's limit of about 256 GiB.
    pub fn seal(&self, field: Field, context: &[u8], plaintext: &[u8]) -> Sealed {
        let key = &self.keys[self.active];
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce)
            .expect("the operating system's random generator failed; refusing to seal without a fresh nonce");
        let aad = associated_data(key.id, field, context);
        let ciphertext = key
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("plaintext within the XChaCha20-Poly1305 length limit");
        Sealed {
            key_id: key.id,
            nonce,
            ciphertext,
        }
    }

    /// Opens a sealed value with the key it names, checking that it was sealed for `field` and
    /// `context`. The plaintext is wiped from memory when the result is dropped.
    ///
    /// Errors: [`PiiError::UnknownKey`] if the key file lacks the key (an old key was removed),
    /// [`PiiError::Authentication`] if the value was altered or belongs to another field or
    /// record.
    pub fn open(
        &self,
        field: Field,
        context: &[u8],
        sealed: &Sealed,
    ) -> Result<Zeroizing<Vec<u8>>, PiiError> {
        let key = self
            .keys
            .iter()
            .find(|k| k.id == sealed.key_id)
            .ok_or(PiiError::UnknownKey {
                key_id: sealed.key_id,
            })?;
        let aad = associated_data(key.id, field, context);
        let mut buffer = Zeroizing::new(sealed.ciphertext.clone());
        key.cipher
            .decrypt_in_place(XNonce::from_slice(&sealed.nonce), &aad, &mut *buffer)
            .map_err(|_| PiiError::Authentication { field })?;
        Ok(buffer)
    }

    /// [`PiiKeyring::open`] for text values (names, ID numbers, phones, addresses).
    pub fn open_string(
        &self,
        field: Field,
        context: &[u8],
        sealed: &Sealed,
    ) -> Result<Zeroizing<String>, PiiError> {
        let mut bytes = self.open(field, context, sealed)?;
        match String::from_utf8(std::mem::take(&mut *bytes)) {
            Ok(text) => Ok(Zeroizing::new(text)),
            Err(err) => {
                err.into_bytes().zeroize();
                Err(PiiError::malformed(format!(
                    "the opened {field} value is not UTF-8 text"
                )))
            }
        }
    }

    /// Whether `sealed` uses an older key than the active one (see [`PiiKeyring::reseal`]).
    pub fn needs_reseal(&self, sealed: &Sealed) -> bool {
        sealed.key_id != self.active_key_id()
    }

    /// Opens `sealed` and seals it again with the active key, for re-encrypting old values after
    /// a rotation so that an old key can eventually be retired.
    pub fn reseal(
        &self,
        field: Field,
        context: &[u8],
        sealed: &Sealed,
    ) -> Result<Sealed, PiiError> {
        let plaintext = self.open(field, context, sealed)?;
        Ok(self.seal(field, context, &plaintext))
    }

    /// The blind index of `normalized_value` for exact-match lookup: 64 lower-case hex digits of
    /// `BLAKE3-keyed(derive_key("OneWindow blind index v1 <field name>", index key), value)`.
    ///
    /// The index key is the key file's `ow-pii-index-key`, which rotation never changes, so an
    /// index computed today still matches after any number of rotations. Normalise first (see
    /// [`crate::normalize_id_number`], [`crate::normalize_phone`]): the index of `x` and `X`
    /// differ.
    pub fn blind_index(&self, field: Field, normalized_value: &str) -> String {
        let context = format!("OneWindow blind index v1 {}", field.name());
        let field_key = Zeroizing::new(blake3::derive_key(&context, &self.index_key[..]));
        blake3::keyed_hash(&field_key, normalized_value.as_bytes())
            .to_hex()
            .to_string()
    }
}

impl fmt::Debug for PiiKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PiiKeyring")
            .field("active", &self.active_key_id())
            .field("keys", &self.key_ids())
            .field("index_key", &self.index_id)
            .finish()
    }
}

/// The associated data of a sealed value: a domain tag, the format version, the key id, then the
/// field name and the context, each preceded by its length (so no two different (field, context)
/// pairs give the same bytes).
fn associated_data(key_id: PiiKeyId, field: Field, context: &[u8]) -> Vec<u8> {
    let name = field.name();
    let mut ad = Vec::with_capacity(AD_DOMAIN.len() + 5 + 16 + name.len() + context.len());
    ad.extend_from_slice(AD_DOMAIN);
    ad.push(SEALED_VERSION);
    ad.extend_from_slice(key_id.as_bytes());
    ad.extend_from_slice(&(name.len() as u64).to_be_bytes());
    ad.extend_from_slice(name.as_bytes());
    ad.extend_from_slice(&(context.len() as u64).to_be_bytes());
    ad.extend_from_slice(context);
    ad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn associated_data_is_unambiguous() {
        let id = PiiKeyId([1, 2, 3, 4]);
        let a = associated_data(id, Field::Other("a"), b"bc");
        let b = associated_data(id, Field::Other("ab"), b"c");
        assert_ne!(a, b);
        assert_ne!(
            associated_data(id, Field::Phone, b""),
            associated_data(id, Field::Other("phone"), b"")
        );
    }
}
