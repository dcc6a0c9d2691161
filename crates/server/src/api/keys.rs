//! `/api/v1/keys`.

use axum::extract::State;
use axum::http::StatusCode;
use signet_core::key::KeyState;
use signet_proto::{CreateKeyRequest, KeyInfo, KeyList, Problem};

use super::auth::Caller;
use super::{ApiJson, ApiPath, convert};
use crate::app::App;
use crate::error::ApiError;

/// Create a key; its first version is generated inside the key backend (or adopted from it).
#[utoipa::path(post, path = "/api/v1/keys", tag = "keys", request_body = CreateKeyRequest,
    responses((status = 201, body = KeyInfo), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 409, body = Problem, description = "`key_exists`")),
    security(("bearer" = [])))]
pub async fn create(
    State(app): State<App>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateKeyRequest>,
) -> Result<(StatusCode, ApiJson<KeyInfo>), ApiError> {
    let new = signet_core::service::NewKey {
        name: &req.name,
        algorithm: &req.algorithm,
        backend: req.backend.as_deref(),
        adopt: req.adopt.as_deref(),
        usage: signet_core::cert::KeyUsage::Signing,
    };
    let key = app
        .service
        .create_key_with(&caller.principal, &new, &caller.meta)
        .await?;
    Ok((StatusCode::CREATED, ApiJson(convert::key_info(&key)?)))
}

/// List keys.
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys",
    responses((status = 200, body = KeyList), (status = 401, body = Problem)), security(("bearer" = [])))]
pub async fn list(State(app): State<App>, caller: Caller) -> Result<ApiJson<KeyList>, ApiError> {
    let keys = app.service.list_keys(&caller.principal).await?;
    Ok(ApiJson(KeyList {
        keys: keys
            .iter()
            .map(convert::key_info)
            .collect::<Result<_, _>>()?,
    }))
}

/// A key with all its versions and public keys.
#[utoipa::path(get, path = "/api/v1/keys/{name}", tag = "keys", params(("name" = String, Path)),
    responses((status = 200, body = KeyInfo), (status = 404, body = Problem, description = "`key_not_found`")),
    security(("bearer" = [])))]
pub async fn show(
    State(app): State<App>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> Result<ApiJson<KeyInfo>, ApiError> {
    let key = app.service.get_key(&caller.principal, &name).await?;
    Ok(ApiJson(convert::key_info(&key)?))
}

/// Generate a new version and make it the signing version; old versions keep verifying.
#[utoipa::path(post, path = "/api/v1/keys/{name}/rotate", tag = "keys", params(("name" = String, Path)),
    responses((status = 200, body = KeyInfo), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn rotate(
    State(app): State<App>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> Result<ApiJson<KeyInfo>, ApiError> {
    let key = app
        .service
        .rotate_key(&caller.principal, &name, &caller.meta)
        .await?;
    Ok(ApiJson(convert::key_info(&key)?))
}

/// Disable a key: it refuses to sign (409 `key_disabled`) until enabled.
#[utoipa::path(post, path = "/api/v1/keys/{name}/disable", tag = "keys", params(("name" = String, Path)),
    responses((status = 200, body = KeyInfo), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn disable(
    State(app): State<App>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> Result<ApiJson<KeyInfo>, ApiError> {
    set_state(app, caller, name, KeyState::Disabled).await
}

/// Enable a disabled key.
#[utoipa::path(post, path = "/api/v1/keys/{name}/enable", tag = "keys", params(("name" = String, Path)),
    responses((status = 200, body = KeyInfo), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn enable(
    State(app): State<App>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> Result<ApiJson<KeyInfo>, ApiError> {
    set_state(app, caller, name, KeyState::Active).await
}

async fn set_state(
    app: App,
    caller: Caller,
    name: String,
    state: KeyState,
) -> Result<ApiJson<KeyInfo>, ApiError> {
    let key = app
        .service
        .set_key_state(&caller.principal, &name, state, &caller.meta)
        .await?;
    Ok(ApiJson(convert::key_info(&key)?))
}
