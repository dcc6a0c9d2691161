//! Wiring of the Merkle audit log: the log key (an ordinary, non-exportable Ed25519 key under a
//! reserved name) and the checkpoint signer over it.

use std::sync::{Arc, RwLock};

use anyhow::{Context, Result, bail};
use signet_core::backend::{KeyBackend, KeySpec, SigningKey};
use signet_core::key::{Key, KeyHandle, KeyName};
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

/// Where the log key is: what opens it, and its public half.
#[derive(Debug, Clone)]
pub struct LogKeyRef {
    pub spec: KeySpec,
    pub handle: KeyHandle,
    pub public_key_der: Vec<u8>,
}

/// Finds the log key, generating it inside the backend on first start (which needs an
/// unsealed backend: `signetd init` runs with the new KEK in memory).
pub async fn find_log_key(
    keys: &dyn KeyStore,
    backend: &dyn KeyBackend,
    clock: &dyn Clock,
    rng: &dyn Random,
) -> Result<LogKeyRef> {
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
    Ok(LogKeyRef {
        spec,
        handle: version.handle.clone(),
        public_key_der: version.public_key_der.clone(),
    })
}

/// Signs checkpoints as C2SP signed notes with the log key; the key name is the origin.
/// The key is opened on first use and dropped again by [`LogSigner::forget`] (sealing), so a
/// sealed server holds no log key in memory and cannot append.
pub struct LogSigner {
    origin: String,
    backend: Arc<dyn KeyBackend>,
    key_ref: RwLock<LogKeyRef>,
    opened: RwLock<Option<Arc<dyn SigningKey>>>,
    public: [u8; 32],
}

impl LogSigner {
    pub fn new(origin: String, backend: Arc<dyn KeyBackend>, key_ref: LogKeyRef) -> Result<Self> {
        let public = ed25519_raw(&key_ref.public_key_der)?;
        VerifierKey::new(&origin, public)
            .map_err(|e| anyhow::anyhow!("invalid log origin `{origin}`: {e}"))?;
        Ok(LogSigner {
            origin,
            backend,
            key_ref: RwLock::new(key_ref),
            opened: RwLock::new(None),
            public,
        })
    }

    /// The log key's id.
    pub fn key_id(&self) -> Option<String> {
        self.key_ref.read().ok().map(|r| r.spec.key_id.clone())
    }

    /// Takes the log key's new handle after a KEK rotation re-sealed it.
    pub fn set_handle(&self, handle: KeyHandle) {
        if let Ok(mut r) = self.key_ref.write() {
            r.handle = handle;
        }
    }

    /// Drops the opened log key from memory (seal).
    pub fn forget(&self) {
        if let Ok(mut k) = self.opened.write() {
            *k = None;
        }
    }

    fn key(&self) -> Result<Arc<dyn SigningKey>, CoreError> {
        if let Ok(k) = self.opened.read()
            && let Some(k) = k.as_ref()
        {
            return Ok(Arc::clone(k));
        }
        let key_ref = self
            .key_ref
            .read()
            .map(|r| r.clone())
            .map_err(|_| CoreError::new(ErrorCode::Internal, "log key lock poisoned"))?;
        let key: Arc<dyn SigningKey> =
            Arc::from(self.backend.open(&key_ref.spec, &key_ref.handle)?);
        if key.public_key_der() != key_ref.public_key_der.as_slice() {
            return Err(CoreError::new(
                ErrorCode::Internal,
                "the audit log key's private half does not match its public key",
            ));
        }
        if let Ok(mut slot) = self.opened.write() {
            *slot = Some(Arc::clone(&key));
        }
        Ok(key)
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
        let key = self.key()?;
        sign_note(
            &body,
            &self.origin,
            |msg| {
                let sig = key.sign_message(msg)?;
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
