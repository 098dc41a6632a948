//! Certificate key files: `<name>.secret` (Ed25519 signing key, mode 0600) and `<name>.pub`.
//!
//! The files use the same one-line text encodings as the zone keys (`ow-ed25519-secret:…` and
//! `ow-ed25519:…`, see `ow_bundle`), after one `#` comment line, so `ow_keys` loads them and
//! refuses a secret file that group or others can read.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};
use ow_keys::KeyError;
use zeroize::Zeroizing;

use crate::error::CertificateError;
use crate::signing::key_id;

/// What [`generate_key_file`] wrote.
#[derive(Debug, Clone)]
pub struct GeneratedCertificateKey {
    /// The signing key file (`<name>.secret`, mode 0600).
    pub secret_path: PathBuf,
    /// The public key file (`<name>.pub`, mode 0644).
    pub public_path: PathBuf,
    /// The key id certificates signed with this key carry.
    pub key_id: String,
    /// The public key in its text form (`ow-ed25519:…`).
    pub public_text: String,
}

/// Generates a certificate signing key as `<dir>/<name>.secret` and `<dir>/<name>.pub`.
///
/// `name` is 1–64 characters of `A-Z a-z 0-9 . _ -` and does not start with a dot. The folder
/// is created if needed. Neither file may exist already: a key is never overwritten. The secret
/// file is created with mode 0600 from the start.
pub fn generate_key_file(
    dir: &Path,
    name: &str,
) -> Result<GeneratedCertificateKey, CertificateError> {
    let valid_name = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !valid_name {
        return Err(CertificateError::invalid(
            "key name",
            format!(
                "{name:?} is not a usable key file name; use 1 to 64 letters, digits, '.', '_' \
                 or '-', not starting with '.', e.g. qingzhou-cert-2026"
            ),
        ));
    }
    let secret_path = dir.join(format!("{name}.secret"));
    let public_path = dir.join(format!("{name}.pub"));
    for path in [&secret_path, &public_path] {
        if path.exists() {
            return Err(KeyError::Exists { path: path.clone() }.into());
        }
    }
    fs::create_dir_all(dir).map_err(|cause| KeyError::Write {
        path: dir.to_path_buf(),
        cause,
    })?;

    let signing = ow_bundle::generate_signing_key().map_err(|err| CertificateError::Random {
        reason: err.to_string(),
    })?;
    let verifying = signing.verifying_key();
    let public_text = ow_bundle::encode_verifying_key(&verifying);
    let id = key_id(&verifying);

    let secret_text = ow_bundle::encode_signing_key(&signing);
    write_key_file(
        &secret_path,
        &format!("# OneWindow e-certificate signing key {id} (Ed25519, secret). Keep mode 0600.\n"),
        &secret_text,
        Secrecy::Secret,
    )?;
    if let Err(err) = write_key_file(
        &public_path,
        &format!("# OneWindow e-certificate public key {id}.\n"),
        &public_text,
        Secrecy::Public,
    ) {
        // Leave no half-made key pair behind; the secret was never used.
        let _ = fs::remove_file(&secret_path);
        return Err(err);
    }
    Ok(GeneratedCertificateKey {
        secret_path,
        public_path,
        key_id: id,
        public_text,
    })
}

/// Loads a certificate signing key, refusing a file that group or others can read.
pub fn load_signing_key(path: &Path) -> Result<SigningKey, CertificateError> {
    Ok(ow_keys::load_signing_key(path)?)
}

