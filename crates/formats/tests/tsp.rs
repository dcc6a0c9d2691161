//! RFC 3161 time-stamping (`signet_formats::tsp` with `cms::timestamp_token`) checked by a real
//! client: queries come from `openssl ts -query`, responses are read and verified with
//! `openssl ts -reply` / `openssl ts -verify` (OpenSSL 3.0 here), and tokens OpenSSL's own TSA
//! issues go through `tsp::verify_token`.
//!
//! Certificates are made at test time with the `openssl` command line (a root CA, TSA
//! certificates with a critical `timeStamping` EKU, and one without the critical flag); private
//! keys are loaded into aws-lc-rs from PKCS#8 and sign what `pkix::to_be_signed` hands them, as
//! Signet's key backends do.
//!
//! These tests need `openssl` on PATH and fail, not skip, without it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use signet_core::{Algorithm, Digest, DigestAlgorithm};
use signet_formats::cms::{self};
use signet_formats::tsp::{
    self, Accuracy, FailureInfo, MAX_QUERY_LEN, TimeStampQuery, TstInfoParams,
};
use time::OffsetDateTime;

mod common;
use common::*;

// ---------------------------------------------------------------------------------------------
// A TSA made of the library calls, as the server strings them together
// ---------------------------------------------------------------------------------------------

const POLICY: &str = "1.3.6.1.4.1.99999.1.1";

fn token_for(q: &TimeStampQuery, tsa: &Leaf, chain: &[Vec<u8>], serial: &[u8]) -> Vec<u8> {
    let info = tsp::tst_info(&TstInfoParams {
        policy: q.policy.as_deref().unwrap_or(POLICY),
        serial,
        gen_time: OffsetDateTime::now_utc(),
        accuracy: Some(Accuracy {
            seconds: 1,
            millis: 0,
            micros: 0,
        }),
        query: q,
        tsa_name: Some(&tsa.der),
    })
    .unwrap();
    let pending = cms::timestamp_token(&info, &tsa.signer(chain), q.cert_req).unwrap();
    let signature = tsa.key.sign(pending.signed_attributes());
    pending.finish(&signature, None).unwrap()
}

fn respond(query_der: &[u8], tsa: &Leaf, chain: &[Vec<u8>]) -> (TimeStampQuery, Vec<u8>) {
    let q = tsp::parse_query(query_der).unwrap();
    let token = token_for(&q, tsa, chain, &[0x01, 0x23, 0x45]);
    (q, tsp::response_granted(&token).unwrap())
}

fn tsa_algorithms() -> [Algorithm; 5] {
    [
        Algorithm::EcdsaP256,
        Algorithm::EcdsaP384,
        Algorithm::Rsa3072Pkcs1,
        Algorithm::Rsa3072Pss,
        Algorithm::Ed25519,
    ]
}

// ---------------------------------------------------------------------------------------------
// OpenSSL as the client
// ---------------------------------------------------------------------------------------------

/// `openssl ts -verify` reads tokens through its PKCS#7 code, which (in OpenSSL 3.0) verifies
/// ECDSA and RSA PKCS#1 v1.5 signatures only; RSA-PSS and Ed25519 tokens are checked with
/// `openssl cms -verify` instead (see `openssl_cms_verifies_pss_and_ed25519_tokens`).
fn openssl_ts_verifies(alg: Algorithm) -> bool {
    matches!(
        alg,
        Algorithm::EcdsaP256 | Algorithm::EcdsaP384 | Algorithm::Rsa3072Pkcs1
    )
}

