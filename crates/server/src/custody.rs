//! Custody of the key-encryption key (KEK): how it reaches memory, and how it leaves.
//!
//! - `shamir` (production default): the KEK exists only as M-of-N shares held by custodians. The
//!   server starts sealed and unseals when M distinct shares of one split combine into a KEK
//!   that opens the audit log key (the proof that it is *this* server's KEK).
//! - `pkcs11` (auto-unseal): the KEK is stored wrapped by an AES key inside a PKCS#11 token and
//!   unwrapped by the token at start.
//! - `dev` (`--dev` only): the KEK is a local file. Loud warnings everywhere.
//!
//! Sealing drops the KEK, every opened key and the log signer's key from memory. Rotation
//! re-seals every software key under a fresh KEK in one transaction, then hands out new shares.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use signet_core::audit::{Action, CustodyRef, Outcome};
use signet_core::backend::KeySpec;
use signet_core::key::KeyHandle;
use signet_core::principal::Principal;
use signet_core::secret::SecretString;
use signet_core::service::{RequestMeta, SigningService};
use signet_core::{CoreError, ErrorCode};
use signet_keys::seal::{KekRotation, kek_opens};
use signet_keys::{Kek, shamir};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::audit_log::LogSigner;

/// Where the split's public facts live (no secrets): mode, threshold, share count, split id.
pub const SEAL_FILE: &str = "seal.toml";
/// `pkcs11` custody: the wrapped KEK (token ciphertext), relative to the data directory.
pub const WRAPPED_KEK_FILE: &str = "kek.p11";
/// `pkcs11` custody: label of the AES wrapping key in the token.
pub const DEFAULT_WRAPPING_KEY_LABEL: &str = "signet-kek-wrap";

/// How the KEK is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SealMode {
    Shamir,
    Pkcs11,
    Dev,
}

impl SealMode {
    pub const fn as_str(self) -> &'static str {
        match self {
            SealMode::Shamir => "shamir",
            SealMode::Pkcs11 => "pkcs11",
            SealMode::Dev => "dev-key-file",
        }
    }
}

/// `seal.toml`: the public facts of the current split.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealFile {
    pub threshold: u8,
    pub shares: u8,
    pub share_set: String,
}

impl SealFile {
    pub fn load(data_dir: &Path) -> Result<Self, CoreError> {
        let path = data_dir.join(SEAL_FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| CoreError::internal(format!("cannot read `{}`", path.display()), e))?;
        toml::from_str(&text)
            .map_err(|e| CoreError::internal(format!("invalid `{}`", path.display()), e))
    }

    /// Written to a temporary file and renamed, so a crash leaves the old or the new file.
    pub fn store(&self, data_dir: &Path) -> Result<(), CoreError> {
        let text =
            toml::to_string(self).map_err(|e| CoreError::internal("encoding seal.toml", e))?;
        let tmp = data_dir.join(format!("{SEAL_FILE}.tmp"));
        std::fs::write(&tmp, text).map_err(|e| CoreError::internal("writing seal.toml", e))?;
        std::fs::rename(&tmp, data_dir.join(SEAL_FILE))
            .map_err(|e| CoreError::internal("replacing seal.toml", e))
    }
}

/// A share waiting for the threshold; its audit event is appended once the log can sign.
struct Submitted {
    share: shamir::ParsedShare,
    at: OffsetDateTime,
    meta: RequestMeta,
}

/// The unseal state as the API reports it.
#[derive(Debug, Clone)]
pub struct SealStatus {
    pub sealed: bool,
    pub mode: SealMode,
    pub threshold: Option<u8>,
    pub shares: Option<u8>,
    pub progress: u8,
    pub share_set: Option<String>,
}

/// What a KEK rotation hands back: new shares in `shamir` mode, shown once.
#[derive(Debug)]
pub struct Rotated {
    pub rewrapped: u64,
    pub shares: Vec<SecretString>,
    pub share_set: Option<String>,
}

/// Stores a KEK for the modes that keep it at rest (dev file, PKCS#11-wrapped blob). Shamir keeps
/// nothing at rest.
pub trait KekVault: Send + Sync {
    /// Stores `kek` so the next start finds it. Called before the rotation commits; `promote`
    /// makes it the one in use after the commit.
    fn stage(&self, kek: &[u8]) -> Result<(), CoreError>;
    fn promote(&self) -> Result<(), CoreError>;
}

pub struct Custody {
    mode: SealMode,
    data_dir: PathBuf,
    kek: Kek,
    /// The audit log key: a KEK is this server's only if it opens it.
    probe: std::sync::RwLock<(KeySpec, KeyHandle)>,
    pending: tokio::sync::Mutex<Vec<Submitted>>,
    service: Arc<SigningService>,
    log_signer: Arc<LogSigner>,
    vault: Option<Arc<dyn KekVault>>,
}

