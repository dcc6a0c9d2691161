//! `signet sign`: hash locally, send digests only, check each signature, write outputs.
//!
//! Nothing the server returns is written before it is checked here: the signature against the
//! key's public key, the certificate chain against the key, a time-stamp token against the
//! signature (and the `--tsa-ca` roots), a CMS signature against the file's digest.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use signet_client::{Client, TsaClient};
use signet_core::{Algorithm, Digest, DigestAlgorithm};
use signet_formats::bundle::{
    ArtifactField, Bundle, DigestField, FORMAT_V1, LogField, timestamp_imprint,
};
use signet_proto::{
    BatchItem, BatchSignRequest, BuildInfo, CmsSignRequest, KeyInfo, SignRequest, SignResponse,
};
use time::OffsetDateTime;

use crate::config::{self, Overrides};
use crate::timestamp::{self, Anchors, Stamped, TimestampJson, Timestamper, Tsa};
use crate::{print_json, usage};

/// Files at least this large get a progress bar (on a terminal).
const PROGRESS_MIN_BYTES: u64 = 16 * 1024 * 1024;
/// Digests per batch request (the server's limit).
const BATCH: usize = 1000;

/// What `signet sign` writes for each file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// FILE.sig (the raw signature) and FILE.signet.json (the bundle).
    #[default]
    Raw,
    /// FILE.p7s: a detached CMS SignedData (RFC 5652) with the signer's certificate chain; the
    /// key needs a certificate.
    Cms,
}

#[derive(Args)]
pub struct SignArgs {
    /// Key to sign with (its current version signs).
    #[arg(long)]
    key: String,
    /// Files to sign; each gets FILE.sig (raw signature) and FILE.signet.json (bundle), or
    /// FILE.p7s with --format cms.
    #[arg(required_unless_present = "digest", conflicts_with = "digest")]
    files: Vec<PathBuf>,
    /// Sign this hex digest instead of files; prints the signature.
    #[arg(long)]
    digest: Option<String>,
    /// sha256, sha384 or sha512 (default: the key's default).
    #[arg(long)]
    digest_algorithm: Option<String>,
    /// Why this is signed (recorded in the audit log).
    #[arg(long, env = "SIGNET_REASON")]
    reason: Option<String>,
    /// Artifact kind recorded in the audit log.
    #[arg(long, default_value = "file")]
    artifact_kind: String,
    /// Artifact name (with --digest; files use their file name).
    #[arg(long)]
    artifact_name: Option<String>,
    /// Source repository (recorded).
    #[arg(long, env = "SIGNET_BUILD_REPOSITORY")]
    repository: Option<String>,
    /// Source commit (recorded).
    #[arg(long, env = "SIGNET_BUILD_COMMIT")]
    commit: Option<String>,
    /// CI pipeline id (recorded).
    #[arg(long, env = "SIGNET_BUILD_PIPELINE")]
    pipeline_id: Option<String>,
    /// Write outputs here instead of next to each file.
    #[arg(long)]
    output_dir: Option<PathBuf>,
    /// `raw` (FILE.sig and FILE.signet.json) or `cms` (FILE.p7s, which needs a certificate).
    #[arg(long, value_enum, default_value_t = Format::Raw)]
    format: Format,
    /// Time-stamp each signature (RFC 3161): the token goes into the bundle (raw) or into the
    /// CMS signature (cms, from the server's TSA).
    #[arg(long)]
    timestamp: bool,
    /// A TSA to ask, in order, failing over to the next (repeatable; default: `tsa_urls` from
    /// the config, else the server's own TSA). Raw format only.
    #[arg(long, value_name = "URL", requires = "timestamp")]
    tsa: Vec<String>,
    /// Only accept time-stamps whose TSA certificate chains to a certificate in this PEM file
    /// (each one is trusted as a root), valid at the time-stamp's time. Also checks a
    /// time-stamp the key's policy makes the server add.
    #[arg(long, value_name = "FILE")]
    tsa_ca: Option<PathBuf>,
}

