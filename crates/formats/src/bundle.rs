//! The `.signet.json` bundle: everything needed to verify a signature offline, written next to
//! the signed file.
//!
//! ```json
//! { "format": "signet-bundle/v1", "key": "release", "key_version": 2,
//!   "algorithm": "ecdsa-p256", "digest": { "algorithm": "sha256", "value": "<hex>" },
//!   "signature": "<base64>", "public_key_fingerprint": "sha256:<hex>",
//!   "signed_at": "2026-11-23T12:00:00Z", "artifact": { "name": "app.tar.gz" }, "audit_index": 7 }
//! ```
//! Later versions add fields, all optional and left out when empty, so older bundles still read:
//! `log` (the audit log proof), `certificate_chain` (the signing key's certificate and its
//! issuers, PEM) and `timestamp` (an RFC 3161 time-stamp token over the signature value).
//! Readers ignore unknown fields and reject an unknown `format`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use signet_core::{Algorithm, Digest, DigestAlgorithm};
use time::OffsetDateTime;

use crate::FormatError;
use crate::checkpoint::{VerifierKey, open_note};
use signet_core::merkle::{leaf_hash, verify_inclusion};

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
    /// Proof that the signature's audit entry is in the log (verify with `--log-key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogField>,
    /// The signing key version's certificate then its issuers, PEM (RFC 7468 §5), when it had
    /// one at signing time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificate_chain: Vec<String>,
    /// Base64 of an RFC 3161 time-stamp token (a DER CMS `ContentInfo`, RFC 3161 §2.4.2) whose
    /// message imprint is the SHA-256 of the raw signature bytes (see
    /// [`Bundle::timestamp_imprint`]): proof that the signature existed at the token's time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

/// The audit log proof carried by a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogField {
    pub index: u64,
    /// The entry's exact bytes.
    pub entry: String,
    /// Hex SHA-256(0x00 || entry).
    pub leaf_hash: String,
    pub tree_size: u64,
    /// Hex hashes (RFC 9162 §2.1.3).
    pub inclusion_proof: Vec<String>,
    /// The signed checkpoint note of `tree_size`.
    pub checkpoint: String,
}

