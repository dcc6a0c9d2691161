//! `signet tsa …`: the server's built-in RFC 3161 time-stamping authority.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use signet_proto::{CreateTsaRequest, TsaInfo};

use crate::cert::chain_der;
use crate::config::{self, Overrides};
use crate::print_json;
use crate::sign::write_atomic;
use crate::timestamp::rfc3339;

#[derive(Subcommand)]
pub enum TsaCommand {
    /// Set up the built-in TSA: a key with usage `timestamping` and a certificate with the
    /// critical extended key usage timeStamping from an internal CA.
    ///
    /// With --json, prints the TsaInfo {key, policy, chain, url}.
    Create {
        /// The internal CA that issues the TSA certificate. Not `--ca`: that global flag names
        /// the server's TLS certificate.
        #[arg(long, value_name = "CA")]
        ca_name: String,
        /// Key name (default: tsa).
        #[arg(long)]
        key: Option<String>,
        /// Key algorithm (default: ecdsa-p256).
        #[arg(long)]
        algorithm: Option<String>,
        /// Key backend: `software` or `pkcs11` (default: the server's default).
        #[arg(long)]
        backend: Option<String>,
        /// RFC 4514 subject (default: "CN=Signet Time-Stamping Authority").
        #[arg(long)]
        subject: Option<String>,
    },
    /// Show the TSA: its key, policy, URL and certificates; with -o, write the chain (PEM), for
    /// `--tsa-ca` or for verifiers.
    ///
    /// With --json, prints the TsaInfo {key, policy, chain, url}; FILE is written either way.
    Show {
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

pub async fn run(o: &Overrides, json: bool, cmd: TsaCommand) -> Result<()> {
    let client = config::client(o)?;
    let (tsa, output) = match cmd {
        TsaCommand::Create {
            ca_name,
            key,
            algorithm,
            backend,
            subject,
        } => (
            client
                .create_tsa(&CreateTsaRequest {
                    ca: ca_name,
                    key,
                    algorithm,
                    backend,
                    subject,
                })
                .await?,
            None,
        ),
        TsaCommand::Show { output } => (client.tsa().await?, output),
    };
    if let Some(path) = &output {
        chain_der(&tsa.chain).context("the server's TSA chain does not parse; not writing it")?;
        write_atomic(path, tsa.chain.concat().as_bytes())?;
    }
    if json {
        return print_json(&tsa);
    }
    show(&tsa);
    if let Some(path) = &output {
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn show(t: &TsaInfo) {
    println!("key:      {}", t.key);
    println!("policy:   {}", t.policy);
    println!("url:      {}", t.url);
    match chain_der(&t.chain) {
        Ok(certs) => {
            for (i, der) in certs.iter().enumerate() {
                let label = if i == 0 { "cert:" } else { "issuer:" };
                match signet_formats::x509::parse_certificate(der) {
                    Ok(c) => println!(
                        "{label:<9} {} (serial {}, valid to {})",
                        c.subject,
                        c.serial,
                        rfc3339(c.not_after)
                    ),
                    Err(e) => println!("{label:<9} (cannot read: {e})"),
                }
            }
        }
        Err(e) => println!("chain:    (cannot read: {e:#})"),
    }
}
