//! Authentication extractor: `Authorization: Bearer <token>` → a [`Principal`].

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use signet_core::principal::Principal;
use signet_core::secret::SecretString;
use signet_core::service::RequestMeta;

use crate::app::App;
use crate::error::ApiError;

/// An authenticated caller and where the request came from.
#[derive(Debug)]
pub struct Caller {
    pub principal: Principal,
    pub meta: RequestMeta,
}

/// Where an unauthenticated request came from (the unseal endpoint: the share is the credential).
#[derive(Debug)]
pub struct Origin(pub RequestMeta);

fn meta_of(parts: &Parts) -> RequestMeta {
    RequestMeta {
        client_addr: parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ci| ci.0.ip().to_string()),
    }
}

impl FromRequestParts<App> for Origin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _app: &App) -> Result<Self, Self::Rejection> {
        Ok(Origin(meta_of(parts)))
    }
}

impl FromRequestParts<App> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let meta = meta_of(parts);
        // INVARIANT: every API request but the public system endpoints passes through here;
        // no header, a malformed one or an unknown token all fail the same way (401).
        let presented = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then(|| token.trim().to_owned())
            })
            .unwrap_or_default();
        let principal = app
            .service
            .authenticate(&SecretString::new(presented), &meta)
            .await?;
        Ok(Caller { principal, meta })
    }
}
