//! Raw in-process signing speed per algorithm (the software backend, one thread), the baseline
//! for `signet bench`'s end-to-end figures and for `relative_cost` in `signet-core`'s offload
//! module. Run: `cargo bench -p signet-keys --bench sign`.
//!
//! Post-quantum algorithms are included. SLH-DSA signs slowly (SHA2-128s takes a few hundred
//! milliseconds per signature), so the slow algorithms take criterion's minimum of 10 samples.

use criterion::{Criterion, criterion_group, criterion_main};
use signet_core::backend::KeyBackend;
use signet_core::backend::{KeySpec, SigningKey};
use signet_core::{Algorithm, Digest};
use signet_keys::{Kek, SoftwareBackend};

fn open(backend: &SoftwareBackend, alg: Algorithm) -> Option<Box<dyn SigningKey>> {
    let spec = KeySpec {
        key_id: format!("bench-{alg}"),
        version: 1,
        algorithm: alg,
    };
    let generated = backend.generate_blocking(&spec).ok()?;
    backend.open(&spec, &generated.handle).ok()
}

fn bench(c: &mut Criterion) {
    let Some(backend) = Kek::generate_bytes()
        .ok()
        .and_then(|b| Kek::from_bytes(b.as_ref()).ok())
        .map(SoftwareBackend::new)
    else {
        eprintln!("cannot set up the software backend");
        return;
    };
    let mut group = c.benchmark_group("sign_digest");
    for alg in Algorithm::ALL {
        let Some(key) = open(&backend, alg) else {
            eprintln!("cannot create a {alg} key");
            continue;
        };
        let d = alg.default_digest();
        let Ok(digest) = Digest::new(d, vec![0x5a; d.output_len()]) else {
            continue;
        };
        // ~0.3 ms and up: fewer samples keep the run short without changing the mean.
        let slow = matches!(
            alg,
            Algorithm::SlhDsaSha2_128s
                | Algorithm::SlhDsaSha2_128f
                | Algorithm::Rsa3072Pss
                | Algorithm::Rsa3072Pkcs1
                | Algorithm::Rsa4096Pss
                | Algorithm::Rsa4096Pkcs1
        );
        group.sample_size(if slow { 10 } else { 100 });
        group.bench_function(alg.as_str(), |b| b.iter(|| key.sign_digest(&digest)));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
