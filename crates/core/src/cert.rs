//! Certificates Signet manages for its keys, the internal certificate authorities that issue
//! them, and the records that keep serial numbers unique: domain types and the [`CertStore`]
//! plug-in trait. Building and parsing X.509, CRLs and time-stamp tokens is format work and
//! lives in `signet-formats`; this module holds only what is stored and decided about them.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{CoreError, ErrorCode};

/// What a key is for. Keys of a certificate authority or the time-stamping authority sign only
/// structures Signet composes itself (certificates, CRLs, CSRs, time-stamp tokens), never a
/// client's digest: a CA key that signed arbitrary digests could forge certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum KeyUsage {
    /// Signs clients' digests through the signing API.
    #[default]
    Signing,
    /// The root or issuing key of an internal CA.
    CertificateAuthority,
    /// The time-stamping authority's key (RFC 3161).
    Timestamping,
}

impl KeyUsage {
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyUsage::Signing => "signing",
            KeyUsage::CertificateAuthority => "certificate_authority",
            KeyUsage::Timestamping => "timestamping",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "signing" => Some(KeyUsage::Signing),
            "certificate_authority" => Some(KeyUsage::CertificateAuthority),
            "timestamping" => Some(KeyUsage::Timestamping),
            _ => None,
        }
    }
}

/// Rules attached to a key that the signing pipeline enforces. The identity and policy issue
/// extends this with windows, limits and required CI claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeyPolicy {
    /// The signing version must have a certificate that is currently valid and not revoked.
    pub require_certificate: bool,
    /// Every signature gets an RFC 3161 time-stamp token from the built-in TSA.
    pub require_timestamp: bool,
}

/// What role a certificate plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertKind {
    /// Self-signed root of an internal CA.
    RootCa,
    /// Intermediate that issues leaf certificates.
    IssuingCa,
    /// Leaf with EKU codeSigning, issued by an internal CA.
    CodeSigning,
    /// Leaf with EKU timeStamping (critical), for the built-in TSA.
    Timestamping,
    /// Issued by an external CA and imported with its chain.
    Imported,
}

impl CertKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            CertKind::RootCa => "root_ca",
            CertKind::IssuingCa => "issuing_ca",
            CertKind::CodeSigning => "code_signing",
            CertKind::Timestamping => "timestamping",
            CertKind::Imported => "imported",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "root_ca" => Some(CertKind::RootCa),
            "issuing_ca" => Some(CertKind::IssuingCa),
            "code_signing" => Some(CertKind::CodeSigning),
            "timestamping" => Some(CertKind::Timestamping),
            "imported" => Some(CertKind::Imported),
            _ => None,
        }
    }
}

/// CRLReason (RFC 5280 §5.3.1). Only the reasons that apply to Signet's certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationReason {
    Unspecified,
    KeyCompromise,
    CaCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
}

impl RevocationReason {
    pub const ALL: [RevocationReason; 6] = [
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::CaCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "key_compromise",
            RevocationReason::CaCompromise => "ca_compromise",
            RevocationReason::AffiliationChanged => "affiliation_changed",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessation_of_operation",
        }
    }

    /// The CRLReason code (RFC 5280 §5.3.1).
    pub const fn code(self) -> u8 {
        match self {
            RevocationReason::Unspecified => 0,
            RevocationReason::KeyCompromise => 1,
            RevocationReason::CaCompromise => 2,
            RevocationReason::AffiliationChanged => 3,
            RevocationReason::Superseded => 4,
            RevocationReason::CessationOfOperation => 5,
        }
    }

    pub fn parse(s: &str) -> Result<Self, CoreError> {
        let wanted = s.trim().replace('-', "_");
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == wanted)
            .ok_or_else(|| {
                CoreError::new(
                    ErrorCode::InvalidRequest,
                    format!(
                        "unknown revocation reason `{}`; use one of: {}",
                        crate::algorithm::truncate(s, 40),
                        Self::ALL.map(|r| r.as_str()).join(", ")
                    ),
                )
            })
    }
}

/// A certificate attached to a key version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRecord {
    /// Random id, used in the API.
    pub id: String,
    pub key_id: String,
    pub key_version: u32,
    pub kind: CertKind,
    /// The serial number, lowercase hex of the DER INTEGER's content octets.
    pub serial: String,
    /// Subject and issuer as RFC 4514 strings.
    pub subject: String,
    pub issuer: String,
    /// The internal CA that issued it; `None` when imported or self-signed outside a CA.
    pub ca: Option<String>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// Its issuers, DER, nearest first, up to and including the root.
    pub chain: Vec<Vec<u8>>,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    pub revocation_reason: Option<RevocationReason>,
}

