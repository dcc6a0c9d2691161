//! `signet cert …`: certificates for signing keys — issued by an internal CA, requested with a
//! CSR from an external one and imported, listed, shown and revoked.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use signet_proto::{
    CertificateInfo, CsrRequest, ImportCertificateRequest, IssueCertificateRequest,
    RevokeCertificateRequest,
};

use crate::config::{self, Overrides};
use crate::print_json;
use crate::sign::write_atomic;
use crate::timestamp::rfc3339;

#[derive(Subcommand)]
pub enum CertCommand {
    /// Have an internal CA certify a key's current version; writes the certificate and its
    /// issuers (PEM) to FILE.
    ///
    /// The certificate is checked before it is written: it certifies the key's public key and
    /// each certificate is signed by the next. With --json, prints the CertificateInfo {id, key,
    /// key_version, kind, serial, subject, issuer, ca, not_before, not_after, status,
    /// revoked_at?, revocation_reason?, chain}; FILE is written either way.
    Issue {
        /// The key to certify.
        key: String,
        /// The internal CA that issues it (`signet ca list`). Not `--ca`: that global flag names
        /// the server's TLS certificate.
        #[arg(long, value_name = "CA")]
        ca_name: String,
        /// RFC 4514 subject with a CN, e.g. `CN=Release Signing,O=Example`.
        #[arg(long)]
        subject: String,
        /// Validity in days (default and maximum: the server's `max_validity_days`).
        #[arg(long)]
        days: Option<u32>,
        /// Where to write the chain (default: KEY.crt.pem).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Have a key sign a PKCS#10 request (for an external CA) for its current version.
    ///
    /// With --json, prints {key, key_version, csr}; FILE is written either way.
    Csr {
        key: String,
        /// RFC 4514 subject with a CN.
        #[arg(long)]
        subject: String,
        /// Where to write the PEM request (default: KEY.csr).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Attach a chain issued by an external CA (PEM or DER, leaf first) to the key version it
    /// certifies.
    ///
    /// With --json, prints the CertificateInfo (as `cert issue`).
    Import {
        key: String,
        /// The certificate, then its issuers.
        chain: PathBuf,
    },
    /// List certificates: all, or one key's.
    ///
    /// With --json, prints {certificates: [CertificateInfo…]}.
    List {
        /// Only this key's certificates.
        key: Option<String>,
    },
    /// Show a certificate; with -o, write it and its issuers (PEM).
    ///
    /// With --json, prints the CertificateInfo (as `cert issue`).
    Show {
        id: String,
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Revoke a certificate: it goes on its CA's CRL and no longer satisfies a key policy.
    ///
    /// With --json, prints the CertificateInfo (as `cert issue`).
    Revoke {
        id: String,
        /// `unspecified`, `key_compromise`, `ca_compromise`, `affiliation_changed`,
        /// `superseded` or `cessation_of_operation`.
        #[arg(long)]
        reason: Option<String>,
    },
}

pub async fn run(o: &Overrides, json: bool, cmd: CertCommand) -> Result<()> {
    let client = config::client(o)?;
    match cmd {
        CertCommand::Issue {
            key,
            ca_name,
            subject,
            days,
            output,
        } => {
            let cert = client
                .issue_certificate(
                    &key,
                    &IssueCertificateRequest {
                        ca: ca_name,
                        subject,
                        validity_days: days,
                    },
                )
                .await?;
            let info = client.get_key(&key).await?;
            let pem = info
                .versions
                .iter()
                .find(|v| v.version == cert.key_version)
                .map(|v| v.public_key_pem.clone())
                .ok_or_else(|| anyhow!("key `{key}` has no version {}", cert.key_version))?;
            let spki = signet_formats::pem::pem_to_spki(&pem)?;
            check_key_chain(&spki, &cert.chain).with_context(|| {
                format!(
                    "the certificate issued for key `{key}` v{} does not certify it; not writing it",
                    cert.key_version
                )
            })?;
            let path = output.unwrap_or_else(|| default_path(&key, ".crt.pem"));
            write_atomic(&path, cert.chain.concat().as_bytes())?;
            if json {
                return print_json(&cert);
            }
            show(&cert);
            println!("wrote {}", path.display());
        }
        CertCommand::Csr {
            key,
            subject,
            output,
        } => {
            let csr = client.create_csr(&key, &CsrRequest { subject }).await?;
            let path = output.unwrap_or_else(|| default_path(&key, ".csr"));
            write_atomic(&path, csr.csr.as_bytes())?;
            if json {
                return print_json(&csr);
            }
            println!(
                "wrote {} (key {} v{}); send it to your CA, then `signet cert import {} CHAIN.pem`",
                path.display(),
                csr.key,
                csr.key_version,
                csr.key
            );
        }
        CertCommand::Import { key, chain } => {
            let bytes = std::fs::read(&chain)
                .with_context(|| format!("cannot read the chain `{}`", chain.display()))?;
            // PEM or DER in, PEM out: the server takes PEM.
            let certs = signet_formats::x509::parse_certificates(&bytes).with_context(|| {
                format!(
                    "cannot use `{}`; pass the certificate then its issuers, PEM",
                    chain.display()
                )
            })?;
            let pem: String = certs
                .iter()
                .map(|c| signet_formats::x509::certificate_pem(c))
                .collect();
            let cert = client
                .import_certificate(&key, &ImportCertificateRequest { chain: pem })
                .await?;
            if json {
                return print_json(&cert);
            }
            show(&cert);
        }
        CertCommand::List { key } => {
            let list = match &key {
                Some(k) => client.key_certificates(k).await?,
                None => client.list_certificates().await?,
            };
            if json {
                return print_json(&list);
            }
            println!(
                "{:<32} {:<20} {:>7} {:<12} {:<40} {:<36} {:<20} STATUS",
                "ID", "KEY", "VERSION", "KIND", "SERIAL", "SUBJECT", "NOT AFTER"
            );
            for c in &list.certificates {
                println!(
                    "{:<32} {:<20} {:>7} {:<12} {:<40} {:<36} {:<20} {}",
                    c.id,
                    c.key,
                    c.key_version,
                    c.kind,
                    c.serial,
                    c.subject,
                    rfc3339(c.not_after),
                    c.status
                );
            }
        }
        CertCommand::Show { id, output } => {
            let cert = client.get_certificate(&id).await?;
            if let Some(path) = &output {
                write_atomic(path, cert.chain.concat().as_bytes())?;
            }
            if json {
                return print_json(&cert);
            }
            show(&cert);
            if let Some(path) = &output {
                println!("wrote {}", path.display());
            }
        }
        CertCommand::Revoke { id, reason } => {
            let cert = client
                .revoke_certificate(&id, &RevokeCertificateRequest { reason })
                .await?;
            if json {
                return print_json(&cert);
            }
            show(&cert);
        }
    }
    Ok(())
}

/// `KEY` + `ext` in the current directory.
fn default_path(key: &str, ext: &str) -> PathBuf {
    Path::new(&format!("{}{ext}", safe_name(key))).to_path_buf()
}

/// A name made safe as (part of) a file name: no path separators.
pub fn safe_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub fn show(c: &CertificateInfo) {
    println!("id:         {}", c.id);
    println!("key:        {} v{}", c.key, c.key_version);
    println!("kind:       {}", c.kind);
    println!("subject:    {}", c.subject);
    println!("issuer:     {}", c.issuer);
    if let Some(ca) = &c.ca {
        println!("ca:         {ca}");
    }
    println!("serial:     {}", c.serial);
    println!(
        "valid:      {} to {}",
        rfc3339(c.not_before),
        rfc3339(c.not_after)
    );
    match (&c.revoked_at, &c.revocation_reason) {
        (Some(at), reason) => println!(
            "status:     {} at {} ({})",
            c.status,
            rfc3339(*at),
            reason.as_deref().unwrap_or("unspecified")
        ),
        (None, _) => println!("status:     {}", c.status),
    }
}

/// DER certificates of a PEM chain as the API carries it (one PEM block per string).
pub fn chain_der(pems: &[String]) -> Result<Vec<Vec<u8>>> {
    let certs = signet_formats::x509::parse_certificates(pems.concat().as_bytes())?;
    if certs.len() != pems.len() {
        bail!(
            "the chain has {} PEM strings but {} certificates; each string must hold one certificate",
            pems.len(),
            certs.len()
        );
    }
    Ok(certs)
}

/// Checks that a PEM chain (leaf first) certifies `spki` and that each certificate is issued by
/// the next ([`signet_formats::x509::check_chain`]).
pub fn check_key_chain(spki: &[u8], pems: &[String]) -> Result<()> {
    signet_formats::x509::check_chain(spki, &chain_der(pems)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_paths_are_file_names_in_the_current_directory() {
        assert_eq!(
            default_path("release", ".crt.pem"),
            PathBuf::from("release.crt.pem")
        );
        assert_eq!(default_path("a/../b", ".csr"), PathBuf::from("a_.._b.csr"));
    }
}
