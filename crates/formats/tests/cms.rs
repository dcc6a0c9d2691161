//! CMS detached signatures (`signet_formats::cms`) checked by a real verifier: `openssl cms
//! -verify` (OpenSSL 3.0 here) over the file, `openssl cms -cmsout -print` for the attributes,
//! and `openssl ts -verify` for the time-stamp attached to the signature value (RFC 3161
//! Appendix A). Signatures OpenSSL makes go through `cms::verify_detached` the other way.
//!
//! Certificates are made at test time with the `openssl` command line (a root CA, code-signing
//! certificates with `extendedKeyUsage = codeSigning`, a TSA certificate); private keys are
//! loaded into aws-lc-rs from PKCS#8 and sign what `pkix::to_be_signed` hands them, as Signet's
//! key backends do.
//!
//! These tests need `openssl` on PATH and fail, not skip, without it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use signet_core::{Algorithm, Digest, DigestAlgorithm};
use signet_formats::FormatError;
use signet_formats::cms::{self, PendingSignedData, Signer};
use signet_formats::tsp::{self, TimeStampQuery, TstInfoParams};
use time::OffsetDateTime;

mod common;
use common::*;

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

// ---------------------------------------------------------------------------------------------
// Signing as the server does
// ---------------------------------------------------------------------------------------------

const CONTENT: &[u8] = b"#!/bin/sh\necho a release artifact\n";

fn sign_detached(
    leaf: &Leaf,
    chain: &[Vec<u8>],
    d: DigestAlgorithm,
    content: &[u8],
) -> (PendingSignedData, Vec<u8>) {
    let pending = cms::detached(
        &digest_of(d, content),
        OffsetDateTime::now_utc(),
        &leaf.signer(chain),
    )
    .unwrap();
    let signature = leaf.key.sign(pending.signed_attributes());
    (pending, signature)
}

/// A time-stamp from the library TSA over `imprint`.
fn timestamp(imprint: &Digest, tsa: &Leaf, chain: &[Vec<u8>]) -> Vec<u8> {
    let q = TimeStampQuery {
        digest_algorithm: imprint.algorithm(),
        imprint: imprint.as_bytes().to_vec(),
        policy: None,
        nonce: Some(vec![0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08]),
        cert_req: true,
    };
    let q = tsp::parse_query(&tsp::encode_query(&q).unwrap()).unwrap();
    let info = tsp::tst_info(&TstInfoParams {
        policy: "1.3.6.1.4.1.99999.1.1",
        serial: &[0x2a],
        gen_time: OffsetDateTime::now_utc(),
        accuracy: None,
        query: &q,
        tsa_name: Some(&tsa.der),
    })
    .unwrap();
    let pending = cms::timestamp_token(&info, &tsa.signer(chain), q.cert_req).unwrap();
    let signature = tsa.key.sign(pending.signed_attributes());
    let token = pending.finish(&signature, None).unwrap();
    // Through the wire format and back, as a client would get it.
    let resp = tsp::response_granted(&token).unwrap();
    let token = tsp::parse_response(&resp).unwrap();
    tsp::verify_token(&token, imprint, q.nonce.as_deref(), &[]).unwrap();
    token
}

/// `openssl cms -verify` of a detached signature over `content`, with extra arguments.
fn openssl_cms_verify(pki: &Pki, content: &Path, p7s: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "cms",
        "-verify",
        "-binary",
        "-content",
        p(content),
        "-inform",
        "DER",
        "-in",
        p(p7s),
        "-CAfile",
        p(&pki.root_pem),
        "-out",
        "/dev/null",
    ];
    args.extend_from_slice(extra);
    openssl(&args)
}

/// The code-signing algorithms and the content digest each signs with.
fn cases() -> [(Algorithm, DigestAlgorithm); 4] {
    [
        (Algorithm::EcdsaP256, DigestAlgorithm::Sha256),
        (Algorithm::EcdsaP384, DigestAlgorithm::Sha384),
        (Algorithm::Rsa3072Pkcs1, DigestAlgorithm::Sha256),
        (Algorithm::Rsa3072Pss, DigestAlgorithm::Sha256),
    ]
}

