//! Signature algorithm identifiers and signature verification shared by X.509 and CMS.
//!
//! Signet signs X.509 and CMS structures with the same keys that sign artifacts, so what a key
//! is handed follows `docs/signatures.md`: ECDSA and RSA keys sign the hash of the DER structure
//! (with the algorithm's default digest), Ed25519 keys sign the whole structure (RFC 8410 §6,
//! PureEdDSA). ML-DSA and SLH-DSA keys do not sign certificates or CMS yet.
//!
//! The identifiers written are the ones RFC 5280 peers expect:
//!
//! | key | signatureAlgorithm | parameters |
//! |---|---|---|
//! | ECDSA P-256 / P-384 | `ecdsa-with-SHA256` / `ecdsa-with-SHA384` (RFC 5758 §3.2) | absent |
//! | RSA PKCS#1 v1.5 | `sha256WithRSAEncryption` (RFC 4055 §5) | NULL |
//! | RSA PSS | `id-RSASSA-PSS` (RFC 4055 §3.1) | hash, MGF1 with the same hash, salt = hash length |
//! | Ed25519 | `id-Ed25519` (RFC 8410 §3) | absent |
//!
//! Verification accepts a little more than is written (ECDSA and RSA with SHA-256, SHA-384 or
//! SHA-512 on either curve or modulus), always through aws-lc-rs.

use aws_lc_rs::digest as lc_digest;
use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};
use const_oid::db::{DB, rfc5912, rfc8410};
use der::asn1::{Any, Null, ObjectIdentifier};
use der::{Decode, Sequence};
use signet_core::backend::SignInput;
use signet_core::{Algorithm, Digest, DigestAlgorithm};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoRef};

use crate::FormatError;

/// `RSASSA-PSS-params` (RFC 4055 §3.1):
///
/// ```text
/// RSASSA-PSS-params  ::=  SEQUENCE  {
///     hashAlgorithm      [0] HashAlgorithm DEFAULT sha1Identifier,
///     maskGenAlgorithm   [1] MaskGenAlgorithm DEFAULT mgf1SHA1Identifier,
///     saltLength         [2] INTEGER DEFAULT 20,
///     trailerField       [3] INTEGER DEFAULT 1  }
/// ```
///
/// The DEFAULT fields are modelled as OPTIONAL so that a decoded value shows what was written.
/// Signet writes hash, mask generation and salt length and omits `trailerField`, whose only
/// value is its DEFAULT 1 (DER, X.690 §11.5, forbids encoding a DEFAULT value).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct RsaPssParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash_algorithm: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mask_gen_algorithm: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    salt_length: Option<u32>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    trailer_field: Option<u32>,
}

/// The hint shared by every "this key cannot sign X.509/CMS" error.
const KEY_HINT: &str = "use an ECDSA, RSA or Ed25519 key";

/// What a key of `alg` is given to sign the DER structure `tbs`.
///
/// - ECDSA (FIPS 186-5 §6.4) and RSA (RFC 8017 §8.1, §8.2): the hash of `tbs` with
///   [`Algorithm::default_digest`], which [`signature_algorithm`] names.
/// - Ed25519: the whole of `tbs` as the message (RFC 8410 §6: PureEdDSA, no pre-hash).
/// - ML-DSA and SLH-DSA: not supported yet ([`FormatError::Unsupported`]).
pub fn to_be_signed(alg: Algorithm, tbs: &[u8]) -> Result<SignInput, FormatError> {
    match alg {
        Algorithm::Ed25519 => Ok(SignInput::Message(tbs.to_vec())),
        Algorithm::EcdsaP256
        | Algorithm::EcdsaP384
        | Algorithm::Rsa3072Pss
        | Algorithm::Rsa3072Pkcs1
        | Algorithm::Rsa4096Pss
        | Algorithm::Rsa4096Pkcs1 => {
            let d = alg.default_digest();
            let hash = lc_digest::digest(lc_algorithm(d), tbs);
            let digest =
                Digest::new(d, hash.as_ref().to_vec()).map_err(|e| FormatError::X509(e.message))?;
            Ok(SignInput::Digest(digest))
        }
        Algorithm::MlDsa44
        | Algorithm::MlDsa65
        | Algorithm::MlDsa87
        | Algorithm::SlhDsaSha2_128s
        | Algorithm::SlhDsaSha2_128f => Err(pq_unsupported(alg)),
    }
}

