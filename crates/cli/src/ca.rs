//! `signet ca …`: internal certificate authorities (a root and an issuing key, both held by the
//! server) and their CRLs.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde::Serialize;
use signet_proto::{CaInfo, CreateCaRequest};

use crate::cert::{chain_der, safe_name};
use crate::config::{self, Overrides};
use crate::sign::write_atomic;
use crate::timestamp::rfc3339;
use crate::{print_json, usage};

#[derive(Subcommand)]
pub enum CaCommand {
    /// Create an internal CA: keys NAME-root and NAME-issuing, a self-signed root certificate
    /// and an issuing certificate signed by it.
    ///
    /// With --json, prints the CaInfo {name, root_key, issuing_key, root_certificate,
    /// issuing_certificate, crl_url, created_at}; --out-dir files are written either way.
    Create {
        name: String,
        /// Key algorithm of both keys (default: ecdsa-p384).
        #[arg(long)]
        algorithm: Option<String>,
        /// Key backend: `software` or `pkcs11` (default: the server's default).
        #[arg(long)]
        backend: Option<String>,
        /// RFC 4514 subject prefix, e.g. "O=Example,C=DE"; the CNs are "NAME Root CA" and
        /// "NAME Issuing CA".
        #[arg(long)]
        organization: Option<String>,
        /// Root certificate validity in days (default: 3650).
        #[arg(long)]
        root_days: Option<u32>,
        /// Issuing certificate validity in days (default: 1825).
        #[arg(long)]
        issuing_days: Option<u32>,
        /// Write NAME-root.pem and NAME-issuing.pem here.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
    /// List internal CAs.
    ///
    /// With --json, prints {cas: [CaInfo…]}.
    List,
    /// Show a CA; with --out-dir, write NAME-root.pem and NAME-issuing.pem.
    ///
    /// With --json, prints the CaInfo (as `ca create`).
    Show {
        name: String,
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
    /// Fetch a CA's current CRL: DER (or PEM with --pem) to FILE or standard output.
    ///
    /// The CRL is written as served; check it with e.g. `openssl crl -CAfile`. With --json,
    /// prints {ca, output, size, crl_pem}: `output` is the file written (or null), `size` the
    /// DER length.
    Crl {
        name: String,
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// PEM (`-----BEGIN X509 CRL-----`) instead of DER.
        #[arg(long)]
        pem: bool,
    },
}

#[derive(Serialize)]
struct CrlOut {
    ca: String,
    output: Option<String>,
    size: usize,
    crl_pem: String,
}

pub async fn run(o: &Overrides, json: bool, cmd: CaCommand) -> Result<()> {
    let client = config::client(o)?;
    match cmd {
        CaCommand::Create {
            name,
            algorithm,
            backend,
            organization,
            root_days,
            issuing_days,
            out_dir,
        } => {
            let ca = client
                .create_ca(&CreateCaRequest {
                    name,
                    algorithm,
                    backend,
                    organization,
                    root_validity_days: root_days,
                    issuing_validity_days: issuing_days,
                })
                .await?;
            finish(&ca, out_dir.as_deref(), json)
        }
        CaCommand::List => {
            let list = client.list_cas().await?;
            if json {
                return print_json(&list);
            }
            println!(
                "{:<20} {:<24} {:<24} {:<20} CRL",
                "NAME", "ROOT KEY", "ISSUING KEY", "ISSUING EXPIRES"
            );
            for ca in &list.cas {
                let expires = expiry(&ca.issuing_certificate).unwrap_or_else(|_| "-".into());
                println!(
                    "{:<20} {:<24} {:<24} {:<20} {}",
                    ca.name, ca.root_key, ca.issuing_key, expires, ca.crl_url
                );
            }
            Ok(())
        }
        CaCommand::Show { name, out_dir } => {
            let ca = client.get_ca(&name).await?;
            finish(&ca, out_dir.as_deref(), json)
        }
        CaCommand::Crl { name, output, pem } => {
            if output.is_none() && !pem && !json && std::io::stdout().is_terminal() {
                return Err(usage(
                    "a DER CRL is binary; pass -o FILE, or --pem to print it as text",
                ));
            }
            let der = client.ca_crl(&name).await?;
            let crl_pem = signet_formats::x509::crl_pem(&der);
            let bytes = if pem {
                crl_pem.clone().into_bytes()
            } else {
                der.clone()
            };
            if let Some(path) = &output {
                write_atomic(path, &bytes)?;
            }
            if json {
                return print_json(&CrlOut {
                    ca: name,
                    output: output.map(|p| p.display().to_string()),
                    size: der.len(),
                    crl_pem,
                });
            }
            match &output {
                Some(path) => println!(
                    "wrote the CRL of CA `{name}` to {} ({} bytes DER)",
                    path.display(),
                    der.len()
                ),
                None => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&bytes)
                        .and_then(|()| out.flush())
                        .context("cannot write the CRL to standard output")?;
                }
            }
            Ok(())
        }
    }
}

