//! Post-quantum software keys: ML-DSA (FIPS 204) through aws-lc-rs and SLH-DSA (FIPS 205)
//! through the `slh-dsa` crate.
//!
//! **What is signed.** The message is the client's digest bytes, signed with *pure* ML-DSA
//! (FIPS 204 §5.2, Algorithm 2 `ML-DSA.Sign`) or *pure* SLH-DSA (FIPS 205 §10.2.1, Algorithm 22
//! `slh_sign`) and an empty context string, so the message both pass to their internal function
//! (`ML-DSA.Sign_internal`, Algorithm 7; `slh_sign_internal`, Algorithm 19) is
//! `M' = 0x00 || 0x00 || digest`. The pre-hash variants (HashML-DSA, FIPS 204 §5.4; HashSLH-DSA,
//! FIPS 205 §10.2.2) are not used: a verifier holding the file and the public key checks the
//! signature with any pure ML-DSA / SLH-DSA implementation over `SHA-xxx(file)`
//! (`docs/signatures.md`).
//!
//! **Randomness.** Signing is hedged, the FIPS default: ML-DSA draws its 32-byte `rnd` inside
//! aws-lc from aws-lc's DRBG (FIPS 204 §3.4, Algorithm 2); SLH-DSA draws its n-byte `opt_rand`
//! here from the same DRBG (FIPS 205 §10.2.1, Algorithm 22). Key generation takes its seeds from
//! that DRBG too: ξ inside aws-lc (FIPS 204 §5.1, Algorithm 1), and SK.seed, SK.prf, PK.seed here
//! (FIPS 205 §10.1, Algorithm 21), handed to `slh_keygen_internal` (Algorithm 18) — the function
//! the ACVP key-generation vectors test.
//!
//! **At rest.** Private keys leave this module only as PKCS#8 (RFC 5958 `OneAsymmetricKey`) in
//! [`Zeroizing`] buffers for the sealer: ML-DSA in aws-lc's seed form (the 32-byte ξ, RFC 9881
//! `ML-DSA-PrivateKey` choice `seed [0]`), SLH-DSA as `SK.seed || SK.prf || PK.seed || PK.root`
//! (FIPS 205 §9.1, Figure 15; RFC 9909). Opening a sealed SLH-DSA key recomputes PK.root from
//! the seeds and refuses a key whose stored public half does not match.
//!
//! **Public keys** are SubjectPublicKeyInfo with the NIST OIDs and absent parameters
//! (RFC 9881: id-ml-dsa-44/65/87 = 2.16.840.1.101.3.4.3.17/18/19; RFC 9909:
//! id-slh-dsa-sha2-128s/128f = 2.16.840.1.101.3.4.3.20/21); the subject public key is the raw
//! encoding of FIPS 204 Algorithm 22 `pkEncode` or FIPS 205 Figure 16 `PK.seed || PK.root`.

use aws_lc_rs::signature::{
    KeyPair, ML_DSA_44_SIGNING, ML_DSA_65_SIGNING, ML_DSA_87_SIGNING, PqdsaKeyPair,
    PqdsaSigningAlgorithm,
};
use signet_core::{Algorithm, CoreError, ErrorCode, Random};
use slh_dsa::{Sha2_128f, Sha2_128s, SigningKey as SlhSigningKey, VerifyingKey};
use zeroize::{Zeroize, Zeroizing};

use crate::SystemRandom;

/// DER content of the NIST algorithm OIDs under 2.16.840.1.101.3.4.3 (sigAlgs).
pub(crate) const OID_ML_DSA_44: [u8; 9] = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x11];
pub(crate) const OID_ML_DSA_65: [u8; 9] = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x12];
pub(crate) const OID_ML_DSA_87: [u8; 9] = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x13];
pub(crate) const OID_SLH_DSA_SHA2_128S: [u8; 9] =
    [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x14];
pub(crate) const OID_SLH_DSA_SHA2_128F: [u8; 9] =
    [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x15];

/// n for the SHA2-128 parameter sets (FIPS 205 Table 2): seeds and PK.root are n bytes.
const SLH_N: usize = 16;
/// Private key length, 4n (FIPS 205 Figure 15).
const SLH_SK_LEN: usize = 4 * SLH_N;

fn crypto_err(what: &str) -> CoreError {
    CoreError::new(
        ErrorCode::Internal,
        format!("{what} failed in the software key backend"),
    )
}

fn not_pq(a: Algorithm) -> CoreError {
    CoreError::new(
        ErrorCode::Internal,
        format!("`{a}` is not a post-quantum algorithm; this is a bug in the software key backend"),
    )
}

