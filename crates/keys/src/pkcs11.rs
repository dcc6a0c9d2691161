//! The PKCS#11 key backend: keys generated and used inside a token (an HSM; SoftHSM2 in tests),
//! never exported.
//!
//! What this module implements, by specification:
//!
//! - PKCS#11 v2.40 / v3.0 Base Specification, "General-purpose functions" (`C_Initialize`,
//!   `C_Finalize`): a module is initialised once per process. [`Module`] keeps one context per
//!   module path for the whole process, because a second `C_Initialize` in the same process is
//!   `CKR_CRYPTOKI_ALREADY_INITIALIZED` and a `C_Finalize` ends every session of every user of the
//!   module.
//! - "Slot and token management functions" (`C_GetSlotList`, `C_GetTokenInfo`,
//!   `C_GetMechanismList`, `C_GetMechanismInfo`): the token is found by label or serial, never by
//!   slot id (slot ids change when a token is initialised); [`KeyBackend::supports`] reports only
//!   what the mechanism list really offers.
//! - "Session management functions" (`C_OpenSession`, `C_Login`, `C_GetSessionInfo`): login
//!   state is shared by all sessions of an application, so the pool logs in once; a session is
//!   used by one thread at a time.
//! - "Object management functions" (`C_FindObjects*`, `C_GetAttributeValue`): keys are found by
//!   `CKA_CLASS`, `CKA_LABEL` and `CKA_ID`; object handles are re-found after a module restart.
//! - "Private key objects": `CKA_SENSITIVE` and `CKA_EXTRACTABLE` (and their `CKA_ALWAYS_*` /
//!   `CKA_NEVER_*` companions) keep the private value inside the token.
//! - "Key management functions" (`C_GenerateKeyPair`, `C_GenerateKey`), "Signing and MACing
//!   functions" (`C_Sign`), "Encryption"/"Decryption functions" (`C_Encrypt`, `C_Decrypt`) and
//!   "Random number generation functions" (`C_GenerateRandom`).
//! - Current Mechanisms Specification v2.40 / v3.0: `CKM_RSA_PKCS_KEY_PAIR_GEN`, `CKM_RSA_PKCS`
//!   (the caller builds the DigestInfo), `CKM_RSA_PKCS_PSS` (`CK_RSA_PKCS_PSS_PARAMS`),
//!   `CKM_EC_KEY_PAIR_GEN` and `CKM_ECDSA` (raw `r || s` output), `CKM_AES_KEY_GEN` and
//!   `CKM_AES_GCM` (`CK_GCM_PARAMS`); v3.0 only: `CKM_EC_EDWARDS_KEY_PAIR_GEN` and `CKM_EDDSA`
//!   (no parameters: PureEdDSA Ed25519).
//! - RFC 7512 §2.3: key handles are PKCS#11 URIs (`pkcs11:token=…;object=…;id=…;type=private`),
//!   and existing keys are adopted by URI.
//!
//! Signatures have exactly the software backend's format (see `docs/signatures.md`): ECDSA is a
//! DER `Ecdsa-Sig-Value` (RFC 3279 §2.2.3) over the host-computed digest, RSA is PKCS#1 v1.5 or
//! PSS (salt as long as the hash, MGF1 with the same hash) over that digest, Ed25519 signs the
//! digest bytes as its message. Post-quantum algorithms are never offered by this backend.
//!
//! Every token call runs on the calling thread and blocks; the async trait methods move them to
//! a blocking thread. `open` and `health` are synchronous in the trait and do a few short token
//! calls.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{self as lc, ParsedPublicKey, RsaPublicKeyComponents};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Function, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::{Limit, Slot};
use cryptoki::types::AuthPin;
use signet_core::backend::{GeneratedKey, KeyBackend, KeySpec, SigningKey};
use signet_core::key::KeyHandle;
use signet_core::secret::SecretString;
use signet_core::{Algorithm, CoreError, Digest, DigestAlgorithm, ErrorCode};
use zeroize::Zeroizing;

/// How to reach the token. The PIN is only ever held as a [`SecretString`] (zeroized, redacted in
/// `Debug`).
#[derive(Debug, Clone)]
pub struct Pkcs11Config {
    /// Path of the PKCS#11 module (shared library), e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// `CKA_LABEL` of the token (`token=` in a PKCS#11 URI). At least one of label and serial.
    pub token_label: Option<String>,
    /// Serial number of the token (`serial=` in a PKCS#11 URI).
    pub token_serial: Option<String>,
    /// The user PIN.
    pub pin: SecretString,
    /// Most sessions the backend opens at once (default: twice the number of CPUs, never more
    /// than the token's `ulMaxSessionCount`).
    pub max_sessions: Option<usize>,
}

/// How long a signer waits for a free session before it reports the token as busy.
const SESSION_WAIT: Duration = Duration::from_secs(30);
/// After the token refused the PIN, how long before the backend tries it again (a token locks
/// the PIN after a few wrong tries; one try per period cannot lock it quickly).
const LOGIN_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Labels under this prefix belong to keys Signet generated.
const LABEL_PREFIX: &str = "signet/";
/// Longest PKCS#11 URI accepted as a key handle or locator.
const MAX_URI_LEN: usize = 2048;
/// Largest secret `wrap_secret` protects (a key-encryption key is 32 bytes).
const MAX_WRAPPED_SECRET: usize = 64 * 1024;
/// Version byte of blobs from [`Pkcs11Backend::wrap_secret`]: AES-256-GCM, 12-byte IV, 16-byte tag.
const WRAP_V1_GCM: u8 = 1;
const GCM_IV_LEN: usize = 12;
const GCM_TAG_LEN: usize = 16;

// DER encodings of the curve identifiers in CKA_EC_PARAMS.
/// `prime256v1` (secp256r1), 1.2.840.10045.3.1.7.
const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// `secp384r1`, 1.3.132.0.34.
const P384_PARAMS: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
/// `id-Ed25519`, 1.3.101.112 (RFC 8410).
const ED25519_OID_PARAMS: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// PrintableString `edwards25519` (the other form PKCS#11 v3.0 allows for Edwards curves).
const ED25519_NAME_PARAMS: &[u8] = b"\x13\x0cedwards25519";

// ---------------------------------------------------------------------------------------------
// The module: one initialised context per module path per process.
// ---------------------------------------------------------------------------------------------

/// A loaded, initialised PKCS#11 module. Every token call runs under a read guard of `gate`;
/// restarting the module (`C_Finalize` + `C_Initialize`) takes the write guard, so no call is in
/// flight while it happens and every session opened before it is known to be dead afterwards.
struct Module {
    path: PathBuf,
    ctx: Pkcs11,
    /// How many times the module was (re)initialised by this process.
    gate: RwLock<u64>,
}

static MODULES: Mutex<Vec<Arc<Module>>> = Mutex::new(Vec::new());

/// Shortens input quoted back in an error message (at a character boundary).
fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let end = (0..=max)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}…", s.get(..end).unwrap_or_default())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Module {
    /// The process's context for the module at `path`, loading and initialising it once.
    fn load(path: &Path) -> Result<Arc<Module>, CoreError> {
        let canonical = std::fs::canonicalize(path).map_err(|e| {
            CoreError::new(
                ErrorCode::BackendUnavailable,
                format!(
                    "pkcs11 module `{}` cannot be opened ({e}); set `module` to the token vendor's \
                     PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so",
                    path.display()
                ),
            )
        })?;
        let mut modules = lock(&MODULES);
        if let Some(m) = modules.iter().find(|m| m.path == canonical) {
            return Ok(Arc::clone(m));
        }
        let ctx = Pkcs11::new(&canonical).map_err(|e| {
            CoreError::new(
                ErrorCode::BackendUnavailable,
                format!(
                    "pkcs11 module `{}` cannot be loaded ({e}); check that it is a PKCS#11 \
                     library for this platform",
                    canonical.display()
                ),
            )
        })?;
        initialize(&ctx).map_err(|e| {
            CoreError::new(
                ErrorCode::BackendUnavailable,
                format!(
                    "pkcs11 module `{}` failed to initialise ({}); check its configuration \
                     (for SoftHSM2: `SOFTHSM2_CONF` and its token directory)",
                    canonical.display(),
                    describe(&e)
                ),
            )
        })?;
        let module = Arc::new(Module {
            path: canonical,
            ctx,
            gate: RwLock::new(0),
        });
        modules.push(Arc::clone(&module));
        Ok(module)
    }

    fn enter(&self) -> RwLockReadGuard<'_, u64> {
        self.gate.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Restarts the module unless someone already did since generation `seen`. Sessions and
    /// object handles of earlier generations are dead afterwards; the module also rescans its
    /// slots (SoftHSM2 sees tokens created since the last start only then).
    fn restart(&self, seen: u64) {
        let mut generation = self.gate.write().unwrap_or_else(PoisonError::into_inner);
        if *generation != seen {
            return;
        }
        // Fails harmlessly when the module is not initialised (that may be why we are here).
        let _ = self.ctx.clone().finalize();
        *generation += 1;
        // A failure surfaces as CKR_CRYPTOKI_NOT_INITIALIZED on the next call, which restarts
        // again.
        let _ = initialize(&self.ctx);
    }
}