pub async fn run(o: &Overrides, json: bool, args: SignArgs) -> Result<()> {
    let client = config::client(o)?;
    let key = client.get_key(&args.key).await?;
    let algorithm = Algorithm::from_str(&key.algorithm)?;
    let digest_alg = match &args.digest_algorithm {
        Some(d) => DigestAlgorithm::from_str(d)?,
        None => algorithm.default_digest(),
    };
    if !algorithm.accepts(digest_alg) {
        bail!(
            "key `{}` ({algorithm}) does not sign `{digest_alg}` digests; use {}",
            key.name,
            algorithm.default_digest()
        );
    }
    let build = (args.repository.is_some() || args.commit.is_some() || args.pipeline_id.is_some())
        .then(|| BuildInfo {
            repository: args.repository.clone(),
            commit: args.commit.clone(),
            pipeline_id: args.pipeline_id.clone(),
        });

    let anchors = args
        .tsa_ca
        .as_deref()
        .map(|p| Anchors::load(p, "--tsa-ca"))
        .transpose()?;
    if args.format == Format::Cms {
        if args.digest.is_some() {
            return Err(usage(
                "--format cms signs files; pass FILE arguments instead of --digest",
            ));
        }
        if !args.tsa.is_empty() {
            return Err(usage(
                "--tsa does not apply to --format cms: the server's own TSA time-stamps CMS signatures; drop --tsa",
            ));
        }
        return sign_cms(&client, &key, digest_alg, build, &args, anchors, json).await;
    }
    let mut stamper = if args.timestamp {
        let file = config::load_file()?;
        let tsas = timestamp::tsas(&args.tsa, file.tsa_urls.as_deref());
        let external = TsaClient::new()?;
        Some(Timestamper::new(
            tsas,
            anchors.clone(),
            timestamp::Http {
                server: &client,
                external,
            },
        ))
    } else {
        None
    };

    if let Some(hex_digest) = &args.digest {
        let digest = Digest::from_hex(digest_alg, hex_digest)?;
        let resp = client
            .sign(&SignRequest {
                key: key.name.clone(),
                digest_algorithm: Some(digest_alg.as_str().to_owned()),
                digest: digest.to_hex(),
                artifact_name: args.artifact_name.clone(),
                artifact_kind: Some(args.artifact_kind.clone()),
                reason: args.reason.clone(),
                build,
            })
            .await?;
        let mut resp = resp;
        check(&client, &key, algorithm, &digest, &resp).await?;
        let stamped = time_stamp(&resp, stamper.as_mut(), anchors.as_ref()).await?;
        if let Some(s) = &stamped {
            resp.timestamp = Some(Bundle::encode_signature(&s.token));
        }
        if json {
            return print_json(&resp);
        }
        println!("{}", resp.signature);
        eprintln!(
            "signed {digest_alg}:{} with key {} v{} (audit #{})",
            resp.digest, resp.key, resp.key_version, resp.audit_index
        );
        if let Some(s) = &stamped {
            eprintln!("{}", stamp_line(s));
        }
        return Ok(());
    }

    check_output_names(&args.files, args.output_dir.as_deref())?;
    // Hash every file locally, streaming; only digests go to the server.
    let mut items = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let digest = hash_file(path, digest_alg).await?;
        items.push((path.clone(), digest));
    }

    let mut bundles = Vec::with_capacity(items.len());
    for chunk in items.chunks(BATCH) {
        let req = BatchSignRequest {
            key: key.name.clone(),
            digest_algorithm: Some(digest_alg.as_str().to_owned()),
            items: chunk
                .iter()
                .map(|(path, d)| BatchItem {
                    digest: d.to_hex(),
                    artifact_name: Some(file_name(path)),
                    artifact_kind: Some(args.artifact_kind.clone()),
                })
                .collect(),
            reason: args.reason.clone(),
            build: build.clone(),
        };
        let resp = client.sign_batch(&req).await?;
        if resp.signatures.len() != chunk.len() {
            bail!(
                "the server returned {} signatures for {} digests",
                resp.signatures.len(),
                chunk.len()
            );
        }
        for ((path, digest), sig) in chunk.iter().zip(resp.signatures) {
            check(&client, &key, algorithm, digest, &sig).await?;
            let stamped = time_stamp(&sig, stamper.as_mut(), anchors.as_ref())
                .await
                .with_context(|| {
                    format!(
                        "`{}` was signed (audit #{}) but not time-stamped, so nothing was written for it",
                        path.display(),
                        sig.audit_index
                    )
                })?;
            let mut bundle = bundle_of(&sig, algorithm, digest, path, &args.artifact_kind)?;
            bundle.timestamp = stamped.as_ref().map(|s| Bundle::encode_signature(&s.token));
            let (sig_path, bundle_path) = output_paths(path, args.output_dir.as_deref())?;
            write_atomic(&sig_path, &bundle.signature_bytes()?)?;
            write_atomic(&bundle_path, format!("{}\n", bundle.to_json()?).as_bytes())?;
            if !json {
                println!(
                    "signed {} -> {} (key {} v{}, audit #{})",
                    path.display(),
                    sig_path.display(),
                    sig.key,
                    sig.key_version,
                    sig.audit_index
                );
                if let Some(s) = &stamped {
                    println!("  {}", stamp_line(s));
                }
            }
            bundles.push(bundle);
        }
    }
    if json {
        print_json(&bundles)?;
    }
    Ok(())
}

