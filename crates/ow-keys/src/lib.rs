//! Key files of a OneWindow zone: generation, strict permissions, loading, and the trust file.
//!
//! A zone has two key pairs: an Ed25519 pair that signs its bundles and ferry-log checkpoints, and
//! an X25519 (age) pair to which other zones encrypt the bundles they send it. Each key is a small
//! text file (see `docs/bundle-format.md` for the encodings). Secret key files are created with
//! mode 0600, and every loader refuses a secret key file that group or others can read, so a
//! binary never starts on a loose secret.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};
use ow_bundle::{Channel, EncryptionPublic, EncryptionSecret, KeyId, TrustStore, Zone};
use zeroize::Zeroizing;

/// Why a key or trust file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A secret key file can be read by group or others.
    #[error(
        "secret key file {path} has mode {mode:04o}, so group or others can read it; \
         restrict it with `chmod 600 {path}` (and check who may have copied it)"
    )]
    LooseSecret {
        /// The offending file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A key file could not be read.
    #[error("cannot read key file {path}: {cause}; check the path in the configuration")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// A key file does not hold the expected kind of key.
    #[error("key file {path} is not a valid {expected}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the file should hold.
        expected: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// `keygen` would overwrite an existing key.
    #[error(
        "{path} already exists; keygen never overwrites a key. Move the old keys away first \
         (and keep the old public key in the trust file while bundles signed by it are in flight)"
    )]
    Exists {
        /// The existing file.
        path: PathBuf,
    },
    /// A key file could not be written.
    #[error("cannot write key file {path}: {cause}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// The trust file could not be parsed.
    #[error("trust file {path} is invalid: {reason}")]
    Trust {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
}

/// The four key files of one zone, named after the zone inside one folder.
#[derive(Debug, Clone)]
pub struct ZoneKeyFiles {
    /// Ed25519 signing key (secret, 0600).
    pub signing_secret: PathBuf,
    /// Ed25519 public key, for other zones' trust files and for log verification.
    pub signing_public: PathBuf,
    /// X25519 (age) identity used to decrypt bundles sent to this zone (secret, 0600).
    pub encryption_secret: PathBuf,
    /// X25519 (age) recipient other zones encrypt to.
    pub encryption_public: PathBuf,
}

impl ZoneKeyFiles {
    /// The conventional file names for `zone` inside `dir`.
    pub fn in_dir(dir: &Path, zone: Zone) -> Self {
        Self {
            signing_secret: dir.join(format!("{zone}.sign.secret")),
            signing_public: dir.join(format!("{zone}.sign.pub")),
            encryption_secret: dir.join(format!("{zone}.enc.secret")),
            encryption_public: dir.join(format!("{zone}.enc.pub")),
        }
    }
}

/// What `generate_zone_keys` made: the file paths and the public halves for the trust file.
#[derive(Debug, Clone)]
pub struct GeneratedKeys {
    /// Where the files are.
    pub files: ZoneKeyFiles,
    /// The signing public key in its text encoding.
    pub signing_public: String,
    /// The key id of the signing key.
    pub signing_key_id: KeyId,
    /// The encryption public key (age recipient).
    pub encryption_public: String,
}

/// Generates a zone's signing and encryption key pairs into `dir`, refusing to overwrite.
///
/// Secret files are created with mode 0600 from the start (never created wider and narrowed).
pub fn generate_zone_keys(dir: &Path, zone: Zone) -> Result<GeneratedKeys, KeyError> {
    let files = ZoneKeyFiles::in_dir(dir, zone);
    for path in [
        &files.signing_secret,
        &files.signing_public,
        &files.encryption_secret,
        &files.encryption_public,
    ] {
        if path.exists() {
            return Err(KeyError::Exists { path: path.clone() });
        }
    }
    fs::create_dir_all(dir).map_err(|cause| KeyError::Write {
        path: dir.to_path_buf(),
        cause,
    })?;

    let signing = ow_bundle::generate_signing_key().map_err(|err| KeyError::Write {
        path: files.signing_secret.clone(),
        cause: std::io::Error::other(err.to_string()),
    })?;
    let verifying = signing.verifying_key();
    let encryption = EncryptionSecret::generate();
    let encryption_public = encryption.public().to_string();
    let signing_public = ow_bundle::encode_verifying_key(&verifying);

    let secret_text = ow_bundle::encode_signing_key(&signing);
    write_key_file(
        &files.signing_secret,
        &format!("# OneWindow {zone} zone signing key (Ed25519, secret). Keep mode 0600.\n"),
        &secret_text,
        true,
    )?;
    write_key_file(
        &files.signing_public,
        &format!("# OneWindow {zone} zone signing public key.\n"),
        &signing_public,
        false,
    )?;
    let encryption_text = encryption.to_text();
    write_key_file(
        &files.encryption_secret,
        &format!(
            "# OneWindow {zone} zone encryption identity (age X25519, secret). Keep mode 0600.\n"
        ),
        &encryption_text,
        true,
    )?;
    write_key_file(
        &files.encryption_public,
        &format!("# OneWindow {zone} zone encryption recipient.\n"),
        &encryption_public,
        false,
    )?;
    Ok(GeneratedKeys {
        files,
        signing_key_id: KeyId::of(&verifying),
        signing_public,
        encryption_public,
    })
}

