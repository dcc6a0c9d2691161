//! Signet's artifact formats: pure code that builds, reads and verifies what Signet emits, with
//! no network and no key custody. Runs on clients (the CLI verifies offline with it) and on the
//! server alike.
//!
//! - [`raw`]: a raw signature over a digest, verified against an SPKI public key.
//! - [`bundle`]: the `.signet.json` bundle written next to a signed file.
//! - [`pem`]: SubjectPublicKeyInfo in PEM (RFC 7468 §13).
//! - [`pkix`]: signature algorithm identifiers and signature checks shared by X.509 and CMS.
//! - [`x509`]: X.509 v3 certificates, PKCS#10 CSRs and CRLs (RFC 5280, RFC 2986).
//! - [`tsp`]: RFC 3161 time-stamp queries, TSTInfo and responses.
//! - [`cms`]: CMS SignedData (RFC 5652): detached signatures and time-stamp tokens.
//!
//! Depends on `signet-core` only.

pub mod bundle;
pub mod checkpoint;
pub mod cms;
pub mod pem;
pub mod pkix;
pub mod raw;
pub mod tsp;
pub mod x509;

/// Errors of format handling. Messages follow the project style.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("invalid PEM: {0}; expect a `-----BEGIN PUBLIC KEY-----` block")]
    Pem(String),
    #[error("public key does not parse as a `{0}` key; check that the key and algorithm match")]
    PublicKey(&'static str),
    #[error(
        "`{algorithm}` signature does not verify over `{digest}`; the file or signature changed, or this is not the signing key"
    )]
    BadSignature { algorithm: String, digest: String },
    #[error("invalid bundle: {0}")]
    Bundle(String),
    #[error(
        "log proof does not verify: {0}; check --log-key against `signetd init` output or GET /api/v1/log/key"
    )]
    Log(String),
    #[error("invalid checkpoint: {0}")]
    Checkpoint(String),
    /// X.509 certificates, CSRs and CRLs (`x509`, `pkix`).
    #[error("{0}")]
    X509(String),
    /// RFC 3161 time-stamp queries, responses and tokens (`tsp`).
    #[error("{0}")]
    Tsp(String),
    /// CMS SignedData (`cms`).
    #[error("{0}")]
    Cms(String),
    /// Something valid that Signet does not support (yet).
    #[error("{0}")]
    Unsupported(String),
}
