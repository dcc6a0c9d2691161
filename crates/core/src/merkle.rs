//! The audit log's Merkle tree: RFC 9162 §2.1 with SHA-256, the hashing Certificate Transparency
//! and every C2SP transparency log use, so any RFC 9162 verifier can check Signet's proofs.
//!
//! - Hashing (§2.1.1): [`leaf_hash`], [`node_hash`], [`empty_root`] and [`root`], the Merkle Tree
//!   Hash `MTH` of a list of leaf hashes.
//! - Proof generation, over any [`LeafSource`] (leaf hashes in memory or in a store):
//!   [`inclusion_proof`] (§2.1.3.1 `PATH`), [`consistency_proof`] (§2.1.4.1 `PROOF`) and
//!   [`subtree_root`], the `MTH` of a range of leaves.
//! - Verification, which clients run offline: [`verify_inclusion`] (§2.1.3.2) and
//!   [`verify_consistency`] (§2.1.4.2). Neither panics on any input.
//! - [`Tree`]: the compact frontier of an append-only tree, so a log writer extends the tree per
//!   batch and reads its root in `O(log n)` without rehashing old leaves.
//!
//! Sizes and indices are `u64` throughout, as in RFC 9162; leaves are numbered from 0.

use std::error::Error as StdError;

use sha2::{Digest as _, Sha256};

/// A SHA-256 hash: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// Domain separation prefix of leaf hashes (RFC 9162 §2.1.1).
const LEAF_PREFIX: u8 = 0x00;
/// Domain separation prefix of interior node hashes (RFC 9162 §2.1.1).
const NODE_PREFIX: u8 = 0x01;

/// Errors of proof generation and verification. Messages follow the project style.
#[derive(Debug, thiserror::Error)]
pub enum MerkleError {
    #[error("index `{index}` is outside a tree of size `{size}`; ask for a proof within the tree")]
    IndexOutOfRange { index: u64, size: u64 },

    #[error(
        "tree size `{size}` is larger than the `{available}` leaves available; ask for a size no larger than the log"
    )]
    SizeExceedsLeaves { size: u64, available: u64 },

    #[error(
        "leaf range `{start}..{end}` is not within the `{available}` leaves available; ask for a range inside the log"
    )]
    RangeOutOfBounds {
        start: u64,
        end: u64,
        available: u64,
    },

    #[error(
        "old tree size `{old}` is larger than new tree size `{new}`; a log only grows, so prove from the smaller size to the larger"
    )]
    SizesOutOfOrder { old: u64, new: u64 },

    #[error(
        "proof has `{got}` hashes where `{expected}` are expected for these sizes; fetch the proof again for exactly these sizes"
    )]
    ProofLength { got: usize, expected: usize },

    #[error(
        "inclusion proof leads to root `{}`, not the expected `{}`; the entry is not in this tree at this index, do not trust it",
        hex::encode(.computed), hex::encode(.expected)
    )]
    InclusionMismatch { expected: Hash, computed: Hash },

    #[error(
        "consistency proof leads to old root `{}`, not the expected `{}`; the old checkpoint is not a prefix of the new tree, keep both as evidence",
        hex::encode(.computed), hex::encode(.expected)
    )]
    OldRootMismatch { expected: Hash, computed: Hash },

    #[error(
        "consistency proof leads to new root `{}`, not the expected `{}`; the new checkpoint does not extend the old one, keep both as evidence",
        hex::encode(.computed), hex::encode(.expected)
    )]
    NewRootMismatch { expected: Hash, computed: Hash },

    #[error(
        "two trees of size `{size}` have different roots `{}` and `{}`; the log has forked, keep both checkpoints as evidence",
        hex::encode(.old), hex::encode(.new)
    )]
    Fork { size: u64, old: Hash, new: Hash },

    #[error(
        "frontier has `{got}` hashes but a tree of size `{size}` needs `{expected}`; load the frontier saved with that size"
    )]
    FrontierLength {
        size: u64,
        got: usize,
        expected: usize,
    },

    #[error(
        "tree size `{size}` is beyond any real log (at most `{}`); the saved frontier is corrupt, rebuild it from the leaves",
        Tree::MAX_SIZE
    )]
    TreeTooLarge { size: u64 },

    #[error("leaf `{index}` could not be read; check the log's leaf store")]
    Leaf {
        index: u64,
        #[source]
        source: Box<dyn StdError + Send + Sync + 'static>,
    },
}

