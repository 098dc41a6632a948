//! Merkle tree math in the style of RFC 9162 §2.1 (RFC 6962 §2.1): SHA-256, leaf hash
//! `H(0x00 || leaf)`, node hash `H(0x01 || left || right)`, and the hash of the empty tree
//! `H("")`.
//!
//! This module provides:
//! - [`Frontier`]: the compact "frontier" of an append-only tree (the roots of its perfect
//!   subtrees, `O(log n)` hashes), which is all a long-running appender keeps in memory;
//! - [`inclusion_proof`] / [`consistency_proof`]: proof generation (RFC 9162 §2.1.3.1 and
//!   §2.1.4.1) from the list of leaf hashes;
//! - [`verify_inclusion`] / [`verify_consistency`]: the verifiers of RFC 9162 §2.1.3.2 and
//!   §2.1.4.2, which need nothing but the proof, the sizes and the root hash(es).
//!
//! # Why this is written here rather than taken from `ct-merkle`
//!
//! `ct-merkle` 0.3 was evaluated first. It does implement RFC 6962 hashing over any `Digest`
//! (SHA-256 included), inclusion and consistency proofs, and verification against a bare
//! root (`RootHash::new(digest, size)`). It does not fit this crate because:
//! 1. its only tree, `MemoryBackedTree`, keeps every leaf value *and* every node hash in memory
//!    (`2n - 1` hashes): a ferry agent appends for months, and we want an `O(log n)` frontier
//!    for the running root, which the crate does not offer;
//! 2. for trees that are not in memory it only returns array-tree node *indices*
//!    (`indices_for_inclusion_proof`); computing those interior hashes from the leaf hashes on
//!    disk is the same subtree-hash code as below, so the crate would save only the two
//!    verifiers (~60 lines, checked below against the published RFC 6962 vectors);
//! 3. it is built on `digest` 0.11 / `sha2` 0.11, while the workspace pins `sha2` 0.10, so it
//!    would bring a second SHA-2 crate into the root dependency table.

use sha2::{Digest, Sha256};

/// A SHA-256 hash: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// Errors from verifying (or asking for) an inclusion or consistency proof.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error(
        "leaf index {index} is outside a tree of {size} entries; ask for a proof against a \
         checkpoint whose size is larger than the index"
    )]
    IndexOutOfRange {
        /// The requested leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The "old" tree of a consistency proof is larger than the "new" one.
    #[error(
        "the old tree size {old} is larger than the new tree size {new}; a consistency proof \
         goes from a smaller (older) checkpoint to a larger (newer) one"
    )]
    SizeOrder {
        /// The old tree size.
        old: u64,
        /// The new tree size.
        new: u64,
    },
    /// The proof has too few or too many hashes for the index and tree size(s).
    #[error(
        "the proof has the wrong number of hashes ({got}) for this index and tree size; it was \
         truncated, padded or made for another tree"
    )]
    WrongLength {
        /// How many hashes the proof had.
        got: usize,
    },
    /// The proof, applied to the leaf, does not produce the expected root.
    #[error(
        "the proof does not lead to the checkpoint's root: the leaf, the proof or the \
         checkpoint was changed"
    )]
    RootMismatch,
    /// The consistency proof does not reproduce the old root.
    #[error(
        "the consistency proof does not reproduce the old checkpoint's root: the proof or the \
         old checkpoint was changed, or the log was rewritten"
    )]
    OldRootMismatch,
    /// The consistency proof does not reproduce the new root.
    #[error(
        "the consistency proof does not reproduce the new checkpoint's root: the proof or the \
         new checkpoint was changed, or the log was rewritten"
    )]
    NewRootMismatch,
}

/// `H(0x00 || leaf)`: the hash of one leaf (for the ferry log, one stored entry line).
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(leaf);
    h.finalize().into()
}

/// `H(0x01 || left || right)`: the hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// `H("")`: the Merkle tree hash of the empty tree.
pub fn empty_root() -> Hash {
    Sha256::digest(b"").into()
}

/// The compact frontier of an append-only Merkle tree.
///
/// For a tree of `n` leaves it holds one hash per set bit of `n`: the roots of the perfect
/// subtrees that make up the tree, largest (leftmost) first. Appending is amortised `O(1)`
/// hashing; the root costs `O(log n)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The roots of the perfect subtrees, largest first.
    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// Appends one leaf, given its leaf hash (see [`leaf_hash`]).
    pub fn push(&mut self, leaf_hash: Hash) {
        let mut hash = leaf_hash;
        let mut s = self.size;
        // Every trailing one bit of the old size is a perfect subtree of the same height as
        // `hash` that now becomes complete together with it.
        while s & 1 == 1 {
            match self.nodes.pop() {
                Some(left) => hash = node_hash(&left, &hash),
                None => break, // unreachable: one node per set bit
            }
            s >>= 1;
        }
        self.nodes.push(hash);
        self.size += 1;
    }

    /// The Merkle tree hash (root) of the leaves appended so far.
    pub fn root(&self) -> Hash {
        let mut iter = self.nodes.iter().rev();
        match iter.next() {
            None => empty_root(),
            Some(last) => iter.fold(*last, |right, left| node_hash(left, &right)),
        }
    }
}

