//! End-to-end tests of the REST API: a real `signetd` over HTTPS, signatures checked by OpenSSL.
//! Each test runs its own server on its own data directory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::Value;
use signet_e2e::*;

const SIGN: &str = "/api/v1/sign";
const BATCH: &str = "/api/v1/sign/batch";
const KEYS: &str = "/api/v1/keys";
const TOKENS: &str = "/api/v1/tokens";

// ---- helpers ------------------------------------------------------------------------------

/// A random file of a random-ish size in `dir`.
fn random_file(dir: &Path) -> Result<(PathBuf, Vec<u8>)> {
    let size = 1000 + usize::from(random_bytes(2)?[0]) * 37;
    let data = random_bytes(size)?;
    let path = write_file(dir, &unique("artifact", "bin"), &data)?;
    Ok((path, data))
}

/// The same data with one byte changed, as a new file.
fn tampered_copy(dir: &Path, data: &[u8]) -> Result<PathBuf> {
    let mut bad = data.to_vec();
    let i = bad.len() / 2;
    bad[i] ^= 0x01;
    write_file(dir, &unique("tampered", "bin"), &bad)
}

/// Number of allowed `sign` events in the audit log.
fn allowed_signs(s: &Server) -> usize {
    s.audit_events("sign", "allowed").unwrap().len()
}

fn admin(s: &Server) -> Option<&str> {
    Some(s.admin_token())
}

fn pem_of(s: &Server, key: &str, version: u64) -> String {
    s.public_key(key, version).unwrap().0
}

/// Signs a fresh random file and returns (file, data, signature bytes, response).
fn sign_random_file(
    s: &Server,
    dir: &Path,
    key: &str,
    digest_algorithm: &str,
) -> (PathBuf, Vec<u8>, Vec<u8>, Value) {
    let (file, data) = random_file(dir).unwrap();
    let digest = digest_hex(digest_algorithm, &data).unwrap();
    let resp = s.sign(key, digest_algorithm, &digest).unwrap();
    assert_eq!(resp["digest"], digest.as_str(), "{resp}");
    let sig = b64decode(resp["signature"].as_str().unwrap()).unwrap();
    (file, data, sig, resp)
}

fn verify(
    dir: &Path,
    algorithm: &str,
    digest_algorithm: &str,
    pem: &str,
    file: &Path,
    sig: &[u8],
) -> bool {
    let mode = VerifyMode::for_algorithm(algorithm).unwrap();
    openssl_verify(dir, mode, digest_algorithm, pem, file, sig).unwrap()
}

fn token_id_of(token: &str) -> String {
    token
        .strip_prefix("signet_")
        .and_then(|r| r.split_once('_'))
        .map(|(id, _)| id.to_owned())
        .unwrap()
}

// ---- OpenSSL interop: every algorithm × every digest it accepts ------------------------------

