//! The signing service: the one pipeline every operation goes through.
//!
//! For a signature: load the key → gates (state, digest algorithm) → policy → sign → append the
//! audit entries durably → only then return. Administrative operations follow the same shape.
//! Denied and failed requests are audited too.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use time::OffsetDateTime;

use crate::algorithm::{Algorithm, Digest, DigestAlgorithm};
use crate::audit::{
    Action, Actor, AuditEvent, AuditLog, CustodyRef, DigestRef, KeyRef, Outcome, SignContext,
};
use crate::backend::{Backends, KeySpec, Rewrap, SealState, SigningKey};
use crate::clock::Clock;
use crate::error::{CoreError, ErrorCode};
use crate::key::{Key, KeyName, KeyState, KeyVersion};
use crate::policy::{self, Authorized, Operation};
use crate::principal::{Principal, PrincipalKind, Role};
use crate::random::{self, Random};
use crate::secret::SecretString;
use crate::store::{KeyStore, TokenStore};
use crate::token::{self, TokenRecord};

/// Most digests one batch request may carry.
pub const MAX_BATCH: usize = 1000;

const MAX_TEXT: usize = 1024;

/// Where a request came from, for the audit log.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub client_addr: Option<String>,
}

/// One digest to sign, with what it is the digest of.
#[derive(Debug, Clone)]
pub struct SignItem {
    /// Hex; parsed once the key (and so the default digest algorithm) is known.
    pub digest: String,
    pub artifact_name: Option<String>,
    pub artifact_kind: Option<String>,
}

/// A key to create.
#[derive(Debug, Clone, Copy)]
pub struct NewKey<'a> {
    pub name: &'a str,
    pub algorithm: &'a str,
    /// The backend to hold it; `None` for the server's default.
    pub backend: Option<&'a str>,
    /// Adopt this existing key of the backend (a PKCS#11 URI) instead of generating one.
    pub adopt: Option<&'a str>,
    /// What the key signs; CA and TSA keys sign only what Signet composes.
    pub usage: crate::cert::KeyUsage,
}

/// Digests to sign with one key, with the shared reason and build information.
#[derive(Debug, Clone)]
pub struct SignBatch {
    pub key: String,
    /// `None`: the key's default ([`Algorithm::default_digest`]).
    pub digest_algorithm: Option<crate::algorithm::DigestAlgorithm>,
    pub items: Vec<SignItem>,
    pub reason: Option<String>,
    pub build: Option<crate::audit::BuildInfo>,
}

/// A signature made, and where its audit entry is.
#[derive(Debug, Clone)]
pub struct Signature {
    pub key: String,
    pub key_version: u32,
    pub algorithm: Algorithm,
    pub digest: Digest,
    pub signature: Vec<u8>,
    pub public_key_fingerprint: String,
    pub signed_at: OffsetDateTime,
    /// The signature's audit entry and its proof of inclusion in the log.
    pub log: crate::audit::AuditReceipt,
}

/// A token as listed (never its secret or hash).
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
    pub created_by: String,
}

impl From<&TokenRecord> for TokenInfo {
    fn from(t: &TokenRecord) -> Self {
        TokenInfo {
            id: t.id.clone(),
            name: t.name.clone(),
            role: t.role,
            created_at: t.created_at,
            expires_at: t.expires_at,
            revoked_at: t.revoked_at,
            created_by: t.created_by.clone(),
        }
    }
}

/// The plug-ins the service is built from.
pub struct Deps {
    pub keys: Arc<dyn KeyStore>,
    pub tokens: Arc<dyn TokenStore>,
    /// Certificates of key versions (for the `require_certificate` key policy).
    pub certs: Arc<dyn crate::cert::CertStore>,
    pub audit: Arc<dyn AuditLog>,
    /// The configured key backends and the default one new keys are generated in.
    pub backends: Backends,
    /// Which algorithms new keys may use.
    pub creation: policy::KeyCreationRules,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
    /// Where expensive signing jobs run.
    pub offload: Arc<dyn crate::offload::Offload>,
    /// This node's name, recorded in every audit event.
    pub node: String,
    /// Whether the server is sealed (nothing is signed or generated then).
    pub seal: Arc<dyn SealState>,
    /// Whether cryptography runs in the FIPS 140-3 validated module (recorded in every event).
    pub fips: bool,
}

