//! Certificates and time-stamping: internal CAs, certificates for key versions (issued, or
//! requested with a CSR and imported), CRLs, the RFC 3161 TSA and CMS signatures.
//!
//! This module only composes: the structures are built by `signet_formats` (pure), every
//! signature goes through the core pipeline ([`SigningService::sign_statement`]: key-usage gate,
//! policy, backend, durable audit entry), and records live in the [`CertStore`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use signet_core::Digest;
use signet_core::algorithm::DigestAlgorithm;
use signet_core::audit::{Action, AuditReceipt, BuildInfo};
use signet_core::cert::{
    CaRecord, CertKind, CertStore, CertificateRecord, KeyUsage, RevocationReason,
};
use signet_core::key::Key;
use signet_core::policy::Operation;
use signet_core::principal::Principal;
use signet_core::service::{NewKey, RequestMeta, SigningService};
use signet_core::statement::{Statement, StatementKind};
use signet_core::{CoreError, ErrorCode};
use signet_formats::FormatError;
use signet_formats::{cms, pkix, tsp, x509};
use time::{Duration, OffsetDateTime};

/// The `[pki]` settings.
#[derive(Debug, Clone)]
pub struct PkiSettings {
    /// Base URL clients and relying parties reach this server at (CRL distribution points).
    pub public_url: String,
    /// Longest validity of a leaf certificate (CA/Browser Forum code signing: 460 days).
    pub max_validity_days: u32,
    /// The TSA policy OID put in every TSTInfo.
    pub tsa_policy: String,
    /// The accuracy the TSA claims, in seconds.
    pub tsa_accuracy_seconds: u32,
}

/// How long a generated CRL is served before a new one is signed (sooner after a revocation).
const CRL_REFRESH: Duration = Duration::hours(1);
/// A CRL's nextUpdate after its thisUpdate.
const CRL_LIFETIME: Duration = Duration::days(7);
/// Certificates are back-dated this much against clock skew between machines.
const BACKDATE: Duration = Duration::minutes(5);

struct CachedCrl {
    der: Vec<u8>,
    revoked: Vec<String>,
    made_at: OffsetDateTime,
}

/// The built-in TSA: its key, certificate and chain.
#[derive(Debug, Clone)]
pub struct Tsa {
    pub key: Key,
    pub certificate: CertificateRecord,
}

/// An internal CA with its two certificates.
#[derive(Debug, Clone)]
pub struct CaView {
    pub ca: CaRecord,
    pub root: CertificateRecord,
    pub issuing: CertificateRecord,
    pub crl_url: String,
}

/// A CMS signature made.
#[derive(Debug, Clone)]
pub struct CmsSigned {
    pub key: String,
    pub key_version: u32,
    pub cms: Vec<u8>,
    pub chain: Vec<Vec<u8>>,
    pub log: AuditReceipt,
}

/// What to create a CA with.
#[derive(Debug, Clone, Default)]
pub struct NewCa {
    pub name: String,
    pub algorithm: Option<String>,
    pub backend: Option<String>,
    pub organization: Option<String>,
    pub root_validity_days: Option<u32>,
    pub issuing_validity_days: Option<u32>,
}

/// What to set the TSA up with.
#[derive(Debug, Clone, Copy)]
pub struct NewTsa<'a> {
    /// The internal CA issuing its certificate.
    pub ca: &'a str,
    pub key: Option<&'a str>,
    pub algorithm: Option<&'a str>,
    pub backend: Option<&'a str>,
    pub subject: Option<&'a str>,
}

/// A CMS request.
#[derive(Debug, Clone)]
pub struct CmsRequest {
    pub key: String,
    pub digest: Digest,
    pub artifact_name: Option<String>,
    pub reason: Option<String>,
    pub build: Option<BuildInfo>,
    pub timestamp: bool,
}

pub struct Pki {
    service: Arc<SigningService>,
    settings: PkiSettings,
    /// `settings.public_url`, or the address the server bound when none is configured.
    public_url: std::sync::RwLock<String>,
    crls: Mutex<HashMap<String, CachedCrl>>,
}

impl Pki {
    pub fn new(service: Arc<SigningService>, settings: PkiSettings) -> Self {
        Pki {
            service,
            public_url: std::sync::RwLock::new(settings.public_url.clone()),
            settings,
            crls: Mutex::new(HashMap::new()),
        }
    }

    pub fn settings(&self) -> &PkiSettings {
        &self.settings
    }

    /// Refuses changes while sealed: the sealed audit log could not record them.
    fn check_unsealed(&self) -> Result<(), CoreError> {
        // INVARIANT: no state change the sealed log could not record.
        if self.service.is_sealed() {
            return Err(CoreError::sealed());
        }
        Ok(())
    }

    /// Refuses an algorithm X.509 and CMS cannot carry before any key is made for it.
    fn check_x509_algorithm(algorithm: &str) -> Result<(), CoreError> {
        let alg: signet_core::Algorithm = algorithm.parse()?;
        pkix::signature_algorithm(alg).map(|_| ()).map_err(bad)
    }

