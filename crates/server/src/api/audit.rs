//! `/api/v1/audit`: read the audit log.

use axum::extract::{Query, State};
use serde::Deserialize;
use signet_core::audit::{Action, AuditQuery};
use signet_proto::{AuditList, AuditRecord, Problem};

use super::auth::Caller;
use super::{ApiJson, convert};
use crate::app::App;
use crate::error::ApiError;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Only records with a larger index.
    pub after: Option<u64>,
    pub key: Option<String>,
    /// Principal id.
    pub actor: Option<String>,
    /// e.g. `sign`, `key_create`.
    pub action: Option<String>,
    /// At most this many (default 100, at most 10000).
    pub limit: Option<u32>,
    /// Hex digest that was signed.
    pub digest: Option<String>,
    /// RFC 3339 time: only records at or after it.
    pub since: Option<String>,
    /// RFC 3339 time: only records before it.
    pub until: Option<String>,
}

/// List audit records in log order.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(Params),
    responses((status = 200, body = AuditList), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list(
    State(app): State<App>,
    caller: Caller,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Result<ApiJson<AuditList>, ApiError> {
    let Query(p) =
        params.map_err(|e| convert::bad_request(format!("invalid query: {}", e.body_text())))?;
    let action = match p.action.as_deref() {
        None => None,
        Some(a) => Some(parse_action(a)?),
    };
    let query = AuditQuery {
        after_index: p.after,
        key: p.key,
        actor_id: p.actor,
        action,
        limit: p.limit.unwrap_or(100),
        digest: p.digest.map(|d| d.trim().to_ascii_lowercase()),
        since: p.since.as_deref().map(parse_time).transpose()?,
        until: p.until.as_deref().map(parse_time).transpose()?,
    };
    let records = app.service.audit_query(&caller.principal, &query).await?;
    Ok(ApiJson(AuditList {
        records: records
            .into_iter()
            .map(|r| {
                Ok(AuditRecord {
                    index: r.index,
                    event: serde_json::to_value(&r.event).map_err(|e| {
                        signet_core::CoreError::internal("encoding an audit event", e)
                    })?,
                })
            })
            .collect::<Result<_, signet_core::CoreError>>()?,
    }))
}

fn parse_time(s: &str) -> Result<time::OffsetDateTime, ApiError> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).map_err(|_| {
        convert::bad_request(format!(
            "invalid time `{}`; use RFC 3339, e.g. 2026-11-23T12:00:00Z",
            s.chars().take(40).collect::<String>()
        ))
        .into()
    })
}

fn parse_action(s: &str) -> Result<Action, ApiError> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|_| {
        convert::bad_request(format!(
            "unknown action `{}`; use e.g. `sign`, `key_create`, `key_rotate`, `token_create`",
            s.chars().take(40).collect::<String>()
        ))
        .into()
    })
}
