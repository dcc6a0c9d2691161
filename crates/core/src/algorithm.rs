//! Signature and digest algorithms.
//!
//! A key's [`Algorithm`] fixes its family, size and padding; the digest algorithm is chosen per
//! request among those the key accepts ([`Algorithm::allowed_digests`]). What exactly is signed for
//! each algorithm when only a digest crosses the network is stated in `docs/signatures.md`:
//! ECDSA and RSA sign the digest as the hash of the message (FIPS 186-5 §6.4, RFC 8017 §8.1/§8.2),
//! so `openssl dgst -verify` over the file checks them; Ed25519 (RFC 8032 §5.1) is not a pre-hash
//! scheme, so it signs the raw digest bytes as its message. ML-DSA (FIPS 204 §5.2, pure ML-DSA
//! with an empty context string) and SLH-DSA (FIPS 205 §10.2, pure SLH-DSA, empty context) do the
//! same: the message they sign is the digest bytes. The digest must then be at least as strong as
//! the parameter set's security category, so stronger sets accept only longer digests.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, ErrorCode};

/// A signature algorithm together with its key parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Algorithm {
    Ed25519,
    EcdsaP256,
    EcdsaP384,
    Rsa3072Pss,
    Rsa3072Pkcs1,
    Rsa4096Pss,
    Rsa4096Pkcs1,
    /// ML-DSA-44 (FIPS 204, security category 2).
    MlDsa44,
    /// ML-DSA-65 (FIPS 204, security category 3).
    MlDsa65,
    /// ML-DSA-87 (FIPS 204, security category 5).
    MlDsa87,
    /// SLH-DSA-SHA2-128s (FIPS 205, category 1, small signatures, slow signing).
    SlhDsaSha2_128s,
    /// SLH-DSA-SHA2-128f (FIPS 205, category 1, fast signing, larger signatures).
    SlhDsaSha2_128f,
}

impl Algorithm {
    /// Every algorithm, in the order the docs and `--help` list them.
    pub const ALL: [Algorithm; 12] = [
        Algorithm::Ed25519,
        Algorithm::EcdsaP256,
        Algorithm::EcdsaP384,
        Algorithm::Rsa3072Pss,
        Algorithm::Rsa3072Pkcs1,
        Algorithm::Rsa4096Pss,
        Algorithm::Rsa4096Pkcs1,
        Algorithm::MlDsa44,
        Algorithm::MlDsa65,
        Algorithm::MlDsa87,
        Algorithm::SlhDsaSha2_128s,
        Algorithm::SlhDsaSha2_128f,
    ];

    /// Whether this is a post-quantum algorithm (FIPS 204 / FIPS 205).
    pub const fn is_post_quantum(self) -> bool {
        matches!(
            self,
            Algorithm::MlDsa44
                | Algorithm::MlDsa65
                | Algorithm::MlDsa87
                | Algorithm::SlhDsaSha2_128s
                | Algorithm::SlhDsaSha2_128f
        )
    }

    /// Whether the signed message is the digest bytes themselves (Ed25519, ML-DSA, SLH-DSA), as
    /// opposed to the digest standing for the hash of the message (ECDSA, RSA).
    pub const fn signs_digest_as_message(self) -> bool {
        matches!(self, Algorithm::Ed25519) || self.is_post_quantum()
    }

    /// Whether a *software* key of this algorithm signs a client's digest as an approved service
    /// of the FIPS module Signet builds with `--features fips` (AWS-LC-FIPS 4.x; see
    /// `docs/keys.md`, "FIPS mode"). Ed25519 and ML-DSA sign the digest bytes as their message,
    /// which the module approves. ECDSA and RSA sign an imported digest (`EVP_PKEY_sign`), which
    /// the module performs but does not mark approved, so they are outside; SLH-DSA runs in a
    /// pure-Rust crate outside the module. Keys in an HSM follow the HSM's own validation.
    pub const fn in_fips_boundary(self) -> bool {
        matches!(
            self,
            Algorithm::Ed25519 | Algorithm::MlDsa44 | Algorithm::MlDsa65 | Algorithm::MlDsa87
        )
    }

    /// Modulus size in bits for RSA keys, `None` otherwise.
    pub const fn rsa_bits(self) -> Option<u32> {
        match self {
            Algorithm::Rsa3072Pss | Algorithm::Rsa3072Pkcs1 => Some(3072),
            Algorithm::Rsa4096Pss | Algorithm::Rsa4096Pkcs1 => Some(4096),
            _ => None,
        }
    }

