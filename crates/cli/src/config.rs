//! Where the CLI finds its server: flags, then `SIGNET_URL`/`SIGNET_TOKEN`/`SIGNET_CA`, then the
//! file `signet login` writes (`$XDG_CONFIG_HOME/signet/config.toml`, mode 0600).
//!
//! The file may also list external time-stamping authorities for `signet sign --timestamp`,
//! asked in order when no `--tsa` is given:
//!
//! ```toml
//! tsa_urls = ["http://timestamp.example/tsr", "https://tsa2.example/"]
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};
use signet_client::{Client, ClientConfig};
use zeroize::Zeroizing;

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub url: Option<String>,
    pub ca: Option<PathBuf>,
    pub token: Option<String>,
    /// RFC 3161 TSAs for `signet sign --timestamp`, in order (default: the server's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tsa_urls: Option<Vec<String>>,
}

impl Drop for FileConfig {
    fn drop(&mut self) {
        if let Some(t) = self.token.as_mut() {
            zeroize::Zeroize::zeroize(t);
        }
    }
}

/// `$XDG_CONFIG_HOME/signet/config.toml`, else `~/.config/signet/config.toml`.
pub fn config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("signet").join("config.toml"))
}

pub fn load_file() -> Result<FileConfig> {
    let Some(path) = config_path() else {
        return Ok(FileConfig::default());
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).with_context(|| {
            format!(
                "invalid config `{}`; fix it or run `signet login` again",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileConfig::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read `{}`", path.display())),
    }
}

pub fn save_file(cfg: &FileConfig) -> Result<PathBuf> {
    let path = config_path()
        .ok_or_else(|| anyhow!("cannot find a config directory; set XDG_CONFIG_HOME or HOME"))?;
    let dir = path
        .parent()
        .ok_or_else(|| anyhow!("invalid config path"))?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let text = toml::to_string(cfg)?;
    let tmp = path.with_extension("toml.tmp");
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(&tmp)
            .with_context(|| format!("cannot write `{}`", tmp.display()))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Connection settings given on the command line.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub url: Option<String>,
    pub ca: Option<PathBuf>,
}

pub fn read_ca(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| {
        format!(
            "cannot read the CA certificate `{}`; point SIGNET_CA at signetd's tls/cert.pem",
            path.display()
        )
    })
}

/// Builds a client from flags, environment and the login file, in that order.
pub fn client(o: &Overrides) -> Result<Client> {
    let file = load_file()?;
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let url = o
        .url
        .clone()
        .or_else(|| env("SIGNET_URL"))
        .or_else(|| file.url.clone())
        .ok_or_else(|| {
            anyhow!("no server configured; set SIGNET_URL or run `signet login --url URL`")
        })?;
    let ca =
        o.ca.clone()
            .or_else(|| env("SIGNET_CA").map(PathBuf::from))
            .or_else(|| file.ca.clone());
    let token = env("SIGNET_TOKEN")
        .or_else(|| file.token.clone())
        .map(Zeroizing::new);
    let cfg = ClientConfig {
        url,
        token,
        ca_pem: ca.as_deref().map(read_ca).transpose()?,
        timeout: None,
    };
    Ok(Client::new(&cfg)?)
}