/// The aws-lc-rs parameter set of an ML-DSA algorithm.
fn ml_dsa(a: Algorithm) -> Option<&'static PqdsaSigningAlgorithm> {
    match a {
        Algorithm::MlDsa44 => Some(&ML_DSA_44_SIGNING),
        Algorithm::MlDsa65 => Some(&ML_DSA_65_SIGNING),
        Algorithm::MlDsa87 => Some(&ML_DSA_87_SIGNING),
        _ => None,
    }
}

/// The ML-DSA OID of an algorithm.
fn ml_dsa_oid(a: Algorithm) -> Option<&'static [u8; 9]> {
    match a {
        Algorithm::MlDsa44 => Some(&OID_ML_DSA_44),
        Algorithm::MlDsa65 => Some(&OID_ML_DSA_65),
        Algorithm::MlDsa87 => Some(&OID_ML_DSA_87),
        _ => None,
    }
}

/// The SLH-DSA OID of an algorithm.
fn slh_oid(a: Algorithm) -> Option<&'static [u8; 9]> {
    match a {
        Algorithm::SlhDsaSha2_128s => Some(&OID_SLH_DSA_SHA2_128S),
        Algorithm::SlhDsaSha2_128f => Some(&OID_SLH_DSA_SHA2_128F),
        _ => None,
    }
}

/// A DER tag-length-value with a definite short or long length (X.690 §8.1.3).
fn tlv(tag: u8, content: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
}

/// `AlgorithmIdentifier ::= SEQUENCE { algorithm OID }` with parameters absent, as RFC 9881 and
/// RFC 9909 require.
fn algorithm_identifier(oid: &[u8]) -> Vec<u8> {
    let mut oid_tlv = Vec::with_capacity(2 + oid.len());
    tlv(0x06, oid, &mut oid_tlv);
    let mut out = Vec::with_capacity(4 + oid_tlv.len());
    tlv(0x30, &oid_tlv, &mut out);
    out
}

/// `SubjectPublicKeyInfo ::= SEQUENCE { algorithm, subjectPublicKey BIT STRING }` (RFC 5280
/// §4.1.2.7) holding `key` with no unused bits.
pub(crate) fn spki(oid: &[u8], key: &[u8]) -> Vec<u8> {
    let mut bits = Vec::with_capacity(1 + key.len());
    bits.push(0);
    bits.extend_from_slice(key);
    let mut body = algorithm_identifier(oid);
    tlv(0x03, &bits, &mut body);
    let mut out = Vec::with_capacity(4 + body.len());
    tlv(0x30, &body, &mut out);
    out
}

/// `OneAsymmetricKey` v1 (RFC 5958 §2) with `privateKey` holding `key`, built straight into a
/// zeroizing buffer sized up front (no reallocation leaves copies behind). Short lengths only:
/// SLH-DSA-SHA2-128 private keys are 64 bytes.
fn pkcs8_short(oid: &[u8; 9], key: &[u8; SLH_SK_LEN]) -> Zeroizing<Vec<u8>> {
    let prefix = pkcs8_prefix(oid);
    let mut out = Zeroizing::new(Vec::with_capacity(prefix.len() + key.len()));
    out.extend_from_slice(&prefix);
    out.extend_from_slice(key);
    out
}

/// Everything of the SLH-DSA PKCS#8 encoding before the private key bytes:
/// `30 52 | 02 01 00 | 30 0b 06 09 <oid> | 04 40`.
fn pkcs8_prefix(oid: &[u8; 9]) -> Vec<u8> {
    let alg = algorithm_identifier(oid);
    // version INTEGER 0, the algorithm, then the OCTET STRING header.
    let inner_len = 3 + alg.len() + 2 + SLH_SK_LEN;
    let mut out = Vec::with_capacity(2 + inner_len - SLH_SK_LEN);
    out.extend_from_slice(&[0x30, inner_len as u8, 0x02, 0x01, 0x00]);
    out.extend_from_slice(&alg);
    out.extend_from_slice(&[0x04, SLH_SK_LEN as u8]);
    out
}

/// An SLH-DSA signing key. `slh-dsa` zeroizes its keys on drop only with its `zeroize` feature,
/// which this build does not enable, so [`Drop`] overwrites the key in place with an all-zero
/// key (best effort: `black_box` keeps the store from being optimised away).
pub(crate) enum SlhKey {
    S128s(Box<SlhSigningKey<Sha2_128s>>),
    S128f(Box<SlhSigningKey<Sha2_128f>>),
}

