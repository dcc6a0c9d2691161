//! The key backend plug-in kind: something that generates keys it never exports and signs with
//! them. Implementations live in `signet-keys` (software) and, later, PKCS#11 tokens.

use crate::algorithm::{Algorithm, Digest};
use crate::error::CoreError;
use crate::key::KeyHandle;

/// What to generate, and what the key is bound to (the software backend authenticates the sealed
/// key with these as associated data, so a sealed blob cannot be swapped between keys).
#[derive(Debug, Clone)]
pub struct KeySpec {
    pub key_id: String,
    pub version: u32,
    pub algorithm: Algorithm,
}

/// A freshly generated key: its public half and the backend's handle to the private half.
#[derive(Debug)]
pub struct GeneratedKey {
    /// SubjectPublicKeyInfo, DER.
    pub public_key_der: Vec<u8>,
    pub handle: KeyHandle,
}

/// A backend that holds private keys and never lets them out.
#[async_trait::async_trait]
pub trait KeyBackend: Send + Sync {
    /// A short stable identifier stored with each key (`software`, `pkcs11:…`).
    fn id(&self) -> &str;

    /// Generates a key inside the backend.
    /// Generation can take seconds (RSA-4096), so it is async: implementations run it off the
    /// request path.
    async fn generate(&self, spec: &KeySpec) -> Result<GeneratedKey, CoreError>;

    /// Opens a key for signing. `spec` must be the one the key was generated with.
    fn open(&self, spec: &KeySpec, handle: &KeyHandle) -> Result<Box<dyn SigningKey>, CoreError>;

    /// Whether the backend can sign right now.
    fn health(&self) -> Result<(), CoreError>;
}

/// An opened private key. Signing must not expose the key material.
pub trait SigningKey: Send + Sync {
    fn algorithm(&self) -> Algorithm;

    /// SubjectPublicKeyInfo, DER.
    fn public_key_der(&self) -> &[u8];

    /// Signs a digest.
    ///
    /// ECDSA and RSA sign it as the hash of the message; Ed25519 signs the digest bytes as its
    /// message (see `docs/signatures.md`). Callers have checked that the key accepts the digest's
    /// algorithm ([`Algorithm::accepts`]); implementations check again.
    fn sign_digest(&self, digest: &Digest) -> Result<Vec<u8>, CoreError>;

    /// Signs a whole message (Ed25519 only, RFC 8032 §5.1.6). Used inside the server for keys
    /// it signs its own statements with (audit checkpoints); never reachable from the API.
    fn sign_message(&self, _message: &[u8]) -> Result<Vec<u8>, CoreError> {
        Err(CoreError::new(
            crate::ErrorCode::UnsupportedAlgorithm,
            format!(
                "`{}` keys do not sign whole messages; use an ed25519 key",
                self.algorithm()
            ),
        ))
    }
}