fn write_key_file(path: &Path, comment: &str, body: &str, secret: bool) -> Result<(), KeyError> {
    let mode = if secret { 0o600 } else { 0o644 };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|cause| KeyError::Write {
            path: path.to_path_buf(),
            cause,
        })?;
    // The umask can only narrow the mode; make sure a public file is readable as intended.
    if !secret {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|cause| {
            KeyError::Write {
                path: path.to_path_buf(),
                cause,
            }
        })?;
    }
    let mut text = Zeroizing::new(String::with_capacity(comment.len() + body.len() + 1));
    text.push_str(comment);
    text.push_str(body);
    text.push('\n');
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|cause| KeyError::Write {
            path: path.to_path_buf(),
            cause,
        })
}

/// Refuses a secret key file that group or others could read (or write).
pub fn check_secret_file(path: &Path) -> Result<(), KeyError> {
    let meta = fs::metadata(path).map_err(|cause| KeyError::Read {
        path: path.to_path_buf(),
        cause,
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyError::LooseSecret {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Reads the key line of a key file: the first line that is neither blank nor a `#` comment.
fn read_key_line(path: &Path) -> Result<Zeroizing<String>, KeyError> {
    let text = Zeroizing::new(fs::read_to_string(path).map_err(|cause| KeyError::Read {
        path: path.to_path_buf(),
        cause,
    })?);
    let line = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with('#'))
        .unwrap_or_default();
    Ok(Zeroizing::new(line.to_owned()))
}

/// Loads a zone's Ed25519 signing key, after checking the file's permissions.
pub fn load_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    check_secret_file(path)?;
    let line = read_key_line(path)?;
    ow_bundle::decode_signing_key(&line).map_err(|err| KeyError::Parse {
        path: path.to_path_buf(),
        expected: "Ed25519 signing key (ow-ed25519-secret:…)",
        reason: err.to_string(),
    })
}

/// Loads a zone's Ed25519 public key.
pub fn load_verifying_key(path: &Path) -> Result<VerifyingKey, KeyError> {
    let line = read_key_line(path)?;
    ow_bundle::decode_verifying_key(&line).map_err(|err| KeyError::Parse {
        path: path.to_path_buf(),
        expected: "Ed25519 public key (ow-ed25519:…)",
        reason: err.to_string(),
    })
}

/// Loads a zone's age X25519 identity, after checking the file's permissions.
pub fn load_encryption_secret(path: &Path) -> Result<EncryptionSecret, KeyError> {
    check_secret_file(path)?;
    let line = read_key_line(path)?;
    line.parse::<EncryptionSecret>()
        .map_err(|err| KeyError::Parse {
            path: path.to_path_buf(),
            expected: "age X25519 identity (AGE-SECRET-KEY-1…)",
            reason: err.to_string(),
        })
}

/// Loads a zone's age recipient.
pub fn load_encryption_public(path: &Path) -> Result<EncryptionPublic, KeyError> {
    let line = read_key_line(path)?;
    line.parse::<EncryptionPublic>()
        .map_err(|err| KeyError::Parse {
            path: path.to_path_buf(),
            expected: "age X25519 recipient (age1…)",
            reason: err.to_string(),
        })
}

/// Loads and parses a trust file.
pub fn load_trust(path: &Path) -> Result<TrustStore, KeyError> {
    let text = fs::read_to_string(path).map_err(|cause| KeyError::Read {
        path: path.to_path_buf(),
        cause,
    })?;
    TrustStore::from_toml_str(&text).map_err(|err| KeyError::Trust {
        path: path.to_path_buf(),
        reason: err.to_string(),
    })
}

/// The trust store for `channels`, from the public key files that [`generate_zone_keys`] wrote
/// into `dir` for every zone involved: per channel, the sending zone's signing key and the
/// receiving zone's encryption key. Write it with [`TrustStore::to_toml_string`].
pub fn trust_from_key_dir(dir: &Path, channels: &[Channel]) -> Result<TrustStore, KeyError> {
    let mut trust = TrustStore::new();
    for &channel in channels {
        let sender = ZoneKeyFiles::in_dir(dir, channel.from);
        let receiver = ZoneKeyFiles::in_dir(dir, channel.to);
        let key = load_verifying_key(&sender.signing_public)?;
        trust
            .add_sender_key(channel, key)
            .map_err(|err| KeyError::Trust {
                path: sender.signing_public.clone(),
                reason: err.to_string(),
            })?;
        trust.set_receiver_encryption_key(
            channel,
            load_encryption_public(&receiver.encryption_public)?,
        );
    }
    Ok(trust)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_from_generated_keys_round_trips_through_the_trust_file() {
        let dir = tempfile::tempdir().unwrap();
        let internet = generate_zone_keys(dir.path(), Zone::Internet).unwrap();
        let extranet = generate_zone_keys(dir.path(), Zone::Extranet).unwrap();
        let up = Channel::new(Zone::Internet, Zone::Extranet).unwrap();
        let trust = trust_from_key_dir(dir.path(), &[up, up.reverse()]).unwrap();
        let file = dir.path().join("trust.toml");
        fs::write(&file, trust.to_toml_string()).unwrap();
        let loaded = load_trust(&file).unwrap();
        assert_eq!(loaded, trust);
        assert!(loaded.sender_key(up, &internet.signing_key_id).is_some());
        assert!(
            loaded
                .sender_key(up.reverse(), &extranet.signing_key_id)
                .is_some()
        );
        assert_eq!(
            loaded.receiver_encryption_key(up).map(ToString::to_string),
            Some(extranet.encryption_public.clone())
        );
        // A zone whose keys are not there is named in the error.
        let intranet = Channel::new(Zone::Extranet, Zone::Intranet).unwrap();
        let err = trust_from_key_dir(dir.path(), &[intranet]).unwrap_err();
        assert!(err.to_string().contains("intranet.enc.pub"), "{err}");
    }

    #[test]
    fn generated_secrets_are_private_and_load_back() {
        let dir = tempfile::tempdir().unwrap();
        let keys = generate_zone_keys(dir.path(), Zone::Extranet).unwrap();
        for secret in [&keys.files.signing_secret, &keys.files.encryption_secret] {
            let mode = fs::metadata(secret).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", secret.display());
        }
        let signing = load_signing_key(&keys.files.signing_secret).unwrap();
        let public = load_verifying_key(&keys.files.signing_public).unwrap();
        assert_eq!(signing.verifying_key(), public);
        assert_eq!(KeyId::of(&public), keys.signing_key_id);
        let identity = load_encryption_secret(&keys.files.encryption_secret).unwrap();
        let recipient = load_encryption_public(&keys.files.encryption_public).unwrap();
        assert_eq!(identity.public().to_string(), recipient.to_string());
    }

    #[test]
    fn keygen_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        generate_zone_keys(dir.path(), Zone::Internet).unwrap();
        let err = generate_zone_keys(dir.path(), Zone::Internet).unwrap_err();
        assert!(matches!(err, KeyError::Exists { .. }), "{err}");
    }

    #[test]
    fn loose_secret_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let keys = generate_zone_keys(dir.path(), Zone::Intranet).unwrap();
        for mode in [0o640, 0o604, 0o660] {
            fs::set_permissions(&keys.files.signing_secret, fs::Permissions::from_mode(mode))
                .unwrap();
            let err = load_signing_key(&keys.files.signing_secret).unwrap_err();
            assert!(matches!(err, KeyError::LooseSecret { .. }));
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
        fs::set_permissions(
            &keys.files.encryption_secret,
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert!(matches!(
            load_encryption_secret(&keys.files.encryption_secret),
            Err(KeyError::LooseSecret { .. })
        ));
    }

    #[test]
    fn wrong_kind_of_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let keys = generate_zone_keys(dir.path(), Zone::Extranet).unwrap();
        let err = load_verifying_key(&keys.files.encryption_public).unwrap_err();
        assert!(err.to_string().contains("Ed25519 public key"), "{err}");
    }
}