fn interop(algorithm: &str) {
    let digests = ALGORITHMS
        .iter()
        .find(|(a, _)| *a == algorithm)
        .map(|(_, d)| *d)
        .unwrap();
    let s = Server::start().unwrap();
    let dir = s.scratch().unwrap();
    let name = format!("k-{algorithm}");

    let info = s.create_key(&name, algorithm).unwrap();
    assert_eq!(info["name"], name.as_str());
    assert_eq!(info["algorithm"], algorithm);
    assert_eq!(info["state"], "active");
    assert_eq!(info["current_version"], 1);
    assert_eq!(info["versions"].as_array().unwrap().len(), 1);
    let listed: Vec<&str> = info["digest_algorithms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(listed, digests, "{info}");

    let (pem, fingerprint) = s.public_key(&name, 1).unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    assert_eq!(spki_fingerprint(&pem).unwrap(), fingerprint);

    // OpenSSL reads the key and agrees on its type and size.
    let pub_path = write_file(&dir, "pub.pem", pem.as_bytes()).unwrap();
    let text = openssl_ok(
        &dir,
        &[
            "pkey",
            "-pubin",
            "-in",
            pub_path.to_str().unwrap(),
            "-noout",
            "-text",
        ],
    )
    .unwrap();
    let expect = match algorithm {
        "ed25519" => "ED25519",
        "ecdsa-p256" => "P-256",
        "ecdsa-p384" => "P-384",
        a if a.starts_with("rsa-3072") => "(3072 bit)",
        _ => "(4096 bit)",
    };
    assert!(text.contains(expect), "{algorithm}: {text}");

    for &d in digests {
        let (file, data, sig, resp) = sign_random_file(&s, &dir, &name, d);
        assert_eq!(resp["key"], name.as_str());
        assert_eq!(resp["key_version"], 1);
        assert_eq!(resp["algorithm"], algorithm);
        assert_eq!(resp["digest_algorithm"], d);
        assert_eq!(resp["public_key_fingerprint"], fingerprint.as_str());
        assert!(resp["audit_index"].is_u64(), "{resp}");
        assert!(resp["signed_at"].is_string(), "{resp}");

        assert!(
            verify(&dir, algorithm, d, &pem, &file, &sig),
            "{algorithm}/{d}: OpenSSL rejected a good signature"
        );
        let tampered = tampered_copy(&dir, &data).unwrap();
        assert!(
            !verify(&dir, algorithm, d, &pem, &tampered, &sig),
            "{algorithm}/{d}: OpenSSL accepted a signature over a tampered file"
        );
        let mut bad_sig = sig.clone();
        *bad_sig.last_mut().unwrap() ^= 0x01;
        assert!(
            !verify(&dir, algorithm, d, &pem, &file, &bad_sig),
            "{algorithm}/{d}: OpenSSL accepted a tampered signature"
        );
        // The padding is the one the algorithm names, not the other RSA one.
        let other = match VerifyMode::for_algorithm(algorithm).unwrap() {
            VerifyMode::Dgst if algorithm.starts_with("rsa") => Some(VerifyMode::DgstPss),
            VerifyMode::DgstPss => Some(VerifyMode::Dgst),
            _ => None,
        };
        if let Some(other) = other {
            assert!(
                !openssl_verify(&dir, other, d, &pem, &file, &sig).unwrap(),
                "{algorithm}/{d}: signature also verifies with the other RSA padding"
            );
        }
    }

    // Digests the key does not take are refused.
    for d in ["sha256", "sha384", "sha512"] {
        if digests.contains(&d) {
            continue;
        }
        let digest = digest_hex(d, b"x").unwrap();
        let r = s
            .post_resp(
                SIGN,
                admin(&s),
                &json!({"key": name, "digest_algorithm": d, "digest": digest}),
            )
            .unwrap();
        r.expect_problem(400, "digest_algorithm_not_allowed")
            .unwrap();
    }
}

#[test]
fn interop_ed25519() {
    interop("ed25519");
}

#[test]
fn interop_ecdsa_p256() {
    interop("ecdsa-p256");
}

#[test]
fn interop_ecdsa_p384() {
    interop("ecdsa-p384");
}

#[test]
fn interop_rsa_3072_pss() {
    interop("rsa-3072-pss");
}

#[test]
fn interop_rsa_3072_pkcs1() {
    interop("rsa-3072-pkcs1");
}

#[test]
fn interop_rsa_4096_pss() {
    interop("rsa-4096-pss");
}

#[test]
fn interop_rsa_4096_pkcs1() {
    interop("rsa-4096-pkcs1");
}

/// Without `digest_algorithm` a key uses its `default_digest_algorithm`; names are accepted in
/// IANA spelling and any case; hex in any case.
#[test]
fn digest_algorithm_defaults_to_the_keys_default_and_accepts_iana_spelling() {
    let s = Server::start().unwrap();
    let dir = s.scratch().unwrap();
    for (key, alg, default) in [
        ("k256", "ecdsa-p256", "sha256"),
        ("k384", "ecdsa-p384", "sha384"),
        ("ked", "ed25519", "sha256"),
    ] {
        let info = s.create_key(key, alg).unwrap();
        assert_eq!(info["default_digest_algorithm"], default, "{info}");
        let pem = pem_of(&s, key, 1);
        let (file, data) = random_file(&dir).unwrap();
        let digest = digest_hex(default, &data).unwrap();
        let iana = default.replace("sha", "SHA-");
        for body in [
            json!({"key": key, "digest": digest}),
            json!({"key": key, "digest_algorithm": iana, "digest": digest}),
            json!({"key": key, "digest_algorithm": default, "digest": digest.to_uppercase()}),
        ] {
            let r = s.post_resp(SIGN, admin(&s), &body).unwrap();
            assert_eq!(r.status, 200, "{body}: {}", r.text);
            assert!(
                r.header("content-type")
                    .unwrap_or_default()
                    .starts_with("application/json")
            );
            let v = r.json().unwrap();
            assert_eq!(v["digest_algorithm"], default, "{body}");
            assert_eq!(
                v["digest"],
                digest.as_str(),
                "digest is echoed in lowercase hex"
            );
            let sig = b64decode(v["signature"].as_str().unwrap()).unwrap();
            assert!(verify(&dir, alg, default, &pem, &file, &sig), "{body}");
        }
    }
}

// ---- rotation, disable/enable -----------------------------------------------------------------

#[test]
fn rotation_signs_with_the_new_version_and_old_signatures_keep_verifying() {
    let s = Server::start().unwrap();
    let dir = s.scratch().unwrap();
    s.create_key("rot", "ecdsa-p256").unwrap();
    let (pem1, fp1) = s.public_key("rot", 1).unwrap();

    let (file1, _, sig1, resp1) = sign_random_file(&s, &dir, "rot", "sha256");
    assert_eq!(resp1["key_version"], 1);
    assert_eq!(resp1["public_key_fingerprint"], fp1.as_str());

    let info = s.key_action("rot", "rotate").unwrap();
    assert_eq!(info["current_version"], 2, "{info}");
    assert_eq!(info["versions"].as_array().unwrap().len(), 2, "{info}");
    let (pem1_after, fp1_after) = s.public_key("rot", 1).unwrap();
    assert_eq!(pem1_after, pem1, "rotation changed version 1's public key");
    assert_eq!(fp1_after, fp1);
    let (pem2, fp2) = s.public_key("rot", 2).unwrap();
    assert_ne!(fp2, fp1);
    assert_ne!(pem2, pem1);
    assert_eq!(spki_fingerprint(&pem2).unwrap(), fp2);

    let (file2, _, sig2, resp2) = sign_random_file(&s, &dir, "rot", "sha256");
    assert_eq!(resp2["key_version"], 2);
    assert_eq!(resp2["public_key_fingerprint"], fp2.as_str());

    assert!(verify(&dir, "ecdsa-p256", "sha256", &pem1, &file1, &sig1));
    assert!(verify(&dir, "ecdsa-p256", "sha256", &pem2, &file2, &sig2));
    assert!(
        !verify(&dir, "ecdsa-p256", "sha256", &pem2, &file1, &sig1),
        "a v1 signature verified with v2's key"
    );
    assert!(
        !verify(&dir, "ecdsa-p256", "sha256", &pem1, &file2, &sig2),
        "a v2 signature verified with v1's key"
    );

    // A second rotation: version 3 signs, versions 1 and 2 are still listed.
    let info = s.key_action("rot", "rotate").unwrap();
    assert_eq!(info["current_version"], 3);
    let versions: Vec<u64> = info["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2, 3], "versions are listed oldest first");
    let (_, _, _, resp3) = sign_random_file(&s, &dir, "rot", "sha256");
    assert_eq!(resp3["key_version"], 3);

    let rotations = s.audit_events("key_rotate", "allowed").unwrap();
    assert_eq!(rotations.len(), 2);
    assert_eq!(rotations[0]["key"]["version"], 2);
    assert_eq!(rotations[1]["key"]["version"], 3);

    let r = s
        .request("POST", "/api/v1/keys/missing/rotate", admin(&s), None, None)
        .unwrap();
    r.expect_problem(404, "key_not_found").unwrap();
}

#[test]
fn disabled_key_refuses_to_sign_until_enabled() {
    let s = Server::start().unwrap();
    let dir = s.scratch().unwrap();
    s.create_key("dk", "ed25519").unwrap();
    let pem = pem_of(&s, "dk", 1);
    let digest = digest_hex("sha256", b"artifact").unwrap();

    let info = s.key_action("dk", "disable").unwrap();
    assert_eq!(info["state"], "disabled");
    // Idempotent, and the public key stays readable for verifiers.
    assert_eq!(s.key_action("dk", "disable").unwrap()["state"], "disabled");
    assert_eq!(s.key_info("dk").unwrap()["state"], "disabled");
    assert_eq!(pem_of(&s, "dk", 1), pem);

    let before = allowed_signs(&s);
    let r = s
        .post_resp(SIGN, admin(&s), &json!({"key": "dk", "digest": digest}))
        .unwrap();
    r.expect_problem(409, "key_disabled").unwrap();
    let r = s
        .post_resp(
            BATCH,
            admin(&s),
            &json!({"key": "dk", "items": [{"digest": digest}, {"digest": digest}]}),
        )
        .unwrap();
    r.expect_problem(409, "key_disabled").unwrap();
    assert_eq!(allowed_signs(&s), before, "a disabled key signed");
    let denied = s.audit_events("sign", "denied").unwrap();
    assert!(
        denied.len() >= 3
            && denied
                .iter()
                .all(|e| e["outcome"]["code"] == "key_disabled" && e["key"]["name"] == "dk"),
        "{denied:?}"
    );

    let info = s.key_action("dk", "enable").unwrap();
    assert_eq!(info["state"], "active");
    let (file, _, sig, resp) = sign_random_file(&s, &dir, "dk", "sha256");
    assert_eq!(resp["key_version"], 1);
    assert!(verify(&dir, "ed25519", "sha256", &pem, &file, &sig));
    assert_eq!(s.audit_events("key_disable", "allowed").unwrap().len(), 2);
    assert_eq!(s.audit_events("key_enable", "allowed").unwrap().len(), 1);
}

// ---- bad input: clear 4xx problems that change nothing -----------------------------------------

#[test]
fn bad_sign_requests_are_problems_and_change_nothing() {
    let s = Server::start().unwrap();
    s.create_key("ed", "ed25519").unwrap();
    s.create_key("p256", "ecdsa-p256").unwrap();
    let keys_before = s.get(KEYS, admin(&s)).unwrap();
    let signs_before = allowed_signs(&s);
    let good = digest_hex("sha256", b"good").unwrap();

    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"key": "nope", "digest": good}), 404, "key_not_found"),
        (
            json!({"key": "ed", "digest": &good[..62]}),
            400,
            "digest_length_mismatch",
        ),
        (
            json!({"key": "ed", "digest": format!("{good}00")}),
            400,
            "digest_length_mismatch",
        ),
        (
            json!({"key": "ed", "digest_algorithm": "sha512", "digest": good}),
            400,
            "digest_length_mismatch",
        ),
        (
            json!({"key": "ed", "digest": ""}),
            400,
            "digest_length_mismatch",
        ),
        (
            json!({"key": "ed", "digest": "zz".repeat(32)}),
            400,
            "invalid_digest",
        ),
        (
            json!({"key": "ed", "digest": format!("{}g", &good[..63])}),
            400,
            "invalid_digest",
        ),
        (
            json!({"key": "p256", "digest_algorithm": "sha512", "digest": digest_hex("sha512", b"x").unwrap()}),
            400,
            "digest_algorithm_not_allowed",
        ),
        (
            json!({"key": "p256", "digest_algorithm": "sha384", "digest": digest_hex("sha384", b"x").unwrap()}),
            400,
            "digest_algorithm_not_allowed",
        ),
        (
            json!({"key": "ed", "digest_algorithm": "md5", "digest": "00".repeat(16)}),
            400,
            "unsupported_digest_algorithm",
        ),
        (
            json!({"key": "ed", "digest_algorithm": "sha1", "digest": "00".repeat(20)}),
            400,
            "unsupported_digest_algorithm",
        ),
        (
            json!({"key": "ed", "digest": good, "surprise": true}),
            400,
            "invalid_request",
        ),
        (
            json!({"key": "ed", "digest": good, "build": {"repository": "r", "branch": "main"}}),
            400,
            "invalid_request",
        ),
        (json!({"key": "ed"}), 400, "invalid_request"),
        (json!({"key": "ed", "digest": 5}), 400, "invalid_request"),
        (json!(["ed", good]), 400, "invalid_request"),
        (
            json!({"key": "ed", "digest": good, "reason": "line\nbreak"}),
            400,
            "invalid_request",
        ),
        (
            json!({"key": "ed", "digest": good, "artifact_name": "x".repeat(1025)}),
            400,
            "invalid_request",
        ),
    ];
    for (body, status, code) in &cases {
        let r = s.post_resp(SIGN, admin(&s), body).unwrap();
        r.expect_problem(*status, code)
            .unwrap_or_else(|e| panic!("{body}: {e:#}"));
    }

    // Malformed bodies and media types.
    let raw: Vec<(Option<&str>, &[u8], u16, &str)> = vec![
        (
            Some("application/json"),
            b"{\"key\": \"ed\", ",
            400,
            "invalid_request",
        ),
        (Some("application/json"), b"", 400, "invalid_request"),
        (
            Some("application/json"),
            b"\xff\xfe",
            400,
            "invalid_request",
        ),
        (None, b"{\"key\":\"ed\"}", 415, "unsupported_media_type"),
        (
            Some("text/plain"),
            b"{\"key\":\"ed\"}",
            415,
            "unsupported_media_type",
        ),
    ];
    for (ct, body, status, code) in raw {
        let r = s
            .request("POST", SIGN, admin(&s), ct, Some(body.to_vec()))
            .unwrap();
        r.expect_problem(status, code)
            .unwrap_or_else(|e| panic!("{ct:?} {body:?}: {e:#}"));
    }

    // Batches: empty, and all-or-nothing when one item is bad.
    let r = s
        .post_resp(BATCH, admin(&s), &json!({"key": "ed", "items": []}))
        .unwrap();
    r.expect_problem(400, "invalid_request").unwrap();
    let r = s
        .post_resp(
            BATCH,
            admin(&s),
            &json!({"key": "ed", "items": [{"digest": good}, {"digest": "abcd"}, {"digest": good}]}),
        )
        .unwrap();
    r.expect_problem(400, "digest_length_mismatch").unwrap();
    let r = s
        .post_resp(
            BATCH,
            admin(&s),
            &json!({"key": "p256", "digest_algorithm": "sha512",
                    "items": [{"digest": digest_hex("sha512", b"a").unwrap()}]}),
        )
        .unwrap();
    r.expect_problem(400, "digest_algorithm_not_allowed")
        .unwrap();

    assert_eq!(s.get(KEYS, admin(&s)).unwrap(), keys_before, "keys changed");
    assert_eq!(allowed_signs(&s), signs_before, "a bad request was signed");
    // The server is still fine.
    s.sign("ed", "sha256", &good).unwrap();
}

