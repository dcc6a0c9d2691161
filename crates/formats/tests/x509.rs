//! X.509 certificates, CSRs and CRLs built by `signet_formats::x509`, checked by real verifiers:
//! the `openssl` command line (OpenSSL 3.0 here) and aws-lc-rs through `pkix::verify_signature`.
//!
//! Keys are generated with aws-lc-rs and sign exactly what `pkix::to_be_signed` hands them (a
//! digest for ECDSA and RSA, the whole TBS for Ed25519), as Signet's key backends do.
//!
//! These tests need `openssl` on PATH and fail, not skip, without it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_lc_rs::digest as lc_digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair, RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaKeyPair,
};
use der::{Decode, Encode};
use sha2::Digest as _;
use signet_core::Algorithm;
use signet_core::backend::SignInput;
use signet_formats::FormatError;
use signet_formats::pkix;
use signet_formats::x509::{self, CertParams, Profile, Revoked};
use time::{Duration, OffsetDateTime};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

enum KeyImpl {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

/// A test signing key: what a Signet key backend is to the x509 module.
struct Key {
    alg: Algorithm,
    key: KeyImpl,
}

impl Key {
    fn new(alg: Algorithm) -> Key {
        let key = match alg {
            Algorithm::EcdsaP256 => {
                KeyImpl::Ec(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap())
            }
            Algorithm::EcdsaP384 => {
                KeyImpl::Ec(EcdsaKeyPair::generate(&ECDSA_P384_SHA384_ASN1_SIGNING).unwrap())
            }
            Algorithm::Ed25519 => KeyImpl::Ed(Ed25519KeyPair::generate().unwrap()),
            Algorithm::Rsa3072Pss | Algorithm::Rsa3072Pkcs1 => {
                KeyImpl::Rsa(RsaKeyPair::generate(KeySize::Rsa3072).unwrap())
            }
            Algorithm::Rsa4096Pss | Algorithm::Rsa4096Pkcs1 => {
                KeyImpl::Rsa(RsaKeyPair::generate(KeySize::Rsa4096).unwrap())
            }
            other => panic!("no test key for {other}"),
        };
        Key { alg, key }
    }

    /// The same RSA key used with another padding (PKCS#1 v1.5 vs PSS).
    fn with_alg(self, alg: Algorithm) -> Key {
        Key { alg, key: self.key }
    }

    fn spki(&self) -> Vec<u8> {
        match &self.key {
            KeyImpl::Ec(k) => k.public_key().as_der().unwrap().as_ref().to_vec(),
            KeyImpl::Ed(k) => k.public_key().as_der().unwrap().as_ref().to_vec(),
            KeyImpl::Rsa(k) => k.public_key().as_der().unwrap().as_ref().to_vec(),
        }
    }

    /// Signs `tbs` the way a Signet backend does: over `pkix::to_be_signed`.
    fn sign(&self, tbs: &[u8]) -> Vec<u8> {
        match (pkix::to_be_signed(self.alg, tbs).unwrap(), &self.key) {
            (SignInput::Message(m), KeyImpl::Ed(k)) => {
                assert_eq!(m, tbs, "Ed25519 signs the whole TBS (RFC 8410 §6)");
                k.sign(&m).as_ref().to_vec()
            }
            (SignInput::Digest(d), KeyImpl::Ec(k)) => {
                let lc =
                    lc_digest::Digest::import_less_safe(d.as_bytes(), lc_alg(self.alg)).unwrap();
                k.sign_digest(&lc).unwrap().as_ref().to_vec()
            }
            (SignInput::Digest(d), KeyImpl::Rsa(k)) => {
                let lc =
                    lc_digest::Digest::import_less_safe(d.as_bytes(), lc_alg(self.alg)).unwrap();
                let padding: &'static dyn aws_lc_rs::signature::RsaEncoding = match self.alg {
                    Algorithm::Rsa3072Pss | Algorithm::Rsa4096Pss => &RSA_PSS_SHA256,
                    _ => &RSA_PKCS1_SHA256,
                };
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign_digest(padding, &lc, &mut sig).unwrap();
                sig
            }
            (input, _) => panic!("{}: unexpected sign input {input:?}", self.alg),
        }
    }
}

fn lc_alg(alg: Algorithm) -> &'static lc_digest::Algorithm {
    match alg {
        Algorithm::EcdsaP384 => &lc_digest::SHA384,
        _ => &lc_digest::SHA256,
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn serial() -> Vec<u8> {
    let mut r = [0u8; 16];
    aws_lc_rs::rand::SecureRandom::fill(&SystemRandom::new(), &mut r).unwrap();
    x509::serial_from_random(r)
}

fn params<'a>(
    profile: Profile,
    subject: &'a str,
    subject_spki: &'a [u8],
    issuer: Option<&'a [u8]>,
    signer: Algorithm,
    serial: &'a [u8],
) -> CertParams<'a> {
    CertParams {
        profile,
        subject,
        subject_spki,
        issuer,
        signer,
        serial,
        not_before: now() - Duration::hours(1),
        not_after: now() + Duration::days(30),
        crl_url: Some("http://pki.example.test/issuing.crl"),
    }
}

/// Builds, signs and assembles a certificate; `signer` is the issuer's key (or the subject's
/// when `issuer` is `None`).
fn issue_with(p: &CertParams<'_>, signer: &Key) -> Vec<u8> {
    assert_eq!(p.signer, signer.alg);
    let tbs = x509::tbs_certificate(p).unwrap();
    x509::assemble_certificate(&tbs, signer.alg, &signer.sign(&tbs)).unwrap()
}

fn issue(
    profile: Profile,
    subject: &str,
    subject_key: &Key,
    issuer: Option<(&[u8], &Key)>,
) -> Vec<u8> {
    let spki = subject_key.spki();
    let serial = serial();
    let signer = issuer.map_or(subject_key, |(_, k)| k);
    let p = params(
        profile,
        subject,
        &spki,
        issuer.map(|(c, _)| c),
        signer.alg,
        &serial,
    );
    issue_with(&p, signer)
}

/// A root → issuing CA → code-signing leaf, plus a time-stamping leaf.
struct Pki {
    root: Vec<u8>,
    issuing: Vec<u8>,
    issuing_key: Key,
    leaf: Vec<u8>,
    leaf_key: Key,
    tsa: Vec<u8>,
}

