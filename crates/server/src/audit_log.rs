//! Wiring of the Merkle audit log: the log key (an ordinary, non-exportable Ed25519 key under a
//! reserved name) and the checkpoint signer over it.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use signet_core::backend::{KeyBackend, KeySpec, SigningKey};
use signet_core::key::{Key, KeyName};
use signet_core::log::NoteSigner;
use signet_core::merkle::Hash;
use signet_core::store::KeyStore;
use signet_core::{Algorithm, Clock, CoreError, ErrorCode, Random, random};
use signet_formats::checkpoint::{Checkpoint, VerifierKey, sign_note};

use crate::serve::anyhow_core;

/// The reserved name of the key that signs the log's checkpoints.
pub const LOG_KEY_NAME: &str = "signet-audit-log";

/// SubjectPublicKeyInfo prefix of an Ed25519 key (RFC 8410 §4); the raw key follows.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

pub fn ed25519_raw(spki: &[u8]) -> Result<[u8; 32]> {
    match spki.strip_prefix(&ED25519_SPKI_PREFIX[..]) {
        Some(raw) => Ok(<[u8; 32]>::try_from(raw).context("Ed25519 public key is not 32 bytes")?),
        None => bail!("the audit log key is not an Ed25519 key"),
    }
}

/// Opens the log key, generating it inside the backend on first start.
pub async fn open_log_key(
    keys: &dyn KeyStore,
    backend: &dyn KeyBackend,
    clock: &dyn Clock,
    rng: &dyn Random,
) -> Result<Arc<dyn SigningKey>> {
    let key = match keys.get_key(LOG_KEY_NAME).await.map_err(anyhow_core)? {
        Some(k) => k,
        None => {
            let id = random::id(rng).map_err(anyhow_core)?;
            let spec = KeySpec {
                key_id: id.clone(),
                version: 1,
                algorithm: Algorithm::Ed25519,
            };
            let generated = backend.generate(&spec).await.map_err(anyhow_core)?;
            let key = Key::new(
                id,
                KeyName::parse(LOG_KEY_NAME).map_err(anyhow_core)?,
                Algorithm::Ed25519,
                backend.id().to_owned(),
                generated,
                clock.now(),
            );
            keys.create_key(&key).await.map_err(anyhow_core)?;
            tracing::info!("generated the audit log key `{LOG_KEY_NAME}`");
            key
        }
    };
    let version = key.current().context("the audit log key has no version")?;
    let spec = KeySpec {
        key_id: key.id.clone(),
        version: version.version,
        algorithm: key.algorithm,
    };
    let opened = backend.open(&spec, &version.handle).map_err(anyhow_core)?;
    Ok(Arc::from(opened))
}

/// Signs checkpoints as C2SP signed notes with the log key; the key name is the origin.
pub struct LogSigner {
    origin: String,
    key: Arc<dyn SigningKey>,
    public: [u8; 32],
}

impl LogSigner {
    pub fn new(origin: String, key: Arc<dyn SigningKey>) -> Result<Self> {
        let public = ed25519_raw(key.public_key_der())?;
        VerifierKey::new(&origin, public)
            .map_err(|e| anyhow::anyhow!("invalid log origin `{origin}`: {e}"))?;
        Ok(LogSigner {
            origin,
            key,
            public,
        })
    }

    /// The C2SP verifier key (`name+hash+key`) clients verify checkpoints with.
    pub fn verifier_key(&self) -> Result<String> {
        Ok(VerifierKey::new(&self.origin, self.public)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .to_string())
    }
}

impl NoteSigner for LogSigner {
    fn origin(&self) -> &str {
        &self.origin
    }

    fn open_checkpoint(&self, note: &str) -> Result<(u64, Hash), CoreError> {
        let vkey = VerifierKey::new(&self.origin, self.public)
            .map_err(|e| CoreError::internal("building the log verifier key", e))?;
        let cp = signet_formats::checkpoint::open_note(note, &vkey)
            .map_err(|e| CoreError::new(ErrorCode::Internal, e.to_string()))?;
        if cp.origin != self.origin {
            return Err(CoreError::new(
                ErrorCode::Internal,
                format!(
                    "checkpoint origin `{}` is not this log's `{}`",
                    cp.origin, self.origin
                ),
            ));
        }
        Ok((cp.size, cp.root))
    }

    fn sign_checkpoint(&self, size: u64, root: &Hash) -> Result<String, CoreError> {
        let body = Checkpoint {
            origin: self.origin.clone(),
            size,
            root: *root,
        }
        .to_body()
        .map_err(|e| CoreError::internal("encoding a checkpoint", e))?;
        sign_note(
            &body,
            &self.origin,
            |msg| {
                let sig = self.key.sign_message(msg)?;
                <[u8; 64]>::try_from(sig.as_slice()).map_err(|_| {
                    CoreError::new(ErrorCode::Internal, "Ed25519 signature is not 64 bytes")
                })
            },
            &self.public,
        )
        .map_err(|e| match e {
            signet_formats::checkpoint::SignNoteError::Signer(e) => e,
            signet_formats::checkpoint::SignNoteError::Note(e) => {
                CoreError::internal("signing a checkpoint", e)
            }
        })
    }
}