/// The hash of a log entry: `SHA-256(0x00 || entry)` (RFC 9162 §2.1.1).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([LEAF_PREFIX]);
    h.update(entry);
    h.finalize().into()
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)` (RFC 9162 §2.1.1).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([NODE_PREFIX]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: `MTH({}) = SHA-256()` (RFC 9162 §2.1.1).
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The Merkle Tree Hash of `leaves`, which are leaf hashes (RFC 9162 §2.1.1):
///
/// ```text
/// MTH({})    = SHA-256()
/// MTH({d0})  = SHA-256(0x00 || d0)            -- here: leaves[0], already hashed
/// MTH(D[n])  = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))
///              where k is the largest power of two smaller than n
/// ```
///
/// Computed bottom-up with a [`Tree`] frontier, which yields the same hash in `O(n)` time and
/// `O(log n)` memory.
pub fn root(leaves: &[Hash]) -> Hash {
    Tree::from_leaves(leaves).root()
}

/// `k` of RFC 9162 §2.1.1: the largest power of two smaller than `n`, for `n >= 2`. Returns 0
/// for smaller `n`, which callers never pass.
pub(crate) fn split(n: u64) -> u64 {
    n.saturating_sub(1).checked_ilog2().map_or(0, |b| 1 << b)
}

/// Leaf hashes a proof is generated from, in memory or in a store. Leaves are numbered from 0;
/// `leaf(i)` for `i < len()` returns the hash of entry `i` ([`leaf_hash`] of its bytes).
pub trait LeafSource {
    /// How many leaves there are.
    fn len(&self) -> u64;

    /// The hash of leaf `index`. Implementations over a store report read failures as
    /// [`MerkleError::Leaf`].
    fn leaf(&self, index: u64) -> Result<Hash, MerkleError>;

    /// Whether there are no leaves.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// MTH of leaves `start..end` (RFC 9162 §2.1.1). The default reads every leaf of the range;
    /// a source that keeps interior hashes (the audit log's in-memory tree) overrides it, which
    /// makes the proof generators below cost O(log² n).
    fn subtree_root(&self, start: u64, end: u64) -> Result<Hash, MerkleError> {
        subtree_root(self, start, end)
    }
}

impl LeafSource for [Hash] {
    fn len(&self) -> u64 {
        // A slice never holds more than `u64::MAX` elements on supported targets.
        u64::try_from(<[Hash]>::len(self)).unwrap_or(u64::MAX)
    }

    fn leaf(&self, index: u64) -> Result<Hash, MerkleError> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.get(i))
            .copied()
            .ok_or(MerkleError::IndexOutOfRange {
                index,
                size: LeafSource::len(self),
            })
    }
}

impl LeafSource for Vec<Hash> {
    fn len(&self) -> u64 {
        LeafSource::len(self.as_slice())
    }

    fn leaf(&self, index: u64) -> Result<Hash, MerkleError> {
        self.as_slice().leaf(index)
    }
}

impl<S: LeafSource + ?Sized> LeafSource for &S {
    fn len(&self) -> u64 {
        (**self).len()
    }

    fn leaf(&self, index: u64) -> Result<Hash, MerkleError> {
        (**self).leaf(index)
    }

    fn subtree_root(&self, start: u64, end: u64) -> Result<Hash, MerkleError> {
        (**self).subtree_root(start, end)
    }
}

/// The Merkle Tree Hash of leaves `start..end` of `src`, `MTH(D[start:end])` in the notation of
/// RFC 9162 §2.1. Reads each leaf once, in order, and keeps `O(log n)` hashes in memory; an
/// empty range hashes to [`empty_root`].
pub fn subtree_root<S: LeafSource + ?Sized>(
    src: &S,
    start: u64,
    end: u64,
) -> Result<Hash, MerkleError> {
    let available = src.len();
    if start > end || end > available {
        return Err(MerkleError::RangeOutOfBounds {
            start,
            end,
            available,
        });
    }
    let mut tree = Tree::new();
    for index in start..end {
        tree.push(src.leaf(index)?);
    }
    Ok(tree.root())
}