fn pki(root_alg: Algorithm, issuing_alg: Algorithm, leaf_alg: Algorithm) -> Pki {
    let root_key = Key::new(root_alg);
    let issuing_key = Key::new(issuing_alg);
    let leaf_key = Key::new(leaf_alg);
    let tsa_key = Key::new(Algorithm::EcdsaP256);
    let root = issue(
        Profile::RootCa,
        "CN=Signet Test Root,O=Example",
        &root_key,
        None,
    );
    let issuing = issue(
        Profile::IssuingCa,
        "CN=Signet Test Issuing CA,O=Example",
        &issuing_key,
        Some((&root, &root_key)),
    );
    let leaf = issue(
        Profile::CodeSigning,
        "CN=Release Signing,O=Example",
        &leaf_key,
        Some((&issuing, &issuing_key)),
    );
    let tsa = issue(
        Profile::Timestamping,
        "CN=Signet TSA,O=Example",
        &tsa_key,
        Some((&issuing, &issuing_key)),
    );
    Pki {
        root,
        issuing,
        issuing_key,
        leaf,
        leaf_key,
        tsa,
    }
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "signet-x509-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Output {
    ok: bool,
    text: String,
}

/// Runs `openssl args...`; fails the test with a clear message when openssl is missing.
fn openssl(args: &[&str]) -> Output {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `openssl` ({e}); these tests check certificates with the real OpenSSL: install it (apt-get install openssl)"
            )
        });
    Output {
        ok: out.status.success(),
        text: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn x509_text(path: &Path) -> String {
    let out = openssl(&["x509", "-in", p(path), "-noout", "-text"]);
    assert!(out.ok, "{}", out.text);
    out.text
}

/// The lines of `openssl x509 -text` from the line containing `header` to the next extension.
fn extension_text(text: &str, header: &str) -> String {
    let mut lines = text.lines().skip_while(|l| !l.contains(header));
    let mut out = lines.next().unwrap_or_default().trim().to_owned();
    for l in lines {
        if l.trim_start().starts_with("X509v3") || l.trim_start().starts_with("Signature") {
            break;
        }
        out.push('|');
        out.push_str(l.trim());
    }
    out
}

/// RFC 7093 §2 method 1, computed independently of the crate: SHA-256 of the BIT STRING value.
fn expected_key_id(spki_der: &[u8]) -> Vec<u8> {
    let spki = spki::SubjectPublicKeyInfoRef::from_der(spki_der).unwrap();
    let hash = sha2::Sha256::digest(spki.subject_public_key.raw_bytes());
    hash[..20].to_vec()
}

fn is_x509_err(r: Result<impl std::fmt::Debug, FormatError>) -> String {
    match r {
        Err(FormatError::X509(m)) => m,
        other => panic!("expected an X509 error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// OpenSSL accepts what Signet builds
// ---------------------------------------------------------------------------------------------

fn check_pki_with_openssl(pki: &Pki, label: &str) {
    let dir = TempDir::new();
    let root = dir.write("root.pem", x509::certificate_pem(&pki.root));
    let issuing = dir.write("issuing.pem", x509::certificate_pem(&pki.issuing));
    let leaf = dir.write("leaf.pem", x509::certificate_pem(&pki.leaf));
    let tsa = dir.write("tsa.pem", x509::certificate_pem(&pki.tsa));

    // OpenSSL 3.0 has no `codesign` purpose (3.2 added it): verify the chain for any purpose
    // under -x509_strict, then check the EKU itself.
    let help = openssl(&["verify", "-help"]);
    assert!(
        !help.text.contains("codesign"),
        "this OpenSSL knows -purpose codesign: use it here"
    );
    for (cert, purpose) in [(&leaf, "any"), (&tsa, "timestampsign"), (&issuing, "any")] {
        let out = openssl(&[
            "verify",
            "-x509_strict",
            "-purpose",
            purpose,
            "-CAfile",
            p(&root),
            "-untrusted",
            p(&issuing),
            p(cert),
        ]);
        assert!(out.ok && out.text.contains(": OK"), "{label}: {}", out.text);
    }
    // The code-signing leaf is not a time-stamping certificate.
    let out = openssl(&[
        "verify",
        "-purpose",
        "timestampsign",
        "-CAfile",
        p(&root),
        "-untrusted",
        p(&issuing),
        p(&leaf),
    ]);
    assert!(
        !out.ok,
        "{label}: code-signing leaf passed as TSA: {}",
        out.text
    );
    // Without the issuing CA there is no chain.
    let out = openssl(&["verify", "-CAfile", p(&root), p(&leaf)]);
    assert!(!out.ok, "{label}: {}", out.text);

    let eku = openssl(&[
        "x509",
        "-in",
        p(&leaf),
        "-noout",
        "-ext",
        "extendedKeyUsage",
    ]);
    assert!(eku.ok, "{}", eku.text);
    assert!(eku.text.contains("Code Signing"), "{label}: {}", eku.text);
    assert!(!eku.text.contains("critical"), "{label}: {}", eku.text);

    let text = x509_text(&root);
    assert!(text.contains("Version: 3 (0x2)"), "{text}");
    assert_eq!(
        extension_text(&text, "Basic Constraints"),
        "X509v3 Basic Constraints: critical|CA:TRUE"
    );
    assert_eq!(
        extension_text(&text, "X509v3 Key Usage"),
        "X509v3 Key Usage: critical|Certificate Sign, CRL Sign"
    );
    assert!(!text.contains("CRL Distribution Points"), "{text}");

    let text = x509_text(&issuing);
    assert_eq!(
        extension_text(&text, "Basic Constraints"),
        "X509v3 Basic Constraints: critical|CA:TRUE, pathlen:0"
    );
    assert_eq!(
        extension_text(&text, "X509v3 Key Usage"),
        "X509v3 Key Usage: critical|Certificate Sign, CRL Sign"
    );
    assert!(
        text.contains("Issuer: O = Example, CN = Signet Test Root"),
        "{text}"
    );
    assert!(
        text.contains("Subject: O = Example, CN = Signet Test Issuing CA"),
        "{text}"
    );

    let text = x509_text(&leaf);
    assert_eq!(
        extension_text(&text, "Basic Constraints"),
        "X509v3 Basic Constraints: critical|CA:FALSE"
    );
    assert_eq!(
        extension_text(&text, "X509v3 Key Usage"),
        "X509v3 Key Usage: critical|Digital Signature"
    );
    assert_eq!(
        extension_text(&text, "Extended Key Usage"),
        "X509v3 Extended Key Usage:|Code Signing"
    );
    assert_eq!(
        extension_text(&text, "CRL Distribution Points"),
        "X509v3 CRL Distribution Points:|Full Name:|URI:http://pki.example.test/issuing.crl"
    );

    let text = x509_text(&tsa);
    assert_eq!(
        extension_text(&text, "Extended Key Usage"),
        "X509v3 Extended Key Usage: critical|Time Stamping"
    );

    // SKI (RFC 7093 method 1) and AKI = the issuer's SKI, as OpenSSL reads them.
    for (cert, issuer) in [
        (&pki.root, &pki.root),
        (&pki.issuing, &pki.root),
        (&pki.leaf, &pki.issuing),
        (&pki.tsa, &pki.issuing),
    ] {
        let info = x509::parse_certificate(cert).unwrap();
        let issuer_info = x509::parse_certificate(issuer).unwrap();
        let ski = expected_key_id(&info.spki_der);
        assert_eq!(info.subject_key_id.as_deref(), Some(ski.as_slice()));
        assert_eq!(info.authority_key_id, issuer_info.subject_key_id);
        let path = dir.write("c.pem", x509::certificate_pem(cert));
        let text = x509_text(&path);
        let colon_hex = |b: &[u8]| {
            b.iter()
                .map(|x| format!("{x:02X}"))
                .collect::<Vec<_>>()
                .join(":")
        };
        assert!(
            extension_text(&text, "Subject Key Identifier").contains(&colon_hex(&ski)),
            "{text}"
        );
        assert!(
            extension_text(&text, "Authority Key Identifier")
                .contains(&colon_hex(issuer_info.subject_key_id.as_deref().unwrap())),
            "{text}"
        );
    }

    // Signet's own checks agree.
    let chain = vec![pki.leaf.clone(), pki.issuing.clone(), pki.root.clone()];
    let info = x509::check_chain(&pki.leaf_key.spki(), &chain).unwrap();
    assert!(info.eku_code_signing && info.eku_present && !info.eku_time_stamping);
    assert_eq!(info.key_usage_digital_signature, Some(true));
    assert_eq!(info.key_usage_cert_sign, Some(false));
    assert!(!info.is_ca && !info.self_issued);
    assert_eq!(info.subject, "CN=Release Signing,O=Example");
    assert_eq!(info.issuer, "CN=Signet Test Issuing CA,O=Example");
    x509::verify_issued_by(&pki.tsa, &pki.issuing).unwrap();
    let tsa_info = x509::parse_certificate(&pki.tsa).unwrap();
    assert!(tsa_info.eku_time_stamping && tsa_info.eku_time_stamping_critical);
    assert!(!tsa_info.eku_code_signing);
    let issuing_info = x509::parse_certificate(&pki.issuing).unwrap();
    assert!(issuing_info.is_ca);
    assert_eq!(issuing_info.path_len, Some(0));
    assert_eq!(issuing_info.key_usage_cert_sign, Some(true));
    let root_info = x509::parse_certificate(&pki.root).unwrap();
    assert!(root_info.is_ca && root_info.self_issued && root_info.path_len.is_none());
    assert_eq!(root_info.authority_key_id, root_info.subject_key_id);
}

#[test]
fn openssl_verifies_ecdsa_chain() {
    let pki = pki(
        Algorithm::EcdsaP384,
        Algorithm::EcdsaP256,
        Algorithm::EcdsaP256,
    );
    check_pki_with_openssl(&pki, "ecdsa");
}

#[test]
fn openssl_verifies_rsa_pss_and_pkcs1_chain() {
    // Root RSA-3072 PSS, issuing CA RSA-3072 PKCS#1, leaf P-384.
    let pki = pki(
        Algorithm::Rsa3072Pss,
        Algorithm::Rsa3072Pkcs1,
        Algorithm::EcdsaP384,
    );
    check_pki_with_openssl(&pki, "rsa");
    let dir = TempDir::new();
    let issuing = dir.write("issuing.pem", x509::certificate_pem(&pki.issuing));
    let text = x509_text(&issuing);
    assert!(
        text.contains("Signature Algorithm: rsassaPss"),
        "issuing CA is signed by the PSS root: {text}"
    );
    assert!(text.contains("Salt Length: 0x20"), "{text}");
    assert!(text.contains("Mask Algorithm: mgf1 with sha256"), "{text}");
    let leaf = dir.write("leaf.pem", x509::certificate_pem(&pki.leaf));
    assert!(x509_text(&leaf).contains("Signature Algorithm: sha256WithRSAEncryption"));
}

#[test]
fn openssl_verifies_mixed_ed25519_chain() {
    // Ed25519 root signing an ECDSA issuing CA signing an Ed25519 leaf.
    let pki = pki(Algorithm::Ed25519, Algorithm::EcdsaP256, Algorithm::Ed25519);
    check_pki_with_openssl(&pki, "ed25519");
}

#[test]
fn openssl_verifies_rsa_4096_root_and_far_future_validity() {
    let root_key = Key::new(Algorithm::Rsa4096Pss);
    let leaf_key = Key::new(Algorithm::EcdsaP256);
    let root_spki = root_key.spki();
    let root_serial = serial();
    let mut p = params(
        Profile::RootCa,
        "CN=Long Root",
        &root_spki,
        None,
        Algorithm::Rsa4096Pss,
        &root_serial,
    );
    // Through 2049 UTCTime, from 2050 GeneralizedTime (RFC 5280 §4.1.2.5).
    let not_after = time::macros::datetime!(2051-06-30 12:34:56 UTC);
    p.not_after = not_after;
    let root = issue_with(&p, &root_key);
    let info = x509::parse_certificate(&root).unwrap();
    assert_eq!(info.not_after, not_after);
    assert_eq!(info.not_before, p.not_before.replace_nanosecond(0).unwrap());
    // notAfter is GeneralizedTime `20510630123456Z`: tag 0x18, length 15.
    let gt = [&[0x18u8, 0x0f][..], b"20510630123456Z"].concat();
    assert!(root.windows(gt.len()).any(|w| w == gt.as_slice()));

    let leaf_spki = leaf_key.spki();
    let leaf_serial = serial();
    let lp = params(
        Profile::CodeSigning,
        "CN=Leaf Under RSA-4096",
        &leaf_spki,
        Some(&root),
        Algorithm::Rsa4096Pss,
        &leaf_serial,
    );
    let leaf = issue_with(&lp, &root_key);
    let dir = TempDir::new();
    let root_pem = dir.write("root.pem", x509::certificate_pem(&root));
    let leaf_pem = dir.write("leaf.pem", x509::certificate_pem(&leaf));
    let out = openssl(&[
        "verify",
        "-x509_strict",
        "-CAfile",
        p_(&root_pem),
        p_(&leaf_pem),
    ]);
    assert!(out.ok, "{}", out.text);
    let out = openssl(&["x509", "-in", p_(&root_pem), "-noout", "-enddate"]);
    assert!(
        out.text.contains("Jun 30 12:34:56 2051 GMT"),
        "{}",
        out.text
    );
    x509::check_chain(&leaf_spki, &[leaf, root]).unwrap();
}

fn p_(path: &Path) -> &str {
    p(path)
}

// ---------------------------------------------------------------------------------------------
// CSRs and CRLs
// ---------------------------------------------------------------------------------------------

#[test]
fn openssl_verifies_csrs() {
    let dir = TempDir::new();
    for alg in [
        Algorithm::EcdsaP256,
        Algorithm::EcdsaP384,
        Algorithm::Ed25519,
        Algorithm::Rsa3072Pss,
    ] {
        let key = Key::new(alg);
        let info = x509::csr_info("CN=Release Signing,OU=Build,O=Example", &key.spki()).unwrap();
        let csr = x509::assemble_csr(&info, alg, &key.sign(&info)).unwrap();
        let path = dir.write("csr.pem", x509::csr_pem(&csr));
        let out = openssl(&["req", "-in", p(&path), "-verify", "-noout", "-subject"]);
        assert!(out.ok, "{alg}: {}", out.text);
        assert!(out.text.contains("verify OK"), "{alg}: {}", out.text);
        assert!(
            out.text
                .contains("subject=O = Example, OU = Build, CN = Release Signing"),
            "{alg}: {}",
            out.text
        );
        // A changed signature or a changed subject no longer verifies.
        let mut bad_sig = csr.clone();
        let last = bad_sig.len() - 1;
        bad_sig[last] ^= 0x01;
        let mut bad_subject = csr.clone();
        let at = bad_subject.windows(5).position(|w| w == b"Build").unwrap();
        bad_subject[at] = b'b';
        for (what, der) in [("signature", bad_sig), ("subject", bad_subject)] {
            let path = dir.write("bad.pem", x509::csr_pem(&der));
            let out = openssl(&["req", "-in", p(&path), "-verify", "-noout"]);
            // OpenSSL 3.0 `req -verify` exits 0 even when the signature fails: read its verdict.
            assert!(
                out.text.contains("verify failure") && !out.text.contains("verify OK"),
                "{alg}: tampered {what} verified: {}",
                out.text
            );
        }
        // The CSR key must be the signer's kind.
        let other = if alg == Algorithm::Ed25519 {
            Algorithm::EcdsaP256
        } else {
            Algorithm::Ed25519
        };
        assert!(x509::assemble_csr(&info, other, &[1; 64]).is_err());
    }
    assert!(x509::csr_info("O=No Common Name", &Key::new(Algorithm::Ed25519).spki()).is_err());
    assert!(x509::csr_info("CN=x", b"not a key").is_err());
}

#[test]
fn openssl_verifies_crl_and_rejects_revoked_leaf() {
    let pki = pki(
        Algorithm::EcdsaP256,
        Algorithm::EcdsaP256,
        Algorithm::EcdsaP256,
    );
    let revoked_info = x509::parse_certificate(&pki.leaf).unwrap();
    let other_serial = hex::encode(serial());
    let at = now() - Duration::minutes(5);
    let entries = [
        Revoked {
            serial_hex: &revoked_info.serial,
            revoked_at: at,
            reason_code: 1,
        },
        Revoked {
            serial_hex: &other_serial,
            revoked_at: at,
            reason_code: 0,
        },
    ];
    let this_update = now() - Duration::minutes(1);
    let next_update = now() + Duration::days(7);
    let tbs = x509::tbs_crl(
        &pki.issuing,
        Algorithm::EcdsaP256,
        this_update,
        next_update,
        42,
        &entries,
    )
    .unwrap();
    let crl = x509::assemble_crl(&tbs, Algorithm::EcdsaP256, &pki.issuing_key.sign(&tbs)).unwrap();

    let dir = TempDir::new();
    let root = dir.write("root.pem", x509::certificate_pem(&pki.root));
    let issuing = dir.write("issuing.pem", x509::certificate_pem(&pki.issuing));
    let revoked = dir.write("revoked.pem", x509::certificate_pem(&pki.leaf));
    let good = dir.write("good.pem", x509::certificate_pem(&pki.tsa));
    let crl_path = dir.write("crl.pem", x509::crl_pem(&crl));

    let out = openssl(&[
        "crl",
        "-in",
        p(&crl_path),
        "-CAfile",
        p(&issuing),
        "-verify",
        "-noout",
    ]);
    assert!(out.ok && out.text.contains("verify OK"), "{}", out.text);
    // A changed CRL does not verify; nor does the CRL against another CA.
    let mut tampered = crl.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    let tampered_path = dir.write("tampered.pem", x509::crl_pem(&tampered));
    let out = openssl(&[
        "crl",
        "-in",
        p(&tampered_path),
        "-CAfile",
        p(&issuing),
        "-verify",
        "-noout",
    ]);
    // Like `req -verify`, OpenSSL 3.0 `crl -verify` exits 0 on a bad signature.
    assert!(
        out.text.contains("verify failure") && !out.text.contains("verify OK"),
        "{}",
        out.text
    );
    let out = openssl(&[
        "crl",
        "-in",
        p(&crl_path),
        "-CAfile",
        p(&root),
        "-verify",
        "-noout",
    ]);
    assert!(!out.ok || !out.text.contains("verify OK"), "{}", out.text);

    let out = openssl(&["crl", "-in", p(&crl_path), "-noout", "-text"]);
    assert!(out.ok, "{}", out.text);
    assert!(out.text.contains("Version 2 (0x1)"), "{}", out.text);
    assert!(out.text.contains("X509v3 CRL Number:"), "{}", out.text);
    assert!(out.text.contains("42"), "{}", out.text);
    assert!(out.text.contains("Key Compromise"), "{}", out.text);
    assert_eq!(
        out.text.matches("Serial Number:").count(),
        2,
        "{}",
        out.text
    );
    assert_eq!(
        out.text.matches("CRL Reason Code").count(),
        1,
        "{}",
        out.text
    );
    assert!(
        out.text
            .to_uppercase()
            .contains(&revoked_info.serial.to_uppercase()),
        "{}",
        out.text
    );
    let issuing_info = x509::parse_certificate(&pki.issuing).unwrap();
    let aki: String = issuing_info
        .subject_key_id
        .unwrap()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    assert!(out.text.contains(&aki), "{}", out.text);

    let verify = |leaf: &Path| {
        openssl(&[
            "verify",
            "-crl_check",
            "-CAfile",
            p(&root),
            "-untrusted",
            p(&issuing),
            "-CRLfile",
            p(&crl_path),
            p(leaf),
        ])
    };
    let out = verify(&revoked);
    assert!(!out.ok, "revoked leaf passed: {}", out.text);
    assert!(out.text.contains("certificate revoked"), "{}", out.text);
    let out = verify(&good);
    assert!(out.ok, "{}", out.text);

    // An empty CRL omits revokedCertificates (RFC 5280 §5.1.2.6) and still verifies.
    let tbs = x509::tbs_crl(
        &pki.issuing,
        Algorithm::EcdsaP256,
        this_update,
        next_update,
        43,
        &[],
    )
    .unwrap();
    let empty =
        x509::assemble_crl(&tbs, Algorithm::EcdsaP256, &pki.issuing_key.sign(&tbs)).unwrap();
    let empty_path = dir.write("empty.pem", x509::crl_pem(&empty));
    let out = openssl(&[
        "crl",
        "-in",
        p(&empty_path),
        "-CAfile",
        p(&issuing),
        "-verify",
        "-noout",
        "-text",
    ]);
    assert!(
        out.ok && out.text.contains("No Revoked Certificates"),
        "{}",
        out.text
    );

    // Bad inputs.
    fn r(serial_hex: &str, reason_code: u8) -> Revoked<'_> {
        Revoked {
            serial_hex,
            revoked_at: OffsetDateTime::now_utc(),
            reason_code,
        }
    }
    let crl_of = |ca: &[u8], entries: &[Revoked<'_>], next| {
        x509::tbs_crl(ca, Algorithm::EcdsaP256, this_update, next, 1, entries)
    };
    assert!(crl_of(&pki.issuing, &[r("zz", 0)], next_update).is_err());
    assert!(crl_of(&pki.issuing, &[r("80", 0)], next_update).is_err());
    assert!(crl_of(&pki.issuing, &[r("01", 7)], next_update).is_err());
    assert!(crl_of(&pki.issuing, &[r("01", 11)], next_update).is_err());
    assert!(crl_of(&pki.issuing, &[r("01", 0), r("01", 1)], next_update).is_err());
    assert!(crl_of(&pki.issuing, &[], this_update).is_err());
    assert!(
        crl_of(&pki.leaf, &[], next_update).is_err(),
        "a leaf cannot issue CRLs"
    );
    assert!(crl_of(b"garbage", &[], next_update).is_err());
    assert!(
        x509::tbs_crl(
            &pki.issuing,
            Algorithm::Ed25519,
            this_update,
            next_update,
            1,
            &[]
        )
        .is_err(),
        "signer must match the CA key"
    );
    assert!(x509::assemble_crl(b"\x30\x00", Algorithm::EcdsaP256, &[1; 70]).is_err());
    assert!(x509::assemble_crl(&tbs, Algorithm::EcdsaP384, &[1; 70]).is_err());
}

// ---------------------------------------------------------------------------------------------
// Chain checks
// ---------------------------------------------------------------------------------------------

#[test]
fn chain_checks_for_every_algorithm() {
    for alg in [
        Algorithm::EcdsaP256,
        Algorithm::EcdsaP384,
        Algorithm::Ed25519,
        Algorithm::Rsa3072Pkcs1,
        Algorithm::Rsa3072Pss,
    ] {
        let root_key = Key::new(alg);
        let leaf_key = Key::new(alg);
        let root = issue(Profile::RootCa, "CN=Root", &root_key, None);
        let leaf = issue(
            Profile::CodeSigning,
            "CN=Leaf",
            &leaf_key,
            Some((&root, &root_key)),
        );
        x509::verify_issued_by(&leaf, &root).unwrap();
        x509::verify_issued_by(&root, &root).unwrap();
        let info = x509::check_chain(&leaf_key.spki(), &[leaf.clone(), root.clone()]).unwrap();
        assert_eq!(info.subject, "CN=Leaf");
        // A self-signed code-signing certificate on its own is a valid (single) chain.
        let own = issue(Profile::CodeSigning, "CN=Self", &leaf_key, None);
        x509::check_chain(&leaf_key.spki(), std::slice::from_ref(&own)).unwrap();
        // ...but it cannot issue certificates.
        assert!(x509::verify_issued_by(&own, &own).is_err());
    }
    // One RSA CA key may sign with either padding; the identifier follows the signer algorithm.
    let rsa = Key::new(Algorithm::Rsa3072Pkcs1);
    let root = issue(Profile::RootCa, "CN=Root", &rsa, None);
    let rsa = rsa.with_alg(Algorithm::Rsa3072Pss);
    let leaf_key = Key::new(Algorithm::Ed25519);
    let leaf = issue(
        Profile::CodeSigning,
        "CN=Leaf",
        &leaf_key,
        Some((&root, &rsa)),
    );
    x509::verify_issued_by(&leaf, &root).unwrap();
}

#[test]
fn chain_checks_reject_bad_chains() {
    let pki = pki(
        Algorithm::EcdsaP256,
        Algorithm::EcdsaP256,
        Algorithm::EcdsaP256,
    );
    let key = pki.leaf_key.spki();
    let (leaf, issuing, root) = (pki.leaf.clone(), pki.issuing.clone(), pki.root.clone());
    x509::check_chain(&key, &[leaf.clone(), issuing.clone(), root.clone()]).unwrap();
    // A chain may stop below the root (the caller supplies the trust anchor).
    x509::check_chain(&key, &[leaf.clone(), issuing.clone()]).unwrap();

    // Leaf key differs.
    let other = Key::new(Algorithm::EcdsaP256).spki();
    let m = is_x509_err(x509::check_chain(&other, &[leaf.clone(), issuing.clone()]));
    assert!(m.contains("different public key"), "{m}");
    // Out of order.
    is_x509_err(x509::check_chain(
        &key,
        &[issuing.clone(), leaf.clone(), root.clone()],
    ));
    let m = is_x509_err(x509::check_chain(
        &key,
        &[leaf.clone(), root.clone(), issuing.clone()],
    ));
    assert!(m.contains("was issued by"), "{m}");
    // Skipping the issuing CA.
    is_x509_err(x509::check_chain(&key, &[leaf.clone(), root.clone()]));
    // Empty and over-long chains.
    is_x509_err(x509::check_chain(&key, &[]));
    let long: Vec<Vec<u8>> = std::iter::repeat_n(leaf.clone(), x509::MAX_CHAIN + 1).collect();
    let m = is_x509_err(x509::check_chain(&key, &long));
    assert!(m.contains("at most 8"), "{m}");

    // Tampered signature and tampered TBS.
    let mut bad_sig = leaf.clone();
    let last = bad_sig.len() - 1;
    bad_sig[last] ^= 0x01;
    let m = is_x509_err(x509::verify_issued_by(&bad_sig, &issuing));
    assert!(m.contains("does not verify"), "{m}");
    let mut bad_tbs = leaf.clone();
    let at = bad_tbs.windows(7).position(|w| w == b"Release").unwrap();
    bad_tbs[at] = b'r';
    is_x509_err(x509::verify_issued_by(&bad_tbs, &issuing));
    is_x509_err(x509::check_chain(&key, &[bad_tbs, issuing.clone()]));

    // A different CA of the same name (other key): AKI mismatch.
    let impostor_key = Key::new(Algorithm::EcdsaP256);
    let root_key_stub = Key::new(Algorithm::EcdsaP256);
    let fake_root = issue(
        Profile::RootCa,
        "CN=Signet Test Root,O=Example",
        &root_key_stub,
        None,
    );
    let impostor = issue(
        Profile::IssuingCa,
        "CN=Signet Test Issuing CA,O=Example",
        &impostor_key,
        Some((&fake_root, &root_key_stub)),
    );
    let m = is_x509_err(x509::verify_issued_by(&leaf, &impostor));
    assert!(m.contains("authority key"), "{m}");
    // A CA of another name.
    let m = is_x509_err(x509::verify_issued_by(&leaf, &fake_root));
    assert!(m.contains("was issued by"), "{m}");
    // The issuing CA checked against a root that did not sign it.
    is_x509_err(x509::check_chain(
        &key,
        &[leaf.clone(), issuing.clone(), fake_root.clone()],
    ));

    // Signet refuses to build under a non-CA issuer or under a pathLen 0 CA.
    let k = Key::new(Algorithm::EcdsaP256);
    let spki = k.spki();
    let s = serial();
    let leaf_as_issuer = params(
        Profile::CodeSigning,
        "CN=Child",
        &spki,
        Some(&leaf),
        Algorithm::EcdsaP256,
        &s,
    );
    let m = is_x509_err(x509::tbs_certificate(&leaf_as_issuer));
    assert!(m.contains("not a CA"), "{m}");
    let sub_ca = params(
        Profile::IssuingCa,
        "CN=Sub CA",
        &spki,
        Some(&issuing),
        Algorithm::EcdsaP256,
        &s,
    );
    let m = is_x509_err(x509::tbs_certificate(&sub_ca));
    assert!(m.contains("pathLenConstraint 0"), "{m}");

    // Garbage never panics.
    for garbage in [
        &b""[..],
        b"\x30",
        b"\x30\x80\x00\x00",
        b"garbage",
        &[0xff; 100],
    ] {
        is_x509_err(x509::parse_certificate(garbage));
        is_x509_err(x509::verify_issued_by(garbage, &issuing));
        is_x509_err(x509::verify_issued_by(&leaf, garbage));
        assert!(x509::check_chain(&key, &[garbage.to_vec()]).is_err());
    }
    let huge = [leaf.clone(), vec![0; x509::MAX_CERT_LEN]].concat();
    let m = is_x509_err(x509::parse_certificate(&huge));
    assert!(m.contains("65536"), "{m}");
    for n in 0..leaf.len() {
        assert!(x509::parse_certificate(&leaf[..n]).is_err());
    }
    // Every single-byte change of the leaf makes it fail to verify.
    for i in 0..leaf.len() {
        for flip in [0x01u8, 0x80] {
            let mut c = leaf.clone();
            c[i] ^= flip;
            assert!(
                x509::verify_issued_by(&c, &issuing).is_err(),
                "byte {i} ^ {flip:#x} still verifies"
            );
        }
    }
}

/// A chain whose issuer is not a CA, built by OpenSSL (Signet refuses to build one).
#[test]
fn openssl_built_child_of_a_non_ca_is_rejected() {
    let dir = TempDir::new();
    let cnf = dir.write(
        "leaf.cnf",
        "[req]\ndistinguished_name=dn\n[dn]\n[leaf]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyCertSign\nsubjectKeyIdentifier=hash\n",
    );
    let key = dir.path("k.pem");
    let cert = dir.path("c.pem");
    let out = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        p(&key),
        "-out",
        p(&cert),
        "-subj",
        "/CN=Not A CA",
        "-days",
        "2",
        "-config",
        p(&cnf),
        "-extensions",
        "leaf",
    ]);
    assert!(out.ok, "{}", out.text);
    let child_key = dir.path("ck.pem");
    let csr = dir.path("child.csr");
    let child = dir.path("child.pem");
    let out = openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        p(&child_key),
        "-out",
        p(&csr),
        "-subj",
        "/CN=Child",
        "-config",
        p(&cnf),
    ]);
    assert!(out.ok, "{}", out.text);
    let out = openssl(&[
        "x509",
        "-req",
        "-in",
        p(&csr),
        "-CA",
        p(&cert),
        "-CAkey",
        p(&key),
        "-out",
        p(&child),
        "-days",
        "1",
        "-set_serial",
        "7",
    ]);
    assert!(out.ok, "{}", out.text);
    let issuer = x509::parse_certificates(&std::fs::read(&cert).unwrap()).unwrap();
    let child = x509::parse_certificates(&std::fs::read(&child).unwrap()).unwrap();
    let m = is_x509_err(x509::verify_issued_by(&child[0], &issuer[0]));
    assert!(m.contains("not a CA"), "{m}");
    // It is self-signed and verifies as such, but cannot sign the child.
    let info = x509::parse_certificate(&issuer[0]).unwrap();
    x509::check_chain(&info.spki_der, &issuer).unwrap();
    let child_info = x509::parse_certificate(&child[0]).unwrap();
    assert!(
        x509::check_chain(&child_info.spki_der, &[child[0].clone(), issuer[0].clone()]).is_err()
    );
}

