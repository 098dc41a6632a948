//! Self-contained proof documents (JSON) that a security officer can check with only the
//! agent's public key: an inclusion proof shows that one entry is in a signed checkpoint; a
//! consistency proof shows that an older signed checkpoint is a prefix of a newer one (the log
//! was only appended to in between).

use std::path::Path;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::entry::Entry;
use crate::error::{Error, LogVerifyError, Result};
use crate::merkle::{
    Hash, consistency_proof, inclusion_proof, leaf_hash, verify_consistency, verify_inclusion,
};
use crate::note::{Checkpoint, open_checkpoint};
use crate::store::{CheckedCheckpoint, full_check};

/// Proof that one entry is in the tree of a signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProofDoc {
    /// The entry's index.
    pub index: u64,
    /// The checkpoint's tree size.
    pub size: u64,
    /// The entry line exactly as stored (without newline): the Merkle leaf.
    pub leaf: String,
    /// The audit path, hex SHA-256 hashes, leaf level first (RFC 9162 §2.1.3).
    pub proof: Vec<String>,
    /// The signed checkpoint note.
    pub checkpoint: String,
}

/// Proof that the tree of an older checkpoint is a prefix of the tree of a newer one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProofDoc {
    /// The older checkpoint's size.
    pub old_size: u64,
    /// The newer checkpoint's size.
    pub new_size: u64,
    /// The consistency path, hex SHA-256 hashes (RFC 9162 §2.1.4).
    pub proof: Vec<String>,
    /// The older signed checkpoint note.
    pub old_checkpoint: String,
    /// The newer signed checkpoint note.
    pub new_checkpoint: String,
}

/// What a verified inclusion proof established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedInclusion {
    /// The entry, parsed from the proven leaf.
    pub entry: Entry,
    /// The signed checkpoint that includes it.
    pub checkpoint: Checkpoint,
}

/// Reads the log, checking it (chain and checkpoint roots; signatures are left to the
/// verifier of the proof) and returns the checkpoints and the leaf hashes of the first `keep`
/// entries, plus the line of entry `want_line` if given.
fn load(
    dir: &Path,
    keep: impl Fn(&[CheckedCheckpoint]) -> Result<u64>,
    want_line: Option<u64>,
) -> Result<(Vec<CheckedCheckpoint>, Vec<Hash>, Option<String>)> {
    // Read the checkpoints first to know how many leaf hashes to keep.
    let (records, _) = crate::store::read_checkpoint_records(dir)?;
    let checkpoints = crate::store::check_checkpoint_notes(records, None, None)?;
    let keep = keep(&checkpoints)?;
    let mut leaves = Vec::new();
    let mut line = None;
    let check = full_check(dir, None, None, |bytes, entry, leaf| {
        if entry.index < keep {
            leaves.push(leaf);
        }
        if Some(entry.index) == want_line {
            line = Some(String::from_utf8_lossy(bytes).into_owned());
        }
    })?;
    Ok((check.checkpoints, leaves, line))
}

fn find_size(checkpoints: &[CheckedCheckpoint], size: u64) -> Result<&CheckedCheckpoint> {
    checkpoints
        .iter()
        .rev()
        .find(|c| c.checkpoint.size == size)
        .ok_or_else(|| Error::NoCheckpoint {
            reason: format!(
                "no checkpoint of size {size}; existing checkpoint sizes: {}",
                list_sizes(checkpoints)
            ),
        })
}

fn list_sizes(checkpoints: &[CheckedCheckpoint]) -> String {
    if checkpoints.is_empty() {
        return "none (the agent writes one every checkpoint_every entries and on close)".into();
    }
    let sizes: Vec<String> = checkpoints
        .iter()
        .map(|c| c.checkpoint.size.to_string())
        .collect();
    sizes.join(", ")
}

/// Builds an inclusion proof of entry `index` against the checkpoint of size
/// `checkpoint_size`, or by default against the latest checkpoint (which must cover the entry).
pub fn prove_inclusion(
    dir: impl AsRef<Path>,
    index: u64,
    checkpoint_size: Option<u64>,
) -> Result<InclusionProofDoc> {
    let dir = dir.as_ref();
    let choose = |cps: &[CheckedCheckpoint]| -> Result<u64> {
        let size = match checkpoint_size {
            Some(s) => find_size(cps, s)?.checkpoint.size,
            None => cps.last().map_or(0, |c| c.checkpoint.size),
        };
        if index >= size {
            return Err(Error::NoCheckpoint {
                reason: format!(
                    "entry {index} is not covered by {}; checkpoint sizes: {}. Wait for the next \
                     checkpoint (or have the agent write one) and try again",
                    checkpoint_size.map_or("any checkpoint yet".to_owned(), |s| format!(
                        "the checkpoint of size {s}"
                    )),
                    list_sizes(cps)
                ),
            });
        }
        Ok(size)
    };
    let (checkpoints, leaves, line) = load(dir, choose, Some(index))?;
    let size = choose(&checkpoints)?;
    let cp = find_size(&checkpoints, size)?;
    let leaf = line.ok_or(Error::Verify(LogVerifyError::CheckpointBeyondLog {
        line: cp.line,
        size,
        entries: leaves.len() as u64,
    }))?;
    let proof = inclusion_proof(&leaves, index)?;
    Ok(InclusionProofDoc {
        index,
        size,
        leaf,
        proof: proof.iter().map(hex::encode).collect(),
        checkpoint: cp.record.note.clone(),
    })
}

