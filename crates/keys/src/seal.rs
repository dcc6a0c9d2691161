//! Sealing private keys under a key-encryption key (KEK) with AES-256-GCM (NIST SP 800-38D).
//!
//! A sealed blob is `0x01 || nonce (12 bytes) || ciphertext || tag (16 bytes)`. The nonce is
//! random per seal; the associated data binds the blob to the key id, version and algorithm it
//! was made for, so a blob copied onto another key row fails to open.
//!
//! A [`Kek`] is a shared slot: the server starts with it empty (sealed) until custodians unseal
//! it, and an operator can empty it again (`signet operator seal`). Every clone sees the same
//! state, so the software backend and the unseal endpoint hold the same slot.

use std::sync::{Arc, RwLock};

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use signet_core::backend::{KeySpec, Rewrap, SealState};
use signet_core::key::KeyHandle;
use signet_core::{CoreError, ErrorCode};
use zeroize::Zeroizing;

const FORMAT_V1: u8 = 1;
/// KEK length in bytes (AES-256).
pub const KEK_LEN: usize = 32;

/// The key-encryption key slot. aws-lc cleanses the key schedule when it is freed; there is no
/// `Debug` of the value.
#[derive(Clone, Default)]
pub struct Kek {
    slot: Arc<RwLock<Option<Arc<RandomizedNonceKey>>>>,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_sealed() {
            "Kek(<sealed>)"
        } else {
            "Kek(<redacted>)"
        })
    }
}

/// The error every use of an empty slot gets.
pub fn sealed_error() -> CoreError {
    CoreError::sealed()
}

impl Kek {
    /// An empty (sealed) slot.
    pub fn sealed() -> Self {
        Kek::default()
    }

    /// Whether the slot is empty.
    pub fn is_sealed(&self) -> bool {
        self.slot.read().map(|s| s.is_none()).unwrap_or(true)
    }

    /// Puts the KEK built from `bytes` into this slot (unseal).
    pub fn load(&self, bytes: &[u8]) -> Result<(), CoreError> {
        let key = Kek::from_bytes(bytes)?.current()?;
        let mut slot = self
            .slot
            .write()
            .map_err(|_| CoreError::new(ErrorCode::Internal, "key-encryption key lock poisoned"))?;
        *slot = Some(key);
        Ok(())
    }

    /// Empties the slot (seal). Keys already opened elsewhere must be dropped by their holders.
    pub fn clear(&self) {
        if let Ok(mut slot) = self.slot.write() {
            *slot = None;
        }
    }

    /// Makes this slot hold the same KEK as `other` (KEK rotation's switch-over).
    pub fn take_from(&self, other: &Kek) -> Result<(), CoreError> {
        let next = other.current()?;
        let mut slot = self
            .slot
            .write()
            .map_err(|_| CoreError::new(ErrorCode::Internal, "key-encryption key lock poisoned"))?;
        *slot = Some(next);
        Ok(())
    }

    fn current(&self) -> Result<Arc<RandomizedNonceKey>, CoreError> {
        self.slot
            .read()
            .ok()
            .and_then(|s| s.clone())
            .ok_or_else(sealed_error)
    }

    /// Builds a loaded KEK from 32 secret bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CoreError> {
        if bytes.len() != KEK_LEN {
            return Err(CoreError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "key-encryption key is {} bytes; it must be {KEK_LEN}",
                    bytes.len()
                ),
            ));
        }
        let key = RandomizedNonceKey::new(&AES_256_GCM, bytes).map_err(|_| {
            CoreError::new(ErrorCode::Internal, "cannot load the key-encryption key")
        })?;
        Ok(Kek {
            slot: Arc::new(RwLock::new(Some(Arc::new(key)))),
        })
    }

    /// Generates fresh KEK bytes (for `signetd init`).
    pub fn generate_bytes() -> Result<Zeroizing<[u8; KEK_LEN]>, CoreError> {
        let mut b = Zeroizing::new([0u8; KEK_LEN]);
        aws_lc_rs::rand::fill(b.as_mut())
            .map_err(|_| CoreError::new(ErrorCode::Internal, "random number generator failed"))?;
        Ok(b)
    }

    /// Encrypts `plaintext` bound to `aad`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CoreError> {
        let key = self.current()?;
        let mut buf = Zeroizing::new(plaintext.to_vec());
        let nonce = key
            .seal_in_place_append_tag(Aad::from(aad), &mut *buf)
            .map_err(|_| CoreError::new(ErrorCode::Internal, "sealing a key failed"))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + buf.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(nonce.as_ref());
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Decrypts a sealed blob made with the same KEK and `aad`. The plaintext is zeroized when
    /// the returned value is dropped.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CoreError> {
        let bad = || {
            CoreError::new(
                ErrorCode::Internal,
                "a sealed key does not open under this key-encryption key (wrong KEK, or the stored key was altered)",
            )
        };
        let (&format, rest) = sealed.split_first().ok_or_else(bad)?;
        if format != FORMAT_V1 || rest.len() < NONCE_LEN + 16 {
            return Err(bad());
        }
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| bad())?;
        let key = self.current()?;
        let mut buf = Zeroizing::new(ct.to_vec());
        let len = key
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .map_err(|_| bad())?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

