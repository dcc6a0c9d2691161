//! The key-backend conformance suite: every `KeyBackend` implementation must pass it. It runs
//! against the software backend and against a PKCS#11 token (a private SoftHSM2 token per test;
//! skipped without SoftHSM2 unless `SIGNET_REQUIRE_SOFTHSM=1`).
//!
//! Every algorithm the backend says it supports is generated and signs every digest; every
//! signature is checked by aws-lc-rs (RustCrypto `slh-dsa` for SLH-DSA) and by the `openssl`
//! CLI (ECDSA, RSA, Ed25519); algorithms it does not support must be refused at generation.

mod common;

use std::sync::Arc;

use common::verify::{digest_of, verify, verify_openssl};
use common::{BoxError, TestResult};
use signet_core::backend::{KeyBackend, KeySpec};
use signet_core::key::KeyHandle;
use signet_core::{Algorithm, CoreError, DigestAlgorithm, ErrorCode};
use signet_keys::{Kek, SoftwareBackend};

fn spec(alg: Algorithm, id: &str, version: u32) -> KeySpec {
    KeySpec {
        key_id: id.into(),
        version,
        algorithm: alg,
    }
}

async fn suite(backend: Arc<dyn KeyBackend>) -> TestResult {
    backend.health()?;
    let msg = b"signet conformance message";
    let mut supported = 0;
    for alg in Algorithm::ALL {
        let s = spec(alg, &format!("conf-{alg}"), 1);
        if !backend.supports(alg) {
            let refused = backend.generate(&s).await.err().map(|e| e.code);
            assert_eq!(
                refused,
                Some(ErrorCode::UnsupportedAlgorithm),
                "{alg}: an unsupported algorithm must be refused at generation"
            );
            continue;
        }
        supported += 1;
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
                "{alg} {d}: aws-lc-rs rejects the signature"
            );
            let by_openssl = verify_openssl(alg, d, &generated.public_key_der, msg, &digest, &sig)?;
            assert_ne!(
                by_openssl,
                Some(false),
                "{alg} {d}: openssl rejects the signature"
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
        // A second generation gives a different key (RSA-4096 once is enough: it is slow in a
        // software token and shares its code with RSA-3072).
        if alg.rsa_bits() != Some(4096) {
            let again = backend.generate(&spec(alg, "conf-again", 1)).await?;
            assert_ne!(
                again.public_key_der, generated.public_key_der,
                "{alg} keys repeat"
            );
        }
    }
    assert!(supported > 0, "the backend supports no algorithm at all");
    Ok(())
}

async fn concurrency(backend: Arc<dyn KeyBackend>) -> TestResult {
    let s = spec(Algorithm::EcdsaP256, "conc", 1);
    let generated = backend.generate(&s).await?;
    let key: Arc<dyn signet_core::backend::SigningKey> =
        Arc::from(backend.open(&s, &generated.handle)?);
    let mut threads = Vec::new();
    for t in 0..8u8 {
        let key = Arc::clone(&key);
        let spki = generated.public_key_der.clone();
        threads.push(std::thread::spawn(move || -> TestResult {
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
        t.join().map_err(|_| -> BoxError {
            CoreError::new(ErrorCode::Internal, "signing thread panicked").into()
        })??;
    }
    Ok(())
}

fn software() -> Result<Arc<dyn KeyBackend>, CoreError> {
    Ok(Arc::new(SoftwareBackend::new(Kek::from_bytes(
        Kek::generate_bytes()?.as_ref(),
    )?)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn software_backend_conforms() -> TestResult {
    suite(software()?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn software_backend_signs_concurrently() -> TestResult {
    concurrency(software()?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn software_keys_do_not_open_under_another_kek() -> TestResult {
    let a = software()?;
    let b = software()?;
    let s = spec(Algorithm::Ed25519, "k", 1);
    let g = a.generate(&s).await?;
    assert!(b.open(&s, &g.handle).is_err());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkcs11_backend_conforms() -> TestResult {
    let Some(token) = common::token("conformance")? else {
        return Ok(());
    };
    suite(Arc::new(token.backend()?)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkcs11_backend_signs_concurrently() -> TestResult {
    let Some(token) = common::token("concurrency")? else {
        return Ok(());
    };
    concurrency(Arc::new(token.backend()?)).await
}
