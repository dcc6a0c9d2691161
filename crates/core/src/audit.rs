//! The audit model: one typed event per operation, appended to an [`AuditLog`] and durable
//! before the operation's result reaches the caller.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::CoreError;
use crate::principal::{PrincipalKind, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Authenticate,
    KeyCreate,
    KeyRotate,
    KeyDisable,
    KeyEnable,
    Sign,
    TokenCreate,
    TokenRevoke,
    /// A custodian submitted a key share (the share itself is never recorded).
    UnsealShare,
    /// Enough shares (or the PKCS#11 wrapping key) put the key-encryption key in memory.
    Unseal,
    /// An operator sealed the server: keys and the KEK were dropped from memory.
    Seal,
    /// Every software key was re-sealed under a new key-encryption key.
    KekRotate,
    /// A key's policy was replaced.
    KeyPolicySet,
    /// An internal CA (root and issuing key and certificates) was created.
    CaCreate,
    /// An internal CA signed a certificate.
    CertificateIssue,
    /// A certificate chain from an external CA was attached to a key version.
    CertificateImport,
    CertificateRevoke,
    /// An internal CA signed a CRL.
    CrlIssue,
    /// A key signed a PKCS#10 certification request.
    CsrCreate,
    /// The built-in TSA signed an RFC 3161 time-stamp token.
    Timestamp,
}

impl Action {
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Authenticate => "authenticate",
            Action::KeyCreate => "key_create",
            Action::KeyRotate => "key_rotate",
            Action::KeyDisable => "key_disable",
            Action::KeyEnable => "key_enable",
            Action::Sign => "sign",
            Action::TokenCreate => "token_create",
            Action::TokenRevoke => "token_revoke",
            Action::UnsealShare => "unseal_share",
            Action::Unseal => "unseal",
            Action::Seal => "seal",
            Action::KekRotate => "kek_rotate",
            Action::KeyPolicySet => "key_policy_set",
            Action::CaCreate => "ca_create",
            Action::CertificateIssue => "certificate_issue",
            Action::CertificateImport => "certificate_import",
            Action::CertificateRevoke => "certificate_revoke",
            Action::CrlIssue => "crl_issue",
            Action::CsrCreate => "csr_create",
            Action::Timestamp => "timestamp",
        }
    }
}

/// What a custody operation (unseal, seal, KEK rotation) concerned. Never a share or a key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustodyRef {
    /// How the KEK is held: `shamir`, `pkcs11`, `dev-key-file`.
    pub mode: String,
    /// The share split (random id printed on every share).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_set: Option<String>,
    /// The submitted share's index (1..=N).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_index: Option<u8>,
    /// Shares submitted so far, and how many are needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u8>,
    /// Key versions re-sealed by a KEK rotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewrapped: Option<u64>,
}

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub id: String,
    pub name: String,
    pub kind: PrincipalKind,
    pub role: Option<Role>,
}

/// The key an operation used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRef {
    pub name: String,
    pub version: Option<u32>,
    pub algorithm: Option<String>,
}

/// What was signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestRef {
    pub algorithm: String,
    pub value: String,
}

/// Why and for what a signature was asked for, as the client stated it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignContext {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline_id: Option<String>,
}

/// How it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    Allowed,
    Denied { code: String, reason: String },
    Failed { code: String, reason: String },
}

/// One audit event. Field order is the serialization order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    pub action: Action,
    pub actor: Actor,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<KeyRef>,
    /// The token an administrative operation concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<DigestRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<SignContext>,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_addr: Option<String>,
    pub node: String,
    /// Custody operations only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custody: Option<CustodyRef>,
    /// Whether the node's cryptography ran in the FIPS 140-3 validated module.
    #[serde(default)]
    pub fips: bool,
}

/// A signed checkpoint: the tree size, its root hash and the signed note over them
/// (C2SP tlog-checkpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub size: u64,
    pub root: crate::merkle::Hash,
    pub note: String,
}

/// Where an appended event landed, with what proves it is in the log.
#[derive(Debug, Clone)]
pub struct AuditReceipt {
    pub index: u64,
    /// The entry's exact bytes (canonical JSON): its leaf hash is SHA-256(0x00 || entry).
    pub entry: Vec<u8>,
    pub leaf_hash: crate::merkle::Hash,
    /// Inclusion proof against `checkpoint` (RFC 9162 §2.1.3).
    pub inclusion_proof: Vec<crate::merkle::Hash>,
    pub checkpoint: std::sync::Arc<Checkpoint>,
}

/// A stored event and its position in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub index: u64,
    pub event: AuditEvent,
}

/// Which records to list.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub after_index: Option<u64>,
    pub key: Option<String>,
    pub actor_id: Option<String>,
    pub action: Option<Action>,
    /// Hex digest value.
    pub digest: Option<String>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    pub limit: u32,
}

/// The append-only audit log.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends events in order and returns where each landed. When this returns `Ok`, the
    /// events are durable (synced to stable storage).
    async fn append(&self, events: Vec<AuditEvent>) -> Result<Vec<AuditReceipt>, CoreError>;

    /// Lists records in index order.
    async fn query(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, CoreError>;
}
