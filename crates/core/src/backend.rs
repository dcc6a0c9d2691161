//! The key backend plug-in kind: something that generates keys it never exports and signs with
//! them. Implementations live in `signet-keys`: software keys sealed under a key-encryption key,
//! and keys inside a PKCS#11 token.

use std::collections::BTreeMap;
use std::sync::Arc;

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

    /// Whether keys of `algorithm` can be generated here. Key creation refuses the others with
    /// `unsupported_algorithm` before anything is generated.
    fn supports(&self, _algorithm: Algorithm) -> bool {
        true
    }

    /// Adopts a private key that already exists inside the backend (a PKCS#11 object named by a
    /// PKCS#11 URI, RFC 7512) as a Signet key. The key stays where it is; nothing is exported.
    async fn adopt(&self, _spec: &KeySpec, locator: &str) -> Result<GeneratedKey, CoreError> {
        Err(CoreError::new(
            crate::ErrorCode::InvalidRequest,
            format!(
                "key backend `{}` cannot adopt existing keys (`{}`); create a new key instead",
                self.id(),
                crate::algorithm::truncate(locator, 80)
            ),
        ))
    }
}

/// Re-protects stored key handles, e.g. re-seals software keys under a new key-encryption key.
/// The service calls [`Rewrap::rewrap`] for every version of every key the backend holds, stores
/// all new handles in one transaction, then calls [`Rewrap::commit`] before any other key
/// operation may run.
pub trait Rewrap: Send + Sync {
    /// The backend whose handles this rewraps.
    fn backend_id(&self) -> &str;

    /// The handle under the new protection.
    fn rewrap(&self, spec: &KeySpec, handle: &KeyHandle) -> Result<KeyHandle, CoreError>;

    /// Makes the new protection the one in use (called once all handles are stored).
    fn commit(&self) -> Result<(), CoreError>;
}

/// Whether the server is sealed: its key-encryption key is not in memory, so nothing is signed.
pub trait SealState: Send + Sync {
    fn is_sealed(&self) -> bool;
}

/// A server without sealing (tests and tools).
#[derive(Debug, Default, Clone, Copy)]
pub struct NeverSealed;

impl SealState for NeverSealed {
    fn is_sealed(&self) -> bool {
        false
    }
}

/// The key backends a server has configured, by id, and the one new keys go to by default.
#[derive(Clone)]
pub struct Backends {
    default: String,
    all: BTreeMap<String, Arc<dyn KeyBackend>>,
}

impl Backends {
    /// A registry whose default (and only) backend is `backend`.
    pub fn single(backend: Arc<dyn KeyBackend>) -> Self {
        let mut all = BTreeMap::new();
        let default = backend.id().to_owned();
        all.insert(default.clone(), backend);
        Backends { default, all }
    }

    /// Adds another backend.
    pub fn with(mut self, backend: Arc<dyn KeyBackend>) -> Self {
        self.all.insert(backend.id().to_owned(), backend);
        self
    }

    /// Makes `id` the default for new keys; `false` if no such backend is configured.
    pub fn set_default(&mut self, id: &str) -> bool {
        if self.all.contains_key(id) {
            id.clone_into(&mut self.default);
            true
        } else {
            false
        }
    }

    pub fn default_backend(&self) -> Option<&Arc<dyn KeyBackend>> {
        self.all.get(&self.default)
    }

    pub fn default_id(&self) -> &str {
        &self.default
    }

    pub fn get(&self, id: &str) -> Option<&Arc<dyn KeyBackend>> {
        self.all.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn KeyBackend>> {
        self.all.values()
    }

    /// The backend `id`, or a clear error naming the configured ones.
    pub fn require(&self, id: &str) -> Result<&Arc<dyn KeyBackend>, CoreError> {
        self.all.get(id).ok_or_else(|| {
            CoreError::new(
                crate::ErrorCode::InvalidRequest,
                format!(
                    "key backend `{}` is not configured on this server; use one of: {}",
                    crate::algorithm::truncate(id, 80),
                    self.all.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })
    }
}

/// What a key is given to sign a structure Signet composed (a certificate, CRL, CSR, CMS
/// signed attributes, a time-stamp token): the hash of its DER for ECDSA and RSA, the whole DER
/// for algorithms that sign messages (Ed25519, RFC 8410 §6). `signet_formats::pkix` decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInput {
    Digest(Digest),
    Message(Vec<u8>),
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
