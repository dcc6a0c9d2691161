//! Independent signature checks: aws-lc-rs (and RustCrypto `slh-dsa` for SLH-DSA) in process,
//! and the `openssl` CLI as the reference verifier for what OpenSSL 3.0 knows.

use std::process::Command;

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};
use signet_core::{Algorithm, CoreError, Digest, DigestAlgorithm};

use super::BoxError;

pub fn digest_of(alg: DigestAlgorithm, msg: &[u8]) -> Result<Digest, CoreError> {
    let a = match alg {
        DigestAlgorithm::Sha256 => &digest::SHA256,
        DigestAlgorithm::Sha384 => &digest::SHA384,
        DigestAlgorithm::Sha512 => &digest::SHA512,
    };
    Digest::new(alg, digest::digest(a, msg).as_ref().to_vec())
}

/// Verifies with the message (not the digest) where the scheme hashes it; with the digest bytes
/// as the message for Ed25519, ML-DSA and SLH-DSA (empty context).
pub fn verify(
    alg: Algorithm,
    d: DigestAlgorithm,
    spki: &[u8],
    msg: &[u8],
    digest: &Digest,
    sig: &[u8],
) -> bool {
    use DigestAlgorithm::{Sha256, Sha384, Sha512};
    match alg {
        Algorithm::SlhDsaSha2_128s => {
            return slh_verify::<slh_dsa::Sha2_128s>(spki, digest.as_bytes(), sig);
        }
        Algorithm::SlhDsaSha2_128f => {
            return slh_verify::<slh_dsa::Sha2_128f>(spki, digest.as_bytes(), sig);
        }
        _ => {}
    }
    let pss = matches!(alg, Algorithm::Rsa3072Pss | Algorithm::Rsa4096Pss);
    let v: &'static dyn VerificationAlgorithm = match (alg, d) {
        (Algorithm::Ed25519, _) => &signature::ED25519,
        (Algorithm::EcdsaP256, _) => &signature::ECDSA_P256_SHA256_ASN1,
        (Algorithm::EcdsaP384, _) => &signature::ECDSA_P384_SHA384_ASN1,
        (Algorithm::MlDsa44, _) => &signature::ML_DSA_44,
        (Algorithm::MlDsa65, _) => &signature::ML_DSA_65,
        (Algorithm::MlDsa87, _) => &signature::ML_DSA_87,
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
    if alg.signs_digest_as_message() {
        // Ed25519, ML-DSA: the digest bytes are the message.
        key.verify_sig(digest.as_bytes(), sig).is_ok()
    } else {
        // ECDSA and RSA sign the message's hash: verifying the *message* must succeed.
        key.verify_sig(msg, sig).is_ok()
    }
}

fn slh_verify<P>(spki: &[u8], msg: &[u8], sig: &[u8]) -> bool
where
    P: slh_dsa::ParameterSet + slh_dsa::VerifyingKeyLen,
{
    let Some(pk) = spki_key_bits(spki) else {
        return false;
    };
    let (Ok(vk), Ok(sig)) = (
        slh_dsa::VerifyingKey::<P>::try_from(pk),
        slh_dsa::Signature::<P>::try_from(sig),
    ) else {
        return false;
    };
    vk.try_verify_with_context(msg, &[], &sig).is_ok()
}

/// One DER TLV: `(tag, contents, rest)` (definite lengths up to 2 bytes).
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = b.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        n if n < 0x80 => (usize::from(n), rest),
        0x81 => {
            let (&n, rest) = rest.split_first()?;
            (usize::from(n), rest)
        }
        0x82 => {
            let (&hi, rest) = rest.split_first()?;
            let (&lo, rest) = rest.split_first()?;
            (usize::from(hi) << 8 | usize::from(lo), rest)
        }
        _ => return None,
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The `subjectPublicKey` bits of an SPKI (RFC 5280 §4.1.2.7).
fn spki_key_bits(spki: &[u8]) -> Option<&[u8]> {
    let (0x30, body, _) = tlv(spki)? else {
        return None;
    };
    let (0x30, _, rest) = tlv(body)? else {
        return None;
    };
    let (0x03, bits, _) = tlv(rest)? else {
        return None;
    };
    match bits.split_first()? {
        (0, key) => Some(key),
        _ => None,
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Checks a signature with the `openssl` CLI over the message file (ECDSA, RSA) or the digest
/// bytes (Ed25519). `Ok(None)` for algorithms OpenSSL 3.0 does not know (ML-DSA, SLH-DSA).
pub fn verify_openssl(
    alg: Algorithm,
    d: DigestAlgorithm,
    spki: &[u8],
    msg: &[u8],
    digest: &Digest,
    sig: &[u8],
) -> Result<Option<bool>, BoxError> {
    if alg.is_post_quantum() {
        return Ok(None);
    }
    let dir = tempfile::tempdir()?;
    let key = dir.path().join("pub.pem");
    let sig_file = dir.path().join("sig.bin");
    let msg_file = dir.path().join("msg.bin");
    std::fs::write(&key, pem("PUBLIC KEY", spki))?;
    std::fs::write(&sig_file, sig)?;
    let mut cmd = Command::new("openssl");
    if alg == Algorithm::Ed25519 {
        std::fs::write(&msg_file, digest.as_bytes())?;
        cmd.args(["pkeyutl", "-verify", "-pubin", "-inkey"])
            .arg(&key)
            .arg("-rawin")
            .arg("-in")
            .arg(&msg_file)
            .arg("-sigfile")
            .arg(&sig_file);
    } else {
        std::fs::write(&msg_file, msg)?;
        cmd.arg("dgst")
            .arg(format!("-{d}"))
            .arg("-verify")
            .arg(&key);
        if matches!(alg, Algorithm::Rsa3072Pss | Algorithm::Rsa4096Pss) {
            // Salt length -1: exactly the digest length.
            cmd.args([
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:-1",
            ]);
        }
        cmd.arg("-signature").arg(&sig_file).arg(&msg_file);
    }
    let out = cmd.output().map_err(|e| -> BoxError {
        format!("cannot run `openssl` ({e}); install openssl, the reference verifier").into()
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    Ok(Some(out.status.success() && stdout.contains("Verified")))
}
