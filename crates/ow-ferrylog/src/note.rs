//! Signed checkpoints: C2SP `tlog-checkpoint` bodies wrapped in C2SP `signed-note`s with
//! Ed25519 signatures.
//!
//! A checkpoint body is three lines:
//!
//! ```text
//! onewindow.example/ferry/extranet-rx
//! 50
//! <base64 (standard, padded) of the 32-byte root hash>
//! ```
//!
//! The signed note is the body, a blank line, and one signature line per signer:
//! `— <key name> <base64(key hash || signature)>` where the em dash is U+2014, the key hash is
//! the first 4 bytes of `SHA-256(key name || "\n" || 0x01 || 32-byte Ed25519 public key)`, and
//! the Ed25519 signature covers the body exactly (including its final newline, excluding the
//! blank line). Lines from keys the verifier does not know are ignored; a line that claims to be
//! from the verifier's key and does not verify rejects the note.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::merkle::Hash;

/// The signature-type byte of Ed25519 in C2SP signed notes.
const ALG_ED25519: u8 = 0x01;
/// The prefix of a signature line: em dash and a space.
const SIG_PREFIX: &str = "\u{2014} ";
/// Most signature lines accepted on one note (as the Go reference implementation).
const MAX_SIGNATURES: usize = 100;
/// Largest note accepted, in bytes.
const MAX_NOTE_LEN: usize = 64 * 1024;

/// Errors about signed notes and checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The text is not a well-formed signed note.
    #[error("not a well-formed signed note: {reason}; pass the note text exactly as written")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// The note has no signature line from the verifier's key.
    #[error(
        "the note has no signature by key {key_name:?} (key hash {key_hash}); it was signed with \
         another key or the signature line was removed: check that you use this agent's public \
         key and key name"
    )]
    NotSigned {
        /// The key name looked for.
        key_name: String,
        /// The key hash looked for, hex.
        key_hash: String,
    },
    /// A signature line from the verifier's key does not verify.
    #[error(
        "the signature by key {key_name:?} does not verify: the note text was changed after \
         signing, or the signature was forged"
    )]
    BadSignature {
        /// The key name.
        key_name: String,
    },
    /// The note body is not a checkpoint.
    #[error(
        "the note is not a checkpoint: {reason}; a checkpoint body is origin, size and base64 \
         root hash on three lines"
    )]
    BadCheckpoint {
        /// What is wrong.
        reason: String,
    },
    /// A key name or origin cannot be used.
    #[error("invalid {what} {value:?}: it must be non-empty printable text without spaces or '+'")]
    InvalidName {
        /// `key name` or `origin`.
        what: &'static str,
        /// The value given.
        value: String,
    },
}

/// A parsed checkpoint: the tree of the first `size` entries of the log `origin` has `root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line, e.g. `onewindow.example/ferry/extranet-rx`.
    pub origin: String,
    /// Number of entries covered.
    pub size: u64,
    /// Merkle tree hash of those entries.
    pub root: Hash,
}

impl Checkpoint {
    /// The checkpoint body: `"<origin>\n<size>\n<base64 root>\n"`.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// The root hash in lowercase hex.
    pub fn root_hex(&self) -> String {
        hex::encode(self.root)
    }
}

/// Checks a key name (C2SP: non-empty, no whitespace, no `+`).
pub fn validate_key_name(name: &str) -> Result<(), NoteError> {
    validate_name("key name", name)
}

/// Checks a checkpoint origin (non-empty, printable, no whitespace).
pub fn validate_origin(origin: &str) -> Result<(), NoteError> {
    validate_name("origin", origin)
}

fn validate_name(what: &'static str, value: &str) -> Result<(), NoteError> {
    let ok = !value.is_empty()
        && value.len() <= 256
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '+');
    if ok {
        Ok(())
    } else {
        Err(NoteError::InvalidName {
            what,
            value: value.to_owned(),
        })
    }
}

/// The 4-byte key hash of an Ed25519 key in signed notes:
/// `SHA-256(name || "\n" || 0x01 || public key)[..4]`.
pub fn key_hash(key_name: &str, key: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(key_name.as_bytes());
    h.update(b"\n");
    h.update([ALG_ED25519]);
    h.update(key.as_bytes());
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// The verifier key in the text form used by Go's `sumdb/note` and C2SP tools:
/// `<name>+<hex key hash>+<base64(0x01 || public key)>`. Handy to publish next to a log.
pub fn verifier_key_string(key_name: &str, key: &VerifyingKey) -> String {
    let mut raw = Vec::with_capacity(33);
    raw.push(ALG_ED25519);
    raw.extend_from_slice(key.as_bytes());
    format!(
        "{key_name}+{}+{}",
        hex::encode(key_hash(key_name, key)),
        B64.encode(raw)
    )
}

fn check_note_text(text: &str) -> Result<(), NoteError> {
    if text.len() > MAX_NOTE_LEN {
        return Err(NoteError::Malformed {
            reason: format!("longer than {MAX_NOTE_LEN} bytes"),
        });
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(NoteError::Malformed {
            reason: "contains control characters other than newline".into(),
        });
    }
    Ok(())
}

/// Signs `body` (which must end with a newline and contain no blank line) and returns the
/// signed note.
pub fn sign_note(body: &str, key_name: &str, key: &SigningKey) -> Result<String, NoteError> {
    validate_key_name(key_name)?;
    check_note_text(body)?;
    if body.is_empty() || !body.ends_with('\n') || body.contains("\n\n") {
        return Err(NoteError::Malformed {
            reason: "the text to sign must be non-empty, end with a newline and contain no blank \
                     line"
                .into(),
        });
    }
    let sig: Signature = key.sign(body.as_bytes());
    let mut blob = Vec::with_capacity(68);
    blob.extend_from_slice(&key_hash(key_name, &key.verifying_key()));
    blob.extend_from_slice(&sig.to_bytes());
    Ok(format!(
        "{body}\n{SIG_PREFIX}{key_name} {}\n",
        B64.encode(blob)
    ))
}

/// Signs a checkpoint and returns the signed note.
pub fn sign_checkpoint(
    checkpoint: &Checkpoint,
    key_name: &str,
    key: &SigningKey,
) -> Result<String, NoteError> {
    validate_origin(&checkpoint.origin)?;
    sign_note(&checkpoint.body(), key_name, key)
}

/// One parsed signature line.
struct SigLine<'a> {
    name: &'a str,
    blob: Vec<u8>,
}

