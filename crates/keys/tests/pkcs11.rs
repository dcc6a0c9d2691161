//! PKCS#11 backend behaviour beyond the shared conformance suite, against real SoftHSM2 tokens:
//! what the token offers, that keys never leave it, adopting existing token keys by PKCS#11 URI,
//! wrapping secrets with a token key, configuration errors, and signing throughput.
//!
//! Tests that break the module or token on purpose live in `pkcs11_recovery.rs` (their own
//! process under `cargo test`).

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::verify::{digest_of, verify, verify_openssl};
use common::{BoxError, TestResult, TestToken, check};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeInfo, AttributeType, ObjectClass};
use signet_core::backend::{KeyBackend, KeySpec, SigningKey};
use signet_core::secret::SecretString;
use signet_core::{Algorithm, CoreError, DigestAlgorithm, ErrorCode};
use signet_keys::Pkcs11Backend;
use signet_keys::pkcs11::danger;

fn spec(alg: Algorithm, id: &str) -> KeySpec {
    KeySpec {
        key_id: id.into(),
        version: 1,
        algorithm: alg,
    }
}

/// Signs SHA-256 (or the algorithm's default digest) of a message and checks the signature
/// with aws-lc-rs and openssl.
fn sign_and_verify(key: &dyn SigningKey, spki: &[u8]) -> TestResult {
    let alg = key.algorithm();
    let d = alg.default_digest();
    let msg = b"adopted key message";
    let digest = digest_of(d, msg)?;
    let sig = key.sign_digest(&digest)?;
    assert!(verify(alg, d, spki, msg, &digest, &sig), "{alg}: aws-lc-rs");
    assert_ne!(
        verify_openssl(alg, d, spki, msg, &digest, &sig)?,
        Some(false),
        "{alg}: openssl"
    );
    Ok(())
}

fn code<T>(r: Result<T, CoreError>) -> Option<ErrorCode> {
    r.err().map(|e| e.code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_what_the_token_offers_and_never_post_quantum() -> TestResult {
    let Some(token) = common::token("supports")? else {
        return Ok(());
    };
    let backend = token.backend()?;
    let supported: Vec<Algorithm> = Algorithm::ALL
        .into_iter()
        .filter(|a| backend.supports(*a))
        .collect();
    // SoftHSM2 2.6 has CKM_EC_EDWARDS_KEY_PAIR_GEN/CKM_EDDSA, CKM_EC_KEY_PAIR_GEN/CKM_ECDSA
    // and RSA up to 16384 bits with CKM_RSA_PKCS and CKM_RSA_PKCS_PSS; no ML-DSA or SLH-DSA.
    assert_eq!(
        supported,
        vec![
            Algorithm::Ed25519,
            Algorithm::EcdsaP256,
            Algorithm::EcdsaP384,
            Algorithm::Rsa3072Pss,
            Algorithm::Rsa3072Pkcs1,
            Algorithm::Rsa4096Pss,
            Algorithm::Rsa4096Pkcs1,
        ]
    );
    for alg in Algorithm::ALL.into_iter().filter(|a| a.is_post_quantum()) {
        let e = backend.generate(&spec(alg, "pq")).await.err();
        let e = e.ok_or("post-quantum generation was not refused")?;
        assert_eq!(e.code, ErrorCode::UnsupportedAlgorithm, "{alg}");
        assert!(e.message.contains(alg.as_str()), "{}", e.message);
    }
    assert_eq!(backend.id(), "pkcs11");
    assert!(!format!("{backend:?}").contains(common::PIN));
    Ok(())
}

/// The token's answer to reading each attribute of object `key`.
fn attribute_info(
    backend: &Pkcs11Backend,
    label: &str,
    attrs: &[AttributeType],
) -> Result<Vec<AttributeInfo>, CoreError> {
    danger::with_session(backend, |session, _| {
        let found = session.find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ])?;
        let mut out = Vec::new();
        for key in found {
            out.extend(session.get_attribute_info(key, attrs)?);
        }
        Ok(out)
    })
}