fn initialize(ctx: &Pkcs11) -> Result<(), P11Error> {
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A PKCS#11 failure in a few words, for messages and logs (never includes the PIN).
fn describe(e: &P11Error) -> String {
    match e {
        P11Error::Pkcs11(rv, function) => format!("C_{function:?} returned {rv:?}"),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Failures and how to recover from them.
// ---------------------------------------------------------------------------------------------

/// Why an operation on the token failed.
enum Fault {
    /// The token or module said no.
    Token(P11Error),
    /// The configured token is not among the module's slots.
    TokenMissing(CoreError),
    /// A decision of this backend (bad key, not found, ambiguous, …).
    Refused(CoreError),
}

impl From<P11Error> for Fault {
    fn from(e: P11Error) -> Self {
        Fault::Token(e)
    }
}

impl From<CoreError> for Fault {
    fn from(e: CoreError) -> Self {
        Fault::Refused(e)
    }
}

/// What to do before the one retry an operation gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recovery {
    /// Not a token problem: report it.
    None,
    /// Object handles went stale: find the objects again.
    Refind,
    /// Sessions were closed or logged out: drop the dead ones, log in again.
    Sessions,
    /// The module or the token went away: restart the module and find the token again.
    Module,
}

fn recovery(fault: &Fault) -> Recovery {
    match fault {
        Fault::Token(e) => token_recovery(e),
        Fault::TokenMissing(_) => Recovery::Module,
        Fault::Refused(_) => Recovery::None,
    }
}

fn token_recovery(e: &P11Error) -> Recovery {
    match e {
        P11Error::Pkcs11(rv, _) => match rv {
            RvError::SessionHandleInvalid | RvError::SessionClosed | RvError::UserNotLoggedIn => {
                Recovery::Sessions
            }
            RvError::ObjectHandleInvalid | RvError::KeyHandleInvalid => Recovery::Refind,
            RvError::CryptokiNotInitialized
            | RvError::DeviceRemoved
            | RvError::DeviceError
            | RvError::TokenNotPresent
            | RvError::TokenNotRecognized
            | RvError::SlotIdInvalid
            | RvError::GeneralError
            | RvError::FunctionFailed => Recovery::Module,
            _ => Recovery::None,
        },
        _ => Recovery::None,
    }
}

/// Whether a failure could mean the token is gone, or only that the operation failed (SoftHSM2
/// reports a bad GCM tag as `CKR_GENERAL_ERROR`): those are checked by probing the token.
fn ambiguous(fault: &Fault) -> bool {
    matches!(
        fault,
        Fault::Token(P11Error::Pkcs11(
            RvError::GeneralError | RvError::FunctionFailed | RvError::DeviceError,
            _
        ))
    )
}

fn is_login_refusal(rv: RvError) -> bool {
    matches!(
        rv,
        RvError::PinIncorrect
            | RvError::PinInvalid
            | RvError::PinLenRange
            | RvError::PinExpired
            | RvError::PinLocked
            | RvError::UserPinNotInitialized
    )
}

// ---------------------------------------------------------------------------------------------
// The backend.
// ---------------------------------------------------------------------------------------------

/// Keys generated and used inside one PKCS#11 token. Cheap to clone; all clones share one
/// session pool.
#[derive(Clone)]
pub struct Pkcs11Backend {
    inner: Arc<Inner>,
}

impl fmt::Debug for Pkcs11Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Backend")
            .field("module", &self.inner.module.path)
            .field("token", &self.inner.token_name())
            .field("max_sessions", &self.inner.max_sessions)
            .finish_non_exhaustive()
    }
}

struct Inner {
    module: Arc<Module>,
    token_label: Option<String>,
    token_serial: Option<String>,
    pin: SecretString,
    max_sessions: usize,
    pool: Mutex<Pool>,
    returned: Condvar,
    /// Algorithms the token could generate and sign with when it was last found.
    supported: RwLock<Vec<Algorithm>>,
    /// How many times an operation recovered from a token failure and was retried.
    recoveries: AtomicU64,
}

/// The token as found in a slot.
#[derive(Clone)]
struct Token {
    slot: Slot,
    label: String,
    serial: String,
    manufacturer: String,
    model: String,
    /// Sessions this backend may open on it.
    capacity: usize,
}

struct Pool {
    /// The module generation the sessions below belong to.
    generation: u64,
    token: Option<Token>,
    idle: Vec<Session>,
    /// Sessions open (idle or leased).
    open: usize,
    /// When the token last refused the PIN, and how.
    login_refused: Option<(Instant, RvError)>,
}

/// A session leased from the pool, used under the module's read guard and returned on drop.
struct Lease<'a> {
    inner: &'a Inner,
    session: Option<Session>,
    generation: u64,
    token: Token,
}

impl Lease<'_> {
    fn session(&self) -> Result<&Session, Fault> {
        self.session.as_ref().ok_or_else(|| {
            Fault::Refused(CoreError::new(
                ErrorCode::Internal,
                "pkcs11 session lease used after it was discarded",
            ))
        })
    }

    /// Drops a dead session without closing it (its handle may already belong to another).
    fn discard(&mut self) {
        if self.session.take().is_some() {
            let mut pool = lock(&self.inner.pool);
            if pool.generation == self.generation {
                pool.open = pool.open.saturating_sub(1);
            }
            drop(pool);
            self.inner.returned.notify_one();
        }
    }

    /// Whether the token and this session still answer (used to tell a failed operation from a
    /// token that went away).
    fn probe(&self) -> Result<(), Fault> {
        self.inner.module.ctx.get_token_info(self.token.slot)?;
        self.session()?.get_session_info()?;
        Ok(())
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            let mut pool = lock(&self.inner.pool);
            if pool.generation == self.generation {
                pool.idle.push(session);
            }
            drop(pool);
            self.inner.returned.notify_one();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let generation = self.module.enter();
        let mut pool = lock(&self.pool);
        if pool.generation == *generation {
            for session in pool.idle.drain(..) {
                // Closing the last session also logs the application out of the token.
                let _ = session.close();
            }
        }
    }
}

impl Pkcs11Backend {
    pub const ID: &'static str = "pkcs11";

    /// Loads the module, finds the token, logs in once and reads the token's mechanisms.
    /// Blocks on token calls: call it at start-up or from a blocking thread.
    pub fn new(config: Pkcs11Config) -> Result<Self, CoreError> {
        let token_label = config.token_label.filter(|l| !l.trim().is_empty());
        let token_serial = config.token_serial.filter(|s| !s.trim().is_empty());
        if token_label.is_none() && token_serial.is_none() {
            return Err(CoreError::new(
                ErrorCode::InvalidRequest,
                "the pkcs11 backend needs `token_label` or `token_serial`; \
                 `pkcs11-tool --module <module> --list-token-slots` lists the tokens",
            ));
        }
        if config.max_sessions == Some(0) {
            return Err(CoreError::new(
                ErrorCode::InvalidRequest,
                "pkcs11 `max_sessions` is `0`; set at least 1 or leave it out",
            ));
        }
        let cpus = std::thread::available_parallelism().map_or(2, usize::from);
        let module = Module::load(&config.module)?;
        let generation = *module.enter();
        let inner = Inner {
            module,
            token_label,
            token_serial,
            pin: config.pin,
            max_sessions: config.max_sessions.unwrap_or(2 * cpus),
            pool: Mutex::new(Pool {
                generation,
                token: None,
                idle: Vec::new(),
                open: 0,
                login_refused: None,
            }),
            returned: Condvar::new(),
            supported: RwLock::new(Vec::new()),
            recoveries: AtomicU64::new(0),
        };
        // Finds the token (restarting the module once if it was created after the module was
        // loaded), opens the first session and logs in: a wrong PIN fails here, at start-up.
        inner.run("connecting to the token", |lease, _| {
            lease.session()?;
            Ok(())
        })?;
        Ok(Pkcs11Backend {
            inner: Arc::new(inner),
        })
    }

    /// The token's label, as the token reports it (or as configured before it was found).
    pub fn token_label(&self) -> String {
        let pool = lock(&self.inner.pool);
        pool.token
            .as_ref()
            .map(|t| t.label.clone())
            .or_else(|| self.inner.token_label.clone())
            .unwrap_or_default()
    }

    /// How many times an operation met a token failure (closed sessions, lost login, stale
    /// handles, module or token gone), recovered and was retried. Worth exporting as a metric.
    pub fn recoveries(&self) -> u64 {
        self.inner.recoveries.load(Ordering::Relaxed)
    }

    /// Creates the AES-256 wrapping key `label` in the token unless it exists; an existing key
    /// must be an AES-256 key that is sensitive, not extractable and allowed to encrypt and
    /// decrypt. Used for unsealing the key-encryption key with the token.
    pub fn ensure_wrapping_key(&self, label: &str) -> Result<(), CoreError> {
        check_wrapping_label(label)?;
        self.inner
            .run(&format!("creating wrapping key `{label}`"), |lease, _| {
                let session = lease.session()?;
                if find_wrapping_key(session, label)?.is_some() {
                    return Ok(());
                }
                let template = [
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::ValueLen(32.into()),
                    Attribute::Label(label.as_bytes().to_vec()),
                    Attribute::Token(true),
                    Attribute::Private(true),
                    // INVARIANT: the wrapping key never leaves the token in plaintext, and is
                    // never usable to wrap (export) other keys.
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Encrypt(true),
                    Attribute::Decrypt(true),
                    Attribute::Wrap(false),
                    Attribute::Unwrap(false),
                    Attribute::Sign(false),
                    Attribute::Derive(false),
                ];
                session.generate_key(&Mechanism::AesKeyGen, &template)?;
                Ok(())
            })
    }