#[test]
fn openssl_verifies_our_responses() {
    let pki = Pki::new("tsp");
    let dir = &pki.dir;
    let data = dir.write("data.bin", b"the artifact to time-stamp\n");
    let other = dir.write("other.bin", b"some other artifact\n");
    for alg in tsa_algorithms() {
        let tsa = pki.leaf(alg, "tsa", &format!("Signet TSA {alg}"));
        let q_path = dir.path(&format!("{alg}.tsq"));
        ok(&[
            "ts",
            "-query",
            "-data",
            p(&data),
            "-sha256",
            "-cert",
            "-out",
            p(&q_path),
        ]);
        let (q, resp) = respond(&std::fs::read(&q_path).unwrap(), &tsa, &pki.chain);
        assert!(q.cert_req);
        let nonce = q
            .nonce
            .clone()
            .expect("openssl ts -query sends a nonce by default");
        let r_path = dir.write(&format!("{alg}.tsr"), &resp);

        let text = ok(&["ts", "-reply", "-in", p(&r_path), "-text"]);
        assert!(text.contains("Status: Granted."), "{text}");
        assert!(text.contains(&format!("Policy OID: {POLICY}")), "{text}");
        assert!(text.contains("Hash Algorithm: sha256"), "{text}");
        assert!(
            text.contains("Accuracy: 0x01 seconds, unspecified millis, unspecified micros"),
            "{text}"
        );
        assert!(text.contains("Ordering: no"), "{text}");
        assert!(text.contains("Serial number: 0x012345"), "{text}");
        assert!(
            text.contains(&format!("TSA: DirName:/O=Signet Test/CN=Signet TSA {alg}")),
            "{text}"
        );
        let nonce_hex = hex::encode_upper(&nonce);
        assert!(
            text.replace(':', "")
                .contains(nonce_hex.trim_start_matches('0')),
            "nonce {nonce_hex} echoed: {text}"
        );

        // The library client agrees.
        let token = tsp::parse_response(&resp).unwrap();
        let v = tsp::verify_token(
            &token,
            &digest_of(DigestAlgorithm::Sha256, b"the artifact to time-stamp\n"),
            Some(&nonce),
            &[],
        )
        .unwrap();
        assert_eq!(v.signer_certificate, tsa.der);
        assert!(v.certificates.contains(&tsa.der) && v.certificates.contains(&pki.chain[0]));
        assert_eq!(v.policy, POLICY);
        assert_eq!(v.serial, "012345");
        assert_eq!(
            v.accuracy,
            Some(Accuracy {
                seconds: 1,
                millis: 0,
                micros: 0
            })
        );
        assert!(
            (OffsetDateTime::now_utc() - v.gen_time)
                .whole_seconds()
                .abs()
                < 60
        );

        if !openssl_ts_verifies(alg) {
            continue;
        }
        for args in [vec!["-queryfile", p(&q_path)], vec!["-data", p(&data)]] {
            let mut all = vec![
                "ts",
                "-verify",
                "-in",
                p(&r_path),
                "-CAfile",
                p(&pki.root_pem),
                "-untrusted",
                p(&tsa.pem),
            ];
            all.extend(args);
            let out = ok(&all);
            assert!(out.contains("Verification: OK"), "{alg}: {out}");
        }
        // Without -untrusted too: the token carries the TSA certificate (certReq).
        let out = ok(&[
            "ts",
            "-verify",
            "-in",
            p(&r_path),
            "-queryfile",
            p(&q_path),
            "-CAfile",
            p(&pki.root_pem),
        ]);
        assert!(out.contains("Verification: OK"), "{alg}: {out}");

        // A query for other data does not match.
        let q2 = dir.path(&format!("{alg}-other.tsq"));
        ok(&[
            "ts",
            "-query",
            "-data",
            p(&other),
            "-sha256",
            "-cert",
            "-out",
            p(&q2),
        ]);
        let out = openssl(&[
            "ts",
            "-verify",
            "-in",
            p(&r_path),
            "-queryfile",
            p(&q2),
            "-CAfile",
            p(&pki.root_pem),
            "-untrusted",
            p(&tsa.pem),
        ]);
        assert!(
            !out.ok,
            "{alg}: another file's query must not verify: {}",
            out.text
        );
        assert!(
            out.text.contains("message imprint mismatch") || out.text.contains("nonce mismatch"),
            "{}",
            out.text
        );
        let out = openssl(&[
            "ts",
            "-verify",
            "-in",
            p(&r_path),
            "-data",
            p(&other),
            "-CAfile",
            p(&pki.root_pem),
            "-untrusted",
            p(&tsa.pem),
        ]);
        assert!(
            !out.ok && out.text.contains("message imprint mismatch"),
            "{}",
            out.text
        );
    }
}

/// OpenSSL 3.0 cannot verify (or make) Ed25519 CMS signatures with signed attributes: its CMS
/// code hands the digest algorithm to the Ed25519 provider, which refuses any digest
/// (`eddsa_digest_signverify_init:invalid digest`). A newer OpenSSL may; until then the
/// signature is checked with `openssl pkeyutl -rawin` over the DER signed attributes, which is
/// what RFC 8419 §3.2 says Ed25519 signs.
const OPENSSL_ED25519_CMS_LIMIT: &str = "eddsa_digest_signverify_init:invalid digest";

