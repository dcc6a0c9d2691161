//! `signet bench`: end-to-end signing throughput and latency against a running server.

use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Args;
use serde::Serialize;
use signet_core::Algorithm;
use signet_proto::{BatchItem, BatchSignRequest, SignRequest};

use crate::config::{self, Overrides};
use crate::print_json;

#[derive(Args)]
pub struct BenchArgs {
    /// Key to sign with (every signature is audited like any other).
    #[arg(long)]
    key: String,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Digests per request (1 uses `/sign`, more uses `/sign/batch`).
    #[arg(long, default_value_t = 1)]
    batch: usize,
}

#[derive(Serialize)]
struct Report {
    key: String,
    algorithm: String,
    concurrency: usize,
    batch: usize,
    seconds: f64,
    requests: u64,
    signatures: u64,
    errors: u64,
    signatures_per_second: f64,
    latency_ms: Percentiles,
}

#[derive(Serialize)]
struct Percentiles {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

pub async fn run(o: &Overrides, json: bool, args: BenchArgs) -> Result<()> {
    if args.concurrency == 0 || args.concurrency > 1024 {
        bail!(
            "concurrency `{}` is out of range; use 1 to 1024",
            args.concurrency
        );
    }
    if args.batch == 0 || args.batch > 1000 {
        bail!("batch `{}` is out of range; use 1 to 1000", args.batch);
    }
    let client = config::client(o)?;
    let key = client.get_key(&args.key).await?;
    let alg = Algorithm::from_str(&key.algorithm)?.default_digest();
    eprintln!(
        "benchmarking key {} ({}) with {} in flight for {} s…",
        key.name, key.algorithm, args.concurrency, args.duration
    );
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.duration);
    let mut tasks = Vec::with_capacity(args.concurrency);
    for worker in 0..args.concurrency {
        let client = client.clone();
        let key = key.name.clone();
        let batch = args.batch;
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut first_error = None;
            let mut n = 0u64;
            while Instant::now() < deadline {
                let digests: Vec<String> = (0..batch)
                    .map(|i| {
                        let seed = format!("signet-bench:{worker}:{n}:{i}");
                        n += 1;
                        hex_digest(alg, seed.as_bytes())
                    })
                    .collect();
                let t = Instant::now();
                let result = if batch == 1 {
                    client
                        .sign(&SignRequest {
                            key: key.clone(),
                            digest_algorithm: Some(alg.as_str().into()),
                            digest: digests.concat(),
                            artifact_name: None,
                            artifact_kind: Some("bench".into()),
                            reason: Some("signet bench".into()),
                            build: None,
                        })
                        .await
                        .map(|_| ())
                } else {
                    client
                        .sign_batch(&BatchSignRequest {
                            key: key.clone(),
                            digest_algorithm: Some(alg.as_str().into()),
                            items: digests
                                .into_iter()
                                .map(|d| BatchItem {
                                    digest: d,
                                    artifact_name: None,
                                    artifact_kind: Some("bench".into()),
                                })
                                .collect(),
                            reason: Some("signet bench".into()),
                            build: None,
                        })
                        .await
                        .map(|_| ())
                };
                match result {
                    Ok(()) => latencies.push(t.elapsed()),
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| e.to_string());
                    }
                }
            }
            (latencies, errors, first_error)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for t in tasks {
        let (l, e, f) = t.await?;
        latencies.extend(l);
        errors += e;
        if first_error.is_none() {
            first_error = f;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    if let Some(e) = &first_error {
        eprintln!("warning: {errors} requests failed; first error: {e}");
    }
    latencies.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let idx = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies
            .get(idx.min(latencies.len() - 1))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let requests = latencies.len() as u64;
    let signatures = requests * args.batch as u64;
    let report = Report {
        key: key.name,
        algorithm: key.algorithm,
        concurrency: args.concurrency,
        batch: args.batch,
        seconds,
        requests,
        signatures,
        errors,
        signatures_per_second: signatures as f64 / seconds,
        latency_ms: Percentiles {
            p50: pct(0.50),
            p90: pct(0.90),
            p99: pct(0.99),
            max: pct(1.0),
        },
    };
    if json {
        return print_json(&report);
    }
    println!(
        "{} signatures in {:.1} s: {:.0} signatures/s ({} requests, {} errors)",
        report.signatures,
        report.seconds,
        report.signatures_per_second,
        report.requests,
        report.errors
    );
    println!(
        "latency per request: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        report.latency_ms.p50, report.latency_ms.p90, report.latency_ms.p99, report.latency_ms.max
    );
    if requests == 0 {
        bail!("no request succeeded");
    }
    Ok(())
}

fn hex_digest(alg: signet_core::DigestAlgorithm, data: &[u8]) -> String {
    let a = match alg {
        signet_core::DigestAlgorithm::Sha256 => &aws_lc_rs::digest::SHA256,
        signet_core::DigestAlgorithm::Sha384 => &aws_lc_rs::digest::SHA384,
        signet_core::DigestAlgorithm::Sha512 => &aws_lc_rs::digest::SHA512,
    };
    hex::encode(aws_lc_rs::digest::digest(a, data))
}
