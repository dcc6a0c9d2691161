//! `signet verify`: check a file against its bundle or raw signature.

use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{Context, Result, anyhow, bail};
use clap::{ArgGroup, Args};
use serde::Serialize;
use signet_core::{Algorithm, DigestAlgorithm};
use signet_formats::bundle::Bundle;

use crate::config::{self, Overrides};
use crate::print_json;
use crate::sign::hash_file;

#[derive(Args)]
#[command(group(ArgGroup::new("pubkey").required(true).args(["key", "public_key"])))]
pub struct VerifyArgs {
    /// The signed file.
    file: PathBuf,
    /// Fetch the public key of this key from the server (the bundle's key version).
    #[arg(long)]
    key: Option<String>,
    /// Verify fully offline with this public key (SPKI PEM, as `signet key public` prints).
    #[arg(long)]
    public_key: Option<PathBuf>,
    /// The bundle (default: FILE.signet.json when it exists).
    #[arg(long)]
    bundle: Option<PathBuf>,
    /// A raw signature to check instead of a bundle (default: FILE.sig).
    #[arg(long, conflicts_with = "bundle")]
    signature: Option<PathBuf>,
    /// Algorithm of a raw signature (taken from the bundle or the server otherwise).
    #[arg(long)]
    algorithm: Option<String>,
    /// Digest algorithm of a raw signature (default: the algorithm's default).
    #[arg(long)]
    digest_algorithm: Option<String>,
    /// Also check, offline, that the signature is in the audit log: the log's verifier key
    /// (as `signetd init` prints it), or a file holding it.
    #[arg(long)]
    log_key: Option<String>,
}

#[derive(Serialize)]
struct Verified {
    verified: bool,
    file: String,
    key: Option<String>,
    key_version: Option<u32>,
    algorithm: String,
    digest: String,
    public_key_fingerprint: String,
    #[serde(with = "time::serde::rfc3339::option")]
    signed_at: Option<time::OffsetDateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log: Option<LoggedAt>,
}

#[derive(Serialize)]
struct LoggedAt {
    origin: String,
    index: u64,
    tree_size: u64,
}