/// Checks with `openssl pkeyutl` that the one SignerInfo's signature in the DER CMS file
/// `cms_path` is an Ed25519 signature by `cert_pem`'s key over the signed attributes, re-tagged
/// as the DER `SET OF` (RFC 5652 §5.4, RFC 8419 §3.2). The structure is located with
/// `openssl asn1parse`, not with Signet's parser.
fn openssl_checks_ed25519_signed_attrs(dir: &TempDir, cms_path: &Path, cert_pem: &Path) {
    let der = std::fs::read(cms_path).unwrap();
    let listing = ok(&["asn1parse", "-inform", "DER", "-in", p(cms_path)]);
    // "  1234:d=5  hl=2 l= 105 cons: cont [ 0 ]": ContentInfo (0) > [0] (1) > SignedData (2) >
    // SET OF SignerInfo (3) > SignerInfo (4) > signedAttrs [0] (5).
    let field = |line: &str, key: &str| -> usize {
        let rest = &line[line.find(key).unwrap() + key.len()..];
        rest.trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let mut attrs = None;
    let mut sig = None;
    for line in listing.lines() {
        if !line.contains("d=5") {
            continue;
        }
        let offset: usize = line.split(':').next().unwrap().trim().parse().unwrap();
        let (hl, l) = (field(line, "hl="), field(line, " l="));
        if line.contains("cont [ 0 ]") {
            attrs = Some(der[offset..offset + hl + l].to_vec());
        }
        if line.contains("OCTET STRING") && l == 64 {
            sig = Some(der[offset + hl..offset + hl + l].to_vec());
        }
    }
    let mut attrs = attrs.expect("signedAttrs in the asn1parse listing");
    attrs[0] = 0x31;
    let attrs_path = dir.write("signed-attrs.der", &attrs);
    let sig_path = dir.write("signature.bin", sig.expect("a 64-byte Ed25519 signature"));
    let pub_path = dir.path("ed25519-pub.pem");
    ok(&[
        "x509",
        "-in",
        p(cert_pem),
        "-pubkey",
        "-noout",
        "-out",
        p(&pub_path),
    ]);
    let out = ok(&[
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        p(&pub_path),
        "-rawin",
        "-in",
        p(&attrs_path),
        "-sigfile",
        p(&sig_path),
    ]);
    assert!(out.contains("Signature Verified Successfully"), "{out}");
}

#[test]
fn openssl_cms_verifies_pss_and_ed25519_tokens() {
    let pki = Pki::new("tsp");
    let dir = &pki.dir;
    let data = dir.write("data.bin", b"pss and ed25519\n");
    for alg in [Algorithm::Rsa3072Pss, Algorithm::Ed25519] {
        let tsa = pki.leaf(alg, "tsa", "Signet TSA");
        let q_path = dir.path("q.tsq");
        ok(&[
            "ts",
            "-query",
            "-data",
            p(&data),
            "-sha256",
            "-cert",
            "-out",
            p(&q_path),
        ]);
        let (_, resp) = respond(&std::fs::read(&q_path).unwrap(), &tsa, &pki.chain);
        let token = dir.write(&format!("{alg}.token"), tsp::parse_response(&resp).unwrap());
        let tst = dir.path(&format!("{alg}.tst"));
        let out = openssl(&[
            "cms",
            "-verify",
            "-inform",
            "DER",
            "-in",
            p(&token),
            "-CAfile",
            p(&pki.root_pem),
            "-purpose",
            "timestampsign",
            "-out",
            p(&tst),
        ]);
        if alg == Algorithm::Ed25519 && !out.ok {
            assert!(out.text.contains(OPENSSL_ED25519_CMS_LIMIT), "{}", out.text);
        } else {
            assert!(
                out.ok && out.text.contains("Verification successful"),
                "{alg}: {}",
                out.text
            );
        }
        if alg == Algorithm::Ed25519 {
            openssl_checks_ed25519_signed_attrs(dir, &token, &tsa.pem);
        }
        let print = ok(&[
            "cms",
            "-cmsout",
            "-print",
            "-inform",
            "DER",
            "-in",
            p(&token),
        ]);
        assert!(print.contains("id-smime-ct-TSTInfo"), "{print}");
        assert!(
            print.contains("id-smime-aa-signingCertificateV2"),
            "{print}"
        );
        let digest = if alg == Algorithm::Ed25519 {
            "sha512"
        } else {
            "sha256"
        };
        assert!(
            print.contains(&format!("algorithm: {digest}")),
            "{alg}: {print}"
        );

        // `openssl ts -verify` goes through OpenSSL's PKCS#7 code instead, which in OpenSSL
        // 3.0 checks RSA signatures with PKCS#1 v1.5 padding only and has no Ed25519.
        let r_path = dir.write(&format!("{alg}.tsr"), &resp);
        let out = openssl(&[
            "ts",
            "-verify",
            "-in",
            p(&r_path),
            "-queryfile",
            p(&q_path),
            "-CAfile",
            p(&pki.root_pem),
        ]);
        let known_limit = match alg {
            Algorithm::Ed25519 => "operation not supported for this keytype",
            _ => "RSA_padding_check_PKCS1_type_1:invalid padding",
        };
        assert!(
            out.text.contains("Verification: OK") || out.text.contains(known_limit),
            "{alg}: {}",
            out.text
        );
    }
}

#[test]
fn query_variants_sha384_sha512_no_nonce_policy() {
    let pki = Pki::new("tsp");
    let dir = &pki.dir;
    let data_bytes = b"variants\n";
    let data = dir.write("data.bin", data_bytes);
    let tsa = pki.leaf(Algorithm::EcdsaP256, "tsa", "Signet TSA");
    let cases: [(&str, &[&str], DigestAlgorithm); 4] = [
        ("sha384", &["-sha384"], DigestAlgorithm::Sha384),
        ("sha512", &["-sha512", "-cert"], DigestAlgorithm::Sha512),
        (
            "no-nonce",
            &["-sha256", "-no_nonce"],
            DigestAlgorithm::Sha256,
        ),
        (
            "policy",
            &["-sha256", "-tspolicy", "1.2.3.4.5", "-cert"],
            DigestAlgorithm::Sha256,
        ),
    ];
    for (name, extra, d) in cases {
        let q_path = dir.path(&format!("{name}.tsq"));
        let mut args = vec!["ts", "-query", "-data", p(&data), "-out", p(&q_path)];
        args.extend_from_slice(extra);
        ok(&args);
        let q_der = std::fs::read(&q_path).unwrap();
        let (q, resp) = respond(&q_der, &tsa, &pki.chain);
        assert_eq!(q.digest_algorithm, d, "{name}");
        assert_eq!(q.imprint, digest_of(d, data_bytes).as_bytes(), "{name}");
        assert_eq!(q.nonce.is_none(), name == "no-nonce", "{name}");
        assert_eq!(
            q.policy.as_deref(),
            (name == "policy").then_some("1.2.3.4.5"),
            "{name}"
        );
        assert_eq!(q.cert_req, extra.contains(&"-cert"), "{name}");
        // What we encode, OpenSSL reads the same.
        let ours = dir.write(&format!("{name}-ours.tsq"), tsp::encode_query(&q).unwrap());
        let theirs_text = ok(&["ts", "-query", "-in", p(&q_path), "-text"]);
        let ours_text = ok(&["ts", "-query", "-in", p(&ours), "-text"]);
        // OpenSSL writes NULL hash parameters, Signet omits them (RFC 5754 §2).
        assert_eq!(
            theirs_text.replace("parameter: NULL", "parameter: PARAM"),
            ours_text
                .replace("parameter: NULL", "parameter: PARAM")
                .replace("parameter: not present", "parameter: PARAM"),
            "{name}"
        );

        let r_path = dir.write(&format!("{name}.tsr"), &resp);
        let mut verify = vec![
            "ts",
            "-verify",
            "-in",
            p(&r_path),
            "-queryfile",
            p(&q_path),
            "-CAfile",
            p(&pki.root_pem),
            "-untrusted",
            p(&tsa.pem),
        ];
        let out = ok(&verify);
        assert!(out.contains("Verification: OK"), "{name}: {out}");
        verify.truncate(4);
        verify.extend([
            "-data",
            p(&data),
            "-CAfile",
            p(&pki.root_pem),
            "-untrusted",
            p(&tsa.pem),
        ]);
        assert!(ok(&verify).contains("Verification: OK"), "{name}");
        let text = ok(&["ts", "-reply", "-in", p(&r_path), "-text"]);
        if name == "no-nonce" {
            assert!(text.contains("Nonce: unspecified"), "{text}");
        }
        if name == "policy" {
            assert!(text.contains("Policy OID: 1.2.3.4.5"), "{text}");
        }

        let token = tsp::parse_response(&resp).unwrap();
        let v = tsp::verify_token(
            &token,
            &digest_of(d, data_bytes),
            q.nonce.as_deref(),
            std::slice::from_ref(&tsa.der),
        )
        .unwrap();
        assert_eq!(v.digest_algorithm, d);
        assert_eq!(v.nonce, q.nonce);
        // Without certReq the token carries no certificate: the caller passes it.
        assert_eq!(v.certificates.is_empty(), !q.cert_req, "{name}");
        if !q.cert_req {
            let e = tsp::verify_token(&token, &digest_of(d, data_bytes), None, &[])
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("signer certificate") && e.contains("pass the signer certificate"),
                "{e}"
            );
        }
    }
}

