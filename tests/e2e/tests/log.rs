//! End-to-end tests of the tamper-evident Merkle audit log: a real `signetd`, its receipts,
//! checkpoints and proofs checked by an independent verifier ([`signet_e2e::tlog`], written from
//! RFC 9162 and C2SP, not from the server's code), `kill -9` crashes, and tampering with the
//! database behind the server's back. Each test runs its own server on its own data directory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use signet_e2e::tlog::{
    self, Checkpoint, Hash, VerifierKey, XorShift, canonical_json, hash_from_hex, hashes_from_hex,
    leaf_hash, open_checkpoint, open_note, verify_consistency, verify_inclusion,
};
use signet_e2e::*;

const SIGN: &str = "/api/v1/sign";
const BATCH: &str = "/api/v1/sign/batch";
const KEYS: &str = "/api/v1/keys";
const CHECKPOINT: &str = "/api/v1/log/checkpoint";
const LOG_KEY: &str = "/api/v1/log/key";
const ENTRIES: &str = "/api/v1/log/entries";
const INCLUSION: &str = "/api/v1/log/proof/inclusion";
const CONSISTENCY: &str = "/api/v1/log/proof/consistency";

/// The reserved name of the key that signs checkpoints.
const LOG_KEY_NAME: &str = "signet-audit-log";

/// SubjectPublicKeyInfo prefix of an Ed25519 key (RFC 8410); the raw 32-byte key follows.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The message `signetd` refuses to start with when the stored leaves do not match.
const MISMATCH: &str = "does not match its last signed checkpoint";

// ---- helpers ------------------------------------------------------------------------------

fn admin(s: &Server) -> Option<&str> {
    Some(s.admin_token())
}

fn sha256_hex(data: &[u8]) -> String {
    digest_hex("sha256", data).unwrap()
}

fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    b64decode(&body).unwrap()
}

/// The log's verifier key from `signetd init --json`, checked against `GET /log/key`: same
/// verifier key, origin = key name, and the PEM holds the same Ed25519 key.
fn verifier_key(s: &Server) -> VerifierKey {
    let from_init = s
        .log_key()
        .expect("`signetd init --json` printed no `log_key`");
    let vkey = VerifierKey::parse(from_init).unwrap();
    let (st, v) = s.get(LOG_KEY, admin(s)).unwrap();
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["verifier_key"], from_init, "{v}");
    assert_eq!(v["origin"], vkey.name.as_str(), "{v}");
    let der = pem_der(v["public_key_pem"].as_str().unwrap());
    assert_eq!(der.len(), 44, "not an Ed25519 SPKI: {v}");
    assert_eq!(der[..12], ED25519_SPKI_PREFIX, "{v}");
    assert_eq!(
        der[12..],
        vkey.public_key,
        "PEM and verifier key differ: {v}"
    );
    vkey
}

/// `GET /log/checkpoint` as `token`, opened with `vkey`.
fn checkpoint_as(s: &Server, token: &str, vkey: &VerifierKey) -> Checkpoint {
    let r = s.get_resp(CHECKPOINT, Some(token)).unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    let ct = r.header("content-type").unwrap_or_default();
    assert!(
        ct.starts_with("text/plain"),
        "checkpoint content-type `{ct}`"
    );
    let cp = open_checkpoint(&r.text, vkey).unwrap();
    assert_eq!(
        cp.origin, vkey.name,
        "checkpoint origin is not the key name"
    );
    cp
}

fn checkpoint(s: &Server, vkey: &VerifierKey) -> Checkpoint {
    checkpoint_as(s, s.admin_token(), vkey)
}

/// An entry as `GET /log/entries` serves it.
#[derive(Debug, Clone)]
struct Stored {
    index: u64,
    entry: String,
    leaf_hash: Option<Hash>,
}

/// Entries `start..end`, paged by 1000; checks they are dense and in order.
fn fetch_entries(s: &Server, start: u64, end: u64) -> Vec<Stored> {
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        let to = (at + 1000).min(end);
        let (st, v) = s
            .get(&format!("{ENTRIES}?start={at}&end={to}"), admin(s))
            .unwrap();
        assert_eq!(st, 200, "{v}");
        let list = v["entries"].as_array().unwrap();
        assert_eq!(
            list.len() as u64,
            to - at,
            "entries {at}..{to} are not dense"
        );
        for (i, e) in list.iter().enumerate() {
            let index = e["index"].as_u64().unwrap();
            assert_eq!(index, at + i as u64, "entries out of order");
            out.push(Stored {
                index,
                entry: e["entry"].as_str().unwrap().to_owned(),
                leaf_hash: e["leaf_hash"].as_str().map(|h| hash_from_hex(h).unwrap()),
            });
        }
        at = to;
    }
    out
}

/// Leaf hashes recomputed from entry bytes, each checked against the stored leaf hash and the
/// entry's own `index`.
fn verified_leaves(entries: &[Stored]) -> Vec<Hash> {
    entries
        .iter()
        .map(|e| {
            let leaf = leaf_hash(e.entry.as_bytes());
            assert_eq!(
                e.leaf_hash,
                Some(leaf),
                "stored leaf hash of entry {} is not SHA-256(0x00 || entry)",
                e.index
            );
            let v: Value = serde_json::from_str(&e.entry).unwrap();
            assert_eq!(v["index"].as_u64(), Some(e.index), "{}", e.entry);
            assert_eq!(
                canonical_json(&v).unwrap(),
                e.entry,
                "entry is not canonical"
            );
            leaf
        })
        .collect()
}

/// `GET /log/proof/inclusion`: (tree size, leaf hash, proof).
fn inclusion(s: &Server, token: &str, index: u64, size: Option<u64>) -> (u64, Hash, Vec<Hash>) {
    let path = match size {
        Some(n) => format!("{INCLUSION}?index={index}&size={n}"),
        None => format!("{INCLUSION}?index={index}"),
    };
    let (st, v) = s.get(&path, Some(token)).unwrap();
    assert_eq!(st, 200, "{path}: {v}");
    assert_eq!(v["index"].as_u64(), Some(index), "{v}");
    let n = v["tree_size"].as_u64().unwrap();
    if let Some(want) = size {
        assert_eq!(n, want, "{v}");
    }
    (
        n,
        hash_from_hex(v["leaf_hash"].as_str().unwrap()).unwrap(),
        hashes_from_hex(v["proof"].as_array().unwrap()).unwrap(),
    )
}

/// `GET /log/proof/consistency`: (to, proof).
fn consistency(s: &Server, token: &str, from: u64, to: Option<u64>) -> (u64, Vec<Hash>) {
    let path = match to {
        Some(n) => format!("{CONSISTENCY}?from={from}&to={n}"),
        None => format!("{CONSISTENCY}?from={from}"),
    };
    let (st, v) = s.get(&path, Some(token)).unwrap();
    assert_eq!(st, 200, "{path}: {v}");
    assert_eq!(v["from"].as_u64(), Some(from), "{v}");
    let n = v["to"].as_u64().unwrap();
    if let Some(want) = to {
        assert_eq!(n, want, "{v}");
    }
    (n, hashes_from_hex(v["proof"].as_array().unwrap()).unwrap())
}