    /// Encrypts `plaintext` (at most 64 KiB) under the token's AES-256 key `label` with
    /// AES-256-GCM and a fresh 12-byte IV from the token's generator. The blob is
    /// `0x01 || iv || ciphertext || tag`; the label is authenticated with it.
    pub fn wrap_secret(&self, label: &str, plaintext: &[u8]) -> Result<Vec<u8>, CoreError> {
        check_wrapping_label(label)?;
        if plaintext.len() > MAX_WRAPPED_SECRET {
            return Err(CoreError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "secret to wrap is {} bytes; at most {MAX_WRAPPED_SECRET} bytes can be wrapped",
                    plaintext.len()
                ),
            ));
        }
        let aad = wrap_aad(label);
        self.inner
            .run(&format!("wrapping with `{label}`"), |lease, _| {
                let session = lease.session()?;
                let key = require_wrapping_key(session, label)?;
                let mut iv = [0u8; GCM_IV_LEN];
                session.generate_random_slice(&mut iv)?;
                let mut blob = Vec::with_capacity(1 + GCM_IV_LEN + plaintext.len() + GCM_TAG_LEN);
                blob.push(WRAP_V1_GCM);
                blob.extend_from_slice(&iv);
                let params = GcmParams::new(&mut iv, &aad, gcm_tag_bits())?;
                let sealed = session.encrypt(&Mechanism::AesGcm(params), key, plaintext)?;
                blob.extend_from_slice(&sealed);
                Ok(blob)
            })
    }

    /// Decrypts a blob from [`Pkcs11Backend::wrap_secret`] with the token's key `label`. A blob
    /// that was changed, or made under another key or label, is refused (`invalid_request`).
    pub fn unwrap_secret(&self, label: &str, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, CoreError> {
        check_wrapping_label(label)?;
        let (version, rest) = blob.split_first().ok_or_else(|| bad_blob(label))?;
        if *version != WRAP_V1_GCM || rest.len() < GCM_IV_LEN + GCM_TAG_LEN {
            return Err(bad_blob(label));
        }
        let (iv, sealed) = rest.split_at(GCM_IV_LEN);
        let aad = wrap_aad(label);
        self.inner
            .run(&format!("unwrapping with `{label}`"), |lease, _| {
                let session = lease.session()?;
                let key = require_wrapping_key(session, label)?;
                let mut iv = iv.to_vec();
                let params = GcmParams::new(&mut iv, &aad, gcm_tag_bits())?;
                match session.decrypt(&Mechanism::AesGcm(params), key, sealed) {
                    Ok(plain) => Ok(Zeroizing::new(plain)),
                    Err(e) => {
                        let fault = Fault::Token(e);
                        let tag_failure = matches!(
                            &fault,
                            Fault::Token(P11Error::Pkcs11(
                                RvError::EncryptedDataInvalid
                                    | RvError::EncryptedDataLenRange
                                    | RvError::GeneralError
                                    | RvError::FunctionFailed,
                                _
                            ))
                        );
                        // A token that still answers did not go away: the blob is bad.
                        if tag_failure && lease.probe().is_ok() {
                            return Err(Fault::Refused(bad_blob(label)));
                        }
                        Err(fault)
                    }
                }
            })
    }
}

fn gcm_tag_bits() -> cryptoki::types::Ulong {
    cryptoki::types::Ulong::new(128)
}

fn wrap_aad(label: &str) -> Vec<u8> {
    format!("signet pkcs11 wrap v1|{label}").into_bytes()
}

fn bad_blob(label: &str) -> CoreError {
    CoreError::new(
        ErrorCode::InvalidRequest,
        format!(
            "wrapped secret does not open with pkcs11 wrapping key `{}`; it is damaged or was \
             made with another key",
            truncate(label, 80)
        ),
    )
}

fn check_wrapping_label(label: &str) -> Result<(), CoreError> {
    if label.is_empty() || label.len() > 128 || label.chars().any(char::is_control) {
        return Err(CoreError::new(
            ErrorCode::InvalidRequest,
            format!(
                "pkcs11 wrapping key label `{}` is not usable; use 1 to 128 printable characters",
                truncate(label, 80)
            ),
        ));
    }
    Ok(())
}

fn find_wrapping_key(session: &Session, label: &str) -> Result<Option<ObjectHandle>, Fault> {
    let found = session.find_objects(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::Label(label.as_bytes().to_vec()),
    ])?;
    let key = match found.as_slice() {
        [] => return Ok(None),
        [one] => *one,
        _ => {
            return Err(Fault::Refused(CoreError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "{} secret keys in the token are labelled `{}`; delete the extra ones or \
                     use another label",
                    found.len(),
                    truncate(label, 80)
                ),
            )));
        }
    };
    let attrs = session.get_attributes(
        key,
        &[
            AttributeType::KeyType,
            AttributeType::ValueLen,
            AttributeType::Sensitive,
            AttributeType::Extractable,
            AttributeType::Encrypt,
            AttributeType::Decrypt,
        ],
    )?;
    let mut ok = (false, false, false, true, false, false);
    for a in &attrs {
        match a {
            Attribute::KeyType(t) => ok.0 = *t == KeyType::AES,
            Attribute::ValueLen(n) => ok.1 = **n == 32,
            Attribute::Sensitive(b) => ok.2 = *b,
            Attribute::Extractable(b) => ok.3 = *b,
            Attribute::Encrypt(b) => ok.4 = *b,
            Attribute::Decrypt(b) => ok.5 = *b,
            _ => {}
        }
    }
    // INVARIANT: only a sensitive, non-extractable AES-256 key protects the key-encryption key.
    if !(ok.0 && ok.1 && ok.2 && !ok.3 && ok.4 && ok.5) {
        return Err(Fault::Refused(CoreError::new(
            ErrorCode::InvalidRequest,
            format!(
                "token key `{}` is not a sensitive, non-extractable AES-256 key allowed to \
                 encrypt and decrypt; choose another label so Signet creates one",
                truncate(label, 80)
            ),
        )));
    }
    Ok(Some(key))
}

fn require_wrapping_key(session: &Session, label: &str) -> Result<ObjectHandle, Fault> {
    find_wrapping_key(session, label)?.ok_or_else(|| {
        Fault::Refused(CoreError::new(
            ErrorCode::InvalidRequest,
            format!(
                "the token has no wrapping key `{}`; create it first (ensure_wrapping_key)",
                truncate(label, 80)
            ),
        ))
    })
}

impl Inner {
    fn token_name(&self) -> String {
        match (&self.token_label, &self.token_serial) {
            (Some(l), Some(s)) => format!("{l} (serial {s})"),
            (Some(l), None) => l.clone(),
            (None, Some(s)) => format!("serial {s}"),
            (None, None) => String::new(),
        }
    }

