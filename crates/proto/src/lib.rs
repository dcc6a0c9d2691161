//! The wire types of Signet's REST API (`/api/v1`): request and response bodies, the RFC 9457
//! problem document with its stable error codes, and their OpenAPI schemas.
//!
//! Shared by the server and every client. Depends on no other workspace crate, so clients can
//! use it without pulling in server code.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// `Content-Type` of error responses (RFC 9457 §3).
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// An error response (RFC 9457). `code` is stable and machine-readable; `detail` says what was
/// wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type: `urn:signet:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Stable error code, e.g. `key_not_found`, `digest_length_mismatch`, `policy_denied`.
    pub code: String,
}

/// Context recorded with every signature.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BuildInfo {
    pub repository: Option<String>,
    pub commit: Option<String>,
    pub pipeline_id: Option<String>,
}

/// `POST /api/v1/sign`: sign one digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    /// Key name; the key's current version signs.
    pub key: String,
    /// `sha256`, `sha384` or `sha512`; default: the key's `default_digest_algorithm`.
    #[serde(default)]
    pub digest_algorithm: Option<String>,
    /// The artifact's digest, hex.
    pub digest: String,
    #[serde(default)]
    pub artifact_name: Option<String>,
    /// Free-form kind, e.g. `file`, `container`, `package`.
    #[serde(default)]
    pub artifact_kind: Option<String>,
    /// Why this is signed (recorded in the audit log).
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub build: Option<BuildInfo>,
}

/// One digest of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchItem {
    pub digest: String,
    #[serde(default)]
    pub artifact_name: Option<String>,
    #[serde(default)]
    pub artifact_kind: Option<String>,
}

/// `POST /api/v1/sign/batch`: many digests, one key, one round trip (at most 1000).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchSignRequest {
    pub key: String,
    #[serde(default)]
    pub digest_algorithm: Option<String>,
    pub items: Vec<BatchItem>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub build: Option<BuildInfo>,
}

/// A signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SignResponse {
    pub key: String,
    pub key_version: u32,
    pub algorithm: String,
    pub digest_algorithm: String,
    /// Hex.
    pub digest: String,
    /// Base64 of the raw signature (DER for ECDSA).
    pub signature: String,
    pub public_key_fingerprint: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub signed_at: OffsetDateTime,
    /// Index of this signature's entry in the audit log.
    pub audit_index: u64,
    /// Proof that the entry is in the log.
    pub log: LogProof,
}

/// Proof that an audit entry is in the log, checkable offline with the log's verifier key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogProof {
    pub index: u64,
    /// The entry's exact bytes (canonical JSON); its leaf hash is SHA-256(0x00 || entry).
    pub entry: String,
    /// Hex.
    pub leaf_hash: String,
    pub tree_size: u64,
    /// Hex hashes, RFC 9162 §2.1.3.
    pub inclusion_proof: Vec<String>,
    /// The signed checkpoint (C2SP signed note) of `tree_size` the proof is against.
    pub checkpoint: String,
}

/// `GET /api/v1/log/key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogKey {
    pub origin: String,
    /// C2SP verifier key: `<origin>+<key hash>+<base64 key>`.
    pub verifier_key: String,
    pub public_key_pem: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogEntry {
    pub index: u64,
    /// Exact bytes of the entry.
    pub entry: String,
    /// Hex leaf hash as stored beside the entry.
    pub leaf_hash: Option<String>,
}

/// `GET /api/v1/log/entries`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogEntries {
    pub entries: Vec<LogEntry>,
}

/// `GET /api/v1/log/proof/inclusion`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InclusionProof {
    pub index: u64,
    pub tree_size: u64,
    pub leaf_hash: String,
    pub proof: Vec<String>,
}

/// `GET /api/v1/log/proof/consistency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    pub proof: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BatchSignResponse {
    /// In the order of the request's items.
    pub signatures: Vec<SignResponse>,
}

