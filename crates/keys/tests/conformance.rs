//! The key-backend conformance suite: every `KeyBackend` implementation must pass it.
//! Today: the software backend. The PKCS#11 backend joins with the key custody work.
//!
//! Signatures are checked with aws-lc-rs's verifier here; the end-to-end tests check them with
//! OpenSSL as well.

use std::sync::Arc;

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};
use signet_core::backend::{KeyBackend, KeySpec};
use signet_core::key::KeyHandle;
use signet_core::{Algorithm, CoreError, Digest, DigestAlgorithm, ErrorCode};
use signet_keys::{Kek, SoftwareBackend};

type R = Result<(), CoreError>;

fn spec(alg: Algorithm, id: &str, version: u32) -> KeySpec {
    KeySpec {
        key_id: id.into(),
        version,
        algorithm: alg,
    }
}

fn digest_of(alg: DigestAlgorithm, msg: &[u8]) -> Result<Digest, CoreError> {
    let a = match alg {
        DigestAlgorithm::Sha256 => &digest::SHA256,
        DigestAlgorithm::Sha384 => &digest::SHA384,
        DigestAlgorithm::Sha512 => &digest::SHA512,
    };
    Digest::new(alg, digest::digest(a, msg).as_ref().to_vec())
}

/// Independent check: verify with the message (not the digest) where the scheme hashes it.
fn verify(
    alg: Algorithm,
    d: DigestAlgorithm,
    spki: &[u8],
    msg: &[u8],
    digest: &Digest,
    sig: &[u8],
) -> bool {
    use DigestAlgorithm::{Sha256, Sha384, Sha512};
    let pss = matches!(alg, Algorithm::Rsa3072Pss | Algorithm::Rsa4096Pss);
    let v: &'static dyn VerificationAlgorithm = match (alg, d) {
        (Algorithm::Ed25519, _) => &signature::ED25519,
        (Algorithm::EcdsaP256, _) => &signature::ECDSA_P256_SHA256_ASN1,
        (Algorithm::EcdsaP384, _) => &signature::ECDSA_P384_SHA384_ASN1,
        (_, Sha256) if pss => &signature::RSA_PSS_2048_8192_SHA256,
        (_, Sha384) if pss => &signature::RSA_PSS_2048_8192_SHA384,
        (_, Sha512) if pss => &signature::RSA_PSS_2048_8192_SHA512,
        (_, Sha256) => &signature::RSA_PKCS1_2048_8192_SHA256,
        (_, Sha384) => &signature::RSA_PKCS1_2048_8192_SHA384,
        (_, Sha512) => &signature::RSA_PKCS1_2048_8192_SHA512,
    };
    let Ok(key) = ParsedPublicKey::new(v, spki) else {
        return false;
    };
    match alg {
        // Ed25519 signs the digest bytes as its message.
        Algorithm::Ed25519 => key.verify_sig(digest.as_bytes(), sig).is_ok(),
        // ECDSA and RSA sign the message's hash: verifying the *message* must succeed.
        _ => key.verify_sig(msg, sig).is_ok(),
    }
}

async fn suite(backend: Arc<dyn KeyBackend>) -> R {
    backend.health()?;
    let msg = b"signet conformance message";
    for alg in Algorithm::ALL {
        let s = spec(alg, &format!("conf-{alg}"), 1);
        let generated = backend.generate(&s).await?;
        let key = backend.open(&s, &generated.handle)?;
        assert_eq!(key.algorithm(), alg);
        assert_eq!(key.public_key_der(), generated.public_key_der.as_slice());
        for d in DigestAlgorithm::ALL {
            let digest = digest_of(d, msg)?;
            if !alg.accepts(d) {
                let refused = key.sign_digest(&digest).err().map(|e| e.code);
                assert_eq!(
                    refused,
                    Some(ErrorCode::DigestAlgorithmNotAllowed),
                    "{alg} {d}"
                );
                continue;
            }
            let sig = key.sign_digest(&digest)?;
            assert!(
                verify(alg, d, &generated.public_key_der, msg, &digest, &sig),
                "{alg} {d}"
            );
            // The same check must fail for another message.
            let other = digest_of(d, b"another message")?;
            assert!(
                !verify(
                    alg,
                    d,
                    &generated.public_key_der,
                    b"another message",
                    &other,
                    &sig
                ),
                "{alg} {d} accepts a wrong message"
            );
        }
        // The handle is bound to the key id, version and algorithm.
        assert!(
            backend
                .open(&spec(alg, "other-key", 1), &generated.handle)
                .is_err(),
            "{alg} id not bound"
        );
        assert!(
            backend
                .open(&spec(alg, &s.key_id, 2), &generated.handle)
                .is_err(),
            "{alg} version not bound"
        );
        let mut tampered = generated.handle.0.clone();
        if let Some(b) = tampered.get_mut(20) {
            *b ^= 0x40;
        }
        assert!(
            backend.open(&s, &KeyHandle(tampered)).is_err(),
            "{alg} tamper not detected"
        );
        // A second generation gives a different key.
        let again = backend.generate(&spec(alg, "conf-again", 1)).await?;
        assert_ne!(
            again.public_key_der, generated.public_key_der,
            "{alg} keys repeat"
        );
    }
    Ok(())
}

async fn concurrency(backend: Arc<dyn KeyBackend>) -> R {
    let s = spec(Algorithm::EcdsaP256, "conc", 1);
    let generated = backend.generate(&s).await?;
    let key: Arc<dyn signet_core::backend::SigningKey> =
        Arc::from(backend.open(&s, &generated.handle)?);
    let mut threads = Vec::new();
    for t in 0..8u8 {
        let key = Arc::clone(&key);
        let spki = generated.public_key_der.clone();
        threads.push(std::thread::spawn(move || -> R {
            for i in 0..50u8 {
                let msg = [t, i];
                let d = digest_of(DigestAlgorithm::Sha256, &msg)?;
                let sig = key.sign_digest(&d)?;
                assert!(verify(
                    Algorithm::EcdsaP256,
                    DigestAlgorithm::Sha256,
                    &spki,
                    &msg,
                    &d,
                    &sig
                ));
            }
            Ok(())
        }));
    }
    for t in threads {
        t.join()
            .map_err(|_| CoreError::new(ErrorCode::Internal, "signing thread panicked"))??;
    }
    Ok(())
}

fn software() -> Result<Arc<dyn KeyBackend>, CoreError> {
    Ok(Arc::new(SoftwareBackend::new(Kek::from_bytes(
        Kek::generate_bytes()?.as_ref(),
    )?)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn software_backend_conforms() -> R {
    suite(software()?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn software_backend_signs_concurrently() -> R {
    concurrency(software()?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn software_keys_do_not_open_under_another_kek() -> R {
    let a = software()?;
    let b = software()?;
    let s = spec(Algorithm::Ed25519, "k", 1);
    let g = a.generate(&s).await?;
    assert!(b.open(&s, &g.handle).is_err());
    Ok(())
}