type CacheKey = (String, u32);

pub struct SigningService {
    pub(crate) deps: Deps,
    opened: RwLock<HashMap<CacheKey, Arc<dyn SigningKey>>>,
    /// Held shared by everything that reads or writes key handles, exclusively by KEK rotation
    /// and sealing, so no handle is sealed under a KEK that is being replaced.
    pub(crate) custody: tokio::sync::RwLock<()>,
}

impl SigningService {
    pub fn new(deps: Deps) -> Self {
        SigningService {
            deps,
            opened: RwLock::new(HashMap::new()),
            custody: tokio::sync::RwLock::new(()),
        }
    }

    /// Refuses work that needs key material while the server is sealed.
    pub(crate) fn check_unsealed(&self) -> Result<(), CoreError> {
        // INVARIANT: nothing is signed or generated while the server is sealed.
        if self.deps.seal.is_sealed() {
            return Err(CoreError::sealed());
        }
        Ok(())
    }

    pub fn is_sealed(&self) -> bool {
        self.deps.seal.is_sealed()
    }

    pub fn clock(&self) -> &dyn Clock {
        self.deps.clock.as_ref()
    }

    /// Whether every configured key backend can sign.
    pub fn backend_health(&self) -> Result<(), CoreError> {
        self.deps.backends.iter().try_for_each(|b| b.health())
    }

    /// The configured key backends.
    pub fn backends(&self) -> &Backends {
        &self.deps.backends
    }

    // ---- authentication -------------------------------------------------------------------

    /// Authenticates a bearer token. Failures are audited (never with the secret) and all look
    /// alike to the caller.
    pub async fn authenticate(
        &self,
        presented: &SecretString,
        meta: &RequestMeta,
    ) -> Result<Principal, CoreError> {
        let now = self.deps.clock.now();
        let (token_id, verdict) = match token::parse(presented.expose()) {
            None => (None, Err("malformed token")),
            Some((id, secret)) => {
                let verdict = match self.deps.tokens.get_token(id).await? {
                    None => Err("unknown token"),
                    Some(rec)
                        if !token::hashes_equal(&token::hash_secret(secret), &rec.secret_hash) =>
                    {
                        Err("wrong secret")
                    }
                    Some(rec) if rec.revoked_at.is_some() => Err("revoked token"),
                    Some(rec) if !rec.is_usable(now) => Err("expired token"),
                    Some(rec) => Ok(Principal {
                        id: rec.id.clone(),
                        name: rec.name.clone(),
                        kind: PrincipalKind::ServiceAccount,
                        role: Some(rec.role),
                    }),
                };
                (Some(id.to_owned()), verdict)
            }
        };
        match verdict {
            Ok(p) => Ok(p),
            Err(why) => {
                let mut event = self.event(&Principal::anonymous(), Action::Authenticate, meta);
                event.token_id = token_id;
                event.outcome = Outcome::Denied {
                    code: ErrorCode::Unauthenticated.as_str().into(),
                    reason: why.into(),
                };
                match self.record(vec![event]).await {
                    // A sealed log cannot append: the attempt is not recorded, and the caller
                    // still gets the same 401 as always.
                    Err(e) if e.code == ErrorCode::Sealed => {}
                    other => {
                        other?;
                    }
                }
                Err(unauthenticated())
            }
        }
    }

    // ---- keys -----------------------------------------------------------------------------

    pub async fn list_keys(&self, who: &Principal) -> Result<Vec<Key>, CoreError> {
        self.allow(who, Operation::ReadKeys)?;
        // Signet's own keys are not for signing; `GET /api/v1/log/key` shows the log key.
        Ok(self
            .deps
            .keys
            .list_keys()
            .await?
            .into_iter()
            .filter(|k| !k.name.is_reserved())
            .collect())
    }

    pub async fn get_key(&self, who: &Principal, name: &str) -> Result<Key, CoreError> {
        self.allow(who, Operation::ReadKeys)?;
        self.load_key(name).await
    }

