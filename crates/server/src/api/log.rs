//! `/api/v1/log`: the Merkle audit log's checkpoint, verifier key, entries and proofs.

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use serde::Deserialize;
use signet_core::policy::Operation;
use signet_proto::{ConsistencyProof, InclusionProof, LogEntries, LogEntry, LogKey, Problem};

use super::auth::Caller;
use super::{ApiJson, convert};
use crate::app::App;
use crate::error::ApiError;

/// Most entries one request returns.
pub const MAX_ENTRIES: u64 = 1000;

/// The latest signed checkpoint, as a C2SP signed note (`text/plain`).
#[utoipa::path(get, path = "/api/v1/log/checkpoint", tag = "log",
    responses((status = 200, body = String, content_type = "text/plain"), (status = 401, body = Problem)),
    security(("bearer" = [])))]
pub async fn checkpoint(
    State(app): State<App>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    app.service.allow(&caller.principal, Operation::ReadKeys)?;
    let cp = app.log.checkpoint().await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        cp.note.clone(),
    ))
}

/// The log's verifier key (C2SP vkey) and public key.
#[utoipa::path(get, path = "/api/v1/log/key", tag = "log",
    responses((status = 200, body = LogKey), (status = 401, body = Problem)), security(("bearer" = [])))]
pub async fn key(State(app): State<App>, caller: Caller) -> Result<ApiJson<LogKey>, ApiError> {
    let key = app
        .service
        .get_key(&caller.principal, crate::audit_log::LOG_KEY_NAME)
        .await?;
    let info = convert::key_info(&key)?;
    let pem = info
        .versions
        .last()
        .map(|v| v.public_key_pem.clone())
        .unwrap_or_default();
    Ok(ApiJson(LogKey {
        origin: app
            .log_vkey
            .split('+')
            .next()
            .unwrap_or_default()
            .to_owned(),
        verifier_key: (*app.log_vkey).clone(),
        public_key_pem: pem,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// First index (inclusive).
    pub start: u64,
    /// Last index (exclusive); at most `start + 1000`.
    pub end: u64,
}

/// Entries `start..end` exactly as stored (admin).
#[utoipa::path(get, path = "/api/v1/log/entries", tag = "log", params(Range),
    responses((status = 200, body = LogEntries), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn entries(
    State(app): State<App>,
    caller: Caller,
    q: Result<Query<Range>, axum::extract::rejection::QueryRejection>,
) -> Result<ApiJson<LogEntries>, ApiError> {
    app.service.allow(&caller.principal, Operation::ReadAudit)?;
    let Query(r) =
        q.map_err(|e| convert::bad_request(format!("invalid range: {}", e.body_text())))?;
    if r.end < r.start || r.end - r.start > MAX_ENTRIES {
        return Err(convert::bad_request(format!(
            "range `{}..{}` is invalid; ask for at most {MAX_ENTRIES} entries with start <= end",
            r.start, r.end
        ))
        .into());
    }
    let entries = app.log.entries(r.start, r.end).await?;
    Ok(ApiJson(LogEntries {
        entries: entries
            .into_iter()
            .map(|e| LogEntry {
                index: e.index,
                entry: String::from_utf8_lossy(&e.bytes).into_owned(),
                leaf_hash: e.leaf_hash.map(hex::encode),
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct InclusionParams {
    pub index: u64,
    /// Tree size to prove against (default: the latest checkpoint's).
    pub size: Option<u64>,
}

/// Inclusion proof of an entry in a tree of the given size (RFC 9162 §2.1.3).
#[utoipa::path(get, path = "/api/v1/log/proof/inclusion", tag = "log", params(InclusionParams),
    responses((status = 200, body = InclusionProof), (status = 400, body = Problem)), security(("bearer" = [])))]
pub async fn inclusion(
    State(app): State<App>,
    caller: Caller,
    q: Result<Query<InclusionParams>, axum::extract::rejection::QueryRejection>,
) -> Result<ApiJson<InclusionProof>, ApiError> {
    app.service.allow(&caller.principal, Operation::ReadKeys)?;
    let Query(p) =
        q.map_err(|e| convert::bad_request(format!("invalid query: {}", e.body_text())))?;
    let size = match p.size {
        Some(s) => s,
        None => app.log.checkpoint().await?.size,
    };
    let (leaf, proof) = app.log.inclusion_proof(p.index, size).await?;
    Ok(ApiJson(InclusionProof {
        index: p.index,
        tree_size: size,
        leaf_hash: hex::encode(leaf),
        proof: proof.iter().map(hex::encode).collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyParams {
    pub from: u64,
    /// Default: the latest checkpoint's size.
    pub to: Option<u64>,
}

/// Consistency proof between two tree sizes (RFC 9162 §2.1.4).
#[utoipa::path(get, path = "/api/v1/log/proof/consistency", tag = "log", params(ConsistencyParams),
    responses((status = 200, body = ConsistencyProof), (status = 400, body = Problem)), security(("bearer" = [])))]
pub async fn consistency(
    State(app): State<App>,
    caller: Caller,
    q: Result<Query<ConsistencyParams>, axum::extract::rejection::QueryRejection>,
) -> Result<ApiJson<ConsistencyProof>, ApiError> {
    app.service.allow(&caller.principal, Operation::ReadKeys)?;
    let Query(p) =
        q.map_err(|e| convert::bad_request(format!("invalid query: {}", e.body_text())))?;
    let to = match p.to {
        Some(t) => t,
        None => app.log.checkpoint().await?.size,
    };
    let proof = app.log.consistency_proof(p.from, to).await?;
    Ok(ApiJson(ConsistencyProof {
        from: p.from,
        to,
        proof: proof.iter().map(hex::encode).collect(),
    }))
}