#[test]
fn bad_key_token_and_audit_requests_are_problems_and_change_nothing() {
    let s = Server::start().unwrap();
    let original = s.create_key("dup", "ecdsa-p256").unwrap();

    let r = s
        .post_resp(
            KEYS,
            admin(&s),
            &json!({"name": "weak", "algorithm": "rsa-1024"}),
        )
        .unwrap();
    r.expect_problem(400, "unsupported_algorithm").unwrap();
    let r = s
        .post_resp(
            KEYS,
            admin(&s),
            &json!({"name": "dup", "algorithm": "ed25519"}),
        )
        .unwrap();
    r.expect_problem(409, "key_exists").unwrap();
    for bad in [
        "a/b",
        "",
        "-lead",
        "sp ace",
        "ünï",
        &"n".repeat(65),
        "../etc",
    ] {
        let r = s
            .post_resp(
                KEYS,
                admin(&s),
                &json!({"name": bad, "algorithm": "ed25519"}),
            )
            .unwrap();
        r.expect_problem(400, "invalid_name")
            .unwrap_or_else(|e| panic!("name {bad:?}: {e:#}"));
    }
    let r = s
        .post_resp(
            KEYS,
            admin(&s),
            &json!({"name": "x", "algorithm": "ed25519", "extra": 1}),
        )
        .unwrap();
    r.expect_problem(400, "invalid_request").unwrap();
    let r = s
        .request("POST", KEYS, admin(&s), None, Some(b"{}".to_vec()))
        .unwrap();
    r.expect_problem(415, "unsupported_media_type").unwrap();

    assert_eq!(s.key_names().unwrap(), ["dup"]);
    assert_eq!(
        s.key_info("dup").unwrap(),
        original,
        "the existing key changed"
    );
    let r = s.get_resp("/api/v1/keys/weak", admin(&s)).unwrap();
    r.expect_problem(404, "key_not_found").unwrap();
    for action in ["rotate", "disable", "enable"] {
        let r = s
            .request(
                "POST",
                &format!("/api/v1/keys/nope/{action}"),
                admin(&s),
                None,
                None,
            )
            .unwrap();
        r.expect_problem(404, "key_not_found").unwrap();
    }

    // Tokens.
    let tokens_before = s.get(TOKENS, admin(&s)).unwrap();
    let past = rfc3339_from_now(-60).unwrap();
    let cases = [
        (json!({"name": "ci", "expires_at": past}), "invalid_request"),
        (json!({"name": "ci", "role": "root"}), "invalid_request"),
        (
            json!({"name": "ci", "expires_at": "tomorrow"}),
            "invalid_request",
        ),
        (json!({"name": "a/b"}), "invalid_name"),
        (json!({"name": "ci", "scopes": []}), "invalid_request"),
    ];
    for (body, code) in cases {
        let r = s.post_resp(TOKENS, admin(&s), &body).unwrap();
        r.expect_problem(400, code)
            .unwrap_or_else(|e| panic!("{body}: {e:#}"));
    }
    let r = s
        .request(
            "POST",
            "/api/v1/tokens/0123456789abcdef/revoke",
            admin(&s),
            None,
            None,
        )
        .unwrap();
    r.expect_problem(404, "token_not_found").unwrap();
    assert_eq!(s.get(TOKENS, admin(&s)).unwrap(), tokens_before);

    // Audit queries.
    for q in ["?limit=abc", "?action=explode", "?after=-1", "?bogus=1"] {
        let r = s.get_resp(&format!("/api/v1/audit{q}"), admin(&s)).unwrap();
        r.expect_problem(400, "invalid_request")
            .unwrap_or_else(|e| panic!("{q}: {e:#}"));
    }

    // Routes.
    for path in ["/nope", "/api/v1/nope", "/api/v2/keys", "/api/v1/keys/a/b"] {
        let r = s.get_resp(path, admin(&s)).unwrap();
        r.expect_problem(404, "not_found")
            .unwrap_or_else(|e| panic!("{path}: {e:#}"));
    }
    let r = s.get_resp(SIGN, admin(&s)).unwrap();
    r.expect_problem(405, "method_not_allowed").unwrap();
    let r = s
        .request("DELETE", "/api/v1/keys/dup", admin(&s), None, None)
        .unwrap();
    r.expect_problem(405, "method_not_allowed").unwrap();
    assert_eq!(s.key_names().unwrap(), ["dup"]);
}

#[test]
fn oversized_bodies_and_batches_are_refused() {
    let s = Server::start().unwrap();
    s.create_key("k", "ed25519").unwrap();
    let signs_before = allowed_signs(&s);
    let good = digest_hex("sha256", b"x").unwrap();

    // Just over 1 MiB of otherwise valid JSON.
    let body = json!({"key": "k", "digest": good, "reason": "r".repeat(1024 * 1024 + 16)});
    let r = s.post_resp(SIGN, admin(&s), &body).unwrap();
    r.expect_problem(413, "payload_too_large").unwrap();
    let body = json!({"name": "n".repeat(1024 * 1024 + 16), "algorithm": "ed25519"});
    let r = s.post_resp(KEYS, admin(&s), &body).unwrap();
    r.expect_problem(413, "payload_too_large").unwrap();

    let items: Vec<Value> = (0..1001).map(|_| json!({"digest": good})).collect();
    let r = s
        .post_resp(BATCH, admin(&s), &json!({"key": "k", "items": items}))
        .unwrap();
    r.expect_problem(400, "batch_too_large").unwrap();
    assert_eq!(allowed_signs(&s), signs_before);
    assert_eq!(s.key_names().unwrap(), ["k"]);

    // Exactly the limit is fine.
    let items: Vec<Value> = (0..1000).map(|_| json!({"digest": good})).collect();
    let r = s
        .post_resp(BATCH, admin(&s), &json!({"key": "k", "items": items}))
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json().unwrap()["signatures"].as_array().unwrap().len(),
        1000
    );
    assert_eq!(allowed_signs(&s), signs_before + 1000);
}

// ---- authentication and authorization ----------------------------------------------------------