    /// Creates a key in the default backend.
    pub async fn create_key(
        &self,
        who: &Principal,
        name: &str,
        algorithm: &str,
        meta: &RequestMeta,
    ) -> Result<Key, CoreError> {
        let new = NewKey {
            name,
            algorithm,
            backend: None,
            adopt: None,
            usage: crate::cert::KeyUsage::Signing,
        };
        self.create_key_with(who, &new, meta).await
    }

    /// Creates a key: generated in the chosen backend, or adopted from one (`new.adopt`).
    pub async fn create_key_with(
        &self,
        who: &Principal,
        new: &NewKey<'_>,
        meta: &RequestMeta,
    ) -> Result<Key, CoreError> {
        self.check_unsealed()?;
        let _custody = self.custody.read().await;
        let (name, algorithm) = (new.name, new.algorithm);
        let key_ref = KeyRef {
            name: truncate(name),
            version: Some(1),
            algorithm: Some(truncate(algorithm)),
        };
        let result = async {
            self.authorize_audited(who, Operation::AdministerKeys)?;
            let name = KeyName::parse(name)?;
            if name.is_reserved() {
                return Err(CoreError::new(
                    ErrorCode::InvalidName,
                    format!(
                        "key names starting with `{}` are reserved for Signet's own keys; pick another name",
                        crate::key::RESERVED_PREFIX
                    ),
                ));
            }
            let algorithm: Algorithm = algorithm.parse()?;
            let backend = match new.backend {
                Some(id) => self.deps.backends.require(id)?,
                None => self.deps.backends.default_backend().ok_or_else(|| {
                    CoreError::new(ErrorCode::Internal, "no default key backend is configured")
                })?,
            };
            // INVARIANT: weak or out-of-boundary algorithms are refused before any key exists.
            self.deps.creation.check(algorithm, backend.id())?;
            if !backend.supports(algorithm) {
                return Err(CoreError::new(
                    ErrorCode::UnsupportedAlgorithm,
                    format!(
                        "key backend `{}` cannot hold `{algorithm}` keys; pick another algorithm or backend",
                        backend.id()
                    ),
                ));
            }
            if self.deps.keys.get_key(name.as_str()).await?.is_some() {
                return Err(key_exists(name.as_str()));
            }
            let id = random::id(self.deps.random.as_ref())?;
            let spec = KeySpec {
                key_id: id.clone(),
                version: 1,
                algorithm,
            };
            let generated = match new.adopt {
                Some(locator) => backend.adopt(&spec, locator).await?,
                None => backend.generate(&spec).await?,
            };
            let mut key = Key::new(
                id,
                name,
                algorithm,
                backend.id().to_owned(),
                generated,
                self.deps.clock.now(),
            );
            key.usage = new.usage;
            self.deps.keys.create_key(&key).await?;
            Ok(key)
        }
        .await;
        self.audit_admin(who, Action::KeyCreate, Some(key_ref), None, meta, &result)
            .await?;
        result
    }

    /// Makes a new version the signing version; earlier versions keep verifying.
    pub async fn rotate_key(
        &self,
        who: &Principal,
        name: &str,
        meta: &RequestMeta,
    ) -> Result<Key, CoreError> {
        self.check_unsealed()?;
        let _custody = self.custody.read().await;
        let mut key_ref = KeyRef {
            name: truncate(name),
            version: None,
            algorithm: None,
        };
        let result = async {
            self.authorize_audited(who, Operation::AdministerKeys)?;
            let key = self.load_key(name).await?;
            if key.name.is_reserved() {
                return Err(reserved(&key));
            }
            // Rotation generates a new version: the creation rules apply to it too.
            self.deps.creation.check(key.algorithm, &key.backend)?;
            let version = key.current_version + 1;
            key_ref.version = Some(version);
            key_ref.algorithm = Some(key.algorithm.as_str().to_owned());
            let spec = KeySpec {
                key_id: key.id.clone(),
                version,
                algorithm: key.algorithm,
            };
            let generated = self.backend_of(&key)?.generate(&spec).await?;
            let kv = KeyVersion {
                version,
                public_key_der: generated.public_key_der,
                handle: generated.handle,
                created_at: self.deps.clock.now(),
            };
            self.deps
                .keys
                .add_version(&key.id, key.current_version, &kv)
                .await?;
            self.load_key(name).await
        }
        .await;
        self.audit_admin(who, Action::KeyRotate, Some(key_ref), None, meta, &result)
            .await?;
        result
    }

