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
        usage: key.usage.as_str().to_owned(),
        policy: p::KeyPolicy {
            require_certificate: key.policy.require_certificate,
            require_timestamp: key.policy.require_timestamp,
        },
    })
}

/// DER certificates as PEM strings.
pub fn pem_chain(chain: &[Vec<u8>]) -> Vec<String> {
    chain
        .iter()
        .map(|c| signet_formats::x509::certificate_pem(c))
        .collect()
}

/// A certificate record as listed, with its status now.
pub fn certificate(
    c: &signet_core::cert::CertificateRecord,
    key: &str,
    now: time::OffsetDateTime,
) -> p::CertificateInfo {
    let status = if c.revoked_at.is_some() {
        "revoked"
    } else if now < c.not_before {
        "not_yet_valid"
    } else if now > c.not_after {
        "expired"
    } else {
        "valid"
    };
    let mut chain = vec![c.der.clone()];
    chain.extend(c.chain.iter().cloned());
    p::CertificateInfo {
        id: c.id.clone(),
        key: key.to_owned(),
        key_version: c.key_version,
        kind: c.kind.as_str().to_owned(),
        serial: c.serial.clone(),
        subject: c.subject.clone(),
        issuer: c.issuer.clone(),
        ca: c.ca.clone(),
        not_before: c.not_before,
        not_after: c.not_after,
        status: status.to_owned(),
        revoked_at: c.revoked_at,
        revocation_reason: c.revocation_reason.map(|r| r.as_str().to_owned()),
        chain: pem_chain(&chain),
    }
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
        log: log_proof(&s.log),
        certificate_chain: Vec::new(),
        timestamp: None,
    }
}

pub fn log_proof(r: &signet_core::audit::AuditReceipt) -> p::LogProof {
    p::LogProof {
        index: r.index,
        entry: String::from_utf8_lossy(&r.entry).into_owned(),
        leaf_hash: hex::encode(r.leaf_hash),
        tree_size: r.checkpoint.size,
        inclusion_proof: r.inclusion_proof.iter().map(hex::encode).collect(),
        checkpoint: r.checkpoint.note.clone(),
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