fn attributes(
    backend: &Pkcs11Backend,
    label: &str,
    attrs: &[AttributeType],
) -> Result<Vec<Attribute>, CoreError> {
    danger::with_session(backend, |session, _| {
        let found = session.find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ])?;
        let mut out = Vec::new();
        for key in found {
            out.extend(session.get_attributes(key, attrs)?);
        }
        Ok(out)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_private_keys_never_leave_the_token() -> TestResult {
    let Some(token) = common::token("custody")? else {
        return Ok(());
    };
    let backend = token.backend()?;
    for (alg, secret_parts) in [
        (Algorithm::EcdsaP256, vec![AttributeType::Value]),
        (Algorithm::Ed25519, vec![AttributeType::Value]),
        (
            Algorithm::Rsa3072Pss,
            vec![
                AttributeType::PrivateExponent,
                AttributeType::Prime1,
                AttributeType::Prime2,
                AttributeType::Exponent1,
                AttributeType::Exponent2,
                AttributeType::Coefficient,
            ],
        ),
    ] {
        let s = spec(alg, &format!("custody-{alg}"));
        let generated = backend.generate(&s).await?;
        // The handle is a PKCS#11 URI naming the object, nothing more.
        let handle = String::from_utf8(generated.handle.0.clone())?;
        assert!(
            handle.starts_with(&format!(
                "pkcs11:token={};object=signet%2Fcustody-",
                token.label
            )),
            "{handle}"
        );
        assert!(handle.ends_with(";type=private"), "{handle}");
        let label = format!("signet/custody-{alg}/v1");
        // Asking for the private value is refused by the token: CKR_ATTRIBUTE_SENSITIVE.
        let info = attribute_info(&backend, &label, &secret_parts)?;
        assert_eq!(
            info.len(),
            secret_parts.len(),
            "{alg}: one private key object"
        );
        for (part, answer) in secret_parts.iter().zip(&info) {
            assert!(
                matches!(answer, AttributeInfo::Sensitive),
                "{alg}: {part:?} is readable: {answer:?}"
            );
        }
        let attrs = attributes(
            &backend,
            &label,
            &[
                AttributeType::Token,
                AttributeType::Private,
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::AlwaysSensitive,
                AttributeType::NeverExtractable,
                AttributeType::Sign,
                AttributeType::Decrypt,
                AttributeType::Unwrap,
                AttributeType::Derive,
            ],
        )?;
        for expected in [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::AlwaysSensitive(true),
            Attribute::NeverExtractable(true),
            Attribute::Sign(true),
            Attribute::Decrypt(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
        ] {
            assert!(
                attrs.contains(&expected),
                "{alg}: {expected:?} not in {attrs:?}"
            );
        }
        // The key signs, after being opened again from its handle.
        let key = backend.open(&s, &generated.handle)?;
        sign_and_verify(key.as_ref(), &generated.public_key_der)?;
        // It signs with its one mechanism only (CKA_ALLOWED_MECHANISMS): the token itself
        // refuses to make a PKCS#1 v1.5 signature with an RSA-PSS key.
        let other = match alg {
            Algorithm::Rsa3072Pss => Some((Mechanism::RsaPkcs, vec![0u8; 51])),
            _ => None,
        };
        if let Some((mechanism, data)) = other {
            let refused = danger::with_session(&backend, |session, _| {
                let found = session.find_objects(&[
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::Label(label.as_bytes().to_vec()),
                ])?;
                Ok(found
                    .into_iter()
                    .map(|key| session.sign(&mechanism, key, &data).is_err())
                    .collect::<Vec<_>>())
            })?;
            assert_eq!(refused, vec![true], "{alg}: signed with {mechanism:?}");
        }
    }
    Ok(())
}

fn keypairgen(
    token: &TestToken,
    key_type: &str,
    label: &str,
    id: &str,
    extra: &[&str],
) -> TestResult {
    let mut args = vec![
        "--keypairgen",
        "--key-type",
        key_type,
        "--label",
        label,
        "--id",
        id,
        "--usage-sign",
    ];
    args.extend_from_slice(extra);
    let out = token.pkcs11_tool(&args)?;
    check(&out, "pkcs11-tool --keypairgen")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopts_existing_token_keys_by_uri() -> TestResult {
    if !common::available(&["pkcs11-tool"])? {
        return Ok(());
    }
    let Some(token) = common::token("adopt")? else {
        return Ok(());
    };
    let backend = token.backend()?;
    // Keys made by another tool, as an operator would.
    keypairgen(
        &token,
        "EC:prime256v1",
        "adopt-me",
        "0a0b",
        &["--sensitive"],
    )?;
    keypairgen(
        &token,
        "EC:edwards25519",
        "adopt-ed",
        "0c0d",
        &["--sensitive"],
    )?;
    keypairgen(
        &token,
        "EC:prime256v1",
        "leaky",
        "0e01",
        &["--sensitive", "--extractable"],
    )?;
    // SoftHSM2 makes private keys sensitive unless told otherwise, which pkcs11-tool cannot
    // say: this one is made directly.
    danger::with_session(&backend, |session, _| {
        let p256 = vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        session.generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::EcParams(p256),
                Attribute::Label(b"plain".to_vec()),
                Attribute::Id(vec![0x0e, 0x02]),
            ],
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(false),
                Attribute::Extractable(false),
                Attribute::Sign(true),
                Attribute::Label(b"plain".to_vec()),
                Attribute::Id(vec![0x0e, 0x02]),
            ],
        )
    })?;
    keypairgen(&token, "EC:prime256v1", "twin", "0e03", &["--sensitive"])?;
    keypairgen(&token, "EC:prime256v1", "twin", "0e04", &["--sensitive"])?;
    let t = &token.label;

    // P-256, named by label and id.
    let s = spec(Algorithm::EcdsaP256, "adopted");
    let uri = format!("pkcs11:token={t};object=adopt-me;id=%0a%0b;type=private");
    let adopted = backend.adopt(&s, &uri).await?;
    let handle = String::from_utf8(adopted.handle.0.clone())?;
    assert_eq!(
        handle,
        format!("pkcs11:token={t};object=adopt-me;id=%0A%0B;type=private")
    );
    let key = backend.open(&s, &adopted.handle)?;
    assert_eq!(key.public_key_der(), adopted.public_key_der.as_slice());
    sign_and_verify(key.as_ref(), &adopted.public_key_der)?;

    // Ed25519 (pkcs11-tool writes the curve as the PrintableString "edwards25519"), by id only.
    let s = spec(Algorithm::Ed25519, "adopted-ed");
    let adopted = backend.adopt(&s, "pkcs11:id=%0c%0d").await?;
    let key = backend.open(&s, &adopted.handle)?;
    sign_and_verify(key.as_ref(), &adopted.public_key_der)?;

    // Refusals, all `invalid_request` and none of them exporting anything.
    let p256 = spec(Algorithm::EcdsaP256, "refused");
    for (uri, why) in [
        ("pkcs11:object=leaky;type=private".to_owned(), "extractable"),
        ("pkcs11:object=plain;type=private".to_owned(), "sensitive"),
        (
            "pkcs11:object=missing;type=private".to_owned(),
            "no private key",
        ),
        (
            "pkcs11:object=twin;type=private".to_owned(),
            "2 private keys",
        ),
        (
            "pkcs11:token=another-token;object=adopt-me".to_owned(),
            "token",
        ),
        (
            "pkcs11:object=adopt-me;type=public".to_owned(),
            "type=public",
        ),
        (
            format!("pkcs11:object=adopt-me?pin-value={}", common::PIN),
            "pin-value",
        ),
        (
            "pkcs11:object=signet%2Fx%2Fv1".to_owned(),
            "Signet generated",
        ),
        ("file:///etc/passwd".to_owned(), "pkcs11:"),
    ] {
        let e = backend
            .adopt(&p256, &uri)
            .await
            .err()
            .ok_or_else(|| format!("`{uri}` was adopted"))?;
        assert_eq!(e.code, ErrorCode::InvalidRequest, "{uri}: {e}");
        assert!(e.message.contains(why), "{uri}: {}", e.message);
        assert!(!e.message.contains(common::PIN), "{}", e.message);
    }
    // The right key with the wrong algorithm.
    for alg in [
        Algorithm::EcdsaP384,
        Algorithm::Rsa3072Pss,
        Algorithm::Ed25519,
    ] {
        let e = backend
            .adopt(&spec(alg, "wrong"), &uri)
            .await
            .err()
            .ok_or_else(|| format!("P-256 key adopted as {alg}"))?;
        assert_eq!(e.code, ErrorCode::InvalidRequest, "{alg}: {e}");
        assert!(e.message.contains("a P-256 key"), "{}", e.message);
    }
    // Post-quantum: not this backend's.
    assert_eq!(
        code(backend.adopt(&spec(Algorithm::MlDsa65, "pq"), &uri).await),
        Some(ErrorCode::UnsupportedAlgorithm)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wraps_secrets_with_a_token_aes_key() -> TestResult {
    let Some(token) = common::token("wrap")? else {
        return Ok(());
    };
    let backend = token.backend()?;
    backend.ensure_wrapping_key("signet-kek-wrap")?;
    // Idempotent: the second call finds the key.
    backend.ensure_wrapping_key("signet-kek-wrap")?;
    let secret = [0x5au8; 32];
    let blob = backend.wrap_secret("signet-kek-wrap", &secret)?;
    assert_eq!(blob.len(), 1 + 12 + 32 + 16);
    assert_eq!(blob.first(), Some(&1));
    assert_eq!(
        backend.unwrap_secret("signet-kek-wrap", &blob)?.as_slice(),
        &secret
    );
    // A fresh IV every time.
    let again = backend.wrap_secret("signet-kek-wrap", &secret)?;
    assert_ne!(again, blob);
    assert_eq!(
        backend.unwrap_secret("signet-kek-wrap", &again)?.as_slice(),
        &secret
    );
    // Any changed byte (version, IV, ciphertext, tag) is refused; so is a cut blob.
    for i in [0, 1, 12, 13, 40, blob.len() - 1] {
        let mut bad = blob.clone();
        if let Some(b) = bad.get_mut(i) {
            *b ^= 0x01;
        }
        assert_eq!(
            code(backend.unwrap_secret("signet-kek-wrap", &bad)),
            Some(ErrorCode::InvalidRequest),
            "byte {i}"
        );
    }
    assert_eq!(
        code(backend.unwrap_secret("signet-kek-wrap", &blob[..20])),
        Some(ErrorCode::InvalidRequest)
    );
    // Another key (and label) does not open it; a missing key is a clear error.
    backend.ensure_wrapping_key("other-kek-wrap")?;
    assert_eq!(
        code(backend.unwrap_secret("other-kek-wrap", &blob)),
        Some(ErrorCode::InvalidRequest)
    );
    let missing = backend.unwrap_secret("no-such-key", &blob).err();
    let missing = missing.ok_or("unwrapped with a missing key")?;
    assert!(missing.message.contains("no wrapping key"), "{missing}");
    // The backend is still healthy after all those refusals.
    backend.health()?;
    // The wrapping key is an AES-256 key that never leaves the token.
    let (info, attrs) = danger::with_session(&backend, |session, _| {
        let found = session.find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(b"signet-kek-wrap".to_vec()),
        ])?;
        let (mut info, mut attrs) = (Vec::new(), Vec::new());
        for key in found {
            info.extend(session.get_attribute_info(key, &[AttributeType::Value])?);
            attrs.extend(session.get_attributes(
                key,
                &[
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::Token,
                    AttributeType::ValueLen,
                ],
            )?);
        }
        Ok((info, attrs))
    })?;
    assert!(
        matches!(info.as_slice(), [AttributeInfo::Sensitive]),
        "{info:?}"
    );
    for expected in [
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Token(true),
        Attribute::ValueLen(32.into()),
    ] {
        assert!(attrs.contains(&expected), "{expected:?} not in {attrs:?}");
    }
    Ok(())
}