pub async fn run(o: &Overrides, json: bool, args: VerifyArgs) -> Result<()> {
    let default_bundle = {
        let mut p = args.file.clone().into_os_string();
        p.push(".signet.json");
        PathBuf::from(p)
    };
    let bundle_path = match (&args.bundle, &args.signature) {
        (Some(b), _) => Some(b.clone()),
        (None, None) if default_bundle.exists() => Some(default_bundle),
        _ => None,
    };
    let bundle = match &bundle_path {
        Some(p) => Some(
            Bundle::from_json(
                &std::fs::read(p)
                    .with_context(|| format!("cannot read the bundle `{}`", p.display()))?,
            )
            .with_context(|| format!("cannot use the bundle `{}`", p.display()))?,
        ),
        None => None,
    };
    if let (Some(b), Some(k)) = (&bundle, &args.key)
        && &b.key != k
    {
        bail!(
            "the bundle was signed by key `{}`, not `{k}`; pass --key {}",
            b.key,
            b.key
        );
    }

    // The public key: from a file (offline) or from the server.
    let (spki, server_alg) = match (&args.public_key, &args.key) {
        (Some(p), _) => {
            let pem = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read the public key `{}`", p.display()))?;
            (signet_formats::pem::pem_to_spki(&pem)?, None)
        }
        (None, Some(name)) => {
            let key = config::client(o)?.get_key(name).await?;
            let want = bundle
                .as_ref()
                .map_or(key.current_version, |b| b.key_version);
            let v = key
                .versions
                .iter()
                .find(|v| v.version == want)
                .ok_or_else(|| anyhow!("key `{name}` has no version `{want}`"))?;
            (
                signet_formats::pem::pem_to_spki(&v.public_key_pem)?,
                Some(Algorithm::from_str(&key.algorithm)?),
            )
        }
        (None, None) => bail!("give --key NAME or --public-key PEM"),
    };
    let fingerprint = signet_core::key::fingerprint(&spki);

    let (algorithm, digest_alg, sig) = match &bundle {
        Some(b) => {
            if b.public_key_fingerprint != fingerprint {
                bail!(
                    "verification failed: the public key ({fingerprint}) is not the one that signed (bundle says {})",
                    b.public_key_fingerprint
                );
            }
            (b.algorithm, b.digest.algorithm, b.signature_bytes()?)
        }
        None => {
            let alg = match (&args.algorithm, server_alg) {
                (Some(a), _) => Algorithm::from_str(a)?,
                (None, Some(a)) => a,
                (None, None) => {
                    bail!("no bundle; give --algorithm for the raw signature (e.g. ecdsa-p256)")
                }
            };
            let d = match &args.digest_algorithm {
                Some(d) => DigestAlgorithm::from_str(d)?,
                None => alg.default_digest(),
            };
            let sig_path = args.signature.clone().unwrap_or_else(|| {
                let mut p = args.file.clone().into_os_string();
                p.push(".sig");
                PathBuf::from(p)
            });
            let sig = std::fs::read(&sig_path)
                .with_context(|| format!("cannot read the signature `{}`", sig_path.display()))?;
            (alg, d, sig)
        }
    };

    let digest = hash_file(&args.file, digest_alg).await?;
    if let Some(b) = &bundle
        && b.digest()? != digest
    {
        bail!(
            "verification failed: `{}` does not match the digest in the bundle (the file changed after signing)",
            args.file.display()
        );
    }
    signet_formats::raw::verify(algorithm, &spki, &digest, &sig)
        .map_err(|e| anyhow!("verification failed: {e}"))?;

    let log = match &args.log_key {
        None => None,
        Some(k) => {
            let Some(b) = &bundle else {
                bail!(
                    "--log-key needs a bundle (FILE.signet.json); a raw signature carries no log proof"
                );
            };
            let vkey = read_log_key(k)?;
            let v = b
                .verify_log(&vkey)
                .map_err(|e| anyhow!("verification failed: {e}"))?;
            Some(LoggedAt {
                origin: v.origin,
                index: v.index,
                tree_size: v.tree_size,
            })
        }
    };

    let out = Verified {
        verified: true,
        file: args.file.display().to_string(),
        key: bundle.as_ref().map(|b| b.key.clone()).or(args.key.clone()),
        key_version: bundle.as_ref().map(|b| b.key_version),
        algorithm: algorithm.as_str().to_owned(),
        digest: format!("{digest_alg}:{}", digest.to_hex()),
        public_key_fingerprint: fingerprint,
        signed_at: bundle.as_ref().map(|b| b.signed_at),
        log,
    };
    if json {
        return print_json(&out);
    }
    match (&out.key, out.key_version, out.signed_at) {
        (Some(k), Some(v), Some(t)) => println!(
            "verified {}: key {k} v{v} ({}), signed at {}",
            out.file,
            out.algorithm,
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| t.to_string())
        ),
        _ => println!(
            "verified {}: {} signature, key {}",
            out.file, out.algorithm, out.public_key_fingerprint
        ),
    }
    if let Some(l) = &out.log {
        println!(
            "logged at index {} of {} (checkpoint of size {} verified)",
            l.index, l.origin, l.tree_size
        );
    }
    Ok(())
}

/// A verifier key given inline (`origin+hash+key`) or as a file holding one.
pub fn read_log_key(arg: &str) -> Result<signet_formats::checkpoint::VerifierKey> {
    let text = if std::path::Path::new(arg).is_file() {
        std::fs::read_to_string(arg).with_context(|| format!("cannot read the log key `{arg}`"))?
    } else {
        arg.to_owned()
    };
    signet_formats::checkpoint::VerifierKey::parse(text.trim()).map_err(|e| {
        anyhow!(
            "invalid log key: {e}; use the `log_key` printed by `signetd init` or GET /api/v1/log/key"
        )
    })
}