/// Verifies a returned signature against the key's public key before anything is written, so a
/// corrupted or substituted answer never becomes an output file.
async fn check(
    client: &Client,
    key: &KeyInfo,
    alg: Algorithm,
    digest: &Digest,
    resp: &SignResponse,
) -> Result<()> {
    if resp.digest != digest.to_hex() || resp.key != key.name {
        bail!("the server answered for a different key or digest; not writing it");
    }
    let pem = match key.versions.iter().find(|v| v.version == resp.key_version) {
        Some(v) => v.public_key_pem.clone(),
        // Rotated since we looked: fetch again.
        None => client
            .get_key(&key.name)
            .await?
            .versions
            .into_iter()
            .find(|v| v.version == resp.key_version)
            .map(|v| v.public_key_pem)
            .ok_or_else(|| anyhow!("key `{}` has no version {}", key.name, resp.key_version))?,
    };
    let spki = signet_formats::pem::pem_to_spki(&pem)?;
    let sig = signet_formats::bundle::decode_signature(&resp.signature)?;
    signet_formats::raw::verify(alg, &spki, digest, &sig)
        .context("the signature returned by the server does not verify; not writing it")?;
    if signet_core::key::fingerprint(&spki) != resp.public_key_fingerprint {
        bail!("the server's key fingerprint does not match the key's public key; not writing it");
    }
    if !resp.certificate_chain.is_empty() {
        crate::cert::check_key_chain(&spki, &resp.certificate_chain).with_context(|| {
            format!(
                "the certificate chain the server sent for key `{}` v{} does not certify it; not writing it",
                resp.key, resp.key_version
            )
        })?;
    }
    Ok(())
}

/// The time-stamp for a checked signature: the server's (the key's policy requires one),
/// verified here, else one from the TSAs when `--timestamp` asks for it.
async fn time_stamp<T: timestamp::Transport>(
    resp: &SignResponse,
    stamper: Option<&mut Timestamper<T>>,
    anchors: Option<&Anchors>,
) -> Result<Option<Stamped>> {
    let sig = signet_formats::bundle::decode_signature(&resp.signature)?;
    let imprint = timestamp_imprint(&sig)?;
    if let Some(b64) = &resp.timestamp {
        let token = signet_formats::bundle::decode_signature(b64)
            .map_err(|_| anyhow!("the server's time-stamp is not base64; not writing it"))?;
        let stamped = timestamp::check_token(token, &imprint, None, anchors, Tsa::Server)
            .context("the time-stamp the server attached does not verify; not writing it")?;
        return Ok(Some(stamped));
    }
    match stamper {
        Some(s) => Ok(Some(s.stamp(&imprint).await?)),
        None => Ok(None),
    }
}

fn stamp_line(s: &Stamped) -> String {
    let mut line = TimestampJson::of_stamped(s).line();
    line.push_str(&format!(" (via {})", s.source));
    line
}