/// `POST /api/v1/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    pub name: String,
    /// `ed25519`, `ecdsa-p256`, `ecdsa-p384`, `rsa-3072-pss`, `rsa-3072-pkcs1`, `rsa-4096-pss`,
    /// `rsa-4096-pkcs1`, `ml-dsa-44`, `ml-dsa-65`, `ml-dsa-87`, `slh-dsa-sha2-128s`,
    /// `slh-dsa-sha2-128f`.
    pub algorithm: String,
    /// The key backend to hold it (`software`, `pkcs11`); default: the server's default backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// Adopt an existing private key of the backend instead of generating one: a PKCS#11 URI
    /// (RFC 7512) naming it, e.g. `pkcs11:object=release-2026;id=%01`. The key never leaves the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyVersionInfo {
    pub version: u32,
    /// SubjectPublicKeyInfo, PEM.
    pub public_key_pem: String,
    /// `sha256:` + hex SHA-256 of the SPKI DER.
    pub fingerprint: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyInfo {
    pub name: String,
    pub algorithm: String,
    /// `active` or `disabled`.
    pub state: String,
    pub backend: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    pub current_version: u32,
    /// Digest algorithms this key signs.
    pub digest_algorithms: Vec<String>,
    pub default_digest_algorithm: String,
    /// Oldest first.
    pub versions: Vec<KeyVersionInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyInfo>,
}

/// `POST /api/v1/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// Service account name.
    pub name: String,
    /// `signer` (default) or `admin`.
    #[serde(default)]
    pub role: Option<String>,
    /// Expiry time (RFC 3339); no expiry if absent.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub role: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<OffsetDateTime>,
    pub created_by: String,
}

/// The one response that contains a token's secret. Shown once; the server keeps only a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    pub token: String,
    pub info: TokenInfo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenList {
    pub tokens: Vec<TokenInfo>,
}

/// One audit record as served by `GET /api/v1/audit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditRecord {
    pub index: u64,
    /// The event (see `docs/api.md`, "Audit log", for its fields).
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditList {
    pub records: Vec<AuditRecord>,
}

/// `GET /api/v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Status {
    pub version: String,
    pub node: String,
    /// Key backend new keys are generated in.
    pub key_backend: String,
    /// How the key-encryption key is held: `shamir`, `pkcs11` or `dev-key-file`.
    pub kek_source: String,
    pub warnings: Vec<String>,
    /// Sealed: nothing is signed until custodians unseal (`signet operator unseal`).
    pub sealed: bool,
    /// Cryptography runs in the FIPS 140-3 validated module (a `--features fips` build).
    pub fips: bool,
    /// `require_fips = true`: algorithms outside the boundary are refused.
    pub fips_required: bool,
    /// The process's memory is locked (never swapped).
    pub memory_locked: bool,
    /// Core dumps are off and the process is not dumpable.
    pub core_dumps_disabled: bool,
}

/// The unseal state (`GET /api/v1/operator/seal-status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SealStatus {
    pub sealed: bool,
    /// `shamir`, `pkcs11` or `dev-key-file`.
    pub mode: String,
    /// Shares needed, and shares handed out (shamir mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shares: Option<u8>,
    /// Shares submitted so far while sealed.
    pub progress: u8,
    /// The current split's id, printed in every share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_set: Option<String>,
}

/// One custodian's share (`POST /api/v1/operator/unseal`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UnsealRequest {
    /// The whole `signet-share-v1-…` line.
    pub share: String,
}

/// `POST /api/v1/operator/rotate-kek`: optional new split (shamir mode).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RotateKekRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shares: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u8>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RotateKekResponse {
    /// Key versions re-sealed under the new KEK.
    pub rewrapped: u64,
    /// The new shares (shamir mode), shown once: hand one to each custodian. The old shares no
    /// longer unseal this server.
    pub shares: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_set: Option<String>,
}
