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
    #[serde(default)]
    pub seal: SealConfig,
    #[serde(default)]
    pub pki: PkiConfig,
}

/// Certificates and time-stamping (see `docs/certificates.md`, `docs/timestamping.md`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PkiConfig {
    /// The base URL relying parties reach this server at, put in CRL distribution points
    /// (`SIGNET_PUBLIC_URL`). Default: `https://<listen address>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Longest validity of a leaf certificate, in days (CA/Browser Forum code signing: 460).
    pub max_validity_days: u32,
    /// The TSA policy OID in every time-stamp token.
    pub tsa_policy: String,
    /// The accuracy the TSA claims, in seconds.
    pub tsa_accuracy_seconds: u32,
    /// Whether `POST /tsa` answers without an API token (RFC 3161 clients such as
    /// `osslsigncode -ts` send none).
    pub tsa_public: bool,
}

/// The default TSA policy OID: a placeholder under IANA's reserved enterprise number 0, so no
/// organisation's arc is borrowed. Sites publish their own policy and set `[pki] tsa_policy`
/// (an OID under their enterprise arc). Arcs must fit 32 bits (UUID-based 2.25 OIDs do not).
pub const DEFAULT_TSA_POLICY: &str = "1.3.6.1.4.1.0.3161.1";

impl Default for PkiConfig {
    fn default() -> Self {
        PkiConfig {
            public_url: None,
            max_validity_days: 460,
            tsa_policy: DEFAULT_TSA_POLICY.to_owned(),
            tsa_accuracy_seconds: 1,
            tsa_public: true,
        }
    }
}

/// How the key-encryption key reaches memory (see `docs/keys.md`, "Sealing").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealConfig {
    /// `shamir` (custodian shares; starts sealed), `pkcs11` (auto-unseal: the KEK is wrapped by
    /// a key in the `[keys.pkcs11]` token) or `dev` (a local file; needs `--dev`).
    pub mode: crate::custody::SealMode,
    /// `pkcs11` mode: label of the AES wrapping key in the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrapping_key_label: Option<String>,
    /// `pkcs11` mode: the wrapped KEK, relative to the data directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrapped_kek_file: Option<PathBuf>,
}

impl Default for SealConfig {
    /// Data directories made before sealing existed used the dev key file.
    fn default() -> Self {
        SealConfig {
            mode: crate::custody::SealMode::Dev,
            wrapping_key_label: None,
            wrapped_kek_file: None,
        }
    }
}

/// A PKCS#11 token holding keys (`backend = "pkcs11"`) and/or the KEK wrapping key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Section {
    /// The token vendor's PKCS#11 module (`/usr/lib/softhsm/libsofthsm2.so`).
    pub module: PathBuf,
    /// Find the token by label or serial (slot numbers change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_serial: Option<String>,
    /// The user PIN: a file (mode 0600) or an environment variable, never the config itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_env: Option<String>,
    /// Most sessions to open (default: what the token allows, at most a few per core).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sessions: Option<usize>,
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
    /// The backend new keys go to by default: `software` (sealed under the KEK) or `pkcs11`.
    pub backend: String,
    /// Dev mode only: the KEK as a local file (mode 0600), relative to the data directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev_kek_file: Option<PathBuf>,
    /// Refuse to start unless cryptography runs in the FIPS 140-3 validated module, and refuse
    /// new keys outside its boundary.
    #[serde(default)]
    pub require_fips: bool,
    /// Algorithms new keys may use (default: all). E.g. `["ecdsa-p256", "ml-dsa-65"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_algorithms: Option<Vec<String>>,
    /// A PKCS#11 token (HSM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkcs11: Option<Pkcs11Section>,
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
                dev_kek_file: None,
                require_fips: false,
                allowed_algorithms: None,
                pkcs11: None,
            },
            store: StoreConfig {
                sqlite: "signet.db".into(),
            },
            audit: AuditConfig::default(),
            seal: SealConfig {
                mode: crate::custody::SealMode::Shamir,
                wrapping_key_label: None,
                wrapped_kek_file: None,
            },
            pki: PkiConfig::default(),
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
        if let Some(v) = get("SIGNET_PUBLIC_URL") {
            self.pki.public_url = Some(v);
        }
        if let Some(url) = &self.pki.public_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            bail!("invalid `[pki] public_url` `{url}`; use an http:// or https:// URL");
        }
        if self.pki.max_validity_days == 0 {
            bail!("`[pki] max_validity_days` must be at least 1");
        }
        if !is_oid(&self.pki.tsa_policy) {
            bail!(
                "invalid `[pki] tsa_policy` `{}`; use a dotted OID such as `1.3.6.1.4.1.99999.1`",
                self.pki.tsa_policy
            );
        }
        if let Some(v) = get("SIGNET_REQUIRE_FIPS") {
            self.keys.require_fips = match v.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" => false,
                _ => bail!("invalid SIGNET_REQUIRE_FIPS `{v}`; use 1 or 0"),
            };
        }
        match self.keys.backend.as_str() {
            "software" => {}
            "pkcs11" if self.keys.pkcs11.is_some() => {}
            "pkcs11" => bail!(
                "key backend `pkcs11` needs a `[keys.pkcs11]` section (module, token_label, pin_file); see docs/keys.md"
            ),
            other => bail!("unknown key backend `{other}`; use `software` or `pkcs11`"),
        }
        if self.seal.mode == crate::custody::SealMode::Pkcs11 && self.keys.pkcs11.is_none() {
            bail!(
                "seal mode `pkcs11` needs a `[keys.pkcs11]` section naming the token that holds the wrapping key; see docs/keys.md"
            );
        }
        if self.seal.mode == crate::custody::SealMode::Dev && self.keys.dev_kek_file.is_none() {
            bail!("seal mode `dev` needs `keys.dev_kek_file`");
        }
        Ok(())
    }

    /// The base URL in CRL distribution points and the TSA URL.
    pub fn public_url(&self, tls: bool) -> String {
        self.pki.public_url.clone().unwrap_or_else(|| {
            format!(
                "{}://{}",
                if tls { "https" } else { "http" },
                self.server.listen
            )
        })
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

/// A dotted OID: at least two arcs, the first 0–2, decimal numbers that fit 32 bits.
fn is_oid(s: &str) -> bool {
    let arcs: Vec<&str> = s.split('.').collect();
    arcs.len() >= 2
        && arcs.iter().all(|a| {
            a.len() <= 10 && a.parse::<u32>().is_ok() && a.bytes().all(|b| b.is_ascii_digit())
        })
        && matches!(arcs[0], "0" | "1" | "2")
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
