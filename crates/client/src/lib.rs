//! A typed async client for Signet's REST API (`/api/v1`), used by the CLI and, later, the
//! PKCS#11 module.
//!
//! Depends only on `signet-proto` among workspace crates: a client deliverable never links key
//! backends, storage or scanners.

use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use signet_proto::{
    AuditList, BatchSignRequest, BatchSignResponse, CaInfo, CaList, CertificateInfo,
    CertificateList, CmsSignRequest, CmsSignResponse, ConsistencyProof, CreateCaRequest,
    CreateKeyRequest, CreateTokenRequest, CreateTsaRequest, CreatedToken, CsrRequest, CsrResponse,
    ImportCertificateRequest, InclusionProof, IssueCertificateRequest, KeyInfo, KeyList, KeyPolicy,
    LogEntries, LogKey, Problem, RevokeCertificateRequest, SignRequest, SignResponse, Status,
    TokenList, TsaInfo,
};
use zeroize::Zeroizing;

/// `Content-Type` of an RFC 3161 time-stamp query (RFC 3161 §3.4).
pub const TIMESTAMP_QUERY_CONTENT_TYPE: &str = "application/timestamp-query";
/// `Content-Type` of an RFC 3161 time-stamp response (RFC 3161 §3.4).
pub const TIMESTAMP_REPLY_CONTENT_TYPE: &str = "application/timestamp-reply";
/// `Content-Type` of a DER CRL (RFC 2585 §4.2).
pub const CRL_CONTENT_TYPE: &str = "application/pkix-crl";

/// How long [`post_timestamp_query`] waits for an external TSA.
pub const EXTERNAL_TSA_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest time-stamp response [`post_timestamp_query`] reads (a token with a few
/// certificates is a few KiB).
pub const EXTERNAL_TSA_MAX_RESPONSE: usize = 1024 * 1024;

/// Errors talking to a Signet server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a problem document.
    #[error("{}", problem_message(.0))]
    Problem(Box<Problem>),
    #[error(
        "cannot reach the server at `{url}`: {cause}; check SIGNET_URL and that signetd is running"
    )]
    Transport { url: String, cause: String },
    #[error("unexpected response from the server ({status}): {detail}")]
    Unexpected { status: u16, detail: String },
    #[error("{0}")]
    Config(String),
}

fn problem_message(p: &Problem) -> String {
    match &p.detail {
        Some(d) => format!("{d} ({})", p.code),
        None => format!("{} ({}, HTTP {})", p.title.to_lowercase(), p.code, p.status),
    }
}

impl ClientError {
    /// The problem's stable code, when the server sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Problem(p) => Some(&p.code),
            _ => None,
        }
    }
}

/// How to reach a server.
#[derive(Clone, Default)]
pub struct ClientConfig {
    pub url: String,
    pub token: Option<Zeroizing<String>>,
    /// PEM of the certificate(s) to trust instead of the system roots.
    pub ca_pem: Option<Vec<u8>>,
    pub timeout: Option<Duration>,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    auth: Option<HeaderValue>,
}

/// Query parameters of `GET /api/v1/audit`.
#[derive(Debug, Clone, Default)]
pub struct AuditParams {
    pub after: Option<u64>,
    pub key: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub limit: Option<u32>,
    /// Hex digest that was signed.
    pub digest: Option<String>,
    /// RFC 3339 time: only records at or after it.
    pub since: Option<String>,
    /// RFC 3339 time: only records before it.
    pub until: Option<String>,
}

impl AuditParams {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        [
            ("after", self.after.map(|v| v.to_string())),
            ("key", self.key.clone()),
            ("actor", self.actor.clone()),
            ("action", self.action.clone()),
            ("limit", self.limit.map(|v| v.to_string())),
            ("digest", self.digest.clone()),
            ("since", self.since.clone()),
            ("until", self.until.clone()),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
    }
}

