//! API tokens: `signet_<id>_<secret>`. The id finds the record; only a hash of the secret is
//! stored. Secrets are 256 random bits, so a plain SHA-256 (domain-separated) is the right hash:
//! a slow password hash adds nothing against brute force of a 2^256 space.

use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use crate::error::CoreError;
use crate::principal::Role;
use crate::random::{self, Random};
use crate::secret::SecretString;

const PREFIX: &str = "signet_";
const HASH_DOMAIN: &[u8] = b"signet api token v1\0";

/// A stored API token (never the secret itself).
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub secret_hash: Vec<u8>,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
    /// The principal id that created it (`init` for the first admin token).
    pub created_by: String,
}

impl TokenRecord {
    /// Whether the token may authenticate at `now`.
    pub fn is_usable(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|exp| now < exp)
    }
}

/// A newly minted token: the full secret (shown once) and what to store.
#[derive(Debug)]
pub struct MintedToken {
    pub id: String,
    pub secret: SecretString,
    pub secret_hash: Vec<u8>,
}

/// Mints a new token from the injected randomness.
pub fn mint(rng: &dyn Random) -> Result<MintedToken, CoreError> {
    let id = hex::encode(random::bytes::<8>(rng)?);
    let secret = zeroize::Zeroizing::new(hex::encode(random::bytes::<32>(rng)?));
    let secret_hash = hash_secret(&secret);
    Ok(MintedToken {
        secret: SecretString::new(format!("{PREFIX}{id}_{}", secret.as_str())),
        id,
        secret_hash,
    })
}

/// Splits a presented token into its id and secret part; `None` if it is not a Signet token.
pub fn parse(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hexish = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hexish(id, 16) && hexish(secret, 64)).then_some((id, secret))
}

/// Hashes the secret part of a token for storage and comparison.
pub fn hash_secret(secret: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(HASH_DOMAIN);
    h.update(secret.as_bytes());
    h.finalize().to_vec()
}

/// Compares two hashes in time independent of where they differ.
pub fn hashes_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counter(std::sync::atomic::AtomicU8);
    impl Random for Counter {
        fn fill(&self, buf: &mut [u8]) -> Result<(), CoreError> {
            for b in buf {
                *b = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(())
        }
    }

    #[test]
    fn minted_tokens_parse_and_verify() -> Result<(), CoreError> {
        let rng = Counter(0.into());
        let t = mint(&rng)?;
        let (id, secret) = parse(t.secret.expose())
            .ok_or_else(|| CoreError::new(crate::ErrorCode::Internal, "unparsable"))?;
        assert_eq!(id, t.id);
        assert!(hashes_equal(&hash_secret(secret), &t.secret_hash));
        assert!(!hashes_equal(&hash_secret("00"), &t.secret_hash));
        let other = mint(&rng)?;
        assert_ne!(other.id, t.id);
        Ok(())
    }

    #[test]
    fn malformed_tokens_do_not_parse() {
        for bad in [
            "",
            "signet_",
            "signet_abc_def",
            "Bearer x",
            &format!("signet_{}_{}", "g".repeat(16), "0".repeat(64)),
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