impl Drop for SlhKey {
    fn drop(&mut self) {
        let zero = [0u8; SLH_SK_LEN];
        match self {
            SlhKey::S128s(k) => {
                if let Ok(z) = SlhSigningKey::<Sha2_128s>::try_from(&zero[..]) {
                    **k = z;
                }
                let _ = std::hint::black_box(&**k);
            }
            SlhKey::S128f(k) => {
                if let Ok(z) = SlhSigningKey::<Sha2_128f>::try_from(&zero[..]) {
                    **k = z;
                }
                let _ = std::hint::black_box(&**k);
            }
        }
    }
}

impl SlhKey {
    /// FIPS 205 Algorithm 18 from the three n-byte seeds.
    fn from_seeds(
        a: Algorithm,
        sk_seed: &[u8],
        sk_prf: &[u8],
        pk_seed: &[u8],
    ) -> Result<Self, CoreError> {
        if sk_seed.len() != SLH_N || sk_prf.len() != SLH_N || pk_seed.len() != SLH_N {
            return Err(crypto_err("checking SLH-DSA seed lengths"));
        }
        match a {
            Algorithm::SlhDsaSha2_128s => Ok(SlhKey::S128s(Box::new(
                SlhSigningKey::slh_keygen_internal(sk_seed, sk_prf, pk_seed),
            ))),
            Algorithm::SlhDsaSha2_128f => Ok(SlhKey::S128f(Box::new(
                SlhSigningKey::slh_keygen_internal(sk_seed, sk_prf, pk_seed),
            ))),
            other => Err(not_pq(other)),
        }
    }

    /// `SK.seed || SK.prf || PK.seed || PK.root` (FIPS 205 Figure 15).
    fn private_bytes(&self) -> Zeroizing<[u8; SLH_SK_LEN]> {
        let mut out = Zeroizing::new([0u8; SLH_SK_LEN]);
        match self {
            SlhKey::S128s(k) => {
                let mut b = k.to_bytes();
                out.copy_from_slice(b.as_slice());
                b.as_mut_slice().zeroize();
            }
            SlhKey::S128f(k) => {
                let mut b = k.to_bytes();
                out.copy_from_slice(b.as_slice());
                b.as_mut_slice().zeroize();
            }
        }
        out
    }

    /// `PK.seed || PK.root` (FIPS 205 Figure 16).
    fn public_bytes(&self) -> Vec<u8> {
        match self {
            SlhKey::S128s(k) => AsRef::<VerifyingKey<Sha2_128s>>::as_ref(&**k).to_vec(),
            SlhKey::S128f(k) => AsRef::<VerifyingKey<Sha2_128f>>::as_ref(&**k).to_vec(),
        }
    }

    /// Pure, hedged `slh_sign` with an empty context (FIPS 205 §10.2.1, Algorithm 22).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CoreError> {
        let mut opt_rand = Zeroizing::new([0u8; SLH_N]);
        SystemRandom.fill(opt_rand.as_mut())?;
        let failed = |_| crypto_err("SLH-DSA signing");
        Ok(match self {
            SlhKey::S128s(k) => k
                .try_sign_with_context(message, &[], Some(opt_rand.as_ref()))
                .map_err(failed)?
                .to_vec(),
            SlhKey::S128f(k) => k
                .try_sign_with_context(message, &[], Some(opt_rand.as_ref()))
                .map_err(failed)?
                .to_vec(),
        })
    }
}

/// An opened post-quantum private key.
pub(crate) enum PqKey {
    MlDsa(PqdsaKeyPair),
    SlhDsa(SlhKey),
}

impl PqKey {
    /// Generates a key of the post-quantum `algorithm` from aws-lc's DRBG.
    pub(crate) fn generate(algorithm: Algorithm) -> Result<Self, CoreError> {
        if let Some(alg) = ml_dsa(algorithm) {
            // FIPS 204 §5.1, Algorithm 1: ξ from aws-lc's DRBG, then ML-DSA.KeyGen_internal.
            return PqdsaKeyPair::generate(alg)
                .map(PqKey::MlDsa)
                .map_err(|_| crypto_err("ML-DSA key generation"));
        }
        // FIPS 205 §10.1, Algorithm 21: three n-byte seeds from an approved RBG.
        let mut seeds = Zeroizing::new([0u8; 3 * SLH_N]);
        SystemRandom.fill(seeds.as_mut())?;
        let (sk_seed, rest) = seeds.split_at(SLH_N);
        let (sk_prf, pk_seed) = rest.split_at(SLH_N);
        Ok(PqKey::SlhDsa(SlhKey::from_seeds(
            algorithm, sk_seed, sk_prf, pk_seed,
        )?))
    }

