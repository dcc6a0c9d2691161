//! Wiring and serving: builds the service from the config and serves HTTPS until SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use signet_core::Algorithm;
use signet_core::backend::Backends;
use signet_core::log::MerkleLog;
use signet_core::policy::KeyCreationRules;
use signet_core::service::{Deps, SigningService};
use signet_core::{CoreError, SystemClock};
use signet_keys::{Kek, SoftwareBackend, SystemRandom};
use signet_proto::Status;
use signet_store::SqliteStore;
use zeroize::Zeroizing;

use crate::app::{self, App};
use crate::config::Config;
use crate::custody::{Custody, DevFileVault, KekVault, SealMode};
use crate::metrics::Metrics;

pub const DEV_MODE_WARNING: &str = "dev mode: the key-encryption key is a local file; anyone who can read it and the database can unseal every software key — do not use for production keys";

/// Resolves a config path relative to the data directory.
pub fn in_dir(data_dir: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        data_dir.join(p)
    }
}

/// Refuses a secret file (KEK, TLS key) that group or others can read.
pub fn check_private(path: &Path, what: &str) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("cannot read the {what} `{}`", path.display()))?
            .permissions()
            .mode();
        // INVARIANT: secret files must be private to their owner.
        if mode & 0o077 != 0 {
            bail!(
                "{what} `{}` has mode {:o}; restrict it with `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            );
        }
    }
    Ok(())
}

/// Reads the dev KEK file into `kek`, refusing a file that others can read.
pub fn load_dev_kek(path: &Path, kek: &Kek) -> Result<()> {
    check_private(path, "key-encryption key")?;
    let bytes = Zeroizing::new(
        std::fs::read(path)
            .with_context(|| format!("cannot read the key-encryption key `{}`", path.display()))?,
    );
    kek.load(&bytes).map_err(anyhow_core)
}

/// Connects to the configured PKCS#11 token; the PIN comes from a private file or an
/// environment variable and is held only as a zeroizing secret.
pub fn connect_pkcs11(
    data_dir: &Path,
    section: &crate::config::Pkcs11Section,
) -> Result<signet_keys::Pkcs11Backend> {
    let pin = match (&section.pin_file, &section.pin_env) {
        (Some(file), _) => {
            let path = in_dir(data_dir, file);
            check_private(&path, "PKCS#11 PIN file")?;
            let text = Zeroizing::new(
                std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read the PIN file `{}`", path.display()))?,
            );
            text.trim().to_owned()
        }
        (None, Some(var)) => std::env::var(var)
            .with_context(|| format!("the PKCS#11 PIN variable `{var}` is not set"))?,
        (None, None) => bail!(
            "`[keys.pkcs11]` needs `pin_file` (mode 0600) or `pin_env`; the PIN is never kept in the config"
        ),
    };
    signet_keys::Pkcs11Backend::new(signet_keys::Pkcs11Config {
        module: section.module.clone(),
        token_label: section.token_label.clone(),
        token_serial: section.token_serial.clone(),
        pin: signet_core::secret::SecretString::new(pin),
        max_sessions: section.max_sessions,
    })
    .map_err(anyhow_core)
    .with_context(|| {
        format!(
            "cannot use the PKCS#11 module `{}`",
            section.module.display()
        )
    })
}

/// How `build_app` is called.
#[derive(Default)]
pub struct BuildOptions {
    /// `--dev` was given: a dev-mode data directory may be served.
    pub dev: bool,
    /// `signetd init` in shamir mode: the new KEK, in memory until it is split.
    pub initial_kek: Option<Zeroizing<[u8; signet_keys::seal::KEK_LEN]>>,
    /// Served over TLS (not `--insecure-http`): the default public URL is `https://`.
    pub tls: bool,
}