    pub async fn set_key_state(
        &self,
        who: &Principal,
        name: &str,
        state: KeyState,
        meta: &RequestMeta,
    ) -> Result<Key, CoreError> {
        // INVARIANT: no state change the sealed log could not record.
        self.check_unsealed()?;
        let action = match state {
            KeyState::Active => Action::KeyEnable,
            KeyState::Disabled => Action::KeyDisable,
        };
        let key_ref = KeyRef {
            name: truncate(name),
            version: None,
            algorithm: None,
        };
        let result = async {
            self.authorize_audited(who, Operation::AdministerKeys)?;
            let key = self.load_key(name).await?;
            if key.name.is_reserved() {
                return Err(reserved(&key));
            }
            if key.state != state {
                self.deps.keys.set_state(&key.id, state).await?;
            }
            self.load_key(name).await
        }
        .await;
        self.audit_admin(who, action, Some(key_ref), None, meta, &result)
            .await?;
        result
    }

    // ---- signing --------------------------------------------------------------------------

    /// Signs every digest of `batch` with the key's current version.
    ///
    /// All or nothing: either every digest is signed and every signature's audit entry is
    /// durable, or none is returned.
    pub async fn sign(
        &self,
        who: &Principal,
        batch: SignBatch,
        meta: &RequestMeta,
    ) -> Result<Vec<Signature>, CoreError> {
        self.check_unsealed()?;
        let _custody = self.custody.read().await;
        let mut key_ref = KeyRef {
            name: truncate(&batch.key),
            version: None,
            algorithm: None,
        };
        // Bound the request before anything of it is copied into audit events: a refused batch
        // is recorded as one event without its unvalidated context.
        if let Err(e) = validate_batch(&batch) {
            let mut ev = self.event(who, Action::Sign, meta);
            ev.key = Some(key_ref);
            ev.outcome = outcome_of(&e);
            self.record(vec![ev]).await?;
            return Err(e);
        }
        let context_of = |item: &SignItem| SignContext {
            artifact_name: item.artifact_name.clone(),
            artifact_kind: item.artifact_kind.clone(),
            reason: batch.reason.clone(),
            build: batch.build.clone(),
        };
        let mut digest_alg = batch.digest_algorithm;
        let events_for =
            |key_ref: &KeyRef, digest_alg: Option<DigestAlgorithm>, outcome: &Outcome| {
                batch
                    .items
                    .iter()
                    .map(|item| {
                        let mut ev = self.event(who, Action::Sign, meta);
                        ev.key = Some(key_ref.clone());
                        ev.digest = Some(DigestRef {
                            algorithm: digest_alg.map_or("unknown", |d| d.as_str()).to_owned(),
                            value: item.digest.trim().to_ascii_lowercase(),
                        });
                        ev.context = Some(context_of(item));
                        ev.outcome = outcome.clone();
                        ev
                    })
                    .collect::<Vec<_>>()
            };

        let prepared = async {
            let key = self.load_key(&batch.key).await?;
            key_ref.version = Some(key.current_version);
            key_ref.algorithm = Some(key.algorithm.as_str().to_owned());
            let alg = *digest_alg.get_or_insert(key.algorithm.default_digest());
            // Gates before policy: Signet's own keys, a disabled key or a digest the key does
            // not take are refused whoever asks.
            // INVARIANT: the audit log key signs checkpoints only, never a client's digest.
            if key.name.is_reserved() {
                return Err(reserved(&key));
            }
            // INVARIANT: CA and TSA keys sign only what Signet composes, never a client's digest.
            if key.usage != crate::cert::KeyUsage::Signing {
                return Err(wrong_usage(&key, crate::cert::KeyUsage::Signing));
            }
            if key.policy.require_certificate {
                self.require_valid_certificate(&key).await?;
            }
            if key.state != KeyState::Active {
                return Err(CoreError::new(
                    ErrorCode::KeyDisabled,
                    format!(
                        "key `{}` is disabled; an admin can enable it with `signet key enable {}`",
                        key.name, key.name
                    ),
                ));
            }
            if !key.algorithm.accepts(alg) {
                return Err(CoreError::new(
                    ErrorCode::DigestAlgorithmNotAllowed,
                    format!(
                        "key `{}` ({}) does not sign `{alg}` digests; use {}",
                        key.name,
                        key.algorithm,
                        key.algorithm
                            .allowed_digests()
                            .iter()
                            .map(|a| a.as_str())
                            .collect::<Vec<_>>()
                            .join(" or ")
                    ),
                ));
            }
            let digests = batch
                .items
                .iter()
                .map(|item| Digest::from_hex(alg, &item.digest))
                .collect::<Result<Vec<_>, _>>()?;
            let authorized = policy::authorize_sign(who, &key, digests).map_err(|d| denied(&d))?;
            Ok((key, authorized))
        }
        .await;

        let (key, authorized) = match prepared {
            Ok(ok) => ok,
            Err(e) => {
                self.record(events_for(&key_ref, digest_alg, &outcome_of(&e)))
                    .await?;
                return Err(e);
            }
        };

        let signed = match self.sign_authorized(&key, authorized).await {
            Ok(signed) => signed,
            Err(e) => {
                self.record(events_for(&key_ref, digest_alg, &outcome_of(&e)))
                    .await?;
                return Err(e);
            }
        };

        let events = events_for(&key_ref, digest_alg, &Outcome::Allowed);
        let signed_at = events
            .first()
            .map_or_else(|| self.deps.clock.now(), |e| e.time);
        // INVARIANT: no signature leaves before its audit entry is durable. `record` returns
        // only after the log has synced; on error the signatures are dropped here.
        let receipts = self.record(events).await?;

        let fingerprint = key.current().map(|v| v.fingerprint()).unwrap_or_default();
        Ok(signed
            .into_iter()
            .zip(receipts)
            .map(|((digest, signature), log)| Signature {
                key: key.name.as_str().to_owned(),
                key_version: key.current_version,
                algorithm: key.algorithm,
                digest,
                signature,
                public_key_fingerprint: fingerprint.clone(),
                signed_at,
                log,
            })
            .collect())
    }