#[test]
fn missing_garbage_wrong_and_revoked_tokens_are_401() {
    let s = Server::start().unwrap();
    s.create_key("k", "ed25519").unwrap();
    let (signer_id, signer) = s.create_token("ci", "signer", None).unwrap();
    let good = digest_hex("sha256", b"x").unwrap();
    let signs_before = allowed_signs(&s);

    let admin_id = token_id_of(s.admin_token());
    let wrong_secret = format!("signet_{admin_id}_{}", "ab".repeat(32));
    let requests: Vec<(&str, &str, Option<Value>)> = vec![
        ("GET", KEYS, None),
        ("GET", "/api/v1/keys/k", None),
        (
            "POST",
            KEYS,
            Some(json!({"name": "evil", "algorithm": "ed25519"})),
        ),
        ("POST", SIGN, Some(json!({"key": "k", "digest": good}))),
        (
            "POST",
            BATCH,
            Some(json!({"key": "k", "items": [{"digest": good}]})),
        ),
        ("POST", "/api/v1/keys/k/disable", None),
        ("GET", TOKENS, None),
        (
            "POST",
            TOKENS,
            Some(json!({"name": "evil", "role": "admin"})),
        ),
        ("GET", "/api/v1/audit", None),
    ];
    let send = |method: &str, path: &str, auth: Option<&str>, body: &Option<Value>| {
        let mut req = s.client().request(method.parse().unwrap(), s.url(path));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(serde_json::to_vec(b).unwrap());
        }
        let resp = req.send().unwrap();
        Response {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            text: resp.text().unwrap(),
        }
    };
    let bad_auth: Vec<Option<String>> = vec![
        None,
        Some(String::new()),
        Some("Bearer".into()),
        Some("Bearer ".into()),
        Some("Bearer garbage".into()),
        Some(format!("Basic {}", s.admin_token())),
        Some(format!("Bearer {wrong_secret}")),
        Some(format!(
            "Bearer signet_{}_{}",
            "00".repeat(8),
            "11".repeat(32)
        )),
        Some(format!("Bearer {}x", s.admin_token())),
    ];
    for (method, path, body) in &requests {
        for auth in &bad_auth {
            let r = send(method, path, auth.as_deref(), body);
            r.expect_problem(401, "unauthenticated")
                .unwrap_or_else(|e| panic!("{method} {path} with {auth:?}: {e:#}"));
        }
    }

    // Revocation takes effect at once.
    assert_eq!(s.get(KEYS, Some(&signer)).unwrap().0, 200);
    s.sign_as(&signer, "k", "sha256", &good).unwrap();
    s.revoke_token(&signer_id).unwrap();
    for (method, path, body) in &requests {
        let r = send(method, path, Some(&format!("Bearer {signer}")), body);
        r.expect_problem(401, "unauthenticated")
            .unwrap_or_else(|e| panic!("revoked: {method} {path}: {e:#}"));
    }
    let listed = s.get(TOKENS, admin(&s)).unwrap().1;
    let rec = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == signer_id.as_str())
        .unwrap();
    assert!(rec["revoked_at"].is_string(), "{rec}");

    // Nothing happened: one signature (the signer's, before revocation), no new key, no new token.
    assert_eq!(allowed_signs(&s), signs_before + 1);
    assert_eq!(s.key_names().unwrap(), ["k"]);
    assert_eq!(s.key_info("k").unwrap()["state"], "active");
    assert_eq!(listed["tokens"].as_array().unwrap().len(), 2);

    // Failures are audited without the presented secret.
    let denied = s.audit_events("authenticate", "denied").unwrap();
    assert!(
        denied.len() >= requests.len() * bad_auth.len(),
        "{}",
        denied.len()
    );
    assert!(
        denied
            .iter()
            .all(|e| e["outcome"]["code"] == "unauthenticated")
    );
    assert!(
        denied.iter().any(|e| e["token_id"] == admin_id.as_str()),
        "a wrong-secret attempt is not attributed to its token id"
    );
    let raw = s.audit_raw().unwrap();
    assert!(
        !raw.contains(&"ab".repeat(32)),
        "audit contains a presented secret"
    );
    assert!(!raw.contains(&token_secret_part(&signer).unwrap()));

    // Public endpoints need no token.
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/v1/status",
        "/api/v1/openapi.json",
    ] {
        assert_eq!(s.get_resp(path, None).unwrap().status, 200, "{path}");
    }
}

