//! A string that must never be logged or displayed (API tokens, PINs).

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// A secret string: zeroized on drop, redacted in `Debug`, no `Display`.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: String) -> Self {
        SecretString(s)
    }

    /// The secret itself; call only where it must be used (hashing, sending once).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

impl From<String> for SecretString {
    fn from(s: String) -> Self {
        SecretString(s)
    }
}
