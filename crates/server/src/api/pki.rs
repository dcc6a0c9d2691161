//! `/api/v1/cas`, `/api/v1/certificates`, `/api/v1/keys/{name}/certificates|csr|policy`,
//! `/api/v1/tsa`, `/api/v1/sign/cms` and the RFC 3161 endpoint `POST /tsa`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use signet_core::principal::Principal;
use signet_proto::{
    CaInfo, CaList, CertificateInfo, CertificateList, CmsSignRequest, CmsSignResponse,
    CreateCaRequest, CreateTsaRequest, CsrRequest, CsrResponse, ImportCertificateRequest,
    IssueCertificateRequest, KeyInfo, KeyPolicy, Problem, RevokeCertificateRequest, TsaInfo,
};

use super::auth::{Caller, Origin};
use super::{ApiJson, ApiPath, convert};
use crate::app::App;
use crate::error::ApiError;
use crate::pki::{CaView, CmsRequest, NewCa, Tsa};

/// RFC 3161 §3.4 media types.
pub const TIMESTAMP_QUERY: &str = "application/timestamp-query";
pub const TIMESTAMP_REPLY: &str = "application/timestamp-reply";
/// RFC 2585 §4.2.
pub const PKIX_CRL: &str = "application/pkix-crl";

fn ca_info(v: &CaView) -> CaInfo {
    CaInfo {
        name: v.ca.name.clone(),
        root_key: v.ca.root_key.clone(),
        issuing_key: v.ca.issuing_key.clone(),
        root_certificate: signet_formats::x509::certificate_pem(&v.root.der),
        issuing_certificate: signet_formats::x509::certificate_pem(&v.issuing.der),
        crl_url: v.crl_url.clone(),
        created_at: v.ca.created_at,
    }
}

fn tsa_info(app: &App, t: &Tsa) -> TsaInfo {
    let mut chain = vec![t.certificate.der.clone()];
    chain.extend(t.certificate.chain.iter().cloned());
    TsaInfo {
        key: t.key.name.as_str().to_owned(),
        policy: app.pki.settings().tsa_policy.clone(),
        chain: convert::pem_chain(&chain),
        url: app.pki.tsa_url(),
    }
}

/// Create an internal CA: a root and an issuing key (non-exportable Signet keys) and their
/// certificates.
#[utoipa::path(post, path = "/api/v1/cas", tag = "certificates", request_body = CreateCaRequest,
    responses((status = 201, body = CaInfo), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 409, body = Problem, description = "`conflict`, `key_exists`")),
    security(("bearer" = [])))]
pub async fn create_ca(
    State(app): State<App>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateCaRequest>,
) -> Result<(StatusCode, ApiJson<CaInfo>), ApiError> {
    let new = NewCa {
        name: req.name,
        algorithm: req.algorithm,
        backend: req.backend,
        organization: req.organization,
        root_validity_days: req.root_validity_days,
        issuing_validity_days: req.issuing_validity_days,
    };
    let view = app
        .pki
        .create_ca(&caller.principal, &new, &caller.meta)
        .await?;
    Ok((StatusCode::CREATED, ApiJson(ca_info(&view))))
}

/// List internal CAs.
#[utoipa::path(get, path = "/api/v1/cas", tag = "certificates",
    responses((status = 200, body = CaList), (status = 401, body = Problem)), security(("bearer" = [])))]
pub async fn list_cas(State(app): State<App>, caller: Caller) -> Result<ApiJson<CaList>, ApiError> {
    let cas = app.pki.list_cas(&caller.principal).await?;
    Ok(ApiJson(CaList {
        cas: cas.iter().map(ca_info).collect(),
    }))
}

/// One internal CA with its certificates.
#[utoipa::path(get, path = "/api/v1/cas/{name}", tag = "certificates", params(("name" = String, Path)),
    responses((status = 200, body = CaInfo), (status = 404, body = Problem, description = "`ca_not_found`")),
    security(("bearer" = [])))]
