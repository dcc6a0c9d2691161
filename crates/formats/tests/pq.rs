//! Client-side verification of post-quantum signatures (`signet verify`'s `raw::verify`):
//! ML-DSA (FIPS 204) and SLH-DSA (FIPS 205) over the digest bytes with an empty context.
//!
//! `signet-formats` never links the key backends, so the signatures here are made directly
//! with aws-lc-rs (ML-DSA, the implementation Signet's software backend signs with) and
//! `slh-dsa` (SLH-DSA); the keys crate's tests show the backend's signatures are the same
//! construction.

use std::error::Error;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{
    KeyPair, ML_DSA_44_SIGNING, ML_DSA_65_SIGNING, ML_DSA_87_SIGNING, PqdsaKeyPair,
    PqdsaSigningAlgorithm,
};
use signet_core::{Algorithm, Digest, DigestAlgorithm};
use signet_formats::bundle::{ArtifactField, Bundle, DigestField, FORMAT_V1};
use signet_formats::{FormatError, pem, raw};

type R = Result<(), Box<dyn Error>>;

fn sha(alg: DigestAlgorithm, msg: &[u8]) -> Result<Digest, Box<dyn Error>> {
    Ok(raw::hash_reader(alg, msg, |_| {})?)
}

fn ml_dsa_signing(a: Algorithm) -> Option<&'static PqdsaSigningAlgorithm> {
    match a {
        Algorithm::MlDsa44 => Some(&ML_DSA_44_SIGNING),
        Algorithm::MlDsa65 => Some(&ML_DSA_65_SIGNING),
        Algorithm::MlDsa87 => Some(&ML_DSA_87_SIGNING),
        _ => None,
    }
}

/// An ML-DSA key made by aws-lc-rs: its SPKI and a signer over the digest bytes (pure ML-DSA,
/// empty context, hedged — the software backend's construction).
fn ml_dsa_key(a: Algorithm) -> Result<(Vec<u8>, PqdsaKeyPair), Box<dyn Error>> {
    let kp = PqdsaKeyPair::generate(ml_dsa_signing(a).ok_or("not ML-DSA")?)?;
    Ok((kp.public_key().as_der()?.as_ref().to_vec(), kp))
}

fn ml_dsa_sign(kp: &PqdsaKeyPair, digest: &Digest) -> Result<Vec<u8>, Box<dyn Error>> {
    let mut sig = vec![0; kp.algorithm().signature_len()];
    let n = kp.sign(digest.as_bytes(), &mut sig)?;
    sig.truncate(n);
    Ok(sig)
}

/// RFC 9909 SPKI for an SLH-DSA-SHA2-128 public key (2.16.840.1.101.3.4.3.20 / .21).
fn slh_spki(arc: u8, pk: &[u8]) -> Vec<u8> {
    let mut der = vec![
        0x30, 0x30, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, arc,
        0x03, 0x21, 0x00,
    ];
    der.extend_from_slice(pk);
    der
}

fn random<const N: usize>() -> Result<[u8; N], Box<dyn Error>> {
    let mut b = [0u8; N];
    aws_lc_rs::rand::fill(&mut b)?;
    Ok(b)
}

fn corrupt(sig: &[u8], at: usize) -> Vec<u8> {
    let mut s = sig.to_vec();
    if let Some(b) = s.get_mut(at) {
        *b ^= 0x80;
    }
    s
}

#[test]
fn ml_dsa_signatures_verify_over_the_digest() -> R {
    for alg in [Algorithm::MlDsa44, Algorithm::MlDsa65, Algorithm::MlDsa87] {
        let (spki, kp) = ml_dsa_key(alg)?;
        for d in alg.allowed_digests() {
            let digest = sha(*d, b"artifact")?;
            let sig = ml_dsa_sign(&kp, &digest)?;
            raw::verify(alg, &spki, &digest, &sig)?;
            // A flipped bit, another file, a truncated signature: refused.
            for bad in [
                corrupt(&sig, 0),
                corrupt(&sig, sig.len() - 1),
                sig[1..].to_vec(),
            ] {
                assert!(matches!(
                    raw::verify(alg, &spki, &digest, &bad),
                    Err(FormatError::BadSignature { .. })
                ));
            }
            let other = sha(*d, b"another artifact")?;
            assert!(raw::verify(alg, &spki, &other, &sig).is_err(), "{alg} {d}");
        }
    }
    Ok(())
}

#[test]
fn ml_dsa_key_must_be_the_right_spki() -> R {
    let (spki44, kp) = ml_dsa_key(Algorithm::MlDsa44)?;
    let digest = sha(DigestAlgorithm::Sha512, b"artifact")?;
    let sig = ml_dsa_sign(&kp, &digest)?;
    raw::verify(Algorithm::MlDsa44, &spki44, &digest, &sig)?;
    // The same key named as another parameter set.
    assert!(matches!(
        raw::verify(Algorithm::MlDsa65, &spki44, &digest, &sig),
        Err(FormatError::PublicKey(_))
    ));
    // The raw key without its SPKI, or with bytes appended: not a `PUBLIC KEY`.
    let raw_key = kp.public_key().as_ref().to_vec();
    assert!(raw::verify(Algorithm::MlDsa44, &raw_key, &digest, &sig).is_err());
    let mut trailing = spki44.clone();
    trailing.push(0);
    assert!(raw::verify(Algorithm::MlDsa44, &trailing, &digest, &sig).is_err());
    // The SPKI survives PEM (RFC 7468) as `signet key public` prints it.
    let pem = pem::spki_to_pem(&spki44)?;
    raw::verify(Algorithm::MlDsa44, &pem::pem_to_spki(&pem)?, &digest, &sig)?;
    Ok(())
}

