//! The personal-data key file: its grammar, creation and rotation.
//!
//! ```text
//! # comment lines and blank lines are ignored
//! ow-pii-index-key:<id>:<base64 of 32 bytes>        exactly one; never rotates
//! ow-pii-key:<id>:<base64 of 32 bytes>               an encryption key, kept for decryption
//! ow-pii-key:<id>:<base64 of 32 bytes>:active        the key new values are sealed with
//! ```
//!
//! At most one `ow-pii-key` line may be marked `:active`; when none is, the first `ow-pii-key`
//! line is active. Ids are 8 hex digits derived from the key and checked on load, so a damaged
//! line is detected. Base64 is the standard alphabet with padding (44 characters).

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::{PiiError, PiiKeyId};

pub(crate) const INDEX_PREFIX: &str = "ow-pii-index-key:";
pub(crate) const KEY_PREFIX: &str = "ow-pii-key:";
pub(crate) const ACTIVE_SUFFIX: &str = ":active";

/// A 32-byte secret that is wiped when dropped.
pub(crate) type Secret = Zeroizing<[u8; 32]>;

/// One encryption key line.
pub(crate) struct KeyEntry {
    pub id: PiiKeyId,
    pub key: Secret,
    pub active: bool,
}

/// A parsed and validated key file.
pub(crate) struct KeyFile {
    pub index_id: PiiKeyId,
    pub index_key: Secret,
    /// In file order (oldest first after rotations).
    pub keys: Vec<KeyEntry>,
    /// Position of the active key in `keys`.
    pub active: usize,
}

fn invalid(path: &Path, reason: impl Into<String>) -> PiiError {
    PiiError::KeyFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Parses `<id>:<base64>` (the part after the prefix), checking the id against the key.
fn parse_id_and_key(
    path: &Path,
    line_no: usize,
    body: &str,
    id_of: fn(&[u8; 32]) -> PiiKeyId,
) -> Result<(PiiKeyId, Secret), PiiError> {
    let Some((id_text, key_text)) = body.split_once(':') else {
        return Err(invalid(
            path,
            format!("line {line_no}: expected <key id>:<base64 key> after the prefix"),
        ));
    };
    let id: PiiKeyId = id_text.parse().map_err(|_| {
        invalid(
            path,
            format!("line {line_no}: the key id must be 8 hex digits"),
        )
    })?;
    let decoded = Zeroizing::new(STANDARD.decode(key_text).map_err(|_| {
        invalid(
            path,
            format!("line {line_no}: the key is not valid base64 (standard alphabet, padded)"),
        )
    })?);
    if decoded.len() != 32 {
        return Err(invalid(
            path,
            format!(
                "line {line_no}: the key must be 32 bytes, found {}",
                decoded.len()
            ),
        ));
    }
    let mut key: Secret = Zeroizing::new([0; 32]);
    key.copy_from_slice(&decoded);
    if id_of(&key) != id {
        return Err(invalid(
            path,
            format!(
                "line {line_no}: key id {id} does not match its key (the line is damaged, or the \
                 id was edited; restore the file from backup)"
            ),
        ));
    }
    Ok((id, key))
}

/// Parses and validates the text of a key file. Error messages never quote key material.
pub(crate) fn parse(path: &Path, text: &str) -> Result<KeyFile, PiiError> {
    let mut index: Option<(PiiKeyId, Secret)> = None;
    let mut keys: Vec<KeyEntry> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(body) = line.strip_prefix(INDEX_PREFIX) {
            if index.is_some() {
                return Err(invalid(
                    path,
                    format!(
                        "line {line_no}: a second {INDEX_PREFIX} line; there must be exactly one, \
                         and it never changes"
                    ),
                ));
            }
            index = Some(parse_id_and_key(
                path,
                line_no,
                body,
                PiiKeyId::of_index_key,
            )?);
        } else if let Some(body) = line.strip_prefix(KEY_PREFIX) {
            let (body, active) = match body.strip_suffix(ACTIVE_SUFFIX) {
                Some(body) => (body, true),
                None => (body, false),
            };
            let (id, key) = parse_id_and_key(path, line_no, body, PiiKeyId::of_seal_key)?;
            if keys.iter().any(|k| k.id == id) {
                return Err(invalid(
                    path,
                    format!("line {line_no}: key {id} appears twice"),
                ));
            }
            keys.push(KeyEntry { id, key, active });
        } else {
            return Err(invalid(
                path,
                format!(
                    "line {line_no}: not a comment, {INDEX_PREFIX}… or {KEY_PREFIX}… line \
                     (see docs/personal-data.md)"
                ),
            ));
        }
    }
    let Some((index_id, index_key)) = index else {
        return Err(invalid(
            path,
            format!(
                "no {INDEX_PREFIX} line; without the original index key no blind index can be \
                 looked up (restore the file from backup)"
            ),
        ));
    };
    if keys.is_empty() {
        return Err(invalid(path, format!("no {KEY_PREFIX} line")));
    }
    let marked: Vec<usize> = keys
        .iter()
        .enumerate()
        .filter(|(_, k)| k.active)
        .map(|(i, _)| i)
        .collect();
    let active = match marked.as_slice() {
        [] => 0,
        [one] => *one,
        _ => {
            let ids: Vec<String> = marked.iter().map(|&i| keys[i].id.to_string()).collect();
            return Err(invalid(
                path,
                format!(
                    "{} keys are marked {ACTIVE_SUFFIX} ({}); mark exactly one",
                    marked.len(),
                    ids.join(", ")
                ),
            ));
        }
    };
    Ok(KeyFile {
        index_id,
        index_key,
        keys,
        active,
    })
}

