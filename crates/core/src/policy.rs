//! Authorization: a pure function from (principal, operation) to a decision.
//!
//! Only this module can make an [`Authorized`] value, and the signing pipeline only signs an
//! `Authorized<_>` request: a code path that skips the decision does not compile. The identity
//! and policy issue puts a Cedar policy set behind this same facade; the rules below are the
//! built-in role model until then. Deny by default.

use crate::algorithm::Algorithm;
use crate::error::{CoreError, ErrorCode};
use crate::key::Key;
use crate::principal::{Principal, PrincipalKind, Role};

/// What a principal wants to do.
#[derive(Debug, Clone, Copy)]
pub enum Operation<'a> {
    ReadKeys,
    AdministerKeys,
    Sign {
        key: &'a Key,
    },
    AdministerTokens,
    ReadAudit,
    /// Seal the server, rotate the key-encryption key.
    Operate,
    /// Have the built-in TSA time-stamp an imprint (RFC 3161). The TSA key signs only the
    /// TSTInfo Signet composes, so this is open to anyone the HTTP layer lets through.
    Timestamp,
    /// Sign a CRL Signet composed from its own revocation records.
    PublishCrl,
}

impl Operation<'_> {
    pub const fn name(&self) -> &'static str {
        match self {
            Operation::ReadKeys => "read keys",
            Operation::AdministerKeys => "administer keys",
            Operation::Sign { .. } => "sign",
            Operation::AdministerTokens => "administer tokens",
            Operation::ReadAudit => "read the audit log",
            Operation::Operate => "operate the server (seal, rotate the key-encryption key)",
            Operation::Timestamp => "request a time-stamp",
            Operation::PublishCrl => "publish a CRL",
        }
    }
}

/// A signing request the policy allowed. Only [`authorize_sign`] makes one, and the pipeline
/// signs nothing else.
#[derive(Debug)]
pub struct Authorized<T>(T);

impl<T> Authorized<T> {
    pub fn get(&self) -> &T {
        &self.0
    }

    pub fn into_inner(self) -> T {
        self.0
    }
}

/// Why a request was denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub reasons: Vec<String>,
}

impl Denial {
    pub fn message(&self) -> String {
        self.reasons.join("; ")
    }
}

/// Decides whether `principal` may perform `op`.
pub fn authorize(principal: &Principal, op: Operation<'_>) -> Result<(), Denial> {
    match decide(principal, &op) {
        None => Ok(()),
        Some(reason) => Err(Denial {
            reasons: vec![reason],
        }),
    }
}

/// Decides whether `principal` may sign `request` with `key`; on allow, the request becomes
/// [`Authorized`].
pub fn authorize_sign<T>(
    principal: &Principal,
    key: &Key,
    request: T,
) -> Result<Authorized<T>, Denial> {
    authorize(principal, Operation::Sign { key }).map(|()| Authorized(request))
}

/// Decides whether `principal` may have Signet sign a statement it composed (a certificate, CRL,
/// CSR, time-stamp token or CMS signed attributes) with `key`; on allow, the input becomes
/// [`Authorized`].
pub fn authorize_statement<T>(
    principal: &Principal,
    op: Operation<'_>,
    input: T,
) -> Result<Authorized<T>, Denial> {
    authorize(principal, op).map(|()| Authorized(input))
}

/// `None` means allowed; `Some(reason)` denied.
fn decide(principal: &Principal, op: &Operation<'_>) -> Option<String> {
    // The TSA answers anyone the HTTP layer admits (`[tsa] public`): its key signs only the
    // TSTInfo Signet builds around the caller's imprint, with Signet's own clock.
    if matches!(op, Operation::Timestamp) {
        return None;
    }
    // INVARIANT: the system principal acts only on statements the server composes itself.
    if principal.kind == PrincipalKind::System {
        return match op {
            Operation::PublishCrl => None,
            _ => Some(format!("the system principal may not {}", op.name())),
        };
    }
    // INVARIANT: deny by default — anonymous callers and callers without a role get nothing.
    if principal.kind == PrincipalKind::Anonymous {
        return Some("authentication required".into());
    }
    let Some(role) = principal.role else {
        return Some(format!("principal `{}` has no role", principal.name));
    };
    let allowed = match (role, op) {
        (Role::Admin, _) => true,
        (Role::Signer, Operation::ReadKeys | Operation::Sign { .. }) => true,
        (Role::Signer, _) => false,
    };
    if allowed {
        None
    } else {
        Some(format!(
            "role `{}` may not {}; ask an admin",
            role.as_str(),
            op.name()
        ))
    }
}

/// Which algorithms new keys may use: the operator's allow-list and the FIPS boundary. Existing
/// keys keep signing; only creation (and rotation, which creates a version) is checked.
#[derive(Debug, Clone, Default)]
pub struct KeyCreationRules {
    /// `None`: every algorithm Signet supports.
    pub allowed: Option<Vec<Algorithm>>,
    /// RSA keys below this many bits are refused (Signet has none below 3072 today).
    pub min_rsa_bits: u32,
    /// Software keys outside the FIPS module's approved services are refused (`require_fips`).
    pub fips_only: bool,
}

