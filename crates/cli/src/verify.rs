//! `signet verify`: check a file against its bundle or raw signature, or against a detached CMS
//! signature (`--cms`).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, Result, anyhow, bail};
use clap::{ArgGroup, Args};
use serde::Serialize;
use signet_core::{Algorithm, DigestAlgorithm};
use signet_formats::bundle::Bundle;
use time::OffsetDateTime;

use crate::config::{self, Overrides};
use crate::print_json;
use crate::sign::hash_file;
use crate::timestamp::{self, Anchors, TimestampJson, rfc3339};

#[derive(Args)]
#[command(group(ArgGroup::new("pubkey").required(true).args(["key", "public_key", "cms"])))]
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
    /// Require the signature's time-stamp to come from a TSA whose certificate chains to a
    /// certificate in this PEM file (each one is trusted as a root), valid at the time-stamp's
    /// time.
    #[arg(long, value_name = "FILE")]
    tsa_ca: Option<PathBuf>,
    /// Verify this detached CMS signature (FILE.p7s) over FILE; the digest algorithm is the
    /// signature's. With the global `--ca ROOT.pem` (each certificate in it is trusted as a
    /// root), the signer certificate must also chain to one (at the time-stamp's time when
    /// --tsa-ca trusts the time-stamp, else now) and be for code signing.
    #[arg(long, value_name = "P7S", conflicts_with_all = ["bundle", "signature", "algorithm", "digest_algorithm", "log_key"])]
    cms: Option<PathBuf>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<TimestampJson>,
}

#[derive(Serialize)]
struct LoggedAt {
    origin: String,
    index: u64,
    tree_size: u64,
}