/// Every check a client can make offline on one signature's `log` receipt; returns the
/// checkpoint it came with.
fn check_receipt(sig: &Value, vkey: &VerifierKey) -> Checkpoint {
    let log = &sig["log"];
    let index = log["index"].as_u64().unwrap();
    assert_eq!(sig["audit_index"].as_u64(), Some(index), "{sig}");
    let entry = log["entry"].as_str().unwrap();
    let leaf = hash_from_hex(log["leaf_hash"].as_str().unwrap()).unwrap();
    assert_eq!(
        leaf_hash(entry.as_bytes()),
        leaf,
        "leaf_hash is not SHA-256(0x00 || entry): {sig}"
    );
    let v: Value = serde_json::from_str(entry).unwrap();
    assert_eq!(canonical_json(&v).unwrap(), entry, "entry is not canonical");
    assert_eq!(v["index"].as_u64(), Some(index), "{entry}");
    assert_eq!(v["action"], "sign", "{entry}");
    assert_eq!(v["outcome"]["result"], "allowed", "{entry}");
    assert_eq!(v["digest"]["value"], sig["digest"], "{entry}");
    assert_eq!(v["digest"]["algorithm"], sig["digest_algorithm"], "{entry}");
    assert_eq!(v["key"]["name"], sig["key"], "{entry}");
    assert_eq!(v["key"]["version"], sig["key_version"], "{entry}");
    let cp = open_checkpoint(log["checkpoint"].as_str().unwrap(), vkey).unwrap();
    assert_eq!(cp.origin, vkey.name);
    assert_eq!(Some(cp.size), log["tree_size"].as_u64(), "{sig}");
    let proof = hashes_from_hex(log["inclusion_proof"].as_array().unwrap()).unwrap();
    verify_inclusion(index, cp.size, &leaf, &proof, &cp.root).unwrap();
    cp
}

/// Roots of every prefix: `roots[m]` is the root of the first `m` leaves.
fn prefix_roots(leaves: &[Hash]) -> Vec<Hash> {
    (0..=leaves.len())
        .map(|m| tlog::root(&leaves[..m]))
        .collect()
}

fn random_digest() -> String {
    sha256_hex(&random_bytes(32).unwrap())
}

// ---- the verifier itself ---------------------------------------------------------------------

