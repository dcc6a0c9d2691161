//! `signet key …`.

use anyhow::{Result, bail};
use clap::Subcommand;
use signet_proto::{KeyInfo, KeyPolicy};

use crate::config::{self, Overrides};
use crate::print_json;

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Create a key; the private key is generated in the server and never leaves it.
    Create {
        name: String,
        /// ed25519, ecdsa-p256, ecdsa-p384, rsa-3072-pss, rsa-3072-pkcs1, rsa-4096-pss,
        /// rsa-4096-pkcs1, ml-dsa-44, ml-dsa-65, ml-dsa-87, slh-dsa-sha2-128s, slh-dsa-sha2-128f.
        #[arg(long)]
        algorithm: String,
        /// Key backend to hold it: `software` or `pkcs11` (default: the server's default).
        #[arg(long)]
        backend: Option<String>,
        /// Adopt an existing private key in the backend instead of generating one, named by a
        /// PKCS#11 URI such as `pkcs11:object=release-2026;id=%01`. It is never exported.
        #[arg(long, value_name = "PKCS11_URI")]
        adopt: Option<String>,
    },
    /// List keys.
    List,
    /// Show a key: algorithm, state, versions and fingerprints.
    Show { name: String },
    /// Print a key's public key (SPKI PEM).
    Public {
        name: String,
        /// Version (default: the current signing version).
        #[arg(long)]
        version: Option<u32>,
    },
    /// Make a new version the signing version; old versions still verify.
    Rotate { name: String },
    /// Refuse signatures with this key until enabled again.
    Disable { name: String },
    /// Allow signatures with a disabled key again.
    Enable { name: String },
    /// Show or change a key's policy: what the server requires before it signs with the key.
    ///
    /// Without flags, prints the policy; with flags, changes only the fields given. With
    /// --json, prints {key, policy: {require_certificate, require_timestamp}}.
    Policy {
        name: String,
        /// Refuse to sign unless the signing version has a valid, unrevoked certificate.
        #[arg(long, value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
        require_certificate: Option<bool>,
        /// Attach a time-stamp from the server's TSA to every signature.
        #[arg(long, value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
        require_timestamp: Option<bool>,
    },
}

pub async fn run(o: &Overrides, json: bool, cmd: KeyCommand) -> Result<()> {
    let client = config::client(o)?;
    let key = match cmd {
        KeyCommand::Create {
            name,
            algorithm,
            backend,
            adopt,
        } => {
            client
                .create_key_with(&signet_proto::CreateKeyRequest {
                    name,
                    algorithm,
                    backend,
                    adopt,
                })
                .await?
        }
        KeyCommand::List => {
            let list = client.list_keys().await?;
            if json {
                return print_json(&list);
            }
            println!(
                "{:<24} {:<16} {:<9} {:>7}  FINGERPRINT",
                "NAME", "ALGORITHM", "STATE", "VERSION"
            );
            for k in &list.keys {
                let fp = current(k).map(|v| v.fingerprint.as_str()).unwrap_or("-");
                println!(
                    "{:<24} {:<16} {:<9} {:>7}  {fp}",
                    k.name, k.algorithm, k.state, k.current_version
                );
            }
            return Ok(());
        }
        KeyCommand::Show { name } => client.get_key(&name).await?,
        KeyCommand::Public { name, version } => {
            let key = client.get_key(&name).await?;
            let want = version.unwrap_or(key.current_version);
            let Some(v) = key.versions.iter().find(|v| v.version == want) else {
                bail!(
                    "key `{name}` has no version `{want}`; it has versions 1 to {}",
                    key.current_version
                );
            };
            if json {
                return print_json(&serde_json::json!({
                    "key": key.name,
                    "version": v.version,
                    "fingerprint": v.fingerprint,
                    "public_key_pem": v.public_key_pem,
                }));
            }
            print!("{}", v.public_key_pem);
            return Ok(());
        }
        KeyCommand::Rotate { name } => client.rotate_key(&name).await?,
        KeyCommand::Disable { name } => client.set_key_enabled(&name, false).await?,
        KeyCommand::Enable { name } => client.set_key_enabled(&name, true).await?,
        KeyCommand::Policy {
            name,
            require_certificate,
            require_timestamp,
        } => {
            let mut key = client.get_key(&name).await?;
            if require_certificate.is_some() || require_timestamp.is_some() {
                let mut policy = key.policy;
                if let Some(v) = require_certificate {
                    policy.require_certificate = v;
                }
                if let Some(v) = require_timestamp {
                    policy.require_timestamp = v;
                }
                key = client.set_key_policy(&name, &policy).await?;
            }
            if json {
                return print_json(&serde_json::json!({
                    "key": key.name,
                    "policy": key.policy,
                }));
            }
            println!("key:                 {}", key.name);
            print_policy(&key.policy);
            return Ok(());
        }
    };
    if json {
        return print_json(&key);
    }
    show(&key);
    Ok(())
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn print_policy(p: &KeyPolicy) {
    println!("require certificate: {}", yes_no(p.require_certificate));
    println!("require time-stamp:  {}", yes_no(p.require_timestamp));
}

fn current(k: &KeyInfo) -> Option<&signet_proto::KeyVersionInfo> {
    k.versions.iter().find(|v| v.version == k.current_version)
}

fn show(k: &KeyInfo) {
    println!("name:       {}", k.name);
    println!("algorithm:  {}", k.algorithm);
    println!("state:      {}", k.state);
    println!("backend:    {}", k.backend);
    println!("created:    {}", k.created_at);
    println!("digests:    {}", k.digest_algorithms.join(", "));
    println!("usage:      {}", k.usage);
    println!(
        "policy:     require certificate: {}; require time-stamp: {}",
        yes_no(k.policy.require_certificate),
        yes_no(k.policy.require_timestamp)
    );
    println!("versions:   (current: {})", k.current_version);
    for v in &k.versions {
        let mark = if v.version == k.current_version {
            "*"
        } else {
            " "
        };
        println!(
            "  {mark} v{:<4} {}  {}",
            v.version, v.created_at, v.fingerprint
        );
    }
}
