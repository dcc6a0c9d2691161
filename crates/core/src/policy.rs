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
    Sign { key: &'a Key },
    AdministerTokens,
    ReadAudit,
}

impl Operation<'_> {
    pub const fn name(&self) -> &'static str {
        match self {
            Operation::ReadKeys => "read keys",
            Operation::AdministerKeys => "administer keys",
            Operation::Sign { .. } => "sign",
            Operation::AdministerTokens => "administer tokens",
            Operation::ReadAudit => "read the audit log",
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

/// `None` means allowed; `Some(reason)` denied.
fn decide(principal: &Principal, op: &Operation<'_>) -> Option<String> {
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
    /// Algorithms outside the FIPS 140-3 module's boundary are refused (`require_fips`).
    pub fips_only: bool,
}

impl KeyCreationRules {
    /// A pure decision: `Ok` or the rule that refuses `algorithm`.
    pub fn check(&self, algorithm: Algorithm) -> Result<(), CoreError> {
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
        if self.fips_only && !algorithm.in_fips_boundary() {
            return Err(CoreError::new(
                ErrorCode::PolicyDenied,
                format!(
                    "`{algorithm}` is outside the FIPS 140-3 module boundary and this server requires FIPS; pick an ECDSA or RSA algorithm"
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
        };
        assert!(authorize_sign(&admin, &key, ()).is_ok());
        assert!(authorize_sign(&signer, &key, ()).is_ok());
        assert!(authorize_sign(&roleless, &key, ()).is_err());
        assert!(authorize_sign(&anon, &key, ()).is_err());
    }
}
