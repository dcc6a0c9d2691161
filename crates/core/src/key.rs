//! Keys, their versions and their names.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use crate::algorithm::Algorithm;
use crate::error::{CoreError, ErrorCode};

/// A validated key name: 1–64 characters of `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyName(String);

impl KeyName {
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if ok {
            Ok(KeyName(s.to_owned()))
        } else {
            Err(CoreError::new(
                ErrorCode::InvalidName,
                format!(
                    "invalid name `{}`; use 1-64 characters from A-Z a-z 0-9 . _ - starting with a letter or digit",
                    crate::algorithm::truncate(s, 80)
                ),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Names starting with `signet-` belong to Signet's own keys (the audit log key).
    pub fn is_reserved(&self) -> bool {
        self.0.starts_with(RESERVED_PREFIX)
    }
}

/// Prefix of the names of Signet's own keys.
pub const RESERVED_PREFIX: &str = "signet-";

impl TryFrom<String> for KeyName {
    type Error = CoreError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        KeyName::parse(&s)
    }
}

impl From<KeyName> for String {
    fn from(n: KeyName) -> String {
        n.0
    }
}

impl std::fmt::Display for KeyName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Active,
    Disabled,
}

impl KeyState {
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "active",
            KeyState::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(KeyState::Active),
            "disabled" => Some(KeyState::Disabled),
            _ => None,
        }
    }
}

/// An opaque reference a backend gives for a key it holds: for the software backend the sealed
/// (encrypted) private key, for an HSM the object's label and id. Never plaintext key material.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyHandle(pub Vec<u8>);

impl std::fmt::Debug for KeyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyHandle({} bytes)", self.0.len())
    }
}

/// One version of a key. Rotation adds a version; old versions keep verifying.
#[derive(Debug, Clone)]
pub struct KeyVersion {
    pub version: u32,
    /// SubjectPublicKeyInfo, DER (RFC 5280 §4.1.2.7).
    pub public_key_der: Vec<u8>,
    pub handle: KeyHandle,
    pub created_at: OffsetDateTime,
}

impl KeyVersion {
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.public_key_der)
    }
}

/// A signing key and all its versions.
#[derive(Debug, Clone)]
pub struct Key {
    pub id: String,
    pub name: KeyName,
    pub algorithm: Algorithm,
    /// The id of the [`crate::backend::KeyBackend`] holding it.
    pub backend: String,
    pub state: KeyState,
    pub created_at: OffsetDateTime,
    /// The version new signatures are made with.
    pub current_version: u32,
    /// Every version, oldest first.
    pub versions: Vec<KeyVersion>,
    /// What the key signs: clients' digests, or only structures Signet composes (CA, TSA).
    pub usage: crate::cert::KeyUsage,
    /// Rules the signing pipeline enforces for this key.
    pub policy: crate::cert::KeyPolicy,
}

impl Key {
    /// A new, active key whose version 1 is `generated`.
    pub fn new(
        id: String,
        name: KeyName,
        algorithm: Algorithm,
        backend: String,
        generated: crate::backend::GeneratedKey,
        now: OffsetDateTime,
    ) -> Key {
        Key {
            id,
            name,
            algorithm,
            backend,
            state: KeyState::Active,
            created_at: now,
            current_version: 1,
            versions: vec![KeyVersion {
                version: 1,
                public_key_der: generated.public_key_der,
                handle: generated.handle,
                created_at: now,
            }],
            usage: crate::cert::KeyUsage::Signing,
            policy: crate::cert::KeyPolicy::default(),
        }
    }

    pub fn version(&self, v: u32) -> Option<&KeyVersion> {
        self.versions.iter().find(|kv| kv.version == v)
    }

    pub fn current(&self) -> Option<&KeyVersion> {
        self.version(self.current_version)
    }
}

/// The fingerprint of a public key: `sha256:` and the hex SHA-256 of its SPKI DER.
pub fn fingerprint(spki_der: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(spki_der)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        for good in ["a", "release-2026.1", "Team_A", &"x".repeat(64)] {
            assert!(KeyName::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", ".a", "a b", "a/b", "ключ", &"x".repeat(65)] {
            let code = KeyName::parse(bad).err().map(|e| e.code);
            assert_eq!(code, Some(ErrorCode::InvalidName), "{bad}");
        }
    }

    #[test]
    fn fingerprint_is_sha256_of_spki() {
        // SHA-256 of the empty string (FIPS 180-4 example value).
        assert_eq!(
            fingerprint(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