#[test]
fn independent_verifier_matches_published_vectors() {
    // RFC 6962 / Certificate Transparency reference leaves and roots (sizes 0..=8).
    let data: Vec<Vec<u8>> = [
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
    .map(|h| hex::decode(h).unwrap())
    .collect();
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
    .map(|h| hash_from_hex(h).unwrap());
    let leaves: Vec<Hash> = data.iter().map(|d| leaf_hash(d)).collect();
    for (m, want) in roots.iter().enumerate() {
        assert_eq!(&tlog::root(&leaves[..m]), want, "root of size {m}");
    }
    let h =
        |list: &[&str]| -> Vec<Hash> { list.iter().map(|x| hash_from_hex(x).unwrap()).collect() };

    let p0 = h(&[
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]);
    verify_inclusion(0, 8, &leaves[0], &p0, &roots[8]).unwrap();
    let p5 = h(&[
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]);
    verify_inclusion(5, 8, &leaves[5], &p5, &roots[8]).unwrap();
    // Wrong index, size, leaf, root, or a shortened/extended/altered path: all rejected.
    assert!(verify_inclusion(4, 8, &leaves[5], &p5, &roots[8]).is_err());
    // (A size-7 claim with this proof and the size-8 root would pass: the root, not the proof,
    // binds the size, which is why roots come from signed checkpoints.)
    assert!(verify_inclusion(5, 6, &leaves[5], &p5, &roots[8]).is_err());
    assert!(verify_inclusion(5, 9, &leaves[5], &p5, &roots[8]).is_err());
    assert!(verify_inclusion(5, 8, &leaves[4], &p5, &roots[8]).is_err());
    assert!(verify_inclusion(5, 8, &leaves[5], &p5, &roots[7]).is_err());
    assert!(verify_inclusion(5, 8, &leaves[5], &p5[..2], &roots[8]).is_err());
    let mut longer = p5.clone();
    longer.push(roots[1]);
    assert!(verify_inclusion(5, 8, &leaves[5], &longer, &roots[8]).is_err());
    let mut altered = p5.clone();
    altered[1][0] ^= 1;
    assert!(verify_inclusion(5, 8, &leaves[5], &altered, &roots[8]).is_err());
    assert!(verify_inclusion(8, 8, &leaves[5], &p5, &roots[8]).is_err());

    let c28 = h(&[
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]);
    verify_consistency(2, 8, &roots[2], &roots[8], &c28).unwrap();
    let c68 = h(&[
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]);
    verify_consistency(6, 8, &roots[6], &roots[8], &c68).unwrap();
    let c25 = h(&[
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ]);
    verify_consistency(2, 5, &roots[2], &roots[5], &c25).unwrap();
    assert!(verify_consistency(6, 8, &roots[5], &roots[8], &c68).is_err());
    assert!(verify_consistency(6, 8, &roots[6], &roots[7], &c68).is_err());
    assert!(verify_consistency(5, 8, &roots[6], &roots[8], &c68).is_err());
    assert!(verify_consistency(6, 8, &roots[6], &roots[8], &c68[..2]).is_err());
    assert!(verify_consistency(2, 8, &roots[2], &roots[8], &[]).is_err());
    verify_consistency(8, 8, &roots[8], &roots[8], &[]).unwrap();
    assert!(verify_consistency(8, 8, &roots[7], &roots[8], &[]).is_err());
    assert!(verify_consistency(0, 8, &roots[0], &roots[8], &c28).is_err());

    // The signed-note example of golang.org/x/mod/sumdb/note.
    let vkey =
        VerifierKey::parse("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
            .unwrap();
    let text = "If you think cryptography is the answer to your problem,\n\
                then you don't know what your problem is.\n";
    let note = format!(
        "{text}\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
    );
    assert_eq!(open_note(&note, &vkey).unwrap(), text);
    assert!(open_note(&note.replace("cryptography", "cryptographY"), &vkey).is_err());
    assert!(
        VerifierKey::parse("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
            .is_err()
    );
    assert!(
        VerifierKey::parse("PeterNeumanm+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
            .is_err()
    );
}

// ---- receipts ----------------------------------------------------------------------------------

#[test]
fn sign_responses_carry_verifiable_log_proofs() {
    let s = Server::start().unwrap();
    let vkey = verifier_key(&s);
    s.create_key("ed", "ed25519").unwrap();
    s.create_key("ec", "ecdsa-p256").unwrap();
    let (_, signer) = s.create_token("ci", "signer", None).unwrap();

    let mut sigs: Vec<Value> = Vec::new();
    for (key, token) in [
        ("ed", s.admin_token()),
        ("ec", s.admin_token()),
        ("ed", signer.as_str()),
        ("ec", signer.as_str()),
    ] {
        let digest = random_digest();
        let v = s.sign_as(token, key, "sha256", &digest).unwrap();
        assert_eq!(v["digest"], digest.as_str());
        sigs.push(v);
    }
    for (key, n) in [("ed", 5usize), ("ec", 3)] {
        let items: Vec<Value> = (0..n)
            .map(|i| json!({"digest": random_digest(), "artifact_name": format!("{key}-{i}.bin")}))
            .collect();
        let (st, v) = s
            .post_json(
                BATCH,
                Some(&signer),
                &json!({"key": key, "items": items, "reason": "release"}),
            )
            .unwrap();
        assert_eq!(st, 200, "{v}");
        let got = v["signatures"].as_array().unwrap();
        assert_eq!(got.len(), n);
        for (item, sig) in items.iter().zip(got) {
            assert_eq!(sig["digest"], item["digest"]);
            let entry: Value = serde_json::from_str(sig["log"]["entry"].as_str().unwrap()).unwrap();
            assert_eq!(
                entry["context"]["artifact_name"], item["artifact_name"],
                "{entry}"
            );
            assert_eq!(entry["context"]["reason"], "release", "{entry}");
            sigs.push(sig.clone());
        }
    }

    let mut indices = Vec::new();
    let mut checkpoints = Vec::new();
    for sig in &sigs {
        let cp = check_receipt(sig, &vkey);
        indices.push(sig["log"]["index"].as_u64().unwrap());
        checkpoints.push(cp);
    }
    let mut sorted = indices.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        indices.len(),
        "two signatures share a log index"
    );

    // The latest checkpoint covers them all; the log serves the receipts' exact bytes; every
    // receipt's checkpoint is a prefix of the latest (server proof, and our own roots).
    let latest = checkpoint(&s, &vkey);
    let entries = fetch_entries(&s, 0, latest.size);
    let leaves = verified_leaves(&entries);
    assert_eq!(tlog::root(&leaves), latest.root, "latest checkpoint root");
    for (sig, cp) in sigs.iter().zip(&checkpoints) {
        let index = sig["log"]["index"].as_u64().unwrap();
        assert!(index < latest.size);
        assert_eq!(
            entries[index as usize].entry,
            sig["log"]["entry"].as_str().unwrap()
        );
        assert_eq!(tlog::root(&leaves[..cp.size as usize]), cp.root);
        let (_, proof) = consistency(&s, s.admin_token(), cp.size, Some(latest.size));
        verify_consistency(cp.size, latest.size, &cp.root, &latest.root, &proof).unwrap();
    }

    // The signer may read the checkpoint and key too, and sees the same.
    assert_eq!(checkpoint_as(&s, &signer, &vkey), latest);

    // The verifier is not vacuous on real data.
    let sig = &sigs[0];
    let note = sig["log"]["checkpoint"].as_str().unwrap();
    let cp = &checkpoints[0];
    let forged = note.replacen(
        &format!("\n{}\n", cp.size),
        &format!("\n{}\n", cp.size + 1),
        1,
    );
    assert_ne!(forged, note);
    assert!(
        open_checkpoint(&forged, &vkey).is_err(),
        "forged note verified"
    );
    let other = VerifierKey::parse(&format!(
        "{}+{}+{}",
        vkey.name,
        hex::encode(tlog::key_hash(&vkey.name, &[7; 32])),
        base64_encode(&[&[1u8][..], &[7; 32]].concat())
    ))
    .unwrap();
    assert!(
        open_checkpoint(note, &other).is_err(),
        "note verified with another key"
    );
    let index = sig["log"]["index"].as_u64().unwrap();
    let leaf = hash_from_hex(sig["log"]["leaf_hash"].as_str().unwrap()).unwrap();
    let mut proof = hashes_from_hex(sig["log"]["inclusion_proof"].as_array().unwrap()).unwrap();
    if cp.size > 1 {
        assert!(verify_inclusion(index ^ 1, cp.size, &leaf, &proof, &cp.root).is_err());
        proof[0][31] ^= 0x80;
        assert!(verify_inclusion(index, cp.size, &leaf, &proof, &cp.root).is_err());
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

// ---- proofs between any sizes --------------------------------------------------------------------

/// Appends a mix of entries until the log has `target`: signs (single and batch), key and token
/// administration, and a denied request. Keys `m-ed` and `m-ec` must exist.
fn make_mixed_entries(s: &Server, signer: &str, target: u64, vkey: &VerifierKey) {
    let mut round = 0u32;
    while checkpoint(s, vkey).size < target {
        round += 1;
        match round % 6 {
            0 => {
                let items: Vec<Value> =
                    (0..3).map(|_| json!({"digest": random_digest()})).collect();
                let (st, v) = s
                    .post_json(BATCH, admin(s), &json!({"key": "m-ed", "items": items}))
                    .unwrap();
                assert_eq!(st, 200, "{v}");
            }
            1 => {
                s.sign_as(signer, "m-ec", "sha256", &random_digest())
                    .unwrap();
            }
            2 => {
                let (id, _) = s
                    .create_token(&format!("t{round}"), "signer", None)
                    .unwrap();
                s.revoke_token(&id).unwrap();
            }
            3 => {
                s.key_action("m-ed", "rotate").unwrap();
                s.key_action("m-ec", "disable").unwrap();
                s.key_action("m-ec", "enable").unwrap();
            }
            4 => {
                // Denied: a signer may not create keys (audited as denied).
                let r = s
                    .post_resp(
                        KEYS,
                        Some(signer),
                        &json!({"name": format!("nope{round}"), "algorithm": "ed25519"}),
                    )
                    .unwrap();
                r.expect_problem(403, "policy_denied").unwrap();
            }
            _ => {
                s.sign("m-ed", "sha256", &random_digest()).unwrap();
            }
        }
        assert!(round < 200, "the log does not grow");
    }
}

#[test]
fn proofs_between_any_sizes_verify() {
    let started = Instant::now();
    let s = Server::start().unwrap();
    let vkey = verifier_key(&s);
    let (signer_id, signer) = s.create_token("mixed-signer", "signer", None).unwrap();
    s.create_key("m-ed", "ed25519").unwrap();
    s.create_key("m-ec", "ecdsa-p256").unwrap();
    make_mixed_entries(&s, &signer, 20, &vkey);
    let early = checkpoint(&s, &vkey);
    make_mixed_entries(&s, &signer, 41, &vkey);
    s.revoke_token(&signer_id).unwrap();
    let late = checkpoint(&s, &vkey);
    assert!(early.size < late.size);
    let n = late.size;

    let entries = fetch_entries(&s, 0, n);
    let leaves = verified_leaves(&entries);
    let roots = prefix_roots(&leaves);
    assert_eq!(
        roots[n as usize], late.root,
        "our root differs from the checkpoint's"
    );
    assert_eq!(roots[early.size as usize], early.root);
    // Entries past the checkpoint do not exist.
    let (st, v) = s
        .get(&format!("{ENTRIES}?start={n}&end={}", n + 5), admin(&s))
        .unwrap();
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["entries"].as_array().unwrap().len(), 0, "{v}");

    // The two checkpoints fetched at different times are consistent.
    let (_, proof) = consistency(&s, s.admin_token(), early.size, Some(late.size));
    verify_consistency(early.size, late.size, &early.root, &late.root, &proof).unwrap();
    // Defaults: size/to = the latest checkpoint.
    let (to, proof) = consistency(&s, s.admin_token(), early.size, None);
    assert_eq!(to, n);
    verify_consistency(early.size, n, &early.root, &late.root, &proof).unwrap();
    let (size, leaf, proof) = inclusion(&s, s.admin_token(), 3, None);
    assert_eq!(size, n);
    verify_inclusion(3, n, &leaf, &proof, &late.root).unwrap();

    // Every inclusion proof (index, size) and every consistency proof (m, n') with
    // 1 <= m <= n' <= n, against roots we computed ourselves.
    let t = Instant::now();
    let mut inclusions = 0;
    for size in 1..=n {
        for index in 0..size {
            let (_, leaf, proof) = inclusion(&s, s.admin_token(), index, Some(size));
            assert_eq!(leaf, leaves[index as usize], "leaf {index}");
            verify_inclusion(index, size, &leaf, &proof, &roots[size as usize])
                .unwrap_or_else(|e| panic!("inclusion {index} in {size}: {e:#}"));
            inclusions += 1;
        }
    }
    let mut consistencies = 0;
    for to in 1..=n {
        for from in 1..=to {
            let (_, proof) = consistency(&s, s.admin_token(), from, Some(to));
            verify_consistency(from, to, &roots[from as usize], &roots[to as usize], &proof)
                .unwrap_or_else(|e| panic!("consistency {from} -> {to}: {e:#}"));
            // A proof for other sizes does not pass for these.
            if from < to && from > 1 {
                assert!(
                    verify_consistency(
                        from - 1,
                        to,
                        &roots[from as usize - 1],
                        &roots[to as usize],
                        &proof
                    )
                    .is_err()
                        || proof.is_empty(),
                    "consistency proof {from} -> {to} also passed for {} -> {to}",
                    from - 1
                );
            }
            consistencies += 1;
        }
    }
    eprintln!(
        "log size {n}: {inclusions} inclusion and {consistencies} consistency proofs verified in {:?}",
        t.elapsed()
    );
    // Reading proofs changed nothing.
    assert_eq!(checkpoint(&s, &vkey), late);
    eprintln!("proofs_between_any_sizes_verify: {:?}", started.elapsed());
}

// ---- crash safety ------------------------------------------------------------------------------

/// What one client thread received in one round.
#[derive(Default)]
struct Haul {
    signatures: Vec<Value>,
    checkpoints: Vec<String>,
    errors: u32,
}

fn crash_worker(
    client: reqwest::blocking::Client,
    base: String,
    token: String,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> Haul {
    let mut rng = XorShift::new(seed);
    let mut haul = Haul::default();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        n += 1;
        let key = if rng.next_u64().is_multiple_of(2) {
            "c-ed"
        } else {
            "c-ec"
        };
        let op = rng.range(0, 10);
        let digest = |i: u64| sha256_hex(format!("{seed}/{n}/{i}").as_bytes());
        let req = match op {
            0..=5 => client
                .post(format!("{base}{SIGN}"))
                .json(&json!({"key": key, "digest": digest(0)})),
            6..=8 => {
                let items: Vec<Value> = (0..rng.range(2, 6))
                    .map(|i| json!({"digest": digest(i)}))
                    .collect();
                client
                    .post(format!("{base}{BATCH}"))
                    .json(&json!({"key": key, "items": items}))
            }
            _ => client.get(format!("{base}{CHECKPOINT}")),
        };
        let resp = req
            .bearer_auth(&token)
            .timeout(Duration::from_secs(10))
            .send();
        let Ok(resp) = resp else {
            haul.errors += 1;
            thread::sleep(Duration::from_millis(5));
            continue;
        };
        let status = resp.status().as_u16();
        let Ok(text) = resp.text() else {
            haul.errors += 1;
            continue;
        };
        if status != 200 {
            haul.errors += 1;
            continue;
        }
        if op == 9 {
            haul.checkpoints.push(text);
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            haul.errors += 1;
            continue;
        };
        if op <= 5 {
            haul.signatures.push(v);
        } else if let Some(list) = v["signatures"].as_array() {
            haul.signatures.extend(list.iter().cloned());
        }
    }
    haul
}

fn seed() -> u64 {
    std::env::var("SIGNET_E2E_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}

#[test]
fn crash_safety_under_kill_9() {
    let started = Instant::now();
    let seed = seed();
    eprintln!("crash_safety_under_kill_9: seed {seed} (rerun with SIGNET_E2E_SEED={seed})");
    let mut rng = XorShift::new(seed);
    let mut s = Server::start().unwrap();
    let vkey = verifier_key(&s);
    s.create_key("c-ed", "ed25519").unwrap();
    s.create_key("c-ec", "ecdsa-p256").unwrap();
    let (_, signer) = s.create_token("crash-ci", "signer", None).unwrap();

    let mut signatures: Vec<Value> = Vec::new();
    let mut notes: Vec<String> = vec![checkpoint(&s, &vkey).note];
    for round in 0..5 {
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let client = s.client().clone();
                let base = s.base_url().to_owned();
                let token = if w % 2 == 0 {
                    signer.clone()
                } else {
                    s.admin_token().to_owned()
                };
                let stop = Arc::clone(&stop);
                let wseed = rng.next_u64();
                thread::spawn(move || crash_worker(client, base, token, wseed, stop))
            })
            .collect();
        let delay = Duration::from_millis(rng.range(150, 1200));
        thread::sleep(delay);
        let pid = s.pid();
        s.kill9().unwrap();
        stop.store(true, Ordering::SeqCst);
        let mut received = 0;
        let mut errors = 0;
        for w in workers {
            let haul = w.join().expect("worker panicked");
            received += haul.signatures.len();
            errors += haul.errors;
            signatures.extend(haul.signatures);
            notes.extend(haul.checkpoints);
        }
        eprintln!(
            "round {round}: killed pid {pid:?} after {delay:?}; {received} signatures received, {errors} failed requests"
        );
        s.start_serving().unwrap();
        let r = s.get_resp("/readyz", None).unwrap();
        assert_eq!(r.status, 200, "not ready after restart {round}: {}", r.text);
        assert_ne!(s.pid(), pid);
    }
    assert!(!signatures.is_empty(), "no client received any signature");

    // The server works after the last crash.
    for key in ["c-ed", "c-ec"] {
        let v = s.sign(key, "sha256", &random_digest()).unwrap();
        check_receipt(&v, &vkey);
        notes.push(v["log"]["checkpoint"].as_str().unwrap().to_owned());
    }

    let t = Instant::now();
    let latest = checkpoint(&s, &vkey);
    let n = latest.size;
    let entries = fetch_entries(&s, 0, n);
    let leaves = verified_leaves(&entries);
    assert_eq!(tlog::root(&leaves), latest.root, "latest root");

    // Every signature a client received: same entry at its index, its own receipt verifies,
    // and it is included in the new tree.
    for sig in &signatures {
        let cp = check_receipt(sig, &vkey);
        notes.push(cp.note.clone());
        let index = sig["log"]["index"].as_u64().unwrap();
        assert!(index < n, "received entry {index} is beyond the log ({n})");
        let stored = &entries[index as usize];
        assert_eq!(
            stored.entry,
            sig["log"]["entry"].as_str().unwrap(),
            "entry {index} of a received signature changed"
        );
        let (_, leaf, proof) = inclusion(&s, s.admin_token(), index, Some(n));
        assert_eq!(hex::encode(leaf), sig["log"]["leaf_hash"].as_str().unwrap());
        verify_inclusion(index, n, &leaf, &proof, &latest.root).unwrap();
    }
    let mut unique_indices: Vec<u64> = signatures
        .iter()
        .map(|s| s["log"]["index"].as_u64().unwrap())
        .collect();
    unique_indices.sort_unstable();
    unique_indices.dedup();
    assert_eq!(
        unique_indices.len(),
        signatures.len(),
        "two received signatures share an index"
    );

    // Every checkpoint a client saw: one root per size, and a prefix of the new tree.
    let mut by_size: BTreeMap<u64, Hash> = BTreeMap::new();
    for note in &notes {
        let cp = open_checkpoint(note, &vkey).unwrap();
        assert_eq!(cp.origin, vkey.name);
        if let Some(prev) = by_size.insert(cp.size, cp.root) {
            assert_eq!(
                prev, cp.root,
                "two checkpoints of size {} differ: a fork",
                cp.size
            );
        }
    }
    for (&m, root) in &by_size {
        assert!(m <= n, "a client saw size {m}, the log now has {n}");
        assert_eq!(
            &tlog::root(&leaves[..m as usize]),
            root,
            "checkpoint of size {m} is not a prefix of the log"
        );
        if m > 0 {
            let (_, proof) = consistency(&s, s.admin_token(), m, Some(n));
            verify_consistency(m, n, root, &latest.root, &proof).unwrap();
        }
    }
    eprintln!(
        "crash_safety_under_kill_9: {} signatures and {} distinct checkpoints verified against a log of {n} in {:?}; total {:?}",
        signatures.len(),
        by_size.len(),
        t.elapsed(),
        started.elapsed()
    );
}

// ---- tampering -----------------------------------------------------------------------------------

const DB_FILES: [&str; 3] = ["signet.db", "signet.db-wal", "signet.db-shm"];

fn backup_db(s: &Server) -> PathBuf {
    let dir = s.scratch().unwrap().join("db-backup");
    std::fs::create_dir_all(&dir).unwrap();
    for f in DB_FILES {
        let src = s.data_dir().join(f);
        if src.exists() {
            std::fs::copy(&src, dir.join(f)).unwrap();
        }
    }
    dir
}

fn restore_db(s: &Server, backup: &Path) {
    for f in DB_FILES {
        let dst = s.data_dir().join(f);
        if dst.exists() {
            std::fs::remove_file(&dst).unwrap();
        }
        let src = backup.join(f);
        if src.exists() {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

const DROP_TRIGGERS: &str =
    "DROP TRIGGER audit_log_no_update;\nDROP TRIGGER audit_log_no_delete;\n";

/// Runs `signetd serve`, which must refuse to start: non-zero exit, `needle` in stderr.
fn assert_refuses(s: &mut Server, case: &str, needle: &str) -> String {
    let out = s.serve_expecting_exit(Duration::from_secs(30)).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !out.status.success(),
        "{case}: signetd started on a tampered log ({})\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        !stdout.contains("listening on"),
        "{case}: signetd announced an address: {stdout}"
    );
    assert!(
        stderr.contains(needle),
        "{case}: stderr does not mention `{needle}`:\n{stderr}"
    );
    eprintln!(
        "{case}: refused: {}",
        stderr.lines().last().unwrap_or_default()
    );
    stderr
}

#[test]
fn tampering_is_detected() {
    let started = Instant::now();
    let mut s = Server::start().unwrap();
    let vkey = verifier_key(&s);
    s.create_key("t-ed", "ed25519").unwrap();
    let mut sign_indices = Vec::new();
    for _ in 0..12 {
        let v = s.sign("t-ed", "sha256", &random_digest()).unwrap();
        sign_indices.push(v["log"]["index"].as_u64().unwrap());
    }
    let original = checkpoint(&s, &vkey);
    let entries = fetch_entries(&s, 0, original.size);
    verified_leaves(&entries);
    if cli_has_audit_verify(&s) {
        check_audit_verify_cli(&s, &vkey, None);
    }
    let status = s.stop().unwrap();
    assert!(status.success(), "{status}");
    let db = s.db_path();
    assert!(db.is_file(), "no database at {}", db.display());
    let backup = backup_db(&s);
    let target = sign_indices[5];
    let target_entry = entries[target as usize].entry.clone();
    let old_digest = serde_json::from_str::<Value>(&target_entry).unwrap()["digest"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let forged_entry = target_entry.replace(&old_digest, &"0".repeat(64));
    assert_ne!(forged_entry, target_entry);

    // (a) The entry's text is edited, its stored leaf hash kept: the tree (built from stored
    // leaf hashes) still matches, so signetd starts, but any verifier sees the mismatch at
    // exactly that index.
    sqlite_exec(
        &db,
        &format!(
            "{DROP_TRIGGERS}UPDATE audit_log SET entry = {} WHERE idx = {target};\n",
            sql_text(&forged_entry)
        ),
    )
    .unwrap();
    s.start_serving().unwrap();
    let served = fetch_entries(&s, 0, original.size);
    let bad: Vec<u64> = served
        .iter()
        .filter(|e| e.leaf_hash != Some(leaf_hash(e.entry.as_bytes())))
        .map(|e| e.index)
        .collect();
    assert_eq!(
        bad,
        [target],
        "leaf mismatches should be exactly at the tampered index"
    );
    assert_eq!(served[target as usize].entry, forged_entry);
    let recomputed: Vec<Hash> = served
        .iter()
        .map(|e| leaf_hash(e.entry.as_bytes()))
        .collect();
    assert_ne!(
        tlog::root(&recomputed),
        original.root,
        "tampered entries give the signed root"
    );
    let stored: Vec<Hash> = served.iter().map(|e| e.leaf_hash.unwrap()).collect();
    assert_eq!(tlog::root(&stored), original.root);
    let after = checkpoint(&s, &vkey);
    assert_eq!(after, original, "checkpoint changed");
    let (_, leaf, proof) = inclusion(&s, s.admin_token(), target, Some(original.size));
    verify_inclusion(target, original.size, &leaf, &proof, &original.root).unwrap();
    assert!(
        verify_inclusion(
            target,
            original.size,
            &leaf_hash(forged_entry.as_bytes()),
            &proof,
            &original.root
        )
        .is_err(),
        "the forged entry verifies"
    );
    if cli_has_audit_verify(&s) {
        check_audit_verify_cli(&s, &vkey, Some(target));
    }
    let status = s.stop().unwrap();
    assert!(status.success(), "{status}");
    restore_db(&s, &backup);

    // (b) Entry and leaf hash edited consistently: the root no longer matches the signed
    // checkpoint, so signetd refuses to start.
    sqlite_exec(
        &db,
        &format!(
            "{DROP_TRIGGERS}UPDATE audit_log SET entry = {}, leaf_hash = X'{}' WHERE idx = {target};\n",
            sql_text(&forged_entry),
            hex::encode(leaf_hash(forged_entry.as_bytes()))
        ),
    )
    .unwrap();
    assert_refuses(&mut s, "(b) entry and leaf hash edited", MISMATCH);
    restore_db(&s, &backup);

    // (c) A middle row deleted: a gap.
    let middle = original.size / 2;
    sqlite_exec(
        &db,
        &format!("{DROP_TRIGGERS}DELETE FROM audit_log WHERE idx = {middle};\n"),
    )
    .unwrap();
    let stderr = assert_refuses(&mut s, "(c) middle row deleted", "altered");
    assert!(
        stderr.contains(&format!("index {middle}")) || stderr.contains(MISMATCH),
        "(c): stderr names neither the gap nor the mismatch:\n{stderr}"
    );
    restore_db(&s, &backup);

    // (d) Two entries swapped, content and leaf hash.
    let (i, j) = (sign_indices[2], sign_indices[8]);
    sqlite_exec(
        &db,
        &format!(
            "{DROP_TRIGGERS}CREATE TEMP TABLE swap AS SELECT idx, entry, leaf_hash FROM audit_log WHERE idx IN ({i}, {j});\n\
             UPDATE audit_log SET entry = (SELECT entry FROM swap WHERE swap.idx = {i} + {j} - audit_log.idx), \
             leaf_hash = (SELECT leaf_hash FROM swap WHERE swap.idx = {i} + {j} - audit_log.idx) WHERE idx IN ({i}, {j});\n"
        ),
    )
    .unwrap();
    assert_refuses(&mut s, "(d) two entries swapped", MISMATCH);
    restore_db(&s, &backup);

    // (e) The last entry deleted (a truncated log under a checkpoint that covers it).
    let last = original.size - 1;
    sqlite_exec(
        &db,
        &format!("{DROP_TRIGGERS}DELETE FROM audit_log WHERE idx = {last};\n"),
    )
    .unwrap();
    assert_refuses(&mut s, "(e) last entry deleted", MISMATCH);
    restore_db(&s, &backup);

    // The untouched backup serves again, with the same signed checkpoint.
    s.start_serving().unwrap();
    assert_eq!(checkpoint(&s, &vkey), original);
    let v = s.sign("t-ed", "sha256", &random_digest()).unwrap();
    let cp = check_receipt(&v, &vkey);
    let (_, proof) = consistency(&s, s.admin_token(), original.size, Some(cp.size));
    verify_consistency(original.size, cp.size, &original.root, &cp.root, &proof).unwrap();
    eprintln!("tampering_is_detected: {:?}", started.elapsed());
}

/// Whether the built `signet` has `audit verify` (another change adds it).
fn cli_has_audit_verify(s: &Server) -> bool {
    let help = s.signet(["audit", "verify", "--help"]).unwrap();
    if help.code() != Some(0) {
        eprintln!(
            "skipping `signet audit verify` checks: the built `signet` has no such command ({})",
            help.stderr.lines().next().unwrap_or_default()
        );
    }
    help.code() == Some(0)
}

/// `signet audit verify --log-key VKEY`: exits 0 on an intact log; on a tampered one exits 1
/// and names the tampered index.
fn check_audit_verify_cli(s: &Server, vkey: &VerifierKey, tampered: Option<u64>) {
    let vk = format!(
        "{}+{}+{}",
        vkey.name,
        hex::encode(vkey.key_hash),
        base64_encode(&[&[1u8][..], &vkey.public_key].concat())
    );
    assert_eq!(Some(vk.as_str()), s.log_key());
    let out = s.signet(["audit", "verify", "--log-key", &vk]).unwrap();
    let all = format!("{}\n{}", out.stdout, out.stderr);
    let Some(tampered) = tampered else {
        out.ok().unwrap();
        return;
    };
    assert_eq!(
        out.code(),
        Some(1),
        "`signet audit verify` on a tampered log:\n{all}"
    );
    eprintln!(
        "`signet audit verify` on the tampered log (exit 1):\n{}",
        all.trim()
    );
    let named = all.lines().any(|l| {
        l.contains("index")
            && l.split(|c: char| !c.is_ascii_digit())
                .any(|w| w == tampered.to_string())
    });
    assert!(
        named,
        "`signet audit verify` does not name index {tampered}:\n{all}"
    );
}

// ---- bad input -----------------------------------------------------------------------------------

#[test]
fn log_endpoints_reject_bad_input() {
    let s = Server::start().unwrap();
    let vkey = verifier_key(&s);
    s.create_key("b-ed", "ed25519").unwrap();
    for _ in 0..5 {
        s.sign("b-ed", "sha256", &random_digest()).unwrap();
    }
    let (_, signer) = s.create_token("reader", "signer", None).unwrap();
    let before = checkpoint(&s, &vkey);
    let n = before.size;
    assert!(n >= 7, "{n}");

    let bad = [
        format!("{ENTRIES}?start=5&end=2"),
        format!("{ENTRIES}?start=0&end=1001"),
        format!("{ENTRIES}?start=10&end=1011"),
        format!("{ENTRIES}?start=a&end=2"),
        format!("{ENTRIES}?start=0&end=two"),
        format!("{ENTRIES}?start=-1&end=2"),
        format!("{ENTRIES}?start=0"),
        format!("{ENTRIES}?end=3"),
        ENTRIES.to_owned(),
        format!("{ENTRIES}?start=0&end=2&foo=1"),
        format!("{ENTRIES}?start=0&end=99999999999999999999999"),
        format!("{INCLUSION}?index={n}&size={n}"),
        format!("{INCLUSION}?index=5&size=3"),
        format!("{INCLUSION}?index=0&size=0"),
        format!("{INCLUSION}?index=0&size={}", n + 1),
        format!("{INCLUSION}?index={}", n),
        format!("{INCLUSION}?index=0&size=18446744073709551615"),
        format!("{INCLUSION}?index=x&size=3"),
        format!("{INCLUSION}?size=3"),
        format!("{INCLUSION}?index=0&size=3&extra=1"),
        format!("{CONSISTENCY}?from=3&to=2"),
        format!("{CONSISTENCY}?from=1&to={}", n + 1),
        format!("{CONSISTENCY}?from={}", n + 1),
        format!("{CONSISTENCY}?from=1&to=18446744073709551615"),
        format!("{CONSISTENCY}?from=one&to=2"),
        format!("{CONSISTENCY}?to=2"),
        format!("{CONSISTENCY}?from=1&to=2&x=y"),
    ];
    for path in &bad {
        for token in [s.admin_token(), signer.as_str()] {
            if path.starts_with(ENTRIES) && token == signer {
                continue;
            }
            let r = s.get_resp(path, Some(token)).unwrap();
            r.expect_problem(400, "invalid_request")
                .unwrap_or_else(|e| panic!("GET {path}: {e:#}"));
            let detail = r.json().unwrap()["detail"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            assert!(!detail.is_empty(), "GET {path}: problem without detail");
        }
    }

    // Edges that are fine.
    for path in [
        format!("{ENTRIES}?start=0&end=0"),
        format!("{ENTRIES}?start=0&end=1000"),
        format!("{ENTRIES}?start={n}&end={}", n + 1000),
        format!("{INCLUSION}?index={}&size={n}", n - 1),
        format!("{INCLUSION}?index=0&size=1"),
        format!("{CONSISTENCY}?from={n}&to={n}"),
        format!("{CONSISTENCY}?from=1&to=1"),
    ] {
        let (st, v) = s.get(&path, admin(&s)).unwrap();
        assert_eq!(st, 200, "GET {path}: {v}");
    }
    // From the empty tree: an empty proof (the empty tree is a prefix of every tree).
    for path in [
        format!("{CONSISTENCY}?from=0&to={n}"),
        format!("{CONSISTENCY}?from=0"),
    ] {
        let (st, v) = s.get(&path, admin(&s)).unwrap();
        assert_eq!(st, 200, "GET {path}: {v}");
        assert_eq!(v["proof"], json!([]), "GET {path}: {v}");
    }
    let (_, v) = s
        .get(&format!("{ENTRIES}?start=0&end=1000"), admin(&s))
        .unwrap();
    assert_eq!(v["entries"].as_array().unwrap().len() as u64, n);

    // A signer may read checkpoint, key and proofs, not entries.
    checkpoint_as(&s, &signer, &vkey);
    let (st, v) = s.get(LOG_KEY, Some(&signer)).unwrap();
    assert_eq!(st, 200, "{v}");
    let (_, leaf, proof) = inclusion(&s, &signer, 1, Some(n));
    verify_inclusion(1, n, &leaf, &proof, &before.root).unwrap();
    let (_, proof) = consistency(&s, &signer, 2, Some(n));
    let leaves = verified_leaves(&fetch_entries(&s, 0, n));
    verify_consistency(2, n, &tlog::root(&leaves[..2]), &before.root, &proof).unwrap();
    let r = s
        .get_resp(&format!("{ENTRIES}?start=0&end=1"), Some(&signer))
        .unwrap();
    r.expect_problem(403, "policy_denied").unwrap();

    // Nothing changed: all of the above authenticated.
    assert_eq!(
        checkpoint(&s, &vkey),
        before,
        "bad requests changed the log"
    );

    // Without a valid token: 401 on every log endpoint (and each failed authentication is
    // itself audited, so the log grows by exactly one denied `authenticate` entry each).
    let paths = [
        CHECKPOINT.to_owned(),
        LOG_KEY.to_owned(),
        format!("{ENTRIES}?start=0&end=1"),
        format!("{INCLUSION}?index=0&size=1"),
        format!("{CONSISTENCY}?from=1&to=1"),
    ];
    let mut unauthenticated = 0u64;
    for path in &paths {
        for token in [None, Some("signet_garbage_token")] {
            let r = s.get_resp(path, token).unwrap();
            r.expect_problem(401, "unauthenticated")
                .unwrap_or_else(|e| panic!("GET {path} with {token:?}: {e:#}"));
            unauthenticated += 1;
        }
    }
    let after = checkpoint(&s, &vkey);
    assert_eq!(
        after.size,
        n + unauthenticated,
        "each failed authentication should add one entry"
    );
    let new = fetch_entries(&s, n, after.size);
    for e in &new {
        let v: Value = serde_json::from_str(&e.entry).unwrap();
        assert_eq!(v["action"], "authenticate", "{}", e.entry);
        assert_eq!(v["outcome"]["result"], "denied", "{}", e.entry);
    }
    let (_, proof) = consistency(&s, s.admin_token(), n, Some(after.size));
    verify_consistency(n, after.size, &before.root, &after.root, &proof).unwrap();
}

// ---- the reserved log key ------------------------------------------------------------------------

#[test]
fn reserved_log_key_cannot_be_used() {
    let s = Server::start().unwrap();
    let vkey = verifier_key(&s);
    let (_, signer) = s.create_token("ci", "signer", None).unwrap();
    let before = checkpoint(&s, &vkey);

    for name in [LOG_KEY_NAME, "signet-x", "signet-"] {
        for algorithm in ["ed25519", "ecdsa-p256"] {
            let r = s
                .post_resp(
                    KEYS,
                    admin(&s),
                    &json!({"name": name, "algorithm": algorithm}),
                )
                .unwrap();
            r.expect_problem(400, "invalid_name")
                .unwrap_or_else(|e| panic!("create `{name}`: {e:#}"));
        }
    }
    let digest = random_digest();
    for token in [s.admin_token(), signer.as_str()] {
        let r = s
            .post_resp(
                SIGN,
                Some(token),
                &json!({"key": LOG_KEY_NAME, "digest": digest}),
            )
            .unwrap();
        r.expect_problem(403, "policy_denied").unwrap();
        let r = s
            .post_resp(
                BATCH,
                Some(token),
                &json!({"key": LOG_KEY_NAME, "items": [{"digest": digest}]}),
            )
            .unwrap();
        r.expect_problem(403, "policy_denied").unwrap();
        // A forged checkpoint body is no digest either.
        let body = format!(
            "{}\n{}\n{}\n",
            vkey.name,
            before.size + 1,
            base64_encode(&[0; 32])
        );
        let r = s
            .post_resp(
                SIGN,
                Some(token),
                &json!({"key": LOG_KEY_NAME, "digest_algorithm": "sha512",
                        "digest": digest_hex("sha512", body.as_bytes()).unwrap()}),
            )
            .unwrap();
        r.expect_problem(403, "policy_denied").unwrap();
    }
    for action in ["rotate", "disable", "enable"] {
        let r = s
            .request(
                "POST",
                &format!("{KEYS}/{LOG_KEY_NAME}/{action}"),
                admin(&s),
                None,
                None,
            )
            .unwrap();
        r.expect_problem(403, "policy_denied")
            .unwrap_or_else(|e| panic!("{action}: {e:#}"));
    }
    for token in [s.admin_token(), signer.as_str()] {
        let (st, v) = s.get(KEYS, Some(token)).unwrap();
        assert_eq!(st, 200, "{v}");
        for k in v["keys"].as_array().unwrap() {
            assert!(
                !k["name"].as_str().unwrap().starts_with("signet-"),
                "GET /keys lists a reserved key: {v}"
            );
        }
    }
    assert!(s.key_names().unwrap().is_empty());

    // The log key is unchanged and still signs checkpoints, which still verify.
    assert_eq!(verifier_key(&s), vkey);
    s.create_key("normal", "ed25519").unwrap();
    let v = s.sign("normal", "sha256", &random_digest()).unwrap();
    let cp = check_receipt(&v, &vkey);
    let latest = checkpoint(&s, &vkey);
    assert!(latest.size >= cp.size && cp.size > before.size);
    let entries = fetch_entries(&s, 0, latest.size);
    let leaves = verified_leaves(&entries);
    assert_eq!(tlog::root(&leaves), latest.root);
    // The refusals were audited (denied or failed), none as allowed.
    for e in &entries[before.size as usize..] {
        let v: Value = serde_json::from_str(&e.entry).unwrap();
        if v["key"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("signet-"))
        {
            assert_ne!(v["outcome"]["result"], "allowed", "{}", e.entry);
        }
    }
    let (_, proof) = consistency(&s, s.admin_token(), before.size, Some(latest.size));
    verify_consistency(before.size, latest.size, &before.root, &latest.root, &proof).unwrap();
}

// ---- restarts ------------------------------------------------------------------------------------

#[test]
fn checkpoint_survives_restart() {
    let mut s = Server::start().unwrap();
    let vkey = verifier_key(&s);
    let (_, key_v) = s.get(LOG_KEY, admin(&s)).unwrap();
    let cp0 = checkpoint(&s, &vkey);
    if cp0.size == 0 {
        assert_eq!(cp0.root, tlog::root(&[]));
    }
    s.create_key("r-ed", "ed25519").unwrap();
    for _ in 0..3 {
        s.sign("r-ed", "sha256", &random_digest()).unwrap();
    }
    let cp1 = checkpoint(&s, &vkey);
    assert!(cp1.size > cp0.size);

    s.restart().unwrap();
    assert_eq!(verifier_key(&s), vkey, "verifier key changed on restart");
    assert_eq!(s.get(LOG_KEY, admin(&s)).unwrap().1, key_v);
    let cp2 = checkpoint(&s, &vkey);
    assert_eq!(
        (cp2.size, cp2.root),
        (cp1.size, cp1.root),
        "restart changed the tree"
    );
    assert_eq!(cp2.note, cp1.note, "restart changed the signed checkpoint");

    s.kill9().unwrap();
    s.start_serving().unwrap();
    assert_eq!(verifier_key(&s), vkey, "verifier key changed after kill -9");
    let cp3 = checkpoint(&s, &vkey);
    assert_eq!(
        (cp3.size, cp3.root),
        (cp1.size, cp1.root),
        "kill -9 changed the tree"
    );

    let v = s.sign("r-ed", "sha256", &random_digest()).unwrap();
    let cp4 = check_receipt(&v, &vkey);
    assert!(cp4.size > cp1.size);
    for old in [&cp0, &cp1] {
        if old.size > 0 {
            let (_, proof) = consistency(&s, s.admin_token(), old.size, Some(cp4.size));
            verify_consistency(old.size, cp4.size, &old.root, &cp4.root, &proof).unwrap();
        }
    }
    s.restart().unwrap();
    let cp5 = checkpoint(&s, &vkey);
    assert_eq!(cp5.note, cp4.note);
    let leaves = verified_leaves(&fetch_entries(&s, 0, cp5.size));
    assert_eq!(tlog::root(&leaves), cp5.root);
    assert_eq!(tlog::root(&leaves[..cp1.size as usize]), cp1.root);
}

/// A server with a few signatures, stopped: (server, vkey, latest checkpoint, entries).
fn stopped_server_with_entries() -> (Server, VerifierKey, Checkpoint, Vec<Stored>) {
    let mut s = Server::start().unwrap();
    let vkey = verifier_key(&s);
    s.create_key("t-ed", "ed25519").unwrap();
    for _ in 0..8 {
        s.sign("t-ed", "sha256", &random_digest()).unwrap();
    }
    let cp = checkpoint(&s, &vkey);
    let entries = fetch_entries(&s, 0, cp.size);
    verified_leaves(&entries);
    let status = s.stop().unwrap();
    assert!(status.success(), "{status}");
    (s, vkey, cp, entries)
}

/// A sign entry of `entries` rewritten with another digest and the given index.
fn forged_sign_entry(entries: &[Stored], index: u64) -> String {
    let src = entries
        .iter()
        .rev()
        .find(|e| e.entry.contains("\"action\":\"sign\""))
        .expect("no sign entry");
    let mut v: Value = serde_json::from_str(&src.entry).unwrap();
    v["digest"]["value"] = json!("ab".repeat(32));
    v["index"] = json!(index);
    canonical_json(&v).unwrap()
}

/// After a refusal: non-zero exit, no address announced, an error about the audit log.
fn assert_refused(out: &std::process::Output, case: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{case}: {}\n{stderr}", out.status);
    assert!(!stdout.contains("listening on"), "{case}: {stdout}");
    assert!(stderr.contains("audit log"), "{case}: {stderr}");
    eprintln!(
        "{case}: refused: {}",
        stderr.lines().last().unwrap_or_default()
    );
}

// Every commit stores its entries and their checkpoint in one transaction, so stored entries
// past the last checkpoint can only have been written behind the server's back: signetd must
// refuse to start rather than sign them into its next checkpoint.
#[test]
fn rows_appended_behind_the_servers_back_are_refused() {
    let (mut s, vkey, cp, entries) = stopped_server_with_entries();
    let forged = forged_sign_entry(&entries, cp.size);
    sqlite_exec(
        &s.db_path(),
        &format!(
            "INSERT INTO audit_log (idx, time, action, actor_id, key_name, entry, leaf_hash, digest) \
             VALUES ({}, 0, 'sign', 'forger', 't-ed', {}, X'{}', NULL);\n",
            cp.size,
            sql_text(&forged),
            hex::encode(leaf_hash(forged.as_bytes()))
        ),
    )
    .unwrap();
    let out = s.serve_expecting_exit(Duration::from_secs(10));
    if out.is_err() {
        // It started: show what it does with the forged row.
        s.start_serving().unwrap();
        let v = s.sign("t-ed", "sha256", &random_digest()).unwrap();
        let next = check_receipt(&v, &vkey);
        let served = fetch_entries(&s, 0, next.size);
        panic!(
            "signetd started with an entry ({}) past its last signed checkpoint (size {}) and signed a checkpoint of size {} that includes it: {}",
            cp.size, cp.size, next.size, served[cp.size as usize].entry
        );
    }
    assert_refused(&out.unwrap(), "row appended past the checkpoint");
}

// The `root` column of `log_checkpoints` is signed by nothing; the note beside it is. Rewriting
// an entry, its leaf hash and that column must not make signetd start on the rewritten history
// (it did before startup took size and root from the signed note, and then signed the rewritten
// history into its next checkpoint).
#[test]
fn a_checkpoint_root_edited_behind_the_servers_back_is_refused() {
    let (mut s, vkey, cp, entries) = stopped_server_with_entries();
    let target = cp.size - 2;
    let forged = forged_sign_entry(&entries, target);
    let mut leaves: Vec<Hash> = entries
        .iter()
        .map(|e| leaf_hash(e.entry.as_bytes()))
        .collect();
    leaves[target as usize] = leaf_hash(forged.as_bytes());
    let forged_root = tlog::root(&leaves);
    sqlite_exec(
        &s.db_path(),
        &format!(
            "{DROP_TRIGGERS}DROP TRIGGER log_checkpoints_no_update;\n\
             UPDATE audit_log SET entry = {}, leaf_hash = X'{}' WHERE idx = {target};\n\
             UPDATE log_checkpoints SET root = X'{}' WHERE size = {};\n",
            sql_text(&forged),
            hex::encode(leaf_hash(forged.as_bytes())),
            hex::encode(forged_root),
            cp.size
        ),
    )
    .unwrap();
    let out = s.serve_expecting_exit(Duration::from_secs(10));
    if out.is_err() {
        s.start_serving().unwrap();
        let served = checkpoint(&s, &vkey);
        let v = s.sign("t-ed", "sha256", &random_digest()).unwrap();
        let next = check_receipt(&v, &vkey);
        let leaves_now = verified_leaves(&fetch_entries(&s, 0, next.size));
        panic!(
            "signetd started on a rewritten history whose unsigned `root` column was edited (served note root {}, forged root {}), then signed a checkpoint (size {}) over the rewritten history: prefix root {} vs originally signed {}",
            hex::encode(served.root),
            hex::encode(forged_root),
            next.size,
            hex::encode(tlog::root(&leaves_now[..cp.size as usize])),
            hex::encode(cp.root)
        );
    }
    assert_refused(&out.unwrap(), "checkpoint root column edited");
}

/// Tampering with the database of a running server (whose in-memory tree still holds the true
/// history): `signet audit verify` fails and names the first bad index for an edited, a deleted
/// and a reordered entry.
#[test]
fn audit_verify_names_the_first_bad_index_on_a_live_log() {
    type Tamper = fn(u64) -> String;
    let cases: [(&str, Tamper); 3] = [
        ("edit", |i| {
            format!(
                "{DROP_TRIGGERS}UPDATE audit_log SET entry = replace(entry, '\"allowed\"', '\"denied\"') WHERE idx = {i};\n"
            )
        }),
        ("delete", |i| {
            format!("{DROP_TRIGGERS}DELETE FROM audit_log WHERE idx = {i};\n")
        }),
        ("reorder", |i| {
            // Swap entries i and i + 2, each with its own stored leaf hash.
            let j = i + 2;
            format!(
                "{DROP_TRIGGERS}UPDATE audit_log SET idx = -1 WHERE idx = {i};\n\
                 UPDATE audit_log SET idx = {i} WHERE idx = {j};\n\
                 UPDATE audit_log SET idx = {j} WHERE idx = -1;\n"
            )
        }),
    ];
    for (case, sql) in cases {
        let s = Server::start().unwrap();
        let vkey = verifier_key(&s);
        s.create_key("live", "ecdsa-p256").unwrap();
        let mut signed = Vec::new();
        for _ in 0..8 {
            let v = s.sign("live", "sha256", &random_digest()).unwrap();
            signed.push(v["log"]["index"].as_u64().unwrap());
        }
        check_audit_verify_cli(&s, &vkey, None);
        let target = signed[3];
        sqlite_exec(&s.db_path(), &sql(target)).unwrap();
        eprintln!("case {case}: tampered with index {target}");
        check_audit_verify_cli(&s, &vkey, Some(target));
    }
}