impl Client {
    pub fn new(cfg: &ClientConfig) -> Result<Self, ClientError> {
        let base = Url::parse(cfg.url.trim_end_matches('/')).map_err(|e| {
            ClientError::Config(format!(
                "invalid server url `{}`: {e}; use e.g. https://127.0.0.1:8443",
                cfg.url
            ))
        })?;
        let loopback = match base.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        };
        // INVARIANT: bearer tokens only travel over TLS, except to a loopback dev server.
        match base.scheme() {
            "https" => {}
            "http" if loopback => {}
            other => {
                return Err(ClientError::Config(format!(
                    "server url scheme `{other}` is not allowed; use https:// (plain http only to a loopback address)"
                )));
            }
        }
        let mut builder = reqwest::Client::builder()
            .timeout(cfg.timeout.unwrap_or(Duration::from_secs(60)))
            .user_agent(concat!("signet-client/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &cfg.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                ClientError::Config(format!("cannot read the CA certificate (SIGNET_CA): {e}"))
            })?;
            if certs.is_empty() {
                return Err(ClientError::Config(
                    "the CA file (SIGNET_CA) holds no PEM certificate; point it at signetd's tls/cert.pem".into(),
                ));
            }
            builder = builder.tls_certs_only(certs);
        }
        let http = builder
            .build()
            .map_err(|e| ClientError::Config(format!("cannot build the HTTP client: {e}")))?;
        let auth = match &cfg.token {
            Some(t) => {
                let mut v =
                    HeaderValue::from_str(&format!("Bearer {}", t.as_str())).map_err(|_| {
                        ClientError::Config(
                            "the API token contains characters not allowed in a header".into(),
                        )
                    })?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        Ok(Client { http, base, auth })
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        query: Option<&AuditParams>,
    ) -> Result<T, ClientError> {
        let pairs = query.map(AuditParams::pairs).unwrap_or_default();
        let (status, bytes) = self.send(method, path, body, &pairs).await?;
        let body: &[u8] = if status == StatusCode::NO_CONTENT {
            b"null"
        } else {
            &bytes
        };
        serde_json::from_slice(body).map_err(|e| ClientError::Unexpected {
            status: status.as_u16(),
            detail: format!("cannot decode the response: {e}"),
        })
    }

    /// A `GET` whose successful response is JSON, with query parameters.
    async fn get_query<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ClientError> {
        let (status, bytes) = self.send::<()>(Method::GET, path, None, query).await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Unexpected {
            status: status.as_u16(),
            detail: format!("cannot decode the response: {e}"),
        })
    }

    /// A `GET` whose successful response is text (such as a signed note), returned exactly.
    async fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let (status, bytes) = self.send::<()>(Method::GET, path, None, &[]).await?;
        String::from_utf8(bytes).map_err(|e| ClientError::Unexpected {
            status: status.as_u16(),
            detail: format!(
                "the response is not UTF-8 text (bad byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        })
    }

    /// Sends a request; returns the status and body of a successful response, and turns any
    /// other into an error (the problem document when the server sent one).
    async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        query: &[(&str, String)],
    ) -> Result<(StatusCode, Vec<u8>), ClientError> {
        let mut url = self.url(path);
        if !query.is_empty() {
            let mut encoded = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in query {
                encoded.append_pair(k, v);
            }
            url = format!("{url}?{}", encoded.finish());
        }
        let mut req = self.http.request(method, &url);
        if let Some(a) = &self.auth {
            req = req.header(AUTHORIZATION, a.clone());
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        self.finish(req, url).await
    }

    /// Sends a request with a raw (non-JSON) body or none, accepting `accept`; returns the body
    /// of a successful response as is.
    async fn send_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
        accept: &'static str,
    ) -> Result<Vec<u8>, ClientError> {
        let url = self.url(path);
        let mut req = self
            .http
            .request(method, &url)
            .header(ACCEPT, format!("{accept}, application/problem+json"));
        if let Some(a) = &self.auth {
            req = req.header(AUTHORIZATION, a.clone());
        }
        if let Some((content_type, bytes)) = body {
            req = req.header(CONTENT_TYPE, content_type).body(bytes);
        }
        Ok(self.finish(req, url).await?.1)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base.as_str().trim_end_matches('/'), path)
    }

    async fn finish(
        &self,
        req: reqwest::RequestBuilder,
        url: String,
    ) -> Result<(StatusCode, Vec<u8>), ClientError> {
        let resp = req.send().await.map_err(|e| ClientError::Transport {
            url: url.clone(),
            cause: error_chain(&e),
        })?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| ClientError::Transport {
            url: url.clone(),
            cause: error_chain(&e),
        })?;
        if status.is_success() {
            return Ok((status, bytes.into()));
        }
        match serde_json::from_slice::<Problem>(&bytes) {
            Ok(p) => Err(ClientError::Problem(Box::new(p))),
            Err(_) => Err(ClientError::Unexpected {
                status: status.as_u16(),
                detail: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            }),
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call::<(), T>(Method::GET, path, None, None).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.call(Method::POST, path, Some(body), None).await
    }

    async fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.call(Method::PUT, path, Some(body), None).await
    }

    pub async fn status(&self) -> Result<Status, ClientError> {
        self.get("/api/v1/status").await
    }

    pub async fn create_key(&self, name: &str, algorithm: &str) -> Result<KeyInfo, ClientError> {
        self.create_key_with(&CreateKeyRequest {
            name: name.to_owned(),
            algorithm: algorithm.to_owned(),
            backend: None,
            adopt: None,
        })
        .await
    }

    /// Creates a key in a chosen backend, or adopts an existing one (`req.adopt`).
    pub async fn create_key_with(&self, req: &CreateKeyRequest) -> Result<KeyInfo, ClientError> {
        self.post("/api/v1/keys", req).await
    }

    pub async fn seal_status(&self) -> Result<signet_proto::SealStatus, ClientError> {
        self.get("/api/v1/operator/seal-status").await
    }

    /// Submits one custodian share (no token needed: the share is the credential).
    pub async fn unseal(&self, share: &str) -> Result<signet_proto::SealStatus, ClientError> {
        self.post(
            "/api/v1/operator/unseal",
            &signet_proto::UnsealRequest {
                share: share.to_owned(),
            },
        )
        .await
    }

    pub async fn seal(&self) -> Result<signet_proto::SealStatus, ClientError> {
        self.post("/api/v1/operator/seal", &serde_json::json!({}))
            .await
    }

    pub async fn rotate_kek(
        &self,
        req: &signet_proto::RotateKekRequest,
    ) -> Result<signet_proto::RotateKekResponse, ClientError> {
        self.post("/api/v1/operator/rotate-kek", req).await
    }

    pub async fn list_keys(&self) -> Result<KeyList, ClientError> {
        self.get("/api/v1/keys").await
    }

    pub async fn get_key(&self, name: &str) -> Result<KeyInfo, ClientError> {
        self.get(&format!("/api/v1/keys/{}", segment(name))).await
    }

    pub async fn rotate_key(&self, name: &str) -> Result<KeyInfo, ClientError> {
        self.post(&format!("/api/v1/keys/{}/rotate", segment(name)), &())
            .await
    }

    pub async fn set_key_enabled(&self, name: &str, enabled: bool) -> Result<KeyInfo, ClientError> {
        let action = if enabled { "enable" } else { "disable" };
        self.post(&format!("/api/v1/keys/{}/{action}", segment(name)), &())
            .await
    }

    pub async fn sign(&self, req: &SignRequest) -> Result<SignResponse, ClientError> {
        self.post("/api/v1/sign", req).await
    }

    pub async fn sign_batch(
        &self,
        req: &BatchSignRequest,
    ) -> Result<BatchSignResponse, ClientError> {
        self.post("/api/v1/sign/batch", req).await
    }

    pub async fn create_token(
        &self,
        req: &CreateTokenRequest,
    ) -> Result<CreatedToken, ClientError> {
        self.post("/api/v1/tokens", req).await
    }

    pub async fn list_tokens(&self) -> Result<TokenList, ClientError> {
        self.get("/api/v1/tokens").await
    }

    pub async fn revoke_token(&self, id: &str) -> Result<(), ClientError> {
        self.post(&format!("/api/v1/tokens/{}/revoke", segment(id)), &())
            .await
    }

    pub async fn audit(&self, params: &AuditParams) -> Result<AuditList, ClientError> {
        self.call::<(), _>(Method::GET, "/api/v1/audit", None, Some(params))
            .await
    }

    /// The audit log's latest checkpoint: a C2SP signed note, exactly as served.
    pub async fn log_checkpoint(&self) -> Result<String, ClientError> {
        self.get_text("/api/v1/log/checkpoint").await
    }

    /// The audit log's verifier key. Pin it out of band: a key fetched from the server it is
    /// meant to check proves nothing about that server.
    pub async fn log_key(&self) -> Result<LogKey, ClientError> {
        self.get("/api/v1/log/key").await
    }

    /// Log entries `start..end` exactly as stored (admin; at most 1000 per call). A missing
    /// entry is absent from the list, not an error.
    pub async fn log_entries(&self, start: u64, end: u64) -> Result<LogEntries, ClientError> {
        self.get_query(
            "/api/v1/log/entries",
            &[("start", start.to_string()), ("end", end.to_string())],
        )
        .await
    }

    /// Inclusion proof of entry `index` in the tree of `size` (default: the latest checkpoint's).
    pub async fn inclusion_proof(
        &self,
        index: u64,
        size: Option<u64>,
    ) -> Result<InclusionProof, ClientError> {
        let mut q = vec![("index", index.to_string())];
        if let Some(s) = size {
            q.push(("size", s.to_string()));
        }
        self.get_query("/api/v1/log/proof/inclusion", &q).await
    }

    /// Consistency proof from tree size `from` to `to` (default: the latest checkpoint's).
    pub async fn consistency_proof(
        &self,
        from: u64,
        to: Option<u64>,
    ) -> Result<ConsistencyProof, ClientError> {
        let mut q = vec![("from", from.to_string())];
        if let Some(t) = to {
            q.push(("to", t.to_string()));
        }
        self.get_query("/api/v1/log/proof/consistency", &q).await
    }
}

