//! An independent client-side verifier of Signet's transparency log, written from the specs and
//! not from the server's code, so end-to-end tests cross-check the server's implementation:
//!
//! - RFC 9162 §2.1.1 Merkle Tree Hash with SHA-256 ([`leaf_hash`], [`node_hash`], [`root`]);
//! - RFC 9162 §2.1.3.2 inclusion proof verification ([`verify_inclusion`]);
//! - RFC 9162 §2.1.4.2 consistency proof verification ([`verify_consistency`]);
//! - c2sp.org/signed-note with Ed25519 and c2sp.org/tlog-checkpoint ([`VerifierKey`],
//!   [`open_checkpoint`]), with the signature checked by `aws-lc-rs`.
//!
//! Everything returns errors, never panics, on bad input.

use anyhow::{Context, Result, bail, ensure};
use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest as _, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 || entry)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(entry);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two strictly less than `n` (`n >= 2`).
fn split_point(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// MTH over leaf hashes (RFC 9162 §2.1.1): the empty tree hashes to `SHA-256()`.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = split_point(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// Decodes a 64-digit hex hash.
pub fn hash_from_hex(s: &str) -> Result<Hash> {
    let bytes = hex::decode(s).with_context(|| format!("`{s}` is not hex"))?;
    Hash::try_from(bytes.as_slice()).map_err(|_| anyhow::anyhow!("`{s}` is not 32 bytes"))
}

/// Decodes a list of hex hashes (a proof as the API serves it).
pub fn hashes_from_hex(list: &[serde_json::Value]) -> Result<Vec<Hash>> {
    list.iter()
        .map(|v| hash_from_hex(v.as_str().context("a proof element is not a string")?))
        .collect()
}

/// RFC 9162 §2.1.3.2: verifies that `leaf` is at `index` in the tree of `size` leaves whose root
/// is `expected_root`.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    expected_root: &Hash,
) -> Result<()> {
    // 1. leaf_index must be below tree_size.
    ensure!(
        index < size,
        "inclusion: index {index} is not below size {size}"
    );
    // 2. fn = leaf_index, sn = tree_size - 1.
    let (mut f, mut s) = (index, size - 1);
    // 3. r = hash.
    let mut r = *leaf;
    // 4. for each p in the path:
    for p in proof {
        // a. sn == 0 here means the proof is too long.
        ensure!(s != 0, "inclusion: proof has too many elements");
        // b.
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        // c.
        f >>= 1;
        s >>= 1;
    }
    // 5. sn must be 0 and r the root.
    ensure!(s == 0, "inclusion: proof has too few elements");
    ensure!(
        &r == expected_root,
        "inclusion: proof of index {index} in size {size} leads to {}, not the root {}",
        hex::encode(r),
        hex::encode(expected_root)
    );
    Ok(())
}

/// RFC 9162 §2.1.4.2: verifies that the tree of `first` leaves with root `first_root` is a
/// prefix of the tree of `second` leaves with root `second_root`. Equal sizes need an empty proof
/// and equal roots.
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> Result<()> {
    ensure!(
        first >= 1 && first <= second,
        "consistency: sizes {first} → {second} are not 1 <= first <= second"
    );
    if first == second {
        ensure!(
            proof.is_empty(),
            "consistency: proof between equal sizes is not empty"
        );
        ensure!(
            first_root == second_root,
            "consistency: two different roots for size {first}"
        );
        return Ok(());
    }
    // 1. An empty proof fails.
    ensure!(!proof.is_empty(), "consistency: empty proof");
    // 2. If first is an exact power of 2, prepend first_hash.
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    // 3.
    let (mut f, mut s) = (first - 1, second - 1);
    // 4.
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    // 5.
    let mut fr = path[0];
    let mut sr = path[0];
    // 6.
    for c in &path[1..] {
        // a.
        ensure!(s != 0, "consistency: proof has too many elements");
        // b.
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        // c.
        f >>= 1;
        s >>= 1;
    }
    // 7.
    ensure!(s == 0, "consistency: proof has too few elements");
    ensure!(
        &fr == first_root,
        "consistency {first} → {second}: proof leads to old root {}, not {}",
        hex::encode(fr),
        hex::encode(first_root)
    );
    ensure!(
        &sr == second_root,
        "consistency {first} → {second}: proof leads to new root {}, not {}",
        hex::encode(sr),
        hex::encode(second_root)
    );
    Ok(())
}

/// A C2SP Ed25519 verifier key: `<name>+<8 hex digits of key hash>+<base64(0x01 || key)>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    pub name: String,
    pub key_hash: [u8; 4],
    pub public_key: [u8; 32],
}

/// `SHA-256(name || 0x0A || 0x01 || public key)[..4]` (c2sp.org/signed-note).
pub fn key_hash(name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0x0a, 0x01]);
    h.update(public_key);
    let d: Hash = h.finalize().into();
    [d[0], d[1], d[2], d[3]]
}