    /// Runs `op` with a leased session; on a token failure recovers (see [`Recovery`]) and runs
    /// it once more. `op`'s second argument is `true` on the retry (cached object handles must
    /// then be found again).
    fn run<T>(
        &self,
        what: &str,
        mut op: impl FnMut(&mut Lease<'_>, bool) -> Result<T, Fault>,
    ) -> Result<T, CoreError> {
        let mut retry = false;
        loop {
            let gate = self.module.enter();
            let generation = *gate;
            let fault = match self.lease(generation, retry) {
                Err(fault) => fault,
                Ok(mut lease) => match op(&mut lease, retry) {
                    Ok(v) => return Ok(v),
                    Err(fault) if ambiguous(&fault) => match lease.probe() {
                        // The token still answers: the operation itself failed.
                        Ok(()) => return Err(self.report(what, fault)),
                        Err(probe) => probe,
                    },
                    Err(fault) => {
                        if matches!(
                            &fault,
                            Fault::Token(P11Error::Pkcs11(
                                RvError::SessionHandleInvalid | RvError::SessionClosed,
                                _
                            ))
                        ) {
                            lease.discard();
                        }
                        fault
                    }
                },
            };
            drop(gate);
            let how = recovery(&fault);
            if retry || how == Recovery::None {
                return Err(self.report(what, fault));
            }
            self.recoveries.fetch_add(1, Ordering::Relaxed);
            match how {
                Recovery::Module => self.module.restart(generation),
                Recovery::Sessions => self.purge_sessions(generation),
                Recovery::Refind | Recovery::None => {}
            }
            retry = true;
        }
    }

    /// Drops every idle session that the token no longer knows (with no operation in flight,
    /// so that no handle is reused while a stale copy is still around).
    fn purge_sessions(&self, seen: u64) {
        let generation = self
            .module
            .gate
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if *generation != seen {
            return;
        }
        let mut pool = lock(&self.pool);
        let before = pool.idle.len();
        pool.idle.retain(|s| s.get_session_info().is_ok());
        let dropped = before - pool.idle.len();
        pool.open = pool.open.saturating_sub(dropped);
    }

    /// A session of the current module generation, logged in. With `verify`, a pooled session
    /// is checked first (dead ones are dropped, logged-out ones log in again).
    fn lease(&self, generation: u64, verify: bool) -> Result<Lease<'_>, Fault> {
        let deadline = Instant::now() + SESSION_WAIT;
        let mut pool = lock(&self.pool);
        loop {
            if pool.generation != generation {
                // The module restarted: every session and handle of before is gone. Dropping
                // does not close them (their numbers may already be reused).
                pool.idle.clear();
                pool.open = 0;
                pool.token = None;
                pool.generation = generation;
            }
            let token = match &pool.token {
                Some(t) => t.clone(),
                None => {
                    let t = self.find_token()?;
                    pool.token = Some(t.clone());
                    t
                }
            };
            if let Some(session) = pool.idle.pop() {
                let mut relogin = false;
                if verify {
                    match session.get_session_info() {
                        Ok(info) => relogin = !logged_in(info.session_state()),
                        Err(_) => {
                            // Gone: drop it without closing and look again.
                            pool.open = pool.open.saturating_sub(1);
                            continue;
                        }
                    }
                }
                drop(pool);
                let lease = Lease {
                    inner: self,
                    session: Some(session),
                    generation,
                    token,
                };
                if relogin {
                    // On failure the lease goes back to the pool.
                    self.login(lease.session()?)?;
                }
                return Ok(lease);
            }
            if pool.open < token.capacity {
                pool.open += 1;
                drop(pool);
                match self.open_session(&token) {
                    Ok(session) => {
                        return Ok(Lease {
                            inner: self,
                            session: Some(session),
                            generation,
                            token,
                        });
                    }
                    Err(Fault::Token(P11Error::Pkcs11(RvError::SessionCount, _))) => {
                        // The token has fewer sessions left than it announced: use what we have.
                        pool = lock(&self.pool);
                        pool.open = pool.open.saturating_sub(1);
                        if pool.open == 0 {
                            return Err(Fault::Token(P11Error::Pkcs11(
                                RvError::SessionCount,
                                Function::OpenSession,
                            )));
                        }
                        let open = pool.open;
                        if let Some(t) = pool.token.as_mut() {
                            t.capacity = open;
                        }
                        continue;
                    }
                    Err(e) => {
                        let mut pool = lock(&self.pool);
                        pool.open = pool.open.saturating_sub(1);
                        drop(pool);
                        self.returned.notify_one();
                        return Err(e);
                    }
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Fault::Refused(CoreError::new(
                    ErrorCode::BackendUnavailable,
                    format!(
                        "all {} sessions to pkcs11 token `{}` stayed busy for {}s; raise \
                         `max_sessions` if the token allows more",
                        token.capacity,
                        token.label,
                        SESSION_WAIT.as_secs()
                    ),
                )));
            }
            pool = self
                .returned
                .wait_timeout(pool, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn open_session(&self, token: &Token) -> Result<Session, Fault> {
        // Not closed on drop: the pool decides (a dead session's number may be reused).
        let session = self.module.ctx.open_rw_session_no_drop(token.slot)?;
        let state = match session.get_session_info() {
            Ok(info) => info.session_state(),
            Err(e) => {
                let _ = session.close();
                return Err(e.into());
            }
        };
        if !logged_in(state)
            && let Err(e) = self.login(&session)
        {
            let _ = session.close();
            return Err(e);
        }
        Ok(session)
    }

    /// Logs the application in (all its sessions share the login). Never retries a PIN the
    /// token refused within [`LOGIN_RETRY_AFTER`], and never makes the try the token says would
    /// lock the PIN.
    fn login(&self, session: &Session) -> Result<(), Fault> {
        let slot = {
            let pool = lock(&self.pool);
            if let Some((at, rv)) = pool.login_refused
                && at.elapsed() < LOGIN_RETRY_AFTER
            {
                return Err(Fault::Refused(self.pin_refused(rv, true)));
            }
            pool.token.as_ref().map(|t| t.slot)
        };
        if let Some(slot) = slot {
            let info = self.module.ctx.get_token_info(slot)?;
            if info.user_pin_locked() || info.user_pin_final_try() {
                return Err(Fault::Refused(CoreError::new(
                    ErrorCode::BackendUnavailable,
                    format!(
                        "the user pin of pkcs11 token `{}` is locked or has one try left, and \
                         Signet does not risk the last try; log in once with the right pin \
                         using the token's tools (or unlock the pin), then retry",
                        self.token_name()
                    ),
                )));
            }
        }
        let pin = AuthPin::from(self.pin.expose());
        match session.login(UserType::User, Some(&pin)) {
            Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {
                lock(&self.pool).login_refused = None;
                Ok(())
            }
            Err(P11Error::Pkcs11(rv, _)) if is_login_refusal(rv) => {
                lock(&self.pool).login_refused = Some((Instant::now(), rv));
                Err(Fault::Refused(self.pin_refused(rv, false)))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn pin_refused(&self, rv: RvError, earlier: bool) -> CoreError {
        CoreError::new(
            ErrorCode::BackendUnavailable,
            format!(
                "pkcs11 token `{}` refused the pin ({rv:?}){}; fix `pin` in the pkcs11 backend \
                 configuration (the backend tries again every {}s)",
                self.token_name(),
                if earlier { " on the last try" } else { "" },
                LOGIN_RETRY_AFTER.as_secs()
            ),
        )
    }

    /// Finds the configured token among the module's slots and reads what it can do.
    fn find_token(&self) -> Result<Token, Fault> {
        let ctx = &self.module.ctx;
        for slot in ctx.get_slots_with_token()? {
            let Ok(info) = ctx.get_token_info(slot) else {
                continue;
            };
            let label = info.label().trim_end().to_owned();
            let serial = info.serial_number().trim_end().to_owned();
            if self.token_label.as_deref().is_some_and(|l| l != label)
                || self.token_serial.as_deref().is_some_and(|s| s != serial)
            {
                continue;
            }
            let token_max = match info.max_session_count() {
                Limit::Max(n) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX),
                _ => usize::MAX,
            };
            let supported = supported_algorithms(ctx, slot)?;
            *self
                .supported
                .write()
                .unwrap_or_else(PoisonError::into_inner) = supported;
            return Ok(Token {
                slot,
                label,
                serial,
                manufacturer: info.manufacturer_id().trim_end().to_owned(),
                model: info.model().trim_end().to_owned(),
                capacity: self.max_sessions.min(token_max).max(1),
            });
        }
        Err(Fault::TokenMissing(CoreError::new(
            ErrorCode::BackendUnavailable,
            format!(
                "pkcs11 token `{}` is not present in module `{}`; check `token_label`/`token_serial` \
                 and that the token is initialised (`pkcs11-tool --module {} --list-token-slots`)",
                self.token_name(),
                self.module.path.display(),
                self.module.path.display()
            ),
        )))
    }

    fn report(&self, what: &str, fault: Fault) -> CoreError {
        match fault {
            Fault::Refused(e) | Fault::TokenMissing(e) => e,
            Fault::Token(e) => {
                let unavailable = token_recovery(&e) != Recovery::None
                    || matches!(
                        &e,
                        P11Error::Pkcs11(
                            RvError::SessionCount
                                | RvError::DeviceMemory
                                | RvError::HostMemory
                                | RvError::TokenWriteProtected,
                            _
                        ) | P11Error::LibraryLoading(_)
                    );
                if unavailable {
                    CoreError::new(
                        ErrorCode::BackendUnavailable,
                        format!(
                            "pkcs11 token `{}` failed while {what}: {}; check the token and its \
                             module (the backend reconnects by itself when the token is back)",
                            self.token_name(),
                            describe(&e)
                        ),
                    )
                } else {
                    CoreError::internal(
                        format!(
                            "pkcs11 token `{}` failed while {what}: {}",
                            self.token_name(),
                            describe(&e)
                        ),
                        e,
                    )
                }
            }
        }
    }
}

fn logged_in(state: SessionState) -> bool {
    matches!(state, SessionState::RoUser | SessionState::RwUser)
}

/// Which Signet algorithms the token in `slot` can generate and sign with, from its mechanism
/// list (and key-size ranges where it gives them). Never post-quantum ones.
fn supported_algorithms(ctx: &Pkcs11, slot: Slot) -> Result<Vec<Algorithm>, P11Error> {
    let mechanisms = ctx.get_mechanism_list(slot)?;
    let has = |m: MechanismType| mechanisms.contains(&m);
    // Key sizes in bits; a token that reports 0 as maximum gives no information.
    let fits = |m: MechanismType, bits: usize| {
        ctx.get_mechanism_info(slot, m).is_ok_and(|info| {
            let (min, max) = (info.min_key_size(), info.max_key_size());
            min <= bits && (max == 0 || bits <= max)
        })
    };
    let mut out = Vec::new();
    for alg in Algorithm::ALL {
        let ok = match alg {
            Algorithm::Ed25519 => {
                has(MechanismType::ECC_EDWARDS_KEY_PAIR_GEN) && has(MechanismType::EDDSA)
            }
            Algorithm::EcdsaP256 | Algorithm::EcdsaP384 => {
                let bits = if alg == Algorithm::EcdsaP256 {
                    256
                } else {
                    384
                };
                has(MechanismType::ECC_KEY_PAIR_GEN)
                    && has(MechanismType::ECDSA)
                    && fits(MechanismType::ECDSA, bits)
            }
            Algorithm::Rsa3072Pss | Algorithm::Rsa4096Pss => {
                let bits = alg.rsa_bits().map_or(0, |b| b as usize);
                has(MechanismType::RSA_PKCS_KEY_PAIR_GEN)
                    && has(MechanismType::RSA_PKCS_PSS)
                    && fits(MechanismType::RSA_PKCS_KEY_PAIR_GEN, bits)
            }
            Algorithm::Rsa3072Pkcs1 | Algorithm::Rsa4096Pkcs1 => {
                let bits = alg.rsa_bits().map_or(0, |b| b as usize);
                has(MechanismType::RSA_PKCS_KEY_PAIR_GEN)
                    && has(MechanismType::RSA_PKCS)
                    && fits(MechanismType::RSA_PKCS_KEY_PAIR_GEN, bits)
            }
            // Post-quantum keys stay in the software backend.
            _ => false,
        };
        if ok && !alg.is_post_quantum() {
            out.push(alg);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Key objects: labels, ids, URIs, public keys.
// ---------------------------------------------------------------------------------------------

/// The label of the objects generated for `spec`.
fn label_for(spec: &KeySpec) -> String {
    format!("{LABEL_PREFIX}{}/v{}", spec.key_id, spec.version)
}

/// The first 8 bytes of `CKA_ID` of generated objects: they bind the objects to the key id,
/// version and algorithm; 8 random bytes follow so that generating again never collides.
fn id_tag(spec: &KeySpec) -> [u8; 8] {
    let d = digest::digest(
        &digest::SHA256,
        format!(
            "signet pkcs11 key v1|{}|{}|{}",
            spec.key_id, spec.version, spec.algorithm
        )
        .as_bytes(),
    );
    let mut tag = [0u8; 8];
    tag.copy_from_slice(d.as_ref().get(..8).unwrap_or(&[0u8; 8]));
    tag
}

/// Where a private key object is: what a PKCS#11 URI names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Locator {
    token: Option<String>,
    serial: Option<String>,
    manufacturer: Option<String>,
    model: Option<String>,
    object: Option<Vec<u8>>,
    id: Option<Vec<u8>>,
    kind: Option<String>,
}

/// A URI as quoted in messages: shortened, and without its query part, which may hold a PIN
/// (`pin-value`) that must never reach a message or a log.
fn shown(uri: &str) -> String {
    match uri.split_once('?') {
        Some((path, _)) => format!("{}?…", truncate(path, 120)),
        None => truncate(uri, 120),
    }
}

fn uri_error(uri: &str, why: &str) -> CoreError {
    CoreError::new(
        ErrorCode::InvalidRequest,
        format!(
            "`{}` is not a usable PKCS#11 URI: {why}; write it like \
             `pkcs11:token=<token>;object=<label>;id=%01%02;type=private` (RFC 7512)",
            shown(uri)
        ),
    )
}

fn pct_decode(uri: &str, value: &str) -> Result<Vec<u8>, CoreError> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| uri_error(uri, "a `%` is not followed by two hex digits"))?;
            out.push(hex);
            i += 3;
        } else {
            if !b.is_ascii_graphic() {
                return Err(uri_error(
                    uri,
                    "it holds a space, control or non-ASCII character; percent-encode it",
                ));
            }
            out.push(b);
            i += 1;
        }
    }
    Ok(out)
}

fn pct_encode(out: &mut String, bytes: &[u8], all: bool) {
    for &b in bytes {
        if !all && (b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

impl Locator {
    /// Parses an RFC 7512 PKCS#11 URI naming a key object.
    fn parse(uri: &str) -> Result<Locator, CoreError> {
        if uri.len() > MAX_URI_LEN {
            return Err(uri_error(
                uri,
                &format!("it is longer than {MAX_URI_LEN} bytes"),
            ));
        }
        let rest = uri
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case("pkcs11:"))
            .and_then(|_| uri.get(7..))
            .ok_or_else(|| uri_error(uri, "it does not start with `pkcs11:`"))?;
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        // Query attributes say how to log in or which module to load: the configuration fixes
        // both, and a PIN must never sit in a stored handle.
        if let Some(attr) = query.and_then(|q| q.split('&').find(|a| !a.is_empty())) {
            let name = attr.split_once('=').map_or(attr, |(n, _)| n);
            let why = match name {
                "pin-value" | "pin-source" => {
                    "the pin comes from the pkcs11 backend configuration; remove `pin-value`/`pin-source`"
                }
                "module-name" | "module-path" => {
                    "the module comes from the pkcs11 backend configuration; remove `module-name`/`module-path`"
                }
                _ => "it has an unknown query attribute; remove the `?…` part",
            };
            return Err(uri_error(uri, why));
        }
        let mut loc = Locator::default();
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (name, value) = attr
                .split_once('=')
                .ok_or_else(|| uri_error(uri, &format!("attribute `{attr}` has no `=`")))?;
            let value = pct_decode(uri, value)?;
            let text = || {
                String::from_utf8(value.clone())
                    .map_err(|_| uri_error(uri, &format!("`{name}` is not UTF-8")))
            };
            let slot: &mut Option<_> = match name {
                "token" => {
                    set_once(uri, name, &mut loc.token, text()?)?;
                    continue;
                }
                "serial" => {
                    set_once(uri, name, &mut loc.serial, text()?)?;
                    continue;
                }
                "manufacturer" => {
                    set_once(uri, name, &mut loc.manufacturer, text()?)?;
                    continue;
                }
                "model" => {
                    set_once(uri, name, &mut loc.model, text()?)?;
                    continue;
                }
                "type" => {
                    set_once(uri, name, &mut loc.kind, text()?)?;
                    continue;
                }
                "object" => &mut loc.object,
                "id" => &mut loc.id,
                // Attributes about the library or slot describe what the configuration already
                // fixes; vendor attributes (`x-…`) are for their vendor.
                n if n.starts_with("library-") || n.starts_with("slot-") || n.starts_with("x-") => {
                    continue;
                }
                other => {
                    return Err(uri_error(
                        uri,
                        &format!(
                            "attribute `{}` is not a PKCS#11 URI attribute",
                            truncate(other, 40)
                        ),
                    ));
                }
            };
            set_once(uri, name, slot, value)?;
        }
        if loc.object.is_none() && loc.id.is_none() {
            return Err(uri_error(
                uri,
                "it names no object; add `object=<label>` or `id=<percent-encoded id>`",
            ));
        }
        if let Some(kind) = &loc.kind
            && kind != "private"
        {
            return Err(uri_error(
                uri,
                &format!("`type={kind}` is not a private key; use `type=private`"),
            ));
        }
        Ok(loc)
    }

    /// The canonical URI of this locator (RFC 7512 §2.3: `id` fully percent-encoded).
    fn to_uri(&self) -> String {
        let mut uri = String::from("pkcs11:");
        let mut sep = "";
        for (name, value) in [
            ("token", self.token.as_deref().map(str::as_bytes)),
            ("object", self.object.as_deref()),
        ] {
            if let Some(v) = value {
                uri.push_str(sep);
                uri.push_str(name);
                uri.push('=');
                pct_encode(&mut uri, v, false);
                sep = ";";
            }
        }
        if let Some(id) = &self.id {
            uri.push_str(sep);
            uri.push_str("id=");
            pct_encode(&mut uri, id, true);
            sep = ";";
        }
        uri.push_str(sep);
        uri.push_str("type=private");
        uri
    }

    /// Refuses a locator that names another token than `token`.
    fn check_token(&self, uri: &str, token: &Token) -> Result<(), CoreError> {
        for (what, wanted, actual) in [
            ("token", &self.token, &token.label),
            ("serial", &self.serial, &token.serial),
            ("manufacturer", &self.manufacturer, &token.manufacturer),
            ("model", &self.model, &token.model),
        ] {
            if let Some(w) = wanted
                && w != actual
            {
                return Err(CoreError::new(
                    ErrorCode::InvalidRequest,
                    format!(
                        "`{}` names {what} `{}` but this pkcs11 backend uses {what} `{}`; use a \
                         key of the configured token",
                        shown(uri),
                        truncate(w, 40),
                        truncate(actual, 40)
                    ),
                ));
            }
        }
        Ok(())
    }

    fn private_template(&self) -> Vec<Attribute> {
        let mut t = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
        if let Some(label) = &self.object {
            t.push(Attribute::Label(label.clone()));
        }
        if let Some(id) = &self.id {
            t.push(Attribute::Id(id.clone()));
        }
        t
    }
}

fn set_once<T>(uri: &str, name: &str, slot: &mut Option<T>, value: T) -> Result<(), CoreError> {
    if slot.is_some() {
        return Err(uri_error(uri, &format!("`{name}` appears twice")));
    }
    *slot = Some(value);
    Ok(())
}

/// The one private key object `loc` names.
fn find_private(session: &Session, loc: &Locator, uri: &str) -> Result<ObjectHandle, Fault> {
    let found = session.find_objects(&loc.private_template())?;
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(Fault::Refused(CoreError::new(
            ErrorCode::InvalidRequest,
            format!(
                "no private key in the token matches `{}`; `pkcs11-tool --module <module> \
                 --login --list-objects --type privkey` lists them",
                shown(uri)
            ),
        ))),
        many => Err(Fault::Refused(CoreError::new(
            ErrorCode::InvalidRequest,
            format!(
                "{} private keys in the token match `{}`; add `id=` (and `object=`) so it names one",
                many.len(),
                shown(uri)
            ),
        ))),
    }
}

fn attr_bool(attrs: &[Attribute], ty: AttributeType) -> Option<bool> {
    attrs.iter().find_map(|a| match (a, ty) {
        (Attribute::Sensitive(b), AttributeType::Sensitive)
        | (Attribute::Extractable(b), AttributeType::Extractable)
        | (Attribute::Sign(b), AttributeType::Sign)
        | (Attribute::AlwaysAuthenticate(b), AttributeType::AlwaysAuthenticate) => Some(*b),
        _ => None,
    })
}

fn attr_bytes(attrs: &[Attribute], ty: AttributeType) -> Option<&[u8]> {
    attrs.iter().find_map(|a| match (a, ty) {
        (Attribute::Label(v), AttributeType::Label)
        | (Attribute::Id(v), AttributeType::Id)
        | (Attribute::EcParams(v), AttributeType::EcParams)
        | (Attribute::EcPoint(v), AttributeType::EcPoint)
        | (Attribute::Modulus(v), AttributeType::Modulus)
        | (Attribute::PublicExponent(v), AttributeType::PublicExponent)
        | (Attribute::PublicKeyInfo(v), AttributeType::PublicKeyInfo) => Some(v.as_slice()),
        _ => None,
    })
}

fn attr_key_type(attrs: &[Attribute]) -> Option<KeyType> {
    attrs.iter().find_map(|a| match a {
        Attribute::KeyType(t) => Some(*t),
        _ => None,
    })
}

/// Big-endian bytes without leading zeros.
fn strip_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b.get(start..).unwrap_or_default()
}

fn bit_len(b: &[u8]) -> usize {
    let b = strip_zeros(b);
    match b.first() {
        Some(&top) => b.len() * 8 - top.leading_zeros() as usize,
        None => 0,
    }
}

/// What the private key object must look like for `algorithm`, and its label and id.
struct PrivateKeyFacts {
    label: Vec<u8>,
    id: Vec<u8>,
    key_type: Option<KeyType>,
}

/// Checks that the private key `key` is a signing key of `algorithm` that never leaves the
/// token, and returns its label and id.
fn inspect_private(
    session: &Session,
    key: ObjectHandle,
    algorithm: Algorithm,
    uri: &str,
) -> Result<PrivateKeyFacts, Fault> {
    let attrs = session.get_attributes(
        key,
        &[
            AttributeType::KeyType,
            AttributeType::Label,
            AttributeType::Id,
            AttributeType::Sensitive,
            AttributeType::Extractable,
            AttributeType::Sign,
            AttributeType::AlwaysAuthenticate,
            AttributeType::EcParams,
            AttributeType::Modulus,
        ],
    )?;
    let refuse = |why: String| {
        Fault::Refused(CoreError::new(
            ErrorCode::InvalidRequest,
            format!("token key `{}` {why}", shown(uri)),
        ))
    };
    // INVARIANT: Signet signs only with keys whose private value cannot leave the token:
    // CKA_SENSITIVE=true (never readable in plaintext) and CKA_EXTRACTABLE=false (never
    // wrappable out). Neither can be undone on a key (PKCS#11 "Private key objects").
    if attr_bool(&attrs, AttributeType::Sensitive) != Some(true) {
        return Err(refuse(
            "is not sensitive (CKA_SENSITIVE is not true), so its value can be read out; \
             generate a new key in the token with CKA_SENSITIVE=true"
                .into(),
        ));
    }
    if attr_bool(&attrs, AttributeType::Extractable) != Some(false) {
        return Err(refuse(
            "is extractable (CKA_EXTRACTABLE is not false), so it can be wrapped out of the \
             token; generate a new key in the token with CKA_EXTRACTABLE=false"
                .into(),
        ));
    }
    if attr_bool(&attrs, AttributeType::Sign) != Some(true) {
        return Err(refuse(
            "may not sign (CKA_SIGN is not true); use a signing key".into(),
        ));
    }
    if attr_bool(&attrs, AttributeType::AlwaysAuthenticate) == Some(true) {
        return Err(refuse(
            "asks for the pin before every signature (CKA_ALWAYS_AUTHENTICATE); Signet signs \
             unattended, so use a key without it"
                .into(),
        ));
    }
    let key_type = attr_key_type(&attrs);
    let params = attr_bytes(&attrs, AttributeType::EcParams);
    let matches = match algorithm {
        Algorithm::Ed25519 => {
            key_type == Some(KeyType::EC_EDWARDS)
                && params.is_some_and(|p| p == ED25519_OID_PARAMS || p == ED25519_NAME_PARAMS)
        }
        Algorithm::EcdsaP256 => key_type == Some(KeyType::EC) && params == Some(P256_PARAMS),
        Algorithm::EcdsaP384 => key_type == Some(KeyType::EC) && params == Some(P384_PARAMS),
        a if a.rsa_bits().is_some() => {
            key_type == Some(KeyType::RSA)
                && attr_bytes(&attrs, AttributeType::Modulus)
                    .is_some_and(|n| Some(bit_len(n)) == a.rsa_bits().map(|b| b as usize))
        }
        _ => false,
    };
    if !matches {
        let actual = match (key_type, params) {
            (Some(t), _) if t == KeyType::RSA => format!(
                "an RSA-{} key",
                attr_bytes(&attrs, AttributeType::Modulus).map_or(0, bit_len)
            ),
            (Some(t), Some(p)) if t == KeyType::EC && p == P256_PARAMS => "a P-256 key".into(),
            (Some(t), Some(p)) if t == KeyType::EC && p == P384_PARAMS => "a P-384 key".into(),
            (Some(t), _) if t == KeyType::EC => "an EC key on another curve".into(),
            (Some(t), _) if t == KeyType::EC_EDWARDS => "an Edwards-curve key".into(),
            _ => "a key of another type".into(),
        };
        return Err(refuse(format!(
            "is {actual}, not a `{algorithm}` key; give the algorithm the key was made for"
        )));
    }
    Ok(PrivateKeyFacts {
        label: attr_bytes(&attrs, AttributeType::Label)
            .unwrap_or_default()
            .to_vec(),
        id: attr_bytes(&attrs, AttributeType::Id)
            .unwrap_or_default()
            .to_vec(),
        key_type,
    })
}

/// SubjectPublicKeyInfo (DER) of the key pair whose private half is `private`: from its public
/// key object (same CKA_ID, or same label when it has no id), else from what the private object
/// itself reveals (RSA modulus and exponent, or CKA_PUBLIC_KEY_INFO).
fn public_key_info(
    session: &Session,
    private: ObjectHandle,
    facts: &PrivateKeyFacts,
    algorithm: Algorithm,
    uri: &str,
) -> Result<Vec<u8>, Fault> {
    let mut template = vec![Attribute::Class(ObjectClass::PUBLIC_KEY)];
    if !facts.id.is_empty() {
        template.push(Attribute::Id(facts.id.clone()));
    } else if !facts.label.is_empty() {
        template.push(Attribute::Label(facts.label.clone()));
    }
    if let Some(t) = facts.key_type {
        template.push(Attribute::KeyType(t));
    }
    let found = if template.len() > 2 {
        session.find_objects(&template)?
    } else {
        Vec::new()
    };
    let wanted = [
        AttributeType::EcPoint,
        AttributeType::EcParams,
        AttributeType::Modulus,
        AttributeType::PublicExponent,
    ];
    let mut candidates = Vec::new();
    for object in &found {
        let attrs = session.get_attributes(*object, &wanted)?;
        candidates.push(spki_from_attrs(algorithm, &attrs));
    }
    let mut spkis: Vec<Vec<u8>> = candidates.into_iter().flatten().collect();
    spkis.dedup();
    match spkis.len() {
        1 => return Ok(spkis.swap_remove(0)),
        0 => {}
        _ => {
            return Err(Fault::Refused(CoreError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "several different public keys share the id of `{}`; give each key pair its \
                     own CKA_ID",
                    shown(uri)
                ),
            )));
        }
    }
    // No public key object: RSA private keys carry the public modulus and exponent; PKCS#11
    // v3.0 tokens may carry CKA_PUBLIC_KEY_INFO.
    let attrs = session.get_attributes(
        private,
        &[
            AttributeType::Modulus,
            AttributeType::PublicExponent,
            AttributeType::PublicKeyInfo,
        ],
    )?;
    if let Some(spki) = attr_bytes(&attrs, AttributeType::PublicKeyInfo).filter(|s| !s.is_empty())
        && let Some(v) = lc_verifier(algorithm)
        && let Ok(parsed) = ParsedPublicKey::new(v, spki)
        && let Ok(der) = parsed.as_der()
    {
        return Ok(der.as_ref().to_vec());
    }
    if let Some(spki) = spki_from_attrs(algorithm, &attrs) {
        return Ok(spki);
    }
    Err(Fault::Refused(CoreError::new(
        ErrorCode::InvalidRequest,
        format!(
            "the token has no public key for `{}`; import the public key with the same CKA_ID",
            shown(uri)
        ),
    )))
}

