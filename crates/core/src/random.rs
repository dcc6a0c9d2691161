//! Randomness comes from one place: the [`Random`] given to the server at start.
//!
//! Key material is made inside a backend with the backend's own approved generator (aws-lc's
//! DRBG for keys, the KEK and AES-GCM nonces; a token's RNG); every other random value Signet
//! makes (token secrets, identifiers) draws from this trait, so tests can substitute it.

use crate::error::CoreError;

pub trait Random: Send + Sync {
    /// Fills `buf` with cryptographically secure random bytes.
    fn fill(&self, buf: &mut [u8]) -> Result<(), CoreError>;
}

/// Draws `N` random bytes.
pub fn bytes<const N: usize>(rng: &dyn Random) -> Result<[u8; N], CoreError> {
    let mut out = [0u8; N];
    rng.fill(&mut out)?;
    Ok(out)
}

/// A random identifier: 16 bytes, hex-encoded.
pub fn id(rng: &dyn Random) -> Result<String, CoreError> {
    Ok(hex::encode(bytes::<16>(rng)?))
}