    /// Replaces the default public URL with the address the server actually bound (a
    /// configured `[pki] public_url` is never replaced: serve only calls this without one).
    pub fn set_public_url(&self, url: String) {
        if let Ok(mut u) = self.public_url.write() {
            *u = url;
        }
    }

    fn public_url(&self) -> String {
        self.public_url
            .read()
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|_| self.settings.public_url.clone())
    }

    fn store(&self) -> &dyn CertStore {
        self.service.certs()
    }

    fn now(&self) -> OffsetDateTime {
        whole_seconds(self.service.clock().now())
    }

    pub fn crl_url(&self, ca: &str) -> String {
        format!("{}/api/v1/cas/{ca}/crl", self.public_url())
    }

    pub fn tsa_url(&self) -> String {
        format!("{}/tsa", self.public_url())
    }

    // ---- CAs --------------------------------------------------------------------------------

    /// Creates an internal CA: a root and an issuing key (ordinary Signet keys with usage
    /// `certificate_authority`, in any backend), a self-signed root certificate and the issuing
    /// CA's certificate.
    pub async fn create_ca(
        &self,
        who: &Principal,
        new: &NewCa,
        meta: &RequestMeta,
    ) -> Result<CaView, CoreError> {
        self.check_unsealed()?;
        self.service
            .authorize_recorded(who, Operation::AdministerKeys, Action::CaCreate, None, meta)
            .await?;
        let result = self.create_ca_inner(who, new, meta).await;
        self.service
            .record_admin(who, Action::CaCreate, None, Some(&new.name), meta, result)
            .await
    }

    async fn create_ca_inner(
        &self,
        who: &Principal,
        new: &NewCa,
        meta: &RequestMeta,
    ) -> Result<CaView, CoreError> {
        let name = signet_core::key::KeyName::parse(&new.name)?;
        let (root_name, issuing_name) = (format!("{name}-root"), format!("{name}-issuing"));
        signet_core::key::KeyName::parse(&issuing_name)?;
        if self.store().get_ca(name.as_str()).await?.is_some() {
            return Err(CoreError::new(
                ErrorCode::Conflict,
                format!("CA `{name}` exists; pick another name or use it"),
            ));
        }
        let subject = |cn: String| match &new.organization {
            Some(org) if !org.trim().is_empty() => format!("CN={cn},{}", org.trim()),
            _ => format!("CN={cn}"),
        };
        let root_subject = subject(format!("{name} Root CA"));
        let issuing_subject = subject(format!("{name} Issuing CA"));
        let root_days = new.root_validity_days.unwrap_or(3650).clamp(1, 36_500);
        let issuing_days = new
            .issuing_validity_days
            .unwrap_or(1825)
            .clamp(1, root_days);
        let algorithm = new.algorithm.as_deref().unwrap_or("ecdsa-p384");
        Self::check_x509_algorithm(algorithm)?;
        let mut keys = Vec::new();
        for key_name in [&root_name, &issuing_name] {
            let key = self
                .service
                .create_key_with(
                    who,
                    &NewKey {
                        name: key_name,
                        algorithm,
                        backend: new.backend.as_deref(),
                        adopt: None,
                        usage: KeyUsage::CertificateAuthority,
                    },
                    meta,
                )
                .await?;
            // Fail before signing anything if the algorithm cannot sign X.509.
            pkix::signature_algorithm(key.algorithm).map_err(bad)?;
            keys.push(key);
        }
        let [root_key, issuing_key] = <[Key; 2]>::try_from(keys)
            .map_err(|_| CoreError::new(ErrorCode::Internal, "CA keys were not created"))?;
        let nb = self.now() - BACKDATE;
        let root = self
            .issue_inner(
                who,
                &root_key,
                &root_key,
                None,
                x509::Profile::RootCa,
                CertKind::RootCa,
                &root_subject,
                (nb, nb + Duration::days(root_days.into())),
                None,
                Some(name.as_str()),
                meta,
            )
            .await?;
        let issuing = self
            .issue_inner(
                who,
                &issuing_key,
                &root_key,
                Some(&root),
                x509::Profile::IssuingCa,
                CertKind::IssuingCa,
                &issuing_subject,
                (nb, nb + Duration::days(issuing_days.into())),
                None,
                Some(name.as_str()),
                meta,
            )
            .await?;
        let ca = CaRecord {
            name: name.as_str().to_owned(),
            root_key: root_name,
            issuing_key: issuing_name,
            root_certificate: root.id.clone(),
            issuing_certificate: issuing.id.clone(),
            created_at: self.service.clock().now(),
        };
        self.store().create_ca(&ca).await?;
        Ok(CaView {
            crl_url: self.crl_url(&ca.name),
            ca,
            root,
            issuing,
        })
    }

    pub async fn list_cas(&self, who: &Principal) -> Result<Vec<CaView>, CoreError> {
        self.service.allow(who, Operation::ReadKeys)?;
        let mut out = Vec::new();
        for ca in self.store().list_cas().await? {
            out.push(self.view(ca).await?);
        }
        Ok(out)
    }

    pub async fn get_ca(&self, who: &Principal, name: &str) -> Result<CaView, CoreError> {
        self.service.allow(who, Operation::ReadKeys)?;
        let ca = self.find_ca(name).await?;
        self.view(ca).await
    }

    async fn find_ca(&self, name: &str) -> Result<CaRecord, CoreError> {
        self.store().get_ca(name).await?.ok_or_else(|| {
            CoreError::new(
                ErrorCode::CaNotFound,
                format!(
                    "no CA `{}`; list them with `signet ca list` or create one with `signet ca create`",
                    short(name)
                ),
            )
        })
    }

    async fn view(&self, ca: CaRecord) -> Result<CaView, CoreError> {
        let root = self.certificate(&ca.root_certificate).await?;
        let issuing = self.certificate(&ca.issuing_certificate).await?;
        Ok(CaView {
            crl_url: self.crl_url(&ca.name),
            ca,
            root,
            issuing,
        })
    }

    async fn certificate(&self, id: &str) -> Result<CertificateRecord, CoreError> {
        self.store().get_certificate(id).await?.ok_or_else(|| {
            CoreError::new(
                ErrorCode::CertificateNotFound,
                format!(
                    "no certificate `{}`; list them with `signet cert list`",
                    short(id)
                ),
            )
        })
    }

    // ---- certificates -------------------------------------------------------------------------

    /// Has the internal CA `ca` issue a code-signing certificate for the current version of
    /// `key_name`.
    pub async fn issue(
        &self,
        who: &Principal,
        key_name: &str,
        ca: &str,
        subject: &str,
        validity_days: Option<u32>,
        meta: &RequestMeta,
    ) -> Result<CertificateRecord, CoreError> {
        self.check_unsealed()?;
        self.service
            .authorize_recorded(
                who,
                Operation::AdministerKeys,
                Action::CertificateIssue,
                Some(key_name),
                meta,
            )
            .await?;
        let key = self.service.key_for_reading(who, key_name).await?;
        let (profile, kind) = match key.usage {
            KeyUsage::Signing => (x509::Profile::CodeSigning, CertKind::CodeSigning),
            KeyUsage::Timestamping => (x509::Profile::Timestamping, CertKind::Timestamping),
            KeyUsage::CertificateAuthority => {
                return Err(CoreError::new(
                    ErrorCode::WrongKeyUsage,
                    format!(
                        "key `{}` belongs to a CA; its certificates are made by `signet ca create`",
                        key.name
                    ),
                ));
            }
        };
        self.issue_leaf(who, &key, ca, subject, validity_days, profile, kind, meta)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn issue_leaf(
        &self,
        who: &Principal,
        key: &Key,
        ca: &str,
        subject: &str,
        validity_days: Option<u32>,
        profile: x509::Profile,
        kind: CertKind,
        meta: &RequestMeta,
    ) -> Result<CertificateRecord, CoreError> {
        let ca = self.find_ca(ca).await?;
        let issuing_key = self.service.key_for_reading(who, &ca.issuing_key).await?;
        let issuing = self.certificate(&ca.issuing_certificate).await?;
        let max = self.settings.max_validity_days;
        let days = validity_days.unwrap_or(max);
        if days == 0 || days > max {
            return Err(CoreError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "validity of `{days}` days is outside 1..={max}; ask for fewer days (the limit is `[pki] max_validity_days`)"
                ),
            ));
        }
        let nb = self.now() - BACKDATE;
        let na = (nb + Duration::days(days.into())).min(issuing.not_after);
        if na <= nb {
            return Err(CoreError::new(
                ErrorCode::CertificateRequired,
                format!(
                    "the issuing certificate of CA `{}` has expired; create a new CA",
                    ca.name
                ),
            ));
        }
        let crl = self.crl_url(&ca.name);
        self.issue_inner(
            who,
            key,
            &issuing_key,
            Some(&issuing),
            profile,
            kind,
            subject,
            (nb, na),
            Some(&crl),
            Some(&ca.name),
            meta,
        )
        .await
    }

    /// Builds, signs (through the audited pipeline) and stores one certificate.
    #[allow(clippy::too_many_arguments)]
    async fn issue_inner(
        &self,
        who: &Principal,
        subject_key: &Key,
        issuer_key: &Key,
        issuer: Option<&CertificateRecord>,
        profile: x509::Profile,
        kind: CertKind,
        subject: &str,
        (not_before, not_after): (OffsetDateTime, OffsetDateTime),
        crl_url: Option<&str>,
        ca: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<CertificateRecord, CoreError> {
        let version = current(subject_key)?;
        let serial = x509::serial_from_random(self.service.random_bytes::<16>()?);
        let tbs = x509::tbs_certificate(&x509::CertParams {
            profile,
            subject,
            subject_spki: &version.public_key_der,
            issuer: issuer.map(|c| c.der.as_slice()),
            signer: issuer_key.algorithm,
            serial: &serial,
            not_before,
            not_after,
            crl_url,
        })
        .map_err(bad)?;
        let input = pkix::to_be_signed(issuer_key.algorithm, &tbs).map_err(bad)?;
        let serial_hex = hex::encode(&serial);
        let signed = self
            .service
            .sign_statement(
                who,
                issuer_key.name.as_str(),
                Statement {
                    kind: StatementKind::Certificate,
                    input,
                    audit_digest: None,
                    summary: format!("{subject} (serial {serial_hex})"),
                    reason: None,
                    build: None,
                },
                meta,
            )
            .await?;
        let der = x509::assemble_certificate(&tbs, issuer_key.algorithm, &signed.signature)
            .map_err(internal)?;
        let info = x509::parse_certificate(&der).map_err(internal)?;
        let mut chain = Vec::new();
        if let Some(issuer) = issuer {
            chain.push(issuer.der.clone());
            chain.extend(issuer.chain.iter().cloned());
        }
        let record = CertificateRecord {
            id: hex::encode(self.service.random_bytes::<16>()?),
            key_id: subject_key.id.clone(),
            key_version: version.version,
            kind,
            serial: info.serial,
            subject: info.subject,
            issuer: info.issuer,
            ca: ca.map(str::to_owned),
            not_before: info.not_before,
            not_after: info.not_after,
            der,
            chain,
            created_at: self.service.clock().now(),
            revoked_at: None,
            revocation_reason: None,
        };
        self.store().insert_certificate(&record).await?;
        Ok(record)
    }

    /// A PKCS#10 request for the current version of `key_name`, signed by that key.
    pub async fn csr(
        &self,
        who: &Principal,
        key_name: &str,
        subject: &str,
        meta: &RequestMeta,
    ) -> Result<(u32, Vec<u8>), CoreError> {
        self.check_unsealed()?;
        self.service
            .authorize_recorded(
                who,
                Operation::AdministerKeys,
                Action::CsrCreate,
                Some(key_name),
                meta,
            )
            .await?;
        let key = self.service.key_for_reading(who, key_name).await?;
        let version = current(&key)?;
        let info = x509::csr_info(subject, &version.public_key_der).map_err(bad_subject)?;
        let input = pkix::to_be_signed(key.algorithm, &info).map_err(bad)?;
        let signed = self
            .service
            .sign_statement(
                who,
                key.name.as_str(),
                Statement {
                    kind: StatementKind::Csr,
                    input,
                    audit_digest: None,
                    summary: subject.to_owned(),
                    reason: None,
                    build: None,
                },
                meta,
            )
            .await?;
        let der = x509::assemble_csr(&info, key.algorithm, &signed.signature).map_err(internal)?;
        Ok((version.version, der))
    }

    /// Attaches a chain issued by an external CA to the key version whose public key it
    /// certifies, after checking it is well formed and currently valid.
    pub async fn import(
        &self,
        who: &Principal,
        key_name: &str,
        chain_pem: &str,
        meta: &RequestMeta,
    ) -> Result<CertificateRecord, CoreError> {
        self.check_unsealed()?;
        self.service
            .authorize_recorded(
                who,
                Operation::AdministerKeys,
                Action::CertificateImport,
                Some(key_name),
                meta,
            )
            .await?;
        let result = self.import_inner(who, key_name, chain_pem).await;
        let summary = result.as_ref().ok().map(|c| c.subject.clone());
        self.service
            .record_admin(
                who,
                Action::CertificateImport,
                Some(key_name),
                summary.as_deref(),
                meta,
                result,
            )
            .await
    }

    async fn import_inner(
        &self,
        who: &Principal,
        key_name: &str,
        chain_pem: &str,
    ) -> Result<CertificateRecord, CoreError> {
        let key = self.service.key_for_reading(who, key_name).await?;
        let chain = x509::parse_certificates(chain_pem.as_bytes()).map_err(mismatch)?;
        let leaf = chain
            .first()
            .ok_or_else(|| mismatch_msg("the chain is empty"))?;
        let leaf_info = x509::parse_certificate(leaf).map_err(mismatch)?;
        let version = key
            .versions
            .iter()
            .rev()
            .find(|v| v.public_key_der == leaf_info.spki_der)
            .ok_or_else(|| {
                mismatch_msg(&format!(
                    "the leaf certificate `{}` certifies another public key than any version of key `{}`; import the chain issued for this key's CSR (`signet cert csr {}`)",
                    short(&leaf_info.subject),
                    key.name,
                    key.name
                ))
            })?;
        let info = x509::check_chain(&version.public_key_der, &chain).map_err(mismatch)?;
        let fits = match key.usage {
            KeyUsage::Signing => !info.eku_present || info.eku_code_signing,
            KeyUsage::Timestamping => info.eku_time_stamping && info.eku_time_stamping_critical,
            KeyUsage::CertificateAuthority => false,
        };
        if !fits || info.is_ca || info.key_usage_digital_signature == Some(false) {
            return Err(mismatch_msg(&format!(
                "certificate `{}` is not for {} (check its basic constraints, key usage and extended key usage)",
                short(&info.subject),
                if key.usage == KeyUsage::Timestamping {
                    "time-stamping (EKU timeStamping, critical)"
                } else {
                    "code signing (EKU codeSigning, key usage digitalSignature)"
                }
            )));
        }
        let now = self.service.clock().now();
        if now > info.not_after || now < info.not_before {
            return Err(mismatch_msg(&format!(
                "certificate `{}` is valid from {} to {}, not now; import a current one",
                short(&info.subject),
                info.not_before,
                info.not_after
            )));
        }
        let record = CertificateRecord {
            id: hex::encode(self.service.random_bytes::<16>()?),
            key_id: key.id.clone(),
            key_version: version.version,
            kind: CertKind::Imported,
            serial: info.serial,
            subject: info.subject,
            issuer: info.issuer,
            ca: None,
            not_before: info.not_before,
            not_after: info.not_after,
            der: leaf.clone(),
            chain: chain[1..].to_vec(),
            created_at: now,
            revoked_at: None,
            revocation_reason: None,
        };
        self.store().insert_certificate(&record).await?;
        Ok(record)
    }

    /// Certificates with their key names, of one key or all.
    pub async fn list(
        &self,
        who: &Principal,
        key_name: Option<&str>,
    ) -> Result<Vec<(CertificateRecord, String)>, CoreError> {
        self.service.allow(who, Operation::ReadKeys)?;
        let keys = self.service.list_keys(who).await?;
        let names: HashMap<&str, &str> = keys
            .iter()
            .map(|k| (k.id.as_str(), k.name.as_str()))
            .collect();
        let key_id = match key_name {
            Some(n) => Some(self.service.key_for_reading(who, n).await?.id),
            None => None,
        };
        let certs = self.store().list_certificates(key_id.as_deref()).await?;
        Ok(certs
            .into_iter()
            .map(|c| {
                let name = names
                    .get(c.key_id.as_str())
                    .copied()
                    .unwrap_or("")
                    .to_owned();
                (c, name)
            })
            .collect())
    }

    pub async fn get(
        &self,
        who: &Principal,
        id: &str,
    ) -> Result<(CertificateRecord, String), CoreError> {
        self.service.allow(who, Operation::ReadKeys)?;
        let cert = self.certificate(id).await?;
        let name = self
            .service
            .list_keys(who)
            .await?
            .into_iter()
            .find(|k| k.id == cert.key_id)
            .map(|k| k.name.as_str().to_owned())
            .unwrap_or_default();
        Ok((cert, name))
    }

    pub async fn revoke(
        &self,
        who: &Principal,
        id: &str,
        reason: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<(CertificateRecord, String), CoreError> {
        self.check_unsealed()?;
        self.service
            .authorize_recorded(
                who,
                Operation::AdministerKeys,
                Action::CertificateRevoke,
                None,
                meta,
            )
            .await?;
        let result = async {
            let reason = match reason {
                Some(r) => RevocationReason::parse(r)?,
                None => RevocationReason::Unspecified,
            };
            let cert = self.certificate(id).await?;
            let now = self.service.clock().now();
            if !self
                .store()
                .revoke_certificate(&cert.id, now, reason)
                .await?
            {
                return Err(CoreError::new(
                    ErrorCode::Conflict,
                    format!("certificate `{}` is already revoked", short(id)),
                ));
            }
            if let Some(ca) = &cert.ca
                && let Ok(mut crls) = self.crls.lock()
            {
                crls.remove(ca);
            }
            self.get(who, id).await
        }
        .await;
        let summary = result
            .as_ref()
            .ok()
            .map(|(c, _)| format!("{} (serial {})", c.subject, c.serial));
        let key_name = result.as_ref().ok().map(|(_, k)| k.clone());
        self.service
            .record_admin(
                who,
                Action::CertificateRevoke,
                key_name.as_deref(),
                summary.as_deref().or(Some(short(id).as_str())),
                meta,
                result,
            )
            .await
    }

    /// The CRL of the certificates CA `name` issued (DER), signed by its issuing key. A new one
    /// is signed after a revocation, or when the served one is over an hour old.
    pub async fn crl(&self, name: &str, meta: &RequestMeta) -> Result<Vec<u8>, CoreError> {
        let ca = self.find_ca(name).await?;
        let mut revoked: Vec<CertificateRecord> = self
            .store()
            .list_certificates(None)
            .await?
            .into_iter()
            .filter(|c| c.ca.as_deref() == Some(name) && c.revoked_at.is_some())
            .filter(|c| c.kind != CertKind::RootCa && c.kind != CertKind::IssuingCa)
            .collect();
        revoked.sort_by(|a, b| a.serial.cmp(&b.serial));
        let serials: Vec<String> = revoked.iter().map(|c| c.serial.clone()).collect();
        let now = self.service.clock().now();
        if let Ok(crls) = self.crls.lock()
            && let Some(c) = crls.get(name)
            && c.revoked == serials
            && now - c.made_at < CRL_REFRESH
        {
            return Ok(c.der.clone());
        }
        let issuing = self.certificate(&ca.issuing_certificate).await?;
        let system = Principal::system();
        let issuing_key = self.service.internal_key(&ca.issuing_key).await?;
        let number = self.store().next_crl_number(name).await?;
        let this_update = whole_seconds(now);
        let entries: Vec<x509::Revoked<'_>> = revoked
            .iter()
            .map(|c| x509::Revoked {
                serial_hex: &c.serial,
                revoked_at: whole_seconds(c.revoked_at.unwrap_or(now)),
                reason_code: c.revocation_reason.map_or(0, |r| r.code()),
            })
            .collect();
        let tbs = x509::tbs_crl(
            &issuing.der,
            issuing_key.algorithm,
            this_update,
            this_update + CRL_LIFETIME,
            number,
            &entries,
        )
        .map_err(internal)?;
        let input = pkix::to_be_signed(issuing_key.algorithm, &tbs).map_err(internal)?;
        let signed = self
            .service
            .sign_statement(
                &system,
                &ca.issuing_key,
                Statement {
                    kind: StatementKind::Crl,
                    input,
                    audit_digest: None,
                    summary: format!("CRL {number} of CA {name} ({} revoked)", entries.len()),
                    reason: None,
                    build: None,
                },
                meta,
            )
            .await?;
        let der =
            x509::assemble_crl(&tbs, issuing_key.algorithm, &signed.signature).map_err(internal)?;
        if let Ok(mut crls) = self.crls.lock() {
            crls.insert(
                name.to_owned(),
                CachedCrl {
                    der: der.clone(),
                    revoked: serials,
                    made_at: now,
                },
            );
        }
        Ok(der)
    }

    // ---- time-stamping -------------------------------------------------------------------------

    /// Sets up the built-in TSA: a key with usage `timestamping` and a certificate with EKU
    /// timeStamping (critical) from an internal CA. There is one TSA per server.
    pub async fn create_tsa(
        &self,
        who: &Principal,
        new: &NewTsa<'_>,
        meta: &RequestMeta,
    ) -> Result<Tsa, CoreError> {
        self.check_unsealed()?;
        let NewTsa {
            ca,
            key: key_name,
            algorithm,
            backend,
            subject,
        } = *new;
        self.service
            .authorize_recorded(
                who,
                Operation::AdministerKeys,
                Action::CertificateIssue,
                key_name,
                meta,
            )
            .await?;
        if let Some(existing) = self.tsa_key(who).await? {
            return Err(CoreError::new(
                ErrorCode::Conflict,
                format!(
                    "the TSA is already set up with key `{}`; see `signet tsa show`",
                    existing.name
                ),
            ));
        }
        self.find_ca(ca).await?;
        Self::check_x509_algorithm(algorithm.unwrap_or("ecdsa-p256"))?;
        let key = self
            .service
            .create_key_with(
                who,
                &NewKey {
                    name: key_name.unwrap_or("tsa"),
                    algorithm: algorithm.unwrap_or("ecdsa-p256"),
                    backend,
                    adopt: None,
                    usage: KeyUsage::Timestamping,
                },
                meta,
            )
            .await?;
        let certificate = self
            .issue_leaf(
                who,
                &key,
                ca,
                subject.unwrap_or("CN=Signet Time-Stamping Authority"),
                None,
                x509::Profile::Timestamping,
                CertKind::Timestamping,
                meta,
            )
            .await?;
        Ok(Tsa { key, certificate })
    }

    async fn tsa_key(&self, who: &Principal) -> Result<Option<Key>, CoreError> {
        let _ = who;
        Ok(self
            .service
            .internal_keys()
            .await?
            .into_iter()
            .find(|k| k.usage == KeyUsage::Timestamping))
    }

    /// The TSA with a certificate valid now, or `tsa_not_configured`.
    pub async fn tsa(&self) -> Result<Tsa, CoreError> {
        let not_configured = |why: &str| {
            CoreError::new(
                ErrorCode::TsaNotConfigured,
                format!(
                    "the built-in time-stamping authority {why}; an admin sets it up with `signet tsa create --ca-name NAME`"
                ),
            )
        };
        let key = self
            .tsa_key(&Principal::system())
            .await?
            .ok_or_else(|| not_configured("is not set up"))?;
        let now = self.service.clock().now();
        let certificate = self
            .store()
            .list_certificates(Some(&key.id))
            .await?
            .into_iter()
            .find(|c| c.key_version == key.current_version && c.is_valid_at(now))
            .ok_or_else(|| not_configured("has no valid certificate"))?;
        Ok(Tsa { key, certificate })
    }

    /// Answers an RFC 3161 query (DER). Returns the HTTP status and a TimeStampResp (DER):
    /// granted with a token, or a rejection whose failInfo says why.
    pub async fn timestamp_query(
        &self,
        who: &Principal,
        query: &[u8],
        meta: &RequestMeta,
    ) -> (u16, Vec<u8>) {
        let reject = |status: u16, failure: tsp::FailureInfo, text: &str| {
            (
                status,
                tsp::response_rejected(failure, text).unwrap_or_default(),
            )
        };
        let q = match tsp::parse_query(query) {
            Ok(q) => q,
            Err(e) => return reject(400, e.failure, &e.message),
        };
        if let Some(policy) = &q.policy
            && policy != &self.settings.tsa_policy
        {
            return reject(
                400,
                tsp::FailureInfo::UnacceptedPolicy,
                &format!(
                    "policy `{}` is not this TSA's; ask for `{}` or none",
                    short(policy),
                    self.settings.tsa_policy
                ),
            );
        }
        match self.timestamp(who, &q, meta).await {
            Ok(token) => match tsp::response_granted(&token) {
                Ok(resp) => (200, resp),
                Err(_) => reject(500, tsp::FailureInfo::SystemFailure, "internal error"),
            },
            Err(e) => {
                let status = crate::error::status_of(e.code).as_u16();
                let text = if e.is_client_error() {
                    e.message.clone()
                } else {
                    tracing::error!(code = e.code.as_str(), error = %e, "time-stamp failed");
                    "internal error".to_owned()
                };
                reject(status, tsp::FailureInfo::SystemFailure, &text)
            }
        }
    }

    /// Makes an RFC 3161 token for a query, signed by the TSA key through the audited pipeline.
    pub async fn timestamp(
        &self,
        who: &Principal,
        q: &tsp::TimeStampQuery,
        meta: &RequestMeta,
    ) -> Result<Vec<u8>, CoreError> {
        let tsa = self.tsa().await?;
        let imprint = Digest::new(q.digest_algorithm, q.imprint.clone())?;
        let mut serial = Vec::new();
        // INVARIANT: serial numbers are unique across restarts and nodes (RFC 3161 §2.4.2): each
        // is recorded before use, and a collision draws again.
        for _ in 0..3 {
            let candidate = x509::serial_from_random(self.service.random_bytes::<16>()?);
            let now = self.service.clock().now();
            match self
                .store()
                .record_timestamp_serial(&hex::encode(&candidate), now)
                .await
            {
                Ok(()) => {
                    serial = candidate;
                    break;
                }
                Err(e) if e.code == ErrorCode::Conflict => continue,
                Err(e) => return Err(e),
            }
        }
        if serial.is_empty() {
            return Err(CoreError::new(
                ErrorCode::Internal,
                "could not draw an unused time-stamp serial number",
            ));
        }
        let gen_time = self.now();
        let tst = tsp::tst_info(&tsp::TstInfoParams {
            policy: &self.settings.tsa_policy,
            serial: &serial,
            gen_time,
            accuracy: Some(tsp::Accuracy {
                seconds: self.settings.tsa_accuracy_seconds,
                millis: 0,
                micros: 0,
            }),
            query: q,
            tsa_name: Some(&tsa.certificate.der),
        })
        .map_err(internal)?;
        let pending = cms::timestamp_token(
            &tst,
            &cms::Signer {
                certificate: &tsa.certificate.der,
                chain: &tsa.certificate.chain,
                algorithm: tsa.key.algorithm,
            },
            q.cert_req,
        )
        .map_err(internal)?;
        let input =
            pkix::to_be_signed(tsa.key.algorithm, pending.signed_attributes()).map_err(internal)?;
        let signed = self
            .service
            .sign_statement(
                who,
                tsa.key.name.as_str(),
                Statement {
                    kind: StatementKind::Timestamp,
                    input,
                    audit_digest: Some(imprint),
                    summary: format!("time-stamp serial {}", hex::encode(&serial)),
                    reason: None,
                    build: None,
                },
                meta,
            )
            .await?;
        pending.finish(&signed.signature, None).map_err(internal)
    }

    /// A token over a signature value (imprint = SHA-256 of it), with certificates.
    pub async fn timestamp_signature(
        &self,
        who: &Principal,
        signature: &[u8],
        meta: &RequestMeta,
    ) -> Result<Vec<u8>, CoreError> {
        use sha2::Digest as _;
        let q = tsp::TimeStampQuery {
            digest_algorithm: DigestAlgorithm::Sha256,
            imprint: sha2::Sha256::digest(signature).to_vec(),
            policy: None,
            nonce: None,
            cert_req: true,
        };
        self.timestamp(who, &q, meta).await
    }

    /// The valid certificate of a key's signing version with its chain (leaf first), if any.
    pub async fn chain_of(&self, key: &Key) -> Result<Vec<Vec<u8>>, CoreError> {
        let now = self.service.clock().now();
        Ok(self
            .store()
            .list_certificates(Some(&key.id))
            .await?
            .into_iter()
            .find(|c| c.key_version == key.current_version && c.is_valid_at(now))
            .map(|c| {
                let mut chain = vec![c.der];
                chain.extend(c.chain);
                chain
            })
            .unwrap_or_default())
    }

    /// What goes with signatures just made: the signing version's certificate chain, and a
    /// time-stamp token per signature when the key's policy requires one.
    pub async fn attach(
        &self,
        who: &Principal,
        signatures: &[signet_core::service::Signature],
        meta: &RequestMeta,
    ) -> Result<(Vec<Vec<u8>>, Vec<Option<Vec<u8>>>), CoreError> {
        let Some(first) = signatures.first() else {
            return Ok((Vec::new(), Vec::new()));
        };
        let key = self.service.internal_key(&first.key).await?;
        let chain = if key.current_version == first.key_version {
            self.chain_of(&key).await?
        } else {
            Vec::new()
        };
        let mut tokens = Vec::with_capacity(signatures.len());
        for s in signatures {
            tokens.push(if key.policy.require_timestamp {
                Some(self.timestamp_signature(who, &s.signature, meta).await?)
            } else {
                None
            });
        }
        Ok((chain, tokens))
    }

    /// `(key, kind, serial, seconds to expiry)` of every unrevoked certificate, for `/metrics`.
    pub async fn expiries(&self) -> Result<Vec<(String, String, String, i64)>, CoreError> {
        let now = self.service.clock().now();
        let keys = self.service.internal_keys().await?;
        let names: HashMap<&str, &str> = keys
            .iter()
            .map(|k| (k.id.as_str(), k.name.as_str()))
            .collect();
        Ok(self
            .store()
            .list_certificates(None)
            .await?
            .into_iter()
            .filter(|c| c.revoked_at.is_none())
            .map(|c| {
                (
                    names
                        .get(c.key_id.as_str())
                        .copied()
                        .unwrap_or("")
                        .to_owned(),
                    c.kind.as_str().to_owned(),
                    c.serial,
                    (c.not_after - now).whole_seconds(),
                )
            })
            .collect())
    }

    // ---- CMS -------------------------------------------------------------------------------------

    /// A detached CMS SignedData over the client's artifact digest, with the signer's
    /// certificate chain and, when asked or required by the key's policy, a time-stamp token.
    pub async fn sign_cms(
        &self,
        who: &Principal,
        req: CmsRequest,
        meta: &RequestMeta,
    ) -> Result<CmsSigned, CoreError> {
        let key = self.service.key_for_reading(who, &req.key).await?;
        let chain = self.chain_of(&key).await?;
        let Some((certificate, issuers)) = chain.split_first() else {
            return Err(CoreError::new(
                ErrorCode::CertificateRequired,
                format!(
                    "key `{}` has no valid certificate and a CMS signature carries one; issue one with `signet cert issue {} --ca-name NAME --subject CN=...` or import one",
                    key.name, key.name
                ),
            ));
        };
        let pending = cms::detached(
            &req.digest,
            self.now(),
            &cms::Signer {
                certificate,
                chain: issuers,
                algorithm: key.algorithm,
            },
        )
        .map_err(bad)?;
        let input = pkix::to_be_signed(key.algorithm, pending.signed_attributes()).map_err(bad)?;
        let signed = self
            .service
            .sign_statement(
                who,
                key.name.as_str(),
                Statement {
                    kind: StatementKind::Cms,
                    input,
                    audit_digest: Some(req.digest.clone()),
                    summary: req.artifact_name.clone().unwrap_or_else(|| "cms".into()),
                    reason: req.reason.clone(),
                    build: req.build.clone(),
                },
                meta,
            )
            .await?;
        let token = if req.timestamp || signed.key.policy.require_timestamp {
            Some(
                self.timestamp_signature(who, &signed.signature, meta)
                    .await?,
            )
        } else {
            None
        };
        let cms = pending
            .finish(&signed.signature, token.as_deref())
            .map_err(internal)?;
        Ok(CmsSigned {
            key: signed.key.name.as_str().to_owned(),
            key_version: signed.key.current_version,
            cms,
            chain,
            log: signed.log,
        })
    }
}

fn current(key: &Key) -> Result<&signet_core::key::KeyVersion, CoreError> {
    key.current().ok_or_else(|| {
        CoreError::new(
            ErrorCode::Internal,
            format!("key `{}` has no version {}", key.name, key.current_version),
        )
    })
}

fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

fn short(s: &str) -> String {
    signet_core::algorithm::truncate(s, 80)
}

/// A format error caused by the request (a bad subject, an algorithm X.509 cannot carry).
fn bad(e: FormatError) -> CoreError {
    match e {
        FormatError::Unsupported(m) => CoreError::new(ErrorCode::UnsupportedAlgorithm, m),
        other => CoreError::new(ErrorCode::InvalidRequest, other.to_string()),
    }
}

fn bad_subject(e: FormatError) -> CoreError {
    CoreError::new(ErrorCode::InvalidRequest, e.to_string())
}

/// A format error on something Signet built itself: a bug, never the caller's fault.
fn internal(e: FormatError) -> CoreError {
    CoreError::new(
        ErrorCode::Internal,
        format!("building a structure Signet signs failed: {e}"),
    )
}

fn mismatch(e: FormatError) -> CoreError {
    CoreError::new(ErrorCode::CertificateMismatch, e.to_string())
}

fn mismatch_msg(m: &str) -> CoreError {
    CoreError::new(ErrorCode::CertificateMismatch, m.to_owned())
}
