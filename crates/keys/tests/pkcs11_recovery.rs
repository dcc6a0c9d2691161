//! The PKCS#11 backend survives a token that goes away and comes back, without a restart:
//! sessions logged out behind its back, the module finalised by someone else in the process, the
//! token deleted and re-created. Each test breaks a real SoftHSM2 token for real.
//!
//! These tests disturb the whole module (a `C_Finalize` ends every session in the process), so
//! they live in their own test binary and run one at a time.

mod common;

use common::TestResult;
use common::verify::{digest_of, verify};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use signet_core::backend::{KeyBackend, KeySpec, SigningKey};
use signet_core::{Algorithm, DigestAlgorithm, ErrorCode};
use signet_keys::pkcs11::danger;

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn spec(id: &str) -> KeySpec {
    KeySpec {
        key_id: id.into(),
        version: 1,
        algorithm: Algorithm::EcdsaP256,
    }
}

fn signs(key: &dyn SigningKey, msg: &[u8]) -> TestResult {
    let d = digest_of(DigestAlgorithm::Sha256, msg)?;
    let sig = key.sign_digest(&d)?;
    assert!(verify(
        Algorithm::EcdsaP256,
        DigestAlgorithm::Sha256,
        key.public_key_der(),
        msg,
        &d,
        &sig
    ));
    Ok(())
}

/// What another component of the process calling `C_Finalize` on the same module does: every
/// session of the process is closed and the module is uninitialised.
fn finalize_module_from_outside() -> TestResult {
    let other = Pkcs11::new(common::MODULE)?;
    // Already initialised by the backend: the module is shared by the whole process.
    let _ = other.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK));
    other.finalize()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovers_when_its_sessions_are_logged_out() -> TestResult {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(token) = common::token("logout")? else {
        return Ok(());
    };
    let backend = token.backend()?;
    let generated = backend.generate(&spec("logout")).await?;
    let key = backend.open(&spec("logout"), &generated.handle)?;
    signs(key.as_ref(), b"before")?;
    // C_Logout on any session logs every session of the application out of the token.
    let before = backend.recoveries();
    danger::with_session(&backend, |session, _| session.logout())?;
    signs(key.as_ref(), b"after a logout")?;
    assert_eq!(
        backend.recoveries(),
        before + 1,
        "the signature did not recover"
    );
    backend.health()?;
    // Again, with health checked first.
    danger::with_session(&backend, |session, _| session.logout())?;
    backend.health()?;
    assert_eq!(backend.recoveries(), before + 2, "health did not recover");
    signs(key.as_ref(), b"after another logout")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovers_when_the_module_is_finalized_behind_its_back() -> TestResult {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(token) = common::token("finalize")? else {
        return Ok(());
    };
    let backend = token.backend()?;
    let generated = backend.generate(&spec("finalize")).await?;
    let key = backend.open(&spec("finalize"), &generated.handle)?;
    signs(key.as_ref(), b"before")?;

    // The next signature restarts the module, opens new sessions, logs in, finds the key again.
    let before = backend.recoveries();
    finalize_module_from_outside()?;
    signs(key.as_ref(), b"after C_Finalize")?;
    assert_eq!(
        backend.recoveries(),
        before + 1,
        "the signature did not recover"
    );
    backend.health()?;

    // health() recovers too (what /readyz calls).
    finalize_module_from_outside()?;
    backend.health()?;
    assert_eq!(backend.recoveries(), before + 2, "health did not recover");
    signs(key.as_ref(), b"after C_Finalize and health")?;

    // Generation and opening work after recovery as well.
    finalize_module_from_outside()?;
    let again = backend.generate(&spec("finalize-2")).await?;
    let key2 = backend.open(&spec("finalize-2"), &again.handle)?;
    signs(key2.as_ref(), b"new key after C_Finalize")?;
    signs(key.as_ref(), b"old key too")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_fails_while_the_token_is_gone_and_recovers_when_it_is_back() -> TestResult {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(token) = common::token("gone")? else {
        return Ok(());
    };
    let backend = token.backend()?;
    let generated = backend.generate(&spec("gone")).await?;
    let key = backend.open(&spec("gone"), &generated.handle)?;
    signs(key.as_ref(), b"before")?;
    backend.health()?;

    // The token's files are deleted, as if the HSM partition were removed.
    token.delete()?;
    let e = backend
        .health()
        .err()
        .ok_or("health is ok without a token")?;
    assert_eq!(e.code, ErrorCode::BackendUnavailable, "{e}");
    assert!(e.message.contains(&token.label), "{e}");
    assert!(!e.message.contains(common::PIN), "{e}");
    let d = digest_of(DigestAlgorithm::Sha256, b"no token")?;
    let e = key.sign_digest(&d).err().ok_or("signed without a token")?;
    assert_eq!(e.code, ErrorCode::BackendUnavailable, "{e}");
    // Still down on the next check.
    assert_eq!(
        backend.health().err().map(|e| e.code),
        Some(ErrorCode::BackendUnavailable)
    );

    // A token with the same label is back (its keys are not: it is a new token).
    token.init()?;
    backend.health()?;
    let fresh = backend.generate(&spec("gone-2")).await?;
    let key2 = backend.open(&spec("gone-2"), &fresh.handle)?;
    signs(key2.as_ref(), b"after the token came back")?;
    // The old key is gone with the old token, and says so.
    assert!(key.sign_digest(&d).is_err());
    Ok(())
}