pub async fn show_ca(
    State(app): State<App>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> Result<ApiJson<CaInfo>, ApiError> {
    Ok(ApiJson(ca_info(
        &app.pki.get_ca(&caller.principal, &name).await?,
    )))
}

/// The CA's certificate revocation list (DER, RFC 5280 §5). Public: relying parties fetch it
/// from the CRL distribution point of the certificates the CA issued.
#[utoipa::path(get, path = "/api/v1/cas/{name}/crl", tag = "certificates", params(("name" = String, Path)),
    responses((status = 200, content_type = "application/pkix-crl", body = Vec<u8>),
        (status = 404, body = Problem, description = "`ca_not_found`"), (status = 503, body = Problem)))]
pub async fn crl(
    State(app): State<App>,
    Origin(meta): Origin,
    ApiPath(name): ApiPath<String>,
) -> Result<Response, ApiError> {
    let der = app.pki.crl(&name, &meta).await?;
    Ok(([(header::CONTENT_TYPE, PKIX_CRL)], der).into_response())
}

/// Have an internal CA issue a code-signing certificate for the key's current version.
#[utoipa::path(post, path = "/api/v1/keys/{name}/certificates", tag = "certificates",
    params(("name" = String, Path)), request_body = IssueCertificateRequest,
    responses((status = 201, body = CertificateInfo), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem, description = "`key_not_found`, `ca_not_found`"),
        (status = 409, body = Problem, description = "`wrong_key_usage`")),
    security(("bearer" = [])))]
pub async fn issue(
    State(app): State<App>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<IssueCertificateRequest>,
) -> Result<(StatusCode, ApiJson<CertificateInfo>), ApiError> {
    let cert = app
        .pki
        .issue(
            &caller.principal,
            &name,
            &req.ca,
            &req.subject,
            req.validity_days,
            &caller.meta,
        )
        .await?;
    let now = app.service.clock().now();
    Ok((
        StatusCode::CREATED,
        ApiJson(convert::certificate(&cert, &name, now)),
    ))
}

/// Certificates of one key, newest first.
#[utoipa::path(get, path = "/api/v1/keys/{name}/certificates", tag = "certificates",
    params(("name" = String, Path)),
    responses((status = 200, body = CertificateList), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn key_certificates(
    State(app): State<App>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> Result<ApiJson<CertificateList>, ApiError> {
    list_of(&app, &caller.principal, Some(&name)).await
}

/// Every certificate, newest first, with its status now.
#[utoipa::path(get, path = "/api/v1/certificates", tag = "certificates",
    responses((status = 200, body = CertificateList), (status = 401, body = Problem)), security(("bearer" = [])))]
pub async fn certificates(
    State(app): State<App>,
    caller: Caller,
) -> Result<ApiJson<CertificateList>, ApiError> {
    list_of(&app, &caller.principal, None).await
}

async fn list_of(
    app: &App,
    who: &Principal,
    key: Option<&str>,
) -> Result<ApiJson<CertificateList>, ApiError> {
    let now = app.service.clock().now();
    let certs = app.pki.list(who, key).await?;
    Ok(ApiJson(CertificateList {
        certificates: certs
            .iter()
            .map(|(c, k)| convert::certificate(c, k, now))
            .collect(),
    }))
}

/// One certificate.
#[utoipa::path(get, path = "/api/v1/certificates/{id}", tag = "certificates", params(("id" = String, Path)),
    responses((status = 200, body = CertificateInfo), (status = 404, body = Problem, description = "`certificate_not_found`")),
    security(("bearer" = [])))]
pub async fn certificate(
    State(app): State<App>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<CertificateInfo>, ApiError> {
    let (c, k) = app.pki.get(&caller.principal, &id).await?;
    Ok(ApiJson(convert::certificate(
        &c,
        &k,
        app.service.clock().now(),
    )))
}

/// Revoke a certificate; the next CRL of its CA lists it.
#[utoipa::path(post, path = "/api/v1/certificates/{id}/revoke", tag = "certificates",
    params(("id" = String, Path)), request_body = RevokeCertificateRequest,
    responses((status = 200, body = CertificateInfo), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "already revoked")),
    security(("bearer" = [])))]
pub async fn revoke(
    State(app): State<App>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<RevokeCertificateRequest>,
) -> Result<ApiJson<CertificateInfo>, ApiError> {
    let (c, k) = app
        .pki
        .revoke(&caller.principal, &id, req.reason.as_deref(), &caller.meta)
        .await?;
    Ok(ApiJson(convert::certificate(
        &c,
        &k,
        app.service.clock().now(),
    )))
}