// ---------------------------------------------------------------------------------------------
// Reading what OpenSSL builds
// ---------------------------------------------------------------------------------------------

fn openssl_field(pem: &Path, args: &[&str]) -> String {
    let mut all = vec!["x509", "-in", p(pem), "-noout"];
    all.extend_from_slice(args);
    let out = openssl(&all);
    assert!(out.ok, "{}", out.text);
    out.text.trim().to_owned()
}

#[test]
fn parse_certificate_reads_openssl_certificates() {
    let dir = TempDir::new();
    let cnf = dir.write(
        "ca.cnf",
        "[req]\ndistinguished_name=dn\n[dn]\n[ca]\nbasicConstraints=critical,CA:TRUE,pathlen:2\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\nextendedKeyUsage=codeSigning,timeStamping\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\nsubjectAltName=DNS:ca.example.test\n",
    );
    // (key options, digest): ECDSA with SHA-256 and SHA-512, RSA PKCS#1 with SHA-384 and RSA-PSS
    // with SHA-384 exercise verify_signature beyond what Signet writes.
    let cases: [(&[&str], &str, &[&str]); 5] = [
        (
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            "-sha256",
            &[],
        ),
        (
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            "-sha512",
            &[],
        ),
        (
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
            "-sha384",
            &[],
        ),
        (&["-newkey", "rsa:2048"], "-sha384", &[]),
        (
            &["-newkey", "rsa:2048"],
            "-sha384",
            &[
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:digest",
            ],
        ),
    ];
    for (i, (key_opts, digest, sigopts)) in cases.iter().enumerate() {
        let cert = dir.path(&format!("c{i}.pem"));
        let key = dir.path(&format!("k{i}.pem"));
        let mut args = vec![
            "req",
            "-x509",
            "-nodes",
            "-keyout",
            p(&key),
            "-out",
            p(&cert),
        ];
        args.extend_from_slice(key_opts);
        args.extend_from_slice(&[
            *digest,
            "-subj",
            "/C=DE/O=Example Org/CN=OpenSSL Test \\, Comma",
            "-days",
            "30",
            "-set_serial",
            "0x00ab12cd34",
            "-config",
            p(&cnf),
            "-extensions",
            "ca",
        ]);
        args.extend_from_slice(sigopts);
        let out = openssl(&args);
        assert!(out.ok, "case {i}: {}", out.text);

        let pem = std::fs::read(&cert).unwrap();
        let certs = x509::parse_certificates(&pem).unwrap();
        assert_eq!(certs.len(), 1);
        let info = x509::parse_certificate(&certs[0]).unwrap();
        let rfc2253 = openssl_field(&cert, &["-subject", "-nameopt", "RFC2253"]);
        assert_eq!(format!("subject={}", info.subject), rfc2253, "case {i}");
        assert_eq!(info.subject, "CN=OpenSSL Test \\, Comma,O=Example Org,C=DE");
        assert_eq!(info.issuer, info.subject);
        let serial = openssl_field(&cert, &["-serial"]);
        // The INTEGER content octets keep the 0x00 that makes 0xab12cd34 positive; OpenSSL
        // prints the value.
        assert_eq!(info.serial, "00ab12cd34");
        assert_eq!(
            format!("serial=00{}", serial.trim_start_matches("serial=")),
            format!("serial={}", info.serial.to_uppercase())
        );
        let start = openssl_field(&cert, &["-startdate", "-dateopt", "iso_8601"]);
        let end = openssl_field(&cert, &["-enddate", "-dateopt", "iso_8601"]);
        let iso = |t: OffsetDateTime| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        };
        assert_eq!(start, format!("notBefore={}", iso(info.not_before)));
        assert_eq!(end, format!("notAfter={}", iso(info.not_after)));
        let pubkey = openssl(&["x509", "-in", p(&cert), "-noout", "-pubkey"]);
        assert_eq!(
            info.spki_der,
            signet_formats::pem::pem_to_spki(&pubkey.text).unwrap(),
            "case {i}"
        );
        assert!(info.is_ca);
        assert_eq!(info.path_len, Some(2));
        assert_eq!(info.key_usage_cert_sign, Some(true));
        assert_eq!(info.key_usage_digital_signature, Some(true));
        assert!(info.eku_present && info.eku_code_signing && info.eku_time_stamping);
        assert!(!info.eku_time_stamping_critical);
        assert!(info.self_issued);
        let ski = openssl_field(&cert, &["-ext", "subjectKeyIdentifier"]);
        let ski_hex = hex::encode_upper(info.subject_key_id.as_deref().unwrap());
        assert!(
            ski.replace(':', "").contains(&ski_hex),
            "{ski} vs {ski_hex}"
        );
        assert_eq!(info.authority_key_id, info.subject_key_id);
        // OpenSSL's self-signature verifies with aws-lc-rs.
        x509::check_chain(&info.spki_der, &certs).unwrap();
        x509::verify_issued_by(&certs[0], &certs[0]).unwrap();
    }
}