    /// Opens the PKCS#8 a sealed key holds (what [`PqKey::to_pkcs8`] made for `algorithm`).
    pub(crate) fn from_pkcs8(algorithm: Algorithm, pkcs8: &[u8]) -> Result<Self, CoreError> {
        let rejected = || crypto_err("loading a sealed key");
        if let Some(alg) = ml_dsa(algorithm) {
            // aws-lc re-derives the key from the seed and checks the parameter set.
            return PqdsaKeyPair::from_pkcs8(alg, pkcs8)
                .map(PqKey::MlDsa)
                .map_err(|_| rejected());
        }
        let oid = slh_oid(algorithm).ok_or_else(|| not_pq(algorithm))?;
        let prefix = pkcs8_prefix(oid);
        let key = pkcs8
            .strip_prefix(prefix.as_slice())
            .filter(|k| k.len() == SLH_SK_LEN)
            .ok_or_else(rejected)?;
        let (sk_seed, rest) = key.split_at(SLH_N);
        let (sk_prf, public) = rest.split_at(SLH_N);
        let (pk_seed, _pk_root) = public.split_at(SLH_N);
        let slh = SlhKey::from_seeds(algorithm, sk_seed, sk_prf, pk_seed)?;
        // PK.root is derived from the seeds: a mismatch means the stored key is not one key.
        if slh.public_bytes() != public {
            return Err(crypto_err("checking a sealed SLH-DSA key's public half"));
        }
        Ok(PqKey::SlhDsa(slh))
    }

    /// PKCS#8 of the private key, only ever passed to the sealer; zeroized on drop.
    pub(crate) fn to_pkcs8(&self, algorithm: Algorithm) -> Result<Zeroizing<Vec<u8>>, CoreError> {
        match self {
            // aws-lc's `Document` zeroizes its own buffer on drop.
            PqKey::MlDsa(kp) => Ok(Zeroizing::new(
                kp.to_pkcs8v1()
                    .map_err(|_| crypto_err("encoding a private key for sealing"))?
                    .as_ref()
                    .to_vec(),
            )),
            PqKey::SlhDsa(k) => {
                let oid = slh_oid(algorithm).ok_or_else(|| not_pq(algorithm))?;
                Ok(pkcs8_short(oid, &k.private_bytes()))
            }
        }
    }

    /// SubjectPublicKeyInfo DER.
    pub(crate) fn spki(&self, algorithm: Algorithm) -> Result<Vec<u8>, CoreError> {
        match self {
            // The same bytes aws-lc's `as_der` emits (tested), built from the raw `pkEncode`
            // with the OID this module names.
            PqKey::MlDsa(kp) => {
                let oid = ml_dsa_oid(algorithm).ok_or_else(|| not_pq(algorithm))?;
                Ok(spki(oid, kp.public_key().as_ref()))
            }
            PqKey::SlhDsa(k) => {
                let oid = slh_oid(algorithm).ok_or_else(|| not_pq(algorithm))?;
                Ok(spki(oid, &k.public_bytes()))
            }
        }
    }

