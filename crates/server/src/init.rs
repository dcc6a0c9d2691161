//! `signetd init`: a new data directory with config, database, dev KEK, TLS certificate and the
//! first admin token.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use signet_keys::Kek;

use crate::config::{CONFIG_FILE, Config};
use crate::custody::{SealFile, SealMode};
use crate::serve::{BuildOptions, DEV_MODE_WARNING, anyhow_core, build_app, in_dir};

/// How the new server's key-encryption key is held.
#[derive(Debug, Clone)]
pub enum Custody {
    /// Split into `shares` custodian shares, any `threshold` of which unseal (production).
    Shamir {
        shares: u8,
        threshold: u8,
        /// Write one share per file here (mode 0600) instead of printing them.
        share_dir: Option<PathBuf>,
    },
    /// Wrapped by an AES key inside a PKCS#11 token (auto-unseal); the token may hold keys too.
    Pkcs11(crate::config::Pkcs11Section),
    /// A local key file (`--dev`): for trying Signet out, never for production keys.
    Dev,
}

/// What `init` reports (`--json` prints exactly this).
#[derive(Debug, Serialize)]
pub struct InitOutput {
    pub url: String,
    /// Shown once; only its hash is stored.
    pub admin_token: String,
    pub ca_cert: PathBuf,
    pub data_dir: PathBuf,
    /// The audit log's verifier key (C2SP vkey): what `signet verify --log-key` and
    /// `signet audit verify --log-key` check checkpoints with.
    pub log_key: String,
    /// `shamir` or `dev-key-file`.
    pub custody: String,
    /// Shamir custody: the shares, shown once (empty when written to `share_files`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shares: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub share_files: Vec<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u8>,
}

/// Writes `bytes` to a new file readable only by its owner.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot create `{}`", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// A P-256 self-signed server certificate for `names`, valid for two years (renew by replacing
/// `tls/cert.pem` and `tls/key.pem`).
fn self_signed_cert(names: Vec<String>) -> Result<(String, String)> {
    let mut params = rcgen::CertificateParams::new(names).context("invalid certificate names")?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "signetd");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(730);
    let key = rcgen::KeyPair::generate().context("cannot generate the TLS key")?;
    let cert = params
        .self_signed(&key)
        .context("cannot sign the TLS certificate")?;
    Ok((cert.pem(), key.serialize_pem()))
}

pub async fn init(
    data_dir: &Path,
    listen: SocketAddr,
    node: String,
    custody: Custody,
) -> Result<InitOutput> {
    if let Custody::Shamir {
        shares, threshold, ..
    } = &custody
        && (*threshold == 0 || *shares == 0 || threshold > shares)
    {
        bail!(
            "cannot split into {shares} shares with threshold {threshold}; use 1 <= --threshold <= --shares <= 255"
        );
    }
    if data_dir.join(CONFIG_FILE).exists() {
        bail!(
            "`{}` is already initialized; serve it with `signetd serve --data-dir {}` or pick another directory",
            data_dir.display(),
            data_dir.display()
        );
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create `{}`", data_dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let data_dir = data_dir
        .canonicalize()
        .with_context(|| format!("cannot resolve `{}`", data_dir.display()))?;
    let mut cfg = Config::new(listen, node);
    let log_id = Kek::generate_bytes().map_err(anyhow_core)?;
    cfg.audit.origin = Some(format!("signet/{}", hex::encode(&log_id[..6])));

    let kek = Kek::generate_bytes().map_err(anyhow_core)?;
    let dev = matches!(custody, Custody::Dev);
    if let Custody::Pkcs11(section) = &custody {
        cfg.keys.pkcs11 = Some(section.clone());
        cfg.seal.mode = SealMode::Pkcs11;
    }
    if dev {
        let file = PathBuf::from("kek.dev");
        write_private(&in_dir(&data_dir, &file), kek.as_ref())?;
        tracing::warn!(file = %in_dir(&data_dir, &file).display(), "{DEV_MODE_WARNING}");
        cfg.keys.dev_kek_file = Some(file);
        cfg.seal.mode = SealMode::Dev;
    }

    // A self-signed certificate for the loopback names; clients trust exactly this
    // certificate (`SIGNET_CA`). No CA key is kept, so nothing here can mint other certificates.
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let ip = listen.ip();
    if !ip.is_unspecified() && !names.contains(&ip.to_string()) {
        names.push(ip.to_string());
    }
    let (cert_pem, key_pem) = self_signed_cert(names)?;
    let cert_path = in_dir(&data_dir, &cfg.server.tls_cert);
    if let Some(parent) = cert_path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&cert_path, cert_pem)?;
    write_private(&in_dir(&data_dir, &cfg.server.tls_key), key_pem.as_bytes())?;

    std::fs::write(data_dir.join(CONFIG_FILE), cfg.to_toml()?)?;

    let app = build_app(
        &data_dir,
        &cfg,
        BuildOptions {
            dev,
            initial_kek: (!dev).then(|| kek.clone()),
            tls: true,
        },
    )
    .await?;
    let (_info, secret) = app
        .service
        .bootstrap_admin_token()
        .await
        .map_err(anyhow_core)?;
    let log_key = (*app.log_vkey).clone();
    app.store.close().await;

    // Split the KEK only now that the keys sealed under it exist; the KEK itself is never
    // written anywhere in shamir mode.
    let (mut shares_out, mut share_files, mut threshold_out) = (Vec::new(), Vec::new(), None);
    if let Custody::Shamir {
        shares,
        threshold,
        share_dir,
    } = &custody
    {
        let lines =
            signet_keys::shamir::split(kek.as_ref(), *threshold, *shares).map_err(anyhow_core)?;
        let set = lines
            .first()
            .and_then(|l| signet_keys::shamir::parse(l.expose()).ok())
            .map(|p| p.set_id)
            .unwrap_or_default();
        SealFile {
            threshold: *threshold,
            shares: *shares,
            share_set: set.clone(),
        }
        .store(&data_dir)
        .map_err(anyhow_core)?;
        threshold_out = Some(*threshold);
        match share_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create `{}`", dir.display()))?;
                for (i, line) in lines.iter().enumerate() {
                    let path = dir.join(format!("share-{set}-{}.txt", i + 1));
                    write_private(&path, format!("{}\n", line.expose()).as_bytes())?;
                    share_files.push(path);
                }
            }
            None => shares_out = lines.iter().map(|l| l.expose().to_owned()).collect(),
        }
    }

    let host = if ip.is_unspecified() || ip.is_loopback() {
        "127.0.0.1".to_owned()
    } else {
        ip.to_string()
    };
    Ok(InitOutput {
        url: format!("https://{host}:{}", listen.port()),
        admin_token: secret.expose().to_owned(),
        ca_cert: cert_path,
        data_dir,
        log_key,
        custody: cfg.seal.mode.as_str().to_owned(),
        shares: shares_out,
        share_files,
        threshold: threshold_out,
    })
}