#[test]
fn expired_token_stops_authenticating() {
    let s = Server::start().unwrap();
    s.create_key("k", "ed25519").unwrap();
    let expires = rfc3339_from_now(3).unwrap();
    let (_, token) = s.create_token("short", "signer", Some(&expires)).unwrap();
    let listed = s.get(TOKENS, admin(&s)).unwrap().1;
    assert!(
        listed["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "short" && t["expires_at"].is_string()),
        "{listed}"
    );
    let good = digest_hex("sha256", b"x").unwrap();
    s.sign_as(&token, "k", "sha256", &good).unwrap();

    std::thread::sleep(Duration::from_secs(4));
    let r = s.get_resp(KEYS, Some(&token)).unwrap();
    r.expect_problem(401, "unauthenticated").unwrap();
    let r = s
        .post_resp(SIGN, Some(&token), &json!({"key": "k", "digest": good}))
        .unwrap();
    r.expect_problem(401, "unauthenticated").unwrap();
    let denied = s.audit_events("authenticate", "denied").unwrap();
    assert!(
        denied.iter().any(|e| e["outcome"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("expired")),
        "{denied:?}"
    );
}

#[test]
fn signer_may_sign_and_read_but_not_administer() {
    let s = Server::start().unwrap();
    let dir = s.scratch().unwrap();
    s.create_key("k", "rsa-3072-pss").unwrap();
    let (_, signer) = s.create_token("ci-signer", "signer", None).unwrap();
    let (victim_id, _) = s.create_token("other", "signer", None).unwrap();
    let tok = Some(signer.as_str());

    // Allowed.
    assert_eq!(s.get(KEYS, tok).unwrap().0, 200);
    assert_eq!(s.get("/api/v1/keys/k", tok).unwrap().0, 200);
    let (file, data) = random_file(&dir).unwrap();
    let digest = digest_hex("sha384", &data).unwrap();
    let resp = s.sign_as(&signer, "k", "sha384", &digest).unwrap();
    let sig = b64decode(resp["signature"].as_str().unwrap()).unwrap();
    assert!(verify(
        &dir,
        "rsa-3072-pss",
        "sha384",
        &pem_of(&s, "k", 1),
        &file,
        &sig
    ));
    let (st, v) = s
        .post_json(
            BATCH,
            tok,
            &json!({"key": "k", "digest_algorithm": "sha384", "items": [{"digest": digest}]}),
        )
        .unwrap();
    assert_eq!(st, 200, "{v}");

    // Denied.
    let tokens_before = s.get(TOKENS, admin(&s)).unwrap();
    let key_before = s.key_info("k").unwrap();
    let denied: Vec<(&str, String, Option<Value>)> = vec![
        (
            "POST",
            KEYS.into(),
            Some(json!({"name": "mine", "algorithm": "ed25519"})),
        ),
        ("POST", "/api/v1/keys/k/rotate".into(), None),
        ("POST", "/api/v1/keys/k/disable".into(), None),
        ("POST", "/api/v1/keys/k/enable".into(), None),
        (
            "POST",
            TOKENS.into(),
            Some(json!({"name": "escalate", "role": "admin"})),
        ),
        ("GET", TOKENS.into(), None),
        ("POST", format!("/api/v1/tokens/{victim_id}/revoke"), None),
        ("GET", "/api/v1/audit".into(), None),
    ];
    for (method, path, body) in &denied {
        let r = match body {
            Some(b) => s
                .request(
                    method,
                    path,
                    tok,
                    Some("application/json"),
                    Some(serde_json::to_vec(b).unwrap()),
                )
                .unwrap(),
            None => s.request(method, path, tok, None, None).unwrap(),
        };
        r.expect_problem(403, "policy_denied")
            .unwrap_or_else(|e| panic!("signer {method} {path}: {e:#}"));
    }
    assert_eq!(s.key_names().unwrap(), ["k"]);
    assert_eq!(s.key_info("k").unwrap(), key_before);
    assert_eq!(s.get(TOKENS, admin(&s)).unwrap(), tokens_before);

    // Denied administrative attempts are audited against the signer.
    let events: Vec<Value> = s
        .audit()
        .unwrap()
        .into_iter()
        .map(|r| r["event"].clone())
        .filter(|e| e["outcome"]["result"] == "denied" && e["actor"]["name"] == "ci-signer")
        .collect();
    for action in [
        "key_create",
        "key_rotate",
        "key_disable",
        "key_enable",
        "token_create",
        "token_revoke",
    ] {
        assert!(
            events
                .iter()
                .any(|e| e["action"] == action && e["outcome"]["code"] == "policy_denied"),
            "no denied `{action}` by the signer in the audit log: {events:?}"
        );
    }

    // An admin token made through the API administers.
    let (_, admin2) = s.create_token("ops", "admin", None).unwrap();
    let (st, v) = s
        .post_json(
            KEYS,
            Some(&admin2),
            &json!({"name": "k2", "algorithm": "ed25519"}),
        )
        .unwrap();
    assert_eq!(st, 201, "{v}");
    assert_eq!(s.get("/api/v1/audit", Some(&admin2)).unwrap().0, 200);
}

// ---- batch signing -----------------------------------------------------------------------------

#[test]
fn batch_of_50_all_verify_in_order() {
    let s = Server::start().unwrap();
    let dir = s.scratch().unwrap();
    s.create_key("b", "ecdsa-p384").unwrap();
    let pem = pem_of(&s, "b", 1);
    let mut files = Vec::new();
    let mut items = Vec::new();
    for i in 0..50 {
        let (file, data) = random_file(&dir).unwrap();
        let digest = digest_hex("sha384", &data).unwrap();
        items.push(json!({"digest": digest, "artifact_name": format!("file-{i}.bin"), "artifact_kind": "file"}));
        files.push((file, digest));
    }
    let (st, v) = s
        .post_json(
            BATCH,
            admin(&s),
            &json!({"key": "b", "digest_algorithm": "sha384", "items": items, "reason": "release 1.2.3",
                    "build": {"repository": "git.example/app", "commit": "abc123", "pipeline_id": "77"}}),
        )
        .unwrap();
    assert_eq!(st, 200, "{v}");
    let sigs = v["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 50);
    let mut last_index = None;
    for ((file, digest), sig) in files.iter().zip(sigs) {
        assert_eq!(
            sig["digest"],
            digest.as_str(),
            "signatures are out of order"
        );
        assert_eq!(sig["key_version"], 1);
        assert_eq!(sig["digest_algorithm"], "sha384");
        let idx = sig["audit_index"].as_u64().unwrap();
        assert!(
            last_index.is_none_or(|l| idx > l),
            "audit indices not increasing"
        );
        last_index = Some(idx);
        let bytes = b64decode(sig["signature"].as_str().unwrap()).unwrap();
        assert!(verify(&dir, "ecdsa-p384", "sha384", &pem, file, &bytes));
    }
    // A signature of item 0 is not one of item 1.
    let sig0 = b64decode(sigs[0]["signature"].as_str().unwrap()).unwrap();
    assert!(!verify(
        &dir,
        "ecdsa-p384",
        "sha384",
        &pem,
        &files[1].0,
        &sig0
    ));

    // Each item has its own audit entry with its own artifact name and the shared context.
    let records = s.audit().unwrap();
    for (i, sig) in sigs.iter().enumerate() {
        let rec = records
            .iter()
            .find(|r| r["index"] == sig["audit_index"])
            .unwrap();
        let e = &rec["event"];
        assert_eq!(e["action"], "sign");
        assert_eq!(e["outcome"]["result"], "allowed");
        assert_eq!(e["digest"]["value"], sig["digest"]);
        assert_eq!(
            e["context"]["artifact_name"],
            format!("file-{i}.bin").as_str()
        );
        assert_eq!(e["context"]["reason"], "release 1.2.3");
        assert_eq!(e["context"]["build"]["commit"], "abc123");
    }
}

// ---- audit ---------------------------------------------------------------------------------------

#[test]
fn audit_records_every_operation_and_no_secret() {
    let s = Server::start().unwrap();
    let admin_id = token_id_of(s.admin_token());
    s.create_key("app", "ed25519").unwrap();
    let digest = digest_hex("sha256", b"app-1.0.tar.gz").unwrap();
    let (st, signed) = s
        .post_json(
            SIGN,
            admin(&s),
            &json!({
                "key": "app", "digest": digest, "artifact_name": "app-1.0.tar.gz",
                "artifact_kind": "file", "reason": "release 1.0",
                "build": {"repository": "https://git.example/app", "commit": "0123abcd", "pipeline_id": "build-42"}
            }),
        )
        .unwrap();
    assert_eq!(st, 200, "{signed}");
    s.key_action("app", "disable").unwrap();
    let r = s
        .post_resp(SIGN, admin(&s), &json!({"key": "app", "digest": digest}))
        .unwrap();
    r.expect_problem(409, "key_disabled").unwrap();
    let (tok_id, tok) = s.create_token("ci", "signer", None).unwrap();
    s.revoke_token(&tok_id).unwrap();
    let garbage_secret = "cd".repeat(32);
    let r = s
        .get_resp(KEYS, Some(&format!("signet_{tok_id}_{garbage_secret}")))
        .unwrap();
    r.expect_problem(401, "unauthenticated").unwrap();

    let records = s.audit().unwrap();
    let indices: Vec<u64> = records
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert!(indices.windows(2).all(|w| w[0] < w[1]), "{indices:?}");
    let events: Vec<&Value> = records.iter().map(|r| &r["event"]).collect();
    let find = |action: &str, result: &str| -> Vec<&Value> {
        events
            .iter()
            .copied()
            .filter(|e| e["action"] == action && e["outcome"]["result"] == result)
            .collect()
    };

    // The bootstrap admin token, made by init.
    let init_tokens = find("token_create", "allowed");
    assert!(
        init_tokens
            .iter()
            .any(|e| e["actor"]["id"] == "init" && e["token_id"] == admin_id.as_str()),
        "{init_tokens:?}"
    );

    let created = find("key_create", "allowed");
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["key"]["name"], "app");
    assert_eq!(created[0]["key"]["algorithm"], "ed25519");
    assert_eq!(created[0]["actor"]["id"], admin_id.as_str());
    assert_eq!(created[0]["actor"]["role"], "admin");

    let signs = find("sign", "allowed");
    assert_eq!(signs.len(), 1);
    let e = signs[0];
    let rec = records
        .iter()
        .find(|r| r["index"] == signed["audit_index"])
        .expect("the signature's audit_index names a record");
    assert_eq!(&rec["event"], e);
    assert_eq!(e["key"]["name"], "app");
    assert_eq!(e["key"]["version"], 1);
    assert_eq!(e["key"]["algorithm"], "ed25519");
    assert_eq!(e["digest"]["algorithm"], "sha256");
    assert_eq!(e["digest"]["value"], digest.as_str());
    assert_eq!(e["context"]["artifact_name"], "app-1.0.tar.gz");
    assert_eq!(e["context"]["artifact_kind"], "file");
    assert_eq!(e["context"]["reason"], "release 1.0");
    assert_eq!(
        e["context"]["build"]["repository"],
        "https://git.example/app"
    );
    assert_eq!(e["context"]["build"]["commit"], "0123abcd");
    assert_eq!(e["context"]["build"]["pipeline_id"], "build-42");
    assert_eq!(e["actor"]["id"], admin_id.as_str());
    assert_eq!(e["client_addr"], "127.0.0.1");
    assert_eq!(e["node"], "signetd");
    assert!(e["time"].is_string());

    let denied = find("sign", "denied");
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0]["outcome"]["code"], "key_disabled");
    assert!(denied[0]["outcome"]["reason"].is_string());
    assert_eq!(denied[0]["digest"]["value"], digest.as_str());

    assert_eq!(find("key_disable", "allowed").len(), 1);
    let tc = find("token_create", "allowed");
    assert!(
        tc.iter().any(|e| e["token_id"] == tok_id.as_str()),
        "{tc:?}"
    );
    let tr = find("token_revoke", "allowed");
    assert_eq!(tr.len(), 1);
    assert_eq!(tr[0]["token_id"], tok_id.as_str());
    let auth = find("authenticate", "denied");
    assert_eq!(auth.len(), 1, "{auth:?}");
    assert_eq!(auth[0]["outcome"]["code"], "unauthenticated");
    assert_eq!(auth[0]["actor"]["kind"], "anonymous");
    assert_eq!(auth[0]["token_id"], tok_id.as_str());

    // No secret anywhere in the log.
    let raw = s.audit_raw().unwrap();
    for secret in [
        token_secret_part(s.admin_token()).unwrap(),
        token_secret_part(&tok).unwrap(),
        garbage_secret,
    ] {
        assert!(!raw.contains(&secret), "audit log contains a token secret");
    }

    // Filters.
    let q = |query: &str| -> Vec<Value> {
        let (st, v) = s.get(&format!("/api/v1/audit{query}"), admin(&s)).unwrap();
        assert_eq!(st, 200, "{query}: {v}");
        v["records"].as_array().unwrap().clone()
    };
    let only_signs = q("?action=sign&limit=1000");
    assert_eq!(only_signs.len(), 2);
    assert!(only_signs.iter().all(|r| r["event"]["action"] == "sign"));
    let by_key = q("?key=app&limit=1000");
    assert!(!by_key.is_empty() && by_key.iter().all(|r| r["event"]["key"]["name"] == "app"));
    let by_actor = q(&format!("?actor={admin_id}&limit=1000"));
    assert!(
        !by_actor.is_empty()
            && by_actor
                .iter()
                .all(|r| r["event"]["actor"]["id"] == admin_id.as_str())
    );
    let limited = q("?limit=2");
    assert_eq!(limited.len(), 2);
    assert_eq!(limited[0]["index"], records[0]["index"]);
    let after = q(&format!("?after={}&limit=1000", indices[2]));
    assert_eq!(after.len(), records.len() - 3);
    assert!(
        after
            .iter()
            .all(|r| r["index"].as_u64().unwrap() > indices[2])
    );
}

// ---- persistence, crashes and secrets at rest ----------------------------------------------------

#[test]
fn restart_keeps_keys_signatures_and_audit() {
    let mut s = Server::start().unwrap();
    let dir = s.scratch().unwrap();
    let algs = [
        ("r-ed", "ed25519", "sha256"),
        ("r-p384", "ecdsa-p384", "sha384"),
        ("r-rsa", "rsa-3072-pss", "sha512"),
    ];
    let mut signed = Vec::new();
    for (name, alg, d) in algs {
        s.create_key(name, alg).unwrap();
        let pem = pem_of(&s, name, 1);
        let (file, _, sig, _) = sign_random_file(&s, &dir, name, d);
        signed.push((name, alg, d, pem, file, sig));
    }
    s.key_action("r-ed", "rotate").unwrap();
    let keys_before = s.get(KEYS, admin(&s)).unwrap().1;
    let audit_before = s.audit().unwrap();

    // The port may differ after the restart; the harness follows it.
    s.restart().unwrap();

    assert_eq!(
        s.get(KEYS, admin(&s)).unwrap().1,
        keys_before,
        "keys changed across a restart"
    );
    for (name, alg, d, pem, file, sig) in &signed {
        let fetched = pem_of(&s, name, 1);
        assert_eq!(&fetched, pem);
        assert!(
            verify(&dir, alg, d, &fetched, file, sig),
            "{name}: old signature no longer verifies"
        );
    }
    for (name, alg, d) in algs {
        let current = s.key_info(name).unwrap()["current_version"]
            .as_u64()
            .unwrap();
        let (file, _, sig, resp) = sign_random_file(&s, &dir, name, d);
        assert_eq!(resp["key_version"], current);
        assert!(
            verify(&dir, alg, d, &pem_of(&s, name, current), &file, &sig),
            "{name}: new signature"
        );
    }
    let audit_after = s.audit().unwrap();
    assert!(audit_after.len() > audit_before.len());
    assert_eq!(
        &audit_after[..audit_before.len()],
        &audit_before[..],
        "audit history changed across a restart"
    );
    let last_before = audit_before.last().unwrap()["index"].as_u64().unwrap();
    assert!(audit_after[audit_before.len()]["index"].as_u64().unwrap() > last_before);
}