fn pq_unsupported(alg: Algorithm) -> FormatError {
    FormatError::Unsupported(format!(
        "`{alg}` keys cannot sign certificates, CRLs, CSRs or CMS yet; {KEY_HINT}"
    ))
}

fn lc_algorithm(d: DigestAlgorithm) -> &'static lc_digest::Algorithm {
    match d {
        DigestAlgorithm::Sha256 => &lc_digest::SHA256,
        DigestAlgorithm::Sha384 => &lc_digest::SHA384,
        DigestAlgorithm::Sha512 => &lc_digest::SHA512,
    }
}

fn digest_oid(d: DigestAlgorithm) -> ObjectIdentifier {
    match d {
        DigestAlgorithm::Sha256 => rfc5912::ID_SHA_256,
        DigestAlgorithm::Sha384 => rfc5912::ID_SHA_384,
        DigestAlgorithm::Sha512 => rfc5912::ID_SHA_512,
    }
}

fn digest_from_oid(oid: &ObjectIdentifier) -> Option<DigestAlgorithm> {
    DigestAlgorithm::ALL
        .into_iter()
        .find(|d| digest_oid(*d) == *oid)
}

/// `id-sha*` with NULL parameters: the form RFC 4055 §2.1 requires inside RSASSA-PSS-params
/// ("sha256Identifier" etc.).
fn hash_identifier_null(d: DigestAlgorithm) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: digest_oid(d),
        parameters: Some(Any::from(Null)),
    }
}

/// The name of `oid` for messages: its registered name when const-oid knows one.
pub(crate) fn oid_name(oid: &ObjectIdentifier) -> String {
    match DB.by_oid(oid) {
        Some(name) => name.to_owned(),
        None => oid.to_string(),
    }
}

/// The signatureAlgorithm AlgorithmIdentifier for signatures that a key of `alg` makes over the
/// input [`to_be_signed`] returns.
///
/// - ECDSA: `ecdsa-with-SHA256` (P-256) or `ecdsa-with-SHA384` (P-384), parameters absent
///   (RFC 5758 §3.2).
/// - RSA PKCS#1 v1.5: `sha256WithRSAEncryption` etc. for the default digest, NULL parameters
///   (RFC 4055 §5). RSA-4096 keys default to SHA-256 as RSA-3072 keys do.
/// - RSA PSS: `id-RSASSA-PSS` with explicit RSASSA-PSS-params (RFC 4055 §3.1): hash = the
///   default digest, MGF1 with the same hash, saltLength = hash length, trailerField 1 (its
///   DEFAULT, so not encoded).
/// - Ed25519: `id-Ed25519`, parameters absent (RFC 8410 §3).
pub fn signature_algorithm(alg: Algorithm) -> Result<AlgorithmIdentifierOwned, FormatError> {
    let d = alg.default_digest();
    match alg {
        Algorithm::Ed25519 => Ok(AlgorithmIdentifierOwned {
            oid: rfc8410::ID_ED_25519,
            parameters: None,
        }),
        Algorithm::EcdsaP256 | Algorithm::EcdsaP384 => Ok(AlgorithmIdentifierOwned {
            oid: match d {
                DigestAlgorithm::Sha256 => rfc5912::ECDSA_WITH_SHA_256,
                DigestAlgorithm::Sha384 => rfc5912::ECDSA_WITH_SHA_384,
                DigestAlgorithm::Sha512 => rfc5912::ECDSA_WITH_SHA_512,
            },
            parameters: None,
        }),
        Algorithm::Rsa3072Pkcs1 | Algorithm::Rsa4096Pkcs1 => Ok(AlgorithmIdentifierOwned {
            oid: match d {
                DigestAlgorithm::Sha256 => rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
                DigestAlgorithm::Sha384 => rfc5912::SHA_384_WITH_RSA_ENCRYPTION,
                DigestAlgorithm::Sha512 => rfc5912::SHA_512_WITH_RSA_ENCRYPTION,
            },
            parameters: Some(Any::from(Null)),
        }),
        Algorithm::Rsa3072Pss | Algorithm::Rsa4096Pss => {
            let hash = hash_identifier_null(d);
            let mgf = AlgorithmIdentifierOwned {
                oid: rfc5912::ID_MGF_1,
                parameters: Some(Any::encode_from(&hash).map_err(encode_error)?),
            };
            let params = RsaPssParams {
                hash_algorithm: Some(hash),
                mask_gen_algorithm: Some(mgf),
                salt_length: Some(len_u32(d)),
                trailer_field: None,
            };
            Ok(AlgorithmIdentifierOwned {
                oid: rfc5912::ID_RSASSA_PSS,
                parameters: Some(Any::encode_from(&params).map_err(encode_error)?),
            })
        }
        Algorithm::MlDsa44
        | Algorithm::MlDsa65
        | Algorithm::MlDsa87
        | Algorithm::SlhDsaSha2_128s
        | Algorithm::SlhDsaSha2_128f => Err(pq_unsupported(alg)),
    }
}