fn decode_hashes(hexes: &[String]) -> Result<Vec<Hash>> {
    hexes
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let mut out = [0u8; 32];
            hex::decode_to_slice(h, &mut out).map_err(|_| Error::ProofDoc {
                reason: format!("proof hash {i} is not 64 hex digits"),
            })?;
            Ok(out)
        })
        .collect()
}

/// Verifies an inclusion proof document from the document alone: the checkpoint note is
/// signed by (`key_name`, `key`), its size is the document's, the leaf is an entry with the
/// document's index, and the leaf hashes into the checkpoint's root along the proof.
pub fn verify_inclusion_proof(
    doc: &InclusionProofDoc,
    key: &VerifyingKey,
    key_name: &str,
) -> Result<VerifiedInclusion> {
    let checkpoint = open_checkpoint(&doc.checkpoint, key, key_name)?;
    if checkpoint.size != doc.size {
        return Err(Error::ProofDoc {
            reason: format!(
                "the document says size {} but its signed checkpoint covers {}",
                doc.size, checkpoint.size
            ),
        });
    }
    if doc.leaf.contains('\n') {
        return Err(Error::ProofDoc {
            reason: "the leaf contains a newline; it must be one entry line".into(),
        });
    }
    let entry: Entry = serde_json::from_str(&doc.leaf).map_err(|e| Error::ProofDoc {
        reason: format!("the leaf is not a ferry log entry ({e})"),
    })?;
    if entry.index != doc.index {
        return Err(Error::ProofDoc {
            reason: format!(
                "the leaf is entry {} but the document claims index {}",
                entry.index, doc.index
            ),
        });
    }
    let proof = decode_hashes(&doc.proof)?;
    verify_inclusion(
        &leaf_hash(doc.leaf.as_bytes()),
        doc.index,
        checkpoint.size,
        &proof,
        &checkpoint.root,
    )?;
    Ok(VerifiedInclusion { entry, checkpoint })
}

/// Builds a consistency proof between the checkpoints of sizes `old_size` and `new_size`.
pub fn prove_consistency(
    dir: impl AsRef<Path>,
    old_size: u64,
    new_size: u64,
) -> Result<ConsistencyProofDoc> {
    if old_size > new_size {
        return Err(crate::merkle::ProofError::SizeOrder {
            old: old_size,
            new: new_size,
        }
        .into());
    }
    let dir = dir.as_ref();
    let choose = |cps: &[CheckedCheckpoint]| -> Result<u64> {
        find_size(cps, old_size)?;
        Ok(find_size(cps, new_size)?.checkpoint.size)
    };
    let (checkpoints, leaves, _) = load(dir, choose, None)?;
    let old = find_size(&checkpoints, old_size)?;
    let new = find_size(&checkpoints, new_size)?;
    let proof = consistency_proof(&leaves, old_size)?;
    Ok(ConsistencyProofDoc {
        old_size,
        new_size,
        proof: proof.iter().map(hex::encode).collect(),
        old_checkpoint: old.record.note.clone(),
        new_checkpoint: new.record.note.clone(),
    })
}

/// Verifies a consistency proof document from the document alone: both notes are signed by
/// (`key_name`, `key`), are for the same origin and the document's sizes, and the proof shows
/// the old tree is a prefix of the new one. Returns (old, new) checkpoints.
pub fn verify_consistency_proof(
    doc: &ConsistencyProofDoc,
    key: &VerifyingKey,
    key_name: &str,
) -> Result<(Checkpoint, Checkpoint)> {
    let old = open_checkpoint(&doc.old_checkpoint, key, key_name)?;
    let new = open_checkpoint(&doc.new_checkpoint, key, key_name)?;
    if old.size != doc.old_size || new.size != doc.new_size {
        return Err(Error::ProofDoc {
            reason: format!(
                "the document says sizes {} -> {} but its signed checkpoints cover {} -> {}",
                doc.old_size, doc.new_size, old.size, new.size
            ),
        });
    }
    if old.origin != new.origin {
        return Err(Error::ProofDoc {
            reason: format!(
                "the checkpoints are of different logs ({:?} and {:?})",
                old.origin, new.origin
            ),
        });
    }
    let proof = decode_hashes(&doc.proof)?;
    verify_consistency(old.size, new.size, &old.root, &new.root, &proof)?;
    Ok((old, new))
}