/// A verification algorithm of the key's type (any digest: only the key parsing is used).
fn lc_verifier(algorithm: Algorithm) -> Option<&'static dyn lc::VerificationAlgorithm> {
    Some(match algorithm {
        Algorithm::Ed25519 => &lc::ED25519,
        Algorithm::EcdsaP256 => &lc::ECDSA_P256_SHA256_ASN1,
        Algorithm::EcdsaP384 => &lc::ECDSA_P384_SHA384_ASN1,
        a if a.rsa_bits().is_some() => &lc::RSA_PKCS1_2048_8192_SHA256,
        _ => return None,
    })
}

/// Reads one DER OCTET STRING (short or long length) covering all of `b`.
fn der_octet_string(b: &[u8]) -> Option<&[u8]> {
    let (&tag, rest) = b.split_first()?;
    if tag != 0x04 {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        n if n < 0x80 => (usize::from(n), rest),
        0x81 => {
            let (&n, rest) = rest.split_first()?;
            (usize::from(n), rest)
        }
        0x82 => {
            let (hi, rest) = rest.split_first()?;
            let (lo, rest) = rest.split_first()?;
            (usize::from(*hi) << 8 | usize::from(*lo), rest)
        }
        _ => return None,
    };
    (rest.len() == len).then_some(rest)
}

