//! `signet sign`: hash locally, send digests only, check each signature, write outputs.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use signet_client::Client;
use signet_core::{Algorithm, Digest, DigestAlgorithm};
use signet_formats::bundle::{ArtifactField, Bundle, DigestField, FORMAT_V1, LogField};
use signet_proto::{BatchItem, BatchSignRequest, BuildInfo, KeyInfo, SignRequest, SignResponse};

use crate::config::{self, Overrides};
use crate::print_json;

/// Files at least this large get a progress bar (on a terminal).
const PROGRESS_MIN_BYTES: u64 = 16 * 1024 * 1024;
/// Digests per batch request (the server's limit).
const BATCH: usize = 1000;

#[derive(Args)]
pub struct SignArgs {
    /// Key to sign with (its current version signs).
    #[arg(long)]
    key: String,
    /// Files to sign; each gets FILE.sig (raw signature) and FILE.signet.json (bundle).
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
        check(&client, &key, algorithm, &digest, &resp).await?;
        if json {
            return print_json(&resp);
        }
        println!("{}", resp.signature);
        eprintln!(
            "signed {digest_alg}:{} with key {} v{} (audit #{})",
            resp.digest, resp.key, resp.key_version, resp.audit_index
        );
        return Ok(());
    }

    if args.output_dir.is_some() {
        let mut seen = std::collections::HashSet::new();
        for path in &args.files {
            if !seen.insert(file_name(path)) {
                bail!(
                    "two inputs are named `{}`; their outputs would collide in --output-dir, so sign them separately",
                    file_name(path)
                );
            }
        }
    }
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
            let bundle = bundle_of(&sig, algorithm, digest, path, &args.artifact_kind)?;
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
    Ok(())
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

pub fn output_paths(file: &Path, dir: Option<&Path>) -> Result<(PathBuf, PathBuf)> {
    let name = file
        .file_name()
        .ok_or_else(|| anyhow!("`{}` is not a file path", file.display()))?
        .to_string_lossy()
        .into_owned();
    let base = match dir {
        Some(d) => d.join(&name),
        None => file.to_path_buf(),
    };
    let with = |ext: &str| {
        let mut s = base.clone().into_os_string();
        s.push(ext);
        PathBuf::from(s)
    };
    Ok((with(".sig"), with(".signet.json")))
}

/// Writes via a temporary file and a rename, so a reader never sees half a file.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
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