fn check_size<S: LeafSource + ?Sized>(src: &S, size: u64) -> Result<(), MerkleError> {
    let available = src.len();
    if size > available {
        return Err(MerkleError::SizeExceedsLeaves { size, available });
    }
    Ok(())
}

/// The inclusion proof of leaf `index` in the tree of the first `tree_size` leaves of `src`:
/// `PATH(index, D[tree_size])` of RFC 9162 §2.1.3.1,
///
/// ```text
/// PATH(0, {d0})    = {}
/// PATH(m, D[n])    = PATH(m, D[0:k]) : MTH(D[k:n])      for m < k
/// PATH(m, D[n])    = PATH(m - k, D[k:n]) : MTH(D[0:k])  for m >= k
/// ```
///
/// ordered from the leaf's sibling up to the root's child. Costs `O(tree_size)` hashing.
pub fn inclusion_proof<S: LeafSource + ?Sized>(
    src: &S,
    index: u64,
    tree_size: u64,
) -> Result<Vec<Hash>, MerkleError> {
    check_size(src, tree_size)?;
    if index >= tree_size {
        return Err(MerkleError::IndexOutOfRange {
            index,
            size: tree_size,
        });
    }
    // Walk down from the root; each step adds the subtree beside the one holding `index`.
    let (mut lo, mut hi) = (0u64, tree_size);
    let mut proof = Vec::new();
    while hi - lo > 1 {
        let mid = lo + split(hi - lo);
        if index < mid {
            proof.push(src.subtree_root(mid, hi)?);
            hi = mid;
        } else {
            proof.push(src.subtree_root(lo, mid)?);
            lo = mid;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// The consistency proof between the trees of the first `old_size` and `new_size` leaves of
/// `src`: `PROOF(old_size, D[new_size])` of RFC 9162 §2.1.4.1,
///
/// ```text
/// PROOF(m, D[n])          = SUBPROOF(m, D[n], true)
/// SUBPROOF(m, D[m], true) = {}
/// SUBPROOF(m, D[m], false)= {MTH(D[m])}
/// SUBPROOF(m, D[n], b)    = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])       for m <= k
/// SUBPROOF(m, D[n], b)    = SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k]) for m > k
/// ```
///
/// RFC 9162 defines proofs for `0 < m <= n`; every tree extends the empty one, so for
/// `old_size == 0` the proof is empty (and [`verify_consistency`] accepts it). Costs
/// `O(new_size)` hashing.
pub fn consistency_proof<S: LeafSource + ?Sized>(
    src: &S,
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>, MerkleError> {
    check_size(src, new_size)?;
    if old_size > new_size {
        return Err(MerkleError::SizesOutOfOrder {
            old: old_size,
            new: new_size,
        });
    }
    if old_size == 0 {
        return Ok(Vec::new());
    }
    let (mut lo, mut hi) = (0u64, new_size);
    let mut whole_old_tree_known = true; // `b` of SUBPROOF
    let mut proof = Vec::new();
    loop {
        if old_size == hi {
            if !whole_old_tree_known {
                proof.push(src.subtree_root(lo, hi)?);
            }
            break;
        }
        let mid = lo + split(hi - lo);
        if old_size <= mid {
            proof.push(src.subtree_root(mid, hi)?);
            hi = mid;
        } else {
            proof.push(src.subtree_root(lo, mid)?);
            lo = mid;
            whole_old_tree_known = false;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// How many hashes `PATH(index, D[tree_size])` has, for `index < tree_size`.
fn inclusion_proof_len(index: u64, tree_size: u64) -> usize {
    let (mut lo, mut hi) = (0u64, tree_size);
    let mut len = 0;
    while hi.saturating_sub(lo) > 1 {
        let mid = lo + split(hi - lo);
        if index < mid {
            hi = mid;
        } else {
            lo = mid;
        }
        len += 1;
    }
    len
}

/// How many hashes `PROOF(old_size, D[new_size])` has, for `0 < old_size <= new_size`.
fn consistency_proof_len(old_size: u64, new_size: u64) -> usize {
    let (mut lo, mut hi) = (0u64, new_size);
    let mut whole_old_tree_known = true;
    let mut len = 0;
    while old_size != hi && hi.saturating_sub(lo) > 1 {
        let mid = lo + split(hi - lo);
        if old_size <= mid {
            hi = mid;
        } else {
            lo = mid;
            whole_old_tree_known = false;
        }
        len += 1;
    }
    if !whole_old_tree_known {
        len += 1;
    }
    len
}

/// Right-shifts `fn_` and `sn` together until the lowest bit of `fn_` is set or `fn_` is 0, the
/// step RFC 9162 §2.1.3.2 and §2.1.4.2 both use.
fn shift_to_set_bit(fn_: &mut u64, sn: &mut u64) {
    while *fn_ & 1 == 0 && *fn_ != 0 {
        *fn_ >>= 1;
        *sn >>= 1;
    }
}

/// Verifies that `leaf` (a leaf hash) is leaf `index` of the tree of size `tree_size` whose root
/// is `root`, with the algorithm of RFC 9162 §2.1.3.2. A proof of the wrong length is rejected
/// before any hashing.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    tree_size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), MerkleError> {
    // Step 1.
    if index >= tree_size {
        return Err(MerkleError::IndexOutOfRange {
            index,
            size: tree_size,
        });
    }
    let expected = inclusion_proof_len(index, tree_size);
    if proof.len() != expected {
        return Err(MerkleError::ProofLength {
            got: proof.len(),
            expected,
        });
    }
    // Steps 2 and 3.
    let (mut fn_, mut sn) = (index, tree_size - 1);
    let mut r = *leaf;
    // Step 4.
    for p in proof {
        if sn == 0 {
            return Err(MerkleError::ProofLength {
                got: proof.len(),
                expected,
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                shift_to_set_bit(&mut fn_, &mut sn);
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 5.
    if sn != 0 {
        return Err(MerkleError::ProofLength {
            got: proof.len(),
            expected,
        });
    }
    if r != *root {
        return Err(MerkleError::InclusionMismatch {
            expected: *root,
            computed: r,
        });
    }
    Ok(())
}

/// Verifies that the tree of size `new_size` with root `new_root` extends the tree of size
/// `old_size` with root `old_root`, with the algorithm of RFC 9162 §2.1.4.2.
///
/// The cases RFC 9162 leaves out are decided so: `old_size > new_size` is an error; equal sizes
/// need an empty proof and equal roots (different roots are a fork); `old_size == 0` needs an
/// empty proof and `old_root` equal to [`empty_root`], and then holds for any new tree.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), MerkleError> {
    if old_size > new_size {
        return Err(MerkleError::SizesOutOfOrder {
            old: old_size,
            new: new_size,
        });
    }
    let expected = if old_size == 0 || old_size == new_size {
        0
    } else {
        consistency_proof_len(old_size, new_size)
    };
    if proof.len() != expected {
        return Err(MerkleError::ProofLength {
            got: proof.len(),
            expected,
        });
    }
    if old_size == 0 {
        let empty = empty_root();
        if *old_root != empty {
            return Err(MerkleError::OldRootMismatch {
                expected: *old_root,
                computed: empty,
            });
        }
        return Ok(());
    }
    if old_size == new_size {
        if old_root != new_root {
            return Err(MerkleError::Fork {
                size: old_size,
                old: *old_root,
                new: *new_root,
            });
        }
        return Ok(());
    }
    // Step 1 (an empty proof) was rejected by the length check. Step 2: a power-of-two old tree
    // is a complete subtree of the new one, and its root starts the path.
    let seed = old_size.is_power_of_two().then_some(*old_root);
    let mut path = seed.into_iter().chain(proof.iter().copied());
    // Steps 3 and 4.
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 5.
    let Some(first) = path.next() else {
        return Err(MerkleError::ProofLength {
            got: proof.len(),
            expected,
        });
    };
    let (mut fr, mut sr) = (first, first);
    // Step 6.
    for c in path {
        if sn == 0 {
            return Err(MerkleError::ProofLength {
                got: proof.len(),
                expected,
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(&c, &fr);
            sr = node_hash(&c, &sr);
            if fn_ & 1 == 0 {
                shift_to_set_bit(&mut fn_, &mut sn);
            }
        } else {
            sr = node_hash(&sr, &c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 7.
    if sn != 0 {
        return Err(MerkleError::ProofLength {
            got: proof.len(),
            expected,
        });
    }
    if fr != *old_root {
        return Err(MerkleError::OldRootMismatch {
            expected: *old_root,
            computed: fr,
        });
    }
    if sr != *new_root {
        return Err(MerkleError::NewRootMismatch {
            expected: *new_root,
            computed: sr,
        });
    }
    Ok(())
}

/// An append-only Merkle tree kept as its compact frontier: the roots of the perfect subtrees
/// that make up the first `size` leaves, one per set bit of `size`, largest (leftmost) first.
///
/// [`Tree::push`] costs `O(1)` amortized hashing and [`Tree::root`] `O(log n)`, so the log writer
/// extends the tree per batch without rehashing old leaves. [`Tree::frontier`] and
/// [`Tree::from_frontier`] let it persist and restore these `O(log n)` hashes instead of
/// reading every leaf at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    size: u64,
    frontier: Vec<Hash>,
}

impl Tree {
    /// The largest size [`Tree::from_frontier`] restores: 2^63 leaves, so appending can never
    /// overflow the `u64` size in practice.
    pub const MAX_SIZE: u64 = 1 << 63;

    /// The empty tree.
    pub fn new() -> Self {
        Tree::default()
    }

    /// The tree of `leaves` (leaf hashes).
    pub fn from_leaves(leaves: &[Hash]) -> Self {
        let mut tree = Tree::new();
        tree.extend(leaves.iter().copied());
        tree
    }

    /// The tree of every leaf of `src`, reading each leaf once.
    pub fn from_source<S: LeafSource + ?Sized>(src: &S) -> Result<Self, MerkleError> {
        let mut tree = Tree::new();
        for index in 0..src.len() {
            tree.push(src.leaf(index)?);
        }
        Ok(tree)
    }

    /// Restores a tree of `size` leaves from the frontier [`Tree::frontier`] returned for it.
    /// Only the number of hashes can be checked; compare [`Tree::root`] with a signed root to
    /// trust the result.
    pub fn from_frontier(size: u64, frontier: Vec<Hash>) -> Result<Self, MerkleError> {
        if size > Tree::MAX_SIZE {
            return Err(MerkleError::TreeTooLarge { size });
        }
        let expected = size.count_ones() as usize;
        if frontier.len() != expected {
            return Err(MerkleError::FrontierLength {
                size,
                got: frontier.len(),
                expected,
            });
        }
        Ok(Tree { size, frontier })
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        // Each trailing set bit of `size` is a perfect subtree the new leaf completes.
        let mut hash = leaf;
        let mut size = self.size;
        while size & 1 == 1 {
            let Some(left) = self.frontier.pop() else {
                break;
            };
            hash = node_hash(&left, &hash);
            size >>= 1;
        }
        self.frontier.push(hash);
        self.size += 1;
    }

    /// How many leaves the tree has.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The Merkle Tree Hash of the tree (RFC 9162 §2.1.1): the frontier folded from the right,
    /// which is exactly the recursive split at the largest power of two.
    pub fn root(&self) -> Hash {
        let mut peaks = self.frontier.iter().rev();
        let Some(last) = peaks.next() else {
            return empty_root();
        };
        peaks.fold(*last, |acc, left| node_hash(left, &acc))
    }

    /// The roots of the perfect subtrees covering the tree, largest first; with [`Tree::size`],
    /// everything needed to keep appending.
    pub fn frontier(&self) -> &[Hash] {
        &self.frontier
    }
}

impl Extend<Hash> for Tree {
    fn extend<I: IntoIterator<Item = Hash>>(&mut self, leaves: I) {
        for leaf in leaves {
            self.push(leaf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn split_is_the_largest_power_of_two_below_n() {
        for (n, k) in [(2, 1), (3, 2), (4, 2), (5, 4), (8, 4), (9, 8), (1000, 512)] {
            assert_eq!(split(n), k, "n = {n}");
        }
        assert_eq!(split(u64::MAX), 1 << 63);
        assert_eq!(split((1 << 63) + 1), 1 << 63);
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(root(&[]), empty_root());
        assert_eq!(Tree::new().root(), empty_root());
    }

    #[test]
    fn one_leaf_tree_root_is_the_leaf() {
        let l = leaf_hash(b"x");
        assert_eq!(root(&[l]), l);
        assert_eq!(inclusion_proof(&[l][..], 0, 1).ok(), Some(vec![]));
        assert!(verify_inclusion(&l, 0, 1, &[], &l).is_ok());
    }

    #[test]
    fn proof_lengths_match_generated_proofs() -> Result<(), MerkleError> {
        let l = leaves(40);
        for n in 1..=40 {
            for i in 0..n {
                assert_eq!(
                    inclusion_proof(&l, i, n)?.len(),
                    inclusion_proof_len(i, n),
                    "inclusion {i} of {n}"
                );
            }
            for m in 1..=n {
                let expected = if m == n {
                    0
                } else {
                    consistency_proof_len(m, n)
                };
                assert_eq!(
                    consistency_proof(&l, m, n)?.len(),
                    expected,
                    "consistency {m} to {n}"
                );
            }
        }
        Ok(())
    }

    #[test]
    fn frontier_round_trips() -> Result<(), MerkleError> {
        let l = leaves(13);
        let tree = Tree::from_leaves(&l);
        assert_eq!(tree.frontier().len(), 3);
        let mut restored = Tree::from_frontier(tree.size(), tree.frontier().to_vec())?;
        assert_eq!(restored, tree);
        restored.push(leaf_hash(b"next"));
        let mut all = l.clone();
        all.push(leaf_hash(b"next"));
        assert_eq!(restored.root(), root(&all));
        assert!(matches!(
            Tree::from_frontier(u64::MAX, vec![[0; 32]; 64]),
            Err(MerkleError::TreeTooLarge { size: u64::MAX })
        ));
        assert!(Tree::from_frontier(Tree::MAX_SIZE, vec![[0; 32]; 1]).is_ok());
        assert!(matches!(
            Tree::from_frontier(13, vec![[0; 32]; 2]),
            Err(MerkleError::FrontierLength {
                size: 13,
                got: 2,
                expected: 3
            })
        ));
        Ok(())
    }

    #[test]
    fn generation_rejects_bad_ranges() {
        let l = leaves(5);
        assert!(matches!(
            inclusion_proof(&l, 5, 5),
            Err(MerkleError::IndexOutOfRange { index: 5, size: 5 })
        ));
        assert!(matches!(
            inclusion_proof(&l, 0, 6),
            Err(MerkleError::SizeExceedsLeaves {
                size: 6,
                available: 5
            })
        ));
        assert!(matches!(
            consistency_proof(&l, 4, 3),
            Err(MerkleError::SizesOutOfOrder { old: 4, new: 3 })
        ));
        assert!(matches!(
            subtree_root(&l, 3, 2),
            Err(MerkleError::RangeOutOfBounds { .. })
        ));
        assert!(matches!(
            subtree_root(&l, 0, 6),
            Err(MerkleError::RangeOutOfBounds { .. })
        ));
        assert_eq!(subtree_root(&l, 2, 2).ok(), Some(empty_root()));
    }

    #[test]
    fn verification_never_panics_on_extreme_sizes() {
        // No proof made of one repeated hash leads to another hash; what matters is that
        // every combination returns.
        let (h, other) = ([7u8; 32], [8u8; 32]);
        let proof = vec![h; 70];
        for size in [0, 1, 2, 3, u64::MAX - 1, u64::MAX] {
            for index in [0, 1, size.saturating_sub(1), u64::MAX] {
                for len in [0, 1, 2, 63, 64, 70] {
                    let p = proof.get(..len).unwrap_or(&[]);
                    assert!(verify_inclusion(&h, index, size, p, &other).is_err());
                    assert!(verify_consistency(index, size, &h, &other, p).is_err());
                }
            }
        }
    }

    #[test]
    fn messages_follow_the_project_style() {
        let e = MerkleError::IndexOutOfRange { index: 5, size: 3 };
        assert_eq!(
            e.to_string(),
            "index `5` is outside a tree of size `3`; ask for a proof within the tree"
        );
        let e = MerkleError::Fork {
            size: 2,
            old: [0; 32],
            new: [1; 32],
        };
        assert!(
            e.to_string()
                .starts_with("two trees of size `2` have different roots `0000")
        );
    }
}
