//! Mapping between wire types (`signet-proto`) and domain types (`signet-core`).

use signet_core::audit::BuildInfo as CoreBuild;
use signet_core::key::Key;
use signet_core::service::{SignItem, Signature, TokenInfo as CoreToken};
use signet_core::{CoreError, DigestAlgorithm, ErrorCode};
use signet_formats::bundle::Bundle;
use signet_proto as p;

pub fn key_info(key: &Key) -> Result<p::KeyInfo, CoreError> {
    let versions = key
        .versions
        .iter()
        .map(|v| {
            Ok(p::KeyVersionInfo {
                version: v.version,
                public_key_pem: signet_formats::pem::spki_to_pem(&v.public_key_der)
                    .map_err(|e| CoreError::internal("encoding a public key", e))?,
                fingerprint: v.fingerprint(),
                created_at: v.created_at,
            })
        })
        .collect::<Result<Vec<_>, CoreError>>()?;
    Ok(p::KeyInfo {
        name: key.name.as_str().to_owned(),
        algorithm: key.algorithm.as_str().to_owned(),
        state: key.state.as_str().to_owned(),
        backend: key.backend.clone(),
        created_at: key.created_at,
        current_version: key.current_version,
        digest_algorithms: key
            .algorithm
            .allowed_digests()
            .iter()
            .map(|d| d.as_str().to_owned())
            .collect(),
        default_digest_algorithm: key.algorithm.default_digest().as_str().to_owned(),
        versions,
    })
}

/// `None` lets the key choose its default digest algorithm.
pub fn digest_algorithm(s: Option<&str>) -> Result<Option<DigestAlgorithm>, CoreError> {
    s.map(str::parse).transpose()
}

pub fn sign_item(
    digest: String,
    artifact_name: Option<String>,
    artifact_kind: Option<String>,
) -> SignItem {
    SignItem {
        digest,
        artifact_name,
        artifact_kind,
    }
}

pub fn build(b: Option<p::BuildInfo>) -> Option<CoreBuild> {
    b.map(|b| CoreBuild {
        repository: b.repository,
        commit: b.commit,
        pipeline_id: b.pipeline_id,
    })
}

pub fn signature(s: &Signature) -> p::SignResponse {
    p::SignResponse {
        key: s.key.clone(),
        key_version: s.key_version,
        algorithm: s.algorithm.as_str().to_owned(),
        digest_algorithm: s.digest.algorithm().as_str().to_owned(),
        digest: s.digest.to_hex(),
        signature: Bundle::encode_signature(&s.signature),
        public_key_fingerprint: s.public_key_fingerprint.clone(),
        signed_at: s.signed_at,
        audit_index: s.log.index,
        log: p::LogProof {
            index: s.log.index,
            entry: String::from_utf8_lossy(&s.log.entry).into_owned(),
            leaf_hash: hex::encode(s.log.leaf_hash),
            tree_size: s.log.checkpoint.size,
            inclusion_proof: s.log.inclusion_proof.iter().map(hex::encode).collect(),
            checkpoint: s.log.checkpoint.note.clone(),
        },
    }
}

pub fn token(t: &CoreToken) -> p::TokenInfo {
    p::TokenInfo {
        id: t.id.clone(),
        name: t.name.clone(),
        role: t.role.as_str().to_owned(),
        created_at: t.created_at,
        expires_at: t.expires_at,
        revoked_at: t.revoked_at,
        created_by: t.created_by.clone(),
    }
}

pub fn bad_request(msg: impl Into<String>) -> CoreError {
    CoreError::new(ErrorCode::InvalidRequest, msg)
}