/// SPKI DER from public key attributes; validated by parsing (an EC point must be on the curve).
fn spki_from_attrs(algorithm: Algorithm, attrs: &[Attribute]) -> Option<Vec<u8>> {
    let der = match algorithm {
        Algorithm::Ed25519 => {
            let point = attr_bytes(attrs, AttributeType::EcPoint)?;
            // PKCS#11 v3.0: a DER OCTET STRING of the 32-byte key; some tokens give it raw.
            let raw = if point.len() == 32 {
                point
            } else {
                der_octet_string(point)?
            };
            ParsedPublicKey::new(&lc::ED25519, raw)
                .ok()?
                .as_der()
                .ok()?
        }
        Algorithm::EcdsaP256 | Algorithm::EcdsaP384 => {
            let (params, v, coord): (_, &'static dyn lc::VerificationAlgorithm, usize) =
                if algorithm == Algorithm::EcdsaP256 {
                    (P256_PARAMS, &lc::ECDSA_P256_SHA256_ASN1, 32)
                } else {
                    (P384_PARAMS, &lc::ECDSA_P384_SHA384_ASN1, 48)
                };
            if attr_bytes(attrs, AttributeType::EcParams).is_some_and(|p| p != params) {
                return None;
            }
            let point = attr_bytes(attrs, AttributeType::EcPoint)?;
            // CKA_EC_POINT is a DER OCTET STRING of the SEC 1 point; some tokens give it raw.
            let raw = if point.len() == 2 * coord + 1 && point.first() == Some(&0x04) {
                point
            } else {
                der_octet_string(point)?
            };
            if raw.len() != 2 * coord + 1 {
                return None;
            }
            ParsedPublicKey::new(v, raw).ok()?.as_der().ok()?
        }
        a if a.rsa_bits().is_some() => {
            let n = strip_zeros(attr_bytes(attrs, AttributeType::Modulus)?);
            let e = strip_zeros(attr_bytes(attrs, AttributeType::PublicExponent)?);
            if Some(bit_len(n)) != a.rsa_bits().map(|b| b as usize) {
                return None;
            }
            RsaPublicKeyComponents { n, e }.as_der().ok()?
        }
        _ => return None,
    };
    Some(der.as_ref().to_vec())
}

// ---------------------------------------------------------------------------------------------
// Generation, opening and adoption.
// ---------------------------------------------------------------------------------------------

/// Key-pair generation mechanism and templates for `algorithm` (public, private).
fn generation_templates(
    algorithm: Algorithm,
    label: &[u8],
    id: &[u8],
    restrict_mechanisms: bool,
) -> Option<(Mechanism<'static>, Vec<Attribute>, Vec<Attribute>)> {
    let (mechanism, mut public, sign_mechanism) = match algorithm {
        Algorithm::Ed25519 => (
            Mechanism::EccEdwardsKeyPairGen,
            vec![
                Attribute::KeyType(KeyType::EC_EDWARDS),
                Attribute::EcParams(ED25519_OID_PARAMS.to_vec()),
            ],
            MechanismType::EDDSA,
        ),
        Algorithm::EcdsaP256 | Algorithm::EcdsaP384 => (
            Mechanism::EccKeyPairGen,
            vec![
                Attribute::KeyType(KeyType::EC),
                Attribute::EcParams(if algorithm == Algorithm::EcdsaP256 {
                    P256_PARAMS.to_vec()
                } else {
                    P384_PARAMS.to_vec()
                }),
            ],
            MechanismType::ECDSA,
        ),
        Algorithm::Rsa3072Pss | Algorithm::Rsa4096Pss => (
            Mechanism::RsaPkcsKeyPairGen,
            vec![
                Attribute::KeyType(KeyType::RSA),
                Attribute::ModulusBits(u64::from(algorithm.rsa_bits()?).into()),
                Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
            ],
            MechanismType::RSA_PKCS_PSS,
        ),
        Algorithm::Rsa3072Pkcs1 | Algorithm::Rsa4096Pkcs1 => (
            Mechanism::RsaPkcsKeyPairGen,
            vec![
                Attribute::KeyType(KeyType::RSA),
                Attribute::ModulusBits(u64::from(algorithm.rsa_bits()?).into()),
                Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
            ],
            MechanismType::RSA_PKCS,
        ),
        _ => return None,
    };
    public.extend([
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
        Attribute::Label(label.to_vec()),
        Attribute::Id(id.to_vec()),
    ]);
    let mut private = vec![
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::Token(true),
        Attribute::Private(true),
        // INVARIANT: a generated private key never leaves the token: not readable
        // (CKA_SENSITIVE), not wrappable (CKA_EXTRACTABLE=false), and usable only to sign.
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
        Attribute::Label(label.to_vec()),
        Attribute::Id(id.to_vec()),
    ];
    if restrict_mechanisms {
        // The key signs with its one mechanism only (an RSA-PSS key cannot make PKCS#1 v1.5
        // signatures), where the token supports CKA_ALLOWED_MECHANISMS.
        private.push(Attribute::AllowedMechanisms(vec![sign_mechanism]));
    }
    Some((mechanism, public, private))
}

impl Pkcs11Backend {
    fn unsupported(&self, algorithm: Algorithm) -> CoreError {
        let hint = if algorithm.is_post_quantum() {
            "use the software backend for post-quantum keys"
        } else {
            "use an algorithm the token offers, or the software backend"
        };
        CoreError::new(
            ErrorCode::UnsupportedAlgorithm,
            format!(
                "pkcs11 token `{}` cannot make `{algorithm}` keys (its mechanism list lacks it); \
                 {hint}",
                self.inner.token_name()
            ),
        )
    }

    /// Generates synchronously (the async trait method runs this on a blocking thread).
    pub fn generate_blocking(&self, spec: &KeySpec) -> Result<GeneratedKey, CoreError> {
        if !self.supports(spec.algorithm) {
            return Err(self.unsupported(spec.algorithm));
        }
        let label = label_for(spec);
        let tag = id_tag(spec);
        self.inner
            .run(&format!("generating `{label}`"), |lease, _| {
                let session = lease.session()?;
                let mut random = [0u8; 8];
                session.generate_random_slice(&mut random)?;
                let mut id = tag.to_vec();
                id.extend_from_slice(&random);
                let mut pair = None;
                for restrict in [true, false] {
                    let (mechanism, public, private) =
                        generation_templates(spec.algorithm, label.as_bytes(), &id, restrict)
                            .ok_or_else(|| Fault::Refused(self.unsupported(spec.algorithm)))?;
                    match session.generate_key_pair(&mechanism, &public, &private) {
                        Ok(p) => {
                            pair = Some(p);
                            break;
                        }
                        // A token without CKA_ALLOWED_MECHANISMS: generate without it.
                        Err(P11Error::Pkcs11(
                            RvError::AttributeTypeInvalid | RvError::AttributeValueInvalid,
                            _,
                        )) if restrict => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                let (public, private) = pair.ok_or_else(|| {
                    Fault::Refused(CoreError::new(
                        ErrorCode::Internal,
                        "pkcs11 key generation produced no key pair",
                    ))
                })?;
                let loc = Locator {
                    token: Some(lease.token.label.clone()),
                    object: Some(label.as_bytes().to_vec()),
                    id: Some(id.clone()),
                    ..Locator::default()
                };
                let uri = loc.to_uri();
                let checked =
                    inspect_private(session, private, spec.algorithm, &uri).and_then(|facts| {
                        public_key_info(session, private, &facts, spec.algorithm, &uri)
                    });
                match checked {
                    Ok(spki) => Ok(GeneratedKey {
                        public_key_der: spki,
                        handle: KeyHandle(uri.into_bytes()),
                    }),
                    Err(e) => {
                        // Do not leave a half-usable key behind.
                        let _ = session.destroy_object(private);
                        let _ = session.destroy_object(public);
                        Err(e)
                    }
                }
            })
    }

    /// Adopts synchronously (the async trait method runs this on a blocking thread).
    pub fn adopt_blocking(&self, spec: &KeySpec, uri: &str) -> Result<GeneratedKey, CoreError> {
        if !self.supports(spec.algorithm) {
            return Err(self.unsupported(spec.algorithm));
        }
        let loc = Locator::parse(uri)?;
        if loc
            .object
            .as_deref()
            .is_some_and(|l| l.starts_with(LABEL_PREFIX.as_bytes()))
        {
            return Err(CoreError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "`{}` is a key Signet generated (its label starts with `{LABEL_PREFIX}`); \
                     it already belongs to a Signet key",
                    shown(uri)
                ),
            ));
        }
        self.inner.run("adopting a key", |lease, _| {
            loc.check_token(uri, &lease.token)?;
            let session = lease.session()?;
            let private = find_private(session, &loc, uri)?;
            let facts = inspect_private(session, private, spec.algorithm, uri)?;
            if facts.label.starts_with(LABEL_PREFIX.as_bytes()) {
                return Err(Fault::Refused(CoreError::new(
                    ErrorCode::InvalidRequest,
                    format!(
                        "`{}` is a key Signet generated (its label starts with \
                         `{LABEL_PREFIX}`); it already belongs to a Signet key",
                        shown(uri)
                    ),
                )));
            }
            let spki = public_key_info(session, private, &facts, spec.algorithm, uri)?;
            let canonical = Locator {
                token: Some(lease.token.label.clone()),
                object: (!facts.label.is_empty()).then(|| facts.label.clone()),
                id: (!facts.id.is_empty()).then(|| facts.id.clone()),
                ..Locator::default()
            };
            // The canonical URI must name exactly this key again.
            if find_private(session, &canonical, uri)? != private {
                return Err(Fault::Refused(CoreError::new(
                    ErrorCode::InvalidRequest,
                    format!(
                        "`{}` cannot be named uniquely by its label and id; give it a unique CKA_ID",
                        shown(uri)
                    ),
                )));
            }
            Ok(GeneratedKey {
                public_key_der: spki,
                handle: KeyHandle(canonical.to_uri().into_bytes()),
            })
        })
    }
}

#[async_trait]
impl KeyBackend for Pkcs11Backend {
    fn id(&self) -> &str {
        Self::ID
    }

    async fn generate(&self, spec: &KeySpec) -> Result<GeneratedKey, CoreError> {
        let this = self.clone();
        let spec = spec.clone();
        tokio::task::spawn_blocking(move || this.generate_blocking(&spec))
            .await
            .map_err(|e| CoreError::internal("pkcs11 key generation task failed", e))?
    }

    fn open(&self, spec: &KeySpec, handle: &KeyHandle) -> Result<Box<dyn SigningKey>, CoreError> {
        let not_ours = || {
            CoreError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "pkcs11 key handle does not belong to key `{}` version {} ({}); the stored \
                     handle was changed or belongs to another key",
                    truncate(&spec.key_id, 80),
                    spec.version,
                    spec.algorithm
                ),
            )
        };
        let uri = std::str::from_utf8(&handle.0).map_err(|_| not_ours())?;
        let loc = Locator::parse(uri).map_err(|_| not_ours())?;
        let label = loc.object.clone().unwrap_or_default();
        // Generated keys are bound to their key id, version and algorithm by label and id.
        if label.starts_with(LABEL_PREFIX.as_bytes())
            && (label != label_for(spec).into_bytes()
                || !loc
                    .id
                    .as_deref()
                    .is_some_and(|id| id.len() == 16 && id.starts_with(&id_tag(spec))))
        {
            return Err(not_ours());
        }
        if spec.algorithm.is_post_quantum() {
            return Err(self.unsupported(spec.algorithm));
        }
        let (object, spki) = self.inner.run("opening a key", |lease, _| {
            loc.check_token(uri, &lease.token).map_err(|_| not_ours())?;
            let session = lease.session()?;
            let private = find_private(session, &loc, uri)?;
            let facts = inspect_private(session, private, spec.algorithm, uri)?;
            let spki = public_key_info(session, private, &facts, spec.algorithm, uri)?;
            Ok(((lease.generation, private), spki))
        })?;
        Ok(Box::new(Pkcs11Key {
            inner: Arc::clone(&self.inner),
            algorithm: spec.algorithm,
            spki,
            uri: uri.to_owned(),
            locator: loc,
            object: Mutex::new(Some(object)),
        }))
    }

    fn health(&self) -> Result<(), CoreError> {
        self.inner.run("checking the token", |lease, _| {
            lease.inner.module.ctx.get_token_info(lease.token.slot)?;
            let info = lease.session()?.get_session_info()?;
            if !logged_in(info.session_state()) {
                return Err(Fault::Token(P11Error::Pkcs11(
                    RvError::UserNotLoggedIn,
                    Function::GetSessionInfo,
                )));
            }
            Ok(())
        })
    }

    fn supports(&self, algorithm: Algorithm) -> bool {
        !algorithm.is_post_quantum()
            && self
                .inner
                .supported
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(&algorithm)
    }

    async fn adopt(&self, spec: &KeySpec, locator: &str) -> Result<GeneratedKey, CoreError> {
        let this = self.clone();
        let spec = spec.clone();
        let locator = locator.to_owned();
        tokio::task::spawn_blocking(move || this.adopt_blocking(&spec, &locator))
            .await
            .map_err(|e| CoreError::internal("pkcs11 key adoption task failed", e))?
    }
}

