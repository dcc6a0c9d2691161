//! RFC 9162 §2.1 Merkle tree vectors for `signet_core::merkle`.
//!
//! Roots and proofs are checked against a deliberately simple recursive reference written here
//! straight from the RFC's definitions (it uses only `sha2` and `leaf_hash`), against published
//! Certificate Transparency vectors, and against tampering.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sha2::{Digest as _, Sha256};
use signet_core::merkle::{
    Hash, LeafSource, MerkleError, Tree, consistency_proof, empty_root, inclusion_proof, leaf_hash,
    root, subtree_root, verify_consistency, verify_inclusion,
};

// ---- the reference: RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1, literally ----

fn ref_node(l: &Hash, r: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(l);
    h.update(r);
    h.finalize().into()
}

/// Largest power of two strictly smaller than `n` (n >= 2), by counting up.
fn ref_k(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

fn ref_mth(d: &[Hash]) -> Hash {
    match d {
        [] => Sha256::digest(b"").into(),
        [one] => *one,
        _ => {
            let k = ref_k(d.len());
            ref_node(&ref_mth(&d[..k]), &ref_mth(&d[k..]))
        }
    }
}

fn ref_path(m: usize, d: &[Hash]) -> Vec<Hash> {
    if d.len() <= 1 {
        return vec![];
    }
    let k = ref_k(d.len());
    if m < k {
        let mut p = ref_path(m, &d[..k]);
        p.push(ref_mth(&d[k..]));
        p
    } else {
        let mut p = ref_path(m - k, &d[k..]);
        p.push(ref_mth(&d[..k]));
        p
    }
}

fn ref_subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    if m == d.len() {
        return if b { vec![] } else { vec![ref_mth(d)] };
    }
    let k = ref_k(d.len());
    if m <= k {
        let mut p = ref_subproof(m, &d[..k], b);
        p.push(ref_mth(&d[k..]));
        p
    } else {
        let mut p = ref_subproof(m - k, &d[k..], false);
        p.push(ref_mth(&d[..k]));
        p
    }
}

fn ref_proof(m: usize, d: &[Hash]) -> Vec<Hash> {
    ref_subproof(m, d, true)
}

// ---- helpers ----

fn leaves(n: usize) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(format!("entry {i}").as_bytes()))
        .collect()
}

fn flip(proof: &[Hash], i: usize) -> Vec<Hash> {
    let mut p = proof.to_vec();
    p[i][i % 32] ^= 0x10;
    p
}

fn h(s: &str) -> Hash {
    let v = hex::decode(s).unwrap();
    v.try_into().unwrap()
}

/// Indices worth checking in a large tree: both ends, around powers of two, and a stride.
fn sample(n: usize) -> Vec<usize> {
    let mut v: Vec<usize> = vec![0, 1, n / 2, n.saturating_sub(2), n - 1];
    let mut p = 1;
    while p < n {
        v.extend([p - 1, p, p + 1]);
        p *= 2;
    }
    v.extend((0..n).step_by(37));
    v.retain(|&i| i < n);
    v.sort_unstable();
    v.dedup();
    v
}

fn check_inclusion(all: &[Hash], n: usize, i: usize, roots: &[Hash]) {
    let tree = &all[..n];
    let r = roots[n];
    let (iu, nu) = (i as u64, n as u64);
    let proof = inclusion_proof(tree, iu, nu).unwrap();
    assert_eq!(proof, ref_path(i, tree), "PATH({i}, D[{n}])");
    // Generation from a larger source must not look past the tree size.
    assert_eq!(inclusion_proof(all, iu, nu).unwrap(), proof);
    verify_inclusion(&tree[i], iu, nu, &proof, &r)
        .unwrap_or_else(|e| panic!("inclusion {i} of {n}: {e}"));

    // A flipped byte anywhere in the proof.
    for j in 0..proof.len() {
        assert!(verify_inclusion(&tree[i], iu, nu, &flip(&proof, j), &r).is_err());
    }
    // The wrong leaf, and the wrong index.
    let other = leaf_hash(b"not in the tree");
    assert!(verify_inclusion(&other, iu, nu, &proof, &r).is_err());
    for wrong in [i.wrapping_sub(1), i + 1, i ^ 2, i ^ 1] {
        if wrong != i {
            assert!(
                verify_inclusion(&tree[i], wrong as u64, nu, &proof, &r).is_err(),
                "leaf {i} of {n} verified as index {wrong}"
            );
        }
    }
    // The wrong size, with that size's own true root (the claim a forged proof would make).
    for wrong in [n - 1, n + 1, n * 2, n / 2] {
        if wrong != n && wrong < roots.len() {
            assert!(
                verify_inclusion(&tree[i], iu, wrong as u64, &proof, &roots[wrong]).is_err(),
                "leaf {i} of {n} verified in size {wrong}"
            );
        }
    }
    // Truncated, extended, and the root of another size.
    if !proof.is_empty() {
        assert!(verify_inclusion(&tree[i], iu, nu, &proof[1..], &r).is_err());
        assert!(verify_inclusion(&tree[i], iu, nu, &proof[..proof.len() - 1], &r).is_err());
    }
    let mut longer = proof.clone();
    longer.push(r);
    assert!(verify_inclusion(&tree[i], iu, nu, &longer, &r).is_err());
    if n > 1 {
        assert!(verify_inclusion(&tree[i], iu, nu, &proof, &roots[n - 1]).is_err());
    }
}

