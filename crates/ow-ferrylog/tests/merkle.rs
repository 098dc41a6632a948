//! Merkle tree tests: published RFC 6962 vectors and exhaustive proof checks for small trees.

#![allow(clippy::unwrap_used)] // tests may unwrap

use ow_ferrylog::merkle::{
    Frontier, Hash, ProofError, consistency_proof, empty_root, inclusion_proof, leaf_hash,
    node_hash, root_from_leaf_hashes, verify_consistency, verify_inclusion,
};

fn h(s: &str) -> Hash {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).unwrap();
    out
}

fn hs(v: &[&str]) -> Vec<Hash> {
    v.iter().map(|s| h(s)).collect()
}

// The RFC 6962 test data used by the Certificate Transparency reference implementations.
// Source: github.com/transparency-dev/merkle, `testonly/constants.go` (LeafInputs,
// RootHashes) and `proof/verify_test.go` (inclusionProofs, consistencyProofs; their leaf
// numbers are 1-based, converted to 0-based indexes below). The same data appears in the
// original google/certificate-transparency C++ `merkle_tree_test.cc`.
const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn vector_leaf_hashes() -> Vec<Hash> {
    LEAVES
        .iter()
        .map(|l| leaf_hash(&hex::decode(l).unwrap()))
        .collect()
}

/// (0-based index, tree size, audit path)
fn inclusion_vectors() -> Vec<(u64, u64, Vec<Hash>)> {
    vec![
        (0, 1, vec![]),
        (
            0,
            8,
            hs(&[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ]),
        ),
        (
            5,
            8,
            hs(&[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ]),
        ),
        (
            2,
            3,
            hs(&["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
        ),
        (
            1,
            5,
            hs(&[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ]),
        ),
    ]
}

/// (old size, new size, consistency path)
fn consistency_vectors() -> Vec<(u64, u64, Vec<Hash>)> {
    vec![
        (1, 1, vec![]),
        (
            1,
            8,
            hs(&[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ]),
        ),
        (
            6,
            8,
            hs(&[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ]),
        ),
        (
            2,
            5,
            hs(&[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ]),
        ),
        (
            6,
            7,
            hs(&[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ]),
        ),
    ]
}

#[test]
fn empty_tree_root_is_sha256_of_nothing() {
    assert_eq!(
        hex::encode(empty_root()),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(Frontier::new().root(), empty_root());
    assert_eq!(root_from_leaf_hashes(&[]), empty_root());
}

#[test]
fn rfc6962_roots_for_sizes_1_to_8() {
    let leaves = vector_leaf_hashes();
    let mut frontier = Frontier::new();
    for (i, leaf) in leaves.iter().enumerate() {
        frontier.push(*leaf);
        assert_eq!(
            hex::encode(frontier.root()),
            ROOTS[i],
            "frontier root, size {}",
            i + 1
        );
        assert_eq!(
            hex::encode(root_from_leaf_hashes(&leaves[..=i])),
            ROOTS[i],
            "root from leaves, size {}",
            i + 1
        );
    }
    // Size 8 is a perfect tree: the frontier collapses to the single root.
    assert_eq!(frontier.nodes().len(), 1);
}

#[test]
fn rfc6962_inclusion_proofs_generate_and_verify() {
    let leaves = vector_leaf_hashes();
    for (index, size, expected) in inclusion_vectors() {
        let got = inclusion_proof(&leaves[..size as usize], index).unwrap();
        assert_eq!(got, expected, "proof for index {index} in size {size}");
        let root = h(ROOTS[size as usize - 1]);
        verify_inclusion(&leaves[index as usize], index, size, &expected, &root).unwrap();
        // A different leaf does not verify.
        let other = leaf_hash(b"WrongLeaf");
        assert_eq!(
            verify_inclusion(&other, index, size, &expected, &root),
            Err(ProofError::RootMismatch)
        );
    }
}

#[test]
fn rfc6962_consistency_proofs_generate_and_verify() {
    let leaves = vector_leaf_hashes();
    for (old, new, expected) in consistency_vectors() {
        let got = consistency_proof(&leaves[..new as usize], old).unwrap();
        assert_eq!(got, expected, "consistency proof {old} -> {new}");
        let old_root = h(ROOTS[old as usize - 1]);
        let new_root = h(ROOTS[new as usize - 1]);
        verify_consistency(old, new, &old_root, &new_root, &expected).unwrap();
        if !expected.is_empty() {
            // Swapped roots fail.
            assert!(verify_consistency(old, new, &new_root, &old_root, &expected).is_err());
        }
    }
}

#[test]
fn edge_cases_of_the_verifiers() {
    let leaves = vector_leaf_hashes();
    let root1 = h(ROOTS[0]);
    // Index out of range, including the empty tree.
    assert!(matches!(
        verify_inclusion(&leaves[0], 0, 0, &[], &empty_root()),
        Err(ProofError::IndexOutOfRange { .. })
    ));
    assert!(matches!(
        verify_inclusion(&leaves[0], 1, 1, &[], &root1),
        Err(ProofError::IndexOutOfRange { .. })
    ));
    assert!(inclusion_proof(&leaves, 8).is_err());
    // Single leaf: the root is the leaf hash and the proof is empty.
    verify_inclusion(&leaves[0], 0, 1, &[], &root1).unwrap();
    assert!(verify_inclusion(&leaves[0], 0, 1, &[root1], &root1).is_err());
    // Consistency: old size 0 is consistent with anything, with an empty proof only.
    verify_consistency(0, 8, &empty_root(), &h(ROOTS[7]), &[]).unwrap();
    assert!(verify_consistency(0, 8, &empty_root(), &h(ROOTS[7]), &[root1]).is_err());
    // Equal sizes need equal roots and an empty proof.
    verify_consistency(3, 3, &h(ROOTS[2]), &h(ROOTS[2]), &[]).unwrap();
    assert!(verify_consistency(3, 3, &h(ROOTS[2]), &h(ROOTS[3]), &[]).is_err());
    // Going backwards is refused.
    assert!(matches!(
        verify_consistency(4, 3, &h(ROOTS[3]), &h(ROOTS[2]), &[]),
        Err(ProofError::SizeOrder { .. })
    ));
    assert!(consistency_proof(&leaves[..3], 4).is_err());
    // An empty proof between different sizes fails.
    assert!(verify_consistency(1, 2, &root1, &h(ROOTS[1]), &[]).is_err());
}

/// An independent, naive MTH straight from the RFC's recursive definition.
fn reference_mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            node_hash(&reference_mth(&leaves[..k]), &reference_mth(&leaves[k..]))
        }
    }
}