/// Whether `candidate` opens the sealed key `handle` made for `spec`: proof that a KEK rebuilt
/// from shares (or unwrapped by a token) is this server's.
pub fn kek_opens(candidate: &Kek, spec: &KeySpec, handle: &KeyHandle) -> bool {
    candidate
        .open(&crate::software::aad(spec), &handle.0)
        .is_ok()
}

impl SealState for Kek {
    fn is_sealed(&self) -> bool {
        Kek::is_sealed(self)
    }
}

/// Re-seals software keys from the current KEK to a new one (KEK rotation). `commit` switches
/// the shared slot to the new KEK; until then every key keeps opening under the old one.
#[derive(Debug)]
pub struct KekRotation {
    current: Kek,
    next: Kek,
}

impl KekRotation {
    pub fn new(current: Kek, next: Kek) -> Self {
        KekRotation { current, next }
    }
}

impl Rewrap for KekRotation {
    fn backend_id(&self) -> &str {
        crate::SoftwareBackend::ID
    }

    fn rewrap(&self, spec: &KeySpec, handle: &KeyHandle) -> Result<KeyHandle, CoreError> {
        let aad = crate::software::aad(spec);
        let plaintext = self.current.open(&aad, &handle.0)?;
        Ok(KeyHandle(self.next.seal(&aad, &plaintext)?))
    }

    fn commit(&self) -> Result<(), CoreError> {
        self.current.take_from(&self.next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trips_and_binds_aad() -> Result<(), CoreError> {
        let kek = Kek::from_bytes(Kek::generate_bytes()?.as_ref())?;
        let sealed = kek.seal(b"key-1|1", b"secret key bytes")?;
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(
            kek.open(b"key-1|1", &sealed)?.as_slice(),
            b"secret key bytes"
        );
        assert!(kek.open(b"key-2|1", &sealed).is_err(), "aad must bind");
        let other = Kek::from_bytes(Kek::generate_bytes()?.as_ref())?;
        assert!(other.open(b"key-1|1", &sealed).is_err(), "kek must bind");
        let mut flipped = sealed.clone();
        if let Some(last) = flipped.last_mut() {
            *last ^= 1;
        }
        assert!(kek.open(b"key-1|1", &flipped).is_err(), "tag must bind");
        assert!(kek.open(b"key-1|1", &[]).is_err());
        assert!(kek.open(b"key-1|1", &sealed[..10]).is_err());
        // Two seals of the same plaintext differ (random nonce).
        assert_ne!(kek.seal(b"a", b"x")?, kek.seal(b"a", b"x")?);
        Ok(())
    }

    #[test]
    fn a_sealed_slot_refuses_and_clones_share_state() -> Result<(), CoreError> {
        let slot = Kek::sealed();
        let view = slot.clone();
        assert!(view.is_sealed());
        assert_eq!(
            view.seal(b"a", b"x").err().map(|e| e.code),
            Some(ErrorCode::Sealed)
        );
        let bytes = Kek::generate_bytes()?;
        slot.load(bytes.as_ref())?;
        let blob = view.seal(b"a", b"x")?;
        slot.clear();
        assert_eq!(
            view.open(b"a", &blob).err().map(|e| e.code),
            Some(ErrorCode::Sealed)
        );
        slot.load(bytes.as_ref())?;
        assert_eq!(view.open(b"a", &blob)?.as_slice(), b"x");
        Ok(())
    }

    #[test]
    fn rotation_reseals_under_the_new_kek() -> Result<(), CoreError> {
        use signet_core::Algorithm;
        let current = Kek::from_bytes(Kek::generate_bytes()?.as_ref())?;
        let next = Kek::from_bytes(Kek::generate_bytes()?.as_ref())?;
        let spec = KeySpec {
            key_id: "k".into(),
            version: 1,
            algorithm: Algorithm::Ed25519,
        };
        let aad = crate::software::aad(&spec);
        let old = KeyHandle(current.seal(&aad, b"pkcs8")?);
        let rotation = KekRotation::new(current.clone(), next.clone());
        let new = rotation.rewrap(&spec, &old)?;
        assert!(
            next.open(&aad, &old.0).is_err(),
            "old blob is not under the new KEK"
        );
        assert_eq!(
            current.open(&aad, &new.0).err().map(|e| e.code),
            Some(ErrorCode::Internal)
        );
        rotation.commit()?;
        assert_eq!(current.open(&aad, &new.0)?.as_slice(), b"pkcs8");
        Ok(())
    }

    #[test]
    fn kek_length_is_checked() {
        assert!(Kek::from_bytes(&[0u8; 16]).is_err());
    }
}