/// OpenSSL 3.0's default purpose for `cms -verify` is S/MIME signing (smimesign); a
/// certificate whose only extended key usage is codeSigning fails it ("unsuitable
/// certificate purpose"), and OpenSSL 3.0 has no code-signing purpose. `-purpose any` checks the
/// chain and signature without the S/MIME key-usage rule.
const PURPOSE_ANY: &[&str] = &["-purpose", "any"];

#[test]
fn openssl_verifies_detached_signatures() {
    let pki = Pki::new("cms");
    let dir = &pki.dir;
    let content = dir.write("artifact.sh", CONTENT);
    let other = dir.write("other.sh", b"#!/bin/sh\necho tampered\n");
    for (alg, d) in cases() {
        let leaf = pki.leaf(alg, "codesign", &format!("Signet Code Signing {alg}"));
        let (pending, signature) = sign_detached(&leaf, &pki.chain, d, CONTENT);
        let p7s_der = pending.finish(&signature, None).unwrap();
        let p7s = dir.write(&format!("artifact-{alg}.p7s"), &p7s_der);

        // The default purpose (smimesign) refuses a code-signing-only certificate...
        let out = openssl_cms_verify(&pki, &content, &p7s, &[]);
        assert!(
            !out.ok && out.text.contains("unsuitable certificate purpose"),
            "{alg}: {}",
            out.text
        );
        // ...and `-purpose any` verifies.
        let out = openssl_cms_verify(&pki, &content, &p7s, PURPOSE_ANY);
        assert!(
            out.ok && out.text.contains("Verification successful"),
            "{alg}: {}",
            out.text
        );
        // Other content does not.
        let out = openssl_cms_verify(&pki, &other, &p7s, PURPOSE_ANY);
        assert!(
            !out.ok && out.text.contains("Verification failure"),
            "{alg}: {}",
            out.text
        );

        let print = ok(&["cms", "-cmsout", "-print", "-inform", "DER", "-in", p(&p7s)]);
        for needle in [
            "contentType: pkcs7-signedData",
            "version: 1",
            "eContentType: pkcs7-data",
            "eContent: <ABSENT>",
            "object: contentType (1.2.840.113549.1.9.3)",
            "object: signingTime (1.2.840.113549.1.9.5)",
            "UTCTIME:",
            "object: messageDigest (1.2.840.113549.1.9.4)",
            "object: id-smime-aa-signingCertificateV2 (1.2.840.113549.1.9.16.2.47)",
            &format!("algorithm: {} (", d.as_str()),
        ] {
            assert!(print.contains(needle), "{alg}: `{needle}` in\n{print}");
        }

        let unsigned = print.split("unsignedAttrs:").nth(1).unwrap_or_default();
        assert!(
            unsigned.trim_start().starts_with("<ABSENT>"),
            "{alg}: {print}"
        );

        let v = cms::verify_detached(&p7s_der, &digest_of(d, CONTENT)).unwrap();
        assert_eq!(v.signer_certificate, leaf.der);
        assert_eq!(v.certificates.len(), 2);
        assert!(v.certificates.contains(&pki.chain[0]));
        assert_eq!(v.digest_algorithm, d);
        assert!(
            (OffsetDateTime::now_utc() - v.signing_time.unwrap())
                .whole_seconds()
                .abs()
                < 60
        );
        assert!(v.timestamp.is_none());
        // Other content, the right algorithm: refused.
        let e = cms::verify_detached(&p7s_der, &digest_of(d, b"tampered")).unwrap_err();
        assert!(e.to_string().contains("the file changed"), "{e}");
    }
}

