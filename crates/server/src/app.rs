//! The application state and the router.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use signet_core::log::MerkleLog;
use signet_core::service::SigningService;
use signet_proto::Status;
use signet_store::SqliteStore;

use crate::api;
use crate::error::ApiError;
use crate::metrics::{self, Metrics};

/// Everything a handler can reach.
#[derive(Clone)]
pub struct App {
    pub service: Arc<SigningService>,
    /// The key-encryption key's custody: seal status, unseal, seal, rotation.
    pub custody: Arc<crate::custody::Custody>,
    /// The Merkle audit log (proofs and checkpoints are read from it directly).
    pub log: Arc<MerkleLog>,
    /// Its C2SP verifier key.
    pub log_vkey: Arc<String>,
    /// Certificates, CAs, CRLs, the TSA and CMS signatures.
    pub pki: Arc<crate::pki::Pki>,
    /// `[pki] tsa_public`: `POST /tsa` answers without a token.
    pub tsa_public: bool,
    pub store: SqliteStore,
    pub metrics: Arc<Metrics>,
    pub status: Arc<Status>,
}

/// Builds the router with every route, the body limit and the metrics layer.
pub fn router(app: App, max_body_bytes: usize) -> Router {
    let metrics = Arc::clone(&app.metrics);
    let v1 = Router::new()
        .route("/keys", post(api::keys::create).get(api::keys::list))
        .route("/keys/{name}", get(api::keys::show))
        .route("/keys/{name}/rotate", post(api::keys::rotate))
        .route("/keys/{name}/disable", post(api::keys::disable))
        .route("/keys/{name}/enable", post(api::keys::enable))
        .route("/keys/{name}/policy", put(api::pki::set_policy))
        .route(
            "/keys/{name}/certificates",
            post(api::pki::issue).get(api::pki::key_certificates),
        )
        .route("/keys/{name}/certificates/import", post(api::pki::import))
        .route("/keys/{name}/csr", post(api::pki::csr))
        .route("/cas", post(api::pki::create_ca).get(api::pki::list_cas))
        .route("/cas/{name}", get(api::pki::show_ca))
        .route("/cas/{name}/crl", get(api::pki::crl))
        .route("/certificates", get(api::pki::certificates))
        .route("/certificates/{id}", get(api::pki::certificate))
        .route("/certificates/{id}/revoke", post(api::pki::revoke))
        .route("/tsa", post(api::pki::create_tsa).get(api::pki::show_tsa))
        .route("/sign/cms", post(api::pki::sign_cms))
        .route("/sign", post(api::sign::sign))
        .route("/sign/batch", post(api::sign::sign_batch))
        .route("/tokens", post(api::tokens::create).get(api::tokens::list))
        .route("/tokens/{id}/revoke", post(api::tokens::revoke))
        .route("/audit", get(api::audit::list))
        .route("/log/checkpoint", get(api::log::checkpoint))
        .route("/log/key", get(api::log::key))
        .route("/log/entries", get(api::log::entries))
        .route("/log/proof/inclusion", get(api::log::inclusion))
        .route("/log/proof/consistency", get(api::log::consistency))
        .route("/status", get(api::system::status))
        .route("/operator/seal-status", get(api::operator::seal_status))
        .route("/operator/unseal", post(api::operator::unseal))
        .route("/operator/seal", post(api::operator::seal))
        .route("/operator/rotate-kek", post(api::operator::rotate_kek))
        .route("/openapi.json", get(api::system::openapi));
    Router::new()
        .nest("/api/v1", v1)
        .route("/tsa", post(api::pki::timestamp))
        .route("/healthz", get(api::system::healthz))
        .route("/readyz", get(api::system::readyz))
        .route("/metrics", get(api::system::metrics))
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            metrics::track,
        ))
        .with_state(app)
}