    /// The stable identifier used in the API, the CLI and the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::EcdsaP256 => "ecdsa-p256",
            Algorithm::EcdsaP384 => "ecdsa-p384",
            Algorithm::Rsa3072Pss => "rsa-3072-pss",
            Algorithm::Rsa3072Pkcs1 => "rsa-3072-pkcs1",
            Algorithm::Rsa4096Pss => "rsa-4096-pss",
            Algorithm::Rsa4096Pkcs1 => "rsa-4096-pkcs1",
            Algorithm::MlDsa44 => "ml-dsa-44",
            Algorithm::MlDsa65 => "ml-dsa-65",
            Algorithm::MlDsa87 => "ml-dsa-87",
            Algorithm::SlhDsaSha2_128s => "slh-dsa-sha2-128s",
            Algorithm::SlhDsaSha2_128f => "slh-dsa-sha2-128f",
        }
    }

    /// The digest algorithms a request may use with a key of this algorithm.
    ///
    /// ECDSA keys are bound to the hash of matching strength (RFC 5480 §4: P-256 with SHA-256,
    /// P-384 with SHA-384), as JOSE `ES256`/`ES384` do. ML-DSA-65 (category 3) needs at least
    /// SHA-384 and ML-DSA-87 (category 5) SHA-512, so the digest is not the weaker link
    /// (FIPS 204 §3.6.1, §5.4: a pre-hash must offer the parameter set's collision strength).
    pub const fn allowed_digests(self) -> &'static [DigestAlgorithm] {
        match self {
            Algorithm::EcdsaP256 => &[DigestAlgorithm::Sha256],
            Algorithm::EcdsaP384 => &[DigestAlgorithm::Sha384],
            Algorithm::MlDsa65 => &[DigestAlgorithm::Sha384, DigestAlgorithm::Sha512],
            Algorithm::MlDsa87 => &[DigestAlgorithm::Sha512],
            _ => &[
                DigestAlgorithm::Sha256,
                DigestAlgorithm::Sha384,
                DigestAlgorithm::Sha512,
            ],
        }
    }

    /// The digest a client uses when it is not told otherwise.
    pub const fn default_digest(self) -> DigestAlgorithm {
        match self {
            Algorithm::EcdsaP384 | Algorithm::MlDsa65 => DigestAlgorithm::Sha384,
            Algorithm::MlDsa87 => DigestAlgorithm::Sha512,
            _ => DigestAlgorithm::Sha256,
        }
    }

    /// Whether `digest` may be signed by a key of this algorithm.
    pub fn accepts(self, digest: DigestAlgorithm) -> bool {
        self.allowed_digests().contains(&digest)
    }

    /// The closest JOSE/COSE `alg` name (RFC 7518 §3.1, RFC 9864) for the given digest, when one
    /// exists. Informational: Signet's own identifier is [`Algorithm::as_str`], because a JOSE name
    /// also fixes the digest, which Signet chooses per request.
    pub const fn jose_name(self, digest: DigestAlgorithm) -> Option<&'static str> {
        use DigestAlgorithm::{Sha256, Sha384, Sha512};
        match (self, digest) {
            (Algorithm::Ed25519, _) => Some("Ed25519"),
            // draft-ietf-cose-dilithium / draft-ietf-cose-sphincs-plus names.
            (Algorithm::MlDsa44, _) => Some("ML-DSA-44"),
            (Algorithm::MlDsa65, _) => Some("ML-DSA-65"),
            (Algorithm::MlDsa87, _) => Some("ML-DSA-87"),
            (Algorithm::SlhDsaSha2_128s, _) => Some("SLH-DSA-SHA2-128s"),
            (Algorithm::SlhDsaSha2_128f, _) => Some("SLH-DSA-SHA2-128f"),
            (Algorithm::EcdsaP256, Sha256) => Some("ES256"),
            (Algorithm::EcdsaP384, Sha384) => Some("ES384"),
            (Algorithm::Rsa3072Pss | Algorithm::Rsa4096Pss, Sha256) => Some("PS256"),
            (Algorithm::Rsa3072Pss | Algorithm::Rsa4096Pss, Sha384) => Some("PS384"),
            (Algorithm::Rsa3072Pss | Algorithm::Rsa4096Pss, Sha512) => Some("PS512"),
            (Algorithm::Rsa3072Pkcs1 | Algorithm::Rsa4096Pkcs1, Sha256) => Some("RS256"),
            (Algorithm::Rsa3072Pkcs1 | Algorithm::Rsa4096Pkcs1, Sha384) => Some("RS384"),
            (Algorithm::Rsa3072Pkcs1 | Algorithm::Rsa4096Pkcs1, Sha512) => Some("RS512"),
            _ => None,
        }
    }

    fn names() -> String {
        Algorithm::ALL
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                CoreError::new(
                    ErrorCode::UnsupportedAlgorithm,
                    format!(
                        "unsupported algorithm `{s}`; use one of: {}",
                        Algorithm::names()
                    ),
                )
            })
    }
}

impl TryFrom<String> for Algorithm {
    type Error = CoreError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Algorithm> for String {
    fn from(a: Algorithm) -> String {
        a.as_str().to_owned()
    }
}

/// The longest digest Signet accepts, in bytes (SHA-512).
pub const MAX_DIGEST_LEN: usize = 64;

/// A message digest algorithm (FIPS 180-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DigestAlgorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl DigestAlgorithm {
    pub const ALL: [DigestAlgorithm; 3] = [
        DigestAlgorithm::Sha256,
        DigestAlgorithm::Sha384,
        DigestAlgorithm::Sha512,
    ];