#[test]
fn sigkill_loses_no_audit_entry_of_a_returned_signature() {
    let mut s = Server::start().unwrap();
    s.create_key("crash", "ed25519").unwrap();
    let mut returned = Vec::new();
    for i in 0..20u32 {
        let digest = digest_hex("sha256", &i.to_be_bytes()).unwrap();
        let v = s.sign("crash", "sha256", &digest).unwrap();
        returned.push((v["audit_index"].as_u64().unwrap(), digest));
    }
    let items: Vec<Value> = (100..110u32)
        .map(|i| json!({"digest": digest_hex("sha256", &i.to_be_bytes()).unwrap()}))
        .collect();
    let (st, v) = s
        .post_json(BATCH, admin(&s), &json!({"key": "crash", "items": items}))
        .unwrap();
    assert_eq!(st, 200, "{v}");
    for sig in v["signatures"].as_array().unwrap() {
        returned.push((
            sig["audit_index"].as_u64().unwrap(),
            sig["digest"].as_str().unwrap().to_owned(),
        ));
    }

    s.kill9().unwrap();
    s.start_serving().unwrap();

    let records = s.audit().unwrap();
    for (index, digest) in &returned {
        let rec = records
            .iter()
            .find(|r| r["index"].as_u64() == Some(*index))
            .unwrap_or_else(|| panic!("audit entry {index} of a returned signature was lost"));
        assert_eq!(rec["event"]["action"], "sign");
        assert_eq!(rec["event"]["outcome"]["result"], "allowed");
        assert_eq!(rec["event"]["digest"]["value"], digest.as_str());
    }
    assert_eq!(s.key_names().unwrap(), ["crash"]);
    s.sign("crash", "sha256", &returned[0].1).unwrap();
}

#[test]
fn no_secret_at_rest_or_in_logs() {
    let mut s = Server::start_with(ServeOptions {
        env: vec![("SIGNET_LOG".into(), "debug".into())],
        ..ServeOptions::default()
    })
    .unwrap();
    for (name, alg) in [
        ("s-ed", "ed25519"),
        ("s-p256", "ecdsa-p256"),
        ("s-rsa", "rsa-3072-pkcs1"),
    ] {
        s.create_key(name, alg).unwrap();
        s.sign(
            name,
            "sha256",
            &digest_hex("sha256", name.as_bytes()).unwrap(),
        )
        .unwrap();
    }
    s.key_action("s-ed", "rotate").unwrap();
    let (id1, tok1) = s.create_token("ci", "signer", None).unwrap();
    let (_, tok2) = s.create_token("ops", "admin", None).unwrap();
    s.sign_as(&tok1, "s-ed", "sha256", &"00".repeat(32))
        .unwrap();
    s.revoke_token(&id1).unwrap();
    let presented = "ef".repeat(32);
    let r = s
        .get_resp(KEYS, Some(&format!("signet_{id1}_{presented}")))
        .unwrap();
    assert_eq!(r.status, 401);

    let mut secrets: Vec<(String, String)> = Vec::new();
    for (label, t) in [
        ("admin", s.admin_token().to_owned()),
        ("signer", tok1.clone()),
        ("admin2", tok2.clone()),
    ] {
        secrets.push((format!("{label} token"), t.clone()));
        secrets.push((
            format!("{label} token secret"),
            token_secret_part(&t).unwrap(),
        ));
    }
    secrets.push(("presented secret".into(), presented));

    let kek = std::fs::read(s.data_dir().join("kek.dev")).unwrap();
    assert!(kek.len() >= 16);
    let tls_key = std::fs::read_to_string(s.data_dir().join("tls/key.pem")).unwrap();

    let scan = |s: &Server, when: &str| {
        let files = s.data_files().unwrap();
        // Positive control: the scan does see live data (token ids are stored in clear), so a
        // secret stored the same way would be found.
        assert!(
            files
                .iter()
                .any(|f| contains_bytes(&std::fs::read(f).unwrap(), id1.as_bytes())),
            "{when}: the scan cannot even find a stored token id"
        );
        assert!(
            files
                .iter()
                .any(|f| f.file_name().is_some_and(|n| n == "signet.db")),
            "{files:?}"
        );
        for f in &files {
            let bytes = std::fs::read(f).unwrap();
            for (label, secret) in &secrets {
                assert!(
                    !contains_bytes(&bytes, secret.as_bytes()),
                    "{when}: {label} found in {}",
                    f.display()
                );
            }
            let is_kek_file = f.file_name().is_some_and(|n| n == "kek.dev");
            if !is_kek_file {
                assert!(
                    !contains_bytes(&bytes, &kek),
                    "{when}: raw KEK found in {}",
                    f.display()
                );
                assert!(
                    !contains_bytes(&bytes, hex::encode(&kek).as_bytes()),
                    "{when}: hex KEK found in {}",
                    f.display()
                );
            }
            let is_tls_key = f.ends_with("tls/key.pem");
            if !is_tls_key {
                assert!(
                    !contains_bytes(&bytes, b"PRIVATE KEY"),
                    "{when}: a PEM private key in {}",
                    f.display()
                );
            }
        }
        let logs = s.logs().unwrap();
        assert!(logs.len() > 100, "no server log captured");
        for (label, secret) in &secrets {
            assert!(
                !logs.contains(secret.as_str()),
                "{when}: {label} in the server log"
            );
        }
        assert!(
            !logs.contains("PRIVATE KEY"),
            "{when}: a private key in the server log"
        );
        assert!(
            !logs.contains(&hex::encode(&kek)),
            "{when}: the KEK in the server log"
        );
        let body: String = tls_key
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        assert!(
            !logs.contains(&body),
            "{when}: the TLS key in the server log"
        );
    };
    // While running (WAL and shared-memory files present) and after a clean stop.
    scan(&s, "running");
    s.restart().unwrap();
    scan(&s, "restarted");
    let status = s.stop().unwrap();
    assert!(status.success());
    scan(&s, "stopped");

    // Responses never carry key material or stored token data.
    s.start_serving().unwrap();
    for path in [
        KEYS,
        TOKENS,
        "/api/v1/keys/s-rsa",
        "/api/v1/audit?limit=10000",
        "/api/v1/status",
    ] {
        let r = s.get_resp(path, admin(&s)).unwrap();
        assert_eq!(r.status, 200, "{path}");
        assert!(!r.text.contains("PRIVATE"), "{path}");
        assert!(!r.text.contains("secret_hash"), "{path}");
        for (label, secret) in &secrets {
            assert!(
                !r.text.contains(secret.as_str()),
                "{path} contains the {label}"
            );
        }
    }

    // Key and data-dir permissions.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&s.data_dir().join("kek.dev")), 0o600);
    assert_eq!(mode(&s.data_dir().join("tls/key.pem")), 0o600);
    assert_eq!(
        mode(s.data_dir()) & 0o077,
        0,
        "data dir is accessible to others"
    );
}

// ---- system endpoints ------------------------------------------------------------------------------