#[test]
fn verify_token_rejects_tampering_wrong_imprint_nonce_and_eku() {
    let pki = Pki::new("tsp");
    let tsa = pki.leaf(Algorithm::EcdsaP256, "tsa", "Signet TSA");
    let data = b"verify me";
    let imprint = digest_of(DigestAlgorithm::Sha256, data);
    let q = TimeStampQuery {
        digest_algorithm: DigestAlgorithm::Sha256,
        imprint: imprint.as_bytes().to_vec(),
        policy: None,
        nonce: Some(vec![0x00, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10]),
        cert_req: true,
    };
    let q = tsp::parse_query(&tsp::encode_query(&q).unwrap()).unwrap();
    let token = token_for(&q, &tsa, &pki.chain, &[0x7f; 20]);
    let nonce = q.nonce.clone().unwrap();
    let v = tsp::verify_token(&token, &imprint, Some(&nonce), &[]).unwrap();
    assert_eq!(v.serial, "7f".repeat(20));
    assert_eq!(v.nonce.as_deref(), Some(nonce.as_slice()));

    let err = |t: &[u8], d: &Digest, n: Option<&[u8]>| {
        tsp::verify_token(t, d, n, &[]).unwrap_err().to_string()
    };

    // Wrong imprint (other data, other algorithm).
    let e = err(
        &token,
        &digest_of(DigestAlgorithm::Sha256, b"other"),
        Some(&nonce),
    );
    assert!(e.contains("imprint") && e.contains("does not match"), "{e}");
    let e = err(&token, &digest_of(DigestAlgorithm::Sha384, data), None);
    assert!(e.contains("sha256") && e.contains("sha384"), "{e}");
    // Wrong nonce.
    let e = err(&token, &imprint, Some(&[0x01, 0x02]));
    assert!(e.contains("nonce") && e.contains("replay"), "{e}");

    // Tampered TSTInfo (the serial number) breaks the message digest.
    let mut t = token.clone();
    let at = find(&t, &[0x7f; 20]);
    t[at] = 0x7e;
    let e = err(&t, &imprint, None);
    assert!(e.contains("message digest does not match"), "{e}");
    // A tampered signature does not verify.
    let mut t = token.clone();
    let last = t.len() - 5;
    t[last] ^= 0x01;
    let e = err(&t, &imprint, None);
    assert!(e.contains("does not verify"), "{e}");
    // Every bit flip in a token without certificates (everything in it is bound by the
    // signature or checked) is refused, never a panic; the TSA certificate comes from the
    // caller. (Certificates a token carries are not signed: the caller's chain check covers
    // them.)
    let q_bare = TimeStampQuery {
        cert_req: false,
        ..q.clone()
    };
    let bare = token_for(&q_bare, &tsa, &pki.chain, &[0x42]);
    let extra = [tsa.der.clone()];
    tsp::verify_token(&bare, &imprint, Some(&nonce), &extra).unwrap();
    let mut rng = 0x9e37_79b9_u32;
    for i in 0..bare.len() {
        rng = rng.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let mut t = bare.clone();
        t[i] ^= 1 << (rng >> 29);
        assert!(
            tsp::verify_token(&t, &imprint, Some(&nonce), &extra).is_err(),
            "flipped byte {i} of {}",
            hex::encode(&bare)
        );
    }
    // Every truncation.
    for len in 0..token.len() {
        assert!(tsp::verify_token(&token[..len], &imprint, None, &[]).is_err());
    }

    // A TSA certificate whose timeStamping EKU is not critical.
    let weak = pki.leaf(Algorithm::EcdsaP256, "tsa_noncritical", "Weak TSA");
    let t = token_for(&q, &weak, &pki.chain, &[1]);
    let e = err(&t, &imprint, None);
    assert!(
        e.contains("not marked critical") && e.contains("RFC 3161 §2.3"),
        "{e}"
    );
    // OpenSSL refuses it too.
    let dir = &pki.dir;
    let r = dir.write("weak.tsr", tsp::response_granted(&t).unwrap());
    let qf = dir.write("weak.tsq", tsp::encode_query(&q).unwrap());
    let out = openssl(&[
        "ts",
        "-verify",
        "-in",
        p(&r),
        "-queryfile",
        p(&qf),
        "-CAfile",
        p(&pki.root_pem),
    ]);
    assert!(!out.ok, "{}", out.text);
    // A code-signing certificate is no TSA.
    let cs = pki.leaf(Algorithm::EcdsaP256, "codesign", "Code Signer");
    let t = token_for(&q, &cs, &pki.chain, &[1]);
    let e = err(&t, &imprint, None);
    assert!(
        e.contains("lacks the extended key usage `timeStamping`"),
        "{e}"
    );

    // The ESS binding (RFC 5035): a signingCertificateV2 naming another certificate is refused.
    let mut t = token.clone();
    let cert_hash = digest_of(DigestAlgorithm::Sha256, &tsa.der);
    let at = find(&t, cert_hash.as_bytes());
    t[at] ^= 0x01;
    let e = err(&t, &imprint, None);
    assert!(e.contains("names another certificate"), "{e}");

    // finish() refuses a signature by a key that is not the certificate's.
    let pending = cms::timestamp_token(&token_info(&q), &tsa.signer(&pki.chain), true).unwrap();
    let wrong_key = weak.key.sign(pending.signed_attributes());
    let e = pending.finish(&wrong_key, None).unwrap_err().to_string();
    assert!(
        e.contains("does not verify with the signer certificate"),
        "{e}"
    );
}