/// What [`Bundle::verify_log`] established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogVerified {
    pub origin: String,
    pub index: u64,
    pub tree_size: u64,
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

    /// Checks offline that this signature is recorded in the audit log whose checkpoints
    /// `log_key` signs: the checkpoint's signature, the entry's leaf hash, the inclusion proof
    /// (RFC 9162 §2.1.3.2), and that the entry records an allowed signing of this bundle's
    /// digest with this key and version.
    pub fn verify_log(&self, log_key: &VerifierKey) -> Result<LogVerified, FormatError> {
        let bad = |what: String| FormatError::Log(what);
        let log = self.log.as_ref().ok_or_else(|| {
            bad(
                "the bundle carries no log proof; it was made before the audit log or without it"
                    .into(),
            )
        })?;
        let cp = open_note(log.checkpoint.as_bytes(), log_key)?;
        if cp.size != log.tree_size {
            return Err(bad(format!(
                "the proof is for tree size `{}` but the checkpoint is for `{}`",
                log.tree_size, cp.size
            )));
        }
        let leaf = leaf_hash(log.entry.as_bytes());
        if hex::encode(leaf) != log.leaf_hash.to_ascii_lowercase() {
            return Err(bad(
                "the entry does not hash to the bundle's leaf hash".into()
            ));
        }
        let proof = log
            .inclusion_proof
            .iter()
            .map(|h| {
                hex::decode(h)
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| {
                        bad(format!(
                            "proof hash `{}` is not 32 bytes of hex",
                            h.chars().take(70).collect::<String>()
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        verify_inclusion(&leaf, log.index, cp.size, &proof, &cp.root)
            .map_err(|e| bad(format!("inclusion proof: {e}")))?;
        // The entry must be about this very signature.
        let entry: serde_json::Value =
            serde_json::from_str(&log.entry).map_err(|_| bad("the entry is not JSON".into()))?;
        let field = |path: &[&str]| {
            path.iter()
                .try_fold(&entry, |v, k| v.get(*k))
                .cloned()
                .unwrap_or(serde_json::Value::Null)
        };
        let expect = [
            (vec!["index"], serde_json::json!(log.index)),
            (vec!["action"], serde_json::json!("sign")),
            (vec!["outcome", "result"], serde_json::json!("allowed")),
            (vec!["key", "name"], serde_json::json!(self.key)),
            (vec!["key", "version"], serde_json::json!(self.key_version)),
            (
                vec!["digest", "algorithm"],
                serde_json::json!(self.digest.algorithm.as_str()),
            ),
            (
                vec!["digest", "value"],
                serde_json::json!(self.digest.value.to_ascii_lowercase()),
            ),
        ];
        for (path, want) in expect {
            let got = field(&path);
            if got != want {
                return Err(bad(format!(
                    "the log entry's `{}` is {got}, not {want}: it does not record this signature",
                    path.join(".")
                )));
            }
        }
        Ok(LogVerified {
            origin: cp.origin,
            index: log.index,
            tree_size: cp.size,
        })
    }

    pub fn encode_signature(sig: &[u8]) -> String {
        STANDARD.encode(sig)
    }

    /// The DER time-stamp token, when the bundle carries one.
    pub fn timestamp_token(&self) -> Result<Option<Vec<u8>>, FormatError> {
        self.timestamp
            .as_deref()
            .map(|b64| {
                STANDARD
                    .decode(b64.trim().as_bytes())
                    .map_err(|_| FormatError::Bundle("`timestamp` is not base64".into()))
            })
            .transpose()
    }

    /// What the bundle's time-stamp token must cover: the SHA-256 of the raw signature bytes.
    pub fn timestamp_imprint(&self) -> Result<Digest, FormatError> {
        timestamp_imprint(&self.signature_bytes()?)
    }
}

/// The message imprint a time-stamp over `signature` carries: SHA-256 of the raw signature
/// bytes (as in `FILE.sig`), whatever the signature's own digest algorithm.
pub fn timestamp_imprint(signature: &[u8]) -> Result<Digest, FormatError> {
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, signature);
    Digest::new(DigestAlgorithm::Sha256, hash.as_ref().to_vec())
        .map_err(|e| FormatError::Bundle(e.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    type R = Result<(), Box<dyn std::error::Error>>;

    /// A bundle as `signet` wrote it before logs, certificates and time-stamps existed.
    const V1_ORIGINAL: &str = r#"{
  "format": "signet-bundle/v1",
  "key": "release",
  "key_version": 2,
  "algorithm": "ecdsa-p256",
  "digest": { "algorithm": "sha256", "value": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" },
  "signature": "AAEC",
  "public_key_fingerprint": "sha256:00",
  "signed_at": "2026-11-23T12:00:00Z",
  "artifact": { "name": "app.tar.gz" },
  "audit_index": 7
}"#;

    #[test]
    fn old_bundles_still_read() -> R {
        let b = Bundle::from_json(V1_ORIGINAL.as_bytes())?;
        assert_eq!(b.key, "release");
        assert!(b.log.is_none());
        assert!(b.certificate_chain.is_empty());
        assert!(b.timestamp.is_none());
        assert_eq!(b.timestamp_token()?, None);
        Ok(())
    }

    #[test]
    fn empty_new_fields_are_left_out() -> R {
        let b = Bundle::from_json(V1_ORIGINAL.as_bytes())?;
        let json = b.to_json()?;
        assert!(!json.contains("certificate_chain"), "{json}");
        assert!(!json.contains("timestamp"), "{json}");
        assert!(!json.contains("\"log\""), "{json}");
        assert_eq!(Bundle::from_json(json.as_bytes())?, b);
        Ok(())
    }

    #[test]
    fn certificates_and_timestamp_round_trip() -> R {
        let mut b = Bundle::from_json(V1_ORIGINAL.as_bytes())?;
        b.certificate_chain = vec![
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into(),
            "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n".into(),
        ];
        b.timestamp = Some(Bundle::encode_signature(&[0x30, 0x03, 0x02, 0x01, 0x00]));
        let json = b.to_json()?;
        let read = Bundle::from_json(json.as_bytes())?;
        assert_eq!(read, b);
        assert_eq!(
            read.timestamp_token()?,
            Some(vec![0x30, 0x03, 0x02, 0x01, 0x00])
        );
        let v: serde_json::Value = serde_json::from_str(&json)?;
        assert_eq!(v["certificate_chain"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["timestamp"], "MAMCAQA=");
        Ok(())
    }

    #[test]
    fn unknown_fields_are_ignored_and_unknown_formats_refused() -> R {
        let later = V1_ORIGINAL.replacen('{', r#"{ "something_new": [1, 2],"#, 1);
        assert!(Bundle::from_json(later.as_bytes()).is_ok());
        let v2 = V1_ORIGINAL.replace("signet-bundle/v1", "signet-bundle/v2");
        let err = Bundle::from_json(v2.as_bytes())
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("`signet-bundle/v2` is not supported")),
            "{err:?}"
        );
        Ok(())
    }

    #[test]
    fn a_bad_timestamp_is_an_error_not_absent() -> R {
        let mut b = Bundle::from_json(V1_ORIGINAL.as_bytes())?;
        b.timestamp = Some("not base64!".into());
        assert!(b.timestamp_token().is_err());
        Ok(())
    }

    #[test]
    fn the_timestamp_imprint_is_sha256_of_the_signature_bytes() -> R {
        let b = Bundle::from_json(V1_ORIGINAL.as_bytes())?;
        // SHA-256 of the bytes 00 01 02 (the bundle's signature, "AAEC").
        let want = "ae4b3280e56e2faf83f414a6e3dabe9d5fbe18976544c05fed121accb85b53fc";
        let got = b.timestamp_imprint()?;
        assert_eq!(got.algorithm(), DigestAlgorithm::Sha256);
        assert_eq!(got.to_hex(), want);
        assert_eq!(timestamp_imprint(&[0, 1, 2])?, got);
        Ok(())
    }
}