    /// The only place a backend is asked to sign, and only digests the policy authorized.
    async fn sign_authorized(
        &self,
        key: &Key,
        authorized: Authorized<Vec<Digest>>,
    ) -> Result<Vec<(Digest, Vec<u8>)>, CoreError> {
        use crate::offload::{INLINE_BUDGET, relative_cost};
        let signer = self.open(key)?;
        let digests = authorized.into_inner();
        let cost = u32::try_from(digests.len())
            .unwrap_or(u32::MAX)
            .saturating_mul(relative_cost(key.algorithm));
        let signatures = if cost <= INLINE_BUDGET {
            digests
                .iter()
                .map(|d| signer.sign_digest(d))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            let job_digests = digests.clone();
            self.deps
                .offload
                .run(Box::new(move || {
                    job_digests.iter().map(|d| signer.sign_digest(d)).collect()
                }))
                .await?
        };
        if signatures.len() != digests.len() {
            return Err(CoreError::new(
                ErrorCode::Internal,
                "the key backend returned the wrong number of signatures",
            ));
        }
        Ok(digests.into_iter().zip(signatures).collect())
    }

    /// The opened signing key of the key's current version, cached after the first use.
    pub(crate) fn open(&self, key: &Key) -> Result<Arc<dyn SigningKey>, CoreError> {
        let cache_key = (key.id.clone(), key.current_version);
        if let Ok(map) = self.opened.read()
            && let Some(k) = map.get(&cache_key)
        {
            return Ok(Arc::clone(k));
        }
        let backend = self.backend_of(key)?;
        let version = key.current().ok_or_else(|| {
            CoreError::new(
                ErrorCode::Internal,
                format!("key `{}` has no version {}", key.name, key.current_version),
            )
        })?;
        let spec = KeySpec {
            key_id: key.id.clone(),
            version: version.version,
            algorithm: key.algorithm,
        };
        let opened: Arc<dyn SigningKey> = Arc::from(backend.open(&spec, &version.handle)?);
        if let Ok(mut map) = self.opened.write() {
            map.insert(cache_key, Arc::clone(&opened));
        }
        Ok(opened)
    }