fn flip(proof: &[Hash], i: usize) -> Vec<Hash> {
    let mut p = proof.to_vec();
    p[i][0] ^= 0x08;
    p
}

const MAX_SIZE: usize = 70;

fn test_leaves() -> Vec<Hash> {
    (0..MAX_SIZE as u64)
        .map(|i| leaf_hash(format!("leaf-{i}").as_bytes()))
        .collect()
}

#[test]
fn frontier_matches_reference_for_every_size() {
    let leaves = test_leaves();
    let mut f = Frontier::new();
    for n in 1..=MAX_SIZE {
        f.push(leaves[n - 1]);
        assert_eq!(f.root(), reference_mth(&leaves[..n]), "size {n}");
        assert_eq!(
            f.nodes().len(),
            n.count_ones() as usize,
            "frontier length, size {n}"
        );
    }
}

#[test]
fn every_inclusion_proof_verifies_and_tampering_fails() {
    let leaves = test_leaves();
    let roots: Vec<Hash> = (0..=MAX_SIZE)
        .map(|n| reference_mth(&leaves[..n]))
        .collect();
    let junk = leaf_hash(b"junk");
    for n in 1..=MAX_SIZE {
        let size = n as u64;
        let root = roots[n];
        for i in 0..n {
            let index = i as u64;
            let leaf = leaves[i];
            let proof = inclusion_proof(&leaves[..n], index).unwrap();
            verify_inclusion(&leaf, index, size, &proof, &root)
                .unwrap_or_else(|e| panic!("index {i} size {n}: {e}"));
            let fails = |l: &Hash, idx: u64, sz: u64, p: &[Hash], r: &Hash, what: &str| {
                assert!(
                    verify_inclusion(l, idx, sz, p, r).is_err(),
                    "tampered ({what}) proof verified: index {i} size {n}"
                );
            };
            fails(&junk, index, size, &proof, &root, "leaf");
            fails(&leaf, index, size, &proof, &junk, "root");
            for k in 0..proof.len() {
                fails(&leaf, index, size, &flip(&proof, k), &root, "flipped hash");
            }
            if !proof.is_empty() {
                fails(
                    &leaf,
                    index,
                    size,
                    &proof[..proof.len() - 1],
                    &root,
                    "truncated",
                );
                let mut reordered = proof.clone();
                reordered.reverse();
                if reordered != proof {
                    fails(&leaf, index, size, &reordered, &root, "reordered");
                }
            }
            let mut longer = proof.clone();
            longer.push(junk);
            fails(&leaf, index, size, &longer, &root, "extended");
            for other in [index.wrapping_sub(1), index + 1, index ^ 2] {
                if other < size && other != index {
                    fails(&leaf, other, size, &proof, &root, "index");
                }
            }
            for other in [size - 1, size + 1, size * 2] {
                if other > index && other != size && (other as usize) <= MAX_SIZE {
                    fails(&leaf, index, other, &proof, &roots[other as usize], "size");
                }
            }
        }
    }
}