#[test]
fn configuration_errors_are_clear() -> TestResult {
    let Some(token) = common::token("config")? else {
        return Ok(());
    };
    let mut c = token.config();
    c.token_label = None;
    let e = token.backend_with(c).err().ok_or("no token named")?;
    assert_eq!(e.code, ErrorCode::InvalidRequest);
    assert!(e.message.contains("token_label"), "{e}");

    let mut c = token.config();
    c.module = "/nonexistent/libpkcs11.so".into();
    let e = token.backend_with(c).err().ok_or("missing module")?;
    assert_eq!(e.code, ErrorCode::BackendUnavailable);
    assert!(e.message.contains("/nonexistent/libpkcs11.so"), "{e}");

    let mut c = token.config();
    c.token_label = Some("no-such-token".into());
    let e = token.backend_with(c).err().ok_or("missing token")?;
    assert_eq!(e.code, ErrorCode::BackendUnavailable);
    assert!(e.message.contains("`no-such-token`"), "{e}");

    let mut c = token.config();
    c.pin = SecretString::new("wrong-pin-424242".into());
    let e = token.backend_with(c).err().ok_or("wrong pin accepted")?;
    assert_eq!(e.code, ErrorCode::BackendUnavailable);
    assert!(e.message.contains("PinIncorrect"), "{e}");
    assert!(!e.to_string().contains("424242"), "{e}");

    // By serial instead of label.
    let out = token.softhsm_util(&["--show-slots"])?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let serial = text
        .split("\nSlot ")
        .find(|block| {
            block.lines().any(|l| {
                l.trim().strip_prefix("Label:").map(str::trim) == Some(token.label.as_str())
            })
        })
        .and_then(|block| {
            block.lines().find_map(|l| {
                l.trim()
                    .strip_prefix("Serial number:")
                    .map(|s| s.trim().to_owned())
            })
        })
        .ok_or("token serial not in `softhsm2-util --show-slots`")?;
    let mut c = token.config();
    c.token_label = None;
    c.token_serial = Some(serial);
    let b = token.backend_with(c)?;
    b.health()?;
    assert_eq!(b.token_label(), token.label);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_throughput() -> TestResult {
    let Some(token) = common::token("speed")? else {
        return Ok(());
    };
    let backend = token.backend()?;
    let s = spec(Algorithm::EcdsaP256, "speed");
    let generated = backend.generate(&s).await?;
    let key: Arc<dyn SigningKey> = Arc::from(backend.open(&s, &generated.handle)?);
    let d = digest_of(DigestAlgorithm::Sha256, b"speed")?;
    const N: u32 = 2000;
    let start = Instant::now();
    for _ in 0..N {
        key.sign_digest(&d)?;
    }
    let one = f64::from(N) / start.elapsed().as_secs_f64();
    let threads = 4u32;
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let key = Arc::clone(&key);
            let d = d.clone();
            std::thread::spawn(move || -> Result<(), CoreError> {
                for _ in 0..N {
                    key.sign_digest(&d)?;
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join()
            .map_err(|_| -> BoxError { "signer panicked".into() })??;
    }
    let many = f64::from(N * threads) / start.elapsed().as_secs_f64();
    eprintln!(
        "pkcs11 (SoftHSM2) ecdsa-p256: {one:.0} signs/s on one thread, {many:.0} signs/s on {threads} threads"
    );
    assert!(one > 0.0 && many > 0.0);
    Ok(())
}