/// Prints a CA, checking and writing its certificates when `out_dir` is given.
fn finish(ca: &CaInfo, out_dir: Option<&Path>, json: bool) -> Result<()> {
    let mut written = Vec::new();
    if let Some(dir) = out_dir {
        let root = chain_der(std::slice::from_ref(&ca.root_certificate))
            .context("the server's root certificate does not parse; not writing it")?;
        let issuing = chain_der(std::slice::from_ref(&ca.issuing_certificate))
            .context("the server's issuing certificate does not parse; not writing it")?;
        if let (Some(root), Some(issuing)) = (root.first(), issuing.first()) {
            signet_formats::x509::verify_issued_by(issuing, root).with_context(|| {
                format!(
                    "the issuing certificate of CA `{}` is not signed by its root; not writing them",
                    ca.name
                )
            })?;
            signet_formats::x509::verify_issued_by(root, root).with_context(|| {
                format!(
                    "the root certificate of CA `{}` is not self-signed; not writing it",
                    ca.name
                )
            })?;
        }
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create `{}`", dir.display()))?;
        for (suffix, pem) in [
            ("-root.pem", &ca.root_certificate),
            ("-issuing.pem", &ca.issuing_certificate),
        ] {
            let path = dir.join(format!("{}{suffix}", safe_name(&ca.name)));
            write_atomic(&path, pem.as_bytes())?;
            written.push(path);
        }
    }
    if json {
        return print_json(ca);
    }
    println!("name:        {}", ca.name);
    println!("root key:    {}", ca.root_key);
    println!("issuing key: {}", ca.issuing_key);
    for (what, pem) in [
        ("root", &ca.root_certificate),
        ("issuing", &ca.issuing_certificate),
    ] {
        match describe(pem) {
            Ok(d) => println!("{what:<8}     {d}"),
            Err(e) => println!("{what:<8}     (cannot read: {e:#})"),
        }
    }
    println!("crl:         {}", ca.crl_url);
    println!("created:     {}", rfc3339(ca.created_at));
    for p in &written {
        println!("wrote {}", p.display());
    }
    Ok(())
}

fn describe(pem: &str) -> Result<String> {
    let certs = chain_der(std::slice::from_ref(&pem.to_owned()))?;
    let Some(der) = certs.first() else {
        bail!("no certificate");
    };
    let c = signet_formats::x509::parse_certificate(der)?;
    Ok(format!(
        "{} (serial {}, valid to {})",
        c.subject,
        c.serial,
        rfc3339(c.not_after)
    ))
}

fn expiry(pem: &str) -> Result<String> {
    let certs = chain_der(std::slice::from_ref(&pem.to_owned()))?;
    let Some(der) = certs.first() else {
        bail!("no certificate");
    };
    Ok(rfc3339(
        signet_formats::x509::parse_certificate(der)?.not_after,
    ))
}