#[test]
fn every_consistency_proof_verifies_and_tampering_fails() {
    let leaves = test_leaves();
    let roots: Vec<Hash> = (0..=MAX_SIZE)
        .map(|n| reference_mth(&leaves[..n]))
        .collect();
    let junk = leaf_hash(b"junk");
    for n in 1..=MAX_SIZE {
        let new = n as u64;
        for m in 0..=n {
            let old = m as u64;
            let proof = consistency_proof(&leaves[..n], old).unwrap();
            verify_consistency(old, new, &roots[m], &roots[n], &proof)
                .unwrap_or_else(|e| panic!("{m} -> {n}: {e}"));
            if m == 0 || m == n {
                assert!(proof.is_empty());
                continue;
            }
            let fails = |o: u64, nw: u64, ro: &Hash, rn: &Hash, p: &[Hash], what: &str| {
                assert!(
                    verify_consistency(o, nw, ro, rn, p).is_err(),
                    "tampered ({what}) consistency proof verified: {m} -> {n}"
                );
            };
            fails(old, new, &junk, &roots[n], &proof, "old root");
            fails(old, new, &roots[m], &junk, &proof, "new root");
            fails(old, new, &roots[n], &roots[m], &proof, "swapped roots");
            fails(old, new, &roots[m], &roots[n], &[], "empty proof");
            for k in 0..proof.len() {
                fails(
                    old,
                    new,
                    &roots[m],
                    &roots[n],
                    &flip(&proof, k),
                    "flipped hash",
                );
            }
            fails(
                old,
                new,
                &roots[m],
                &roots[n],
                &proof[..proof.len() - 1],
                "truncated",
            );
            let mut longer = proof.clone();
            longer.push(junk);
            fails(old, new, &roots[m], &roots[n], &longer, "extended");
            let mut preceded = vec![roots[m]];
            preceded.extend_from_slice(&proof);
            fails(old, new, &roots[m], &roots[n], &preceded, "preceding root");
            for other in [m - 1, m + 1] {
                if other >= 1 && other < n {
                    let o = other as u64;
                    fails(o, new, &roots[other], &roots[n], &proof, "old size");
                }
            }
            if n < MAX_SIZE {
                fails(old, new + 1, &roots[m], &roots[n + 1], &proof, "new size");
            }
        }
    }
}