    /// Signs `message` (the digest bytes) with pure, hedged ML-DSA or SLH-DSA and an empty
    /// context (see the module documentation).
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CoreError> {
        match self {
            // FIPS 204 §5.2, Algorithm 2, ctx = ε: aws-lc's pure mode with no context set.
            PqKey::MlDsa(kp) => {
                let mut sig = vec![0u8; kp.algorithm().signature_len()];
                let n = kp
                    .sign(message, &mut sig)
                    .map_err(|_| crypto_err("ML-DSA signing"))?;
                sig.truncate(n);
                Ok(sig)
            }
            PqKey::SlhDsa(k) => k.sign(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use ml_dsa::Keypair;
    use ml_dsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
    use slh_dsa::ParameterSet;

    type R = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn oids_are_the_nist_ones_and_match_slh_dsa() -> R {
        let slh_s = Sha2_128s::ALGORITHM_OID;
        let slh_f = Sha2_128f::ALGORITHM_OID;
        assert_eq!(slh_s.to_string(), "2.16.840.1.101.3.4.3.20");
        assert_eq!(slh_f.to_string(), "2.16.840.1.101.3.4.3.21");
        assert_eq!(slh_s.as_bytes(), OID_SLH_DSA_SHA2_128S);
        assert_eq!(slh_f.as_bytes(), OID_SLH_DSA_SHA2_128F);
        for (alg, oid, last) in [
            (Algorithm::MlDsa44, OID_ML_DSA_44, 17u8),
            (Algorithm::MlDsa65, OID_ML_DSA_65, 18),
            (Algorithm::MlDsa87, OID_ML_DSA_87, 19),
        ] {
            assert_eq!(oid.last(), Some(&last));
            // Our SPKI is byte for byte the one aws-lc emits.
            let key = PqKey::generate(alg)?;
            let PqKey::MlDsa(kp) = &key else {
                return Err("not an ML-DSA key".into());
            };
            assert_eq!(key.spki(alg)?, kp.public_key().as_der()?.as_ref(), "{alg}");
        }
        Ok(())
    }

    /// Our SPKI and PKCS#8 encodings of SLH-DSA keys are byte-for-byte what `slh-dsa` itself
    /// emits (its `pkcs8` traits), and ML-DSA's SPKI is aws-lc's.
    #[test]
    fn slh_dsa_encodings_match_the_crate() -> R {
        for alg in [Algorithm::SlhDsaSha2_128s, Algorithm::SlhDsaSha2_128f] {
            let key = PqKey::generate(alg)?;
            let PqKey::SlhDsa(slh) = &key else {
                return Err("not an SLH-DSA key".into());
            };
            let (their_spki, their_pkcs8) = match slh {
                SlhKey::S128s(k) => (
                    AsRef::<VerifyingKey<Sha2_128s>>::as_ref(&**k)
                        .to_public_key_der()?
                        .as_bytes()
                        .to_vec(),
                    k.to_pkcs8_der()?.as_bytes().to_vec(),
                ),
                SlhKey::S128f(k) => (
                    AsRef::<VerifyingKey<Sha2_128f>>::as_ref(&**k)
                        .to_public_key_der()?
                        .as_bytes()
                        .to_vec(),
                    k.to_pkcs8_der()?.as_bytes().to_vec(),
                ),
            };
            assert_eq!(key.spki(alg)?, their_spki, "{alg}");
            assert_eq!(
                key.to_pkcs8(alg)?.as_slice(),
                their_pkcs8.as_slice(),
                "{alg}"
            );
        }
        Ok(())
    }

    #[test]
    fn sealed_slh_dsa_key_with_a_foreign_public_half_is_refused() -> R {
        let alg = Algorithm::SlhDsaSha2_128f;
        let key = PqKey::generate(alg)?;
        let mut pkcs8 = key.to_pkcs8(alg)?;
        assert!(PqKey::from_pkcs8(alg, &pkcs8).is_ok());
        if let Some(last) = pkcs8.last_mut() {
            *last ^= 1;
        }
        assert!(PqKey::from_pkcs8(alg, &pkcs8).is_err());
        // Another parameter set's OID is refused.
        let other = key.to_pkcs8(alg)?;
        assert!(PqKey::from_pkcs8(Algorithm::SlhDsaSha2_128s, &other).is_err());
        Ok(())
    }

    #[test]
    fn ml_dsa_sealed_form_is_the_seed() -> R {
        for alg in [Algorithm::MlDsa44, Algorithm::MlDsa65, Algorithm::MlDsa87] {
            let key = PqKey::generate(alg)?;
            let pkcs8 = key.to_pkcs8(alg)?;
            // RFC 9881 seed form: a 32-byte seed in `[0]`, far smaller than an expanded key.
            assert!(pkcs8.len() < 64, "{alg}: {} bytes", pkcs8.len());
            let again = PqKey::from_pkcs8(alg, &pkcs8)?;
            assert_eq!(again.spki(alg)?, key.spki(alg)?);
            // The `ml-dsa` crate reads aws-lc's PKCS#8 (RFC 9881 seed form) as the same key.
            let theirs = match alg {
                Algorithm::MlDsa44 => {
                    ml_dsa::SigningKey::<ml_dsa::MlDsa44>::from_pkcs8_der(&pkcs8)?
                        .verifying_key()
                        .to_public_key_der()?
                }
                Algorithm::MlDsa65 => {
                    ml_dsa::SigningKey::<ml_dsa::MlDsa65>::from_pkcs8_der(&pkcs8)?
                        .verifying_key()
                        .to_public_key_der()?
                }
                _ => ml_dsa::SigningKey::<ml_dsa::MlDsa87>::from_pkcs8_der(&pkcs8)?
                    .verifying_key()
                    .to_public_key_der()?,
            };
            assert_eq!(theirs.as_bytes(), key.spki(alg)?.as_slice(), "{alg}");
        }
        Ok(())
    }
}
