//! `/api/v1/sign`: only digests cross the network.

use axum::extract::State;
use signet_core::service::SignBatch;
use signet_formats::bundle::Bundle;
use signet_proto::{BatchSignRequest, BatchSignResponse, Problem, SignRequest, SignResponse};

use super::auth::Caller;
use super::{ApiJson, convert};
use crate::app::App;
use crate::error::ApiError;
use crate::metrics::SignLabels;

/// Sign one digest with a key's current version.
#[utoipa::path(post, path = "/api/v1/sign", tag = "sign", request_body = SignRequest,
    responses((status = 200, body = SignResponse),
        (status = 400, body = Problem, description = "`digest_length_mismatch`, `invalid_digest`, `digest_algorithm_not_allowed`, …"),
        (status = 401, body = Problem), (status = 403, body = Problem, description = "`policy_denied`"),
        (status = 404, body = Problem, description = "`key_not_found`"),
        (status = 409, body = Problem, description = "`key_disabled`"), (status = 413, body = Problem)),
    security(("bearer" = [])))]
pub async fn sign(
    State(app): State<App>,
    caller: Caller,
    ApiJson(req): ApiJson<SignRequest>,
) -> Result<ApiJson<SignResponse>, ApiError> {
    let alg = convert::digest_algorithm(req.digest_algorithm.as_deref())?;
    let batch = SignBatch {
        key: req.key,
        digest_algorithm: alg,
        items: vec![convert::sign_item(
            req.digest,
            req.artifact_name,
            req.artifact_kind,
        )],
        reason: req.reason,
        build: convert::build(req.build),
    };
    let mut out = run(&app, &caller, batch).await?;
    out.pop()
        .map(ApiJson)
        .ok_or_else(|| convert::bad_request("nothing was signed").into())
}

/// Sign up to 1000 digests with one key in one round trip. All or nothing.
#[utoipa::path(post, path = "/api/v1/sign/batch", tag = "sign", request_body = BatchSignRequest,
    responses((status = 200, body = BatchSignResponse), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 413, body = Problem)),
    security(("bearer" = [])))]
pub async fn sign_batch(
    State(app): State<App>,
    caller: Caller,
    ApiJson(req): ApiJson<BatchSignRequest>,
) -> Result<ApiJson<BatchSignResponse>, ApiError> {
    let alg = convert::digest_algorithm(req.digest_algorithm.as_deref())?;
    let items = req
        .items
        .into_iter()
        .map(|i| convert::sign_item(i.digest, i.artifact_name, i.artifact_kind))
        .collect();
    let batch = SignBatch {
        key: req.key,
        digest_algorithm: alg,
        items,
        reason: req.reason,
        build: convert::build(req.build),
    };
    Ok(ApiJson(BatchSignResponse {
        signatures: run(&app, &caller, batch).await?,
    }))
}

async fn run(app: &App, caller: &Caller, batch: SignBatch) -> Result<Vec<SignResponse>, ApiError> {
    let sigs = app
        .service
        .sign(&caller.principal, batch, &caller.meta)
        .await?;
    if let Some(first) = sigs.first() {
        app.metrics
            .signatures
            .get_or_create(&SignLabels {
                key: first.key.clone(),
                algorithm: first.algorithm.as_str().to_owned(),
            })
            .inc_by(sigs.len() as u64);
    }
    let (chain, tokens) = app
        .pki
        .attach(&caller.principal, &sigs, &caller.meta)
        .await?;
    let chain = convert::pem_chain(&chain);
    Ok(sigs
        .iter()
        .zip(tokens)
        .map(|(s, token)| {
            let mut r = convert::signature(s);
            r.certificate_chain = chain.clone();
            r.timestamp = token.map(|t| Bundle::encode_signature(&t));
            r
        })
        .collect())
}