/// One CMS signature as `--json` prints it.
#[derive(Serialize)]
struct CmsSigned {
    file: String,
    output: String,
    key: String,
    key_version: u32,
    /// `sha256:<hex>` of the file.
    digest: String,
    audit_index: u64,
    /// The signer certificate's subject (RFC 4514).
    signer: String,
    #[serde(with = "time::serde::rfc3339::option")]
    signing_time: Option<OffsetDateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<TimestampJson>,
}

/// `--format cms`: one `POST /api/v1/sign/cms` per file; each `.p7s` is verified against the
/// file's digest and the key before it is written.
async fn sign_cms(
    client: &Client,
    key: &KeyInfo,
    digest_alg: DigestAlgorithm,
    build: Option<BuildInfo>,
    args: &SignArgs,
    anchors: Option<Anchors>,
    json: bool,
) -> Result<()> {
    check_output_names(&args.files, args.output_dir.as_deref())?;
    let mut items = Vec::with_capacity(args.files.len());
    for path in &args.files {
        items.push((path.clone(), hash_file(path, digest_alg).await?));
    }
    let mut out = Vec::with_capacity(items.len());
    for (path, digest) in &items {
        let resp = client
            .sign_cms(&CmsSignRequest {
                key: key.name.clone(),
                digest_algorithm: Some(digest_alg.as_str().to_owned()),
                digest: digest.to_hex(),
                artifact_name: Some(file_name(path)),
                reason: args.reason.clone(),
                build: build.clone(),
                timestamp: args.timestamp,
            })
            .await?;
        if resp.key != key.name {
            bail!(
                "the server answered for key `{}`, not `{}`; not writing it",
                resp.key,
                key.name
            );
        }
        let p7s = signet_formats::bundle::decode_signature(&resp.cms)
            .map_err(|_| anyhow!("the server's CMS signature is not base64; not writing it"))?;
        let v = signet_formats::cms::verify_detached(&p7s, digest).with_context(|| {
            format!(
                "the CMS signature returned for `{}` does not verify; not writing it",
                path.display()
            )
        })?;
        let spki = public_key(client, key, resp.key_version).await?;
        let signer = signet_formats::x509::parse_certificate(&v.signer_certificate)?;
        if signer.spki_der != spki {
            bail!(
                "the CMS signer certificate `{}` is not for key `{}` v{}; not writing it",
                signer.subject,
                key.name,
                resp.key_version
            );
        }
        let timestamp = match &v.timestamp {
            Some(t) => {
                let (tsa, root) = timestamp::trust(t, anchors.as_ref()).with_context(|| {
                    format!(
                        "the time-stamp in the CMS signature for `{}` is not trusted; not writing it",
                        path.display()
                    )
                })?;
                Some(TimestampJson::of(t, tsa, root))
            }
            None if args.timestamp => bail!(
                "asked for a time-stamp but the server's CMS signature for `{}` carries none; check that the server has a TSA (`signet tsa show`)",
                path.display()
            ),
            None => None,
        };
        let p7s_path = output_path(path, args.output_dir.as_deref(), ".p7s")?;
        write_atomic(&p7s_path, &p7s)?;
        let signed = CmsSigned {
            file: path.display().to_string(),
            output: p7s_path.display().to_string(),
            key: resp.key.clone(),
            key_version: resp.key_version,
            digest: format!("{digest_alg}:{}", digest.to_hex()),
            audit_index: resp.audit_index,
            signer: signer.subject,
            signing_time: v.signing_time,
            timestamp,
        };
        if !json {
            println!(
                "signed {} -> {} (CMS, key {} v{}, audit #{})",
                signed.file, signed.output, signed.key, signed.key_version, signed.audit_index
            );
            if let Some(t) = &signed.timestamp {
                println!("  {}", t.line());
            }
        }
        out.push(signed);
    }
    if json {
        print_json(&out)?;
    }
    Ok(())
}