/// A PKCS#10 certification request for the key's current version, signed by the key, for an
/// external CA.
#[utoipa::path(post, path = "/api/v1/keys/{name}/csr", tag = "certificates", params(("name" = String, Path)),
    request_body = CsrRequest,
    responses((status = 200, body = CsrResponse), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn csr(
    State(app): State<App>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<CsrRequest>,
) -> Result<ApiJson<CsrResponse>, ApiError> {
    let (version, der) = app
        .pki
        .csr(&caller.principal, &name, &req.subject, &caller.meta)
        .await?;
    Ok(ApiJson(CsrResponse {
        key: name,
        key_version: version,
        csr: signet_formats::x509::csr_pem(&der),
    }))
}

/// Attach a chain issued by an external CA (leaf first) to the key version it certifies.
#[utoipa::path(post, path = "/api/v1/keys/{name}/certificates/import", tag = "certificates",
    params(("name" = String, Path)), request_body = ImportCertificateRequest,
    responses((status = 201, body = CertificateInfo), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem, description = "`certificate_mismatch`")),
    security(("bearer" = [])))]
pub async fn import(
    State(app): State<App>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<ImportCertificateRequest>,
) -> Result<(StatusCode, ApiJson<CertificateInfo>), ApiError> {
    let cert = app
        .pki
        .import(&caller.principal, &name, &req.chain, &caller.meta)
        .await?;
    let now = app.service.clock().now();
    Ok((
        StatusCode::CREATED,
        ApiJson(convert::certificate(&cert, &name, now)),
    ))
}

/// Replace a key's policy.
#[utoipa::path(put, path = "/api/v1/keys/{name}/policy", tag = "keys", params(("name" = String, Path)),
    request_body = KeyPolicy,
    responses((status = 200, body = KeyInfo), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn set_policy(
    State(app): State<App>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<KeyPolicy>,
) -> Result<ApiJson<KeyInfo>, ApiError> {
    let policy = signet_core::cert::KeyPolicy {
        require_certificate: req.require_certificate,
        require_timestamp: req.require_timestamp,
    };
    let key = app
        .service
        .set_key_policy(&caller.principal, &name, policy, &caller.meta)
        .await?;
    Ok(ApiJson(convert::key_info(&key)?))
}

/// Set up the built-in RFC 3161 time-stamping authority.
#[utoipa::path(post, path = "/api/v1/tsa", tag = "timestamping", request_body = CreateTsaRequest,
    responses((status = 201, body = TsaInfo), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem, description = "`ca_not_found`"), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_tsa(
    State(app): State<App>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateTsaRequest>,
) -> Result<(StatusCode, ApiJson<TsaInfo>), ApiError> {
    let tsa = app
        .pki
        .create_tsa(
            &caller.principal,
            &crate::pki::NewTsa {
                ca: &req.ca,
                key: req.key.as_deref(),
                algorithm: req.algorithm.as_deref(),
                backend: req.backend.as_deref(),
                subject: req.subject.as_deref(),
            },
            &caller.meta,
        )
        .await?;
    Ok((StatusCode::CREATED, ApiJson(tsa_info(&app, &tsa))))
}

/// The built-in TSA: its key, policy OID, certificate chain and URL.
#[utoipa::path(get, path = "/api/v1/tsa", tag = "timestamping",
    responses((status = 200, body = TsaInfo), (status = 503, body = Problem, description = "`tsa_not_configured`")),
    security(("bearer" = [])))]
pub async fn show_tsa(
    State(app): State<App>,
    caller: Caller,
) -> Result<ApiJson<TsaInfo>, ApiError> {
    app.service
        .allow(&caller.principal, signet_core::policy::Operation::ReadKeys)?;
    let tsa = app.pki.tsa().await?;
    Ok(ApiJson(tsa_info(&app, &tsa)))
}