#[test]
fn metrics_openapi_health_and_status() {
    let s = Server::start().unwrap();
    s.create_key("mk", "ecdsa-p256").unwrap();
    for i in 0..3u8 {
        s.sign("mk", "sha256", &digest_hex("sha256", &[i]).unwrap())
            .unwrap();
    }
    let items: Vec<Value> = (10..12u8)
        .map(|i| json!({"digest": digest_hex("sha256", &[i]).unwrap()}))
        .collect();
    let (st, _) = s
        .post_json(BATCH, admin(&s), &json!({"key": "mk", "items": items}))
        .unwrap();
    assert_eq!(st, 200);
    // A refused signature is not counted.
    s.key_action("mk", "disable").unwrap();
    let r = s
        .post_resp(
            SIGN,
            admin(&s),
            &json!({"key": "mk", "digest": digest_hex("sha256", b"z").unwrap()}),
        )
        .unwrap();
    assert_eq!(r.status, 409);
    // Raw paths never become label values.
    assert_eq!(
        s.get_resp("/api/v1/keys/mk", admin(&s)).unwrap().status,
        200
    );
    assert_eq!(s.get_resp("/no-such-path-xyzzy", None).unwrap().status, 404);

    let r = s.get_resp("/metrics", None).unwrap();
    assert_eq!(r.status, 200);
    let ct = r.header("content-type").unwrap_or_default();
    assert!(
        ct.starts_with("text/plain") || ct.starts_with("application/openmetrics-text"),
        "{ct}"
    );
    let line = r
        .text
        .lines()
        .find(|l| {
            l.starts_with("signet_signatures_total{")
                && l.contains("key=\"mk\"")
                && l.contains("algorithm=\"ecdsa-p256\"")
        })
        .unwrap_or_else(|| panic!("no signet_signatures_total for mk:\n{}", r.text));
    let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert_eq!(value, 5.0, "{line}");
    assert!(r.text.contains("signet_http_requests_total"), "{}", r.text);
    assert!(
        r.text.contains("route=\"/api/v1/keys/{name}\""),
        "{}",
        r.text
    );
    assert!(
        !r.text.contains("/api/v1/keys/mk"),
        "a raw path is a metric label"
    );
    assert!(
        !r.text.contains("xyzzy"),
        "a raw unmatched path is a metric label"
    );

    let (st, doc) = s.get("/api/v1/openapi.json", None).unwrap();
    assert_eq!(st, 200);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    for path in [
        "/api/v1/sign",
        "/api/v1/sign/batch",
        "/api/v1/keys",
        "/api/v1/keys/{name}",
        "/api/v1/tokens",
        "/api/v1/audit",
    ] {
        assert!(doc["paths"][path].is_object(), "openapi has no `{path}`");
    }
    assert!(doc["paths"]["/api/v1/sign"]["post"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert!(doc["components"]["schemas"]["Problem"].is_object());

    let r = s.get_resp("/readyz", None).unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    let r = s.get_resp("/healthz", None).unwrap();
    assert_eq!(r.status, 200, "{}", r.text);

    let (st, status) = s.get("/api/v1/status", None).unwrap();
    assert_eq!(st, 200);
    assert_eq!(status["node"], "signetd");
    assert_eq!(status["key_backend"], "software");
    assert_eq!(status["kek_source"], "dev-key-file");
    assert!(status["version"].is_string());
    assert!(
        !status["warnings"].as_array().unwrap().is_empty(),
        "dev mode must warn"
    );
}

// ---- process lifecycle -----------------------------------------------------------------------------

#[test]
fn sigterm_shuts_down_gracefully() {
    let mut s = Server::start().unwrap();
    s.create_key("k", "ed25519").unwrap();
    s.sign("k", "sha256", &"11".repeat(32)).unwrap();
    let url = s.url("/healthz");
    let start = Instant::now();
    let status = s.stop().unwrap();
    let took = start.elapsed();
    assert!(status.success(), "signetd exited with {status} on SIGTERM");
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    assert!(
        s.client().get(&url).send().is_err(),
        "still answering after exit"
    );
    assert!(s.logs().unwrap().contains("shutting down"));
    // The data directory opens again cleanly.
    s.start_serving().unwrap();
    assert_eq!(s.key_names().unwrap(), ["k"]);
}

#[test]
fn https_trusts_only_the_data_dir_certificate() {
    let s = Server::start().unwrap();
    assert!(
        s.base_url().starts_with("https://127.0.0.1:"),
        "{}",
        s.base_url()
    );
    // A client with the usual roots does not trust the self-signed certificate.
    let stranger = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap();
    assert!(stranger.get(s.url("/healthz")).send().is_err());
    // Plain HTTP on the HTTPS port gets no API answer.
    let plain = s.base_url().replacen("https://", "http://", 1);
    if let Ok(r) = stranger.get(format!("{plain}/healthz")).send() {
        assert_ne!(
            r.status().as_u16(),
            200,
            "plain HTTP served on the HTTPS port"
        );
    }
    // OpenSSL agrees the served certificate is the one in the data dir.
    let dir = s.scratch().unwrap();
    let port = s.base_url().rsplit(':').next().unwrap().to_owned();
    let ca = s.ca_cert().to_str().unwrap().to_owned();
    let out = openssl(
        &dir,
        &[
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-CAfile",
            &ca,
            "-verify_return_error",
            "-verify_ip",
            "127.0.0.1",
            "-brief",
        ],
    )
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn require_fips_refuses_to_start_without_the_module() {
    // The test binaries are the normal (non-FIPS) build: `require_fips` must refuse them.
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    init_data_dir(&data).unwrap();
    let mut cmd = signetd().unwrap();
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(&data)
        .args(["--listen", "127.0.0.1:0", "--dev"])
        .env("SIGNET_REQUIRE_FIPS", "1");
    let out = run_with_timeout(&mut cmd, Duration::from_secs(30)).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "served without the FIPS module");
    assert!(
        stderr.contains("require_fips") && stderr.contains("--features fips"),
        "unhelpful error: {stderr}"
    );
}

#[test]
fn insecure_http_is_refused_off_loopback() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    init_data_dir(&data).unwrap();
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let mut cmd = signetd().unwrap();
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen", listen, "--insecure-http"]);
        let out = run_with_timeout(&mut cmd, Duration::from_secs(30)).unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{listen}: plain HTTP was served");
        assert!(!stdout.contains("listening"), "{listen}: {stdout}");
        assert!(
            stderr.contains("loopback"),
            "{listen}: unhelpful error: {stderr}"
        );
    }
}

#[test]
fn insecure_http_on_loopback_serves_plain_http() {
    let s = Server::start_with(ServeOptions {
        insecure_http: true,
        ..ServeOptions::default()
    })
    .unwrap();
    assert!(
        s.base_url().starts_with("http://127.0.0.1:"),
        "{}",
        s.base_url()
    );
    s.create_key("k", "ed25519").unwrap();
    s.sign("k", "sha256", &"22".repeat(32)).unwrap();
}

#[test]
fn init_output_and_refusals() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let out = init_data_dir(&data).unwrap();
    assert!(out.url.starts_with("https://127.0.0.1:"), "{}", out.url);
    assert!(out.ca_cert.is_file());
    assert_eq!(out.data_dir, data.canonicalize().unwrap());
    assert!(
        token_secret_part(&out.admin_token).is_ok(),
        "{}",
        out.admin_token
    );
    assert!(
        !out.stderr.contains(&out.admin_token),
        "init logged the admin token"
    );

    // A second init refuses and keeps the first one's token valid (nothing overwritten).
    let before = std::fs::read(data.join("kek.dev")).unwrap();
    let err = init_data_dir(&data).unwrap_err();
    assert!(
        format!("{err:#}").contains("already initialized"),
        "{err:#}"
    );
    assert_eq!(std::fs::read(data.join("kek.dev")).unwrap(), before);

    // Serving a directory that was never initialized fails with a hint.
    let mut cmd = signetd().unwrap();
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(root.path().join("empty"))
        .args(["--listen", "127.0.0.1:0"]);
    let out = run_with_timeout(&mut cmd, Duration::from_secs(30)).unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("signetd init"));
}

// ---- concurrency -------------------------------------------------------------------------------------