    /// The backend holding `key`.
    fn backend_of(&self, key: &Key) -> Result<&Arc<dyn crate::backend::KeyBackend>, CoreError> {
        self.deps.backends.get(&key.backend).ok_or_else(|| {
            CoreError::new(
                ErrorCode::BackendUnavailable,
                format!(
                    "key `{}` is held by key backend `{}`, which this server has not configured",
                    key.name, key.backend
                ),
            )
        })
    }

    // ---- tokens ---------------------------------------------------------------------------

    /// Creates an API token; the returned secret is shown once and never stored.
    pub async fn create_token(
        &self,
        who: &Principal,
        name: &str,
        role: &str,
        expires_at: Option<OffsetDateTime>,
        meta: &RequestMeta,
    ) -> Result<(TokenInfo, SecretString), CoreError> {
        // INVARIANT: no state change the sealed log could not record.
        self.check_unsealed()?;
        let mut token_id = None;
        let result = async {
            self.authorize_audited(who, Operation::AdministerTokens)?;
            let name = KeyName::parse(name)?;
            let role = Role::parse(role).ok_or_else(|| {
                CoreError::new(
                    ErrorCode::InvalidRequest,
                    format!("unknown role `{}`; use `signer` or `admin`", truncate(role)),
                )
            })?;
            let now = self.deps.clock.now();
            if expires_at.is_some_and(|e| e <= now) {
                return Err(CoreError::new(
                    ErrorCode::InvalidRequest,
                    "expiry is in the past; give a time in the future",
                ));
            }
            let minted = token::mint(self.deps.random.as_ref())?;
            token_id = Some(minted.id.clone());
            let record = TokenRecord {
                id: minted.id,
                name: name.as_str().to_owned(),
                role,
                secret_hash: minted.secret_hash,
                created_at: now,
                expires_at,
                revoked_at: None,
                created_by: who.id.clone(),
            };
            self.deps.tokens.create_token(&record).await?;
            Ok((TokenInfo::from(&record), minted.secret))
        }
        .await;
        self.audit_admin(who, Action::TokenCreate, None, token_id, meta, &result)
            .await?;
        result
    }

    pub async fn list_tokens(&self, who: &Principal) -> Result<Vec<TokenInfo>, CoreError> {
        self.allow(who, Operation::AdministerTokens)?;
        Ok(self
            .deps
            .tokens
            .list_tokens()
            .await?
            .iter()
            .map(TokenInfo::from)
            .collect())
    }

    pub async fn revoke_token(
        &self,
        who: &Principal,
        id: &str,
        meta: &RequestMeta,
    ) -> Result<(), CoreError> {
        // INVARIANT: no state change the sealed log could not record.
        self.check_unsealed()?;
        let result = async {
            self.authorize_audited(who, Operation::AdministerTokens)?;
            let now = self.deps.clock.now();
            if self.deps.tokens.revoke_token(id, now).await? {
                Ok(())
            } else {
                Err(CoreError::new(
                    ErrorCode::TokenNotFound,
                    format!(
                        "token `{}` not found; `signet token list` shows token ids",
                        truncate(id)
                    ),
                ))
            }
        }
        .await;
        self.audit_admin(
            who,
            Action::TokenRevoke,
            None,
            Some(truncate(id)),
            meta,
            &result,
        )
        .await?;
        result
    }

    /// Makes the first admin token when a data directory is initialized (audited as `init`).
    pub async fn bootstrap_admin_token(&self) -> Result<(TokenInfo, SecretString), CoreError> {
        let init = Principal {
            id: "init".into(),
            name: "signetd init".into(),
            kind: PrincipalKind::ServiceAccount,
            role: Some(Role::Admin),
        };
        self.create_token(&init, "admin", "admin", None, &RequestMeta::default())
            .await
    }

    // ---- audit ----------------------------------------------------------------------------

    pub async fn audit_query(
        &self,
        who: &Principal,
        query: &crate::audit::AuditQuery,
    ) -> Result<Vec<crate::audit::AuditRecord>, CoreError> {
        self.allow(who, Operation::ReadAudit)?;
        self.deps.audit.query(query).await
    }