// ---- certificates, CAs, time-stamping ------------------------------------------------------

impl Client {
    /// Creates an internal CA: a root key and certificate and an issuing key and certificate.
    pub async fn create_ca(&self, req: &CreateCaRequest) -> Result<CaInfo, ClientError> {
        self.post("/api/v1/cas", req).await
    }

    pub async fn list_cas(&self) -> Result<CaList, ClientError> {
        self.get("/api/v1/cas").await
    }

    pub async fn get_ca(&self, name: &str) -> Result<CaInfo, ClientError> {
        self.get(&format!("/api/v1/cas/{}", segment(name))).await
    }

    /// The CA's current CRL, DER (RFC 5280 §5), exactly as served. Check it before trusting it:
    /// nothing here verifies its signature.
    pub async fn ca_crl(&self, name: &str) -> Result<Vec<u8>, ClientError> {
        self.send_raw(
            Method::GET,
            &format!("/api/v1/cas/{}/crl", segment(name)),
            None,
            CRL_CONTENT_TYPE,
        )
        .await
    }

    /// Has an internal CA certify the key's current version.
    pub async fn issue_certificate(
        &self,
        key: &str,
        req: &IssueCertificateRequest,
    ) -> Result<CertificateInfo, ClientError> {
        self.post(&format!("/api/v1/keys/{}/certificates", segment(key)), req)
            .await
    }