/// Reads a key file after checking its permissions.
pub(crate) fn read_checked(path: &Path) -> Result<Zeroizing<String>, PiiError> {
    ow_keys::check_secret_file(path)?;
    let text = fs::read_to_string(path).map_err(|cause| ow_keys::KeyError::Read {
        path: path.to_path_buf(),
        cause,
    })?;
    Ok(Zeroizing::new(text))
}

/// A fresh random 32-byte key.
pub(crate) fn random_key() -> Result<Secret, PiiError> {
    let mut key: Secret = Zeroizing::new([0; 32]);
    getrandom::fill(&mut key[..]).map_err(|err| PiiError::Random(err.to_string()))?;
    Ok(key)
}

/// Appends `<prefix><id>:<base64>[:active]\n` to `out` (which should have spare capacity so the
/// secret is not left behind in a reallocated buffer).
fn push_key_line(out: &mut String, prefix: &str, id: PiiKeyId, key: &[u8; 32], active: bool) {
    out.push_str(prefix);
    out.push_str(&id.to_string());
    out.push(':');
    STANDARD.encode_string(key, out);
    if active {
        out.push_str(ACTIVE_SUFFIX);
    }
    out.push('\n');
}

/// Creates a new key file (mode 0600, never overwriting) with an index key and one active key.
pub(crate) fn generate(path: &Path) -> Result<PiiKeyId, PiiError> {
    let index_key = random_key()?;
    let key = random_key()?;
    let index_id = PiiKeyId::of_index_key(&index_key);
    let id = PiiKeyId::of_seal_key(&key);
    let mut text = Zeroizing::new(String::with_capacity(1024));
    text.push_str(
        "# OneWindow personal-data keys (ow-pii). SECRET: keep mode 0600 and back this file up\n\
         # with every database backup. Never delete a line: old ow-pii-key lines open values\n\
         # sealed before a rotation, and the ow-pii-index-key line keeps blind indexes valid.\n\
         # Format and rotation procedure: docs/personal-data.md\n",
    );
    push_key_line(&mut text, INDEX_PREFIX, index_id, &index_key, false);
    push_key_line(&mut text, KEY_PREFIX, id, &key, true);

    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|cause| {
            if cause.kind() == ErrorKind::AlreadyExists {
                PiiError::Exists {
                    path: path.to_path_buf(),
                }
            } else {
                write_error(path, cause)
            }
        })?;
    if let Err(cause) = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
    {
        drop(file);
        // We created the file a moment ago; remove the partial one so a retry can succeed.
        let _ = fs::remove_file(path);
        return Err(write_error(path, cause));
    }
    sync_parent(path)?;
    tracing::info!(path = %path.display(), key_id = %id, index_key_id = %index_id,
        "created personal-data key file");
    Ok(id)
}