    /// The stable identifier (as in OCI and in-toto digests).
    pub const fn as_str(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "sha256",
            DigestAlgorithm::Sha384 => "sha384",
            DigestAlgorithm::Sha512 => "sha512",
        }
    }

    /// Output length in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            DigestAlgorithm::Sha256 => 32,
            DigestAlgorithm::Sha384 => 48,
            DigestAlgorithm::Sha512 => 64,
        }
    }
}

impl fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DigestAlgorithm {
    type Err = CoreError;

    /// Accepts `sha256` and the IANA spelling `sha-256`, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let folded: String = s
            .chars()
            .filter(|c| *c != '-')
            .collect::<String>()
            .to_ascii_lowercase();
        DigestAlgorithm::ALL
            .into_iter()
            .find(|d| d.as_str() == folded)
            .ok_or_else(|| {
                CoreError::new(
                    ErrorCode::UnsupportedDigestAlgorithm,
                    format!("unsupported digest algorithm `{s}`; use sha256, sha384 or sha512"),
                )
            })
    }
}

impl TryFrom<String> for DigestAlgorithm {
    type Error = CoreError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<DigestAlgorithm> for String {
    fn from(d: DigestAlgorithm) -> String {
        d.as_str().to_owned()
    }
}

/// A digest value whose length has been checked against its algorithm.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Digest {
    algorithm: DigestAlgorithm,
    bytes: Vec<u8>,
}

impl Digest {
    /// Wraps `bytes` as a digest of `algorithm`, rejecting a length that does not match.
    pub fn new(algorithm: DigestAlgorithm, bytes: Vec<u8>) -> Result<Self, CoreError> {
        // INVARIANT: a digest never reaches a key backend unless its length matches its algorithm.
        if bytes.len() != algorithm.output_len() {
            return Err(CoreError::new(
                ErrorCode::DigestLengthMismatch,
                format!(
                    "digest is {} bytes but {algorithm} digests are {} bytes; send the {algorithm} of the artifact, hex-encoded",
                    bytes.len(),
                    algorithm.output_len()
                ),
            ));
        }
        Ok(Digest { algorithm, bytes })
    }

    /// Parses a hex-encoded digest.
    pub fn from_hex(algorithm: DigestAlgorithm, hex_value: &str) -> Result<Self, CoreError> {
        let bytes = hex::decode(hex_value.trim()).map_err(|_| {
            CoreError::new(
                ErrorCode::InvalidDigest,
                format!(
                    "digest `{}` is not hexadecimal; send the digest as {} hex characters",
                    truncate(hex_value, 140),
                    algorithm.output_len() * 2
                ),
            )
        })?;
        Digest::new(algorithm, bytes)
    }

    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn to_hex(&self) -> String {
        hex::encode(&self.bytes)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.to_hex())
    }
}

/// Shortens user input quoted back in an error message.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_round_trip() {
        for a in Algorithm::ALL {
            assert_eq!(a.as_str().parse::<Algorithm>().ok(), Some(a));
        }
        let err = "rsa-1024".parse::<Algorithm>().err().map(|e| e.code);
        assert_eq!(err, Some(ErrorCode::UnsupportedAlgorithm));
    }

    #[test]
    fn digest_names_accept_iana_spelling() {
        assert_eq!(
            "SHA-384".parse::<DigestAlgorithm>().ok(),
            Some(DigestAlgorithm::Sha384)
        );
        assert!("md5".parse::<DigestAlgorithm>().is_err());
        assert!("sha1".parse::<DigestAlgorithm>().is_err());
    }

    #[test]
    fn digest_length_is_checked() {
        assert!(Digest::new(DigestAlgorithm::Sha256, vec![0; 32]).is_ok());
        let e = Digest::new(DigestAlgorithm::Sha256, vec![0; 31])
            .err()
            .map(|e| e.code);
        assert_eq!(e, Some(ErrorCode::DigestLengthMismatch));
        let e = Digest::from_hex(DigestAlgorithm::Sha512, "zz")
            .err()
            .map(|e| e.code);
        assert_eq!(e, Some(ErrorCode::InvalidDigest));
    }

    #[test]
    fn ecdsa_binds_its_digest() {
        assert!(Algorithm::EcdsaP256.accepts(DigestAlgorithm::Sha256));
        assert!(!Algorithm::EcdsaP256.accepts(DigestAlgorithm::Sha512));
        assert!(Algorithm::Rsa3072Pss.accepts(DigestAlgorithm::Sha512));
        assert_eq!(
            Algorithm::EcdsaP384.default_digest(),
            DigestAlgorithm::Sha384
        );
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("ééé", 3), "é…");
    }
}