#[test]
fn parse_certificates_reads_pem_bundles_and_der() {
    let pki = pki(
        Algorithm::EcdsaP256,
        Algorithm::EcdsaP256,
        Algorithm::EcdsaP256,
    );
    // As `openssl x509 -text` and bundle files have it: text around and between the blocks.
    let bundle = format!(
        "subject=CN = Release Signing\nCertificate:\n    Data: ...\n{}\nissuer text\n\n{}trailing\n",
        x509::certificate_pem(&pki.leaf),
        x509::certificate_pem(&pki.issuing)
    );
    let certs = x509::parse_certificates(bundle.as_bytes()).unwrap();
    assert_eq!(certs, vec![pki.leaf.clone(), pki.issuing.clone()]);
    let crlf = bundle.replace('\n', "\r\n");
    assert_eq!(x509::parse_certificates(crlf.as_bytes()).unwrap().len(), 2);
    assert_eq!(
        x509::parse_certificates(&pki.root).unwrap(),
        vec![pki.root.clone()]
    );

    // OpenSSL reads our PEM back to the same DER.
    let dir = TempDir::new();
    let path = dir.write("leaf.pem", x509::certificate_pem(&pki.leaf));
    let der_path = dir.path("leaf.der");
    let out = openssl(&[
        "x509",
        "-in",
        p(&path),
        "-outform",
        "DER",
        "-out",
        p(&der_path),
    ]);
    assert!(out.ok, "{}", out.text);
    assert_eq!(std::fs::read(&der_path).unwrap(), pki.leaf);

    for bad in [
        &b""[..],
        b"hello",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n",
        b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",
        b"-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n",
        b"\x30\x03\x02\x01\x01",
    ] {
        is_x509_err(x509::parse_certificates(bad));
    }
    let nine = x509::certificate_pem(&pki.leaf).repeat(x509::MAX_CHAIN + 1);
    is_x509_err(x509::parse_certificates(nine.as_bytes()));
}