#[test]
fn weaker_digests_are_refused_for_stronger_parameter_sets() -> R {
    let (spki, kp) = ml_dsa_key(Algorithm::MlDsa87)?;
    let digest = sha(DigestAlgorithm::Sha256, b"artifact")?;
    let sig = ml_dsa_sign(&kp, &digest)?;
    // A valid ML-DSA signature over a SHA-256 digest is still refused for ml-dsa-87.
    assert!(matches!(
        raw::verify(Algorithm::MlDsa87, &spki, &digest, &sig),
        Err(FormatError::BadSignature { .. })
    ));
    Ok(())
}

fn slh_case<P: slh_dsa::ParameterSet>(alg: Algorithm, arc: u8) -> R {
    let [sk_seed, sk_prf, pk_seed] = [random::<16>()?, random::<16>()?, random::<16>()?];
    let sk = slh_dsa::SigningKey::<P>::slh_keygen_internal(&sk_seed, &sk_prf, &pk_seed);
    let vk: &slh_dsa::VerifyingKey<P> = sk.as_ref();
    let spki = slh_spki(arc, &vk.to_bytes());
    let digest = sha(alg.default_digest(), b"release artifact")?;
    // Pure, hedged slh_sign with an empty context (FIPS 205 Algorithm 22).
    let sig = sk
        .try_sign_with_context(digest.as_bytes(), &[], Some(&random::<16>()?))?
        .to_vec();
    raw::verify(alg, &spki, &digest, &sig)?;
    // The same signature is slh_sign_internal over M' = 0x00 || 0x00 || digest.
    let internal = sk
        .slh_sign_internal(&[&[0, 0], digest.as_bytes()], Some(&random::<16>()?))
        .to_vec();
    raw::verify(alg, &spki, &digest, &internal)?;
    // Refused: a flipped bit, another digest, a non-empty context, a short signature.
    assert!(raw::verify(alg, &spki, &digest, &corrupt(&sig, 100)).is_err());
    let other = sha(alg.default_digest(), b"other")?;
    assert!(raw::verify(alg, &spki, &other, &sig).is_err());
    let with_ctx = sk
        .try_sign_with_context(digest.as_bytes(), b"signet", None)?
        .to_vec();
    assert!(raw::verify(alg, &spki, &digest, &with_ctx).is_err());
    assert!(raw::verify(alg, &spki, &digest, &sig[..sig.len() - 1]).is_err());
    // The key of one parameter set named as the other.
    let other_alg = match alg {
        Algorithm::SlhDsaSha2_128s => Algorithm::SlhDsaSha2_128f,
        _ => Algorithm::SlhDsaSha2_128s,
    };
    assert!(matches!(
        raw::verify(other_alg, &spki, &digest, &sig),
        Err(FormatError::PublicKey(_))
    ));
    Ok(())
}

#[test]
fn slh_dsa_sha2_128f_signatures_verify_over_the_digest() -> R {
    slh_case::<slh_dsa::Sha2_128f>(Algorithm::SlhDsaSha2_128f, 21)
}

#[test]
fn slh_dsa_sha2_128s_signatures_verify_over_the_digest() -> R {
    slh_case::<slh_dsa::Sha2_128s>(Algorithm::SlhDsaSha2_128s, 20)
}

/// The offline path `signet verify FILE` takes with a bundle: JSON round trip, fingerprint,
/// digest and signature of a post-quantum key.
#[test]
fn pq_bundle_verifies_offline() -> R {
    let alg = Algorithm::MlDsa65;
    let (spki, kp) = ml_dsa_key(alg)?;
    let file = b"the released artifact".as_slice();
    let digest = sha(alg.default_digest(), file)?;
    let sig = ml_dsa_sign(&kp, &digest)?;
    let bundle = Bundle {
        format: FORMAT_V1.into(),
        key: "release-pq".into(),
        key_version: 1,
        algorithm: alg,
        digest: DigestField {
            algorithm: digest.algorithm(),
            value: digest.to_hex(),
        },
        signature: Bundle::encode_signature(&sig),
        public_key_fingerprint: signet_core::key::fingerprint(&spki),
        signed_at: time::OffsetDateTime::UNIX_EPOCH,
        artifact: ArtifactField {
            name: Some("app.tar.gz".into()),
            kind: None,
        },
        audit_index: None,
        log: None,
        certificate_chain: Vec::new(),
        timestamp: None,
    };
    let read = Bundle::from_json(bundle.to_json()?.as_bytes())?;
    assert_eq!(read.algorithm, alg);
    assert!(read.to_json()?.contains("\"algorithm\": \"ml-dsa-65\""));
    assert_eq!(
        read.public_key_fingerprint,
        signet_core::key::fingerprint(&spki)
    );
    assert_eq!(read.digest()?, sha(read.digest.algorithm, file)?);
    raw::verify(
        read.algorithm,
        &spki,
        &read.digest()?,
        &read.signature_bytes()?,
    )?;
    Ok(())
}