/// RFC 3161 over HTTP (§3.4): a DER `TimeStampReq` in, a DER `TimeStampResp` out. Rejections
/// are `TimeStampResp`s too (status `rejection`, a failInfo and a text saying why), with a 4xx
/// or 5xx status; a wrong content type or an oversize body is a problem document.
#[utoipa::path(post, path = "/tsa", tag = "timestamping",
    request_body(content = Vec<u8>, content_type = "application/timestamp-query"),
    responses((status = 200, content_type = "application/timestamp-reply", body = Vec<u8>),
        (status = 400, content_type = "application/timestamp-reply", body = Vec<u8>, description = "rejected query (failInfo badAlg, badRequest, badDataFormat, unacceptedPolicy, unacceptedExtension)"),
        (status = 413, body = Problem), (status = 415, body = Problem),
        (status = 503, content_type = "application/timestamp-reply", body = Vec<u8>, description = "TSA not set up or server sealed")))]
pub async fn timestamp(
    State(app): State<App>,
    headers: HeaderMap,
    Origin(meta): Origin,
    body: Bytes,
) -> Result<Response, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case(TIMESTAMP_QUERY) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "content type `{}` is not `{TIMESTAMP_QUERY}`; send a DER TimeStampReq (RFC 3161 §3.4), e.g. from `openssl ts -query`",
                content_type.chars().take(60).collect::<String>()
            ),
        ));
    }
    if body.len() > signet_formats::tsp::MAX_QUERY_LEN {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "time-stamp query of {} bytes is over the limit of {}; a TimeStampReq is a few hundred bytes",
                body.len(),
                signet_formats::tsp::MAX_QUERY_LEN
            ),
        ));
    }
    let who = match caller_of(&app, &headers, &meta).await? {
        Some(p) => p,
        None => Principal::anonymous(),
    };
    let (status, der) = app.pki.timestamp_query(&who, &body, &meta).await;
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Ok((
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(TIMESTAMP_REPLY),
        )],
        der,
    )
        .into_response())
}

/// The TSA is public unless `[pki] tsa_public = false`; then a token is required.
async fn caller_of(
    app: &App,
    headers: &HeaderMap,
    meta: &signet_core::service::RequestMeta,
) -> Result<Option<Principal>, ApiError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned());
    match presented {
        Some(t) => Ok(Some(
            app.service
                .authenticate(&signet_core::secret::SecretString::new(t), meta)
                .await?,
        )),
        None if app.tsa_public => Ok(None),
        None => Err(signet_core::CoreError::new(
            signet_core::ErrorCode::Unauthenticated,
            "this TSA requires an API token; send `Authorization: Bearer <token>`",
        )
        .into()),
    }
}

/// A detached CMS SignedData (RFC 5652) over the client's artifact digest, with the signer's
/// certificate chain and optionally an RFC 3161 token (`openssl cms -verify` checks it).
#[utoipa::path(post, path = "/api/v1/sign/cms", tag = "sign", request_body = CmsSignRequest,
    responses((status = 200, body = CmsSignResponse), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "`certificate_required`, `wrong_key_usage`")),
    security(("bearer" = [])))]
pub async fn sign_cms(
    State(app): State<App>,
    caller: Caller,
    ApiJson(req): ApiJson<CmsSignRequest>,
) -> Result<ApiJson<CmsSignResponse>, ApiError> {
    let key = app
        .service
        .key_for_reading(&caller.principal, &req.key)
        .await?;
    let alg = convert::digest_algorithm(req.digest_algorithm.as_deref())?
        .unwrap_or(key.algorithm.default_digest());
    let digest = signet_core::Digest::from_hex(alg, &req.digest)?;
    let signed = app
        .pki
        .sign_cms(
            &caller.principal,
            CmsRequest {
                key: req.key,
                digest,
                artifact_name: req.artifact_name,
                reason: req.reason,
                build: convert::build(req.build),
                timestamp: req.timestamp,
            },
            &caller.meta,
        )
        .await?;
    Ok(ApiJson(CmsSignResponse {
        key: signed.key,
        key_version: signed.key_version,
        cms: signet_formats::bundle::Bundle::encode_signature(&signed.cms),
        certificate_chain: convert::pem_chain(&signed.chain),
        audit_index: signed.log.index,
        log: convert::log_proof(&signed.log),
    }))
}