fn len_u32(d: DigestAlgorithm) -> u32 {
    match d {
        DigestAlgorithm::Sha256 => 32,
        DigestAlgorithm::Sha384 => 48,
        DigestAlgorithm::Sha512 => 64,
    }
}

fn encode_error(e: der::Error) -> FormatError {
    FormatError::X509(format!(
        "cannot encode an algorithm identifier: {e}; this is a bug, please report it"
    ))
}

/// The digest AlgorithmIdentifier for CMS and ESS: `id-sha256`, `id-sha384` or `id-sha512`
/// with parameters absent (RFC 5754 §2: implementations MUST generate absent parameters).
pub fn digest_algorithm(d: DigestAlgorithm) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: digest_oid(d),
        parameters: None,
    }
}

/// The digest algorithm named by a digest AlgorithmIdentifier. Accepts absent and NULL
/// parameters, as RFC 5754 §2 requires of receivers; anything else is an error.
pub fn digest_algorithm_from(
    id: &AlgorithmIdentifierOwned,
) -> Result<DigestAlgorithm, FormatError> {
    let d = digest_from_oid(&id.oid).ok_or_else(|| {
        FormatError::Unsupported(format!(
            "digest algorithm `{}` is not supported; use SHA-256, SHA-384 or SHA-512",
            oid_name(&id.oid)
        ))
    })?;
    if !absent_or_null(id) {
        return Err(FormatError::X509(format!(
            "digest algorithm `{}` has parameters; RFC 5754 §2 allows only absent or NULL parameters",
            oid_name(&id.oid)
        )));
    }
    Ok(d)
}

fn absent_or_null(id: &AlgorithmIdentifierOwned) -> bool {
    match &id.parameters {
        None => true,
        Some(p) => p.is_null(),
    }
}

/// The kind of public key found in a SubjectPublicKeyInfo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyKind {
    P256,
    P384,
    Rsa,
    Ed25519,
}

impl KeyKind {
    fn name(self) -> &'static str {
        match self {
            KeyKind::P256 => "ECDSA P-256",
            KeyKind::P384 => "ECDSA P-384",
            KeyKind::Rsa => "RSA",
            KeyKind::Ed25519 => "Ed25519",
        }
    }
}

/// Checks that `spki_der` holds a public key of the kind `alg` signs with (same curve for ECDSA,
/// any RSA key for the RSA algorithms), so a structure is not named as signed by a key that
/// cannot have signed it.
pub(crate) fn check_key_algorithm(spki_der: &[u8], alg: Algorithm) -> Result<(), FormatError> {
    let spki = parse_spki(spki_der)?;
    let kind = key_kind(&spki)?;
    let expected = match alg {
        Algorithm::Ed25519 => KeyKind::Ed25519,
        Algorithm::EcdsaP256 => KeyKind::P256,
        Algorithm::EcdsaP384 => KeyKind::P384,
        Algorithm::Rsa3072Pss
        | Algorithm::Rsa3072Pkcs1
        | Algorithm::Rsa4096Pss
        | Algorithm::Rsa4096Pkcs1 => KeyKind::Rsa,
        Algorithm::MlDsa44
        | Algorithm::MlDsa65
        | Algorithm::MlDsa87
        | Algorithm::SlhDsaSha2_128s
        | Algorithm::SlhDsaSha2_128f => return Err(pq_unsupported(alg)),
    };
    if kind != expected {
        return Err(FormatError::X509(format!(
            "the public key is a {} key but the signer is a `{alg}` key; sign with the key that the certificate or request names",
            kind.name()
        )));
    }
    Ok(())
}

fn parse_spki(spki_der: &[u8]) -> Result<SubjectPublicKeyInfoRef<'_>, FormatError> {
    SubjectPublicKeyInfoRef::from_der(spki_der).map_err(|e| {
        FormatError::X509(format!(
            "public key is not a DER SubjectPublicKeyInfo ({e}); pass the key as `PUBLIC KEY` DER"
        ))
    })
}