// ---------------------------------------------------------------------------------------------
// Parameter checks and pkix
// ---------------------------------------------------------------------------------------------

#[test]
fn tbs_certificate_rejects_bad_parameters() {
    let root_key = Key::new(Algorithm::EcdsaP256);
    let root = issue(Profile::RootCa, "CN=Root", &root_key, None);
    let key = Key::new(Algorithm::Ed25519);
    let spki = key.spki();
    let s = serial();
    let base = params(
        Profile::CodeSigning,
        "CN=Leaf",
        &spki,
        Some(&root),
        Algorithm::EcdsaP256,
        &s,
    );
    x509::tbs_certificate(&base).unwrap();

    let mut p = base.clone();
    p.not_after = p.not_before;
    assert!(is_x509_err(x509::tbs_certificate(&p)).contains("before it starts"));
    let mut p = base.clone();
    p.not_before = time::macros::datetime!(1960-01-01 0:00 UTC);
    is_x509_err(x509::tbs_certificate(&p));
    for subject in ["", "O=Example", "CN=", "nonsense", "CN=a,,O=b"] {
        let mut p = base.clone();
        p.subject = subject;
        is_x509_err(x509::tbs_certificate(&p));
    }
    let long = format!("CN={}", "x".repeat(1100));
    let mut p = base.clone();
    p.subject = &long;
    is_x509_err(x509::tbs_certificate(&p));
    for serial in [&[][..], &[0], &[0x80, 1], &[0, 1], &[1; 21]] {
        let mut p = base.clone();
        p.serial = serial;
        is_x509_err(x509::tbs_certificate(&p));
    }
    let mut p = base.clone();
    p.subject_spki = b"not a key";
    is_x509_err(x509::tbs_certificate(&p));
    let mut p = base.clone();
    p.issuer = Some(b"garbage");
    is_x509_err(x509::tbs_certificate(&p));
    let mut p = base.clone();
    p.profile = Profile::RootCa;
    is_x509_err(x509::tbs_certificate(&p));
    for url in ["ftp://x/y.crl", "http://", "http://a b/c", "relative/path"] {
        let mut p = base.clone();
        p.crl_url = Some(url);
        is_x509_err(x509::tbs_certificate(&p));
    }
    // The signer must hold the issuer's kind of key.
    let mut p = base.clone();
    p.signer = Algorithm::Ed25519;
    is_x509_err(x509::tbs_certificate(&p));
    let mut p = base.clone();
    p.signer = Algorithm::EcdsaP384;
    is_x509_err(x509::tbs_certificate(&p));
    // Post-quantum signers are not supported (yet).
    for pq in [Algorithm::MlDsa65, Algorithm::SlhDsaSha2_128s] {
        let mut p = base.clone();
        p.signer = pq;
        assert!(matches!(
            x509::tbs_certificate(&p),
            Err(FormatError::Unsupported(_))
        ));
        assert!(matches!(
            pkix::to_be_signed(pq, b"x"),
            Err(FormatError::Unsupported(_))
        ));
    }
    // Self-signed: the signer is the subject key.
    let mut p = base.clone();
    p.issuer = None;
    is_x509_err(x509::tbs_certificate(&p));
    p.signer = Algorithm::Ed25519;
    x509::tbs_certificate(&p).unwrap();

    // Assembly checks the TBS and the algorithm.
    let tbs = x509::tbs_certificate(&base).unwrap();
    is_x509_err(x509::assemble_certificate(
        b"junk",
        Algorithm::EcdsaP256,
        &[1; 70],
    ));
    is_x509_err(x509::assemble_certificate(
        &tbs,
        Algorithm::EcdsaP384,
        &[1; 70],
    ));
    is_x509_err(x509::assemble_certificate(&tbs, Algorithm::EcdsaP256, &[]));
    is_x509_err(x509::assemble_certificate(
        &[tbs.clone(), vec![0]].concat(),
        Algorithm::EcdsaP256,
        &[1; 70],
    ));
    // A wrong signature assembles but does not verify.
    let bad = x509::assemble_certificate(&tbs, Algorithm::EcdsaP256, &[1; 70]).unwrap();
    is_x509_err(x509::verify_issued_by(&bad, &root));
    let good =
        x509::assemble_certificate(&tbs, Algorithm::EcdsaP256, &root_key.sign(&tbs)).unwrap();
    x509::verify_issued_by(&good, &root).unwrap();
}