fn token_info(q: &TimeStampQuery) -> Vec<u8> {
    tsp::tst_info(&TstInfoParams {
        policy: POLICY,
        serial: &[9],
        gen_time: OffsetDateTime::now_utc(),
        accuracy: None,
        query: q,
        tsa_name: None,
    })
    .unwrap()
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("needle present")
}

#[test]
fn tokens_from_openssl_tsa_verify() {
    let pki = Pki::new("tsp");
    let dir = &pki.dir;
    let data_bytes = b"openssl is the TSA here\n";
    let data = dir.write("data.bin", data_bytes);
    for (alg, ess) in [
        (Algorithm::EcdsaP256, "sha1"),
        (Algorithm::Rsa3072Pkcs1, "sha256"),
    ] {
        let tsa = pki.leaf(alg, "tsa", "OpenSSL TSA");
        let serial = dir.write("tsaserial", "01\n");
        let cnf = dir.write(
            "ts.cnf",
            format!(
                "[tsa]\ndefault_tsa = tsa1\n[tsa1]\nserial = {}\nsigner_digest = sha256\ndefault_policy = 1.2.3.4.1\nother_policies = 1.2.3.4.5\ndigests = sha256, sha384, sha512\naccuracy = secs:1, millisecs:500, microsecs:100\nordering = yes\ntsa_name = yes\ness_cert_id_chain = no\ness_cert_id_alg = {ess}\n",
                p(&serial)
            ),
        );
        let q_path = dir.path("q.tsq");
        ok(&[
            "ts",
            "-query",
            "-data",
            p(&data),
            "-sha384",
            "-cert",
            "-out",
            p(&q_path),
        ]);
        let r_path = dir.path("r.tsr");
        ok(&[
            "ts",
            "-reply",
            "-config",
            p(&cnf),
            "-queryfile",
            p(&q_path),
            "-inkey",
            p(&tsa.key_pem),
            "-signer",
            p(&tsa.pem),
            "-out",
            p(&r_path),
        ]);
        let q = tsp::parse_query(&std::fs::read(&q_path).unwrap()).unwrap();
        let token = tsp::parse_response(&std::fs::read(&r_path).unwrap()).unwrap();
        let v = tsp::verify_token(
            &token,
            &digest_of(DigestAlgorithm::Sha384, data_bytes),
            q.nonce.as_deref(),
            &[],
        )
        .unwrap_or_else(|e| panic!("{alg}/{ess}: {e}"));
        assert_eq!(v.policy, "1.2.3.4.1");
        // OpenSSL's TSA increments the serial file before use.
        assert_eq!(v.serial, "02");
        assert_eq!(
            v.accuracy,
            Some(Accuracy {
                seconds: 1,
                millis: 500,
                micros: 100
            })
        );
        assert_eq!(v.signer_certificate, tsa.der);
        assert!(
            tsp::verify_token(
                &token,
                &digest_of(DigestAlgorithm::Sha384, b"other"),
                None,
                &[]
            )
            .is_err()
        );
    }
}