fn check_consistency(all: &[Hash], m: usize, n: usize, roots: &[Hash]) {
    let (mu, nu) = (m as u64, n as u64);
    let proof = consistency_proof(&all[..n], mu, nu).unwrap();
    assert_eq!(proof, ref_proof(m, &all[..n]), "PROOF({m}, D[{n}])");
    assert_eq!(consistency_proof(all, mu, nu).unwrap(), proof);
    let (r1, r2) = (roots[m], roots[n]);
    verify_consistency(mu, nu, &r1, &r2, &proof)
        .unwrap_or_else(|e| panic!("consistency {m} to {n}: {e}"));
    if m == n {
        assert!(proof.is_empty());
        assert!(verify_consistency(mu, nu, &r1, &roots[n - 1], &proof).is_err());
        assert!(verify_consistency(mu, nu, &r1, &r2, &[r1]).is_err());
        return;
    }

    for j in 0..proof.len() {
        assert!(
            verify_consistency(mu, nu, &r1, &r2, &flip(&proof, j)).is_err(),
            "flipped proof[{j}] verified for {m} to {n}"
        );
    }
    let wrong_root = leaf_hash(b"wrong root");
    assert!(verify_consistency(mu, nu, &wrong_root, &r2, &proof).is_err());
    assert!(verify_consistency(mu, nu, &r1, &wrong_root, &proof).is_err());
    assert!(verify_consistency(mu, nu, &r2, &r1, &proof).is_err());
    assert!(verify_consistency(nu, mu, &r2, &r1, &proof).is_err());
    assert!(verify_consistency(mu, nu, &r1, &r2, &[]).is_err());
    assert!(verify_consistency(mu, nu, &r1, &r2, &proof[1..]).is_err());
    assert!(verify_consistency(mu, nu, &r1, &r2, &proof[..proof.len() - 1]).is_err());
    let mut longer = proof.clone();
    longer.push(r2);
    assert!(verify_consistency(mu, nu, &r1, &r2, &longer).is_err());
    let mut front = vec![proof[0]];
    front.extend_from_slice(&proof);
    assert!(verify_consistency(mu, nu, &r1, &r2, &front).is_err());
    // Wrong sizes, each with its own true root.
    for (a, b) in [
        (m - 1, n),
        (m + 1, n),
        (m ^ 2, n),
        (m, n + 1),
        (m, n - 1),
        (m, n * 2),
    ] {
        if (a, b) != (m, n) && a >= 1 && a <= b && b < roots.len() {
            assert!(
                verify_consistency(a as u64, b as u64, &roots[a], &roots[b], &proof).is_err(),
                "proof {m} to {n} verified as {a} to {b}"
            );
        }
    }
}

// ---- tests ----

