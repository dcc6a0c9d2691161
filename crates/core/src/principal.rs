//! Who is asking: the authenticated caller of an operation.

use serde::{Deserialize, Serialize};

/// What a principal may do. The identity and policy issue refines this into team-scoped roles
/// and a policy engine; for now an admin administers keys and tokens (and may sign), a signer
/// signs and reads keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Signer,
}

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Signer => "signer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "signer" => Some(Role::Signer),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// The holder of an API token (the admin token made at init, or a service account's).
    ServiceAccount,
    /// Nobody: a request without valid credentials (only ever recorded, never authorized).
    Anonymous,
    /// signetd itself, for work no caller asked for (publishing a CRL).
    System,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// Stable id (for a token holder, the token id).
    pub id: String,
    pub name: String,
    pub kind: PrincipalKind,
    pub role: Option<Role>,
}

impl Principal {
    /// signetd acting on its own (see [`PrincipalKind::System`]).
    pub fn system() -> Self {
        Principal {
            id: "signetd".into(),
            name: "signetd".into(),
            kind: PrincipalKind::System,
            role: None,
        }
    }

    pub fn anonymous() -> Self {
        Principal {
            id: "anonymous".into(),
            name: "anonymous".into(),
            kind: PrincipalKind::Anonymous,
            role: None,
        }
    }
}