#[test]
fn rejections_parse_in_openssl_and_the_client() {
    let dir = TempDir::new("tsp-rej");
    for (f, openssl_text) in [
        (
            FailureInfo::BadAlg,
            "unrecognized or unsupported algorithm identifier",
        ),
        (
            FailureInfo::BadRequest,
            "transaction not permitted or supported",
        ),
        (
            FailureInfo::BadDataFormat,
            "the data submitted has the wrong format",
        ),
        (
            FailureInfo::TimeNotAvailable,
            "the TSA's time source is not available",
        ),
        (
            FailureInfo::UnacceptedPolicy,
            "the requested TSA policy is not supported by the TSA",
        ),
        (
            FailureInfo::UnacceptedExtension,
            "the requested extension is not supported by the TSA",
        ),
        (
            FailureInfo::AddInfoNotAvailable,
            "the additional information requested could not be understood or is not available",
        ),
        (
            FailureInfo::SystemFailure,
            "the request cannot be handled due to system failure",
        ),
    ] {
        let rej = tsp::response_rejected(f, "hash algorithm `md5` is not accepted").unwrap();
        let path = dir.write(&format!("{f}.tsr"), &rej);
        let text = ok(&["ts", "-reply", "-in", p(&path), "-text"]);
        assert!(text.contains("Status: Rejected."), "{text}");
        assert!(
            text.contains("hash algorithm `md5` is not accepted"),
            "{text}"
        );
        assert!(text.contains(openssl_text), "{f}: {text}");
        assert!(text.contains("TST info:\nNot included."), "{text}");
        let e = tsp::parse_response(&rej).unwrap_err().to_string();
        assert!(
            e.contains("`rejection` (2)") && e.contains(&format!("`{f}`")) && e.contains("md5"),
            "{e}"
        );
    }
    let rej = tsp::response_rejected(FailureInfo::SystemFailure, "").unwrap();
    let e = tsp::parse_response(&rej).unwrap_err().to_string();
    assert!(!e.contains("with text"), "{e}");
    // A response that is no TimeStampResp at all.
    assert!(tsp::parse_response(b"<html>").is_err());
    assert!(tsp::response_granted(b"\x04\x00").is_err());
}

