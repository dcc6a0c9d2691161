//! Test helpers shared by the key-backend tests: a private SoftHSM2 token per test, and
//! independent signature verification (aws-lc-rs, RustCrypto `slh-dsa`, the `openssl` CLI).
//!
//! SoftHSM2 reads its configuration from `SOFTHSM2_CONF` when the module is initialised, so the
//! first test in a process points it at a private token directory before any module is loaded.
//! Each test then makes its own token (`softhsm2-util --init-token`) and deletes it when done.
//! Without SoftHSM2 the PKCS#11 tests print a skip notice, unless `SIGNET_REQUIRE_SOFTHSM=1`
//! (set by `scripts/test`) makes them fail.

#![allow(dead_code)]

pub mod verify;

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use signet_core::CoreError;
use signet_core::secret::SecretString;
use signet_keys::{Pkcs11Backend, Pkcs11Config};

pub type BoxError = Box<dyn Error + Send + Sync>;
pub type TestResult = Result<(), BoxError>;

pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
pub const PIN: &str = "signet-user-pin-1";
const SO_PIN: &str = "signet-so-pin-1";

/// The process's SoftHSM2 configuration: `(directory, softhsm2.conf)`.
static SOFTHSM: OnceLock<Result<(PathBuf, PathBuf), String>> = OnceLock::new();
/// Serialises token creation and backend start-up: a module restart (which a backend does when
/// its token was created after the module was loaded) must not catch a half-written token.
static TOKENS: Mutex<u32> = Mutex::new(0);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn required() -> bool {
    std::env::var("SIGNET_REQUIRE_SOFTHSM").is_ok_and(|v| v == "1")
}

fn have(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success() || !o.stdout.is_empty() || !o.stderr.is_empty())
}

/// `Ok(true)` when `what` is installed; `Ok(false)` (after a skip notice) when it is not and
/// SoftHSM is optional; an error when it is required.
pub fn available(what: &[&str]) -> Result<bool, BoxError> {
    let mut missing = Vec::new();
    if !Path::new(MODULE).exists() {
        missing.push(MODULE.to_owned());
    }
    for cmd in what {
        if !have(cmd) {
            missing.push(format!("`{cmd}`"));
        }
    }
    if missing.is_empty() {
        return Ok(true);
    }
    let what = missing.join(", ");
    if required() {
        return Err(format!(
            "SIGNET_REQUIRE_SOFTHSM=1 but {what} is missing; install the softhsm2 and opensc \
             packages (scripts/test does)"
        )
        .into());
    }
    eprintln!(
        "skipping PKCS#11 test: {what} is missing (set SIGNET_REQUIRE_SOFTHSM=1 to fail instead)"
    );
    Ok(false)
}

fn setup() -> Result<(PathBuf, PathBuf), String> {
    // Under the target directory (`cargo clean` removes it); tokens are deleted after each test.
    let dir = tempfile::Builder::new()
        .prefix("softhsm-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .map_err(|e| format!("cannot create a SoftHSM2 token directory: {e}"))?
        .keep();
    let tokens = dir.join("tokens");
    std::fs::create_dir(&tokens).map_err(|e| format!("cannot create {}: {e}", tokens.display()))?;
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            tokens.display()
        ),
    )
    .map_err(|e| format!("cannot write {}: {e}", conf.display()))?;
    // The environment is process-global and SoftHSM2 reads it in C_Initialize: set it once,
    // before any test of this process loads the module (every PKCS#11 test comes through here
    // first, and the others do not read the environment).
    #[allow(unsafe_code)]
    // SAFETY: set once per process under the `OnceLock`; no other thread of this test binary
    // reads or writes the environment while it runs (Rust's own accesses take std's env lock).
    unsafe {
        std::env::set_var("SOFTHSM2_CONF", &conf);
    }
    Ok((dir, conf))
}

/// A SoftHSM2 token made for one test, deleted on drop.
pub struct TestToken {
    pub label: String,
    pub dir: PathBuf,
    conf: PathBuf,
}

/// A fresh token named after `name`, or `None` (after a skip notice) when SoftHSM2 is missing
/// and not required.
pub fn token(name: &str) -> Result<Option<TestToken>, BoxError> {
    if !available(&["softhsm2-util"])? {
        return Ok(None);
    }
    let (dir, conf) = SOFTHSM
        .get_or_init(setup)
        .as_ref()
        .map_err(|e| -> BoxError { e.clone().into() })?
        .clone();
    let mut n = lock(&TOKENS);
    *n += 1;
    // Token labels are at most 32 bytes.
    let label: String = format!("{}-{}-{}", name, std::process::id() % 10_000, *n)
        .chars()
        .rev()
        .take(32)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let token = TestToken { label, dir, conf };
    token.init()?;
    Ok(Some(token))
}

impl TestToken {
    pub fn config(&self) -> Pkcs11Config {
        Pkcs11Config {
            module: PathBuf::from(MODULE),
            token_label: Some(self.label.clone()),
            token_serial: None,
            pin: SecretString::new(PIN.to_owned()),
            max_sessions: None,
        }
    }

    /// A backend on this token.
    pub fn backend(&self) -> Result<Pkcs11Backend, CoreError> {
        self.backend_with(self.config())
    }

    pub fn backend_with(&self, config: Pkcs11Config) -> Result<Pkcs11Backend, CoreError> {
        let _serial = lock(&TOKENS);
        Pkcs11Backend::new(config)
    }

    /// (Re)creates the token in the first free slot.
    pub fn init(&self) -> Result<(), BoxError> {
        let out = self.softhsm_util(&[
            "--init-token",
            "--free",
            "--label",
            &self.label,
            "--so-pin",
            SO_PIN,
            "--pin",
            PIN,
        ])?;
        check(&out, "softhsm2-util --init-token")
    }

    /// Deletes the token's files, as an operator removing it would.
    pub fn delete(&self) -> Result<(), BoxError> {
        let out = self.softhsm_util(&["--delete-token", "--token", &self.label])?;
        check(&out, "softhsm2-util --delete-token")
    }

    pub fn softhsm_util(&self, args: &[&str]) -> Result<Output, BoxError> {
        Ok(Command::new("softhsm2-util")
            .args(args)
            .env("SOFTHSM2_CONF", &self.conf)
            .output()?)
    }

    /// Runs `pkcs11-tool` on this token, logged in with the user PIN.
    pub fn pkcs11_tool(&self, args: &[&str]) -> Result<Output, BoxError> {
        Ok(Command::new("pkcs11-tool")
            .args(["--module", MODULE, "--token-label", &self.label])
            .args(["--login", "--pin", PIN])
            .args(args)
            .env("SOFTHSM2_CONF", &self.conf)
            .output()?)
    }
}

impl Drop for TestToken {
    fn drop(&mut self) {
        let _serial = lock(&TOKENS);
        let _ = self.delete();
    }
}

pub fn check(out: &Output, what: &str) -> Result<(), BoxError> {
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into())
    }
}
