//! The software key backend: keys generated and used by aws-lc-rs (ML-DSA included) or, for
//! SLH-DSA, the `slh-dsa` crate ([`crate::pq`]); stored only as sealed PKCS#8.

use std::sync::Arc;

use async_trait::async_trait;
use aws_lc_rs::digest;
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair, KeyPair, RsaEncoding, RsaKeyPair,
};
use signet_core::backend::{GeneratedKey, KeyBackend, KeySpec, SigningKey};
use signet_core::key::KeyHandle;
use signet_core::{Algorithm, CoreError, Digest, DigestAlgorithm, ErrorCode};
use zeroize::Zeroizing;

use crate::pq::PqKey;
use crate::seal::Kek;

/// Keys generated in this process and kept only sealed under the KEK.
#[derive(Debug, Clone)]
pub struct SoftwareBackend {
    kek: Arc<Kek>,
}

impl SoftwareBackend {
    pub const ID: &'static str = "software";

    pub fn new(kek: Kek) -> Self {
        SoftwareBackend { kek: Arc::new(kek) }
    }

    /// Generates synchronously (the async trait method runs this on a blocking thread).
    pub fn generate_blocking(&self, spec: &KeySpec) -> Result<GeneratedKey, CoreError> {
        let key = SoftwareKey::generate(spec.algorithm)?;
        let pkcs8 = key.to_pkcs8()?;
        let sealed = self.kek.seal(&aad(spec), &pkcs8)?;
        Ok(GeneratedKey {
            public_key_der: key.public_key_der().to_vec(),
            handle: KeyHandle(sealed),
        })
    }
}

/// Associated data binding a sealed key to its identity.
pub(crate) fn aad(spec: &KeySpec) -> Vec<u8> {
    format!(
        "signet software key v1|{}|{}|{}",
        spec.key_id, spec.version, spec.algorithm
    )
    .into_bytes()
}

#[async_trait]
impl KeyBackend for SoftwareBackend {
    fn id(&self) -> &str {
        Self::ID
    }

    async fn generate(&self, spec: &KeySpec) -> Result<GeneratedKey, CoreError> {
        let this = self.clone();
        let spec = spec.clone();
        tokio::task::spawn_blocking(move || this.generate_blocking(&spec))
            .await
            .map_err(|e| CoreError::internal("key generation task failed", e))?
    }

    fn open(&self, spec: &KeySpec, handle: &KeyHandle) -> Result<Box<dyn SigningKey>, CoreError> {
        let pkcs8 = self.kek.open(&aad(spec), &handle.0)?;
        Ok(Box::new(SoftwareKey::from_pkcs8(spec.algorithm, &pkcs8)?))
    }

    fn health(&self) -> Result<(), CoreError> {
        Ok(())
    }
}

enum Inner {
    Ed25519(Ed25519KeyPair),
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    /// ML-DSA (FIPS 204) and SLH-DSA (FIPS 205): see [`crate::pq`].
    Pq(PqKey),
}

/// An opened software key.
pub struct SoftwareKey {
    algorithm: Algorithm,
    inner: Inner,
    spki: Vec<u8>,
}

fn crypto_err(what: &str) -> CoreError {
    CoreError::new(
        ErrorCode::Internal,
        format!("{what} failed in the software key backend"),
    )
}

fn ecdsa_alg(a: Algorithm) -> Option<&'static EcdsaSigningAlgorithm> {
    match a {
        Algorithm::EcdsaP256 => Some(&signature::ECDSA_P256_SHA256_ASN1_SIGNING),
        Algorithm::EcdsaP384 => Some(&signature::ECDSA_P384_SHA384_ASN1_SIGNING),
        _ => None,
    }
}

fn rsa_size(a: Algorithm) -> Option<KeySize> {
    match a {
        Algorithm::Rsa3072Pss | Algorithm::Rsa3072Pkcs1 => Some(KeySize::Rsa3072),
        Algorithm::Rsa4096Pss | Algorithm::Rsa4096Pkcs1 => Some(KeySize::Rsa4096),
        _ => None,
    }
}