    /// Certificates of one key, every version.
    pub async fn key_certificates(&self, key: &str) -> Result<CertificateList, ClientError> {
        self.get(&format!("/api/v1/keys/{}/certificates", segment(key)))
            .await
    }

    /// Attaches a chain issued by an external CA to the key version it certifies.
    pub async fn import_certificate(
        &self,
        key: &str,
        req: &ImportCertificateRequest,
    ) -> Result<CertificateInfo, ClientError> {
        self.post(
            &format!("/api/v1/keys/{}/certificates/import", segment(key)),
            req,
        )
        .await
    }

    /// A PKCS#10 request for the key's current version, signed by the key.
    pub async fn create_csr(
        &self,
        key: &str,
        req: &CsrRequest,
    ) -> Result<CsrResponse, ClientError> {
        self.post(&format!("/api/v1/keys/{}/csr", segment(key)), req)
            .await
    }

    /// Replaces the key's policy; returns the key.
    pub async fn set_key_policy(
        &self,
        key: &str,
        policy: &KeyPolicy,
    ) -> Result<KeyInfo, ClientError> {
        self.put(&format!("/api/v1/keys/{}/policy", segment(key)), policy)
            .await
    }

    /// Every certificate the server holds.
    pub async fn list_certificates(&self) -> Result<CertificateList, ClientError> {
        self.get("/api/v1/certificates").await
    }

