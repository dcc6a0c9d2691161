//! Where CPU-heavy signing runs. Core has no async runtime, so the server injects one: cheap
//! requests sign inline on the request task, expensive ones (RSA, large batches) on a bounded
//! pool of blocking threads, so they never stall the tasks serving other requests.

use async_trait::async_trait;

use crate::algorithm::Algorithm;
use crate::error::CoreError;

/// A signing job: signatures in the order of its digests.
pub type SignJob = Box<dyn FnOnce() -> Result<Vec<Vec<u8>>, CoreError> + Send + 'static>;

#[async_trait]
pub trait Offload: Send + Sync {
    async fn run(&self, job: SignJob) -> Result<Vec<Vec<u8>>, CoreError>;
}

/// Runs jobs on the caller's thread (tests and tools without a runtime of their own).
#[derive(Debug, Default, Clone, Copy)]
pub struct Inline;

#[async_trait]
impl Offload for Inline {
    async fn run(&self, job: SignJob) -> Result<Vec<Vec<u8>>, CoreError> {
        job()
    }
}

/// Signing cost of one signature relative to ECDSA P-256, measured with
/// `cargo bench -p signet-keys` (P-256 ≈ 19 µs, P-384 ≈ 100 µs, RSA-3072 ≈ 2.3 ms,
/// RSA-4096 ≈ 5 ms on the reference machine; see `docs/performance.md`).
pub const fn relative_cost(a: Algorithm) -> u32 {
    match a {
        Algorithm::Ed25519 | Algorithm::EcdsaP256 => 1,
        Algorithm::EcdsaP384 => 5,
        Algorithm::Rsa3072Pss | Algorithm::Rsa3072Pkcs1 => 120,
        Algorithm::Rsa4096Pss | Algorithm::Rsa4096Pkcs1 => 260,
        // `cargo bench -p signet-keys --bench sign`, one thread, against P-256 ≈ 19.7 µs in the
        // same run: ML-DSA-44 ≈ 104 µs, -65 ≈ 181 µs, -87 ≈ 228 µs (aws-lc-rs; the mean, as
        // rejection sampling varies per signature); SLH-DSA-SHA2-128f ≈ 9.6 ms, -128s ≈ 217 ms.
        Algorithm::MlDsa44 => 5,
        Algorithm::MlDsa65 => 9,
        Algorithm::MlDsa87 => 12,
        Algorithm::SlhDsaSha2_128f => 490,
        Algorithm::SlhDsaSha2_128s => 11_000,
    }
}

/// Jobs up to this cost (about 0.3 ms) sign inline: handing them to another thread
/// would cost more than it saves.
pub const INLINE_BUDGET: u32 = 16;