    // ---- helpers --------------------------------------------------------------------------

    pub(crate) async fn load_key(&self, name: &str) -> Result<Key, CoreError> {
        self.deps
            .keys
            .get_key(name)
            .await?
            .ok_or_else(|| CoreError::key_not_found(&truncate(name)))
    }

    /// A policy check for read-only operations (not audited: reads change nothing).
    pub fn allow(&self, who: &Principal, op: Operation<'_>) -> Result<(), CoreError> {
        policy::authorize(who, op).map_err(|d| denied(&d))
    }

    /// A policy check whose denial the caller's audit event records.
    pub(crate) fn authorize_audited(
        &self,
        who: &Principal,
        op: Operation<'_>,
    ) -> Result<(), CoreError> {
        self.allow(who, op)
    }

    pub(crate) fn event(&self, who: &Principal, action: Action, meta: &RequestMeta) -> AuditEvent {
        AuditEvent {
            time: self.deps.clock.now(),
            action,
            actor: Actor {
                id: who.id.clone(),
                name: who.name.clone(),
                kind: who.kind,
                role: who.role,
            },
            key: None,
            token_id: None,
            digest: None,
            context: None,
            outcome: Outcome::Allowed,
            client_addr: meta.client_addr.clone(),
            node: self.deps.node.clone(),
            custody: None,
            fips: self.deps.fips,
        }
    }

    // ---- custody --------------------------------------------------------------------------

    /// Appends one custody event (unseal progress, seal, KEK rotation). Unseal events are
    /// appended once the server is unsealed: a sealed log cannot sign its checkpoint.
    pub async fn audit_custody(
        &self,
        who: &Principal,
        action: Action,
        custody: CustodyRef,
        at: Option<OffsetDateTime>,
        meta: &RequestMeta,
        outcome: Outcome,
    ) -> Result<(), CoreError> {
        let mut ev = self.event(who, action, meta);
        if let Some(at) = at {
            ev.time = at;
        }
        ev.custody = Some(custody);
        ev.outcome = outcome;
        self.record(vec![ev]).await.map(|_| ())
    }

    /// Checks that `who` may seal the server or rotate its KEK (the caller audits a denial).
    pub async fn authorize_operator(&self, who: &Principal) -> Result<(), CoreError> {
        self.authorize_audited(who, Operation::Operate)
    }

    /// Drops every opened key from memory, waiting for in-flight key work to finish (seal).
    pub async fn forget_keys(&self) {
        let _custody = self.custody.write().await;
        if let Ok(mut map) = self.opened.write() {
            map.clear();
        }
    }

    /// Re-protects every key version held by `rewrap.backend_id()` (KEK rotation): all new
    /// handles are stored in one transaction, then `rewrap.commit()` switches over, all while
    /// key creation, rotation and signing wait. Returns the new handles by `(key id, version)`.
    pub async fn rewrap_keys(
        &self,
        rewrap: &dyn Rewrap,
    ) -> Result<Vec<(String, u32, crate::key::KeyHandle)>, CoreError> {
        self.check_unsealed()?;
        let _custody = self.custody.write().await;
        let mut updates = Vec::new();
        for key in self.deps.keys.list_keys().await? {
            if key.backend != rewrap.backend_id() {
                continue;
            }
            for v in &key.versions {
                let spec = KeySpec {
                    key_id: key.id.clone(),
                    version: v.version,
                    algorithm: key.algorithm,
                };
                updates.push((key.id.clone(), v.version, rewrap.rewrap(&spec, &v.handle)?));
            }
        }
        // INVARIANT: either every handle moves to the new KEK or none does.
        self.deps.keys.replace_handles(&updates).await?;
        rewrap.commit()?;
        if let Ok(mut map) = self.opened.write() {
            map.clear();
        }
        Ok(updates)
    }

    pub(crate) async fn audit_admin<T>(
        &self,
        who: &Principal,
        action: Action,
        key: Option<KeyRef>,
        token_id: Option<String>,
        meta: &RequestMeta,
        result: &Result<T, CoreError>,
    ) -> Result<(), CoreError> {
        let mut ev = self.event(who, action, meta);
        ev.key = key;
        ev.token_id = token_id;
        if let Err(e) = result {
            ev.outcome = outcome_of(e);
        }
        self.record(vec![ev]).await.map(|_| ())
    }

