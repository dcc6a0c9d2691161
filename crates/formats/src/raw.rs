//! Raw signatures over a digest, as `signet sign` writes to `FILE.sig`.
//!
//! What is verified, per algorithm (see `docs/signatures.md`):
//! - ECDSA (FIPS 186-5 §6.4.2): the DER `Ecdsa-Sig-Value` over the digest as the message hash;
//!   `openssl dgst -sha256 -verify pub.pem -signature FILE.sig FILE` agrees.
//! - RSA PKCS#1 v1.5 / PSS (RFC 8017 §8.2.2, §8.1.2; PSS salt = hash length, MGF1 with the same
//!   hash): the digest as the message hash; `openssl dgst` agrees (with `-sigopt
//!   rsa_padding_mode:pss` for PSS).
//! - Ed25519 (RFC 8032 §5.1.7): the digest *bytes* are the signed message; `openssl pkeyutl
//!   -verify -rawin -in FILE.digest` agrees, where `FILE.digest` is the binary digest.
//! - ML-DSA-44/65/87 (FIPS 204 §5.3, Algorithm 3 `ML-DSA.Verify`, pure, empty context) and
//!   SLH-DSA-SHA2-128s/128f (FIPS 205 §10.3, Algorithm 24 `slh_verify`, pure, empty context):
//!   the digest bytes are the signed message, so the internal message is
//!   `0x00 || 0x00 || digest`. ML-DSA is checked with aws-lc-rs, SLH-DSA with `slh-dsa`. The public
//!   key must be the SubjectPublicKeyInfo of RFC 9881 / RFC 9909 (NIST OID, no parameters).

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};
use signet_core::{Algorithm, Digest, DigestAlgorithm};

use crate::FormatError;

/// The NIST signature-algorithm arc 2.16.840.1.101.3.4.3, DER content octets.
const NIST_SIG_ALGS: [u8; 8] = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03];

/// The last OID arc and raw public key length of a post-quantum algorithm (FIPS 204 Table 2,
/// FIPS 205 Table 2; OIDs from RFC 9881 and RFC 9909).
fn pq_key_shape(a: Algorithm) -> Option<(u8, usize)> {
    match a {
        Algorithm::MlDsa44 => Some((17, 1312)),
        Algorithm::MlDsa65 => Some((18, 1952)),
        Algorithm::MlDsa87 => Some((19, 2592)),
        Algorithm::SlhDsaSha2_128s => Some((20, 32)),
        Algorithm::SlhDsaSha2_128f => Some((21, 32)),
        _ => None,
    }
}

/// A DER length (X.690 §8.1.3; definite, at most two length octets).
fn der_len(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
}

/// The raw public key inside a post-quantum SPKI, accepting only the one DER encoding RFC 9881
/// and RFC 9909 allow: `SEQUENCE { SEQUENCE { OID }, BIT STRING (0 unused bits) key }`.
fn pq_spki_key(a: Algorithm, spki: &[u8]) -> Option<&[u8]> {
    let (arc, key_len) = pq_key_shape(a)?;
    let mut alg_id = vec![0x30, 0x0b, 0x06, 0x09];
    alg_id.extend_from_slice(&NIST_SIG_ALGS);
    alg_id.push(arc);
    let mut bit_string = vec![0x03];
    der_len(key_len + 1, &mut bit_string);
    bit_string.push(0);
    let mut prefix = vec![0x30];
    der_len(alg_id.len() + bit_string.len() + key_len, &mut prefix);
    prefix.extend_from_slice(&alg_id);
    prefix.extend_from_slice(&bit_string);
    spki.strip_prefix(prefix.as_slice())
        .filter(|key| key.len() == key_len)
}

/// Pure SLH-DSA verification with an empty context (FIPS 205 Algorithm 24).
fn slh_verify<P: slh_dsa::ParameterSet>(key: &[u8], message: &[u8], sig: &[u8]) -> Option<bool> {
    let vk = slh_dsa::VerifyingKey::<P>::try_from(key).ok()?;
    Some(match slh_dsa::Signature::<P>::try_from(sig) {
        Ok(sig) => vk.try_verify_with_context(message, &[], &sig).is_ok(),
        Err(_) => false,
    })
}

/// Verifies an ML-DSA or SLH-DSA signature over the digest bytes.
fn verify_pq(
    algorithm: Algorithm,
    spki_der: &[u8],
    digest: &Digest,
    sig: &[u8],
) -> Result<bool, FormatError> {
    let bad_key = || FormatError::PublicKey(algorithm.as_str());
    let key = pq_spki_key(algorithm, spki_der).ok_or_else(bad_key)?;
    let message = digest.as_bytes();
    let ml_dsa: &'static dyn VerificationAlgorithm = match algorithm {
        Algorithm::SlhDsaSha2_128s => {
            return slh_verify::<slh_dsa::Sha2_128s>(key, message, sig).ok_or_else(bad_key);
        }
        Algorithm::SlhDsaSha2_128f => {
            return slh_verify::<slh_dsa::Sha2_128f>(key, message, sig).ok_or_else(bad_key);
        }
        Algorithm::MlDsa44 => &signature::ML_DSA_44,
        Algorithm::MlDsa65 => &signature::ML_DSA_65,
        _ => &signature::ML_DSA_87,
    };
    let parsed = ParsedPublicKey::new(ml_dsa, spki_der).map_err(|_| bad_key())?;
    Ok(parsed.verify_sig(message, sig).is_ok())
}

