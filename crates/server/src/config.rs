//! `signetd.toml` and its `SIGNET_*` environment overrides.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

pub const CONFIG_FILE: &str = "signetd.toml";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub keys: KeysConfig,
    pub store: StoreConfig,
    #[serde(default)]
    pub audit: AuditConfig,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// The log's origin line in checkpoints, and the name of its verifier key; unique per log
    /// (`signetd init` makes `signet/<random>`). Default: `signet/<node>`.
    pub origin: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on (`SIGNET_LISTEN`).
    pub listen: SocketAddr,
    /// This node's name in audit events (`SIGNET_NODE`).
    pub node: String,
    /// TLS certificate chain and private key (PEM), relative to the data directory.
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// Largest accepted request body in bytes (`SIGNET_MAX_BODY_BYTES`).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    /// `software` (keys sealed under the KEK).
    pub backend: String,
    /// Dev mode only: the KEK as a local file (mode 0600), relative to the data directory.
    pub dev_kek_file: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// SQLite database file, relative to the data directory.
    pub sqlite: PathBuf,
}

fn default_max_body() -> usize {
    1024 * 1024
}

impl Config {
    pub fn new(listen: SocketAddr, node: String) -> Self {
        Config {
            server: ServerConfig {
                listen,
                node,
                tls_cert: "tls/cert.pem".into(),
                tls_key: "tls/key.pem".into(),
                max_body_bytes: default_max_body(),
            },
            keys: KeysConfig {
                backend: "software".into(),
                dev_kek_file: "kek.dev".into(),
            },
            store: StoreConfig {
                sqlite: "signet.db".into(),
            },
            audit: AuditConfig::default(),
        }
    }

    /// Loads `DIR/signetd.toml`, then applies `SIGNET_*` overrides.
    pub fn load(data_dir: &Path) -> Result<Self> {
        let path = data_dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read `{}`; run `signetd init --data-dir {}` first",
                path.display(),
                data_dir.display()
            )
        })?;
        let mut cfg: Config = toml::from_str(&text)
            .with_context(|| format!("invalid config `{}`", path.display()))?;
        cfg.apply_env(|k| std::env::var(k).ok())?;
        Ok(cfg)
    }

    fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<()> {
        if let Some(v) = get("SIGNET_LISTEN") {
            self.server.listen = v
                .parse()
                .with_context(|| format!("invalid SIGNET_LISTEN `{v}`; use HOST:PORT"))?;
        }
        if let Some(v) = get("SIGNET_NODE") {
            self.server.node = v;
        }
        if let Some(v) = get("SIGNET_MAX_BODY_BYTES") {
            self.server.max_body_bytes = v.parse().with_context(|| {
                format!("invalid SIGNET_MAX_BODY_BYTES `{v}`; use a byte count")
            })?;
        }
        if self.keys.backend != "software" {
            bail!(
                "unknown key backend `{}`; this build supports `software`",
                self.keys.backend
            );
        }
        Ok(())
    }

    pub fn origin(&self) -> String {
        self.audit
            .origin
            .clone()
            .unwrap_or_else(|| format!("signet/{}", self.server.node))
    }

    pub fn to_toml(&self) -> Result<String> {
        Ok(toml::to_string_pretty(self)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_apply() -> Result<()> {
        let mut cfg = Config::new("127.0.0.1:8443".parse()?, "n".into());
        cfg.apply_env(|k| match k {
            "SIGNET_LISTEN" => Some("127.0.0.1:9000".into()),
            "SIGNET_NODE" => Some("node-b".into()),
            _ => None,
        })?;
        assert_eq!(cfg.server.listen.port(), 9000);
        assert_eq!(cfg.server.node, "node-b");
        assert!(
            cfg.apply_env(|k| (k == "SIGNET_LISTEN").then(|| "nope".into()))
                .is_err()
        );
        let text = cfg.to_toml()?;
        let back: Config = toml::from_str(&text)?;
        assert_eq!(back.server.listen, cfg.server.listen);
        Ok(())
    }
}