    pub(crate) async fn record(
        &self,
        events: Vec<AuditEvent>,
    ) -> Result<Vec<crate::audit::AuditReceipt>, CoreError> {
        self.deps.audit.append(events).await
    }
}

fn validate_batch(batch: &SignBatch) -> Result<(), CoreError> {
    if batch.items.is_empty() {
        return Err(CoreError::new(
            ErrorCode::InvalidRequest,
            "no digests to sign; send at least one",
        ));
    }
    if batch.items.len() > MAX_BATCH {
        return Err(CoreError::new(
            ErrorCode::BatchTooLarge,
            format!(
                "batch of `{}` digests is over the limit of {MAX_BATCH}; split it",
                batch.items.len()
            ),
        ));
    }
    let mut texts: Vec<(&str, Option<&str>)> = vec![("reason", batch.reason.as_deref())];
    if let Some(b) = &batch.build {
        texts.push(("build.repository", b.repository.as_deref()));
        texts.push(("build.commit", b.commit.as_deref()));
        texts.push(("build.pipeline_id", b.pipeline_id.as_deref()));
    }
    let too_long = |v: &str| v.len() > 2 * crate::algorithm::MAX_DIGEST_LEN + 2;
    if let Some(item) = batch.items.iter().find(|i| too_long(&i.digest)) {
        return Err(CoreError::new(
            ErrorCode::DigestLengthMismatch,
            format!(
                "digest of {} characters is longer than any supported digest; send the hex digest",
                item.digest.len()
            ),
        ));
    }
    for item in &batch.items {
        texts.push(("artifact_name", item.artifact_name.as_deref()));
        texts.push(("artifact_kind", item.artifact_kind.as_deref()));
    }
    for (field, value) in texts {
        if let Some(v) = value {
            if v.len() > MAX_TEXT {
                return Err(CoreError::new(
                    ErrorCode::InvalidRequest,
                    format!("`{field}` is {} bytes; the limit is {MAX_TEXT}", v.len()),
                ));
            }
            if v.chars().any(char::is_control) {
                return Err(CoreError::new(
                    ErrorCode::InvalidRequest,
                    format!("`{field}` contains control characters; send printable text"),
                ));
            }
        }
    }
    Ok(())
}

pub(crate) fn outcome_of(e: &CoreError) -> Outcome {
    let code = e.code.as_str().to_owned();
    if e.is_client_error() {
        Outcome::Denied {
            code,
            reason: e.message.clone(),
        }
    } else {
        Outcome::Failed {
            code,
            reason: e.message.clone(),
        }
    }
}

pub(crate) fn denied(d: &policy::Denial) -> CoreError {
    CoreError::new(ErrorCode::PolicyDenied, format!("denied: {}", d.message()))
}

fn unauthenticated() -> CoreError {
    CoreError::new(
        ErrorCode::Unauthenticated,
        "missing or invalid API token; send `Authorization: Bearer <token>` (see `signet login`)",
    )
}

pub(crate) fn reserved(key: &Key) -> CoreError {
    CoreError::new(
        ErrorCode::PolicyDenied,
        format!(
            "key `{}` is Signet's own audit log key; it signs log checkpoints only and is managed by signetd",
            key.name
        ),
    )
}

fn key_exists(name: &str) -> CoreError {
    CoreError::new(
        ErrorCode::KeyExists,
        format!("key `{name}` already exists; pick another name or `signet key rotate {name}`"),
    )
}

pub(crate) fn truncate(s: &str) -> String {
    crate::algorithm::truncate(s, 80)
}

pub(crate) fn wrong_usage(key: &Key, wanted: crate::cert::KeyUsage) -> CoreError {
    CoreError::new(
        ErrorCode::WrongKeyUsage,
        format!(
            "key `{}` has usage `{}` and cannot be used for this; use a key with usage `{}`",
            key.name,
            key.usage.as_str(),
            wanted.as_str()
        ),
    )
}