// ---------------------------------------------------------------------------------------------
// Signing.
// ---------------------------------------------------------------------------------------------

/// An opened token key: its locator, public key and the object handle last found for it.
pub struct Pkcs11Key {
    inner: Arc<Inner>,
    algorithm: Algorithm,
    spki: Vec<u8>,
    uri: String,
    locator: Locator,
    /// The private key's handle and the module generation it was found in.
    object: Mutex<Option<(u64, ObjectHandle)>>,
}

impl fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("algorithm", &self.algorithm)
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

/// `DigestInfo` prefixes for EMSA-PKCS1-v1_5: the DER of
/// `SEQUENCE { SEQUENCE { hashAlgorithm OID, NULL }, OCTET STRING (hash length) }` that precedes
/// the hash, exactly as listed in RFC 8017 §9.2, note 1.
fn digest_info_prefix(d: DigestAlgorithm) -> &'static [u8] {
    match d {
        DigestAlgorithm::Sha256 => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
        DigestAlgorithm::Sha384 => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        DigestAlgorithm::Sha512 => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
    }
}

/// `CK_RSA_PKCS_PSS_PARAMS` for a digest: its hash, MGF1 with the same hash, salt as long as
/// the hash (RFC 8017 §9.1; what `openssl dgst -sigopt rsa_pss_saltlen:-1` checks).
fn pss_params(d: DigestAlgorithm) -> PkcsPssParams {
    let (hash_alg, mgf) = match d {
        DigestAlgorithm::Sha256 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
        DigestAlgorithm::Sha384 => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384),
        DigestAlgorithm::Sha512 => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512),
    };
    PkcsPssParams {
        hash_alg,
        mgf,
        s_len: cryptoki::types::Ulong::new(d.output_len() as _),
    }
}

