//! Personal data at rest: names, ID numbers, phone numbers and addresses of people are stored
//! sealed, and found again through blind indexes.
//!
//! - **Sealing.** [`PiiKeyring::seal`] encrypts a value with XChaCha20-Poly1305 under a fresh
//!   random 24-byte nonce. The associated data binds the value to its [`Field`] and to a caller
//!   context (the record it belongs to), so a ciphertext moved to another column or row does not
//!   open. A [`Sealed`] value has a versioned binary and text encoding that names its key id, so
//!   the right key is used after a rotation.
//! - **Keys.** One text file, mode 0600, checked with [`ow_keys::check_secret_file`] on every
//!   load: an `ow-pii-index-key` line and one or more `ow-pii-key` lines, one of them active.
//!   [`PiiKeyring::generate_key_file`] creates it (never overwriting) and [`PiiKeyring::rotate`]
//!   appends a new active key, keeping the old ones for decryption.
//! - **Blind index.** [`PiiKeyring::blind_index`] is a keyed BLAKE3 hash of a normalised value
//!   ([`normalize_id_number`], [`normalize_phone`]) under a per-field key derived from the index
//!   key, which never rotates. It supports exact-match lookup only.
//! - **Files.** [`PiiKeyring::seal_writer`] and [`PiiKeyring::open_reader`] seal and open files
//!   (uploaded materials) as a stream of 64 KiB chunks (STREAM over XChaCha20-Poly1305), bound to
//!   the record they belong to; [`PiiKeyring::ensure_sealed_file`] re-seals after a rotation and
//!   seals files an earlier version stored in clear.
//!
//! Nothing here prints a key or a plaintext: `Debug` of the keyring shows key ids, `Debug` of a
//! sealed value its key id and length, errors never quote either. Key material and opened
//! plaintexts are wiped from memory on drop. Showing personal data masked is `ow-domain`'s job.
//! The operator's view (file format, rotation procedure, limits) is `docs/personal-data.md`.
//!
//! ```no_run
//! use ow_pii::{Field, PiiKeyring, Sealed, normalize_id_number};
//! # fn main() -> Result<(), ow_pii::PiiError> {
//! let keys = PiiKeyring::load("/etc/onewindow/pii.keys".as_ref())?;
//! let id = normalize_id_number("11010519491231002x");
//! let row = b"rights_holder:0190f3c2-7a1b-7c3d-8e9f-001122334455";
//! let stored: String = keys.seal(Field::IdNumber, row, id.as_bytes()).to_text();
//! let lookup: String = keys.blind_index(Field::IdNumber, &id);
//! // … later, from the row found by `lookup`:
//! let clear = keys.open_string(Field::IdNumber, row, &stored.parse::<Sealed>()?)?;
//! assert_eq!(clear.as_str(), id);
//! # Ok(()) }
//! ```

mod error;
mod field;
mod file;
mod keyfile;
mod keyring;
mod normalize;
#[cfg(feature = "test-util")]
pub mod scan;
mod sealed;

pub use error::PiiError;
pub use field::Field;
pub use file::{
    FILE_CHUNK_SIZE, FILE_HEADER_LEN, FILE_MAGIC, FILE_NONCE_PREFIX_LEN, FILE_VERSION, FileSealing,
    MAX_FILE_CHUNK_SIZE, MIN_FILE_CHUNK_SIZE, OpenReader, SealWriter, SealedFileHeader,
    create_private, is_sealed_file,
};
pub use keyring::PiiKeyring;
pub use normalize::{normalize_id_number, normalize_phone};
pub use sealed::{
    KEY_ID_LEN, NONCE_LEN, PiiKeyId, SEALED_OVERHEAD, SEALED_VERSION, Sealed, TAG_LEN,
};