#[test]
fn ed25519_signatures_follow_rfc_8419() {
    let pki = Pki::new("cms");
    let dir = &pki.dir;
    let content = dir.write("artifact.sh", CONTENT);
    let leaf = pki.leaf(
        Algorithm::Ed25519,
        "codesign",
        "Signet Code Signing Ed25519",
    );
    for d in DigestAlgorithm::ALL {
        let (pending, signature) = sign_detached(&leaf, &pki.chain, d, CONTENT);
        let p7s_der = pending.finish(&signature, None).unwrap();
        let p7s = dir.write(&format!("ed25519-{d}.p7s"), &p7s_der);
        let out = openssl_cms_verify(&pki, &content, &p7s, PURPOSE_ANY);
        if !out.ok {
            assert!(
                out.text.contains(OPENSSL_ED25519_CMS_LIMIT),
                "{d}: {}",
                out.text
            );
        }
        openssl_checks_ed25519_signed_attrs(dir, &p7s, &leaf.pem);
        let print = ok(&["cms", "-cmsout", "-print", "-inform", "DER", "-in", p(&p7s)]);
        assert!(
            print.contains("algorithm: ED25519 (1.3.101.112)"),
            "{print}"
        );
        let v = cms::verify_detached(&p7s_der, &digest_of(d, CONTENT)).unwrap();
        assert_eq!(v.digest_algorithm, d);
        assert!(cms::verify_detached(&p7s_der, &digest_of(d, b"other")).is_err());
    }
}

#[test]
fn timestamped_signatures_verify_in_openssl_and_report_the_time() {
    let pki = Pki::new("cms");
    let dir = &pki.dir;
    let content = dir.write("artifact.sh", CONTENT);
    let tsa = pki.leaf(Algorithm::EcdsaP256, "tsa", "Signet TSA");
    for (alg, d) in [
        (Algorithm::EcdsaP256, DigestAlgorithm::Sha256),
        (Algorithm::Rsa3072Pss, DigestAlgorithm::Sha256),
        (Algorithm::Ed25519, DigestAlgorithm::Sha512),
    ] {
        let leaf = pki.leaf(alg, "codesign", "Signet Code Signing");
        let (pending, signature) = sign_detached(&leaf, &pki.chain, d, CONTENT);
        // The imprint is the hash of the signature value (RFC 3161 Appendix A).
        let unstamped = pending.clone().finish(&signature, None).unwrap();
        for ts_alg in [DigestAlgorithm::Sha256, DigestAlgorithm::Sha384] {
            let imprint = cms::signature_imprint(&unstamped, ts_alg).unwrap();
            assert_eq!(imprint, digest_of(ts_alg, &signature));
        }
        let imprint = cms::signature_imprint(&unstamped, DigestAlgorithm::Sha384).unwrap();
        let token = timestamp(&imprint, &tsa, &pki.chain);
        let p7s_der = pending.clone().finish(&signature, Some(&token)).unwrap();
        let p7s = dir.write(&format!("stamped-{alg}.p7s"), &p7s_der);

        let out = openssl_cms_verify(&pki, &content, &p7s, PURPOSE_ANY);
        if alg == Algorithm::Ed25519 {
            assert!(
                out.ok || out.text.contains(OPENSSL_ED25519_CMS_LIMIT),
                "{}",
                out.text
            );
        } else {
            assert!(
                out.ok && out.text.contains("Verification successful"),
                "{alg}: {}",
                out.text
            );
        }
        let print = ok(&["cms", "-cmsout", "-print", "-inform", "DER", "-in", p(&p7s)]);
        assert!(
            print.contains("object: id-smime-aa-timeStampToken (1.2.840.113549.1.9.16.2.14)"),
            "{print}"
        );
        // OpenSSL's TSA client agrees the token covers the signature value.
        let sig_path = dir.write("signature-value.bin", &signature);
        let token_path = dir.write("token.der", &token);
        let out = ok(&[
            "ts",
            "-verify",
            "-data",
            p(&sig_path),
            "-in",
            p(&token_path),
            "-token_in",
            "-CAfile",
            p(&pki.root_pem),
        ]);
        assert!(out.contains("Verification: OK"), "{out}");

        let v = cms::verify_detached(&p7s_der, &digest_of(d, CONTENT)).unwrap();
        let ts = v.timestamp.expect("the time-stamp is reported");
        assert_eq!(ts.signer_certificate, tsa.der);
        assert_eq!(ts.digest_algorithm, DigestAlgorithm::Sha384);
        assert_eq!(ts.imprint, imprint.as_bytes());
        assert!(
            (OffsetDateTime::now_utc() - ts.gen_time)
                .whole_seconds()
                .abs()
                < 60
        );

        // A token over something else is refused, naming the time-stamp.
        let wrong = timestamp(
            &digest_of(DigestAlgorithm::Sha256, b"not the signature"),
            &tsa,
            &pki.chain,
        );
        let bad = pending.clone().finish(&signature, Some(&wrong)).unwrap();
        let e = cms::verify_detached(&bad, &digest_of(d, CONTENT))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("time-stamp on the CMS signature is invalid") && e.contains("imprint"),
            "{e}"
        );
        // Not a token at all.
        assert!(
            pending
                .clone()
                .finish(&signature, Some(b"\x04\x01x"))
                .is_err()
        );
    }
}