fn creation_rules(cfg: &Config) -> Result<KeyCreationRules> {
    let allowed = match &cfg.keys.allowed_algorithms {
        None => None,
        Some(names) => Some(
            names
                .iter()
                .map(|n| n.parse::<Algorithm>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(anyhow_core)
                .context("invalid `keys.allowed_algorithms`")?,
        ),
    };
    Ok(KeyCreationRules {
        allowed,
        min_rsa_bits: 3072,
        fips_only: cfg.keys.require_fips,
    })
}

pub fn anyhow_core(e: CoreError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// Opens the store and builds the app state. In shamir mode the server comes up sealed unless
/// `opts.initial_kek` is given.
pub async fn build_app(data_dir: &Path, cfg: &Config, opts: BuildOptions) -> Result<App> {
    let hardening = crate::hardening::apply();
    let fips = crate::hardening::fips_active();
    // INVARIANT: `require_fips` refuses to run outside the validated module.
    if cfg.keys.require_fips && !fips {
        bail!(
            "`require_fips = true` but this signetd does not run the FIPS 140-3 module; use a build with `--features fips` (see docs/keys.md) or set `require_fips = false`"
        );
    }
    let mut warnings = hardening.warnings.clone();
    let kek = Kek::sealed();
    let mut vault: Option<Arc<dyn KekVault>> = None;
    match cfg.seal.mode {
        SealMode::Dev => {
            if !opts.dev {
                bail!(
                    "this data directory keeps its key-encryption key in a local file (dev mode); serve it with `--dev`, or make a production directory with `signetd init --shares 5 --threshold 3`"
                );
            }
            let path = in_dir(
                data_dir,
                cfg.keys
                    .dev_kek_file
                    .as_deref()
                    .unwrap_or(Path::new("kek.dev")),
            );
            load_dev_kek(&path, &kek)?;
            vault = Some(Arc::new(DevFileVault { path }));
            tracing::warn!("{DEV_MODE_WARNING}");
            warnings.push(DEV_MODE_WARNING.to_owned());
        }
        SealMode::Shamir => {
            if let Some(bytes) = &opts.initial_kek {
                kek.load(bytes.as_ref()).map_err(anyhow_core)?;
            }
        }
        SealMode::Pkcs11 => {}
    }
    let pkcs11 = match &cfg.keys.pkcs11 {
        Some(section) => Some(Arc::new(connect_pkcs11(data_dir, section)?)),
        None => None,
    };
    if cfg.seal.mode == SealMode::Pkcs11 {
        let token = pkcs11
            .clone()
            .context("seal mode `pkcs11` needs a `[keys.pkcs11]` section")?;
        let p11 = Arc::new(crate::custody::Pkcs11Vault {
            token,
            label: cfg
                .seal
                .wrapping_key_label
                .clone()
                .unwrap_or_else(|| crate::custody::DEFAULT_WRAPPING_KEY_LABEL.to_owned()),
            path: in_dir(
                data_dir,
                cfg.seal
                    .wrapped_kek_file
                    .as_deref()
                    .unwrap_or(Path::new(crate::custody::WRAPPED_KEK_FILE)),
            ),
        });
        match &opts.initial_kek {
            // init: wrap the new KEK in the token; it is never written in the clear.
            Some(bytes) => {
                p11.create(bytes.as_ref()).map_err(anyhow_core)?;
                kek.load(bytes.as_ref()).map_err(anyhow_core)?;
            }
            None => {
                let bytes = p11
                    .unwrap()
                    .map_err(anyhow_core)
                    .context("cannot unwrap the key-encryption key in the PKCS#11 token")?;
                kek.load(&bytes).map_err(anyhow_core)?;
            }
        }
        vault = Some(p11);
    }
    let store = SqliteStore::open(&in_dir(data_dir, &cfg.store.sqlite))
        .await
        .map_err(anyhow_core)
        .context("cannot open the database")?;
    let backend = Arc::new(SoftwareBackend::new(kek.clone()));
    let mut backends = Backends::single(backend.clone());
    if let Some(p11) = &pkcs11 {
        backends = backends.with(p11.clone());
    }
    if !backends.set_default(&cfg.keys.backend) {
        bail!(
            "key backend `{}` is not available; use `software`, or `pkcs11` with a `[keys.pkcs11]` section",
            cfg.keys.backend
        );
    }
    let shared = Arc::new(store.clone());
    let clock = Arc::new(SystemClock);
    let rng = Arc::new(SystemRandom);
    let log_key = crate::audit_log::find_log_key(
        shared.as_ref(),
        backend.as_ref(),
        clock.as_ref(),
        rng.as_ref(),
    )
    .await
    .context("cannot open the audit log key")?;
    let signer = Arc::new(crate::audit_log::LogSigner::new(
        cfg.origin(),
        backend.clone(),
        log_key.clone(),
    )?);
    let log_vkey = signer.verifier_key()?;
    let log = Arc::new(
        MerkleLog::open(shared.clone(), signer.clone())
            .await
            .map_err(anyhow_core)
            .context("cannot open the audit log")?,
    );
    let service = Arc::new(SigningService::new(Deps {
        keys: shared.clone(),
        tokens: shared.clone(),
        certs: shared,
        audit: log.clone(),
        backends,
        creation: creation_rules(cfg)?,
        clock,
        random: rng,
        offload: Arc::new(crate::offload::BlockingPool::per_core()),
        node: cfg.server.node.clone(),
        seal: Arc::new(kek.clone()),
        fips,
    }));
    let custody = Arc::new(Custody::new(
        cfg.seal.mode,
        data_dir.to_path_buf(),
        kek.clone(),
        (log_key.spec.clone(), log_key.handle.clone()),
        service.clone(),
        signer,
        vault,
    ));
    let pki = Arc::new(crate::pki::Pki::new(
        service.clone(),
        crate::pki::PkiSettings {
            public_url: cfg.public_url(opts.tls),
            max_validity_days: cfg.pki.max_validity_days,
            tsa_policy: cfg.pki.tsa_policy.clone(),
            tsa_accuracy_seconds: cfg.pki.tsa_accuracy_seconds,
        },
    ));
    if kek.is_sealed() {
        tracing::warn!(
            "sealed: signing is refused until custodians submit their shares with `signet operator unseal`"
        );
    }
    tracing::info!(
        fips,
        seal = cfg.seal.mode.as_str(),
        memory_locked = hardening.memory_locked,
        "custody"
    );
    Ok(App {
        service,
        custody,
        log,
        log_vkey: Arc::new(log_vkey),
        pki,
        tsa_public: cfg.pki.tsa_public,
        store,
        metrics: Arc::new(Metrics::new()),
        status: Arc::new(Status {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            node: cfg.server.node.clone(),
            key_backend: cfg.keys.backend.clone(),
            kek_source: cfg.seal.mode.as_str().to_owned(),
            warnings,
            sealed: false,
            fips,
            fips_required: cfg.keys.require_fips,
            memory_locked: hardening.memory_locked,
            core_dumps_disabled: hardening.core_dumps_disabled,
        }),
    })
}

/// Serves until a shutdown signal, then drains in-flight requests (up to 10 s).
pub async fn serve(
    data_dir: &Path,
    listen: Option<SocketAddr>,
    insecure_http: bool,
    dev: bool,
) -> Result<()> {
    let mut cfg = Config::load(data_dir)?;
    if let Some(l) = listen {
        cfg.server.listen = l;
    }
    let addr = cfg.server.listen;
    // INVARIANT: plain HTTP carries bearer tokens in clear, so only ever on loopback.
    if insecure_http && !addr.ip().is_loopback() {
        bail!(
            "plain HTTP is only allowed on a loopback address, not `{addr}`; drop --insecure-http to serve HTTPS"
        );
    }
    let app = build_app(
        data_dir,
        &cfg,
        BuildOptions {
            dev,
            initial_kek: None,
            tls: !insecure_http,
        },
    )
    .await?;
    let store = app.store.clone();
    let pki = app.pki.clone();
    let default_public_url = cfg.pki.public_url.is_none();
    let router = app::router(app, cfg.server.max_body_bytes)
        .into_make_service_with_connect_info::<SocketAddr>();

    let handle: Handle<SocketAddr> = Handle::new();
    tokio::spawn(shutdown_on_signal(handle.clone()));
    let announce = {
        let handle = handle.clone();
        let scheme = if insecure_http { "http" } else { "https" };
        async move {
            if let Some(bound) = handle.listening().await {
                // CRL distribution points and the TSA URL name the port actually bound
                // (`--listen 127.0.0.1:0`), before the address is announced to anyone.
                if default_public_url {
                    pki.set_public_url(format!("{scheme}://{bound}"));
                }
                tracing::info!(%bound, "listening");
                println!("signetd listening on {scheme}://{bound}");
            }
        }
    };
    tokio::spawn(announce);

    if insecure_http {
        tracing::warn!("serving plain HTTP on loopback; use HTTPS for anything but local testing");
        axum_server::bind(addr)
            .handle(handle)
            .serve(router)
            .await
            .with_context(|| format!("cannot serve on `{addr}`"))?;
    } else {
        check_private(&in_dir(data_dir, &cfg.server.tls_key), "TLS private key")?;
        let tls = RustlsConfig::from_pem_file(
            in_dir(data_dir, &cfg.server.tls_cert),
            in_dir(data_dir, &cfg.server.tls_key),
        )
        .await
        .context("cannot load the TLS certificate and key")?;
        axum_server::bind_rustls(addr, tls)
            .handle(handle)
            .serve(router)
            .await
            .with_context(|| format!("cannot serve on `{addr}`"))?;
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_on_signal(handle: Handle<SocketAddr>) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: draining in-flight requests");
    handle.graceful_shutdown(Some(Duration::from_secs(10)));
}