/// Appends a new active key to an existing key file, keeping every old line.
pub(crate) fn rotate(path: &Path) -> Result<PiiKeyId, PiiError> {
    let text = read_checked(path)?;
    let parsed = parse(path, &text)?;
    let (key, id) = {
        let mut attempt = 0;
        loop {
            let key = random_key()?;
            let id = PiiKeyId::of_seal_key(&key);
            if !parsed.keys.iter().any(|k| k.id == id) {
                break (key, id);
            }
            attempt += 1;
            if attempt >= 8 {
                return Err(PiiError::Random(
                    "eight fresh keys in a row collided with existing key ids".to_owned(),
                ));
            }
        }
    };

    let mut out = Zeroizing::new(String::with_capacity(text.len() + 256));
    for raw in text.lines() {
        let line = raw.trim();
        match line
            .strip_prefix(KEY_PREFIX)
            .and_then(|body| body.strip_suffix(ACTIVE_SUFFIX))
        {
            Some(body) => {
                out.push_str(KEY_PREFIX);
                out.push_str(body);
            }
            None => out.push_str(raw),
        }
        out.push('\n');
    }
    out.push_str("# rotation: key ");
    out.push_str(&id.to_string());
    out.push_str(" added and made active; keep the lines above to open older values\n");
    push_key_line(&mut out, KEY_PREFIX, id, &key, true);

    let meta = fs::metadata(path).map_err(|cause| write_error(path, cause))?;
    let tmp = temp_path(path)?;
    let result = write_replacement(&tmp, path, &out, meta.uid(), meta.gid());
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_parent(path)?;
    tracing::info!(path = %path.display(), key_id = %id, previous = %parsed.keys[parsed.active].id,
        "rotated personal-data key: new values are sealed with the new key");
    Ok(id)
}

fn write_replacement(
    tmp: &Path,
    path: &Path,
    text: &str,
    uid: u32,
    gid: u32,
) -> Result<(), PiiError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .map_err(|cause| write_error(tmp, cause))?;
    // Keep the owner of the original file (an operator may rotate as root a file owned by the
    // service user).
    let own = file.metadata().map_err(|cause| write_error(tmp, cause))?;
    if own.uid() != uid || own.gid() != gid {
        std::os::unix::fs::fchown(&file, Some(uid), Some(gid))
            .map_err(|cause| write_error(tmp, cause))?;
    }
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|cause| write_error(tmp, cause))?;
    drop(file);
    fs::rename(tmp, path).map_err(|cause| write_error(path, cause))
}

fn temp_path(path: &Path) -> Result<PathBuf, PiiError> {
    let mut suffix = [0u8; 4];
    getrandom::fill(&mut suffix).map_err(|err| PiiError::Random(err.to_string()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pii-keys".to_owned());
    Ok(path.with_file_name(format!(".{name}.rotate-{}.tmp", hex::encode(suffix))))
}

fn sync_parent(path: &Path) -> Result<(), PiiError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::File::open(parent)
        .and_then(|dir| dir.sync_all())
        .map_err(|cause| write_error(parent, cause))
}

fn write_error(path: &Path, cause: std::io::Error) -> PiiError {
    PiiError::Write {
        path: path.to_path_buf(),
        cause,
    }
}
