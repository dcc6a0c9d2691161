//! The one error type of the domain: a stable machine-readable [`ErrorCode`] and a human message.
//!
//! Messages follow the project style: lowercase, no trailing period, the offending value in
//! backticks, and a hint of what to do next. Internal failures carry their cause for the log;
//! the server never returns it to a client.

use std::error::Error as StdError;
use std::fmt;

/// Stable error codes. They appear as the `code` of API problem documents and never change
/// meaning once released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidName,
    UnsupportedAlgorithm,
    UnsupportedDigestAlgorithm,
    DigestAlgorithmNotAllowed,
    DigestLengthMismatch,
    InvalidDigest,
    BatchTooLarge,
    KeyNotFound,
    KeyExists,
    KeyDisabled,
    Conflict,
    TokenNotFound,
    Unauthenticated,
    PolicyDenied,
    BackendUnavailable,
    /// The key-encryption key is not in memory: custodians must unseal the server.
    Sealed,
    /// The key is for another purpose (a CA or TSA key asked to sign a client's digest).
    WrongKeyUsage,
    CertificateNotFound,
    /// The key's policy needs a valid certificate and the signing version has none.
    CertificateRequired,
    /// An imported chain does not belong to the key or is malformed.
    CertificateMismatch,
    CaNotFound,
    /// The built-in time-stamping authority is not set up (`signet tsa create`).
    TsaNotConfigured,
    Internal,
}

impl ErrorCode {
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidName => "invalid_name",
            ErrorCode::UnsupportedAlgorithm => "unsupported_algorithm",
            ErrorCode::UnsupportedDigestAlgorithm => "unsupported_digest_algorithm",
            ErrorCode::DigestAlgorithmNotAllowed => "digest_algorithm_not_allowed",
            ErrorCode::DigestLengthMismatch => "digest_length_mismatch",
            ErrorCode::InvalidDigest => "invalid_digest",
            ErrorCode::BatchTooLarge => "batch_too_large",
            ErrorCode::KeyNotFound => "key_not_found",
            ErrorCode::KeyExists => "key_exists",
            ErrorCode::KeyDisabled => "key_disabled",
            ErrorCode::Conflict => "conflict",
            ErrorCode::TokenNotFound => "token_not_found",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::PolicyDenied => "policy_denied",
            ErrorCode::BackendUnavailable => "backend_unavailable",
            ErrorCode::Sealed => "sealed",
            ErrorCode::WrongKeyUsage => "wrong_key_usage",
            ErrorCode::CertificateNotFound => "certificate_not_found",
            ErrorCode::CertificateRequired => "certificate_required",
            ErrorCode::CertificateMismatch => "certificate_mismatch",
            ErrorCode::CaNotFound => "ca_not_found",
            ErrorCode::TsaNotConfigured => "tsa_not_configured",
            ErrorCode::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A domain error. `message` is safe to show to the caller unless `code` is
/// [`ErrorCode::Internal`] or [`ErrorCode::BackendUnavailable`].
#[derive(Debug)]
pub struct CoreError {
    pub code: ErrorCode,
    pub message: String,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl CoreError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        CoreError {
            code,
            message: message.into(),
            source: None,
        }
    }

    /// An internal failure: `context` and `source` go to the log, never to a client.
    pub fn internal(
        context: impl Into<String>,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        CoreError {
            code: ErrorCode::Internal,
            message: context.into(),
            source: Some(Box::new(source)),
        }
    }

    pub fn key_not_found(name: &str) -> Self {
        CoreError::new(
            ErrorCode::KeyNotFound,
            format!("key `{name}` not found; `signet key list` shows the keys you may use"),
        )
    }

    /// The server is sealed: nothing can be signed until custodians unseal it.
    pub fn sealed() -> Self {
        CoreError::new(
            ErrorCode::Sealed,
            "the server is sealed: its key-encryption key is not in memory; custodians unseal it with `signet operator unseal`",
        )
    }

    /// Whether the message may be returned to the caller.
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self.code,
            ErrorCode::Internal | ErrorCode::BackendUnavailable
        )
    }
}

/// `message (code)`, with the cause for internal errors: the same shape the CLI prints for
/// problems from the server.
impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        write!(f, " ({})", self.code)
    }
}

impl StdError for CoreError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}