fn verification_alg(a: Algorithm, d: DigestAlgorithm) -> &'static dyn VerificationAlgorithm {
    use DigestAlgorithm::{Sha256, Sha384, Sha512};
    let pss = matches!(a, Algorithm::Rsa3072Pss | Algorithm::Rsa4096Pss);
    match (a, d) {
        (Algorithm::Ed25519, _) => &signature::ED25519,
        (Algorithm::EcdsaP256, _) => &signature::ECDSA_P256_SHA256_ASN1,
        (Algorithm::EcdsaP384, _) => &signature::ECDSA_P384_SHA384_ASN1,
        (_, Sha256) if pss => &signature::RSA_PSS_2048_8192_SHA256,
        (_, Sha384) if pss => &signature::RSA_PSS_2048_8192_SHA384,
        (_, Sha512) if pss => &signature::RSA_PSS_2048_8192_SHA512,
        (_, Sha256) => &signature::RSA_PKCS1_2048_8192_SHA256,
        (_, Sha384) => &signature::RSA_PKCS1_2048_8192_SHA384,
        (_, Sha512) => &signature::RSA_PKCS1_2048_8192_SHA512,
    }
}

/// Expected modulus size in bytes for RSA algorithms.
fn rsa_modulus_len(a: Algorithm) -> Option<usize> {
    match a {
        Algorithm::Rsa3072Pss | Algorithm::Rsa3072Pkcs1 => Some(384),
        Algorithm::Rsa4096Pss | Algorithm::Rsa4096Pkcs1 => Some(512),
        _ => None,
    }
}

/// Verifies `sig` over `digest` with the SPKI DER public key of a key of `algorithm`.
pub fn verify(
    algorithm: Algorithm,
    spki_der: &[u8],
    digest: &Digest,
    sig: &[u8],
) -> Result<(), FormatError> {
    let bad = || FormatError::BadSignature {
        algorithm: algorithm.as_str().to_owned(),
        digest: format!("{digest:?}"),
    };
    if !algorithm.accepts(digest.algorithm()) {
        return Err(bad());
    }
    if algorithm.is_post_quantum() {
        return match verify_pq(algorithm, spki_der, digest, sig)? {
            true => Ok(()),
            false => Err(bad()),
        };
    }
    let key = ParsedPublicKey::new(verification_alg(algorithm, digest.algorithm()), spki_der)
        .map_err(|_| FormatError::PublicKey(algorithm.as_str()))?;
    if let Some(n) = rsa_modulus_len(algorithm)
        && sig.len() != n
    {
        return Err(bad());
    }
    match algorithm {
        Algorithm::Ed25519 => key.verify_sig(digest.as_bytes(), sig).map_err(|_| bad()),
        _ => {
            let alg = match digest.algorithm() {
                DigestAlgorithm::Sha256 => &digest::SHA256,
                DigestAlgorithm::Sha384 => &digest::SHA384,
                DigestAlgorithm::Sha512 => &digest::SHA512,
            };
            let d = digest::Digest::import_less_safe(digest.as_bytes(), alg).map_err(|_| bad())?;
            key.verify_digest_sig(&d, sig).map_err(|_| bad())
        }
    }
}

/// Hashes a reader with `algorithm`, calling `progress` with the bytes read so far.
pub fn hash_reader<R: std::io::Read>(
    algorithm: DigestAlgorithm,
    mut reader: R,
    mut progress: impl FnMut(u64),
) -> std::io::Result<Digest> {
    let alg = match algorithm {
        DigestAlgorithm::Sha256 => &digest::SHA256,
        DigestAlgorithm::Sha384 => &digest::SHA384,
        DigestAlgorithm::Sha512 => &digest::SHA512,
    };
    let mut ctx = digest::Context::new(alg);
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if let Some(chunk) = buf.get(..n) {
            ctx.update(chunk);
        }
        total += n as u64;
        progress(total);
    }
    Digest::new(algorithm, ctx.finish().as_ref().to_vec())
        .map_err(|e| std::io::Error::other(e.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_known_vector() -> std::io::Result<()> {
        // FIPS 180-4 example "abc".
        let d = hash_reader(DigestAlgorithm::Sha256, &b"abc"[..], |_| {})?;
        assert_eq!(
            d.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let d = hash_reader(DigestAlgorithm::Sha384, &b""[..], |_| {})?;
        assert!(d.to_hex().starts_with("38b060a751ac9638"));
        Ok(())
    }

    #[test]
    fn garbage_key_is_rejected() -> Result<(), signet_core::CoreError> {
        let d = Digest::new(DigestAlgorithm::Sha256, vec![1; 32])?;
        for a in Algorithm::ALL {
            let dd = Digest::new(a.default_digest(), vec![1; a.default_digest().output_len()])?;
            assert!(verify(a, b"not a key", &dd, b"sig").is_err());
        }
        assert!(verify(Algorithm::EcdsaP384, b"x", &d, b"sig").is_err());
        Ok(())
    }
}