impl VerifierKey {
    /// Parses a verifier key and checks its key hash.
    pub fn parse(vkey: &str) -> Result<VerifierKey> {
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(hash_hex), Some(key_b64)) =
            (parts.next(), parts.next(), parts.next())
        else {
            bail!("verifier key `{vkey}` is not name+hash+key");
        };
        ensure!(
            !name.is_empty() && !name.contains(char::is_whitespace),
            "bad key name in `{vkey}`"
        );
        ensure!(
            hash_hex.len() == 8,
            "key hash of `{vkey}` is not 8 hex digits"
        );
        let hash = hex::decode(hash_hex).context("key hash is not hex")?;
        let key = STANDARD.decode(key_b64).context("key is not base64")?;
        ensure!(
            key.len() == 33 && key[0] == 0x01,
            "verifier key `{vkey}` is not an Ed25519 (0x01) key of 32 bytes"
        );
        let mut public_key = [0u8; 32];
        public_key.copy_from_slice(&key[1..]);
        let expected = key_hash(name, &public_key);
        ensure!(
            hash == expected,
            "verifier key `{vkey}` has key hash {hash_hex}, but name and key hash to {}",
            hex::encode(expected)
        );
        Ok(VerifierKey {
            name: name.to_owned(),
            key_hash: expected,
            public_key,
        })
    }
}

/// A checkpoint whose signed note verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// The whole signed note.
    pub note: String,
}

/// Verifies a signed note (c2sp.org/signed-note) with `vkey` and returns its text: everything
/// up to and including the newline before the first blank line. At least one signature line
/// must be from `vkey` (same name and key hash), and every such line must verify; lines of
/// other keys are ignored.
pub fn open_note<'a>(note: &'a str, vkey: &VerifierKey) -> Result<&'a str> {
    let split = note
        .find("\n\n")
        .with_context(|| format!("note has no blank line: {note:?}"))?;
    let text = &note[..=split];
    let sigs = &note[split + 2..];
    ensure!(
        sigs.ends_with('\n'),
        "signature block does not end in a newline: {note:?}"
    );
    let mut verified = 0;
    for line in sigs.trim_end_matches('\n').split('\n') {
        let rest = line
            .strip_prefix("\u{2014} ")
            .with_context(|| format!("signature line `{line}` does not start with `— `"))?;
        let (name, b64) = rest
            .split_once(' ')
            .with_context(|| format!("signature line `{line}` has no signature"))?;
        let blob = STANDARD
            .decode(b64)
            .with_context(|| format!("signature of `{line}` is not base64"))?;
        ensure!(blob.len() > 4, "signature of `{line}` is too short");
        if name != vkey.name || blob[..4] != vkey.key_hash {
            continue;
        }
        ensure!(
            blob.len() == 4 + 64,
            "Ed25519 signature line `{line}` is not 4 + 64 bytes"
        );
        UnparsedPublicKey::new(&ED25519, &vkey.public_key)
            .verify(text.as_bytes(), &blob[4..])
            .map_err(|_| anyhow::anyhow!("the note's signature does not verify: {note:?}"))?;
        verified += 1;
    }
    ensure!(
        verified > 0,
        "no signature by `{}` in the note: {note:?}",
        vkey.name
    );
    Ok(text)
}

/// Verifies a signed note with `vkey` ([`open_note`]) and parses its text as a checkpoint
/// (c2sp.org/tlog-checkpoint: origin, size, base64 root, then optional extension lines).
pub fn open_checkpoint(note: &str, vkey: &VerifierKey) -> Result<Checkpoint> {
    let text = open_note(note, vkey)?;
    let lines: Vec<&str> = text.trim_end_matches('\n').split('\n').collect();
    ensure!(
        lines.len() >= 3,
        "checkpoint text has fewer than 3 lines: {text:?}"
    );
    let size_line = lines[1];
    ensure!(
        !size_line.is_empty()
            && size_line.bytes().all(|b| b.is_ascii_digit())
            && (size_line == "0" || !size_line.starts_with('0')),
        "checkpoint size `{size_line}` is not canonical decimal"
    );
    let root_bytes = STANDARD
        .decode(lines[2])
        .with_context(|| format!("checkpoint root `{}` is not base64", lines[2]))?;
    let root = Hash::try_from(root_bytes.as_slice())
        .map_err(|_| anyhow::anyhow!("checkpoint root is not 32 bytes"))?;
    Ok(Checkpoint {
        origin: lines[0].to_owned(),
        size: size_line.parse()?,
        root,
        note: note.to_owned(),
    })
}

/// JSON with object keys sorted and no insignificant whitespace, to check that an entry is in
/// canonical form.
pub fn canonical_json(v: &serde_json::Value) -> Result<String> {
    use serde_json::Value;
    Ok(match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = String::from("{");
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k)?);
                out.push(':');
                out.push_str(&canonical_json(&map[k.as_str()])?);
            }
            out.push('}');
            out
        }
        Value::Array(items) => {
            let parts: Result<Vec<String>> = items.iter().map(canonical_json).collect();
            format!("[{}]", parts?.join(","))
        }
        other => serde_json::to_string(other)?,
    })
}

/// A tiny deterministic PRNG (xorshift64*), for reproducible randomized tests.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        XorShift(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `lo..hi` (`hi > lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo).max(1)
    }
}