/// Signing while an admin changes keys and tokens: every request succeeds and every returned
/// signature has its own durable audit entry.
#[test]
fn concurrent_signing_and_administration() {
    let s = Server::start().unwrap();
    s.create_key("hot", "ed25519").unwrap();
    s.create_key("admin-target", "ecdsa-p256").unwrap();
    let failures = std::sync::Mutex::new(Vec::<String>::new());
    let returned = std::sync::Mutex::new(Vec::<u64>::new());
    std::thread::scope(|scope| {
        for t in 0..4u32 {
            let (s, failures, returned) = (&s, &failures, &returned);
            scope.spawn(move || {
                for i in 0..40u32 {
                    let digest = digest_hex("sha256", format!("{t}-{i}").as_bytes()).unwrap();
                    let r = s
                        .post_resp(SIGN, admin(s), &json!({"key": "hot", "digest": digest}))
                        .unwrap();
                    if r.status == 200 {
                        let idx = r.json().unwrap()["audit_index"].as_u64().unwrap();
                        returned.lock().unwrap().push(idx);
                    } else {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("sign: {} {}", r.status, r.text));
                    }
                }
            });
        }
        let (s, failures) = (&s, &failures);
        scope.spawn(move || {
            for i in 0..15u32 {
                let ops: Vec<(&str, String, Option<Value>, u16)> = vec![
                    (
                        "POST",
                        "/api/v1/keys/admin-target/disable".into(),
                        None,
                        200,
                    ),
                    ("POST", "/api/v1/keys/admin-target/enable".into(), None, 200),
                    ("POST", "/api/v1/keys/admin-target/rotate".into(), None, 200),
                    (
                        "POST",
                        TOKENS.into(),
                        Some(json!({"name": format!("t{i}")})),
                        201,
                    ),
                    (
                        "POST",
                        KEYS.into(),
                        Some(json!({"name": format!("new{i}"), "algorithm": "ed25519"})),
                        201,
                    ),
                ];
                for (method, path, body, want) in ops {
                    let r = match body {
                        Some(b) => s
                            .request(
                                method,
                                &path,
                                admin(s),
                                Some("application/json"),
                                Some(serde_json::to_vec(&b).unwrap()),
                            )
                            .unwrap(),
                        None => s.request(method, &path, admin(s), None, None).unwrap(),
                    };
                    if r.status != want {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{method} {path}: {} {}", r.status, r.text));
                    }
                }
            }
        });
    });
    // Invariant 1 holds even under contention: every returned signature has its own entry.
    let mut returned = returned.into_inner().unwrap();
    let n = returned.len();
    returned.sort_unstable();
    returned.dedup();
    assert_eq!(returned.len(), n, "two signatures share an audit index");
    let records = s.audit().unwrap();
    for idx in &returned {
        let rec = records
            .iter()
            .find(|r| r["index"].as_u64() == Some(*idx))
            .unwrap_or_else(|| panic!("no audit record {idx}"));
        assert_eq!(rec["event"]["action"], "sign");
    }
    // Every state change that took effect is in the audit log.
    let current = s.key_info("admin-target").unwrap()["current_version"]
        .as_u64()
        .unwrap();
    let rotations = s.audit_events("key_rotate", "allowed").unwrap().len() as u64;
    let keys = s.key_names().unwrap().len();
    let creations = s.audit_events("key_create", "allowed").unwrap().len();
    let tokens = s.get(TOKENS, admin(&s)).unwrap().1["tokens"]
        .as_array()
        .unwrap()
        .len();
    let token_creations = s.audit_events("token_create", "allowed").unwrap().len();
    let unaudited = format!(
        "versions {current} vs audited rotations {rotations}; keys {keys} vs audited creations \
         {creations}; tokens {tokens} vs audited creations {token_creations}"
    );
    let failures = failures.into_inner().unwrap();
    assert!(
        current == rotations + 1 && keys == creations && tokens == token_creations,
        "state changes without audit entries: {unaudited}; {} requests failed",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} concurrent requests failed, e.g. {:?}\n--- server log (tail) ---\n{}",
        failures.len(),
        &failures[..failures.len().min(5)],
        tail(&s.logs().unwrap(), 10)
    );
    assert_eq!(current, 16);
}

/// Racing creations of one key name: exactly one wins, the others get `key_exists`.
#[test]
fn concurrent_creation_of_one_key_name() {
    let s = Server::start().unwrap();
    let statuses = std::sync::Mutex::new(Vec::<(u16, String)>::new());
    std::thread::scope(|scope| {
        for _ in 0..6 {
            let (s, statuses) = (&s, &statuses);
            scope.spawn(move || {
                let r = s
                    .post_resp(
                        KEYS,
                        admin(s),
                        &json!({"name": "race", "algorithm": "ed25519"}),
                    )
                    .unwrap();
                let code = r.json_or_null()["code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                statuses.lock().unwrap().push((r.status, code));
            });
        }
    });
    let statuses = statuses.into_inner().unwrap();
    let created = statuses.iter().filter(|(st, _)| *st == 201).count();
    assert_eq!(
        created,
        1,
        "{statuses:?}\n--- server log (tail) ---\n{}",
        tail(&s.logs().unwrap(), 10)
    );
    assert!(
        statuses
            .iter()
            .all(|(st, code)| *st == 201 || (*st == 409 && code == "key_exists")),
        "{statuses:?}\n--- server log (tail) ---\n{}",
        tail(&s.logs().unwrap(), 10)
    );
    assert_eq!(s.key_names().unwrap(), ["race"]);
    assert_eq!(s.audit_events("key_create", "allowed").unwrap().len(), 1);
}

/// Racing rotations never skip or duplicate a version and never fail with a 5xx.
#[test]
fn concurrent_rotations_keep_versions_contiguous() {
    let s = Server::start().unwrap();
    s.create_key("spin", "ecdsa-p256").unwrap();
    let statuses = std::sync::Mutex::new(Vec::<(u16, String)>::new());
    std::thread::scope(|scope| {
        for _ in 0..6 {
            let (s, statuses) = (&s, &statuses);
            scope.spawn(move || {
                let r = s
                    .request("POST", "/api/v1/keys/spin/rotate", admin(s), None, None)
                    .unwrap();
                statuses.lock().unwrap().push((r.status, r.text));
            });
        }
    });
    let statuses = statuses.into_inner().unwrap();
    let info = s.key_info("spin").unwrap();
    let versions: Vec<u64> = info["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    let n = versions.len() as u64;
    assert_eq!(versions, (1..=n).collect::<Vec<_>>(), "{statuses:?}");
    assert_eq!(info["current_version"], n);
    // Every version that exists was audited as a rotation (checked before the status codes,
    // so a 5xx after a committed rotation shows up as the unaudited change it is).
    let rotations = s.audit_events("key_rotate", "allowed").unwrap();
    assert_eq!(
        rotations.len() as u64,
        n - 1,
        "a rotation took effect without an audit entry: {statuses:?}\n--- server log (tail) ---\n{}",
        tail(&s.logs().unwrap(), 10)
    );
    assert!(
        statuses.iter().all(|(st, _)| *st < 500),
        "{statuses:?}\n--- server log (tail) ---\n{}",
        tail(&s.logs().unwrap(), 10)
    );
    let ok = statuses.iter().filter(|(st, _)| *st == 200).count() as u64;
    assert_eq!(ok, n - 1, "{statuses:?}");
    // The current version signs and verifies.
    let dir = s.scratch().unwrap();
    let (file, _, sig, resp) = sign_random_file(&s, &dir, "spin", "sha256");
    let v = resp["key_version"].as_u64().unwrap();
    assert_eq!(v, n);
    assert!(verify(
        &dir,
        "ecdsa-p256",
        "sha256",
        &pem_of(&s, "spin", v),
        &file,
        &sig
    ));
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// SIGTERM while a large batch is being signed: the batch completes, then the process exits 0.
#[test]
fn sigterm_drains_an_in_flight_batch() {
    let mut s = Server::start().unwrap();
    s.create_key("slow", "rsa-4096-pss").unwrap();
    // A few seconds of RSA-4096 work: in flight when SIGTERM arrives, well within the drain
    // timeout (10 s).
    let items: Vec<Value> = (0..300u32)
        .map(|i| json!({"digest": digest_hex("sha512", &i.to_be_bytes()).unwrap()}))
        .collect();
    let body = json!({"key": "slow", "digest_algorithm": "sha512", "items": items});
    let client = s.client().clone();
    let url = s.url(BATCH);
    let token = s.admin_token().to_owned();
    let started = Instant::now();
    let worker = std::thread::spawn(move || {
        let r = client
            .post(url)
            .bearer_auth(token)
            .json(&body)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        let v: Value = r.json().unwrap_or(Value::Null);
        (status, v, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(500));
    let signalled = started.elapsed();
    let status = s.stop().unwrap();
    let (st, v, took) = worker.join().unwrap();
    assert!(status.success(), "signetd exited with {status}");
    assert_eq!(st, 200, "{v}");
    assert!(
        took > signalled,
        "the batch finished before SIGTERM; make it larger"
    );
    assert_eq!(v["signatures"].as_array().unwrap().len(), 300);
    // Every returned signature is in the audit log after a restart.
    s.start_serving().unwrap();
    assert_eq!(s.audit_events("sign", "allowed").unwrap().len(), 300);
}

/// Signing a large batch must not stall the rest of the server.
#[test]
fn large_batches_do_not_stall_other_requests() {
    let s = Server::start().unwrap();
    s.create_key("slow", "rsa-4096-pkcs1").unwrap();
    let items: Vec<Value> = (0..400u32)
        .map(|i| json!({"digest": digest_hex("sha256", &i.to_be_bytes()).unwrap()}))
        .collect();
    let body = json!({"key": "slow", "items": items});
    // One more batch than the server has cores (and so, by default, async worker threads).
    let batches = std::thread::available_parallelism().map_or(2, usize::from) + 1;
    std::thread::scope(|scope| {
        let mut workers = Vec::new();
        for _ in 0..batches {
            let (s, body) = (&s, &body);
            workers.push(scope.spawn(move || {
                let started = Instant::now();
                let r = s.post_resp(BATCH, admin(s), body).unwrap();
                (r.status, started.elapsed())
            }));
        }
        std::thread::sleep(Duration::from_millis(300));
        let mut worst = Duration::ZERO;
        for _ in 0..8 {
            let t = Instant::now();
            let r = s.get_resp("/healthz", None).unwrap();
            assert_eq!(r.status, 200);
            worst = worst.max(t.elapsed());
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut slowest = Duration::ZERO;
        for w in workers {
            let (st, took) = w.join().unwrap();
            assert_eq!(st, 200);
            slowest = slowest.max(took);
        }
        assert!(
            worst < Duration::from_millis(500),
            "/healthz took {worst:?} while {batches} batches were signed (slowest batch {slowest:?})"
        );
    });
}
