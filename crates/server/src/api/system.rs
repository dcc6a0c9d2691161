//! Public system endpoints: health, readiness, metrics, status and the OpenAPI document.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use signet_proto::Status;
use utoipa::OpenApi;

use super::ApiJson;
use super::openapi::ApiDoc;
use crate::app::App;
use crate::error::ApiError;

/// Liveness: the process answers.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: unsealed, and the database and the key backends work; 503 `sealed` or `not_ready`
/// otherwise (the cause is logged).
pub async fn readyz(State(app): State<App>) -> Result<&'static str, ApiError> {
    if app.service.is_sealed() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "sealed",
            "the server is sealed; custodians unseal it with `signet operator unseal`",
        ));
    }
    let checks = async {
        app.store.health().await?;
        // A token's health check talks to the device (and may restart its module).
        let service = app.service.clone();
        tokio::task::spawn_blocking(move || service.backend_health())
            .await
            .map_err(|e| signet_core::CoreError::internal("backend health check failed", e))?
    };
    if let Err(e) = checks.await {
        tracing::error!(error = %e, "not ready");
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the database or the key backend is not available; see the server log",
        ));
    }
    Ok("ready\n")
}

/// Prometheus text exposition.
pub async fn metrics(State(app): State<App>) -> impl IntoResponse {
    refresh_certificate_expiry(&app).await;
    match app.metrics.encode() {
        Ok(body) => (
            StatusCode::OK,
            // prometheus-client writes the OpenMetrics text format (with `# EOF`).
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => ApiError::from(signet_core::CoreError::new(
            signet_core::ErrorCode::Internal,
            "encoding metrics failed",
        ))
        .into_response(),
    }
}

/// Server version, node and custody mode (with warnings such as dev mode).
#[utoipa::path(get, path = "/api/v1/status", tag = "system", responses((status = 200, body = Status)))]
pub async fn status(State(app): State<App>) -> ApiJson<Status> {
    let mut status = (*app.status).clone();
    status.sealed = app.service.is_sealed();
    ApiJson(status)
}

/// This document.
pub async fn openapi() -> impl IntoResponse {
    ApiJson(ApiDoc::openapi())
}

/// Sets the time-to-expiry gauge from the certificate store (a read; errors leave it stale).
async fn refresh_certificate_expiry(app: &App) {
    let Ok(certs) = app.pki.expiries().await else {
        return;
    };
    let gauge = &app.metrics.certificate_expiry;
    gauge.clear();
    for (key, kind, serial, seconds) in certs {
        gauge
            .get_or_create(&crate::metrics::CertLabels { key, kind, serial })
            .set(seconds);
    }
}