#[test]
fn known_answers_by_hand() {
    // MTH({}) = SHA-256("").
    assert_eq!(
        hex::encode(empty_root()),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    // Leaves "" and "a", from the formulas with sha2 directly.
    let l0: Hash = Sha256::digest([0x00]).into();
    let l1: Hash = Sha256::digest([0x00, b'a']).into();
    assert_eq!(leaf_hash(b""), l0);
    assert_eq!(leaf_hash(b"a"), l1);
    let mut both = vec![0x01];
    both.extend_from_slice(&l0);
    both.extend_from_slice(&l1);
    let expected: Hash = Sha256::digest(&both).into();
    assert_eq!(root(&[l0, l1]), expected);
    assert_eq!(inclusion_proof(&[l0, l1][..], 0, 2).unwrap(), vec![l1]);
    assert_eq!(inclusion_proof(&[l0, l1][..], 1, 2).unwrap(), vec![l0]);
    assert_eq!(consistency_proof(&[l0, l1][..], 1, 2).unwrap(), vec![l1]);
}

/// The Certificate Transparency reference leaves, roots and proofs (RFC 6962 test data, as
/// published in transparency-dev/merkle).
#[test]
fn certificate_transparency_vectors() {
    let inputs: Vec<Vec<u8>> = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    .iter()
    .map(|s| hex::decode(s).unwrap())
    .collect();
    let ls: Vec<Hash> = inputs.iter().map(|e| leaf_hash(e)).collect();
    let roots = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
    .map(h);
    let mut tree = Tree::new();
    assert_eq!(tree.root(), roots[0]);
    for n in 1..=8 {
        assert_eq!(root(&ls[..n]), roots[n], "root of size {n}");
        tree.push(ls[n - 1]);
        assert_eq!(tree.root(), roots[n], "incremental root of size {n}");
    }

    // (leaf index, tree size, proof)
    let inclusion: [(u64, u64, &[&str]); 4] = [
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (index, size, proof) in inclusion {
        let proof: Vec<Hash> = proof.iter().map(|s| h(s)).collect();
        assert_eq!(inclusion_proof(&ls, index, size).unwrap(), proof);
        let (i, n) = (index as usize, size as usize);
        verify_inclusion(&ls[i], index, size, &proof, &roots[n]).unwrap();
        // Probes from the transparency-dev suite: these exact variations must all fail.
        for (wi, ws) in [
            (index.wrapping_sub(1), size),
            (index + 1, size),
            (index ^ 2, size),
            (index, size * 2),
            (index, size / 2),
        ] {
            assert!(verify_inclusion(&ls[i], wi, ws, &proof, &roots[n]).is_err());
        }
        assert!(verify_inclusion(&ls[i], index, size, &proof, &roots[0]).is_err());
    }

    // (old size, new size, proof)
    let consistency: [(u64, u64, &[&str]); 5] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            6,
            7,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];
    for (m, n, proof) in consistency {
        let proof: Vec<Hash> = proof.iter().map(|s| h(s)).collect();
        assert_eq!(consistency_proof(&ls, m, n).unwrap(), proof);
        let (r1, r2) = (roots[m as usize], roots[n as usize]);
        verify_consistency(m, n, &r1, &r2, &proof).unwrap();
        if !proof.is_empty() {
            for (a, b) in [(m - 1, n), (m + 1, n), (m ^ 2, n), (m, n * 2), (m, n / 2)] {
                assert!(verify_consistency(a, b, &r1, &r2, &proof).is_err());
            }
        }
    }
}

#[test]
fn roots_and_incremental_tree_match_the_reference_up_to_300() {
    let all = leaves(300);
    let mut tree = Tree::new();
    for n in 1..=300 {
        tree.push(all[n - 1]);
        let expected = ref_mth(&all[..n]);
        assert_eq!(root(&all[..n]), expected, "root of size {n}");
        assert_eq!(tree.root(), expected, "incremental root of size {n}");
        assert_eq!(tree.size(), n as u64);
        assert_eq!(tree.frontier().len(), n.count_ones() as usize);
        assert_eq!(
            subtree_root(&all, 0, n as u64).unwrap(),
            expected,
            "subtree 0..{n}"
        );
    }
    assert_eq!(Tree::from_leaves(&all), tree);
    assert_eq!(Tree::from_source(&all).unwrap(), tree);
    // Unaligned ranges hash like a tree of their own.
    for (s, e) in [(3, 4), (5, 17), (100, 300), (7, 200)] {
        assert_eq!(
            subtree_root(&all, s as u64, e as u64).unwrap(),
            ref_mth(&all[s..e])
        );
    }
}

#[test]
fn every_inclusion_proof_up_to_64_verifies_and_tampering_fails() {
    let all = leaves(300);
    let roots: Vec<Hash> = (0..=300).map(|n| ref_mth(&all[..n])).collect();
    for n in 1..=64 {
        for i in 0..n {
            check_inclusion(&all, n, i, &roots);
        }
    }
}

#[test]
fn sampled_inclusion_proofs_up_to_300() {
    let all = leaves(300);
    let roots: Vec<Hash> = (0..=300).map(|n| ref_mth(&all[..n])).collect();
    for n in (65..=300)
        .step_by(7)
        .chain([127, 128, 129, 255, 256, 257, 299, 300])
    {
        for i in sample(n) {
            check_inclusion(&all, n, i, &roots);
        }
    }
}

#[test]
fn every_consistency_proof_up_to_64_verifies_and_tampering_fails() {
    let all = leaves(300);
    let roots: Vec<Hash> = (0..=300).map(|n| ref_mth(&all[..n])).collect();
    for n in 1..=64 {
        for m in 1..=n {
            check_consistency(&all, m, n, &roots);
        }
    }
}

#[test]
fn sampled_consistency_proofs_up_to_300() {
    let all = leaves(300);
    let roots: Vec<Hash> = (0..=300).map(|n| ref_mth(&all[..n])).collect();
    for n in (65..=300).step_by(11).chain([128, 129, 256, 257, 299, 300]) {
        for m in sample(n).into_iter().filter(|&m| m >= 1).chain([n]) {
            check_consistency(&all, m, n, &roots);
        }
    }
}

#[test]
fn edge_cases_are_errors_not_panics() {
    let all = leaves(10);
    let r = root(&all);
    let l = all[0];

    // Index outside the tree, including the empty tree.
    assert!(matches!(
        verify_inclusion(&l, 10, 10, &[], &r),
        Err(MerkleError::IndexOutOfRange {
            index: 10,
            size: 10
        })
    ));
    assert!(matches!(
        verify_inclusion(&l, 0, 0, &[], &empty_root()),
        Err(MerkleError::IndexOutOfRange { index: 0, size: 0 })
    ));
    assert!(inclusion_proof(&all, 0, 0).is_err());

    // Proof too short or too long is reported as such.
    let proof = inclusion_proof(&all, 3, 10).unwrap();
    assert!(matches!(
        verify_inclusion(&l, 3, 10, &proof[..2], &r),
        Err(MerkleError::ProofLength {
            got: 2,
            expected: 4
        })
    ));
    let mut long = proof.clone();
    long.push(r);
    assert!(matches!(
        verify_inclusion(&all[3], 3, 10, &long, &r),
        Err(MerkleError::ProofLength {
            got: 5,
            expected: 4
        })
    ));
    assert!(matches!(
        verify_inclusion(&l, 3, 10, &proof, &r),
        Err(MerkleError::InclusionMismatch { .. })
    ));

    // Old larger than new.
    assert!(matches!(
        verify_consistency(5, 4, &r, &r, &[]),
        Err(MerkleError::SizesOutOfOrder { old: 5, new: 4 })
    ));
    // Equal sizes: empty proof and equal roots, else a fork or a bad proof.
    assert!(verify_consistency(10, 10, &r, &r, &[]).is_ok());
    assert!(matches!(
        verify_consistency(10, 10, &r, &l, &[]),
        Err(MerkleError::Fork { size: 10, .. })
    ));
    assert!(matches!(
        verify_consistency(10, 10, &r, &r, &[r]),
        Err(MerkleError::ProofLength {
            got: 1,
            expected: 0
        })
    ));
    // From the empty tree: an empty proof, and the old root must be the empty root.
    assert_eq!(consistency_proof(&all, 0, 10).unwrap(), Vec::<Hash>::new());
    assert!(verify_consistency(0, 10, &empty_root(), &r, &[]).is_ok());
    assert!(verify_consistency(0, 0, &empty_root(), &empty_root(), &[]).is_ok());
    assert!(matches!(
        verify_consistency(0, 10, &r, &r, &[]),
        Err(MerkleError::OldRootMismatch { .. })
    ));
    assert!(matches!(
        verify_consistency(0, 10, &empty_root(), &r, &[r]),
        Err(MerkleError::ProofLength { .. })
    ));
    // A non-trivial proof that is empty.
    assert!(matches!(
        verify_consistency(3, 10, &root(&all[..3]), &r, &[]),
        Err(MerkleError::ProofLength { got: 0, .. })
    ));
}

/// A store-backed source: leaves are read one at a time and reads can fail.
struct FlakyStore {
    leaves: Vec<Hash>,
    broken: u64,
}

#[derive(Debug)]
struct ReadFailed;

impl std::fmt::Display for ReadFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("disk on fire")
    }
}

impl std::error::Error for ReadFailed {}

impl LeafSource for FlakyStore {
    fn len(&self) -> u64 {
        self.leaves.len() as u64
    }

    fn leaf(&self, index: u64) -> Result<Hash, MerkleError> {
        if index == self.broken {
            return Err(MerkleError::Leaf {
                index,
                source: Box::new(ReadFailed),
            });
        }
        self.leaves.leaf(index)
    }
}

#[test]
fn a_store_backed_source_propagates_read_errors() {
    let store = FlakyStore {
        leaves: leaves(20),
        broken: 17,
    };
    // Proofs that never read leaf 17 work.
    let p = inclusion_proof(&store, 3, 16).unwrap();
    verify_inclusion(&store.leaves[3], 3, 16, &p, &root(&store.leaves[..16])).unwrap();
    let err = inclusion_proof(&store, 3, 20).unwrap_err();
    assert!(matches!(err, MerkleError::Leaf { index: 17, .. }));
    assert_eq!(
        err.to_string(),
        "leaf `17` could not be read; check the log's leaf store"
    );
    assert!(std::error::Error::source(&err).is_some());
    assert!(consistency_proof(&store, 5, 20).is_err());
    assert!(Tree::from_source(&store).is_err());
}