/// The signature scheme an AlgorithmIdentifier names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    Ecdsa(DigestAlgorithm),
    RsaPkcs1(DigestAlgorithm),
    RsaPss(DigestAlgorithm),
    Ed25519,
}

fn key_kind(spki: &SubjectPublicKeyInfoRef<'_>) -> Result<KeyKind, FormatError> {
    let oid = spki.algorithm.oid;
    if oid == rfc5912::RSA_ENCRYPTION {
        return Ok(KeyKind::Rsa);
    }
    if oid == rfc8410::ID_ED_25519 {
        return Ok(KeyKind::Ed25519);
    }
    if oid == rfc5912::ID_EC_PUBLIC_KEY {
        // RFC 5480 §2.1.1: parameters are the namedCurve OID.
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        return match curve {
            Some(c) if c == rfc5912::SECP_256_R_1 => Ok(KeyKind::P256),
            Some(c) if c == rfc5912::SECP_384_R_1 => Ok(KeyKind::P384),
            Some(c) => Err(FormatError::Unsupported(format!(
                "elliptic curve `{}` is not supported; {KEY_HINT} on P-256 or P-384",
                oid_name(&c)
            ))),
            None => Err(FormatError::X509(
                "EC public key has no named curve (RFC 5480 §2.1.1); re-export the key with a named curve"
                    .to_owned(),
            )),
        };
    }
    Err(FormatError::Unsupported(format!(
        "public key algorithm `{}` is not supported; {KEY_HINT} (RSA keys as `rsaEncryption`)",
        oid_name(&oid)
    )))
}

fn unsupported_signature(id: &AlgorithmIdentifierOwned) -> FormatError {
    FormatError::Unsupported(format!(
        "signature algorithm `{}` is not supported; Signet verifies ECDSA, RSA PKCS#1 v1.5, RSASSA-PSS and Ed25519 with SHA-256, SHA-384 or SHA-512",
        oid_name(&id.oid)
    ))
}

fn bad_parameters(id: &AlgorithmIdentifierOwned, rule: &str) -> FormatError {
    FormatError::X509(format!(
        "signature algorithm `{}` has invalid parameters; {rule}",
        oid_name(&id.oid)
    ))
}

fn scheme(id: &AlgorithmIdentifierOwned) -> Result<Scheme, FormatError> {
    let oid = id.oid;
    let ecdsa = [
        (rfc5912::ECDSA_WITH_SHA_256, DigestAlgorithm::Sha256),
        (rfc5912::ECDSA_WITH_SHA_384, DigestAlgorithm::Sha384),
        (rfc5912::ECDSA_WITH_SHA_512, DigestAlgorithm::Sha512),
    ];
    if let Some((_, d)) = ecdsa.iter().find(|(o, _)| *o == oid) {
        // RFC 5758 §3.2: the parameters field MUST be absent.
        if id.parameters.is_some() {
            return Err(bad_parameters(id, "RFC 5758 §3.2 requires them absent"));
        }
        return Ok(Scheme::Ecdsa(*d));
    }
    let pkcs1 = [
        (
            rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
            DigestAlgorithm::Sha256,
        ),
        (
            rfc5912::SHA_384_WITH_RSA_ENCRYPTION,
            DigestAlgorithm::Sha384,
        ),
        (
            rfc5912::SHA_512_WITH_RSA_ENCRYPTION,
            DigestAlgorithm::Sha512,
        ),
    ];
    if let Some((_, d)) = pkcs1.iter().find(|(o, _)| *o == oid) {
        // RFC 4055 §5: NULL; absent is accepted as the equivalent encoding (RFC 4055 §2.1).
        if !absent_or_null(id) {
            return Err(bad_parameters(id, "RFC 4055 §5 requires NULL"));
        }
        return Ok(Scheme::RsaPkcs1(*d));
    }
    if oid == rfc5912::ID_RSASSA_PSS {
        return pss_scheme(id).map(Scheme::RsaPss);
    }
    if oid == rfc8410::ID_ED_25519 {
        // RFC 8410 §3: the parameters MUST be absent.
        if id.parameters.is_some() {
            return Err(bad_parameters(id, "RFC 8410 §3 requires them absent"));
        }
        return Ok(Scheme::Ed25519);
    }
    Err(unsupported_signature(id))
}