/// RSA padding for a key algorithm and digest: PSS with MGF1 of the same hash and a salt as long
/// as the hash (RFC 8017 §9.1, as `openssl dgst -sigopt rsa_padding_mode:pss` expects), or
/// PKCS#1 v1.5 (RFC 8017 §9.2).
fn rsa_encoding(a: Algorithm, d: DigestAlgorithm) -> Option<&'static dyn RsaEncoding> {
    let pss = matches!(a, Algorithm::Rsa3072Pss | Algorithm::Rsa4096Pss);
    Some(match (pss, d) {
        (true, DigestAlgorithm::Sha256) => &signature::RSA_PSS_SHA256,
        (true, DigestAlgorithm::Sha384) => &signature::RSA_PSS_SHA384,
        (true, DigestAlgorithm::Sha512) => &signature::RSA_PSS_SHA512,
        (false, DigestAlgorithm::Sha256) => &signature::RSA_PKCS1_SHA256,
        (false, DigestAlgorithm::Sha384) => &signature::RSA_PKCS1_SHA384,
        (false, DigestAlgorithm::Sha512) => &signature::RSA_PKCS1_SHA512,
    })
}

pub(crate) fn lc_digest_alg(d: DigestAlgorithm) -> &'static digest::Algorithm {
    match d {
        DigestAlgorithm::Sha256 => &digest::SHA256,
        DigestAlgorithm::Sha384 => &digest::SHA384,
        DigestAlgorithm::Sha512 => &digest::SHA512,
    }
}

impl SoftwareKey {
    fn generate(algorithm: Algorithm) -> Result<Self, CoreError> {
        let inner = match algorithm {
            a if a.is_post_quantum() => Inner::Pq(PqKey::generate(a)?),
            Algorithm::Ed25519 => Inner::Ed25519(
                Ed25519KeyPair::generate().map_err(|_| crypto_err("Ed25519 key generation"))?,
            ),
            a if ecdsa_alg(a).is_some() => {
                let alg = ecdsa_alg(a).ok_or_else(|| crypto_err("ECDSA parameters"))?;
                Inner::Ecdsa(
                    EcdsaKeyPair::generate(alg).map_err(|_| crypto_err("ECDSA key generation"))?,
                )
            }
            a => {
                let size = rsa_size(a).ok_or_else(|| crypto_err("RSA parameters"))?;
                Inner::Rsa(
                    RsaKeyPair::generate(size).map_err(|_| crypto_err("RSA key generation"))?,
                )
            }
        };
        SoftwareKey::with_spki(algorithm, inner)
    }

    fn from_pkcs8(algorithm: Algorithm, pkcs8: &[u8]) -> Result<Self, CoreError> {
        let rejected = |_| crypto_err("loading a sealed key");
        let inner = match algorithm {
            a if a.is_post_quantum() => Inner::Pq(PqKey::from_pkcs8(a, pkcs8)?),
            Algorithm::Ed25519 => {
                Inner::Ed25519(Ed25519KeyPair::from_pkcs8(pkcs8).map_err(rejected)?)
            }
            a if ecdsa_alg(a).is_some() => {
                let alg = ecdsa_alg(a).ok_or_else(|| crypto_err("ECDSA parameters"))?;
                Inner::Ecdsa(EcdsaKeyPair::from_pkcs8(alg, pkcs8).map_err(rejected)?)
            }
            _ => Inner::Rsa(RsaKeyPair::from_pkcs8(pkcs8).map_err(rejected)?),
        };
        let key = SoftwareKey::with_spki(algorithm, inner)?;
        if let Inner::Rsa(kp) = &key.inner {
            let expected = match rsa_size(algorithm) {
                Some(KeySize::Rsa4096) => 512,
                _ => 384,
            };
            if kp.public_modulus_len() != expected {
                return Err(crypto_err("checking a sealed RSA key's size"));
            }
        }
        Ok(key)
    }