fn invalid_share(msg: impl Into<String>) -> CoreError {
    CoreError::new(ErrorCode::InvalidRequest, msg)
}

impl Custody {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        mode: SealMode,
        data_dir: PathBuf,
        kek: Kek,
        probe: (KeySpec, KeyHandle),
        service: Arc<SigningService>,
        log_signer: Arc<LogSigner>,
        vault: Option<Arc<dyn KekVault>>,
    ) -> Self {
        Custody {
            mode,
            data_dir,
            kek,
            probe: std::sync::RwLock::new(probe),
            pending: tokio::sync::Mutex::new(Vec::new()),
            service,
            log_signer,
            vault,
        }
    }

    /// Checks `who` may operate the server; a denial is audited (when the log can sign).
    async fn authorize_audited(
        &self,
        who: &Principal,
        action: Action,
        meta: &RequestMeta,
    ) -> Result<(), CoreError> {
        let Err(e) = self.service.authorize_operator(who).await else {
            return Ok(());
        };
        let custody = CustodyRef {
            mode: self.mode.as_str().into(),
            ..CustodyRef::default()
        };
        let outcome = Outcome::Denied {
            code: e.code.as_str().into(),
            reason: e.message.clone(),
        };
        if let Err(audit) = self
            .service
            .audit_custody(who, action, custody, None, meta, outcome)
            .await
        {
            tracing::warn!(error = %audit, "a denied custody request could not be audited");
        }
        Err(e)
    }

    pub fn mode(&self) -> SealMode {
        self.mode
    }

    pub async fn status(&self) -> SealStatus {
        let progress = u8::try_from(self.pending.lock().await.len()).unwrap_or(u8::MAX);
        let split = match self.mode {
            SealMode::Shamir => SealFile::load(&self.data_dir).ok(),
            _ => None,
        };
        SealStatus {
            sealed: self.kek.is_sealed(),
            mode: self.mode,
            threshold: split.as_ref().map(|s| s.threshold),
            shares: split.as_ref().map(|s| s.shares),
            progress,
            share_set: split.map(|s| s.share_set),
        }
    }

    /// Takes one custodian's share. When the threshold is reached the shares are combined; a
    /// combination that does not open this server's keys resets the progress.
    pub async fn submit_share(
        &self,
        share: &SecretString,
        meta: &RequestMeta,
    ) -> Result<SealStatus, CoreError> {
        if self.mode != SealMode::Shamir {
            return Err(CoreError::new(
                ErrorCode::Conflict,
                format!(
                    "this server's key-encryption key is held by `{}`, not by custodian shares; nothing to submit",
                    self.mode.as_str()
                ),
            ));
        }
        if !self.kek.is_sealed() {
            return Err(CoreError::new(
                ErrorCode::Conflict,
                "the server is already unsealed; keep your share safe",
            ));
        }
        let parsed = shamir::parse(share.expose())?;
        // INVARIANT: only shares of the current split count, so a stray or forged share cannot
        // block the ceremony.
        let split = SealFile::load(&self.data_dir)?;
        if parsed.set_id != split.share_set || parsed.threshold != split.threshold {
            return Err(invalid_share(format!(
                "this share is from split `{}` ({} needed) but the server's current split is `{}` ({} needed); use a share of the current split (`signet operator status` shows it)",
                parsed.set_id, parsed.threshold, split.share_set, split.threshold
            )));
        }
        let mut pending = self.pending.lock().await;
        if let Some(first) = pending.first()
            && first.share.set_id != parsed.set_id
        {
            return Err(invalid_share(format!(
                "this share is from split `{}` but the shares submitted so far are from `{}`; use shares of the current split (`signet operator status` shows it)",
                parsed.set_id, first.share.set_id
            )));
        }
        if pending.iter().any(|p| p.share.index == parsed.index) {
            return Err(CoreError::new(
                ErrorCode::Conflict,
                format!(
                    "share {} was already submitted; each custodian submits a different share",
                    parsed.index
                ),
            ));
        }
        tracing::info!(
            share_set = %parsed.set_id,
            index = parsed.index,
            "unseal share submitted"
        );
        pending.push(Submitted {
            at: self.service.clock().now(),
            meta: meta.clone(),
            share: parsed,
        });
        let threshold = pending.first().map_or(0, |p| p.share.threshold);
        if pending.len() < usize::from(threshold) {
            drop(pending);
            return Ok(self.status().await);
        }
        let submitted: Vec<Submitted> = pending.drain(..).collect();
        let secret = shamir::combine(submitted.iter().map(|s| &s.share))?;
        let candidate = Kek::from_bytes(&secret)?;
        let opens = self
            .probe
            .read()
            .map(|p| kek_opens(&candidate, &p.0, &p.1))
            .unwrap_or(false);
        // INVARIANT: only a KEK that opens this server's audit log key is accepted.
        if !opens {
            tracing::warn!(
                "unseal shares combined into a key-encryption key that is not this server's; progress reset"
            );
            return Err(invalid_share(
                "the submitted shares do not combine into this server's key-encryption key (a share is wrong or from another server); progress was reset — submit the shares again, checking each",
            ));
        }
        self.kek.load(&secret)?;
        drop(pending);
        tracing::info!("unsealed");
        // The log can sign again: record each share submission, then the unseal.
        let set = submitted.first().map(|s| s.share.set_id.clone());
        for (i, s) in submitted.iter().enumerate() {
            let custody = CustodyRef {
                mode: self.mode.as_str().into(),
                share_set: set.clone(),
                share_index: Some(s.share.index),
                progress: u8::try_from(i + 1).ok(),
                threshold: Some(s.share.threshold),
                rewrapped: None,
            };
            self.service
                .audit_custody(
                    &Principal::anonymous(),
                    Action::UnsealShare,
                    custody,
                    Some(s.at),
                    &s.meta,
                    Outcome::Allowed,
                )
                .await?;
        }
        let custody = CustodyRef {
            mode: self.mode.as_str().into(),
            share_set: set,
            threshold: submitted.first().map(|s| s.share.threshold),
            ..CustodyRef::default()
        };
        self.service
            .audit_custody(
                &Principal::anonymous(),
                Action::Unseal,
                custody,
                None,
                meta,
                Outcome::Allowed,
            )
            .await?;
        Ok(self.status().await)
    }

    /// Seals the server: audited first (the log can still sign), then the KEK, every opened key
    /// and the log signer's key are dropped from memory.
    pub async fn seal(&self, who: &Principal, meta: &RequestMeta) -> Result<SealStatus, CoreError> {
        self.authorize_audited(who, Action::Seal, meta).await?;
        if self.kek.is_sealed() {
            return Ok(self.status().await);
        }
        let custody = CustodyRef {
            mode: self.mode.as_str().into(),
            ..CustodyRef::default()
        };
        self.service
            .audit_custody(who, Action::Seal, custody, None, meta, Outcome::Allowed)
            .await?;
        self.kek.clear();
        self.service.forget_keys().await;
        self.log_signer.forget();
        self.pending.lock().await.clear();
        tracing::warn!(by = %who.name, "sealed by an operator");
        Ok(self.status().await)
    }

    /// Re-seals every software key under a fresh KEK. In `shamir` mode the new KEK is split into
    /// `shares` shares with `threshold` (default: the current split's) and the shares are
    /// returned once; the old shares stop working.
    pub async fn rotate(
        &self,
        who: &Principal,
        split: Option<(u8, u8)>,
        meta: &RequestMeta,
    ) -> Result<Rotated, CoreError> {
        self.authorize_audited(who, Action::KekRotate, meta).await?;
        let result = self.rotate_inner(split).await;
        let custody = CustodyRef {
            mode: self.mode.as_str().into(),
            share_set: result.as_ref().ok().and_then(|r| r.share_set.clone()),
            rewrapped: result.as_ref().ok().map(|r| r.rewrapped),
            ..CustodyRef::default()
        };
        let outcome = match &result {
            Ok(_) => Outcome::Allowed,
            Err(e) => Outcome::Failed {
                code: e.code.as_str().into(),
                reason: if e.is_client_error() {
                    e.message.clone()
                } else {
                    "internal error".into()
                },
            },
        };
        let audited = self
            .service
            .audit_custody(who, Action::KekRotate, custody, None, meta, outcome)
            .await;
        match (result, audited) {
            // The rotation is committed: its new shares must reach the caller even if the audit
            // entry could not be written (the only copy of the shares is this response).
            (Ok(rotated), Err(e)) => {
                tracing::error!(error = %e, "the KEK rotation is done but its audit entry failed");
                Ok(rotated)
            }
            (result, Ok(())) => result,
            (Err(e), Err(_)) => Err(e),
        }
    }

    async fn rotate_inner(&self, split: Option<(u8, u8)>) -> Result<Rotated, CoreError> {
        let next_bytes = Kek::generate_bytes()?;
        let next = Kek::from_bytes(next_bytes.as_ref())?;
        // Split first, so a bad split request changes nothing.
        let (shares, share_set, seal_file) = match self.mode {
            SealMode::Shamir => {
                let current = SealFile::load(&self.data_dir)?;
                let (threshold, count) = split.unwrap_or((current.threshold, current.shares));
                let shares = shamir::split(next_bytes.as_ref(), threshold, count)?;
                let set = shares
                    .first()
                    .and_then(|s| shamir::parse(s.expose()).ok())
                    .map(|p| p.set_id)
                    .unwrap_or_default();
                let file = SealFile {
                    threshold,
                    shares: count,
                    share_set: set.clone(),
                };
                (shares, Some(set), Some(file))
            }
            _ => {
                if split.is_some() {
                    return Err(CoreError::new(
                        ErrorCode::InvalidRequest,
                        format!(
                            "`--shares`/`--threshold` apply to shamir custody, not `{}`; drop them",
                            self.mode.as_str()
                        ),
                    ));
                }
                (Vec::new(), None, None)
            }
        };
        if let Some(vault) = &self.vault {
            vault.stage(next_bytes.as_ref())?;
        }
        let rotation = KekRotation::new(self.kek.clone(), next);
        let updates = self.service.rewrap_keys(&rotation).await?;
        let rewrapped = u64::try_from(updates.len()).unwrap_or(u64::MAX);
        // The opened log key is unchanged; its stored handle is now under the new KEK.
        if let Some(log_id) = self.log_signer.key_id()
            && let Some((_, _, handle)) = updates.iter().find(|(id, _, _)| *id == log_id)
        {
            self.log_signer.set_handle(handle.clone());
            if let Ok(mut p) = self.probe.write() {
                p.1 = handle.clone();
            }
        }
        if let Some(vault) = &self.vault {
            vault.promote()?;
        }
        if let Some(file) = seal_file {
            file.store(&self.data_dir)?;
        }
        tracing::info!(rewrapped, "key-encryption key rotated");
        Ok(Rotated {
            rewrapped,
            shares,
            share_set,
        })
    }
}