#[test]
fn verify_signature_matches_key_and_algorithm() {
    let msg = b"the DER to be signed";
    let keys: Vec<Key> = [
        Algorithm::EcdsaP256,
        Algorithm::EcdsaP384,
        Algorithm::Ed25519,
        Algorithm::Rsa3072Pkcs1,
    ]
    .into_iter()
    .map(Key::new)
    .collect();
    for key in &keys {
        let id = pkix::signature_algorithm(key.alg).unwrap();
        let sig = key.sign(msg);
        pkix::verify_signature(&key.spki(), &id, msg, &sig).unwrap();
        is_x509_err(pkix::verify_signature(&key.spki(), &id, b"other", &sig));
        for other in &keys {
            if other.alg != key.alg {
                // Another key type, or another algorithm identifier, never verifies.
                assert!(pkix::verify_signature(&other.spki(), &id, msg, &sig).is_err());
                let other_id = pkix::signature_algorithm(other.alg).unwrap();
                assert!(pkix::verify_signature(&key.spki(), &other_id, msg, &sig).is_err());
            }
        }
        assert!(pkix::verify_signature(b"junk", &id, msg, &sig).is_err());
    }
    // The RSA key signs with PSS too.
    let rsa = keys
        .into_iter()
        .nth(3)
        .unwrap()
        .with_alg(Algorithm::Rsa3072Pss);
    let pss = pkix::signature_algorithm(Algorithm::Rsa3072Pss).unwrap();
    let sig = rsa.sign(msg);
    pkix::verify_signature(&rsa.spki(), &pss, msg, &sig).unwrap();
    let pkcs1 = pkix::signature_algorithm(Algorithm::Rsa3072Pkcs1).unwrap();
    assert!(pkix::verify_signature(&rsa.spki(), &pkcs1, msg, &sig).is_err());
    // RSA-4096 identifiers are those of its default digest, SHA-256.
    assert_eq!(
        pkix::signature_algorithm(Algorithm::Rsa4096Pss).unwrap(),
        pss
    );
    assert_eq!(
        pkix::signature_algorithm(Algorithm::Rsa4096Pkcs1).unwrap(),
        pkcs1
    );
    // Unknown identifiers are unsupported, not a crash.
    let md5_rsa = spki::AlgorithmIdentifierOwned {
        oid: der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.4"),
        parameters: None,
    };
    assert!(matches!(
        pkix::verify_signature(&rsa.spki(), &md5_rsa, msg, &sig),
        Err(FormatError::Unsupported(_))
    ));
    // Digest identifiers round-trip through DER.
    for d in signet_core::DigestAlgorithm::ALL {
        let der = pkix::digest_algorithm(d).to_der().unwrap();
        let back = spki::AlgorithmIdentifierOwned::from_der(&der).unwrap();
        assert_eq!(pkix::digest_algorithm_from(&back).unwrap(), d);
    }
}