/// Loads a certificate verifying (public) key.
pub fn load_verifying_key(path: &Path) -> Result<VerifyingKey, CertificateError> {
    Ok(ow_keys::load_verifying_key(path)?)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Secrecy {
    Secret,
    Public,
}

fn write_key_file(
    path: &Path,
    comment: &str,
    body: &str,
    secrecy: Secrecy,
) -> Result<(), CertificateError> {
    let mode = if secrecy == Secrecy::Secret {
        0o600
    } else {
        0o644
    };
    let write_error = |cause| KeyError::Write {
        path: path.to_path_buf(),
        cause,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|cause| {
            if cause.kind() == std::io::ErrorKind::AlreadyExists {
                KeyError::Exists {
                    path: path.to_path_buf(),
                }
            } else {
                write_error(cause)
            }
        })?;
    if secrecy == Secrecy::Public {
        // The umask may have narrowed the mode; a public key is meant to be readable.
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(write_error)?;
    }
    // Reserved once so no reallocation leaves a copy of the secret behind; wiped on drop.
    let mut text = Zeroizing::new(String::with_capacity(comment.len() + body.len() + 1));
    text.push_str(comment);
    text.push_str(body);
    text.push('\n');
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(write_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{CertificateTrust, sign};
    use crate::testutil::sample;

    #[test]
    fn generated_key_signs_and_verifies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let generated = generate_key_file(&dir.path().join("keys"), "qingzhou-2026").expect("gen");
        assert_eq!(
            generated.secret_path,
            dir.path().join("keys/qingzhou-2026.secret")
        );
        let mode = |p: &Path| fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&generated.secret_path), 0o600);
        assert_eq!(mode(&generated.public_path), 0o644);
        let secret_text = fs::read_to_string(&generated.secret_path).expect("read");
        assert!(secret_text.starts_with("# OneWindow e-certificate signing key"));
        assert!(secret_text.contains("ow-ed25519-secret:"));

        let signing = load_signing_key(&generated.secret_path).expect("load secret");
        let verifying = load_verifying_key(&generated.public_path).expect("load public");
        assert_eq!(signing.verifying_key(), verifying);
        assert_eq!(key_id(&verifying), generated.key_id);
        assert_eq!(
            ow_bundle::encode_verifying_key(&verifying),
            generated.public_text
        );

        let signed = sign(&sample(), &signing).expect("sign");
        let mut trust = CertificateTrust::new();
        let id = trust.add_key_file(&generated.public_path).expect("trust");
        assert_eq!(id, generated.key_id);
        signed.verify(&trust).expect("verify");
    }

    #[test]
    fn never_overwrites() {
        let dir = tempfile::tempdir().expect("tempdir");
        generate_key_file(dir.path(), "k").expect("first");
        let err = generate_key_file(dir.path(), "k").expect_err("second");
        assert!(
            matches!(err, CertificateError::Key(KeyError::Exists { .. })),
            "{err}"
        );
        assert!(err.to_string().contains("never overwrites"), "{err}");
        // A stray public file alone also blocks generation, and nothing is written.
        fs::write(dir.path().join("other.pub"), "x").expect("write");
        assert!(generate_key_file(dir.path(), "other").is_err());
        assert!(!dir.path().join("other.secret").exists());
    }

    #[test]
    fn loose_secret_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let generated = generate_key_file(dir.path(), "k").expect("gen");
        for loose in [0o640, 0o604, 0o644] {
            fs::set_permissions(&generated.secret_path, fs::Permissions::from_mode(loose))
                .expect("chmod");
            let err = load_signing_key(&generated.secret_path).expect_err("loose");
            assert!(
                matches!(err, CertificateError::Key(KeyError::LooseSecret { .. })),
                "{err}"
            );
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
    }

    #[test]
    fn bad_names_and_wrong_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        for bad in ["", ".hidden", "a/b", "名", &"x".repeat(65)] {
            assert!(
                matches!(
                    generate_key_file(dir.path(), bad),
                    Err(CertificateError::Invalid { .. })
                ),
                "{bad}"
            );
        }
        let generated = generate_key_file(dir.path(), "k").expect("gen");
        let err = load_verifying_key(&generated.secret_path).expect_err("secret is not public");
        assert!(err.to_string().contains("Ed25519 public key"), "{err}");
        assert!(load_verifying_key(&dir.path().join("missing.pub")).is_err());
    }
}
