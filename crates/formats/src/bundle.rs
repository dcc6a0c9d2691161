//! The `.signet.json` bundle: everything needed to verify a signature offline, written next to
//! the signed file.
//!
//! ```json
//! { "format": "signet-bundle/v1", "key": "release", "key_version": 2,
//!   "algorithm": "ecdsa-p256", "digest": { "algorithm": "sha256", "value": "<hex>" },
//!   "signature": "<base64>", "public_key_fingerprint": "sha256:<hex>",
//!   "signed_at": "2026-11-23T12:00:00Z", "artifact": { "name": "app.tar.gz" }, "audit_index": 7 }
//! ```
//! Later versions add fields (log proofs, certificates, time-stamps); readers ignore unknown
//! fields and reject an unknown `format`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use signet_core::{Algorithm, Digest, DigestAlgorithm};
use time::OffsetDateTime;

use crate::FormatError;

pub const FORMAT_V1: &str = "signet-bundle/v1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestField {
    pub algorithm: DigestAlgorithm,
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactField {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    pub format: String,
    pub key: String,
    pub key_version: u32,
    pub algorithm: Algorithm,
    pub digest: DigestField,
    /// Base64 (RFC 4648 §4) of the raw signature, as in `FILE.sig`.
    pub signature: String,
    pub public_key_fingerprint: String,
    #[serde(with = "time::serde::rfc3339")]
    pub signed_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "is_default")]
    pub artifact: ArtifactField,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_index: Option<u64>,
}

/// Decodes a base64 signature as found in bundles and API responses.
pub fn decode_signature(b64: &str) -> Result<Vec<u8>, FormatError> {
    STANDARD
        .decode(b64.trim().as_bytes())
        .map_err(|_| FormatError::Bundle("`signature` is not base64".into()))
}

fn is_default(a: &ArtifactField) -> bool {
    a == &ArtifactField::default()
}

impl Bundle {
    pub fn from_json(bytes: &[u8]) -> Result<Self, FormatError> {
        let b: Bundle =
            serde_json::from_slice(bytes).map_err(|e| FormatError::Bundle(e.to_string()))?;
        if b.format != FORMAT_V1 {
            return Err(FormatError::Bundle(format!(
                "format `{}` is not supported; this signet reads `{FORMAT_V1}`",
                b.format
            )));
        }
        Ok(b)
    }

    pub fn to_json(&self) -> Result<String, FormatError> {
        serde_json::to_string_pretty(self).map_err(|e| FormatError::Bundle(e.to_string()))
    }

    pub fn digest(&self) -> Result<Digest, FormatError> {
        Digest::from_hex(self.digest.algorithm, &self.digest.value)
            .map_err(|e| FormatError::Bundle(e.message))
    }

    pub fn signature_bytes(&self) -> Result<Vec<u8>, FormatError> {
        decode_signature(&self.signature)
    }

    pub fn encode_signature(sig: &[u8]) -> String {
        STANDARD.encode(sig)
    }
}
