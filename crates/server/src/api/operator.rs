//! `/api/v1/operator/…`: the key-encryption key's custody — seal status, unseal, seal, rotation.

use axum::extract::State;
use signet_core::secret::SecretString;
use signet_proto::{Problem, RotateKekRequest, RotateKekResponse, SealStatus, UnsealRequest};

use super::ApiJson;
use super::auth::{Caller, Origin};
use crate::app::App;
use crate::custody;
use crate::error::ApiError;

fn dto(s: custody::SealStatus) -> SealStatus {
    SealStatus {
        sealed: s.sealed,
        mode: s.mode.as_str().to_owned(),
        threshold: s.threshold,
        shares: s.shares,
        progress: s.progress,
        share_set: s.share_set,
    }
}

/// Whether the server is sealed, and the unseal progress. Public, like `/api/v1/status`.
#[utoipa::path(get, path = "/api/v1/operator/seal-status", tag = "operator",
    responses((status = 200, body = SealStatus)))]
pub async fn seal_status(State(app): State<App>) -> ApiJson<SealStatus> {
    ApiJson(dto(app.custody.status().await))
}

/// Submit one custodian's share. No bearer token: the share is the credential. Each
/// submission is audited (without the share) once the server is unsealed.
#[utoipa::path(post, path = "/api/v1/operator/unseal", tag = "operator", request_body = UnsealRequest,
    responses((status = 200, body = SealStatus), (status = 400, body = Problem, description = "`invalid_request`: malformed, mistyped or wrong share"),
        (status = 409, body = Problem, description = "`conflict`: already unsealed, share already submitted, or not shamir custody")))]
pub async fn unseal(
    State(app): State<App>,
    Origin(meta): Origin,
    ApiJson(req): ApiJson<UnsealRequest>,
) -> Result<ApiJson<SealStatus>, ApiError> {
    let share = SecretString::new(req.share);
    Ok(ApiJson(dto(app
        .custody
        .submit_share(&share, &meta)
        .await?)))
}

/// Seal the server now (admin): the KEK and every opened key leave memory; signing stops
/// until custodians unseal it.
#[utoipa::path(post, path = "/api/v1/operator/seal", tag = "operator",
    responses((status = 200, body = SealStatus), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn seal(State(app): State<App>, caller: Caller) -> Result<ApiJson<SealStatus>, ApiError> {
    Ok(ApiJson(dto(app
        .custody
        .seal(&caller.principal, &caller.meta)
        .await?)))
}

/// Rotate the key-encryption key (admin): every software key is re-sealed under a new KEK in
/// one transaction; in shamir mode the response carries the new shares, once.
#[utoipa::path(post, path = "/api/v1/operator/rotate-kek", tag = "operator", request_body = RotateKekRequest,
    responses((status = 200, body = RotateKekResponse), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 503, body = Problem, description = "`sealed`")),
    security(("bearer" = [])))]
pub async fn rotate_kek(
    State(app): State<App>,
    caller: Caller,
    ApiJson(req): ApiJson<RotateKekRequest>,
) -> Result<ApiJson<RotateKekResponse>, ApiError> {
    let split = match (req.threshold, req.shares) {
        (None, None) => None,
        (Some(t), Some(n)) => Some((t, n)),
        _ => {
            return Err(signet_core::CoreError::new(
                signet_core::ErrorCode::InvalidRequest,
                "give both `threshold` and `shares`, or neither to keep the current split",
            )
            .into());
        }
    };
    let rotated = app
        .custody
        .rotate(&caller.principal, split, &caller.meta)
        .await?;
    Ok(ApiJson(RotateKekResponse {
        rewrapped: rotated.rewrapped,
        shares: rotated
            .shares
            .iter()
            .map(|s| s.expose().to_owned())
            .collect(),
        share_set: rotated.share_set,
    }))
}