/// The Merkle tree hash (MTH) of a list of leaf hashes.
pub fn root_from_leaf_hashes(leaves: &[Hash]) -> Hash {
    let mut f = Frontier::new();
    for l in leaves {
        f.push(*l);
    }
    f.root()
}

/// The largest power of two strictly smaller than `n` (`n >= 2`).
fn split_point(n: usize) -> usize {
    debug_assert!(n >= 2);
    1usize << (n - 1).ilog2()
}

/// Builds the inclusion proof (audit path, RFC 9162 §2.1.3.1) of leaf `index` in the tree made
/// of exactly `leaves`.
pub fn inclusion_proof(leaves: &[Hash], index: u64) -> Result<Vec<Hash>, ProofError> {
    let size = leaves.len() as u64;
    let out_of_range = ProofError::IndexOutOfRange { index, size };
    let m = usize::try_from(index).map_err(|_| out_of_range.clone())?;
    if m >= leaves.len() {
        return Err(out_of_range);
    }
    let mut out = Vec::new();
    path(m, leaves, &mut out);
    Ok(out)
}

/// `PATH(m, D[n])` of RFC 9162 §2.1.3.1; hashes are pushed leaf level first.
fn path(m: usize, leaves: &[Hash], out: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split_point(n);
    if m < k {
        path(m, &leaves[..k], out);
        out.push(root_from_leaf_hashes(&leaves[k..]));
    } else {
        path(m - k, &leaves[k..], out);
        out.push(root_from_leaf_hashes(&leaves[..k]));
    }
}

/// Builds the consistency proof (RFC 9162 §2.1.4.1) between the tree of the first `old_size`
/// leaves and the tree made of exactly `leaves`. The proof is empty when `old_size` is 0 or
/// equal to the new size.
pub fn consistency_proof(leaves: &[Hash], old_size: u64) -> Result<Vec<Hash>, ProofError> {
    let new = leaves.len() as u64;
    if old_size > new {
        return Err(ProofError::SizeOrder { old: old_size, new });
    }
    let mut out = Vec::new();
    // `old_size <= leaves.len()`, so it fits in usize.
    let m = usize::try_from(old_size).map_err(|_| ProofError::SizeOrder { old: old_size, new })?;
    if m > 0 {
        subproof(m, leaves, true, &mut out);
    }
    Ok(out)
}

/// `SUBPROOF(m, D[n], b)` of RFC 9162 §2.1.4.1.
fn subproof(m: usize, leaves: &[Hash], complete: bool, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !complete {
            out.push(root_from_leaf_hashes(leaves));
        }
        return;
    }
    let k = split_point(n);
    if m <= k {
        subproof(m, &leaves[..k], complete, out);
        out.push(root_from_leaf_hashes(&leaves[k..]));
    } else {
        subproof(m - k, &leaves[k..], false, out);
        out.push(root_from_leaf_hashes(&leaves[..k]));
    }
}

/// Computes the root that an inclusion proof leads to (RFC 9162 §2.1.3.2, without the final
/// comparison).
pub fn root_from_inclusion_proof(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let wrong_length = ProofError::WrongLength { got: proof.len() };
    let mut fn_ = index;
    let mut sn = size - 1;
    let mut r = *leaf_hash;
    for p in proof {
        if sn == 0 {
            return Err(wrong_length);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(wrong_length);
    }
    Ok(r)
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2): that the leaf with hash `leaf_hash` is at
/// `index` in the tree of `size` leaves whose root is `root`.
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let computed = root_from_inclusion_proof(leaf_hash, index, size, proof)?;
    if &computed == root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// Verifies a consistency proof (RFC 9162 §2.1.4.2): that the tree of `old_size` leaves with
/// root `old_root` is a prefix of the tree of `new_size` leaves with root `new_root`.
///
/// An `old_size` of 0 is consistent with everything and needs an empty proof; equal sizes need
/// an empty proof and equal roots.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizeOrder {
            old: old_size,
            new: new_size,
        });
    }
    let wrong_length = ProofError::WrongLength { got: proof.len() };
    if old_size == 0 || old_size == new_size {
        if !proof.is_empty() {
            return Err(wrong_length);
        }
        if old_size == new_size && old_root != new_root {
            return Err(ProofError::NewRootMismatch);
        }
        return Ok(());
    }
    if proof.is_empty() {
        return Err(wrong_length);
    }
    // If the old size is a power of two, the old root itself is the first node of the path.
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);

    let mut fn_ = old_size - 1;
    let mut sn = new_size - 1;
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (first, rest) = path.split_first().ok_or(wrong_length.clone())?;
    let mut fr = *first;
    let mut sr = *first;
    for c in rest {
        if sn == 0 {
            return Err(wrong_length);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(wrong_length);
    }
    if &fr != old_root {
        return Err(ProofError::OldRootMismatch);
    }
    if &sr != new_root {
        return Err(ProofError::NewRootMismatch);
    }
    Ok(())
}