    pub async fn get_certificate(&self, id: &str) -> Result<CertificateInfo, ClientError> {
        self.get(&format!("/api/v1/certificates/{}", segment(id)))
            .await
    }

    pub async fn revoke_certificate(
        &self,
        id: &str,
        req: &RevokeCertificateRequest,
    ) -> Result<CertificateInfo, ClientError> {
        self.post(&format!("/api/v1/certificates/{}/revoke", segment(id)), req)
            .await
    }

    /// Sets up the built-in time-stamping authority.
    pub async fn create_tsa(&self, req: &CreateTsaRequest) -> Result<TsaInfo, ClientError> {
        self.post("/api/v1/tsa", req).await
    }

    pub async fn tsa(&self) -> Result<TsaInfo, ClientError> {
        self.get("/api/v1/tsa").await
    }

    /// The URL of the server's RFC 3161 endpoint (`/tsa`), for messages.
    pub fn timestamp_url(&self) -> String {
        self.url("/tsa")
    }

    /// Sends a DER `TimeStampReq` to the server's built-in TSA (`POST /tsa`) and returns the
    /// DER `TimeStampResp` as is. Nothing here checks it: parse and verify the token.
    pub async fn timestamp_query(&self, query_der: &[u8]) -> Result<Vec<u8>, ClientError> {
        self.send_raw(
            Method::POST,
            "/tsa",
            Some((TIMESTAMP_QUERY_CONTENT_TYPE, query_der.to_vec())),
            TIMESTAMP_REPLY_CONTENT_TYPE,
        )
        .await
    }

    /// A detached CMS SignedData over a digest (`FILE.p7s`). Verify it before using it.
    pub async fn sign_cms(&self, req: &CmsSignRequest) -> Result<CmsSignResponse, ClientError> {
        self.post("/api/v1/sign/cms", req).await
    }
}

/// Errors talking to an external time-stamping authority.
#[derive(Debug, thiserror::Error)]
pub enum TsaError {
    #[error("invalid TSA url `{url}`: {cause}; use e.g. http://timestamp.example/tsr")]
    Url { url: String, cause: String },
    #[error("cannot reach the TSA: {0}")]
    Transport(String),
    #[error("the TSA answered HTTP {status}{}", body_hint(.detail))]
    Status { status: u16, detail: String },
    #[error("the TSA's response is larger than {limit} bytes; this is not a time-stamp response")]
    TooLarge { limit: usize },
}