// ---------------------------------------------------------------------------------------------
// parse_query strictness
// ---------------------------------------------------------------------------------------------

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else if n <= 0xff {
        out.extend([0x81, n as u8]);
    } else {
        out.extend([0x82, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

const SHA256_OID: &[u8] = &[
    0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
];

/// A hand-built TimeStampReq: version, hash OID DER, imprint, and extra trailing fields.
fn query_der(
    version: u8,
    hash_oid: &[u8],
    params: Option<&[u8]>,
    imprint: &[u8],
    rest: &[Vec<u8>],
) -> Vec<u8> {
    let mut alg = vec![hash_oid.to_vec()];
    if let Some(p) = params {
        alg.push(p.to_vec());
    }
    let mut parts = vec![tlv(0x02, &[version]), seq(&[seq(&alg), tlv(0x04, imprint)])];
    parts.extend_from_slice(rest);
    seq(&parts)
}

fn failure(der: &[u8]) -> FailureInfo {
    match tsp::parse_query(der) {
        Ok(q) => panic!("query {} parsed: {q:?}", hex::encode(der)),
        Err(e) => {
            assert!(
                !e.message.is_empty() && !e.message.ends_with('.'),
                "{}",
                e.message
            );
            assert!(
                e.message.chars().next().unwrap().is_lowercase(),
                "{}",
                e.message
            );
            e.failure
        }
    }
}

#[test]
fn parse_query_accepts_the_canonical_forms() {
    let imprint = [0xab; 32];
    // Parameters absent and NULL both mean SHA-256 (RFC 5754 §2).
    for params in [None, Some(&[0x05, 0x00][..])] {
        let q = tsp::parse_query(&query_der(1, SHA256_OID, params, &imprint, &[])).unwrap();
        assert_eq!(q.digest_algorithm, DigestAlgorithm::Sha256);
        assert_eq!(q.imprint, imprint);
        assert!(!q.cert_req && q.nonce.is_none() && q.policy.is_none());
    }
    let q = tsp::parse_query(&query_der(
        1,
        SHA256_OID,
        None,
        &imprint,
        &[
            tlv(0x06, &[0x2a, 0x03, 0x04]),
            tlv(0x02, &[0x00, 0x80]),
            tlv(0x01, &[0xff]),
        ],
    ))
    .unwrap();
    assert_eq!(q.policy.as_deref(), Some("1.2.3.4"));
    assert_eq!(q.nonce.as_deref(), Some(&[0x00, 0x80][..]));
    assert!(q.cert_req);
    assert_eq!(
        tsp::parse_query(&tsp::encode_query(&q).unwrap()).unwrap(),
        q
    );
}

#[test]
fn parse_query_refuses_with_the_right_failure() {
    let imprint = [0xab; 32];
    let md5 = [0x06, 0x08, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05];
    let sha1 = [0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a];
    let sha224 = [
        0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04,
    ];
    use FailureInfo::*;
    let cases: Vec<(&str, Vec<u8>, FailureInfo)> = vec![
        (
            "version 2",
            query_der(2, SHA256_OID, None, &imprint, &[]),
            BadDataFormat,
        ),
        (
            "version 0",
            query_der(0, SHA256_OID, None, &imprint, &[]),
            BadDataFormat,
        ),
        (
            "md5",
            query_der(1, &md5, Some(&[0x05, 0x00]), &[0xab; 16], &[]),
            BadAlg,
        ),
        ("sha1", query_der(1, &sha1, None, &[0xab; 20], &[]), BadAlg),
        (
            "sha224",
            query_der(1, &sha224, None, &[0xab; 28], &[]),
            BadAlg,
        ),
        (
            "sha256 with parameters",
            query_der(1, SHA256_OID, Some(&[0x02, 0x01, 0x00]), &imprint, &[]),
            BadAlg,
        ),
        (
            "short imprint",
            query_der(1, SHA256_OID, None, &[0xab; 31], &[]),
            BadDataFormat,
        ),
        (
            "long imprint",
            query_der(1, SHA256_OID, None, &[0xab; 48], &[]),
            BadDataFormat,
        ),
        (
            "empty imprint",
            query_der(1, SHA256_OID, None, &[], &[]),
            BadDataFormat,
        ),
        (
            "extensions",
            query_der(
                1,
                SHA256_OID,
                None,
                &imprint,
                &[tlv(
                    0xa0,
                    &seq(&[tlv(0x06, &[0x2a, 0x03]), tlv(0x04, &[0x05, 0x00])]),
                )],
            ),
            UnacceptedExtension,
        ),
        (
            "empty extensions",
            query_der(1, SHA256_OID, None, &imprint, &[tlv(0xa0, &[])]),
            UnacceptedExtension,
        ),
        (
            "certReq FALSE written out",
            query_der(1, SHA256_OID, None, &imprint, &[tlv(0x01, &[0x00])]),
            BadDataFormat,
        ),
        (
            "certReq TRUE as 0x01",
            query_der(1, SHA256_OID, None, &imprint, &[tlv(0x01, &[0x01])]),
            BadDataFormat,
        ),
        (
            "non-minimal nonce",
            query_der(1, SHA256_OID, None, &imprint, &[tlv(0x02, &[0x00, 0x01])]),
            BadDataFormat,
        ),
        (
            "65-byte nonce",
            query_der(1, SHA256_OID, None, &imprint, &[tlv(0x02, &[0x11; 65])]),
            BadDataFormat,
        ),
        (
            "fields out of order",
            query_der(
                1,
                SHA256_OID,
                None,
                &imprint,
                &[tlv(0x02, &[0x05]), tlv(0x06, &[0x2a, 0x03])],
            ),
            BadDataFormat,
        ),
        (
            "trailing field",
            query_der(1, SHA256_OID, None, &imprint, &[tlv(0x04, &[])]),
            BadDataFormat,
        ),
        ("empty", Vec::new(), BadDataFormat),
        ("not a sequence", tlv(0x04, &[1, 2, 3]), BadDataFormat),
        (
            "oversize",
            {
                let mut big = query_der(1, SHA256_OID, None, &imprint, &[]);
                big.resize(MAX_QUERY_LEN + 1, 0);
                big
            },
            BadDataFormat,
        ),
    ];
    for (name, der, want) in cases {
        assert_eq!(failure(&der), want, "{name}");
    }
    // A 64-byte nonce is the limit, accepted.
    let mut nonce = vec![0x11; 64];
    nonce[0] = 0x7f;
    let q = tsp::parse_query(&query_der(
        1,
        SHA256_OID,
        None,
        &imprint,
        &[tlv(0x02, &nonce)],
    ))
    .unwrap();
    assert_eq!(q.nonce, Some(nonce));
    // Trailing bytes after a valid query.
    let mut der = query_der(1, SHA256_OID, None, &imprint, &[]);
    der.push(0);
    assert_eq!(failure(&der), BadDataFormat);
    // The extension error names the extension.
    let e = tsp::parse_query(&query_der(
        1,
        SHA256_OID,
        None,
        &imprint,
        &[tlv(0xa0, &seq(&[tlv(0x06, &[0x2a, 0x03]), tlv(0x04, &[])]))],
    ))
    .unwrap_err();
    assert!(
        e.message.contains("`1.2.3`") && e.to_string() == e.message,
        "{e}"
    );
    let e = tsp::parse_query(&query_der(1, &md5, None, &[0; 16], &[])).unwrap_err();
    assert!(
        e.message.contains("id-md5") && e.message.contains("use sha256, sha384 or sha512"),
        "{e}"
    );
}

#[test]
fn parse_query_refuses_openssl_md5_and_sha1_queries() {
    let dir = TempDir::new("tsp-alg");
    let data = dir.write("data.bin", b"x");
    for (flag, name) in [("-md5", "md5"), ("-sha1", "sha1")] {
        let q = dir.path(&format!("{name}.tsq"));
        ok(&["ts", "-query", "-data", p(&data), flag, "-out", p(&q)]);
        let e = tsp::parse_query(&std::fs::read(&q).unwrap()).unwrap_err();
        assert_eq!(e.failure, FailureInfo::BadAlg, "{name}: {e}");
        assert!(e.message.contains(name), "{e}");
    }
}

/// Every prefix of valid queries is refused as badDataFormat.
#[test]
fn parse_query_refuses_every_truncation() {
    for q in sample_queries() {
        let der = tsp::encode_query(&q).unwrap();
        for len in 0..der.len() {
            assert_eq!(
                failure(&der[..len]),
                FailureInfo::BadDataFormat,
                "prefix {len} of {}",
                hex::encode(&der)
            );
        }
    }
}

/// xorshift64*: a fixed-seed generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

fn sample_queries() -> Vec<TimeStampQuery> {
    let mut out = Vec::new();
    for (i, d) in DigestAlgorithm::ALL.into_iter().enumerate() {
        out.push(TimeStampQuery {
            digest_algorithm: d,
            imprint: vec![0x5a ^ i as u8; d.output_len()],
            policy: (i != 1).then(|| "1.3.6.1.4.1.99999.1.1".to_owned()),
            nonce: (i != 2).then(|| vec![0x00, 0x9a, 0xbc, 0xde, 0xf0, 0x12, 0x34, 0x56, 0x78]),
            cert_req: i != 0,
        });
    }
    out
}

#[test]
fn parse_query_survives_random_bytes() {
    let mut rng = Rng(0x5157_4e45_5400_0001);
    for _ in 0..5000 {
        let len = rng.below(300);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
        if rng.below(2) == 0 && !bytes.is_empty() {
            bytes[0] = 0x30; // look like a SEQUENCE more often
        }
        if let Ok(q) = tsp::parse_query(&bytes) {
            let again = tsp::encode_query(&q).unwrap();
            assert_eq!(tsp::parse_query(&again).unwrap(), q);
        }
    }
}

/// Flips, inserts and deletes bytes of valid queries (fixed seed, 20 000 cases): never a
/// panic, and whatever parses re-encodes to a query that parses to the same value.
#[test]
fn parse_query_mutations_never_panic_and_round_trip() {
    let mut rng = Rng(0x7473_705f_6d75_7461);
    let mut bases: Vec<Vec<u8>> = sample_queries()
        .iter()
        .map(|q| tsp::encode_query(q).unwrap())
        .collect();
    // And a query as OpenSSL writes it (NULL hash parameters).
    bases.push(query_der(
        1,
        SHA256_OID,
        Some(&[0x05, 0x00]),
        &[0x11; 32],
        &[tlv(0x02, &[0x42; 8]), tlv(0x01, &[0xff])],
    ));
    let mut parsed = 0;
    let mut by_failure = std::collections::HashMap::new();
    for _ in 0..20_000 {
        let mut der = bases[rng.below(bases.len())].clone();
        for _ in 0..=rng.below(3) {
            match rng.below(5) {
                0 if !der.is_empty() => {
                    let i = rng.below(der.len());
                    der[i] ^= 1 << rng.below(8);
                }
                1 if !der.is_empty() => {
                    let i = rng.below(der.len());
                    der[i] = rng.byte();
                }
                2 => {
                    let i = rng.below(der.len() + 1);
                    der.insert(i, rng.byte());
                }
                3 if !der.is_empty() => {
                    der.remove(rng.below(der.len()));
                }
                _ => {
                    let n = rng.below(der.len() + 1);
                    der.truncate(n);
                }
            }
        }
        match tsp::parse_query(&der) {
            Ok(q) => {
                parsed += 1;
                let again = tsp::encode_query(&q).unwrap();
                assert_eq!(
                    tsp::parse_query(&again).unwrap(),
                    q,
                    "{}",
                    hex::encode(&der)
                );
            }
            Err(e) => *by_failure.entry(e.failure).or_insert(0) += 1,
        }
    }
    // The mutations reach past the outer parse: some parse, some fail on the algorithm.
    assert!(parsed > 0, "{by_failure:?}");
    assert!(
        by_failure.contains_key(&FailureInfo::BadAlg),
        "{by_failure:?}"
    );
    assert!(
        by_failure.contains_key(&FailureInfo::BadDataFormat),
        "{by_failure:?}"
    );
}

#[test]
fn encode_query_and_tst_info_refuse_bad_input() {
    let q = TimeStampQuery {
        digest_algorithm: DigestAlgorithm::Sha256,
        imprint: vec![0; 32],
        policy: None,
        nonce: None,
        cert_req: false,
    };
    let bad = |q: TimeStampQuery| tsp::encode_query(&q).unwrap_err().to_string();
    assert!(
        bad(TimeStampQuery {
            imprint: vec![0; 31],
            ..q.clone()
        })
        .contains("31 bytes")
    );
    assert!(
        bad(TimeStampQuery {
            nonce: Some(vec![0x00, 0x01]),
            ..q.clone()
        })
        .contains("`0001`")
    );
    assert!(
        bad(TimeStampQuery {
            nonce: Some(vec![]),
            ..q.clone()
        })
        .contains("nonce")
    );
    assert!(
        bad(TimeStampQuery {
            policy: Some("not an oid".into()),
            ..q.clone()
        })
        .contains("`not an oid`")
    );
    let params = |serial: &'static [u8], accuracy: Option<Accuracy>| TstInfoParams {
        policy: POLICY,
        serial,
        gen_time: OffsetDateTime::now_utc(),
        accuracy,
        query: &q,
        tsa_name: None,
    };
    assert!(
        tsp::tst_info(&params(&[0x80], None))
            .unwrap_err()
            .to_string()
            .contains("negative")
    );
    assert!(tsp::tst_info(&params(&[0x00, 0x01], None)).is_err());
    assert!(tsp::tst_info(&params(&[0x01; 22], None)).is_err());
    assert!(tsp::tst_info(&params(&[0x01; 21], None)).is_ok());
    let acc = Accuracy {
        seconds: 0,
        millis: 1000,
        micros: 0,
    };
    assert!(
        tsp::tst_info(&params(&[1], Some(acc)))
            .unwrap_err()
            .to_string()
            .contains("0 to 999")
    );
    let mut p = params(&[1], None);
    p.tsa_name = Some(b"not a certificate");
    assert!(tsp::tst_info(&p).is_err());
    // genTime is whole seconds, UTC, whatever offset the clock gives.
    let t = time::macros::datetime!(2031-02-03 04:05:06.789 +02:00);
    let mut p = params(&[1], None);
    p.gen_time = t;
    let der = tsp::tst_info(&p).unwrap();
    find(&der, b"20310203020506Z");
}
