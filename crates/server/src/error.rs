//! Errors as RFC 9457 problem documents. 5xx details are logged, never returned.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use signet_core::{CoreError, ErrorCode};
use signet_proto::{PROBLEM_CONTENT_TYPE, Problem};

/// An error on its way to becoming a problem response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: Option<String>,
}

pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidRequest
        | ErrorCode::InvalidName
        | ErrorCode::UnsupportedAlgorithm
        | ErrorCode::UnsupportedDigestAlgorithm
        | ErrorCode::DigestAlgorithmNotAllowed
        | ErrorCode::DigestLengthMismatch
        | ErrorCode::InvalidDigest
        | ErrorCode::BatchTooLarge => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::PolicyDenied => StatusCode::FORBIDDEN,
        ErrorCode::KeyNotFound
        | ErrorCode::TokenNotFound
        | ErrorCode::CertificateNotFound
        | ErrorCode::CaNotFound => StatusCode::NOT_FOUND,
        ErrorCode::KeyExists
        | ErrorCode::KeyDisabled
        | ErrorCode::Conflict
        | ErrorCode::WrongKeyUsage
        | ErrorCode::CertificateRequired => StatusCode::CONFLICT,
        ErrorCode::CertificateMismatch => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::BackendUnavailable | ErrorCode::Sealed | ErrorCode::TsaNotConfigured => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: Some(detail.into()),
        }
    }

    pub fn not_found() -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such endpoint; the API is described at `/api/v1/openapi.json`",
        )
    }

    pub fn method_not_allowed() -> Self {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed on this endpoint; see `/api/v1/openapi.json`",
        )
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        let status = status_of(e.code);
        if e.is_client_error() {
            ApiError {
                status,
                code: e.code.as_str(),
                detail: Some(e.message),
            }
        } else {
            // INVARIANT: internal details (causes, paths, SQL) go to the log only.
            tracing::error!(code = e.code.as_str(), error = %e, "request failed");
            ApiError {
                status,
                code: e.code.as_str(),
                detail: None,
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "request body is over the size limit; send fewer digests per batch",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ),
            _ => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("malformed JSON body: {}", r.body_text()),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = Problem {
            kind: format!("urn:signet:problem:{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail,
            code: self.code.to_owned(),
        };
        let mut resp = (self.status, Json(problem)).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"signet\""),
            );
        }
        resp
    }
}
