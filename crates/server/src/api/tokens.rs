//! `/api/v1/tokens`: API tokens for service accounts.

use axum::extract::State;
use axum::http::StatusCode;
use signet_proto::{CreateTokenRequest, CreatedToken, Problem, TokenList};

use super::auth::Caller;
use super::{ApiJson, ApiPath, convert};
use crate::app::App;
use crate::error::ApiError;

/// Create a token. The secret is in this response only; the server stores a hash.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = CreateTokenRequest,
    responses((status = 201, body = CreatedToken), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn create(
    State(app): State<App>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateTokenRequest>,
) -> Result<(StatusCode, ApiJson<CreatedToken>), ApiError> {
    let (info, secret) = app
        .service
        .create_token(
            &caller.principal,
            &req.name,
            req.role.as_deref().unwrap_or("signer"),
            req.expires_at,
            &caller.meta,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(CreatedToken {
            token: secret.expose().to_owned(),
            info: convert::token(&info),
        }),
    ))
}

/// List tokens (never their secrets).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = TokenList), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn list(State(app): State<App>, caller: Caller) -> Result<ApiJson<TokenList>, ApiError> {
    let tokens = app.service.list_tokens(&caller.principal).await?;
    Ok(ApiJson(TokenList {
        tokens: tokens.iter().map(convert::token).collect(),
    }))
}

/// Revoke a token; it stops authenticating at once.
#[utoipa::path(post, path = "/api/v1/tokens/{id}/revoke", tag = "tokens", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem, description = "`token_not_found`")),
    security(("bearer" = [])))]
pub async fn revoke(
    State(app): State<App>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    app.service
        .revoke_token(&caller.principal, &id, &caller.meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
