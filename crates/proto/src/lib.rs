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
    /// The signing key version's certificate and its issuers (PEM, leaf first), when it has a
    /// valid one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificate_chain: Vec<String>,
    /// An RFC 3161 time-stamp token (base64 DER) over the signature value, when the key's
    /// policy requires one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
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

/// `PUT /api/v1/keys/{name}/policy`: rules the signing pipeline enforces for a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyPolicy {
    /// Refuse to sign unless the signing version has a valid, unrevoked certificate.
    #[serde(default)]
    pub require_certificate: bool,
    /// Attach an RFC 3161 token from the built-in TSA to every signature.
    #[serde(default)]
    pub require_timestamp: bool,
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
    /// `signing` (clients' digests), `certificate_authority` or `timestamping` (these sign
    /// only what Signet composes).
    pub usage: String,
    pub policy: KeyPolicy,
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

// ---- certificates, CAs, time-stamping ------------------------------------------------------

/// `POST /api/v1/cas`: create an internal CA (a root and an issuing key, both Signet keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCaRequest {
    /// The CA's name; its keys are `NAME-root` and `NAME-issuing`.
    pub name: String,
    /// Default `ecdsa-p384`.
    #[serde(default)]
    pub algorithm: Option<String>,
    /// Default: the server's default key backend.
    #[serde(default)]
    pub backend: Option<String>,
    /// RFC 4514 subject prefix, e.g. `O=Example,C=DE`; the CNs are `NAME Root CA` and
    /// `NAME Issuing CA`.
    #[serde(default)]
    pub organization: Option<String>,
    /// Default 3650 (root) and 1825 (issuing).
    #[serde(default)]
    pub root_validity_days: Option<u32>,
    #[serde(default)]
    pub issuing_validity_days: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CaInfo {
    pub name: String,
    pub root_key: String,
    pub issuing_key: String,
    /// PEM.
    pub root_certificate: String,
    pub issuing_certificate: String,
    /// Where the CRL of the certificates this CA issued is published (DER,
    /// `application/pkix-crl`).
    pub crl_url: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CaList {
    pub cas: Vec<CaInfo>,
}

/// `POST /api/v1/keys/{name}/certificates`: have an internal CA issue a certificate for the
/// key's current version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueCertificateRequest {
    /// The internal CA's name.
    pub ca: String,
    /// RFC 4514 subject, e.g. `CN=Release Signing,O=Example`; must contain a CN.
    pub subject: String,
    /// Default and maximum: the server's `[pki] max_validity_days` (460).
    #[serde(default)]
    pub validity_days: Option<u32>,
}

/// `POST /api/v1/keys/{name}/csr`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CsrRequest {
    /// RFC 4514 subject; must contain a CN.
    pub subject: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CsrResponse {
    pub key: String,
    pub key_version: u32,
    /// PKCS#10 (RFC 2986), PEM.
    pub csr: String,
}

/// `POST /api/v1/keys/{name}/certificates/import`: attach a chain issued by an external CA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportCertificateRequest {
    /// PEM, leaf first, then its issuers (the root may be included).
    pub chain: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CertificateInfo {
    pub id: String,
    pub key: String,
    pub key_version: u32,
    /// `root_ca`, `issuing_ca`, `code_signing`, `timestamping`, `imported`.
    pub kind: String,
    /// Hex.
    pub serial: String,
    pub subject: String,
    pub issuer: String,
    /// The internal CA that issued it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub not_after: OffsetDateTime,
    /// `valid`, `expired`, `not_yet_valid` or `revoked`, now.
    pub status: String,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_reason: Option<String>,
    /// The certificate then its issuers, PEM.
    pub chain: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CertificateList {
    pub certificates: Vec<CertificateInfo>,
}

/// `POST /api/v1/certificates/{id}/revoke`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeCertificateRequest {
    /// `unspecified`, `key_compromise`, `ca_compromise`, `affiliation_changed`, `superseded`,
    /// `cessation_of_operation`.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST /api/v1/tsa`: set up the built-in time-stamping authority (a key with usage
/// `timestamping` and a certificate with EKU timeStamping from an internal CA).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTsaRequest {
    /// Internal CA to issue the TSA certificate.
    pub ca: String,
    /// Key name; default `tsa`.
    #[serde(default)]
    pub key: Option<String>,
    /// Default `ecdsa-p256`.
    #[serde(default)]
    pub algorithm: Option<String>,
    #[serde(default)]
    pub backend: Option<String>,
    /// Default `CN=Signet Time-Stamping Authority`.
    #[serde(default)]
    pub subject: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TsaInfo {
    pub key: String,
    /// Dotted OID put in every TSTInfo.
    pub policy: String,
    /// The TSA certificate then its issuers, PEM.
    pub chain: Vec<String>,
    /// Where RFC 3161 queries go (`application/timestamp-query`).
    pub url: String,
}

/// `POST /api/v1/sign/cms`: a detached CMS SignedData (RFC 5652) over an artifact digest, built
/// on the server around the client's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CmsSignRequest {
    pub key: String,
    #[serde(default)]
    pub digest_algorithm: Option<String>,
    /// The artifact's digest, hex.
    pub digest: String,
    #[serde(default)]
    pub artifact_name: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub build: Option<BuildInfo>,
    /// Add an RFC 3161 token from the built-in TSA as an unsigned attribute (always added when
    /// the key's policy requires time-stamps).
    #[serde(default)]
    pub timestamp: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CmsSignResponse {
    pub key: String,
    pub key_version: u32,
    /// Base64 of the DER ContentInfo (what goes into `FILE.p7s`).
    pub cms: String,
    /// The signer certificate then its issuers, PEM.
    pub certificate_chain: Vec<String>,
    pub audit_index: u64,
    pub log: LogProof,
}