pub async fn run(o: &Overrides, json: bool, args: VerifyArgs) -> Result<()> {
    if let Some(p7s) = &args.cms {
        return verify_cms(o, json, &args, p7s).await;
    }
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

    let tsa_anchors = args
        .tsa_ca
        .as_deref()
        .map(|p| Anchors::load(p, "--tsa-ca"))
        .transpose()?;
    let timestamp = match &bundle {
        Some(b) if b.timestamp.is_some() => Some(
            bundle_timestamp(b, tsa_anchors.as_ref())
                .map_err(|e| anyhow!("verification failed: the time-stamp is invalid: {e:#}"))?,
        ),
        Some(_) if tsa_anchors.is_some() => bail!(
            "verification failed: --tsa-ca requires a time-stamp, but the bundle carries none; sign with --timestamp"
        ),
        None if tsa_anchors.is_some() => bail!(
            "--tsa-ca needs a bundle (FILE.signet.json); a raw signature carries no time-stamp"
        ),
        _ => None,
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
        timestamp,
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
    if let Some(t) = &out.timestamp {
        println!("{}", t.line());
    }
    Ok(())
}

/// Verifies the bundle's time-stamp token over its signature (imprint: SHA-256 of the
/// signature bytes) and, with `anchors`, the TSA's chain at the token's time.
fn bundle_timestamp(b: &Bundle, anchors: Option<&Anchors>) -> Result<TimestampJson> {
    let token = b
        .timestamp_token()?
        .ok_or_else(|| anyhow!("the bundle carries no time-stamp"))?;
    let imprint = b.timestamp_imprint()?;
    let extra = anchors.map(|a| a.certs.as_slice()).unwrap_or_default();
    let v = signet_formats::tsp::verify_token(&token, &imprint, None, extra)?;
    let (tsa, root) = timestamp::trust(&v, anchors)?;
    Ok(TimestampJson::of(&v, tsa, root))
}

#[derive(Serialize)]
struct CmsVerified {
    verified: bool,
    file: String,
    /// The `.p7s` checked.
    signature: String,
    /// `<algorithm>:<hex>` of the file.
    digest: String,
    signer: SignerJson,
    /// The signing time the signer claims (a signed attribute), not a trusted time.
    #[serde(with = "time::serde::rfc3339::option")]
    signing_time: Option<OffsetDateTime>,
    /// The root the signer chains to (with `--ca`), RFC 4514.
    #[serde(skip_serializing_if = "Option::is_none")]
    root: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<TimestampJson>,
}

#[derive(Serialize)]
struct SignerJson {
    subject: String,
    issuer: String,
    serial: String,
    #[serde(with = "time::serde::rfc3339")]
    not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    not_after: OffsetDateTime,
}

/// `signet verify --cms FILE.p7s FILE [--ca ROOT.pem] [--tsa-ca TSA-ROOT.pem]`.
async fn verify_cms(o: &Overrides, json: bool, args: &VerifyArgs, p7s_path: &Path) -> Result<()> {
    let p7s = std::fs::read(p7s_path)
        .with_context(|| format!("cannot read the CMS signature `{}`", p7s_path.display()))?;
    let digest_alg = p7s_digest_algorithm(&p7s)
        .with_context(|| format!("cannot use the CMS signature `{}`", p7s_path.display()))?;
    let digest = hash_file(&args.file, digest_alg).await?;
    let v = signet_formats::cms::verify_detached(&p7s, &digest)
        .map_err(|e| anyhow!("verification failed: {e}"))?;
    let signer = signet_formats::x509::parse_certificate(&v.signer_certificate)?;

    let tsa_anchors = args
        .tsa_ca
        .as_deref()
        .map(|p| Anchors::load(p, "--tsa-ca"))
        .transpose()?;
    let timestamp = match &v.timestamp {
        Some(t) => {
            let (tsa, root) = timestamp::trust(t, tsa_anchors.as_ref()).map_err(|e| {
                anyhow!("verification failed: the time-stamp is not trusted: {e:#}")
            })?;
            Some(TimestampJson::of(t, tsa, root))
        }
        None if tsa_anchors.is_some() => bail!(
            "verification failed: --tsa-ca requires a time-stamp, but the CMS signature carries none; sign with --timestamp"
        ),
        None => None,
    };

    // The signer's chain, at a time to trust: a time-stamp's only when its TSA is trusted.
    let root = match &o.ca {
        Some(path) => {
            let anchors = Anchors::load(path, "--ca")?;
            let at = match (&v.timestamp, &tsa_anchors) {
                (Some(t), Some(_)) => t.gen_time,
                _ => OffsetDateTime::now_utc(),
            };
            if signer.eku_present && !signer.eku_code_signing {
                bail!(
                    "verification failed: the signer certificate `{}` is not for code signing (its extended key usage lacks codeSigning)",
                    signer.subject
                );
            }
            let r = anchors
                .check(
                    &v.signer_certificate,
                    &v.certificates,
                    at,
                    "signer certificate",
                )
                .map_err(|e| anyhow!("verification failed: {e:#}"))?;
            Some(r.subject)
        }
        None => None,
    };

    let out = CmsVerified {
        verified: true,
        file: args.file.display().to_string(),
        signature: p7s_path.display().to_string(),
        digest: format!("{digest_alg}:{}", digest.to_hex()),
        signer: SignerJson {
            subject: signer.subject,
            issuer: signer.issuer,
            serial: signer.serial,
            not_before: signer.not_before,
            not_after: signer.not_after,
        },
        signing_time: v.signing_time,
        root,
        timestamp,
    };
    if json {
        return print_json(&out);
    }
    println!(
        "verified {}: CMS signature by {} (issuer {})",
        out.file, out.signer.subject, out.signer.issuer
    );
    if let Some(t) = out.signing_time {
        println!("signing time {} (claimed by the signer)", rfc3339(t));
    }
    if let Some(t) = &out.timestamp {
        println!("{}", t.line());
    }
    match &out.root {
        Some(r) => println!("signer certificate chains to {r}"),
        None => println!(
            "note: the signer certificate was not checked against a root; pass --ca ROOT.pem"
        ),
    }
    Ok(())
}

/// The digest algorithm of the (first) `SignerInfo` of a DER CMS SignedData: what the file
/// must be hashed with. [`signet_formats::cms::verify_detached`] checks the rest.
fn p7s_digest_algorithm(p7s: &[u8]) -> Result<DigestAlgorithm> {
    use der::Decode as _;
    let ci = ::cms::content_info::ContentInfo::from_der(p7s).map_err(|e| {
        anyhow!(
            "not a DER CMS signature ({e}); pass the `.p7s` as written by `signet sign --format cms` or `openssl cms -sign -outform DER`"
        )
    })?;
    let sd = ci
        .content
        .decode_as::<::cms::signed_data::SignedData>()
        .map_err(|e| anyhow!("not a CMS SignedData ({e}); pass a detached CMS signature"))?;
    let si = sd
        .signer_infos
        .0
        .as_slice()
        .first()
        .ok_or_else(|| anyhow!("the CMS signature has no signer"))?;
    Ok(signet_formats::pkix::digest_algorithm_from(&si.digest_alg)?)
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
