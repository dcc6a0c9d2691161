//! Sealing private keys under a key-encryption key (KEK) with AES-256-GCM (NIST SP 800-38D).
//!
//! A sealed blob is `0x01 || nonce (12 bytes) || ciphertext || tag (16 bytes)`. The nonce is
//! random per seal; the associated data binds the blob to the key id, version and algorithm it
//! was made for, so a blob copied onto another key row fails to open.

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use signet_core::{CoreError, ErrorCode};
use zeroize::Zeroizing;

const FORMAT_V1: u8 = 1;
/// KEK length in bytes (AES-256).
pub const KEK_LEN: usize = 32;

/// The key-encryption key. Its bytes are zeroized when dropped; it has no `Debug` of its value.
pub struct Kek {
    key: RandomizedNonceKey,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(<redacted>)")
    }
}

impl Kek {
    /// Builds a KEK from 32 secret bytes.
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
        Ok(Kek { key })
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
        let mut buf = Zeroizing::new(plaintext.to_vec());
        let nonce = self
            .key
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
        let mut buf = Zeroizing::new(ct.to_vec());
        let len = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .map_err(|_| bad())?
            .len();
        buf.truncate(len);
        Ok(buf)
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
    fn kek_length_is_checked() {
        assert!(Kek::from_bytes(&[0u8; 16]).is_err());
    }
}