/// The DER SubjectPublicKeyInfo of `key` version `version` (fetched again if it is newer than
/// `key`).
async fn public_key(client: &Client, key: &KeyInfo, version: u32) -> Result<Vec<u8>> {
    let pem = match key.versions.iter().find(|v| v.version == version) {
        Some(v) => v.public_key_pem.clone(),
        None => client
            .get_key(&key.name)
            .await?
            .versions
            .into_iter()
            .find(|v| v.version == version)
            .map(|v| v.public_key_pem)
            .ok_or_else(|| anyhow!("key `{}` has no version {version}", key.name))?,
    };
    Ok(signet_formats::pem::pem_to_spki(&pem)?)
}

fn bundle_of(
    sig: &SignResponse,
    algorithm: Algorithm,
    digest: &Digest,
    path: &Path,
    kind: &str,
) -> Result<Bundle> {
    Ok(Bundle {
        format: FORMAT_V1.into(),
        key: sig.key.clone(),
        key_version: sig.key_version,
        algorithm,
        digest: DigestField {
            algorithm: digest.algorithm(),
            value: digest.to_hex(),
        },
        signature: sig.signature.clone(),
        public_key_fingerprint: sig.public_key_fingerprint.clone(),
        signed_at: sig.signed_at,
        artifact: ArtifactField {
            name: Some(file_name(path)),
            kind: Some(kind.to_owned()),
        },
        audit_index: Some(sig.audit_index),
        log: Some(LogField {
            index: sig.log.index,
            entry: sig.log.entry.clone(),
            leaf_hash: sig.log.leaf_hash.clone(),
            tree_size: sig.log.tree_size,
            inclusion_proof: sig.log.inclusion_proof.clone(),
            checkpoint: sig.log.checkpoint.clone(),
        }),
        certificate_chain: sig.certificate_chain.clone(),
        timestamp: None,
    })
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// With --output-dir, two inputs of the same name would overwrite each other's outputs.
fn check_output_names(files: &[PathBuf], output_dir: Option<&Path>) -> Result<()> {
    if output_dir.is_some() {
        let mut seen = std::collections::HashSet::new();
        for path in files {
            if !seen.insert(file_name(path)) {
                bail!(
                    "two inputs are named `{}`; their outputs would collide in --output-dir, so sign them separately",
                    file_name(path)
                );
            }
        }
    }
    Ok(())
}

/// FILE.sig and FILE.signet.json, next to the file or in `dir`.
pub fn output_paths(file: &Path, dir: Option<&Path>) -> Result<(PathBuf, PathBuf)> {
    Ok((
        output_path(file, dir, ".sig")?,
        output_path(file, dir, ".signet.json")?,
    ))
}

/// FILE + `ext`, next to the file or in `dir`.
pub fn output_path(file: &Path, dir: Option<&Path>, ext: &str) -> Result<PathBuf> {
    let name = file
        .file_name()
        .ok_or_else(|| anyhow!("`{}` is not a file path", file.display()))?;
    let mut s = match dir {
        Some(d) => d.join(name),
        None => file.to_path_buf(),
    }
    .into_os_string();
    s.push(ext);
    Ok(PathBuf::from(s))
}

/// Writes via a temporary file and a rename, so a reader never sees half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write `{}`", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(())
}

/// Hashes a file in a blocking thread, streaming (constant memory), with a progress bar for
/// large files on a terminal.
pub async fn hash_file(path: &Path, alg: DigestAlgorithm) -> Result<Digest> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&path)
            .with_context(|| format!("cannot open `{}`", path.display()))?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            bail!("`{}` is not a regular file", path.display());
        }
        let len = meta.len();
        let bar = if len >= PROGRESS_MIN_BYTES {
            let bar = ProgressBar::new(len);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg} {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_message(format!("hashing {}", file_name(&path)));
            bar
        } else {
            ProgressBar::hidden()
        };
        let digest = signet_formats::raw::hash_reader(
            alg,
            std::io::BufReader::with_capacity(1 << 20, file),
            |n| bar.set_position(n),
        )
        .with_context(|| format!("cannot read `{}`", path.display()))?;
        bar.finish_and_clear();
        Ok(digest)
    })
    .await
    .map_err(|e| anyhow!("hashing task failed: {e}"))?
}