/// The hash of RSASSA-PSS parameters that Signet can verify: hash H, MGF1 with H, salt length =
/// length of H, trailer field 1 (RFC 4055 §3.1; aws-lc-rs verifies with salt = hash length).
fn pss_scheme(id: &AlgorithmIdentifierOwned) -> Result<DigestAlgorithm, FormatError> {
    let rule = "Signet verifies RSASSA-PSS with SHA-256, SHA-384 or SHA-512, MGF1 with the same hash and a salt as long as the hash";
    let params: RsaPssParams = id
        .parameters
        .as_ref()
        .ok_or_else(|| bad_parameters(id, "RFC 4055 §3.1 requires RSASSA-PSS-params"))?
        .decode_as()
        .map_err(|_| bad_parameters(id, "they are not RSASSA-PSS-params (RFC 4055 §3.1)"))?;
    // An absent hash means SHA-1 (the DEFAULT), which Signet does not accept.
    let hash_id = params
        .hash_algorithm
        .as_ref()
        .ok_or_else(|| bad_parameters(id, rule))?;
    let d = digest_from_oid(&hash_id.oid).ok_or_else(|| bad_parameters(id, rule))?;
    if !absent_or_null(hash_id) {
        return Err(bad_parameters(id, rule));
    }
    let mgf = params
        .mask_gen_algorithm
        .as_ref()
        .ok_or_else(|| bad_parameters(id, rule))?;
    if mgf.oid != rfc5912::ID_MGF_1 {
        return Err(bad_parameters(id, rule));
    }
    let mgf_hash: AlgorithmIdentifierOwned = mgf
        .parameters
        .as_ref()
        .ok_or_else(|| bad_parameters(id, rule))?
        .decode_as()
        .map_err(|_| bad_parameters(id, rule))?;
    if digest_from_oid(&mgf_hash.oid) != Some(d) || !absent_or_null(&mgf_hash) {
        return Err(bad_parameters(id, rule));
    }
    if params.salt_length.unwrap_or(20) != len_u32(d) {
        return Err(bad_parameters(id, rule));
    }
    if params.trailer_field.unwrap_or(1) != 1 {
        return Err(bad_parameters(
            id,
            "RFC 4055 §3.1 allows only trailerField 1",
        ));
    }
    Ok(d)
}

fn verification_algorithm(
    key: KeyKind,
    scheme: Scheme,
) -> Option<&'static dyn VerificationAlgorithm> {
    use DigestAlgorithm::{Sha256, Sha384, Sha512};
    Some(match (key, scheme) {
        (KeyKind::P256, Scheme::Ecdsa(Sha256)) => &signature::ECDSA_P256_SHA256_ASN1,
        (KeyKind::P256, Scheme::Ecdsa(Sha384)) => &signature::ECDSA_P256_SHA384_ASN1,
        (KeyKind::P256, Scheme::Ecdsa(Sha512)) => &signature::ECDSA_P256_SHA512_ASN1,
        (KeyKind::P384, Scheme::Ecdsa(Sha256)) => &signature::ECDSA_P384_SHA256_ASN1,
        (KeyKind::P384, Scheme::Ecdsa(Sha384)) => &signature::ECDSA_P384_SHA384_ASN1,
        (KeyKind::P384, Scheme::Ecdsa(Sha512)) => &signature::ECDSA_P384_SHA512_ASN1,
        (KeyKind::Rsa, Scheme::RsaPkcs1(Sha256)) => &signature::RSA_PKCS1_2048_8192_SHA256,
        (KeyKind::Rsa, Scheme::RsaPkcs1(Sha384)) => &signature::RSA_PKCS1_2048_8192_SHA384,
        (KeyKind::Rsa, Scheme::RsaPkcs1(Sha512)) => &signature::RSA_PKCS1_2048_8192_SHA512,
        (KeyKind::Rsa, Scheme::RsaPss(Sha256)) => &signature::RSA_PSS_2048_8192_SHA256,
        (KeyKind::Rsa, Scheme::RsaPss(Sha384)) => &signature::RSA_PSS_2048_8192_SHA384,
        (KeyKind::Rsa, Scheme::RsaPss(Sha512)) => &signature::RSA_PSS_2048_8192_SHA512,
        (KeyKind::Ed25519, Scheme::Ed25519) => &signature::ED25519,
        _ => return None,
    })
}