#[test]
fn tampering_is_refused() {
    let pki = Pki::new("cms");
    let leaf = pki.leaf(Algorithm::EcdsaP256, "codesign", "Signet Code Signing");
    let d = DigestAlgorithm::Sha256;
    let digest = digest_of(d, CONTENT);
    // Without the chain: every byte is then covered by the signature, the ESS certificate
    // hash or a structural check. (Issuer certificates a file carries are not signed; the
    // caller's chain check covers them.)
    let (pending, signature) = sign_detached(&leaf, &[], d, CONTENT);
    let p7s = pending.finish(&signature, None).unwrap();
    cms::verify_detached(&p7s, &digest).unwrap();

    // Wrong digest: other content, other algorithm.
    let e = cms::verify_detached(&p7s, &digest_of(d, b"x"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("the file changed or the signature is for another file"),
        "{e}"
    );
    let e = cms::verify_detached(&p7s, &digest_of(DigestAlgorithm::Sha512, CONTENT))
        .unwrap_err()
        .to_string();
    assert!(e.contains("pass the sha256 digest of the file"), "{e}");
    // A tampered signature value.
    let mut t = p7s.clone();
    let at = find(&t, &signature) + signature.len() - 3;
    t[at] ^= 0x01;
    let e = cms::verify_detached(&t, &digest).unwrap_err().to_string();
    assert!(e.contains("CMS signature does not verify"), "{e}");
    // The signer certificate swapped for another with the same key is caught by the ESS hash:
    // here, any change to the certificate bytes.
    let cert_at = find(&p7s, &leaf.der);
    let mut t = p7s.clone();
    t[cert_at + leaf.der.len() - 80] ^= 0x01; // inside the certificate's signature
    let e = cms::verify_detached(&t, &digest).unwrap_err().to_string();
    assert!(e.contains("names another certificate"), "{e}");

    let mut rng = 0x2545_f491_u32;
    for i in 0..p7s.len() {
        rng = rng.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let mut t = p7s.clone();
        t[i] ^= 1 << (rng >> 29);
        assert!(
            cms::verify_detached(&t, &digest).is_err(),
            "flipped byte {i}"
        );
    }
    for len in 0..p7s.len() {
        assert!(cms::verify_detached(&p7s[..len], &digest).is_err());
        assert!(cms::signature_imprint(&p7s[..len], d).is_err());
    }
    assert!(cms::verify_detached(&vec![0x30; 2 * 1024 * 1024], &digest).is_err());
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("needle present")
}

#[test]
fn signatures_made_by_openssl_verify() {
    let pki = Pki::new("cms");
    let dir = &pki.dir;
    let content = dir.write("artifact.sh", CONTENT);
    for alg in [
        Algorithm::EcdsaP256,
        Algorithm::Rsa3072Pkcs1,
        Algorithm::EcdsaP384,
    ] {
        let leaf = pki.leaf(alg, "codesign", "OpenSSL signer");
        for md in ["sha256", "sha384", "sha512"] {
            let p7s = dir.path(&format!("openssl-{alg}-{md}.p7s"));
            ok(&[
                "cms",
                "-sign",
                "-binary",
                "-in",
                p(&content),
                "-signer",
                p(&leaf.pem),
                "-inkey",
                p(&leaf.key_pem),
                "-md",
                md,
                "-outform",
                "DER",
                "-out",
                p(&p7s),
            ]);
            let d: DigestAlgorithm = md.parse().unwrap();
            let v = cms::verify_detached(&std::fs::read(&p7s).unwrap(), &digest_of(d, CONTENT))
                .unwrap_or_else(|e| panic!("{alg}/{md}: {e}"));
            assert_eq!(v.signer_certificate, leaf.der);
            assert_eq!(v.digest_algorithm, d);
            assert!(v.signing_time.is_some());
        }
    }
    let leaf = pki.leaf(Algorithm::EcdsaP256, "codesign", "OpenSSL signer");
    let digest = digest_of(DigestAlgorithm::Sha256, CONTENT);
    let sign = |name: &str, extra: &[&str]| {
        let p7s = dir.path(name);
        let mut args = vec![
            "cms",
            "-sign",
            "-binary",
            "-in",
            p(&content),
            "-signer",
            p(&leaf.pem),
            "-inkey",
            p(&leaf.key_pem),
            "-md",
            "sha256",
            "-outform",
            "DER",
            "-out",
            p(&p7s),
        ];
        args.extend_from_slice(extra);
        ok(&args);
        cms::verify_detached(&std::fs::read(&p7s).unwrap(), &digest)
            .unwrap_err()
            .to_string()
    };
    let e = sign("attached.p7s", &["-nodetach"]);
    assert!(e.contains("attached"), "{e}");
    let e = sign("noattr.p7s", &["-noattr"]);
    assert!(e.contains("no signed attributes"), "{e}");
    let e = sign("keyid.p7s", &["-keyid"]);
    assert!(e.contains("subject key identifier"), "{e}");
    let e = sign("nocerts.p7s", &["-nocerts"]);
    assert!(e.contains("pass the signer certificate"), "{e}");
}

#[test]
fn detached_refuses_what_verifiers_would_not_check() {
    let pki = Pki::new("cms");
    let rsa = pki.leaf(Algorithm::Rsa3072Pkcs1, "codesign", "RSA signer");
    let now = OffsetDateTime::now_utc();
    // RSA and ECDSA keys sign the attributes with their default digest, which verifiers take
    // from digestAlgorithm: the content digest must be the same.
    let e = cms::detached(
        &digest_of(DigestAlgorithm::Sha384, CONTENT),
        now,
        &rsa.signer(&[]),
    )
    .unwrap_err();
    assert!(matches!(e, FormatError::Unsupported(_)), "{e}");
    assert!(e.to_string().contains("send the sha256 digest"), "{e}");
    // Post-quantum keys cannot sign CMS yet.
    let pq = Signer {
        certificate: &rsa.der,
        chain: &[],
        algorithm: Algorithm::MlDsa65,
    };
    assert!(matches!(
        cms::detached(&digest_of(DigestAlgorithm::Sha384, CONTENT), now, &pq),
        Err(FormatError::Unsupported(_))
    ));
    // Not a certificate.
    let bad = Signer {
        certificate: b"-----BEGIN CERTIFICATE-----",
        chain: &[],
        algorithm: Algorithm::Rsa3072Pkcs1,
    };
    let e = cms::detached(&digest_of(DigestAlgorithm::Sha256, CONTENT), now, &bad).unwrap_err();
    assert!(e.to_string().contains("pass DER, not PEM"), "{e}");
    // signingTime after 2049 is a GeneralizedTime (RFC 5652 §11.3).
    let later = time::macros::datetime!(2051-01-01 00:00:00 UTC);
    let pending = cms::detached(
        &digest_of(DigestAlgorithm::Sha256, CONTENT),
        later,
        &rsa.signer(&[]),
    )
    .unwrap();
    let attrs = pending.signed_attributes();
    find(attrs, b"20510101000000Z");
    assert_eq!(attrs[0], 0x31, "signed attributes are a DER SET OF");
}