impl KeyCreationRules {
    /// A pure decision: `Ok` or the rule that refuses `algorithm` in backend `backend`.
    pub fn check(&self, algorithm: Algorithm, backend: &str) -> Result<(), CoreError> {
        if let Some(allowed) = &self.allowed
            && !allowed.contains(&algorithm)
        {
            return Err(CoreError::new(
                ErrorCode::PolicyDenied,
                format!(
                    "algorithm `{algorithm}` is not allowed for new keys on this server; allowed: {}",
                    allowed
                        .iter()
                        .map(|a| a.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        if let Some(bits) = algorithm.rsa_bits()
            && bits < self.min_rsa_bits
        {
            return Err(CoreError::new(
                ErrorCode::PolicyDenied,
                format!(
                    "`{algorithm}` keys are {bits} bits, below this server's minimum of {}; pick a larger key",
                    self.min_rsa_bits
                ),
            ));
        }
        // INVARIANT: with `require_fips`, software keys sign only through approved services.
        if self.fips_only && backend == "software" && !algorithm.in_fips_boundary() {
            return Err(CoreError::new(
                ErrorCode::PolicyDenied,
                format!(
                    "software `{algorithm}` keys do not sign digests through an approved FIPS service and this server requires FIPS; use ed25519 or ml-dsa-44/65/87, or a key in a FIPS-validated HSM (`--backend pkcs11`)"
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Option<Role>, kind: PrincipalKind) -> Principal {
        Principal {
            id: "p".into(),
            name: "p".into(),
            kind,
            role,
        }
    }

    #[test]
    fn role_matrix() {
        let ops = [
            (Operation::ReadKeys, true),
            (Operation::AdministerKeys, false),
            (Operation::AdministerTokens, false),
            (Operation::ReadAudit, false),
        ];
        let admin = principal(Some(Role::Admin), PrincipalKind::ServiceAccount);
        let signer = principal(Some(Role::Signer), PrincipalKind::ServiceAccount);
        let roleless = principal(None, PrincipalKind::ServiceAccount);
        let anon = Principal::anonymous();
        for (op, signer_may) in ops {
            assert!(authorize(&admin, op).is_ok());
            assert_eq!(authorize(&signer, op).is_ok(), signer_may, "{}", op.name());
            assert!(authorize(&roleless, op).is_err());
            assert!(authorize(&anon, op).is_err());
        }
        let key = crate::key::Key {
            id: "k".into(),
            name: crate::key::KeyName::parse("k").unwrap_or_else(|_| unreachable!()),
            algorithm: crate::Algorithm::Ed25519,
            backend: "software".into(),
            state: crate::key::KeyState::Active,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            current_version: 1,
            versions: vec![],
            usage: crate::cert::KeyUsage::Signing,
            policy: crate::cert::KeyPolicy::default(),
        };
        assert!(authorize_sign(&admin, &key, ()).is_ok());
        assert!(authorize_sign(&signer, &key, ()).is_ok());
        assert!(authorize_sign(&roleless, &key, ()).is_err());
        assert!(authorize_sign(&anon, &key, ()).is_err());
    }

    #[test]
    fn timestamps_are_open_and_the_system_principal_publishes_crls_only() {
        let system = Principal::system();
        let anon = Principal::anonymous();
        assert!(authorize(&anon, Operation::Timestamp).is_ok());
        assert!(authorize(&system, Operation::Timestamp).is_ok());
        assert!(authorize(&system, Operation::PublishCrl).is_ok());
        assert!(authorize(&anon, Operation::PublishCrl).is_err());
        for op in [
            Operation::ReadKeys,
            Operation::AdministerKeys,
            Operation::AdministerTokens,
            Operation::ReadAudit,
            Operation::Operate,
        ] {
            assert!(authorize(&system, op).is_err(), "{}", op.name());
        }
    }

    #[test]
    fn key_creation_rules_refuse_what_they_name() {
        use crate::algorithm::Algorithm as A;
        let open = KeyCreationRules::default();
        for a in A::ALL {
            assert!(open.check(a, "software").is_ok(), "{a}");
        }
        let listed = KeyCreationRules {
            allowed: Some(vec![A::EcdsaP256, A::MlDsa65]),
            ..KeyCreationRules::default()
        };
        assert!(listed.check(A::MlDsa65, "software").is_ok());
        let denied = listed.check(A::Rsa3072Pss, "software").err();
        assert_eq!(denied.map(|e| e.code), Some(ErrorCode::PolicyDenied));
        let big_rsa = KeyCreationRules {
            min_rsa_bits: 4096,
            ..KeyCreationRules::default()
        };
        assert!(big_rsa.check(A::Rsa3072Pkcs1, "software").is_err());
        assert!(big_rsa.check(A::Rsa4096Pkcs1, "software").is_ok());
        assert!(big_rsa.check(A::EcdsaP256, "software").is_ok());
        let fips = KeyCreationRules {
            fips_only: true,
            ..KeyCreationRules::default()
        };
        assert!(fips.check(A::Ed25519, "software").is_ok());
        assert!(fips.check(A::MlDsa87, "software").is_ok());
        assert!(fips.check(A::EcdsaP256, "software").is_err());
        assert!(fips.check(A::SlhDsaSha2_128s, "software").is_err());
        // An HSM's keys follow the HSM's own validation.
        assert!(fips.check(A::EcdsaP256, "pkcs11").is_ok());
    }
}