/// DER `Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` (RFC 3279 §2.2.3) from the raw
/// `r || s` that `CKM_ECDSA` returns.
fn ecdsa_der(raw: &[u8], coord: usize) -> Option<Vec<u8>> {
    if raw.len() != 2 * coord {
        return None;
    }
    let (r, s) = raw.split_at(coord);
    let int = |v: &[u8]| {
        let v = strip_zeros(v);
        let mut out = vec![0x02];
        let pad = v.first().is_none_or(|&b| b & 0x80 != 0);
        let len = v.len() + usize::from(pad);
        push_der_len(&mut out, len);
        if pad {
            out.push(0);
        }
        out.extend_from_slice(v);
        out
    };
    let (r, s) = (int(r), int(s));
    let mut out = vec![0x30];
    push_der_len(&mut out, r.len() + s.len());
    out.extend_from_slice(&r);
    out.extend_from_slice(&s);
    Some(out)
}

fn push_der_len(out: &mut Vec<u8>, len: usize) {
    match u8::try_from(len) {
        Ok(l) if l < 0x80 => out.push(l),
        Ok(l) => out.extend_from_slice(&[0x81, l]),
        Err(_) => out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]),
    }
}

impl Pkcs11Key {
    /// Signs `data` with `mechanism`, finding the key object again when its handle is stale.
    fn sign_raw(&self, mechanism: &Mechanism<'_>, data: &[u8]) -> Result<Vec<u8>, CoreError> {
        self.inner.run("signing", |lease, retry| {
            let session = lease.session()?;
            let cached = *lock(&self.object);
            let key = match cached {
                Some((generation, handle)) if generation == lease.generation && !retry => handle,
                _ => {
                    let handle = find_private(session, &self.locator, &self.uri)?;
                    *lock(&self.object) = Some((lease.generation, handle));
                    handle
                }
            };
            Ok(session.sign(mechanism, key, data)?)
        })
    }
}

impl SigningKey for Pkcs11Key {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    fn public_key_der(&self) -> &[u8] {
        &self.spki
    }

    fn sign_digest(&self, d: &Digest) -> Result<Vec<u8>, CoreError> {
        if !self.algorithm.accepts(d.algorithm()) {
            return Err(CoreError::new(
                ErrorCode::DigestAlgorithmNotAllowed,
                format!(
                    "`{}` keys do not sign `{}` digests",
                    self.algorithm,
                    d.algorithm()
                ),
            ));
        }
        match self.algorithm {
            // RFC 8032 §5.1.6: PureEdDSA over the digest bytes as the message.
            Algorithm::Ed25519 => self.sign_raw(
                &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                d.as_bytes(),
            ),
            // FIPS 186-5 §6.4.1 over the host's hash; CKM_ECDSA returns r || s.
            Algorithm::EcdsaP256 | Algorithm::EcdsaP384 => {
                let coord = if self.algorithm == Algorithm::EcdsaP256 {
                    32
                } else {
                    48
                };
                let raw = self.sign_raw(&Mechanism::Ecdsa, d.as_bytes())?;
                ecdsa_der(&raw, coord).ok_or_else(|| {
                    CoreError::new(
                        ErrorCode::Internal,
                        format!(
                            "pkcs11 token returned a {}-byte ECDSA signature, expected {}",
                            raw.len(),
                            2 * coord
                        ),
                    )
                })
            }
            // RFC 8017 §9.1 (EMSA-PSS) done by the token over the host's hash.
            Algorithm::Rsa3072Pss | Algorithm::Rsa4096Pss => self.sign_raw(
                &Mechanism::RsaPkcsPss(pss_params(d.algorithm())),
                d.as_bytes(),
            ),
            // RFC 8017 §9.2 (EMSA-PKCS1-v1_5): CKM_RSA_PKCS pads DigestInfo || hash.
            Algorithm::Rsa3072Pkcs1 | Algorithm::Rsa4096Pkcs1 => {
                let mut info = digest_info_prefix(d.algorithm()).to_vec();
                info.extend_from_slice(d.as_bytes());
                self.sign_raw(&Mechanism::RsaPkcs, &info)
            }
            other => Err(CoreError::new(
                ErrorCode::UnsupportedAlgorithm,
                format!("the pkcs11 backend does not sign with `{other}` keys"),
            )),
        }
    }

    fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, CoreError> {
        match self.algorithm {
            // RFC 8032 §5.1.6 over the whole message.
            Algorithm::Ed25519 => self.sign_raw(
                &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                message,
            ),
            other => Err(CoreError::new(
                ErrorCode::UnsupportedAlgorithm,
                format!("`{other}` keys do not sign whole messages here; use an ed25519 key"),
            )),
        }
    }
}

/// Operations on the token outside Signet's key model: for operators' tools and tests that must
/// look at the token directly. Nothing here is reachable from the API.
pub mod danger {
    use super::{CoreError, Fault, P11Error, Pkcs11Backend, Session, Slot};

    /// Runs `f` with one of the backend's logged-in sessions and the token's slot, with the same
    /// recovery and retry as the backend's own operations (so `f` may run twice). `f` must not
    /// call back into the backend: it holds one of its sessions and the module's gate.
    pub fn with_session<T>(
        backend: &Pkcs11Backend,
        mut f: impl FnMut(&Session, Slot) -> Result<T, P11Error>,
    ) -> Result<T, CoreError> {
        backend
            .inner
            .run("running a maintenance operation", |lease, _| {
                let slot = lease.token.slot;
                f(lease.session()?, slot).map_err(Fault::Token)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_round_trip() -> Result<(), CoreError> {
        let loc = Locator {
            token: Some("my token".into()),
            object: Some(b"signet/a b/v1".to_vec()),
            id: Some(vec![0x0a, 0xff]),
            ..Locator::default()
        };
        let uri = loc.to_uri();
        assert_eq!(
            uri,
            "pkcs11:token=my%20token;object=signet%2Fa%20b%2Fv1;id=%0A%FF;type=private"
        );
        assert_eq!(
            Locator::parse(&uri)?,
            Locator {
                kind: Some("private".into()),
                ..loc
            }
        );
        Ok(())
    }

    #[test]
    fn uri_refusals() {
        for bad in [
            "pkcs11:",
            "http:object=x",
            "pkcs11:object=x;object=y",
            "pkcs11:object=x;type=public",
            "pkcs11:object=x?pin-value=1234",
            "pkcs11:object=%zz",
            "pkcs11:object=a b",
            "pkcs11:bogus=1;object=x",
        ] {
            let e = Locator::parse(bad).err().map(|e| e.code);
            assert_eq!(e, Some(ErrorCode::InvalidRequest), "{bad}");
        }
    }

    #[test]
    fn messages_never_quote_a_pin_from_a_uri() {
        for uri in [
            "pkcs11:object=x?pin-value=s3cret-pin",
            "pkcs11:object=x;bogus=1?pin-value=s3cret-pin",
            "pkcs11:object=%zz?pin-value=s3cret-pin",
        ] {
            let e = Locator::parse(uri).err().map(|e| e.to_string());
            let e = e.unwrap_or_default();
            assert!(!e.is_empty() && !e.contains("s3cret"), "{e}");
        }
    }

    #[test]
    fn ecdsa_der_encoding() {
        // r with the high bit set gets a 0x00 pad; s with leading zeros is trimmed.
        let mut raw = vec![0x80; 32];
        raw.extend_from_slice(&[0u8; 31]);
        raw.push(0x05);
        let der = ecdsa_der(&raw, 32).unwrap_or_default();
        assert_eq!(der.get(..4), Some(&[0x30, 0x26, 0x02, 0x21][..]));
        assert_eq!(der.get(4), Some(&0x00));
        assert_eq!(der.get(der.len() - 3..), Some(&[0x02, 0x01, 0x05][..]));
        assert!(ecdsa_der(&raw, 48).is_none());
    }

    #[test]
    fn digest_info_lengths() {
        for d in DigestAlgorithm::ALL {
            let p = digest_info_prefix(d);
            // The outer SEQUENCE length covers the rest of the prefix plus the hash.
            assert_eq!(
                usize::from(p.get(1).copied().unwrap_or(0)),
                p.len() - 2 + d.output_len()
            );
            assert_eq!(usize::from(p.last().copied().unwrap_or(0)), d.output_len());
        }
    }

    #[test]
    fn config_debug_hides_pin() {
        let c = Pkcs11Config {
            module: PathBuf::from("/x.so"),
            token_label: Some("t".into()),
            token_serial: None,
            pin: SecretString::new("123456".into()),
            max_sessions: None,
        };
        assert!(!format!("{c:?}").contains("123456"));
    }
}