impl CertificateRecord {
    /// Valid at `now`: inside its validity period and not revoked.
    pub fn is_valid_at(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none() && self.not_before <= now && now <= self.not_after
    }
}

/// An internal certificate authority: a root key and an issuing key, both ordinary Signet keys
/// (any backend) with usage [`KeyUsage::CertificateAuthority`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaRecord {
    pub name: String,
    /// Key names.
    pub root_key: String,
    pub issuing_key: String,
    /// Certificate ids.
    pub root_certificate: String,
    pub issuing_certificate: String,
    pub created_at: OffsetDateTime,
}

/// Where certificates, CAs, CRL numbers and time-stamp serial numbers are kept.
#[async_trait]
pub trait CertStore: Send + Sync {
    /// Stores a certificate. Fails with `conflict` if its issuer already used the serial.
    async fn insert_certificate(&self, cert: &CertificateRecord) -> Result<(), CoreError>;

    async fn get_certificate(&self, id: &str) -> Result<Option<CertificateRecord>, CoreError>;

    /// Every certificate, or those of one key, newest first.
    async fn list_certificates(
        &self,
        key_id: Option<&str>,
    ) -> Result<Vec<CertificateRecord>, CoreError>;

    /// Marks a certificate revoked; `false` if it does not exist or is already revoked.
    async fn revoke_certificate(
        &self,
        id: &str,
        at: OffsetDateTime,
        reason: RevocationReason,
    ) -> Result<bool, CoreError>;

    /// Stores a CA. Fails with `conflict` if the name is taken.
    async fn create_ca(&self, ca: &CaRecord) -> Result<(), CoreError>;

    async fn get_ca(&self, name: &str) -> Result<Option<CaRecord>, CoreError>;

    async fn list_cas(&self) -> Result<Vec<CaRecord>, CoreError>;

    /// The next CRL number of a CA (RFC 5280 §5.2.3: monotonically increasing), 1 for the
    /// first CRL; survives restarts.
    async fn next_crl_number(&self, ca: &str) -> Result<u64, CoreError>;

    /// Records a time-stamp token's serial number. Fails with `conflict` if it was used before,
    /// so serials stay unique across restarts and nodes (RFC 3161 §2.4.2).
    async fn record_timestamp_serial(
        &self,
        serial: &str,
        at: OffsetDateTime,
    ) -> Result<(), CoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for u in [
            KeyUsage::Signing,
            KeyUsage::CertificateAuthority,
            KeyUsage::Timestamping,
        ] {
            assert_eq!(KeyUsage::parse(u.as_str()), Some(u));
        }
        for k in [
            CertKind::RootCa,
            CertKind::IssuingCa,
            CertKind::CodeSigning,
            CertKind::Timestamping,
            CertKind::Imported,
        ] {
            assert_eq!(CertKind::parse(k.as_str()), Some(k));
        }
        for r in RevocationReason::ALL {
            assert_eq!(RevocationReason::parse(r.as_str()).ok(), Some(r));
        }
        assert_eq!(
            RevocationReason::parse("key-compromise").ok(),
            Some(RevocationReason::KeyCompromise)
        );
        assert!(RevocationReason::parse("because").is_err());
    }

    #[test]
    fn validity_is_inclusive_and_revocation_ends_it() {
        let t = OffsetDateTime::UNIX_EPOCH + time::Duration::days(10_000);
        let mut c = CertificateRecord {
            id: "c".into(),
            key_id: "k".into(),
            key_version: 1,
            kind: CertKind::CodeSigning,
            serial: "01".into(),
            subject: "CN=a".into(),
            issuer: "CN=b".into(),
            ca: None,
            not_before: t,
            not_after: t + time::Duration::days(1),
            der: vec![],
            chain: vec![],
            created_at: t,
            revoked_at: None,
            revocation_reason: None,
        };
        assert!(c.is_valid_at(t));
        assert!(c.is_valid_at(c.not_after));
        assert!(!c.is_valid_at(t - time::Duration::nanoseconds(1)));
        assert!(!c.is_valid_at(c.not_after + time::Duration::nanoseconds(1)));
        c.revoked_at = Some(t);
        assert!(!c.is_valid_at(t));
    }
}
