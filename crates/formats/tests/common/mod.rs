//! Test PKI shared by the CMS and RFC 3161 tests: OpenSSL-made certificates, aws-lc-rs signing,
//! and the `openssl` runner. Each test binary uses part of it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_lc_rs::digest as lc_digest;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaKeyPair,
};
use signet_core::backend::SignInput;
use signet_core::{Algorithm, Digest, DigestAlgorithm};
use signet_formats::cms::Signer;
use signet_formats::pkix;

// ---------------------------------------------------------------------------------------------
// Test PKI (OpenSSL-made certificates, aws-lc-rs signing)
// ---------------------------------------------------------------------------------------------

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "signet-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct Output {
    pub ok: bool,
    pub text: String,
}

/// Runs `openssl args...`; fails the test with a clear message when openssl is missing.
pub fn openssl(args: &[&str]) -> Output {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `openssl` ({e}); these tests check signatures and time-stamps with the real OpenSSL: install it (apt-get install openssl)"
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

pub fn ok(args: &[&str]) -> String {
    let out = openssl(args);
    assert!(out.ok, "openssl {} failed:\n{}", args.join(" "), out.text);
    out.text
}

pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

pub const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[root]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[tsa]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = critical,timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[tsa_noncritical]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[codesign]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = codeSigning
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

pub enum KeyImpl {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

/// A private key made by `openssl genpkey`, loaded into aws-lc-rs from PKCS#8 DER.
pub struct Key {
    pub alg: Algorithm,
    pub key: KeyImpl,
}

impl Key {
    /// Signs `tbs` the way a Signet backend does: over `pkix::to_be_signed`.
    pub fn sign(&self, tbs: &[u8]) -> Vec<u8> {
        match (pkix::to_be_signed(self.alg, tbs).unwrap(), &self.key) {
            (SignInput::Message(m), KeyImpl::Ed(k)) => k.sign(&m).as_ref().to_vec(),
            (SignInput::Digest(d), KeyImpl::Ec(k)) => {
                let lc = lc_digest::Digest::import_less_safe(d.as_bytes(), lc_alg(d.algorithm()))
                    .unwrap();
                k.sign_digest(&lc).unwrap().as_ref().to_vec()
            }
            (SignInput::Digest(d), KeyImpl::Rsa(k)) => {
                assert_eq!(d.algorithm(), DigestAlgorithm::Sha256);
                let lc = lc_digest::Digest::import_less_safe(d.as_bytes(), lc_alg(d.algorithm()))
                    .unwrap();
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

pub fn lc_alg(d: DigestAlgorithm) -> &'static lc_digest::Algorithm {
    match d {
        DigestAlgorithm::Sha256 => &lc_digest::SHA256,
        DigestAlgorithm::Sha384 => &lc_digest::SHA384,
        DigestAlgorithm::Sha512 => &lc_digest::SHA512,
    }
}

pub fn digest_of(d: DigestAlgorithm, data: &[u8]) -> Digest {
    Digest::new(d, lc_digest::digest(lc_alg(d), data).as_ref().to_vec()).unwrap()
}

/// A certificate issued by the test root, with its key.
pub struct Leaf {
    pub pem: PathBuf,
    pub der: Vec<u8>,
    pub key_pem: PathBuf,
    pub key: Key,
}

impl Leaf {
    pub fn signer<'a>(&'a self, chain: &'a [Vec<u8>]) -> Signer<'a> {
        Signer {
            certificate: &self.der,
            chain,
            algorithm: self.key.alg,
        }
    }
}

pub struct Pki {
    pub dir: TempDir,
    pub root_pem: PathBuf,
    pub chain: Vec<Vec<u8>>,
    pub serial: AtomicUsize,
}

impl Pki {
    pub fn new(tag: &str) -> Pki {
        let dir = TempDir::new(tag);
        let cnf = dir.write("openssl.cnf", OPENSSL_CNF);
        let root_key = genpkey(&dir, "root", Algorithm::EcdsaP256);
        let root_pem = dir.path("root.pem");
        ok(&[
            "req",
            "-x509",
            "-new",
            "-config",
            p(&cnf),
            "-extensions",
            "root",
            "-key",
            p(&root_key),
            "-subj",
            "/O=Signet Test/CN=Signet Test Root",
            "-days",
            "30",
            "-out",
            p(&root_pem),
        ]);
        let root_der = pem_to_der(&dir, &root_pem);
        Pki {
            dir,
            root_pem,
            chain: vec![root_der],
            serial: AtomicUsize::new(0x1000),
        }
    }

    /// A certificate for a new `alg` key with the extensions of `section` of [`OPENSSL_CNF`].
    pub fn leaf(&self, alg: Algorithm, section: &str, cn: &str) -> Leaf {
        let n = self.serial.fetch_add(1, Ordering::Relaxed);
        let name = format!("{section}-{n}");
        let key_pem = genpkey(&self.dir, &name, alg);
        let csr = self.dir.path(&format!("{name}.csr"));
        let pem = self.dir.path(&format!("{name}.pem"));
        let cnf = self.dir.path("openssl.cnf");
        let subj = format!("/O=Signet Test/CN={cn}");
        ok(&[
            "req",
            "-new",
            "-config",
            p(&cnf),
            "-key",
            p(&key_pem),
            "-subj",
            &subj,
            "-out",
            p(&csr),
        ]);
        ok(&[
            "x509",
            "-req",
            "-in",
            p(&csr),
            "-CA",
            p(&self.root_pem),
            "-CAkey",
            p(&self.dir.path("root.key.pem")),
            "-set_serial",
            &n.to_string(),
            "-days",
            "30",
            "-extfile",
            p(&cnf),
            "-extensions",
            section,
            "-out",
            p(&pem),
        ]);
        let der = pem_to_der(&self.dir, &pem);
        let p8 = self.dir.path(&format!("{name}.p8"));
        ok(&[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            p(&key_pem),
            "-outform",
            "DER",
            "-out",
            p(&p8),
        ]);
        let pkcs8 = std::fs::read(&p8).unwrap();
        let key = match alg {
            Algorithm::EcdsaP256 => KeyImpl::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8).unwrap(),
            ),
            Algorithm::EcdsaP384 => KeyImpl::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING, &pkcs8).unwrap(),
            ),
            Algorithm::Ed25519 => KeyImpl::Ed(Ed25519KeyPair::from_pkcs8(&pkcs8).unwrap()),
            _ => KeyImpl::Rsa(RsaKeyPair::from_pkcs8(&pkcs8).unwrap()),
        };
        Leaf {
            pem,
            der,
            key_pem,
            key: Key { alg, key },
        }
    }
}

pub fn genpkey(dir: &TempDir, name: &str, alg: Algorithm) -> PathBuf {
    let out = dir.path(&format!("{name}.key.pem"));
    let args: &[&str] = match alg {
        Algorithm::EcdsaP256 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        Algorithm::EcdsaP384 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
        Algorithm::Ed25519 => &["-algorithm", "ED25519"],
        Algorithm::Rsa3072Pss | Algorithm::Rsa3072Pkcs1 => {
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"]
        }
        other => panic!("no test key for {other}"),
    };
    let mut all = vec!["genpkey"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-out", p(&out)]);
    ok(&all);
    out
}

pub fn pem_to_der(dir: &TempDir, pem: &Path) -> Vec<u8> {
    let der = dir.path(&format!(
        "{}.der",
        pem.file_name().unwrap().to_str().unwrap()
    ));
    ok(&["x509", "-in", p(pem), "-outform", "DER", "-out", p(&der)]);
    std::fs::read(der).unwrap()
}
