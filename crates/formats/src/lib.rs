//! Signet's artifact formats: pure code that builds, reads and verifies what Signet emits, with
//! no network and no key custody. Runs on clients (the CLI verifies offline with it) and on the
//! server alike.
//!
//! - [`raw`]: a raw signature over a digest, verified against an SPKI public key.
//! - [`bundle`]: the `.signet.json` bundle written next to a signed file.
//! - [`pem`]: SubjectPublicKeyInfo in PEM (RFC 7468 §13).
//!
//! Depends on `signet-core` only.

pub mod bundle;
pub mod checkpoint;
pub mod pem;
pub mod raw;

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
}
