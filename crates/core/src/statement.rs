//! Signatures over statements Signet composes itself: X.509 certificates and CRLs issued by an
//! internal CA, PKCS#10 requests, RFC 3161 time-stamp tokens and CMS signed attributes.
//!
//! The same pipeline as a client's signature — sealed check, key gates, the pure policy
//! decision producing [`Authorized`](crate::policy::Authorized), the backend, the audit entry
//! made durable before anything is returned — with one more gate: the key's
//! [`KeyUsage`] must fit the statement, so a CA key signs certificates and CRLs only and the
//! TSA key time-stamp tokens only. Building the structures is format work (`signet-formats`);
//! the server composes the two.

use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use crate::algorithm::{Digest, DigestAlgorithm};
use crate::audit::{Action, AuditReceipt, BuildInfo, DigestRef, KeyRef, Outcome, SignContext};
use crate::backend::SignInput;
use crate::cert::{KeyPolicy, KeyUsage};
use crate::error::{CoreError, ErrorCode};
use crate::key::{Key, KeyState};
use crate::policy::{self, Operation};
use crate::principal::Principal;
use crate::service::{
    RequestMeta, SigningService, denied, outcome_of, reserved, truncate, wrong_usage,
};

/// What Signet composed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    /// A TBSCertificate (RFC 5280 §4.1), signed by an internal CA key.
    Certificate,
    /// A TBSCertList (RFC 5280 §5.1), signed by an internal CA key.
    Crl,
    /// A CertificationRequestInfo (RFC 2986 §4.1), signed by the key it certifies.
    Csr,
    /// Signed attributes of an RFC 3161 token, signed by the TSA key.
    Timestamp,
    /// Signed attributes of a CMS SignedData over a client's artifact digest.
    Cms,
}

impl StatementKind {
    /// The audit action recorded for it.
    pub const fn action(self) -> Action {
        match self {
            StatementKind::Certificate => Action::CertificateIssue,
            StatementKind::Crl => Action::CrlIssue,
            StatementKind::Csr => Action::CsrCreate,
            StatementKind::Timestamp => Action::Timestamp,
            StatementKind::Cms => Action::Sign,
        }
    }

    /// The artifact kind recorded in the audit entry.
    pub const fn artifact_kind(self) -> &'static str {
        match self {
            StatementKind::Certificate => "x509-certificate",
            StatementKind::Crl => "x509-crl",
            StatementKind::Csr => "pkcs10-csr",
            StatementKind::Timestamp => "rfc3161-token",
            StatementKind::Cms => "cms",
        }
    }

    /// The usage the signing key must have; `None`: any (a CSR proves possession of any key).
    pub const fn required_usage(self) -> Option<KeyUsage> {
        match self {
            StatementKind::Certificate | StatementKind::Crl => Some(KeyUsage::CertificateAuthority),
            StatementKind::Timestamp => Some(KeyUsage::Timestamping),
            StatementKind::Cms => Some(KeyUsage::Signing),
            StatementKind::Csr => None,
        }
    }
}

/// A statement to sign.
#[derive(Debug, Clone)]
pub struct Statement {
    pub kind: StatementKind,
    /// What the key is given (`signet_formats::pkix::to_be_signed`).
    pub input: SignInput,
    /// The digest the audit entry records; default: the input's digest, or the SHA-256 of the
    /// message. A time-stamp records the caller's imprint, a CMS signature the artifact digest.
    pub audit_digest: Option<Digest>,
    /// Names the statement in the audit entry: subject and serial, CRL number, token serial.
    pub summary: String,
    pub reason: Option<String>,
    pub build: Option<BuildInfo>,
}

/// A statement signed, with where its audit entry is.
#[derive(Debug, Clone)]
pub struct StatementSignature {
    /// The key as loaded for this signature (its current version signed).
    pub key: Key,
    pub signature: Vec<u8>,
    pub signed_at: OffsetDateTime,
    pub log: AuditReceipt,
}