/// The dev-mode KEK file: rotation writes `kek.next`, then renames it over `kek.dev`.
pub struct DevFileVault {
    pub path: PathBuf,
}

impl KekVault for DevFileVault {
    fn stage(&self, kek: &[u8]) -> Result<(), CoreError> {
        let next = self.path.with_extension("next");
        let _ = std::fs::remove_file(&next);
        crate::init::write_private(&next, kek)
            .map_err(|e| CoreError::new(ErrorCode::Internal, format!("{e:#}")))
    }

    fn promote(&self) -> Result<(), CoreError> {
        std::fs::rename(self.path.with_extension("next"), &self.path)
            .map_err(|e| CoreError::internal("replacing the dev key-encryption key file", e))
    }
}

/// The KEK wrapped by an AES key inside a PKCS#11 token (auto-unseal): `kek.p11` holds only
/// the token's ciphertext. Rotation writes `kek.next`, then renames it into place.
pub struct Pkcs11Vault {
    pub token: Arc<signet_keys::Pkcs11Backend>,
    pub label: String,
    pub path: PathBuf,
}

impl Pkcs11Vault {
    /// Unwraps the stored KEK inside the token.
    pub fn unwrap(&self) -> Result<Zeroizing<Vec<u8>>, CoreError> {
        let blob = std::fs::read(&self.path).map_err(|e| {
            CoreError::internal(
                format!(
                    "cannot read the wrapped key-encryption key `{}`",
                    self.path.display()
                ),
                e,
            )
        })?;
        self.token.unwrap_secret(&self.label, &blob)
    }

