//! Storage plug-in traits, one per aggregate. Implementations live in `signet-store`.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::CoreError;
use crate::key::{Key, KeyState, KeyVersion};
use crate::token::TokenRecord;

#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Stores a new key with its first version. Fails with `key_exists` if the name is taken.
    async fn create_key(&self, key: &Key) -> Result<(), CoreError>;

    /// The key and all its versions.
    async fn get_key(&self, name: &str) -> Result<Option<Key>, CoreError>;

    async fn list_keys(&self) -> Result<Vec<Key>, CoreError>;

    /// Adds a version and makes it the current one, provided the current version is still
    /// `expected_current` (so two concurrent rotations cannot both win).
    async fn add_version(
        &self,
        key_id: &str,
        expected_current: u32,
        version: &KeyVersion,
    ) -> Result<(), CoreError>;

    async fn set_state(&self, key_id: &str, state: KeyState) -> Result<(), CoreError>;

    /// Replaces the key's policy.
    async fn set_policy(
        &self,
        key_id: &str,
        policy: &crate::cert::KeyPolicy,
    ) -> Result<(), CoreError>;

    /// Replaces the handles of the given `(key id, version)`s in one transaction (KEK rotation):
    /// all or nothing.
    async fn replace_handles(
        &self,
        updates: &[(String, u32, crate::key::KeyHandle)],
    ) -> Result<(), CoreError>;
}

#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn create_token(&self, token: &TokenRecord) -> Result<(), CoreError>;

    async fn get_token(&self, id: &str) -> Result<Option<TokenRecord>, CoreError>;

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, CoreError>;

    /// Marks a token revoked; returns `false` if it does not exist.
    async fn revoke_token(&self, id: &str, at: OffsetDateTime) -> Result<bool, CoreError>;
}