impl SigningService {
    /// Signs a statement Signet composed with the current version of `key_name`.
    pub async fn sign_statement(
        &self,
        who: &Principal,
        key_name: &str,
        statement: Statement,
        meta: &RequestMeta,
    ) -> Result<StatementSignature, CoreError> {
        self.check_unsealed()?;
        let _custody = self.custody.read().await;
        let kind = statement.kind;
        let mut key_ref = KeyRef {
            name: truncate(key_name),
            version: None,
            algorithm: None,
        };
        let audit_digest = match (&statement.audit_digest, &statement.input) {
            (Some(d), _) | (None, SignInput::Digest(d)) => d.clone(),
            (None, SignInput::Message(m)) => sha256(m)?,
        };
        let event_for = |key_ref: &KeyRef, outcome: Outcome| {
            let mut ev = self.event(who, kind.action(), meta);
            ev.key = Some(key_ref.clone());
            ev.digest = Some(DigestRef {
                algorithm: audit_digest.algorithm().as_str().to_owned(),
                value: audit_digest.to_hex(),
            });
            ev.context = Some(SignContext {
                artifact_name: Some(truncate(&statement.summary)),
                artifact_kind: Some(kind.artifact_kind().to_owned()),
                reason: statement.reason.as_deref().map(truncate),
                build: statement.build.clone(),
            });
            ev.outcome = outcome;
            ev
        };

        let prepared = async {
            let key = self.load_key(key_name).await?;
            key_ref.version = Some(key.current_version);
            key_ref.algorithm = Some(key.algorithm.as_str().to_owned());
            // INVARIANT: the audit log key signs checkpoints only.
            if key.name.is_reserved() {
                return Err(reserved(&key));
            }
            // INVARIANT: a key signs only the statements its usage allows: CA keys certificates
            // and CRLs, the TSA key time-stamp tokens, signing keys their clients' artifacts.
            if let Some(usage) = kind.required_usage()
                && key.usage != usage
            {
                return Err(wrong_usage(&key, usage));
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
            if kind == StatementKind::Cms && key.policy.require_certificate {
                self.require_valid_certificate(&key).await?;
            }
            if let SignInput::Digest(d) = &statement.input
                && !key.algorithm.accepts(d.algorithm())
            {
                return Err(CoreError::new(
                    ErrorCode::DigestAlgorithmNotAllowed,
                    format!(
                        "key `{}` ({}) does not sign `{}` digests",
                        key.name,
                        key.algorithm,
                        d.algorithm()
                    ),
                ));
            }
            let op = match kind {
                StatementKind::Certificate | StatementKind::Csr => Operation::AdministerKeys,
                StatementKind::Crl => Operation::PublishCrl,
                StatementKind::Timestamp => Operation::Timestamp,
                StatementKind::Cms => Operation::Sign { key: &key },
            };
            let authorized = policy::authorize_statement(who, op, statement.input.clone())
                .map_err(|d| denied(&d))?;
            Ok((key, authorized))
        }
        .await;
        let (key, authorized) = match prepared {
            Ok(ok) => ok,
            Err(e) => {
                self.record(vec![event_for(&key_ref, outcome_of(&e))])
                    .await?;
                return Err(e);
            }
        };

        let signed = async {
            let signer = self.open(&key)?;
            let input = authorized.into_inner();
            let job = move || match &input {
                SignInput::Digest(d) => signer.sign_digest(d),
                SignInput::Message(m) => signer.sign_message(m),
            };
            if crate::offload::relative_cost(key.algorithm) <= crate::offload::INLINE_BUDGET {
                job()
            } else {
                let mut out = self
                    .deps
                    .offload
                    .run(Box::new(move || job().map(|sig| vec![sig])))
                    .await?;
                out.pop().ok_or_else(|| {
                    CoreError::new(ErrorCode::Internal, "the key backend returned no signature")
                })
            }
        }
        .await;
        let signature = match signed {
            Ok(sig) => sig,
            Err(e) => {
                self.record(vec![event_for(&key_ref, outcome_of(&e))])
                    .await?;
                return Err(e);
            }
        };
        let event = event_for(&key_ref, Outcome::Allowed);
        let signed_at = event.time;
        // INVARIANT: nothing signed leaves before its audit entry is durable.
        let log = self
            .record(vec![event])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                CoreError::new(ErrorCode::Internal, "the audit log returned no receipt")
            })?;
        Ok(StatementSignature {
            key,
            signature,
            signed_at,
            log,
        })
    }

    /// Refuses a key whose signing version has no certificate valid now.
    pub(crate) async fn require_valid_certificate(&self, key: &Key) -> Result<(), CoreError> {
        let now = self.deps.clock.now();
        let certs = self.deps.certs.list_certificates(Some(&key.id)).await?;
        let valid = certs
            .iter()
            .any(|c| c.key_version == key.current_version && c.is_valid_at(now));
        if valid {
            Ok(())
        } else {
            Err(CoreError::new(
                ErrorCode::CertificateRequired,
                format!(
                    "key `{}` must have a valid certificate to sign and version {} has none (expired, revoked or never issued); issue one with `signet cert issue {}` or import one",
                    key.name, key.current_version, key.name
                ),
            ))
        }
    }

    /// Checks `op` for `who`; a denial is audited as `action` before it is returned.
    pub async fn authorize_recorded(
        &self,
        who: &Principal,
        op: Operation<'_>,
        action: Action,
        key_name: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<(), CoreError> {
        let result = self.allow(who, op);
        if result.is_err() {
            let key = key_name.map(|n| KeyRef {
                name: truncate(n),
                version: None,
                algorithm: None,
            });
            self.audit_admin(who, action, key, None, meta, &result)
                .await?;
        }
        result
    }

    /// Audits an administrative certificate operation (CA creation, import, revocation) with
    /// what it concerned, and passes its result through.
    pub async fn record_admin<T>(
        &self,
        who: &Principal,
        action: Action,
        key_name: Option<&str>,
        summary: Option<&str>,
        meta: &RequestMeta,
        result: Result<T, CoreError>,
    ) -> Result<T, CoreError> {
        let mut ev = self.event(who, action, meta);
        ev.key = key_name.map(|n| KeyRef {
            name: truncate(n),
            version: None,
            algorithm: None,
        });
        ev.context = summary.map(|s| SignContext {
            artifact_name: Some(truncate(s)),
            ..SignContext::default()
        });
        if let Err(e) = &result {
            ev.outcome = outcome_of(e);
        }
        self.record(vec![ev]).await?;
        result
    }

    /// Replaces a key's policy (admins), audited.
    pub async fn set_key_policy(
        &self,
        who: &Principal,
        name: &str,
        policy: KeyPolicy,
        meta: &RequestMeta,
    ) -> Result<Key, CoreError> {
        self.check_unsealed()?;
        let result = async {
            self.authorize_audited(who, Operation::AdministerKeys)?;
            let mut key = self.load_key(name).await?;
            if key.name.is_reserved() {
                return Err(reserved(&key));
            }
            self.deps.keys.set_policy(&key.id, &policy).await?;
            key.policy = policy;
            Ok(key)
        }
        .await;
        let key_ref = KeyRef {
            name: truncate(name),
            version: None,
            algorithm: None,
        };
        self.audit_admin(
            who,
            Action::KeyPolicySet,
            Some(key_ref),
            None,
            meta,
            &result,
        )
        .await?;
        result
    }

    /// Loads a key for reading (`ReadKeys`), not audited.
    pub async fn key_for_reading(&self, who: &Principal, name: &str) -> Result<Key, CoreError> {
        self.allow(who, Operation::ReadKeys)?;
        self.load_key(name).await
    }

    /// A key by name without an authorization check, for the server's own work (publishing a
    /// CRL, finding the TSA key); never for a caller's request.
    pub async fn internal_key(&self, name: &str) -> Result<Key, CoreError> {
        self.load_key(name).await
    }

    /// Every key, without an authorization check (see [`Self::internal_key`]).
    pub async fn internal_keys(&self) -> Result<Vec<Key>, CoreError> {
        self.deps.keys.list_keys().await
    }

    /// Random bytes from the service's one source of randomness (serial numbers, nonces).
    pub fn random_bytes<const N: usize>(&self) -> Result<[u8; N], CoreError> {
        crate::random::bytes(self.deps.random.as_ref())
    }

    /// The certificate store.
    pub fn certs(&self) -> &dyn crate::cert::CertStore {
        self.deps.certs.as_ref()
    }
}

fn sha256(message: &[u8]) -> Result<Digest, CoreError> {
    Digest::new(DigestAlgorithm::Sha256, Sha256::digest(message).to_vec())
}