    /// Creates the wrapping key if needed and stores `kek` wrapped (init).
    pub fn create(&self, kek: &[u8]) -> Result<(), CoreError> {
        self.token.ensure_wrapping_key(&self.label)?;
        let blob = self.token.wrap_secret(&self.label, kek)?;
        crate::init::write_private(&self.path, &blob)
            .map_err(|e| CoreError::new(ErrorCode::Internal, format!("{e:#}")))
    }
}

impl KekVault for Pkcs11Vault {
    fn stage(&self, kek: &[u8]) -> Result<(), CoreError> {
        let next = self.path.with_extension("next");
        let _ = std::fs::remove_file(&next);
        let blob = self.token.wrap_secret(&self.label, kek)?;
        crate::init::write_private(&next, &blob)
            .map_err(|e| CoreError::new(ErrorCode::Internal, format!("{e:#}")))
    }

    fn promote(&self) -> Result<(), CoreError> {
        std::fs::rename(self.path.with_extension("next"), &self.path)
            .map_err(|e| CoreError::internal("replacing the wrapped key-encryption key", e))
    }
}

/// Reads a KEK candidate file, zeroized on drop.
pub fn read_secret_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, CoreError> {
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|e| CoreError::internal(format!("cannot read `{}`", path.display()), e))
}