/// Verifies `signature` over `message` with the DER SubjectPublicKeyInfo `spki_der`, for the
/// signature algorithm `sig_alg` (any that [`signature_algorithm`] writes, plus
/// `ecdsa-with-SHA512` and ECDSA/RSA/PSS with SHA-256, SHA-384 or SHA-512). The key type must
/// match the algorithm (an RSA key does not verify an ECDSA signature), and its curve must be
/// P-256 or P-384; RSA moduli of 2048 to 8192 bits are accepted.
pub fn verify_signature(
    spki_der: &[u8],
    sig_alg: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<(), FormatError> {
    let spki = parse_spki(spki_der)?;
    let key = key_kind(&spki)?;
    let scheme = scheme(sig_alg)?;
    let name = oid_name(&sig_alg.oid);
    let alg = verification_algorithm(key, scheme).ok_or_else(|| {
        FormatError::X509(format!(
            "a {} key cannot verify a `{name}` signature; the signature was made by a different key",
            key.name()
        ))
    })?;
    let parsed = ParsedPublicKey::new(alg, spki_der).map_err(|e| {
        FormatError::X509(format!(
            "{} public key is rejected ({e}); check the key (RSA keys need 2048 to 8192 bits)",
            key.name()
        ))
    })?;
    parsed.verify_sig(message, signature).map_err(|_| {
        FormatError::X509(format!(
            "`{name}` signature does not verify with the {} key; the signed data or the signature changed, or this is not the signer's key",
            key.name()
        ))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use der::Encode;

    /// `id-RSASSA-PSS` with SHA-256, MGF1-SHA-256 and salt 32, as OpenSSL writes it
    /// (`openssl req -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest`).
    const PSS_SHA256: &str = "304106092a864886f70d01010a3034a00f300d06096086480165030402010500a11c301a06092a864886f70d010108300d06096086480165030402010500a203020120";

    #[test]
    fn pss_identifier_matches_openssl() {
        let der = signature_algorithm(Algorithm::Rsa3072Pss)
            .unwrap()
            .to_der()
            .unwrap();
        assert_eq!(hex::encode(der), PSS_SHA256);
        let back = AlgorithmIdentifierOwned::from_der(&hex::decode(PSS_SHA256).unwrap()).unwrap();
        assert_eq!(
            scheme(&back).unwrap(),
            Scheme::RsaPss(DigestAlgorithm::Sha256)
        );
    }

    #[test]
    fn identifiers_are_consistent_with_to_be_signed() {
        for alg in Algorithm::ALL {
            let tbs = to_be_signed(alg, b"tbs");
            let id = signature_algorithm(alg);
            if alg.is_post_quantum() {
                assert!(matches!(tbs, Err(FormatError::Unsupported(_))));
                assert!(matches!(id, Err(FormatError::Unsupported(_))));
                continue;
            }
            let s = scheme(&id.unwrap()).unwrap();
            match (tbs.unwrap(), s) {
                (SignInput::Message(m), Scheme::Ed25519) => assert_eq!(m, b"tbs"),
                (
                    SignInput::Digest(d),
                    Scheme::Ecdsa(h) | Scheme::RsaPkcs1(h) | Scheme::RsaPss(h),
                ) => {
                    assert_eq!(d.algorithm(), h);
                    assert_eq!(h, alg.default_digest());
                }
                other => panic!("{alg}: {other:?}"),
            }
        }
    }

    #[test]
    fn digest_identifiers_round_trip() {
        for d in DigestAlgorithm::ALL {
            let id = digest_algorithm(d);
            assert!(id.parameters.is_none());
            assert_eq!(digest_algorithm_from(&id).unwrap(), d);
            let with_null = hash_identifier_null(d);
            assert_eq!(digest_algorithm_from(&with_null).unwrap(), d);
        }
        let sha1 = AlgorithmIdentifierOwned {
            oid: ObjectIdentifier::new_unwrap("1.3.14.3.2.26"),
            parameters: None,
        };
        let e = digest_algorithm_from(&sha1).unwrap_err().to_string();
        assert!(e.contains("`id-sha1`"), "{e}");
    }

    #[test]
    fn ecdsa_identifier_has_no_parameters() {
        let id = signature_algorithm(Algorithm::EcdsaP384).unwrap();
        assert_eq!(id.oid, rfc5912::ECDSA_WITH_SHA_384);
        assert!(id.parameters.is_none());
        let mut with_null = id.clone();
        with_null.parameters = Some(Any::from(Null));
        assert!(scheme(&with_null).is_err());
    }
}