fn body_hint(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

/// An HTTP client for external RFC 3161 time-stamping authorities (RFC 3161 §3.4).
///
/// Separate from [`Client`]: it never carries the Signet bearer token, trusts the system's roots,
/// waits at most [`EXTERNAL_TSA_TIMEOUT`], follows no redirects (a redirected POST would turn
/// into a GET) and reads at most [`EXTERNAL_TSA_MAX_RESPONSE`] bytes of answer. Plain HTTP is
/// allowed: a time-stamp response is signed, and its checks, not the transport, make it
/// trustworthy.
#[derive(Clone, Debug)]
pub struct TsaClient {
    http: reqwest::Client,
}

impl TsaClient {
    pub fn new() -> Result<Self, TsaError> {
        let http = reqwest::Client::builder()
            .timeout(EXTERNAL_TSA_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("signet-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TsaError::Transport(format!("cannot build the HTTP client: {e}")))?;
        Ok(TsaClient { http })
    }

    /// Sends a DER `TimeStampReq` to the TSA at `url` and returns the DER `TimeStampResp` as is;
    /// nothing here checks it.
    pub async fn query(&self, url: &str, query_der: &[u8]) -> Result<Vec<u8>, TsaError> {
        let parsed = Url::parse(url).map_err(|e| TsaError::Url {
            url: url.to_owned(),
            cause: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(TsaError::Url {
                url: url.to_owned(),
                cause: format!("scheme `{}` is not http or https", parsed.scheme()),
            });
        }
        let mut resp = self
            .http
            .post(parsed)
            .header(CONTENT_TYPE, TIMESTAMP_QUERY_CONTENT_TYPE)
            .header(ACCEPT, TIMESTAMP_REPLY_CONTENT_TYPE)
            .body(query_der.to_vec())
            .send()
            .await
            .map_err(|e| TsaError::Transport(error_chain(&e)))?;
        let status = resp.status();
        if resp
            .content_length()
            .is_some_and(|n| n > EXTERNAL_TSA_MAX_RESPONSE as u64)
        {
            return Err(TsaError::TooLarge {
                limit: EXTERNAL_TSA_MAX_RESPONSE,
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| TsaError::Transport(error_chain(&e)))?
        {
            if body.len() + chunk.len() > EXTERNAL_TSA_MAX_RESPONSE {
                return Err(TsaError::TooLarge {
                    limit: EXTERNAL_TSA_MAX_RESPONSE,
                });
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            return Err(TsaError::Status {
                status: status.as_u16(),
                detail: printable_prefix(&body),
            });
        }
        Ok(body)
    }
}

/// One query to an external TSA with a fresh [`TsaClient`]; use a `TsaClient` for many.
pub async fn post_timestamp_query(url: &str, query_der: &[u8]) -> Result<Vec<u8>, TsaError> {
    TsaClient::new()?.query(url, query_der).await
}

/// The start of a body, when it is text, for an error message.
fn printable_prefix(body: &[u8]) -> String {
    match std::str::from_utf8(body) {
        Ok(text) => text
            .chars()
            .filter(|c| !c.is_control() || *c == ' ')
            .take(200)
            .collect::<String>()
            .trim()
            .to_owned(),
        Err(_) => String::new(),
    }
}

/// Percent-encodes a path segment so a name can never change the path.
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        let cfg = |url: &str| ClientConfig {
            url: url.into(),
            ..Default::default()
        };
        assert!(Client::new(&cfg("https://signet.example:8443")).is_ok());
        assert!(Client::new(&cfg("http://127.0.0.1:8080")).is_ok());
        assert!(Client::new(&cfg("http://localhost:8080")).is_ok());
        assert!(Client::new(&cfg("http://signet.example")).is_err());
        assert!(Client::new(&cfg("ftp://x")).is_err());
        assert!(Client::new(&cfg("not a url")).is_err());
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
        assert_eq!(segment("release-1.0"), "release-1.0");
    }

    #[test]
    fn token_is_redacted_in_debug() {
        let cfg = ClientConfig {
            url: "https://x".into(),
            token: Some(Zeroizing::new("signet_secret".into())),
            ..Default::default()
        };
        assert!(!format!("{cfg:?}").contains("secret"));
    }

    /// A one-connection HTTP server on a loopback port: records the request, sends `response`.
    fn serve_once(
        response: Vec<u8>,
    ) -> std::io::Result<(String, std::thread::JoinHandle<Vec<u8>>)> {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}/tsr", listener.local_addr()?);
        let handle = std::thread::spawn(move || {
            let mut request = Vec::new();
            if let Ok((mut conn, _)) = listener.accept() {
                let mut buf = [0u8; 4096];
                // Headers, then as much body as Content-Length says.
                loop {
                    let n = conn.read(&mut buf).unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if request.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let _ = conn.write_all(&response);
            }
            request
        });
        Ok((url, handle))
    }

    fn reply(status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
        let mut r = format!(
            "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        r
    }

    fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }

    #[test]
    fn tsa_queries_are_posted_as_timestamp_queries() -> Result<(), Box<dyn std::error::Error>> {
        let (url, server) = serve_once(reply(
            "200 OK",
            "Content-Type: application/timestamp-reply\r\n",
            b"\x30\x03\x02\x01\x00",
        ))?;
        let got = runtime()?.block_on(post_timestamp_query(&url, b"\x30\x00"))?;
        assert_eq!(got, b"\x30\x03\x02\x01\x00");
        let request = server.join().unwrap_or_default();
        let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
        assert!(text.starts_with("post /tsr http/1.1"), "{text}");
        assert!(
            text.contains("content-type: application/timestamp-query"),
            "{text}"
        );
        assert!(!text.contains("authorization"), "{text}");
        assert!(request.ends_with(b"\r\n\r\n\x30\x00"), "{text}");
        Ok(())
    }

    #[test]
    fn tsa_errors_say_what_went_wrong() -> Result<(), Box<dyn std::error::Error>> {
        let rt = runtime()?;
        let (url, server) = serve_once(reply("500 Internal Server Error", "", b"tsa down"))?;
        let err = rt.block_on(post_timestamp_query(&url, b"q")).err();
        let _ = server.join();
        assert!(
            matches!(&err, Some(TsaError::Status { status: 500, detail }) if detail == "tsa down"),
            "{err:?}"
        );

        // Redirects are not followed: a redirected POST would become a GET.
        let (url, server) = serve_once(reply("302 Found", "Location: /elsewhere\r\n", b""))?;
        let err = rt.block_on(post_timestamp_query(&url, b"q")).err();
        let _ = server.join();
        assert!(
            matches!(err, Some(TsaError::Status { status: 302, .. })),
            "{err:?}"
        );

        let big = vec![0x30; EXTERNAL_TSA_MAX_RESPONSE + 1];
        let (url, server) = serve_once(reply("200 OK", "", &big))?;
        let err = rt.block_on(post_timestamp_query(&url, b"q")).err();
        let _ = server.join();
        assert!(matches!(err, Some(TsaError::TooLarge { .. })), "{err:?}");

        // No length announced: the cap applies while reading.
        let mut chunked = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
        chunked.extend_from_slice(&big);
        let (url, server) = serve_once(chunked)?;
        let err = rt.block_on(post_timestamp_query(&url, b"q")).err();
        let _ = server.join();
        assert!(matches!(err, Some(TsaError::TooLarge { .. })), "{err:?}");

        let err = rt
            .block_on(post_timestamp_query("ftp://tsa.example/", b"q"))
            .err();
        assert!(matches!(err, Some(TsaError::Url { .. })), "{err:?}");
        let err = rt.block_on(post_timestamp_query("not a url", b"q")).err();
        assert!(matches!(err, Some(TsaError::Url { .. })), "{err:?}");

        // A port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let err = rt
            .block_on(post_timestamp_query(
                &format!("http://127.0.0.1:{port}/"),
                b"q",
            ))
            .err();
        assert!(matches!(err, Some(TsaError::Transport(_))), "{err:?}");
        Ok(())
    }
}