    fn with_spki(algorithm: Algorithm, inner: Inner) -> Result<Self, CoreError> {
        let der: Result<PublicKeyX509Der<'static>, _> = match &inner {
            Inner::Ed25519(kp) => kp.public_key().as_der(),
            Inner::Ecdsa(kp) => kp.public_key().as_der(),
            Inner::Rsa(kp) => kp.public_key().as_der(),
            Inner::Pq(key) => {
                let spki = key.spki(algorithm)?;
                return Ok(SoftwareKey {
                    algorithm,
                    inner,
                    spki,
                });
            }
        };
        let spki = der
            .map_err(|_| crypto_err("encoding a public key"))?
            .as_ref()
            .to_vec();
        Ok(SoftwareKey {
            algorithm,
            inner,
            spki,
        })
    }

    /// PKCS#8 of the private key, only ever passed to the sealer; zeroized on drop.
    fn to_pkcs8(&self) -> Result<Zeroizing<Vec<u8>>, CoreError> {
        let err = |_| crypto_err("encoding a private key for sealing");
        // The library's own buffers zeroize on drop too.
        Ok(Zeroizing::new(match &self.inner {
            Inner::Ed25519(kp) => AsDer::<Pkcs8V1Der>::as_der(kp)
                .map_err(err)?
                .as_ref()
                .to_vec(),
            Inner::Ecdsa(kp) => kp.to_pkcs8v1().map_err(err)?.as_ref().to_vec(),
            Inner::Rsa(kp) => AsDer::<Pkcs8V1Der>::as_der(kp)
                .map_err(err)?
                .as_ref()
                .to_vec(),
            Inner::Pq(key) => return key.to_pkcs8(self.algorithm),
        }))
    }
}

impl SigningKey for SoftwareKey {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, CoreError> {
        match &self.inner {
            // RFC 8032 §5.1.6 over the whole message.
            Inner::Ed25519(kp) => Ok(kp.sign(message).as_ref().to_vec()),
            _ => Err(CoreError::new(
                ErrorCode::UnsupportedAlgorithm,
                format!(
                    "`{}` keys do not sign whole messages here; use an ed25519 key",
                    self.algorithm
                ),
            )),
        }
    }

    fn public_key_der(&self) -> &[u8] {
        &self.spki
    }

    fn sign_digest(&self, d: &Digest) -> Result<Vec<u8>, CoreError> {
        if !self.algorithm.accepts(d.algorithm()) {
            return Err(CoreError::new(
                ErrorCode::DigestAlgorithmNotAllowed,
                format!(
                    "`{}` keys do not sign `{}` digests",
                    self.algorithm,
                    d.algorithm()
                ),
            ));
        }
        match &self.inner {
            // RFC 8032 §5.1.6: PureEdDSA over the digest bytes as the message.
            Inner::Ed25519(kp) => Ok(kp.sign(d.as_bytes()).as_ref().to_vec()),
            // FIPS 204 §5.2 / FIPS 205 §10.2.1: pure ML-DSA / SLH-DSA, empty context, over the
            // digest bytes as the message (M' = 0x00 || 0x00 || digest).
            Inner::Pq(key) => key.sign(d.as_bytes()),
            // FIPS 186-5 §6.4.1: ECDSA over the message's hash; DER Ecdsa-Sig-Value (RFC 3279).
            Inner::Ecdsa(kp) => {
                let digest =
                    digest::Digest::import_less_safe(d.as_bytes(), lc_digest_alg(d.algorithm()))
                        .map_err(|_| crypto_err("importing a digest"))?;
                Ok(kp
                    .sign_digest(&digest)
                    .map_err(|_| crypto_err("ECDSA signing"))?
                    .as_ref()
                    .to_vec())
            }
            Inner::Rsa(kp) => {
                let encoding = rsa_encoding(self.algorithm, d.algorithm())
                    .ok_or_else(|| crypto_err("choosing RSA padding"))?;
                let digest =
                    digest::Digest::import_less_safe(d.as_bytes(), lc_digest_alg(d.algorithm()))
                        .map_err(|_| crypto_err("importing a digest"))?;
                let mut sig = vec![0u8; kp.public_modulus_len()];
                kp.sign_digest(encoding, &digest, &mut sig)
                    .map_err(|_| crypto_err("RSA signing"))?;
                Ok(sig)
            }
        }
    }
}