/// Splits a signed note into its body and signature lines.
fn split_note(note: &str) -> Result<(&str, Vec<SigLine<'_>>), NoteError> {
    check_note_text(note)?;
    let malformed = |reason: &str| NoteError::Malformed {
        reason: reason.to_owned(),
    };
    if !note.ends_with('\n') {
        return Err(malformed("it does not end with a newline"));
    }
    let split = note
        .rfind("\n\n")
        .ok_or_else(|| malformed("no blank line between the text and the signatures"))?;
    let body = &note[..split + 1];
    let sigs = &note[split + 2..];
    let mut lines = Vec::new();
    for line in sigs.strip_suffix('\n').unwrap_or(sigs).split('\n') {
        let rest = line
            .strip_prefix(SIG_PREFIX)
            .ok_or_else(|| malformed("a signature line does not start with an em dash (U+2014)"))?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or_else(|| malformed("a signature line has no space between key name and value"))?;
        if name.is_empty() || b64.contains(' ') {
            return Err(malformed("a signature line is not '— <key name> <base64>'"));
        }
        let blob = B64
            .decode(b64)
            .map_err(|_| malformed("a signature is not standard base64"))?;
        if blob.len() < 5 {
            return Err(malformed(
                "a signature is shorter than a key hash plus a signature",
            ));
        }
        lines.push(SigLine { name, blob });
        if lines.len() > MAX_SIGNATURES {
            return Err(malformed("more than 100 signature lines"));
        }
    }
    if lines.is_empty() {
        return Err(malformed("no signature lines"));
    }
    Ok((body, lines))
}

/// Verifies that `note` carries a valid Ed25519 signature by (`key_name`, `key`) and returns
/// the signed body. Signature lines of other keys are ignored.
pub fn verify_note<'a>(
    note: &'a str,
    key: &VerifyingKey,
    key_name: &str,
) -> Result<&'a str, NoteError> {
    let (body, lines) = split_note(note)?;
    let want = key_hash(key_name, key);
    let ours = lines
        .iter()
        .find(|l| l.name == key_name && l.blob[..4] == want)
        .ok_or_else(|| NoteError::NotSigned {
            key_name: key_name.to_owned(),
            key_hash: hex::encode(want),
        })?;
    let bad = || NoteError::BadSignature {
        key_name: key_name.to_owned(),
    };
    let sig_bytes: [u8; 64] = ours.blob[4..].try_into().map_err(|_| bad())?;
    let sig = Signature::from_bytes(&sig_bytes);
    key.verify_strict(body.as_bytes(), &sig)
        .map_err(|_| bad())?;
    Ok(body)
}

/// Parses the checkpoint body of a note (the whole note, or just its body) **without checking
/// any signature**. Use [`open_checkpoint`] to verify and parse in one step.
pub fn parse_checkpoint_note(text: &str) -> Result<Checkpoint, NoteError> {
    check_note_text(text)?;
    let body = match text.rfind("\n\n") {
        Some(i) => &text[..i + 1],
        None => text,
    };
    let bad = |reason: &str| NoteError::BadCheckpoint {
        reason: reason.to_owned(),
    };
    if body.contains("\n\n") {
        return Err(bad("the body contains a blank line"));
    }
    let mut lines = body
        .strip_suffix('\n')
        .ok_or_else(|| bad("the body does not end with a newline"))?
        .split('\n');
    let origin = lines.next().unwrap_or_default();
    validate_origin(origin).map_err(|_| bad("the origin line is empty or has spaces"))?;
    let size_line = lines
        .next()
        .ok_or_else(|| bad("the size line is missing"))?;
    let canonical = size_line.bytes().all(|b| b.is_ascii_digit())
        && !size_line.is_empty()
        && (size_line == "0" || !size_line.starts_with('0'));
    if !canonical {
        return Err(bad("the size line is not a decimal number"));
    }
    let size: u64 = size_line
        .parse()
        .map_err(|_| bad("the size does not fit in 64 bits"))?;
    let root_line = lines
        .next()
        .ok_or_else(|| bad("the root hash line is missing"))?;
    let root_vec = B64
        .decode(root_line)
        .map_err(|_| bad("the root hash is not standard base64"))?;
    let root: Hash = root_vec
        .try_into()
        .map_err(|_| bad("the root hash is not 32 bytes"))?;
    if lines.any(str::is_empty) {
        return Err(bad("an extension line is empty"));
    }
    Ok(Checkpoint {
        origin: origin.to_owned(),
        size,
        root,
    })
}

/// Verifies the note's signature by (`key_name`, `key`) and parses its checkpoint.
pub fn open_checkpoint(
    note: &str,
    key: &VerifyingKey,
    key_name: &str,
) -> Result<Checkpoint, NoteError> {
    let body = verify_note(note, key, key_name)?;
    parse_checkpoint_note(body)
}
